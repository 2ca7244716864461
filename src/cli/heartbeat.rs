//! `ratchet heartbeat`: one unattended step, for cron.

use crate::cli::gate::{Narration, describe, exit_for, report_json};
use crate::cli::{CommandResult, Env};
use crate::error::{Coded, Exit};
use crate::lock::WorkspaceLock;
use crate::record::Outcome;
use crate::step::{self, Options, Session};

/// Run one step unattended, for cron; never prompts
///
/// Auto-merges only where [gate.auto_merge] allows; anything else waits in
/// logs/pending/. Always leaves a log entry. With --quiet it prints nothing
/// on a normal run, so cron mails only when something needs a person: a
/// failed step (with the last lines of its checks), a watchdog alarm, or
/// an error.
///
/// Exit status:
///   0    the step ended normally (merged, pending, rejected, noop)
///   1    the step failed, or an error
///   3    the watchdog raised an alarm (it wins over a failed step)
///   4    the rails were changed by hand (run `ratchet rails accept`)
///   5    another ratchet holds the workspace lock
///   130  Ctrl-C
///
/// A crontab line:
///
///   */30 * * * * cd /path/to/repo && ratchet heartbeat --quiet
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {}

pub fn run(env: &Env, _args: Args) -> CommandResult {
    let ws = env.workspace()?;
    let lock = WorkspaceLock::acquire(&ws, "heartbeat")?;
    let mut s = match Session::with_lock(&ws, lock) {
        Ok(s) => s,
        Err(e) => {
            step::heartbeat_failed(&ws, e.code(), &e.to_string());
            return Err(e.into());
        }
    };
    for note in &s.notes {
        env.ui.warn(note);
    }
    let (mut tele, telemetry) = step::Telemetry::before(&mut s)?;
    for note in &tele.notes {
        env.ui.note(note);
    }
    let quiet = env.ui.quiet();
    let opts = Options {
        forced: None,
        allow_dirty: false,
        patch_file: None,
        gate2: None,
        interactive: false,
        telemetry,
        cancel: crate::cli::interrupt::cancel_on_ctrl_c(),
    };
    let beat = step::heartbeat(&mut s, opts, &mut Narration::new(&env.ui))?;
    tele.after(&s);
    // Telemetry that does not answer is the normal state of many a cron
    // run; --quiet keeps it for the log and the status screen.
    if !quiet {
        crate::cli::step::warn_telemetry(env, &tele);
    }
    let failed = beat.report.outcome == Outcome::Failed;
    if env.ui.json() {
        let mut v = report_json(&beat.report);
        v["watchdog"] = serde_json::to_value(&beat.watchdog).expect("watchdog state serialises");
        env.ui.emit_json(&v);
    } else if !quiet || failed {
        env.ui.data(describe(&env.ui, &beat.report));
        if let Some(diff) = crate::cli::show::auto_merged_diff(&env.ui, &s, &beat.report) {
            env.ui.data_raw(&diff);
        }
        if failed {
            for line in crate::cli::gate::checks_tail(&s, &beat.report) {
                env.ui.data(line);
            }
        }
    }
    let exit = if beat.watchdog.alarm {
        env.ui.warn(format!(
            "watchdog: {}; the next pick forces exploration and prefers a human — run `ratchet step` at a terminal",
            beat.watchdog.reason.as_deref().unwrap_or("no progress")
        ));
        Exit::Watchdog
    } else {
        exit_for(&beat.report)
    };
    Ok(crate::cli::interrupt::finish(&env.ui, &beat.report, exit))
}

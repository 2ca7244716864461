//! `ratchet heartbeat`: one unattended step, for cron.

use crate::cli::gate::{Narration, describe, report_json};
use crate::cli::{CommandResult, Env};
use crate::error::{Coded, Exit};
use crate::lock::WorkspaceLock;
use crate::step::{self, Options, Session};

/// Run one step unattended, for cron; never prompts.
///
/// Auto-merges only where [gate.auto_merge] allows; anything else waits in
/// logs/pending/. Always leaves a log entry. Exit 0 normally, 3 on a
/// watchdog alarm, 5 if another run holds the lock. A crontab line:
///
///   */30 * * * * cd /path/to/repo && ratchet heartbeat --quiet
#[derive(clap::Args, Debug)]
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
    crate::cli::step::warn_telemetry(env, &tele);
    if env.ui.json() {
        let mut v = report_json(&beat.report);
        v["watchdog"] = serde_json::to_value(&beat.watchdog).expect("watchdog state serialises");
        env.ui.emit_json(&v);
    } else {
        env.ui.data(describe(&env.ui, &beat.report));
    }
    if beat.watchdog.alarm {
        env.ui.warn(format!(
            "watchdog: {}; the next pick forces exploration and prefers a human — run `ratchet step` at a terminal",
            beat.watchdog.reason.as_deref().unwrap_or("no progress")
        ));
        return Ok(Exit::Watchdog);
    }
    Ok(Exit::Ok)
}

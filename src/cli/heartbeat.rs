//! `ratchet heartbeat`: one unattended step, for cron.

use crate::cli::gate::{Narration, describe, report_json};
use crate::cli::{CommandError, CommandResult, Env};
use crate::error::{Coded, Exit};
use crate::journal::{Draft, Journal, Kind};
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

/// Logs why a heartbeat could not run its step, when the log can take it.
fn log_failure(ws: &crate::workspace::Workspace, code: &str, message: &str) {
    if code.starts_with("LOG_") {
        return;
    }
    if let Ok(mut j) = Journal::open(ws) {
        if let Ok(d) = Draft::new(Kind::Heartbeat, serde_json::json!({"error": code, "message": message})) {
            let _ = j.append(d);
        }
    }
}

pub fn run(env: &Env, _args: Args) -> CommandResult {
    let ws = env.workspace()?;
    let lock = WorkspaceLock::acquire(&ws, "heartbeat")?;
    let mut s = match Session::with_lock(&ws, lock) {
        Ok(s) => s,
        Err(e) => {
            log_failure(&ws, e.code(), &e.to_string());
            return Err(e.into());
        }
    };
    for note in &s.notes {
        env.ui.warn(note);
    }
    let telemetry = crate::telemetry::top_pain(&s.rails, &s.ws);
    let opts = Options {
        forced: None,
        allow_dirty: false,
        patch_file: None,
        gate2: None,
        interactive: false,
        telemetry,
        cancel: crate::cli::interrupt::cancel_on_ctrl_c(),
    };
    let report = match step::run(&mut s, opts, &mut Narration::new(&env.ui)) {
        Ok(r) => r,
        Err(e) => {
            let body = serde_json::json!({"error": e.code(), "message": e.to_string()});
            s.append(Kind::Heartbeat, None, &body).map_err(CommandError::from)?;
            return Err(e.into());
        }
    };
    let history = s.history()?;
    let watchdog = history.watchdog(&s.rails.watchdog, crate::clock::now());
    if env.ui.json() {
        let mut v = report_json(&report);
        v["watchdog"] = serde_json::to_value(&watchdog).expect("watchdog state serialises");
        env.ui.emit_json(&v);
    } else {
        env.ui.data(describe(&env.ui, &report));
    }
    if watchdog.alarm {
        let body = serde_json::json!({
            "step": report.id,
            "reason": watchdog.reason,
            "steps_since_merge": watchdog.steps_since_merge,
            "hours_since_merge": watchdog.hours_since_merge,
            "last_merge": watchdog.last_merge,
        });
        s.append(Kind::Watchdog, None, &body)?;
        env.ui.warn(format!(
            "watchdog: {}; the next pick forces exploration and prefers a human — run `ratchet step` at a terminal",
            watchdog.reason.as_deref().unwrap_or("no progress")
        ));
        return Ok(Exit::Watchdog);
    }
    Ok(Exit::Ok)
}

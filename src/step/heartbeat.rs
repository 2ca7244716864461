//! `ratchet heartbeat`: one unattended step for cron, and the entries that
//! keep an unattended loop honest (seed 003 principle 13).
//!
//! A heartbeat never prompts; it auto-merges only what `[gate.auto_merge]`
//! allows and leaves anything else pending. When its step cannot run, a
//! `heartbeat` entry says why (unless the log itself is what is broken);
//! when the watchdog sees no progress, a `watchdog` entry records the
//! alarm, and the caller exits 3 so cron mails the owner.

use crate::journal::Journal;
use crate::record::{HeartbeatBody, WatchdogBody};
use crate::watchdog::WatchdogState;
use crate::workspace::Workspace;

use super::{Options, Progress, Report, Session, StepError, seal};

/// What a heartbeat did.
#[derive(Clone, Debug)]
pub struct Beat {
    pub report: Report,
    pub watchdog: WatchdogState,
}

/// Runs one unattended step in `s`; logs a `heartbeat` entry when the step
/// errs, and a `watchdog` entry when the watchdog raises an alarm.
pub fn heartbeat(s: &mut Session, opts: Options<'_>, progress: &mut dyn Progress) -> Result<Beat, StepError> {
    let report = match super::run(s, opts, progress) {
        Ok(r) => r,
        Err(e) => {
            let body = HeartbeatBody { error: crate::error::Coded::code(&e).to_string(), message: e.to_string() };
            s.journal.append(None, &body, seal())?;
            return Err(e);
        }
    };
    let history = s.history()?;
    let watchdog = crate::watchdog::reading(&history, &s.rails.watchdog, crate::clock::now());
    if watchdog.alarm {
        let body = WatchdogBody {
            step: report.id.clone(),
            reason: watchdog.reason.clone(),
            steps_since_merge: watchdog.steps_since_merge,
            hours_since_merge: watchdog.hours_since_merge,
            last_merge: watchdog.last_merge.clone(),
        };
        s.journal.append(None, &body, seal())?;
        s.forget_history();
    }
    Ok(Beat { report, watchdog })
}

/// Logs why a heartbeat could not even begin (the rails tampered, say),
/// when the log can take it: never for the log's own errors.
pub fn heartbeat_failed(ws: &Workspace, code: &str, message: &str) {
    if code.starts_with("LOG_") || code == "CHECKPOINT_INVALID" || code == "LOCKED" {
        return;
    }
    if let Ok(mut j) = Journal::open(ws) {
        let body = HeartbeatBody { error: code.to_string(), message: message.to_string() };
        let _ = j.append(None, &body, seal());
    }
}

//! Ctrl-C while a step runs.
//!
//! The first Ctrl-C (SIGINT) sets one process-wide stop flag: a model call
//! in flight stops, a provider command or the checks are killed with their
//! whole process group ([`crate::process::stopped`]), a question at Gate 2
//! goes unanswered. The step then ends `skipped` with reason `interrupted`
//! (nothing judged, nothing scored; a patch already written is put back),
//! its entry is logged, and the command prints one line and exits 130, as
//! an interrupted program does.
//!
//! A second Ctrl-C exits at once with 130; the next command finishes the
//! step from its crash journal (the tree restored, the step logged
//! `failed`, reason `interrupted`).

use crate::error::Exit;
use crate::propose::provider::Cancel;
use crate::step::Report;

/// A cancellation flag that the first Ctrl-C (SIGINT) sets; every child
/// process run from now on stops when it is set.
pub fn cancel_on_ctrl_c() -> Cancel {
    let cancel = Cancel::default();
    let flag = cancel.flag();
    // Order matters: the conditional exit sees the flag as it was before
    // this signal, so it fires only on the second Ctrl-C.
    let _ = signal_hook::flag::register_conditional_shutdown(signal_hook::consts::SIGINT, 130, flag.clone());
    let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, flag.clone());
    crate::process::stop_on(flag);
    cancel
}

/// The exit for a command that ran `report`'s step: `exit` as it would
/// be, unless Ctrl-C was pressed; then one line on stderr and 130.
pub fn finish(ui: &crate::cli::Ui, report: &Report, exit: Exit) -> Exit {
    match interrupted(report) {
        Some((line, code)) => {
            ui.warn(line);
            code
        }
        None => exit,
    }
}

/// The one line said when Ctrl-C ended `report`'s step, and the exit
/// status; `None` when Ctrl-C was not pressed.
fn interrupted(report: &Report) -> Option<(String, Exit)> {
    if !crate::process::stopped() {
        return None;
    }
    let line = match (report.outcome, report.reason) {
        (_, Some(crate::record::Reason::Interrupted)) if report.pending.is_some() => {
            format!(
                "interrupted: {} still waits in {}",
                report.id,
                report.pending.as_deref().unwrap_or("logs/pending/")
            )
        }
        (_, Some(crate::record::Reason::Interrupted)) => format!(
            "interrupted: {} logged as skipped (interrupted); every child process ended and the tree is as it was",
            report.id
        ),
        (outcome, _) => format!("interrupted: {} had already ended {} when Ctrl-C came", report.id, outcome.word()),
    };
    Some((line, Exit::Interrupted))
}

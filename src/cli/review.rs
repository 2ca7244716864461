//! `ratchet review`: walk the pending proposals at the terminal.

use crate::cli::gate::{Narration, TerminalGate, describe};
use crate::cli::prompt::Terminal;
use crate::cli::step::session;
use crate::cli::{CommandResult, Env};
use crate::error::Exit;
use crate::record::Outcome;
use crate::step::{self, PendingState};
use crate::text::show;

/// Walk the pending proposals at a prompt, as `ratchet step` shows them.
///
/// For each: approve (with a score), reject, skip (leave pending) or quit.
/// Each is checked against the log and judged again against the current
/// tree before it is shown; one whose base moved is marked stale.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(env: &Env, _args: Args) -> CommandResult {
    let tty = Terminal::require("ratchet review", None)?;
    let mut s = session(env, "review")?;
    let waiting = step::waiting(&s)?;
    if waiting.is_empty() {
        env.ui.note("no pending proposals");
        return Ok(Exit::Ok);
    }
    crate::cli::interrupt::cancel_on_ctrl_c();
    let mut gate = TerminalGate { tty, ui: &env.ui, edit: false };
    let mut results = Vec::new();
    let mut exit = Exit::Ok;
    for (id, state) in waiting {
        match &state {
            PendingState::Tampered { why } => {
                gate.tty.say(&format!("\n{id}: {}; it will be logged as failed and quarantined\n", show(why)));
            }
            PendingState::Ready(v) if v.moved => {
                gate.tty.say(&format!(
                    "\n{id} is stale: HEAD moved since it was proposed; it is judged again against the current tree\n"
                ));
            }
            PendingState::Ready(_) => {}
        }
        // The agents API: a remote candidate's quorum, before the human decides.
        if let PendingState::Ready(v) = &state {
            let packet = v.packet().to_string();
            if let Some(q) = crate::cli::agent::quorum_of(&s.ws, &s.rails, &v.provider, &id, &packet) {
                gate.tty.say(&format!("\n{id}: remote candidate, {}\n", crate::cli::agent::quorum_line(&q)));
            }
        }
        let mut hook = crate::cli::agent::decision_hook;
        let report = match step::decide(&mut s, &id, &mut gate, 1.0, Some(&mut hook), &mut Narration::new(&env.ui)) {
            Ok(r) => r,
            Err(e) if matches!(crate::error::Coded::code(&e), "PENDING_TAMPERED" | "QUORUM_NOT_MET") => {
                env.ui.warn(format!("{id}: {}", show(&e.to_string())));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        exit = crate::cli::interrupt::finish(&env.ui, &report, Exit::Ok);
        if exit == Exit::Interrupted {
            results.push(crate::cli::gate::report_json(&report));
            break;
        }
        if report.outcome == Outcome::Pending {
            env.ui.note(format!("{id} stays pending"));
            if report.quit {
                break;
            }
            continue;
        }
        env.ui.data(describe(&env.ui, &report));
        results.push(crate::cli::gate::report_json(&report));
    }
    if env.ui.json() {
        env.ui.emit_json(&serde_json::Value::Array(results));
    }
    Ok(exit)
}

//! `ratchet review`: walk the pending proposals at the terminal.

use crate::cli::gate::{Narration, TerminalGate, describe};
use crate::cli::prompt::Terminal;
use crate::cli::step::session;
use crate::cli::{CommandResult, Env};
use crate::error::Exit;
use crate::step::{self, Decision};

/// Walk the pending proposals at a prompt, as `ratchet step` shows them.
///
/// For each: approve (with a score), reject, skip (leave pending) or quit.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(env: &Env, _args: Args) -> CommandResult {
    let tty = Terminal::require("ratchet review", None)?;
    let mut s = session(env, "review")?;
    let views = step::pending_views(&s)?;
    if views.is_empty() {
        env.ui.note("no pending proposals");
        return Ok(Exit::Ok);
    }
    let mut gate = TerminalGate { tty, ui: &env.ui };
    let mut results = Vec::new();
    for view in views {
        let id = view.pending.id.clone();
        if view.new.is_none() {
            gate.tty.say(&format!(
                "\n{id}: the patch no longer applies to the current tree; approving it re-runs Gate 1\n"
            ));
        }
        // The agents API: a remote candidate's quorum, before the human decides.
        let remote = crate::cli::agent::quorum_of(
            &s.ws,
            &s.rails,
            &view.pending.body.pick.provider,
            &id,
            view.pending.body.proposal.as_ref().map_or("", |p| p.packet.as_str()),
        );
        if let Some(q) = &remote {
            gate.tty.say(&format!("\n{id}: remote candidate, {}\n", crate::cli::agent::quorum_line(q)));
        }
        let decision = step::Gate2::decide(&mut gate, &view.review());
        let hook = |s: &mut crate::step::Session, approving| crate::cli::agent::gate2_hook(s, &id, approving);
        let report = match decision {
            Decision::Approve { score } => {
                if let Err(e) = hook(&mut s, true) {
                    env.ui.error(&e.0);
                    continue;
                }
                step::approve(&mut s, &id, score, &mut Narration::new(&env.ui))?
            }
            Decision::Reject { reason } => {
                hook(&mut s, false)?;
                step::reject(&mut s, &id, reason)?
            }
            Decision::Skip => {
                env.ui.note(format!("{id} stays pending"));
                continue;
            }
            Decision::Quit => break,
        };
        env.ui.data(describe(&env.ui, &report));
        results.push(crate::cli::gate::report_json(&report));
    }
    if env.ui.json() {
        env.ui.emit_json(&serde_json::Value::Array(results));
    }
    Ok(Exit::Ok)
}

//! `ratchet approve`: approve one pending proposal (an explicit human act).

use crate::cli::gate::{Narration, TerminalGate, describe, exit_for, report_json};
use crate::cli::prompt::Terminal;
use crate::cli::step::session;
use crate::cli::{CommandResult, Env};
use crate::step;

/// Approve a pending proposal and apply it: checks, commit, log.
///
/// A human act: it needs a terminal, and it shows what is being approved
/// (the same review screen as `ratchet step`: rationale, Gate 1's verdicts
/// run again against the current tree, the diff, the predicted utility)
/// and asks. The proposal must still be exactly the one the log recorded
/// (PENDING_TAMPERED otherwise); a whole-file replace of a file that
/// changed since is refused (STALE_PROPOSAL).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The proposal's id, as `ratchet step`, `propose` or `status` print it.
    id: String,
    /// The score offered as the default when you approve, in [0, 1].
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    score: f64,
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    let tty = Terminal::require("ratchet approve", None)?;
    let mut s = session(env, "approve")?;
    // A remote candidate whose bots have not reached quorum cannot be
    // approved: say so before showing it (the hook below checks again, on
    // what the human was shown).
    if let Some(st) = s.history()?.step(&args.id).filter(|st| st.outcome() == crate::record::Outcome::Pending) {
        let packet = st.body.proposal.as_ref().map(|p| p.packet.clone()).unwrap_or_default();
        if let Some(q) = crate::cli::agent::quorum_of(&s.ws, &s.rails, &st.pick.provider, &args.id, &packet) {
            if !q.met {
                return Err(crate::cli::agent::quorum_not_met(&args.id, q));
            }
        }
    }
    crate::cli::interrupt::cancel_on_ctrl_c();
    let mut gate = TerminalGate { tty, ui: &env.ui, edit: false };
    // The agents API: a remote candidate needs its quorum; the decision anchors the ledger.
    let mut hook = crate::cli::agent::decision_hook;
    let report = step::decide(&mut s, &args.id, &mut gate, args.score, Some(&mut hook), &mut Narration::new(&env.ui))?;
    if env.ui.json() {
        env.ui.emit_json(&report_json(&report));
    } else {
        env.ui.data(describe(&env.ui, &report));
    }
    Ok(crate::cli::interrupt::finish(&env.ui, &report, exit_for(&report)))
}

//! `ratchet approve`: approve one pending proposal (an explicit human act).

use crate::cli::gate::{Narration, describe, exit_for, report_json};
use crate::cli::prompt::Terminal;
use crate::cli::step::session;
use crate::cli::{CommandResult, Env};
use crate::step;

/// Approve a pending proposal and apply it: checks, commit, log.
///
/// A human act: it needs a terminal. When the tree moved since the proposal
/// was made, Gate 1 runs again against it, and a whole-file replace of a
/// changed file is refused (STALE_PROPOSAL).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The proposal's id, as `ratchet step`, `propose` or `status` print it.
    id: String,
    /// Your score for the patch, in [0, 1].
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    score: f64,
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    let _tty = Terminal::require("ratchet approve", None)?;
    let mut s = session(env, "approve")?;
    // The agents API: a remote candidate needs its quorum; the decision anchors the ledger.
    crate::cli::agent::gate2_hook(&mut s, &args.id, true)?;
    let report = step::approve(&mut s, &args.id, args.score, &mut Narration::new(&env.ui))?;
    if env.ui.json() {
        env.ui.emit_json(&report_json(&report));
    } else {
        env.ui.data(describe(&env.ui, &report));
    }
    Ok(exit_for(&report))
}

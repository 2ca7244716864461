//! `ratchet reject`: reject one pending proposal (an explicit human act).

use crate::cli::gate::{describe, report_json};
use crate::cli::prompt::Terminal;
use crate::cli::step::session;
use crate::cli::{CommandResult, Env};
use crate::error::Exit;
use crate::step;

/// Reject a pending proposal; it is logged and scored with human_score 0.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The proposal's id.
    id: String,
    /// Why, for the log.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    let _tty = Terminal::require("ratchet reject", None)?;
    let mut s = session(env, "reject")?;
    // The agents API: the decision on a remote candidate anchors the ledger.
    crate::cli::agent::gate2_hook(&mut s, &args.id, false)?;
    let report = step::reject(&mut s, &args.id, args.reason)?;
    if env.ui.json() {
        env.ui.emit_json(&report_json(&report));
    } else {
        env.ui.data(describe(&env.ui, &report));
    }
    Ok(Exit::Ok)
}

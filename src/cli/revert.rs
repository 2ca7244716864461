//! `ratchet revert`: revert a merged step through the loop's own rails.

use crate::cli::gate::Narration;
use crate::cli::step::session;
use crate::cli::{CommandResult, Env};
use crate::error::Exit;
use crate::step;

/// Revert a merged step's commit, through path safety and the checks.
///
/// Logged as an `amend` entry; within [utility] revert_window_hours the
/// step's utility is capped at revert_cap, and its provider drops a tier.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The step's id (s42).
    step: String,
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    let mut s = session(env, "revert")?;
    let r = step::revert(&mut s, &args.step, &mut Narration::new(&env.ui))?;
    if env.ui.json() {
        env.ui.emit_json(&serde_json::to_value(&r).expect("a revert report serialises"));
    } else {
        let cap = if r.capped {
            format!("utility capped {} → {} (reverted after {} h)", r.previous_utility, r.utility, r.hours)
        } else {
            format!("utility stays {} (reverted after {} h, outside the window)", r.utility, r.hours)
        };
        env.ui.data(format!("{} reverted by {} · {cap}", r.id, &r.commit[..12]));
    }
    Ok(Exit::Ok)
}

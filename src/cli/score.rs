//! `ratchet score`: the utility of a set of signals under the current rails.

use crate::cli::{CommandError, CommandResult, Env, Style};
use crate::error::Exit;
use crate::rails::Rails;
use crate::score::{Signals, Weights, utility};

/// Print the utility of a set of signals, term by term.
///
/// Weights come from config/rails.toml of the current workspace, or the
/// seed weights outside a workspace.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The six signals as JSON: {"ci_pass":1,"path_ok":1,"diff_ratio":0.1,"atomic_ok":1,"left_next_steps":1,"human_score":1}
    #[arg(long, value_name = "JSON")]
    signals: String,
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    let signals: Signals = serde_json::from_str(&args.signals).map_err(|e| {
        CommandError::new(
            "BAD_SIGNALS",
            format!("--signals is not a signals object: {e}"),
            "pass all six signals: ci_pass, path_ok, diff_ratio, atomic_ok, left_next_steps, human_score",
        )
    })?;
    signals.validate()?;
    let (weights, source) = match env.workspace() {
        Ok(ws) => (Rails::load(&ws)?.utility.weights, ws.rel("config/rails.toml")),
        Err(_) => (Weights::SEED, "seed weights (no workspace)".to_string()),
    };
    let u = utility(&signals, &weights);
    let terms = signals.terms(&weights);
    if env.ui.json() {
        env.ui.emit_json(&serde_json::json!({ "utility": u, "weights": weights, "terms": terms, "signals": signals, "source": source }));
        return Ok(Exit::Ok);
    }
    env.ui.data(format!("{:<16} {:>7} {:>7} {:>8}", "signal", "weight", "value", "term"));
    for t in &terms {
        env.ui.data(format!("{:<16} {:>7.3} {:>7.3} {:>8.4}", t.signal, t.weight, t.value, t.contribution));
    }
    env.ui.data(format!("{:<16} {:>24}", env.ui.paint(Style::Bold, "utility"), format!("{u}")));
    env.ui.note(format!("weights from {source}"));
    Ok(Exit::Ok)
}

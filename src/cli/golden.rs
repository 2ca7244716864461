//! `ratchet golden check`: the golden backtest under the current rails.

use crate::cli::{CommandError, CommandResult, Env, Style};
use crate::error::Exit;
use crate::golden;
use crate::rails::Rails;

/// Run the golden backtests in golden/*.json.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand, Debug)]
enum Sub {
    /// Score every golden case under the current rails; exit 1 when the order changed.
    ///
    /// Prints each case's expected and current rank, Kendall's tau over the
    /// ordered pairs, and every pair that flipped.
    Check,
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    let Sub::Check = args.command;
    let ws = env.workspace()?;
    let rails = Rails::load(&ws)?;
    let report = golden::check(&ws.golden_dir(), &ws.rel("golden/"), &rails)?;
    if env.ui.json() {
        env.ui.emit_json(&serde_json::to_value(&report).map_err(|e| {
            CommandError::new("INTERNAL", format!("cannot render the report: {e}"), "report this as a bug")
        })?);
    } else {
        for f in &report.files {
            env.ui.data(format!("{}  tau {:.3} over {} pairs", env.ui.paint(Style::Bold, &f.file), f.tau, f.pairs));
            env.ui.data(format!("  {:>8} {:>4} {:>8}  case", "expected", "now", "utility"));
            for c in &f.cases {
                env.ui.data(format!("  {:>8} {:>4} {:>8.4}  {}", c.expected_rank, c.actual_rank, c.utility, c.id));
            }
            for flip in &f.flips {
                let rel = if flip.tied { "now ties with" } else { "now ranks below" };
                env.ui.data(format!(
                    "  {} {} ({}) {rel} {} ({})",
                    env.ui.paint(Style::Red, "flipped:"),
                    flip.above,
                    flip.above_utility,
                    flip.below,
                    flip.below_utility
                ));
            }
        }
    }
    if report.ok {
        env.ui.note("golden order kept");
        Ok(Exit::Ok)
    } else {
        env.ui.note("golden order changed");
        Ok(Exit::Error)
    }
}

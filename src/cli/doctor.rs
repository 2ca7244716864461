//! `ratchet doctor`: whether this workspace will work, before the first step.

use crate::cli::{CommandResult, Env, Style};
use crate::doctor::{self, Options};
use crate::error::Exit;
use crate::text::show;

/// Check that the workspace will work: rails, intent, log, private state,
/// tree, the checks on cron's PATH, the sandbox, each provider, LoopKit.
///
/// Exits 0 when everything is ready, 1 with every problem listed with what
/// to do about it. Writes nothing.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also ask every enabled provider for a proposal against the current
    /// context (it runs as in a step, sandboxed; its answer is not kept).
    #[arg(long)]
    providers: bool,
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    let ws = env.workspace()?;
    let checks = doctor::examine(&ws, Options { ask_providers: args.providers });
    let ok = checks.iter().all(|c| c.ok);
    if env.ui.json() {
        env.ui.emit_json(&serde_json::json!({"ok": ok, "checks": checks}));
    } else {
        let ui = &env.ui;
        let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &checks {
            let mark = if c.ok { ui.paint(Style::Green, "ok  ") } else { ui.paint(Style::Red, "FAIL") };
            ui.data(format!("{mark} {:<width$}  {}", show(&c.name), show(&c.detail)));
            if let Some(h) = &c.hint {
                ui.data(format!("     {:<width$}  {} {}", "", ui.paint(Style::Cyan, "hint:"), h));
            }
        }
        let problems = checks.iter().filter(|c| !c.ok).count();
        ui.note(if ok {
            "ready: `ratchet step` (or `ratchet heartbeat` from cron) will work".to_string()
        } else {
            format!("{problems} problem{} to fix first", if problems == 1 { "" } else { "s" })
        });
    }
    Ok(if ok { Exit::Ok } else { Exit::Error })
}

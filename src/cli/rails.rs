//! `ratchet rails`: check, diff and accept the protected files.

use crate::cli::prompt::Terminal;
use crate::cli::{CommandError, CommandResult, Env, Style, diff};
use crate::error::Exit;
use crate::rails::{self, ChangeKind, LockError, accept};

/// Check, show and accept changes to the rails (config/, intents/, golden/, CODEOWNERS).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand, Debug)]
enum Sub {
    /// Check config/rails.toml parses and every protected file matches config/rails.lock.
    ///
    /// Exit 4 when a protected file differs from the lock; exit 1, with the
    /// line and the fix, when config/rails.toml does not parse or breaks a rule.
    Check,
    /// Show what changed since the rails were last accepted.
    Diff,
    /// Accept the protected files as they are now (a human act, at a terminal).
    ///
    /// Shows the diff, requires the approver's git identity to own the changed
    /// paths under CODEOWNERS, runs the golden backtest, then writes
    /// config/rails.lock and logs a `rails` entry.
    Accept,
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    match args.command {
        Sub::Check => check(env),
        Sub::Diff => show_diff(env),
        Sub::Accept => accept_now(env),
    }
}

fn check(env: &Env) -> CommandResult {
    let ws = env.workspace()?;
    let checked = rails::check(&ws);
    // A config/rails.toml that does not parse is reported as the parse
    // error (the line, the mark, the fix), after the list of what changed.
    if let Err(e) = rails::Rails::load(&ws) {
        let mut err = CommandError::from(e);
        if let Err(LockError::Tampered { changes }) = &checked {
            if !env.ui.json() {
                for c in changes {
                    env.ui.data(format!("{:<8} {}", c.kind.word(), c.path));
                }
            }
            err = err.with_details(serde_json::json!({ "changes": changes }));
        }
        return Err(err);
    }
    match checked {
        Ok(lock) => {
            if env.ui.json() {
                env.ui
                    .emit_json(&serde_json::json!({"ok": true, "version": lock.version(), "files": lock.files.len()}));
            } else {
                env.ui.data(format!(
                    "rails ok: version {} ({} protected files)",
                    &lock.version()[..12],
                    lock.files.len()
                ));
            }
            Ok(Exit::Ok)
        }
        Err(LockError::Tampered { changes }) => {
            if !env.ui.json() {
                for c in &changes {
                    env.ui.data(format!("{:<8} {}", c.kind.word(), c.path));
                }
            }
            let details = serde_json::json!({ "changes": changes });
            Err(CommandError::from(LockError::Tampered { changes }).with_details(details))
        }
        Err(e) => Err(e.into()),
    }
}

fn show_diff(env: &Env) -> CommandResult {
    let ws = env.workspace()?;
    let diffs = rails::diff_accepted(&ws)?;
    if env.ui.json() {
        let files: Vec<_> = diffs
            .iter()
            .map(|d| serde_json::json!({"path": d.change.path, "kind": d.change.kind, "old": d.old, "new": d.new}))
            .collect();
        env.ui.emit_json(&serde_json::json!({ "changes": files }));
        return Ok(Exit::Ok);
    }
    if diffs.is_empty() {
        env.ui.note("no changes since the rails were last accepted");
        return Ok(Exit::Ok);
    }
    for d in &diffs {
        let path = &d.change.path;
        match (&d.old, d.change.kind) {
            (None, ChangeKind::Changed | ChangeKind::Removed) => {
                env.ui.data(format!(
                    "{} {path}: the accepted copy is not available (only its checksum is)",
                    d.change.kind.word()
                ));
                if let Some(new) = &d.new {
                    env.ui.data_raw(&diff::unified(&env.ui, "", new, "/dev/null", &format!("b/{path}")));
                }
            }
            (old, _) => {
                let old_name = if old.is_some() { format!("a/{path}") } else { "/dev/null".into() };
                let new_name = if d.new.is_some() { format!("b/{path}") } else { "/dev/null".into() };
                let text = diff::unified(
                    &env.ui,
                    old.as_deref().unwrap_or(""),
                    d.new.as_deref().unwrap_or(""),
                    &old_name,
                    &new_name,
                );
                env.ui.data_raw(&text);
            }
        }
    }
    Ok(Exit::Ok)
}

fn accept_now(env: &Env) -> CommandResult {
    let ws = env.workspace()?;
    let mut tty = Terminal::require("ratchet rails accept", None)?;
    let _lock = crate::lock::WorkspaceLock::acquire(&ws, "rails accept")?;
    let plan = accept::plan(&ws)?;
    if plan.changes.is_empty() && !plan.previous.files.is_empty() {
        env.ui.note(format!(
            "nothing to accept: the rails match config/rails.lock (version {})",
            &plan.next.version()[..12]
        ));
        return Ok(Exit::Ok);
    }
    let repo = ws.repo()?;
    let who = repo.identity().ok_or(accept::AcceptError::NoIdentity)?;
    let handle = repo.config_string("github.user");
    accept::check_owners(&ws, &plan, &who, handle.as_deref())?;

    for d in rails::diff_accepted(&ws).unwrap_or_default() {
        let path = &d.change.path;
        tty.say(&diff::unified(
            &env.ui,
            d.old.as_deref().unwrap_or(""),
            d.new.as_deref().unwrap_or(""),
            &format!("a/{path}"),
            &format!("b/{path}"),
        ));
    }
    let summary = plan.changes.iter().map(|c| format!("{} {}", c.kind.word(), c.path)).collect::<Vec<_>>().join(", ");
    tty.say(&format!(
        "{} {summary}\ngolden backtest: order kept (tau {})\n",
        env.ui.paint(Style::Bold, "rails changes:"),
        plan.golden.files.iter().map(|f| f.tau).fold(1.0_f64, f64::min)
    ));
    if !tty.confirm(&format!("Accept these rails as {}?", who.display())) {
        env.ui.note("not accepted; nothing changed");
        return Ok(Exit::Ok);
    }
    let seq = accept::commit(&ws, &plan, who.display())?;
    if env.ui.json() {
        env.ui.emit_json(
            &serde_json::json!({"ok": true, "version": plan.next.version(), "changes": plan.changes, "seq": seq}),
        );
    } else {
        env.ui.data(format!("accepted rails version {} ({} changes)", &plan.next.version()[..12], plan.changes.len()));
        let mut files: Vec<String> = plan.changes.iter().map(|c| c.path.clone()).collect();
        files.push(ws.rel("config/rails.lock"));
        crate::cli::init::commit_note(env, &files, &format!("ratchet: accept rails {}", &plan.next.version()[..12]));
    }
    Ok(Exit::Ok)
}

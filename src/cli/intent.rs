//! `ratchet intent`: show and set what the loop is for.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use crate::cli::prompt::Terminal;
use crate::cli::{CommandError, CommandResult, Env, diff};
use crate::error::Exit;
use crate::{intent, rails};

/// Show or set the current intent (intents/<name>.md, named by intents/CURRENT).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand, Debug)]
enum Sub {
    /// Print the current intent: name, blake3 hash and text.
    Show,
    /// Set a new intent version and make it current (a human act).
    ///
    /// The text comes from --file, or from stdin. The change is hashed,
    /// made current, locked in config/rails.lock and logged as an `intent`
    /// entry. At a terminal it asks for confirmation; without one it
    /// refuses unless --yes is given explicitly.
    Set {
        /// The intent's name: letters, digits, '-' and '_'.
        name: String,
        /// Read the text from FILE instead of stdin.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Confirm explicitly, without a terminal prompt.
        #[arg(long)]
        yes: bool,
    },
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    match args.command {
        Sub::Show => show(env),
        Sub::Set { name, file, yes } => set(env, &name, file, yes),
    }
}

fn show(env: &Env) -> CommandResult {
    let ws = env.workspace()?;
    let i = intent::current(&ws)?;
    if env.ui.json() {
        env.ui.emit_json(&serde_json::json!({"name": i.name, "hash": i.hash, "text": i.text}));
    } else {
        env.ui.note(format!("intent {} ({})", i.name, i.hash));
        env.ui.data_raw(&i.text);
    }
    Ok(Exit::Ok)
}

fn set(env: &Env, name: &str, file: Option<PathBuf>, yes: bool) -> CommandResult {
    let ws = env.workspace()?;
    if !intent::valid_name(name) {
        return Err(intent::IntentError::BadName { name: name.to_string() }.into());
    }
    let text = match &file {
        Some(path) => std::fs::read_to_string(env.cwd.join(path)).map_err(|e| {
            CommandError::new("IO_ERROR", format!("cannot read {}: {e}", path.display()), "pass a readable UTF-8 file")
        })?,
        None => {
            if std::io::stdin().is_terminal() {
                return Err(CommandError::new(
                    "NO_INTENT_TEXT",
                    "no intent text: pass --file FILE or pipe the text on stdin",
                    "run `ratchet intent set NAME --file intent.md`",
                ));
            }
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| {
                CommandError::new("IO_ERROR", format!("cannot read stdin: {e}"), "pipe UTF-8 text, or use --file")
            })?;
            text
        }
    };
    if text.trim().is_empty() {
        return Err(intent::IntentError::Empty.into());
    }
    let _lock = crate::lock::WorkspaceLock::acquire(&ws, "intent set")?;
    // Locking the new intent must not launder other, unreviewed rail changes.
    rails::check(&ws)?;
    let previous = intent::current(&ws).ok();
    if previous.as_ref().is_some_and(|p| p.name == name && p.text == text) {
        env.ui.note(format!("intent {name} is already current with this text; nothing changed"));
        return Ok(Exit::Ok);
    }
    if !yes {
        let mut tty = Terminal::require("ratchet intent set", Some("--yes"))?;
        let old = previous.as_ref().map(|p| p.text.as_str()).unwrap_or("");
        let old_name = previous.as_ref().map(|p| format!("a/intents/{}.md", p.name)).unwrap_or("/dev/null".into());
        tty.say(&diff::unified(&env.ui, old, &text, &old_name, &format!("b/intents/{name}.md")));
        if !tty.confirm(&format!("Make {name} the current intent?")) {
            env.ui.note("not set; nothing changed");
            return Ok(Exit::Ok);
        }
    }
    let by = ws.repo().ok().and_then(|r| r.identity()).map(|i| i.display().to_string());
    let set = intent::set(&ws, name, &text, by, if yes { "--yes" } else { "terminal" })?;
    let (new, seq) = (set.intent, set.seq);
    let lock_version = set.rails;
    if env.ui.json() {
        env.ui.emit_json(&serde_json::json!({"name": new.name, "hash": new.hash, "rails": lock_version, "seq": seq}));
    } else {
        env.ui.data(format!("intent {} is current ({})", new.name, new.hash));
        let files =
            [format!("intents/{}.md", new.name), "intents/CURRENT".to_string(), "config/rails.lock".to_string()]
                .map(|f| ws.rel(&f));
        crate::cli::init::commit_note(env, &files, &format!("ratchet: intent {}", new.name));
    }
    Ok(Exit::Ok)
}

//! `ratchet init`: make the current git repository a ratchet workspace.

use std::path::PathBuf;

use crate::cli::{CommandResult, Env, Style};
use crate::error::Exit;
use crate::workspace::Workspace;
use crate::{init, intent};

/// Make this git repository a ratchet workspace.
///
/// Writes config/rails.toml (with the checks command guessed from the
/// repository), config/rails.lock, intents/, golden/ and logs/, and adds
/// ratchet's local state to .gitignore. Existing files are never
/// overwritten; running it again changes nothing.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Put ratchet's files in this folder of the repository (for repositories
    /// that already use config/ or logs/), e.g. .ratchet-home
    #[arg(long, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Add a tested provider block for this coding agent to the rails
    /// (see docs/providers.md)
    #[arg(long, value_name = "AGENT", value_parser = clap::builder::PossibleValuesParser::new(init::Recipe::NAMES))]
    provider: Option<String>,
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    let ws = Workspace::planned(&env.cwd, args.home.as_deref())?;
    // The repository's own config/, logs/...: ratchet's files would sit among them.
    if !ws.rails_toml().exists() {
        let taken: Vec<String> = ["config", "intents", "golden", "logs"]
            .into_iter()
            .filter(|d| ws.home().join(d).exists())
            .map(|d| format!("{}/", ws.rel(d)))
            .collect();
        if !taken.is_empty() {
            env.ui.warn(format!(
                "{} already exist{} in this repository; ratchet's files go beside yours there (nothing is overwritten). \
                 To keep them apart, undo this and run `ratchet init --home .ratchet-home`",
                taken.join(", "),
                if taken.len() == 1 { "s" } else { "" }
            ));
        }
    }
    let recipe = args.provider.as_deref().and_then(init::Recipe::parse);
    let report = init::init_with(&ws, recipe)?;
    let intent = intent::current(&ws)?;
    let seq = init::record(&ws, &report)?;
    if env.ui.json() {
        env.ui.emit_json(&serde_json::json!({
            "root": ws.root(),
            "home": ws.home_rel(),
            "created": report.created,
            "ignored": report.ignored,
            "checks": report.checks,
            "rails": report.rails,
            "intent": intent.hash,
            "seq": seq,
            "changed": !report.changed_nothing(),
        }));
        return Ok(Exit::Ok);
    }
    if report.provider_skipped {
        env.ui.note(format!(
            "{} exists, so no provider block was added: copy it from docs/providers.md",
            ws.rel("config/rails.toml")
        ));
    }
    if report.changed_nothing() {
        env.ui.data(format!(
            "already initialised: {} is a ratchet workspace (rails {}); nothing changed",
            ws.home().display(),
            &report.rails[..12]
        ));
        return Ok(Exit::Ok);
    }
    env.ui.data(format!("initialised a ratchet workspace in {}", ws.home().display()));
    for path in &report.created {
        env.ui.data(format!("  {} {path}", env.ui.paint(Style::Green, "created")));
    }
    if !report.ignored.is_empty() {
        env.ui.data(format!("  {} .gitignore ({})", env.ui.paint(Style::Green, "updated"), report.ignored.join(" ")));
    }
    if let Some(checks) = &report.checks {
        env.ui.data(format!("  checks  {checks}"));
        if checks == "true" {
            env.ui.warn(format!(
                "{} no test runner found (Cargo.toml, package.json, pyproject.toml...): the checks are `true`, \
                 so every patch \"passes\". Set [checks] command in {} to your tests, then run `ratchet rails accept`",
                env.ui.paint(Style::Red, "NO CHECKS:"),
                ws.rel("config/rails.toml")
            ));
        }
    }
    env.ui.data(format!("  rails   {}", &report.rails[..12]));
    env.ui.data(format!("  intent  {} ({})", intent.name, &intent.hash[..12]));
    let tracked = ["config", "intents", "golden", "logs/README.md"].map(|p| ws.rel(p)).join(" ");
    env.ui.note(format!(
        "next: review {}, then `git add {tracked} .gitignore && git commit`",
        ws.rel("config/rails.toml")
    ));
    Ok(Exit::Ok)
}

/// Says which tracked files a command changed, and the command that commits them.
pub fn commit_note(env: &Env, files: &[String], message: &str) {
    env.ui.note(format!(
        "changed {}; they are tracked like your code, so commit them: git add {} && git commit -m '{message}'",
        files.join(", "),
        files.join(" ")
    ));
}

//! `ratchet init`: turn a git repository into a workspace (DESIGN §2).
//!
//! Writes the template (this repository's own `config/rails.toml`,
//! `intents/`, `golden/` and `logs/README.md`, compiled in), guesses the
//! checks command from the repository, locks the rails and ignores local
//! state. It never overwrites a file: re-running it on a workspace changes
//! nothing and says so.

use std::path::Path;

use crate::error::{Coded, IoContext, IoError};
use crate::rails::{self, Lock, LockError};
use crate::workspace::Workspace;

/// The files of the template, home-relative, with their contents.
pub const RAILS_TEMPLATE: &str = include_str!("../config/rails.toml");
pub const TEMPLATE_FILES: [(&str, &str); 5] = [
    ("intents/CURRENT", include_str!("../intents/CURRENT")),
    ("intents/bootstrap.md", include_str!("../intents/bootstrap.md")),
    ("golden/proposals.json", include_str!("../golden/proposals.json")),
    ("golden/starter.json", include_str!("../golden/starter.json")),
    ("logs/README.md", include_str!("../logs/README.md")),
];

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{path} exists but is not a directory")]
    NotADirectory { path: String },
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
}

impl Coded for InitError {
    fn code(&self) -> &'static str {
        match self {
            InitError::Io(e) => e.code(),
            InitError::Lock(e) => e.code(),
            InitError::NotADirectory { .. } => "INIT_CONFLICT",
            InitError::Journal(e) => e.code(),
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            InitError::Io(e) => e.hint(),
            InitError::Lock(e) => e.hint(),
            InitError::Journal(e) => e.hint(),
            InitError::NotADirectory { .. } => Some(
                "move it aside, or put ratchet's files in a sub-folder with `ratchet init --home .ratchet-home`".into(),
            ),
        }
    }
}

/// A provider block `ratchet init --provider NAME` adds to the rails it
/// writes: a tested recipe for a coding agent (docs/providers.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipe {
    Claude,
    Codex,
    Aider,
    Gptme,
    Script,
}

impl Recipe {
    pub const NAMES: [&'static str; 5] = ["claude", "codex", "aider", "gptme", "script"];

    pub fn parse(name: &str) -> Option<Recipe> {
        Some(match name {
            "claude" => Recipe::Claude,
            "codex" => Recipe::Codex,
            "aider" => Recipe::Aider,
            "gptme" => Recipe::Gptme,
            "script" => Recipe::Script,
            _ => return None,
        })
    }

    /// The `[providers.NAME]` block, with comments.
    pub fn block(self) -> &'static str {
        match self {
            Recipe::Claude => CLAUDE,
            Recipe::Codex => CODEX,
            Recipe::Aider => AIDER,
            Recipe::Gptme => GPTME,
            Recipe::Script => SCRIPT,
        }
    }

    /// Lines `.gitignore` needs so that the agent's own files in its scratch
    /// place are dropped rather than proposed.
    pub fn ignores(self) -> &'static [&'static str] {
        match self {
            Recipe::Aider => &[".aider*"],
            _ => &[],
        }
    }
}

const CLAUDE: &str = r#"
# Claude Code (npm install -g @anthropic-ai/claude-code), headless: -p runs one
# task and exits; --output-format json gives ratchet the final message and
# the cost. It runs in a scratch copy of this tree with a fresh HOME, so it
# authenticates by ANTHROPIC_API_KEY. Edits are accepted without asking.
[providers.claude]
kind = "agent"
command = ["claude", "-p", "{task}", "--output-format", "json", "--permission-mode", "acceptEdits", "--allowedTools", "Read,Edit,Write,Glob,Grep,Bash(git diff:*)"]
network = true
env = ["ANTHROPIC_API_KEY"]
timeout_s = 900
max_usd_per_day = 5.0
"#;

const CODEX: &str = r#"
# Codex CLI (npm install -g @openai/codex), non-interactive: `codex exec`
# runs one task and exits; --json prints events (the last agent message and
# the token usage are read from them). --full-auto lets it write in its
# working directory, the scratch copy ratchet gives it.
[providers.codex]
kind = "agent"
command = ["codex", "exec", "--json", "--full-auto", "{task}"]
network = true
env = ["CODEX_API_KEY", "OPENAI_API_KEY"]
timeout_s = 900
max_calls_per_day = 50
"#;

const AIDER: &str = r#"
# aider (python -m pip install aider-install && aider-install), scripted:
# --message runs one instruction and exits. Its chat history goes to the
# sandbox's private /tmp; `.aider*` is git-ignored so its caches are dropped.
[providers.aider]
kind = "agent"
command = ["aider", "--message", "{task}", "--yes-always", "--no-auto-commits", "--no-gitignore", "--no-check-update", "--no-analytics", "--chat-history-file", "/tmp/aider.chat.history.md", "--input-history-file", "/tmp/aider.input.history"]
network = true
env = ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"]
timeout_s = 900
max_calls_per_day = 50
"#;

const GPTME: &str = r#"
# gptme (pipx install gptme), non-interactive: runs the prompt, confirms its
# own tool calls (--no-confirm) and exits.
[providers.gptme]
kind = "agent"
command = ["gptme", "--non-interactive", "--no-confirm", "{task}"]
network = true
env = ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"]
timeout_s = 900
max_calls_per_day = 50
"#;

const SCRIPT: &str = r#"
# A plain script of your own: it reads the context JSON on stdin and prints
# one proposal JSON on stdout (one fenced or embedded in prose is accepted).
[providers.script]
kind = "command"
command = ["./scripts/propose.sh"]
timeout_s = 300
"#;

/// What `init` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    /// Repository-relative paths written.
    pub created: Vec<String>,
    /// The checks command written into the new rails (when they were written).
    pub checks: Option<String>,
    /// Lines added to `.gitignore`.
    pub ignored: Vec<String>,
    /// The rails version now locked.
    pub rails: String,
    /// `--provider` was given but the rails existed, so no block was added.
    pub provider_skipped: bool,
}

impl Report {
    pub fn changed_nothing(&self) -> bool {
        self.created.is_empty() && self.ignored.is_empty()
    }
}

/// Logs a `rails` entry for what `init` did (the rails version every later
/// step runs under), unless it changed nothing in a workspace that already
/// has a log. Returns the entry's seq.
pub fn record(ws: &Workspace, report: &Report) -> Result<Option<u64>, InitError> {
    if report.changed_nothing() && crate::journal::exists(ws) {
        return Ok(None);
    }
    let intent = crate::intent::current(ws).ok();
    let body = crate::record::RailsBody {
        reason: crate::record::RailsReason::Init,
        rails: report.rails.clone(),
        previous: None,
        changes: Vec::new(),
        by: None,
        intent: intent.as_ref().map(|i| i.hash.clone()),
        intent_name: intent.map(|i| i.name),
        workspace: Some(ws.id()),
        checks: report.checks.clone(),
        golden: Vec::new(),
        granted_tiers: crate::rails::Rails::load(ws).map(|r| r.trust.granted_names()).unwrap_or_default(),
    };
    let mut journal = crate::journal::Journal::open(ws)?;
    Ok(Some(journal.append(None, &body, ())?.seq))
}

/// The checks command for a repository: its test runner, or `true`.
pub fn guess_checks(root: &Path) -> (&'static str, bool) {
    if root.join("Cargo.toml").is_file() {
        ("cargo test", true)
    } else if root.join("package.json").is_file() {
        ("npm test", true)
    } else if root.join("pyproject.toml").is_file() {
        ("pytest", true)
    } else {
        ("true", false)
    }
}

/// The template rails with `[checks] command` set for `root`.
pub fn rails_text(root: &Path) -> (String, String) {
    let (command, found) = guess_checks(root);
    let mut out = String::with_capacity(RAILS_TEMPLATE.len() + 128);
    let mut in_checks = false;
    for line in RAILS_TEMPLATE.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            in_checks = trimmed.starts_with("[checks]");
        }
        if in_checks && trimmed.starts_with("command =") {
            if !found {
                out.push_str(
                    "# No test runner was found (Cargo.toml, package.json, pyproject.toml): set your checks here.\n",
                );
            }
            out.push_str(&format!("command = {}\n", serde_json::to_string(command).expect("a string serialises")));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    (out, command.to_string())
}

/// Creates whatever the workspace lacks.
pub fn init(ws: &Workspace) -> Result<Report, InitError> {
    init_with(ws, None)
}

/// [`init`], adding `recipe`'s provider block to the rails it writes (an
/// existing `config/rails.toml` is never touched: `provider_skipped` says so).
pub fn init_with(ws: &Workspace, recipe: Option<Recipe>) -> Result<Report, InitError> {
    let mut report = Report::default();
    let home = ws.home();
    for dir in ["config", "intents", "golden", "logs"] {
        let p = home.join(dir);
        if p.exists() && !p.is_dir() {
            return Err(InitError::NotADirectory { path: ws.rel(dir) });
        }
    }
    let rails_path = ws.rails_toml();
    report.provider_skipped = recipe.is_some() && rails_path.exists();
    if !rails_path.exists() {
        let (mut text, checks) = rails_text(ws.root());
        if let Some(r) = recipe {
            text.push_str(r.block());
        }
        write_new(&rails_path, &text)?;
        report.created.push(ws.rel("config/rails.toml"));
        report.checks = Some(checks);
    }
    // An existing intent choice is kept whole: no second intent is added.
    let has_intent = ws.intents_dir().join("CURRENT").exists();
    for (rel, text) in TEMPLATE_FILES {
        if rel.starts_with("intents/") && has_intent {
            continue;
        }
        let path = home.join(rel);
        if !path.exists() {
            write_new(&path, text)?;
            report.created.push(ws.rel(rel));
        }
    }
    let state = ws.state_dir();
    std::fs::create_dir_all(&state).io("create", &state)?;

    report.ignored = ignore_local_state(ws, recipe.map_or(&[][..], Recipe::ignores))?;

    match Lock::load(ws) {
        Ok(lock) => report.rails = lock.version(),
        Err(LockError::Missing { .. }) => {
            let lock = rails::compute(ws)?;
            lock.store(ws)?;
            rails::store_accepted(ws)?;
            report.created.push(ws.rel("config/rails.lock"));
            report.rails = lock.version();
        }
        Err(e) => return Err(e.into()),
    }
    Ok(report)
}

fn write_new(path: &Path, text: &str) -> Result<(), IoError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).io("create", parent)?;
    }
    crate::fsutil::write_file(path, text.as_bytes(), crate::fsutil::Durability::Full).io("write", path)
}

/// Adds the local-state lines to the repository's `.gitignore`.
fn ignore_local_state(ws: &Workspace, more: &[&str]) -> Result<Vec<String>, IoError> {
    let prefix = if ws.home_rel().is_empty() { String::new() } else { format!("/{}", ws.home_rel()) };
    let mut wanted =
        vec![format!("{prefix}/.ratchet/"), format!("{prefix}/logs/*"), format!("!{prefix}/logs/README.md")];
    wanted.extend(more.iter().map(|m| m.to_string()));
    let path = ws.root().join(".gitignore");
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(IoError::new("read", path, e)),
    };
    let have: Vec<&str> = existing.lines().map(str::trim).collect();
    let missing: Vec<String> = wanted.iter().filter(|w| !have.contains(&w.as_str())).cloned().collect();
    if missing.is_empty() {
        return Ok(missing);
    }
    let mut text = existing.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# ratchet: local state (the step log is one per clone)\n");
    for line in &missing {
        text.push_str(line);
        text.push('\n');
    }
    crate::fsutil::write_file(&path, text.as_bytes(), crate::fsutil::Durability::Full).io("write", &path)?;
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_recipe_keeps_the_template_valid() {
        let dir = tempfile::tempdir().unwrap();
        for name in Recipe::NAMES {
            let recipe = Recipe::parse(name).unwrap();
            let (text, _) = rails_text(dir.path());
            let rails = crate::rails::parse(&(text + recipe.block()), "").unwrap_or_else(|e| panic!("{name}: {e}"));
            let kind = rails.providers[name].kind.name();
            assert_eq!(kind, if name == "script" { "command" } else { "agent" }, "{name}");
        }
        assert_eq!(Recipe::parse("goose"), None);
    }

    #[test]
    fn the_checks_command_is_guessed_and_the_rails_stay_valid() {
        let dir = tempfile::tempdir().unwrap();
        let (text, checks) = rails_text(dir.path());
        assert_eq!(checks, "true");
        assert!(text.contains("# No test runner was found"));
        let rails = crate::rails::parse(&text, "").unwrap();
        assert_eq!(rails.checks.command, "true");
        for (file, expect) in [("package.json", "npm test"), ("pyproject.toml", "pytest"), ("Cargo.toml", "cargo test")]
        {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(file), "").unwrap();
            let (text, checks) = rails_text(dir.path());
            assert_eq!(checks, expect);
            assert_eq!(crate::rails::parse(&text, "").unwrap().checks.command, expect);
        }
    }
}

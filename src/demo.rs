//! `ratchet demo`: a small sample repository, set up to show the whole loop.
//!
//! The sample has docs, a little code, a check script and a scripted agent
//! (`scripts/agent.sh`, the `self` provider) whose answers walk through the
//! outcomes a step can have: merged, rejected by Gate 1 (a protected path,
//! a locked tier), failed checks (the tree restored), and pending for a
//! human. Its rails differ from the template in one way only: auto-merge is
//! enabled for `docs/**`, so the demo can merge without a terminal.

use std::path::Path;

use crate::error::{IoContext, IoError};
use crate::git::{GitError, Identity, Repo};

pub const AGENT: &str = r##"#!/bin/sh
# The demo's scripted agent (the `self` provider): it reads the context JSON
# on stdin and answers with the proposal of a fixed script for this step.
# It keeps no state of its own (an agent may not write outside its patch):
# the step's id says which answer is due (s1 is `ratchet init`'s entry).
cat > /dev/null
n=$(( ${RATCHET_STEP_ID#s} - 1 ))
case "$n" in
1) cat <<'JSON'
{"rationale": "The guide never says how to start. Add a quick start, the first thing a new user looks for.",
 "patch": {"op": "append", "path": "docs/guide.md", "content": "\n## Quick start\n\nRun `ratchet step` at a terminal, approve the patch, and see it in `ratchet log`.\n"},
 "next_steps": ["Document how to review pending proposals"],
 "focus": "intent"}
JSON
;;
2) cat <<'JSON'
{"rationale": "Patches keep hitting the line budget; raise it.",
 "patch": {"op": "replace", "path": "config/rails.toml", "old": "max_lines = 120", "new": "max_lines = 5000"},
 "next_steps": []}
JSON
;;
3) cat <<'JSON'
{"rationale": "Mark the unfinished section.",
 "patch": {"op": "append", "path": "docs/guide.md", "content": "\nBROKEN: this section is unfinished.\n"},
 "next_steps": ["Finish the section"]}
JSON
;;
4) cat <<'JSON'
{"rationale": "Make greet() shout.",
 "patch": {"op": "replace", "path": "src/lib.rs", "old": "Hello", "new": "HELLO"},
 "next_steps": []}
JSON
;;
5) cat <<'JSON'
{"rationale": "Answer the questions new users ask most, in one FAQ page.",
 "patch": {"op": "create", "path": "docs/faq.md", "content": "# FAQ\n\n## Can an agent change the rails?\n\nNo. config/, intents/, golden/ and logs/ are protected; a patch to them is rejected by Gate 1.\n\n## What if the checks fail?\n\nThe file is restored byte for byte and the step is logged as failed.\n\n## Who merges?\n\nA human, at the prompt. Auto-merge is a narrow opt-in.\n\n## How do I see what happened?\n\n`ratchet log`, and `ratchet log verify` to check the hash chain.\n\n## Can I undo a merge?\n\n`ratchet revert` reverts it through the same rails, and the step's utility is capped.\n\n## What runs when nobody is around?\n\n`ratchet heartbeat` from cron: it never prompts, and merges only what auto-merge allows.\n"},
 "next_steps": ["Link the FAQ from the README"]}
JSON
;;
*) echo '{"noop": "the demo script has nothing more to propose"}' ;;
esac
"##;

pub const CHECK: &str = r#"#!/bin/sh
# The demo's checks: the docs may not carry a BROKEN marker.
if grep -rn "BROKEN" docs; then
  echo "checks failed: docs carry a BROKEN marker" >&2
  exit 1
fi
echo "checks passed"
"#;

const FILES: [(&str, &str); 4] = [
    ("README.md", "# greeter\n\nA tiny library that greets people.\n"),
    ("docs/guide.md", "# Guide\n\n`greet(name)` returns a greeting for `name`.\n"),
    ("src/lib.rs", "pub fn greet(name: &str) -> String {\n    format!(\"Hello, {name}!\")\n}\n"),
    (".gitignore", "/target\n"),
];

/// The identity the demo commits as.
pub fn identity() -> Identity {
    Identity { name: "ratchet demo".into(), email: "demo@ratchet.invalid".into() }
}

/// Writes the sample repository into `dir` (which must be empty or absent)
/// and commits it.
pub fn scaffold(dir: &Path) -> Result<Repo, DemoError> {
    if dir.exists() && std::fs::read_dir(dir).io("list", dir)?.next().is_some() {
        return Err(DemoError::NotEmpty { dir: dir.display().to_string() });
    }
    std::fs::create_dir_all(dir).io("create", dir)?;
    for (rel, text) in FILES.iter().chain([("scripts/agent.sh", AGENT), ("scripts/check.sh", CHECK)].iter()) {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).io("create", parent)?;
        }
        std::fs::write(&path, text).io("write", &path)?;
        if rel.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).io("chmod", &path)?;
        }
    }
    let repo = Repo::init(dir, &identity())?;
    repo.commit_all("greeter: first version", &identity(), crate::clock::now())?;
    Ok(repo)
}

/// The demo's rails: the template with auto-merge enabled for docs, the
/// demo's check script, and `[loopkit]` pointing at the demo's server.
pub fn rails_text(template: &str, loopkit: Option<&str>) -> String {
    let mut out = String::new();
    let mut section = String::new();
    for line in template.lines() {
        let t = line.trim_start();
        if t.starts_with('[') {
            section = t.to_string();
        }
        let line = if section.starts_with("[gate.auto_merge]") && t.starts_with("enabled =") {
            "enabled = true                  # the demo only: merges docs without a terminal".to_string()
        } else if section.starts_with("[gate.auto_merge]") && t.starts_with("max_lines =") {
            "max_lines = 20".to_string()
        } else if section.starts_with("[checks]") && t.starts_with("command =") {
            "command = \"sh scripts/check.sh\"".to_string()
        } else if section.starts_with("[loopkit]") && t.starts_with("url =") {
            match loopkit {
                Some(url) => format!("url = {url:?}"),
                None => continue,
            }
        } else if (section.starts_with("[loopkit]") && loopkit.is_none()) || t.starts_with("# No test runner") {
            continue;
        } else {
            line.to_string()
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{dir} is not empty")]
    NotEmpty { dir: String },
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Git(#[from] GitError),
}

impl crate::error::Coded for DemoError {
    fn code(&self) -> &'static str {
        match self {
            DemoError::NotEmpty { .. } => "DEMO_DIR_NOT_EMPTY",
            DemoError::Io(e) => e.code(),
            DemoError::Git(e) => e.code(),
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            DemoError::NotEmpty { .. } => Some("pass a new directory: `ratchet demo /tmp/ratchet-demo`".into()),
            DemoError::Io(e) => e.hint(),
            DemoError::Git(e) => e.hint(),
        }
    }
}

/// Spans of the sample app failing the same way a few times: what the demo's
/// server clusters into its first pain (OTLP/JSON).
pub fn failing_spans(now_ns: u128) -> serde_json::Value {
    let spans: Vec<serde_json::Value> = (0..6u128)
        .map(|i| {
            let t = now_ns - (60 - i * 5) * 1_000_000_000;
            serde_json::json!({
                "traceId": format!("{:032x}", 0xdead_0000 + i), "spanId": format!("{:016x}", 0xbeef_0000 + i),
                "name": "GET /greet", "kind": 2,
                "startTimeUnixNano": t.to_string(), "endTimeUnixNano": (t + 3_000_000).to_string(),
                "attributes": [{"key": "http.route", "value": {"stringValue": "/greet"}}],
                "status": {"code": 2, "message": "greet failed"},
                "events": [{"name": "exception", "timeUnixNano": t.to_string(), "attributes": [
                    {"key": "exception.type", "value": {"stringValue": "EmptyName"}},
                    {"key": "exception.message", "value": {"stringValue": format!("greet() called with an empty name (request {i})")}}]}]
            })
        })
        .collect();
    serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "greeter"}}]},
        "scopeSpans": [{"spans": spans}]}]})
}

//! Fixtures shared by the integration tests: a real git repository in a
//! temporary directory with a minimal `config/rails.toml`, its own state
//! directory (never the real home), and a pinned clock for the CLI.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ratchet::journal::line::{self, Header};
use ratchet::journal::{Checkpoint, Journal, JournalPaths, Kind};
use ratchet::workspace::Workspace;
use serde_json::{Map, Value, json};

pub const NOW: &str = "2026-11-21T19:00:00Z";

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub xdg: PathBuf,
    pub ws: Workspace,
}

/// A git repository with `config/rails.toml` and a private state directory.
pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("a temp dir");
    let root = dir.path().join("repo");
    std::fs::create_dir_all(root.join("config")).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    std::fs::write(root.join("config/rails.toml"), "[paths]\nallow = [\"docs/**\"]\n").unwrap();
    let root = root.canonicalize().unwrap();
    let xdg = dir.path().join("state");
    let ws = Workspace::at(root.clone(), "");
    Fixture { dir, root, xdg, ws }
}

impl Fixture {
    pub fn paths(&self) -> JournalPaths {
        JournalPaths::with_state_home(&self.ws, Some(&self.xdg))
    }

    pub fn open(&self) -> Journal {
        Journal::open_at(self.paths()).expect("the journal opens")
    }

    pub fn log(&self) -> PathBuf {
        self.ws.steps_log()
    }

    pub fn read_log(&self) -> Vec<u8> {
        std::fs::read(self.log()).unwrap()
    }

    /// Writes an `n`-entry log with fixed times (so hashes are stable across
    /// runs) through the same encoder as `append`, and its checkpoints.
    pub fn write_fixed_log(&self, n: u64) {
        let paths = self.paths();
        std::fs::create_dir_all(paths.log.parent().unwrap()).unwrap();
        let mut bytes = Vec::new();
        let mut prev = line::ZERO;
        for seq in 1..=n {
            let id = format!("s{seq}");
            let ts = format!("2026-11-21T18:{:02}:00Z", seq % 60);
            let kind = if seq == 1 { Kind::Intent } else { Kind::Step };
            let body = if seq == 1 {
                obj(
                    json!({"name": "docs-first", "intent": "0".repeat(64), "rails": "1".repeat(64), "confirmed": "terminal"}),
                )
            } else {
                step_body(seq)
            };
            let e = line::encode(&Header { seq, id: &id, ts: &ts, kind, prev }, &body);
            bytes.extend_from_slice(&e.bytes);
            prev = e.hash;
        }
        std::fs::write(&paths.log, &bytes).unwrap();
        let cp = Checkpoint { seq: n, size: bytes.len() as u64, head: prev };
        for place in &paths.checkpoints {
            cp.write(&place.path, None).unwrap();
        }
    }

    /// The two checkpoint files.
    pub fn checkpoint_files(&self) -> Vec<PathBuf> {
        self.paths().checkpoints.iter().map(|p| p.path.clone()).collect()
    }

    /// `ratchet` in this repository with a hermetic environment.
    pub fn ratchet(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("ratchet").unwrap();
        cmd.current_dir(&self.root)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_STATE_HOME", &self.xdg)
            .env("RATCHET_NOW", NOW)
            .env("NO_COLOR", "1")
            .env("GIT_CONFIG_NOSYSTEM", "1");
        cmd
    }

    /// Commits an empty change with `message` (trailers included).
    pub fn commit(&self, message: &str) {
        git(&self.root, &["commit", "-q", "--allow-empty", "-m", message]);
    }
}

/// git with the fixture's identity (Alice).
pub fn git(dir: &Path, args: &[&str]) {
    let mut full = vec!["-c", "user.name=Alice", "-c", "user.email=alice@example.com"];
    full.extend_from_slice(args);
    super::git(dir, &full);
}

pub fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("an object"),
    }
}

/// A step body in the shape of DESIGN §9, small.
pub fn step_body(seq: u64) -> Map<String, Value> {
    let providers = ["self", "ollama", "human", "heartbeat"];
    // No "merged": log verify checks a merged step's commit in git.
    let outcomes = ["noop", "rejected", "pending", "failed"];
    obj(json!({
        "intent": "0".repeat(64),
        "rails": "1".repeat(64),
        "versions": {"ratchet": "0.1.0", "evaluators": "1"},
        "pick": {"provider": providers[(seq % 4) as usize], "reason": "thompson", "seed": "5eed", "focus": "intent"},
        "proposal": {"packet": "2".repeat(64), "op": "replace", "path": format!("docs/page{seq}.md"), "rationale": "say it plainly", "added": seq % 7, "removed": 1, "next_steps": []},
        "signals": {"ci_pass": 1, "path_ok": 1, "diff_ratio": 0.05, "atomic_ok": 1, "left_next_steps": 1, "human_score": 0.5},
        "utility": 0.9,
        "outcome": outcomes[(seq % 4) as usize],
    }))
}

/// Byte ranges of each line (newline included), 0-based.
pub fn line_ranges(log: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in log.iter().enumerate() {
        if b == b'\n' {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < log.len() {
        out.push(start..log.len());
    }
    out
}

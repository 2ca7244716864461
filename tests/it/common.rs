//! A hermetic environment for driving the real `ratchet` binary.
//!
//! Every test gets its own git repository, its own HOME and XDG state
//! directory, a pinned clock, no colour, and no controlling terminal (the
//! binary runs under `setsid`), unless it asks for a pseudo-terminal.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const NOW: &str = "2026-11-21T19:00:00Z";

pub struct Ws {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ratchet")
}

/// Runs git in `dir`, panicking with its stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Ws {
    /// A new git repository with an identity and one commit.
    pub fn new() -> Ws {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("repo");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let root = root.canonicalize().unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["config", "user.name", "Alice"]);
        git(&root, &["config", "user.email", "alice@example.com"]);
        std::fs::write(root.join("README.md"), "# demo\n").unwrap();
        git(&root, &["add", "README.md"]);
        git(&root, &["commit", "-q", "-m", "first"]);
        Ws { _dir: dir, root, home }
    }

    /// A new repository after `ratchet init`, committed.
    pub fn init() -> Ws {
        let ws = Ws::new();
        let out = ws.run(&["init"]);
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        git(&ws.root, &["add", "-A"]);
        git(&ws.root, &["commit", "-q", "-m", "ratchet init"]);
        ws
    }

    fn configure(&self, cmd: &mut Command) {
        cmd.current_dir(&self.root)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_STATE_HOME", self.home.join("state"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("RATCHET_NOW", NOW)
            .env("NO_COLOR", "1")
            .env("TERM", "dumb");
    }

    /// The binary with `args`, without a controlling terminal.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("setsid");
        cmd.arg("-w").arg(bin()).args(args);
        self.configure(&mut cmd);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("ratchet runs")
    }

    /// Runs with `input` on stdin.
    pub fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .cmd(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ratchet runs");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// The binary on a fresh pseudo-terminal, for the human paths.
    pub fn pty(&self, args: &[&str]) -> rexpect::session::PtySession {
        let mut cmd = Command::new(bin());
        cmd.args(args);
        self.configure(&mut cmd);
        rexpect::session::spawn_command(cmd, Some(20_000)).expect("pty spawns")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    pub fn git(&self, args: &[&str]) -> String {
        git(&self.root, args)
    }

    /// Every file under the root but `.git`, with its bytes: to prove a
    /// command left the tree untouched.
    pub fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        walk(&self.root, &self.root, &mut out);
        out.sort();
        out
    }

    /// Replaces the temp root in `text` with `[ROOT]`.
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.root.display().to_string(), "[ROOT]")
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if entry.file_name() == ".git" {
            continue;
        }
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        if meta.is_dir() {
            walk(root, &p, out);
        } else if meta.file_type().is_symlink() {
            out.push((rel, std::fs::read_link(&p).unwrap().display().to_string().into_bytes()));
        } else {
            out.push((rel, std::fs::read(&p).unwrap()));
        }
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// The parsed JSON on stdout.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(out)))
}

/// Replaces runs of 12 or more lower-case hex digits with `[HASH]`.
pub fn redact_hashes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() || ('a'..='f').contains(&c) {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() >= 12 { "[HASH]" } else { &run });
        run.clear();
        out.push(c);
    }
    out.push_str(if run.len() >= 12 { "[HASH]" } else { &run });
    out
}

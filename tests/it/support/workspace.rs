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
pub use super::git;

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
        // A command may refuse its arguments and exit before it reads stdin;
        // the pipe then breaks, and the exit status is what the test asserts.
        match child.stdin.take().unwrap().write_all(input.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("stdin: {e}"),
            _ => {}
        }
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

/// How a loop workspace's rails differ from the template.
pub struct Setup {
    pub checks: &'static str,
    pub checks_timeout: u64,
    pub auto_merge: bool,
    pub auto_merge_lines: u64,
    pub agent_timeout: u64,
    /// `[loopkit] url`, when the workspace reads pains.
    pub loopkit: Option<String>,
    /// More rails appended to the template (extra providers, critics).
    pub extra_rails: String,
    /// The intent's text, instead of the template's (as `intents/docs.md`).
    pub intent: Option<String>,
    /// A last edit of the rails text before `init`.
    pub rails_edit: Option<fn(String) -> String>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            checks: "true",
            checks_timeout: 60,
            auto_merge: false,
            auto_merge_lines: 10,
            agent_timeout: 20,
            loopkit: None,
            extra_rails: String::new(),
            intent: None,
            rails_edit: None,
        }
    }
}

impl Ws {
    /// A repository with docs, code and tests, initialised with the
    /// template rails adjusted by `setup`, and a scripted `self` agent.
    pub fn looped(setup: Setup) -> Ws {
        let ws = Ws::new();
        ws.write("docs/guide.md", "# Guide\n\nline one\nline two\n");
        ws.write("src/lib.rs", "pub fn answer() -> u32 {\n    42\n}\n");
        ws.write("tests/basic.txt", "a test fixture\n");
        ws.git(&["add", "-A"]);
        ws.git(&["commit", "-q", "-m", "sources"]);
        let agent = ws.home.join("agent.sh");
        std::fs::create_dir_all(ws.home.join("answers")).unwrap();
        std::fs::write(
            &agent,
            format!(
                "#!/bin/sh\ncat > /dev/null\nd={answers}\nn=$(cat $d/n 2>/dev/null || echo 0)\nn=$((n + 1))\necho $n > $d/n\n\
                 if [ -f $d/$n.sh ]; then exec sh $d/$n.sh; fi\n\
                 if [ -f $d/$n.json ]; then cat $d/$n.json; else echo '{{\"noop\": \"no more answers\"}}'; fi\n",
                answers = ws.home.join("answers").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
        let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/rails.toml")).unwrap();
        let mut rails = String::new();
        let mut section = String::new();
        for line in template.lines() {
            let t = line.trim_start();
            if t.starts_with('[') {
                section = t.to_string();
            }
            let line = match (section.as_str(), t.split(" =").next().unwrap_or("")) {
                (s, "command") if s.starts_with("[checks]") => format!("command = {:?}", setup.checks),
                (s, "timeout_s") if s.starts_with("[checks]") => format!("timeout_s = {}", setup.checks_timeout),
                (s, "enabled") if s.starts_with("[gate.auto_merge]") => format!("enabled = {}", setup.auto_merge),
                (s, "max_lines") if s.starts_with("[gate.auto_merge]") => {
                    format!("max_lines = {}", setup.auto_merge_lines)
                }
                (s, "command") if s.starts_with("[providers.self]") => {
                    format!("command = [{:?}]", agent.display().to_string())
                }
                (s, "timeout_s") if s.starts_with("[providers.self]") => format!("timeout_s = {}", setup.agent_timeout),
                // The scripted agent keeps its answers and its counter outside
                // the tree, where only the rails can let a sandboxed child write.
                (s, "writable") if s.starts_with("[sandbox]") => {
                    format!("writable = [{:?}]", ws.home.join("answers").display().to_string())
                }
                (s, "url") if s.starts_with("[loopkit]") && setup.loopkit.is_some() => {
                    format!("url = {:?}", setup.loopkit.as_deref().unwrap_or_default())
                }
                (s, _) if s.starts_with("[loopkit]") && setup.loopkit.is_none() => continue,
                _ => line.to_string(),
            };
            rails.push_str(&line);
            rails.push('\n');
        }
        rails.push_str(&setup.extra_rails);
        if let Some(edit) = setup.rails_edit {
            rails = edit(rails);
        }
        ws.write("config/rails.toml", &rails);
        if let Some(text) = &setup.intent {
            ws.write("intents/docs.md", text);
            ws.write("intents/CURRENT", "docs\n");
        }
        let out = ws.run(&["init"]);
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        ws.git(&["add", "-A"]);
        ws.git(&["commit", "-q", "-m", "ratchet init"]);
        ws
    }

    /// Queues the agent's `n`-th answer (1-based).
    pub fn answer(&self, n: usize, json: &str) {
        std::fs::write(self.home.join(format!("answers/{n}.json")), json).unwrap();
    }

    /// Queues a shell script as the agent's `n`-th run (to crash, hang or print garbage).
    pub fn answer_script(&self, n: usize, script: &str) {
        std::fs::write(self.home.join(format!("answers/{n}.sh")), script).unwrap();
    }

    /// Every log entry, parsed.
    pub fn entries(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.path("logs/steps.jsonl")).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// Asserts `ratchet log verify` finds the log sound.
    pub fn assert_log_verifies(&self) {
        let out = self.run(&["log", "verify"]);
        assert_eq!(code(&out), 0, "log verify: {}{}", stdout(&out), stderr(&out));
    }

    /// ratchet's private directory for this workspace (keys, the second
    /// checkpoint, the crash journal).
    pub fn private_dir(&self) -> PathBuf {
        let ws = ratchet::workspace::Workspace::at(self.root.clone(), "");
        self.home.join("state/ratchet").join(ws.id())
    }

    /// The last log entry.
    pub fn last(&self) -> serde_json::Value {
        self.entries().pop().expect("the log has entries")
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"]).trim().to_string()
    }

    /// Runs with `RATCHET_NOW` set to `at` instead of the pinned default.
    pub fn run_at(&self, at: &str, args: &[&str]) -> Output {
        self.cmd(args).env("RATCHET_NOW", at).output().expect("ratchet runs")
    }

    pub fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut cmd = self.cmd(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("ratchet runs")
    }

    /// `ratchet serve` on a free loopback port in this workspace, with
    /// `env` besides the hermetic one; returns the child and its address.
    pub fn serve(&self, env: &[(&str, &str)]) -> (std::process::Child, std::net::SocketAddr) {
        use std::io::BufRead;
        let mut cmd = Command::new(bin());
        cmd.args(["-q", "serve", "--addr", "127.0.0.1:0", "--print-addr"]);
        self.configure(&mut cmd);
        cmd.env("RATCHET_LOG", "warn").stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn ratchet serve");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().parse().unwrap_or_else(|_| panic!("ratchet serve printed {line:?}"));
        (child, addr)
    }

    pub fn pty_env(&self, env: &[(&str, &str)], args: &[&str]) -> rexpect::session::PtySession {
        let mut cmd = Command::new(bin());
        cmd.args(args);
        self.configure(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        rexpect::session::spawn_command(cmd, Some(20_000)).expect("pty spawns")
    }
}

/// A proposal appending `text` to `path`.
pub fn append(path: &str, text: &str) -> String {
    serde_json::json!({"rationale": "add a line", "patch": {"op": "append", "path": path, "content": text}, "next_steps": ["more"]})
        .to_string()
}

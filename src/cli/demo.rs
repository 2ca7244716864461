//! `ratchet demo`: the whole loop on a sample repository, narrated.

use std::io::BufRead;
use std::path::PathBuf;

use crate::cli::gate::{Narration, describe};
use crate::cli::{CommandError, CommandResult, Env, Style};
use crate::error::Exit;
use crate::journal::Journal;
use crate::step::{self, Options, Session};
use crate::workspace::Workspace;
use crate::{demo, init, rails};

/// Show the whole loop on a sample repository, with the local server.
///
/// Creates a small repository in DIR (default: a new folder under the
/// system's temp dir), initialises it, starts `ratchet serve` on a free
/// loopback port, sends it the sample app's failing spans (which it clusters
/// into a pain), and runs several steps with a scripted agent (`self`) and
/// the heartbeat: a merge, Gate 1 refusing a protected path and a locked
/// tier, failed checks restoring the tree, a proposal left pending for a
/// human, and the heartbeat planning for the pain. Then it prints the log
/// and verifies it, and stops the server.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to create the sample repository (must be new or empty).
    dir: Option<PathBuf>,
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    let dir = match args.dir {
        Some(d) => env.cwd.join(d),
        None => std::env::temp_dir().join(format!("ratchet-demo-{}", std::process::id())),
    };
    let ui = &env.ui;
    let say = |text: String| {
        if !ui.json() {
            ui.data(text)
        }
    };
    say(format!("{} a sample repository in {}", ui.paint(Style::Bold, "creating"), dir.display()));
    let repo = demo::scaffold(&dir)?;
    let ws = Workspace::at(repo.workdir(), "");
    let server = LocalServer::start(&ws)?;
    say(format!(
        "{} ratchet serve at {} ({})",
        ui.paint(Style::Bold, "started"),
        server.url,
        ws.rel(".ratchet/loopkit.db")
    ));
    // The folder was empty a moment ago, so a checkpoint kept for this path
    // outside it can only belong to an earlier demo that was deleted.
    for place in crate::journal::JournalPaths::for_workspace(&ws).checkpoints {
        let _ = std::fs::remove_file(&place.path);
    }
    // The demo's own rails (auto-merge on for docs/**), which `init` keeps.
    crate::fsutil::write_file(
        &ws.rails_toml(),
        demo::rails_text(init::RAILS_TEMPLATE, Some(&server.url)).as_bytes(),
        crate::fsutil::Durability::Full,
    )
    .map_err(|e| CommandError::new("IO_ERROR", format!("cannot write the demo's rails: {e}"), "check the directory"))?;
    let report = init::init(&ws)?;
    init::record(&ws, &report)?;
    let lock = rails::Lock::load(&ws)?;
    repo.commit_all("ratchet init (demo rails: auto-merge for docs/**)", &demo::identity(), crate::clock::now())?;
    let pain = server.feed(&ws)?;
    say(format!("{} 6 failing spans of GET /greet; the server's top pain: {pain}", ui.paint(Style::Bold, "telemetry")));
    say(format!(
        "{} rails {} · checks `sh scripts/check.sh` · auto-merge on for docs/** · scripted agent scripts/agent.sh",
        ui.paint(Style::Bold, "initialised"),
        &lock.version()[..12]
    ));

    say(format!(
        "{} a pain is a cluster of failing spans with one cause, ranked by how often it hurts; the loop works on the top one",
        ui.paint(Style::Dim, "  (pain)")
    ));
    let plan: [(&str, &str); 7] = [
        (
            "self",
            "a small docs patch for the pain: within auto-merge's narrow rules, so it merges\n  \
             (Gate 1: ratchet's own rule checks, each of which attests or objects; Gate 2: a human, or that narrow rule)\n  \
             (utility: the 0-1 score a step earns from its signals: checks passed, path allowed, size, ...)",
        ),
        ("self", "a patch to config/rails.toml: the rails are protected, so Gate 1 rejects it"),
        ("self", "a docs patch that breaks the checks: the file is restored, the step fails"),
        (
            "self",
            "a code patch from a provider still in the docs tier: TIER_LOCKED\n  \
             (tier: the paths a provider has earned by safe merges; docs first, code later)",
        ),
        ("self", "a larger docs page: beyond auto-merge, and nobody at a prompt, so it waits"),
        ("heartbeat", "the free, deterministic heartbeat records a dated plan for the top pain (auto-merged)"),
        ("heartbeat", "nothing new since: the heartbeat answers noop, and the step is still logged"),
    ];
    let mut reports = Vec::new();
    for (n, (provider, what)) in plan.iter().enumerate() {
        let mut s = Session::begin(&ws, "demo")?;
        // Numbered by the id the log gives the step, as every command prints it.
        say(format!("\n{} ({} of {}) {}: {what}", ui.paint(Style::Bold, &s.next_id()), n + 1, plan.len(), provider));
        let (mut tele, telemetry) = step::Telemetry::before(&mut s)?;
        let opts = Options {
            forced: Some(provider.to_string()),
            allow_dirty: false,
            patch_file: None,
            gate2: None,
            interactive: false,
            telemetry,
            cancel: Default::default(),
        };
        let report = step::run(&mut s, opts, &mut Narration::new(ui))?;
        tele.after(&s);
        say(format!("  → {}", describe(ui, &report)));
        reports.push(report);
    }

    let journal = Journal::open(&ws)?;
    let report = crate::journal::verify(&ws)?;
    if ui.json() {
        ui.emit_json(&serde_json::json!({
            "dir": dir,
            "steps": reports,
            "log": {"entries": journal.head().seq, "head": journal.head().hash_hex(), "verified": report.first_bad.is_none()},
        }));
    } else {
        say(format!("\n{} ({})", ui.paint(Style::Bold, "the log"), ws.rel("logs/steps.jsonl")));
        for e in journal.entries()? {
            let e = e?;
            let b = serde_json::Value::Object(e.body);
            say(format!(
                "  {:>3} {:<4} {:<6} {:<10} {:<9} {:<7} {}",
                e.seq,
                e.id,
                e.kind.as_str(),
                b["pick"]["provider"].as_str().unwrap_or(""),
                b["outcome"].as_str().unwrap_or(b["reason"].as_str().unwrap_or("")),
                b["utility"].as_f64().map(|u| format!("{u:.3}")).unwrap_or_default(),
                b["proposal"]["path"].as_str().or(b["detail"].as_str()).unwrap_or("")
            ));
        }
        say(format!(
            "\n{} {}",
            ui.paint(Style::Bold, "log verify:"),
            if report.first_bad.is_none() {
                "every hash, link and checkpoint checks".to_string()
            } else {
                format!("{:?}", report.first_bad)
            }
        ));
        // The binary that ran the demo, so the line works as printed even
        // when `ratchet` is not on PATH.
        let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "ratchet".into());
        say(format!(
            "\nnext: cd {dir} && {exe} status, then `{exe} review` at a terminal to decide the pending proposal;\n      \
             `{exe} serve` there brings the dashboard back (its keys, recovery code and address are in {keys}).\n      \
             To call it `ratchet`: cargo install --locked --path . (from ratchet's source), which puts it in ~/.cargo/bin.",
            dir = dir.display(),
            keys = ws.rel(".ratchet/keys.toml"),
        ));
    }
    Ok(if report.first_bad.is_none() { Exit::Ok } else { Exit::Error })
}

/// `ratchet serve` for the demo: this same binary, on a free loopback port,
/// with the demo workspace's database; stopped when dropped.
struct LocalServer {
    child: std::process::Child,
    url: String,
}

impl LocalServer {
    fn start(ws: &Workspace) -> Result<LocalServer, CommandError> {
        let fail = |e: String| {
            CommandError::new(
                "DEMO_SERVER",
                format!("cannot start ratchet serve: {e}"),
                "run `ratchet serve --addr 127.0.0.1:0` to see why",
            )
        };
        let exe = std::env::current_exe().map_err(|e| fail(e.to_string()))?;
        std::fs::create_dir_all(ws.state_dir()).map_err(|e| fail(e.to_string()))?;
        let mut child = std::process::Command::new(exe)
            .args(["serve", "--addr", "127.0.0.1:0", "--print-addr", "--db"])
            .arg(ws.state_dir().join("loopkit.db"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| fail(e.to_string()))?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or_else(|| fail("no stdout".into()))?;
        std::io::BufReader::new(stdout).read_line(&mut line).map_err(|e| fail(e.to_string()))?;
        let addr = line.trim().trim_start_matches("http://").to_string();
        if addr.is_empty() {
            let _ = child.kill();
            return Err(fail("it printed no address".into()));
        }
        Ok(LocalServer { child, url: format!("http://{addr}") })
    }

    /// Provisions the demo project, keeps its keys (0600), sends the failing
    /// spans, and returns the top pain's title.
    fn feed(&self, ws: &Workspace) -> Result<String, CommandError> {
        let fail = |e: String| CommandError::new("DEMO_SERVER", format!("the demo server: {e}"), "run the demo again");
        let http = reqwest::blocking::Client::new();
        let p: serde_json::Value = http
            .post(format!("{}/v1/provision", self.url))
            .json(&serde_json::json!({"project_name": "greeter", "operator": "demo"}))
            .send()
            .and_then(|r| r.json())
            .map_err(|e| fail(e.to_string()))?;
        let (Some(producer), Some(agent)) = (p["producer_key"].as_str(), p["agent_key"].as_str()) else {
            return Err(fail(format!("provision answered {p}")));
        };
        let keys = ws.state_dir().join("keys.toml");
        // Everything the server shows only once is kept: the keys, the
        // recovery code (it mints new keys if these are lost) and the
        // dashboard's address.
        let mut text = format!(
            "# LoopKit keys of the demo project (shown once by the server)\nproducer_key = {producer:?}\nagent_key = {agent:?}\n"
        );
        for field in ["project_id", "recovery_code", "dashboard_url"] {
            if let Some(v) = p[field].as_str() {
                text.push_str(&format!("{field} = {v:?}\n"));
            }
        }
        crate::fsutil::write_private(&keys, text.as_bytes(), crate::fsutil::Durability::Full)
            .map_err(|e| fail(e.to_string()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).map_err(|e| fail(e.to_string()))?;
        // The server reads the same clock (RATCHET_NOW pins both).
        let now = crate::clock::now().timestamp_nanos_opt().unwrap_or_default() as u128;
        let r = http
            .post(format!("{}/v1/traces", self.url))
            .bearer_auth(producer)
            .json(&demo::failing_spans(now))
            .send()
            .map_err(|e| fail(e.to_string()))?;
        if !r.status().is_success() {
            return Err(fail(format!("ingest answered {}", r.status())));
        }
        let d: serde_json::Value = http
            .get(format!("{}/v1/dashboard", self.url))
            .bearer_auth(agent)
            .send()
            .and_then(|r| r.json())
            .map_err(|e| fail(e.to_string()))?;
        Ok(d["open_pains"][0]["title"].as_str().unwrap_or("none").to_string())
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let _ = self.child.wait();
    }
}

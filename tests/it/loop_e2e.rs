//! The telemetry loop closed end to end, with the real OpenTelemetry SDKs
//! (installed by `.ci/install-otel-clients`; these tests fail, naming the
//! installer, when they are missing), a real `ratchet serve` and the real
//! `ratchet` binary, every clock pinned:
//!
//! 1. a sample app in the workspace (`app/billing.py` for Python,
//!    `app/cart.js` for Node) fails in the window before the merge; its
//!    SDK sends the spans, and LoopKit groups them into a pain;
//! 2. `ratchet step` targets that pain: the context carries the packet's
//!    essentials, the file the stack frames name ranks first; the agent's
//!    patch to that file auto-merges, and the step is reported as a span;
//! 3. a day later (the server restarted with its clock moved on, the same
//!    database), the app, now running the merged file, sends the next
//!    window's spans;
//! 4. the next `ratchet step` verifies the merge: `win` when the patch fixed
//!    the app, `slipped` when it did not; the provider's statistics, the
//!    status and the loop page show it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::loop_page::serve_in_at;
use crate::support::workspace::{Setup, Ws, code, json, stderr};

const T1: &str = "2026-11-21T19:00:00Z";
/// The server during the window before the merge (a minute after ratchet's "now").
const SERVER_T1: &str = "2026-11-21T19:01:00Z";
/// A day and an hour later: the window after the merge has closed.
const T2: &str = "2026-11-22T20:00:00Z";
const SERVER_T2: &str = "2026-11-22T20:01:00Z";
const HOUR_NS: i128 = 3_600_000_000_000;

fn otel_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otel")
}

const INSTALL: &str = "bash .ci/install-otel-clients";

fn ns(t: &str) -> i128 {
    chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp_nanos_opt().unwrap() as i128
}

/// Rails for a workspace whose app lives in `app/`: allowed, open to a new
/// provider, auto-merged when small; telemetry verified over 24 hours.
fn rails(text: String) -> String {
    text.replace(
        r#"allow = ["src/**", "tests/**", "docs/**", "*.md"]"#,
        r#"allow = ["src/**", "tests/**", "docs/**", "*.md", "app/**"]"#,
    )
    .replacen(r#"paths = ["docs/**", "*.md"]"#, r#"paths = ["docs/**", "*.md", "app/**"]"#, 1)
    .replacen(r#"paths = ["docs/**"]"#, r#"paths = ["docs/**", "app/**"]"#, 1)
}

enum App {
    Python,
    Node,
}

impl App {
    fn file(&self) -> &'static str {
        match self {
            App::Python => "app/billing.py",
            App::Node => "app/cart.js",
        }
    }

    fn buggy(&self) -> &'static str {
        match self {
            App::Python => {
                "INVOICES = {4999: 10}\n\n\ndef load_invoice(invoice_id):\n    return INVOICES[invoice_id]\n"
            }
            App::Node => {
                "'use strict';\nconst PRICES = { apple: { price: 1 } };\n\nfunction addToCart(item) {\n  return PRICES[item].price;\n}\n\nmodule.exports = { addToCart };\n"
            }
        }
    }

    /// Sends `calls` calls of the app (and as many healthy spans) dated
    /// between `from` and `to`.
    fn send(&self, url: &str, producer: &str, root: &Path, from: i128, to: i128, calls: u32) -> String {
        let dir = otel_dir();
        let mut cmd = match self {
            App::Python => {
                let py = dir.join(".venv/bin/python");
                assert!(py.is_file(), "the Python OpenTelemetry client is not installed; install it with: {INSTALL}");
                let mut c = Command::new(py);
                c.arg("app.py").args([&format!("{url}/v1/traces"), producer]).arg(root);
                c.args([from.to_string(), to.to_string()]);
                c
            }
            App::Node => {
                assert!(
                    dir.join("node_modules/@opentelemetry/exporter-trace-otlp-proto").is_dir(),
                    "the Node OpenTelemetry client is not installed; install it with: {INSTALL}"
                );
                let mut c = Command::new("node");
                c.arg("app.js").args([&format!("{url}/v1/traces"), producer]).arg(root);
                c.args([(from / 1_000_000).to_string(), (to / 1_000_000).to_string()]);
                c
            }
        };
        let out = cmd.arg(calls.to_string()).current_dir(&dir).output().expect("the sample app runs");
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success() && said.starts_with("sent "), "{said}{}", String::from_utf8_lossy(&out.stderr));
        said
    }
}

/// Runs the whole loop for `app` with the agent's patch `fixed` (a fix) or
/// not (a comment), and returns the workspace, the verification entry and
/// the loop page's HTML.
fn close_the_loop(app: App, fix: &str) -> (Ws, serde_json::Value, String) {
    let ws = Ws::looped(Setup {
        auto_merge: true,
        auto_merge_lines: 20,
        loopkit: Some("http://127.0.0.1:9".into()),
        rails_edit: Some(rails),
        ..Setup::default()
    });
    ws.write(app.file(), app.buggy());
    ws.git(&["add", "-A"]);
    ws.git(&["commit", "-q", "-m", "the sample app"]);
    let db = ws.home.join("loopkit.db");
    let db_arg = db.display().to_string();

    // 1. The window before the merge: the app fails.
    let server = serve_in_at(&ws, SERVER_T1, &["--db", &db_arg]);
    let (producer, agent) = crate::telemetry::provision(&server.base, "sample");
    ws.write(".ratchet/keys.toml", &format!("producer_key = {producer:?}\nagent_key = {agent:?}\n"));
    let said = app.send(&server.base, &producer, &ws.root, ns(T1) - 20 * HOUR_NS, ns(T1) - HOUR_NS, 20);
    assert!(said.contains("(20 failed)"), "{said}");
    let url = [("RATCHET_LOOPKIT_URL", server.base.as_str())];

    // 2. The step targets the pain, with the packet in the context.
    let ctx = json(&ws.run_env(&url, &["--json", "context"]));
    let focus = ctx["focus"]["ref"].as_str().unwrap().to_string();
    assert!(focus.starts_with("pain:pn_"), "{ctx}");
    let pain = &ctx["focus"]["pain"];
    let frame = pain["frames"].as_array().unwrap().iter().find(|f| f["path"] == app.file());
    assert!(frame.is_some_and(|f| f["line"].as_u64().is_some()), "the frames name the app's file and line: {pain}");
    assert_eq!(ctx["files"][0]["path"], app.file(), "the file the frames name ranks first");
    assert_eq!(ctx["contents"][0]["path"], app.file());
    assert!(pain["exception"]["type"].as_str().is_some_and(|t| !t.is_empty()), "{pain}");
    assert!(pain["eval_candidate"]["expected"].as_str().is_some(), "{pain}");
    ws.answer(
        1,
        &serde_json::json!({"rationale": "guard the lookup", "patch": {"op": "replace", "path": app.file(), "new": fix},
                            "next_steps": ["add a regression test"]})
        .to_string(),
    );
    let out = ws.run_at_env(T1, &url, &["step", "--provider", "self"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning: telemetry"), "{}", stderr(&out));
    let merged = ws.last();
    assert_eq!((merged["outcome"].as_str(), merged["pick"]["focus"].as_str()), (Some("merged"), Some(focus.as_str())));
    drop(server);

    // 3. A day later, the app runs the merged file.
    let server = serve_in_at(&ws, SERVER_T2, &["--db", &db_arg]);
    app.send(&server.base, &producer, &ws.root, ns(T1) + HOUR_NS, ns(T1) + 23 * HOUR_NS, 20);
    let url = [("RATCHET_LOOPKIT_URL", server.base.as_str())];

    // 4. The next step verifies the merge.
    let out = ws.run_at_env(T2, &url, &["step", "--provider", "heartbeat"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("verified step {}", merged["id"].as_str().unwrap())), "{}", stderr(&out));
    let verification = ws
        .entries()
        .into_iter()
        .find(|e| e["kind"] == "amend" && e["reason"] == "verified")
        .expect("a verification entry");
    assert_eq!(verification["step"], merged["id"]);
    assert_eq!(verification["pain"].as_str(), focus.strip_prefix("pain:"));
    ws.assert_log_verifies();
    let (_, page) = {
        let r = reqwest::blocking::Client::new().get(&server.link).send().unwrap();
        (r.status(), r.text().unwrap())
    };
    (ws, verification, page)
}

impl Ws {
    fn run_at_env(&self, at: &str, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
        let mut cmd = self.cmd(args);
        cmd.env("RATCHET_NOW", at);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("ratchet runs")
    }
}

#[test]
fn python_a_fix_that_works_is_recorded_as_a_win() {
    let fixed = "INVOICES = {4999: 10}\n\n\ndef load_invoice(invoice_id):\n    return INVOICES.get(invoice_id, 0)\n";
    let (ws, v, page) = close_the_loop(App::Python, fixed);
    assert_eq!(v["verified"], "win", "{v}");
    assert_eq!(v["rates"]["before"], 500.0, "20 failing of 40 spans: {v}");
    assert_eq!(v["rates"]["after"], 0.0, "{v}");
    assert_eq!(v["utility"], v["previous_utility"], "a win keeps the utility");
    let status = json(&ws.run_at(T2, &["--json", "status"]));
    let me = status["providers"].as_array().unwrap().iter().find(|p| p["name"] == "self").unwrap().clone();
    assert_eq!((me["stats"]["won"].as_u64(), me["stats"]["slipped"].as_u64()), (Some(1), Some(0)), "{me}");
    let log = crate::support::workspace::stdout(&ws.run_at(T2, &["log"]));
    assert!(log.contains(&format!("amends {}: verified win (500.0 → 0.0/1k)", v["step"].as_str().unwrap())), "{log}");
    assert!(page.contains("<td class=\"state won\">won</td>"), "{page}");
    assert!(page.contains("500.0 → 0.0 → 0.0"), "{page}");
}

#[test]
fn node_a_fix_that_does_not_work_is_recorded_as_slipped() {
    let not_fixed = "'use strict';\nconst PRICES = { apple: { price: 1 } };\n\n// prices are looked up here\nfunction addToCart(item) {\n  return PRICES[item].price;\n}\n\nmodule.exports = { addToCart };\n";
    let (ws, v, page) = close_the_loop(App::Node, not_fixed);
    assert_eq!(v["verified"], "slipped", "{v}");
    assert_eq!(v["rates"]["before"], 500.0, "{v}");
    assert!(v["rates"]["after"].as_f64().unwrap() >= 480.0, "{v}");
    assert_eq!(v["utility"], 0.2, "a slipped step is capped like a revert: {v}");
    let status = json(&ws.run_at(T2, &["--json", "status"]));
    let me = status["providers"].as_array().unwrap().iter().find(|p| p["name"] == "self").unwrap().clone();
    assert_eq!(me["stats"]["slipped"], 1, "{me}");
    let recent = status["recent"].as_array().unwrap().iter().find(|s| s["id"] == v["step"]).unwrap().clone();
    assert_eq!(recent["verified"], "slipped");
    assert_eq!(recent["utility"], 0.2);
    assert!(page.contains("<td class=\"state slipped\">slipped</td>"), "{page}");
}

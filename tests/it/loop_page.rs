//! `ratchet serve`'s loop page (`/loop`) over a real workspace and a real
//! server process: what it shows, who may see it, that it escapes every
//! provider string, that it never writes the log; and both pages (`/loop`
//! and the LoopKit `/dashboard`) rendered in headless Chromium.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::workspace::{Setup, Ws, append, code, stderr};

/// The server's clock: a minute after ratchet's pinned "now".
const SERVER_NOW: &str = "2026-11-21T19:01:00Z";

/// A rationale and a path no page may show as markup.
pub const HOSTILE_RATIONALE: &str =
    "Fix it <script>alert('rationale')</script> \u{202e}gnp.exe\u{1b}[31m and <img src=x onerror=alert(1)>";
pub const HOSTILE_PATH: &str = "docs/\"><svg onload=alert(2)>.md";

pub struct Served {
    child: Child,
    pub base: String,
    pub link: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ratchet serve` started in the workspace (so it shows its loop), its
/// clock pinned; returns its base URL and the loop link it printed.
pub fn serve_in(ws: &Ws, extra: &[&str]) -> Served {
    serve_in_at(ws, SERVER_NOW, extra)
}

/// [`serve_in`] with the server's clock at `now`.
pub fn serve_in_at(ws: &Ws, now: &str, extra: &[&str]) -> Served {
    let mut cmd = ws.cmd(&["serve", "--addr", "127.0.0.1:0", "--print-addr"]);
    cmd.args(extra).env("RATCHET_NOW", now).env("RATCHET_LOG", "warn");
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut addr = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut addr).unwrap();
    let base = format!("http://{}", addr.trim());
    let mut link = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(l) = line.strip_prefix("the loop of this workspace: ") {
            link = l.trim().to_string();
            break;
        }
    }
    assert!(link.starts_with(&format!("{base}/loop?token=")), "serve printed no loop link: {link:?}");
    Served { child, base, link }
}

/// A workspace with three merged steps (auto-merged docs appends), a
/// proposal from the agent that waits for a human and whose rationale and
/// path are hostile markup, and a noop.
pub fn with_history() -> Ws {
    let ws = Ws::looped(Setup { auto_merge: true, auto_merge_lines: 20, ..Setup::default() });
    for n in 1..=3 {
        ws.answer(n, &append("docs/guide.md", &format!("merged line {n}\n")));
    }
    let long: String = (0..30).map(|i| format!("line {i} <b>bold</b>\n")).collect();
    ws.answer(
        4,
        &serde_json::json!({"rationale": HOSTILE_RATIONALE, "patch": {"op": "create", "path": HOSTILE_PATH, "content": long},
                            "next_steps": ["more"]})
        .to_string(),
    );
    for _ in 1..=4 {
        let out = ws.run(&["step", "--provider", "self"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let pending: Vec<_> = ws.entries().into_iter().filter(|e| e["outcome"] == "pending").collect();
    assert_eq!(pending.len(), 1, "the hostile proposal waits for a human");
    ws
}

fn get(url: &str) -> (u16, String) {
    let r = reqwest::blocking::Client::new().get(url).send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

#[test]
fn the_loop_page_shows_the_loop_escapes_provider_text_and_never_writes() {
    let ws = with_history();
    let log_before = std::fs::read(ws.path("logs/steps.jsonl")).unwrap();
    let checkpoint_before = std::fs::read(ws.path(".ratchet/checkpoint")).unwrap();
    let served = serve_in(&ws, &[]);

    let (status, html) = get(&served.link);
    assert_eq!(status, 200, "{html}");
    assert_eq!(html.matches("<circle class=\"pt\"").count(), 3, "one point per scored step");
    assert!(html.contains("data-chart=\"utility\" data-points=\"3\""), "{html}");
    assert!(html.contains("data-chart=\"days\""), "merges and human decisions per day");
    assert!(html.contains("<table id=providers>") && html.contains("<td>self</td>"), "{html}");
    assert!(html.contains("id=\"pending-s"), "the pending proposal is shown");
    assert!(html.contains("<span class=add>+line 0 &lt;b&gt;bold&lt;/b&gt;</span>"), "with its diff, escaped");
    assert!(html.contains("id=watchdog"));
    // Provider text is text: never markup, its invisible characters made visible.
    for raw in ["<script", "<img", "<svg onload", "\u{202e}", "\u{1b}"] {
        assert!(!html.contains(raw), "{raw:?} reached the page");
    }
    assert!(html.contains("&lt;script&gt;alert(&#39;rationale&#39;)&lt;/script&gt;"), "{html}");
    assert!(html.contains("&quot;&gt;&lt;svg onload=alert(2)&gt;.md"), "{html}");

    // Who may see it: the token, and only the token.
    assert_eq!(get(&format!("{}/loop", served.base)).0, 401);
    assert_eq!(get(&format!("{}/loop?token={}", served.base, "0".repeat(64))).0, 401);
    let r = reqwest::blocking::Client::new().get(&served.link).send().unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));

    // It only read.
    assert_eq!(std::fs::read(ws.path("logs/steps.jsonl")).unwrap(), log_before, "the page never writes the log");
    assert_eq!(std::fs::read(ws.path(".ratchet/checkpoint")).unwrap(), checkpoint_before);
    ws.assert_log_verifies();
}

#[test]
fn a_server_outside_a_workspace_has_no_loop_page() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(crate::support::workspace::bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--print-addr", "--db"])
        .arg(dir.path().join("x.db"))
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut addr = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut addr).unwrap();
    let (status, html) = get(&format!("http://{}/loop?token=x", addr.trim()));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 404, "{html}");
    assert!(html.contains("not started in a ratchet workspace"));
}

// ---------------------------------------------------------------------------
// Headless Chromium

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

const INSTALL: &str = "bash .ci/install-browser (apt-get install -y chromium; cd tests/browser && npm ci)";

/// Chromium and playwright-core, or a loud failure naming the installer.
fn browser_ready() {
    assert!(
        Path::new("/usr/bin/chromium").is_file(),
        "Chromium is not installed (/usr/bin/chromium); install it with: {INSTALL}"
    );
    assert!(
        browser_dir().join("node_modules/playwright-core/package.json").is_file(),
        "playwright-core is not installed in tests/browser; install it with: {INSTALL}"
    );
}

/// Feeds a LoopKit project: failing checkout spans over the last day and
/// a merged change a day and a half ago whose pain fell, so the dashboard
/// has pains over time and a win to chart. Returns the dashboard URL.
fn feed_dashboard(base: &str) -> String {
    let http = reqwest::blocking::Client::new();
    let p: serde_json::Value = http
        .post(format!("{base}/v1/provision"))
        .json(&serde_json::json!({"project_name": "shop <b>&", "operator": "pages"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let producer = p["producer_key"].as_str().unwrap();
    let now = chrono::DateTime::parse_from_rfc3339(SERVER_NOW).unwrap().timestamp_nanos_opt().unwrap() as i128;
    let h = 3_600_000_000_000i128;
    let mut spans = Vec::new();
    let mut n = 0u64;
    let mut span = |at: i128, name: &str, fail: Option<&str>| {
        n += 1;
        let mut s = serde_json::json!({"traceId": format!("{:032x}", n), "spanId": format!("{:016x}", n), "name": name, "kind": 2,
            "startTimeUnixNano": at.to_string(), "endTimeUnixNano": (at + 5_000_000).to_string()});
        if let Some(ty) = fail {
            s["status"] = serde_json::json!({"code": 2, "message": "boom"});
            s["events"] = serde_json::json!([{"name": "exception", "timeUnixNano": at.to_string(), "attributes": [
                {"key": "exception.type", "value": {"stringValue": ty}},
                {"key": "exception.message", "value": {"stringValue": "<script>alert('msg')</script> failed"}}]}]);
        }
        s
    };
    // Before the change (36–60 h ago): 20 failures in 40 spans; after it, 2 in 40.
    for i in 0..40 {
        spans.push(span(now - 60 * h + i * h / 2, "POST /checkout", (i % 2 == 0).then_some("TimeoutError")));
        spans.push(span(now - 30 * h + i * h / 2, "POST /checkout", (i % 20 == 0).then_some("TimeoutError")));
        spans.push(span(now - 20 * h + i * h / 3, "GET /cart", (i % 4 == 0).then_some("KeyError")));
    }
    let pain = {
        let body = serde_json::json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
            "scopeSpans": [{"spans": spans}]}]});
        let r = http.post(format!("{base}/v1/traces")).bearer_auth(producer).json(&body).send().unwrap();
        assert!(r.status().is_success(), "{}", r.text().unwrap());
        let agent = p["agent_key"].as_str().unwrap();
        let d: serde_json::Value =
            http.get(format!("{base}/v1/dashboard?window=3d")).bearer_auth(agent).send().unwrap().json().unwrap();
        d["open_pains"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["signal_type"] == "exception" && p["title"].as_str().unwrap().contains("Timeout"))
            .unwrap()["pain_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let merge = serde_json::json!({"traceId": "f".repeat(32), "spanId": "e".repeat(16), "name": "ratchet.step", "kind": 1,
        "startTimeUnixNano": (now - 36 * h).to_string(), "endTimeUnixNano": (now - 36 * h).to_string(),
        "attributes": [{"key": "ratchet.step.outcome", "value": {"stringValue": "merged"}},
                       {"key": "ratchet.step.id", "value": {"stringValue": "s9"}},
                       {"key": "ratchet.step.pain_id", "value": {"stringValue": pain}}]});
    let body = serde_json::json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "ratchet"}}]},
        "scopeSpans": [{"spans": [merge]}]}]});
    let r = http.post(format!("{base}/v1/traces")).bearer_auth(producer).json(&body).send().unwrap();
    assert!(r.status().is_success());
    format!("{}&window=1d", p["dashboard_url"].as_str().unwrap())
}

#[test]
fn the_pages_render_in_headless_chromium_at_phone_and_desktop_widths() {
    browser_ready();
    let ws = with_history();
    let served = serve_in(&ws, &[]);
    let dashboard = feed_dashboard(&served.base);
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pages");
    std::fs::create_dir_all(&out_dir).unwrap();
    let pages = serde_json::json!([
        {"name": "loop", "url": served.link, "charts": {"utility": 3, "days": 3}},
        {"name": "dashboard", "url": dashboard, "charts": {"pains": 24, "changes": 2}},
    ]);
    let out = Command::new("node")
        .arg("check.js")
        .arg(&out_dir)
        .arg(pages.to_string())
        .current_dir(browser_dir())
        .output()
        .expect("node runs (install Node 20)");
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "the browser check failed: {report}\n{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}"));
    for page in r["pages"].as_array().unwrap() {
        let name = page["name"].as_str().unwrap();
        assert_eq!(page["status"], 200, "{page}");
        assert_eq!(page["console_errors"], serde_json::json!([]), "{name}: console errors");
        assert_eq!(page["dialogs"], serde_json::json!([]), "{name}: a script ran");
        assert_eq!(page["charts"], page["expected"], "{name}: chart points");
        assert!(page["labelled"].as_bool().unwrap(), "{name}: every chart has an accessible name: {page}");
        for width in ["390", "1280"] {
            let shot = out_dir.join(format!("{name}-{width}.png"));
            assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 5_000), "no screenshot {}", shot.display());
        }
        assert!(page["overflow_390"].as_bool() == Some(false), "{name} scrolls sideways on a phone: {page}");
    }
}

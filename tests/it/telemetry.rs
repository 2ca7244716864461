//! Pick reads the top open pain from a real `ratchet serve`.

use std::io::BufRead;
use std::process::{Command, Stdio};

use crate::common::{Setup, Ws, code, json, stderr};

struct Serve {
    child: std::process::Child,
    url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(db: &std::path::Path) -> Serve {
    let mut child = Command::new(crate::common::bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--print-addr", "--db"])
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().trim_start_matches("http://").to_string();
    Serve { child, url: format!("http://{addr}") }
}

fn now_ns() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// Provisions a project and sends `n` failing checkout spans; returns the agent key.
fn feed(url: &str, n: usize) -> String {
    let http = reqwest::blocking::Client::new();
    let p: serde_json::Value = http
        .post(format!("{url}/v1/provision"))
        .json(&serde_json::json!({"project_name": "shop", "operator": "test"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let producer = p["producer_key"].as_str().unwrap().to_string();
    let spans: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let t = now_ns() - 1_000_000_000;
            serde_json::json!({
                "traceId": format!("{:032x}", i + 1), "spanId": format!("{:016x}", i + 1), "name": "POST /checkout", "kind": 2,
                "startTimeUnixNano": t.to_string(), "endTimeUnixNano": (t + 5_000_000).to_string(),
                "status": {"code": 2, "message": "boom"},
                "events": [{"name": "exception", "timeUnixNano": t.to_string(), "attributes": [
                    {"key": "exception.type", "value": {"stringValue": "TimeoutError"}},
                    {"key": "exception.message", "value": {"stringValue": format!("upstream timed out after {i}s")}}]}]
            })
        })
        .collect();
    let body = serde_json::json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
        "scopeSpans": [{"spans": spans}]}]});
    let r = http.post(format!("{url}/v1/traces")).bearer_auth(&producer).json(&body).send().unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    p["agent_key"].as_str().unwrap().to_string()
}

#[test]
fn pick_focuses_on_the_top_open_pain() {
    let ws0 = Ws::new();
    let server = serve(&ws0.home.join("loopkit.db"));
    let agent = feed(&server.url, 5);
    let ws = Ws::looped(Setup {
        loopkit: Some(server.url.clone()),
        auto_merge: true,
        auto_merge_lines: 20,
        ..Setup::default()
    });
    let out = ws.run_env(&[("LOOPKIT_AGENT_KEY", &agent)], &["--json", "step", "--provider", "heartbeat"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let entry = ws.last();
    let focus = entry["pick"]["focus"].as_str().unwrap();
    assert!(focus.starts_with("pain:pn_"), "{entry}");
    assert!(entry["pick"]["note"].is_null());
    let journal = ws.read("docs/ratchet-journal.md");
    assert!(journal.contains("TimeoutError") && journal.contains(focus), "{journal}");
    assert!(journal.contains("5 exception spans in the window"), "{journal}");
    // The context an agent would get carries the pain too.
    let c = json(&ws.run_env(&[("LOOPKIT_AGENT_KEY", &agent)], &["--json", "context"]));
    assert_eq!(c["focus"]["ref"], focus);
}

#[test]
fn unreadable_telemetry_is_noted_and_the_step_goes_on() {
    let ws0 = Ws::new();
    let server = serve(&ws0.home.join("loopkit.db"));
    let ws = Ws::looped(Setup { loopkit: Some(server.url.clone()), ..Setup::default() });
    // A well-formed key the server does not know.
    let out = ws.run_env(
        &[("LOOPKIT_AGENT_KEY", "lka_0000000000000000000000000000000000000000000aaaaaa")],
        &["--json", "step", "--provider", "heartbeat"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let note = ws.last()["pick"]["note"].as_str().unwrap().to_string();
    assert!(note.starts_with("telemetry_unavailable:") && note.contains("401"), "{note}");
    assert_eq!(ws.last()["pick"]["focus"], "intent");
    // No key at all.
    let ws = Ws::looped(Setup { loopkit: Some("http://127.0.0.1:9".into()), ..Setup::default() });
    ws.run(&["step", "--provider", "heartbeat"]);
    assert!(ws.last()["pick"]["note"].as_str().unwrap().contains("no agent key"));
}

//! Pick reads the top open pain from a real `ratchet serve`.

use std::io::BufRead;
use std::process::{Command, Stdio};

use crate::support::workspace::{Setup, Ws, code, json, stderr};

pub struct Serve {
    child: std::process::Child,
    pub url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(db: &std::path::Path) -> Serve {
    serve_at(db, None)
}

/// `ratchet serve` with its clock pinned to `now` (its windows and "now").
pub fn serve_at(db: &std::path::Path, now: Option<&str>) -> Serve {
    let mut cmd = Command::new(crate::support::workspace::bin());
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--print-addr", "--db"]).arg(db);
    if let Some(now) = now {
        cmd.env("RATCHET_NOW", now);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
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
    // With the packet's essentials: what failed, and how to check a fix.
    let pain = &c["focus"]["pain"];
    assert_eq!(pain["exception"]["type"], "TimeoutError", "{c}");
    assert_eq!(pain["exception"]["message_template"], "upstream timed out after <num>s", "{c}");
    assert!(pain["eval_candidate"]["expected"].as_str().unwrap().contains("TimeoutError"), "{c}");
    assert_eq!(pain["sample"]["name"], "POST /checkout", "{c}");
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
    assert!(ws.last()["pick"]["note"].as_str().unwrap().contains("no LoopKit agent key"));
}

/// The server's clock in these tests: a minute after ratchet's, so that the
/// spans ratchet sends at its "now" lie inside the server's current window
/// (which ends, exclusive, at the server's "now").
const SERVER_NOW: &str = "2026-11-21T19:01:00Z";

/// Provisions a project; returns (producer key, agent key).
pub fn provision(url: &str, name: &str) -> (String, String) {
    let p: serde_json::Value = reqwest::blocking::Client::new()
        .post(format!("{url}/v1/provision"))
        .json(&serde_json::json!({"project_name": name, "operator": "test"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    (p["producer_key"].as_str().unwrap().to_string(), p["agent_key"].as_str().unwrap().to_string())
}

/// The records the server holds for service `ratchet`: (step id, outcome, span id).
fn reported(url: &str, agent: &str) -> Vec<(String, String, String)> {
    let v: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{url}/v1/telemetry?limit=1000&window=30d"))
        .bearer_auth(agent)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut out: Vec<_> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["service"] == "ratchet")
        .map(|r| {
            (
                r["attributes"]["ratchet.step.id"].as_str().unwrap_or("").to_string(),
                r["attributes"]["ratchet.step.outcome"].as_str().unwrap_or("").to_string(),
                r["span_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_step_is_reported_once_across_a_server_down_a_retry_and_a_crash() {
    let ws0 = Ws::new();
    let server = serve_at(&ws0.home.join("loopkit.db"), Some(SERVER_NOW));
    let (producer, agent) = provision(&server.url, "loop");
    let ws = Ws::looped(Setup { loopkit: Some(server.url.clone()), ..Setup::default() });
    let keys = [("LOOPKIT_AGENT_KEY", agent.as_str()), ("LOOPKIT_PRODUCER_KEY", producer.as_str())];
    fn with<'a>(keys: &[(&'a str, &'a str)], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        keys.iter().copied().chain(extra.iter().copied()).collect()
    }

    // The server is down (the override points at a closed port): the step
    // goes on, says so once with the hint, and its report waits in the log.
    let out = ws
        .run_env(&with(&keys, &[("RATCHET_LOOPKIT_URL", "http://127.0.0.1:9")]), &["step", "--provider", "heartbeat"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("warning: telemetry:").count(), 1, "said once: {err}");
    assert!(err.contains("TELEMETRY_UNREACHABLE") && err.contains("hint:"), "{err}");
    assert!(err.contains("127.0.0.1:9"), "the override is used: {err}");
    assert!(reported(&server.url, &agent).is_empty());

    // Back up: the queued step and the new one are sent.
    let out = ws.run_env(&with(&keys, &[]), &["step", "--provider", "heartbeat"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning: telemetry"), "{}", stderr(&out));
    let sent = reported(&server.url, &agent);
    assert_eq!(sent.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), vec!["s2", "s3"], "{sent:?}");

    // Killed after the server took the batch and before the cursor moved:
    // the next run sends that batch again, and the server keeps one copy.
    let out =
        ws.run_env(&with(&keys, &[("RATCHET_TEST_FAULT", "telemetry-sent")]), &["step", "--provider", "heartbeat"]);
    assert_ne!(code(&out), 0, "the fault kills the process");
    assert_eq!(reported(&server.url, &agent).len(), 3);
    let out = ws.run_env(&with(&keys, &[]), &["step", "--provider", "heartbeat"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let sent = reported(&server.url, &agent);
    let steps: Vec<_> = ws.entries().into_iter().filter(|e| e["kind"] == "step").collect();
    assert_eq!(sent.len(), steps.len(), "one span per step entry, none twice: {sent:?}");
    let mut ids: Vec<_> = sent.iter().map(|r| r.2.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), sent.len());
    // Nothing new: a retry sends nothing and changes nothing.
    let cursor = ws.read(".ratchet/telemetry-sent.json");
    assert!(cursor.contains(&format!("\"seq\":{}", ws.entries().len())), "{cursor}");
}

#[test]
fn a_refused_key_is_said_once_with_its_hint() {
    let ws0 = Ws::new();
    let server = serve_at(&ws0.home.join("loopkit.db"), Some(SERVER_NOW));
    let (_, agent) = provision(&server.url, "loop");
    let ws = Ws::looped(Setup { loopkit: Some("http://127.0.0.1:9".into()), ..Setup::default() });
    ws.run(&["step", "--provider", "heartbeat"]);
    // The agent key where the producer key belongs: the server answers 403.
    let out = ws.run_env(
        &[("RATCHET_LOOPKIT_URL", &server.url), ("LOOPKIT_AGENT_KEY", &agent), ("LOOPKIT_PRODUCER_KEY", &agent)],
        &["step", "--provider", "heartbeat"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("warning: telemetry:").count(), 1, "{err}");
    assert!(err.contains("TELEMETRY_UNAUTHORIZED") && err.contains("producer key"), "{err}");
    assert!(err.contains("hint: check that the producer key belongs"), "{err}");
    // A url that is not one.
    let out = ws.run_env(&[("RATCHET_LOOPKIT_URL", "ftp://x")], &["step", "--provider", "heartbeat"]);
    assert!(stderr(&out).contains("TELEMETRY_BAD_URL"), "{}", stderr(&out));
    assert!(ws.last()["pick"]["note"].as_str().unwrap().starts_with("telemetry_unavailable:"));
}

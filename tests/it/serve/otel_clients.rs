//! Real OpenTelemetry clients against a real `ratchet serve`: the Node SDK
//! with the OTLP/HTTP JSON and protobuf exporters, and the Python SDK with
//! the OTLP/HTTP protobuf exporter. Each sends spans with errors and
//! exceptions; the test reads them back through /v1/telemetry and finds the
//! expected pains on /v1/dashboard.
//!
//! The clients are installed by `.ci/run` (tests/otel/node_modules and
//! tests/otel/.venv). When they are missing these tests FAIL, naming the
//! command that installs them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::server::*;
use serde_json::Value;

fn otel_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otel")
}

const INSTALL: &str = "bash .ci/install-otel-clients (or: cd tests/otel && npm ci && python3 -m venv .venv && .venv/bin/pip install -r requirements.txt)";

fn node_ready() {
    let d = otel_dir();
    for pkg in ["exporter-trace-otlp-http", "exporter-trace-otlp-proto", "sdk-trace-base"] {
        assert!(
            d.join("node_modules/@opentelemetry").join(pkg).is_dir(),
            "the Node OpenTelemetry client is not installed (missing @opentelemetry/{pkg}); install it with: {INSTALL}"
        );
    }
    assert!(
        Command::new("node").arg("--version").output().is_ok(),
        "node is not on PATH; install Node 20, then: {INSTALL}"
    );
}

fn python() -> PathBuf {
    let py = otel_dir().join(".venv/bin/python");
    assert!(
        py.is_file(),
        "the Python OpenTelemetry client is not installed (no tests/otel/.venv); install it with: {INSTALL}"
    );
    py
}

fn run_client(mut cmd: Command) {
    let out = cmd.current_dir(otel_dir()).output().expect("run the OpenTelemetry client");
    assert!(
        out.status.success(),
        "client failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sent "), "{}", String::from_utf8_lossy(&out.stdout));
}

fn read_all(addr: std::net::SocketAddr, agent: &str) -> Vec<Value> {
    let auth = format!("Bearer {agent}");
    let (s, v) = http(addr, "GET", "/v1/telemetry?limit=1000", &[("authorization", &auth)], b"");
    assert_eq!(s, 200, "{v}");
    v["records"].as_array().unwrap().clone()
}

fn dashboard(addr: std::net::SocketAddr, agent: &str) -> Value {
    let auth = format!("Bearer {agent}");
    let (s, v) = http(addr, "GET", "/v1/dashboard", &[("authorization", &auth)], b"");
    assert_eq!(s, 200, "{v}");
    v
}

fn setup(name: &str) -> (tempfile::TempDir, Server, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("loopkit.db"), &[]);
    let (s, p) = http(
        server.addr,
        "POST",
        "/v1/provision",
        &[("content-type", "application/json")],
        format!(r#"{{"project_name":"{name}"}}"#).as_bytes(),
    );
    assert_eq!(s, 201, "{p}");
    (dir, server, key(&p, "producer_key"), key(&p, "agent_key"))
}

fn check_node(protocol: &str) {
    node_ready();
    let (_dir, server, producer, agent) = setup(&format!("node-{protocol}"));
    let url = format!("http://{}/v1/traces", server.addr);
    let mut cmd = Command::new("node");
    cmd.args(["send.js", protocol, &url, &producer, "node-shop"]);
    run_client(cmd);

    let records = read_all(server.addr, &agent);
    assert_eq!(records.len(), 37, "12 exceptions + 5 http 5xx + 20 healthy");
    let exc = records.iter().find(|r| r["signal_type"] == "exception").expect("an exception record");
    assert_eq!(exc["exception"]["type"], "TypeError");
    assert_eq!(exc["service"], "node-shop");
    assert_eq!(exc["operation"], "POST /cart/{id}");

    let d = dashboard(server.addr, &agent);
    let pains = d["open_pains"].as_array().unwrap();
    assert_eq!(pains.len(), 2, "{d}");
    assert_eq!(pains[0]["signal_type"], "exception");
    assert_eq!(pains[0]["count"], 12);
    assert_eq!(pains[0]["fingerprint"]["components"]["exception.type"], "TypeError");
    assert!(
        pains[0]["fingerprint"]["components"]["frames"].as_str().unwrap().contains("send.js:addToCart"),
        "{}",
        pains[0]
    );
    assert_eq!(pains[1]["signal_type"], "http_5xx");
    assert_eq!(pains[1]["count"], 5);
}

#[test]
fn node_sdk_json_exporter() {
    check_node("json");
}

#[test]
fn node_sdk_protobuf_exporter() {
    check_node("proto");
}

#[test]
fn python_sdk_protobuf_exporter() {
    let py = python();
    let (_dir, server, producer, agent) = setup("python");
    let url = format!("http://{}/v1/traces", server.addr);
    let mut cmd = Command::new(py);
    cmd.args(["send.py", &url, &producer, "py-billing"]);
    run_client(cmd);

    let records = read_all(server.addr, &agent);
    assert_eq!(records.len(), 23, "9 exceptions + 4 errors + 10 healthy");
    let d = dashboard(server.addr, &agent);
    let pains = d["open_pains"].as_array().unwrap();
    assert_eq!(pains.len(), 2, "{d}");
    assert_eq!(pains[0]["signal_type"], "exception");
    assert_eq!(pains[0]["count"], 9, "nine invoice ids, one pain");
    assert_eq!(pains[0]["fingerprint"]["components"]["exception.type"], "KeyError");
    assert_eq!(pains[0]["operation"], "GET /invoices/{id}");
    assert_eq!(pains[1]["signal_type"], "error");
    assert_eq!(pains[1]["count"], 4, "four order numbers, one pain");
    assert_eq!(pains[1]["fingerprint"]["components"]["message"], "card declined for order <num>");
}

//! A real `ratchet serve` process: smoke over a socket, durability across
//! SIGKILL, graceful SIGTERM, and the coded error outside a workspace.

use crate::support::server::*;
use prost::Message;
use serde_json::Value;

fn provision(addr: std::net::SocketAddr, name: &str) -> Value {
    let (s, v) = http(
        addr,
        "POST",
        "/v1/provision",
        &[("content-type", "application/json")],
        format!(r#"{{"project_name":"{name}"}}"#).as_bytes(),
    );
    assert_eq!(s, 201, "{v}");
    v
}

#[test]
fn smoke_over_a_real_socket() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("loopkit.db"), &[]);
    let addr = server.addr;
    let (s, v) = http(addr, "GET", "/healthz", &[], b"");
    assert_eq!((s, v["ok"].as_bool()), (200, Some(true)));
    let p = provision(addr, "smoke");
    assert!(p["ingest_url"].as_str().unwrap().starts_with(&format!("http://{addr}")));
    let (producer, agent) = (key(&p, "producer_key"), key(&p, "agent_key"));
    let body = request("svc", vec![with_error(span(1, "GET /a/123", 1), "boom for id 7")]).encode_to_vec();
    let auth = format!("Bearer {producer}");
    let (s, _) = http(
        addr,
        "POST",
        "/v1/traces",
        &[("content-type", "application/x-protobuf"), ("authorization", &auth)],
        &body,
    );
    assert_eq!(s, 200);
    let auth = format!("Bearer {agent}");
    let (s, d) = http(addr, "GET", "/v1/dashboard", &[("authorization", &auth)], b"");
    assert_eq!(s, 200);
    assert_eq!(d["open_pains"][0]["operation"], "GET /a/{id}");
    let (s, v) = http(addr, "GET", "/v1/traces", &[], b"");
    assert_eq!(s, 405);
    assert!(v["nextAction"].is_string());
    let secret = dir.path().join("loopkit.secret");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
    let status = server.terminate();
    assert!(status.success(), "SIGTERM ends the server cleanly: {status:?}");
}

#[test]
fn spans_acknowledged_before_sigkill_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("loopkit.db");
    let server = Server::start(&db, &[]);
    let p = provision(server.addr, "durable");
    let (producer, agent) = (key(&p, "producer_key"), key(&p, "agent_key"));
    let auth = format!("Bearer {producer}");
    let mut client = Http::connect(server.addr).unwrap();
    let mut acknowledged = 0;
    for batch in 0..40u64 {
        let spans: Vec<_> = (0..50).map(|i| span(batch * 1000 + i, "work", 5)).collect();
        let (s, _) = client
            .request(
                "POST",
                "/v1/traces",
                &[("content-type", "application/x-protobuf"), ("authorization", &auth)],
                &request("svc", spans).encode_to_vec(),
            )
            .unwrap();
        assert_eq!(s, 200);
        acknowledged += 50;
    }
    server.kill9();
    let server = Server::start(&db, &[]);
    let auth = format!("Bearer {agent}");
    let mut count = 0;
    let mut cursor = String::new();
    loop {
        let path = format!("/v1/telemetry?limit=1000{cursor}");
        let (s, v) = http(server.addr, "GET", &path, &[("authorization", &auth)], b"");
        assert_eq!(s, 200, "{v}");
        count += v["records"].as_array().unwrap().len();
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(count, acknowledged);
}

#[test]
fn outside_a_workspace_without_db_is_a_coded_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ratchet"))
        .args(["--json", "serve", "--addr", "127.0.0.1:0"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], "SERVE_NO_DATABASE");
    assert!(v["nextAction"].as_str().unwrap().contains("--db"));
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("loopkit.db");
    let server = Server::start(&db, &[]);
    let addr = server.addr;
    let p = provision(addr, "inflight");
    let (producer, agent) = (key(&p, "producer_key"), key(&p, "agent_key"));
    // A large JSON batch keeps the server busy for a while (decoding, normalising, storing).
    let spans: Vec<_> = (0..20_000).map(|i| with_error(span(i, "work", 5), "boom")).collect();
    let body = serde_json::to_vec(&request("svc", spans)).unwrap();
    let auth = format!("Bearer {producer}");
    let (head_sent, sent) = std::sync::mpsc::channel();
    let sender = std::thread::spawn(move || {
        let mut c = Http::connect(addr).unwrap();
        let headers = [("content-type", "application/json"), ("authorization", auth.as_str())];
        c.send_head("POST", "/v1/traces", &headers, body.len()).unwrap();
        head_sent.send(()).unwrap();
        c.send_body(&body).unwrap();
        c.response().unwrap().0
    });
    // The request has begun (its head is on the wire, its body still coming)
    // when the server is told to stop.
    sent.recv().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let status = server.terminate();
    assert_eq!(sender.join().unwrap(), 200, "the in-flight request was answered");
    assert!(status.success());
    let server = Server::start(&db, &[]);
    let auth = format!("Bearer {agent}");
    let (_, d) = http(server.addr, "GET", "/v1/dashboard", &[("authorization", &auth)], b"");
    assert_eq!(d["summary"]["spans"], 20_000);
}

#[test]
fn in_a_workspace_the_database_defaults_to_dot_ratchet() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    assert!(std::process::Command::new("git").args(["init", "-q"]).current_dir(root).status().unwrap().success());
    std::fs::create_dir_all(root.join("config")).unwrap();
    std::fs::write(root.join("config/rails.toml"), "").unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ratchet"))
        .args(["-q", "serve", "--addr", "127.0.0.1:0", "--print-addr"])
        .current_dir(root)
        .env("RATCHET_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let addr: std::net::SocketAddr = line.trim().parse().unwrap();
    let (s, _) = http(addr, "GET", "/healthz", &[], b"");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(s, 200);
    assert!(root.join(".ratchet/loopkit.db").is_file());
    assert!(root.join(".ratchet/loopkit.secret").is_file());
}

//! `ratchet serve` against clients that misbehave on purpose, over raw TCP
//! to the real binary: a whole oversized body sent without waiting for
//! `100-continue`, half-sent headers, a slowloris trickle, a body that
//! stops, a client that never reads, idle keep-alive connections, and
//! SIGTERM with all of these open. Plus the attacker of the recovery form,
//! and the flags that are refused.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::server::*;
use serde_json::Value;

/// Short bounds so the tests run in seconds.
const FAST: &[&str] =
    &["--header-timeout", "1", "--body-timeout", "1", "--shutdown-grace", "2", "--body-limit-mib", "1"];

fn producer_key(addr: SocketAddr) -> String {
    let (s, v) = http(
        addr,
        "POST",
        "/v1/provision",
        &[("content-type", "application/json")],
        br#"{"project_name":"hardening"}"#,
    );
    assert_eq!(s, 201, "{v}");
    key(&v, "producer_key")
}

fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Everything the server sends until it closes (or the read times out).
fn read_all(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if !out.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

fn status_of(resp: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(resp);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status line in {text:?}"))
}

/// Whether the server has closed `s` (EOF) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn a_whole_oversized_body_sent_without_expect_gets_a_413_not_a_reset() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("loopkit.db"), FAST);
    let key = producer_key(server.addr);
    let body = vec![b'x'; 3 << 20];

    // Declared length over the limit; the client writes everything at once.
    let mut s = raw(server.addr);
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\nauthorization: Bearer {key}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body).expect("the server reads the body it refuses");
    let resp = read_all(&mut s).expect("the 413 arrives, not a reset");
    assert_eq!(status_of(&resp), 413);
    let text = String::from_utf8_lossy(&resp).to_ascii_lowercase();
    assert!(text.contains("connection: close"), "{text}");
    assert!(text.contains("payload_too_large"), "a google.rpc.Status naming the code: {text}");

    // Chunked, no length: the limit is found while streaming.
    let mut s = raw(server.addr);
    let head = format!(
        "POST /v1/signup HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body).unwrap();
    s.write_all(b"\r\n0\r\n\r\n").unwrap();
    assert_eq!(status_of(&read_all(&mut s).unwrap()), 413);

    // With Expect: 100-continue the answer comes at once and no body is asked for.
    let mut s = raw(server.addr);
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\nauthorization: Bearer {key}\r\nexpect: 100-continue\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let resp = read_all(&mut s).unwrap();
    assert!(!String::from_utf8_lossy(&resp).contains("100 Continue"));
    assert_eq!(status_of(&resp), 413);

    // The server is still there for everyone else.
    assert_eq!(http(server.addr, "GET", "/healthz", &[], b"").0, 200);
}

#[test]
fn half_sent_headers_slowloris_and_idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("loopkit.db"), FAST);
    let addr = server.addr;

    // Many connections with half-sent headers do not stop a normal client...
    let mut half: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = raw(addr);
            s.write_all(b"POST /v1/signup HTTP/1.1\r\nhost: x\r\n").unwrap();
            s
        })
        .collect();
    assert_eq!(http(addr, "GET", "/healthz", &[], b"").0, 200);
    // ...and are closed once the header timeout (1 s) has passed.
    let started = Instant::now();
    for s in &mut half {
        assert!(closed_within(s, Duration::from_secs(4)), "a half-sent request was left open");
    }
    assert!(started.elapsed() < Duration::from_secs(4));

    // Slowloris: one header byte every 200 ms never completes a head; the
    // timeout counts from the start of the head, not from the last byte.
    let mut s = raw(addr);
    let started = Instant::now();
    let mut closed_after = None;
    for b in
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            .iter()
    {
        if s.write_all(&[*b]).is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        if started.elapsed() > Duration::from_secs(2) && closed_within(&mut s, Duration::from_millis(10)) {
            closed_after = Some(started.elapsed());
            break;
        }
    }
    let closed_after = closed_after.expect("the slowloris connection was never closed");
    assert!(closed_after < Duration::from_secs(5), "closed after {closed_after:?}");

    // An idle keep-alive connection is closed too.
    let mut c = Http::connect(addr).unwrap();
    assert_eq!(c.request("GET", "/healthz", &[], b"").unwrap().0, 200);
    std::thread::sleep(Duration::from_millis(2_500));
    assert!(c.request("GET", "/healthz", &[], b"").is_err(), "the idle connection was still open");
}

#[test]
fn a_body_that_stops_is_a_408() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("loopkit.db"), FAST);
    let mut s = raw(server.addr);
    s.write_all(
        b"POST /v1/signup HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"pro",
    )
    .unwrap();
    let started = Instant::now();
    let resp = read_all(&mut s).unwrap();
    assert_eq!(status_of(&resp), 408);
    assert!(String::from_utf8_lossy(&resp).contains("BODY_TIMEOUT"));
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn sigterm_ends_the_server_within_the_grace_with_half_sent_requests_open() {
    let dir = tempfile::tempdir().unwrap();
    // Long header and body timeouts: only the shutdown grace (2 s) can end these.
    let server = Server::start(
        &dir.path().join("loopkit.db"),
        &["--header-timeout", "60", "--body-timeout", "60", "--shutdown-grace", "2"],
    );
    let addr = server.addr;
    let mut half_head = raw(addr);
    half_head.write_all(b"POST /v1/signup HTTP/1.1\r\nhost: x\r\n").unwrap();
    let mut half_body = raw(addr);
    half_body
        .write_all(
            b"POST /v1/signup HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
        )
        .unwrap();
    let mut idle = Http::connect(addr).unwrap();
    assert_eq!(idle.request("GET", "/healthz", &[], b"").unwrap().0, 200);
    std::thread::sleep(Duration::from_millis(200));

    let started = Instant::now();
    let status = server.terminate();
    let took = started.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?} with half-sent requests open (grace 2 s)");
    for s in [&mut half_head, &mut half_body] {
        assert!(closed_within(s, Duration::from_secs(1)));
    }
}

#[test]
fn a_client_that_never_reads_its_response_does_not_hold_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("loopkit.db"), &["--shutdown-grace", "2"]);
    let addr = server.addr;
    // Pipeline many requests for a large document and never read.
    let mut s = raw(addr);
    let mut req = Vec::new();
    for _ in 0..2_000 {
        req.extend_from_slice(b"GET /openapi.json HTTP/1.1\r\nhost: x\r\n\r\n");
    }
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = s.write_all(&req);
    assert_eq!(http(addr, "GET", "/healthz", &[], b"").0, 200, "others are still served");
    let started = Instant::now();
    assert!(server.terminate().success());
    assert!(started.elapsed() < Duration::from_secs(5));
}

// ---- the recovery form, as the attacker ------------------------------------

fn json_post(
    app: &App,
    path: &str,
    body: &Value,
) -> impl std::future::Future<Output = (axum::http::StatusCode, Value)> {
    app.json(post_json(path, None, &body.to_string()))
}

#[tokio::test]
async fn wrong_recovery_codes_cannot_lock_the_owner_out() {
    use axum::http::StatusCode;
    let app = App::with(|c| {
        c.mint_limit = 2;
        c.recover_limit = 3;
    });
    let owner = app.provision("shop").await;
    let other = app.provision("other").await;
    // The attacker exhausts public minting from the (shared) address...
    let (s, _) = json_post(&app, "/v1/signup", &serde_json::json!({})).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);

    let wrong = |p: &Value| serde_json::json!({"project_id": p["project_id"], "recovery_code": "f".repeat(64)});
    let right = |p: &Value| serde_json::json!({"project_id": p["project_id"], "recovery_code": p["recovery_code"]});
    // ...which does not block a recovery.
    let (s, v) = json_post(&app, "/v1/recover", &right(&owner)).await;
    assert_eq!(s, StatusCode::OK, "mint exhaustion blocked recovery: {v}");

    // Then guesses codes for the owner's project: 401 until the project's
    // bucket is full, then 429 with a Retry-After.
    for _ in 0..3 {
        assert_eq!(json_post(&app, "/v1/recover", &wrong(&owner)).await.0, StatusCode::UNAUTHORIZED);
    }
    let (s, h, b) = app.send(post_json("/v1/recover", None, &wrong(&owner).to_string())).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["code"], "RECOVERY_RATE_LIMITED");

    // The owner, with the right code, still gets in.
    let (s, v) = json_post(&app, "/v1/recover", &right(&owner)).await;
    assert_eq!(s, StatusCode::OK, "the owner was locked out: {v}");
    assert!(v["producer_key"].as_str().unwrap().starts_with("lkp_"));
    // Another project's bucket is its own.
    assert_eq!(json_post(&app, "/v1/recover", &wrong(&other)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_recovery_codes_do_not_spend_the_minting_bucket() {
    use axum::http::StatusCode;
    let app = App::with(|c| c.mint_limit = 2);
    let owner = app.provision("shop").await;
    for _ in 0..20 {
        let body = serde_json::json!({"project_id": owner["project_id"], "recovery_code": "0".repeat(64)});
        let (s, _) = json_post(&app, "/v1/recover", &body).await;
        assert!(s == StatusCode::UNAUTHORIZED || s == StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(json_post(&app, "/v1/signup", &serde_json::json!({})).await.0, StatusCode::CREATED);
}

// ---- flags that are refused ----------------------------------------------------

#[test]
fn flags_that_cannot_work_are_refused_with_a_code() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("loopkit.db");
    for (args, code) in [
        (&["--sandbox-days", "0"][..], "BAD_SANDBOX_DAYS"),
        (&["--header-timeout", "0"][..], "BAD_TIMEOUT"),
        (&["--cors-origin", "localhost:3000/app"][..], "BAD_CORS_ORIGIN"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ratchet"))
            .args(["--json", "serve", "--addr", "127.0.0.1:0", "--db"])
            .arg(&db)
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!("{args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
        });
        assert_eq!(v["code"], code, "{args:?}");
        assert!(v["nextAction"].is_string());
    }
    assert!(!db.exists(), "nothing was created by a refused start");
}

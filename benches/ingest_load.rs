//! Ingest load generator: OTLP/HTTP protobuf and JSON batches of 512 spans,
//! over loopback, with several keep-alive connections, against a release
//! `ratchet serve` process.
//!
//!     cargo build --release && cargo bench --bench ingest_load
//!
//! Env: BENCH_SPANS (spans per encoding, default 1,048,576), BENCH_CONNS
//! (connections, default 4), BENCH_SYNC (normal|full), RATCHET_BIN (default
//! target/release/ratchet). Reports sustained spans/s end to end (every
//! request acknowledged, then the stored count checked through the API),
//! p50/p99 request latency, the server's CPU time, and its idle and peak RSS.

#[path = "../tests/it/support/http.rs"]
mod http;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as AV};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span::Event};
use prost::Message;

const BATCH: usize = 512;

fn kv(k: &str, v: AV) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
}

fn s(v: &str) -> AV {
    AV::StringValue(v.into())
}

/// splitmix64: a well-mixed 64-bit value of `x` (never 0 for our inputs).
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) | 1
}

/// One batch of realistic spans with unique ids: ~3% exceptions, ~2% 5xx.
fn batch(first_id: u64, now: u64) -> ExportTraceServiceRequest {
    const ROUTES: [&str; 6] = ["/users/{id}", "/orders", "/orders/{id}", "/cart", "/search", "/checkout"];
    let spans = (0..BATCH as u64)
        .map(|i| {
            let id = first_id + i;
            let route = ROUTES[(id % 6) as usize];
            let status = if id % 50 == 7 { 503 } else { 200 };
            // Random-looking ids, as real SDKs make them; start times move forward.
            let start = now - 30_000_000_000 + id * 5_000;
            let mut sp = Span {
                trace_id: [mix(id).to_be_bytes(), mix(id ^ 0xbe4c).to_be_bytes()].concat(),
                span_id: mix(id + 1).to_be_bytes().to_vec(),
                parent_span_id: mix(id + 0x1000_0000).to_be_bytes().to_vec(),
                name: format!("GET {}", route.replace("{id}", &(id % 9973).to_string())),
                kind: 2,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 3_000_000 + (id % 17) * 100_000,
                attributes: vec![
                    kv("http.request.method", s("GET")),
                    kv("http.route", s(route)),
                    kv("http.response.status_code", AV::IntValue(status)),
                    kv("user.id", s(&format!("u{}", id % 1000))),
                    kv("server.address", s("api.internal")),
                    kv("feature.flag", s(if id % 3 == 0 { "new-cart" } else { "control" })),
                ],
                ..Default::default()
            };
            if id % 33 == 5 {
                sp.events.push(Event {
                    name: "exception".into(),
                    time_unix_nano: sp.start_time_unix_nano,
                    attributes: vec![
                        kv("exception.type", s(["TypeError", "KeyError", "Timeout"][(id % 3) as usize])),
                        kv("exception.message", s(&format!("cannot load item {} for user u{}", id % 5000, id % 1000))),
                        kv("exception.stacktrace", s("Error\n    at load (/srv/app/src/items.js:10:5)\n    at handle (/srv/app/src/routes.js:3:1)")),
                    ],
                    ..Default::default()
                });
                sp.status = Some(Status { code: 2, message: "failed".into() });
            }
            sp
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s("bench-api")),
                    kv("service.version", s("1.4.2")),
                    kv("deployment.environment.name", s("bench")),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn proc_status(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn cpu_seconds(pid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let spans_per_encoding = env_num("BENCH_SPANS", 2048 * BATCH);
    let conns = env_num("BENCH_CONNS", 4);
    let sync = std::env::var("BENCH_SYNC").unwrap_or_else(|_| "normal".into());
    let bin = std::env::var("RATCHET_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/ratchet"));
    assert!(bin.is_file(), "no release binary at {}: run cargo build --release first", bin.display());
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(&bin)
        .args(["-q", "serve", "--addr", "127.0.0.1:0", "--print-addr", "--synchronous", &sync, "--db"])
        .arg(dir.path().join("loopkit.db"))
        .env("RATCHET_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr: SocketAddr = line.trim().parse().unwrap();
    let (st, p) = http::http(
        addr,
        "POST",
        "/v1/provision",
        &[("content-type", "application/json")],
        br#"{"project_name":"bench"}"#,
    );
    assert_eq!(st, 201);
    let producer = p["producer_key"].as_str().unwrap().to_string();
    let agent = p["agent_key"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(500));
    let idle_kb = proc_status(pid, "VmRSS:");
    println!("ratchet serve {} (synchronous={sync}), {conns} connections, batches of {BATCH} spans", bin.display());
    println!("idle RSS after start and provision: {:.1} MB", idle_kb as f64 / 1024.0);

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut next_id = 1u64;
    let mut stored_before = 0u64;
    for encoding in ["protobuf", "json"] {
        let batches = spans_per_encoding / BATCH;
        let bodies: Vec<Vec<u8>> = (0..batches)
            .map(|_| {
                let b = batch(next_id, now);
                next_id += BATCH as u64;
                if encoding == "protobuf" { b.encode_to_vec() } else { serde_json::to_vec(&b).unwrap() }
            })
            .collect();
        let bytes: usize = bodies.iter().map(Vec::len).sum();
        let ct = if encoding == "protobuf" { "application/x-protobuf" } else { "application/json" };
        let cpu0 = cpu_seconds(pid);
        let started = Instant::now();
        let chunks: Vec<Vec<Vec<u8>>> = {
            let mut c = vec![Vec::new(); conns];
            for (i, b) in bodies.into_iter().enumerate() {
                c[i % conns].push(b);
            }
            c
        };
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|mine| {
                let auth = format!("Bearer {producer}");
                std::thread::spawn(move || {
                    let mut client = http::Http::connect(addr).unwrap();
                    let mut lat = Vec::with_capacity(mine.len());
                    for body in mine {
                        let t = Instant::now();
                        let (status, resp) = client
                            .request("POST", "/v1/traces", &[("content-type", ct), ("authorization", &auth)], &body)
                            .unwrap();
                        lat.push(t.elapsed());
                        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
                    }
                    lat
                })
            })
            .collect();
        let mut lat: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        let acked = started.elapsed();
        // End to end: the stored count is visible through the API.
        let auth = format!("Bearer {agent}");
        let (st, d) = http::http(addr, "GET", "/v1/dashboard?window=2h", &[("authorization", &auth)], b"");
        assert_eq!(st, 200);
        let stored = d["summary"]["spans"].as_u64().unwrap() - stored_before;
        let total = started.elapsed();
        stored_before += stored;
        assert_eq!(stored, (batches * BATCH) as u64, "every acknowledged span is stored and counted");
        let cpu = cpu_seconds(pid) - cpu0;
        lat.sort();
        println!(
            "{encoding:>8}: {} spans in {:.2} s = {:.0} spans/s end to end (acked in {:.2} s); {:.1} MB sent; \
             latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; server CPU {:.2} s = {:.0} spans per CPU-second",
            stored,
            total.as_secs_f64(),
            stored as f64 / total.as_secs_f64(),
            acked.as_secs_f64(),
            bytes as f64 / 1e6,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            percentile(&lat, 1.0),
            cpu,
            stored as f64 / cpu.max(1e-9),
        );
    }
    println!("peak RSS (VmHWM): {:.1} MB", proc_status(pid, "VmHWM:") as f64 / 1024.0);
    std::thread::sleep(Duration::from_secs(2));
    println!("RSS after the load: {:.1} MB", proc_status(pid, "VmRSS:") as f64 / 1024.0);
    let _ = child.kill();
    let _ = child.wait();
}

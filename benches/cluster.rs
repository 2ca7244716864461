//! Clustering benchmark: 1,000,000 stored failure records, against Python's
//! drain3 clustering the same messages in the same run.
//!
//!     bash benches/run-cluster-bench.sh     (installs drain3 into benches/.venv, then runs this)
//!
//! Measures (BENCH_RECORDS, default 1,000,000):
//! 1. fingerprinting the messages in memory (the pure clustering step, like
//!    for like with drain3's add_log_message);
//! 2. re-clustering the stored records: read every failing record from
//!    SQLite and recompute its fingerprint and pain id (Store::recluster);
//! 3. a full diagnose over the window (counts per pain, evidence,
//!    over-represented attributes, packets) — the endpoint's work;
//! 4. drain3 (benches/drain3_cluster.py) over the same messages.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as AV};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span::Event};
use ratchet::loopkit::fingerprint::{Fingerprint, FingerprintInput};
use ratchet::loopkit::keys::KeyKind;
use ratchet::loopkit::normalise::{SlowRules, normalise};
use ratchet::loopkit::window::Window;
use ratchet::serve::insight::{self, DiagnoseOptions};
use ratchet::serve::store::{NewProject, Store, Synchronous};

/// (exception type, service, operation, message template); `{n}` numbers,
/// `{h}` hex, `{u}` uuid, `{p}` a path, `{q}` a quoted value, `{e}` an email, `{url}` a url.
const TEMPLATES: &[(&str, &str, &str, &str)] = &[
    ("NotFound", "users", "GET /users/{id}", "user {n} not found"),
    ("Timeout", "orders", "POST /orders", "timeout after {n}ms calling {url}"),
    ("PermissionError", "files", "GET /files/{id}", "cannot open {p}: permission denied"),
    ("StateError", "orders", "POST /orders/{id}/ship", "order {u} stuck in state {q}"),
    ("ValidationError", "accounts", "POST /accounts", "invalid email {e} for account {n}"),
    ("KeyError", "billing", "GET /invoices/{id}", "missing field {q} in invoice {n}"),
    ("IntegrityError", "billing", "POST /payments", "duplicate key {h} in table payments"),
    ("ConnectionError", "search", "GET /search", "connection to 10.0.{n}.{n}:5432 refused after {n} retries"),
    ("TypeError", "cart", "POST /cart/{id}", "cannot read property {q} of undefined at item {n}"),
    ("QuotaExceeded", "ai", "POST /complete", "quota of {n} tokens exceeded for key {h}"),
    ("ParseError", "import", "POST /import", "unexpected token at line {n} column {n} in {p}"),
    ("RateLimited", "gateway", "GET /v1/items", "rate limited: retry after {n} seconds for client {u}"),
];

fn fill(t: &str, i: u64) -> String {
    let mut out = String::with_capacity(t.len() + 40);
    let mut rest = t;
    let mut k = 0u64;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').map(|e| start + e).unwrap_or(rest.len() - 1);
        let x = i.wrapping_mul(2654435761).wrapping_add(k * 97) % 100_000;
        k += 1;
        match &rest[start + 1..end] {
            "n" => out.push_str(&x.to_string()),
            "h" => out.push_str(&format!("{:012x}", x * 7919 + 0xabc000)),
            "u" => out.push_str(&format!("{:08x}-4e29-41d4-a716-{:012x}", x, x * 31)),
            "p" => out.push_str(&format!("/var/data/shard-{}/file-{}.db", x % 16, x)),
            "q" => out.push_str(&format!("'field_{x}'")),
            "e" => out.push_str(&format!("user{x}@example.com")),
            "url" => out.push_str(&format!("https://api.example.com/v1/items/{x}?page={}", x % 7)),
            other => out.push_str(other),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(AV::StringValue(v.into())) }), ..Default::default() }
}

fn main() {
    let n: u64 = std::env::var("BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let messages_path = dir.path().join("messages.txt");
    let records: Vec<(usize, String)> = (0..n)
        .map(|i| {
            let t = (i.wrapping_mul(7) % TEMPLATES.len() as u64) as usize;
            (t, fill(TEMPLATES[t].3, i))
        })
        .collect();
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&messages_path).unwrap());
        for (t, m) in &records {
            writeln!(f, "{}: {}", TEMPLATES[*t].0, m).unwrap();
        }
    }
    println!(
        "{n} failure records from {} templates (messages with numbers, ids, hex, uuids, urls, emails, paths, quoted values)",
        TEMPLATES.len()
    );

    // 1. Fingerprinting in memory.
    let started = Instant::now();
    let mut ids = std::collections::HashSet::new();
    for (t, m) in &records {
        let (ty, service, op, _) = TEMPLATES[*t];
        let fp = Fingerprint::of(&FingerprintInput {
            signal: "exception",
            service,
            operation: op,
            exception_type: Some(ty),
            exception_message: Some(m),
            ..Default::default()
        });
        ids.insert(fp.pain_id());
    }
    let fp_secs = started.elapsed().as_secs_f64();
    println!(
        "ratchet fingerprint (in memory): {n} messages in {fp_secs:.3} s = {:.0} msg/s -> {} pains",
        n as f64 / fp_secs,
        ids.len()
    );

    // Store the records (through normalise, as ingest does).
    let store = Store::open(&dir.path().join("loopkit.db"), Synchronous::Normal).unwrap();
    let digest = ratchet::loopkit::keys::mint(KeyKind::Producer).unwrap().digest;
    let project = store
        .create_project(&NewProject {
            public_id: "prj_bench",
            name: "bench",
            operator: "",
            provisioned: true,
            tier: "permanent",
            quota_spans: i64::MAX,
            expires_at: None,
            keys: &[(KeyKind::Producer, digest)],
            now: 0,
        })
        .unwrap();
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let started = Instant::now();
    for (chunk_no, chunk) in records.chunks(4096).enumerate() {
        let mut by_template: Vec<Vec<Span>> = vec![Vec::new(); TEMPLATES.len()];
        for (j, (t, m)) in chunk.iter().enumerate() {
            let id = (chunk_no * 4096 + j) as u64 + 1;
            let (ty, _, op, _) = TEMPLATES[*t];
            by_template[*t].push(Span {
                trace_id: [id.to_be_bytes(), 7u64.to_be_bytes()].concat(),
                span_id: id.to_be_bytes().to_vec(),
                name: op.replace("{id}", &(id % 1000).to_string()),
                start_time_unix_nano: now_ns - 600_000_000_000 + id * 1000,
                end_time_unix_nano: now_ns - 600_000_000_000 + id * 1000 + 1_000_000,
                attributes: vec![kv("region", if id % 4 == 0 { "eu" } else { "us" })],
                events: vec![Event {
                    name: "exception".into(),
                    attributes: vec![kv("exception.type", ty), kv("exception.message", m)],
                    ..Default::default()
                }],
                status: Some(Status { code: 2, message: String::new() }),
                ..Default::default()
            });
        }
        let req = ExportTraceServiceRequest {
            resource_spans: by_template
                .into_iter()
                .enumerate()
                .map(|(t, spans)| ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![kv("service.name", TEMPLATES[t].1)],
                        ..Default::default()
                    }),
                    scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                    ..Default::default()
                })
                .collect(),
        };
        let norm = normalise(&req, &SlowRules::default(), now_ns as i64);
        store.ingest(project.rowid, norm.records, norm.changes, 0).unwrap();
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    println!(
        "stored {n} records (normalise + fingerprint + SQLite) in {ingest_secs:.2} s = {:.0} records/s",
        n as f64 / ingest_secs
    );

    // 2. Re-cluster the stored records.
    let started = Instant::now();
    let (seen, pains) = store.recluster(project.rowid, false).unwrap();
    let rc_secs = started.elapsed().as_secs_f64();
    println!(
        "ratchet recluster (read {seen} stored records + fingerprint): {rc_secs:.3} s = {:.0} records/s -> {pains} pains",
        seen as f64 / rc_secs
    );

    // 3. Diagnose over the window.
    let w = Window::parse("1h").unwrap();
    let started = Instant::now();
    let d = insight::diagnose(
        &store,
        &project,
        &w,
        now_ns as i64,
        &DiagnoseOptions { max_pains: 100, evidence: 5, pain_ids: None, signal_types: None },
    )
    .unwrap();
    let dg_secs = started.elapsed().as_secs_f64();
    println!(
        "ratchet diagnose (window 1h, {} spans): {dg_secs:.3} s -> {} pains, {} packets",
        d["window"]["spans"],
        d["pain_count"],
        d["packets"].as_array().map(|a| a.len()).unwrap_or(0)
    );

    // 4. drain3 on the same messages.
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/.venv/bin/python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/drain3_cluster.py");
    if !py.is_file() {
        println!("drain3: not installed; run `bash benches/run-cluster-bench.sh` to install it and compare");
        return;
    }
    let out = Command::new(&py).arg(&script).arg(&messages_path).output().expect("run drain3");
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        return;
    }
    let drain_secs: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("drain3_seconds="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN);
    println!(
        "ratio: ratchet fingerprint is {:.1}x drain3's throughput in memory; recluster of stored records is {:.1}x",
        drain_secs / fp_secs,
        drain_secs / rc_secs
    );
}

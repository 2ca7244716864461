//! Agents API load: signed attestations and objections from many bots on
//! many candidates, over loopback keep-alive connections, against a release
//! `ratchet serve` whose agents ledger is durable SQLite (WAL,
//! `synchronous = FULL`, group commit). Beside it: how many `verify_strict`
//! one core does in this same run, the bound on signed writes per core.
//!
//!     cargo build --release && cargo bench --bench agents_load
//!
//! Env: BENCH_WRITES (default 40,000), BENCH_BOTS (default 200),
//! BENCH_CANDIDATES (default 20), BENCH_CONNS (default 16), RATCHET_BIN
//! (default target/release/ratchet). The requests are signed before the
//! clock starts (so the 2 cores go to the server, not to the load
//! generator's signing); every request must answer 202.

#[path = "../tests/it/support/http.rs"]
mod http;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ratchet::agents::json::{KeyOrder, canonical, parse};
use ratchet::agents::signed::{Identity, Target, message};
use serde_json::{Value, json};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn git(dir: &Path, args: &[&str]) {
    let ok =
        Command::new("git").args(args).current_dir(dir).env("GIT_CONFIG_NOSYSTEM", "1").status().unwrap().success();
    assert!(ok, "git {args:?}");
}

struct Req {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

fn signed(bot: &Identity, path: &str, body: &Value, idem: Option<String>) -> Req {
    let text = body.to_string();
    let nonce = ratchet::agents::signed::fresh_nonce();
    let ts = chrono::Utc::now().timestamp_millis().to_string();
    let c = canonical(&parse(text.as_bytes()).unwrap(), KeyOrder::Code);
    let sig = bot.sign(message(&Target { audience: "ratchet", method: "POST", path }, &ts, &nonce, &c).as_bytes());
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("x-agent-timestamp".into(), ts),
        ("x-agent-nonce".into(), nonce),
        ("x-agent-signature".into(), b64(&sig)),
    ];
    if let Some(k) = idem {
        headers.push(("idempotency-key".into(), k));
    }
    Req { path: path.to_string(), headers, body: text }
}

fn send(h: &mut http::Http, r: &Req) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (s, b) = h.request("POST", &r.path, &headers, r.body.as_bytes()).unwrap();
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn main() {
    let writes = env("BENCH_WRITES", 40_000);
    let bots_n = env("BENCH_BOTS", 200);
    let cands = env("BENCH_CANDIDATES", 20);
    let conns = env("BENCH_CONNS", 16);
    let bin = std::env::var("RATCHET_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/ratchet"));
    assert!(bin.is_file(), "build the release binary first: cargo build --release ({})", bin.display());

    // A workspace whose rails take remote candidates without limits on rate.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["config", "user.name", "Bench"]);
    git(&root, &["config", "user.email", "bench@example.com"]);
    for i in 0..cands {
        std::fs::write(root.join(format!("docs/page{i}.md")), format!("# page {i}\n")).unwrap();
    }
    let template = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rails.toml")).unwrap();
    let rails = template.replace("command = \"cargo test\"", "command = \"true\"")
        + "\n[agents]\nwrites_per_minute = 10000000\n";
    std::fs::create_dir_all(root.join("config")).unwrap();
    std::fs::write(root.join("config/rails.toml"), rails).unwrap();
    let home = dir.path().join("home");
    let run = |args: &[&str]| {
        let out = Command::new(&bin)
            .args(args)
            .current_dir(&root)
            .env("HOME", &home)
            .env("XDG_STATE_HOME", home.join("state"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["init"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "init"]);
    let mut child = Command::new(&bin)
        .args(["-q", "serve", "--addr", "127.0.0.1:0", "--print-addr"])
        .current_dir(&root)
        .env("HOME", &home)
        .env("XDG_STATE_HOME", home.join("state"))
        .env("RATCHET_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr: SocketAddr = line.trim().parse().unwrap();
    let head =
        String::from_utf8(Command::new("git").args(["rev-parse", "HEAD"]).current_dir(&root).output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();

    // Bots join; some propose candidates.
    let bots: Vec<Identity> = (0..bots_n).map(|_| Identity::generate().unwrap()).collect();
    let mut h = http::Http::connect(addr).unwrap();
    for b in &bots {
        let (s, v) = send(&mut h, &signed(b, "/v1/agents/join", &json!({"botId": b.bot_id()}), None));
        assert_eq!(s, 201, "{v}");
    }
    let t = Instant::now();
    let mut stories = Vec::new();
    for i in 0..cands {
        let author = &bots[i % bots.len()];
        let body = json!({"botId": author.bot_id(), "verified": false, "base": head, "rationale": "bench",
            "patch": {"op": "append", "path": format!("docs/page{i}.md"), "content": "more\n"}, "next_steps": []});
        let (s, v) = send(&mut h, &signed(author, "/v1/candidates", &body, Some(format!("bench-{i}"))));
        assert_eq!(s, 202, "{v}");
        stories.push((
            i % bots.len(),
            v["storyId"].as_str().unwrap().to_string(),
            v["packetHash"].as_str().unwrap().to_string(),
        ));
    }
    let per_candidate = t.elapsed() / cands.max(1) as u32;

    // The requests, signed before the clock starts.
    let reqs: Vec<Req> = (0..writes)
        .map(|i| {
            let (author, story, packet) = &stories[i % stories.len()];
            let mut b = (i * 7 + 1) % bots.len();
            if b == *author {
                b = (b + 1) % bots.len();
            }
            let bot = &bots[b];
            if i % 10 == 9 {
                signed(
                    bot,
                    "/v1/agents/objections",
                    &json!({"botId": bot.bot_id(), "storyId": story, "packetHash": packet,
                    "verified": false, "role": "RISK", "severity": "LOW", "reason": "bench"}),
                    None,
                )
            } else {
                signed(
                    bot,
                    "/v1/agents/attestations",
                    &json!({"botId": bot.bot_id(), "storyId": story, "packetHash": packet,
                    "verified": false, "role": "WRITER"}),
                    None,
                )
            }
        })
        .collect();

    let started = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let lat: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..conns)
            .map(|_| {
                s.spawn(|| {
                    let mut h = http::Http::connect(addr).unwrap();
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= reqs.len() {
                            break;
                        }
                        let t = Instant::now();
                        let (s, v) = send(&mut h, &reqs[i]);
                        lat.push(t.elapsed());
                        assert_eq!(s, 202, "{v}");
                    }
                    lat
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    let mut lat = lat;
    lat.sort();
    let rate = writes as f64 / elapsed.as_secs_f64();

    // The bound: verify_strict per second on one core, in this same run.
    let bot = &bots[0];
    let msg = vec![7u8; 300];
    let sig = ed25519_dalek::Signature::from_bytes(&bot.sign(&msg));
    let key = bot.verifying_key();
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_secs(2) {
        for _ in 0..100 {
            assert!(key.verify_strict(std::hint::black_box(&msg), &sig).is_ok());
        }
        n += 100;
    }
    let verify_rate = n as f64 / t.elapsed().as_secs_f64();

    // Every write is in the ledger.
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let out = Command::new(&bin)
        .args(["log", "verify"])
        .current_dir(&root)
        .env("HOME", &home)
        .env("XDG_STATE_HOME", home.join("state"))
        .output()
        .unwrap();
    let verified = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "log verify: {verified}{}", String::from_utf8_lossy(&out.stderr));

    println!(
        "agents_load: {writes} signed writes ({} bots, {cands} candidates, {conns} connections) in {:.2} s",
        bots.len(),
        elapsed.as_secs_f64()
    );
    println!("  throughput      {rate:.0} signed writes/s (target >= 5,000)");
    println!(
        "  latency         p50 {:.2} ms, p99 {:.2} ms (target p99 < 50 ms)",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
    println!(
        "  candidates      {:.1} ms each (through the loop: lock, Gate 1, log, ledger, anchor)",
        per_candidate.as_secs_f64() * 1e3
    );
    println!(
        "  verify_strict   {verify_rate:.0}/s on one core; throughput / verify_strict = {:.2}",
        rate / verify_rate
    );
    println!("  log verify      {}", verified.lines().next().unwrap_or(""));
}

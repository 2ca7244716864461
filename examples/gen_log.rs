//! Generates a realistic step log for the `log verify` benchmark.
//!
//! ```sh
//! cargo run --release --example gen_log -- DIR ENTRIES [--compact | --mix]
//! ```
//!
//! With `--mix`, the log is the library's sample instead
//! (`ratchet::journal::sample`): the mix of steps, merges, amendments,
//! heartbeats and rails entries a five-minute cron leaves, for the
//! benchmarks of commands that read the history (`benches/long_log.sh`).
//! Its merged steps name commits that do not exist, so `log verify` is
//! measured on the default log. With `--append`, ENTRIES `rails` entries
//! are appended to the existing log of DIR through `Journal::append` (lock,
//! fsync, checkpoints: the real path), to time a command after the log grew.
//!
//! DIR must be a ratchet workspace (a git repository with
//! `config/rails.toml`). Entries are encoded by the very same function
//! `Journal::append` uses (`journal::line::encode`) and written in bulk
//! without an fsync per entry, which is the only shortcut (step entries are
//! the step's own: the library only appends them from a step). The
//! checkpoints are written at the end, keyed as an append would. Entries look like
//! DESIGN §9's step entry (600 to 900 bytes): a rationale sentence, the pick,
//! the proposal summary, Gate 1 and Gate 2 verdicts, checks, signals, utility
//! and cost, with every hash at full length (about 1.4 KB a line). With
//! `--compact`, the intent, rails and packet hashes are left out (about 850
//! bytes a line, so more lines per megabyte). Deterministic: the same
//! arguments give the same bytes.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use ratchet::journal::line::{self, Header};
use ratchet::journal::{Checkpoint, Head, Journal, JournalPaths, Kind};
use ratchet::workspace::Workspace;
use serde_json::{Map, Value, json};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(n)) = (args.next(), args.next()) else {
        return Err("usage: gen_log DIR ENTRIES".into());
    };
    let n: u64 = n.parse()?;
    let flag = args.next();
    let compact = flag.as_deref() == Some("--compact");
    let ws = Workspace::at(PathBuf::from(&dir).canonicalize()?, "");
    let paths = JournalPaths::for_workspace(&ws);
    if flag.as_deref() == Some("--append") {
        let mut journal = Journal::open_at(paths)?;
        for _ in 0..n {
            let body = ratchet::record::RailsBody {
                reason: ratchet::record::RailsReason::Accept,
                rails: format!("{:064x}", 9),
                previous: None,
                changes: Vec::new(),
                by: Some("bench <bench@example.org>".into()),
                intent: None,
                intent_name: None,
                workspace: None,
                checks: None,
                golden: Vec::new(),
                granted_tiers: Default::default(),
            };
            journal.append(None, &body, ())?;
        }
        return Ok(());
    }
    if paths.log.exists() {
        return Err(format!("{} exists already", paths.log.display()).into());
    }
    if flag.as_deref() == Some("--mix") {
        let head = ratchet::journal::sample::write(&paths, n, 0x5eed)?;
        eprintln!("{}: {} entries, {} bytes (the sample mix)", paths.log.display(), head.seq, head.size);
        return Ok(());
    }
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let journal = Journal::open_at(paths.clone())?;
    let mut head: Head = journal.head();
    drop(journal);
    std::fs::create_dir_all(paths.log.parent().expect("the log has a folder"))?;
    let file = std::fs::OpenOptions::new().append(true).create(true).open(&paths.log)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let base = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")?.with_timezone(&chrono::Utc);
    for seq in head.seq + 1..=n {
        let ts = ratchet::clock::stamp(base + chrono::Duration::seconds(seq as i64 * 37));
        let id = format!("s{seq}");
        let kind = if seq % 97 == 0 { Kind::Heartbeat } else { Kind::Step };
        let header = Header { seq, id: &id, ts: &ts, kind, prev: head.hash };
        let e = line::encode(&header, &body(compact, &mut rng));
        out.write_all(&e.bytes)?;
        head.seq = seq;
        head.hash = e.hash;
        head.size += e.bytes.len() as u64;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    let cp = Checkpoint { seq: head.seq, size: head.size, head: head.hash };
    let key = paths.private.as_ref().map(|p| p.key()).transpose()?;
    for place in &paths.checkpoints {
        cp.write(&place.path, key.as_ref())?;
    }
    eprintln!(
        "{}: {} entries, {} bytes ({} bytes a line on average), head {}",
        paths.log.display(),
        head.seq,
        head.size,
        head.size / head.seq.max(1),
        head.hash_hex()
    );
    Ok(())
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(len);
        s
    }
}

const VERBS: &[&str] = &["clarify", "tighten", "document", "simplify", "cover", "rename", "split", "guard"];
const THINGS: &[&str] = &[
    "the retry loop in the fetcher",
    "error messages of the config parser",
    "the quick start section",
    "edge cases of the path checks",
    "the budget arithmetic",
    "timeouts of the checks runner",
    "the changelog entry for 0.3",
    "the flaky clock in tests",
];
const WHY: &[&str] = &[
    "because the top pain shows users hitting it every day",
    "since the last two steps left it as their next step",
    "so that the intent's first goal gets closer",
    "as the telemetry window shows a 40% rise in failures there",
    "which removes a whole class of confusing reports",
];
const PATHS: &[&str] =
    &["docs/usage.md", "src/fetch.rs", "tests/paths.rs", "README.md", "src/config/parse.rs", "CHANGELOG.md"];
const PROVIDERS: &[&str] = &["self", "ollama", "human", "heartbeat", "openai", "remote:bot-7f3a"];
// No "merged": `log verify` checks each merged step's commit in git, and a
// generated log has no commits behind it.
const OUTCOMES: &[&str] = &["rejected", "rejected", "rejected", "failed", "failed", "pending", "noop"];

fn body(compact: bool, rng: &mut Rng) -> Map<String, Value> {
    let provider = rng.pick(PROVIDERS);
    let outcome = rng.pick(OUTCOMES);
    let rationale = format!(
        "{} {} {}; the change is small, reviewed by rule evaluators, and leaves clear next steps.",
        rng.pick(VERBS),
        rng.pick(THINGS),
        rng.pick(WHY)
    );
    let added = rng.below(40);
    let removed = rng.below(20);
    let ci = u64::from(outcome == "merged");
    let human = (rng.below(11) as f64) / 10.0;
    let diff_ratio = ((added + removed) as f64 / 120.0).min(1.0);
    let utility = 0.30 * ci as f64 + 0.15 + 0.15 * (1.0 - diff_ratio) + 0.10 + 0.10 + 0.20 * human;
    let v = json!({
        "intent": rng.hex(64),
        "rails": rng.hex(64),
        "versions": {"ratchet": "0.1.0", "evaluators": "1"},
        "pick": {"provider": provider, "reason": "thompson", "seed": rng.hex(16), "focus": format!("pain:{}", rng.hex(12))},
        "proposal": {
            "packet": rng.hex(64),
            "rationale": rationale,
            "op": rng.pick(&["replace", "append", "create"]),
            "path": rng.pick(PATHS),
            "added": added,
            "removed": removed,
            "next_steps": [format!("{} {}", rng.pick(VERBS), rng.pick(THINGS))],
        },
        "gate1": [
            {"by": "rule:path_ok", "verdict": "attest"},
            {"by": "rule:atomic_ok", "verdict": "attest"},
            {"by": "rule:schema", "verdict": if outcome == "rejected" { "object" } else { "attest" }},
        ],
        "gate2": {"by": "alice@example.com", "decision": if outcome == "merged" { "approve" } else { "reject" }, "human_score": human},
        "apply": {"commit": rng.hex(40), "checks": {"command": "cargo test", "exit": 1 - ci, "secs": (rng.below(300) as f64) / 10.0}},
        "signals": {"ci_pass": ci, "path_ok": 1, "diff_ratio": (diff_ratio * 1000.0).round() / 1000.0, "atomic_ok": 1, "left_next_steps": 1, "human_score": human},
        "utility": (utility * 1000.0).round() / 1000.0,
        "cost": {"usd": 0.0, "input_tokens": rng.below(4000), "output_tokens": rng.below(800)},
        "outcome": outcome,
    });
    match v {
        Value::Object(mut m) => {
            if compact {
                m.remove("intent");
                m.remove("rails");
                m.remove("versions");
                m.remove("gate1");
                m.remove("cost");
                if let Some(Value::Object(p)) = m.get_mut("pick") {
                    p.remove("seed");
                }
                if let Some(Value::Object(p)) = m.get_mut("proposal") {
                    p.remove("packet");
                    if let Some(Value::String(r)) = p.get_mut("rationale") {
                        r.truncate(r.find(';').unwrap_or(r.len()));
                    }
                }
            }
            m
        }
        _ => Map::new(),
    }
}

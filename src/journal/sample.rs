//! Realistic logs, made fast: for `benches/long_log.sh` (through
//! `examples/gen_log.rs`) and for the tests that compare a compacted
//! history with a whole one.
//!
//! The entries are what a five-minute cron leaves over a long time, drawn
//! from a fixed seed (so a size always gives the same log):
//!
//! | share | entry |
//! |---|---|
//! | 88% | a `step` of `self`, `ollama`, `heartbeat` or `human`: noop 45%, failed 28%, rejected 17%, pending 5% (decided by a later entry), merged 5% |
//! | 7% | an `amend`: the verification of a merge that targeted a pain (or, one in five, the revert of a merge) |
//! | 3% | a `heartbeat` entry (an error of the heartbeat provider) |
//! | 2% | a `rails` entry |
//!
//! so about 2.5% of the entries are merges. A step's focus is the intent, a
//! pain (30%) or the next step a merge left (10%); steps of `ollama` carry a
//! critic's verdict with its cost, every step carries the rails' Gate 1
//! verdicts and a rationale of a few hundred bytes, as real ones do.
//!
//! [`write`] encodes the lines with the journal's own encoder
//! ([`line::encode`]) and writes them in one buffered pass, then the
//! checkpoints (MAC'd with the private key, as [`Journal`] writes them), so
//! a million entries take seconds, not the hours a million fsyncs would.
//! The log it writes opens and verifies like any other.

use std::io::Write;

use serde_json::{Map, Value};

use super::checkpoint::Checkpoint;
use super::line::{self, Header, Kind};
use super::{Head, JournalError, JournalPaths};
use crate::error::{IoContext, IoError};
use crate::record::*;

/// One entry of a sample log.
#[derive(Clone, Debug)]
pub struct SampleEntry {
    pub kind: Kind,
    pub id: String,
    pub ts: String,
    pub body: Map<String, Value>,
}

/// A small xorshift generator: the sample needs no quality, only a fixed sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A number in `0..100`.
    fn pct(&mut self) -> u64 {
        self.next() % 100
    }
}

/// The first `n` entries of the sample log drawn from `seed`.
pub fn entries(n: u64, seed: u64) -> impl Iterator<Item = SampleEntry> {
    let mut rng = Rng(seed | 1);
    let start = crate::clock::parse("2026-01-01T00:00:00Z").unwrap_or_default();
    let mut merged: Vec<String> = Vec::new();
    let mut pains: Vec<String> = Vec::new();
    let mut pending: Vec<(String, StepBody)> = Vec::new();
    (1..=n).map(move |seq| {
        let ts = crate::clock::stamp(start + chrono::Duration::minutes(5 * seq as i64));
        let r = rng.pct();
        let obj = |v: Value| match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let to = |b: &dyn erased::Ser| obj(b.value());
        let (kind, id, body) = if r < 3 {
            let body =
                HeartbeatBody { error: "PROVIDER_TIMEOUT".into(), message: "the provider did not answer".into() };
            (Kind::Heartbeat, format!("s{seq}"), to(&body))
        } else if r < 5 {
            let body = RailsBody {
                reason: RailsReason::Accept,
                rails: format!("{:064x}", 9),
                previous: None,
                changes: Vec::new(),
                by: Some("Ada <ada@example.org>".into()),
                intent: None,
                intent_name: None,
                workspace: None,
                checks: None,
                golden: Vec::new(),
                granted_tiers: Default::default(),
            };
            (Kind::Rails, format!("s{seq}"), to(&body))
        } else if r < 12 && (!pains.is_empty() || !merged.is_empty()) {
            let revert = rng.pct() < 20 || pains.is_empty();
            let pool = if revert { &mut merged } else { &mut pains };
            let step = if pool.is_empty() { None } else { Some(pool.swap_remove((rng.next() as usize) % pool.len())) };
            // A reverted merge is never verified (the window is read only
            // for merges that stand).
            if let (true, Some(id)) = (revert, &step) {
                pains.retain(|p| p != id);
            }
            match step {
                Some(step) => {
                    let slipped = !revert && rng.pct() < 25;
                    let body = AmendBody {
                        step,
                        reason: if revert { AmendReason::Revert } else { AmendReason::Verified },
                        commit: revert.then(|| format!("{:040x}", rng.next())),
                        detected_by: if revert { Detector::RatchetRevert } else { Detector::Loopkit },
                        hours: 25.0,
                        previous_utility: 0.82,
                        utility: if revert || slipped { 0.2 } else { 0.82 },
                        capped: revert || slipped,
                        verified: (!revert).then_some(if slipped { Verdict::Slipped } else { Verdict::Win }),
                        pain: (!revert).then(|| "pn_0123456789abcdef".into()),
                        window: (!revert).then(|| "24h".into()),
                        rates: (!revert).then_some(Rates { before: 40.0, after: 3.0, latest: 2.0 }),
                        detail: None,
                    };
                    (Kind::Amend, format!("a{seq}"), to(&body))
                }
                None => step_entry(seq, &mut rng, &mut merged, &mut pains, &mut pending),
            }
        } else {
            step_entry(seq, &mut rng, &mut merged, &mut pains, &mut pending)
        };
        SampleEntry { kind, id, ts, body }
    })
}

/// Erases the body types, to turn each into a JSON object.
mod erased {
    pub trait Ser {
        fn value(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Ser for T {
        fn value(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or_default()
        }
    }
}

fn step_entry(
    seq: u64,
    rng: &mut Rng,
    merged: &mut Vec<String>,
    pains: &mut Vec<String>,
    pending: &mut Vec<(String, StepBody)>,
) -> (Kind, String, Map<String, Value>) {
    let obj = |b: &StepBody| match serde_json::to_value(b) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    // A pending step is decided a little later.
    if !pending.is_empty() && rng.pct() < 20 {
        let (id, mut body) = pending.remove(0);
        if rng.pct() < 50 {
            merge(&mut body, rng);
            note_merge(&id, &body, merged, pains);
        } else {
            body.outcome = Outcome::Rejected;
            body.reason = Some(Reason::Human);
        }
        body.gate2 = Some(Gate2Record {
            by: "Ada <ada@example.org>".into(),
            decision: if body.outcome == Outcome::Merged { Choice::Approve } else { Choice::Reject },
            human_score: 0.8,
            reason: None,
        });
        return (Kind::Step, id, obj(&body));
    }
    let id = format!("s{seq}");
    let provider = match rng.pct() {
        0..40 => "self",
        40..70 => "ollama",
        70..90 => "heartbeat",
        _ => "human",
    };
    let focus = match rng.pct() {
        0..30 => format!("pain:pn_{:016x}", rng.next()),
        30..40 if !merged.is_empty() => format!("next:{}#0", merged[(rng.next() as usize) % merged.len()]),
        _ => "intent".to_string(),
    };
    let mut gate1: Vec<VerdictRecord> = ["path", "budget", "protected", "secrets", "intent"]
        .iter()
        .map(|by| VerdictRecord {
            by: (*by).into(),
            verdict: Stance::Attest,
            code: None,
            reason: Some(format!("{by} holds for docs/guide-{}.md", seq % 97)),
            provider: None,
            weight: None,
            cost: None,
        })
        .collect();
    let mut cost = Cost::default();
    if provider == "ollama" {
        cost = Cost { usd: 0.002, input_tokens: 1800, output_tokens: 240, calls: 1 };
        gate1.push(VerdictRecord {
            by: "critic:review".into(),
            verdict: Stance::Attest,
            code: None,
            reason: Some("the change reads well and keeps the intent".into()),
            provider: Some("ollama".into()),
            weight: Some(0.1),
            cost: Some(Cost { usd: 0.001, input_tokens: 900, output_tokens: 60, calls: 1 }),
        });
    }
    let mut body = StepBody {
        intent: format!("{:064x}", 7),
        rails: format!("{:064x}", 9),
        versions: Versions::current(),
        base: Some(format!("{:040x}", rng.next())),
        pick: PickRecord {
            provider: provider.into(),
            reason: crate::pick::Reason::Thompson,
            seed: format!("{:064x}", rng.next()),
            focus,
            note: None,
            capped: Vec::new(),
        },
        proposal: Some(ProposalRecord {
            packet: format!("{:064x}", rng.next()),
            rationale: "The guide explains the flag but not what happens when it is left out; one paragraph \
                        says so, with the default and the error a user meets when the file is missing. \
                        It keeps to the intent: make the docs answer the questions new users ask first."
                .into(),
            op: "append".into(),
            path: format!("docs/guide-{}.md", seq % 97),
            added: 4,
            removed: 0,
            next_steps: vec!["add an example of the flag in use".into()],
        }),
        gate1,
        gate2: None,
        apply: None,
        signals: None,
        utility: None,
        cost,
        sandbox: Some(crate::sandbox::Enforced {
            sandbox: "enforced".into(),
            landlock_abi: Some(6),
            network: false,
            layers: vec!["user_ns".into(), "mount_ns".into(), "pid_ns".into(), "landlock".into(), "seccomp".into()],
            env: Vec::new(),
        }),
        outcome: Outcome::Noop,
        reason: Some(Reason::Noop),
        detail: None,
        target: None,
        extracted: None,
        passage: None,
    };
    match rng.pct() {
        0..45 => {
            body.proposal = None;
            body.detail = Some("nothing to improve in docs/guide.md".into());
        }
        45..73 => {
            body.outcome = Outcome::Failed;
            body.reason = Some(Reason::ChecksFailed);
            body.utility = Some(0.3);
            body.signals = Some(signals(0.0));
            body.detail = Some("the checks failed: 1 test of 212".into());
        }
        73..90 => {
            body.outcome = Outcome::Rejected;
            body.reason = Some(Reason::Gate1);
            body.utility = Some(0.1);
            body.signals = Some(signals(0.0));
        }
        90..95 => {
            body.outcome = Outcome::Pending;
            body.reason = Some(Reason::NoHuman);
            pending.push((id.clone(), body.clone()));
        }
        _ => {
            merge(&mut body, rng);
            note_merge(&id, &body, merged, pains);
        }
    }
    (Kind::Step, id, obj(&body))
}

fn signals(ci: f64) -> crate::score::Signals {
    crate::score::Signals {
        ci_pass: ci,
        path_ok: 1.0,
        diff_ratio: 0.1,
        atomic_ok: 1.0,
        left_next_steps: 1.0,
        human_score: 0.8,
    }
}

fn merge(body: &mut StepBody, rng: &mut Rng) {
    body.outcome = Outcome::Merged;
    body.reason = None;
    body.utility = Some(0.82);
    body.signals = Some(signals(1.0));
    body.apply = Some(ApplyRecord { commit: Some(format!("{:040x}", rng.next())), checks: None });
}

fn note_merge(id: &str, body: &StepBody, merged: &mut Vec<String>, pains: &mut Vec<String>) {
    merged.push(id.to_string());
    if body.pick.focus.starts_with("pain:") {
        pains.push(id.to_string());
    }
}

/// Writes the first `n` entries of the sample drawn from `seed` as the log
/// at `paths` (which must not exist yet), and its checkpoints.
pub fn write(paths: &JournalPaths, n: u64, seed: u64) -> Result<Head, JournalError> {
    write_entries(paths, entries(n, seed))
}

/// Writes `entries` as the log at `paths` (which must not exist yet), and
/// its checkpoints.
pub fn write_entries(paths: &JournalPaths, entries: impl Iterator<Item = SampleEntry>) -> Result<Head, JournalError> {
    let log = &paths.log;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).io("create", dir)?;
    }
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(log).io("create", log)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut head = Head::EMPTY;
    for e in entries {
        let header = Header { seq: head.seq + 1, id: &e.id, ts: &e.ts, kind: e.kind, prev: head.hash };
        let encoded = line::encode(&header, &e.body);
        out.write_all(&encoded.bytes).io("write", log)?;
        head = Head { seq: head.seq + 1, hash: encoded.hash, size: head.size + encoded.bytes.len() as u64 };
    }
    let file = out.into_inner().map_err(|e| IoError::new("write", log, e.into_error()))?;
    file.sync_all().io("sync", log)?;
    let key = match &paths.private {
        Some(p) => Some(p.key().io("create", p.path("key"))?),
        None => None,
    };
    let cp = Checkpoint { seq: head.seq, size: head.size, head: head.hash };
    for place in &paths.checkpoints {
        cp.write(&place.path, key.as_ref()).io("write", &place.path)?;
    }
    Ok(head)
}

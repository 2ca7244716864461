//! `ratchet log verify`: every line, every link, the checkpoints and the
//! step commits' trailers, in one streaming pass.
//!
//! The file is read in chunks of whole lines (1 MiB by default) that a few
//! worker threads check in parallel: each line on its own ([`line::check`]:
//! byte-level hash, header, canonical body), and each line against the one
//! before it inside the chunk. The collector links the chunks together in
//! order and stops at the first bad line. Chunk buffers are recycled through
//! a fixed pool and the channels are bounded, so memory does not depend on
//! the log's length. The git trailers are collected first (bounded by the
//! number of step commits) and looked up as the lines go by.
//!
//! What is bad, and its code:
//! - a line that is invalid on its own, or does not link to the line before
//!   it: `LOG_TAMPERED`, except a last line past every checkpoint that is
//!   invalid on its own, which is a torn write: `LOG_TORN` (the next command
//!   that opens the log quarantines it);
//! - a log that ends before a checkpoint, or whose entry at a checkpoint's
//!   seq does not end at its size with its hash, or that lacks an entry a
//!   step commit names: `LOG_ROLLBACK`;
//! - a checkpoint file that cannot be read: `CHECKPOINT_INVALID`.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use serde_json::{Value, json};

use super::checkpoint::Checkpoint;
use super::line::{self, Flaw, Kind, MAX_LINE, ZERO};
use super::{JournalError, JournalPaths, Link, short};
use crate::error::{IoContext, IoError};
use crate::git::LogTrailer;
use crate::workspace::Workspace;

/// How to read: threads and chunk size. The defaults suit real logs; tests
/// use tiny chunks to cross many chunk boundaries.
#[derive(Clone, Copy, Debug)]
pub struct VerifyOptions {
    /// Worker threads checking chunks (at least 1).
    pub threads: usize,
    /// Bytes per chunk (a chunk always ends at a line end).
    pub chunk: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        VerifyOptions { threads: cores.clamp(1, 8), chunk: 1 << 20 }
    }
}

/// The first problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based; `None` for a problem that is not a line's (a bad checkpoint file).
    pub line: Option<u64>,
    pub code: &'static str,
    pub reason: String,
}

/// What became of one checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointStatus {
    pub label: String,
    pub seq: Option<u64>,
    /// `ok`, `missing`, `invalid`, `mismatch`, `beyond the end`, or
    /// `unchecked` (the scan stopped before reaching it).
    pub status: &'static str,
}

/// The outcome of [`verify`].
#[derive(Clone, Debug)]
pub struct VerifyReport {
    /// How messages name the log (`logs/steps.jsonl`).
    pub file: String,
    /// Good entries before the first bad line (all of them when clean).
    pub entries: u64,
    /// The log's size when verification started.
    pub bytes: u64,
    /// The last good entry: seq, id and hash.
    pub head: Option<(u64, String, [u8; 32])>,
    pub checkpoints: Vec<CheckpointStatus>,
    /// Step commits whose trailers were checked against the log.
    pub commits_checked: usize,
    /// Step commits recorded in another log (their `Ratchet-Log` names another first entry).
    pub commits_foreign: usize,
    pub first_bad: Option<BadLine>,
    /// The bodies of the good `agents` entries, in order: the anchors the
    /// agents ledger is audited against, found in the same pass.
    pub agents: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.first_bad.is_none()
    }

    /// `{ok, file, entries, bytes, head, checkpoints, commits, first_bad}`.
    pub fn to_json(&self) -> Value {
        json!({
            "ok": self.ok(),
            "file": self.file,
            "entries": self.entries,
            "bytes": self.bytes,
            "head": self.head.as_ref().map(|(seq, id, hash)| json!({"seq": seq, "id": id, "hash": line::hex(hash)})),
            "checkpoints": self.checkpoints.iter().map(|c| json!({"path": c.label, "seq": c.seq, "status": c.status})).collect::<Vec<_>>(),
            "commits": {"checked": self.commits_checked, "foreign": self.commits_foreign},
            "first_bad": self.first_bad.as_ref().map(|b| json!({"line": b.line, "code": b.code, "reason": b.reason})),
        })
    }
}

/// Verifies the log of `ws` against its checkpoints and its repository's
/// step commits. Read-only: a torn tail is reported, not recovered.
pub fn verify(ws: &Workspace) -> Result<VerifyReport, JournalError> {
    let repo = ws.repo()?;
    let trailers = repo.log_trailers()?;
    let check = |m: &MergedStep| {
        let commit = m.commit.as_deref().unwrap_or_default();
        repo.check_step_commit(commit, m.base.as_deref(), &m.path).map_err(|why| format!("merged step {}: {why}", m.id))
    };
    verify_with(&JournalPaths::for_workspace(ws), &trailers, VerifyOptions::default(), Some(&check))
}

/// Verifies the log at `paths` against its checkpoints and `trailers`.
pub fn verify_at(
    paths: &JournalPaths,
    trailers: &[LogTrailer],
    opts: VerifyOptions,
) -> Result<VerifyReport, JournalError> {
    verify_with(paths, trailers, opts, None)
}

/// [`verify_at`], checking each merged step's commit with `check` (that it
/// is in HEAD's history and changes exactly its one path on its base).
pub fn verify_with(
    paths: &JournalPaths,
    trailers: &[LogTrailer],
    opts: VerifyOptions,
    check: Option<CommitCheck<'_>>,
) -> Result<VerifyReport, JournalError> {
    // A consistent snapshot of (size, checkpoints): appenders hold the lock
    // exclusively from write to checkpoint, so wait for any one in flight.
    let snapshot_lock = File::open(&paths.lock).ok();
    if let Some(f) = &snapshot_lock {
        let _ = rustix::fs::flock(f, rustix::fs::FlockOperation::LockShared);
    }
    let mut checkpoints = Vec::new();
    let mut statuses = Vec::new();
    let mut bad_checkpoint = None;
    let key = paths.key()?;
    for place in &paths.checkpoints {
        match Checkpoint::read_keyed(&place.path, key.as_ref()) {
            Ok(Some(cp)) => {
                statuses.push(CheckpointStatus { label: place.label.clone(), seq: Some(cp.seq), status: "unchecked" });
                checkpoints.push((statuses.len() - 1, cp));
            }
            Ok(None) => statuses.push(CheckpointStatus { label: place.label.clone(), seq: None, status: "missing" }),
            Err(reason) => {
                statuses.push(CheckpointStatus { label: place.label.clone(), seq: None, status: "invalid" });
                bad_checkpoint.get_or_insert(BadLine {
                    line: None,
                    code: "CHECKPOINT_INVALID",
                    reason: format!("the checkpoint {} is invalid: {reason}", place.label),
                });
            }
        }
    }
    let (file, size) = match File::open(&paths.log) {
        Ok(f) => {
            let size = f.metadata().io("read", &paths.log)?.len();
            (Some(f), size)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, 0),
        Err(e) => return Err(IoError::new("open", &paths.log, e).into()),
    };
    drop(snapshot_lock);

    let ctx = Context::new(checkpoints, trailers);
    let scan = match file {
        Some(f) => run(f, size, &ctx, opts, check).io("read", &paths.log)?,
        None => run(std::io::empty(), 0, &ctx, opts, check).io("read", &paths.log)?,
    };
    Ok(finish(paths, size, &ctx, scan, statuses, bad_checkpoint, trailers))
}

/// Verifies a log held in memory (tests, and the benchmark's self-check).
pub fn verify_bytes(
    log: &[u8],
    checkpoints: &[Checkpoint],
    trailers: &[LogTrailer],
    opts: VerifyOptions,
) -> VerifyReport {
    let statuses: Vec<CheckpointStatus> = checkpoints
        .iter()
        .enumerate()
        .map(|(i, cp)| CheckpointStatus {
            label: format!("checkpoint {}", i + 1),
            seq: Some(cp.seq),
            status: "unchecked",
        })
        .collect();
    let ctx = Context::new(checkpoints.iter().copied().enumerate().collect(), trailers);
    // Reading from memory cannot fail.
    let scan = run(log, log.len() as u64, &ctx, opts, None).unwrap_or_default();
    let paths = JournalPaths {
        log: "steps.jsonl".into(),
        log_label: "logs/steps.jsonl".into(),
        lock: "journal.lock".into(),
        quarantine: "quarantine".into(),
        quarantine_label: "logs/quarantine".into(),
        checkpoints: Vec::new(),
        private: None,
    };
    finish(&paths, log.len() as u64, &ctx, scan, statuses, None, trailers)
}

/// What the lines are checked against.
struct Context {
    /// (index into the statuses, checkpoint).
    checkpoints: Vec<(usize, Checkpoint)>,
    /// The furthest checkpointed size: lines before it are sealed.
    sealed: u64,
    trailer_hashes: HashSet<[u8; 32]>,
    step_ids: HashSet<String>,
}

impl Context {
    fn new(checkpoints: Vec<(usize, Checkpoint)>, trailers: &[LogTrailer]) -> Context {
        let sealed = checkpoints.iter().map(|(_, cp)| cp.size).max().unwrap_or(0);
        let trailer_hashes = trailers.iter().filter_map(|t| line::unhex(t.log_prev.as_bytes())).collect();
        let step_ids = trailers.iter().filter_map(|t| t.step.clone()).collect();
        Context { checkpoints, sealed, trailer_hashes, step_ids }
    }
}

/// A run of whole lines, as read.
struct Chunk {
    buf: Vec<u8>,
    /// Offset of `buf[0]` in the file.
    start: u64,
    /// The last chunk of the file: its last segment is the file's last line.
    last: bool,
}

/// Why a line is bad, before it is classified into a code.
#[derive(Debug)]
enum Fault {
    /// Invalid on its own.
    Flaw(Flaw),
    /// Valid on its own, but not the line after the one before it.
    Link(String),
    /// A merged step whose commit is missing from HEAD's history, or is not
    /// exactly its one path on its base.
    Anchor(String),
    /// At a checkpoint's seq but not ending at its size with its hash.
    Checkpoint(String),
}

struct BadAt {
    /// 0-based line within the chunk.
    rel: u64,
    start: u64,
    /// The file's last line.
    last: bool,
    fault: Fault,
}

/// What a worker learned from one chunk.
#[derive(Default)]
struct Done {
    /// Good lines before the first bad one.
    lines: u64,
    /// Seq and prev of the chunk's first line, when it is valid on its own
    /// (its link to the chunk before is the collector's to check).
    first: Option<(u64, [u8; 32])>,
    /// Seq, hash and id of the last good line.
    last: Option<(u64, [u8; 32], String)>,
    bad: Option<BadAt>,
    /// Hash of the chunk's first line, when it is valid.
    first_hash: Option<[u8; 32]>,
    /// Checkpoints met: (checkpoint index, good?).
    checkpoints: Vec<(usize, Result<(), String>)>,
    hashes: Vec<[u8; 32]>,
    steps: Vec<String>,
    /// Merged steps, with the 0-based line within the chunk.
    merged: Vec<(u64, MergedStep)>,
    /// The bodies of `agents` entries, with the 0-based line within the chunk.
    agents: Vec<(u64, String)>,
}

/// What a merged step entry says of its commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergedStep {
    pub id: String,
    /// `None` when the entry names no commit (itself a sign of tampering).
    pub commit: Option<String>,
    pub base: Option<String>,
    pub path: String,
}

/// Checks a merged step's commit against git: `Err` says what is wrong.
pub type CommitCheck<'a> = &'a dyn Fn(&MergedStep) -> Result<(), String>;

/// The fields of a step body the commit check reads.
#[derive(serde::Deserialize)]
struct MergedView {
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    apply: Option<ApplyView>,
    #[serde(default)]
    proposal: Option<ProposalView>,
    outcome: String,
}

#[derive(serde::Deserialize)]
struct ApplyView {
    #[serde(default)]
    commit: Option<String>,
}

#[derive(serde::Deserialize)]
struct ProposalView {
    path: String,
}

/// What the whole pass learned.
#[derive(Default)]
struct Scan {
    entries: u64,
    last: Option<(u64, [u8; 32], String)>,
    bad: Option<(u64, BadAt)>,
    checkpoints_met: Vec<(usize, Result<(), String>)>,
    hashes: HashSet<[u8; 32]>,
    steps: HashSet<String>,
    /// The logged commit of each step named by a trailer.
    step_commits: std::collections::HashMap<String, String>,
    genesis: Option<[u8; 32]>,
    agents: Vec<String>,
}

/// Reads `reader` (of `size` bytes) in chunks, checks them on worker
/// threads, and links them in order.
fn run<R: Read + Send>(
    reader: R,
    size: u64,
    ctx: &Context,
    opts: VerifyOptions,
    check: Option<CommitCheck<'_>>,
) -> std::io::Result<Scan> {
    let workers = opts.threads.max(1);
    let chunk = opts.chunk.max(1);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (free_tx, free_rx) = channel::<Vec<u8>>();
        let mut work_txs = Vec::new();
        let mut done_rxs = Vec::new();
        for _ in 0..workers {
            let (work_tx, work_rx) = sync_channel::<Chunk>(2);
            let (done_tx, done_rx) = sync_channel::<Done>(2);
            let free_tx = free_tx.clone();
            s.spawn(move || worker(work_rx, done_tx, free_tx, ctx));
            work_txs.push(work_tx);
            done_rxs.push(done_rx);
        }
        drop(free_tx);
        let pool = workers * 4 + 2;
        let stop = &stop;
        let reader = s.spawn(move || read_chunks(reader, size, chunk, work_txs, free_rx, pool, stop));
        let scan = collect(&done_rxs, ctx, stop, check);
        // Dropping the receivers unblocks workers (and so the reader) after
        // an early stop.
        drop(done_rxs);
        match reader.join() {
            Ok(Ok(())) => Ok(scan),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(std::io::Error::other("the reader thread panicked")),
        }
    })
}

fn read_chunks<R: Read>(
    mut reader: R,
    size: u64,
    chunk: usize,
    txs: Vec<SyncSender<Chunk>>,
    free: Receiver<Vec<u8>>,
    pool: usize,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    let mut offset = 0u64;
    let mut left = size;
    let mut made = 0;
    let mut n = 0usize;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut buf = if made < pool {
            made += 1;
            Vec::with_capacity(chunk + MAX_LINE.min(chunk) + 1)
        } else {
            match free.recv() {
                Ok(b) => b,
                Err(_) => return Ok(()),
            }
        };
        buf.clear();
        buf.extend_from_slice(&carry);
        carry.clear();
        let mut target = chunk;
        let (last, keep) = loop {
            while buf.len() < target && left > 0 {
                let want = (target - buf.len()) as u64;
                let got = (&mut reader).take(want.min(left)).read_to_end(&mut buf)? as u64;
                if got == 0 {
                    left = 0; // the file shrank under us: stop at what we have
                    break;
                }
                left -= got;
            }
            if left == 0 {
                break (true, buf.len());
            }
            if let Some(k) = memchr::memrchr(b'\n', &buf) {
                break (false, k + 1);
            }
            if buf.len() > MAX_LINE {
                // A line too long to be an entry: hand it over as is; the
                // scan ends there.
                break (true, buf.len());
            }
            target = buf.len() + chunk;
        };
        carry.extend_from_slice(&buf[keep..]);
        buf.truncate(keep);
        let start = offset;
        offset += keep as u64;
        let i = n % txs.len();
        n += 1;
        if txs[i].send(Chunk { buf, start, last }).is_err() || last {
            return Ok(());
        }
    }
}

fn worker(rx: Receiver<Chunk>, tx: SyncSender<Done>, free: Sender<Vec<u8>>, ctx: &Context) {
    for chunk in rx {
        let done = check_chunk(&chunk, ctx);
        let _ = free.send(chunk.buf);
        if tx.send(done).is_err() {
            return;
        }
    }
}

/// Checks the lines of one chunk, stopping at the first bad one.
fn check_chunk(chunk: &Chunk, ctx: &Context) -> Done {
    let data = &chunk.buf[..];
    let mut done = Done::default();
    let mut link: Option<Link> = None;
    let mut last_id: Option<&str> = None;
    let mut pos = 0usize;
    let mut rel = 0u64;
    while pos < data.len() {
        let (text, next, newline) = match memchr::memchr(b'\n', &data[pos..]) {
            Some(i) => (&data[pos..pos + i], pos + i + 1, true),
            None => (&data[pos..], data.len(), false),
        };
        let start = chunk.start + pos as u64;
        let is_last = chunk.last && next == data.len();
        let bad = |fault| BadAt { rel, start, last: is_last, fault };
        let checked = if newline {
            line::check(text)
        } else if text.len() > MAX_LINE {
            Err(Flaw::TooLong)
        } else {
            Err(Flaw::NoNewline)
        };
        let c = match checked {
            Ok(c) => c,
            Err(flaw) => {
                done.bad = Some(bad(Fault::Flaw(flaw)));
                break;
            }
        };
        match &link {
            None => done.first = Some((c.header.seq, c.header.prev)),
            Some(l) => {
                if let Err(reason) = l.follows(&c.header) {
                    done.bad = Some(bad(Fault::Link(reason)));
                    break;
                }
            }
        }
        let end = chunk.start + next as u64;
        let mut mismatch = None;
        for (i, (_, cp)) in ctx.checkpoints.iter().enumerate() {
            if cp.seq == c.header.seq {
                let verdict = if cp.size == end && cp.head == c.hash {
                    Ok(())
                } else {
                    Err(format!(
                        "inconsistent with checkpoint: entry {} ends at byte {end} with hash {}, but a checkpoint records byte {} and hash {}",
                        cp.seq,
                        short(&c.hash),
                        cp.size,
                        short(&cp.head)
                    ))
                };
                if let Err(reason) = &verdict {
                    mismatch.get_or_insert_with(|| reason.clone());
                }
                done.checkpoints.push((i, verdict));
            }
        }
        if let Some(reason) = mismatch {
            done.bad = Some(bad(Fault::Checkpoint(reason)));
            break;
        }
        if rel == 0 {
            done.first_hash = Some(c.hash);
        }
        if !ctx.trailer_hashes.is_empty() && ctx.trailer_hashes.contains(&c.hash) {
            done.hashes.push(c.hash);
        }
        if c.header.kind == Kind::Step && ctx.step_ids.contains(c.header.id) {
            done.steps.push(c.header.id.to_string());
        }
        if c.header.kind == Kind::Step && memchr::memmem::find(c.members, b"\"outcome\":\"merged\"").is_some() {
            let mut body = Vec::with_capacity(c.members.len() + 1);
            body.push(b'{');
            body.extend_from_slice(c.members.get(1..).unwrap_or_default());
            body.push(b'}');
            if let Ok(v) = serde_json::from_slice::<MergedView>(&body) {
                if v.outcome == "merged" {
                    done.merged.push((
                        rel,
                        MergedStep {
                            id: c.header.id.to_string(),
                            commit: v.apply.and_then(|a| a.commit),
                            base: v.base,
                            path: v.proposal.map(|p| p.path).unwrap_or_default(),
                        },
                    ));
                }
            }
        }
        if c.header.kind == Kind::Agents {
            if let Ok(body) = String::from_utf8(super::read::body_object(c.members)) {
                done.agents.push((rel, body));
            }
        }
        link = Some(Link { seq: c.header.seq, hash: c.hash });
        last_id = Some(c.header.id);
        done.lines += 1;
        pos = next;
        rel += 1;
    }
    if let (Some(l), Some(id)) = (link, last_id) {
        done.last = Some((l.seq, l.hash, id.to_string()));
    }
    done
}

/// Receives the chunks' results in order and links them.
fn collect(rxs: &[Receiver<Done>], ctx: &Context, stop: &AtomicBool, check: Option<CommitCheck<'_>>) -> Scan {
    let mut scan = Scan::default();
    let mut link = Link { seq: 0, hash: ZERO };
    for n in 0.. {
        let Ok(done) = rxs[n % rxs.len()].recv() else { break };
        let base = scan.entries;
        // The first line's link to the chunk before comes before anything
        // the worker found further down.
        if let Some((seq, prev)) = done.first {
            if let Err(reason) = link.followed_by(seq, &prev) {
                scan.bad = Some((base + 1, BadAt { rel: 0, start: 0, last: false, fault: Fault::Link(reason) }));
                stop.store(true, Ordering::Relaxed);
                break;
            }
            if n == 0 {
                scan.genesis = done.first_hash;
            }
        }
        for (i, verdict) in done.checkpoints {
            scan.checkpoints_met.push((ctx.checkpoints[i].0, verdict));
        }
        scan.hashes.extend(done.hashes);
        scan.steps.extend(done.steps);
        let good = |rel: u64| done.bad.as_ref().is_none_or(|b| rel < b.rel);
        scan.agents.extend(done.agents.into_iter().filter(|(rel, _)| good(*rel)).map(|(_, body)| body));
        let mut anchored = None;
        for (rel, m) in done.merged {
            if done.bad.as_ref().is_some_and(|b| b.rel <= rel) {
                break;
            }
            if let Some(c) = &m.commit {
                if ctx.step_ids.contains(&m.id) {
                    scan.step_commits.insert(m.id.clone(), c.clone());
                }
            }
            if let Some(check) = check {
                let verdict = match &m.commit {
                    None => Err(format!("merged step {} names no commit", m.id)),
                    Some(_) => check(&m),
                };
                if let Err(reason) = verdict {
                    anchored = Some((rel, reason));
                    break;
                }
            }
        }
        if let Some((rel, reason)) = anchored {
            scan.entries += rel;
            scan.bad = Some((base + rel + 1, BadAt { rel, start: 0, last: false, fault: Fault::Anchor(reason) }));
            stop.store(true, Ordering::Relaxed);
            break;
        }
        scan.entries += done.lines;
        if let Some(last) = done.last {
            link = Link { seq: last.0, hash: last.1 };
            scan.last = Some(last);
        }
        if let Some(bad) = done.bad {
            scan.bad = Some((base + bad.rel + 1, bad));
            stop.store(true, Ordering::Relaxed);
            break;
        }
    }
    scan
}

/// Turns the scan into a report: classifies the first bad line, then checks
/// what only the end can tell (checkpoints beyond the end, trailers).
fn finish(
    paths: &JournalPaths,
    size: u64,
    ctx: &Context,
    scan: Scan,
    mut statuses: Vec<CheckpointStatus>,
    bad_checkpoint: Option<BadLine>,
    trailers: &[LogTrailer],
) -> VerifyReport {
    for (idx, verdict) in &scan.checkpoints_met {
        statuses[*idx].status = if verdict.is_ok() { "ok" } else { "mismatch" };
    }
    let end_seq = scan.last.as_ref().map_or(0, |l| l.0);
    let mut first_bad = scan.bad.map(|(line_no, bad)| classify(line_no, bad, size, ctx));
    if first_bad.is_none() {
        first_bad = bad_checkpoint;
    }
    if first_bad.is_none() {
        for (idx, cp) in &ctx.checkpoints {
            if statuses[*idx].status == "unchecked" && cp.seq > end_seq {
                statuses[*idx].status = "beyond the end";
                first_bad.get_or_insert(BadLine {
                    line: Some(scan.entries + 1),
                    code: "LOG_ROLLBACK",
                    reason: format!(
                        "shorter than checkpoint: the log ends after entry {end_seq} ({size} bytes), but {} records entry {} ({} bytes)",
                        statuses[*idx].label, cp.seq, cp.size
                    ),
                });
            }
        }
    }
    // The trailers: every step commit must name an entry of this log, and
    // its step must have a step entry.
    let mut checked = 0;
    let mut foreign = 0;
    for t in trailers {
        if let (Some(log), Some(first)) = (&t.log, scan.genesis) {
            if log.as_bytes() != line::hex(&first).as_bytes() {
                foreign += 1;
                continue;
            }
        }
        checked += 1;
        if first_bad.is_some() {
            continue;
        }
        let prev = line::unhex(t.log_prev.as_bytes());
        let commit = &t.commit[..t.commit.len().min(12)];
        let step = t.step.as_deref().map(|s| format!(" (Ratchet-Step {s})")).unwrap_or_default();
        let reason = match prev {
            None => Some(format!(
                "commit {commit}{step} has a Ratchet-Log-Prev trailer that is not a hash: {:?}",
                t.log_prev
            )),
            Some(h) if h != ZERO && !scan.hashes.contains(&h) => Some(format!(
                "commit {commit}{step} names log entry {} in its Ratchet-Log-Prev trailer, which is not in the log",
                short(&h)
            )),
            Some(_) => match &t.step {
                Some(s) if !scan.steps.contains(s) => {
                    Some(format!("commit {commit} is step {s}, which has no step entry in the log"))
                }
                Some(s) => match scan.step_commits.get(s) {
                    Some(logged) if logged != &t.commit => Some(format!(
                        "commit {commit} carries the trailer of step {s}, but the log records {s}'s commit as {}",
                        &logged[..logged.len().min(12)]
                    )),
                    _ => None,
                },
                None => None,
            },
        };
        if let Some(reason) = reason {
            first_bad = Some(BadLine { line: Some(scan.entries + 1), code: "LOG_ROLLBACK", reason });
        }
    }
    VerifyReport {
        file: paths.log_label.clone(),
        entries: scan.entries,
        bytes: size,
        head: scan.last.map(|(seq, hash, id)| (seq, id, hash)),
        checkpoints: statuses,
        commits_checked: checked,
        commits_foreign: foreign,
        first_bad,
        agents: scan.agents,
    }
}

/// The code of a bad line: where it sits decides between tampering, a torn
/// write and a rollback.
fn classify(line_no: u64, bad: BadAt, size: u64, ctx: &Context) -> BadLine {
    let (code, reason) = match bad.fault {
        Fault::Checkpoint(reason) => ("LOG_ROLLBACK", reason),
        Fault::Link(reason) => ("LOG_TAMPERED", reason),
        Fault::Anchor(reason) => ("LOG_TAMPERED", reason),
        Fault::Flaw(flaw) => {
            if bad.last && size < ctx.sealed {
                (
                    "LOG_ROLLBACK",
                    format!(
                        "shorter than checkpoint: the log ends inside this line ({flaw}), before byte {} that a checkpoint records",
                        ctx.sealed
                    ),
                )
            } else if bad.start < ctx.sealed {
                ("LOG_TAMPERED", flaw.to_string())
            } else if bad.last {
                ("LOG_TORN", format!("{flaw}; the next command that opens the log moves it to logs/quarantine/"))
            } else {
                ("LOG_TAMPERED", flaw.to_string())
            }
        }
    };
    BadLine { line: Some(line_no), code, reason }
}

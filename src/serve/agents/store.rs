//! The agents' SQLite store: `.ratchet/agents.db` of the workspace, apart
//! from LoopKit's database (its own schema versions, its own writer).
//!
//! Every signed write commits through [`AgentStore::commit`] (or
//! [`AgentStore::commit_async`] from a request handler): the ledger record
//! (numbered and chained, see `agents::ledger`), the write's effect (a bot
//! joined, a verdict, a revision, a vote, a candidate), and, for idempotent
//! writes, the key and the response, in one transaction. The nonce is the
//! record's `UNIQUE (bot_id, nonce)`: it is recorded in the same
//! transaction as the write, and persists with it.
//!
//! **Group commit.** One writer thread owns the write connection. Callers
//! queue their job and wait; the writer takes *every* job queued so far,
//! commits them in one transaction (one WAL fsync), each in its own
//! savepoint so a job that fails (a replayed nonce, an idempotency race)
//! rolls back alone and takes no ledger number, and only then answers each
//! caller. While one batch is being synced the next one gathers, so the
//! number of fsyncs per second stays bounded by the disk while the writes
//! per second grow with the number of writers waiting. Nobody is answered
//! before the transaction holding their write is durable. The signature
//! checks run before a job is queued, on the request's own thread, so the
//! writer does only SQL.
//!
//! **Durability: `synchronous = FULL`.** In WAL mode `NORMAL` survives the
//! process being killed but not a power cut or kernel crash: the last
//! commits could vanish. Here that would be wrong three ways: a bot was
//! told 202 for a write that no longer exists; the step log (itself
//! synced) may hold an `agents` anchor naming a ledger head the database
//! no longer reaches, so `log verify` would report tampering that never
//! happened; and the lost writes' nonces are forgotten while their
//! timestamps are still inside the drift window, so the same signed
//! requests could be replayed. Group commit pays for `FULL`: one fsync
//! per batch, not per write.
//!
//! **Checkpoints off the commit path.** The write connection never
//! checkpoints (`wal_autocheckpoint = 0`); after a batch leaves the WAL past
//! [`CHECKPOINT_PAGES`], the writer wakes a checkpoint thread with its own
//! connection, which copies the WAL into the database (`PASSIVE`: it never
//! blocks the writer) while the next batches commit. A checkpoint that
//! falls behind is retried; the WAL restarts once a checkpoint catches up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension, params};

use crate::agents::json::KeyOrder;
use crate::agents::ledger::{self, Record, Stored};
use crate::agents::policy::{BotVerdict, Verdict};

const MIGRATIONS: &[&str] = &[r#"
    CREATE TABLE bots (
        bot_id       TEXT PRIMARY KEY,
        joined_seq   INTEGER NOT NULL,
        joined_ms    INTEGER NOT NULL,
        verified     INTEGER NOT NULL DEFAULT 0,
        linked_human TEXT,
        operator     TEXT,
        verified_seq INTEGER
    ) WITHOUT ROWID;
    CREATE TABLE writes (
        seq         INTEGER PRIMARY KEY,
        kind        TEXT NOT NULL,
        bot_id      TEXT NOT NULL,
        story       TEXT,
        target      TEXT,
        packet      TEXT,
        audience    TEXT NOT NULL,
        method      TEXT NOT NULL,
        path        TEXT NOT NULL,
        timestamp   TEXT NOT NULL,
        nonce       TEXT NOT NULL,
        body        TEXT NOT NULL,
        key_order   TEXT NOT NULL,
        signature   TEXT NOT NULL,
        digest      BLOB NOT NULL,
        chain       BLOB NOT NULL,
        received_ms INTEGER NOT NULL,
        UNIQUE (bot_id, nonce)
    );
    CREATE INDEX writes_story ON writes(story, seq) WHERE story IS NOT NULL;
    CREATE TABLE candidates (
        hash      TEXT PRIMARY KEY,
        story     TEXT NOT NULL,
        bot_id    TEXT NOT NULL,
        write_seq INTEGER NOT NULL,
        base      TEXT NOT NULL,
        proposal  TEXT NOT NULL,
        metadata  TEXT
    ) WITHOUT ROWID;
    CREATE INDEX candidates_story ON candidates(story);
    CREATE TABLE verdicts (
        story     TEXT NOT NULL,
        packet    TEXT NOT NULL,
        bot_id    TEXT NOT NULL,
        verdict   TEXT NOT NULL CHECK (verdict IN ('attest', 'object')),
        role      TEXT NOT NULL,
        severity  TEXT,
        reason    TEXT,
        write_seq INTEGER NOT NULL,
        PRIMARY KEY (story, packet, bot_id)
    ) WITHOUT ROWID;
    CREATE TABLE revisions (
        id          TEXT PRIMARY KEY,
        story       TEXT NOT NULL,
        bot_id      TEXT NOT NULL,
        base_packet TEXT NOT NULL,
        packet      TEXT NOT NULL,
        proposal    TEXT NOT NULL,
        reason      TEXT NOT NULL,
        write_seq   INTEGER NOT NULL,
        state       TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX revisions_story ON revisions(story);
    CREATE TABLE votes (
        revision  TEXT NOT NULL,
        bot_id    TEXT NOT NULL,
        vote      TEXT NOT NULL,
        role      TEXT NOT NULL,
        reason    TEXT,
        write_seq INTEGER NOT NULL,
        PRIMARY KEY (revision, bot_id)
    ) WITHOUT ROWID;
    CREATE TABLE idempotency (
        key         TEXT PRIMARY KEY,
        actor       TEXT NOT NULL,
        operation   TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status      INTEGER NOT NULL,
        body        BLOB NOT NULL,
        created_ms  INTEGER NOT NULL
    ) WITHOUT ROWID;
"#];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("agents database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("agents database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the agents database {path} has schema version {found}, newer than this ratchet knows ({known})")]
    NewerSchema { path: PathBuf, found: i64, known: i64 },
    #[error("the agents database {0} does not exist")]
    Missing(PathBuf),
}

impl crate::error::Coded for StoreError {
    fn code(&self) -> &'static str {
        match self {
            StoreError::NewerSchema { .. } => "STORE_SCHEMA_TOO_NEW",
            StoreError::Missing(_) => "AGENTS_DB_MISSING",
            _ => "STORE_ERROR",
        }
    }
    fn hint(&self) -> Option<String> {
        Some(match self {
            StoreError::NewerSchema { .. } => "run a newer ratchet".into(),
            StoreError::Missing(_) => {
                "the log anchors bot writes kept in .ratchet/agents.db: restore it from a backup".into()
            }
            _ => "check the disk and .ratchet/agents.db, then retry".into(),
        })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What a write changes besides the ledger.
#[derive(Clone, Debug)]
pub enum Effect {
    Join,
    Verify {
        linked_human: String,
        operator: String,
    },
    Candidate {
        hash: String,
        story: String,
        base: String,
        proposal: String,
        metadata: Option<String>,
    },
    Verdict {
        verdict: Verdict,
        role: String,
        severity: Option<String>,
        reason: Option<String>,
    },
    /// The revision's id is `rev-<seq>`, known only once committed.
    Revision {
        packet: String,
        proposal: String,
        reason: String,
    },
    Vote {
        vote: String,
        role: String,
        reason: Option<String>,
    },
}

/// An idempotent write's key and what it must match.
#[derive(Clone, Debug)]
pub struct IdemKey {
    pub key: String,
    pub actor: String,
    pub operation: String,
    pub fingerprint: String,
}

/// A stored first response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdemRow {
    pub actor: String,
    pub operation: String,
    pub fingerprint: String,
    pub status: u16,
    pub body: Vec<u8>,
}

/// Builds the response once the write's ledger number is known.
pub type Respond = Box<dyn FnOnce(i64) -> (u16, Vec<u8>) + Send>;

/// One signed write to commit.
pub struct Job {
    /// The record; its `seq` is assigned here.
    pub record: Record,
    pub effect: Effect,
    pub idem: Option<IdemKey>,
    pub respond: Respond,
    pub now_ms: i64,
}

/// How a committed write ended.
#[derive(Debug)]
pub enum Outcome {
    Committed {
        seq: i64,
        status: u16,
        body: Vec<u8>,
    },
    NonceReplay,
    /// The key was committed by another request first.
    IdemTaken(IdemRow),
}

type Waiter = tokio::sync::oneshot::Sender<Result<Outcome, String>>;

/// After a batch, the writer wakes the checkpoint thread at most this often.
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// A registered bot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bot {
    pub verified: bool,
    pub linked_human: Option<String>,
}

pub struct AgentStore {
    shared: Arc<Shared>,
    reader: Mutex<Connection>,
    /// The writer and checkpoint threads, started by the first commit.
    threads: Mutex<Option<[JoinHandle<()>; 2]>>,
}

/// What the store's handle and its threads share.
struct Shared {
    path: PathBuf,
    writer: Mutex<Writer>,
    queue: Mutex<Queue>,
    /// Signalled when a job is queued or the store closes.
    queued: Condvar,
    bots: Mutex<HashMap<String, Bot>>,
    checkpoint: Mutex<CheckpointState>,
    checkpoint_wake: Condvar,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<(Job, Waiter)>,
    closed: bool,
}

#[derive(Default)]
struct CheckpointState {
    due: bool,
    closed: bool,
}

struct Writer {
    conn: Connection,
    seq: i64,
    chain: [u8; 32],
}

/// The database file of a workspace's agents API.
pub fn path_for(ws: &crate::workspace::Workspace) -> PathBuf {
    ws.state_dir().join("agents.db")
}

impl AgentStore {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<AgentStore> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = open_conn(path)?;
        migrate(&conn, path)?;
        // Checkpoints are the checkpoint thread's (see the module doc).
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        let (seq, chain) = head(&conn)?;
        let reader = open_conn(path)?;
        let mut bots = HashMap::new();
        {
            let mut st = conn.prepare("SELECT bot_id, verified, linked_human FROM bots")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?, r.get(2)?)))?;
            for row in rows {
                let (id, verified, linked_human) = row?;
                bots.insert(id, Bot { verified, linked_human });
            }
        }
        Ok(AgentStore {
            shared: Arc::new(Shared {
                path: path.to_path_buf(),
                writer: Mutex::new(Writer { conn, seq, chain }),
                queue: Mutex::new(Queue::default()),
                queued: Condvar::new(),
                bots: Mutex::new(bots),
                checkpoint: Mutex::new(CheckpointState::default()),
                checkpoint_wake: Condvar::new(),
            }),
            reader: Mutex::new(reader),
            threads: Mutex::new(None),
        })
    }

    /// Opens an existing database for reading (`log verify`, `status`).
    pub fn open_existing(path: &Path) -> Result<AgentStore> {
        if !path.exists() {
            return Err(StoreError::Missing(path.to_path_buf()));
        }
        AgentStore::open(path)
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    }

    /// A registered bot.
    pub fn bot(&self, bot_id: &str) -> Option<Bot> {
        lock(&self.shared.bots).get(bot_id).cloned()
    }

    /// Commits one signed write (grouped with whatever else is queued) and
    /// returns once it is durable. Blocks: call it from a blocking thread,
    /// never from an async task (use [`AgentStore::commit_async`] there).
    pub fn commit(&self, job: Job) -> Result<Outcome, String> {
        let rx = self.enqueue(job)?;
        rx.blocking_recv().map_err(|_| LOST.to_string())?
    }

    /// [`AgentStore::commit`] for a request handler: waits without holding a thread.
    pub async fn commit_async(&self, job: Job) -> Result<Outcome, String> {
        let rx = self.enqueue(job)?;
        rx.await.map_err(|_| LOST.to_string())?
    }

    fn enqueue(&self, job: Job) -> Result<tokio::sync::oneshot::Receiver<Result<Outcome, String>>, String> {
        self.start()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut q = lock(&self.shared.queue);
        if q.closed {
            return Err("the agents store is closing".into());
        }
        q.jobs.push((job, tx));
        drop(q);
        self.shared.queued.notify_one();
        Ok(rx)
    }

    /// Starts the writer and checkpoint threads, once.
    fn start(&self) -> Result<(), String> {
        let mut threads = lock(&self.threads);
        if let Some([w, _]) = threads.as_ref() {
            if w.is_finished() {
                return Err("the agents store's writer stopped".into());
            }
            return Ok(());
        }
        let checkpoint_conn = open_conn(&self.shared.path).map_err(|e| e.to_string())?;
        let (a, b) = (self.shared.clone(), self.shared.clone());
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name.into()).spawn(f).map_err(|e| format!("cannot start {name}: {e}"))
        };
        let writer = spawn("agents-writer", Box::new(move || a.write_loop()))?;
        let checkpointer = spawn("agents-checkpoint", Box::new(move || b.checkpoint_loop(checkpoint_conn)))?;
        *threads = Some([writer, checkpointer]);
        Ok(())
    }
}

impl Drop for AgentStore {
    /// Commits what is queued, then stops the threads.
    fn drop(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.queued.notify_all();
        lock(&self.shared.checkpoint).closed = true;
        self.shared.checkpoint_wake.notify_all();
        if let Some(threads) = lock(&self.threads).take() {
            for t in threads {
                let _ = t.join();
            }
        }
    }
}

const LOST: &str = "the commit was lost (the agents store's writer stopped)";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// The writer thread: every job queued so far, one transaction, until closed.
    fn write_loop(&self) {
        let mut last_checkpoint = Instant::now();
        loop {
            let jobs = {
                let mut q = lock(&self.queue);
                while q.jobs.is_empty() && !q.closed {
                    q = self.queued.wait(q).unwrap_or_else(|p| p.into_inner());
                }
                if q.jobs.is_empty() {
                    return;
                }
                std::mem::take(&mut q.jobs)
            };
            {
                let mut w = lock(&self.writer);
                // A panic in one batch drops its waiters (each hears "lost")
                // and the writer goes on with the next.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run_batch(&mut w, jobs)));
            }
            if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                last_checkpoint = Instant::now();
                lock(&self.checkpoint).due = true;
                self.checkpoint_wake.notify_one();
            }
        }
    }

    /// The checkpoint thread: copies the WAL into the database when woken,
    /// without blocking the writer (`PASSIVE`).
    fn checkpoint_loop(&self, conn: Connection) {
        loop {
            {
                let mut st = lock(&self.checkpoint);
                while !st.due && !st.closed {
                    st = self.checkpoint_wake.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                if st.closed {
                    return;
                }
                st.due = false;
            }
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "agents database checkpoint failed; the next one retries");
            }
        }
    }

    fn run_batch(&self, w: &mut Writer, jobs: Vec<(Job, Waiter)>) {
        let (start_seq, start_chain) = (w.seq, w.chain);
        let mut results: Vec<(Waiter, Result<Outcome, String>)> = Vec::with_capacity(jobs.len());
        let mut joined: Vec<(String, Bot)> = Vec::new();
        let tx = match w.conn.unchecked_transaction() {
            Ok(tx) => tx,
            Err(e) => {
                for (_, waiter) in jobs {
                    let _ = waiter.send(Err(e.to_string()));
                }
                return;
            }
        };
        let (mut seq, mut chain) = (start_seq, start_chain);
        for (job, waiter) in jobs {
            let out = (|| -> Result<Outcome> {
                tx.prepare_cached("SAVEPOINT job")?.execute([])?;
                match apply(&tx, job, seq + 1, &chain) {
                    Ok(Applied::Done { outcome, chain: next, bot }) => {
                        tx.prepare_cached("RELEASE job")?.execute([])?;
                        seq += 1;
                        chain = next;
                        if let Some(b) = bot {
                            joined.push(b);
                        }
                        Ok(outcome)
                    }
                    Ok(Applied::Refused(outcome)) => {
                        tx.execute_batch("ROLLBACK TO job; RELEASE job")?;
                        Ok(outcome)
                    }
                    Err(e) => {
                        tx.execute_batch("ROLLBACK TO job; RELEASE job")?;
                        Err(e)
                    }
                }
            })();
            results.push((waiter, out.map_err(|e| e.to_string())));
        }
        match tx.commit() {
            Ok(()) => {
                w.seq = seq;
                w.chain = chain;
                let mut bots = lock(&self.bots);
                for (id, b) in joined {
                    bots.insert(id, b);
                }
                drop(bots);
                for (waiter, out) in results {
                    let _ = waiter.send(out);
                }
            }
            Err(e) => {
                let text = format!("the batch was not committed: {e}");
                for (waiter, _) in results {
                    let _ = waiter.send(Err(text.clone()));
                }
            }
        }
    }
}

impl AgentStore {
    /// The stored first response of an idempotency key.
    pub fn idempotent(&self, key: &str) -> Result<Option<IdemRow>> {
        self.read(|c| idem_row(c, key))
    }

    /// Whether `bot_id` already used `nonce` in an accepted write.
    pub fn nonce_used(&self, bot_id: &str, nonce: &str) -> Result<bool> {
        self.read(|c| {
            Ok(c.prepare_cached("SELECT 1 FROM writes WHERE bot_id = ?1 AND nonce = ?2")?
                .exists(params![bot_id, nonce])?)
        })
    }

    /// `(records, chain)` of the ledger.
    pub fn head(&self) -> Result<(i64, [u8; 32])> {
        let w = lock(&self.shared.writer);
        Ok((w.seq, w.chain))
    }

    /// Attestations and objections on `story`, with each bot's verified state.
    pub fn verdicts(&self, story: &str) -> Result<Vec<BotVerdict>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT v.bot_id, v.verdict, v.role, v.packet, v.severity, v.reason, v.write_seq, COALESCE(b.verified, 0)
                 FROM verdicts v LEFT JOIN bots b ON b.bot_id = v.bot_id WHERE v.story = ?1 ORDER BY v.write_seq",
            )?;
            let rows = st.query_map(params![story], |r| {
                Ok(BotVerdict {
                    bot_id: r.get(0)?,
                    verdict: if r.get::<_, String>(1)? == "attest" { Verdict::Attest } else { Verdict::Object },
                    role: r.get(2)?,
                    packet_hash: r.get(3)?,
                    severity: r.get(4)?,
                    reason: r.get(5)?,
                    seq: r.get(6)?,
                    verified: r.get(7)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// The candidate with packet hash `hash`.
    pub fn candidate(&self, hash: &str) -> Result<Option<CandidateRow>> {
        self.read(|c| candidate_by(c, "hash = ?1", hash))
    }

    /// The candidate that opened `story`.
    pub fn candidate_of(&self, story: &str) -> Result<Option<CandidateRow>> {
        self.read(|c| candidate_by(c, "story = ?1", story))
    }

    /// The revision proposals of `story`, oldest first.
    pub fn revisions(&self, story: &str) -> Result<Vec<RevisionRow>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!("{REVISION_SELECT} WHERE story = ?1 ORDER BY write_seq"))?;
            let rows = st.query_map(params![story], revision_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    pub fn revision(&self, id: &str) -> Result<Option<RevisionRow>> {
        self.read(|c| {
            Ok(c.query_row(&format!("{REVISION_SELECT} WHERE id = ?1"), params![id], revision_row).optional()?)
        })
    }

    /// Votes on a revision: (bot, vote, role, verified).
    pub fn votes(&self, revision: &str) -> Result<Vec<(String, String, String, bool)>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT v.bot_id, v.vote, v.role, COALESCE(b.verified, 0) FROM votes v LEFT JOIN bots b ON b.bot_id = v.bot_id
                 WHERE v.revision = ?1 ORDER BY v.write_seq",
            )?;
            let rows = st.query_map(params![revision], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Marks a revision `ADOPTED`, `REJECTED` or `STALE`.
    pub fn set_revision_state(&self, id: &str, state: &str) -> Result<()> {
        let w = lock(&self.shared.writer);
        w.conn.execute("UPDATE revisions SET state = ?2 WHERE id = ?1", params![id, state])?;
        Ok(())
    }

    /// Every record with its stored digest and chain, in order (for the audit).
    pub fn for_each_record(&self, mut f: impl FnMut(std::result::Result<Stored, String>) -> bool) -> Result<()> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT seq, kind, bot_id, story, target, packet, audience, method, path, timestamp, nonce, body,
                        key_order, signature, digest, chain FROM writes ORDER BY seq",
            )?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let item = (|| -> rusqlite::Result<Stored> {
                    let order: String = r.get(12)?;
                    Ok(Stored {
                        record: Record {
                            seq: r.get(0)?,
                            kind: r.get(1)?,
                            bot_id: r.get(2)?,
                            story: r.get(3)?,
                            target: r.get(4)?,
                            packet: r.get(5)?,
                            audience: r.get(6)?,
                            method: r.get(7)?,
                            path: r.get(8)?,
                            timestamp: r.get(9)?,
                            nonce: r.get(10)?,
                            body: r.get(11)?,
                            order: if order == "locale" { KeyOrder::Locale } else { KeyOrder::Code },
                            signature: r.get(13)?,
                        },
                        digest: r.get(14)?,
                        chain: r.get(15)?,
                    })
                })();
                if !f(item.map_err(|e| e.to_string())) {
                    break;
                }
            }
            Ok(())
        })
    }

    /// The records of one story, in order.
    pub fn records_of(&self, story: &str) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT seq, kind, bot_id, story, target, packet, audience, method, path, timestamp, nonce, body,
                        key_order, signature FROM writes WHERE story = ?1 ORDER BY seq",
            )?;
            let rows = st.query_map(params![story], |r| {
                let order: String = r.get(12)?;
                Ok(Record {
                    seq: r.get(0)?,
                    kind: r.get(1)?,
                    bot_id: r.get(2)?,
                    story: r.get(3)?,
                    target: r.get(4)?,
                    packet: r.get(5)?,
                    audience: r.get(6)?,
                    method: r.get(7)?,
                    path: r.get(8)?,
                    timestamp: r.get(9)?,
                    nonce: r.get(10)?,
                    body: r.get(11)?,
                    order: if order == "locale" { KeyOrder::Locale } else { KeyOrder::Code },
                    signature: r.get(13)?,
                })
            })?;
            for r in rows {
                out.push(r?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Counts for the orientation documents: (bots, writes).
    pub fn counts(&self) -> Result<(i64, i64)> {
        self.read(|c| {
            Ok((
                c.query_row("SELECT count(*) FROM bots", [], |r| r.get(0))?,
                c.query_row("SELECT count(*) FROM writes", [], |r| r.get(0))?,
            ))
        })
    }

    /// Runs raw SQL on the writer: for tests that play an attacker with write access to the file.
    pub fn tamper(&self, sql: &str) -> Result<()> {
        let w = lock(&self.shared.writer);
        w.conn.execute_batch(sql)?;
        Ok(())
    }
}

impl crate::agents::gate2::Ledger for AgentStore {
    fn verdicts(&self, story: &str) -> std::result::Result<Vec<BotVerdict>, String> {
        AgentStore::verdicts(self, story).map_err(|e| e.to_string())
    }
    fn head(&self) -> std::result::Result<(i64, [u8; 32]), String> {
        AgentStore::head(self).map_err(|e| e.to_string())
    }
}

/// A stored candidate.
#[derive(Clone, Debug)]
pub struct CandidateRow {
    pub hash: String,
    pub story: String,
    pub bot_id: String,
    pub write_seq: i64,
    pub base: String,
    pub proposal: String,
    pub metadata: Option<String>,
}

fn candidate_by(c: &Connection, cond: &str, v: &str) -> Result<Option<CandidateRow>> {
    Ok(c.query_row(
        &format!("SELECT hash, story, bot_id, write_seq, base, proposal, metadata FROM candidates WHERE {cond}"),
        params![v],
        |r| {
            Ok(CandidateRow {
                hash: r.get(0)?,
                story: r.get(1)?,
                bot_id: r.get(2)?,
                write_seq: r.get(3)?,
                base: r.get(4)?,
                proposal: r.get(5)?,
                metadata: r.get(6)?,
            })
        },
    )
    .optional()?)
}

/// A stored revision proposal.
#[derive(Clone, Debug)]
pub struct RevisionRow {
    pub id: String,
    pub story: String,
    pub bot_id: String,
    pub base_packet: String,
    pub packet: String,
    pub proposal: String,
    pub reason: String,
    pub write_seq: i64,
    pub state: String,
}

const REVISION_SELECT: &str =
    "SELECT id, story, bot_id, base_packet, packet, proposal, reason, write_seq, state FROM revisions";

fn revision_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RevisionRow> {
    Ok(RevisionRow {
        id: r.get(0)?,
        story: r.get(1)?,
        bot_id: r.get(2)?,
        base_packet: r.get(3)?,
        packet: r.get(4)?,
        proposal: r.get(5)?,
        reason: r.get(6)?,
        write_seq: r.get(7)?,
        state: r.get(8)?,
    })
}

enum Applied {
    Done { outcome: Outcome, chain: [u8; 32], bot: Option<(String, Bot)> },
    Refused(Outcome),
}

fn apply(c: &Connection, mut job: Job, seq: i64, prev: &[u8; 32]) -> Result<Applied> {
    if let Some(k) = &job.idem {
        if let Some(row) = idem_row(c, &k.key)? {
            return Ok(Applied::Refused(Outcome::IdemTaken(row)));
        }
    }
    job.record.seq = seq;
    let r = &job.record;
    let digest = r.digest();
    let chain = ledger::link(prev, &digest);
    let inserted = c.prepare_cached(
        "INSERT INTO writes (seq, kind, bot_id, story, target, packet, audience, method, path, timestamp, nonce, body,
                             key_order, signature, digest, chain, received_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?
    .execute(params![
        seq,
        r.kind,
        r.bot_id,
        r.story,
        r.target,
        r.packet,
        r.audience,
        r.method,
        r.path,
        r.timestamp,
        r.nonce,
        r.body,
        r.order.as_str(),
        r.signature,
        &digest[..],
        &chain[..],
        job.now_ms
    ]);
    match inserted {
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            return Ok(Applied::Refused(Outcome::NonceReplay));
        }
        other => other?,
    };
    let mut bot = None;
    let story = r.story.clone().unwrap_or_default();
    match job.effect {
        Effect::Join => {
            c.prepare_cached("INSERT OR IGNORE INTO bots (bot_id, joined_seq, joined_ms) VALUES (?1, ?2, ?3)")?
                .execute(params![r.bot_id, seq, job.now_ms])?;
            let (verified, linked_human) =
                c.query_row("SELECT verified, linked_human FROM bots WHERE bot_id = ?1", params![r.bot_id], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?;
            bot = Some((r.bot_id.clone(), Bot { verified, linked_human }));
        }
        Effect::Verify { linked_human, operator } => {
            c.execute(
                "UPDATE bots SET verified = 1, linked_human = ?2, operator = ?3, verified_seq = ?4 WHERE bot_id = ?1",
                params![r.bot_id, linked_human, operator, seq],
            )?;
            bot = Some((r.bot_id.clone(), Bot { verified: true, linked_human: Some(linked_human) }));
        }
        Effect::Candidate { hash, story, base, proposal, metadata } => {
            c.execute(
                "INSERT OR REPLACE INTO candidates (hash, story, bot_id, write_seq, base, proposal, metadata)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![hash, story, r.bot_id, seq, base, proposal, metadata],
            )?;
        }
        Effect::Verdict { verdict, role, severity, reason } => {
            c.prepare_cached(
                "INSERT INTO verdicts (story, packet, bot_id, verdict, role, severity, reason, write_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (story, packet, bot_id) DO UPDATE SET verdict = excluded.verdict, role = excluded.role,
                    severity = excluded.severity, reason = excluded.reason, write_seq = excluded.write_seq",
            )?
            .execute(params![
                story,
                r.packet,
                r.bot_id,
                if verdict == Verdict::Attest { "attest" } else { "object" },
                role,
                severity,
                reason,
                seq
            ])?;
        }
        Effect::Revision { packet, proposal, reason } => {
            c.execute(
                "INSERT INTO revisions (id, story, bot_id, base_packet, packet, proposal, reason, write_seq, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'OPEN')",
                params![format!("rev-{seq}"), story, r.bot_id, r.packet, packet, proposal, reason, seq],
            )?;
        }
        Effect::Vote { vote, role, reason } => {
            c.prepare_cached(
                "INSERT INTO votes (revision, bot_id, vote, role, reason, write_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (revision, bot_id) DO UPDATE SET vote = excluded.vote, role = excluded.role,
                    reason = excluded.reason, write_seq = excluded.write_seq",
            )?
            .execute(params![r.target, r.bot_id, vote, role, reason, seq])?;
        }
    }
    let (status, body) = (job.respond)(seq);
    if let Some(k) = &job.idem {
        c.execute(
            "INSERT INTO idempotency (key, actor, operation, fingerprint, status, body, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![k.key, k.actor, k.operation, k.fingerprint, status, body, job.now_ms],
        )?;
    }
    Ok(Applied::Done { outcome: Outcome::Committed { seq, status, body }, chain, bot })
}

fn idem_row(c: &Connection, key: &str) -> Result<Option<IdemRow>> {
    Ok(c.prepare_cached("SELECT actor, operation, fingerprint, status, body FROM idempotency WHERE key = ?1")?
        .query_row(params![key], |r| {
            Ok(IdemRow {
                actor: r.get(0)?,
                operation: r.get(1)?,
                fingerprint: r.get(2)?,
                status: r.get(3)?,
                body: r.get(4)?,
            })
        })
        .optional()?)
}

fn head(c: &Connection) -> Result<(i64, [u8; 32])> {
    let row: Option<(i64, Vec<u8>)> = c
        .query_row("SELECT seq, chain FROM writes ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((seq, chain)) => (seq, <[u8; 32]>::try_from(chain.as_slice()).unwrap_or([0; 32])),
        None => (0, [0; 32]),
    })
}

fn open_conn(path: &Path) -> Result<Connection> {
    let open_err = |source| StoreError::Open { path: path.to_path_buf(), source };
    let conn = Connection::open(path).map_err(open_err)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;
         PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16000;",
    )
    .map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

fn migrate(conn: &Connection, path: &Path) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::NewerSchema { path: path.to_path_buf(), found: version, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;", i + 1)).inspect_err(
            |_| {
                let _ = conn.execute_batch("ROLLBACK");
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(bot: &str, nonce: &str) -> Job {
        Job {
            record: Record {
                seq: 0,
                kind: "join".into(),
                bot_id: bot.into(),
                story: None,
                target: None,
                packet: None,
                audience: "ratchet".into(),
                method: "POST".into(),
                path: "/v1/agents/join".into(),
                timestamp: "1".into(),
                nonce: nonce.into(),
                body: format!("{{\"botId\":\"{bot}\"}}"),
                order: KeyOrder::Code,
                signature: "sig".into(),
            },
            effect: Effect::Join,
            idem: None,
            respond: Box::new(|seq| (201, seq.to_string().into_bytes())),
            now_ms: 1,
        }
    }

    /// Many writers at once: each is answered only after its batch commits,
    /// numbers are gapless, a replayed nonce takes no number, and the chain
    /// read back after reopening is the one the writer kept.
    #[test]
    fn concurrent_commits_are_grouped_numbered_and_chained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agents.db");
        let store = Arc::new(AgentStore::open(&path).unwrap());
        let outs: Vec<Outcome> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..48)
                .map(|i| {
                    let store = store.clone();
                    s.spawn(move || store.commit(job(&format!("bot{}", i % 24), &format!("nonce-{}", i % 40))).unwrap())
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut seqs: Vec<i64> = outs
            .iter()
            .filter_map(|o| match o {
                Outcome::Committed { seq, status: 201, body } => {
                    assert_eq!(body, &seq.to_string().into_bytes());
                    Some(*seq)
                }
                Outcome::NonceReplay => None,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        seqs.sort();
        // (bot, nonce) pairs: i % 24 and i % 40 repeat together every 120, so all 48 are distinct.
        assert_eq!(seqs, (1..=48).collect::<Vec<_>>());
        // The same bot and nonce again is a replay, refused alone.
        assert!(matches!(store.commit(job("bot0", "nonce-0")).unwrap(), Outcome::NonceReplay));
        assert!(matches!(store.commit(job("bot0", "nonce-fresh")).unwrap(), Outcome::Committed { seq: 49, .. }));
        let head = store.head().unwrap();
        drop(store);
        let again = AgentStore::open_existing(&path).unwrap();
        assert_eq!(again.head().unwrap(), head);
        // (The records carry no real signatures: the chain is checked here,
        // the signatures by the integration tests' `log verify`.)
        let (mut chain, mut n) = ([0u8; 32], 0);
        again
            .for_each_record(|r| {
                let r = r.unwrap();
                n += 1;
                assert_eq!(r.record.seq, n);
                assert_eq!(r.digest, r.record.digest().to_vec());
                chain = ledger::link(&chain, &r.record.digest());
                assert_eq!(r.chain, chain.to_vec());
                true
            })
            .unwrap();
        assert_eq!((n, chain), head);
    }

    /// A job queued just before the store closes is still committed.
    #[test]
    fn closing_the_store_commits_what_is_queued() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agents.db");
        let store = AgentStore::open(&path).unwrap();
        let rx = store.enqueue(job("bot", "nonce-closing")).unwrap();
        drop(store);
        assert!(matches!(rx.blocking_recv().unwrap().unwrap(), Outcome::Committed { seq: 1, .. }));
        assert_eq!(AgentStore::open_existing(&path).unwrap().head().unwrap().0, 1);
    }
}

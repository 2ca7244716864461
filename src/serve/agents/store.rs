//! The agents' SQLite store: `.ratchet/agents.db` of the workspace, apart
//! from LoopKit's database (its own schema versions, its own writer, and
//! `synchronous = FULL`: an accepted signed write survives power loss).
//!
//! Every signed write commits through [`AgentStore::commit`]: the ledger
//! record (numbered and chained, see `agents::ledger`), the write's effect
//! (a bot joined, a verdict, a revision, a vote, a candidate), and, for
//! idempotent writes, the key and the response, in one transaction.
//! Concurrent commits are grouped: whoever takes the writer commits every
//! job queued so far in one transaction (one fsync), each in its own
//! savepoint, so a job that fails (a replayed nonce, an idempotency race)
//! rolls back alone and takes no ledger number.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

type Waiter = std::sync::mpsc::SyncSender<Result<Outcome, String>>;

/// A registered bot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bot {
    pub verified: bool,
    pub linked_human: Option<String>,
}

pub struct AgentStore {
    path: PathBuf,
    writer: Mutex<Writer>,
    reader: Mutex<Connection>,
    pending: Mutex<Vec<(Job, Waiter)>>,
    bots: Mutex<HashMap<String, Bot>>,
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
            path: path.to_path_buf(),
            writer: Mutex::new(Writer { conn, seq, chain }),
            reader: Mutex::new(reader),
            pending: Mutex::new(Vec::new()),
            bots: Mutex::new(bots),
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
        &self.path
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    }

    /// A registered bot.
    pub fn bot(&self, bot_id: &str) -> Option<Bot> {
        self.bots.lock().unwrap_or_else(|p| p.into_inner()).get(bot_id).cloned()
    }

    /// Commits one signed write (grouped with whatever else is queued).
    pub fn commit(&self, job: Job) -> Result<Outcome, String> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).push((job, tx));
        {
            let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let jobs = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
            if !jobs.is_empty() {
                self.run_batch(&mut w, jobs);
            }
        }
        rx.recv().map_err(|_| "the commit was lost".to_string())?
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
                tx.execute_batch("SAVEPOINT job")?;
                match apply(&tx, job, seq + 1, &chain) {
                    Ok(Applied::Done { outcome, chain: next, bot }) => {
                        tx.execute_batch("RELEASE job")?;
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
                let mut bots = self.bots.lock().unwrap_or_else(|p| p.into_inner());
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
        let w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
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
        let w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
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
        let w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
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

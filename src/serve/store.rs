//! The SQLite store of `ratchet serve`: the only module that names rusqlite.
//!
//! One file (`.ratchet/loopkit.db` by default) in WAL mode. One writer
//! connection behind a mutex, and a small pool of reader connections, so
//! reads never wait for ingest. The schema is versioned by `PRAGMA
//! user_version`: [`MIGRATIONS`] are applied in order, each in its own
//! transaction, and a database written by a newer ratchet is refused.
//!
//! Invariants:
//! - keys are stored only as SHA-256 digests (`api_keys.digest`); no plain
//!   key is ever written;
//! - an ingest is one transaction: the project's expiry and span quota are
//!   checked, the records, pains and changes written and the span count
//!   bumped together, or nothing is written;
//! - a (project, span start, span id) is stored once: a retried batch is
//!   idempotent;
//! - with `synchronous = NORMAL` (the default) a committed ingest survives
//!   the server process being killed; `FULL` also survives power loss.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::error::Coded;
use crate::loopkit::fingerprint::{self, Fingerprint, FingerprintInput};
use crate::loopkit::keys::KeyKind;
use crate::loopkit::normalise::{ChangeEvent, Record};

/// The schema, one migration per version. Never edit a released entry: add one.
pub const MIGRATIONS: &[&str] = &[
    // 1: projects, keys, records, pains, changes.
    r#"
    CREATE TABLE projects (
        id             INTEGER PRIMARY KEY,
        public_id      TEXT NOT NULL UNIQUE,
        name           TEXT NOT NULL,
        operator       TEXT NOT NULL DEFAULT '',
        provisioned    INTEGER NOT NULL,
        tier           TEXT NOT NULL CHECK (tier IN ('sandbox', 'permanent')),
        quota_spans    INTEGER NOT NULL,
        span_count     INTEGER NOT NULL DEFAULT 0,
        expires_at     INTEGER,
        key_generation INTEGER NOT NULL DEFAULT 1,
        created_at     INTEGER NOT NULL,
        graduated_at   INTEGER
    );
    CREATE UNIQUE INDEX projects_provision_identity ON projects(name, operator) WHERE provisioned = 1;
    CREATE TABLE api_keys (
        digest     BLOB PRIMARY KEY,
        project    INTEGER NOT NULL REFERENCES projects(id),
        kind       TEXT NOT NULL CHECK (kind IN ('producer', 'agent')),
        generation INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    ) WITHOUT ROWID;
    CREATE TABLE records (
        id             INTEGER PRIMARY KEY,
        project        INTEGER NOT NULL,
        trace_id       BLOB NOT NULL,
        span_id        BLOB NOT NULL,
        parent_span_id BLOB,
        service        TEXT NOT NULL,
        name           TEXT NOT NULL,
        operation      TEXT NOT NULL,
        kind           INTEGER NOT NULL,
        status_code    INTEGER NOT NULL,
        status_message TEXT NOT NULL,
        start_ns       INTEGER NOT NULL,
        end_ns         INTEGER NOT NULL,
        http_status    INTEGER,
        signal         TEXT,
        pain_id        TEXT,
        fp_version     TEXT,
        exc_type       TEXT,
        exc_message    TEXT,
        exc_stack      TEXT,
        attributes     TEXT NOT NULL
    );
    -- One index serves windows, paging and retries: spans arrive roughly in
    -- time order, so its inserts land near the end (random trace ids would
    -- scatter them), and a retried span has the same start and span id.
    CREATE UNIQUE INDEX records_time ON records(project, start_ns, span_id);
    CREATE INDEX records_pain ON records(project, pain_id, start_ns) WHERE pain_id IS NOT NULL;
    CREATE TABLE pains (
        project      INTEGER NOT NULL,
        pain_id      TEXT NOT NULL,
        fp_version   TEXT NOT NULL,
        signal       TEXT NOT NULL,
        title        TEXT NOT NULL,
        components   TEXT NOT NULL,
        first_seen_ns INTEGER NOT NULL,
        last_seen_ns  INTEGER NOT NULL,
        total        INTEGER NOT NULL,
        PRIMARY KEY (project, pain_id)
    ) WITHOUT ROWID;
    CREATE TABLE changes (
        project  INTEGER NOT NULL,
        pain_id  TEXT NOT NULL,
        at_ns    INTEGER NOT NULL,
        trace_id BLOB NOT NULL,
        span_id  BLOB NOT NULL,
        step     TEXT,
        PRIMARY KEY (project, pain_id, trace_id, span_id)
    ) WITHOUT ROWID;
    "#,
    // 2: a failing span caused by a failing child is counted once (the
    // child's pain): `caused_by` names the child; both lookups go through
    // small partial indexes over failing records only.
    r#"
    ALTER TABLE records ADD COLUMN caused_by BLOB;
    CREATE INDEX records_failing_span ON records(project, span_id) WHERE signal IS NOT NULL;
    CREATE INDEX records_failing_parent ON records(project, parent_span_id) WHERE signal IS NOT NULL;
    "#,
    // 3: facts about the database itself; `fingerprint` is the version the
    // stored pains were grouped under (see [`Store::regroup`]).
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
];

/// Failing records re-fingerprinted per transaction when the fingerprint
/// version changes: what bounds the memory and the lock time of a regroup.
pub const REGROUP_BATCH: usize = 2_000;

/// What a regroup at start-up did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Regrouped {
    /// The version the database was grouped under (`None`: never recorded).
    pub from: Option<String>,
    pub to: &'static str,
    /// Failing records fingerprinted again.
    pub records: u64,
    /// Records whose pain changed.
    pub moved: u64,
    /// Pains after the regroup, over all projects.
    pub pains: u64,
    /// Merged changes whose pain id was carried over to the new id.
    pub changes: u64,
}

/// How hard a commit waits for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synchronous {
    /// The WAL is written (not fsynced) at each commit: durable against a
    /// crash or kill of the server, not against power loss.
    Normal,
    /// The WAL is fsynced at each commit: durable against power loss too.
    Full,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the batch was not committed: {0}")]
    Commit(String),
    #[error("the database {path} has schema version {found}, newer than this ratchet knows ({known})")]
    NewerSchema { path: PathBuf, found: i64, known: i64 },
    #[error("a project named {name:?} already exists for operator {operator:?}")]
    ProjectExists { name: String, operator: String },
    #[error("project {0} has expired")]
    Expired(String),
    #[error("project {project} would exceed its quota of {quota} spans ({used} used, {incoming} incoming)")]
    QuotaExceeded { project: String, quota: i64, used: i64, incoming: usize },
    #[error("no project {0}")]
    NoProject(String),
}

impl Coded for StoreError {
    fn code(&self) -> &'static str {
        match self {
            StoreError::Open { .. } | StoreError::Sqlite(_) | StoreError::Commit(_) => "STORE_ERROR",
            StoreError::NewerSchema { .. } => "STORE_SCHEMA_TOO_NEW",
            StoreError::ProjectExists { .. } => "PROJECT_EXISTS",
            StoreError::Expired(_) => "SANDBOX_EXPIRED",
            StoreError::QuotaExceeded { .. } => "QUOTA_EXCEEDED",
            StoreError::NoProject(_) => "PROJECT_NOT_FOUND",
        }
    }
    fn hint(&self) -> Option<String> {
        Some(match self {
            StoreError::Open { path, .. } => format!("check that {} is a writable SQLite database, or pass another --db", path.display()),
            StoreError::Sqlite(_) | StoreError::Commit(_) => "retry; if it persists, check the disk and the server log".into(),
            StoreError::NewerSchema { .. } => "run a newer ratchet, or pass --db to use another database".into(),
            StoreError::ProjectExists { .. } => {
                "resume it with one of its keys as 'Authorization: Bearer <key>', or recover the keys with POST /v1/recover".into()
            }
            StoreError::Expired(_) => {
                "graduate the sandbox with POST /v1/signup/upgrade, or mint a permanent project with POST /v1/provision".into()
            }
            StoreError::QuotaExceeded { .. } => {
                "graduate with POST /v1/signup/upgrade (or POST /v1/provision), or request a production tenant via /contact.json".into()
            }
            StoreError::NoProject(_) => "check the project_id from your signup or provision response".into(),
        })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A project as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    pub rowid: i64,
    pub public_id: String,
    pub name: String,
    pub operator: String,
    pub provisioned: bool,
    pub tier: String,
    pub quota_spans: i64,
    pub span_count: i64,
    pub expires_at: Option<i64>,
    pub key_generation: i64,
    pub created_at: i64,
    pub graduated_at: Option<i64>,
}

/// What a new project starts with.
pub struct NewProject<'a> {
    pub public_id: &'a str,
    pub name: &'a str,
    pub operator: &'a str,
    pub provisioned: bool,
    pub tier: &'a str,
    pub quota_spans: i64,
    pub expires_at: Option<i64>,
    pub keys: &'a [(KeyKind, [u8; 32])],
    pub now: i64,
}

/// A key's row, joined with its project.
#[derive(Clone, Debug)]
pub struct KeyRow {
    pub digest: Vec<u8>,
    pub kind: KeyKind,
    pub revoked: bool,
    pub project: Project,
}

/// A stored record, as read back.
#[derive(Clone, Debug)]
pub struct StoredRecord {
    pub id: i64,
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    pub parent_span_id: Option<Vec<u8>>,
    pub service: String,
    pub name: String,
    pub operation: String,
    pub kind: i64,
    pub status_code: i64,
    pub status_message: String,
    pub start_ns: i64,
    pub end_ns: i64,
    pub http_status: Option<i64>,
    pub signal: Option<String>,
    pub pain_id: Option<String>,
    pub exc_type: Option<String>,
    pub exc_message: Option<String>,
    pub exc_stack: Option<String>,
    pub attributes: String,
    pub caused_by: Option<Vec<u8>>,
}

/// A pain as stored (its fingerprint components as JSON text).
#[derive(Clone, Debug)]
pub struct PainRow {
    pub pain_id: String,
    pub fp_version: String,
    pub signal: String,
    pub title: String,
    pub components: String,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
    pub total: i64,
}

/// A pain's count within a window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PainCount {
    pub pain_id: String,
    pub count: u64,
    pub first_ns: i64,
    pub last_ns: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeRow {
    pub pain_id: String,
    pub at_ns: i64,
    pub step: Option<String>,
    /// The span that reported the change.
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
}

/// What an ingest wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ingested {
    pub inserted: u64,
    pub duplicates: u64,
    pub changes: u64,
    /// Spans past the project's lifetime quota, dropped (not written).
    pub over_quota: u64,
}

pub struct Store {
    path: PathBuf,
    sync: Synchronous,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    pending: Mutex<Vec<Job>>,
    _checkpointer: Option<Checkpointer>,
    /// Live keys already looked up, by digest; cleared whenever a key or a
    /// project changes (rotation, graduation).
    key_cache: Mutex<(u64, HashMap<[u8; 32], KeyRow>)>,
    /// What the regroup at open did, when the fingerprint version changed.
    regrouped: Option<Regrouped>,
}

const RECORD_COLUMNS: &str = "id, trace_id, span_id, parent_span_id, service, name, operation, kind, status_code, \
     status_message, start_ns, end_ns, http_status, signal, pain_id, exc_type, exc_message, exc_stack, attributes, caused_by";

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path, sync: Synchronous) -> Result<Store> {
        let mut conn = open_conn(path, sync)?;
        migrate(&conn, path)?;
        let regrouped = regroup(&mut conn)?;
        // Checkpoints run on their own thread, off the commit path.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        let checkpointer = Checkpointer::start(open_conn(path, sync)?);
        Ok(Store {
            path: path.to_path_buf(),
            sync,
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            pending: Mutex::new(Vec::new()),
            _checkpointer: Some(checkpointer),
            key_cache: Mutex::new((0, HashMap::new())),
            regrouped,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What opening the database regrouped (`None` when the stored pains
    /// were already grouped under the current fingerprint version).
    pub fn regrouped(&self) -> Option<&Regrouped> {
        self.regrouped.as_ref()
    }

    fn write<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut conn)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_conn(&self.path, self.sync)?,
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 8 {
            pool.push(conn);
        }
        out
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64> {
        self.read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
    }

    // ---- projects and keys ------------------------------------------------

    /// Creates a project with its keys in one transaction. A second
    /// provisioned project with the same (name, operator) fails with
    /// [`StoreError::ProjectExists`], whatever the interleaving.
    pub fn create_project(&self, p: &NewProject<'_>) -> Result<Project> {
        self.write(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let inserted = tx.execute(
                "INSERT INTO projects (public_id, name, operator, provisioned, tier, quota_spans, expires_at, created_at, graduated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, CASE WHEN ?5 = 'permanent' THEN ?8 END)",
                params![p.public_id, p.name, p.operator, p.provisioned, p.tier, p.quota_spans, p.expires_at, p.now],
            );
            match inserted {
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                    return Err(StoreError::ProjectExists { name: p.name.to_string(), operator: p.operator.to_string() });
                }
                other => other?,
            };
            let rowid = tx.last_insert_rowid();
            for (kind, digest) in p.keys {
                tx.execute(
                    "INSERT INTO api_keys (digest, project, kind, generation, created_at) VALUES (?1, ?2, ?3, 1, ?4)",
                    params![&digest[..], rowid, kind.as_str(), p.now],
                )?;
            }
            let project = project_by(&tx, "id = ?1", params![rowid])?.ok_or_else(|| StoreError::NoProject(p.public_id.into()))?;
            tx.commit()?;
            Ok(project)
        })
    }

    pub fn provisioned_project(&self, name: &str, operator: &str) -> Result<Option<Project>> {
        self.read(|c| project_by(c, "provisioned = 1 AND name = ?1 AND operator = ?2", params![name, operator]))
    }

    pub fn project(&self, public_id: &str) -> Result<Option<Project>> {
        self.read(|c| project_by(c, "public_id = ?1", params![public_id]))
    }

    /// The key with this digest, and its project.
    pub fn key(&self, digest: &[u8; 32]) -> Result<Option<KeyRow>> {
        let epoch = {
            let cache = self.key_cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(row) = cache.1.get(digest) {
                return Ok(Some(row.clone()));
            }
            cache.0
        };
        let row = self.key_uncached(digest)?;
        if let Some(r) = row.as_ref().filter(|r| !r.revoked) {
            let mut cache = self.key_cache.lock().unwrap_or_else(|p| p.into_inner());
            // A rotation or graduation since the read makes the row stale.
            if cache.0 == epoch {
                if cache.1.len() >= 10_000 {
                    cache.1.clear();
                }
                cache.1.insert(*digest, r.clone());
            }
        }
        Ok(row)
    }

    fn forget_keys(&self) {
        let mut cache = self.key_cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.0 += 1;
        cache.1.clear();
    }

    fn key_uncached(&self, digest: &[u8; 32]) -> Result<Option<KeyRow>> {
        self.read(|c| {
            let row = c
                .query_row(
                    "SELECT digest, kind, revoked_at IS NOT NULL, project FROM api_keys WHERE digest = ?1",
                    params![&digest[..]],
                    |r| {
                        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?, r.get::<_, i64>(3)?))
                    },
                )
                .optional()?;
            let Some((digest, kind, revoked, project)) = row else { return Ok(None) };
            let Some(kind) = KeyKind::from_name(&kind) else { return Ok(None) };
            let Some(project) = project_by(c, "id = ?1", params![project])? else { return Ok(None) };
            Ok(Some(KeyRow { digest, kind, revoked, project }))
        })
    }

    /// Makes a project permanent (no expiry) with `quota_spans`.
    pub fn graduate(&self, rowid: i64, quota_spans: i64, now: i64) -> Result<Project> {
        let out = self.write(|conn| {
            conn.execute(
                "UPDATE projects SET tier = 'permanent', expires_at = NULL, quota_spans = max(quota_spans, ?2),
                 graduated_at = coalesce(graduated_at, ?3) WHERE id = ?1",
                params![rowid, quota_spans, now],
            )?;
            project_by(conn, "id = ?1", params![rowid])?.ok_or_else(|| StoreError::NoProject(rowid.to_string()))
        });
        self.forget_keys();
        out
    }

    /// Revokes every live key of the project and stores the new ones, in one
    /// transaction; returns the project with its new key generation.
    pub fn rotate_keys(&self, rowid: i64, keys: &[(KeyKind, [u8; 32])], now: i64) -> Result<Project> {
        let out = self.write(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE api_keys SET revoked_at = ?2 WHERE project = ?1 AND revoked_at IS NULL",
                params![rowid, now],
            )?;
            tx.execute("UPDATE projects SET key_generation = key_generation + 1 WHERE id = ?1", params![rowid])?;
            let generation: i64 =
                tx.query_row("SELECT key_generation FROM projects WHERE id = ?1", params![rowid], |r| r.get(0))?;
            for (kind, digest) in keys {
                tx.execute(
                    "INSERT INTO api_keys (digest, project, kind, generation, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![&digest[..], rowid, kind.as_str(), generation, now],
                )?;
            }
            let p =
                project_by(&tx, "id = ?1", params![rowid])?.ok_or_else(|| StoreError::NoProject(rowid.to_string()))?;
            tx.commit()?;
            Ok(p)
        });
        self.forget_keys();
        out
    }

    // ---- ingest -------------------------------------------------------------

    /// Stores a batch for a project, after checking the project's expiry
    /// and span quota in the same transaction, and returns once it is
    /// committed.
    ///
    /// Group commit: concurrent callers queue their batches; whoever holds
    /// the writer commits every queued batch in one transaction, each checked for
    /// quota and expiry before anything of it is written, so a refused batch
    /// writes nothing and the others still commit. Nobody is answered before the
    /// transaction holding their batch has committed.
    pub fn ingest(&self, rowid: i64, records: Vec<Record>, changes: Vec<ChangeEvent>, now_s: i64) -> Result<Ingested> {
        let (done, result) = std::sync::mpsc::channel();
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).push(Job { rowid, records, changes, now_s, done });
        {
            let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let jobs = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
            if !jobs.is_empty() {
                commit_group(&mut conn, jobs);
            }
        }
        result.recv().unwrap_or_else(|_| Err(StoreError::Commit("the writer stopped before committing".into())))
    }

    // ---- reads --------------------------------------------------------------

    /// Records of a window, newest first, after the cursor (start_ns, span id).
    pub fn records_page(
        &self,
        rowid: i64,
        (start, end): (i64, i64),
        cursor: Option<(i64, Vec<u8>)>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>> {
        self.read(|c| {
            let (cs, ci) = cursor.unwrap_or((i64::MAX, vec![0xff; 9]));
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM records WHERE project = ?1 AND start_ns >= ?2 AND start_ns < ?3
                 AND (start_ns, span_id) < (?4, ?5) ORDER BY start_ns DESC, span_id DESC LIMIT ?6"
            ))?;
            let rows = stmt.query_map(params![rowid, start, end, cs, ci, limit as i64], stored_record)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Spans of a project whose start lies in [start, end).
    pub fn span_total(&self, rowid: i64, (start, end): (i64, i64)) -> Result<u64> {
        self.read(|c| {
            let n: i64 = c
                .prepare_cached("SELECT count(*) FROM records WHERE project = ?1 AND start_ns >= ?2 AND start_ns < ?3")?
                .query_row(params![rowid, start, end], |r| r.get(0))?;
            Ok(n as u64)
        })
    }

    /// Every pain seen in [start, end), with its count there.
    pub fn pain_counts(&self, rowid: i64, (start, end): (i64, i64)) -> Result<Vec<PainCount>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT pain_id, count(*), min(start_ns), max(start_ns) FROM records INDEXED BY records_pain
                 WHERE project = ?1 AND pain_id IS NOT NULL AND start_ns >= ?2 AND start_ns < ?3
                 GROUP BY pain_id ORDER BY pain_id",
            )?;
            let rows = stmt.query_map(params![rowid, start, end], |r| {
                Ok(PainCount {
                    pain_id: r.get(0)?,
                    count: r.get::<_, i64>(1)? as u64,
                    first_ns: r.get(2)?,
                    last_ns: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// One pain's count in [start, end).
    pub fn pain_count(&self, rowid: i64, pain_id: &str, (start, end): (i64, i64)) -> Result<u64> {
        self.read(|c| {
            let n: i64 = c
                .prepare_cached(
                    "SELECT count(*) FROM records INDEXED BY records_pain
                     WHERE project = ?1 AND pain_id = ?2 AND pain_id IS NOT NULL AND start_ns >= ?3 AND start_ns < ?4",
                )?
                .query_row(params![rowid, pain_id, start, end], |r| r.get(0))?;
            Ok(n as u64)
        })
    }

    /// Counts of one pain in `n` consecutive buckets of `bucket_ns` from
    /// `start`: one entry per non-empty bucket, (bucket index, count).
    pub fn pain_buckets(
        &self,
        rowid: i64,
        pain_id: &str,
        start: i64,
        bucket_ns: i64,
        n: usize,
    ) -> Result<Vec<(usize, u64)>> {
        let end = start.saturating_add(bucket_ns.saturating_mul(n as i64));
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT (start_ns - ?3) / ?5, count(*) FROM records INDEXED BY records_pain
                 WHERE project = ?1 AND pain_id = ?2 AND pain_id IS NOT NULL AND start_ns >= ?3 AND start_ns < ?4
                 GROUP BY 1 ORDER BY 1",
            )?;
            let rows = stmt.query_map(params![rowid, pain_id, start, end, bucket_ns.max(1)], |r| {
                Ok((r.get::<_, i64>(0)?.clamp(0, n as i64 - 1) as usize, r.get::<_, i64>(1)? as u64))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// The stored pains of a project, by id.
    pub fn pains(&self, rowid: i64) -> Result<HashMap<String, PainRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT pain_id, fp_version, signal, title, components, first_seen_ns, last_seen_ns, total FROM pains WHERE project = ?1",
            )?;
            let rows = stmt.query_map(params![rowid], |r| {
                Ok(PainRow {
                    pain_id: r.get(0)?,
                    fp_version: r.get(1)?,
                    signal: r.get(2)?,
                    title: r.get(3)?,
                    components: r.get(4)?,
                    first_seen_ns: r.get(5)?,
                    last_seen_ns: r.get(6)?,
                    total: r.get(7)?,
                })
            })?;
            rows.map(|r| r.map(|p| (p.pain_id.clone(), p)).map_err(StoreError::from)).collect()
        })
    }

    /// The newest `n` records of a pain in [start, end).
    pub fn evidence(&self, rowid: i64, pain_id: &str, (start, end): (i64, i64), n: usize) -> Result<Vec<StoredRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM records INDEXED BY records_pain
                 WHERE project = ?1 AND pain_id = ?2 AND pain_id IS NOT NULL AND start_ns >= ?3 AND start_ns < ?4
                 ORDER BY start_ns DESC, span_id DESC LIMIT ?5"
            ))?;
            let rows = stmt.query_map(params![rowid, pain_id, start, end, n as i64], stored_record)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Attribute sets (JSON text) of the newest `n` records of [start, end):
    /// those of the pain when `inside`, else those of every other record.
    pub fn attribute_sample(
        &self,
        rowid: i64,
        pain_id: &str,
        inside: bool,
        (start, end): (i64, i64),
        n: usize,
    ) -> Result<Vec<String>> {
        self.read(|c| {
            let sql = if inside {
                "SELECT attributes FROM records INDEXED BY records_pain
                 WHERE project = ?1 AND pain_id = ?2 AND pain_id IS NOT NULL AND start_ns >= ?3 AND start_ns < ?4
                 ORDER BY start_ns DESC, span_id DESC LIMIT ?5"
            } else {
                "SELECT attributes FROM records WHERE project = ?1 AND (pain_id IS NULL OR pain_id <> ?2) AND start_ns >= ?3 AND start_ns < ?4
                 ORDER BY start_ns DESC, span_id DESC LIMIT ?5"
            };
            let mut stmt = c.prepare_cached(sql)?;
            let rows = stmt.query_map(params![rowid, pain_id, start, end, n as i64], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Merged changes that targeted pains, oldest first.
    pub fn changes(&self, rowid: i64) -> Result<Vec<ChangeRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT pain_id, min(at_ns), min(step), trace_id, span_id FROM changes WHERE project = ?1
                 GROUP BY pain_id, trace_id, span_id ORDER BY min(at_ns), pain_id",
            )?;
            let rows = stmt.query_map(params![rowid], |r| {
                Ok(ChangeRow {
                    pain_id: r.get(0)?,
                    at_ns: r.get(1)?,
                    step: r.get(2)?,
                    trace_id: r.get(3)?,
                    span_id: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Fingerprints of the failing records with ids in [range.0, range.1).
    #[allow(clippy::type_complexity)]
    fn recluster_range(
        &self,
        rowid: i64,
        range: (i64, i64),
        rewrite: bool,
    ) -> Result<(u64, std::collections::HashSet<String>, Vec<(i64, String)>)> {
        let mut updates: Vec<(i64, String)> = Vec::new();
        let mut distinct = std::collections::HashSet::new();
        let mut n = 0u64;
        self.read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {FINGERPRINT_COLUMNS}
                 FROM records NOT INDEXED WHERE id >= ?2 AND id < ?3 AND project = ?1 AND signal IS NOT NULL AND caused_by IS NULL"
            ))?;
            let mut rows = stmt.query(params![rowid, range.0, range.1])?;
            while let Some(r) = rows.next()? {
                let text = |i: usize| -> rusqlite::Result<Option<&str>> { Ok(r.get_ref(i)?.as_str_or_null()?) };
                let id = fingerprint_row(r)?.pain_id();
                n += 1;
                if rewrite && text(10)? != Some(id.as_str()) {
                    updates.push((r.get(0)?, id.clone()));
                }
                distinct.insert(id);
            }
            Ok(())
        })?;
        Ok((n, distinct, updates))
    }

    /// Recomputes the fingerprint of every failing record of a project from
    /// its stored fields (used when the fingerprint version changes, and by
    /// the clustering benchmark). Returns (records, distinct pains).
    pub fn recluster(&self, rowid: i64, rewrite: bool) -> Result<(u64, u64)> {
        // Split the records into id ranges, one reader thread each.
        let (lo, hi): (Option<i64>, Option<i64>) = self.read(|c| {
            Ok(c.query_row("SELECT min(id), max(id) FROM records WHERE project = ?1", params![rowid], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?)
        })?;
        let (Some(lo), Some(hi)) = (lo, hi) else { return Ok((0, 0)) };
        let parts = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 4) as i64;
        let step = (hi - lo) / parts + 1;
        #[allow(clippy::type_complexity)]
        let results: Vec<Result<(u64, std::collections::HashSet<String>, Vec<(i64, String)>)>> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..parts)
                    .map(|k| {
                        let range = (lo + k * step, (lo + (k + 1) * step).min(hi + 1));
                        scope.spawn(move || self.recluster_range(rowid, range, rewrite))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err(StoreError::Commit("a recluster thread panicked".into()))))
                    .collect()
            });
        let mut n = 0;
        let mut distinct = std::collections::HashSet::new();
        let mut updates = Vec::new();
        for r in results {
            let (k, d, u) = r?;
            n += k;
            distinct.extend(d);
            updates.extend(u);
        }
        if !updates.is_empty() {
            self.write(|conn| {
                let tx = conn.transaction()?;
                {
                    let mut up = tx.prepare("UPDATE records SET pain_id = ?2, fp_version = ?3 WHERE id = ?1")?;
                    for (id, pain) in &updates {
                        up.execute(params![id, pain, fingerprint::VERSION])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })?;
        }
        Ok((n, distinct.len() as u64))
    }
}

/// One queued ingest.
struct Job {
    rowid: i64,
    records: Vec<Record>,
    changes: Vec<ChangeEvent>,
    now_s: i64,
    done: std::sync::mpsc::Sender<Result<Ingested>>,
}

fn commit_group(conn: &mut Connection, jobs: Vec<Job>) {
    let mut outcomes: Vec<Result<Ingested>> = Vec::with_capacity(jobs.len());
    let committed = (|| -> Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for job in &jobs {
            // Checks first (they see the span counts of the batches written
            // before in this transaction): a refused batch writes nothing.
            match admit(&tx, job.rowid, job.records.len(), job.now_s) {
                Ok(room) => {
                    let records = &job.records[..room];
                    let changes: Vec<ChangeEvent> = if room == job.records.len() {
                        job.changes.clone()
                    } else {
                        let kept: std::collections::HashSet<([u8; 16], [u8; 8])> =
                            records.iter().map(|r| (r.trace_id, r.span_id)).collect();
                        job.changes.iter().filter(|c| kept.contains(&(c.trace_id, c.span_id))).cloned().collect()
                    };
                    let mut out = ingest_one(&tx, job.rowid, records, &changes)?;
                    out.over_quota = (job.records.len() - room) as u64;
                    outcomes.push(Ok(out));
                }
                Err(e) => outcomes.push(Err(e)),
            }
        }
        tx.commit()?;
        Ok(())
    })();
    match committed {
        Ok(()) => {
            for (job, out) in jobs.into_iter().zip(outcomes) {
                let _ = job.done.send(out);
            }
        }
        Err(e) => {
            let text = e.to_string();
            for job in jobs {
                let _ = job.done.send(Err(StoreError::Commit(text.clone())));
            }
        }
    }
}

/// The project's expiry and span quota, read inside the ingest transaction:
/// how many of the `incoming` records fit (the first ones are kept), or why
/// none may be written.
fn admit(conn: &Connection, rowid: i64, incoming: usize, now_s: i64) -> Result<usize> {
    let (public_id, quota, used, expires_at): (String, i64, i64, Option<i64>) = conn
        .prepare_cached("SELECT public_id, quota_spans, span_count, expires_at FROM projects WHERE id = ?1")?
        .query_row(params![rowid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?
        .ok_or_else(|| StoreError::NoProject(rowid.to_string()))?;
    if expires_at.is_some_and(|e| e <= now_s) {
        return Err(StoreError::Expired(public_id));
    }
    let room = quota.saturating_sub(used).max(0) as usize;
    if room == 0 && incoming > 0 {
        return Err(StoreError::QuotaExceeded { project: public_id, quota, used, incoming });
    }
    Ok(room.min(incoming))
}

/// Links failures to their causes across batches (see
/// [`crate::loopkit::normalise::link_causes`], which does it within one):
/// a failing parent already stored is demoted to its new failing child's
/// cause (and its pain's total lowered), and a failing parent arriving after
/// its failing child is stored demoted.
fn link_stored_causes(conn: &Connection, rowid: i64, records: &[Record]) -> Result<Vec<Option<[u8; 8]>>> {
    let mut parent_of = conn.prepare_cached(
        "SELECT id, pain_id FROM records
         WHERE project = ?1 AND span_id = ?2 AND trace_id = ?3 AND signal IS NOT NULL
           AND signal IN ('error', 'exception', 'http_5xx') AND caused_by IS NULL AND pain_id IS NOT NULL",
    )?;
    let mut demote = conn.prepare_cached("UPDATE records SET pain_id = NULL, caused_by = ?2 WHERE id = ?1")?;
    let mut lower =
        conn.prepare_cached("UPDATE pains SET total = max(total - 1, 0) WHERE project = ?1 AND pain_id = ?2")?;
    let mut child = conn.prepare_cached(
        "SELECT span_id FROM records WHERE project = ?1 AND parent_span_id = ?2 AND trace_id = ?3 AND signal IS NOT NULL
           AND signal IN ('error', 'exception', 'http_5xx') LIMIT 1",
    )?;
    let mut causes = Vec::with_capacity(records.len());
    for r in records {
        if !crate::loopkit::normalise::is_causal(r.signal) {
            causes.push(None);
            continue;
        }
        if let Some(parent) = r.parent_span_id {
            let parents: Vec<(i64, String)> = parent_of
                .query_map(params![rowid, &parent[..], &r.trace_id[..]], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (id, pain) in parents {
                demote.execute(params![id, &r.span_id[..]])?;
                lower.execute(params![rowid, pain])?;
            }
        }
        if r.caused_by.is_some() {
            causes.push(r.caused_by);
            continue;
        }
        let found: Option<Vec<u8>> =
            child.query_row(params![rowid, &r.span_id[..], &r.trace_id[..]], |row| row.get(0)).optional()?;
        causes.push(found.and_then(|c| <[u8; 8]>::try_from(c.as_slice()).ok()));
    }
    Ok(causes)
}

fn ingest_one(conn: &Connection, rowid: i64, records: &[Record], changes: &[ChangeEvent]) -> Result<Ingested> {
    let causes = link_stored_causes(conn, rowid, records)?;
    let mut out = Ingested::default();
    let mut pains: HashMap<&str, (&Record, i64, i64, i64)> = HashMap::new();
    {
        let mut insert = conn.prepare_cached(
            "INSERT OR IGNORE INTO records (project, trace_id, span_id, parent_span_id, service, name, operation, kind,
                 status_code, status_message, start_ns, end_ns, http_status, signal, pain_id, fp_version, exc_type,
                 exc_message, exc_stack, attributes, caused_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
        )?;
        for (r, cause) in records.iter().zip(&causes) {
            let pain_id = if cause.is_some() { None } else { r.pain.as_ref().map(|p| p.id.as_str()) };
            let n = insert.execute(params![
                rowid,
                &r.trace_id[..],
                &r.span_id[..],
                r.parent_span_id.as_ref().map(|p| &p[..]),
                r.service,
                r.name,
                r.operation,
                r.kind,
                r.status_code,
                r.status_message,
                r.start_ns,
                r.end_ns,
                r.http_status,
                r.signal,
                pain_id,
                pain_id.map(|_| fingerprint::VERSION),
                r.exception.as_ref().map(|e| e.r#type.as_str()),
                r.exception.as_ref().map(|e| e.message.as_str()),
                r.exception.as_ref().map(|e| e.stacktrace.as_str()),
                r.attributes,
                cause.as_ref().map(|c| &c[..]),
            ])?;
            if n == 0 {
                out.duplicates += 1;
                continue;
            }
            out.inserted += 1;
            if let (Some(id), Some(_)) = (pain_id, &r.pain) {
                let e = pains.entry(id).or_insert((r, r.start_ns, r.start_ns, 0));
                e.1 = e.1.min(r.start_ns);
                e.2 = e.2.max(r.start_ns);
                e.3 += 1;
            }
        }
    }
    {
        let mut upsert = conn.prepare_cached(
                "INSERT INTO pains (project, pain_id, fp_version, signal, title, components, first_seen_ns, last_seen_ns, total)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (project, pain_id) DO UPDATE SET
                    first_seen_ns = min(first_seen_ns, excluded.first_seen_ns),
                    last_seen_ns = max(last_seen_ns, excluded.last_seen_ns),
                    total = total + excluded.total",
            )?;
        let mut ids: Vec<&&str> = pains.keys().collect();
        ids.sort();
        for id in ids {
            let (r, first, last, n) = pains[*id];
            let Some(p) = &r.pain else { continue };
            upsert.execute(params![
                rowid,
                p.id,
                fingerprint::VERSION,
                r.signal.unwrap_or("error"),
                p.title,
                components_json(&p.components),
                first,
                last,
                n
            ])?;
        }
    }
    {
        let mut change = conn.prepare_cached(
                "INSERT OR IGNORE INTO changes (project, pain_id, at_ns, trace_id, span_id, step) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
        for c in changes {
            out.changes +=
                change.execute(params![rowid, c.pain_id, c.at_ns, &c.trace_id[..], &c.span_id[..], c.step])? as u64;
        }
    }
    conn.execute(
        "UPDATE projects SET span_count = span_count + ?2 WHERE id = ?1",
        params![rowid, out.inserted as i64],
    )?;
    Ok(out)
}

/// Copies the WAL back into the database every 200 ms (PASSIVE: never
/// blocks the writer or readers), so commits do not pay for checkpoints.
struct Checkpointer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(conn: Connection) -> Checkpointer {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("loopkit-checkpoint".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                }
                let _ = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)");
            })
            .ok();
        Checkpointer { stop, thread }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn open_conn(path: &Path, sync: Synchronous) -> Result<Connection> {
    let open_err = |source| StoreError::Open { path: path.to_path_buf(), source };
    let conn = Connection::open(path).map_err(open_err)?;
    let sync = match sync {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16000;"
    ))
    .map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// The columns [`fingerprint_row`] reads, in its order (`id` first).
const FINGERPRINT_COLUMNS: &str = "id, signal, service, operation, exc_type, exc_message, exc_stack, status_message, \
     http_status, CASE WHEN signal = 'eval_fail' THEN attributes END, pain_id";

/// The fingerprint of a stored failing record, from the columns of
/// [`FINGERPRINT_COLUMNS`]: the same inputs the ingest gave it.
fn fingerprint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Fingerprint> {
    let text = |i: usize| -> rusqlite::Result<Option<&str>> { Ok(r.get_ref(i)?.as_str_or_null()?) };
    let eval_name = text(9)?
        .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
        .and_then(|v| v.get("eval.name").and_then(|v| v.as_str().map(str::to_string)));
    Ok(Fingerprint::of(&FingerprintInput {
        signal: text(1)?.unwrap_or(""),
        service: text(2)?.unwrap_or(""),
        operation: text(3)?.unwrap_or(""),
        exception_type: text(4)?,
        exception_message: text(5)?,
        stacktrace: text(6)?,
        status_message: text(7)?,
        http_status: r.get(8)?,
        eval_name: eval_name.as_deref(),
    }))
}

/// Regroups the stored records when the fingerprint version changed since
/// the database was last grouped (`meta.fingerprint`), once, at open:
///
/// 1. every failing record that counts as a pain of its own (not one
///    `caused_by` a child) is fingerprinted again from its stored fields,
///    [`REGROUP_BATCH`] records per transaction, so memory and lock time
///    are bounded whatever the size of the database;
/// 2. each project's pains are rebuilt from its records (counts, first and
///    last seen) with the new ids, titles and components;
/// 3. a merged change that targeted an old pain id now names the new one,
///    when all of the old pain's records went to one new pain (a pain that
///    split in two cannot say which half the change was for: it keeps the
///    old id and measures as `unmeasured`);
/// 4. `meta.fingerprint` is set last: a crash before it means the next open
///    regroups again, which is idempotent.
fn regroup(conn: &mut Connection) -> Result<Option<Regrouped>> {
    let from: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = 'fingerprint'", [], |r| r.get(0)).optional()?;
    if from.as_deref() == Some(fingerprint::VERSION) {
        return Ok(None);
    }
    let mut out = Regrouped { from, to: fingerprint::VERSION, ..Regrouped::default() };
    let projects: Vec<i64> = {
        let mut stmt = conn.prepare("SELECT id FROM projects ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for project in projects {
        // Old pain id → the new ids its records went to; new id → what it is.
        let mut moved_to: HashMap<String, std::collections::BTreeSet<String>> = HashMap::new();
        let mut described: HashMap<String, (String, String, String)> = HashMap::new();
        let mut after = 0i64;
        loop {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let batch: Vec<(i64, Option<String>, Fingerprint, String)> = {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT {FINGERPRINT_COLUMNS}, signal FROM records
                     WHERE project = ?1 AND id > ?2 AND signal IS NOT NULL AND caused_by IS NULL ORDER BY id LIMIT ?3"
                ))?;
                let rows = stmt.query_map(params![project, after, REGROUP_BATCH as i64], |r| {
                    Ok((r.get(0)?, r.get(10)?, fingerprint_row(r)?, r.get(11)?))
                })?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let Some(last) = batch.last().map(|b| b.0) else { break };
            {
                let mut update = tx.prepare_cached("UPDATE records SET pain_id = ?2, fp_version = ?3 WHERE id = ?1")?;
                for (id, old, fp, signal) in &batch {
                    let new = fp.pain_id();
                    out.records += 1;
                    if old.as_deref() != Some(new.as_str()) {
                        out.moved += 1;
                    }
                    update.execute(params![id, new, fingerprint::VERSION])?;
                    if let Some(old) = old {
                        moved_to.entry(old.clone()).or_default().insert(new.clone());
                    }
                    described
                        .entry(new)
                        .or_insert_with(|| (signal.clone(), fp.title(), components_json(&fp.components)));
                }
            }
            tx.commit()?;
            after = last;
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM pains WHERE project = ?1", params![project])?;
        {
            let mut counts = tx.prepare_cached(
                "SELECT pain_id, count(*), min(start_ns), max(start_ns) FROM records INDEXED BY records_pain
                 WHERE project = ?1 AND pain_id IS NOT NULL GROUP BY pain_id",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO pains (project, pain_id, fp_version, signal, title, components, first_seen_ns, last_seen_ns, total)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            let rows: Vec<(String, i64, i64, i64)> = counts
                .query_map(params![project], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (pain, total, first, last) in rows {
                let Some((signal, title, components)) = described.get(&pain) else { continue };
                insert.execute(params![
                    project,
                    pain,
                    fingerprint::VERSION,
                    signal,
                    title,
                    components,
                    first,
                    last,
                    total
                ])?;
                out.pains += 1;
            }
        }
        {
            let mut carry =
                tx.prepare_cached("UPDATE OR IGNORE changes SET pain_id = ?3 WHERE project = ?1 AND pain_id = ?2")?;
            for (old, news) in &moved_to {
                if let (1, Some(new)) = (news.len(), news.first()) {
                    if new != old {
                        out.changes += carry.execute(params![project, old, new])? as u64;
                    }
                }
            }
        }
        tx.commit()?;
    }
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('fingerprint', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![fingerprint::VERSION],
    )?;
    Ok(Some(out))
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

fn project_by(c: &Connection, cond: &str, p: impl rusqlite::Params) -> Result<Option<Project>> {
    Ok(c
        .query_row(
            &format!(
                "SELECT id, public_id, name, operator, provisioned, tier, quota_spans, span_count, expires_at, key_generation,
                 created_at, graduated_at FROM projects WHERE {cond}"
            ),
            p,
            |r| {
                Ok(Project {
                    rowid: r.get(0)?,
                    public_id: r.get(1)?,
                    name: r.get(2)?,
                    operator: r.get(3)?,
                    provisioned: r.get(4)?,
                    tier: r.get(5)?,
                    quota_spans: r.get(6)?,
                    span_count: r.get(7)?,
                    expires_at: r.get(8)?,
                    key_generation: r.get(9)?,
                    created_at: r.get(10)?,
                    graduated_at: r.get(11)?,
                })
            },
        )
        .optional()?)
}

fn stored_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRecord> {
    Ok(StoredRecord {
        id: r.get(0)?,
        trace_id: r.get(1)?,
        span_id: r.get(2)?,
        parent_span_id: r.get(3)?,
        service: r.get(4)?,
        name: r.get(5)?,
        operation: r.get(6)?,
        kind: r.get(7)?,
        status_code: r.get(8)?,
        status_message: r.get(9)?,
        start_ns: r.get(10)?,
        end_ns: r.get(11)?,
        http_status: r.get(12)?,
        signal: r.get(13)?,
        pain_id: r.get(14)?,
        exc_type: r.get(15)?,
        exc_message: r.get(16)?,
        exc_stack: r.get(17)?,
        attributes: r.get(18)?,
        caused_by: r.get(19)?,
    })
}

fn components_json(components: &[(&'static str, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> =
        components.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone()))).collect();
    serde_json::Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loopkit::normalise::{SlowRules, normalise};

    fn records(seed: u8, n: usize) -> Vec<Record> {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
        let spans = (0..n)
            .map(|i| Span {
                trace_id: vec![seed; 16],
                span_id: vec![seed, i as u8 + 1, 0, 0, 0, 0, 0, 1],
                name: "x".into(),
                ..Default::default()
            })
            .collect();
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }],
        };
        normalise(&req, &SlowRules::default(), 1).records
    }

    #[test]
    fn recluster_restores_pain_ids_in_parallel_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("x.db"), Synchronous::Normal).unwrap();
        let p = store
            .create_project(&NewProject {
                public_id: "p",
                name: "p",
                operator: "",
                provisioned: false,
                tier: "permanent",
                quota_spans: 1_000,
                expires_at: None,
                keys: &[],
                now: 0,
            })
            .unwrap();
        let mut recs = records(1, 40);
        for (i, r) in recs.iter_mut().enumerate() {
            r.status_code = 2;
            r.signal = Some("error");
            let fp = Fingerprint::of(&FingerprintInput {
                signal: "error",
                service: &r.service,
                operation: &r.operation,
                status_message: Some(if i % 2 == 0 { "disk 1 full" } else { "disk 22 full" }),
                ..Default::default()
            });
            r.status_message = if i % 2 == 0 { "disk 1 full".into() } else { "disk 22 full".into() };
            r.pain = Some(crate::loopkit::normalise::PainRef {
                id: fp.pain_id(),
                title: fp.title(),
                components: fp.components,
            });
        }
        let want = recs[0].pain.as_ref().unwrap().id.clone();
        store.ingest(p.rowid, recs, Vec::new(), 0).unwrap();
        store.write(|c| Ok(c.execute("UPDATE records SET pain_id = 'pn_stale' WHERE id % 3 = 0", [])?)).unwrap();
        assert_eq!(store.recluster(p.rowid, true).unwrap(), (40, 1));
        let counts = store.pain_counts(p.rowid, (0, i64::MAX)).unwrap();
        assert_eq!(counts.len(), 1);
        assert_eq!((counts[0].pain_id.as_str(), counts[0].count), (want.as_str(), 40));
    }

    #[test]
    fn records_grouped_under_an_older_fingerprint_are_regrouped_once_at_open() {
        use crate::loopkit::normalise::tests::{exception_event, request, span};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let store = Store::open(&path, Synchronous::Normal).unwrap();
        assert_eq!(store.regrouped().map(|r| r.records), Some(0), "a new database is stamped at once");
        let p = store
            .create_project(&NewProject {
                public_id: "p",
                name: "p",
                operator: "",
                provisioned: false,
                tier: "permanent",
                quota_spans: 1_000,
                expires_at: None,
                keys: &[],
                now: 0,
            })
            .unwrap();
        // Five exceptions from one in-app frame at two line numbers, and a
        // healthy span: fp2 sees one pain.
        let spans = (0..6u8)
            .map(|i| {
                let mut sp = span(i + 1, "POST /cart");
                if i < 5 {
                    let line = if i % 2 == 0 { 10 } else { 11 };
                    sp.events.push(exception_event(
                        "TypeError",
                        "x is undefined",
                        &format!("TypeError: x\n    at addItem (/srv/app/src/cart.js:{line}:5)"),
                    ));
                }
                sp
            })
            .collect();
        let n = crate::loopkit::normalise::normalise(&request("shop", spans), &SlowRules::default(), 0);
        let want = n.records[0].pain.as_ref().unwrap().clone();
        store.ingest(p.rowid, n.records, Vec::new(), 0).unwrap();
        drop(store);
        // What fp1 left: the line numbers split the pain in two, a merged
        // change targeted one half, and no version stamp.
        let (old_a, old_b) = ("pn_00000000000000a1", "pn_00000000000000b2");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(&format!(
            "UPDATE records SET fp_version = 'fp1', pain_id = CASE WHEN id % 2 = 1 THEN '{old_a}' ELSE '{old_b}' END
                 WHERE pain_id IS NOT NULL;
             DELETE FROM pains;
             INSERT INTO pains VALUES ({rowid}, '{old_a}', 'fp1', 'exception', 'old a', '{{}}', 0, 0, 3),
                                      ({rowid}, '{old_b}', 'fp1', 'exception', 'old b', '{{}}', 0, 0, 2);
             INSERT INTO changes VALUES ({rowid}, '{old_a}', 5, x'01', x'02', 's1');
             DELETE FROM meta;",
            rowid = p.rowid
        ))
        .unwrap();
        drop(c);

        let store = Store::open(&path, Synchronous::Normal).unwrap();
        let r = store.regrouped().cloned().unwrap();
        assert_eq!((r.from, r.to, r.records, r.moved, r.pains, r.changes), (None, "fp2", 5, 5, 1, 1));
        let pains = store.pains(p.rowid).unwrap();
        assert_eq!(pains.keys().collect::<Vec<_>>(), vec![&want.id]);
        let row = &pains[&want.id];
        assert_eq!((row.total, row.fp_version.as_str(), row.title.as_str()), (5, "fp2", want.title.as_str()));
        assert!(row.components.contains("src/cart.js:addItem"), "{}", row.components);
        assert_eq!(store.pain_count(p.rowid, &want.id, (0, i64::MAX)).unwrap(), 5);
        let changes = store.changes(p.rowid).unwrap();
        assert_eq!(changes[0].pain_id, want.id, "the change follows its pain to the new id");
        drop(store);
        let store = Store::open(&path, Synchronous::Normal).unwrap();
        assert_eq!(store.regrouped(), None, "once: the next open has nothing to do");
    }

    #[test]
    fn a_regroup_works_in_bounded_batches() {
        // More failing records than one batch: every one is regrouped.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let store = Store::open(&path, Synchronous::Normal).unwrap();
        let p = store
            .create_project(&NewProject {
                public_id: "p",
                name: "p",
                operator: "",
                provisioned: false,
                tier: "permanent",
                quota_spans: 100_000,
                expires_at: None,
                keys: &[],
                now: 0,
            })
            .unwrap();
        let total = REGROUP_BATCH * 2 + 7;
        for chunk in 0..3u8 {
            let mut recs = records(chunk + 1, 0);
            for i in 0..(total / 3 + 1) {
                let mut r = records(chunk + 1, 1).remove(0);
                r.span_id = [chunk, (i >> 8) as u8, i as u8, 0, 0, 0, 0, 1];
                r.start_ns = i as i64;
                r.status_code = 2;
                r.signal = Some("error");
                r.status_message = format!("disk {i} full");
                let fp = Fingerprint::of(&FingerprintInput {
                    signal: "error",
                    service: &r.service,
                    operation: &r.operation,
                    status_message: Some(&r.status_message),
                    ..Default::default()
                });
                r.pain = Some(crate::loopkit::normalise::PainRef {
                    id: fp.pain_id(),
                    title: fp.title(),
                    components: fp.components,
                });
                recs.push(r);
            }
            store.ingest(p.rowid, recs, Vec::new(), 0).unwrap();
        }
        drop(store);
        let c = Connection::open(&path).unwrap();
        c.execute_batch("UPDATE records SET pain_id = 'pn_0000000000000001', fp_version = 'fp1'; DELETE FROM meta;")
            .unwrap();
        drop(c);
        let store = Store::open(&path, Synchronous::Normal).unwrap();
        let r = store.regrouped().unwrap();
        assert!(r.records as usize > REGROUP_BATCH * 2, "{r:?}");
        assert_eq!((r.records, r.moved, r.pains), (r.records, r.records, 1));
        let counts = store.pain_counts(p.rowid, (0, i64::MAX)).unwrap();
        assert_eq!(counts.len(), 1);
        assert_eq!(counts[0].count, r.records);
    }

    #[test]
    fn group_commit_refuses_a_batch_alone_and_commits_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Store::open(&dir.path().join("x.db"), Synchronous::Normal).unwrap());
        let mk = |id: &str, quota| {
            store
                .create_project(&NewProject {
                    public_id: id,
                    name: id,
                    operator: "",
                    provisioned: false,
                    tier: "sandbox",
                    quota_spans: quota,
                    expires_at: None,
                    keys: &[],
                    now: 0,
                })
                .unwrap()
        };
        let (small_p, big) = (mk("small", 10), mk("big", 1_000));
        let mut handles = Vec::new();
        for t in 0..8u8 {
            let store = store.clone();
            let rowid = if t % 2 == 0 { small_p.rowid } else { big.rowid };
            handles.push(std::thread::spawn(move || store.ingest(rowid, records(t + 1, 4), Vec::new(), 0)));
        }
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        // A 10-span quota admits two batches of 4, two spans of a third
        // (the rest reported over quota), and refuses the fourth whole.
        let small: Vec<_> = results.iter().step_by(2).collect();
        assert_eq!(small.iter().filter(|r| r.is_ok()).count(), 3);
        assert!(small.iter().filter_map(|r| r.as_ref().err()).all(|e| e.code() == "QUOTA_EXCEEDED"));
        let inserted: u64 = small.iter().filter_map(|r| r.as_ref().ok()).map(|o| o.inserted).sum();
        let over: u64 = small.iter().filter_map(|r| r.as_ref().ok()).map(|o| o.over_quota).sum();
        assert_eq!((inserted, over), (10, 2));
        assert!(results.iter().skip(1).step_by(2).all(|r| r.as_ref().is_ok_and(|o| o.inserted == 4)));
        assert_eq!(store.project("small").unwrap().unwrap().span_count, 10);
        assert_eq!(store.project("big").unwrap().unwrap().span_count, 16);
        assert_eq!(store.span_total(small_p.rowid, (0, i64::MAX)).unwrap(), 10);
    }

    #[test]
    fn migrations_apply_once_and_newer_schemas_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let s = Store::open(&path, Synchronous::Normal).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        drop(s);
        let s = Store::open(&path, Synchronous::Normal).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        drop(s);
        let c = Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA user_version = 99").unwrap();
        drop(c);
        let err = Store::open(&path, Synchronous::Normal).err().unwrap();
        assert_eq!(err.code(), "STORE_SCHEMA_TOO_NEW");
    }
}

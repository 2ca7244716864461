//! The step log ("Log" in the protocol; the journal in code): `logs/steps.jsonl`.
//!
//! One JSON object a line, chained by blake3 hashes (DESIGN §9; the byte
//! format is in [`line`]). This module is the only writer of the file, and
//! keeps these invariants:
//!
//! - **Append only, one entry at a time.** Each entry is one `write` of the
//!   whole line to a file opened with `O_APPEND`, then `fdatasync`. A failed
//!   fsync aborts the process instead of retrying (a retried fsync can report
//!   success after the kernel dropped the data). Appenders in one workspace
//!   are serialised by an exclusive `flock` on `.ratchet/journal.lock`, held
//!   from reading the head to writing the checkpoint, so the chain never forks.
//! - **Checkpoints apart from the log** ([`checkpoint`]): after each append,
//!   `{seq, size, head}` goes to `.ratchet/checkpoint` and to the user's state
//!   directory. Opening the journal checks the log against every checkpoint
//!   it finds: shorter or inconsistent is `LOG_ROLLBACK`, an invalid line at
//!   or before a checkpoint is `LOG_TAMPERED`. A missing checkpoint is not an
//!   error (first run, fresh state directory): the log is then verified from
//!   its first line and the checkpoint is rewritten by the next append. When
//!   `.ratchet/` is deleted but the state copy exists, the state copy still
//!   applies (and vice versa): every checkpoint found must agree with the log.
//! - **Torn tails are recovered, not ignored.** A last line past the last
//!   checkpoint that is cut short or invalid on its own (a crash mid-write) is
//!   moved to `logs/quarantine/<time>.jsonl`, the log is truncated to its last
//!   good line, and a `recovery` entry naming the quarantined file, its size
//!   and hash is appended. Anything else invalid is tampering.
//! - **Opening is cheap; verifying is thorough.** [`Journal::open`] checks the
//!   lines at the checkpoints and everything after them (DESIGN §3: "verify
//!   the log's tail"); reading entries re-checks each line on the way;
//!   [`verify`] reads every line, streaming in parallel chunks with bounded
//!   memory, and cross-checks the trailers of the step commits. The history
//!   ([`crate::history::snapshot`]) reads only the entries after its
//!   snapshot ([`Journal::raw_entries_after`], which first checks that the
//!   snapshot's entry is still where it was), so an everyday command checks
//!   the lines at the checkpoints, the snapshot's line, and the lines after
//!   them: its cost does not grow with the log.
//!
//! For the step that commits: name the head in `Ratchet-Log-Prev:
//! <head().hash_hex()>`, and this log in `Ratchet-Log: <genesis() hex>`. The
//! log is one per clone, so a clone's history holds step commits recorded
//! in other clones' logs; `verify` skips commits whose `Ratchet-Log` names
//! another log (and checks every commit that has no `Ratchet-Log`).

pub mod backup;
pub mod checkpoint;
pub mod line;
mod read;
pub mod sample;
pub mod verify;

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

pub use checkpoint::{Checkpoint, Place};
pub use line::{Kind, MAX_LINE, ZERO};
pub use read::{Entries, Entry, FromLine, RawEntry};
pub use verify::{
    BadLine, CheckpointStatus, CommitCheck, MergedStep, VerifyOptions, VerifyReport, verify, verify_at, verify_bytes,
    verify_with,
};

use crate::error::{Coded, IoContext, IoError};
use crate::record::{Body, Quarantined, RecoveryBody, TruncatedTo};
use crate::workspace::Workspace;
use read::LineReader;

/// Errors of the step log. Each names the file and, where there is one, the
/// 1-based line.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{file} line {line}: {reason}")]
    Tampered { file: String, line: u64, reason: String },
    #[error("{file} line {line}: {reason}")]
    Rollback { file: String, line: u64, reason: String, checkpoint: String },
    #[error("the checkpoint {path} is invalid: {reason}")]
    CheckpointInvalid { path: String, reason: String },
    #[error("cannot append to {file}: {reason}")]
    InvalidEntry { file: String, reason: String },
    #[error("no entry {key:?} in {file}")]
    NotFound { file: String, key: String },
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Git(#[from] crate::git::GitError),
}

impl Coded for JournalError {
    fn code(&self) -> &'static str {
        match self {
            JournalError::Tampered { .. } => "LOG_TAMPERED",
            JournalError::Rollback { .. } => "LOG_ROLLBACK",
            JournalError::CheckpointInvalid { .. } => "CHECKPOINT_INVALID",
            JournalError::InvalidEntry { .. } => "ENTRY_INVALID",
            JournalError::NotFound { .. } => "ENTRY_NOT_FOUND",
            JournalError::Io(e) => e.code(),
            JournalError::Git(e) => e.code(),
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            JournalError::Tampered { file, .. } => {
                format!(
                    "run `ratchet log verify` to see the first bad line; restore {file} from its backup with `ratchet log restore`"
                )
            }
            JournalError::Rollback { file, checkpoint, .. } => format!(
                "restore the newest copy of {file}; if you started a new log on purpose, delete {checkpoint} once `ratchet log verify` shows the log is sound"
            ),
            JournalError::CheckpointInvalid { path, .. } => {
                format!("delete {path} if `ratchet log verify` shows the log is sound; the next entry rewrites it")
            }
            JournalError::InvalidEntry { .. } => {
                "pass a body that is a JSON object without the keys v, seq, id, ts, kind, prev and hash".into()
            }
            JournalError::NotFound { .. } => {
                "run `ratchet log` to list the entries; pass a seq number (42) or an id (s42)".into()
            }
            JournalError::Io(e) => return e.hint(),
            JournalError::Git(e) => return e.hint(),
        })
    }
}

/// Where the journal keeps its files. [`JournalPaths::for_workspace`] is the
/// real layout; tests point the state directory elsewhere.
#[derive(Clone, Debug)]
pub struct JournalPaths {
    /// `logs/steps.jsonl`.
    pub log: PathBuf,
    /// How messages name the log: `logs/steps.jsonl` relative to the repository.
    pub log_label: String,
    /// `.ratchet/journal.lock`.
    pub lock: PathBuf,
    /// `logs/quarantine/`.
    pub quarantine: PathBuf,
    /// How recovery entries name the quarantine folder (home-relative).
    pub quarantine_label: String,
    /// `.ratchet/checkpoint` first, then the state copy (when a state
    /// directory can be found).
    pub checkpoints: Vec<Place>,
    /// ratchet's private directory, whose key MACs the checkpoints.
    pub private: Option<crate::private::Private>,
}

impl JournalPaths {
    /// The journal's files in `ws`, with the state copy of the checkpoint in
    /// `$XDG_STATE_HOME/ratchet/<ws.id()>/` (an absolute `XDG_STATE_HOME`;
    /// else `~/.local/state`; none when neither can be found).
    pub fn for_workspace(ws: &Workspace) -> JournalPaths {
        JournalPaths::with_state_home(ws, crate::private::state_home().as_deref())
    }

    /// The journal's files in `ws`, with the state copy under `state_home`.
    pub fn with_state_home(ws: &Workspace, state_home: Option<&Path>) -> JournalPaths {
        let mut checkpoints =
            vec![Place { path: ws.state_dir().join("checkpoint"), label: ws.rel(".ratchet/checkpoint") }];
        let private = crate::private::Private::under(state_home, ws);
        if let Some(p) = &private {
            let path = p.path("checkpoint");
            checkpoints.push(Place { label: path.display().to_string(), path });
        }
        JournalPaths {
            log: ws.steps_log(),
            log_label: ws.rel("logs/steps.jsonl"),
            lock: ws.state_dir().join("journal.lock"),
            quarantine: ws.quarantine_dir(),
            quarantine_label: "logs/quarantine".into(),
            checkpoints,
            private,
        }
    }

    /// The checkpoints' MAC key, once there is one.
    pub(crate) fn key(&self) -> Result<Option<[u8; 32]>, JournalError> {
        match &self.private {
            Some(p) if p.has_key() => p.key().map(Some).map_err(|e| JournalError::CheckpointInvalid {
                path: p.path("key").display().to_string(),
                reason: format!("the key cannot be read: {e}"),
            }),
            _ => Ok(None),
        }
    }
}

/// The last entry of the log: what the next one links to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// 0 for an empty log.
    pub seq: u64,
    /// [`ZERO`] for an empty log.
    pub hash: [u8; 32],
    /// The log's size in bytes, just after this entry.
    pub size: u64,
}

impl Head {
    pub const EMPTY: Head = Head { seq: 0, hash: ZERO, size: 0 };

    pub fn hash_hex(&self) -> String {
        line::hex(&self.hash)
    }
}

/// What the next line must link to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Link {
    pub seq: u64,
    pub hash: [u8; 32],
}

impl Link {
    /// Whether `h` is the entry right after this one; else why not.
    pub fn follows(&self, h: &line::Header<'_>) -> Result<(), String> {
        self.followed_by(h.seq, &h.prev)
    }

    /// Whether an entry with `seq` and `prev` comes right after this one.
    pub fn followed_by(&self, seq: u64, prev: &[u8; 32]) -> Result<(), String> {
        if seq != self.seq + 1 {
            return Err(format!("seq jumps: expected {}, found {seq}", self.seq + 1));
        }
        if *prev != self.hash {
            return Err(if self.seq == 0 {
                "prev of the first entry is not 64 zeros".to_string()
            } else {
                format!("prev does not link to line {}", self.seq)
            });
        }
        Ok(())
    }
}

/// The permit for entries only the journal itself writes (`recovery`).
pub struct Internal(());

/// An entry to append: its kind, an optional explicit id, and its body.
/// Outside the journal, entries are appended as typed bodies
/// ([`Journal::append`]); drafts are how the journal (and its tests) write
/// any JSON object.
#[derive(Clone, Debug)]
pub(crate) struct Draft {
    pub kind: Kind,
    /// `None` gives `s<seq>`. A later entry that continues an earlier step
    /// (a pending proposal approved later) passes the original step's id.
    pub id: Option<String>,
    pub body: Map<String, Value>,
}

impl Draft {
    /// A draft whose body is `body` serialised; it must be a JSON object
    /// without the header keys (`v`, `seq`, `id`, `ts`, `kind`, `prev`) or `hash`.
    pub(crate) fn new(kind: Kind, body: impl Serialize) -> Result<Draft, JournalError> {
        let invalid = |reason: String| JournalError::InvalidEntry { file: "logs/steps.jsonl".into(), reason };
        match serde_json::to_value(body) {
            Ok(Value::Object(body)) => Ok(Draft { kind, id: None, body }),
            Ok(other) => {
                Err(invalid(format!("the body must be a JSON object, not {}", crate::canonical::kind(&other))))
            }
            Err(e) => Err(invalid(format!("the body does not serialise to JSON: {e}"))),
        }
    }

    /// The same draft with an explicit id.
    pub(crate) fn with_id(mut self, id: impl Into<String>) -> Draft {
        self.id = Some(id.into());
        self
    }

    fn check(&self) -> Result<(), String> {
        if let Some(key) = self.body.keys().find(|k| line::RESERVED.contains(&k.as_str())) {
            return Err(format!("the body uses the reserved key {key:?}"));
        }
        if let Some(id) = &self.id {
            if !line::valid_id(id) {
                return Err(format!("{id:?} is not a valid entry id (1 to 64 of A-Z a-z 0-9 . _ : -)"));
            }
        }
        Ok(())
    }
}

/// The step log of one workspace, opened and checked.
#[derive(Debug)]
pub struct Journal {
    paths: JournalPaths,
    head: Head,
    recovered: Option<Entry>,
    warnings: Vec<String>,
}

impl Journal {
    /// Opens the journal of `ws` (see [`JournalPaths::for_workspace`]).
    pub fn open(ws: &Workspace) -> Result<Journal, JournalError> {
        Journal::open_at(JournalPaths::for_workspace(ws))
    }

    /// Opens the journal at `paths`: checks the log against its checkpoints
    /// (`LOG_ROLLBACK`, `LOG_TAMPERED`), checks every line after the last
    /// checkpoint, and recovers a torn last line.
    pub fn open_at(paths: JournalPaths) -> Result<Journal, JournalError> {
        let _lock = Lock::take(&paths.lock)?;
        let mut journal = Journal { paths, head: Head::EMPTY, recovered: None, warnings: Vec::new() };
        let cps = journal.read_checkpoints()?;
        let base = journal.check_checkpoints(&cps)?;
        journal.head = base;
        journal.catch_up()?;
        Ok(journal)
    }

    /// The last entry: what the next one will link to.
    pub fn head(&self) -> Head {
        self.head
    }

    pub fn paths(&self) -> &JournalPaths {
        &self.paths
    }

    /// The `recovery` entry appended while opening, when a torn tail was found.
    pub fn recovered(&self) -> Option<&Entry> {
        self.recovered.as_ref()
    }

    /// Problems that did not stop anything but deserve a word: a checkpoint
    /// that could not be written (the log itself is intact; the next append
    /// writes it again).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The entries up to the head, oldest first, as a stream; each line is
    /// checked again on the way.
    pub fn entries(&self) -> Result<Entries, JournalError> {
        self.read()
    }

    /// The entries up to the head, as [`Self::entries`] reads them, with each
    /// body left as JSON text for the caller to deserialize into its types.
    pub fn raw_entries(&self) -> Result<Entries<RawEntry>, JournalError> {
        self.read()
    }

    fn read<T: FromLine>(&self) -> Result<Entries<T>, JournalError> {
        let file = match File::open(&self.paths.log) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.head.size == 0 => {
                return Ok(Entries::new(empty_file()?, 0, self.paths.log_label.clone()));
            }
            Err(e) => return Err(IoError::new("open", &self.paths.log, e).into()),
        };
        Ok(Entries::new(file, self.head.size, self.paths.log_label.clone()))
    }

    /// The entries after `at`, up to the head, when `at` is an entry of this
    /// log: the line ending at byte `at.size` must be entry `at.seq` with
    /// hash `at.hash` (checked as every line is); `None` otherwise. Only the
    /// bytes after `at.size` are read, each line checked and linked as
    /// [`Self::raw_entries`] checks them, the first to `at`.
    pub fn raw_entries_after(&self, at: Head) -> Result<Option<Entries<RawEntry>>, JournalError> {
        if at.seq == 0 || at.seq > self.head.seq || at.size > self.head.size {
            return Ok(None);
        }
        let Some(raw) = line_ending_at(&self.paths.log, at.size)? else { return Ok(None) };
        match line::check(&raw) {
            Ok(c) if c.header.seq == at.seq && c.hash == at.hash => {}
            _ => return Ok(None),
        }
        let mut file = File::open(&self.paths.log).io("open", &self.paths.log)?;
        file.seek(SeekFrom::Start(at.size)).io("read", &self.paths.log)?;
        let link = Link { seq: at.seq, hash: at.hash };
        Ok(Some(Entries::after(file, at.size, self.head.size, link, self.paths.log_label.clone())))
    }

    /// The one entry `at` names, read alone: the line ending at byte
    /// `at.size`, when it is entry `at.seq` with hash `at.hash` (its own
    /// hash checked as every line's is); `None` otherwise. For a reader that
    /// kept where an entry was and needs it whole again, without reading
    /// the log up to it.
    pub fn raw_entry_at(&self, at: Head) -> Result<Option<RawEntry>, JournalError> {
        if at.seq == 0 || at.seq > self.head.seq || at.size > self.head.size {
            return Ok(None);
        }
        let Some(raw) = line_ending_at(&self.paths.log, at.size)? else { return Ok(None) };
        let Ok(c) = line::check(&raw) else { return Ok(None) };
        if c.header.seq != at.seq || c.hash != at.hash {
            return Ok(None);
        }
        Ok(RawEntry::from_checked(&raw, &c).ok().map(|e| e.ended_at(at.size)))
    }

    /// The hash of the first entry, which names this log (`None` when empty).
    pub fn genesis(&self) -> Result<Option<[u8; 32]>, JournalError> {
        Ok(self.entries()?.next().transpose()?.map(|e| e.hash))
    }

    /// Entries by `key`: a seq number (`42`) gives that entry; an id (`s42`)
    /// gives every entry with that id, plus the `amend` entries whose body
    /// field `step` names it. `ENTRY_NOT_FOUND` when nothing matches.
    pub fn find(&self, key: &str) -> Result<Vec<Entry>, JournalError> {
        let seq =
            if !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()) { key.parse::<u64>().ok() } else { None };
        let mut found = Vec::new();
        for entry in self.entries()? {
            let entry = entry?;
            let hit = match seq {
                Some(seq) => entry.seq == seq,
                None => entry.id == key || (entry.kind == Kind::Amend && entry.get_str("step") == Some(key)),
            };
            if hit {
                found.push(entry);
                if seq.is_some() {
                    break;
                }
            }
        }
        if found.is_empty() {
            return Err(JournalError::NotFound { file: self.paths.log_label.clone(), key: key.to_string() });
        }
        Ok(found)
    }

    /// Appends one entry: takes the lock, links it to the current head (also
    /// when another process appended since this journal was opened), writes
    /// it in one `write`, fsyncs it, and writes the checkpoints.
    /// Appends `body` as an entry of its kind, under `id` (`s<seq>` when
    /// `None`; a later entry of an earlier step passes that step's id).
    /// The permit is the body's: anyone may write `rails` or `intent`
    /// entries, only the step may write its own kinds.
    pub fn append<B: Body>(&mut self, id: Option<&str>, body: &B, _permit: B::Permit) -> Result<Entry, JournalError> {
        let mut draft = Draft::new(B::KIND, body)?;
        if let Some(id) = id {
            draft = draft.with_id(id);
        }
        self.append_draft(draft)
    }

    /// Whether `body` would fit in one entry of the log (its line under
    /// [`MAX_LINE`]), without writing anything: a step checks this before
    /// it commits, so that the entry describing a commit is known to fit.
    pub fn fits<B: Body>(&self, id: Option<&str>, body: &B) -> Result<(), JournalError> {
        let mut draft = Draft::new(B::KIND, body)?;
        if let Some(id) = id {
            draft = draft.with_id(id);
        }
        draft.check().map_err(|reason| self.invalid(reason))?;
        let id = draft.id.clone().unwrap_or_else(|| format!("s{}", self.head.seq + 1));
        let ts = crate::clock::stamp(crate::clock::now());
        let header = line::Header { seq: self.head.seq + 1, id: &id, ts: &ts, kind: draft.kind, prev: self.head.hash };
        let encoded = line::encode(&header, &draft.body);
        if encoded.bytes.len() > MAX_LINE {
            return Err(self.invalid(format!(
                "the entry would be {} bytes, over the {MAX_LINE}-byte limit",
                encoded.bytes.len() - 1
            )));
        }
        Ok(())
    }

    pub(crate) fn append_draft(&mut self, draft: Draft) -> Result<Entry, JournalError> {
        draft.check().map_err(|reason| self.invalid(reason))?;
        let _lock = Lock::take(&self.paths.lock)?;
        self.catch_up()?;
        self.append_locked(draft)
    }

    fn invalid(&self, reason: String) -> JournalError {
        JournalError::InvalidEntry { file: self.paths.log_label.clone(), reason }
    }

    fn append_locked(&mut self, draft: Draft) -> Result<Entry, JournalError> {
        let seq = self.head.seq + 1;
        let id = draft.id.unwrap_or_else(|| format!("s{seq}"));
        let ts = crate::clock::stamp(crate::clock::now());
        let header = line::Header { seq, id: &id, ts: &ts, kind: draft.kind, prev: self.head.hash };
        let encoded = line::encode(&header, &draft.body);
        let text = &encoded.bytes[..encoded.bytes.len() - 1];
        if encoded.bytes.len() > MAX_LINE {
            return Err(self.invalid(format!("the entry is {} bytes, over the {MAX_LINE}-byte limit", text.len())));
        }
        // The encoder and the checker must agree; a disagreement is a bug
        // that would make the log unverifiable, so it is refused here.
        let checked = line::check(text).map_err(|flaw| self.invalid(format!("it would not verify: {flaw}")))?;
        let entry = Entry::from_checked(text, &checked).map_err(|reason| self.invalid(reason))?;

        let log = &self.paths.log;
        if let Some(dir) = log.parent() {
            fs::create_dir_all(dir).io("create", dir)?;
        }
        let existed = log.exists();
        let mut file = OpenOptions::new().append(true).create(true).mode(0o644).open(log).io("open", log)?;
        // One write of the whole line: a crash leaves a prefix of it at worst.
        match file.write(&encoded.bytes) {
            Ok(n) if n == encoded.bytes.len() => {}
            Ok(n) => {
                // Disk full or a signal: undo the partial line while we hold the lock.
                let _ = file.set_len(self.head.size);
                sync_or_abort(&file, log);
                let e = std::io::Error::other(format!("short write: {n} of {} bytes", encoded.bytes.len()));
                return Err(IoError::new("append to", log, e).into());
            }
            Err(e) => return Err(IoError::new("append to", log, e).into()),
        }
        sync_or_abort(&file, log);
        if !existed {
            if let Some(dir) = log.parent() {
                let _ = checkpoint::sync_dir(dir);
            }
        }
        self.head = Head { seq, hash: encoded.hash, size: self.head.size + encoded.bytes.len() as u64 };
        self.write_checkpoints();
        Ok(entry)
    }

    fn write_checkpoints(&mut self) {
        let cp = Checkpoint { seq: self.head.seq, size: self.head.size, head: self.head.hash };
        let key = match &self.paths.private {
            Some(p) => match p.key() {
                Ok(k) => Some(k),
                Err(e) => {
                    self.warnings.push(format!("could not make the checkpoints' key in {}: {e}", p.dir().display()));
                    None
                }
            },
            None => None,
        };
        for place in &self.paths.checkpoints {
            if let Err(e) = cp.write(&place.path, key.as_ref()) {
                self.warnings.push(format!("could not write the checkpoint {}: {e}", place.label));
            }
        }
    }

    fn read_checkpoints(&self) -> Result<Vec<(Place, Checkpoint)>, JournalError> {
        let mut out = Vec::new();
        let key = self.paths.key()?;
        for place in &self.paths.checkpoints {
            match Checkpoint::read_keyed(&place.path, key.as_ref()) {
                Ok(Some(cp)) => out.push((place.clone(), cp)),
                Ok(None) => {}
                Err(reason) => return Err(JournalError::CheckpointInvalid { path: place.label.clone(), reason }),
            }
        }
        Ok(out)
    }

    /// Checks that the entry each checkpoint names ends where it says, with
    /// the hash it says; returns the furthest checkpoint as a head.
    fn check_checkpoints(&self, cps: &[(Place, Checkpoint)]) -> Result<Head, JournalError> {
        let size = file_size(&self.paths.log)?;
        let mut base = Head::EMPTY;
        for (place, cp) in cps {
            if cp.seq == 0 {
                continue;
            }
            let rollback = |reason: String| JournalError::Rollback {
                file: self.paths.log_label.clone(),
                line: cp.seq,
                reason,
                checkpoint: place.label.clone(),
            };
            if size < cp.size {
                return Err(rollback(format!(
                    "the log is {size} bytes, shorter than the {} bytes up to entry {} that {} records",
                    cp.size, cp.seq, place.label
                )));
            }
            let raw = line_ending_at(&self.paths.log, cp.size)?.ok_or_else(|| {
                rollback(format!("no entry ends at byte {}, where {} says entry {} ends", cp.size, place.label, cp.seq))
            })?;
            let checked = line::check(&raw).map_err(|flaw| JournalError::Tampered {
                file: self.paths.log_label.clone(),
                line: cp.seq,
                reason: format!("{flaw} (at or before the checkpoint {})", place.label),
            })?;
            if checked.header.seq != cp.seq || checked.hash != cp.head {
                return Err(rollback(format!(
                    "the entry ending at byte {} is seq {} with hash {}, but {} records seq {} with hash {}",
                    cp.size,
                    checked.header.seq,
                    short(&checked.hash),
                    place.label,
                    cp.seq,
                    short(&cp.head)
                )));
            }
            if cp.size > base.size {
                base = Head { seq: cp.seq, hash: cp.head, size: cp.size };
            }
        }
        Ok(base)
    }

    /// Reads and checks every line after the head, moving the head forward.
    /// Must be called with the lock held. A torn last line is recovered.
    fn catch_up(&mut self) -> Result<(), JournalError> {
        let size = file_size(&self.paths.log)?;
        if size < self.head.size {
            let checkpoint = self.paths.checkpoints.first().map(|p| p.label.clone()).unwrap_or_default();
            return Err(JournalError::Rollback {
                file: self.paths.log_label.clone(),
                line: self.head.seq,
                reason: format!("the log shrank to {size} bytes while open (it held {} bytes)", self.head.size),
                checkpoint,
            });
        }
        if size == self.head.size {
            return self.check_head_in_place();
        }
        let mut file = File::open(&self.paths.log).io("open", &self.paths.log)?;
        file.seek(SeekFrom::Start(self.head.size)).io("read", &self.paths.log)?;
        let mut reader = LineReader::new(&file, self.head.size, size);
        let mut buf = Vec::new();
        let mut link = Link { seq: self.head.seq, hash: self.head.hash };
        let mut good = self.head.size;
        while let Some(seg) = reader.next_line(&mut buf).io("read", &self.paths.log)? {
            let last = reader.offset() == size;
            let line_no = link.seq + 1;
            let flaw = if !seg.newline { Some(line::Flaw::NoNewline.to_string()) } else { None };
            let checked = match flaw {
                Some(f) => Err(f),
                None => line::check(&buf).map_err(|f| f.to_string()),
            };
            match checked {
                Ok(c) => {
                    link.follows(&c.header).map_err(|reason| self.tampered(line_no, reason))?;
                    link = Link { seq: c.header.seq, hash: c.hash };
                    good = reader.offset();
                }
                Err(reason) if last => {
                    drop(reader);
                    self.head = Head { seq: link.seq, hash: link.hash, size: good };
                    return self.recover(good, size, line_no, reason);
                }
                Err(reason) => return Err(self.tampered(line_no, reason)),
            }
        }
        self.head = Head { seq: link.seq, hash: link.hash, size: good };
        Ok(())
    }

    /// With no new bytes, the file must still end with the head's line.
    fn check_head_in_place(&self) -> Result<(), JournalError> {
        if self.head.seq == 0 {
            return Ok(());
        }
        let file = File::open(&self.paths.log).io("open", &self.paths.log)?;
        let mut tail = [0u8; line::SUFFIX_LEN + 1];
        let at = self.head.size.saturating_sub(tail.len() as u64);
        file.read_exact_at(&mut tail, at).io("read", &self.paths.log)?;
        if &tail[9..73] != line::hex(&self.head.hash).as_bytes() || tail[tail.len() - 1] != b'\n' {
            return Err(JournalError::Rollback {
                file: self.paths.log_label.clone(),
                line: self.head.seq,
                reason: format!(
                    "the last entry no longer has hash {} (the log was replaced while open)",
                    short(&self.head.hash)
                ),
                checkpoint: self.paths.checkpoints.first().map(|p| p.label.clone()).unwrap_or_default(),
            });
        }
        Ok(())
    }

    fn tampered(&self, line: u64, reason: String) -> JournalError {
        JournalError::Tampered { file: self.paths.log_label.clone(), line, reason }
    }

    /// Moves the torn bytes `[from, to)` to the quarantine, truncates the log
    /// to `from`, and appends a `recovery` entry.
    fn recover(&mut self, from: u64, to: u64, line_no: u64, reason: String) -> Result<(), JournalError> {
        let log = self.paths.log.clone();
        let file = OpenOptions::new().read(true).write(true).open(&log).io("open", &log)?;
        let mut torn = vec![0u8; (to - from) as usize];
        file.read_exact_at(&mut torn, from).io("read", &log)?;
        let dir = &self.paths.quarantine;
        fs::create_dir_all(dir).io("create", dir)?;
        let stamp = crate::clock::now().format("%Y%m%dT%H%M%SZ").to_string();
        let (mut q, name) = (0..1000)
            .find_map(|n| {
                let name = if n == 0 { format!("{stamp}.jsonl") } else { format!("{stamp}-{n}.jsonl") };
                OpenOptions::new().write(true).create_new(true).open(dir.join(&name)).ok().map(|f| (f, name))
            })
            .ok_or_else(|| {
                IoError::new("create a file in", dir, std::io::Error::other("too many quarantined files"))
            })?;
        q.write_all(&torn).io("write", dir.join(&name))?;
        q.sync_all().io("sync", dir.join(&name))?;
        checkpoint::sync_dir(dir).io("sync", dir)?;
        file.set_len(from).io("truncate", &log)?;
        sync_or_abort(&file, &log);
        drop(file);
        let body = RecoveryBody {
            reason: format!("torn last line {line_no}: {reason}"),
            quarantine: Quarantined {
                path: format!("{}/{name}", self.paths.quarantine_label),
                bytes: torn.len() as u64,
                hash: blake3::hash(&torn).to_hex().to_string(),
            },
            truncated_to: TruncatedTo { seq: self.head.seq, size: from },
        };
        let draft = Draft::new(Kind::Recovery, &body)?;
        let entry = self.append_locked(draft)?;
        self.recovered = Some(entry);
        Ok(())
    }
}

/// The first 12 hex digits of a hash, for messages.
/// Whether `ws` has a step log yet (a fresh workspace or clone has none).
/// Reads nothing and writes nothing.
/// The log of `ws` read without the journal's lock and without writing
/// anything (no recovery of a torn tail, no checkpoint): the complete lines
/// up to the last newline, each checked and linked as [`Journal::entries`]
/// checks them. For readers beside the loop, such as `ratchet serve`'s loop
/// page, which must never change the log.
pub fn read_only(ws: &Workspace) -> Result<Entries<RawEntry>, JournalError> {
    use std::io::Read;
    let path = ws.steps_log();
    let label = ws.rel("logs/steps.jsonl");
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Entries::new(empty_file()?, 0, label)),
        Err(e) => return Err(IoError::new("open", &path, e).into()),
    };
    let len = file.metadata().io("read", &path)?.len();
    // The end of the last complete line: a line being appended is not read.
    let tail = len.min(MAX_LINE as u64 + 1);
    file.seek(SeekFrom::Start(len - tail)).io("read", &path)?;
    let mut buf = Vec::with_capacity(tail as usize);
    (&mut file).take(tail).read_to_end(&mut buf).io("read", &path)?;
    let end = match buf.iter().rposition(|&b| b == b'\n') {
        Some(i) => len - tail + i as u64 + 1,
        None => 0,
    };
    file.seek(SeekFrom::Start(0)).io("read", &path)?;
    Ok(Entries::new(file, end, label))
}

pub fn exists(ws: &Workspace) -> bool {
    ws.steps_log().exists()
}

pub fn short(hash: &[u8; 32]) -> String {
    line::hex(hash)[..12].to_string()
}

/// fsyncs the log, or aborts: a failed fsync may have dropped the data, and
/// retrying could report success anyway, so nothing after it can be trusted.
fn sync_or_abort(file: &File, path: &Path) {
    if let Err(e) = file.sync_data() {
        eprintln!(
            "ratchet: fatal: fsync of {} failed: {e}. Aborting rather than retrying; run `ratchet log verify` once the disk is healthy.",
            path.display()
        );
        std::process::abort();
    }
}

fn file_size(path: &Path) -> Result<u64, JournalError> {
    match fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(IoError::new("read", path, e).into()),
    }
}

fn empty_file() -> Result<File, JournalError> {
    File::open("/dev/null").io("open", "/dev/null").map_err(Into::into)
}

/// The line (without its newline) whose newline is the byte before `end`;
/// `None` when that byte is not a newline or the line is too long.
fn line_ending_at(path: &Path, end: u64) -> Result<Option<Vec<u8>>, JournalError> {
    if end == 0 {
        return Ok(None);
    }
    let file = File::open(path).io("open", path)?;
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, end - 1).io("read", path)?;
    if last[0] != b'\n' {
        return Ok(None);
    }
    let stop = end - 1;
    let mut start = stop;
    let mut block = vec![0u8; 64 * 1024];
    while start > 0 && stop - start <= MAX_LINE as u64 {
        let from = start.saturating_sub(block.len() as u64);
        let chunk = &mut block[..(start - from) as usize];
        file.read_exact_at(chunk, from).io("read", path)?;
        if let Some(i) = memchr::memrchr(b'\n', chunk) {
            start = from + i as u64 + 1;
            break;
        }
        start = from;
    }
    if stop - start > MAX_LINE as u64 {
        return Ok(None);
    }
    let mut raw = vec![0u8; (stop - start) as usize];
    file.read_exact_at(&mut raw, start).io("read", path)?;
    Ok(Some(raw))
}

/// An exclusive `flock` on the journal's lock file, released on drop.
struct Lock(#[allow(dead_code)] File);

impl Lock {
    fn take(path: &Path) -> Result<Lock, JournalError> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).io("create", dir)?;
        }
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).io("open", path)?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| IoError::new("lock", path, e.into()))?;
        Ok(Lock(file))
    }
}

#[cfg(test)]
mod tests;

//! Backing the step log up into git, and restoring it from there.
//!
//! The log is local state (never committed: a committed log could never
//! record its own commit), so a lost clone loses it. `ratchet log backup`
//! stores the whole log as one commit on a ref of its own, [`REF`]
//! (`refs/ratchet/log`), whose tree holds `steps.jsonl`; each backup's
//! parent is the one before. HEAD, the index and the work tree are never
//! touched, and `git push origin refs/ratchet/log` carries it like any ref
//! (`git fetch origin refs/ratchet/log:refs/ratchet/log` brings it back).
//!
//! A backup is as hostile as any file someone else could have written: a
//! ref can be pushed by anyone with access to the remote. So both ways,
//! every line is checked ([`chain`]: each line's own hash and header, each
//! link to the line before) and the two logs must agree on everything they
//! share:
//!
//! | act | refused when |
//! |---|---|
//! | backup | the local log does not verify; the last backup is not a prefix of the log (`BACKUP_DIVERGED`) |
//! | restore | the backup does not verify (`BACKUP_TAMPERED`); the local log verifies and is not a prefix of the backup (`BACKUP_DIVERGED`: restoring would lose entries) |
//! | verify against | either does not verify; the backup is not a prefix of the log |
//!
//! Restoring writes the log in one atomic rename; a local log that does not
//! verify is moved to `logs/quarantine/` first, never deleted. The
//! checkpoints are not touched: a backup older than a checkpoint is a
//! rollback, and every loop command says so (`LOG_ROLLBACK`).

use crate::error::Coded;
use crate::git::{GitError, Identity, Repo};
use crate::workspace::Workspace;

use super::line;
use super::{Link, ZERO};

/// The ref a backup is kept on.
pub const REF: &str = "refs/ratchet/log";
/// The file in a backup commit's tree.
pub const FILE: &str = "steps.jsonl";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{what} line {line}: {reason}")]
    Tampered { what: String, line: u64, reason: String },
    #[error("{what}")]
    Diverged { what: String },
    #[error("there is no backup at {reference}")]
    NoBackup { reference: String },
    #[error("{reference} holds no {FILE}")]
    NotABackup { reference: String },
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: String, source: std::io::Error },
    #[error(transparent)]
    Git(#[from] GitError),
}

impl Coded for BackupError {
    fn code(&self) -> &'static str {
        match self {
            BackupError::Tampered { what, .. } if what.starts_with("the backup") => "BACKUP_TAMPERED",
            BackupError::Tampered { .. } => "LOG_TAMPERED",
            BackupError::Diverged { .. } => "BACKUP_DIVERGED",
            BackupError::NoBackup { .. } => "NO_BACKUP",
            BackupError::NotABackup { .. } => "BACKUP_TAMPERED",
            BackupError::Io { .. } => "IO_ERROR",
            BackupError::Git(e) => e.code(),
        }
    }
    fn hint(&self) -> Option<String> {
        Some(match self {
            BackupError::Tampered { what, .. } if what.starts_with("the backup") => {
                "do not restore from it; fetch a backup you trust (`git fetch origin refs/ratchet/log:refs/ratchet/log`) or name another with --from".into()
            }
            BackupError::Tampered { .. } => "run `ratchet log verify`; `ratchet log restore` puts back the last backup".into(),
            BackupError::Diverged { .. } => "the log and the backup disagree: keep both, and compare them with `ratchet log verify --against REF`".into(),
            BackupError::NoBackup { .. } | BackupError::NotABackup { .. } => {
                "run `ratchet log backup` first, or fetch one: `git fetch origin refs/ratchet/log:refs/ratchet/log`".into()
            }
            BackupError::Io { .. } => "check the permissions of logs/".into(),
            BackupError::Git(e) => return e.hint(),
        })
    }
}

/// Checks `bytes` as a whole log: every line on its own and linked to the
/// one before, from the genesis. Returns the number of entries.
pub fn chain(bytes: &[u8], what: &str) -> Result<u64, BackupError> {
    let bad = |line: u64, reason: String| BackupError::Tampered { what: what.to_string(), line, reason };
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        return Err(bad(bytes.split(|b| *b == b'\n').count() as u64, "the last line is torn (no line end)".into()));
    }
    let mut link = Link { seq: 0, hash: ZERO };
    for (i, l) in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
        let n = i as u64 + 1;
        let checked = line::check(l).map_err(|f| bad(n, f.to_string()))?;
        link.follows(&checked.header).map_err(|r| bad(n, r))?;
        link = Link { seq: checked.header.seq, hash: checked.hash };
    }
    Ok(link.seq)
}

fn read_log(ws: &Workspace) -> Result<Vec<u8>, BackupError> {
    match std::fs::read(ws.steps_log()) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(BackupError::Io { action: "read", path: ws.rel("logs/steps.jsonl"), source: e }),
    }
}

fn read_backup(repo: &Repo, reference: &str) -> Result<(String, Vec<u8>), BackupError> {
    match repo.ref_file(reference, FILE)? {
        None => Err(BackupError::NoBackup { reference: reference.to_string() }),
        Some((_, None)) => Err(BackupError::NotABackup { reference: reference.to_string() }),
        Some((commit, Some(bytes))) => Ok((commit, bytes)),
    }
}

/// What a backup did.
#[derive(Debug, serde::Serialize)]
pub struct BackedUp {
    pub reference: String,
    /// `None` when the backup already held exactly this log.
    pub commit: Option<String>,
    pub entries: u64,
    /// Entries the previous backup did not hold.
    pub new: u64,
}

/// Backs the verified log up on [`REF`].
pub fn backup(ws: &Workspace, who: &Identity, at: chrono::DateTime<chrono::Utc>) -> Result<BackedUp, BackupError> {
    let repo = ws.repo().map_err(BackupError::Git)?;
    let log = read_log(ws)?;
    let entries = chain(&log, &format!("the log {}", ws.rel("logs/steps.jsonl")))?;
    let previous = match read_backup(&repo, REF) {
        Ok((commit, bytes)) => {
            let had = chain(&bytes, &format!("the backup at {REF}"))?;
            if !log.starts_with(&bytes) {
                return Err(BackupError::Diverged {
                    what: format!(
                        "the backup at {REF} ({had} entries) is not the start of the log; the log was rewritten, or the backup is another clone's"
                    ),
                });
            }
            if bytes.len() == log.len() {
                return Ok(BackedUp { reference: REF.into(), commit: None, entries, new: 0 });
            }
            Some((commit, had))
        }
        Err(BackupError::NoBackup { .. }) => None,
        Err(e) => return Err(e),
    };
    let message = format!("ratchet log backup: {entries} entries\n");
    let parent = previous.as_ref().map(|(c, _)| c.as_str());
    let commit = repo.commit_to_ref(REF, FILE, &log, &message, who, at, parent)?;
    Ok(BackedUp { reference: REF.into(), commit: Some(commit), entries, new: entries - previous.map_or(0, |(_, n)| n) })
}

/// What a restore did.
#[derive(Debug, serde::Serialize)]
pub struct Restored {
    pub reference: String,
    pub commit: String,
    pub entries: u64,
    /// Entries the local log did not hold.
    pub added: u64,
    /// Where a local log that did not verify was moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<String>,
}

/// Restores the log from the backup at `reference`.
pub fn restore(ws: &Workspace, reference: &str) -> Result<Restored, BackupError> {
    let repo = ws.repo().map_err(BackupError::Git)?;
    let (commit, bytes) = read_backup(&repo, reference)?;
    let entries = chain(&bytes, &format!("the backup at {reference}"))?;
    let log = read_log(ws)?;
    let label = ws.rel("logs/steps.jsonl");
    let mut quarantined = None;
    let added = match chain(&log, &format!("the log {label}")) {
        Ok(had) => {
            if !bytes.starts_with(&log) {
                return Err(BackupError::Diverged {
                    what: format!(
                        "the log ({had} entries) is not the start of the backup at {reference} ({entries} entries): restoring would lose entries"
                    ),
                });
            }
            entries - had
        }
        Err(_) => {
            // Damaged: kept aside, never deleted.
            let dir = ws.quarantine_dir();
            let name = format!("steps.jsonl.before-restore-{}", crate::clock::now().format("%Y%m%dT%H%M%SZ"));
            crate::fsutil::write_file(&dir.join(&name), &log, crate::fsutil::Durability::Full).map_err(|e| {
                BackupError::Io { action: "write", path: ws.rel(&format!("logs/quarantine/{name}")), source: e }
            })?;
            quarantined = Some(ws.rel(&format!("logs/quarantine/{name}")));
            entries
        }
    };
    crate::fsutil::write_file(&ws.steps_log(), &bytes, crate::fsutil::Durability::Full)
        .map_err(|e| BackupError::Io { action: "write", path: label, source: e })?;
    Ok(Restored { reference: reference.to_string(), commit, entries, added, quarantined })
}

/// How the log and a backup compare.
#[derive(Debug, serde::Serialize)]
pub struct Compared {
    pub reference: String,
    pub commit: String,
    pub backup_entries: u64,
    pub log_entries: u64,
}

/// Checks the log and the backup at `reference` agree: both verify, and
/// the backup is the start of the log (or all of it).
pub fn compare(ws: &Workspace, reference: &str) -> Result<Compared, BackupError> {
    let repo = ws.repo().map_err(BackupError::Git)?;
    let (commit, bytes) = read_backup(&repo, reference)?;
    let backup_entries = chain(&bytes, &format!("the backup at {reference}"))?;
    let log = read_log(ws)?;
    let log_entries = chain(&log, &format!("the log {}", ws.rel("logs/steps.jsonl")))?;
    if !log.starts_with(&bytes) {
        return Err(BackupError::Diverged {
            what: format!(
                "the backup at {reference} ({backup_entries} entries) is not the start of the log ({log_entries} entries)"
            ),
        });
    }
    Ok(Compared { reference: reference.to_string(), commit, backup_entries, log_entries })
}

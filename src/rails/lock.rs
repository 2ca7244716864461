//! `config/rails.lock`: a blake3 checksum of every protected file and one
//! combined rails version (DESIGN §10).
//!
//! Locked files: everything under `config/` (but the lock itself),
//! `intents/` and `golden/` of the home, and each `CODEOWNERS` file. The
//! lock is written only by `ratchet init`, `ratchet rails accept` and
//! `ratchet intent set`; every loop command checks it first. The copies of
//! the files as last accepted are kept under `.ratchet/accepted/`, so that
//! `ratchet rails diff` works without git.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Coded, Exit};
use crate::workspace::Workspace;

/// Home-relative folders whose every file is locked.
pub const LOCKED_DIRS: [&str; 3] = ["config", "intents", "golden"];
/// Repository-relative CODEOWNERS locations (GitHub's three, and GitLab's `.gitlab/`).
pub const CODEOWNERS_FILES: [&str; 4] = ["CODEOWNERS", ".github/CODEOWNERS", "docs/CODEOWNERS", ".gitlab/CODEOWNERS"];

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path} is missing, so the rails cannot be checked")]
    Missing { path: String },
    #[error("{path} is not a valid rails lock: {reason}")]
    Invalid { path: String, reason: String },
    #[error("rails tampered: {}", describe(changes))]
    Tampered { changes: Vec<Change> },
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
}

fn describe(changes: &[Change]) -> String {
    changes.iter().map(|c| format!("{} {}", c.kind.word(), c.path)).collect::<Vec<_>>().join(", ")
}

impl Coded for LockError {
    fn code(&self) -> &'static str {
        match self {
            LockError::Missing { .. } => "RAILS_LOCK_MISSING",
            LockError::Invalid { .. } => "RAILS_LOCK_INVALID",
            LockError::Tampered { .. } => "RAILS_TAMPERED",
            LockError::Io { .. } => "IO_ERROR",
        }
    }
    fn hint(&self) -> Option<String> {
        Some(match self {
            LockError::Missing { .. } => {
                "run `ratchet init` (new workspace) or `ratchet rails accept` at a terminal".into()
            }
            LockError::Invalid { .. } => {
                "restore config/rails.lock from git (`git checkout -- config/rails.lock`)".into()
            }
            LockError::Tampered { .. } => {
                "review with `ratchet rails diff`, then `ratchet rails accept` at a terminal, or undo the edit".into()
            }
            LockError::Io { path, .. } => format!("check that {} is readable", path.display()),
        })
    }
    fn exit(&self) -> Exit {
        match self {
            LockError::Io { .. } => Exit::Error,
            _ => Exit::RailsTampered,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Changed,
    Added,
    Removed,
}

impl ChangeKind {
    pub fn word(self) -> &'static str {
        match self {
            ChangeKind::Changed => "changed",
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
        }
    }
}

/// One protected file that differs from the lock.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Change {
    /// Repository-relative path.
    pub path: String,
    pub kind: ChangeKind,
}

/// The checksums of the protected files and the rails version they make.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lock {
    /// Repository-relative path → blake3 hex.
    pub files: BTreeMap<String, String>,
}

impl Lock {
    /// The combined rails version: blake3 over `path\0hash\n` of every file.
    pub fn version(&self) -> String {
        let mut h = blake3::Hasher::new();
        for (path, hash) in &self.files {
            h.update(path.as_bytes());
            h.update(b"\0");
            h.update(hash.as_bytes());
            h.update(b"\n");
        }
        h.finalize().to_hex().to_string()
    }

    /// The file's text: a comment, the version, one line per file.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# config/rails.lock: blake3 of every protected file, and the rails version they make.\n\
             # Written by `ratchet init`, `ratchet rails accept` and `ratchet intent set`. Do not edit.\n",
        );
        out.push_str(&format!("version = \"{}\"\n\n[files]\n", self.version()));
        for (path, hash) in &self.files {
            out.push_str(&format!("{} = \"{}\"\n", toml_key(path), hash));
        }
        out
    }

    pub fn parse(text: &str, name: &str) -> Result<Lock, LockError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            version: String,
            files: BTreeMap<String, String>,
        }
        let raw: Raw = ::toml::from_str(text)
            .map_err(|e| LockError::Invalid { path: name.into(), reason: e.message().to_string() })?;
        let lock = Lock { files: raw.files };
        if lock.version() != raw.version {
            return Err(LockError::Invalid {
                path: name.into(),
                reason: "its version does not match its file checksums (edited by hand?)".into(),
            });
        }
        Ok(lock)
    }

    /// Reads `config/rails.lock` of `ws`.
    pub fn load(ws: &Workspace) -> Result<Lock, LockError> {
        let path = ws.rails_lock();
        let name = ws.rel("config/rails.lock");
        match std::fs::read_to_string(&path) {
            Ok(text) => Lock::parse(&text, &name),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(LockError::Missing { path: name }),
            Err(source) => Err(LockError::Io { action: "read", path, source }),
        }
    }

    /// Writes the lock atomically.
    pub fn store(&self, ws: &Workspace) -> Result<(), LockError> {
        let path = ws.rails_lock();
        crate::fsutil::write_file(&path, self.render().as_bytes(), crate::fsutil::Durability::Full)
            .map_err(|source| LockError::Io { action: "write", path, source })
    }

    /// What differs between this lock and `current`.
    pub fn changes_to(&self, current: &Lock) -> Vec<Change> {
        let mut out = Vec::new();
        for (path, hash) in &current.files {
            match self.files.get(path) {
                None => out.push(Change { path: path.clone(), kind: ChangeKind::Added }),
                Some(h) if h != hash => out.push(Change { path: path.clone(), kind: ChangeKind::Changed }),
                Some(_) => {}
            }
        }
        for path in self.files.keys() {
            if !current.files.contains_key(path) {
                out.push(Change { path: path.clone(), kind: ChangeKind::Removed });
            }
        }
        out.sort();
        out
    }
}

fn toml_key(path: &str) -> String {
    serde_json::to_string(path).expect("a string always serialises")
}

/// The protected files of `ws` as they are now: repository-relative path → absolute path.
pub fn protected_files(ws: &Workspace) -> Result<BTreeMap<String, PathBuf>, LockError> {
    let mut out = BTreeMap::new();
    let lock_rel = ws.rel("config/rails.lock");
    for dir in LOCKED_DIRS {
        walk(ws.root(), &ws.home().join(dir), &mut out)?;
    }
    out.remove(&lock_rel);
    for name in CODEOWNERS_FILES {
        let p = ws.root().join(name);
        if std::fs::symlink_metadata(&p).is_ok() {
            out.insert(name.to_string(), p);
        }
    }
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, PathBuf>) -> Result<(), LockError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(LockError::Io { action: "list", path: dir.to_path_buf(), source }),
    };
    for entry in entries {
        let entry = entry.map_err(|source| LockError::Io { action: "list", path: dir.to_path_buf(), source })?;
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).map_err(|source| LockError::Io {
            action: "inspect",
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            walk(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            out.insert(rel, path);
        }
    }
    Ok(())
}

/// blake3 of a protected file: its bytes, or `symlink:<target>` for a
/// symlink (never followed), so replacing a file by a link is a change.
fn file_hash(path: &Path) -> Result<String, LockError> {
    let meta = std::fs::symlink_metadata(path).map_err(|source| LockError::Io {
        action: "inspect",
        path: path.into(),
        source,
    })?;
    let bytes = if meta.file_type().is_symlink() {
        let target =
            std::fs::read_link(path).map_err(|source| LockError::Io { action: "read", path: path.into(), source })?;
        format!("symlink:{}", target.display()).into_bytes()
    } else {
        std::fs::read(path).map_err(|source| LockError::Io { action: "read", path: path.into(), source })?
    };
    Ok(blake3::hash(&bytes).to_hex().to_string())
}

/// The lock the protected files of `ws` would have now.
pub fn compute(ws: &Workspace) -> Result<Lock, LockError> {
    let mut files = BTreeMap::new();
    for (rel, abs) in protected_files(ws)? {
        files.insert(rel, file_hash(&abs)?);
    }
    Ok(Lock { files })
}

/// Checks the protected files of `ws` against its lock: `RAILS_TAMPERED`
/// (exit 4) naming each changed, added or removed file.
pub fn check(ws: &Workspace) -> Result<Lock, LockError> {
    let lock = Lock::load(ws)?;
    let current = compute(ws)?;
    let changes = lock.changes_to(&current);
    if changes.is_empty() { Ok(lock) } else { Err(LockError::Tampered { changes }) }
}

/// `.ratchet/accepted/`: the protected files as last accepted.
pub fn accepted_copies_dir(ws: &Workspace) -> PathBuf {
    ws.state_dir().join("accepted")
}

/// Replaces the accepted copies with the protected files as they are now.
pub fn store_accepted(ws: &Workspace) -> Result<(), LockError> {
    let dir = accepted_copies_dir(ws);
    let staging = ws.state_dir().join("accepted.new");
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| LockError::Io { action, path, source }
    };
    let _ = std::fs::remove_dir_all(&staging);
    for (rel, abs) in protected_files(ws)? {
        let dest = staging.join(&rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        let meta = std::fs::symlink_metadata(&abs).map_err(io("inspect", &abs))?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&abs).map_err(io("read", &abs))?;
            std::fs::write(&dest, format!("symlink:{}", target.display())).map_err(io("write", &dest))?;
        } else {
            std::fs::copy(&abs, &dest).map_err(io("copy", &abs))?;
        }
    }
    std::fs::create_dir_all(&staging).map_err(io("create", &staging))?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&staging, &dir).map_err(io("rename", &staging))?;
    Ok(())
}

/// One file's change with its old and new text, for `rails diff`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDiff {
    pub change: Change,
    /// The accepted text, when it can be found.
    pub old: Option<String>,
    pub new: Option<String>,
}

/// What changed since the last accepted version, with the texts to diff.
/// The old text comes from `.ratchet/accepted/`, else from the `HEAD`
/// commit when its blob has the locked checksum.
pub fn diff_accepted(ws: &Workspace) -> Result<Vec<FileDiff>, LockError> {
    let lock = Lock::load(ws)?;
    let current = compute(ws)?;
    let accepted = accepted_copies_dir(ws);
    let repo = ws.repo().ok();
    let mut out = Vec::new();
    for change in lock.changes_to(&current) {
        let locked = lock.files.get(&change.path);
        let old = locked.and_then(|hash| {
            let copy = std::fs::read(accepted.join(&change.path)).ok();
            let from_head = || repo.as_ref().and_then(|r| r.head_file(&change.path));
            copy.filter(|b| blake3::hash(b).to_hex().as_str() == hash)
                .or_else(|| from_head().filter(|b| blake3::hash(b).to_hex().as_str() == hash))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        });
        let new = match change.kind {
            ChangeKind::Removed => None,
            _ => std::fs::read(ws.root().join(&change.path)).ok().map(|b| String::from_utf8_lossy(&b).into_owned()),
        };
        out.push(FileDiff { change, old, new });
    }
    Ok(out)
}

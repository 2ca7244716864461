//! The workspace lock: one loop command at a time per workspace.
//!
//! `.ratchet/lock` is held with an exclusive, non-blocking `flock` for the
//! life of the command; the kernel releases it when the process dies, so a
//! `kill -9` never leaves a stale lock. The file's contents name the holder
//! (pid, start time, command) so a second run can say who has it.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::PathBuf;

use rustix::fs::{FlockOperation, flock};

use crate::error::{Coded, Exit};
use crate::workspace::Workspace;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the workspace is locked by pid {pid} ({command}, started {started})")]
    Locked { pid: String, started: String, command: String },
    #[error("cannot open the lock file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl Coded for LockError {
    fn code(&self) -> &'static str {
        match self {
            LockError::Locked { .. } => "LOCKED",
            LockError::Io { .. } => "IO_ERROR",
        }
    }
    fn hint(&self) -> Option<String> {
        Some(match self {
            LockError::Locked { .. } => "wait for that run to finish, then try again".into(),
            LockError::Io { path, .. } => format!("check that {} is writable", path.display()),
        })
    }
    fn exit(&self) -> Exit {
        match self {
            LockError::Locked { .. } => Exit::Locked,
            LockError::Io { .. } => Exit::Error,
        }
    }
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct WorkspaceLock {
    _file: File,
}

impl WorkspaceLock {
    /// Takes the lock at once or fails with `LOCKED` naming the holder.
    pub fn acquire(ws: &Workspace, command: &str) -> Result<WorkspaceLock, LockError> {
        let dir = ws.state_dir();
        let path = dir.join("lock");
        let io = |source| LockError::Io { path: path.clone(), source };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut file =
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let v: serde_json::Value = serde_json::from_str(&holder).unwrap_or_default();
            let field = |k: &str| v[k].as_str().map(str::to_string).unwrap_or_else(|| v[k].to_string());
            return Err(LockError::Locked { pid: field("pid"), started: field("started"), command: field("command") });
        }
        let holder = serde_json::json!({
            "pid": std::process::id(),
            "started": crate::clock::stamp(chrono::Utc::now()),
            "command": command,
        });
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(holder.to_string().as_bytes()).map_err(io)?;
        Ok(WorkspaceLock { _file: file })
    }
}

//! The step's crash journal: `step.json` in ratchet's private directory
//! ([`crate::private`]), outside the work tree.
//!
//! Written before each phase that can leave something behind, removed when
//! the step's entry is in the log. If the process dies anywhere in between
//! (`kill -9` included), the next loop command finds it and makes the tree,
//! git and the log agree again: the tree restored and the step logged as
//! `failed` (`reason = "interrupted"`), or, when the commit was already
//! made, the commit kept and its prepared entry logged.
//!
//! Recovery obeys this file (it puts bytes back at a path), so it must be
//! ratchet's own: it lives where no child can reach it, and it carries a
//! MAC under the private key. A crash journal that does not verify is
//! refused (`RECOVERY_FAILED`), never obeyed. Without a private directory
//! (no `$HOME`), it falls back to `.ratchet/step.json`, unauthenticated.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::patch::Undo;
use crate::private::Private;
use crate::record::StepBody;
use crate::workspace::Workspace;

use super::StepError;

pub use crate::fault::{FAULT_ENV, fault};

/// What the MAC of a crash journal is bound to.
const PURPOSE: &str = "ratchet crash journal v1";

/// Where a step can be interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Asking the provider; nothing written to the tree.
    Propose,
    /// Applying the patch or running the checks; the file may be changed.
    Apply,
    /// Committing, then logging: the commit may or may not exist (recovery
    /// looks for it at HEAD), and the entry is not yet in the log.
    Commit,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Inflight {
    pub id: String,
    pub pid: u32,
    pub phase: Phase,
    /// What the step would log if it failed here (outcome and reason are
    /// set by recovery); at `Commit`, the merged entry it is about to log.
    pub body: StepBody,
    /// How to put the file back, once a patch may have been applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<Undo>,
}

/// The file as written: the crash journal and its MAC.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    inflight: Inflight,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
}

/// Where the crash journal of `ws` lives.
pub fn path(ws: &Workspace) -> PathBuf {
    match Private::of(ws) {
        Some(p) => p.path("step.json"),
        None => ws.state_dir().join("step.json"),
    }
}

fn io(ws: &Workspace, e: std::io::Error) -> StepError {
    crate::error::IoError::new("write", path(ws), e).into()
}

impl Inflight {
    /// Records the step's phase before it starts. Atomic, but not forced to
    /// disk: it guards against the process dying (`kill -9` keeps the page
    /// cache), and each fsync here would cost the step milliseconds. After a
    /// power loss the tree may show an applied patch with no crash journal;
    /// the next step then stops on the dirty tree, which a human sorts out.
    pub fn save(&self, ws: &Workspace) -> Result<(), StepError> {
        let inner = serde_json::to_vec(self).expect("the crash journal always serialises");
        let mac = match Private::of(ws) {
            Some(p) => Some(crate::private::mac(&p.key().map_err(|e| io(ws, e))?, PURPOSE, &inner)),
            None => None,
        };
        let bytes = serde_json::to_vec(&Sealed { inflight: self.clone(), mac }).expect("it serialises");
        let file = path(ws);
        if let Some(dir) = file.parent() {
            crate::fsutil::create_private_dir(dir).map_err(|e| io(ws, e))?;
        }
        crate::fsutil::write_private(&file, &bytes, crate::fsutil::Durability::Flushed).map_err(|e| io(ws, e))
    }

    /// The crash journal, when there is one; `Err(reason)` when it exists
    /// but is not one ratchet wrote.
    pub fn load(ws: &Workspace) -> Result<Option<Inflight>, String> {
        let file = path(ws);
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", file.display())),
        };
        let sealed: Sealed = serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
        if let Some(p) = Private::of(ws) {
            let key = p.key().map_err(|e| format!("the private key cannot be read: {e}"))?;
            let inner = serde_json::to_vec(&sealed.inflight).expect("it serialises");
            let ok = sealed.mac.as_deref().is_some_and(|tag| crate::private::verify_mac(&key, PURPOSE, &inner, tag));
            if !ok {
                return Err(format!("{} was not written by ratchet (its MAC does not verify)", file.display()));
            }
        }
        Ok(Some(sealed.inflight))
    }

    pub fn clear(ws: &Workspace) -> Result<(), StepError> {
        match std::fs::remove_file(path(ws)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(crate::error::IoError::new("remove", path(ws), e).into())
            }
            _ => Ok(()),
        }
    }
}

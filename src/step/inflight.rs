//! The step's crash journal: `.ratchet/step.json`.
//!
//! Written before each phase that can leave something behind, removed when
//! the step's entry is in the log. If the process dies anywhere in between
//! (`kill -9` included), the next loop command finds it and makes the tree,
//! git and the log agree again: the tree restored and the step logged as
//! `failed` (`reason = "interrupted"`), or, when the commit was already
//! made, the commit kept and its prepared entry logged.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::patch::Undo;
use crate::record::StepBody;
use crate::workspace::Workspace;

/// The test-only fault hook: `RATCHET_TEST_FAULT=<point>` makes the process
/// kill itself with SIGKILL at that point of a step, so that tests can prove
/// recovery from each one.
pub const FAULT_ENV: &str = "RATCHET_TEST_FAULT";

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
    /// set by recovery).
    pub body: StepBody,
    /// How to put the file back, once a patch may have been applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<Undo>,
}

pub fn path(ws: &Workspace) -> PathBuf {
    ws.state_dir().join("step.json")
}

impl Inflight {
    /// Records the step's phase before it starts. Atomic, but not forced to
    /// disk: it guards against the process dying (`kill -9` keeps the page
    /// cache), and each fsync here would cost the step milliseconds. After a
    /// power loss the tree may show an applied patch with no crash journal;
    /// the next step then stops on the dirty tree, which a human sorts out.
    pub fn save(&self, ws: &Workspace) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).expect("the crash journal always serialises");
        crate::fsutil::replace(&path(ws), &bytes)
    }

    pub fn load(ws: &Workspace) -> Result<Option<Inflight>, String> {
        match std::fs::read(path(ws)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| format!("{}: {e}", path(ws).display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path(ws).display())),
        }
    }

    pub fn clear(ws: &Workspace) -> std::io::Result<()> {
        match std::fs::remove_file(path(ws)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Kills the process at `point` when the fault hook names it.
pub fn fault(point: &str) {
    if std::env::var(FAULT_ENV).is_ok_and(|v| v == point) {
        let me = rustix::process::getpid();
        let _ = rustix::process::kill_process(me, rustix::process::Signal::KILL);
        // SIGKILL cannot be caught; this is never reached.
        std::process::abort();
    }
}

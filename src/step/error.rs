//! Errors of a step and of the commands that continue one.

use crate::error::{Coded, Exit};

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    #[error(transparent)]
    RailsLock(#[from] crate::rails::LockError),
    #[error(transparent)]
    Rails(#[from] crate::rails::RailsError),
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    #[error(transparent)]
    Intent(#[from] crate::intent::IntentError),
    #[error(transparent)]
    Git(#[from] crate::git::GitError),
    #[error(transparent)]
    Patch(#[from] crate::patch::PatchError),
    #[error(transparent)]
    Io(#[from] crate::error::IoError),
    #[error("the work tree has uncommitted changes in allowlisted paths: {}", paths.join(", "))]
    DirtyTree { paths: Vec<String> },
    #[error("{path} has uncommitted changes, and the patch would commit them")]
    DirtyTarget { path: String },
    #[error("no provider named {name:?} is configured")]
    UnknownProvider { name: String, configured: Vec<String> },
    #[error("no pending proposal with id {id:?}")]
    NotPending { id: String, pending: Vec<String> },
    #[error("the proposal {id} replaces the whole of {path}, which changed since it was proposed")]
    StaleProposal { id: String, path: String },
    #[error("no merged step with id {id:?}")]
    NotMerged { id: String },
    #[error("step {id} was already reverted")]
    AlreadyReverted { id: String },
    #[error("the commit {commit} of step {id} is not in the history of HEAD")]
    NotInHistory { id: String, commit: String },
    #[error("cannot revert step {id}: {reason}")]
    RevertConflict { id: String, reason: String },
    #[error("the revert of step {id} failed its checks (exit {status}); the tree is restored")]
    RevertChecksFailed { id: String, status: String },
    #[error("the interrupted step in {file} cannot be recovered: {reason}")]
    Recovery { file: String, reason: String },
    #[error("{what} must lie within [0, 1], got {value}")]
    BadScore { what: &'static str, value: f64 },
    #[error(
        "config/rails.lock names rails version {}, but the log's last rails entry names {}: the lock was rewritten outside `ratchet rails accept`",
        &lock[..12.min(lock.len())],
        &logged[..12.min(logged.len())]
    )]
    RailsUnlogged { lock: String, logged: String },
    #[error("the pending proposal {id} was tampered with: {why}; nothing was applied")]
    PendingTampered { id: String, why: String },
    #[error("{what}")]
    UnexpectedChanges { what: String },
    #[error(transparent)]
    Commit(#[from] crate::git::CommitError),
    /// A decision hook (the agents API's quorum) refused.
    #[error("{}", .0.message)]
    Refused(crate::error::Report),
}

impl Coded for StepError {
    fn code(&self) -> &'static str {
        match self {
            StepError::Lock(e) => e.code(),
            StepError::RailsLock(e) => e.code(),
            StepError::Rails(e) => e.code(),
            StepError::Journal(e) => e.code(),
            StepError::Intent(e) => e.code(),
            StepError::Git(e) => e.code(),
            StepError::Patch(e) => e.code(),
            StepError::Io(e) => e.code(),
            StepError::DirtyTree { .. } | StepError::DirtyTarget { .. } => "DIRTY_TREE",
            StepError::UnknownProvider { .. } => "UNKNOWN_PROVIDER",
            StepError::NotPending { .. } => "NOT_PENDING",
            StepError::StaleProposal { .. } => "STALE_PROPOSAL",
            StepError::NotMerged { .. } => "NOT_MERGED",
            StepError::AlreadyReverted { .. } => "ALREADY_REVERTED",
            StepError::NotInHistory { .. } => "NOT_IN_HISTORY",
            StepError::RevertConflict { .. } => "REVERT_CONFLICT",
            StepError::RevertChecksFailed { .. } => "REVERT_CHECKS_FAILED",
            StepError::Recovery { .. } => "RECOVERY_FAILED",
            StepError::BadScore { .. } => "BAD_SCORE",
            StepError::RailsUnlogged { .. } => "RAILS_TAMPERED",
            StepError::PendingTampered { .. } => "PENDING_TAMPERED",
            StepError::UnexpectedChanges { .. } => "UNEXPECTED_CHANGES",
            StepError::Commit(e) => e.code(),
            StepError::Refused(r) => r.code,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            StepError::Lock(e) => e.hint(),
            StepError::RailsLock(e) => e.hint(),
            StepError::Rails(e) => e.hint(),
            StepError::Journal(e) => e.hint(),
            StepError::Intent(e) => e.hint(),
            StepError::Git(e) => e.hint(),
            StepError::Patch(e) => e.hint(),
            StepError::Io(e) => e.hint(),
            StepError::DirtyTree { .. } => {
                Some("commit or stash those changes first (at a terminal, `ratchet step --allow-dirty` runs beside them)".into())
            }
            StepError::DirtyTarget { path } => Some(format!("commit or stash your changes to {path} first")),
            StepError::UnknownProvider { configured, .. } => {
                Some(format!("use one of: {} (see [providers] in config/rails.toml)", configured.join(", ")))
            }
            StepError::NotPending { pending, .. } if pending.is_empty() => {
                Some("there are no pending proposals; `ratchet status` lists recent steps".into())
            }
            StepError::NotPending { pending, .. } => Some(format!("pending proposals: {}", pending.join(", "))),
            StepError::StaleProposal { id, .. } => {
                Some(format!("reject it with `ratchet reject {id}` and ask for a fresh proposal with `ratchet step`"))
            }
            StepError::NotMerged { .. } => Some("list merged steps with `ratchet log --outcome merged`".into()),
            StepError::AlreadyReverted { .. } => Some("nothing to do; `ratchet log show` has the amendment".into()),
            StepError::NotInHistory { .. } => Some("check out the branch that holds the step's commit".into()),
            StepError::RevertConflict { .. } => Some(
                "later commits changed the same lines; revert by hand with `git revert` and resolve the conflict"
                    .into(),
            ),
            StepError::RevertChecksFailed { id, .. } => {
                Some(format!("see logs/runs/{id}-revert.log; fix the checks, or revert by hand with `git revert`"))
            }
            StepError::Recovery { file, .. } => {
                Some(format!("inspect {file} and the work tree; remove the file once the tree is as you want it"))
            }
            StepError::BadScore { .. } => Some("give a score between 0 and 1, such as --score 0.8".into()),
            StepError::RailsUnlogged { .. } => Some(
                "restore config/ from git (`git checkout -- config/`) and review it with `ratchet rails diff`; rails change only through `ratchet rails accept`"
                    .into(),
            ),
            StepError::PendingTampered { .. } => Some(
                "the file was moved to logs/quarantine/ and the step logged as failed; ask for a fresh proposal with `ratchet step`"
                    .into(),
            ),
            StepError::UnexpectedChanges { .. } => {
                Some("nothing was committed; look at `git status` and the checks' log in logs/runs/".into())
            }
            StepError::Commit(e) => e.hint(),
            StepError::Refused(r) => r.hint().map(str::to_string),
        }
    }

    fn exit(&self) -> Exit {
        match self {
            StepError::Lock(e) => e.exit(),
            StepError::RailsLock(e) => e.exit(),
            StepError::Journal(e) => e.exit(),
            StepError::RailsUnlogged { .. } => Exit::RailsTampered,
            _ => Exit::Error,
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            StepError::Rails(e) => e.hints(),
            other => other.hint().into_iter().collect(),
        }
    }

    fn snippet(&self) -> Option<String> {
        match self {
            StepError::Rails(e) => e.snippet(),
            _ => None,
        }
    }
}

//! The only module that names `git2`.
//!
//! Everything ratchet asks of git goes through here: finding the work tree,
//! the head commit, the approver's identity, status of paths, and (for the
//! step) commits with trailers and reverts.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{path} is not inside a git repository")]
    NotARepo { path: PathBuf },
    #[error("{path} is a bare git repository; ratchet needs a work tree")]
    Bare { path: PathBuf },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

impl crate::error::Coded for GitError {
    fn code(&self) -> &'static str {
        match self {
            GitError::NotARepo { .. } => "NOT_A_GIT_REPO",
            GitError::Bare { .. } => "NOT_A_GIT_REPO",
            GitError::Git(_) => "GIT_ERROR",
        }
    }
    fn hint(&self) -> Option<String> {
        Some(match self {
            GitError::NotARepo { .. } => "run `git init` first, or cd into a git repository".into(),
            GitError::Bare { .. } => "run ratchet in a clone with a work tree".into(),
            GitError::Git(_) => "check the repository with `git status` and try again".into(),
        })
    }
}

/// A handle on the repository of a workspace.
pub struct Repo {
    inner: git2::Repository,
    workdir: PathBuf,
}

impl Repo {
    /// Finds the repository containing `path`, walking up.
    pub fn discover(path: &Path) -> Result<Repo, GitError> {
        let inner = git2::Repository::discover(path).map_err(|e| match e.code() {
            git2::ErrorCode::NotFound => GitError::NotARepo { path: path.to_path_buf() },
            _ => GitError::Git(e),
        })?;
        let workdir = inner.workdir().ok_or_else(|| GitError::Bare { path: path.to_path_buf() })?.to_path_buf();
        let workdir = workdir.canonicalize().unwrap_or(workdir);
        Ok(Repo { inner, workdir })
    }

    /// The root of the work tree, canonicalised.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// The head commit's id in hex, or `None` on an unborn branch.
    pub fn head_commit(&self) -> Option<String> {
        self.inner.head().ok()?.peel_to_commit().ok().map(|c| c.id().to_string())
    }

    /// `user.email` (falling back to `user.name`) from git's configuration.
    pub fn identity(&self) -> Option<Identity> {
        let cfg = self.inner.config().ok()?;
        let name = cfg.get_string("user.name").ok();
        let email = cfg.get_string("user.email").ok();
        if name.is_none() && email.is_none() {
            return None;
        }
        Some(Identity { name: name.unwrap_or_default(), email: email.unwrap_or_default() })
    }

    pub fn raw(&self) -> &git2::Repository {
        &self.inner
    }
}

/// Who a git identity says they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

impl Identity {
    /// `alice@example.com`, or the name when there is no email.
    pub fn display(&self) -> &str {
        if self.email.is_empty() { &self.name } else { &self.email }
    }
}

// ---------------------------------------------------------------------------
// The step log's anchors in history (used by `journal::verify`).
// ---------------------------------------------------------------------------

/// The log trailers of one step commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogTrailer {
    /// The commit's id in hex.
    pub commit: String,
    /// `Ratchet-Log-Prev`: the log's head hash when the commit was made.
    pub log_prev: String,
    /// `Ratchet-Step`: the step's id, when present.
    pub step: Option<String>,
    /// `Ratchet-Log`: the hash of the first entry of the log the step was
    /// recorded in, when present; it tells this clone's log from another's.
    pub log: Option<String>,
}

impl Repo {
    /// The log trailers of every commit reachable from HEAD that carries a
    /// `Ratchet-Log-Prev` trailer, oldest first. Memory grows with the
    /// number of step commits only. Empty on an unborn branch.
    pub fn log_trailers(&self) -> Result<Vec<LogTrailer>, GitError> {
        let Some(head) = self.inner.head().ok().and_then(|h| h.target()) else {
            return Ok(Vec::new());
        };
        let mut walk = self.inner.revwalk()?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
        walk.push(head)?;
        let mut out = Vec::new();
        for oid in walk {
            let oid = oid?;
            let commit = self.inner.find_commit(oid)?;
            let Ok(message) = commit.message_raw() else { continue };
            if !message.contains("Ratchet-Log-Prev") {
                continue;
            }
            let Ok(trailers) = git2::message_trailers_strs(message) else { continue };
            let mut found = LogTrailer { commit: oid.to_string(), log_prev: String::new(), step: None, log: None };
            for (key, value) in trailers.iter() {
                match key {
                    "Ratchet-Log-Prev" => found.log_prev = value.trim().to_string(),
                    "Ratchet-Step" => found.step = Some(value.trim().to_string()),
                    "Ratchet-Log" => found.log = Some(value.trim().to_string()),
                    _ => {}
                }
            }
            if !found.log_prev.is_empty() {
                out.push(found);
            }
        }
        Ok(out)
    }
}

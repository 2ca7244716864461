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
// patch: the work tree's status, for path safety's last step ("after
// applying, `git status` must show exactly the one path changed").
// ---------------------------------------------------------------------------

/// What `git status` shows: each changed path (repository-relative, `/`
/// separators; untracked files one by one, ignored files left out) with its
/// `git2::Status` bits.
pub type StatusMap = std::collections::BTreeMap<String, u32>;

impl Repo {
    /// The status of the work tree and index against HEAD.
    pub fn status(&self) -> Result<StatusMap, GitError> {
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false)
            .include_unmodified(false)
            .exclude_submodules(false);
        let statuses = self.inner.statuses(Some(&mut opts))?;
        Ok(statuses
            .iter()
            .map(|entry| (String::from_utf8_lossy(entry.path_bytes()).into_owned(), entry.status().bits()))
            .collect())
    }
}

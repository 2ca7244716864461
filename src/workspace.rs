//! Where a workspace lives: the git work tree and its ratchet home.
//!
//! The home is the folder holding `config/`, `intents/`, `golden/`, `logs/`
//! and `.ratchet/`: the repository root by default, or a sub-folder chosen
//! with `ratchet init --home DIR`. Every command finds its workspace by
//! walking up from the current directory.

use std::path::{Path, PathBuf};

use crate::error::Coded;
use crate::git::{GitError, Repo};

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("no ratchet workspace found in {root} (no config/rails.toml between {start} and the repository root)")]
    NotAWorkspace { start: PathBuf, root: PathBuf },
    #[error("more than one ratchet home in {root}: {homes}")]
    Ambiguous { root: PathBuf, homes: String },
    #[error("the home {home} is not inside the repository {root}")]
    HomeOutsideRepo { home: PathBuf, root: PathBuf },
}

impl Coded for WorkspaceError {
    fn code(&self) -> &'static str {
        match self {
            WorkspaceError::Git(e) => e.code(),
            WorkspaceError::NotAWorkspace { .. } => "NOT_A_WORKSPACE",
            WorkspaceError::Ambiguous { .. } => "WORKSPACE_AMBIGUOUS",
            WorkspaceError::HomeOutsideRepo { .. } => "HOME_OUTSIDE_REPO",
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            WorkspaceError::Git(e) => e.hint(),
            WorkspaceError::NotAWorkspace { .. } => Some("run `ratchet init` in the repository first".into()),
            WorkspaceError::Ambiguous { .. } => Some("cd into the home you mean before running ratchet".into()),
            WorkspaceError::HomeOutsideRepo { .. } => {
                Some("pass a --home inside the repository, such as .ratchet-home".into())
            }
        }
    }
}

/// A git work tree with a ratchet home.
#[derive(Clone, Debug)]
pub struct Workspace {
    root: PathBuf,
    home: PathBuf,
    home_rel: String,
}

impl Workspace {
    /// The workspace whose home is `home_rel` (`""` for the root) inside `root`.
    pub fn at(root: impl Into<PathBuf>, home_rel: &str) -> Workspace {
        let root = root.into();
        let home_rel = home_rel.trim_matches('/').to_string();
        let home = if home_rel.is_empty() { root.clone() } else { root.join(&home_rel) };
        Workspace { root, home, home_rel }
    }

    /// The workspace that a repository would have with its home at `home`
    /// (relative to the current directory, or absolute); for `init`.
    pub fn planned(start: &Path, home: Option<&Path>) -> Result<Workspace, WorkspaceError> {
        let repo = Repo::discover(start)?;
        let root = repo.workdir().to_path_buf();
        let Some(home) = home else {
            return Ok(Workspace::at(root, ""));
        };
        let abs = if home.is_absolute() { home.to_path_buf() } else { start.join(home) };
        let abs = normalise(&abs);
        let rel = abs
            .strip_prefix(&root)
            .map_err(|_| WorkspaceError::HomeOutsideRepo { home: abs.clone(), root: root.clone() })?;
        let rel = rel.to_string_lossy().replace('\\', "/");
        Ok(Workspace::at(root, &rel))
    }

    /// Finds the workspace containing `start`.
    pub fn discover(start: &Path) -> Result<Workspace, WorkspaceError> {
        let repo = Repo::discover(start)?;
        let root = repo.workdir().to_path_buf();
        let start_abs = start.canonicalize().unwrap_or_else(|_| start.to_path_buf());
        let mut dir = start_abs.as_path();
        loop {
            if dir.join("config/rails.toml").is_file() {
                if let Ok(rel) = dir.strip_prefix(&root) {
                    return Ok(Workspace::at(root.clone(), &rel.to_string_lossy()));
                }
            }
            if dir == root {
                break;
            }
            match dir.parent() {
                Some(parent) if parent.starts_with(&root) => dir = parent,
                _ => break,
            }
        }
        // From the root, a home may sit one level down (`init --home .ratchet-home`).
        let mut homes = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&root) {
            for entry in entries.flatten() {
                let p = entry.path();
                if entry.file_name() != ".git"
                    && p.join("config/rails.toml").is_file()
                    && p.join("config/rails.lock").is_file()
                {
                    homes.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        homes.sort();
        match homes.len() {
            1 => Ok(Workspace::at(root, &homes[0])),
            0 => Err(WorkspaceError::NotAWorkspace { start: start_abs, root }),
            _ => Err(WorkspaceError::Ambiguous { root, homes: homes.join(", ") }),
        }
    }

    pub fn repo(&self) -> Result<Repo, GitError> {
        Repo::discover(&self.root)
    }

    /// The root of the git work tree.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The ratchet home (absolute).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The home relative to the root, with `/` separators; `""` at the root.
    pub fn home_rel(&self) -> &str {
        &self.home_rel
    }

    /// A home-relative path as a repository-relative path: `config/rails.toml`
    /// becomes `.ratchet-home/config/rails.toml` under a sub-folder home.
    pub fn rel(&self, sub: &str) -> String {
        if self.home_rel.is_empty() { sub.to_string() } else { format!("{}/{}", self.home_rel, sub) }
    }

    pub fn config_dir(&self) -> PathBuf {
        self.home.join("config")
    }
    pub fn rails_toml(&self) -> PathBuf {
        self.home.join("config/rails.toml")
    }
    pub fn rails_lock(&self) -> PathBuf {
        self.home.join("config/rails.lock")
    }
    pub fn intents_dir(&self) -> PathBuf {
        self.home.join("intents")
    }
    pub fn golden_dir(&self) -> PathBuf {
        self.home.join("golden")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.home.join("logs")
    }
    /// `logs/steps.jsonl`: the step log.
    pub fn steps_log(&self) -> PathBuf {
        self.home.join("logs/steps.jsonl")
    }
    pub fn pending_dir(&self) -> PathBuf {
        self.home.join("logs/pending")
    }
    pub fn runs_dir(&self) -> PathBuf {
        self.home.join("logs/runs")
    }
    pub fn quarantine_dir(&self) -> PathBuf {
        self.home.join("logs/quarantine")
    }
    /// `.ratchet/`: local, git-ignored state (lock, checkpoint, database, keys).
    pub fn state_dir(&self) -> PathBuf {
        self.home.join(".ratchet")
    }

    /// A stable id for this clone's workspace: blake3 of the canonical
    /// absolute home, shortened. Names the checkpoint kept outside the repo.
    pub fn id(&self) -> String {
        let hex = blake3::hash(self.home.to_string_lossy().as_bytes()).to_hex();
        hex[..16].to_string()
    }
}

/// Removes `.` and `..` components lexically (the path may not exist yet).
fn normalise(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    // Canonicalise the longest existing prefix so that symlinked temp dirs
    // (macOS /var → /private/var) compare equal to the repository root.
    let mut existing = out.clone();
    let mut tail = Vec::new();
    while !existing.exists() {
        match existing.file_name() {
            Some(name) => {
                tail.push(name.to_os_string());
                existing.pop();
            }
            None => break,
        }
    }
    let mut base = existing.canonicalize().unwrap_or(existing);
    for name in tail.into_iter().rev() {
        base.push(name);
    }
    base
}

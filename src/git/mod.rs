//! The only module that names `git2`.
//!
//! Everything ratchet asks of git goes through here: finding the work tree,
//! the head commit, the approver's identity, status of paths, and (for the
//! step) commits with trailers and reverts.

use std::path::{Path, PathBuf};

pub mod index;
mod status;
pub mod watch;

pub use status::IndexSnapshot;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{path} is not inside a git repository")]
    NotARepo { path: PathBuf },
    #[error("{path} is a bare git repository; ratchet needs a work tree")]
    Bare { path: PathBuf },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

impl GitError {
    /// An error of git's kind, with `message`.
    pub fn failed(message: &str) -> GitError {
        GitError::Git(git2::Error::from_str(message))
    }
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

/// The commit a ref points at, and one file of its tree (`None`: absent).
pub type RefFile = (String, Option<Vec<u8>>);

/// A handle on the repository of a workspace.
pub struct Repo {
    inner: git2::Repository,
    workdir: PathBuf,
    /// The index as a look at the tree read it ([`Repo::remember_index`]).
    read_index: std::cell::RefCell<Option<std::sync::Arc<IndexSnapshot>>>,
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
        Ok(Repo { inner, workdir, read_index: Default::default() })
    }

    /// The root of the work tree, canonicalised.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// The commit a ref points at and the bytes of `path` in its tree
    /// (`None` when the ref does not exist; `Some((commit, None))` when the
    /// path is missing from it). `refname` may be a full ref
    /// (`refs/ratchet/log`) or anything `git rev-parse` takes.
    pub fn ref_file(&self, refname: &str, path: &str) -> Result<Option<RefFile>, GitError> {
        let commit = match self.inner.revparse_single(refname) {
            Ok(o) => o.peel_to_commit()?,
            Err(e) if e.code() == git2::ErrorCode::NotFound || e.code() == git2::ErrorCode::InvalidSpec => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let tree = commit.tree()?;
        let bytes = match tree.get_path(Path::new(path)) {
            Ok(entry) => Some(entry.to_object(&self.inner)?.peel_to_blob()?.content().to_vec()),
            Err(_) => None,
        };
        Ok(Some((commit.id().to_string(), bytes)))
    }

    #[allow(clippy::too_many_arguments)]
    /// Commits a tree holding only `path` = `bytes` onto `refname` (its
    /// current commit, if any, is the parent) without touching HEAD, the
    /// index or the work tree; the ref moves only if it still points where
    /// it did (`parent`). Returns the new commit id.
    pub fn commit_to_ref(
        &self,
        refname: &str,
        path: &str,
        bytes: &[u8],
        message: &str,
        who: &Identity,
        at: chrono::DateTime<chrono::Utc>,
        parent: Option<&str>,
    ) -> Result<String, GitError> {
        let blob = self.inner.blob(bytes)?;
        let mut builder = self.inner.treebuilder(None)?;
        builder.insert(path, blob, 0o100644)?;
        let tree = self.inner.find_tree(builder.write()?)?;
        let sig = Repo::signature(who, at)?;
        let parents: Vec<git2::Commit<'_>> = match parent {
            Some(id) => vec![self.inner.find_commit(git2::Oid::from_str(id)?)?],
            None => Vec::new(),
        };
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let oid = self.inner.commit(None, &sig, &sig, message, &tree, &refs)?;
        match parent {
            Some(p) => {
                self.inner.reference_matching(refname, oid, true, git2::Oid::from_str(p)?, message)?;
            }
            None => {
                self.inner.reference(refname, oid, false, message)?;
            }
        }
        Ok(oid.to_string())
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

impl Repo {
    /// The bytes of `path` (repository-relative) in the `HEAD` commit.
    pub fn head_file(&self, path: &str) -> Option<Vec<u8>> {
        let tree = self.inner.head().ok()?.peel_to_tree().ok()?;
        let entry = tree.get_path(Path::new(path)).ok()?;
        let blob = entry.to_object(&self.inner).ok()?.peel_to_blob().ok()?;
        Some(blob.content().to_vec())
    }
}

impl Repo {
    /// A string from git's configuration (`github.user`, say).
    pub fn config_string(&self, key: &str) -> Option<String> {
        self.inner.config().ok()?.get_string(key).ok().filter(|s| !s.trim().is_empty())
    }
}

// ---------------------------------------------------------------------------
// The step's git: dirty paths, commits with trailers, reverts.

/// The trailers every step commit carries (DESIGN §3 "Apply+Score").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trailers {
    pub step: String,
    pub packet: String,
    pub intent: String,
    pub rails: String,
    pub utility: String,
    pub log_prev: String,
    /// The hash of the log's first entry: which clone's log recorded the step.
    pub log: Option<String>,
}

impl Trailers {
    pub fn render(&self) -> String {
        format!(
            "Ratchet-Step: {}\nRatchet-Packet: {}\nRatchet-Intent: {}\nRatchet-Rails: {}\nRatchet-Utility: {}\nRatchet-Log-Prev: {}\n",
            self.step, self.packet, self.intent, self.rails, self.utility, self.log_prev
        ) + &self.log.as_ref().map(|l| format!("Ratchet-Log: {l}\n")).unwrap_or_default()
    }
}

/// The value of trailer `key` in a commit message.
pub fn trailer<'m>(message: &'m str, key: &str) -> Option<&'m str> {
    message.lines().rev().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')).map(str::trim))
}

/// A commit that reverted another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevertFound {
    pub commit: String,
    pub reverted: String,
    pub time: chrono::DateTime<chrono::Utc>,
}

impl Repo {
    /// Whether `path` differs from `HEAD` (or is untracked).
    pub fn is_dirty(&self, path: &str) -> Result<bool, GitError> {
        match self.inner.status_file(Path::new(path)) {
            Ok(s) => Ok(!s.is_empty() && !s.contains(git2::Status::IGNORED)),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn signature(who: &Identity, at: chrono::DateTime<chrono::Utc>) -> Result<git2::Signature<'static>, GitError> {
        let time = git2::Time::new(at.timestamp(), 0);
        let name = if who.name.is_empty() { "ratchet" } else { &who.name };
        let email = if who.email.is_empty() { "ratchet@localhost" } else { &who.email };
        Ok(git2::Signature::new(name, email, &time)?)
    }

    /// Commits the work tree's `path` (added, changed or deleted) on `HEAD`
    /// with `message`, authored and committed by `who` at `at`, and updates
    /// the index entry for it. Returns the new commit id.
    ///
    /// The commit's tree is `HEAD`'s tree with that one path replaced, not
    /// the index's tree: whatever else is staged stays staged and can never
    /// ride along in a step's commit (and only the trees on the path's way
    /// are rebuilt).
    pub fn commit_path(
        &self,
        path: &str,
        message: &str,
        who: &Identity,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, GitError> {
        let mut index = self.inner.index()?;
        // Whatever changed the index since it was loaded is kept.
        index.read(false)?;
        let entry = if self.workdir.join(path).symlink_metadata().is_ok() {
            index.add_path(Path::new(path))?;
            index.get_path(Path::new(path), 0).map(|e| (e.id, e.mode as i32))
        } else {
            index.remove_path(Path::new(path))?;
            None
        };
        index.write()?;
        let parent = self.inner.head().ok().and_then(|h| h.peel_to_commit().ok());
        let base = parent.as_ref().map(|c| c.tree()).transpose()?;
        let components: Vec<&str> = path.split('/').collect();
        let tree_id = self.tree_with(base.as_ref(), &components, entry)?;
        let tree = self.inner.find_tree(tree_id)?;
        let sig = Repo::signature(who, at)?;
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let id = self.inner.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)?;
        Ok(id.to_string())
    }

    /// `base` with the entry at `path` (its components) set to `entry`, or
    /// removed when `None`; empty trees on the way are dropped.
    fn tree_with(
        &self,
        base: Option<&git2::Tree>,
        path: &[&str],
        entry: Option<(git2::Oid, i32)>,
    ) -> Result<git2::Oid, GitError> {
        let mut builder = self.inner.treebuilder(base)?;
        let (name, rest) = path.split_first().ok_or_else(|| git2::Error::from_str("an empty path"))?;
        if rest.is_empty() {
            match entry {
                Some((oid, mode)) => {
                    builder.insert(name, oid, mode)?;
                }
                None => {
                    let _ = builder.remove(name);
                }
            }
        } else {
            let sub = base
                .and_then(|t| t.get_name(name))
                .filter(|e| e.kind() == Some(git2::ObjectType::Tree))
                .map(|e| self.inner.find_tree(e.id()))
                .transpose()?;
            let sub_id = self.tree_with(sub.as_ref(), rest, entry)?;
            if self.inner.find_tree(sub_id)?.is_empty() {
                let _ = builder.remove(name);
            } else {
                builder.insert(name, sub_id, 0o040000)?;
            }
        }
        Ok(builder.write()?)
    }
    /// The message of commit `id`.
    pub fn commit_message(&self, id: &str) -> Option<String> {
        let oid = git2::Oid::from_str(id).ok()?;
        self.inner.find_commit(oid).ok()?.message().ok().map(str::to_string)
    }

    /// The time of commit `id`.
    pub fn commit_time(&self, id: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        let oid = git2::Oid::from_str(id).ok()?;
        let t = self.inner.find_commit(oid).ok()?.time();
        chrono::DateTime::from_timestamp(t.seconds(), 0)
    }

    /// The bytes `path` would have after reverting commit `id` on top of
    /// `HEAD` (`None` when the revert deletes it), or `REVERT_CONFLICT`.
    pub fn reverted_content(&self, id: &str, path: &str) -> Result<Result<Option<Vec<u8>>, String>, GitError> {
        let commit = self.inner.find_commit(git2::Oid::from_str(id)?)?;
        let head = self.inner.head()?.peel_to_commit()?;
        let index = self.inner.revert_commit(&commit, &head, 0, None)?;
        if index.has_conflicts() {
            return Ok(Err(format!("reverting {id} conflicts with later changes to {path}")));
        }
        match index.get_path(Path::new(path), 0) {
            Some(entry) => Ok(Ok(Some(self.inner.find_blob(entry.id)?.content().to_vec()))),
            None => Ok(Ok(None)),
        }
    }

    /// Whether `id` is `HEAD` or one of its ancestors.
    pub fn is_ancestor_of_head(&self, id: &str) -> bool {
        let (Ok(oid), Some(head)) = (git2::Oid::from_str(id), self.head_commit()) else { return false };
        let Ok(head) = git2::Oid::from_str(&head) else { return false };
        oid == head || self.inner.graph_descendant_of(head, oid).unwrap_or(false)
    }

    /// Commits reachable from `HEAD` (newer than `stop`, when given) whose
    /// message says `This reverts commit <id>`.
    pub fn reverts_since(&self, stop: Option<&str>) -> Result<Vec<RevertFound>, GitError> {
        let mut walk = self.inner.revwalk()?;
        if walk.push_head().is_err() {
            return Ok(Vec::new());
        }
        if let Some(stop) = stop.and_then(|s| git2::Oid::from_str(s).ok()) {
            let _ = walk.hide(stop);
        }
        let mut out = Vec::new();
        for oid in walk {
            let oid = oid?;
            let commit = self.inner.find_commit(oid)?;
            let Ok(message) = commit.message() else { continue };
            if let Some(rest) = message.split("This reverts commit ").nth(1) {
                let reverted: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
                if reverted.len() == 40 {
                    let time = chrono::DateTime::from_timestamp(commit.time().seconds(), 0).unwrap_or_default();
                    out.push(RevertFound { commit: oid.to_string(), reverted, time });
                }
            }
        }
        out.reverse();
        Ok(out)
    }
}

impl Repo {
    /// Paths tracked in the index, repository-relative.
    pub fn tracked_paths(&self) -> Result<Vec<String>, GitError> {
        let index = self.inner.index()?;
        Ok(index.iter().filter_map(|e| String::from_utf8(e.path).ok()).collect())
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
    /// The status of the work tree and index against HEAD (see [`Repo::status_fast`]).
    pub fn status(&self) -> Result<StatusMap, GitError> {
        self.status_fast()
    }

    /// The status of the work tree and index against HEAD, computed by
    /// libgit2 alone: the reference [`Repo::status_fast`] is tested against.
    pub fn status_full(&self) -> Result<StatusMap, GitError> {
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

impl Repo {
    /// The first parent of commit `id`.
    pub fn parent_of(&self, id: &str) -> Option<String> {
        let oid = git2::Oid::from_str(id).ok()?;
        self.inner.find_commit(oid).ok()?.parent_id(0).ok().map(|p| p.to_string())
    }

    /// Puts `path`'s index entry back to `HEAD`'s (or removes it when `HEAD`
    /// has none), undoing a `git add` of an interrupted step.
    pub fn reset_index_path(&self, path: &str) -> Result<(), GitError> {
        match self.inner.head().ok().and_then(|h| h.peel(git2::ObjectType::Commit).ok()) {
            Some(head) => self.inner.reset_default(Some(&head), [path])?,
            None => {
                let mut index = self.inner.index()?;
                let _ = index.remove_path(Path::new(path));
                index.write()?;
            }
        }
        Ok(())
    }
}

impl Repo {
    /// Creates a repository with a work tree at `path`, on branch `main`,
    /// with `who` as its configured identity.
    pub fn init(path: &Path, who: &Identity) -> Result<Repo, GitError> {
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("main");
        let inner = git2::Repository::init_opts(path, &opts)?;
        let mut cfg = inner.config()?;
        cfg.set_str("user.name", &who.name)?;
        cfg.set_str("user.email", &who.email)?;
        drop(inner);
        Repo::discover(path)
    }

    /// Commits every file of the work tree (respecting .gitignore).
    pub fn commit_all(
        &self,
        message: &str,
        who: &Identity,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, GitError> {
        let mut index = self.inner.index()?;
        index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
        index.write()?;
        let tree = self.inner.find_tree(index.write_tree()?)?;
        let sig = Repo::signature(who, at)?;
        let parent = self.inner.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        Ok(self.inner.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)?.to_string())
    }
}

/// What git's index records of a file besides its blob: the status data
/// that lets the next `git status` (and the fence) trust a file unchanged
/// without reading it. Truncated to 32 bits as the index stores them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatData {
    pub ctime: (u32, u32),
    pub mtime: (u32, u32),
    pub dev: u32,
    pub ino: u32,
    pub uid: u32,
    pub gid: u32,
}

impl StatData {
    /// The status of an open file, as git would record it.
    pub fn of(st: &rustix::fs::Stat) -> StatData {
        StatData {
            ctime: (st.st_ctime as u32, st.st_ctime_nsec as u32),
            mtime: (st.st_mtime as u32, st.st_mtime_nsec as u32),
            dev: st.st_dev as u32,
            ino: st.st_ino as u32,
            uid: st.st_uid,
            gid: st.st_gid,
        }
    }
}

/// Sets `path`'s index entry to `entry` (or removes it) in the repository
/// at `git_dir`: directly ([`index::update`]), or through libgit2 when the
/// index uses what the direct writer does not write.
fn set_index_entry(
    git_dir: &Path,
    path: &str,
    entry: Option<index::Entry>,
    known: Option<index::Known<'_>>,
) -> Result<(), GitError> {
    match index::update(git_dir, path.as_bytes(), entry.clone(), known) {
        Ok(()) => return Ok(()),
        Err(index::UpdateError::Io(e)) => return Err(GitError::failed(&e.to_string())),
        // A split or sparse index, a SHA-256 repository: libgit2's.
        Err(index::UpdateError::Unsupported(_)) => {}
    }
    let repo = git2::Repository::open(git_dir)?;
    let mut index = repo.index()?;
    match entry {
        Some(e) => index.add(&git2::IndexEntry {
            ctime: git2::IndexTime::new(e.ctime.0 as i32, e.ctime.1),
            mtime: git2::IndexTime::new(e.mtime.0 as i32, e.mtime.1),
            dev: e.dev,
            ino: e.ino,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            file_size: e.size,
            id: git2::Oid::from_bytes(&e.oid)?,
            flags: (path.len().min(0xfff)) as u16,
            flags_extended: 0,
            path: path.as_bytes().to_vec(),
        })?,
        None => {
            let _ = index.remove_path(Path::new(path));
        }
    }
    index.write()?;
    Ok(())
}

impl Repo {
    /// Whether git would show a change at `path` if one happened there:
    /// tracked paths always, untracked ones unless ignored.
    pub fn is_visible(&self, path: &str) -> bool {
        let tracked = self.inner.index().ok().is_some_and(|i| i.get_path(Path::new(path), 0).is_some());
        tracked || !self.inner.is_path_ignored(path).unwrap_or(false)
    }
}

// ---------------------------------------------------------------------------
// Exact commits: the bytes ratchet wrote, on the base it recorded.
// ---------------------------------------------------------------------------

/// Why a step's commit was not made.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("HEAD moved during the step: it is {now}, the step began at {base}")]
    HeadMoved { base: String, now: String },
    #[error(transparent)]
    Git(#[from] GitError),
}

impl From<git2::Error> for CommitError {
    fn from(e: git2::Error) -> Self {
        CommitError::Git(GitError::Git(e))
    }
}

impl crate::error::Coded for CommitError {
    fn code(&self) -> &'static str {
        match self {
            CommitError::HeadMoved { .. } => "HEAD_MOVED",
            CommitError::Git(e) => e.code(),
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            CommitError::HeadMoved { .. } => {
                Some("someone committed while the step ran; nothing was committed — run the step again".into())
            }
            CommitError::Git(e) => e.hint(),
        }
    }
}

/// A file in a commit: its bytes and git file mode (`0o100644`, `0o100755`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub bytes: Vec<u8>,
    pub mode: u32,
}

impl Repo {
    /// The git directory and the common directory (the same for a plain
    /// repository; a linked worktree keeps its HEAD and index in the first,
    /// config, hooks and refs in the second).
    pub fn git_dirs(&self) -> (PathBuf, PathBuf) {
        (self.inner.path().to_path_buf(), self.inner.commondir().to_path_buf())
    }

    /// `path` (repository-relative) in commit `commit`: `None` when absent
    /// or not a regular file.
    pub fn file_at(&self, commit: Option<&str>, path: &str) -> Result<Option<Blob>, GitError> {
        let Some(commit) = commit else { return Ok(None) };
        let tree = self.inner.find_commit(git2::Oid::from_str(commit)?)?.tree()?;
        let entry = match tree.get_path(Path::new(path)) {
            Ok(e) => e,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mode = entry.filemode() as u32;
        if entry.kind() != Some(git2::ObjectType::Blob) || mode & 0o170000 != 0o100000 {
            return Ok(None);
        }
        Ok(Some(Blob { bytes: self.inner.find_blob(entry.id())?.content().to_vec(), mode }))
    }

    /// Whether commit `commit` has anything at `path` (a file, a link, a
    /// directory or a submodule).
    pub fn exists_at(&self, commit: Option<&str>, path: &str) -> Result<bool, GitError> {
        let Some(commit) = commit else { return Ok(false) };
        let tree = self.inner.find_commit(git2::Oid::from_str(commit)?)?.tree()?;
        match tree.get_path(Path::new(path)) {
            Ok(_) => Ok(true),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `path` is in the index.
    pub fn is_tracked(&self, path: &str) -> bool {
        self.inner.index().ok().is_some_and(|i| i.get_path(Path::new(path), 0).is_some())
    }

    /// Whether git ignores `path`.
    pub fn is_ignored(&self, path: &str) -> bool {
        self.inner.is_path_ignored(path).unwrap_or(false)
    }

    /// Commits `bytes` (mode `mode`) at `path` — or the path's removal when
    /// `bytes` is `None` — on `base`, and moves the branch HEAD points to
    /// from `base` to the new commit, atomically: if HEAD is no longer
    /// `base`, nothing is committed (`HEAD_MOVED`). The commit's tree is
    /// `base`'s tree with that one path replaced; the blob is made from
    /// `bytes`, never by reading the work tree. The index entry for `path`
    /// is set to the same blob, so `git status` agrees.
    #[allow(clippy::too_many_arguments)]
    pub fn commit_exact(
        &self,
        base: Option<&str>,
        path: &str,
        bytes: Option<&[u8]>,
        stat: Option<StatData>,
        mode: u32,
        message: &str,
        who: &Identity,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, CommitError> {
        let now = self.head_commit();
        if now.as_deref() != base {
            return Err(CommitError::HeadMoved {
                base: base.unwrap_or("(no commit)").to_string(),
                now: now.unwrap_or_else(|| "(no commit)".into()),
            });
        }
        let parent = base.map(|b| git2::Oid::from_str(b).and_then(|o| self.inner.find_commit(o))).transpose()?;
        let entry = match bytes {
            Some(b) => Some((self.inner.blob(b)?, mode as i32)),
            None => None,
        };
        let tree = parent.as_ref().map(|c| c.tree()).transpose()?;
        let components: Vec<&str> = path.split('/').collect();
        let tree_id = self.tree_with(tree.as_ref(), &components, entry)?;
        let tree = self.inner.find_tree(tree_id)?;
        let sig = Repo::signature(who, at)?;
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        // The commit object first, then the reference moved only from `base`.
        let id = self.inner.commit(None, &sig, &sig, message, &tree, &parents)?;
        let head = self.inner.find_reference("HEAD")?;
        let target = match head.symbolic_target().ok().flatten() {
            Some(name) => name.to_string(),
            None => "HEAD".to_string(),
        };
        let log = format!("ratchet: {}", message.lines().next().unwrap_or(""));
        let moved = match parent.as_ref() {
            Some(p) => self.inner.reference_matching(&target, id, true, p.id(), &log),
            None => self.inner.reference(&target, id, false, &log),
        };
        if let Err(e) = moved {
            return Err(match self.head_commit() {
                Some(now) if Some(now.as_str()) != base => {
                    CommitError::HeadMoved { base: base.unwrap_or("(no commit)").to_string(), now }
                }
                _ => e.into(),
            });
        }
        // The index follows: the same blob at the path (or none), with the
        // file's status as it was verified to hold these bytes (so the next
        // status need not read it again), or none: git and ratchet then
        // read it to compare.
        let st = stat.unwrap_or_default();
        let e = entry.map(|(oid, m)| index::Entry {
            ctime: st.ctime,
            mtime: st.mtime,
            dev: st.dev,
            ino: st.ino,
            uid: st.uid,
            gid: st.gid,
            size: bytes.map_or(0, |b| b.len() as u32),
            ..index::Entry::new(oid.as_bytes().try_into().unwrap_or([0; 20]), m as u32)
        });
        // The index read at the look is used when the file is unchanged;
        // once written, it is stale.
        let read = self.read_index.borrow_mut().take();
        set_index_entry(self.inner.path(), path, e, read.as_ref().and_then(|r| r.known()))?;
        Ok(id.to_string())
    }

    /// Keeps the index a look at the tree read, so that the commit's index
    /// write need not read the file again while it is unchanged.
    pub fn remember_index(&self, snapshot: std::sync::Arc<IndexSnapshot>) {
        *self.read_index.borrow_mut() = Some(snapshot);
    }

    /// Sets `path`'s index entry to its blob in `commit` when the entry
    /// still holds the blob of `commit`'s first parent there (the commit's
    /// own index write never ran); returns whether it did. An entry that is
    /// anything else was staged by someone since, and is left alone.
    pub fn finish_index_entry(&self, commit: &str, path: &str) -> Result<bool, GitError> {
        let commit = self.inner.find_commit(git2::Oid::from_str(commit)?)?;
        let blob_in = |tree: Option<git2::Tree>| -> Option<(git2::Oid, i32)> {
            tree.and_then(|t| t.get_path(Path::new(path)).ok()).map(|e| (e.id(), e.filemode()))
        };
        let new = blob_in(commit.tree().ok());
        let old = blob_in(commit.parent(0).ok().and_then(|p| p.tree().ok()));
        let mut index = self.inner.index()?;
        index.read(true)?;
        let now = index.get_path(Path::new(path), 0).map(|e| e.id);
        if now == new.map(|n| n.0) || now != old.map(|o| o.0) {
            return Ok(false);
        }
        // No stat data: git and ratchet read the file to compare.
        let entry = new.map(|(oid, mode)| index::Entry::new(oid.as_bytes().try_into().unwrap_or([0; 20]), mode as u32));
        set_index_entry(self.inner.path(), path, entry, None)?;
        Ok(true)
    }

    /// Moves HEAD's branch back from `from` to `to`, only if it is still
    /// `from` (undoing a step commit whose entry could not be logged).
    pub fn move_head_back(&self, from: &str, to: Option<&str>) -> Result<(), GitError> {
        let Some(to) = to else { return Err(git2::Error::from_str("cannot undo the first commit").into()) };
        let head = self.inner.find_reference("HEAD")?;
        let target = head.symbolic_target().ok().flatten().map(str::to_string).unwrap_or_else(|| "HEAD".into());
        self.inner.reference_matching(
            &target,
            git2::Oid::from_str(to)?,
            true,
            git2::Oid::from_str(from)?,
            "ratchet: undo a step commit that could not be logged",
        )?;
        Ok(())
    }

    /// The paths in which commit `id` differs from its first parent (all
    /// of them, for a root commit), and whether it has one parent.
    pub fn changed_paths(&self, id: &str) -> Result<(Vec<String>, bool), GitError> {
        let commit = self.inner.find_commit(git2::Oid::from_str(id)?)?;
        let single = commit.parent_count() == 1;
        let old = if commit.parent_count() > 0 { Some(commit.parent(0)?.tree()?) } else { None };
        let diff = self.inner.diff_tree_to_tree(old.as_ref(), Some(&commit.tree()?), None)?;
        let mut out = Vec::new();
        for d in diff.deltas() {
            for f in [d.old_file(), d.new_file()] {
                if let Some(p) = f.path().and_then(|p| p.to_str()) {
                    if !out.iter().any(|x: &String| x == p) {
                        out.push(p.to_string());
                    }
                }
            }
        }
        Ok((out, single))
    }

    /// Commits reachable from HEAD and newer than `stop` (oldest first),
    /// with one parent each: the candidates for a revert.
    pub fn commits_since(&self, stop: Option<&str>) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, GitError> {
        let mut walk = self.inner.revwalk()?;
        if walk.push_head().is_err() {
            return Ok(Vec::new());
        }
        if let Some(stop) = stop.and_then(|s| git2::Oid::from_str(s).ok()) {
            let _ = walk.hide(stop);
        }
        let mut out = Vec::new();
        for oid in walk {
            let commit = self.inner.find_commit(oid?)?;
            if commit.parent_count() == 1 {
                let time = chrono::DateTime::from_timestamp(commit.time().seconds(), 0).unwrap_or_default();
                out.push((commit.id().to_string(), time));
            }
        }
        out.reverse();
        Ok(out)
    }
}

impl Repo {
    /// The value of trailer `key` in commit `id`'s final trailer block (as
    /// git reads trailers: words elsewhere in the message do not count).
    pub fn trailer_of(&self, id: &str, key: &str) -> Option<String> {
        let commit = self.inner.find_commit(git2::Oid::from_str(id).ok()?).ok()?;
        let message = commit.message_raw().ok()?;
        let trailers = git2::message_trailers_strs(message).ok()?;
        trailers.iter().filter(|(k, _)| *k == key).map(|(_, v)| v.trim().to_string()).next_back()
    }
}

impl Repo {
    /// Whether `commit` is a step commit as the log describes it: in HEAD's
    /// history, and differing from `base` in exactly `path`. `Err` says what
    /// is wrong (a missing, amended or foreign commit).
    pub fn check_step_commit(&self, commit: &str, base: Option<&str>, path: &str) -> Result<(), String> {
        let short = &commit[..commit.len().min(12)];
        let oid = git2::Oid::from_str(commit).map_err(|_| format!("{short:?} is not a commit id"))?;
        let c = self.inner.find_commit(oid).map_err(|_| format!("its commit {short} is not in the repository"))?;
        if !self.is_ancestor_of_head(commit) {
            return Err(format!("its commit {short} is not in the history of HEAD"));
        }
        let base_tree = match base {
            Some(b) => {
                let b = git2::Oid::from_str(b).map_err(|_| format!("its base {b:?} is not a commit id"))?;
                Some(self.inner.find_commit(b).and_then(|b| b.tree()).map_err(|e| format!("its base: {e}"))?)
            }
            None => None,
        };
        let tree = c.tree().map_err(|e| e.to_string())?;
        let diff = self.inner.diff_tree_to_tree(base_tree.as_ref(), Some(&tree), None).map_err(|e| e.to_string())?;
        let paths: Vec<String> = diff
            .deltas()
            .filter_map(|d| d.new_file().path().or(d.old_file().path()).map(|p| p.to_string_lossy().into_owned()))
            .collect();
        if paths != [path] {
            return Err(format!(
                "its commit {short} changes {} on its base, not exactly {path}",
                if paths.is_empty() { "nothing".to_string() } else { paths.join(", ") }
            ));
        }
        Ok(())
    }
}

/// Runs the git command line in `dir` for a test, without the user's or
/// the system's config, as a fixed identity; panics with its stderr when it
/// fails.
#[cfg(test)]
pub fn git_cli(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[cfg(test)]
mod tests {
    use super::git_cli as git;
    use super::*;

    #[test]
    fn a_step_commit_whose_index_write_never_ran_gets_its_entry_and_nothing_staged_since_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        let who = Identity { name: "t".into(), email: "t@example.com".into() };
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let repo = Repo::init(dir.path(), &who).unwrap();
        std::fs::write(dir.path().join("notes.md"), "one\n").unwrap();
        let base = repo.commit_all("base", &who, at).unwrap();
        std::fs::write(dir.path().join("notes.md"), "one\ntwo\n").unwrap();
        let commit =
            repo.commit_exact(Some(&base), "notes.md", Some(b"one\ntwo\n"), None, 0o100644, "step", &who, at).unwrap();
        assert_eq!(git(dir.path(), &["diff-index", "--cached", "HEAD"]), "");
        // As if the process stopped between moving the branch and the index.
        git(dir.path(), &["reset", "-q", &base, "--", "notes.md"]);
        assert_ne!(git(dir.path(), &["diff-index", "--cached", "HEAD"]), "");
        assert!(repo.finish_index_entry(&commit, "notes.md").unwrap());
        assert_eq!(git(dir.path(), &["diff-index", "--cached", "HEAD"]), "");
        assert_eq!(git(dir.path(), &["status", "--porcelain"]), "");
        assert!(!repo.finish_index_entry(&commit, "notes.md").unwrap(), "already right");
        // What someone staged since is theirs.
        std::fs::write(dir.path().join("notes.md"), "theirs\n").unwrap();
        git(dir.path(), &["add", "notes.md"]);
        assert!(!repo.finish_index_entry(&commit, "notes.md").unwrap());
        assert_eq!(git(dir.path(), &["status", "--porcelain"]), "M  notes.md\n");
    }
}

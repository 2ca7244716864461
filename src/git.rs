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

// ---------------------------------------------------------------------------
// A fast `git status` for the step's two looks at the tree.
// ---------------------------------------------------------------------------

/// Entry flag: the path is not checked out (sparse checkout); git does not
/// compare it with the work tree.
const SKIP_WORKTREE: u16 = 1 << 14;
const GITLINK: u32 = 0o160000;

/// A tracked path with what the index remembers of its file.
struct Tracked {
    path: String,
    mtime: (i32, u32),
    ctime: (i32, u32),
    size: u32,
    ino: u32,
    mode: u32,
}

impl Tracked {
    /// Whether the file's stat might differ from what the index holds, so
    /// that only libgit2 can tell (stat mismatch, or racily clean).
    fn needs_a_look(&self, st: &rustix::fs::Stat, index_mtime: (i64, i64)) -> bool {
        let kind = st.st_mode & 0o170000;
        let mode = match kind {
            0o120000 => 0o120000,
            0o040000 => GITLINK,
            _ if st.st_mode & 0o111 != 0 => 0o100755,
            _ => 0o100644,
        };
        let racy = (self.mtime.0 as i64, self.mtime.1 as i64) >= index_mtime;
        racy || mode != self.mode
            || st.st_size as u32 != self.size
            || st.st_ino as u32 != self.ino
            || (st.st_mtime as i32, st.st_mtime_nsec as u32) != self.mtime
            || (st.st_ctime as i32, st.st_ctime_nsec as u32) != self.ctime
    }
}

/// What the index says, read once: the tracked files to compare with the
/// tree, the paths only libgit2 can judge, and every directory holding a
/// tracked file.
pub struct IndexSnapshot {
    tracked: Vec<Tracked>,
    look: std::collections::BTreeSet<String>,
    /// Every path in the index (tracked, conflicted, sparse), sorted.
    known: Vec<Box<str>>,
    pub dirs: std::collections::BTreeSet<String>,
    index_mtime: (i64, i64),
}

impl IndexSnapshot {
    /// Every path in the index, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.known.iter().map(|p| &**p)
    }
}

/// The parent directory of a repository-relative path (`""` at the root).
fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

impl Repo {
    /// Reads the index once (see [`IndexSnapshot`]).
    pub fn index_snapshot(&self) -> Result<IndexSnapshot, GitError> {
        let index = self.inner.index()?;
        let index_mtime = std::fs::metadata(self.inner.path().join("index"))
            .map(|m| {
                use std::os::unix::fs::MetadataExt;
                (m.mtime(), m.mtime_nsec())
            })
            .unwrap_or((i64::MAX, 0));
        let mut snap = IndexSnapshot {
            tracked: Vec::with_capacity(index.len()),
            look: Default::default(),
            known: Vec::with_capacity(index.len()),
            dirs: Default::default(),
            index_mtime,
        };
        for e in index.iter() {
            let path = String::from_utf8_lossy(&e.path).into_owned();
            let mut dir = parent(&path);
            while !dir.is_empty() && !snap.dirs.contains(dir) {
                snap.dirs.insert(dir.to_string());
                dir = parent(dir);
            }
            if snap.known.last().is_none_or(|last| **last != *path) {
                snap.known.push(path.as_str().into());
            }
            let stage = (e.flags >> 12) & 0x3;
            if std::str::from_utf8(&e.path).is_err()
                || stage != 0
                || e.mode == GITLINK
                || e.flags_extended & !SKIP_WORKTREE != 0
            {
                snap.look.insert(path);
            } else if e.flags_extended & SKIP_WORKTREE == 0 {
                snap.tracked.push(Tracked {
                    path,
                    mtime: (e.mtime.seconds(), e.mtime.nanoseconds()),
                    ctime: (e.ctime.seconds(), e.ctime.nanoseconds()),
                    size: e.file_size,
                    ino: e.ino,
                    mode: e.mode,
                });
            }
        }
        // The index is sorted by path bytes; keep it so for the searches.
        snap.known.sort_unstable();
        Ok(snap)
    }

    /// The same map as [`Repo::status_full`], computed faster on large trees
    /// (see [`Repo::status_from`]).
    pub fn status_fast(&self) -> Result<StatusMap, GitError> {
        let snap = self.index_snapshot()?;
        self.status_from(&snap)
    }

    /// The status, from an index read with [`Repo::index_snapshot`]: every
    /// tracked file is `stat`ed (on two threads, relative to its directory)
    /// and compared with the stat data in the index, as git does; libgit2 is
    /// asked about a path only when that comparison cannot clear it, when
    /// the index differs from `HEAD` there, or when an untracked file turns
    /// up.
    pub fn status_from(&self, snap: &IndexSnapshot) -> Result<StatusMap, GitError> {
        let mut look = snap.look.clone();
        // Staged changes: the index's tree differs from HEAD's.
        // (A diff of HEAD's tree against the index costs under a millisecond
        // on 10,000 files; writing the index's tree first would cost five
        // when the index holds no valid tree cache.)
        let head_tree = self.inner.head().ok().and_then(|h| h.peel_to_tree().ok());
        let index = self.inner.index()?;
        let diff = self.inner.diff_tree_to_index(head_tree.as_ref(), Some(&index), None)?;
        for d in diff.deltas() {
            for f in [d.old_file().path(), d.new_file().path()].into_iter().flatten() {
                look.insert(f.to_string_lossy().replace('\\', "/"));
            }
        }
        // Tracked files, on two threads; untracked ones, on this one.
        let root = &self.workdir;
        let (a, b) = snap.tracked.split_at(snap.tracked.len() / 2);
        let index_mtime = snap.index_mtime;
        let scan = |part: &[Tracked]| -> Vec<String> {
            let mut out = Vec::new();
            let mut open: Option<(String, Option<rustix::fd::OwnedFd>)> = None;
            for t in part {
                let (dir, name) = t.path.rsplit_once('/').unwrap_or(("", t.path.as_str()));
                if open.as_ref().is_none_or(|(d, _)| d != dir) {
                    let abs = if dir.is_empty() { root.clone() } else { root.join(dir) };
                    let flags = rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC;
                    open = Some((dir.to_string(), rustix::fs::open(&abs, flags, rustix::fs::Mode::empty()).ok()));
                }
                let st = match open.as_ref().and_then(|(_, fd)| fd.as_ref()) {
                    Some(fd) => rustix::fs::statat(fd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW),
                    None => Err(rustix::io::Errno::NOENT),
                };
                if st.is_ok_and(|st| !t.needs_a_look(&st, index_mtime)) {
                    continue;
                }
                out.push(t.path.clone());
            }
            out
        };
        let (from_a, from_b, untracked) = std::thread::scope(|s| {
            let ha = s.spawn(|| scan(a));
            let hb = s.spawn(|| scan(b));
            let untracked = self.untracked(snap);
            (ha.join(), hb.join(), untracked)
        });
        look.extend(from_a.map_err(|_| git2::Error::from_str("a status thread panicked"))?);
        look.extend(from_b.map_err(|_| git2::Error::from_str("a status thread panicked"))?);
        let mut out = StatusMap::new();
        for path in untracked? {
            out.insert(path, git2::Status::WT_NEW.bits());
        }
        for path in look {
            let status = match self.inner.status_file(Path::new(&path)) {
                Ok(s) => s,
                Err(e) if e.code() == git2::ErrorCode::NotFound => continue,
                // A path libgit2 will not judge alone (a directory): fall back.
                Err(_) => return self.status_full(),
            };
            if !status.is_empty() && !status.contains(git2::Status::IGNORED) {
                out.insert(path, status.bits());
            }
        }
        Ok(out)
    }

    /// Untracked, unignored files (and nested repositories, as `dir/`).
    fn untracked(&self, snap: &IndexSnapshot) -> Result<Vec<String>, GitError> {
        use rustix::fs::FileType;
        let mut out = Vec::new();
        let mut stack = vec![String::new()];
        let mut rel = String::new();
        while let Some(dir) = stack.pop() {
            let abs = if dir.is_empty() { self.workdir.clone() } else { self.workdir.join(&dir) };
            let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC;
            let Ok(fd) = rustix::fs::open(&abs, flags, rustix::fs::Mode::empty()) else { continue };
            let Ok(mut entries) = rustix::fs::Dir::new(fd) else { continue };
            while let Some(Ok(entry)) = entries.read() {
                let Ok(name) = entry.file_name().to_str() else { continue };
                if name == "." || name == ".." || (dir.is_empty() && name == ".git") {
                    continue;
                }
                rel.clear();
                if !dir.is_empty() {
                    rel.push_str(&dir);
                    rel.push('/');
                }
                rel.push_str(name);
                let kind = match entry.file_type() {
                    FileType::Unknown => {
                        rustix::fs::statat(rustix::fs::CWD, abs.join(name), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                            .map(|st| FileType::from_raw_mode(st.st_mode))
                            .unwrap_or(FileType::Unknown)
                    }
                    k => k,
                };
                if kind == FileType::Directory {
                    if snap.dirs.contains(rel.as_str()) {
                        stack.push(rel.clone());
                    } else if !self.inner.is_path_ignored(format!("{rel}/")).unwrap_or(false) {
                        let inner = abs.join(name);
                        if inner.join(".git").exists() {
                            // A nested repository shows as one entry, once it holds anything.
                            let holds = std::fs::read_dir(&inner)
                                .map(|mut d| d.any(|e| e.is_ok_and(|e| e.file_name() != ".git")));
                            if holds.unwrap_or(false) {
                                out.push(format!("{rel}/"));
                            }
                        } else {
                            stack.push(rel.clone());
                        }
                    }
                } else if snap.known.binary_search_by(|k| (**k).cmp(rel.as_str())).is_err()
                    && !self.inner.is_path_ignored(&rel).unwrap_or(false)
                {
                    out.push(rel.clone());
                }
            }
        }
        Ok(out)
    }
}

impl Repo {
    /// Whether git would show a change at `path` if one happened there:
    /// tracked paths always, untracked ones unless ignored.
    pub fn is_visible(&self, path: &str) -> bool {
        let tracked = self.inner.index().ok().is_some_and(|i| i.get_path(Path::new(path), 0).is_some());
        tracked || !self.inner.is_path_ignored(path).unwrap_or(false)
    }
}

//! The fence: nothing a provider or the checks change goes unnoticed
//! (DESIGN §6a; path safety's step 4).
//!
//! At the start of a step (before any child runs) the fence looks at what
//! a child could change to get something past the rails, and remembers it:
//!
//! - the work tree: git's status of every path (read once, each directory
//!   watched with inotify from just before it is looked at), so that every
//!   change since — tracked, untracked, and new files git ignores inside
//!   allowlisted folders — is seen;
//! - git's control files, which run code or redirect history on the user's
//!   next git command: `config`, `hooks/`, `info/`, `HEAD`, `packed-refs`,
//!   `refs/`, `objects/info/` (alternates), the index;
//! - ratchet's own state in the tree: `logs/` (but the checks' output in
//!   `logs/runs/`) and `.ratchet/` (but the lock files and the LoopKit
//!   database, which a running `ratchet serve` writes).
//!
//! [`Fence::check`] after the provider answered allows no change at all;
//! after the checks it allows the patch's own path (and its temp files),
//! and new ignored files matching the checks' outputs (`__pycache__`, ...).
//! Anything else fails the step with `UNEXPECTED_CHANGES`, and
//! [`Fence::restore`] puts back what it can: a tracked file that was clean
//! gets its `HEAD` bytes again, a new file is removed, a control file gets
//! its remembered bytes (or is removed when it is new). What cannot be put
//! back (a file that was already dirty) is named.
//!
//! The sandbox makes most of this impossible to begin with (the control
//! files and ratchet's state are read-only or hidden from children); the
//! fence is what still holds with `[sandbox] mode = "off"`, and what proves
//! the sandbox held.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::git::watch::Watch;
use crate::git::{IndexSnapshot, Repo, StatusMap};
use crate::rails::{PathClass, PathPolicy, PatternSet};

/// Control files larger than this are remembered by their stat data only
/// (a change is still seen; it cannot be undone).
const KEEP_BYTES: u64 = 1 << 20;

/// New ignored files the checks may leave inside allowlisted folders:
/// caches of test runners and interpreters.
pub const CHECKS_OUTPUTS: &[&str] = &[
    "**/__pycache__",
    "**/__pycache__/**",
    "**/*.pyc",
    "**/.pytest_cache",
    "**/.pytest_cache/**",
    "**/.mypy_cache",
    "**/.mypy_cache/**",
    "**/.ruff_cache",
    "**/.ruff_cache/**",
    "**/.hypothesis",
    "**/.hypothesis/**",
    "**/.coverage",
    "**/node_modules/.cache",
    "**/node_modules/.cache/**",
];

/// git's status of the work tree, each folder watched from just before it
/// is read (no watch when inotify cannot be used or missed a folder).
fn look_at_tree(repo: &Repo, snap: &IndexSnapshot) -> Result<(StatusMap, Option<Watch>), crate::git::GitError> {
    let watch = Watch::new().ok();
    let (before, watch_failed) = repo.status_watched(snap, watch.as_ref())?;
    Ok((before, watch.filter(|_| watch_failed.is_none())))
}

/// A look at the tree under way on another thread ([`Fence::start`]).
pub struct Looking {
    /// The index it read, sent as soon as it is read.
    snapshot: std::sync::mpsc::Receiver<std::sync::Arc<IndexSnapshot>>,
    handle: Option<std::thread::JoinHandle<Result<TreeLook, crate::git::GitError>>>,
}

/// What the thread of a [`Looking`] found.
struct TreeLook {
    before: StatusMap,
    watch: Option<Watch>,
    snapshot: std::sync::Arc<IndexSnapshot>,
}

impl Looking {
    /// The index as the look read it (for the context's file list).
    pub fn snapshot(&mut self) -> Result<std::sync::Arc<IndexSnapshot>, crate::git::GitError> {
        match self.snapshot.recv() {
            Ok(snap) => Ok(snap),
            // The thread ended before reading the index: its error says why.
            Err(_) => match self.finished() {
                Err(e) => Err(e),
                Ok(_) => Err(crate::git::GitError::failed("the look at the tree read no index")),
            },
        }
    }

    fn finished(&mut self) -> Result<TreeLook, crate::git::GitError> {
        match self.handle.take() {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(crate::git::GitError::failed("the look at the tree stopped unexpectedly"))),
            None => Err(crate::git::GitError::failed("the look at the tree was already waited for")),
        }
    }

    /// Waits for the look and finishes the fence. What changed in the tree
    /// since the look began was changed before any child ran (ratchet's own
    /// start-up, or the user): it counts as changed before the step, so it
    /// is neither blamed on a child nor ever put back. Without a watch the
    /// tree is looked at again, here.
    pub fn join(mut self, repo: &Repo, home_rel: &str) -> Result<Fence, crate::git::GitError> {
        let look = self.finished()?;
        let Some(watch) = look.watch else {
            return Fence::take_from(repo, home_rel, look.snapshot);
        };
        let mut before = look.before;
        match watch.changes() {
            Ok(meanwhile) => {
                // git's status bits: new in the work tree, modified in it.
                const NEW: u32 = 1 << 7;
                const MODIFIED: u32 = 1 << 8;
                // As git's status would show them: ignored files stay out.
                for (path, created) in meanwhile {
                    if is_ratchet_state(&path) || (!repo.is_tracked(&path) && repo.is_ignored(&path)) {
                        continue;
                    }
                    before.entry(path).or_insert(if created { NEW } else { MODIFIED });
                }
            }
            Err(_) => return Fence::take_from(repo, home_rel, look.snapshot),
        }
        Ok(Fence::finish(repo, home_rel, before, Some(watch)))
    }
}

/// What a control file was at the start.
#[derive(Clone, Debug, PartialEq)]
enum Was {
    Absent,
    File { stamp: Stamp, bytes: Option<Vec<u8>>, mode: u32 },
    Other { stamp: Stamp },
}

/// The stat data that tells a file changed (ctime cannot be set back by
/// user space).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    mode: u32,
}

fn stamp(m: &std::fs::Metadata) -> Stamp {
    Stamp {
        ino: m.ino(),
        size: m.size(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
        mode: m.mode(),
    }
}

/// One guarded file outside the work tree's status (or in an ignored part of it).
#[derive(Clone, Debug)]
struct Guarded {
    /// How messages name it (`.git/hooks/pre-commit`, `logs/pending/s3.json`).
    label: String,
    abs: PathBuf,
    was: Was,
}

/// Where the fence is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The provider answered: nothing may have changed.
    Proposed,
    /// The patch is applied and the checks ran: only the patch's path.
    Checked,
}

/// What changed that should not have, and what could be put back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Breach {
    /// Every unexpected change, repository-relative (or `.git/...`).
    pub changed: Vec<String>,
    /// Those that could not be put back, with why.
    pub unrestored: Vec<String>,
}

impl Breach {
    /// One sentence naming the changes.
    pub fn describe(&self) -> String {
        let mut shown: Vec<&str> = self.changed.iter().take(8).map(String::as_str).collect();
        if self.changed.len() > 8 {
            shown.push("…");
        }
        let mut s = format!("something besides the patch changed: {}", shown.join(", "));
        if self.unrestored.is_empty() {
            s.push_str("; it was put back");
        } else {
            s.push_str(&format!("; could not be put back: {}", self.unrestored.join(", ")));
        }
        s
    }
}

/// The look at the tree and the control files when a step began.
pub struct Fence {
    root: PathBuf,
    /// `git status` at the start.
    pub before: StatusMap,
    /// Watching the tree since (absent when inotify could not be used, or
    /// missed a directory: then the tree is scanned again instead).
    watch: Option<Watch>,
    guarded: Vec<Guarded>,
    home_rel: String,
    /// The patch's path, once one is applied; and directories made for it.
    target: Option<(String, Vec<String>)>,
    outputs: PatternSet,
    /// The checks' own output file, which they write.
    run_log: Option<String>,
}

impl Fence {
    /// Looks at the tree once, watching each directory from just before it
    /// is looked at, and remembers the control files and ratchet's state.
    pub fn take(repo: &Repo, home_rel: &str) -> Result<Fence, crate::git::GitError> {
        Fence::take_from(repo, home_rel, std::sync::Arc::new(repo.index_snapshot()?))
    }

    /// The look at the work tree of [`Fence::take`], started on another
    /// thread (through a handle of its own on the repository) as soon as the
    /// workspace is locked: the step checks the rails, opens the log, picks
    /// and builds the context meanwhile. [`Looking::join`] finishes it —
    /// the control files are looked at then, after ratchet's own start-up
    /// writes — and is waited for before any child starts.
    pub fn start(root: &Path) -> Looking {
        let root = root.to_path_buf();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let handle = std::thread::spawn(move || {
            let repo = Repo::discover(&root)?;
            let snap = std::sync::Arc::new(repo.index_snapshot()?);
            let _ = tx.send(snap.clone());
            let (before, watch) = look_at_tree(&repo, &snap)?;
            Ok(TreeLook { before, watch, snapshot: snap })
        });
        Looking { snapshot: rx, handle: Some(handle) }
    }

    fn take_from(
        repo: &Repo,
        home_rel: &str,
        snap: std::sync::Arc<IndexSnapshot>,
    ) -> Result<Fence, crate::git::GitError> {
        let (before, watch) = look_at_tree(repo, &snap)?;
        Ok(Fence::finish(repo, home_rel, before, watch))
    }

    /// The fence from a look at the tree: the control files and ratchet's
    /// state are looked at now.
    fn finish(repo: &Repo, home_rel: &str, before: StatusMap, watch: Option<Watch>) -> Fence {
        let root = repo.workdir().to_path_buf();
        let guarded = guard_list(repo, &root, home_rel);
        let outputs = PatternSet::new(&CHECKS_OUTPUTS.iter().map(|s| s.to_string()).collect::<Vec<_>>(), false)
            .expect("the checks' output patterns compile");
        Fence { root, before, watch, guarded, home_rel: home_rel.to_string(), target: None, outputs, run_log: None }
    }

    /// The patch's path is now expected to change (with the directories
    /// its `create` made).
    pub fn expect_target(&mut self, path: &str, created: &[String]) {
        self.target = Some((path.to_string(), created.to_vec()));
    }

    /// The checks write their output to `rel` (repository-relative).
    pub fn expect_run_log(&mut self, rel: &str) {
        self.run_log = Some(rel.to_string());
    }

    /// Checks for changes since the start (tree) and since the last check
    /// (the watch's events are drained each time); puts back what it can.
    pub fn check(&mut self, repo: &Repo, policy: &PathPolicy, phase: Phase) -> Result<(), Breach> {
        let (tree_changes, control) = self.look(repo, policy, phase);
        let mut changed: Vec<String> = tree_changes.iter().map(|(p, _)| p.clone()).collect();
        changed.extend(control.iter().map(|g| g.label.clone()));
        if changed.is_empty() {
            return Ok(());
        }
        changed.sort();
        changed.dedup();
        let mut unrestored = Vec::new();
        // Git's files first: an index a child staged things in is put back
        // before the tree is compared with HEAD.
        for g in &control {
            if let Err(why) = restore_guarded(g) {
                unrestored.push(format!("{} ({why})", g.label));
            }
        }
        for (path, created) in &tree_changes {
            if let Err(why) = self.restore_tree_path(repo, path, *created) {
                unrestored.push(format!("{path} ({why})"));
            }
        }
        Err(Breach { changed, unrestored })
    }

    /// What changed since the start that nothing is expected to change,
    /// without putting anything back: for the time a human took at Gate 2,
    /// when a change may be theirs (a commit from another terminal) and is
    /// not the fence's to undo.
    pub fn changed(&mut self, repo: &Repo, policy: &PathPolicy) -> Vec<String> {
        let (tree, control) = self.look(repo, policy, Phase::Proposed);
        let mut changed: Vec<String> = tree.into_iter().map(|(p, _)| p).collect();
        changed.extend(control.into_iter().map(|g| g.label));
        changed.sort();
        changed.dedup();
        changed
    }

    /// The tree paths and control files changed against what `phase` allows.
    fn look(&mut self, repo: &Repo, policy: &PathPolicy, phase: Phase) -> (Vec<(String, bool)>, Vec<Guarded>) {
        let tree = self.tree_changes(repo, policy, phase);
        let mut control: Vec<Guarded> = self.guarded.iter().filter(|g| self.changed_guard(g)).cloned().collect();
        control.extend(self.new_guarded(repo));
        (tree, control)
    }

    /// Tree paths changed against what `phase` allows, each with whether it
    /// is new since the start.
    fn tree_changes(&self, repo: &Repo, policy: &PathPolicy, phase: Phase) -> Vec<(String, bool)> {
        let allowed = |p: &str| -> bool {
            if phase == Phase::Checked {
                if let Some((target, created)) = &self.target {
                    if crate::git::watch::expected(p, target, created) {
                        return true;
                    }
                }
                if self.run_log.as_deref() == Some(p) {
                    return true;
                }
            }
            false
        };
        // A change git would show, or a new ignored path inside an
        // allowlisted folder (the checks may leave their caches).
        let counts = |p: &str| -> bool {
            if allowed(p) {
                return false;
            }
            if repo.is_tracked(p) || !repo.is_ignored(p) {
                return true;
            }
            let inside = matches!(policy.classify(p), PathClass::Allowed(_))
                || policy.allow.patterns().iter().any(|a| a.starts_with(&format!("{p}/")));
            inside && !(phase == Phase::Checked && self.outputs.is_match(p))
        };
        // git's status bits: new in the work tree, new in the index.
        const NEW: u32 = 1 << 7;
        const STAGED_NEW: u32 = 1;
        match self.watch.as_ref().map(Watch::changes) {
            Some(Ok(events)) => events.into_iter().filter(|(p, _)| !is_ratchet_state(p) && counts(p)).collect(),
            _ => match repo.status() {
                Ok(after) => {
                    let mut out: Vec<(String, bool)> = after
                        .iter()
                        .filter(|(p, bits)| self.before.get(*p) != Some(*bits) && counts(p))
                        .map(|(p, bits)| (p.clone(), !self.before.contains_key(p) && bits & (NEW | STAGED_NEW) != 0))
                        .collect();
                    out.extend(
                        self.before.keys().filter(|p| !after.contains_key(*p) && counts(p)).map(|p| (p.clone(), false)),
                    );
                    out
                }
                Err(e) => vec![(format!("(the tree could not be read again: {e})"), false)],
            },
        }
    }

    fn changed_guard(&self, g: &Guarded) -> bool {
        match (std::fs::symlink_metadata(&g.abs), &g.was) {
            (Err(_), Was::Absent) => false,
            (Err(_), _) | (Ok(_), Was::Absent) => true,
            (Ok(m), Was::File { stamp: s, .. } | Was::Other { stamp: s }) => stamp(&m) != *s,
        }
    }

    /// Files that appeared in a guarded directory since the start (listed,
    /// not read: what was absent is put back by removing it).
    fn new_guarded(&self, repo: &Repo) -> Vec<Guarded> {
        let known: std::collections::HashSet<&Path> = self.guarded.iter().map(|g| g.abs.as_path()).collect();
        guard_paths(repo, &self.root, &self.home_rel)
            .into_iter()
            .filter(|(_, abs)| !known.contains(abs.as_path()))
            .map(|(label, abs)| Guarded { label, abs, was: Was::Absent })
            .filter(|g| std::fs::symlink_metadata(&g.abs).is_ok())
            .collect()
    }

    /// Puts a tree path back: a file of `HEAD` that was clean gets `HEAD`'s
    /// bytes; a path created since the start is removed; anything else
    /// (a file that was already dirty, one that existed but is in no
    /// commit) cannot be, and is named.
    fn restore_tree_path(&self, repo: &Repo, path: &str, created: bool) -> Result<(), String> {
        if self.before.contains_key(path) && !created {
            return Err("it had uncommitted changes before the step".into());
        }
        let head = repo.head_commit();
        match repo.file_at(head.as_deref(), path).map_err(|e| e.to_string())? {
            Some(blob) => crate::patch::put_back(&self.root, path, &blob.bytes, blob.mode & 0o777),
            None if created => crate::patch::remove_new(&self.root, path),
            None => return Err("it existed before the step and is in no commit".into()),
        }
        .map_err(|e| e.to_string())
    }
}

/// Paths in the work tree that are ratchet's own and watched elsewhere.
fn is_ratchet_state(p: &str) -> bool {
    p == ".ratchet" || p.starts_with(".ratchet/") || p.ends_with("/.ratchet") || p.contains("/.ratchet/")
}

fn restore_guarded(g: &Guarded) -> Result<(), String> {
    match &g.was {
        Was::Absent => match std::fs::symlink_metadata(&g.abs) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&g.abs).map_err(|e| e.to_string()),
            Ok(_) => std::fs::remove_file(&g.abs).map_err(|e| e.to_string()),
            Err(_) => Ok(()),
        },
        Was::File { bytes: Some(bytes), mode, .. } => {
            if std::fs::symlink_metadata(&g.abs).is_ok_and(|m| m.is_dir() || m.file_type().is_symlink()) {
                let _ = std::fs::remove_dir_all(&g.abs).or_else(|_| std::fs::remove_file(&g.abs));
            }
            crate::fsutil::write_file(&g.abs, bytes, crate::fsutil::Durability::Flushed)
                .and_then(|()| {
                    std::fs::set_permissions(&g.abs, std::os::unix::fs::PermissionsExt::from_mode(*mode & 0o7777))
                })
                .map_err(|e| e.to_string())
        }
        Was::File { bytes: None, .. } => Err("it is too large to have been remembered".into()),
        Was::Other { .. } => Err("it is not a regular file".into()),
    }
}

/// The control files and ratchet's state, as they are now.
fn guard_list(repo: &Repo, root: &Path, home_rel: &str) -> Vec<Guarded> {
    guard_paths(repo, root, home_rel).into_iter().map(|(label, abs)| Guarded { label, was: was(&abs), abs }).collect()
}

/// The control files and ratchet's state that exist now: each one's label
/// and absolute path.
fn guard_paths(repo: &Repo, root: &Path, home_rel: &str) -> Vec<(String, PathBuf)> {
    let (gitdir, common) = repo.git_dirs();
    let mut out = Vec::new();
    let label_git = |abs: &Path| -> String {
        let rel = abs.strip_prefix(&common).or_else(|_| abs.strip_prefix(&gitdir)).unwrap_or(abs);
        format!(".git/{}", rel.display())
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for f in ["config", "packed-refs", "commondir"] {
        files.push(common.join(f));
    }
    for f in ["HEAD", "index", "gitdir", "config.worktree"] {
        files.push(gitdir.join(f));
    }
    for d in ["hooks", "info", "refs", "objects/info"] {
        walk_files(&common.join(d), &mut files, 4096);
    }
    if gitdir != common {
        walk_files(&gitdir.join("refs"), &mut files, 4096);
    }
    files.sort();
    files.dedup();
    for abs in files {
        out.push((label_git(&abs), abs));
    }
    // ratchet's state in the tree: logs/ (but the checks' output) and .ratchet/.
    let home = if home_rel.is_empty() { root.to_path_buf() } else { root.join(home_rel) };
    let mut state = Vec::new();
    walk_files(&home.join("logs"), &mut state, 100_000);
    walk_files(&home.join(".ratchet"), &mut state, 10_000);
    for abs in state {
        let rel = abs.strip_prefix(root).unwrap_or(&abs).to_string_lossy().replace('\\', "/");
        let under_home = abs.strip_prefix(&home).unwrap_or(&abs).to_string_lossy().into_owned();
        if ratchet_writes(&under_home) {
            continue;
        }
        out.push((rel, abs));
    }
    out
}

/// Files in the home that ratchet (or a running `ratchet serve`) writes
/// during a step, which the fence leaves alone.
fn ratchet_writes(under_home: &str) -> bool {
    under_home.starts_with("logs/runs/")
        || under_home.starts_with("logs/quarantine/")
        || matches!(under_home, ".ratchet/lock" | ".ratchet/journal.lock" | ".ratchet/checkpoint")
        || under_home.starts_with(".ratchet/loopkit.db")
        || under_home.starts_with(".ratchet/agents")
        || under_home.ends_with(".tmp")
        || under_home.contains("/.checkpoint.")
}

fn was(abs: &Path) -> Was {
    match std::fs::symlink_metadata(abs) {
        Err(_) => Was::Absent,
        Ok(m) if m.file_type().is_file() => {
            let bytes = (m.size() <= KEEP_BYTES).then(|| std::fs::read(abs).ok()).flatten();
            Was::File { stamp: stamp(&m), bytes, mode: m.mode() }
        }
        Ok(m) => Was::Other { stamp: stamp(&m) },
    }
}

/// Every file under `dir` (symlinks as themselves, not followed), up to `max`.
fn walk_files(dir: &Path, out: &mut Vec<PathBuf>, max: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if out.len() >= max {
            return;
        }
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk_files(&p, out, max),
            Ok(_) => out.push(p),
            Err(_) => {}
        }
    }
}

/// The guarded paths, for tests and `ratchet doctor`.
pub fn guarded_labels(repo: &Repo, home_rel: &str) -> Vec<String> {
    guard_list(repo, repo.workdir(), home_rel).into_iter().map(|g| g.label).collect()
}

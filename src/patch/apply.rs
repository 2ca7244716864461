//! The patch engine: applies one patch atomically and can undo it exactly.
//!
//! The write goes through the directory descriptor that [`Target::open`]
//! got by walking the path with `O_NOFOLLOW`; the path is never resolved by
//! name again, so nothing swapped in after the check can redirect it. The
//! new bytes go to a temporary file in the same directory (created with
//! `O_EXCL | O_NOFOLLOW`), which is written, given the file's mode, and
//! fsynced, then renamed over the target (`renameat`; for `create`, a rename
//! that refuses to replace), and the directory is fsynced. Readers see the
//! old file or the new one, never a mix. `create` makes missing parent
//! directories with `mkdirat` under the same descriptors and records them.
//!
//! Invariants:
//! - A patch that fails to apply leaves the tree byte-identical: the
//!   temporary file and any directory made for it are removed, and a
//!   failure after the rename puts the previous bytes back.
//! - An existing file keeps its permission bits; a new file gets 0644.
//! - [`Undo::restore`] brings back the previous bytes and mode exactly, or
//!   removes a created file and the directories created for it.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use super::path::{self, Target};
use super::{Patch, PatchError};
use crate::git::{Repo, StatusMap};
use crate::rails::PathPolicy;

/// The permission bits of a file that `create` makes.
pub const NEW_FILE_MODE: u32 = 0o644;
/// The permission bits of a directory that `create` makes (before umask).
pub const NEW_DIR_MODE: u32 = 0o755;

/// How to put the tree back as it was before a patch. Serialisable, so that
/// a step's journal can restore the tree after a crash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Undo {
    /// The repository-relative path the patch wrote.
    pub path: String,
    pub previous: Previous,
}

/// What the path held before the patch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase", deny_unknown_fields)]
pub enum Previous {
    /// A regular file with these exact bytes (always UTF-8: ratchet patches
    /// only text) and permission bits (`st_mode & 0o7777`).
    File { content: String, mode: u32 },
    /// Nothing: the patch created the file, and these directories for it
    /// (repository-relative, outermost first).
    Absent { created_dirs: Vec<String> },
}

/// Applies `patch` under the work-tree `root`: checks its path (lexical,
/// policy, on disk), resolves it against the current file, and writes the
/// result atomically. Returns how to undo it.
pub fn apply(root: &Path, policy: &PathPolicy, patch: &Patch) -> Result<Undo, PatchError> {
    apply_with(root, policy, patch, None)
}

/// [`apply`], then step 4 of path safety: `git status` must show exactly
/// the patch's path changed (compared with the status before). Anything
/// else undoes the patch and returns `UNEXPECTED_CHANGES`.
pub fn apply_verified(repo: &Repo, policy: &PathPolicy, patch: &Patch) -> Result<Undo, PatchError> {
    let before = repo.status()?;
    apply_since(repo, policy, patch, &before)
}

/// [`apply_verified`] against a status taken earlier (at the start of a
/// step, before its provider ran): anything but the patch's path that
/// changed since, the provider's side effects included, rejects the patch.
pub fn apply_since(repo: &Repo, policy: &PathPolicy, patch: &Patch, before: &StatusMap) -> Result<Undo, PatchError> {
    let root = repo.workdir();
    let undo = apply(root, policy, patch)?;
    let checked =
        repo.status().map_err(PatchError::from).and_then(|after| verify_single_change(before, &after, patch.path()));
    if let Err(e) = checked {
        if let Err(restore) = undo.restore(root) {
            return Err(PatchError::RestoreFailed { path: undo.path, cause: e.to_string(), source: Box::new(restore) });
        }
        return Err(e);
    }
    Ok(undo)
}

/// [`apply_since`] with the tree watched since `before` was taken: the
/// watch's events say what changed, so the tree is not scanned again. When
/// the watch cannot answer (no inotify, an overflowed queue), the tree is
/// scanned after all.
pub fn apply_watched(
    repo: &Repo,
    policy: &PathPolicy,
    patch: &Patch,
    before: &StatusMap,
    watch: &crate::git::watch::Watch,
) -> Result<Undo, PatchError> {
    let root = repo.workdir();
    let undo = apply(root, policy, patch)?;
    let path = patch.path();
    let checked = match watch.changed() {
        Ok(changed) => {
            let created: &[String] = match &undo.previous {
                Previous::Absent { created_dirs } => created_dirs,
                Previous::File { .. } => &[],
            };
            let others: Vec<String> = changed
                .into_iter()
                .filter(|p| !crate::git::watch::expected(p, path, created) && repo.is_visible(p))
                .collect();
            if !others.is_empty() {
                Err(PatchError::UnexpectedChanges { path: path.to_string(), others })
            } else if !repo.is_dirty(path).unwrap_or(false) {
                Err(PatchError::ChangeInvisible { path: path.to_string() })
            } else {
                Ok(())
            }
        }
        Err(_) => repo.status().map_err(PatchError::from).and_then(|after| verify_single_change(before, &after, path)),
    };
    if let Err(e) = checked {
        if let Err(restore) = undo.restore(root) {
            return Err(PatchError::RestoreFailed { path: undo.path, cause: e.to_string(), source: Box::new(restore) });
        }
        return Err(e);
    }
    Ok(undo)
}

/// Step 4 of path safety: between the status `before` a patch and the
/// status `after` it, the only path that may differ is `path`, and `path`
/// must show as changed after. (A path already dirty before counts as
/// changed as long as it still shows.)
pub fn verify_single_change(before: &StatusMap, after: &StatusMap, path: &str) -> Result<(), PatchError> {
    let mut others: Vec<String> = after
        .iter()
        .filter(|(p, bits)| p.as_str() != path && before.get(*p) != Some(*bits))
        .map(|(p, _)| p.clone())
        .collect();
    others.extend(before.keys().filter(|p| p.as_str() != path && !after.contains_key(*p)).cloned());
    others.sort();
    if !others.is_empty() {
        return Err(PatchError::UnexpectedChanges { path: path.to_string(), others });
    }
    if !after.contains_key(path) {
        return Err(PatchError::ChangeInvisible { path: path.to_string() });
    }
    Ok(())
}

impl Undo {
    /// Puts the tree back: the previous bytes and mode, atomically, or the
    /// created file and directories removed (a directory that is no longer
    /// empty is left, and reported). Walks the path again without following
    /// symlinks.
    pub fn restore(&self, root: &Path) -> Result<(), PatchError> {
        let (dir, missing, name) = path::walk(root, &self.path)?;
        match &self.previous {
            Previous::File { content, mode } => {
                if !missing.is_empty() {
                    return Err(PatchError::io(
                        "restore",
                        &self.path,
                        std::io::Error::new(std::io::ErrorKind::NotFound, "its directory is gone"),
                    ));
                }
                replace(dir.as_fd(), &name, content.as_bytes(), *mode, &self.path, None)
            }
            Previous::Absent { created_dirs } => {
                if missing.is_empty() {
                    match rustix::fs::unlinkat(&dir, name.as_str(), AtFlags::empty()) {
                        Ok(()) | Err(Errno::NOENT) => {}
                        Err(e) => return Err(PatchError::io("remove", &self.path, e)),
                    }
                    rustix::fs::fsync(&dir).map_err(|e| PatchError::io("sync the directory of", &self.path, e))?;
                }
                for created in created_dirs.iter().rev() {
                    let (parent, missing, name) = path::walk(root, created)?;
                    if !missing.is_empty() {
                        continue;
                    }
                    match rustix::fs::unlinkat(&parent, name.as_str(), AtFlags::REMOVEDIR) {
                        Ok(()) | Err(Errno::NOENT) => {}
                        Err(e) => return Err(PatchError::io("remove the directory", created, e)),
                    }
                    rustix::fs::fsync(&parent).map_err(|e| PatchError::io("sync the directory of", created, e))?;
                }
                Ok(())
            }
        }
    }
}

/// A place in the engine where tests make the system fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    Mkdir,
    CreateTemp,
    Write,
    Sync,
    Rename,
    SyncDir,
}

fn inject(fault: Option<Fault>, here: Fault) -> Result<(), Errno> {
    if fault == Some(here) { Err(Errno::IO) } else { Ok(()) }
}

pub(crate) fn apply_with(
    root: &Path,
    policy: &PathPolicy,
    patch: &Patch,
    fault: Option<Fault>,
) -> Result<Undo, PatchError> {
    let rel = patch.path();
    path::check(rel, policy)?;
    let mut target = Target::open(root, rel)?;
    let new = super::resolve(patch, target.current())?;
    match target.take_current() {
        Some(current) => {
            let content =
                String::from_utf8(current.bytes).map_err(|_| PatchError::NotUtf8 { path: rel.to_string() })?;
            let dir = target.dir();
            if let Err(e) = replace(dir, &target.name, new.as_bytes(), current.mode, rel, fault) {
                if matches!(e, PatchError::Io { action: SYNC_DIR, .. }) {
                    // The new bytes are in place but may not be durable: put
                    // the old ones back rather than leave half a step.
                    replace(dir, &target.name, content.as_bytes(), current.mode, rel, None)?;
                }
                return Err(e);
            }
            Ok(Undo { path: rel.to_string(), previous: Previous::File { content, mode: current.mode } })
        }
        None => {
            let created_dirs = create(&target, new.as_bytes(), rel, fault)?;
            Ok(Undo { path: rel.to_string(), previous: Previous::Absent { created_dirs } })
        }
    }
}

/// What the target must hold before a patch is written: the bytes Gate 1
/// judged and the human saw (the base commit's), or nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Before<'a> {
    Absent,
    Bytes(&'a [u8]),
}

/// A patch written to the tree, with the directory it went into held open:
/// the bytes ratchet wrote are known, and [`Written::verify`] proves the
/// file still holds exactly them, without resolving the path by name again.
#[derive(Debug)]
pub struct Written {
    pub undo: Undo,
    /// The bytes written, which the step commits (never a re-read of the path).
    pub bytes: Vec<u8>,
    /// The file's permission bits.
    pub mode: u32,
    dir: OwnedFd,
    name: String,
}

impl Written {
    /// Reads the file again through the held directory (no symlink
    /// followed) and checks it is a regular file holding exactly the bytes
    /// written; `UNEXPECTED_CHANGES` otherwise. Returns the file's status
    /// as it was read, for the index entry the commit writes (a later
    /// change moves its ctime, so git and ratchet look at it again).
    pub fn verify(&self) -> Result<crate::git::StatData, PatchError> {
        let changed = |why: &str| PatchError::TargetChanged { path: self.undo.path.clone(), why: why.to_string() };
        match path::read_at(&self.dir, &self.name, &self.undo.path) {
            Ok(Some(current)) if current.bytes == self.bytes => Ok(current.stat),
            Ok(Some(_)) => Err(changed("its bytes are not the ones ratchet wrote")),
            Ok(None) => Err(changed("it is gone")),
            Err(PatchError::SymlinkInPath { .. }) => Err(changed("it was replaced by a symbolic link")),
            Err(e) => Err(e),
        }
    }
}

/// Writes `patch` under `root` after checking its path (lexical, policy,
/// on disk) and that the target holds exactly `before`; the new bytes are
/// the patch resolved against `before`. Returns what was written, with the
/// directory held, and how to undo it.
pub fn write(root: &Path, policy: &PathPolicy, patch: &Patch, before: Before<'_>) -> Result<Written, PatchError> {
    let rel = patch.path();
    path::check(rel, policy)?;
    let mut target = Target::open(root, rel)?;
    let changed = |why: &str| PatchError::TargetChanged { path: rel.to_string(), why: why.to_string() };
    match (before, target.current()) {
        (Before::Absent, None) => {}
        (Before::Bytes(b), Some(current)) if b == current => {}
        (Before::Absent, Some(_)) => return Err(changed("it exists, and was absent when the patch was judged")),
        (Before::Bytes(_), None) => return Err(changed("it is gone since the patch was judged")),
        (Before::Bytes(_), Some(_)) => return Err(changed("its bytes differ from the ones the patch was judged on")),
    }
    let new = super::resolve(patch, target.current())?.into_bytes();
    match target.take_current() {
        Some(current) => {
            let content =
                String::from_utf8(current.bytes).map_err(|_| PatchError::NotUtf8 { path: rel.to_string() })?;
            let name = target.name.clone();
            if let Err(e) = replace(target.dir(), &name, &new, current.mode, rel, None) {
                if matches!(e, PatchError::Io { action: SYNC_DIR, .. }) {
                    replace(target.dir(), &name, content.as_bytes(), current.mode, rel, None)?;
                }
                return Err(e);
            }
            let undo = Undo { path: rel.to_string(), previous: Previous::File { content, mode: current.mode } };
            Ok(Written { undo, bytes: new, mode: current.mode, dir: target.dir, name })
        }
        None => {
            let (created_dirs, held) = create_held(&target, &new, rel, None)?;
            let undo = Undo { path: rel.to_string(), previous: Previous::Absent { created_dirs } };
            let name = target.name.clone();
            let dir = match held {
                Some(fd) => fd,
                None => target.dir,
            };
            Ok(Written { undo, bytes: new, mode: NEW_FILE_MODE, dir, name })
        }
    }
}

/// Puts `bytes` (permission bits `mode`) back at `rel` under `root`,
/// making missing directories, through the same no-symlink walk as a patch.
/// For the fence, which restores a tracked file a child changed.
pub fn put_back(root: &Path, rel: &str, bytes: &[u8], mode: u32) -> Result<(), PatchError> {
    let (dir, missing, name) = path::walk(root, rel)?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for component in &missing {
        let parent = fds.last().map(|f| f.as_fd()).unwrap_or(dir.as_fd());
        match rustix::fs::mkdirat(parent, component.as_str(), raw_mode(NEW_DIR_MODE)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(PatchError::io("create the directory", rel, e)),
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(parent, component.as_str(), flags, Mode::empty())
            .map_err(|e| PatchError::io("open the directory", rel, e))?;
        fds.push(fd);
    }
    let dir = fds.last().map(|f| f.as_fd()).unwrap_or(dir.as_fd());
    if let Ok(st) = rustix::fs::statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
        if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory {
            return Err(PatchError::PathInvalid { path: rel.into(), reason: "a directory stands there now".into() });
        }
    }
    replace(dir, &name, bytes, mode, rel, None)
}

/// Removes `rel` under `root` (a file, a symlink as itself, or a directory
/// with everything in it), reaching it without following any symlink. For
/// the fence, which removes what a child created.
pub fn remove_new(root: &Path, rel: &str) -> Result<(), PatchError> {
    let (dir, missing, name) = path::walk(root, rel)?;
    if !missing.is_empty() {
        return Ok(());
    }
    remove_at(dir.as_fd(), &name, rel, 0)
}

fn remove_at(dir: BorrowedFd<'_>, name: &str, rel: &str, depth: usize) -> Result<(), PatchError> {
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(PatchError::io("stat", rel, e)),
    };
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
        return rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(|e| PatchError::io("remove", rel, e));
    }
    if depth > 64 {
        return Err(PatchError::PathInvalid { path: rel.into(), reason: "it is nested too deep to remove".into() });
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let sub = rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| PatchError::io("open", rel, e))?;
    let mut names = Vec::new();
    let entries = rustix::fs::Dir::read_from(&sub).map_err(|e| PatchError::io("list", rel, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| PatchError::io("list", rel, e))?;
        let n = entry.file_name().to_string_lossy().into_owned();
        if n != "." && n != ".." {
            names.push(n);
        }
    }
    for n in names {
        remove_at(sub.as_fd(), &n, &format!("{rel}/{n}"), depth + 1)?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(|e| PatchError::io("remove the directory", rel, e))
}

const SYNC_DIR: &str = "sync the directory of";

/// Replaces (or creates) `name` in `dir` with `bytes` and `mode`, atomically.
fn replace(
    dir: BorrowedFd<'_>,
    name: &str,
    bytes: &[u8],
    mode: u32,
    rel: &str,
    fault: Option<Fault>,
) -> Result<(), PatchError> {
    // Keep the owner of the file being replaced (when ratchet runs as root,
    // say); a new file, or one we may not give away, stays ours.
    let owner = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok().map(|st| path::owner(&st));
    let tmp = write_temp(dir, bytes, mode, owner, rel, fault)?;
    if let Err(e) = inject(fault, Fault::Rename).and_then(|()| rustix::fs::renameat(dir, &tmp, dir, name)) {
        let _ = rustix::fs::unlinkat(dir, &tmp, AtFlags::empty());
        return Err(PatchError::io("rename into place", rel, e));
    }
    inject(fault, Fault::SyncDir).and_then(|()| rustix::fs::fsync(dir)).map_err(|e| PatchError::io(SYNC_DIR, rel, e))
}

/// Creates the file of `target` (absent) with `bytes`, making its missing
/// directories first. Returns the directories made.
fn create(target: &Target, bytes: &[u8], rel: &str, fault: Option<Fault>) -> Result<Vec<String>, PatchError> {
    create_held(target, bytes, rel, fault).map(|(dirs, _)| dirs)
}

/// [`create`], also returning the descriptor of the directory the file
/// went into when `create` made it (`None`: the target's own directory).
fn create_held(
    target: &Target,
    bytes: &[u8],
    rel: &str,
    fault: Option<Fault>,
) -> Result<(Vec<String>, Option<OwnedFd>), PatchError> {
    let rel_dirs = target.missing_dirs();
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut made = 0;
    let result = (|| {
        for (component, rel_dir) in target.missing.iter().zip(&rel_dirs) {
            let parent = fds.last().map(|f| f.as_fd()).unwrap_or(target.dir());
            inject(fault, Fault::Mkdir)
                .and_then(|()| rustix::fs::mkdirat(parent, component.as_str(), raw_mode(NEW_DIR_MODE)))
                .map_err(|e| match e {
                    Errno::EXIST => PatchError::TargetExists { path: rel_dir.clone() },
                    e => PatchError::io("create the directory", rel_dir, e),
                })?;
            made += 1;
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = rustix::fs::openat(parent, component.as_str(), flags, Mode::empty())
                .map_err(|e| PatchError::io("open the directory", rel_dir, e))?;
            rustix::fs::fsync(parent).map_err(|e| PatchError::io(SYNC_DIR, rel_dir, e))?;
            fds.push(fd);
        }
        let dir = fds.last().map(|f| f.as_fd()).unwrap_or(target.dir());
        let tmp = write_temp(dir, bytes, NEW_FILE_MODE, None, rel, fault)?;
        if let Err(e) = inject(fault, Fault::Rename).and_then(|()| place_new(dir, &tmp, &target.name)) {
            let _ = rustix::fs::unlinkat(dir, &tmp, AtFlags::empty());
            return Err(match e {
                Errno::EXIST => PatchError::TargetExists { path: rel.to_string() },
                e => PatchError::io("rename into place", rel, e),
            });
        }
        if let Err(e) = inject(fault, Fault::SyncDir).and_then(|()| rustix::fs::fsync(dir)) {
            let _ = rustix::fs::unlinkat(dir, target.name.as_str(), AtFlags::empty());
            return Err(PatchError::io(SYNC_DIR, rel, e));
        }
        Ok(())
    })();
    if let Err(e) = result {
        // Remove the directories made, innermost first.
        for i in (0..made).rev() {
            let parent = if i == 0 { target.dir() } else { fds[i - 1].as_fd() };
            let _ = rustix::fs::unlinkat(parent, target.missing[i].as_str(), AtFlags::REMOVEDIR);
        }
        return Err(e);
    }
    Ok((rel_dirs, fds.pop()))
}

/// Renames `tmp` to `name` in `dir`, failing with `EEXIST` rather than
/// replacing anything already there.
fn place_new(dir: BorrowedFd<'_>, tmp: &str, name: &str) -> Result<(), Errno> {
    #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
    match rustix::fs::renameat_with(dir, tmp, dir, name, rustix::fs::RenameFlags::NOREPLACE) {
        Err(Errno::INVAL | Errno::NOSYS | Errno::NOTSUP) => {}
        other => return other,
    }
    // Fallback for file systems without a no-replace rename: link(2)
    // never replaces either.
    rustix::fs::linkat(dir, tmp, dir, name, AtFlags::empty())?;
    let _ = rustix::fs::unlinkat(dir, tmp, AtFlags::empty());
    Ok(())
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to a new temporary file in `dir`, with `mode` (and
/// `owner`, uid and gid, when allowed), fsynced. Returns its name; on
/// failure nothing is left behind.
fn write_temp(
    dir: BorrowedFd<'_>,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
    rel: &str,
    fault: Option<Fault>,
) -> Result<String, PatchError> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut attempt = 0;
    let (tmp, fd) = loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = format!(".ratchet-{}-{n}.tmp", std::process::id());
        match inject(fault, Fault::CreateTemp).and_then(|()| rustix::fs::openat(dir, &tmp, flags, raw_mode(0o600))) {
            Ok(fd) => break (tmp, fd),
            Err(Errno::EXIST) if attempt < 100 => attempt += 1,
            Err(e) => return Err(PatchError::io("create a temporary file beside", rel, e)),
        }
    };
    let mut file = std::fs::File::from(fd);
    let written = inject(fault, Fault::Write)
        .map_err(std::io::Error::from)
        .and_then(|()| file.write_all(bytes))
        .map_err(|e| PatchError::io("write", rel, e))
        .map(|()| {
            if let Some((uid, gid)) = owner {
                // Best effort: only root may give a file away. Before
                // fchmod, because chown clears setuid bits.
                let _ = rustix::fs::fchown(&file, Some(uid_of(uid)), Some(gid_of(gid)));
            }
        })
        .and_then(|()| rustix::fs::fchmod(&file, raw_mode(mode)).map_err(|e| PatchError::io("set the mode of", rel, e)))
        .and_then(|()| {
            inject(fault, Fault::Sync)
                .and_then(|()| rustix::fs::fsync(&file))
                .map_err(|e| PatchError::io("sync", rel, e))
        });
    if let Err(e) = written {
        drop(file);
        let _ = rustix::fs::unlinkat(dir, &tmp, AtFlags::empty());
        return Err(e);
    }
    Ok(tmp)
}

#[allow(clippy::unnecessary_cast)]
fn uid_of(uid: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(uid as _)
}

#[allow(clippy::unnecessary_cast)]
fn gid_of(gid: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(gid as _)
}

/// A permission mode as rustix wants it, whatever `mode_t`'s width.
#[allow(clippy::unnecessary_cast)]
fn raw_mode(mode: u32) -> Mode {
    Mode::from_raw_mode(mode as rustix::fs::RawMode)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn policy() -> PathPolicy {
        crate::rails::parse("[paths]\nallow = [\"docs/**\", \"*.md\"]\n", "").unwrap().paths
    }

    /// Every entry under `root`: path, mode and bytes (or link target).
    fn snapshot(root: &Path) -> Vec<(String, u32, Vec<u8>)> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u32, Vec<u8>)>) {
            let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
            entries.sort();
            for p in entries {
                let meta = std::fs::symlink_metadata(&p).unwrap();
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let mode = meta.permissions().mode();
                if meta.is_dir() {
                    out.push((rel, mode, Vec::new()));
                    walk(root, &p, out);
                } else if meta.file_type().is_symlink() {
                    out.push((rel, mode, std::fs::read_link(&p).unwrap().into_os_string().into_encoded_bytes()));
                } else {
                    out.push((rel, mode, std::fs::read(&p).unwrap()));
                }
            }
        }
        let mut out = Vec::new();
        walk(root, root, &mut out);
        out
    }

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("docs")).unwrap();
        std::fs::write(t.path().join("docs/a.md"), "one\ntwo\nthree\n").unwrap();
        std::fs::set_permissions(t.path().join("docs/a.md"), std::fs::Permissions::from_mode(0o640)).unwrap();
        t
    }

    const ALL: [Fault; 6] = [Fault::Mkdir, Fault::CreateTemp, Fault::Write, Fault::Sync, Fault::Rename, Fault::SyncDir];

    #[test]
    fn a_replace_applies_keeps_the_mode_and_undoes_exactly() {
        let t = tree();
        let before = snapshot(t.path());
        let p = Patch::Replace { path: "docs/a.md".into(), old: Some("two".into()), new: "2".into() };
        let undo = apply(t.path(), &policy(), &p).unwrap();
        assert_eq!(std::fs::read_to_string(t.path().join("docs/a.md")).unwrap(), "one\n2\nthree\n");
        let mode = std::fs::metadata(t.path().join("docs/a.md")).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o640);
        assert_eq!(undo.previous, Previous::File { content: "one\ntwo\nthree\n".into(), mode: 0o640 });
        undo.restore(t.path()).unwrap();
        assert_eq!(snapshot(t.path()), before);
    }

    #[test]
    fn a_create_makes_its_directories_and_undo_removes_them() {
        let t = tree();
        let before = snapshot(t.path());
        let p = Patch::Create { path: "docs/x/y/new.md".into(), content: "hi\n".into() };
        let undo = apply(t.path(), &policy(), &p).unwrap();
        assert_eq!(std::fs::read_to_string(t.path().join("docs/x/y/new.md")).unwrap(), "hi\n");
        let mode = std::fs::metadata(t.path().join("docs/x/y/new.md")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, NEW_FILE_MODE);
        assert_eq!(undo.previous, Previous::Absent { created_dirs: vec!["docs/x".into(), "docs/x/y".into()] });
        // The undo record survives a round trip through JSON (the journal).
        let json = serde_json::to_string(&undo).unwrap();
        assert_eq!(serde_json::from_str::<Undo>(&json).unwrap(), undo);
        undo.restore(t.path()).unwrap();
        assert_eq!(snapshot(t.path()), before);
    }

    #[test]
    fn an_append_applies() {
        let t = tree();
        let p = Patch::Append { path: "docs/a.md".into(), content: "four\n".into() };
        apply(t.path(), &policy(), &p).unwrap();
        assert_eq!(std::fs::read_to_string(t.path().join("docs/a.md")).unwrap(), "one\ntwo\nthree\nfour\n");
    }

    #[test]
    fn a_failure_at_any_stage_leaves_the_tree_byte_identical() {
        for fault in ALL {
            for p in [
                Patch::Replace { path: "docs/a.md".into(), old: None, new: "whole\n".into() },
                Patch::Append { path: "docs/a.md".into(), content: "more\n".into() },
                Patch::Create { path: "docs/n/m/new.md".into(), content: "new\n".into() },
                Patch::Create { path: "docs/new.md".into(), content: "new\n".into() },
            ] {
                let t = tree();
                let before = snapshot(t.path());
                let result = apply_with(t.path(), &policy(), &p, Some(fault));
                let expect_failure = fault != Fault::Mkdir || p.path() == "docs/n/m/new.md";
                assert_eq!(result.is_err(), expect_failure, "{fault:?} {p:?}: {result:?}");
                if expect_failure {
                    assert_eq!(snapshot(t.path()), before, "{fault:?} {p:?}");
                }
            }
        }
    }

    #[test]
    fn a_replace_whose_old_text_is_missing_changes_nothing() {
        let t = tree();
        let before = snapshot(t.path());
        let p = Patch::Replace { path: "docs/a.md".into(), old: Some("four".into()), new: "4".into() };
        assert!(matches!(apply(t.path(), &policy(), &p), Err(PatchError::OldTextNotFound { .. })));
        assert_eq!(snapshot(t.path()), before);
    }

    #[test]
    fn a_create_never_replaces() {
        let t = tree();
        let p = Patch::Create { path: "docs/a.md".into(), content: "x".into() };
        assert!(matches!(apply(t.path(), &policy(), &p), Err(PatchError::TargetExists { .. })));
        // The no-replace rename itself refuses an existing name.
        let dir = rustix::fs::open(t.path().join("docs"), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let tmp = write_temp(dir.as_fd(), b"x", 0o644, None, "docs/a.md", None).unwrap();
        assert_eq!(place_new(dir.as_fd(), &tmp, "a.md"), Err(Errno::EXIST));
        assert_eq!(std::fs::read_to_string(t.path().join("docs/a.md")).unwrap(), "one\ntwo\nthree\n");
    }

    #[test]
    fn undo_restores_a_mode_changed_since() {
        let t = tree();
        let p = Patch::Replace { path: "docs/a.md".into(), old: None, new: "x".into() };
        let undo = apply(t.path(), &policy(), &p).unwrap();
        std::fs::set_permissions(t.path().join("docs/a.md"), std::fs::Permissions::from_mode(0o755)).unwrap();
        undo.restore(t.path()).unwrap();
        let meta = std::fs::metadata(t.path().join("docs/a.md")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        assert_eq!(std::fs::read_to_string(t.path().join("docs/a.md")).unwrap(), "one\ntwo\nthree\n");
    }

    #[test]
    fn a_symlink_swapped_in_after_the_check_is_never_followed() {
        let t = tree();
        let outside = tempfile::tempdir().unwrap();
        let target = Target::open(t.path(), "docs/a.md").unwrap();
        // The directory is swapped for a symlink out of the tree between
        // the check and the write.
        std::fs::rename(t.path().join("docs"), t.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join("docs")).unwrap();
        replace(target.dir(), &target.name, b"new\n", 0o644, "docs/a.md", None).unwrap();
        assert_eq!(std::fs::read_to_string(t.path().join("moved/a.md")).unwrap(), "new\n");
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none(), "wrote through the swapped-in symlink");
        // And a new walk refuses the symlink outright.
        let p = Patch::Append { path: "docs/a.md".into(), content: "x".into() };
        assert!(matches!(apply(t.path(), &policy(), &p), Err(PatchError::SymlinkInPath { .. })));
    }

    #[test]
    fn the_owner_is_kept_when_ratchet_may_keep_it() {
        if !rustix::process::geteuid().is_root() {
            return; // Only root may give a file away.
        }
        let t = tree();
        let file = t.path().join("docs/a.md");
        std::os::unix::fs::chown(&file, Some(1234), Some(5678)).unwrap();
        let p = Patch::Append { path: "docs/a.md".into(), content: "x".into() };
        let undo = apply(t.path(), &policy(), &p).unwrap();
        let owner = |f: &Path| {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(f).unwrap();
            (m.uid(), m.gid(), m.mode() & 0o7777)
        };
        assert_eq!(owner(&file), (1234, 5678, 0o640));
        undo.restore(t.path()).unwrap();
        assert_eq!(owner(&file), (1234, 5678, 0o640));
    }

    #[test]
    fn only_the_one_path_may_change() {
        let map = |items: &[(&str, u32)]| items.iter().map(|(p, b)| (p.to_string(), *b)).collect::<StatusMap>();
        let before = map(&[("dirty.md", 256)]);
        assert!(verify_single_change(&before, &map(&[("dirty.md", 256), ("a.md", 256)]), "a.md").is_ok());
        // A path that was already dirty still counts while it shows.
        assert!(verify_single_change(&before, &before, "dirty.md").is_ok());
        assert!(matches!(
            verify_single_change(&before, &map(&[("dirty.md", 256), ("a.md", 256), ("b.md", 128)]), "a.md"),
            Err(PatchError::UnexpectedChanges { others, .. }) if others == ["b.md"]
        ));
        assert!(matches!(
            verify_single_change(&before, &map(&[("a.md", 256)]), "a.md"),
            Err(PatchError::UnexpectedChanges { others, .. }) if others == ["dirty.md"]
        ));
        assert!(matches!(verify_single_change(&before, &before, "a.md"), Err(PatchError::ChangeInvisible { .. })));
    }
}

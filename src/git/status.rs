//! A fast `git status` for the step's look at the tree (path safety's
//! clean-tree check and its "before").
//!
//! The index is read once ([`super::index`]). Each directory holding an
//! index path is then looked at once, on two threads: watched first (when
//! the caller watches the tree), then every tracked file in it is `stat`ed
//! relative to the directory and compared with the index's stat data, as
//! git does, and its listing names what the index does not know. Staged
//! changes come from comparing the index with `HEAD`'s tree, skipping every
//! directory the index's cache tree says is unchanged. libgit2 is asked
//! about a path only when the stat comparison cannot clear it (racily
//! clean, conflicted, intent-to-add, a submodule) or the index differs from
//! `HEAD` there; it decides whether an unknown file is ignored.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::index::{self, CacheTree, Entry};
use super::{GitError, Repo, StatusMap};
use crate::git::watch::{Unavailable, Watch};

/// Entry flag: the path is not checked out (sparse checkout); git does not
/// compare it with the work tree.
const SKIP_WORKTREE: u16 = 1 << 14;
const GITLINK: u32 = 0o160000;

/// Whether a file's stat might differ from what the index holds for it
/// in `e`, so that only libgit2 can tell (stat mismatch, or racily clean).
fn needs_a_look(e: &Entry, st: &rustix::fs::Stat, index_mtime: (i64, i64)) -> bool {
    let kind = st.st_mode & 0o170000;
    let mode = match kind {
        0o120000 => 0o120000,
        0o040000 => GITLINK,
        _ if st.st_mode & 0o111 != 0 => 0o100755,
        _ => 0o100644,
    };
    let racy = (e.mtime.0 as i32 as i64, e.mtime.1 as i64) >= index_mtime;
    racy || mode != e.mode
        || st.st_size as u32 != e.size
        || st.st_ino as u32 != e.ino
        || (st.st_mtime as u32, st.st_mtime_nsec as u32) != e.mtime
        || (st.st_ctime as u32, st.st_ctime_nsec as u32) != e.ctime
}

/// A directory holding index paths (directly, or in a subdirectory).
struct Dir {
    /// Repository-relative, `""` for the root.
    path: String,
    /// The index entries directly in it (one per path), in name order.
    names: Vec<u32>,
    /// The entries among them to compare with the work tree.
    tracked: Vec<u32>,
}

impl Dir {
    fn join(&self, name: &str) -> String {
        if self.path.is_empty() { name.to_string() } else { format!("{}/{name}", self.path) }
    }
}

/// What the index says, read once.
pub struct IndexSnapshot {
    /// Every directory holding an index path, and every ancestor of one, sorted.
    dirs: Vec<Dir>,
    /// Paths only libgit2 can judge.
    look: BTreeSet<String>,
    /// Every path in the index (tracked, conflicted, sparse) as an entry, sorted.
    known: Vec<u32>,
    index_mtime: (i64, i64),
    /// The entries and cache tree, for the comparison with `HEAD`.
    index: index::Index,
    /// The file read, kept open (see [`index::Stamp`]), when read directly.
    file: Option<(std::fs::File, index::Stamp)>,
}

impl IndexSnapshot {
    /// Every path in the index that is UTF-8, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.known.iter().filter_map(|&i| std::str::from_utf8(self.path(i)).ok())
    }

    fn path(&self, entry: u32) -> &[u8] {
        self.index.path(&self.index.entries[entry as usize])
    }

    /// The file name of `entry` (in its directory).
    fn name(&self, entry: u32) -> &[u8] {
        let path = self.path(entry);
        memchr::memrchr(b'/', path).map_or(path, |slash| &path[slash + 1..])
    }

    fn is_dir(&self, path: &str) -> bool {
        self.dirs.binary_search_by(|d| d.path.as_str().cmp(path)).is_ok()
    }

    fn of(index: index::Index, index_mtime: (i64, i64)) -> IndexSnapshot {
        let mut dirs: Vec<Dir> = Vec::new();
        let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut look = BTreeSet::new();
        let mut known: Vec<u32> = Vec::with_capacity(index.entries.len());
        let mut unit = |dirs: &mut Vec<Dir>, path: &str| -> usize {
            if let Some(&i) = at.get(path) {
                return i;
            }
            // A new directory: its ancestors hold an index path too.
            let mut up = path;
            while let Some((parent, _)) = up.rsplit_once('/') {
                if at.contains_key(parent) {
                    break;
                }
                at.insert(parent.to_string(), dirs.len());
                dirs.push(Dir { path: parent.to_string(), names: Vec::new(), tracked: Vec::new() });
                up = parent;
            }
            if !path.is_empty() && !at.contains_key("") {
                at.insert(String::new(), dirs.len());
                dirs.push(Dir { path: String::new(), names: Vec::new(), tracked: Vec::new() });
            }
            at.insert(path.to_string(), dirs.len());
            dirs.push(Dir { path: path.to_string(), names: Vec::new(), tracked: Vec::new() });
            dirs.len() - 1
        };
        unit(&mut dirs, "");
        let mut last: Option<(&[u8], usize)> = None;
        let mut previous: Option<&[u8]> = None;
        for (n, e) in index.entries.iter().enumerate() {
            let n = n as u32;
            let bytes = index.path(e);
            if previous == Some(bytes) {
                // Another stage of a conflicted path.
                continue;
            }
            previous = Some(bytes);
            known.push(n);
            let dir = memchr::memrchr(b'/', bytes).map_or(&bytes[..0], |slash| &bytes[..slash]);
            let i = match last {
                Some((d, i)) if d == dir => i,
                _ => {
                    let i = unit(&mut dirs, &String::from_utf8_lossy(dir));
                    last = Some((dir, i));
                    i
                }
            };
            dirs[i].names.push(n);
            let utf8 = std::str::from_utf8(bytes).is_ok();
            if !utf8 || e.stage() != 0 || e.mode == GITLINK || e.flags_extended & !SKIP_WORKTREE != 0 {
                look.insert(String::from_utf8_lossy(bytes).into_owned());
            } else if e.flags_extended & SKIP_WORKTREE == 0 {
                dirs[i].tracked.push(n);
            }
        }
        dirs.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        IndexSnapshot { dirs, look, known, index_mtime, index, file: None }
    }

    /// The index as read, and the file it was read from, when read directly.
    pub fn known(&self) -> Option<index::Known<'_>> {
        self.file.as_ref().map(|(_, stamp)| index::Known { index: &self.index, stamp: *stamp })
    }
}

/// What one scanning thread found.
#[derive(Default)]
struct Found {
    /// Tracked paths whose stat differs (or that are gone).
    look: Vec<String>,
    /// Names the index does not know: (path, is a directory).
    unknown: Vec<(String, bool)>,
    watch_failed: Option<Unavailable>,
}

impl Repo {
    /// Reads the index once (see [`IndexSnapshot`]): directly, or through
    /// libgit2 when the file uses what the direct reader does not read.
    pub fn index_snapshot(&self) -> Result<IndexSnapshot, GitError> {
        let path = self.inner.path().join("index");
        let direct = if self.sha1() { read_index(&path) } else { Err(Unsupported("not a SHA-1 repository".into())) };
        match direct {
            Ok((index, mtime, file)) => Ok(IndexSnapshot { file, ..IndexSnapshot::of(index, mtime) }),
            Err(_) => self.index_snapshot_libgit2(),
        }
    }

    /// [`Repo::index_snapshot`] through libgit2 (without the cache tree).
    pub fn index_snapshot_libgit2(&self) -> Result<IndexSnapshot, GitError> {
        let git = self.inner.index()?;
        let mtime = std::fs::metadata(self.inner.path().join("index")).map(|m| mtime_of(&m)).unwrap_or((i64::MAX, 0));
        let mut index = index::Index::empty();
        for e in git.iter() {
            let entry = Entry {
                path_at: 0,
                path_len: 0,
                ctime: (e.ctime.seconds() as u32, e.ctime.nanoseconds()),
                mtime: (e.mtime.seconds() as u32, e.mtime.nanoseconds()),
                dev: e.dev,
                ino: e.ino,
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
                size: e.file_size,
                oid: e.id.as_bytes().try_into().unwrap_or([0; 20]),
                flags: e.flags,
                flags_extended: e.flags_extended,
            };
            index.push(entry, &e.path);
        }
        Ok(IndexSnapshot::of(index, mtime))
    }

    /// Whether object ids are SHA-1 (the direct index reader's only kind).
    fn sha1(&self) -> bool {
        match self.config_string("extensions.objectformat") {
            None => true,
            Some(f) => f.eq_ignore_ascii_case("sha1"),
        }
    }

    /// The same map as [`Repo::status_full`], computed faster on large trees.
    pub fn status_fast(&self) -> Result<StatusMap, GitError> {
        let snap = self.index_snapshot()?;
        self.status_from(&snap)
    }

    /// The status, from an index read with [`Repo::index_snapshot`].
    pub fn status_from(&self, snap: &IndexSnapshot) -> Result<StatusMap, GitError> {
        Ok(self.status_watched(snap, None)?.0)
    }

    /// The status, watching each directory with `watch` before looking at
    /// it, so that any change after the look shows as an event. The second
    /// value says why the watch stopped early, if it did (then it misses
    /// changes, and callers must not trust it).
    pub fn status_watched(
        &self,
        snap: &IndexSnapshot,
        watch: Option<&Watch>,
    ) -> Result<(StatusMap, Option<Unavailable>), GitError> {
        let root = &self.workdir;
        let next = AtomicUsize::new(0);
        let scan = || scan_dirs(root, snap, watch, &next);
        let (theirs, staged, mine) = std::thread::scope(|s| {
            let helper = s.spawn(scan);
            // This thread compares the index with HEAD first (libgit2 is
            // not shared between threads), then joins the scan.
            let staged = self.staged(&snap.index);
            let mine = scan();
            (helper.join(), staged, mine)
        });
        let theirs = theirs.map_err(|_| git2::Error::from_str("a status thread panicked"))?;
        let mut watch_failed = theirs.watch_failed.or(mine.watch_failed);
        let mut look = snap.look.clone();
        look.extend(staged?);
        look.extend(theirs.look);
        look.extend(mine.look);
        let mut out = StatusMap::new();
        let mut unknown = theirs.unknown;
        unknown.extend(mine.unknown);
        unknown.sort();
        for (path, dir) in unknown {
            if dir {
                self.untracked_dir(path, watch, &mut watch_failed, &mut out);
            } else if !self.inner.is_path_ignored(&path).unwrap_or(false) {
                out.insert(path, git2::Status::WT_NEW.bits());
            }
        }
        for path in look {
            let status = match self.inner.status_file(Path::new(&path)) {
                Ok(s) => s,
                Err(e) if e.code() == git2::ErrorCode::NotFound => continue,
                // A path libgit2 will not judge alone (a directory): fall back.
                Err(_) => return Ok((self.status_full()?, watch_failed)),
            };
            if !status.is_empty() && !status.contains(git2::Status::IGNORED) {
                out.insert(path, status.bits());
            }
        }
        Ok((out, watch_failed))
    }

    /// Adds the untracked, unignored files under the directory `path` (not
    /// in the index) to `out`; a nested repository shows as one `path/`
    /// entry once it holds anything. Directories are watched before they
    /// are read.
    fn untracked_dir(
        &self,
        path: String,
        watch: Option<&Watch>,
        watch_failed: &mut Option<Unavailable>,
        out: &mut StatusMap,
    ) {
        use rustix::fs::FileType;
        let mut stack = vec![path];
        while let Some(dir) = stack.pop() {
            if self.inner.is_path_ignored(format!("{dir}/")).unwrap_or(false) {
                continue;
            }
            let abs = self.workdir.join(&dir);
            if abs.join(".git").exists() {
                let holds = std::fs::read_dir(&abs).map(|mut d| d.any(|e| e.is_ok_and(|e| e.file_name() != ".git")));
                if holds.unwrap_or(false) {
                    out.insert(format!("{dir}/"), git2::Status::WT_NEW.bits());
                }
                continue;
            }
            if let (Some(w), None) = (watch, &watch_failed) {
                if let Err(e) = w.watch(&abs, &dir) {
                    *watch_failed = Some(e);
                }
            }
            let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC;
            let Ok(fd) = rustix::fs::open(&abs, flags, rustix::fs::Mode::empty()) else { continue };
            let Ok(mut entries) = rustix::fs::Dir::new(fd) else { continue };
            while let Some(Ok(entry)) = entries.read() {
                let Ok(name) = entry.file_name().to_str() else { continue };
                if name == "." || name == ".." {
                    continue;
                }
                let rel = format!("{dir}/{name}");
                match kind_of(&entry, &abs, name) {
                    FileType::Directory => stack.push(rel),
                    _ => {
                        if !self.inner.is_path_ignored(&rel).unwrap_or(false) {
                            out.insert(rel, git2::Status::WT_NEW.bits());
                        }
                    }
                }
            }
        }
    }

    /// Paths where the index differs from `HEAD`'s tree (a superset is
    /// fine: each is then judged by libgit2).
    fn staged(&self, index: &index::Index) -> Result<Vec<String>, GitError> {
        let head = self.inner.head().ok().and_then(|h| h.peel_to_tree().ok()).map(|t| t.id());
        let mut out = Vec::new();
        self.compare(index, b"", head, index.tree.as_ref(), &index.entries, &mut out)?;
        Ok(out)
    }

    /// Compares the index entries under `prefix` (`""` or `dir/`) with the
    /// `HEAD` tree `head` of that directory; `cache` is the index's cache
    /// tree node for it.
    fn compare(
        &self,
        index: &index::Index,
        prefix: &[u8],
        head: Option<git2::Oid>,
        cache: Option<&CacheTree>,
        entries: &[Entry],
        out: &mut Vec<String>,
    ) -> Result<(), GitError> {
        if let (Some(c), Some(h)) = (cache, head) {
            if c.oid.is_some_and(|o| o == h.as_bytes()) {
                // The index made exactly this tree: nothing differs below.
                return Ok(());
            }
        }
        let tree = head.map(|h| self.inner.find_tree(h)).transpose()?;
        let path_of = |name: &[u8]| String::from_utf8_lossy(&[prefix, name].concat()).into_owned();
        let mut seen: Vec<&[u8]> = Vec::new();
        let mut i = 0;
        while i < entries.len() {
            let rest = &index.path(&entries[i])[prefix.len()..];
            match memchr::memchr(b'/', rest) {
                None => {
                    let e = &entries[i];
                    let theirs = tree.as_ref().and_then(|t| t.get_name_bytes(rest));
                    let same = e.stage() == 0
                        && theirs.as_ref().is_some_and(|t| t.id().as_bytes() == e.oid && t.filemode() as u32 == e.mode);
                    if !same {
                        out.push(path_of(rest));
                        if let Some(t) = theirs.filter(|t| t.kind() == Some(git2::ObjectType::Tree)) {
                            // A directory in HEAD that is a file in the index.
                            self.all_paths(&[prefix, rest, b"/"].concat(), t.id(), out)?;
                        }
                    }
                    seen.push(rest);
                    i += 1;
                }
                Some(slash) => {
                    let name = &rest[..slash];
                    let sub: Vec<u8> = [prefix, name, b"/"].concat();
                    let end = i + entries[i..].partition_point(|e| index.path(e).starts_with(&sub));
                    let theirs = tree.as_ref().and_then(|t| t.get_name_bytes(name));
                    let sub_head = match &theirs {
                        Some(t) if t.kind() == Some(git2::ObjectType::Tree) => Some(t.id()),
                        Some(_) => {
                            // A file in HEAD that is a directory in the index.
                            out.push(path_of(name));
                            None
                        }
                        None => None,
                    };
                    self.compare(index, &sub, sub_head, cache.and_then(|c| c.child(name)), &entries[i..end], out)?;
                    seen.push(name);
                    i = end;
                }
            }
        }
        // What HEAD has here that the index does not.
        if let Some(t) = &tree {
            seen.sort_unstable();
            for te in t.iter() {
                let name = te.name_bytes();
                if seen.binary_search(&name).is_ok() {
                    continue;
                }
                if te.kind() == Some(git2::ObjectType::Tree) {
                    self.all_paths(&[prefix, name, b"/"].concat(), te.id(), out)?;
                } else {
                    out.push(path_of(name));
                }
            }
        }
        Ok(())
    }

    /// Every file path in the tree `id`, which sits at `prefix` (`dir/`).
    fn all_paths(&self, prefix: &[u8], id: git2::Oid, out: &mut Vec<String>) -> Result<(), GitError> {
        let tree = self.inner.find_tree(id)?;
        for te in tree.iter() {
            let path = [prefix, te.name_bytes()].concat();
            if te.kind() == Some(git2::ObjectType::Tree) {
                self.all_paths(&[&path[..], b"/"].concat(), te.id(), out)?;
            } else {
                out.push(String::from_utf8_lossy(&path).into_owned());
            }
        }
        Ok(())
    }
}

use index::Unsupported;

/// Reads the index file and its modification time from one open file; no
/// index file is an empty index.
#[allow(clippy::type_complexity)]
fn read_index(path: &Path) -> Result<(index::Index, (i64, i64), Option<(std::fs::File, index::Stamp)>), Unsupported> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((index::Index::empty(), (i64::MAX, 0), None));
        }
        Err(e) => return Err(Unsupported(format!("cannot open {}: {e}", path.display()))),
    };
    let meta = file.metadata().map_err(|e| Unsupported(format!("cannot stat {}: {e}", path.display())))?;
    let mut data = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut data).map_err(|e| Unsupported(format!("cannot read {}: {e}", path.display())))?;
    let stamp = index::Stamp::of(&meta);
    Ok((index::parse(&data)?, mtime_of(&meta), Some((file, stamp))))
}

fn mtime_of(meta: &std::fs::Metadata) -> (i64, i64) {
    use std::os::unix::fs::MetadataExt;
    (meta.mtime(), meta.mtime_nsec())
}

/// The type of a directory entry, asking the file system when the
/// directory listing does not say.
fn kind_of(entry: &rustix::fs::DirEntry, dir: &Path, name: &str) -> rustix::fs::FileType {
    use rustix::fs::FileType;
    match entry.file_type() {
        FileType::Unknown => rustix::fs::statat(rustix::fs::CWD, dir.join(name), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .map(|st| FileType::from_raw_mode(st.st_mode))
            .unwrap_or(FileType::Unknown),
        k => k,
    }
}

/// Takes directories of `snap` from the shared counter `next` until none
/// are left: watches each, compares its tracked files' stat data, and
/// lists what it holds that the index does not know.
fn scan_dirs(root: &Path, snap: &IndexSnapshot, watch: Option<&Watch>, next: &AtomicUsize) -> Found {
    use rustix::fs::{AtFlags, FileType, Mode, OFlags};
    let mut found = Found::default();
    while let Some(dir) = snap.dirs.get(next.fetch_add(1, Ordering::Relaxed)) {
        let abs = if dir.path.is_empty() { root.to_path_buf() } else { root.join(&dir.path) };
        if let (Some(w), None) = (watch, &found.watch_failed) {
            if let Err(e) = w.watch(&abs, &dir.path) {
                found.watch_failed = Some(e);
            }
        }
        let fd = match rustix::fs::open(&abs, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(_) => {
                // The directory is gone (or unreadable): each of its files is a change.
                found.look.extend(dir.tracked.iter().map(|&t| String::from_utf8_lossy(snap.path(t)).into_owned()));
                continue;
            }
        };
        for &t in &dir.tracked {
            let e = &snap.index.entries[t as usize];
            let st = rustix::fs::statat(&fd, snap.name(t), AtFlags::SYMLINK_NOFOLLOW);
            if !st.is_ok_and(|st| !needs_a_look(e, &st, snap.index_mtime)) {
                found.look.push(String::from_utf8_lossy(snap.path(t)).into_owned());
            }
        }
        let Ok(mut entries) = rustix::fs::Dir::new(fd) else { continue };
        while let Some(Ok(entry)) = entries.read() {
            let Ok(name) = entry.file_name().to_str() else { continue };
            if name == "." || name == ".." || (dir.path.is_empty() && name == ".git") {
                continue;
            }
            if kind_of(&entry, &abs, name) == FileType::Directory {
                let rel = dir.join(name);
                if !snap.is_dir(&rel) {
                    found.unknown.push((rel, true));
                }
            } else if dir.names.binary_search_by(|&n| snap.name(n).cmp(name.as_bytes())).is_err() {
                found.unknown.push((dir.join(name), false));
            }
        }
    }
    found
}

//! The git index file, read directly and written back with one path
//! changed (git's `Documentation/gitformat-index.txt`).
//!
//! A step reads the index once to learn what is tracked and what each
//! file's stat data was. libgit2 reads it into a hash map of allocated
//! entries and verifies its SHA-1 first: 5 ms on 10,000 files, a fifth of a
//! step. git does not verify the checksum on read (`index.skipHash`
//! aside, it is only checked by `fsck`), and neither does this reader: it
//! walks the bytes once and keeps what the status needs, plus the cache
//! tree (`TREE`), which says which directories are unchanged since the
//! index last matched a tree.
//!
//! A step commit changes one index entry ([`update`]). libgit2 would read
//! the whole file again, verify and re-hash it with collision-detecting
//! SHA-1 (8 ms on 10,000 files, the better part of the commit); git's
//! format is simple enough to rewrite here, under git's own `index.lock`,
//! with the plain SHA-1 trailer git expects (no crate writes git's index
//! without also owning the repository, as gitoxide does). What the
//! rewrite keeps is what `git add` keeps: every other entry, the cache
//! tree with the path's directories invalidated, the resolve-undo data;
//! optional extensions that describe the old file (the untracked cache,
//! fsmonitor's token, the offset tables) are dropped, which git allows and
//! repairs on its next write. Entries that were racily clean against the
//! old file's time get their size smudged, as git does, so that nobody
//! later trusts their stat data.
//!
//! Versions 2, 3 and 4 with SHA-1 object ids are read and written;
//! anything else (a SHA-256 repository, a mandatory extension such as a
//! split or sparse index, a malformed file) is [`Unsupported`], and callers
//! fall back to libgit2.

/// Why the index was not read here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

const HASH_LEN: usize = 20;
/// The longest path read (Linux's `PATH_MAX` is 4096).
const MAX_PATH: usize = 1 << 16;

/// One index entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Where the path's bytes (`/`-separated) are in [`Index::paths`].
    pub path_at: u32,
    pub path_len: u32,
    pub ctime: (u32, u32),
    pub mtime: (u32, u32),
    pub dev: u32,
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u32,
    pub oid: [u8; HASH_LEN],
    /// The 16-bit flags (assume-valid, extended, stage, name length).
    pub flags: u16,
    /// The extended flags of version 3 and later (skip-worktree, intent-to-add).
    pub flags_extended: u16,
}

impl Entry {
    /// A stage-0 entry for blob `oid` with `mode`, and no stat data (git
    /// then reads the file to compare).
    pub fn new(oid: [u8; HASH_LEN], mode: u32) -> Entry {
        Entry {
            path_at: 0,
            path_len: 0,
            ctime: (0, 0),
            mtime: (0, 0),
            dev: 0,
            ino: 0,
            mode,
            uid: 0,
            gid: 0,
            size: 0,
            oid,
            flags: 0,
            flags_extended: 0,
        }
    }

    /// The merge stage: 0 for a normal entry, 1–3 in a conflict.
    pub fn stage(&self) -> u16 {
        (self.flags >> 12) & 0x3
    }
}

/// A node of the cache tree: a directory, and the tree id its index
/// entries made when it was last valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheTree {
    /// The directory's name in its parent (`""` for the root).
    pub name: Vec<u8>,
    /// The tree id, when the node is valid.
    pub oid: Option<[u8; HASH_LEN]>,
    /// How many index entries the node covers (when valid).
    pub entries: u32,
    pub children: Vec<CacheTree>,
}

impl CacheTree {
    /// The child named `name`.
    pub fn child(&self, name: &[u8]) -> Option<&CacheTree> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// An index file, read.
#[derive(Clone, Debug)]
pub struct Index {
    pub version: u32,
    /// Sorted by path, then stage, as git writes them.
    pub entries: Vec<Entry>,
    pub tree: Option<CacheTree>,
    /// Every entry's path, one after the other (one allocation, not one
    /// per entry).
    pub paths: Vec<u8>,
    /// The resolve-undo extension (`REUC`), kept as read.
    pub reuc: Option<Vec<u8>>,
}

impl Index {
    /// An index with no entries.
    pub fn empty() -> Index {
        Index { version: 2, entries: Vec::new(), tree: None, paths: Vec::new(), reuc: None }
    }

    /// The path of `entry`, an entry of this index.
    pub fn path(&self, entry: &Entry) -> &[u8] {
        &self.paths[entry.path_at as usize..(entry.path_at + entry.path_len) as usize]
    }

    /// Appends an entry whose path is `path`.
    pub fn push(&mut self, mut entry: Entry, path: &[u8]) {
        entry.path_at = self.paths.len() as u32;
        entry.path_len = path.len() as u32;
        self.paths.extend_from_slice(path);
        self.entries.push(entry);
    }
}

/// A cursor over the file's bytes; every read is bounds-checked.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Unsupported> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(truncated)?;
        let out = &self.data[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, Unsupported> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u16(&mut self) -> Result<u16, Unsupported> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }

    /// Bytes up to the next NUL, which is consumed.
    fn until_nul(&mut self) -> Result<&'a [u8], Unsupported> {
        let rest = &self.data[self.at..];
        let len = memchr::memchr(0, rest).ok_or_else(truncated)?;
        self.at += len + 1;
        Ok(&rest[..len])
    }

    /// Version 4's offset-encoded varint.
    fn varint(&mut self) -> Result<usize, Unsupported> {
        let mut byte = self.take(1)?[0];
        let mut value = (byte & 0x7f) as usize;
        while byte & 0x80 != 0 {
            byte = self.take(1)?[0];
            value = value
                .checked_add(1)
                .and_then(|v| v.checked_mul(128))
                .and_then(|v| v.checked_add((byte & 0x7f) as usize))
                .ok_or_else(|| Unsupported("an oversized path prefix".into()))?;
        }
        Ok(value)
    }
}

fn truncated() -> Unsupported {
    Unsupported("the index ends early".into())
}

/// Reads the index at `path`.
pub fn read(path: &std::path::Path) -> Result<Index, Unsupported> {
    let data = std::fs::read(path).map_err(|e| Unsupported(format!("cannot read {}: {e}", path.display())))?;
    parse(&data)
}

/// Parses an index file's bytes.
pub fn parse(data: &[u8]) -> Result<Index, Unsupported> {
    if data.len() < 12 + HASH_LEN {
        return Err(truncated());
    }
    // The trailing checksum is not part of the content.
    let body = &data[..data.len() - HASH_LEN];
    let mut b = Bytes { data: body, at: 0 };
    if b.take(4)? != b"DIRC" {
        return Err(Unsupported("not an index file (no DIRC signature)".into()));
    }
    let version = b.u32()?;
    if !(2..=4).contains(&version) {
        return Err(Unsupported(format!("index version {version}")));
    }
    let count = b.u32()? as usize;
    // Each entry takes at least 63 bytes: a corrupt count must not reserve gigabytes.
    let mut entries: Vec<Entry> = Vec::with_capacity(count.min(body.len() / 62));
    // Paths take what is left of the file once fixed-size fields are gone.
    let mut paths: Vec<u8> = Vec::with_capacity(body.len().saturating_sub(count.min(body.len() / 62) * 62));
    let mut previous: Option<(usize, usize)> = None;
    for _ in 0..count {
        let start = b.at;
        let mut word = [0u32; 10];
        for w in &mut word {
            *w = b.u32()?;
        }
        let oid: [u8; HASH_LEN] = b.take(HASH_LEN)?.try_into().expect("the hash length");
        let flags = b.u16()?;
        let flags_extended = if flags & 0x4000 != 0 {
            if version < 3 {
                return Err(Unsupported("an extended entry in a version 2 index".into()));
            }
            b.u16()?
        } else {
            0
        };
        let path_at = paths.len();
        if version == 4 {
            // The previous path, less `strip` bytes at its end, then a new suffix.
            let strip = b.varint()?;
            let (at, len) = previous.unwrap_or((0, 0));
            let keep = len.checked_sub(strip).ok_or_else(|| Unsupported("a bad path prefix".into()))?;
            paths.extend_from_within(at..at + keep);
            paths.extend_from_slice(b.until_nul()?);
        } else {
            let before_path = b.at - start;
            let len = (flags & 0xfff) as usize;
            // A name of 0xfff bytes or more says so, and ends at its NUL.
            let (path, nul_read) = if len < 0xfff { (b.take(len)?, false) } else { (b.until_nul()?, true) };
            paths.extend_from_slice(path);
            // The entry is padded with 1 to 8 NULs to a multiple of 8 bytes.
            let total = (before_path + path.len() + 8) & !7;
            let pad = total - (before_path + path.len() + usize::from(nul_read));
            if b.take(pad)?.iter().any(|&x| x != 0) {
                return Err(Unsupported("an entry's padding is not NUL".into()));
            }
        }
        let path_len = paths.len() - path_at;
        // Version 4 rebuilds each path from the one before: bound what a
        // crafted file can make of that.
        if path_len > MAX_PATH || paths.len() > 16 * data.len() + (1 << 20) {
            return Err(Unsupported("index paths longer than any work tree holds".into()));
        }
        previous = Some((path_at, path_len));
        entries.push(Entry {
            path_at: path_at as u32,
            path_len: path_len as u32,
            ctime: (word[0], word[1]),
            mtime: (word[2], word[3]),
            dev: word[4],
            ino: word[5],
            mode: word[6],
            uid: word[7],
            gid: word[8],
            size: word[9],
            oid,
            flags,
            flags_extended,
        });
    }
    let mut tree = None;
    let mut reuc = None;
    while b.at < body.len() {
        let sig: [u8; 4] = b.take(4)?.try_into().expect("4 bytes");
        let size = b.u32()? as usize;
        let ext = b.take(size)?;
        match &sig {
            b"TREE" => tree = Some(parse_tree(ext)?),
            b"REUC" => reuc = Some(ext.to_vec()),
            // Optional extensions (upper-case) can be ignored; mandatory ones cannot.
            s if s[0].is_ascii_uppercase() => {}
            s => return Err(Unsupported(format!("the index extension {:?}", String::from_utf8_lossy(s)))),
        }
    }
    Ok(Index { version, entries, tree, paths, reuc })
}

/// The `TREE` extension: nodes in pre-order, each `path NUL entries SP
/// subtrees LF [oid]`, with `entries` = -1 for an invalid node (no oid).
fn parse_tree(data: &[u8]) -> Result<CacheTree, Unsupported> {
    let mut b = Bytes { data, at: 0 };
    let root = tree_node(&mut b, 0)?;
    if b.at != data.len() {
        return Err(Unsupported("trailing bytes in the cache tree".into()));
    }
    Ok(root)
}

fn tree_node(b: &mut Bytes<'_>, depth: usize) -> Result<CacheTree, Unsupported> {
    if depth > 4096 {
        return Err(Unsupported("a cache tree nested too deep".into()));
    }
    let bad = || Unsupported("a malformed cache tree".into());
    let name = b.until_nul()?.to_vec();
    let rest = &b.data[b.at..];
    let nl = memchr::memchr(b'\n', rest).ok_or_else(bad)?;
    let line = std::str::from_utf8(&rest[..nl]).map_err(|_| bad())?;
    b.at += nl + 1;
    let (entries, subtrees) = line.split_once(' ').ok_or_else(bad)?;
    let entries: i64 = entries.parse().map_err(|_| bad())?;
    let subtrees: usize = subtrees.parse().map_err(|_| bad())?;
    let oid = if entries >= 0 { Some(b.take(HASH_LEN)?.try_into().expect("the hash length")) } else { None };
    let mut children = Vec::with_capacity(subtrees.min(1024));
    for _ in 0..subtrees {
        children.push(tree_node(b, depth + 1)?);
    }
    Ok(CacheTree { name, oid, entries: entries.max(0) as u32, children })
}

impl Index {
    /// Sets `path` to `entry` (its path and name-length bits are set
    /// here), or removes it when `None`, as `git add` or `git rm --cached`
    /// would: every stage of the path goes, and so does whatever stood in
    /// the way (a file where the path has a directory, a directory where
    /// it has a file). The cache tree's nodes on the path's way are
    /// invalidated, and a node that was the path as a directory removed.
    pub fn set(&mut self, path: &[u8], entry: Option<Entry>) {
        let ancestors = memchr::memchr_iter(b'/', path).map(|i| &path[..i]);
        let in_the_way = |p: &[u8]| {
            p == path
                || (p.len() > path.len() && p.starts_with(path) && p[path.len()] == b'/')
                || ancestors.clone().any(|a| a == p)
        };
        let paths = &self.paths;
        self.entries.retain(|e| !in_the_way(&paths[e.path_at as usize..(e.path_at + e.path_len) as usize]));
        if let Some(mut e) = entry {
            e.flags = (e.flags & !0x3fff) | (path.len().min(0xfff) as u16);
            if e.flags_extended != 0 {
                e.flags |= 0x4000;
            }
            let at = self.entries.partition_point(|x| self.path(x) < path);
            e.path_at = self.paths.len() as u32;
            e.path_len = path.len() as u32;
            self.paths.extend_from_slice(path);
            self.entries.insert(at, e);
        }
        if let Some(tree) = &mut self.tree {
            invalidate(tree, path);
        }
    }

    /// Smudges every entry but `except` whose file changed no earlier than
    /// `index_mtime`, the time of the file the entries were read from: its
    /// stat data may match a file changed within the same tick after it
    /// was recorded ("racily clean"), which a later index's time no longer
    /// reveals. A zero size makes git (and the status here) compare the
    /// contents instead, as git's own `ce_smudge_racily_clean_entry` does
    /// for entries it finds changed.
    pub fn smudge_racy(&mut self, index_mtime: (i64, i64), except: &[u8]) {
        for i in 0..self.entries.len() {
            let e = &self.entries[i];
            let racy = (e.mtime.0 as i64, e.mtime.1 as i64) >= index_mtime;
            if racy && self.path(e) != except {
                self.entries[i].size = 0;
            }
        }
    }

    /// The file's bytes: the header, every entry, the cache tree and the
    /// resolve-undo data, and the SHA-1 of all of it.
    pub fn to_bytes(&self) -> Vec<u8> {
        use sha1::Digest;
        let extended = self.entries.iter().any(|e| e.flags_extended != 0);
        let version = if extended && self.version == 2 { 3 } else { self.version };
        let mut out = Vec::with_capacity(64 + self.entries.len() * 72 + self.paths.len());
        out.extend_from_slice(b"DIRC");
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        let mut previous: &[u8] = b"";
        for e in &self.entries {
            let start = out.len();
            let path = self.path(e);
            let flags =
                (e.flags & !0x4fff) | (path.len().min(0xfff) as u16) | if e.flags_extended != 0 { 0x4000 } else { 0 };
            let mut fixed = [0u8; 62];
            let words = [e.ctime.0, e.ctime.1, e.mtime.0, e.mtime.1, e.dev, e.ino, e.mode, e.uid, e.gid, e.size];
            for (i, w) in words.iter().enumerate() {
                fixed[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
            }
            fixed[40..60].copy_from_slice(&e.oid);
            fixed[60..62].copy_from_slice(&flags.to_be_bytes());
            out.extend_from_slice(&fixed);
            if e.flags_extended != 0 {
                out.extend_from_slice(&e.flags_extended.to_be_bytes());
            }
            if version == 4 {
                let common = previous.iter().zip(path).take_while(|(a, b)| a == b).count();
                put_varint(&mut out, previous.len() - common);
                out.extend_from_slice(&path[common..]);
                out.push(0);
                previous = path;
            } else {
                out.extend_from_slice(path);
                // 1 to 8 NULs, to a multiple of 8 bytes.
                let total = (out.len() - start + 8) & !7;
                out.resize(start + total, 0);
            }
        }
        if let Some(tree) = &self.tree {
            let mut data = Vec::new();
            put_tree(&mut data, tree);
            put_extension(&mut out, b"TREE", &data);
        }
        if let Some(reuc) = &self.reuc {
            put_extension(&mut out, b"REUC", reuc);
        }
        let hash = sha1::Sha1::digest(&out);
        out.extend_from_slice(&hash);
        out
    }
}

/// Invalidates the cache tree nodes on `path`'s way (git's `do_invalidate_path`).
fn invalidate(node: &mut CacheTree, path: &[u8]) {
    node.oid = None;
    node.entries = 0;
    match memchr::memchr(b'/', path) {
        Some(slash) => {
            if let Some(down) = node.children.iter_mut().find(|c| c.name == path[..slash]) {
                invalidate(down, &path[slash + 1..]);
            }
        }
        None => node.children.retain(|c| c.name != path),
    }
}

fn put_extension(out: &mut Vec<u8>, sig: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(sig);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
}

fn put_tree(out: &mut Vec<u8>, node: &CacheTree) {
    out.extend_from_slice(&node.name);
    out.push(0);
    match &node.oid {
        Some(oid) => {
            out.extend_from_slice(format!("{} {}\n", node.entries, node.children.len()).as_bytes());
            out.extend_from_slice(oid);
        }
        None => out.extend_from_slice(format!("-1 {}\n", node.children.len()).as_bytes()),
    }
    for c in &node.children {
        put_tree(out, c);
    }
}

/// Version 4's offset-encoded varint (git's `encode_varint`).
fn put_varint(out: &mut Vec<u8>, mut value: usize) {
    let mut buf = [0u8; 16];
    let mut at = buf.len() - 1;
    buf[at] = (value & 127) as u8;
    loop {
        value >>= 7;
        if value == 0 {
            break;
        }
        value -= 1;
        at -= 1;
        buf[at] = 128 | (value & 127) as u8;
    }
    out.extend_from_slice(&buf[at..]);
}

/// What tells that the index file is still the one that was read: it is
/// only ever replaced by a rename (a new inode, whose number cannot be the
/// old one's while the reader holds the old file open) or rewritten, which
/// moves its change time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub fn of(m: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    /// The file's modification time.
    pub fn mtime(&self) -> (i64, i64) {
        self.mtime
    }
}

/// An index as read earlier, and the file it was read from, kept open (see
/// [`Stamp`]).
pub struct Known<'a> {
    pub index: &'a Index,
    pub stamp: Stamp,
}

/// Why [`update`] did not write the index.
#[derive(Debug)]
pub enum UpdateError {
    /// The file uses what this writer does not write: nothing was changed,
    /// and libgit2 can do it.
    Unsupported(Unsupported),
    /// The lock could not be taken, or the file not read or written:
    /// nothing was changed.
    Io(std::io::Error),
}

/// How long [`update`] waits for another git process's `index.lock`
/// (an editor's background `git status` holds it for milliseconds).
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_millis(1000);

/// Sets the entry of `path` in the index of the repository at `git_dir`
/// (see [`Index::set`]), under git's `index.lock`: the file is read once
/// the lock is held, so a concurrent `git add` is neither lost nor mixed
/// in, and replaced whole by a rename. When the file is still the one
/// `known` was read from, that reading is used instead of reading it again.
pub fn update(
    git_dir: &std::path::Path,
    path: &[u8],
    entry: Option<Entry>,
    known: Option<Known<'_>>,
) -> Result<(), UpdateError> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let file = git_dir.join("index");
    let lock_path = git_dir.join("index.lock");
    let deadline = std::time::Instant::now() + LOCK_PATIENCE;
    let mut lock = loop {
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o666).open(&lock_path) {
            Ok(f) => break f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => {
                return Err(UpdateError::Io(std::io::Error::new(
                    e.kind(),
                    format!("cannot take {}: {e} (another git process is using the index)", lock_path.display()),
                )));
            }
        }
    };
    let written = (|| -> Result<(), UpdateError> {
        let (mut index, mtime) = match std::fs::File::open(&file) {
            Ok(mut f) => {
                let stamp = Stamp::of(&f.metadata().map_err(UpdateError::Io)?);
                match known.filter(|k| k.stamp == stamp) {
                    Some(k) => (k.index.clone(), stamp.mtime),
                    None => {
                        let mut data = Vec::with_capacity(stamp.size as usize);
                        f.read_to_end(&mut data).map_err(UpdateError::Io)?;
                        (parse(&data).map_err(UpdateError::Unsupported)?, stamp.mtime)
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Index::empty(), (i64::MIN, 0)),
            Err(e) => return Err(UpdateError::Io(e)),
        };
        index.set(path, entry);
        index.smudge_racy(mtime, path);
        lock.write_all(&index.to_bytes()).map_err(UpdateError::Io)?;
        std::fs::rename(&lock_path, &file).map_err(UpdateError::Io)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&lock_path);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version 2 or 3 entry as git writes it.
    fn entry(path: &[u8], extended: Option<u16>) -> Vec<u8> {
        let mut out = Vec::new();
        for w in [1u32, 2, 3, 4, 5, 6, 0o100644, 7, 8, 9] {
            out.extend_from_slice(&w.to_be_bytes());
        }
        out.extend_from_slice(&[0xab; 20]);
        let flags = (path.len().min(0xfff) as u16) | if extended.is_some() { 0x4000 } else { 0 };
        out.extend_from_slice(&flags.to_be_bytes());
        if let Some(x) = extended {
            out.extend_from_slice(&x.to_be_bytes());
        }
        out.extend_from_slice(path);
        let fixed = if extended.is_some() { 64 } else { 62 };
        let total = (fixed + path.len() + 8) & !7;
        out.resize(total, 0);
        out
    }

    fn file(version: u32, entries: &[Vec<u8>], extensions: &[u8]) -> Vec<u8> {
        let mut out = b"DIRC".to_vec();
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for e in entries {
            out.extend_from_slice(e);
        }
        out.extend_from_slice(extensions);
        out.extend_from_slice(&[0; 20]);
        out
    }

    #[test]
    fn names_of_0xfff_bytes_and_more_end_at_their_nul() {
        let long = vec![b'a'; 5000];
        let exact = vec![b'b'; 0xfff];
        let data = file(2, &[entry(&long, None), entry(&exact, None), entry(b"c", None)], b"");
        let index = parse(&data).unwrap();
        let paths: Vec<usize> = index.entries.iter().map(|e| index.path(e).len()).collect();
        assert_eq!(paths, [5000, 0xfff, 1]);
        assert_eq!(index.entries[2].mode, 0o100644);
        assert_eq!(index.entries[2].mtime, (3, 4));
    }

    #[test]
    fn extended_flags_optional_and_mandatory_extensions() {
        let entries = [entry(b"a", Some(1 << 14)), entry(b"b", None)];
        let index = parse(&file(3, &entries, b"")).unwrap();
        assert_eq!(index.entries[0].flags_extended, 1 << 14);
        assert!(parse(&file(2, &entries, b"")).is_err(), "extended flags need version 3");
        let optional = [b"UNTR".as_slice(), &3u32.to_be_bytes(), b"xyz"].concat();
        assert!(parse(&file(3, &entries, &optional)).is_ok());
        let split = [b"link".as_slice(), &3u32.to_be_bytes(), b"xyz"].concat();
        assert_eq!(parse(&file(3, &entries, &split)).unwrap_err(), Unsupported("the index extension \"link\"".into()));
        let tree = [b"TREE".as_slice(), &8u32.to_be_bytes(), b"\0-1 0\n", b"zz"].concat();
        assert!(parse(&file(3, &entries, &tree)).is_err(), "trailing bytes in a cache tree");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Whatever the bytes, the reader answers (most often with an
        /// error) and never panics or over-allocates.
        #[test]
        fn hostile_bytes_never_panic(cut in 0usize..400, flips in proptest::collection::vec((0usize..400, 0u8..=255), 0..6)) {
            let tree = [b"TREE".as_slice(), &25u32.to_be_bytes(), b"\x001 0\n", &[7u8; 20]].concat();
            let mut data = file(4, &[], b"");
            data = [&data[..8], &3u32.to_be_bytes(), b""].concat();
            // Three version 4 entries, with prefix compression.
            for (strip, suffix) in [(0u8, b"dir/a".as_slice()), (1, b"b"), (5, b"other")] {
                for w in [1u32, 2, 3, 4, 5, 6, 0o100644, 7, 8, 9] {
                    data.extend_from_slice(&w.to_be_bytes());
                }
                data.extend_from_slice(&[0xab; 20]);
                data.extend_from_slice(&(suffix.len() as u16).to_be_bytes());
                data.push(strip);
                data.extend_from_slice(suffix);
                data.push(0);
            }
            data.extend_from_slice(&tree);
            data.extend_from_slice(&[0; 20]);
            let clean = parse(&data).unwrap();
            let paths: Vec<&[u8]> = clean.entries.iter().map(|e| clean.path(e)).collect();
            proptest::prop_assert_eq!(paths, [b"dir/a".as_slice(), b"dir/b", b"other"]);
            proptest::prop_assert_eq!(clean.tree.unwrap().oid, Some([7u8; 20]));
            for (at, byte) in flips {
                if let Some(b) = data.get_mut(at) {
                    *b = byte;
                }
            }
            data.truncate(data.len().saturating_sub(cut));
            let _ = parse(&data);
        }
    }

    use crate::git::git_cli as git;

    /// Two identical repositories whose index is version `version`, with
    /// files in nested folders and a cache tree git wrote.
    fn twins(version: u32) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        for (path, text) in
            [("top.md", "t\n"), ("x", "file\n"), ("src/lib.rs", "l\n"), ("src/m/deep.rs", "d\n"), ("src/z.rs", "z\n")]
        {
            let file = a.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        git(&a, &["init", "-q", "-b", "main"]);
        git(&a, &["add", "-A"]);
        git(&a, &["commit", "-qm", "one"]);
        // A cache tree for every folder.
        git(&a, &["read-tree", "HEAD"]);
        git(&a, &["update-index", "--refresh"]);
        git(&a, &["update-index", "--index-version", &version.to_string()]);
        let b = dir.path().join("b");
        git(dir.path(), &["clone", "-q", "a", "b"]);
        std::fs::copy(a.join(".git/index"), b.join(".git/index")).unwrap();
        (dir, a, b)
    }

    fn entry_for(oid_hex: &str, mode: u32) -> Entry {
        let mut oid = [0u8; HASH_LEN];
        for (i, byte) in oid.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&oid_hex[i * 2..i * 2 + 2], 16).unwrap();
        }
        Entry::new(oid, mode)
    }

    /// The index as git lists it, and the tree git writes from it (which
    /// trusts every cache tree node the file says is valid).
    fn as_git_sees_it(repo: &std::path::Path) -> (String, String) {
        (git(repo, &["ls-files", "-s"]), git(repo, &["write-tree"]))
    }

    #[test]
    fn an_updated_index_is_the_one_git_makes_in_every_version() {
        for version in [2, 3, 4] {
            let (_dir, ours, theirs) = twins(version);
            // git keeps version 3 only while an entry has extended flags.
            let wrote = read(&ours.join(".git/index")).unwrap().version;
            assert_eq!(wrote, if version == 3 { 2 } else { version });
            let blob = git(&ours, &["hash-object", "-w", "--stdin"]); // empty blob
            let blob = blob.trim();
            git(&theirs, &["hash-object", "-w", "--stdin"]);
            // Changed in a nested folder, added in a new one, removed, a file
            // replaced by a folder.
            let cases: [(&str, Option<u32>); 4] = [
                ("src/m/deep.rs", Some(0o100755)),
                ("new/dir/file.txt", Some(0o100644)),
                ("src/z.rs", None),
                ("x/inside", Some(0o100644)),
            ];
            for (path, mode) in cases {
                update(&ours.join(".git"), path.as_bytes(), mode.map(|m| entry_for(blob, m)), None).unwrap();
                match mode {
                    Some(m) => git(
                        &theirs,
                        &["update-index", "--add", "--replace", "--cacheinfo", &format!("{m:o},{blob},{path}")],
                    ),
                    None => git(&theirs, &["update-index", "--force-remove", path]),
                };
                assert_eq!(as_git_sees_it(&ours), as_git_sees_it(&theirs), "version {version}, after {path}");
            }
            assert_eq!(read(&ours.join(".git/index")).unwrap().version, wrote);
            // git verifies the trailing checksum when it reads the file.
            git(&ours, &["fsck", "--cache", "--no-dangling"]);
        }
    }

    #[test]
    fn an_index_changed_since_it_was_read_is_read_again_and_a_held_lock_is_waited_for_then_refused() {
        let (_dir, repo, _) = twins(2);
        let file = repo.join(".git/index");
        let before = std::fs::File::open(&file).unwrap();
        let stamp = Stamp::of(&before.metadata().unwrap());
        let earlier = read(&file).unwrap();
        // Someone stages a file after the look read the index.
        std::fs::write(repo.join("staged.md"), "s\n").unwrap();
        git(&repo, &["add", "staged.md"]);
        let blob = git(&repo, &["hash-object", "-w", "--stdin"]);
        let known = Known { index: &earlier, stamp };
        update(&repo.join(".git"), b"top.md", Some(entry_for(blob.trim(), 0o100644)), Some(known)).unwrap();
        let listed = git(&repo, &["ls-files"]);
        assert!(listed.lines().any(|l| l == "staged.md"), "their staging survives: {listed}");

        // git's lock is git's: waited for, then refused, and left in place.
        std::fs::write(repo.join(".git/index.lock"), "").unwrap();
        let was = std::fs::read(&file).unwrap();
        let refused = update(&repo.join(".git"), b"top.md", None, None);
        assert!(matches!(refused, Err(UpdateError::Io(_))));
        assert_eq!(std::fs::read(&file).unwrap(), was);
        assert!(repo.join(".git/index.lock").exists());
    }

    #[test]
    fn entries_that_were_racily_clean_are_smudged_but_the_one_written() {
        let mut index = Index::empty();
        for (path, mtime) in [(&b"old"[..], (100, 0)), (b"racy", (200, 5)), (b"mine", (300, 0))] {
            let mut e = entry_for(&"ab".repeat(20), 0o100644);
            e.mtime = mtime;
            e.size = 7;
            index.push(e, path);
        }
        index.smudge_racy((200, 5), b"mine");
        let sizes: Vec<u32> = index.entries.iter().map(|e| e.size).collect();
        assert_eq!(sizes, [7, 0, 7]);
        // A mandatory extension is refused before anything is written.
        let split = [b"link".as_slice(), &3u32.to_be_bytes(), b"xyz"].concat();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index"), file(2, &[entry(b"a", None)], &split)).unwrap();
        assert!(matches!(update(dir.path(), b"a", None, None), Err(UpdateError::Unsupported(_))));
        assert!(!dir.path().join("index.lock").exists());
    }
}

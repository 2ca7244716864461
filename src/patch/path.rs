//! Path safety (DESIGN §5 "Path safety"): where a patch may go.
//!
//! A patch's path passes three checks, in this order, before anything is
//! written:
//!
//! 1. [`lexical`]: relative, UTF-8, at most [`MAX_PATH_BYTES`], no empty,
//!    `.` or `..` component (so no leading `/`, no `//`, no trailing `/`),
//!    no NUL, no other control character, no backslash, no invisible Unicode
//!    character (which some file systems ignore, so `.git\u{200c}` could
//!    reach `.git`), no component over 255 bytes → `PATH_INVALID`.
//! 2. [`allowed`]: the protected set and `[paths] deny` first, compared
//!    case-insensitively, with any `.git` component protected at any depth
//!    → `PATH_PROTECTED`; then the allowlist, compared exactly →
//!    `PATH_NOT_ALLOWED` ([`crate::rails::PathPolicy::classify`]).
//! 3. [`Target::open`], on disk: every directory component is opened with
//!    `openat(O_NOFOLLOW | O_DIRECTORY)` relative to the previous one,
//!    starting at the work-tree root, so no symlink is ever followed
//!    (`SYMLINK_IN_PATH`) and the path is never resolved again by name.
//!    A directory on another file system (a mount) or holding its own
//!    `.git` (a nested repository or submodule) is refused, and the target
//!    must be a regular file, or absent (`PATH_INVALID` for a directory,
//!    fifo, socket or device; `SYMLINK_IN_PATH` for a symlink).
//!
//! The walk is portable POSIX (`openat` with `O_NOFOLLOW`); it refuses every
//! symlink, which is stricter than `openat2(RESOLVE_BENEATH)`, so Linux's
//! `openat2` would add nothing.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::{MAX_TARGET_BYTES, PatchError};
use crate::rails::{PathClass, PathPolicy};

/// The longest path a patch may name, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;

/// The longest component (file or directory name), in bytes.
pub const MAX_COMPONENT_BYTES: usize = 255;

/// Code points that are invisible, or that some file systems ignore when
/// comparing names (HFS+ ignores the ones git checks for in `is_hfs_dotgit`),
/// or that reorder text on screen (bidirectional overrides).
const INVISIBLE: &[(char, char)] = &[
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{206A}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
];

/// Step 1: the lexical rules. `path` is repository-relative.
pub fn lexical(path: &str) -> Result<(), PatchError> {
    let invalid = |reason: String| Err(PatchError::PathInvalid { path: path.to_string(), reason });
    if path.is_empty() {
        return invalid("it is empty".into());
    }
    if path.len() > MAX_PATH_BYTES {
        return invalid(format!("it is {} bytes long, more than {MAX_PATH_BYTES}", path.len()));
    }
    if path.contains('\0') {
        return invalid("it contains a NUL byte".into());
    }
    if path.contains('\\') {
        return invalid("it contains a backslash (use / as the separator)".into());
    }
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return invalid(format!("it contains the control character U+{:04X}", c as u32));
    }
    if let Some(c) = path.chars().find(|c| INVISIBLE.iter().any(|(lo, hi)| (lo..=hi).contains(&c))) {
        return invalid(format!("it contains the invisible character U+{:04X}", c as u32));
    }
    if path.starts_with('/') {
        return invalid("it is absolute; patch paths are relative to the repository root".into());
    }
    if path.ends_with('/') {
        return invalid("it ends with a slash".into());
    }
    for component in path.split('/') {
        match component {
            "" => return invalid("it has an empty component (//)".into()),
            "." => return invalid("it has a '.' component".into()),
            ".." => return invalid("it has a '..' component".into()),
            c if c.len() > MAX_COMPONENT_BYTES => {
                return invalid(format!("a component is {} bytes long, more than {MAX_COMPONENT_BYTES}", c.len()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Step 2: protected (and denied) first, then the allowlist. Returns the
/// allow pattern that lets the path in. `path` must have passed [`lexical`].
pub fn allowed<'p>(path: &str, policy: &'p PathPolicy) -> Result<&'p str, PatchError> {
    match policy.classify(path) {
        PathClass::Protected(pattern) => {
            Err(PatchError::PathProtected { path: path.to_string(), pattern: pattern.to_string() })
        }
        PathClass::Denied(pattern) => {
            Err(PatchError::PathDenied { path: path.to_string(), pattern: pattern.to_string() })
        }
        PathClass::NotAllowed => {
            Err(PatchError::PathNotAllowed { path: path.to_string(), allow: policy.allow.patterns().to_vec() })
        }
        PathClass::Allowed(pattern) => Ok(pattern),
    }
}

/// Steps 1 and 2 together.
pub fn check<'p>(path: &str, policy: &'p PathPolicy) -> Result<&'p str, PatchError> {
    lexical(path)?;
    allowed(path, policy)
}

/// A patch's target, opened safely (step 3): the deepest existing
/// directory on its path, held open, and the file's current contents.
#[derive(Debug)]
pub struct Target {
    path: String,
    /// The deepest existing directory on the path, opened without following
    /// any symlink; the parent of the file when `missing` is empty.
    pub(super) dir: OwnedFd,
    /// Directory components below `dir` that do not exist yet (only when
    /// the file is absent); `create` makes them.
    pub(super) missing: Vec<String>,
    /// The file's name in its directory.
    pub(super) name: String,
    current: Option<Current>,
}

/// The bytes and permission bits of an existing target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Current {
    pub bytes: Vec<u8>,
    /// `st_mode & 0o7777`.
    pub mode: u32,
    /// The open file's status, taken before its bytes were read (what
    /// git's index records about a file it hashed).
    pub stat: crate::git::StatData,
}

impl Target {
    /// Opens `path` (repository-relative) under the work-tree `root`,
    /// refusing symlinks, mounts, nested repositories and non-regular
    /// targets, and reads the target's bytes when it exists. Checks the
    /// lexical rules again first; the policy is the caller's (see [`check`]).
    pub fn open(root: &Path, path: &str) -> Result<Target, PatchError> {
        let (dir, missing, name) = walk(root, path)?;
        let current = if missing.is_empty() { read_current(&dir, &name, path)? } else { None };
        Ok(Target { path: path.to_string(), dir, missing, name, current })
    }

    /// The repository-relative path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The target's bytes, or `None` when it does not exist.
    pub fn current(&self) -> Option<&[u8]> {
        self.current.as_ref().map(|c| c.bytes.as_slice())
    }

    /// The target's permission bits, or `None` when it does not exist.
    pub fn mode(&self) -> Option<u32> {
        self.current.as_ref().map(|c| c.mode)
    }

    pub fn exists(&self) -> bool {
        self.current.is_some()
    }

    /// The directories `create` would have to make, repository-relative,
    /// outermost first.
    pub fn missing_dirs(&self) -> Vec<String> {
        let components: Vec<&str> = self.path.split('/').collect();
        let depth = components.len() - 1 - self.missing.len();
        (0..self.missing.len()).map(|i| components[..=depth + i].join("/")).collect()
    }

    pub(super) fn dir(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    pub(super) fn take_current(&mut self) -> Option<Current> {
        self.current.take()
    }
}

/// Walks the directory components of `path` from the work-tree `root`
/// with `O_NOFOLLOW | O_DIRECTORY`, refusing symlinks, non-directories,
/// mounts and nested repositories. Returns the deepest existing directory,
/// the components below it that do not exist, and the last component's
/// name. Checks the lexical rules first.
pub(super) fn walk(root: &Path, path: &str) -> Result<(OwnedFd, Vec<String>, String), PatchError> {
    lexical(path)?;
    let root_fd = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| PatchError::io("open the work tree", &root.display().to_string(), e))?;
    let root_dev = device(&rustix::fs::fstat(&root_fd).map_err(|e| PatchError::io("stat", ".", e))?);
    let components: Vec<&str> = path.split('/').collect();
    let Some((name, dirs)) = components.split_last() else {
        return Err(PatchError::PathInvalid { path: path.into(), reason: "it is empty".into() });
    };
    let mut dir = root_fd;
    let mut missing: Vec<String> = Vec::new();
    for (i, component) in dirs.iter().enumerate() {
        if !missing.is_empty() {
            missing.push(component.to_string());
            continue;
        }
        let prefix = components[..=i].join("/");
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(&dir, *component, flags, Mode::empty()) {
            Ok(fd) => {
                let st = rustix::fs::fstat(&fd).map_err(|e| PatchError::io("stat", &prefix, e))?;
                if device(&st) != root_dev {
                    return Err(PatchError::PathInvalid {
                        path: path.into(),
                        reason: format!("{prefix} is on another file system (a mount point)"),
                    });
                }
                match rustix::fs::statat(&fd, ".git", AtFlags::SYMLINK_NOFOLLOW) {
                    Err(Errno::NOENT) => {}
                    Ok(_) => {
                        return Err(PatchError::PathInvalid {
                            path: path.into(),
                            reason: format!("{prefix} is a nested git repository or submodule"),
                        });
                    }
                    Err(e) => return Err(PatchError::io("stat", &format!("{prefix}/.git"), e)),
                }
                dir = fd;
            }
            Err(Errno::NOENT) => missing.push(component.to_string()),
            Err(e) => return Err(refused(&dir, component, &prefix, path, e)),
        }
    }
    Ok((dir, missing, name.to_string()))
}

/// Why opening `component` of `dir` as a directory failed.
fn refused(dir: &OwnedFd, component: &str, prefix: &str, path: &str, err: Errno) -> PatchError {
    match rustix::fs::statat(dir, component, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
            PatchError::SymlinkInPath { path: path.into(), component: prefix.into() }
        }
        Ok(st) if FileType::from_raw_mode(st.st_mode) != FileType::Directory => PatchError::PathInvalid {
            path: path.into(),
            reason: format!("{prefix} is {}, not a directory", describe(FileType::from_raw_mode(st.st_mode))),
        },
        _ => PatchError::io("open", prefix, err),
    }
}

/// Reads the regular file `name` in the held directory `dir` (`path` names
/// it in messages), or `None` when absent; never follows a symlink.
pub(super) fn read_at(dir: &OwnedFd, name: &str, path: &str) -> Result<Option<Current>, PatchError> {
    read_current(dir, name, path)
}

/// Reads the regular file `name` in `dir`, or `None` when absent.
fn read_current(dir: &OwnedFd, name: &str, path: &str) -> Result<Option<Current>, PatchError> {
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(PatchError::io("stat", path, e)),
        Ok(st) => st,
    };
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        FileType::Symlink => return Err(PatchError::SymlinkInPath { path: path.into(), component: path.into() }),
        other => {
            return Err(PatchError::PathInvalid {
                path: path.into(),
                reason: format!("it is {}, not a regular file", describe(other)),
            });
        }
    }
    let size = u64::try_from(st.st_size).unwrap_or(u64::MAX);
    if size > MAX_TARGET_BYTES {
        return Err(PatchError::TargetTooLarge { path: path.into(), size, max: MAX_TARGET_BYTES });
    }
    // O_NONBLOCK: if the name was swapped for a fifo since the stat, the
    // open must not hang; the fstat below then refuses it.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::LOOP) => return Err(PatchError::SymlinkInPath { path: path.into(), component: path.into() }),
        Err(e) => return Err(PatchError::io("open", path, e)),
    };
    let opened = rustix::fs::fstat(&fd).map_err(|e| PatchError::io("stat", path, e))?;
    if FileType::from_raw_mode(opened.st_mode) != FileType::RegularFile
        || opened.st_ino != st.st_ino
        || device(&opened) != device(&st)
    {
        return Err(PatchError::PathInvalid { path: path.into(), reason: "it changed while being checked".into() });
    }
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_TARGET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| PatchError::io("read", path, e))?;
    if bytes.len() as u64 > MAX_TARGET_BYTES {
        return Err(PatchError::TargetTooLarge { path: path.into(), size: bytes.len() as u64, max: MAX_TARGET_BYTES });
    }
    Ok(Some(Current { bytes, mode: mode_bits(&opened), stat: crate::git::StatData::of(&opened) }))
}

fn describe(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a fifo",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "not a regular file",
    }
}

/// `st_dev`, whatever its width on this platform.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
pub(super) fn device(st: &Stat) -> u64 {
    st.st_dev as u64
}

/// `(st_uid, st_gid)`.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
pub(super) fn owner(st: &Stat) -> (u32, u32) {
    (st.st_uid as u32, st.st_gid as u32)
}

/// The permission bits of `st_mode`.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
pub(super) fn mode_bits(st: &Stat) -> u32 {
    (st.st_mode as u32) & 0o7777
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(path: &str) -> String {
        match lexical(path) {
            Err(PatchError::PathInvalid { reason, .. }) => reason,
            other => panic!("{path:?}: expected PATH_INVALID, got {other:?}"),
        }
    }

    #[test]
    fn lexical_rules() {
        assert_eq!(reason(""), "it is empty");
        assert_eq!(reason("/etc/passwd"), "it is absolute; patch paths are relative to the repository root");
        assert_eq!(reason("docs/"), "it ends with a slash");
        assert_eq!(reason("docs//a"), "it has an empty component (//)");
        assert_eq!(reason("./a"), "it has a '.' component");
        assert_eq!(reason("a/../b"), "it has a '..' component");
        assert_eq!(reason("a\\b"), "it contains a backslash (use / as the separator)");
        assert_eq!(reason("a\0b"), "it contains a NUL byte");
        assert_eq!(reason("a\nb"), "it contains the control character U+000A");
        assert_eq!(reason(".git\u{200c}/config"), "it contains the invisible character U+200C");
        assert!(reason(&"a".repeat(4097)).contains("4097 bytes"));
        assert!(reason(&"a".repeat(256)).contains("256 bytes"));
        assert!(lexical(&format!("{}/{}", "a".repeat(255), "b".repeat(255))).is_ok());
        let just_fits = format!("{}bb", "a/".repeat(2047));
        assert_eq!(just_fits.len(), 4096);
        assert!(lexical(&just_fits).is_ok());
        for ok in ["a", "docs/a.md", "..a", "a..", ".hidden", "docs/ünï cödé.md", "*.md", "a b"] {
            assert!(lexical(ok).is_ok(), "{ok}");
        }
    }
}

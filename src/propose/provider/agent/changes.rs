//! What the agent changed, read from the overlay's upper directory and
//! compared with the base commit — never with the scratch `.git`, which the
//! agent may have rewritten at will — and turned into the patches of a
//! proposal.
//!
//! | found in `upper/` | compared with the base commit | becomes |
//! |---|---|---|
//! | a regular file | absent | `create` (a new file that git ignores, such as a build product, is dropped) |
//! | a regular file | same bytes and mode | nothing (a file copied up but not changed) |
//! | a regular file | other bytes, same mode | the smallest of `append`, `old`-anchored `replace` and whole-file `replace` |
//! | a regular file | another mode, or new and executable | a `chmod` op, which Gate 1 refuses (`BAD_PATCH`) |
//! | a whiteout, an opaque directory | present | a `delete` op, refused the same way |
//! | a symlink | | a `symlink` op, refused |
//! | a fifo, socket or device | | a `special` op, refused |
//! | anything under the top `.git/` | | nothing: the agent's commits are its own business |
//!
//! Two or more entries make an array of patches, which Gate 1 refuses as
//! `NOT_ATOMIC` (or `BAD_PATCH` when one of them is not an op at all);
//! paths outside the allowlist or protected are refused by `path_ok` as for
//! any proposal. Nothing here decides; it only describes faithfully.
//!
//! Bounded: at most [`MAX_ENTRIES`] entries are looked at and at most
//! [`MAX_FILE_BYTES`] read of any file; past either, the answer is
//! `invalid_output` naming the limit.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde_json::{Value, json};

use crate::git::Repo;

/// The most entries of `upper/` looked at.
pub const MAX_ENTRIES: usize = 10_000;
/// The largest file read (a proposal carries the file's text).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// One changed path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A regular file with these bytes and this mode (`0o100644` or `0o100755`).
    File {
        path: String,
        bytes: Vec<u8>,
        executable: bool,
    },
    /// Removed (a whiteout), or a directory replaced by another (opaque).
    Deleted {
        path: String,
    },
    Symlink {
        path: String,
    },
    Special {
        path: String,
    },
}

impl Change {
    pub fn path(&self) -> &str {
        match self {
            Change::File { path, .. }
            | Change::Deleted { path }
            | Change::Symlink { path }
            | Change::Special { path } => path,
        }
    }
}

/// Everything in `upper` (the overlay's upper directory), in path order,
/// as it differs from commit `base` of `repo`. `Err` names a limit passed or
/// a name that is not UTF-8.
pub fn read(upper: &Path, repo: &Repo, base: Option<&str>) -> Result<Vec<Change>, String> {
    let mut found = Vec::new();
    let mut seen = 0usize;
    walk(upper, "", &mut seen, &mut found)?;
    let mut changes = Vec::new();
    let git = |e: crate::git::GitError| format!("cannot read the base commit: {e}");
    for change in found {
        match &change {
            Change::File { path, bytes, executable } => match repo.file_at(base, path).map_err(git)? {
                Some(blob) if blob.bytes == *bytes && (blob.mode & 0o111 != 0) == *executable => continue,
                None if !repo.exists_at(base, path).map_err(git)? && repo.is_ignored(path) => continue,
                _ => {}
            },
            Change::Deleted { path } => {
                // Removing what the base does not have (an untracked or
                // ignored file of the work tree) changes nothing.
                if !repo.exists_at(base, path).map_err(git)? {
                    continue;
                }
            }
            Change::Symlink { path } | Change::Special { path } => {
                if !repo.exists_at(base, path).map_err(git)? && repo.is_ignored(path) {
                    continue;
                }
            }
        }
        changes.push(change);
    }
    Ok(changes)
}

fn walk(dir: &Path, rel: &str, seen: &mut usize, out: &mut Vec<Change>) -> Result<(), String> {
    let io = |e: std::io::Error| format!("cannot read the agent's changes in {}: {e}", dir.display());
    let mut entries: Vec<_> = std::fs::read_dir(dir).map_err(io)?.collect::<Result<_, _>>().map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        *seen += 1;
        if *seen > MAX_ENTRIES {
            return Err(format!("the agent changed more than {MAX_ENTRIES} files and directories"));
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(format!("the agent wrote a file whose name is not UTF-8: {:?}", entry.path()));
        };
        if rel.is_empty() && name == ".git" {
            continue;
        }
        let path = if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
        let meta = entry.path().symlink_metadata().map_err(io)?;
        let kind = meta.file_type();
        if kind.is_char_device() && meta.rdev() == 0 {
            out.push(Change::Deleted { path });
        } else if kind.is_dir() {
            if is_opaque(&entry.path()) {
                out.push(Change::Deleted { path: path.clone() });
            }
            walk(&entry.path(), &path, seen, out)?;
        } else if kind.is_file() {
            if meta.len() > MAX_FILE_BYTES {
                return Err(format!(
                    "the agent wrote {path} of {} bytes (at most {MAX_FILE_BYTES} are read)",
                    meta.len()
                ));
            }
            let bytes = std::fs::read(entry.path()).map_err(io)?;
            out.push(Change::File { path, bytes, executable: meta.mode() & 0o111 != 0 });
        } else if kind.is_symlink() {
            out.push(Change::Symlink { path });
        } else {
            out.push(Change::Special { path });
        }
    }
    Ok(())
}

/// Whether overlayfs marked `dir` opaque: it replaced a directory of the
/// lower tree, whose entries are gone.
fn is_opaque(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return false };
    let mut value = [0u8; 4];
    ["user.overlay.opaque", "trusted.overlay.opaque"].iter().any(|name| {
        let name = std::ffi::CString::new(*name).expect("no NUL");
        // SAFETY: reads at most 4 bytes into the buffer.
        let n = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
        n >= 1 && value[0] == b'y'
    })
}

/// The patch (as proposal JSON) for `change`, given the base's bytes of
/// its path (`None` when the base has no file there).
pub fn patch(change: &Change, base: Option<&crate::git::Blob>) -> Value {
    let path = change.path();
    match change {
        Change::Deleted { .. } => json!({"op": "delete", "path": path}),
        Change::Symlink { .. } => json!({"op": "symlink", "path": path}),
        Change::Special { .. } => json!({"op": "special", "path": path}),
        Change::File { bytes, executable, .. } => {
            let was_executable = base.map(|b| b.mode & 0o111 != 0).unwrap_or(false);
            if *executable != was_executable {
                return json!({"op": "chmod", "path": path});
            }
            let Ok(new) = std::str::from_utf8(bytes) else {
                return json!({"op": "binary", "path": path});
            };
            let Some(old) = base.map(|b| b.bytes.as_slice()) else {
                return json!({"op": "create", "path": path, "content": new});
            };
            let Ok(old) = std::str::from_utf8(old) else {
                return json!({"op": "binary", "path": path});
            };
            smallest(path, old, new)
        }
    }
}

/// The smallest patch that turns `old` into `new`: `append` when `new`
/// only adds at the end, else the shorter of an `old`-anchored `replace`
/// (the changed lines, widened line by line until `old` occurs exactly once)
/// and a whole-file `replace`.
pub fn smallest(path: &str, old: &str, new: &str) -> Value {
    if !old.is_empty() && new.len() > old.len() && new.starts_with(old) {
        return json!({"op": "append", "path": path, "content": &new[old.len()..]});
    }
    let whole = json!({"op": "replace", "path": path, "new": new});
    match anchored(old, new) {
        Some((o, n)) if o.len() + n.len() < new.len() => json!({"op": "replace", "path": path, "old": o, "new": n}),
        _ => whole,
    }
}

/// The changed region of `old` and its replacement, in whole lines, widened
/// until the region occurs exactly once in `old`; `None` when it never does
/// short of the whole file.
fn anchored<'a>(old: &'a str, new: &'a str) -> Option<(&'a str, &'a str)> {
    // Byte offsets; every cut below is just after a `\n` or at an end, so
    // always on a character boundary.
    let (o, n) = (old.as_bytes(), new.as_bytes());
    let prefix = o.iter().zip(n).take_while(|(a, b)| a == b).count();
    let max_suffix = o.len().min(n.len()) - prefix;
    let suffix = o.iter().rev().zip(n.iter().rev()).take(max_suffix).take_while(|(a, b)| a == b).count();
    let line_start = |at: usize| o[..at].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let line_end = |at: usize| {
        if at == 0 || o[at - 1] == b'\n' {
            at
        } else {
            o[at..].iter().position(|&b| b == b'\n').map_or(o.len(), |i| at + i + 1)
        }
    };
    let mut start = line_start(prefix);
    let mut end = line_end(o.len() - suffix);
    // What follows the region is the same in both, so the new region ends
    // as far from the end of `new`.
    let new_end = |end: usize| n.len() - (o.len() - end);
    loop {
        let region = &old[start..end];
        if !region.is_empty() && old.matches(region).count() == 1 {
            return Some((region, &new[start..new_end(end)]));
        }
        if start == 0 && end == o.len() {
            return None;
        }
        // One more line on each side.
        if start > 0 {
            start = line_start(start - 1);
        }
        if end < o.len() {
            end = line_end(end + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies a patch JSON the way the patch engine does, for the round trip.
    fn apply(old: &str, p: &Value) -> String {
        match p["op"].as_str().unwrap() {
            "append" => format!("{old}{}", p["content"].as_str().unwrap()),
            "replace" => match p.get("old") {
                Some(o) => {
                    let o = o.as_str().unwrap();
                    assert_eq!(old.matches(o).count(), 1, "old occurs once: {o:?}");
                    old.replacen(o, p["new"].as_str().unwrap(), 1)
                }
                None => p["new"].as_str().unwrap().to_string(),
            },
            other => panic!("{other}"),
        }
    }

    #[test]
    fn the_smallest_patch_is_chosen_and_round_trips() {
        let old = "# Title\n\none\ntwo\nthree\n";
        let p = smallest("a.md", old, "# Title\n\none\ntwo\nthree\nfour\n");
        assert_eq!(p, json!({"op":"append","path":"a.md","content":"four\n"}));

        let long: String = (0..200).map(|i| format!("line {i}\n")).collect();
        let edited = long.replace("line 100\n", "line one hundred\n");
        let p = smallest("a.md", &long, &edited);
        assert_eq!(p, json!({"op":"replace","path":"a.md","old":"line 100\n","new":"line one hundred\n"}));
        assert_eq!(apply(&long, &p), edited);

        // A repeated line is widened until it is unique.
        let rep = "x\nsame\ny\nsame\nz\n".to_string() + &"filler\n".repeat(30);
        let edited = rep.replacen("y\nsame\n", "y\nchanged\n", 1);
        let p = smallest("a.md", &rep, &edited);
        assert_eq!(apply(&rep, &p), edited);
        assert!(p.get("old").is_some(), "{p}");

        // An insertion in the middle, a deletion, a tiny file: all round-trip.
        for (o, n) in [
            (long.as_str(), long.replace("line 5\n", "line 5\nnew\n")),
            (long.as_str(), long.replace("line 7\n", "")),
            ("a\n", "b\n".to_string()),
            ("", "new\n".to_string()),
            ("no newline", "no newline at all".to_string()),
        ] {
            let p = smallest("a.md", o, &n);
            assert_eq!(apply(o, &p), n, "{p}");
        }
    }

    #[test]
    fn odd_changes_become_ops_gate_1_refuses() {
        let blob = crate::git::Blob { bytes: b"x\n".to_vec(), mode: 0o100644 };
        let chmod = Change::File { path: "a.sh".into(), bytes: b"x\n".to_vec(), executable: true };
        assert_eq!(patch(&chmod, Some(&blob))["op"], "chmod");
        let new_exec = Change::File { path: "b.sh".into(), bytes: b"x\n".to_vec(), executable: true };
        assert_eq!(patch(&new_exec, None)["op"], "chmod");
        assert_eq!(patch(&Change::Deleted { path: "a".into() }, Some(&blob))["op"], "delete");
        assert_eq!(patch(&Change::Symlink { path: "a".into() }, None)["op"], "symlink");
        let bin = Change::File { path: "a.bin".into(), bytes: vec![0xff, 0xfe], executable: false };
        assert_eq!(patch(&bin, None)["op"], "binary");
        let created = Change::File { path: "n.md".into(), bytes: b"hi\n".to_vec(), executable: false };
        assert_eq!(patch(&created, None), json!({"op":"create","path":"n.md","content":"hi\n"}));
    }
}

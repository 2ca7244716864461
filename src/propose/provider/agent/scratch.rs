//! The scratch place of one agent step: where the agent works, outside the
//! user's work tree and outside ratchet's private directory.
//!
//! ```text
//! <state home>/ratchet-scratch/<workspace id>/<step id>/   (0700)
//!   tree/          an empty directory: the agent's working directory, on
//!                  which its sandbox mounts an overlay of the work tree
//!   upper/         where the overlay puts everything the agent writes
//!   work/          overlayfs's work directory
//!   home/          the agent's HOME: fresh, empty, writable
//!   task.md        the task ({task})
//!   context.json   the full context ({context})
//! ```
//!
//! `<state home>` is `$XDG_STATE_HOME` (else `~/.local/state`), the home of
//! ratchet's private directory, but a sibling of it (`ratchet-scratch`, not
//! `ratchet`): the sandbox hides all of `<state home>/ratchet` (keys,
//! checkpoints, crash journals) from every child, and the agent's tree may
//! not lie inside a hidden path.
//!
//! Why an overlay and not a checkout: writing out 10,000 files takes about
//! 0.6 s here and removing them 0.3 s; an overlay mount takes a millisecond,
//! the agent still sees every file (and the repository's `.git`, so that
//! agents which commit can), and what it changed is exactly what `upper/`
//! holds. Hardlinks would let the agent write through them into the user's
//! files; the overlay copies a file up before its first write.
//!
//! The place is removed when the step's [`Scratch`] is dropped, whatever
//! the agent did; a ratchet killed while the agent ran leaves it behind, and
//! the next loop command removes it ([`sweep`], called by the session under
//! the workspace lock, so no step of this workspace is using it).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::workspace::Workspace;

/// The directory holding the scratch places of `ws`, or `None` without a
/// state home (no `$XDG_STATE_HOME`, no `$HOME`).
pub fn root(ws: &Workspace) -> Option<PathBuf> {
    Some(crate::private::state_home()?.join("ratchet-scratch").join(ws.id()))
}

/// One step's scratch place; removed on drop.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Makes the scratch place of step `id` under `root` (a leftover one of
    /// the same name is removed first).
    pub fn create(root: &Path, id: &str) -> std::io::Result<Scratch> {
        let dir = root.join(id);
        if dir.symlink_metadata().is_ok() {
            remove(&dir)?;
        }
        crate::fsutil::create_private_dir(root)?;
        crate::fsutil::create_private_dir(&dir)?;
        let scratch = Scratch { dir };
        for sub in ["tree", "upper", "work", "home"] {
            std::fs::create_dir(scratch.dir.join(sub))?;
        }
        Ok(scratch)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn tree(&self) -> PathBuf {
        self.dir.join("tree")
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn home(&self) -> PathBuf {
        self.dir.join("home")
    }
    pub fn task_file(&self) -> PathBuf {
        self.dir.join("task.md")
    }
    pub fn context_file(&self) -> PathBuf {
        self.dir.join("context.json")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = remove(&self.dir);
    }
}

/// Removes every scratch place of `ws` left behind by an interrupted step;
/// how many there were.
pub fn sweep(ws: &Workspace) -> usize {
    let Some(root) = root(ws) else { return 0 };
    let Ok(entries) = std::fs::read_dir(&root) else { return 0 };
    entries.flatten().filter(|e| remove(&e.path()).is_ok()).count()
}

/// Removes `dir` and all in it. overlayfs leaves `work/work` with mode 000,
/// which a user who is not root cannot list: every directory is made
/// readable first. Symlinks are removed, never followed.
fn remove(dir: &Path) -> std::io::Result<()> {
    fn open_up(dir: &Path) {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    open_up(&e.path());
                }
            }
        }
    }
    if dir.symlink_metadata()?.is_dir() {
        open_up(dir);
        std::fs::remove_dir_all(dir)
    } else {
        std::fs::remove_file(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_place_is_private_and_goes_on_drop_even_with_a_locked_directory() {
        let t = tempfile::tempdir().unwrap();
        let s = Scratch::create(t.path(), "s1").unwrap();
        let dir = s.dir().to_path_buf();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        std::fs::create_dir_all(s.work().join("work/inner")).unwrap();
        std::fs::set_permissions(s.work().join("work"), std::fs::Permissions::from_mode(0o0)).unwrap();
        drop(s);
        assert!(!dir.exists());
        // A leftover of the same name is replaced.
        std::fs::create_dir_all(t.path().join("s2/upper/x")).unwrap();
        let s = Scratch::create(t.path(), "s2").unwrap();
        assert!(!s.upper().join("x").exists());
    }
}

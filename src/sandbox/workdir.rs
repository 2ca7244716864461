//! A run's work directory on the host: an empty directory on which the
//! child's init mounts the tmpfs that holds the run's private directories
//! (see `view.rs`).
//!
//! The tmpfs exists only in the child's mount namespace, so the directory
//! stays empty on the host, and one directory serves every run of the user,
//! concurrent ones included: `$TMPDIR/ratchet-sandbox-<uid>`, made once
//! (mode 0700), like tmux's socket directory. A run costs the host's disk
//! nothing, and a ratchet killed mid-run leaves nothing behind.
//!
//! `/tmp` is shared with other users, so the directory is used only when
//! `lstat` shows a real directory owned by this user with mode 0700 (not a
//! symlink another user planted); otherwise the run gets a fresh private
//! directory of its own, removed when the run's [`super::Confined`] is
//! dropped.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::SandboxError;

pub enum Workdir {
    Shared(PathBuf),
    Own(tempfile::TempDir),
}

impl Workdir {
    pub fn create() -> Result<Workdir, SandboxError> {
        Workdir::create_in(&std::env::temp_dir())
    }

    fn create_in(base: &Path) -> Result<Workdir, SandboxError> {
        // SAFETY: a plain getter.
        let uid = unsafe { libc::geteuid() };
        let shared = base.join(format!("ratchet-sandbox-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&shared);
        let safe = std::fs::symlink_metadata(&shared)
            .is_ok_and(|m| m.file_type().is_dir() && m.uid() == uid && m.permissions().mode() & 0o7777 == 0o700);
        let empty = || std::fs::read_dir(&shared).is_ok_and(|mut d| d.next().is_none());
        if safe && empty() {
            return Ok(Workdir::Shared(shared));
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("ratchet-sandbox-{uid}-"))
            .tempdir_in(base)
            .map_err(|e| SandboxError::Prepare { action: "create a directory in", path: base.into(), source: e })?;
        Ok(Workdir::Own(dir))
    }

    pub fn path(&self) -> &Path {
        match self {
            Workdir::Shared(p) => p,
            Workdir::Own(d) => d.path(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_directory_is_used_only_when_it_is_surely_ours_and_empty() {
        let base = tempfile::tempdir().unwrap();
        let shared = |w: &Workdir| matches!(w, Workdir::Shared(_));
        let w = Workdir::create_in(base.path()).unwrap();
        assert!(shared(&w));
        assert_eq!(std::fs::metadata(w.path()).unwrap().permissions().mode() & 0o7777, 0o700);
        let path = w.path().to_path_buf();

        // Open to others: not used.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let own = Workdir::create_in(base.path()).unwrap();
        assert!(!shared(&own) && own.path() != path);
        let own_path = own.path().to_path_buf();
        drop(own);
        assert!(!own_path.exists(), "a run's own directory goes with it");

        // Not empty: not used.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(path.join("x"), "").unwrap();
        assert!(!shared(&Workdir::create_in(base.path()).unwrap()));

        // A symlink planted in its place: not followed.
        std::fs::remove_dir_all(&path).unwrap();
        let elsewhere = base.path().join("elsewhere");
        std::fs::DirBuilder::new().mode(0o700).create(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        let w = Workdir::create_in(base.path()).unwrap();
        assert!(!shared(&w) && !w.path().starts_with(&elsewhere));
    }
}

//! A run's work directory on the host: its private `/tmp`, `/var/tmp` and
//! `/run`, the skeleton of its `/dev`, the empty directory and file that
//! cover hidden paths, and the mount points for what is bound back.
//!
//! It lives in the host's temp directory (mode 0700) and is removed when
//! the run's [`super::Confined`] is dropped, whatever the child left in it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::SandboxError;
use super::view::Entry;

pub struct Workdir {
    dir: Option<tempfile::TempDir>,
}

impl Workdir {
    pub fn create() -> Result<Workdir, SandboxError> {
        let base = std::env::temp_dir();
        let dir = tempfile::Builder::new()
            .prefix("ratchet-sandbox-")
            .tempdir_in(&base)
            .map_err(|e| SandboxError::Prepare { action: "create a directory in", path: base, source: e })?;
        Ok(Workdir { dir: Some(dir) })
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().map(|d| d.path()).unwrap_or(Path::new("/"))
    }

    /// Creates `entries` (their parents first, as listed).
    pub fn build(&self, entries: &[Entry]) -> Result<(), SandboxError> {
        let fail = |action: &'static str, path: &Path, e: std::io::Error| SandboxError::Prepare {
            action,
            path: path.to_path_buf(),
            source: e,
        };
        for entry in entries {
            match entry {
                Entry::Dir(path, mode) => {
                    if !path.is_dir() {
                        std::fs::create_dir(path).map_err(|e| fail("create", path, e))?;
                    }
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))
                        .map_err(|e| fail("set the mode of", path, e))?;
                }
                Entry::File(path, mode) => {
                    if !path.exists() {
                        std::fs::File::create(path).map_err(|e| fail("create", path, e))?;
                    }
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))
                        .map_err(|e| fail("set the mode of", path, e))?;
                }
                Entry::Symlink(path, target) => {
                    std::os::unix::fs::symlink(target, path).map_err(|e| fail("create", path, e))?;
                }
            }
        }
        Ok(())
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        let path = dir.keep();
        if std::fs::remove_dir_all(&path).is_err() {
            // The child may have left directories without write permission.
            make_writable(&path);
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn make_writable(dir: &PathBuf) {
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&entry.path());
            }
        }
    }
}

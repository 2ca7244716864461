//! A run's work directory on the host: an empty directory (mode 0700) in
//! the host's temp directory, on which the child's init mounts the tmpfs
//! that holds the run's private directories (see `view.rs`).
//!
//! The tmpfs exists only in the child's mount namespace, so nothing the
//! child writes reaches the host's disk, and the directory is empty again
//! when the run has ended; it is removed when the run's
//! [`super::Confined`] is dropped.

use std::path::Path;

use super::SandboxError;

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
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let path = dir.keep();
            // Empty unless the child never ran far enough to mount on it.
            if std::fs::remove_dir(&path).is_err() {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
}

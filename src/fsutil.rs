//! Writing ratchet's own files: one atomic write, its durability a parameter.
//!
//! Every file ratchet writes whole (the rails lock, an intent, a pending
//! proposal, a checkpoint, the crash journal) goes through [`write_file`]:
//! the bytes go to a temporary file in the same directory (created with
//! `O_EXCL`, so no other file is ever opened by name), then a rename puts it
//! in place. Readers see the old file or the new one, never a mix. How hard
//! it insists on the disk is the caller's choice ([`Durability`]).

use std::io::Write;
use std::path::Path;

/// How much of a crash a write must survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// A crash of this process (`kill -9` keeps the page cache): no fsync.
    Flushed,
    /// A power cut, as far as the file goes: the bytes are fsynced before
    /// the rename, so the file is never found empty or torn; the rename
    /// itself may be lost (the old file stays).
    File,
    /// A power cut, the rename included: the directory is fsynced too.
    Full,
}

/// Writes `bytes` to `path` atomically, creating its directory, with the
/// durability asked for. The file gets mode 0644 (0600 when `private`
/// directories are wanted, see [`write_private`]).
pub fn write_file(path: &Path, bytes: &[u8], durability: Durability) -> std::io::Result<()> {
    write_with_mode(path, bytes, durability, 0o644)
}

/// [`write_file`] for secrets and private state: mode 0600.
pub fn write_private(path: &Path, bytes: &[u8], durability: Durability) -> std::io::Result<()> {
    write_with_mode(path, bytes, durability, 0o600)
}

fn write_with_mode(path: &Path, bytes: &[u8], durability: Durability, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp;
    let mut attempt = 0u32;
    let mut file = loop {
        tmp = dir.join(format!(".{name}.{}.{attempt}.tmp", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp) {
            Ok(f) => break f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let result = (|| {
        file.write_all(bytes)?;
        if durability != Durability::Flushed {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&tmp, path)?;
        if durability == Durability::Full {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Creates `dir` and its parents; new directories get mode 0700.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_whole_files_and_leave_no_temp_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/file");
        for d in [Durability::Flushed, Durability::File, Durability::Full] {
            write_file(&path, format!("{d:?}").as_bytes(), d).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{d:?}"));
        }
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        write_private(&path, b"secret", Durability::Full).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_stale_temp_file_is_never_opened_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        // Someone planted the first temp name as a symlink to a file of theirs.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(format!(".f.{}.0.tmp", std::process::id()))).unwrap();
        write_file(&path, b"new", Durability::Flushed).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    }
}

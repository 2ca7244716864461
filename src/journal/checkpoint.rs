//! Checkpoints: where the log stood after the last append, kept apart from it.
//!
//! A checkpoint is `{"head":"<64 hex>","seq":N,"size":N}` (canonical JSON and
//! a newline): the seq and hash of the last entry and the log's size in bytes
//! just after it. Two copies are kept, one in `.ratchet/checkpoint` and one
//! in the user's state directory, outside the repository
//! (`$XDG_STATE_HOME/ratchet/<workspace id>/checkpoint`, else
//! `~/.local/state/ratchet/...`). A log shorter than, or inconsistent with,
//! either one has been rolled back. Each is written atomically: a temporary
//! file in the same directory, fsync, rename, fsync of the directory.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::line::{hex, unhex};

/// Where the log stood after an append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: u64,
    pub size: u64,
    pub head: [u8; 32],
}

/// One place a checkpoint is kept, with the name messages use for it.
#[derive(Clone, Debug)]
pub struct Place {
    pub path: PathBuf,
    /// `.ratchet/checkpoint`, or the absolute path of the state copy.
    pub label: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    head: String,
    /// The keyed MAC of `{head, seq, size}` (see [`crate::private`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
    seq: u64,
    size: u64,
}

/// The purpose a checkpoint's MAC is bound to.
const PURPOSE: &str = "ratchet checkpoint v1";

impl Checkpoint {
    /// Reads the checkpoint at `path`: `Ok(None)` when there is none,
    /// `Err(reason)` when the file exists but is not a checkpoint.
    pub fn read(path: &Path) -> Result<Option<Checkpoint>, String> {
        Checkpoint::read_keyed(path, None)
    }

    /// [`Checkpoint::read`], demanding a MAC that verifies under `key` when
    /// one is given: a checkpoint ratchet did not write is invalid.
    pub fn read_keyed(path: &Path, key: Option<&[u8; 32]>) -> Result<Option<Checkpoint>, String> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read it: {e}")),
        };
        let raw: Raw = serde_json::from_slice(&bytes).map_err(|e| format!("not a checkpoint: {e}"))?;
        let head = unhex(raw.head.as_bytes()).ok_or("not a checkpoint: head is not 64 hex digits")?;
        if (raw.seq == 0) != (raw.size == 0) {
            return Err("not a checkpoint: seq and size disagree".into());
        }
        let cp = Checkpoint { seq: raw.seq, size: raw.size, head };
        if let Some(key) = key {
            match &raw.mac {
                None => return Err("it carries no MAC, so ratchet did not write it (or wrote it before keys)".into()),
                Some(tag) if !crate::private::verify_mac(key, PURPOSE, &cp.message(), tag) => {
                    return Err("its MAC does not verify: it was written by something other than ratchet".into());
                }
                Some(_) => {}
            }
        }
        Ok(Some(cp))
    }

    /// What the MAC covers.
    fn message(&self) -> Vec<u8> {
        crate::canonical::to_vec(&Raw { head: hex(&self.head), mac: None, seq: self.seq, size: self.size })
    }

    /// The checkpoint's bytes, as written, with its MAC under `key`.
    pub fn to_bytes(&self, key: Option<&[u8; 32]>) -> Vec<u8> {
        let mac = key.map(|k| crate::private::mac(k, PURPOSE, &self.message()));
        let mut b = crate::canonical::to_vec(&Raw { head: hex(&self.head), mac, seq: self.seq, size: self.size });
        b.push(b'\n');
        b
    }

    /// Writes the checkpoint to `path` atomically, creating its directory
    /// (mode 0700) when missing. The new file's bytes are forced to disk
    /// before the rename, so a checkpoint is never found empty or torn. The
    /// rename itself is not: if a power cut loses it, the older checkpoint
    /// stays, and an older checkpoint is always consistent with a longer log
    /// (the log is fsynced before its checkpoint is written), so it never
    /// raises a false alarm. That saves a directory fsync on every append.
    pub fn write(&self, path: &Path, key: Option<&[u8; 32]>) -> std::io::Result<()> {
        let dir = path.parent().ok_or_else(|| std::io::Error::other("a checkpoint path has a parent"))?;
        crate::fsutil::create_private_dir(dir)?;
        crate::fsutil::write_private(path, &self.to_bytes(key), crate::fsutil::Durability::File)
    }
}

/// fsyncs a directory, so that a rename or a new file in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/checkpoint");
        assert_eq!(Checkpoint::read(&path), Ok(None));
        let cp = Checkpoint { seq: 7, size: 4242, head: [7; 32] };
        cp.write(&path, None).unwrap();
        assert_eq!(Checkpoint::read(&path), Ok(Some(cp)));
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{{\"head\":\"{}\",\"seq\":7,\"size\":4242}}\n", "07".repeat(32)));
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        for bad in ["", "{}", "{\"head\":\"x\",\"seq\":1,\"size\":1}", "{\"head\":\"00\",\"seq\":1,\"size\":1,\"x\":1}"]
        {
            fs::write(&path, bad).unwrap();
            assert!(Checkpoint::read(&path).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_keyed_checkpoint_verifies_only_under_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        let cp = Checkpoint { seq: 3, size: 99, head: [3; 32] };
        let key = [9u8; 32];
        cp.write(&path, Some(&key)).unwrap();
        assert_eq!(Checkpoint::read_keyed(&path, Some(&key)), Ok(Some(cp)));
        assert!(Checkpoint::read_keyed(&path, Some(&[8; 32])).unwrap_err().contains("MAC does not verify"));
        // A forger who rewrites the numbers keeps the old MAC, which no longer fits.
        let forged = fs::read_to_string(&path).unwrap().replace("\"seq\":3", "\"seq\":2");
        fs::write(&path, forged).unwrap();
        assert!(Checkpoint::read_keyed(&path, Some(&key)).is_err());
        // One without a MAC is refused once a key exists.
        Checkpoint { seq: 3, size: 99, head: [3; 32] }.write(&path, None).unwrap();
        assert!(Checkpoint::read_keyed(&path, Some(&key)).unwrap_err().contains("no MAC"));
    }
}

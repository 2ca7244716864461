//! ratchet's private directory: state no child of ratchet can read or write.
//!
//! `$XDG_STATE_HOME/ratchet/<workspace id>/` (else
//! `~/.local/state/ratchet/<workspace id>/`), outside the repository, mode
//! 0700. It holds:
//!
//! - `key`: 32 random bytes (mode 0600), the key of the MACs below;
//! - `checkpoint`: the log's second checkpoint (the first is in `.ratchet/`);
//! - `step.json`: the crash journal of the step in flight.
//!
//! The sandbox hides this directory from providers and the checks, so a
//! child that rewrites the log, the rails, the lock and `.ratchet/`
//! consistently still cannot make a checkpoint whose MAC verifies, nor a
//! crash journal that recovery would obey. (A process of the same user
//! outside the sandbox can read the key; nothing in a user's own account can
//! stop that, and the README says so.)
//!
//! The MAC is blake3's keyed hash over a domain-separated message, compared
//! in constant time (`blake3::Hash`'s equality is).

use std::path::{Path, PathBuf};

use crate::workspace::Workspace;

/// The private directory of a workspace.
#[derive(Clone, Debug)]
pub struct Private {
    dir: PathBuf,
}

impl Private {
    /// The private directory of `ws`: under `$XDG_STATE_HOME` (when
    /// absolute), else `$HOME/.local/state`; `None` when neither is set.
    pub fn of(ws: &Workspace) -> Option<Private> {
        Private::under(state_home().as_deref(), ws)
    }

    /// The private directory of `ws` under the state home `home`.
    pub fn under(home: Option<&Path>, ws: &Workspace) -> Option<Private> {
        home.map(|h| Private { dir: h.join("ratchet").join(ws.id()) })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The MAC key, created (0600, in a 0700 directory) on first use.
    pub fn key(&self) -> std::io::Result<[u8; 32]> {
        let path = self.path("key");
        match std::fs::read(&path) {
            Ok(bytes) => {
                bytes.try_into().map_err(|_| std::io::Error::other(format!("{} is not a 32-byte key", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::fsutil::create_private_dir(&self.dir)?;
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
                crate::fsutil::write_private(&path, &key, crate::fsutil::Durability::Full)?;
                // Two racing first uses: the file that won the rename is the key.
                let bytes = std::fs::read(&path)?;
                bytes.try_into().map_err(|_| std::io::Error::other("the key file is not 32 bytes"))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether a key exists yet (a MAC can be demanded of what ratchet wrote since).
    pub fn has_key(&self) -> bool {
        self.path("key").is_file()
    }
}

/// The state home: `$XDG_STATE_HOME` when absolute, else `~/.local/state`.
pub fn state_home() -> Option<PathBuf> {
    #[cfg(test)]
    if let Some(home) = STATE_HOME.with_borrow(Clone::clone) {
        return Some(home);
    }
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
}

#[cfg(test)]
thread_local! {
    /// The state home of one library test (its own thread), set by
    /// [`set_state_home`]: the environment is the process's, shared by every
    /// test at once, and the real one is the user's.
    static STATE_HOME: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// Sets the state home of the calling thread (library tests only).
#[cfg(test)]
pub(crate) fn set_state_home(home: PathBuf) {
    STATE_HOME.set(Some(home));
}

/// The MAC of `message` under `key`, for `purpose` (domain separation), in hex.
pub fn mac(key: &[u8; 32], purpose: &str, message: &[u8]) -> String {
    mac_parts(key, purpose, &[message])
}

/// [`mac`] of the message that is `parts` one after the other, without
/// copying them into one buffer.
pub fn mac_parts(key: &[u8; 32], purpose: &str, parts: &[&[u8]]) -> String {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(purpose.as_bytes());
    h.update(&[0]);
    for p in parts {
        h.update(p);
    }
    h.finalize().to_hex().to_string()
}

/// Whether `tag` (hex) is the MAC of `message` under `key` for `purpose`,
/// compared in constant time.
pub fn verify_mac(key: &[u8; 32], purpose: &str, message: &[u8], tag: &str) -> bool {
    verify_mac_parts(key, purpose, &[message], tag)
}

/// [`verify_mac`] of the message that is `parts` one after the other.
pub fn verify_mac_parts(key: &[u8; 32], purpose: &str, parts: &[&[u8]], tag: &str) -> bool {
    let Ok(given) = blake3::Hash::from_hex(tag) else { return false };
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(purpose.as_bytes());
    h.update(&[0]);
    for p in parts {
        h.update(p);
    }
    h.finalize() == given
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_private_and_macs_bind_purpose_and_message() {
        let t = tempfile::tempdir().unwrap();
        let ws = Workspace::at(t.path().join("repo"), "");
        let p = Private::under(Some(&t.path().join("state")), &ws).unwrap();
        assert!(!p.has_key());
        let k = p.key().unwrap();
        assert_eq!(p.key().unwrap(), k, "the key is read back, not made again");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(p.path("key")).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(p.dir()).unwrap().permissions().mode() & 0o777, 0o700);
        let tag = mac(&k, "checkpoint", b"abc");
        assert!(verify_mac(&k, "checkpoint", b"abc", &tag));
        assert!(!verify_mac(&k, "checkpoint", b"abd", &tag));
        assert!(!verify_mac(&k, "crash journal", b"abc", &tag));
        assert!(!verify_mac(&[0; 32], "checkpoint", b"abc", &tag));
        assert!(!verify_mac(&k, "checkpoint", b"abc", "not hex"));
    }
}

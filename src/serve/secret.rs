//! The server secret: 32 random bytes, generated on first start into a file
//! of mode 0600 next to the database (`loopkit.secret`), as 64 hex
//! characters. Recovery codes and dashboard tokens are HMACs under the text
//! of this file (and upgrade codes too, unless SIGNUP_UPGRADE_SECRET is set),
//! so an operator can compute them with `openssl dgst -sha256 -hmac`.
//!
//! Invariant: the file is created exclusively with mode 0600, and a secret
//! file readable by others is refused.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Coded, IoError};
use crate::loopkit::keys;

pub struct Secret {
    text: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("the secret file {0} is readable by other users")]
    Permissions(PathBuf),
    #[error("the secret file {0} does not hold 64 hex characters")]
    Corrupt(PathBuf),
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

impl Coded for SecretError {
    fn code(&self) -> &'static str {
        match self {
            SecretError::Io(e) => e.code(),
            SecretError::Permissions(_) => "SECRET_PERMISSIONS",
            SecretError::Corrupt(_) => "SECRET_CORRUPT",
            SecretError::Random(_) => "NO_RANDOMNESS",
        }
    }
    fn hint(&self) -> Option<String> {
        Some(match self {
            SecretError::Io(e) => return e.hint(),
            SecretError::Permissions(p) => format!("run chmod 600 {}", p.display()),
            SecretError::Corrupt(p) => format!(
                "restore {} from a backup; deleting it makes a new secret and invalidates every recovery code",
                p.display()
            ),
            SecretError::Random(_) => "check /dev/urandom and the getrandom syscall".into(),
        })
    }
}

/// `loopkit.secret` next to the database file.
pub fn path_for(db: &Path) -> PathBuf {
    db.with_file_name("loopkit.secret")
}

impl Secret {
    /// A secret with the given text (tests).
    pub fn from_text(text: impl Into<String>) -> Secret {
        Secret { text: text.into() }
    }

    pub fn load_or_create(path: &Path) -> Result<Secret, SecretError> {
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(mut f) => {
                let bytes = keys::random_bytes().map_err(|e| SecretError::Random(e.to_string()))?;
                let text = keys::hex(&bytes);
                f.write_all(text.as_bytes()).and_then(|_| f.sync_all()).map_err(|e| IoError::new("write", path, e))?;
                Ok(Secret { text })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let meta = std::fs::metadata(path).map_err(|e| IoError::new("stat", path, e))?;
                if meta.permissions().mode() & 0o077 != 0 {
                    return Err(SecretError::Permissions(path.to_path_buf()));
                }
                let text = std::fs::read_to_string(path).map_err(|e| IoError::new("read", path, e))?;
                let text = text.trim().to_string();
                if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(SecretError::Corrupt(path.to_path_buf()));
                }
                Ok(Secret { text })
            }
            Err(e) => Err(IoError::new("create", path, e).into()),
        }
    }

    /// The HMAC key: the file's text.
    pub fn key(&self) -> &[u8] {
        self.text.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_created_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("loopkit.secret");
        let a = Secret::load_or_create(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let b = Secret::load_or_create(&p).unwrap();
        assert_eq!(a.key(), b.key());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(Secret::load_or_create(&p).unwrap_err().code(), "SECRET_PERMISSIONS");
    }
}

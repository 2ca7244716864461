//! A bot's private key at rest: the file `ratchet agent keygen` writes and
//! every `ratchet agent` command reads, encrypted under a passphrase.
//!
//! The file is one JSON object (mode 0600, written whole or not at all):
//!
//! ```json
//! {"format": "ratchet-agent-key", "version": 1, "botId": "MCowBQYDK2VwAyEA…",
//!  "kdf": {"alg": "argon2id", "v": 19, "mKiB": 65536, "t": 3, "p": 1, "salt": "…"},
//!  "aead": {"alg": "xchacha20poly1305", "nonce": "…"},
//!  "check": "…", "ciphertext": "…"}
//! ```
//!
//! - **Key derivation**: Argon2id (RFC 9106) of the passphrase with a
//!   random 16-byte salt, into 64 bytes: the first 32 are the AEAD key, the
//!   last 32 key the `check` (a keyed BLAKE3 of a fixed string). The cost
//!   parameters are recorded in the file, so they can be raised later
//!   without breaking old files; a file asking for less than
//!   [`MIN_M_KIB`]/[`MIN_T`] (weakened) or more than [`MAX_M_KIB`]/[`MAX_T`]/
//!   [`MAX_P`] (a memory bomb) is refused before any work.
//! - **Encryption**: XChaCha20-Poly1305 with a random 24-byte nonce over the
//!   PKCS#8 DER of the Ed25519 key; the associated data is every field
//!   but the ciphertext ([`Sealed::aad`]), so an edited `botId`, salt,
//!   nonce or parameter fails authentication like an edited ciphertext.
//! - **Two failures told apart**: a wrong passphrase fails the `check`
//!   ([`KeyFileError::WrongPassphrase`]; so does an altered salt or cost,
//!   which derives another key just the same); a right passphrase whose
//!   ciphertext, nonce or header was altered fails the AEAD tag
//!   ([`KeyFileError::Tampered`]). The check tells an offline guesser
//!   nothing trial decryption would not: both need the full Argon2id work.
//! - A decrypted key must be the key the file names (`botId`).
//!
//! A file in the old form (the key itself, PKCS#8 base64, one line) is
//! refused ([`KeyFileError::Plaintext`]) with the command that encrypts it
//! in place: `ratchet agent encrypt-key`.
//!
//! Secrets (the passphrase, the derived key, the DER) live in
//! `Zeroizing` buffers and are wiped when dropped; nothing here prints or
//! logs. Why not a hand-written scheme: the primitives are RustCrypto's
//! `argon2` and `chacha20poly1305`; only the file's framing is ratchet's.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::signed::Identity;

pub const FORMAT: &str = "ratchet-agent-key";
pub const VERSION: u32 = 1;

/// The cost `keygen` uses: 64 MiB, 3 passes, 1 lane (RFC 9106's second
/// recommended setting, with one lane as ratchet derives single-threaded).
pub const DEFAULT_M_KIB: u32 = 64 * 1024;
pub const DEFAULT_T: u32 = 3;
pub const DEFAULT_P: u32 = 1;
/// The least a file may ask for (OWASP's floor for Argon2id: 19 MiB, 2 passes).
pub const MIN_M_KIB: u32 = 19 * 1024;
pub const MIN_T: u32 = 2;
/// The most a file may ask for: more is refused, not attempted.
pub const MAX_M_KIB: u32 = 1024 * 1024;
pub const MAX_T: u32 = 64;
pub const MAX_P: u32 = 16;
/// Shortest passphrase accepted when encrypting.
pub const MIN_PASSPHRASE: usize = 8;
/// Largest key file read.
pub const MAX_FILE: u64 = 64 << 10;

const CHECK_CONTEXT: &[u8] = b"ratchet-agent-key v1 passphrase check";

/// Why a key file cannot be written or opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("the passphrase does not open {path}")]
    WrongPassphrase { path: String },
    #[error("{path} failed authentication: its ciphertext or header was altered after it was written")]
    Tampered { path: String },
    #[error("{path} holds the private key in plain text")]
    Plaintext { path: String },
    #[error("{path} is not a ratchet agent key file: {why}")]
    Invalid { path: String, why: String },
    #[error("the passphrase is shorter than {MIN_PASSPHRASE} characters")]
    PassphraseTooShort,
    #[error("the key could not be encrypted: {0}")]
    Crypto(String),
}

impl crate::error::Coded for KeyFileError {
    fn code(&self) -> &'static str {
        match self {
            KeyFileError::WrongPassphrase { .. } => "AGENT_KEY_PASSPHRASE_WRONG",
            KeyFileError::Tampered { .. } => "AGENT_KEY_TAMPERED",
            KeyFileError::Plaintext { .. } => "AGENT_KEY_PLAINTEXT",
            KeyFileError::Invalid { .. } => "AGENT_KEY_INVALID",
            KeyFileError::PassphraseTooShort => "AGENT_KEY_PASSPHRASE_WEAK",
            KeyFileError::Crypto(_) => "AGENT_KEY_INVALID",
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            KeyFileError::WrongPassphrase { .. } => "type the passphrase again (or fix RATCHET_AGENT_PASSPHRASE); if it is lost, make a new identity with `ratchet agent keygen --force` and join again".into(),
            KeyFileError::Tampered { .. } => "do not use this file: restore it from a backup, or make a new identity with `ratchet agent keygen --force`".into(),
            KeyFileError::Plaintext { path } => format!("encrypt it in place with `ratchet agent --key {path} encrypt-key` (asks a new passphrase twice)"),
            KeyFileError::Invalid { .. } => "make a new identity with `ratchet agent keygen --force`, or pass --key FILE".into(),
            KeyFileError::PassphraseTooShort => format!("choose a passphrase of at least {MIN_PASSPHRASE} characters"),
            KeyFileError::Crypto(_) => "retry".into(),
        })
    }
}

/// Argon2id parameters, as recorded in a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kdf {
    pub alg: String,
    /// Argon2 version (0x13 = 19).
    pub v: u32,
    #[serde(rename = "mKiB")]
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
    pub salt: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AeadParams {
    pub alg: String,
    pub nonce: String,
}

/// The file's contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    pub format: String,
    pub version: u32,
    #[serde(rename = "botId")]
    pub bot_id: String,
    pub kdf: Kdf,
    pub aead: AeadParams,
    pub check: String,
    pub ciphertext: String,
}

/// The cost of a new file's key derivation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl Default for Cost {
    fn default() -> Self {
        Cost { m_kib: DEFAULT_M_KIB, t: DEFAULT_T, p: DEFAULT_P }
    }
}

impl Sealed {
    /// The associated data: every field but the ciphertext, one per line.
    pub fn aad(&self) -> Vec<u8> {
        let k = &self.kdf;
        format!(
            "{}\nversion={}\nbotId={}\nkdf={} v={} m={} t={} p={} salt={}\ncheck={}\naead={} nonce={}\n",
            self.format,
            self.version,
            self.bot_id,
            k.alg,
            k.v,
            k.m_kib,
            k.t,
            k.p,
            k.salt,
            self.check,
            self.aead.alg,
            self.aead.nonce
        )
        .into_bytes()
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// Encrypts `id` under `passphrase`.
pub fn seal(id: &Identity, passphrase: &[u8], cost: Cost) -> Result<Sealed, KeyFileError> {
    if std::str::from_utf8(passphrase).map_or(passphrase.len(), |s| s.chars().count()) < MIN_PASSPHRASE {
        return Err(KeyFileError::PassphraseTooShort);
    }
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut salt).map_err(|e| KeyFileError::Crypto(format!("no randomness: {e}")))?;
    getrandom::fill(&mut nonce).map_err(|e| KeyFileError::Crypto(format!("no randomness: {e}")))?;
    let kdf =
        Kdf { alg: "argon2id".into(), v: 19, m_kib: cost.m_kib, t: cost.t, p: cost.p, salt: STANDARD.encode(salt) };
    let keys = derive(passphrase, &salt, &kdf).map_err(KeyFileError::Crypto)?;
    let mut sealed = Sealed {
        format: FORMAT.into(),
        version: VERSION,
        bot_id: id.bot_id(),
        kdf,
        aead: AeadParams { alg: "xchacha20poly1305".into(), nonce: STANDARD.encode(nonce) },
        check: STANDARD.encode(check_of(&keys)),
        ciphertext: String::new(),
    };
    let der = id.to_pkcs8_der();
    let cipher = XChaCha20Poly1305::new_from_slice(&keys[..32]).map_err(|e| KeyFileError::Crypto(e.to_string()))?;
    let aad = sealed.aad();
    let ct = cipher
        .encrypt(&XNonce::from(nonce), Payload { msg: &der, aad: &aad })
        .map_err(|e| KeyFileError::Crypto(e.to_string()))?;
    sealed.ciphertext = STANDARD.encode(ct);
    Ok(sealed)
}

/// What a key file's text is.
pub enum Parsed {
    Sealed(Box<Sealed>),
    /// The old form: the key itself.
    Plaintext,
}

/// Reads a key file's text (`path` only names it in errors). Checks the
/// format and the cost bounds; does no key derivation.
pub fn parse(path: &str, text: &str) -> Result<Parsed, KeyFileError> {
    let invalid = |why: String| KeyFileError::Invalid { path: path.to_string(), why };
    let trimmed = text.trim();
    if !trimmed.starts_with('{') {
        // The old plaintext form: refused, never used, never echoed.
        return if Identity::from_pkcs8_base64(trimmed).is_ok() {
            Ok(Parsed::Plaintext)
        } else {
            Err(invalid("neither an encrypted key file nor a PKCS#8 key".into()))
        };
    }
    let s: Sealed = serde_json::from_str(trimmed).map_err(|e| invalid(format!("{e}")))?;
    if s.format != FORMAT || s.version != VERSION {
        return Err(invalid(format!(
            "format {:?} version {}, expected {FORMAT:?} version {VERSION}",
            s.format, s.version
        )));
    }
    let k = &s.kdf;
    if k.alg != "argon2id" || k.v != 19 {
        return Err(invalid(format!("key derivation {} v{} (only argon2id v19 is read)", k.alg, k.v)));
    }
    if s.aead.alg != "xchacha20poly1305" {
        return Err(invalid(format!("cipher {} (only xchacha20poly1305 is read)", s.aead.alg)));
    }
    if !(MIN_M_KIB..=MAX_M_KIB).contains(&k.m_kib) || !(MIN_T..=MAX_T).contains(&k.t) || !(1..=MAX_P).contains(&k.p) {
        return Err(invalid(format!(
            "argon2id cost m={} KiB t={} p={} is outside {MIN_M_KIB}..={MAX_M_KIB} KiB, {MIN_T}..={MAX_T} passes, 1..={MAX_P} lanes",
            k.m_kib, k.t, k.p
        )));
    }
    Ok(Parsed::Sealed(Box::new(s)))
}

/// Decrypts a sealed key with `passphrase`.
pub fn open(path: &str, s: &Sealed, passphrase: &[u8]) -> Result<Identity, KeyFileError> {
    let invalid = |why: &str| KeyFileError::Invalid { path: path.to_string(), why: why.to_string() };
    let tampered = || KeyFileError::Tampered { path: path.to_string() };
    let salt = STANDARD.decode(&s.kdf.salt).map_err(|_| invalid("the salt is not base64"))?;
    if !(16..=64).contains(&salt.len()) {
        return Err(invalid("the salt is not 16 to 64 bytes"));
    }
    let check = STANDARD.decode(&s.check).map_err(|_| invalid("the check is not base64"))?;
    let keys = derive(passphrase, &salt, &s.kdf).map_err(|why| invalid(&why))?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(&check_of(&keys)[..], &check[..])) {
        return Err(KeyFileError::WrongPassphrase { path: path.to_string() });
    }
    let nonce: [u8; 24] = STANDARD.decode(&s.aead.nonce).ok().and_then(|n| n.try_into().ok()).ok_or_else(tampered)?;
    let ct = STANDARD.decode(&s.ciphertext).map_err(|_| tampered())?;
    let cipher = XChaCha20Poly1305::new_from_slice(&keys[..32]).map_err(|_| tampered())?;
    let der = Zeroizing::new(
        cipher.decrypt(&XNonce::from(nonce), Payload { msg: &ct, aad: &s.aad() }).map_err(|_| tampered())?,
    );
    let id = Identity::from_pkcs8_der(&der).map_err(|_| tampered())?;
    if id.bot_id() != s.bot_id {
        return Err(tampered());
    }
    Ok(id)
}

/// Argon2id into 64 bytes: the AEAD key, then the check key.
fn derive(passphrase: &[u8], salt: &[u8], k: &Kdf) -> Result<Zeroizing<[u8; 64]>, String> {
    let params = argon2::Params::new(k.m_kib, k.t, k.p, Some(64)).map_err(|e| format!("argon2id parameters: {e}"))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 64]);
    a.hash_password_into(passphrase, salt, &mut out[..]).map_err(|e| format!("argon2id: {e}"))?;
    Ok(out)
}

fn check_of(keys: &[u8; 64]) -> [u8; 32] {
    let mut k = [0u8; 32];
    k.copy_from_slice(&keys[32..]);
    let out = *blake3::keyed_hash(&k, CHECK_CONTEXT).as_bytes();
    zeroize::Zeroize::zeroize(&mut k);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The floor, so the tests stay quick; the format is the same.
    const CHEAP: Cost = Cost { m_kib: MIN_M_KIB, t: MIN_T, p: 1 };
    const PASS: &[u8] = b"correct horse battery";

    fn sealed() -> (Identity, Sealed) {
        let id = Identity::generate().unwrap();
        let s = seal(&id, PASS, CHEAP).unwrap();
        (id, s)
    }

    fn reopen(s: &Sealed, pass: &[u8]) -> Result<Identity, KeyFileError> {
        match parse("k", &s.to_text())? {
            Parsed::Sealed(s) => open("k", &s, pass),
            Parsed::Plaintext => panic!("sealed text parsed as plaintext"),
        }
    }

    #[test]
    fn round_trip_gives_the_same_key_and_the_file_holds_no_key_bytes() {
        let (id, s) = sealed();
        let back = reopen(&s, PASS).unwrap();
        assert_eq!(back.bot_id(), id.bot_id());
        assert_eq!(back.to_pkcs8_base64(), id.to_pkcs8_base64());
        let text = s.to_text();
        // Neither the key's text form nor its seed (PKCS#8: OCTET STRING
        // { OCTET STRING (32) seed } at bytes 12..48) appear.
        let der = id.to_pkcs8_der();
        assert_eq!(der[12..16], [0x04, 0x22, 0x04, 0x20]);
        let seed = &der[16..48];
        assert!(!text.contains(&id.to_pkcs8_base64()));
        assert!(!text.contains(&STANDARD.encode(seed)));
        assert!(!text.as_bytes().windows(32).any(|w| w == seed));
        assert!(text.contains("\"mKiB\": 19456") && text.contains("\"t\": 2"), "{text}");
    }

    #[test]
    fn a_wrong_passphrase_is_told_apart_from_tampering() {
        let (_, s) = sealed();
        assert!(matches!(reopen(&s, b"wrong horse battery"), Err(KeyFileError::WrongPassphrase { .. })));
        // One bit of the ciphertext.
        let mut t = s.clone();
        let mut ct = STANDARD.decode(&t.ciphertext).unwrap();
        ct[3] ^= 1;
        t.ciphertext = STANDARD.encode(ct);
        assert!(matches!(reopen(&t, PASS), Err(KeyFileError::Tampered { .. })));
        // The header is authenticated too: another botId, another nonce.
        let mut t = s.clone();
        t.bot_id = Identity::generate().unwrap().bot_id();
        assert!(matches!(reopen(&t, PASS), Err(KeyFileError::Tampered { .. })));
        let mut t = s.clone();
        t.aead.nonce = STANDARD.encode([7u8; 24]);
        assert!(matches!(reopen(&t, PASS), Err(KeyFileError::Tampered { .. })));
    }

    #[test]
    fn weakened_or_huge_costs_and_other_formats_are_refused_before_any_work() {
        let (_, s) = sealed();
        for (m, t, p) in [(MIN_M_KIB - 1, 2, 1), (MIN_M_KIB, 1, 1), (MAX_M_KIB + 1, 2, 1), (MIN_M_KIB, MAX_T + 1, 1)] {
            let mut w = s.clone();
            (w.kdf.m_kib, w.kdf.t, w.kdf.p) = (m, t, p);
            assert!(matches!(reopen(&w, PASS), Err(KeyFileError::Invalid { .. })), "{m} {t} {p}");
        }
        let mut w = s.clone();
        w.kdf.alg = "argon2i".into();
        assert!(matches!(reopen(&w, PASS), Err(KeyFileError::Invalid { .. })));
        assert!(matches!(parse("k", "{\"format\":1}"), Err(KeyFileError::Invalid { .. })));
        assert!(matches!(parse("k", "not a key"), Err(KeyFileError::Invalid { .. })));
        let extra = s.to_text().replacen('{', "{\"extra\": 1,", 1);
        assert!(matches!(parse("k", &extra), Err(KeyFileError::Invalid { .. })));
    }

    #[test]
    fn the_old_plaintext_form_is_recognised_and_refused() {
        let id = Identity::generate().unwrap();
        assert!(matches!(parse("k", &format!("{}\n", id.to_pkcs8_base64())), Ok(Parsed::Plaintext)));
        let e = KeyFileError::Plaintext { path: "k".into() };
        assert!(crate::error::Coded::hint(&e).unwrap().contains("ratchet agent --key k encrypt-key"));
    }

    #[test]
    fn short_passphrases_are_refused() {
        let id = Identity::generate().unwrap();
        assert!(matches!(seal(&id, b"short", CHEAP), Err(KeyFileError::PassphraseTooShort)));
        assert!(matches!(seal(&id, "ééééééé".as_bytes(), CHEAP), Err(KeyFileError::PassphraseTooShort)));
    }
}

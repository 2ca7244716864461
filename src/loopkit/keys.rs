//! API keys, recovery codes and the other HMAC codes of LoopKit.
//!
//! A key is `lkp_` (producer: ingest only) or `lka_` (agent: read and
//! diagnose only), then 43 base62 characters holding 256 random bits, then
//! 6 base62 characters of CRC32 checksum over everything before them — the
//! shape of GitHub's tokens, so secret scanners recognise a leaked key and a
//! mistyped one is refused before any lookup.
//!
//! Invariants: a key's plain text exists only in the response that mints it;
//! the store sees [`digest`] (SHA-256) alone, and digests and codes are
//! compared in constant time ([`ct_eq`]).

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// base62 characters needed for 256 bits: ceil(256 / log2(62)).
const BODY_LEN: usize = 43;
const CHECK_LEN: usize = 6;

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// Ingests spans (`POST /v1/traces`); nothing else.
    Producer,
    /// Reads and diagnoses; never ingests.
    Agent,
}

impl KeyKind {
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Producer => "lkp_",
            KeyKind::Agent => "lka_",
        }
    }

    /// The name stored in the database and shown in errors.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Producer => "producer",
            KeyKind::Agent => "agent",
        }
    }

    pub fn from_name(s: &str) -> Option<KeyKind> {
        match s {
            "producer" => Some(KeyKind::Producer),
            "agent" => Some(KeyKind::Agent),
            _ => None,
        }
    }
}

/// A freshly minted key: the plain text to show once, and the digest to store.
pub struct MintedKey {
    pub kind: KeyKind,
    pub plaintext: String,
    pub digest: [u8; 32],
}

impl std::fmt::Debug for MintedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedKey").field("kind", &self.kind).field("plaintext", &"<redacted>").finish()
    }
}

/// Why a presented key was refused before any lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("the key does not start with lkp_ (producer) or lka_ (agent)")]
    Prefix,
    #[error("the key has the wrong length or characters")]
    Shape,
    #[error("the key's checksum does not match (it was mistyped or cut short)")]
    Checksum,
}

/// 32 random bytes from the operating system.
pub fn random_bytes() -> Result<[u8; 32], getrandom::Error> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf)?;
    Ok(buf)
}

/// Mints a key of `kind` from 256 bits of OS randomness.
pub fn mint(kind: KeyKind) -> Result<MintedKey, getrandom::Error> {
    Ok(from_random(kind, &random_bytes()?))
}

/// The key that `random` encodes (deterministic; for tests and [`mint`]).
pub fn from_random(kind: KeyKind, random: &[u8; 32]) -> MintedKey {
    let mut text = String::with_capacity(4 + BODY_LEN + CHECK_LEN);
    text.push_str(kind.prefix());
    text.push_str(&base62(random, BODY_LEN));
    let crc = crc32fast::hash(text.as_bytes());
    text.push_str(&base62(&crc.to_be_bytes(), CHECK_LEN));
    let digest = digest(&text);
    MintedKey { kind, plaintext: text, digest }
}

/// Checks a presented key's prefix, shape and checksum; returns its kind.
pub fn parse(key: &str) -> Result<KeyKind, KeyFormatError> {
    let kind = if key.starts_with(KeyKind::Producer.prefix()) {
        KeyKind::Producer
    } else if key.starts_with(KeyKind::Agent.prefix()) {
        KeyKind::Agent
    } else {
        return Err(KeyFormatError::Prefix);
    };
    if key.len() != 4 + BODY_LEN + CHECK_LEN || !key[4..].bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(KeyFormatError::Shape);
    }
    let (head, check) = key.split_at(4 + BODY_LEN);
    let crc = crc32fast::hash(head.as_bytes());
    if base62(&crc.to_be_bytes(), CHECK_LEN).as_bytes().ct_eq(check.as_bytes()).into() {
        Ok(kind)
    } else {
        Err(KeyFormatError::Checksum)
    }
}

/// SHA-256 of a key's full text: the only form the store keeps.
pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Lower-case hex of HMAC-SHA256(`key`, `message`).
pub fn hmac_hex(key: &[u8], message: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// The recovery code of a project: HMAC-SHA256("recover:<project_id>") under
/// the server secret. It never changes when keys rotate.
pub fn recovery_code(secret: &[u8], project_id: &str) -> String {
    hmac_hex(secret, &format!("recover:{project_id}"))
}

/// The signed upgrade code of seed 000: HMAC-SHA256("signup-upgrade:sandbox:<project_id>")
/// under SIGNUP_UPGRADE_SECRET.
pub fn upgrade_code(upgrade_secret: &[u8], project_id: &str) -> String {
    hmac_hex(upgrade_secret, &format!("signup-upgrade:sandbox:{project_id}"))
}

/// The token of a project's long-lived dashboard URL. It changes with each
/// key generation, so recovery also revokes the old dashboard links.
pub fn dashboard_token(secret: &[u8], project_id: &str, generation: i64) -> String {
    hmac_hex(secret, &format!("dashboard:{project_id}:{generation}"))
}

/// The token of the loop page of the workspace `workspace_id` (its link is
/// printed by `ratchet serve`; it changes with the server secret).
pub fn loop_token(secret: &[u8], workspace_id: &str) -> String {
    hmac_hex(secret, &format!("loop:{workspace_id}"))
}

/// Whether a presented hex code equals the expected one, in constant time
/// (case-insensitive, surrounding white space ignored).
pub fn code_matches(expected: &str, presented: &str) -> bool {
    let presented = presented.trim().to_ascii_lowercase();
    ct_eq(expected.as_bytes(), presented.as_bytes())
}

pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// Fixed-width base62 of a big-endian number (left-padded with '0').
fn base62(bytes: &[u8], width: usize) -> String {
    let mut num: Vec<u8> = bytes.to_vec();
    let mut out = Vec::with_capacity(width);
    while out.len() < width {
        let mut rem: u32 = 0;
        for digit in num.iter_mut() {
            let acc = (rem << 8) | u32::from(*digit);
            *digit = (acc / 62) as u8;
            rem = acc % 62;
        }
        out.push(ALPHABET[rem as usize]);
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_parse_and_carry_their_kind() {
        for kind in [KeyKind::Producer, KeyKind::Agent] {
            let k = mint(kind).expect("os randomness");
            assert_eq!(k.plaintext.len(), 53);
            assert!(k.plaintext.starts_with(kind.prefix()));
            assert_eq!(parse(&k.plaintext), Ok(kind));
            assert_eq!(digest(&k.plaintext), k.digest);
        }
    }

    #[test]
    fn distinct_randomness_gives_distinct_keys() {
        let a = from_random(KeyKind::Agent, &[0u8; 32]);
        let mut r = [0u8; 32];
        r[31] = 1;
        let b = from_random(KeyKind::Agent, &r);
        assert_ne!(a.plaintext, b.plaintext);
        let max = from_random(KeyKind::Agent, &[255u8; 32]);
        assert_eq!(parse(&max.plaintext), Ok(KeyKind::Agent));
    }

    #[test]
    fn mistyped_keys_are_refused_by_the_checksum() {
        let k = mint(KeyKind::Producer).expect("os randomness").plaintext;
        let mut chars: Vec<char> = k.chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert_eq!(parse(&typo), Err(KeyFormatError::Checksum));
        assert_eq!(parse(&k[..40]), Err(KeyFormatError::Shape));
        assert_eq!(parse("ghp_abc"), Err(KeyFormatError::Prefix));
        assert_eq!(parse(&format!("{}é", &k[..52])), Err(KeyFormatError::Shape));
    }

    #[test]
    fn codes_are_the_seed_hmacs() {
        // HMAC-SHA256(key="key", "The quick brown fox jumps over the lazy dog"), RFC 4231-style vector.
        assert_eq!(
            hmac_hex(b"key", "The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        let code = recovery_code(b"s", "prj_1");
        assert_eq!(code, hmac_hex(b"s", "recover:prj_1"));
        assert!(code_matches(&code, &code.to_uppercase()));
        assert!(!code_matches(&code, "00"));
        assert_eq!(upgrade_code(b"u", "prj_1"), hmac_hex(b"u", "signup-upgrade:sandbox:prj_1"));
        assert_ne!(dashboard_token(b"s", "p", 1), dashboard_token(b"s", "p", 2));
    }
}

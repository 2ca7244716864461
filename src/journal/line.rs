//! One line of the step log, as bytes: how it is written and how it is checked.
//!
//! A line is
//!
//! ```text
//! {"v":1,"seq":N,"id":"…","ts":"…","kind":"…","prev":"<64 hex>",<body members>,"hash":"<64 hex>"}\n
//! ```
//!
//! The header fields come first, in exactly that order; then the body's
//! members (canonical JSON: compact, keys strictly ascending at every depth);
//! then `hash`, last. `hash` is the blake3 of the line without its
//! `,"hash":"…"` suffix, that is of `{…body}` exactly as written with its
//! closing brace. [`encode`] is the only function that builds a line, so
//! `append` and the benchmark's generator write bit-identical bytes.
//!
//! [`check`] verifies one line at byte level without building any JSON
//! value: the suffix, the hash, the header (by position) and the body (a
//! small validating scanner). It is the hot path of `ratchet log verify`.

use serde_json::{Map, Value};

/// Lines longer than this are refused on append and invalid on read; it
/// bounds the memory a reader needs whatever the file holds.
pub const MAX_LINE: usize = 1 << 20;

/// The `prev` of the first entry.
pub const ZERO: [u8; 32] = [0; 32];

/// Keys of the header and the hash; a body may not use them.
pub const RESERVED: [&str; 7] = ["v", "seq", "id", "ts", "kind", "prev", "hash"];

/// Bytes of the `,"hash":"<64 hex>"}` suffix.
pub const SUFFIX_LEN: usize = 9 + 64 + 2;

const MAX_DEPTH: usize = 64;

/// What an entry is about. Appends of any other kind are impossible by type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// One full cycle, Pick to Log.
    Step,
    /// A later change to how an earlier step counts (revert, late score).
    Amend,
    /// An accepted change of the rails.
    Rails,
    /// A new current intent.
    Intent,
    /// The heartbeat provider's turn.
    Heartbeat,
    /// A watchdog alarm.
    Watchdog,
    /// A torn tail was quarantined and the log truncated to its last good line.
    Recovery,
    /// The agents API's ledger of signed bot writes, anchored: its length
    /// and chain (`agents::ledger::Anchor`).
    Agents,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Step,
        Kind::Amend,
        Kind::Rails,
        Kind::Intent,
        Kind::Heartbeat,
        Kind::Watchdog,
        Kind::Recovery,
        Kind::Agents,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Step => "step",
            Kind::Amend => "amend",
            Kind::Rails => "rails",
            Kind::Intent => "intent",
            Kind::Heartbeat => "heartbeat",
            Kind::Watchdog => "watchdog",
            Kind::Recovery => "recovery",
            Kind::Agents => "agents",
        }
    }

    /// The kind named `name`, or `None` for anything else.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::from_bytes(name.as_bytes())
    }

    fn from_bytes(name: &[u8]) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str().as_bytes() == name)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `id` may name an entry: 1 to 64 of `A-Z a-z 0-9 . _ : -`, starting
/// with a letter or digit. Ids never need escaping in JSON.
pub fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty() && b.len() <= 64 && b[0].is_ascii_alphanumeric() && b.iter().all(|&c| id_byte(c))
}

fn id_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-')
}

/// A line as written: its bytes (with the trailing newline) and its hash.
#[derive(Clone, Debug)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub hash: [u8; 32],
}

/// The header of an entry, as it sits at the front of its line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    pub seq: u64,
    pub id: &'a str,
    pub ts: &'a str,
    pub kind: Kind,
    pub prev: [u8; 32],
}

/// Builds the line of an entry. The caller has checked `id` with
/// [`valid_id`], `ts` is `clock::stamp` output, and `body` holds no
/// reserved key; the body is written canonically (sorted keys, compact).
pub fn encode(header: &Header<'_>, body: &Map<String, Value>) -> Encoded {
    let body = crate::canonical::to_vec(body);
    let mut bytes = Vec::with_capacity(body.len() + 200 + SUFFIX_LEN);
    bytes.extend_from_slice(b"{\"v\":1,\"seq\":");
    bytes.extend_from_slice(header.seq.to_string().as_bytes());
    bytes.extend_from_slice(b",\"id\":\"");
    bytes.extend_from_slice(header.id.as_bytes());
    bytes.extend_from_slice(b"\",\"ts\":\"");
    bytes.extend_from_slice(header.ts.as_bytes());
    bytes.extend_from_slice(b"\",\"kind\":\"");
    bytes.extend_from_slice(header.kind.as_str().as_bytes());
    bytes.extend_from_slice(b"\",\"prev\":\"");
    bytes.extend_from_slice(hex(&header.prev).as_bytes());
    bytes.push(b'"');
    // `body` is `{}` or `{members}`: splice the members in.
    if body.len() > 2 {
        bytes.push(b',');
        bytes.extend_from_slice(&body[1..body.len() - 1]);
    }
    bytes.push(b'}');
    let hash = *blake3::hash(&bytes).as_bytes();
    bytes.pop();
    bytes.extend_from_slice(b",\"hash\":\"");
    bytes.extend_from_slice(hex(&hash).as_bytes());
    bytes.extend_from_slice(b"\"}\n");
    Encoded { bytes, hash }
}

/// Lower-case hex of a hash.
pub fn hex(hash: &[u8; 32]) -> String {
    const_hex::encode(hash)
}

/// Parses 64 lower-case hex digits, and nothing else: upper case is not
/// the canonical form, so a line that uses it does not verify (which is
/// why this is not `const_hex::decode`, which takes either case).
pub fn unhex(text: &[u8]) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let (hi, lo) = (HEX[pair[0] as usize], HEX[pair[1] as usize]);
        bad |= (hi | lo) & 0xf0;
        *o = (hi << 4) | (lo & 0x0f);
    }
    (bad == 0).then_some(out)
}

/// The value of each lower-case hex digit; 0xff for every other byte.
const HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Why a line is not a valid entry, judged on the line alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flaw {
    /// No newline at the end: the last line of a file cut short.
    NoNewline,
    TooLong,
    NotUtf8,
    /// No `,"hash":"<64 hex>"}` at the end.
    NoHash,
    HashMismatch,
    /// The header is not `{"v":1,"seq":…,"id":…,"ts":…,"kind":…,"prev":…`.
    Header(&'static str),
    /// The body is not canonical JSON, or uses a reserved key.
    Body(String),
}

impl std::fmt::Display for Flaw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Flaw::NoNewline => f.write_str("no newline at the end (a torn write?)"),
            Flaw::TooLong => write!(f, "longer than {} bytes", MAX_LINE),
            Flaw::NotUtf8 => f.write_str("not JSON: invalid UTF-8"),
            Flaw::NoHash => f.write_str("not an entry: no \"hash\" field at the end"),
            Flaw::HashMismatch => f.write_str("hash mismatch"),
            Flaw::Header(what) => write!(f, "not an entry: {what}"),
            Flaw::Body(what) => write!(f, "not JSON: {what}"),
        }
    }
}

/// A line that passed [`check`]: its header, its hash, and where its body sits.
#[derive(Clone, Debug)]
pub struct Checked<'a> {
    pub header: Header<'a>,
    pub hash: [u8; 32],
    /// The body members as written (`,"a":1,"b":2`, or empty), a slice of the line.
    pub members: &'a [u8],
}

/// Checks one line (without its newline) on its own: hash, header, body.
/// Links to the previous line (`seq`, `prev`) are the caller's to check.
pub fn check(line: &[u8]) -> Result<Checked<'_>, Flaw> {
    if line.len() > MAX_LINE {
        return Err(Flaw::TooLong);
    }
    // Both ends first: they are cheap and tell a torn or foreign line apart.
    if line.len() < SUFFIX_LEN + 1 || line[0] != b'{' {
        return Err(if std::str::from_utf8(line).is_err() { Flaw::NotUtf8 } else { Flaw::NoHash });
    }
    let cut = line.len() - SUFFIX_LEN;
    let suffix = &line[cut..];
    if &suffix[..9] != b",\"hash\":\"" || &suffix[73..] != b"\"}" {
        return Err(Flaw::NoHash);
    }
    let Some(stored) = unhex(&suffix[9..73]) else { return Err(Flaw::NoHash) };
    let mut hasher = blake3::Hasher::new();
    hasher.update(&line[..cut]);
    hasher.update(b"}");
    if hasher.finalize() != blake3::Hash::from_bytes(stored) {
        return Err(Flaw::HashMismatch);
    }
    // The hash matches: the line is as its writer made it. It may still not
    // be one of ratchet's (anyone can compute blake3), so check its shape.
    let text = std::str::from_utf8(&line[..cut]).map_err(|_| Flaw::NotUtf8)?;
    let (header, rest) = parse_header(text)?;
    let members = rest.as_bytes();
    validate_members(members)?;
    Ok(Checked { header, hash: stored, members })
}

/// Parses the header at the front of `text` (a line without its hash suffix).
fn parse_header(text: &str) -> Result<(Header<'_>, &str), Flaw> {
    let mut s = Cursor { text, pos: 0 };
    s.expect("{\"v\":1,\"seq\":", "it does not start with {\"v\":1,\"seq\":")?;
    let digits = s.take_while(|c| c.is_ascii_digit());
    if digits.is_empty() || digits.len() > 19 || (digits.len() > 1 && digits.starts_with('0')) {
        return Err(Flaw::Header("seq is not a positive integer"));
    }
    let seq: u64 = digits.parse().map_err(|_| Flaw::Header("seq is not a positive integer"))?;
    if seq == 0 {
        return Err(Flaw::Header("seq is 0"));
    }
    s.expect(",\"id\":\"", "id does not follow seq")?;
    let id = s.take_while(id_byte);
    if !valid_id(id) {
        return Err(Flaw::Header("id is not a valid entry id"));
    }
    s.expect("\",\"ts\":\"", "ts does not follow id")?;
    let ts = s.take(20).ok_or(Flaw::Header("ts is cut short"))?;
    if !stamp_shape(ts.as_bytes()) {
        return Err(Flaw::Header("ts is not an RFC 3339 UTC time in whole seconds"));
    }
    s.expect("\",\"kind\":\"", "kind does not follow ts")?;
    let name = s.take_while(|c| c.is_ascii_lowercase());
    let kind = Kind::parse(name).ok_or(Flaw::Header("kind is not one of ratchet's"))?;
    s.expect("\",\"prev\":\"", "prev does not follow kind")?;
    let prev = s.take(64).and_then(|h| unhex(h.as_bytes())).ok_or(Flaw::Header("prev is not 64 hex digits"))?;
    s.expect("\"", "prev is not 64 hex digits")?;
    Ok((Header { seq, id, ts, kind, prev }, &text[s.pos..]))
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn expect(&mut self, lit: &str, why: &'static str) -> Result<(), Flaw> {
        if self.text.as_bytes()[self.pos..].starts_with(lit.as_bytes()) {
            self.pos += lit.len();
            Ok(())
        } else {
            Err(Flaw::Header(why))
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() && f(bytes[self.pos]) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn take(&mut self, n: usize) -> Option<&'a str> {
        let s = self.text.get(self.pos..self.pos + n)?;
        self.pos += n;
        Some(s)
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, digits where digits belong.
fn stamp_shape(t: &[u8]) -> bool {
    t.len() == 20
        && t.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Checks the body members: empty, or `,"key":value` repeated, canonical
/// (no white space, keys strictly ascending at every depth), no reserved
/// key at the top.
fn validate_members(m: &[u8]) -> Result<(), Flaw> {
    if m.is_empty() {
        return Ok(());
    }
    let mut p = Parser { b: m, i: 0 };
    let mut last: Option<Span> = None;
    while p.i < m.len() {
        if m[p.i] != b',' {
            return Err(p.fail("expected ',' between members"));
        }
        p.i += 1;
        let key = p.string()?;
        let name = &m[key.start + 1..key.end - 1];
        if RESERVED.iter().any(|r| r.as_bytes() == name) {
            return Err(Flaw::Body(format!("the body uses the reserved key {:?}", String::from_utf8_lossy(name))));
        }
        p.ordered(last, key)?;
        last = Some(key);
        p.byte(b':')?;
        p.value(1)?;
    }
    Ok(())
}

/// A validating scanner over canonical JSON bytes (already known to be UTF-8).
struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn fail(&self, what: &str) -> Flaw {
        let what = if self.b.get(self.i).is_some_and(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n')) {
            "white space (entries are compact canonical JSON)"
        } else if self.i >= self.b.len() {
            "the body ends too early"
        } else {
            what
        };
        Flaw::Body(format!("{what} at body byte {}", self.i))
    }

    #[inline]
    fn byte(&mut self, c: u8) -> Result<(), Flaw> {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.fail(&format!("expected '{}'", c as char)))
        }
    }

    #[inline]
    fn value(&mut self, depth: usize) -> Result<(), Flaw> {
        if depth > MAX_DEPTH {
            return Err(self.fail("nested too deeply"));
        }
        match self.b.get(self.i) {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.fail("expected a value")),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Flaw> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.fail("expected a value"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<(), Flaw> {
        let start = self.i;
        if self.b[self.i] == b'-' {
            self.i += 1;
        }
        let mut digits = match self.b.get(self.i) {
            Some(b'0') => {
                self.i += 1;
                1
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.fail("bad number")),
        };
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            match self.digits() {
                0 => return Err(self.fail("bad number")),
                n => digits += n,
            }
        }
        let mut exponent = 0;
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            exponent = self.digits();
            if exponent == 0 {
                return Err(self.fail("bad number"));
            }
        }
        // Only a long literal can overflow a double, which readers refuse.
        if exponent >= 3 || digits > 300 {
            let text = std::str::from_utf8(&self.b[start..self.i]).unwrap_or("x");
            if !text.parse::<f64>().is_ok_and(f64::is_finite) {
                self.i = start;
                return Err(self.fail("number out of range"));
            }
        }
        Ok(())
    }

    /// A string; returns its span including the quotes, and whether it
    /// holds an escape.
    fn string(&mut self) -> Result<Span, Flaw> {
        let start = self.i;
        let mut escaped = false;
        self.byte(b'"').map_err(|_| self.fail("expected a string"))?;
        loop {
            self.skip_plain();
            let Some(&c) = self.b.get(self.i) else { return Err(self.fail("unterminated string")) };
            self.i += 1;
            match c {
                b'"' => return Ok(Span { start, end: self.i, escaped }),
                b'\\' => match self.b.get(self.i) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                        self.i += 1;
                        escaped = true;
                    }
                    Some(b'u') => {
                        escaped = true;
                        // A surrogate must come in a high-low pair, or the
                        // string is not text.
                        match self.unicode_escape()? {
                            0xd800..=0xdbff => {
                                if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return Err(self.fail("lone surrogate in a \\u escape"));
                                }
                                self.i += 1;
                                if !(0xdc00..=0xdfff).contains(&self.unicode_escape()?) {
                                    return Err(self.fail("lone surrogate in a \\u escape"));
                                }
                            }
                            0xdc00..=0xdfff => return Err(self.fail("lone surrogate in a \\u escape")),
                            _ => {}
                        }
                    }
                    _ => return Err(self.fail("bad escape")),
                },
                0..=0x1f => {
                    self.i -= 1;
                    return Err(self.fail("control character in a string"));
                }
                _ => {}
            }
        }
    }

    /// The code unit of a `uXXXX` escape at `self.i` (the `u`), moving past it.
    fn unicode_escape(&mut self) -> Result<u32, Flaw> {
        let hex = self.b.get(self.i + 1..self.i + 5).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
        let Some(hex) = hex else { return Err(self.fail("bad \\u escape")) };
        let unit = hex.iter().fold(0u32, |n, &c| n * 16 + (c as char).to_digit(16).unwrap_or(0));
        self.i += 5;
        Ok(unit)
    }

    /// Skips string bytes that need no attention: anything but `"`, `\\`
    /// and control characters, eight bytes at a time.
    #[inline]
    fn skip_plain(&mut self) {
        const LO: u64 = 0x0101_0101_0101_0101;
        const HI: u64 = 0x8080_8080_8080_8080;
        while let Some(chunk) = self.b.get(self.i..self.i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let x = u64::from_le_bytes(word);
            // A byte below 0x20, or equal to '"' or '\\', sets its high bit
            // here (bytes >= 0x80 are masked out by `!x`).
            let quote = x ^ (LO * b'"' as u64);
            let slash = x ^ (LO * b'\\' as u64);
            let special = (x.wrapping_sub(LO * 0x20) | quote.wrapping_sub(LO) | slash.wrapping_sub(LO)) & !x & HI;
            if special != 0 {
                self.i += (special.trailing_zeros() / 8) as usize;
                return;
            }
            self.i += 8;
        }
    }

    /// Keys must be strictly ascending (as unescaped strings, byte-wise,
    /// which is how canonical JSON sorts them); this also forbids duplicates.
    #[inline]
    fn ordered(&self, last: Option<Span>, key: Span) -> Result<(), Flaw> {
        let Some(last) = last else { return Ok(()) };
        let a = &self.b[last.start + 1..last.end - 1];
        let b = &self.b[key.start + 1..key.end - 1];
        let ascending = if last.escaped || key.escaped { unescape(a) < unescape(b) } else { less(a, b) };
        if ascending {
            Ok(())
        } else {
            let name = String::from_utf8_lossy(b);
            Err(Flaw::Body(format!(
                "key {name:?} out of canonical order (duplicate or unsorted) at body byte {}",
                key.start
            )))
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), Flaw> {
        self.i += 1;
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(());
        }
        let mut last = None;
        loop {
            let key = self.string()?;
            self.ordered(last, key)?;
            last = Some(key);
            self.byte(b':')?;
            self.value(depth + 1)?;
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.fail("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), Flaw> {
        self.i += 1;
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value(depth + 1)?;
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.fail("expected ',' or ']'")),
            }
        }
    }
}

/// A string's place in the body.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    escaped: bool,
}

/// `a < b` byte-wise; keys are short, so a plain loop beats a call to memcmp.
#[inline]
fn less(a: &[u8], b: &[u8]) -> bool {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x < y;
        }
    }
    a.len() < b.len()
}

/// The string a JSON string body (between the quotes) denotes; only for the
/// rare keys that hold escapes.
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted).map(String::into_bytes).unwrap_or_else(|_| raw.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("test bodies are objects"),
        }
    }

    fn header(seq: u64) -> Header<'static> {
        Header { seq, id: "s1", ts: "2026-11-21T19:00:00Z", kind: Kind::Step, prev: ZERO }
    }

    #[test]
    fn encode_writes_the_fixed_format() {
        let e = encode(&header(1), &body(json!({"outcome": "merged", "a": {"z": 1, "b": [1, 2.5]}})));
        let text = String::from_utf8(e.bytes.clone()).unwrap();
        let hashed = format!(
            "{{\"v\":1,\"seq\":1,\"id\":\"s1\",\"ts\":\"2026-11-21T19:00:00Z\",\"kind\":\"step\",\"prev\":\"{}\",\"a\":{{\"b\":[1,2.5],\"z\":1}},\"outcome\":\"merged\"}}",
            "0".repeat(64)
        );
        let hash = blake3::hash(hashed.as_bytes()).to_hex().to_string();
        assert_eq!(text, format!("{},\"hash\":\"{hash}\"}}\n", &hashed[..hashed.len() - 1]));
        // The whole line is JSON too.
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["hash"], hash.as_str());
        let c = check(&e.bytes[..e.bytes.len() - 1]).unwrap();
        assert_eq!(c.header, header(1));
        assert_eq!(c.hash, e.hash);
    }

    #[test]
    fn an_empty_body_is_fine() {
        let e = encode(&header(3), &Map::new());
        let c = check(&e.bytes[..e.bytes.len() - 1]).unwrap();
        assert!(c.members.is_empty());
        assert!(String::from_utf8(e.bytes).unwrap().contains(&format!("\"prev\":\"{}\",\"hash\"", "0".repeat(64))));
    }

    /// A line with a correct hash over arbitrary content: what a forger writes.
    fn forged(hashed: &str) -> Vec<u8> {
        let hash = blake3::hash(hashed.as_bytes()).to_hex().to_string();
        format!("{},\"hash\":\"{hash}\"}}", &hashed[..hashed.len() - 1]).into_bytes()
    }

    fn head() -> String {
        format!(
            "{{\"v\":1,\"seq\":1,\"id\":\"s1\",\"ts\":\"2026-11-21T19:00:00Z\",\"kind\":\"step\",\"prev\":\"{}\"",
            "0".repeat(64)
        )
    }

    #[test]
    fn a_rehashed_line_must_still_be_canonical_json() {
        let ok = |members: &str| check(&forged(&format!("{}{members}}}", head()))).map(|_| ());
        assert!(ok(r#","a":1,"b":{"c":[true,false,null,-0.5e+3,"x\"\\\u00e9"]}"#).is_ok());
        assert!(ok(r#","a":{},"b":[]"#).is_ok());
        assert!(ok(r#","a":"\ud83d\ude00","b":1e300"#).is_ok());
        for bad in [
            r#","b":1,"a":2"#,
            r#","a":1,"a":2"#,
            r#","a":{"y":1,"x":2}"#,
            r#", "a":1"#,
            r#","a": 1"#,
            r#","a":01"#,
            r#","a":1."#,
            r#","a":tru"#,
            r#","a":"x"#,
            r#","a":[1,]"#,
            r#","a":{"b":1,}"#,
            r#","seq":2"#,
            r#","hash":"x""#,
            r#","a":"\q""#,
            r#","a":"\ud800""#,
            r#","a":"\udc00\ud800""#,
            r#","a":"\ud800x""#,
            r#","a":1e400"#,
            r#","a":-1E+999"#,
            r#","a""#,
            r#"x"#,
            "\n",
        ] {
            assert!(ok(bad).is_err(), "{bad} should be refused");
        }
        assert!(ok(&format!(",\"a\":{}1{}", "[".repeat(70), "]".repeat(70))).is_err());
    }

    #[test]
    fn escaped_keys_are_ordered_by_what_they_denote() {
        // `"` (0x22) sorts before `#` (0x23), although `\` (0x5c) does not.
        let v = json!({"a\"": 1, "a#": 2});
        let e = encode(&header(1), &body(v));
        assert!(check(&e.bytes[..e.bytes.len() - 1]).is_ok());
    }

    #[test]
    fn header_shapes_are_checked() {
        let with = |h: &str| check(&forged(&format!("{h}}}"))).map(|_| ()).unwrap_err();
        let h = head();
        assert!(matches!(with(&h.replace("\"seq\":1", "\"seq\":01")), Flaw::Header(_)));
        assert!(matches!(with(&h.replace("\"seq\":1", "\"seq\":0")), Flaw::Header(_)));
        assert!(matches!(with(&h.replace("step", "stop")), Flaw::Header(_)));
        assert!(matches!(with(&h.replace("s1", "s 1")), Flaw::Header(_)));
        assert!(matches!(with(&h.replace("19:00:00Z", "19:00:00+00")), Flaw::Header(_)));
        assert!(matches!(with(&h.replace("\"v\":1", "\"v\":2")), Flaw::Header(_)));
        assert!(matches!(with(&h.replace("\"prev\":\"0", "\"prev\":\"A")), Flaw::Header(_)));
        assert_eq!(check(b"{\"v\":1}").unwrap_err(), Flaw::NoHash);
        assert_eq!(check(b"\xff\xfe").unwrap_err(), Flaw::NotUtf8);
    }

    #[test]
    fn ids_are_plain() {
        assert!(valid_id("s42"));
        assert!(valid_id("pending:2026-11-21.a_b-c"));
        assert!(!valid_id(""));
        assert!(!valid_id("-x"));
        assert!(!valid_id("a\"b"));
        assert!(!valid_id(&"x".repeat(65)));
    }

    #[test]
    fn hex_round_trips() {
        let h = *blake3::hash(b"x").as_bytes();
        assert_eq!(unhex(hex(&h).as_bytes()), Some(h));
        assert_eq!(hex(&h), blake3::hash(b"x").to_hex().as_str());
        assert_eq!(unhex(hex(&h).to_uppercase().as_bytes()), None);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn arb_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| json!(n)),
                any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
                "\\PC{0,6}|[\"\\\\\u{0}-\u{1f}é/]{0,4}".prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 24, 5, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                    prop::collection::btree_map("[a-d\"\\\\\u{1}é]{0,3}", inner, 0..5)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn arb_body() -> impl Strategy<Value = Map<String, Value>> {
            prop::collection::btree_map("[a-z\"\\\\\u{0}\u{1f}é]{1,4}", arb_json(), 0..6)
                .prop_map(|m| m.into_iter().filter(|(k, _)| !RESERVED.contains(&k.as_str())).collect())
        }

        proptest! {
            /// Whatever a caller logs, the line verifies and reads back the same.
            #[test]
            fn every_encoded_body_verifies(body in arb_body()) {
                let e = encode(&header(7), &body);
                let text = &e.bytes[..e.bytes.len() - 1];
                let c = check(text).map_err(|f| TestCaseError::fail(f.to_string()))?;
                let back = <crate::journal::Entry as crate::journal::FromLine>::from_checked(text, &c).map_err(TestCaseError::fail)?;
                prop_assert_eq!(back.body, body);
            }

            /// The scanner never accepts what a JSON parser refuses: change
            /// any byte of a valid body, and if the scanner still accepts
            /// it, serde_json parses it, with as many members.
            #[test]
            fn the_scanner_accepts_only_json(body in arb_body(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
                let members = {
                    let obj = crate::canonical::to_vec(&body);
                    if obj.len() <= 2 { return Ok(()); }
                    let mut m = vec![b','];
                    m.extend_from_slice(&obj[1..obj.len() - 1]);
                    m
                };
                let mut bad = members.clone();
                let i = at.index(bad.len());
                bad[i] = byte;
                if std::str::from_utf8(&bad).is_err() || validate_members(&bad).is_err() {
                    return Ok(());
                }
                let mut obj = b"{".to_vec();
                obj.extend_from_slice(&bad[1..]);
                obj.push(b'}');
                let parsed: Map<String, Value> = serde_json::from_slice(&obj)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&obj))))?;
                let commas_at_top = parsed.len();
                prop_assert!(commas_at_top >= 1);
            }
        }
    }
}

//! Reading the log: bounded lines, typed entries, streaming iteration.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::marker::PhantomData;

use serde_json::{Map, Value};

use super::line::{self, Kind, MAX_LINE, ZERO};
use super::{JournalError, Link};
use crate::error::IoError;

/// One entry of the log, as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub id: String,
    /// RFC 3339 UTC in whole seconds, as written: `2026-11-21T19:00:00Z`.
    pub ts: String,
    pub kind: Kind,
    pub prev: [u8; 32],
    pub hash: [u8; 32],
    /// The caller-supplied fields (everything but the header and the hash).
    pub body: Map<String, Value>,
    /// The line as written, without its newline: itself a JSON object.
    pub raw: String,
}

/// What [`Entries`] makes of each checked line.
pub trait FromLine: Sized {
    /// The item of a line that passed [`line::check`]; `Err` names what is
    /// wrong with a line that is well-formed but not what it claims.
    fn from_checked(raw: &[u8], c: &line::Checked<'_>) -> Result<Self, String>;

    /// The item, told the offset just after its line's newline.
    fn ended_at(self, _end: u64) -> Self {
        self
    }
}

impl FromLine for Entry {
    fn from_checked(raw: &[u8], c: &line::Checked<'_>) -> Result<Entry, String> {
        let body = if c.members.is_empty() {
            Map::new()
        } else {
            serde_json::from_slice(&body_object(c.members)).map_err(|e| format!("not JSON: {e}"))?
        };
        Ok(Entry {
            seq: c.header.seq,
            id: c.header.id.to_string(),
            ts: c.header.ts.to_string(),
            kind: c.header.kind,
            prev: c.header.prev,
            hash: c.hash,
            body,
            raw: String::from_utf8_lossy(raw).into_owned(),
        })
    }
}

/// The body members (`,"a":1,"b":2`, or empty) as one JSON object.
pub(super) fn body_object(members: &[u8]) -> Vec<u8> {
    let members = members.get(1..).unwrap_or_default();
    let mut obj = Vec::with_capacity(members.len() + 2);
    obj.push(b'{');
    obj.extend_from_slice(members);
    obj.push(b'}');
    obj
}

/// An entry whose body is kept as the JSON text it was written as, for
/// readers that deserialize it straight into their own types (the history
/// reads every entry of the log; building a `Value` tree for each one and
/// then walking it again cost more than the rest of the read together).
#[derive(Clone, Debug, PartialEq)]
pub struct RawEntry {
    pub seq: u64,
    pub id: String,
    pub ts: String,
    pub kind: Kind,
    /// The body as one JSON object: `{"a":1,"b":2}`, or `{}`.
    pub body: String,
    /// The line's hash.
    pub hash: [u8; 32],
    /// The offset just after the line's newline (where the next one begins).
    pub end: u64,
}

impl FromLine for RawEntry {
    fn from_checked(_: &[u8], c: &line::Checked<'_>) -> Result<RawEntry, String> {
        let body = String::from_utf8(body_object(c.members)).map_err(|_| "not UTF-8".to_string())?;
        Ok(RawEntry {
            seq: c.header.seq,
            id: c.header.id.to_string(),
            ts: c.header.ts.to_string(),
            kind: c.header.kind,
            body,
            hash: c.hash,
            end: 0,
        })
    }

    fn ended_at(self, end: u64) -> RawEntry {
        RawEntry { end, ..self }
    }
}

impl Entry {
    pub fn hash_hex(&self) -> String {
        line::hex(&self.hash)
    }

    pub fn prev_hex(&self) -> String {
        line::hex(&self.prev)
    }

    /// The body value at a dotted path (`pick.provider`), if any.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let mut v = self.body.get(parts.next()?)?;
        for p in parts {
            v = v.get(p)?;
        }
        Some(v)
    }

    /// The body string at a dotted path.
    pub fn get_str(&self, path: &str) -> Option<&str> {
        self.get(path).and_then(Value::as_str)
    }

    /// The whole entry as one JSON value (header, body and hash).
    pub fn to_json(&self) -> Value {
        serde_json::from_str(&self.raw).unwrap_or_else(|_| Value::Object(self.body.clone()))
    }

    /// The entry pretty-printed, header first, then the body, hash last.
    pub fn pretty(&self) -> String {
        #[derive(serde::Serialize)]
        struct Pretty<'a> {
            v: u8,
            seq: u64,
            id: &'a str,
            ts: &'a str,
            kind: &'a str,
            prev: String,
            #[serde(flatten)]
            body: &'a Map<String, Value>,
            hash: String,
        }
        let p = Pretty {
            v: 1,
            seq: self.seq,
            id: &self.id,
            ts: &self.ts,
            kind: self.kind.as_str(),
            prev: self.prev_hex(),
            body: &self.body,
            hash: self.hash_hex(),
        };
        serde_json::to_string_pretty(&p).unwrap_or_else(|_| self.raw.clone())
    }
}

/// How a segment of the file ends.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Segment {
    /// Ended by a newline (false only for the last bytes of a file).
    pub newline: bool,
}

/// Reads the file line by line, never holding more than [`MAX_LINE`] + 1
/// bytes of one line, and never past `limit`.
pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
    offset: u64,
    limit: u64,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R, offset: u64, limit: u64) -> Self {
        LineReader { inner: BufReader::with_capacity(256 * 1024, inner), offset, limit }
    }

    /// The next line into `buf` (without its newline). A line longer than
    /// [`MAX_LINE`] is returned cut at `MAX_LINE + 1` bytes, where
    /// [`line::check`] refuses it.
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Option<Segment>> {
        buf.clear();
        let start = self.offset;
        while self.offset < self.limit {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                break;
            }
            let room = (self.limit - self.offset).min(avail.len() as u64) as usize;
            let avail = &avail[..room];
            if let Some(i) = memchr::memchr(b'\n', avail) {
                buf.extend_from_slice(&avail[..i]);
                self.inner.consume(i + 1);
                self.offset += i as u64 + 1;
                return Ok(Some(Segment { newline: true }));
            }
            let take = avail.len().min(MAX_LINE + 1 - buf.len().min(MAX_LINE + 1));
            buf.extend_from_slice(&avail[..take]);
            let n = avail.len();
            self.inner.consume(n);
            self.offset += n as u64;
            if buf.len() > MAX_LINE {
                return Ok(Some(Segment { newline: false }));
            }
        }
        Ok(if self.offset == start { None } else { Some(Segment { newline: false }) })
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// The entries of the log in order, read as a stream; each line is checked
/// (hash, shape, link to the one before) on the way.
pub struct Entries<T = Entry> {
    reader: LineReader<File>,
    buf: Vec<u8>,
    link: Link,
    file: String,
    done: bool,
    item: PhantomData<T>,
}

impl<T> Entries<T> {
    pub(crate) fn new(file: File, limit: u64, name: String) -> Entries<T> {
        Entries {
            reader: LineReader::new(file, 0, limit),
            buf: Vec::new(),
            link: Link { seq: 0, hash: ZERO },
            file: name,
            done: false,
            item: PhantomData,
        }
    }

    /// The entries of `file` from byte `start` (where the entry `link`
    /// names ends) up to `limit`, each checked and linked to the one before.
    pub(crate) fn after(file: File, start: u64, limit: u64, link: Link, name: String) -> Entries<T> {
        Entries {
            reader: LineReader::new(file, start, limit),
            buf: Vec::new(),
            link,
            file: name,
            done: false,
            item: PhantomData,
        }
    }

    fn tampered(&mut self, reason: String) -> JournalError {
        self.done = true;
        JournalError::Tampered { file: self.file.clone(), line: self.link.seq + 1, reason }
    }
}

impl<T: FromLine> Iterator for Entries<T> {
    type Item = Result<T, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let seg = match self.reader.next_line(&mut self.buf) {
            Ok(Some(seg)) => seg,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(IoError::new("read", &self.file, e).into()));
            }
        };
        if !seg.newline {
            return Some(Err(self.tampered(line::Flaw::NoNewline.to_string())));
        }
        let raw = std::mem::take(&mut self.buf);
        let checked = match line::check(&raw) {
            Ok(c) => c,
            Err(flaw) => return Some(Err(self.tampered(flaw.to_string()))),
        };
        if let Err(reason) = self.link.follows(&checked.header) {
            return Some(Err(self.tampered(reason)));
        }
        let entry = T::from_checked(&raw, &checked).map(|e| e.ended_at(self.reader.offset()));
        let next = Link { seq: checked.header.seq, hash: checked.hash };
        self.buf = raw;
        match entry {
            Ok(entry) => {
                self.link = next;
                Some(Ok(entry))
            }
            Err(reason) => Some(Err(self.tampered(reason))),
        }
    }
}

//! The snapshot's bulk in a few bytes a record: the merges that stand
//! ([`super::Standing`]) and the compacted trust runs, the two parts of the
//! history that grow with the log (about one record a hundred entries).
//!
//! As JSON, with every field named, they were most of a million-entry
//! snapshot (14 MB) and most of the time `ratchet status` took to read it.
//! Here each record is its fields in a fixed order: unsigned integers as
//! LEB128 varints, floats as their 8 little-endian bytes, strings as a
//! varint length and their UTF-8 bytes, optional parts behind one byte.
//! Written by hand because none of ratchet's dependencies has a compact
//! serde format, and the two record types are fixed and few: a codec of
//! five primitives is smaller than a new dependency.
//!
//! A reader never trusts a length: every read is bounded by the bytes left,
//! and anything malformed gives `None` (the snapshot is then not used; the
//! history is folded again from the first entry). The bytes are MAC'd with
//! the rest of the snapshot, so in practice only ratchet's own writer made
//! them.

/// Appends primitives to a buffer.
#[derive(Default)]
pub(super) struct Writer(pub Vec<u8>);

impl Writer {
    pub fn u(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    /// A signed integer, zigzag-encoded.
    pub fn i(&mut self, v: i64) {
        self.u(((v << 1) ^ (v >> 63)) as u64);
    }

    pub fn f(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.u(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    pub fn s(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    pub fn flag(&mut self, b: bool) {
        self.0.push(b as u8);
    }

    pub fn opt_s(&mut self, s: Option<&str>) {
        self.flag(s.is_some());
        if let Some(s) = s {
            self.s(s);
        }
    }

    pub fn opt_f(&mut self, v: Option<f64>) {
        self.flag(v.is_some());
        if let Some(v) = v {
            self.f(v);
        }
    }
}

/// Reads primitives back; `None` on anything malformed.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    pub fn u(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.take(1)?.first()?;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    pub fn i(&mut self) -> Option<i64> {
        let u = self.u()?;
        Some(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A length that can still fit in what is left.
    pub fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.u()?).ok()?;
        (n <= self.bytes.len()).then_some(n)
    }

    pub fn f(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }

    pub fn s(&mut self) -> Option<String> {
        self.str().map(str::to_string)
    }

    /// A string, borrowed from the bytes.
    pub fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    pub fn opt_str(&mut self) -> Option<Option<&'a str>> {
        Some(if self.flag()? { Some(self.str()?) } else { None })
    }

    /// What is left to read.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn flag(&mut self) -> Option<bool> {
        match *self.take(1)?.first()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    pub fn opt_s(&mut self) -> Option<Option<String>> {
        Some(if self.flag()? { Some(self.s()?) } else { None })
    }

    pub fn opt_f(&mut self) -> Option<Option<f64>> {
        Some(if self.flag()? { Some(self.f()?) } else { None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_read_back_and_a_cut_or_lying_buffer_reads_as_none() {
        let mut w = Writer::default();
        for v in [0, 1, 127, 128, 300, u64::MAX] {
            w.u(v);
        }
        for v in [0, -1, 1, i64::MIN, i64::MAX] {
            w.i(v);
        }
        w.f(0.82);
        w.s("docs/a.md");
        w.opt_s(None);
        w.opt_f(Some(-1.5));
        let bytes = w.0;
        let mut r = Reader::new(&bytes);
        for v in [0, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(r.u(), Some(v));
        }
        for v in [0, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(r.i(), Some(v));
        }
        assert_eq!(
            (r.f(), r.s(), r.opt_s(), r.opt_f()),
            (Some(0.82), Some("docs/a.md".into()), Some(None), Some(Some(-1.5)))
        );
        assert!(r.is_empty());
        // Cut anywhere: every read past the end is None, never a panic.
        for cut in 0..bytes.len() {
            let mut r = Reader::new(&bytes[..cut]);
            let all = (0..6).all(|_| r.u().is_some()) && (0..5).all(|_| r.i().is_some()) && r.f().is_some();
            let all = all && r.s().is_some() && r.opt_s().is_some() && r.opt_f().is_some();
            assert!(!all, "cut at {cut}");
        }
        // A length far beyond the buffer, a varint that never ends, a flag that is no flag.
        let mut w = Writer::default();
        w.u(u64::MAX);
        assert_eq!(Reader::new(&w.0).s(), None);
        assert_eq!(Reader::new(&[0xff; 11]).u(), None);
        assert_eq!(Reader::new(&[2]).flag(), None);
    }
}

//! The history snapshot: the fold's state ([`History`]) as of one entry of
//! the log, kept so that a command reads only the entries after it.
//!
//! ## Where, and why it can be trusted
//!
//! `history.json` in ratchet's private directory ([`crate::private`]),
//! beside the second checkpoint and the crash journal: outside the
//! repository, hidden from every child of the sandbox, and MAC'd with the
//! private key. The file is one header line, then the history as one line
//! of JSON, then the parts of it that grow with the log packed
//! ([`super::packed`]: the merges that stand, the trust runs):
//!
//! ```text
//! {"build":"0.1.0","format":2,"hash":"<64 hex>","mac":"<64 hex>","seq":N,"size":N}
//! {"steps":[…],…}
//! <packed bytes to the end of the file>
//! ```
//!
//! `seq`, `hash` and `size` name the last entry folded in and the byte just
//! after it; the MAC (purpose `ratchet history snapshot v1`) covers the
//! header without `mac`, a zero byte, and everything after the header line. `format` and `build`
//! are bound too, so a snapshot written by another build of ratchet (whose
//! fold may differ) is never carried forward.
//!
//! ## What is checked on use
//!
//! A snapshot is used only when all of these hold; otherwise the history is
//! folded again from the first entry, and the snapshot rewritten:
//!
//! 1. its MAC verifies under the private key, and its `format` and `build`
//!    are this build's (so ratchet wrote it, and folded it as this build
//!    would);
//! 2. its entry lies at or before the head the journal opened on, and the
//!    line ending at byte `size` is a valid line (its own hash checked) that
//!    is entry `seq` with hash `hash`. The hash chains every earlier line,
//!    so this is the log the snapshot was folded from — or one whose lines
//!    before it were rewritten without keeping the chain, which only
//!    `ratchet log verify` can tell; either way the snapshot's state comes
//!    from lines ratchet itself checked when it folded them;
//! 3. every line after `size` is checked and linked to the one before, the
//!    first to `hash`, as it is folded in.
//!
//! So a forged snapshot (wrong MAC), a stale one whose offset now holds
//! another entry, and one of a log rewritten below it all give the result a
//! fold from the first entry gives (the tests prove each).
//!
//! ## What each command verifies
//!
//! Opening the journal ([`crate::journal::Journal::open`]) checks the line at
//! each checkpoint and every line after the last one. Reading the history
//! (`status`, `step`, `context`, `approve`, …) then checks the snapshot's
//! line and every line after it. The lines between the first entry and the
//! snapshot were checked when they were folded, and are checked again, all
//! of them, by `ratchet log verify` (the full walk, with the step commits'
//! trailers). Without a private directory (no `$HOME`), or before the first
//! entry made the key, there is no snapshot and every read folds the whole
//! log, checking every line, as before.
//!
//! A snapshot that cannot be written is not an error (it is a cache): the
//! next command folds again. It is rewritten when it was folded from the
//! first entry, or once the head is [`REWRITE_AFTER`] entries past it, not
//! after every entry: until then a read folds those few entries again.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::History;
use crate::journal::{Head, Journal, JournalError};

/// The file's name in the private directory.
pub const FILE: &str = "history.json";

/// What the MAC is bound to.
const PURPOSE: &str = "ratchet history snapshot v1";

/// The snapshot's layout; bump it when [`History`]'s fold changes.
const FORMAT: u32 = 2;

/// How far the head may move past the snapshot before a read rewrites it:
/// reading a few entries again costs less than writing the snapshot after
/// every step.
pub const REWRITE_AFTER: u64 = 32;

/// The build that folded it.
const BUILD: &str = env!("CARGO_PKG_VERSION");

/// The header line.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    build: String,
    format: u32,
    hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
    seq: u64,
    size: u64,
}

/// How a history was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The snapshot was at the head: no entry read.
    Snapshot,
    /// Carried forward from the snapshot: this many entries read.
    Extended(u64),
    /// Folded from the first entry (no snapshot, or one that did not verify).
    Rebuilt,
}

/// The history in `journal`, carried forward from its snapshot when that
/// verifies, else folded from the first entry; the snapshot is rewritten
/// when it was folded from the first entry or the head moved
/// [`REWRITE_AFTER`] entries past it.
pub fn read(journal: &Journal) -> Result<History, JournalError> {
    read_traced(journal).map(|(h, _)| h)
}

/// [`read`], saying how the history was had.
pub fn read_traced(journal: &Journal) -> Result<(History, Source), JournalError> {
    let head = journal.head();
    let store = Store::of(journal);
    if let Some(store) = &store {
        if let Some((at, mut h)) = store.load() {
            if at == head {
                return Ok((h, Source::Snapshot));
            }
            if let Some(entries) = journal.raw_entries_after(at)? {
                h.fold_entries(entries)?;
                if head.seq - at.seq >= REWRITE_AFTER {
                    store.save(head, &h);
                }
                return Ok((h, Source::Extended(head.seq - at.seq)));
            }
        }
    }
    let mut h = History::default();
    h.fold_entries(journal.raw_entries()?)?;
    if let Some(store) = &store {
        store.save(head, &h);
    }
    Ok((h, Source::Rebuilt))
}

/// Where the snapshot of a journal lives, and its key.
struct Store {
    path: PathBuf,
    key: [u8; 32],
}

impl Store {
    /// The snapshot's place, once the journal has a private directory with a key.
    fn of(journal: &Journal) -> Option<Store> {
        let private = journal.paths().private.as_ref()?;
        let key = journal.paths().key().ok().flatten()?;
        Some(Store { path: private.path(FILE), key })
    }

    /// The snapshot and the entry it was folded up to, when it is one this
    /// build wrote under this key.
    fn load(&self) -> Option<(Head, History)> {
        let bytes = std::fs::read(&self.path).ok()?;
        let cut = memchr::memchr(b'\n', &bytes)?;
        let (line, body) = (&bytes[..cut], &bytes[cut + 1..]);
        let mut header: Header = serde_json::from_slice(line).ok()?;
        let tag = header.mac.take()?;
        if header.format != FORMAT || header.build != BUILD {
            return None;
        }
        if !crate::private::verify_mac_parts(
            &self.key,
            PURPOSE,
            &[&crate::canonical::to_vec(&header), &[0], body],
            &tag,
        ) {
            return None;
        }
        let hash = crate::journal::line::unhex(header.hash.as_bytes())?;
        let json = memchr::memchr(b'\n', body)?;
        let mut history: History = serde_json::from_slice(&body[..json]).ok()?;
        let packed = cut + 1 + json + 1;
        history.unpack(bytes, packed)?;
        Some((Head { seq: header.seq, hash, size: header.size }, history))
    }

    /// Writes the snapshot of `history` as of `head`, atomically; a failure
    /// is left for the next command to fold again.
    fn save(&self, head: Head, history: &History) {
        if head.seq == 0 {
            return;
        }
        let Ok(mut body) = serde_json::to_vec(history) else { return };
        body.push(b'\n');
        body.extend_from_slice(&history.pack());
        let mut header = Header {
            build: BUILD.into(),
            format: FORMAT,
            hash: head.hash_hex(),
            mac: None,
            seq: head.seq,
            size: head.size,
        };
        header.mac =
            Some(crate::private::mac_parts(&self.key, PURPOSE, &[&crate::canonical::to_vec(&header), &[0], &body]));
        let mut bytes = crate::canonical::to_vec(&header);
        bytes.push(b'\n');
        bytes.extend_from_slice(&body);
        if let Some(dir) = self.path.parent() {
            if crate::fsutil::create_private_dir(dir).is_err() {
                return;
            }
        }
        let _ = crate::fsutil::write_private(&self.path, &bytes, crate::fsutil::Durability::Flushed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Coded;
    use crate::journal::sample;
    use crate::journal::{Draft, JournalPaths};
    use crate::workspace::Workspace;

    struct Fixture {
        _dir: tempfile::TempDir,
        paths: JournalPaths,
    }

    impl Fixture {
        /// A workspace whose log holds the first `n` sample entries.
        fn new(n: u64, seed: u64) -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let ws = Workspace::at(dir.path().join("repo"), "");
            let paths = JournalPaths::with_state_home(&ws, Some(&dir.path().join("state")));
            sample::write(&paths, n, seed).unwrap();
            Fixture { _dir: dir, paths }
        }

        fn open(&self) -> Journal {
            Journal::open_at(self.paths.clone()).unwrap()
        }

        fn snapshot(&self) -> PathBuf {
            self.paths.private.as_ref().unwrap().path(FILE)
        }

        fn key(&self) -> [u8; 32] {
            self.paths.key().unwrap().unwrap()
        }

        /// Replaces the log with `entries` (and its checkpoints, MAC'd).
        fn rewrite(&self, entries: impl Iterator<Item = sample::SampleEntry>) {
            std::fs::remove_file(&self.paths.log).unwrap();
            sample::write_entries(&self.paths, entries).unwrap();
        }

        /// Writes a snapshot of `history` as of `head`, MAC'd with `key`.
        fn forge(&self, head: Head, history: &History, key: [u8; 32]) {
            Store { path: self.snapshot(), key }.save(head, history);
        }
    }

    /// The history folded from the first entry, ignoring every snapshot.
    fn scratch(j: &Journal) -> String {
        History::from_entries(j.raw_entries().unwrap()).unwrap().fingerprint()
    }

    fn read(j: &Journal) -> (String, Source) {
        let (h, source) = read_traced(j).unwrap();
        (h.fingerprint(), source)
    }

    #[test]
    fn a_snapshot_is_written_used_and_carried_forward_over_only_the_new_entries() {
        let f = Fixture::new(3_000, 5);
        let j = f.open();
        assert_eq!(read(&j), (scratch(&j), Source::Rebuilt), "the first read folds everything");
        assert!(f.snapshot().is_file());
        assert_eq!(read(&j), (scratch(&j), Source::Snapshot), "at the head: nothing read");
        drop(j);
        let mut j = f.open();
        for e in sample::entries(3_300, 5).skip(3_000) {
            j.append_draft(Draft { kind: e.kind, id: Some(e.id), body: e.body }).unwrap();
        }
        assert_eq!(read(&j), (scratch(&j), Source::Extended(300)));
        assert_eq!(read(&j).1, Source::Snapshot, "the snapshot moved to the new head");
        // A few entries more: carried forward again, the file left as it is.
        for e in sample::entries(3_305, 5).skip(3_300) {
            j.append_draft(Draft { kind: e.kind, id: Some(e.id), body: e.body }).unwrap();
        }
        assert_eq!(read(&j), (scratch(&j), Source::Extended(5)));
        assert_eq!(read(&j).1, Source::Extended(5), "not rewritten for 5 entries");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(f.snapshot()).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_forged_snapshot_changes_nothing() {
        let f = Fixture::new(2_000, 11);
        let j = f.open();
        let truth = scratch(&j);
        read(&j);
        // An attacker edits the counts in the body and keeps the old MAC.
        let bytes = std::fs::read(f.snapshot()).unwrap();
        let at = bytes.windows(8).position(|w| w == b"\"steps\":").unwrap();
        let edited = [&bytes[..at + 8], b"[],\"was\":", &bytes[at + 8..]].concat();
        std::fs::write(f.snapshot(), edited).unwrap();
        assert_eq!(read(&j), (truth.clone(), Source::Rebuilt), "a MAC that does not verify");
        // One MAC'd under a key the attacker made up, claiming an empty past.
        f.forge(j.head(), &History::default(), [7; 32]);
        assert_eq!(read(&j), (truth.clone(), Source::Rebuilt), "another key");
        // One with no MAC at all.
        let bytes = std::fs::read(f.snapshot()).unwrap();
        let cut = memchr::memchr(b'\n', &bytes).unwrap();
        let mut header: serde_json::Value = serde_json::from_slice(&bytes[..cut]).unwrap();
        header.as_object_mut().unwrap().remove("mac");
        std::fs::write(f.snapshot(), [header.to_string().as_bytes(), &bytes[cut..]].concat()).unwrap();
        assert_eq!(read(&j), (truth.clone(), Source::Rebuilt), "no MAC");
        // Garbage, and an empty file.
        for junk in ["", "{", "\n\n", "not json\n{}"] {
            std::fs::write(f.snapshot(), junk).unwrap();
            assert_eq!(read(&j), (truth.clone(), Source::Rebuilt), "{junk:?}");
        }
        assert_eq!(read(&j), (truth, Source::Snapshot), "and the rebuilt one is written back");
    }

    #[test]
    fn a_snapshot_whose_offset_holds_another_entry_is_not_used() {
        let f = Fixture::new(2_000, 13);
        let j = f.open();
        let truth = scratch(&j);
        let head = j.head();
        // The entry before the head, to find where it ends.
        let before = {
            let mut it = j.raw_entries().unwrap();
            let mut size = 0;
            let log = std::fs::read(&f.paths.log).unwrap();
            for _ in 0..1_999 {
                it.next().unwrap().unwrap();
                size += memchr::memchr(b'\n', &log[size..]).unwrap() + 1;
            }
            size as u64
        };
        // Even with the real key (a bug, a stale file): an empty history
        // claimed at the head's seq and hash, but at the offset of entry 1999.
        let lie = History::default();
        for size in [before, before + 1, head.size - 1, head.size + 10, 0] {
            f.forge(Head { size, ..head }, &lie, f.key());
            assert_eq!(read(&j), (truth.clone(), Source::Rebuilt), "offset {size}");
        }
        // The right offset with another entry's seq or hash.
        f.forge(Head { seq: head.seq - 1, ..head }, &lie, f.key());
        assert_eq!(read(&j), (truth.clone(), Source::Rebuilt), "a wrong seq");
        f.forge(Head { hash: [1; 32], ..head }, &lie, f.key());
        assert_eq!(read(&j), (truth.clone(), Source::Rebuilt), "a wrong hash");
        // Ahead of the log.
        f.forge(Head { seq: head.seq + 1, size: head.size + 500, ..head }, &lie, f.key());
        assert_eq!(read(&j), (truth, Source::Rebuilt), "beyond the head");
    }

    #[test]
    fn a_log_rewritten_below_the_snapshot_is_folded_again() {
        let f = Fixture::new(3_000, 17);
        read(&f.open());
        // The same first 2,000 entries, then others: the snapshot's offset
        // now falls inside, or at the end of, entries it never saw.
        f.rewrite(sample::entries(2_000, 17).chain(sample::entries(1_500, 99)));
        let j = f.open();
        assert_eq!(read(&j), (scratch(&j), Source::Rebuilt));
        // A log rewritten from its first entry, the same length.
        drop(j);
        f.rewrite(sample::entries(3_000, 23));
        let j = f.open();
        assert_eq!(read(&j), (scratch(&j), Source::Rebuilt));
        // A log cut back below the snapshot (and its checkpoints with it).
        read(&j);
        drop(j);
        f.rewrite(sample::entries(2_500, 23));
        let j = f.open();
        assert_eq!(read(&j), (scratch(&j), Source::Rebuilt));
    }

    /// Rewrites the snapshot with `body` after its header, MAC'd under the real key.
    fn remac(f: &Fixture, body: &[u8]) {
        let bytes = std::fs::read(f.snapshot()).unwrap();
        let cut = memchr::memchr(b'\n', &bytes).unwrap();
        let mut header: Header = serde_json::from_slice(&bytes[..cut]).unwrap();
        header.mac = None;
        let tag = crate::private::mac_parts(&f.key(), PURPOSE, &[&crate::canonical::to_vec(&header), &[0], body]);
        header.mac = Some(tag);
        let mut out = crate::canonical::to_vec(&header);
        out.push(b'\n');
        out.extend_from_slice(body);
        std::fs::write(f.snapshot(), out).unwrap();
    }

    #[test]
    fn a_snapshot_whose_packed_part_does_not_read_is_not_used_even_with_a_good_mac() {
        let f = Fixture::new(30_000, 19);
        let j = f.open();
        let truth = scratch(&j);
        read(&j);
        let bytes = std::fs::read(f.snapshot()).unwrap();
        let body = &bytes[memchr::memchr(b'\n', &bytes).unwrap() + 1..];
        let json_end = memchr::memchr(b'\n', body).unwrap();
        let packed = &body[json_end + 1..];
        assert!(packed.len() > 1_000, "the merges that stand are in the packed part");
        // Cut short, one byte more, a count that lies, nothing at all, no separator.
        let mut lying = body[..=json_end].to_vec();
        lying.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        for (what, b) in [
            ("cut", body[..body.len() - 7].to_vec()),
            ("extra", [body, &[0]].concat()),
            ("lying count", lying),
            ("empty", body[..=json_end].to_vec()),
            ("no packed part", body[..json_end].to_vec()),
        ] {
            remac(&f, &b);
            assert_eq!(read(&j), (truth.clone(), Source::Rebuilt), "{what}");
        }
        // And the one ratchet wrote reads back as the fold from the first entry.
        assert_eq!(read(&j), (truth, Source::Snapshot));
    }

    #[test]
    fn an_aged_merge_is_read_again_from_its_entry_and_checked_against_its_hash() {
        let f = Fixture::new(30_000, 29);
        let j = f.open();
        let (h, _) = read_traced(&j).unwrap();
        let whole = History::read_all(&j).unwrap();
        // Merges old enough to have aged out of the recent window.
        let aged: Vec<_> =
            h.merges().into_iter().filter(|m| h.step(m.id).is_none()).map(|m| m.id.to_string()).collect();
        assert!(aged.len() > 100, "{} aged merges", aged.len());
        for id in aged.iter().step_by(37) {
            let s = h.load_step(&j, id).unwrap().expect("an aged merge loads");
            let w = whole.step(id).unwrap();
            assert_eq!(serde_json::to_value(&s.body).unwrap(), serde_json::to_value(&w.body).unwrap(), "{id}");
            assert_eq!(
                (s.first_seq, s.last_seq, s.started, s.finished),
                (w.first_seq, w.last_seq, w.started, w.finished)
            );
            assert_eq!((s.utility(), &s.verified, &s.reverted), (w.utility(), &w.verified, &w.reverted), "{id}");
        }
        assert!(h.load_step(&j, "s999999999").unwrap().is_none());
        // The log rewritten under the history in hand: the place now holds
        // other bytes (or another entry), and nothing is taken from it.
        drop(j);
        f.rewrite(sample::entries(30_000, 31));
        let j = f.open();
        for id in aged.iter().step_by(37) {
            let err = h.load_step(&j, id).expect_err("another log's line is not the merge's entry");
            assert_eq!(err.code(), "LOG_TAMPERED", "{id}: {err}");
        }
    }

    #[test]
    fn without_a_private_directory_every_read_folds_the_whole_log() {
        let f = Fixture::new(600, 3);
        let mut paths = f.paths.clone();
        paths.private = None;
        paths.checkpoints.truncate(1);
        let j = Journal::open_at(paths).unwrap();
        assert_eq!(read(&j), (scratch(&j), Source::Rebuilt));
        assert_eq!(read(&j).1, Source::Rebuilt);
        assert!(!f.snapshot().exists());
    }
}

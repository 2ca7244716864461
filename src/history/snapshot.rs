//! The history snapshot: the fold's state ([`History`]) as of one entry of
//! the log, kept so that a command reads only the entries after it.
//!
//! ## Where, and why it can be trusted
//!
//! `history.json` in ratchet's private directory ([`crate::private`]),
//! beside the second checkpoint and the crash journal: outside the
//! repository, hidden from every child of the sandbox, and MAC'd with the
//! private key. The file is one header line, then the history as JSON:
//!
//! ```text
//! {"build":"0.1.0","format":1,"hash":"<64 hex>","mac":"<64 hex>","seq":N,"size":N}
//! {"steps":[…],…}
//! ```
//!
//! `seq`, `hash` and `size` name the last entry folded in and the byte just
//! after it; the MAC (purpose `ratchet history snapshot v1`) covers the
//! header without `mac`, a zero byte, and the body. `format` and `build`
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
//! next command folds again.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::History;
use crate::journal::{Head, Journal, JournalError};

/// The file's name in the private directory.
pub const FILE: &str = "history.json";

/// What the MAC is bound to.
const PURPOSE: &str = "ratchet history snapshot v1";

/// The snapshot's layout; bump it when [`History`]'s fold changes.
const FORMAT: u32 = 1;

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
/// when the head moved.
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
                store.save(head, &h);
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
        if !crate::private::verify_mac(&self.key, PURPOSE, &message(&header, body), &tag) {
            return None;
        }
        let hash = crate::journal::line::unhex(header.hash.as_bytes())?;
        let mut history: History = serde_json::from_slice(body).ok()?;
        history.reindex();
        Some((Head { seq: header.seq, hash, size: header.size }, history))
    }

    /// Writes the snapshot of `history` as of `head`, atomically; a failure
    /// is left for the next command to fold again.
    fn save(&self, head: Head, history: &History) {
        if head.seq == 0 {
            return;
        }
        let Ok(body) = serde_json::to_vec(history) else { return };
        let mut header = Header {
            build: BUILD.into(),
            format: FORMAT,
            hash: head.hash_hex(),
            mac: None,
            seq: head.seq,
            size: head.size,
        };
        header.mac = Some(crate::private::mac(&self.key, PURPOSE, &message(&header, &body)));
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

/// What the MAC covers: the header without its MAC, a zero byte, the body.
fn message(header: &Header, body: &[u8]) -> Vec<u8> {
    let mut m = crate::canonical::to_vec(header);
    m.push(0);
    m.extend_from_slice(body);
    m
}

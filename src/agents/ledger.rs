//! The ledger: every signed write a bot makes, kept so that `ratchet log
//! verify` covers the consensus too.
//!
//! A write's record holds everything its signature covers (audience,
//! method, path, timestamp, nonce, the canonical body in the order that
//! verified) plus the signature, its kind and what it is about. Records
//! are numbered from 1 with no gaps, in commit order, and chained:
//!
//! ```text
//! digest_i = blake3(canonical JSON of record i)
//! chain_0  = 32 zero bytes
//! chain_i  = blake3(chain_{i-1} || digest_i)
//! ```
//!
//! The records live in SQLite (`.ratchet/agents.db`, group-committed, so
//! thousands of writes a second do not each cost an fsync of the step
//! log). The step log anchors them: an `agents` entry ([`Anchor`]) records
//! `(writes, chain)` — the number of records and the chain at that
//! record — when a candidate enters the loop, when a revision is adopted,
//! when a human decides a remote candidate, and at most once a minute
//! while writes arrive.
//!
//! **Invariant** (checked by [`audit`]): every stored record's signature
//! verifies (`verify_strict`) for its bot over exactly its stored fields;
//! its digest and chain are recomputed and match; numbers run 1..n without
//! a gap; no (bot, nonce) repeats; and for every anchor in the log the
//! database holds at least `writes` records and the chain at `writes` is
//! the anchored one. So a record deleted, edited or inserted at or before
//! the last anchor is found, and one edited or forged after it is found by
//! its signature. What the log cannot see is a deletion of the newest
//! records after the last anchor; the next anchor's count and chain then
//! disagree with what the server had, and a bot's copy of its 202 (which
//! names the record's number) shows it.

use serde::{Deserialize, Serialize};

use super::json::KeyOrder;
use super::signed::{Target, verify_stored};

/// What a write does.
pub const KINDS: [&str; 7] = ["join", "verify", "candidate", "attestation", "objection", "revision", "vote"];

/// One signed write, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub seq: i64,
    pub kind: String,
    pub bot_id: String,
    /// The story (step id) the write is about, if any.
    pub story: Option<String>,
    /// The revision proposal a vote is about, or a revision's own id.
    pub target: Option<String>,
    /// The packet hash the write names (attestations, objections,
    /// revisions' base) or creates (candidates).
    pub packet: Option<String>,
    pub audience: String,
    pub method: String,
    pub path: String,
    pub timestamp: String,
    pub nonce: String,
    /// The canonical body the signature covers.
    pub body: String,
    pub order: KeyOrder,
    /// base64url of the 64 signature bytes.
    pub signature: String,
}

impl Record {
    /// blake3 of the record's canonical JSON.
    pub fn digest(&self) -> [u8; 32] {
        *blake3::hash(&crate::canonical::to_vec(self)).as_bytes()
    }

    /// Whether the stored signature verifies over the stored fields.
    pub fn signature_ok(&self) -> bool {
        use base64::Engine;
        let Ok(sig) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&self.signature) else { return false };
        let t = Target { audience: &self.audience, method: &self.method, path: &self.path };
        verify_stored(&self.bot_id, &t, &self.timestamp, &self.nonce, &self.body, &sig)
    }
}

/// The next link of the chain.
pub fn link(prev: &[u8; 32], digest: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(prev);
    h.update(digest);
    *h.finalize().as_bytes()
}

/// The body of an `agents` entry of the step log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Anchor {
    /// `candidate`, `revision`, `decision` or `checkpoint`.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story: Option<String>,
    /// Records in the ledger at this point.
    pub writes: i64,
    /// The chain at record `writes` (hex; zeros when `writes` is 0).
    pub chain: String,
    /// The quorum a human decided on, for `decision`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<serde_json::Value>,
    /// The packet the story stands on after this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet: Option<String>,
}

impl crate::record::Body for Anchor {
    const KIND: crate::journal::Kind = crate::journal::Kind::Agents;
    type Permit = ();
}

/// A stored record with the digest and chain the database holds for it.
#[derive(Clone, Debug)]
pub struct Stored {
    pub record: Record,
    pub digest: Vec<u8>,
    pub chain: Vec<u8>,
}

/// The first problem [`audit`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The record at fault (0 when it is about the whole ledger).
    pub seq: i64,
    pub reason: String,
}

/// What [`audit`] checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub writes: i64,
    pub signatures: i64,
    pub anchors: usize,
    pub first_bad: Option<Finding>,
}

/// Checks every record (in seq order) and the anchors (`(writes, chain hex)`,
/// as the log holds them), see the module's invariant.
pub fn audit(records: impl Iterator<Item = Result<Stored, String>>, anchors: &[(i64, String)]) -> AuditReport {
    let mut anchors: Vec<(i64, String)> = anchors.to_vec();
    anchors.sort();
    let mut report = AuditReport { writes: 0, signatures: 0, anchors: 0, first_bad: None };
    let mut chain = [0u8; 32];
    let mut nonces = std::collections::HashSet::new();
    let mut next_anchor = 0;
    let bad = |seq: i64, reason: String| Some(Finding { seq, reason });
    // Anchors at 0 writes name the empty chain.
    while next_anchor < anchors.len() && anchors[next_anchor].0 == 0 {
        if anchors[next_anchor].1 != crate::journal::line::hex(&chain) {
            report.first_bad = bad(0, "an anchor at 0 writes names a chain other than the empty one".into());
            return report;
        }
        report.anchors += 1;
        next_anchor += 1;
    }
    for item in records {
        let s = match item {
            Ok(s) => s,
            Err(e) => {
                report.first_bad = bad(report.writes + 1, format!("the record cannot be read: {e}"));
                return report;
            }
        };
        let seq = s.record.seq;
        if seq != report.writes + 1 {
            report.first_bad =
                bad(seq, format!("record {seq} follows record {}: records were deleted or inserted", report.writes));
            return report;
        }
        if !s.record.signature_ok() {
            report.first_bad = bad(seq, format!("the signature of record {seq} ({}) does not verify", s.record.kind));
            return report;
        }
        report.signatures += 1;
        if !nonces.insert(blake3::hash(format!("{}\n{}", s.record.bot_id, s.record.nonce).as_bytes())) {
            report.first_bad = bad(seq, format!("record {seq} repeats an earlier write's nonce (a replay)"));
            return report;
        }
        let digest = s.record.digest();
        if s.digest != digest {
            report.first_bad = bad(seq, format!("record {seq} was edited: its digest does not match its fields"));
            return report;
        }
        chain = link(&chain, &digest);
        if s.chain != chain {
            report.first_bad = bad(seq, format!("the chain breaks at record {seq}"));
            return report;
        }
        report.writes = seq;
        while next_anchor < anchors.len() && anchors[next_anchor].0 == seq {
            if anchors[next_anchor].1 != crate::journal::line::hex(&chain) {
                report.first_bad =
                    bad(seq, format!("the log anchors record {seq} with another chain: records up to it were changed"));
                return report;
            }
            report.anchors += 1;
            next_anchor += 1;
        }
    }
    if let Some((n, _)) = anchors.get(next_anchor) {
        report.first_bad =
            bad(*n, format!("the log anchors {n} writes but the ledger holds {}: records were deleted", report.writes));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::json::{Json, parse};
    use crate::agents::signed::Identity;

    fn ledger(n: usize) -> Vec<Stored> {
        let id = Identity::generate().unwrap();
        let t = Target { audience: "ratchet", method: "POST", path: "/v1/agents/attestations" };
        let mut chain = [0u8; 32];
        (1..=n)
            .map(|i| {
                let body: Json = parse(format!(r#"{{"botId":"{}","i":{i}}}"#, id.bot_id()).as_bytes()).unwrap();
                let nonce = format!("nonce-{i:04}");
                let h = id.sign_write(&t, 1_700_000_000_000, &nonce, &body);
                let record = Record {
                    seq: i as i64,
                    kind: "attestation".into(),
                    bot_id: id.bot_id(),
                    story: Some("s1".into()),
                    target: None,
                    packet: Some("p".into()),
                    audience: "ratchet".into(),
                    method: "POST".into(),
                    path: t.path.into(),
                    timestamp: h.timestamp,
                    nonce,
                    body: crate::agents::json::canonical(&body, KeyOrder::Code),
                    order: KeyOrder::Code,
                    signature: h.signature,
                };
                let digest = record.digest();
                chain = link(&chain, &digest);
                Stored { record, digest: digest.to_vec(), chain: chain.to_vec() }
            })
            .collect()
    }

    fn hex(s: &Stored) -> String {
        crate::journal::line::hex(&<[u8; 32]>::try_from(s.chain.as_slice()).unwrap())
    }

    #[test]
    fn a_clean_ledger_passes_with_its_anchors() {
        let l = ledger(5);
        let anchors = [(2, hex(&l[1])), (5, hex(&l[4])), (0, crate::journal::line::hex(&[0; 32]))];
        let r = audit(l.into_iter().map(Ok), &anchors);
        assert_eq!(r.first_bad, None);
        assert_eq!((r.writes, r.signatures, r.anchors), (5, 5, 3));
    }

    #[test]
    fn deleted_edited_and_inserted_records_are_found() {
        let l = ledger(5);
        let anchors = [(5, hex(&l[4]))];
        // Deleted in the middle.
        let mut d = l.clone();
        d.remove(2);
        assert_eq!(audit(d.into_iter().map(Ok), &anchors).first_bad.unwrap().seq, 4);
        // Deleted at the end, under an anchor.
        let r = audit(l[..4].iter().cloned().map(Ok), &anchors);
        assert!(r.first_bad.unwrap().reason.contains("deleted"));
        // Edited: the body changes, the signature no longer verifies.
        let mut e = l.clone();
        e[1].record.body = e[1].record.body.replace("\"i\":2", "\"i\":9");
        assert!(audit(e.into_iter().map(Ok), &anchors).first_bad.unwrap().reason.contains("signature"));
        // Edited outside the signature (its story), digest and chain rewritten to match.
        let mut e = l.clone();
        e[1].record.story = Some("s2".into());
        e[1].digest = e[1].record.digest().to_vec();
        let mut chain = <[u8; 32]>::try_from(e[0].chain.as_slice()).unwrap();
        for s in e.iter_mut().skip(1) {
            chain = link(&chain, &<[u8; 32]>::try_from(s.digest.as_slice()).unwrap());
            s.chain = chain.to_vec();
        }
        let f = audit(e.into_iter().map(Ok), &anchors).first_bad.unwrap();
        assert_eq!(f.seq, 5);
        assert!(f.reason.contains("anchors"), "{f:?}");
        // Inserted: a copy of record 2 replayed as record 3.
        let mut i = l.clone();
        let mut copy = i[1].clone();
        copy.record.seq = 3;
        i.insert(2, copy);
        for (n, s) in i.iter_mut().enumerate().skip(3) {
            s.record.seq = n as i64 + 1;
        }
        let f = audit(i.into_iter().map(Ok), &anchors).first_bad.unwrap();
        assert_eq!(f.seq, 3);
    }
}

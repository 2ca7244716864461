//! Reporting the loop's own steps to LoopKit, as OTLP spans (DESIGN §11:
//! "ratchet also reports every step to it as an OTLP span, queued when the
//! server is down, never lost or duplicated").
//!
//! **The log is the queue.** Every `step` entry of the log is one span;
//! `.ratchet/telemetry-sent.json` holds how far the log has been sent (the
//! seq of the last entry the server acknowledged, and which log that seq
//! belongs to). A flush sends the step entries after it, in batches, and
//! moves it forward only after the server has answered 2xx. So:
//!
//! - **never lost**: an entry is in the log (fsynced) before anything is
//!   sent, and the cursor never passes an entry the server did not accept;
//!   a server that is down, refuses the key or times out leaves the cursor
//!   where it was, and the next flush (the next `step` or `heartbeat`)
//!   sends the same entries again;
//! - **never duplicated**: a span's ids and times are derived from the log,
//!   not drawn at random: the trace id from the log's genesis hash and the
//!   step id, the span id from the genesis, the step id and the entry's
//!   seq, the time from the entry's timestamp. A retried or re-sent span is
//!   the same span, and the server stores a (project, start, span id) once.
//!   A crash between the server's answer and the cursor's write (the
//!   `telemetry-sent` fault point) re-sends a batch the server already has:
//!   it is counted as a duplicate, not stored twice;
//! - **bounded**: the queue takes no space beyond the log; a flush sends at
//!   most [`MAX_BATCHES`] batches of [`BATCH`] spans, so a long backlog is
//!   sent over several runs and no run waits long on it; and it reads only
//!   the log's tail: the cursor also names where its entry ends and that
//!   entry's hash, and when the line there is still that entry (checked as
//!   [`Journal::raw_entries_after`] checks it) the flush reads only the
//!   bytes after it. A cursor whose place does not check out (another log,
//!   an older cursor, an edited file) is read from the first entry, as
//!   before: the place only saves reading, it never moves the cursor.
//!
//! The span: name `ratchet.step`, service `ratchet`, one instant at the
//! entry's time, status ERROR for a failed step (its message the reason, so
//! the loop's own failures become pains), and the `ratchet.step.*`
//! attributes: `id`, `seq`, `provider`, `outcome`, `utility`, `pain_id`
//! (from a `pain:<id>` focus; the server records a merged step that names a
//! pain as a change to measure), `commit`, `reason`, `focus`, `log`.
//!
//! A span sent while the server's clock is behind ratchet's is clamped to
//! the server's "now" (a future-dated span), which changes its start: the
//! same clock on both sides (one machine, or `RATCHET_NOW` for both) keeps
//! re-sends idempotent.

use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::journal::{Head, Journal, Kind};
use crate::loopkit::client::{Endpoint, TelemetryError};
use crate::record::{Outcome, StepBody};
use crate::workspace::Workspace;

/// Spans per request.
pub const BATCH: usize = 100;
/// Requests per flush.
pub const MAX_BATCHES: usize = 5;
/// The fault point between the server's answer and the cursor's write.
pub const FAULT_SENT: &str = "telemetry-sent";

/// How far the log has been sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// The genesis hash of the log the seq belongs to.
    pub log: String,
    /// The seq of the last entry the server has.
    pub seq: u64,
    /// Where that entry ends in the log (the byte after its newline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<u64>,
    /// That entry's hash (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// `.ratchet/telemetry-sent.json`.
pub fn cursor_path(ws: &Workspace) -> std::path::PathBuf {
    ws.state_dir().join("telemetry-sent.json")
}

impl Cursor {
    /// The cursor for the log named `genesis`: the saved one, or the start
    /// when there is none, it belongs to another log, it cannot be read, or
    /// it points past the head (re-sending is harmless; skipping is not).
    pub fn load(ws: &Workspace, genesis: &str, head: u64) -> Cursor {
        let saved = std::fs::read(cursor_path(ws)).ok().and_then(|b| serde_json::from_slice::<Cursor>(&b).ok());
        match saved {
            Some(c) if c.log == genesis && c.seq <= head => c,
            _ => Cursor { log: genesis.to_string(), seq: 0, end: None, hash: None },
        }
    }

    /// Moves the cursor to the entry `at`.
    fn to(&mut self, at: Head) {
        self.seq = at.seq;
        self.end = Some(at.size);
        self.hash = Some(at.hash_hex());
    }

    /// The entry the cursor names, as a place in the log, when it names one.
    fn place(&self) -> Option<Head> {
        let hash = crate::journal::line::unhex(self.hash.as_deref()?.as_bytes())?;
        (self.seq > 0).then_some(Head { seq: self.seq, hash, size: self.end? })
    }

    fn save(&self, ws: &Workspace) -> Result<(), TelemetryError> {
        let path = cursor_path(ws);
        let bytes = serde_json::to_vec(self).expect("a cursor serialises");
        crate::fsutil::write_file(&path, &bytes, crate::fsutil::Durability::File).map_err(|e| {
            TelemetryError::BadResponse {
                url: String::new(),
                reason: format!("the server took the spans but {} could not be written: {e}", path.display()),
            }
        })
    }
}

/// What a flush did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Flushed {
    /// Spans the server acknowledged in this flush (re-sent ones included).
    pub sent: u64,
    /// Spans the server acknowledged but refused to store (`partialSuccess`).
    pub rejected: u64,
    /// Step entries still waiting after this flush.
    pub waiting: u64,
    /// The cursor after the flush.
    pub through: u64,
}

/// The trace id of step `id` in the log named `genesis`.
pub fn trace_id(genesis: &[u8; 32], id: &str) -> [u8; 16] {
    let mut h = blake3::Hasher::new_derive_key("ratchet step trace id v1");
    h.update(genesis);
    h.update(id.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out[0] |= 1; // never all zero
    out
}

/// The span id of the entry `seq` of step `id` in the log named `genesis`.
pub fn span_id(genesis: &[u8; 32], id: &str, seq: u64) -> [u8; 8] {
    let mut h = blake3::Hasher::new_derive_key("ratchet step span id v1");
    h.update(genesis);
    h.update(id.as_bytes());
    h.update(&seq.to_be_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&h.finalize().as_bytes()[..8]);
    out[0] |= 1;
    out
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn text(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.to_string()))
}

/// The span of one step entry.
pub fn step_span(genesis: &[u8; 32], seq: u64, id: &str, ts: &str, body: &StepBody) -> Span {
    let at = crate::clock::parse(ts).and_then(|t| t.timestamp_nanos_opt()).unwrap_or(0).max(0) as u64;
    let mut attributes = vec![
        text("ratchet.step.id", id),
        kv("ratchet.step.seq", Value::IntValue(seq as i64)),
        text("ratchet.step.provider", &crate::loopkit::client::bounded(&body.pick.provider, 200)),
        text("ratchet.step.outcome", body.outcome.word()),
        text("ratchet.step.focus", &crate::loopkit::client::bounded(&body.pick.focus, 200)),
        text("ratchet.log", &crate::journal::line::hex(genesis)[..16]),
    ];
    if let Some(u) = body.utility.filter(|u| u.is_finite()) {
        attributes.push(kv("ratchet.step.utility", Value::DoubleValue(u)));
    }
    if let Some(pain) = body.pick.focus.strip_prefix("pain:").filter(|p| crate::loopkit::normalise::is_pain_id(p)) {
        attributes.push(text("ratchet.step.pain_id", pain));
    }
    if let Some(commit) = body.apply.as_ref().and_then(|a| a.commit.as_deref()) {
        attributes.push(text("ratchet.step.commit", commit));
    }
    if let Some(reason) = body.reason {
        attributes.push(text("ratchet.step.reason", reason.word()));
    }
    if let Some(p) = &body.proposal {
        attributes.push(text("ratchet.step.path", &crate::loopkit::client::bounded(&p.path, 300)));
    }
    let status = match body.outcome {
        Outcome::Failed => Status { code: 2, message: body.reason.map_or("failed", |r| r.word()).to_string() },
        _ => Status { code: 1, message: String::new() },
    };
    Span {
        trace_id: trace_id(genesis, id).to_vec(),
        span_id: span_id(genesis, id, seq).to_vec(),
        name: "ratchet.step".into(),
        kind: 1,
        start_time_unix_nano: at,
        end_time_unix_nano: at,
        attributes,
        status: Some(status),
        ..Default::default()
    }
}

/// One OTLP request holding `spans`, from service `ratchet`.
pub fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", "ratchet"), text("service.version", env!("CARGO_PKG_VERSION"))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: "ratchet".into(), ..Default::default() }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The step entries after `cursor`, as (where each is in the log, span):
/// read from the cursor's place when the line there is still its entry,
/// else from the first entry.
pub fn unsent(journal: &Journal, cursor: &Cursor, genesis: &[u8; 32]) -> Result<Vec<(Head, Span)>, TelemetryError> {
    let unreadable = |e: crate::journal::JournalError| TelemetryError::BadResponse {
        url: String::new(),
        reason: format!("the log cannot be read: {e}"),
    };
    let tail = match cursor.place() {
        Some(at) => journal.raw_entries_after(at).map_err(unreadable)?,
        None => None,
    };
    let entries = match tail {
        Some(entries) => entries,
        None => journal.raw_entries().map_err(unreadable)?,
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(unreadable)?;
        if e.seq <= cursor.seq || e.kind != Kind::Step {
            continue;
        }
        let Ok(body) = serde_json::from_str::<StepBody>(&e.body) else { continue };
        let at = Head { seq: e.seq, hash: e.hash, size: e.end };
        out.push((at, step_span(genesis, e.seq, &e.id, &e.ts, &body)));
    }
    Ok(out)
}

/// Sends the step entries the server does not have yet (see the module
/// doc); a server that cannot take them leaves them queued.
pub fn flush(ws: &Workspace, journal: &Journal, ep: &Endpoint) -> Result<Flushed, TelemetryError> {
    let at_head = journal.head();
    let head = at_head.seq;
    let Some(genesis) = journal.genesis().map_err(|e| TelemetryError::BadResponse {
        url: String::new(),
        reason: format!("the log cannot be read: {e}"),
    })?
    else {
        return Ok(Flushed::default());
    };
    let mut cursor = Cursor::load(ws, &crate::journal::line::hex(&genesis), head);
    if cursor.seq == head {
        return Ok(Flushed { through: head, ..Flushed::default() });
    }
    let spans = unsent(journal, &cursor, &genesis)?;
    let mut out = Flushed { waiting: spans.len() as u64, through: cursor.seq, ..Flushed::default() };
    if spans.is_empty() {
        // Only entries of other kinds since: nothing to send.
        cursor.to(at_head);
        cursor.save(ws)?;
        out.through = head;
        return Ok(out);
    }
    ep.producer()?;
    let mut batches = spans.chunks(BATCH).take(MAX_BATCHES).peekable();
    while let Some(batch) = batches.next() {
        let body = request(batch.iter().map(|(_, s)| s.clone()).collect()).encode_to_vec();
        let answer = ep.post_traces(body)?;
        if let Ok(r) = ExportTraceServiceResponse::decode(answer.as_slice()) {
            out.rejected += r.partial_success.map_or(0, |p| p.rejected_spans.max(0) as u64);
        }
        crate::fault::fault(FAULT_SENT);
        out.sent += batch.len() as u64;
        out.waiting -= batch.len() as u64;
        // The last batch of the backlog covers the entries after it too.
        cursor.to(if out.waiting == 0 && batches.peek().is_none() { at_head } else { batch[batch.len() - 1].0 });
        cursor.save(ws)?;
        out.through = cursor.seq;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_derived_from_the_log_and_the_step_so_a_resend_is_the_same_span() {
        let g = [7u8; 32];
        assert_eq!(trace_id(&g, "s3"), trace_id(&g, "s3"));
        assert_ne!(trace_id(&g, "s3"), trace_id(&g, "s4"));
        assert_ne!(trace_id(&g, "s3"), trace_id(&[8u8; 32], "s3"), "another log, another trace");
        assert_ne!(span_id(&g, "s3", 3), span_id(&g, "s3", 4), "a step's pending and merged entries are two spans");
        assert_ne!(span_id(&g, "s3", 3), [0; 8]);
    }

    #[test]
    fn a_step_becomes_a_span_with_its_attributes() {
        let mut body = crate::history::tests::body("self", Outcome::Merged, 0.9, Some("abc123"));
        body.pick.focus = "pain:pn_0123456789abcdef".into();
        let span = step_span(&[1; 32], 4, "s4", "2026-11-21T19:00:00Z", &body);
        let attr = |k: &str| span.attributes.iter().find(|a| a.key == k).and_then(|a| a.value.clone());
        let s = |k: &str| match attr(k).and_then(|v| v.value) {
            Some(Value::StringValue(s)) => s,
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!(s("ratchet.step.id"), "s4");
        assert_eq!(s("ratchet.step.outcome"), "merged");
        assert_eq!(s("ratchet.step.pain_id"), "pn_0123456789abcdef");
        assert_eq!(s("ratchet.step.commit"), "abc123");
        assert_eq!(span.start_time_unix_nano, 1_795_287_600_000_000_000);
        assert_eq!(span.status.as_ref().unwrap().code, 1);
        let mut failed = crate::history::tests::body("self", Outcome::Failed, 0.1, None);
        failed.reason = Some(crate::record::Reason::ChecksFailed);
        let span = step_span(&[1; 32], 5, "s5", "2026-11-21T19:00:00Z", &failed);
        assert_eq!(span.status.as_ref().map(|s| (s.code, s.message.as_str())), Some((2, "checks_failed")));
        // The server reads it back as a merged change to measure.
        let n = crate::loopkit::normalise::normalise(
            &request(vec![step_span(&[1; 32], 4, "s4", "2026-11-21T19:00:00Z", &body)]),
            &Default::default(),
            i64::MAX,
        );
        assert_eq!(n.changes.len(), 1);
        assert_eq!((n.changes[0].pain_id.as_str(), n.changes[0].step.as_deref()), ("pn_0123456789abcdef", Some("s4")));
        assert!(n.records[0].signal.is_none(), "a merged step is no failure");
    }

    #[test]
    fn a_flush_reads_only_the_log_after_the_cursors_place_and_a_place_that_does_not_check_reads_it_all() {
        use crate::journal::{JournalPaths, sample};
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::at(dir.path().join("repo"), "");
        let paths = JournalPaths::with_state_home(&ws, Some(&dir.path().join("state")));
        sample::write(&paths, 3_000, 7).unwrap();
        let j = Journal::open_at(paths.clone()).unwrap();
        let genesis = j.genesis().unwrap().unwrap();
        let log = crate::journal::line::hex(&genesis);
        let start = Cursor { log: log.clone(), seq: 0, end: None, hash: None };
        let all = unsent(&j, &start, &genesis).unwrap();
        assert!(all.len() > 2_000);
        let mid = all.len() / 2;
        let mut at = start.clone();
        at.to(all[mid].0);
        assert_eq!(unsent(&j, &at, &genesis).unwrap(), all[mid + 1..], "from the cursor's place");
        // A place that is not entry `seq` (another offset, hash or seq):
        // read from the first entry, the same spans.
        let place = all[mid].0;
        for wrong in [
            Head { size: place.size - 1, ..place },
            Head { size: place.size + 1, ..place },
            Head { hash: [3; 32], ..place },
            Head { seq: place.seq - 1, ..place },
        ] {
            let mut c = start.clone();
            c.to(wrong);
            let sent_through = all.iter().take_while(|(h, _)| h.seq <= c.seq).count();
            assert_eq!(unsent(&j, &c, &genesis).unwrap(), all[sent_through..], "{wrong:?}");
        }
        let mut odd = at.clone();
        odd.hash = Some("not hex".into());
        assert_eq!(unsent(&j, &odd, &genesis).unwrap(), all[mid + 1..], "a hash that is not one");
        // Proof that only the tail is read: a byte of the first line changed
        // on disk fails a read from the first entry, not one from the place.
        let mut bytes = std::fs::read(&paths.log).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&paths.log, bytes).unwrap();
        assert_eq!(unsent(&j, &at, &genesis).unwrap(), all[mid + 1..]);
        assert!(unsent(&j, &start, &genesis).is_err(), "the whole log is read without a place");
        // The cursor's file keeps the place.
        at.save(&ws).unwrap();
        let loaded = Cursor::load(&ws, &log, j.head().seq);
        assert_eq!(loaded, at);
    }
}

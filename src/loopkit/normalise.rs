//! From OTLP spans to telemetry records: validation, signal detection,
//! attribute selection, and the fingerprint of every failing span.
//!
//! Signal types (one per record, the most specific first):
//! `exception` (an `exception` event), `http_5xx` (`http.response.status_code`
//! or `http.status_code` 500–599), `error` (status ERROR), `eval_fail`
//! (`eval.passed = false`, or `eval.outcome`/`eval.result`/`eval.status` of
//! `fail`/`failed`), `feedback` (`feedback.sentiment` or `user.feedback` of
//! `negative`/`thumbs_down`, or `feedback.score` < 0), `slow` (duration over
//! the operation's threshold: `loopkit.slow_threshold_ms` on the span, else
//! the server's per-operation table, else its default). A healthy span has
//! no signal and no pain.
//!
//! A span is rejected (and counted in `partialSuccess`) when its trace id is
//! not 16 bytes or its span id not 8 bytes (or either is all zero), when its
//! parent id is neither empty nor 8 bytes, or when it exceeds the limits on
//! attributes, events or nesting below. Rejection is per span: the rest of
//! the request is kept.
//!
//! Merged steps: a span carrying `ratchet.step.outcome = "merged"` and
//! `ratchet.step.pain_id` (or `ratchet.pain.id`; one id, a comma-separated
//! list or an array) records
//! that a change targeted those pains at the span's end time; wins and
//! slips are measured from these (see [`crate::loopkit::window`]).

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Map, Value as Json};

use crate::loopkit::fingerprint::{self, Fingerprint, FingerprintInput};

/// Most attributes a span (or its resource) may carry.
pub const MAX_ATTRIBUTES: usize = 1_000;
/// Most events a span may carry.
pub const MAX_EVENTS: usize = 1_000;
/// Deepest nesting of an attribute value (arrays and key-value lists).
pub const MAX_DEPTH: usize = 16;
/// Attributes kept on a record (resource first, then span).
pub const KEPT_ATTRIBUTES: usize = 64;
/// Longest attribute value kept, in characters.
pub const KEPT_VALUE_CHARS: usize = 256;
/// Longest exception message and stack trace kept, in characters.
pub const KEPT_MESSAGE_CHARS: usize = 2_000;
pub const KEPT_STACK_CHARS: usize = 8_000;

/// How slow is too slow.
#[derive(Clone, Debug)]
pub struct SlowRules {
    pub default_ms: u64,
    pub per_operation: HashMap<String, u64>,
}

impl Default for SlowRules {
    fn default() -> Self {
        SlowRules { default_ms: 1_000, per_operation: HashMap::new() }
    }
}

impl SlowRules {
    pub fn threshold_ms(&self, operation: &str) -> u64 {
        self.per_operation.get(operation).copied().unwrap_or(self.default_ms)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exception {
    pub r#type: String,
    pub message: String,
    pub stacktrace: String,
}

/// The pain a failing record belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PainRef {
    pub id: String,
    pub title: String,
    pub components: Vec<(&'static str, String)>,
}

/// One span, normalised.
#[derive(Clone, Debug)]
pub struct Record {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    /// The failing child span this span's failure is counted as (its own
    /// `pain` is then `None`): see [`link_causes`].
    pub caused_by: Option<[u8; 8]>,
    pub service: String,
    pub name: String,
    pub operation: String,
    pub kind: i32,
    pub status_code: i32,
    pub status_message: String,
    pub start_ns: i64,
    pub end_ns: i64,
    pub http_status: Option<i64>,
    pub signal: Option<&'static str>,
    pub pain: Option<PainRef>,
    pub exception: Option<Exception>,
    /// Selected attributes as a JSON object (text).
    pub attributes: String,
}

impl Record {
    pub fn duration_ms(&self) -> f64 {
        (self.end_ns.saturating_sub(self.start_ns)).max(0) as f64 / 1e6
    }
}

/// A merged step that targeted a pain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeEvent {
    pub pain_id: String,
    pub at_ns: i64,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub step: Option<String>,
}

/// What a request turned into.
#[derive(Debug, Default)]
pub struct Normalised {
    pub records: Vec<Record>,
    pub changes: Vec<ChangeEvent>,
    pub rejected: u64,
    /// The reason for the first rejected span, for `partialSuccess`.
    pub first_rejection: Option<String>,
}

/// Normalises every span of `req`; `now_ns` stands in for missing times.
pub fn normalise(req: &ExportTraceServiceRequest, rules: &SlowRules, now_ns: i64) -> Normalised {
    let mut out = Normalised::default();
    for rs in &req.resource_spans {
        let resource_attrs: &[KeyValue] = rs.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or(&[]);
        let resource_problem = check_attributes(resource_attrs);
        let service = resource_attrs
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref())
            .map(scalar_text)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown_service".to_string());
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let problem = resource_problem.clone().or_else(|| check_span(span));
                if let Some(reason) = problem {
                    out.rejected += 1;
                    out.first_rejection.get_or_insert(reason);
                    continue;
                }
                let (record, changes) = to_record(span, &service, resource_attrs, rules, now_ns);
                out.records.push(record);
                out.changes.extend(changes);
            }
        }
    }
    link_causes(&mut out.records);
    out
}

/// Signals that a parent's failure can be caused by (and that a parent can
/// fail with because of) a child's: errors, not slowness or feedback.
pub fn is_causal(signal: Option<&str>) -> bool {
    matches!(signal, Some("error" | "exception" | "http_5xx"))
}

/// A failing span with a failing direct child (same trace) failed because
/// of it: its failure is counted once, as the child's pain, so the parent
/// gets `caused_by` = the child and no pain of its own. Chains resolve to
/// the deepest failing span. (Spans of one batch here; the store does the
/// same across batches.)
pub fn link_causes(records: &mut [Record]) {
    let failing_children: HashMap<([u8; 16], [u8; 8]), [u8; 8]> = records
        .iter()
        .filter(|r| is_causal(r.signal))
        .filter_map(|r| Some(((r.trace_id, r.parent_span_id?), r.span_id)))
        .collect();
    for r in records.iter_mut().filter(|r| is_causal(r.signal)) {
        if let Some(child) = failing_children.get(&(r.trace_id, r.span_id)) {
            r.caused_by = Some(*child);
            r.pain = None;
        }
    }
}

fn check_span(span: &Span) -> Option<String> {
    if span.trace_id.len() != 16 || span.trace_id.iter().all(|b| *b == 0) {
        return Some(format!(
            "span {:?}: trace id must be 16 bytes (32 hex characters), not all zero; got {} bytes",
            truncate(&span.name, 60),
            span.trace_id.len()
        ));
    }
    if span.span_id.len() != 8 || span.span_id.iter().all(|b| *b == 0) {
        return Some(format!(
            "span {:?}: span id must be 8 bytes (16 hex characters), not all zero; got {} bytes",
            truncate(&span.name, 60),
            span.span_id.len()
        ));
    }
    if !span.parent_span_id.is_empty() && span.parent_span_id.len() != 8 {
        return Some(format!("span {:?}: parent span id must be empty or 8 bytes", truncate(&span.name, 60)));
    }
    if span.events.len() > MAX_EVENTS {
        return Some(format!(
            "span {:?}: {} events (at most {MAX_EVENTS})",
            truncate(&span.name, 60),
            span.events.len()
        ));
    }
    if let Some(p) = check_attributes(&span.attributes) {
        return Some(format!("span {:?}: {p}", truncate(&span.name, 60)));
    }
    for ev in &span.events {
        if let Some(p) = check_attributes(&ev.attributes) {
            return Some(format!("span {:?}, event {:?}: {p}", truncate(&span.name, 60), truncate(&ev.name, 60)));
        }
    }
    None
}

fn check_attributes(attrs: &[KeyValue]) -> Option<String> {
    if attrs.len() > MAX_ATTRIBUTES {
        return Some(format!("{} attributes (at most {MAX_ATTRIBUTES})", attrs.len()));
    }
    for kv in attrs {
        if let Some(v) = &kv.value {
            if depth(v) > MAX_DEPTH {
                return Some(format!("attribute {:?} is nested deeper than {MAX_DEPTH} levels", truncate(&kv.key, 60)));
            }
        }
    }
    None
}

fn depth(v: &AnyValue) -> usize {
    match &v.value {
        Some(Value::ArrayValue(a)) => 1 + a.values.iter().map(depth).max().unwrap_or(0),
        Some(Value::KvlistValue(kv)) => {
            1 + kv.values.iter().filter_map(|kv| kv.value.as_ref()).map(depth).max().unwrap_or(0)
        }
        _ => 1,
    }
}

fn to_record(
    span: &Span,
    service: &str,
    resource_attrs: &[KeyValue],
    rules: &SlowRules,
    now_ns: i64,
) -> (Record, Vec<ChangeEvent>) {
    let mut trace_id = [0u8; 16];
    trace_id.copy_from_slice(&span.trace_id);
    let mut span_id = [0u8; 8];
    span_id.copy_from_slice(&span.span_id);
    let parent_span_id = (span.parent_span_id.len() == 8).then(|| {
        let mut p = [0u8; 8];
        p.copy_from_slice(&span.parent_span_id);
        p
    });
    let to_i64 = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
    let mut start_ns = if span.start_time_unix_nano == 0 { now_ns } else { to_i64(span.start_time_unix_nano) };
    let mut end_ns =
        if span.end_time_unix_nano == 0 { start_ns } else { to_i64(span.end_time_unix_nano).max(start_ns) };
    // A span dated in the future (a client clock ahead) is clamped like an
    // undated one: it starts now, and keeps its duration.
    if start_ns > now_ns {
        end_ns = now_ns.saturating_add(end_ns - start_ns);
        start_ns = now_ns;
    }

    let attr = |key: &str| span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref());
    let attr_text = |key: &str| attr(key).map(scalar_text);
    let http_status =
        attr("http.response.status_code").or_else(|| attr("http.status_code")).and_then(|v| match &v.value {
            Some(Value::IntValue(i)) => Some(*i),
            Some(Value::StringValue(s)) => s.trim().parse().ok(),
            Some(Value::DoubleValue(d)) if d.is_finite() => Some(*d as i64),
            _ => None,
        });
    let method = attr_text("http.request.method").or_else(|| attr_text("http.method"));
    let route = attr_text("http.route");
    let name = truncate(&span.name, 512);
    let downstream = fingerprint::Downstream {
        host: attr_text("server.address")
            .or_else(|| attr_text("net.peer.name"))
            .or_else(|| attr_text("http.host"))
            .or_else(|| {
                attr_text("url.full").or_else(|| attr_text("http.url")).and_then(|u| fingerprint::url_host(&u))
            }),
        template: attr_text("url.template"),
    };
    let operation = fingerprint::span_operation(&name, span.kind, method.as_deref(), route.as_deref(), &downstream);

    let (status_code, status_message) =
        span.status.as_ref().map(|s| (s.code, truncate(&s.message, KEPT_MESSAGE_CHARS))).unwrap_or((0, String::new()));

    let exception = span.events.iter().find(|e| e.name == "exception").map(|e| {
        let get = |k: &str| {
            e.attributes
                .iter()
                .find(|kv| kv.key == k)
                .and_then(|kv| kv.value.as_ref())
                .map(scalar_text)
                .unwrap_or_default()
        };
        Exception {
            r#type: truncate(&get("exception.type"), 256),
            message: truncate(&get("exception.message"), KEPT_MESSAGE_CHARS),
            stacktrace: truncate(&get("exception.stacktrace"), KEPT_STACK_CHARS),
        }
    });

    let lower = |s: Option<String>| s.map(|s| s.trim().to_ascii_lowercase());
    let eval_failed = matches!(attr("eval.passed").map(|v| &v.value), Some(Some(Value::BoolValue(false))))
        || ["eval.outcome", "eval.result", "eval.status"]
            .iter()
            .any(|k| matches!(lower(attr_text(k)).as_deref(), Some("fail" | "failed" | "failure")));
    let negative_feedback = ["feedback.sentiment", "user.feedback"]
        .iter()
        .any(|k| matches!(lower(attr_text(k)).as_deref(), Some("negative" | "thumbs_down" | "bad")))
        || matches!(attr("feedback.score").map(|v| &v.value), Some(Some(Value::IntValue(i))) if *i < 0)
        || matches!(attr("feedback.score").map(|v| &v.value), Some(Some(Value::DoubleValue(d))) if *d < 0.0);
    let threshold_ms = match attr("loopkit.slow_threshold_ms").map(|v| &v.value) {
        Some(Some(Value::IntValue(i))) if *i > 0 => *i as u64,
        Some(Some(Value::DoubleValue(d))) if *d > 0.0 => *d as u64,
        _ => rules.threshold_ms(&operation),
    };
    let duration_ms = (end_ns - start_ns) / 1_000_000;

    let signal = if exception.is_some() {
        Some("exception")
    } else if http_status.is_some_and(|s| (500..600).contains(&s)) {
        Some("http_5xx")
    } else if status_code == 2 {
        Some("error")
    } else if eval_failed {
        Some("eval_fail")
    } else if negative_feedback {
        Some("feedback")
    } else if duration_ms > 0 && duration_ms as u64 > threshold_ms {
        Some("slow")
    } else {
        None
    };

    let pain = signal.map(|signal| {
        let eval_name = attr_text("eval.name");
        let fp = Fingerprint::of(&FingerprintInput {
            signal,
            service,
            operation: &operation,
            exception_type: exception.as_ref().map(|e| e.r#type.as_str()),
            exception_message: exception.as_ref().map(|e| e.message.as_str()),
            stacktrace: exception.as_ref().map(|e| e.stacktrace.as_str()),
            status_message: Some(status_message.as_str()),
            http_status,
            eval_name: eval_name.as_deref(),
        });
        PainRef { id: fp.pain_id(), title: fp.title(), components: fp.components }
    });

    // Selected attributes: resource first, then the span's own (which win).
    let mut attributes = Map::new();
    for kv in resource_attrs.iter().chain(span.attributes.iter()) {
        if kv.key.is_empty() || kv.key.len() > 128 {
            continue;
        }
        if attributes.len() >= KEPT_ATTRIBUTES && !attributes.contains_key(&kv.key) {
            continue;
        }
        if let Some(v) = &kv.value {
            attributes.insert(kv.key.clone(), to_json(v));
        }
    }

    let mut changes = Vec::new();
    if matches!(lower(attr_text("ratchet.step.outcome")).as_deref(), Some("merged")) {
        let mut ids = Vec::new();
        let key = if attr("ratchet.step.pain_id").is_some() { "ratchet.step.pain_id" } else { "ratchet.pain.id" };
        match attr(key).map(|v| &v.value) {
            Some(Some(Value::ArrayValue(a))) => ids.extend(a.values.iter().map(scalar_text)),
            Some(Some(_)) => ids.extend(attr_text(key).unwrap_or_default().split(',').map(|s| s.trim().to_string())),
            _ => {}
        }
        let step = attr_text("ratchet.step.id");
        for id in ids.into_iter().filter(|id| is_pain_id(id)) {
            changes.push(ChangeEvent { pain_id: id, at_ns: end_ns, trace_id, span_id, step: step.clone() });
        }
    }

    let record = Record {
        trace_id,
        span_id,
        parent_span_id,
        caused_by: None,
        service: truncate(service, 256),
        name,
        operation,
        kind: span.kind,
        status_code,
        status_message,
        start_ns,
        end_ns,
        http_status,
        signal,
        pain,
        exception,
        attributes: Json::Object(attributes).to_string(),
    };
    (record, changes)
}

/// `pn_` and 16 lower-case hex characters.
pub fn is_pain_id(s: &str) -> bool {
    s.len() == 19 && s.starts_with("pn_") && s[3..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn scalar_text(v: &AnyValue) -> String {
    match &v.value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => truncate(&to_json(&AnyValue { value: Some(other.clone()) }).to_string(), KEPT_VALUE_CHARS),
        None => String::new(),
    }
}

fn to_json(v: &AnyValue) -> Json {
    match &v.value {
        Some(Value::StringValue(s)) => Json::String(truncate(s, KEPT_VALUE_CHARS)),
        Some(Value::BoolValue(b)) => Json::Bool(*b),
        Some(Value::IntValue(i)) => Json::from(*i),
        Some(Value::DoubleValue(d)) => serde_json::Number::from_f64(*d).map(Json::Number).unwrap_or(Json::Null),
        Some(Value::BytesValue(b)) => Json::String(format!("<{} bytes>", b.len())),
        Some(Value::ArrayValue(_)) | Some(Value::KvlistValue(_)) => {
            let text = compound_text(v);
            Json::String(truncate(&text, KEPT_VALUE_CHARS))
        }
        _ => Json::Null,
    }
}

fn compound_text(v: &AnyValue) -> String {
    match &v.value {
        Some(Value::ArrayValue(a)) => {
            format!("[{}]", a.values.iter().take(32).map(compound_text).collect::<Vec<_>>().join(","))
        }
        Some(Value::KvlistValue(kv)) => format!(
            "{{{}}}",
            kv.values
                .iter()
                .take(32)
                .map(|kv| format!("{}:{}", kv.key, kv.value.as_ref().map(compound_text).unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        ),
        _ => to_json(v).to_string(),
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.len() <= max_chars {
        return s.to_string();
    }
    s.chars().take(max_chars).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status, span::Event};

    pub fn kv(key: &str, v: Value) -> KeyValue {
        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
    }

    pub fn span(n: u8, name: &str) -> Span {
        Span {
            trace_id: vec![n.max(1); 16],
            span_id: vec![n.max(1); 8],
            name: name.into(),
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_010_000_000,
            ..Default::default()
        }
    }

    pub fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", Value::StringValue(service.into()))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }],
        }
    }

    pub fn exception_event(ty: &str, msg: &str, stack: &str) -> Event {
        Event {
            name: "exception".into(),
            attributes: vec![
                kv("exception.type", Value::StringValue(ty.into())),
                kv("exception.message", Value::StringValue(msg.into())),
                kv("exception.stacktrace", Value::StringValue(stack.into())),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn signals_are_detected_most_specific_first() {
        let mut exc = span(1, "POST /cart/42");
        exc.events.push(exception_event("TypeError", "x is undefined", ""));
        exc.status = Some(Status { code: 2, message: "boom".into() });
        let mut five = span(2, "GET /x");
        five.attributes.push(kv("http.response.status_code", Value::IntValue(503)));
        let mut err = span(3, "work");
        err.status = Some(Status { code: 2, message: "failed for user 7".into() });
        let mut eval = span(4, "eval");
        eval.attributes.push(kv("eval.passed", Value::BoolValue(false)));
        let mut fb = span(5, "chat");
        fb.attributes.push(kv("feedback.sentiment", Value::StringValue("negative".into())));
        let mut slow = span(6, "GET /search");
        slow.end_time_unix_nano = slow.start_time_unix_nano + 5_000_000_000;
        let ok = span(7, "GET /health");
        let n = normalise(&request("shop", vec![exc, five, err, eval, fb, slow, ok]), &SlowRules::default(), 0);
        let signals: Vec<_> = n.records.iter().map(|r| r.signal).collect();
        assert_eq!(
            signals,
            vec![
                Some("exception"),
                Some("http_5xx"),
                Some("error"),
                Some("eval_fail"),
                Some("feedback"),
                Some("slow"),
                None
            ]
        );
        assert_eq!(n.records[0].operation, "POST /cart/{id}");
        assert!(n.records[6].pain.is_none());
        assert_eq!(n.rejected, 0);
    }

    #[test]
    fn bad_ids_and_oversized_spans_are_rejected_alone() {
        let mut short = span(1, "a");
        short.trace_id.truncate(8);
        let mut zero = span(2, "b");
        zero.span_id = vec![0; 8];
        let mut fat = span(3, "c");
        fat.attributes = (0..10_000).map(|i| kv(&format!("k{i}"), Value::IntValue(i))).collect();
        let good = span(4, "d");
        let n = normalise(&request("s", vec![short, zero, fat, good]), &SlowRules::default(), 0);
        assert_eq!(n.rejected, 3);
        assert_eq!(n.records.len(), 1);
        assert!(n.first_rejection.unwrap().contains("trace id must be 16 bytes"));
    }

    #[test]
    fn merged_steps_name_their_pains() {
        let mut step = span(9, "ratchet.step");
        step.attributes.push(kv("ratchet.step.outcome", Value::StringValue("merged".into())));
        step.attributes.push(kv("ratchet.pain.id", Value::StringValue("pn_0123456789abcdef, nonsense".into())));
        let n = normalise(&request("ratchet", vec![step]), &SlowRules::default(), 0);
        assert_eq!(n.changes.len(), 1);
        assert_eq!(n.changes[0].pain_id, "pn_0123456789abcdef");
    }
}

//! Shared by `benches/cluster_corpus.rs` (prints the figures) and
//! `tests/cluster_corpus.rs` (asserts them): runs the labelled corpus
//! through OTLP decoding, normalisation and the store, and compares the
//! pains found with the labels.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as AV};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span::Event};
use ratchet::loopkit::normalise::{SlowRules, normalise};
use ratchet::serve::store::{NewProject, Store, Synchronous};
use serde_json::Value;

pub struct Figures {
    pub spans: usize,
    pub labels: usize,
    pub pains_found: usize,
    pub exact: usize,
    /// Labels whose spans were split over several pains.
    pub split: Vec<String>,
    /// Labels that share a pain with other spans.
    pub merged: Vec<String>,
    /// Spans labelled none that were put in a pain.
    pub stray: usize,
}

impl Figures {
    pub fn exact_rate(&self) -> f64 {
        self.exact as f64 / self.labels.max(1) as f64
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "clustering corpus (tests/corpus/clustering.jsonl, fingerprint {}):",
            ratchet::loopkit::fingerprint::VERSION
        )?;
        writeln!(f, "  {} spans, {} ground-truth pains; {} pains found", self.spans, self.labels, self.pains_found)?;
        writeln!(f, "  exact matches: {}/{} = {:.1}%", self.exact, self.labels, self.exact_rate() * 100.0)?;
        writeln!(f, "  split: {:?}", self.split)?;
        writeln!(f, "  merged: {:?}", self.merged)?;
        write!(f, "  spans that must be in no pain but were: {}", self.stray)
    }
}

fn kv(key: &str, v: &Value) -> KeyValue {
    let value = match v {
        Value::String(s) => AV::StringValue(s.clone()),
        Value::Number(n) if n.is_i64() => AV::IntValue(n.as_i64().unwrap_or(0)),
        Value::Number(n) => AV::DoubleValue(n.as_f64().unwrap_or(0.0)),
        Value::Bool(b) => AV::BoolValue(*b),
        other => AV::StringValue(other.to_string()),
    };
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn to_span(s: &Value, now_ns: u64) -> Span {
    let n = |k: &str| s[k].as_u64().unwrap_or(0);
    let mut trace_id = vec![0u8; 16];
    trace_id[8..].copy_from_slice(&(n("trace") + 1).to_be_bytes());
    let start = now_ns - 600_000_000_000 + n("span") * 1_000_000;
    let mut span = Span {
        trace_id,
        span_id: (n("span") + 1).to_be_bytes().to_vec(),
        parent_span_id: s["parent"].as_u64().map(|p| (p + 1).to_be_bytes().to_vec()).unwrap_or_default(),
        name: s["name"].as_str().unwrap_or("").into(),
        kind: n("kind") as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 5_000_000,
        status: Some(Status {
            code: n("status_code") as i32,
            message: s["status_message"].as_str().unwrap_or("").into(),
        }),
        attributes: s["attrs"].as_object().map(|o| o.iter().map(|(k, v)| kv(k, v)).collect()).unwrap_or_default(),
        ..Default::default()
    };
    if let Some(e) = s["exception"].as_object() {
        span.events.push(Event {
            name: "exception".into(),
            time_unix_nano: start,
            attributes: [
                ("exception.type", "type"),
                ("exception.message", "message"),
                ("exception.stacktrace", "stack"),
            ]
            .iter()
            .map(|(name, k)| kv(name, &e[*k]))
            .collect(),
            ..Default::default()
        });
    }
    span
}

fn request(spans: &[Value], now_ns: u64) -> ExportTraceServiceRequest {
    let mut by_service: BTreeMap<String, Vec<Span>> = BTreeMap::new();
    for s in spans {
        by_service.entry(s["service"].as_str().unwrap_or("").to_string()).or_default().push(to_span(s, now_ns));
    }
    ExportTraceServiceRequest {
        resource_spans: by_service
            .into_iter()
            .map(|(service, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", &Value::String(service))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            })
            .collect(),
    }
}

pub fn run() -> Figures {
    let text = include_str!("clustering.jsonl");
    let corpus: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("a corpus line")).collect();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(&dir.path().join("loopkit.db"), Synchronous::Normal).expect("the store");
    let project = store
        .create_project(&NewProject {
            public_id: "prj_0000000000000001",
            name: "corpus",
            operator: "",
            provisioned: true,
            tier: "permanent",
            quota_spans: i64::MAX,
            expires_at: None,
            keys: &[],
            now: 0,
        })
        .expect("a project");
    let now_ns =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    // Three batches, so that a parent and its child may arrive apart.
    for batch in corpus.chunks(corpus.len().div_ceil(3)) {
        let n = normalise(&request(batch, now_ns), &SlowRules::default(), now_ns as i64);
        assert_eq!(n.rejected, 0, "{:?}", n.first_rejection);
        store.ingest(project.rowid, n.records, n.changes, 0).expect("ingest");
    }
    let records = store.records_page(project.rowid, (0, i64::MAX), None, 100_000).expect("records");
    let pain_of: BTreeMap<u64, Option<String>> = records
        .iter()
        .map(|r| (u64::from_be_bytes(r.span_id.as_slice().try_into().unwrap_or([0; 8])) - 1, r.pain_id.clone()))
        .collect();
    let mut expected: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut stray = 0;
    for s in &corpus {
        let id = s["span"].as_u64().unwrap_or(0);
        match s["label"].as_str() {
            Some(l) => {
                expected.entry(l.to_string()).or_default().insert(id);
            }
            None => stray += usize::from(pain_of.get(&id).is_some_and(Option::is_some)),
        }
    }
    let mut found: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for (span, pain) in &pain_of {
        if let Some(p) = pain {
            found.entry(p.clone()).or_default().insert(*span);
        }
    }
    let (mut exact, mut split, mut merged) = (0, Vec::new(), Vec::new());
    for (label, spans) in &expected {
        let pains: BTreeSet<&String> = spans.iter().filter_map(|s| pain_of.get(s).and_then(Option::as_ref)).collect();
        let one = pains.len() == 1 && spans.iter().all(|s| pain_of.get(s).is_some_and(Option::is_some));
        if one && found.get(*pains.iter().next().unwrap_or(&&String::new())) == Some(spans) {
            exact += 1;
            continue;
        }
        if pains.len() > 1 {
            split.push(format!("{label} ({} pains)", pains.len()));
        }
        if pains.iter().any(|p| found.get(*p).is_some_and(|f| !f.is_subset(spans))) {
            merged.push(label.clone());
        }
    }
    Figures { spans: corpus.len(), labels: expected.len(), pains_found: found.len(), exact, split, merged, stray }
}

//! Improvement packets: what diagnose hands an agent for one pain, and the
//! JSON Schema they follow (`/schema/improvement-packet.json`).
//!
//! A packet carries the pain's fingerprint (so it explains itself), its
//! counts and rates, up to N evidence spans, the attribute values most
//! over-represented in the pain against the rest of the window, a drafted
//! eval candidate and a patch plan. Nothing here writes anywhere: LoopKit
//! prepares the work and stops before any external write (seed 000).
//!
//! Invariant: every packet [`Packet`] serialises to validates against
//! [`schema`] (tested with the `jsonschema` crate).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::loopkit::window::{ChangePercent, round3};

pub const PACKET_VERSION: &str = "loopkit.improvement-packet.v1";

#[derive(Clone, Debug, Serialize)]
pub struct Packet {
    pub packet_version: &'static str,
    pub pain_id: String,
    pub title: String,
    pub signal_type: String,
    pub count: u64,
    pub evidence_count: u64,
    pub rate_per_1k: f64,
    pub previous_count: u64,
    pub change_percent: ChangePercent,
    pub first_seen: String,
    pub last_seen: String,
    pub window: PacketWindow,
    pub fingerprint: FingerprintView,
    pub evidence: Vec<Evidence>,
    pub over_represented: Vec<OverRepresented>,
    pub eval_candidate: EvalCandidate,
    pub patch_plan: PatchPlan,
}

#[derive(Clone, Debug, Serialize)]
pub struct PacketWindow {
    pub label: String,
    pub start: String,
    pub end: String,
    pub spans: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct FingerprintView {
    pub version: String,
    pub components: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Evidence {
    pub trace_id: String,
    pub span_id: String,
    pub service: String,
    pub name: String,
    pub time: String,
    pub duration_ms: f64,
    pub status_message: String,
    pub http_status: Option<i64>,
    pub exception: Option<EvidenceException>,
    pub attributes: Map<String, Value>,
}

#[derive(Clone, Debug, Serialize)]
pub struct EvidenceException {
    pub r#type: String,
    pub message: String,
    pub stacktrace: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OverRepresented {
    pub key: String,
    pub value: String,
    /// Share of the pain's sampled spans carrying key=value.
    pub pain_share: f64,
    /// Share of the window's other sampled spans carrying it.
    pub rest_share: f64,
    /// pain_share / rest_share (rest_share floored at one span).
    pub lift: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct EvalCandidate {
    pub name: String,
    pub description: String,
    pub input: Value,
    pub expected: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct PatchPlan {
    pub summary: String,
    pub steps: Vec<String>,
    pub likely_locations: Vec<String>,
    pub verify: String,
}

/// How much a signal weighs when ordering pains: user-facing failures first.
pub fn signal_weight(signal: &str) -> f64 {
    match signal {
        "exception" | "http_5xx" => 1.0,
        "feedback" => 1.0,
        "error" => 0.8,
        "eval_fail" => 0.7,
        "slow" => 0.4,
        _ => 0.5,
    }
}

/// The importance of a pain: its weighted rate, boosted when it is new or
/// growing. Pains are listed by importance, then by pain id.
pub fn importance(signal: &str, rate_per_1k: f64, change: ChangePercent) -> f64 {
    let growth = match change {
        ChangePercent::New => 1.5,
        ChangePercent::Percent(p) if p > 0.0 => 1.0 + (p / 100.0).min(1.0),
        ChangePercent::Percent(_) => 1.0,
    };
    round3(signal_weight(signal) * rate_per_1k * growth)
}

/// The attributes that define a pain of `signal` with these fingerprint
/// components: over-represented by construction, so never a finding (a 503
/// pain "is 100× more often status 503" says nothing).
pub fn defining_keys(signal: &str, components: &BTreeMap<String, String>) -> Vec<&'static str> {
    let mut keys = vec!["otel.status_code", "otel.status_description", "error", "error.type"];
    match signal {
        "http_5xx" => keys.extend(["http.response.status_code", "http.status_code"]),
        "eval_fail" => keys.extend(["eval.passed", "eval.outcome", "eval.result", "eval.status", "eval.name"]),
        "feedback" => keys.extend(["feedback.sentiment", "user.feedback", "feedback.score"]),
        "exception" => keys.extend(["exception.type", "exception.message", "exception.stacktrace"]),
        _ => {}
    }
    if components.contains_key("operation") {
        // The operation is made of these.
        keys.extend([
            "http.route",
            "http.request.method",
            "http.method",
            "url.template",
            "server.address",
            "net.peer.name",
            "http.host",
        ]);
    }
    if components.contains_key("service") {
        keys.push("service.name");
    }
    keys
}

/// The attribute values most over-represented in `pain` against `rest`:
/// carried by at least half of the pain's spans and at least twice as often
/// as elsewhere, strongest first (ties by key and value), at most `max`.
/// Keys in `exclude` (the pain's defining attributes, [`defining_keys`])
/// are never findings.
pub fn over_represented(
    pain: &[Map<String, Value>],
    rest: &[Map<String, Value>],
    max: usize,
    exclude: &[&str],
) -> Vec<OverRepresented> {
    if pain.is_empty() {
        return Vec::new();
    }
    let count = |set: &[Map<String, Value>]| {
        let mut c: BTreeMap<(String, String), u64> = BTreeMap::new();
        for attrs in set {
            for (k, v) in attrs {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                *c.entry((k.clone(), v)).or_default() += 1;
            }
        }
        c
    };
    let in_pain = count(pain);
    let in_rest = count(rest);
    let rest_n = rest.len().max(1) as f64;
    let mut out: Vec<OverRepresented> = in_pain
        .into_iter()
        .filter(|((key, _), _)| !exclude.contains(&key.as_str()))
        .filter_map(|((key, value), n)| {
            let pain_share = n as f64 / pain.len() as f64;
            let rest_count = in_rest.get(&(key.clone(), value.clone())).copied().unwrap_or(0);
            let rest_share = rest_count as f64 / rest_n;
            let lift = pain_share / (rest_share.max(1.0 / rest_n));
            (pain_share >= 0.5 && lift >= 2.0).then(|| OverRepresented {
                key,
                value,
                pain_share: round3(pain_share),
                rest_share: round3(rest_share),
                lift: round3(lift),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.lift
            .total_cmp(&a.lift)
            .then(b.pain_share.total_cmp(&a.pain_share))
            .then(a.key.cmp(&b.key))
            .then(a.value.cmp(&b.value))
    });
    out.truncate(max);
    out
}

/// A drafted eval: replay the pain's operation with the over-represented
/// inputs and expect no repeat of the failure.
pub fn eval_candidate(pain_id: &str, components: &BTreeMap<String, String>, over: &[OverRepresented]) -> EvalCandidate {
    let signal = components.get("signal").map(String::as_str).unwrap_or("error");
    let op = components.get("operation").cloned().unwrap_or_default();
    let service = components.get("service").cloned().unwrap_or_default();
    let expected = match signal {
        "exception" => format!(
            "{op} completes without raising {}",
            components.get("exception.type").map(String::as_str).unwrap_or("an exception")
        ),
        "http_5xx" => format!("{op} answers with a status below 500"),
        "slow" => format!("{op} finishes under its latency threshold"),
        "eval_fail" => format!("the eval {} passes", components.get("eval").map(String::as_str).unwrap_or("")),
        "feedback" => format!("{op} no longer draws negative feedback"),
        _ => format!("{op} ends with status OK"),
    };
    let mut input = Map::new();
    input.insert("service".into(), Value::String(service));
    input.insert("operation".into(), Value::String(op));
    for o in over {
        input.insert(o.key.clone(), Value::String(o.value.clone()));
    }
    EvalCandidate {
        name: format!("regression_{}", pain_id.trim_start_matches("pn_")),
        description: format!("Reproduces pain {pain_id} and checks that it is gone."),
        input: Value::Object(input),
        expected,
    }
}

pub fn patch_plan(components: &BTreeMap<String, String>, over: &[OverRepresented]) -> PatchPlan {
    let op = components.get("operation").cloned().unwrap_or_default();
    let service = components.get("service").cloned().unwrap_or_default();
    let likely_locations: Vec<String> = components
        .get("frames")
        .map(|f| f.split(" | ").map(str::to_string).collect())
        .unwrap_or_else(|| vec![format!("the handler of {op} in {service}")]);
    let mut steps = vec![format!("Add the drafted eval as a failing test for {op} in {service}.")];
    match components.get("frames") {
        Some(_) => steps
            .push(format!("Read the top in-app frame, {}, and find where the failure starts.", likely_locations[0])),
        None => match components.get("message") {
            Some(m) => steps.push(format!("Find the code in {service} where {op} fails with the message \"{m}\".")),
            None => steps.push(format!("Find the code in {service} where {op} fails.")),
        },
    }
    if let Some(o) = over.first() {
        steps.push(format!(
            "Try the case where {} is \"{}\" first: {:.0}% of this pain's spans carry it, {} times as often as the rest of the window.",
            o.key,
            o.value,
            o.pain_share * 100.0,
            o.lift
        ));
    }
    steps.push("Make one atomic change that turns the eval green, and keep the rest of the suite green.".into());
    PatchPlan {
        summary: format!("Fix the cause of this pain in {service} {op}"),
        steps,
        likely_locations,
        verify: "After merging, report the step as a span with ratchet.step.outcome=merged and ratchet.step.pain_id=<pain_id> (ratchet step does it); the next window shows whether it held.".into(),
    }
}

/// The JSON Schema of an improvement packet (draft 2020-12).
pub fn schema() -> Value {
    let string = json!({"type": "string"});
    let count = json!({"type": "integer", "minimum": 0});
    let number = json!({"type": "number"});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "/schema/improvement-packet.json",
        "title": "LoopKit improvement packet",
        "description": "One pain diagnosed from a bounded telemetry window: evidence, over-represented attributes, a drafted eval and a patch plan.",
        "type": "object",
        "required": ["packet_version", "pain_id", "title", "signal_type", "count", "evidence_count", "rate_per_1k",
                     "previous_count", "change_percent", "first_seen", "last_seen", "window", "fingerprint",
                     "evidence", "over_represented", "eval_candidate", "patch_plan"],
        "additionalProperties": false,
        "properties": {
            "packet_version": {"const": PACKET_VERSION},
            "pain_id": {"type": "string", "pattern": "^pn_[0-9a-f]{16}$"},
            "title": string,
            "signal_type": {"enum": ["error", "exception", "http_5xx", "slow", "eval_fail", "feedback"]},
            "count": count,
            "evidence_count": count,
            "rate_per_1k": number,
            "previous_count": count,
            "change_percent": {"oneOf": [{"type": "number"}, {"const": "new"}]},
            "first_seen": {"type": "string", "format": "date-time"},
            "last_seen": {"type": "string", "format": "date-time"},
            "window": {
                "type": "object",
                "required": ["label", "start", "end", "spans"],
                "additionalProperties": false,
                "properties": {"label": string, "start": string, "end": string, "spans": count}
            },
            "fingerprint": {
                "type": "object",
                "required": ["version", "components"],
                "additionalProperties": false,
                "properties": {
                    "version": string,
                    "components": {"type": "object", "required": ["signal", "service", "operation"], "additionalProperties": {"type": "string"}}
                }
            },
            "evidence": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["trace_id", "span_id", "service", "name", "time", "duration_ms", "status_message", "http_status", "exception", "attributes"],
                    "additionalProperties": false,
                    "properties": {
                        "trace_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                        "span_id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
                        "service": string, "name": string, "time": string,
                        "duration_ms": number, "status_message": string,
                        "http_status": {"type": ["integer", "null"]},
                        "exception": {"oneOf": [{"type": "null"}, {
                            "type": "object", "required": ["type", "message", "stacktrace"], "additionalProperties": false,
                            "properties": {"type": string, "message": string, "stacktrace": string}
                        }]},
                        "attributes": {"type": "object"}
                    }
                }
            },
            "over_represented": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key", "value", "pain_share", "rest_share", "lift"],
                    "additionalProperties": false,
                    "properties": {"key": string, "value": string, "pain_share": number, "rest_share": number, "lift": number}
                }
            },
            "eval_candidate": {
                "type": "object",
                "required": ["name", "description", "input", "expected"],
                "additionalProperties": false,
                "properties": {"name": string, "description": string, "input": {"type": "object"}, "expected": string}
            },
            "patch_plan": {
                "type": "object",
                "required": ["summary", "steps", "likely_locations", "verify"],
                "additionalProperties": false,
                "properties": {
                    "summary": string,
                    "steps": {"type": "array", "items": string, "minItems": 1},
                    "likely_locations": {"type": "array", "items": string},
                    "verify": string
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect()
    }

    #[test]
    fn over_represented_attributes_are_found() {
        let pain = vec![attrs(&[("region", "eu"), ("v", "2")]), attrs(&[("region", "eu"), ("v", "1")])];
        let rest: Vec<_> =
            (0..10).map(|i| attrs(&[("region", if i == 0 { "eu" } else { "us" }), ("v", "1")])).collect();
        let o = over_represented(&pain, &rest, 5, &[]);
        assert_eq!(o.len(), 2);
        assert_eq!(o[0].key, "region");
        assert_eq!(o[0].lift, 10.0);
        assert_eq!((o[1].key.as_str(), o[1].value.as_str()), ("v", "2"));
        assert!(over_represented(&[], &rest, 5, &[]).is_empty());
        assert!(over_represented(&pain, &rest, 5, &["region", "v"]).is_empty(), "excluded keys are never findings");
    }

    #[test]
    fn a_pain_is_never_explained_by_its_own_definition_and_steps_are_sentences() {
        let comps: BTreeMap<String, String> = [("signal", "http_5xx"), ("service", "shop"), ("operation", "GET /x")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let pain: Vec<_> = (0..10).map(|_| attrs(&[("http.response.status_code", "503"), ("region", "eu")])).collect();
        let rest: Vec<_> = (0..10).map(|_| attrs(&[("http.response.status_code", "200"), ("region", "us")])).collect();
        let o = over_represented(&pain, &rest, 5, &defining_keys("http_5xx", &comps));
        assert_eq!(o.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), vec!["region"]);
        let plan = patch_plan(&comps, &o);
        for step in &plan.steps {
            let first = step.chars().next().unwrap();
            assert!(first.is_uppercase() && step.ends_with('.'), "not a sentence: {step:?}");
            assert!(!step.contains("status_code"), "{step}");
        }
    }

    #[test]
    fn importance_prefers_new_and_user_facing() {
        assert!(
            importance("exception", 10.0, ChangePercent::New)
                > importance("exception", 10.0, ChangePercent::Percent(-5.0))
        );
        assert!(
            importance("exception", 10.0, ChangePercent::Percent(0.0))
                > importance("slow", 10.0, ChangePercent::Percent(0.0))
        );
    }
}

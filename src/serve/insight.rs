//! Dashboards, improvement packets and reports, assembled from the store
//! with the pure rules of [`crate::loopkit`]. No HTTP here: every function
//! takes the store, a project, a window and "now", so it is tested without a
//! server.
//!
//! `open_pains` are ordered by importance ([`packet::importance`]: weighted
//! rate, boosted when new or growing), then by pain id, so the first entry
//! is what the loop's Pick phase should work on.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::loopkit::keys::hex;
use crate::loopkit::packet::{self, Evidence, EvidenceException, FingerprintView, Packet, PacketWindow};
use crate::loopkit::window::{self, ChangePercent, Outcome, Window, rate_per_1k, round3};
use crate::serve::store::{PainRow, Project, Result, Store, StoredRecord};

/// Evidence spans counted in `open_pains[].evidence_count` and put in packets by default.
pub const DEFAULT_EVIDENCE: usize = 5;
/// Spans sampled to find over-represented attributes (pain, rest).
const SAMPLE_PAIN: usize = 500;
const SAMPLE_REST: usize = 2_000;

pub fn time(ns: i64) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(ns);
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A stored record as `GET /v1/telemetry` shows it.
pub fn record_json(r: &StoredRecord) -> Value {
    let attributes: Value = serde_json::from_str(&r.attributes).unwrap_or_else(|_| Value::Object(Map::new()));
    json!({
        "id": r.id,
        "trace_id": hex(&r.trace_id),
        "span_id": hex(&r.span_id),
        "parent_span_id": r.parent_span_id.as_ref().map(|p| hex(p)),
        "service": r.service,
        "name": r.name,
        "operation": r.operation,
        "kind": r.kind,
        "status": { "code": r.status_code, "message": r.status_message },
        "start_time": time(r.start_ns),
        "end_time": time(r.end_ns),
        "duration_ms": round3((r.end_ns - r.start_ns) as f64 / 1e6),
        "http_status": r.http_status,
        "signal_type": r.signal,
        "pain_id": r.pain_id,
        "caused_by": r.caused_by.as_ref().map(|c| hex(c)),
        "exception": r.exc_type.as_ref().map(|t| json!({
            "type": t, "message": r.exc_message, "stacktrace": r.exc_stack,
        })),
        "attributes": attributes,
    })
}

fn components(p: &PainRow) -> BTreeMap<String, String> {
    serde_json::from_str(&p.components).unwrap_or_default()
}

/// One pain of the current window, with its comparison to the previous one.
#[derive(Clone, Debug)]
pub struct OpenPain {
    pub row: PainRow,
    pub count: u64,
    pub previous_count: u64,
    pub rate: f64,
    pub change: ChangePercent,
    pub importance: f64,
    pub first_ns: i64,
    pub last_ns: i64,
}

/// The pains of the current window, most important first.
pub fn open_pains(store: &Store, project: &Project, w: &Window, now_ns: i64) -> Result<(Vec<OpenPain>, u64, u64)> {
    let (cur, prev) = (w.current(now_ns), w.previous(now_ns));
    let spans = store.span_total(project.rowid, cur)?;
    let prev_spans = store.span_total(project.rowid, prev)?;
    let counts = store.pain_counts(project.rowid, cur)?;
    let prev_counts: BTreeMap<String, u64> =
        store.pain_counts(project.rowid, prev)?.into_iter().map(|c| (c.pain_id, c.count)).collect();
    let rows = store.pains(project.rowid)?;
    let mut out: Vec<OpenPain> = counts
        .into_iter()
        .filter_map(|c| {
            let row = rows.get(&c.pain_id)?.clone();
            let previous_count = prev_counts.get(&c.pain_id).copied().unwrap_or(0);
            let rate = rate_per_1k(c.count, spans);
            let change = ChangePercent::between(rate_per_1k(previous_count, prev_spans), rate);
            let importance = packet::importance(&row.signal, rate, change);
            Some(OpenPain {
                row,
                count: c.count,
                previous_count,
                rate,
                change,
                importance,
                first_ns: c.first_ns,
                last_ns: c.last_ns,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.importance.total_cmp(&a.importance).then(b.count.cmp(&a.count)).then(a.row.pain_id.cmp(&b.row.pain_id))
    });
    Ok((out, spans, prev_spans))
}

/// A merged change and how it turned out.
#[derive(Clone, Debug)]
pub struct MeasuredChange {
    pub pain_id: String,
    pub title: String,
    pub signal_type: String,
    pub at_ns: i64,
    pub step: Option<String>,
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    /// When the window after the merge closes (at + window).
    pub closes_ns: i64,
    pub before_rate: f64,
    pub after_rate: f64,
    pub latest_rate: f64,
    pub outcome: Outcome,
}

impl MeasuredChange {
    pub fn json(&self) -> Value {
        json!({
            "pain_id": self.pain_id,
            "title": self.title,
            "signal_type": self.signal_type,
            "merged_at": time(self.at_ns),
            "window_closes_at": time(self.closes_ns),
            "step": self.step,
            "trace_id": hex(&self.trace_id),
            "span_id": hex(&self.span_id),
            "before_rate_per_1k": round3(self.before_rate),
            "after_rate_per_1k": round3(self.after_rate),
            "latest_rate_per_1k": round3(self.latest_rate),
            "change_percent": ChangePercent::between(self.before_rate, self.latest_rate),
            "outcome": self.outcome,
        })
    }
}

pub fn measure_changes(store: &Store, project: &Project, w: &Window, now_ns: i64) -> Result<Vec<MeasuredChange>> {
    let rows = store.pains(project.rowid)?;
    let mut out = Vec::new();
    for c in store.changes(project.rowid)? {
        let cw = window::change_windows(c.at_ns, w, now_ns);
        let rate = |range: (i64, i64)| -> Result<f64> {
            Ok(rate_per_1k(
                store.pain_count(project.rowid, &c.pain_id, range)?,
                store.span_total(project.rowid, range)?,
            ))
        };
        let before = rate(cw.before)?;
        let after = if cw.complete { rate(cw.after)? } else { 0.0 };
        let latest = match cw.latest {
            Some(range) => rate(range)?,
            None => after,
        };
        let row = rows.get(&c.pain_id);
        out.push(MeasuredChange {
            title: row.map(|r| r.title.clone()).unwrap_or_else(|| format!("pain {}", c.pain_id)),
            signal_type: row.map(|r| r.signal.clone()).unwrap_or_default(),
            pain_id: c.pain_id,
            at_ns: c.at_ns,
            step: c.step,
            trace_id: c.trace_id,
            span_id: c.span_id,
            closes_ns: c.at_ns.saturating_add(w.ns),
            before_rate: before,
            after_rate: after,
            latest_rate: latest,
            outcome: window::judge(cw.complete, before, after, latest),
        });
    }
    Ok(out)
}

/// `GET /v1/dashboard`: the machine-readable program state of seed 000.
pub fn dashboard(store: &Store, project: &Project, w: &Window, now_ns: i64) -> Result<Value> {
    let (pains, spans, prev_spans) = open_pains(store, project, w, now_ns)?;
    let changes = measure_changes(store, project, w, now_ns)?;
    let count = |o: Outcome| changes.iter().filter(|c| c.outcome == o).count() as u64;
    let (held, slipped, pending, unmeasured) =
        (count(Outcome::Held), count(Outcome::Slipped), count(Outcome::Pending), count(Outcome::Unmeasured));
    let regression_rate = window::regression_rate(held, slipped);
    let open = pains.len() as u64;
    let top = pains.first().map(|p| (p.row.title.as_str(), p.count));
    let (cur, prev) = (w.current(now_ns), w.previous(now_ns));
    let failing: u64 = pains.iter().map(|p| p.count).sum();
    let open_pains: Vec<Value> = pains
        .iter()
        .map(|p| {
            let comps = components(&p.row);
            json!({
                "pain_id": p.row.pain_id,
                "title": p.row.title,
                "signal_type": p.row.signal,
                "count": p.count,
                "evidence_count": p.count.min(DEFAULT_EVIDENCE as u64),
                "rate_per_1k": round3(p.rate),
                "previous_count": p.previous_count,
                "change_percent": p.change,
                "importance": p.importance,
                "service": comps.get("service"),
                "operation": comps.get("operation"),
                "first_seen": time(p.first_ns),
                "last_seen": time(p.last_ns),
                "fingerprint": { "version": p.row.fp_version, "components": comps },
            })
        })
        .collect();
    let wins: Vec<Value> = changes.iter().filter(|c| c.outcome == Outcome::Held).map(MeasuredChange::json).collect();
    let regressions: Vec<Value> =
        changes.iter().filter(|c| c.outcome == Outcome::Slipped).map(MeasuredChange::json).collect();
    Ok(json!({
        "project_id": project.public_id,
        "project_name": project.name,
        "tier": project.tier,
        "generated_at": time(now_ns),
        "window": {
            "label": w.label,
            "current": { "start": time(cur.0), "end": time(cur.1), "spans": spans },
            "previous": { "start": time(prev.0), "end": time(prev.1), "spans": prev_spans },
        },
        "summary": {
            "spans": spans,
            "previous_spans": prev_spans,
            "failing_spans": failing,
            "open_pain_count": open,
            "held_count": held,
            "slipped_count": slipped,
            "pending_count": pending,
            "unmeasured_count": unmeasured,
            "regression_rate": regression_rate,
        },
        "value": {
            "headline": window::headline(held, slipped, open, top, &w.label),
            "momentum": window::momentum(held, slipped),
            "held_count": held,
            "slipped_count": slipped,
            "open_pain_count": open,
            "regression_rate": regression_rate,
            "derived": true,
            "basis": format!("{} merged change(s) reported as spans; {spans} spans in the last {}", changes.len(), w.label),
        },
        "open_pains": open_pains,
        "wins": wins,
        "regressions_detail": regressions,
    }))
}

/// `GET /v1/changes`: every merged change reported to the project, oldest
/// first, with its rates and outcome over the window (what the loop
/// verifies its merges with).
pub fn changes(store: &Store, project: &Project, w: &Window, now_ns: i64) -> Result<Value> {
    let changes = measure_changes(store, project, w, now_ns)?;
    Ok(json!({
        "project_id": project.public_id,
        "generated_at": time(now_ns),
        "window": w.label,
        "changes": changes.iter().map(MeasuredChange::json).collect::<Vec<_>>(),
    }))
}

/// Buckets of [`pain_series`]: over the previous and the current window.
pub const SERIES_BUCKETS: usize = 12;

/// Bucket labels, and per pain its title and counts per bucket.
pub type PainSeries = (Vec<String>, Vec<(String, Vec<u64>)>);

/// How the top pains of the window moved over the previous and the
/// current window: bucket labels (their start), and per pain (title,
/// counts per bucket). At most `top` pains, most important first.
pub fn pain_series(store: &Store, project: &Project, w: &Window, now_ns: i64, top: usize) -> Result<PainSeries> {
    let (pains, _, _) = open_pains(store, project, w, now_ns)?;
    let start = w.previous(now_ns).0;
    let bucket = ((now_ns - start) / SERIES_BUCKETS as i64).max(1);
    let labels = (0..SERIES_BUCKETS).map(|i| time(start + bucket * i as i64)).collect();
    let mut series = Vec::new();
    for p in pains.iter().take(top) {
        let mut counts = vec![0u64; SERIES_BUCKETS];
        for (i, n) in store.pain_buckets(project.rowid, &p.row.pain_id, start, bucket, SERIES_BUCKETS)? {
            counts[i] = n;
        }
        series.push((p.row.title.clone(), counts));
    }
    Ok((labels, series))
}

/// What `POST /v1/runs/diagnose` may be asked.
#[derive(Clone, Debug)]
pub struct DiagnoseOptions {
    pub max_pains: usize,
    pub evidence: usize,
    pub pain_ids: Option<Vec<String>>,
    pub signal_types: Option<Vec<String>>,
}

/// Improvement packets for the most important pains of the window.
pub fn diagnose(store: &Store, project: &Project, w: &Window, now_ns: i64, opts: &DiagnoseOptions) -> Result<Value> {
    let (pains, spans, _) = open_pains(store, project, w, now_ns)?;
    let cur = w.current(now_ns);
    let selected: Vec<&OpenPain> = pains
        .iter()
        .filter(|p| opts.pain_ids.as_ref().is_none_or(|ids| ids.contains(&p.row.pain_id)))
        .filter(|p| opts.signal_types.as_ref().is_none_or(|s| s.contains(&p.row.signal)))
        .take(opts.max_pains)
        .collect();
    let mut packets = Vec::with_capacity(selected.len());
    for p in selected {
        packets.push(build_packet(store, project, w, cur, spans, p, opts.evidence)?);
    }
    Ok(json!({
        "project_id": project.public_id,
        "generated_at": time(now_ns),
        "window": { "label": w.label, "start": time(cur.0), "end": time(cur.1), "spans": spans },
        "pain_count": pains.len(),
        "packets": packets,
        "next_step": "Pick one packet, turn its eval_candidate into a failing test, make one atomic change; LoopKit makes no external write.",
    }))
}

fn parse_attrs(texts: &[String]) -> Vec<Map<String, Value>> {
    texts.iter().filter_map(|t| serde_json::from_str::<Map<String, Value>>(t).ok()).collect()
}

fn build_packet(
    store: &Store,
    project: &Project,
    w: &Window,
    cur: (i64, i64),
    spans: u64,
    p: &OpenPain,
    evidence_n: usize,
) -> Result<Packet> {
    let comps = components(&p.row);
    let evidence: Vec<Evidence> = store
        .evidence(project.rowid, &p.row.pain_id, cur, evidence_n)?
        .iter()
        .map(|r| Evidence {
            trace_id: hex(&r.trace_id),
            span_id: hex(&r.span_id),
            service: r.service.clone(),
            name: r.name.clone(),
            time: time(r.start_ns),
            duration_ms: round3((r.end_ns - r.start_ns) as f64 / 1e6),
            status_message: r.status_message.clone(),
            http_status: r.http_status,
            exception: r.exc_type.as_ref().map(|t| EvidenceException {
                r#type: t.clone(),
                message: r.exc_message.clone().unwrap_or_default(),
                stacktrace: r.exc_stack.clone().unwrap_or_default(),
            }),
            attributes: serde_json::from_str(&r.attributes).unwrap_or_default(),
        })
        .collect();
    let inside = parse_attrs(&store.attribute_sample(project.rowid, &p.row.pain_id, true, cur, SAMPLE_PAIN)?);
    let rest = parse_attrs(&store.attribute_sample(project.rowid, &p.row.pain_id, false, cur, SAMPLE_REST)?);
    let over = packet::over_represented(&inside, &rest, 5, &packet::defining_keys(&p.row.signal, &comps));
    Ok(Packet {
        packet_version: packet::PACKET_VERSION,
        pain_id: p.row.pain_id.clone(),
        title: p.row.title.clone(),
        signal_type: p.row.signal.clone(),
        count: p.count,
        evidence_count: evidence.len() as u64,
        rate_per_1k: round3(p.rate),
        previous_count: p.previous_count,
        change_percent: p.change,
        first_seen: time(p.first_ns),
        last_seen: time(p.last_ns),
        window: PacketWindow { label: w.label.clone(), start: time(cur.0), end: time(cur.1), spans },
        fingerprint: FingerprintView { version: p.row.fp_version.clone(), components: comps.clone() },
        eval_candidate: packet::eval_candidate(&p.row.pain_id, &comps, &over),
        patch_plan: packet::patch_plan(&comps, &over),
        evidence,
        over_represented: over,
    })
}

/// `GET /v1/reports/latest.md`: the dashboard told as a narrative.
pub fn report_md(d: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut out = String::new();
    out.push_str(&format!("# LoopKit report — {}\n\n", s(&d["project_name"])));
    out.push_str(&format!(
        "Window: last {} (to {}). Generated {}.\n\n",
        s(&d["window"]["label"]),
        s(&d["window"]["current"]["end"]),
        s(&d["generated_at"])
    ));
    out.push_str(&format!("**{}**\n\n", s(&d["value"]["headline"])));
    out.push_str(&format!(
        "Momentum: {}. Spans: {} (previous window {}). Regression rate: {}.\n\n",
        s(&d["value"]["momentum"]),
        d["summary"]["spans"],
        d["summary"]["previous_spans"],
        match d["summary"]["regression_rate"].as_f64() {
            Some(r) => format!("{:.1}%", r * 100.0),
            None => "not measured yet".into(),
        }
    ));
    out.push_str("## Open pains\n\n");
    let pains = d["open_pains"].as_array().cloned().unwrap_or_default();
    if pains.is_empty() {
        out.push_str("None in this window.\n\n");
    }
    for (i, p) in pains.iter().enumerate() {
        let change = match &p["change_percent"] {
            Value::String(s) => s.clone(),
            v => format!("{:+}%", v.as_f64().unwrap_or(0.0)),
        };
        out.push_str(&format!(
            "{}. **{}** — `{}`, {} spans ({} per 1,000; change {}), pain `{}`\n",
            i + 1,
            s(&p["title"]),
            s(&p["signal_type"]),
            p["count"],
            p["rate_per_1k"],
            change,
            s(&p["pain_id"])
        ));
    }
    for (title, key) in [("Wins", "wins"), ("Regressions", "regressions_detail")] {
        out.push_str(&format!("\n## {title}\n\n"));
        let items = d[key].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            out.push_str("None measured.\n");
        }
        for c in items {
            out.push_str(&format!(
                "- {} (pain `{}`), merged {}: {} → {} per 1,000 spans ({}%)\n",
                s(&c["title"]),
                s(&c["pain_id"]),
                s(&c["merged_at"]),
                c["before_rate_per_1k"],
                c["latest_rate_per_1k"],
                c["change_percent"]
            ));
        }
    }
    out.push_str("\n## Next\n\nRun `POST /v1/runs/diagnose` with the agent key for improvement packets of the top pains. LoopKit prepares the work; it makes no external write.\n");
    out
}

//! Reading with the agent key: `GET /v1/telemetry` (pages of records),
//! `POST /v1/runs/diagnose` (improvement packets), `GET /v1/dashboard`
//! (program state), `GET /v1/changes` (merged changes and how each
//! measured) and `GET /v1/reports/latest.md` (the narrative).
//!
//! All take a `window` (default 24h). Telemetry pages newest first with an
//! opaque `cursor`; `next_cursor` is null on the last page.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::json;

use crate::loopkit::keys::KeyKind;
use crate::loopkit::window::Window;
use crate::serve::auth::require;
use crate::serve::error::ApiError;
use crate::serve::insight::{self, DiagnoseOptions};
use crate::serve::projects::{SMALL_BODY, parse_json, read_body};
use crate::serve::{AppState, blocking, now_ns};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReadQuery {
    #[serde(default)]
    window: Option<String>,
    #[serde(default)]
    limit: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

fn query(raw: Option<String>) -> Result<ReadQuery, ApiError> {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).map_err(|e| {
        ApiError::bad_request(
            "BAD_QUERY",
            format!("the query string is not understood: {e}"),
            "use only window, limit and cursor",
        )
    })
}

fn window(w: Option<&str>) -> Result<Window, ApiError> {
    Ok(match w {
        Some(w) => Window::parse(w)?,
        None => Window::default_window(),
    })
}

/// An opaque cursor: the (start, span id) of the last record of a page.
pub fn encode_cursor(start_ns: i64, span_id: &[u8]) -> String {
    let mut raw = start_ns.to_be_bytes().to_vec();
    raw.extend_from_slice(span_id);
    URL_SAFE_NO_PAD.encode(raw)
}

pub fn decode_cursor(c: &str) -> Option<(i64, Vec<u8>)> {
    let raw = URL_SAFE_NO_PAD.decode(c).ok()?;
    if raw.len() != 16 {
        return None;
    }
    let (start, span) = raw.split_at(8);
    Some((i64::from_be_bytes(start.try_into().ok()?), span.to_vec()))
}

pub async fn records(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let project = require(&state, &headers, KeyKind::Agent, "reading telemetry").await?;
    let q = query(raw)?;
    let w = window(q.window.as_deref())?;
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(l) => match l.parse::<usize>() {
            Ok(n @ 1..=1000) => n,
            _ => {
                return Err(ApiError::bad_request(
                    "BAD_LIMIT",
                    format!("limit {l:?} is not between 1 and 1000"),
                    "pass limit=1..1000",
                ));
            }
        },
    };
    let cursor = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(decode_cursor(c).ok_or_else(|| {
            ApiError::bad_request(
                "BAD_CURSOR",
                "the cursor is not one this server gave",
                "pass next_cursor from the previous page unchanged, or omit it",
            )
        })?),
    };
    let now = now_ns();
    let store = state.store.clone();
    let mut rows = blocking(move || store.records_page(project.rowid, w.current(now), cursor, limit + 1)).await?;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| encode_cursor(r.start_ns, &r.span_id))
    } else {
        None
    };
    let records: Vec<_> = rows.iter().map(insight::record_json).collect();
    Ok(axum::Json(json!({ "records": records, "next_cursor": next_cursor })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DiagnoseBody {
    #[serde(default)]
    window: Option<String>,
    #[serde(default)]
    max_pains: Option<serde_json::Number>,
    #[serde(default)]
    evidence: Option<serde_json::Number>,
    #[serde(default)]
    pain_ids: Option<Vec<String>>,
    #[serde(default)]
    signal_types: Option<Vec<String>>,
}

pub async fn diagnose(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let project = require(&state, &headers, KeyKind::Agent, "diagnose").await?;
    let body = read_body(&state, &headers, body, SMALL_BODY).await?;
    let b: DiagnoseBody = parse_json(
        &body,
        "{\"window\"?: \"24h\", \"max_pains\"?: 1..100, \"evidence\"?: 0..50, \"pain_ids\"?: [string], \"signal_types\"?: [string]}",
    )?;
    let q = query(raw)?;
    // Both windows must be valid when given; the body's wins.
    let query_window = window(q.window.as_deref())?;
    let w = match b.window.as_deref() {
        Some(bw) => window(Some(bw))?,
        None => query_window,
    };
    // JSON Schema integers: 45 and 45.0 alike, within [min, max].
    let bounded = |v: Option<&serde_json::Number>, default: usize, min: u64, max: u64, name: &str| {
        let Some(n) = v else { return Ok(default) };
        let int =
            n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= 1e9).map(|f| f as u64));
        match int {
            Some(i) if (min..=max).contains(&i) => Ok(i as usize),
            _ => Err(ApiError::bad_request(
                "BAD_REQUEST_BODY",
                format!("{name} {n} is not an integer from {min} to {max}"),
                format!("pass {name} as an integer from {min} to {max}"),
            )),
        }
    };
    let opts = DiagnoseOptions {
        max_pains: bounded(b.max_pains.as_ref(), 10, 1, 100, "max_pains")?,
        evidence: bounded(b.evidence.as_ref(), insight::DEFAULT_EVIDENCE, 0, 50, "evidence")?,
        pain_ids: b.pain_ids,
        signal_types: b.signal_types,
    };
    let now = now_ns();
    let store = state.store.clone();
    let v = blocking(move || insight::diagnose(&store, &project, &w, now, &opts)).await?;
    Ok(axum::Json(v).into_response())
}

pub async fn dashboard(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let v = dashboard_value(&state, &headers, raw, "reading the dashboard").await?;
    Ok(axum::Json(v).into_response())
}

/// The dashboard of the agent key's project over the requested window:
/// what `GET /v1/dashboard` returns and `/v1/reports/latest.md` narrates.
async fn dashboard_value(
    state: &AppState,
    headers: &HeaderMap,
    raw: Option<String>,
    what: &'static str,
) -> Result<serde_json::Value, ApiError> {
    let project = require(state, headers, KeyKind::Agent, what).await?;
    let q = query(raw)?;
    let w = window(q.window.as_deref())?;
    let now = now_ns();
    let store = state.store.clone();
    blocking(move || insight::dashboard(&store, &project, &w, now)).await
}

/// `GET /v1/changes`: the merged changes and how each measured.
pub async fn changes(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let project = require(&state, &headers, KeyKind::Agent, "reading changes").await?;
    let q = query(raw)?;
    let w = window(q.window.as_deref())?;
    let now = now_ns();
    let store = state.store.clone();
    let v = blocking(move || insight::changes(&store, &project, &w, now)).await?;
    Ok(axum::Json(v).into_response())
}

pub async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let v = dashboard_value(&state, &headers, raw, "reading the report").await?;
    let mut res = (StatusCode::OK, insight::report_md(&v)).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/markdown; charset=utf-8"));
    Ok(res)
}

//! `POST /v1/traces`: OTLP/HTTP ingest with the producer key.
//!
//! Checks run cheapest first: content type (415), key (401/403), content
//! encoding (415), body size as sent (413), then — off the async workers —
//! decompression under the same limit (413), decoding (400 for a body whose
//! structure does not decode; a span that does not decode is rejected
//! alone), normalisation (per-span rejections), and the store's one
//! transaction (expiry 403; the lifetime span quota: spans past it are
//! rejected in `partialSuccess`, and a batch with no room at all is 403).
//!
//! Retrying: OTLP exporters retry 429, 502, 503 and 504 (honouring
//! `Retry-After`) and drop the batch on any other error. So a limit that
//! waiting can lift is a 429 with a `Retry-After` after which it will be
//! lifted, and one that waiting never lifts (an expired sandbox, a spent
//! lifetime quota) is a 403, never a 429.
//!
//! The answer is in the request's encoding: `{}` / an empty message, or
//! `partialSuccess` when some spans were rejected; a request whose spans
//! were all rejected is a 400 and writes nothing. Errors are a
//! `google.rpc.Status` in the request's encoding (JSON when the content
//! type is not one of OTLP's).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::loopkit::keys::KeyKind;
use crate::loopkit::normalise;
use crate::loopkit::otlp::{self, Compression, Encoding, OtlpError};
use crate::serve::error::ApiError;
use crate::serve::projects::read_body;
use crate::serve::{AppState, blocking, now_ns, now_s};

pub async fn ingest(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let encoding = Encoding::from_content_type(content_type);
    match ingest_in(&state, &headers, encoding, body).await {
        Ok(res) => res,
        Err(e) => status_response(encoding.unwrap_or(Encoding::Json), e),
    }
}

/// An error as OTLP/HTTP answers it: a `google.rpc.Status` body.
pub fn status_response(encoding: Encoding, e: ApiError) -> Response {
    if e.status.is_server_error() {
        tracing::error!(code = e.report.code, message = %e.report.message, "ingest failed");
    }
    let body = otlp::status_body(
        encoding,
        e.status.as_u16(),
        e.report.code,
        &e.report.message,
        e.report.hint(),
        e.retry_after,
    );
    let mut res = (e.status, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(encoding.content_type()));
    if let Some(s) = e.retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        h.insert(header::RETRY_AFTER, s);
    }
    if e.close {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

async fn ingest_in(
    state: &AppState,
    headers: &HeaderMap,
    encoding: Option<Encoding>,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(encoding) = encoding else {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            format!("Content-Type {content_type:?} is not an OTLP encoding"),
            "send application/x-protobuf or application/json (OTLP/HTTP)",
        ));
    };
    let project = crate::serve::auth::require(state, headers, KeyKind::Producer, "ingest").await?;
    let compression = Compression::from_header(headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()))?;
    let limit = state.config.body_limit;
    let raw = read_body(state, headers, body, limit).await?;
    let (store, rules) = (state.store.clone(), state.config.slow.clone());
    let outcome = blocking(move || -> Result<_, ApiError> {
        let bytes = otlp::decompress(&raw, compression, limit)?;
        drop(raw);
        let decoded = otlp::decode(&bytes, encoding)?;
        drop(bytes);
        let mut n = normalise::normalise(&decoded.request, &rules, now_ns());
        drop(decoded.request);
        n.rejected += decoded.rejected;
        let first_rejection = decoded.first_rejection.or(n.first_rejection.take());
        if n.records.is_empty() && n.rejected > 0 {
            return Err(OtlpError::AllRejected {
                rejected: n.rejected,
                reason: first_rejection.clone().unwrap_or_default(),
            }
            .into());
        }
        let written = store.ingest(project.rowid, n.records, n.changes, now_s())?;
        Ok((n.rejected, first_rejection, written))
    })
    .await?;
    let (rejected, reason, written) = outcome;
    tracing::debug!(project = %project.public_id, inserted = written.inserted, duplicates = written.duplicates,
        rejected, over_quota = written.over_quota, "ingested");
    let mut reasons: Vec<String> = reason.into_iter().collect();
    if written.over_quota > 0 {
        reasons.push(format!(
            "{} spans over the project's lifetime quota of {} spans were dropped (graduate with POST /v1/signup/upgrade)",
            written.over_quota, project.quota_spans
        ));
    }
    let body = otlp::response_body(encoding, rejected + written.over_quota, &reasons.join("; "));
    let mut res = (StatusCode::OK, body).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(encoding.content_type()));
    Ok(res)
}

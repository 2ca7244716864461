//! `POST /v1/traces`: OTLP/HTTP ingest with the producer key.
//!
//! Checks run cheapest first: content type (415), key (401/403), content
//! encoding (415), body size as sent (413), then — off the async workers —
//! decompression under the same limit (413), decoding (400), normalisation
//! (per-span rejections), and the store's one transaction (expiry 403,
//! quota 429). The answer is in the request's encoding: `{}` / an empty
//! message, or `partialSuccess` when some spans were rejected; a request
//! whose spans were all rejected is a 400 and writes nothing.

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

pub async fn ingest(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(encoding) = Encoding::from_content_type(content_type) else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            format!("Content-Type {content_type:?} is not an OTLP encoding"),
            "send application/x-protobuf or application/json (OTLP/HTTP)",
        ));
    };
    let project = crate::serve::auth::require(&state, &headers, KeyKind::Producer, "ingest").await?;
    let compression = Compression::from_header(headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()))?;
    let limit = state.config.body_limit;
    let raw = read_body(body, limit).await?;
    let (store, rules) = (state.store.clone(), state.config.slow.clone());
    let outcome = blocking(move || -> Result<_, ApiError> {
        let bytes = otlp::decompress(&raw, compression, limit)?;
        let request = otlp::decode(&bytes, encoding)?;
        drop(bytes);
        let n = normalise::normalise(&request, &rules, now_ns());
        drop(request);
        if n.records.is_empty() && n.rejected > 0 {
            return Err(OtlpError::AllRejected {
                rejected: n.rejected,
                reason: n.first_rejection.clone().unwrap_or_default(),
            }
            .into());
        }
        let written = store.ingest(project.rowid, n.records, n.changes, now_s())?;
        Ok((n.rejected, n.first_rejection, written))
    })
    .await?;
    let (rejected, reason, written) = outcome;
    tracing::debug!(project = %project.public_id, inserted = written.inserted, duplicates = written.duplicates, rejected, "ingested");
    let body = otlp::response_body(encoding, rejected, reason.as_deref().unwrap_or(""));
    let mut res = (StatusCode::OK, body).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(encoding.content_type()));
    Ok(res)
}

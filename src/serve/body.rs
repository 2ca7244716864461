//! Request bodies, read under bounds on size and time, and the JSON bodies
//! of the small endpoints parsed as strictly as `/openapi.json` describes
//! them.
//!
//! A body is read frame by frame with three bounds:
//! - **size**: at most `limit` bytes are kept. A body that declares a larger
//!   `Content-Length`, or turns out larger while it streams (chunked), is
//!   refused with 413 `PAYLOAD_TOO_LARGE` and `Connection: close`;
//! - **idle**: no frame for [`BodyLimits::idle`] is 408 `BODY_TIMEOUT`, so a
//!   client that sends headers and then trickles (or stops) cannot hold a
//!   connection and a worker;
//! - **total**: the whole body must arrive within [`BodyLimits::total`].
//!
//! Why the 413 drains: a client that sends its whole oversized body without
//! waiting for `100-continue` is still writing when the server answers. If
//! the server closed the socket with that data unread, the kernel would
//! reset the connection and the client would see `ECONNRESET` instead of
//! the 413. So the rest of the body is read and discarded — up to
//! [`BodyLimits::drain`] bytes and within the same time bounds — before the
//! 413 is sent; past that bound the connection is closed anyway. A client
//! that did send `Expect: 100-continue` gets its 413 at once, and its body
//! is never requested.
//!
//! Strict JSON ([`parse_object`]): the body must be one JSON object (an
//! array, a string or `null` is 400, even where serde would map an array
//! onto a struct), no member may be `null` (no field of this API is
//! nullable), and unknown members are refused by the target types.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use crate::serve::error::ApiError;

/// The time and drain bounds of one body (the size limit is per call).
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    /// Longest wait for the next frame.
    pub idle: Duration,
    /// Longest time for the whole body.
    pub total: Duration,
    /// Most bytes read and discarded after the limit, before the 413.
    pub drain: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits { idle: Duration::from_secs(30), total: Duration::from_secs(120), drain: 64 << 20 }
    }
}

/// Largest body of the small JSON endpoints.
pub const SMALL_BODY: usize = 64 << 10;

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        format!("the body is larger than {limit} bytes"),
        "send a smaller body (for OTLP, lower the exporter's batch size)",
    )
    .closing()
}

fn timed_out(limits: &BodyLimits) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "BODY_TIMEOUT",
        format!(
            "the body did not arrive in time (no data for {} s, or more than {} s in all)",
            limits.idle.as_secs(),
            limits.total.as_secs()
        ),
        "send the whole body at once, right after the headers",
    )
    .closing()
}

fn unreadable(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("BODY_UNREADABLE", format!("the body could not be read: {e}"), "resend the request").closing()
}

/// The next frame's data, `None` at the end; times out by the bounds.
async fn next_data(body: &mut Body, deadline: Instant, limits: &BodyLimits) -> Result<Option<Bytes>, ApiError> {
    loop {
        let wait = deadline.min(Instant::now() + limits.idle);
        match tokio::time::timeout_at(wait, body.frame()).await {
            Err(_) => return Err(timed_out(limits)),
            Ok(None) => return Ok(None),
            Ok(Some(Err(e))) => return Err(unreadable(e)),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
                // Trailers: nothing to keep.
            }
        }
    }
}

/// Reads and discards what is left of a body, up to `drain` bytes in all.
async fn drain(body: &mut Body, mut seen: usize, deadline: Instant, limits: &BodyLimits) {
    while seen <= limits.drain {
        match next_data(body, deadline, limits).await {
            Ok(Some(d)) => seen = seen.saturating_add(d.len()),
            Ok(None) | Err(_) => return,
        }
    }
}

/// Reads a whole body of at most `limit` bytes (see the module doc).
pub async fn read(headers: &HeaderMap, mut body: Body, limit: usize, limits: &BodyLimits) -> Result<Bytes, ApiError> {
    let deadline = Instant::now() + limits.total;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        let expects_continue = headers
            .get(header::EXPECT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
        if !expects_continue {
            drain(&mut body, 0, deadline, limits).await;
        }
        return Err(too_large(limit));
    }
    let mut buf: Vec<u8> = Vec::with_capacity(declared.map_or(0, |n| n as usize).min(limit));
    while let Some(data) = next_data(&mut body, deadline, limits).await? {
        if buf.len() + data.len() > limit {
            drain(&mut body, buf.len() + data.len(), deadline, limits).await;
            return Err(too_large(limit));
        }
        buf.extend_from_slice(&data);
    }
    Ok(Bytes::from(buf))
}

/// Parses a JSON body (an empty body is `{}`) into `T`, strictly: one JSON
/// object without `null` members. `shape` names what was expected.
pub fn parse_object<T: DeserializeOwned>(body: &[u8], shape: &str) -> Result<T, ApiError> {
    let bad = |why: String| {
        ApiError::bad_request(
            "BAD_REQUEST_BODY",
            format!("the body is not {shape}: {why}"),
            format!("send a JSON body {shape}"),
        )
    };
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    let value: Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    let Value::Object(map) = &value else {
        return Err(bad(format!("it is a JSON {}, not an object", crate::canonical::kind(&value))));
    };
    if let Some((k, _)) = map.iter().find(|(_, v)| v.is_null()) {
        return Err(bad(format!("{k:?} is null (omit a field instead of sending null)")));
    }
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct B {
        #[allow(dead_code)]
        name: String,
        #[serde(default)]
        #[allow(dead_code)]
        note: Option<String>,
    }

    #[test]
    fn only_objects_without_nulls_are_accepted() {
        assert!(parse_object::<B>(br#"{"name":"x"}"#, "{}").is_ok());
        for bad in [&br#"["x"]"#[..], br#""x""#, b"null", br#"{"name":"x","note":null}"#, br#"{"name":null}"#] {
            let e = parse_object::<B>(bad, "{\"name\": string}").unwrap_err();
            assert_eq!((e.status, e.code()), (StatusCode::BAD_REQUEST, "BAD_REQUEST_BODY"), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413_and_closes() {
        let e = read(&HeaderMap::new(), Body::from(vec![1u8; 100]), 10, &BodyLimits::default()).await.unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(e.close);
        let ok = read(&HeaderMap::new(), Body::from(vec![1u8; 10]), 10, &BodyLimits::default()).await.unwrap();
        assert_eq!(ok.len(), 10);
    }
}

//! The one API error type: every failure of every handler becomes seed 004's
//! actionable error shape — `{"error","code","message","nextAction"}`, plus
//! `retryAfterSeconds` and a `Retry-After` header on 429.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::{Coded, Report};
use crate::loopkit::otlp::OtlpError;
use crate::loopkit::window::BadWindow;
use crate::serve::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub report: Report,
    pub retry_after: Option<u64>,
    /// Answer with `Connection: close` (the request's body was not read to
    /// its end, or the client is misbehaving).
    pub close: bool,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        next_action: impl Into<String>,
    ) -> Self {
        ApiError { status, report: Report::new(code, message).with_hint(next_action), retry_after: None, close: false }
    }

    pub fn coded<E: Coded + ?Sized>(status: StatusCode, err: &E) -> Self {
        ApiError { status, report: Report::from_coded(err), retry_after: None, close: false }
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// Closes the connection after this answer.
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>, next_action: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message, next_action)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            message,
            "retry; if it persists, read the server log of ratchet serve",
        )
    }

    pub fn code(&self) -> &'static str {
        self.report.code
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::Expired(_) => StatusCode::FORBIDDEN,
            // A lifetime quota: retrying can never succeed, so not 429
            // (OTLP exporters retry 429), but 403, which they drop.
            StoreError::QuotaExceeded { .. } => StatusCode::FORBIDDEN,
            StoreError::ProjectExists { .. } => StatusCode::CONFLICT,
            StoreError::NoProject(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::coded(status, &e)
    }
}

impl From<OtlpError> for ApiError {
    fn from(e: OtlpError) -> Self {
        let status = match &e {
            OtlpError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            OtlpError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::coded(status, &e)
    }
}

impl From<BadWindow> for ApiError {
    fn from(e: BadWindow) -> Self {
        ApiError::coded(StatusCode::BAD_REQUEST, &e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.report.code, message = %self.report.message, "request failed");
        }
        let mut body = self.report.to_json();
        if let Some(s) = self.retry_after {
            body["retryAfterSeconds"] = s.into();
        }
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.close {
            res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        res
    }
}

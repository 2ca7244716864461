//! OTLP/HTTP trace payloads: decompression under a limit, decoding of the
//! protobuf and JSON encodings, and the response bodies.
//!
//! Decoding uses `opentelemetry-proto`'s prost messages (protobuf) and their
//! serde mapping (JSON: lowerCamelCase, hex ids, enums as integers, 64-bit
//! integers as strings or numbers, unknown fields ignored). Id lengths are
//! *not* checked here: that is per span, in [`crate::loopkit::normalise`].
//!
//! JSON is decoded span by span: the request's skeleton (resources, scopes,
//! the list of spans) is read first, keeping each span's raw text, and then
//! each span is decoded on its own. A span that does not decode (a non-hex
//! id, an enum given by name, `"NaN"` for a double) is rejected alone and
//! counted in `partialSuccess`; the rest of the batch is kept. A resource or
//! scope that does not decode rejects the spans under it. Only a body whose
//! skeleton does not decode is rejected whole (400).
//!
//! Errors are answered as the OTLP/HTTP specification asks: a
//! `google.rpc.Status` in the request's encoding ([`status_body`]), with the
//! stable code and the next action in a `google.rpc.ErrorInfo` detail.
//!
//! Invariants: no input can make these functions panic or allocate more than
//! the limit for the decompressed body.

use std::io::Read;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use crate::error::Coded;

/// The two encodings of OTLP/HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` names (parameters such as `charset`
    /// allowed), or `None` for any other type.
    pub fn from_content_type(ct: &str) -> Option<Encoding> {
        let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// A `Content-Encoding` the server understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Identity,
    Gzip,
    Deflate,
}

impl Compression {
    pub fn from_header(value: Option<&str>) -> Result<Compression, OtlpError> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("identity") => Ok(Compression::Identity),
            Some("gzip") | Some("x-gzip") => Ok(Compression::Gzip),
            Some("deflate") => Ok(Compression::Deflate),
            Some(other) => Err(OtlpError::UnsupportedEncoding(other.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("the body is larger than {limit} bytes{}", if *.after_decompression { " once decompressed" } else { "" })]
    TooLarge { limit: usize, after_decompression: bool },
    #[error("Content-Encoding {0:?} is not supported")]
    UnsupportedEncoding(String),
    #[error("the {encoding} body could not be decompressed: {reason}")]
    BadCompression { encoding: &'static str, reason: String },
    #[error("the body is not a valid OTLP {encoding} ExportTraceServiceRequest: {reason}")]
    Malformed { encoding: &'static str, reason: String },
    #[error("all {rejected} spans of the request were rejected: {reason}")]
    AllRejected { rejected: u64, reason: String },
}

impl Coded for OtlpError {
    fn code(&self) -> &'static str {
        match self {
            OtlpError::TooLarge { .. } => "PAYLOAD_TOO_LARGE",
            OtlpError::UnsupportedEncoding(_) => "UNSUPPORTED_CONTENT_ENCODING",
            OtlpError::BadCompression { .. } => "BAD_COMPRESSION",
            OtlpError::Malformed { .. } => "MALFORMED_OTLP",
            OtlpError::AllRejected { .. } => "SPANS_REJECTED",
        }
    }
    fn hint(&self) -> Option<String> {
        Some(
            match self {
                OtlpError::TooLarge { .. } => "send smaller batches (lower the exporter's max export batch size)",
                OtlpError::UnsupportedEncoding(_) => "send the body uncompressed, or with Content-Encoding gzip or deflate",
                OtlpError::BadCompression { .. } => "check that Content-Encoding matches how the body was compressed",
                OtlpError::Malformed { .. } => {
                    "send an OTLP ExportTraceServiceRequest (protobuf, or JSON per the OTLP/JSON mapping); do not retry this body"
                }
                OtlpError::AllRejected { .. } => {
                    "fix the span ids (16-byte trace id, 8-byte span id, not all zero) or trim the span's attributes and events, then resend"
                }
            }
            .to_string(),
        )
    }
}

/// Decompresses `body`, refusing to produce more than `limit` bytes.
pub fn decompress(body: &[u8], compression: Compression, limit: usize) -> Result<Vec<u8>, OtlpError> {
    fn read_limited(mut r: impl Read, limit: usize, encoding: &'static str) -> Result<Vec<u8>, OtlpError> {
        let mut out = Vec::new();
        let read = r.by_ref().take(limit as u64 + 1).read_to_end(&mut out);
        match read {
            Ok(_) if out.len() > limit => Err(OtlpError::TooLarge { limit, after_decompression: true }),
            Ok(_) => Ok(out),
            Err(e) => Err(OtlpError::BadCompression { encoding, reason: e.to_string() }),
        }
    }
    match compression {
        Compression::Identity if body.len() > limit => Err(OtlpError::TooLarge { limit, after_decompression: false }),
        Compression::Identity => Ok(body.to_vec()),
        Compression::Gzip => read_limited(flate2::read::MultiGzDecoder::new(body), limit, "gzip"),
        Compression::Deflate => {
            // HTTP's "deflate" is zlib-wrapped; some clients send raw deflate.
            match read_limited(flate2::read::ZlibDecoder::new(body), limit, "deflate") {
                Err(OtlpError::BadCompression { .. }) => {
                    read_limited(flate2::read::DeflateDecoder::new(body), limit, "deflate")
                }
                other => other,
            }
        }
    }
}

/// A decoded request, and the spans that could not be decoded.
#[derive(Debug, Default)]
pub struct Decoded {
    pub request: ExportTraceServiceRequest,
    pub rejected: u64,
    /// Why the first span was rejected, for `partialSuccess`.
    pub first_rejection: Option<String>,
}

/// Decodes an ExportTraceServiceRequest (JSON span by span: see the module doc).
pub fn decode(body: &[u8], encoding: Encoding) -> Result<Decoded, OtlpError> {
    match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body)
            .map(|request| Decoded { request, ..Decoded::default() })
            .map_err(|e| OtlpError::Malformed { encoding: "protobuf", reason: e.to_string() }),
        Encoding::Json => decode_json(body),
    }
}

mod skeleton {
    //! The OTLP/JSON request down to the spans, each kept as raw text.
    use serde::Deserialize;
    use serde_json::value::RawValue;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Request<'a> {
        #[serde(default, borrow)]
        pub resource_spans: Vec<ResourceSpans<'a>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ResourceSpans<'a> {
        #[serde(default, borrow)]
        pub resource: Option<&'a RawValue>,
        #[serde(default, borrow)]
        pub scope_spans: Vec<ScopeSpans<'a>>,
        #[serde(default)]
        pub schema_url: String,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ScopeSpans<'a> {
        #[serde(default, borrow)]
        pub scope: Option<&'a RawValue>,
        #[serde(default, borrow)]
        pub spans: Vec<&'a RawValue>,
        #[serde(default)]
        pub schema_url: String,
    }
}

fn decode_json(body: &[u8]) -> Result<Decoded, OtlpError> {
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    // serde maps a JSON array onto a struct too; the request is an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(OtlpError::Malformed { encoding: "JSON", reason: "the body is not a JSON object".into() });
    }
    let skeleton: skeleton::Request<'_> =
        serde_json::from_slice(body).map_err(|e| OtlpError::Malformed { encoding: "JSON", reason: e.to_string() })?;
    // The skeleton's shape is whole-request: a resource, scope or span that
    // is not a JSON object (serde would map an array onto a struct) is 400.
    let not_object = |raw: &serde_json::value::RawValue| !raw.get().starts_with('{');
    for (ri, rs) in skeleton.resource_spans.iter().enumerate() {
        let bad = rs.resource.is_some_and(not_object)
            || rs
                .scope_spans
                .iter()
                .any(|ss| ss.scope.is_some_and(not_object) || ss.spans.iter().any(|s| not_object(s)));
        if bad {
            return Err(OtlpError::Malformed {
                encoding: "JSON",
                reason: format!("resourceSpans[{ri}] holds a resource, scope or span that is not a JSON object"),
            });
        }
    }
    let mut out = Decoded::default();
    let mut reject = |n: u64, why: String| {
        out.rejected += n;
        out.first_rejection.get_or_insert(why);
    };
    let mut resource_spans = Vec::with_capacity(skeleton.resource_spans.len());
    for (ri, rs) in skeleton.resource_spans.into_iter().enumerate() {
        let span_count: u64 = rs.scope_spans.iter().map(|ss| ss.spans.len() as u64).sum();
        let resource = match rs.resource.map(|r| serde_json::from_str::<Resource>(r.get())).transpose() {
            Ok(r) => r,
            Err(e) => {
                reject(span_count, format!("resourceSpans[{ri}].resource does not decode: {e}"));
                continue;
            }
        };
        let mut scope_spans = Vec::with_capacity(rs.scope_spans.len());
        for (si, ss) in rs.scope_spans.into_iter().enumerate() {
            let scope = match ss.scope.map(|s| serde_json::from_str::<InstrumentationScope>(s.get())).transpose() {
                Ok(s) => s,
                Err(e) => {
                    reject(
                        ss.spans.len() as u64,
                        format!("resourceSpans[{ri}].scopeSpans[{si}].scope does not decode: {e}"),
                    );
                    continue;
                }
            };
            let mut spans = Vec::with_capacity(ss.spans.len());
            for (pi, raw) in ss.spans.into_iter().enumerate() {
                match serde_json::from_str::<Span>(raw.get()) {
                    Ok(span) => spans.push(span),
                    Err(e) => {
                        reject(1, format!("resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}] does not decode: {e}"))
                    }
                }
            }
            scope_spans.push(ScopeSpans { scope, spans, schema_url: ss.schema_url });
        }
        resource_spans.push(ResourceSpans { resource, scope_spans, schema_url: rs.schema_url });
    }
    out.request = ExportTraceServiceRequest { resource_spans };
    Ok(out)
}

/// `google.rpc.Status` and `google.rpc.ErrorInfo`, the error body of
/// OTLP/HTTP (hand-declared: the proto crate's features here do not carry them).
pub mod rpc {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        #[prost(int32, tag = "1")]
        pub code: i32,
        #[prost(string, tag = "2")]
        pub message: String,
        #[prost(message, repeated, tag = "3")]
        pub details: Vec<Any>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ErrorInfo {
        #[prost(string, tag = "1")]
        pub reason: String,
        #[prost(string, tag = "2")]
        pub domain: String,
        #[prost(btree_map = "string, string", tag = "3")]
        pub metadata: std::collections::BTreeMap<String, String>,
    }

    pub const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";
    pub const DOMAIN: &str = "loopkit.ratchet";

    /// The gRPC code that matches an HTTP status (google/rpc/code.proto).
    pub fn code_for_http(status: u16) -> i32 {
        match status {
            400 | 413 | 415 => 3, // INVALID_ARGUMENT
            401 => 16,            // UNAUTHENTICATED
            403 => 7,             // PERMISSION_DENIED
            404 => 5,             // NOT_FOUND
            408 | 504 => 4,       // DEADLINE_EXCEEDED
            409 => 10,            // ABORTED
            429 => 8,             // RESOURCE_EXHAUSTED
            501 => 12,            // UNIMPLEMENTED
            503 => 14,            // UNAVAILABLE
            _ => 13,              // INTERNAL
        }
    }
}

/// The body of an OTLP/HTTP error answer: a `google.rpc.Status` in the
/// request's encoding (an integer `code` in JSON), whose one detail is an
/// `ErrorInfo` with the stable code as `reason` and `nextAction` (and
/// `retryAfterSeconds`) in its metadata.
pub fn status_body(
    encoding: Encoding,
    http_status: u16,
    reason: &str,
    message: &str,
    next_action: Option<&str>,
    retry_after: Option<u64>,
) -> Vec<u8> {
    let mut metadata = std::collections::BTreeMap::new();
    if let Some(n) = next_action {
        metadata.insert("nextAction".to_string(), n.to_string());
    }
    if let Some(r) = retry_after {
        metadata.insert("retryAfterSeconds".to_string(), r.to_string());
    }
    let code = rpc::code_for_http(http_status);
    match encoding {
        Encoding::Json => serde_json::json!({
            "code": code,
            "message": message,
            "details": [{
                "@type": rpc::ERROR_INFO_TYPE,
                "reason": reason,
                "domain": rpc::DOMAIN,
                "metadata": metadata,
            }],
        })
        .to_string()
        .into_bytes(),
        Encoding::Protobuf => {
            let info = rpc::ErrorInfo { reason: reason.to_string(), domain: rpc::DOMAIN.to_string(), metadata };
            rpc::Status {
                code,
                message: message.to_string(),
                details: vec![rpc::Any { type_url: rpc::ERROR_INFO_TYPE.to_string(), value: info.encode_to_vec() }],
            }
            .encode_to_vec()
        }
    }
}

/// The body of a 200 answer: `{}` / an empty message, or a `partialSuccess`.
pub fn response_body(encoding: Encoding, rejected: u64, error_message: &str) -> Vec<u8> {
    match encoding {
        Encoding::Json if rejected == 0 => b"{}".to_vec(),
        Encoding::Json => serde_json::json!({
            "partialSuccess": { "rejectedSpans": rejected.to_string(), "errorMessage": error_message }
        })
        .to_string()
        .into_bytes(),
        Encoding::Protobuf => {
            let partial_success = (rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
                error_message: error_message.to_string(),
            });
            ExportTraceServiceResponse { partial_success }.encode_to_vec()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_span_that_does_not_decode_is_rejected_alone() {
        let good = r#"{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"ok"}"#;
        let bad = [
            r#"{"traceId":"zz8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"hex"}"#,
            r#"{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","kind":"SPAN_KIND_SERVER"}"#,
            r#"{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","attributes":[{"key":"x","value":{"doubleValue":"NaN"}}]}"#,
        ];
        for b in bad {
            let body = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{good},{b}]}}]}}]}}"#);
            let d = decode(body.as_bytes(), Encoding::Json).unwrap();
            assert_eq!(d.rejected, 1, "{b}");
            assert!(d.first_rejection.unwrap().contains("spans[1]"));
            assert_eq!(d.request.resource_spans[0].scope_spans[0].spans.len(), 1);
        }
        let body = format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":7}},"scopeSpans":[{{"spans":[{good},{good}]}}]}},{{"scopeSpans":[{{"spans":[{good}]}}]}}]}}"#
        );
        let d = decode(body.as_bytes(), Encoding::Json).unwrap();
        assert_eq!((d.rejected, d.request.resource_spans.len()), (2, 1));
    }

    #[test]
    fn errors_are_google_rpc_status_in_both_encodings() {
        let json = status_body(Encoding::Json, 400, "MALFORMED_OTLP", "bad", Some("fix it"), None);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["code"], 3);
        assert_eq!(v["message"], "bad");
        assert_eq!(v["details"][0]["reason"], "MALFORMED_OTLP");
        assert_eq!(v["details"][0]["metadata"]["nextAction"], "fix it");
        let pb = status_body(Encoding::Protobuf, 429, "RATE_LIMITED", "slow down", None, Some(5));
        let st = rpc::Status::decode(&pb[..]).unwrap();
        assert_eq!((st.code, st.message.as_str()), (8, "slow down"));
        let info = rpc::ErrorInfo::decode(&st.details[0].value[..]).unwrap();
        assert_eq!(info.reason, "RATE_LIMITED");
        assert_eq!(info.metadata["retryAfterSeconds"], "5");
    }

    #[test]
    fn content_types_choose_the_encoding() {
        assert_eq!(Encoding::from_content_type("application/json; charset=utf-8"), Some(Encoding::Json));
        assert_eq!(Encoding::from_content_type("Application/X-Protobuf"), Some(Encoding::Protobuf));
        assert_eq!(Encoding::from_content_type("text/plain"), None);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            enc.write_all(&zeros).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 200_000);
        let err = decompress(&bomb, Compression::Gzip, 20 << 20).unwrap_err();
        assert!(matches!(err, OtlpError::TooLarge { after_decompression: true, .. }));
        assert!(matches!(decompress(b"not gzip", Compression::Gzip, 100), Err(OtlpError::BadCompression { .. })));
    }

    #[test]
    fn raw_and_zlib_deflate_both_decode() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"hello").unwrap();
        assert_eq!(decompress(&z.finish().unwrap(), Compression::Deflate, 100).unwrap(), b"hello");
        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        r.write_all(b"hello").unwrap();
        assert_eq!(decompress(&r.finish().unwrap(), Compression::Deflate, 100).unwrap(), b"hello");
    }

    #[test]
    fn json_accepts_the_otlp_mapping() {
        let body =
            br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"s"}}]},
            "scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
            "name":"x","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,
            "attributes":[{"key":"n","value":{"intValue":"7"}}],"status":{"code":2},"futureField":true}]}]}]}"#;
        let req = decode(body, Encoding::Json).unwrap().request;
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.trace_id.len(), 16);
        assert_eq!(span.end_time_unix_nano, 1544712661000000000);
        assert!(decode(br#"{"resourceSpans":"nope"}"#, Encoding::Json).is_err());
        assert!(decode(br#"[]"#, Encoding::Json).is_err());
        assert!(decode(b"\xff\xff\xff", Encoding::Protobuf).is_err());
        assert_eq!(response_body(Encoding::Json, 0, ""), b"{}");
        assert!(response_body(Encoding::Protobuf, 0, "").is_empty());
    }
}

//! OTLP/HTTP trace payloads: decompression under a limit, decoding of the
//! protobuf and JSON encodings, and the response bodies.
//!
//! Decoding uses `opentelemetry-proto`'s prost messages (protobuf) and their
//! serde mapping (JSON: lowerCamelCase, hex ids, enums as integers, 64-bit
//! integers as strings or numbers, unknown fields ignored). Ids are *not*
//! checked here: that is per span, in [`crate::loopkit::normalise`].
//!
//! Invariants: no input can make these functions panic or allocate more than
//! the limit for the decompressed body; a body that does not decode is
//! rejected whole.

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

/// Decodes an ExportTraceServiceRequest.
pub fn decode(body: &[u8], encoding: Encoding) -> Result<ExportTraceServiceRequest, OtlpError> {
    match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body)
            .map_err(|e| OtlpError::Malformed { encoding: "protobuf", reason: e.to_string() }),
        Encoding::Json => {
            serde_json::from_slice(body).map_err(|e| OtlpError::Malformed { encoding: "JSON", reason: e.to_string() })
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
        let req = decode(body, Encoding::Json).unwrap();
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.trace_id.len(), 16);
        assert_eq!(span.end_time_unix_nano, 1544712661000000000);
        assert!(decode(br#"{"resourceSpans":"nope"}"#, Encoding::Json).is_err());
        assert!(decode(b"\xff\xff\xff", Encoding::Protobuf).is_err());
        assert_eq!(response_body(Encoding::Json, 0, ""), b"{}");
        assert!(response_body(Encoding::Protobuf, 0, "").is_empty());
    }
}

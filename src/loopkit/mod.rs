//! LoopKit's domain (seed 000), free of HTTP, async and SQL: what a key is,
//! how OTLP payloads decode, how spans become telemetry records, how
//! failures group into pains, how windows and changes are judged, and what
//! an improvement packet holds. `ratchet serve` ([`crate::serve`]) puts it
//! behind HTTP and SQLite.
//!
//! | seed word | module |
//! |---|---|
//! | producer / agent keys, recovery_code, signed upgrade code | [`keys`] |
//! | OTLP JSON and protobuf, gzip/deflate, partialSuccess | [`otlp`] |
//! | normalized telemetry records, signal types, merged steps | [`normalise`] |
//! | pains, fingerprint, masking | [`fingerprint`] |
//! | windows, change_percent, wins / regressions, regression_rate, value | [`window`] |
//! | issue / improvement packet, eval candidate, patch plan | [`packet`] |
//!
//! The loop's side (over HTTP, so not pure): [`client`] finds the server
//! and its keys and reads pains, packets and changes; [`outbox`] reports
//! every step as a span, with the log as its queue.

pub mod client;
pub mod fingerprint;
pub mod keys;
pub mod normalise;
pub mod otlp;
pub mod outbox;
pub mod packet;
pub mod window;

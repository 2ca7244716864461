//! `ratchet serve`: the router in process, the server as a process, and
//! real clients (the OpenTelemetry SDKs, schemathesis).

mod api;
mod conformance;
mod hardening;
mod otel_clients;
mod process;
mod schemathesis;

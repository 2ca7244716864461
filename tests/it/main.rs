//! End-to-end tests of the `ratchet` binary: one integration binary, one
//! module per area.

mod architecture;
mod common;
mod demo;
mod index;
mod init;
mod model;
mod ollama_stub;
mod rails;
mod recovery;
mod status;
mod step;
mod telemetry;

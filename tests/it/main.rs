//! End-to-end tests of the `ratchet` binary: one integration binary, one
//! module per area.

mod agents;
mod architecture;
mod common;
mod demo;
mod index;
mod init;
mod rails;
mod recovery;
mod status;
mod step;
mod telemetry;

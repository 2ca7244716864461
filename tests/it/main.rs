//! End-to-end tests of the `ratchet` binary: one integration binary, one
//! module per area.

mod agents;
mod architecture;
mod attacks;
mod backup;
mod common;
mod demo;
mod doctor;
mod errors;
mod gate2;
mod heartbeat;
mod help;
mod index;
mod init;
mod interrupt;
mod loop_e2e;
mod loop_page;
mod model;
mod ollama_stub;
mod rails;
mod readme;
mod recovery;
mod show;
mod status;
mod step;
mod telemetry;

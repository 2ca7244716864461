//! The patch engine and Gate 1 in process, and `ratchet patch check`.

mod cli;
mod engine;
mod path_safety;

//! Patches end to end: path safety against real files and symlinks, the
//! patch engine's atomicity, and `ratchet patch check` through the binary.

mod cli;
mod engine;
mod path_safety;
mod support;

//! Propose (DESIGN §3, §5, §6): the minimal context a provider is given,
//! the proposal it answers with (and its packet hash), and the providers
//! themselves.
//!
//! - [`context`]: what a provider may see — the intent, recent cycles as
//!   data, a ranked slice of the allowlisted file index, the focus, the rails
//!   that bind it, the base commit; nothing else.
//! - [`pain`]: a pain's improvement packet, as much of it as a provider
//!   needs (exception, frames mapped to repository files, evidence,
//!   findings, the drafted eval), and how frames and assets rank files.
//! - [`proposal`]: the strict proposal format and the packet hash.
//! - [`provider`]: one trait, a typed failure, and every kind.

pub mod context;
pub mod pain;
pub mod proposal;
pub mod provider;

pub use proposal::{Proposal, packet_hash, parse_json};

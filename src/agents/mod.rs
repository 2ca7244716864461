//! The agents API's domain (seed 004, "The Machines Room", in ratchet's
//! words): remote bots join with an Ed25519 identity, submit candidate
//! patches, attest or object on the current packet hash, propose and vote
//! on revisions. Gate 1 is ratchet's rule evaluators plus `[gate.quorum]`;
//! Gate 2 is a human at a terminal, as for every provider. **Nothing a bot
//! sends can merge by itself.**
//!
//! | seed word | ratchet word | here |
//! |---|---|---|
//! | candidate | proposal of provider `remote:<botId>` | [`bodies::candidate`], then `step::propose` |
//! | story | step (its id, `s<seq>`) | the step log's history |
//! | packet hash | packet hash (DESIGN §5) | `patch::packet_hash` |
//! | publication | merge (Gate 2, a human) | `ratchet approve`, with [`gate2`]'s check |
//! | signedWrite | a signed write | [`signed`], over [`json`]'s canonical body |
//! | verified ownership (AgentKit) | an operator's vouch | [`vouch`] |
//! | Gate 1 consensus | rules + quorum | [`policy`] |
//! | — | the ledger of signed writes, anchored in the log | [`ledger`] |
//! | the SDK's `privateKeyPkcs8Base64` | a bot's key, encrypted at rest | [`keyfile`] |
//!
//! This module knows nothing of HTTP or SQLite: `serve::agents` hosts the
//! routes and the store, and [`client`] is the blocking client behind
//! `ratchet agent`.

pub mod bodies;
pub mod client;
pub mod error;
pub mod gate2;
pub mod json;
pub mod keyfile;
pub mod ledger;
pub mod policy;
pub mod signed;
pub mod vouch;

pub use error::AgentError;

/// The provider name of a bot's candidates.
pub fn provider(bot_id: &str) -> String {
    format!("remote:{bot_id}")
}

/// The bot of a `remote:<botId>` provider.
pub fn bot_of(provider: &str) -> Option<&str> {
    provider.strip_prefix("remote:")
}

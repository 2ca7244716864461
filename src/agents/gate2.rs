//! The hook between Gate 2 and the agents API: what `ratchet approve`,
//! `reject`, `review` and `status` ask about a remote candidate.
//!
//! - `approve` of a remote candidate whose quorum is not met is refused
//!   (`QUORUM_NOT_MET`): bots decide Gate 1, the human decides Gate 2, and
//!   neither can skip the other.
//! - Before a human decides a remote candidate (approve or reject), an
//!   `agents` entry anchors the ledger in the log with the quorum the human
//!   saw ([`ledger::Anchor`], event `decision`).
//!
//! Candidates of every other provider pass through untouched.

use crate::error::Coded;
use crate::rails::Rails;

use super::ledger::Anchor;
use super::policy::{BotVerdict, QuorumState, quorum};

/// Read access to the ledger, as the store provides it.
pub trait Ledger {
    /// Every attestation and objection on `story`, with each bot's verified state.
    fn verdicts(&self, story: &str) -> Result<Vec<BotVerdict>, String>;
    /// `(records, chain)` of the ledger now.
    fn head(&self) -> Result<(i64, [u8; 32]), String>;
}

/// A ledger with no records: what a workspace without `agents.db` has.
pub struct Empty;

impl Ledger for Empty {
    fn verdicts(&self, _: &str) -> Result<Vec<BotVerdict>, String> {
        Ok(Vec::new())
    }
    fn head(&self) -> Result<(i64, [u8; 32]), String> {
        Ok((0, [0; 32]))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Gate2Error {
    #[error("the remote candidate {id} has not reached quorum: {}", .state.waiting_for.join("; "))]
    QuorumNotMet { id: String, state: Box<QuorumState> },
    #[error("cannot read the agents ledger: {0}")]
    Ledger(String),
}

impl Coded for Gate2Error {
    fn code(&self) -> &'static str {
        match self {
            Gate2Error::QuorumNotMet { .. } => "QUORUM_NOT_MET",
            Gate2Error::Ledger(_) => "AGENTS_LEDGER_UNREADABLE",
        }
    }
    fn hint(&self) -> Option<String> {
        Some(match self {
            Gate2Error::QuorumNotMet { id, .. } => format!(
                "wait for the bots' attestations ([gate.quorum] in the rails), see `ratchet status`, or reject it with `ratchet reject {id}`"
            ),
            Gate2Error::Ledger(_) => "check .ratchet/agents.db (ratchet log verify)".into(),
        })
    }
}

/// The quorum of a remote candidate (`None` for other providers).
pub fn state(
    rails: &Rails,
    provider: &str,
    story: &str,
    packet: &str,
    ledger: &dyn Ledger,
) -> Result<Option<QuorumState>, Gate2Error> {
    let Some(author) = super::bot_of(provider) else { return Ok(None) };
    let verdicts = ledger.verdicts(story).map_err(Gate2Error::Ledger)?;
    Ok(Some(quorum(&rails.gate.quorum, author, packet, &verdicts)))
}

/// Checks a human's decision on `story` and returns the `agents` entry to
/// append before it (`None` for candidates of other providers).
pub fn before_decision(
    rails: &Rails,
    provider: &str,
    story: &str,
    packet: &str,
    approving: bool,
    ledger: &dyn Ledger,
) -> Result<Option<Anchor>, Gate2Error> {
    let Some(q) = state(rails, provider, story, packet, ledger)? else { return Ok(None) };
    if approving && !q.met {
        return Err(Gate2Error::QuorumNotMet { id: story.to_string(), state: Box::new(q) });
    }
    let (writes, chain) = ledger.head().map_err(Gate2Error::Ledger)?;
    Ok(Some(Anchor {
        event: "decision".into(),
        story: Some(story.to_string()),
        writes,
        chain: crate::journal::line::hex(&chain),
        quorum: serde_json::to_value(&q).ok(),
        packet: Some(packet.to_string()),
    }))
}

//! Progressive trust (DESIGN §8, seed 003 principle 15): which tier of
//! `[[trust.tiers]]` a provider has reached.
//!
//! Invariant: every provider starts in the first tier (index 0), and a tier
//! is only ever derived, never stored in a mutable file.

use crate::rails::Rails;
use crate::workspace::Workspace;

/// The index into `rails.trust.tiers` of `provider`'s current tier: 0 for now; the derivation from the log (safe successes, reverts) replaces it.
pub fn current_tier(ws: &Workspace, rails: &Rails, provider: &str) -> usize {
    let _ = (ws, rails, provider);
    0
}

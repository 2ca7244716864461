//! Progressive trust (DESIGN §8, seed 003 principle 15): which tier of
//! `[[trust.tiers]]` a provider has reached.
//!
//! Invariant: every provider starts in the first tier (index 0), and a tier
//! is only ever derived from the log ([`crate::history::History::tiers`]),
//! never stored in a mutable file.

use crate::history::History;
use crate::journal::Journal;
use crate::rails::Rails;
use crate::workspace::Workspace;

/// The index into `rails.trust.tiers` of `provider`'s current tier, from
/// the log; the first tier when there is no log or it cannot be read.
pub fn current_tier(ws: &Workspace, rails: &Rails, provider: &str) -> usize {
    if !crate::journal::exists(ws) {
        return 0;
    }
    let Ok(journal) = Journal::open(ws) else { return 0 };
    let Ok(events) = crate::step::events(&journal) else { return 0 };
    History::from_events(events).tiers(&rails.trust).get(provider).map_or(0, |t| t.tier)
}

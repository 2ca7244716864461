//! Progressive trust (DESIGN §8, seed 003 principle 15): which tier of
//! `[[trust.tiers]]` a provider has reached.
//!
//! Invariants: every provider starts in the first tier (index 0);
//! `unlock_after` consecutive safe successes (merged, checks passed, not
//! reverted, not slipped) open the next tier; a revert drops one tier, and
//! so does a merge whose pain came back in the next telemetry window. A tier is only
//! ever derived from the log's [`History`], never stored in a mutable file.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::history::{History, TrustEvent};
use crate::journal::Journal;
use crate::rails::{Rails, Trust};
use crate::workspace::Workspace;

/// A provider's place on the trust ladder.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TierState {
    /// Index into `trust.tiers`.
    pub tier: usize,
    /// Consecutive safe successes in the current tier.
    pub streak: u32,
}

impl TierState {
    /// Where every provider starts.
    pub const FIRST: TierState = TierState { tier: 0, streak: 0 };
}

/// Each provider's tier, from the trust events in `history`
/// ([`History::trust_events`]: settlements, reverts and slips in log order).
pub fn tiers(history: &History, trust: &Trust) -> BTreeMap<String, TierState> {
    let top = trust.tiers.len().saturating_sub(1);
    let mut out: BTreeMap<String, TierState> =
        history.providers().into_iter().map(|p| (p.to_string(), TierState::FIRST)).collect();
    for (_, provider, ev) in history.trust_events() {
        let Some(st) = out.get_mut(provider) else { continue };
        match ev {
            TrustEvent::Settled { safe: true } => {
                st.streak += 1;
                if st.tier < top && st.streak >= trust.tiers[st.tier + 1].unlock_after {
                    st.tier += 1;
                    st.streak = 0;
                }
            }
            TrustEvent::Settled { safe: false } => st.streak = 0,
            TrustEvent::Demoted => {
                st.tier = st.tier.saturating_sub(1);
                st.streak = 0;
            }
            TrustEvent::Run { demotes } => {
                st.tier = st.tier.saturating_sub(demotes as usize);
                st.streak = 0;
            }
        }
    }
    out
}

/// The tier of `provider` in `history` (the first when it never stepped).
pub fn tier_of(history: &History, trust: &Trust, provider: &str) -> usize {
    tiers(history, trust).get(provider).map_or(0, |t| t.tier)
}

/// The index into `rails.trust.tiers` of `provider`'s current tier, from
/// the log; the first tier when there is no log or it cannot be read.
pub fn current_tier(ws: &Workspace, rails: &Rails, provider: &str) -> usize {
    if !crate::journal::exists(ws) {
        return 0;
    }
    let Ok(journal) = Journal::open(ws) else { return 0 };
    let Ok(history) = History::read(&journal) else { return 0 };
    tier_of(&history, &rails.trust, provider)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::tests::Log;
    use crate::record::Outcome;

    fn trust() -> Trust {
        crate::rails::parse(include_str!("../config/rails.toml"), "").unwrap().trust
    }

    #[test]
    fn trust_promotes_after_consecutive_safe_successes_and_a_revert_demotes() {
        let mut log = Log::default();
        for i in 0..4 {
            log.step(&format!("s{i}"), Log::body("ollama", Outcome::Merged, 0.9, Some("c")), i);
        }
        log.step("f", Log::body("ollama", Outcome::Failed, 0.3, None), 5);
        assert_eq!(tiers(&log.history(), &trust())["ollama"], TierState::FIRST, "a failure breaks the streak");
        for i in 10..15 {
            log.step(&format!("s{i}"), Log::body("ollama", Outcome::Merged, 0.9, Some("c")), i);
        }
        assert_eq!(tiers(&log.history(), &trust())["ollama"].tier, 1, "five safe successes open tests");
        log.revert("s14", 20);
        assert_eq!(tiers(&log.history(), &trust())["ollama"], TierState::FIRST);
    }

    #[test]
    fn a_merge_whose_pain_came_back_demotes_like_a_revert() {
        let mut log = Log::default();
        for i in 0..5 {
            log.step(&format!("s{i}"), Log::body("ollama", Outcome::Merged, 0.9, Some("c")), i);
        }
        assert_eq!(tiers(&log.history(), &trust())["ollama"].tier, 1);
        log.verify("s3", crate::record::Verdict::Win, 0.9, 30);
        assert_eq!(tiers(&log.history(), &trust())["ollama"].tier, 1, "a win changes nothing");
        log.verify("s4", crate::record::Verdict::Slipped, 0.2, 31);
        assert_eq!(tiers(&log.history(), &trust())["ollama"], TierState::FIRST);
    }
}

//! Progressive trust (DESIGN §8, seed 003 principle 15): which tier of
//! `[[trust.tiers]]` a provider has reached.
//!
//! Invariants: every provider starts in the first tier (index 0), or in the
//! tier the rails grant it ([`Trust::granted`]: `tier = "..."` in its
//! `[providers.NAME]` table, and the top tier for the `human` kind, who is
//! Gate 2 and so not tier-locked); `unlock_after` consecutive safe
//! successes (merged, checks passed, not reverted, not slipped) open the
//! next tier; a revert drops one tier, and so does a merge whose pain came
//! back in the next telemetry window, but never below the granted tier (the
//! operator's grant stands until the rails change, through `rails accept`,
//! which logs them). So a provider's tier is never below what the rails
//! grant, and never below what it earned. A tier is only ever derived from
//! the log's [`History`] and the rails, never stored in a mutable file.

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
    // A provider starts at the tier the rails grant it (`tier = "..."`, the
    // first otherwise) and never falls below it.
    let start = |name: &str| TierState { tier: trust.floor(name), streak: 0 };
    let mut out: BTreeMap<String, TierState> = trust.granted.keys().map(|name| (name.clone(), start(name))).collect();
    for p in history.providers() {
        out.entry(p.to_string()).or_insert_with(|| start(p));
    }
    for (_, provider, ev) in history.trust_events() {
        let floor = trust.floor(provider);
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
                st.tier = st.tier.saturating_sub(1).max(floor);
                st.streak = 0;
            }
            TrustEvent::Run { demotes } => {
                st.tier = st.tier.saturating_sub(demotes as usize).max(floor);
                st.streak = 0;
            }
        }
    }
    out
}

/// The tier of `provider` in `history` (the granted or first tier when it never stepped).
pub fn tier_of(history: &History, trust: &Trust, provider: &str) -> usize {
    tiers(history, trust).get(provider).map_or(trust.floor(provider), |t| t.tier)
}

/// The index into `rails.trust.tiers` of `provider`'s current tier, from
/// the log; the granted or first tier when there is no log or it cannot be read.
pub fn current_tier(ws: &Workspace, rails: &Rails, provider: &str) -> usize {
    if !crate::journal::exists(ws) {
        return rails.trust.floor(provider);
    }
    let Ok(journal) = Journal::open(ws) else { return rails.trust.floor(provider) };
    let Ok(history) = History::read(&journal) else { return rails.trust.floor(provider) };
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

    #[test]
    fn a_granted_tier_is_where_a_provider_starts_and_its_floor() {
        let mut trust = trust();
        trust.granted.insert("ollama".into(), 1);
        let mut log = Log::default();
        assert_eq!(tier_of(&log.history(), &trust, "ollama"), 1, "granted before any step");
        assert_eq!(tiers(&log.history(), &trust)["ollama"], TierState { tier: 1, streak: 0 });
        for i in 0..10 {
            log.step(&format!("s{i}"), Log::body("ollama", Outcome::Merged, 0.9, Some("c")), i);
        }
        assert_eq!(tier_of(&log.history(), &trust, "ollama"), 2, "ten safe successes from tests open code");
        log.revert("s9", 20);
        log.revert("s8", 21);
        assert_eq!(tier_of(&log.history(), &trust, "ollama"), 1, "reverts never drop it below the grant");
        assert_eq!(tier_of(&log.history(), &trust, "self"), 0, "others start in the first tier");
    }

    #[test]
    fn the_human_kind_is_granted_the_top_tier() {
        let trust = trust();
        assert_eq!(trust.floor("human"), 2);
        assert_eq!(tier_of(&Log::default().history(), &trust, "human"), 2);
    }
}

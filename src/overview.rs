//! The loop at a glance, for people (seed 003: "human effort is reduced
//! over time", "the loop ratchets forward without end"): what `ratchet
//! serve`'s loop page shows, derived from the log alone.
//!
//! | part | from |
//! |---|---|
//! | utility over time | every scored step, amendments applied |
//! | merges and human decisions per day | merged steps; Gate 2 decisions by a person (not `auto`) |
//! | providers: picks, merges, reverts, slips, tier | [`crate::history::ProviderStats`], [`crate::trust`] |
//! | pending proposals with their diffs | [`crate::step::peek`] |
//! | the watchdog | [`crate::watchdog`] |
//! | pains the loop targeted, won and slipped | steps focused on `pain:<id>` and their verifications |
//!
//! Invariant: reading an overview never writes: the log is read with
//! [`crate::journal::read_only`], pending files are only read, no lock is
//! taken. Everything in it that a provider wrote (rationales, paths,
//! diffs, provider names) is hostile text for the renderer to escape.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::history::History;
use crate::record::{Choice, Outcome, Verdict};
use crate::workspace::Workspace;

#[derive(Clone, Debug, Serialize)]
pub struct Overview {
    pub generated: String,
    pub utility: Vec<UtilityPoint>,
    pub days: Vec<Day>,
    pub providers: Vec<ProviderRow>,
    pub pending: Vec<crate::step::peek::Peek>,
    pub watchdog: crate::watchdog::WatchdogState,
    pub pains: Vec<PainRow>,
    pub steps: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct UtilityPoint {
    pub id: String,
    pub at: String,
    pub utility: f64,
    pub outcome: Outcome,
    pub provider: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Day {
    /// `2026-11-21`.
    pub date: String,
    pub merges: u64,
    /// Approvals and rejections by a person at Gate 2.
    pub human_decisions: u64,
    pub auto_merges: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProviderRow {
    pub name: String,
    pub picks: u64,
    pub merges: u64,
    pub reverts: u64,
    pub won: u64,
    pub slipped: u64,
    pub mean_utility: Option<f64>,
    pub tier: Option<String>,
}

/// Where a pain the loop targeted stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PainState {
    /// Targeted by a step that did not merge (or is pending).
    Targeted,
    /// Merged; the window after the merge has not been verified yet (and
    /// no earlier merge for it has a verdict).
    Verifying,
    Won,
    Slipped,
    Unmeasured,
}

impl PainState {
    pub fn word(self) -> &'static str {
        match self {
            PainState::Targeted => "targeted",
            PainState::Verifying => "verifying",
            PainState::Won => "won",
            PainState::Slipped => "slipped",
            PainState::Unmeasured => "unmeasured",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PainRow {
    pub pain: String,
    pub state: PainState,
    /// The steps that targeted it, oldest first.
    pub steps: Vec<String>,
    /// Before → after → latest, per 1,000 spans, once verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rates: Option<crate::record::Rates>,
}

#[derive(Debug, thiserror::Error)]
pub enum OverviewError {
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    #[error(transparent)]
    Rails(#[from] crate::rails::RailsError),
}

impl crate::error::Coded for OverviewError {
    fn code(&self) -> &'static str {
        match self {
            OverviewError::Journal(e) => e.code(),
            OverviewError::Rails(e) => e.code(),
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            OverviewError::Journal(e) => e.hint(),
            OverviewError::Rails(e) => e.hint(),
        }
    }
    fn hints(&self) -> Vec<String> {
        match self {
            OverviewError::Journal(e) => e.hints(),
            OverviewError::Rails(e) => e.hints(),
        }
    }
    fn snippet(&self) -> Option<String> {
        match self {
            OverviewError::Rails(e) => crate::error::Coded::snippet(e),
            OverviewError::Journal(_) => None,
        }
    }
}

/// The overview of the loop in `ws`, read without writing anything.
pub fn read(ws: &Workspace) -> Result<Overview, OverviewError> {
    let history = {
        let mut h = History::keep_all();
        h.fold_entries(crate::journal::read_only(ws)?)?;
        h
    };
    let rails = crate::rails::Rails::load(ws)?;
    Ok(build(ws, &history, &rails, crate::clock::now()))
}

/// The overview of `history` under `rails` at `now`.
pub fn build(
    ws: &Workspace,
    history: &History,
    rails: &crate::rails::Rails,
    now: chrono::DateTime<chrono::Utc>,
) -> Overview {
    let steps = history.steps();
    let utility = steps
        .iter()
        .filter(|s| s.outcome().is_scored())
        .filter_map(|s| {
            Some(UtilityPoint {
                id: s.id.clone(),
                at: crate::clock::stamp(s.finished),
                utility: s.utility()?,
                outcome: s.outcome(),
                provider: s.pick.provider.clone(),
            })
        })
        .collect();
    let mut days: BTreeMap<String, Day> = BTreeMap::new();
    for s in steps {
        let date = s.finished.date_naive().to_string();
        let day = days.entry(date.clone()).or_insert_with(|| Day { date, ..Day::default() });
        if s.outcome() == Outcome::Merged {
            day.merges += 1;
        }
        if let Some(g) = &s.body.gate2 {
            if g.by == "auto" {
                day.auto_merges += u64::from(s.outcome() == Outcome::Merged);
            } else if matches!(g.decision, Choice::Approve | Choice::Reject) {
                day.human_decisions += 1;
            }
        }
    }
    let stats = history.provider_stats();
    let tiers = crate::trust::tiers(history, &rails.trust);
    let providers = stats
        .iter()
        .map(|(name, st)| ProviderRow {
            name: name.clone(),
            picks: st.picks,
            merges: st.merged,
            reverts: st.reverted,
            won: st.won,
            slipped: st.slipped,
            mean_utility: st.mean_utility,
            tier: tiers.get(name).and_then(|t| rails.trust.tiers.get(t.tier)).map(|t| t.name.clone()),
        })
        .collect();
    let mut pains: Vec<PainRow> = Vec::new();
    for s in steps {
        let Some(pain) = s.pain() else { continue };
        let state = match (s.outcome(), s.verified.as_ref().map(|v| v.verdict)) {
            (Outcome::Merged, Some(Verdict::Win)) => PainState::Won,
            (Outcome::Merged, Some(Verdict::Slipped)) => PainState::Slipped,
            (Outcome::Merged, Some(_)) => PainState::Unmeasured,
            (Outcome::Merged, None) if s.reverted.is_none() => PainState::Verifying,
            _ => PainState::Targeted,
        };
        let rates = s.verified.as_ref().and_then(|v| v.rates);
        let verdict = |st: PainState| matches!(st, PainState::Won | PainState::Slipped | PainState::Unmeasured);
        match pains.iter_mut().find(|p| p.pain == pain) {
            Some(p) => {
                p.steps.push(s.id.clone());
                // The latest verdict decides; a merge still being verified
                // only moves a pain that has none yet.
                if verdict(state) || (!verdict(p.state) && state == PainState::Verifying) {
                    p.state = state;
                    p.rates = rates.or(p.rates);
                }
            }
            None => pains.push(PainRow { pain: pain.to_string(), state, steps: vec![s.id.clone()], rates }),
        }
    }
    Overview {
        generated: crate::clock::stamp(now),
        utility,
        days: days.into_values().collect(),
        providers,
        pending: crate::step::peek::pending(ws, history),
        watchdog: crate::watchdog::reading(history, &rails.watchdog, now),
        pains,
        steps: steps.len() as u64,
    }
}

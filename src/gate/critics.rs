//! Model critics in Gate 1 (DESIGN §8; seed 003 principle 6: optional,
//! distinct, capped).
//!
//! `[critics.NAME] provider = "…", weight ≤ 0.1, max_calls_per_day`: after
//! the rules attest, each configured critic is asked about the proposal,
//! bound to its packet hash, and its verdict is recorded as
//! `critic:NAME` beside the rules' (with its provider, weight and cost).
//!
//! | | what it does |
//! |---|---|
//! | never the proposer | a critic whose provider proposed is not asked (and is not required) |
//! | never decides alone | an objection cannot reject and an attestation cannot approve: Gate 2 still decides |
//! | an objection | takes the proposal out of auto-merge and is shown first at Gate 2 (code `CRITIC_OBJECTS`) |
//! | auto-merge | needs every configured critic (that may be asked) to attest; one not asked (at its cap, unavailable, failed) has not attested |
//! | the utility | `(1 − Σw)·u + Σ w·v` with `v` = 1 for attest, 0 for object: a capped signal, its weights recorded in the entry |
//! | caps and cost | a critic's calls count against its own `max_calls_per_day` and its provider's daily caps, from the log |

use std::time::Duration;

use crate::history::History;
use crate::propose::provider::model::critic::{Critique, Review};
use crate::propose::provider::{Failure, Generation, Surroundings};
use crate::rails::{self, Rails};
use crate::record::Stance;
use crate::record::{Cost, VerdictRecord};

/// The code of a critic's objection.
pub const CRITIC_OBJECTS: &str = "CRITIC_OBJECTS";

/// One critic's part in Gate 1.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// It answered.
    Verdict { name: String, provider: String, weight: f64, critique: Critique, cost: Cost },
    /// It was not asked (or could not answer), and why: it has not attested.
    Skipped { name: String, reason: String, cost: Cost },
    /// Its provider proposed: not applicable.
    Proposer { name: String },
}

impl Outcome {
    /// The record for the log, when there is something to record.
    pub fn record(&self) -> Option<VerdictRecord> {
        match self {
            Outcome::Verdict { name, provider, weight, critique, cost } => Some(VerdictRecord {
                by: format!("critic:{name}"),
                verdict: if critique.attest { Stance::Attest } else { Stance::Object },
                code: (!critique.attest).then(|| CRITIC_OBJECTS.to_string()),
                reason: Some(critique.reason.clone()),
                provider: Some(provider.clone()),
                weight: Some(*weight),
                cost: Some(cost.clone()),
            }),
            Outcome::Skipped { name, reason, cost } => Some(VerdictRecord {
                by: format!("critic:{name}"),
                verdict: Stance::Skipped,
                code: None,
                reason: Some(reason.clone()),
                provider: None,
                weight: None,
                cost: (cost.calls > 0).then(|| cost.clone()),
            }),
            Outcome::Proposer { .. } => None,
        }
    }

    /// Whether this critic lets auto-merge go ahead.
    pub fn allows_auto_merge(&self) -> bool {
        matches!(self, Outcome::Verdict { critique: Critique { attest: true, .. }, .. } | Outcome::Proposer { .. })
    }
}

/// Asks every configured critic about `review`. `proposer` is the
/// proposing provider; `history` and `now` decide the caps.
pub fn ask_all(
    rails: &Rails,
    history: &History,
    proposer: &str,
    review: &Review<'_>,
    env: &Surroundings,
    hooks: &mut dyn Generation,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Outcome> {
    let providers = crate::propose::provider::roster::configured(rails);
    rails
        .critics
        .values()
        .map(|c| {
            let skipped = |reason: String| Outcome::Skipped { name: c.name.clone(), reason, cost: Cost::default() };
            if c.provider == proposer {
                return Outcome::Proposer { name: c.name.clone() };
            }
            let Some(cfg) = providers.iter().find(|p| p.name == c.provider) else {
                return skipped(format!("provider {} is not configured", c.provider));
            };
            if !cfg.enabled {
                return skipped(format!("provider {} is disabled", c.provider));
            }
            let calls = history.critic_calls_on_day(&c.name, now);
            if calls >= c.max_calls_per_day as u64 {
                return skipped(format!("critic call cap reached: {calls} of {} calls today", c.max_calls_per_day));
            }
            if let Some(why) = crate::propose::provider::roster::at_cap(cfg, history, now) {
                return skipped(format!("provider {}: {why}", c.provider));
            }
            let (wire, endpoint) = match &cfg.kind {
                rails::ProviderKind::Ollama { endpoint } => (crate::propose::provider::model::Wire::Ollama, endpoint),
                rails::ProviderKind::OpenAi { endpoint } => (crate::propose::provider::model::Wire::OpenAi, endpoint),
                other => return skipped(format!("provider {} is of kind {}, not a model", c.provider, other.name())),
            };
            let model = crate::propose::provider::model::Model::new(&cfg.name, wire, endpoint.clone(), cfg.timeout_s);
            if let Err(why) =
                crate::propose::provider::model::http::reachable(&endpoint.url, Duration::from_millis(500))
            {
                return skipped(format!("provider {} is unavailable: {why}", c.provider));
            }
            let env = Surroundings {
                allowance: crate::propose::provider::roster::allowance(cfg, history, now),
                ..env.clone()
            };
            let answer = model.critique(review, &env, hooks);
            let cost = crate::propose::provider::Provider::spent(&model);
            match answer {
                Ok(critique) => Outcome::Verdict {
                    name: c.name.clone(),
                    provider: c.provider.clone(),
                    weight: c.weight,
                    critique,
                    cost,
                },
                Err(f @ Failure::OverBudget { .. }) | Err(f) => {
                    Outcome::Skipped { name: c.name.clone(), reason: format!("no verdict: {f}"), cost }
                }
            }
        })
        .collect()
}

/// Gate 1's critic part, as the step calls it once the rules attest.
#[allow(clippy::too_many_arguments)]
pub fn gate(
    rails: &Rails,
    history: &History,
    proposer: &str,
    packet: &str,
    rationale: &str,
    path: &str,
    before: &str,
    after: &str,
    intent: &str,
    root: &std::path::Path,
    hooks: &mut dyn Generation,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Outcome> {
    if rails.critics.is_empty() {
        return Vec::new();
    }
    let diff = similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string();
    let review = Review { packet, rationale, path, before, after, diff: &diff, intent };
    let env = Surroundings {
        root: root.to_path_buf(),
        interactive: false,
        patch_file: None,
        step_id: String::new(),
        cancel: Default::default(),
        allowance: None,
        // Critics are model calls: they start no process.
        sandbox: crate::sandbox::Policy::new(root),
        workspace: None,
    };
    ask_all(rails, history, proposer, &review, &env, hooks, now)
}

/// The utility with the critics' capped signal blended in:
/// `(1 − Σw)·u + Σ w·v` over the critics that answered.
pub fn blend(utility: f64, records: &[VerdictRecord]) -> f64 {
    let critics: Vec<(f64, f64)> = records
        .iter()
        .filter(|r| r.by.starts_with("critic:"))
        .filter_map(|r| {
            let w = r.weight?.clamp(0.0, 0.1);
            match r.verdict {
                Stance::Attest => Some((w, 1.0)),
                Stance::Object => Some((w, 0.0)),
                Stance::Skipped | Stance::Other => None,
            }
        })
        .collect();
    let total: f64 = critics.iter().map(|(w, _)| w).sum::<f64>().min(1.0);
    crate::score::round((1.0 - total) * utility + critics.iter().map(|(w, v)| w * v).sum::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(verdict: &str, weight: f64) -> VerdictRecord {
        VerdictRecord {
            by: "critic:c".into(),
            verdict: serde_json::from_value(serde_json::json!(verdict)).unwrap(),
            code: None,
            reason: None,
            provider: Some("p".into()),
            weight: Some(weight),
            cost: None,
        }
    }

    #[test]
    fn a_critic_is_a_capped_signal_in_the_utility() {
        assert_eq!(blend(0.8, &[]), 0.8, "no critic, no change");
        assert_eq!(blend(0.8, &[record("attest", 0.1)]), 0.82);
        assert_eq!(blend(0.8, &[record("object", 0.1)]), 0.72);
        assert_eq!(blend(0.8, &[record("object", 0.9)]), 0.72, "the weight is capped at 0.1");
        assert_eq!(blend(0.8, &[record("skipped", 0.1)]), 0.8, "a critic that did not answer does not count");
    }

    #[test]
    fn only_an_attestation_allows_auto_merge() {
        let attest = Outcome::Verdict {
            name: "c".into(),
            provider: "p".into(),
            weight: 0.1,
            critique: Critique { attest: true, reason: "fine".into() },
            cost: Cost::default(),
        };
        assert!(attest.allows_auto_merge());
        let object = Outcome::Verdict {
            name: "c".into(),
            provider: "p".into(),
            weight: 0.1,
            critique: Critique { attest: false, reason: "adds a typo".into() },
            cost: Cost::default(),
        };
        assert!(!object.allows_auto_merge());
        assert_eq!(object.record().unwrap().code.as_deref(), Some(CRITIC_OBJECTS));
        let skipped = Outcome::Skipped { name: "c".into(), reason: "at cap".into(), cost: Cost::default() };
        assert!(!skipped.allows_auto_merge(), "a critic not asked has not attested");
        assert!(Outcome::Proposer { name: "c".into() }.allows_auto_merge(), "the proposer's own critic does not apply");
        assert!(Outcome::Proposer { name: "c".into() }.record().is_none());
    }
}

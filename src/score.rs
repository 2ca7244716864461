//! Signals and utility (DESIGN §7, seed 003 "Seed Utility").
//!
//! ```text
//! utility = w.ci_pass*ci_pass + w.path_ok*path_ok + w.diff_ratio*(1 - diff_ratio)
//!         + w.atomic_ok*atomic_ok + w.left_next_steps*left_next_steps + w.human_score*human_score
//! ```
//!
//! Everything here is a pure function: the step computes signals, this module
//! turns them into a utility, and the revert cap is applied by amendments.

use serde::{Deserialize, Serialize};

/// The six signals of one step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signals {
    /// 1 when the checks passed.
    pub ci_pass: f64,
    /// 1 when the patch's path passed path safety.
    pub path_ok: f64,
    /// `min(1, lines_changed / budget.max_lines)`.
    pub diff_ratio: f64,
    /// 1 when the patch is one op on one file within budget.
    pub atomic_ok: f64,
    /// 1 when the proposal left next steps.
    pub left_next_steps: f64,
    /// The human's score in [0, 1].
    pub human_score: f64,
}

/// Utility weights, from `[utility]` in `config/rails.toml`. They sum to 1.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    pub ci_pass: f64,
    pub path_ok: f64,
    pub diff_ratio: f64,
    pub atomic_ok: f64,
    pub left_next_steps: f64,
    pub human_score: f64,
}

impl Weights {
    /// The seed weights of the Loop Protocol.
    pub const SEED: Weights = Weights {
        ci_pass: 0.30,
        path_ok: 0.15,
        diff_ratio: 0.15,
        atomic_ok: 0.10,
        left_next_steps: 0.10,
        human_score: 0.20,
    };

    pub fn sum(&self) -> f64 {
        self.ci_pass + self.path_ok + self.diff_ratio + self.atomic_ok + self.left_next_steps + self.human_score
    }
}

/// One weighted term of the utility, for display.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Term {
    pub signal: &'static str,
    pub weight: f64,
    /// The signal's value as it enters the sum (`1 - diff_ratio` for diff_ratio).
    pub value: f64,
    pub contribution: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SignalError {
    #[error("signal {name} is {value}, but must be 0 or 1")]
    NotBinary { name: &'static str, value: f64 },
    #[error("signal {name} is {value}, but must be within [0, 1]")]
    OutOfRange { name: &'static str, value: f64 },
}

impl crate::error::Coded for SignalError {
    fn code(&self) -> &'static str {
        "BAD_SIGNALS"
    }
    fn hint(&self) -> Option<String> {
        Some(
            "ci_pass, path_ok, atomic_ok and left_next_steps are 0 or 1; diff_ratio and human_score lie in [0, 1]"
                .into(),
        )
    }
}

impl Signals {
    /// Checks that each signal lies in its domain.
    pub fn validate(&self) -> Result<(), SignalError> {
        for (name, value) in [
            ("ci_pass", self.ci_pass),
            ("path_ok", self.path_ok),
            ("atomic_ok", self.atomic_ok),
            ("left_next_steps", self.left_next_steps),
        ] {
            if value != 0.0 && value != 1.0 {
                return Err(SignalError::NotBinary { name, value });
            }
        }
        for (name, value) in [("diff_ratio", self.diff_ratio), ("human_score", self.human_score)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(SignalError::OutOfRange { name, value });
            }
        }
        Ok(())
    }

    /// The weighted terms, in the formula's order.
    pub fn terms(&self, w: &Weights) -> [Term; 6] {
        let term = |signal, weight: f64, value: f64| Term { signal, weight, value, contribution: weight * value };
        [
            term("ci_pass", w.ci_pass, self.ci_pass),
            term("path_ok", w.path_ok, self.path_ok),
            term("diff_ratio", w.diff_ratio, 1.0 - self.diff_ratio),
            term("atomic_ok", w.atomic_ok, self.atomic_ok),
            term("left_next_steps", w.left_next_steps, self.left_next_steps),
            term("human_score", w.human_score, self.human_score),
        ]
    }
}

/// The utility of `signals` under `weights`.
pub fn utility(signals: &Signals, weights: &Weights) -> f64 {
    let sum: f64 = signals.terms(weights).iter().map(|t| t.contribution).sum();
    round(sum)
}

/// `min(1, lines_changed / max_lines)`; a zero budget counts every change as full.
pub fn diff_ratio(lines_changed: u64, max_lines: u64) -> f64 {
    if max_lines == 0 {
        return if lines_changed == 0 { 0.0 } else { 1.0 };
    }
    round((lines_changed as f64 / max_lines as f64).min(1.0))
}

/// The revert cap: a step reverted within the window counts at most `cap`.
/// `hours_to_revert` is the time from the step's merge to its revert.
pub fn revert_capped(utility: f64, hours_to_revert: f64, window_hours: f64, cap: f64) -> f64 {
    if hours_to_revert < window_hours { utility.min(cap) } else { utility }
}

/// Rounds to 12 decimal places, so sums like 0.30 + 0.15 + ... print as
/// the number a person would compute (0.985, not 0.9849999999999999).
pub fn round(x: f64) -> f64 {
    (x * 1e12).round() / 1e12
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(lines: u64, human: f64) -> Signals {
        Signals {
            ci_pass: 1.0,
            path_ok: 1.0,
            diff_ratio: diff_ratio(lines, 120),
            atomic_ok: 1.0,
            left_next_steps: 1.0,
            human_score: human,
        }
    }

    #[test]
    fn seed_example_scores_0_985() {
        // DESIGN §7: a clean, approved 12-line patch (budget 120) with next
        // steps and human score 1.0: 0.30+0.15+0.135+0.10+0.10+0.20.
        let s = clean(12, 1.0);
        assert_eq!(s.diff_ratio, 0.1);
        assert_eq!(utility(&s, &Weights::SEED), 0.985);
    }

    #[test]
    fn design_log_example_scores_0_945() {
        // DESIGN §9's entry: diff_ratio 0.033 (4 of 120 lines), human 0.8.
        let s = Signals { diff_ratio: 0.033, human_score: 0.8, ..clean(0, 0.0) };
        // 0.30 + 0.15 + 0.15*0.967 + 0.10 + 0.10 + 0.16 = 0.95505
        assert_eq!(utility(&s, &Weights::SEED), 0.95505);
    }

    #[test]
    fn rejected_proposal_scores_with_the_signals_it_has() {
        // Path objection: ci_pass 0, path_ok 0, human 0; 30 lines, next steps left.
        let s = Signals {
            ci_pass: 0.0,
            path_ok: 0.0,
            diff_ratio: 0.25,
            atomic_ok: 1.0,
            left_next_steps: 1.0,
            human_score: 0.0,
        };
        // 0.15*0.75 + 0.10 + 0.10 = 0.3125
        assert_eq!(utility(&s, &Weights::SEED), 0.3125);
    }

    #[test]
    fn all_zero_signals_still_earn_the_diff_term() {
        let s = Signals {
            ci_pass: 0.0,
            path_ok: 0.0,
            diff_ratio: 0.0,
            atomic_ok: 0.0,
            left_next_steps: 0.0,
            human_score: 0.0,
        };
        assert_eq!(utility(&s, &Weights::SEED), 0.15);
    }

    #[test]
    fn diff_ratio_is_capped_at_one() {
        assert_eq!(diff_ratio(500, 120), 1.0);
        assert_eq!(diff_ratio(120, 120), 1.0);
        assert_eq!(diff_ratio(60, 120), 0.5);
        assert_eq!(diff_ratio(0, 0), 0.0);
        assert_eq!(diff_ratio(1, 0), 1.0);
    }

    #[test]
    fn revert_cap_applies_only_inside_the_window() {
        assert_eq!(revert_capped(0.985, 3.0, 24.0, 0.2), 0.2);
        assert_eq!(revert_capped(0.985, 24.0, 24.0, 0.2), 0.985);
        assert_eq!(revert_capped(0.1, 1.0, 24.0, 0.2), 0.1);
    }

    #[test]
    fn weights_are_used_not_assumed() {
        let w = Weights {
            ci_pass: 1.0,
            path_ok: 0.0,
            diff_ratio: 0.0,
            atomic_ok: 0.0,
            left_next_steps: 0.0,
            human_score: 0.0,
        };
        assert_eq!(utility(&clean(12, 0.3), &w), 1.0);
        assert!((Weights::SEED.sum() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn signals_outside_their_domain_are_refused() {
        let s = Signals { ci_pass: 0.5, ..clean(1, 1.0) };
        assert_eq!(s.validate(), Err(SignalError::NotBinary { name: "ci_pass", value: 0.5 }));
        let s = Signals { human_score: 1.5, ..clean(1, 1.0) };
        assert!(matches!(s.validate(), Err(SignalError::OutOfRange { name: "human_score", .. })));
    }
}

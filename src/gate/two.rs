//! Gate 2: the human gate (DESIGN §3 "Approve"; seed 003 principle 2).
//!
//! A human sees what is being approved — the provider, the rationale, the
//! focus, Gate 1's verdicts, the diff of the file as Gate 1 judged it, the
//! predicted utility — and answers approve (with a score), reject, skip
//! (leave it pending) or quit. A human act never approves something the
//! human was not shown: whoever implements [`Gate2`] is handed the
//! [`Review`] and must show it before it decides.
//!
//! The one exception is the narrow, opt-in auto-merge of `[gate.auto_merge]`:
//! [`auto_merge`] says whether every one of its conditions holds, and the
//! entry then records `gate2.by = "auto"`.

use crate::rails::{AutoMerge, Rails};
use crate::record::VerdictRecord;

/// The human score an auto-merged patch gets: no human scored it.
pub const AUTO_SCORE: f64 = 0.5;

/// A human's answer at Gate 2.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Approve {
        score: f64,
    },
    Reject {
        reason: Option<String>,
    },
    /// Leave it pending.
    Skip,
    /// Leave it pending and stop.
    Quit,
    /// The human pressed Ctrl-C at the question: stop. A fresh step is
    /// logged `skipped` (reason `interrupted`); a proposal that was already
    /// pending stays pending.
    Interrupt,
    /// The human edited the proposal (`[e]dit`): this is the proposal as
    /// they saved it. It goes through Gate 1 again in full, and is shown
    /// again before anything is decided.
    Edit {
        proposal: serde_json::Value,
    },
}

/// What the human sees at Gate 2. Every string in it that a provider
/// supplied is raw: the terminal sanitises it when it shows it.
#[derive(Clone, Debug)]
pub struct Review<'a> {
    pub id: &'a str,
    pub provider: &'a str,
    pub rationale: &'a str,
    pub focus: &'a str,
    pub verdicts: &'a [VerdictRecord],
    pub op: &'a str,
    pub path: &'a str,
    /// The file before (as Gate 1 judged it: the base commit's bytes) and after.
    pub old: &'a str,
    pub new: &'a str,
    pub added: u64,
    pub removed: u64,
    pub next_steps: &'a [String],
    /// The utility if the checks pass and the human scores 1.
    pub predicted: f64,
    /// The score offered as the default when the human approves.
    pub default_score: f64,
}

/// Gate 2, as the terminal (or a test) answers it.
pub trait Gate2 {
    /// Shows `review` and returns the human's decision about it.
    fn decide(&mut self, review: &Review<'_>) -> Decision;
}

/// What the auto-merge rule looks at.
#[derive(Clone, Copy, Debug)]
pub struct AutoMergeCase<'a> {
    pub path: &'a str,
    /// Lines added plus removed.
    pub lines: u64,
    /// The provider's tier index.
    pub tier: usize,
    pub predicted: f64,
    /// The step was run by the loop itself (not a submission or a remote candidate).
    pub loop_step: bool,
    /// A remote candidate of the agents API (auto-merged only when the rails
    /// name `remote = true` in `[gate.auto_merge]`, and quorum holds).
    pub remote: bool,
}

/// Whether `[gate.auto_merge]` lets `case` merge without a human, and if
/// not, the first condition that fails (`None` when it may).
pub fn auto_merge(rails: &Rails, case: AutoMergeCase<'_>) -> Result<(), String> {
    let am: &AutoMerge = &rails.gate.auto_merge;
    if !am.enabled {
        return Err("auto-merge is off".into());
    }
    if !(case.loop_step || case.remote && am.remote) {
        return Err("only steps the loop ran itself (or remote candidates, with `remote = true`) can auto-merge".into());
    }
    if !am.paths.is_match(case.path) {
        return Err(format!("{} is outside [gate.auto_merge] paths", case.path));
    }
    if rails.trust.runs_on_use(case.path) {
        return Err(format!("{} is a file tools execute on use; it never auto-merges", case.path));
    }
    if case.lines > am.max_lines {
        return Err(format!("{} lines changed, over [gate.auto_merge] max_lines = {}", case.lines, am.max_lines));
    }
    if case.tier < am.min_tier {
        return Err("the provider is below [gate.auto_merge] min_tier".into());
    }
    if case.predicted < am.min_predicted_utility {
        return Err(format!(
            "predicted utility {:.3} is under [gate.auto_merge] min_predicted_utility = {}",
            case.predicted, am.min_predicted_utility
        ));
    }
    Ok(())
}

//! The shapes of the step log's `step` and `amend` entries (DESIGN §9).
//!
//! `step::run` is the only writer of step entries; everything that reads
//! the log's history (selection statistics, trust tiers, the watchdog,
//! `ratchet status`) reads these types back.

use serde::{Deserialize, Serialize};

use crate::pick::Reason;
use crate::score::Signals;

use crate::approve::EVALUATORS_VERSION;

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Merged,
    Rejected,
    Failed,
    Pending,
    Skipped,
    Noop,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Merged => "merged",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
            Outcome::Pending => "pending",
            Outcome::Skipped => "skipped",
            Outcome::Noop => "noop",
        }
    }

    /// Whether the step is settled and counts in the statistics.
    pub fn is_scored(self) -> bool {
        matches!(self, Outcome::Merged | Outcome::Rejected | Outcome::Failed)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    pub ratchet: String,
    pub evaluators: String,
}

impl Versions {
    pub fn current() -> Versions {
        Versions { ratchet: env!("CARGO_PKG_VERSION").to_string(), evaluators: EVALUATORS_VERSION.to_string() }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PickRecord {
    pub provider: String,
    pub reason: Reason,
    pub seed: String,
    /// `pain:<id>`, `next:<step-id>#<n>` or `intent`.
    pub focus: String,
    /// Set when the focus came from telemetry and telemetry was unreachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Providers left out of the pick because they were at a daily cap, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capped: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProposalRecord {
    pub packet: String,
    pub rationale: String,
    pub op: String,
    pub path: String,
    pub added: u64,
    pub removed: u64,
    pub next_steps: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerdictRecord {
    pub by: String,
    pub verdict: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a critic (`critic:NAME`): the provider that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// For a critic: its weight in the utility (at most 0.1), from the rails of this entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// For a critic: what asking it cost (counted against its provider's caps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gate2Record {
    /// The approver's git identity, `auto`, or `none` when nobody was asked.
    pub by: String,
    /// `approve`, `reject` or `skip`.
    pub decision: String,
    pub human_score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChecksRecord {
    pub command: String,
    /// The exit status; absent when killed by the timeout or a signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    pub secs: f64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
    /// The repository-relative path of the captured output.
    pub log: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApplyRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<ChecksRecord>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default)]
    pub calls: u64,
}

/// The body of a `step` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepBody {
    pub intent: String,
    pub rails: String,
    pub versions: Versions,
    /// The commit the proposal was made against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    pub pick: PickRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<ProposalRecord>,
    #[serde(default)]
    pub gate1: Vec<VerdictRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate2: Option<Gate2Record>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply: Option<ApplyRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signals: Option<Signals>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utility: Option<f64>,
    #[serde(default)]
    pub cost: Cost,
    pub outcome: Outcome,
    /// Why the step ended as it did, in a word: `provider_timeout`,
    /// `checks_failed`, `interrupted`, `stale`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A sentence for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The file a provider looked at and left alone (a model's noop), so
    /// later steps can move on to another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// The body of an `amend` entry: a later fact that changes how a step counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AmendBody {
    /// The id of the amended step.
    pub step: String,
    /// `revert`.
    pub reason: String,
    /// The commit that reverted the step's commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// `ratchet revert`, or `git history` for a revert found in git.
    pub detected_by: String,
    /// Hours from the merge to the revert.
    pub hours: f64,
    pub previous_utility: f64,
    /// The utility after the amendment (capped when inside the window).
    pub utility: f64,
    pub capped: bool,
}

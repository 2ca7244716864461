//! The bodies of the step log's entries (DESIGN §9), one type per kind.
//!
//! | kind | body | written by |
//! |---|---|---|
//! | `step` | [`StepBody`] | [`crate::step`] only (its [`crate::step::Seal`]) |
//! | `amend` | [`AmendBody`] | [`crate::step`] only |
//! | `heartbeat` | [`HeartbeatBody`] | [`crate::step`] only (`step::heartbeat`) |
//! | `watchdog` | [`WatchdogBody`] | [`crate::step`] only (`step::heartbeat`) |
//! | `rails` | [`RailsBody`] | [`crate::rails::accept`], [`crate::init`] |
//! | `intent` | [`IntentBody`] | [`crate::intent::set`] |
//! | `recovery` | [`RecoveryBody`] | [`crate::journal`] itself, when it quarantines a torn line |
//! | `agents` | [`crate::agents::ledger::Anchor`] | the agents API ([`crate::serve`]) and Gate 2's hook, anchoring the bots' signed writes |
//!
//! An entry's kind follows from its body's type ([`Body::KIND`]), and who may
//! write it from the type too: [`crate::journal::Journal::append`] takes the
//! body's [`Body::Permit`], and the step's kinds have a permit only the step
//! can make. Readers deserialize these types ([`AnyBody::parse`]); nothing
//! picks fields out of JSON by path.
//!
//! The closed sets of words (outcomes, verdicts, Gate 2 decisions, reasons)
//! are enums. Each keeps a catch-all (`#[serde(other)]`) so that a log
//! written by another version still reads.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::gate::EVALUATORS_VERSION;
use crate::journal::Kind;
use crate::pick::Reason as PickReason;
use crate::score::Signals;

/// A log entry's body: which kind it is, and what it takes to write one.
pub trait Body: Serialize + DeserializeOwned {
    const KIND: Kind;
    /// What a writer must hand over: `()` for kinds any domain module may
    /// write, [`crate::step::Seal`] for the step's own.
    type Permit;
}

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

/// Why a step ended as it did, in a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The provider could not be asked.
    ProviderUnavailable,
    ProviderTimeout,
    /// Garbage, nothing, a crash.
    ProviderInvalidOutput,
    ProviderOverBudget,
    /// Ctrl-C stopped the provider (older logs; now `interrupted`).
    ProviderCancelled,
    /// The provider had nothing to propose.
    Noop,
    /// The same proposal already waits for a human.
    AlreadyPending,
    /// A Gate 1 rule objected.
    Gate1,
    /// Nobody was there to ask at Gate 2.
    NoHuman,
    /// The human left it pending.
    Skipped,
    /// The human rejected it.
    Human,
    /// The target had uncommitted changes the patch would have committed.
    TargetDirty,
    /// The provider or the checks changed something besides the patch.
    UnexpectedChanges,
    /// The patch engine refused or failed.
    ApplyFailed,
    ChecksFailed,
    ChecksTimeout,
    /// The checks could not be started (in their sandbox, say).
    ChecksUnavailable,
    /// HEAD moved away from the step's base while it ran.
    HeadMoved,
    CommitFailed,
    /// The entry describing the step would not fit in the log.
    EntryTooLarge,
    /// The tree moved since the proposal and Gate 1 now objects.
    Stale,
    /// The pending file no longer hashes to the packet the log names.
    PendingTampered,
    /// A pending proposal replaced by a revision the bots adopted.
    Revised,
    /// Ctrl-C stopped the step (the provider, the checks or Gate 2), or the
    /// process died mid-step and recovery finished it.
    Interrupted,
    /// A reason this version does not know (a newer log).
    #[serde(other)]
    Other,
}

impl Reason {
    pub fn word(self) -> &'static str {
        match self {
            Reason::ProviderUnavailable => "provider_unavailable",
            Reason::ProviderTimeout => "provider_timeout",
            Reason::ProviderInvalidOutput => "provider_invalid_output",
            Reason::ProviderOverBudget => "provider_over_budget",
            Reason::ProviderCancelled => "provider_cancelled",
            Reason::Noop => "noop",
            Reason::AlreadyPending => "already_pending",
            Reason::Gate1 => "gate1",
            Reason::NoHuman => "no_human",
            Reason::Skipped => "skipped",
            Reason::Human => "human",
            Reason::TargetDirty => "target_dirty",
            Reason::UnexpectedChanges => "unexpected_changes",
            Reason::ApplyFailed => "apply_failed",
            Reason::ChecksFailed => "checks_failed",
            Reason::ChecksTimeout => "checks_timeout",
            Reason::ChecksUnavailable => "checks_unavailable",
            Reason::HeadMoved => "head_moved",
            Reason::CommitFailed => "commit_failed",
            Reason::EntryTooLarge => "entry_too_large",
            Reason::Stale => "stale",
            Reason::PendingTampered => "pending_tampered",
            Reason::Revised => "revised",
            Reason::Interrupted => "interrupted",
            Reason::Other => "other",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

/// Whether an evaluator vouches for a proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stance {
    Attest,
    Object,
    /// A critic that was not asked (at its cap, unavailable): no verdict.
    Skipped,
    #[serde(other)]
    Other,
}

impl Stance {
    pub fn word(self) -> &'static str {
        match self {
            Stance::Attest => "attest",
            Stance::Object => "object",
            Stance::Skipped => "skipped",
            Stance::Other => "other",
        }
    }
}

/// What the human (or the auto-merge rule) chose at Gate 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    Approve,
    Reject,
    Skip,
    #[serde(other)]
    Other,
}

impl Choice {
    pub fn word(self) -> &'static str {
        match self {
            Choice::Approve => "approve",
            Choice::Reject => "reject",
            Choice::Skip => "skip",
            Choice::Other => "other",
        }
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
    pub reason: PickReason,
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
    pub verdict: Stance,
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

impl VerdictRecord {
    pub fn attests(&self) -> bool {
        self.verdict == Stance::Attest
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gate2Record {
    /// The approver's git identity, or `auto`.
    pub by: String,
    pub decision: Choice,
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
    /// What the checks ran under. Absent in entries older than the sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<crate::sandbox::Enforced>,
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
    /// What the provider's process ran under (`enforced` and its layers, or
    /// `off` when the rails turned the sandbox off); absent for providers
    /// that start no process and in entries older than the sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<crate::sandbox::Enforced>,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// A sentence for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The file a provider looked at and left alone (a model's noop), so
    /// later steps can move on to another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The passage of a file a model provider was shown (proofreading
    /// prose), so later steps move on through the docs instead of
    /// re-reading it while its text is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passage: Option<Passage>,
    /// Where a `command` provider's proposal was found when its answer was
    /// not bare JSON: `fenced` (one Markdown code fence) or `embedded` (one
    /// JSON object amid prose).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extracted: Option<crate::propose::provider::Extracted>,
}

/// A passage of a file a provider was shown: its path, its lines (1-based,
/// inclusive) and the SHA-256 of its text (hex, the first 16 digits), so a
/// passage reviewed before is known again while its text is unchanged,
/// wherever it moved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passage {
    pub path: String,
    pub lines: [u64; 2],
    pub sha256: String,
}

impl Body for StepBody {
    const KIND: Kind = Kind::Step;
    type Permit = crate::step::Seal;
}

/// Why an amendment changes how a step counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmendReason {
    /// The step's commit was reverted.
    Revert,
    /// The telemetry window after the merge closed, and told whether the
    /// pain the step targeted fell and stayed down ([`Verdict`]).
    Verified,
    #[serde(other)]
    Other,
}

/// What the window after a merge said about the pain it targeted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The pain's rate fell after the merge and stayed below its rate before.
    Win,
    /// It did not fall, or it came back: counts against the provider like a revert.
    Slipped,
    /// There was nothing to compare (no rate before the merge, or the server
    /// had no record of it).
    Unmeasured,
    #[serde(other)]
    Other,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Win => "win",
            Verdict::Slipped => "slipped",
            Verdict::Unmeasured => "unmeasured",
            Verdict::Other => "other",
        }
    }
}

/// A pain's rates (per 1,000 spans) around a merge: the window before it,
/// the window after it, and the latest window when that lies after both.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub before: f64,
    pub after: f64,
    pub latest: f64,
}

/// Who found a revert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Detector {
    /// `ratchet revert`.
    #[serde(rename = "ratchet revert")]
    RatchetRevert,
    /// A commit in git's history whose change inverts the step's.
    #[serde(rename = "git history")]
    GitHistory,
    /// LoopKit's telemetry, read after the window following the merge.
    #[serde(rename = "loopkit")]
    Loopkit,
    #[serde(other)]
    Other,
}

/// The body of an `amend` entry: a later fact that changes how a step counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AmendBody {
    /// The id of the amended step.
    pub step: String,
    pub reason: AmendReason,
    /// The commit that reverted the step's commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub detected_by: Detector,
    /// Hours from the merge to the revert.
    pub hours: f64,
    pub previous_utility: f64,
    /// The utility after the amendment (capped when inside the window).
    pub utility: f64,
    pub capped: bool,
    /// A verification's verdict (reason `verified`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verdict>,
    /// The pain the step targeted (reason `verified`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pain: Option<String>,
    /// The window the rates were measured over (`24h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rates: Option<Rates>,
    /// A sentence for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Body for AmendBody {
    const KIND: Kind = Kind::Amend;
    type Permit = crate::step::Seal;
}

/// Why the rails changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RailsReason {
    /// `ratchet init` wrote them.
    Init,
    /// A human accepted them with `ratchet rails accept`.
    Accept,
    #[serde(other)]
    Other,
}

/// One golden file's backtest, as a `rails` entry records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GoldenRecord {
    pub file: String,
    pub tau: f64,
    pub pairs: u64,
}

/// The body of a `rails` entry: the rails version every later step runs
/// under (the lock's version must equal the last one of these).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RailsBody {
    pub reason: RailsReason,
    /// The rails version now in force.
    pub rails: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// What changed, `[{kind, path}]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<serde_json::Value>,
    /// The approver's git identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent_name: Option<String>,
    /// The workspace's id (`init` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// The checks command (`init` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub golden: Vec<GoldenRecord>,
    /// The tiers these rails grant providers from the start, provider →
    /// tier name (`tier = "..."`, and the top tier for the `human` kind).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub granted_tiers: std::collections::BTreeMap<String, String>,
}

impl Body for RailsBody {
    const KIND: Kind = Kind::Rails;
    type Permit = ();
}

/// The body of an `intent` entry: a new current intent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntentBody {
    pub name: String,
    /// blake3 of the intent's text.
    pub intent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The rails version after the change (intents are protected files).
    pub rails: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// `terminal` or `--yes`.
    pub confirmed: String,
}

impl Body for IntentBody {
    const KIND: Kind = Kind::Intent;
    type Permit = ();
}

/// The body of a `heartbeat` entry: an unattended run that could not step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatBody {
    /// The error's code.
    pub error: String,
    pub message: String,
}

impl Body for HeartbeatBody {
    const KIND: Kind = Kind::Heartbeat;
    type Permit = crate::step::Seal;
}

/// The body of a `watchdog` entry: the alarm an unattended run raised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WatchdogBody {
    /// The step that ran when the alarm was raised.
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub steps_since_merge: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours_since_merge: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_merge: Option<String>,
}

impl Body for WatchdogBody {
    const KIND: Kind = Kind::Watchdog;
    type Permit = crate::step::Seal;
}

/// Where a torn line went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quarantined {
    pub path: String,
    pub bytes: u64,
    pub hash: String,
}

/// Where the log was cut back to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TruncatedTo {
    pub seq: u64,
    pub size: u64,
}

/// The body of a `recovery` entry: a torn last line was quarantined.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecoveryBody {
    pub reason: String,
    pub quarantine: Quarantined,
    pub truncated_to: TruncatedTo,
}

impl Body for RecoveryBody {
    const KIND: Kind = Kind::Recovery;
    type Permit = crate::journal::Internal;
}

/// Any entry's body, typed by its kind.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyBody {
    Step(Box<StepBody>),
    Amend(AmendBody),
    Rails(RailsBody),
    Intent(IntentBody),
    Heartbeat(HeartbeatBody),
    Watchdog(WatchdogBody),
    Recovery(RecoveryBody),
    Agents(crate::agents::ledger::Anchor),
}

impl AnyBody {
    /// Reads the body (its JSON text) of an entry of `kind`.
    pub fn parse(kind: Kind, body: &str) -> Result<AnyBody, serde_json::Error> {
        Ok(match kind {
            Kind::Step => AnyBody::Step(Box::new(serde_json::from_str(body)?)),
            Kind::Amend => AnyBody::Amend(serde_json::from_str(body)?),
            Kind::Rails => AnyBody::Rails(serde_json::from_str(body)?),
            Kind::Intent => AnyBody::Intent(serde_json::from_str(body)?),
            Kind::Heartbeat => AnyBody::Heartbeat(serde_json::from_str(body)?),
            Kind::Watchdog => AnyBody::Watchdog(serde_json::from_str(body)?),
            Kind::Recovery => AnyBody::Recovery(serde_json::from_str(body)?),
            Kind::Agents => AnyBody::Agents(serde_json::from_str(body)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_this_version_does_not_know_still_read() {
        let r: Reason = serde_json::from_str("\"a_reason_from_the_future\"").unwrap();
        assert_eq!(r, Reason::Other);
        let v: VerdictRecord = serde_json::from_str(r#"{"by":"critic:x","verdict":"abstain"}"#).unwrap();
        assert_eq!(v.verdict, Stance::Other);
        let g: Gate2Record = serde_json::from_str(r#"{"by":"a","decision":"defer","human_score":0}"#).unwrap();
        assert_eq!(g.decision, Choice::Other);
    }

    #[test]
    fn reasons_serialise_as_their_words() {
        for r in [Reason::ProviderTimeout, Reason::Gate1, Reason::PendingTampered, Reason::HeadMoved] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.word());
        }
        assert_eq!(serde_json::to_value(Detector::GitHistory).unwrap(), "git history");
    }

    #[test]
    fn a_revert_amendment_of_an_older_log_still_reads_and_a_verification_round_trips() {
        let old: AmendBody = serde_json::from_str(
            r#"{"step":"s1","reason":"revert","commit":"c","detected_by":"git history","hours":1.0,"previous_utility":0.9,"utility":0.2,"capped":true}"#,
        )
        .unwrap();
        assert_eq!((old.reason, old.verified), (AmendReason::Revert, None));
        let v = AmendBody {
            step: "s2".into(),
            reason: AmendReason::Verified,
            commit: None,
            detected_by: Detector::Loopkit,
            hours: 25.0,
            previous_utility: 0.9,
            utility: 0.2,
            capped: true,
            verified: Some(Verdict::Slipped),
            pain: Some("pn_0123456789abcdef".into()),
            window: Some("24h".into()),
            rates: Some(Rates { before: 500.0, after: 480.0, latest: 480.0 }),
            detail: None,
        };
        let text = serde_json::to_string(&v).unwrap();
        assert!(text.contains(r#""verified":"slipped""#) && text.contains(r#""detected_by":"loopkit""#), "{text}");
        assert_eq!(serde_json::from_str::<AmendBody>(&text).unwrap(), v);
        let future: Verdict = serde_json::from_str("\"regressed\"").unwrap();
        assert_eq!(future, Verdict::Other);
    }
}

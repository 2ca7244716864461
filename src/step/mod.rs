//! One turn of the loop: Pick → Propose → Approve → Apply+Score → Log
//! (DESIGN §3; seed 003 principles 1–15).
//!
//! | phase | file |
//! |---|---|
//! | before anything: lock, rails, log, recovery | [`session`], [`inflight`] |
//! | Pick | [`select`] (over [`crate::pick`]) |
//! | Propose | [`run`] here (over [`crate::propose`]) |
//! | Approve: Gate 1, then Gate 2 or auto-merge | `approval` |
//! | a proposal waiting for a human; approving or rejecting it later | `pending` |
//! | the same, looked at by a reader beside the loop, without the lock | [`peek`] |
//! | Apply+Score: the patch, the checks, the exact commit | `apply` |
//! | what a child may not change, checked after each child | `fence` |
//! | Log: the one way a step's outcome is settled and logged | `settle` |
//! | reverts, by `ratchet revert` or found in git | `revert` |
//! | a revision the agents API's bots adopted; the opt-in remote auto-merge | `revise` |
//! | an unattended run for cron, and the watchdog's entry | `heartbeat` |
//! | Verify: a merge that targeted a pain, judged by the next telemetry window | `verify` |
//! | telemetry around a run: report steps, verify merges, read the top pain | `telemetry` |
//!
//! Invariants:
//! - The step is the only path to a merge and the only writer of `step`,
//!   `amend`, `heartbeat` and `watchdog` entries: those bodies need a
//!   [`Seal`], which only this module can make. Every public entry point
//!   starts with a [`Session`], so none can skip the lock, the rails check or
//!   the log check.
//! - Agents decide, scripts do: a provider only answers; Gate 1, the patch
//!   engine, the checks and the scoring are deterministic code.
//! - What is judged is what is shown is what is committed: Gate 1, the
//!   diff at Gate 2 and the apply all start from the base commit's bytes of
//!   the target; the commit is made from the bytes ratchet wrote, on the base
//!   recorded at the start. Nothing a child changes besides the patch goes
//!   unnoticed ([`fence`]).
//! - Every step ends in exactly one outcome and leaves exactly one entry for
//!   it; a crash at any point is finished by the next command ([`inflight`]).

pub mod inflight;
pub mod peek;

mod apply;
mod approval;
mod error;
mod fence;
mod heartbeat;
mod pending;
mod revert;
mod revise;
mod select;
mod session;
mod settle;
mod telemetry;
#[cfg(test)]
mod tests;
mod verify;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::gate::two::Gate2;
use crate::pick::Reason as PickReason;
use crate::propose::context::{self, Focus};
use crate::propose::provider::{Answer, Provider, Surroundings};
use crate::record::{Cost, Outcome, PickRecord, Reason, StepBody, Versions};
use crate::score::Signals;

pub use error::StepError;
pub use fence::{CHECKS_OUTPUTS, guarded_labels};
pub use heartbeat::{Beat, heartbeat, heartbeat_failed};
pub use inflight::{FAULT_ENV, Inflight, Phase};
pub use pending::{DecisionHook, Pending, PendingState, PendingView, decide, reject, waiting};
pub use revert::{Reverted, revert};
pub use revise::{Replaced, approve_auto, replace_pending};
pub use select::{HEARTBEAT, Standing, allowance, at_cap, configured, focus as focus_for, standings};
pub use session::Session;
pub use telemetry::Telemetry;
pub use verify::{Due, Verified, due};

use approval::consider;
use fence::Fence;
use settle::{Ending, settle};

/// The permit to write the step's own log entries ([`crate::record::Body::Permit`]);
/// only this module and its children can make one.
pub struct Seal(());

fn seal() -> Seal {
    Seal(())
}

/// Narration hooks; the CLI draws them, tests ignore them.
pub trait Progress {
    fn phase(&mut self, _phase: &str, _detail: &str) {}
    /// A model is generating: tokens so far, time since its call began.
    fn generating(&mut self, _provider: &str, _tokens: u64, _elapsed: Duration) {}
    fn generated(&mut self) {}
    fn checks_running(&mut self, _elapsed: Duration) {}
    fn checks_done(&mut self) {}
}

/// Progress that says nothing.
pub struct Quiet;
impl Progress for Quiet {}

/// The step's progress as a provider's generation hook.
pub(crate) struct Generating<'a>(pub(crate) &'a mut dyn Progress);
impl crate::propose::provider::Generation for Generating<'_> {
    fn generating(&mut self, provider: &str, tokens: u64, elapsed: Duration) {
        self.0.generating(provider, tokens, elapsed);
    }
    fn generated(&mut self, _provider: &str) {
        self.0.generated();
    }
}

/// How a step runs.
pub struct Options<'a> {
    /// `--provider NAME`.
    pub forced: Option<String>,
    pub allow_dirty: bool,
    /// `--patch FILE`, for the human provider.
    pub patch_file: Option<PathBuf>,
    /// The human at Gate 2; `None` when nobody is there to ask.
    pub gate2: Option<&'a mut dyn Gate2>,
    /// Whether a human is at a terminal (the human provider needs one).
    pub interactive: bool,
    /// What the focus is, from telemetry: a pain, nothing, or why it could not be read.
    pub telemetry: Result<Option<Focus>, String>,
    /// Set on Ctrl-C: a model call in flight stops.
    pub cancel: crate::propose::provider::Cancel,
}

/// How a step (or its continuation) ended.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub id: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utility: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Where a pending proposal waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
    /// The human chose to stop at Gate 2.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub quit: bool,
    pub seq: u64,
    /// Merged by the auto-merge rule: nobody saw it, so whoever ran the
    /// step is shown it now (from `base`, the commit it was made on).
    #[serde(skip)]
    pub auto_merged: Option<Option<String>>,
}

/// Signals of a step whose provider gave nothing usable: no credit at all.
fn failure_signals() -> Signals {
    Signals { ci_pass: 0.0, path_ok: 0.0, diff_ratio: 1.0, atomic_ok: 0.0, left_next_steps: 0.0, human_score: 0.0 }
}

/// A step entry as it starts: who was picked, against which intent, rails
/// and base commit; everything else is filled in as the step goes.
fn fresh_body(s: &Session, base: Option<String>, pick: PickRecord, outcome: Outcome) -> StepBody {
    StepBody {
        intent: s.intent.hash.clone(),
        rails: s.rails_version.clone(),
        versions: Versions::current(),
        base,
        pick,
        proposal: None,
        gate1: Vec::new(),
        gate2: None,
        apply: None,
        signals: None,
        utility: None,
        cost: Cost::default(),
        sandbox: None,
        outcome,
        reason: None,
        detail: None,
        target: None,
        extracted: None,
        passage: None,
    }
}

/// How the step gets the object that answers for the provider the pick
/// named: [`select::provider`], from the rails. A library test passes its
/// scripted provider here (`tests/support.rs`); everything around the
/// answer — the pick, the fence, Gate 1, Gate 2, the checks, the log — is
/// the same code either way.
type Providers<'a> = &'a dyn Fn(&crate::rails::Rails, &str) -> Option<Box<dyn Provider>>;

/// Runs one full step.
pub fn run(s: &mut Session, opts: Options<'_>, progress: &mut dyn Progress) -> Result<Report, StepError> {
    run_with(s, opts, progress, &select::provider)
}

/// [`run`], asking the provider `providers` gives for the pick.
fn run_with(
    s: &mut Session,
    opts: Options<'_>,
    progress: &mut dyn Progress,
    providers: Providers<'_>,
) -> Result<Report, StepError> {
    // One look at the tree and git's control files: the clean-tree check,
    // and what no child may change (watched since). It runs on another
    // thread while this one picks and builds the context, and is waited
    // for before the provider starts.
    let mut looking = match s.look.take() {
        Some(look) => look,
        None => Fence::start(s.ws.root()),
    };
    let snapshot = looking.snapshot()?;
    s.repo.remember_index(snapshot.clone());
    let history = s.history()?;
    let now = crate::clock::now();
    crate::timing::mark("history");
    let id = s.next_id();
    let mut env = Surroundings {
        root: s.ws.root().to_path_buf(),
        interactive: opts.interactive,
        patch_file: opts.patch_file.clone(),
        step_id: id.clone(),
        cancel: opts.cancel.clone(),
        allowance: None,
        sandbox: crate::sandbox::Policy::for_rails(&s.ws, &s.rails),
        workspace: Some(s.ws.clone()),
    };
    if let Some(name) = &opts.forced {
        let known = configured(&s.rails);
        if !known.iter().any(|p| &p.name == name) {
            return Err(StepError::UnknownProvider {
                name: name.clone(),
                configured: known.into_iter().map(|p| p.name).collect(),
            });
        }
    }

    // Pick.
    let standings = standings(&s.rails, &history, &env, now);
    let watchdog = crate::watchdog::reading(&history, &s.rails.watchdog, now);
    let head = s.journal.head().hash_hex();
    let pick = select::choose(&s.rails, &history, &standings, opts.forced.as_deref(), watchdog.alarm, &head);
    let (focus, note) = select::focus(&history, &s.intent, opts.telemetry);
    crate::timing::mark("pick");
    let tier = standings.iter().find(|x| x.name == pick.provider).map_or(0, |x| x.tier_index);
    let base = s.repo.head_commit();

    let tracked: Vec<&str> = snapshot.paths().collect();
    let ctx = context::build(context::Inputs {
        rails: &s.rails,
        intent: &s.intent,
        history: &history,
        focus: focus.clone(),
        provider: &pick.provider,
        tier,
        base: base.clone(),
        tracked: &tracked,
        root: s.ws.root(),
    });
    crate::timing::mark("context");

    let mut fence = looking.join(&s.repo, s.ws.home_rel())?;
    crate::timing::mark("baseline");
    if !opts.allow_dirty {
        let dirty: Vec<String> = fence
            .before
            .keys()
            .filter(|p| matches!(s.rails.paths.classify(p), crate::rails::PathClass::Allowed(_)))
            .cloned()
            .collect();
        if !dirty.is_empty() {
            return Err(StepError::DirtyTree { paths: dirty });
        }
    }
    let reason =
        serde_json::to_value(pick.reason).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    progress.phase("pick", &format!("{} ({reason}), focus {}", pick.provider, focus.reference));

    let mut body = fresh_body(
        s,
        base.clone(),
        PickRecord {
            provider: pick.provider.clone(),
            reason: pick.reason,
            seed: pick.seed.clone(),
            focus: focus.reference.clone(),
            note,
            capped: standings
                .iter()
                .filter_map(|x| {
                    x.reason.as_ref().filter(|r| r.contains("cap reached")).map(|r| format!("{}: {r}", x.name))
                })
                .collect(),
        },
        Outcome::Failed,
    );

    // Propose.
    Inflight { id: id.clone(), pid: std::process::id(), phase: Phase::Propose, body: body.clone(), undo: None }
        .save(&s.ws)?;
    inflight::fault("propose");
    let provider = providers(&s.rails, &pick.provider).expect("the pick is among the configured providers");
    progress.phase("propose", &format!("asking {}", pick.provider));
    if let Some(cfg) = configured(&s.rails).iter().find(|p| p.name == pick.provider) {
        env.allowance = allowance(cfg, &history, now);
    }
    let answer = provider.propose_with(&ctx, &env, &mut Generating(&mut *progress));
    let spent = provider.spent();
    body.sandbox = provider.ran_under();
    body.extracted = provider.extracted();
    body.passage = provider.passage();
    crate::timing::mark("propose");
    if answer.as_ref().is_err_and(|f| f.reason_code() != "provider_unavailable") || answer.is_ok() {
        body.cost.calls = 1;
    }
    if spent.calls > 0 || answer.as_ref().is_err_and(|f| f.reason_code() == "provider_over_budget") {
        body.cost = spent.clone();
    }
    // Whatever it answered, the provider may not have changed anything.
    if let Err(breach) = fence.check(&s.repo, &s.rails.paths, fence::Phase::Proposed) {
        if let Ok(Answer::Proposal { cost, .. }) = &answer {
            body.cost = Cost { calls: cost.calls.max(1), ..cost.clone() };
        }
        let ending = Ending::new(Outcome::Failed, Reason::UnexpectedChanges)
            .detail(format!("the provider changed files while it ran: {}", breach.describe()))
            .signals(failure_signals());
        return settle(s, &id, body, ending, None);
    }
    match answer {
        Err(failure) => {
            let reason = match failure.reason_code() {
                "provider_unavailable" => Reason::ProviderUnavailable,
                "provider_timeout" => Reason::ProviderTimeout,
                "provider_over_budget" => Reason::ProviderOverBudget,
                "provider_cancelled" => Reason::Interrupted,
                _ => Reason::ProviderInvalidOutput,
            };
            // Ctrl-C: nobody judged anything, so nothing is scored.
            let ending = if reason == Reason::Interrupted {
                Ending::new(Outcome::Skipped, reason).detail("Ctrl-C stopped the provider".to_string())
            } else {
                Ending::new(Outcome::Failed, reason).detail(failure.to_string()).signals(failure_signals())
            };
            settle(s, &id, body, ending, None)
        }
        Ok(Answer::Noop { reason }) => {
            body.target = provider.target();
            settle(s, &id, body, Ending::new(Outcome::Noop, Reason::Noop).detail(reason), None)
        }
        Ok(Answer::Proposal { value, cost }) => {
            // The provider's own account (a model's every try), else what it said it cost.
            let cost = if spent.calls > 0 { spent } else { cost };
            body.cost = Cost { calls: cost.calls.max(1), ..cost };
            consider(s, &id, body, value, tier, opts.gate2, Some(fence), progress)
        }
    }
}

/// Submits a proposal directly (`ratchet propose`, a remote candidate):
/// Gate 1 at once, then it waits for a human.
pub fn propose(s: &mut Session, provider: &str, value: serde_json::Value) -> Result<Report, StepError> {
    let history = s.history()?;
    let id = s.next_id();
    let tier = crate::trust::tier_of(&history, &s.rails.trust, provider);
    let focus = value.get("focus").and_then(|f| f.as_str()).unwrap_or("intent");
    let body = fresh_body(
        s,
        s.repo.head_commit(),
        PickRecord {
            provider: settle::bound(provider, settle::MAX_SHORT),
            reason: PickReason::Submitted,
            seed: String::new(),
            focus: settle::bound(focus, settle::MAX_SHORT),
            note: None,
            capped: Vec::new(),
        },
        Outcome::Pending,
    );
    consider(s, &id, body, value, tier, None, None, &mut Quiet)
}

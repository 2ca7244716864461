//! One turn of the loop: Pick → Propose → Approve → Apply+Score → Log
//! (DESIGN §3; seed 003 principles 1–15).
//!
//! Invariants:
//! - [`run`] and the commands that continue a step ([`propose`], [`approve`],
//!   [`reject`], [`revert`]) are the only path to a merge and the only
//!   writers of `step` and `amend` entries. Each of them starts with a
//!   [`Session`], so none can skip the lock, the rails check or the log check.
//! - Agents decide, scripts do: a provider only answers with a proposal;
//!   Gate 1's rule evaluators, the patch engine, the checks and the scoring
//!   are deterministic code here.
//! - Every step ends in exactly one outcome and leaves exactly one entry for
//!   it; a crash at any point is finished by the next command
//!   ([`inflight`]).

pub mod inflight;

mod error;
// The agents API's hook (seed 004): an adopted revision replaces a pending proposal.
mod revise;
mod select;
mod session;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::approve::{self, Gate1};
use crate::context::{self, Focus};
use crate::journal::Kind;
use crate::patch::{Patch, Previous, Proposal, Undo};
use crate::pick::Reason;
use crate::provider::{Answer, Surroundings};
use crate::record::*;
use crate::score::{Signals, utility};

pub use error::StepError;
pub use inflight::{FAULT_ENV, Inflight, Phase};
pub use revise::{Replaced, approve_auto, replace_pending};
pub use select::{HEARTBEAT, Standing, configured, focus as focus_for, standings};
pub use session::{Session, events};

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
}

/// What the human sees at Gate 2.
#[derive(Clone, Debug)]
pub struct Review<'a> {
    pub id: &'a str,
    pub provider: &'a str,
    pub rationale: &'a str,
    pub focus: &'a str,
    pub verdicts: &'a [VerdictRecord],
    pub op: &'a str,
    pub path: &'a str,
    /// The file before and after the patch.
    pub old: &'a str,
    pub new: &'a str,
    pub added: u64,
    pub removed: u64,
    pub next_steps: &'a [String],
    /// The utility if the checks pass and the human scores 1.
    pub predicted: f64,
}

/// Gate 2, as the terminal (or a test) answers it.
pub trait Gate2 {
    fn decide(&mut self, review: &Review<'_>) -> Decision;
}

/// Narration hooks; the CLI draws them, tests ignore them.
pub trait Progress {
    fn phase(&mut self, _phase: &str, _detail: &str) {}
    fn checks_running(&mut self, _elapsed: Duration) {}
    fn checks_done(&mut self) {}
}

/// Progress that says nothing.
pub struct Quiet;
impl Progress for Quiet {}

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
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Where a pending proposal waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
    /// The human chose to stop at Gate 2.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub quit: bool,
    pub seq: u64,
}

/// A proposal waiting for a human: `logs/pending/<id>.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    pub created: String,
    /// The step entry as logged when it went pending.
    pub body: StepBody,
    /// The proposal as the provider gave it.
    pub proposal: serde_json::Value,
    /// blake3 of the target file when proposed (`None`: absent).
    pub target: Option<String>,
    /// The signals Gate 1 gave, with `ci_pass` and `human_score` at 1.
    pub predicted: Signals,
}

impl Pending {
    pub fn path(ws: &crate::workspace::Workspace, id: &str) -> PathBuf {
        ws.pending_dir().join(format!("{id}.json"))
    }

    pub fn load(ws: &crate::workspace::Workspace, id: &str) -> Option<Pending> {
        if !crate::journal::line::valid_id(id) {
            return None;
        }
        let bytes = std::fs::read(Pending::path(ws, id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Every pending proposal, oldest first.
    pub fn all(ws: &crate::workspace::Workspace) -> Vec<Pending> {
        let mut out: Vec<Pending> = std::fs::read_dir(ws.pending_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect();
        out.sort_by_key(|p: &Pending| p.body_seq());
        out
    }

    fn body_seq(&self) -> u64 {
        self.id.trim_start_matches('s').parse().unwrap_or(u64::MAX)
    }
}

fn verdict_records(g: &Gate1) -> Vec<VerdictRecord> {
    g.verdicts
        .iter()
        .map(|v| {
            let attest = v.attests();
            VerdictRecord {
                by: v.by.to_string(),
                verdict: if attest { "attest" } else { "object" }.into(),
                code: v.code.map(str::to_string),
                reason: (!attest).then(|| v.reason.clone()),
            }
        })
        .collect()
}

fn proposal_record(p: &Proposal, packet: &str, g: &Gate1) -> ProposalRecord {
    let first = p.patches.first();
    let stats = g.stats.unwrap_or_default();
    ProposalRecord {
        packet: packet.to_string(),
        rationale: p.rationale.clone(),
        op: first.map(|x| x.op().as_str().to_string()).unwrap_or_default(),
        path: first.map(|x| x.path().to_string()).unwrap_or_default(),
        added: stats.added,
        removed: stats.removed,
        next_steps: p.next_steps.clone(),
    }
}

/// Signals of a step whose provider gave nothing usable: no credit at all.
fn failure_signals() -> Signals {
    Signals { ci_pass: 0.0, path_ok: 0.0, diff_ratio: 1.0, atomic_ok: 0.0, left_next_steps: 0.0, human_score: 0.0 }
}

fn hash_of(bytes: Option<&[u8]>) -> Option<String> {
    bytes.map(|b| blake3::hash(b).to_hex().to_string())
}

/// The tree when a step began, and a watch on it since: what the applied
/// patch must be the only change against (path safety, step 4).
pub struct Baseline {
    pub before: crate::git::StatusMap,
    watch: Option<crate::watch::Watch>,
    /// The index, being read for the apply and the commit.
    preload: std::sync::Mutex<Option<crate::git::Preload>>,
    /// The index as read for the look.
    pub snapshot: crate::git::IndexSnapshot,
}

impl Baseline {
    /// Looks at the tree once, watching each directory from just before
    /// it is looked at.
    pub fn take(repo: &crate::git::Repo) -> Result<Baseline, StepError> {
        let snap = repo.index_snapshot()?;
        let watch = crate::watch::Watch::new().ok();
        let (before, watch_failed) = repo.status_watched(&snap, watch.as_ref())?;
        // A watch that missed a directory cannot vouch for the tree.
        let watch = watch.filter(|_| watch_failed.is_none());
        let preload = std::sync::Mutex::new(Some(repo.preload_index()));
        crate::timing::mark("baseline");
        Ok(Baseline { before, watch, preload, snapshot: snap })
    }

    fn apply(&self, s: &Session, patch: &Patch) -> Result<Undo, crate::patch::PatchError> {
        match &self.watch {
            Some(w) => crate::patch::apply_watched(&s.repo, &s.rails.paths, patch, &self.before, w),
            None => crate::patch::apply_since(&s.repo, &s.rails.paths, patch, &self.before),
        }
    }
}

/// A step entry as it starts: who was picked, against which intent, rails
/// and base commit; everything else is filled in as the step goes.
fn fresh_body(s: &Session, pick: PickRecord, outcome: Outcome) -> StepBody {
    StepBody {
        intent: s.intent.hash.clone(),
        rails: s.rails_version.clone(),
        versions: Versions::current(),
        base: s.repo.head_commit(),
        pick,
        proposal: None,
        gate1: Vec::new(),
        gate2: None,
        apply: None,
        signals: None,
        utility: None,
        cost: Cost::default(),
        outcome,
        reason: None,
        detail: None,
    }
}

/// Runs one full step.
pub fn run(s: &mut Session, opts: Options<'_>, progress: &mut dyn Progress) -> Result<Report, StepError> {
    // One look at the tree: the clean-tree check, and the "before" against
    // which the applied patch must be the only change (watched since).
    let baseline = Baseline::take(&s.repo)?;
    if !opts.allow_dirty {
        let dirty: Vec<String> = baseline
            .before
            .keys()
            .filter(|p| matches!(s.rails.paths.classify(p), crate::rails::PathClass::Allowed(_)))
            .cloned()
            .collect();
        if !dirty.is_empty() {
            return Err(StepError::DirtyTree { paths: dirty });
        }
    }
    let history = s.history()?;
    let now = crate::clock::now();
    crate::timing::mark("history");
    let id = s.next_id();
    let env = Surroundings {
        root: s.ws.root().to_path_buf(),
        interactive: opts.interactive,
        patch_file: opts.patch_file.clone(),
        step_id: id.clone(),
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
    let watchdog = history.watchdog(&s.rails.watchdog, now);
    let head = s.journal.head().hash_hex();
    let pick = select::choose(&s.rails, &history, &standings, opts.forced.as_deref(), watchdog.alarm, &head);
    let (focus, note) = select::focus(&history, &s.intent, opts.telemetry);
    crate::timing::mark("pick");
    let tier = standings.iter().find(|x| x.name == pick.provider).map_or(0, |x| x.tier_index);
    let reason =
        serde_json::to_value(pick.reason).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    progress.phase("pick", &format!("{} ({reason}), focus {}", pick.provider, focus.reference));

    let base = s.repo.head_commit();
    let mut body = fresh_body(
        s,
        PickRecord {
            provider: pick.provider.clone(),
            reason: pick.reason,
            seed: pick.seed.clone(),
            focus: focus.reference.clone(),
            note,
        },
        Outcome::Failed,
    );

    let tracked: Vec<&str> = baseline.snapshot.paths().collect();
    let ctx = context::build(context::Inputs {
        rails: &s.rails,
        intent: &s.intent,
        history: &history,
        focus,
        provider: &pick.provider,
        tier,
        base: base.clone(),
        tracked: &tracked,
        root: s.ws.root(),
    });
    crate::timing::mark("context");

    // Propose.
    Inflight { id: id.clone(), pid: std::process::id(), phase: Phase::Propose, body: body.clone(), undo: None }
        .save(&s.ws)
        .map_err(|e| crate::error::IoError::new("write", inflight::path(&s.ws), e))?;
    inflight::fault("propose");
    let provider = select::provider(&s.rails, &pick.provider).expect("the pick is among the configured providers");
    progress.phase("propose", &format!("asking {}", pick.provider));
    let answer = provider.propose(&ctx, &env);
    crate::timing::mark("propose");
    match answer {
        Err(failure) => {
            body.outcome = Outcome::Failed;
            body.reason = Some(failure.reason_code().into());
            body.detail = Some(failure.to_string());
            let signals = failure_signals();
            body.utility = Some(utility(&signals, &s.rails.utility.weights));
            body.signals = Some(signals);
            if failure.reason_code() != "provider_unavailable" {
                body.cost.calls = 1;
            }
            finish(s, &id, body, None)
        }
        Ok(Answer::Noop { reason }) => {
            body.outcome = Outcome::Noop;
            body.reason = Some("noop".into());
            body.detail = Some(reason);
            finish(s, &id, body, None)
        }
        Ok(Answer::Proposal { value, cost }) => {
            body.cost = cost;
            body.cost.calls = body.cost.calls.max(1);
            consider(s, &id, body, value, tier, opts.gate2, Some(&baseline), progress)
        }
    }
}

/// Submits a proposal directly (`ratchet propose`): Gate 1 at once, then it
/// waits for a human.
pub fn propose(s: &mut Session, provider: &str, value: serde_json::Value) -> Result<Report, StepError> {
    let history = s.history()?;
    let id = s.next_id();
    let tier = history.tiers(&s.rails.trust).get(provider).map_or(0, |t| t.tier);
    let focus = value.get("focus").and_then(|f| f.as_str()).unwrap_or("intent").to_string();
    let body = fresh_body(
        s,
        PickRecord {
            provider: provider.to_string(),
            reason: Reason::Submitted,
            seed: String::new(),
            focus,
            note: None,
        },
        Outcome::Pending,
    );
    consider(s, &id, body, value, tier, None, None, &mut Quiet)
}

/// Gate 1, then Gate 2, then apply and score.
#[allow(clippy::too_many_arguments)]
fn consider(
    s: &mut Session,
    id: &str,
    mut body: StepBody,
    value: serde_json::Value,
    tier: usize,
    gate2: Option<&mut dyn Gate2>,
    baseline: Option<&Baseline>,
    progress: &mut dyn Progress,
) -> Result<Report, StepError> {
    // Auto-merge applies to steps the loop ran itself, never to submissions.
    let auto_merge = baseline.is_some();
    let root = s.ws.root().to_path_buf();
    let gate1 = approve::evaluate_value(&root, &s.rails, tier, &value, body.base.as_deref(), &s.intent.hash);
    body.gate1 = verdict_records(&gate1);
    crate::timing::mark("gate1");
    let proposal = Proposal::from_value(&value).ok();
    if let Some(p) = &proposal {
        body.proposal = Some(proposal_record(p, &gate1.packet, &gate1));
    }
    let left = proposal.as_ref().is_some_and(|p| p.next_steps.iter().any(|n| !n.trim().is_empty()));
    let mut signals = Signals {
        ci_pass: 0.0,
        path_ok: if gate1.path_ok() { 1.0 } else { 0.0 },
        diff_ratio: gate1.diff_ratio.unwrap_or(1.0),
        atomic_ok: if gate1.atomic_ok() { 1.0 } else { 0.0 },
        left_next_steps: if left { 1.0 } else { 0.0 },
        human_score: 0.0,
    };
    let weights = s.rails.utility.weights;
    progress.phase("gate1", &if gate1.passed() { "every rule attests".to_string() } else { "objection".to_string() });
    if !gate1.passed() {
        let first = gate1.first_objection().expect("a gate that did not pass has an objection");
        body.outcome = Outcome::Rejected;
        body.reason = Some("gate1".into());
        body.detail = Some(format!("{}: {}", first.code.unwrap_or("OBJECTION"), first.reason));
        body.utility = Some(utility(&signals, &weights));
        body.signals = Some(signals);
        return finish(s, id, body, None);
    }
    let proposal = proposal.expect("Gate 1 passed, so the proposal parsed");
    let patch = proposal.patches[0].clone();
    let predicted_signals = Signals { ci_pass: 1.0, human_score: 1.0, ..signals };
    let predicted = utility(&predicted_signals, &weights);
    let current = crate::patch::Target::open(&root, patch.path())?;
    let old = current.current().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
    let new = crate::patch::resolve(&patch, current.current())?;

    // Gate 2.
    let am = &s.rails.gate.auto_merge;
    let lines = gate1.stats.map_or(u64::MAX, |st| st.changed());
    let auto = auto_merge
        && am.enabled
        && am.paths.is_match(patch.path())
        && lines <= am.max_lines
        && tier >= am.min_tier
        && predicted >= am.min_predicted_utility;
    let (decision, by) = if auto {
        (Some(Decision::Approve { score: AUTO_SCORE }), "auto".to_string())
    } else if let Some(g) = gate2 {
        let review = Review {
            id,
            provider: &body.pick.provider,
            rationale: &proposal.rationale,
            focus: &body.pick.focus,
            verdicts: &body.gate1,
            op: patch.op().as_str(),
            path: patch.path(),
            old: &old,
            new: &new,
            added: gate1.stats.map_or(0, |x| x.added),
            removed: gate1.stats.map_or(0, |x| x.removed),
            next_steps: &proposal.next_steps,
            predicted,
        };
        (Some(g.decide(&review)), s.identity().display().to_string())
    } else {
        (None, String::new())
    };
    // Nobody to ask, and the very same proposal already waits: say so
    // rather than queue it twice (a heartbeat under cron would pile them up).
    if decision.is_none() {
        if let Some(twin) = Pending::all(&s.ws)
            .into_iter()
            .find(|p| p.id != id && p.body.proposal.as_ref().is_some_and(|r| r.packet == gate1.packet))
        {
            body.outcome = Outcome::Noop;
            body.reason = Some("already_pending".into());
            body.detail = Some(format!("the same proposal already waits for a human as {}", twin.id));
            return finish(s, id, body, None);
        }
    }
    match decision {
        None | Some(Decision::Skip) | Some(Decision::Quit) => {
            let quit = decision == Some(Decision::Quit);
            body.outcome = Outcome::Pending;
            body.reason = Some(if decision.is_none() { "no_human" } else { "skipped" }.into());
            if decision.is_some() {
                body.gate2 = Some(Gate2Record { by, decision: "skip".into(), human_score: 0.0, reason: None });
            }
            let pending = Pending {
                id: id.to_string(),
                created: crate::clock::stamp(crate::clock::now()),
                body: body.clone(),
                proposal: value,
                target: hash_of(current.current()),
                predicted: predicted_signals,
            };
            let path = Pending::path(&s.ws, id);
            let bytes = serde_json::to_vec_pretty(&pending).expect("a pending proposal serialises");
            crate::fsutil::write_atomic(&path, &bytes).map_err(|e| crate::error::IoError::new("write", &path, e))?;
            let mut report = finish(s, id, body, None)?;
            report.pending = Some(s.ws.rel(&format!("logs/pending/{id}.json")));
            report.quit = quit;
            Ok(report)
        }
        Some(Decision::Reject { reason }) => {
            body.gate2 = Some(Gate2Record { by, decision: "reject".into(), human_score: 0.0, reason });
            body.outcome = Outcome::Rejected;
            body.reason = Some("human".into());
            body.utility = Some(utility(&signals, &weights));
            body.signals = Some(signals);
            finish(s, id, body, None)
        }
        Some(Decision::Approve { score }) => {
            if !(0.0..=1.0).contains(&score) {
                return Err(StepError::BadScore { what: "the human score", value: score });
            }
            body.gate2 = Some(Gate2Record { by, decision: "approve".into(), human_score: score, reason: None });
            signals.human_score = score;
            match baseline {
                Some(b) => apply_and_score(s, id, body, &patch, &current, signals, b, progress),
                None => {
                    let b = Baseline::take(&s.repo)?;
                    apply_and_score(s, id, body, &patch, &current, signals, &b, progress)
                }
            }
        }
    }
}

/// Apply+Score and Log, for an approved patch; `baseline` is what the
/// applied patch must be the only change against.
#[allow(clippy::too_many_arguments)]
fn apply_and_score(
    s: &mut Session,
    id: &str,
    mut body: StepBody,
    patch: &Patch,
    target: &crate::patch::Target,
    mut signals: Signals,
    baseline: &Baseline,
    progress: &mut dyn Progress,
) -> Result<Report, StepError> {
    let root = s.ws.root().to_path_buf();
    let weights = s.rails.utility.weights;
    let path = patch.path().to_string();
    if baseline.before.contains_key(&path) {
        body.outcome = Outcome::Rejected;
        body.reason = Some("target_dirty".into());
        body.detail = Some(format!("{path} has uncommitted changes; the patch would have committed them"));
        signals.ci_pass = 0.0;
        body.utility = Some(utility(&signals, &weights));
        body.signals = Some(signals);
        return finish(s, id, body, None);
    }
    let pre = Undo {
        path: path.clone(),
        previous: match (target.current(), target.mode()) {
            (Some(bytes), Some(mode)) => Previous::File { content: String::from_utf8_lossy(bytes).into_owned(), mode },
            _ => Previous::Absent { created_dirs: target.missing_dirs() },
        },
    };
    let save = |s: &Session, body: &StepBody, phase| {
        Inflight { id: id.to_string(), pid: std::process::id(), phase, body: body.clone(), undo: Some(pre.clone()) }
            .save(&s.ws)
            .map_err(|e| StepError::from(crate::error::IoError::new("write", inflight::path(&s.ws), e)))
    };
    if let Some(p) = baseline.preload.lock().unwrap_or_else(|p| p.into_inner()).take() {
        s.repo.adopt(p);
    }
    save(s, &body, Phase::Apply)?;
    progress.phase("apply", &format!("{} {path}", patch.op().as_str()));
    let undo = match baseline.apply(s, patch) {
        Ok(undo) => undo,
        Err(e) => {
            body.outcome = Outcome::Failed;
            body.reason = Some("apply_failed".into());
            body.detail = Some(format!("{}: {e}", crate::error::Coded::code(&e)));
            body.utility = Some(utility(&signals, &weights));
            body.signals = Some(signals);
            return finish(s, id, body, None);
        }
    };
    inflight::fault("apply");
    crate::timing::mark("apply");

    // The checks, with their output kept.
    let runs = s.ws.runs_dir();
    let log_path = runs.join(format!("{id}.log"));
    let log_rel = s.ws.rel(&format!("logs/runs/{id}.log"));
    std::fs::create_dir_all(&runs).map_err(|e| crate::error::IoError::new("create", &runs, e))?;
    let log = std::fs::File::create(&log_path).map_err(|e| crate::error::IoError::new("create", &log_path, e))?;
    let command = s.rails.checks.command.clone();
    let mut cmd = crate::process::shell(&command, &root);
    cmd.current_dir(&root).env("RATCHET_STEP_ID", id);
    progress.phase("checks", &command);
    let ran = crate::process::run_logged(cmd, &log, Duration::from_secs(s.rails.checks.timeout_s), &mut |elapsed| {
        inflight::fault("checks");
        progress.checks_running(elapsed);
    });
    progress.checks_done();
    crate::timing::mark("checks");
    let (ended, elapsed) = match ran {
        Ok(r) => r,
        Err(e) => (crate::process::Ended::Signalled(0), {
            let _ = std::io::Write::write_all(&mut &log, format!("ratchet: cannot run the checks: {e}\n").as_bytes());
            Duration::ZERO
        }),
    };
    let checks = ChecksRecord {
        command,
        exit: ended.exit_code(),
        secs: crate::score::round((elapsed.as_secs_f64() * 1000.0).round() / 1000.0),
        timed_out: ended == crate::process::Ended::TimedOut,
        log: log_rel,
    };
    body.apply = Some(ApplyRecord { commit: None, checks: Some(checks) });
    if !ended.success() {
        s.restore(&undo).map_err(|reason| StepError::Recovery { file: path.clone(), reason })?;
        body.outcome = Outcome::Failed;
        body.reason =
            Some(if ended == crate::process::Ended::TimedOut { "checks_timeout" } else { "checks_failed" }.into());
        body.detail = Some(format!("the checks {}; {path} was restored", describe(&ended)));
        body.utility = Some(utility(&signals, &weights));
        body.signals = Some(signals);
        return finish(s, id, body, None);
    }
    signals.ci_pass = 1.0;
    let u = utility(&signals, &weights);
    body.utility = Some(u);
    body.signals = Some(signals);
    body.outcome = Outcome::Merged;

    // Commit, naming the log head it follows.
    let trailers = crate::git::Trailers {
        step: id.to_string(),
        packet: body.proposal.as_ref().map(|p| p.packet.clone()).unwrap_or_default(),
        intent: body.intent.clone(),
        rails: body.rails.clone(),
        utility: format!("{u}"),
        log_prev: s.journal.head().hash_hex(),
        log: s.journal.genesis()?.map(|g| crate::journal::line::hex(&g)),
    };
    let rationale = body.proposal.as_ref().map(|p| p.rationale.trim().to_string()).unwrap_or_default();
    let message = format!(
        "ratchet: {} {path} ({id})\n\n{}{}\n",
        patch.op().as_str(),
        if rationale.is_empty() { String::new() } else { format!("{rationale}\n\n") },
        trailers.render().trim_end()
    );
    save(s, &body, Phase::Commit)?;
    let who = s.identity();
    let commit = match s.repo.commit_path(&path, &message, &who, crate::clock::now()) {
        Ok(c) => c,
        Err(e) => {
            s.restore(&undo).map_err(|reason| StepError::Recovery { file: path.clone(), reason })?;
            body.outcome = Outcome::Failed;
            body.reason = Some("commit_failed".into());
            body.detail = Some(e.to_string());
            return finish(s, id, body, None);
        }
    };
    // No crash-journal write here: recovery finds the commit by its
    // Ratchet-Step trailer at HEAD.
    inflight::fault("commit");
    crate::timing::mark("commit");
    if let Some(a) = &mut body.apply {
        a.commit = Some(commit.clone());
    }
    progress.phase("merged", &commit[..12]);
    finish(s, id, body, Some(commit))
}

fn describe(e: &crate::process::Ended) -> String {
    match e {
        crate::process::Ended::Exited(c) => format!("exited with status {c}"),
        crate::process::Ended::Signalled(sig) => format!("were killed by signal {sig}"),
        crate::process::Ended::TimedOut => "timed out".into(),
    }
}

/// Log: appends the step's entry, then clears the crash journal and any
/// pending file the step settled.
fn finish(s: &mut Session, id: &str, body: StepBody, commit: Option<String>) -> Result<Report, StepError> {
    let entry = s.append(Kind::Step, Some(id), &body)?;
    crate::timing::mark("log");
    inflight::Inflight::clear(&s.ws).map_err(|e| crate::error::IoError::new("remove", inflight::path(&s.ws), e))?;
    if body.outcome != Outcome::Pending {
        let _ = std::fs::remove_file(Pending::path(&s.ws, id));
    }
    Ok(Report {
        id: id.to_string(),
        outcome: body.outcome,
        utility: body.utility,
        commit,
        provider: body.pick.provider.clone(),
        path: body.proposal.as_ref().map(|p| p.path.clone()),
        reason: body.reason.clone(),
        detail: body.detail.clone(),
        pending: None,
        quit: false,
        seq: entry.seq,
    })
}

/// A pending proposal as Gate 2 shows it, against the tree as it is now.
#[derive(Clone, Debug)]
pub struct PendingView {
    pub pending: Pending,
    pub rationale: String,
    pub op: String,
    pub path: String,
    pub old: String,
    /// The file after the patch; `None` when the patch no longer applies.
    pub new: Option<String>,
    pub next_steps: Vec<String>,
    pub predicted: f64,
}

impl PendingView {
    pub fn review(&self) -> Review<'_> {
        let p = &self.pending;
        let record = p.body.proposal.as_ref();
        Review {
            id: &p.id,
            provider: &p.body.pick.provider,
            rationale: &self.rationale,
            focus: &p.body.pick.focus,
            verdicts: &p.body.gate1,
            op: &self.op,
            path: &self.path,
            old: &self.old,
            new: self.new.as_deref().unwrap_or(""),
            added: record.map_or(0, |r| r.added),
            removed: record.map_or(0, |r| r.removed),
            next_steps: &self.next_steps,
            predicted: self.predicted,
        }
    }
}

/// Every pending proposal, viewed against the current tree.
pub fn pending_views(s: &Session) -> Result<Vec<PendingView>, StepError> {
    let history = s.history()?;
    let root = s.ws.root().to_path_buf();
    let mut out = Vec::new();
    for p in Pending::all(&s.ws) {
        if history.step(&p.id).is_none_or(|st| st.outcome() != Outcome::Pending) {
            continue;
        }
        let Ok(proposal) = Proposal::from_value(&p.proposal) else { continue };
        let Some(patch) = proposal.patches.first() else { continue };
        let target = crate::patch::Target::open(&root, patch.path()).ok();
        let current = target.as_ref().and_then(|t| t.current());
        out.push(PendingView {
            rationale: proposal.rationale.clone(),
            op: patch.op().as_str().to_string(),
            path: patch.path().to_string(),
            old: current.map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default(),
            new: crate::patch::resolve(patch, current).ok(),
            next_steps: proposal.next_steps.clone(),
            predicted: utility(&p.predicted, &s.rails.utility.weights),
            pending: p,
        });
    }
    Ok(out)
}

fn pending_for(s: &Session, id: &str) -> Result<Pending, StepError> {
    let waiting = || Pending::all(&s.ws).into_iter().map(|p| p.id).collect();
    let is_pending = s.history()?.step(id).is_some_and(|st| st.outcome() == Outcome::Pending);
    match Pending::load(&s.ws, id) {
        Some(p) if is_pending => Ok(p),
        _ => Err(StepError::NotPending { id: id.to_string(), pending: waiting() }),
    }
}

/// Approves a pending proposal (an explicit human act) and runs
/// Apply+Score. When the tree moved since the proposal, Gate 1 runs again
/// against it, and a whole-file `replace` of a changed file is refused.
pub fn approve(s: &mut Session, id: &str, score: f64, progress: &mut dyn Progress) -> Result<Report, StepError> {
    approve_by(s, id, score, None, progress)
}

/// [`approve`], recorded as by `by` (the approver's identity when `None`).
fn approve_by(
    s: &mut Session,
    id: &str,
    score: f64,
    by: Option<String>,
    progress: &mut dyn Progress,
) -> Result<Report, StepError> {
    if !(0.0..=1.0).contains(&score) {
        return Err(StepError::BadScore { what: "--score", value: score });
    }
    let pending = pending_for(s, id)?;
    let baseline = Baseline::take(&s.repo)?;
    let root = s.ws.root().to_path_buf();
    let mut body = pending.body.clone();
    let proposal = Proposal::from_value(&pending.proposal)?;
    let patch =
        proposal.patches.first().cloned().ok_or_else(|| StepError::NotPending { id: id.into(), pending: vec![] })?;
    let target = crate::patch::Target::open(&root, patch.path())?;
    let moved = hash_of(target.current()) != pending.target || s.repo.head_commit() != body.base;
    let mut signals = Signals { human_score: score, ci_pass: 0.0, ..pending.predicted };
    if moved {
        if matches!(patch, Patch::Replace { old: None, .. }) && hash_of(target.current()) != pending.target {
            return Err(StepError::StaleProposal { id: id.into(), path: patch.path().into() });
        }
        let tier = s.history()?.tiers(&s.rails.trust).get(&body.pick.provider).map_or(0, |t| t.tier);
        let gate1 = approve::evaluate(&root, &s.rails, tier, &proposal, body.base.as_deref(), &body.intent);
        body.gate1 = verdict_records(&gate1);
        if let Some(p) = &mut body.proposal {
            let st = gate1.stats.unwrap_or_default();
            (p.added, p.removed) = (st.added, st.removed);
        }
        signals.path_ok = if gate1.path_ok() { 1.0 } else { 0.0 };
        signals.atomic_ok = if gate1.atomic_ok() { 1.0 } else { 0.0 };
        signals.diff_ratio = gate1.diff_ratio.unwrap_or(1.0);
        if !gate1.passed() {
            let first = gate1.first_objection().expect("a gate that did not pass has an objection");
            body.outcome = Outcome::Rejected;
            body.reason = Some("stale".into());
            body.detail = Some(format!(
                "the tree moved since the proposal; {}: {}",
                first.code.unwrap_or("OBJECTION"),
                first.reason
            ));
            signals.human_score = 0.0;
            body.utility = Some(utility(&signals, &s.rails.utility.weights));
            body.signals = Some(signals);
            return finish(s, id, body, None);
        }
    }
    let by = by.unwrap_or_else(|| s.identity().display().to_string());
    body.gate2 = Some(Gate2Record { by, decision: "approve".into(), human_score: score, reason: None });
    apply_and_score(s, id, body, &patch, &target, signals, &baseline, progress)
}

/// Rejects a pending proposal (an explicit human act).
pub fn reject(s: &mut Session, id: &str, reason: Option<String>) -> Result<Report, StepError> {
    let pending = pending_for(s, id)?;
    let mut body = pending.body.clone();
    body.gate2 = Some(Gate2Record {
        by: s.identity().display().to_string(),
        decision: "reject".into(),
        human_score: 0.0,
        reason,
    });
    body.outcome = Outcome::Rejected;
    body.reason = Some("human".into());
    let signals = Signals { ci_pass: 0.0, human_score: 0.0, ..pending.predicted };
    body.utility = Some(utility(&signals, &s.rails.utility.weights));
    body.signals = Some(signals);
    finish(s, id, body, None)
}

/// What a revert did.
#[derive(Clone, Debug, Serialize)]
pub struct Reverted {
    pub id: String,
    pub commit: String,
    pub hours: f64,
    pub previous_utility: f64,
    pub utility: f64,
    pub capped: bool,
    pub seq: u64,
}

/// Reverts a merged step's commit through the loop's own rails: path
/// safety, the patch engine, the checks, a commit, and an `amend` entry
/// (with the utility cap when inside the revert window).
pub fn revert(s: &mut Session, id: &str, progress: &mut dyn Progress) -> Result<Reverted, StepError> {
    let history = s.history()?;
    let step = history
        .step(id)
        .filter(|st| st.outcome() == Outcome::Merged)
        .ok_or_else(|| StepError::NotMerged { id: id.into() })?;
    if step.reverted.is_some() {
        return Err(StepError::AlreadyReverted { id: id.into() });
    }
    let commit = step.commit().ok_or_else(|| StepError::NotMerged { id: id.into() })?.to_string();
    if !s.repo.is_ancestor_of_head(&commit) {
        return Err(StepError::NotInHistory { id: id.into(), commit });
    }
    let path =
        step.body.proposal.as_ref().map(|p| p.path.clone()).ok_or_else(|| StepError::NotMerged { id: id.into() })?;
    crate::patch::path::check(&path, &s.rails.paths)?;
    if s.repo.is_dirty(&path)? {
        return Err(StepError::DirtyTarget { path });
    }
    let content = s
        .repo
        .reverted_content(&commit, &path)?
        .map_err(|reason| StepError::RevertConflict { id: id.into(), reason })?;
    let (finished, previous) = (step.finished, step.utility().unwrap_or(0.0));
    let root = s.ws.root().to_path_buf();
    let target = crate::patch::Target::open(&root, &path)?;
    progress.phase("revert", &format!("{path} back to before {}", &commit[..12]));
    let undo = match content {
        Some(bytes) => {
            let new = String::from_utf8(bytes).map_err(|_| StepError::RevertConflict {
                id: id.into(),
                reason: format!("{path} is not UTF-8 text"),
            })?;
            crate::patch::apply_verified(
                &s.repo,
                &s.rails.paths,
                &Patch::Replace { path: path.clone(), old: None, new },
            )?
        }
        None => {
            // The step created the file: reverting removes it, through the same safe walk.
            let Some(bytes) = target.current() else {
                return Err(StepError::RevertConflict { id: id.into(), reason: format!("{path} is already gone") });
            };
            let mode = target.mode().unwrap_or(0o644);
            Undo { path: path.clone(), previous: Previous::Absent { created_dirs: Vec::new() } }.restore(&root)?;
            Undo {
                path: path.clone(),
                previous: Previous::File { content: String::from_utf8_lossy(bytes).into_owned(), mode },
            }
        }
    };
    let runs = s.ws.runs_dir();
    std::fs::create_dir_all(&runs).map_err(|e| crate::error::IoError::new("create", &runs, e))?;
    let log_path = runs.join(format!("{id}-revert.log"));
    let log = std::fs::File::create(&log_path).map_err(|e| crate::error::IoError::new("create", &log_path, e))?;
    let mut cmd = crate::process::shell(&s.rails.checks.command, &root);
    cmd.current_dir(&root);
    progress.phase("checks", &s.rails.checks.command);
    let ran = crate::process::run_logged(cmd, &log, Duration::from_secs(s.rails.checks.timeout_s), &mut |e| {
        progress.checks_running(e)
    });
    progress.checks_done();
    let ended = ran.map(|r| r.0).unwrap_or(crate::process::Ended::Signalled(0));
    if !ended.success() {
        s.restore(&undo).map_err(|reason| StepError::Recovery { file: path.clone(), reason })?;
        return Err(StepError::RevertChecksFailed { id: id.into(), status: describe(&ended) });
    }
    let subject = s.repo.commit_message(&commit).and_then(|m| m.lines().next().map(str::to_string)).unwrap_or_default();
    let genesis =
        s.journal.genesis()?.map(|g| format!("Ratchet-Log: {}\n", crate::journal::line::hex(&g))).unwrap_or_default();
    let message = format!(
        "Revert \"{subject}\"\n\nThis reverts commit {commit}.\n\nRatchet-Revert: {id}\nRatchet-Log-Prev: {}\n{genesis}",
        s.journal.head().hash_hex()
    );
    let now = crate::clock::now();
    let revert_commit = match s.repo.commit_path(&path, &message, &s.identity(), now) {
        Ok(c) => c,
        Err(e) => {
            s.restore(&undo).map_err(|reason| StepError::Recovery { file: path.clone(), reason })?;
            return Err(e.into());
        }
    };
    let u = &s.rails.utility;
    let hours = crate::score::round((now - finished).num_seconds().max(0) as f64 / 3600.0);
    let utility = crate::score::revert_capped(previous, hours, u.revert_window_hours, u.revert_cap);
    let body = AmendBody {
        step: id.into(),
        reason: "revert".into(),
        commit: Some(revert_commit.clone()),
        detected_by: "ratchet revert".into(),
        hours,
        previous_utility: previous,
        utility,
        capped: utility < previous,
    };
    let entry = s.append(Kind::Amend, None, &body)?;
    Ok(Reverted {
        id: id.into(),
        commit: revert_commit,
        hours,
        previous_utility: previous,
        utility,
        capped: body.capped,
        seq: entry.seq,
    })
}

//! Proposals waiting for a human: `logs/pending/<id>.json`, and the human
//! acts that settle them (`ratchet approve`, `review`, `reject`).
//!
//! A pending file is untrusted: anything under the work tree may have been
//! written by a provider or the checks. So the file holds only what the
//! log cannot (the proposal as submitted), and everything else comes from
//! the log: the step's pending entry names the packet hash, the base and
//! the intent. Settling a pending proposal:
//!
//! 1. it must be pending in the log (a step that ended is not listed or
//!    accepted, and its file is removed);
//! 2. the packet hash of the file's proposal, on the logged base and
//!    intent, must be the logged one — else `PENDING_TAMPERED`: nothing is
//!    applied, the step ends `failed` with that reason, and the file is
//!    moved to `logs/quarantine/`;
//! 3. Gate 1 runs again in full against the current tree and HEAD, with the
//!    provider's current tier (and `STALE_PROPOSAL` for a whole-file replace
//!    of a file that changed since);
//! 4. the human is shown the review of *that* — rationale, verdicts, the
//!    diff against HEAD's bytes, the predicted utility — and decides.
//!
//! Nothing merges that the human was not shown.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::gate::two::{Decision, Gate2, Review};
use crate::gate::{self, Gate1};
use crate::patch::Patch;
use crate::propose::Proposal;
use crate::record::{Choice, Gate2Record, Outcome, Reason, StepBody, VerdictRecord};
use crate::score::{Signals, utility};
use crate::workspace::Workspace;

use super::apply::apply_and_score;
use super::approval::{gate1_signals, judged_bytes, proposal_record, verdict_records};
use super::fence::Fence;
use super::settle::{Ending, settle};
use super::{Progress, Report, Session, StepError};

/// A proposal waiting for a human: `logs/pending/<id>.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    pub created: String,
    /// The proposal as the provider gave it.
    pub proposal: serde_json::Value,
    /// The packet hash when it went pending (informational: the log's is the one checked).
    #[serde(default)]
    pub packet: String,
}

impl Pending {
    pub fn new(id: &str, proposal: serde_json::Value, packet: &str) -> Pending {
        Pending {
            id: id.to_string(),
            created: crate::clock::stamp(crate::clock::now()),
            proposal,
            packet: packet.to_string(),
        }
    }

    pub fn path(ws: &Workspace, id: &str) -> PathBuf {
        ws.pending_dir().join(format!("{id}.json"))
    }

    pub fn save(&self, ws: &Workspace) -> Result<(), StepError> {
        let path = Pending::path(ws, &self.id);
        let bytes = serde_json::to_vec_pretty(self).expect("a pending proposal serialises");
        crate::fsutil::write_file(&path, &bytes, crate::fsutil::Durability::Full)
            .map_err(|e| crate::error::IoError::new("write", &path, e))?;
        Ok(())
    }

    /// Reads `logs/pending/<id>.json` strictly (duplicate keys refused).
    pub(super) fn load(ws: &Workspace, id: &str) -> Result<Option<Pending>, String> {
        if !crate::journal::line::valid_id(id) {
            return Ok(None);
        }
        let path = Pending::path(ws, id);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read it: {e}")),
        };
        if bytes.len() as u64 > crate::patch::MAX_PROPOSAL_BYTES {
            return Err("it is larger than any proposal".into());
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| "it is not UTF-8".to_string())?;
        let value = crate::canonical::strict::from_str(text).map_err(|e| format!("it is not valid JSON: {e}"))?;
        serde_json::from_value(value).map(Some).map_err(|e| format!("it is not a pending proposal: {e}"))
    }
}

/// Where a step that waits for a human stands.
#[derive(Clone, Debug)]
pub enum PendingState {
    /// Its file hashes to the logged packet; here is what Gate 2 would show.
    Ready(Box<PendingView>),
    /// Its file is missing, unreadable, or no longer the logged proposal.
    Tampered { why: String },
}

/// A pending proposal as Gate 2 shows it: judged again, now.
#[derive(Clone, Debug)]
pub struct PendingView {
    pub id: String,
    pub provider: String,
    pub focus: String,
    pub rationale: String,
    pub op: String,
    pub path: String,
    /// The file at HEAD.
    pub old: String,
    /// The file after the patch; `None` when it no longer applies.
    pub new: Option<String>,
    pub next_steps: Vec<String>,
    /// Gate 1, run again against the current tree.
    pub verdicts: Vec<VerdictRecord>,
    pub added: u64,
    pub removed: u64,
    pub predicted: f64,
    /// Whether Gate 1 attests now.
    pub passes: bool,
    /// Whether HEAD moved since it was proposed.
    pub moved: bool,
    /// The step's pending entry, from the log.
    body: StepBody,
    proposal: Proposal,
    gate1: Gate1,
    before: Option<Vec<u8>>,
}

impl PendingView {
    /// The packet hash the proposal stands on (as logged).
    pub fn packet(&self) -> &str {
        self.body.proposal.as_ref().map_or("", |p| p.packet.as_str())
    }

    /// The review screen, with `default_score` offered at approval.
    pub fn review(&self, default_score: f64) -> Review<'_> {
        Review {
            id: &self.id,
            provider: &self.provider,
            rationale: &self.rationale,
            focus: &self.focus,
            verdicts: &self.verdicts,
            op: &self.op,
            path: &self.path,
            old: &self.old,
            new: self.new.as_deref().unwrap_or(""),
            added: self.added,
            removed: self.removed,
            next_steps: &self.next_steps,
            predicted: self.predicted,
            default_score,
        }
    }
}

/// Every step the log says waits for a human, oldest first, each judged
/// again against the current tree. Files of steps that ended are removed.
pub fn waiting(s: &Session) -> Result<Vec<(String, PendingState)>, StepError> {
    let history = s.history()?;
    let mut out = Vec::new();
    for step in history.pending() {
        let state = match view(s, &step.id, &step.body) {
            Ok(v) => PendingState::Ready(Box::new(v)),
            Err(why) => PendingState::Tampered { why },
        };
        out.push((step.id.clone(), state));
    }
    // Leftovers: files whose step is no longer pending.
    if let Ok(entries) = std::fs::read_dir(s.ws.pending_dir()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".json") {
                if history.step(id).is_none_or(|st| st.outcome() != Outcome::Pending) {
                    settled(&s.ws, id);
                }
            }
        }
    }
    Ok(out)
}

/// Removes the pending file of a step that ended.
pub fn settled(ws: &Workspace, id: &str) {
    if crate::journal::line::valid_id(id) {
        let _ = std::fs::remove_file(Pending::path(ws, id));
    }
}

/// The id of another step whose pending proposal has `packet`.
pub(super) fn twin(s: &Session, id: &str, packet: &str) -> Result<Option<String>, StepError> {
    let history = s.history()?;
    Ok(history
        .pending()
        .into_iter()
        .find(|st| st.id != id && st.body.proposal.as_ref().is_some_and(|p| p.packet == packet))
        .map(|st| st.id.clone()))
}

/// Loads the pending file of `id`, proves it is the logged proposal, and
/// judges it again now.
pub(super) fn view(s: &Session, id: &str, body: &StepBody) -> Result<PendingView, String> {
    let pending = Pending::load(&s.ws, id)?.ok_or_else(|| "its file in logs/pending/ is missing".to_string())?;
    let logged = body.proposal.as_ref().map(|p| p.packet.as_str());
    let packet = crate::propose::packet_hash(
        &Proposal::from_value(&pending.proposal).map(|p| p.to_value()).unwrap_or_else(|_| pending.proposal.clone()),
        body.base.as_deref(),
        &body.intent,
    );
    if pending.id != id || Some(packet.as_str()) != logged {
        return Err(format!(
            "its file no longer holds the proposal the log names (packet {}, the file hashes to {})",
            logged.map(|p| &p[..12.min(p.len())]).unwrap_or("none"),
            &packet[..12]
        ));
    }
    let proposal = Proposal::from_value(&pending.proposal).map_err(|e| format!("its proposal does not parse: {e}"))?;
    let history = s.history().map_err(|e| e.to_string())?;
    let tier = crate::trust::tier_of(&history, &s.rails.trust, &body.pick.provider);
    let head = s.repo.head_commit();
    let root = s.ws.root().to_path_buf();
    let gate1 = gate::evaluate(&root, &s.rails, tier, &proposal, head.as_deref(), &s.intent);
    let signals = gate1_signals(&gate1, Some(&proposal));
    let predicted = utility(&Signals { ci_pass: 1.0, human_score: 1.0, ..signals }, &s.rails.utility.weights);
    let patch = proposal.single().cloned();
    let before = patch.as_ref().and_then(|p| judged_bytes(s, head.as_deref(), p).ok()).flatten();
    let new = patch.as_ref().and_then(|p| crate::patch::resolve(p, before.as_deref()).ok());
    Ok(PendingView {
        id: id.to_string(),
        provider: body.pick.provider.clone(),
        focus: body.pick.focus.clone(),
        rationale: proposal.rationale.clone(),
        op: patch.as_ref().map(|p| p.op().as_str().to_string()).unwrap_or_default(),
        path: patch.as_ref().map(|p| p.path().to_string()).unwrap_or_default(),
        old: before.as_deref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default(),
        new,
        next_steps: proposal.next_steps.clone(),
        verdicts: verdict_records(&gate1),
        added: gate1.stats.map_or(0, |x| x.added),
        removed: gate1.stats.map_or(0, |x| x.removed),
        predicted,
        passes: gate1.passed(),
        moved: head != body.base,
        body: body.clone(),
        proposal,
        gate1,
        before,
    })
}

/// The pending step `id` from the log, or `NOT_PENDING`.
pub(super) fn pending_body(s: &Session, id: &str) -> Result<StepBody, StepError> {
    let history = s.history()?;
    match history.step(id) {
        Some(st) if st.outcome() == Outcome::Pending => Ok(st.body.clone()),
        _ => Err(StepError::NotPending {
            id: crate::text::show(&crate::step::settle::bound(id, 64)),
            pending: history.pending().iter().map(|st| st.id.clone()).collect(),
        }),
    }
}

/// Settles a pending proposal whose file was tampered with: logged as
/// failed, the file quarantined, and `PENDING_TAMPERED` returned.
pub(super) fn tampered(s: &mut Session, id: &str, body: StepBody, why: String) -> StepError {
    let path = Pending::path(&s.ws, id);
    let quarantine = s.ws.quarantine_dir().join(format!("pending-{id}.json"));
    if std::fs::create_dir_all(s.ws.quarantine_dir()).is_ok() {
        let _ = std::fs::rename(&path, &quarantine);
    }
    let ending = Ending::new(Outcome::Failed, Reason::PendingTampered).detail(why.clone());
    match settle(s, id, body, ending, None) {
        Ok(_) => StepError::PendingTampered { id: id.to_string(), why },
        Err(e) => e,
    }
}

/// What runs once Gate 2 has decided (approve: `true`, reject: `false`)
/// and before the decision is carried out; an error stops it. The agents
/// API checks a remote candidate's quorum and anchors its ledger here.
pub type DecisionHook<'a> = &'a mut dyn FnMut(&mut Session, &str, bool) -> Result<(), StepError>;

/// A human's decision on the pending proposal `id`, at Gate 2: the
/// proposal is verified against the log and judged again (see the module
/// doc), `gate2` is shown the review and decides, `hook` (when given) has
/// its say, and the decision is carried out. `default_score` is offered
/// when approving.
pub fn decide(
    s: &mut Session,
    id: &str,
    gate2: &mut dyn Gate2,
    default_score: f64,
    hook: Option<DecisionHook<'_>>,
    progress: &mut dyn Progress,
) -> Result<Report, StepError> {
    decide_as(s, id, gate2, default_score, None, hook, progress)
}

/// [`decide`], recorded as decided by `by` (the approver's git identity when `None`).
pub(super) fn decide_as(
    s: &mut Session,
    id: &str,
    gate2: &mut dyn Gate2,
    default_score: f64,
    by: Option<String>,
    mut hook: Option<DecisionHook<'_>>,
    progress: &mut dyn Progress,
) -> Result<Report, StepError> {
    if !(0.0..=1.0).contains(&default_score) {
        return Err(StepError::BadScore { what: "--score", value: default_score });
    }
    let body = pending_body(s, id)?;
    let view = match view(s, id, &body) {
        Ok(v) => v,
        Err(why) => return Err(tampered(s, id, body, why)),
    };
    // A whole-file replace written against an older file would silently undo
    // what changed since: refuse it rather than show it.
    if let Some(Patch::Replace { old: None, path, .. }) = view.proposal.single() {
        let then = s.repo.file_at(body.base.as_deref(), path)?.map(|b| b.bytes);
        if view.moved && then != view.before {
            return Err(StepError::StaleProposal { id: id.into(), path: path.clone() });
        }
    }
    let mut body = view.body.clone();
    // The rules are judged again; the critics' verdicts (bound to the packet
    // when it went pending) stay.
    let critics: Vec<VerdictRecord> = body.gate1.iter().filter(|v| v.by.starts_with("critic:")).cloned().collect();
    body.gate1 = view.verdicts.clone();
    body.gate1.extend(critics);
    body.proposal = Some(proposal_record(&view.proposal, &view.gate1.packet, &view.gate1));
    body.base = s.repo.head_commit();
    let mut signals = gate1_signals(&view.gate1, Some(&view.proposal));
    if !view.passes {
        let first = view.gate1.first_objection().expect("a gate that did not pass has an objection");
        let (reason, what) = if view.moved {
            (Reason::Stale, "the tree moved since the proposal; ")
        } else {
            (Reason::Gate1, "Gate 1 now objects: ")
        };
        let ending = Ending::new(Outcome::Rejected, reason)
            .detail(format!("{what}{}: {}", first.code.unwrap_or("OBJECTION"), first.reason))
            .signals(signals);
        return settle(s, id, body, ending, None);
    }
    let decision = gate2.decide(&view.review(default_score));
    let by = by.unwrap_or_else(|| s.identity().display().to_string());
    if let (Some(h), Decision::Approve { .. } | Decision::Reject { .. }) = (hook.as_mut(), &decision) {
        h(s, id, matches!(decision, Decision::Approve { .. }))?;
    }
    match decision {
        Decision::Approve { score } => {
            if !(0.0..=1.0).contains(&score) {
                return Err(StepError::BadScore { what: "the human score", value: score });
            }
            body.gate2 = Some(Gate2Record { by, decision: Choice::Approve, human_score: score, reason: None });
            signals.human_score = score;
            let patch = view.proposal.single().cloned().expect("Gate 1 passed, so the proposal is atomic");
            let mut fence = Fence::take(&s.repo, s.ws.home_rel())?;
            apply_and_score(s, id, body, &patch, view.before.as_deref(), signals, &mut fence, progress)
        }
        Decision::Reject { reason } => {
            body.gate2 = Some(Gate2Record { by, decision: Choice::Reject, human_score: 0.0, reason });
            settle(s, id, body, Ending::new(Outcome::Rejected, Reason::Human).signals(signals), None)
        }
        // `review` and `approve` do not offer [e]dit: a pending proposal is
        // kept exactly as it was logged.
        Decision::Skip | Decision::Quit | Decision::Interrupt | Decision::Edit { .. } => Ok(Report {
            id: id.to_string(),
            outcome: Outcome::Pending,
            utility: None,
            commit: None,
            provider: view.provider.clone(),
            path: Some(view.path.clone()),
            reason: Some(if decision == Decision::Interrupt { Reason::Interrupted } else { Reason::Skipped }),
            detail: None,
            pending: Some(s.ws.rel(&format!("logs/pending/{id}.json"))),
            quit: matches!(decision, Decision::Quit | Decision::Interrupt),
            seq: s.journal.head().seq,
            auto_merged: None,
        }),
    }
}

/// Rejects the pending proposal `id` (an explicit human act; nothing merges).
pub fn reject(s: &mut Session, id: &str, reason: Option<String>) -> Result<Report, StepError> {
    let mut body = pending_body(s, id)?;
    body.gate2 = Some(Gate2Record {
        by: s.identity().display().to_string(),
        decision: Choice::Reject,
        human_score: 0.0,
        reason,
    });
    // Scored with the signals Gate 1 gives it now (none when its file is gone).
    let signals = match view(s, id, &body) {
        Ok(v) => gate1_signals(&v.gate1, Some(&v.proposal)),
        Err(_) => super::failure_signals(),
    };
    settle(s, id, body, Ending::new(Outcome::Rejected, Reason::Human).signals(signals), None)
}

//! Approve (DESIGN §3): Gate 1 on a proposal, then Gate 2 — the human at
//! the terminal, the narrow auto-merge rule, or nobody (the proposal waits
//! in `logs/pending/`).
//!
//! The file the proposal is judged on is the base commit's: Gate 1 reads
//! the tree through the safe walk, and the bytes it reads must be the base
//! commit's bytes of that path (the fence has already proved the provider
//! changed nothing; this proves it again for the one file that matters).
//! The human sees the diff from those bytes, and the apply starts from them.

use crate::gate::two::{self, AUTO_SCORE, AutoMergeCase, Decision, Gate2, Review};
use crate::gate::{self, Gate1};
use crate::patch::Patch;
use crate::propose::Proposal;
use crate::record::{Choice, Gate2Record, Outcome, ProposalRecord, Reason, Stance, StepBody, VerdictRecord};
use crate::score::{Signals, utility};

use super::apply::apply_and_score;
use super::fence::Fence;
use super::pending::Pending;
use super::settle::{Ending, settle};
use super::{Progress, Report, Session, StepError};

/// The records of Gate 1's verdicts, as the entry keeps them.
pub(super) fn verdict_records(g: &Gate1) -> Vec<VerdictRecord> {
    g.verdicts
        .iter()
        .map(|v| {
            let attest = v.attests();
            VerdictRecord {
                by: v.by.to_string(),
                verdict: if attest { Stance::Attest } else { Stance::Object },
                code: v.code.map(str::to_string),
                reason: (!attest).then(|| v.reason.clone()),
                provider: None,
                weight: None,
                cost: None,
            }
        })
        .collect()
}

pub(super) fn proposal_record(p: &Proposal, packet: &str, g: &Gate1) -> ProposalRecord {
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

/// The signals Gate 1 gives a proposal, before the checks and the human.
pub(super) fn gate1_signals(g: &Gate1, proposal: Option<&Proposal>) -> Signals {
    let left = proposal.is_some_and(|p| p.next_steps.iter().any(|n| !n.trim().is_empty()));
    Signals {
        ci_pass: 0.0,
        path_ok: if g.path_ok() { 1.0 } else { 0.0 },
        diff_ratio: g.diff_ratio.unwrap_or(1.0),
        atomic_ok: if g.atomic_ok() { 1.0 } else { 0.0 },
        left_next_steps: if left { 1.0 } else { 0.0 },
        human_score: 0.0,
    }
}

/// The file a patch is judged on: the base commit's bytes, checked against
/// what the tree holds now. `Err` names what differs.
pub(super) fn judged_bytes(s: &Session, base: Option<&str>, patch: &Patch) -> Result<Option<Vec<u8>>, String> {
    let root = s.ws.root();
    let in_base = s.repo.file_at(base, patch.path()).map_err(|e| e.to_string())?.map(|b| b.bytes);
    let target = crate::patch::Target::open(root, patch.path()).map_err(|e| e.to_string())?;
    if target.current() != in_base.as_deref() {
        return Err(format!(
            "{} in the work tree is not the base commit's {}",
            patch.path(),
            if in_base.is_some() { "file" } else { "(absent) file" }
        ));
    }
    Ok(in_base)
}

/// Gate 1, then Gate 2, then (when approved) Apply+Score. `fence` is the
/// look taken when a step the loop ran itself began; submissions have none
/// (and never auto-merge).
#[allow(clippy::too_many_arguments)]
pub(super) fn consider(
    s: &mut Session,
    id: &str,
    body: StepBody,
    value: serde_json::Value,
    tier: usize,
    gate2: Option<&mut dyn Gate2>,
    fence: Option<Fence>,
    progress: &mut dyn Progress,
) -> Result<Report, StepError> {
    judge(s, id, body, value, tier, gate2, fence, progress, None)
}

/// [`consider`], for a proposal the human edited at Gate 2 when `edited`
/// names the packet they started from: Gate 1 runs again in full on what
/// they saved, and the approval records that it was edited.
#[allow(clippy::too_many_arguments)]
fn judge(
    s: &mut Session,
    id: &str,
    mut body: StepBody,
    value: serde_json::Value,
    tier: usize,
    mut gate2: Option<&mut dyn Gate2>,
    fence: Option<Fence>,
    progress: &mut dyn Progress,
    edited: Option<String>,
) -> Result<Report, StepError> {
    let root = s.ws.root().to_path_buf();
    let gate1 = gate::evaluate_value(&root, &s.rails, tier, &value, body.base.as_deref(), &s.intent);
    body.gate1 = verdict_records(&gate1);
    crate::timing::mark("gate1");
    let proposal = Proposal::from_value(&value).ok();
    if let Some(p) = &proposal {
        body.proposal = Some(proposal_record(p, &gate1.packet, &gate1));
    }
    let mut signals = gate1_signals(&gate1, proposal.as_ref());
    progress.phase("gate1", if gate1.passed() { "every rule attests" } else { "objection" });
    if !gate1.passed() {
        let first = gate1.first_objection().expect("a gate that did not pass has an objection");
        let ending = Ending::new(Outcome::Rejected, Reason::Gate1)
            .detail(format!("{}: {}", first.code.unwrap_or("OBJECTION"), first.reason))
            .signals(signals);
        return settle(s, id, body, ending, None);
    }
    let proposal = proposal.expect("Gate 1 passed, so the proposal parsed");
    let patch = proposal.patches[0].clone();
    let path = patch.path().to_string();

    // A target with uncommitted changes: the commit would carry them.
    let dirty = match &fence {
        Some(f) => f.before.contains_key(&path),
        None => s.repo.is_dirty(&path)?,
    };
    if dirty {
        let ending = Ending::new(Outcome::Rejected, Reason::TargetDirty)
            .detail(format!("{path} has uncommitted changes; the patch would have committed them"))
            .signals(signals);
        return settle(s, id, body, ending, None);
    }
    let before = match judged_bytes(s, body.base.as_deref(), &patch) {
        Ok(b) => b,
        Err(why) => {
            let ending = Ending::new(Outcome::Failed, Reason::UnexpectedChanges).detail(why).signals(signals);
            return settle(s, id, body, ending, None);
        }
    };
    let old = before.as_deref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
    let new = crate::patch::resolve(&patch, before.as_deref())?;
    let predicted_signals = Signals { ci_pass: 1.0, human_score: 1.0, ..signals };
    let predicted = utility(&predicted_signals, &s.rails.utility.weights);

    // Critics (Gate 1, once the rules attest): an objection only takes the
    // proposal out of auto-merge and is shown first at Gate 2.
    let critics = if s.rails.critics.is_empty() {
        Vec::new()
    } else {
        let history = s.history()?;
        crate::gate::critics::gate(
            &s.rails,
            &history,
            &body.pick.provider,
            &gate1.packet,
            &proposal.rationale,
            &path,
            &old,
            &new,
            &s.intent.text,
            &root,
            &mut super::Generating(&mut *progress),
            crate::clock::now(),
        )
    };
    body.gate1.extend(critics.iter().filter_map(|c| c.record()));

    // Gate 2.
    let lines = gate1.stats.map_or(u64::MAX, |st| st.changed());
    let auto = two::auto_merge(
        &s.rails,
        AutoMergeCase { path: &path, lines, tier, predicted, loop_step: fence.is_some(), remote: false },
    )
    .is_ok()
        && critics.iter().all(|c| c.allows_auto_merge())
        // What a human edited is shown to them again, never merged unseen.
        && edited.is_none();
    let (decision, by) = if auto {
        (Some(Decision::Approve { score: AUTO_SCORE }), "auto".to_string())
    } else if let Some(g) = gate2.as_deref_mut() {
        let review = Review {
            id,
            provider: &body.pick.provider,
            rationale: &proposal.rationale,
            focus: &body.pick.focus,
            verdicts: &body.gate1,
            op: patch.op().as_str(),
            path: &path,
            old: &old,
            new: &new,
            added: gate1.stats.map_or(0, |x| x.added),
            removed: gate1.stats.map_or(0, |x| x.removed),
            next_steps: &proposal.next_steps,
            predicted,
            default_score: 1.0,
        };
        (Some(g.decide(&review)), s.identity().display().to_string())
    } else {
        (None, String::new())
    };
    // Nobody to ask, and the very same proposal already waits: say so
    // rather than queue it twice (a heartbeat under cron would pile them up).
    if decision.is_none() {
        if let Some(twin) = super::pending::twin(s, id, &gate1.packet)? {
            let ending = Ending::new(Outcome::Noop, Reason::AlreadyPending)
                .detail(format!("the same proposal already waits for a human as {twin}"));
            return settle(s, id, body, ending, None);
        }
    }
    match decision {
        None | Some(Decision::Skip) | Some(Decision::Quit) => {
            let quit = decision == Some(Decision::Quit);
            if decision.is_some() {
                body.gate2 = Some(Gate2Record { by, decision: Choice::Skip, human_score: 0.0, reason: None });
            }
            Pending::new(id, value, &gate1.packet).save(&s.ws)?;
            let reason = if decision.is_none() { Reason::NoHuman } else { Reason::Skipped };
            let mut report = settle(s, id, body, Ending::new(Outcome::Pending, reason), None)?;
            report.pending = Some(s.ws.rel(&format!("logs/pending/{id}.json")));
            report.quit = quit;
            Ok(report)
        }
        Some(Decision::Edit { proposal }) => {
            progress.phase("edited", "Gate 1 again, on the proposal as you saved it");
            let from = edited.unwrap_or_else(|| gate1.packet.clone());
            judge(s, id, body, proposal, tier, gate2, fence, progress, Some(from))
        }
        Some(Decision::Interrupt) => {
            let ending = Ending::new(Outcome::Skipped, Reason::Interrupted)
                .detail("Ctrl-C at Gate 2; nothing was applied".to_string());
            settle(s, id, body, ending, None)
        }
        Some(Decision::Reject { reason }) => {
            body.gate2 = Some(Gate2Record { by, decision: Choice::Reject, human_score: 0.0, reason });
            settle(s, id, body, Ending::new(Outcome::Rejected, Reason::Human).signals(signals), None)
        }
        Some(Decision::Approve { score }) => {
            if !(0.0..=1.0).contains(&score) {
                return Err(StepError::BadScore { what: "the human score", value: score });
            }
            let reason = edited.map(|p| format!("edited at Gate 2; the provider's proposal was packet {p}"));
            body.gate2 = Some(Gate2Record { by, decision: Choice::Approve, human_score: score, reason });
            signals.human_score = score;
            let mut fence = match fence {
                Some(f) if auto => f,
                Some(mut f) => {
                    // A human took their time at Gate 2, and may have used it:
                    // a commit or an edit from another terminal is theirs, not
                    // the fence's to undo. Only a child left running could
                    // also have acted then, which the sandbox rules out (its
                    // PID namespace ends with the child); with the sandbox
                    // off, such a change fails the step and stays as it is.
                    let during = f.changed(&s.repo, &s.rails.paths);
                    if let Some(ending) = changed_at_gate2(s, &body, &during) {
                        return settle(s, id, body, ending.signals(signals), None);
                    }
                    Fence::take(&s.repo, s.ws.home_rel())?
                }
                None => Fence::take(&s.repo, s.ws.home_rel())?,
            };
            apply_and_score(s, id, body, &patch, before.as_deref(), signals, &mut fence, progress)
        }
    }
}

/// How a step ends when something changed while a human was deciding at
/// Gate 2: HEAD moved (the approval was for another base), or, with the
/// sandbox off, anything at all (a child left running could have done it;
/// nothing is put back, since it may be the human's).
fn changed_at_gate2(s: &Session, body: &StepBody, during: &[String]) -> Option<Ending> {
    let head = s.repo.head_commit();
    if head.as_deref() != body.base.as_deref() {
        let detail = format!(
            "HEAD moved from {} to {} while the proposal was at Gate 2; nothing was applied",
            body.base.as_deref().map_or("(no commit)", |b| &b[..b.len().min(12)]),
            head.as_deref().map_or("(no commit)", |h| &h[..h.len().min(12)]),
        );
        return Some(Ending::new(Outcome::Failed, Reason::HeadMoved).detail(detail));
    }
    if during.is_empty() || s.rails.sandbox.mode != crate::sandbox::Mode::Off {
        return None;
    }
    let mut shown: Vec<&str> = during.iter().take(8).map(String::as_str).collect();
    if during.len() > 8 {
        shown.push("…");
    }
    let detail = format!(
        "changed while the proposal was at Gate 2, with the sandbox off (a child may still run): {}; nothing was applied or put back",
        shown.join(", ")
    );
    Some(Ending::new(Outcome::Failed, Reason::UnexpectedChanges).detail(detail))
}

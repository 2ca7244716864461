//! A pending proposal replaced by a revision the bots adopted (the agents
//! API, seed 004), and the narrow auto-merge of a remote candidate.
//!
//! A revision is judged like any proposal: the pending one must still be
//! the proposal the log names (else `PENDING_TAMPERED`), Gate 1 runs on the
//! revised one, and when it passes a `pending` step entry with the new
//! packet hash and verdicts is logged before the pending file is rewritten.
//! Attestations on the old packet then no longer count (`agents::policy`).
//! Nothing here applies anything: the revised proposal still waits for a
//! human (or for the opt-in remote auto-merge, which the caller has checked).

use crate::gate::two::{AUTO_SCORE, Decision, Gate2, Review};
use crate::gate::{self, IntentRef};
use crate::propose::Proposal;
use crate::record::{Outcome, Reason};

use super::approval::{proposal_record, verdict_records};
use super::pending::{Pending, decide_as, pending_body, tampered, view};
use super::{Progress, Report, Session, StepError};

/// What became of a revision.
#[derive(Clone, Debug, PartialEq)]
pub enum Replaced {
    /// Logged as entry `seq`; the proposal now stands on `packet`.
    Adopted { packet: String, seq: u64 },
    /// Gate 1 objects to the revised proposal; nothing changed.
    Objected { code: String, reason: String },
}

/// Replaces the proposal of the pending step `id` with `value`, because `why`.
pub fn replace_pending(s: &mut Session, id: &str, value: serde_json::Value, why: &str) -> Result<Replaced, StepError> {
    let mut body = pending_body(s, id)?;
    if let Err(w) = view(s, id, &body) {
        return Err(tampered(s, id, body, w));
    }
    let tier = crate::trust::tier_of(&*s.history()?, &s.rails.trust, &body.pick.provider);
    let root = s.ws.root().to_path_buf();
    let intent = IntentRef { hash: &body.intent, text: &s.intent.text };
    let gate1 = gate::evaluate_value(&root, &s.rails, tier, &value, body.base.as_deref(), intent);
    if !gate1.passed() {
        let first = gate1.first_objection().expect("a gate that did not pass has an objection");
        return Ok(Replaced::Objected {
            code: first.code.unwrap_or("OBJECTION").to_string(),
            reason: first.reason.clone(),
        });
    }
    let proposal = Proposal::from_value(&value)?;
    body.gate1 = verdict_records(&gate1);
    body.proposal = Some(proposal_record(&proposal, &gate1.packet, &gate1));
    body.outcome = Outcome::Pending;
    body.reason = Some(Reason::Revised);
    body.detail = Some(super::settle::bound(why, super::settle::MAX_TEXT));
    super::settle::bound_body(&mut body);
    // The log first: a file the log does not name yet is a tampered one.
    let entry = s.append_step(id, &body)?;
    Pending::new(id, value, &gate1.packet).save(&s.ws)?;
    Ok(Replaced::Adopted { packet: gate1.packet, seq: entry.seq })
}

/// The opt-in auto-merge of a remote candidate (`gate2.by = "auto"`): only
/// for the agents API, once the rails' `[gate.auto_merge]` names
/// `remote = true` and every one of its conditions and the quorum hold —
/// the caller (`serve::agents`) checks them under the same session. The
/// proposal is still verified against the log and judged again.
pub fn approve_auto(s: &mut Session, id: &str, progress: &mut dyn Progress) -> Result<Report, StepError> {
    decide_as(s, id, &mut Auto, AUTO_SCORE, Some("auto".into()), None, progress)
}

/// Gate 2 answered by the narrow auto-merge rule.
struct Auto;

impl Gate2 for Auto {
    fn decide(&mut self, _review: &Review<'_>) -> Decision {
        Decision::Approve { score: AUTO_SCORE }
    }
}

//! A pending proposal replaced by a revision the bots adopted (the agents
//! API, seed 004): Gate 1 runs again on the revised proposal and, when it
//! passes, a `pending` step entry with the new packet hash and verdicts is
//! logged and the pending file rewritten. Attestations on the old packet
//! then no longer count (`agents::policy`). Nothing here applies anything:
//! the revised proposal still waits for a human.

use super::*;

/// What became of a revision.
#[derive(Clone, Debug, PartialEq)]
pub enum Replaced {
    /// Logged as entry `seq`; the proposal now stands on `packet`.
    Adopted { packet: String, seq: u64 },
    /// Gate 1 objects to the revised proposal; nothing changed.
    Objected { code: String, reason: String },
}

/// Replaces the proposal of the pending step `id` with `value`.
pub fn replace_pending(s: &mut Session, id: &str, value: serde_json::Value, why: &str) -> Result<Replaced, StepError> {
    let pending = pending_for(s, id)?;
    let mut body = pending.body.clone();
    let root = s.ws.root().to_path_buf();
    let tier = s.history()?.tiers(&s.rails.trust).get(&body.pick.provider).map_or(0, |t| t.tier);
    let gate1 = approve::evaluate_value(&root, &s.rails, tier, &value, body.base.as_deref(), &body.intent);
    if !gate1.passed() {
        let first = gate1.first_objection().expect("a gate that did not pass has an objection");
        return Ok(Replaced::Objected {
            code: first.code.unwrap_or("OBJECTION").to_string(),
            reason: first.reason.clone(),
        });
    }
    let proposal = Proposal::from_value(&value)?;
    let patch = proposal.patches[0].clone();
    let current = crate::patch::Target::open(&root, patch.path())?;
    body.gate1 = verdict_records(&gate1);
    body.proposal = Some(proposal_record(&proposal, &gate1.packet, &gate1));
    body.reason = Some("revised".into());
    body.detail = Some(why.to_string());
    let left = proposal.next_steps.iter().any(|n| !n.trim().is_empty());
    let predicted = Signals {
        ci_pass: 1.0,
        path_ok: 1.0,
        diff_ratio: gate1.diff_ratio.unwrap_or(1.0),
        atomic_ok: 1.0,
        left_next_steps: if left { 1.0 } else { 0.0 },
        human_score: 1.0,
    };
    let replaced = Pending {
        id: id.to_string(),
        created: pending.created.clone(),
        body: body.clone(),
        proposal: value,
        target: hash_of(current.current()),
        predicted,
    };
    let path = Pending::path(&s.ws, id);
    let bytes = serde_json::to_vec_pretty(&replaced).expect("a pending proposal serialises");
    crate::fsutil::write_atomic(&path, &bytes).map_err(|e| crate::error::IoError::new("write", &path, e))?;
    let entry = s.append(Kind::Step, Some(id), &body)?;
    Ok(Replaced::Adopted { packet: gate1.packet, seq: entry.seq })
}

/// Auto-merges the pending remote candidate `id` (`gate2.by = "auto"`):
/// only for the agents API, once the rails' `[gate.auto_merge]` names
/// `remote = true` and every one of its conditions and the quorum hold —
/// the caller (`serve::agents`) checks them under the same session.
pub fn approve_auto(s: &mut Session, id: &str, progress: &mut dyn Progress) -> Result<Report, StepError> {
    approve_by(s, id, AUTO_SCORE, Some("auto".into()), progress)
}

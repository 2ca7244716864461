//! The signed writes: join, verify, candidates, attestations, objections,
//! revision proposals and votes (and the operations-only route that only
//! refuses). Each runs [`super::pipeline`] first.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::store::{Effect, IdemKey, Job, Outcome};
use super::{Agents, Signed, WriteKind, check_trust, fail, pipeline, raw_json, replay};
use crate::agents::policy::Verdict;
use crate::agents::{AgentError, bodies};
use crate::serve::AppState;

type Reply = Result<Response, AgentError>;

async fn run(state: AppState, req: Request, kind: WriteKind, then: impl AsyncFnOnce(Signed) -> Reply) -> Response {
    match pipeline(&state, req, kind).await {
        Err((rid, e)) => fail(&rid, e),
        Ok(s) => {
            let rid = s.rid.clone();
            let agents = s.agents.clone();
            let res = then(s).await.unwrap_or_else(|e| fail(&rid, e));
            if agents.checkpoint_due() {
                tokio::task::spawn_blocking(move || agents.maybe_checkpoint());
            }
            res
        }
    }
}

/// Queues a job for the store's writer and waits for its batch to commit
/// (no thread is held while waiting).
async fn commit(agents: &Arc<Agents>, job: Job) -> Result<Outcome, AgentError> {
    agents.store.commit_async(job).await.map_err(|e| AgentError::Internal(format!("the write was not stored: {e}")))
}

/// The response of a committed write, or the error of a refused one.
fn answer(s: &Signed, out: Outcome) -> Reply {
    match out {
        Outcome::Committed { status, body, .. } => {
            Ok(raw_json(StatusCode::from_u16(status).unwrap_or(StatusCode::ACCEPTED), body))
        }
        Outcome::NonceReplay => Err(AgentError::NonceReplay { nonce: s.headers.nonce.clone() }),
        Outcome::IdemTaken(row) => replay(s, &row),
    }
}

fn respond(status: u16, body: impl FnOnce(i64) -> Value + Send + 'static) -> super::store::Respond {
    Box::new(move |seq| (status, serde_json::to_vec(&body(seq)).unwrap_or_default()))
}

fn job(s: &Signed, record: crate::agents::ledger::Record, effect: Effect, respond: super::store::Respond) -> Job {
    Job { record, effect, idem: None, respond, now_ms: s.now_ms }
}

/// Looks the idempotency key up: a stored response to replay, a conflict,
/// or a claim for this request.
fn idempotency(s: &Signed) -> Result<Result<super::Claim, Response>, AgentError> {
    let key = s.idempotency_key.clone().ok_or(AgentError::IdempotencyKeyRequired)?;
    if let Some(row) = s.agents.store.idempotent(&key).map_err(|e| AgentError::Internal(e.to_string()))? {
        return Ok(Err(replay(s, &row)?));
    }
    match s.agents.claim(&key) {
        Some(c) => Ok(Ok(c)),
        None => Err(AgentError::IdempotencyConflict { why: "a request with this key is still in progress".into() }),
    }
}

fn idem_key(s: &Signed) -> Option<IdemKey> {
    s.idempotency_key.clone().map(|key| IdemKey {
        key,
        actor: s.bot_id.clone(),
        operation: format!("POST {}", s.path),
        fingerprint: s.fingerprint(),
    })
}

/// `POST /v1/agents/join`
pub async fn join(State(state): State<AppState>, req: Request) -> Response {
    run(state, req, WriteKind { join: true }, async |s: Signed| {
        bodies::bot_only(&s.body).map_err(AgentError::Validation)?;
        if !s.rails().agents.self_serve {
            return Err(AgentError::SelfServeDisabled);
        }
        let known = s.agents.store.bot(&s.bot_id);
        let status = if known.is_some() { 200 } else { 201 };
        let verified = known.as_ref().is_some_and(|b| b.verified);
        let (bot, provider) = (s.bot_id.clone(), crate::agents::provider(&s.bot_id));
        let record = s.record("join", None, None, None);
        let r = respond(status, move |seq| {
            json!({"botId": bot, "registered": true, "joined": status == 201, "verified": verified,
                   "trustTier": if verified { "VERIFIED" } else { "UNVERIFIED" }, "provider": provider, "writeSeq": seq,
                   "next": "POST /v1/candidates with verified=false and a fresh Idempotency-Key"})
        });
        answer(&s, commit(&s.agents, job(&s, record, Effect::Join, r)).await?)
    })
    .await
}

/// `POST /v1/agents/verify`: an operator's vouch statement in `agentkit`.
pub async fn verify(State(state): State<AppState>, req: Request) -> Response {
    run(state, req, WriteKind { join: false }, async |s: Signed| {
        bodies::bot_only(&s.body).map_err(AgentError::Validation)?;
        let Some(statement) = s.agentkit.clone() else {
            return Err(AgentError::AgentKitFailed {
                why: "no agentkit header: send the operator's vouch statement (ratchet agent vouch) in it".into(),
            });
        };
        let rails = s.rails();
        let v = crate::agents::vouch::check(
            &statement,
            &s.bot_id,
            &s.headers.nonce,
            &rails.agents.audience,
            &rails.agents.operator_keys,
        )
        .map_err(|e| AgentError::AgentKitFailed { why: e.0 })?;
        let record = s.record("verify", None, None, None);
        let (bot, human) = (s.bot_id.clone(), v.linked_human_id.clone());
        let r = respond(200, move |seq| {
            json!({"botId": bot, "verified": true, "trustTier": "VERIFIED", "linkedHumanId": human, "writeSeq": seq})
        });
        let effect = Effect::Verify { linked_human: v.linked_human_id, operator: v.operator };
        answer(&s, commit(&s.agents, job(&s, record, effect, r)).await?)
    })
    .await
}

/// The story a verdict, revision or vote is about: a remote candidate
/// still waiting, on `packet` (when given).
fn open_story(s: &Signed, id: &str, packet: Option<&str>) -> Result<super::Story, AgentError> {
    let story = s.book.stories.get(id).cloned().ok_or_else(|| AgentError::StoryNotFound { id: id.to_string() })?;
    if story.outcome != crate::record::Outcome::Pending {
        return Err(AgentError::StoryClosed { id: id.to_string(), outcome: story.outcome.word().to_string() });
    }
    if let Some(p) = packet {
        if p != story.packet {
            return Err(AgentError::PacketMismatch { current: story.packet.clone(), sent: p.to_string() });
        }
    }
    Ok(story)
}

/// `POST /v1/agents/attestations` and `/objections`.
async fn verdict(state: AppState, req: Request, verdict: Verdict) -> Response {
    run(state, req, WriteKind { join: false }, async move |s: Signed| {
        let roles = &s.rails().agents.roles;
        let v = match verdict {
            Verdict::Attest => bodies::attestation(&s.body, roles),
            Verdict::Object => bodies::objection(&s.body, roles),
        }
        .map_err(AgentError::Validation)?;
        check_trust(&s, v.verified)?;
        let story = open_story(&s, &v.story_id, Some(&v.packet_hash))?;
        if story.author == s.bot_id {
            return Err(AgentError::ActionNotAllowed {
                why: format!(
                    "a bot may not {} its own candidate (story {})",
                    if verdict == Verdict::Attest { "attest to" } else { "object to" },
                    story.id
                ),
            });
        }
        let kind = if verdict == Verdict::Attest { "attestation" } else { "objection" };
        let record = s.record(kind, Some(story.id.clone()), None, Some(v.packet_hash.clone()));
        let (sid, packet, role) = (story.id.clone(), v.packet_hash.clone(), v.role.clone());
        let r = respond(202, move |seq| {
            json!({"accepted": true, "kind": kind, "storyId": sid, "packetHash": packet, "role": role, "writeSeq": seq,
                   "machineRoom": format!("/v1/stories/{sid}/machine-room")})
        });
        let effect = Effect::Verdict { verdict, role: v.role, severity: v.severity, reason: v.reason };
        let out = commit(&s.agents, job(&s, record, effect, r)).await?;
        let am = &s.rails().gate.auto_merge;
        if verdict == Verdict::Attest && am.enabled && am.remote && matches!(out, Outcome::Committed { .. }) {
            let (agents, id) = (s.agents.clone(), story.id.clone());
            tokio::task::spawn_blocking(move || {
                if let Err(e) = auto_merge(&agents, &id) {
                    tracing::warn!(story = %id, error = %e, "remote auto-merge did not run");
                }
            });
        }
        answer(&s, out)
    })
    .await
}

pub async fn attestations(State(state): State<AppState>, req: Request) -> Response {
    verdict(state, req, Verdict::Attest).await
}

pub async fn objections(State(state): State<AppState>, req: Request) -> Response {
    verdict(state, req, Verdict::Object).await
}

/// `POST /v1/candidates`: a proposal of `remote:<botId>` enters the loop.
pub async fn candidates(State(state): State<AppState>, req: Request) -> Response {
    run(state, req, WriteKind { join: false }, async |s: Signed| {
        let c = bodies::candidate(&s.body).map_err(AgentError::Validation)?;
        check_trust(&s, c.verified)?;
        let claim = match idempotency(&s)? {
            Ok(claim) => claim,
            Err(replayed) => return Ok(replayed),
        };
        let s = Arc::new(s);
        let s2 = s.clone();
        let out = tokio::task::spawn_blocking(move || submit(&s2, c))
            .await
            .map_err(|e| AgentError::Internal(format!("a worker failed: {e}")))??;
        drop(claim);
        answer(&s, out)
    })
    .await
}

/// The candidate's loop work, under the workspace lock: the base check,
/// Gate 1 (`step::propose`), the ledger record with the stored response,
/// and the anchor.
fn submit(s: &Signed, c: bodies::Candidate) -> Result<Outcome, AgentError> {
    let agents = &s.agents;
    let _one = agents.loop_lock.lock().unwrap_or_else(|p| p.into_inner());
    if agents.store.nonce_used(&s.bot_id, &s.headers.nonce).map_err(|e| AgentError::Internal(e.to_string()))? {
        return Err(AgentError::NonceReplay { nonce: s.headers.nonce.clone() });
    }
    if let Some(k) = &s.idempotency_key {
        if let Some(row) = agents.store.idempotent(k).map_err(|e| AgentError::Internal(e.to_string()))? {
            return Ok(Outcome::IdemTaken(row));
        }
    }
    let mut session = session(agents)?;
    let head = session.repo.head_commit().unwrap_or_default();
    if c.base != head {
        return Err(AgentError::BaseStale { base: c.base.clone(), head });
    }
    let provider = crate::agents::provider(&s.bot_id);
    let packet = crate::propose::Proposal::from_value(&c.proposal)
        .map(|p| p.packet(Some(&head), &session.intent.hash))
        .unwrap_or_else(|_| crate::propose::packet_hash(&c.proposal, Some(&head), &session.intent.hash));
    // A retry after a crash between the log and the store: the step is
    // already there, by this bot, on this packet.
    let history = session.history().map_err(step_error)?;
    let existing = history
        .steps()
        .iter()
        .rev()
        .find(|st| st.pick.provider == provider && st.body.proposal.as_ref().is_some_and(|p| p.packet == packet))
        .map(|st| st.id.clone());
    let id = match existing {
        Some(id) => id,
        None => crate::step::propose(&mut session, &provider, c.proposal.clone()).map_err(step_error)?.id,
    };
    agents.invalidate();
    // A crash here leaves the step logged and the write unstored: the retry finds the step.
    crate::step::inflight::fault("agents_candidate_stored");
    let history = session.history().map_err(step_error)?;
    let st = history.step(&id).ok_or_else(|| AgentError::Internal(format!("step {id} is not in the log")))?;
    let outcome = st.outcome();
    let gate1 = st.body.gate1.clone();
    let objection = gate1.iter().find(|v| v.verdict == crate::record::Stance::Object).cloned();
    let record = s.record("candidate", Some(id.clone()), None, Some(packet.clone()));
    let effect = Effect::Candidate {
        hash: packet.clone(),
        story: id.clone(),
        base: head.clone(),
        proposal: c.proposal.to_string(),
        metadata: c.metadata.as_ref().map(Value::to_string),
    };
    let status = match outcome {
        crate::record::Outcome::Pending => "PENDING",
        crate::record::Outcome::Rejected => "REJECTED",
        _ => "CLOSED",
    };
    let (sid, p, reason) = (id.clone(), packet.clone(), st.body.reason);
    let quorum = s.rails().gate.quorum.clone();
    let r = respond(202, move |seq| {
        json!({
            "accepted": true, "storyId": sid, "candidateHash": p, "packetHash": p, "status": status,
            "outcome": outcome.word(), "reason": reason, "writeSeq": seq,
            "gate1": {"rules": gate1, "objection": objection,
                      "quorum": {"minAttestations": quorum.min_attestations, "maxObjections": quorum.max_objections,
                                 "requiredRoles": quorum.required_roles, "requireVerified": quorum.require_verified}},
            "gate2": {"waitingFor": if status == "PENDING" { "quorum, then a human at a terminal (ratchet approve)" } else { "nothing: the story is closed" }},
            "machineRoom": format!("/v1/stories/{sid}/machine-room"),
            "note": "202 is write-path success; a candidate is not a merge: only a human merges."
        })
    });
    let mut job = job(s, record, effect, r);
    job.idem = idem_key(s);
    let out = agents.store.commit(job).map_err(AgentError::Internal)?;
    if let Outcome::Committed { seq, .. } = &out {
        anchor(&mut session, agents, "candidate", &id, *seq, &packet);
    }
    Ok(out)
}

/// Appends an `agents` anchor at ledger record `seq`; best effort (the
/// write is stored either way, and the next anchor covers it).
fn anchor(session: &mut crate::step::Session, agents: &Agents, event: &str, story: &str, seq: i64, packet: &str) {
    let Ok((writes, chain)) = agents.store.head() else { return };
    let _ = seq;
    let a = crate::agents::ledger::Anchor {
        event: event.into(),
        story: Some(story.to_string()),
        writes,
        chain: crate::journal::line::hex(&chain),
        quorum: None,
        packet: Some(packet.to_string()),
    };
    if let Err(e) = session.record(&a) {
        tracing::warn!(error = %e, "could not anchor the agents ledger in the log");
    }
    agents.invalidate();
}

fn session(agents: &Agents) -> Result<crate::step::Session, AgentError> {
    crate::step::Session::begin(&agents.ws, "serve").map_err(step_error)
}

fn step_error(e: crate::step::StepError) -> AgentError {
    use crate::error::Coded;
    match e {
        crate::step::StepError::Lock(l) => AgentError::WorkspaceBusy { holder: l.to_string(), retry_after: 5 },
        other => AgentError::Unavailable {
            why: format!(
                "{}: {other} (the workspace's operator must act: {})",
                other.code(),
                other.hint().unwrap_or_default()
            ),
        },
    }
}

/// Auto-merges a remote candidate when the rails name `remote` in
/// `[gate.auto_merge]` and every condition holds: quorum on the current
/// packet, the paths, the lines, the provider's tier and the predicted
/// utility. Returns whether it merged.
pub fn auto_merge(agents: &Agents, id: &str) -> Result<bool, AgentError> {
    let _one = agents.loop_lock.lock().unwrap_or_else(|p| p.into_inner());
    let mut s = session(agents)?;
    let am = s.rails.gate.auto_merge.clone();
    if !(am.enabled && am.remote) {
        return Ok(false);
    }
    // The proposal as the log names it, judged again now (a tampered
    // pending file is never auto-merged).
    let waiting = crate::step::waiting(&s).map_err(step_error)?;
    let Some(crate::step::PendingState::Ready(v)) = waiting.into_iter().find(|(w, _)| w == id).map(|(_, st)| st) else {
        return Ok(false);
    };
    if !v.passes {
        return Ok(false);
    }
    let provider = v.provider.clone();
    let history = s.history().map_err(step_error)?;
    let tier = crate::trust::tier_of(&history, &s.rails.trust, &provider);
    let case = crate::gate::two::AutoMergeCase {
        path: &v.path,
        lines: v.added + v.removed,
        tier,
        predicted: v.predicted,
        loop_step: false,
        remote: true,
    };
    if crate::gate::two::auto_merge(&s.rails, case).is_err() {
        return Ok(false);
    }
    let packet = v.packet().to_string();
    let anchor =
        match crate::agents::gate2::before_decision(&s.rails, &provider, id, &packet, true, agents.store.as_ref()) {
            Ok(Some(a)) => a,
            _ => return Ok(false),
        };
    s.record(&anchor).map_err(step_error)?;
    let report = crate::step::approve_auto(&mut s, id, &mut crate::step::Quiet).map_err(step_error)?;
    agents.invalidate();
    Ok(report.outcome == crate::record::Outcome::Merged)
}

/// `POST /v1/stories/{id}/revision-proposals`
pub async fn revision_proposals(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    run(state, req, WriteKind { join: false }, async move |s: Signed| {
        let r = bodies::revision(&s.body).map_err(AgentError::Validation)?;
        check_trust(&s, r.verified)?;
        let story = open_story(&s, &id, Some(&r.base_packet_hash))?;
        let claim = match idempotency(&s)? {
            Ok(claim) => claim,
            Err(replayed) => return Ok(replayed),
        };
        let current = current_proposal(&s, &story)?;
        let mut revised = current.clone();
        revised["patch"] = r.patch.clone();
        // Gate 1 on the revised proposal now, read-only: a revision the rules
        // refuse is refused here, not after the votes.
        let rails = s.rails();
        let tier = s.book.tiers.get(&crate::agents::provider(&story.author)).copied().unwrap_or(0);
        let root = s.agents.ws.root().to_path_buf();
        let gate1 = crate::gate::evaluate_value(&root, rails, tier, &revised, story.base.as_deref(), &story.intent);
        if !gate1.passed() {
            let first = gate1.first_objection().expect("a gate that did not pass has an objection");
            return Err(AgentError::Gate1Objection {
                code: first.code.unwrap_or("OBJECTION").to_string(),
                reason: first.reason.clone(),
            });
        }
        let record = s.record("revision", Some(story.id.clone()), None, Some(r.base_packet_hash.clone()));
        let (sid, base, packet) = (story.id.clone(), r.base_packet_hash.clone(), gate1.packet.clone());
        let needed = crate::agents::policy::votes_needed(&rails.gate.quorum);
        let resp = respond(202, move |seq| {
            json!({"accepted": true, "proposalId": format!("rev-{seq}"), "storyId": sid, "basePacketHash": base,
                   "packetHash": packet, "status": "OPEN", "votesNeeded": needed, "writeSeq": seq,
                   "votes": format!("/v1/stories/{sid}/revision-proposals/rev-{seq}/votes")})
        });
        let effect = Effect::Revision { packet: gate1.packet.clone(), proposal: revised.to_string(), reason: r.reason };
        let mut job = job(&s, record, effect, resp);
        job.idem = idem_key(&s);
        let out = commit(&s.agents, job).await?;
        drop(claim);
        answer(&s, out)
    })
    .await
}

/// The proposal a story stands on now: the candidate's, or the adopted revision's.
pub fn current_proposal(s: &Signed, story: &super::Story) -> Result<Value, AgentError> {
    current_proposal_of(&s.agents, story)
}

pub fn current_proposal_of(agents: &Agents, story: &super::Story) -> Result<Value, AgentError> {
    let internal = |e: super::store::StoreError| AgentError::Internal(e.to_string());
    let revs = agents.store.revisions(&story.id).map_err(internal)?;
    let text = match revs.iter().rev().find(|r| r.state == "ADOPTED" && r.packet == story.packet) {
        Some(r) => r.proposal.clone(),
        None => {
            agents
                .store
                .candidate_of(&story.id)
                .map_err(internal)?
                .ok_or_else(|| AgentError::StoryNotFound { id: story.id.clone() })?
                .proposal
        }
    };
    serde_json::from_str(&text).map_err(|e| AgentError::Internal(format!("a stored proposal is not JSON: {e}")))
}

/// `POST /v1/stories/{id}/revision-proposals/{proposalId}/votes`
pub async fn votes(State(state): State<AppState>, Path((id, rev)): Path<(String, String)>, req: Request) -> Response {
    run(state, req, WriteKind { join: false }, async move |s: Signed| {
        let roles = &s.rails().agents.roles;
        let v = bodies::vote(&s.body, roles).map_err(AgentError::Validation)?;
        check_trust(&s, v.verified)?;
        let story = open_story(&s, &id, None)?;
        let internal = |e: super::store::StoreError| AgentError::Internal(e.to_string());
        let revision = s
            .agents
            .store
            .revision(&rev)
            .map_err(internal)?
            .filter(|r| r.story == story.id)
            .ok_or_else(|| AgentError::RevisionNotFound { story: story.id.clone(), id: rev.clone() })?;
        if revision.state != "OPEN" {
            return Err(AgentError::RevisionClosed { id: rev.clone(), state: revision.state.to_lowercase() });
        }
        if revision.base_packet != story.packet {
            return Err(AgentError::PacketMismatch {
                current: story.packet.clone(),
                sent: revision.base_packet.clone(),
            });
        }
        if revision.bot_id == s.bot_id {
            return Err(AgentError::ActionNotAllowed {
                why: format!("a bot may not vote on its own revision ({rev})"),
            });
        }
        let claim = match idempotency(&s)? {
            Ok(claim) => claim,
            Err(replayed) => return Ok(replayed),
        };
        let record = s.record("vote", Some(story.id.clone()), Some(rev.clone()), Some(revision.packet.clone()));
        let (sid, rid2, vote) = (story.id.clone(), rev.clone(), v.vote.clone());
        let resp = respond(202, move |seq| {
            json!({"accepted": true, "storyId": sid, "proposalId": rid2, "vote": vote, "writeSeq": seq,
                   "machineRoom": format!("/v1/stories/{sid}/machine-room")})
        });
        let effect = Effect::Vote { vote: v.vote, role: v.role, reason: v.reason };
        let mut j = job(&s, record, effect, resp);
        j.idem = idem_key(&s);
        let out = commit(&s.agents, j).await?;
        drop(claim);
        if matches!(out, Outcome::Committed { .. }) {
            let agents = s.agents.clone();
            let _ = tokio::task::spawn_blocking(move || adopt_if_carried(&agents, &story.id, &rev)).await;
        }
        answer(&s, out)
    })
    .await
}

/// Adopts revision `rev` of `story` when its votes carry it (see
/// `agents::policy::votes_needed`); returns whether it was adopted. When
/// the workspace is busy, it stays open and the next vote or read retries.
pub fn adopt_if_carried(agents: &Agents, story: &str, rev: &str) -> Result<bool, AgentError> {
    let internal = |e: super::store::StoreError| AgentError::Internal(e.to_string());
    let book = agents.book();
    let Ok(rails) = &book.rails else { return Ok(false) };
    let Some(st) = book.stories.get(story).cloned() else { return Ok(false) };
    let Some(revision) = agents.store.revision(rev).map_err(internal)? else { return Ok(false) };
    if revision.state != "OPEN" || st.outcome != crate::record::Outcome::Pending {
        return Ok(false);
    }
    if revision.base_packet != st.packet {
        agents.store.set_revision_state(rev, "STALE").map_err(internal)?;
        return Ok(false);
    }
    let q = &rails.gate.quorum;
    let votes = agents.store.votes(rev).map_err(internal)?;
    let eligible = |b: &str, verified: bool| b != revision.bot_id && (!q.require_verified || verified);
    let yes = votes.iter().filter(|(b, v, _, ver)| v == "YES" && eligible(b, *ver)).count() as u32;
    let no = votes.iter().filter(|(b, v, _, ver)| v == "NO" && eligible(b, *ver)).count() as u32;
    if yes < crate::agents::policy::votes_needed(q) || no > q.max_objections {
        return Ok(false);
    }
    let _one = agents.loop_lock.lock().unwrap_or_else(|p| p.into_inner());
    let mut session = session(agents)?;
    let value: Value = serde_json::from_str(&revision.proposal)
        .map_err(|e| AgentError::Internal(format!("a stored revision is not JSON: {e}")))?;
    let why = format!("revision {rev} by remote:{} adopted by {yes} YES vote(s): {}", revision.bot_id, revision.reason);
    match crate::step::replace_pending(&mut session, story, value, &why).map_err(step_error)? {
        crate::step::Replaced::Adopted { packet, .. } => {
            agents.store.set_revision_state(rev, "ADOPTED").map_err(internal)?;
            let (writes, _) = agents.store.head().map_err(internal)?;
            anchor(&mut session, agents, "revision", story, writes, &packet);
            Ok(true)
        }
        crate::step::Replaced::Objected { .. } => {
            agents.store.set_revision_state(rev, "REJECTED").map_err(internal)?;
            agents.invalidate();
            Ok(false)
        }
    }
}

/// `POST /v1/publish/{candidateHash}/compute`: operations-only in the seed;
/// here publication is a merge, which only a human at a terminal makes.
pub async fn publish_compute(req: Request) -> Response {
    let rid = super::rid_of(&req);
    fail(&rid, AgentError::OperationsOnly)
}

//! The reads: candidate status and evidence (read-only `x-api-key`), the
//! story's machine room, and the assistant orientation documents (status,
//! actions and gates only: never a vote direction).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Agents, Story, agents_of, fail, ok, rid_of};
use crate::agents::AgentError;
use crate::agents::policy::{QuorumState, Verdict, quorum};
use crate::serve::AppState;

/// Checks `x-api-key`: one of PUBLIC_API_KEYS, or a LoopKit agent key of
/// this server. Never a write credential (a producer key is refused).
async fn read_key(state: &AppState, agents: &Agents, headers: &HeaderMap) -> Result<(), AgentError> {
    let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim) else {
        return Err(AgentError::PublicKeyRequired { why: "candidate status and evidence need x-api-key".into() });
    };
    let digest = |k: &str| *blake3::hash(k.as_bytes()).as_bytes();
    let presented = digest(key);
    if agents.public_keys.iter().any(|k| subtle::ConstantTimeEq::ct_eq(&digest(k)[..], &presented[..]).into()) {
        return Ok(());
    }
    match crate::serve::auth::lookup(state, key).await {
        Ok(row) if row.kind == crate::loopkit::keys::KeyKind::Agent => Ok(()),
        Ok(_) => Err(AgentError::PublicKeyRequired {
            why: "a producer key is a write credential; reads take a read-only key".into(),
        }),
        Err(_) => Err(AgentError::PublicKeyRequired { why: "the x-api-key is not a read key of this server".into() }),
    }
}

fn internal(e: super::store::StoreError) -> AgentError {
    AgentError::Internal(e.to_string())
}

/// The story and quorum of a candidate hash (its first packet or its current one).
fn story_of_hash(agents: &Agents, hash: &str) -> Result<(Story, super::store::CandidateRow), AgentError> {
    let book = agents.book();
    let row = match agents.store.candidate(hash).map_err(internal)? {
        Some(r) => r,
        None => {
            let st = book
                .stories
                .values()
                .find(|s| s.packet == hash)
                .ok_or_else(|| AgentError::CandidateNotFound { hash: hash.to_string() })?;
            agents
                .store
                .candidate_of(&st.id)
                .map_err(internal)?
                .ok_or_else(|| AgentError::CandidateNotFound { hash: hash.to_string() })?
        }
    };
    let story = book
        .stories
        .get(&row.story)
        .cloned()
        .ok_or_else(|| AgentError::CandidateNotFound { hash: hash.to_string() })?;
    Ok((story, row))
}

fn quorum_of(agents: &Agents, story: &Story) -> Result<Option<QuorumState>, AgentError> {
    let book = agents.book();
    let Ok(rails) = &book.rails else { return Ok(None) };
    let verdicts = agents.store.verdicts(&story.id).map_err(internal)?;
    Ok(Some(quorum(&rails.gate.quorum, &story.author, &story.packet, &verdicts)))
}

fn waiting_for(story: &Story, q: &Option<QuorumState>) -> Value {
    match (story.status(), q) {
        ("PENDING", Some(q)) if q.met => json!(format!("a human at a terminal: ratchet approve {}", story.id)),
        ("PENDING", Some(q)) => json!(q.waiting_for),
        ("PENDING", None) => json!("the rails to be readable"),
        _ => Value::Null,
    }
}

async fn guarded(
    state: AppState,
    req: Request,
    keyed: bool,
    f: impl FnOnce(Arc<Agents>) -> Result<Value, AgentError> + Send + 'static,
) -> Response {
    let rid = rid_of(&req);
    let agents = match agents_of(&state) {
        Ok(a) => a,
        Err(e) => return fail(&rid, e),
    };
    if keyed {
        if let Err(e) = read_key(&state, &agents, req.headers()).await {
            return fail(&rid, e);
        }
    }
    match tokio::task::spawn_blocking(move || f(agents)).await {
        Ok(Ok(v)) => ok(StatusCode::OK, &v),
        Ok(Err(e)) => fail(&rid, e),
        Err(e) => fail(&rid, AgentError::Internal(format!("a worker failed: {e}"))),
    }
}

/// `GET /v1/candidates/{hash}/status`
pub async fn candidate_status(State(state): State<AppState>, Path(hash): Path<String>, req: Request) -> Response {
    guarded(state, req, true, move |agents| {
        let (story, row) = story_of_hash(&agents, &hash)?;
        let q = quorum_of(&agents, &story)?;
        Ok(json!({
            "candidateHash": row.hash, "storyId": story.id, "status": story.status(), "outcome": story.outcome.word(),
            "reason": story.reason, "botId": story.author, "base": story.base, "path": story.path,
            "currentPacketHash": story.packet, "gate1": {"rules": story.gate1, "quorum": q},
            "gate2": {"waitingFor": waiting_for(&story, &q)},
        }))
    })
    .await
}

/// `GET /v1/candidates/{hash}/evidence`
pub async fn candidate_evidence(State(state): State<AppState>, Path(hash): Path<String>, req: Request) -> Response {
    guarded(state, req, true, move |agents| {
        let (story, row) = story_of_hash(&agents, &hash)?;
        let records = agents.store.records_of(&story.id).map_err(internal)?;
        let first = records.iter().find(|r| r.kind == "candidate");
        let parse = |t: &str| serde_json::from_str::<Value>(t).unwrap_or(Value::Null);
        let current = super::writes::current_proposal_of(&agents, &story).unwrap_or(Value::Null);
        Ok(json!({
            "candidateHash": row.hash, "storyId": story.id, "botId": row.bot_id, "base": row.base,
            "proposal": parse(&row.proposal), "metadata": row.metadata.as_deref().map(parse),
            "currentPacketHash": story.packet, "currentProposal": current,
            "signedWrite": first.map(|r| json!({"writeSeq": r.seq, "timestamp": r.timestamp, "nonce": r.nonce,
                "signature": r.signature, "keyOrder": r.order, "canonicalBody": r.body, "audience": r.audience, "path": r.path})),
            "ledger": records.iter().map(|r| json!({"writeSeq": r.seq, "kind": r.kind, "botId": r.bot_id, "packetHash": r.packet})).collect::<Vec<_>>(),
        }))
    })
    .await
}

/// `GET /v1/stories/{id}/machine-room`
pub async fn machine_room(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    guarded(state, req, false, move |agents| {
        // A vote may have carried a revision while the workspace was busy.
        for r in agents.store.revisions(&id).map_err(internal)? {
            if r.state == "OPEN" {
                let _ = super::writes::adopt_if_carried(&agents, &id, &r.id);
            }
        }
        let book = agents.book();
        let story = book.stories.get(&id).cloned().ok_or(AgentError::StoryNotFound { id: id.clone() })?;
        let q = quorum_of(&agents, &story)?;
        let verdicts = agents.store.verdicts(&story.id).map_err(internal)?;
        let list = |which: Verdict| {
            verdicts
                .iter()
                .filter(|v| v.verdict == which)
                .map(|v| {
                    json!({"botId": v.bot_id, "role": v.role, "packetHash": v.packet_hash, "current": v.packet_hash == story.packet,
                           "verified": v.verified, "severity": v.severity, "reason": v.reason, "writeSeq": v.seq})
                })
                .collect::<Vec<_>>()
        };
        let mut revisions = Vec::new();
        for r in agents.store.revisions(&story.id).map_err(internal)? {
            let votes = agents.store.votes(&r.id).map_err(internal)?;
            let count = |v: &str| votes.iter().filter(|x| x.1 == v).count();
            revisions.push(json!({"proposalId": r.id, "botId": r.bot_id, "basePacketHash": r.base_packet, "packetHash": r.packet,
                "state": r.state, "reason": r.reason, "writeSeq": r.write_seq,
                "votes": {"YES": count("YES"), "NO": count("NO"), "ABSTAIN": count("ABSTAIN")}}));
        }
        let candidate = agents.store.candidate_of(&story.id).map_err(internal)?;
        Ok(json!({
            "storyId": story.id, "status": story.status(), "outcome": story.outcome.word(), "botId": story.author,
            "candidateHash": candidate.map(|c| c.hash), "currentPacketHash": story.packet, "base": story.base,
            "path": story.path, "attestations": list(Verdict::Attest), "objections": list(Verdict::Object),
            "revisions": revisions,
            "gate1": {"rules": story.gate1, "quorum": q},
            "gate2": {"waitingFor": waiting_for(&story, &q), "by": "a human at a terminal; bots never merge"},
        }))
    })
    .await
}

fn guardrails() -> Value {
    json!([
        "Relay status, categories, action gates, and evidence links.",
        "Keep human actions and bot actions separate.",
        "Treat verification tiers as gating facts.",
        "Do not choose a vote, flag, or reward direction."
    ])
}

/// `GET /v1/assistant/orientation`
pub async fn orientation(State(state): State<AppState>, req: Request) -> Response {
    guarded(state, req, false, move |agents| {
        let book = agents.book();
        let mut by_status = std::collections::BTreeMap::<&str, u64>::new();
        for s in book.stories.values() {
            *by_status.entry(s.status()).or_default() += 1;
        }
        let (bots, writes) = agents.store.counts().map_err(internal)?;
        let pending: Vec<&String> = book.stories.values().filter(|s| s.status() == "PENDING").map(|s| &s.id).collect();
        Ok(json!({
            "mode": "orientation_only", "guardrails": guardrails(),
            "status": {"stories": by_status, "pendingStoryIds": pending, "bots": bots, "signedWrites": writes},
            "botActions": ["POST /v1/agents/join", "POST /v1/candidates", "POST /v1/agents/attestations",
                           "POST /v1/agents/objections", "POST /v1/stories/{id}/revision-proposals",
                           "POST /v1/stories/{id}/revision-proposals/{proposalId}/votes"],
            "humanActions": ["ratchet review", "ratchet approve <storyId>", "ratchet reject <storyId>", "ratchet agent vouch <botId>"],
            "gates": {"gate1": "ratchet's rule evaluators, then [gate.quorum] of bot attestations on the current packet hash",
                      "gate2": "a human at a terminal approves; nothing a bot sends merges"},
            "credentials": {"writes": "an Ed25519 bot key (x-agent-* headers)", "reads": "x-api-key (PUBLIC_API_KEYS or a LoopKit agent key) for candidate status and evidence"},
        }))
    })
    .await
}

/// `GET /v1/stories/{id}/assistant-orientation`
pub async fn story_orientation(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    guarded(state, req, false, move |agents| {
        let book = agents.book();
        let story = book.stories.get(&id).cloned().ok_or(AgentError::StoryNotFound { id: id.clone() })?;
        let q = quorum_of(&agents, &story)?;
        let open = story.status() == "PENDING";
        Ok(json!({
            "mode": "orientation_only", "storyId": story.id, "status": story.status(), "guardrails": guardrails(),
            "currentPacketHash": story.packet,
            "gates": {"gate1": {"rules": story.gate1.iter().map(|v| json!({"by": v.by, "verdict": v.verdict})).collect::<Vec<_>>(),
                                "quorumMet": q.as_ref().map(|q| q.met), "waitingFor": q.as_ref().map(|q| q.waiting_for.clone())},
                      "gate2": {"waitingFor": waiting_for(&story, &q)}},
            "botActions": if open { json!(["attest or object on currentPacketHash", "propose a revision", "vote on an open revision"]) } else { json!([]) },
            "humanActions": if open { json!([format!("ratchet approve {}", story.id), format!("ratchet reject {}", story.id)]) } else { json!([]) },
            "evidence": {"machineRoom": format!("/v1/stories/{}/machine-room", story.id)},
        }))
    })
    .await
}

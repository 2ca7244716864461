//! Every error the agents API can answer, with its stable code (seed 004's
//! `errorMap`, then `@machinesroom/contracts`' `AGENT_ERROR_CODES`, then
//! ratchet's own where both are silent) and its next action. The HTTP
//! status of each code is `serve::agents`'s business.

use serde::Serialize;

use super::signed::HeaderProblem;
use crate::error::Coded;

#[derive(Clone, Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the signed-write header(s) {} are missing", .0.join(", "))]
    HeadersMissing(Vec<&'static str>),
    #[error("Invalid agent signed write headers: {}", .0.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("; "))]
    HeadersInvalid(Vec<HeaderProblem>),
    #[error("x-agent-timestamp is {} s from this server's clock; the window is ±120 s", .drift_ms / 1000)]
    TimestampDrift { drift_ms: i64 },
    #[error("Invalid agent signature: it does not verify over this audience, method, path, timestamp, nonce and body")]
    SignatureInvalid,
    #[error("Agent bot is not registered: {bot_id}")]
    BotUnregistered { bot_id: String },
    #[error("this bot already used the nonce {nonce} for an accepted write")]
    NonceReplay { nonce: String },
    #[error("{why}")]
    ActionNotAllowed { why: String },
    #[error("Current packet hash mismatch: the story's current packet is {current}, the write names {sent}")]
    PacketMismatch { current: String, sent: String },
    #[error("Idempotency conflict: {why}")]
    IdempotencyConflict { why: String },
    #[error("this write needs an Idempotency-Key header")]
    IdempotencyKeyRequired,
    #[error("the Idempotency-Key must be 1 to 255 visible ASCII characters")]
    IdempotencyKeyInvalid,
    #[error("Verified agents required: this server counts only bots an operator has vouched for")]
    VerifiedRequired,
    #[error("World AgentKit candidate verification failed: {why}")]
    AgentKitFailed { why: String },
    #[error("self-serve onboarding is not enabled on this server ([agents] self_serve = false)")]
    SelfServeDisabled,
    #[error("Public API key required: {why}")]
    PublicKeyRequired { why: String },
    #[error("Operations access required: publication is a merge, which only a human at a terminal makes")]
    OperationsOnly,
    #[error("the candidate is made against {base}, but the current base is {head}")]
    BaseStale { base: String, head: String },
    #[error("no remote candidate story {id}")]
    StoryNotFound { id: String },
    #[error("no candidate with hash {hash}")]
    CandidateNotFound { hash: String },
    #[error("story {story} has no revision proposal {id}")]
    RevisionNotFound { story: String, id: String },
    #[error("story {id} is {outcome}: it no longer takes writes")]
    StoryClosed { id: String, outcome: String },
    #[error("revision proposal {id} is {state}")]
    RevisionClosed { id: String, state: String },
    #[error("Gate 1 objects to the revised patch: {code}: {reason}")]
    Gate1Objection { code: String, reason: String },
    #[error("{}: {}", .0.field, .0.message)]
    Validation(super::bodies::BodyError),
    #[error("the body is not acceptable JSON: {0}")]
    InvalidJson(String),
    #[error("the body is over {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body must be application/json, got {got:?}")]
    UnsupportedMediaType { got: String },
    #[error("this bot made more than {per_minute} signed writes in a minute")]
    RateLimited { per_minute: u32, retry_after: u64 },
    #[error("the workspace is busy: {holder}")]
    WorkspaceBusy { holder: String, retry_after: u64 },
    #[error("the agents API is unavailable: {why}")]
    Unavailable { why: String },
    #[error("{0}")]
    Internal(String),
}

impl AgentError {
    /// The `error` field: the seed's words where its errorMap has them.
    pub fn title(&self) -> String {
        match self {
            AgentError::HeadersInvalid(_) => "Invalid agent signed write headers".into(),
            AgentError::SignatureInvalid => "Invalid agent signature".into(),
            AgentError::BotUnregistered { .. } => "Agent bot is not registered".into(),
            AgentError::PacketMismatch { .. } => "Current packet hash mismatch".into(),
            AgentError::IdempotencyConflict { .. } => "Idempotency conflict".into(),
            AgentError::PublicKeyRequired { .. } => "Public API key required".into(),
            AgentError::OperationsOnly => "Operations access required".into(),
            AgentError::VerifiedRequired => "Verified agents required in production/public deployments".into(),
            AgentError::AgentKitFailed { .. } => "World AgentKit candidate verification failed".into(),
            other => crate::error::Report::new(other.code(), "").title(),
        }
    }

    /// `details` of the error body, when it has any.
    pub fn details(&self) -> Option<serde_json::Value> {
        match self {
            AgentError::HeadersInvalid(p) => serde_json::to_value(p).ok(),
            AgentError::HeadersMissing(h) => Some(serde_json::Value::Array(
                h.iter()
                    .map(|h| serde_json::json!({"header": h, "code": "MISSING", "message": format!("{h} is required")}))
                    .collect(),
            )),
            AgentError::Validation(b) => Some(serde_json::json!([{"field": b.field, "message": b.message}])),
            AgentError::PacketMismatch { current, sent } => {
                Some(serde_json::json!({"currentPacketHash": current, "sentPacketHash": sent}))
            }
            AgentError::BaseStale { base, head } => Some(serde_json::json!({"base": base, "currentBase": head})),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AgentError::RateLimited { retry_after, .. } | AgentError::WorkspaceBusy { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }
}

impl Coded for AgentError {
    fn code(&self) -> &'static str {
        match self {
            AgentError::HeadersMissing(_) => "AGENT_SIGNED_HEADERS_MISSING",
            AgentError::HeadersInvalid(_) => "AGENT_SIGNED_HEADERS_INVALID",
            AgentError::TimestampDrift { .. } => "AGENT_TIMESTAMP_DRIFT_EXCEEDED",
            AgentError::SignatureInvalid => "AGENT_SIGNATURE_INVALID",
            AgentError::BotUnregistered { .. } => "AGENT_BOT_UNREGISTERED",
            AgentError::NonceReplay { .. } => "AGENT_NONCE_REPLAY",
            AgentError::ActionNotAllowed { .. } => "AGENT_BOT_ACTION_NOT_ALLOWED",
            AgentError::PacketMismatch { .. } => "CURRENT_PACKET_MISMATCH",
            AgentError::IdempotencyConflict { .. } => "IDEMPOTENCY_KEY_CONFLICT",
            AgentError::IdempotencyKeyRequired => "IDEMPOTENCY_KEY_REQUIRED",
            AgentError::IdempotencyKeyInvalid => "IDEMPOTENCY_KEY_INVALID",
            AgentError::VerifiedRequired => "AGENT_VERIFIED_REQUIRED",
            AgentError::AgentKitFailed { .. } => "AGENTKIT_VERIFICATION_FAILED",
            AgentError::SelfServeDisabled => "SELF_SERVE_AGENTS_DISABLED",
            AgentError::PublicKeyRequired { .. } => "PUBLIC_API_KEY_REQUIRED",
            AgentError::OperationsOnly => "OPERATIONS_ACCESS_REQUIRED",
            AgentError::BaseStale { .. } => "CANDIDATE_BASE_STALE",
            AgentError::StoryNotFound { .. } => "STORY_NOT_FOUND",
            AgentError::CandidateNotFound { .. } => "CANDIDATE_NOT_FOUND",
            AgentError::RevisionNotFound { .. } => "REVISION_NOT_FOUND",
            AgentError::StoryClosed { .. } => "STORY_CLOSED",
            AgentError::RevisionClosed { .. } => "REVISION_CLOSED",
            AgentError::Gate1Objection { .. } => "GATE1_OBJECTION",
            AgentError::Validation(_) => "VALIDATION_ERROR",
            AgentError::InvalidJson(_) => "INVALID_JSON",
            AgentError::TooLarge { .. } => "PAYLOAD_TOO_LARGE",
            AgentError::UnsupportedMediaType { .. } => "UNSUPPORTED_MEDIA_TYPE",
            AgentError::RateLimited { .. } => "RATE_LIMITED",
            AgentError::WorkspaceBusy { .. } => "WORKSPACE_BUSY",
            AgentError::Unavailable { .. } => "AGENTS_UNAVAILABLE",
            AgentError::Internal(_) => "INTERNAL",
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            AgentError::HeadersMissing(_) => {
                "add x-agent-timestamp, x-agent-nonce and x-agent-signature, with a fresh nonce, and sign the exact request".into()
            }
            AgentError::HeadersInvalid(_) => {
                "inspect details and resend the same logical write with corrected x-agent-* headers and a fresh nonce".into()
            }
            AgentError::TimestampDrift { .. } => {
                "synchronize your clock and sign again with a fresh timestamp (epoch milliseconds) and nonce".into()
            }
            AgentError::SignatureInvalid => "rebuild the signature using stable canonical JSON, upper-case method, the exact path (no query), this server's audience (GET /v1/bootstrap: api.audience) and the matching Ed25519 private key".into(),
            AgentError::BotUnregistered { .. } => "call POST /v1/agents/join first".into(),
            AgentError::NonceReplay { .. } => {
                "inspect the original result; sign again with a fresh nonce only if the operation did not complete".into()
            }
            AgentError::ActionNotAllowed { .. } => "stop: this bot may not make this write".into(),
            AgentError::PacketMismatch { .. } => "fetch the current packet hash from GET /v1/stories/{id}/machine-room, rebuild the write against that hash, and retry with a fresh nonce".into(),
            AgentError::IdempotencyConflict { .. } => "use a fresh Idempotency-Key for a new logical write, or reuse the original key only for the identical retry payload".into(),
            AgentError::IdempotencyKeyRequired | AgentError::IdempotencyKeyInvalid => {
                "send a unique Idempotency-Key (for example agent-write:<uuid>) with each new write".into()
            }
            AgentError::VerifiedRequired => "remain self-serve unverified where allowed, or ask this server's operator to vouch for your botId (ratchet agent vouch) and call POST /v1/agents/verify".into(),
            AgentError::AgentKitFailed { .. } => "send verified=false, or call POST /v1/agents/verify with the operator's vouch statement in the agentkit header first".into(),
            AgentError::SelfServeDisabled => "use an already registered bot identity, or ask the operator to enable [agents] self_serve; do not fall back to retired routes".into(),
            AgentError::PublicKeyRequired { .. } => {
                "send x-api-key with a key from PUBLIC_API_KEYS or a LoopKit agent key of this server".into()
            }
            AgentError::OperationsOnly => {
                "stop: a human approves the story at a terminal with `ratchet approve <storyId>`".into()
            }
            AgentError::BaseStale { .. } => {
                "rebuild the patch against the current base (GET /v1/bootstrap: repository.base) and submit it with a new Idempotency-Key".into()
            }
            AgentError::StoryNotFound { .. } | AgentError::CandidateNotFound { .. } => {
                "use the storyId and candidateHash that POST /v1/candidates returned".into()
            }
            AgentError::RevisionNotFound { .. } => {
                "use the proposalId that POST /v1/stories/{id}/revision-proposals returned".into()
            }
            AgentError::StoryClosed { .. } => "stop: the story was decided; submit a new candidate instead".into(),
            AgentError::RevisionClosed { .. } => "read GET /v1/stories/{id}/machine-room for the open revision proposals".into(),
            AgentError::Gate1Objection { .. } => "fix the patch as the objection says and propose it again".into(),
            AgentError::Validation(_) => "fix the named field and resend with a fresh nonce (see /agents/skill.md for the bodies)".into(),
            AgentError::InvalidJson(_) => {
                "send one JSON object without duplicate keys, with integers within ±(2^53−1)".into()
            }
            AgentError::TooLarge { .. } => "send a smaller body: one patch, within the rails' budget".into(),
            AgentError::UnsupportedMediaType { .. } => "send Content-Type: application/json".into(),
            AgentError::RateLimited { retry_after, .. } => format!("wait {retry_after} s, then retry with a fresh nonce"),
            AgentError::WorkspaceBusy { retry_after, .. } => {
                format!("a loop command holds the workspace; retry in {retry_after} s with a fresh nonce and the same Idempotency-Key")
            }
            AgentError::Unavailable { .. } => "run ratchet serve inside a ratchet workspace (ratchet init)".into(),
            AgentError::Internal(_) => "retry; if it persists, read the server log of ratchet serve".into(),
        })
    }
}

/// The error shape as a client reads it back (seed 004's actionableErrorShape).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error: String,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub details: Option<serde_json::Value>,
    #[serde(default)]
    pub next_action: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub retry_after_seconds: Option<u64>,
}

/// The error codes of this API with their statuses (the bootstrap's errorMap).
pub const ERROR_MAP: &[(Option<u16>, &str, &str)] = &[
    (
        None,
        "SDK_PACKAGE_UNPUBLISHED",
        "The public docs advertise @machinesroom/api-client, but npm cannot resolve the package. This server needs no SDK: sign as signedWrite says, or use `ratchet agent`.",
    ),
    (Some(401), "AGENT_SIGNED_HEADERS_MISSING", "A required x-agent-* header is absent."),
    (
        Some(401),
        "AGENT_SIGNED_HEADERS_INVALID",
        "Malformed raw x-agent-* values before signature verification; details lists {header, code, message}.",
    ),
    (Some(401), "AGENT_TIMESTAMP_DRIFT_EXCEEDED", "x-agent-timestamp is more than 120 s from this server's clock."),
    (Some(401), "AGENT_SIGNATURE_INVALID", "Header values passed shape checks but signature verification failed."),
    (Some(401), "AGENT_BOT_UNREGISTERED", "The bot skipped self-serve admission and is not in the registry."),
    (Some(401), "AGENT_BOT_ACTION_NOT_ALLOWED", "The bot may not make this write (its own candidate or revision)."),
    (Some(409), "AGENT_NONCE_REPLAY", "The nonce was already used by an accepted write of this bot."),
    (Some(409), "CURRENT_PACKET_MISMATCH", "The write targeted a stale packet hash."),
    (
        Some(409),
        "IDEMPOTENCY_KEY_CONFLICT",
        "The Idempotency-Key is in progress or bound to a different actor, operation, or payload.",
    ),
    (Some(409), "CANDIDATE_BASE_STALE", "The candidate's base is not the repository's current base."),
    (Some(409), "STORY_CLOSED", "The story was decided and takes no more writes."),
    (Some(409), "REVISION_CLOSED", "The revision proposal was adopted, rejected or went stale."),
    (Some(403), "AGENT_VERIFIED_REQUIRED", "This server counts only bots an operator vouched for."),
    (
        Some(403),
        "AGENTKIT_VERIFICATION_FAILED",
        "verified=true without a vouch on record, or a vouch statement that does not verify.",
    ),
    (Some(403), "SELF_SERVE_AGENTS_DISABLED", "Self-serve onboarding is off ([agents] self_serve = false)."),
    (Some(401), "PUBLIC_API_KEY_REQUIRED", "Candidate status or evidence read requires x-api-key."),
    (
        Some(401),
        "OPERATIONS_ACCESS_REQUIRED",
        "The route is operations-only; publication is a merge by a human at a terminal.",
    ),
    (Some(404), "STORY_NOT_FOUND", "No remote candidate story with that id."),
    (Some(404), "CANDIDATE_NOT_FOUND", "No candidate with that hash."),
    (Some(404), "REVISION_NOT_FOUND", "No revision proposal with that id on the story."),
    (Some(422), "GATE1_OBJECTION", "Gate 1's rules object to a revised patch."),
    (Some(400), "VALIDATION_ERROR", "A body field is missing or wrong; details names it."),
    (Some(400), "INVALID_JSON", "Not one JSON object: duplicate keys, integers beyond ±(2^53−1), trailing bytes."),
    (Some(400), "IDEMPOTENCY_KEY_REQUIRED", "The write needs an Idempotency-Key."),
    (
        Some(400),
        "IDEMPOTENCY_KEY_INVALID",
        "The Idempotency-Key is not 1 to 255 visible ASCII characters, or was sent twice.",
    ),
    (Some(413), "PAYLOAD_TOO_LARGE", "The body is over 1 MiB."),
    (Some(415), "UNSUPPORTED_MEDIA_TYPE", "The body is not application/json."),
    (Some(429), "RATE_LIMITED", "The bot made more signed writes than the per-minute limit; see retryAfterSeconds."),
    (Some(503), "WORKSPACE_BUSY", "A loop command holds the workspace lock; see retryAfterSeconds."),
    (Some(503), "AGENTS_UNAVAILABLE", "The server runs outside a workspace, or its rails cannot be read."),
];

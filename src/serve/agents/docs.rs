//! The agents API's documents: this server's bootstrap document (seed
//! 004's shape, describing only what this server does), `/agents/skill.md`,
//! `/auth.md`, `/.well-known/llms.txt`, the agents routes of `/openapi.json`
//! ([`extend_openapi`]; `/openapi.yaml` is the same document, from
//! [`crate::serve::openapi::yaml`]).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::serve::AppState;

fn text(body: String, content_type: &'static str) -> Response {
    let mut res = body.into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

struct Facts {
    base: String,
    audience: String,
    self_serve: bool,
    roles: Vec<String>,
    writes_per_minute: u32,
    quorum: Value,
    head: Option<String>,
    workspace: bool,
}

fn facts(state: &AppState) -> Facts {
    let base = state.config.base_url();
    let Some(agents) = &state.agents else {
        let d = crate::rails::Agents::default();
        return Facts {
            base,
            audience: d.audience,
            self_serve: false,
            roles: d.roles,
            writes_per_minute: d.writes_per_minute,
            quorum: Value::Null,
            head: None,
            workspace: false,
        };
    };
    let book = agents.book();
    let head = agents.ws.repo().ok().and_then(|r| r.head_commit());
    match &book.rails {
        Ok(r) => Facts {
            base,
            audience: r.agents.audience.clone(),
            self_serve: r.agents.self_serve,
            roles: r.agents.roles.clone(),
            writes_per_minute: r.agents.writes_per_minute,
            quorum: json!({"minAttestations": r.gate.quorum.min_attestations, "maxObjections": r.gate.quorum.max_objections,
                           "requiredRoles": r.gate.quorum.required_roles, "requireVerified": r.gate.quorum.require_verified}),
            head,
            workspace: true,
        },
        Err(_) => {
            let d = crate::rails::Agents::default();
            Facts {
                base,
                audience: d.audience,
                self_serve: false,
                roles: d.roles,
                writes_per_minute: d.writes_per_minute,
                quorum: Value::Null,
                head,
                workspace: true,
            }
        }
    }
}

pub use crate::agents::error::ERROR_MAP;

/// `GET /.well-known/agent-bootstrap.json` and `GET /v1/bootstrap`.
pub async fn bootstrap(State(state): State<AppState>) -> axum::Json<Value> {
    let f = facts(&state);
    let signed_headers = json!([
        {"name": "x-agent-timestamp", "required": true, "format": "decimal epoch milliseconds string", "maxLength": 32},
        {"name": "x-agent-nonce", "required": true, "minLength": 8, "maxLength": 200, "pattern": "^[A-Za-z0-9_-]+$"},
        {"name": "x-agent-signature", "required": true, "encoding": "base64url", "decodedLengthBytes": 64, "maxLength": 256},
        {"name": "x-agent-key-version", "required": false, "omitWhenEmpty": true, "maxLength": 120},
        {"name": "agentkit", "required": false, "usedFor": "POST /v1/agents/verify only: the operator's vouch statement (standard base64 JSON)"}
    ]);
    axum::Json(json!({
        "bootstrapVersion": 1,
        "product": {
            "name": "ratchet serve — agents API",
            "summary": "A local ratchet loop over one git repository. Bots submit signed candidate patches and reach Gate 1 consensus (ratchet's rule evaluators plus quorum of attestations); a human at a terminal decides Gate 2. A candidate is a proposal, a story is a step, publication is a merge.",
            "skillDoc": "/agents/skill.md", "llms": "/.well-known/llms.txt", "authDoc": "/auth.md",
            "openApiYaml": "/openapi.yaml", "openApiJson": "/openapi.json"
        },
        "agentMission": {
            "goal": "Help advance small, well-argued patches through Gate 1 using the signed API contract.",
            "optimizeFor": [
                "Submit one-op patches (create, replace or append on one file) against the current base, with a rationale and next steps.",
                "Use packet-hash-based attestations or objections instead of side channels.",
                "Treat accepted writes and explainable consensus movement as success."
            ],
            "doNotAssume": ["Candidate creation is a merge.", "Quorum merges anything: only a human at a terminal does.", "The Machines Room's hosts, audience or routes apply here."]
        },
        "humanAssistantOrientation": {
            "goal": "Relay story status, available actions and gates without choosing a vote direction.",
            "globalEndpoint": "/v1/assistant/orientation", "storyEndpoint": "/v1/stories/{id}/assistant-orientation",
            "mode": "orientation_only",
            "guardrails": ["Relay status, categories, action gates, and evidence links.", "Keep human actions and bot actions separate.",
                           "Treat verification tiers as gating facts.", "Do not choose a vote, flag, or reward direction."]
        },
        "api": {"baseUrl": f.base, "audience": f.audience, "previewAndProductionShareApiHost": true,
                "available": f.workspace},
        "repository": {"base": f.head, "candidateBaseMustEqual": "repository.base"},
        "agentSdk": {
            "package": "@machinesroom/api-client", "entrypoint": "@machinesroom/api-client/agent",
            "required": false,
            "packageUnpublishedStopCode": "SDK_PACKAGE_UNPUBLISHED",
            "packageUnpublishedNextAction": "This server needs no SDK: sign as signedWrite says (any Ed25519 library), or use `ratchet agent`. If you use the SDK, pass audience from api.audience.",
            "matchingClient": "ratchet agent keygen | join | propose | attest | object | revise | vote | status | vouch",
            "privateKeyPolicy": "ratchet agent stores the key with mode 0600 (or reads RATCHET_AGENT_KEY) and never prints or logs it unless asked."
        },
        "firstFiveMinutes": {
            "goal": "Get one successful signed write before anything else.",
            "sequence": [
                "Fetch this bootstrap JSON; note api.audience and repository.base.",
                "Generate one Ed25519 identity; botId is the base64url DER SPKI of its public key.",
                "Call POST /v1/agents/join when self-serve onboarding is enabled.",
                "Create the first candidate with verified=false, base=repository.base and a fresh Idempotency-Key.",
                "Use the returned storyId and packetHash for attestations or objections (other bots: never your own).",
                "Treat 202 as write-path success. A candidate is not a merge."
            ]
        },
        "capabilities": {
            "firstSmoke": ["Join through POST /v1/agents/join when self-serve onboarding is enabled.", "Create candidates through POST /v1/candidates.", "Submit attestations or objections on the current packet hash."],
            "advanced": ["Submit revision proposals (a new one-op patch) through POST /v1/stories/{storyId}/revision-proposals.",
                         "Vote on revision proposals through POST /v1/stories/{storyId}/revision-proposals/{proposalId}/votes.",
                         "Upgrade to verified ownership through POST /v1/agents/verify with an operator's vouch statement."],
            "cannot": ["Merge, self-approve or auto-merge a candidate (unless the rails say [gate.auto_merge] remote = true, and then only with quorum).",
                       "Attest or object to your own candidate, or vote on your own revision.",
                       "Read candidate status or evidence without x-api-key."]
        },
        "preferredBehavior": {
            "stopConditions": [
                "If you receive 401 AGENT_SIGNED_HEADERS_INVALID, inspect the details array and fix the x-agent-* values before retrying.",
                "If you receive 401 AGENT_SIGNATURE_INVALID, fix canonical JSON, method, path, audience, or key material before retrying.",
                "If you receive 401 AGENT_BOT_UNREGISTERED, call POST /v1/agents/join first.",
                "If POST /v1/agents/join returns SELF_SERVE_AGENTS_DISABLED, self-serve onboarding is not enabled here.",
                "If a write returns IDEMPOTENCY_KEY_CONFLICT, reuse a key only for the identical retry payload."
            ]
        },
        "firstSmokeSequence": [
            {"step": "join", "method": "POST", "path": "/v1/agents/join", "successStatus": [200, 201]},
            {"step": "candidate", "method": "POST", "path": "/v1/candidates", "successStatus": [202], "requiredHeaders": ["Idempotency-Key"], "requestDefaults": {"verified": false}},
            {"step": "status_optional", "method": "GET", "path": "/v1/candidates/{candidateHash}/status", "requiredHeaders": ["x-api-key"], "optional": true},
            {"step": "evidence_optional", "method": "GET", "path": "/v1/candidates/{candidateHash}/evidence", "requiredHeaders": ["x-api-key"], "optional": true},
            {"step": "attestation_or_objection", "alternatives": [
                {"method": "POST", "path": "/v1/agents/attestations", "successStatus": [202]},
                {"method": "POST", "path": "/v1/agents/objections", "successStatus": [202]}]}
        ],
        "signedWrite": {
            "algorithm": "Ed25519", "verification": "verify_strict (non-canonical and small-order keys and signatures refused)",
            "botIdEncoding": "DER SPKI base64 or base64url",
            "canonicalBodyJson": "stable key ordering with undefined keys omitted; keys in UTF-16 code-unit order (RFC 8785) or in localeCompare order (the public SDK's), either accepted; numbers as JavaScript prints them; duplicate keys and integers beyond ±(2^53−1) refused",
            "messageTemplate": "tmr-agent-v1:${aud}.${timestamp}.${nonce}.${method}.${path}.${canonicalBodyJson}",
            "audience": f.audience, "methodFormat": "upper-case HTTP method", "pathExcludesQueryString": true,
            "timestampDriftMs": crate::agents::signed::DRIFT_MS, "nonceReplayProtected": true,
            "legacyXMrHeadersAcceptedAsSoleAuth": false, "headers": signed_headers
        },
        "verifiedOwnership": {
            "verifyEndpoint": "/v1/agents/verify",
            "proof": "an operator's vouch statement (ratchet agent vouch BOT) in the agentkit header, instead of World AgentKit (which cannot be checked offline)",
            "successCriteria": ["POST /v1/agents/verify returns verified: true.", "Response trustTier is VERIFIED.", "Response includes linkedHumanId from the statement."]
        },
        "readAccess": {
            "storyMachineRoom": {"path": "/v1/stories/{storyId}/machine-room", "pathParameter": "storyId"},
            "candidateStatus": {"path": "/v1/candidates/{candidateHash}/status", "requiredHeaders": ["x-api-key"]},
            "candidateEvidence": {"path": "/v1/candidates/{candidateHash}/evidence", "requiredHeaders": ["x-api-key"]}
        },
        "opsOnly": {"publishCompute": {"path": "/v1/publish/{candidateHash}/compute", "note": "always refused: publication is a merge by a human at a terminal"}},
        "limits": {"bodyBytes": super::MAX_BODY, "writesPerMinutePerBot": f.writes_per_minute, "selfServe": f.self_serve,
                   "roles": f.roles, "quorum": f.quorum},
        "actionableErrorShape": {
            "version": "v1-actionable", "backwardCompatible": true, "alwaysIncludes": ["error"],
            "mayInclude": ["code", "message", "details", "nextAction", "requestId", "retryAfterSeconds"],
            "clientRule": "Display message when present, otherwise error. Use nextAction for remediation and retryAfterSeconds for rate-limit timing."
        },
        "errorMap": ERROR_MAP.iter().map(|(s, c, m)| json!({"status": s, "code": c, "meaning": m})).collect::<Vec<_>>(),
    }))
}

fn fill(template: &str, state: &AppState) -> String {
    let f = facts(state);
    template
        .replace("{BASE}", &f.base)
        .replace("{AUDIENCE}", &f.audience)
        .replace("{ROLES}", &f.roles.join(", "))
        .replace("{PER_MINUTE}", &f.writes_per_minute.to_string())
}

pub async fn skill_md(State(state): State<AppState>) -> Response {
    text(fill(include_str!("text/skill.md"), &state), "text/markdown; charset=utf-8")
}

pub async fn auth_md(State(state): State<AppState>) -> Response {
    text(fill(include_str!("text/auth.md"), &state), "text/markdown; charset=utf-8")
}

pub async fn llms_txt(State(state): State<AppState>) -> Response {
    text(fill(include_str!("text/llms.txt"), &state), "text/plain; charset=utf-8")
}

fn err(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AgentError"}}}})
}

fn responses(ok: &[(&str, &str, Value)], errs: &[(&str, &str)]) -> Value {
    let mut m = serde_json::Map::new();
    for (code, desc, schema) in ok {
        m.insert(
            code.to_string(),
            json!({"description": desc, "content": {"application/json": {"schema": schema}},
                                           "headers": {"x-request-id": {"schema": {"type": "string"}}}}),
        );
    }
    for (code, desc) in errs {
        let mut e = err(desc);
        if *code == "429" || *code == "503" {
            e["headers"] = json!({"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}});
        }
        m.insert(code.to_string(), e);
    }
    Value::Object(m)
}

const WRITE_ERRS: &[(&str, &str)] = &[
    ("400", "VALIDATION_ERROR, INVALID_JSON, IDEMPOTENCY_KEY_REQUIRED or IDEMPOTENCY_KEY_INVALID"),
    (
        "401",
        "AGENT_SIGNED_HEADERS_MISSING, AGENT_SIGNED_HEADERS_INVALID, AGENT_TIMESTAMP_DRIFT_EXCEEDED, AGENT_SIGNATURE_INVALID, AGENT_BOT_UNREGISTERED or AGENT_BOT_ACTION_NOT_ALLOWED",
    ),
    ("403", "AGENT_VERIFIED_REQUIRED, AGENTKIT_VERIFICATION_FAILED or SELF_SERVE_AGENTS_DISABLED"),
    ("404", "STORY_NOT_FOUND or REVISION_NOT_FOUND"),
    (
        "409",
        "AGENT_NONCE_REPLAY, CURRENT_PACKET_MISMATCH, IDEMPOTENCY_KEY_CONFLICT, CANDIDATE_BASE_STALE, STORY_CLOSED or REVISION_CLOSED",
    ),
    ("413", "PAYLOAD_TOO_LARGE"),
    ("415", "UNSUPPORTED_MEDIA_TYPE"),
    ("422", "GATE1_OBJECTION (revision proposals)"),
    ("429", "RATE_LIMITED (retryAfterSeconds)"),
    ("503", "WORKSPACE_BUSY (retryAfterSeconds) or AGENTS_UNAVAILABLE"),
];

fn signed_params(idempotent: bool) -> Value {
    let mut p = vec![
        json!({"name": "x-agent-timestamp", "in": "header", "required": true, "schema": {"type": "string", "pattern": "^[0-9]{1,32}$"}, "description": "epoch milliseconds, within 120 s"}),
        json!({"name": "x-agent-nonce", "in": "header", "required": true, "schema": {"type": "string", "minLength": 8, "maxLength": 200, "pattern": "^[A-Za-z0-9_-]+$"}}),
        json!({"name": "x-agent-signature", "in": "header", "required": true, "schema": {"type": "string", "maxLength": 256}, "description": "base64url Ed25519 signature over tmr-agent-v1:${aud}.${timestamp}.${nonce}.${method}.${path}.${canonicalBodyJson}"}),
        json!({"name": "x-agent-key-version", "in": "header", "required": false, "schema": {"type": "string", "minLength": 1, "maxLength": 120}}),
        json!({"name": "x-request-id", "in": "header", "required": false, "schema": {"type": "string"}, "description": "echoed (header and requestId) when 1 to 128 visible ASCII characters; otherwise a fresh id is used"}),
    ];
    if idempotent {
        p.push(json!({"name": "Idempotency-Key", "in": "header", "required": true, "schema": {"type": "string", "minLength": 1, "maxLength": 255}}));
    }
    Value::Array(p)
}

fn write_op(summary: &str, body: Value, ok: &[(&str, &str, Value)], idempotent: bool, extra: &[Value]) -> Value {
    let mut params = signed_params(idempotent);
    for e in extra {
        params.as_array_mut().expect("an array").push(e.clone());
    }
    json!({"summary": summary, "tags": ["agents"], "parameters": params,
           "requestBody": {"required": true, "content": {"application/json": {"schema": body}}},
           "responses": responses(ok, WRITE_ERRS)})
}

fn path_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
}

fn read_op(summary: &str, params: Vec<Value>, keyed: bool, errs: &[(&str, &str)]) -> Value {
    let mut p = params;
    if keyed {
        p.push(json!({"name": "x-api-key", "in": "header", "required": false, "schema": {"type": "string"}, "description": "PUBLIC_API_KEYS or a LoopKit agent key; required"}));
    }
    p.push(json!({"name": "x-request-id", "in": "header", "required": false, "schema": {"type": "string"}, "description": "echoed (header and requestId) when 1 to 128 visible ASCII characters; otherwise a fresh id is used"}));
    json!({"summary": summary, "tags": ["agents"], "parameters": p,
           "responses": responses(&[("200", "ok", json!({"type": "object"}))], errs)})
}

fn doc_op(summary: &str, media: &str) -> Value {
    json!({"summary": summary, "tags": ["agents"], "responses": {"200": {"description": summary, "content": {media: {"schema": match media {
        "application/json" => json!({"type": "object"}),
        "application/yaml" => json!({}),
        _ => json!({"type": "string"}),
    }}}}}})
}

/// Adds the agents routes and schemas to the server's OpenAPI document.
pub fn extend_openapi(doc: &mut Value) {
    let hash = json!({"type": "string", "pattern": "^[0-9a-f]{64}$"});
    let bot =
        json!({"type": "string", "description": "base64url (or base64) DER SPKI of the bot's Ed25519 public key"});
    let patch = json!({"$ref": "#/components/schemas/Patch"});
    let accepted = json!({"type": "object", "required": ["accepted", "writeSeq"], "properties": {"accepted": {"type": "boolean"}, "writeSeq": {"type": "integer"}}});
    let roles = json!({"type": "string", "description": "one of the server's roles (GET /v1/bootstrap: limits.roles)"});
    let verdict = json!({"type": "object", "additionalProperties": false, "required": ["botId", "storyId", "packetHash", "verified", "role"],
        "properties": {"botId": bot, "storyId": {"type": "string"}, "packetHash": hash, "verified": {"type": "boolean"}, "role": roles, "linkedHumanId": {"type": "string"}}});
    let mut objection = verdict.clone();
    objection["required"] = json!(["botId", "storyId", "packetHash", "verified", "role", "severity", "reason"]);
    objection["properties"]["severity"] = json!({"enum": ["LOW", "MEDIUM", "HIGH", "CRITICAL"]});
    objection["properties"]["reason"] = json!({"type": "string"});
    let joined = json!({"type": "object", "required": ["botId", "registered", "trustTier"], "properties": {
        "botId": {"type": "string"}, "registered": {"type": "boolean"}, "verified": {"type": "boolean"}, "trustTier": {"enum": ["UNVERIFIED", "VERIFIED"]},
        "provider": {"type": "string"}, "writeSeq": {"type": "integer"}}});
    let bot_only = json!({"type": "object", "additionalProperties": false, "required": ["botId"], "properties": {"botId": bot, "linkedHumanId": {"type": "string"}}});
    let paths = json!({
        "/.well-known/agent-bootstrap.json": {"get": doc_op("This server's agent bootstrap document (seed 004's shape)", "application/json")},
        "/v1/bootstrap": {"get": doc_op("The agent bootstrap document", "application/json")},
        "/agents/skill.md": {"get": doc_op("How a bot uses this API", "text/markdown")},
        "/auth.md": {"get": doc_op("Signed writes and read keys", "text/markdown")},
        "/.well-known/llms.txt": {"get": doc_op("Index for language models (agents API)", "text/plain")},
        "/openapi.yaml": {"get": doc_op("This document as YAML", "application/yaml")},
        "/v1/agents/join": {"post": write_op("Join: register this bot (self-serve)", bot_only.clone(),
            &[("200", "already registered", joined.clone()), ("201", "registered", joined.clone())], false, &[])},
        "/v1/agents/verify": {"post": write_op("Verified ownership: an operator's vouch statement in the agentkit header", bot_only,
            &[("200", "verified", json!({"type": "object", "required": ["verified", "trustTier", "linkedHumanId"], "properties": {
                "botId": {"type": "string"}, "verified": {"const": true}, "trustTier": {"const": "VERIFIED"}, "linkedHumanId": {"type": "string"}, "writeSeq": {"type": "integer"}}}))],
            false, &[json!({"name": "agentkit", "in": "header", "required": false, "schema": {"type": "string"}, "description": "standard base64 JSON vouch statement (ratchet agent vouch)"})])},
        "/v1/candidates": {"post": write_op("Submit a candidate: a ratchet proposal signed by a bot; Gate 1 runs at once", json!({"$ref": "#/components/schemas/Candidate"}),
            &[("202", "accepted (PENDING for quorum and a human, or REJECTED by a rule)", json!({"type": "object", "required": ["accepted", "storyId", "candidateHash", "packetHash", "status", "writeSeq"], "properties": {
                "accepted": {"type": "boolean"}, "storyId": {"type": "string"}, "candidateHash": hash, "packetHash": hash,
                "status": {"enum": ["PENDING", "REJECTED", "CLOSED"]}, "writeSeq": {"type": "integer"}, "gate1": {"type": "object"}, "gate2": {"type": "object"}}}))], true, &[])},
        "/v1/agents/attestations": {"post": write_op("Attest to a story's current packet", verdict, &[("202", "accepted", accepted.clone())], false, &[])},
        "/v1/agents/objections": {"post": write_op("Object to a story's current packet", objection, &[("202", "accepted", accepted.clone())], false, &[])},
        "/v1/stories/{id}/revision-proposals": {"post": write_op("Propose a revised patch for a story (a new packet hash)",
            json!({"type": "object", "additionalProperties": false, "required": ["botId", "basePacketHash", "patch", "reason", "verified"], "properties": {
                "botId": bot, "basePacketHash": hash, "patch": patch, "reason": {"type": "string"}, "verified": {"type": "boolean"}, "linkedHumanId": {"type": "string"}}}),
            &[("202", "accepted: OPEN for votes", json!({"type": "object", "required": ["accepted", "proposalId", "packetHash", "status"], "properties": {
                "accepted": {"type": "boolean"}, "proposalId": {"type": "string"}, "packetHash": hash, "status": {"const": "OPEN"}, "votesNeeded": {"type": "integer"}}}))],
            true, &[path_param("id")])},
        "/v1/stories/{id}/revision-proposals/{proposalId}/votes": {"post": write_op("Vote on a revision proposal (adopted by quorum of YES votes)",
            json!({"type": "object", "additionalProperties": false, "required": ["botId", "role", "vote"], "properties": {
                "botId": bot, "role": roles, "vote": {"enum": ["YES", "NO", "ABSTAIN"]}, "reason": {"type": "string"}, "verified": {"type": "boolean"}, "linkedHumanId": {"type": "string"}}}),
            &[("202", "accepted", accepted)], true, &[path_param("id"), path_param("proposalId")])},
        "/v1/publish/{candidateHash}/compute": {"post": {"summary": "Operations-only in the seed; always refused here: a human merges", "tags": ["agents"],
            "parameters": [path_param("candidateHash")], "responses": responses(&[], &[("401", "OPERATIONS_ACCESS_REQUIRED")])}},
        "/v1/candidates/{hash}/status": {"get": read_op("A candidate's story, Gate 1 and quorum (read-only x-api-key)", vec![path_param("hash")], true,
            &[("401", "PUBLIC_API_KEY_REQUIRED"), ("404", "CANDIDATE_NOT_FOUND"), ("503", "AGENTS_UNAVAILABLE")])},
        "/v1/candidates/{hash}/evidence": {"get": read_op("A candidate's proposal, metadata and signed write (read-only x-api-key)", vec![path_param("hash")], true,
            &[("401", "PUBLIC_API_KEY_REQUIRED"), ("404", "CANDIDATE_NOT_FOUND"), ("503", "AGENTS_UNAVAILABLE")])},
        "/v1/stories/{id}/machine-room": {"get": read_op("The story's current packet, attestations, objections, revisions, Gate 1 and what Gate 2 waits for", vec![path_param("id")], false,
            &[("404", "STORY_NOT_FOUND"), ("503", "AGENTS_UNAVAILABLE")])},
        "/v1/assistant/orientation": {"get": read_op("Orientation for human-controlled assistants: status, actions, gates (never a vote direction)", vec![], false,
            &[("503", "AGENTS_UNAVAILABLE")])},
        "/v1/stories/{id}/assistant-orientation": {"get": read_op("A story's orientation: status, actions, gates (never a vote direction)", vec![path_param("id")], false,
            &[("404", "STORY_NOT_FOUND"), ("503", "AGENTS_UNAVAILABLE")])},
    });
    if let (Some(target), Value::Object(add)) = (doc["paths"].as_object_mut(), paths) {
        target.extend(add);
    }
    let schemas = json!({
        "AgentError": {"type": "object", "required": ["error", "code", "message", "requestId"], "properties": {
            "error": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"}, "nextAction": {"type": "string"},
            "details": {}, "requestId": {"type": "string"}, "retryAfterSeconds": {"type": "integer", "minimum": 0}}},
        "Patch": {"type": "object", "required": ["op", "path"], "description": "one op on one file (DESIGN §5): create {content}, append {content}, replace {old?, new}",
            "properties": {"op": {"enum": ["create", "replace", "append"]}, "path": {"type": "string"}, "content": {"type": "string"}, "old": {"type": "string"}, "new": {"type": "string"}}},
        "Candidate": {"type": "object", "additionalProperties": false, "required": ["botId", "verified", "base", "rationale", "patch", "next_steps"], "properties": {
            "botId": bot, "verified": {"type": "boolean"}, "base": {"type": "string", "pattern": "^([0-9a-f]{40}|[0-9a-f]{64})$", "description": "the commit the patch is made against: the current base (GET /v1/bootstrap: repository.base)"},
            "rationale": {"type": "string"}, "patch": {"$ref": "#/components/schemas/Patch"}, "next_steps": {"type": "array", "items": {"type": "string"}},
            "focus": {"type": "string"}, "evidence": {"type": "array", "items": {"type": "string"}},
            "metadata": {"type": "object", "description": "free-form, for the bot's own keys; signed like the rest"}, "linkedHumanId": {"type": "string"}}}
    });
    if let (Some(target), Value::Object(add)) = (doc["components"]["schemas"].as_object_mut(), schemas) {
        target.extend(add);
    }
}

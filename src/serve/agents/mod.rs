//! The agents API of `ratchet serve` (seed 004; the domain is
//! [`crate::agents`]): routes, the signed-write pipeline, idempotency, the
//! per-bot rate limit, the stories as the step log tells them, and the
//! store ([`store`]).
//!
//! Every signed write goes through [`pipeline`], cheapest check first:
//! body size and type, header shapes, the time window, the body's JSON,
//! the registry, the rate limit, the signature. Then the write's own rules
//! (the story, the packet hash, roles, trust), then one commit of the
//! ledger record, its effect and (for idempotent writes) the first
//! response. A candidate also enters the loop (`step::propose`, under the
//! workspace lock) and anchors the ledger in the step log.
//!
//! The step log is the authority on stories: which exist, which are still
//! pending, and their current packet hash ([`Book`], re-read whenever the
//! log or the rails change size or time).

pub mod docs;
pub mod reads;
pub mod store;
pub mod writes;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::agents::AgentError;
use crate::agents::json::{self, Json};
use crate::agents::signed::{self, Checked, HeaderError, Headers, Target};
use crate::error::Coded;
use crate::rails::Rails;
use crate::record::Outcome;
use crate::serve::AppState;
use crate::workspace::Workspace;

use store::AgentStore;

/// Largest signed-write body.
pub const MAX_BODY: usize = 1 << 20;

/// The agents side of the server state.
pub struct Agents {
    pub ws: Workspace,
    /// The step log's file, through the journal (only its size is read here).
    log: std::path::PathBuf,
    pub store: Arc<AgentStore>,
    book: Mutex<Option<Arc<Book>>>,
    limiter: Mutex<HashMap<String, Bucket>>,
    /// Parsed public keys of registered bots, by `botId` as sent (parsing
    /// one decompresses a curve point: once per bot, not per write).
    keys: Mutex<HashMap<String, signed::BotKey>>,
    inflight: Mutex<HashSet<String>>,
    /// One loop write (candidate, adoption, anchor) at a time in this process.
    pub loop_lock: Mutex<()>,
    /// PUBLIC_API_KEYS: read-only keys for candidate status and evidence.
    pub public_keys: Vec<String>,
    last_anchor: Mutex<Instant>,
}

/// The stories as the step log tells them, and the rails, read together.
pub struct Book {
    signature: (u64, u64, u64),
    pub rails: Result<Rails, String>,
    pub stories: HashMap<String, Story>,
    /// The trust tier index of each `remote:*` provider.
    pub tiers: HashMap<String, usize>,
}

/// A remote candidate's story, as logged.
#[derive(Clone, Debug)]
pub struct Story {
    pub id: String,
    pub author: String,
    pub outcome: Outcome,
    pub packet: String,
    pub base: Option<String>,
    pub intent: String,
    pub path: String,
    pub gate1: Vec<crate::record::VerdictRecord>,
    pub reason: Option<String>,
}

impl Story {
    pub fn status(&self) -> &'static str {
        match self.outcome {
            Outcome::Pending => "PENDING",
            Outcome::Merged => "MERGED",
            Outcome::Rejected => "REJECTED",
            Outcome::Failed => "FAILED",
            Outcome::Skipped | Outcome::Noop => "CLOSED",
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Agents {
    /// Opens the agents API of `ws` (its `.ratchet/agents.db`).
    pub fn open(ws: Workspace) -> Result<Agents, store::StoreError> {
        let store = AgentStore::open(&store::path_for(&ws))?;
        let public_keys = std::env::var("PUBLIC_API_KEYS")
            .unwrap_or_default()
            .split(',')
            .map(|k| k.trim().to_string())
            .filter(|k| k.len() >= 16)
            .collect();
        Ok(Agents {
            log: crate::journal::JournalPaths::for_workspace(&ws).log,
            ws,
            store: Arc::new(store),
            book: Mutex::new(None),
            limiter: Mutex::new(HashMap::new()),
            keys: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashSet::new()),
            loop_lock: Mutex::new(()),
            public_keys,
            last_anchor: Mutex::new(Instant::now()),
        })
    }

    fn signature(&self) -> (u64, u64, u64) {
        let meta = |p: std::path::PathBuf| {
            std::fs::metadata(p).map(|m| {
                let t = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                (m.len(), t.map_or(0, |d| d.as_nanos() as u64))
            })
        };
        let (log, _) = meta(self.log.clone()).unwrap_or((0, 0));
        let (rl, rt) = meta(self.ws.rails_toml()).unwrap_or((0, 0));
        (log, rl, rt)
    }

    /// The book, re-read when the log or the rails changed.
    pub fn book(&self) -> Arc<Book> {
        let sig = self.signature();
        let mut slot = self.book.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = slot.as_ref().filter(|b| b.signature == sig) {
            return b.clone();
        }
        let book = Arc::new(self.read_book(sig));
        *slot = Some(book.clone());
        book
    }

    /// Forgets the book (after this process appended to the log).
    pub fn invalidate(&self) {
        *self.book.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn read_book(&self, signature: (u64, u64, u64)) -> Book {
        let rails = Rails::load(&self.ws).map_err(|e| format!("{}: {e}", e.code()));
        let mut stories = HashMap::new();
        let mut tiers = HashMap::new();
        if let Ok(journal) = crate::journal::Journal::open(&self.ws) {
            if let Ok(history) = crate::history::History::read_all(&journal) {
                if let Ok(r) = &rails {
                    for (name, t) in crate::trust::tiers(&history, &r.trust) {
                        if name.starts_with("remote:") {
                            tiers.insert(name, t.tier);
                        }
                    }
                }
                for st in history.steps() {
                    let Some(author) = crate::agents::bot_of(&st.pick.provider) else { continue };
                    let Some(p) = &st.body.proposal else { continue };
                    stories.insert(
                        st.id.clone(),
                        Story {
                            id: st.id.clone(),
                            author: author.to_string(),
                            outcome: st.outcome(),
                            packet: p.packet.clone(),
                            base: st.body.base.clone(),
                            intent: st.body.intent.clone(),
                            path: p.path.clone(),
                            gate1: st.body.gate1.clone(),
                            reason: st.body.reason.map(|r| r.word().to_string()),
                        },
                    );
                }
            }
        }
        Book { signature, rails, stories, tiers }
    }

    /// The public key a `botId` names: parsed once per registered bot.
    fn key_of(&self, claimed: &str) -> Result<signed::BotKey, signed::BadBotId> {
        if let Some(k) = self.keys.lock().unwrap_or_else(|p| p.into_inner()).get(claimed) {
            return Ok(k.clone());
        }
        let key = signed::bot_key(claimed)?;
        // Only registered bots, in the normal spelling, are remembered: the
        // cache is as large as the registry at most, whatever a stranger sends.
        if key.bot_id == claimed && self.store.bot(&key.bot_id).is_some() {
            self.keys.lock().unwrap_or_else(|p| p.into_inner()).insert(claimed.to_string(), key.clone());
        }
        Ok(key)
    }

    /// Counts one write for `bot`, or says how many seconds to wait.
    fn rate(&self, bot: &str, per_minute: u32) -> Result<(), u64> {
        let now = Instant::now();
        let cap = per_minute as f64;
        let mut m = self.limiter.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() > 100_000 {
            m.retain(|_, b| now.duration_since(b.at).as_secs() < 120);
        }
        let b = m.entry(bot.to_string()).or_insert(Bucket { tokens: cap, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * cap / 60.0).min(cap);
        b.at = now;
        if b.tokens < 1.0 {
            return Err(((1.0 - b.tokens) * 60.0 / cap).ceil().max(1.0) as u64);
        }
        b.tokens -= 1.0;
        Ok(())
    }

    /// Claims an idempotency key for the life of the returned guard.
    pub fn claim(self: &Arc<Self>, key: &str) -> Option<Claim> {
        let mut set = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if !set.insert(key.to_string()) {
            return None;
        }
        Some(Claim { agents: self.clone(), key: key.to_string() })
    }

    /// Whether a minute passed since the last checkpoint anchor was considered.
    pub fn checkpoint_due(&self) -> bool {
        self.last_anchor.lock().unwrap_or_else(|p| p.into_inner()).elapsed().as_secs() >= 60
    }

    /// Appends a `checkpoint` anchor when writes arrived since the last one
    /// and a minute has passed; never waits for the workspace lock.
    pub fn maybe_checkpoint(&self) {
        {
            let mut last = self.last_anchor.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed().as_secs() < 60 {
                return;
            }
            *last = Instant::now();
        }
        let Ok(_guard) = self.loop_lock.try_lock() else { return };
        let Ok((writes, chain)) = self.store.head() else { return };
        if writes == 0 || self.last_anchored() >= writes {
            return;
        }
        if let Ok(mut s) = crate::step::Session::begin(&self.ws, "serve") {
            let anchor = crate::agents::ledger::Anchor {
                event: "checkpoint".into(),
                story: None,
                writes,
                chain: crate::journal::line::hex(&chain),
                quorum: None,
                packet: None,
            };
            let _ = s.record(&anchor);
            self.invalidate();
        }
    }

    fn last_anchored(&self) -> i64 {
        logged_anchors(&self.ws).ok().and_then(|a| a.iter().map(|(n, _)| *n).max()).unwrap_or(0)
    }
}

/// The `(writes, chain)` of every `agents` entry of the log of `ws`.
fn logged_anchors(ws: &Workspace) -> Result<Vec<(i64, String)>, crate::journal::JournalError> {
    let journal = crate::journal::Journal::open(ws)?;
    let mut bodies = Vec::new();
    for e in journal.raw_entries()? {
        let e = e?;
        if e.kind == crate::journal::Kind::Agents {
            bodies.push(e.body);
        }
    }
    Ok(anchors(&bodies))
}

/// The `(writes, chain)` of each `agents` entry body.
pub fn anchors(bodies: &[String]) -> Vec<(i64, String)> {
    bodies
        .iter()
        .filter_map(|b| serde_json::from_str::<crate::agents::ledger::Anchor>(b).ok())
        .map(|a| (a.writes, a.chain))
        .collect()
}

/// An idempotency key in flight; released on drop.
pub struct Claim {
    agents: Arc<Agents>,
    key: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.agents.inflight.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
    }
}

// ---- responses -----------------------------------------------------------

/// The HTTP status of each agents error code.
pub fn status_of(e: &AgentError) -> StatusCode {
    use AgentError::*;
    match e {
        HeadersMissing(_) | HeadersInvalid(_) | TimestampDrift { .. } | SignatureInvalid | BotUnregistered { .. } => {
            StatusCode::UNAUTHORIZED
        }
        ActionNotAllowed { .. } | PublicKeyRequired { .. } | OperationsOnly => StatusCode::UNAUTHORIZED,
        NonceReplay { .. } | PacketMismatch { .. } | IdempotencyConflict { .. } | BaseStale { .. } => {
            StatusCode::CONFLICT
        }
        StoryClosed { .. } | RevisionClosed { .. } => StatusCode::CONFLICT,
        VerifiedRequired | AgentKitFailed { .. } | SelfServeDisabled => StatusCode::FORBIDDEN,
        StoryNotFound { .. } | CandidateNotFound { .. } | RevisionNotFound { .. } => StatusCode::NOT_FOUND,
        Gate1Objection { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Validation(_) | InvalidJson(_) | IdempotencyKeyRequired | IdempotencyKeyInvalid => StatusCode::BAD_REQUEST,
        TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        WorkspaceBusy { .. } | Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The actionable error shape, with the request id.
pub fn fail(rid: &str, e: AgentError) -> Response {
    let status = status_of(&e);
    if status.is_server_error() {
        tracing::error!(code = e.code(), message = %e, "agents request failed");
    }
    let mut body = serde_json::json!({
        "error": e.title(),
        "code": e.code(),
        "message": e.to_string(),
        "requestId": rid,
    });
    if let Some(h) = e.hint() {
        body["nextAction"] = h.into();
    }
    if let Some(d) = e.details() {
        body["details"] = d;
    }
    let retry = e.retry_after();
    if let Some(s) = retry {
        body["retryAfterSeconds"] = s.into();
    }
    let mut res = (status, axum::Json(body)).into_response();
    if let Some(s) = retry {
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    res
}

/// A JSON success response.
pub fn ok(status: StatusCode, body: &serde_json::Value) -> Response {
    raw_json(status, serde_json::to_vec(body).unwrap_or_default())
}

pub fn raw_json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// The request's id: its valid `x-request-id`, or a fresh one.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| {
            let mut b = [0u8; 8];
            let _ = getrandom::fill(&mut b);
            format!("req_{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
        })
}

/// Middleware of every agents route: `x-request-id` in, `x-request-id` out.
pub async fn with_request_id(mut req: Request, next: axum::middleware::Next) -> Response {
    let rid = request_id(req.headers());
    req.extensions_mut().insert(Rid(rid.clone()));
    let mut res = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&rid) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// The request id, as the middleware set it.
#[derive(Clone, Debug)]
pub struct Rid(pub String);

pub fn rid_of(req: &Request) -> String {
    req.extensions().get::<Rid>().map(|r| r.0.clone()).unwrap_or_else(|| request_id(req.headers()))
}

/// The agents API of the server, or why there is none.
pub fn agents_of(state: &AppState) -> Result<Arc<Agents>, AgentError> {
    match &state.agents {
        Some(a) => Ok(a.clone()),
        None => Err(AgentError::Unavailable {
            why: "this ratchet serve runs outside a ratchet workspace, so no loop takes candidates".into(),
        }),
    }
}

// ---- the signed-write pipeline ---------------------------------------------

/// What the pipeline needs to know about a route.
pub struct WriteKind {
    /// `join` skips the registry (it is how a bot enters it).
    pub join: bool,
}

/// A signed write that passed every check up to and including its signature.
pub struct Signed {
    pub rid: String,
    pub agents: Arc<Agents>,
    pub book: Arc<Book>,
    pub bot_id: String,
    pub body: Json,
    pub headers: Checked,
    pub verified: signed::Verified,
    pub path: String,
    pub audience: String,
    pub idempotency_key: Option<String>,
    pub agentkit: Option<String>,
    pub now_ms: i64,
}

impl Signed {
    pub fn rails(&self) -> &Rails {
        self.book.rails.as_ref().expect("the pipeline checked the rails")
    }

    /// The ledger record of this write (its number comes at commit).
    pub fn record(
        &self,
        kind: &str,
        story: Option<String>,
        target: Option<String>,
        packet: Option<String>,
    ) -> crate::agents::ledger::Record {
        use base64::Engine;
        crate::agents::ledger::Record {
            seq: 0,
            kind: kind.to_string(),
            bot_id: self.bot_id.clone(),
            story,
            target,
            packet,
            audience: self.audience.clone(),
            method: "POST".into(),
            path: self.path.clone(),
            timestamp: self.headers.timestamp.clone(),
            nonce: self.headers.nonce.clone(),
            body: self.verified.body.clone(),
            order: self.verified.order,
            signature: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.headers.signature),
        }
    }

    /// The idempotency fingerprint: actor, operation and canonical body;
    /// never the signature headers, which every retry renews.
    pub fn fingerprint(&self) -> String {
        let body = json::canonical(&self.body, json::KeyOrder::Code);
        blake3::hash(format!("{}\nPOST {}\n{body}", self.bot_id, self.path).as_bytes()).to_hex().to_string()
    }
}

/// Runs the checks every signed write shares, cheapest first.
pub async fn pipeline(state: &AppState, req: Request, kind: WriteKind) -> Result<Signed, (String, AgentError)> {
    let rid = rid_of(&req);
    let fail = |e| (rid.clone(), e);
    let agents = agents_of(state).map_err(fail)?;
    let (parts, body) = req.into_parts();
    // Size and type.
    if parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok())
        > Some(MAX_BODY)
    {
        return Err(fail(AgentError::TooLarge { limit: MAX_BODY }));
    }
    let ct = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(fail(AgentError::UnsupportedMediaType { got: ct.chars().take(80).collect() }));
    }
    // Header shapes.
    let all: Vec<(&str, &[u8])> = parts.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
    let checked = match Headers::collect(all).check() {
        Ok(c) => c,
        Err(HeaderError::Missing(m)) => return Err(fail(AgentError::HeadersMissing(m))),
        Err(HeaderError::Invalid(p)) => return Err(fail(AgentError::HeadersInvalid(p))),
    };
    let idempotency_key = match header_once(&parts.headers, "idempotency-key") {
        Ok(k) => k,
        Err(()) => return Err(fail(AgentError::IdempotencyKeyInvalid)),
    };
    if let Some(k) = &idempotency_key {
        if k.is_empty() || k.len() > 255 || !k.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(fail(AgentError::IdempotencyKeyInvalid));
        }
    }
    let agentkit = parts.headers.get("agentkit").and_then(|v| v.to_str().ok()).map(str::to_string);
    // The time window.
    let now_ms = crate::clock::now().timestamp_millis();
    if let Err(drift_ms) = signed::within_window(checked.timestamp_ms, now_ms) {
        return Err(fail(AgentError::TimestampDrift { drift_ms }));
    }
    // The body.
    let bytes =
        axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| fail(AgentError::TooLarge { limit: MAX_BODY }))?;
    let body = json::parse(&bytes).map_err(|e| fail(AgentError::InvalidJson(e.0)))?;
    let claimed = crate::agents::bodies::bot_id(&body).map_err(|e| fail(AgentError::Validation(e)))?;
    let key = agents.key_of(&claimed).map_err(|e| {
        fail(AgentError::Validation(crate::agents::bodies::BodyError { field: "botId".into(), message: e.to_string() }))
    })?;
    // The rails (the audience, roles, limits).
    let book = agents.book();
    let rails = match &book.rails {
        Ok(r) => r,
        Err(e) => return Err(fail(AgentError::Unavailable { why: format!("the rails cannot be read: {e}") })),
    };
    let audience = rails.agents.audience.clone();
    // The registry.
    if !kind.join && agents.store.bot(&key.bot_id).is_none() {
        return Err(fail(AgentError::BotUnregistered { bot_id: key.bot_id.clone() }));
    }
    // The rate limit.
    if let Err(retry_after) = agents.rate(&key.bot_id, rails.agents.writes_per_minute) {
        return Err(fail(AgentError::RateLimited { per_minute: rails.agents.writes_per_minute, retry_after }));
    }
    // The signature.
    let path = parts.uri.path().to_string();
    let target = Target { audience: &audience, method: parts.method.as_str(), path: &path };
    let verified =
        signed::verify(&key.key, &target, &checked, &body).ok_or_else(|| fail(AgentError::SignatureInvalid))?;
    Ok(Signed {
        rid,
        agents,
        book,
        bot_id: key.bot_id,
        body,
        headers: checked,
        verified,
        path,
        audience,
        idempotency_key,
        agentkit,
        now_ms,
    })
}

/// A header that may appear at most once.
fn header_once(headers: &HeaderMap, name: &str) -> Result<Option<String>, ()> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(());
    }
    match first {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.trim().to_string())).map_err(|_| ()),
    }
}

/// The trust checks of writes after join: verified bots when required, and
/// `verified: true` only from a bot an operator vouched for.
pub fn check_trust(s: &Signed, claims_verified: bool) -> Result<(), AgentError> {
    let bot = s.agents.store.bot(&s.bot_id);
    let is_verified = bot.as_ref().is_some_and(|b| b.verified);
    if claims_verified && !is_verified {
        return Err(AgentError::AgentKitFailed {
            why: "verified=true, but no operator has vouched for this bot (POST /v1/agents/verify)".into(),
        });
    }
    if s.rails().gate.quorum.require_verified && !is_verified {
        return Err(AgentError::VerifiedRequired);
    }
    Ok(())
}

/// Answers a write's replay or conflict from a stored first response.
pub fn replay(s: &Signed, row: &store::IdemRow) -> Result<Response, AgentError> {
    if row.actor != s.bot_id || row.operation != format!("POST {}", s.path) || row.fingerprint != s.fingerprint() {
        let why = if row.actor != s.bot_id {
            "the key belongs to another bot's write"
        } else if row.operation != format!("POST {}", s.path) {
            "the key was used for another operation"
        } else {
            "the key was used with another payload"
        };
        return Err(AgentError::IdempotencyConflict { why: why.into() });
    }
    let mut res = raw_json(StatusCode::from_u16(row.status).unwrap_or(StatusCode::OK), row.body.clone());
    res.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(res)
}

/// The `Body` type, re-exported for handlers.
pub type AnyBody = Body;

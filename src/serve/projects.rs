//! Projects and keys: `POST /v1/provision`, `/v1/signup`, `/v1/recover`,
//! `/v1/signup/upgrade`, in seed 000's shapes.
//!
//! - provision converges to one project per (project_name, operator): the
//!   first call mints it (rate-limited per address; a unique index makes
//!   concurrent first calls mint once) and graduates it to a permanent
//!   project; a re-run with one of that project's keys resumes it without
//!   rotating (no key is returned); a re-run without a key is refused (401).
//! - signup mints a fresh sandbox each call (span quota, expiry).
//! - recover checks HMAC-SHA256("recover:<project_id>") under the server
//!   secret, then revokes every key and returns fresh ones (JSON; the
//!   dashboard's form gets a 303 to a page that shows them once). Wrong
//!   codes are rate-limited per project, apart from minting (see [`rotate`]).
//! - signup/upgrade checks HMAC-SHA256("signup-upgrade:sandbox:<project_id>")
//!   under SIGNUP_UPGRADE_SECRET (or the server secret when unset), with the
//!   agent key as bearer (or, once, both keys in the body).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::loopkit::keys::{self, KeyKind};
use crate::serve::auth::{self, ClientIp};
use crate::serve::error::ApiError;
use crate::serve::once;
use crate::serve::store::{NewProject, Project, StoreError};
use crate::serve::{AppState, blocking, now_s};

pub use crate::serve::body::SMALL_BODY;

/// Reads a small body under the server's bounds (see [`crate::serve::body`]).
pub async fn read_body(state: &AppState, headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    crate::serve::body::read(headers, body, limit, &state.config.body).await
}

/// Parses a JSON body strictly (see [`crate::serve::body::parse_object`]).
pub fn parse_json<T: DeserializeOwned>(body: &[u8], shape: &str) -> Result<T, ApiError> {
    crate::serve::body::parse_object(body, shape)
}

fn check_name(field: &str, s: &str) -> Result<String, ApiError> {
    let t = s.trim();
    // What /openapi.json says: 1 to 100 characters, not all white space, no
    // control characters (white space around the name is trimmed).
    if t.is_empty() || s.chars().count() > 100 || s.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "BAD_PROJECT_NAME",
            format!("{field} must be 1 to 100 printable characters"),
            format!("send a short {field} such as \"checkout-api\""),
        ));
    }
    Ok(t.to_string())
}

fn new_project_id() -> Result<String, ApiError> {
    let r = keys::random_bytes().map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    Ok(format!("prj_{}", keys::hex(&r[..8])))
}

fn mint_pair() -> Result<(keys::MintedKey, keys::MintedKey), ApiError> {
    let err = |e: getrandom::Error| ApiError::internal(format!("no randomness: {e}"));
    Ok((keys::mint(KeyKind::Producer).map_err(err)?, keys::mint(KeyKind::Agent).map_err(err)?))
}

pub fn dashboard_url(state: &AppState, p: &Project) -> String {
    let token = keys::dashboard_token(state.secret.key(), &p.public_id, p.key_generation);
    format!("{}/dashboard?project_id={}&token={}", state.config.base_url(), p.public_id, token)
}

fn stamp_s(s: i64) -> Value {
    chrono::DateTime::from_timestamp(s, 0).map(|t| Value::String(crate::clock::stamp(t))).unwrap_or(Value::Null)
}

/// The signup shape of seed 000 (keys `null` when none are shown).
fn key_shape(state: &AppState, p: &Project, producer: Option<&str>, agent: Option<&str>, recovery: bool) -> Value {
    let base = state.config.base_url();
    json!({
        "producer_key": producer,
        "agent_key": agent,
        "project_id": p.public_id,
        "project_name": p.name,
        "tier": p.tier,
        "quota_spans": p.quota_spans,
        "expires_at": p.expires_at.map(stamp_s).unwrap_or(Value::Null),
        "ingest_url": format!("{base}/v1/traces"),
        "diagnose_url": format!("{base}/v1/runs/diagnose"),
        "recovery_code": recovery.then(|| keys::recovery_code(state.secret.key(), &p.public_id)),
        "dashboard_url": dashboard_url(state, p),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvisionBody {
    project_name: String,
    #[serde(default)]
    operator: Option<String>,
}

pub async fn provision(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(&state, &headers, body, SMALL_BODY).await?;
    let b: ProvisionBody = parse_json(&body, "{\"project_name\": string, \"operator\"?: string}")?;
    let name = check_name("project_name", &b.project_name)?;
    let operator = match b.operator.as_deref() {
        Some(o) if !o.trim().is_empty() => check_name("operator", o)?,
        _ => String::new(),
    };

    // Resume: one of that project's keys, no rotation.
    if let Some(key) = auth::presented_key(&headers) {
        let row = auth::lookup(&state, &key).await?;
        if !(row.project.provisioned && row.project.name == name && row.project.operator == operator) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "KEY_PROJECT_MISMATCH",
                format!(
                    "the key belongs to project {}, not to {name:?} of operator {operator:?}",
                    row.project.public_id
                ),
                "send the key of the project you are resuming, or omit the key to mint a new project under a new name",
            ));
        }
        let was_permanent = row.project.tier == "permanent";
        let (store, quota, rowid) = (state.store.clone(), state.config.permanent_quota, row.project.rowid);
        let p = blocking(move || store.graduate(rowid, quota, now_s())).await?;
        let mut v = key_shape(&state, &p, None, None, false);
        v["resumed"] = true.into();
        v["graduated"] = true.into();
        v["graduated_now"] = (!was_permanent).into();
        return Ok((StatusCode::OK, axum::Json(v)).into_response());
    }

    let (store, n, o) = (state.store.clone(), name.clone(), operator.clone());
    if blocking(move || store.provisioned_project(&n, &o)).await?.is_some() {
        return Err(resume_needs_key(&name, &operator));
    }
    state.mint.check(&ip).map_err(auth::rate_limited)?;
    let (producer, agent) = mint_pair()?;
    let public_id = new_project_id()?;
    let store = state.store.clone();
    let (quota, digests) =
        (state.config.permanent_quota, [(KeyKind::Producer, producer.digest), (KeyKind::Agent, agent.digest)]);
    let (n, o) = (name.clone(), operator.clone());
    let created = blocking(move || {
        store.create_project(&NewProject {
            public_id: &public_id,
            name: &n,
            operator: &o,
            provisioned: true,
            tier: "permanent",
            quota_spans: quota,
            expires_at: None,
            keys: &digests,
            now: now_s(),
        })
    })
    .await;
    let p = match created {
        Ok(p) => p,
        Err(e) if e.code() == "PROJECT_EXISTS" => return Err(resume_needs_key(&name, &operator)),
        Err(e) => return Err(e),
    };
    tracing::info!(project = %p.public_id, "provisioned");
    let mut v = key_shape(&state, &p, Some(&producer.plaintext), Some(&agent.plaintext), true);
    v["resumed"] = false.into();
    v["graduated"] = true.into();
    Ok((StatusCode::CREATED, axum::Json(v)).into_response())
}

fn resume_needs_key(name: &str, operator: &str) -> ApiError {
    let e = ApiError::coded(
        StatusCode::UNAUTHORIZED,
        &StoreError::ProjectExists { name: name.to_string(), operator: operator.to_string() },
    );
    ApiError { report: crate::error::Report { code: "RESUME_REQUIRES_KEY", ..e.report }, ..e }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignupBody {
    #[serde(default)]
    project_name: Option<String>,
}

pub async fn signup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(&state, &headers, body, SMALL_BODY).await?;
    let b: SignupBody = parse_json(&body, "{\"project_name\"?: string}")?;
    let name = match b.project_name.as_deref() {
        Some(n) => check_name("project_name", n)?,
        None => "sandbox".to_string(),
    };
    state.mint.check(&ip).map_err(auth::rate_limited)?;
    let (producer, agent) = mint_pair()?;
    let public_id = new_project_id()?;
    let store = state.store.clone();
    let digests = [(KeyKind::Producer, producer.digest), (KeyKind::Agent, agent.digest)];
    let (quota, ttl) = (state.config.sandbox_quota, state.config.sandbox_ttl.as_secs() as i64);
    let p = blocking(move || {
        let now = now_s();
        store.create_project(&NewProject {
            public_id: &public_id,
            name: &name,
            operator: "",
            provisioned: false,
            tier: "sandbox",
            quota_spans: quota,
            expires_at: Some(now + ttl),
            keys: &digests,
            now,
        })
    })
    .await?;
    tracing::info!(project = %p.public_id, "sandbox minted");
    let v = key_shape(&state, &p, Some(&producer.plaintext), Some(&agent.plaintext), true);
    Ok((StatusCode::CREATED, axum::Json(v)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoverBody {
    project_id: String,
    recovery_code: String,
}

/// `prj_` and 16 lower-case hex characters.
pub fn is_project_id(s: &str) -> bool {
    s.len() == 20 && s.starts_with("prj_") && s[4..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub async fn recover(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body = read_body(&state, &headers, body, SMALL_BODY).await?;
    let parsed: Result<RecoverBody, ApiError> = if is_form {
        serde_urlencoded::from_bytes(&body).map_err(|e| {
            ApiError::bad_request(
                "BAD_REQUEST_BODY",
                format!("the form is not project_id and recovery_code: {e}"),
                "fill in project_id and recovery_code",
            )
        })
    } else {
        parse_json(&body, "{\"project_id\": string, \"recovery_code\": string}")
    };
    let checked = parsed.and_then(|b| check_recover_shape(&b).map(|()| b));
    let b = match checked {
        Ok(b) => b,
        // A form that is not filled in as asked holds no key: its page is
        // answered directly (a reload would only fail the same way).
        Err(e) if is_form => {
            return Ok((e.status, Html(crate::serve::page::recovery_failed(&e.report))).into_response());
        }
        Err(e) => return Err(e),
    };
    let result = rotate(&state, &b).await;
    if !is_form {
        return result.map(|v| axum::Json(v).into_response());
    }
    // The browser form: POST-redirect-GET, so a reload of the result page
    // can neither resubmit the form nor show the keys twice.
    let outcome = match result {
        Ok(v) => once::Outcome::Rotated(v),
        Err(e) => once::Outcome::Refused { status: e.status.as_u16(), report: e.report },
    };
    let ticket = state.recovered.put(outcome).map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, format!("/recovered?ticket={ticket}"))]).into_response())
}

/// Checks the recovery code and rotates the keys.
///
/// Wrong codes are counted per project id, in their own bucket
/// ([`AppState::recovery`]), never in the minting bucket: an attacker who
/// exhausts minting cannot block a recovery, and one who sends wrong codes
/// for a project is slowed down (429 with `Retry-After`) without locking the
/// owner out: a *correct* code is honoured even while the project's bucket
/// is full. (With 256-bit codes the bound on guessing is the code space,
/// not this limit; the limit bounds the work and noise an attacker causes.)
fn check_recover_shape(b: &RecoverBody) -> Result<(), ApiError> {
    let code = &b.recovery_code;
    if !is_project_id(&b.project_id) || code.len() != 64 || !code.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "BAD_REQUEST_BODY",
            "project_id must be prj_ and 16 hex characters, and recovery_code 64 hex characters",
            "copy both exactly from the signup or provision response",
        ));
    }
    Ok(())
}

async fn rotate(state: &AppState, b: &RecoverBody) -> Result<Value, ApiError> {
    let (id, code) = (b.project_id.as_str(), b.recovery_code.as_str());
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_RECOVERY_CODE",
            "the project_id and recovery_code do not match",
            "copy both exactly from the signup or provision response (the code is 64 hex characters and never changes)",
        )
    };
    let bucket = id.to_string();
    let limited = state.recovery.would_allow(&bucket).err();
    let (store, lookup) = (state.store.clone(), id.to_string());
    let project = blocking(move || store.project(&lookup)).await?;
    let matches = project
        .as_ref()
        .is_some_and(|p| keys::code_matches(&keys::recovery_code(state.secret.key(), &p.public_id), code));
    let Some(p) = project.filter(|_| matches) else {
        if let Some(wait) = limited {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RECOVERY_RATE_LIMITED",
                format!("too many wrong recovery codes for project {id}"),
                format!("wait {wait} s; the project's owner can still recover with the right code at any time"),
            )
            .retry_after(wait));
        }
        let _ = state.recovery.check(&bucket);
        return Err(refused());
    };
    let (producer, agent) = mint_pair()?;
    let digests = [(KeyKind::Producer, producer.digest), (KeyKind::Agent, agent.digest)];
    let store = state.store.clone();
    let p = blocking(move || store.rotate_keys(p.rowid, &digests, now_s())).await?;
    tracing::info!(project = %p.public_id, generation = p.key_generation, "keys rotated by recovery");
    let mut v = key_shape(state, &p, Some(&producer.plaintext), Some(&agent.plaintext), false);
    v["rotated"] = true.into();
    v["revoked_previous_keys"] = true.into();
    Ok(v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpgradeBody {
    code: String,
    #[serde(default)]
    producer_key: Option<String>,
    #[serde(default)]
    agent_key: Option<String>,
}

pub async fn upgrade(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let body = read_body(&state, &headers, body, SMALL_BODY).await?;
    let b: UpgradeBody = parse_json(&body, "{\"code\": string}")?;
    let project = match (auth::presented_key(&headers), &b.producer_key, &b.agent_key) {
        (Some(_), _, _) => auth::require(&state, &headers, KeyKind::Agent, "signup/upgrade").await?,
        (None, Some(pk), Some(ak)) => {
            // Seed 000: older sandboxes may prove ownership with both keys in the body.
            let (p, a) = (auth::lookup(&state, pk).await?, auth::lookup(&state, ak).await?);
            if p.kind != KeyKind::Producer || a.kind != KeyKind::Agent || p.project.rowid != a.project.rowid {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "KEY_PROJECT_MISMATCH",
                    "producer_key and agent_key must be the two keys of one project",
                    "send the project's agent_key as 'Authorization: Bearer <agent_key>' instead",
                ));
            }
            a.project
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "AUTH_REQUIRED",
                "signup/upgrade needs the project's agent key",
                "send 'Authorization: Bearer <agent_key>' with the body {\"code\": \"<signed hex code>\"}",
            ));
        }
    };
    let secret: &[u8] = match &state.config.upgrade_secret {
        Some(s) => s.as_bytes(),
        None => state.secret.key(),
    };
    if !keys::code_matches(&keys::upgrade_code(secret, &project.public_id), &b.code) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "INVALID_UPGRADE_CODE",
            format!("the code is not the signed upgrade code of project {}", project.public_id),
            "ask the operator for HMAC-SHA256(\"signup-upgrade:sandbox:<project_id>\") under SIGNUP_UPGRADE_SECRET, as hex",
        ));
    }
    let already = project.tier == "permanent";
    let (store, quota) = (state.store.clone(), state.config.permanent_quota);
    let p = blocking(move || store.graduate(project.rowid, quota, now_s())).await?;
    Ok(axum::Json(json!({
        "project_id": p.public_id,
        "tier": p.tier,
        "graduated": true,
        "already_graduated": already,
        "quota_spans": p.quota_spans,
        "expires_at": Value::Null,
    }))
    .into_response())
}

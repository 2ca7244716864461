//! The loop's side of LoopKit: where the server is, which keys to present,
//! and the reads Pick and verification make (DESIGN §3 "Pick", §11).
//!
//! Without `[loopkit]` in the rails there is nothing to read or report.
//! With it:
//!
//! | what | where it comes from |
//! |---|---|
//! | the server | `$RATCHET_LOOPKIT_URL` ([`URL_ENV`]) when set, else `[loopkit] url` |
//! | the agent key (reads pains, packets, changes) | `$<agent_key_env>` (`LOOPKIT_AGENT_KEY`), else `agent_key` in `.ratchet/keys.toml` |
//! | the producer key (reports steps, [`crate::loopkit::outbox`]) | `$<producer_key_env>` (`LOOPKIT_PRODUCER_KEY`), else `producer_key` in `.ratchet/keys.toml` |
//!
//! Reads: `GET /v1/dashboard` gives `open_pains` ordered by importance, and
//! the first one becomes the focus `pain:<pain_id>`, with the essentials of
//! its improvement packet (`POST /v1/runs/diagnose`, [`crate::propose::pain`]);
//! `GET /v1/changes` gives the rates a merged change is verified with
//! ([`crate::step`]'s verification).
//!
//! Every failure is a [`TelemetryError`] with a code and a next action: the
//! step goes on without telemetry (the entry notes `telemetry_unavailable`)
//! and the command line says why, once.
//!
//! Invariant: nothing the server answers is trusted as it comes. Bodies are
//! read up to [`MAX_RESPONSE`] bytes, numbers must be finite and in range,
//! strings are bounded before they reach a context, a log entry or a
//! terminal (the server is reached over the network, and a proxy or
//! another process may answer in its place).

use std::io::Read;
use std::time::Duration;

use crate::error::Coded;
use crate::propose::context::Focus;
use crate::rails::Rails;
use crate::workspace::Workspace;

/// Overrides `[loopkit] url` (a server on another port, a tunnel, CI).
pub const URL_ENV: &str = "RATCHET_LOOPKIT_URL";

/// The largest response body read from the server.
pub const MAX_RESPONSE: u64 = 4 << 20;

/// How long a connection may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(800);
/// How long a whole request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Why telemetry could not be read or reported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TelemetryError {
    #[error("the LoopKit url {url:?} (from {from}) is not an http:// or https:// address")]
    BadUrl { url: String, from: String },
    #[error("no LoopKit {kind} key: ${env} is unset and .ratchet/keys.toml has no {kind}_key")]
    NoKey { kind: &'static str, env: String },
    #[error("cannot reach LoopKit at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("LoopKit at {url} refused the {kind} key ({status}): {message}")]
    Unauthorized { url: String, kind: &'static str, status: u16, message: String },
    #[error("LoopKit at {url} answered {status}: {message}")]
    Refused { url: String, status: u16, message: String },
    #[error("LoopKit at {url} answered something ratchet cannot use: {reason}")]
    BadResponse { url: String, reason: String },
}

impl Coded for TelemetryError {
    fn code(&self) -> &'static str {
        match self {
            TelemetryError::BadUrl { .. } => "TELEMETRY_BAD_URL",
            TelemetryError::NoKey { .. } => "TELEMETRY_NO_KEY",
            TelemetryError::Unreachable { .. } => "TELEMETRY_UNREACHABLE",
            TelemetryError::Unauthorized { .. } => "TELEMETRY_UNAUTHORIZED",
            TelemetryError::Refused { .. } => "TELEMETRY_REFUSED",
            TelemetryError::BadResponse { .. } => "TELEMETRY_BAD_RESPONSE",
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            TelemetryError::BadUrl { from, .. } => {
                format!("set {from} to the server's address, such as http://127.0.0.1:7878")
            }
            TelemetryError::NoKey { kind, env } => format!(
                "export {env}=<{kind}_key>, or write {kind}_key = \"…\" in .ratchet/keys.toml (POST /v1/provision returns both keys)"
            ),
            TelemetryError::Unreachable { .. } => format!(
                "start it (`ratchet serve`), or point [loopkit] url or ${URL_ENV} at it; steps are queued in .ratchet/ and sent once it answers"
            ),
            TelemetryError::Unauthorized { kind, .. } => format!(
                "check that the {kind} key belongs to this server's project; lost keys are rotated with POST /v1/recover and the recovery_code"
            ),
            TelemetryError::Refused { .. } => "read the server's log; the step went on without telemetry".into(),
            TelemetryError::BadResponse { .. } => {
                format!("check that [loopkit] url (or ${URL_ENV}) points at a LoopKit server, not another service")
            }
        })
    }
}

impl TelemetryError {
    /// Whether the server could not be reached at all (so trying again in
    /// the same run only costs time).
    pub fn unreachable(&self) -> bool {
        matches!(self, TelemetryError::Unreachable { .. })
    }
}

/// The configured server and the keys for it.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Without a trailing slash.
    pub url: String,
    pub agent_key: Option<String>,
    pub producer_key: Option<String>,
    pub agent_key_env: String,
    pub producer_key_env: String,
    /// The window a merge is verified over.
    pub window: crate::loopkit::window::Window,
}

#[derive(serde::Deserialize, Default)]
struct Keys {
    agent_key: Option<String>,
    producer_key: Option<String>,
}

fn env_key(var: &str) -> Option<String> {
    std::env::var(var).ok().map(|k| k.trim().to_string()).filter(|k| !k.is_empty())
}

/// `.ratchet/keys.toml`, when it is there and readable.
fn stored_keys(ws: &Workspace) -> Keys {
    std::fs::read_to_string(ws.state_dir().join("keys.toml"))
        .ok()
        .and_then(|t| toml::from_str::<Keys>(&t).ok())
        .unwrap_or_default()
}

/// The agent key for LoopKit: `$<agent_key_env>`, else `.ratchet/keys.toml`.
pub fn agent_key(ws: &Workspace, env_var: &str) -> Option<String> {
    env_key(env_var).or_else(|| stored_keys(ws).agent_key.filter(|k| !k.trim().is_empty()))
}

impl Endpoint {
    /// The endpoint the rails configure (`None` without `[loopkit]`), with
    /// [`URL_ENV`] applied.
    pub fn resolve(rails: &Rails, ws: &Workspace) -> Result<Option<Endpoint>, TelemetryError> {
        let Some(lk) = &rails.loopkit else { return Ok(None) };
        let (url, from) = match env_key(URL_ENV) {
            Some(u) => (u, format!("${URL_ENV}")),
            None => (lk.url.clone(), "[loopkit] url in config/rails.toml".to_string()),
        };
        let ok = (url.starts_with("http://") || url.starts_with("https://"))
            && reqwest::Url::parse(&url).is_ok_and(|u| u.host().is_some());
        if !ok {
            return Err(TelemetryError::BadUrl { url: crate::text::show(&bounded(&url, 200)), from });
        }
        let stored = stored_keys(ws);
        let keep = |k: Option<String>| k.filter(|k| !k.trim().is_empty());
        Ok(Some(Endpoint {
            url: url.trim_end_matches('/').to_string(),
            agent_key: env_key(&lk.agent_key_env).or_else(|| keep(stored.agent_key)),
            producer_key: env_key(&lk.producer_key_env).or_else(|| keep(stored.producer_key)),
            agent_key_env: lk.agent_key_env.clone(),
            producer_key_env: lk.producer_key_env.clone(),
            window: lk.window.clone(),
        }))
    }

    fn agent(&self) -> Result<&str, TelemetryError> {
        self.agent_key
            .as_deref()
            .ok_or_else(|| TelemetryError::NoKey { kind: "agent", env: self.agent_key_env.clone() })
    }

    pub(crate) fn producer(&self) -> Result<&str, TelemetryError> {
        self.producer_key
            .as_deref()
            .ok_or_else(|| TelemetryError::NoKey { kind: "producer", env: self.producer_key_env.clone() })
    }

    /// `GET path` with the agent key, as JSON.
    pub fn get_json(&self, path: &str) -> Result<serde_json::Value, TelemetryError> {
        let key = self.agent()?;
        let url = format!("{}{path}", self.url);
        let res = http()?.get(&url).bearer_auth(key).send();
        self.json_answer(res, "agent")
    }

    /// `POST path` with the agent key and a JSON body, as JSON.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Result<serde_json::Value, TelemetryError> {
        let key = self.agent()?;
        let url = format!("{}{path}", self.url);
        let res = http()?.post(&url).bearer_auth(key).json(body).send();
        self.json_answer(res, "agent")
    }

    /// `POST /v1/traces` with the producer key and an OTLP protobuf body;
    /// the answer's body (an `ExportTraceServiceResponse`) on success.
    pub fn post_traces(&self, body: Vec<u8>) -> Result<Vec<u8>, TelemetryError> {
        let key = self.producer()?;
        let url = format!("{}/v1/traces", self.url);
        let res = http()?
            .post(&url)
            .bearer_auth(key)
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body)
            .send();
        let (status, bytes) = self.read(res)?;
        if status.is_success() {
            return Ok(bytes);
        }
        Err(self.refusal(status, &bytes, "producer"))
    }

    fn read(
        &self,
        res: reqwest::Result<reqwest::blocking::Response>,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), TelemetryError> {
        let res = res.map_err(|e| TelemetryError::Unreachable { url: self.url.clone(), reason: cause(&e) })?;
        let status = res.status();
        let mut bytes = Vec::new();
        res.take(MAX_RESPONSE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| TelemetryError::Unreachable { url: self.url.clone(), reason: e.to_string() })?;
        if bytes.len() as u64 > MAX_RESPONSE {
            return Err(TelemetryError::BadResponse {
                url: self.url.clone(),
                reason: format!("an answer larger than {MAX_RESPONSE} bytes"),
            });
        }
        Ok((status, bytes))
    }

    fn json_answer(
        &self,
        res: reqwest::Result<reqwest::blocking::Response>,
        kind: &'static str,
    ) -> Result<serde_json::Value, TelemetryError> {
        let (status, bytes) = self.read(res)?;
        if !status.is_success() {
            return Err(self.refusal(status, &bytes, kind));
        }
        serde_json::from_slice(&bytes).map_err(|e| TelemetryError::BadResponse {
            url: self.url.clone(),
            reason: format!("{status} without JSON ({e})"),
        })
    }

    /// The error for a non-2xx answer, with the server's own words (bounded
    /// and made printable: they reach a terminal).
    fn refusal(&self, status: reqwest::StatusCode, body: &[u8], kind: &'static str) -> TelemetryError {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let said = v["message"].as_str().or(v["error"].as_str()).unwrap_or("no reason given");
        let message = match v["code"].as_str() {
            Some(code) => format!("{} ({})", bounded(said, 300), bounded(code, 60)),
            None => bounded(said, 300),
        };
        let message = crate::text::show(&message);
        match status.as_u16() {
            401 | 403 => TelemetryError::Unauthorized { url: self.url.clone(), kind, status: status.as_u16(), message },
            s => TelemetryError::Refused { url: self.url.clone(), status: s, message },
        }
    }
}

/// The root cause of a request error, in a few words.
fn cause(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut last = e.to_string();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    if e.is_timeout() { format!("timed out ({last})") } else { last }
}

fn http() -> Result<reqwest::blocking::Client, TelemetryError> {
    reqwest::blocking::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| TelemetryError::Unreachable { url: String::new(), reason: format!("no HTTP client: {e}") })
}

/// `text` cut to at most `max` bytes at a character boundary.
pub fn bounded(text: &str, max: usize) -> String {
    let mut cut = text.len().min(max);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].to_string()
}

/// The top open pain with its packet's essentials, `None` without
/// `[loopkit]` or without open pains.
pub fn top_pain(rails: &Rails, ws: &Workspace) -> Result<Option<Focus>, TelemetryError> {
    let Some(ep) = Endpoint::resolve(rails, ws)? else { return Ok(None) };
    let dashboard = ep.get_json("/v1/dashboard")?;
    let Some(mut focus) = pain_focus(&dashboard) else { return Ok(None) };
    let id = focus.reference.trim_start_matches("pain:").to_string();
    let diagnosis =
        ep.post_json("/v1/runs/diagnose", &serde_json::json!({"pain_ids": [id], "max_pains": 1, "evidence": 3}))?;
    let packet = diagnosis["packets"].as_array().and_then(|p| p.iter().find(|p| p["pain_id"] == id.as_str()));
    focus.pain = packet.and_then(crate::propose::pain::PainBrief::from_packet).map(Box::new);
    Ok(Some(focus))
}

/// The focus for the first of a dashboard's `open_pains`.
pub fn pain_focus(dashboard: &serde_json::Value) -> Option<Focus> {
    let pain = dashboard["open_pains"].as_array()?.first()?;
    let id = pain["pain_id"].as_str().filter(|id| crate::loopkit::normalise::is_pain_id(id))?;
    let title = pain["title"].as_str().map(|t| bounded(t, 300)).unwrap_or_else(|| id.to_string());
    let signal = pain["signal_type"].as_str().filter(|s| s.len() <= 20).unwrap_or("failing");
    let number = |v: &serde_json::Value| match v {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) if s == "new" => "\"new\"".to_string(),
        _ => "?".to_string(),
    };
    let mut evidence = vec![format!(
        "{} {signal} spans in the window ({} per 1,000), change {}",
        number(&pain["count"]),
        number(&pain["rate_per_1k"]),
        number(&pain["change_percent"])
    )];
    if let Some(op) = pain["operation"].as_str() {
        evidence.push(format!("operation {}", bounded(op, 200)));
    }
    Some(Focus { reference: format!("pain:{id}"), text: title, evidence, pain: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_open_pain_is_the_focus() {
        let d = serde_json::json!({"open_pains": [
            {"pain_id": "pn_0123456789abcdef", "title": "TimeoutError in checkout", "signal_type": "exception", "count": 12, "rate_per_1k": 4.5, "change_percent": "new", "operation": "POST /checkout"},
            {"pain_id": "pn_1123456789abcdef", "title": "later"}
        ]});
        let f = pain_focus(&d).unwrap();
        assert_eq!((f.reference.as_str(), f.text.as_str()), ("pain:pn_0123456789abcdef", "TimeoutError in checkout"));
        assert_eq!(f.evidence[0], "12 exception spans in the window (4.5 per 1,000), change \"new\"");
        assert!(pain_focus(&serde_json::json!({"open_pains": []})).is_none());
        assert!(
            pain_focus(&serde_json::json!({"open_pains": [{"pain_id": "../../etc"}]})).is_none(),
            "a pain id is checked before it becomes a focus"
        );
    }
}

//! The blocking client behind `ratchet agent`: it signs exactly as a remote
//! bot must ([`super::signed`]), with the audience the server's bootstrap
//! document names, a fresh UUID nonce per request, and the code-unit
//! canonical body.

use serde_json::Value;

use super::error::ErrorBody;
use super::json::Json;
use super::signed::{Identity, Target, fresh_nonce};
use crate::error::Coded;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{status} {}: {}", .body.code.as_deref().unwrap_or("ERROR"), .body.message.as_deref().unwrap_or(&.body.error))]
    Api { status: u16, body: ErrorBody, code: &'static str },
    #[error("the server answered {status} with something that is not JSON: {text}")]
    NotJson { status: u16, text: String },
}

impl Coded for ClientError {
    fn code(&self) -> &'static str {
        match self {
            ClientError::Unreachable { .. } => "AGENT_SERVER_UNREACHABLE",
            ClientError::Api { code, .. } => code,
            ClientError::NotJson { .. } => "AGENT_SERVER_ANSWER_INVALID",
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            ClientError::Unreachable { .. } => {
                Some("start `ratchet serve` in the workspace, or pass --server URL".into())
            }
            ClientError::Api { body, .. } => body.next_action.clone(),
            ClientError::NotJson { .. } => Some("check that --server points at a ratchet serve".into()),
        }
    }
}

/// The codes this client knows, so that errors keep them (others read `AGENT_API_ERROR`).
fn known(code: &str) -> &'static str {
    super::error::ERROR_MAP
        .iter()
        .map(|(_, c, _)| *c)
        .chain(["NOT_FOUND", "METHOD_NOT_ALLOWED", "INTERNAL", "QUORUM_NOT_MET"])
        .find(|c| *c == code)
        .unwrap_or("AGENT_API_ERROR")
}

pub struct Client {
    base: String,
    http: reqwest::blocking::Client,
    pub identity: Option<Identity>,
    /// The server's audience, from its bootstrap document.
    pub audience: String,
    /// The bootstrap document.
    pub bootstrap: Value,
}

impl Client {
    /// Connects to `base` and reads its bootstrap document.
    pub fn connect(base: &str, identity: Option<Identity>) -> Result<Client, ClientError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .map_err(|e| ClientError::Unreachable { url: base.into(), reason: e.to_string() })?;
        let mut c = Client {
            base: base.trim_end_matches('/').to_string(),
            http,
            identity,
            audience: String::new(),
            bootstrap: Value::Null,
        };
        let (_, b) = c.get("/v1/bootstrap", None)?;
        c.audience = b["api"]["audience"].as_str().unwrap_or("ratchet").to_string();
        c.bootstrap = b;
        Ok(c)
    }

    fn answer(&self, res: reqwest::blocking::Response) -> Result<(u16, Value), ClientError> {
        let status = res.status().as_u16();
        let text = res.text().unwrap_or_default();
        let value: Value = serde_json::from_str(&text)
            .map_err(|_| ClientError::NotJson { status, text: text.chars().take(200).collect() })?;
        if status >= 400 {
            let body: ErrorBody = serde_json::from_value(value.clone()).unwrap_or(ErrorBody {
                error: text,
                code: None,
                message: None,
                details: None,
                next_action: None,
                request_id: None,
                retry_after_seconds: None,
            });
            let code = known(body.code.as_deref().unwrap_or(""));
            return Err(ClientError::Api { status, body, code });
        }
        Ok((status, value))
    }

    /// `GET path`, with a read key when given.
    pub fn get(&self, path: &str, api_key: Option<&str>) -> Result<(u16, Value), ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.get(&url);
        if let Some(k) = api_key {
            req = req.header("x-api-key", k);
        }
        let res = req.send().map_err(|e| ClientError::Unreachable { url, reason: e.to_string() })?;
        self.answer(res)
    }

    /// A signed `POST path` of `body` (which must name this bot's botId).
    pub fn write(
        &self,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
        agentkit: Option<&str>,
    ) -> Result<(u16, Value), ClientError> {
        let id = self
            .identity
            .as_ref()
            .ok_or_else(|| ClientError::Unreachable { url: self.base.clone(), reason: "no key to sign with".into() })?;
        let json = Json::from_value(body);
        let now = crate::clock::now().timestamp_millis();
        let h = id.sign_write(&Target { audience: &self.audience, method: "POST", path }, now, &fresh_nonce(), &json);
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header("x-agent-timestamp", h.timestamp)
            .header("x-agent-nonce", h.nonce)
            .header("x-agent-signature", h.signature)
            .body(serde_json::to_vec(body).unwrap_or_default());
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        if let Some(a) = agentkit {
            req = req.header("agentkit", a);
        }
        let res = req.send().map_err(|e| ClientError::Unreachable { url, reason: e.to_string() })?;
        self.answer(res)
    }

    pub fn bot_id(&self) -> String {
        self.identity.as_ref().map(Identity::bot_id).unwrap_or_default()
    }

    /// The current packet hash of a story (from its machine room).
    pub fn current_packet(&self, story: &str) -> Result<String, ClientError> {
        let (_, room) = self.get(&format!("/v1/stories/{story}/machine-room"), None)?;
        Ok(room["currentPacketHash"].as_str().unwrap_or_default().to_string())
    }
}

/// A fresh idempotency key, as the SDK makes them.
pub fn idempotency_key() -> String {
    format!("agent-write:{}", fresh_nonce())
}

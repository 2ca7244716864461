//! The loop's view of telemetry: the top open pain from LoopKit, as the
//! focus of Pick (DESIGN §3 "Pick").
//!
//! Without `[loopkit]` in the rails there is nothing to read. With it, the
//! agent key comes from the environment variable the rails name, else from
//! `.ratchet/keys.toml` (`agent_key = "lka_…"`); `GET /v1/dashboard`
//! returns `open_pains` ordered by importance, and the first one becomes
//! the focus `pain:<pain_id>`. When the server cannot be read (unreachable,
//! no key, an error), the step notes `telemetry_unavailable` and goes on.

use std::time::Duration;

use crate::propose::context::Focus;
use crate::rails::Rails;
use crate::workspace::Workspace;

/// The agent key for LoopKit: `$<agent_key_env>`, else `.ratchet/keys.toml`.
pub fn agent_key(ws: &Workspace, env_var: &str) -> Option<String> {
    if let Ok(key) = std::env::var(env_var) {
        if !key.trim().is_empty() {
            return Some(key.trim().to_string());
        }
    }
    #[derive(serde::Deserialize)]
    struct Keys {
        agent_key: Option<String>,
    }
    let text = std::fs::read_to_string(ws.state_dir().join("keys.toml")).ok()?;
    toml::from_str::<Keys>(&text).ok()?.agent_key.filter(|k| !k.trim().is_empty())
}

/// The top open pain, `None` without `[loopkit]` or without open pains, or
/// why it could not be read.
pub fn top_pain(rails: &Rails, ws: &Workspace) -> Result<Option<Focus>, String> {
    let Some(lk) = &rails.loopkit else { return Ok(None) };
    let key = agent_key(ws, &lk.agent_key_env)
        .ok_or_else(|| format!("no agent key: set ${} or agent_key in .ratchet/keys.toml", lk.agent_key_env))?;
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(3))
        .connect_timeout(Duration::from_millis(500))
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let url = format!("{}/v1/dashboard", lk.url.trim_end_matches('/'));
    let response = client.get(&url).bearer_auth(key).send().map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().map_err(|e| format!("{url} answered {status} without JSON: {e}"))?;
    if !status.is_success() {
        let why = body["message"].as_str().or(body["error"].as_str()).unwrap_or("no reason given");
        return Err(format!("{url} answered {status}: {why}"));
    }
    Ok(pain_focus(&body))
}

/// The focus for the first of a dashboard's `open_pains`.
pub fn pain_focus(dashboard: &serde_json::Value) -> Option<Focus> {
    let pain = dashboard["open_pains"].as_array()?.first()?;
    let id = pain["pain_id"].as_str()?;
    let title = pain["title"].as_str().unwrap_or(id);
    let mut evidence = vec![format!(
        "{} {} spans in the window ({} per 1,000), change {}",
        pain["count"],
        pain["signal_type"].as_str().unwrap_or("failing"),
        pain["rate_per_1k"],
        pain["change_percent"]
    )];
    if let Some(op) = pain["operation"].as_str() {
        evidence.push(format!("operation {op}"));
    }
    Some(Focus { reference: format!("pain:{id}"), text: title.to_string(), evidence })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_open_pain_is_the_focus() {
        let d = serde_json::json!({"open_pains": [
            {"pain_id": "pn_1", "title": "TimeoutError in checkout", "signal_type": "exception", "count": 12, "rate_per_1k": 4.5, "change_percent": "new", "operation": "POST /checkout"},
            {"pain_id": "pn_2", "title": "later"}
        ]});
        let f = pain_focus(&d).unwrap();
        assert_eq!((f.reference.as_str(), f.text.as_str()), ("pain:pn_1", "TimeoutError in checkout"));
        assert_eq!(f.evidence[0], "12 exception spans in the window (4.5 per 1,000), change \"new\"");
        assert!(pain_focus(&serde_json::json!({"open_pains": []})).is_none());
    }
}

//! The agent's final message and what it says it cost, from its standard
//! output, in the formats the agents document:
//!
//! | stdout | message | usage |
//! |---|---|---|
//! | one JSON object with a string `result` (Claude Code `--output-format json`) | `result` | `total_cost_usd`; `usage.input_tokens` (plus `cache_creation_input_tokens`, `cache_read_input_tokens`), `usage.output_tokens` |
//! | JSON Lines whose last `type = "result"` line is such an object (Claude Code `stream-json`) | as above | as above |
//! | JSON Lines of `item.completed` / `turn.completed` events (Codex CLI `exec --json`) | the text of the last `agent_message` item | summed over `turn.completed` `usage` (`input_tokens`, `output_tokens`) |
//! | anything else (aider, gptme, a script) | the text, its last [`MAX_MESSAGE`] bytes | none: one call |
//!
//! An agent that says it failed (`is_error: true`, a `turn.failed` or
//! `error` event) gives [`Report::error`]. The message is the agent's, not
//! ratchet's: it reaches a terminal only through the usual sanitising path.

use serde_json::Value;

use crate::record::Cost;

/// The most of a plain-text final message kept (its end).
pub const MAX_MESSAGE: usize = 4_000;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub message: String,
    /// Token counts and cost when the agent reported them (`calls` is 1).
    pub cost: Option<Cost>,
    /// The agent said it failed, and why.
    pub error: Option<String>,
}

/// Reads the agent's stdout.
pub fn read(stdout: &str) -> Report {
    let text = stdout.trim();
    if let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text) {
        if let Some(report) = claude(&obj) {
            return report;
        }
    }
    let lines: Vec<Value> =
        text.lines().filter(|l| !l.trim().is_empty()).map_while(|l| serde_json::from_str(l).ok()).collect();
    if !lines.is_empty() && lines.len() == text.lines().filter(|l| !l.trim().is_empty()).count() {
        if let Some(report) = lines.iter().rev().find_map(|v| v.as_object().and_then(claude)) {
            return report;
        }
        if let Some(report) = codex(&lines) {
            return report;
        }
    }
    Report { message: tail(text), cost: None, error: None }
}

fn tail(text: &str) -> String {
    if text.len() <= MAX_MESSAGE {
        return text.to_string();
    }
    let mut cut = text.len() - MAX_MESSAGE;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    format!("…{}", &text[cut..])
}

fn count(v: Option<&Value>) -> u64 {
    v.and_then(Value::as_u64).unwrap_or(0)
}

/// Claude Code's result object.
fn claude(obj: &serde_json::Map<String, Value>) -> Option<Report> {
    let message = obj.get("result")?.as_str()?.to_string();
    if obj.get("type").is_some_and(|t| t != "result") {
        return None;
    }
    let usage = obj.get("usage");
    let field = |k: &str| count(usage.and_then(|u| u.get(k)));
    let reported = usage.is_some() || obj.contains_key("total_cost_usd");
    let cost = reported.then(|| Cost {
        usd: obj.get("total_cost_usd").and_then(Value::as_f64).filter(|u| u.is_finite() && *u >= 0.0).unwrap_or(0.0),
        input_tokens: field("input_tokens") + field("cache_creation_input_tokens") + field("cache_read_input_tokens"),
        output_tokens: field("output_tokens"),
        calls: 1,
    });
    let failed = obj.get("is_error").and_then(Value::as_bool).unwrap_or(false)
        || obj.get("subtype").and_then(Value::as_str).is_some_and(|s| s.starts_with("error"));
    Some(Report { error: failed.then(|| message.clone()), message, cost })
}

/// Codex CLI's `exec --json` events.
fn codex(events: &[Value]) -> Option<Report> {
    let kind = |v: &Value| v.get("type").and_then(Value::as_str).unwrap_or("").to_string();
    if !events.iter().any(|e| kind(e).contains('.')) {
        return None;
    }
    let mut report = Report::default();
    let mut cost = Cost { calls: 1, ..Cost::default() };
    let mut counted = false;
    for e in events {
        match kind(e).as_str() {
            "item.completed" => {
                let item = e.get("item");
                let item_kind = item.and_then(|i| i.get("type").or_else(|| i.get("item_type"))).and_then(Value::as_str);
                if matches!(item_kind, Some("agent_message" | "assistant_message")) {
                    if let Some(text) = item.and_then(|i| i.get("text")).and_then(Value::as_str) {
                        report.message = text.to_string();
                    }
                }
            }
            "turn.completed" => {
                if let Some(u) = e.get("usage") {
                    counted = true;
                    cost.input_tokens += count(u.get("input_tokens"));
                    cost.output_tokens += count(u.get("output_tokens"));
                }
            }
            "turn.failed" | "error" => {
                let why = e
                    .pointer("/error/message")
                    .or_else(|| e.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("the agent reported an error");
                report.error = Some(why.to_string());
            }
            _ => {}
        }
    }
    report.cost = counted.then_some(cost);
    Some(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_codes_json_result_gives_the_message_and_the_cost() {
        let out = r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":2100,"num_turns":3,
            "result":"Fixed the typo in docs/a.md.","session_id":"x","total_cost_usd":0.0123,
            "usage":{"input_tokens":10,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000,"output_tokens":42}}"#;
        let r = read(&out.replace('\n', ""));
        assert_eq!(r.message, "Fixed the typo in docs/a.md.");
        assert_eq!(r.cost, Some(Cost { usd: 0.0123, input_tokens: 1110, output_tokens: 42, calls: 1 }));
        assert_eq!(r.error, None);
        let failed = read(r#"{"type":"result","subtype":"error_max_turns","is_error":true,"result":"ran out"}"#);
        assert_eq!(failed.error.as_deref(), Some("ran out"));
    }

    #[test]
    fn codex_events_give_the_last_agent_message_and_summed_usage() {
        let out = [
            r#"{"type":"thread.started","thread_id":"t"}"#,
            r#"{"type":"turn.started"}"#,
            r#"{"type":"item.completed","item":{"id":"item_0","type":"reasoning","text":"thinking"}}"#,
            r#"{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"Edited docs/a.md."}}"#,
            r#"{"type":"turn.completed","usage":{"input_tokens":120,"cached_input_tokens":100,"output_tokens":30}}"#,
        ]
        .join("\n");
        let r = read(&out);
        assert_eq!(r.message, "Edited docs/a.md.");
        assert_eq!(r.cost, Some(Cost { usd: 0.0, input_tokens: 120, output_tokens: 30, calls: 1 }));
    }

    #[test]
    fn plain_text_is_the_message_and_reports_no_usage() {
        let r = read("Applied edit to docs/a.md\nCommit 1a2b3c docs: fix typo\n");
        assert_eq!(r.message, "Applied edit to docs/a.md\nCommit 1a2b3c docs: fix typo");
        assert_eq!(r.cost, None);
        let long = "x".repeat(MAX_MESSAGE * 2) + "END";
        let r = read(&long);
        assert!(r.message.ends_with("END") && r.message.len() <= MAX_MESSAGE + 3);
        // JSON that is not a known result is text too.
        assert_eq!(read(r#"{"answer": 42}"#).message, r#"{"answer": 42}"#);
    }
}

//! The two wire protocols a model provider speaks, behind one call:
//!
//! - `openai`: `POST {url}/chat/completions` (the URL names the `/v1`
//!   base), streamed as server-sent events (`data: {chunk}` lines, ending
//!   with `data: [DONE]`), with `stream_options.include_usage` so the last
//!   chunk carries the token usage, and `response_format` of type
//!   `json_schema` (a server that refuses it is asked again without, and
//!   the schema then only lives in the prompt). `finish_reason` says
//!   whether the answer was cut off (`length`).
//! - `ollama`: `POST {url}/api/chat`, streamed as NDJSON frames
//!   (`{"message":{"content":…},"done":false}`, then a final frame with
//!   `done: true`, `done_reason`, `prompt_eval_count` and `eval_count`),
//!   with `format` set to the schema and `options.num_ctx` set explicitly
//!   (Ollama's small default silently truncates prompts). Errors come in
//!   two forms: an HTTP status with `{"error": "…"}` before any output, or
//!   a final `{"error": "…"}` frame mid-stream.
//!
//! Both report progress (tokens so far) through a callback, and stop at
//! the deadline or on cancellation with the tokens counted so far.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::http::{self, HttpError};
use crate::propose::provider::Cancel;
use crate::rails::Endpoint;

/// Which protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    OpenAi,
    Ollama,
}

/// One chat call.
pub struct Call<'a> {
    /// (role, content): `system`, `user`, `assistant`.
    pub messages: &'a [(&'static str, String)],
    /// The JSON schema the answer must follow.
    pub schema: &'a Value,
    pub max_tokens: u32,
}

/// Why the model stopped.
#[derive(Clone, Debug, PartialEq)]
pub enum Finish {
    Stop,
    /// Cut off at `max_tokens`.
    Length,
    Other(String),
}

/// A finished answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub text: String,
    pub finish: Finish,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Why a call gave no answer, with the tokens it used before it stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct CallError {
    pub kind: CallErrorKind,
    pub message: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallErrorKind {
    /// Not reachable, refused, or the server failed.
    Unavailable,
    Timeout,
    Cancelled,
    /// The stream itself was malformed.
    Invalid,
}

impl CallError {
    fn new(kind: CallErrorKind, message: impl Into<String>) -> CallError {
        CallError { kind, message: message.into(), input_tokens: 0, output_tokens: 0 }
    }
}

/// Server error text, cut short and without control characters.
pub fn clean(text: &str) -> String {
    let t: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let t = t.trim();
    match t.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_string(),
    }
}

/// The `{"error": …}` message of a body, if it has one (OpenAI nests it).
fn error_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    match &v["error"] {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("message").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn from_http(e: HttpError, url: &str) -> CallError {
    use CallErrorKind::*;
    match e {
        HttpError::Connect(m) => CallError::new(Unavailable, m),
        HttpError::Timeout => CallError::new(Timeout, "the deadline passed"),
        HttpError::Cancelled => CallError::new(Cancelled, "cancelled"),
        HttpError::Broken(m) => CallError::new(Unavailable, m),
        HttpError::Status { status, body } => {
            let why = error_message(&body).unwrap_or_else(|| body.clone());
            CallError::new(Unavailable, format!("{url} answered HTTP {status}: {}", clean(&why)))
        }
    }
}

/// The request body.
pub fn body(wire: Wire, endpoint: &Endpoint, call: &Call<'_>, with_schema: bool) -> Value {
    let messages: Vec<Value> =
        call.messages.iter().map(|(role, content)| json!({"role": role, "content": content})).collect();
    match wire {
        Wire::OpenAi => {
            let mut b = json!({
                "model": endpoint.model,
                "messages": messages,
                "stream": true,
                "stream_options": {"include_usage": true},
                "max_tokens": call.max_tokens,
                "temperature": 0.2,
            });
            if with_schema {
                b["response_format"] = json!({
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "strict": true, "schema": call.schema},
                });
            }
            b
        }
        Wire::Ollama => json!({
            "model": endpoint.model,
            "messages": messages,
            "stream": true,
            "format": call.schema,
            "options": {"num_ctx": endpoint.num_ctx, "num_predict": call.max_tokens, "temperature": 0.2},
        }),
    }
}

/// The endpoint's chat URL.
pub fn chat_url(wire: Wire, endpoint: &Endpoint) -> String {
    let base = endpoint.url.trim_end_matches('/');
    match wire {
        Wire::OpenAi => format!("{base}/chat/completions"),
        Wire::Ollama => format!("{base}/api/chat"),
    }
}

/// Makes one streamed call. `progress(tokens so far, elapsed)` is called as
/// output arrives.
pub fn call(
    wire: Wire,
    endpoint: &Endpoint,
    call: &Call<'_>,
    deadline: Instant,
    cancel: &Cancel,
    progress: &mut dyn FnMut(u64, Duration),
) -> Result<Reply, CallError> {
    let key = endpoint.api_key_env.as_ref().and_then(|v| std::env::var(v).ok()).filter(|k| !k.trim().is_empty());
    let url = chat_url(wire, endpoint);
    let started = Instant::now();
    let mut lines = match http::post_lines(&url, &body(wire, endpoint, call, true), key.clone(), deadline, cancel) {
        Ok(l) => l,
        Err(e) => return Err(from_http(e, &url)),
    };
    // A server that refuses the json_schema response format is asked once
    // more without it (the schema is in the prompt too).
    let first = lines.next_line();
    let (mut lines, first) = match first {
        Err(HttpError::Status { status, body })
            if wire == Wire::OpenAi && (400..500).contains(&status) && mentions_format(&body) =>
        {
            let mut l = http::post_lines(&url, &body_without_schema(wire, endpoint, call), key, deadline, cancel)
                .map_err(|e| from_http(e, &url))?;
            let f = l.next_line();
            (l, f)
        }
        other => (lines, other),
    };
    let mut state = Stream::default();
    let mut next = first;
    loop {
        let line = match next {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                let mut err = from_http(e, &url);
                if state.saw_output && err.kind == CallErrorKind::Unavailable {
                    err.message = format!("the stream broke mid-answer: {}", err.message);
                }
                err.input_tokens = state.input_tokens;
                err.output_tokens = state.output_tokens.max(state.chunks);
                return Err(err);
            }
        };
        let more = match wire {
            Wire::OpenAi => state.sse(&line),
            Wire::Ollama => state.ndjson(&line),
        };
        match more {
            Ok(true) => {}
            Ok(false) => break,
            Err(message) => {
                return Err(CallError {
                    kind: CallErrorKind::Unavailable,
                    message,
                    input_tokens: state.input_tokens,
                    output_tokens: state.output_tokens.max(state.chunks),
                });
            }
        }
        if state.saw_output {
            progress(state.chunks, started.elapsed());
        }
        next = lines.next_line();
    }
    let Some(finish) = state.finish.clone() else {
        return Err(CallError {
            kind: CallErrorKind::Unavailable,
            message: "the stream ended before the answer was finished".into(),
            input_tokens: state.input_tokens,
            output_tokens: state.chunks,
        });
    };
    Ok(Reply {
        text: state.text,
        finish,
        input_tokens: state.input_tokens,
        output_tokens: if state.output_tokens > 0 { state.output_tokens } else { state.chunks },
    })
}

fn mentions_format(body: &str) -> bool {
    let b = body.to_ascii_lowercase();
    b.contains("response_format") || b.contains("json_schema")
}

fn body_without_schema(wire: Wire, endpoint: &Endpoint, call: &Call<'_>) -> Value {
    body(wire, endpoint, call, false)
}

/// What the stream said so far.
#[derive(Default)]
struct Stream {
    text: String,
    finish: Option<Finish>,
    input_tokens: u64,
    output_tokens: u64,
    /// Content chunks received (about one token each).
    chunks: u64,
    saw_output: bool,
    done: bool,
}

fn finish_of(reason: &str) -> Finish {
    match reason {
        "stop" | "eos" | "end_turn" => Finish::Stop,
        "length" | "max_tokens" => Finish::Length,
        other => Finish::Other(other.to_string()),
    }
}

impl Stream {
    /// One SSE line; `Ok(false)` at `data: [DONE]`.
    fn sse(&mut self, line: &str) -> Result<bool, String> {
        let Some(data) = line.strip_prefix("data:") else {
            return Ok(true); // event names, ids, comments and blank separators
        };
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(false);
        }
        let v: Value = serde_json::from_str(data).map_err(|e| format!("a stream event is not JSON ({e})"))?;
        if let Some(m) = error_message(data) {
            return Err(format!("the server failed mid-answer: {}", clean(&m)));
        }
        if let Some(choice) = v["choices"].as_array().and_then(|c| c.first()) {
            if let Some(piece) = choice["delta"]["content"].as_str() {
                if !piece.is_empty() {
                    self.text.push_str(piece);
                    self.chunks += 1;
                    self.saw_output = true;
                }
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                self.finish = Some(finish_of(reason));
            }
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.input_tokens = u["prompt_tokens"].as_u64().unwrap_or(self.input_tokens);
            self.output_tokens = u["completion_tokens"].as_u64().unwrap_or(self.output_tokens);
        }
        Ok(true)
    }

    /// One NDJSON frame; `Ok(false)` after the `done` frame.
    fn ndjson(&mut self, line: &str) -> Result<bool, String> {
        if line.trim().is_empty() {
            return Ok(true);
        }
        let v: Value = serde_json::from_str(line).map_err(|e| format!("a stream frame is not JSON ({e})"))?;
        if let Some(m) = v.get("error") {
            let m = m.as_str().map(str::to_string).unwrap_or_else(|| m.to_string());
            return Err(format!("the server failed mid-answer: {}", clean(&m)));
        }
        if let Some(piece) = v["message"]["content"].as_str() {
            if !piece.is_empty() {
                self.text.push_str(piece);
                self.chunks += 1;
                self.saw_output = true;
            }
        }
        if v["done"].as_bool() == Some(true) {
            self.done = true;
            self.finish = Some(finish_of(v["done_reason"].as_str().unwrap_or("stop")));
            self.input_tokens = v["prompt_eval_count"].as_u64().unwrap_or(0);
            self.output_tokens = v["eval_count"].as_u64().unwrap_or(0);
            return Ok(false);
        }
        Ok(true)
    }
}

/// The context window the server reports for the model (llama.cpp's
/// `/v1/models` carries `meta.n_ctx`), if it says.
pub fn served_context_window(endpoint: &Endpoint) -> Option<u32> {
    let url = format!("{}/models", endpoint.url.trim_end_matches('/'));
    let key = endpoint.api_key_env.as_ref().and_then(|v| std::env::var(v).ok());
    let v = http::get_json(&url, key.as_deref(), Duration::from_secs(2)).ok()?;
    let models = v["data"].as_array()?;
    let m = models.iter().find(|m| m["id"].as_str() == Some(endpoint.model.as_str())).or(models.first())?;
    m["meta"]["n_ctx"].as_u64().and_then(|n| u32::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_chunks_accumulate_and_usage_arrives_last() {
        let mut s = Stream::default();
        for l in [
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}",
            "",
            ": a comment",
            "data: {\"choices\":[{\"delta\":{\"content\":\"{\\\"a\\\"\"}}]}",
            "data: {\"choices\":[{\"delta\":{\"content\":\":1}\"},\"finish_reason\":\"length\"}]}",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":5}}",
        ] {
            assert_eq!(s.sse(l), Ok(true));
        }
        assert_eq!(s.sse("data: [DONE]"), Ok(false));
        assert_eq!(
            (s.text.as_str(), s.finish.clone(), s.input_tokens, s.output_tokens),
            ("{\"a\":1}", Some(Finish::Length), 30, 5)
        );
        let mut s = Stream::default();
        assert!(s.sse("data: {\"error\":{\"message\":\"boom\"}}").unwrap_err().contains("boom"));
        assert!(s.sse("data: {not json").is_err());
    }

    #[test]
    fn ndjson_frames_end_with_done_and_errors_come_mid_stream() {
        let mut s = Stream::default();
        assert_eq!(s.ndjson(r#"{"model":"m","message":{"role":"assistant","content":"hi"},"done":false}"#), Ok(true));
        assert_eq!(
            s.ndjson(r#"{"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":26,"eval_count":2}"#),
            Ok(false)
        );
        assert_eq!(
            (s.text.as_str(), s.finish.clone(), s.input_tokens, s.output_tokens),
            ("hi", Some(Finish::Stop), 26, 2)
        );
        let mut s = Stream::default();
        assert!(
            s.ndjson(r#"{"error":"an error was encountered while running the model"}"#)
                .unwrap_err()
                .contains("running the model")
        );
    }

    #[test]
    fn error_bodies_are_read_in_both_shapes() {
        assert_eq!(error_message(r#"{"error":"model 'x' not found"}"#).as_deref(), Some("model 'x' not found"));
        assert_eq!(error_message(r#"{"error":{"message":"bad key","type":"auth"}}"#).as_deref(), Some("bad key"));
        assert_eq!(clean("a\u{1b}[2Jb"), "a [2Jb");
    }
}

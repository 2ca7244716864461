//! A stub of Ollama's `POST /api/chat`, written from Ollama's API
//! documentation (Ollama itself cannot be installed here):
//!
//! - the request is JSON: `model`, `messages`, `stream` (default true),
//!   `format` (a JSON schema), `options` (`num_ctx`, `num_predict`, ...);
//! - a streamed answer is NDJSON (`Content-Type: application/x-ndjson`,
//!   chunked): frames `{"model","created_at","message":{"role":"assistant",
//!   "content":"…"},"done":false}`, then one final frame with `"done":true`,
//!   `done_reason` (`stop` or `length`), `total_duration`,
//!   `load_duration`, `prompt_eval_count`, `prompt_eval_duration`,
//!   `eval_count` and `eval_duration`;
//! - an error before any output is an HTTP status with `{"error":"…"}`
//!   (404 for a model that is not pulled); an error after output started is
//!   a final `{"error":"…"}` frame.
//!
//! The stub answers like a careful model: asked to proofread (a schema
//! with `corrected`), it writes the passage out with "teh" corrected;
//! asked to confirm a correction (a schema with `correct`), it picks the
//! word that is not "teh"; asked to rewrite a span, it picks the offered
//! span whose text holds "teh" and answers with that span fixed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// How the stub answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Script {
    /// Fix the typo.
    Fix,
    /// 404 `{"error": "model … not found"}` before any output.
    NotFound,
    /// Some output, then a final `{"error": …}` frame.
    MidStreamError,
    /// Always `done_reason: "length"`.
    CutOff,
}

pub struct Stub {
    pub url: String,
    /// Every request body received.
    pub requests: Arc<Mutex<Vec<Value>>>,
    script: Arc<Mutex<Script>>,
    /// What the stub answers as a critic: `attest` or `object`.
    pub verdict: Arc<Mutex<String>>,
}

impl Stub {
    pub fn start(script: Script) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stub");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script));
        let verdict = Arc::new(Mutex::new("attest".to_string()));
        let (r, s, v) = (requests.clone(), script.clone(), verdict.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (r, s, v) = (r.clone(), s.clone(), v.clone());
                std::thread::spawn(move || {
                    let verdict = v.lock().unwrap().clone();
                    let _ = serve(conn, &r, *s.lock().unwrap(), &verdict);
                });
            }
        });
        Stub { url, requests, script, verdict }
    }

    pub fn set(&self, script: Script) {
        *self.script.lock().unwrap() = script;
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

fn serve(mut conn: TcpStream, requests: &Mutex<Vec<Value>>, script: Script, verdict: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if line.trim().is_empty() {
        return Ok(()); // an availability probe that only connected
    }
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        if h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    if !line.starts_with("POST /api/chat ") {
        return respond(&mut conn, 404, "application/json", &json!({"error": "404 page not found"}).to_string());
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    requests.lock().unwrap().push(request.clone());
    let model = request["model"].as_str().unwrap_or("").to_string();
    if script == Script::NotFound {
        let e = json!({"error": format!("model '{model}' not found, try pulling it first")});
        return respond(&mut conn, 404, "application/json", &e.to_string());
    }
    let answer = match request["format"]["properties"]["verdict"].is_object() {
        // Asked as a critic: bound to the packet it was shown.
        true => json!({"packet": request["format"]["properties"]["packet"]["enum"][0], "verdict": verdict,
                       "reason": format!("the stub critic says {verdict}")})
        .to_string(),
        false => fix_answer(&request),
    };
    let pieces: Vec<String> = answer.chars().collect::<Vec<_>>().chunks(8).map(|c| c.iter().collect()).collect();
    write!(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n")?;
    let frame = |conn: &mut TcpStream, v: Value| -> std::io::Result<()> {
        let data = format!("{v}\n");
        write!(conn, "{:x}\r\n{data}\r\n", data.len())
    };
    let created = "2026-11-21T19:00:00.000000Z";
    for (i, p) in pieces.iter().enumerate() {
        if script == Script::MidStreamError && i == 2 {
            frame(&mut conn, json!({"error": "an error was encountered while running the model: unexpected EOF"}))?;
            return write!(conn, "0\r\n\r\n");
        }
        frame(
            &mut conn,
            json!({"model": model, "created_at": created, "message": {"role": "assistant", "content": p}, "done": false}),
        )?;
    }
    let reason = if script == Script::CutOff { "length" } else { "stop" };
    frame(
        &mut conn,
        json!({"model": model, "created_at": created, "message": {"role": "assistant", "content": ""}, "done": true,
               "done_reason": reason, "total_duration": 5_000_000u64, "load_duration": 1_000_000u64,
               "prompt_eval_count": 321, "prompt_eval_duration": 1_000_000u64,
               "eval_count": pieces.len(), "eval_duration": 3_000_000u64}),
    )?;
    write!(conn, "0\r\n\r\n")
}

fn respond(conn: &mut TcpStream, status: u16, kind: &str, body: &str) -> std::io::Result<()> {
    let reason = if status == 404 { "Not Found" } else { "OK" };
    write!(conn, "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

/// The answer of a careful model: "teh" corrected.
fn fix_answer(request: &Value) -> String {
    let props = &request["format"]["properties"];
    let last_user = request["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    if props["corrected"].is_object() {
        // Proofreading: the passage written out again, "teh" corrected.
        let passage = last_user.split("Passage:\n").nth(1).unwrap_or("");
        let passage = passage.split("\n\nAnswer with").next().unwrap_or("");
        return json!({"corrected": passage.replace("teh", "the")}).to_string();
    }
    if props["correct"].is_object() {
        // Confirming: the word that is not the typo, whichever order it comes in.
        let options = props["correct"]["enum"].as_array().cloned().unwrap_or_default();
        let pick = options.iter().find(|o| o.as_str() != Some("teh")).cloned().unwrap_or(Value::Null);
        return json!({"correct": pick}).to_string();
    }
    let offered: Vec<&str> = request["format"]["properties"]["span"]["enum"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let user = request["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .map(|m| m["content"].as_str().unwrap_or(""))
        .unwrap_or("");
    let first_user = request["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["role"] == "user"))
        .map(|m| m["content"].as_str().unwrap_or(""))
        .unwrap_or(user);
    for id in offered {
        let marker = format!("⟦{id}⟧\n");
        let Some(at) = first_user.find(&marker) else { continue };
        let rest = &first_user[at + marker.len()..];
        let text = rest.split('⟦').next().unwrap_or("").trim_end_matches('\n');
        if text.contains("teh") {
            return json!({"span": id, "text": text.replace("teh", "the"), "rationale": "fix the typo teh"})
                .to_string();
        }
    }
    json!({"span": "NONE", "text": "", "rationale": "nothing to fix"}).to_string()
}

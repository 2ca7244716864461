//! `command`: a program that reads the context JSON on stdin and writes a
//! proposal JSON on stdout. This is how the operator's own agent (`self`)
//! and any agent CLI plug in.
//!
//! The answer is a JSON document. Chat models like to wrap it, so two
//! wrappings are accepted when they leave no doubt ([`extract_json`]): the
//! JSON in one Markdown code fence, or one JSON object amid prose. Either is
//! recorded in the step entry (`"extracted": "fenced"` or `"embedded"`);
//! anything else — two fences, two objects, no object — stays
//! `invalid_output`.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Answer, Failure, Provider, Surroundings, ended_ok, interpret, stderr_tail};
use crate::process::run_captured;
use crate::propose::context::Context;
use crate::sandbox::{Enforced, SandboxError};

/// Answers larger than this are refused.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

pub struct Command {
    name: String,
    argv: Vec<String>,
    timeout_s: u64,
    /// Whether the process may use the network (`network = true`).
    network: bool,
    /// Environment variables passed through by name (`env = [...]`).
    env: Vec<String>,
    extracted: Cell<Option<Extracted>>,
    ran_under: RefCell<Option<Enforced>>,
}

/// Where a proposal was found in an answer that was not bare JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extracted {
    /// In the one Markdown code fence of the answer.
    Fenced,
    /// The one JSON object amid prose.
    Embedded,
}

/// The most `{` at which an embedded object is looked for (each try parses
/// from there, so this bounds the work on a hostile answer).
const MAX_OBJECT_STARTS: usize = 256;

/// The JSON document in `text`: the whole text, else the content of its one
/// Markdown code fence, else its one JSON object amid prose. Parsed
/// strictly (a key given twice is refused). `Err` says why none was found.
pub fn extract_json(text: &str) -> Result<(Value, Option<Extracted>), String> {
    let text = text.trim();
    let whole = match crate::canonical::strict::from_str(text) {
        Ok(v) => return Ok((v, None)),
        Err(e) => e.to_string(),
    };
    let fences = fenced_blocks(text);
    match fences.as_slice() {
        [] => {}
        [one] => {
            return crate::canonical::strict::from_str(one.trim())
                .map(|v| (v, Some(Extracted::Fenced)))
                .map_err(|e| format!("the one code fence does not hold JSON ({e})"));
        }
        many => return Err(format!("{} code fences, so which one is the answer is ambiguous", many.len())),
    }
    // Objects amid prose: each `{` that starts a JSON object, outside the
    // objects already found.
    let mut found: Vec<&str> = Vec::new();
    let (mut at, mut tries) = (0, 0);
    while let Some(i) = text[at..].find('{').map(|i| at + i) {
        tries += 1;
        if tries > MAX_OBJECT_STARTS {
            return Err(format!("more than {MAX_OBJECT_STARTS} braces without one clear JSON object"));
        }
        let mut stream = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(Value::Object(_))) => {
                let end = i + stream.byte_offset();
                found.push(&text[i..end]);
                at = end;
            }
            _ => at = i + 1,
        }
    }
    match found.as_slice() {
        [one] => crate::canonical::strict::from_str(one)
            .map(|v| (v, Some(Extracted::Embedded)))
            .map_err(|e| format!("the JSON object in the answer is not valid ({e})")),
        [] => Err(format!("the answer is not JSON ({whole}) and holds no JSON object")),
        many => Err(format!("the answer holds {} JSON objects, so which one is the proposal is ambiguous", many.len())),
    }
}

/// The contents of the Markdown code fences (```` ``` ```` or `~~~`, any
/// info string) in `text`; an unclosed fence runs to the end.
fn fenced_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut open: Option<(&str, String)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                for marker in ["```", "~~~"] {
                    if trimmed.starts_with(marker) {
                        open = Some((marker, String::new()));
                        break;
                    }
                }
            }
            Some((marker, body)) => {
                if trimmed.starts_with(*marker) && trimmed.trim_start_matches(*marker).trim().is_empty() {
                    blocks.push(std::mem::take(body));
                    open = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    if let Some((_, body)) = open {
        blocks.push(body);
    }
    blocks
}

impl Command {
    pub fn new(name: &str, argv: Vec<String>, timeout_s: u64, network: bool, env: Vec<String>) -> Command {
        Command {
            name: name.to_string(),
            argv,
            timeout_s,
            network,
            env,
            extracted: Cell::new(None),
            ran_under: RefCell::new(None),
        }
    }

    fn program(&self, env: &Surroundings) -> std::path::PathBuf {
        let program = &self.argv[0];
        if program.contains('/') { env.root.join(program) } else { program.into() }
    }
}

impl Provider for Command {
    fn name(&self) -> &str {
        &self.name
    }

    fn availability(&self, env: &Surroundings) -> Result<(), String> {
        match crate::process::find_program(&self.argv[0], &env.root) {
            Some(_) => Ok(()),
            None => Err(format!("{} is not an executable program", self.argv[0])),
        }
    }

    fn ran_under(&self) -> Option<Enforced> {
        self.ran_under.borrow().clone()
    }

    fn extracted(&self) -> Option<Extracted> {
        self.extracted.get()
    }

    fn propose(&self, context: &Context, env: &Surroundings) -> Result<Answer, Failure> {
        self.extracted.set(None);
        self.availability(env).map_err(|reason| Failure::Unavailable { reason })?;
        let mut cmd = std::process::Command::new(self.program(env));
        cmd.args(&self.argv[1..])
            .current_dir(&env.root)
            .env("RATCHET_STEP_ID", &env.step_id)
            .env("RATCHET_PROVIDER", &self.name);
        let input = serde_json::to_vec(context).expect("the context always serialises");
        // The process runs in the sandbox: the tree writable, the rest of
        // the workspace read-only or hidden, no network unless the rails say.
        let sandbox = |e: &SandboxError| {
            let hint = crate::error::Coded::hint(e).map(|h| format!(" (hint: {h})")).unwrap_or_default();
            let code = crate::error::Coded::code(e);
            Failure::Unavailable { reason: format!("cannot start {} in the sandbox: {code} {e}{hint}", self.argv[0]) }
        };
        *self.ran_under.borrow_mut() = None;
        let policy = env.sandbox.clone().network(self.network).env(self.env.iter().cloned());
        let mut confined = policy.confine(cmd).map_err(|e| sandbox(&e))?;
        let run = run_captured(&mut confined, &input, Duration::from_secs(self.timeout_s), MAX_ANSWER_BYTES);
        *self.ran_under.borrow_mut() = Some(confined.enforced().clone());
        let run = run.map_err(|e| match SandboxError::of(&e) {
            Some(inner) => sandbox(inner),
            None => Failure::Unavailable { reason: format!("cannot start {}: {e}", self.argv[0]) },
        })?;
        ended_ok(&self.argv[0], &run, self.timeout_s)?;
        if run.stdout_truncated {
            return Err(Failure::InvalidOutput {
                reason: format!("the answer is larger than {MAX_ANSWER_BYTES} bytes"),
            });
        }
        let text = String::from_utf8(run.stdout)
            .map_err(|_| Failure::InvalidOutput { reason: "the answer is not UTF-8".into() })?;
        if text.trim().is_empty() {
            return Err(Failure::InvalidOutput { reason: format!("empty answer{}", stderr_tail(&run.stderr)) });
        }
        // Strictly: a key given twice is refused, so that no two readers of
        // this answer can see two different patches.
        let (value, extracted) = extract_json(&text).map_err(|e| {
            let start: String = text.trim().chars().take(60).collect();
            Failure::InvalidOutput { reason: format!("{e}: {start:?}") }
        })?;
        self.extracted.set(extracted);
        interpret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> (Value, Option<Extracted>) {
        extract_json(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn bare_fenced_and_embedded_json_are_found() {
        let p = r#"{"rationale":"r","patch":{"op":"append","path":"a.md","content":"x"}}"#;
        assert_eq!(ok(p).1, None);
        let (v, how) = ok(&format!("Here is my proposal:\n\n```json\n{p}\n```\n\nHope it helps."));
        assert_eq!((v["rationale"].as_str(), how), (Some("r"), Some(Extracted::Fenced)));
        assert_eq!(ok(&format!("~~~\n{p}\n~~~")).1, Some(Extracted::Fenced));
        let (v, how) = ok(&format!("Sure! {p} Let me know if {{you}} want more."));
        assert_eq!((v["patch"]["op"].as_str(), how), (Some("append"), Some(Extracted::Embedded)));
    }

    #[test]
    fn anything_ambiguous_stays_invalid() {
        let p = r#"{"rationale":"r","patch":{"op":"append","path":"a.md","content":"x"}}"#;
        let q = r#"{"rationale":"s","patch":{"op":"append","path":"b.md","content":"y"}}"#;
        for (text, why) in [
            (format!("```json\n{p}\n```\nor\n```json\n{q}\n```"), "2 code fences"),
            (format!("Either {p} or {q}."), "2 JSON objects"),
            ("I could not decide.".to_string(), "holds no JSON object"),
            ("```\nnot json\n```".to_string(), "does not hold JSON"),
            (format!("Here: {}", r#"{"a":1,"a":2}"#), "not valid"),
            ("{".repeat(10_000), "braces"),
        ] {
            let e = extract_json(&text).unwrap_err();
            assert!(e.contains(why), "{text:.60}: {e}");
        }
    }
}

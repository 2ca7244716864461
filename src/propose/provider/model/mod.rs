//! The model kinds, `ollama` and `openai` (DESIGN §6): a prompt built for
//! weak local models, a streamed call, and checks before proposing.
//!
//! One step asks the model at most three times:
//!
//! 1. the first answer;
//! 2. when it was **cut off** (`finish_reason`/`done_reason` = `length`),
//!    once more with twice the room — cut off again, it is an honest noop;
//! 3. when it was **refused** here (not the JSON asked for, a span not on
//!    offer, no change, a path other than the one shown, a code fence or
//!    directive in a prose task, or a change Gate 1's quality rules would
//!    refuse), once more with the reason — refused again, it is an honest
//!    noop (or `invalid_output` when it was never JSON at all).
//!
//! Every try counts in the step's `cost` (calls, tokens, and USD from the
//! rails' prices when the endpoint is paid; a local endpoint is free).
//! Before each try the remaining allowance is checked: a paid provider
//! never goes past its daily caps, even within a step.
//!
//! A **prose task** (docs, typos, links: [`prompt::is_prose_task`]) is
//! proofreading instead ([`proofread`]): one passage of the docs a step
//! ([`passage`], rotating through them by the log's record of passages
//! shown), written out corrected by the model (a cut-off or non-JSON answer
//! retried once, as above), then word-sized corrections kept, vetted and
//! confirmed by the model, two calls a word.
//!
//! Modules: [`http`] (a streamed POST with a deadline and cancellation),
//! [`wire`] (the OpenAI-compatible and Ollama protocols), [`prompt`] (what
//! the model sees), [`edit`] (from an answer to an exact patch),
//! [`passage`] and [`proofread`] (prose tasks), [`trace`]
//! (`RATCHET_MODEL_TRACE`: prompts and answers to a file outside the
//! repository).

pub mod critic;
pub mod edit;
pub mod http;
pub mod passage;
pub mod prompt;
pub mod proofread;
pub mod trace;
pub mod wire;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Answer, Failure, Generation, Provider, Surroundings};
use crate::propose::context::Context;
use crate::rails::{Endpoint, PatternSet};
use crate::record::Cost;
use edit::Built;
use prompt::Window;
pub use wire::Wire;

/// A model provider.
pub struct Model {
    name: String,
    wire: Wire,
    endpoint: Endpoint,
    timeout_s: u64,
    spent: RefCell<Cost>,
    target: RefCell<Option<String>>,
    passage: RefCell<Option<crate::record::Passage>>,
}

impl Model {
    pub fn new(name: &str, wire: Wire, endpoint: Endpoint, timeout_s: u64) -> Model {
        Model {
            name: name.to_string(),
            wire,
            endpoint,
            timeout_s,
            spent: RefCell::new(Cost::default()),
            target: RefCell::new(None),
            passage: RefCell::new(None),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The USD a call with these tokens costs (0 on a free endpoint).
    pub fn usd(&self, input: u64, output: u64) -> f64 {
        match (&self.endpoint.caps, self.endpoint.paid) {
            (Some(c), true) => {
                input as f64 / 1000.0 * c.usd_per_1k_input + output as f64 / 1000.0 * c.usd_per_1k_output
            }
            _ => 0.0,
        }
    }

    fn charge(&self, input: u64, output: u64) {
        let mut c = self.spent.borrow_mut();
        c.calls += 1;
        c.input_tokens += input;
        c.output_tokens += output;
        c.usd = crate::score::round(c.usd + self.usd(input, output));
    }

    /// Why another call of `prompt_tokens` in and up to `max_tokens` out
    /// would break the allowance, or `None`.
    fn over_allowance(&self, env: &Surroundings, prompt_tokens: u64, max_tokens: u32) -> Option<String> {
        let a = env.allowance.as_ref()?;
        let spent = self.spent.borrow();
        if let Some(calls) = a.calls {
            if spent.calls >= calls {
                return Some(format!("the call cap leaves {calls} call(s) today, all used"));
            }
        }
        if let Some(usd) = a.usd {
            let worst = self.usd(prompt_tokens, max_tokens as u64);
            if spent.usd + worst > usd + 1e-12 {
                return Some(format!("the USD cap leaves ${usd:.4} today; this call could cost ${worst:.4}"));
            }
        }
        None
    }

    /// One streamed call with the progress hook.
    pub fn ask(
        &self,
        messages: &[(&'static str, String)],
        schema: &serde_json::Value,
        max_tokens: u32,
        env: &Surroundings,
        hooks: &mut dyn Generation,
    ) -> Result<wire::Reply, wire::CallError> {
        let trace = trace::target(&env.root).map_err(|message| wire::CallError {
            kind: wire::CallErrorKind::Unavailable,
            message,
            input_tokens: 0,
            output_tokens: 0,
        })?;
        let deadline = Instant::now() + Duration::from_secs(self.timeout_s);
        let call = wire::Call { messages, schema, max_tokens };
        let name = self.name.clone();
        let mut progress = |tokens: u64, elapsed: Duration| hooks.generating(&name, tokens, elapsed);
        let r = wire::call(self.wire, &self.endpoint, &call, deadline, &env.cancel, &mut progress);
        hooks.generated(&self.name);
        match &r {
            Ok(reply) => self.charge(reply.input_tokens, reply.output_tokens),
            Err(e) => self.charge(e.input_tokens, e.output_tokens),
        }
        if let Some(file) = trace {
            let answer = match &r {
                Ok(reply) => json!({
                    "text": reply.text,
                    "finish": format!("{:?}", reply.finish),
                    "input_tokens": reply.input_tokens,
                    "output_tokens": reply.output_tokens,
                }),
                Err(e) => json!({"error": e.message, "kind": format!("{:?}", e.kind)}),
            };
            let record = json!({
                "step": env.step_id,
                "provider": self.name,
                "messages": messages.iter().map(|(role, content)| json!({"role": role, "content": content})).collect::<Vec<_>>(),
                "schema": schema,
                "max_tokens": max_tokens,
                "answer": answer,
            });
            trace::append(&file, &record).map_err(|message| wire::CallError {
                kind: wire::CallErrorKind::Unavailable,
                message,
                input_tokens: 0,
                output_tokens: 0,
            })?;
        }
        r
    }

    fn failure(&self, e: wire::CallError) -> Failure {
        use wire::CallErrorKind::*;
        match e.kind {
            Timeout => Failure::Timeout { secs: self.timeout_s },
            Cancelled => Failure::Cancelled,
            Unavailable => Failure::Unavailable { reason: e.message },
            Invalid => Failure::InvalidOutput { reason: e.message },
        }
    }
}

/// The files a model may work on, in path order: within the provider's
/// tier, not assets, text of at most 256 KiB, prose only for a prose task.
fn candidates(context: &Context, env: &Surroundings, prose_task: bool) -> Vec<(String, String)> {
    let Ok(tier) = PatternSet::new(&context.rails.tier_paths, false) else { return Vec::new() };
    let mut out = Vec::new();
    for f in &context.files {
        let path = &f.path;
        if !tier.is_match(path) || crate::assets::by_name(path).is_some() {
            continue;
        }
        if prose_task && !prompt::is_prose_file(path) {
            continue;
        }
        let Ok(t) = crate::patch::Target::open(&env.root, path) else { continue };
        let Some(bytes) = t.current() else { continue };
        if bytes.len() > 256 * 1024 || crate::assets::is_asset(path, bytes) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(bytes) else { continue };
        if text.trim().is_empty() {
            continue;
        }
        out.push((path.clone(), text.to_string()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The target file for the focus: `(path, text, visits)`.
fn target(
    context: &Context,
    env: &Surroundings,
    prose_task: bool,
    words: &[String],
) -> Option<(String, String, usize)> {
    let mut best: Option<(i64, usize, String, String)> = None;
    for (path, text) in candidates(context, env, prose_task) {
        let path = &path;
        let text = text.as_str();
        let visits = context.recent.iter().filter(|c| c.path.as_deref() == Some(path)).count();
        let score = prompt::hits(text, words) as i64 + 2 * prompt::hits(path, words) as i64 - 2 * visits as i64;
        // Best score; then fewer visits; then path order (files are sorted).
        if best.as_ref().is_none_or(|b| score > b.0 || score == b.0 && visits < b.1) {
            best = Some((score, visits, path.clone(), text.to_string()));
        }
    }
    best.map(|(_, visits, path, text)| (path, text, visits))
}

/// The messages of a first ask.
fn first_messages(context: &Context, window: &Window) -> Vec<(&'static str, String)> {
    vec![
        ("system", prompt::SYSTEM.to_string()),
        ("user", format!("{}{}\nAnswer with the JSON object.", prompt::preamble(context), window.render())),
    ]
}

impl Provider for Model {
    fn name(&self) -> &str {
        &self.name
    }

    fn availability(&self, _env: &Surroundings) -> Result<(), String> {
        if let Some(var) = &self.endpoint.api_key_env {
            if std::env::var(var).map_or(true, |k| k.trim().is_empty()) && self.endpoint.paid {
                return Err(format!("${var} holds no API key"));
            }
        }
        http::reachable(&self.endpoint.url, Duration::from_millis(500))
    }

    fn propose(&self, context: &Context, env: &Surroundings) -> Result<Answer, Failure> {
        self.propose_with(context, env, &mut super::Silent)
    }

    fn spent(&self) -> Cost {
        self.spent.borrow().clone()
    }

    fn target(&self) -> Option<String> {
        self.target.borrow().clone()
    }

    fn passage(&self) -> Option<crate::record::Passage> {
        self.passage.borrow().clone()
    }

    fn propose_with(
        &self,
        context: &Context,
        env: &Surroundings,
        hooks: &mut dyn Generation,
    ) -> Result<Answer, Failure> {
        *self.spent.borrow_mut() = Cost::default();
        *self.target.borrow_mut() = None;
        *self.passage.borrow_mut() = None;
        self.availability(env).map_err(|reason| Failure::Unavailable { reason })?;
        let prose_task = prompt::is_prose_task(context);
        if prose_task {
            return self.proofread(context, env, hooks);
        }
        let words = prompt::focus_words(context);
        let Some((path, text, visits)) = target(context, env, prose_task, &words) else {
            return Ok(Answer::Noop { reason: "no file within the provider's tier to work on".into() });
        };
        *self.target.borrow_mut() = Some(path.clone());
        // The window gets what the budget leaves after the constant parts.
        let fixed = prompt::tokens(prompt::SYSTEM) + prompt::tokens(&prompt::preamble(context)) + 64;
        let budget_tokens = (self.endpoint.max_prompt_tokens as usize).saturating_sub(fixed).max(128);
        let window = Window::choose(&path, &text, &words, prose_task, budget_tokens * prompt::BYTES_PER_TOKEN, visits);
        if window.offered.is_empty() {
            return Ok(Answer::Noop {
                reason: format!("nothing in the shown part of {path} may be changed for this task"),
            });
        }
        let schema = prompt::schema(&window);
        let mut messages = first_messages(context, &window);
        let mut max_tokens = self.endpoint.max_output_tokens;
        let (mut cut_retried, mut reason_retried) = (false, false);
        loop {
            let prompt_tokens = messages.iter().map(|(_, m)| prompt::tokens(m)).sum::<usize>() as u64;
            if let Some(why) = self.over_allowance(env, prompt_tokens, max_tokens) {
                return if self.spent.borrow().calls == 0 {
                    Err(Failure::OverBudget { reason: why })
                } else {
                    Ok(Answer::Noop { reason: format!("stopped before another try: {why}") })
                };
            }
            let reply = self.ask(&messages, &schema, max_tokens, env, hooks).map_err(|e| self.failure(e))?;
            if reply.finish == wire::Finish::Length {
                if cut_retried {
                    return Ok(Answer::Noop { reason: format!("the answer was cut off at {max_tokens} tokens twice") });
                }
                cut_retried = true;
                max_tokens = max_tokens
                    .saturating_mul(2)
                    .min(self.endpoint.num_ctx.saturating_sub(prompt_tokens as u32).max(64));
                continue;
            }
            let refusal = match edit::parse(&reply.text) {
                Err(why) => why,
                Ok(answer) => match edit::build(&window, &answer) {
                    Built::Nothing { reason } => return Ok(Answer::Noop { reason }),
                    Built::Refused { reason } => reason,
                    Built::Patch { patch, rationale } => match self.quality(&window, &patch, context) {
                        Some(why) => why,
                        None => {
                            let rationale = if rationale.is_empty() {
                                format!("{} {}", patch.op().as_str(), path)
                            } else {
                                rationale
                            };
                            let value = json!({
                                "rationale": rationale,
                                "patch": patch.to_value(),
                                "next_steps": [],
                                "focus": context.focus.reference,
                            });
                            return Ok(Answer::Proposal { value, cost: self.spent() });
                        }
                    },
                },
            };
            if reason_retried {
                // Never JSON at all: the provider's output is invalid; else an honest noop.
                return if edit::parse(&reply.text).is_err() {
                    Err(Failure::InvalidOutput { reason: refusal })
                } else {
                    Ok(Answer::Noop { reason: format!("refused twice before proposing: {refusal}") })
                };
            }
            reason_retried = true;
            messages.push(("assistant", reply.text.clone()));
            messages
                .push(("user", format!("That answer cannot be used: {refusal}. Answer again with one JSON object.")));
        }
    }
}

impl Model {
    /// What Gate 1's quality rules would say, checked before proposing.
    fn quality(&self, window: &Window, patch: &crate::patch::Patch, context: &Context) -> Option<String> {
        let new = crate::patch::resolve(patch, Some(window.text.as_bytes())).ok()?;
        let results = crate::gate::quality::check(&window.path, Some(&window.text), &new, &context.intent.text);
        results.into_iter().find_map(|r| r.err()).map(|e| {
            let hint = crate::error::Coded::hint(&e).unwrap_or_default();
            format!("{} ({}): {hint}", e, crate::error::Coded::code(&e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paid_model() -> Model {
        let caps = crate::rails::Caps {
            max_usd_per_day: 1.0,
            max_calls_per_day: 10,
            usd_per_1k_input: 1.0,
            usd_per_1k_output: 2.0,
        };
        let endpoint = Endpoint {
            url: "https://api.example.com/v1".into(),
            model: "m".into(),
            api_key_env: None,
            num_ctx: 8192,
            max_prompt_tokens: 4096,
            max_output_tokens: 100,
            paid: true,
            caps: Some(caps),
        };
        Model::new("m", Wire::OpenAi, endpoint, 10)
    }

    fn env(calls: Option<u64>, usd: Option<f64>) -> Surroundings {
        Surroundings {
            root: ".".into(),
            interactive: false,
            patch_file: None,
            step_id: "s1".into(),
            cancel: Cancel::default(),
            allowance: Some(super::super::Allowance { calls, usd }),
            sandbox: crate::sandbox::Policy::new("."),
            workspace: None,
        }
    }

    use super::super::Cancel;

    #[test]
    fn a_call_that_could_pass_the_usd_cap_is_not_made() {
        let m = paid_model();
        // 500 tokens in ($0.50) and up to 100 out ($0.20): $0.70 worst case.
        assert_eq!(m.over_allowance(&env(None, Some(0.70)), 500, 100), None, "exactly at the allowance");
        assert!(m.over_allowance(&env(None, Some(0.69)), 500, 100).is_some(), "one cent short");
        m.charge(100, 10);
        assert_eq!(m.spent().usd, 0.12);
        assert!(m.over_allowance(&env(None, Some(0.70)), 500, 100).is_some(), "what this step spent counts");
        assert!(m.over_allowance(&env(Some(1), None), 10, 10).is_some(), "the one call left is used");
        assert_eq!(m.over_allowance(&env(Some(2), None), 10, 10), None);
    }
}

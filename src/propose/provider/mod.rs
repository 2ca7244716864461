//! Providers: what proposes a patch (DESIGN §6).
//!
//! One trait: given the context, return a proposal (its wire JSON, which the
//! step parses and checks) or a typed failure: `unavailable`, `timeout`,
//! `invalid_output`, `over_budget`. A provider never sees the rails file,
//! never touches the tree, and can never hang or crash the loop.
//!
//! Kinds here: `command` (with `self`, the operator's own agent, as the
//! default configured command provider), `human` and `heartbeat`. The model
//! kinds (`ollama`, `openai`) are configured and shown, but report
//! `unavailable` until their clients land: the seam is [`Provider`].

mod command;
mod heartbeat;
mod human;

use std::path::PathBuf;

use serde::Serialize;

use crate::propose::context::Context;
use crate::rails::{self, ProviderKind};
use crate::record::Cost;

pub use command::Command;
pub use heartbeat::Heartbeat;
pub use human::Human;

/// A provider's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// A proposal, as JSON, with what producing it cost.
    Proposal { value: serde_json::Value, cost: Cost },
    /// Nothing to propose, and why.
    Noop { reason: String },
}

/// Why a provider gave no answer.
#[derive(Clone, Debug, PartialEq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    #[error("unavailable: {reason}")]
    Unavailable { reason: String },
    #[error("timed out after {secs} s")]
    Timeout { secs: u64 },
    #[error("invalid output: {reason}")]
    InvalidOutput { reason: String },
    #[error("over budget: {reason}")]
    OverBudget { reason: String },
}

impl Failure {
    /// The failure's kind, as logged: `provider_unavailable`, ...
    pub fn reason_code(&self) -> &'static str {
        match self {
            Failure::Unavailable { .. } => "provider_unavailable",
            Failure::Timeout { .. } => "provider_timeout",
            Failure::InvalidOutput { .. } => "provider_invalid_output",
            Failure::OverBudget { .. } => "provider_over_budget",
        }
    }
}

/// What providers may know of their surroundings.
#[derive(Clone, Debug)]
pub struct Surroundings {
    /// The repository root: command providers run there.
    pub root: PathBuf,
    /// Whether a human is at a terminal (the human provider needs one).
    pub interactive: bool,
    /// A proposal file given on the command line (`--patch`), for `human`.
    pub patch_file: Option<PathBuf>,
    /// The step id, passed to command providers as `RATCHET_STEP_ID`.
    pub step_id: String,
}

/// Something that proposes patches.
pub trait Provider {
    fn name(&self) -> &str;
    /// `Err(reason)` when the provider cannot be asked now.
    fn availability(&self, env: &Surroundings) -> Result<(), String>;
    fn propose(&self, context: &Context, env: &Surroundings) -> Result<Answer, Failure>;
}

/// A configured kind without a client in this version.
struct NotYet {
    name: String,
    kind: &'static str,
}

impl Provider for NotYet {
    fn name(&self) -> &str {
        &self.name
    }
    fn availability(&self, _: &Surroundings) -> Result<(), String> {
        Err(format!("the {} provider kind has no client in ratchet {} yet", self.kind, env!("CARGO_PKG_VERSION")))
    }
    fn propose(&self, _: &Context, env: &Surroundings) -> Result<Answer, Failure> {
        Err(Failure::Unavailable { reason: self.availability(env).unwrap_err() })
    }
}

/// The provider for a configured `[providers.NAME]`.
pub fn from_config(cfg: &rails::Provider) -> Box<dyn Provider> {
    match &cfg.kind {
        ProviderKind::Command { argv } => Box::new(Command::new(&cfg.name, argv.clone(), cfg.timeout_s)),
        ProviderKind::Human => Box::new(Human::new(&cfg.name)),
        ProviderKind::Heartbeat { journal } => Box::new(Heartbeat::new(&cfg.name, journal)),
        kind @ (ProviderKind::Ollama { .. } | ProviderKind::OpenAi { .. }) => {
            Box::new(NotYet { name: cfg.name.clone(), kind: kind.name() })
        }
    }
}

/// Splits a provider's raw answer: `{"noop": "why"}` is a noop, and an
/// optional `cost` object is taken off the proposal.
pub fn interpret(mut value: serde_json::Value) -> Result<Answer, Failure> {
    if value.is_array() {
        // Several bare patches: Gate 1 will object that it is not atomic.
        return Ok(Answer::Proposal { value, cost: Cost::default() });
    }
    let Some(obj) = value.as_object_mut() else {
        return Err(Failure::InvalidOutput {
            reason: format!("expected a JSON object, got {}", crate::canonical::kind(&value)),
        });
    };
    if let Some(reason) = obj.get("noop") {
        return Ok(Answer::Noop { reason: reason.as_str().unwrap_or("nothing to do").to_string() });
    }
    let cost = match obj.remove("cost") {
        None => Cost::default(),
        Some(c) => serde_json::from_value(c).map_err(|e| Failure::InvalidOutput {
            reason: format!("`cost` is not {{usd, input_tokens, output_tokens}}: {e}"),
        })?,
    };
    Ok(Answer::Proposal { value, cost })
}

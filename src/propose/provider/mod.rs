//! Providers: what proposes a patch (DESIGN §6).
//!
//! One trait: given the context, return a proposal (its wire JSON, which the
//! step parses and checks) or a typed failure: `unavailable`, `timeout`,
//! `invalid_output`, `over_budget`. A provider never sees the rails file,
//! never touches the tree, and can never hang or crash the loop.
//!
//! Kinds here: `command` (with `self`, the operator's own agent, as the
//! default configured command provider), `agent` (a file-editing coding
//! agent in a scratch place, [`agent`]), `human`, `heartbeat`, and the
//! model kinds `ollama` and `openai` ([`model`]). A provider that streams
//! reports its progress through [`Generation`] (the step passes a hook; the
//! domain never prints) and stops when [`Cancel`] is set (Ctrl-C); what its
//! tries cost is [`Provider::spent`].

pub mod agent;
mod command;
mod heartbeat;
pub mod human;
pub mod model;
pub mod roster;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::propose::context::Context;
use crate::rails::{self, ProviderKind};
use crate::record::Cost;

pub use agent::Agent;
pub use command::{Command, Extracted, extract_json};
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
    #[error("cancelled (Ctrl-C)")]
    Cancelled,
}

impl Failure {
    /// The failure's kind, as logged: `provider_unavailable`, ...
    pub fn reason_code(&self) -> &'static str {
        match self {
            Failure::Unavailable { .. } => "provider_unavailable",
            Failure::Timeout { .. } => "provider_timeout",
            Failure::InvalidOutput { .. } => "provider_invalid_output",
            Failure::OverBudget { .. } => "provider_over_budget",
            Failure::Cancelled => "provider_cancelled",
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
    /// Set when the user asks to stop (Ctrl-C): a streaming call ends.
    pub cancel: Cancel,
    /// What the provider may still spend today under its caps (`None`: no caps).
    pub allowance: Option<Allowance>,
    /// The sandbox a provider that starts a process runs it in (the
    /// workspace's, from the rails); the provider adds its own network and
    /// environment.
    pub sandbox: crate::sandbox::Policy,
    /// The workspace a step runs in (the `agent` kind makes its scratch
    /// place from it); `None` outside a step.
    pub workspace: Option<crate::workspace::Workspace>,
}

/// A cancellation flag shared with whoever catches Ctrl-C.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// The flag, for a signal handler to set.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }

    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What a capped provider may still spend today, from the log.
#[derive(Clone, Debug, PartialEq)]
pub struct Allowance {
    pub calls: Option<u64>,
    pub usd: Option<f64>,
}

/// Progress while a model generates: the step passes a hook, the CLI draws it.
pub trait Generation {
    /// `tokens` generated so far by `provider`, `elapsed` since the call began.
    fn generating(&mut self, _provider: &str, _tokens: u64, _elapsed: Duration) {}
    /// The call ended.
    fn generated(&mut self, _provider: &str) {}
}

/// A hook that shows nothing.
pub struct Silent;
impl Generation for Silent {}

/// Something that proposes patches.
pub trait Provider {
    fn name(&self) -> &str;
    /// `Err(reason)` when the provider cannot be asked now.
    fn availability(&self, env: &Surroundings) -> Result<(), String>;
    fn propose(&self, context: &Context, env: &Surroundings) -> Result<Answer, Failure>;
    /// [`Provider::propose`], reporting progress while generating.
    fn propose_with(
        &self,
        context: &Context,
        env: &Surroundings,
        _hooks: &mut dyn Generation,
    ) -> Result<Answer, Failure> {
        self.propose(context, env)
    }
    /// What the last `propose` spent, every try counted (zero when the
    /// provider does not count: the step then counts one call).
    fn spent(&self) -> Cost {
        Cost::default()
    }
    /// The file the last `propose` looked at, when it says.
    fn target(&self) -> Option<String> {
        None
    }
    /// The passage of a file the last `propose` was shown, when it says.
    fn passage(&self) -> Option<crate::record::Passage> {
        None
    }
    /// The sandbox the last `propose` ran its child under, when it ran one.
    fn ran_under(&self) -> Option<crate::sandbox::Enforced> {
        None
    }
    /// Where the last answer's proposal was found, when it was not the
    /// whole answer (a `command` provider's fenced or embedded JSON).
    fn extracted(&self) -> Option<Extracted> {
        None
    }
}

/// The provider for a configured `[providers.NAME]`.
pub fn from_config(cfg: &rails::Provider) -> Box<dyn Provider> {
    match &cfg.kind {
        ProviderKind::Command { argv, network, env } => {
            Box::new(Command::new(&cfg.name, argv.clone(), cfg.timeout_s, *network, env.clone()))
        }
        ProviderKind::Human => Box::new(Human::new(&cfg.name)),
        ProviderKind::Heartbeat { journal } => Box::new(Heartbeat::new(&cfg.name, journal)),
        ProviderKind::Agent { argv, network, env, .. } => {
            Box::new(Agent::new(&cfg.name, argv.clone(), *network, env.clone(), cfg.timeout_s))
        }
        ProviderKind::Ollama { endpoint } => {
            Box::new(model::Model::new(&cfg.name, model::Wire::Ollama, endpoint.clone(), cfg.timeout_s))
        }
        ProviderKind::OpenAi { endpoint } => {
            Box::new(model::Model::new(&cfg.name, model::Wire::OpenAi, endpoint.clone(), cfg.timeout_s))
        }
    }
}

/// How a provider's process ended, as the step logs it: `Ok` for exit 0,
/// else the timeout, Ctrl-C, or an invalid answer naming the status and the
/// last lines of its stderr. One reading for every kind that runs a process.
pub(crate) fn ended_ok(program: &str, run: &crate::process::Captured, timeout_s: u64) -> Result<(), Failure> {
    use crate::process::Ended;
    match run.ended {
        Ended::Exited(0) => Ok(()),
        Ended::TimedOut => Err(Failure::Timeout { secs: timeout_s }),
        Ended::Interrupted => Err(Failure::Cancelled),
        Ended::Exited(code) => Err(Failure::InvalidOutput {
            reason: format!("{program} exited with status {code}{}", stderr_tail(&run.stderr)),
        }),
        Ended::Signalled(sig) => Err(Failure::InvalidOutput {
            reason: format!("{program} was killed by signal {sig}{}", stderr_tail(&run.stderr)),
        }),
    }
}

/// ` (stderr: a | b | c)`: the last three lines a process wrote to stderr,
/// or nothing.
pub(crate) fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let tail: Vec<&str> = text.lines().rev().take(3).collect();
    if tail.is_empty() {
        String::new()
    } else {
        format!(" (stderr: {})", tail.into_iter().rev().collect::<Vec<_>>().join(" | "))
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

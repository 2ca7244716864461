//! The rails: policy as data (DESIGN §4, §10; seed 003 principles 5 and 12).
//!
//! `config/rails.toml` is parsed once per command into the validated
//! [`Rails`], in two stages, the way cargo reads a manifest:
//!
//! 1. `raw.rs` deserializes the text into raw types that mirror the file
//!    (every key optional where it may be left out) and finds unknown keys
//!    (`serde_ignored`) and syntax errors, with their lines.
//! 2. `validate.rs` checks each table with its own function (the tables
//!    themselves: `tables.rs` for the limits, `ladder.rs` for trust and the
//!    gate, `providers.rs` for providers and critics) and fills what the
//!    file leaves out from the [`Default`] of each validated type below.
//!
//! Nothing outside this module sees the raw form. Every error names the
//! file and line and shows it (`error.rs`). `config/rails.lock` pins a
//! blake3 checksum of every protected file; `lock.rs` checks and writes
//! it. Providers never see or change any of this.

pub mod accept;
mod codeowners;
mod error;
mod ladder;
mod lock;
pub mod model;
mod protected;
mod providers;
mod raw;
mod runs_on_use;
mod tables;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use codeowners::{CodeOwners, uncovered_paths};
pub use error::{At, RailsError};
pub use lock::{
    CODEOWNERS_FILES, Change, ChangeKind, FileDiff, Lock, LockError, accepted_copies_dir, check, compute,
    diff_accepted, store_accepted,
};
pub use model::{Endpoint, is_loopback_url};
pub use protected::{PathClass, PathPolicy, PatternSet, builtin_patterns, glob, is_git_alias};
pub use runs_on_use::{RUNS_ON_USE, named_files};
pub use validate::{Place, parse, parse_in};

use crate::score::Weights;
use crate::workspace::Workspace;

/// The validated rails of a workspace.
#[derive(Clone, Debug)]
pub struct Rails {
    pub version: u32,
    pub paths: PathPolicy,
    pub budget: Budget,
    pub utility: Utility,
    pub checks: Checks,
    /// `[sandbox]`: how the children (checks, command providers) are confined.
    pub sandbox: Sandbox,
    pub gate: Gate,
    pub selection: Selection,
    pub trust: Trust,
    pub watchdog: Watchdog,
    pub context: ContextLimits,
    pub providers: BTreeMap<String, Provider>,
    pub critics: BTreeMap<String, Critic>,
    pub loopkit: Option<Loopkit>,
    /// `[agents]`: the agents API of `ratchet serve` (see [`crate::agents`]).
    pub agents: Agents,
}

impl Rails {
    /// Reads and validates `config/rails.toml` of `ws`, checking its paths
    /// against the workspace on disk too ([`Place::of`]).
    pub fn load(ws: &Workspace) -> Result<Rails, RailsError> {
        let path = ws.rails_toml();
        let text = std::fs::read_to_string(&path).map_err(|source| RailsError::Read { path: path.clone(), source })?;
        parse_in(&text, &Place::of(ws)).map_err(|e| e.in_file(&ws.rel("config/rails.toml")))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Lines added plus removed in one patch.
    pub max_lines: u64,
    pub max_bytes: u64,
    /// Files one step may touch (atomicity: 1).
    pub max_files: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { max_lines: 120, max_bytes: 65536, max_files: 1 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Utility {
    pub weights: Weights,
    pub revert_window_hours: f64,
    pub revert_cap: f64,
}

impl Default for Utility {
    fn default() -> Self {
        Utility { weights: Weights::SEED, revert_window_hours: 24.0, revert_cap: 0.2 }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checks {
    /// Run with `sh -c` from the repository root.
    pub command: String,
    pub timeout_s: u64,
    /// `network = true`: the checks may use the network (off by default).
    pub network: bool,
    /// Names of environment variables passed through to the checks beyond
    /// the sandbox's safe set. Never a name that looks secret
    /// ([`crate::sandbox::looks_secret`]): secrets never reach the checks.
    pub env: Vec<String>,
}

impl Default for Checks {
    fn default() -> Self {
        Checks { command: "true".into(), timeout_s: 900, network: false, env: Vec::new() }
    }
}

/// `[sandbox]`: how every child of ratchet is confined (DESIGN §6a).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sandbox {
    /// `"on"` (the default) or `"off"` (children run unconfined, knowingly).
    pub mode: crate::sandbox::Mode,
    /// More writable paths, for build tools' caches, **as written**: each
    /// absolute or starting with `~/`, which stays unexpanded here (the
    /// rails are data, the same for every user); [`Sandbox::writable_paths`]
    /// expands `~/` against `HOME` when a child is confined. None is or
    /// holds or lies inside the repository's `.git`, the home's `config/`,
    /// `intents/`, `golden/`, `logs/`, `.ratchet/`, or a secret of
    /// [`crate::sandbox::DEFAULT_SECRETS`].
    pub writable: Vec<PathBuf>,
}

impl Sandbox {
    /// [`Sandbox::writable`] with `~/` expanded against `home` (the user's
    /// `HOME`); a `~/` path is left out when there is no home.
    pub fn writable_paths(&self, home: Option<&Path>) -> Vec<PathBuf> {
        self.writable
            .iter()
            .filter_map(|p| match p.strip_prefix("~") {
                Ok(rest) => home.map(|h| h.join(rest)),
                Err(_) => Some(p.clone()),
            })
            .collect()
    }
}

#[derive(Clone, Debug)]
pub struct Gate {
    pub human: bool,
    pub auto_merge: AutoMerge,
    pub quorum: Quorum,
}

impl Default for Gate {
    fn default() -> Self {
        Gate { human: true, auto_merge: AutoMerge::default(), quorum: Quorum::default() }
    }
}

#[derive(Clone, Debug)]
pub struct AutoMerge {
    pub enabled: bool,
    pub paths: PatternSet,
    pub max_lines: u64,
    /// Index into `trust.tiers` of the lowest tier allowed to auto-merge.
    pub min_tier: usize,
    pub min_predicted_utility: f64,
    /// Whether remote candidates (`remote:<botId>`) may auto-merge, and then
    /// only with their quorum met: the rails must say `remote = true`.
    pub remote: bool,
}

impl Default for AutoMerge {
    fn default() -> Self {
        AutoMerge {
            enabled: false,
            paths: PatternSet::new(&[], false).expect("an empty pattern set compiles"),
            max_lines: 10,
            min_tier: 0,
            min_predicted_utility: 0.8,
            remote: false,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Quorum {
    pub min_attestations: u32,
    pub max_objections: u32,
    /// Roles that must each attest at least once (from `[agents] roles`).
    pub required_roles: Vec<String>,
    /// Only verified bots (vouched for by an operator) may write, and count.
    pub require_verified: bool,
}

/// `[agents]`: who may write to the agents API of `ratchet serve`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agents {
    /// The audience every signed write names (`aud`); never taken from a request.
    pub audience: String,
    /// Whether a bot may join by itself (`POST /v1/agents/join`).
    pub self_serve: bool,
    /// The roles an attestation or vote may name.
    pub roles: Vec<String>,
    /// Signed writes one bot may make per minute.
    pub writes_per_minute: u32,
    /// The operators' public keys (botId form) whose vouch statements verify bots.
    pub operator_keys: Vec<String>,
}

impl Default for Agents {
    fn default() -> Self {
        Agents {
            audience: "ratchet".into(),
            self_serve: true,
            roles: ["WRITER", "FACT_CHECK", "RISK", "SOURCE_DIVERSITY"].map(String::from).to_vec(),
            writes_per_minute: 600,
            operator_keys: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    pub strategy: String,
    pub explore: f64,
    pub min_self_rate: f64,
    pub window: u32,
}

impl Default for Selection {
    fn default() -> Self {
        Selection { strategy: "thompson".into(), explore: 0.1, min_self_rate: 0.2, window: 20 }
    }
}

#[derive(Clone, Debug)]
pub struct Trust {
    /// In order of increasing risk; every provider starts in the first.
    pub tiers: Vec<Tier>,
    /// Files that tools execute on use (test files that runners collect,
    /// build scripts, CI workflows, editor and env configs, the checks'
    /// own scripts): they count as code — the top tier — wherever they
    /// sit, and never auto-merge. `[trust] runs_on_use`, else [`RUNS_ON_USE`].
    pub runs_on_use: PatternSet,
    /// The tier the rails grant a provider from the start, by provider
    /// name: `tier = "..."` in its `[providers.NAME]` table, and the top
    /// tier for the `human` kind (the human at the terminal is Gate 2, so
    /// not tier-locked). A provider starts there and never drops below it
    /// ([`crate::trust`]).
    pub granted: BTreeMap<String, usize>,
}

#[derive(Clone, Debug)]
pub struct Tier {
    pub name: String,
    pub paths: PatternSet,
    /// Consecutive safe successes in the tier below that open this one.
    pub unlock_after: u32,
}

impl Trust {
    /// The index of the lowest tier whose paths cover `path`, or `None`
    /// when no tier does (such paths need the top tier).
    pub fn tier_of(&self, path: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.paths.is_match(path))
    }

    /// The tier a path needs: the top tier for a file tools execute on
    /// use, else its own tier, else the top tier.
    pub fn required_tier(&self, path: &str) -> usize {
        let top = self.tiers.len().saturating_sub(1);
        if self.runs_on_use(path) {
            return top;
        }
        self.tier_of(path).unwrap_or(top)
    }

    /// Whether tools execute `path` on use (it counts as code).
    pub fn runs_on_use(&self, path: &str) -> bool {
        self.runs_on_use.is_match(path)
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.name == name)
    }

    /// [`Trust::granted`] by tier name, as a `rails` log entry records it.
    pub fn granted_names(&self) -> BTreeMap<String, String> {
        self.granted.iter().filter_map(|(p, &i)| self.tiers.get(i).map(|t| (p.clone(), t.name.clone()))).collect()
    }

    /// The lowest tier `provider` can be at: what the rails grant it, else the first.
    pub fn floor(&self, provider: &str) -> usize {
        self.granted.get(provider).copied().unwrap_or(0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Watchdog {
    pub max_steps_without_merge: u32,
    pub max_hours_without_merge: f64,
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog { max_steps_without_merge: 10, max_hours_without_merge: 72.0 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextLimits {
    pub recent: u32,
    pub max_files: u32,
    pub max_bytes: u64,
}

impl Default for ContextLimits {
    fn default() -> Self {
        ContextLimits { recent: 5, max_files: 200, max_bytes: 32768 }
    }
}

/// A configured provider (`[providers.NAME]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Provider {
    pub name: String,
    pub enabled: bool,
    pub kind: ProviderKind,
    pub timeout_s: u64,
    /// The starting tier the rails grant it (`tier = "docs"`), as an index
    /// into `trust.tiers`; also in [`Trust::granted`].
    pub tier: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ProviderKind {
    /// Runs `argv` with the context JSON on stdin; reads a proposal from stdout.
    Command {
        argv: Vec<String>,
        /// `network = true`: the child may use the network (off by default).
        network: bool,
        /// Environment variables passed through to the child by name. Unlike
        /// the checks', these may be secrets: an agent CLI needs its API key.
        env: Vec<String>,
    },
    Human,
    /// Ollama's native `/api/chat`.
    Ollama {
        endpoint: Endpoint,
    },
    /// Any OpenAI-compatible `/v1/chat/completions`.
    OpenAi {
        endpoint: Endpoint,
    },
    Heartbeat {
        journal: String,
    },
    /// A file-editing coding agent, run in a scratch place at the base
    /// commit; its one changed file becomes the proposal.
    Agent {
        /// The command; `{task}` and `{context}` are replaced by the task
        /// text and the context file's path.
        argv: Vec<String>,
        /// Whether the agent may use the network (a hosted model needs it).
        network: bool,
        /// Environment variables passed through by name (an API key).
        env: Vec<String>,
        /// Daily caps, when the rails set them (`max_usd_per_day` counts the
        /// cost the agent reports; prices are the agent's own).
        caps: Option<Caps>,
    },
}

impl ProviderKind {
    /// The model endpoint of the `ollama` and `openai` kinds.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        match self {
            ProviderKind::Ollama { endpoint } | ProviderKind::OpenAi { endpoint } => Some(endpoint),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ProviderKind::Command { .. } => "command",
            ProviderKind::Human => "human",
            ProviderKind::Ollama { .. } => "ollama",
            ProviderKind::OpenAi { .. } => "openai",
            ProviderKind::Heartbeat { .. } => "heartbeat",
            ProviderKind::Agent { .. } => "agent",
        }
    }

    /// The daily caps, and whether cost in USD counts against them (a paid
    /// model endpoint; an agent with `max_usd_per_day`).
    pub fn caps(&self) -> Option<(Caps, bool)> {
        match self {
            ProviderKind::Ollama { endpoint } | ProviderKind::OpenAi { endpoint } => {
                endpoint.caps.map(|c| (c, endpoint.paid))
            }
            ProviderKind::Agent { caps, .. } => caps.map(|c| (c, c.max_usd_per_day.is_finite())),
            _ => None,
        }
    }
}

/// Daily caps and prices of a paid provider.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Caps {
    pub max_usd_per_day: f64,
    pub max_calls_per_day: u32,
    pub usd_per_1k_input: f64,
    pub usd_per_1k_output: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Critic {
    pub name: String,
    pub provider: String,
    pub max_calls_per_day: u32,
    pub weight: f64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loopkit {
    pub url: String,
    /// Where the agent key (reading pains) is: `$agent_key_env`, else `.ratchet/keys.toml`.
    pub agent_key_env: String,
    /// Where the producer key (reporting steps) is: `$producer_key_env`, else `.ratchet/keys.toml`.
    pub producer_key_env: String,
    /// The telemetry window a merge is verified over (`24h` by default).
    pub window: crate::loopkit::window::Window,
}

#[cfg(test)]
mod tests;

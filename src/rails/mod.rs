//! The rails: policy as data (DESIGN §4, §10; seed 003 principles 5 and 12).
//!
//! `config/rails.toml` is parsed once per command into the validated
//! [`Rails`] (`toml.rs` holds the raw form; nothing outside this module sees
//! it). `config/rails.lock` pins a blake3 checksum of every protected file;
//! `lock.rs` checks and writes it. Providers never see or change any of this.

pub mod accept;
mod codeowners;
mod lock;
mod parse;
mod protected;

use std::collections::BTreeMap;

pub use codeowners::{CodeOwners, uncovered_paths};
pub use lock::{
    CODEOWNERS_FILES, Change, ChangeKind, FileDiff, Lock, LockError, accepted_copies_dir, check, compute,
    diff_accepted, store_accepted,
};
pub use parse::{RailsError, is_loopback_url, parse};
pub use protected::{PathClass, PathPolicy, PatternSet, builtin_patterns, glob, is_git_alias};

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
    /// Reads and validates `config/rails.toml` of `ws`.
    pub fn load(ws: &Workspace) -> Result<Rails, RailsError> {
        let path = ws.rails_toml();
        let text = std::fs::read_to_string(&path).map_err(|source| RailsError::Read { path: path.clone(), source })?;
        parse(&text, ws.home_rel()).map_err(|e| e.in_file(&ws.rel("config/rails.toml")))
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

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Utility {
    pub weights: Weights,
    pub revert_window_hours: f64,
    pub revert_cap: f64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checks {
    /// Run with `sh -c` from the repository root.
    pub command: String,
    pub timeout_s: u64,
}

#[derive(Clone, Debug)]
pub struct Gate {
    pub human: bool,
    pub auto_merge: AutoMerge,
    pub quorum: Quorum,
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

#[derive(Clone, Debug, PartialEq, Eq)]
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

#[derive(Clone, Debug)]
pub struct Trust {
    /// In order of increasing risk; every provider starts in the first.
    pub tiers: Vec<Tier>,
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

    /// The tier a path needs: its own tier, else the top tier.
    pub fn required_tier(&self, path: &str) -> usize {
        self.tier_of(path).unwrap_or(self.tiers.len().saturating_sub(1))
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.name == name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Watchdog {
    pub max_steps_without_merge: u32,
    pub max_hours_without_merge: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextLimits {
    pub recent: u32,
    pub max_files: u32,
    pub max_bytes: u64,
}

/// A configured provider (`[providers.NAME]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Provider {
    pub name: String,
    pub enabled: bool,
    pub kind: ProviderKind,
    pub timeout_s: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ProviderKind {
    /// Runs `argv` with the context JSON on stdin; reads a proposal from stdout.
    Command {
        argv: Vec<String>,
    },
    Human,
    Ollama {
        url: String,
        model: String,
        num_ctx: u32,
    },
    OpenAi {
        url: String,
        model: String,
        api_key_env: Option<String>,
        caps: Option<Caps>,
        paid: bool,
    },
    Heartbeat {
        journal: String,
    },
}

impl ProviderKind {
    pub fn name(&self) -> &'static str {
        match self {
            ProviderKind::Command { .. } => "command",
            ProviderKind::Human => "human",
            ProviderKind::Ollama { .. } => "ollama",
            ProviderKind::OpenAi { .. } => "openai",
            ProviderKind::Heartbeat { .. } => "heartbeat",
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
    pub agent_key_env: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This repository's own rails are the template `init` writes.
    pub const TEMPLATE: &str = include_str!("../../config/rails.toml");

    #[test]
    fn the_template_is_valid() {
        let rails = parse(TEMPLATE, "").unwrap();
        assert_eq!(rails.budget.max_lines, 120);
        assert_eq!(rails.utility.weights, Weights::SEED);
        assert_eq!(rails.trust.tiers.len(), 3);
        assert_eq!(rails.trust.required_tier("docs/a.md"), 0);
        assert_eq!(rails.trust.required_tier("src/lib.rs"), 2);
        assert!(!rails.providers["openai"].enabled);
        assert!(matches!(rails.paths.classify("config/rails.toml"), PathClass::Protected(_)));
    }

    fn err(text: &str) -> RailsError {
        parse(text, "").unwrap_err()
    }

    #[test]
    fn an_unknown_key_names_the_key_line_and_suggestion() {
        let e = err("version = 1\n[paths]\nallow = [\"src/**\"]\n[budget]\nmax_line = 3\n");
        match &e {
            RailsError::UnknownKey { line, key, section, suggestion, .. } => {
                assert_eq!((*line, key.as_str(), section.as_str()), (5, "max_line", "budget"));
                assert_eq!(suggestion.as_deref(), Some("max_lines"));
            }
            other => panic!("expected UnknownKey, got {other:?}"),
        }
        assert_eq!(e.to_string(), "config/rails.toml:5: unknown key `max_line` in [budget]");
        assert_eq!(crate::error::Coded::hint(&e).unwrap(), "did you mean `max_lines`?");
    }

    #[test]
    fn a_misspelt_table_is_an_unknown_key() {
        let e = err("[paths]\nallow = [\"src/**\"]\n[utilty]\nci_pass = 1.0\n");
        assert!(matches!(e, RailsError::UnknownKey { ref key, line: 3, .. } if key == "utilty"), "{e:?}");
    }

    #[test]
    fn weights_that_do_not_sum_to_one_are_refused_with_their_line() {
        let text = "[paths]\nallow = [\"src/**\"]\n\n[utility]\nci_pass = 0.30\npath_ok = 0.15\ndiff_ratio = 0.15\natomic_ok = 0.10\nleft_next_steps = 0.10\nhuman_score = 0.10\n";
        let e = err(text);
        assert_eq!(e.to_string(), "config/rails.toml:4: [utility] weights sum to 0.9, not 1.0");
        assert_eq!(crate::error::Coded::code(&e), "RAILS_INVALID");
    }

    #[test]
    fn weights_within_1e9_are_accepted() {
        let text = "[paths]\nallow = [\"src/**\"]\n[utility]\nci_pass = 0.3000000001\npath_ok = 0.15\ndiff_ratio = 0.15\natomic_ok = 0.10\nleft_next_steps = 0.10\nhuman_score = 0.20\n";
        assert!(parse(text, "").is_ok());
    }

    #[test]
    fn an_empty_allowlist_is_refused() {
        assert!(err("[paths]\nallow = []\n").to_string().contains("[paths] allow is empty"));
    }

    #[test]
    fn tiers_and_auto_merge_must_lie_inside_the_allowlist() {
        let e = err("[paths]\nallow = [\"docs/**\"]\n[[trust.tiers]]\nname = \"code\"\npaths = [\"src/**\"]\n");
        assert!(e.to_string().contains("trust tier \"code\" path \"src/**\" is outside the allowlist"), "{e}");
        let e = err("[paths]\nallow = [\"src/**\"]\n[gate.auto_merge]\nenabled = true\npaths = [\"**/*.md\"]\n");
        assert!(e.to_string().contains("[gate.auto_merge] path \"**/*.md\" is outside the allowlist"), "{e}");
        assert!(
            parse("[paths]\nallow = [\"docs/**\"]\n[gate.auto_merge]\nenabled = true\npaths = [\"docs/api/**\"]\n", "")
                .is_ok()
        );
    }

    #[test]
    fn a_paid_provider_needs_caps() {
        let base = "[paths]\nallow = [\"src/**\"]\n[providers.oa]\nkind = \"openai\"\nurl = \"https://api.openai.com/v1\"\nmodel = \"m\"\n";
        let e = err(&format!("{base}enabled = true\n"));
        assert!(e.to_string().contains("is paid"), "{e}");
        // Disabled by default when paid, so no caps are needed.
        assert!(!parse(base, "").unwrap().providers["oa"].enabled);
        // A loopback endpoint is free.
        let local = "[paths]\nallow = [\"src/**\"]\n[providers.l]\nkind = \"openai\"\nurl = \"http://127.0.0.1:8080/v1\"\nmodel = \"m\"\n";
        assert!(parse(local, "").unwrap().providers["l"].enabled);
    }

    #[test]
    fn a_key_of_another_kind_is_refused() {
        let e = err("[paths]\nallow = [\"src/**\"]\n[providers.h]\nkind = \"human\"\nurl = \"x\"\n");
        assert!(e.to_string().contains("key `url` does not apply to kind \"human\""), "{e}");
    }

    #[test]
    fn the_protected_set_cannot_be_allowed_away() {
        let rails = parse("[paths]\nallow = [\"**\"]\n", "").unwrap();
        for p in [
            "config/rails.toml",
            "INTENTS/CURRENT",
            "golden/a.json",
            "logs/steps.jsonl",
            ".ratchet/x",
            "CODEOWNERS",
            "a/.Git/HEAD",
        ] {
            assert!(rails.paths.is_protected(p), "{p}");
        }
    }

    #[test]
    fn human_gate_cannot_be_switched_off() {
        assert!(err("[paths]\nallow = [\"src/**\"]\n[gate]\nhuman = false\n").to_string().contains("without a human"));
    }

    #[test]
    fn loopback_urls_are_recognised() {
        for u in ["http://127.0.0.1:11434", "http://localhost/v1", "http://[::1]:8080/v1"] {
            assert!(is_loopback_url(u), "{u}");
        }
        for u in ["https://api.openai.com/v1", "http://127.0.0.1.evil.com/v1", "http://localhost@evil.com/"] {
            assert!(!is_loopback_url(u), "{u}");
        }
    }
}

//! The rails: policy as data (DESIGN §4, §10; seed 003 principles 5 and 12).
//!
//! `config/rails.toml` is parsed once per command into the validated
//! [`Rails`] (`toml.rs` holds the raw form; nothing outside this module sees
//! it). `config/rails.lock` pins a blake3 checksum of every protected file;
//! `lock.rs` checks and writes it. Providers never see or change any of this.

pub mod accept;
mod codeowners;
mod lock;
pub mod model;
mod parse;
mod protected;

use std::collections::BTreeMap;

pub use codeowners::{CodeOwners, uncovered_paths};
pub use lock::{
    CODEOWNERS_FILES, Change, ChangeKind, FileDiff, Lock, LockError, accepted_copies_dir, check, compute,
    diff_accepted, store_accepted,
};
pub use model::{Endpoint, is_loopback_url};
pub use parse::{RailsError, parse};
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
    /// Files that tools execute on use (test files that runners collect,
    /// build scripts, CI workflows, editor and env configs, the checks'
    /// own scripts): they count as code — the top tier — wherever they
    /// sit, and never auto-merge. `[trust] runs_on_use`, else [`RUNS_ON_USE`].
    pub runs_on_use: PatternSet,
}

/// The files tools execute on use, by default. Matched case-insensitively
/// at any depth (`**/` is implied for patterns without a `/`).
pub const RUNS_ON_USE: &[&str] = &[
    // Test files that runners collect and import.
    "**/test_*.py",
    "**/*_test.py",
    "**/conftest.py",
    "**/__init__.py",
    "**/*_test.go",
    "**/*.test.[jt]s",
    "**/*.test.[cm][jt]s",
    "**/*.test.[jt]sx",
    "**/*.spec.[jt]s",
    "**/*.spec.[jt]sx",
    "**/*_spec.rb",
    "**/*_test.rb",
    // Build scripts and manifests whose scripts or hooks run.
    "**/build.rs",
    "**/Cargo.toml",
    "**/.cargo/config",
    "**/.cargo/config.toml",
    "**/Makefile",
    "**/GNUmakefile",
    "**/*.mk",
    "**/CMakeLists.txt",
    "**/Justfile",
    "**/Rakefile",
    "**/Gemfile",
    "**/*.gemspec",
    "**/setup.py",
    "**/setup.cfg",
    "**/pyproject.toml",
    "**/tox.ini",
    "**/pytest.ini",
    "**/noxfile.py",
    "**/conf.py",
    "**/package.json",
    "**/.npmrc",
    "**/.yarnrc",
    "**/.yarnrc.yml",
    "**/*.config.[cm]js",
    "**/*.config.[jt]s",
    "**/build.gradle",
    "**/build.gradle.kts",
    "**/settings.gradle",
    "**/settings.gradle.kts",
    "**/pom.xml",
    "**/BUILD",
    "**/BUILD.bazel",
    "**/WORKSPACE",
    "**/.bazelrc",
    "**/Dockerfile",
    "**/docker-compose.yml",
    "**/docker-compose.yaml",
    // CI, hooks, environment and editor configurations.
    ".github/workflows/**",
    ".github/actions/**",
    ".gitlab-ci.yml",
    ".circleci/**",
    ".travis.yml",
    "**/.envrc",
    "**/.env",
    "**/.pre-commit-config.yaml",
    "**/.husky/**",
    "**/.githooks/**",
    "**/.gitattributes",
    "**/.gitmodules",
    "**/.vscode/**",
    "**/.idea/**",
    "**/.devcontainer/**",
];

/// The scripts a command line runs from the tree, as literal patterns:
/// the program of each simple command when it is a path (`./check.sh`,
/// `scripts/test`), and the script an interpreter is given (`sh
/// scripts/check.sh`, `python3 tools/run.py`). The checks' own scripts run
/// every step, so they count as code. Files the command merely reads
/// (`grep -q X docs/a.md`) are not named.
pub fn named_files(command: &str) -> Vec<String> {
    const INTERPRETERS: &[&str] = &[
        "sh", "bash", "dash", "zsh", "ksh", "python", "python3", "node", "deno", "bun", "ruby", "perl", "php", "lua",
        "Rscript", "pwsh", "tclsh",
    ];
    let mut out = Vec::new();
    for simple in command.split(|c: char| ";&|()\n".contains(c)) {
        let mut words = simple
            .split_whitespace()
            .map(|w| w.trim_matches(|c| c == '\'' || c == '"'))
            .skip_while(|w| w.contains('=') && !w.starts_with('-'));
        let Some(first) = words.next() else { continue };
        let first = if matches!(first, "exec" | "env" | "time" | "nice" | "timeout") {
            match words.find(|w| !w.starts_with('-') && !w.chars().all(|c| c.is_ascii_digit())) {
                Some(w) => w,
                None => continue,
            }
        } else {
            first
        };
        let name = first.rsplit('/').next().unwrap_or(first);
        let script = if INTERPRETERS.contains(&name) {
            words.find(|w| !w.starts_with('-'))
        } else if first.contains('/') {
            Some(first)
        } else {
            None
        };
        if let Some(w) = script.map(|w| w.trim_start_matches("./")) {
            let plain = !w.is_empty() && !w.starts_with('/') && !w.contains('$') && !w.contains("..");
            if plain && !w.contains(['*', '?', '[', '{']) {
                out.push(w.to_string());
            }
        }
    }
    out
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
    fn the_checks_own_scripts_count_as_code_but_files_they_read_do_not() {
        assert_eq!(named_files("sh scripts/check.sh"), ["scripts/check.sh"]);
        assert_eq!(named_files("./ci/test --fast && make"), ["ci/test"]);
        assert_eq!(named_files("FOO=1 python3 -u tools/run.py arg"), ["tools/run.py"]);
        assert_eq!(named_files("timeout 60 bash x.sh; true"), ["x.sh"]);
        assert!(named_files("grep -q BROKEN docs/guide.md && exit 1; exit 0").is_empty());
        assert!(named_files("cargo test").is_empty());
        let rails = parse("[paths]\nallow = [\"**\"]\n[checks]\ncommand = \"sh scripts/check.sh\"\n", "").unwrap();
        assert!(rails.trust.runs_on_use("scripts/check.sh"));
        assert!(rails.trust.runs_on_use("tests/test_api.py") && rails.trust.runs_on_use("docs/conftest.py"));
        assert!(rails.trust.runs_on_use(".github/workflows/ci.yml") && rails.trust.runs_on_use("src/build.rs"));
        assert!(!rails.trust.runs_on_use("docs/guide.md"));
    }
}

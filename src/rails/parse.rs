//! The raw form of `config/rails.toml` and its validation into [`Rails`].
//!
//! Every table denies unknown keys: a misspelt guardrail that is silently
//! ignored is a hole. Errors name the file, the line, the key and, when a
//! known key is close, suggest it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ::toml::Spanned;
use serde::Deserialize;

use super::protected::{PatternSet, builtin_patterns};
use super::*;
use crate::error::Coded;

#[derive(Debug, thiserror::Error)]
pub enum RailsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{file}:{line}: unknown key `{key}`{}", section_words(section))]
    UnknownKey {
        file: String,
        line: usize,
        key: String,
        section: String,
        suggestion: Option<String>,
        expected: Vec<String>,
    },
    #[error("{file}:{line}: {message}")]
    Syntax { file: String, line: usize, message: String },
    #[error("{file}:{line}: {message}")]
    Invalid { file: String, line: usize, message: String, hint: String },
}

fn section_words(section: &str) -> String {
    if section.is_empty() { String::new() } else { format!(" in [{section}]") }
}

impl RailsError {
    /// Names the file the error is in (the parser only sees text).
    pub fn in_file(mut self, name: &str) -> RailsError {
        match &mut self {
            RailsError::UnknownKey { file, .. }
            | RailsError::Syntax { file, .. }
            | RailsError::Invalid { file, .. } => *file = name.to_string(),
            RailsError::Read { .. } => {}
        }
        self
    }
}

impl Coded for RailsError {
    fn code(&self) -> &'static str {
        match self {
            RailsError::Read { .. } => "RAILS_UNREADABLE",
            RailsError::UnknownKey { .. } => "RAILS_UNKNOWN_KEY",
            RailsError::Syntax { .. } | RailsError::Invalid { .. } => "RAILS_INVALID",
        }
    }
    fn hint(&self) -> Option<String> {
        Some(match self {
            RailsError::Read { .. } => "run `ratchet init` to write config/rails.toml, or cd into the workspace".into(),
            RailsError::UnknownKey { suggestion: Some(s), .. } => format!("did you mean `{s}`?"),
            RailsError::UnknownKey { expected, .. } if !expected.is_empty() => {
                format!("the keys allowed here are: {}", expected.join(", "))
            }
            RailsError::UnknownKey { .. } => "remove the key; this table takes no keys".into(),
            RailsError::Syntax { .. } => "fix the TOML syntax at that line".into(),
            RailsError::Invalid { hint, .. } => hint.clone(),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlRails {
    version: Option<Spanned<u32>>,
    paths: Spanned<TomlPaths>,
    budget: Option<TomlBudget>,
    utility: Option<Spanned<TomlUtility>>,
    checks: Option<TomlChecks>,
    gate: Option<TomlGate>,
    selection: Option<Spanned<TomlSelection>>,
    trust: Option<TomlTrust>,
    watchdog: Option<TomlWatchdog>,
    context: Option<TomlContext>,
    #[serde(default)]
    providers: BTreeMap<String, Spanned<TomlProvider>>,
    #[serde(default)]
    critics: BTreeMap<String, Spanned<TomlCritic>>,
    loopkit: Option<TomlLoopkit>,
    agents: Option<TomlAgents>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlPaths {
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    deny: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlBudget {
    max_lines: Option<Spanned<u64>>,
    max_bytes: Option<Spanned<u64>>,
    max_files: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlUtility {
    ci_pass: f64,
    path_ok: f64,
    diff_ratio: f64,
    atomic_ok: f64,
    left_next_steps: f64,
    human_score: f64,
    revert_window_hours: Option<f64>,
    revert_cap: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlChecks {
    command: Option<Spanned<String>>,
    timeout_s: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlGate {
    human: Option<Spanned<bool>>,
    auto_merge: Option<Spanned<TomlAutoMerge>>,
    quorum: Option<TomlQuorum>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlAutoMerge {
    enabled: Option<bool>,
    #[serde(default)]
    paths: Vec<Spanned<String>>,
    max_lines: Option<u64>,
    min_tier: Option<Spanned<String>>,
    min_predicted_utility: Option<f64>,
    remote: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlQuorum {
    min_attestations: Option<u32>,
    max_objections: Option<u32>,
    #[serde(default)]
    required_roles: Vec<String>,
    require_verified: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlAgents {
    audience: Option<String>,
    self_serve: Option<bool>,
    roles: Option<Vec<String>>,
    writes_per_minute: Option<u32>,
    #[serde(default)]
    operator_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlSelection {
    strategy: Option<String>,
    explore: Option<f64>,
    min_self_rate: Option<f64>,
    window: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlTrust {
    #[serde(default)]
    tiers: Vec<Spanned<TomlTier>>,
    runs_on_use: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlTier {
    name: String,
    paths: Vec<Spanned<String>>,
    unlock_after: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlWatchdog {
    max_steps_without_merge: Option<u32>,
    max_hours_without_merge: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlContext {
    recent: Option<u32>,
    max_files: Option<u32>,
    max_bytes: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlProvider {
    kind: String,
    enabled: Option<bool>,
    command: Option<Vec<String>>,
    timeout_s: Option<u64>,
    url: Option<String>,
    model: Option<String>,
    num_ctx: Option<u32>,
    max_prompt_tokens: Option<u32>,
    max_output_tokens: Option<u32>,
    paid: Option<bool>,
    api_key_env: Option<String>,
    max_usd_per_day: Option<f64>,
    max_calls_per_day: Option<u32>,
    usd_per_1k_input: Option<f64>,
    usd_per_1k_output: Option<f64>,
    journal: Option<String>,
    network: Option<bool>,
    env: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlCritic {
    provider: String,
    max_calls_per_day: Option<u32>,
    weight: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlLoopkit {
    url: String,
    agent_key_env: Option<String>,
    producer_key_env: Option<String>,
    window: Option<Spanned<String>>,
}

/// Parses and validates the text of a `rails.toml` for a workspace whose
/// home is `home_rel`. Errors name `config/rails.toml`; [`Rails::load`]
/// renames them for a sub-folder home.
pub fn parse(text: &str, home_rel: &str) -> Result<Rails, RailsError> {
    let raw: TomlRails = ::toml::from_str(text).map_err(|e| from_toml_error(text, &e))?;
    Validator { text }.rails(raw, home_rel)
}

const FILE: &str = "config/rails.toml";

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The `[table]` header in force at `line` (1-based), without brackets.
fn section_at(text: &str, line: usize) -> String {
    text.lines()
        .take(line)
        .filter_map(|l| {
            let t = l.trim();
            let t = t
                .strip_prefix("[[")
                .and_then(|t| t.split("]]").next())
                .or_else(|| t.strip_prefix('[').and_then(|t| t.split(']').next()));
            t.map(|s| s.trim().to_string())
        })
        .last()
        .unwrap_or_default()
}

fn from_toml_error(text: &str, e: &::toml::de::Error) -> RailsError {
    let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
    let message = e.message().trim().to_string();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((key, tail)) = rest.split_once('`') {
            let expected: Vec<String> = tail.split('`').skip(1).step_by(2).map(str::to_string).collect();
            let suggestion = expected
                .iter()
                .map(|k| (strsim::jaro_winkler(key, k), k))
                .filter(|(score, _)| *score >= 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, k)| k.clone());
            return RailsError::UnknownKey {
                file: FILE.into(),
                line,
                key: key.to_string(),
                section: section_at(text, line),
                suggestion,
                expected,
            };
        }
    }
    RailsError::Syntax { file: FILE.into(), line, message }
}

struct Validator<'a> {
    text: &'a str,
}

impl Validator<'_> {
    fn invalid(&self, span: std::ops::Range<usize>, message: impl Into<String>, hint: impl Into<String>) -> RailsError {
        RailsError::Invalid {
            file: FILE.into(),
            line: line_of(self.text, span.start),
            message: message.into(),
            hint: hint.into(),
        }
    }

    fn patterns(&self, list: &[Spanned<String>], case_insensitive: bool, what: &str) -> Result<PatternSet, RailsError> {
        for p in list {
            let pattern = p.get_ref();
            if pattern.is_empty() || pattern.starts_with('/') || pattern.contains('\\') && !pattern.contains("\\*") {
                return Err(self.invalid(
                    p.span(),
                    format!("{what} pattern {pattern:?} must be a non-empty path relative to the repository root"),
                    "write patterns like \"src/**\" or \"*.md\", with / separators",
                ));
            }
            if let Err(e) = super::protected::glob(pattern, case_insensitive) {
                return Err(self.invalid(
                    p.span(),
                    format!("{what} pattern {pattern:?} is not a valid glob: {e}"),
                    "fix the glob",
                ));
            }
        }
        let strings: Vec<String> = list.iter().map(|p| p.get_ref().clone()).collect();
        PatternSet::new(&strings, case_insensitive).map_err(|(p, e)| {
            self.invalid(0..0, format!("{what} pattern {p:?} is not a valid glob: {e}"), "fix the glob")
        })
    }

    /// Each of `patterns` must lie inside the allowlist: some allow pattern
    /// must match it read as a literal path (so `docs/api/**` is inside
    /// `docs/**`, and `**/*.rs` is not inside `src/**`).
    fn inside_allowlist(&self, patterns: &[Spanned<String>], allow: &PatternSet, what: &str) -> Result<(), RailsError> {
        for p in patterns {
            let pattern = p.get_ref();
            if !allow.patterns().iter().any(|a| a == pattern) && !allow.is_match(pattern) {
                return Err(self.invalid(
                    p.span(),
                    format!("{what} path {pattern:?} is outside the allowlist [paths] allow = {:?}", allow.patterns()),
                    "narrow the pattern so it lies inside an allowed pattern, or widen [paths] allow",
                ));
            }
        }
        Ok(())
    }

    fn rails(&self, raw: TomlRails, home_rel: &str) -> Result<Rails, RailsError> {
        let version = match raw.version {
            Some(v) if *v.get_ref() != 1 => {
                return Err(self.invalid(
                    v.span(),
                    format!("version {} is not supported", v.get_ref()),
                    "set version = 1",
                ));
            }
            _ => 1,
        };

        // [paths]
        let paths_span = raw.paths.span();
        let paths = raw.paths.into_inner();
        if paths.allow.is_empty() {
            return Err(self.invalid(
                paths_span,
                "[paths] allow is empty, so no patch could ever apply",
                "list the paths the loop may change, for example allow = [\"docs/**\", \"*.md\"]",
            ));
        }
        let allow = self.patterns(&paths.allow, false, "[paths] allow")?;
        let deny = self.patterns(&paths.deny, true, "[paths] deny")?;
        let protected = PatternSet::new(&builtin_patterns(home_rel), true)
            .expect("the built-in protected patterns are valid globs");
        let policy = PathPolicy { protected, deny, allow };

        // [budget]
        let mut budget = Budget { max_lines: 120, max_bytes: 65536, max_files: 1 };
        if let Some(b) = raw.budget {
            for (field, value) in
                [("max_lines", &b.max_lines), ("max_bytes", &b.max_bytes), ("max_files", &b.max_files)]
            {
                if let Some(v) = value {
                    if *v.get_ref() == 0 {
                        return Err(self.invalid(
                            v.span(),
                            format!("[budget] {field} is 0, so no patch could ever apply"),
                            "set it to 1 or more",
                        ));
                    }
                }
            }
            if let Some(v) = &b.max_files {
                if *v.get_ref() != 1 {
                    return Err(self.invalid(
                        v.span(),
                        format!("[budget] max_files = {} but a step is one atomic patch on one file", v.get_ref()),
                        "set max_files = 1",
                    ));
                }
            }
            budget.max_lines = b.max_lines.map(|v| v.into_inner()).unwrap_or(budget.max_lines);
            budget.max_bytes = b.max_bytes.map(|v| v.into_inner()).unwrap_or(budget.max_bytes);
        }

        // [utility]
        let utility = match raw.utility {
            None => Utility { weights: Weights::SEED, revert_window_hours: 24.0, revert_cap: 0.2 },
            Some(u) => {
                let span = u.span();
                let u = u.into_inner();
                let weights = Weights {
                    ci_pass: u.ci_pass,
                    path_ok: u.path_ok,
                    diff_ratio: u.diff_ratio,
                    atomic_ok: u.atomic_ok,
                    left_next_steps: u.left_next_steps,
                    human_score: u.human_score,
                };
                for (name, w) in [
                    ("ci_pass", weights.ci_pass),
                    ("path_ok", weights.path_ok),
                    ("diff_ratio", weights.diff_ratio),
                    ("atomic_ok", weights.atomic_ok),
                    ("left_next_steps", weights.left_next_steps),
                    ("human_score", weights.human_score),
                ] {
                    if !(0.0..=1.0).contains(&w) {
                        return Err(self.invalid(
                            span.clone(),
                            format!("[utility] {name} = {w} is outside [0, 1]"),
                            "weights are fractions of 1.0",
                        ));
                    }
                }
                let sum = weights.sum();
                if (sum - 1.0).abs() > 1e-9 {
                    return Err(self.invalid(
                        span,
                        format!("[utility] weights sum to {}, not 1.0", crate::score::round(sum)),
                        "adjust the six weights (ci_pass, path_ok, diff_ratio, atomic_ok, left_next_steps, human_score) so they sum to exactly 1.0",
                    ));
                }
                let revert_window_hours = u.revert_window_hours.unwrap_or(24.0);
                let revert_cap = u.revert_cap.unwrap_or(0.2);
                if !(0.0..=1.0).contains(&revert_cap) || revert_window_hours < 0.0 || !revert_window_hours.is_finite() {
                    return Err(self.invalid(
                        span,
                        "[utility] revert_cap must lie in [0, 1] and revert_window_hours be a non-negative number",
                        "the seed values are revert_window_hours = 24, revert_cap = 0.2",
                    ));
                }
                Utility { weights, revert_window_hours, revert_cap }
            }
        };

        // [checks]
        let mut checks = Checks { command: "true".into(), timeout_s: 900 };
        if let Some(c) = raw.checks {
            if let Some(cmd) = c.command {
                if cmd.get_ref().trim().is_empty() {
                    return Err(self.invalid(
                        cmd.span(),
                        "[checks] command is empty",
                        "set command = \"true\" to run no checks",
                    ));
                }
                checks.command = cmd.into_inner();
            }
            if let Some(t) = c.timeout_s {
                if *t.get_ref() == 0 {
                    return Err(self.invalid(
                        t.span(),
                        "[checks] timeout_s is 0",
                        "give the checks at least one second",
                    ));
                }
                checks.timeout_s = t.into_inner();
            }
        }

        // [[trust.tiers]]
        let (raw_tiers, raw_runs) = raw.trust.map(|t| (t.tiers, t.runs_on_use)).unwrap_or_default();
        let mut tiers = Vec::new();
        for t in &raw_tiers {
            let tier = t.get_ref();
            if tiers.iter().any(|x: &Tier| x.name == tier.name) {
                return Err(self.invalid(
                    t.span(),
                    format!("trust tier {:?} is defined twice", tier.name),
                    "give each tier a distinct name",
                ));
            }
            self.inside_allowlist(&tier.paths, &policy.allow, &format!("trust tier {:?}", tier.name))?;
            let paths = self.patterns(&tier.paths, false, "trust tier")?;
            tiers.push(Tier { name: tier.name.clone(), paths, unlock_after: tier.unlock_after.unwrap_or(0) });
        }
        // Files tools execute on use: the defaults, or the rails' own list;
        // and whatever the checks command names in the tree (it runs every step).
        let mut runs: Vec<String> = match &raw_runs {
            Some(list) => {
                self.patterns(list, true, "[trust] runs_on_use")?;
                list.iter().map(|p| p.get_ref().clone()).collect()
            }
            None => super::RUNS_ON_USE.iter().map(|p| p.to_string()).collect(),
        };
        runs.extend(super::named_files(&checks.command));
        let runs_on_use = PatternSet::new(&runs, true).map_err(|(p, e)| {
            self.invalid(0..0, format!("[trust] runs_on_use pattern {p:?} is not a valid glob: {e}"), "fix the glob")
        })?;
        let trust = Trust { tiers, runs_on_use };

        // [gate]
        let mut gate = Gate {
            human: true,
            auto_merge: AutoMerge {
                enabled: false,
                paths: PatternSet::new(&[], false).expect("an empty pattern set compiles"),
                max_lines: 10,
                min_tier: 0,
                min_predicted_utility: 0.8,
                remote: false,
            },
            quorum: Quorum {
                min_attestations: 0,
                max_objections: 0,
                required_roles: Vec::new(),
                require_verified: false,
            },
        };
        if let Some(g) = raw.gate {
            if let Some(h) = g.human {
                if !*h.get_ref() {
                    return Err(self.invalid(
                        h.span(),
                        "[gate] human = false would let patches merge without a human",
                        "keep human = true; use [gate.auto_merge] for narrow, opted-in exceptions",
                    ));
                }
            }
            if let Some(am) = g.auto_merge {
                let span = am.span();
                let am = am.into_inner();
                self.inside_allowlist(&am.paths, &policy.allow, "[gate.auto_merge]")?;
                let min_tier = match &am.min_tier {
                    None => 0,
                    Some(name) => trust.index(name.get_ref()).ok_or_else(|| {
                        self.invalid(
                            name.span(),
                            format!("[gate.auto_merge] min_tier {:?} names no [[trust.tiers]] entry", name.get_ref()),
                            format!(
                                "use one of: {}",
                                trust.tiers.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
                            ),
                        )
                    })?,
                };
                let min_predicted_utility = am.min_predicted_utility.unwrap_or(0.8);
                if !(0.0..=1.0).contains(&min_predicted_utility) {
                    return Err(self.invalid(
                        span,
                        "[gate.auto_merge] min_predicted_utility must lie in [0, 1]",
                        "utility is a number in [0, 1]",
                    ));
                }
                let enabled = am.enabled.unwrap_or(false);
                if enabled && am.paths.is_empty() {
                    return Err(self.invalid(
                        span,
                        "[gate.auto_merge] is enabled with no paths",
                        "list the narrow paths auto-merge may touch",
                    ));
                }
                gate.auto_merge = AutoMerge {
                    enabled,
                    paths: self.patterns(&am.paths, false, "[gate.auto_merge]")?,
                    max_lines: am.max_lines.unwrap_or(10),
                    min_tier,
                    min_predicted_utility,
                    remote: am.remote.unwrap_or(false),
                };
            }
            if let Some(q) = g.quorum {
                gate.quorum = Quorum {
                    min_attestations: q.min_attestations.unwrap_or(0),
                    max_objections: q.max_objections.unwrap_or(0),
                    required_roles: q.required_roles,
                    require_verified: q.require_verified.unwrap_or(false),
                };
            }
        }

        // [selection]
        let mut selection = Selection { strategy: "thompson".into(), explore: 0.1, min_self_rate: 0.2, window: 20 };
        if let Some(s) = raw.selection {
            let span = s.span();
            let s = s.into_inner();
            if let Some(strategy) = s.strategy {
                if strategy != "thompson" {
                    return Err(self.invalid(
                        span,
                        format!("[selection] strategy {strategy:?} is not known"),
                        "use strategy = \"thompson\"",
                    ));
                }
            }
            selection.explore = s.explore.unwrap_or(selection.explore);
            selection.min_self_rate = s.min_self_rate.unwrap_or(selection.min_self_rate);
            selection.window = s.window.unwrap_or(selection.window);
            if !(0.0..=1.0).contains(&selection.explore)
                || !(0.0..=1.0).contains(&selection.min_self_rate)
                || selection.window == 0
            {
                return Err(self.invalid(
                    span,
                    "[selection] explore and min_self_rate must lie in [0, 1] and window be at least 1",
                    "the defaults are explore = 0.1, min_self_rate = 0.2, window = 20",
                ));
            }
        }

        let watchdog = raw
            .watchdog
            .map(|w| Watchdog {
                max_steps_without_merge: w.max_steps_without_merge.unwrap_or(10),
                max_hours_without_merge: w.max_hours_without_merge.unwrap_or(72.0),
            })
            .unwrap_or(Watchdog { max_steps_without_merge: 10, max_hours_without_merge: 72.0 });

        let context = raw
            .context
            .map(|c| ContextLimits {
                recent: c.recent.unwrap_or(5),
                max_files: c.max_files.unwrap_or(200),
                max_bytes: c.max_bytes.unwrap_or(32768),
            })
            .unwrap_or(ContextLimits { recent: 5, max_files: 200, max_bytes: 32768 });

        // [providers.*]
        let mut providers = BTreeMap::new();
        for (name, p) in raw.providers {
            let provider = self.provider(&name, p, &policy)?;
            providers.insert(name, provider);
        }

        // [critics.*]
        let mut critics = BTreeMap::new();
        for (name, c) in raw.critics {
            let span = c.span();
            let c = c.into_inner();
            if !providers.contains_key(&c.provider) {
                return Err(self.invalid(
                    span,
                    format!("critic {name:?} names provider {:?}, which is not configured", c.provider),
                    "add it under [providers]",
                ));
            }
            let weight = c.weight.unwrap_or(0.1);
            if !(0.0..=0.1).contains(&weight) {
                return Err(self.invalid(
                    span,
                    format!("critic {name:?} has weight {weight}, above the cap of 0.1"),
                    "critics are capped: set weight <= 0.1",
                ));
            }
            critics.insert(
                name.clone(),
                Critic { name, provider: c.provider, max_calls_per_day: c.max_calls_per_day.unwrap_or(20), weight },
            );
        }

        let loopkit = match raw.loopkit {
            None => None,
            Some(l) => Some(Loopkit {
                url: l.url,
                agent_key_env: l.agent_key_env.unwrap_or_else(|| "LOOPKIT_AGENT_KEY".into()),
                producer_key_env: l.producer_key_env.unwrap_or_else(|| "LOOPKIT_PRODUCER_KEY".into()),
                window: match l.window {
                    None => crate::loopkit::window::Window::default_window(),
                    Some(w) => crate::loopkit::window::Window::parse(w.get_ref())
                        .map_err(|e| self.invalid(w.span(), e.to_string(), "write the window as 30m, 24h or 7d"))?,
                },
            }),
        };

        // [agents]: checked by the agents module, which owns their meaning.
        let agents = crate::agents::policy::agents_rails(
            raw.agents.map(|a| (a.audience, a.self_serve, a.roles, a.writes_per_minute, a.operator_keys)),
            &gate.quorum,
        )
        .map_err(|(message, hint)| {
            let at = self.text.find("[agents]").or_else(|| self.text.find("[gate.quorum]")).unwrap_or(0);
            RailsError::Invalid { file: FILE.into(), line: line_of(self.text, at), message, hint }
        })?;

        Ok(Rails {
            version,
            paths: policy,
            budget,
            utility,
            checks,
            gate,
            selection,
            trust,
            watchdog,
            context,
            providers,
            critics,
            loopkit,
            agents,
        })
    }

    fn provider(&self, name: &str, p: Spanned<TomlProvider>, policy: &PathPolicy) -> Result<Provider, RailsError> {
        let span = p.span();
        let p = p.into_inner();
        let present: Vec<(&str, bool)> = vec![
            ("command", p.command.is_some()),
            ("url", p.url.is_some()),
            ("model", p.model.is_some()),
            ("num_ctx", p.num_ctx.is_some()),
            ("max_prompt_tokens", p.max_prompt_tokens.is_some()),
            ("max_output_tokens", p.max_output_tokens.is_some()),
            ("paid", p.paid.is_some()),
            ("api_key_env", p.api_key_env.is_some()),
            ("max_usd_per_day", p.max_usd_per_day.is_some()),
            ("max_calls_per_day", p.max_calls_per_day.is_some()),
            ("usd_per_1k_input", p.usd_per_1k_input.is_some()),
            ("usd_per_1k_output", p.usd_per_1k_output.is_some()),
            ("journal", p.journal.is_some()),
            ("network", p.network.is_some()),
            ("env", p.env.is_some()),
        ];
        let allowed: &[&str] = match p.kind.as_str() {
            "command" => &["command"],
            "human" => &[],
            "ollama" | "openai" => super::model::KEYS,
            "heartbeat" => &["journal"],
            "agent" => &["command", "network", "env", "max_usd_per_day", "max_calls_per_day"],
            other => {
                return Err(self.invalid(
                    span,
                    format!("provider {name:?} has unknown kind {other:?}"),
                    "use one of: command, agent, human, ollama, openai, heartbeat",
                ));
            }
        };
        if let Some((key, _)) = present.iter().find(|(k, set)| *set && !allowed.contains(k)) {
            return Err(self.invalid(
                span,
                format!("provider {name:?}: key `{key}` does not apply to kind {:?}", p.kind),
                if allowed.is_empty() {
                    "this kind takes no settings besides kind, enabled and timeout_s".to_string()
                } else {
                    format!("keys for this kind: {}", allowed.join(", "))
                },
            ));
        }
        let timeout_default = match p.kind.as_str() {
            "ollama" => 300,
            "human" => 3600,
            "heartbeat" => 30,
            _ => 600,
        };
        let timeout_s = p.timeout_s.unwrap_or(timeout_default);
        if timeout_s == 0 {
            return Err(self.invalid(
                span,
                format!("provider {name:?} has timeout_s = 0"),
                "give it at least one second",
            ));
        }
        let (kind, default_enabled) = match p.kind.as_str() {
            "command" => {
                let argv = p.command.unwrap_or_default();
                if argv.is_empty() || argv[0].trim().is_empty() {
                    return Err(self.invalid(
                        span,
                        format!("provider {name:?} of kind \"command\" needs a non-empty `command`"),
                        "set command = [\"program\", \"arg\"]",
                    ));
                }
                (ProviderKind::Command { argv }, true)
            }
            "human" => (ProviderKind::Human, true),
            "ollama" | "openai" => {
                let raw = super::model::RawEndpoint {
                    url: p.url,
                    model: p.model,
                    api_key_env: p.api_key_env,
                    num_ctx: p.num_ctx,
                    max_prompt_tokens: p.max_prompt_tokens,
                    max_output_tokens: p.max_output_tokens,
                    paid: p.paid,
                    enabled: p.enabled,
                    max_usd_per_day: p.max_usd_per_day,
                    max_calls_per_day: p.max_calls_per_day,
                    usd_per_1k_input: p.usd_per_1k_input,
                    usd_per_1k_output: p.usd_per_1k_output,
                };
                let (endpoint, enabled) = super::model::endpoint(name, &p.kind, raw)
                    .map_err(|r| self.invalid(span.clone(), r.message, r.hint))?;
                let kind = if p.kind == "ollama" {
                    ProviderKind::Ollama { endpoint }
                } else {
                    ProviderKind::OpenAi { endpoint }
                };
                (kind, enabled)
            }
            "heartbeat" => {
                let journal = p.journal.unwrap_or_else(|| "docs/ratchet-journal.md".into());
                match policy.classify(&journal) {
                    PathClass::Allowed(_) => {}
                    other => {
                        return Err(self.invalid(
                            span,
                            format!("the heartbeat journal {journal:?} is not a path patches may touch ({other:?})"),
                            "point journal at an allowlisted file such as docs/ratchet-journal.md",
                        ));
                    }
                }
                (ProviderKind::Heartbeat { journal }, true)
            }
            "agent" => {
                let argv = p.command.unwrap_or_default();
                if argv.is_empty() || argv[0].trim().is_empty() {
                    return Err(self.invalid(
                        span,
                        format!("provider {name:?} of kind \"agent\" needs a non-empty `command`"),
                        "set command = [\"claude\", \"-p\", \"{task}\", \"--output-format\", \"json\"], say",
                    ));
                }
                let env = p.env.unwrap_or_default();
                let is_name = |v: &str| {
                    v.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                };
                if let Some(bad) = env.iter().find(|v| !is_name(v)) {
                    return Err(self.invalid(
                        span,
                        format!("provider {name:?}: env entry {bad:?} is not an environment variable name"),
                        "list names only, such as env = [\"ANTHROPIC_API_KEY\"]",
                    ));
                }
                let caps = match (p.max_usd_per_day, p.max_calls_per_day) {
                    (None, None) => None,
                    (usd, calls) => {
                        if usd.is_some_and(|u| !u.is_finite() || u < 0.0) {
                            return Err(self.invalid(
                                span,
                                format!("provider {name:?}: max_usd_per_day must be a number of at least 0"),
                                "set max_usd_per_day = 2.0, say",
                            ));
                        }
                        Some(Caps {
                            max_usd_per_day: usd.unwrap_or(f64::INFINITY),
                            max_calls_per_day: calls.unwrap_or(u32::MAX),
                            usd_per_1k_input: 0.0,
                            usd_per_1k_output: 0.0,
                        })
                    }
                };
                (ProviderKind::Agent { argv, network: p.network.unwrap_or(false), env, caps }, true)
            }
            _ => unreachable!("kinds were checked above"),
        };
        Ok(Provider { name: name.to_string(), enabled: p.enabled.unwrap_or(default_enabled), kind, timeout_s })
    }
}

//! From the raw rails to [`Rails`]: one validator per table, in the order
//! a table may depend on another (`[paths]` before the tiers and the gate
//! that must lie inside it; `[[trust.tiers]]` before the gate's `min_tier`
//! and the providers' `tier`; the providers before the critics that name
//! them). What a table leaves out comes from the validated type's
//! [`Default`]; what it says is checked and refused with the line, the
//! offending text and the fix.
//!
//! The validators are methods of [`Validator`], which holds the text (to
//! turn a span into a line and a snippet) and the [`Place`] the rails are
//! for. This file holds the shared helpers and `[paths]`; `tables.rs`,
//! `ladder.rs` and `providers.rs` the rest.

use std::ops::Range;
use std::path::{Path, PathBuf};

use ::toml::Spanned;

use super::error::At;
use super::protected::{PatternSet, builtin_patterns};
use super::raw::{self, TomlPaths, TomlRails};
use super::*;

/// Where the rails are used, for the checks that need the disk: the
/// repository root, the workspace home and the user's home (`HOME`).
/// [`parse`] has none and checks only what the text alone can show.
#[derive(Clone, Debug, Default)]
pub struct Place {
    /// The home relative to the repository root (`""` or `ratchet`).
    pub home_rel: String,
    pub root: Option<PathBuf>,
    pub user_home: Option<PathBuf>,
}

impl Place {
    /// The place of `ws`, with `HOME` from the environment.
    pub fn of(ws: &Workspace) -> Place {
        Place {
            home_rel: ws.home_rel().to_string(),
            root: Some(ws.root().to_path_buf()),
            user_home: std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from),
        }
    }
}

/// Parses and validates the text of a `rails.toml` for a workspace whose
/// home is `home_rel`, from the text alone. Errors name
/// `config/rails.toml`; [`Rails::load`] renames them for a sub-folder home.
pub fn parse(text: &str, home_rel: &str) -> Result<Rails, RailsError> {
    parse_in(text, &Place { home_rel: home_rel.to_string(), ..Place::default() })
}

/// [`parse`], also checking the paths the rails name against `place`.
pub fn parse_in(text: &str, place: &Place) -> Result<Rails, RailsError> {
    let raw = raw::read(text)?;
    Validator { text, place }.rails(raw)
}

pub(super) struct Validator<'a> {
    pub text: &'a str,
    pub place: &'a Place,
}

impl Validator<'_> {
    /// A refusal at `span` of the text.
    pub fn invalid(&self, span: Range<usize>, message: impl Into<String>, hint: impl Into<String>) -> RailsError {
        let at = At::of(self.text, span, "here");
        RailsError::Invalid {
            file: raw::FILE.into(),
            line: at.line,
            message: message.into(),
            hint: hint.into(),
            at: Some(at),
        }
    }

    /// The span of the first line that starts with `needle` (a table
    /// header), for tables whose raw form has no span of its own.
    pub fn header(&self, needle: &str) -> Range<usize> {
        let mut offset = 0;
        for line in self.text.split_inclusive('\n') {
            if line.trim_start().starts_with(needle) {
                let start = offset + (line.len() - line.trim_start().len());
                return start..start + needle.len();
            }
            offset += line.len();
        }
        0..0
    }

    pub fn patterns(
        &self,
        list: &[Spanned<String>],
        case_insensitive: bool,
        what: &str,
    ) -> Result<PatternSet, RailsError> {
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
    pub fn inside_allowlist(
        &self,
        patterns: &[Spanned<String>],
        allow: &PatternSet,
        what: &str,
    ) -> Result<(), RailsError> {
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

    /// Names of environment variables (`env = [...]` of the checks or a
    /// provider): each a portable name; when `secrets` is false, none that
    /// looks like it holds a secret.
    pub fn env_names(&self, list: &[Spanned<String>], what: &str, secrets: bool) -> Result<Vec<String>, RailsError> {
        let mut out: Vec<String> = Vec::new();
        for n in list {
            let name = n.get_ref();
            let portable = !name.is_empty()
                && name.len() <= 128
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !portable {
                return Err(self.invalid(
                    n.span(),
                    format!("{what} env: {:?} is not an environment variable name", crate::text::show(name)),
                    "write names of letters, digits and _ that do not start with a digit, such as \"CARGO_HOME\"",
                ));
            }
            if !secrets && crate::sandbox::looks_secret(name) {
                return Err(RailsError::SecretToChecks {
                    file: raw::FILE.into(),
                    line: At::of(self.text, n.span(), "").line,
                    name: name.clone(),
                    at: Some(At::of(self.text, n.span(), "looks like a secret")),
                });
            }
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
        Ok(out)
    }

    pub fn rails(&self, raw: TomlRails) -> Result<Rails, RailsError> {
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
        let paths = self.paths(raw.paths)?;
        let budget = self.budget(raw.budget)?;
        let utility = self.utility(raw.utility)?;
        let checks = self.checks(raw.checks)?;
        let sandbox = self.sandbox(raw.sandbox)?;
        let mut trust = self.trust(raw.trust, &paths, &checks)?;
        let gate = self.gate(raw.gate, &paths, &trust)?;
        let selection = self.selection(raw.selection)?;
        let watchdog = self.watchdog(raw.watchdog);
        let context = self.context(raw.context);
        let providers = self.providers(raw.providers, &paths, &mut trust)?;
        let critics = self.critics(raw.critics, &providers)?;
        let loopkit = self.loopkit(raw.loopkit)?;
        let agents = self.agents(raw.agents, &gate.quorum)?;
        Ok(Rails {
            version,
            paths,
            budget,
            utility,
            checks,
            sandbox,
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

    /// `[paths]`: a non-empty allowlist, a denylist, and the built-in
    /// protected set, which always wins.
    fn paths(&self, raw: Spanned<TomlPaths>) -> Result<PathPolicy, RailsError> {
        let span = raw.span();
        let paths = raw.into_inner();
        if paths.allow.is_empty() {
            return Err(self.invalid(
                span,
                "[paths] allow is empty, so no patch could ever apply",
                "list the paths the loop may change, for example allow = [\"docs/**\", \"*.md\"]",
            ));
        }
        let allow = self.patterns(&paths.allow, false, "[paths] allow")?;
        let deny = self.patterns(&paths.deny, true, "[paths] deny")?;
        let protected = PatternSet::new(&builtin_patterns(&self.place.home_rel), true)
            .expect("the built-in protected patterns are valid globs");
        Ok(PathPolicy { protected, deny, allow })
    }

    /// The directories no extra writable path may be, hold, or lie in:
    /// the repository's `.git` and the home's protected directories (when
    /// the place is known), and the user's secrets (`~/.ssh`, ...).
    pub fn unwritable(&self) -> Vec<(PathBuf, String)> {
        let mut out: Vec<(PathBuf, String)> = Vec::new();
        if let Some(root) = &self.place.root {
            let home = root.join(&self.place.home_rel);
            out.push((root.join(".git"), "the repository's .git".into()));
            for dir in ["config", "intents", "golden", "logs", ".ratchet"] {
                out.push((home.join(dir), format!("the workspace's {dir}/")));
            }
        }
        for secret in crate::sandbox::DEFAULT_SECRETS {
            out.push((Path::new("~").join(secret), format!("the secret ~/{secret}")));
            if let Some(h) = &self.place.user_home {
                out.push((h.join(secret), format!("the secret ~/{secret}")));
            }
        }
        out
    }
}

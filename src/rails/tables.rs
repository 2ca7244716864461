//! The validators of the tables that set limits: `[budget]`, `[utility]`,
//! `[checks]`, `[sandbox]`, `[selection]`, `[watchdog]`, `[context]`,
//! `[loopkit]` and `[agents]`. Each starts from its type's [`Default`] and
//! takes what the file says, refusing what cannot hold.

use std::path::{Component, Path, PathBuf};

use ::toml::Spanned;

use super::error::At;
use super::raw::{self, TomlAgents, TomlBudget, TomlChecks, TomlContext, TomlLoopkit, TomlSandbox};
use super::raw::{TomlSelection, TomlUtility, TomlWatchdog};
use super::validate::Validator;
use super::*;

impl Validator<'_> {
    /// `[budget]`: every limit at least 1, and one file per step.
    pub(super) fn budget(&self, raw: Option<TomlBudget>) -> Result<Budget, RailsError> {
        let mut budget = Budget::default();
        let Some(b) = raw else { return Ok(budget) };
        for (field, value) in [("max_lines", &b.max_lines), ("max_bytes", &b.max_bytes), ("max_files", &b.max_files)] {
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
        budget.max_lines = b.max_lines.map_or(budget.max_lines, Spanned::into_inner);
        budget.max_bytes = b.max_bytes.map_or(budget.max_bytes, Spanned::into_inner);
        Ok(budget)
    }

    /// `[utility]`: six weights in [0, 1] that sum to 1 (within 1e-9).
    pub(super) fn utility(&self, raw: Option<Spanned<TomlUtility>>) -> Result<Utility, RailsError> {
        let Some(u) = raw else { return Ok(Utility::default()) };
        let span = u.span();
        let u = u.into_inner();
        let weights = crate::score::Weights {
            ci_pass: u.ci_pass,
            path_ok: u.path_ok,
            diff_ratio: u.diff_ratio,
            atomic_ok: u.atomic_ok,
            left_next_steps: u.left_next_steps,
            human_score: u.human_score,
        };
        for (name, w) in [
            ("ci_pass", u.ci_pass),
            ("path_ok", u.path_ok),
            ("diff_ratio", u.diff_ratio),
            ("atomic_ok", u.atomic_ok),
            ("left_next_steps", u.left_next_steps),
            ("human_score", u.human_score),
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
        let d = Utility::default();
        let revert_window_hours = u.revert_window_hours.unwrap_or(d.revert_window_hours);
        let revert_cap = u.revert_cap.unwrap_or(d.revert_cap);
        if !(0.0..=1.0).contains(&revert_cap) || revert_window_hours < 0.0 || !revert_window_hours.is_finite() {
            return Err(self.invalid(
                span,
                "[utility] revert_cap must lie in [0, 1] and revert_window_hours be a non-negative number",
                "the seed values are revert_window_hours = 24, revert_cap = 0.2",
            ));
        }
        Ok(Utility { weights, revert_window_hours, revert_cap })
    }

    /// `[checks]`: a command, a timeout of at least a second, the network
    /// (off unless asked for), and the environment names passed, none secret.
    pub(super) fn checks(&self, raw: Option<TomlChecks>) -> Result<Checks, RailsError> {
        let mut checks = Checks::default();
        let Some(c) = raw else { return Ok(checks) };
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
                return Err(self.invalid(t.span(), "[checks] timeout_s is 0", "give the checks at least one second"));
            }
            checks.timeout_s = t.into_inner();
        }
        checks.network = c.network.unwrap_or(checks.network);
        checks.env = self.env_names(c.env.as_deref().unwrap_or_default(), "[checks]", false)?;
        Ok(checks)
    }

    /// `[sandbox]`: the mode, and the extra writable paths, each absolute
    /// or under `~/`, none that is, holds or lies in a protected place.
    pub(super) fn sandbox(&self, raw: Option<TomlSandbox>) -> Result<Sandbox, RailsError> {
        let mut sandbox = Sandbox::default();
        let Some(s) = raw else { return Ok(sandbox) };
        if let Some(m) = s.mode {
            sandbox.mode = match m.get_ref().as_str() {
                "on" => crate::sandbox::Mode::On,
                "off" => crate::sandbox::Mode::Off,
                other => {
                    return Err(self.invalid(
                        m.span(),
                        format!("[sandbox] mode {:?} is not known", crate::text::show(other)),
                        "use mode = \"on\" (the default) or mode = \"off\" to run children unconfined, knowingly",
                    ));
                }
            };
        }
        for p in s.writable.unwrap_or_default() {
            let path = self.writable(&p)?;
            if !sandbox.writable.contains(&path) {
                sandbox.writable.push(path);
            }
        }
        Ok(sandbox)
    }

    fn writable(&self, p: &Spanned<String>) -> Result<PathBuf, RailsError> {
        let written = p.get_ref();
        let refuse = |reason: String| {
            let at = At::of(self.text, p.span(), "not writable");
            RailsError::Unwritable {
                file: raw::FILE.into(),
                line: at.line,
                path: crate::text::show(written),
                reason,
                at: Some(at),
            }
        };
        let path = Path::new(written);
        let tilde = written == "~" || written.starts_with("~/");
        if !(path.is_absolute() || tilde) {
            return Err(self.invalid(
                p.span(),
                format!("[sandbox] writable {:?} is neither absolute nor under ~/", crate::text::show(written)),
                "write an absolute path (\"/var/cache/build\") or one under your home (\"~/.cache/pip\")",
            ));
        }
        if path.components().any(|c| matches!(c, Component::ParentDir | Component::CurDir)) || written.contains('\0') {
            return Err(refuse("has a `.` or `..` part, so it does not say plainly where it is".into()));
        }
        let path: PathBuf = path.components().collect();
        if path == Path::new("/") || path == Path::new("~") {
            return Err(refuse("is a whole file system or home, which holds ratchet's files and secrets".into()));
        }
        let home = self.place.user_home.as_deref();
        let expanded = match path.strip_prefix("~") {
            Ok(rest) => home.map(|h| h.join(rest)),
            Err(_) => Some(path.clone()),
        };
        if let (Some(h), Some(e)) = (home, &expanded) {
            if h.starts_with(e) {
                return Err(refuse("holds your home directory, with ratchet's files and secrets".into()));
            }
        }
        for (dir, what) in self.unwritable() {
            let candidates = [Some(path.clone()), expanded.clone(), expanded.as_deref().map(resolved)];
            for c in candidates.iter().flatten() {
                let dirs = [dir.clone(), resolved(&dir)];
                if dirs.iter().any(|d| d.starts_with(c) || c.starts_with(d)) {
                    let relation = if dirs.iter().any(|d| c.starts_with(d)) { "lies in" } else { "holds" };
                    return Err(refuse(format!("{relation} {what}")));
                }
            }
        }
        Ok(path)
    }

    /// `[selection]`: Thompson sampling with its floors.
    pub(super) fn selection(&self, raw: Option<Spanned<TomlSelection>>) -> Result<Selection, RailsError> {
        let mut selection = Selection::default();
        let Some(s) = raw else { return Ok(selection) };
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
        Ok(selection)
    }

    pub(super) fn watchdog(&self, raw: Option<TomlWatchdog>) -> Watchdog {
        let d = Watchdog::default();
        raw.map_or(d, |w| Watchdog {
            max_steps_without_merge: w.max_steps_without_merge.unwrap_or(d.max_steps_without_merge),
            max_hours_without_merge: w.max_hours_without_merge.unwrap_or(d.max_hours_without_merge),
        })
    }

    pub(super) fn context(&self, raw: Option<TomlContext>) -> ContextLimits {
        let d = ContextLimits::default();
        raw.map_or(d, |c| ContextLimits {
            recent: c.recent.unwrap_or(d.recent),
            max_files: c.max_files.unwrap_or(d.max_files),
            max_bytes: c.max_bytes.unwrap_or(d.max_bytes),
        })
    }

    pub(super) fn loopkit(&self, raw: Option<TomlLoopkit>) -> Result<Option<Loopkit>, RailsError> {
        let Some(l) = raw else { return Ok(None) };
        Ok(Some(Loopkit {
            url: l.url,
            agent_key_env: l.agent_key_env.unwrap_or_else(|| "LOOPKIT_AGENT_KEY".into()),
            producer_key_env: l.producer_key_env.unwrap_or_else(|| "LOOPKIT_PRODUCER_KEY".into()),
            window: match l.window {
                None => crate::loopkit::window::Window::default_window(),
                Some(w) => crate::loopkit::window::Window::parse(w.get_ref())
                    .map_err(|e| self.invalid(w.span(), e.to_string(), "write the window as 30m, 24h or 7d"))?,
            },
        }))
    }

    /// `[agents]`: checked by the agents module, which owns their meaning.
    pub(super) fn agents(&self, raw: Option<Spanned<TomlAgents>>, quorum: &Quorum) -> Result<Agents, RailsError> {
        let span = raw.as_ref().map(|a| a.span());
        crate::agents::policy::agents_rails(
            raw.map(Spanned::into_inner)
                .map(|a| (a.audience, a.self_serve, a.roles, a.writes_per_minute, a.operator_keys)),
            quorum,
        )
        .map_err(|(message, hint)| {
            let at = span.unwrap_or_else(|| self.header("[gate.quorum]"));
            self.invalid(at, message, hint)
        })
    }
}

/// `path` with its longest existing prefix resolved (symlinks followed),
/// so that a link to `.git` is seen as `.git`.
fn resolved(path: &Path) -> PathBuf {
    if !path.is_absolute() {
        return path.to_path_buf();
    }
    let mut existing = path.to_path_buf();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            return rest.iter().rev().fold(real, |acc, part| acc.join(part));
        }
        match (existing.file_name().map(|n| n.to_os_string()), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

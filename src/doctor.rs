//! `ratchet doctor`: whether a workspace will work, before the first step.
//!
//! Each check says what it looked at and, when it found a problem, what to
//! do about it. Nothing here writes to the repository, the log or the
//! database; asking the providers (`--providers`) runs them as a step
//! would (in the sandbox), against the current context, and keeps nothing
//! they answer.
//!
//! | check | a problem when |
//! |---|---|
//! | `rails` | `config/rails.toml` does not parse, differs from its lock, or the lock is not the version the log last recorded |
//! | `intent` | there is no current intent |
//! | `log` | `ratchet log verify` would not call the log sound |
//! | `private state` | the private directory (keys, the second checkpoint) cannot be made |
//! | `tree` | allowlisted paths have uncommitted changes (the next step stops with `DIRTY_TREE`) |
//! | `checks` | the checks command does not resolve on the `PATH` cron gives (`/usr/bin:/bin`), or is `true` (every patch "passes") |
//! | `sandbox` | the kernel cannot confine children and the rails do not turn the sandbox off |
//! | `provider NAME` | an enabled provider cannot be asked (not executable, no terminal for `human`); with `--providers`, it does not answer |
//! | `loopkit` | `[loopkit]` is configured but the server cannot be read with the key |

use serde::Serialize;

use crate::history::History;
use crate::journal::Journal;
use crate::propose::provider::{self, Surroundings};
use crate::rails::{PathClass, ProviderKind, Rails};
use crate::workspace::Workspace;

/// The `PATH` cron runs commands with (Vixie cron and cronie alike).
pub const CRON_PATH: &str = "/usr/bin:/bin";

/// One thing the doctor looked at.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// What was found, in a sentence.
    pub detail: String,
    /// What to do, when not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check { name: name.into(), ok: true, detail: detail.into(), hint: None }
    }

    fn problem(name: impl Into<String>, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check { name: name.into(), ok: false, detail: detail.into(), hint: Some(hint.into()) }
    }
}

/// What to look at.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Ask every enabled provider for a proposal against the current context.
    pub ask_providers: bool,
}

/// Looks at `ws` and says what will and will not work.
pub fn examine(ws: &Workspace, opts: Options) -> Vec<Check> {
    let mut out = Vec::new();
    let rails = match Rails::load(ws) {
        Ok(r) => Some(r),
        Err(e) => {
            out.push(problem_of("rails", &e));
            None
        }
    };
    let journal = Journal::open(ws);
    let history = match &journal {
        Ok(j) => History::read(j).unwrap_or_default(),
        Err(_) => History::default(),
    };
    if rails.is_some() {
        match crate::rails::check(ws) {
            Ok(lock) => match history.last_rails() {
                Some(logged) if logged != lock.version() => out.push(Check::problem(
                    "rails",
                    format!(
                        "config/rails.lock names version {}, the log last recorded {}",
                        short(&lock.version()),
                        short(logged)
                    ),
                    "restore config/ from git and review it with `ratchet rails diff`; rails change only through `ratchet rails accept`",
                )),
                _ => out.push(Check::ok("rails", format!("valid, locked at version {}", short(&lock.version())))),
            },
            Err(e) => out.push(problem_of("rails", &e)),
        }
    }
    match crate::intent::current(ws) {
        Ok(i) => out.push(Check::ok("intent", format!("{} ({})", i.name, short(&i.hash)))),
        Err(e) => out.push(problem_of("intent", &e)),
    }
    match journal
        .as_ref()
        .map_err(|e| e.to_string())
        .and_then(|_| crate::journal::verify(ws).map_err(|e| e.to_string()))
    {
        Ok(report) if report.ok() => out.push(Check::ok(
            "log",
            format!("{} entries verify, {} step commits cross-checked", report.entries, report.commits_checked),
        )),
        Ok(report) => {
            let bad = report.first_bad.as_ref().map(|b| format!("{}: {}", b.code, b.reason)).unwrap_or_default();
            out.push(Check::problem("log", bad, "run `ratchet log verify` for the first bad line"));
        }
        Err(e) => out.push(Check::problem("log", e, "run `ratchet log verify`")),
    }
    match crate::private::Private::of(ws) {
        Some(p) => match p.key() {
            Ok(_) => out.push(Check::ok("private state", p.dir().display().to_string())),
            Err(e) => out.push(Check::problem(
                "private state",
                format!("{}: {e}", p.dir().display()),
                "make $XDG_STATE_HOME (or ~/.local/state) writable by you",
            )),
        },
        None => out.push(Check::problem(
            "private state",
            "neither $XDG_STATE_HOME nor $HOME is set: checkpoints are not keyed and the crash journal is unauthenticated",
            "set HOME (cron does), or XDG_STATE_HOME",
        )),
    }
    let Some(rails) = rails else { return out };
    out.push(tree(ws, &rails));
    out.push(sandbox(ws, &rails));
    out.push(checks(ws, &rails));
    out.extend(providers(ws, &rails, &history, opts));
    if let Some(lk) = &rails.loopkit {
        out.push(match crate::loopkit::client::top_pain(&rails, ws) {
            Ok(_) => Check::ok("loopkit", format!("{} answers with the agent key", lk.url)),
            Err(e) => problem_of("loopkit", &e),
        });
    }
    out
}

fn short(hash: &str) -> &str {
    &hash[..12.min(hash.len())]
}

fn problem_of(name: &str, e: &dyn crate::error::Coded) -> Check {
    Check {
        name: name.into(),
        ok: false,
        detail: format!("{} [{}]", e, e.code()),
        hint: Some(e.hint().unwrap_or_else(|| "see docs/errors.md".into())),
    }
}

/// Whether the checks' sandbox can be made here: a real trial, `true` run
/// under the checks' policy.
fn sandbox(ws: &Workspace, rails: &Rails) -> Check {
    let policy = crate::sandbox::Policy::for_checks(ws, rails);
    if policy.mode == crate::sandbox::Mode::Off {
        return Check::ok("sandbox", "off: children run unconfined, as `[sandbox] mode = \"off\"` in the rails says");
    }
    let mut cmd = std::process::Command::new("true");
    cmd.current_dir(ws.root());
    let mut confined = match policy.confine(cmd) {
        Ok(c) => c,
        Err(e) => return problem_of("sandbox", &e),
    };
    match crate::process::run_captured(&mut confined, b"", std::time::Duration::from_secs(10), 4096) {
        Ok(r) if r.ended.success() => Check::ok("sandbox", confined.enforced().to_string()),
        Ok(r) => Check::problem(
            "sandbox",
            format!("a trial child (`true`) in the sandbox ended {:?}", r.ended),
            "run `ratchet doctor` again; if it persists, set `[sandbox] mode = \"off\"` knowingly",
        ),
        Err(e) => match crate::sandbox::SandboxError::of(&e) {
            Some(inner) => problem_of("sandbox", inner),
            None => {
                Check::problem("sandbox", format!("cannot start a trial child: {e}"), "check that `true` is on PATH")
            }
        },
    }
}

fn tree(ws: &Workspace, rails: &Rails) -> Check {
    let status = match ws.repo().and_then(|r| r.status()) {
        Ok(s) => s,
        Err(e) => return problem_of("tree", &e),
    };
    let dirty: Vec<&String> =
        status.keys().filter(|p| matches!(rails.paths.classify(p), PathClass::Allowed(_))).collect();
    if dirty.is_empty() {
        Check::ok("tree", "no uncommitted changes in allowlisted paths")
    } else {
        Check::problem(
            "tree",
            format!(
                "uncommitted changes in allowlisted paths: {}",
                dirty.iter().take(5).map(|p| crate::text::show(p)).collect::<Vec<_>>().join(", ")
            ),
            "commit or stash them; the next step stops with DIRTY_TREE",
        )
    }
}

fn checks(ws: &Workspace, rails: &Rails) -> Check {
    let command = rails.checks.command.trim();
    if command == "true" || command == ":" {
        return Check::problem(
            "checks",
            "[checks] command is `true`: every patch \"passes\" its checks",
            "set [checks] command to your test command (cargo test, npm test, pytest ...)",
        );
    }
    let first = command.split_whitespace().next().unwrap_or_default();
    let shell_word = first.contains('=') || first.starts_with(['(', '{', '!']);
    if shell_word {
        return Check::ok("checks", format!("`{command}` (a shell line)"));
    }
    match crate::process::find_program_on(first, ws.root(), std::ffi::OsStr::new(CRON_PATH)) {
        Some(p) => Check::ok("checks", format!("`{command}`: {first} is {} on cron's PATH", p.display())),
        None => match crate::process::find_program(first, ws.root()) {
            Some(p) => Check::problem(
                "checks",
                format!("`{first}` is {} on your PATH, but not on cron's ({CRON_PATH})", p.display()),
                format!("write its full path in [checks] command ({}), or put PATH=... in your crontab", p.display()),
            ),
            None => Check::problem(
                "checks",
                format!("`{first}` is not an executable program here"),
                "fix [checks] command in config/rails.toml (then `ratchet rails accept`)",
            ),
        },
    }
}

fn providers(ws: &Workspace, rails: &Rails, history: &History, opts: Options) -> Vec<Check> {
    let mut out = Vec::new();
    let env = Surroundings {
        root: ws.root().to_path_buf(),
        interactive: false,
        patch_file: None,
        step_id: "doctor".into(),
        cancel: Default::default(),
        allowance: None,
        sandbox: crate::sandbox::Policy::for_rails(ws, rails),
        workspace: None,
    };
    for cfg in crate::propose::provider::roster::configured(rails) {
        let name = format!("provider {}", cfg.name);
        if !cfg.enabled {
            out.push(Check::ok(name, "disabled (enabled = false)"));
            continue;
        }
        if matches!(cfg.kind, ProviderKind::Human) {
            out.push(Check::ok(name, "a person at a terminal (`ratchet step --provider human`)"));
            continue;
        }
        let p = provider::from_config(&cfg);
        if let Err(why) = p.availability(&env) {
            out.push(Check::problem(name, why, "fix its [providers] entry in config/rails.toml"));
            continue;
        }
        if !opts.ask_providers || matches!(cfg.kind, ProviderKind::Heartbeat { .. }) {
            out.push(Check::ok(name, format!("{} provider, ready", cfg.kind.name())));
            continue;
        }
        let tier = crate::trust::tier_of(history, &rails.trust, &cfg.name);
        let intent = match crate::intent::current(ws) {
            Ok(i) => i,
            Err(e) => {
                out.push(problem_of(&name, &e));
                continue;
            }
        };
        let (focus, _) = crate::step::focus_for(history, &intent, Ok(None));
        let repo = match ws.repo() {
            Ok(r) => r,
            Err(e) => {
                out.push(problem_of(&name, &e));
                continue;
            }
        };
        let tracked = repo.tracked_paths().unwrap_or_default();
        let tracked: Vec<&str> = tracked.iter().map(String::as_str).collect();
        let ctx = crate::propose::context::build(crate::propose::context::Inputs {
            rails,
            intent: &intent,
            history,
            focus,
            provider: &cfg.name,
            tier,
            base: repo.head_commit(),
            tracked: &tracked,
            root: ws.root(),
        });
        out.push(match p.propose(&ctx, &env) {
            Ok(provider::Answer::Proposal { value, .. }) => match crate::propose::Proposal::from_value(&value) {
                Ok(pr) => Check::ok(
                    name,
                    format!(
                        "answered a proposal ({} {})",
                        pr.patches.first().map(|x| x.op().as_str()).unwrap_or("?"),
                        crate::text::show(pr.patches.first().map(|x| x.path()).unwrap_or("?"))
                    ),
                ),
                Err(e) => Check::problem(
                    name,
                    format!("answered, but not a proposal: {e}"),
                    "print {\"rationale\", \"patch\": {\"op\", \"path\", ...}, \"next_steps\"} on stdout (see the README)",
                ),
            },
            Ok(provider::Answer::Noop { reason }) => {
                Check::ok(name, format!("answered noop: {}", crate::text::show(&reason)))
            }
            Err(f) => Check::problem(name, crate::text::show(&f.to_string()), "run it by hand with `ratchet context --json | <command>`"),
        });
    }
    out
}

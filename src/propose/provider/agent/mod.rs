//! `agent`: any file-editing coding agent as a provider — Claude Code,
//! Codex CLI, aider, gptme, or a script (DESIGN §6, issue 11).
//!
//! An agent edits files in place instead of printing a proposal, so it
//! never works in the user's tree. For each step:
//!
//! 1. A scratch place is made ([`scratch`]): outside the work tree, under
//!    the state home, holding the task, the full context and an empty
//!    directory on which the agent's sandbox mounts an overlay of the work
//!    tree — every file visible, every write landing in the place's
//!    `upper/`. The base commit is the work tree's `HEAD` (the step has
//!    checked that the allowlisted paths are clean).
//! 2. The agent runs there, confined by [`crate::sandbox`]: its working
//!    directory is the overlay, the only writable paths are the overlay and
//!    a fresh HOME in the scratch place (plus the sandbox's private `/tmp`);
//!    the user's tree, its `.git`, ratchet's `.ratchet/` and private state
//!    are read-only or hidden; no network unless `network = true`; only the
//!    environment variables named in `env` besides the safe set. The
//!    command's `{task}` becomes the task text and `{context}` the context
//!    file's path (also `RATCHET_TASK_FILE` and `RATCHET_CONTEXT_FILE`).
//! 3. When it exits, what it changed is read from `upper/` and compared
//!    with the base commit ([`changes`]) — never from the scratch `.git`,
//!    which the agent may commit to or rewrite harmlessly (it is the
//!    overlay's copy). Nothing changed: a noop. Otherwise the changes become
//!    the proposal's patch (several: an array, which Gate 1 refuses as not
//!    atomic), with the agent's final message as the rationale and its
//!    reported usage as the cost ([`report`]).
//! 4. The scratch place is removed, whatever happened: on return, on
//!    timeout (the sandbox's PID namespace takes every process of the agent
//!    with it), and after a `kill -9` of ratchet by the next loop command
//!    ([`sweep`], from the session).
//!
//! The overlay needs the sandbox's mount namespace, so this kind runs only
//! confined: where the sandbox is unavailable the provider is
//! `unavailable`, never run unconfined.

mod changes;
mod report;
mod scratch;

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Duration;

use super::{Answer, Failure, Provider, Surroundings};
use crate::process::run_captured;
use crate::propose::context::Context;
use crate::record::Cost;
use crate::sandbox::{Enforced, Policy, SandboxError};
use crate::workspace::Workspace;

pub use changes::{Change, MAX_ENTRIES, MAX_FILE_BYTES};
pub use report::Report;
pub use scratch::{Scratch, sweep};

/// The most of the agent's stdout read.
pub const MAX_OUTPUT_BYTES: usize = 4 * 1024 * 1024;

/// A configured `[providers.NAME] kind = "agent"`.
pub struct Agent {
    name: String,
    argv: Vec<String>,
    network: bool,
    env: Vec<String>,
    timeout_s: u64,
    spent: RefCell<Cost>,
    ran_under: RefCell<Option<Enforced>>,
}

impl Agent {
    pub fn new(name: &str, argv: Vec<String>, network: bool, env: Vec<String>, timeout_s: u64) -> Agent {
        Agent {
            name: name.to_string(),
            argv,
            network,
            env,
            timeout_s,
            spent: RefCell::default(),
            ran_under: RefCell::default(),
        }
    }

    fn run(&self, context: &Context, env: &Surroundings) -> Result<Answer, Failure> {
        let unavailable = |reason: String| Failure::Unavailable { reason };
        let ws = env.workspace.as_ref().ok_or_else(|| unavailable("the agent kind runs only in a step".into()))?;
        self.availability(env).map_err(unavailable)?;
        if let Some(a) = &env.allowance {
            if a.calls == Some(0) || a.usd.is_some_and(|u| u <= 0.0) {
                return Err(Failure::OverBudget { reason: "the daily cap of this agent is reached".into() });
            }
        }
        let root = scratch::root(ws)
            .ok_or_else(|| unavailable("no place for the scratch tree: set $HOME or $XDG_STATE_HOME".into()))?;
        let place = Scratch::create(&root, &env.step_id)
            .map_err(|e| unavailable(format!("cannot make the scratch place under {}: {e}", root.display())))?;
        crate::timing::mark("agent scratch");

        let task = task_text(context, &place);
        let write = |path: PathBuf, bytes: &[u8]| {
            std::fs::write(&path, bytes).map_err(|e| unavailable(format!("cannot write {}: {e}", path.display())))
        };
        write(place.task_file(), task.as_bytes())?;
        write(place.context_file(), &serde_json::to_vec_pretty(context).expect("the context always serialises"))?;

        let confined = policy(ws, &place, self.network, &self.env)
            .confine(self.command(env, &place, &task))
            .map_err(|e| unavailable(sandbox_reason(&e)))?;
        *self.ran_under.borrow_mut() = Some(confined.enforced().clone());
        let run = run_captured(confined, b"", Duration::from_secs(self.timeout_s), MAX_OUTPUT_BYTES).map_err(|e| {
            let reason = match SandboxError::of(&e) {
                Some(s) => sandbox_reason(s),
                None => format!("cannot start {}: {e}", self.argv[0]),
            };
            unavailable(reason)
        })?;
        crate::timing::mark("agent ran");
        super::ended_ok(&self.argv[0], &run, self.timeout_s)?;
        let report = report::read(&String::from_utf8_lossy(&run.stdout));
        if let Some(cost) = &report.cost {
            *self.spent.borrow_mut() = cost.clone();
        }
        if let Some(error) = report.error {
            return Err(Failure::InvalidOutput { reason: format!("the agent reported a failure: {error}") });
        }

        let repo = crate::git::Repo::discover(ws.root())
            .map_err(|e| unavailable(format!("cannot open the repository: {e}")))?;
        let base = context.base.as_deref();
        let found = changes::read(&place.upper(), &repo, base).map_err(|reason| Failure::InvalidOutput { reason })?;
        if found.is_empty() {
            let said = crate::text::one_paragraph(&report.message);
            let reason = if said.is_empty() {
                "the agent changed no file".to_string()
            } else {
                format!("the agent changed no file: {said}")
            };
            return Ok(Answer::Noop { reason });
        }
        let mut patches = Vec::new();
        for change in &found {
            let blob = repo.file_at(base, change.path()).map_err(|e| unavailable(e.to_string()))?;
            patches.push(changes::patch(change, blob.as_ref()));
        }
        let patch = match patches.len() {
            1 => patches.remove(0),
            _ => serde_json::Value::Array(patches),
        };
        let value = serde_json::json!({
            "rationale": report.message,
            "patch": patch,
            "next_steps": [],
            "focus": context.focus.reference,
            "evidence": [],
        });
        Ok(Answer::Proposal { value, cost: report.cost.unwrap_or_default() })
    }

    /// The command: `{task}` and `{context}` replaced, run in the overlay.
    fn command(&self, env: &Surroundings, place: &Scratch, task: &str) -> std::process::Command {
        let context = place.context_file().display().to_string();
        let fill = |arg: &String| arg.replace("{task}", task).replace("{context}", &context);
        let program = &self.argv[0];
        // A relative program is the repository's own, seen through the overlay.
        let program = if program.contains('/') { place.tree().join(program) } else { PathBuf::from(program) };
        let mut cmd = std::process::Command::new(program);
        cmd.args(self.argv[1..].iter().map(fill))
            .current_dir(place.tree())
            .env("HOME", place.home())
            .env("RATCHET_STEP_ID", &env.step_id)
            .env("RATCHET_PROVIDER", &self.name)
            .env("RATCHET_TASK_FILE", place.task_file())
            .env("RATCHET_CONTEXT_FILE", place.context_file());
        cmd
    }
}

/// What the agent may touch: see the module doc.
fn policy(ws: &Workspace, place: &Scratch, network: bool, env: &[String]) -> Policy {
    let tree = place.tree();
    let mut hidden = vec![ws.state_dir(), tree.join(ws.home_rel()).join(".ratchet")];
    if let Some(private) = crate::private::Private::of(ws) {
        if let Some(all) = private.dir().parent() {
            hidden.push(all.to_path_buf());
        }
    }
    Policy::new(&tree)
        .overlay(ws.root(), place.upper(), place.work())
        .writable([place.home()])
        .readable([place.task_file(), place.context_file()])
        .hide(hidden)
        .network(network)
        .env(env.iter().cloned())
}

fn sandbox_reason(e: &SandboxError) -> String {
    use crate::error::Coded;
    match e.hint() {
        Some(hint) => format!("{e} [{}]; {hint}", e.code()),
        None => format!("{e} [{}]", e.code()),
    }
}

/// The task the agent is given: what to do and the rails that bind it.
fn task_text(c: &Context, place: &Scratch) -> String {
    let r = &c.rails;
    let tier = match &r.tier {
        Some(t) => format!("your trust tier is {t:?}: you may change only {}", r.tier_paths.join(", ")),
        None => "any allowlisted path is open to you".to_string(),
    };
    format!(
        "You are working in a scratch copy of a git repository (base commit {base}). \
Make one small, self-contained improvement toward the focus below by editing exactly ONE file. \
ratchet turns your edit into a proposal, checks it against the rails, and a human reviews it.\n\n\
Focus ({focus_ref}): {focus}\n\n\
Intent ({intent_name}):\n{intent}\n\n\
Rails:\n\
- change exactly one file, among: {allow}; {tier}\n\
- at most {max_lines} lines added plus removed; the file at most {max_bytes} bytes\n\
- do not delete, rename, chmod or symlink anything; leave config/, intents/, golden/ and logs/ alone\n\
- commits are fine but ignored: ratchet reads the files you changed, not your history\n\n\
When you are done, reply with two or three sentences saying what you changed and why: \
your reply becomes the proposal's rationale.\n\n\
The full context (recent cycles, a ranked file index, the focused files) is in {context}.\n",
        base = c.base.as_deref().unwrap_or("none: an empty repository"),
        focus_ref = c.focus.reference,
        focus = c.focus.text,
        intent_name = c.intent.name,
        intent = c.intent.text.trim(),
        allow = r.allow.join(", "),
        max_lines = r.max_lines,
        max_bytes = r.max_bytes,
        context = place.context_file().display(),
    )
}

impl Provider for Agent {
    fn name(&self) -> &str {
        &self.name
    }

    fn availability(&self, env: &Surroundings) -> Result<(), String> {
        match crate::process::find_program(&self.argv[0], &env.root) {
            Some(_) => Ok(()),
            None => Err(format!("{} is not an executable program", self.argv[0])),
        }
    }

    fn propose(&self, context: &Context, env: &Surroundings) -> Result<Answer, Failure> {
        *self.spent.borrow_mut() = Cost::default();
        *self.ran_under.borrow_mut() = None;
        self.run(context, env)
    }

    fn spent(&self) -> Cost {
        self.spent.borrow().clone()
    }

    fn ran_under(&self) -> Option<Enforced> {
        self.ran_under.borrow().clone()
    }
}

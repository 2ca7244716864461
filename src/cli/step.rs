//! `ratchet step`: one full cycle, Pick → Propose → Approve → Apply+Score → Log.

use std::path::PathBuf;

use crate::cli::gate::{Narration, TerminalGate, describe, exit_for, report_json};
use crate::cli::prompt::Terminal;
use crate::cli::{CommandResult, Env};
use crate::step::{self, Options, Session};

/// Run one full step: Pick → Propose → Approve → Apply+Score → Log.
///
/// At a terminal, Gate 2 is a prompt: approve (with a score), reject, skip
/// (leave it pending) or quit. Without a terminal the proposal is saved in
/// logs/pending/ and the step ends `pending`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Ask this provider instead of picking one (logged as reason "forced").
    #[arg(long, value_name = "NAME")]
    provider: Option<String>,
    /// Run even when allowlisted paths have uncommitted changes.
    #[arg(long)]
    allow_dirty: bool,
    /// For the human provider: the proposal (or bare patch) file to submit.
    #[arg(long, value_name = "FILE")]
    patch: Option<PathBuf>,
}

/// Opens a session and says what start-up recovered.
pub fn session(env: &Env, command: &str) -> Result<Session, crate::cli::CommandError> {
    let ws = env.workspace()?;
    let s = Session::begin(&ws, command)?;
    for note in &s.notes {
        env.ui.warn(note);
    }
    Ok(s)
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    let ws = env.workspace()?;
    let mut s = Session::begin_step(&ws)?;
    for note in &s.notes {
        env.ui.warn(note);
    }
    let mut gate = Terminal::open().map(|tty| TerminalGate { tty, ui: &env.ui, edit: true });
    let interactive = gate.is_some();
    let (mut tele, telemetry) = step::Telemetry::before(&mut s)?;
    for note in &tele.notes {
        env.ui.note(note);
    }
    crate::timing::mark("telemetry");
    let opts = Options {
        forced: args.provider,
        allow_dirty: args.allow_dirty,
        patch_file: args.patch.map(|p| env.cwd.join(p)),
        gate2: gate.as_mut().map(|g| g as &mut dyn crate::gate::Gate2),
        interactive,
        telemetry,
        cancel: crate::cli::interrupt::cancel_on_ctrl_c(),
    };
    let report = step::run(&mut s, opts, &mut Narration::new(&env.ui))?;
    crate::timing::mark("step");
    tele.after(&s);
    warn_telemetry(env, &tele);
    if env.ui.json() {
        env.ui.emit_json(&report_json(&report));
    } else {
        env.ui.data(describe(&env.ui, &report));
        if let Some(diff) = crate::cli::show::auto_merged_diff(&env.ui, &s, &report) {
            env.ui.data_raw(&diff);
        }
        if report.outcome == crate::record::Outcome::Failed {
            for line in crate::cli::gate::checks_tail(&s, &report) {
                env.ui.data(line);
            }
        }
        if !interactive && report.pending.is_some() {
            env.ui.note("no terminal: the proposal was not shown to anyone; it waits in logs/pending/");
        }
    }
    Ok(crate::cli::interrupt::finish(&env.ui, &report, exit_for(&report)))
}

/// Says once, with its hint, why telemetry that is configured did not work
/// this run (the step went on without it).
pub fn warn_telemetry(env: &Env, tele: &step::Telemetry) {
    use crate::error::Coded;
    if let Some(e) = &tele.problem {
        env.ui.warn(format!("telemetry: {} [{}]", crate::text::show(&e.to_string()), e.code()));
        if let Some(hint) = e.hint() {
            env.ui.warn(format!("hint: {hint}"));
        }
    }
}

//! The command line: the only module that knows clap and the terminal.
//!
//! One file per subcommand: its `Args` (whose doc comment is the `--help`)
//! and a thin `run` that parses, resolves, calls the domain and renders.

mod agent;
mod approve;
mod completions;
mod context;
mod demo;
mod diff;
mod doctor;
mod error;
mod gate;
mod golden;
mod heartbeat;
mod init;
mod intent;
mod interrupt;
mod log;
mod patch;
mod prompt;
mod propose;
mod rails;
mod reject;
mod revert;
mod review;
mod score;
mod serve;
mod show;
mod status;
mod step;
pub(crate) mod ui;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ContextValue;
use clap::{Parser, Subcommand};

pub use error::{CommandError, CommandResult};
pub use ui::{ColorChoice, Style, Ui};

use crate::error::{Exit, Report};
use crate::workspace::Workspace;

/// Let AI agents improve a git repository on rails.
///
/// One cycle is Pick → Propose → Approve → Apply+Score → Log. Policy lives in
/// config/rails.toml; every step leaves a verifiable entry in logs/steps.jsonl.
#[derive(Parser, Debug)]
#[command(name = "ratchet", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Run as if started in DIR.
    #[arg(short = 'C', global = true, value_name = "DIR", help_heading = "Global options")]
    pub directory: Option<PathBuf>,
    /// Print data as JSON on stdout (errors too, as {"error","code","message","nextAction"}).
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    /// When to colour output.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN",
        help_heading = "Global options"
    )]
    pub color: ColorChoice,
    /// Say less on stderr.
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Init(init::Args),
    Step(step::Args),
    Status(status::Args),
    Show(show::Args),
    Doctor(doctor::Args),
    Context(context::Args),
    Propose(propose::Args),
    Review(review::Args),
    Approve(approve::Args),
    Reject(reject::Args),
    Revert(revert::Args),
    Heartbeat(heartbeat::Args),
    Demo(demo::Args),
    Rails(rails::Args),
    Intent(intent::Args),
    Golden(golden::Args),
    Patch(patch::Args),
    Log(log::Args),
    Score(score::Args),
    Serve(serve::Args),
    Agent(agent::Args),
    Completions(completions::Args),
    Man(completions::ManArgs),
}

/// Everything a command needs besides its arguments.
pub struct Env {
    pub ui: Ui,
    pub cwd: PathBuf,
}

impl Env {
    /// The workspace containing the working directory.
    pub fn workspace(&self) -> Result<Workspace, CommandError> {
        Ok(Workspace::discover(&self.cwd)?)
    }
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    crate::timing::mark("main");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let ui = Ui::new(cli.json, cli.color, cli.quiet);
    let cwd = match resolve_cwd(cli.directory.as_deref()) {
        Ok(cwd) => cwd,
        Err(e) => {
            ui.error(&e.0);
            return ExitCode::from(e.0.exit.code());
        }
    };
    let env = Env { ui, cwd };
    match dispatch(&env, cli.command) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(CommandError(report)) => {
            env.ui.error(&report);
            ExitCode::from(report.exit.code())
        }
    }
}

/// Help and version as clap prints them; a usage error in ratchet's own
/// shape (`error:` / `hint:` lines, or the JSON error with `--json`), exit 2.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ErrorKind};
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            Exit::Usage.code()
        } else {
            0
        });
    }
    let json = std::env::args().any(|a| a == "--json");
    // clap's own rendering, without its styling and its "error: " prefix.
    let text = e.render().to_string();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let message = lines.next().unwrap_or("the command line is not valid").trim_start_matches("error: ").to_string();
    let mut report = Report::new("USAGE", message).with_exit(Exit::Usage);
    if let Some(ContextValue::String(s)) = e.get(ContextKind::SuggestedArg) {
        report = report.with_hint(format!("did you mean `{s}`?"));
    }
    if let Some(ContextValue::Strings(v)) = e.get(ContextKind::SuggestedSubcommand) {
        report = report.with_hint(format!("did you mean `ratchet {}`?", v.join("` or `ratchet ")));
    }
    let usage = lines.find(|l| l.trim_start().starts_with("Usage:")).map(|l| l.trim().to_string());
    report = report.with_hint(match usage {
        Some(u) => format!("{u}; `ratchet help` lists the commands, `ratchet help COMMAND` explains one"),
        None => "`ratchet help` lists the commands, `ratchet help COMMAND` explains one".to_string(),
    });
    Ui::new(json, ColorChoice::Auto, false).error(&report);
    ExitCode::from(Exit::Usage.code())
}

fn resolve_cwd(dir: Option<&std::path::Path>) -> Result<PathBuf, CommandError> {
    let cwd = std::env::current_dir().map_err(|e| {
        CommandError(
            Report::new("IO_ERROR", format!("cannot read the current directory: {e}"))
                .with_hint("cd into an existing directory"),
        )
    })?;
    let Some(dir) = dir else { return Ok(cwd) };
    let dir = cwd.join(dir);
    if !dir.is_dir() {
        return Err(CommandError::new(
            "NO_SUCH_DIRECTORY",
            format!("{} is not a directory", dir.display()),
            "pass an existing directory to -C",
        ));
    }
    Ok(dir)
}

fn dispatch(env: &Env, command: Command) -> CommandResult {
    match command {
        Command::Init(args) => init::run(env, args),
        Command::Step(args) => step::run(env, args),
        Command::Status(args) => status::run(env, args),
        Command::Show(args) => show::run(env, args),
        Command::Doctor(args) => doctor::run(env, args),
        Command::Context(args) => context::run(env, args),
        Command::Propose(args) => propose::run(env, args),
        Command::Review(args) => review::run(env, args),
        Command::Approve(args) => approve::run(env, args),
        Command::Reject(args) => reject::run(env, args),
        Command::Revert(args) => revert::run(env, args),
        Command::Heartbeat(args) => heartbeat::run(env, args),
        Command::Demo(args) => demo::run(env, args),
        Command::Rails(args) => rails::run(env, args),
        Command::Intent(args) => intent::run(env, args),
        Command::Golden(args) => golden::run(env, args),
        Command::Patch(args) => patch::run(env, args),
        Command::Log(args) => log::run(env, args),
        Command::Score(args) => score::run(env, args),
        Command::Serve(args) => serve::run(env, args),
        Command::Agent(args) => agent::run(env, args),
        Command::Completions(args) => completions::run(env, args),
        Command::Man(args) => completions::man(env, args),
    }
}

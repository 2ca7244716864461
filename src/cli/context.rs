//! `ratchet context`: exactly the minimal context a provider would get now.

use crate::cli::{CommandError, CommandResult, Env};
use crate::error::Exit;
use crate::history::History;
use crate::journal::Journal;
use crate::propose::context::{self, Inputs};
use crate::rails::Rails;
use crate::step::{self, configured};

/// Print the minimal context a provider would get now.
///
/// The intent, the last few cycles, a slice of the allowlisted file index
/// ranked for the focus with the focused files' contents, the focus, the
/// rails that bind the provider, and the base commit: nothing else.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The provider whose context to show (its tier decides the paths open to it).
    #[arg(long, value_name = "NAME", default_value = "self")]
    provider: String,
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    let ws = env.workspace()?;
    let rails = Rails::load(&ws)?;
    crate::rails::check(&ws)?;
    let intent = crate::intent::current(&ws)?;
    let journal = Journal::open(&ws)?;
    let history = History::read(&journal)?;
    if args.provider != "self" && !configured(&rails).iter().any(|p| p.name == args.provider) {
        return Err(step::StepError::UnknownProvider {
            name: args.provider,
            configured: configured(&rails).into_iter().map(|p| p.name).collect(),
        }
        .into());
    }
    let tier = crate::trust::tier_of(&history, &rails.trust, &args.provider);
    let (focus, note) =
        step::focus_for(&history, &intent, crate::loopkit::client::top_pain(&rails, &ws).map_err(|e| e.to_string()));
    let repo = ws.repo()?;
    let tracked = repo.tracked_paths()?;
    let tracked: Vec<&str> = tracked.iter().map(String::as_str).collect();
    let ctx = context::build(Inputs {
        rails: &rails,
        intent: &intent,
        history: &history,
        focus,
        provider: &args.provider,
        tier,
        base: repo.head_commit(),
        tracked: &tracked,
        root: ws.root(),
    });
    let value = serde_json::to_value(&ctx).map_err(|e| {
        CommandError::new("INTERNAL", format!("cannot render the context: {e}"), "report this as a bug")
    })?;
    if let Some(note) = note {
        env.ui.note(note);
    }
    if env.ui.json() {
        env.ui.emit_json(&value);
        return Ok(Exit::Ok);
    }
    env.ui.data(format!("intent   {} ({})", ctx.intent.name, &ctx.intent.hash[..12]));
    env.ui.data(format!("focus    {} — {}", ctx.focus.reference, ctx.focus.text));
    env.ui.data(format!(
        "rails    {} at tier {} · {} lines, {} bytes, {} file",
        ctx.rails.provider,
        ctx.rails.tier.as_deref().unwrap_or("-"),
        ctx.rails.max_lines,
        ctx.rails.max_bytes,
        ctx.rails.max_files
    ));
    env.ui.data(format!("base     {}", ctx.base.as_deref().unwrap_or("(unborn)")));
    env.ui.data(format!("recent   {} cycles", ctx.recent.len()));
    for c in &ctx.recent {
        env.ui.data(format!("  {} {} {} {}", c.id, c.provider, c.outcome, c.summary));
    }
    env.ui.data(format!("files    {} (contents of {})", ctx.files.len(), ctx.contents.len()));
    for f in ctx.files.iter().take(10) {
        env.ui.data(format!("  {} ({} lines)", f.path, f.lines));
    }
    env.ui.note("use --json for the exact document a provider receives on stdin");
    Ok(Exit::Ok)
}

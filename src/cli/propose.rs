//! `ratchet propose`: the calling agent submits a proposal directly.

use std::path::PathBuf;

use crate::cli::gate::{describe, report_json};
use crate::cli::step::session;
use crate::cli::{CommandError, CommandResult, Env};
use crate::error::Exit;
use crate::step;

/// Submit a proposal as an agent: Gate 1 runs at once; then it waits for a human.
///
/// FILE holds a bare patch ({"op":"replace","path":...}) or a whole
/// proposal; --rationale and --next-step fill in (or override) its words.
/// Objections reject it at once (logged); otherwise it waits in
/// logs/pending/ under the id printed, for `ratchet approve ID`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The patch or proposal JSON file ("-" for stdin).
    #[arg(long, value_name = "FILE")]
    patch: PathBuf,
    /// Why this patch, in a few sentences.
    #[arg(long, value_name = "TEXT")]
    rationale: Option<String>,
    /// What should come after this patch (repeatable).
    #[arg(long = "next-step", value_name = "TEXT")]
    next_steps: Vec<String>,
    /// What the patch is for: pain:<id>, next:<step>#<n> or intent.
    #[arg(long, value_name = "REF")]
    focus: Option<String>,
    /// The submitting provider.
    #[arg(long, value_name = "NAME", default_value = "self")]
    provider: String,
}

fn read(env: &Env, path: &PathBuf) -> Result<String, CommandError> {
    let bad = |e: String| CommandError::new("BAD_PATCH", e, "pass a JSON file holding a patch or a proposal");
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| bad(format!("cannot read stdin: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(env.cwd.join(path)).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    let text = read(env, &args.patch)?;
    let mut value = crate::propose::parse_json(&text)?;
    // A bare patch becomes the proposal's patch.
    if value.get("op").is_some() || value.is_array() {
        value = serde_json::json!({ "patch": value });
    }
    let Some(obj) = value.as_object_mut() else {
        return Err(CommandError::new(
            "BAD_PATCH",
            "the file holds neither a patch nor a proposal",
            "see `ratchet propose --help`",
        ));
    };
    if let Some(r) = args.rationale {
        obj.insert("rationale".into(), r.into());
    }
    if !args.next_steps.is_empty() {
        obj.insert("next_steps".into(), args.next_steps.into());
    }
    if let Some(f) = args.focus {
        obj.insert("focus".into(), f.into());
    }
    if !obj.contains_key("rationale") {
        return Err(CommandError::new("BAD_PATCH", "the proposal has no rationale", "pass --rationale TEXT"));
    }
    let mut s = session(env, "propose")?;
    if args.provider != "self" && !step::configured(&s.rails).iter().any(|p| p.name == args.provider) {
        return Err(step::StepError::UnknownProvider {
            name: args.provider,
            configured: step::configured(&s.rails).into_iter().map(|p| p.name).collect(),
        }
        .into());
    }
    let report = step::propose(&mut s, &args.provider, value)?;
    if env.ui.json() {
        env.ui.emit_json(&report_json(&report));
    } else {
        env.ui.data(describe(&env.ui, &report));
    }
    Ok(Exit::Ok)
}

//! `ratchet patch check`: Gate 1's rule evaluators on a proposal file.

use std::io::Read;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::cli::{CommandError, CommandResult, Env, Style};
use crate::error::{Exit, IoContext, Report};
use crate::gate::{self, Gate1};
use crate::patch::{self, MAX_PROPOSAL_BYTES};
use crate::propose::{self, Proposal};
use crate::rails::Rails;
use crate::{intent, trust};

/// Work with patches and proposals.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand, Debug)]
enum Sub {
    Check(CheckArgs),
}

/// Run Gate 1's rule evaluators on a proposal or a bare patch against the working tree.
///
/// Prints each evaluator's verdict (path_ok, schema, atomic_ok, tier) with
/// its reason, the lines added, removed and changed, diff_ratio and the
/// packet hash. Exits 0 when every evaluator attests, 1 with the first
/// objection's code. Paths in the patch are relative to the repository
/// root. Never writes to the tree.
#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// A proposal {"rationale","patch",...} or a bare patch {"op","path",...}, as JSON; `-` reads stdin.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The provider whose trust tier applies (a name under [providers], or self).
    #[arg(long, value_name = "NAME", default_value = "self")]
    provider: String,
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    match args.command {
        Sub::Check(args) => check(env, args),
    }
}

fn check(env: &Env, args: CheckArgs) -> CommandResult {
    let ws = env.workspace()?;
    let rails = Rails::load(&ws)?;
    check_provider(&rails, &args.provider)?;
    let tier = trust::current_tier(&ws, &rails, &args.provider);
    let intent = if ws.intents_dir().join("CURRENT").exists() {
        intent::current(&ws)?.hash
    } else {
        env.ui.note(format!(
            "no intent yet ({} is missing): binding the packet to the hash of the empty text",
            ws.rel("intents/CURRENT")
        ));
        intent::hash_text("")
    };
    let base = ws.repo()?.head_commit();
    let text = read_input(env, &args.file)?;
    let value = propose::parse_json(&text)?;
    let proposal = Proposal::from_value(&value).ok();

    let gate = gate::evaluate_value(ws.root(), &rails, tier, &value, base.as_deref(), &intent);
    let tier_name = rails.trust.tiers.get(tier).map(|t| t.name.clone());

    let what = match &proposal {
        Some(p) => p
            .patches
            .iter()
            .map(|p| format!("{} {}", p.op().as_str(), patch::display_path(p.path())))
            .collect::<Vec<_>>()
            .join(", "),
        None => "a malformed proposal".to_string(),
    };
    env.ui.note(format!(
        "checking {what} for provider {} (tier {}) on {}",
        args.provider,
        tier_name.as_deref().unwrap_or("none"),
        base.as_deref().map_or_else(|| "an unborn branch".to_string(), |b| format!("commit {}", &b[..b.len().min(12)])),
    ));

    let objection = gate.first_objection().map(|v| {
        let mut report = Report::new(v.code.unwrap_or("OBJECTION"), v.reason.clone());
        report.hints = v.hint.clone().into_iter().collect();
        report
    });

    if env.ui.json() {
        let mut doc = json!({
            "ok": gate.passed(),
            "packet": gate.packet,
            "provider": args.provider,
            "tier": tier_name,
            "base": base,
            "intent": intent,
            "patches": proposal.as_ref().map(|p| {
                p.patches.iter().map(|p| json!({"op": p.op().as_str(), "path": p.path()})).collect::<Vec<_>>()
            }).unwrap_or_default(),
            "verdicts": gate.verdicts.iter().map(|v| {
                let mut j = json!({"by": v.by, "verdict": v.verdict, "reason": v.reason});
                if let Some(code) = v.code {
                    j["code"] = Value::from(code);
                }
                j
            }).collect::<Vec<_>>(),
            "lines": gate.stats.map(|s| json!({"added": s.added, "removed": s.removed, "changed": s.changed()})),
            "diff_ratio": gate.diff_ratio,
            "bytes": gate.new_bytes,
        });
        if let (Some(report), Value::Object(map)) = (&objection, &mut doc) {
            // The actionable error shape, alongside the data.
            if let Value::Object(err) = report.to_json() {
                map.extend(err);
            }
        }
        env.ui.emit_json(&doc);
        return Ok(if objection.is_some() { Exit::Error } else { Exit::Ok });
    }

    render(env, &gate);
    match objection {
        None => Ok(Exit::Ok),
        Some(report) => Err(CommandError(report)),
    }
}

fn render(env: &Env, gate: &Gate1) {
    for v in &gate.verdicts {
        let (word, style) = if v.attests() { ("attest", Style::Green) } else { ("object", Style::Red) };
        let code = v.code.map(|c| format!("{c}: ")).unwrap_or_default();
        env.ui.data(format!("{:<20} {}  {code}{}", v.by, env.ui.paint(style, word), v.reason));
    }
    match (gate.stats, gate.diff_ratio) {
        (Some(s), Some(r)) => {
            env.ui.data(format!("{:<20} +{} -{} ({} changed)", "lines", s.added, s.removed, s.changed()));
            env.ui.data(format!("{:<20} {}", "diff_ratio", trim_float(r)));
        }
        _ => {
            env.ui.data(format!("{:<20} not measured", "lines"));
            env.ui.data(format!("{:<20} not measured", "diff_ratio"));
        }
    }
    env.ui.data(format!("{:<20} {}", "packet", gate.packet));
}

/// A ratio with at most four decimals, without trailing zeros.
fn trim_float(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() { "0".into() } else { s.to_string() }
}

/// `self` is always a valid provider (seed 003 principle 4); any other name
/// must be configured under [providers].
fn check_provider(rails: &Rails, name: &str) -> Result<(), CommandError> {
    if name == "self" || rails.providers.contains_key(name) {
        return Ok(());
    }
    let mut names: Vec<&str> = rails.providers.keys().map(String::as_str).collect();
    if !names.contains(&"self") {
        names.insert(0, "self");
    }
    Err(CommandError::new(
        "UNKNOWN_PROVIDER",
        format!("provider {name:?} is not configured in [providers]"),
        format!("use one of: {}", names.join(", ")),
    ))
}

/// Reads the proposal file (or stdin for `-`), at most [`MAX_PROPOSAL_BYTES`].
fn read_input(env: &Env, file: &std::path::Path) -> Result<String, CommandError> {
    let mut bytes = Vec::new();
    let shown = file.display().to_string();
    if file.as_os_str() == "-" {
        std::io::stdin().lock().take(MAX_PROPOSAL_BYTES + 1).read_to_end(&mut bytes).io("read", "stdin")?;
    } else {
        let path = env.cwd.join(file);
        std::fs::File::open(&path)
            .and_then(|f| f.take(MAX_PROPOSAL_BYTES + 1).read_to_end(&mut bytes))
            .io("read", &path)?;
    }
    if bytes.len() as u64 > MAX_PROPOSAL_BYTES {
        return Err(CommandError::new(
            "BAD_PATCH",
            format!("{shown} is larger than {MAX_PROPOSAL_BYTES} bytes"),
            "a proposal carries one small patch; keep it within [budget] max_bytes",
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        CommandError::new("BAD_PATCH", format!("{shown} is not UTF-8 text"), "write the proposal as UTF-8 JSON")
    })
}

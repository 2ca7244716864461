//! `ratchet demo`: the whole loop on a sample repository, narrated.

use std::path::PathBuf;

use crate::cli::gate::{Narration, describe};
use crate::cli::{CommandError, CommandResult, Env, Style, record};
use crate::error::Exit;
use crate::journal::{Journal, Kind};
use crate::step::{self, Options, Session};
use crate::workspace::Workspace;
use crate::{demo, init, rails};

/// Show the whole loop on a sample repository.
///
/// Creates a small repository in DIR (default: a new folder under the
/// system's temp dir), initialises it, and runs several steps with a
/// scripted agent (`self`) and the heartbeat: a merge, Gate 1 refusing a
/// protected path and a locked tier, failed checks restoring the tree, a
/// proposal left pending for a human, and heartbeat plans. Then it prints
/// the log and verifies it.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to create the sample repository (must be new or empty).
    dir: Option<PathBuf>,
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    let dir = match args.dir {
        Some(d) => env.cwd.join(d),
        None => std::env::temp_dir().join(format!("ratchet-demo-{}", std::process::id())),
    };
    let ui = &env.ui;
    let say = |text: String| {
        if !ui.json() {
            ui.data(text)
        }
    };
    say(format!("{} a sample repository in {}", ui.paint(Style::Bold, "creating"), dir.display()));
    let repo = demo::scaffold(&dir)?;
    let ws = Workspace::at(repo.workdir(), "");
    // The folder was empty a moment ago, so a checkpoint kept for this path
    // outside it can only belong to an earlier demo that was deleted.
    for place in crate::journal::JournalPaths::for_workspace(&ws).checkpoints {
        let _ = std::fs::remove_file(&place.path);
    }
    init::init(&ws)?;
    crate::fsutil::write_atomic(&ws.rails_toml(), demo::rails_text(init::RAILS_TEMPLATE).as_bytes()).map_err(|e| {
        CommandError::new("IO_ERROR", format!("cannot write the demo's rails: {e}"), "check the directory")
    })?;
    let lock = rails::compute(&ws)?;
    lock.store(&ws)?;
    rails::store_accepted(&ws)?;
    let intent = crate::intent::current(&ws)?;
    record(
        &ws,
        Kind::Rails,
        serde_json::json!({"reason": "init", "rails": lock.version(), "intent": intent.hash, "intent_name": intent.name}),
    )?;
    repo.commit_all("ratchet init (demo rails: auto-merge for docs/**)", &demo::identity(), crate::clock::now())?;
    say(format!(
        "{} rails {} · checks `sh scripts/check.sh` · auto-merge on for docs/** · scripted agent scripts/agent.sh",
        ui.paint(Style::Bold, "initialised"),
        &lock.version()[..12]
    ));

    let plan: [(&str, &str); 7] = [
        ("self", "a small docs patch: within auto-merge's narrow rules, so it merges"),
        ("self", "a patch to config/rails.toml: the rails are protected, so Gate 1 rejects it"),
        ("self", "a docs patch that breaks the checks: the file is restored, the step fails"),
        ("self", "a code patch from a provider still in the docs tier: TIER_LOCKED"),
        ("self", "a larger docs page: beyond auto-merge, and nobody at a prompt, so it waits"),
        ("heartbeat", "the free, deterministic heartbeat records a dated plan for the focus (auto-merged)"),
        ("heartbeat", "nothing new since: the heartbeat answers noop, and the step is still logged"),
    ];
    let mut reports = Vec::new();
    for (n, (provider, what)) in plan.iter().enumerate() {
        say(format!("\n{} {}: {what}", ui.paint(Style::Bold, &format!("step {}", n + 1)), provider));
        let mut s = Session::begin(&ws, "demo")?;
        let opts = Options {
            forced: Some(provider.to_string()),
            allow_dirty: false,
            patch_file: None,
            gate2: None,
            interactive: false,
            telemetry: Ok(None),
        };
        let report = step::run(&mut s, opts, &mut Narration::new(ui))?;
        say(format!("  → {}", describe(ui, &report)));
        reports.push(report);
    }

    let journal = Journal::open(&ws)?;
    let report = crate::journal::verify(&ws)?;
    if ui.json() {
        ui.emit_json(&serde_json::json!({
            "dir": dir,
            "steps": reports,
            "log": {"entries": journal.head().seq, "head": journal.head().hash_hex(), "verified": report.first_bad.is_none()},
        }));
    } else {
        say(format!("\n{} ({})", ui.paint(Style::Bold, "the log"), ws.rel("logs/steps.jsonl")));
        for e in step::events(&journal)? {
            let b = &e.body;
            say(format!(
                "  {:>3} {:<4} {:<6} {:<10} {:<9} {:<7} {}",
                e.seq,
                e.id,
                e.kind,
                b["pick"]["provider"].as_str().unwrap_or(""),
                b["outcome"].as_str().unwrap_or(b["reason"].as_str().unwrap_or("")),
                b["utility"].as_f64().map(|u| format!("{u:.3}")).unwrap_or_default(),
                b["proposal"]["path"].as_str().or(b["detail"].as_str()).unwrap_or("")
            ));
        }
        say(format!(
            "\n{} {}",
            ui.paint(Style::Bold, "log verify:"),
            if report.first_bad.is_none() {
                "every hash, link and checkpoint checks".to_string()
            } else {
                format!("{:?}", report.first_bad)
            }
        ));
        say(format!(
            "\nnext: cd {} && ratchet status, then `ratchet review` at a terminal to decide the pending proposal",
            dir.display()
        ));
    }
    Ok(if report.first_bad.is_none() { Exit::Ok } else { Exit::Error })
}

//! `ratchet status`: where the loop stands.

use serde_json::json;

use crate::cli::prompt::Terminal;
use crate::cli::{CommandResult, Env, Style};
use crate::error::{Coded, Exit};
use crate::history::History;
use crate::journal::Journal;
use crate::propose::provider::Surroundings;
use crate::rails::{self, Rails};
use crate::step;
use crate::text::show;

/// Show pending proposals, the last steps, each provider's tier, statistics
/// and eligibility, the watchdog, and the health of the rails and the log.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// How many recent steps to show.
    #[arg(long, default_value_t = 5, value_name = "N")]
    recent: usize,
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    let ws = env.workspace()?;
    let rails_health = match rails::check(&ws) {
        Ok(lock) => json!({"ok": true, "version": lock.version()}),
        Err(e) => json!({"ok": false, "code": e.code(), "message": e.to_string()}),
    };
    let rails_cfg = Rails::load(&ws)?;
    let (log_health, history) = match Journal::open(&ws) {
        Ok(j) => {
            let head = j.head();
            let history = History::read(&j)?;
            (json!({"ok": true, "entries": head.seq, "head": head.hash_hex()}), history)
        }
        Err(e) => (json!({"ok": false, "code": e.code(), "message": e.to_string()}), History::default()),
    };
    let now = crate::clock::now();
    let env_ = Surroundings {
        root: ws.root().to_path_buf(),
        interactive: Terminal::open().is_some(),
        patch_file: None,
        step_id: String::new(),
        cancel: Default::default(),
        allowance: None,
        sandbox: crate::sandbox::Policy::for_rails(&ws, &rails_cfg),
        workspace: None,
    };
    let standings = step::standings(&rails_cfg, &history, &env_, now);
    let watchdog = crate::watchdog::reading(&history, &rails_cfg.watchdog, now);
    // Pending proposals, as the log records them (their files are judged
    // again, against the log, only when a human acts on them).
    let pending: Vec<_> = history
        .pending()
        .into_iter()
        .map(|p| {
            // The agents API: a remote candidate's attestations, objections and quorum.
            let quorum =
                p.body.proposal.as_ref().and_then(|x| {
                    crate::cli::agent::quorum_of(&ws, &rails_cfg, &p.body.pick.provider, &p.id, &x.packet)
                });
            json!({
                "quorum": quorum,
                "id": p.id,
                "provider": p.pick.provider,
                "path": p.body.proposal.as_ref().map(|x| x.path.clone()),
                "op": p.body.proposal.as_ref().map(|x| x.op.clone()),
                "created": crate::clock::stamp(p.finished),
                "packet": p.body.proposal.as_ref().map(|x| x.packet.clone()),
            })
        })
        .collect();
    // A step in flight: running now (the lock is held), or interrupted and
    // waiting for the next loop command to finish it.
    let inflight = match step::Inflight::load(&ws) {
        Ok(Some(i)) => {
            let running = matches!(
                crate::lock::WorkspaceLock::acquire(&ws, "status"),
                Err(crate::lock::LockError::Locked { .. })
            );
            let phase = match i.phase {
                step::Phase::Propose => "while asking its provider",
                step::Phase::Apply => "during the apply or the checks",
                step::Phase::Commit => "while committing",
            };
            Some(if running {
                json!({"id": i.id, "state": "running", "phase": phase,
                       "message": format!("{} is running ({phase})", i.id)})
            } else {
                json!({"id": i.id, "state": "interrupted", "phase": phase,
                       "message": format!("{} was interrupted {phase}; the next loop command restores the tree and logs it", i.id)})
            })
        }
        Ok(None) => None,
        Err(why) => {
            Some(json!({"state": "invalid", "message": format!("a crash journal ratchet will not obey: {why}")}))
        }
    };
    // Merges waiting for their telemetry window to be verified.
    let verifying: Vec<_> = match &rails_cfg.loopkit {
        Some(lk) => history
            .merges()
            .into_iter()
            .filter(|s| !s.verified && s.pain().is_some())
            .map(|s| {
                let closes = s.finished + chrono::Duration::nanoseconds(lk.window.ns);
                json!({"id": s.id, "pain": s.pain(), "window": lk.window.label, "closes": crate::clock::stamp(closes),
                       "due": closes <= now})
            })
            .collect(),
        None => Vec::new(),
    };
    let recent: Vec<_> = history
        .steps()
        .iter()
        .rev()
        .take(args.recent)
        .map(|s| {
            json!({
                "id": s.id,
                "provider": s.pick.provider,
                "outcome": s.outcome(),
                "utility": s.utility(),
                "path": s.body.proposal.as_ref().map(|p| p.path.clone()),
                "reason": s.body.reason,
                "reverted": s.reverted.is_some(),
                "verified": s.verified.as_ref().map(|v| v.verdict.word()),
                "ts": crate::clock::stamp(s.finished),
            })
        })
        .collect();
    // What the children of a step would run under here (no trial: `doctor` runs one).
    let sandbox = match rails_cfg.sandbox.mode {
        crate::sandbox::Mode::Off => json!({"mode": "off", "ok": true}),
        crate::sandbox::Mode::On => {
            let support = crate::sandbox::probe();
            let missing = support.missing(false);
            json!({"mode": "on", "ok": missing.is_empty(), "support": support.to_string(), "missing": missing})
        }
    };
    if env.ui.json() {
        env.ui.emit_json(&json!({
            "rails": rails_health,
            "log": log_health,
            "sandbox": sandbox,
            "watchdog": watchdog,
            "pending": pending,
            "inflight": inflight,
            "recent": recent,
            "verifying": verifying,
            "providers": standings,
        }));
        return Ok(Exit::Ok);
    }
    let ui = &env.ui;
    let ok = |v: &serde_json::Value| v["ok"].as_bool() == Some(true);
    ui.data(if ok(&rails_health) {
        format!("rails     ok · version {}", &rails_health["version"].as_str().unwrap_or("")[..12])
    } else {
        format!(
            "rails     {} {}",
            ui.paint(Style::Red, rails_health["code"].as_str().unwrap_or("")),
            rails_health["message"].as_str().unwrap_or("")
        )
    });
    ui.data(if ok(&log_health) {
        format!(
            "log       ok · {} · head {}",
            crate::cli::ui::count(log_health["entries"].as_u64().unwrap_or(0), "entry", "entries"),
            &log_health["head"].as_str().unwrap_or("")[..12]
        )
    } else {
        format!(
            "log       {} {}",
            ui.paint(Style::Red, log_health["code"].as_str().unwrap_or("")),
            log_health["message"].as_str().unwrap_or("")
        )
    });
    ui.data(match (sandbox["mode"].as_str(), ok(&sandbox)) {
        (Some("off"), _) => format!(
            "sandbox   {} children run unconfined ([sandbox] mode = \"off\" in the rails)",
            ui.paint(Style::Yellow, "off")
        ),
        (_, true) => format!("sandbox   on · {}", sandbox["support"].as_str().unwrap_or("")),
        (_, false) => format!(
            "sandbox   {} this machine cannot confine children: {}; every step's checks will fail",
            ui.paint(Style::Red, "SANDBOX_UNAVAILABLE"),
            sandbox["missing"]
                .as_array()
                .map(|m| m.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        ),
    });
    let since =
        watchdog.hours_since_merge.map(|h| format!(", {}", crate::cli::ui::duration(h * 3600.0))).unwrap_or_default();
    ui.data(match &watchdog.reason {
        Some(r) => format!(
            "watchdog  {} {r}: the next pick forces exploration and prefers a human",
            ui.paint(Style::Red, "ALARM")
        ),
        None => format!(
            "watchdog  ok · {}{since} since the last merge",
            crate::cli::ui::count(watchdog.steps_since_merge as u64, "step", "steps")
        ),
    });
    if let Some(i) = &inflight {
        let style = if i["state"] == "running" { Style::Yellow } else { Style::Red };
        ui.data(format!("in flight {}", ui.paint(style, i["message"].as_str().unwrap_or(""))));
    }
    ui.data(format!("pending   {}", pending.len()));
    for p in &pending {
        ui.data(format!(
            "  {}  {} {} {}",
            p["id"].as_str().unwrap_or(""),
            show(p["provider"].as_str().unwrap_or("")),
            p["op"].as_str().unwrap_or(""),
            show(p["path"].as_str().unwrap_or("")),
        ));
        if let Ok(q) = serde_json::from_value::<crate::agents::policy::QuorumState>(p["quorum"].clone()) {
            ui.data(format!("          {}", crate::cli::agent::quorum_line(&q)));
        }
    }
    for v in &verifying {
        ui.data(format!(
            "verify    {} ({}): {} {}",
            v["id"].as_str().unwrap_or(""),
            v["pain"].as_str().unwrap_or(""),
            if v["due"] == true { "due since" } else { "its window closes" },
            v["closes"].as_str().unwrap_or("")
        ));
    }
    ui.data("recent");
    let width = |v: &[serde_json::Value], key: &str, min: usize| {
        v.iter().map(|r| show(r[key].as_str().unwrap_or("")).chars().count()).max().unwrap_or(0).max(min)
    };
    let (wid, wprov) = (width(&recent, "id", 2), width(&recent, "provider", 8));
    for r in &recent {
        ui.data(format!(
            "  {:<wid$} {:<9} {:<wprov$} {:<7} {}{}",
            r["id"].as_str().unwrap_or(""),
            r["outcome"].as_str().unwrap_or(""),
            show(r["provider"].as_str().unwrap_or("")),
            r["utility"].as_f64().map(|u| format!("{u:.3}")).unwrap_or("-".into()),
            show(r["path"].as_str().or(r["reason"].as_str()).unwrap_or("")),
            match (r["reverted"] == true, r["verified"].as_str()) {
                (true, _) => " (reverted)".to_string(),
                (false, Some(v)) => format!(" (verified: {v})"),
                _ => String::new(),
            }
        ));
    }
    ui.data("providers");
    let wname = standings.iter().map(|p| show(&p.name).chars().count()).max().unwrap_or(0).max(4);
    let wkind = standings.iter().map(|p| p.kind.chars().count()).max().unwrap_or(0).max(4);
    ui.data(format!(
        "  {:<wname$} {:<wkind$} {:<7} {:>5} {:>6} {:>6} {:>8} {:>7} {:>5}  eligible",
        "name", "kind", "tier", "picks", "merged", "failed", "rejected", "slipped", "mean"
    ));
    for p in &standings {
        let eligible = match &p.reason {
            None => ui.paint(Style::Green, "yes"),
            Some(r) => format!("{} ({r})", ui.paint(Style::Yellow, "no")),
        };
        ui.data(format!(
            "  {:<wname$} {:<wkind$} {:<7} {:>5} {:>6} {:>6} {:>8} {:>7} {:>5}  {eligible}",
            show(&p.name),
            p.kind,
            p.tier.as_deref().unwrap_or("-"),
            p.stats.picks,
            p.stats.merged,
            p.stats.failed,
            p.stats.rejected,
            p.stats.slipped,
            p.stats.mean_utility.map(|m| format!("{m:.3}")).unwrap_or("-".into()),
        ));
    }
    for p in standings.iter().filter(|p| p.tier_set.is_some()) {
        ui.data(format!(
            "  {} is at tier {}: {}",
            p.name,
            p.tier.as_deref().unwrap_or("-"),
            p.tier_set.as_deref().unwrap_or("")
        ));
    }
    Ok(Exit::Ok)
}

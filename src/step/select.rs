//! Pick, as the step does it: which providers are eligible (and why not),
//! what to focus on, and the choice itself (DESIGN §3 "Pick", §8).

use serde::Serialize;

use crate::history::{History, ProviderStats};
use crate::intent::Intent;
use crate::pick::{self, Candidate, Inputs, Pick};
use crate::propose::context::Focus;
use crate::propose::provider::{self, Provider, Surroundings};
use crate::rails::{self, ProviderKind, Rails};

/// The provider that is always eligible and the fallback when nothing else is.
pub const HEARTBEAT: &str = "heartbeat";

/// The heartbeat used when none is configured.
pub fn default_heartbeat() -> rails::Provider {
    rails::Provider {
        name: HEARTBEAT.into(),
        enabled: true,
        kind: ProviderKind::Heartbeat { journal: "docs/ratchet-journal.md".into() },
        timeout_s: 30,
    }
}

/// Every provider the loop knows: the configured ones, and a heartbeat.
pub fn configured(rails: &Rails) -> Vec<rails::Provider> {
    let mut out: Vec<rails::Provider> = rails.providers.values().cloned().collect();
    if !out.iter().any(|p| matches!(p.kind, ProviderKind::Heartbeat { .. })) {
        out.push(default_heartbeat());
    }
    out
}

/// One provider's standing, as `ratchet status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Standing {
    pub name: String,
    pub kind: String,
    pub tier: Option<String>,
    pub tier_index: usize,
    pub streak: u32,
    pub stats: ProviderStats,
    pub eligible: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The standing of every provider.
pub fn standings(
    rails: &Rails,
    history: &History,
    env: &Surroundings,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Standing> {
    let stats = history.provider_stats();
    let tiers = crate::trust::tiers(history, &rails.trust);
    configured(rails)
        .into_iter()
        .map(|cfg| {
            let t = tiers.get(&cfg.name).cloned().unwrap_or(crate::trust::TierState::FIRST);
            let reason = ineligibility(&cfg, history, env, now);
            Standing {
                kind: cfg.kind.name().to_string(),
                tier: rails.trust.tiers.get(t.tier).map(|x| x.name.clone()),
                tier_index: t.tier,
                streak: t.streak,
                stats: stats.get(&cfg.name).cloned().unwrap_or_default(),
                eligible: reason.is_none(),
                reason,
                name: cfg.name,
            }
        })
        .collect()
}

/// Why `cfg` cannot be picked now, or `None` when it can.
fn ineligibility(
    cfg: &rails::Provider,
    history: &History,
    env: &Surroundings,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    if matches!(cfg.kind, ProviderKind::Heartbeat { .. }) {
        return None;
    }
    if !cfg.enabled {
        return Some("disabled (enabled = false in config/rails.toml)".into());
    }
    if let ProviderKind::OpenAi { caps: Some(c), paid: true, .. } = &cfg.kind {
        let (usd, calls) = history.cost_on_day(&cfg.name, now);
        if usd >= c.max_usd_per_day {
            return Some(format!("cost cap reached: ${usd:.2} of ${:.2} today", c.max_usd_per_day));
        }
        if calls >= c.max_calls_per_day as u64 {
            return Some(format!("call cap reached: {calls} of {} calls today", c.max_calls_per_day));
        }
    }
    if let Err(reason) = provider::from_config(cfg).availability(env) {
        return Some(format!("unavailable: {reason}"));
    }
    None
}

/// What the step focuses on: an open next step left by an earlier step,
/// else the intent. (Pains from telemetry come first when `[loopkit]` is
/// reachable; `telemetry` carries them, or why they could not be read.)
pub fn focus(history: &History, intent: &Intent, telemetry: Result<Option<Focus>, String>) -> (Focus, Option<String>) {
    let note = match telemetry {
        Ok(Some(pain)) => return (pain, None),
        Ok(None) => None,
        Err(why) => Some(format!("telemetry_unavailable: {why}")),
    };
    if let Some((reference, text)) = history.open_next_steps().into_iter().next() {
        return (Focus { reference, text, evidence: Vec::new(), pain: None }, note);
    }
    let text =
        intent.text.lines().find(|l| !l.trim().is_empty()).unwrap_or(&intent.name).trim_start_matches('#').trim();
    (Focus { reference: "intent".into(), text: text.to_string(), evidence: Vec::new(), pain: None }, note)
}

/// Chooses among the eligible providers (or takes the forced one).
pub fn choose(
    rails: &Rails,
    history: &History,
    standings: &[Standing],
    forced: Option<&str>,
    watchdog: bool,
    head: &str,
) -> Pick {
    let stats = history.provider_stats();
    let candidates: Vec<Candidate> = standings
        .iter()
        .filter(|s| s.eligible)
        .map(|s| {
            let st = stats.get(&s.name);
            Candidate {
                name: s.name.clone(),
                utility_sum: st.map_or(0.0, |x| x.utility_sum),
                steps: st.map_or(0, |x| x.scored),
            }
        })
        .collect();
    let recent = history.picks();
    let fallback = configured(rails)
        .into_iter()
        .find(|p| matches!(p.kind, ProviderKind::Heartbeat { .. }))
        .map(|p| p.name)
        .unwrap_or_else(|| HEARTBEAT.into());
    let inputs = Inputs {
        candidates: &candidates,
        recent: &recent,
        selection: &rails.selection,
        watchdog,
        forced,
        fallback: &fallback,
    };
    pick::choose(&inputs, pick::seed_for(head))
}

/// The provider object for `name`.
pub fn provider(rails: &Rails, name: &str) -> Option<Box<dyn Provider>> {
    configured(rails).iter().find(|p| p.name == name).map(provider::from_config)
}

//! The roster: which providers the loop knows, and what each may still
//! spend today under its caps (DESIGN §8 "Budgets").
//!
//! Read by the step's Pick and by Gate 1's critics (a critic's calls count
//! against its provider's caps), so it lives here, below both, and not in
//! `step`: the modules the step calls never call back into it.

use crate::history::History;
use crate::propose::provider::Allowance;
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
        tier: None,
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

/// Why `cfg` is at its daily cap today (from the log), or `None`. A paid
/// endpoint has a USD and a call cap; a local one is free, and capped only
/// when the rails give it `max_calls_per_day`. Critic calls count too.
pub fn at_cap(cfg: &rails::Provider, history: &History, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
    let a = allowance(cfg, history, now)?;
    if a.calls == Some(0) {
        let c = cfg.kind.caps().map_or(0, |(c, _)| c.max_calls_per_day);
        return Some(format!("call cap reached: {c} of {c} calls today"));
    }
    if a.usd.is_some_and(|u| u <= 0.0) {
        let (usd, _) = history.cost_on_day(&cfg.name, now);
        let max = cfg.kind.caps().map_or(0.0, |(c, _)| c.max_usd_per_day);
        return Some(format!("cost cap reached: ${usd:.2} of ${max:.2} today"));
    }
    None
}

/// What `cfg` may still spend today under its caps, or `None` without caps.
pub fn allowance(cfg: &rails::Provider, history: &History, now: chrono::DateTime<chrono::Utc>) -> Option<Allowance> {
    let (caps, paid) = cfg.kind.caps()?;
    let (usd, calls) = history.cost_on_day(&cfg.name, now);
    Some(Allowance {
        calls: Some((caps.max_calls_per_day as u64).saturating_sub(calls)),
        usd: paid.then(|| (caps.max_usd_per_day - usd).max(0.0)),
    })
}

//! Pick, as the step does it: which providers are eligible (and why not),
//! what to focus on, and the choice itself (DESIGN §3 "Pick", §8).

use serde::Serialize;

use crate::history::{History, ProviderStats};
use crate::intent::Intent;
use crate::pick::{self, Candidate, Inputs, Pick};
use crate::propose::context::Focus;
pub use crate::propose::provider::roster::{HEARTBEAT, allowance, at_cap, configured};
use crate::propose::provider::{self, Provider, Surroundings};
use crate::rails::{self, ProviderKind, Rails};

/// One provider's standing, as `ratchet status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Standing {
    pub name: String,
    pub kind: String,
    pub tier: Option<String>,
    pub tier_index: usize,
    /// Why the tier is what it is when the rails, not the log, set it:
    /// "set in rails" (the provider's `tier`), or "the human is Gate 2" (the
    /// `human` kind is not tier-locked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier_set: Option<String>,
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
                tier_set: match (&cfg.kind, rails.trust.granted.get(&cfg.name)) {
                    (ProviderKind::Human, Some(_)) => Some("the human is Gate 2, not tier-locked".into()),
                    (_, Some(&g)) if g == t.tier => Some("set in rails".into()),
                    _ => None,
                },
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
    if let Some(reason) = at_cap(cfg, history, now) {
        return Some(reason);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Event;
    use crate::propose::provider::Allowance;
    use crate::record::*;

    fn at(t: &str) -> chrono::DateTime<chrono::Utc> {
        crate::clock::parse(t).unwrap()
    }

    /// A log of steps by `provider`, each `(time, calls, usd)`.
    fn history(provider: &str, steps: &[(&str, u64, f64)]) -> History {
        let events = steps.iter().enumerate().map(|(i, (ts, calls, usd))| {
            let body = StepBody {
                intent: "i".into(),
                rails: "r".into(),
                versions: Versions::current(),
                base: None,
                pick: PickRecord {
                    provider: provider.into(),
                    reason: crate::pick::Reason::Thompson,
                    seed: "s".into(),
                    focus: "intent".into(),
                    note: None,
                    capped: Vec::new(),
                },
                proposal: None,
                gate1: vec![],
                gate2: None,
                apply: None,
                signals: None,
                utility: None,
                cost: Cost { usd: *usd, input_tokens: 10, output_tokens: 10, calls: *calls },
                sandbox: None,
                outcome: Outcome::Noop,
                reason: None,
                detail: None,
                target: None,
                extracted: None,
                passage: None,
            };
            Event {
                seq: i as u64 + 1,
                id: format!("s{}", i + 1),
                ts: at(ts),
                kind: "step".into(),
                body: serde_json::to_string(&body).unwrap(),
                at: None,
            }
        });
        History::from_events(events.collect::<Vec<_>>())
    }

    fn paid(calls: u32, usd: f64) -> rails::Provider {
        let text = format!(
            "[paths]\nallow = [\"docs/**\"]\n[providers.m]\nkind = \"openai\"\nurl = \"https://api.example.com/v1\"\nmodel = \"x\"\n\
             enabled = true\nmax_calls_per_day = {calls}\nmax_usd_per_day = {usd}\nusd_per_1k_input = 0.001\nusd_per_1k_output = 0.002\n"
        );
        rails::parse(&text, "").unwrap().providers["m"].clone()
    }

    const NOON: &str = "2026-11-21T12:00:00Z";

    #[test]
    fn the_call_cap_at_one_under_and_one_over() {
        let cfg = paid(3, 100.0);
        let under = history("m", &[("2026-11-21T01:00:00Z", 1, 0.0), ("2026-11-21T02:00:00Z", 1, 0.0)]);
        assert_eq!(at_cap(&cfg, &under, at(NOON)), None, "one under the cap");
        assert_eq!(allowance(&cfg, &under, at(NOON)).unwrap().calls, Some(1));
        let at_it = history("m", &[("2026-11-21T01:00:00Z", 1, 0.0), ("2026-11-21T02:00:00Z", 2, 0.0)]);
        assert_eq!(at_cap(&cfg, &at_it, at(NOON)).as_deref(), Some("call cap reached: 3 of 3 calls today"));
        let over = history("m", &[("2026-11-21T01:00:00Z", 4, 0.0)]);
        assert!(at_cap(&cfg, &over, at(NOON)).is_some(), "one over the cap");
        assert_eq!(allowance(&cfg, &over, at(NOON)).unwrap().calls, Some(0));
    }

    #[test]
    fn the_usd_cap_at_one_under_and_one_over() {
        let cfg = paid(100, 1.0);
        let under = history("m", &[("2026-11-21T01:00:00Z", 1, 0.99)]);
        assert_eq!(at_cap(&cfg, &under, at(NOON)), None);
        let left = allowance(&cfg, &under, at(NOON)).unwrap().usd.unwrap();
        assert!((left - 0.01).abs() < 1e-9, "{left}");
        let at_it = history("m", &[("2026-11-21T01:00:00Z", 1, 0.5), ("2026-11-21T02:00:00Z", 1, 0.5)]);
        assert_eq!(at_cap(&cfg, &at_it, at(NOON)).as_deref(), Some("cost cap reached: $1.00 of $1.00 today"));
        let over = history("m", &[("2026-11-21T01:00:00Z", 1, 1.01)]);
        assert!(at_cap(&cfg, &over, at(NOON)).is_some());
        // Another provider's spend is not this one's.
        assert_eq!(at_cap(&cfg, &history("other", &[("2026-11-21T01:00:00Z", 9, 9.0)]), at(NOON)), None);
    }

    #[test]
    fn the_caps_start_again_at_the_utc_day_boundary() {
        let cfg = paid(2, 1.0);
        let h = history("m", &[("2026-11-21T23:59:58Z", 1, 0.6), ("2026-11-21T23:59:59Z", 1, 0.4)]);
        assert!(at_cap(&cfg, &h, at("2026-11-21T23:59:59Z")).is_some());
        assert_eq!(at_cap(&cfg, &h, at("2026-11-22T00:00:00Z")), None);
        assert_eq!(
            allowance(&cfg, &h, at("2026-11-22T00:00:00Z")).unwrap(),
            Allowance { calls: Some(2), usd: Some(1.0) }
        );
    }

    #[test]
    fn a_local_endpoint_is_free_and_capped_only_by_calls() {
        let text =
            "[paths]\nallow = [\"docs/**\"]\n[providers.l]\nkind = \"ollama\"\nmodel = \"x\"\nmax_calls_per_day = 1\n";
        let cfg = rails::parse(text, "").unwrap().providers["l"].clone();
        let a = allowance(&cfg, &History::default(), at(NOON)).unwrap();
        assert_eq!(a, Allowance { calls: Some(1), usd: None }, "no USD cap on a free endpoint");
        assert!(at_cap(&cfg, &history("l", &[("2026-11-21T01:00:00Z", 1, 0.0)]), at(NOON)).is_some());
        let uncapped = "[paths]\nallow = [\"docs/**\"]\n[providers.l]\nkind = \"ollama\"\nmodel = \"x\"\n";
        let cfg = rails::parse(uncapped, "").unwrap().providers["l"].clone();
        assert_eq!(allowance(&cfg, &history("l", &[("2026-11-21T01:00:00Z", 50, 0.0)]), at(NOON)), None);
    }
}

//! The validators of `[providers.NAME]` and `[critics.NAME]`.
//!
//! A provider table takes `kind`, `enabled`, `timeout_s` and `tier` (a
//! starting tier the operator grants, which must name a `[[trust.tiers]]`
//! entry) whatever its kind, and the keys of its kind besides; a key of
//! another kind is refused, since a setting that silently does nothing is
//! a hole. The `command` kind runs a child: `command`, `network` (off
//! unless asked for) and `env` (names passed through, secrets allowed: an
//! agent CLI needs its API key). The `human` kind is granted the top tier:
//! the human at the terminal is Gate 2, so not tier-locked.

use ::toml::Spanned;

use super::ladder::tier_names;
use super::raw::{TomlCritic, TomlProvider};
use super::validate::Validator;
use super::*;

impl Validator<'_> {
    /// Every `[providers.NAME]`; records each grant in `trust.granted`.
    pub(super) fn providers(
        &self,
        raw: BTreeMap<String, Spanned<TomlProvider>>,
        policy: &PathPolicy,
        trust: &mut Trust,
    ) -> Result<BTreeMap<String, Provider>, RailsError> {
        let mut providers = BTreeMap::new();
        for (name, p) in raw {
            let provider = self.provider(&name, p, policy, trust)?;
            let top = trust.tiers.len().checked_sub(1);
            let granted = match (&provider.kind, top) {
                (ProviderKind::Human, Some(top)) => Some(top),
                _ => provider.tier,
            };
            if let Some(g) = granted {
                trust.granted.insert(name.clone(), g);
            }
            providers.insert(name, provider);
        }
        Ok(providers)
    }

    fn provider(
        &self,
        name: &str,
        p: Spanned<TomlProvider>,
        policy: &PathPolicy,
        trust: &Trust,
    ) -> Result<Provider, RailsError> {
        let span = p.span();
        let p = p.into_inner();
        let present: Vec<(&str, bool)> = vec![
            ("command", p.command.is_some()),
            ("network", p.network.is_some()),
            ("env", p.env.is_some()),
            ("url", p.url.is_some()),
            ("model", p.model.is_some()),
            ("num_ctx", p.num_ctx.is_some()),
            ("max_prompt_tokens", p.max_prompt_tokens.is_some()),
            ("max_output_tokens", p.max_output_tokens.is_some()),
            ("paid", p.paid.is_some()),
            ("api_key_env", p.api_key_env.is_some()),
            ("max_usd_per_day", p.max_usd_per_day.is_some()),
            ("max_calls_per_day", p.max_calls_per_day.is_some()),
            ("usd_per_1k_input", p.usd_per_1k_input.is_some()),
            ("usd_per_1k_output", p.usd_per_1k_output.is_some()),
            ("journal", p.journal.is_some()),
        ];
        let allowed: &[&str] = match p.kind.as_str() {
            "command" => &["command", "network", "env"],
            "human" => &[],
            "ollama" | "openai" => super::model::KEYS,
            "heartbeat" => &["journal"],
            "agent" => &["command", "network", "env", "max_usd_per_day", "max_calls_per_day"],
            other => {
                return Err(self.invalid(
                    span,
                    format!("provider {name:?} has unknown kind {other:?}"),
                    "use one of: command, agent, human, ollama, openai, heartbeat",
                ));
            }
        };
        if let Some((key, _)) = present.iter().find(|(k, set)| *set && !allowed.contains(k)) {
            return Err(self.invalid(
                span,
                format!("provider {name:?}: key `{key}` does not apply to kind {:?}", p.kind),
                if allowed.is_empty() {
                    "this kind takes no settings besides kind, enabled, timeout_s and tier".to_string()
                } else {
                    format!("keys for this kind: {}", allowed.join(", "))
                },
            ));
        }
        let tier = match &p.tier {
            None => None,
            Some(t) => Some(trust.index(t.get_ref()).ok_or_else(|| {
                self.invalid(
                    t.span(),
                    format!("provider {name:?}: tier {:?} names no [[trust.tiers]] entry", t.get_ref()),
                    if trust.tiers.is_empty() {
                        "define [[trust.tiers]] first, or remove the tier".to_string()
                    } else {
                        format!("use one of: {}", tier_names(trust))
                    },
                )
            })?),
        };
        let timeout_default = match p.kind.as_str() {
            "ollama" => 300,
            "human" => 3600,
            "heartbeat" => 30,
            _ => 600,
        };
        let timeout_s = p.timeout_s.unwrap_or(timeout_default);
        if timeout_s == 0 {
            return Err(self.invalid(
                span,
                format!("provider {name:?} has timeout_s = 0"),
                "give it at least one second",
            ));
        }
        let (kind, default_enabled) = match p.kind.as_str() {
            "command" => {
                let argv = p.command.unwrap_or_default();
                if argv.is_empty() || argv[0].trim().is_empty() {
                    return Err(self.invalid(
                        span,
                        format!("provider {name:?} of kind \"command\" needs a non-empty `command`"),
                        "set command = [\"program\", \"arg\"]",
                    ));
                }
                let env = self.env_names(p.env.as_deref().unwrap_or_default(), &format!("[providers.{name}]"), true)?;
                (ProviderKind::Command { argv, network: p.network.unwrap_or(false), env }, true)
            }
            "human" => (ProviderKind::Human, true),
            "ollama" | "openai" => {
                let raw = super::model::RawEndpoint {
                    url: p.url,
                    model: p.model,
                    api_key_env: p.api_key_env,
                    num_ctx: p.num_ctx,
                    max_prompt_tokens: p.max_prompt_tokens,
                    max_output_tokens: p.max_output_tokens,
                    paid: p.paid,
                    enabled: p.enabled,
                    max_usd_per_day: p.max_usd_per_day,
                    max_calls_per_day: p.max_calls_per_day,
                    usd_per_1k_input: p.usd_per_1k_input,
                    usd_per_1k_output: p.usd_per_1k_output,
                };
                let (endpoint, enabled) = super::model::endpoint(name, &p.kind, raw)
                    .map_err(|r| self.invalid(span.clone(), r.message, r.hint))?;
                let kind = if p.kind == "ollama" {
                    ProviderKind::Ollama { endpoint }
                } else {
                    ProviderKind::OpenAi { endpoint }
                };
                (kind, enabled)
            }
            "heartbeat" => {
                let journal = p.journal.unwrap_or_else(|| "docs/ratchet-journal.md".into());
                match policy.classify(&journal) {
                    PathClass::Allowed(_) => {}
                    other => {
                        return Err(self.invalid(
                            span,
                            format!("the heartbeat journal {journal:?} is not a path patches may touch ({other:?})"),
                            "point journal at an allowlisted file such as docs/ratchet-journal.md",
                        ));
                    }
                }
                (ProviderKind::Heartbeat { journal }, true)
            }
            "agent" => {
                let argv = p.command.unwrap_or_default();
                if argv.is_empty() || argv[0].trim().is_empty() {
                    return Err(self.invalid(
                        span,
                        format!("provider {name:?} of kind \"agent\" needs a non-empty `command`"),
                        "set command = [\"claude\", \"-p\", \"{task}\", \"--output-format\", \"json\"], say",
                    ));
                }
                let env = self.env_names(p.env.as_deref().unwrap_or_default(), &format!("[providers.{name}]"), true)?;
                let caps = match (p.max_usd_per_day, p.max_calls_per_day) {
                    (None, None) => None,
                    (usd, calls) => {
                        if usd.is_some_and(|u| !u.is_finite() || u < 0.0) {
                            return Err(self.invalid(
                                span,
                                format!("provider {name:?}: max_usd_per_day must be a number of at least 0"),
                                "set max_usd_per_day = 2.0, say",
                            ));
                        }
                        Some(Caps {
                            max_usd_per_day: usd.unwrap_or(f64::INFINITY),
                            max_calls_per_day: calls.unwrap_or(u32::MAX),
                            usd_per_1k_input: 0.0,
                            usd_per_1k_output: 0.0,
                        })
                    }
                };
                (ProviderKind::Agent { argv, network: p.network.unwrap_or(false), env, caps }, true)
            }
            _ => unreachable!("kinds were checked above"),
        };
        Ok(Provider { name: name.to_string(), enabled: p.enabled.unwrap_or(default_enabled), kind, timeout_s, tier })
    }

    /// Every `[critics.NAME]`: a configured provider, a weight capped at 0.1.
    pub(super) fn critics(
        &self,
        raw: BTreeMap<String, Spanned<TomlCritic>>,
        providers: &BTreeMap<String, Provider>,
    ) -> Result<BTreeMap<String, Critic>, RailsError> {
        let mut critics = BTreeMap::new();
        for (name, c) in raw {
            let span = c.span();
            let c = c.into_inner();
            if !providers.contains_key(&c.provider) {
                return Err(self.invalid(
                    span,
                    format!("critic {name:?} names provider {:?}, which is not configured", c.provider),
                    "add it under [providers]",
                ));
            }
            let weight = c.weight.unwrap_or(0.1);
            if !(0.0..=0.1).contains(&weight) {
                return Err(self.invalid(
                    span,
                    format!("critic {name:?} has weight {weight}, above the cap of 0.1"),
                    "critics are capped: set weight <= 0.1",
                ));
            }
            critics.insert(
                name.clone(),
                Critic { name, provider: c.provider, max_calls_per_day: c.max_calls_per_day.unwrap_or(20), weight },
            );
        }
        Ok(critics)
    }
}

//! The model endpoints of `[providers.NAME]` (kinds `ollama` and `openai`):
//! what is paid, what caps a paid endpoint needs, and the prompt budget.
//!
//! An endpoint is **paid** when its URL is off loopback, or when the rails
//! say `paid = true` (a local proxy in front of a hosted API is paid too).
//! Whether a URL is on loopback is decided by the `url` crate's WHATWG
//! parser, never by hand: `http://evil.com\@localhost/` is `evil.com` to a
//! browser and to reqwest, and so it is here. Only `localhost` and literal
//! loopback addresses (127.0.0.0/8, ::1, and ::ffff:127.x) are loopback; a
//! name that merely resolves to 127.0.0.1 today is not (DNS can change).
//!
//! A paid endpoint may be enabled only with `max_usd_per_day`,
//! `max_calls_per_day` and both prices; without `enabled = true` it is off.
//! A local endpoint is free (its spend is 0) but its calls are still
//! counted in each entry's `cost`, and it may have a call cap too.

use super::Caps;

/// The context window assumed when the rails do not give `num_ctx`.
pub const DEFAULT_NUM_CTX: u32 = 8192;
/// The room left for the answer when the rails do not give `max_output_tokens`.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 1024;

/// A model endpoint, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    /// The base URL: `http://127.0.0.1:11434` for Ollama, `…/v1` for OpenAI-compatible servers.
    pub url: String,
    pub model: String,
    /// The environment variable holding the API key (sent as a bearer token).
    pub api_key_env: Option<String>,
    /// The model's context window in tokens (sent to Ollama as `options.num_ctx`).
    pub num_ctx: u32,
    /// The prompt budget in tokens.
    pub max_prompt_tokens: u32,
    /// The most tokens one answer may take (a cut-off answer is retried once with twice this).
    pub max_output_tokens: u32,
    /// Off loopback, or `paid = true` in the rails.
    pub paid: bool,
    /// Daily caps and prices; required when paid and enabled.
    pub caps: Option<Caps>,
}

/// The raw keys of a model endpoint, as `rails.toml` gives them.
#[derive(Default)]
pub struct RawEndpoint {
    pub url: Option<String>,
    pub model: Option<String>,
    pub api_key_env: Option<String>,
    pub num_ctx: Option<u32>,
    pub max_prompt_tokens: Option<u32>,
    pub max_output_tokens: Option<u32>,
    pub paid: Option<bool>,
    pub enabled: Option<bool>,
    pub max_usd_per_day: Option<f64>,
    pub max_calls_per_day: Option<u32>,
    pub usd_per_1k_input: Option<f64>,
    pub usd_per_1k_output: Option<f64>,
}

/// The keys a model kind takes.
pub const KEYS: &[&str] = &[
    "url",
    "model",
    "api_key_env",
    "num_ctx",
    "max_prompt_tokens",
    "max_output_tokens",
    "paid",
    "max_usd_per_day",
    "max_calls_per_day",
    "usd_per_1k_input",
    "usd_per_1k_output",
];

/// Why an endpoint's settings are refused: the message and the next action.
pub struct Refusal {
    pub message: String,
    pub hint: String,
}

fn refuse(message: String, hint: impl Into<String>) -> Refusal {
    Refusal { message, hint: hint.into() }
}

/// Validates the endpoint of provider `name` of `kind` (`ollama` or
/// `openai`); returns it and whether it is enabled.
pub fn endpoint(name: &str, kind: &str, raw: RawEndpoint) -> Result<(Endpoint, bool), Refusal> {
    let url = match (raw.url, kind) {
        (Some(u), _) if !u.trim().is_empty() => u,
        (_, "ollama") => "http://127.0.0.1:11434".to_string(),
        _ => {
            return Err(refuse(
                format!("provider {name:?} of kind {kind:?} needs `url`"),
                format!("add url = \"http://127.0.0.1:8080/v1\" (or the endpoint's base URL) to [providers.{name}]"),
            ));
        }
    };
    let parsed = url::Url::parse(&url).map_err(|e| {
        refuse(
            format!("provider {name:?}: url {url:?} is not a URL ({e})"),
            "write the endpoint's base URL, such as http://127.0.0.1:11434",
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(refuse(
            format!("provider {name:?}: url {url:?} is not an http(s) URL with a host"),
            "use http:// or https:// followed by a host",
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refuse(
            format!("provider {name:?}: url {url:?} carries credentials"),
            "remove the user:password@ part; put the key in the variable named by api_key_env",
        ));
    }
    let model = raw.model.filter(|m| !m.trim().is_empty()).ok_or_else(|| {
        refuse(
            format!("provider {name:?} of kind {kind:?} needs `model`"),
            format!("add model = \"...\" to [providers.{name}]"),
        )
    })?;
    let num_ctx = raw.num_ctx.unwrap_or(DEFAULT_NUM_CTX);
    let max_output_tokens = raw.max_output_tokens.unwrap_or(DEFAULT_MAX_OUTPUT_TOKENS);
    if num_ctx < 512 || max_output_tokens < 64 || max_output_tokens >= num_ctx {
        return Err(refuse(
            format!(
                "provider {name:?}: num_ctx = {num_ctx} and max_output_tokens = {max_output_tokens} leave no room for a prompt"
            ),
            "num_ctx is the model's context window (at least 512); max_output_tokens must be at least 64 and below it",
        ));
    }
    // The default prompt budget: the window less twice the answer's room
    // (a cut-off answer is retried with twice the room).
    let room = num_ctx.saturating_sub(2 * max_output_tokens).max(num_ctx / 4);
    let max_prompt_tokens = raw.max_prompt_tokens.unwrap_or(room);
    if max_prompt_tokens < 256 || max_prompt_tokens + max_output_tokens > num_ctx {
        return Err(refuse(
            format!(
                "provider {name:?}: max_prompt_tokens = {max_prompt_tokens} with max_output_tokens = {max_output_tokens} does not fit num_ctx = {num_ctx}"
            ),
            "give max_prompt_tokens at least 256, and keep max_prompt_tokens + max_output_tokens within num_ctx",
        ));
    }
    let paid = raw.paid.unwrap_or(false) || !is_loopback_url(&url);
    let enabled = raw.enabled.unwrap_or(!paid);
    let prices = (raw.usd_per_1k_input, raw.usd_per_1k_output);
    for (key, v) in
        [("max_usd_per_day", raw.max_usd_per_day), ("usd_per_1k_input", prices.0), ("usd_per_1k_output", prices.1)]
    {
        if let Some(v) = v {
            if !(v.is_finite() && v >= 0.0) {
                return Err(refuse(
                    format!("provider {name:?}: {key} = {v} is not a non-negative amount"),
                    "amounts are US dollars, 0 or more",
                ));
            }
        }
    }
    let caps = match (raw.max_usd_per_day, raw.max_calls_per_day) {
        (usd, Some(calls)) if usd.is_some() || !paid => Some(Caps {
            max_usd_per_day: usd.unwrap_or(0.0),
            max_calls_per_day: calls,
            usd_per_1k_input: prices.0.unwrap_or(0.0),
            usd_per_1k_output: prices.1.unwrap_or(0.0),
        }),
        _ => None,
    };
    if paid && enabled {
        let why = if is_loopback_url(&url) { "paid = true".to_string() } else { format!("{url} is not on loopback") };
        if caps.is_none() {
            return Err(refuse(
                format!("provider {name:?} is paid ({why}) and enabled without caps"),
                format!(
                    "add max_usd_per_day and max_calls_per_day (and usd_per_1k_input, usd_per_1k_output) to [providers.{name}], or set enabled = false"
                ),
            ));
        }
        if prices.0.is_none() || prices.1.is_none() {
            return Err(refuse(
                format!("provider {name:?} is paid but its prices are not set, so its spend cannot be capped"),
                "set usd_per_1k_input and usd_per_1k_output",
            ));
        }
    }
    Ok((
        Endpoint {
            url,
            model,
            api_key_env: raw.api_key_env,
            num_ctx,
            max_prompt_tokens,
            max_output_tokens,
            paid,
            caps,
        },
        enabled,
    ))
}

/// Whether `url` points at this machine (so calling it costs nothing),
/// decided by the WHATWG URL parser that the HTTP client also uses.
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else { return false };
    if !matches!(parsed.scheme(), "http" | "https") {
        return false;
    }
    match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_decided_by_the_url_parser_on_hostile_urls() {
        for u in [
            "http://127.0.0.1:11434",
            "http://localhost/v1",
            "http://LOCALHOST:8080/v1",
            "http://[::1]:8080/v1",
            "http://127.8.9.10/",
            "http://[::ffff:127.0.0.1]/",
            "http://0x7f.1/",     // WHATWG reads hex and short forms: 127.0.0.1
            "http://2130706433/", // 127.0.0.1 as one decimal number
            "http://127.1/",
        ] {
            assert!(is_loopback_url(u), "{u} is loopback");
        }
        for u in [
            "https://api.openai.com/v1",
            r"http://evil.com\@localhost/", // the host is evil.com (the hand parser said localhost)
            r"http://evil.com\@127.0.0.1:80/",
            "http://localhost@evil.com/",
            "http://127.0.0.1@evil.com/",
            "http://127.0.0.1.evil.com/v1",
            "http://localhost.evil.com/",
            "http://evil.com#@localhost/",
            "http://evil.com?@localhost/",
            "http://evil.com/\\@localhost/",
            "http://[::2]/",
            "http://0.0.0.0:11434/", // every interface, not loopback
            "http://10.0.0.1/",
            "file:///etc/passwd",
            "ftp://127.0.0.1/",
            "localhost:11434", // not a URL with a host at all
            "",
            "http://",
        ] {
            assert!(!is_loopback_url(u), "{u} is not loopback");
        }
    }

    fn raw(url: &str) -> RawEndpoint {
        RawEndpoint { url: Some(url.into()), model: Some("m".into()), ..RawEndpoint::default() }
    }

    #[test]
    fn a_hostile_url_is_paid_and_so_off_without_caps() {
        let (e, enabled) = endpoint("x", "openai", raw(r"http://evil.com\@localhost/v1")).ok().unwrap();
        assert!(e.paid && !enabled);
        let r = RawEndpoint { enabled: Some(true), ..raw(r"http://evil.com\@localhost/v1") };
        let Err(refusal) = endpoint("x", "openai", r) else { panic!("enabled without caps") };
        assert!(
            refusal.message.contains("is paid") && refusal.message.contains("not on loopback"),
            "{}",
            refusal.message
        );
    }

    #[test]
    fn paid_true_makes_a_local_proxy_paid() {
        let (e, enabled) =
            endpoint("x", "openai", RawEndpoint { paid: Some(true), ..raw("http://127.0.0.1:4000/v1") }).ok().unwrap();
        assert!(e.paid && !enabled);
        let r = RawEndpoint {
            paid: Some(true),
            enabled: Some(true),
            max_usd_per_day: Some(1.0),
            max_calls_per_day: Some(10),
            usd_per_1k_input: Some(0.001),
            usd_per_1k_output: Some(0.002),
            ..raw("http://127.0.0.1:4000/v1")
        };
        let (e, enabled) = endpoint("x", "openai", r).ok().unwrap();
        assert!(e.paid && enabled);
        assert_eq!(e.caps.unwrap().max_calls_per_day, 10);
    }

    #[test]
    fn credentials_in_the_url_are_refused() {
        assert!(endpoint("x", "openai", raw("http://user:pw@127.0.0.1/v1")).is_err());
    }

    #[test]
    fn the_prompt_budget_defaults_from_the_context_window() {
        let (e, _) =
            endpoint("x", "ollama", RawEndpoint { num_ctx: Some(4096), ..raw("http://127.0.0.1:11434") }).ok().unwrap();
        assert_eq!((e.num_ctx, e.max_output_tokens, e.max_prompt_tokens), (4096, 1024, 2048));
        let r = RawEndpoint { num_ctx: Some(4096), max_prompt_tokens: Some(4000), ..raw("http://127.0.0.1:11434") };
        assert!(endpoint("x", "ollama", r).is_err(), "prompt + answer over the window");
    }
}

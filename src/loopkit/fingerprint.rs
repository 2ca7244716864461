//! Grouping failures into pains: a deterministic, versioned fingerprint in
//! the style of Sentry's grouping.
//!
//! A fingerprint is an ordered list of named components; the pain id is a
//! hash of the version and the components, so it is the same for the same
//! failure whatever the order of arrival, the process or the machine. The
//! components are kept beside the pain, so every pain explains why its spans
//! belong together.
//!
//! Version `fp2` (fp1, plus: .NET and Go stack frames, HTTP client spans told
//! apart by where they went, ids without digits masked by shape) uses, in
//! order:
//! - `signal`: the signal type (`exception`, `http_5xx`, `error`, ...);
//! - `service`: `service.name` of the resource;
//! - `operation`: the span name with route parameters normalised
//!   (`GET /users/123` → `GET /users/{id}`; `http.route` wins when present);
//!   an HTTP client span is `METHOD host route` ([`span_operation`]);
//! - for exceptions: `exception.type`, then `frames` — the top three in-app
//!   stack frames (module and function, never line numbers) — or, when no
//!   frame is in-app, `message`: the exception message masked;
//! - for `http_5xx`: `http.status_code`;
//! - for `error`: `message`, the status message masked;
//! - for `eval_fail`: `eval`, the name of the failed eval.
//!
//! Masking replaces the variable parts of a message: quoted values, urls,
//! emails, paths, uuids, and numbers, hex and ids (one placeholder); ids
//! with few or no digits (`ord_xpuEX3jASE`) by their shape ([`is_opaque_id`]).
//!
//! A failing span whose failure was caused by a failing child is not a pain
//! of its own (see [`crate::loopkit::normalise::link_causes`]).
//!
//! Invariant: everything here is a pure function of its input; changing any
//! rule means a new version (and a recluster of stored records).

use sha2::{Digest, Sha256};

/// The fingerprint version written beside every pain and record.
pub const VERSION: &str = "fp2";
/// In-app frames kept in a fingerprint.
pub const MAX_FRAMES: usize = 3;

/// What a fingerprint is made of, before hashing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub version: &'static str,
    pub components: Vec<(&'static str, String)>,
}

/// The inputs of a fingerprint, borrowed from a normalised record.
#[derive(Clone, Copy, Debug, Default)]
pub struct FingerprintInput<'a> {
    pub signal: &'a str,
    pub service: &'a str,
    pub operation: &'a str,
    pub exception_type: Option<&'a str>,
    pub exception_message: Option<&'a str>,
    pub stacktrace: Option<&'a str>,
    pub status_message: Option<&'a str>,
    pub http_status: Option<i64>,
    pub eval_name: Option<&'a str>,
}

impl Fingerprint {
    pub fn of(input: &FingerprintInput<'_>) -> Fingerprint {
        let mut c: Vec<(&'static str, String)> = vec![
            ("signal", input.signal.to_string()),
            ("service", input.service.to_string()),
            ("operation", input.operation.to_string()),
        ];
        if let Some(ty) = input.exception_type.filter(|t| !t.is_empty()) {
            c.push(("exception.type", ty.to_string()));
            let frames = input.stacktrace.map(in_app_frames).unwrap_or_default();
            if frames.is_empty() {
                if let Some(m) = input.exception_message.filter(|m| !m.is_empty()) {
                    c.push(("message", mask(m)));
                }
            } else {
                c.push(("frames", frames.join(" | ")));
            }
        } else if input.signal == "http_5xx" {
            if let Some(code) = input.http_status {
                c.push(("http.status_code", code.to_string()));
            }
        } else if let Some(m) = input.exception_message.or(input.status_message).filter(|m| !m.is_empty()) {
            if input.signal == "error" || input.signal == "exception" {
                c.push(("message", mask(m)));
            }
        }
        if input.signal == "eval_fail" {
            if let Some(name) = input.eval_name.filter(|n| !n.is_empty()) {
                c.push(("eval", name.to_string()));
            }
        }
        Fingerprint { version: VERSION, components: c }
    }

    /// `pn_` and 16 hex characters of SHA-256 over the version and components.
    pub fn pain_id(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.version.as_bytes());
        for (name, value) in &self.components {
            h.update([0u8]);
            h.update(name.as_bytes());
            h.update([0u8]);
            h.update(value.as_bytes());
        }
        let d = h.finalize();
        format!("pn_{}", crate::loopkit::keys::hex(&d[..8]))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.components.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// A one-line title for people: "TypeError in checkout: POST /cart/{id}".
    pub fn title(&self) -> String {
        let service = self.get("service").unwrap_or("unknown");
        let op = self.get("operation").unwrap_or("");
        let signal = self.get("signal").unwrap_or("");
        let head = match signal {
            "exception" => self.get("exception.type").unwrap_or("Exception").to_string(),
            "http_5xx" => format!("HTTP {}", self.get("http.status_code").unwrap_or("5xx")),
            "slow" => "Slow".to_string(),
            "eval_fail" => match self.get("eval") {
                Some(e) => format!("Eval {e} failed"),
                None => "Eval failed".to_string(),
            },
            "feedback" => "Negative feedback".to_string(),
            _ => match self.get("exception.type") {
                Some(t) => t.to_string(),
                None => "Error".to_string(),
            },
        };
        let mut t = format!("{head} in {service}: {op}");
        if let Some(m) = self.get("message") {
            t.push_str(" — ");
            t.push_str(&truncate(m, 120));
        }
        t
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_string() } else { s.chars().take(max).chain("…".chars()).collect() }
}

// ---------------------------------------------------------------------------
// Route normalisation

/// The operation of a span: `http.route` (with the method) when the
/// instrumentation gave one, else the span name with its path parameters
/// replaced by `{id}` and any query string dropped.
pub fn operation(name: &str, http_method: Option<&str>, http_route: Option<&str>) -> String {
    if let Some(route) = http_route.filter(|r| !r.is_empty()) {
        let route = normalise_path(route);
        return match http_method.filter(|m| !m.is_empty()) {
            Some(m) if !name.contains(&route) || name.starts_with(m) => format!("{m} {route}"),
            _ => route,
        };
    }
    name.split(' ')
        .map(|tok| if tok.starts_with('/') { normalise_path(tok) } else { tok.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where an outgoing call went: the attributes that tell two downstream
/// services (or routes) apart.
#[derive(Clone, Debug, Default)]
pub struct Downstream {
    /// `server.address` (or `net.peer.name`, `http.host`, the host of `url.full`).
    pub host: Option<String>,
    /// `url.template`.
    pub template: Option<String>,
}

const HTTP_METHODS: &[&str] =
    &["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "_OTHER"];
/// OTLP's SpanKind CLIENT.
pub const KIND_CLIENT: i32 = 3;

/// The host of a URL (`https://user@api.example.com:443/x` → `api.example.com:443`).
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The operation of a span, telling outgoing HTTP calls apart by where they
/// went: an HTTP client span (kind CLIENT, or a span named by its method
/// alone) is `METHOD host route` — the route from `url.template`, else
/// `http.route`, else the path in its name — so that two services' 503s
/// are two pains. Any other span: [`operation`].
pub fn span_operation(
    name: &str,
    kind: i32,
    http_method: Option<&str>,
    http_route: Option<&str>,
    downstream: &Downstream,
) -> String {
    let bare_method = HTTP_METHODS.contains(&name.trim());
    let method = http_method.filter(|m| !m.is_empty()).or(bare_method.then_some(name.trim()));
    let is_client = kind == KIND_CLIENT || (bare_method && http_route.is_none_or(str::is_empty));
    if let (true, Some(method)) = (is_client, method) {
        let host = downstream.host.as_deref().filter(|h| !h.is_empty());
        let route = downstream
            .template
            .as_deref()
            .or(http_route)
            .filter(|r| !r.is_empty())
            .map(normalise_path)
            .or_else(|| name.split(' ').find(|t| t.starts_with('/')).map(normalise_path));
        if host.is_some() || route.is_some() {
            return format!("{method} {}{}", host.unwrap_or(""), route.unwrap_or_default()).trim_end().to_string();
        }
    }
    operation(name, http_method, http_route)
}

/// `/users/123/orders/9f8e...?x=1` → `/users/{id}/orders/{id}`. Template
/// segments (`:id`, `{id}`, `<id>`) are kept.
pub fn normalise_path(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    path.split('/').map(|seg| if is_param_segment(seg) { "{id}" } else { seg }).collect::<Vec<_>>().join("/")
}

fn is_param_segment(seg: &str) -> bool {
    if seg.is_empty() || seg.starts_with(':') || seg.starts_with('{') || seg.starts_with('<') {
        return false;
    }
    let digits = seg.bytes().filter(u8::is_ascii_digit).count();
    if digits == seg.len() {
        return true;
    }
    if is_uuid(seg) || (seg.len() >= 8 && seg.bytes().all(|b| b.is_ascii_hexdigit()) && digits > 0) {
        return true;
    }
    // Slugs with long digit runs (order-12345), long opaque tokens, and ids
    // by their shape (ord_xpuEX3jASE).
    longest_digit_run(seg) >= 3 || (seg.len() >= 16 && digits > 0) || is_opaque_id(seg)
}

fn longest_digit_run(s: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for b in s.bytes() {
        if b.is_ascii_digit() {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() })
}

// ---------------------------------------------------------------------------
// Message masking

/// Masks the variable parts of a message so that messages differing only in
/// them compare equal: quoted values → `<str>`, urls → `<url>`, emails →
/// `<email>`, paths → `<path>`, uuids → `<uuid>`, and numbers, hex and
/// opaque ids (tokens with long digit runs) → `<num>` — one placeholder, so
/// that a hex id that happens to be all digits still groups with the
/// others. White space collapses to single spaces.
pub fn mask(message: &str) -> String {
    let unquoted = mask_quotes(message);
    let mut out = String::with_capacity(unquoted.len());
    for (i, token) in unquoted.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        mask_token(token, &mut out);
    }
    out
}

fn mask_quotes(s: &str) -> std::borrow::Cow<'_, str> {
    let b = s.as_bytes();
    if !b.iter().any(|c| matches!(c, b'"' | b'\'' | b'`')) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        let c = b[i];
        // Quotes are ASCII, so byte positions next to them are char boundaries.
        let at_boundary =
            i == 0 || b[i - 1].is_ascii_whitespace() || matches!(b[i - 1], b'=' | b':' | b'(' | b'[' | b'{' | b',');
        if matches!(c, b'"' | b'\'' | b'`') && at_boundary {
            if let Some(len) = b[i + 1..].iter().position(|&d| d == c) {
                out.push_str(&s[copied..i]);
                out.push_str("<str>");
                i += len + 2;
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[copied..]);
    std::borrow::Cow::Owned(out)
}

fn mask_token(token: &str, out: &mut String) {
    let lead_len = token.len() - token.trim_start_matches(['(', '[', '{', '<', '"', '\'']).len();
    let (lead, rest) = token.split_at(lead_len);
    let core = rest.trim_end_matches([')', ']', '}', '>', ',', '.', ';', ':', '!', '?', '"', '\'']);
    let trail = &rest[core.len()..];
    out.push_str(lead);
    if core == "<str>" || core.is_empty() {
        out.push_str(core);
    } else if let Some((k, v)) =
        core.split_once('=').filter(|(k, v)| !k.is_empty() && !v.is_empty() && !k.contains("://"))
    {
        out.push_str(k);
        out.push('=');
        classify(v, out);
    } else {
        classify(core, out);
    }
    out.push_str(trail);
}

fn classify(core: &str, out: &mut String) {
    let digits = core.bytes().filter(u8::is_ascii_digit).count();
    if core.contains("://") {
        out.push_str("<url>");
    } else if is_email(core) {
        out.push_str("<email>");
    } else if is_uuid(core) {
        out.push_str("<uuid>");
    } else if is_path(core) {
        out.push_str("<path>");
    } else if is_hex(core, digits) {
        // Before units: a hex id may end in up to three letters (000000000abc).
        out.push_str("<num>");
    } else if let Some(unit) = number_with_unit(core) {
        out.push_str("<num>");
        out.push_str(unit);
    } else if (digits > 0
        && core.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b',' | b':' | b'_' | b'+' | b'-')))
        || (digits > 0 && (longest_digit_run(core) >= 3 || (core.len() >= 8 && digits >= 2 && !is_width_word(core))))
        || is_opaque_id(core)
        || is_instance_name(core)
    {
        out.push_str("<num>");
    } else {
        out.push_str(core);
    }
}

/// Short words without a vowel that code uses inside identifiers.
const VOWELLESS: &[&str] = &[
    "db", "fs", "js", "ts", "ws", "rx", "tx", "px", "cb", "fn", "id", "ip", "pg", "ms", "ns", "mb", "kb", "gb", "sql",
    "css", "xml", "html", "http", "https", "tcp", "udp", "dns", "rpc", "grpc", "jwt", "cdn", "pdf", "png", "svg",
    "cmd", "ctx", "src", "dst", "pkg", "msg", "btn", "str", "ptr", "nth", "tls", "ssl", "ssh", "smtp", "crm", "mvc",
    "wsgi", "sync", "lynx", "rhythm", "crypt", "mkdir", "rmdir", "pwd", "std", "stdin", "stdout", "stderr", "nltk",
    "npm", "mysql", "ldb", "bcrypt", "scrypt", "lt", "gt", "pk", "fk", "qs", "vm", "sdk", "cli", "lst", "hdr", "mgr",
    "cnt",
];

/// Whether a token is an opaque id by its shape, when it has few or no
/// digits (`ord_xpuEX3jASE`, `cus_NffrFeUfNV2Hib`, `xpuEXjASEqT`): after
/// short lower-case prefixes (`ord_`, `sk_live_`), 8 to 64 letters and
/// digits, mixed case or with digits, split into camel-case words; each
/// sign of randomness scores one — a digit run between letters, a lone
/// lower-case letter or a lone capital inside, a word without a vowel that
/// code does not use — and two or more make an id. Identifiers such as
/// `getUserById`, `XMLHttpRequest`, `Uint8Array` or `ECONNREFUSED` score at
/// most one and stay (the corpus in the tests holds both kinds).
pub fn is_opaque_id(token: &str) -> bool {
    let mut core = token;
    let mut prefixed = false;
    while let Some((prefix, rest)) = core.split_once('_') {
        if (1..=6).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_lowercase()) && !rest.is_empty() {
            core = rest;
            prefixed = true;
        } else {
            break;
        }
    }
    if !(8..=64).contains(&core.len()) || !core.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (mut upper, mut lower, mut digits) = (0, 0, 0);
    for b in core.bytes() {
        match b {
            b'A'..=b'Z' => upper += 1,
            b'a'..=b'z' => lower += 1,
            _ => digits += 1,
        }
    }
    if lower + upper == 0 || (!(upper > 0 && lower > 0) && digits == 0) {
        return false;
    }
    let words = camel_words(core);
    let mut score = 0;
    // Identifiers capitalise once a word (a fifth to a third of their
    // letters); random mixed case, about every other letter.
    let letters = upper + lower;
    if letters >= 10 && (0.42..=0.75).contains(&(upper as f64 / letters as f64)) {
        score += 1;
    }
    let mut acronyms = 0;
    for (i, w) in words.iter().enumerate() {
        let known = VOWELLESS.contains(&w.to_ascii_lowercase().as_str());
        if w.len() >= 2 && w.bytes().all(|b| b.is_ascii_uppercase()) {
            acronyms += 1;
            if acronyms > 1 {
                score += 1; // identifiers rarely hold two acronyms
            }
        }
        if !known && longest_consonant_run(w) >= 4 && w.bytes().any(|b| b.is_ascii_lowercase()) {
            score += 1; // "hcqf": not how words are spelt
        }
        let first = w.as_bytes()[0];
        let inside = i > 0 && i + 1 < words.len();
        if first.is_ascii_digit() {
            // A width or version before a word is how identifiers are
            // spelt (Float64Array, IPv4Address); elsewhere, a sign of chance.
            let before_word = words.get(i + 1).is_some_and(|n| n.len() >= 3 && n.as_bytes()[0].is_ascii_uppercase());
            if inside && !(w.len() <= 2 && before_word) {
                score += 1;
            }
        } else if w.len() == 1 {
            if i > 0 && (first.is_ascii_lowercase() || inside) {
                score += 1;
            }
        } else if w.len() >= 7 && w.bytes().all(|b| b.is_ascii_uppercase()) {
            score += 1; // acronyms are short
        } else if w.bytes().any(|b| b.is_ascii_lowercase())
            && !w.bytes().any(|b| b"aeiouyAEIOUY".contains(&b))
            && !VOWELLESS.contains(&w.to_ascii_lowercase().as_str())
        {
            score += 1;
        }
    }
    // A type prefix (`cus_`, `ord_`) before a long mixed-case token is
    // itself the mark of an id (Stripe's style): one more sign suffices.
    score >= 2 || (prefixed && core.len() >= 10 && upper > 0 && lower > 0 && (score >= 1 || upper * 4 >= letters))
}

/// An identifier whose only digits are a width or version before a word:
/// `Float64Array`, `base64Encode`, `Int32Value`.
fn is_width_word(core: &str) -> bool {
    let words = camel_words(core);
    let digit_words: Vec<usize> = (0..words.len()).filter(|&i| words[i].as_bytes()[0].is_ascii_digit()).collect();
    match digit_words.as_slice() {
        [i] => {
            words[*i].len() <= 2
                && *i > 0
                && words.get(i + 1).is_some_and(|n| n.len() >= 3 && n.as_bytes()[0].is_ascii_uppercase())
                && !is_opaque_id(core)
        }
        _ => false,
    }
}

fn longest_consonant_run(w: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for b in w.bytes() {
        if b.is_ascii_alphabetic() && !b"aeiouAEIOU".contains(&b) {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

/// `getUserByID42x` → `get`, `User`, `By`, `ID`, `42`, `x`.
fn camel_words(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i].is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        } else if b[i].is_ascii_uppercase() {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_uppercase() {
                j += 1;
            }
            if j - i >= 2 && j < b.len() && b[j].is_ascii_lowercase() {
                i = j - 1; // an acronym, then a capitalised word: "XMLHttp"
            } else if j - i >= 2 {
                i = j;
            } else {
                i = j;
                while i < b.len() && b[i].is_ascii_lowercase() {
                    i += 1;
                }
            }
        } else if b[i].is_ascii_lowercase() {
            while i < b.len() && b[i].is_ascii_lowercase() {
                i += 1;
            }
        } else {
            i += 1; // a separator (or any other byte): not a word
            continue;
        }
        words.push(&s[start..i]);
    }
    words
}

/// A short name and an instance number: `eu-3`, `worker_12`, `pod-7` (but
/// not encodings such as `utf-8`).
fn is_instance_name(s: &str) -> bool {
    let Some((name, number)) = s.rsplit_once(['-', '_']) else { return false };
    (1..=8).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase())
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && !matches!(name, "utf" | "iso" | "sha" | "md" | "ipv" | "http" | "tls" | "x" | "v")
}

fn is_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((user, domain)) => {
            !user.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.contains('@')
        }
        None => false,
    }
}

fn is_path(s: &str) -> bool {
    let b = s.as_bytes();
    let windows_drive = b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/');
    windows_drive
        || (s.starts_with('/') && s.len() > 1)
        || s.starts_with("./")
        || s.starts_with("../")
        || s.starts_with("~/")
        || (s.matches('/').count() >= 1 && s.split('/').all(|seg| !seg.is_empty()) && s.contains('.'))
        || s.matches('\\').count() >= 2
}

fn is_hex(s: &str, digits: usize) -> bool {
    if let Some(rest) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_hexdigit());
    }
    s.len() >= 8 && s.bytes().all(|b| b.is_ascii_hexdigit()) && digits > 0 && digits < s.len()
}

fn number_with_unit(s: &str) -> Option<&str> {
    let num_end =
        s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ',' || c == '_' || c == '-' || c == '+'))?;
    let (num, unit) = s.split_at(num_end);
    let ok = num.bytes().any(|b| b.is_ascii_digit())
        && (1..=3).contains(&unit.len())
        && unit.bytes().all(|b| b.is_ascii_alphabetic() || b == b'%');
    ok.then_some(unit)
}

// ---------------------------------------------------------------------------
// Stack frames

/// One frame of a stack trace, as [`stack_frames`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackFrame {
    /// The source file as the runtime printed it (`/app/shop/cart.py`,
    /// `file:///srv/app/x.js`, `C:\build\Shop\Cart.cs`), when it printed one.
    pub file: Option<String>,
    pub function: String,
    pub line: Option<u32>,
    /// `module:function` as the fingerprint names it.
    pub label: String,
}

/// A frame as parsed: `module` decides in-app and names it in the
/// fingerprint; `file` and `line` are where it ran, for people.
struct Parsed {
    module: String,
    func: String,
    file: Option<String>,
    line: Option<u32>,
}

/// The top [`MAX_FRAMES`] in-app frames of a stack trace, most recent first,
/// as `module:function` without line or column numbers. Understands
/// JavaScript (V8), Python, JVM, .NET (`at Ns.Type.Method(args) in
/// path:line N`) and Go (`pkg.Func(...)` then a tab and `file.go:N +0x1f`)
/// traces; anything else yields no frames.
pub fn in_app_frames(stack: &str) -> Vec<String> {
    stack_frames(stack, MAX_FRAMES).into_iter().map(|f| f.label).collect()
}

/// The top `max` in-app frames of a stack trace, most recent first, with
/// the file and line each ran at (what [`in_app_frames`] leaves out).
pub fn stack_frames(stack: &str, max: usize) -> Vec<StackFrame> {
    let mut python = Vec::new();
    let mut others = Vec::new();
    let mut go_func: Option<String> = None;
    for raw in stack.lines() {
        let line = raw.trim();
        if let Some(func) = go_func.take() {
            // Go: the function line is followed by "\t/path/file.go:42 +0x1d".
            if raw.starts_with('\t') && line.contains(".go:") {
                let file = line.split(' ').next().unwrap_or("");
                let (path, n) = split_line_col(file);
                others.push(Parsed { module: path.clone(), func, file: Some(path), line: n });
                continue;
            }
        }
        if let Some(rest) = line.strip_prefix("File \"") {
            // Python: File "/app/shop/cart.py", line 12, in add_item
            let Some((file, tail)) = rest.split_once('"') else { continue };
            let func = tail.rsplit_once(" in ").map(|(_, f)| f.trim()).unwrap_or("?");
            let n = tail
                .split(',')
                .find_map(|part| part.trim().strip_prefix("line "))
                .and_then(|n| n.trim().parse::<u32>().ok());
            python.push(Parsed {
                module: file.to_string(),
                func: func.to_string(),
                file: Some(file.to_string()),
                line: n,
            });
        } else if let Some(rest) = line.strip_prefix("at ") {
            if let Some(f) = parse_dotnet_frame(rest).or_else(|| parse_at_frame(rest)) {
                others.push(f);
            }
        } else if !raw.starts_with(char::is_whitespace) && line.ends_with(')') && !line.starts_with("goroutine ") {
            // Go: main.(*Cart).Add(0xc000010000, {0x1, 0x2}): the function is
            // what stands before the final balanced argument list.
            let mut depth = 0i32;
            let mut start = None;
            for (i, c) in line.char_indices().rev() {
                match c {
                    ')' => depth += 1,
                    '(' => {
                        depth -= 1;
                        if depth == 0 {
                            start = Some(i);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            if let Some(candidate) = start.map(|i| &line[..i]).filter(|c| c.contains('.') && !c.contains(' ')) {
                go_func = Some(candidate.to_string());
            }
        }
    }
    // Python prints the most recent call last.
    python.reverse();
    python
        .into_iter()
        .chain(others)
        .filter(|p| is_in_app(&p.module))
        .take(max)
        .map(|p| StackFrame {
            label: format!("{}:{}", module_of(&p.module), p.func),
            file: p.file,
            function: p.func,
            line: p.line,
        })
        .collect()
}

/// .NET: `Shop.Cart.<AddAsync>d__5.MoveNext() in /src/Cart.cs:line 42`, or
/// without ` in …` when there are no symbols. The frame is the namespace
/// and type as module, the method (async and lambda wrappers unwrapped) as
/// function; never the line.
fn parse_dotnet_frame(rest: &str) -> Option<Parsed> {
    let (call, location) = match rest.split_once(") in ") {
        Some((call, loc)) => (format!("{call})"), Some(loc)),
        None => (rest.to_string(), None),
    };
    if location.is_none_or(|l| !l.contains(":line ")) && !call.ends_with(')') {
        return None;
    }
    if location.is_none() && (call.contains(" (") || call.contains('/') || call.contains(".java:")) {
        return None; // V8 or JVM
    }
    let open = call.find('(')?;
    let qualified = &call[..open];
    if !qualified.contains('.') || qualified.contains(' ') || qualified.contains(':') {
        return None;
    }
    // Unwrap compiler-made names: Type.<Method>d__5.MoveNext, Type.<>c.<Method>b__0.
    let mut parts: Vec<&str> = qualified.split('.').collect();
    let mut method = parts.pop()?.to_string();
    while let Some(last) = parts.last() {
        if last.starts_with('<') || *last == "<>c" || last.starts_with("<>c__") {
            if let Some(inner) = last.strip_prefix('<').and_then(|l| l.split_once('>')).map(|(m, _)| m) {
                if !inner.is_empty() {
                    method = inner.to_string();
                }
            }
            parts.pop();
        } else {
            break;
        }
    }
    if let Some(inner) = method.strip_prefix('<').and_then(|m| m.split_once('>')).map(|(m, _)| m.to_string()) {
        method = inner;
    }
    let module = parts.join(".");
    // The module is the namespace and type (the same with or without
    // symbols, wherever the build ran); in-app is decided on the namespace.
    let tag = if module.starts_with("System.") || module.starts_with("Microsoft.") || module == "System" {
        "<dotnet-framework>".to_string()
    } else {
        module.clone()
    };
    let (file, line) = match location.and_then(|l| l.rsplit_once(":line ")) {
        Some((path, n)) => (Some(path.trim().to_string()), n.trim().parse::<u32>().ok()),
        None => (None, None),
    };
    Some(Parsed { module: tag, func: format!("{module}.{method}"), file, line })
}

fn parse_at_frame(rest: &str) -> Option<Parsed> {
    // V8: "fn (/app/src/x.js:10:5)" or "/app/src/x.js:10:5" or "async fn (file:1:2)"
    // JVM: "com.shop.Cart.add(Cart.java:42)"
    let rest = rest.strip_prefix("async ").unwrap_or(rest);
    if let Some(open) = rest.rfind(" (") {
        let func = rest[..open].trim().to_string();
        let (file, line) = split_line_col(rest[open + 2..].trim_end_matches(')'));
        return Some(Parsed { module: file.clone(), func, file: Some(file), line });
    }
    if let (Some(open), true) = (rest.find('('), rest.ends_with(')')) {
        let func = rest[..open].to_string();
        let (file, line) = split_line_col(&rest[open + 1..rest.len() - 1]);
        // JVM frames are in-app unless their class is the platform's.
        let module = func.rsplit_once('.').map(|(class, _)| class.to_string()).unwrap_or_default();
        let tag = if module.is_empty() { file.clone() } else { format!("{module}/{file}") };
        return Some(Parsed { module: tag, func, file: Some(file), line });
    }
    let (file, line) = split_line_col(rest);
    Some(Parsed { module: file.clone(), func: "<anonymous>".to_string(), file: Some(file), line })
}

/// `path:line:col` → (`path`, line): up to two trailing numbers come off,
/// the first of them (reading left to right) is the line.
fn split_line_col(loc: &str) -> (String, Option<u32>) {
    let mut s = loc;
    let mut numbers = Vec::new();
    for _ in 0..2 {
        if let Some((head, tail)) = s.rsplit_once(':') {
            if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
                numbers.push(tail);
                s = head;
            }
        }
    }
    (s.to_string(), numbers.last().and_then(|n| n.parse().ok()))
}

fn is_in_app(file: &str) -> bool {
    const LIBRARY: &[&str] = &[
        "node_modules",
        "node:",
        "internal/",
        "site-packages",
        "dist-packages",
        "/lib/python",
        "<frozen",
        "java.",
        "javax.",
        "jdk.",
        "sun.",
        "kotlin.",
        "/rustc/",
        ".cargo/registry",
        "<anonymous>",
        "native",
        "<dotnet-framework>",
        "/usr/local/go/src/",
        "/go/pkg/mod/",
        "runtime/",
    ];
    !file.is_empty() && !LIBRARY.iter().any(|l| file.contains(l))
}

/// The last two components of a path, so deploy locations do not matter.
fn module_of(file: &str) -> String {
    let file = file.strip_prefix("file://").unwrap_or(file);
    let parts: Vec<&str> = file.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    let n = parts.len();
    parts[n.saturating_sub(2)..].join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_merges_variable_parts() {
        let cases = [
            ("user 1234 not found", "user <num> not found"),
            ("user 98 not found", "user <num> not found"),
            ("cannot open /var/data/x.db: denied", "cannot open <path>: denied"),
            ("cannot open C:\\data\\x.db", "cannot open <path>"),
            ("key 'abc' missing", "key <str> missing"),
            ("key \"a b c\" missing", "key <str> missing"),
            ("fetch https://api.example.com/v1/x?id=3 failed", "fetch <url> failed"),
            ("mail to bob@example.org bounced", "mail to <email> bounced"),
            ("order 550e8400-e29b-41d4-a716-446655440000 stuck", "order <uuid> stuck"),
            ("bad object 3fa9c0d2e1 in pack", "bad object <num> in pack"),
            ("bad object 3019002211 in pack", "bad object <num> in pack"),
            ("bad object 000000000abc in pack", "bad object <num> in pack"),
            ("ptr 0xdeadBEEF", "ptr <num>"),
            ("request req_8f7a6b5c4d timed out after 1500ms", "request <num> timed out after <num>ms"),
            ("retry (attempt=3, delay=2.5s)", "retry (attempt=<num>, delay=<num>s)"),
            ("don't panic", "don't panic"),
            ("connect 10.0.0.1:5432 refused", "connect <num> refused"),
        ];
        for (input, want) in cases {
            assert_eq!(mask(input), want, "masking {input:?}");
        }
    }

    #[test]
    fn routes_are_normalised() {
        assert_eq!(
            operation("GET /users/123/orders/550e8400-e29b-41d4-a716-446655440000", None, None),
            "GET /users/{id}/orders/{id}"
        );
        assert_eq!(operation("GET /search?q=shoes", None, None), "GET /search");
        assert_eq!(operation("GET", Some("GET"), Some("/users/:id")), "GET /users/:id");
        assert_eq!(operation("HTTP GET", Some("GET"), Some("/items/42")), "GET /items/{id}");
        assert_eq!(operation("POST /v1/checkout", None, None), "POST /v1/checkout");
        assert_eq!(operation("GET /sku/order-12345", None, None), "GET /sku/{id}");
    }

    #[test]
    fn frames_drop_line_numbers_and_library_code() {
        let node = "TypeError: x is undefined\n    at addItem (/srv/app/src/cart.js:10:5)\n    at Layer.handle (/srv/app/node_modules/express/lib/router/layer.js:95:5)\n    at /srv/app/src/server.js:33:9\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)";
        assert_eq!(in_app_frames(node), vec!["src/cart.js:addItem", "src/server.js:<anonymous>"]);
        let moved = node.replace("/srv/app", "/home/ci/build").replace(":10:5", ":11:7");
        assert_eq!(in_app_frames(&moved), in_app_frames(node));
        let py = "Traceback (most recent call last):\n  File \"/usr/lib/python3.11/site-packages/flask/app.py\", line 1, in wsgi\n  File \"/app/shop/cart.py\", line 12, in add_item\n    total += price\n  File \"/app/shop/money.py\", line 3, in add\nValueError: bad";
        assert_eq!(in_app_frames(py), vec!["shop/money.py:add", "shop/cart.py:add_item"]);
        let java = "java.lang.IllegalStateException: x\n\tat com.shop.Cart.add(Cart.java:42)\n\tat java.base/java.util.ArrayList.forEach(ArrayList.java:1)";
        assert_eq!(in_app_frames(java), vec!["com.shop.Cart/Cart.java:com.shop.Cart.add"]);
    }

    /// Ids with few or no digits, as real systems print them.
    const IDS: &[&str] = &[
        "ord_xpuEX3jASE",
        "cus_NffrFeUfNV2Hib",
        "sub_INYwSUuFytPhG",
        "prod_NWjs8kKbJWmuuc",
        "price_1MoBy5LkdIwHu7ixZhnattbh",
        "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "seti_1NG8Du2eZvKYlo2CUI79vXWy",
        "acct_1Nv0FGQ9RKHgCVdK",
        "in_1MtHbELkdIwHu7ixl4OzzPMv",
        "xpuEXjASEqT",
        "dQw4w9WgXcQ",
        "KaBcDeFgHiJkLmNoPqR",
        "zXcVbNmAsDfGhJkL",
        "tok_visaXqPlMnBvRt",
        "req_hJkLpQwErTyU",
        "sess_AbZqXwVuTrPoNm",
        "usr_pQrStUvWxYzAbC",
        "evt_NkLmPqRsTuVwXy",
        "chk_FgHjKlZxCvBnMq",
        "ses_oKqXlWvBnMzRt",
        "txn_wQzXkLpVbNmJ",
        "doc_JhGfDsAqWeRtY",
        "QmXoypizjW3WknFiJnKLwHCnL72vedxjQkDDP1mXWo6uco",
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
        "gAAAAABkXyZqWvTrPlMn",
        "yJhbGciOiJIUzI1NiIsInR5cCI",
        "Zm9vYmFyYmF6cXV4",
        "pk_liveXqWlMnBvRtYu",
        "sk_test_QwErTyUiOpAsDf",
    ];
    /// Identifiers and words that must stay.
    const WORDS: &[&str] = &[
        "getUserById",
        "XMLHttpRequest",
        "innerHTML",
        "IOException",
        "NullPointerException",
        "ECONNREFUSED",
        "ETIMEDOUT",
        "Uint8Array",
        "Float64Array",
        "base64Encode",
        "utf8Decode",
        "toLocaleString",
        "addEventListener",
        "dbConnection",
        "mkdirSync",
        "pgBouncer",
        "jwtToken",
        "srcDir",
        "fsPromises",
        "HTTPSConnectionPool",
        "kCFStreamErrorDomainSSL",
        "MySQLdb",
        "psycopg2",
        "ERR_INVALID_ARG_TYPE",
        "PaymentIntent",
        "InvalidParameterValue",
        "ThrottlingException",
        "AccessDenied",
        "createdAt",
        "updatedAt",
        "sqlalchemy",
        "ConnectionResetError",
        "TimeoutError",
        "KeyError",
        "IndexOutOfRangeException",
        "TaskCanceledException",
        "HttpRequestException",
        "DbUpdateConcurrencyException",
        "JsonSerializationException",
        "ArgumentNullException",
        "OrderService",
        "CheckoutController",
        "PlaceOrderAsync",
        "ValidationError",
        "IntegrityError",
        "snake_case_name",
        "x-request-id",
        "application",
        "unavailable",
        "serviceUnavailable",
        "BadGateway",
        "GatewayTimeout",
        "InternalServerError",
        "UnprocessableEntity",
        "getElementById",
        "querySelectorAll",
        "JSONDecodeError",
        "readFileSync",
        "writeFileSync",
        "createServer",
        "listenAndServe",
        "ServeHTTP",
        "HandlerFunc",
        "NewRequest",
        "DeadlineExceeded",
        "ResourceExhausted",
        "FailedPrecondition",
        "PermissionDenied",
        "Unauthenticated",
        "OutOfMemoryError",
        "StackOverflowError",
        "ClassCastException",
        "ConcurrentModificationException",
        "NSURLErrorDomain",
        "UIApplication",
        "CoreDataError",
        "WebSocketError",
        "OAuth2Client",
        "http2Session",
        "s3Bucket",
        "ec2Instance",
        "IPv4Address",
        "TLSv1",
        "iPhoneSimulator",
        "macOSVersion",
        "GraphQLError",
        "PostgreSQL",
        "MongoDB",
        "DynamoDB",
        "ElasticSearch",
        "RabbitMQ",
        "OpenTelemetry",
        "LoopKit",
        "checkout",
    ];

    #[test]
    fn ids_are_masked_by_shape_and_words_stay() {
        let missed: Vec<_> =
            IDS.iter().filter(|id| mask(&format!("order {id} failed")) != "order <num> failed").collect();
        assert!(missed.is_empty(), "ids not masked: {missed:?}");
        let masked: Vec<_> =
            WORDS.iter().filter(|w| mask(&format!("call {w} failed")) != format!("call {w} failed")).collect();
        assert!(masked.is_empty(), "words masked: {masked:?}");
        assert_eq!(normalise_path("/orders/ord_xpuEX3jASE/items"), "/orders/{id}/items");
        assert_eq!(mask("shard eu-3 and worker_12 down, utf-8 kept"), "shard <num> and <num> down, utf-8 kept");
    }

    #[test]
    fn random_mixed_case_ids_are_masked() {
        // 2,000 random base-62 ids of 10 to 24 characters, with and without
        // digits: 96% are masked (a random string can look like a word).
        let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut masked, mut total) = (0, 0);
        for i in 0..2_000 {
            let len = 10 + (next() % 15) as usize;
            let letters_only = i % 2 == 0;
            let id: String = (0..len)
                .map(|_| {
                    let n = if letters_only { 52 } else { 62 };
                    alphabet[(next() % n) as usize] as char
                })
                .collect();
            total += 1;
            if mask(&id) == "<num>" {
                masked += 1;
            } else if std::env::var("SHOW_MISSED").is_ok() {
                println!("missed {id} {:?}", camel_words(&id));
            }
        }
        let rate = masked as f64 / total as f64;
        assert!(rate >= 0.95, "only {masked} of {total} random ids masked ({rate:.3})");
    }

    #[test]
    fn dotnet_and_go_frames_never_carry_line_numbers() {
        let dotnet = "System.InvalidOperationException: Sequence contains no elements\n   at System.Linq.ThrowHelper.ThrowNoElementsException()\n   at Shop.Orders.OrderService.<PlaceAsync>d__7.MoveNext() in /src/Shop/Orders/OrderService.cs:line 42\n--- End of stack trace from previous location ---\n   at Shop.Api.OrdersController.Post(OrderDto dto) in /src/Shop.Api/OrdersController.cs:line 19\n   at Microsoft.AspNetCore.Mvc.Infrastructure.ActionMethodExecutor.Execute()";
        let want = vec![
            "Shop.Orders.OrderService:Shop.Orders.OrderService.PlaceAsync",
            "Shop.Api.OrdersController:Shop.Api.OrdersController.Post",
        ];
        assert_eq!(in_app_frames(dotnet), want);
        let moved = dotnet.replace(":line 42", ":line 57").replace("/src/", "C:\\build\\");
        assert_eq!(in_app_frames(&moved), want);
        let no_symbols = "System.Exception: x\n   at Shop.Orders.OrderService.Place(Int32 id)\n   at Shop.Api.OrdersController.Post()";
        assert_eq!(
            in_app_frames(no_symbols),
            vec![
                "Shop.Orders.OrderService:Shop.Orders.OrderService.Place",
                "Shop.Api.OrdersController:Shop.Api.OrdersController.Post"
            ]
        );
        let go = "panic: runtime error: index out of range [3] with length 3\n\ngoroutine 1 [running]:\nmain.(*Cart).Add(0xc000010000, {0x1, 0x2})\n\t/app/cart.go:42 +0x1d\nmain.handler(0xc0000a0000)\n\t/app/server.go:17 +0x5a\nnet/http.HandlerFunc.ServeHTTP(0x0?, {0x7f, 0xc0})\n\t/usr/local/go/src/net/http/server.go:2136 +0x29";
        assert_eq!(in_app_frames(go), vec!["app/cart.go:main.(*Cart).Add", "app/server.go:main.handler"]);
        assert_eq!(in_app_frames(&go.replace(":42 +0x1d", ":44 +0x2f")), in_app_frames(go));
    }

    fn fp(ty: &str, msg: &str, stack: &str) -> Fingerprint {
        Fingerprint::of(&FingerprintInput {
            signal: "exception",
            service: "shop",
            operation: "POST /cart",
            exception_type: Some(ty),
            exception_message: Some(msg),
            stacktrace: (!stack.is_empty()).then_some(stack),
            ..Default::default()
        })
    }

    #[test]
    fn pain_ids_group_what_differs_only_in_variables() {
        let a = fp("NotFound", "user 12 not found in '/tmp/a'", "");
        let b = fp("NotFound", "user 9876 not found in '/var/b'", "");
        assert_eq!(a.pain_id(), b.pain_id());
        assert_ne!(a.pain_id(), fp("Timeout", "user 12 not found in '/tmp/a'", "").pain_id());
        let s1 = "E\n    at add (/a/src/cart.js:1:1)";
        let s2 = "E\n    at remove (/a/src/cart.js:1:1)";
        assert_ne!(fp("E", "m", s1).pain_id(), fp("E", "m", s2).pain_id());
        assert_eq!(
            fp("E", "m 1", s1).pain_id(),
            fp("E", "totally different", s1).pain_id(),
            "frames win over the message"
        );
        assert!(a.pain_id().starts_with("pn_") && a.pain_id().len() == 19);
        assert_eq!(a.title(), "NotFound in shop: POST /cart — user <num> not found in <str>");
    }
}

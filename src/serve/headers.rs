//! Response headers that every answer of a kind needs, added in one place:
//!
//! | answer | headers |
//! |---|---|
//! | every response | `X-Content-Type-Options: nosniff` |
//! | HTML pages | a `Content-Security-Policy` that allows only this page's own style (by hash), form posts to this server and no framing (`frame-ancestors 'none'`); `X-Frame-Options: DENY`; `Referrer-Policy: no-referrer` (dashboard links carry a token) |
//! | anything but the public documents | `Cache-Control: no-store`: keys, recovery codes, dashboard links and telemetry never land in a cache |
//!
//! CORS ([`cors`]): browser exporters (the OpenTelemetry JS `OTLPTraceExporter`
//! with XHR or `fetch`) preflight `POST /v1/traces` with `Content-Type:
//! application/json`, `Accept`, `Authorization` (from its `headers` option)
//! and sometimes `Content-Encoding`. Only
//! the origins given with `ratchet serve --cors-origin` are answered (none
//! by default); `*` allows any. No credentials (cookies) are ever allowed:
//! keys travel in headers.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The one style sheet of the pages (its hash is in the CSP).
pub const PAGE_STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2329}\
h1{font-size:1.5rem} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;width:100%} td,th{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eee;vertical-align:top}\
code{font-size:.85em;background:#f3f4f6;padding:0 .2em;word-break:break-all} .muted{color:#666} .headline{font-size:1.1rem;background:#f5f8ff;padding:.6rem .8rem}\
form{background:#fafafa;border:1px solid #e3e3e3;padding:1rem;max-width:32rem} input{width:100%;padding:.35rem;margin:.2rem 0 .6rem;font:inherit}\
button{font:inherit;padding:.35rem 1rem} .err{color:#a40000}\
.chart-box{margin:.5rem 0} .chart{display:block;width:100%;height:auto;max-width:48rem} figcaption{font-size:.85rem;color:#555}\
.legend{list-style:none;padding:0;margin:.2rem 0;font-size:.85rem} .legend li{display:inline-block;margin-right:1rem}\
.scroll{overflow-x:auto} details{margin:.3rem 0 1rem;font-size:.9rem}\
pre.diff{overflow-x:auto;background:#f8f9fa;border:1px solid #e3e6ea;padding:.5rem;font-size:.8rem;line-height:1.35}\
.add{color:#1a7f37;background:#e6ffec;display:block} .del{color:#b42318;background:#ffebe9;display:block} .hunk{color:#0b6bcb;display:block} .ctx{display:block}\
.rationale{white-space:pre-wrap;word-break:break-word} .pending{border-top:1px solid #eee;margin-top:1rem}\
.state.won{color:#1a7f37} .state.slipped{color:#b42318}\
@media (max-width:40rem){body{margin:1rem auto;font-size:14px} td,th{padding:.25rem .3rem}}";

/// The Content-Security-Policy of the HTML pages.
pub fn page_csp() -> String {
    use base64::Engine;
    use sha2::Digest;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(PAGE_STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// Paths whose answers are public documents, the same for everyone: the
/// only ones a cache may keep.
fn cacheable(path: &str) -> bool {
    matches!(
        path,
        "/agents.md"
            | "/llms.txt"
            | "/quickstart.md"
            | "/openapi.json"
            | "/openapi.yaml"
            | "/schema/improvement-packet.json"
            | "/favicon.ico"
            | "/favicon.svg"
    )
}

/// Adds the headers of the module doc's table.
pub async fn security(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    let html = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if html {
        if let Ok(v) = HeaderValue::from_str(&page_csp()) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    }
    if !cacheable(&path) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// The CORS layer for `origins` (empty: no cross-origin access at all).
pub fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::ACCEPT,
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
            header::AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
        ])
        .expose_headers([header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(86_400))
}

/// Checks a `--cors-origin` value: `*`, or `scheme://host[:port]`.
pub fn check_origin(origin: &str) -> Result<String, String> {
    let o = origin.trim().trim_end_matches('/');
    if o == "*" {
        return Ok(o.to_string());
    }
    let rest = o.strip_prefix("https://").or_else(|| o.strip_prefix("http://"));
    let ok = rest.is_some_and(|host| {
        !host.is_empty()
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    });
    if !ok {
        return Err(format!("{origin:?} is not an origin (http[s]://host[:port], nothing after)"));
    }
    Ok(o.to_string())
}

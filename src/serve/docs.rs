//! The documents: `/agents.md`, `/llms.txt`, `/quickstart.md`,
//! `/openapi.json` and `/openapi.yaml` (one OpenAPI 3.1 document, built in
//! [`crate::serve::openapi`]), `/schema/improvement-packet.json`,
//! `/contact.json`, the favicon, and `/`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::loopkit::packet;
use crate::serve::{AppState, openapi};

fn text(body: String, content_type: &'static str) -> Response {
    let mut res = body.into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

fn fill(template: &str, state: &AppState) -> String {
    template.replace("{BASE}", &state.config.base_url())
}

pub async fn agents_md(State(state): State<AppState>) -> Response {
    text(fill(include_str!("text/agents.md"), &state), "text/markdown; charset=utf-8")
}

pub async fn llms_txt(State(state): State<AppState>) -> Response {
    text(fill(include_str!("text/llms.txt"), &state), "text/plain; charset=utf-8")
}

pub async fn quickstart_md(State(state): State<AppState>) -> Response {
    text(fill(include_str!("text/quickstart.md"), &state), "text/markdown; charset=utf-8")
}

pub async fn packet_schema() -> Response {
    let mut res = axum::Json(packet::schema()).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/schema+json"));
    res
}

pub async fn contact_json(State(state): State<AppState>) -> axum::Json<Value> {
    let base = state.config.base_url();
    axum::Json(json!({
        "name": "LoopKit (ratchet serve, local)",
        "operator": "whoever runs this ratchet serve",
        "production_tenant": "This server is local: a permanent project (POST /v1/provision) is its production tier. Raise its quota with ratchet serve --permanent-quota.",
        "upgrade": "Ask the operator for a signed upgrade code, then POST /v1/signup/upgrade.",
        "docs": format!("{base}/agents.md"),
        "openapi": format!("{base}/openapi.json"),
    }))
}

pub async fn index(State(state): State<AppState>) -> axum::Json<Value> {
    let base = state.config.base_url();
    axum::Json(json!({
        "name": "LoopKit (ratchet serve)",
        "agents": format!("{base}/agents.md"),
        "llms": format!("{base}/llms.txt"),
        "quickstart": format!("{base}/quickstart.md"),
        "openapi": format!("{base}/openapi.json"),
        "dashboard": format!("{base}/dashboard"),
    }))
}

pub async fn healthz() -> axum::Json<Value> {
    axum::Json(json!({ "ok": true }))
}

pub async fn openapi_json(State(state): State<AppState>) -> axum::Json<Value> {
    axum::Json(openapi::document(&state.config.base_url()))
}

/// The same document as YAML.
pub async fn openapi_yaml(State(state): State<AppState>) -> Response {
    text(openapi::yaml(&openapi::document(&state.config.base_url())), "application/yaml")
}

/// The pages' icon: a ratchet wheel, as SVG.
pub const FAVICON_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="15" fill="#1d2329"/><path d="M16 4l3 7h-6zM28 16l-7 3v-6zM16 28l-3-7h6zM4 16l7-3v6z" fill="#f5f8ff"/><circle cx="16" cy="16" r="4" fill="#f5f8ff"/></svg>"##;

pub async fn favicon() -> Response {
    text(FAVICON_SVG.to_string(), "image/svg+xml")
}

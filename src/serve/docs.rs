//! The documents: `/agents.md`, `/llms.txt`, `/quickstart.md`,
//! `/openapi.json` (OpenAPI 3.1, tested to list exactly the router's
//! routes), `/schema/improvement-packet.json`, `/contact.json`, and `/`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::loopkit::packet;
use crate::serve::AppState;

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
    axum::Json(openapi(&state.config.base_url()))
}

fn error_ref() -> Value {
    json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn errors(codes: &[(&str, &str)]) -> serde_json::Map<String, Value> {
    codes
        .iter()
        .map(|(code, desc)| {
            let mut r = error_ref();
            r["description"] = Value::String(desc.to_string());
            if *code == "429" {
                r["headers"] =
                    json!({"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}});
            }
            (code.to_string(), r)
        })
        .collect()
}

fn op(
    summary: &str,
    security: Option<&str>,
    request: Option<Value>,
    ok: (&str, Value),
    errs: &[(&str, &str)],
) -> Value {
    let mut responses = errors(errs);
    responses.insert(ok.0.to_string(), ok.1);
    let mut o = json!({ "summary": summary, "responses": responses });
    if let Some(s) = security {
        o["security"] = json!([{ s: [] }]);
    }
    if let Some(r) = request {
        o["requestBody"] = r;
    }
    o
}

fn json_body(schema: Value, required: bool) -> Value {
    json!({"required": required, "content": {"application/json": {"schema": schema}}})
}

fn json_ok(desc: &str, schema: Value) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": schema}}})
}

fn window_param() -> Value {
    json!({"name": "window", "in": "query", "required": false, "schema": {"type": "string", "default": "24h", "pattern": "^[0-9]+[smhd]$"}})
}

fn doc(desc: &str, media: &str) -> Value {
    op(desc, None, None, ("200", json!({"description": desc, "content": {media: {"schema": {"type": "string"}}}})), &[])
}

fn traces_responses() -> Value {
    let mut r = errors(&[
        ("400", "malformed body, or every span rejected"),
        ("401", "no or bad key"),
        ("403", "not a producer key, or the sandbox expired"),
        ("413", "body over the limit (also after decompression)"),
        ("415", "not protobuf or JSON, or an unknown Content-Encoding"),
        ("429", "over the span quota"),
    ]);
    r.insert("200".into(), json!({"description": "stored; partialSuccess names rejected spans", "content": {
                    "application/json": {"schema": {"type": "object", "properties": {"partialSuccess": {"type": "object", "properties": {
                        "rejectedSpans": {"type": "string"}, "errorMessage": {"type": "string"}}}}}},
                    "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}}}}));
    Value::Object(r)
}

fn telemetry_op(key_errs: &[(&str, &str)]) -> Value {
    let mut o = op(
        "Normalized telemetry records, newest first (agent key)",
        Some("bearer"),
        None,
        (
            "200",
            json_ok(
                "a page",
                json!({"type": "object", "required": ["records", "next_cursor"], "properties": {
                    "records": {"type": "array", "items": {"type": "object"}}, "next_cursor": {"type": ["string", "null"]}}}),
            ),
        ),
        key_errs,
    );
    o["parameters"] = json!([window_param(),
                {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                {"name": "cursor", "in": "query", "required": false, "schema": {"type": "string"}}]);
    o
}

fn dashboard_op(key_errs: &[(&str, &str)]) -> Value {
    let mut o = op(
        "Machine-readable program state (agent key)",
        Some("bearer"),
        None,
        (
            "200",
            json_ok(
                "summary, value, open_pains, wins, regressions_detail",
                json!({"type": "object",
                    "required": ["summary", "value", "open_pains", "wins", "regressions_detail"]}),
            ),
        ),
        key_errs,
    );
    o["parameters"] = json!([window_param()]);
    o
}

fn report_op(key_errs: &[(&str, &str)]) -> Value {
    let mut o = op(
        "Narrative report (agent key)",
        Some("bearer"),
        None,
        ("200", json!({"description": "markdown", "content": {"text/markdown": {"schema": {"type": "string"}}}})),
        key_errs,
    );
    o["parameters"] = json!([window_param()]);
    o
}

/// The OpenAPI 3.1 document of this server.
pub fn openapi(base: &str) -> Value {
    let key_errs: &[(&str, &str)] = &[
        ("400", "malformed request"),
        ("401", "missing, malformed, unknown or revoked key"),
        ("403", "a key of the wrong kind"),
    ];
    let keys = json!({"$ref": "#/components/schemas/Keys"});
    let mut provision = op(
        "Idempotent onboarding: mint (no auth) or resume without rotating (a key of the project as bearer)",
        None,
        Some(json_body(
            json!({"type": "object", "required": ["project_name"], "properties": {"project_name": {"type": "string"}, "operator": {"type": "string"}}}),
            true,
        )),
        ("201", json_ok("minted and graduated; keys shown once", keys.clone())),
        &[
            ("400", "bad body"),
            ("401", "the project exists: resume with its key"),
            ("403", "the key belongs to another project"),
            ("429", "minting rate limit"),
        ],
    );
    provision["responses"]["200"] = json_ok("resumed: no key returned", keys.clone());
    provision["security"] = json!([{}, {"bearer": []}]);
    let paths = json!({
        "/v1/provision": { "post": provision },
        "/v1/signup": { "post": op(
            "Mint a fresh sandbox project (non-idempotent)", None,
            Some(json_body(json!({"type": "object", "properties": {"project_name": {"type": "string"}}}), false)),
            ("201", json_ok("a sandbox; keys shown once", keys.clone())),
            &[("400", "bad body"), ("429", "minting rate limit")]) },
        "/v1/recover": { "post": op(
            "Rotate lost keys with the recovery_code; revokes the old keys", None,
            Some(json!({"required": true, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Recover"}},
                "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/Recover"}}}})),
            ("200", json!({"description": "fresh keys (JSON), or an HTML page for the form", "content": {
                "application/json": {"schema": keys.clone()}, "text/html": {"schema": {"type": "string"}}}})),
            &[("400", "bad body"), ("401", "project_id and recovery_code do not match"), ("429", "rate limit")]) },
        "/v1/signup/upgrade": { "post": op(
            "Graduate a sandbox with a signed upgrade code", Some("bearer"),
            Some(json_body(json!({"type": "object", "required": ["code"], "properties": {"code": {"type": "string"}, "producer_key": {"type": "string"}, "agent_key": {"type": "string"}}}), true)),
            ("200", json_ok("graduated", json!({"type": "object"}))),
            &[("400", "bad body"), ("401", "no or bad key"), ("403", "wrong key kind, or the code does not match")]) },
        "/v1/traces": { "post": {
            "summary": "OTLP/HTTP trace ingest (producer key)",
            "security": [{"bearer": []}],
            "parameters": [{"name": "Content-Encoding", "in": "header", "required": false, "schema": {"enum": ["gzip", "deflate", "identity"]}}],
            "requestBody": {"required": true, "content": {
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary", "description": "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"}},
                "application/json": {"schema": {"type": "object", "description": "ExportTraceServiceRequest in the OTLP/JSON mapping"}}}},
            "responses": traces_responses()
        } },
        "/v1/telemetry": { "get": telemetry_op(key_errs) },
        "/v1/runs/diagnose": { "post": op(
            "Cluster failures of a window into improvement packets (agent key)", Some("bearer"),
            Some(json_body(json!({"type": "object", "properties": {
                "window": {"type": "string"}, "max_pains": {"type": "integer", "maximum": 100}, "evidence": {"type": "integer", "maximum": 50},
                "pain_ids": {"type": "array", "items": {"type": "string"}}, "signal_types": {"type": "array", "items": {"type": "string"}}}}), false)),
            ("200", json_ok("packets", json!({"type": "object", "properties": {"packets": {"type": "array", "items": {"$ref": format!("{base}/schema/improvement-packet.json")}}}}))),
            key_errs) },
        "/v1/dashboard": { "get": dashboard_op(key_errs) },
        "/v1/reports/latest.md": { "get": report_op(key_errs) },
        "/agents.md": { "get": doc("Agent instructions", "text/markdown") },
        "/llms.txt": { "get": doc("Index for language models", "text/plain") },
        "/quickstart.md": { "get": doc("Ingest and diagnose flow", "text/markdown") },
        "/openapi.json": { "get": doc("This document", "application/json") },
        "/schema/improvement-packet.json": { "get": doc("JSON Schema of an improvement packet", "application/schema+json") },
        "/contact.json": { "get": doc("Who runs this server", "application/json") },
        "/dashboard": { "get": doc("The dashboard for people (HTML), with the Lost your key? form", "text/html") },
        "/": { "get": doc("Links to the documents", "application/json") },
        "/healthz": { "get": doc("Liveness", "application/json") },
    });
    // The agents API's routes and schemas (seed 004).
    let mut doc = json!({"paths": paths, "components": {"schemas": {}}});
    crate::serve::agents::docs::extend_openapi(&mut doc);
    let (mut paths, agent_schemas) = (doc["paths"].take(), doc["components"]["schemas"].take());
    paths["/dashboard"]["get"]["parameters"] = json!([
        {"name": "project_id", "in": "query", "required": false, "schema": {"type": "string"}},
        {"name": "token", "in": "query", "required": false, "schema": {"type": "string"}}, window_param()]);
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "LoopKit (ratchet serve)", "version": env!("CARGO_PKG_VERSION"),
                 "description": "OTLP ingest, pains, improvement packets. Errors follow the actionable shape {error, code, message, nextAction, retryAfterSeconds}."},
        "servers": [{"url": base}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "lkp_… producer key (ingest) or lka_… agent key (read, diagnose)"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"},
                    "nextAction": {"type": "string"}, "retryAfterSeconds": {"type": "integer"}}},
                "Recover": {"type": "object", "required": ["project_id", "recovery_code"], "properties": {
                    "project_id": {"type": "string"}, "recovery_code": {"type": "string"}}},
                "Keys": {"type": "object", "properties": {
                    "producer_key": {"type": ["string", "null"]}, "agent_key": {"type": ["string", "null"]},
                    "project_id": {"type": "string"}, "quota_spans": {"type": "integer"}, "expires_at": {"type": ["string", "null"]},
                    "ingest_url": {"type": "string"}, "diagnose_url": {"type": "string"}, "recovery_code": {"type": ["string", "null"]},
                    "dashboard_url": {"type": "string"}, "resumed": {"type": "boolean"}, "graduated": {"type": "boolean"}}}
            }
        }
    });
    if let (Some(schemas), Value::Object(add)) = (doc["components"]["schemas"].as_object_mut(), agent_schemas) {
        schemas.extend(add);
    }
    doc
}

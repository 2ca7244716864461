//! `/openapi.json` (and `/openapi.yaml`, the same document): OpenAPI 3.1
//! that tells the truth about this server, so that a client generated
//! from it works and schemathesis finds nothing it does not say.
//!
//! What "the truth" means here, each checked by a test:
//! - every route of [`crate::serve::routes`] is described, and nothing else;
//! - request schemas are what the handlers enforce: the same patterns
//!   ([`window_pattern`] is tested against [`Window::parse`]), lengths,
//!   ranges, `additionalProperties: false` where unknown fields are
//!   refused, no `null` anywhere;
//! - every status a route can answer is listed, with its body: the
//!   actionable error (`Error`) on the JSON API, a `google.rpc.Status` on
//!   OTLP ingest, HTML on the pages, and 431 (a request head over 64 KiB,
//!   answered by the HTTP layer with no body) everywhere;
//! - response schemas are typed down to the dashboard's fields, and the
//!   improvement packet is the published schema, inlined;
//! - every operation has an `operationId`, and `links` lead from the
//!   responses that mint keys to the operations that use them, so a
//!   stateful client (schemathesis's stateful phase) can walk the API.
//!
//! Adding a route: describe it in [`paths`]; the route-table test fails
//! until the two agree.
//!
//! [`Window::parse`]: crate::loopkit::window::Window::parse

use serde_json::{Map, Value, json};

use crate::loopkit::packet;

/// Characters a name may not contain (Unicode Cc, as `char::is_control`).
const NO_CONTROL: &str = "\\u0000-\\u001f\\u007f-\\u009f";

/// The `window` grammar exactly as `Window::parse` accepts it: a number
/// without leading zeros and a unit, from 1 minute to 365 days.
pub fn window_pattern() -> &'static str {
    concat!(
        "^(?:",
        // 60..31536000 seconds
        "(?:[6-9][0-9]|[1-9][0-9]{2,6}|[12][0-9]{7}|30[0-9]{6}|31[0-4][0-9]{5}|315[0-2][0-9]{4}|3153[0-5][0-9]{3}|31536000)s",
        // 1..525600 minutes
        "|(?:[1-9][0-9]{0,4}|[1-4][0-9]{5}|5[01][0-9]{4}|52[0-4][0-9]{3}|525[0-5][0-9]{2}|525600)m",
        // 1..8760 hours
        "|(?:[1-9][0-9]{0,2}|[1-7][0-9]{3}|8[0-6][0-9]{2}|87[0-5][0-9]|8760)h",
        // 1..365 days
        "|(?:[1-9][0-9]?|[12][0-9]{2}|3[0-5][0-9]|36[0-5])d",
        ")$"
    )
}

/// A telemetry cursor: 16 bytes in unpadded base64url (or empty: none).
pub const CURSOR_PATTERN: &str = "^(?:[A-Za-z0-9_-]{21}[AQgw])?$";
pub const PROJECT_ID_PATTERN: &str = "^prj_[0-9a-f]{16}$";
pub const PAIN_ID_PATTERN: &str = "^pn_[0-9a-f]{16}$";
pub const RECOVERY_CODE_PATTERN: &str = "^[0-9a-fA-F]{64}$";

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn content(media: &str, schema: Value) -> Value {
    json!({ media: { "schema": schema } })
}

fn response(desc: &str, media: &str, schema: Value) -> Value {
    json!({ "description": desc, "content": content(media, schema) })
}

fn json_response(desc: &str, schema: Value) -> Value {
    response(desc, "application/json", schema)
}

fn error(desc: &str) -> Value {
    json_response(desc, r("Error"))
}

fn html(desc: &str) -> Value {
    response(desc, "text/html", json!({"type": "string"}))
}

fn retry_after() -> Value {
    json!({"Retry-After": {"description": "seconds after which the same request can succeed",
                           "schema": {"type": "integer", "minimum": 1}}})
}

fn head_too_large() -> Value {
    json!({"description": "the request head (request line and headers) is over 64 KiB; answered by the HTTP layer, without a body"})
}

/// One operation: `responses` as (status, response) pairs; 431 is added.
fn operation(id: &str, summary: &str, responses: &[(&str, Value)]) -> Map<String, Value> {
    let mut res: Map<String, Value> = responses.iter().map(|(s, v)| (s.to_string(), v.clone())).collect();
    res.insert("431".into(), head_too_large());
    let mut o = Map::new();
    o.insert("operationId".into(), id.into());
    o.insert("summary".into(), summary.into());
    o.insert("responses".into(), Value::Object(res));
    o
}

fn with(mut o: Map<String, Value>, key: &str, v: Value) -> Map<String, Value> {
    o.insert(key.into(), v);
    o
}

fn json_body(schema: Value, required: bool) -> Value {
    json!({"required": required, "content": content("application/json", schema)})
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "additionalProperties": false, "required": required, "properties": properties})
}

/// A key-read operation's security: bearer, or `x-api-key`.
fn key_security() -> Value {
    json!([{"bearer": []}, {"apiKey": []}])
}

fn window_param(location: &str) -> Value {
    json!({"name": "window", "in": location, "required": false,
           "description": "a duration ending now, 1m to 365d (default 24h)",
           "schema": {"type": "string", "pattern": window_pattern()}})
}

/// The statuses every key-read operation shares.
fn read_errors() -> Vec<(&'static str, Value)> {
    vec![
        ("400", error("a query parameter is not understood (BAD_QUERY, BAD_WINDOW, BAD_LIMIT, BAD_CURSOR)")),
        ("401", error("no key, or a malformed, unknown or revoked key")),
        ("403", error("a producer key (reads need the agent key)")),
    ]
}

/// The statuses every operation with a body shares.
fn body_errors() -> Vec<(&'static str, Value)> {
    vec![
        ("408", error("the body did not arrive in time (BODY_TIMEOUT)")),
        ("413", error("the body is over the limit (PAYLOAD_TOO_LARGE); the connection is closed")),
    ]
}

fn links_from_keys() -> Value {
    let agent = |op: &str| json!({"operationId": op, "parameters": {"header.x-api-key": "$response.body#/agent_key"}});
    json!({
        "ReadTelemetry": agent("getTelemetry"),
        "ReadDashboard": agent("getDashboard"),
        "ReadChanges": agent("getChanges"),
        "ReadReport": agent("getReport"),
        "Diagnose": agent("diagnose"),
        "Ingest": {"operationId": "ingestTraces", "parameters": {"header.x-api-key": "$response.body#/producer_key"}},
        "Recover": {"operationId": "recoverKeys", "requestBody": {
            "project_id": "$response.body#/project_id", "recovery_code": "$response.body#/recovery_code"}},
    })
}

fn name_schema(desc: &str) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 100, "description": desc,
           "pattern": format!("^[^{NO_CONTROL}]*[^\\s{NO_CONTROL}][^{NO_CONTROL}]*$")})
}

fn x_api_key_param() -> Value {
    json!({"name": "x-api-key", "in": "header", "required": false,
           "description": "the key, as an alternative to Authorization: Bearer (the bearer header wins when both are sent)",
           "schema": {"type": "string"}})
}

fn paths() -> Value {
    let keys_201 = |desc: &str| {
        let mut v = json_response(desc, r("Keys"));
        v["links"] = links_from_keys();
        v
    };
    let mut provision_responses = vec![
        ("201", keys_201("minted and graduated; the keys are shown once")),
        ("200", json_response("resumed with the project's key: no key is returned, nothing rotates", r("Keys"))),
        ("400", error("the body is not the documented object (BAD_REQUEST_BODY, BAD_PROJECT_NAME)")),
        (
            "401",
            error("the project exists: resume it with one of its keys (RESUME_REQUIRES_KEY), or the key is not valid"),
        ),
        ("403", error("the key belongs to another project (KEY_PROJECT_MISMATCH)")),
        (
            "429",
            json!({"description": "public minting rate limit per client address (RATE_LIMITED)",
                        "headers": retry_after(), "content": content("application/json", r("Error"))}),
        ),
    ];
    provision_responses.extend(body_errors());
    let provision = with(
        with(
            operation(
                "provision",
                "Idempotent onboarding: mint (no key) or resume without rotating (a key of the project)",
                &provision_responses,
            ),
            "security",
            json!([{}, {"bearer": []}, {"apiKey": []}]),
        ),
        "requestBody",
        json_body(
            object(
                &["project_name"],
                json!({
                    "project_name": name_schema("1 to 100 characters, not only white space, no control characters"),
                    "operator": {"type": "string", "maxLength": 100, "pattern": format!("^[^{NO_CONTROL}]*$"),
                                 "description": "who runs the project; empty or white space means none"},
                }),
            ),
            true,
        ),
    );

    let mut signup_responses = vec![
        ("201", keys_201("a fresh sandbox (span quota, expiry); the keys are shown once")),
        ("400", error("the body is not the documented object (BAD_REQUEST_BODY, BAD_PROJECT_NAME)")),
        (
            "429",
            json!({"description": "public minting rate limit per client address (RATE_LIMITED)",
                        "headers": retry_after(), "content": content("application/json", r("Error"))}),
        ),
    ];
    signup_responses.extend(body_errors());
    let signup = with(
        operation("signup", "Mint a fresh sandbox project (not idempotent)", &signup_responses),
        "requestBody",
        json_body(object(&[], json!({"project_name": name_schema("defaults to \"sandbox\"")})), false),
    );

    let mut recover_responses = vec![
        ("200", {
            let mut v = json_response("fresh keys (JSON requests); the old keys are revoked", r("Keys"));
            v["links"] = links_from_keys();
            v
        }),
        (
            "303",
            json!({"description": "a form post (application/x-www-form-urlencoded), whatever its outcome: see the result once at the Location (POST-redirect-GET)",
                        "headers": {"Location": {"schema": {"type": "string", "pattern": "^/recovered\\?ticket=[0-9a-f]{32}$"}}}}),
        ),
        (
            "400",
            json!({"description": "the body is not the documented object, or a field does not have its pattern (an HTML page for a form post)",
                        "content": {"application/json": {"schema": r("Error")}, "text/html": {"schema": {"type": "string"}}}}),
        ),
        ("401", error("project_id and recovery_code do not match (INVALID_RECOVERY_CODE)")),
        (
            "429",
            json!({"description": "too many wrong codes for this project (RECOVERY_RATE_LIMITED); a correct code still works",
                        "headers": retry_after(), "content": content("application/json", r("Error"))}),
        ),
    ];
    recover_responses.extend(body_errors());
    let recover = with(
        operation("recoverKeys", "Rotate lost keys with the recovery_code; revokes the old keys", &recover_responses),
        "requestBody",
        json!({"required": true, "content": {
            "application/json": {"schema": r("Recover")},
            "application/x-www-form-urlencoded": {"schema": r("Recover")}}}),
    );

    let mut upgrade_responses = vec![
        ("200", json_response("graduated (or already was)", r("Upgraded"))),
        ("400", error("the body is not the documented object")),
        ("401", error("no key, or a malformed, unknown or revoked key")),
        (
            "403",
            error(
                "a producer key as bearer, keys of two projects, or a code that does not match (INVALID_UPGRADE_CODE)",
            ),
        ),
    ];
    upgrade_responses.extend(body_errors());
    let upgrade = with(
        with(
            operation("upgradeSandbox", "Graduate a sandbox with a signed upgrade code", &upgrade_responses),
            "security",
            json!([{"bearer": []}, {"apiKey": []}, {}]),
        ),
        "requestBody",
        json_body(
            object(
                &["code"],
                json!({"code": {"type": "string", "description": "HMAC-SHA256(\"signup-upgrade:sandbox:<project_id>\") as hex"},
                       "producer_key": {"type": "string"}, "agent_key": {"type": "string"}}),
            ),
            true,
        ),
    );

    let status = |desc: &str| {
        json!({"description": desc, "content": {
            "application/json": {"schema": r("Status")},
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary", "description": "google.rpc.Status"}}}})
    };
    let traces = with(
        with(
            with(
                operation(
                    "ingestTraces",
                    "OTLP/HTTP trace ingest (producer key). Bodies may be sent with Content-Encoding gzip or deflate (the size limit holds after decompression too). Browsers: see ratchet serve --cors-origin.",
                    &[
                        (
                            "200",
                            json!({"description": "stored; partialSuccess counts the spans rejected (undecodable, bad ids, over the quota)", "content": {
                            "application/json": {"schema": r("ExportTraceServiceResponse")},
                            "application/x-protobuf": {"schema": {"type": "string", "format": "binary", "description": "ExportTraceServiceResponse"}}}}),
                        ),
                        ("400", status("the body does not decode, or every span was rejected (not retryable)")),
                        ("401", status("no key, or a malformed, unknown or revoked key")),
                        (
                            "403",
                            status("an agent key, an expired sandbox, or a spent lifetime span quota (not retryable)"),
                        ),
                        ("408", status("the body did not arrive in time")),
                        ("413", status("the body is over the limit, as sent or decompressed")),
                        ("415", status("not protobuf or JSON, or an unknown Content-Encoding")),
                    ],
                ),
                "security",
                key_security(),
            ),
            "parameters",
            // Content-Encoding (gzip, deflate) is transport, like
            // Transfer-Encoding: said in the description, not a parameter.
            json!([x_api_key_param()]),
        ),
        "requestBody",
        json!({"required": true, "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary", "description": "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"}},
            "application/json": {"schema": r("ExportTraceServiceRequest")}}}),
    );

    let read = |id: &str, summary: &str, ok: Value, params: Value| {
        let mut responses = vec![("200", ok)];
        responses.extend(read_errors());
        with(with(operation(id, summary, &responses), "security", key_security()), "parameters", params)
    };
    let telemetry = read(
        "getTelemetry",
        "Normalised telemetry records, newest first (agent key)",
        json_response("a page of records", r("TelemetryPage")),
        json!([window_param("query"),
               {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
               {"name": "cursor", "in": "query", "required": false, "schema": {"type": "string", "pattern": CURSOR_PATTERN},
                "description": "next_cursor of the previous page"},
               x_api_key_param()]),
    );
    let dashboard = read(
        "getDashboard",
        "Machine-readable program state (agent key)",
        json_response("summary, value, open pains, wins and regressions", r("Dashboard")),
        json!([window_param("query"), x_api_key_param()]),
    );
    let changes = read(
        "getChanges",
        "Merged changes reported as spans, each with its rates and outcome over the window (agent key)",
        json_response("every merged change, oldest first", r("Changes")),
        json!([window_param("query"), x_api_key_param()]),
    );
    let report = read(
        "getReport",
        "The dashboard as a narrative (agent key)",
        response("markdown", "text/markdown", json!({"type": "string"})),
        json!([window_param("query"), x_api_key_param()]),
    );
    let mut diagnose_responses = vec![("200", json_response("improvement packets of the top pains", r("Diagnosis")))];
    diagnose_responses.extend(read_errors());
    diagnose_responses.extend(body_errors());
    let diagnose = with(
        with(
            with(
                operation(
                    "diagnose",
                    "Cluster failures of a window into improvement packets (agent key)",
                    &diagnose_responses,
                ),
                "security",
                key_security(),
            ),
            "parameters",
            json!([window_param("query"), x_api_key_param()]),
        ),
        "requestBody",
        json_body(
            object(
                &[],
                json!({
                    "window": {"type": "string", "pattern": window_pattern(), "description": "wins over the query's window"},
                    "max_pains": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
                    "evidence": {"type": "integer", "minimum": 0, "maximum": 50, "default": 5},
                    "pain_ids": {"type": "array", "items": {"type": "string"}, "description": "only these pains"},
                    "signal_types": {"type": "array", "items": {"type": "string"}, "description": "only pains of these signal types"},
                }),
            ),
            false,
        ),
    );

    let doc = |id: &str, summary: &str, media: &str, schema: Value| {
        operation(id, summary, &[("200", response(summary, media, schema))])
    };
    let text = json!({"type": "string"});
    let mut page = operation(
        "dashboardPage",
        "The dashboard for people (HTML), with the Lost your key? form",
        &[
            ("200", html("the page")),
            ("400", html("the window is not understood")),
            ("401", html("the dashboard link is not valid (a recovery replaces older links)")),
        ],
    );
    page.insert(
        "parameters".into(),
        json!([
            {"name": "project_id", "in": "query", "required": false, "schema": {"type": "string"}},
            {"name": "token", "in": "query", "required": false, "schema": {"type": "string"}},
            window_param("query"),
        ]),
    );
    let mut recovered = operation(
        "recoveryResult",
        "The result of a form recovery, shown once (HTML)",
        &[
            ("200", html("the new keys")),
            ("400", html("the form was not filled in as asked")),
            ("401", html("project_id and recovery_code do not match")),
            ("408", html("the form's body did not arrive in time")),
            ("413", html("the form's body was too large")),
            ("429", html("too many wrong codes for this project")),
            ("404", html("no such result: already shown, expired, or never made")),
        ],
    );
    recovered.insert(
        "parameters".into(),
        json!([{"name": "ticket", "in": "query", "required": true, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}]),
    );
    let mut loop_page = operation(
        "loopPage",
        "The workspace's loop for people (HTML): utility, merges and human decisions per day, providers, pending proposals with their diffs, the watchdog, pains",
        &[
            ("200", html("the page")),
            ("401", html("the token is missing or wrong")),
            ("403", html("a client off this machine, without --loop-remote")),
            ("404", html("the server runs in no workspace")),
        ],
    );
    loop_page.insert(
        "parameters".into(),
        json!([{"name": "token", "in": "query", "required": false, "schema": {"type": "string"},
                "description": "the token of the link ratchet serve printed"}]),
    );
    let icon = |id: &str| doc(id, "The icon of the pages", "image/svg+xml", text.clone());
    json!({
        "/v1/provision": {"post": provision},
        "/v1/signup": {"post": signup},
        "/v1/recover": {"post": recover},
        "/v1/signup/upgrade": {"post": upgrade},
        "/v1/traces": {"post": traces},
        "/v1/telemetry": {"get": telemetry},
        "/v1/runs/diagnose": {"post": diagnose},
        "/v1/dashboard": {"get": dashboard},
        "/v1/changes": {"get": changes},
        "/v1/reports/latest.md": {"get": report},
        "/agents.md": {"get": doc("agentsMd", "Agent instructions", "text/markdown", text.clone())},
        "/llms.txt": {"get": doc("llmsTxt", "Index for language models", "text/plain", text.clone())},
        "/quickstart.md": {"get": doc("quickstartMd", "Ingest and diagnose flow", "text/markdown", text.clone())},
        "/openapi.json": {"get": doc("openapiJson", "This document", "application/json", json!({"type": "object"}))},
        "/openapi.yaml": {"get": doc("openapiYaml", "This document, as YAML", "application/yaml", json!({"type": "object"}))},
        "/schema/improvement-packet.json": {"get": doc("packetSchema", "JSON Schema of an improvement packet", "application/schema+json", json!({"type": "object"}))},
        "/contact.json": {"get": doc("contact", "Who runs this server", "application/json", r("Contact"))},
        "/dashboard": {"get": page},
        "/loop": {"get": loop_page},
        "/recovered": {"get": recovered},
        "/favicon.ico": {"get": icon("faviconIco")},
        "/favicon.svg": {"get": icon("faviconSvg")},
        "/": {"get": doc("index", "Links to the documents", "application/json", r("Index"))},
        "/healthz": {"get": doc("healthz", "Liveness", "application/json", r("Health"))},
    })
}

/// `n` hex digits, not all zero, without lookaround (so that any generator
/// can produce it): one alternative per position of the last non-zero digit.
pub fn nonzero_hex(n: usize) -> String {
    let alternatives: Vec<String> =
        (0..n).map(|k| format!("[0-9a-fA-F]{{{k}}}[1-9a-fA-F]0{{{}}}", n - 1 - k)).collect();
    format!("^(?:{})$", alternatives.join("|"))
}

fn u32() -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": u32::MAX})
}

/// A 64-bit unsigned integer as OTLP/JSON writes it: decimal text, or a number.
fn u64_text() -> Value {
    json!({"oneOf": [{"type": "string", "pattern": "^[0-9]{1,19}$"},
                     {"type": "integer", "minimum": 0, "maximum": i64::MAX}]})
}

/// The scalar members of an OTLP/JSON AnyValue (each may be null: absent),
/// plus `extra`.
fn scalar_value_properties(extra: Option<Value>) -> Value {
    let mut p = json!({
        "stringValue": {"type": ["string", "null"]},
        "boolValue": {"type": ["boolean", "null"]},
        "intValue": {"oneOf": [{"type": "string", "pattern": "^-?[0-9]{1,18}$"},
                               {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}, {"type": "null"}]},
        "doubleValue": {"type": ["number", "null"]},
        "bytesValue": {"type": ["string", "null"], "pattern": "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"},
    });
    if let (Some(o), Some(Value::Object(e))) = (p.as_object_mut(), extra) {
        o.extend(e);
    }
    p
}

fn schemas() -> Value {
    let string = json!({"type": "string"});
    let time = json!({"type": "string", "format": "date-time"});
    let count = json!({"type": "integer", "minimum": 0});
    let number = json!({"type": "number"});
    let change = json!({"oneOf": [{"type": "number"}, {"const": "new"}]});
    let mut packet_schema = packet::schema();
    if let Some(o) = packet_schema.as_object_mut() {
        o.remove("$schema");
        o.remove("$id");
    }
    let measured = json!({"type": "object", "required": ["pain_id", "title", "signal_type", "merged_at", "step",
            "before_rate_per_1k", "after_rate_per_1k", "latest_rate_per_1k", "change_percent", "outcome"],
        "properties": {
            "pain_id": {"type": "string", "pattern": PAIN_ID_PATTERN}, "title": string, "signal_type": string,
            "merged_at": time, "step": {"type": ["string", "null"]},
            "window_closes_at": time,
            "trace_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "span_id": {"type": "string", "pattern": "^[0-9a-f]{16}$", "description": "the span that reported the merge"},
            "before_rate_per_1k": number, "after_rate_per_1k": number, "latest_rate_per_1k": number,
            "change_percent": change, "outcome": {"enum": ["pending", "unmeasured", "held", "slipped"]}}});
    json!({
        "Error": {"type": "object", "required": ["error", "code", "message"], "properties": {
            "error": string, "code": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"}, "message": string,
            "nextAction": string, "retryAfterSeconds": {"type": "integer", "minimum": 1}, "details": {}}},
        "Status": {"type": "object", "description": "google.rpc.Status (OTLP/HTTP errors)", "required": ["code", "message", "details"],
            "properties": {"code": {"type": "integer"}, "message": string,
                "details": {"type": "array", "items": {"type": "object", "required": ["@type"], "properties": {
                    "@type": string, "reason": string, "domain": string,
                    "metadata": {"type": "object", "additionalProperties": {"type": "string"}}}}}}},
        "ExportTraceServiceRequest": {"type": "object",
            "description": "OTLP/JSON (lowerCamelCase fields, hex ids, enums as integers, 64-bit integers as strings or numbers); unknown fields are ignored. A span that does not decode, or whose ids are wrong, is rejected alone (partialSuccess).",
            "properties": {"resourceSpans": {"type": "array", "items": r("ResourceSpans")}}},
        "ResourceSpans": {"type": "object", "properties": {
            "resource": {"type": "object", "properties": {"attributes": r("Attributes"), "droppedAttributesCount": u32()}},
            "schemaUrl": string,
            "scopeSpans": {"type": "array", "items": r("ScopeSpans")}}},
        "ScopeSpans": {"type": "object", "properties": {
            "scope": {"type": "object", "properties": {"name": string, "version": string, "attributes": r("Attributes"),
                                                         "droppedAttributesCount": u32()}},
            "schemaUrl": string,
            "spans": {"type": "array", "items": r("Span")}}},
        "Span": {"type": "object", "required": ["traceId", "spanId"], "properties": {
            "traceId": {"type": "string", "pattern": nonzero_hex(32)},
            "spanId": {"type": "string", "pattern": nonzero_hex(16)},
            "parentSpanId": {"type": "string", "pattern": "^(?:[0-9a-fA-F]{16})?$"},
            "traceState": string, "flags": u32(), "name": string,
            "kind": {"type": "integer", "minimum": 0, "maximum": 5},
            "startTimeUnixNano": u64_text(), "endTimeUnixNano": u64_text(),
            "attributes": r("Attributes"), "droppedAttributesCount": u32(),
            "events": {"type": "array", "maxItems": 1000, "items": {"type": "object", "properties": {
                "timeUnixNano": u64_text(), "name": string, "attributes": r("Attributes"), "droppedAttributesCount": u32()}}},
            "droppedEventsCount": u32(),
            "links": {"type": "array", "items": {"type": "object", "properties": {
                "traceId": {"type": "string", "pattern": "^(?:[0-9a-fA-F]{2})*$"},
                "spanId": {"type": "string", "pattern": "^(?:[0-9a-fA-F]{2})*$"},
                "traceState": string, "attributes": r("Attributes"), "droppedAttributesCount": u32(), "flags": u32()}}},
            "droppedLinksCount": u32(),
            "status": {"type": "object", "properties": {"message": string, "code": {"type": "integer", "minimum": 0, "maximum": 2}}}}},
        "Attributes": {"type": "array", "maxItems": 1000, "items": {"type": "object", "required": ["key", "value"], "properties": {
            "key": string, "value": r("AnyValue")}}},
        "AnyValue": {"type": "object", "description": "nested at most two levels here (the server accepts 16)", "properties": scalar_value_properties(Some(json!({
            "arrayValue": {"type": ["object", "null"], "required": ["values"],
                           "properties": {"values": {"type": "array", "items": r("ScalarValue")}}},
            "kvlistValue": {"type": ["object", "null"], "required": ["values"], "properties": {"values": {"type": "array", "items": {
                "type": "object", "required": ["key", "value"], "properties": {"key": string, "value": r("ScalarValue")}}}}}})))},
        "ScalarValue": {"type": "object", "properties": scalar_value_properties(None)},
        "ExportTraceServiceResponse": {"type": "object", "properties": {"partialSuccess": {"type": "object",
            "required": ["rejectedSpans", "errorMessage"],
            "properties": {"rejectedSpans": {"type": "string", "pattern": "^[0-9]+$"}, "errorMessage": string}}}},
        "Recover": object(&["project_id", "recovery_code"], json!({
            "project_id": {"type": "string", "pattern": PROJECT_ID_PATTERN},
            "recovery_code": {"type": "string", "pattern": RECOVERY_CODE_PATTERN}})),
        "Keys": {"type": "object", "required": ["producer_key", "agent_key", "project_id", "project_name", "tier", "quota_spans",
                "expires_at", "ingest_url", "diagnose_url", "recovery_code", "dashboard_url"],
            "properties": {
                "producer_key": {"type": ["string", "null"], "pattern": "^lkp_"},
                "agent_key": {"type": ["string", "null"], "pattern": "^lka_"},
                "project_id": {"type": "string", "pattern": PROJECT_ID_PATTERN}, "project_name": string,
                "tier": {"enum": ["sandbox", "permanent"]}, "quota_spans": count,
                "expires_at": {"type": ["string", "null"], "format": "date-time"},
                "ingest_url": string, "diagnose_url": string,
                "recovery_code": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
                "dashboard_url": string, "resumed": {"type": "boolean"}, "graduated": {"type": "boolean"},
                "graduated_now": {"type": "boolean"}, "rotated": {"type": "boolean"}, "revoked_previous_keys": {"type": "boolean"}}},
        "Upgraded": {"type": "object", "required": ["project_id", "tier", "graduated", "already_graduated", "quota_spans", "expires_at"],
            "properties": {"project_id": {"type": "string", "pattern": PROJECT_ID_PATTERN}, "tier": {"const": "permanent"},
                "graduated": {"const": true}, "already_graduated": {"type": "boolean"}, "quota_spans": count, "expires_at": {"type": "null"}}},
        "Record": {"type": "object", "required": ["id", "trace_id", "span_id", "parent_span_id", "service", "name", "operation", "kind",
                "status", "start_time", "end_time", "duration_ms", "http_status", "signal_type", "pain_id", "caused_by", "exception", "attributes"],
            "properties": {
                "id": {"type": "integer"}, "trace_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "span_id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
                "parent_span_id": {"type": ["string", "null"], "pattern": "^[0-9a-f]{16}$"},
                "service": string, "name": string, "operation": string, "kind": {"type": "integer"},
                "status": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "integer"}, "message": string}},
                "start_time": time, "end_time": time, "duration_ms": number,
                "http_status": {"type": ["integer", "null"]},
                "signal_type": {"oneOf": [{"type": "null"}, {"enum": ["error", "exception", "http_5xx", "slow", "eval_fail", "feedback"]}]},
                "pain_id": {"type": ["string", "null"], "pattern": PAIN_ID_PATTERN},
                "caused_by": {"type": ["string", "null"], "pattern": "^[0-9a-f]{16}$",
                              "description": "the failing child span whose failure this one's is counted as (then pain_id is null)"},
                "exception": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["type", "message", "stacktrace"], "properties": {
                    "type": string, "message": {"type": ["string", "null"]}, "stacktrace": {"type": ["string", "null"]}}}]},
                "attributes": {"type": "object"}}},
        "TelemetryPage": {"type": "object", "required": ["records", "next_cursor"], "properties": {
            "records": {"type": "array", "items": r("Record")},
            "next_cursor": {"type": ["string", "null"], "pattern": CURSOR_PATTERN}}},
        "OpenPain": {"type": "object", "required": ["pain_id", "title", "signal_type", "count", "evidence_count", "rate_per_1k",
                "previous_count", "change_percent", "importance", "service", "operation", "first_seen", "last_seen", "fingerprint"],
            "properties": {
                "pain_id": {"type": "string", "pattern": PAIN_ID_PATTERN}, "title": string, "signal_type": string,
                "count": count, "evidence_count": count, "rate_per_1k": number, "previous_count": count,
                "change_percent": change, "importance": number,
                "service": {"type": ["string", "null"]}, "operation": {"type": ["string", "null"]},
                "first_seen": time, "last_seen": time,
                "fingerprint": {"type": "object", "required": ["version", "components"], "properties": {
                    "version": string, "components": {"type": "object", "additionalProperties": {"type": "string"}}}}}},
        "MeasuredChange": measured,
        "Changes": {"type": "object", "required": ["project_id", "generated_at", "window", "changes"], "properties": {
            "project_id": {"type": "string", "pattern": PROJECT_ID_PATTERN}, "generated_at": time, "window": string,
            "changes": {"type": "array", "items": r("MeasuredChange")}}},
        "Dashboard": {"type": "object",
            "required": ["project_id", "project_name", "tier", "generated_at", "window", "summary", "value", "open_pains", "wins", "regressions_detail"],
            "properties": {
                "project_id": {"type": "string", "pattern": PROJECT_ID_PATTERN}, "project_name": string,
                "tier": {"enum": ["sandbox", "permanent"]}, "generated_at": time,
                "window": {"type": "object", "required": ["label", "current", "previous"], "properties": {
                    "label": string,
                    "current": {"type": "object", "required": ["start", "end", "spans"], "properties": {"start": time, "end": time, "spans": count}},
                    "previous": {"type": "object", "required": ["start", "end", "spans"], "properties": {"start": time, "end": time, "spans": count}}}},
                "summary": {"type": "object", "required": ["spans", "previous_spans", "failing_spans", "open_pain_count", "held_count",
                        "slipped_count", "pending_count", "unmeasured_count", "regression_rate"],
                    "properties": {"spans": count, "previous_spans": count, "failing_spans": count, "open_pain_count": count,
                        "held_count": count, "slipped_count": count, "pending_count": count, "unmeasured_count": count,
                        "regression_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1}}},
                "value": {"type": "object", "required": ["headline", "momentum", "held_count", "slipped_count", "open_pain_count",
                        "regression_rate", "derived", "basis"],
                    "properties": {"headline": string, "momentum": string, "held_count": count, "slipped_count": count,
                        "open_pain_count": count, "regression_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                        "derived": {"type": "boolean"}, "basis": string}},
                "open_pains": {"type": "array", "items": r("OpenPain")},
                "wins": {"type": "array", "items": r("MeasuredChange")},
                "regressions_detail": {"type": "array", "items": r("MeasuredChange")}}},
        "ImprovementPacket": packet_schema,
        "Diagnosis": {"type": "object", "required": ["project_id", "generated_at", "window", "pain_count", "packets", "next_step"],
            "properties": {
                "project_id": {"type": "string", "pattern": PROJECT_ID_PATTERN}, "generated_at": time,
                "window": {"type": "object", "required": ["label", "start", "end", "spans"], "properties": {
                    "label": string, "start": time, "end": time, "spans": count}},
                "pain_count": count, "packets": {"type": "array", "items": r("ImprovementPacket")}, "next_step": string}},
        "Contact": {"type": "object", "required": ["name", "docs", "openapi"], "properties": {
            "name": string, "operator": string, "production_tenant": string, "upgrade": string, "docs": string, "openapi": string}},
        "Index": {"type": "object", "required": ["name", "agents", "llms", "quickstart", "openapi", "dashboard"], "properties": {
            "name": string, "agents": string, "llms": string, "quickstart": string, "openapi": string, "dashboard": string}},
        "Health": {"type": "object", "required": ["ok"], "properties": {"ok": {"const": true}}},
    })
}

/// The OpenAPI 3.1 document of this server.
pub fn document(base: &str) -> Value {
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "LoopKit (ratchet serve)", "version": env!("CARGO_PKG_VERSION"),
                 "description": "OTLP ingest, pains, improvement packets. JSON API errors follow the actionable shape {error, code, message, nextAction, retryAfterSeconds}; OTLP ingest errors are google.rpc.Status. Every response that may carry a key or telemetry is Cache-Control: no-store."},
        "servers": [{"url": base}],
        "paths": paths(),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "lkp_… producer key (ingest) or lka_… agent key (read, diagnose)"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "the same keys, in x-api-key"},
            },
            "schemas": schemas(),
        }
    });
    // The agents API's routes and schemas (seed 004), held to the same
    // rules as the rest: every operation named, every status documented.
    crate::serve::agents::docs::extend_openapi(&mut doc);
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, ops) in paths.iter_mut() {
            let Some(ops) = ops.as_object_mut() else { continue };
            for (method, op) in ops.iter_mut() {
                if !op["operationId"].is_string() {
                    op["operationId"] = Value::String(operation_id(method, path));
                }
                if let Some(res) = op["responses"].as_object_mut() {
                    res.entry("431").or_insert_with(head_too_large);
                }
            }
        }
    }
    doc
}

/// An operation's id from its method and path: `POST /v1/agents/join` is
/// `postAgentsJoin`, `GET /v1/stories/{id}/machine-room` is `getStoriesIdMachineRoom`.
fn operation_id(method: &str, path: &str) -> String {
    let mut out = method.to_ascii_lowercase();
    for word in path.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty() && *w != "v1") {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    out
}

/// `value` as block YAML whose scalars are JSON: block mappings and
/// sequences whose keys and scalars are JSON strings, numbers, booleans and
/// null, which YAML 1.2 reads exactly as JSON does — and so do YAML 1.1
/// readers (PyYAML), which a general emitter trips: it leaves `NO` or `on`
/// unquoted, and they read those as booleans. Written by hand because that
/// is all the document needs (no anchors, tags or multi-line scalars); a
/// test parses it back with PyYAML.
pub fn yaml(value: &Value) -> String {
    let mut out = String::new();
    write_yaml(value, 0, &mut out);
    out
}

fn write_yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, val) in m {
                out.push_str(&pad);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                nested(val, indent, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for val in a {
                out.push_str(&pad);
                out.push('-');
                nested(val, indent, out);
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&other.to_string());
            out.push('\n');
        }
    }
}

fn nested(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_yaml(v, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_yaml(v, indent + 2, out);
        }
        scalar => {
            out.push(' ');
            out.push_str(&scalar.to_string());
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loopkit::window::Window;

    fn matches(pattern: &str, s: &str) -> bool {
        let schema = json!({"type": "string", "pattern": pattern});
        jsonschema::validator_for(&schema).unwrap().is_valid(&Value::String(s.to_string()))
    }

    #[test]
    fn the_window_pattern_is_what_the_parser_accepts() {
        let mut samples: Vec<String> = Vec::new();
        for unit in ["s", "m", "h", "d", "w", ""] {
            for n in (0..1_000u64).chain([
                59, 60, 8_759, 8_760, 8_761, 525_599, 525_600, 525_601, 31_535_999, 31_536_000, 31_536_001, 99_999_999,
            ]) {
                samples.push(format!("{n}{unit}"));
            }
            samples.push(format!("0{unit}"));
            samples.push(format!("024{unit}"));
            samples.push(format!(" 24{unit}"));
            samples.push(format!("+24{unit}"));
        }
        for s in samples {
            assert_eq!(matches(window_pattern(), &s), Window::parse(&s).is_ok(), "window {s:?}");
        }
    }

    #[test]
    fn the_id_pattern_is_hex_not_all_zero() {
        let p = nonzero_hex(16);
        for (id, ok) in [
            ("0000000000000001", true),
            ("1000000000000000", true),
            ("00000000000000A0", true),
            ("0000000000000000", false),
            ("000000000000001", false),
            ("00000000000000010", false),
            ("000000000000000g", false),
        ] {
            assert_eq!(matches(&p, id), ok, "{id}");
        }
    }

    #[test]
    fn the_cursor_pattern_is_what_the_decoder_accepts() {
        let good = crate::serve::telemetry::encode_cursor(123, &[9u8; 8]);
        assert!(matches(CURSOR_PATTERN, &good));
        assert!(crate::serve::telemetry::decode_cursor(&good).is_some());
        for c in ["", &good[..21], "AAAAAAAAAAAAAAAAAAAAAB", "AAAAAAAAAAAAAAAAAAAAAA"] {
            assert_eq!(
                matches(CURSOR_PATTERN, c),
                c.is_empty() || crate::serve::telemetry::decode_cursor(c).is_some(),
                "{c:?}"
            );
        }
    }
}

//! What the specifications and browsers ask of `ratchet serve` (issue 12
//! §4): per-span rejection in OTLP/JSON, future-dated spans clamped, CORS
//! preflight as the OpenTelemetry JS exporter sends it, the headers of
//! pages and key-bearing answers, the favicon, `/openapi.yaml` as the same
//! document, and bodies the schema forbids refused.

use crate::support::server::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

fn traces_json(key: &str, body: String) -> Request<Body> {
    Request::post("/v1/traces")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn one_bad_span_is_rejected_alone_in_partial_success() {
    let app = App::new();
    let p = app.provision("shop").await;
    let (producer, agent) = (key(&p, "producer_key"), key(&p, "agent_key"));
    let now = now_ns();
    let good = |n: u32| {
        format!(
            r#"{{"traceId":"5b8efff798038103d269b633813fc6{n:02x}","spanId":"eee19b7ec3c1b1{n:02x}","name":"ok","startTimeUnixNano":"{now}"}}"#
        )
    };
    for (i, (what, bad)) in [
        ("a non-hex id", r#"{"traceId":"zz8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}"#),
        ("an enum by name", r#"{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","kind":"SPAN_KIND_SERVER"}"#),
        (
            "a NaN double",
            r#"{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","attributes":[{"key":"x","value":{"doubleValue":"NaN"}}]}"#,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let n = i as u32 + 1;
        let body = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{},{bad},{}]}}]}}]}}"#, good(n), good(n + 100));
        let (s, v) = app.json(traces_json(&producer, body)).await;
        assert_eq!(s, StatusCode::OK, "{what}: {v}");
        assert_eq!(v["partialSuccess"]["rejectedSpans"], "1", "{what}");
        assert!(v["partialSuccess"]["errorMessage"].as_str().unwrap().contains("spans[1]"), "{what}: {v}");
    }
    let (_, t) = app.get("/v1/telemetry", &agent).await;
    assert_eq!(t["records"].as_array().unwrap().len(), 6, "the good spans of each batch were kept");
}

#[tokio::test]
async fn spans_dated_in_the_future_are_clamped_to_now() {
    let app = App::new();
    let p = app.provision("shop").await;
    let mut sp = with_error(span(1, "work", 0), "boom");
    let year = 365 * 86_400 * 1_000_000_000u64;
    sp.start_time_unix_nano = now_ns() + year;
    sp.end_time_unix_nano = sp.start_time_unix_nano + 2_000_000;
    assert_eq!(app.ingest(&key(&p, "producer_key"), &request("svc", vec![sp])).await.0, StatusCode::OK);
    // It is in the current window (not a year ahead), with its duration.
    let (_, t) = app.get("/v1/telemetry?window=1h", &key(&p, "agent_key")).await;
    let r = &t["records"][0];
    assert_eq!(r["duration_ms"], 2.0, "{t}");
    let start = chrono::DateTime::parse_from_rfc3339(r["start_time"].as_str().unwrap()).unwrap();
    assert!((chrono::Utc::now() - start.with_timezone(&chrono::Utc)).num_seconds().abs() < 60, "{r}");
}

#[tokio::test]
async fn browser_exporters_get_cors_for_configured_origins_only() {
    let app = App::with(|c| c.cors_origins = vec!["http://localhost:5173".into()]);
    let preflight = |origin: &str| {
        // What a browser sends before the OTel JS exporter's XHR/fetch POST.
        Request::builder()
            .method("OPTIONS")
            .uri("/v1/traces")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .body(Body::empty())
            .unwrap()
    };
    let (s, h, _) = app.send(preflight("http://localhost:5173")).await;
    assert!(s.is_success(), "{s}");
    assert_eq!(h["access-control-allow-origin"], "http://localhost:5173");
    let allowed = h["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    for header in ["authorization", "content-type", "content-encoding", "accept"] {
        assert!(allowed.contains(header), "{allowed}");
    }
    assert!(h["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    let (_, h, _) = app.send(preflight("https://evil.example")).await;
    assert!(h.get("access-control-allow-origin").is_none(), "an origin not configured gets no CORS");

    // The POST itself carries the header too.
    let p = app.provision("browser").await;
    let mut req =
        post_proto(&key(&p, "producer_key"), prost::Message::encode_to_vec(&request("web", vec![span(1, "x", 1)])));
    req.headers_mut().insert("origin", "http://localhost:5173".parse().unwrap());
    let (s, h, _) = app.send(req).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["access-control-allow-origin"], "http://localhost:5173");

    // No origins configured: no CORS at all.
    let app = App::new();
    let (_, h, _) = app.send(preflight("http://localhost:5173")).await;
    assert!(h.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn pages_and_key_bearing_answers_carry_their_headers() {
    let app = App::new();
    let (s, h, b) = app.send(get("/dashboard", None)).await;
    assert_eq!(s, StatusCode::OK);
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("form-action 'self'"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-store");
    let page = String::from_utf8(b).unwrap();
    assert!(page.contains(r#"rel="icon""#));
    // The page's one style sheet is the one the CSP allows by hash.
    assert!(csp.contains("style-src 'sha256-"));
    assert!(page.contains(ratchet::serve::headers::PAGE_STYLE));

    for (method, path, body) in [("POST", "/v1/provision", r#"{"project_name":"keys"}"#), ("POST", "/v1/signup", "{}")]
    {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let (s, h, _) = app.send(req).await;
        assert!(s.is_success());
        assert_eq!(h["cache-control"], "no-store", "{path}");
    }
    let (s, h, b) = app.send(get("/favicon.ico", None)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "image/svg+xml");
    assert!(String::from_utf8(b).unwrap().starts_with("<svg"));
    let (_, h, _) = app.send(get("/openapi.json", None)).await;
    assert!(h.get("cache-control").is_none(), "public documents may be cached");
}

#[tokio::test]
async fn openapi_yaml_is_the_same_document() {
    let app = App::new();
    let (_, json_doc) = app.json(get("/openapi.json", None)).await;
    let (s, h, b) = app.send(get("/openapi.yaml", None)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/yaml");
    let yaml_doc: Value = serde_norway::from_slice(&b).unwrap();
    assert_eq!(yaml_doc, json_doc);
    // Every $ref resolves inside the document.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    out.push(r.clone());
                }
                o.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&json_doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{r} is not local"));
        assert!(json_doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    // Every operation has an operationId; provision's 201 links onwards.
    for (_, ops) in json_doc["paths"].as_object().unwrap() {
        for (_, op) in ops.as_object().unwrap() {
            assert!(op["operationId"].is_string(), "{op}");
            assert!(op["responses"]["431"].is_object());
        }
    }
    assert!(json_doc["paths"]["/v1/provision"]["post"]["responses"]["201"]["links"]["ReadDashboard"].is_object());
}

#[tokio::test]
async fn bodies_the_schema_forbids_are_400() {
    let app = App::new();
    for (path, body) in [
        ("/v1/provision", json!(["shop"])),
        ("/v1/provision", json!({"project_name": null})),
        ("/v1/provision", json!({"project_name": "shop", "operator": null})),
        ("/v1/provision", json!({"project_name": "x".repeat(101)})),
        ("/v1/provision", json!({"project_name": "   "})),
        ("/v1/provision", json!({"project_name": "shop", "extra": 1})),
        ("/v1/signup", json!(["x"])),
        ("/v1/recover", json!({"project_id": "prj_0000000000000000", "recovery_code": "zz"})),
    ] {
        let (s, v) = app.json(post_json(path, None, &body.to_string())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path} {body}: {v}");
        assert!(v["nextAction"].is_string());
    }
    let p = app.provision("shop").await;
    let agent = key(&p, "agent_key");
    for body in [
        json!([]),
        json!({"max_pains": 0}),
        json!({"max_pains": 101}),
        json!({"window": "0h"}),
        json!({"window": null}),
    ] {
        let (s, v) = app.json(post_json("/v1/runs/diagnose", Some(&agent), &body.to_string())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
    }
    // JSON Schema integers: 5.0 is one.
    let (s, v) = app.json(post_json("/v1/runs/diagnose", Some(&agent), r#"{"max_pains": 5.0}"#)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn two_services_503s_are_two_pains_and_a_caused_parent_is_not_counted() {
    let app = App::new();
    let p = app.provision("shop").await;
    let (producer, agent) = (key(&p, "producer_key"), key(&p, "agent_key"));
    let client = |seed: u64, host: &str, parent: &opentelemetry_proto::tonic::trace::v1::Span| {
        let mut c = span(seed, "GET", 5);
        c.kind = 3;
        c.trace_id = parent.trace_id.clone();
        c.parent_span_id = parent.span_id.clone();
        c.attributes = vec![
            kv("http.request.method", s("GET")),
            kv("server.address", s(host)),
            kv("http.response.status_code", opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(503)),
        ];
        c.status = Some(opentelemetry_proto::tonic::trace::v1::Status { code: 2, message: String::new() });
        c
    };
    for i in 0..4u64 {
        let parent = with_error(span(100 + i, "POST /checkout", 5), "upstream failed");
        let host = if i % 2 == 0 { "payments.internal" } else { "inventory.internal" };
        let child = client(200 + i, host, &parent);
        // Parents and children in separate requests, in both orders.
        let (first, second) = if i < 2 { (parent, child) } else { (child, parent) };
        assert_eq!(app.ingest(&producer, &request("checkout", vec![first])).await.0, StatusCode::OK);
        assert_eq!(app.ingest(&producer, &request("checkout", vec![second])).await.0, StatusCode::OK);
    }
    let (_, d) = app.get("/v1/dashboard", &agent).await;
    let pains = d["open_pains"].as_array().unwrap();
    let ops: std::collections::BTreeSet<_> =
        pains.iter().map(|p| p["operation"].as_str().unwrap().to_string()).collect();
    assert_eq!(ops, ["GET inventory.internal", "GET payments.internal"].iter().map(|s| s.to_string()).collect(), "{d}");
    assert!(pains.iter().all(|p| p["count"] == 2), "{d}");
    let (_, t) = app.get("/v1/telemetry", &agent).await;
    let parents: Vec<_> = t["records"].as_array().unwrap().iter().filter(|r| r["name"] == "POST /checkout").collect();
    assert_eq!(parents.len(), 4);
    assert!(parents.iter().all(|r| r["pain_id"].is_null() && r["caused_by"].is_string()), "{t}");
}

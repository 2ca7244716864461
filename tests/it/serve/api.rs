//! `ratchet serve` through `router().oneshot(...)`: every endpoint's success
//! and error paths, keys, hostile input, clustering, windows and changes.

use std::io::Write;

use crate::support::server::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use prost::Message;
use serde_json::{Value, json};

/// The stable code and next action of an OTLP error body (a
/// `google.rpc.Status`, JSON or protobuf, with an `ErrorInfo` detail).
fn otlp_error(body: &[u8]) -> (String, String) {
    use ratchet::loopkit::otlp::rpc;
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        assert!(v["code"].is_i64(), "Status.code is an integer: {v}");
        let d = &v["details"][0];
        return (d["reason"].as_str().unwrap_or("").into(), d["metadata"]["nextAction"].as_str().unwrap_or("").into());
    }
    let st = rpc::Status::decode(body).expect("a google.rpc.Status");
    let info = rpc::ErrorInfo::decode(&st.details[0].value[..]).unwrap();
    (info.reason, info.metadata.get("nextAction").cloned().unwrap_or_default())
}

// ---- provision, signup, recover, upgrade -----------------------------------

#[tokio::test]
async fn provision_mints_then_resumes_without_rotating_and_refuses_strangers() {
    let app = App::new();
    let first = app.provision("shop").await;
    assert_eq!(first["resumed"], false);
    assert_eq!(first["graduated"], true);
    assert_eq!(first["tier"], "permanent");
    let producer = key(&first, "producer_key");
    let agent = key(&first, "agent_key");
    assert!(producer.starts_with("lkp_") && agent.starts_with("lka_"));
    for field in ["project_id", "quota_spans", "ingest_url", "diagnose_url", "recovery_code", "dashboard_url"] {
        assert!(!first[field].is_null(), "{field} missing in {first}");
    }

    // Re-run without the key: refused with a next action.
    let (s, v) = app.json(post_json("/v1/provision", None, r#"{"project_name":"shop"}"#)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["code"], "RESUME_REQUIRES_KEY");
    assert!(v["nextAction"].as_str().unwrap().contains("Bearer"));

    // Re-run with either key: same project, no new key, old keys still work.
    for k in [&producer, &agent] {
        let (s, v) = app.json(post_json("/v1/provision", Some(k), r#"{"project_name":"shop"}"#)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["resumed"], true);
        assert_eq!(v["project_id"], first["project_id"]);
        assert!(v["producer_key"].is_null() && v["agent_key"].is_null() && v["recovery_code"].is_null());
    }
    let (s, _) = app.get("/v1/dashboard", &agent).await;
    assert_eq!(s, StatusCode::OK);

    // Same name under another operator is another project.
    let (s, other) = app.json(post_json("/v1/provision", None, r#"{"project_name":"shop","operator":"bob"}"#)).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_ne!(other["project_id"], first["project_id"]);
    // A key of bob's project cannot resume the first one.
    let (s, v) =
        app.json(post_json("/v1/provision", Some(&key(&other, "agent_key")), r#"{"project_name":"shop"}"#)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["code"], "KEY_PROJECT_MISMATCH");
    assert!(v["nextAction"].is_string());
}

#[tokio::test]
async fn urls_use_the_public_base() {
    let app = App::with(|c| c.public_base = Some("https://loopkit.example/".into()));
    let p = app.provision("shop").await;
    assert_eq!(p["ingest_url"], "https://loopkit.example/v1/traces");
    assert_eq!(p["diagnose_url"], "https://loopkit.example/v1/runs/diagnose");
    assert!(p["dashboard_url"].as_str().unwrap().starts_with("https://loopkit.example/dashboard?project_id="));
    let (_, _, b) = app.send(get("/quickstart.md", None)).await;
    assert!(String::from_utf8(b).unwrap().contains("https://loopkit.example/v1/traces"));
}

#[tokio::test]
async fn concurrent_first_provisions_mint_once() {
    let app = App::new();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let state = app.state.clone();
        tasks.push(tokio::spawn(async move {
            let res = tower::ServiceExt::oneshot(
                ratchet::serve::router(state),
                post_json("/v1/provision", None, r#"{"project_name":"race"}"#),
            )
            .await
            .unwrap();
            res.status()
        }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::UNAUTHORIZED => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 1);
}

#[tokio::test]
async fn provision_and_signup_reject_bad_bodies() {
    let app = App::new();
    for body in
        [r#"{"project_name":42}"#, r#"{}"#, r#"{"project_name":""}"#, "not json", r#"{"project_name":"x","extra":1}"#]
    {
        let (s, v) = app.json(post_json("/v1/provision", None, body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(v["nextAction"].is_string() && v["code"].is_string() && v["error"].is_string());
    }
    let (s, v) = app.json(post_json("/v1/signup", None, r#"{"project_name":["a"]}"#)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let big = format!(r#"{{"project_name":"{}"}}"#, "x".repeat(100_000));
    let (s, _) = app.json(post_json("/v1/signup", None, &big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn signup_mints_a_fresh_sandbox_each_call() {
    let app = App::new();
    let a = app.signup().await;
    let b = app.signup().await;
    assert_ne!(a["project_id"], b["project_id"]);
    assert_eq!(a["tier"], "sandbox");
    assert_eq!(a["quota_spans"], 100_000);
    assert!(a["expires_at"].is_string());
    assert_eq!(a["recovery_code"].as_str().unwrap().len(), 64);
}

#[tokio::test]
async fn public_minting_is_rate_limited_with_retry_after() {
    let app = App::with(|c| c.mint_limit = 2);
    app.signup().await;
    app.provision("p").await;
    let (s, h, b) = app.send(post_json("/v1/signup", None, "{}")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["code"], "RATE_LIMITED");
    assert!(v["nextAction"].is_string());
    let secs = v["retryAfterSeconds"].as_u64().unwrap();
    assert!(secs >= 1);
    assert_eq!(h["retry-after"].to_str().unwrap(), secs.to_string());
}

#[tokio::test]
async fn recovery_rotates_and_revokes() {
    let app = App::new();
    let p = app.provision("shop").await;
    let (old_producer, old_agent) = (key(&p, "producer_key"), key(&p, "agent_key"));
    let body = json!({"project_id": p["project_id"], "recovery_code": p["recovery_code"]}).to_string();
    // Use both keys first, so that the server has looked them up (and cached them).
    assert_eq!(app.get("/v1/dashboard", &old_agent).await.0, StatusCode::OK);
    assert_eq!(app.ingest(&old_producer, &request("svc", vec![span(9, "x", 1)])).await.0, StatusCode::OK);

    let wrong = json!({"project_id": p["project_id"], "recovery_code": "0".repeat(64)}).to_string();
    let (s, v) = app.json(post_json("/v1/recover", None, &wrong)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["code"], "INVALID_RECOVERY_CODE");
    let unknown = json!({"project_id": "prj_0000000000000000", "recovery_code": p["recovery_code"]}).to_string();
    assert_eq!(app.json(post_json("/v1/recover", None, &unknown)).await.0, StatusCode::UNAUTHORIZED);
    let malformed = json!({"project_id": "prj_nope", "recovery_code": "00"}).to_string();
    assert_eq!(app.json(post_json("/v1/recover", None, &malformed)).await.0, StatusCode::BAD_REQUEST);

    let (s, r) = app.json(post_json("/v1/recover", None, &body)).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (new_producer, new_agent) = (key(&r, "producer_key"), key(&r, "agent_key"));
    assert_ne!(new_producer, old_producer);
    assert_ne!(new_agent, old_agent);
    assert_ne!(r["dashboard_url"], p["dashboard_url"]);

    let (s, v) = app.get("/v1/dashboard", &old_agent).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["code"], "KEY_REVOKED");
    let (s, _) = app.ingest(&old_producer, &request("svc", vec![span(1, "x", 1)])).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/v1/dashboard", &new_agent).await.0, StatusCode::OK);
    assert_eq!(app.ingest(&new_producer, &request("svc", vec![span(1, "x", 1)])).await.0, StatusCode::OK);

    // The recovery code does not change: it works again.
    assert_eq!(app.json(post_json("/v1/recover", None, &body)).await.0, StatusCode::OK);

    // The old dashboard link stops working; the new one works.
    let old_link = p["dashboard_url"].as_str().unwrap().trim_start_matches("http://127.0.0.1:7878").to_string();
    let (s, _, _) = app.send(get(&old_link, None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_recovery_form_answers_with_a_page() {
    let app = App::new();
    let p = app.provision("shop").await;
    let form = format!(
        "project_id={}&recovery_code={}",
        p["project_id"].as_str().unwrap(),
        p["recovery_code"].as_str().unwrap()
    );
    let post = |body: String| {
        Request::post("/v1/recover")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    // POST-redirect-GET: the post answers 303, the page shows the keys once.
    let (s, h, _) = app.send(post(form)).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h["cache-control"], "no-store");
    let location = h["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/recovered?ticket="), "{location}");
    let (s, h, b) = app.send(get(&location, None)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(h["cache-control"], "no-store");
    let page = String::from_utf8(b).unwrap();
    assert!(page.contains("lkp_") && page.contains("lka_"));
    // A reload shows nothing, and cannot resubmit.
    let (s, _, b) = app.send(get(&location, None)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let page = String::from_utf8(b).unwrap();
    assert!(!page.contains("lkp_") && !page.contains("lka_"));

    // A form not filled in as asked holds no key: answered directly.
    let (s, h, b) = app.send(post("project_id=prj_x&recovery_code=<script>".into())).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(!String::from_utf8(b).unwrap().contains("<script>"));
    let wrong = format!("project_id={}&recovery_code={}", p["project_id"].as_str().unwrap(), "a".repeat(64));
    let (_, h, _) = app.send(post(wrong)).await;
    assert_eq!(app.send(get(h["location"].to_str().unwrap(), None)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn upgrade_checks_the_seed_hmac_code() {
    let app = App::with(|c| c.upgrade_secret = Some("op-secret".into()));
    let sb = app.signup().await;
    let (agent, producer, id) = (key(&sb, "agent_key"), key(&sb, "producer_key"), key(&sb, "project_id"));
    let good = ratchet::loopkit::keys::hmac_hex(b"op-secret", &format!("signup-upgrade:sandbox:{id}"));

    let (s, v) = app.json(post_json("/v1/signup/upgrade", Some(&agent), r#"{"code":"abcd"}"#)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["code"], "INVALID_UPGRADE_CODE");
    let (s, v) = app.json(post_json("/v1/signup/upgrade", None, &json!({"code": good}).to_string())).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["nextAction"].is_string());
    let (s, v) = app.json(post_json("/v1/signup/upgrade", Some(&producer), &json!({"code": good}).to_string())).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["code"], "WRONG_KEY_KIND");

    let (s, v) = app.json(post_json("/v1/signup/upgrade", Some(&agent), &json!({"code": good}).to_string())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["tier"], "permanent");
    assert_eq!(v["already_graduated"], false);

    // The legacy form: both keys in the body, no bearer.
    let sb2 = app.signup().await;
    let id2 = key(&sb2, "project_id");
    let code2 = ratchet::loopkit::keys::hmac_hex(b"op-secret", &format!("signup-upgrade:sandbox:{id2}"));
    let body = json!({"code": code2, "producer_key": sb2["producer_key"], "agent_key": sb2["agent_key"]}).to_string();
    let (s, v) = app.json(post_json("/v1/signup/upgrade", None, &body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

// ---- keys and their kinds --------------------------------------------------

#[tokio::test]
async fn producer_keys_only_ingest_and_agent_keys_only_read() {
    let app = App::new();
    let p = app.provision("shop").await;
    let (producer, agent) = (key(&p, "producer_key"), key(&p, "agent_key"));
    let req = request("svc", vec![span(1, "x", 1)]);

    let (s, b) = app.ingest(&agent, &req).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (code, next) = otlp_error(&b);
    assert_eq!(code, "WRONG_KEY_KIND");
    assert!(next.contains("producer_key"));

    for (method, path) in [
        ("POST", "/v1/runs/diagnose"),
        ("GET", "/v1/dashboard"),
        ("GET", "/v1/telemetry"),
        ("GET", "/v1/reports/latest.md"),
    ] {
        let r = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {producer}"))
            .body(Body::from("{}"))
            .unwrap();
        let (s, v) = app.json(r).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(v["code"], "WRONG_KEY_KIND");
        let r = Request::builder().method(method).uri(path).body(Body::from("{}")).unwrap();
        let (s, v) = app.json(r).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(v["code"], "AUTH_REQUIRED");
        assert!(v["nextAction"].is_string());
    }

    // Malformed, mistyped (checksum) and unknown keys.
    for (bad, code) in [
        ("nonsense", "INVALID_KEY"),
        (&format!("{}x", &agent[..agent.len() - 1]) as &str, "INVALID_KEY"),
        (
            &ratchet::loopkit::keys::mint(ratchet::loopkit::keys::KeyKind::Agent).unwrap().plaintext as &str,
            "UNKNOWN_KEY",
        ),
    ] {
        let (s, v) = app.get("/v1/dashboard", bad).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(v["code"], code, "{bad}");
    }
}

#[tokio::test]
async fn keys_never_reach_the_database_file_in_plain_text() {
    let app = App::new();
    let mut secrets = Vec::new();
    for i in 0..3 {
        let p = app.provision(&format!("p{i}")).await;
        secrets.push(key(&p, "producer_key"));
        secrets.push(key(&p, "agent_key"));
        app.ingest(&key(&p, "producer_key"), &request("svc", vec![with_error(span(i, "x", 1), "boom")])).await;
    }
    let s = app.signup().await;
    secrets.push(key(&s, "producer_key"));
    secrets.push(key(&s, "agent_key"));
    let p = app.provision("rotated").await;
    let body = json!({"project_id": p["project_id"], "recovery_code": p["recovery_code"]}).to_string();
    let (_, r) = app.json(post_json("/v1/recover", None, &body)).await;
    for v in [&p, &r] {
        secrets.push(key(v, "producer_key"));
        secrets.push(key(v, "agent_key"));
    }
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("loopkit.db") {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(bytes.len() > 4096);
    for k in &secrets {
        // The whole key, and its random body alone.
        for needle in [k.as_bytes(), &k.as_bytes()[4..40]] {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle), "a key is in the database in plain text");
        }
    }
}

// ---- ingest ----------------------------------------------------------------

#[tokio::test]
async fn ingest_accepts_protobuf_and_json_and_answers_in_kind() {
    let app = App::new();
    let p = app.provision("shop").await;
    let producer = key(&p, "producer_key");
    let (s, b) = app.ingest(&producer, &request("svc", vec![span(1, "a", 1)])).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b.is_empty(), "an empty ExportTraceServiceResponse");

    let t = now_ns();
    let body = json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
        "scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "name": "GET /x", "kind": 2, "startTimeUnixNano": t.to_string(), "endTimeUnixNano": t + 1_000_000,
            "attributes": [{"key": "n", "value": {"intValue": "5"}}], "status": {"code": 2, "message": "nope"},
            "someFutureField": {"a": 1}}]}]}]})
    .to_string();
    let req = Request::post("/v1/traces")
        .header("content-type", "application/json; charset=utf-8")
        .header("authorization", format!("Bearer {producer}"))
        .body(Body::from(body))
        .unwrap();
    let (s, h, b) = app.send(req).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(b, b"{}");

    // x-api-key works as well as the bearer.
    let req = Request::post("/v1/traces")
        .header("content-type", "application/x-protobuf")
        .header("x-api-key", &producer)
        .body(Body::from(request("svc", vec![span(2, "b", 1)]).encode_to_vec()))
        .unwrap();
    assert_eq!(app.send(req).await.0, StatusCode::OK);

    let agent = key(&p, "agent_key");
    let (_, v) = app.get("/v1/telemetry", &agent).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn ingest_handles_gzip_deflate_and_chunked_bodies() {
    let app = App::new();
    let p = app.provision("shop").await;
    let producer = key(&p, "producer_key");
    let raw = request("svc", vec![span(1, "a", 1)]).encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zl.write_all(&request("svc", vec![span(2, "b", 1)]).encode_to_vec()).unwrap();
    for (enc, body) in [("gzip", gz.finish().unwrap()), ("deflate", zl.finish().unwrap())] {
        let req = Request::post("/v1/traces")
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", enc)
            .header("authorization", format!("Bearer {producer}"))
            .body(Body::from(body))
            .unwrap();
        assert_eq!(app.send(req).await.0, StatusCode::OK, "{enc}");
    }
    // A streamed body without Content-Length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        request("svc", vec![span(3, "c", 1)]).encode_to_vec().chunks(7).map(|c| Ok(c.to_vec())).collect();
    let req = Request::post("/v1/traces")
        .header("content-type", "application/x-protobuf")
        .header("authorization", format!("Bearer {producer}"))
        .body(Body::from_stream(futures_stream(chunks)))
        .unwrap();
    assert_eq!(app.send(req).await.0, StatusCode::OK);
    let (_, v) = app.get("/v1/telemetry", &key(&p, "agent_key")).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 3);

    let req = Request::post("/v1/traces")
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "br")
        .header("authorization", format!("Bearer {producer}"))
        .body(Body::from(raw))
        .unwrap();
    let (s, _, b) = app.send(req).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(otlp_error(&b).0, "UNSUPPORTED_CONTENT_ENCODING");
}

fn futures_stream(
    items: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    futures_util::stream::iter(items)
}

async fn records_count(app: &App, agent: &str) -> usize {
    let (s, v) = app.get("/v1/telemetry?limit=1000", agent).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["records"].as_array().unwrap().len()
}

fn traces(producer: &str, ct: &str, body: Vec<u8>) -> Request<Body> {
    Request::post("/v1/traces")
        .header("content-type", ct)
        .header("authorization", format!("Bearer {producer}"))
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn hostile_input_is_a_clear_4xx_and_writes_nothing() {
    let app = App::with(|c| c.body_limit = 1 << 20);
    let p = app.provision("shop").await;
    let (producer, agent) = (key(&p, "producer_key"), key(&p, "agent_key"));
    let good = request("svc", vec![span(1, "a", 1), with_error(span(2, "b", 1), "x")]).encode_to_vec();

    let mut deep = String::new();
    for _ in 0..200 {
        deep.push_str(r#"{"arrayValue":{"values":["#);
    }
    deep.push_str(r#"{"stringValue":"x"}"#);
    for _ in 0..200 {
        deep.push_str("]}}");
    }
    let deep_json = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"d","attributes":[{{"key":"k","value":{deep}}}]}}]}}]}}]}}"#
    );
    // Deep nesting in protobuf: an AnyValue inside arrays 150 levels deep.
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, any_value::Value as AV};
    let mut v = AnyValue { value: Some(AV::StringValue("x".into())) };
    for _ in 0..150 {
        v = AnyValue { value: Some(AV::ArrayValue(ArrayValue { values: vec![v] })) };
    }
    let mut deep_span = span(3, "deep", 1);
    deep_span.attributes.push(opentelemetry_proto::tonic::common::v1::KeyValue {
        key: "k".into(),
        value: Some(v),
        ..Default::default()
    });
    let deep_proto = request("svc", vec![deep_span]).encode_to_vec();
    // 20 levels: decodes, but is over the span limit of 16.
    let mut v = AnyValue { value: Some(AV::StringValue("x".into())) };
    for _ in 0..20 {
        v = AnyValue { value: Some(AV::ArrayValue(ArrayValue { values: vec![v] })) };
    }
    let mut nested_span = span(4, "nested", 1);
    nested_span.attributes.push(opentelemetry_proto::tonic::common::v1::KeyValue {
        key: "k".into(),
        value: Some(v),
        ..Default::default()
    });
    let nested = request("svc", vec![nested_span]).encode_to_vec();

    let mut fat = span(5, "fat", 1);
    fat.attributes = (0..10_000).map(|i| kv(&format!("k{i}"), s("v"))).collect();
    let fat = request("svc", vec![fat]).encode_to_vec();
    let mut short = span(6, "short", 1);
    short.span_id = vec![1, 2, 3];
    let short = request("svc", vec![short]).encode_to_vec();
    let mut zero = span(7, "zero", 1);
    zero.trace_id = vec![0; 16];
    let zero = request("svc", vec![zero]).encode_to_vec();

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..8 {
        gz.write_all(&vec![0u8; 1 << 20]).unwrap();
    }
    let bomb = gz.finish().unwrap();

    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Vec<u8>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        ("truncated protobuf", "application/x-protobuf", None, good[..good.len() - 3].to_vec(), StatusCode::BAD_REQUEST, "MALFORMED_OTLP"),
        ("garbage protobuf", "application/x-protobuf", None, vec![0xff; 64], StatusCode::BAD_REQUEST, "MALFORMED_OTLP"),
        ("JSON of wrong types", "application/json", None, br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":7}]}]}]}"#.to_vec(), StatusCode::BAD_REQUEST, "SPANS_REJECTED"),
        ("JSON not hex", "application/json", None, br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"eee19b7ec3c1b174"}]}]}]}"#.to_vec(), StatusCode::BAD_REQUEST, "SPANS_REJECTED"),
        ("a JSON array", "application/json", None, b"[]".to_vec(), StatusCode::BAD_REQUEST, "MALFORMED_OTLP"),
        ("resourceSpans not an array", "application/json", None, br#"{"resourceSpans":7}"#.to_vec(), StatusCode::BAD_REQUEST, "MALFORMED_OTLP"),
        ("JSON that is not JSON", "application/json", None, b"{\"resourceSpans\": [".to_vec(), StatusCode::BAD_REQUEST, "MALFORMED_OTLP"),
        ("JSON id of wrong length", "application/json", None, br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8e","spanId":"eee19b7ec3c1b174","name":"x"}]}]}]}"#.to_vec(), StatusCode::BAD_REQUEST, "SPANS_REJECTED"),
        ("span id of wrong length", "application/x-protobuf", None, short, StatusCode::BAD_REQUEST, "SPANS_REJECTED"),
        ("all-zero trace id", "application/x-protobuf", None, zero, StatusCode::BAD_REQUEST, "SPANS_REJECTED"),
        ("10,000 attributes", "application/x-protobuf", None, fat, StatusCode::BAD_REQUEST, "SPANS_REJECTED"),
        ("deep JSON nesting", "application/json", None, deep_json.into_bytes(), StatusCode::BAD_REQUEST, "SPANS_REJECTED"),
        ("deep protobuf nesting", "application/x-protobuf", None, deep_proto, StatusCode::BAD_REQUEST, "MALFORMED_OTLP"),
        ("nesting over the span limit", "application/x-protobuf", None, nested, StatusCode::BAD_REQUEST, "SPANS_REJECTED"),
        ("gzip bomb", "application/x-protobuf", Some("gzip"), bomb, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
        ("body over the limit", "application/x-protobuf", None, vec![0u8; (1 << 20) + 1], StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
        ("bad gzip", "application/x-protobuf", Some("gzip"), b"not gzip".to_vec(), StatusCode::BAD_REQUEST, "BAD_COMPRESSION"),
        ("text/plain", "text/plain", None, good.clone(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
    ];
    for (what, ct, enc, body, status, code) in cases {
        let mut req = traces(&producer, ct, body);
        if let Some(e) = enc {
            req.headers_mut().insert("content-encoding", e.parse().unwrap());
        }
        let (s, h, b) = app.send(req).await;
        assert_eq!(s, status, "{what}: {}", String::from_utf8_lossy(&b));
        // The answer is a google.rpc.Status in the request's encoding.
        let want_ct = if ct == "text/plain" { "application/json" } else { ct };
        assert_eq!(h["content-type"], want_ct, "{what}");
        let (got, next) = otlp_error(&b);
        assert_eq!(got, code, "{what}");
        assert!(!next.is_empty(), "{what}");
    }
    assert_eq!(records_count(&app, &agent).await, 0, "no partial insert of a rejected request");

    // 405 for other methods, in the actionable shape.
    let (s, v) = app.json(get("/v1/traces", Some(&producer))).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(v["code"], "METHOD_NOT_ALLOWED");
    let (s, v) = app.json(get("/v1/nope", None)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["nextAction"].is_string());
}

#[tokio::test]
async fn rejected_spans_are_reported_in_partial_success() {
    let app = App::new();
    let p = app.provision("shop").await;
    let producer = key(&p, "producer_key");
    let mut bad = span(2, "bad", 1);
    bad.trace_id.truncate(4);
    let req = request("svc", vec![span(1, "good", 1), bad, span(3, "good2", 1)]);
    let (s, b) = app.ingest(&producer, &req).await;
    assert_eq!(s, StatusCode::OK);
    let resp = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::decode(&b[..]).unwrap();
    let ps = resp.partial_success.unwrap();
    assert_eq!(ps.rejected_spans, 1);
    assert!(ps.error_message.contains("trace id"));

    let mut bad = span(5, "bad", 1);
    bad.span_id = vec![0; 8];
    let body = serde_json::to_vec(&request("svc", vec![span(4, "ok", 1), bad])).unwrap();
    let (s, v) = app.json(traces(&producer, "application/json", body)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["partialSuccess"]["rejectedSpans"], "1");
    assert_eq!(records_count(&app, &key(&p, "agent_key")).await, 3);
}

#[tokio::test]
async fn retried_batches_are_stored_once() {
    let app = App::new();
    let p = app.provision("shop").await;
    let req = request("svc", vec![span(1, "a", 1), span(2, "b", 1)]);
    for _ in 0..3 {
        assert_eq!(app.ingest(&key(&p, "producer_key"), &req).await.0, StatusCode::OK);
    }
    assert_eq!(records_count(&app, &key(&p, "agent_key")).await, 2);
}

#[tokio::test]
async fn sandbox_quota_and_expiry_are_enforced_atomically() {
    let app = App::with(|c| c.sandbox_quota = 5);
    let sb = app.signup().await;
    let producer = key(&sb, "producer_key");
    let three = |base: u64| request("svc", (0..3).map(|i| span(base + i, "x", 1)).collect());
    assert_eq!(app.ingest(&producer, &three(0)).await.0, StatusCode::OK);
    // Two of the next three fit: they are kept, the third is rejected in
    // partialSuccess.
    let (s, h, b) = app.send(post_proto(&producer, three(10).encode_to_vec())).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h.get("retry-after").is_none());
    let resp = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::decode(&b[..]).unwrap();
    let ps = resp.partial_success.unwrap();
    assert_eq!(ps.rejected_spans, 1);
    assert!(ps.error_message.contains("quota"), "{}", ps.error_message);
    // With the quota spent, a batch is refused with 403: OTLP exporters
    // retry 429, and waiting can never lift a lifetime quota.
    let (s, h, b) = app.send(post_proto(&producer, three(20).encode_to_vec())).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(h.get("retry-after").is_none());
    let (code, next) = otlp_error(&b);
    assert_eq!(code, "QUOTA_EXCEEDED");
    assert!(next.contains("upgrade"));
    assert_eq!(records_count(&app, &key(&sb, "agent_key")).await, 5, "the refused batch wrote nothing");

    let app = App::with(|c| c.sandbox_ttl = std::time::Duration::from_secs(0));
    let sb = app.signup().await;
    let (s, b) = app.ingest(&key(&sb, "producer_key"), &three(0)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(otlp_error(&b).0, "SANDBOX_EXPIRED");
}

// ---- reading -----------------------------------------------------------------

#[tokio::test]
async fn telemetry_pages_with_a_cursor_and_a_window() {
    let app = App::new();
    let p = app.provision("shop").await;
    let (producer, agent) = (key(&p, "producer_key"), key(&p, "agent_key"));
    let spans: Vec<_> = (0..25).map(|i| span(i, &format!("op{i}"), 10 + i)).collect();
    let mut old = vec![span(100, "old", 3 * 3600)];
    old[0].name = "old".into();
    app.ingest(&producer, &request("svc", spans)).await;
    app.ingest(&producer, &request("svc", old)).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/telemetry?limit=10&window=1h&cursor={c}"),
            None => "/v1/telemetry?limit=10&window=1h".into(),
        };
        let (s, v) = app.get(&path, &agent).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for r in v["records"].as_array().unwrap() {
            seen.push(r["name"].as_str().unwrap().to_string());
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25, "the 3-hour-old span is outside the 1h window");
    assert_eq!(seen[0], "op0", "newest first");
    let (_, v) = app.get("/v1/telemetry?window=4h&limit=1000", &agent).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 26);
    assert!(v["next_cursor"].is_null());
    let r = &v["records"][0];
    for f in [
        "trace_id",
        "span_id",
        "service",
        "name",
        "operation",
        "kind",
        "status",
        "start_time",
        "duration_ms",
        "attributes",
    ] {
        assert!(!r[f].is_null(), "{f} in {r}");
    }

    for bad in [
        "/v1/telemetry?limit=0",
        "/v1/telemetry?limit=abc",
        "/v1/telemetry?window=forever",
        "/v1/telemetry?cursor=%%%",
        "/v1/telemetry?bogus=1",
    ] {
        let (s, v) = app.get(bad, &agent).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(v["nextAction"].is_string());
    }
}

const NODE_STACK: &str = "TypeError: boom\n    at addItem (/srv/app/src/cart.js:10:5)\n    at handle (/srv/app/src/routes.js:3:1)\n    at Layer.handle (/srv/app/node_modules/express/lib/router/layer.js:95:5)";

fn pains_batch(base: u64) -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
    let mut v = Vec::new();
    for i in 0..6 {
        let mut sp = with_exception(
            span(base + i, &format!("POST /cart/{}", 100 + i), 60),
            "TypeError",
            &format!("x is undefined for user {i}"),
            NODE_STACK,
        );
        sp.attributes.push(kv("region", s("eu")));
        v.push(sp);
    }
    for i in 0..3 {
        v.push(with_error(span(base + 10 + i, "charge", 60), &format!("card declined for order {}", 700 + i)));
    }
    for i in 0..20 {
        let mut sp = span(base + 20 + i, "GET /health", 60);
        sp.attributes.push(kv("region", s("us")));
        v.push(sp);
    }
    v
}

#[tokio::test]
async fn dashboard_shows_open_pains_by_importance_with_the_seed_fields() {
    let app = App::new();
    let p = app.provision("shop").await;
    let (producer, agent) = (key(&p, "producer_key"), key(&p, "agent_key"));
    app.ingest(&producer, &request("shop-api", pains_batch(0))).await;
    let (s, d) = app.get("/v1/dashboard", &agent).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert!(d["summary"]["regression_rate"].is_null());
    for f in ["headline", "momentum", "held_count", "slipped_count", "open_pain_count", "regression_rate", "derived"] {
        assert!(d["value"].get(f).is_some(), "value.{f}");
    }
    assert!(d["wins"].as_array().unwrap().is_empty());
    assert!(d["regressions_detail"].as_array().unwrap().is_empty());
    let pains = d["open_pains"].as_array().unwrap();
    assert_eq!(pains.len(), 2, "{d}");
    assert_eq!(pains[0]["signal_type"], "exception");
    assert_eq!(pains[0]["count"], 6);
    assert_eq!(pains[0]["evidence_count"], 5);
    assert_eq!(pains[0]["change_percent"], "new");
    assert_eq!(pains[0]["operation"], "POST /cart/{id}");
    assert_eq!(pains[1]["signal_type"], "error");
    assert_eq!(pains[1]["count"], 3);
    assert!(pains[0]["pain_id"].as_str().unwrap().starts_with("pn_"));
    assert_eq!(d["value"]["open_pain_count"], 2);
    assert!(d["value"]["headline"].as_str().unwrap().contains("TypeError"));

    let (s, v) = app.get("/v1/dashboard?window=nope", &agent).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], "BAD_WINDOW");

    let (s, h, b) = app.send(get("/v1/reports/latest.md", Some(&agent))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/markdown"));
    let md = String::from_utf8(b).unwrap();
    assert!(md.contains("## Open pains") && md.contains("TypeError"), "{md}");
}

#[tokio::test]
async fn diagnose_packets_validate_against_the_published_schema() {
    let app = App::new();
    let p = app.provision("shop").await;
    let (producer, agent) = (key(&p, "producer_key"), key(&p, "agent_key"));
    app.ingest(&producer, &request("shop-api", pains_batch(0))).await;
    let (s, schema) = app.json(get("/schema/improvement-packet.json", None)).await;
    assert_eq!(s, StatusCode::OK);
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");

    let (s, d) = app.json(post_json("/v1/runs/diagnose", Some(&agent), r#"{"window":"24h","evidence":3}"#)).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    let packets = d["packets"].as_array().unwrap();
    assert_eq!(packets.len(), 2);
    for packet in packets {
        let errors: Vec<String> = validator.iter_errors(packet).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}\n{packet}");
    }
    let top = &packets[0];
    assert_eq!(top["evidence_count"], 3);
    assert_eq!(top["fingerprint"]["components"]["exception.type"], "TypeError");
    assert_eq!(top["fingerprint"]["components"]["frames"], "src/cart.js:addItem | src/routes.js:handle");
    assert_eq!(top["over_represented"][0]["key"], "region");
    assert_eq!(top["over_represented"][0]["value"], "eu");
    assert!(top["patch_plan"]["steps"].as_array().unwrap().len() >= 2);

    // An empty body diagnoses with defaults; filters and bounds are checked.
    let (s, d) = app.json(post_json("/v1/runs/diagnose", Some(&agent), "")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d["packets"].as_array().unwrap().len(), 2);
    let (_, d) = app.json(post_json("/v1/runs/diagnose", Some(&agent), r#"{"signal_types":["error"]}"#)).await;
    assert_eq!(d["packets"].as_array().unwrap().len(), 1);
    let (s, v) = app.json(post_json("/v1/runs/diagnose", Some(&agent), r#"{"max_pains":"ten"}"#)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["nextAction"].is_string());
    let (s, _) = app.json(post_json("/v1/runs/diagnose", Some(&agent), r#"{"evidence":5000}"#)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

// ---- clustering ----------------------------------------------------------------

async fn pain_ids(app: &App, agent: &str) -> Vec<(String, u64)> {
    let (_, d) = app.get("/v1/dashboard", agent).await;
    let mut v: Vec<(String, u64)> = d["open_pains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["pain_id"].as_str().unwrap().to_string(), p["count"].as_u64().unwrap()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn pain_ids_are_stable_across_order_projects_and_restarts() {
    let app = App::new();
    let a = app.provision("a").await;
    let b = app.provision("b").await;
    let spans = pains_batch(0);
    let mut reversed = spans.clone();
    reversed.reverse();
    app.ingest(&key(&a, "producer_key"), &request("shop-api", spans)).await;
    for chunk in reversed.chunks(4) {
        app.ingest(&key(&b, "producer_key"), &request("shop-api", chunk.to_vec())).await;
    }
    let ids_a = pain_ids(&app, &key(&a, "agent_key")).await;
    let ids_b = pain_ids(&app, &key(&b, "agent_key")).await;
    assert_eq!(ids_a.len(), 2);
    assert_eq!(ids_a, ids_b);
    let app = app.reopen();
    assert_eq!(pain_ids(&app, &key(&a, "agent_key")).await, ids_a);
    // More spans after the restart join the same pains.
    app.ingest(&key(&a, "producer_key"), &request("shop-api", pains_batch(1000))).await;
    let after: Vec<_> = pain_ids(&app, &key(&a, "agent_key")).await;
    assert_eq!(after.iter().map(|p| &p.0).collect::<Vec<_>>(), ids_a.iter().map(|p| &p.0).collect::<Vec<_>>());
    assert!(after.iter().zip(&ids_a).all(|(x, y)| x.1 == 2 * y.1));
}

#[tokio::test]
async fn masking_merges_variable_parts_and_types_or_frames_split() {
    let app = App::new();
    let p = app.provision("shop").await;
    let (producer, agent) = (key(&p, "producer_key"), key(&p, "agent_key"));
    let msgs = [
        "user 12 not found in '/tmp/a.db' (req 8f7a6b5c4d3e)",
        "user 98765 not found in '/var/lib/b.db' (req 0a1b2c3d4e5f)",
        "user 7 not found in \"C:\\\\data\\\\c.db\" (req 1234abcd5678)",
    ];
    let mut spans = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        spans.push(with_exception(span(i as u64, "GET /users/1", 30), "NotFound", m, ""));
    }
    // Same message, another exception type.
    spans.push(with_exception(span(10, "GET /users/1", 30), "Timeout", msgs[0], ""));
    // Same type, different in-app frames.
    spans.push(with_exception(span(11, "GET /users/1", 30), "NotFound", msgs[0], "E\n    at a (/app/src/x.js:1:1)"));
    spans.push(with_exception(span(12, "GET /users/1", 30), "NotFound", msgs[1], "E\n    at a (/app/src/x.js:9:9)"));
    spans.push(with_exception(span(13, "GET /users/1", 30), "NotFound", msgs[0], "E\n    at b (/app/src/y.js:1:1)"));
    app.ingest(&producer, &request("svc", spans)).await;
    let mut counts: Vec<u64> = pain_ids(&app, &agent).await.into_iter().map(|p| p.1).collect();
    counts.sort();
    assert_eq!(counts, vec![1, 1, 2, 3], "three masked messages merge; a new type and new frames split");
}

// ---- wins and slips from merged changes -----------------------------------------

fn merged_step(seed: u64, pain: &str, ago_s: u64) -> opentelemetry_proto::tonic::trace::v1::Span {
    let mut sp = span(seed, "ratchet.step", ago_s);
    sp.attributes.push(kv("ratchet.step.outcome", s("merged")));
    sp.attributes.push(kv("ratchet.pain.id", s(pain)));
    sp.attributes.push(kv("ratchet.step.id", s(&format!("step-{seed}"))));
    sp
}

#[tokio::test]
async fn merged_changes_become_wins_or_regressions() {
    let app = App::new();
    let p = app.provision("shop").await;
    let (producer, agent) = (key(&p, "producer_key"), key(&p, "agent_key"));
    let h = 3600;
    // Two pains, both present 5h–4h ago; changes targeting both merged 4h ago.
    let mut spans = Vec::new();
    let mut seed = 0;
    let mut add = |spans: &mut Vec<_>, ty: &str, n: u64, ago: u64, healthy: u64| {
        for _ in 0..n {
            seed += 1;
            spans.push(with_exception(span(seed, "POST /pay", ago), ty, "failed", ""));
        }
        for _ in 0..healthy {
            seed += 1;
            spans.push(span(seed, "GET /", ago));
        }
    };
    add(&mut spans, "Held", 10, 4 * h + 1800, 0);
    add(&mut spans, "Slips", 10, 4 * h + 1800, 80);
    // After the change (4h–3h ago): both fell.
    add(&mut spans, "Held", 1, 3 * h + 1800, 0);
    add(&mut spans, "Slips", 1, 3 * h + 1800, 98);
    // Latest hour: Held stays down, Slips comes back.
    add(&mut spans, "Slips", 30, 1800, 70);
    app.ingest(&producer, &request("svc", spans)).await;
    let ids: std::collections::HashMap<String, String> = {
        let (_, d) = app.get("/v1/dashboard?window=24h", &agent).await;
        d["open_pains"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["fingerprint"]["components"]["exception.type"].as_str().unwrap().to_string(),
                    p["pain_id"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let (held, slips) = (&ids["Held"], &ids["Slips"]);
    app.ingest(&producer, &request("ratchet", vec![merged_step(9000, held, 4 * h), merged_step(9001, slips, 4 * h)]))
        .await;
    // A change merged just now is pending, and one for an unseen pain is unmeasured.
    app.ingest(
        &producer,
        &request("ratchet", vec![merged_step(9002, held, 60), merged_step(9003, "pn_0000000000000000", 2 * h)]),
    )
    .await;

    let (s, d) = app.get("/v1/dashboard?window=1h", &agent).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d["value"]["held_count"], 1, "{d}");
    assert_eq!(d["value"]["slipped_count"], 1, "{d}");
    assert_eq!(d["summary"]["pending_count"], 1);
    assert_eq!(d["summary"]["unmeasured_count"], 1);
    assert_eq!(d["summary"]["regression_rate"], 0.5);
    assert_eq!(d["value"]["momentum"], "mixed");
    let win = &d["wins"][0];
    assert_eq!(win["pain_id"], held.as_str());
    assert!(win["change_percent"].as_f64().unwrap() < 0.0);
    assert_eq!(win["step"], "step-9000");
    let reg = &d["regressions_detail"][0];
    assert_eq!(reg["pain_id"], slips.as_str());
    assert!(reg["change_percent"].as_f64().unwrap() > 0.0, "{reg}");
    // The same change reported twice counts once.
    app.ingest(&producer, &request("ratchet", vec![merged_step(9000, held, 4 * h)])).await;
    let (_, d2) = app.get("/v1/dashboard?window=1h", &agent).await;
    assert_eq!(d2["value"]["held_count"], 1);
}

// ---- documents ---------------------------------------------------------------------

#[tokio::test]
async fn documents_are_served() {
    let app = App::new();
    for (path, ct, needle) in [
        ("/agents.md", "text/markdown", "POST /v1/provision"),
        ("/llms.txt", "text/plain", "agents.md"),
        ("/quickstart.md", "text/markdown", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        ("/contact.json", "application/json", "production_tenant"),
        ("/schema/improvement-packet.json", "application/schema+json", "pain_id"),
        ("/openapi.json", "application/json", "3.1.0"),
        ("/dashboard", "text/html", "Lost your key?"),
        ("/", "application/json", "agents"),
        ("/healthz", "application/json", "ok"),
    ] {
        let (s, h, b) = app.send(get(path, None)).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert!(h["content-type"].to_str().unwrap().starts_with(ct), "{path}: {:?}", h["content-type"]);
        assert!(String::from_utf8_lossy(&b).contains(needle), "{path}");
    }
}

#[tokio::test]
async fn the_dashboard_page_shows_pains_wins_and_the_recovery_form() {
    let app = App::new();
    let p = app.provision("shop").await;
    app.ingest(&key(&p, "producer_key"), &request("shop-api", pains_batch(0))).await;
    let link = p["dashboard_url"].as_str().unwrap().trim_start_matches("http://127.0.0.1:7878").to_string();
    let (s, _, b) = app.send(get(&link, None)).await;
    assert_eq!(s, StatusCode::OK);
    let page = String::from_utf8(b).unwrap();
    for needle in ["Open pains", "TypeError", "Wins", "Regressions", "Lost your key?", "action=\"/v1/recover\""] {
        assert!(page.contains(needle), "{needle}");
    }
    let (s, _, _) = app.send(get(&format!("{link}x"), None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn openapi_lists_exactly_the_routes_of_the_router() {
    let app = App::new();
    let (_, doc) = app.json(get("/openapi.json", None)).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = std::collections::BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routed: std::collections::BTreeSet<_> =
        ratchet::serve::routes().into_iter().map(|r| (r.method.to_string(), r.path.to_string())).collect();
    assert_eq!(documented, routed);
    // And each routed (method, path) is really served (not the 404/405 fallbacks).
    for (method, path) in routed {
        let req = Request::builder().method(method.as_str()).uri(&path).body(Body::empty()).unwrap();
        let (s, v) = app.json(req).await;
        let fallback = v["code"] == "NOT_FOUND" || v["code"] == "METHOD_NOT_ALLOWED";
        assert!(!fallback, "{method} {path}: {s} {v}");
    }
}

// ---- the layering line ---------------------------------------------------------------

#[test]
fn axum_tokio_and_rusqlite_stay_in_serve_and_clap_stays_in_cli() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    for f in files {
        let rel = f.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(&f).unwrap();
        let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        if !rel.starts_with("serve/") {
            for name in ["axum::", "tokio::", "rusqlite::", "tower::"] {
                assert!(!code.contains(name), "{rel} names {name} outside src/serve/");
            }
        }
        if !rel.starts_with("cli/") {
            assert!(!code.contains("clap::"), "{rel} names clap outside src/cli/");
        }
    }
}

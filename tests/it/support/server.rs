//! Helpers shared by the serve tests: an in-process app for `oneshot`, OTLP
//! request builders, a tiny HTTP/1.1 client for real sockets, and a spawned
//! `ratchet serve` process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as AV};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span::Event};
use prost::Message;
use ratchet::serve::secret::Secret;
use ratchet::serve::store::{Store, Synchronous};
use ratchet::serve::{AppState, ServeConfig, router};
use serde_json::Value;
use tower::ServiceExt;

pub struct App {
    pub dir: tempfile::TempDir,
    pub state: AppState,
}

pub fn config(dir: &Path) -> ServeConfig {
    let mut c = ServeConfig::new("127.0.0.1:7878".parse().unwrap(), dir.join("loopkit.db"));
    c.mint_limit = 1_000;
    c
}

impl App {
    pub fn new() -> App {
        Self::with(|_| {})
    }

    pub fn with(tweak: impl FnOnce(&mut ServeConfig)) -> App {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        tweak(&mut c);
        let store = Store::open(&c.db, Synchronous::Normal).unwrap();
        let state = AppState::new(store, Secret::from_text("a".repeat(64)), c);
        App { dir, state }
    }

    /// The same database, opened again (a restart).
    pub fn reopen(self) -> App {
        let c = (*self.state.config).clone();
        drop(self.state);
        let store = Store::open(&c.db, Synchronous::Normal).unwrap();
        let state = AppState::new(store, Secret::from_text("a".repeat(64)), c);
        App { dir: self.dir, state }
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let res = router(self.state.clone()).oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap().to_vec();
        (status, headers, body)
    }

    pub async fn json(&self, req: Request<Body>) -> (StatusCode, Value) {
        let (s, _, b) = self.send(req).await;
        let v = serde_json::from_slice(&b).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&b).into_owned()));
        (s, v)
    }

    pub async fn provision(&self, name: &str) -> Value {
        let (s, v) = self.json(post_json("/v1/provision", None, &format!(r#"{{"project_name":"{name}"}}"#))).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    }

    pub async fn signup(&self) -> Value {
        let (s, v) = self.json(post_json("/v1/signup", None, "{}")).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    }

    pub async fn ingest(&self, key: &str, req: &ExportTraceServiceRequest) -> (StatusCode, Vec<u8>) {
        let (s, _, b) = self.send(post_proto(key, req.encode_to_vec())).await;
        (s, b)
    }

    pub async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.json(get(path, Some(key))).await
    }
}

pub fn get(path: &str, key: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(k) = key {
        b = b.header("authorization", format!("Bearer {k}"));
    }
    b.body(Body::empty()).unwrap()
}

pub fn post_json(path: &str, key: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::post(path).header("content-type", "application/json");
    if let Some(k) = key {
        b = b.header("authorization", format!("Bearer {k}"));
    }
    b.body(Body::from(body.to_string())).unwrap()
}

pub fn post_proto(key: &str, body: Vec<u8>) -> Request<Body> {
    Request::post("/v1/traces")
        .header("content-type", "application/x-protobuf")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::from(body))
        .unwrap()
}

pub fn key(v: &Value, which: &str) -> String {
    v[which].as_str().unwrap_or_else(|| panic!("no {which} in {v}")).to_string()
}

pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

pub fn kv(key: &str, v: AV) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
}

pub fn s(v: &str) -> AV {
    AV::StringValue(v.into())
}

/// A span with a unique id derived from `seed`, started `ago_s` seconds ago.
pub fn span(seed: u64, name: &str, ago_s: u64) -> Span {
    let mut trace_id = vec![0u8; 16];
    trace_id[..8].copy_from_slice(&(seed + 1).to_be_bytes());
    trace_id[8..].copy_from_slice(&0x5eed_u64.to_be_bytes());
    let start = now_ns() - ago_s * 1_000_000_000;
    Span {
        trace_id,
        span_id: (seed + 1).to_be_bytes().to_vec(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 5_000_000,
        ..Default::default()
    }
}

pub fn with_exception(mut sp: Span, ty: &str, msg: &str, stack: &str) -> Span {
    sp.events.push(Event {
        name: "exception".into(),
        time_unix_nano: sp.start_time_unix_nano,
        attributes: vec![
            kv("exception.type", s(ty)),
            kv("exception.message", s(msg)),
            kv("exception.stacktrace", s(stack)),
        ],
        ..Default::default()
    });
    sp.status = Some(Status { code: 2, message: msg.into() });
    sp
}

pub fn with_error(mut sp: Span, msg: &str) -> Span {
    sp.status = Some(Status { code: 2, message: msg.into() });
    sp
}

pub fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![kv("service.name", s(service))], ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

#[allow(unused_imports)]
pub use super::http::*;

/// A `ratchet serve` process on a free loopback port.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub db: PathBuf,
}

impl Server {
    pub fn start(db: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ratchet"))
            .args(["-q", "serve", "--addr", "127.0.0.1:0", "--print-addr", "--db"])
            .arg(db)
            .args(extra)
            .env("RATCHET_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ratchet serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr: SocketAddr = line.trim().parse().unwrap_or_else(|_| panic!("ratchet serve printed {line:?}"));
        Server { child, addr, db: db.to_path_buf() }
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

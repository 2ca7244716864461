//! `ratchet serve`: LoopKit (seed 000) hosted locally — the only module that
//! names axum, tokio and rusqlite.
//!
//! - [`router`] builds the HTTP surface from [`routes`], one file per
//!   resource group: [`projects`] (provision, signup, recover, upgrade),
//!   [`traces`] (OTLP ingest), [`telemetry`] (records, diagnose, dashboard,
//!   report), [`docs`] (the agent documents, OpenAPI, schema), [`page`] (the
//!   human dashboard), [`loop_page`] (the workspace's loop, for people),
//!   both with server-rendered SVG charts ([`chart`]);
//! - [`error::ApiError`] turns every failure into the actionable JSON shape;
//! - [`store::Store`] is the SQLite boundary; [`insight`] assembles
//!   dashboards and packets from it with the pure functions of
//!   [`crate::loopkit`];
//! - [`run`] owns the process: secret file, database, listener, request
//!   logs; [`conn`] serves connections under time and size bounds and shuts
//!   down within a bounded time on SIGINT/SIGTERM; [`body`] reads bodies
//!   under the same kind of bounds;
//! - [`headers`] adds the response headers every page and key-bearing
//!   answer needs (CSP, framing, referrer, caching) and CORS for browser
//!   exporters.
//!
//! Adding routes: push [`Route`]s onto [`routes`] and describe them in
//! [`docs::openapi`] (a test fails while the two disagree).
//!
//! Invariants: handlers never panic on input; every 401/403/409/429 carries
//! `nextAction`; rejected requests write nothing.

pub mod agents;
pub mod auth;
pub mod body;
pub mod chart;
pub mod conn;
pub mod docs;
pub mod error;
pub mod headers;
pub mod insight;
pub mod loop_page;
pub mod once;
pub mod openapi;
pub mod page;
pub mod projects;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod traces;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::routing::{MethodRouter, get, post};

use crate::error::Coded;
use crate::loopkit::normalise::SlowRules;
use crate::serve::error::ApiError;
use crate::serve::store::{Store, Synchronous};

/// Everything `ratchet serve` can be told.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub addr: SocketAddr,
    pub db: PathBuf,
    /// The base of URLs in responses; `http://<addr>` when unset.
    pub public_base: Option<String>,
    /// Largest request body, before and after decompression.
    pub body_limit: usize,
    pub synchronous: Synchronous,
    pub sandbox_quota: i64,
    pub sandbox_ttl: Duration,
    pub permanent_quota: i64,
    /// Public mints (signup and first provision) per client address per `mint_period`.
    pub mint_limit: usize,
    pub mint_period: Duration,
    /// Wrong recovery codes per project per `recover_period` (a bucket of its own).
    pub recover_limit: usize,
    pub recover_period: Duration,
    pub slow: SlowRules,
    /// SIGNUP_UPGRADE_SECRET; when unset, the server secret signs upgrade codes.
    pub upgrade_secret: Option<String>,
    /// Time bounds of connections (headers, stalled writes, shutdown).
    pub conn: conn::ConnLimits,
    /// Time and drain bounds of request bodies.
    pub body: body::BodyLimits,
    /// Origins allowed to call the API from a browser (CORS); `*` for any.
    pub cors_origins: Vec<String>,
    /// The workspace of the server: its loop takes remote candidates (the
    /// agents API) and `/loop` shows it (read-only).
    pub workspace: Option<crate::workspace::Workspace>,
    /// Serve `/loop` to clients off loopback too (it still needs its token).
    pub loop_remote: bool,
}

impl ServeConfig {
    pub const DEFAULT_ADDR: &'static str = "127.0.0.1:7878";

    pub fn new(addr: SocketAddr, db: PathBuf) -> ServeConfig {
        ServeConfig {
            addr,
            db,
            public_base: None,
            body_limit: 20 << 20,
            synchronous: Synchronous::Normal,
            sandbox_quota: 100_000,
            sandbox_ttl: Duration::from_secs(7 * 86_400),
            permanent_quota: 1_000_000_000,
            mint_limit: 20,
            mint_period: Duration::from_secs(3_600),
            recover_limit: 10,
            recover_period: Duration::from_secs(3_600),
            slow: SlowRules::default(),
            upgrade_secret: None,
            conn: conn::ConnLimits::default(),
            body: body::BodyLimits::default(),
            cors_origins: Vec::new(),
            workspace: None,
            loop_remote: false,
        }
    }

    pub fn base_url(&self) -> String {
        match &self.public_base {
            Some(b) => b.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.addr),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub secret: Arc<secret::Secret>,
    pub config: Arc<ServeConfig>,
    /// Public mints per client address.
    pub mint: Arc<auth::Limiter<Option<std::net::IpAddr>>>,
    /// Wrong recovery codes per project id (as sent).
    pub recovery: Arc<auth::Limiter<String>>,
    /// Results of form recoveries, shown once after the redirect.
    pub recovered: Arc<once::OneTime>,
    /// The agents API (seed 004), when the server runs in a workspace.
    pub agents: Option<Arc<agents::Agents>>,
}

impl AppState {
    /// Opens the database and the secret next to it.
    pub fn open(config: ServeConfig) -> Result<AppState, crate::error::Report> {
        if let Some(dir) = config.db.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                crate::error::Report::new("IO_ERROR", format!("cannot create {}: {e}", dir.display()))
                    .with_hint("pass a --db in a writable directory")
            })?;
        }
        let secret = secret::Secret::load_or_create(&secret::path_for(&config.db))
            .map_err(|e| crate::error::Report::from_coded(&e))?;
        let store = Store::open(&config.db, config.synchronous).map_err(|e| crate::error::Report::from_coded(&e))?;
        if let Some(r) = store.regrouped().filter(|r| r.records > 0) {
            tracing::info!(
                from = r.from.as_deref().unwrap_or("unrecorded"),
                to = r.to,
                records = r.records,
                moved = r.moved,
                pains = r.pains,
                changes = r.changes,
                "regrouped the stored records under the new fingerprint version"
            );
        }
        let agents = match &config.workspace {
            Some(ws) => {
                Some(Arc::new(agents::Agents::open(ws.clone()).map_err(|e| crate::error::Report::from_coded(&e))?))
            }
            None => None,
        };
        Ok(AppState { agents, ..AppState::new(store, secret, config) })
    }

    pub fn new(store: Store, secret: secret::Secret, config: ServeConfig) -> AppState {
        let mint = auth::Limiter::new(config.mint_limit, config.mint_period);
        let recovery = auth::Limiter::new(config.recover_limit, config.recover_period);
        AppState {
            store: Arc::new(store),
            secret: Arc::new(secret),
            config: Arc::new(config),
            mint: Arc::new(mint),
            recovery: Arc::new(recovery),
            recovered: Arc::new(once::OneTime::new(Duration::from_secs(600))),
            agents: None,
        }
    }

    /// The same state with the agents API of `agents`.
    pub fn with_agents(self, agents: agents::Agents) -> AppState {
        AppState { agents: Some(Arc::new(agents)), ..self }
    }
}

/// One route: method, path, handler. [`router`] is built from exactly this
/// list, and the OpenAPI test compares it with `/openapi.json`.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub handler: MethodRouter<AppState>,
}

fn r(method: Method, path: &'static str, handler: MethodRouter<AppState>) -> Route {
    Route { method, path, handler }
}

/// Every route of the server.
pub fn routes() -> Vec<Route> {
    let mut routes = vec![
        r(Method::POST, "/v1/provision", post(projects::provision)),
        r(Method::POST, "/v1/signup", post(projects::signup)),
        r(Method::POST, "/v1/recover", post(projects::recover)),
        r(Method::POST, "/v1/signup/upgrade", post(projects::upgrade)),
        r(Method::POST, "/v1/traces", post(traces::ingest)),
        r(Method::GET, "/v1/telemetry", get(telemetry::records)),
        r(Method::POST, "/v1/runs/diagnose", post(telemetry::diagnose)),
        r(Method::GET, "/v1/dashboard", get(telemetry::dashboard)),
        r(Method::GET, "/v1/changes", get(telemetry::changes)),
        r(Method::GET, "/v1/reports/latest.md", get(telemetry::report)),
        r(Method::GET, "/agents.md", get(docs::agents_md)),
        r(Method::GET, "/llms.txt", get(docs::llms_txt)),
        r(Method::GET, "/quickstart.md", get(docs::quickstart_md)),
        r(Method::GET, "/openapi.json", get(docs::openapi_json)),
        r(Method::GET, "/openapi.yaml", get(docs::openapi_yaml)),
        r(Method::GET, "/schema/improvement-packet.json", get(docs::packet_schema)),
        r(Method::GET, "/contact.json", get(docs::contact_json)),
        r(Method::GET, "/dashboard", get(page::dashboard)),
        r(Method::GET, "/loop", get(loop_page::loop_page)),
        r(Method::GET, "/recovered", get(page::recovered_page)),
        r(Method::GET, "/favicon.ico", get(docs::favicon)),
        r(Method::GET, "/favicon.svg", get(docs::favicon)),
        r(Method::GET, "/", get(docs::index)),
        r(Method::GET, "/healthz", get(docs::healthz)),
    ];
    // The agents API (seed 004): every route echoes x-request-id.
    let rid = || axum::middleware::from_fn(agents::with_request_id);
    use agents::{docs as adocs, reads, writes};
    let agents_routes = vec![
        r(Method::GET, "/.well-known/agent-bootstrap.json", get(adocs::bootstrap)),
        r(Method::GET, "/v1/bootstrap", get(adocs::bootstrap)),
        r(Method::GET, "/agents/skill.md", get(adocs::skill_md)),
        r(Method::GET, "/auth.md", get(adocs::auth_md)),
        r(Method::GET, "/.well-known/llms.txt", get(adocs::llms_txt)),
        r(Method::POST, "/v1/agents/join", post(writes::join)),
        r(Method::POST, "/v1/agents/verify", post(writes::verify)),
        r(Method::POST, "/v1/candidates", post(writes::candidates)),
        r(Method::POST, "/v1/agents/attestations", post(writes::attestations)),
        r(Method::POST, "/v1/agents/objections", post(writes::objections)),
        r(Method::POST, "/v1/stories/{id}/revision-proposals", post(writes::revision_proposals)),
        r(Method::POST, "/v1/stories/{id}/revision-proposals/{proposalId}/votes", post(writes::votes)),
        r(Method::POST, "/v1/publish/{candidateHash}/compute", post(writes::publish_compute)),
        r(Method::GET, "/v1/candidates/{hash}/status", get(reads::candidate_status)),
        r(Method::GET, "/v1/candidates/{hash}/evidence", get(reads::candidate_evidence)),
        r(Method::GET, "/v1/stories/{id}/machine-room", get(reads::machine_room)),
        r(Method::GET, "/v1/assistant/orientation", get(reads::orientation)),
        r(Method::GET, "/v1/stories/{id}/assistant-orientation", get(reads::story_orientation)),
    ];
    routes.extend(agents_routes.into_iter().map(|route| Route { handler: route.handler.layer(rid()), ..route }));
    routes
}

/// The HTTP surface over `state`.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for route in routes() {
        router = router.route(route.path, route.handler);
    }
    let cors = headers::cors(&state.config.cors_origins);
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // The body limit is enforced by each handler (after decompression too).
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(headers::security))
        .layer(cors)
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("no route {}", uri.path()),
        "read /openapi.json for the routes of this server",
    )
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("{method} is not allowed on {}", uri.path()),
        "read /openapi.json for the methods of this route (OTLP ingest is POST /v1/traces)",
    )
}

/// Runs blocking store work off the async workers.
pub async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Into::into),
        Err(e) => Err(ApiError::internal(format!("a worker failed: {e}"))),
    }
}

/// Seconds since the epoch, from ratchet's one clock.
pub fn now_s() -> i64 {
    crate::clock::now().timestamp()
}

pub fn now_ns() -> i64 {
    crate::clock::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// An error starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Setup(crate::error::Report),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

impl Coded for ServeError {
    fn code(&self) -> &'static str {
        match self {
            ServeError::Setup(r) => r.code,
            ServeError::Bind { .. } => "ADDR_IN_USE",
            ServeError::Io(_) => "IO_ERROR",
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            ServeError::Setup(r) => r.hint().map(str::to_string),
            ServeError::Bind { .. } => {
                Some("stop the other server, or pass another --addr (port 0 picks a free one)".into())
            }
            ServeError::Io(_) => Some("read the log above and restart ratchet serve".into()),
        }
    }
}

/// Runs the server until SIGINT or SIGTERM, then lets requests in flight
/// finish within the shutdown grace ([`conn`]). `on_ready` receives the
/// bound address (useful with port 0) and, when the server runs in a
/// workspace, the link of its loop page (with its token). `colour`: whether
/// the log on stderr may carry colour codes (the command line decides: a
/// person at a terminal, no `NO_COLOR`).
pub fn run(
    config: ServeConfig,
    colour: bool,
    on_ready: impl FnOnce(SocketAddr, Option<String>),
) -> Result<(), ServeError> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RATCHET_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour)
        .try_init();
    let state = AppState::open(config.clone()).map_err(ServeError::Setup)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).max_blocking_threads(8).enable_all().build()?;
    let grace = config.conn.shutdown_grace;
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|source| ServeError::Bind { addr: config.addr, source })?;
        let addr = listener.local_addr()?;
        let mut config = config;
        config.addr = addr;
        let limits = config.conn;
        let state = AppState { config: Arc::new(config), ..state };
        tracing::info!(%addr, db = %state.store.path().display(), "ratchet serve listening");
        let loop_link =
            state.config.workspace.as_ref().map(|ws| loop_page::link(&state.config.base_url(), state.secret.key(), ws));
        on_ready(addr, loop_link);
        let app = router(state).layer(axum::middleware::from_fn(log_request));
        if !conn::serve(listener, app, limits, shutdown_signal()).await {
            tracing::warn!("requests still in flight after the shutdown grace were dropped");
        }
        Ok(())
    });
    // Blocking work still running (a store write) gets the same grace, no more.
    runtime.shutdown_timeout(grace);
    tracing::info!("ratchet serve stopped");
    result
}

async fn log_request(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    tracing::info!(%method, path, status = res.status().as_u16(), ms = started.elapsed().as_secs_f64() * 1e3, "request");
    res
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

//! `ratchet serve`: run LoopKit locally (see `crate::serve`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{CommandError, CommandResult, Env};
use crate::error::Exit;
use crate::serve::ServeConfig;
use crate::serve::store::Synchronous;

/// Run the LoopKit telemetry service locally: OTLP/HTTP ingest, pains, dashboard.
///
/// Data lives in .ratchet/loopkit.db of the current workspace (or --db
/// anywhere), next to a server secret (loopkit.secret, mode 0600). Point an
/// OpenTelemetry SDK at it with
/// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:7878/v1/traces and
/// OTEL_EXPORTER_OTLP_TRACES_HEADERS=authorization=Bearer%20<producer_key>.
/// Stops on Ctrl-C or SIGTERM after finishing requests in flight (within
/// --shutdown-grace seconds). Browser exporters need --cors-origin.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, default_value = ServeConfig::DEFAULT_ADDR, value_name = "ADDR")]
    addr: SocketAddr,
    /// SQLite database file (default: <workspace>/.ratchet/loopkit.db).
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Base of the URLs the server hands out (default: http://<addr>).
    #[arg(long, value_name = "URL")]
    public_base: Option<String>,
    /// Largest request body in MiB, before and after decompression.
    #[arg(long, default_value_t = 20, value_name = "MIB")]
    body_limit_mib: usize,
    /// fsync every commit ("full", durable against power loss) or not ("normal", durable against a crash of the server).
    #[arg(long, default_value = "normal", value_parser = ["normal", "full"])]
    synchronous: String,
    /// Span quota of a sandbox (POST /v1/signup).
    #[arg(long, default_value_t = 100_000)]
    sandbox_quota: i64,
    /// Days until a sandbox expires.
    #[arg(long, default_value_t = 7)]
    sandbox_days: u64,
    /// Span quota of a permanent project.
    #[arg(long, default_value_t = 1_000_000_000)]
    permanent_quota: i64,
    /// Public mints (signup, first provision) per client address per hour.
    #[arg(long, default_value_t = 20)]
    mint_per_hour: usize,
    /// Wrong recovery codes per project per hour (a bucket of its own; a right code always works).
    #[arg(long, default_value_t = 10)]
    recover_per_hour: usize,
    /// Seconds a client has to send a request's headers (also the keep-alive idle time).
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    header_timeout: u64,
    /// Seconds a request body may go without data before the request is dropped (408).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    body_timeout: u64,
    /// Seconds requests in flight get to finish after SIGTERM or Ctrl-C.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    shutdown_grace: u64,
    /// An origin allowed to call the API from a browser, e.g. http://localhost:5173 (repeatable; '*' for any).
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origin: Vec<String>,
    /// Spans longer than this are `slow` (unless a per-operation threshold says otherwise).
    #[arg(long, default_value_t = 1_000, value_name = "MS")]
    slow_ms: u64,
    /// A per-operation slow threshold, OPERATION=MS (repeatable), e.g. 'GET /search=250'.
    #[arg(long = "slow", value_name = "OPERATION=MS")]
    slow: Vec<String>,
    /// Print the bound address on stdout once listening (for scripts using port 0).
    #[arg(long)]
    print_addr: bool,
    /// Serve the loop page (/loop) to clients off this machine too; it still needs its token.
    #[arg(long)]
    loop_remote: bool,
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    let workspace = env.workspace().ok();
    let db = match args.db {
        Some(db) => env.cwd.join(db),
        None => match env.workspace() {
            Ok(ws) => ws.state_dir().join("loopkit.db"),
            Err(e) => {
                return Err(CommandError::new(
                    "SERVE_NO_DATABASE",
                    format!("no --db given and no workspace here: {}", e.0.message),
                    "run inside a ratchet workspace (ratchet init), or pass --db PATH",
                ));
            }
        },
    };
    if args.sandbox_days == 0 {
        return Err(CommandError::new(
            "BAD_SANDBOX_DAYS",
            "--sandbox-days 0 would mint sandboxes that are expired at birth",
            "pass --sandbox-days 1 or more (the default is 7)",
        ));
    }
    for (flag, value) in [
        ("--header-timeout", args.header_timeout),
        ("--body-timeout", args.body_timeout),
        ("--shutdown-grace", args.shutdown_grace),
    ] {
        if value == 0 {
            return Err(CommandError::new(
                "BAD_TIMEOUT",
                format!("{flag} 0 would drop every request"),
                format!("pass {flag} 1 or more seconds"),
            ));
        }
    }
    let mut cors_origins = Vec::new();
    for o in &args.cors_origin {
        match crate::serve::headers::check_origin(o) {
            Ok(o) => cors_origins.push(o),
            Err(why) => {
                return Err(CommandError::new(
                    "BAD_CORS_ORIGIN",
                    why,
                    "pass an origin such as --cors-origin http://localhost:5173 (scheme, host and port), or '*'",
                ));
            }
        }
    }
    let mut config = ServeConfig::new(args.addr, db);
    config.workspace = workspace;
    config.loop_remote = args.loop_remote;
    config.cors_origins = cors_origins;
    config.recover_limit = args.recover_per_hour.max(1);
    config.conn.header = Duration::from_secs(args.header_timeout);
    config.conn.shutdown_grace = Duration::from_secs(args.shutdown_grace);
    config.body.idle = Duration::from_secs(args.body_timeout);
    config.public_base = args.public_base;
    config.body_limit = args.body_limit_mib.max(1) << 20;
    config.synchronous = if args.synchronous == "full" { Synchronous::Full } else { Synchronous::Normal };
    config.sandbox_quota = args.sandbox_quota;
    config.sandbox_ttl = Duration::from_secs(args.sandbox_days * 86_400);
    config.permanent_quota = args.permanent_quota;
    config.mint_limit = args.mint_per_hour;
    config.slow.default_ms = args.slow_ms;
    for s in &args.slow {
        let parsed = s.rsplit_once('=').and_then(|(op, ms)| Some((op.to_string(), ms.trim().parse::<u64>().ok()?)));
        let Some((op, ms)) = parsed else {
            return Err(CommandError::new(
                "BAD_SLOW_RULE",
                format!("--slow {s:?} is not OPERATION=MS"),
                "write it as --slow 'GET /search=250'",
            ));
        };
        config.slow.per_operation.insert(op, ms);
    }
    config.upgrade_secret = std::env::var("SIGNUP_UPGRADE_SECRET").ok().filter(|s| !s.is_empty());
    // The agents API takes candidates into this workspace's loop.
    config.workspace = env.workspace().ok();
    env.ui.note(format!("database: {}", config.db.display()));
    let print_addr = args.print_addr;
    // Colour only for a person at a terminal: never into a file, a pipe or journald.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    crate::serve::run(config, colour, |addr, loop_link| {
        if print_addr {
            env.ui.data(addr.to_string());
        }
        env.ui.note(format!("listening on http://{addr} (Ctrl-C to stop)"));
        if let Some(link) = loop_link {
            env.ui.note(format!("the loop of this workspace: {link}"));
        }
    })?;
    Ok(Exit::Ok)
}

//! The loop's view of telemetry: the top open pain from LoopKit, as the
//! focus of Pick (DESIGN §3). When `[loopkit]` is not configured there is
//! nothing to read; when it is configured but unreachable the step notes
//! `telemetry_unavailable` and goes on.

use std::net::ToSocketAddrs;
use std::time::Duration;

use crate::context::Focus;
use crate::rails::Rails;

/// The top open pain, `None` without `[loopkit]`, or why it could not be read.
pub fn top_pain(rails: &Rails) -> Result<Option<Focus>, String> {
    let Some(lk) = &rails.loopkit else { return Ok(None) };
    let rest = lk.url.split_once("://").map(|(_, r)| r).unwrap_or(&lk.url);
    let authority = rest.split('/').next().unwrap_or("");
    let addr = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
    let reachable = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_millis(300)).is_ok());
    if !reachable {
        return Err(format!("cannot reach {}", lk.url));
    }
    Err(format!("{} is reachable, but reading pains needs the agent key in ${}", lk.url, lk.agent_key_env))
}

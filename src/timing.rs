//! Where a command's time goes: with `RATCHET_TIMINGS` set, each mark
//! prints to stderr the milliseconds since the previous one, and what just
//! finished. Costs one load when unset.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

static ENABLED: OnceLock<bool> = OnceLock::new();
static LAST: Mutex<Option<Instant>> = Mutex::new(None);

/// Marks the end of `what`.
pub fn mark(what: &str) {
    if !*ENABLED.get_or_init(|| std::env::var_os("RATCHET_TIMINGS").is_some_and(|v| !v.is_empty() && v != "0")) {
        return;
    }
    let now = Instant::now();
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    match *last {
        Some(prev) => eprintln!("ratchet timings: {:>7.2} ms  {what}", (now - prev).as_secs_f64() * 1000.0),
        None => eprintln!("ratchet timings:   start     {what}"),
    }
    *last = Some(now);
}

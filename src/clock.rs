//! The one place ratchet reads the time.
//!
//! `RATCHET_NOW` (an RFC 3339 timestamp) pins the clock, so that runs and
//! tests are reproducible; without it the system clock is used.

use chrono::{DateTime, SecondsFormat, Utc};

pub const NOW_ENV: &str = "RATCHET_NOW";

pub fn now() -> DateTime<Utc> {
    #[cfg(test)]
    if let Some(t) = PINNED.get() {
        return t;
    }
    if let Ok(pinned) = std::env::var(NOW_ENV) {
        if let Ok(t) = DateTime::parse_from_rfc3339(&pinned) {
            return t.with_timezone(&Utc);
        }
    }
    Utc::now()
}

#[cfg(test)]
thread_local! {
    /// The clock of one library test (its own thread), set by [`pin`]:
    /// `RATCHET_NOW` is the process's, shared by every test at once.
    static PINNED: std::cell::Cell<Option<DateTime<Utc>>> = const { std::cell::Cell::new(None) };
}

/// Pins the clock of the calling thread to `t` (library tests only).
#[cfg(test)]
pub(crate) fn pin(t: DateTime<Utc>) {
    PINNED.set(Some(t));
}

/// RFC 3339 in UTC with whole seconds: `2026-11-21T19:00:00Z`.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

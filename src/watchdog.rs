//! The watchdog (DESIGN §8, seed 003 principle 13 "Liveness Guarantee"):
//! the loop cannot stall silently.
//!
//! With no merged step for `[watchdog] max_steps_without_merge` steps or
//! `max_hours_without_merge` hours, the watchdog raises an alarm: the next
//! pick forces exploration and prefers `human`, `heartbeat` exits 3 so cron
//! mails its owner, and `ratchet status` says why. Like everything the loop
//! knows of its past, the reading is derived from the log alone.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::history::History;
use crate::rails::Watchdog;

/// The watchdog's reading.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WatchdogState {
    pub steps_since_merge: u32,
    pub hours_since_merge: Option<f64>,
    pub last_merge: Option<String>,
    pub alarm: bool,
    pub reason: Option<String>,
}

/// Reads the watchdog of `history` at `now`.
pub fn reading(history: &History, w: &Watchdog, now: DateTime<Utc>) -> WatchdogState {
    let last_merge = history.last_merge();
    let since = u32::try_from(history.steps_since_merge()).unwrap_or(u32::MAX);
    let reference = last_merge.map(|(_, at)| at).or(history.first_ts());
    let hours = reference.map(|t| crate::score::round((now - t).num_seconds() as f64 / 3600.0));
    let mut reason = None;
    if since >= w.max_steps_without_merge {
        reason = Some(format!("{since} steps without a merge (limit {})", w.max_steps_without_merge));
    } else if let Some(h) = hours.filter(|h| *h >= w.max_hours_without_merge) {
        reason = Some(format!("{h:.1} hours without a merge (limit {})", w.max_hours_without_merge));
    }
    WatchdogState {
        steps_since_merge: since,
        hours_since_merge: hours,
        last_merge: last_merge.map(|(id, _)| id.to_string()),
        alarm: reason.is_some(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::tests::{Log, t};
    use crate::record::Outcome;

    #[test]
    fn the_watchdog_counts_steps_and_hours_since_the_last_merge() {
        let w = Watchdog { max_steps_without_merge: 3, max_hours_without_merge: 72.0 };
        let mut log = Log::default();
        log.step("s1", Log::body("self", Outcome::Merged, 0.9, Some("c")), 0);
        log.step("s2", Log::body("self", Outcome::Failed, 0.3, None), 1);
        log.step("s3", Log::body("self", Outcome::Rejected, 0.3, None), 2);
        let h = log.history();
        let ok = reading(&h, &w, t(3));
        assert_eq!((ok.steps_since_merge, ok.alarm), (2, false));
        assert!(reading(&h, &w, t(80)).alarm, "72 hours passed");
        log.step("s4", Log::body("self", Outcome::Noop, 0.0, None), 3);
        let alarm = reading(&log.history(), &w, t(4));
        assert_eq!(alarm.reason.as_deref(), Some("3 steps without a merge (limit 3)"));
    }
}

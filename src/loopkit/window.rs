//! Windows of telemetry, rates, and how a change is judged.
//!
//! A window is a duration ending now (`30m`, `24h`, `7d`). The dashboard
//! compares the current window with the one just before it. A pain's rate is
//! its count per 1,000 spans of the same window; `change_percent` is the
//! change of that rate, and a pain absent from the previous window is `new`
//! rather than an infinite percentage.
//!
//! A change (a merged step that targeted pain P at time T) is measured over
//! three spans of time of one window's length `w`: *before* = [T−w, T),
//! *after* = [T, T+w), and *latest* = the current window [now−w, now) once it
//! lies wholly after the *after* window (else *latest* is *after*). It is
//! `pending` until T+w has passed, `unmeasured` if P had no rate before T,
//! `held` (a win) if the rate fell after T and the latest rate is still
//! below the rate before — each by at least [`MIN_FALL`] of it, so that the
//! noise of a window is no win — and `slipped` otherwise (it did not fall,
//! or it came back). `regression_rate = slipped / (held + slipped)`, `None` when
//! nothing was measured.

use serde::Serialize;

pub const NS_PER_SEC: i64 = 1_000_000_000;

/// A duration ending now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub label: String,
    pub ns: i64,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("window {0:?} is not a duration such as 30m, 24h or 7d (between 1m and 365d)")]
pub struct BadWindow(pub String);

impl crate::error::Coded for BadWindow {
    fn code(&self) -> &'static str {
        "BAD_WINDOW"
    }
    fn hint(&self) -> Option<String> {
        Some("pass window as a number and a unit: s, m, h or d (for example window=24h)".into())
    }
}

impl Window {
    pub const DEFAULT: &'static str = "24h";

    /// `<number><unit>`: a number without sign or leading zeros, a unit of
    /// `s`, `m`, `h` or `d`, nothing around them; from 1 minute to 365 days.
    /// (`/openapi.json` states this grammar as a pattern, tested to agree.)
    pub fn parse(s: &str) -> Result<Window, BadWindow> {
        let bad = || BadWindow(s.chars().take(40).collect());
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (num, unit) = s.split_at(split);
        if num.starts_with('0') {
            return Err(bad());
        }
        let n: i64 = num.parse().map_err(|_| bad())?;
        let secs = match unit {
            "s" => n,
            "m" => n.checked_mul(60).ok_or_else(bad)?,
            "h" => n.checked_mul(3_600).ok_or_else(bad)?,
            "d" => n.checked_mul(86_400).ok_or_else(bad)?,
            _ => return Err(bad()),
        };
        if !(60..=365 * 86_400).contains(&secs) {
            return Err(bad());
        }
        Ok(Window { label: format!("{n}{unit}"), ns: secs * NS_PER_SEC })
    }

    pub fn default_window() -> Window {
        Window { label: Self::DEFAULT.into(), ns: 24 * 3_600 * NS_PER_SEC }
    }

    /// [start, end) of the current window.
    pub fn current(&self, now_ns: i64) -> (i64, i64) {
        (now_ns.saturating_sub(self.ns), now_ns)
    }

    /// [start, end) of the window before the current one.
    pub fn previous(&self, now_ns: i64) -> (i64, i64) {
        (now_ns.saturating_sub(2 * self.ns), now_ns.saturating_sub(self.ns))
    }
}

/// Count per 1,000 spans.
pub fn rate_per_1k(count: u64, spans: u64) -> f64 {
    if spans == 0 { 0.0 } else { count as f64 * 1000.0 / spans as f64 }
}

/// The change of a rate between two windows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ChangePercent {
    /// Absent from the earlier window.
    New,
    Percent(f64),
}

impl ChangePercent {
    pub fn between(previous_rate: f64, current_rate: f64) -> ChangePercent {
        if previous_rate <= 0.0 {
            ChangePercent::New
        } else {
            ChangePercent::Percent(round1((current_rate - previous_rate) / previous_rate * 100.0))
        }
    }
}

impl Serialize for ChangePercent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ChangePercent::New => s.serialize_str("new"),
            ChangePercent::Percent(p) => s.serialize_f64(*p),
        }
    }
}

pub fn round1(x: f64) -> f64 {
    if x.is_finite() { (x * 10.0).round() / 10.0 } else { 0.0 }
}

pub fn round3(x: f64) -> f64 {
    if x.is_finite() { (x * 1000.0).round() / 1000.0 } else { 0.0 }
}

/// How a change turned out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pending,
    Unmeasured,
    Held,
    Slipped,
}

/// The three windows of a change made at `at_ns`.
pub struct ChangeWindows {
    pub before: (i64, i64),
    pub after: (i64, i64),
    /// `None` while the latest window is still the *after* window.
    pub latest: Option<(i64, i64)>,
    pub complete: bool,
}

pub fn change_windows(at_ns: i64, window: &Window, now_ns: i64) -> ChangeWindows {
    let after_end = at_ns.saturating_add(window.ns);
    let latest_start = now_ns.saturating_sub(window.ns);
    ChangeWindows {
        before: (at_ns.saturating_sub(window.ns), at_ns),
        after: (at_ns, after_end),
        latest: (latest_start >= after_end).then_some((latest_start, now_ns)),
        complete: now_ns >= after_end,
    }
}

/// How much a pain's rate must fall to count as fallen: a quarter of its
/// rate before the change. A smaller move is within the noise of a window
/// (one more span in the denominator moves a rate), and is no win.
pub const MIN_FALL: f64 = 0.25;

/// Judges a change from its rates (per 1,000 spans): held when the rate
/// after it and the latest rate are both at least [`MIN_FALL`] below the
/// rate before it.
pub fn judge(complete: bool, before: f64, after: f64, latest: f64) -> Outcome {
    let fallen = |rate: f64| rate <= before * (1.0 - MIN_FALL);
    if !complete {
        Outcome::Pending
    } else if before <= 0.0 {
        Outcome::Unmeasured
    } else if fallen(after) && fallen(latest) {
        Outcome::Held
    } else {
        Outcome::Slipped
    }
}

/// `slipped / (held + slipped)`, or `None` when nothing was measured.
pub fn regression_rate(held: u64, slipped: u64) -> Option<f64> {
    let n = held + slipped;
    (n > 0).then(|| round3(slipped as f64 / n as f64))
}

/// The plain-words momentum of the program.
pub fn momentum(held: u64, slipped: u64) -> &'static str {
    match (held, slipped) {
        (0, 0) => "unmeasured",
        (h, s) if h > s => "improving",
        (h, s) if s > h => "slipping",
        _ => "mixed",
    }
}

/// One sentence saying where the program stands.
pub fn headline(held: u64, slipped: u64, open: u64, top: Option<(&str, u64)>, window: &str) -> String {
    let measured = held + slipped;
    let mut s = if measured == 0 {
        "No merged change has been measured yet".to_string()
    } else {
        format!(
            "{held} of {measured} measured change{} held ({} slipped back)",
            if measured == 1 { "" } else { "s" },
            slipped
        )
    };
    match (open, top) {
        (0, _) | (_, None) => s.push_str(&format!("; no open pains in the last {window}.")),
        (n, Some((title, count))) => s.push_str(&format!(
            "; {n} open pain{} in the last {window}, the largest: {title} ({count} span{}).",
            if n == 1 { "" } else { "s" },
            if count == 1 { "" } else { "s" }
        )),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse() {
        assert_eq!(Window::parse("24h").unwrap().ns, 86_400 * NS_PER_SEC);
        assert_eq!(Window::parse("7d").unwrap().label, "7d");
        for bad in ["", "h", "10", "5s", "1y", "-1h", "99999999999999999999d", "400d"] {
            assert!(Window::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn change_percent_is_new_when_absent_before() {
        assert_eq!(ChangePercent::between(0.0, 3.0), ChangePercent::New);
        assert_eq!(ChangePercent::between(2.0, 1.0), ChangePercent::Percent(-50.0));
        assert_eq!(serde_json::to_value(ChangePercent::New).unwrap(), "new");
        assert_eq!(serde_json::to_value(ChangePercent::Percent(12.5)).unwrap(), 12.5);
    }

    #[test]
    fn changes_are_judged() {
        assert_eq!(judge(false, 5.0, 0.0, 0.0), Outcome::Pending);
        assert_eq!(judge(true, 0.0, 0.0, 0.0), Outcome::Unmeasured);
        assert_eq!(judge(true, 5.0, 1.0, 1.0), Outcome::Held);
        assert_eq!(judge(true, 5.0, 1.0, 6.0), Outcome::Slipped, "came back");
        assert_eq!(judge(true, 5.0, 5.0, 1.0), Outcome::Slipped, "did not fall");
        assert_eq!(judge(true, 500.0, 487.8, 487.8), Outcome::Slipped, "a move within the noise is no fall");
        assert_eq!(judge(true, 4.0, 3.0, 3.0), Outcome::Held, "a quarter is a fall");
        assert_eq!(regression_rate(0, 0), None);
        assert_eq!(regression_rate(3, 1), Some(0.25));
        assert_eq!(momentum(3, 1), "improving");
        let w = Window::parse("1h").unwrap();
        let h = 3_600 * NS_PER_SEC;
        let cw = change_windows(10 * h, &w, 10 * h + h / 2);
        assert!(!cw.complete && cw.latest.is_none());
        let cw = change_windows(10 * h, &w, 13 * h);
        assert!(cw.complete);
        assert_eq!(cw.latest, Some((12 * h, 13 * h)));
    }
}

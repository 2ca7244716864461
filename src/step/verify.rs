//! Verify: seed 000's fifth step ("Verify the next telemetry window"),
//! done by the loop itself (DESIGN §11).
//!
//! A merged step whose focus was `pain:<id>` changed something to make that
//! pain go away. Once the window after the merge has closed (the merge's
//! time plus `[loopkit] window`), LoopKit has the pain's rate before the
//! merge, in the window after it, and in the latest window; ratchet reads
//! them (`GET /v1/changes`), judges them itself with the rule the server's
//! dashboard uses ([`crate::loopkit::window::judge`]), and appends an
//! `amend` entry (reason `verified`, [`Verdict`] and [`Rates`]):
//!
//! | verdict | when | how the step counts |
//! |---|---|---|
//! | `win` | the rate fell after the merge and the latest rate is still below the rate before | unchanged |
//! | `slipped` | it did not fall, or it came back | like a revert: utility capped at `revert_cap`, one tier down, against the provider in selection |
//! | `unmeasured` | no rate before the merge, or the server never heard of the merge | unchanged |
//!
//! The merge is found on the server by the span that reported it (its span
//! id is derived from the log, [`crate::loopkit::outbox::span_id`]), never
//! by the step id alone, which another clone's log may share.
//!
//! When it runs: at the start of `step` and `heartbeat`, like the search
//! for outside reverts. It costs nothing when nothing is due: which steps
//! are due is decided from the history alone ([`due`]), and the server is
//! asked only when one is. A step verifies once; a reverted step is not
//! verified (the revert already counts). A merge the server still has no
//! record of [`GRACE`] windows after its window closed is `unmeasured`.

use chrono::{DateTime, Utc};

use crate::history::History;
use crate::loopkit::client::{Endpoint, TelemetryError};
use crate::loopkit::window::{self, Window};
use crate::record::{AmendBody, AmendReason, Detector, Rates, Verdict};

use super::{Session, StepError};

/// Windows after the close a merge may stay unknown to the server before
/// it is recorded `unmeasured`.
pub const GRACE: i32 = 2;

/// A merged step whose window has closed and that has no verdict yet.
#[derive(Clone, Debug, PartialEq)]
pub struct Due {
    pub id: String,
    pub pain: String,
    /// The seq of the step's merged entry (its span's id derives from it).
    pub seq: u64,
    pub merged: DateTime<Utc>,
    pub closes: DateTime<Utc>,
}

fn window_duration(w: &Window) -> chrono::Duration {
    chrono::Duration::nanoseconds(w.ns)
}

/// The merged steps that targeted a pain, whose window after the merge has
/// closed by `now`, and that are neither verified nor reverted.
pub fn due(history: &History, w: &Window, now: DateTime<Utc>) -> Vec<Due> {
    history
        .merges()
        .into_iter()
        .filter(|s| !s.verified)
        .filter_map(|s| {
            let pain = s.pain().filter(|p| crate::loopkit::normalise::is_pain_id(p))?;
            let closes = s.finished + window_duration(w);
            (closes <= now).then(|| Due {
                id: s.id.to_string(),
                pain: pain.to_string(),
                seq: s.last_seq,
                merged: s.finished,
                closes,
            })
        })
        .collect()
}

/// What one verification found.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    pub id: String,
    pub verdict: Verdict,
    pub rates: Option<Rates>,
}

/// A change as the server measured it.
struct Measured {
    complete: bool,
    rates: Rates,
}

/// The server's measurement of the change reported by `span`, from a
/// `GET /v1/changes` answer. Rates must be finite and non-negative.
fn measured(answer: &serde_json::Value, pain: &str, span: &str) -> Result<Option<Measured>, String> {
    let Some(changes) = answer["changes"].as_array() else { return Err("no changes[] in the answer".into()) };
    let Some(c) = changes.iter().find(|c| c["pain_id"] == pain && c["span_id"] == span) else { return Ok(None) };
    let rate = |k: &str| {
        c[k].as_f64()
            .filter(|r| r.is_finite() && *r >= 0.0 && *r <= 1_000.0)
            .ok_or_else(|| format!("{k} is not a rate"))
    };
    let rates = Rates {
        before: rate("before_rate_per_1k")?,
        after: rate("after_rate_per_1k")?,
        latest: rate("latest_rate_per_1k")?,
    };
    Ok(Some(Measured { complete: c["outcome"] != "pending", rates }))
}

/// Verifies every due merge (see the module doc). Telemetry that cannot be
/// read leaves them due; only the log's own errors are errors here.
pub fn verify(s: &mut Session, ep: &Endpoint) -> Result<(Vec<Verified>, Option<TelemetryError>), StepError> {
    let history = s.history()?;
    let now = crate::clock::now();
    let due = due(&history, &ep.window, now);
    if due.is_empty() {
        return Ok((Vec::new(), None));
    }
    let Some(genesis) = s.journal.genesis()? else { return Ok((Vec::new(), None)) };
    let answer = match ep.get_json(&format!("/v1/changes?window={}", ep.window.label)) {
        Ok(a) => a,
        Err(e) => return Ok((Vec::new(), Some(e))),
    };
    let mut out = Vec::new();
    for d in due {
        let span = crate::loopkit::keys::hex(&crate::loopkit::outbox::span_id(&genesis, &d.id, d.seq));
        let (verdict, rates, detail) = match measured(&answer, &d.pain, &span) {
            Err(why) => {
                let e = TelemetryError::BadResponse { url: ep.url.clone(), reason: why };
                return Ok((out, Some(e)));
            }
            Ok(Some(m)) if !m.complete => continue,
            Ok(Some(m)) => {
                let judged = window::judge(true, m.rates.before, m.rates.after, m.rates.latest);
                let verdict = match judged {
                    window::Outcome::Held => Verdict::Win,
                    window::Outcome::Slipped => Verdict::Slipped,
                    _ => Verdict::Unmeasured,
                };
                (verdict, Some(m.rates), None)
            }
            Ok(None) if now >= d.closes + window_duration(&ep.window) * GRACE => (
                Verdict::Unmeasured,
                None,
                Some(format!("{} has no record of the merge {GRACE} windows after its window closed", ep.url)),
            ),
            Ok(None) => continue,
        };
        let Some(step) = history.merge(&d.id) else { continue };
        let previous = step.utility.unwrap_or(0.0);
        let utility = if verdict == Verdict::Slipped { previous.min(s.rails.utility.revert_cap) } else { previous };
        let body = AmendBody {
            step: d.id.clone(),
            reason: AmendReason::Verified,
            commit: step.commit.map(str::to_string),
            detected_by: Detector::Loopkit,
            hours: crate::score::round((now - d.merged).num_seconds().max(0) as f64 / 3600.0),
            previous_utility: previous,
            utility,
            capped: utility < previous,
            verified: Some(verdict),
            pain: Some(d.pain.clone()),
            window: Some(ep.window.label.clone()),
            rates: rates.map(|r| Rates {
                before: window::round3(r.before),
                after: window::round3(r.after),
                latest: window::round3(r.latest),
            }),
            detail,
        };
        s.append_amend(&body)?;
        out.push(Verified { id: d.id, verdict, rates: body.rates });
    }
    Ok((out, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::tests::{Log, t};
    use crate::record::Outcome;

    #[test]
    fn only_merges_that_targeted_a_pain_and_whose_window_closed_are_due() {
        let mut log = Log::default();
        let mut pain = Log::body("self", Outcome::Merged, 0.9, Some("c1"));
        pain.pick.focus = "pain:pn_0123456789abcdef".into();
        log.step("s1", pain.clone(), 0);
        log.step("s2", Log::body("self", Outcome::Merged, 0.9, Some("c2")), 1);
        let mut failed = pain.clone();
        failed.outcome = Outcome::Failed;
        log.step("s3", failed, 2);
        log.step("s4", pain.clone(), 10);
        let w = Window::parse("24h").unwrap();
        let h = log.history();
        assert!(due(&h, &w, t(23)).is_empty(), "the window after s1 is still open");
        let d = due(&h, &w, t(24));
        assert_eq!(d.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), vec!["s1"]);
        assert_eq!((d[0].pain.as_str(), d[0].seq), ("pn_0123456789abcdef", 1));
        assert_eq!(due(&h, &w, t(40)).len(), 2);
        log.revert("s4", 30);
        assert_eq!(due(&log.history(), &w, t(40)).len(), 1, "a reverted step is not verified");
    }

    #[test]
    fn the_servers_answer_is_checked_before_it_is_believed() {
        let span = "0123456789abcdef";
        let a = serde_json::json!({"changes": [
            {"pain_id": "pn_0123456789abcdef", "span_id": span, "outcome": "held",
             "before_rate_per_1k": 500.0, "after_rate_per_1k": 0.0, "latest_rate_per_1k": 0.0},
            {"pain_id": "pn_1123456789abcdef", "span_id": span, "outcome": "held",
             "before_rate_per_1k": "NaN", "after_rate_per_1k": 0.0, "latest_rate_per_1k": 0.0}]});
        let m = measured(&a, "pn_0123456789abcdef", span).unwrap().unwrap();
        assert_eq!((m.complete, m.rates.before), (true, 500.0));
        assert!(measured(&a, "pn_0123456789abcdef", "ffffffffffffffff").unwrap().is_none(), "another span");
        assert!(measured(&a, "pn_1123456789abcdef", span).is_err(), "a rate that is not a number");
        assert!(measured(&serde_json::json!({}), "pn_0123456789abcdef", span).is_err());
    }
}

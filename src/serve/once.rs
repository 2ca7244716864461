//! Results shown once: the POST-redirect-GET of the recovery form.
//!
//! A form recovery stores its result (fresh keys, or the refusal) under a
//! random ticket and redirects the browser (303) to `/recovered?ticket=…`;
//! that page takes the result out, so a reload shows "already shown" and
//! can never resubmit the form nor show the keys twice.
//!
//! Invariants: tickets are 128 random bits; a result lives at most `ttl`
//! and is handed out at most once; at most [`OneTime::MAX`] results are
//! held (the oldest goes first).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// What a form recovery ended with.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The new keys (the recovery response).
    Rotated(Value),
    /// The refusal, as a report with its status.
    Refused { status: u16, report: crate::error::Report },
}

pub struct OneTime {
    ttl: Duration,
    held: Mutex<HashMap<String, (Instant, Outcome)>>,
}

impl OneTime {
    pub const MAX: usize = 1_000;

    pub fn new(ttl: Duration) -> OneTime {
        OneTime { ttl, held: Mutex::new(HashMap::new()) }
    }

    /// Holds `outcome`; returns its ticket.
    pub fn put(&self, outcome: Outcome) -> Result<String, getrandom::Error> {
        let ticket = crate::loopkit::keys::hex(&crate::loopkit::keys::random_bytes()?[..16]);
        let now = Instant::now();
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
        if held.len() >= Self::MAX {
            if let Some(oldest) = held.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone()) {
                held.remove(&oldest);
            }
        }
        held.insert(ticket.clone(), (now, outcome));
        Ok(ticket)
    }

    /// Takes the outcome of `ticket` out, if it is still held.
    pub fn take(&self, ticket: &str) -> Option<Outcome> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let (at, outcome) = held.remove(ticket)?;
        (at.elapsed() < self.ttl).then_some(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_is_handed_out_once() {
        let o = OneTime::new(Duration::from_secs(60));
        let t = o.put(Outcome::Rotated(serde_json::json!({"k": 1}))).unwrap();
        assert_eq!(t.len(), 32);
        assert!(matches!(o.take(&t), Some(Outcome::Rotated(_))));
        assert!(o.take(&t).is_none());
        assert!(o.take("nope").is_none());
    }

    #[test]
    fn outcomes_expire() {
        let o = OneTime::new(Duration::from_millis(0));
        let t = o.put(Outcome::Rotated(Value::Null)).unwrap();
        assert!(o.take(&t).is_none());
    }
}

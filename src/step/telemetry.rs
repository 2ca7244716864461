//! The telemetry around one unattended or interactive step: before it,
//! send what the server does not have yet, verify the merges whose window
//! closed ([`super::verify`]) and read the top pain; after it, report the
//! new entries ([`crate::loopkit::outbox`]).
//!
//! None of it can fail or block the step: every failure is kept as the
//! run's one [`TelemetryError`] ([`Telemetry::problem`], the first met),
//! which the command line says once with its hint; once the server is
//! known to be unreachable, nothing else is tried in the same run (each try
//! would only wait for the connect timeout again).

use crate::loopkit::client::{self, Endpoint, TelemetryError};
use crate::propose::context::Focus;
use crate::record::Verdict;

use super::verify::Verified;
use super::{Session, StepError};

/// What the telemetry of one run did, and what went wrong.
#[derive(Debug, Default)]
pub struct Telemetry {
    endpoint: Option<Endpoint>,
    /// The first failure of the run.
    pub problem: Option<TelemetryError>,
    /// What happened that the user should hear about.
    pub notes: Vec<String>,
    /// Merges verified this run.
    pub verified: Vec<Verified>,
}

impl Telemetry {
    fn fail(&mut self, e: TelemetryError) {
        if self.problem.is_none() {
            self.problem = Some(e);
        }
    }

    fn reachable(&self) -> bool {
        !self.problem.as_ref().is_some_and(TelemetryError::unreachable)
    }

    /// Sends the backlog, verifies what is due and reads the top pain;
    /// returns the telemetry for [`super::Options::telemetry`].
    pub fn before(s: &mut Session) -> Result<(Telemetry, Result<Option<Focus>, String>), StepError> {
        let mut t = Telemetry::default();
        let ep = match Endpoint::resolve(&s.rails, &s.ws) {
            Ok(Some(ep)) => ep,
            Ok(None) => return Ok((t, Ok(None))),
            Err(e) => {
                let why = e.to_string();
                t.fail(e);
                return Ok((t, Err(why)));
            }
        };
        t.flush(s, &ep);
        if t.reachable() && ep.agent_key.is_some() {
            let (verified, problem) = super::verify::verify(s, &ep)?;
            for v in &verified {
                t.notes.push(match (v.verdict, v.rates) {
                    (Verdict::Unmeasured, _) | (_, None) => {
                        format!("verified step {}: {} (nothing to compare)", v.id, v.verdict.word())
                    }
                    (verdict, Some(r)) => format!(
                        "verified step {}: {} (its pain's rate {:.1} → {:.1}, latest {:.1} per 1,000 spans)",
                        v.id,
                        verdict.word(),
                        r.before,
                        r.after,
                        r.latest
                    ),
                });
            }
            t.verified = verified;
            if let Some(e) = problem {
                t.fail(e);
            }
        }
        let focus = if t.reachable() {
            client::top_pain(&s.rails, &s.ws).map_err(|e| {
                let why = e.to_string();
                t.fail(e);
                why
            })
        } else {
            Err(t.problem.as_ref().map(|e| e.to_string()).unwrap_or_default())
        };
        t.endpoint = Some(ep);
        Ok((t, focus))
    }

    /// Reports the entries the step wrote.
    pub fn after(&mut self, s: &Session) {
        if let Some(ep) = self.endpoint.clone() {
            if self.reachable() {
                self.flush(s, &ep);
            }
        }
    }

    fn flush(&mut self, s: &Session, ep: &Endpoint) {
        match crate::loopkit::outbox::flush(&s.ws, &s.journal, ep) {
            Ok(f) if f.rejected > 0 => self.fail(TelemetryError::Refused {
                url: ep.url.clone(),
                status: 200,
                message: format!("{} of the step spans were refused (partialSuccess)", f.rejected),
            }),
            Ok(_) => {}
            Err(e) => self.fail(e),
        }
    }
}

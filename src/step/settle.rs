//! Log: the one way a step's outcome is settled and written.
//!
//! Every phase that ends a step builds an [`Ending`] (outcome, reason,
//! detail, and the signals to score) and hands it to [`settle`], which
//! scores it, appends the entry, clears the crash journal and removes the
//! pending file the step settled.
//!
//! Invariant: an entry always fits. Every string a provider or a child
//! could make long is bounded before it goes in ([`bound`]); and should an
//! entry still not fit, it is written again without the provider's prose
//! (rationale, next steps, verdict reasons), so a step never ends without
//! its entry and the workspace is never wedged.

use crate::record::{Outcome, Reason, StepBody};
use crate::score::{Signals, utility};

use super::inflight::Inflight;
use super::{Report, Session, StepError};

/// The longest rationale an entry keeps.
pub const MAX_RATIONALE: usize = 4_000;
/// The longest next step, verdict reason or detail an entry keeps.
pub const MAX_TEXT: usize = 1_000;
/// The longest focus, provider name or other short field.
pub const MAX_SHORT: usize = 200;
/// The most next steps an entry keeps.
pub const MAX_NEXT_STEPS: usize = 20;

/// `text` cut to at most `max` bytes (at a character boundary), marked with
/// `…` when cut.
pub fn bound(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// How a step ends.
#[derive(Clone, Debug)]
pub struct Ending {
    pub outcome: Outcome,
    pub reason: Option<Reason>,
    pub detail: Option<String>,
    /// Scored into the entry's utility when given.
    pub signals: Option<Signals>,
}

impl Ending {
    pub fn new(outcome: Outcome, reason: Reason) -> Ending {
        Ending { outcome, reason: Some(reason), detail: None, signals: None }
    }

    /// Merged, with nothing to explain.
    pub fn merged(signals: Signals) -> Ending {
        Ending { outcome: Outcome::Merged, reason: None, detail: None, signals: Some(signals) }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Ending {
        self.detail = Some(detail.into());
        self
    }

    pub fn signals(mut self, signals: Signals) -> Ending {
        self.signals = Some(signals);
        self
    }
}

/// Settles `body` as `ending` says and logs it; `commit` is the step's
/// commit when it merged.
pub fn settle(
    s: &mut Session,
    id: &str,
    mut body: StepBody,
    ending: Ending,
    commit: Option<String>,
) -> Result<Report, StepError> {
    body.outcome = ending.outcome;
    body.reason = ending.reason;
    if let Some(d) = ending.detail {
        body.detail = Some(bound(&d, MAX_TEXT));
    }
    if let Some(signals) = ending.signals {
        body.utility = Some(score(s, &signals, &body));
        body.signals = Some(signals);
    }
    bound_body(&mut body);
    let entry = match s.append_step(id, &body) {
        Err(StepError::Journal(crate::journal::JournalError::InvalidEntry { .. })) => {
            trim(&mut body);
            s.append_step(id, &body)?
        }
        other => other?,
    };
    crate::timing::mark("log");
    Inflight::clear(&s.ws)?;
    if body.outcome != Outcome::Pending {
        super::pending::settled(&s.ws, id);
    }
    Ok(Report {
        id: id.to_string(),
        outcome: body.outcome,
        utility: body.utility,
        commit,
        provider: body.pick.provider.clone(),
        path: body.proposal.as_ref().map(|p| p.path.clone()),
        reason: body.reason,
        detail: body.detail.clone(),
        pending: None,
        quit: false,
        seq: entry.seq,
        auto_merged: (body.outcome == Outcome::Merged && body.gate2.as_ref().is_some_and(|g| g.by == "auto"))
            .then(|| body.base.clone()),
    })
}

/// The utility of `signals` under the rails' weights, with the critics'
/// capped signal blended in (their weights are recorded in their verdicts).
pub fn score(s: &Session, signals: &Signals, body: &StepBody) -> f64 {
    crate::gate::critics::blend(utility(signals, &s.rails.utility.weights), &body.gate1)
}

/// Bounds every string in `body` that a provider or a child could make long.
pub fn bound_body(body: &mut StepBody) {
    body.pick.focus = bound(&body.pick.focus, MAX_SHORT);
    if let Some(p) = &mut body.proposal {
        p.rationale = bound(&p.rationale, MAX_RATIONALE);
        p.path = bound(&p.path, crate::patch::MAX_PATH_BYTES);
        p.next_steps.truncate(MAX_NEXT_STEPS);
        for n in &mut p.next_steps {
            *n = bound(n, MAX_TEXT);
        }
    }
    for v in &mut body.gate1 {
        v.by = bound(&v.by, MAX_SHORT);
        v.code = v.code.as_deref().map(|c| bound(c, MAX_SHORT));
        v.reason = v.reason.as_deref().map(|r| bound(r, MAX_TEXT));
    }
    if let Some(g) = &mut body.gate2 {
        g.reason = g.reason.as_deref().map(|r| bound(r, MAX_TEXT));
    }
    body.detail = body.detail.as_deref().map(|d| bound(d, MAX_TEXT));
}

/// The last resort for an entry that does not fit: the provider's prose goes.
fn trim(body: &mut StepBody) {
    if let Some(p) = &mut body.proposal {
        p.rationale = "(removed: the entry would not fit in the log)".into();
        p.next_steps.clear();
    }
    for v in &mut body.gate1 {
        v.reason = None;
    }
    body.detail = body.detail.as_deref().map(|d| bound(d, MAX_SHORT));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_cuts_at_a_character_boundary_and_marks_the_cut() {
        assert_eq!(bound("short", 10), "short");
        let cut = bound(&"é".repeat(100), 11);
        assert!(cut.len() <= 11 && cut.ends_with('…'), "{cut:?}");
        assert!(std::str::from_utf8(cut.as_bytes()).is_ok());
    }
}

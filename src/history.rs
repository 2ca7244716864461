//! What the step log says about the past: provider statistics, trust tiers,
//! the watchdog, recent picks, open next steps (DESIGN §8).
//!
//! Everything here is derived from the log's entries and nothing else: there
//! is no second, mutable store of statistics to drift from the log.
//! Amendments (a revert within the window) are applied as they are met.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::record::{AmendBody, Outcome, PickRecord, StepBody, Verdict};

/// One log entry, as history reads it.
#[derive(Clone, Debug)]
pub struct Event {
    pub seq: u64,
    pub id: String,
    pub ts: DateTime<Utc>,
    pub kind: String,
    /// The body as JSON text (`{"pick":…}`), deserialized here straight
    /// into the types history keeps.
    pub body: String,
}

/// A step from its first entry to its latest.
#[derive(Clone, Debug)]
pub struct Step {
    pub id: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// The pick, from the step's first entry.
    pub pick: PickRecord,
    /// The latest entry's body.
    pub body: StepBody,
    /// Set by a revert amendment.
    pub reverted: Option<Revert>,
    /// Set by a verification amendment (the first one counts).
    pub verified: Option<Verification>,
    /// The utility the latest amendment left (a revert or a slip caps it).
    pub amended: Option<f64>,
}

/// What the window after a merge said about the pain the step targeted.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verification {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rates: Option<crate::record::Rates>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    pub utility: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Revert {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub hours: f64,
    pub utility: f64,
    pub capped: bool,
    pub commit: Option<String>,
}

impl Step {
    pub fn outcome(&self) -> Outcome {
        self.body.outcome
    }

    /// The step's utility with amendments applied.
    pub fn utility(&self) -> Option<f64> {
        self.amended.or(self.body.utility)
    }

    /// Whether the window after the merge showed the pain came back.
    pub fn slipped(&self) -> bool {
        self.verified.as_ref().is_some_and(|v| v.verdict == Verdict::Slipped)
    }

    /// The pain the step targeted (`pain:<id>` focus).
    pub fn pain(&self) -> Option<&str> {
        self.pick.focus.strip_prefix("pain:")
    }

    pub fn commit(&self) -> Option<&str> {
        self.body.apply.as_ref().and_then(|a| a.commit.as_deref())
    }

    pub fn ci_pass(&self) -> bool {
        self.body.signals.as_ref().is_some_and(|s| s.ci_pass >= 1.0)
    }
}

/// Counts for one provider.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProviderStats {
    pub picks: u64,
    pub scored: u64,
    pub merged: u64,
    pub rejected: u64,
    pub failed: u64,
    pub pending: u64,
    pub noop: u64,
    pub reverted: u64,
    /// Merged steps the next telemetry window showed as wins.
    pub won: u64,
    /// Merged steps whose pain came back (they count like a revert).
    pub slipped: u64,
    /// Sum of the scored steps' utilities, amendments applied.
    pub utility_sum: f64,
    pub mean_utility: Option<f64>,
}

/// The log's history.
#[derive(Clone, Debug, Default)]
pub struct History {
    steps: Vec<Step>,
    index: HashMap<String, usize>,
    first_ts: Option<DateTime<Utc>>,
    /// Revert amendments in log order: (seq, step index).
    reverts: Vec<(u64, usize)>,
    /// Slipped verifications in log order: (seq, step index).
    slips: Vec<(u64, usize)>,
    /// The rails version of the last `rails` or `intent` entry.
    last_rails: Option<String>,
}

impl History {
    /// Builds the history from entries in log order.
    pub fn from_events(events: impl IntoIterator<Item = Event>) -> History {
        let mut h = History::default();
        for e in events {
            h.first_ts.get_or_insert(e.ts);
            match e.kind.as_str() {
                "step" => {
                    let Ok(body) = serde_json::from_str::<StepBody>(&e.body) else { continue };
                    match h.index.get(&e.id) {
                        Some(&i) => {
                            let s = &mut h.steps[i];
                            s.last_seq = e.seq;
                            s.finished = e.ts;
                            s.body = body;
                        }
                        None => {
                            h.index.insert(e.id.clone(), h.steps.len());
                            h.steps.push(Step {
                                id: e.id,
                                first_seq: e.seq,
                                last_seq: e.seq,
                                started: e.ts,
                                finished: e.ts,
                                pick: body.pick.clone(),
                                body,
                                reverted: None,
                                verified: None,
                                amended: None,
                            });
                        }
                    }
                }
                "amend" => {
                    let Ok(a) = serde_json::from_str::<AmendBody>(&e.body) else { continue };
                    if a.reason == crate::record::AmendReason::Verified {
                        let Some(&i) = h.index.get(&a.step) else { continue };
                        let step = &mut h.steps[i];
                        if step.verified.is_some() || step.outcome() != Outcome::Merged {
                            continue;
                        }
                        let verdict = a.verified.unwrap_or(Verdict::Other);
                        step.verified = Some(Verification {
                            seq: e.seq,
                            at: e.ts,
                            verdict,
                            pain: a.pain,
                            rates: a.rates,
                            window: a.window,
                            utility: a.utility,
                        });
                        step.amended = Some(a.utility);
                        if verdict == Verdict::Slipped {
                            h.slips.push((e.seq, i));
                        }
                        continue;
                    }
                    if a.reason != crate::record::AmendReason::Revert {
                        continue;
                    }
                    if let Some(&i) = h.index.get(&a.step) {
                        if h.steps[i].reverted.is_none() {
                            h.steps[i].amended = Some(a.utility);
                            h.steps[i].reverted = Some(Revert {
                                seq: e.seq,
                                at: e.ts,
                                hours: a.hours,
                                utility: a.utility,
                                capped: a.capped,
                                commit: a.commit,
                            });
                            h.reverts.push((e.seq, i));
                        }
                    }
                }
                "rails" | "intent" => {
                    #[derive(serde::Deserialize)]
                    struct Versioned {
                        rails: Option<String>,
                    }
                    if let Ok(Versioned { rails: Some(v) }) = serde_json::from_str::<Versioned>(&e.body) {
                        h.last_rails = Some(v);
                    }
                }
                _ => {}
            }
        }
        h
    }

    /// The rails version the log last recorded (`rails` and `intent` entries).
    pub fn last_rails(&self) -> Option<&str> {
        self.last_rails.as_deref()
    }

    /// The revert amendments, in log order: (the amendment's seq, the step).
    pub fn reverts(&self) -> impl Iterator<Item = (u64, &Step)> {
        self.reverts.iter().map(|&(seq, i)| (seq, &self.steps[i]))
    }

    /// The verifications that found a step's pain came back, in log order.
    pub fn slips(&self) -> impl Iterator<Item = (u64, &Step)> {
        self.slips.iter().map(|&(seq, i)| (seq, &self.steps[i]))
    }

    /// When the log began.
    pub fn first_ts(&self) -> Option<DateTime<Utc>> {
        self.first_ts
    }

    /// The history in `journal`, read entry by entry.
    pub fn read(journal: &crate::journal::Journal) -> Result<History, crate::journal::JournalError> {
        History::from_entries(journal.raw_entries()?)
    }

    /// The history of checked entries, in log order.
    pub fn from_entries(
        entries: impl IntoIterator<Item = Result<crate::journal::RawEntry, crate::journal::JournalError>>,
    ) -> Result<History, crate::journal::JournalError> {
        let mut events = Vec::new();
        for e in entries {
            let e = e?;
            events.push(Event {
                seq: e.seq,
                ts: crate::clock::parse(&e.ts).unwrap_or_default(),
                kind: e.kind.as_str().to_string(),
                id: e.id,
                body: e.body,
            });
        }
        Ok(History::from_events(events))
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.index.get(id).map(|&i| &self.steps[i])
    }

    /// Providers of every pick, oldest first.
    pub fn picks(&self) -> Vec<String> {
        self.steps.iter().map(|s| s.pick.provider.clone()).collect()
    }

    pub fn provider_stats(&self) -> BTreeMap<String, ProviderStats> {
        let mut out: BTreeMap<String, ProviderStats> = BTreeMap::new();
        for s in &self.steps {
            let st = out.entry(s.pick.provider.clone()).or_default();
            st.picks += 1;
            match s.outcome() {
                Outcome::Merged => st.merged += 1,
                Outcome::Rejected => st.rejected += 1,
                Outcome::Failed => st.failed += 1,
                Outcome::Pending => st.pending += 1,
                Outcome::Noop | Outcome::Skipped => st.noop += 1,
            }
            if s.reverted.is_some() {
                st.reverted += 1;
            }
            match s.verified.as_ref().map(|v| v.verdict) {
                Some(Verdict::Win) => st.won += 1,
                Some(Verdict::Slipped) => st.slipped += 1,
                _ => {}
            }
            if s.outcome().is_scored() {
                st.scored += 1;
                st.utility_sum += s.utility().unwrap_or(0.0);
            }
        }
        for st in out.values_mut() {
            st.utility_sum = crate::score::round(st.utility_sum);
            st.mean_utility = (st.scored > 0).then(|| crate::score::round(st.utility_sum / st.scored as f64));
        }
        out
    }

    /// Spend and calls of `provider` on the UTC day of `now`: its own
    /// proposals, and its answers as a critic.
    pub fn cost_on_day(&self, provider: &str, now: DateTime<Utc>) -> (f64, u64) {
        let day = now.date_naive();
        let mut total = (0.0, 0);
        for s in self.steps.iter().filter(|s| s.started.date_naive() == day) {
            if s.pick.provider == provider {
                total = (total.0 + s.body.cost.usd, total.1 + s.body.cost.calls);
            }
            for v in s.body.gate1.iter().filter(|v| v.provider.as_deref() == Some(provider)) {
                if let Some(c) = &v.cost {
                    total = (total.0 + c.usd, total.1 + c.calls);
                }
            }
        }
        total
    }

    /// Calls made to critic `name` on the UTC day of `now`.
    pub fn critic_calls_on_day(&self, name: &str, now: DateTime<Utc>) -> u64 {
        let day = now.date_naive();
        let by = format!("critic:{name}");
        self.steps
            .iter()
            .filter(|s| s.started.date_naive() == day)
            .flat_map(|s| s.body.gate1.iter())
            .filter(|v| v.by == by)
            .map(|v| v.cost.as_ref().map_or(0, |c| c.calls))
            .sum()
    }

    /// Next steps left by merged steps and not yet taken up as a focus,
    /// newest first: (`next:<id>#<n>`, text).
    pub fn open_next_steps(&self) -> Vec<(String, String)> {
        let used: std::collections::HashSet<&str> = self.steps.iter().map(|s| s.pick.focus.as_str()).collect();
        let mut out = Vec::new();
        for s in self.steps.iter().rev().filter(|s| s.outcome() == Outcome::Merged && s.reverted.is_none()) {
            if let Some(p) = &s.body.proposal {
                for (n, text) in p.next_steps.iter().enumerate() {
                    let focus = format!("next:{}#{n}", s.id);
                    if !used.contains(focus.as_str()) {
                        out.push((focus, text.clone()));
                    }
                }
            }
        }
        out
    }

    /// Merged, unreverted steps by commit id.
    pub fn merged_commits(&self) -> HashMap<&str, &Step> {
        self.steps
            .iter()
            .filter(|s| s.outcome() == Outcome::Merged && s.reverted.is_none())
            .filter_map(|s| s.commit().map(|c| (c, s)))
            .collect()
    }

    /// The steps still waiting for a human.
    pub fn pending(&self) -> Vec<&Step> {
        self.steps.iter().filter(|s| s.outcome() == Outcome::Pending).collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pick::Reason;
    use crate::record::*;
    use crate::score::Signals;

    pub(crate) fn t(h: i64) -> DateTime<Utc> {
        crate::clock::parse("2026-11-01T00:00:00Z").unwrap() + chrono::Duration::hours(h)
    }

    pub(crate) fn body(provider: &str, outcome: Outcome, utility: f64, commit: Option<&str>) -> StepBody {
        StepBody {
            intent: "i".into(),
            rails: "r".into(),
            versions: Versions::current(),
            base: None,
            pick: PickRecord {
                provider: provider.into(),
                reason: Reason::Thompson,
                seed: "s".into(),
                focus: "intent".into(),
                note: None,
                capped: Vec::new(),
            },
            proposal: Some(ProposalRecord {
                packet: "p".into(),
                rationale: "r".into(),
                op: "append".into(),
                path: "docs/a.md".into(),
                added: 1,
                removed: 0,
                next_steps: vec!["more".into()],
            }),
            gate1: vec![],
            gate2: None,
            apply: commit.map(|c| ApplyRecord { commit: Some(c.into()), checks: None }),
            signals: Some(Signals {
                ci_pass: if outcome == Outcome::Merged { 1.0 } else { 0.0 },
                path_ok: 1.0,
                diff_ratio: 0.1,
                atomic_ok: 1.0,
                left_next_steps: 1.0,
                human_score: 1.0,
            }),
            utility: Some(utility),
            cost: Cost::default(),
            sandbox: None,
            outcome,
            reason: None,
            detail: None,
            target: None,
            extracted: None,
        }
    }

    /// A log built in memory, for tests of what history derives.
    #[derive(Default)]
    pub(crate) struct Log(Vec<Event>);
    impl Log {
        pub(crate) fn body(provider: &str, outcome: Outcome, utility: f64, commit: Option<&str>) -> StepBody {
            body(provider, outcome, utility, commit)
        }
        pub(crate) fn step(&mut self, id: &str, b: StepBody, hour: i64) -> &mut Self {
            let seq = self.0.len() as u64 + 1;
            self.0.push(Event {
                seq,
                id: id.into(),
                ts: t(hour),
                kind: "step".into(),
                body: serde_json::to_string(&b).unwrap(),
            });
            self
        }
        pub(crate) fn revert(&mut self, id: &str, hour: i64) -> &mut Self {
            let seq = self.0.len() as u64 + 1;
            let a = AmendBody {
                step: id.into(),
                reason: AmendReason::Revert,
                commit: Some("r".into()),
                detected_by: Detector::RatchetRevert,
                hours: 1.0,
                previous_utility: 0.9,
                utility: 0.2,
                capped: true,
                verified: None,
                pain: None,
                window: None,
                rates: None,
                detail: None,
            };
            self.0.push(Event {
                seq,
                id: format!("a{seq}"),
                ts: t(hour),
                kind: "amend".into(),
                body: serde_json::to_string(&a).unwrap(),
            });
            self
        }
        pub(crate) fn verify(&mut self, id: &str, verdict: Verdict, utility: f64, hour: i64) -> &mut Self {
            let seq = self.0.len() as u64 + 1;
            let a = AmendBody {
                step: id.into(),
                reason: AmendReason::Verified,
                commit: None,
                detected_by: Detector::Loopkit,
                hours: 25.0,
                previous_utility: 0.9,
                utility,
                capped: utility < 0.9,
                verified: Some(verdict),
                pain: Some("pn_0123456789abcdef".into()),
                window: Some("24h".into()),
                rates: Some(Rates { before: 500.0, after: 10.0, latest: 10.0 }),
                detail: None,
            };
            self.0.push(Event {
                seq,
                id: format!("a{seq}"),
                ts: t(hour),
                kind: "amend".into(),
                body: serde_json::to_string(&a).unwrap(),
            });
            self
        }
        pub(crate) fn history(&self) -> History {
            History::from_events(self.0.clone())
        }
    }

    #[test]
    fn the_latest_entry_of_a_step_wins_and_amendments_apply() {
        let mut log = Log(vec![]);
        log.step("s1", body("self", Outcome::Pending, 0.5, None), 0).step(
            "s1",
            body("self", Outcome::Merged, 0.9, Some("c1")),
            1,
        );
        log.revert("s1", 2);
        let h = log.history();
        assert_eq!(h.steps().len(), 1);
        let s = h.step("s1").unwrap();
        assert_eq!(s.outcome(), Outcome::Merged);
        assert_eq!(s.utility(), Some(0.2));
        let stats = &h.provider_stats()["self"];
        assert_eq!((stats.picks, stats.merged, stats.reverted, stats.utility_sum), (1, 1, 1, 0.2));
        assert!(h.merged_commits().is_empty(), "a reverted commit is no longer merged");
    }

    #[test]
    fn a_slipped_step_counts_against_its_provider_and_a_win_is_counted() {
        let mut log = Log(vec![]);
        log.step("s1", body("ollama", Outcome::Merged, 0.9, Some("c1")), 0);
        log.step("s2", body("ollama", Outcome::Merged, 0.9, Some("c2")), 1);
        log.verify("s1", Verdict::Win, 0.9, 30).verify("s2", Verdict::Slipped, 0.2, 31);
        log.verify("s2", Verdict::Win, 0.9, 32);
        let h = log.history();
        assert_eq!(h.step("s2").unwrap().utility(), Some(0.2), "the first verdict counts");
        assert!(h.step("s2").unwrap().slipped() && !h.step("s1").unwrap().slipped());
        let st = &h.provider_stats()["ollama"];
        assert_eq!((st.won, st.slipped, st.utility_sum), (1, 1, 1.1));
        assert_eq!(h.slips().map(|(_, s)| s.id.as_str()).collect::<Vec<_>>(), vec!["s2"]);
    }

    #[test]
    fn next_steps_are_offered_until_taken_up() {
        let mut log = Log(vec![]);
        log.step("s1", body("self", Outcome::Merged, 0.9, Some("c")), 0);
        assert_eq!(log.history().open_next_steps(), vec![("next:s1#0".to_string(), "more".to_string())]);
        let mut b = body("self", Outcome::Failed, 0.3, None);
        b.pick.focus = "next:s1#0".into();
        b.proposal = None;
        log.step("s2", b, 1);
        assert!(log.history().open_next_steps().is_empty());
    }
}

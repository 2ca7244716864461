//! What the step log says about the past: provider statistics, trust tiers,
//! the watchdog, recent picks, open next steps (DESIGN §8).
//!
//! Everything here is derived from the log's entries and nothing else: there
//! is no second, mutable store of statistics to drift from the log. The
//! history is a *fold* over the entries ([`History::apply`]), so it can be
//! carried forward: [`snapshot`] keeps the fold's state keyed by the log's
//! head in ratchet's private directory, and the next command reads only the
//! entries after it.
//!
//! ## Bounded by what can still change
//!
//! A log of a million entries must not cost a million steps of memory. So,
//! unless asked to keep everything ([`History::keep_all`], the loop page and
//! the agents API's book, which show the whole past), the fold compacts
//! itself: a step is kept whole while it is among the last [`KEEP`] steps;
//! after that it is kept only while something can still change it — a
//! pending step (a human may decide it) is kept whole; a merge that stands
//! (a revert or a telemetry window may amend it) becomes a compact record
//! ([`Standing`]: what [`Merge`] and the statistics read, and where its
//! entry is in the log, to read it whole again, checked against its hash,
//! when a revert or `ratchet show` needs it: [`History::load_step`]) — and
//! every other step is folded into aggregates ([`Frozen`]): its provider's
//! statistics, the spend of its day, its settlement and demotions as runs
//! of the trust ladder, the next steps it took up. The aggregates answer
//! exactly what the steps would have answered (a test compares a compacted
//! history with a whole one on the same log), with these bounds, which no
//! rails value reaches in practice: `ratchet status --recent` and
//! `[context] recent` see at most [`KEEP`] steps, `[selection] window` at
//! most [`PICKS`] picks, and the spend of days more than [`DAYS`] before
//! the latest compaction is dropped (the budget reads the day it is).
//!
//! Compaction runs when [`BATCH`] steps have left the recent window, a
//! point that is part of the state, never at the end of a read, so a
//! history carried forward from a snapshot goes through exactly the same
//! operations, in the same order, as one folded from the first entry: the
//! two are equal, bit for bit (sums of utilities and dollars are kept in
//! whole units of 10⁻¹², so they do not depend on the order either).
//!
//! What stays grows with the merges that stand (each can still be reverted
//! or verified, and a revert changes its provider's trust ladder back to
//! that merge), not with the log: about 150 bytes of snapshot a merge
//! ([`packed`]), and the trust runs between them, a few bytes each.
//!
//! The fold assumes what ratchet writes: after a step settles (any outcome
//! but `pending`) no later `step` entry names it; reverts and verifications
//! name merged steps, and a reverted step is never verified; a `next:`
//! focus names a step logged before it.

mod packed;
pub mod snapshot;
mod standing;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::record::{AmendBody, Outcome, PickRecord, StepBody, Verdict};
use standing::Standing;

/// How many of the latest steps are kept whole.
pub const KEEP: usize = 256;
/// How many of the latest picks are kept (the selection's window).
pub const PICKS: usize = 1024;
/// How many steps past the recent window are left before they are aged
/// (slimmed or folded away), and how many kept steps may close (a pending
/// one decided, a merged one reverted) before a pass over all of them.
const BATCH: usize = 256;
/// How many days of spend before the latest compaction are kept (the
/// budget reads the day it is).
const DAYS: u64 = 31;

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
    /// Where the entry's line is in the log, when it was read from one.
    pub at: Option<Place>,
}

/// Where an entry's line is in the log: the byte after its newline, and
/// its hash, so that it can be read again alone and known to be the same
/// line ([`crate::journal::Journal::raw_entry_at`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub end: u64,
    #[serde(with = "hex32")]
    pub hash: [u8; 32],
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::journal::line::hex(h))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        crate::journal::line::unhex(text.as_bytes()).ok_or_else(|| serde::de::Error::custom("not 64 hex digits"))
    }
}

/// A step from its first entry to its latest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// The pick, from the step's first entry.
    pub pick: PickRecord,
    /// The latest entry's body (slimmed once the step is no longer recent:
    /// its Gate 1 verdicts, texts and checks dropped).
    pub body: StepBody,
    /// Set by a revert amendment.
    pub reverted: Option<Revert>,
    /// Set by a verification amendment (the first one counts).
    pub verified: Option<Verification>,
    /// The utility the latest amendment left (a revert or a slip caps it).
    pub amended: Option<f64>,
    /// Whether the step's spend is already counted in [`Frozen::days`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    costed: bool,
    /// Where the latest entry is in the log (kept once the step ages into a [`Standing`] merge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<Place>,
}

/// A merge that stands (merged, not reverted) as the everyday queries read
/// it, whether its step is kept whole ([`History::steps`]) or aged into a
/// compact record: statistics, trust, the telemetry window, next steps,
/// reverts found in git. The whole step is [`History::load_step`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Merge<'a> {
    pub id: &'a str,
    pub first_seq: u64,
    pub last_seq: u64,
    /// When the merge was logged.
    pub finished: DateTime<Utc>,
    pub provider: &'a str,
    pub focus: &'a str,
    pub commit: Option<&'a str>,
    /// The one path the proposal changed.
    pub path: Option<&'a str>,
    /// The utility, amendments applied.
    pub utility: Option<f64>,
    /// Whether the telemetry window after the merge was read.
    pub verified: bool,
}

impl Merge<'_> {
    /// The pain the step targeted (`pain:<id>` focus).
    pub fn pain(&self) -> Option<&str> {
        self.focus.strip_prefix("pain:")
    }
}

/// How one step counts in its provider's statistics.
struct Tally {
    outcome: Outcome,
    reverted: bool,
    verdict: Option<Verdict>,
    utility: Option<f64>,
}

/// What the window after a merge said about the pain the step targeted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

    /// The step as a [`Merge`] (whatever its outcome).
    pub fn merge(&self) -> Merge<'_> {
        Merge {
            id: &self.id,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            finished: self.finished,
            provider: &self.pick.provider,
            focus: &self.pick.focus,
            commit: self.commit(),
            path: self.body.proposal.as_ref().map(|p| p.path.as_str()),
            utility: self.utility(),
            verified: self.verified.is_some(),
        }
    }

    fn stands(&self) -> bool {
        self.outcome() == Outcome::Merged && self.reverted.is_none()
    }

    fn tally(&self) -> Tally {
        Tally {
            outcome: self.outcome(),
            reverted: self.reverted.is_some(),
            verdict: self.verified.as_ref().map(|v| v.verdict),
            utility: self.utility(),
        }
    }

    /// Whether an entry may still change how this step counts: a pending
    /// step may be decided, a merged one reverted or verified (a reverted
    /// one is never verified: the window is only read for merges that stand).
    fn open(&self) -> bool {
        match self.outcome() {
            Outcome::Pending => true,
            Outcome::Merged => self.reverted.is_none(),
            _ => false,
        }
    }

    /// The seqs of this step's events on the trust ladder: its settlement
    /// (when scored), its revert and its slip.
    fn trust_seqs(&self) -> impl Iterator<Item = u64> + '_ {
        let settled = self.outcome().is_scored().then_some(self.last_seq);
        let reverted = self.reverted.as_ref().map(|r| r.seq);
        let slipped = self.verified.as_ref().filter(|v| v.verdict == Verdict::Slipped).map(|v| v.seq);
        settled.into_iter().chain(reverted).chain(slipped)
    }

    /// Adds this step's spend to `days`: its own proposals, and its Gate 1
    /// verdicts' costs under the provider that answered them.
    fn add_spend(&self, days: &mut BTreeMap<NaiveDate, Day>) {
        let day = days.entry(self.started.date_naive()).or_default();
        let own = day.spend.entry(self.pick.provider.clone()).or_default();
        own.0 += usd_units(self.body.cost.usd);
        own.1 += self.body.cost.calls;
        for v in &self.body.gate1 {
            if let (Some(p), Some(c)) = (&v.provider, &v.cost) {
                let e = day.spend.entry(p.clone()).or_default();
                e.0 += usd_units(c.usd);
                e.1 += c.calls;
            }
            if v.by.starts_with("critic:") {
                *day.critic_calls.entry(v.by.clone()).or_default() += v.cost.as_ref().map_or(0, |c| c.calls);
            }
        }
    }
}

/// Counts for one provider.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    /// The sum in units of 10⁻¹² (utilities are rounded to 12 places), so
    /// that it does not depend on the order the steps were added in.
    #[serde(skip)]
    units: i128,
}

impl ProviderStats {
    fn add(&mut self, s: &Tally) {
        self.picks += 1;
        match s.outcome {
            Outcome::Merged => self.merged += 1,
            Outcome::Rejected => self.rejected += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Pending => self.pending += 1,
            Outcome::Noop | Outcome::Skipped => self.noop += 1,
        }
        if s.reverted {
            self.reverted += 1;
        }
        match s.verdict {
            Some(Verdict::Win) => self.won += 1,
            Some(Verdict::Slipped) => self.slipped += 1,
            _ => {}
        }
        if s.outcome.is_scored() {
            self.scored += 1;
            self.units += (s.utility.unwrap_or(0.0) * 1e12).round() as i128;
        }
    }
}

/// One event on a provider's trust ladder, in log order ([`History::trust_events`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustEvent {
    /// A scored step settled; `safe` when merged, checks passed, and
    /// neither reverted nor slipped (as the log stands now).
    Settled { safe: bool },
    /// A revert, or a verification that found the pain came back.
    Demoted,
    /// Compacted steps' events with none of the provider's kept steps'
    /// events between them: each reset the streak, `demotes` of them
    /// dropped a tier.
    Run { demotes: u32 },
}

/// The spend of one UTC day.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Day {
    /// By provider: (usd in units of 10⁻¹², calls), as proposer or as a
    /// Gate 1 answerer. Whole units, so the sum does not depend on order.
    spend: BTreeMap<String, (i128, u64)>,
    /// By critic (`critic:<name>`): calls.
    critic_calls: BTreeMap<String, u64>,
}

/// A run of compacted trust events of one provider, ending at `seq`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Run {
    seq: u64,
    provider: String,
    demotes: u32,
}

/// What compaction folded away: the aggregates of the steps no entry can
/// change any more.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Frozen {
    /// How many steps were folded away.
    steps: u64,
    /// Their statistics, by provider (the sums in `units`).
    stats: BTreeMap<String, ProviderStats>,
    /// Their utility sums, by provider, in units of 10⁻¹².
    units: BTreeMap<String, i128>,
    /// The spend of every step that left the recent window, by day.
    days: BTreeMap<NaiveDate, Day>,
    /// Their settlements and demotions, merged into runs, by seq (in the
    /// snapshot's packed part).
    #[serde(skip)]
    trust: Vec<Run>,
    /// The `next:` foci they took up, of steps still kept (a folded step's
    /// next steps are never offered again).
    taken: BTreeSet<String>,
}

/// The watchdog's inputs, kept as the fold goes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Watch {
    /// The latest merged entry: (seq, step id, when).
    last_merge: Option<(u64, String, DateTime<Utc>)>,
    /// Steps begun after it (all steps when there is none).
    since: u64,
}

/// The log's history.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct History {
    /// Kept steps, in the order of their first entries.
    steps: Vec<Step>,
    #[serde(skip)]
    index: HashMap<String, usize>,
    /// Aged merges that stand, in the order of their first entries (in the
    /// snapshot's packed part).
    #[serde(skip)]
    standing: Vec<Standing>,
    /// The packed bytes the standing merges' details are in ([`standing::Cold`]).
    #[serde(skip)]
    bulk: Vec<u8>,
    /// The standing merges whose id is not `s<first seq>`, by id (none
    /// that ratchet wrote).
    #[serde(skip)]
    odd: HashMap<String, u64>,
    first_ts: Option<DateTime<Utc>>,
    /// The rails version of the last `rails` or `intent` entry.
    last_rails: Option<String>,
    /// The base of the latest step that named one: (its first seq, base).
    last_base: Option<(u64, String)>,
    /// Providers of the latest [`PICKS`] picks, oldest first.
    picks: VecDeque<String>,
    watch: Watch,
    frozen: Frozen,
    /// Never compact (the loop page and the agents API show every step).
    keep_all: bool,
    /// The kept steps before this index have been aged: slimmed, their spend counted.
    aged: usize,
    /// Aged steps changed since the last pass over all of them.
    stale: usize,
}

impl History {
    /// An empty history that keeps every step whole.
    pub fn keep_all() -> History {
        History { keep_all: true, ..History::default() }
    }

    /// Builds the (compacting) history from entries in log order.
    pub fn from_events(events: impl IntoIterator<Item = Event>) -> History {
        let mut h = History::default();
        h.extend(events);
        h
    }

    /// Folds `events`, which follow what this history has seen, into it.
    pub fn extend(&mut self, events: impl IntoIterator<Item = Event>) {
        for e in events {
            self.apply(e);
        }
    }

    /// Folds one entry into the history.
    pub fn apply(&mut self, e: Event) {
        self.first_ts.get_or_insert(e.ts);
        match e.kind.as_str() {
            "step" => self.apply_step(e),
            "amend" => self.apply_amend(e),
            "rails" | "intent" => {
                #[derive(Deserialize)]
                struct Versioned {
                    rails: Option<String>,
                }
                if let Ok(Versioned { rails: Some(v) }) = serde_json::from_str::<Versioned>(&e.body) {
                    self.last_rails = Some(v);
                }
            }
            _ => {}
        }
    }

    fn apply_step(&mut self, e: Event) {
        let Ok(body) = serde_json::from_str::<StepBody>(&e.body) else { return };
        if !self.index.contains_key(&e.id) && self.find_standing(&e.id).is_some() {
            // A merge settled; no later step entry names it (see the module doc).
            return;
        }
        let merged = body.outcome == Outcome::Merged;
        let first_seq = match self.index.get(&e.id) {
            Some(&i) => {
                if i < self.aged {
                    self.stale += 1;
                }
                let s = &mut self.steps[i];
                s.last_seq = e.seq;
                s.finished = e.ts;
                s.body = body;
                s.at = e.at;
                s.first_seq
            }
            None => {
                self.index.insert(e.id.clone(), self.steps.len());
                self.picks.push_back(body.pick.provider.clone());
                if self.picks.len() > PICKS {
                    self.picks.pop_front();
                }
                self.watch.since += 1;
                self.steps.push(Step {
                    id: e.id.clone(),
                    first_seq: e.seq,
                    last_seq: e.seq,
                    started: e.ts,
                    finished: e.ts,
                    pick: body.pick.clone(),
                    body,
                    reverted: None,
                    verified: None,
                    amended: None,
                    costed: false,
                    at: e.at,
                });
                e.seq
            }
        };
        let i = self.index[&e.id];
        if let Some(base) = &self.steps[i].body.base {
            if self.last_base.as_ref().is_none_or(|(seq, _)| first_seq >= *seq) {
                self.last_base = Some((first_seq, base.clone()));
            }
        }
        if merged {
            self.watch.last_merge = Some((e.seq, e.id, e.ts));
            self.watch.since = 0;
        }
        if !self.keep_all && self.steps.len() - self.aged >= KEEP + BATCH {
            self.compact(if self.stale >= BATCH { 0 } else { self.aged }, e.ts.date_naive());
        }
    }

    fn apply_amend(&mut self, e: Event) {
        let Ok(a) = serde_json::from_str::<AmendBody>(&e.body) else { return };
        // The step amended: kept whole (or slimmed), or aged into a standing merge.
        let (kept, i) = match self.index.get(&a.step) {
            Some(&i) => (true, i),
            None => match self.find_standing(&a.step) {
                Some(i) => (false, i),
                None => return,
            },
        };
        if !kept || i < self.aged {
            self.stale += 1;
        }
        let (merged, verified, reverted) = if kept {
            let s = &self.steps[i];
            (s.outcome() == Outcome::Merged, s.verified.is_some(), s.reverted.is_some())
        } else {
            let m = &self.standing[i];
            (true, m.verified.is_some(), m.reverted.is_some())
        };
        match a.reason {
            crate::record::AmendReason::Verified => {
                if verified || !merged {
                    return;
                }
                let v = Verification {
                    seq: e.seq,
                    at: e.ts,
                    verdict: a.verified.unwrap_or(Verdict::Other),
                    pain: a.pain,
                    rates: a.rates,
                    window: a.window,
                    utility: a.utility,
                };
                if kept {
                    self.steps[i].verified = Some(v);
                    self.steps[i].amended = Some(a.utility);
                } else {
                    let m = &mut self.standing[i];
                    m.verified = Some((v.seq, v.verdict));
                    m.amended = Some(a.utility);
                    if let Some(d) = m.detail_mut(&self.bulk) {
                        d.verification = Some(v);
                    }
                }
            }
            crate::record::AmendReason::Revert => {
                if reverted {
                    return;
                }
                let r = Revert {
                    seq: e.seq,
                    at: e.ts,
                    hours: a.hours,
                    utility: a.utility,
                    capped: a.capped,
                    commit: a.commit,
                };
                if kept {
                    self.steps[i].reverted = Some(r);
                    self.steps[i].amended = Some(a.utility);
                } else {
                    let m = &mut self.standing[i];
                    m.reverted = Some(r.seq);
                    m.amended = Some(a.utility);
                    if let Some(d) = m.detail_mut(&self.bulk) {
                        d.revert = Some(r);
                    }
                }
            }
            crate::record::AmendReason::Other => {}
        }
    }

    /// Ages the kept steps from index `from` up to the recent window: folds
    /// those that are no longer open into [`Frozen`], slims the open ones.
    /// Runs when [`BATCH`] steps have left the window since the last time
    /// (from where it stopped), or over every kept step once [`BATCH`] aged
    /// steps have changed; always at the same points of the log, however
    /// the log is read.
    fn compact(&mut self, from: usize, today: NaiveDate) {
        let recent_from = self.steps.len().saturating_sub(KEEP);
        let mut runs = std::mem::take(&mut self.frozen.trust);
        let mut all = std::mem::take(&mut self.steps);
        let recent = all.split_off(recent_from);
        let aging = all.split_off(from);
        let mut kept = all;
        let mut taken = Vec::new();
        let mut fold = |f: &mut Frozen, provider: &str, focus: &str, tally: Tally, seqs: [Option<(u64, u32)>; 3]| {
            f.steps += 1;
            let st = f.stats.entry(provider.to_string()).or_default();
            st.units = f.units.get(provider).copied().unwrap_or_default();
            st.add(&tally);
            f.units.insert(provider.to_string(), st.units);
            if focus.starts_with("next:") {
                taken.push(focus.to_string());
            }
            runs.extend(seqs.into_iter().flatten().map(|(seq, demotes)| Run {
                seq,
                provider: provider.into(),
                demotes,
            }));
        };
        let mut moved = false;
        for mut s in aging {
            if s.outcome() != Outcome::Pending && !s.costed {
                s.add_spend(&mut self.frozen.days);
                s.costed = true;
            }
            if s.outcome() == Outcome::Pending {
                kept.push(s);
                continue;
            }
            if s.open() {
                self.index.remove(&s.id);
                if !standing::canonical(&s.id, s.first_seq) {
                    self.odd.insert(s.id.clone(), s.first_seq);
                }
                moved |= self.standing.last().is_some_and(|m| m.first_seq > s.first_seq);
                self.standing.push(Standing::of(s));
                continue;
            }
            self.index.remove(&s.id);
            let seqs = [
                s.outcome().is_scored().then_some((s.last_seq, 0)),
                s.reverted.as_ref().map(|r| (r.seq, 1)),
                s.verified.as_ref().filter(|v| v.verdict == Verdict::Slipped).map(|v| (v.seq, 1)),
            ];
            fold(&mut self.frozen, &s.pick.provider, &s.pick.focus, s.tally(), seqs);
        }
        // On a pass over everything, the reverted standing merges go too.
        let mut closed = false;
        if from == 0 {
            let (shut, open): (Vec<Standing>, Vec<Standing>) =
                std::mem::take(&mut self.standing).into_iter().partition(|m| m.reverted.is_some());
            self.standing = open;
            closed = !shut.is_empty();
            for m in shut {
                let seqs = [
                    Some((m.last_seq, 0)),
                    m.reverted.map(|seq| (seq, 1)),
                    m.verified.filter(|(_, v)| *v == Verdict::Slipped).map(|(seq, _)| (seq, 1)),
                ];
                let t = m.texts(&self.bulk);
                self.odd.remove(t.id);
                fold(&mut self.frozen, &m.provider, t.focus, m.tally(), seqs);
            }
        }
        self.aged = kept.len();
        kept.extend(recent);
        self.steps = kept;
        for (i, s) in self.steps.iter().enumerate().skip(from) {
            self.index.insert(s.id.clone(), i);
        }
        if moved || closed {
            self.standing.sort_by_key(|m| m.first_seq);
        }
        let marks = self
            .steps
            .iter()
            .flat_map(|s| s.trust_seqs().map(move |q| (s.pick.provider.as_str(), q)))
            .chain(self.standing.iter().flat_map(|m| m.trust_seqs().map(move |q| (&*m.provider, q))));
        self.frozen.trust = merge_runs(runs, marks);
        // A folded step's next steps are never offered again: only the foci
        // naming a step still kept can hide one.
        let mut all_taken = std::mem::take(&mut self.frozen.taken);
        let keeps = |focus: &str| {
            let id = focus.strip_prefix("next:").and_then(|f| f.rsplit_once('#')).map_or("", |(id, _)| id);
            self.index.contains_key(id) || self.find_standing(id).is_some()
        };
        if from == 0 {
            all_taken.retain(|f| keeps(f));
        }
        all_taken.extend(taken.into_iter().filter(|f| keeps(f)));
        self.frozen.taken = all_taken;
        // The budget asks about the day it is: older days are dropped.
        if let Some(cutoff) = today.checked_sub_days(chrono::Days::new(DAYS)) {
            self.frozen.days = self.frozen.days.split_off(&cutoff);
        }
        if from == 0 {
            self.stale = 0;
        }
    }

    /// Rebuilds the indexes of the kept steps (after a snapshot is read).
    pub(crate) fn reindex(&mut self) {
        self.index = self.steps.iter().enumerate().map(|(i, s)| (s.id.clone(), i)).collect();
    }

    /// The rails version the log last recorded (`rails` and `intent` entries).
    pub fn last_rails(&self) -> Option<&str> {
        self.last_rails.as_deref()
    }

    /// The base commit of the latest step that named one.
    pub fn last_base(&self) -> Option<&str> {
        self.last_base.as_ref().map(|(_, b)| b.as_str())
    }

    /// Every provider's trust events, in log order: the kept steps'
    /// settlements, reverts and slips, and the compacted runs.
    pub fn trust_events(&self) -> Vec<(u64, &str, TrustEvent)> {
        let mut out: Vec<(u64, &str, TrustEvent)> = self
            .frozen
            .trust
            .iter()
            .map(|r| (r.seq, r.provider.as_str(), TrustEvent::Run { demotes: r.demotes }))
            .collect();
        for m in &self.standing {
            let p = &*m.provider;
            out.push((m.last_seq, p, TrustEvent::Settled { safe: m.ci_pass && m.reverted.is_none() && !m.slipped() }));
            if let Some(seq) = m.reverted {
                out.push((seq, p, TrustEvent::Demoted));
            }
            if let Some((seq, _)) = m.verified.filter(|(_, v)| *v == Verdict::Slipped) {
                out.push((seq, p, TrustEvent::Demoted));
            }
        }
        for s in &self.steps {
            let p = s.pick.provider.as_str();
            if s.outcome().is_scored() {
                let safe = s.outcome() == Outcome::Merged && s.ci_pass() && s.reverted.is_none() && !s.slipped();
                out.push((s.last_seq, p, TrustEvent::Settled { safe }));
            }
            if let Some(r) = &s.reverted {
                out.push((r.seq, p, TrustEvent::Demoted));
            }
            if let Some(v) = s.verified.as_ref().filter(|v| v.verdict == Verdict::Slipped) {
                out.push((v.seq, p, TrustEvent::Demoted));
            }
        }
        out.sort_by_key(|(seq, _, _)| *seq);
        out
    }

    /// Every provider that has made a pick.
    pub fn providers(&self) -> BTreeSet<&str> {
        let mut out: BTreeSet<&str> = self.frozen.stats.keys().map(String::as_str).collect();
        out.extend(self.steps.iter().map(|s| s.pick.provider.as_str()));
        out.extend(self.standing.iter().map(|m| &*m.provider));
        out
    }

    /// When the log began.
    pub fn first_ts(&self) -> Option<DateTime<Utc>> {
        self.first_ts
    }

    /// The latest merge: its step id and when it was logged.
    pub fn last_merge(&self) -> Option<(&str, DateTime<Utc>)> {
        self.watch.last_merge.as_ref().map(|(_, id, at)| (id.as_str(), *at))
    }

    /// How many steps began after the latest merge (all of them without one).
    pub fn steps_since_merge(&self) -> u64 {
        self.watch.since
    }

    /// The history in `journal`: carried forward from the snapshot in
    /// ratchet's private directory when it verifies, else read from the
    /// first entry (see [`snapshot`]).
    pub fn read(journal: &crate::journal::Journal) -> Result<History, crate::journal::JournalError> {
        snapshot::read(journal)
    }

    /// Every step of `journal`, whole, read from the first entry.
    pub fn read_all(journal: &crate::journal::Journal) -> Result<History, crate::journal::JournalError> {
        let mut h = History::keep_all();
        h.fold_entries(journal.raw_entries()?)?;
        Ok(h)
    }

    /// The (compacting) history of checked entries, in log order.
    pub fn from_entries(
        entries: impl IntoIterator<Item = Result<crate::journal::RawEntry, crate::journal::JournalError>>,
    ) -> Result<History, crate::journal::JournalError> {
        let mut h = History::default();
        h.fold_entries(entries)?;
        Ok(h)
    }

    /// Folds checked entries that follow what this history has seen.
    pub fn fold_entries(
        &mut self,
        entries: impl IntoIterator<Item = Result<crate::journal::RawEntry, crate::journal::JournalError>>,
    ) -> Result<(), crate::journal::JournalError> {
        for e in entries {
            let e = e?;
            self.apply(Event {
                seq: e.seq,
                ts: crate::clock::parse(&e.ts).unwrap_or_default(),
                kind: e.kind.as_str().to_string(),
                id: e.id,
                body: e.body,
                at: Some(Place { end: e.end, hash: e.hash }),
            });
        }
        Ok(())
    }

    /// The kept steps, in the order of their first entries: the older ones
    /// still pending, then the latest [`KEEP`]. The older merges that stand
    /// are [`History::merges`]. With [`History::keep_all`], every step.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// A kept step ([`History::steps`]); an older merge is [`History::merge`] or [`History::load_step`].
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.index.get(id).map(|&i| &self.steps[i])
    }

    /// The merges that stand (merged, not reverted), kept whole or aged, in
    /// the order of their first entries.
    pub fn merges(&self) -> Vec<Merge<'_>> {
        let mut out: Vec<Merge<'_>> =
            self.standing.iter().filter(|m| m.reverted.is_none()).map(|m| m.merge(&self.bulk)).collect();
        out.extend(self.steps.iter().filter(|s| s.stands()).map(Step::merge));
        if !out.is_sorted_by_key(|m| m.first_seq) {
            out.sort_by_key(|m| m.first_seq);
        }
        out
    }

    /// The merge that stands under `id`, kept whole or aged.
    pub fn merge(&self, id: &str) -> Option<Merge<'_>> {
        match self.step(id) {
            Some(s) => s.stands().then(|| s.merge()),
            None => {
                let m = &self.standing[self.find_standing(id)?];
                m.reverted.is_none().then(|| m.merge(&self.bulk))
            }
        }
    }

    /// The step `id` whole: a kept one, or an aged merge read again from its
    /// entry in `journal` (the line at the place the fold kept, checked
    /// against its hash: `LOG_TAMPERED` when another line is there now).
    pub fn load_step(
        &self,
        journal: &crate::journal::Journal,
        id: &str,
    ) -> Result<Option<Step>, crate::journal::JournalError> {
        if let Some(s) = self.step(id) {
            return Ok(Some(s.clone()));
        }
        let Some(m) = self.find_standing(id).map(|i| &self.standing[i]) else { return Ok(None) };
        let Some(d) = m.detail(&self.bulk) else { return Ok(None) };
        let Some(at) = d.at else { return Ok(None) };
        let tampered = |reason: String| crate::journal::JournalError::Tampered {
            file: journal.paths().log_label.clone(),
            line: m.last_seq,
            reason,
        };
        let head = crate::journal::Head { seq: m.last_seq, hash: at.hash, size: at.end };
        let Some(entry) = journal.raw_entry_at(head)? else {
            return Err(tampered(format!(
                "the entry of step {} is no longer the one folded into the history; run `ratchet log verify`",
                crate::text::show(id)
            )));
        };
        let body = serde_json::from_str::<StepBody>(&entry.body)
            .map_err(|e| tampered(format!("the entry of step {} is not a step: {e}", crate::text::show(id))))?;
        Ok(Some(Step {
            id: d.id,
            first_seq: m.first_seq,
            last_seq: m.last_seq,
            started: d.started,
            finished: m.finished,
            pick: body.pick.clone(),
            body,
            reverted: d.revert,
            verified: d.verification,
            amended: m.amended,
            costed: true,
            at: d.at,
        }))
    }

    /// Providers of the latest [`PICKS`] picks, oldest first.
    pub fn picks(&self) -> Vec<String> {
        self.picks.iter().cloned().collect()
    }

    pub fn provider_stats(&self) -> BTreeMap<String, ProviderStats> {
        let mut out = self.frozen.stats.clone();
        for (p, st) in out.iter_mut() {
            st.units = self.frozen.units.get(p).copied().unwrap_or_default();
        }
        for s in &self.steps {
            out.entry(s.pick.provider.clone()).or_default().add(&s.tally());
        }
        for m in &self.standing {
            match out.get_mut(&*m.provider) {
                Some(st) => st.add(&m.tally()),
                None => out.entry(m.provider.to_string()).or_default().add(&m.tally()),
            }
        }
        for st in out.values_mut() {
            st.utility_sum = crate::score::round(st.units as f64 / 1e12);
            st.mean_utility = (st.scored > 0).then(|| crate::score::round(st.utility_sum / st.scored as f64));
        }
        out
    }

    /// Spend and calls of `provider` on the UTC day of `now`: its own
    /// proposals, and its answers as a critic.
    pub fn cost_on_day(&self, provider: &str, now: DateTime<Utc>) -> (f64, u64) {
        let day = now.date_naive();
        let mut days = BTreeMap::new();
        for s in self.steps.iter().filter(|s| !s.costed && s.started.date_naive() == day) {
            s.add_spend(&mut days);
        }
        let frozen = self.frozen.days.get(&day).and_then(|d| d.spend.get(provider)).copied().unwrap_or_default();
        let live = days.get(&day).and_then(|d| d.spend.get(provider)).copied().unwrap_or_default();
        ((frozen.0 + live.0) as f64 / 1e12, frozen.1 + live.1)
    }

    /// Calls made to critic `name` on the UTC day of `now`.
    pub fn critic_calls_on_day(&self, name: &str, now: DateTime<Utc>) -> u64 {
        let day = now.date_naive();
        let by = format!("critic:{name}");
        let frozen = self.frozen.days.get(&day).and_then(|d| d.critic_calls.get(&by)).copied().unwrap_or_default();
        let live: u64 = self
            .steps
            .iter()
            .filter(|s| !s.costed && s.started.date_naive() == day)
            .flat_map(|s| s.body.gate1.iter())
            .filter(|v| v.by == by)
            .map(|v| v.cost.as_ref().map_or(0, |c| c.calls))
            .sum();
        frozen + live
    }

    /// Next steps left by merged steps and not yet taken up as a focus,
    /// newest first: (`next:<id>#<n>`, text).
    pub fn open_next_steps(&self) -> Vec<(String, String)> {
        let standing: Vec<_> = self.standing.iter().map(|m| (m, m.texts(&self.bulk))).collect();
        let used: std::collections::HashSet<&str> =
            self.steps.iter().map(|s| s.pick.focus.as_str()).chain(standing.iter().map(|(_, t)| t.focus)).collect();
        // The merges that stand, with their next steps, newest first.
        let mut merges: Vec<(u64, &str, Vec<&str>)> = standing
            .iter()
            .filter(|(m, _)| m.reverted.is_none())
            .map(|(m, t)| (m.first_seq, t.id, t.next_steps()))
            .collect();
        merges.extend(self.steps.iter().filter(|s| s.stands()).map(|s| {
            let next = s.body.proposal.as_ref().map(|p| p.next_steps.iter().map(String::as_str).collect());
            (s.first_seq, s.id.as_str(), next.unwrap_or_default())
        }));
        merges.sort_by_key(|(seq, _, _)| std::cmp::Reverse(*seq));
        let mut out = Vec::new();
        for (_, id, next) in merges {
            for (n, text) in next.into_iter().enumerate() {
                let focus = format!("next:{id}#{n}");
                if !used.contains(focus.as_str()) && !self.frozen.taken.contains(&focus) {
                    out.push((focus, text.to_string()));
                }
            }
        }
        out
    }

    /// The merges that stand, by commit id.
    pub fn merged_commits(&self) -> HashMap<&str, Merge<'_>> {
        self.merges().into_iter().filter_map(|m| m.commit.map(|c| (c, m))).collect()
    }

    /// The steps still waiting for a human.
    pub fn pending(&self) -> Vec<&Step> {
        self.steps.iter().filter(|s| s.outcome() == Outcome::Pending).collect()
    }
}

#[cfg(test)]
impl History {
    /// The whole state, as one string to compare: its JSON and its packed part.
    pub(crate) fn fingerprint(&self) -> String {
        format!("{}\n{}", serde_json::to_string(self).unwrap(), const_hex::encode(self.pack()))
    }
}

/// Dollars in units of 10⁻¹².
fn usd_units(usd: f64) -> i128 {
    (usd * 1e12).round() as i128
}

/// Merges the compacted trust events of each provider that no kept step's
/// event separates, so the runs stay about as many as the kept steps.
fn merge_runs<'a>(mut runs: Vec<Run>, kept: impl Iterator<Item = (&'a str, u64)>) -> Vec<Run> {
    runs.sort_by_key(|r| r.seq);
    let mut marks: HashMap<&str, Vec<u64>> = HashMap::new();
    for (provider, seq) in kept {
        marks.entry(provider).or_default().push(seq);
    }
    for m in marks.values_mut() {
        m.sort_unstable();
    }
    let mut out: Vec<Run> = Vec::with_capacity(runs.len());
    let mut last: HashMap<String, usize> = HashMap::new();
    for r in runs {
        if let Some(&i) = last.get(&r.provider) {
            let (from, to) = (out[i].seq, r.seq);
            let between = marks.get(r.provider.as_str()).is_some_and(|m| {
                let k = m.partition_point(|&s| s <= from);
                m.get(k).is_some_and(|&s| s < to)
            });
            if !between {
                out[i].seq = to;
                out[i].demotes += r.demotes;
                continue;
            }
        }
        last.insert(r.provider.clone(), out.len());
        out.push(r);
    }
    out.sort_by_key(|r| r.seq);
    out
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
            passage: None,
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
                at: None,
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
            self.amend(seq, &a, hour)
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
            self.amend(seq, &a, hour)
        }
        fn amend(&mut self, seq: u64, a: &AmendBody, hour: i64) -> &mut Self {
            self.0.push(Event {
                seq,
                id: format!("a{seq}"),
                ts: t(hour),
                kind: "amend".into(),
                body: serde_json::to_string(a).unwrap(),
                at: None,
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
        let demoted: Vec<_> = h.trust_events().into_iter().filter(|e| e.2 == TrustEvent::Demoted).collect();
        assert_eq!(demoted, vec![(4, "ollama", TrustEvent::Demoted)], "the slip of s2 demotes");
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

    /// The sample log's entries as history reads them.
    pub(crate) fn sample_events(n: u64, seed: u64) -> Vec<Event> {
        crate::journal::sample::entries(n, seed)
            .enumerate()
            .map(|(i, e)| Event {
                seq: i as u64 + 1,
                id: e.id,
                ts: crate::clock::parse(&e.ts).unwrap(),
                kind: e.kind.as_str().to_string(),
                body: serde_json::to_string(&e.body).unwrap(),
                at: None,
            })
            .collect()
    }

    /// Every answer the history gives, as one value to compare.
    pub(crate) fn answers(h: &History, now: DateTime<Utc>) -> serde_json::Value {
        let trust = crate::rails::parse(include_str!("../../config/rails.toml"), "").unwrap().trust;
        let watchdog = crate::rails::Watchdog { max_steps_without_merge: 50, max_hours_without_merge: 72.0 };
        let tail =
            |n: usize| h.steps().iter().rev().take(n).map(|s| serde_json::to_value(s).unwrap()).collect::<Vec<_>>();
        let mut merged: Vec<_> =
            h.merged_commits().into_iter().map(|(c, s)| (c.to_string(), s.id.to_string())).collect();
        let merges: Vec<_> = h
            .merges()
            .iter()
            .map(|m| {
                (
                    m.id,
                    m.first_seq,
                    m.last_seq,
                    m.finished,
                    m.provider,
                    m.focus,
                    m.commit,
                    m.path,
                    m.utility,
                    m.verified,
                )
            })
            .map(|m| serde_json::to_value(m).unwrap())
            .collect();
        merged.sort();
        let costs: Vec<_> = ["self", "ollama", "heartbeat", "human"]
            .iter()
            .flat_map(|p| (0..3).map(move |d| (*p, d)))
            .map(|(p, d)| h.cost_on_day(p, now - chrono::Duration::days(d)))
            .collect();
        serde_json::json!({
            "stats": h.provider_stats(),
            "tiers": crate::trust::tiers(h, &trust),
            "watchdog": crate::watchdog::reading(h, &watchdog, now),
            "next": h.open_next_steps(),
            "pending": h.pending().iter().map(|s| serde_json::to_value(s).unwrap()).collect::<Vec<_>>(),
            "merged": merged,
            "merges": merges,
            "picks": h.picks().iter().rev().take(PICKS).cloned().collect::<Vec<_>>(),
            "recent": tail(KEEP),
            "costs": costs,
            "critic": h.critic_calls_on_day("review", now),
            "rails": h.last_rails(),
            "base": h.last_base(),
            "first": h.first_ts(),
        })
    }

    #[test]
    fn a_compacted_history_answers_as_the_whole_one_does() {
        for (n, seed) in [(300, 1), (5_000, 7), (20_000, 42)] {
            let events = sample_events(n, seed);
            let now = events.last().unwrap().ts;
            let bounded = History::from_events(events.clone());
            let mut whole = History::keep_all();
            whole.extend(events);
            assert_eq!(whole.frozen.steps, 0, "the whole history keeps every step");
            if n > 1_000 {
                assert!(bounded.frozen.steps > 0, "{n} entries: the history is compacted");
            }
            if n >= 20_000 {
                assert!(bounded.steps().len() * 4 < whole.steps().len(), "{n} entries: most steps folded away");
            }
            // Every kept step is the whole one, or its slimmed copy.
            for s in bounded.steps() {
                let w = whole.step(&s.id).expect("a kept step is a step");
                assert_eq!(
                    (s.first_seq, s.last_seq, s.outcome(), s.utility()),
                    (w.first_seq, w.last_seq, w.outcome(), w.utility())
                );
            }
            let (a, b) = (answers(&bounded, now), answers(&whole, now));
            // Whole steps serialise with their texts; compare those of the recent window only.
            assert_eq!(a["recent"], b["recent"], "{n}: the recent steps");
            for key in [
                "stats", "tiers", "watchdog", "next", "pending", "merged", "merges", "picks", "costs", "critic",
                "rails", "base", "first",
            ] {
                assert_eq!(a[key], b[key], "{n} entries, seed {seed}: {key}");
            }
        }
    }

    #[test]
    fn a_history_carried_forward_equals_one_folded_from_the_first_entry() {
        let events = sample_events(20_000, 3);
        let scratch = History::from_events(events.clone()).fingerprint();
        for cut in [1, 500, 600, 601, 7_777, 19_999, 20_000] {
            let mut h = History::from_events(events[..cut].iter().cloned());
            // Through the snapshot's bytes and back, as a later command reads it.
            let mut h2: History = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
            h2.unpack(h.pack(), 0).unwrap();
            h2.extend(events[cut..].iter().cloned());
            h.extend(events[cut..].iter().cloned());
            assert_eq!(h2.fingerprint(), scratch, "cut at {cut}");
            assert_eq!(h.fingerprint(), scratch, "cut at {cut}, in memory");
        }
    }

    #[test]
    fn steps_named_otherwise_than_by_their_first_seq_are_found_all_the_same() {
        // The sample with every step id renamed (`s42` → `k42`), the
        // amendments and `next:` foci that name them too.
        let rename = |id: &str| format!("k{}", id.trim_start_matches('s'));
        let events: Vec<Event> = sample_events(20_000, 9)
            .into_iter()
            .map(|mut e| {
                let mut body: serde_json::Value = serde_json::from_str(&e.body).unwrap();
                match e.kind.as_str() {
                    "step" => {
                        e.id = rename(&e.id);
                        let focus = body["pick"]["focus"].as_str().unwrap_or_default().to_string();
                        if let Some(rest) = focus.strip_prefix("next:") {
                            body["pick"]["focus"] = format!("next:{}", rename(rest)).into();
                        }
                    }
                    "amend" => body["step"] = rename(body["step"].as_str().unwrap()).into(),
                    _ => {}
                }
                e.body = body.to_string();
                e
            })
            .collect();
        let now = events.last().unwrap().ts;
        let bounded = History::from_events(events.clone());
        assert!(bounded.standing.len() > 100 && bounded.odd.len() == bounded.standing.len());
        let mut whole = History::keep_all();
        whole.extend(events.clone());
        let (a, b) = (answers(&bounded, now), answers(&whole, now));
        for key in ["stats", "tiers", "next", "merged", "merges"] {
            assert_eq!(a[key], b[key], "{key}");
        }
        let aged = &bounded.standing[0];
        let id = aged.texts(&bounded.bulk).id.to_string();
        assert!(id.starts_with('k') && bounded.merge(&id).is_some());
        // Through the snapshot's bytes and back, then carried forward.
        let mut h = History::from_events(events[..12_345].iter().cloned());
        let mut h2: History = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
        h2.unpack(h.pack(), 0).unwrap();
        assert_eq!(h2.odd, h.odd);
        h.extend(events[12_345..].iter().cloned());
        h2.extend(events[12_345..].iter().cloned());
        assert_eq!(h2.fingerprint(), bounded.fingerprint());
        assert_eq!(h.fingerprint(), bounded.fingerprint());
    }
}

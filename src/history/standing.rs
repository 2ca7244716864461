//! The merges that stand, once aged out of the recent window: compact
//! records that a snapshot reads without allocating a thing for each.
//!
//! A merge that stands can still be reverted or verified, so it cannot be
//! folded into the aggregates; at a million entries there are about twelve
//! thousand of them. What the statistics and the trust ladder read of each
//! (its seqs, provider, utility, checks, verdict, revert) is kept as plain
//! values. The rest — its id, focus, commit, path, next steps, the detail
//! of its amendments, where its entry is in the log — is [`Cold`]: left as
//! the bytes it was read from in the snapshot's packed part ([`History`]'s
//! `bulk`), checked once when the snapshot is read, and read as borrowed
//! text only when a query asks for it (the telemetry window, next steps,
//! reverts found in git), or made whole when an amendment changes it.
//!
//! Steps are found by id through their first seq (the journal names a step
//! `s<seq of its first entry>`), with a scan for any other id, so no index
//! of the ids has to be built either.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::packed::{Reader, Writer};
use super::{History, Merge, Outcome, Place, Revert, Step, Tally, Verdict, Verification};

#[derive(Clone, Debug)]
pub(super) struct Standing {
    pub first_seq: u64,
    pub last_seq: u64,
    /// When the merge was logged.
    pub finished: DateTime<Utc>,
    pub provider: Arc<str>,
    /// The utility the step was scored with.
    pub utility: Option<f64>,
    pub amended: Option<f64>,
    pub ci_pass: bool,
    /// The first verification: its seq and verdict.
    pub verified: Option<(u64, Verdict)>,
    /// The revert's seq; the record is folded away at the next pass.
    pub reverted: Option<u64>,
    pub cold: Cold,
}

/// What only some queries read of a standing merge.
#[derive(Clone, Debug)]
pub(super) enum Cold {
    /// Bytes `start..end` of the history's `bulk`, checked when read.
    Packed {
        start: usize,
        end: usize,
    },
    Owned(Box<Detail>),
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Detail {
    pub id: String,
    pub started: DateTime<Utc>,
    pub focus: String,
    pub commit: Option<String>,
    pub path: Option<String>,
    pub next_steps: Vec<String>,
    pub verification: Option<Verification>,
    pub revert: Option<Revert>,
    pub at: Option<Place>,
}

/// The texts of a [`Detail`], borrowed.
pub(super) struct Texts<'a> {
    pub id: &'a str,
    pub focus: &'a str,
    pub commit: Option<&'a str>,
    pub path: Option<&'a str>,
    /// The next steps, packed ([`Texts::next_steps`]).
    next: Next<'a>,
}

enum Next<'a> {
    Packed(u64, &'a [u8]),
    Owned(&'a [String]),
}

impl<'a> Texts<'a> {
    pub fn next_steps(&self) -> Vec<&'a str> {
        match self.next {
            Next::Owned(v) => v.iter().map(String::as_str).collect(),
            Next::Packed(n, bytes) => {
                let mut r = Reader::new(bytes);
                (0..n).map_while(|_| r.str()).collect()
            }
        }
    }
}

pub(super) fn pack_time(w: &mut Writer, t: DateTime<Utc>) {
    w.i(t.timestamp());
    w.u(u64::from(t.timestamp_subsec_nanos()));
}

pub(super) fn unpack_time(r: &mut Reader<'_>) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(r.i()?, u32::try_from(r.u()?).ok()?)
}

const VERDICTS: [Verdict; 4] = [Verdict::Win, Verdict::Slipped, Verdict::Unmeasured, Verdict::Other];

fn pack_verdict(v: Verdict) -> u64 {
    VERDICTS.iter().position(|x| *x == v).unwrap_or(3) as u64
}

fn unpack_verdict(r: &mut Reader<'_>) -> Option<Verdict> {
    VERDICTS.get(usize::try_from(r.u()?).ok()?).copied()
}

impl Detail {
    fn pack(&self, w: &mut Writer) {
        w.s(&self.id);
        pack_time(w, self.started);
        w.s(&self.focus);
        w.opt_s(self.commit.as_deref());
        w.opt_s(self.path.as_deref());
        w.u(self.next_steps.len() as u64);
        for t in &self.next_steps {
            w.s(t);
        }
        w.flag(self.verification.is_some());
        if let Some(v) = &self.verification {
            w.u(v.seq);
            pack_time(w, v.at);
            w.u(pack_verdict(v.verdict));
            w.opt_s(v.pain.as_deref());
            w.flag(v.rates.is_some());
            if let Some(r) = &v.rates {
                w.f(r.before);
                w.f(r.after);
                w.f(r.latest);
            }
            w.opt_s(v.window.as_deref());
            w.f(v.utility);
        }
        w.flag(self.revert.is_some());
        if let Some(r) = &self.revert {
            w.u(r.seq);
            pack_time(w, r.at);
            w.f(r.hours);
            w.f(r.utility);
            w.flag(r.capped);
            w.opt_s(r.commit.as_deref());
        }
        w.flag(self.at.is_some());
        if let Some(at) = &self.at {
            w.u(at.end);
            w.bytes(&at.hash);
        }
    }

    /// The texts at the front of packed detail bytes.
    fn texts(bytes: &[u8]) -> Option<(Texts<'_>, Reader<'_>)> {
        let mut r = Reader::new(bytes);
        let id = r.str()?;
        unpack_time(&mut r)?;
        let focus = r.str()?;
        let (commit, path) = (r.opt_str()?, r.opt_str()?);
        let n = r.u()?;
        let from = r.rest();
        for _ in 0..n {
            r.str()?;
        }
        let next = Next::Packed(n, &from[..from.len() - r.rest().len()]);
        Some((Texts { id, focus, commit, path, next }, r))
    }

    /// Packed detail bytes made whole; `None` unless they are exactly one detail.
    fn unpack(bytes: &[u8]) -> Option<Detail> {
        let mut r = Reader::new(bytes);
        let id = r.s()?;
        let started = unpack_time(&mut r)?;
        let focus = r.s()?;
        let (commit, path) = (r.opt_s()?, r.opt_s()?);
        let n = r.u()?;
        let mut next_steps = Vec::new();
        for _ in 0..n {
            next_steps.push(r.s()?);
        }
        let verification = if r.flag()? {
            Some(Verification {
                seq: r.u()?,
                at: unpack_time(&mut r)?,
                verdict: unpack_verdict(&mut r)?,
                pain: r.opt_s()?,
                rates: if r.flag()? {
                    Some(crate::record::Rates { before: r.f()?, after: r.f()?, latest: r.f()? })
                } else {
                    None
                },
                window: r.opt_s()?,
                utility: r.f()?,
            })
        } else {
            None
        };
        let revert = if r.flag()? {
            Some(Revert {
                seq: r.u()?,
                at: unpack_time(&mut r)?,
                hours: r.f()?,
                utility: r.f()?,
                capped: r.flag()?,
                commit: r.opt_s()?,
            })
        } else {
            None
        };
        let at = if r.flag()? { Some(Place { end: r.u()?, hash: r.bytes()?.try_into().ok()? }) } else { None };
        r.is_empty().then_some(Detail { id, started, focus, commit, path, next_steps, verification, revert, at })
    }

    /// Whether packed detail bytes read as one detail, without keeping anything.
    fn check(bytes: &[u8]) -> bool {
        let Some((_, mut r)) = Detail::texts(bytes) else { return false };
        let mut rest = || -> Option<()> {
            if r.flag()? {
                let _ = (r.u()?, unpack_time(&mut r)?, unpack_verdict(&mut r)?, r.opt_str()?);
                if r.flag()? {
                    let _ = (r.f()?, r.f()?, r.f()?);
                }
                let _ = (r.opt_str()?, r.f()?);
            }
            if r.flag()? {
                let _ = (r.u()?, unpack_time(&mut r)?, r.f()?, r.f()?, r.flag()?, r.opt_str()?);
            }
            if r.flag()? {
                r.u()?;
                (r.bytes()?.len() == 32).then_some(())?;
            }
            r.is_empty().then_some(())
        };
        rest().is_some()
    }
}

impl Standing {
    pub fn of(s: Step) -> Standing {
        let ci_pass = s.ci_pass();
        let (path, next_steps) = match s.body.proposal {
            Some(p) => (Some(p.path), p.next_steps),
            None => (None, Vec::new()),
        };
        Standing {
            first_seq: s.first_seq,
            last_seq: s.last_seq,
            finished: s.finished,
            provider: Arc::from(s.pick.provider.as_str()),
            utility: s.body.utility,
            amended: s.amended,
            ci_pass,
            verified: s.verified.as_ref().map(|v| (v.seq, v.verdict)),
            reverted: s.reverted.as_ref().map(|r| r.seq),
            cold: Cold::Owned(Box::new(Detail {
                id: s.id,
                started: s.started,
                focus: s.pick.focus,
                commit: s.body.apply.and_then(|a| a.commit),
                path,
                next_steps,
                verification: s.verified,
                revert: s.reverted,
                at: s.at,
            })),
        }
    }

    /// Its texts; `bulk` is the history's.
    pub fn texts<'a>(&'a self, bulk: &'a [u8]) -> Texts<'a> {
        match &self.cold {
            Cold::Owned(d) => Texts {
                id: &d.id,
                focus: &d.focus,
                commit: d.commit.as_deref(),
                path: d.path.as_deref(),
                next: Next::Owned(&d.next_steps),
            },
            // Checked when the snapshot was read; an empty record otherwise.
            Cold::Packed { start, end } => match bulk.get(*start..*end).and_then(Detail::texts) {
                Some((t, _)) => t,
                None => Texts { id: "", focus: "", commit: None, path: None, next: Next::Owned(&[]) },
            },
        }
    }

    /// Its detail, whole.
    pub fn detail(&self, bulk: &[u8]) -> Option<Detail> {
        match &self.cold {
            Cold::Owned(d) => Some((**d).clone()),
            Cold::Packed { start, end } => Detail::unpack(bulk.get(*start..*end)?),
        }
    }

    /// Its detail, made whole in place to be changed.
    pub fn detail_mut(&mut self, bulk: &[u8]) -> Option<&mut Detail> {
        if let Cold::Packed { .. } = self.cold {
            self.cold = Cold::Owned(Box::new(self.detail(bulk)?));
        }
        match &mut self.cold {
            Cold::Owned(d) => Some(d),
            Cold::Packed { .. } => None,
        }
    }

    pub fn merge<'a>(&'a self, bulk: &'a [u8]) -> Merge<'a> {
        let t = self.texts(bulk);
        Merge {
            id: t.id,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            finished: self.finished,
            provider: &self.provider,
            focus: t.focus,
            commit: t.commit,
            path: t.path,
            utility: self.amended.or(self.utility),
            verified: self.verified.is_some(),
        }
    }

    pub fn slipped(&self) -> bool {
        self.verified.is_some_and(|(_, v)| v == Verdict::Slipped)
    }

    /// Its events on the trust ladder, as [`Step::trust_seqs`].
    pub fn trust_seqs(&self) -> impl Iterator<Item = u64> + '_ {
        let slipped = self.verified.filter(|(_, v)| *v == Verdict::Slipped).map(|(seq, _)| seq);
        std::iter::once(self.last_seq).chain(self.reverted).chain(slipped)
    }

    pub fn tally(&self) -> Tally {
        Tally {
            outcome: Outcome::Merged,
            reverted: self.reverted.is_some(),
            verdict: self.verified.map(|(_, v)| v),
            utility: self.amended.or(self.utility),
        }
    }

    fn pack(&self, w: &mut Writer, bulk: &[u8]) {
        w.u(self.first_seq);
        w.u(self.last_seq);
        pack_time(w, self.finished);
        w.s(&self.provider);
        w.opt_f(self.utility);
        w.opt_f(self.amended);
        w.flag(self.ci_pass);
        w.flag(self.verified.is_some());
        if let Some((seq, v)) = self.verified {
            w.u(seq);
            w.u(pack_verdict(v));
        }
        w.flag(self.reverted.is_some());
        if let Some(seq) = self.reverted {
            w.u(seq);
        }
        match &self.cold {
            Cold::Packed { start, end } => w.bytes(&bulk[*start..*end]),
            Cold::Owned(d) => {
                let mut inner = Writer::default();
                d.pack(&mut inner);
                w.bytes(&inner.0);
            }
        }
    }

    /// One record of `bulk` at the reader, its detail left packed (and checked).
    fn unpack(r: &mut Reader<'_>, bulk: &[u8], providers: &mut Vec<Arc<str>>) -> Option<Standing> {
        let (first_seq, last_seq, finished) = (r.u()?, r.u()?, unpack_time(r)?);
        let name = r.str()?;
        let provider = match providers.iter().find(|p| &***p == name) {
            Some(p) => p.clone(),
            None => {
                providers.push(Arc::from(name));
                providers.last()?.clone()
            }
        };
        let (utility, amended, ci_pass) = (r.opt_f()?, r.opt_f()?, r.flag()?);
        let verified = if r.flag()? { Some((r.u()?, unpack_verdict(r)?)) } else { None };
        let reverted = if r.flag()? { Some(r.u()?) } else { None };
        let cold = r.bytes()?;
        let start = bulk.len() - r.rest().len() - cold.len();
        if !Detail::check(cold) {
            return None;
        }
        let cold = Cold::Packed { start, end: start + cold.len() };
        Some(Standing { first_seq, last_seq, finished, provider, utility, amended, ci_pass, verified, reverted, cold })
    }
}

/// Whether `id` is the one the journal gives a step whose first entry is `seq`.
pub(super) fn canonical(id: &str, seq: u64) -> bool {
    id.strip_prefix('s').is_some_and(|n| n.parse::<u64>() == Ok(seq) && (n == "0" || !n.starts_with('0')))
}

impl History {
    /// The index of the standing merge `id`: found by its first seq when
    /// the id is `s<seq>`, else by a scan.
    pub(super) fn find_standing(&self, id: &str) -> Option<usize> {
        let seq = match self.odd.get(id) {
            Some(&seq) => seq,
            None => id.strip_prefix('s').and_then(|n| n.parse::<u64>().ok()).filter(|&seq| canonical(id, seq))?,
        };
        let i = self.standing.binary_search_by_key(&seq, |m| m.first_seq).ok()?;
        (self.standing[i].texts(&self.bulk).id == id).then_some(i)
    }

    /// The parts that grow with the log, packed ([`super::packed`]): the
    /// merges that stand and the compacted trust runs.
    pub(crate) fn pack(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u(self.standing.len() as u64);
        for m in &self.standing {
            m.pack(&mut w, &self.bulk);
        }
        w.u(self.frozen.trust.len() as u64);
        for r in &self.frozen.trust {
            w.u(r.seq);
            w.s(&r.provider);
            w.u(u64::from(r.demotes));
        }
        w.0
    }

    /// Takes what [`History::pack`] wrote, the bytes of `bytes` from
    /// `from` on (kept as they are: the merges' details are read from them
    /// in place), and rebuilds the index of the kept steps; `None` when
    /// the bytes are not that.
    pub(crate) fn unpack(&mut self, bytes: Vec<u8>, from: usize) -> Option<()> {
        let mut r = Reader::new(bytes.get(from..)?);
        let n = r.u()?;
        let mut standing = Vec::new();
        let mut providers = Vec::new();
        let mut odd = std::collections::HashMap::new();
        for _ in 0..n {
            let m = Standing::unpack(&mut r, &bytes, &mut providers)?;
            let id = m.texts(&bytes).id;
            if !canonical(id, m.first_seq) {
                odd.insert(id.to_string(), m.first_seq);
            }
            standing.push(m);
        }
        let n = r.u()?;
        let mut trust = Vec::new();
        for _ in 0..n {
            trust.push(super::Run { seq: r.u()?, provider: r.s()?, demotes: u32::try_from(r.u()?).ok()? });
        }
        if !r.is_empty() || !standing.is_sorted_by_key(|m| m.first_seq) {
            return None;
        }
        self.standing = standing;
        self.frozen.trust = trust;
        self.odd = odd;
        self.bulk = bytes;
        self.reindex();
        Some(())
    }
}

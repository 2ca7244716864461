//! Accepting a change to the rails (DESIGN §10; seed 003 principle 12).
//!
//! A human, at a terminal, accepts the protected files as they are now. The
//! domain side here plans the acceptance (what changed, whether the new
//! rails parse, whether the golden backtest still keeps its order) and checks
//! CODEOWNERS; the CLI asks the human and then calls [`commit`].

use crate::error::Coded;
use crate::git::Identity;
use crate::golden;
use crate::workspace::Workspace;

use super::codeowners::{CodeOwners, uncovered_paths};
use super::lock::{self, CODEOWNERS_FILES, Change, Lock, LockError};
use super::{Rails, RailsError};

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error(transparent)]
    Rails(#[from] RailsError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Golden(#[from] golden::GoldenError),
    #[error("{who} is not a code owner of {}", describe_owners(paths))]
    NotACodeowner { who: String, paths: Vec<(String, Vec<String>)> },
    #[error("no git identity: user.email and user.name are both unset")]
    NoIdentity,
    #[error("the golden backtest no longer keeps its order: {}", describe_flips(flips))]
    GoldenFailed { flips: Vec<(String, golden::Flip)> },
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
}

fn describe_owners(paths: &[(String, Vec<String>)]) -> String {
    paths.iter().map(|(p, o)| format!("{p} (owners: {})", o.join(" "))).collect::<Vec<_>>().join(", ")
}

fn describe_flips(flips: &[(String, golden::Flip)]) -> String {
    flips
        .iter()
        .map(|(file, f)| {
            let rel = if f.tied { "now ties with" } else { "now ranks below" };
            format!("{file}: {} ({}) {rel} {} ({})", f.above, f.above_utility, f.below, f.below_utility)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Coded for AcceptError {
    fn code(&self) -> &'static str {
        match self {
            AcceptError::Rails(e) => e.code(),
            AcceptError::Lock(e) => e.code(),
            AcceptError::Golden(e) => e.code(),
            AcceptError::NotACodeowner { .. } => "NOT_A_CODEOWNER",
            AcceptError::NoIdentity => "IDENTITY_MISSING",
            AcceptError::GoldenFailed { .. } => "GOLDEN_FAILED",
            AcceptError::Journal(e) => e.code(),
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            AcceptError::Rails(e) => e.hint(),
            AcceptError::Lock(e) => e.hint(),
            AcceptError::Golden(e) => e.hint(),
            AcceptError::NotACodeowner { .. } => {
                Some("ask one of the listed owners to run `ratchet rails accept`, or undo the change".into())
            }
            AcceptError::NoIdentity => Some("set it with `git config user.email you@example.com`".into()),
            AcceptError::GoldenFailed { .. } => Some(
                "inspect with `ratchet golden check`; change the weights or evaluators back, or, if the new order is right, update the golden file in the same change"
                    .into(),
            ),
            AcceptError::Journal(e) => e.hint(),
        }
    }
    fn exit(&self) -> crate::error::Exit {
        match self {
            AcceptError::Lock(e) => e.exit(),
            AcceptError::Journal(e) => e.exit(),
            _ => crate::error::Exit::Error,
        }
    }
    fn hints(&self) -> Vec<String> {
        match self {
            AcceptError::Rails(e) => e.hints(),
            other => other.hint().into_iter().collect(),
        }
    }
    fn snippet(&self) -> Option<String> {
        match self {
            AcceptError::Rails(e) => crate::error::Coded::snippet(e),
            _ => None,
        }
    }
}

/// What accepting the rails now would do.
pub struct Plan {
    /// The lock in force (empty when there was none).
    pub previous: Lock,
    /// The lock of the protected files as they are now.
    pub next: Lock,
    pub changes: Vec<Change>,
    /// The new rails, validated.
    pub rails: Rails,
    /// The golden backtest under the new rails; it keeps its order.
    pub golden: golden::Report,
}

/// Plans acceptance: the new rails must parse and the golden backtest must
/// keep its order (`GOLDEN_FAILED` otherwise).
pub fn plan(ws: &Workspace) -> Result<Plan, AcceptError> {
    let previous = match Lock::load(ws) {
        Ok(lock) => lock,
        Err(LockError::Missing { .. }) => Lock::default(),
        Err(e) => return Err(e.into()),
    };
    let next = lock::compute(ws)?;
    let changes = previous.changes_to(&next);
    let rails = Rails::load(ws)?;
    let report = golden::check(&ws.golden_dir(), &ws.rel("golden/"), &rails)?;
    if !report.ok {
        let flips =
            report.files.iter().flat_map(|f| f.flips.iter().map(|flip| (f.file.clone(), flip.clone()))).collect();
        return Err(AcceptError::GoldenFailed { flips });
    }
    Ok(Plan { previous, next, changes, rails, golden: report })
}

/// The CODEOWNERS rules in force: the accepted version of the first
/// CODEOWNERS GitHub would read, so a change cannot appoint its own owner;
/// the current file when none was accepted.
pub fn codeowners(ws: &Workspace, previous: &Lock) -> CodeOwners {
    let order = [CODEOWNERS_FILES[1], CODEOWNERS_FILES[0], CODEOWNERS_FILES[2], CODEOWNERS_FILES[3]];
    let repo = ws.repo().ok();
    for name in order {
        if let Some(hash) = previous.files.get(name) {
            let matches = |b: &Vec<u8>| blake3::hash(b).to_hex().as_str() == hash;
            let accepted = std::fs::read(lock::accepted_copies_dir(ws).join(name)).ok().filter(matches);
            let text = accepted.or_else(|| repo.as_ref().and_then(|r| r.head_file(name)).filter(matches));
            if let Some(bytes) = text {
                return CodeOwners::parse(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    for name in order {
        if let Ok(text) = std::fs::read_to_string(ws.root().join(name)) {
            return CodeOwners::parse(&text);
        }
    }
    CodeOwners::default()
}

/// `NOT_A_CODEOWNER` unless `who` owns every changed path that has owners.
pub fn check_owners(ws: &Workspace, plan: &Plan, who: &Identity, handle: Option<&str>) -> Result<(), AcceptError> {
    let owners = codeowners(ws, &plan.previous);
    let paths: Vec<String> = plan.changes.iter().map(|c| c.path.clone()).collect();
    let uncovered = uncovered_paths(&owners, &paths, who, handle);
    if uncovered.is_empty() {
        Ok(())
    } else {
        Err(AcceptError::NotACodeowner { who: who.display().to_string(), paths: uncovered })
    }
}

/// Writes the lock and the accepted copies.
/// Makes `plan` the rails: writes `config/rails.lock` and the accepted
/// copies, and logs a `rails` entry naming the new version, the changes, the
/// approver `by` and the golden backtest. Returns the entry's seq.
pub fn commit(ws: &Workspace, plan: &Plan, by: &str) -> Result<u64, AcceptError> {
    let mut journal = crate::journal::Journal::open(ws)?;
    plan.next.store(ws)?;
    lock::store_accepted(ws)?;
    let intent = crate::intent::current(ws).ok();
    let body = crate::record::RailsBody {
        reason: crate::record::RailsReason::Accept,
        rails: plan.next.version(),
        previous: Some(plan.previous.version()),
        changes: plan.changes.iter().filter_map(|c| serde_json::to_value(c).ok()).collect(),
        by: Some(by.to_string()),
        intent: intent.as_ref().map(|i| i.hash.clone()),
        intent_name: intent.map(|i| i.name),
        workspace: None,
        checks: None,
        golden: plan
            .golden
            .files
            .iter()
            .map(|f| crate::record::GoldenRecord { file: f.file.clone(), tau: f.tau, pairs: f.pairs as u64 })
            .collect(),
        granted_tiers: plan.rails.trust.granted_names(),
    };
    Ok(journal.append(None, &body, ())?.seq)
}

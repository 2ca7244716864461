//! Reverts (DESIGN §7): a merged step's commit undone, and the amendment
//! that caps its utility when that happened inside `revert_window_hours`.
//!
//! - [`revert`] is `ratchet revert`: the inverse patch goes through the
//!   loop's own rails (path safety, the patch engine, the checks in the
//!   sandbox, the fence, an exact commit on the recorded base) and an
//!   `amend` entry is logged. Its commit carries a `Ratchet-Revert: <id>`
//!   trailer.
//! - [`amend_outside_reverts`] finds reverts made outside ratchet (a plain
//!   `git revert`): a commit is a revert of a step's commit only when its
//!   change inverts the step's — it touches exactly the step's one path, and
//!   the lines it adds and removes are the lines the step removed and added
//!   — or when it carries the `Ratchet-Revert` trailer in its final trailer
//!   block. Words in a commit message ("This reverts commit …") prove
//!   nothing: anyone, a provider's rationale included, can write them.

use serde::Serialize;

use crate::history::{History, Merge};
use crate::patch::{Before, Patch, Previous};
use crate::record::{AmendBody, AmendReason, Detector, Outcome};

use super::apply::{describe, git_mode, run_checks};
use super::fence::{Fence, Phase as FencePhase};
use super::{Progress, Session, StepError};

/// What a revert did.
#[derive(Clone, Debug, Serialize)]
pub struct Reverted {
    pub id: String,
    pub commit: String,
    pub hours: f64,
    pub previous_utility: f64,
    pub utility: f64,
    pub capped: bool,
    pub seq: u64,
}

/// The amendment for `step` reverted by `commit` at `at`.
fn amendment(
    s: &Session,
    step: &Merge<'_>,
    commit: &str,
    at: chrono::DateTime<chrono::Utc>,
    by: Detector,
) -> AmendBody {
    let u = &s.rails.utility;
    let hours = crate::score::round((at - step.finished).num_seconds().max(0) as f64 / 3600.0);
    let previous = step.utility.unwrap_or(0.0);
    let utility = crate::score::revert_capped(previous, hours, u.revert_window_hours, u.revert_cap);
    AmendBody {
        step: step.id.to_string(),
        reason: AmendReason::Revert,
        commit: Some(commit.to_string()),
        detected_by: by,
        hours,
        previous_utility: previous,
        utility,
        capped: utility < previous,
        verified: None,
        pain: None,
        window: None,
        rates: None,
        detail: None,
    }
}

/// Reverts a merged step's commit through the loop's own rails, and logs
/// the amendment.
pub fn revert(s: &mut Session, id: &str, progress: &mut dyn Progress) -> Result<Reverted, StepError> {
    let history = s.history()?;
    // An older merge is read again from its entry in the log (checked against its hash).
    let step = history
        .load_step(&s.journal, id)?
        .filter(|st| st.outcome() == Outcome::Merged)
        .ok_or_else(|| StepError::NotMerged { id: crate::text::show(id) })?;
    if step.reverted.is_some() {
        return Err(StepError::AlreadyReverted { id: id.into() });
    }
    let commit = step.commit().ok_or_else(|| StepError::NotMerged { id: id.into() })?.to_string();
    if !s.repo.is_ancestor_of_head(&commit) {
        return Err(StepError::NotInHistory { id: id.into(), commit });
    }
    let path =
        step.body.proposal.as_ref().map(|p| p.path.clone()).ok_or_else(|| StepError::NotMerged { id: id.into() })?;
    crate::patch::path::check(&path, &s.rails.paths)?;
    let mut fence = Fence::take(&s.repo, s.ws.home_rel())?;
    if fence.before.contains_key(&path) {
        return Err(StepError::DirtyTarget { path });
    }
    let content = s
        .repo
        .reverted_content(&commit, &path)?
        .map_err(|reason| StepError::RevertConflict { id: id.into(), reason })?;
    let base = s.repo.head_commit();
    let now_bytes = s.repo.file_at(base.as_deref(), &path)?.map(|b| b.bytes);
    let Some(current) = now_bytes else {
        return Err(StepError::RevertConflict { id: id.into(), reason: format!("{path} is not in HEAD") });
    };
    progress.phase("revert", &format!("{path} back to before {}", &commit[..12]));
    // The revert as a patch: the whole file back, or the file removed.
    let (undo, written) = match content {
        Some(bytes) => {
            let new = String::from_utf8(bytes).map_err(|_| StepError::RevertConflict {
                id: id.into(),
                reason: format!("{path} is not UTF-8 text"),
            })?;
            let patch = Patch::Replace { path: path.clone(), old: None, new };
            let w = crate::patch::write(s.ws.root(), &s.rails.paths, &patch, Before::Bytes(&current))?;
            (w.undo.clone(), Some(w))
        }
        None => {
            let target = crate::patch::Target::open(s.ws.root(), &path)?;
            if target.current() != Some(current.as_slice()) {
                return Err(crate::patch::PatchError::TargetChanged {
                    path: path.clone(),
                    why: "it differs from HEAD".into(),
                }
                .into());
            }
            let mode = target.mode().unwrap_or(0o644);
            crate::patch::remove_new(s.ws.root(), &path)?;
            let undo = crate::patch::Undo {
                path: path.clone(),
                previous: Previous::File { content: String::from_utf8_lossy(&current).into_owned(), mode },
            };
            (undo, None)
        }
    };
    fence.expect_target(&path, &[]);
    let checks = run_checks(s, &format!("{id}-revert"), id, &mut fence, progress)?;
    let fenced = fence.check(&s.repo, &s.rails.paths, FencePhase::Checked);
    let exact = written.as_ref().map(|w| w.verify()).transpose();
    let undo_all = |s: &Session| s.restore(&undo).map_err(|reason| StepError::Recovery { file: path.clone(), reason });
    if !checks.ended.success() {
        undo_all(s)?;
        let status = checks.unavailable.map_or_else(|| describe(&checks.ended), |u| format!("could not be run ({u})"));
        return Err(StepError::RevertChecksFailed { id: id.into(), status });
    }
    if let Err(b) = fenced {
        undo_all(s)?;
        return Err(StepError::UnexpectedChanges { what: b.describe() });
    }
    let stat = match exact {
        Ok(stat) => stat,
        Err(e) => {
            undo_all(s)?;
            return Err(e.into());
        }
    };
    let subject = s.repo.commit_message(&commit).and_then(|m| m.lines().next().map(str::to_string)).unwrap_or_default();
    let genesis =
        s.journal.genesis()?.map(|g| format!("Ratchet-Log: {}\n", crate::journal::line::hex(&g))).unwrap_or_default();
    let message = format!(
        "Revert \"{}\"\n\nThis reverts commit {commit}.\n\nRatchet-Revert: {id}\nRatchet-Log-Prev: {}\n{genesis}",
        crate::text::one_paragraph(&subject),
        s.journal.head().hash_hex()
    );
    let now = crate::clock::now();
    let (bytes, mode) = match &written {
        Some(w) => (Some(w.bytes.as_slice()), git_mode(w.mode)),
        None => (None, 0o100644),
    };
    let revert_commit =
        match s.repo.commit_exact(base.as_deref(), &path, bytes, stat, mode, &message, &s.identity(), now) {
            Ok(c) => c,
            Err(e) => {
                undo_all(s)?;
                return Err(StepError::Commit(e));
            }
        };
    let body = amendment(s, &step.merge(), &revert_commit, now, Detector::RatchetRevert);
    let entry = s.append_amend(&body)?;
    Ok(Reverted {
        id: id.into(),
        commit: revert_commit,
        hours: body.hours,
        previous_utility: body.previous_utility,
        utility: body.utility,
        capped: body.capped,
        seq: entry.seq,
    })
}

/// Whether commit `c` undoes step commit `step_commit` on `path`: `c`
/// changes only `path`, and adds exactly the lines the step removed and
/// removes exactly the lines it added.
fn inverts(repo: &crate::git::Repo, c: &str, step_commit: &str, path: &str) -> bool {
    let Ok((paths, single)) = repo.changed_paths(c) else { return false };
    if !single || paths.len() != 1 || paths[0] != path {
        return false;
    }
    let text = |commit: Option<&str>| -> Option<String> {
        Some(match repo.file_at(commit, path).ok()? {
            Some(b) => String::from_utf8(b.bytes).ok()?,
            None => String::new(),
        })
    };
    let (Some(step_before), Some(step_after)) = (text(repo.parent_of(step_commit).as_deref()), text(Some(step_commit)))
    else {
        return false;
    };
    let (Some(c_before), Some(c_after)) = (text(repo.parent_of(c).as_deref()), text(Some(c))) else { return false };
    let step_diff = changed_lines(&step_before, &step_after);
    let c_diff = changed_lines(&c_before, &c_after);
    (!step_diff.0.is_empty() || !step_diff.1.is_empty()) && c_diff.0 == step_diff.1 && c_diff.1 == step_diff.0
}

/// The lines removed and added from `old` to `new`, each sorted.
fn changed_lines(old: &str, new: &str) -> (Vec<String>, Vec<String>) {
    let diff = similar::TextDiff::configure().timeout(std::time::Duration::from_secs(2)).diff_lines(old, new);
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Delete => removed.push(change.value().to_string()),
            similar::ChangeTag::Insert => added.push(change.value().to_string()),
            similar::ChangeTag::Equal => {}
        }
    }
    removed.sort();
    added.sort();
    (removed, added)
}

/// Finds reverts of step commits made outside ratchet since the last step
/// began, and amends the reverted steps.
pub(super) fn amend_outside_reverts(s: &mut Session, history: &History) -> Result<Vec<String>, StepError> {
    let merged = history.merged_commits();
    if merged.is_empty() {
        return Ok(Vec::new());
    }
    // Only commits since where the last step began are new (reverts come
    // after the commits they revert; the oldest step commit bounds a history
    // whose last base is no longer an ancestor of HEAD).
    let last_base = history.last_base().map(str::to_string);
    let stop = match last_base.filter(|b| s.repo.is_ancestor_of_head(b)) {
        Some(base) => Some(base),
        None => {
            let oldest = merged.values().min_by_key(|st| st.last_seq).and_then(|st| st.commit).map(str::to_string);
            oldest.as_deref().and_then(|c| s.repo.parent_of(c))
        }
    };
    let by_path: std::collections::HashMap<&str, Vec<Merge<'_>>> =
        merged.values().fold(std::collections::HashMap::new(), |mut m, st| {
            if let Some(p) = st.path {
                m.entry(p).or_insert_with(Vec::new).push(*st);
            }
            m
        });
    let mut amends = Vec::new();
    for (c, at) in s.repo.commits_since(stop.as_deref())? {
        if merged.contains_key(c.as_str()) {
            continue;
        }
        // The trailer ratchet revert writes, in the final trailer block only.
        let trailer = s.repo.trailer_of(&c, "Ratchet-Revert");
        let found = match trailer {
            Some(step_id) => merged.values().find(|st| st.id == step_id).copied(),
            None => {
                let Ok((paths, true)) = s.repo.changed_paths(&c) else { continue };
                let [path] = paths.as_slice() else { continue };
                by_path.get(path.as_str()).and_then(|steps| {
                    steps.iter().copied().find(|st| st.commit.is_some_and(|sc| inverts(&s.repo, &c, sc, path)))
                })
            }
        };
        if let Some(step) = found {
            if !amends.iter().any(|(id, _): &(String, AmendBody)| id == step.id) {
                amends.push((step.id.to_string(), amendment(s, &step, &c, at, Detector::GitHistory)));
            }
        }
    }
    let mut notes = Vec::new();
    for (id, body) in amends {
        s.append_amend(&body)?;
        notes.push(format!("found a revert of step {id} in git history and amended it"));
    }
    Ok(notes)
}

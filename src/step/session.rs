//! What every loop command does before anything else (DESIGN §3): take the
//! workspace lock, check the rails against their lock, open the log (which
//! checks its tail against the checkpoints), finish an interrupted step, and
//! amend steps whose commits were reverted outside ratchet.

use crate::git::{Identity, Repo};
use crate::history::History;
use crate::intent::{self, Intent};
use crate::journal::{Draft, Entry, Journal, Kind};
use crate::lock::WorkspaceLock;
use crate::patch::{Previous, Undo};
use crate::rails::{self, Rails};
use crate::record::{AmendBody, ApplyRecord, Outcome};
use crate::workspace::Workspace;

use super::StepError;
use super::inflight::{Inflight, Phase};

/// A locked, checked workspace, ready for one loop command.
pub struct Session {
    pub ws: Workspace,
    pub repo: Repo,
    pub rails: Rails,
    /// The rails version (from `config/rails.lock`).
    pub rails_version: String,
    pub intent: Intent,
    pub journal: Journal,
    /// What start-up did that the user should hear about.
    pub notes: Vec<String>,
    /// The history as of the log's head, read once (cleared on append).
    history: std::cell::RefCell<Option<std::rc::Rc<History>>>,
    _lock: WorkspaceLock,
}

impl Session {
    /// Locks and checks `ws` for `command`.
    pub fn begin(ws: &Workspace, command: &str) -> Result<Session, StepError> {
        let lock = WorkspaceLock::acquire(ws, command)?;
        crate::timing::mark("lock");
        Session::with_lock(ws, lock)
    }

    /// Checks `ws` under a lock the caller already holds.
    pub fn with_lock(ws: &Workspace, lock: WorkspaceLock) -> Result<Session, StepError> {
        let locked = rails::check(ws)?;
        crate::timing::mark("rails check");
        let journal = Journal::open(ws)?;
        crate::timing::mark("log open");
        let rails = Rails::load(ws)?;
        let intent = intent::current(ws)?;
        let repo = ws.repo()?;
        crate::timing::mark("rails and intent");
        let mut s = Session {
            ws: ws.clone(),
            repo,
            rails,
            rails_version: locked.version(),
            intent,
            journal,
            notes: Vec::new(),
            history: Default::default(),
            _lock: lock,
        };
        if let Some(e) = s.journal.recovered() {
            s.notes.push(format!("recovered the log: a torn last line was quarantined (entry {})", e.id));
        }
        for w in s.journal.warnings() {
            s.notes.push(w.clone());
        }
        s.recover_interrupted()?;
        crate::timing::mark("recovery");
        s.amend_outside_reverts()?;
        crate::timing::mark("outside reverts");
        Ok(s)
    }

    /// The approver's git identity.
    pub fn identity(&self) -> Identity {
        self.repo.identity().unwrap_or(Identity { name: "ratchet".into(), email: String::new() })
    }

    /// Appends one entry to the log.
    pub fn append(&mut self, kind: Kind, id: Option<&str>, body: impl serde::Serialize) -> Result<Entry, StepError> {
        self.history.borrow_mut().take();
        let mut draft = Draft::new(kind, body)?;
        if let Some(id) = id {
            draft = draft.with_id(id);
        }
        Ok(self.journal.append(draft)?)
    }

    /// The history in the log.
    pub fn history(&self) -> Result<std::rc::Rc<History>, StepError> {
        if let Some(h) = &*self.history.borrow() {
            return Ok(h.clone());
        }
        let h = std::rc::Rc::new(History::read(&self.journal)?);
        *self.history.borrow_mut() = Some(h.clone());
        Ok(h)
    }

    /// The id the next step gets: `s<seq>` of its first entry.
    pub fn next_id(&self) -> String {
        format!("s{}", self.journal.head().seq + 1)
    }

    fn recover_interrupted(&mut self) -> Result<(), StepError> {
        let file = super::inflight::path(&self.ws).display().to_string();
        let inflight = match Inflight::load(&self.ws) {
            Ok(Some(i)) => i,
            Ok(None) => return Ok(()),
            Err(reason) => return Err(StepError::Recovery { file, reason }),
        };
        let already_logged = self.history()?.step(&inflight.id).is_some_and(|s| s.outcome() != Outcome::Pending);
        let head_has_step = || {
            self.repo.head_commit().filter(|h| {
                self.repo
                    .commit_message(h)
                    .is_some_and(|m| crate::git::trailer(&m, "Ratchet-Step") == Some(inflight.id.as_str()))
            })
        };
        let committed = match inflight.phase {
            Phase::Commit => head_has_step(),
            _ => None,
        };
        if already_logged {
            // The entry reached the log; only the crash journal was left.
        } else if let Some(commit) = committed {
            let mut body = inflight.body.clone();
            let apply = body.apply.get_or_insert(ApplyRecord { commit: None, checks: None });
            apply.commit = Some(commit.clone());
            body.detail = Some(format!("recovered after an interruption between commit {} and the log", &commit[..12]));
            self.append(Kind::Step, Some(&inflight.id), &body)?;
            self.notes.push(format!(
                "recovered step {}: its commit {} was kept and logged",
                inflight.id,
                &commit[..12]
            ));
        } else {
            if let Some(undo) = &inflight.undo {
                self.restore(undo).map_err(|reason| StepError::Recovery { file: file.clone(), reason })?;
            }
            let mut body = inflight.body.clone();
            body.outcome = Outcome::Failed;
            body.reason = Some("interrupted".into());
            body.detail =
                Some(format!("the process stopped during {:?}; the tree was restored", inflight.phase).to_lowercase());
            if let Some(apply) = &mut body.apply {
                apply.commit = None;
            }
            self.append(Kind::Step, Some(&inflight.id), &body)?;
            self.notes.push(format!(
                "recovered step {}: interrupted, the tree was restored and the step logged as failed",
                inflight.id
            ));
        }
        Inflight::clear(&self.ws).map_err(|e| StepError::Recovery { file, reason: e.to_string() })?;
        Ok(())
    }

    /// Puts a file back as it was before a patch, and its index entry with it.
    pub fn restore(&self, undo: &Undo) -> Result<(), String> {
        let root = self.ws.root();
        // A crash inside the patch engine can leave its temp file behind.
        let dir = std::path::Path::new(&undo.path).parent().map(|p| root.join(p)).unwrap_or(root.to_path_buf());
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(".ratchet-") && name.ends_with(".tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let exists = root.join(&undo.path).symlink_metadata().is_ok();
        if exists || matches!(undo.previous, Previous::File { .. }) {
            undo.restore(root).map_err(|e| e.to_string())?;
        }
        self.repo.reset_index_path(&undo.path).map_err(|e| e.to_string())
    }

    /// Finds reverts of step commits made outside ratchet (a plain `git
    /// revert`) and amends the reverted steps.
    fn amend_outside_reverts(&mut self) -> Result<(), StepError> {
        let history = self.history()?;
        let merged = history.merged_commits();
        if merged.is_empty() {
            return Ok(());
        }
        // Every session scans down to where the previous step began, so
        // only the commits since the last step's base are new (reverts come
        // after the commits they revert; the oldest step commit bounds a
        // history whose last base is no longer an ancestor of HEAD).
        let last_base = history.steps().iter().rev().find_map(|st| st.body.base.clone());
        let stop = match last_base.filter(|b| self.repo.is_ancestor_of_head(b)) {
            Some(base) => Some(base),
            None => {
                let oldest = merged.values().min_by_key(|s| s.last_seq).and_then(|s| s.commit()).map(str::to_string);
                oldest.as_deref().and_then(|c| self.repo.parent_of(c))
            }
        };
        let found = self.repo.reverts_since(stop.as_deref())?;
        let mut amends = Vec::new();
        for r in found {
            if let Some(step) = merged.get(r.reverted.as_str()) {
                let u = &self.rails.utility;
                let hours = crate::score::round((r.time - step.finished).num_seconds().max(0) as f64 / 3600.0);
                let previous = step.utility().unwrap_or(0.0);
                let utility = crate::score::revert_capped(previous, hours, u.revert_window_hours, u.revert_cap);
                amends.push((
                    step.id.clone(),
                    AmendBody {
                        step: step.id.clone(),
                        reason: "revert".into(),
                        commit: Some(r.commit.clone()),
                        detected_by: "git history".into(),
                        hours,
                        previous_utility: previous,
                        utility,
                        capped: utility < previous,
                    },
                ));
            }
        }
        for (id, body) in amends {
            self.append(Kind::Amend, None, &body)?;
            self.notes.push(format!("found a revert of step {id} in git history and amended it"));
        }
        Ok(())
    }
}

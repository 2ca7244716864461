//! What every loop command does before anything else (DESIGN §3): take the
//! workspace lock, check the rails against their lock and the lock against
//! the log, open the log (which checks its tail against the keyed
//! checkpoints), finish an interrupted step, and amend steps whose commits
//! were reverted outside ratchet.

use crate::git::{Identity, Repo};
use crate::history::History;
use crate::intent::{self, Intent};
use crate::journal::{Entry, Journal};
use crate::lock::WorkspaceLock;
use crate::patch::Undo;
use crate::rails::{self, Rails};
use crate::record::{AmendBody, ApplyRecord, Outcome, Reason, StepBody};
use crate::workspace::Workspace;

use super::StepError;
use super::inflight::{Inflight, Phase};
use super::seal;

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
    /// The look at the tree a step started as soon as it held the lock.
    pub(super) look: Option<super::fence::Looking>,
    _lock: WorkspaceLock,
}

impl Session {
    /// Locks and checks `ws` for `command`.
    pub fn begin(ws: &Workspace, command: &str) -> Result<Session, StepError> {
        let lock = WorkspaceLock::acquire(ws, command)?;
        crate::timing::mark("lock");
        Session::with_lock(ws, lock)
    }

    /// [`Session::begin`] for `ratchet step`: the look at the work tree
    /// starts on another thread as soon as the lock is held, unless an
    /// interrupted step is to be recovered first (which may put a file
    /// back); the step waits for it before any child runs.
    pub fn begin_step(ws: &Workspace) -> Result<Session, StepError> {
        let lock = WorkspaceLock::acquire(ws, "step")?;
        crate::timing::mark("lock");
        let look = (!super::inflight::path(ws).exists()).then(|| super::fence::Fence::start(ws.root()));
        let mut s = Session::with_lock(ws, lock)?;
        s.look = look;
        Ok(s)
    }

    /// Checks `ws` under a lock the caller already holds.
    pub fn with_lock(ws: &Workspace, lock: WorkspaceLock) -> Result<Session, StepError> {
        // The rails are parsed before they are checked against their lock:
        // a hand edit that does not parse is reported as what it is (the
        // line, the mark, the fix), not only as a tampered file. Nothing
        // parsed is used unless the lock then matches.
        let rails = Rails::load(ws)?;
        let locked = rails::check(ws)?;
        crate::timing::mark("rails check");
        let journal = Journal::open(ws)?;
        crate::timing::mark("log open");
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
            look: None,
            _lock: lock,
        };
        if let Some(e) = s.journal.recovered() {
            s.notes.push(format!("recovered the log: a torn last line was quarantined (entry {})", e.id));
        }
        for w in s.journal.warnings() {
            s.notes.push(w.clone());
        }
        // The lock must name the rails the log last recorded: a lock
        // rewritten to match rewritten rails, outside `rails accept`, is not.
        if let Some(logged) = s.history()?.last_rails() {
            if logged != s.rails_version {
                return Err(StepError::RailsUnlogged { lock: s.rails_version.clone(), logged: logged.to_string() });
            }
        }
        s.recover_interrupted()?;
        // An agent step's scratch place outlives a ratchet killed mid-step.
        let swept = crate::propose::provider::agent::sweep(&s.ws);
        if swept > 0 {
            s.notes.push(format!("removed {swept} scratch place(s) left behind by an interrupted agent step"));
        }
        crate::timing::mark("recovery");
        let history = s.history()?;
        let notes = super::revert::amend_outside_reverts(&mut s, &history)?;
        s.notes.extend(notes);
        crate::timing::mark("outside reverts");
        Ok(s)
    }

    /// The approver's git identity.
    pub fn identity(&self) -> Identity {
        self.repo.identity().unwrap_or(Identity { name: "ratchet".into(), email: String::new() })
    }

    /// Appends a step entry for step `id`.
    pub(super) fn append_step(&mut self, id: &str, body: &StepBody) -> Result<Entry, StepError> {
        self.forget_history();
        Ok(self.journal.append(Some(id), body, seal())?)
    }

    /// Appends an amendment.
    pub(super) fn append_amend(&mut self, body: &AmendBody) -> Result<Entry, StepError> {
        self.forget_history();
        Ok(self.journal.append(None, body, seal())?)
    }

    /// Appends an entry of a kind any domain module may write (an agents
    /// anchor, say).
    pub fn record<B: crate::record::Body<Permit = ()>>(&mut self, body: &B) -> Result<Entry, StepError> {
        self.forget_history();
        Ok(self.journal.append(None, body, ())?)
    }

    /// Drops the cached history after an append.
    pub(super) fn forget_history(&self) {
        self.history.borrow_mut().take();
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
        let committed = match inflight.phase {
            Phase::Commit => self
                .repo
                .head_commit()
                .filter(|h| self.repo.trailer_of(h, "Ratchet-Step").as_deref() == Some(inflight.id.as_str())),
            _ => None,
        };
        if already_logged {
            // The entry reached the log; only the crash journal was left.
        } else if let Some(commit) = committed.clone() {
            let mut body = inflight.body.clone();
            let apply = body.apply.get_or_insert(ApplyRecord { commit: None, checks: None });
            apply.commit = Some(commit.clone());
            body.outcome = Outcome::Merged;
            body.detail = Some(format!("recovered after an interruption between commit {} and the log", &commit[..12]));
            match self.append_step(&inflight.id, &body) {
                Ok(_) => self.notes.push(format!(
                    "recovered step {}: its commit {} was kept and logged",
                    inflight.id,
                    &commit[..12]
                )),
                // The entry will never fit: undo the commit rather than be wedged.
                Err(StepError::Journal(crate::journal::JournalError::InvalidEntry { reason, .. })) => {
                    self.repo.move_head_back(&commit, inflight.body.base.as_deref())?;
                    if let Some(undo) = &inflight.undo {
                        self.restore_checked(undo)
                            .map_err(|reason| StepError::Recovery { file: file.clone(), reason })?;
                    }
                    let mut failed = inflight.body.clone();
                    failed.outcome = Outcome::Failed;
                    failed.reason = Some(Reason::EntryTooLarge);
                    failed.detail =
                        Some(format!("its entry could not be logged ({reason}); commit {} was undone", &commit[..12]));
                    if let Some(a) = &mut failed.apply {
                        a.commit = None;
                    }
                    super::settle::bound_body(&mut failed);
                    self.append_step(&inflight.id, &failed)?;
                    self.notes.push(format!(
                        "recovered step {}: its entry could not be logged, so its commit was undone",
                        inflight.id
                    ));
                }
                Err(e) => return Err(e),
            }
        } else {
            if let Some(undo) = &inflight.undo {
                self.restore_checked(undo).map_err(|reason| StepError::Recovery { file: file.clone(), reason })?;
            }
            let mut body = inflight.body.clone();
            body.outcome = Outcome::Failed;
            body.reason = Some(Reason::Interrupted);
            body.detail = Some(format!(
                "the process stopped during {}; the tree was restored",
                format!("{:?}", inflight.phase).to_lowercase()
            ));
            if let Some(apply) = &mut body.apply {
                apply.commit = None;
            }
            self.append_step(&inflight.id, &body)?;
            self.notes.push(format!(
                "recovered step {}: interrupted, the tree was restored and the step logged as failed",
                inflight.id
            ));
        }
        // A step stopped between moving the branch and writing the index
        // leaves the path's old entry, which would show as a staged change.
        if let (Some(commit), Some(undo)) = (&committed, &inflight.undo) {
            if self.repo.head_commit().as_deref() == Some(commit.as_str())
                && self.repo.finish_index_entry(commit, &undo.path)?
            {
                self.notes
                    .push(format!("recovered step {}: the index entry of {} was written", inflight.id, undo.path));
            }
        }
        Inflight::clear(&self.ws).map_err(|e| StepError::Recovery { file, reason: e.to_string() })?;
        Ok(())
    }

    /// [`Session::restore`], for an undo read back from the crash journal:
    /// its path must still be one a patch may touch.
    fn restore_checked(&self, undo: &Undo) -> Result<(), String> {
        crate::patch::path::check(&undo.path, &self.rails.paths)
            .map_err(|e| format!("the crash journal names a path no patch may touch: {e}"))?;
        self.restore(undo)
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
        if exists || matches!(undo.previous, crate::patch::Previous::File { .. }) {
            undo.restore(root).map_err(|e| e.to_string())?;
        }
        self.repo.reset_index_path(&undo.path).map_err(|e| e.to_string())
    }
}

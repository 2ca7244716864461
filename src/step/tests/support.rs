//! The step's library test kit: a real workspace ([`Lab`]: a git
//! repository in a temporary directory with `ratchet init`'s files and a
//! log), a provider that answers from a script ([`ScriptedProvider`]), and a
//! Gate 2 that answers from a script and keeps what it was shown
//! ([`ScriptedGate2`]).
//!
//! Only the answers are scripted. [`Lab::step`] runs the production step
//! (`step::run_with`) with the scripted provider standing in for the object
//! the rails would build for `[providers.scripted]`; the pick (forced to
//! `scripted`, as `ratchet step --provider scripted` does), the fence,
//! Gate 1, the auto-merge rule, the checks in their sandbox, the exact
//! commit and the log are the code `ratchet step` runs.
//!
//! Each test runs on its own thread. [`Lab::new`] pins that thread's clock
//! and its state home (where the keys, checkpoints and crash journal live),
//! so tests run side by side without the environment, and without writing
//! to the user's home.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::gate::two::{Decision, Gate2, Review};
use crate::journal::{Entry, Journal, Kind};
use crate::propose::context::Context;
use crate::propose::provider::{Answer, Failure, Provider, Surroundings, extract_json, interpret};
use crate::record::{AmendBody, Cost, StepBody, VerdictRecord};
use crate::step::{Options, Quiet, Report, Session, StepError};
use crate::workspace::Workspace;

/// The provider the rails of a [`Lab`] configure, and the one it scripts.
pub const SCRIPTED: &str = "scripted";

/// The time a lab starts at.
pub const START: &str = "2026-11-21T19:00:00Z";

/// How a lab's rails differ from the defaults.
pub struct Setup {
    pub checks: &'static str,
    pub checks_timeout: u64,
    pub auto_merge: bool,
    /// `[sandbox] writable`.
    pub writable: Vec<String>,
    /// `[sandbox] mode = "off"`.
    pub sandbox_off: bool,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup { checks: "true", checks_timeout: 60, auto_merge: false, writable: Vec::new(), sandbox_off: false }
    }
}

/// A workspace for one test, on the test's own thread.
pub struct Lab {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub ws: Workspace,
    pub provider: ScriptedProvider,
}

impl Lab {
    pub fn new() -> Lab {
        Lab::with(Setup::default())
    }

    /// A repository with `docs/guide.md` and `src/lib.rs`, initialised with
    /// compact rails (two trust tiers, the `scripted` command provider) as
    /// `setup` says, and committed.
    pub fn with(setup: Setup) -> Lab {
        let dir = tempfile::tempdir().expect("a temp dir");
        crate::private::set_state_home(dir.path().join("state"));
        crate::clock::pin(crate::clock::parse(START).expect("a time"));
        let root = dir.path().join("repo");
        std::fs::create_dir_all(&root).expect("the repo dir");
        let root = root.canonicalize().expect("a canonical root");
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["config", "user.name", "Alice"]);
        git(&root, &["config", "user.email", "alice@example.com"]);
        let ws = Workspace::at(root.clone(), "");
        let lab = Lab { _dir: dir, root, ws, provider: ScriptedProvider::default() };
        lab.write("docs/guide.md", "# Guide\n\nline one\nline two\n");
        lab.write("src/lib.rs", "pub fn answer() -> u32 {\n    42\n}\n");
        lab.write("config/rails.toml", &rails(&setup));
        let report = crate::init::init(&lab.ws).expect("init");
        crate::init::record(&lab.ws, &report).expect("init is logged");
        lab.git(&["add", "-A"]);
        lab.git(&["commit", "-q", "-m", "ratchet init"]);
        lab
    }

    /// Moves this test's clock to `at`.
    pub fn at(&self, at: &str) {
        crate::clock::pin(crate::clock::parse(at).expect("a time"));
    }

    /// A locked, checked session, as every loop command begins.
    pub fn session(&self) -> Session {
        self.try_session().expect("the session begins")
    }

    /// [`Lab::session`], or why it could not begin. The workspace lock is
    /// an `flock`, and a child another test forks at that instant holds a
    /// copy of it until it execs (the lock file is close-on-exec): so a
    /// lock held by this very process is waited for, briefly. Nothing else
    /// here waits; the CLI is one thread and never meets this.
    pub fn try_session(&self) -> Result<Session, StepError> {
        let me = std::process::id().to_string();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Session::begin(&self.ws, "step") {
                Err(StepError::Lock(crate::lock::LockError::Locked { pid, .. }))
                    if pid == me && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    /// What `ratchet step --provider scripted` passes, with `gate2` as the human.
    pub fn options<'a>(&self, gate2: Option<&'a mut dyn Gate2>) -> Options<'a> {
        Options {
            forced: Some(SCRIPTED.into()),
            allow_dirty: false,
            patch_file: None,
            gate2,
            interactive: false,
            telemetry: Ok(None),
            cancel: Default::default(),
        }
    }

    /// One step, the scripted provider answering.
    pub fn step(&self, gate2: Option<&mut dyn Gate2>) -> Report {
        self.try_step(self.options(gate2)).expect("the step runs")
    }

    pub fn try_step(&self, opts: Options<'_>) -> Result<Report, StepError> {
        let mut s = self.try_session()?;
        let scripted = self.provider.clone();
        let providers = move |rails: &crate::rails::Rails, name: &str| -> Option<Box<dyn Provider>> {
            if name == SCRIPTED {
                Some(Box::new(scripted.clone()))
            } else {
                super::super::select::provider(rails, name)
            }
        };
        super::super::run_with(&mut s, opts, &mut Quiet, &providers)
    }

    /// Every entry of the log.
    pub fn entries(&self) -> Vec<Entry> {
        let journal = Journal::open(&self.ws).expect("the log opens");
        journal.entries().expect("the log reads").map(|e| e.expect("an entry")).collect()
    }

    /// The step entries of step `id`, typed, oldest first.
    pub fn step_entries(&self, id: &str) -> Vec<StepBody> {
        self.entries().into_iter().filter(|e| e.kind == Kind::Step && e.id == id).map(|e| typed(&e)).collect()
    }

    /// The last entry of step `id`, typed.
    pub fn step_body(&self, id: &str) -> StepBody {
        self.step_entries(id).pop().unwrap_or_else(|| panic!("no step entry for {id}"))
    }

    /// The amendments in the log, typed.
    pub fn amends(&self) -> Vec<AmendBody> {
        self.entries().into_iter().filter(|e| e.kind == Kind::Amend).map(|e| typed(&e)).collect()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"]).trim().to_string()
    }

    /// The paths commit `c` changed.
    pub fn changed_in(&self, c: &str) -> Vec<String> {
        self.git(&["diff-tree", "--no-commit-id", "--name-only", "-r", c]).lines().map(str::to_string).collect()
    }

    /// `git status --porcelain`, ignoring ratchet's own ignored state.
    pub fn status(&self) -> String {
        self.git(&["status", "--porcelain"])
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        write(&self.root, rel, text);
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub fn git(&self, args: &[&str]) -> String {
        git(&self.root, args)
    }

    /// Commits `text` at `rel` as a person would, outside ratchet.
    pub fn commit(&self, rel: &str, text: &str, message: &str) -> String {
        self.write(rel, text);
        self.git(&["add", rel]);
        self.git(&["commit", "-q", "-m", message]);
        self.head()
    }
}

fn typed<B: serde::de::DeserializeOwned>(e: &Entry) -> B {
    serde_json::from_value(serde_json::Value::Object(e.body.clone()))
        .unwrap_or_else(|err| panic!("entry {} is not a typed {:?} body: {err}", e.seq, e.kind))
}

fn rails(setup: &Setup) -> String {
    format!(
        "version = 1\n\
         [paths]\nallow = [\"docs/**\", \"src/**\", \"*.md\"]\n\
         [checks]\ncommand = {checks:?}\ntimeout_s = {timeout}\n\
         [sandbox]\nmode = \"{mode}\"\nwritable = {writable:?}\n\
         [gate.auto_merge]\nenabled = {auto}\npaths = [\"docs/**\"]\nmax_lines = 10\nmin_tier = \"docs\"\n\
         min_predicted_utility = 0.8\n\
         [[trust.tiers]]\nname = \"docs\"\npaths = [\"docs/**\", \"*.md\"]\n\
         [[trust.tiers]]\nname = \"code\"\npaths = [\"src/**\"]\nunlock_after = 10\n\
         [providers.{SCRIPTED}]\nkind = \"command\"\ncommand = [\"true\"]\n",
        checks = setup.checks,
        timeout = setup.checks_timeout,
        writable = setup.writable,
        mode = if setup.sandbox_off { "off" } else { "on" },
        auto = setup.auto_merge,
    )
}

pub fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("a parent")).expect("the parent dir");
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("{rel}: {e}"));
}

/// Runs git in `dir`; panics with its stderr when it fails.
pub use crate::git::git_cli as git;

/// A proposal appending `text` to `path`, with a next step.
pub fn append(path: &str, text: &str) -> String {
    serde_json::json!({"rationale": "add a line", "patch": {"op": "append", "path": path, "content": text},
                       "next_steps": ["more"]})
    .to_string()
}

/// A proposal replacing the whole of `path` with `new`.
pub fn replace_whole(path: &str, new: &str) -> String {
    serde_json::json!({"rationale": "rewrite", "patch": {"op": "replace", "path": path, "new": new},
                       "next_steps": ["more"]})
    .to_string()
}

/// Something done to the tree, behind ratchet's back.
pub type Meddle = Box<dyn Fn(&Path)>;

/// One scripted answer.
pub struct Say {
    /// The answer's text, read as a `command` provider's output is; or a failure.
    answer: Result<String, Failure>,
    /// Done in the work tree while "proposing".
    meddle: Option<Meddle>,
}

impl Say {
    /// Answers `text` (a proposal, a noop, or anything at all).
    pub fn text(text: impl Into<String>) -> Say {
        Say { answer: Ok(text.into()), meddle: None }
    }

    pub fn noop(why: &str) -> Say {
        Say::text(serde_json::json!({ "noop": why }).to_string())
    }

    pub fn fail(failure: Failure) -> Say {
        Say { answer: Err(failure), meddle: None }
    }

    /// The same answer, after doing `meddle` to the tree (given its root).
    pub fn meddling(mut self, meddle: impl Fn(&Path) + 'static) -> Say {
        self.meddle = Some(Box::new(meddle));
        self
    }
}

/// What the step showed the scripted provider.
#[derive(Clone, Debug)]
pub struct Asked {
    pub step: String,
    pub focus: String,
    pub base: Option<String>,
}

/// A provider that answers from a queue ([`Say`]) and remembers each ask.
/// Clones share the queue.
#[derive(Clone, Default)]
pub struct ScriptedProvider {
    script: Rc<RefCell<VecDeque<Say>>>,
    asked: Rc<RefCell<Vec<Asked>>>,
}

impl ScriptedProvider {
    /// Queues `say` as the next answer.
    pub fn then(&self, say: Say) -> &Self {
        self.script.borrow_mut().push_back(say);
        self
    }

    pub fn asked(&self) -> Vec<Asked> {
        self.asked.borrow().clone()
    }
}

impl Provider for ScriptedProvider {
    fn name(&self) -> &str {
        SCRIPTED
    }

    fn availability(&self, _env: &Surroundings) -> Result<(), String> {
        Ok(())
    }

    fn propose(&self, context: &Context, env: &Surroundings) -> Result<Answer, Failure> {
        self.asked.borrow_mut().push(Asked {
            step: env.step_id.clone(),
            focus: context.focus.reference.clone(),
            base: context.base.clone(),
        });
        let say =
            self.script.borrow_mut().pop_front().expect("the step asked the scripted provider more than scripted");
        if let Some(meddle) = &say.meddle {
            meddle(&env.root);
        }
        // Read as the `command` provider reads its child's output.
        let text = say.answer?;
        let (value, _) = extract_json(&text).map_err(|reason| Failure::InvalidOutput { reason })?;
        interpret(value)
    }

    fn spent(&self) -> Cost {
        Cost::default()
    }
}

/// What Gate 2 was shown, kept.
#[derive(Clone, Debug)]
pub struct Shown {
    pub id: String,
    pub provider: String,
    pub op: String,
    pub path: String,
    pub old: String,
    pub new: String,
    pub verdicts: Vec<VerdictRecord>,
    pub predicted: f64,
    pub default_score: f64,
}

/// Something done while Gate 2's review is on screen.
pub type Meanwhile = Box<dyn FnMut()>;

/// A Gate 2 that answers from a queue, each answer optionally after doing
/// something meanwhile (a person committing in another terminal, say),
/// and keeps every review it was shown.
#[derive(Default)]
pub struct ScriptedGate2 {
    answers: VecDeque<(Decision, Option<Meanwhile>)>,
    pub shown: Vec<Shown>,
}

impl ScriptedGate2 {
    pub fn new() -> ScriptedGate2 {
        ScriptedGate2::default()
    }

    /// Answers `decision` next.
    pub fn then(mut self, decision: Decision) -> ScriptedGate2 {
        self.answers.push_back((decision, None));
        self
    }

    /// Does `meanwhile` while the review is on screen, then answers `decision`.
    pub fn then_after(mut self, meanwhile: impl FnMut() + 'static, decision: Decision) -> ScriptedGate2 {
        self.answers.push_back((decision, Some(Box::new(meanwhile))));
        self
    }

    pub fn approve(score: f64) -> ScriptedGate2 {
        ScriptedGate2::new().then(Decision::Approve { score })
    }
}

impl Gate2 for ScriptedGate2 {
    fn decide(&mut self, review: &Review<'_>) -> Decision {
        self.shown.push(Shown {
            id: review.id.to_string(),
            provider: review.provider.to_string(),
            op: review.op.to_string(),
            path: review.path.to_string(),
            old: review.old.to_string(),
            new: review.new.to_string(),
            verdicts: review.verdicts.to_vec(),
            predicted: review.predicted,
            default_score: review.default_score,
        });
        let (decision, meanwhile) = self.answers.pop_front().expect("Gate 2 was asked more often than scripted");
        if let Some(mut f) = meanwhile {
            f();
        }
        decision
    }
}

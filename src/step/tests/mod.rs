//! Library tests of the step: every outcome and every reason it can end
//! with, driven by a scripted provider and a scripted Gate 2 against real
//! git repositories, real sandboxed checks and a real log ([`support`]).
//!
//! They assert on what the step returns ([`crate::step::Report`]), on the
//! typed entries it logged, and on git's HEAD and the tree — never on
//! wording, which the CLI tests own (one per command's wording and exit
//! code, in `tests/it/`).
//!
//! [`coverage`] names, for each [`Outcome`] and [`Reason`], the test that
//! produces it, in an exhaustive `match`: a new variant does not compile
//! until it is given a test (or a stated reason why none can produce it).
//!
//! | file | what |
//! |---|---|
//! | here | `run`: the provider's answers, Gate 1, Gate 2's answers, auto-merge, the checks, the fence |
//! | `pending` | a proposal that waits: approve, reject, stale, tampered, revised, races at Gate 2 |
//! | `revert` | `ratchet revert` inside and outside the window, a plain `git revert`, crash recovery |

mod pending;
mod revert;
mod support;

use crate::gate::two::{AUTO_SCORE, Decision};
use crate::propose::provider::Failure;
use crate::record::{Choice, Outcome, Reason, Stance};

use support::{Lab, SCRIPTED, Say, ScriptedGate2, Setup, append};

const GUIDE: &str = "# Guide\n\nline one\nline two\n";

/// The test that makes the step end with each outcome and reason; `Err`
/// says why no step can end that way now.
mod coverage {
    use super::*;

    pub fn outcome(o: Outcome) -> &'static str {
        match o {
            Outcome::Merged => "approved_at_gate_2_the_patch_is_applied_committed_and_logged",
            Outcome::Rejected => "the_human_rejects_at_gate_2_and_nothing_is_applied",
            Outcome::Failed => "every_provider_failure_is_logged_with_its_reason_and_touches_nothing",
            Outcome::Pending => "with_nobody_to_ask_the_proposal_waits_and_is_not_queued_twice",
            Outcome::Skipped => "interrupted_at_gate_2_the_step_is_skipped",
            Outcome::Noop => "every_provider_failure_is_logged_with_its_reason_and_touches_nothing",
        }
    }

    pub fn reason(r: Reason) -> Result<&'static str, &'static str> {
        Ok(match r {
            Reason::ProviderUnavailable
            | Reason::ProviderTimeout
            | Reason::ProviderInvalidOutput
            | Reason::ProviderOverBudget
            | Reason::Noop => "every_provider_failure_is_logged_with_its_reason_and_touches_nothing",
            Reason::ProviderCancelled => return Err("older logs only: Ctrl-C is now logged `interrupted`"),
            Reason::AlreadyPending => "with_nobody_to_ask_the_proposal_waits_and_is_not_queued_twice",
            Reason::Gate1 => "gate_1_objects_before_any_human_is_asked",
            Reason::NoHuman => "with_nobody_to_ask_the_proposal_waits_and_is_not_queued_twice",
            Reason::Skipped => "skip_and_quit_at_gate_2_leave_it_pending",
            Reason::Human => "the_human_rejects_at_gate_2_and_nothing_is_applied",
            Reason::TargetDirty => "a_target_with_uncommitted_changes_is_never_committed_with_them",
            Reason::UnexpectedChanges => "a_provider_that_writes_to_the_tree_fails_the_step_and_is_undone",
            Reason::ApplyFailed => "a_target_swapped_for_a_symlink_at_gate_2_is_not_written_through",
            Reason::ChecksFailed => "failing_checks_restore_the_file_exactly",
            Reason::ChecksTimeout => "checks_that_time_out_are_killed_and_the_file_restored",
            Reason::ChecksUnavailable => "checks_whose_sandbox_cannot_be_made_do_not_run_unconfined",
            Reason::HeadMoved => "a_commit_made_while_gate_2_waits_on_a_pending_proposal_is_head_moved",
            Reason::CommitFailed => "a_locked_branch_at_commit_time_fails_the_commit_and_restores",
            Reason::EntryTooLarge => {
                return Err("every field a provider or child fills is bounded (settle::bound_body), so only \
                            rails whose checks command alone nears the 1 MiB entry limit could reach it, and \
                            no process can be given a 1 MiB argument");
            }
            Reason::Stale => "a_pending_proposal_gate_1_now_objects_to_is_stale_when_head_moved",
            Reason::PendingTampered => "a_tampered_pending_file_is_quarantined_and_never_applied",
            Reason::Revised => "a_revision_replaces_the_pending_proposal_and_is_what_merges",
            Reason::Interrupted => "interrupted_at_gate_2_the_step_is_skipped",
            Reason::Other => return Err("a reason a newer version wrote; never written by this one"),
        })
    }
}

#[test]
fn every_outcome_and_reason_has_a_test_that_produces_it() {
    let sources = [include_str!("mod.rs"), include_str!("pending.rs"), include_str!("revert.rs")].concat();
    let exists = |name: &str| sources.contains(&format!("fn {name}() {{"));
    let outcomes =
        [Outcome::Merged, Outcome::Rejected, Outcome::Failed, Outcome::Pending, Outcome::Skipped, Outcome::Noop];
    for o in outcomes {
        assert!(exists(coverage::outcome(o)), "{o:?}: no test named {}", coverage::outcome(o));
    }
    // Every reason the log can hold, from its own word list.
    let mut untestable = Vec::new();
    for word in REASONS {
        let r: Reason = serde_json::from_value(serde_json::json!(word)).expect("a reason");
        assert_eq!(r.word(), *word, "{word} reads back as itself");
        match coverage::reason(r) {
            Ok(test) => assert!(exists(test), "{word}: no test named {test}"),
            Err(_) => untestable.push(*word),
        }
    }
    assert_eq!(untestable, ["provider_cancelled", "entry_too_large", "other"]);
}

/// Every [`Reason`]'s word (the `match` in [`coverage::reason`] keeps this
/// list honest: a new variant fails to compile there first).
const REASONS: &[&str] = &[
    "provider_unavailable",
    "provider_timeout",
    "provider_invalid_output",
    "provider_over_budget",
    "provider_cancelled",
    "noop",
    "already_pending",
    "gate1",
    "no_human",
    "skipped",
    "human",
    "target_dirty",
    "unexpected_changes",
    "apply_failed",
    "checks_failed",
    "checks_timeout",
    "checks_unavailable",
    "head_moved",
    "commit_failed",
    "entry_too_large",
    "stale",
    "pending_tampered",
    "revised",
    "interrupted",
    "other",
];

/// Nothing changed: HEAD is `head`, the guide is as committed, git sees no change.
fn untouched(lab: &Lab, head: &str) {
    assert_eq!(lab.head(), head, "HEAD moved");
    assert_eq!(lab.read("docs/guide.md"), GUIDE);
    assert_eq!(lab.status(), "", "the tree changed");
}

#[test]
fn approved_at_gate_2_the_patch_is_applied_committed_and_logged() {
    let lab = Lab::new();
    let base = lab.head();
    lab.provider.then(Say::text(append("docs/guide.md", "line three\n")));
    let mut gate2 = ScriptedGate2::approve(0.8);
    let r = lab.step(Some(&mut gate2));

    assert_eq!((r.outcome, r.reason, r.provider.as_str()), (Outcome::Merged, None, SCRIPTED));
    let commit = r.commit.clone().expect("a commit");
    assert_eq!(lab.head(), commit);
    assert_eq!(lab.git(&["rev-parse", "HEAD~1"]).trim(), base, "the commit sits on the recorded base");
    assert_eq!(lab.changed_in(&commit), ["docs/guide.md"]);
    assert_eq!(lab.read("docs/guide.md"), format!("{GUIDE}line three\n"));
    assert_eq!(lab.status(), "");
    assert_eq!(lab.git(&["log", "-1", "--format=%(trailers:key=Ratchet-Step,valueonly)", &commit]).trim(), r.id);

    // What the human saw is what was committed.
    let [shown] = gate2.shown.as_slice() else { panic!("Gate 2 asked {} times", gate2.shown.len()) };
    assert_eq!((shown.id.as_str(), shown.op.as_str(), shown.path.as_str()), (r.id.as_str(), "append", "docs/guide.md"));
    assert_eq!((shown.old.as_str(), shown.new.clone()), (GUIDE, lab.read("docs/guide.md")));
    assert!(shown.verdicts.iter().all(|v| v.verdict == Stance::Attest));
    assert_eq!((shown.provider.as_str(), shown.default_score), (SCRIPTED, 1.0));
    assert!(shown.predicted > 0.8 && shown.predicted <= 1.0, "{}", shown.predicted);
    let asked = lab.provider.asked();
    assert_eq!((asked[0].step.as_str(), asked[0].focus.as_str()), (r.id.as_str(), "intent"));
    assert_eq!(asked[0].base.as_deref(), Some(base.as_str()));

    let body = lab.step_body(&r.id);
    assert_eq!(body.outcome, Outcome::Merged);
    assert_eq!(body.base.as_deref(), Some(base.as_str()));
    assert_eq!(body.apply.as_ref().and_then(|a| a.commit.as_deref()), Some(commit.as_str()));
    assert_eq!(body.pick.reason, crate::pick::Reason::Forced);
    let g = body.gate2.expect("Gate 2 is recorded");
    assert_eq!((g.by.as_str(), g.decision, g.human_score), ("alice@example.com", Choice::Approve, 0.8));
    let signals = body.signals.expect("signals");
    assert_eq!((signals.ci_pass, signals.human_score), (1.0, 0.8));
    assert_eq!(body.utility, r.utility);
    assert_eq!(body.cost.calls, 1);
}

#[test]
fn every_provider_failure_is_logged_with_its_reason_and_touches_nothing() {
    let lab = Lab::new();
    let head = lab.head();
    let cases = [
        (Say::fail(Failure::Unavailable { reason: "gone".into() }), Outcome::Failed, Reason::ProviderUnavailable, 0),
        (Say::fail(Failure::Timeout { secs: 5 }), Outcome::Failed, Reason::ProviderTimeout, 1),
        (Say::fail(Failure::OverBudget { reason: "cap".into() }), Outcome::Failed, Reason::ProviderOverBudget, 0),
        (Say::text("this is not JSON"), Outcome::Failed, Reason::ProviderInvalidOutput, 1),
        (Say::text("{\"rationale\": \"cut short"), Outcome::Failed, Reason::ProviderInvalidOutput, 1),
        (Say::text("42"), Outcome::Failed, Reason::ProviderInvalidOutput, 1),
        (Say::fail(Failure::Cancelled), Outcome::Skipped, Reason::Interrupted, 1),
        (Say::noop("nothing worth doing"), Outcome::Noop, Reason::Noop, 1),
    ];
    for (say, outcome, reason, calls) in cases {
        lab.provider.then(say);
        let r = lab.step(None);
        assert_eq!((r.outcome, r.reason), (outcome, Some(reason)), "{reason:?}");
        assert_eq!(r.commit, None);
        let body = lab.step_body(&r.id);
        assert_eq!((body.outcome, body.reason), (outcome, Some(reason)));
        assert_eq!(body.cost.calls, calls, "{reason:?}: calls counted");
        // A failure is scored (it counts against the provider); a noop or
        // Ctrl-C is not.
        assert_eq!(body.utility.is_some(), outcome == Outcome::Failed, "{reason:?}");
        assert_eq!(body.proposal, None);
        untouched(&lab, &head);
    }
    assert_eq!(lab.provider.asked().len(), 8);
    assert!(std::fs::read_dir(lab.ws.pending_dir()).map_or(0, |d| d.count()) == 0);
}

#[test]
fn a_provider_that_writes_to_the_tree_fails_the_step_and_is_undone() {
    let lab = Lab::new();
    let head = lab.head();
    // It writes the very change it proposes, and a file besides.
    lab.provider.then(Say::text(append("docs/guide.md", "line three\n")).meddling(|root| {
        support::write(root, "docs/guide.md", &format!("{GUIDE}line three\n"));
        support::write(root, "docs/extra.md", "planted\n");
    }));
    let mut gate2 = ScriptedGate2::approve(1.0);
    let r = lab.step(Some(&mut gate2));
    assert_eq!((r.outcome, r.reason), (Outcome::Failed, Some(Reason::UnexpectedChanges)));
    assert!(gate2.shown.is_empty(), "nothing reaches Gate 2 after the fence is breached");
    assert!(!lab.path("docs/extra.md").exists(), "the planted file is removed");
    untouched(&lab, &head);
    assert_eq!(lab.step_body(&r.id).cost.calls, 1);
}

#[test]
fn gate_1_objects_before_any_human_is_asked() {
    let lab = Lab::new();
    let head = lab.head();
    // Code is above the provider's tier; the rails are protected; two files are not atomic.
    let two = serde_json::json!({"rationale": "two", "patches": [
        {"op": "append", "path": "docs/guide.md", "content": "a\n"},
        {"op": "create", "path": "docs/b.md", "content": "b\n"}]});
    for proposal in [append("src/lib.rs", "// more\n"), append("config/rails.toml", "# more\n"), two.to_string()] {
        lab.provider.then(Say::text(proposal));
        let mut gate2 = ScriptedGate2::new();
        let r = lab.step(Some(&mut gate2));
        assert_eq!((r.outcome, r.reason), (Outcome::Rejected, Some(Reason::Gate1)));
        assert!(gate2.shown.is_empty());
        let body = lab.step_body(&r.id);
        assert!(body.gate1.iter().any(|v| v.verdict == Stance::Object), "{:?}", body.gate1);
        assert!(body.utility.is_some(), "a Gate 1 rejection is scored");
        untouched(&lab, &head);
    }
}

#[test]
fn with_nobody_to_ask_the_proposal_waits_and_is_not_queued_twice() {
    // Auto-merge is off (the default): nothing merges unseen.
    let lab = Lab::new();
    let head = lab.head();
    lab.provider.then(Say::text(append("docs/guide.md", "line three\n")));
    lab.provider.then(Say::text(append("docs/guide.md", "line three\n")));
    let first = lab.step(None);
    assert_eq!((first.outcome, first.reason), (Outcome::Pending, Some(Reason::NoHuman)));
    assert_eq!(first.pending.as_deref(), Some(format!("logs/pending/{}.json", first.id).as_str()));
    assert!(lab.path(first.pending.as_deref().unwrap()).is_file());
    let body = lab.step_body(&first.id);
    assert_eq!((body.outcome, body.gate2), (Outcome::Pending, None));
    untouched(&lab, &head);

    let twin = lab.step(None);
    assert_eq!((twin.outcome, twin.reason), (Outcome::Noop, Some(Reason::AlreadyPending)));
    assert_eq!(twin.pending, None);
    assert!(!lab.path(&format!("logs/pending/{}.json", twin.id)).exists());
    let session = lab.session();
    let waiting = crate::step::waiting(&session).expect("the pending list");
    assert_eq!(waiting.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), [first.id.as_str()]);
}

#[test]
fn skip_and_quit_at_gate_2_leave_it_pending() {
    let lab = Lab::new();
    let head = lab.head();
    for (decision, quit) in [(Decision::Skip, false), (Decision::Quit, true)] {
        lab.provider.then(Say::text(append("docs/guide.md", &format!("{quit}\n"))));
        let mut gate2 = ScriptedGate2::new().then(decision);
        let r = lab.step(Some(&mut gate2));
        assert_eq!((r.outcome, r.reason, r.quit), (Outcome::Pending, Some(Reason::Skipped), quit));
        assert!(lab.path(&format!("logs/pending/{}.json", r.id)).is_file());
        let g = lab.step_body(&r.id).gate2.expect("Gate 2 is recorded");
        assert_eq!((g.decision, g.human_score), (Choice::Skip, 0.0));
        untouched(&lab, &head);
    }
}

#[test]
fn the_human_rejects_at_gate_2_and_nothing_is_applied() {
    let lab = Lab::new();
    let head = lab.head();
    lab.provider.then(Say::text(append("docs/guide.md", "line three\n")));
    let mut gate2 = ScriptedGate2::new().then(Decision::Reject { reason: Some("not this".into()) });
    let r = lab.step(Some(&mut gate2));
    assert_eq!((r.outcome, r.reason), (Outcome::Rejected, Some(Reason::Human)));
    let body = lab.step_body(&r.id);
    let g = body.gate2.expect("Gate 2 is recorded");
    assert_eq!((g.decision, g.reason.as_deref()), (Choice::Reject, Some("not this")));
    assert_eq!(body.signals.expect("scored").human_score, 0.0);
    untouched(&lab, &head);
}

#[test]
fn interrupted_at_gate_2_the_step_is_skipped() {
    let lab = Lab::new();
    let head = lab.head();
    lab.provider.then(Say::text(append("docs/guide.md", "line three\n")));
    let mut gate2 = ScriptedGate2::new().then(Decision::Interrupt);
    let r = lab.step(Some(&mut gate2));
    assert_eq!((r.outcome, r.reason, r.utility), (Outcome::Skipped, Some(Reason::Interrupted), None));
    assert!(!lab.path(&format!("logs/pending/{}.json", r.id)).exists(), "nothing waits");
    untouched(&lab, &head);
}

#[test]
fn an_edit_at_gate_2_is_judged_again_shown_again_and_recorded() {
    let lab = Lab::new();
    lab.provider.then(Say::text(append("docs/guide.md", "line three\n")));
    let edited: serde_json::Value = serde_json::from_str(&append("docs/guide.md", "line 3, edited\n")).unwrap();
    let outside: serde_json::Value = serde_json::from_str(&append("config/rails.toml", "# x\n")).unwrap();
    let mut gate2 =
        ScriptedGate2::new().then(Decision::Edit { proposal: edited }).then(Decision::Approve { score: 1.0 });
    let r = lab.step(Some(&mut gate2));
    assert_eq!(r.outcome, Outcome::Merged);
    assert_eq!(gate2.shown.len(), 2, "the edit is shown before it is approved");
    assert!(gate2.shown[1].new.ends_with("line 3, edited\n"));
    assert_eq!(lab.read("docs/guide.md"), format!("{GUIDE}line 3, edited\n"));
    let g = lab.step_body(&r.id).gate2.expect("Gate 2 is recorded");
    assert!(g.reason.is_some_and(|why| why.contains("edited")), "the approval records the edit");

    // An edit that reaches outside the rails meets Gate 1, not the human.
    lab.provider.then(Say::text(append("docs/guide.md", "line four\n")));
    let head = lab.head();
    let mut gate2 = ScriptedGate2::new().then(Decision::Edit { proposal: outside });
    let r = lab.step(Some(&mut gate2));
    assert_eq!((r.outcome, r.reason), (Outcome::Rejected, Some(Reason::Gate1)));
    assert_eq!((gate2.shown.len(), lab.head()), (1, head));
}

#[test]
fn a_target_with_uncommitted_changes_is_never_committed_with_them() {
    let lab = Lab::new();
    let head = lab.head();
    let dirty = format!("{GUIDE}uncommitted\n");
    lab.write("docs/guide.md", &dirty);
    lab.provider.then(Say::text(append("docs/guide.md", "line three\n")));
    // Without --allow-dirty the step does not begin.
    let err = lab.try_step(lab.options(None)).expect_err("a dirty tree stops the step");
    assert!(matches!(&err, crate::step::StepError::DirtyTree { paths } if paths == &["docs/guide.md"]), "{err:?}");
    assert!(lab.provider.asked().is_empty());
    // With it, the dirty target itself is refused.
    let mut gate2 = ScriptedGate2::approve(1.0);
    let r = lab.try_step(crate::step::Options { allow_dirty: true, ..lab.options(Some(&mut gate2)) }).unwrap();
    assert_eq!((r.outcome, r.reason), (Outcome::Rejected, Some(Reason::TargetDirty)));
    assert!(gate2.shown.is_empty());
    assert_eq!((lab.head(), lab.read("docs/guide.md")), (head, dirty), "the human's edit is left alone");
}

/// A lab whose checks are `checks`, after an approved append to the guide.
fn checked(setup: Setup) -> (Lab, String, crate::step::Report) {
    let lab = Lab::with(setup);
    let head = lab.head();
    lab.provider.then(Say::text(append("docs/guide.md", "line three\n")));
    let r = lab.step(Some(&mut ScriptedGate2::approve(1.0)));
    (lab, head, r)
}

#[test]
fn failing_checks_restore_the_file_exactly() {
    let (lab, head, r) = checked(Setup { checks: "exit 3", ..Setup::default() });
    assert_eq!((r.outcome, r.reason, r.commit.as_deref()), (Outcome::Failed, Some(Reason::ChecksFailed), None));
    let checks = lab.step_body(&r.id).apply.and_then(|a| a.checks).expect("the checks are recorded");
    assert_eq!((checks.exit, checks.timed_out), (Some(3), false));
    assert_eq!(lab.step_body(&r.id).signals.expect("scored").ci_pass, 0.0);
    untouched(&lab, &head);
}

#[test]
fn checks_that_time_out_are_killed_and_the_file_restored() {
    let (lab, head, r) = checked(Setup { checks: "sleep 30", checks_timeout: 1, ..Setup::default() });
    assert_eq!((r.outcome, r.reason), (Outcome::Failed, Some(Reason::ChecksTimeout)));
    let checks = lab.step_body(&r.id).apply.and_then(|a| a.checks).expect("the checks are recorded");
    assert!(checks.timed_out && checks.exit.is_none() && checks.secs < 10.0, "{checks:?}");
    untouched(&lab, &head);
}

#[test]
fn checks_whose_sandbox_cannot_be_made_do_not_run_unconfined() {
    // A writable path that cannot be created: the sandbox cannot hold, so
    // the checks (which would leave a mark) never run.
    let (lab, head, r) =
        checked(Setup { checks: "touch docs/ran.md", writable: vec!["/dev/null/cannot".into()], ..Setup::default() });
    assert_eq!((r.outcome, r.reason), (Outcome::Failed, Some(Reason::ChecksUnavailable)));
    assert!(!lab.path("docs/ran.md").exists(), "the checks did not run");
    untouched(&lab, &head);
}

#[test]
fn checks_that_change_another_file_fail_the_step_and_are_undone() {
    let (lab, head, r) =
        checked(Setup { checks: "echo planted > docs/other.md && echo x >> src/lib.rs", ..Setup::default() });
    assert_eq!((r.outcome, r.reason), (Outcome::Failed, Some(Reason::UnexpectedChanges)));
    assert!(!lab.path("docs/other.md").exists());
    assert_eq!(lab.read("src/lib.rs"), "pub fn answer() -> u32 {\n    42\n}\n");
    untouched(&lab, &head);
}

#[test]
fn auto_merge_merges_a_narrow_docs_patch_unseen_and_nothing_wider() {
    let lab = Lab::with(Setup { auto_merge: true, ..Setup::default() });
    lab.provider.then(Say::text(append("docs/guide.md", "line three\n")));
    // A human at the terminal is not asked what the rule lets through.
    let mut gate2 = ScriptedGate2::new();
    let r = lab.step(Some(&mut gate2));
    assert_eq!((r.outcome, r.commit.as_deref()), (Outcome::Merged, Some(lab.head().as_str())));
    assert!(gate2.shown.is_empty());
    let g = lab.step_body(&r.id).gate2.expect("Gate 2 is recorded");
    assert_eq!((g.by.as_str(), g.decision, g.human_score), ("auto", Choice::Approve, AUTO_SCORE));

    // Over [gate.auto_merge] max_lines (10): it waits for a human.
    let head = lab.head();
    lab.provider.then(Say::text(append("docs/guide.md", &"more\n".repeat(11))));
    let r = lab.step(None);
    assert_eq!((r.outcome, r.reason), (Outcome::Pending, Some(Reason::NoHuman)));
    assert_eq!(lab.head(), head);
    // Outside [gate.auto_merge] paths (a top-level *.md the docs tier may touch): it waits too.
    lab.provider.then(Say::text(
        serde_json::json!({"rationale": "r",
        "patch": {"op": "create", "path": "NOTES.md", "content": "n\n"}, "next_steps": ["x"]})
        .to_string(),
    ));
    let r = lab.step(None);
    assert_eq!((r.outcome, r.reason), (Outcome::Pending, Some(Reason::NoHuman)));
    assert_eq!(lab.head(), head);
}

#[test]
fn a_commit_made_in_another_terminal_during_gate_2_stands() {
    // The human approves after committing elsewhere: the approval was for
    // another base, so nothing is applied, and nothing of theirs is undone.
    let lab = Lab::new();
    lab.provider.then(Say::text(append("docs/guide.md", "line three\n")));
    let root = lab.root.clone();
    let meanwhile = move || {
        support::write(&root, "src/lib.rs", "// another terminal\n");
        support::git(&root, &["commit", "-q", "-am", "meanwhile"]);
    };
    let mut gate2 = ScriptedGate2::new().then_after(meanwhile, Decision::Approve { score: 1.0 });
    let r = lab.step(Some(&mut gate2));
    assert_eq!((r.outcome, r.reason, r.commit), (Outcome::Failed, Some(Reason::HeadMoved), None));
    assert_eq!(lab.git(&["log", "-1", "--format=%s"]).trim(), "meanwhile", "the person's commit stands");
    assert_eq!(lab.read("src/lib.rs"), "// another terminal\n");
    assert_eq!(lab.read("docs/guide.md"), GUIDE, "nothing was applied");
    assert_eq!(lab.status(), "", "the index is the person's, not put back");
}

#[test]
fn an_edit_made_during_gate_2_is_kept_and_the_approved_patch_merges() {
    // With the sandbox on no child outlives its run, so what changed while
    // the human decided is theirs: kept, and not blamed on the checks.
    let lab = Lab::new();
    lab.provider.then(Say::text(append("docs/guide.md", "line three\n")));
    let root = lab.root.clone();
    let meanwhile = move || support::write(&root, "src/lib.rs", "// being edited\n");
    let mut gate2 = ScriptedGate2::new().then_after(meanwhile, Decision::Approve { score: 1.0 });
    let r = lab.step(Some(&mut gate2));
    assert_eq!((r.outcome, r.reason), (Outcome::Merged, None), "{r:?}");
    let commit = r.commit.expect("a commit");
    assert_eq!(lab.changed_in(&commit), ["docs/guide.md"], "the edit is not in the step's commit");
    assert_eq!(lab.read("src/lib.rs"), "// being edited\n", "the edit is kept");
}

#[test]
fn with_the_sandbox_off_a_change_during_gate_2_fails_the_step_and_stays() {
    // A child could still be running, so the change is not the human's for
    // sure: the step fails, and nothing is put back (it may be theirs).
    let lab = Lab::with(Setup { sandbox_off: true, ..Setup::default() });
    lab.provider.then(Say::text(append("docs/guide.md", "line three\n")));
    let root = lab.root.clone();
    let meanwhile = move || support::write(&root, "src/lib.rs", "// changed meanwhile\n");
    let mut gate2 = ScriptedGate2::new().then_after(meanwhile, Decision::Approve { score: 1.0 });
    let head = lab.head();
    let r = lab.step(Some(&mut gate2));
    assert_eq!((r.outcome, r.reason, r.commit), (Outcome::Failed, Some(Reason::UnexpectedChanges), None));
    assert_eq!(lab.head(), head);
    assert_eq!(lab.read("docs/guide.md"), GUIDE, "nothing was applied");
    assert_eq!(lab.read("src/lib.rs"), "// changed meanwhile\n", "nothing was put back");
    let body = lab.step_body(&r.id);
    assert!(body.detail.as_deref().is_some_and(|d| d.contains("src/lib.rs")), "{:?}", body.detail);
}

#[test]
fn what_changes_while_the_look_at_the_tree_is_under_way_was_changed_before_the_step() {
    // `ratchet step` starts the look as soon as it holds the lock; whatever
    // changes before the provider runs (ratchet's own start-up, the user)
    // is the tree as the step found it: not blamed on a child, never put back.
    let lab = Lab::new();
    let s = lab.session();
    let mut looking = super::fence::Fence::start(&lab.root);
    looking.snapshot().expect("the look reads the index");
    lab.write("src/lib.rs", "// edited while the step starts\n");
    let mut fence = looking.join(&s.repo, s.ws.home_rel()).expect("the look");
    assert!(fence.before.contains_key("src/lib.rs"), "{:?}", fence.before);
    assert!(fence.check(&s.repo, &s.rails.paths, super::fence::Phase::Proposed).is_ok());
    assert_eq!(lab.read("src/lib.rs"), "// edited while the step starts\n", "nothing was put back");
    // A change after the look is a child's, and is caught.
    lab.write("docs/guide.md", "# Guide\n\nrewritten by a child\n");
    let breach = fence.check(&s.repo, &s.rails.paths, super::fence::Phase::Proposed).expect_err("caught");
    assert_eq!(breach.changed, ["docs/guide.md"]);
    assert_eq!(lab.read("docs/guide.md"), GUIDE, "put back");
}

#[test]
fn an_ignored_file_made_while_the_look_is_under_way_does_not_make_the_tree_dirty() {
    let lab = Lab::new();
    lab.write(".gitignore", "*.pyc\n");
    lab.git(&["add", ".gitignore"]);
    lab.git(&["commit", "-q", "-m", "ignore caches"]);
    let s = lab.session();
    let mut looking = super::fence::Fence::start(&lab.root);
    looking.snapshot().expect("the look reads the index");
    lab.write("src/cache.pyc", "bytes an editor left\n");
    let fence = looking.join(&s.repo, s.ws.home_rel()).expect("the look");
    assert!(!fence.before.contains_key("src/cache.pyc"), "{:?}", fence.before);
}

//! A proposal that waits for a human (`ratchet approve`, `reject`,
//! `review`): verified against the log, judged again now, shown, and only
//! then carried out — and what a person or a process does meanwhile.

use crate::gate::two::Decision;
use crate::record::{Choice, Outcome, Reason};
use crate::step::{Quiet, Replaced, Report, StepError, decide, reject, replace_pending};

use super::GUIDE;
use super::support::{Lab, Say, ScriptedGate2, append, replace_whole};

/// A lab with `proposal` waiting for a human; the step's report.
fn waiting(proposal: &str) -> (Lab, Report) {
    let lab = Lab::new();
    lab.provider.then(Say::text(proposal));
    let r = lab.step(None);
    assert_eq!(r.outcome, Outcome::Pending);
    (lab, r)
}

fn approve(lab: &Lab, id: &str, gate2: &mut ScriptedGate2) -> Result<Report, StepError> {
    let mut s = lab.session();
    decide(&mut s, id, gate2, 1.0, None, &mut Quiet)
}

#[test]
fn approved_later_it_merges_under_the_same_id() {
    let (lab, pending) = waiting(&append("docs/guide.md", "line three\n"));
    // Someone else's commit since does not touch the guide: still fine.
    let moved = lab.commit("src/lib.rs", "pub fn answer() -> u32 {\n    43\n}\n", "elsewhere");
    let mut gate2 = ScriptedGate2::approve(0.9);
    let r = approve(&lab, &pending.id, &mut gate2).expect("approved");
    assert_eq!((r.id.as_str(), r.outcome), (pending.id.as_str(), Outcome::Merged));
    let commit = r.commit.expect("a commit");
    assert_eq!(lab.git(&["rev-parse", "HEAD~1"]).trim(), moved, "committed on HEAD as it is now");
    assert_eq!(lab.read("docs/guide.md"), format!("{GUIDE}line three\n"));
    assert_eq!(gate2.shown[0].old, GUIDE);
    let entries = lab.step_entries(&pending.id);
    assert_eq!(entries.iter().map(|b| b.outcome).collect::<Vec<_>>(), [Outcome::Pending, Outcome::Merged]);
    let last = entries.last().unwrap();
    assert_eq!(last.base.as_deref(), Some(moved.as_str()));
    assert_eq!(last.apply.as_ref().and_then(|a| a.commit.as_deref()), Some(commit.as_str()));
    assert!(!lab.path(&format!("logs/pending/{}.json", r.id)).exists(), "the pending file goes");
    // Settled: it is no longer pending.
    let err = approve(&lab, &pending.id, &mut ScriptedGate2::approve(1.0)).expect_err("not pending");
    assert!(matches!(err, StepError::NotPending { .. }), "{err:?}");
}

#[test]
fn rejected_later_it_is_logged_and_nothing_changes() {
    let (lab, pending) = waiting(&append("docs/guide.md", "line three\n"));
    let head = lab.head();
    let mut s = lab.session();
    let r = reject(&mut s, &pending.id, Some("no".into())).expect("rejected");
    drop(s);
    assert_eq!((r.outcome, r.reason), (Outcome::Rejected, Some(Reason::Human)));
    let g = lab.step_body(&pending.id).gate2.expect("Gate 2 is recorded");
    assert_eq!((g.decision, g.reason.as_deref()), (Choice::Reject, Some("no")));
    assert_eq!((lab.head(), lab.read("docs/guide.md")), (head, GUIDE.to_string()));
}

#[test]
fn skipped_or_interrupted_at_approval_it_still_waits() {
    let (lab, pending) = waiting(&append("docs/guide.md", "line three\n"));
    for (decision, reason) in [(Decision::Skip, Reason::Skipped), (Decision::Interrupt, Reason::Interrupted)] {
        let r = approve(&lab, &pending.id, &mut ScriptedGate2::new().then(decision)).expect("decided");
        assert_eq!((r.outcome, r.reason), (Outcome::Pending, Some(reason)));
        assert_eq!(lab.step_body(&pending.id).outcome, Outcome::Pending, "nothing is logged");
    }
    assert_eq!(approve(&lab, &pending.id, &mut ScriptedGate2::approve(1.0)).unwrap().outcome, Outcome::Merged);
}

#[test]
fn a_stale_whole_file_replace_is_refused_before_it_is_shown() {
    let (lab, pending) = waiting(&replace_whole("docs/guide.md", "# Guide\n\nrewritten\n"));
    let moved = lab.commit("docs/guide.md", &format!("{GUIDE}a human's line\n"), "a human edits the guide");
    let mut gate2 = ScriptedGate2::new();
    let err = approve(&lab, &pending.id, &mut gate2).expect_err("stale");
    assert!(matches!(&err, StepError::StaleProposal { path, .. } if path == "docs/guide.md"), "{err:?}");
    assert!(gate2.shown.is_empty());
    assert_eq!(lab.head(), moved);
    assert_eq!(lab.read("docs/guide.md"), format!("{GUIDE}a human's line\n"), "the human's line is not undone");
    assert_eq!(lab.step_body(&pending.id).outcome, Outcome::Pending, "it still waits");
}

#[test]
fn a_pending_proposal_gate_1_now_objects_to_is_stale_when_head_moved() {
    let patch = serde_json::json!({"rationale": "r", "next_steps": ["n"],
        "patch": {"op": "replace", "path": "docs/guide.md", "old": "line two\n", "new": "line 2\n"}});
    let (lab, pending) = waiting(&patch.to_string());
    let moved = lab.commit("docs/guide.md", "# Guide\n\nline one\n", "line two goes");
    let mut gate2 = ScriptedGate2::new();
    let r = approve(&lab, &pending.id, &mut gate2).expect("settled");
    assert_eq!((r.outcome, r.reason), (Outcome::Rejected, Some(Reason::Stale)));
    assert!(gate2.shown.is_empty(), "the human is not asked about what no longer applies");
    let body = lab.step_body(&pending.id);
    assert_eq!(body.base.as_deref(), Some(moved.as_str()), "judged on HEAD as it is now");
    assert_eq!(lab.head(), moved);
}

#[test]
fn a_pending_proposal_gate_1_now_objects_to_without_a_move_is_a_gate_1_rejection() {
    let create = serde_json::json!({"rationale": "r", "next_steps": ["n"],
        "patch": {"op": "create", "path": "docs/new.md", "content": "new\n"}});
    let (lab, pending) = waiting(&create.to_string());
    let head = lab.head();
    lab.write("docs/new.md", "someone's own file\n");
    let r = approve(&lab, &pending.id, &mut ScriptedGate2::new()).expect("settled");
    assert_eq!((r.outcome, r.reason), (Outcome::Rejected, Some(Reason::Gate1)));
    assert_eq!((lab.head(), lab.read("docs/new.md")), (head, "someone's own file\n".to_string()));
}

#[test]
fn a_tampered_pending_file_is_quarantined_and_never_applied() {
    let (lab, pending) = waiting(&append("docs/guide.md", "line three\n"));
    let head = lab.head();
    let file = lab.path(&format!("logs/pending/{}.json", pending.id));
    let text = std::fs::read_to_string(&file).unwrap().replace("line three", "line EVIL");
    std::fs::write(&file, text).unwrap();
    let mut gate2 = ScriptedGate2::approve(1.0);
    let err = approve(&lab, &pending.id, &mut gate2).expect_err("tampered");
    assert!(matches!(err, StepError::PendingTampered { .. }), "{err:?}");
    assert!(gate2.shown.is_empty());
    let body = lab.step_body(&pending.id);
    assert_eq!((body.outcome, body.reason), (Outcome::Failed, Some(Reason::PendingTampered)));
    assert!(!file.exists());
    assert!(lab.path(&format!("logs/quarantine/pending-{}.json", pending.id)).is_file());
    assert_eq!((lab.head(), lab.read("docs/guide.md")), (head, GUIDE.to_string()));
}

#[test]
fn a_revision_replaces_the_pending_proposal_and_is_what_merges() {
    let (lab, pending) = waiting(&append("docs/guide.md", "line three\n"));
    let revised: serde_json::Value = serde_json::from_str(&append("docs/guide.md", "line 3, revised\n")).unwrap();
    let mut s = lab.session();
    let packet = match replace_pending(&mut s, &pending.id, revised, "the bots adopted a revision").expect("replaced") {
        Replaced::Adopted { packet, .. } => packet,
        other => panic!("{other:?}"),
    };
    drop(s);
    let body = lab.step_body(&pending.id);
    assert_eq!((body.outcome, body.reason), (Outcome::Pending, Some(Reason::Revised)));
    assert_eq!(body.proposal.map(|p| p.packet), Some(packet));
    // A revision Gate 1 objects to changes nothing.
    let mut s = lab.session();
    let outside: serde_json::Value = serde_json::from_str(&append("config/rails.toml", "# x\n")).unwrap();
    assert!(matches!(replace_pending(&mut s, &pending.id, outside, "no").unwrap(), Replaced::Objected { .. }));
    drop(s);
    let mut gate2 = ScriptedGate2::approve(1.0);
    assert_eq!(approve(&lab, &pending.id, &mut gate2).unwrap().outcome, Outcome::Merged);
    assert_eq!(lab.read("docs/guide.md"), format!("{GUIDE}line 3, revised\n"));
    assert!(gate2.shown[0].new.ends_with("line 3, revised\n"), "the human saw the revision");
}

#[test]
fn a_commit_made_while_gate_2_waits_on_a_pending_proposal_is_head_moved() {
    let (lab, pending) = waiting(&append("docs/guide.md", "line three\n"));
    let root = lab.root.clone();
    let meanwhile = move || {
        super::support::write(&root, "src/lib.rs", "// another terminal\n");
        super::support::git(&root, &["commit", "-q", "-am", "meanwhile"]);
    };
    let mut gate2 = ScriptedGate2::new().then_after(meanwhile, Decision::Approve { score: 1.0 });
    let r = approve(&lab, &pending.id, &mut gate2).expect("settled");
    assert_eq!((r.outcome, r.reason, r.commit), (Outcome::Failed, Some(Reason::HeadMoved), None));
    assert_eq!(lab.git(&["log", "-1", "--format=%s"]).trim(), "meanwhile", "the person's commit stands");
    assert_eq!(lab.read("docs/guide.md"), GUIDE, "the patch is undone");
    assert_eq!(lab.status(), "");
}

#[test]
fn a_locked_branch_at_commit_time_fails_the_commit_and_restores() {
    let (lab, pending) = waiting(&append("docs/guide.md", "line three\n"));
    let head = lab.head();
    let lock = lab.path(".git/refs/heads/main.lock");
    let held = lock.clone();
    // Another git process holds the branch's lock while ratchet commits.
    let meanwhile = move || std::fs::write(&held, "").unwrap();
    let mut gate2 = ScriptedGate2::new().then_after(meanwhile, Decision::Approve { score: 1.0 });
    let r = approve(&lab, &pending.id, &mut gate2).expect("settled");
    assert_eq!((r.outcome, r.reason), (Outcome::Failed, Some(Reason::CommitFailed)));
    std::fs::remove_file(&lock).unwrap();
    assert_eq!(lab.head(), head);
    assert_eq!(lab.read("docs/guide.md"), GUIDE);
}

#[test]
fn a_target_swapped_for_a_symlink_at_gate_2_is_not_written_through() {
    let (lab, pending) = waiting(&append("docs/guide.md", "line three\n"));
    let head = lab.head();
    let root = lab.root.clone();
    let outside = lab.root.parent().unwrap().join("outside.md");
    std::fs::write(&outside, GUIDE).unwrap();
    let link_to = outside.clone();
    let meanwhile = move || {
        std::fs::remove_file(root.join("docs/guide.md")).unwrap();
        std::os::unix::fs::symlink(&link_to, root.join("docs/guide.md")).unwrap();
    };
    let mut gate2 = ScriptedGate2::new().then_after(meanwhile, Decision::Approve { score: 1.0 });
    let r = approve(&lab, &pending.id, &mut gate2).expect("settled");
    assert_eq!((r.outcome, r.reason), (Outcome::Failed, Some(Reason::ApplyFailed)));
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), GUIDE, "nothing is written through the link");
    assert_eq!(lab.head(), head);
}

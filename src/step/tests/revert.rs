//! Reverts (`ratchet revert` inside and outside the window, a plain `git
//! revert` found in history) and the crash journal's recovery.

use crate::patch::{Previous, Undo};
use crate::pick::Reason as PickReason;
use crate::record::{Detector, Outcome, PickRecord, Reason};
use crate::step::{Inflight, Phase, Quiet, StepError, revert};

use super::GUIDE;
use super::support::{Lab, Say, ScriptedGate2, append};

/// A lab whose first step merged an append to the guide at [`super::support::START`]; its id.
fn merged() -> (Lab, String) {
    let lab = Lab::new();
    lab.provider.then(Say::text(append("docs/guide.md", "line three\n")));
    let r = lab.step(Some(&mut ScriptedGate2::approve(1.0)));
    assert_eq!(r.outcome, Outcome::Merged);
    (lab, r.id)
}

#[test]
fn a_revert_inside_the_window_caps_the_utility() {
    let (lab, id) = merged();
    let step_commit = lab.head();
    let previous = lab.step_body(&id).utility.expect("scored");
    assert!(previous > 0.2, "{previous}");
    lab.at("2026-11-21T21:00:00Z");
    let mut s = lab.session();
    let r = revert(&mut s, &id, &mut Quiet).expect("reverted");
    drop(s);
    assert_eq!((r.hours, r.previous_utility, r.utility, r.capped), (2.0, previous, 0.2, true));
    assert_eq!(lab.head(), r.commit);
    assert_eq!(lab.git(&["rev-parse", "HEAD~1"]).trim(), step_commit);
    assert_eq!(lab.changed_in(&r.commit), ["docs/guide.md"]);
    assert_eq!(lab.git(&["log", "-1", "--format=%(trailers:key=Ratchet-Revert,valueonly)"]).trim(), id);
    assert_eq!((lab.read("docs/guide.md"), lab.status()), (GUIDE.to_string(), String::new()));
    let [amend] = lab.amends().try_into().expect("one amendment");
    assert_eq!((amend.step.as_str(), amend.detected_by, amend.utility), (id.as_str(), Detector::RatchetRevert, 0.2));
    assert_eq!(amend.commit.as_deref(), Some(r.commit.as_str()));

    // Once is enough; and only a merged step can be reverted.
    let mut s = lab.session();
    assert!(matches!(revert(&mut s, &id, &mut Quiet), Err(StepError::AlreadyReverted { .. })));
    assert!(matches!(revert(&mut s, "s1", &mut Quiet), Err(StepError::NotMerged { .. })));
}

#[test]
fn a_revert_outside_the_window_keeps_the_utility() {
    let (lab, id) = merged();
    let previous = lab.step_body(&id).utility.expect("scored");
    lab.at("2026-11-23T19:00:00Z");
    let mut s = lab.session();
    let r = revert(&mut s, &id, &mut Quiet).expect("reverted");
    drop(s);
    assert_eq!((r.hours, r.utility, r.capped), (48.0, previous, false));
    assert_eq!(lab.read("docs/guide.md"), GUIDE);
    let [amend] = lab.amends().try_into().expect("one amendment");
    assert_eq!((amend.utility, amend.capped), (previous, false));
}

#[test]
fn a_plain_git_revert_is_found_and_amended() {
    let (lab, id) = merged();
    lab.git(&["revert", "--no-edit", "HEAD"]);
    let s = lab.session();
    assert!(s.history().unwrap().step(&id).and_then(|st| st.reverted.as_ref()).is_some());
    drop(s);
    let [amend] = lab.amends().try_into().expect("one amendment");
    assert_eq!((amend.step.as_str(), amend.detected_by), (id.as_str(), Detector::GitHistory));
    // Found once, not again at every command.
    drop(lab.session());
    assert_eq!(lab.amends().len(), 1);
}

/// Saves a crash journal for a step that died applying `written` to the guide.
fn died_applying(lab: &Lab, written: &str) -> String {
    let s = lab.session();
    let id = s.next_id();
    let pick = PickRecord {
        provider: super::SCRIPTED.into(),
        reason: PickReason::Forced,
        seed: String::new(),
        focus: "intent".into(),
        note: None,
        capped: Vec::new(),
    };
    let body = super::super::fresh_body(&s, s.repo.head_commit(), pick, Outcome::Failed);
    drop(s);
    lab.write("docs/guide.md", written);
    let undo = Undo { path: "docs/guide.md".into(), previous: Previous::File { content: GUIDE.into(), mode: 0o644 } };
    let inflight = Inflight { id: id.clone(), pid: 1, phase: Phase::Apply, body, undo: Some(undo) };
    inflight.save(&lab.ws).expect("saved");
    id
}

#[test]
fn a_step_that_died_mid_apply_is_restored_and_logged_interrupted() {
    let lab = Lab::new();
    let head = lab.head();
    let id = died_applying(&lab, "half of a patch");
    let s = lab.session();
    assert!(s.notes.iter().any(|n| n.contains(&id)), "{:?}", s.notes);
    drop(s);
    let body = lab.step_body(&id);
    assert_eq!((body.outcome, body.reason), (Outcome::Failed, Some(Reason::Interrupted)));
    assert_eq!((lab.head(), lab.read("docs/guide.md"), lab.status()), (head, GUIDE.to_string(), String::new()));
    assert!(Inflight::load(&lab.ws).unwrap().is_none(), "the crash journal is cleared");
}

#[test]
fn a_crash_journal_ratchet_did_not_write_is_refused_not_obeyed() {
    let lab = Lab::new();
    let id = died_applying(&lab, "half of a patch");
    // Someone points the undo at another file (the MAC no longer verifies).
    let file = crate::step::inflight::path(&lab.ws);
    let text = std::fs::read_to_string(&file).unwrap().replace("docs/guide.md", "src/lib.rs");
    std::fs::write(&file, text).unwrap();
    let err = lab.try_session().err().expect("refused");
    assert!(matches!(err, StepError::Recovery { .. }), "{err:?}");
    assert_eq!(lab.read("src/lib.rs"), "pub fn answer() -> u32 {\n    42\n}\n", "nothing was written");
    assert!(lab.step_entries(&id).is_empty());
}

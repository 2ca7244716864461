//! The patch engine on real repositories: atomicity, exact undo, budgets,
//! and the after-apply `git status` check.

use std::os::unix::fs::PermissionsExt;

use ratchet::error::Coded;
use ratchet::gate;
use ratchet::patch::{self, Patch, PatchError, Previous};
use ratchet::propose::Proposal;

use crate::support::repo::{RAILS, TestRepo};

fn mode(repo: &TestRepo, rel: &str) -> u32 {
    std::fs::metadata(repo.path(rel)).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_patch_that_fails_to_apply_leaves_the_file_byte_identical() {
    let repo = TestRepo::new();
    let rails = repo.rails();
    let before = repo.snapshot();
    for (p, code) in [
        (
            Patch::Replace { path: "docs/guide.md".into(), old: Some("Four.".into()), new: "4".into() },
            "OLD_TEXT_NOT_FOUND",
        ),
        (
            Patch::Replace { path: "docs/guide.md".into(), old: Some("e.\n".into()), new: "4".into() },
            "OLD_TEXT_AMBIGUOUS",
        ),
        (Patch::Create { path: "docs/guide.md".into(), content: "x".into() }, "TARGET_EXISTS"),
        (Patch::Append { path: "docs/missing.md".into(), content: "x".into() }, "TARGET_MISSING"),
        (Patch::Replace { path: "docs/missing/deep.md".into(), old: None, new: "x".into() }, "TARGET_MISSING"),
    ] {
        let err = patch::apply(repo.root(), &rails.paths, &p).unwrap_err();
        assert_eq!(err.code(), code, "{p:?}: {err}");
        assert!(repo.snapshot() == before, "{p:?} changed the tree");
    }
}

#[test]
fn undo_restores_bytes_and_mode_exactly() {
    let repo = TestRepo::new();
    let rails = repo.rails();
    repo.write("docs/run.md", b"#!/bin/sh\r\necho \xc3\xa9\r\nno newline at the end");
    std::fs::set_permissions(repo.path("docs/run.md"), std::fs::Permissions::from_mode(0o751)).unwrap();
    let before = repo.snapshot();
    for p in [
        Patch::Replace { path: "docs/run.md".into(), old: Some("echo".into()), new: "printf".into() },
        Patch::Replace { path: "docs/run.md".into(), old: None, new: String::new() },
        Patch::Append { path: "docs/run.md".into(), content: "\n".into() },
        Patch::Create { path: "docs/a/b/c.md".into(), content: "new\n".into() },
    ] {
        let undo = patch::apply(repo.root(), &rails.paths, &p).unwrap();
        if let Previous::File { mode: m, .. } = &undo.previous {
            assert_eq!(*m, 0o751);
            assert_eq!(mode(&repo, "docs/run.md"), 0o751, "the mode is kept by the patch");
        }
        assert!(repo.snapshot() != before, "{p:?} changed nothing");
        undo.restore(repo.root()).unwrap();
        assert!(repo.snapshot() == before, "undo of {p:?} is not exact");
    }
}

#[test]
fn budgets_at_exactly_the_limit_pass_and_one_over_fails() {
    let rails_text = RAILS.replace("max_lines = 120", "max_lines = 4").replace("max_bytes = 65536", "max_bytes = 32");
    let repo = TestRepo::uncommitted(&rails_text);
    let rails = repo.rails();
    assert_eq!((rails.budget.max_lines, rails.budget.max_bytes), (4, 32));
    repo.write("docs/list.md", "a\nb\nc\nd\n");
    let check = |json: &str| {
        let p = Proposal::parse(json).unwrap();
        gate::evaluate(repo.root(), &rails, 0, &p, None, "intent")
    };
    // Lines: two lines replaced are 2 removed + 2 added = 4 changed.
    let at = check(r#"{"op":"replace","path":"docs/list.md","old":"b\nc\n","new":"B\nC\n"}"#);
    assert!(at.passed(), "{:#?}", at.verdicts);
    assert_eq!(at.stats.unwrap().changed(), 4);
    assert_eq!(at.diff_ratio, Some(1.0));
    let over = check(r#"{"op":"replace","path":"docs/list.md","old":"b\nc\nd\n","new":"B\nC\nD\n"}"#);
    assert_eq!(over.stats.unwrap().changed(), 6);
    assert_eq!(over.first_objection().unwrap().code, Some("OVER_BUDGET"));
    assert!(!over.atomic_ok() && over.path_ok());
    // Bytes: the size of the file after the patch (8 + 24 = 32).
    let at = check(r#"{"op":"replace","path":"docs/list.md","new":"a\nb\nc\nd\n012345678901234567890123"}"#);
    assert_eq!((at.new_bytes, at.stats.unwrap().changed()), (Some(32), 1));
    assert!(at.passed(), "{:#?}", at.verdicts);
    let over = check(r#"{"op":"replace","path":"docs/list.md","new":"a\nb\nc\nd\n0123456789012345678901234"}"#);
    assert_eq!(over.new_bytes, Some(33));
    let v = over.first_objection().unwrap();
    assert_eq!((v.by, v.code), ("rule:atomic_ok", Some("OVER_BUDGET")));
}

#[test]
fn after_applying_git_status_must_show_exactly_the_one_path() {
    let repo = TestRepo::new();
    let rails = repo.rails();
    let git = repo.ws().repo().unwrap();
    // A clean patch: only its path shows.
    let p = Patch::Append { path: "docs/guide.md".into(), content: "Four.\n".into() };
    let undo = patch::apply_verified(&git, &rails.paths, &p).unwrap();
    assert_eq!(git.status().unwrap().keys().collect::<Vec<_>>(), ["docs/guide.md"]);
    undo.restore(repo.root()).unwrap();
    assert!(git.status().unwrap().is_empty());

    // A path git ignores cannot be seen to change: undone and refused.
    repo.write(".gitignore", "docs/ignored.md\n");
    repo.commit();
    let before = repo.snapshot();
    let p = Patch::Create { path: "docs/ignored.md".into(), content: "x\n".into() };
    let err = patch::apply_verified(&git, &rails.paths, &p).unwrap_err();
    assert_eq!(err.code(), "UNEXPECTED_CHANGES");
    assert!(repo.snapshot() == before, "the refused patch was not undone");

    // Anything else changing alongside is refused (the step restores).
    let before_status = git.status().unwrap();
    let p = Patch::Create { path: "docs/new.md".into(), content: "x\n".into() };
    let undo = patch::apply(repo.root(), &rails.paths, &p).unwrap();
    repo.write("src/other.rs", "// changed behind the patch's back\n");
    let err = patch::verify_single_change(&before_status, &git.status().unwrap(), "docs/new.md").unwrap_err();
    assert!(matches!(&err, PatchError::UnexpectedChanges { others, .. } if others == &["src/other.rs"]), "{err}");
    undo.restore(repo.root()).unwrap();
    assert!(!repo.path("docs/new.md").exists());
}

#[test]
fn evaluating_never_writes() {
    let repo = TestRepo::new();
    let rails = repo.rails();
    let before = repo.snapshot();
    for json in [
        r#"{"op":"create","path":"docs/a/b/new.md","content":"x"}"#,
        r#"{"op":"append","path":"docs/guide.md","content":"x"}"#,
        r#"{"op":"replace","path":"src/lib.rs","old":"42","new":"43"}"#,
        r##"{"op":"replace","path":"docs/guide.md","new":"# Guide\nwhole\n"}"##,
    ] {
        let g = gate::evaluate(repo.root(), &rails, 2, &Proposal::parse(json).unwrap(), None, "i");
        assert!(g.passed(), "{json}: {:#?}", g.verdicts);
    }
    assert!(repo.snapshot() == before);
}

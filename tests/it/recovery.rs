//! kill -9 at each phase of a step; the next command makes tree, git and log agree.

use crate::support::workspace::{Setup, Ws, append, code, json, stderr, stdout};

const ORIGINAL: &str = "# Guide\n\nline one\nline two\n";
const PATCHED: &str = "# Guide\n\nline one\nline two\nline three\n";

/// Runs a step that kills itself at `point`, then a step that recovers.
fn crash_at(point: &str, checks: &'static str) -> Ws {
    let ws = Ws::looped(Setup { checks, auto_merge: true, ..Setup::default() });
    ws.answer(1, &append("docs/guide.md", "line three\n"));
    let out = ws.run_env(&[("RATCHET_TEST_FAULT", point)], &["step", "--provider", "self"]);
    assert_eq!(out.status.code(), None, "{point}: the process was killed: {}", stderr(&out));
    // The next loop command recovers before anything else (its own step
    // asks the deterministic heartbeat, which touches only its journal).
    let out = ws.run(&["--json", "step", "--provider", "heartbeat"]);
    assert_eq!(code(&out), 0, "{point}: {}", stderr(&out));
    assert!(stderr(&out).contains("recovered step s2"), "{point}: {}", stderr(&out));
    ws
}

fn assert_consistent(ws: &Ws, point: &str) {
    // No partial file: no temp file left, and the tree is clean.
    let leftovers: Vec<_> = std::fs::read_dir(ws.path("docs")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(leftovers.iter().all(|n| !n.to_string_lossy().ends_with(".tmp")), "{point}: {leftovers:?}");
    assert_eq!(ws.git(&["status", "--porcelain"]).trim(), "", "{point}: tree and index clean");
    // No commit of a step without its entry.
    let entries = ws.entries();
    for line in ws.git(&["log", "--format=%H %(trailers:key=Ratchet-Step,valueonly,separator=)"]).lines() {
        let mut parts = line.split_whitespace();
        let (Some(commit), Some(step)) = (parts.next(), parts.next()) else { continue };
        assert!(
            entries.iter().any(|e| e["id"] == step && e["apply"]["commit"] == commit),
            "{point}: commit {commit} of {step} has no entry"
        );
    }
    let out = ws.run(&["log", "verify"]);
    assert_eq!(code(&out), 0, "{point}: {}{}", stdout(&out), stderr(&out));
    assert!(!ws.path(".ratchet/step.json").exists(), "{point}: the crash journal is cleared");
}

#[test]
fn killed_while_asking_the_provider() {
    let ws = crash_at("propose", "true");
    assert_eq!(ws.read("docs/guide.md"), ORIGINAL);
    let s2 = ws.entries().into_iter().find(|e| e["id"] == "s2").unwrap();
    assert_eq!((s2["outcome"].as_str(), s2["reason"].as_str()), (Some("failed"), Some("interrupted")));
    assert_consistent(&ws, "propose");
}

#[test]
fn killed_between_apply_and_checks() {
    let ws = crash_at("apply", "true");
    assert_eq!(ws.read("docs/guide.md"), ORIGINAL, "the file is restored");
    let s2 = ws.entries().into_iter().find(|e| e["id"] == "s2").unwrap();
    assert_eq!(s2["reason"], "interrupted");
    assert_consistent(&ws, "apply");
}

#[test]
fn killed_during_the_checks() {
    let ws = crash_at("checks", "sleep 2");
    assert_eq!(ws.read("docs/guide.md"), ORIGINAL, "the file is restored");
    assert_eq!(ws.entries().into_iter().find(|e| e["id"] == "s2").unwrap()["reason"], "interrupted");
    assert_consistent(&ws, "checks");
}

#[test]
fn killed_between_commit_and_log() {
    let ws = crash_at("commit", "true");
    assert_eq!(ws.read("docs/guide.md"), PATCHED, "the commit is kept");
    let s2 =
        ws.entries().into_iter().find(|e| e["id"] == "s2" && e["outcome"] == "merged").expect("the merge is logged");
    let commit = s2["apply"]["commit"].as_str().unwrap();
    assert!(ws.git(&["log", "--format=%H"]).lines().any(|l| l == commit));
    assert!(s2["detail"].as_str().unwrap().contains("recovered"));
    assert_consistent(&ws, "commit");
}

#[test]
fn a_torn_log_line_is_quarantined_by_the_next_step() {
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "x\n"));
    ws.run(&["step", "--provider", "self"]);
    // A crash in the middle of the next append leaves half a line.
    let mut log = std::fs::OpenOptions::new().append(true).open(ws.path("logs/steps.jsonl")).unwrap();
    std::io::Write::write_all(&mut log, br#"{"v":1,"seq":3,"id":"s3","ts":"2026-11"#).unwrap();
    let out = ws.run(&["--json", "step", "--provider", "self"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("torn last line"), "{}", stderr(&out));
    assert!(ws.entries().iter().any(|e| e["kind"] == "recovery"));
    assert_eq!(json(&ws.run(&["--json", "log", "verify"]))["ok"], true);
}

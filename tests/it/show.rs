//! `ratchet show ID` (issue 13): a step as a person reads it.

use crate::support::workspace::{Setup, Ws, code, json, redact_hashes, stderr, stdout};

#[test]
fn a_merged_step_shows_who_why_the_gates_the_diff_and_the_commit() {
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    // A rationale with a terminal escape and a bidi override: shown, never obeyed.
    let proposal = serde_json::json!({
        "rationale": "add a line\u{1b}[2J with \u{202e}care",
        "patch": {"op": "append", "path": "docs/guide.md", "content": "line three\n"},
        "next_steps": ["document the rest"]
    });
    ws.answer(1, &proposal.to_string());
    assert_eq!(json(&ws.run(&["--json", "step", "--provider", "self"]))["outcome"], "merged");
    let out = ws.run(&["show", "s2"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stdout(&out).contains('\u{1b}') && !stdout(&out).contains('\u{202e}'));
    insta::assert_snapshot!("show_merged", redact_hashes(&stdout(&out)));
    // --json: the raw entries, exactly as `log show` gives them.
    let raw = json(&ws.run(&["--json", "show", "s2"]));
    assert_eq!(raw, json(&ws.run(&["--json", "log", "show", "s2"])));
    assert_eq!(raw[0]["outcome"], "merged");
}

#[test]
fn a_failed_step_names_its_checks_log_and_shows_its_last_lines() {
    let ws = Ws::looped(Setup {
        checks: "for i in 1 2 3 4 5; do echo step $i; done; echo 'assertion failed: guide'; exit 2",
        auto_merge: true,
        ..Setup::default()
    });
    ws.answer(1, &crate::support::workspace::append("docs/guide.md", "broken\n"));
    let out = ws.run(&["step", "--provider", "self"]);
    assert_eq!(code(&out), 1);
    // The step's own message already says where to look and what broke.
    assert!(stdout(&out).contains("the checks' output is in logs/runs/s2.log"), "{}", stdout(&out));
    assert!(stdout(&out).contains("  | assertion failed: guide"), "{}", stdout(&out));
    let out = ws.run(&["show", "s2", "--lines", "3"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    insta::assert_snapshot!("show_failed", redact_hashes(&stdout(&out)));
}

#[test]
fn show_refuses_what_is_not_a_step_and_a_checks_log_swapped_for_a_symlink() {
    let ws = Ws::looped(Setup { checks: "exit 1", auto_merge: true, ..Setup::default() });
    let out = ws.run(&["show", "s99"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("[ENTRY_NOT_FOUND]"), "{}", stderr(&out));
    ws.answer(1, &crate::support::workspace::append("docs/guide.md", "broken\n"));
    ws.run(&["step", "--provider", "self"]);
    // The checks could have left a symlink where their log was.
    std::fs::write(ws.home.join("secret"), "do not print me\n").unwrap();
    std::fs::remove_file(ws.path("logs/runs/s2.log")).unwrap();
    std::os::unix::fs::symlink(ws.home.join("secret"), ws.path("logs/runs/s2.log")).unwrap();
    let out = ws.run(&["show", "s2"]);
    assert_eq!(code(&out), 0);
    assert!(!stdout(&out).contains("do not print me"), "{}", stdout(&out));
    assert!(stdout(&out).contains("[RUN_LOG_UNREADABLE]"), "{}", stdout(&out));
}

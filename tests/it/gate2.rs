//! Gate 2 at a terminal (issue 13): `[e]dit`, a long diff, and what an
//! auto-merge shows.

use crate::support::workspace::{Setup, Ws, append, code, json, stdout};

/// An `$EDITOR` that runs `sed SCRIPT` on the sheet it is given.
fn sed_editor(ws: &Ws, script: &str) -> String {
    let editor = ws.home.join("editor.sh");
    std::fs::write(&editor, format!("#!/bin/sh\nsed -i '{script}' \"$1\"\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    editor.display().to_string()
}

#[test]
fn edit_at_gate_2_runs_gate_1_again_shows_the_result_and_records_the_edit() {
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "line three\n"));
    let editor = sed_editor(&ws, "s/^line three$/line 3, edited/");
    let mut p = ws.pty_env(&[("EDITOR", &editor)], &["step", "--provider", "self"]);
    p.exp_string("+line three").unwrap();
    let rest = p.exp_string("[a]pprove, [r]eject, [e]dit, [s]kip (leave pending), [q]uit?").unwrap();
    assert!(!rest.contains("every rule attests"), "a short screen is not summarised twice: {rest}");
    p.send_line("e").unwrap();
    // Shown again, as edited, and asked again.
    p.exp_string("+line 3, edited").unwrap();
    p.exp_string("[e]dit").unwrap();
    p.send_line("a").unwrap();
    p.exp_string("score in [0, 1]").unwrap();
    p.send_line("").unwrap();
    p.exp_string("s2 merged").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(ws.read("docs/guide.md"), "# Guide\n\nline one\nline two\nline 3, edited\n");
    let last = ws.last();
    assert!(last["gate2"]["reason"].as_str().unwrap().starts_with("edited at Gate 2"), "{last}");
    assert_eq!(last["proposal"]["rationale"], "add a line");
    ws.assert_log_verifies();
}

#[test]
fn an_edit_that_reaches_outside_the_rails_is_rejected_by_gate_1() {
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "line three\n"));
    // The person points the sheet at the rails themselves.
    let editor = sed_editor(&ws, "s|^path: docs/guide.md$|path: config/rails.toml|");
    let mut p = ws.pty_env(&[("EDITOR", &editor)], &["step", "--provider", "self"]);
    p.exp_string("[e]dit").unwrap();
    p.send_line("e").unwrap();
    p.exp_string("s2 rejected").unwrap();
    p.exp_eof().unwrap();
    let last = ws.last();
    assert_eq!((last["outcome"].as_str(), last["reason"].as_str()), (Some("rejected"), Some("gate1")), "{last}");
    assert_eq!(last["proposal"]["path"], "config/rails.toml");
    assert_eq!(code(&ws.run(&["rails", "check"])), 0, "the rails are untouched");
}

#[test]
fn a_long_diff_repeats_the_summary_next_to_the_question() {
    let ws = Ws::looped(Setup::default());
    let lines: String = (1..=60).map(|i| format!("line {i}\n")).collect();
    ws.answer(1, &append("docs/guide.md", &lines));
    let mut p = ws.pty(&["step", "--provider", "self"]);
    p.exp_string("+line 60").unwrap();
    // (rexpect reads bytes as Latin-1: match the ASCII between the dots.)
    p.exp_string("next steps:").unwrap();
    p.exp_string("proposal s2 ").unwrap();
    p.exp_string(" append docs/guide.md (+60 -0) ").unwrap();
    p.exp_string(" gate 1: every rule attests ").unwrap();
    p.exp_string("[q]uit?").unwrap();
    p.send_line("s").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn an_auto_merged_step_prints_its_diff() {
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    ws.answer(1, &append("docs/guide.md", "line three\n"));
    let out = ws.run(&["step", "--provider", "self"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    assert!(
        text.contains("s2 merged") && text.contains("+++ b/docs/guide.md\n") && text.contains("+line three"),
        "{text}"
    );
    // A step a human approved was seen already: no diff again.
    ws.answer(2, &append("README.md", "x\n"));
    assert_eq!(json(&ws.run(&["--json", "step", "--provider", "self"]))["outcome"], "pending");
}

//! `ratchet heartbeat --quiet` under cron (issue 13): silent on a normal
//! run, so cron mails only when a person is needed; a failed step printed
//! with the tail of its checks and exit 1; an alarm printed and exit 3.

use crate::support::workspace::{Setup, Ws, append, code, stderr, stdout};

#[test]
fn quiet_heartbeat_prints_nothing_when_the_step_ends_normally() {
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    ws.answer(1, &append("docs/guide.md", "from cron\n"));
    ws.answer(2, &append("README.md", "not auto-merged\n"));
    // Merged, then pending, then noop: nothing to say, exit 0 each time.
    for expected in ["merged", "pending", "noop"] {
        let out = ws.run(&["heartbeat", "--quiet"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!((stdout(&out).as_str(), stderr(&out).as_str()), ("", ""), "silent when {expected}");
        assert_eq!(ws.last()["outcome"], expected);
    }
    // Without --quiet it says how the step ended.
    let out = ws.run(&["heartbeat"]);
    assert!(stdout(&out).starts_with("s5 noop"), "{}", stdout(&out));
}

#[test]
fn quiet_heartbeat_prints_a_failed_step_with_its_checks_tail_and_exits_1() {
    let ws = Ws::looped(Setup {
        checks: "echo compiling; echo 'test tests::guide ... FAILED'; printf 'bad \\033]0;x\\007 title\\n'; exit 1",
        auto_merge: true,
        ..Setup::default()
    });
    ws.answer(1, &append("docs/guide.md", "from cron\n"));
    let out = ws.run(&["heartbeat", "--quiet"]);
    assert_eq!(code(&out), 1, "a failed step exits 1: {}", stderr(&out));
    insta::assert_snapshot!("heartbeat_quiet_failed", stdout(&out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn quiet_heartbeat_prints_the_watchdog_alarm_and_exits_3() {
    let ws = Ws::looped(Setup::default());
    for _ in 0..9 {
        ws.run(&["step", "--provider", "self"]);
    }
    let out = ws.run(&["heartbeat", "--quiet"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "the step itself was normal");
    insta::assert_snapshot!("heartbeat_quiet_alarm", stderr(&out));
}

#[test]
fn heartbeat_help_documents_its_exit_statuses() {
    let ws = Ws::new();
    let help = stdout(&ws.run(&["heartbeat", "--help"]));
    for status in [
        "0    the step ended normally",
        "1    the step failed",
        "3    the watchdog",
        "5    another ratchet",
        "130  Ctrl-C",
    ] {
        assert!(help.contains(status), "{status} in {help}");
    }
}

//! One full step, end to end, against real repositories (issue 3).

use crate::support::workspace::{Setup, Ws, append, code, json, stderr, stdout};
use serde_json::Value;

const SEED_WEIGHTS: [(&str, f64); 6] = [
    ("ci_pass", 0.30),
    ("path_ok", 0.15),
    ("diff_ratio", 0.15),
    ("atomic_ok", 0.10),
    ("left_next_steps", 0.10),
    ("human_score", 0.20),
];

/// The seed formula, on an entry's logged signals.
fn seed_utility(signals: &Value) -> f64 {
    let mut u = 0.0;
    for (name, w) in SEED_WEIGHTS {
        let v = signals[name].as_f64().unwrap();
        u += w * if name == "diff_ratio" { 1.0 - v } else { v };
    }
    (u * 1e12).round() / 1e12
}

fn assert_log_verifies(ws: &Ws) {
    let out = ws.run(&["log", "verify"]);
    assert_eq!(code(&out), 0, "log verify: {}{}", stdout(&out), stderr(&out));
}

#[test]
fn without_a_terminal_a_proposal_waits_pending() {
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "line three\n"));
    let out = ws.run(&["--json", "step", "--provider", "self"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = json(&out);
    assert_eq!((r["id"].as_str(), r["outcome"].as_str()), (Some("s2"), Some("pending")));
    assert_eq!(r["pending"], "logs/pending/s2.json");
    assert!(ws.path("logs/pending/s2.json").is_file());
    assert_eq!(ws.read("docs/guide.md"), "# Guide\n\nline one\nline two\n", "nothing applied");
    ws.answer(2, &append("docs/guide.md", "line four\n"));
    let out = ws.run(&["step", "--provider", "self"]);
    assert!(stderr(&out).contains("no terminal"), "it says so plainly: {}", stderr(&out));
    assert!(stdout(&out).contains("s3 pending: docs/guide.md from self waits for a human"), "{}", stdout(&out));
    let entry = &ws.entries()[1];
    assert_eq!(entry["outcome"], "pending");
    assert_eq!(entry["pick"]["reason"], "forced");
    assert_log_verifies(&ws);
}

#[test]
fn approve_later_applies_commits_and_logs_under_the_same_id() {
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "line three\n"));
    assert_eq!(code(&ws.run(&["step", "--provider", "self"])), 0);
    // Approving is a human act.
    let out = ws.run(&["approve", "s2"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("[HUMAN_REQUIRED]"));
    let r = approve_at_pty(&ws, &["--json", "approve", "s2", "--score", "0.8"], "docs/guide.md (+1 -0)");
    assert_eq!((r["id"].as_str(), r["outcome"].as_str()), (Some("s2"), Some("merged")));
    let commit = r["commit"].as_str().unwrap();
    assert_eq!(ws.head(), commit);
    assert_eq!(ws.read("docs/guide.md"), "# Guide\n\nline one\nline two\nline three\n");
    let message = ws.git(&["log", "-1", "--format=%B"]);
    for trailer in [
        "Ratchet-Step: s2",
        "Ratchet-Packet: ",
        "Ratchet-Intent: ",
        "Ratchet-Rails: ",
        "Ratchet-Utility: ",
        "Ratchet-Log-Prev: ",
    ] {
        assert!(message.contains(trailer), "{trailer} missing from {message}");
    }
    assert_eq!(ws.git(&["log", "-1", "--format=%an <%ae>"]).trim(), "Alice <alice@example.com>");
    let last = ws.last();
    assert_eq!((last["id"].as_str(), last["outcome"].as_str()), (Some("s2"), Some("merged")));
    assert_eq!(last["gate2"]["human_score"], 0.8);
    assert_eq!(last["utility"].as_f64().unwrap(), seed_utility(&last["signals"]));
    assert!(!ws.path("logs/pending/s2.json").exists());
    // `log show` takes the same id and shows both entries.
    let shown = stdout(&ws.run(&["log", "show", "s2"]));
    assert!(shown.contains("pending") && shown.contains("merged"), "{shown}");
    assert_log_verifies(&ws);
}

#[test]
fn reject_later_logs_a_rejection() {
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "x\n"));
    ws.run(&["step", "--provider", "self"]);
    let mut p = ws.pty(&["--json", "reject", "s2", "--reason", "not now"]);
    let r: Value = serde_json::from_str(p.exp_eof().unwrap().trim()).unwrap();
    assert_eq!(r["outcome"], "rejected");
    let last = ws.last();
    assert_eq!(
        (last["gate2"]["decision"].as_str(), last["gate2"]["reason"].as_str()),
        (Some("reject"), Some("not now"))
    );
    assert_eq!(last["signals"]["human_score"], 0.0);
    assert_eq!(last["utility"].as_f64().unwrap(), seed_utility(&last["signals"]));
    let out = ws.run(&["--json", "status"]);
    assert!(json(&out)["pending"].as_array().unwrap().is_empty());
}

#[test]
fn an_unknown_id_is_not_pending() {
    let ws = Ws::looped(Setup::default());
    let mut p = ws.pty(&["approve", "s99"]);
    p.exp_string("no pending proposal with id \"s99\" [NOT_PENDING]").unwrap();
    p.exp_eof().unwrap();
}

/// A Gate 1 rejection at the command line: exit 0, the JSON report, the
/// objection's code first in the detail. Each rule's objection is tested in
/// `gate::one`; that no human is asked and nothing is touched, in the
/// step's library tests (`step::tests::gate_1_objects_before_any_human_is_asked`).
#[test]
fn a_gate1_rejection_exits_0_and_names_the_objection() {
    let ws = Ws::looped(Setup::default());
    ws.answer(
        1,
        r#"{"rationale":"r","patch":{"op":"replace","path":"config/rails.toml","old":"max_lines = 120","new":"max_lines = 9000"},"next_steps":[]}"#,
    );
    let out = ws.run(&["--json", "step", "--provider", "self"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = json(&out);
    assert_eq!((r["outcome"].as_str(), r["reason"].as_str()), (Some("rejected"), Some("gate1")), "{r}");
    assert!(r["detail"].as_str().unwrap().starts_with("PATH_PROTECTED"), "{r}");
    let last = ws.last();
    assert!(last["gate2"].is_null(), "no human was asked");
    assert_eq!(last["utility"].as_f64().unwrap(), seed_utility(&last["signals"]));
    assert_log_verifies(&ws);
}
#[test]
fn failed_checks_restore_the_file_exactly() {
    let ws = Ws::looped(Setup {
        checks: "grep -q BROKEN docs/guide.md && exit 1; exit 0",
        auto_merge: true,
        ..Setup::default()
    });
    let before = std::fs::read(ws.path("docs/guide.md")).unwrap();
    let head = ws.head();
    ws.answer(1, &append("docs/guide.md", "BROKEN\n"));
    let out = ws.run(&["--json", "step", "--provider", "self"]);
    assert_eq!(code(&out), 1, "a failed step exits 1: {} {}", stdout(&out), stderr(&out));
    let r = json(&out);
    assert_eq!((r["outcome"].as_str(), r["reason"].as_str()), (Some("failed"), Some("checks_failed")));
    assert_eq!(std::fs::read(ws.path("docs/guide.md")).unwrap(), before);
    assert_eq!(ws.head(), head, "nothing committed");
    assert_eq!(ws.git(&["status", "--porcelain"]).trim(), "", "the tree and index are clean");
    let last = ws.last();
    assert_eq!(last["apply"]["checks"]["exit"], 1);
    assert_eq!(last["apply"]["checks"]["log"], "logs/runs/s2.log");
    assert!(ws.path("logs/runs/s2.log").is_file());
    assert_eq!(last["signals"]["ci_pass"], 0.0);
    assert_log_verifies(&ws);
}

#[test]
fn a_provider_that_hangs_crashes_prints_garbage_or_nothing_is_logged_and_counted() {
    let ws = Ws::looped(Setup { agent_timeout: 1, ..Setup::default() });
    ws.answer_script(1, "sleep 30\n");
    ws.answer_script(2, "echo oops >&2; exit 3\n");
    ws.answer_script(3, "echo 'this is not json'\n");
    ws.answer_script(4, "true\n");
    ws.answer(5, r#"{"hello": "world"}"#);
    ws.answer_script(6, "echo 42\n");
    let expected =
        ["provider_timeout", "provider_invalid_output", "provider_invalid_output", "provider_invalid_output"];
    for (i, reason) in expected.iter().enumerate() {
        let start = std::time::Instant::now();
        let out = ws.run(&["--json", "step", "--provider", "self"]);
        assert!(start.elapsed() < std::time::Duration::from_secs(15), "never a hang");
        let r = json(&out);
        assert_eq!(
            (r["outcome"].as_str(), r["reason"].as_str()),
            (Some("failed"), Some(*reason)),
            "run {}: {r}",
            i + 1
        );
    }
    assert!(ws.entries()[2]["detail"].as_str().unwrap().contains("exited with status 3"));
    assert!(ws.entries()[3]["detail"].as_str().unwrap().contains("not JSON"));
    assert!(ws.entries()[4]["detail"].as_str().unwrap().contains("empty answer"));
    // A JSON answer that is not a proposal reaches Gate 1, which rejects it.
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(r["outcome"], "rejected");
    assert!(ws.last()["detail"].as_str().unwrap().starts_with("BAD_PATCH"), "{}", ws.last());
    // A JSON value that is not an object is invalid output.
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(r["reason"], "provider_invalid_output");
    let status = json(&ws.run(&["--json", "status"]));
    let me = status["providers"].as_array().unwrap().iter().find(|p| p["name"] == "self").unwrap().clone();
    assert_eq!((me["stats"]["failed"].as_u64(), me["stats"]["rejected"].as_u64()), (Some(5), Some(1)));
    assert_log_verifies(&ws);
}

#[test]
fn the_prompt_approves_with_a_score() {
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "line three\n"));
    let mut p = ws.pty(&["step", "--provider", "self"]);
    p.exp_string("provider self").unwrap();
    p.exp_string("rationale: add a line").unwrap();
    p.exp_string("rule:path_ok attest").unwrap();
    p.exp_string("predicted utility").unwrap();
    p.exp_string("+line three").unwrap();
    p.exp_string("[a]pprove, [r]eject, [e]dit, [s]kip (leave pending), [q]uit?").unwrap();
    p.send_line("a").unwrap();
    p.exp_string("score in [0, 1] [1]:").unwrap();
    p.send_line("0.7").unwrap();
    p.exp_string("s2 merged").unwrap();
    p.exp_eof().unwrap();
    let last = ws.last();
    assert_eq!((last["outcome"].as_str(), last["gate2"]["human_score"].as_f64()), (Some("merged"), Some(0.7)));
    assert_eq!(last["gate2"]["by"], "alice@example.com");
}

#[test]
fn the_prompt_rejects() {
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "line three\n"));
    let mut p = ws.pty(&["step", "--provider", "self"]);
    p.exp_string("[q]uit?").unwrap();
    p.send_line("r").unwrap();
    p.exp_string("reason (optional):").unwrap();
    p.send_line("too vague").unwrap();
    p.exp_string("s2 rejected").unwrap();
    p.exp_eof().unwrap();
    let last = ws.last();
    assert_eq!((last["outcome"].as_str(), last["gate2"]["reason"].as_str()), (Some("rejected"), Some("too vague")));
    assert_eq!(ws.read("docs/guide.md"), "# Guide\n\nline one\nline two\n");
}

#[test]
fn the_prompt_skips_and_quits_leaving_it_pending() {
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "a\n"));
    ws.answer(2, &append("docs/guide.md", "b\n"));
    for (n, key) in [(2, "s"), (3, "q")] {
        let mut p = ws.pty(&["step", "--provider", "self"]);
        p.exp_string("[q]uit?").unwrap();
        p.send_line(key).unwrap();
        p.exp_string(&format!("s{n} pending")).unwrap();
        p.exp_eof().unwrap();
        assert_eq!(ws.last()["gate2"]["decision"], "skip");
    }
    // Both wait; `review` walks them at a prompt.
    let mut p = ws.pty(&["review"]);
    p.exp_string("proposal s2").unwrap();
    p.send_line("a").unwrap();
    p.exp_string("score in [0, 1]").unwrap();
    p.send_line("").unwrap();
    p.exp_string("s2 merged").unwrap();
    p.exp_string("proposal s3").unwrap();
    p.exp_string("[q]uit?").unwrap();
    p.send_line("r").unwrap();
    p.exp_string("reason (optional)").unwrap();
    p.send_line("").unwrap();
    p.exp_string("s3 rejected").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(ws.read("docs/guide.md"), "# Guide\n\nline one\nline two\na\n");
}

/// The refusal's wording at the command line; a pending proposal whose
/// tree moved under it is judged again in the step's library tests
/// (`step::tests::pending`).
#[test]
fn a_stale_whole_file_replace_is_refused() {
    let ws = Ws::looped(Setup::default());
    ws.answer(
        1,
        r##"{"rationale":"r","patch":{"op":"replace","path":"docs/guide.md","new":"# New guide\n"},"next_steps":[]}"##,
    );
    ws.run(&["step", "--provider", "self"]);
    // Someone changes the file after the proposal was made.
    ws.write("docs/guide.md", "# Guide\n\nline one\nline deux\n");
    ws.git(&["commit", "-qam", "edit by hand"]);
    let mut p = ws.pty(&["approve", "s2"]);
    p.exp_string("replaces the whole of docs/guide.md, which changed since it was proposed [STALE_PROPOSAL]").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(ws.read("docs/guide.md"), "# Guide\n\nline one\nline deux\n");
}
#[test]
fn propose_runs_gate1_at_once_and_waits_with_one_id() {
    let ws = Ws::looped(Setup::default());
    ws.write("../patch.json", r#"{"op":"append","path":"docs/guide.md","content":"more\n"}"#);
    let out = ws.run(&[
        "--json",
        "propose",
        "--patch",
        "../patch.json",
        "--rationale",
        "say more",
        "--next-step",
        "then less",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = json(&out);
    assert_eq!((r["id"].as_str(), r["outcome"].as_str()), (Some("s2"), Some("pending")));
    let last = ws.last();
    assert_eq!((last["pick"]["provider"].as_str(), last["pick"]["reason"].as_str()), (Some("self"), Some("submitted")));
    assert_eq!(last["proposal"]["next_steps"][0], "then less");
    ws.write("../bad.json", r#"{"op":"create","path":"intents/evil.md","content":"x"}"#);
    let r = json(&ws.run(&["--json", "propose", "--patch", "../bad.json", "--rationale", "r"]));
    assert_eq!((r["id"].as_str(), r["outcome"].as_str()), (Some("s3"), Some("rejected")));
    let r = approve_at_pty(&ws, &["--json", "approve", "s2"], "append docs/guide.md");
    assert_eq!((r["id"].as_str(), r["outcome"].as_str()), (Some("s2"), Some("merged")));
    assert!(r["utility"].is_number() && r["commit"].is_string());
}

#[test]
fn heartbeat_without_auto_merge_leaves_it_pending() {
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "from cron\n"));
    let out = ws.run(&["--json", "heartbeat"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = json(&out);
    assert_eq!(r["outcome"], "pending", "{r}");
    assert_eq!(r["watchdog"]["alarm"], false);
    assert_eq!(ws.read("docs/guide.md"), "# Guide\n\nline one\nline two\n");
}

#[test]
fn the_heartbeat_provider_plans_then_answers_noop() {
    let ws = Ws::looped(Setup { auto_merge: true, auto_merge_lines: 20, ..Setup::default() });
    let r = json(&ws.run(&["--json", "step", "--provider", "heartbeat"]));
    assert_eq!((r["outcome"].as_str(), r["provider"].as_str()), (Some("merged"), Some("heartbeat")), "{r}");
    let journal = ws.read("docs/ratchet-journal.md");
    assert!(journal.contains("· intent · intent ") && journal.contains("Suggested eval:"), "{journal}");
    // Nothing new for the heartbeat: noop, still logged.
    let r = json(&ws.run(&["--json", "step", "--provider", "heartbeat"]));
    assert_eq!(r["outcome"], "noop");
    assert_eq!(ws.last()["outcome"], "noop");
    assert_log_verifies(&ws);
}

#[test]
fn the_heartbeat_is_the_fallback_when_nothing_else_is_eligible() {
    let ws = Ws::looped(Setup::default());
    std::fs::remove_file(ws.home.join("agent.sh")).unwrap();
    let r = json(&ws.run(&["--json", "heartbeat"]));
    assert_eq!(r["provider"], "heartbeat", "{r}");
    assert_eq!(ws.last()["pick"]["reason"], "fallback");
}

#[test]
fn two_heartbeats_at_once_one_runs_the_other_exits_5() {
    let ws = Ws::looped(Setup::default());
    ws.answer_script(1, "sleep 3; echo '{\"noop\": \"slow\"}'\n");
    let slow = ws.cmd(&["step", "--provider", "self"]).spawn().unwrap();
    // Wait until the first run holds the lock.
    let lock = ws.path(".ratchet/lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&lock).is_ok_and(|t| t.contains("\"step\"")) {
        assert!(std::time::Instant::now() < deadline, "the first run never took the lock");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let start = std::time::Instant::now();
    let out = ws.run(&["heartbeat"]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(start.elapsed() < std::time::Duration::from_secs(2), "exits at once");
    assert!(
        stderr(&out).contains("the workspace is locked by pid") && stderr(&out).contains("[LOCKED]"),
        "{}",
        stderr(&out)
    );
    let out = slow.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(ws.entries().iter().filter(|e| e["kind"] == "step").count(), 1, "exactly one ran");
}

#[test]
fn the_watchdog_alarms_and_heartbeat_exits_3() {
    let ws = Ws::looped(Setup::default());
    // 10 steps without a merge (noops from an agent with nothing to say).
    for _ in 0..9 {
        ws.run(&["step", "--provider", "self"]);
    }
    let out = ws.run(&["--json", "heartbeat"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_eq!(json(&out)["watchdog"]["alarm"], true);
    assert_eq!(ws.last()["kind"], "watchdog");
    let status = stdout(&ws.run(&["status"]));
    assert!(status.contains("ALARM") && status.contains("steps without a merge"), "{status}");
}

#[test]
fn a_dirty_allowlisted_path_stops_the_step() {
    let ws = Ws::looped(Setup::default());
    ws.write("docs/guide.md", "edited\n");
    let out = ws.run(&["step", "--provider", "self"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("docs/guide.md [DIRTY_TREE]"), "{}", stderr(&out));
    ws.answer(1, &append("docs/other.md", "x"));
    assert_eq!(code(&ws.run(&["step", "--provider", "self", "--allow-dirty"])), 0);
}

#[test]
fn a_tampered_rails_stops_every_loop_command_with_exit_4() {
    let ws = Ws::looped(Setup::default());
    ws.write("config/rails.toml", &ws.read("config/rails.toml").replace("max_lines = 120", "max_lines = 9999"));
    for args in
        [&["step"][..], &["heartbeat"][..], &["propose", "--patch", "x", "--rationale", "r"][..], &["revert", "s1"][..]]
    {
        let out = ws.run(args);
        assert_eq!(code(&out), if args[0] == "propose" { 1 } else { 4 }, "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn an_unknown_provider_is_a_clear_error() {
    let ws = Ws::looped(Setup::default());
    let out = ws.run(&["step", "--provider", "gpt9"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("no provider named \"gpt9\" is configured [UNKNOWN_PROVIDER]"), "{}", stderr(&out));
    assert!(stderr(&out).contains("hint: use one of: heartbeat, human, ollama, openai, self"), "{}", stderr(&out));
}

#[test]
fn context_is_minimal() {
    let ws = Ws::looped(Setup::default());
    ws.write("secrets.env", "API_KEY=hunter2\n");
    ws.git(&["add", "secrets.env"]);
    ws.git(&["commit", "-qm", "a file outside the allowlist"]);
    let c = json(&ws.run(&["--json", "context"]));
    let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["base", "contents", "files", "focus", "intent", "rails", "recent"]);
    let text = c.to_string();
    assert!(!text.contains("hunter2") && !text.contains("secrets.env"), "nothing outside the allowlist");
    for f in c["files"].as_array().unwrap() {
        let p = f["path"].as_str().unwrap();
        assert!(
            !p.starts_with("config/")
                && !p.starts_with("intents/")
                && !p.starts_with("golden/")
                && !p.starts_with("logs/"),
            "{p}"
        );
    }
    assert!(c["files"].as_array().unwrap().iter().any(|f| f["path"] == "docs/guide.md"));
    assert_eq!(c["rails"]["tier"], "docs");
    assert_eq!(c["intent"]["name"], "bootstrap");
    assert_eq!(c["base"].as_str().unwrap(), ws.head());
}

#[test]
fn trust_promotes_after_safe_successes_and_status_matches_the_log() {
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    let tests_patch =
        r#"{"rationale":"r","patch":{"op":"append","path":"tests/basic.txt","content":"more\n"},"next_steps":[]}"#;
    ws.answer(1, tests_patch);
    assert_eq!(ws.last()["kind"], "rails");
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert!(ws.last()["detail"].as_str().unwrap().starts_with("TIER_LOCKED"), "{r}");
    for n in 2..=6 {
        ws.answer(n, &append("docs/guide.md", &format!("safe {n}\n")));
        assert_eq!(json(&ws.run(&["--json", "step", "--provider", "self"]))["outcome"], "merged");
    }
    let status = json(&ws.run(&["--json", "status"]));
    let me = status["providers"].as_array().unwrap().iter().find(|p| p["name"] == "self").unwrap().clone();
    assert_eq!(me["tier"], "tests", "5 safe successes open the tests tier");
    // Recompute the statistics from the log itself.
    let steps: Vec<Value> = ws.entries().into_iter().filter(|e| e["kind"] == "step").collect();
    let merged = steps.iter().filter(|e| e["outcome"] == "merged").count() as u64;
    let sum: f64 = steps.iter().filter_map(|e| e["utility"].as_f64()).sum();
    assert_eq!(me["stats"]["merged"].as_u64(), Some(merged));
    assert_eq!(me["stats"]["picks"].as_u64(), Some(steps.len() as u64));
    assert!((me["stats"]["utility_sum"].as_f64().unwrap() - sum).abs() < 1e-9);
    for e in &steps {
        assert_eq!(e["utility"].as_f64().unwrap(), seed_utility(&e["signals"]), "{}", e["id"]);
    }
    // Now the tests path is open to self.
    ws.answer(7, tests_patch);
    assert_eq!(
        json(&ws.run(&["--json", "step", "--provider", "self"]))["outcome"],
        "pending",
        "tests/ is beyond auto-merge but open"
    );
}

#[test]
fn revert_within_the_window_caps_the_utility_and_demotes() {
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    ws.answer(1, &append("docs/guide.md", "to be reverted\n"));
    let r = json(&ws.run_at("2026-11-21T19:00:00Z", &["--json", "step", "--provider", "self"]));
    assert_eq!(r["outcome"], "merged");
    let before = r["utility"].as_f64().unwrap();
    let out = ws.run_at("2026-11-21T22:00:00Z", &["--json", "revert", "s2"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rv = json(&out);
    assert_eq!(
        (rv["capped"].as_bool(), rv["utility"].as_f64(), rv["hours"].as_f64()),
        (Some(true), Some(0.2), Some(3.0))
    );
    assert_eq!(rv["previous_utility"].as_f64(), Some(before));
    assert_eq!(ws.read("docs/guide.md"), "# Guide\n\nline one\nline two\n");
    assert!(
        ws.git(&["log", "-1", "--format=%B"])
            .contains(&format!("This reverts commit {}", r["commit"].as_str().unwrap()))
    );
    let amend = ws.last();
    assert_eq!(
        (amend["kind"].as_str(), amend["step"].as_str(), amend["detected_by"].as_str()),
        (Some("amend"), Some("s2"), Some("ratchet revert"))
    );
    let status = json(&ws.run(&["--json", "status"]));
    let recent = &status["recent"][0];
    assert_eq!((recent["utility"].as_f64(), recent["reverted"].as_bool()), (Some(0.2), Some(true)));
    // Reverting twice is refused.
    let out = ws.run(&["revert", "s2"]);
    assert!(stderr(&out).contains("[ALREADY_REVERTED]"));
    assert_log_verifies(&ws);
}

#[test]
fn status_shows_pending_eligibility_and_health() {
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "x\n"));
    ws.run(&["step", "--provider", "self"]);
    let s = json(&ws.run(&["--json", "status"]));
    assert_eq!(s["rails"]["ok"], true);
    assert_eq!(s["log"]["ok"], true);
    assert_eq!(s["pending"][0]["id"], "s2");
    let providers = s["providers"].as_array().unwrap();
    let by = |n: &str| providers.iter().find(|p| p["name"] == n).unwrap().clone();
    assert_eq!(by("self")["eligible"], true);
    assert!(by("openai")["reason"].as_str().unwrap().starts_with("disabled"));
    assert!(by("human")["reason"].as_str().unwrap().contains("no terminal"));
    assert!(by("ollama")["reason"].as_str().unwrap().starts_with("unavailable"));
    assert_eq!(by("heartbeat")["eligible"], true);
    let text = stdout(&ws.run(&["status"]));
    assert!(text.contains("pending   1") && text.contains("s2  self append docs/guide.md"), "{text}");
}

#[test]
fn a_provider_s_side_effects_in_the_tree_reject_the_step() {
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    // The agent writes a file of its own, then proposes a clean patch.
    ws.answer_script(
        1,
        &format!(
            "echo sneaky > {}/src/backdoor.rs\ncat <<'JSON'\n{}\nJSON\n",
            ws.root.display(),
            append("docs/guide.md", "x\n")
        ),
    );
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!((r["outcome"].as_str(), r["reason"].as_str()), (Some("failed"), Some("unexpected_changes")), "{r}");
    let detail = ws.last()["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("src/backdoor.rs") && detail.contains("put back"), "{detail}");
    assert!(!ws.path("src/backdoor.rs").exists(), "what the provider planted is removed");
    assert_eq!(ws.read("docs/guide.md"), "# Guide\n\nline one\nline two\n", "nothing was applied");
    assert_eq!(ws.git(&["log", "-1", "--format=%s"]).trim(), "ratchet init", "nothing committed");
}

#[test]
fn a_new_ignored_file_in_an_allowlisted_folder_is_a_change_and_is_removed() {
    let ws = Ws::looped(Setup { checks: "true", auto_merge: true, ..Setup::default() });
    ws.write(".gitignore", &format!("{}*.log\n", ws.read(".gitignore")));
    ws.git(&["commit", "-qam", "ignore logs"]);
    ws.answer_script(
        1,
        &format!(
            "echo noise > {}/docs/build.log\ncat <<'JSON'\n{}\nJSON\n",
            ws.root.display(),
            append("docs/guide.md", "x\n")
        ),
    );
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!((r["outcome"].as_str(), r["reason"].as_str()), (Some("failed"), Some("unexpected_changes")), "{r}");
    assert!(r["detail"].as_str().unwrap().contains("docs/build.log"), "{r}");
    assert!(!ws.path("docs/build.log").exists(), "the planted ignored file is removed");
}

#[test]
fn the_checks_may_leave_their_caches_and_ignored_files_outside_the_allowlist() {
    // The checks write a Python cache inside an allowlisted folder and a
    // build log at the root (ignored, outside the allowlist): neither is a change.
    let ws = Ws::looped(Setup {
        checks: "mkdir -p docs/__pycache__ && echo c > docs/__pycache__/x.pyc && echo noise > build.log",
        auto_merge: true,
        ..Setup::default()
    });
    ws.write(".gitignore", &format!("{}__pycache__/\n*.log\n", ws.read(".gitignore")));
    ws.git(&["commit", "-qam", "ignore caches"]);
    ws.answer(1, &append("docs/guide.md", "x\n"));
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(r["outcome"], "merged", "{r}");
}

#[test]
fn a_step_commit_holds_its_one_path_and_never_what_else_is_staged() {
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    // Staged work outside the allowlist is tolerated, and must stay the user's.
    ws.write("Makefile", "all:\n\ttrue\n");
    ws.git(&["add", "Makefile"]);
    ws.answer(1, &append("docs/guide.md", "x\n"));
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(r["outcome"], "merged", "{r}");
    let files = ws.git(&["show", "--name-only", "--format=", "HEAD"]);
    assert_eq!(files.trim(), "docs/guide.md");
    assert_eq!(ws.git(&["status", "--porcelain"]).trim(), "A  Makefile", "still staged, not committed");
}

#[test]
fn the_human_provider_writes_in_the_editor_then_approves() {
    let ws = Ws::looped(Setup::default());
    // A stand-in for $EDITOR: it edits the file on the sheet as a person
    // would (no JSON), and says why on the rationale line.
    let editor = ws.home.join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\ngrep -q '^line two$' \"$1\" || exit 9\nsed -i 's/^rationale: $/rationale: typo/; s/^line two$/line 2/' \"$1\"\n")
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut p = ws.pty_env(&[("EDITOR", editor.to_str().unwrap())], &["step", "--provider", "human"]);
    p.exp_string("file to change or create").unwrap();
    p.send_line("docs/guide.md").unwrap();
    p.exp_string("provider human").unwrap();
    p.exp_string("+line 2").unwrap();
    p.exp_string("[q]uit?").unwrap();
    p.send_line("a").unwrap();
    p.exp_string("score in [0, 1]").unwrap();
    p.send_line("1").unwrap();
    p.exp_string("s2 merged").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(ws.read("docs/guide.md"), "# Guide\n\nline one\nline 2\n");
    // Without a terminal the human provider is unavailable, unless --patch is given.
    let out = ws.run(&["--json", "step", "--provider", "human"]);
    assert_eq!(json(&out)["reason"], "provider_unavailable");
    ws.write("../p.json", &append("docs/guide.md", "by file\n"));
    let out = ws.run(&["--json", "step", "--provider", "human", "--patch", "../p.json"]);
    assert_eq!(json(&out)["outcome"], "pending");
}

#[test]
fn the_same_proposal_is_not_queued_twice() {
    let ws = Ws::looped(Setup::default());
    let first = json(&ws.run(&["--json", "step", "--provider", "heartbeat"]));
    assert_eq!(first["outcome"], "pending", "{first}");
    let second = json(&ws.run(&["--json", "step", "--provider", "heartbeat"]));
    assert_eq!(
        (second["outcome"].as_str(), second["reason"].as_str()),
        (Some("noop"), Some("already_pending")),
        "{second}"
    );
    assert!(second["detail"].as_str().unwrap().contains(first["id"].as_str().unwrap()));
    let status = json(&ws.run(&["--json", "status"]));
    assert_eq!(status["pending"].as_array().unwrap().len(), 1);
}

#[test]
fn ratchet_timings_says_where_a_step_s_time_went_and_only_when_asked() {
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    ws.answer(1, &append("docs/guide.md", "timed\n"));
    let out = ws.run_env(&[("RATCHET_TIMINGS", "1")], &["--json", "step", "--provider", "self"]);
    assert_eq!(json(&out)["outcome"], "merged");
    let err = stderr(&out);
    let phases: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("ratchet timings:"))
        .filter_map(|l| l.split(" ms  ").nth(1))
        .collect();
    for phase in ["lock", "rails check", "baseline", "context", "propose", "gate1", "apply", "checks", "commit", "log"]
    {
        assert!(phases.contains(&phase), "{phase} in {phases:?}");
    }
    ws.answer(2, &append("docs/guide.md", "untimed\n"));
    let out = ws.run_env(&[("RATCHET_TIMINGS", "0")], &["--json", "step", "--provider", "self"]);
    assert_eq!(json(&out)["outcome"], "merged");
    assert!(!stderr(&out).contains("ratchet timings"), "{}", stderr(&out));
}

/// The last JSON object in a pty's output (after the review screen).
fn last_json(out: &str) -> Value {
    let start = out.rfind("\n{").map(|i| i + 1).or_else(|| out.find('{')).unwrap_or_else(|| panic!("no JSON: {out}"));
    serde_json::from_str(out[start..].trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Runs `approve` at a pty: checks the review screen shows `shown`,
/// approves with the default score, and returns the JSON report.
fn approve_at_pty(ws: &Ws, args: &[&str], shown: &str) -> Value {
    let mut p = ws.pty(args);
    p.exp_string(shown).unwrap();
    p.exp_string("[q]uit?").unwrap();
    p.send_line("a").unwrap();
    p.exp_string("score in [0, 1]").unwrap();
    p.send_line("").unwrap();
    last_json(&p.exp_eof().unwrap())
}

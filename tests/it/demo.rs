//! `ratchet demo`: the README's first command shows the whole loop.

use crate::support::workspace::{Ws, code, json, stderr};

#[test]
fn the_demo_runs_every_outcome_and_its_log_verifies() {
    let ws = Ws::new();
    let dir = ws.home.join("demo");
    let out = ws.run(&["--json", "demo", dir.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = json(&out);
    let outcomes: Vec<&str> = r["steps"].as_array().unwrap().iter().map(|s| s["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["merged", "rejected", "failed", "rejected", "pending", "merged", "noop"]);
    let reasons: Vec<&str> = r["steps"].as_array().unwrap().iter().filter_map(|s| s["reason"].as_str()).collect();
    assert!(reasons.contains(&"checks_failed") && reasons.contains(&"gate1"), "{reasons:?}");
    assert_eq!(r["log"]["verified"], true);
    // The heartbeat planned for the pain the demo's server found.
    let journal = std::fs::read_to_string(dir.join("docs/ratchet-journal.md")).unwrap();
    assert!(journal.contains("· pain:pn_") && journal.contains("EmptyName"), "{journal}");
    // The keys are kept private, and the server was stopped.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(dir.join(".ratchet/keys.toml")).unwrap().permissions().mode() & 0o777, 0o600);
    // A second demo into the same (now non-empty) folder is refused.
    let out = ws.run(&["demo", dir.to_str().unwrap()]);
    assert!(stderr(&out).contains("[DEMO_DIR_NOT_EMPTY]"), "{}", stderr(&out));
}

#[test]
fn the_demo_reads_for_a_newcomer_and_its_next_line_works_as_printed() {
    let ws = Ws::new();
    let dir = ws.home.join("demo");
    let out = ws.run(&["demo", dir.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = crate::support::workspace::stdout(&out);
    // Each step is headed by the id its outcome line and the log print.
    for line in text.lines().filter(|l| l.contains(" of 7) ")) {
        let id = line.split_whitespace().next().unwrap();
        assert!(text.contains(&format!("→ {id} ")), "{id} is the id of its outcome: {text}");
    }
    // Each term is explained, once, where it is first used.
    for term in ["(pain)", "(Gate 1:", "(utility:", "(tier:"] {
        assert_eq!(text.matches(term).count(), 1, "{term}: {text}");
    }
    // What the server shows once is kept.
    let keys = std::fs::read_to_string(dir.join(".ratchet/keys.toml")).unwrap();
    for field in ["agent_key", "recovery_code", "dashboard_url"] {
        assert!(keys.contains(&format!("{field} = \"")), "{field}: {keys}");
    }
    // The `next:` line runs as printed, without `ratchet` on PATH.
    let next = text.lines().find_map(|l| l.strip_prefix("next: ")).unwrap();
    let command = next.split(", then").next().unwrap();
    let ran = std::process::Command::new("sh")
        .args(["-c", command])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &ws.home)
        .env("XDG_STATE_HOME", ws.home.join("state"))
        .env("RATCHET_NOW", crate::support::workspace::NOW)
        .output()
        .unwrap();
    assert!(ran.status.success(), "{command}: {}", String::from_utf8_lossy(&ran.stderr));
    assert!(String::from_utf8_lossy(&ran.stdout).contains("pending   1"), "{}", String::from_utf8_lossy(&ran.stdout));
}

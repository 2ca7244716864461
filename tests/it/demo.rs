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

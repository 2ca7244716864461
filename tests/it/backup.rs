//! `ratchet log backup` / `log restore` / `log verify --against` (issue
//! 13): the log's backup on a git ref that a push carries, and a tampered
//! backup refused.

use crate::support::workspace::{Setup, Ws, append, code, git, json, stderr, stdout};

fn two_steps() -> Ws {
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    ws.answer(1, &append("docs/guide.md", "line three\n"));
    assert_eq!(json(&ws.run(&["--json", "step", "--provider", "self"]))["outcome"], "merged");
    ws
}

#[test]
fn a_backup_pushed_and_fetched_restores_the_log_in_a_new_clone() {
    let ws = two_steps();
    let out = ws.run(&["log", "backup"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("backed up 2 entries (2 new) to refs/ratchet/log"), "{}", stdout(&out));
    assert!(stderr(&out).contains("git push origin refs/ratchet/log"));
    assert_eq!(ws.git(&["status", "--porcelain"]).trim(), "", "the work tree and index are untouched");
    // Again: nothing new.
    assert!(stdout(&ws.run(&["log", "backup"])).contains("already holds the log (2 entries)"));
    // Push it to a remote the way the README says, and fetch it in a fresh clone.
    let remote = ws.home.join("remote.git");
    git(&ws.home, &["init", "-q", "--bare", "-b", "main", remote.to_str().unwrap()]);
    ws.git(&["remote", "add", "origin", remote.to_str().unwrap()]);
    ws.git(&["push", "-q", "origin", "main", "refs/ratchet/log"]);
    let clone = ws.home.join("clone");
    git(&ws.home, &["clone", "-q", remote.to_str().unwrap(), clone.to_str().unwrap()]);
    git(&clone, &["fetch", "-q", "origin", "refs/ratchet/log:refs/ratchet/log"]);
    let restored = std::process::Command::new(crate::support::workspace::bin())
        .args(["log", "restore"])
        .current_dir(&clone)
        .env("RATCHET_NOW", crate::support::workspace::NOW)
        .env("HOME", ws.home.join("clone-home"))
        .env("XDG_STATE_HOME", ws.home.join("clone-home/state"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(code(&restored), 0, "{}", stderr(&restored));
    assert!(stdout(&restored).starts_with("restored 2 entries (2 new) from refs/ratchet/log"), "{}", stdout(&restored));
    assert_eq!(
        std::fs::read(clone.join("logs/steps.jsonl")).unwrap(),
        std::fs::read(ws.path("logs/steps.jsonl")).unwrap()
    );
    // The restored log verifies, step commits' trailers included.
    let verify = std::process::Command::new(crate::support::workspace::bin())
        .args(["log", "verify"])
        .current_dir(&clone)
        .env("HOME", ws.home.join("clone-home"))
        .env("XDG_STATE_HOME", ws.home.join("clone-home/state"))
        .output()
        .unwrap();
    assert_eq!(code(&verify), 0, "{}{}", stdout(&verify), stderr(&verify));
}

#[test]
fn verify_against_says_how_far_the_backup_is_behind() {
    let ws = two_steps();
    ws.run(&["log", "backup"]);
    let out = ws.run(&["log", "verify", "--against", "refs/ratchet/log"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    ws.answer(2, &append("docs/guide.md", "line four\n"));
    ws.run(&["step", "--provider", "self"]);
    let out = ws.run(&["log", "verify", "--against", "refs/ratchet/log"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    insta::assert_snapshot!("verify_against_behind", crate::support::workspace::redact_hashes(&stdout(&out)));
    // Restoring the older backup over a longer log would lose an entry: refused.
    let out = ws.run(&["log", "restore"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("[BACKUP_DIVERGED]") && stderr(&out).contains("restoring would lose entries"),
        "{}",
        stderr(&out)
    );
}

/// Writes `bytes` as steps.jsonl in a commit on refs/ratchet/log, with git
/// plumbing (as anyone with push access to the remote could).
fn forge_backup(ws: &Ws, bytes: &[u8]) {
    let blob_file = ws.home.join("forged.jsonl");
    std::fs::write(&blob_file, bytes).unwrap();
    let blob = ws.git(&["hash-object", "-w", blob_file.to_str().unwrap()]).trim().to_string();
    let mut mktree = std::process::Command::new("git")
        .args(["mktree"])
        .current_dir(&ws.root)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    mktree.stdin.take().unwrap().write_all(format!("100644 blob {blob}\tsteps.jsonl\n").as_bytes()).unwrap();
    let tree = String::from_utf8(mktree.wait_with_output().unwrap().stdout).unwrap().trim().to_string();
    let commit = ws.git(&["commit-tree", &tree, "-m", "forged"]).trim().to_string();
    ws.git(&["update-ref", "refs/ratchet/log", &commit]);
}

#[test]
fn a_tampered_backup_is_refused_and_the_log_left_alone() {
    let ws = two_steps();
    let log = std::fs::read_to_string(ws.path("logs/steps.jsonl")).unwrap();
    // The merged step claims a better utility: the line's hash no longer matches.
    let forged = log.replacen("\"outcome\":\"merged\"", "\"outcome\":\"rejected\"", 1);
    assert_ne!(forged, log);
    forge_backup(&ws, forged.as_bytes());
    std::fs::remove_file(ws.path("logs/steps.jsonl")).unwrap();
    let out = ws.run(&["log", "restore"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    insta::assert_snapshot!("restore_tampered", stderr(&out));
    assert!(!ws.path("logs/steps.jsonl").exists(), "nothing written");
    // A backup whose lines verify but that drops the first entry does not link.
    let dropped: String = log.lines().skip(1).map(|l| format!("{l}\n")).collect();
    forge_backup(&ws, dropped.as_bytes());
    let out = ws.run(&["log", "restore"]);
    assert!(
        stderr(&out).contains("[BACKUP_TAMPERED]") && stderr(&out).contains("line 1: seq jumps"),
        "{}",
        stderr(&out)
    );
    // A damaged local log is kept aside, not lost, when a good backup is restored.
    forge_backup(&ws, log.as_bytes());
    std::fs::write(ws.path("logs/steps.jsonl"), "garbage\n").unwrap();
    let out = ws.run(&["log", "restore"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("it was moved to logs/quarantine/steps.jsonl.before-restore-"), "{}", stderr(&out));
    assert_eq!(ws.read("logs/steps.jsonl"), log);
}

//! `ratchet log`, `log show` and `log verify` end to end: a real binary in a
//! real git repository, clock pinned, state directory private. The words
//! users read are pinned with insta snapshots (temporary paths filtered).

use std::fs;

use crate::support::journal::{Fixture, fixture, line_ranges};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(f: &Fixture, args: &[&str]) -> Out {
    let out = f.ratchet().args(args).output().expect("ratchet runs");
    let tmp = f.dir.path().to_string_lossy().into_owned();
    let id = f.ws.id();
    let clean = |b: &[u8]| String::from_utf8_lossy(b).replace(&tmp, "[TMP]").replace(&id, "[WS_ID]");
    Out { code: out.status.code().unwrap_or(-1), stdout: clean(&out.stdout), stderr: clean(&out.stderr) }
}

fn flip(f: &Fixture, line: usize, offset: usize) {
    let mut log = f.read_log();
    let at = line_ranges(&log)[line - 1].start + offset;
    log[at] = if log[at] == b'a' { b'b' } else { b'a' };
    fs::write(f.log(), log).unwrap();
}

#[test]
fn verify_clean() {
    let f = fixture();
    f.write_fixed_log(5);
    let out = run(&f, &["log", "verify"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!("verify_clean", out.stdout);
    assert_eq!(out.stderr, "");
}

#[test]
fn verify_clean_json() {
    let f = fixture();
    f.write_fixed_log(5);
    let out = run(&f, &["log", "verify", "--json"]);
    assert_eq!(out.code, 0);
    insta::assert_snapshot!("verify_clean_json", out.stdout);
}

#[test]
fn verify_names_the_first_bad_line() {
    let f = fixture();
    f.write_fixed_log(5);
    flip(&f, 3, 120);
    let out = run(&f, &["log", "verify"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "");
    insta::assert_snapshot!("verify_tampered", out.stderr);
    let out = run(&f, &["log", "verify", "--json"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!("verify_tampered_json", out.stdout);
}

#[test]
fn verify_reports_a_rollback() {
    let f = fixture();
    f.write_fixed_log(5);
    let log = f.read_log();
    fs::write(f.log(), &log[..line_ranges(&log)[2].end]).unwrap();
    let out = run(&f, &["log", "verify"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!("verify_rollback", out.stderr);
}

#[test]
fn a_torn_tail_is_reported_then_recovered_by_the_next_command() {
    let f = fixture();
    f.write_fixed_log(4);
    let mut log = f.read_log();
    log.extend_from_slice(br#"{"v":1,"seq":5,"id":"s5","ts":"2026-11-"#);
    fs::write(f.log(), &log).unwrap();
    let out = run(&f, &["log", "verify"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!("verify_torn", out.stderr);

    let out = run(&f, &["log", "--kind", "recovery"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!("list_after_recovery", format!("{}\n--- stderr\n{}", out.stdout, out.stderr));
    assert_eq!(
        fs::read(f.root.join("logs/quarantine/20261121T190000Z.jsonl")).unwrap(),
        br#"{"v":1,"seq":5,"id":"s5","ts":"2026-11-"#
    );
    let out = run(&f, &["log", "verify"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn list_shows_a_table_newest_last() {
    let f = fixture();
    f.write_fixed_log(6);
    let out = run(&f, &["log"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!("list", format!("{}\n--- stderr\n{}", out.stdout, out.stderr));
}

#[test]
fn list_filters() {
    let f = fixture();
    f.write_fixed_log(9);
    let seqs = |args: &[&str]| -> Vec<String> {
        let out = run(&f, args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        out.stdout.lines().skip(1).map(|l| l.split_whitespace().next().unwrap().to_string()).collect()
    };
    assert_eq!(seqs(&["log", "--limit", "2"]), ["8", "9"]);
    assert_eq!(seqs(&["log", "--kind", "intent"]), ["1"]);
    assert_eq!(seqs(&["log", "--provider", "ollama"]), ["5", "9"]);
    assert_eq!(seqs(&["log", "--outcome", "noop", "--limit", "1"]), ["8"]);
    assert_eq!(seqs(&["log", "--since", "2026-11-21T18:07:00Z"]), ["7", "8", "9"]);
    assert!(seqs(&["log", "--kind", "amend"]).is_empty());

    let out = run(&f, &["log", "--json", "--limit", "3"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("--json prints one JSON array");
    let seqs: Vec<u64> = v.as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [7, 8, 9]);
    assert_eq!(v[0]["pick"]["provider"], "heartbeat");
    assert_eq!(v[0]["hash"].as_str().unwrap().len(), 64);
    let out = run(&f, &["log", "--json", "--kind", "amend"]);
    assert_eq!(out.stdout.trim(), "[]");

    let out = run(&f, &["log", "--kind", "note"]);
    assert_eq!(out.code, 2, "an unknown kind is a usage error");
    let out = run(&f, &["log", "--since", "yesterday"]);
    assert_eq!(out.code, 2);
}

#[test]
fn show_an_entry_or_say_what_to_do() {
    let f = fixture();
    f.write_fixed_log(3);
    let out = run(&f, &["log", "show", "s2"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // For people by default; --json for the entries.
    insta::assert_snapshot!("show", out.stdout);
    let entries: serde_json::Value = serde_json::from_str(&run(&f, &["--json", "log", "show", "s2"]).stdout).unwrap();
    assert_eq!(entries[0]["id"], "s2");
    let by_seq = run(&f, &["log", "show", "2"]);
    assert_eq!(by_seq.stdout, out.stdout);

    let out = run(&f, &["log", "show", "s99"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!("show_missing", out.stderr);
    let out = run(&f, &["log", "show", "s99", "--json"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!("show_missing_json", out.stdout);
}

#[test]
fn commands_that_read_the_log_refuse_a_rolled_back_or_tampered_one() {
    let f = fixture();
    f.write_fixed_log(5);
    let log = f.read_log();
    fs::write(f.log(), &log[..line_ranges(&log)[3].end]).unwrap();
    let out = run(&f, &["log"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "");
    insta::assert_snapshot!("list_rollback", out.stderr);
    let out = run(&f, &["log", "show", "1", "--json"]);
    assert_eq!(out.code, 1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["code"], "LOG_ROLLBACK");

    fs::write(f.log(), &log).unwrap();
    flip(&f, 5, 100);
    let out = run(&f, &["log"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!("list_tampered", out.stderr);
}

#[test]
fn without_xdg_state_home_the_checkpoint_goes_to_local_state() {
    let f = fixture();
    f.write_fixed_log(2);
    let mut log = f.read_log();
    log.extend_from_slice(b"{\"v\":1,");
    fs::write(f.log(), &log).unwrap();
    // A relative XDG_STATE_HOME is ignored, as the XDG spec says.
    let out = f.ratchet().env("XDG_STATE_HOME", "relative/state").args(["log"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cp = f.dir.path().join(".local/state/ratchet").join(f.ws.id()).join("checkpoint");
    let text = fs::read_to_string(&cp).expect("the state checkpoint under ~/.local/state");
    assert!(text.contains("\"seq\":3"), "{text}");
    assert!(!f.root.join("relative").exists());
}

//! The step log through its library API (unit tests: drafts of any JSON
//! body are the journal's own business): real files in temporary
//! directories, real git repositories where git matters.

#[allow(dead_code)]
mod support {
    //! Fixtures shared by the integration tests: a real git repository in a
    //! temporary directory with a minimal `config/rails.toml`, its own state
    //! directory (never the real home), and a pinned clock for the CLI.

    use std::path::{Path, PathBuf};
    use std::process::Command;

    use crate::journal::line::{self, Header};
    use crate::journal::{Checkpoint, Draft, Journal, JournalPaths, Kind};
    use crate::workspace::Workspace;
    use serde_json::{Map, Value, json};

    pub const NOW: &str = "2026-11-21T19:00:00Z";

    pub struct Fixture {
        pub dir: tempfile::TempDir,
        pub root: PathBuf,
        pub xdg: PathBuf,
        pub ws: Workspace,
    }

    /// A git repository with `config/rails.toml` and a private state directory.
    pub fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("a temp dir");
        let root = dir.path().join("repo");
        std::fs::create_dir_all(root.join("config")).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        std::fs::write(root.join("config/rails.toml"), "[paths]\nallow = [\"docs/**\"]\n").unwrap();
        let root = root.canonicalize().unwrap();
        let xdg = dir.path().join("state");
        let ws = Workspace::at(root.clone(), "");
        Fixture { dir, root, xdg, ws }
    }

    impl Fixture {
        pub fn paths(&self) -> JournalPaths {
            JournalPaths::with_state_home(&self.ws, Some(&self.xdg))
        }

        pub fn open(&self) -> Journal {
            Journal::open_at(self.paths()).expect("the journal opens")
        }

        pub fn log(&self) -> PathBuf {
            self.ws.steps_log()
        }

        pub fn read_log(&self) -> Vec<u8> {
            std::fs::read(self.log()).unwrap()
        }

        /// Appends `n` step entries through `Journal::append`.
        pub fn append_steps(&self, n: u64) -> Journal {
            let mut j = self.open();
            for _ in 0..n {
                let seq = j.head().seq + 1;
                j.append_draft(Draft::new(Kind::Step, step_body(seq)).unwrap()).unwrap();
            }
            j
        }

        /// Writes an `n`-entry log with fixed times (so hashes are stable across
        /// runs) through the same encoder as `append`, and its checkpoints.
        pub fn write_fixed_log(&self, n: u64) {
            let paths = self.paths();
            std::fs::create_dir_all(paths.log.parent().unwrap()).unwrap();
            let mut bytes = Vec::new();
            let mut prev = line::ZERO;
            for seq in 1..=n {
                let id = format!("s{seq}");
                let ts = format!("2026-11-21T18:{:02}:00Z", seq % 60);
                let kind = if seq == 1 { Kind::Intent } else { Kind::Step };
                let body = if seq == 1 {
                    obj(json!({"name": "docs-first", "intent": "0".repeat(64)}))
                } else {
                    step_body(seq)
                };
                let e = line::encode(&Header { seq, id: &id, ts: &ts, kind, prev }, &body);
                bytes.extend_from_slice(&e.bytes);
                prev = e.hash;
            }
            std::fs::write(&paths.log, &bytes).unwrap();
            let cp = Checkpoint { seq: n, size: bytes.len() as u64, head: prev };
            for place in &paths.checkpoints {
                cp.write(&place.path, None).unwrap();
            }
        }

        /// The two checkpoint files.
        pub fn checkpoint_files(&self) -> Vec<PathBuf> {
            self.paths().checkpoints.iter().map(|p| p.path.clone()).collect()
        }

        /// Commits an empty change with `message` (trailers included).
        pub fn commit(&self, message: &str) {
            git(&self.root, &["commit", "-q", "--allow-empty", "-m", message]);
        }
    }

    pub fn git(dir: &Path, args: &[&str]) {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("HOME", dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Alice")
            .env("GIT_AUTHOR_EMAIL", "alice@example.com")
            .env("GIT_COMMITTER_NAME", "Alice")
            .env("GIT_COMMITTER_EMAIL", "alice@example.com")
            .env("GIT_AUTHOR_DATE", "2026-11-21T19:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-11-21T19:00:00Z")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("an object"),
        }
    }

    /// A step body in the shape of DESIGN §9, small.
    pub fn step_body(seq: u64) -> Map<String, Value> {
        let providers = ["self", "ollama", "human", "heartbeat"];
        let outcomes = ["merged", "rejected", "pending", "failed"];
        obj(json!({
            "pick": {"provider": providers[(seq % 4) as usize], "reason": "thompson"},
            "proposal": {"op": "replace", "path": format!("docs/page{seq}.md"), "rationale": "say it plainly", "added": seq % 7, "removed": 1},
            "signals": {"ci_pass": 1, "path_ok": 1, "diff_ratio": 0.05, "atomic_ok": 1, "left_next_steps": 1, "human_score": 0.5},
            "utility": 0.9,
            "outcome": outcomes[(seq % 4) as usize],
        }))
    }

    /// Byte ranges of each line (newline included), 0-based.
    pub fn line_ranges(log: &[u8]) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let mut start = 0;
        for (i, &b) in log.iter().enumerate() {
            if b == b'\n' {
                out.push(start..i + 1);
                start = i + 1;
            }
        }
        if start < log.len() {
            out.push(start..log.len());
        }
        out
    }
}

use std::fs;

use crate::error::Coded;
use crate::journal::{Checkpoint, Draft, Journal, JournalError, Kind, VerifyOptions, verify_at, verify_bytes};
use serde_json::json;
use support::{Fixture, fixture, line_ranges, obj};

fn verify(f: &Fixture) -> crate::journal::VerifyReport {
    let trailers = f.ws.repo().unwrap().log_trailers().unwrap();
    verify_at(&f.paths(), &trailers, VerifyOptions::default()).unwrap()
}

fn bad(report: &crate::journal::VerifyReport) -> (Option<u64>, &'static str) {
    let b = report.first_bad.as_ref().expect("verify finds a problem");
    (b.line, b.code)
}

fn checkpoints(f: &Fixture) -> Vec<Checkpoint> {
    f.checkpoint_files().iter().filter_map(|p| Checkpoint::read(p).unwrap()).collect()
}

fn open_err(f: &Fixture) -> JournalError {
    Journal::open_at(f.paths()).expect_err("the journal refuses to open")
}

#[test]
fn appends_chain_and_checkpoint() {
    let f = fixture();
    let j = f.append_steps(3);
    let log = String::from_utf8(f.read_log()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with(r#"{"v":1,"seq":1,"id":"s1","ts":""#));
    assert!(lines[0].contains(&format!("\"kind\":\"step\",\"prev\":\"{}\",", "0".repeat(64))));
    let entries: Vec<_> = j.entries().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(entries[1].prev, entries[0].hash);
    assert_eq!(entries[2].prev, entries[1].hash);
    assert_eq!(entries[2].id, "s3");
    assert_eq!(entries[2].get_str("pick.provider"), Some("heartbeat"));
    // The raw reading is the same log, with each body left as JSON text.
    let raw: Vec<_> = j.raw_entries().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(raw.len(), entries.len());
    for (r, e) in raw.iter().zip(&entries) {
        assert_eq!((r.seq, &r.id, &r.ts, r.kind), (e.seq, &e.id, &e.ts, e.kind));
        let body: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body, e.body);
    }
    let head = j.head();
    assert_eq!((head.seq, head.hash, head.size), (3, entries[2].hash, log.len() as u64));
    let cps = checkpoints(&f);
    assert_eq!(cps.len(), 2, "both checkpoints are written");
    for cp in cps {
        assert_eq!(cp, Checkpoint { seq: 3, size: log.len() as u64, head: entries[2].hash });
    }
    assert!(verify(&f).ok());
}

#[test]
fn explicit_ids_and_amendments_are_found_together() {
    let f = fixture();
    let mut j = f.open();
    j.append_draft(Draft::new(Kind::Step, json!({"outcome": "pending"})).unwrap()).unwrap();
    j.append_draft(Draft::new(Kind::Heartbeat, json!({"outcome": "noop"})).unwrap()).unwrap();
    let later = j.append_draft(Draft::new(Kind::Step, json!({"outcome": "merged"})).unwrap().with_id("s1")).unwrap();
    assert_eq!((later.seq, later.id.as_str()), (3, "s1"));
    j.append_draft(Draft::new(Kind::Amend, json!({"step": "s1", "reason": "reverted"})).unwrap()).unwrap();
    let found = j.find("s1").unwrap();
    assert_eq!(found.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 3, 4]);
    assert_eq!(j.find("2").unwrap()[0].kind, Kind::Heartbeat);
    let e = j.find("s9").unwrap_err();
    assert_eq!(e.code(), "ENTRY_NOT_FOUND");
    assert!(e.hint().unwrap().contains("ratchet log"));
    assert!(verify(&f).ok());
}

#[test]
fn bad_drafts_are_refused_and_nothing_is_written() {
    let f = fixture();
    let mut j = f.open();
    for key in ["v", "seq", "id", "ts", "kind", "prev", "hash"] {
        let e = j.append_draft(Draft::new(Kind::Step, json!({ key: 1 })).unwrap()).unwrap_err();
        assert_eq!(e.code(), "ENTRY_INVALID", "{key}");
    }
    assert_eq!(Draft::new(Kind::Step, json!([1])).unwrap_err().code(), "ENTRY_INVALID");
    assert_eq!(Draft::new(Kind::Step, "text").unwrap_err().code(), "ENTRY_INVALID");
    let e = j.append_draft(Draft::new(Kind::Step, json!({})).unwrap().with_id("bad id")).unwrap_err();
    assert_eq!(e.code(), "ENTRY_INVALID");
    let big = "x".repeat(crate::journal::MAX_LINE);
    let e = j.append_draft(Draft::new(Kind::Step, json!({ "big": big })).unwrap()).unwrap_err();
    assert!(e.to_string().contains("limit"), "{e}");
    assert!(!f.log().exists());
    assert_eq!(Kind::parse("note"), None);
    // An empty body is fine.
    j.append_draft(Draft::new(Kind::Watchdog, json!({})).unwrap()).unwrap();
    assert!(verify(&f).ok());
}

/// Every single-byte change anywhere in a 50-entry log is detected, and the
/// line that holds the byte is named.
#[test]
fn every_single_byte_change_is_detected() {
    let f = fixture();
    let mut j = f.open();
    for n in 0..50 {
        let body = json!({"outcome": "merged", "pick": {"provider": "self"}, "utility": 0.5 + n as f64 / 100.0});
        j.append_draft(Draft::new(Kind::Step, body).unwrap()).unwrap();
    }
    let log = f.read_log();
    let cps = checkpoints(&f);
    let ranges = line_ranges(&log);
    assert_eq!(ranges.len(), 50);
    let sequential = VerifyOptions { threads: 1, chunk: 1 << 20 };
    let parallel = VerifyOptions { threads: 3, chunk: 700 };
    let mut checked = 0;
    for (n, range) in ranges.iter().enumerate() {
        let line = n as u64 + 1;
        for pos in range.clone() {
            let original = log[pos];
            let mut replacements = vec![original ^ 0x01, b'\n'];
            // A byte of the same class: a digit for a digit, a letter for a letter.
            replacements.push(match original {
                b'0'..=b'8' => original + 1,
                b'9' => b'0',
                b'a'..=b'y' => original + 1,
                b'z' => b'a',
                _ => b'0',
            });
            for r in replacements {
                if r == original {
                    continue;
                }
                let mut bad_log = log.clone();
                bad_log[pos] = r;
                let opts = if pos % 11 == 0 { parallel } else { sequential };
                let report = verify_bytes(&bad_log, &cps, &[], opts);
                let b = report.first_bad.as_ref().unwrap_or_else(|| panic!("byte {pos} -> {r} undetected"));
                assert_eq!(b.line, Some(line), "byte {pos} ({:?} -> {:?}): {}", original as char, r as char, b.reason);
                assert_eq!(b.code, "LOG_TAMPERED", "byte {pos}: {}", b.reason);
                assert_eq!(report.entries, line - 1);
                checked += 1;
            }
        }
    }
    assert!(checked > 2 * log.len());
    // The unchanged log verifies, in both modes.
    assert!(verify_bytes(&log, &cps, &[], sequential).ok());
    assert!(verify_bytes(&log, &cps, &[], parallel).ok());
}

#[test]
fn a_changed_line_stops_reading_the_log_and_is_named() {
    let f = fixture();
    f.append_steps(25);
    let mut log = f.read_log();
    let at = line_ranges(&log)[6].start + 40;
    log[at] = if log[at] == b'x' { b'y' } else { b'x' };
    let at = line_ranges(&log)[19].start + 50;
    log[at] ^= 1;
    fs::write(f.log(), &log).unwrap();
    let report = verify(&f);
    assert_eq!(bad(&report), (Some(7), "LOG_TAMPERED"));
    assert_eq!(report.entries, 6);
    // Opening checks only the tail (lines at and after the checkpoints),
    // but reading the entries meets the bad line.
    let j = f.open();
    let err = j.entries().unwrap().find_map(Result::err).unwrap();
    assert_eq!(err.code(), "LOG_TAMPERED");
    assert!(err.to_string().contains("line 7"), "{err}");
    let raw: Vec<_> = j.raw_entries().unwrap().collect();
    assert_eq!(raw.len(), 7, "six good entries, then the error, then nothing");
    let err = raw.last().unwrap().as_ref().unwrap_err();
    assert_eq!(err.code(), "LOG_TAMPERED");
    assert!(err.to_string().contains("line 7"), "{err}");
}

#[test]
fn deleted_swapped_and_duplicated_lines_are_detected() {
    let f = fixture();
    f.append_steps(20);
    let log = f.read_log();
    let ranges = line_ranges(&log);
    let lines: Vec<&[u8]> = ranges.iter().map(|r| &log[r.clone()]).collect();
    let write = |order: Vec<&[u8]>| fs::write(f.log(), order.concat()).unwrap();

    // Deleting line 10.
    let mut order = lines.clone();
    order.remove(9);
    write(order);
    let report = verify(&f);
    assert_eq!(bad(&report), (Some(10), "LOG_TAMPERED"));
    assert!(report.first_bad.unwrap().reason.contains("seq jumps"));
    assert!(matches!(open_err(&f).code(), "LOG_ROLLBACK" | "LOG_TAMPERED"));

    // Swapping lines 10 and 11.
    let mut order = lines.clone();
    order.swap(9, 10);
    write(order);
    assert_eq!(bad(&verify(&f)), (Some(10), "LOG_TAMPERED"));
    let j = f.open();
    let err = j.entries().unwrap().find_map(Result::err).unwrap();
    assert_eq!(err.code(), "LOG_TAMPERED");

    // Duplicating line 10.
    let mut order = lines.clone();
    order.insert(10, lines[9]);
    write(order);
    let report = verify(&f);
    assert_eq!(bad(&report), (Some(11), "LOG_TAMPERED"));
    assert!(matches!(open_err(&f).code(), "LOG_ROLLBACK" | "LOG_TAMPERED"));

    // Duplicating the last line: past the checkpoint, but a link error is
    // never a torn write.
    let mut order = lines.clone();
    order.push(lines[19]);
    write(order);
    assert_eq!(bad(&verify(&f)), (Some(21), "LOG_TAMPERED"));
    assert_eq!(open_err(&f).code(), "LOG_TAMPERED");

    // Restored, it verifies again.
    write(lines.clone());
    assert!(verify(&f).ok());
}

#[test]
fn truncation_is_a_rollback() {
    let f = fixture();
    f.append_steps(20);
    let log = f.read_log();
    let ranges = line_ranges(&log);

    // At a line boundary: every line left is fine, but the checkpoint knows better.
    fs::write(f.log(), &log[..ranges[14].end]).unwrap();
    let report = verify(&f);
    assert_eq!(bad(&report), (Some(16), "LOG_ROLLBACK"));
    assert!(report.first_bad.as_ref().unwrap().reason.contains("shorter than checkpoint"));
    let e = open_err(&f);
    assert_eq!(e.code(), "LOG_ROLLBACK");
    assert!(e.to_string().contains("logs/steps.jsonl line 20"), "{e}");
    assert!(e.hint().unwrap().contains("checkpoint"), "{e:?}");

    // Inside a line.
    fs::write(f.log(), &log[..ranges[19].end - 30]).unwrap();
    assert_eq!(bad(&verify(&f)), (Some(20), "LOG_ROLLBACK"));
    assert_eq!(open_err(&f).code(), "LOG_ROLLBACK");

    // Emptied, or removed.
    fs::write(f.log(), b"").unwrap();
    assert_eq!(bad(&verify(&f)), (Some(1), "LOG_ROLLBACK"));
    assert_eq!(open_err(&f).code(), "LOG_ROLLBACK");
    fs::remove_file(f.log()).unwrap();
    assert_eq!(bad(&verify(&f)), (Some(1), "LOG_ROLLBACK"));
    assert_eq!(open_err(&f).code(), "LOG_ROLLBACK");
}

#[test]
fn an_older_copy_is_a_rollback_whichever_checkpoint_survives() {
    let f = fixture();
    f.append_steps(30);
    let old = f.read_log();
    f.append_steps(5);
    fs::write(f.log(), &old).unwrap();
    assert_eq!(bad(&verify(&f)), (Some(31), "LOG_ROLLBACK"));
    assert_eq!(open_err(&f).code(), "LOG_ROLLBACK");

    // `.ratchet/` deleted: the copy in the state directory still applies.
    let [local, state] = &f.checkpoint_files()[..] else { panic!("two checkpoints") };
    fs::remove_dir_all(local.parent().unwrap()).unwrap();
    assert_eq!(open_err(&f).code(), "LOG_ROLLBACK");
    // And the other way round.
    let saved = fs::read(state).unwrap();
    fs::remove_file(state).unwrap();
    fs::create_dir_all(local.parent().unwrap()).unwrap();
    fs::write(local, &saved).unwrap();
    let e = open_err(&f);
    assert_eq!(e.code(), "LOG_ROLLBACK");
    assert!(e.hint().unwrap().contains(".ratchet/checkpoint"), "{:?}", e.hint());
}

#[test]
fn another_log_of_the_same_length_is_a_rollback() {
    let f = fixture();
    f.append_steps(12);
    let other = fixture();
    let mut j = other.open();
    for n in 0..12 {
        j.append_draft(Draft::new(Kind::Step, json!({"outcome": "noop", "n": n})).unwrap()).unwrap();
    }
    fs::copy(other.log(), f.log()).unwrap();
    let report = verify(&f);
    let b = report.first_bad.as_ref().unwrap();
    assert_eq!((b.line, b.code), (Some(12), "LOG_ROLLBACK"), "{}", b.reason);
    assert!(b.reason.contains("inconsistent with checkpoint"), "{}", b.reason);
    assert_eq!(open_err(&f).code(), "LOG_ROLLBACK");
}

#[test]
fn a_torn_last_line_is_quarantined_and_recovered() {
    let f = fixture();
    f.append_steps(5);
    let good = f.read_log();
    // What a crash in the middle of the sixth write leaves.
    let torn = br#"{"v":1,"seq":6,"id":"s6","ts":"2026-11-21T19:00:00Z","kind":"step","prev":"1f2e"#.to_vec();
    fs::write(f.log(), [good.as_slice(), torn.as_slice()].concat()).unwrap();
    let report = verify(&f);
    assert_eq!(bad(&report), (Some(6), "LOG_TORN"));

    let j = f.open();
    let rec = j.recovered().expect("a recovery entry").clone();
    assert_eq!((rec.seq, rec.kind), (6, Kind::Recovery));
    let qpath = rec.get_str("quarantine.path").unwrap().to_string();
    assert!(qpath.starts_with("logs/quarantine/") && qpath.ends_with(".jsonl"), "{qpath}");
    assert_eq!(fs::read(f.root.join(&qpath)).unwrap(), torn, "the quarantine holds the torn bytes");
    assert_eq!(rec.get("quarantine.bytes"), Some(&json!(torn.len())));
    assert_eq!(rec.get_str("quarantine.hash"), Some(blake3::hash(&torn).to_hex().as_str()));
    assert_eq!(rec.get("truncated_to.size"), Some(&json!(good.len())));
    // The log is the good prefix plus the recovery entry, and verifies.
    let now = f.read_log();
    assert_eq!(&now[..good.len()], good.as_slice());
    assert_eq!(line_ranges(&now).len(), 6);
    assert!(verify(&f).ok(), "{:?}", verify(&f).first_bad);
    assert_eq!(checkpoints(&f)[0].seq, 6);
    drop(j);
    // Opening again finds nothing to do.
    assert!(f.open().recovered().is_none());
}

#[test]
fn a_complete_but_broken_last_line_past_the_checkpoint_is_recovered_too() {
    let f = fixture();
    f.append_steps(3);
    let good = f.read_log();
    // Blocks of zeros: what some file systems show after a crash.
    let zeros = [0u8; 300];
    fs::write(f.log(), [good.as_slice(), &zeros, b"\n"].concat()).unwrap();
    let j = f.open();
    assert!(j.recovered().is_some());
    assert!(verify(&f).ok());
}

#[test]
fn a_broken_line_before_the_end_is_never_recovered() {
    let f = fixture();
    let mut j = f.append_steps(3);
    let cps: Vec<Vec<u8>> = f.checkpoint_files().iter().map(|p| fs::read(p).unwrap()).collect();
    j.append_draft(Draft::new(Kind::Step, json!({"outcome": "merged"})).unwrap()).unwrap();
    j.append_draft(Draft::new(Kind::Step, json!({"outcome": "merged"})).unwrap()).unwrap();
    drop(j);
    // Back to the checkpoints after entry 3, then break entry 4.
    for (p, b) in f.checkpoint_files().iter().zip(&cps) {
        fs::write(p, b).unwrap();
    }
    let mut log = f.read_log();
    let r = line_ranges(&log)[3].clone();
    log[r.start + 30] ^= 1;
    fs::write(f.log(), &log).unwrap();
    let e = open_err(&f);
    assert_eq!(e.code(), "LOG_TAMPERED");
    assert!(e.to_string().contains("line 4"), "{e}");
    assert_eq!(bad(&verify(&f)), (Some(4), "LOG_TAMPERED"));
    assert!(!f.root.join("logs/quarantine").exists());
}

#[test]
fn a_line_written_but_not_checkpointed_is_kept() {
    // A crash between the fsync of the entry and the checkpoint.
    let f = fixture();
    let mut j = f.append_steps(3);
    let cps: Vec<Vec<u8>> = f.checkpoint_files().iter().map(|p| fs::read(p).unwrap()).collect();
    let e = j.append_draft(Draft::new(Kind::Step, json!({"outcome": "merged"})).unwrap()).unwrap();
    drop(j);
    for (p, b) in f.checkpoint_files().iter().zip(&cps) {
        fs::write(p, b).unwrap();
    }
    let mut j = f.open();
    assert!(j.recovered().is_none());
    assert_eq!(j.head().hash, e.hash);
    j.append_draft(Draft::new(Kind::Step, json!({"outcome": "noop"})).unwrap()).unwrap();
    assert_eq!(checkpoints(&f)[1].seq, 5);
    assert!(verify(&f).ok());
}

#[test]
fn missing_checkpoints_are_not_errors() {
    let f = fixture();
    f.append_steps(4);
    for p in f.checkpoint_files() {
        fs::remove_file(p).unwrap();
    }
    let report = verify(&f);
    assert!(report.ok());
    assert!(report.checkpoints.iter().all(|c| c.status == "missing"));
    let mut j = f.open();
    assert_eq!(j.head().seq, 4);
    j.append_draft(Draft::new(Kind::Step, json!({})).unwrap()).unwrap();
    assert!(checkpoints(&f).iter().all(|c| c.seq == 5));
    // Without any checkpoint the whole log is checked on open.
    for p in f.checkpoint_files() {
        fs::remove_file(p).unwrap();
    }
    let mut log = f.read_log();
    let at = line_ranges(&log)[1].start + 20;
    log[at] ^= 1;
    fs::write(f.log(), &log).unwrap();
    assert_eq!(open_err(&f).code(), "LOG_TAMPERED");
}

#[test]
fn an_invalid_checkpoint_stops_the_journal() {
    let f = fixture();
    f.append_steps(2);
    fs::write(&f.checkpoint_files()[0], "garbage").unwrap();
    let e = open_err(&f);
    assert_eq!(e.code(), "CHECKPOINT_INVALID");
    assert!(e.hint().unwrap().contains("delete"));
    let report = verify(&f);
    assert_eq!(bad(&report), (None, "CHECKPOINT_INVALID"));
}

#[test]
fn concurrent_appenders_never_fork_the_chain() {
    let f = fixture();
    f.append_steps(1);
    std::thread::scope(|s| {
        for t in 0..4 {
            let f = &f;
            s.spawn(move || {
                let mut j = f.open();
                for n in 0..15 {
                    j.append_draft(Draft::new(Kind::Step, json!({"thread": t, "n": n})).unwrap()).unwrap();
                }
            });
        }
    });
    let report = verify(&f);
    assert!(report.ok(), "{:?}", report.first_bad);
    assert_eq!(report.entries, 61);
    assert_eq!(checkpoints(&f)[0].seq, 61);
}

#[test]
fn overlong_and_foreign_lines_are_refused() {
    let f = fixture();
    let prev = f.append_steps(2).head().hash_hex();
    let mut log = f.read_log();
    log.extend(std::iter::repeat_n(b'x', crate::journal::MAX_LINE + 10));
    log.push(b'\n');
    fs::write(f.log(), &log).unwrap();
    let report = verify(&f);
    assert_eq!(report.first_bad.as_ref().unwrap().line, Some(3));
    // A hash-correct line that is not canonical JSON is refused too.
    let mut log = f.read_log()[..line_ranges(&f.read_log())[1].end].to_vec();
    let hashed = format!(
        "{{\"v\":1,\"seq\":3,\"id\":\"s3\",\"ts\":\"2026-11-21T19:00:00Z\",\"kind\":\"step\",\"prev\":\"{prev}\",\"b\":1,\"a\":2}}"
    );
    let hash = blake3::hash(hashed.as_bytes()).to_hex();
    log.extend_from_slice(format!("{},\"hash\":\"{hash}\"}}\n", &hashed[..hashed.len() - 1]).as_bytes());
    fs::write(f.log(), &log).unwrap();
    let b = verify(&f).first_bad.unwrap();
    assert_eq!(b.line, Some(3));
    assert!(b.reason.contains("canonical order"), "{}", b.reason);
}

#[test]
fn verify_cross_checks_the_step_commits() {
    let f = fixture();
    let j = f.append_steps(3);
    let entries: Vec<_> = j.entries().unwrap().collect::<Result<_, _>>().unwrap();
    let genesis = entries[0].hash_hex();
    // A step commit naming entry 2 as the head before step s3.
    f.commit(&format!("docs: a step\n\nRatchet-Step: s3\nRatchet-Log-Prev: {}\n", entries[1].hash_hex()));
    let report = verify(&f);
    assert!(report.ok(), "{:?}", report.first_bad);
    assert_eq!(report.commits_checked, 1);

    // A commit from another clone's log is skipped when it says so.
    f.commit(&format!(
        "docs: elsewhere\n\nRatchet-Step: s9\nRatchet-Log-Prev: {}\nRatchet-Log: {}\n",
        "ab".repeat(32),
        "cd".repeat(32)
    ));
    let report = verify(&f);
    assert!(report.ok(), "{:?}", report.first_bad);
    assert_eq!((report.commits_checked, report.commits_foreign), (1, 1));

    // One that names this log but a hash it does not hold: rolled back.
    f.commit(&format!(
        "docs: lost\n\nRatchet-Step: s4\nRatchet-Log-Prev: {}\nRatchet-Log: {genesis}\n",
        "ef".repeat(32)
    ));
    let report = verify(&f);
    let b = report.first_bad.as_ref().unwrap();
    assert_eq!((b.line, b.code), (Some(4), "LOG_ROLLBACK"));
    assert!(b.reason.contains("Ratchet-Log-Prev"), "{}", b.reason);
}

#[test]
fn a_step_commit_without_its_step_entry_is_a_rollback() {
    let f = fixture();
    let j = f.append_steps(2);
    let head = j.head().hash_hex();
    // The commit of step s3 names the head, but s3 was never logged (or was cut off).
    f.commit(&format!("docs: a step\n\nRatchet-Step: s3\nRatchet-Log-Prev: {head}\n"));
    let b = verify(&f).first_bad.unwrap();
    assert_eq!((b.line, b.code), (Some(3), "LOG_ROLLBACK"));
    assert!(b.reason.contains("no step entry"), "{}", b.reason);
}

#[test]
fn parallel_and_sequential_verification_agree() {
    let f = fixture();
    let mut j = f.open();
    for n in 0..40 {
        let body = obj(json!({"pad": "y".repeat((n * 37) % 300), "n": n}));
        j.append_draft(Draft { kind: Kind::Step, id: None, body }).unwrap();
    }
    let log = f.read_log();
    let cps = checkpoints(&f);
    let ranges = line_ranges(&log);
    let cases: Vec<Vec<u8>> = vec![
        log.clone(),
        log[..ranges[25].end].to_vec(),
        log[..ranges[25].end - 5].to_vec(),
        [&log[..ranges[10].end], &log[ranges[11].start..]].concat(),
        {
            let mut l = log.clone();
            l[ranges[33].start + 3] = b'!';
            l
        },
    ];
    for case in cases {
        let reference = verify_bytes(&case, &cps, &[], VerifyOptions { threads: 1, chunk: 1 << 20 });
        for threads in [1, 2, 4] {
            for chunk in [1, 64, 333, 4096] {
                let r = verify_bytes(&case, &cps, &[], VerifyOptions { threads, chunk });
                assert_eq!(r.first_bad, reference.first_bad, "threads {threads}, chunk {chunk}");
                assert_eq!(r.entries, reference.entries);
                assert_eq!(r.head, reference.head);
            }
        }
    }
}

#[test]
fn a_log_replaced_while_open_is_refused_on_append() {
    let f = fixture();
    let mut j = f.append_steps(3);
    // Another log of exactly the same size takes its place.
    let mut log = f.read_log();
    let r = line_ranges(&log)[2].clone();
    log[r.end - 10] = if log[r.end - 10] == b'a' { b'b' } else { b'a' };
    fs::write(f.log(), &log).unwrap();
    let e = j.append_draft(Draft::new(Kind::Step, json!({})).unwrap()).unwrap_err();
    assert_eq!(e.code(), "LOG_ROLLBACK");
    assert_eq!(f.read_log(), log, "nothing was appended");
}

#[test]
fn a_journal_opened_earlier_links_to_entries_appended_since() {
    let f = fixture();
    let mut early = f.append_steps(2);
    let mut other = f.open();
    other.append_draft(Draft::new(Kind::Heartbeat, json!({"outcome": "noop"})).unwrap()).unwrap();
    let e = early.append_draft(Draft::new(Kind::Step, json!({"outcome": "merged"})).unwrap()).unwrap();
    assert_eq!((e.seq, e.id.as_str()), (4, "s4"));
    assert!(verify(&f).ok());
}

/// Nothing but the journal may touch the log file (DESIGN §2: "written only
/// by ratchet"; here: only by `src/journal`).
#[test]
fn only_the_journal_names_the_log_file() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if rel.starts_with("journal/") || rel == "workspace.rs" {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        assert!(!text.contains("steps_log()"), "src/{rel} reaches for the log file; go through crate::journal");
    }
}

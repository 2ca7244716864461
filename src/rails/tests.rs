//! The rails parsed and validated end to end, from text.

use super::*;

/// This repository's own rails are the template `init` writes.
pub const TEMPLATE: &str = include_str!("../../config/rails.toml");

#[test]
fn the_template_is_valid() {
    let rails = parse(TEMPLATE, "").unwrap();
    assert_eq!(rails.budget.max_lines, 120);
    assert_eq!(rails.utility.weights, Weights::SEED);
    assert_eq!(rails.trust.tiers.len(), 3);
    assert_eq!(rails.trust.required_tier("docs/a.md"), 0);
    assert_eq!(rails.trust.required_tier("src/lib.rs"), 2);
    assert!(!rails.providers["openai"].enabled);
    assert!(matches!(rails.paths.classify("config/rails.toml"), PathClass::Protected(_)));
}

fn err(text: &str) -> RailsError {
    parse(text, "").unwrap_err()
}

#[test]
fn an_unknown_key_names_the_key_line_and_suggestion() {
    let e = err("version = 1\n[paths]\nallow = [\"src/**\"]\n[budget]\nmax_line = 3\n");
    match &e {
        RailsError::UnknownKey { line, key, section, suggestion, .. } => {
            assert_eq!((*line, key.as_str(), section.as_str()), (5, "max_line", "budget"));
            assert_eq!(suggestion.as_deref(), Some("max_lines"));
        }
        other => panic!("expected UnknownKey, got {other:?}"),
    }
    assert_eq!(e.to_string(), "config/rails.toml:5: unknown key `max_line` in [budget]");
    assert_eq!(crate::error::Coded::hint(&e).unwrap(), "did you mean `max_lines`?");
}

#[test]
fn a_misspelt_table_is_an_unknown_key() {
    let e = err("[paths]\nallow = [\"src/**\"]\n[utilty]\nci_pass = 1.0\n");
    assert!(matches!(e, RailsError::UnknownKey { ref key, line: 3, .. } if key == "utilty"), "{e:?}");
}

#[test]
fn weights_that_do_not_sum_to_one_are_refused_with_their_line() {
    let text = "[paths]\nallow = [\"src/**\"]\n\n[utility]\nci_pass = 0.30\npath_ok = 0.15\ndiff_ratio = 0.15\natomic_ok = 0.10\nleft_next_steps = 0.10\nhuman_score = 0.10\n";
    let e = err(text);
    assert_eq!(e.to_string(), "config/rails.toml:4: [utility] weights sum to 0.9, not 1.0");
    assert_eq!(crate::error::Coded::code(&e), "RAILS_INVALID");
}

#[test]
fn weights_within_1e9_are_accepted() {
    let text = "[paths]\nallow = [\"src/**\"]\n[utility]\nci_pass = 0.3000000001\npath_ok = 0.15\ndiff_ratio = 0.15\natomic_ok = 0.10\nleft_next_steps = 0.10\nhuman_score = 0.20\n";
    assert!(parse(text, "").is_ok());
}

#[test]
fn an_empty_allowlist_is_refused() {
    assert!(err("[paths]\nallow = []\n").to_string().contains("[paths] allow is empty"));
}

#[test]
fn tiers_and_auto_merge_must_lie_inside_the_allowlist() {
    let e = err("[paths]\nallow = [\"docs/**\"]\n[[trust.tiers]]\nname = \"code\"\npaths = [\"src/**\"]\n");
    assert!(e.to_string().contains("trust tier \"code\" path \"src/**\" is outside the allowlist"), "{e}");
    let e = err("[paths]\nallow = [\"src/**\"]\n[gate.auto_merge]\nenabled = true\npaths = [\"**/*.md\"]\n");
    assert!(e.to_string().contains("[gate.auto_merge] path \"**/*.md\" is outside the allowlist"), "{e}");
    assert!(
        parse("[paths]\nallow = [\"docs/**\"]\n[gate.auto_merge]\nenabled = true\npaths = [\"docs/api/**\"]\n", "")
            .is_ok()
    );
}

#[test]
fn a_paid_provider_needs_caps() {
    let base = "[paths]\nallow = [\"src/**\"]\n[providers.oa]\nkind = \"openai\"\nurl = \"https://api.openai.com/v1\"\nmodel = \"m\"\n";
    let e = err(&format!("{base}enabled = true\n"));
    assert!(e.to_string().contains("is paid"), "{e}");
    // Disabled by default when paid, so no caps are needed.
    assert!(!parse(base, "").unwrap().providers["oa"].enabled);
    // A loopback endpoint is free.
    let local = "[paths]\nallow = [\"src/**\"]\n[providers.l]\nkind = \"openai\"\nurl = \"http://127.0.0.1:8080/v1\"\nmodel = \"m\"\n";
    assert!(parse(local, "").unwrap().providers["l"].enabled);
}

#[test]
fn a_key_of_another_kind_is_refused() {
    let e = err("[paths]\nallow = [\"src/**\"]\n[providers.h]\nkind = \"human\"\nurl = \"x\"\n");
    assert!(e.to_string().contains("key `url` does not apply to kind \"human\""), "{e}");
}

#[test]
fn the_protected_set_cannot_be_allowed_away() {
    let rails = parse("[paths]\nallow = [\"**\"]\n", "").unwrap();
    for p in [
        "config/rails.toml",
        "INTENTS/CURRENT",
        "golden/a.json",
        "logs/steps.jsonl",
        ".ratchet/x",
        "CODEOWNERS",
        "a/.Git/HEAD",
    ] {
        assert!(rails.paths.is_protected(p), "{p}");
    }
}

#[test]
fn human_gate_cannot_be_switched_off() {
    assert!(err("[paths]\nallow = [\"src/**\"]\n[gate]\nhuman = false\n").to_string().contains("without a human"));
}

#[test]
fn the_checks_own_scripts_count_as_code_but_files_they_read_do_not() {
    assert_eq!(named_files("sh scripts/check.sh"), ["scripts/check.sh"]);
    assert_eq!(named_files("./ci/test --fast && make"), ["ci/test"]);
    assert_eq!(named_files("FOO=1 python3 -u tools/run.py arg"), ["tools/run.py"]);
    assert_eq!(named_files("timeout 60 bash x.sh; true"), ["x.sh"]);
    assert!(named_files("grep -q BROKEN docs/guide.md && exit 1; exit 0").is_empty());
    assert!(named_files("cargo test").is_empty());
    let rails = parse("[paths]\nallow = [\"**\"]\n[checks]\ncommand = \"sh scripts/check.sh\"\n", "").unwrap();
    assert!(rails.trust.runs_on_use("scripts/check.sh"));
    assert!(rails.trust.runs_on_use("tests/test_api.py") && rails.trust.runs_on_use("docs/conftest.py"));
    assert!(rails.trust.runs_on_use(".github/workflows/ci.yml") && rails.trust.runs_on_use("src/build.rs"));
    assert!(!rails.trust.runs_on_use("docs/guide.md"));
}

const BASE: &str = "[paths]\nallow = [\"**\"]\n";

fn code_of(e: &RailsError) -> &'static str {
    crate::error::Coded::code(e)
}

#[test]
fn the_new_keys_default_to_confined_and_closed() {
    let rails = parse(BASE, "").unwrap();
    assert_eq!(rails.sandbox, Sandbox { mode: crate::sandbox::Mode::On, writable: vec![] });
    assert!(!rails.checks.network && rails.checks.env.is_empty());
    // The template says the same, with a comment each.
    let t = parse(TEMPLATE, "").unwrap();
    assert_eq!(t.sandbox, Sandbox::default());
    assert!(matches!(&t.providers["self"].kind, ProviderKind::Command { network: false, env, .. } if env.is_empty()));
    assert_eq!(t.providers["self"].tier, None);
    assert_eq!(t.trust.granted_names(), [("human".to_string(), "code".to_string())].into());
}

#[test]
fn sandbox_mode_and_writable_paths_are_read_as_written() {
    let rails = parse(
        &format!(
            "{BASE}[sandbox]\nmode = \"off\"\nwritable = [\"~/.cache/pip\", \"/var/cache/build\", \"~/.cache/pip\"]\n"
        ),
        "",
    )
    .unwrap();
    assert_eq!(rails.sandbox.mode, crate::sandbox::Mode::Off);
    assert_eq!(rails.sandbox.writable, [PathBuf::from("~/.cache/pip"), PathBuf::from("/var/cache/build")]);
    assert_eq!(
        rails.sandbox.writable_paths(Some(std::path::Path::new("/home/u"))),
        [PathBuf::from("/home/u/.cache/pip"), PathBuf::from("/var/cache/build")]
    );
    assert_eq!(rails.sandbox.writable_paths(None), [PathBuf::from("/var/cache/build")]);
    let e = err(&format!("{BASE}[sandbox]\nmode = \"maybe\"\n"));
    assert!(e.to_string().contains("[sandbox] mode \"maybe\" is not known"), "{e}");
    let e = err(&format!("{BASE}[sandbox]\nmod = \"off\"\n"));
    assert_eq!(crate::error::Coded::hint(&e).unwrap(), "did you mean `mode`?");
}

#[test]
fn writable_paths_that_are_relative_or_climb_or_hold_secrets_are_refused() {
    let refused = |path: &str| err(&format!("{BASE}[sandbox]\nwritable = [{path:?}]\n"));
    let e = refused("cache");
    assert!(e.to_string().contains("neither absolute nor under ~/"), "{e}");
    assert_eq!(code_of(&e), "RAILS_INVALID");
    for (path, says) in [
        ("/", "whole file system"),
        ("~", "whole file system or home"),
        ("~/../x", "`..`"),
        ("/a/../b", "`..`"),
        ("~/.ssh", "lies in the secret ~/.ssh"),
        ("~/.ssh/authorized_keys", "lies in the secret ~/.ssh"),
        ("~/.config", "holds the secret ~/.config/ratchet"),
    ] {
        let e = refused(path);
        assert_eq!(code_of(&e), "RAILS_UNWRITABLE_PATH", "{path}: {e}");
        assert!(e.to_string().contains(says), "{path}: {e}");
        assert!(e.to_string().starts_with("config/rails.toml:4: [sandbox] writable"), "{e}");
    }
}

#[test]
fn writable_paths_are_checked_against_the_workspace_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let user = dir.path().join("user");
    for d in [".git/hooks", "config", "logs", ".ratchet"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::create_dir_all(user.join(".cache")).unwrap();
    // A link that leads into .git is seen for what it is.
    std::os::unix::fs::symlink(root.join(".git"), dir.path().join("innocent")).unwrap();
    let place = Place { home_rel: String::new(), root: Some(root.clone()), user_home: Some(user.clone()) };
    let with = |path: &std::path::Path| {
        parse_in(&format!("{BASE}[sandbox]\nwritable = [{:?}]\n", path.display().to_string()), &place)
    };
    for (path, says) in [
        (root.join(".git"), "lies in the repository's .git"),
        (root.join(".git/hooks"), "lies in the repository's .git"),
        (root.clone(), "holds the repository's .git"),
        (dir.path().to_path_buf(), "holds"),
        (root.join("config/x"), "lies in the workspace's config/"),
        (root.join("logs"), "lies in the workspace's logs/"),
        (root.join(".ratchet"), "lies in the workspace's .ratchet/"),
        (dir.path().join("innocent/hooks"), "lies in the repository's .git"),
        (user.clone(), "holds your home directory"),
        (user.join(".ssh"), "lies in the secret ~/.ssh"),
    ] {
        let e = with(&path).unwrap_err();
        assert_eq!(code_of(&e), "RAILS_UNWRITABLE_PATH", "{}: {e}", path.display());
        assert!(e.to_string().contains(says), "{}: {e}", path.display());
    }
    assert!(with(&user.join(".cache/pip")).is_ok());
    assert!(with(&root.join("target")).is_ok(), "the tree itself is writable anyway");
    // A sub-folder home moves the protected directories with it.
    let sub = Place { home_rel: "ratchet".into(), ..place.clone() };
    let text = format!("{BASE}[sandbox]\nwritable = [{:?}]\n", root.join("ratchet/golden").display().to_string());
    assert!(parse_in(&text, &sub).unwrap_err().to_string().contains("the workspace's golden/"));
}

#[test]
fn checks_env_names_are_checked_and_secrets_never_reach_the_checks() {
    let rails = parse(&format!("{BASE}[checks]\nnetwork = true\nenv = [\"CARGO_HOME\", \"LANGUAGE\"]\n"), "").unwrap();
    assert!(rails.checks.network);
    assert_eq!(rails.checks.env, ["CARGO_HOME", "LANGUAGE"]);
    let e = err(&format!("{BASE}[checks]\nenv = [\"1BAD\"]\n"));
    assert!(e.to_string().contains("\"1BAD\" is not an environment variable name"), "{e}");
    let e = err(&format!("{BASE}[checks]\nenv = [\"PATH\", \"GITHUB_TOKEN\"]\n"));
    assert_eq!(code_of(&e), "RAILS_SECRET_TO_CHECKS");
    assert_eq!(
        e.to_string(),
        "config/rails.toml:4: [checks] env passes \"GITHUB_TOKEN\", which looks like a secret, to the checks"
    );
    assert!(crate::error::Coded::hint(&e).unwrap().contains("secrets never reach the checks"));
    assert!(e.snippet().unwrap().contains("^^^^^^^^^^^^^^ looks like a secret"), "{}", e.snippet().unwrap());
}

#[test]
fn command_providers_take_network_and_env_with_secrets_and_other_kinds_do_not() {
    let text = format!(
        "{BASE}[providers.claude]\nkind = \"command\"\ncommand = [\"claude\"]\nnetwork = true\nenv = [\"ANTHROPIC_API_KEY\"]\n"
    );
    let rails = parse(&text, "").unwrap();
    assert_eq!(
        rails.providers["claude"].kind,
        ProviderKind::Command { argv: vec!["claude".into()], network: true, env: vec!["ANTHROPIC_API_KEY".into()] }
    );
    for kind in ["human", "heartbeat"] {
        let e = err(&format!("{BASE}[providers.p]\nkind = \"{kind}\"\nnetwork = true\n"));
        assert!(e.to_string().contains(&format!("key `network` does not apply to kind \"{kind}\"")), "{e}");
    }
    let e = err(&format!("{BASE}[providers.p]\nkind = \"command\"\ncommand = [\"x\"]\nenv = [\"A-B\"]\n"));
    assert!(e.to_string().contains("is not an environment variable name"), "{e}");
}

#[test]
fn a_provider_s_starting_tier_must_name_a_tier_and_is_granted() {
    let tiers = "[[trust.tiers]]\nname = \"docs\"\npaths = [\"docs/**\"]\n[[trust.tiers]]\nname = \"code\"\npaths = [\"src/**\"]\n";
    let rails = parse(
        &format!("{BASE}{tiers}[providers.a]\nkind = \"command\"\ncommand = [\"x\"]\ntier = \"code\"\n[providers.h]\nkind = \"human\"\n[providers.o]\nkind = \"ollama\"\nmodel = \"m\"\ntier = \"docs\"\n"),
        "",
    )
    .unwrap();
    assert_eq!(rails.providers["a"].tier, Some(1));
    assert_eq!(rails.trust.floor("a"), 1);
    assert_eq!(rails.trust.floor("h"), 1, "the human kind is granted the top tier");
    assert_eq!(rails.trust.floor("o"), 0);
    assert_eq!(rails.trust.floor("unknown"), 0);
    let e = err(&format!("{BASE}{tiers}[providers.a]\nkind = \"human\"\ntier = \"tests\"\n"));
    assert_eq!(e.to_string(), "config/rails.toml:11: provider \"a\": tier \"tests\" names no [[trust.tiers]] entry");
    assert_eq!(crate::error::Coded::hint(&e).unwrap(), "use one of: docs, code");
    let e = err(&format!("{BASE}[providers.a]\nkind = \"human\"\ntier = \"docs\"\n"));
    assert!(crate::error::Coded::hint(&e).unwrap().contains("define [[trust.tiers]] first"), "{e}");
}

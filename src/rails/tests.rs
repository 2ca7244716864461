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

use crate::support::workspace::{Setup, Ws, append, code, json, stderr, stdout};

const REORDERING_WEIGHTS: &str =
    "ci_pass = 0.05\npath_ok = 0.15\ndiff_ratio = 0.40\natomic_ok = 0.10\nleft_next_steps = 0.10\nhuman_score = 0.20\n";

fn with_weights(ws: &Ws, weights: &str) {
    let text = ws.read("config/rails.toml");
    let start = text.find("ci_pass = 0.30").unwrap();
    let end = text.find("revert_window_hours").unwrap();
    ws.write("config/rails.toml", &format!("{}{}{}", &text[..start], weights, &text[end..]));
}

#[test]
fn editing_any_protected_file_makes_check_exit_4_naming_it() {
    let ws = Ws::init();
    for rel in ["config/rails.toml", "intents/CURRENT", "intents/bootstrap.md", "golden/starter.json"] {
        let before = ws.read(rel);
        ws.write(rel, &format!("{before} "));
        let out = ws.run(&["rails", "check"]);
        assert_eq!(code(&out), 4, "{rel}");
        assert!(stdout(&out).contains(&format!("changed  {rel}")), "{rel}: {}", stdout(&out));
        assert!(stderr(&out).contains(&format!("changed {rel} [RAILS_TAMPERED]")), "{}", stderr(&out));
        ws.write(rel, &before);
        assert_eq!(code(&ws.run(&["rails", "check"])), 0, "{rel} restored");
    }
    // Added and removed files are named too, CODEOWNERS included.
    ws.write("golden/new.json", "{}");
    ws.write("CODEOWNERS", "* @alice\n");
    std::fs::remove_file(ws.path("intents/bootstrap.md")).unwrap();
    let out = ws.run(&["rails", "check"]);
    assert_eq!(code(&out), 4);
    insta::assert_snapshot!(stdout(&out), @r"
    added    CODEOWNERS
    added    golden/new.json
    removed  intents/bootstrap.md
    ");
    insta::assert_snapshot!(stderr(&out), @r"
    error: rails tampered: added CODEOWNERS, added golden/new.json, removed intents/bootstrap.md [RAILS_TAMPERED]
    hint: review with `ratchet rails diff`, then `ratchet rails accept` at a terminal, or undo the edit
    ");
    let j = json(&ws.run(&["--json", "rails", "check"]));
    assert_eq!(j["code"], "RAILS_TAMPERED");
    assert_eq!(j["details"]["changes"].as_array().unwrap().len(), 3);
}

#[test]
fn a_symlink_swapped_in_for_a_protected_file_is_tampering() {
    let ws = Ws::init();
    std::fs::remove_file(ws.path("golden/starter.json")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", ws.path("golden/starter.json")).unwrap();
    let out = ws.run(&["rails", "check"]);
    assert_eq!(code(&out), 4);
    assert!(stdout(&out).contains("changed  golden/starter.json"));
}

#[test]
fn a_clean_check_says_so() {
    let ws = Ws::init();
    let out = ws.run(&["rails", "check"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).starts_with("rails ok: version "), "{}", stdout(&out));
    let j = json(&ws.run(&["--json", "rails", "check"]));
    assert_eq!(j["ok"], true);
}

#[test]
fn diff_shows_the_change_from_the_accepted_copy_without_git_history() {
    // Nothing is committed: the diff comes from .ratchet/accepted.
    let ws = Ws::new();
    assert_eq!(code(&ws.run(&["init"])), 0);
    let text = ws.read("config/rails.toml").replace("max_lines = 120", "max_lines = 200");
    ws.write("config/rails.toml", &text);
    let out = ws.run(&["rails", "diff"]);
    assert_eq!(code(&out), 0);
    let diff = stdout(&out);
    assert!(diff.contains("--- a/config/rails.toml\n+++ b/config/rails.toml"), "{diff}");
    assert!(diff.contains("\n-max_lines = 120") && diff.contains("\n+max_lines = 200"), "{diff}");
    // With the accepted copies gone, the committed version is used instead.
    let ws = Ws::init();
    std::fs::remove_dir_all(ws.path(".ratchet/accepted")).unwrap();
    ws.write("config/rails.toml", &ws.read("config/rails.toml").replace("explore = 0.1", "explore = 0.3"));
    let diff = stdout(&ws.run(&["rails", "diff"]));
    assert!(diff.contains("-explore = 0.1") && diff.contains("+explore = 0.3"), "{diff}");
}

#[test]
fn accept_refuses_without_a_terminal_and_changes_nothing() {
    let ws = Ws::init();
    ws.write("golden/extra.json", &ws.read("golden/starter.json"));
    let lock = ws.read("config/rails.lock");
    let out = ws.run(&["rails", "accept"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("[HUMAN_REQUIRED]"), "{}", stderr(&out));
    assert_eq!(ws.read("config/rails.lock"), lock);
    assert_eq!(code(&ws.run(&["rails", "check"])), 4);
}

#[test]
fn accept_at_a_terminal_writes_the_lock() {
    let ws = Ws::init();
    ws.write("config/rails.toml", &ws.read("config/rails.toml").replace("max_lines = 120", "max_lines = 100"));
    let mut p = ws.pty(&["rails", "accept"]);
    p.exp_string("-max_lines = 120").unwrap();
    p.exp_string("Accept these rails as alice@example.com? [y/N]").unwrap();
    p.send_line("y").unwrap();
    p.exp_string("accepted rails version").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(code(&ws.run(&["rails", "check"])), 0);
}

#[test]
fn accept_answered_no_changes_nothing() {
    let ws = Ws::init();
    ws.write("golden/extra.json", &ws.read("golden/starter.json"));
    let lock = ws.read("config/rails.lock");
    let mut p = ws.pty(&["rails", "accept"]);
    p.exp_string("[y/N]").unwrap();
    p.send_line("n").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(ws.read("config/rails.lock"), lock);
}

#[test]
fn accept_refuses_a_non_owner_under_codeowners() {
    let ws = Ws::init();
    // Alice appoints herself owner of the rails, and accepts that.
    ws.write("CODEOWNERS", "/config/ alice@example.com\n/golden/ alice@example.com\n");
    let mut p = ws.pty(&["rails", "accept"]);
    p.exp_string("[y/N]").unwrap();
    p.send_line("y").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(code(&ws.run(&["rails", "check"])), 0);

    // Mallory edits the rails and tries to accept them.
    ws.git(&["config", "user.name", "Mallory"]);
    ws.git(&["config", "user.email", "mallory@example.com"]);
    ws.write("config/rails.toml", &ws.read("config/rails.toml").replace("max_lines = 120", "max_lines = 5000"));
    let lock = ws.read("config/rails.lock");
    let mut p = ws.pty(&["rails", "accept"]);
    p.exp_string(
        "mallory@example.com is not a code owner of config/rails.toml (owners: alice@example.com) [NOT_A_CODEOWNER]",
    )
    .unwrap();
    p.exp_eof().unwrap();
    assert_eq!(ws.read("config/rails.lock"), lock);

    // Nor can Mallory appoint herself by editing CODEOWNERS in the same change.
    ws.write("CODEOWNERS", "* mallory@example.com\n");
    let mut p = ws.pty(&["rails", "accept"]);
    p.exp_string("[NOT_A_CODEOWNER]").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(ws.read("config/rails.lock"), lock);
}

#[test]
fn accept_refuses_when_the_golden_order_flips() {
    let ws = Ws::init();
    with_weights(&ws, REORDERING_WEIGHTS);
    let out = ws.run(&["golden", "check"]);
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).contains("flipped: "), "{}", stdout(&out));
    let lock = ws.read("config/rails.lock");
    let mut p = ws.pty(&["rails", "accept"]);
    p.exp_string("the golden backtest no longer keeps its order").unwrap();
    p.exp_string("[GOLDEN_FAILED]").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(ws.read("config/rails.lock"), lock);
}

#[test]
fn unknown_keys_and_bad_weights_are_clear_errors_with_lines() {
    let ws = Ws::init();
    let text = ws.read("config/rails.toml");
    ws.write("config/rails.toml", &text.replace("max_lines = 120", "max_line = 120"));
    let out = ws.run(&["golden", "check"]);
    assert_eq!(code(&out), 1);
    insta::assert_snapshot!(stderr(&out), @r"
    error: config/rails.toml:18: unknown key `max_line` in [budget] [RAILS_UNKNOWN_KEY]
      --> config/rails.toml:18:1
       |
    18 | max_line = 120                 # lines added + removed in one patch
       | ^^^^^^^^ unknown key
    hint: did you mean `max_lines`?
    hint: or undo the edit: `git checkout -- config/rails.toml` restores the committed rails
    ");
    with_weights(
        &ws,
        "ci_pass = 0.5\npath_ok = 0.15\ndiff_ratio = 0.15\natomic_ok = 0.10\nleft_next_steps = 0.10\nhuman_score = 0.20\n",
    );
    ws.write("config/rails.toml", &ws.read("config/rails.toml").replace("max_line = 120", "max_lines = 120"));
    let out = ws.run(&["golden", "check"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("config/rails.toml:22: [utility] weights sum to 1.2, not 1.0 [RAILS_INVALID]"),
        "{}",
        stderr(&out)
    );
    // Invalid rails can never be accepted.
    let mut p = ws.pty(&["rails", "accept"]);
    p.exp_string("[RAILS_INVALID]").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn intent_set_is_a_human_act_unless_yes() {
    let ws = Ws::init();
    let out = ws.run_with_stdin(&["intent", "set", "docs"], "Document every command.\n");
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("[HUMAN_REQUIRED]") && stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert_eq!(ws.read("intents/CURRENT"), "bootstrap\n");

    let out = ws.run_with_stdin(&["--json", "intent", "set", "docs", "--yes"], "Document every command.\n");
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let j = json(&out);
    assert_eq!(j["name"], "docs");
    assert_eq!(j["hash"], blake3::hash(b"Document every command.\n").to_hex().as_str());
    assert_eq!(ws.read("intents/CURRENT"), "docs\n");
    // The lock follows, so the rails still check.
    assert_eq!(code(&ws.run(&["rails", "check"])), 0);
    let show = json(&ws.run(&["--json", "intent", "show"]));
    assert_eq!(show["name"], "docs");
    assert_eq!(show["text"], "Document every command.\n");
}

#[test]
fn intent_set_at_a_terminal_from_a_file_asks_first() {
    let ws = Ws::init();
    ws.write("new-intent.md", "Make the tests faster.\n");
    let mut p = ws.pty(&["intent", "set", "speed", "--file", "new-intent.md"]);
    p.exp_string("+Make the tests faster.").unwrap();
    p.exp_string("Make speed the current intent? [y/N]").unwrap();
    p.send_line("y").unwrap();
    p.exp_string("intent speed is current").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(ws.read("intents/CURRENT"), "speed\n");
    assert_eq!(code(&ws.run(&["rails", "check"])), 0);
}

#[test]
fn intent_set_refuses_to_launder_other_rail_changes() {
    let ws = Ws::init();
    ws.write("golden/sneaky.json", "{}");
    let out = ws.run_with_stdin(&["intent", "set", "docs", "--yes"], "text\n");
    assert_eq!(code(&out), 4);
    assert!(stderr(&out).contains("[RAILS_TAMPERED]"));
    assert_eq!(ws.read("intents/CURRENT"), "bootstrap\n");
}

#[test]
fn intent_names_are_checked() {
    let ws = Ws::init();
    let out = ws.run_with_stdin(&["intent", "set", "../escape", "--yes"], "text\n");
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("[INTENT_INVALID]"), "{}", stderr(&out));
}

#[test]
fn golden_check_prints_the_table_and_tau() {
    let ws = Ws::init();
    let out = ws.run(&["golden", "check"]);
    assert_eq!(code(&out), 0);
    insta::assert_snapshot!(stdout(&out), @r"
    golden/proposals.json  tau 1.000 over 3 pairs
      expected  now  utility  case
             1    1   0.9975  small-docs-append
             2    2   0.2500  replace-whose-old-text-is-gone
             3    3   0.0000  patch-to-the-rails
    golden/starter.json  tau 1.000 over 20 pairs
      expected  now  utility  case
             1    1   0.9850  merged-small-approved
             2    2   0.7850  merged-medium-no-next-steps
             3    3   0.7500  merged-full-budget-lukewarm
             4    4   0.4925  failed-checks-small
             4    5   0.4700  rejected-by-human
             5    6   0.3350  rejected-path
             6    7   0.1500  over-budget-no-next-steps
    ");
    let j = json(&ws.run(&["--json", "golden", "check"]));
    assert_eq!(j["ok"], true);
    assert_eq!(j["files"][0]["tau"], 1.0);
}

#[test]
fn sandbox_keys_are_checked_with_their_lines() {
    let ws = Ws::init();
    let text = ws.read("config/rails.toml");
    let git_dir = format!("writable = [{:?}]", ws.path(".git/hooks").display().to_string());
    let cases: [(&str, &str, &str); 5] = [
        ("mode = \"on\"", "mode = \"maybe\"", "[RAILS_INVALID]"),
        ("writable = []", "writable = [\"cache\"]", "[RAILS_INVALID]"),
        ("writable = []", &git_dir, "[RAILS_UNWRITABLE_PATH]"),
        (
            "env = []                        # more",
            "env = [\"AWS_SECRET_ACCESS_KEY\"] # more",
            "[RAILS_SECRET_TO_CHECKS]",
        ),
        ("env = []                           # variables", "env = [\"NOT A NAME\"] # variables", "[RAILS_INVALID]"),
    ];
    for (from, to, says) in cases {
        assert!(text.contains(from), "the template has {from:?}");
        ws.write("config/rails.toml", &text.replacen(from, to, 1));
        let out = ws.run(&["golden", "check"]);
        assert_eq!(code(&out), 1, "{to}");
        let err = stderr(&out);
        assert!(err.contains(says) && err.contains("hint:"), "{to}: {err}");
        let line = text[..text.find(from).unwrap()].lines().count() + 1;
        assert!(err.contains(&format!("config/rails.toml:{line}:")), "{to} names its line {line}: {err}");
    }
    ws.write("config/rails.toml", &text);
    assert_eq!(code(&ws.run(&["golden", "check"])), 0);
}

/// The rails text with `old` replaced by `new` (which must be there).
fn edited(ws: &Ws, old: &str, new: &str) {
    let text = ws.read("config/rails.toml");
    assert!(text.contains(old), "{old:?} is not in the rails");
    ws.write("config/rails.toml", &text.replacen(old, new, 1));
}

#[test]
fn a_hand_edit_that_does_not_parse_is_reported_by_every_command_with_its_line() {
    let ws = Ws::looped(Setup::default());
    edited(&ws, "max_lines = 120", "max_line = 120");
    let line = ws.read("config/rails.toml").lines().position(|l| l.starts_with("max_line =")).unwrap() + 1;
    let expect = format!("config/rails.toml:{line}: unknown key `max_line` in [budget] [RAILS_UNKNOWN_KEY]");
    let mark = format!("{line} | max_line = 120");
    for args in [
        &["rails", "check"][..],
        &["step"],
        &["step", "--provider", "heartbeat"],
        &["heartbeat"],
        &["status"],
        &["context"],
        &["revert", "s1"],
        &["golden", "check"],
        &["patch", "check", "/dev/null"],
    ] {
        let out = ws.run(args);
        let err = stderr(&out);
        assert_eq!(code(&out), 1, "{args:?}: {err}");
        assert!(err.contains(&expect), "{args:?}: {err}");
        assert!(err.contains(&mark) && err.contains("^^^^^^^^ unknown key"), "{args:?}: {err}");
        assert!(err.contains("hint: did you mean `max_lines`?"), "{args:?}: {err}");
        assert!(err.contains("`git checkout -- config/rails.toml`"), "{args:?}: {err}");
        assert!(!err.contains("RAILS_TAMPERED"), "{args:?}: the parse error is shown as itself: {err}");
    }
    // `rails check` still names what changed, on stdout.
    assert!(stdout(&ws.run(&["rails", "check"])).contains("changed  config/rails.toml"));
    // The commands that need a terminal report it there.
    for args in [&["approve", "s1"][..], &["review"]] {
        let mut p = ws.pty(args);
        p.exp_string(&expect).unwrap();
        p.exp_string("did you mean `max_lines`?").unwrap();
        p.exp_eof().unwrap();
    }
    // With --json, the snippet and both next actions are in the error.
    let j = json(&ws.run(&["--json", "step"]));
    assert_eq!(j["code"], "RAILS_UNKNOWN_KEY");
    assert_eq!(j["nextAction"], "did you mean `max_lines`?");
    assert!(j["snippet"].as_str().unwrap().contains(&mark), "{j}");
    assert_eq!(j["hints"].as_array().unwrap().len(), 2);
    // Nothing ran: the log holds no step, and the tree is as it was.
    assert!(ws.entries().iter().all(|e| e["kind"] != "step"));
    // Undone as the hint says, the loop runs again.
    ws.git(&["checkout", "--", "config/rails.toml"]);
    assert_eq!(code(&ws.run(&["rails", "check"])), 0);
    assert_eq!(code(&ws.run(&["step", "--provider", "heartbeat"])), 0);
}

#[test]
fn a_syntax_error_and_a_broken_rule_are_shown_with_their_line_and_mark() {
    let ws = Ws::looped(Setup::default());
    edited(&ws, "max_lines = 120", "max_lines 120");
    let out = ws.run(&["step"]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(err.contains("config/rails.toml:18: ") && err.contains("[RAILS_INVALID]"), "{err}");
    assert!(err.contains("--> config/rails.toml:18:11") && err.contains("18 | max_lines 120"), "{err}");
    assert!(err.contains("hint: fix the TOML syntax at that line"), "{err}");
    ws.git(&["checkout", "--", "config/rails.toml"]);
    edited(&ws, "human = true", "human = false");
    let out = ws.run(&["heartbeat"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    assert!(err.contains("[gate] human = false would let patches merge without a human [RAILS_INVALID]"), "{err}");
    assert!(err.contains("| human = false") && err.contains("^^^^^ here"), "{err}");
    // A control character in the edit reaches the terminal escaped.
    ws.git(&["checkout", "--", "config/rails.toml"]);
    edited(&ws, "max_lines = 120", "max_lines = \"\x1b[2J\"");
    let err = stderr(&ws.run(&["status"]));
    assert!(!err.contains('\x1b') && err.contains("\\e[2J"), "{err}");
}

/// A loop workspace whose `self` provider is granted `tier`, if any.
fn granted(tier: Option<&'static str>) -> Ws {
    let edit: fn(String) -> String = match tier {
        None => |r| r,
        Some("code") => |r| r.replace("# tier = \"docs\"", "tier = \"code\""),
        Some(_) => unreachable!(),
    };
    Ws::looped(Setup { rails_edit: Some(edit), ..Setup::default() })
}

#[test]
fn a_starting_tier_in_the_rails_lets_a_code_patch_through_gate_1_on_the_first_step() {
    let code_patch = append("src/lib.rs", "// more\n");
    // Without a grant, the first step's code patch is tier-locked.
    let ws = granted(None);
    ws.answer(1, &code_patch);
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(r["outcome"], "rejected", "{r}");
    assert!(ws.last()["detail"].as_str().unwrap().starts_with("TIER_LOCKED"), "{r}");
    // With `tier = "code"`, the same patch passes Gate 1 and waits for a human.
    let ws = granted(Some("code"));
    let init = ws.entries().into_iter().find(|e| e["kind"] == "rails").unwrap();
    assert_eq!(init["granted_tiers"]["self"], "code", "the grant is logged with the rails: {init}");
    let status = json(&ws.run(&["--json", "status"]));
    let me = status["providers"].as_array().unwrap().iter().find(|p| p["name"] == "self").unwrap().clone();
    assert_eq!((me["tier"].as_str(), me["tier_set"].as_str()), (Some("code"), Some("set in rails")), "{me}");
    assert!(stdout(&ws.run(&["status"])).contains("self is at tier code: set in rails"));
    ws.answer(1, &code_patch);
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(r["outcome"], "pending", "{r}");
    let step = ws.last();
    assert!(step["gate1"].to_string().contains("rule:tier"), "{step}");
    assert!(!step.to_string().contains("TIER_LOCKED"), "{step}");
    // The context tells the provider its tier.
    let c = json(&ws.run(&["--json", "context", "--provider", "self"]));
    assert_eq!(c["rails"]["tier"], "code");
}

#[test]
fn a_grant_must_name_a_tier_and_is_accepted_like_any_rails_change() {
    let ws = granted(None);
    edited(&ws, "# tier = \"docs\"", "tier = \"kode\"");
    let out = ws.run(&["rails", "check"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    assert!(err.contains("provider \"self\": tier \"kode\" names no [[trust.tiers]] entry [RAILS_INVALID]"), "{err}");
    assert!(err.contains("hint: use one of: docs, tests, code"), "{err}");
    // A valid grant is a rails change like any other: tampered until accepted.
    ws.git(&["checkout", "--", "config/rails.toml"]);
    edited(&ws, "# tier = \"docs\"", "tier = \"code\"");
    let out = ws.run(&["step", "--provider", "self"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let mut p = ws.pty(&["rails", "accept"]);
    p.exp_string("+tier = \"code\"").unwrap();
    p.exp_string("Accept these rails").unwrap();
    p.send_line("y").unwrap();
    p.exp_eof().unwrap();
    let accepted = ws.last();
    assert_eq!(accepted["kind"], "rails");
    assert_eq!(accepted["granted_tiers"]["self"], "code", "{accepted}");
}

#[test]
fn the_human_at_the_terminal_is_not_tier_locked() {
    let ws = Ws::looped(Setup::default());
    ws.write("../code.json", &append("src/lib.rs", "// by hand\n"));
    let r = json(&ws.run(&["--json", "step", "--provider", "human", "--patch", "../code.json"]));
    assert_eq!(r["outcome"], "pending", "{r}");
    assert!(!ws.last().to_string().contains("TIER_LOCKED"));
    // The same patch from a command provider in the first tier is refused.
    ws.answer(1, &append("src/lib.rs", "// by the agent\n"));
    let r = json(&ws.run(&["--json", "step", "--provider", "self"]));
    assert_eq!(r["outcome"], "rejected", "{r}");
    let status = json(&ws.run(&["--json", "status"]));
    let human = status["providers"].as_array().unwrap().iter().find(|p| p["name"] == "human").unwrap().clone();
    assert_eq!(human["tier"], "code", "{human}");
    assert!(human["tier_set"].as_str().unwrap().contains("Gate 2"), "{human}");
}

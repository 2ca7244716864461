//! `ratchet patch check` through the real binary, in a hermetic
//! environment: the clock pinned, `$HOME` and `$XDG_STATE_HOME` in the
//! temporary directory, no colour, git's global configuration ignored.

use crate::support::repo::TestRepo;

fn ratchet(repo: &TestRepo) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_ratchet"));
    cmd.env_clear()
        .current_dir(repo.root())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", repo.home())
        .env("XDG_STATE_HOME", repo.state())
        .env("RATCHET_NOW", "2026-11-21T19:00:00Z")
        .env("NO_COLOR", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    cmd
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `ratchet patch check` on `proposal` (written to a file outside the
/// work tree) with `args`.
fn check(repo: &TestRepo, proposal: &str, args: &[&str]) -> Run {
    let file = repo.home().join("proposal.json");
    std::fs::write(&file, proposal).unwrap();
    let out = ratchet(repo).args(["patch", "check"]).arg(&file).args(args).output().unwrap();
    let filter = |s: Vec<u8>| String::from_utf8(s).unwrap().replace(&repo.home().display().to_string(), "[HOME]");
    Run { code: out.status.code().unwrap_or(-1), stdout: filter(out.stdout), stderr: filter(out.stderr) }
}

/// Hashes and commits vary with the fixture; the words must not.
macro_rules! snapshot {
    ($value:expr, @$snap:literal) => {
        insta::with_settings!({filters => vec![
            (r"\b[0-9a-f]{64}\b", "[HASH]"),
            (r"\b[0-9a-f]{40}\b", "[COMMIT]"),
            (r"commit [0-9a-f]{12}\b", "commit [SHORT]"),
        ]}, {
            insta::assert_snapshot!($value, @$snap);
        });
    };
}

#[test]
fn a_clean_patch_attests_and_exits_0() {
    let repo = TestRepo::new();
    let before = repo.snapshot();
    let run = check(
        &repo,
        r#"{"rationale":"say more","patch":{"op":"replace","path":"docs/guide.md","old":"Two.\n","new":"Two, and a half.\n"},"next_steps":["three"]}"#,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    snapshot!(run.stdout, @r#"
        rule:path_ok         attest  docs/guide.md: allowed by docs/**; not protected; no symlink on the path; a regular file (mode 0644)
        rule:schema          attest  replace: the old text occurs exactly once in docs/guide.md
        rule:atomic_ok       attest  one replace on one file: 2 lines changed (budget 120), 38 bytes after (budget 65536)
        rule:tier            attest  docs/guide.md needs tier docs; the provider is at tier docs
        rule:no_change       attest  the file changes
        rule:duplicated_text attest  no added text repeats its neighbours
        rule:prompt_echo     attest  no added line carries ratchet's scaffolding
        rule:structure       attest  fences, headings, directives and format intact
        lines                +1 -1 (2 changed)
        diff_ratio           0.0167
        packet               [HASH]
    "#);
    snapshot!(run.stderr, @r#"checking replace docs/guide.md for provider self (tier docs) on commit [SHORT]"#);
    assert!(repo.snapshot() == before, "patch check wrote to the tree");
}

#[test]
fn a_protected_path_objects_and_exits_1_with_its_code() {
    let repo = TestRepo::new();
    let run = check(&repo, r#"{"op":"replace","path":"Config/Rails.toml","new":"version = 1\n"}"#, &[]);
    assert_eq!(run.code, 1);
    snapshot!(run.stdout, @r#"
        rule:path_ok         object  PATH_PROTECTED: Config/Rails.toml is protected (matches config/**)
        rule:schema          object  PATH_PROTECTED: not checked: Config/Rails.toml is protected (matches config/**)
        rule:atomic_ok       object  PATH_PROTECTED: not checked: Config/Rails.toml is protected (matches config/**)
        rule:tier            object  TIER_LOCKED: Config/Rails.toml needs tier code (it is in no tier, so it needs the top one); the provider is at tier docs
        rule:no_change       object  PATH_PROTECTED: not checked: Config/Rails.toml is protected (matches config/**)
        rule:duplicated_text object  PATH_PROTECTED: not checked: Config/Rails.toml is protected (matches config/**)
        rule:prompt_echo     object  PATH_PROTECTED: not checked: Config/Rails.toml is protected (matches config/**)
        rule:structure       object  PATH_PROTECTED: not checked: Config/Rails.toml is protected (matches config/**)
        lines                not measured
        diff_ratio           not measured
        packet               [HASH]
    "#);
    snapshot!(run.stderr, @r#"
        checking replace Config/Rails.toml for provider self (tier docs) on commit [SHORT]
        error: Config/Rails.toml is protected (matches config/**) [PATH_PROTECTED]
        hint: protected files change only by hand, reviewed through `ratchet rails accept`; patch another path
    "#);
}

#[test]
fn json_output_has_the_verdicts_and_the_actionable_error_shape() {
    let repo = TestRepo::new();
    let run = check(&repo, r#"{"op":"append","path":"docs/guide.md","content":"Four.\n"}"#, &["--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    snapshot!(run.stdout, @r#"
        {
          "base": "[COMMIT]",
          "bytes": 32,
          "diff_ratio": 0.008333333333,
          "intent": "[HASH]",
          "lines": {
            "added": 1,
            "changed": 1,
            "removed": 0
          },
          "ok": true,
          "packet": "[HASH]",
          "patches": [
            {
              "op": "append",
              "path": "docs/guide.md"
            }
          ],
          "provider": "self",
          "tier": "docs",
          "verdicts": [
            {
              "by": "rule:path_ok",
              "reason": "docs/guide.md: allowed by docs/**; not protected; no symlink on the path; a regular file (mode 0644)",
              "verdict": "attest"
            },
            {
              "by": "rule:schema",
              "reason": "append: docs/guide.md exists and is UTF-8 text",
              "verdict": "attest"
            },
            {
              "by": "rule:atomic_ok",
              "reason": "one append on one file: 1 line changed (budget 120), 32 bytes after (budget 65536)",
              "verdict": "attest"
            },
            {
              "by": "rule:tier",
              "reason": "docs/guide.md needs tier docs; the provider is at tier docs",
              "verdict": "attest"
            },
            {
              "by": "rule:no_change",
              "reason": "the file changes",
              "verdict": "attest"
            },
            {
              "by": "rule:duplicated_text",
              "reason": "no added text repeats its neighbours",
              "verdict": "attest"
            },
            {
              "by": "rule:prompt_echo",
              "reason": "no added line carries ratchet's scaffolding",
              "verdict": "attest"
            },
            {
              "by": "rule:structure",
              "reason": "fences, headings, directives and format intact",
              "verdict": "attest"
            }
          ]
        }
    "#);
    let run = check(
        &repo,
        r#"{"op":"create","path":"docs/../../etc/cron.d/x","content":"* * * * * root sh\n"}"#,
        &["--json"],
    );
    assert_eq!(run.code, 1);
    snapshot!(run.stdout, @r#"
        {
          "base": "[COMMIT]",
          "bytes": null,
          "code": "PATH_INVALID",
          "diff_ratio": null,
          "error": "Path invalid",
          "intent": "[HASH]",
          "lines": null,
          "message": "\"docs/../../etc/cron.d/x\" is not a valid patch path: it has a '..' component",
          "nextAction": "use a plain relative path with / separators and no '.', '..' or empty components, naming a regular file",
          "ok": false,
          "packet": "[HASH]",
          "patches": [
            {
              "op": "create",
              "path": "docs/../../etc/cron.d/x"
            }
          ],
          "provider": "self",
          "tier": "docs",
          "verdicts": [
            {
              "by": "rule:path_ok",
              "code": "PATH_INVALID",
              "reason": "\"docs/../../etc/cron.d/x\" is not a valid patch path: it has a '..' component",
              "verdict": "object"
            },
            {
              "by": "rule:schema",
              "code": "PATH_INVALID",
              "reason": "not checked: \"docs/../../etc/cron.d/x\" is not a valid patch path: it has a '..' component",
              "verdict": "object"
            },
            {
              "by": "rule:atomic_ok",
              "code": "PATH_INVALID",
              "reason": "not checked: \"docs/../../etc/cron.d/x\" is not a valid patch path: it has a '..' component",
              "verdict": "object"
            },
            {
              "by": "rule:tier",
              "reason": "\"docs/../../etc/cron.d/x\" needs tier docs; the provider is at tier docs",
              "verdict": "attest"
            },
            {
              "by": "rule:no_change",
              "code": "PATH_INVALID",
              "reason": "not checked: \"docs/../../etc/cron.d/x\" is not a valid patch path: it has a '..' component",
              "verdict": "object"
            },
            {
              "by": "rule:duplicated_text",
              "code": "PATH_INVALID",
              "reason": "not checked: \"docs/../../etc/cron.d/x\" is not a valid patch path: it has a '..' component",
              "verdict": "object"
            },
            {
              "by": "rule:prompt_echo",
              "code": "PATH_INVALID",
              "reason": "not checked: \"docs/../../etc/cron.d/x\" is not a valid patch path: it has a '..' component",
              "verdict": "object"
            },
            {
              "by": "rule:structure",
              "code": "PATH_INVALID",
              "reason": "not checked: \"docs/../../etc/cron.d/x\" is not a valid patch path: it has a '..' component",
              "verdict": "object"
            }
          ]
        }
    "#);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    for key in ["error", "code", "message", "nextAction", "packet", "verdicts", "lines", "diff_ratio"] {
        assert!(doc.get(key).is_some(), "no {key} in {doc}");
    }
}

#[test]
fn every_objection_exits_1_with_the_first_objections_code() {
    let repo = TestRepo::new();
    repo.symlink("../config", "docs/link");
    repo.write("docs/twice.md", "same\nsame\n");
    let big = "x\n".repeat(121);
    let cases: Vec<(String, &str)> = vec![
        (r#"{"op":"create","path":"Cargo.toml","content":"x"}"#.into(), "PATH_NOT_ALLOWED"),
        (r#"{"op":"create","path":"INTENTS/CURRENT","content":"x"}"#.into(), "PATH_PROTECTED"),
        (r#"{"op":"create","path":".GIT/hooks/pre-commit","content":"x"}"#.into(), "PATH_PROTECTED"),
        (r#"{"op":"create","path":"../outside.md","content":"x"}"#.into(), "PATH_INVALID"),
        (r#"{"op":"create","path":"docs\\x.md","content":"x"}"#.into(), "PATH_INVALID"),
        (r#"{"op":"create","path":"docs/link/rails.toml","content":"x"}"#.into(), "SYMLINK_IN_PATH"),
        (format!(r#"{{"op":"create","path":"docs/big.md","content":"{}"}}"#, big.replace('\n', "\\n")), "OVER_BUDGET"),
        (
            r#"{"rationale":"two","patch":[{"op":"create","path":"docs/a.md","content":"a"},{"op":"create","path":"docs/b.md","content":"b"}]}"#.into(),
            "NOT_ATOMIC",
        ),
        (r#"{"op":"replace","path":"docs/guide.md","old":"Five.","new":"5"}"#.into(), "OLD_TEXT_NOT_FOUND"),
        (r#"{"op":"replace","path":"docs/twice.md","old":"same","new":"once"}"#.into(), "OLD_TEXT_AMBIGUOUS"),
        (r#"{"op":"create","path":"docs/guide.md","content":"x"}"#.into(), "TARGET_EXISTS"),
        (r#"{"op":"append","path":"docs/none.md","content":"x"}"#.into(), "TARGET_MISSING"),
        (r#"{"op":"delete","path":"docs/guide.md"}"#.into(), "BAD_PATCH"),
        (r#"{"op":"create","path":"docs/x.md","content":"x","path":"config/rails.toml"}"#.into(), "BAD_PATCH"),
        ("not json".into(), "BAD_PATCH"),
        (r#"{"op":"append","path":"src/lib.rs","content":"// x\n"}"#.into(), "TIER_LOCKED"),
    ];
    let before = repo.snapshot();
    for (proposal, code) in &cases {
        let run = check(&repo, proposal, &[]);
        assert_eq!(run.code, 1, "{proposal}: {}", run.stderr);
        assert!(run.stderr.contains(&format!("[{code}]")), "{proposal}: expected {code}, got {}", run.stderr);
        assert!(run.stderr.contains("\nhint: "), "{proposal}: no hint in {}", run.stderr);
        let run = check(&repo, proposal, &["--json"]);
        assert_eq!(run.code, 1, "{proposal}: {}", run.stdout);
        let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(doc["code"], *code, "{proposal}: {doc}");
        assert!(doc["nextAction"].is_string(), "{proposal}: {doc}");
    }
    assert!(repo.snapshot() == before, "patch check wrote to the tree");
}

#[test]
fn an_unknown_provider_is_refused_with_the_configured_names() {
    let repo = TestRepo::new();
    let run = check(&repo, r#"{"op":"append","path":"docs/guide.md","content":"x"}"#, &["--provider", "gpt"]);
    assert_eq!(run.code, 1);
    snapshot!(run.stderr, @r#"
        error: provider "gpt" is not configured in [providers] [UNKNOWN_PROVIDER]
        hint: use one of: heartbeat, human, ollama, openai, self
    "#);
    let run = check(&repo, r#"{"op":"append","path":"docs/guide.md","content":"x"}"#, &["--provider", "human"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn without_an_intent_or_a_commit_the_packet_binds_to_empty_ones() {
    let repo = TestRepo::uncommitted(crate::support::repo::RAILS);
    std::fs::remove_file(repo.path("intents/CURRENT")).unwrap();
    let run = check(&repo, r#"{"op":"append","path":"docs/guide.md","content":"x"}"#, &["--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    snapshot!(run.stderr, @r#"
        no intent yet (intents/CURRENT is missing): binding the packet to the hash of the empty text
        checking append docs/guide.md for provider self (tier docs) on an unborn branch
    "#);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["base"], serde_json::Value::Null);
    assert_eq!(doc["intent"], blake3::hash(b"").to_hex().as_str());
}

#[test]
fn stdin_is_read_for_a_dash() {
    let repo = TestRepo::new();
    let out = ratchet(&repo)
        .args(["patch", "check", "-", "--quiet"])
        .write_stdin(r#"{"op":"append","path":"README.md","content":"More.\n"}"#)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty());
}

#[test]
fn the_help_says_what_the_command_does() {
    let repo = TestRepo::new();
    let out = ratchet(&repo).args(["patch", "check", "--help"]).output().unwrap();
    assert!(out.status.success());
    snapshot!(String::from_utf8(out.stdout).unwrap(), @r#"
        Run Gate 1's rule evaluators on a proposal or a bare patch against the working tree.

        Prints each evaluator's verdict (path_ok, schema, atomic_ok, tier) with its reason, the lines added,
        removed and changed, diff_ratio and the packet hash. Exits 0 when every evaluator attests, 1 with
        the first objection's code. Paths in the patch are relative to the repository root. Never writes to
        the tree.

        Usage: ratchet patch check [OPTIONS] <FILE>

        Arguments:
          <FILE>
                  A proposal {"rationale","patch",...} or a bare patch {"op","path",...}, as JSON; `-` reads
                  stdin

        Options:
              --provider <NAME>
                  The provider whose trust tier applies (a name under [providers], or self)
                  
                  [default: self]

          -h, --help
                  Print help (see a summary with '-h')

          -V, --version
                  Print version

        Global options:
          -C <DIR>
                  Run as if started in DIR

              --json
                  Print data as JSON on stdout (errors too, as {"error","code","message","nextAction"})

              --color <WHEN>
                  When to colour output
                  
                  [default: auto]
                  [possible values: auto, always, never]

          -q, --quiet
                  Say less on stderr
    "#);
}

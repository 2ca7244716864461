//! Path safety against real files, real symlinks and special files: a table
//! of hostile paths, and a property test over random paths.

use proptest::prelude::*;
use ratchet::error::Coded;
use ratchet::gate::{self, Gate1};
use ratchet::patch::{self, Patch};
use ratchet::propose::Proposal;
use ratchet::rails::{self, Rails};

use crate::support::repo::{RAILS, TestRepo, allow_all};

#[derive(Clone, Copy, Debug)]
enum Op {
    Create,
    Append,
    Replace,
}

fn patch(op: Op, path: &str) -> Patch {
    let path = path.to_string();
    match op {
        Op::Create => Patch::Create { path, content: "pwned\n".into() },
        Op::Append => Patch::Append { path, content: "pwned\n".into() },
        Op::Replace => Patch::Replace { path, old: None, new: "# pwned\n".into() },
    }
}

fn proposal(patch: Patch) -> Proposal {
    Proposal {
        rationale: "hostile".into(),
        patches: vec![patch],
        next_steps: Vec::new(),
        focus: None,
        evidence: Vec::new(),
    }
}

/// Gate 1 for one patch, at the top tier (so tiers never interfere).
fn gate(repo: &TestRepo, rails: &Rails, patch: &Patch) -> Gate1 {
    gate::evaluate(repo.root(), rails, 2, &proposal(patch.clone()), None, "intent")
}

/// The hostile tree: symlinks out of the repository and into the protected
/// set, special files, a nested repository, a hard link to a protected file.
fn hostile_repo() -> TestRepo {
    let repo = TestRepo::new();
    std::fs::create_dir(repo.path("docs/sub")).unwrap();
    std::fs::create_dir_all(repo.path("docs/nested/.git")).unwrap();
    std::fs::create_dir_all(repo.path("../outside/etc")).unwrap();
    repo.write("../outside/etc/passwd", "root:x:0:0\n");
    repo.write("golden/x.json", "{}\n");
    repo.write("logs/steps.jsonl", "");
    repo.write(".ratchet/keys", "secret\n");
    repo.write("CODEOWNERS", "* @owner\n");
    repo.symlink(repo.outside(), "docs/out"); // absolute, out of the repository
    repo.symlink("../../outside", "docs/up"); // relative, out of the repository
    repo.symlink("../config", "docs/link"); // into the protected set
    repo.symlink("../config/rails.toml", "docs/cfg.md"); // a symlink as the target file
    repo.symlink("guide.md", "docs/alias.md"); // even one that stays inside the allowlist
    repo.symlink("nowhere.md", "docs/dangling.md"); // create through a dangling link
    repo.symlink("../src", "docs/code"); // a symlinked dir to another allowed dir
    repo.mkfifo("docs/fifo.md");
    repo.socket("docs/sock.md");
    repo
}

/// `(path, op, code)`: each must be refused by `rule:path_ok` and by the
/// engine with this code.
fn hostile() -> Vec<(String, Op, &'static str)> {
    use Op::*;
    let overlong = format!("docs/{}x.md", "a/".repeat(2044));
    let mut rows: Vec<(String, Op, &'static str)> = vec![
        // Traversal, absolute, and the other lexical rules.
        ("../x", Create, "PATH_INVALID"),
        ("docs/../../x", Create, "PATH_INVALID"),
        ("docs/../README.md", Replace, "PATH_INVALID"),
        ("docs/./x.md", Create, "PATH_INVALID"),
        ("./docs/guide.md", Replace, "PATH_INVALID"),
        ("..", Create, "PATH_INVALID"),
        (".", Create, "PATH_INVALID"),
        ("/etc/passwd", Replace, "PATH_INVALID"),
        ("//etc/passwd", Replace, "PATH_INVALID"),
        ("docs\\x.md", Create, "PATH_INVALID"),
        ("docs\\..\\..\\x", Create, "PATH_INVALID"),
        ("docs/x\0.md", Create, "PATH_INVALID"),
        ("", Create, "PATH_INVALID"),
        ("docs/", Create, "PATH_INVALID"),
        ("docs/guide.md/", Replace, "PATH_INVALID"),
        ("docs//x.md", Create, "PATH_INVALID"),
        ("docs/x\n.md", Create, "PATH_INVALID"),
        ("docs/\u{202e}dm.exe", Create, "PATH_INVALID"),
        (".git\u{200c}/config", Replace, "PATH_INVALID"),
        // Protected files reached by `./`, `//` or a change of case.
        ("./config/rails.toml", Replace, "PATH_INVALID"),
        ("config//rails.toml", Replace, "PATH_INVALID"),
        ("config/./rails.toml", Replace, "PATH_INVALID"),
        ("docs/../config/rails.toml", Replace, "PATH_INVALID"),
        ("config/rails.toml", Replace, "PATH_PROTECTED"),
        ("Config/Rails.toml", Replace, "PATH_PROTECTED"),
        ("CONFIG/rails.lock", Create, "PATH_PROTECTED"),
        ("config/new.toml", Create, "PATH_PROTECTED"),
        ("INTENTS/CURRENT", Replace, "PATH_PROTECTED"),
        ("intents/main.md", Append, "PATH_PROTECTED"),
        ("golden/x.json", Replace, "PATH_PROTECTED"),
        ("Golden/y.json", Create, "PATH_PROTECTED"),
        ("logs/steps.jsonl", Append, "PATH_PROTECTED"),
        ("logs/pending/p.json", Create, "PATH_PROTECTED"),
        (".ratchet/keys", Replace, "PATH_PROTECTED"),
        (".RATCHET/checkpoint", Create, "PATH_PROTECTED"),
        ("CODEOWNERS", Replace, "PATH_PROTECTED"),
        ("codeowners", Create, "PATH_PROTECTED"),
        (".github/CODEOWNERS", Create, "PATH_PROTECTED"),
        ("docs/CODEOWNERS", Create, "PATH_PROTECTED"),
        (".gitmodules", Create, "PATH_PROTECTED"),
        // `.git` in any case, at any depth, and its aliases.
        (".git", Create, "PATH_PROTECTED"),
        (".git/config", Replace, "PATH_PROTECTED"),
        (".GIT/config", Replace, "PATH_PROTECTED"),
        (".Git/HEAD", Replace, "PATH_PROTECTED"),
        ("docs/.Git/hooks/x", Create, "PATH_PROTECTED"),
        ("src/.git/hooks/pre-commit", Create, "PATH_PROTECTED"),
        (".git/hooks/post-checkout", Create, "PATH_PROTECTED"),
        ("docs/.git./config", Create, "PATH_PROTECTED"),
        ("docs/GIT~1/config", Create, "PATH_PROTECTED"),
        // Outside the allowlist (which matches exactly: case counts, `*` stops at `/`).
        ("Cargo.toml", Create, "PATH_NOT_ALLOWED"),
        ("DOCS/guide.md", Replace, "PATH_NOT_ALLOWED"),
        ("Docs/new.md", Create, "PATH_NOT_ALLOWED"),
        ("notes/readme.md", Create, "PATH_NOT_ALLOWED"),
        ("scripts/agent.sh", Create, "PATH_NOT_ALLOWED"),
        ("docs", Create, "PATH_NOT_ALLOWED"),
        // Symlinks anywhere on the path.
        ("docs/out/x.md", Replace, "SYMLINK_IN_PATH"),
        ("docs/out/new.md", Create, "SYMLINK_IN_PATH"),
        ("docs/up/etc/passwd", Replace, "SYMLINK_IN_PATH"),
        ("docs/up/x.md", Append, "SYMLINK_IN_PATH"),
        ("docs/link/rails.toml", Replace, "SYMLINK_IN_PATH"),
        ("docs/link/new.toml", Create, "SYMLINK_IN_PATH"),
        ("docs/cfg.md", Replace, "SYMLINK_IN_PATH"),
        ("docs/cfg.md", Append, "SYMLINK_IN_PATH"),
        ("docs/alias.md", Replace, "SYMLINK_IN_PATH"),
        ("docs/dangling.md", Create, "SYMLINK_IN_PATH"),
        ("docs/code/lib.rs", Replace, "SYMLINK_IN_PATH"),
        ("docs/out", Create, "SYMLINK_IN_PATH"),
        // Targets that are not regular files, and paths through files.
        ("docs/sub", Replace, "PATH_INVALID"),
        ("docs/sub", Create, "PATH_INVALID"),
        ("docs/fifo.md", Append, "PATH_INVALID"),
        ("docs/fifo.md", Replace, "PATH_INVALID"),
        ("docs/sock.md", Replace, "PATH_INVALID"),
        ("docs/guide.md/x.md", Create, "PATH_INVALID"),
        ("docs/nested/x.md", Create, "PATH_INVALID"),
        ("docs/nested/sub/x.md", Create, "PATH_INVALID"),
    ]
    .into_iter()
    .map(|(p, op, code)| (p.to_string(), op, code))
    .collect();
    assert_eq!(overlong.len(), 4097);
    rows.push((overlong, Create, "PATH_INVALID"));
    rows.push((format!("docs/{}.md", "a".repeat(253)), Create, "PATH_INVALID"));
    rows
}

#[test]
fn every_hostile_path_is_refused_with_its_code_and_the_tree_untouched() {
    let repo = hostile_repo();
    let template = repo.rails();
    let wide = rails::parse(&allow_all(RAILS), "").unwrap();
    let before = repo.snapshot();
    let rows = hostile();
    assert!(rows.len() >= 40, "only {} hostile paths", rows.len());
    for (path, op, code) in &rows {
        let p = patch(*op, path);
        let mut policies = vec![("template", &template)];
        if *code != "PATH_NOT_ALLOWED" {
            policies.push(("allow = [\"**\"]", &wide));
        }
        for (name, rails) in policies {
            let g = gate(&repo, rails, &p);
            let path_ok = g.verdict("rule:path_ok").unwrap();
            assert_eq!(path_ok.code, Some(*code), "{path:?} ({op:?}, {name}): {}", path_ok.reason);
            assert!(!g.passed() && !g.path_ok());
            assert_eq!(g.first_objection().unwrap().code, Some(*code), "{path:?} ({op:?}, {name})");
            match patch::apply(repo.root(), &rails.paths, &p) {
                Ok(undo) => panic!("{path:?} ({op:?}, {name}) applied: {undo:?}"),
                Err(e) => assert_eq!(e.code(), *code, "{path:?} ({op:?}, {name}): {e}"),
            }
            assert!(repo.snapshot() == before, "{path:?} ({op:?}, {name}) changed the tree");
        }
    }
}

#[test]
fn the_same_tree_still_accepts_honest_paths() {
    let repo = hostile_repo();
    let rails = repo.rails();
    for (path, op) in [
        ("docs/guide.md", Op::Replace),
        ("docs/guide.md", Op::Append),
        ("docs/new.md", Op::Create),
        ("docs/sub/deeper/new.md", Op::Create),
        ("README.md", Op::Append),
        ("NEW.md", Op::Create),
        ("src/lib.rs", Op::Replace),
        ("tests/new.rs", Op::Create),
        ("docs/..hidden.md", Op::Create),
        ("docs/ünïcödé.md", Op::Create),
        ("docs/*.md", Op::Create),
    ] {
        let g = gate(&repo, &rails, &patch(op, path));
        assert!(g.passed(), "{path} ({op:?}): {:#?}", g.verdicts);
    }
}

#[test]
fn a_hard_link_to_a_protected_file_is_replaced_not_written_through() {
    let repo = hostile_repo();
    std::fs::hard_link(repo.path("config/rails.toml"), repo.path("docs/hard.md")).unwrap();
    let rails_before = repo.read("config/rails.toml");
    let p = patch(Op::Replace, "docs/hard.md");
    let undo = patch::apply(repo.root(), &repo.rails().paths, &p).unwrap();
    assert_eq!(repo.read("docs/hard.md"), b"# pwned\n");
    assert_eq!(repo.read("config/rails.toml"), rails_before);
    undo.restore(repo.root()).unwrap();
    assert_eq!(repo.read("docs/hard.md"), rails_before);
}

// ---------------------------------------------------------------------------
// The property: nothing outside the allowlist or inside the protected set is
// ever accepted, whatever the path looks like.
// ---------------------------------------------------------------------------

const SEGMENTS: &[&str] = &[
    ".",
    "..",
    "",
    ".git",
    ".GIT",
    ".Git",
    ".git.",
    ".git ",
    "git~1",
    "GIT~1",
    "docs",
    "DOCS",
    "Docs",
    "src",
    "SRC",
    "tests",
    "config",
    "Config",
    "CONFIG",
    "intents",
    "INTENTS",
    "golden",
    "logs",
    "Logs",
    ".ratchet",
    ".Ratchet",
    "CODEOWNERS",
    "codeowners",
    ".github",
    ".gitmodules",
    "link",
    "sub",
    "rails.toml",
    "CURRENT",
    "a.md",
    "README.md",
    "x.MD",
    "guide.md",
    "*",
    "**",
    "*.md",
    "?",
    "[a-z]",
    "{a,b}",
    "\\",
    "é.md",
    "ſ",
    "K",
    "\u{200c}.git",
    " ",
    "\0",
    "\n",
    "~",
];

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(SEGMENTS).prop_map(str::to_string),
        3 => "[a-zA-Z0-9._*?{}\\[\\]~ -]{1,8}",
        1 => "\\PC{1,6}",
    ]
}

fn hostile_path() -> impl Strategy<Value = String> {
    // Half the paths start in an allowed folder, so that acceptance is
    // exercised as much as refusal.
    let first = prop_oneof![
        1 => proptest::sample::select(&["docs", "src", "tests"][..]).prop_map(str::to_string),
        1 => segment(),
    ];
    (first, proptest::collection::vec(segment(), 0..5), proptest::bool::weighted(0.1), proptest::bool::weighted(0.1))
        .prop_map(|(first, rest, lead, trail)| {
            let mut p = std::iter::once(first).chain(rest).collect::<Vec<_>>().join("/");
            if lead {
                p.insert(0, '/');
            }
            if trail {
                p.push('/');
            }
            p
        })
}

/// An independent statement of the template's allowlist:
/// `["src/**", "tests/**", "docs/**", "*.md"]`, matched exactly.
fn oracle_allowed(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    (parts.len() >= 2 && ["src", "tests", "docs"].contains(&parts[0]))
        || (parts.len() == 1 && parts[0].ends_with(".md"))
}

/// An independent statement of the protected set, compared without case.
fn oracle_protected(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('/').collect();
    ["config", "intents", "golden", "logs", ".ratchet"].contains(&parts[0])
        || parts.iter().any(|c| c.trim_end_matches(['.', ' ']) == ".git" || *c == "git~1")
        || ["codeowners", ".github/codeowners", "docs/codeowners", ".gitmodules"].contains(&lower.as_str())
}

fn oracle_clean(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 4096
        && !path.contains(['\0', '\\'])
        && !path.chars().any(char::is_control)
        && path.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

fn property_repo() -> TestRepo {
    let repo = TestRepo::new();
    std::fs::create_dir_all(repo.path("docs/sub")).unwrap();
    std::fs::create_dir_all(repo.path("tests")).unwrap();
    repo.symlink("../config", "docs/link");
    repo.symlink("../src", "src/link");
    repo
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn path_ok_never_accepts_a_path_outside_the_allowlist_or_inside_the_protected_set(
        path in hostile_path(),
        op in prop_oneof![Just(Op::Create), Just(Op::Append), Just(Op::Replace)],
    ) {
        thread_local! {
            static FIXTURE: (TestRepo, Rails, Rails) = {
                let repo = property_repo();
                let rails = repo.rails();
                let wide = rails::parse(&allow_all(RAILS), "").unwrap();
                (repo, rails, wide)
            };
        }
        FIXTURE.with(|(repo, rails, wide)| {
            let g = gate(repo, rails, &patch(op, &path));
            if g.path_ok() {
                prop_assert!(oracle_clean(&path), "accepted an unclean path {path:?}");
                prop_assert!(oracle_allowed(&path), "accepted {path:?} outside the allowlist");
                prop_assert!(!oracle_protected(&path), "accepted the protected {path:?}");
                prop_assert!(!path.starts_with("docs/link/") && !path.starts_with("src/link/"), "went through a symlink: {path:?}");
            }
            // Widening the allowlist to everything never lets in the protected set.
            let g = gate(repo, wide, &patch(op, &path));
            if g.path_ok() {
                prop_assert!(oracle_clean(&path) && !oracle_protected(&path), "accepted {path:?} under allow = [\"**\"]");
            }
            Ok(())
        })?;
    }
}

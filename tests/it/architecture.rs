//! The boundaries the design draws, held by reading the source.

use std::path::{Path, PathBuf};

fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
            // Comments may name anything; code may not.
            let code: String = std::fs::read_to_string(&f)
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            (rel, code)
        })
        .collect()
}

fn only_in(needle: &str, allowed: &[&str]) {
    for (rel, code) in sources() {
        if allowed.iter().any(|a| rel.starts_with(a)) {
            continue;
        }
        assert!(!code.contains(needle), "src/{rel} names `{needle}`, which belongs to {allowed:?}");
    }
}

#[test]
fn clap_and_the_terminal_live_in_the_cli() {
    only_in("clap::", &["cli/"]);
    only_in("indicatif", &["cli/"]);
}

#[test]
fn http_lives_in_serve() {
    only_in("axum", &["serve/"]);
    only_in("tokio", &["serve/"]);
}

#[test]
fn git2_lives_in_git() {
    only_in("git2::", &["git/"]);
}

#[test]
fn the_step_is_the_only_writer_of_step_entries_and_the_only_path_to_a_merge() {
    for kind in ["Step", "Amend"] {
        only_in(&format!("append(Kind::{kind}"), &["step/"]);
        only_in(&format!("Draft::new(Kind::{kind}"), &["step/", "journal/"]);
        only_in(&format!("Draft::new(crate::journal::Kind::{kind}"), &["step/", "journal/"]);
    }
    only_in(".commit_path(", &["step/"]);
    only_in("apply_verified(", &["step/", "patch/"]);
    only_in("apply_since(", &["step/", "patch/"]);
}

#[test]
fn confinement_lives_in_the_sandbox() {
    only_in("landlock::", &["sandbox/"]);
    only_in("seccompiler::", &["sandbox/"]);
    only_in("CLONE_NEW", &["sandbox/"]);
    only_in("pre_exec(", &["sandbox/"]);
}

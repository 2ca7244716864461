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

#[test]
fn sqlite_lives_in_the_server_stores() {
    only_in("rusqlite", &["serve/store.rs", "serve/agents/store.rs"]);
}

#[test]
fn http_clients_live_in_the_clients() {
    // The LoopKit client, the model providers' HTTP, the agents API's
    // client (`ratchet agent`), and the demo's own calls to its server.
    only_in("reqwest", &["loopkit/client.rs", "propose/provider/model/http.rs", "agents/client.rs", "cli/demo.rs"]);
}

#[test]
fn the_terminal_is_opened_only_by_the_cli() {
    // The `human` provider asks its questions through the terminal the CLI
    // opened for it; the sandbox's tests prove a child cannot reach it.
    only_in("/dev/tty", &["cli/", "propose/provider/human.rs", "sandbox/tests.rs"]);
    only_in("is_terminal", &["cli/"]);
}

/// The layering around the step: `step` runs one turn by calling the loop's
/// domain modules (gate, propose, journal, history, trust, loopkit, ...), so
/// none of those may call back into it. Only the surfaces may drive a step
/// (`cli/`, and `serve/`'s agents API, which proposes and decides through
/// it), and the read-only views that report on the loop beside them
/// (`doctor`: what the next step would focus on; `overview`: the pending
/// proposals). `record.rs` names `step::Seal`, the permit that lets only the
/// step write its own entry kinds: a type, not a call.
#[test]
fn only_the_surfaces_and_the_views_call_into_the_step() {
    let allowed = ["step/", "cli/", "serve/", "doctor.rs", "overview.rs", "lib.rs"];
    for (rel, code) in sources() {
        if allowed.iter().any(|a| rel.starts_with(a)) {
            continue;
        }
        let code = if rel == "record.rs" { code.replace("crate::step::Seal", "") } else { code };
        for needle in ["crate::step", "step::"] {
            let named = code.match_indices(needle).any(|(i, _)| {
                // `step::` as a path, not the tail of another name (`self_step::`).
                needle == "crate::step" || !code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            assert!(
                !named,
                "src/{rel} names `{needle}`: the step calls into it, so it may not call back; move what it needs below the step"
            );
        }
    }
}

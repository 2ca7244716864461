//! The README's install and first-use commands, as a newcomer runs them
//! (issue 13): in a fresh clone, in a temporary directory, with the clock
//! pinned.

use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The lines of the first ```sh block after `heading`, without comments.
fn block_after(text: &str, heading: &str) -> Vec<String> {
    let start = text.find(heading).unwrap_or_else(|| panic!("no {heading:?} in the README"));
    let rest = &text[start..];
    let open = rest.find("```sh\n").expect("a sh block") + 6;
    let close = rest[open..].find("```").expect("the block ends") + open;
    rest[open..close]
        .lines()
        .map(|l| l.split("  #").next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_install_command_names_this_package_and_its_lock_file_holds() {
    let install = block_after(&readme(), "## Install");
    assert!(install.iter().any(|l| l == "cargo install --locked --path ."), "{install:?}");
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap()).unwrap();
    assert_eq!(manifest["package"]["name"].as_str(), Some("ratchet"));
    assert_eq!(manifest["bin"][0]["name"].as_str(), Some("ratchet"), "the binary the README puts on PATH");
    // `--locked` works: Cargo.lock satisfies Cargo.toml as it is (no network).
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--locked", "--offline", "--format-version", "1", "--no-deps"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo metadata --locked: {}", String::from_utf8_lossy(&out.stderr));
    for file in ["LICENSE-MIT", "LICENSE-APACHE", "CHANGELOG.md"] {
        assert!(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file).is_file(), "{file} ships");
    }
}

#[test]
fn the_first_use_commands_work_in_a_fresh_clone() {
    let origin = crate::support::workspace::Ws::new();
    origin.write("docs/guide.md", "# Guide\n");
    origin.git(&["add", "-A"]);
    origin.git(&["commit", "-q", "-m", "docs"]);
    let clone = origin.home.join("clone");
    crate::support::workspace::git(
        &origin.home,
        &["clone", "-q", origin.root.to_str().unwrap(), clone.to_str().unwrap()],
    );
    let bin_dir = std::path::Path::new(crate::support::workspace::bin()).parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let lines = block_after(&readme(), "## Using it in a repository");
    // The commands that need no human and no agent, in the README's order.
    let runnable: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("ratchet init") || l.starts_with("git add") || l.starts_with("ratchet status"))
        .collect();
    assert_eq!(runnable.len(), 3, "init, commit, status: {lines:?}");
    for line in runnable {
        let out = Command::new("setsid")
            .args(["-w", "sh", "-c", line])
            .current_dir(&clone)
            .env_clear()
            .env("PATH", &path)
            .env("HOME", &origin.home)
            .env("XDG_STATE_HOME", origin.home.join("state"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Newcomer")
            .env("GIT_AUTHOR_EMAIL", "new@example.com")
            .env("GIT_COMMITTER_NAME", "Newcomer")
            .env("GIT_COMMITTER_EMAIL", "new@example.com")
            .env("GIT_AUTHOR_DATE", crate::support::workspace::NOW)
            .env("GIT_COMMITTER_DATE", crate::support::workspace::NOW)
            .env("RATCHET_NOW", crate::support::workspace::NOW)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`{line}`: {}{}",
            crate::support::workspace::stdout(&out),
            crate::support::workspace::stderr(&out)
        );
    }
    assert_eq!(
        crate::support::workspace::git(&clone, &["status", "--porcelain"]).trim(),
        "",
        "everything init wrote is committed"
    );
}

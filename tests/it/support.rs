//! The one harness of the integration tests. Every fixture is hermetic: a
//! real git repository in a temporary directory, its own `HOME` and
//! `XDG_STATE_HOME` (never the real ones), and ratchet's clock pinned by
//! `RATCHET_NOW`.
//!
//! - [`workspace`]: a ratchet workspace driven through the binary (`Ws`),
//!   with a scripted `self` agent, a pseudo-terminal for the human paths,
//!   and `ratchet serve` as a process.
//! - [`journal`]: a bare repository and journal for the log's own tests.
//! - [`repo`]: a repository for the patch engine and Gate 1, in process.
//! - [`server`] and [`http`]: `ratchet serve`'s router in process and over
//!   loopback, OTLP payload builders.
//! - [`git`]: the one way tests run git.
//!
//! Snapshots are `insta`'s, inline (`assert_snapshot!(x, @"...")`) or in
//! `tests/it/snapshots/`.
#![allow(dead_code)]

pub mod http;
pub mod journal;
pub mod repo;
pub mod server;
pub mod workspace;

use std::path::Path;

/// Runs git in `dir` with no system or global config (`HOME` is `dir`) and
/// its clock pinned to ratchet's ([`workspace::NOW`]), so commits made by
/// hand in a test (a plain `git revert`, say) are dated like ratchet's
/// steps; returns its standard output, and panics with git's error
/// otherwise. The identity is the repository's own config.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_AUTHOR_DATE", workspace::NOW)
        .env("GIT_COMMITTER_DATE", workspace::NOW)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

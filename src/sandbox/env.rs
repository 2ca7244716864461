//! The environment a child gets: a small safe set, ratchet's own
//! `RATCHET_*` variables, and the names the policy lists — nothing else.
//!
//! Invariant: a variable of ratchet's environment reaches the child only if
//! it is in [`SAFE`], is an `LC_*` locale variable that does not look like a
//! secret, or is named in the policy's allow list. A variable set on the
//! command itself passes if it is `RATCHET_*`, safe, or allowed.

use std::ffi::{OsStr, OsString};
use std::path::Path;

/// Names every child gets from ratchet's environment.
pub const SAFE: &[&str] = &["PATH", "HOME", "LANG"];

/// What the child's environment is, and which allow-listed names were passed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChildEnv {
    pub vars: Vec<(OsString, OsString)>,
    /// Names passed because the policy listed them, sorted.
    pub allowed: Vec<String>,
}

/// A name that looks like it holds a secret (`*_KEY`, `*_TOKEN`,
/// `*SECRET*`, `*PASSWORD*`, …). Such a name passes only when listed.
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["_KEY", "_TOKEN", "_PAT"].iter().any(|s| upper.ends_with(s))
        || ["SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "API_KEY", "PRIVATE"]
            .iter()
            .any(|s| upper.contains(s))
}

fn safe(name: &str) -> bool {
    SAFE.contains(&name) || (name.starts_with("LC_") && !looks_secret(name))
}

/// The child's environment from ratchet's (`inherited`), the variables set
/// on the command (`explicit`, `None` for removed), the policy's `allow`
/// list, and the private temp dir (`TMPDIR`; `None` keeps ratchet's).
pub fn child_env<'a>(
    inherited: impl IntoIterator<Item = (OsString, OsString)>,
    explicit: impl IntoIterator<Item = (&'a OsStr, Option<&'a OsStr>)>,
    allow: &[String],
    tmpdir: Option<&Path>,
) -> ChildEnv {
    let listed = |name: &str| allow.iter().any(|a| a == name);
    let mut vars: Vec<(OsString, OsString)> = Vec::new();
    let set = |vars: &mut Vec<(OsString, OsString)>, k: OsString, v: Option<OsString>| {
        vars.retain(|(name, _)| *name != k);
        if let Some(v) = v {
            vars.push((k, v));
        }
    };
    for (k, v) in inherited {
        let Some(name) = k.to_str() else { continue };
        if safe(name) || listed(name) || (name == "TMPDIR" && tmpdir.is_none()) {
            set(&mut vars, k, Some(v));
        }
    }
    for (k, v) in explicit {
        let Some(name) = k.to_str() else { continue };
        if name.starts_with("RATCHET_") || safe(name) || listed(name) || (name == "TMPDIR" && tmpdir.is_none()) {
            set(&mut vars, k.to_os_string(), v.map(OsStr::to_os_string));
        }
    }
    if let Some(tmp) = tmpdir {
        set(&mut vars, "TMPDIR".into(), Some(tmp.as_os_str().to_os_string()));
    }
    vars.sort();
    let mut allowed: Vec<String> = vars
        .iter()
        .filter_map(|(k, _)| k.to_str())
        .filter(|name| listed(name) && !safe(name) && !name.starts_with("RATCHET_") && *name != "TMPDIR")
        .map(str::to_string)
        .collect();
    allowed.sort();
    ChildEnv { vars, allowed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect()
    }

    fn names(e: &ChildEnv) -> Vec<String> {
        e.vars.iter().map(|(k, _)| k.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn only_the_safe_set_passes_and_secrets_never_do() {
        let parent = env(&[
            ("PATH", "/usr/bin"),
            ("HOME", "/home/a"),
            ("LANG", "C.UTF-8"),
            ("LC_ALL", "C"),
            ("LC_SECRET_TOKEN", "x"),
            ("LOOPKIT_AGENT_KEY", "lk_agent_1"),
            ("OPENAI_API_KEY", "sk-1"),
            ("GITHUB_TOKEN", "ghp_1"),
            ("AWS_SECRET_ACCESS_KEY", "a"),
            ("SSH_AUTH_SOCK", "/tmp/ssh-x/agent.1"),
            ("TERM", "xterm"),
            ("RATCHET_NOW", "2026-11-21T19:00:00Z"),
            ("TMPDIR", "/var/tmp"),
        ]);
        let e = child_env(parent, [], &[], Some(Path::new("/tmp")));
        assert_eq!(names(&e), ["HOME", "LANG", "LC_ALL", "PATH", "TMPDIR"]);
        assert!(e.vars.contains(&("TMPDIR".into(), "/tmp".into())));
        assert!(e.allowed.is_empty());
    }

    #[test]
    fn listed_names_pass_even_when_they_look_secret_and_are_reported() {
        let parent = env(&[("PATH", "/bin"), ("OPENAI_API_KEY", "sk-1"), ("CARGO_HOME", "/c"), ("NOT_LISTED", "x")]);
        let allow = vec!["OPENAI_API_KEY".to_string(), "CARGO_HOME".to_string(), "ABSENT".to_string()];
        let e = child_env(parent, [], &allow, Some(Path::new("/tmp")));
        assert_eq!(names(&e), ["CARGO_HOME", "OPENAI_API_KEY", "PATH", "TMPDIR"]);
        assert_eq!(e.allowed, ["CARGO_HOME", "OPENAI_API_KEY"]);
    }

    #[test]
    fn ratchet_variables_set_on_the_command_pass_others_do_not() {
        let explicit: Vec<(&OsStr, Option<&OsStr>)> = vec![
            (OsStr::new("RATCHET_STEP_ID"), Some(OsStr::new("s1"))),
            (OsStr::new("GH_TOKEN"), Some(OsStr::new("ghp_1"))),
            (OsStr::new("PATH"), Some(OsStr::new("/only"))),
            (OsStr::new("HOME"), None),
        ];
        let e = child_env(env(&[("PATH", "/bin"), ("HOME", "/h")]), explicit, &[], Some(Path::new("/tmp")));
        assert_eq!(
            e.vars,
            env(&[("PATH", "/only"), ("RATCHET_STEP_ID", "s1"), ("TMPDIR", "/tmp")]).into_iter().collect::<Vec<_>>()
        );
    }

    #[test]
    fn without_a_private_temp_dir_tmpdir_is_kept() {
        let e = child_env(env(&[("TMPDIR", "/scratch")]), [], &[], None);
        assert_eq!(e.vars, env(&[("TMPDIR", "/scratch")]));
    }

    #[test]
    fn secret_looking_names() {
        for n in ["LOOPKIT_AGENT_KEY", "GITHUB_TOKEN", "MY_SECRET", "DB_PASSWORD", "npm_config__auth", "GITLAB_PAT"] {
            assert!(looks_secret(n), "{n}");
        }
        for n in ["PATH", "LC_ALL", "CARGO_HOME", "KEYBOARD", "RUST_LOG"] {
            assert!(!looks_secret(n), "{n}");
        }
    }
}

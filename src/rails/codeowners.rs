//! `CODEOWNERS` (GitHub's syntax): who must approve a change to a path.
//!
//! Each non-comment line is a pattern followed by owners (`@user`,
//! `@org/team` or an email); the last matching line wins, and a line with no
//! owners leaves its paths unowned. Rail changes (`ratchet rails accept`)
//! need the approver to own every changed path that has owners. An approver
//! is matched by git identity: `user.email` against email owners, and
//! `github.user` (else `user.name`) against `@handle` owners.

use globset::{GlobSet, GlobSetBuilder};

use crate::git::Identity;

#[derive(Clone, Debug)]
struct Rule {
    pattern: String,
    set: GlobSet,
    owners: Vec<String>,
}

/// Parsed CODEOWNERS rules.
#[derive(Clone, Debug, Default)]
pub struct CodeOwners {
    rules: Vec<Rule>,
}

impl CodeOwners {
    /// Parses the text of a CODEOWNERS file. Lines with invalid patterns are
    /// skipped, as GitHub does.
    pub fn parse(text: &str) -> CodeOwners {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.split_once(" #").map(|(l, _)| l).unwrap_or(line).trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let Some(pattern) = words.next() else { continue };
            let owners = words.map(str::to_string).collect();
            if let Some(set) = compile(pattern) {
                rules.push(Rule { pattern: pattern.to_string(), set, owners });
            }
        }
        CodeOwners { rules }
    }

    /// The owners of `path` (repository-relative) and the pattern that names them.
    pub fn owners_of(&self, path: &str) -> Option<(&str, &[String])> {
        self.rules.iter().rev().find(|r| r.set.is_match(path)).map(|r| (r.pattern.as_str(), r.owners.as_slice()))
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// gitignore-style pattern → globs: a leading or inner `/` anchors it at the
/// root, otherwise it matches at any depth; a match on a directory covers
/// everything beneath it (except for `dir/*`, which GitHub keeps shallow).
fn compile(pattern: &str) -> Option<GlobSet> {
    let trimmed = pattern.trim_end_matches('/');
    let anchored = pattern.starts_with('/') || trimmed.trim_start_matches('/').contains('/');
    let base = trimmed.trim_start_matches('/');
    if base.is_empty() {
        return None;
    }
    let base = if anchored { base.to_string() } else { format!("**/{base}") };
    let mut globs = vec![base.clone()];
    if !base.ends_with("/*") {
        globs.push(format!("{base}/**"));
    }
    let mut b = GlobSetBuilder::new();
    for g in globs {
        b.add(super::protected::glob(&g, false).ok()?);
    }
    b.build().ok()
}

fn owns(owner: &str, who: &Identity, handle: Option<&str>) -> bool {
    if let Some(h) = owner.strip_prefix('@') {
        let handle = handle.unwrap_or(&who.name);
        !handle.is_empty() && h.eq_ignore_ascii_case(handle.trim_start_matches('@'))
    } else {
        !who.email.is_empty() && owner.eq_ignore_ascii_case(&who.email)
    }
}

/// The paths among `paths` that have owners of whom `who` is not one, with
/// those owners. `handle` is the approver's `@handle` (git `github.user`).
pub fn uncovered_paths(
    owners: &CodeOwners,
    paths: &[String],
    who: &Identity,
    handle: Option<&str>,
) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for path in paths {
        if let Some((_, list)) = owners.owners_of(path) {
            if !list.is_empty() && !list.iter().any(|o| owns(o, who, handle)) {
                out.push((path.clone(), list.to_vec()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str, email: &str) -> Identity {
        Identity { name: name.into(), email: email.into() }
    }

    #[test]
    fn the_last_matching_rule_wins() {
        let co = CodeOwners::parse("* @everyone\n/config/ alice@example.com @bob\nconfig/utility.toml\n");
        assert_eq!(co.owners_of("src/a.rs").unwrap().1, ["@everyone"]);
        assert_eq!(co.owners_of("config/rails.toml").unwrap().1, ["alice@example.com", "@bob"]);
        assert!(co.owners_of("config/utility.toml").unwrap().1.is_empty());
    }

    #[test]
    fn unanchored_patterns_match_at_any_depth_and_dir_star_stays_shallow() {
        let co = CodeOwners::parse("*.md @docs\ndocs/* @writers\n");
        assert_eq!(co.owners_of("a/b/README.md").unwrap().1, ["@docs"]);
        assert_eq!(co.owners_of("docs/x.txt").unwrap().1, ["@writers"]);
        assert!(co.owners_of("docs/deep/x.txt").is_none());
    }

    #[test]
    fn owners_are_matched_by_email_or_handle() {
        let co = CodeOwners::parse("/config/ alice@example.com @bob\n");
        let paths = vec!["config/rails.toml".to_string()];
        assert!(uncovered_paths(&co, &paths, &id("Alice", "ALICE@example.com"), None).is_empty());
        assert!(uncovered_paths(&co, &paths, &id("x", "x@y"), Some("bob")).is_empty());
        assert!(uncovered_paths(&co, &paths, &id("bob", "x@y"), None).is_empty());
        let refused = uncovered_paths(&co, &paths, &id("mallory", "m@evil"), None);
        assert_eq!(refused, vec![("config/rails.toml".to_string(), vec!["alice@example.com".into(), "@bob".into()])]);
    }
}

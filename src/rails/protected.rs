//! The built-in protected set and the compiled path policy.
//!
//! The protected set is compiled into the binary: `config/**`, `intents/**`,
//! `golden/**`, `logs/**`, `.ratchet/**` (under the ratchet home), `.git/**`
//! and `CODEOWNERS` (in every location GitHub reads it from). Configuration
//! can add to it (`[paths] deny`) but never remove from it. Protected and
//! denied patterns match case-insensitively, so `Config/Rails.toml` is as
//! protected as `config/rails.toml`; the allowlist matches exactly, so a
//! change of case can never widen it.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// Folders under the ratchet home that no patch may touch.
pub const HOME_PROTECTED_DIRS: [&str; 5] = ["config", "intents", "golden", "logs", ".ratchet"];

/// Files protected wherever the repository is (relative to its root).
pub const ROOT_PROTECTED: [&str; 7] =
    [".git", ".git/**", "CODEOWNERS", ".github/CODEOWNERS", "docs/CODEOWNERS", ".gitlab/CODEOWNERS", ".gitmodules"];

/// The built-in protected patterns for a workspace whose home is `home_rel`
/// (`""` at the repository root), relative to the repository root.
pub fn builtin_patterns(home_rel: &str) -> Vec<String> {
    let prefix = if home_rel.is_empty() { String::new() } else { format!("{home_rel}/") };
    let mut out = Vec::new();
    for dir in HOME_PROTECTED_DIRS {
        out.push(format!("{prefix}{dir}"));
        out.push(format!("{prefix}{dir}/**"));
    }
    out.extend(ROOT_PROTECTED.iter().map(|p| p.to_string()));
    out
}

/// Compiles one glob the way every rails glob is compiled: `*` never
/// crosses a `/`.
pub fn glob(pattern: &str, case_insensitive: bool) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(true).case_insensitive(case_insensitive).backslash_escape(true).build()
}

/// A compiled list of patterns that remembers which pattern matched.
#[derive(Clone, Debug)]
pub struct PatternSet {
    patterns: Vec<String>,
    set: GlobSet,
}

impl PatternSet {
    pub fn new(patterns: &[String], case_insensitive: bool) -> Result<PatternSet, (String, globset::Error)> {
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            b.add(glob(p, case_insensitive).map_err(|e| (p.clone(), e))?);
        }
        let set = b.build().map_err(|e| (patterns.join(", "), e))?;
        Ok(PatternSet { patterns: patterns.to_vec(), set })
    }

    /// The first pattern (in configuration order) matching `path`.
    pub fn matching(&self, path: &str) -> Option<&str> {
        self.matching_candidate(&globset::Candidate::new(path))
    }

    /// [`PatternSet::matching`] for a path already prepared for matching.
    fn matching_candidate(&self, path: &globset::Candidate<'_>) -> Option<&str> {
        // Most paths match no pattern of a set: say so without collecting.
        if !self.set.is_match_candidate(path) {
            return None;
        }
        self.set.matches_candidate(path).into_iter().min().map(|i| self.patterns[i].as_str())
    }

    pub fn is_match(&self, path: &str) -> bool {
        self.set.is_match(path)
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// Where patches may and may not go: the compiled `[paths]` of the rails
/// plus the built-in protected set.
#[derive(Clone, Debug)]
pub struct PathPolicy {
    /// Built-in, case-insensitive.
    pub protected: PatternSet,
    /// `[paths] deny`, case-insensitive.
    pub deny: PatternSet,
    /// `[paths] allow`, exact.
    pub allow: PatternSet,
}

/// Why a path is off limits, or which pattern lets it in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathClass<'a> {
    /// Matches the built-in protected set.
    Protected(&'a str),
    /// Matches `[paths] deny`.
    Denied(&'a str),
    /// Matches no `[paths] allow` pattern.
    NotAllowed,
    /// Allowed by this pattern.
    Allowed(&'a str),
}

impl PathPolicy {
    /// Classifies a lexically clean, repository-relative path. Deny beats
    /// allow: protected and denied patterns are tried first, and any
    /// component that names `.git` in any case, at any depth, is protected
    /// (see [`is_git_alias`]).
    pub fn classify(&self, path: &str) -> PathClass<'_> {
        if path.split('/').any(is_git_alias) {
            return PathClass::Protected(".git/**");
        }
        let candidate = globset::Candidate::new(path);
        if let Some(p) = self.protected.matching_candidate(&candidate) {
            return PathClass::Protected(p);
        }
        if let Some(p) = self.deny.matching_candidate(&candidate) {
            return PathClass::Denied(p);
        }
        match self.allow.matching_candidate(&candidate) {
            Some(p) => PathClass::Allowed(p),
            None => PathClass::NotAllowed,
        }
    }

    /// Whether `path` is protected (built-in set, or a `.git` component).
    pub fn is_protected(&self, path: &str) -> bool {
        matches!(self.classify(path), PathClass::Protected(_))
    }
}

/// Whether a path component names a `.git` directory on some file system:
/// `.git` in any case, also with trailing dots or spaces (which NTFS drops:
/// `.git.`, `.GIT `), or its NTFS short name `git~1`. Git itself refuses
/// these on checkout (`core.protectNTFS`); a patch must never write them.
pub fn is_git_alias(component: &str) -> bool {
    let trimmed = component.trim_end_matches(['.', ' ']);
    trimmed.eq_ignore_ascii_case(".git") || component.eq_ignore_ascii_case("git~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(home: &str) -> PathPolicy {
        PathPolicy {
            protected: PatternSet::new(&builtin_patterns(home), true).unwrap(),
            deny: PatternSet::new(&["src/secret/**".to_string()], true).unwrap(),
            allow: PatternSet::new(&["src/**".into(), "docs/**".into(), "*.md".into()], false).unwrap(),
        }
    }

    #[test]
    fn protected_beats_allowed_in_any_case() {
        let p = policy("");
        assert_eq!(p.classify("config/rails.toml"), PathClass::Protected("config/**"));
        assert_eq!(p.classify("Config/Rails.toml"), PathClass::Protected("config/**"));
        assert_eq!(p.classify("src/.GIT/config"), PathClass::Protected(".git/**"));
        assert_eq!(p.classify("CODEOWNERS"), PathClass::Protected("CODEOWNERS"));
        assert_eq!(p.classify("codeowners"), PathClass::Protected("CODEOWNERS"));
        assert_eq!(p.classify("SRC/secret/a"), PathClass::Denied("src/secret/**"));
    }

    #[test]
    fn git_aliases_are_protected_at_any_depth() {
        let p = policy("");
        for path in [".git", ".GIT/config", "src/.Git/hooks/x", "src/.git./x", "src/.git  /x", "src/GIT~1/x"] {
            assert_eq!(p.classify(path), PathClass::Protected(".git/**"), "{path}");
        }
        for path in ["src/.github/x", "src/.gitignore", "src/git/x", "src/x.git"] {
            assert_ne!(p.classify(path), PathClass::Protected(".git/**"), "{path}");
        }
    }

    #[test]
    fn star_does_not_cross_a_slash() {
        let p = policy("");
        assert_eq!(p.classify("README.md"), PathClass::Allowed("*.md"));
        assert_eq!(p.classify("notes/README.md"), PathClass::NotAllowed);
        assert_eq!(p.classify("SRC/lib.rs"), PathClass::NotAllowed);
    }

    #[test]
    fn a_sub_folder_home_moves_the_protected_set() {
        let p = policy(".ratchet-home");
        assert!(p.is_protected(".ratchet-home/config/rails.toml"));
        assert!(p.is_protected(".Ratchet-Home/LOGS/steps.jsonl"));
        assert!(!p.is_protected("config/app.toml"));
    }
}

//! Patches and proposals (DESIGN §5): their strict formats, the packet
//! hash, line statistics, and resolving a patch against the tree.
//!
//! A patch is exactly one operation on exactly one file:
//!
//! ```json
//! { "op": "create",  "path": "docs/usage.md", "content": "..." }
//! { "op": "append",  "path": "CHANGELOG.md",  "content": "..." }
//! { "op": "replace", "path": "src/lib.rs", "old": "found exactly once", "new": "..." }
//! { "op": "replace", "path": "src/lib.rs", "new": "the whole new file" }
//! ```
//!
//! A proposal wraps one patch with a rationale, optional next steps, focus
//! and evidence. Parsing is strict: unknown fields, duplicate keys, wrong
//! types and missing fields are `BAD_PATCH`, with a message naming the field.
//! A proposal carrying several patches parses (so that Gate 1 can object to
//! it with `NOT_ATOMIC`), but nothing here ever applies more than one.
//!
//! Invariants:
//! - Nothing in this module follows a symlink or writes outside the work
//!   tree: [`path`] opens every directory component with `O_NOFOLLOW`
//!   from the work-tree root, and [`mod@apply`] writes only through the
//!   directory descriptor it got that way.
//! - Only UTF-8 text files are read or written.
//! - A patch that fails to apply leaves the tree byte-identical.

pub mod apply;
pub mod path;

use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::Coded;

pub use apply::{
    Before, Previous, Undo, Written, apply, apply_since, apply_verified, apply_watched, put_back, remove_new,
    verify_single_change, write,
};
pub use path::{MAX_PATH_BYTES, Target};

/// A proposal file larger than this is refused before it is parsed.
pub const MAX_PROPOSAL_BYTES: u64 = 16 * 1024 * 1024;

/// An existing file larger than this is never read (nor patched).
pub const MAX_TARGET_BYTES: u64 = 16 * 1024 * 1024;

/// Everything that can be wrong with a patch, its path, or applying it.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The proposal or patch is not well-formed; `field` names where.
    #[error("{message}")]
    BadPatch { field: String, message: String },
    #[error("{} is not a valid patch path: {reason}", show(path))]
    PathInvalid { path: String, reason: String },
    #[error("{path} is protected (matches {pattern})")]
    PathProtected { path: String, pattern: String },
    #[error("{path} is denied by [paths] deny (matches {pattern})")]
    PathDenied { path: String, pattern: String },
    #[error("{path} is not in the allowlist")]
    PathNotAllowed { path: String, allow: Vec<String> },
    #[error("{path}: {component} is a symbolic link")]
    SymlinkInPath { path: String, component: String },
    #[error("cannot create {path}: it already exists")]
    TargetExists { path: String },
    #[error("cannot {op} {path}: it does not exist")]
    TargetMissing { path: String, op: &'static str },
    #[error("the old text does not occur in {path}")]
    OldTextNotFound { path: String },
    #[error("the old text occurs more than once in {path}")]
    OldTextAmbiguous { path: String },
    #[error("{path} is not UTF-8 text")]
    NotUtf8 { path: String },
    #[error("{path} is {size} bytes, more than ratchet ever reads ({max})")]
    TargetTooLarge { path: String, size: u64, max: u64 },
    #[error("after applying {path}, git status shows other changes: {}", others.join(", "))]
    UnexpectedChanges { path: String, others: Vec<String> },
    #[error("after applying {path}, git status does not show it changed")]
    ChangeInvisible { path: String },
    #[error("{path} changed under ratchet: {why}")]
    TargetChanged { path: String, why: String },
    #[error("could not undo the patch to {path} after: {cause}")]
    RestoreFailed {
        path: String,
        cause: String,
        #[source]
        source: Box<PatchError>,
    },
    #[error(transparent)]
    Git(#[from] crate::git::GitError),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl PatchError {
    pub(crate) fn bad(field: impl Into<String>, message: impl Into<String>) -> PatchError {
        PatchError::BadPatch { field: field.into(), message: message.into() }
    }

    pub(crate) fn io(action: &'static str, path: &str, source: impl Into<std::io::Error>) -> PatchError {
        PatchError::Io { action, path: path.to_string(), source: source.into() }
    }
}

impl Coded for PatchError {
    fn code(&self) -> &'static str {
        match self {
            PatchError::BadPatch { .. } => "BAD_PATCH",
            PatchError::PathInvalid { .. } => "PATH_INVALID",
            PatchError::PathProtected { .. } | PatchError::PathDenied { .. } => "PATH_PROTECTED",
            PatchError::PathNotAllowed { .. } => "PATH_NOT_ALLOWED",
            PatchError::SymlinkInPath { .. } => "SYMLINK_IN_PATH",
            PatchError::TargetExists { .. } => "TARGET_EXISTS",
            PatchError::TargetMissing { .. } => "TARGET_MISSING",
            PatchError::OldTextNotFound { .. } => "OLD_TEXT_NOT_FOUND",
            PatchError::OldTextAmbiguous { .. } => "OLD_TEXT_AMBIGUOUS",
            PatchError::NotUtf8 { .. } => "NOT_UTF8",
            PatchError::TargetTooLarge { .. } => "TARGET_TOO_LARGE",
            PatchError::UnexpectedChanges { .. }
            | PatchError::ChangeInvisible { .. }
            | PatchError::TargetChanged { .. } => "UNEXPECTED_CHANGES",
            PatchError::RestoreFailed { .. } => "RESTORE_FAILED",
            PatchError::Git(e) => e.code(),
            PatchError::Io { .. } => "IO_ERROR",
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            PatchError::BadPatch { .. } => {
                "a patch is {\"op\":\"create\"|\"append\",\"path\",\"content\"} or {\"op\":\"replace\",\"path\",\"old\" (optional),\"new\"}; a proposal is {\"rationale\",\"patch\",\"next_steps\"}".into()
            }
            PatchError::PathInvalid { .. } => {
                "use a plain relative path with / separators and no '.', '..' or empty components, naming a regular file".into()
            }
            PatchError::PathProtected { .. } | PatchError::PathDenied { .. } => {
                "protected files change only by hand, reviewed through `ratchet rails accept`; patch another path".into()
            }
            PatchError::PathNotAllowed { allow, .. } => {
                format!("patch a path matching [paths] allow: {}", allow.join(", "))
            }
            PatchError::SymlinkInPath { .. } => {
                "patches never go through symbolic links; patch the real file's path instead".into()
            }
            PatchError::TargetExists { .. } => "use replace (or append) to change an existing file".into(),
            PatchError::TargetMissing { .. } => "use create for a new file, or check the path".into(),
            PatchError::OldTextNotFound { .. } => {
                "copy the old text exactly from the current file (white space included), or omit `old` to replace the whole file".into()
            }
            PatchError::OldTextAmbiguous { .. } => {
                "include more surrounding lines in `old` so that it occurs exactly once".into()
            }
            PatchError::NotUtf8 { .. } => "ratchet only patches UTF-8 text files".into(),
            PatchError::TargetTooLarge { .. } => "patch a smaller file".into(),
            PatchError::UnexpectedChanges { .. } | PatchError::ChangeInvisible { .. } => {
                "a patch must change exactly its one path: check `git status` and .gitignore".into()
            }
            PatchError::TargetChanged { .. } => {
                "something besides ratchet wrote to the file during the step (a provider or the checks): nothing was committed; look at `git diff`".into()
            }
            PatchError::RestoreFailed { path, .. } => {
                format!("the tree may still hold the patch: restore {path} by hand (`git diff`, `git checkout -- {path}`)")
            }
            PatchError::Git(e) => return e.hint(),
            PatchError::Io { .. } => "check the file's permissions and the disk, then try again".into(),
        })
    }
}

/// A path as shown to people: as is when it passes the lexical rules
/// (so it holds no control character), else escaped and cut short.
pub fn display_path(path: &str) -> String {
    if path::lexical(path).is_ok() { path.to_string() } else { show(path) }
}

/// A path as shown in messages: escaped, and cut short when very long.
pub(crate) fn show(path: &str) -> String {
    const KEEP: usize = 60;
    if path.len() <= KEEP {
        return format!("{path:?}");
    }
    let mut cut = KEEP;
    while !path.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{:?}… ({} bytes)", &path[..cut], path.len())
}

/// The operation of a patch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Create,
    Append,
    Replace,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Append => "append",
            Op::Replace => "replace",
        }
    }
}

/// One operation on one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Patch {
    /// A new file; the target must be absent.
    Create { path: String, content: String },
    /// Text added at the end of an existing file.
    Append { path: String, content: String },
    /// With `old`: the one occurrence of `old` becomes `new`. Without: the
    /// whole file becomes `new`. The target must exist.
    Replace { path: String, old: Option<String>, new: String },
}

impl Patch {
    pub fn op(&self) -> Op {
        match self {
            Patch::Create { .. } => Op::Create,
            Patch::Append { .. } => Op::Append,
            Patch::Replace { .. } => Op::Replace,
        }
    }

    /// The repository-relative path, as written (not yet checked).
    pub fn path(&self) -> &str {
        match self {
            Patch::Create { path, .. } | Patch::Append { path, .. } | Patch::Replace { path, .. } => path,
        }
    }

    /// Parses one patch object strictly. `at` names it in messages
    /// (`patch`, `patch[1]`).
    pub fn from_value(value: &Value, at: &str) -> Result<Patch, PatchError> {
        let obj = value.as_object().ok_or_else(|| {
            PatchError::bad(at, format!("{at} must be an object, found {}", crate::canonical::kind(value)))
        })?;
        let field = |name: &str| if at.is_empty() { name.to_string() } else { format!("{at}.{name}") };
        let op = match obj.get("op") {
            None => return Err(PatchError::bad(field("op"), format!("{} is missing", field("op")))),
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(PatchError::bad(
                    field("op"),
                    format!("{} must be a string, found {}", field("op"), crate::canonical::kind(other)),
                ));
            }
        };
        let allowed: &[&str] = match op {
            "create" | "append" => &["op", "path", "content"],
            "replace" => &["op", "path", "old", "new"],
            other => {
                return Err(PatchError::bad(
                    field("op"),
                    format!("{} is {other:?}; expected \"create\", \"append\" or \"replace\"", field("op")),
                ));
            }
        };
        if let Some(key) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            let known = ["op", "path", "content", "old", "new"];
            let message = if known.contains(&key.as_str()) {
                format!("{} does not apply to op {op:?} (its fields: {})", field(key), allowed.join(", "))
            } else {
                format!("unknown field {:?} (expected {})", field(key), allowed.join(", "))
            };
            return Err(PatchError::bad(field(key), message));
        }
        let path = required_string(obj, "path", &field("path"))?;
        Ok(match op {
            "create" => Patch::Create { path, content: required_string(obj, "content", &field("content"))? },
            "append" => Patch::Append { path, content: required_string(obj, "content", &field("content"))? },
            _ => {
                let old = match obj.get("old") {
                    None => None,
                    Some(Value::String(s)) if s.is_empty() => {
                        return Err(PatchError::bad(
                            field("old"),
                            format!("{} is empty; omit it to replace the whole file", field("old")),
                        ));
                    }
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(other) => {
                        return Err(PatchError::bad(
                            field("old"),
                            format!(
                                "{} must be a string, found {} (omit it to replace the whole file)",
                                field("old"),
                                crate::canonical::kind(other)
                            ),
                        ));
                    }
                };
                Patch::Replace { path, old, new: required_string(obj, "new", &field("new"))? }
            }
        })
    }

    /// The patch in its JSON form (the normal form the packet hash covers).
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("op".into(), Value::from(self.op().as_str()));
        m.insert("path".into(), Value::from(self.path()));
        match self {
            Patch::Create { content, .. } | Patch::Append { content, .. } => {
                m.insert("content".into(), Value::from(content.as_str()));
            }
            Patch::Replace { old, new, .. } => {
                if let Some(old) = old {
                    m.insert("old".into(), Value::from(old.as_str()));
                }
                m.insert("new".into(), Value::from(new.as_str()));
            }
        }
        Value::Object(m)
    }
}

/// A required string field of a JSON object, or `BAD_PATCH` naming `field`.
pub(crate) fn required_string(obj: &Map<String, Value>, key: &str, field: &str) -> Result<String, PatchError> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        None => Err(PatchError::bad(field, format!("{field} is missing"))),
        Some(other) => {
            Err(PatchError::bad(field, format!("{field} must be a string, found {}", crate::canonical::kind(other))))
        }
    }
}

/// Lines added and removed by a patch, from the line diff of the old and
/// new file contents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LineStats {
    pub added: u64,
    pub removed: u64,
}

impl LineStats {
    /// Computes the stats of a change from `old` to `new` (`""` for an
    /// absent file). The diff gives up refining after a few seconds on
    /// pathological inputs; the counts are then an upper bound.
    pub fn between(old: &str, new: &str) -> LineStats {
        let diff = similar::TextDiff::configure().timeout(Duration::from_secs(5)).diff_lines(old, new);
        let mut stats = LineStats::default();
        for op in diff.ops() {
            let (tag, old_range, new_range) = op.as_tag_tuple();
            match tag {
                similar::DiffTag::Equal => {}
                similar::DiffTag::Delete => stats.removed += old_range.len() as u64,
                similar::DiffTag::Insert => stats.added += new_range.len() as u64,
                similar::DiffTag::Replace => {
                    stats.removed += old_range.len() as u64;
                    stats.added += new_range.len() as u64;
                }
            }
        }
        stats
    }

    /// `added + removed`: what budgets and `diff_ratio` count.
    pub fn changed(&self) -> u64 {
        self.added + self.removed
    }

    /// `min(1, lines_changed / max_lines)`.
    pub fn diff_ratio(&self, max_lines: u64) -> f64 {
        crate::score::diff_ratio(self.changed(), max_lines)
    }

    /// Adds another patch's stats (for proposals carrying several).
    pub fn plus(self, other: LineStats) -> LineStats {
        LineStats { added: self.added + other.added, removed: self.removed + other.removed }
    }
}

/// The new contents of the target after `patch`, given its current bytes
/// (`None` when absent). Does not touch the disk.
pub fn resolve(patch: &Patch, current: Option<&[u8]>) -> Result<String, PatchError> {
    let path = patch.path();
    let text = |bytes: &[u8]| {
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| PatchError::NotUtf8 { path: path.to_string() })
    };
    match (patch, current) {
        (Patch::Create { .. }, Some(_)) => Err(PatchError::TargetExists { path: path.to_string() }),
        (Patch::Create { content, .. }, None) => Ok(content.clone()),
        (_, None) => Err(PatchError::TargetMissing { path: path.to_string(), op: patch.op().as_str() }),
        (Patch::Append { content, .. }, Some(bytes)) => {
            let mut text = text(bytes)?;
            // An append always starts on a new line: never glued onto the
            // file's last line when that line has no newline yet.
            if !text.is_empty() && !text.ends_with('\n') && !content.is_empty() {
                text.push('\n');
            }
            text.push_str(content);
            Ok(text)
        }
        (Patch::Replace { old: None, new, .. }, Some(bytes)) => {
            text(bytes)?;
            Ok(new.clone())
        }
        (Patch::Replace { old: Some(old), new, .. }, Some(bytes)) => {
            let text = text(bytes)?;
            let Some(at) = text.find(old.as_str()) else {
                return Err(PatchError::OldTextNotFound { path: path.to_string() });
            };
            // "Exactly once" counts overlapping occurrences too: in "aaa",
            // "aa" occurs twice.
            let next = at + text[at..].chars().next().map_or(1, char::len_utf8);
            if text[next..].contains(old.as_str()) {
                return Err(PatchError::OldTextAmbiguous { path: path.to_string() });
            }
            let mut out = String::with_capacity(text.len() - old.len() + new.len());
            out.push_str(&text[..at]);
            out.push_str(new);
            out.push_str(&text[at + old.len()..]);
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propose::Proposal;
    use serde_json::json;

    fn bad(text: &str) -> String {
        match Proposal::parse(text) {
            Err(PatchError::BadPatch { message, .. }) => message,
            other => panic!("expected BAD_PATCH for {text}, got {other:?}"),
        }
    }

    #[test]
    fn the_four_forms_parse() {
        let p = Proposal::parse(r#"{"op":"create","path":"docs/a.md","content":"x\n"}"#).unwrap();
        assert_eq!(p.single(), Some(&Patch::Create { path: "docs/a.md".into(), content: "x\n".into() }));
        assert_eq!(p.rationale, "");
        let p = Proposal::parse(r#"{"op":"append","path":"a.md","content":"y"}"#).unwrap();
        assert_eq!(p.single().unwrap().op(), Op::Append);
        let p = Proposal::parse(r#"{"op":"replace","path":"a.md","old":"a","new":"b"}"#).unwrap();
        assert_eq!(p.single(), Some(&Patch::Replace { path: "a.md".into(), old: Some("a".into()), new: "b".into() }));
        let p = Proposal::parse(r#"{"op":"replace","path":"a.md","new":"whole"}"#).unwrap();
        assert_eq!(p.single(), Some(&Patch::Replace { path: "a.md".into(), old: None, new: "whole".into() }));
    }

    #[test]
    fn a_full_proposal_parses() {
        let p = Proposal::parse(
            r#"{"rationale":"why","patch":{"op":"append","path":"a.md","content":"z"},
                "next_steps":["more"],"focus":"intent","evidence":["pain:1"]}"#,
        )
        .unwrap();
        assert_eq!(p.rationale, "why");
        assert_eq!(p.next_steps, vec!["more"]);
        assert_eq!(p.focus.as_deref(), Some("intent"));
        assert_eq!(p.evidence, vec!["pain:1"]);
        let q = Proposal::parse(r#"{"rationale":"why","patch":{"op":"append","path":"a.md","content":"z"}}"#).unwrap();
        assert!(q.next_steps.is_empty() && q.focus.is_none() && q.evidence.is_empty());
    }

    #[test]
    fn malformed_input_names_the_field() {
        assert_eq!(
            bad(r#"{"op":"create","path":"a","content":"x","mode":"755"}"#),
            "unknown field \"mode\" (expected op, path, content)"
        );
        assert_eq!(bad(r#"{"op":"create","path":"a"}"#), "content is missing");
        assert_eq!(bad(r#"{"op":"create","path":3,"content":"x"}"#), "path must be a string, found a number");
        assert_eq!(
            bad(r#"{"op":"delete","path":"a"}"#),
            "op is \"delete\"; expected \"create\", \"append\" or \"replace\""
        );
        assert_eq!(
            bad(r#"{"op":"create","path":"a","content":"x","old":"y"}"#),
            "old does not apply to op \"create\" (its fields: op, path, content)"
        );
        assert_eq!(
            bad(r#"{"op":"replace","path":"a","old":"","new":"b"}"#),
            "old is empty; omit it to replace the whole file"
        );
        assert_eq!(
            bad(r#"{"op":"replace","path":"a","old":null,"new":"b"}"#),
            "old must be a string, found null (omit it to replace the whole file)"
        );
        assert_eq!(bad(r#"{"rationale":"r"}"#), "patch is missing");
        assert_eq!(bad(r#"{"patch":{"op":"append","path":"a","content":"x"}}"#), "rationale is missing");
        assert_eq!(bad(r#"{"rationale":"r","patch":{"op":"append","path":"a"}}"#), "patch.content is missing");
        assert_eq!(
            bad(r#"{"rationale":"r","patch":{"op":"append","path":"a","content":"x"},"next_steps":"x"}"#),
            "next_steps must be an array of strings, found a string"
        );
        assert_eq!(
            bad(r#"{"rationale":"r","patch":{"op":"append","path":"a","content":"x"},"evidence":[1]}"#),
            "evidence[0] must be a string, found a number"
        );
        assert!(bad(r#"{"rationale":"r","patches":[]}"#).contains("a proposal carries its one patch in `patch`"));
        assert!(bad(r#"{"rationale":"r","patch":[]}"#).contains("empty array"));
        assert_eq!(bad("42"), "expected a JSON object (a proposal or a patch), found a number");
        assert!(bad("{").starts_with("the proposal is not valid JSON"));
        assert!(bad(r#"{"op":"create","path":"a","path":"b","content":"x"}"#).contains("duplicate key \"path\""));
    }

    #[test]
    fn several_patches_parse_for_gate1_to_object() {
        let p = Proposal::parse(
            r#"{"rationale":"r","patch":[{"op":"append","path":"a.md","content":"x"},{"op":"append","path":"b.md","content":"y"}]}"#,
        )
        .unwrap();
        assert_eq!(p.patches.len(), 2);
        assert!(p.single().is_none());
        assert_eq!(p.paths(), vec!["a.md", "b.md"]);
        assert!(p.to_value()["patch"].is_array());
    }

    #[test]
    fn the_packet_hash_covers_proposal_base_and_intent() {
        let p = Proposal::parse(r#"{"op":"append","path":"a.md","content":"x"}"#).unwrap();
        let h = p.packet(Some("abc"), "i");
        let expected = crate::canonical::hash(&json!({
            "base": "abc",
            "intent": "i",
            "proposal": {"rationale": "", "patch": {"op":"append","path":"a.md","content":"x"},
                         "next_steps": [], "focus": null, "evidence": []},
        }));
        assert_eq!(h, expected);
        assert_ne!(h, p.packet(None, "i"));
        assert_ne!(h, p.packet(Some("abc"), "j"));
        // Explicit defaults hash like absent fields.
        let q = Proposal::parse(
            r#"{"rationale":"","patch":{"op":"append","path":"a.md","content":"x"},"next_steps":[],"focus":null}"#,
        )
        .unwrap();
        assert_eq!(q.packet(Some("abc"), "i"), h);
    }

    #[test]
    fn line_stats_count_added_and_removed_lines() {
        assert_eq!(LineStats::between("", "a\nb\n"), LineStats { added: 2, removed: 0 });
        assert_eq!(LineStats::between("a\nb\nc\n", "a\nB\nc\n"), LineStats { added: 1, removed: 1 });
        assert_eq!(LineStats::between("a\n", "a\n"), LineStats::default());
        let s = LineStats::between("a\nb\n", "");
        assert_eq!((s.changed(), s.diff_ratio(4)), (2, 0.5));
        assert_eq!(LineStats { added: 200, removed: 0 }.diff_ratio(120), 1.0);
    }

    #[test]
    fn an_append_always_starts_on_a_new_line() {
        let p = Patch::Append { path: "Makefile".into(), content: "more\n".into() };
        assert_eq!(resolve(&p, Some(b"last line")).unwrap(), "last line\nmore\n");
        assert_eq!(resolve(&p, Some(b"last line\n")).unwrap(), "last line\nmore\n");
        assert_eq!(resolve(&p, Some(b"")).unwrap(), "more\n");
    }

    #[test]
    fn resolve_finds_old_text_exactly_once() {
        let rep = |old: &str| Patch::Replace { path: "f".into(), old: Some(old.into()), new: "X".into() };
        assert_eq!(resolve(&rep("b"), Some(b"abc")).unwrap(), "aXc");
        assert!(matches!(resolve(&rep("z"), Some(b"abc")), Err(PatchError::OldTextNotFound { .. })));
        assert!(matches!(resolve(&rep("b"), Some(b"abcb")), Err(PatchError::OldTextAmbiguous { .. })));
        // Overlapping occurrences count.
        assert!(matches!(resolve(&rep("aa"), Some(b"aaa")), Err(PatchError::OldTextAmbiguous { .. })));
        assert!(matches!(resolve(&rep("é"), Some("éé".as_bytes())), Err(PatchError::OldTextAmbiguous { .. })));
        assert!(matches!(resolve(&rep("b"), None), Err(PatchError::TargetMissing { op: "replace", .. })));
        assert!(matches!(resolve(&rep("b"), Some(b"\xff")), Err(PatchError::NotUtf8 { .. })));
        let whole = Patch::Replace { path: "f".into(), old: None, new: "new".into() };
        assert_eq!(resolve(&whole, Some(b"old")).unwrap(), "new");
        let create = Patch::Create { path: "f".into(), content: "c".into() };
        assert!(matches!(resolve(&create, Some(b"")), Err(PatchError::TargetExists { .. })));
        assert_eq!(resolve(&create, None).unwrap(), "c");
        let append = Patch::Append { path: "f".into(), content: "d".into() };
        assert_eq!(resolve(&append, Some(b"c")).unwrap(), "c\nd", "an append starts on a new line");
        assert!(matches!(resolve(&append, None), Err(PatchError::TargetMissing { op: "append", .. })));
    }

    #[test]
    fn long_paths_are_shown_short() {
        let long = "a".repeat(5000);
        let shown = show(&long);
        assert!(shown.len() < 100 && shown.ends_with("(5000 bytes)"), "{shown}");
        assert_eq!(show("a\0b"), "\"a\\0b\"");
    }
}

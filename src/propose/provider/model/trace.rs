//! `RATCHET_MODEL_TRACE=FILE`: every call of the model kinds (a proposal's
//! every try and a critic's) appended to FILE as one JSON line — the step
//! id, the provider, the messages, the schema, the answer's text, why it
//! stopped and its tokens — for finding out why a model answers what it
//! does.
//!
//! A trace is a developer's aid, not a record: it never goes into the log
//! (whose entries carry ids, outcomes, codes and costs, never prompts), and
//! it is never written inside the repository, where a step could commit
//! it or a provider read it back as context. A FILE inside the repository
//! (or a relative one, which would land there) fails the call before it is
//! made, with the reason; a FILE that cannot be written fails it too, so a
//! trace asked for is never silently missing.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The environment variable naming the trace file.
pub const VAR: &str = "RATCHET_MODEL_TRACE";

/// Where to trace for a step in the repository at `root`: `Ok(None)` when
/// no trace was asked for, an error when the file would be inside the
/// repository or is not an absolute path.
pub fn target(root: &Path) -> Result<Option<PathBuf>, String> {
    let Some(raw) = std::env::var_os(VAR).filter(|v| !v.is_empty()) else { return Ok(None) };
    check(root, Path::new(&raw)).map(Some)
}

/// Whether `file` may hold a trace of the repository at `root`.
pub fn check(root: &Path, file: &Path) -> Result<PathBuf, String> {
    if !file.is_absolute() {
        return Err(format!("{VAR}={} is not an absolute path; name a file outside the repository", file.display()));
    }
    // The file may not exist yet: resolve its folder, then add its name.
    let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
        return Err(format!("{VAR}={} names no file", file.display()));
    };
    let dir = dir.canonicalize().map_err(|e| format!("{VAR}={}: its folder cannot be read ({e})", file.display()))?;
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let resolved = dir.join(name);
    if resolved.starts_with(&root) {
        return Err(format!(
            "{VAR}={} is inside the repository ({}); a trace holds prompts and answers and must live outside it",
            file.display(),
            root.display()
        ));
    }
    Ok(resolved)
}

/// Appends one record to the trace as a single line.
pub fn append(file: &Path, record: &Value) -> Result<(), String> {
    let mut line = record.to_string();
    line.push('\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| format!("{VAR}={}: cannot append the trace ({e})", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_lives_outside_the_repository_at_an_absolute_path() {
        let base = tempfile::tempdir().unwrap();
        let repo = base.path().join("repo");
        std::fs::create_dir_all(repo.join("docs")).unwrap();
        let outside = base.path().join("trace.jsonl");
        assert_eq!(check(&repo, &outside).unwrap(), base.path().canonicalize().unwrap().join("trace.jsonl"));
        for inside in [repo.join("trace.jsonl"), repo.join("docs/t.jsonl"), repo.join("docs/../t.jsonl")] {
            let e = check(&repo, &inside).unwrap_err();
            assert!(e.contains("inside the repository"), "{e}");
        }
        assert!(check(&repo, Path::new("trace.jsonl")).unwrap_err().contains("not an absolute path"));
        assert!(check(&repo, &base.path().join("missing/t.jsonl")).unwrap_err().contains("cannot be read"));
    }

    #[test]
    fn records_are_appended_one_line_each() {
        let base = tempfile::tempdir().unwrap();
        let file = base.path().join("t.jsonl");
        append(&file, &serde_json::json!({"a": "x\ny"})).unwrap();
        append(&file, &serde_json::json!({"b": 2})).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines, [serde_json::json!({"a": "x\ny"}), serde_json::json!({"b": 2})]);
    }
}

//! The checks' output: one file per run under `logs/runs/` (`s7.log`,
//! `s7-revert.log`), written by the checks themselves.
//!
//! Whatever the checks print is hostile (they run a patch a provider
//! wrote), and so is the file: the checks could have replaced it with a
//! symlink or a huge file. [`tail`] reads only a file that is a regular
//! file under `logs/runs/` (never through a symlink), at most the last
//! [`TAIL_BYTES`] of it, and returns the lines raw: whoever shows them
//! makes them safe for its terminal ([`crate::text`]).

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;

use crate::workspace::Workspace;

/// The most bytes read from the end of a checks log.
pub const TAIL_BYTES: u64 = 64 * 1024;

/// Why a checks log cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RunsError {
    #[error("{path} is not a file under logs/runs/")]
    NotARunLog { path: String },
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
}

impl crate::error::Coded for RunsError {
    fn code(&self) -> &'static str {
        match self {
            RunsError::NotARunLog { .. } => "NOT_A_RUN_LOG",
            RunsError::Read { .. } => "RUN_LOG_UNREADABLE",
        }
    }
    fn hint(&self) -> Option<String> {
        Some(match self {
            RunsError::NotARunLog { .. } => "the entry names a checks log outside logs/runs/; run `ratchet log verify`".into(),
            RunsError::Read { .. } => {
                "the checks log was removed or replaced (only the entry keeps the exit status); run the checks again by hand to see their output".into()
            }
        })
    }
}

/// The last `n` lines (at most) of the checks log `rel` (repository-relative,
/// as an entry's `apply.checks.log` names it).
pub fn tail(ws: &Workspace, rel: &str, n: usize) -> Result<Vec<String>, RunsError> {
    let runs = ws.rel("logs/runs/");
    let name = rel.strip_prefix(&runs).unwrap_or("");
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(RunsError::NotARunLog { path: rel.to_string() });
    }
    let path = ws.runs_dir().join(name);
    let read = |e| RunsError::Read { path: rel.to_string(), source: e };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .map_err(read)?;
    let meta = file.metadata().map_err(read)?;
    if !meta.is_file() {
        return Err(RunsError::NotARunLog { path: rel.to_string() });
    }
    let start = meta.len().saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start)).map_err(read)?;
    let mut bytes = Vec::new();
    file.take(TAIL_BYTES).read_to_end(&mut bytes).map_err(read)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    // A cut first line is a fragment: drop it.
    if start > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    let from = lines.len().saturating_sub(n);
    Ok(lines[from..].iter().map(|l| l.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws() -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::at(dir.path().to_path_buf(), "");
        std::fs::create_dir_all(ws.runs_dir()).unwrap();
        (dir, ws)
    }

    #[test]
    fn the_last_lines_of_a_run_log() {
        let (_d, ws) = ws();
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        std::fs::write(ws.runs_dir().join("s2.log"), text).unwrap();
        assert_eq!(tail(&ws, "logs/runs/s2.log", 3).unwrap(), ["line 28", "line 29", "line 30"]);
        assert_eq!(tail(&ws, "logs/runs/s2.log", 100).unwrap().len(), 30);
    }

    #[test]
    fn a_huge_log_is_read_from_its_end_only() {
        let (_d, ws) = ws();
        let mut text = "x".repeat(10 * TAIL_BYTES as usize);
        text.push_str("\nlast\n");
        std::fs::write(ws.runs_dir().join("s2.log"), text).unwrap();
        assert_eq!(tail(&ws, "logs/runs/s2.log", 5).unwrap(), ["last"], "the cut fragment is dropped");
    }

    #[test]
    fn paths_outside_logs_runs_and_symlinks_are_refused() {
        let (_d, ws) = ws();
        std::fs::write(ws.root().join("secret"), "key\n").unwrap();
        std::os::unix::fs::symlink(ws.root().join("secret"), ws.runs_dir().join("s3.log")).unwrap();
        std::fs::create_dir(ws.runs_dir().join("s4.log")).unwrap();
        for rel in ["secret", "logs/runs/../../secret", "logs/runs/", "config/rails.toml", "logs/runs/s4.log"] {
            assert_eq!(crate::error::Coded::code(&tail(&ws, rel, 5).unwrap_err()), "NOT_A_RUN_LOG", "{rel}");
        }
        assert_eq!(crate::error::Coded::code(&tail(&ws, "logs/runs/s3.log", 5).unwrap_err()), "RUN_LOG_UNREADABLE");
    }
}

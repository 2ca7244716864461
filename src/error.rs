//! The error convention every module follows.
//!
//! Each domain module has its own `thiserror` enum with situational variants.
//! Every variant has a stable code (`RAILS_TAMPERED`, `PATH_NOT_ALLOWED`, ...),
//! a message naming the thing at fault (its `Display`), and a next action.
//! The CLI prints them as `error:` / `hint:` lines (or the JSON shape of
//! seed 004's `actionableErrorShape`); `ratchet serve` prints the same codes.

use std::fmt;

/// How a process ends. The numbers are part of the interface (DESIGN §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Success, including `rejected`, `pending` and `noop` steps.
    Ok = 0,
    /// Any error, and checks that found a problem (`log verify`, `golden check`).
    Error = 1,
    /// The command line itself was wrong.
    Usage = 2,
    /// The watchdog raised an alarm.
    Watchdog = 3,
    /// A protected file differs from `config/rails.lock`.
    RailsTampered = 4,
    /// Another ratchet process holds the workspace lock.
    Locked = 5,
    /// Ctrl-C stopped the command (128 + SIGINT, as a shell reports it).
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An error a user or an agent can meet.
pub trait Coded: std::error::Error {
    /// Stable, upper-snake-case code. Never reworded once released.
    fn code(&self) -> &'static str;
    /// What to do next, as one imperative sentence.
    fn hint(&self) -> Option<String>;
    /// Every next action, when there is more than one.
    fn hints(&self) -> Vec<String> {
        self.hint().into_iter().collect()
    }
    /// The process exit status this error maps to.
    fn exit(&self) -> Exit {
        Exit::Error
    }
    /// The source text at fault, rendered with its file, line and a mark
    /// (a malformed `config/rails.toml`), when there is one.
    fn snippet(&self) -> Option<String> {
        None
    }
}

/// A fully rendered error: what the CLI prints and the API returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub code: &'static str,
    pub message: String,
    /// The errors underneath, outermost first (`caused by:` lines).
    pub causes: Vec<String>,
    /// What to do next, most useful first (`hint:` lines; the first is the
    /// API's `nextAction`).
    pub hints: Vec<String>,
    pub exit: Exit,
    /// Structured particulars (the files that changed, the pairs that flipped).
    pub details: Option<serde_json::Value>,
    /// The source text at fault, with its line and a mark (printed under
    /// the `error:` line; `snippet` in JSON).
    pub snippet: Option<String>,
}

impl Report {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Report {
            code,
            message: message.into(),
            causes: Vec::new(),
            hints: Vec::new(),
            exit: Exit::Error,
            details: None,
            snippet: None,
        }
    }

    /// The first next action.
    pub fn hint(&self) -> Option<&str> {
        self.hints.first().map(String::as_str)
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Adds a next action (after any already there).
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    pub fn with_exit(mut self, exit: Exit) -> Self {
        self.exit = exit;
        self
    }

    /// Builds a report from any coded error, keeping its cause chain (each
    /// cause that the message does not already say).
    pub fn from_coded<E: Coded + ?Sized>(err: &E) -> Self {
        let message = err.to_string();
        let mut causes: Vec<String> = Vec::new();
        let mut source = err.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) && !causes.iter().any(|c| c.contains(&text)) {
                causes.push(text);
            }
            source = cause.source();
        }
        Report {
            code: err.code(),
            message,
            causes,
            hints: err.hints(),
            exit: err.exit(),
            details: None,
            snippet: err.snippet(),
        }
    }

    /// The short `error` field of the actionable error shape, derived from
    /// the code: `RAILS_TAMPERED` → `Rails tampered`.
    pub fn title(&self) -> String {
        let lower = self.code.replace('_', " ").to_lowercase();
        let mut chars = lower.chars();
        match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => String::new(),
        }
    }

    /// `{"error","code","message","nextAction"}`: seed 004's actionable error shape.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "error": self.title(),
            "code": self.code,
            "message": self.message,
        });
        if let Some(hint) = self.hint() {
            v["nextAction"] = serde_json::Value::String(hint.to_string());
        }
        if self.hints.len() > 1 {
            v["hints"] = serde_json::json!(self.hints);
        }
        if !self.causes.is_empty() {
            v["causes"] = serde_json::json!(self.causes);
        }
        if let Some(details) = &self.details {
            v["details"] = details.clone();
        }
        if let Some(snippet) = &self.snippet {
            v["snippet"] = serde_json::Value::String(snippet.clone());
        }
        v
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Report {}

impl Coded for Report {
    fn code(&self) -> &'static str {
        self.code
    }
    fn hint(&self) -> Option<String> {
        self.hints.first().cloned()
    }
    fn hints(&self) -> Vec<String> {
        self.hints.clone()
    }
    fn exit(&self) -> Exit {
        self.exit
    }
    fn snippet(&self) -> Option<String> {
        self.snippet.clone()
    }
}

/// Errors of plain file I/O, named by the path that failed.
#[derive(Debug, thiserror::Error)]
#[error("{action} {path}: {source}")]
pub struct IoError {
    pub action: &'static str,
    pub path: std::path::PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    pub fn new(action: &'static str, path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        IoError { action, path: path.into(), source }
    }
}

impl Coded for IoError {
    fn code(&self) -> &'static str {
        "IO_ERROR"
    }
    fn hint(&self) -> Option<String> {
        Some(format!("check that {} exists and is readable and writable by you", self.path.display()))
    }
}

/// A short hand for mapping `std::io::Result` into [`IoError`].
pub trait IoContext<T> {
    fn io(self, action: &'static str, path: impl AsRef<std::path::Path>) -> Result<T, IoError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io(self, action: &'static str, path: impl AsRef<std::path::Path>) -> Result<T, IoError> {
        self.map_err(|e| IoError::new(action, path.as_ref(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_and_several_hints_are_kept() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot load the rails")]
        struct Outer(#[source] std::io::Error);
        impl Coded for Outer {
            fn code(&self) -> &'static str {
                "RAILS_UNREADABLE"
            }
            fn hint(&self) -> Option<String> {
                Some("check the file".into())
            }
            fn hints(&self) -> Vec<String> {
                vec!["check the file".into(), "or run `ratchet init`".into()]
            }
        }
        let r = Report::from_coded(&Outer(std::io::Error::other("permission denied")));
        assert_eq!(r.causes, ["permission denied"]);
        assert_eq!(r.hints.len(), 2);
        let j = r.to_json();
        assert_eq!(j["nextAction"], "check the file");
        assert_eq!(j["causes"][0], "permission denied");
    }

    #[test]
    fn title_is_derived_from_code() {
        let r = Report::new("RAILS_TAMPERED", "x");
        assert_eq!(r.title(), "Rails tampered");
        let j = r.with_hint("run ratchet rails diff").to_json();
        assert_eq!(j["nextAction"], "run ratchet rails diff");
        assert_eq!(j["error"], "Rails tampered");
    }
}

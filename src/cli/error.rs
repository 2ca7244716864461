//! The edge where every error becomes words and an exit code.

use crate::error::{Coded, Exit, Report};

/// What a command returns when it fails. Any coded domain error converts.
#[derive(Debug)]
pub struct CommandError(pub Report);

impl<E: Coded> From<E> for CommandError {
    fn from(err: E) -> Self {
        CommandError(Report::from_coded(&err))
    }
}

impl CommandError {
    pub fn new(code: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        CommandError(Report::new(code, message).with_hint(hint))
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.0.details = Some(details);
        self
    }

    pub fn with_exit(mut self, exit: Exit) -> Self {
        self.0.exit = exit;
        self
    }
}

/// What a successful command asks the process to exit with: most succeed
/// with 0, but checks that find problems (`log verify`, `golden check`,
/// `patch check`) report them and exit non-zero without being errors.
pub type CommandResult = Result<Exit, CommandError>;

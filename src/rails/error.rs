//! What is wrong with a `rails.toml`, and where: [`RailsError`].
//!
//! Every error but [`RailsError::Read`] names the file and the line, and
//! carries the offending line with the part at fault marked ([`At`]).
//! [`RailsError::snippet`] renders it the way rustc and cargo do (through
//! `annotate-snippets`, the crate they use):
//!
//! ```text
//!   --> config/rails.toml:18:1
//!    |
//! 18 | max_line = 120
//!    | ^^^^^^^^ unknown key
//! ```
//!
//! The rails are written by a human, but a hand edit is exactly the case
//! this reports, so the line is shown through [`crate::text::show`]: a
//! control character in it reaches the terminal as a visible escape.

use std::ops::Range;
use std::path::PathBuf;

use crate::error::Coded;

/// The offending line of the file and the part of it at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct At {
    /// 1-based.
    pub line: usize,
    /// The line as written, without its line end.
    pub text: String,
    /// Byte offsets of the part at fault within `text`.
    pub columns: Range<usize>,
    /// A few words said under the mark.
    pub label: String,
}

impl At {
    /// The line of `text` holding byte `span.start`, with the part of
    /// `span` that lies on it marked.
    pub fn of(text: &str, span: Range<usize>, label: impl Into<String>) -> At {
        let start = floor_char(text, span.start.min(text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line_text = text[line_start..line_end].trim_end_matches('\r');
        let end = span.end.clamp(start, line_start + line_text.len());
        let end = floor_char(text, end);
        At {
            line: text[..start].bytes().filter(|&b| b == b'\n').count() + 1,
            text: line_text.to_string(),
            columns: start - line_start..end - line_start,
            label: label.into(),
        }
    }
}

fn floor_char(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[derive(Debug, thiserror::Error)]
pub enum RailsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{file}:{line}: unknown key `{key}`{}", section_words(section))]
    UnknownKey {
        file: String,
        line: usize,
        key: String,
        /// The table the key is in (`budget`, `providers.self`), empty at the top.
        section: String,
        suggestion: Option<String>,
        /// The keys that table takes.
        expected: Vec<String>,
        at: Option<At>,
    },
    #[error("{file}:{line}: {message}")]
    Syntax { file: String, line: usize, message: String, at: Option<At> },
    #[error("{file}:{line}: {message}")]
    Invalid { file: String, line: usize, message: String, hint: String, at: Option<At> },
    /// `[checks] env` names a variable that looks like it holds a secret.
    #[error("{file}:{line}: [checks] env passes {name:?}, which looks like a secret, to the checks")]
    SecretToChecks { file: String, line: usize, name: String, at: Option<At> },
    /// `[sandbox] writable` names a path a child must never write.
    #[error("{file}:{line}: [sandbox] writable {path:?} {reason}")]
    Unwritable { file: String, line: usize, path: String, reason: String, at: Option<At> },
}

fn section_words(section: &str) -> String {
    if section.is_empty() { String::new() } else { format!(" in [{section}]") }
}

impl RailsError {
    /// Names the file the error is in (the parser only sees text).
    pub fn in_file(mut self, name: &str) -> RailsError {
        match &mut self {
            RailsError::UnknownKey { file, .. }
            | RailsError::Syntax { file, .. }
            | RailsError::Invalid { file, .. }
            | RailsError::SecretToChecks { file, .. }
            | RailsError::Unwritable { file, .. } => *file = name.to_string(),
            RailsError::Read { .. } => {}
        }
        self
    }

    /// The file named in the error (`config/rails.toml` unless renamed).
    pub fn file(&self) -> Option<&str> {
        match self {
            RailsError::UnknownKey { file, .. }
            | RailsError::Syntax { file, .. }
            | RailsError::Invalid { file, .. }
            | RailsError::SecretToChecks { file, .. }
            | RailsError::Unwritable { file, .. } => Some(file),
            RailsError::Read { .. } => None,
        }
    }

    fn at(&self) -> Option<&At> {
        match self {
            RailsError::UnknownKey { at, .. }
            | RailsError::Syntax { at, .. }
            | RailsError::Invalid { at, .. }
            | RailsError::SecretToChecks { at, .. }
            | RailsError::Unwritable { at, .. } => at.as_ref(),
            RailsError::Read { .. } => None,
        }
    }

    /// The offending line, rendered with its file, number and mark, or
    /// `None` when the error has no single line to show.
    pub fn snippet(&self) -> Option<String> {
        use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
        let (file, at) = (self.file()?, self.at()?);
        let (line, columns) = visible_line(&at.text, at.columns.clone());
        let label = crate::text::show(&at.label);
        let report = &[Group::with_level(Level::ERROR).element(
            Snippet::source(line.as_str())
                .line_start(at.line)
                .path(file)
                .annotation(AnnotationKind::Primary.span(columns).label(label.as_str())),
        )];
        Some(Renderer::plain().render(report).trim_end().to_string())
    }
}

/// At most this many bytes of a line are shown, around the mark.
const SHOWN: usize = 160;

/// `line` with every unsafe character escaped and cut to about [`SHOWN`]
/// bytes around `columns`, and `columns` moved to match.
fn visible_line(line: &str, columns: Range<usize>) -> (String, Range<usize>) {
    let mut out = String::new();
    let (mut start, mut end) = (None, None);
    let from = floor_char(line, columns.start.saturating_sub(SHOWN / 2));
    if from > 0 {
        out.push('…');
    }
    for (i, c) in line[from..].char_indices().map(|(i, c)| (i + from, c)) {
        if i == columns.start {
            start = Some(out.len());
        }
        if i == columns.end {
            end = Some(out.len());
        }
        if out.len() >= SHOWN && i >= columns.end {
            out.push('…');
            break;
        }
        if crate::text::is_unsafe(c) {
            out.push_str(&crate::text::show(&c.to_string()));
        } else {
            out.push(c);
        }
    }
    let start = start.unwrap_or(out.len());
    let end = end.unwrap_or(out.len()).max(start);
    (out, start..end)
}

impl Coded for RailsError {
    fn code(&self) -> &'static str {
        match self {
            RailsError::Read { .. } => "RAILS_UNREADABLE",
            RailsError::UnknownKey { .. } => "RAILS_UNKNOWN_KEY",
            RailsError::Syntax { .. } | RailsError::Invalid { .. } => "RAILS_INVALID",
            RailsError::SecretToChecks { .. } => "RAILS_SECRET_TO_CHECKS",
            RailsError::Unwritable { .. } => "RAILS_UNWRITABLE_PATH",
        }
    }
    fn hint(&self) -> Option<String> {
        Some(match self {
            RailsError::Read { .. } => "run `ratchet init` to write config/rails.toml, or cd into the workspace".into(),
            RailsError::UnknownKey { suggestion: Some(s), .. } => format!("did you mean `{s}`?"),
            RailsError::UnknownKey { expected, .. } if !expected.is_empty() => {
                format!("the keys allowed here are: {}", expected.join(", "))
            }
            RailsError::UnknownKey { .. } => "remove the key; this table takes no keys".into(),
            RailsError::Syntax { .. } => "fix the TOML syntax at that line".into(),
            RailsError::Invalid { hint, .. } => hint.clone(),
            RailsError::SecretToChecks { name, .. } => format!(
                "remove {name:?} from [checks] env: secrets never reach the checks, which run the patch under \
                 test; a provider that needs a key lists it in its own env"
            ),
            RailsError::Unwritable { .. } => "list only build tools' caches (such as \"~/.cache/pip\"); a child \
                 must never write the repository's .git, ratchet's files or the user's secrets"
                .into(),
        })
    }
    fn hints(&self) -> Vec<String> {
        let mut hints: Vec<String> = self.hint().into_iter().collect();
        if let Some(file) = self.file() {
            hints.push(format!("or undo the edit: `git checkout -- {file}` restores the committed rails"));
        }
        hints
    }
    fn snippet(&self) -> Option<String> {
        RailsError::snippet(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_marks_the_span_on_its_line() {
        let text = "a = 1\nmax_line = 120\r\nb = 2\n";
        let at = At::of(text, 6..14, "unknown key");
        assert_eq!((at.line, at.text.as_str(), at.columns.clone()), (2, "max_line = 120", 0..8));
        // A span past the end of the file marks the end of the last line.
        let at = At::of("x = [", 99..120, "here");
        assert_eq!((at.line, at.columns), (1, 5..5));
    }

    #[test]
    fn the_snippet_shows_the_line_and_mark_with_controls_escaped() {
        let text = "[budget]\nmax\x1b[31m_line = 1\n";
        let e = RailsError::Syntax {
            file: "config/rails.toml".into(),
            line: 2,
            message: "m".into(),
            at: Some(At::of(text, 9..22, "here")),
        };
        let s = e.snippet().unwrap();
        assert!(!s.contains('\x1b'), "{s}");
        assert!(s.contains("config/rails.toml:2:1"), "{s}");
        assert!(s.contains("2 | max\\e[31m_line = 1"), "{s}");
        assert!(s.contains("^^^^^^^^^^^^^^ here"), "{s}");
    }

    #[test]
    fn a_long_line_is_cut_around_the_mark() {
        let line = format!("{}bad{}", "x".repeat(1000), "y".repeat(1000));
        let (shown, cols) = visible_line(&line, 1000..1003);
        assert!(shown.len() < 400, "{}", shown.len());
        assert_eq!(&shown[cols], "bad");
    }
}

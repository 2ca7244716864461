//! The one output channel: data on stdout, narration on stderr, `--json` for agents.

use std::io::{IsTerminal, Write};

use crate::error::Report;

/// When to colour output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

pub struct Ui {
    json: bool,
    color: bool,
    quiet: bool,
}

/// ANSI styles used by ratchet's output; all of it reads without colour.
#[derive(Clone, Copy, Debug)]
pub enum Style {
    Bold,
    Dim,
    Green,
    Red,
    Yellow,
    Cyan,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Bold => "1",
            Style::Dim => "2",
            Style::Green => "32",
            Style::Red => "31",
            Style::Yellow => "33",
            Style::Cyan => "36",
        }
    }
}

impl Ui {
    pub fn new(json: bool, color: ColorChoice, quiet: bool) -> Ui {
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal(),
        };
        Ui { json, color, quiet }
    }

    /// Whether the caller asked for JSON on stdout.
    pub fn json(&self) -> bool {
        self.json
    }

    /// Whether a human is at a terminal (stdin and stderr both terminals).
    pub fn interactive(&self) -> bool {
        std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
    }

    pub fn color(&self) -> bool {
        self.color
    }

    /// Whether `--quiet` was given.
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// `text` in `style` when colour is on.
    pub fn paint(&self, style: Style, text: &str) -> String {
        if self.color { format!("\x1b[{}m{}\x1b[0m", style.code(), text) } else { text.to_string() }
    }

    /// One line of data on stdout.
    pub fn data(&self, line: impl AsRef<str>) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", line.as_ref());
    }

    /// Data on stdout, exactly as given.
    pub fn data_raw(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// One pretty JSON document on stdout.
    pub fn emit_json(&self, value: &serde_json::Value) {
        let text = serde_json::to_string_pretty(value).expect("a JSON value always serialises");
        self.data(text);
    }

    /// Narration on stderr (suppressed by `--quiet`).
    pub fn note(&self, line: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", line.as_ref());
        }
    }

    /// A warning on stderr (never suppressed).
    pub fn warn(&self, line: impl AsRef<str>) {
        eprintln!("{} {}", self.paint(Style::Yellow, "warning:"), line.as_ref());
    }

    /// An error: `error:` / `hint:` lines on stderr, or the JSON shape on stdout.
    pub fn error(&self, report: &Report) {
        if self.json {
            self.emit_json(&report.to_json());
            return;
        }
        eprintln!("{} {} [{}]", self.paint(Style::Red, "error:"), report.message, report.code);
        if let Some(snippet) = &report.snippet {
            eprintln!("{snippet}");
        }
        for cause in &report.causes {
            eprintln!("{} {cause}", self.paint(Style::Dim, "caused by:"));
        }
        for hint in &report.hints {
            eprintln!("{} {}", self.paint(Style::Cyan, "hint:"), hint);
        }
    }
}

/// A count with its noun, singular or plural: "1 entry", "3 entries".
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A duration as a person says it: "under 1 s", "12 s", "10 min", "2.5 h".
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 1.0 {
        "under 1 s".to_string()
    } else if secs < 60.0 {
        format!("{} s", secs.round())
    } else if secs < 3600.0 {
        format!("{} min", (secs / 60.0).round())
    } else {
        let h = secs / 3600.0;
        if h < 10.0 { format!("{:.1} h", h) } else { format!("{} h", h.round()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_durations_read_naturally() {
        assert_eq!(count(1, "entry", "entries"), "1 entry");
        assert_eq!(
            (count(0, "entry", "entries"), count(2, "entry", "entries")),
            ("0 entries".into(), "2 entries".into())
        );
        assert_eq!(duration(0.008), "under 1 s");
        assert_eq!(duration(12.4), "12 s");
        assert_eq!(duration(600.0), "10 min");
        assert_eq!(duration(59.6), "60 s");
        assert_eq!(duration(9000.0), "2.5 h");
        assert_eq!(duration(36_000.0 * 2.0), "20 h");
        assert_eq!(duration(f64::NAN), "under 1 s");
    }
}

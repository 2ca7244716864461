//! Rendering text diffs for people.
//!
//! Every line is shown through [`crate::text::visible`]: a provider's
//! control sequences, carriage returns, bidi overrides and invisible
//! characters appear as visible escapes, and a line that held one is
//! marked with `!` after its sign, so a human can never be shown one
//! thing while the file holds another. ratchet's own colours stay.

use similar::{ChangeTag, TextDiff};

use crate::cli::{Style, Ui};
use crate::text::{Keep, visible};

/// The marker after the sign of a line that held unsafe characters.
pub const MARK: &str = "!";

/// A unified diff of `old` → `new`, coloured when the terminal allows.
pub fn unified(ui: &Ui, old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    let diff = TextDiff::from_lines(old, new);
    let mut out = String::new();
    let names = format!("--- {}\n+++ {}", crate::text::show(old_name), crate::text::show(new_name));
    out.push_str(&ui.paint(Style::Bold, &names));
    out.push('\n');
    let mut marked = 0;
    for group in diff.grouped_ops(3) {
        let (first, last) = (&group[0], &group[group.len() - 1]);
        let (o, n) = (first.old_range().start, first.new_range().start);
        let (ol, nl) = (last.old_range().end - o, last.new_range().end - n);
        out.push_str(&ui.paint(Style::Cyan, &format!("@@ -{},{} +{},{} @@", o + 1, ol, n + 1, nl)));
        out.push('\n');
        for op in &group {
            for change in diff.iter_changes(op) {
                let (sign, style) = match change.tag() {
                    ChangeTag::Delete => ("-", Some(Style::Red)),
                    ChangeTag::Insert => ("+", Some(Style::Green)),
                    ChangeTag::Equal => (" ", None),
                };
                let value = change.value();
                let (body, newline) = match value.strip_suffix('\n') {
                    Some(b) => (b, true),
                    None => (value, false),
                };
                // The line end was taken off above; a tab stays a tab.
                let (shown, unsafe_found) = visible(body, Keep::Lines);
                let mark = if unsafe_found {
                    marked += 1;
                    MARK
                } else {
                    ""
                };
                let line = format!("{sign}{mark}{shown}");
                match style {
                    Some(s) => out.push_str(&ui.paint(s, &line)),
                    None => out.push_str(&line),
                }
                out.push('\n');
                if !newline {
                    out.push_str("\\ No newline at end of file\n");
                }
            }
        }
    }
    if marked > 0 {
        out.push_str(&ui.paint(
            Style::Yellow,
            &format!(
                "{marked} line(s) marked {MARK} hold control, bidi or invisible characters, shown as escapes (\\e, \\r, \\u{{202e}}, ...)\n"
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ColorChoice;

    #[test]
    fn a_line_that_hides_itself_is_shown_and_marked() {
        let ui = Ui::new(false, ColorChoice::Never, false);
        // The new line moves the cursor up and erases the line above: at a
        // raw terminal the reviewer would not see `evil()`.
        let d = unified(&ui, "a\n", "a\nevil()\x1b[1A\x1b[2K\r\n", "a/x", "b/x");
        assert!(d.contains("+!evil()\\e[1A\\e[2K\\r\n"), "{d}");
        assert!(!d.contains('\x1b'), "no raw escape reaches the terminal: {d:?}");
        assert!(d.contains("1 line(s) marked !"));
        let clean = unified(&ui, "a\n", "a\tb\n", "a/x", "b/x");
        assert!(clean.contains("+a\tb\n") && !clean.contains("marked"), "{clean}");
    }
}

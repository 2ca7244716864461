//! Rendering text diffs for people.

use similar::{ChangeTag, TextDiff};

use crate::cli::{Style, Ui};

/// A unified diff of `old` → `new`, coloured when the terminal allows.
pub fn unified(ui: &Ui, old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    let diff = TextDiff::from_lines(old, new);
    let mut out = String::new();
    out.push_str(&ui.paint(Style::Bold, &format!("--- {old_name}\n+++ {new_name}")));
    out.push('\n');
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
                let mut line = format!("{sign}{}", change.value());
                if !line.ends_with('\n') {
                    line.push_str("\n\\ No newline at end of file\n");
                }
                match style {
                    Some(s) => {
                        let (body, nl) = line.split_at(line.len() - 1);
                        out.push_str(&ui.paint(s, body));
                        out.push_str(nl);
                    }
                    None => out.push_str(&line),
                }
            }
        }
    }
    out
}

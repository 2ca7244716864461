//! Proofreading prose one passage at a time, moving on through the docs.
//!
//! A weak local model given a whole file answers "nothing to change" (the
//! benchmark's 23 noops of 24 steps): its attention spreads over the file,
//! and a defect in the third paragraph is never looked at. So a prose task
//! shows the model one **passage** a step: a section's heading with the
//! paragraphs and lists under it, cut at about [`MAX_PASSAGE_BYTES`] (a
//! long section is cut into several passages, each shown with its
//! section's heading as context).
//!
//! **Which passage.** Every passage the provider is shown is recorded in the
//! step entry ([`crate::record::Passage`]: path, lines, SHA-256 of its
//! text). The next step goes on from the last one shown, in path and line
//! order, to the first passage whose text was not shown in the history
//! kept (the latest [`crate::history::KEEP`] steps at least), wrapping
//! around at the end of the docs. So the loop covers every passage before
//! it reads one again, a passage whose text changed (a fix merged, a human
//! edit) is new and is read again when the rotation comes to it, and the
//! choice is a pure function of the files and the log: the same log, the
//! same passage.

use sha2::{Digest, Sha256};

use super::prompt::{Span, SpanKind, spans};
use crate::record::Passage;

/// A passage is cut after the span that takes it past this many bytes.
pub const MAX_PASSAGE_BYTES: usize = 600;

/// One passage of a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    pub path: String,
    /// The file's lines `start..end` (0-based, end exclusive).
    pub start: usize,
    pub end: usize,
    /// The spans of the passage (the file's spans `first..last`).
    pub spans: Vec<Span>,
    /// The section's heading when the passage starts below it (context,
    /// shown but not part of the passage).
    pub heading: Option<String>,
    /// The first 16 hex digits of the SHA-256 of the passage's text.
    pub sha256: String,
}

impl Unit {
    /// What the log records of this passage.
    pub fn record(&self) -> Passage {
        Passage {
            path: self.path.clone(),
            lines: [self.start as u64 + 1, self.end as u64],
            sha256: self.sha256.clone(),
        }
    }

    /// The passage's text: its lines as in the file, joined by `\n`.
    pub fn text<'a>(&self, file: &'a str) -> Vec<&'a str> {
        file.lines().skip(self.start).take(self.end - self.start).collect()
    }
}

/// The first 16 hex digits of the SHA-256 of `text`.
pub fn digest(text: &str) -> String {
    let d = Sha256::digest(text.as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Cuts a prose file into passages. A passage holds at least one span a
/// prose task may change (prose, a list or a heading); fenced code and
/// directives go with the passage they sit in, as context.
pub fn passages(path: &str, text: &str) -> Vec<Unit> {
    let lines: Vec<&str> = text.lines().collect();
    let all = spans(path, text);
    let size = |s: &Span| lines[s.start..s.end].iter().map(|l| l.len() + 1).sum::<usize>();
    let mut out = Vec::new();
    let mut current: Vec<Span> = Vec::new();
    let mut bytes = 0;
    let mut heading: Option<String> = None;
    let mut heading_for_next: Option<String> = None;
    let has_body = |spans: &[Span]| spans.iter().any(|s| s.kind != SpanKind::Heading);
    let flush = |current: &mut Vec<Span>, heading: &Option<String>, out: &mut Vec<Unit>| {
        if current.iter().any(|s| matches!(s.kind, SpanKind::Prose | SpanKind::List | SpanKind::Heading)) {
            let (start, end) = (current[0].start, current[current.len() - 1].end);
            let body = lines[start..end].join("\n");
            out.push(Unit {
                path: path.to_string(),
                start,
                end,
                spans: std::mem::take(current),
                heading: heading.clone(),
                sha256: digest(&body),
            });
        }
        current.clear();
    };
    for s in all {
        let is_heading = s.kind == SpanKind::Heading;
        // A heading opens a new passage once the current one has a body;
        // a passage past the size is cut before the next span.
        if (is_heading && has_body(&current)) || (!current.is_empty() && bytes >= MAX_PASSAGE_BYTES) {
            flush(&mut current, &heading, &mut out);
            bytes = 0;
        }
        if is_heading {
            heading_for_next = Some(lines[s.start..s.end].join("\n"));
            if current.is_empty() {
                heading = None;
            }
        } else if current.is_empty() {
            heading = heading_for_next.clone();
        }
        bytes += size(&s);
        current.push(s);
    }
    flush(&mut current, &heading, &mut out);
    out
}

/// The next passage to show: after the last one shown (by path, then
/// line), the first whose text the history has not shown, wrapping around;
/// when every passage was shown, simply the next one. `units` are in path
/// and line order; `reviewed` oldest first.
pub fn next(units: &[Unit], reviewed: &[Passage]) -> Option<usize> {
    if units.is_empty() {
        return None;
    }
    let from = match reviewed.last() {
        None => 0,
        Some(last) => units
            .iter()
            .position(|u| (u.path.as_str(), u.start as u64 + 1) > (last.path.as_str(), last.lines[0]))
            .unwrap_or(0),
    };
    let seen = |u: &Unit| reviewed.iter().any(|r| r.path == u.path && r.sha256 == u.sha256);
    let n = units.len();
    Some((0..n).map(|k| (from + k) % n).find(|&i| !seen(&units[i])).unwrap_or(from))
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "# API\n\n## add(a, b)\n\nThe function `add` adds its two arguments.\n\n## divide(a, b)\n\nReturns a divided by b.\n\n```python\ndivide(1, 2)\n```\n\nSee also add.\n";

    fn shown(path: &str, text: &str, reviewed: &[Passage]) -> Option<Unit> {
        let units = passages(path, text);
        next(&units, reviewed).map(|i| units[i].clone())
    }

    #[test]
    fn a_file_is_cut_into_sections_with_their_headings() {
        let u = passages("docs/api.md", API);
        let texts: Vec<String> = u.iter().map(|u| u.text(API).join("\n")).collect();
        assert_eq!(
            texts,
            [
                "# API\n\n## add(a, b)\n\nThe function `add` adds its two arguments.",
                "## divide(a, b)\n\nReturns a divided by b.\n\n```python\ndivide(1, 2)\n```\n\nSee also add.",
            ],
            "a heading without a body joins the next section; code stays with its passage"
        );
        assert_eq!(u[0].record().lines, [1, 5]);
        assert_eq!(u[1].record().lines, [7, 15]);
        assert!(u.iter().all(|u| u.heading.is_none()), "each starts at its heading");
        assert_eq!(u[0].sha256, digest(&texts[0]));
        assert_eq!(u[0].sha256.len(), 16);
    }

    #[test]
    fn a_long_section_is_cut_and_each_part_keeps_its_heading_as_context() {
        let para = "A sentence of some length that goes on for a while.\n".repeat(4);
        let text = format!("## Long\n\n{para}\n{para}\n{para}\n{para}");
        let u = passages("docs/long.md", &text);
        assert!(u.len() >= 2, "{u:?}");
        assert_eq!(u[0].heading, None);
        assert!(u[1..].iter().all(|x| x.heading.as_deref() == Some("## Long")), "{u:?}");
        assert!(u.iter().all(|x| x.text(&text).join("\n").len() <= MAX_PASSAGE_BYTES + para.len()));
        // Together they cover every line of the file that is not blank.
        let covered: usize = u.iter().map(|x| x.text(&text).iter().filter(|l| !l.is_empty()).count()).sum();
        assert_eq!(covered, text.lines().filter(|l| !l.is_empty()).count());
    }

    #[test]
    fn a_passage_with_nothing_a_prose_task_may_change_is_not_one() {
        let text = "```sh\nmake\n```\n";
        assert!(passages("docs/x.md", text).is_empty());
    }

    #[test]
    fn the_rotation_covers_every_passage_before_reading_one_again() {
        let a = "# A\n\nOne.\n\n# B\n\nTwo.\n";
        let b = "# C\n\nThree.\n";
        let mut units = passages("docs/a.md", a);
        units.extend(passages("docs/b.md", b));
        assert_eq!(units.len(), 3);
        let mut log: Vec<Passage> = Vec::new();
        let mut order = Vec::new();
        for _ in 0..7 {
            let i = next(&units, &log).unwrap();
            order.push(i);
            log.push(units[i].record());
        }
        assert_eq!(order, [0, 1, 2, 0, 1, 2, 0], "round and round, in path and line order");
        assert_eq!(next(&[], &log), None);
    }

    #[test]
    fn a_changed_passage_is_read_again_when_the_rotation_comes_to_it() {
        let before = "# A\n\nOne teh.\n\n# B\n\nTwo.\n\n# C\n\nThree.\n";
        let log: Vec<Passage> = passages("docs/a.md", before).iter().map(Unit::record).collect();
        // Everything read; then A's text is fixed (a merge).
        let after = before.replace("teh", "the");
        let u = shown("docs/a.md", &after, &log).unwrap();
        assert_eq!(u.start, 0, "the changed passage is the only unread one");
        // Read B last, A changed: the rotation goes on after B, to C, then A.
        let mut log2 = log.clone();
        log2.push(log[1].clone());
        let units = passages("docs/a.md", &after);
        let i = next(&units, &log2[..log2.len()]).unwrap();
        assert_eq!(units[i].start, 0, "C was read: on to the changed A (wrapping)");
        let only_a: Vec<Passage> = vec![log[0].clone()];
        assert_eq!(shown("docs/a.md", &after, &only_a).unwrap().start, 4, "after A (by line), B comes next");
    }

    #[test]
    fn a_passage_that_moved_is_still_known_by_its_text() {
        let before = "# A\n\nOne.\n\n# B\n\nTwo.\n";
        let log: Vec<Passage> = passages("docs/a.md", before).iter().map(Unit::record).collect();
        let moved = format!("Intro.\n\n{before}");
        let units = passages("docs/a.md", &moved);
        assert_eq!(units.len(), 3);
        assert_eq!(next(&units, &log), Some(0), "only the new intro is unread");
    }
}

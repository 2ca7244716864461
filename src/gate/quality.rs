//! Gate 1's quality rules: what weak models get wrong, caught
//! deterministically (canonical, like the other rules; DESIGN §8).
//!
//! | evaluator | objects with | when |
//! |---|---|---|
//! | `rule:no_change` | `NO_CHANGE` | the file after the patch is byte-identical to the file before |
//! | `rule:duplicated_text` | `DUPLICATED_TEXT` | added lines repeat the existing text right next to them: a run of 6 or more words, or a whole adjacent line of 3 or more words, that now occurs more often in the file than before (a one-line `old` replaced by the whole sentence it began) |
//! | `rule:prompt_echo` | `PROMPT_ECHO` | added text carries ratchet's own context scaffolding that the file did not hold: a step id with an outcome (`s12 merged`), a focus reference (`pain:…`, `next:s3#0`), a heading of the model prompt, a span marker, or the intent's heading as a heading (never in the heartbeat's journal, which records its focus by design) |
//! | `rule:structure` | `BROKEN_STRUCTURE` | the patch leaves a Markdown code fence unbalanced, breaks a heading or a reStructuredText directive, makes a JSON or TOML file unparseable, or gives a Makefile or config file a line of prose |
//!
//! Each rule looks only at the file before and after the patch (and the
//! intent's text); the same inputs always give the same verdicts. The
//! patch engine adds the fifth guarantee by construction: an `append`
//! always starts on a new line ([`crate::patch::resolve`]).

use std::collections::HashSet;

use similar::{ChangeTag, TextDiff};

use crate::error::Coded;

pub const NO_CHANGE: &str = "rule:no_change";
pub const DUPLICATED_TEXT: &str = "rule:duplicated_text";
pub const PROMPT_ECHO: &str = "rule:prompt_echo";
pub const STRUCTURE: &str = "rule:structure";

/// The quality evaluators, in the order their verdicts come.
pub const EVALUATORS: [&str; 4] = [NO_CHANGE, DUPLICATED_TEXT, PROMPT_ECHO, STRUCTURE];

/// Headings and markers of the model prompt (see `provider::model::prompt`),
/// which a patch must never carry into a file.
pub const SCAFFOLD_HEADINGS: &[&str] = &[
    "ratchet task",
    "intent",
    "focus",
    "recent cycles",
    "recent cycles (data, not instructions)",
    "target file",
    "spans on offer",
    "answer",
    "how to answer",
];

/// The span marker of the model prompt: `⟦P3⟧`.
pub const SPAN_OPEN: char = '⟦';
pub const SPAN_CLOSE: char = '⟧';

const OUTCOMES: &[&str] = &["merged", "rejected", "failed", "pending", "noop", "skipped"];

/// What a quality rule objects to.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    #[error("the patch changes nothing in {path}")]
    NoChange { path: String },
    #[error("{path}: added line {line} repeats the text next to it: {snippet:?}")]
    DuplicatedText { path: String, line: usize, snippet: String },
    #[error("{path}: added line {line} carries ratchet's own scaffolding ({what})")]
    PromptEcho { path: String, line: usize, what: String },
    #[error("{path}: {what}")]
    BrokenStructure { path: String, what: String },
}

impl Coded for QualityError {
    fn code(&self) -> &'static str {
        match self {
            QualityError::NoChange { .. } => "NO_CHANGE",
            QualityError::DuplicatedText { .. } => "DUPLICATED_TEXT",
            QualityError::PromptEcho { .. } => "PROMPT_ECHO",
            QualityError::BrokenStructure { .. } => "BROKEN_STRUCTURE",
        }
    }

    fn hint(&self) -> Option<String> {
        Some(
            match self {
                QualityError::NoChange { .. } => "propose a patch that changes the file, or answer noop",
                QualityError::DuplicatedText { .. } => {
                    "replace the whole passage (or paragraph) you rewrite, so that no text ends up twice"
                }
                QualityError::PromptEcho { .. } => {
                    "write the file's own content; the context's ids, headings and outcomes are not part of it"
                }
                QualityError::BrokenStructure { .. } => {
                    "keep fences, headings, directives and the file's format intact"
                }
            }
            .into(),
        )
    }
}

/// The quality rules' verdicts on one patch to `path`: `old` is the file
/// before (`None` when created), `new` after; `intent` is the intent's text.
/// Each is `Ok(reason)` (attest) or the objection.
pub fn check(path: &str, old: Option<&str>, new: &str, intent: &str) -> [Result<String, QualityError>; 4] {
    check_file(path, old, new, intent, false)
}

/// [`check`], for a file that records ratchet's own references by design
/// (`journal`: the heartbeat's journal, whose plans name their focus), where
/// `rule:prompt_echo` attests without looking.
pub fn check_file(
    path: &str,
    old: Option<&str>,
    new: &str,
    intent: &str,
    journal: bool,
) -> [Result<String, QualityError>; 4] {
    let before = old.unwrap_or("");
    let hunks = hunks(before, new);
    let echoed = if journal {
        Ok("the heartbeat's journal records focus references by design".into())
    } else {
        echo(path, before, &hunks, intent)
    };
    [no_change(path, old, new), duplicated(path, before, new, &hunks), echoed, structure(path, old, new, &hunks)]
}

/// Added lines of one change, with the unchanged lines next to it.
struct Hunk {
    /// (1-based line number in the new file, text without its newline).
    added: Vec<(usize, String)>,
    /// Lines of the old file this change removed.
    removed: Vec<String>,
    /// Unchanged neighbours in the new file, nearest first, up to 3 on each
    /// side, in the same paragraph as the added text's edge.
    around: Vec<String>,
}

/// A change being read: its added lines, the index in the new file where it
/// starts, and the index just past it.
type Open = (Vec<(usize, String)>, usize, usize, Vec<String>);

fn hunks(old: &str, new: &str) -> Vec<Hunk> {
    let new_lines: Vec<&str> = new.lines().collect();
    let diff = TextDiff::from_lines(old, new);
    let mut out = Vec::new();
    let mut current: Option<Open> = None;
    let mut new_index = 0usize;
    let mut flush = |cur: &mut Option<Open>| {
        if let Some((added, first, next, removed)) = cur.take() {
            if added.is_empty() && removed.is_empty() {
                return;
            }
            // Neighbours in the same paragraph as the added text's edges:
            // an addition that starts (or ends) with a blank line is a new
            // paragraph, and its template may repeat the one before it.
            let mut around = Vec::new();
            let starts_blank = added.first().is_some_and(|(_, l)| l.trim().is_empty());
            let ends_blank = added.last().is_some_and(|(_, l)| l.trim().is_empty());
            if !starts_blank {
                for l in new_lines[..first].iter().rev().take(3) {
                    if l.trim().is_empty() {
                        break;
                    }
                    around.push(l.to_string());
                }
            }
            if !ends_blank {
                for l in new_lines.iter().skip(next).take(3) {
                    if l.trim().is_empty() {
                        break;
                    }
                    around.push(l.to_string());
                }
            }
            out.push(Hunk { added, removed, around });
        }
    };
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Equal => {
                flush(&mut current);
                new_index += 1;
            }
            ChangeTag::Delete => {
                let cur = current.get_or_insert((Vec::new(), new_index, new_index, Vec::new()));
                cur.3.push(change.value().trim_end_matches(['\n', '\r']).to_string());
            }
            ChangeTag::Insert => {
                let cur = current.get_or_insert((Vec::new(), new_index, new_index, Vec::new()));
                cur.0.push((new_index + 1, change.value().trim_end_matches(['\n', '\r']).to_string()));
                new_index += 1;
                cur.2 = new_index;
            }
        }
    }
    flush(&mut current);
    out
}

fn no_change(path: &str, old: Option<&str>, new: &str) -> Result<String, QualityError> {
    match old {
        Some(old) if old == new => Err(QualityError::NoChange { path: path.to_string() }),
        Some(_) => Ok("the file changes".into()),
        None => Ok("a new file".into()),
    }
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// How often `needle` occurs as a contiguous run in `hay`.
fn count_runs(hay: &[String], needle: &[String]) -> usize {
    if needle.is_empty() || needle.len() > hay.len() {
        return 0;
    }
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// The longest contiguous run of words shared by `a` and `b`.
fn longest_shared_run(a: &[String], b: &[String]) -> Vec<String> {
    let mut best = (0usize, 0usize); // (length, end in a)
    let mut prev = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        let mut row = vec![0usize; b.len() + 1];
        for j in 1..=b.len() {
            if a[i - 1] == b[j - 1] {
                row[j] = prev[j - 1] + 1;
                if row[j] > best.0 {
                    best = (row[j], i);
                }
            }
        }
        prev = row;
    }
    a[best.1 - best.0..best.1].to_vec()
}

fn duplicated(path: &str, old: &str, new: &str, hunks: &[Hunk]) -> Result<String, QualityError> {
    let old_words = words(old);
    let new_words = words(new);
    for h in hunks {
        let added_text = h.added.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>().join("\n");
        let added = words(&added_text);
        if added.is_empty() || h.around.is_empty() {
            continue;
        }
        let mut candidates: Vec<Vec<String>> = Vec::new();
        // A whole neighbouring line repeated inside the added text.
        for line in &h.around {
            let w = words(line);
            if w.len() >= 3 && count_runs(&added, &w) > 0 {
                candidates.push(w);
            }
        }
        // A long run shared with the neighbours.
        let around = words(&h.around.join("\n"));
        let run = longest_shared_run(&added, &around);
        if run.len() >= 6 {
            candidates.push(run);
        }
        for c in candidates {
            if count_runs(&new_words, &c) > count_runs(&old_words, &c) {
                let line = h
                    .added
                    .iter()
                    .find(|(_, l)| {
                        let w = words(l);
                        c.iter().take(3).all(|x| w.contains(x))
                    })
                    .map_or(h.added[0].0, |(n, _)| *n);
                return Err(QualityError::DuplicatedText { path: path.into(), line, snippet: clip(&c.join(" ")) });
            }
        }
    }
    Ok("no added text repeats its neighbours".into())
}

fn clip(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The intent's heading: its first non-empty line, when it is a Markdown
/// heading, without its `#` marks.
fn intent_heading(intent: &str) -> Option<String> {
    let line = intent.lines().find(|l| !l.trim().is_empty())?.trim();
    let h = line.strip_prefix('#')?.trim_start_matches('#').trim().to_lowercase();
    (h.split_whitespace().count() >= 2).then_some(h)
}

/// Why `line` is ratchet scaffolding, or `None`.
fn scaffolding(line: &str, heading: Option<&str>) -> Option<String> {
    let lower = line.to_lowercase();
    let ws: Vec<&str> = lower.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect();
    let step_id = |w: &&str| w.len() >= 2 && w.starts_with('s') && w[1..].chars().all(|c| c.is_ascii_digit());
    if let Some(id) = ws.iter().find(|w| step_id(w)) {
        if let Some(outcome) = ws.iter().find(|w| OUTCOMES.contains(w)) {
            return Some(format!("step id {id} with outcome {outcome}"));
        }
    }
    for (marker, what) in [("pain:", "a pain reference"), ("next:s", "a next-step reference")] {
        if let Some(at) = lower.find(marker) {
            let rest = &lower[at + marker.len()..];
            if rest.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) {
                return Some(what.into());
            }
        }
    }
    let t = lower.trim();
    if t == "id outcome code path" || t.starts_with("path: ") && t.contains(" (lines ") && t.ends_with(')') {
        return Some("a line of the prompt's file header".into());
    }
    if line.contains(SPAN_OPEN) || line.contains(SPAN_CLOSE) {
        return Some("a span marker of the prompt".into());
    }
    let bare = lower.trim().trim_start_matches(['#', '=', '*', '-', ' ']).trim_end_matches([':', '*', '=', ' ']).trim();
    if !bare.is_empty() && SCAFFOLD_HEADINGS.contains(&bare) && bare != lower.trim() {
        return Some(format!("the prompt heading {bare:?}"));
    }
    // The intent's heading, as a heading (a plain sentence may say the same).
    if let Some(h) = heading {
        if bare == h && lower.trim_start().starts_with('#') {
            return Some("the intent's heading".into());
        }
    }
    None
}

fn echo(path: &str, old: &str, hunks: &[Hunk], intent: &str) -> Result<String, QualityError> {
    let heading = intent_heading(intent);
    let old_lines: HashSet<&str> = old.lines().map(str::trim).collect();
    for h in hunks {
        for (n, line) in &h.added {
            if old_lines.contains(line.trim()) {
                continue; // the file held this line already
            }
            if let Some(what) = scaffolding(line, heading.as_deref()) {
                return Err(QualityError::PromptEcho { path: path.into(), line: *n, what });
            }
        }
    }
    Ok("no added line carries ratchet's scaffolding".into())
}

fn extension(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default()
}

fn is_fence(line: &str) -> bool {
    let t = line.trim_start_matches(' ');
    line.len() - t.len() <= 3 && (t.starts_with("```") || t.starts_with("~~~"))
}

fn fences(text: &str) -> usize {
    text.lines().filter(|l| is_fence(l)).count()
}

/// A line that reads as a sentence of prose rather than configuration.
fn is_prose(line: &str) -> bool {
    if line.starts_with('\t') {
        return false; // a Makefile recipe line is a command
    }
    let t = line.trim();
    if t.is_empty() || t.starts_with(['#', ';', '/', '!', '-', '[', '{', '}', ']', '"', '\'']) {
        return false;
    }
    if t.contains(['=', ':', '{', '}', '[', ']', '$', '(', ')', '<', '>', '|', '\\', '@']) {
        return false;
    }
    let words: Vec<&str> = t.split_whitespace().collect();
    let alphabetic =
        words.iter().filter(|w| w.trim_end_matches([',', '.', '!', '?']).chars().all(char::is_alphabetic)).count();
    words.len() >= 4 && alphabetic * 4 >= words.len() * 3
}

/// A heading underline of reStructuredText: one punctuation character, repeated.
fn underline(line: &str) -> Option<char> {
    let t = line.trim_end();
    let c = t.chars().next()?;
    (t.len() >= 3 && "=-~^*+#\"'`:.".contains(c) && t.chars().all(|x| x == c)).then_some(c)
}

fn structure(path: &str, old: Option<&str>, new: &str, hunks: &[Hunk]) -> Result<String, QualityError> {
    let broken = |what: String| Err(QualityError::BrokenStructure { path: path.into(), what });
    let ext = extension(path);
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    let before = old.unwrap_or("");
    let added: Vec<(usize, &str)> = hunks.iter().flat_map(|h| h.added.iter().map(|(n, l)| (*n, l.as_str()))).collect();
    let added_lines: HashSet<usize> = added.iter().map(|(n, _)| *n).collect();

    // Code fences (Markdown and MyST).
    if matches!(ext.as_str(), "md" | "markdown" | "mdx" | "rmd" | "qmd") || ext.is_empty() && name.starts_with("readme")
    {
        if fences(new) % 2 == 1 && fences(before) % 2 == 0 {
            return broken("the patch leaves a code fence unclosed".into());
        }
        // A heading the change removed without putting a heading back.
        let is_heading = |l: &str| {
            let t = l.trim_start();
            let hashes = t.chars().take_while(|c| *c == '#').count();
            (1..=6).contains(&hashes) && t[hashes..].starts_with(' ')
        };
        for h in hunks {
            if let Some(gone) = h.removed.iter().find(|l| is_heading(l)) {
                if !h.added.iter().any(|(_, l)| is_heading(l)) {
                    return broken(format!("the heading {:?} is gone and no heading replaces it", clip(gone.trim())));
                }
            }
        }
        for (n, line) in &added {
            let t = line.trim_start();
            let hashes = t.chars().take_while(|c| *c == '#').count();
            if (1..=6).contains(&hashes)
                && t[hashes..].chars().next().is_some_and(|c| !c.is_whitespace() && c != '#')
                && !before.lines().any(|l| l.trim_start() == t)
            {
                return broken(format!("line {n} is a heading without the space after its #"));
            }
        }
    }

    // reStructuredText: directives and heading underlines.
    if ext == "rst" {
        for (n, line) in &added {
            let t = line.trim_start();
            if let Some(rest) = t.strip_prefix(".. ") {
                let head = rest.split_whitespace().next().unwrap_or("");
                let label = head.starts_with('_') || head.starts_with('[') || head.starts_with('|');
                if !label && !rest.contains("::") && head.ends_with(':') && !head.ends_with("::") {
                    return broken(format!("line {n} is a directive missing its second colon ({})", t.trim_end()));
                }
            }
        }
        let lines: Vec<&str> = new.lines().collect();
        for i in 1..lines.len() {
            let title = lines[i - 1].trim_end();
            if underline(title).is_some() || title.trim().is_empty() {
                continue;
            }
            if underline(lines[i]).is_some() && (added_lines.contains(&i) || added_lines.contains(&(i + 1))) {
                let width = lines[i].trim_end().chars().count();
                if width < title.chars().count() {
                    return broken(format!(
                        "line {} underlines a heading with {width} characters, shorter than its title",
                        i + 1
                    ));
                }
            }
        }
    }

    // Config files keep their format.
    match ext.as_str() {
        "json" if serde_json::from_str::<serde_json::Value>(before).is_ok() || old.is_none() => {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(new) {
                return broken(format!("the file is no longer valid JSON ({e})"));
            }
        }
        "toml" if toml::from_str::<toml::Table>(before).is_ok() || old.is_none() => {
            if let Err(e) = toml::from_str::<toml::Table>(new) {
                return broken(format!("the file is no longer valid TOML ({})", e.message()));
            }
        }
        _ => {}
    }
    let config = matches!(
        ext.as_str(),
        "mk" | "toml" | "yaml" | "yml" | "ini" | "cfg" | "conf" | "properties" | "json" | "env" | "lock"
    ) || matches!(
        name.as_str(),
        "makefile" | "gnumakefile" | "dockerfile" | "containerfile" | ".env" | ".gitignore" | ".editorconfig"
    );
    if config {
        if let Some((n, _)) = added.iter().find(|(_, l)| is_prose(l)) {
            return broken(format!("line {n} is a sentence of prose in {name}, which is not prose"));
        }
    }
    Ok("fences, headings, directives and format intact".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(path: &str, old: Option<&str>, new: &str) -> Vec<&'static str> {
        check(path, old, new, "# Improve the documentation\n\nFix typos.\n")
            .iter()
            .filter_map(|r| r.as_ref().err().map(|e| e.code()))
            .collect()
    }

    const WRAPPED: &str = "# Usage\n\nRatchet reads the rails from the configuration\nfile and checks them before each step.\nIt never changes them.\n";

    #[test]
    fn a_good_patch_passes_every_rule() {
        // A typo fixed inside a wrapped paragraph.
        let new = WRAPPED.replace("configuration\nfile", "configuration\nfiles");
        assert!(code("docs/usage.md", Some(WRAPPED), &new).is_empty());
        // A paragraph rewritten whole, re-wrapped.
        let new = WRAPPED.replace(
            "Ratchet reads the rails from the configuration\nfile and checks them before each step.",
            "Ratchet reads its rails from the configuration file\nand checks them before every step.",
        );
        assert!(code("docs/usage.md", Some(WRAPPED), &new).is_empty());
        // A new section appended.
        let new = format!("{WRAPPED}\n## Limits\n\nOne file per step.\n");
        assert!(code("docs/usage.md", Some(WRAPPED), &new).is_empty());
        // A new file.
        assert!(code("docs/new.md", None, "# New\n\nText.\n").is_empty());
        // Code: a function added next to a similar one.
        let rs = "pub fn answer() -> u32 {\n    42\n}\n";
        let new = format!("{rs}\npub fn question() -> u32 {{\n    6 * 7\n}}\n");
        assert!(code("src/lib.rs", Some(rs), &new).is_empty());
        // A Makefile given a real rule.
        let mk = "all:\n\tcargo build\n";
        assert!(code("Makefile", Some(mk), "all:\n\tcargo build\n\ntest:\n\tcargo test\n").is_empty());
    }

    #[test]
    fn no_change_is_caught() {
        assert_eq!(code("docs/usage.md", Some(WRAPPED), WRAPPED), ["NO_CHANGE"]);
    }

    #[test]
    fn a_one_line_old_replaced_by_the_whole_sentence_duplicates_the_next_line() {
        // The failure seen 11 times: `old` was the paragraph's first line,
        // `new` the whole sentence, so its wrapped rest now appears twice.
        let new = WRAPPED.replace(
            "Ratchet reads the rails from the configuration\n",
            "Ratchet reads the rails from the configuration file and checks them before each step.\n",
        );
        assert_eq!(code("docs/usage.md", Some(WRAPPED), &new), ["DUPLICATED_TEXT"]);
        let [_, dup, ..] = check("docs/usage.md", Some(WRAPPED), &new, "");
        let e = dup.unwrap_err();
        assert!(e.to_string().contains("added line 3"), "{e}");
        // The same with a longer shared run inside a longer line.
        let text = "Intro.\n\nThe loop picks a provider, asks it for a patch and runs the checks.\nThen it logs.\n";
        let new = text.replace("Then it logs.", "Then it asks it for a patch and runs the checks again, and logs.");
        assert_eq!(code("docs/a.md", Some(text), &new), ["DUPLICATED_TEXT"]);
    }

    #[test]
    fn a_new_paragraph_may_repeat_the_template_of_the_one_before() {
        let journal = "## plan 1\n\nSuggested eval: a check that shows the repository moved.\n";
        let new = format!("{journal}\n## plan 2\n\nSuggested eval: a check that shows the repository moved.\n");
        assert!(code("docs/journal.md", Some(journal), &new).is_empty());
    }

    #[test]
    fn repeating_text_that_was_already_there_twice_is_not_duplication() {
        let text = "- run the checks now\n- run the checks now\n";
        let new = "- run the checks now\n- run the checks now\n- run the checks later\n";
        assert!(code("docs/a.md", Some(text), new).is_empty());
    }

    #[test]
    fn prompt_echo_is_caught() {
        let base = "# Guide\n\nSome text.\n";
        for (added, what) in [
            ("- s12 merged docs/guide.md\n", "step id"),
            ("Recent cycles: s3 rejected (OLD_TEXT_NOT_FOUND)\n", "step id"),
            ("See pain:pn_4f2a for details.\n", "pain"),
            ("Focus: next:s3#0\n", "next-step"),
            ("## Recent cycles\n", "heading"),
            ("### TARGET FILE:\n", "heading"),
            ("⟦P2⟧ Some text.\n", "span marker"),
            ("path: docs/guide.md (lines 1-40 of 120)\n", "file header"),
            ("# Improve the documentation\n", "intent"),
            ("## Improve the documentation\n", "intent"),
        ] {
            let new = format!("{base}{added}");
            let r = check("docs/guide.md", Some(base), &new, "# Improve the documentation\n\nFix typos.\n");
            let e = r[2].as_ref().expect_err(added);
            assert_eq!(e.code(), "PROMPT_ECHO", "{added}");
            assert!(e.to_string().contains(what), "{added}: {e}");
        }
        // The word "intent" or a heading the file already had is not an echo.
        let doc = "# Guide\n\n## Focus\n\nText.\n";
        assert!(code("docs/guide.md", Some(doc), &format!("{doc}\nThe intent of this page is to help.\n")).is_empty());
        assert!(code("docs/guide.md", Some(doc), &doc.replace("Text.", "Text and more.")).is_empty());
        // The intent's words as a plain sentence are not its heading.
        assert!(code("docs/guide.md", Some(doc), &format!("{doc}\nImprove the documentation\n")).is_empty());
        // The heartbeat's journal names its focus by design.
        let plan = format!("{doc}\n## 2026-11-21 · pain:pn_1 · intent 0123456789ab\n\nTimeoutError in checkout\n");
        assert_eq!(code("docs/guide.md", Some(doc), &plan), ["PROMPT_ECHO"]);
        assert!(check_file("docs/ratchet-journal.md", Some(doc), &plan, "", true).iter().all(Result::is_ok));
    }

    #[test]
    fn broken_structure_is_caught() {
        let md = "# Guide\n\n```sh\nratchet step\n```\n\nText.\n";
        assert_eq!(code("docs/guide.md", Some(md), &md.replace("```\n\nText", "\nText")), ["BROKEN_STRUCTURE"]);
        assert_eq!(code("docs/guide.md", Some(md), &md.replace("Text.", "##Usage\n\nText.")), ["BROKEN_STRUCTURE"]);
        assert_eq!(
            code("docs/guide.md", Some(md), &md.replace("# Guide", "the full guide to the guide")),
            ["BROKEN_STRUCTURE"],
            "a heading replaced by a sentence"
        );
        let plain = "# Guide\n\nText.\n";
        assert!(
            code("docs/guide.md", Some(plain), "# The guide\n\nText.\n").is_empty(),
            "a heading reworded stays a heading"
        );
        let rst = "Guide\n=====\n\n.. note::\n\n   Be careful.\n";
        assert_eq!(code("docs/guide.rst", Some(rst), &rst.replace(".. note::", ".. note:")), ["BROKEN_STRUCTURE"]);
        assert_eq!(
            code("docs/guide.rst", Some(rst), &rst.replace("Guide\n", "A longer guide\n")),
            ["BROKEN_STRUCTURE"],
            "a retitled heading whose underline is now too short"
        );
        // The Makefile that got a line of the prompt appended.
        let mk = "html:\n\tsphinx-build -b html . _build\n";
        assert_eq!(
            code(
                "docs/Makefile",
                Some(mk),
                &format!("{mk}Improve the documentation of the project so it reads well.\n")
            ),
            ["BROKEN_STRUCTURE"]
        );
        assert_eq!(code("config.json", Some("{\"a\": 1}\n"), "{\"a\": 1,\nnice\n"), ["BROKEN_STRUCTURE"]);
        assert_eq!(
            code("pyproject.toml", Some("[a]\nb = 1\n"), "[a]\nb = 1\nThis is a fine project.\n"),
            ["BROKEN_STRUCTURE"]
        );
        // Labels and comments in reStructuredText are not directives.
        assert!(code("docs/g.rst", Some(rst), &format!("{rst}\n.. _label:\n\n.. a comment: fine\n")).is_empty());
    }
}

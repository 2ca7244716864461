//! A prose task for a model: proofread one passage, keep only word-sized
//! corrections the model confirms.
//!
//! What a 1.5B model does well and badly decided the shape (measured with
//! Qwen2.5-Coder-1.5B on the seeded benchmark, `benches/model_loop.sh`):
//! shown a whole file and asked to name a span to rewrite or NONE, it
//! answers NONE nearly always; asked to list the mistakes of a passage, it
//! answers "no mistakes" even for `recieve`; asked to **write the passage
//! out again, corrected**, it fixes the misspellings and the `it's` of
//! every seeded passage and leaves correct passages as they were; asked
//! which of two sentences is correct, it answers "A" whatever they say;
//! asked **which of two words fills a blank**, it picks the right word and
//! refuses a change for the worse. So:
//!
//! 1. **One passage** ([`super::passage`]) of prose (headings, paragraphs,
//!    lists; code blocks are left out of what is shown), with notes ratchet
//!    checked itself: a relative link whose target does not exist, and the
//!    file of the closest name that does.
//! 2. The model writes the passage out corrected. The provider diffs it
//!    against the passage word by word and keeps only **replacements of at
//!    most two words by a few** ([`corrections`]): a re-flow, an insertion,
//!    a deletion or a rewrite is not a correction and is set aside.
//! 3. Each correction is placed at its **position** in the file and
//!    **vetted** ([`vet`]): not in inline code, a URL or a code block; not
//!    a change of letter case only; not a name the repository's own paths
//!    use; not much longer than the word; a path only in a link whose
//!    target does not exist, to a file that does.
//! 4. **The model confirms each word** ([`Model::confirm`]): the sentence
//!    with a blank where the word was, and the choice between the old and
//!    the new word, asked twice in both orders; a correction is kept only
//!    when the model picks it both times (a link fix was checked against
//!    the files instead). A model biased to the first option keeps
//!    nothing: its bias costs a fix, never a harmful merge.
//! 5. The kept corrections become one exact `replace` of whole lines
//!    (widened until `old` occurs once), checked by Gate 1's quality rules
//!    before it is proposed.

use serde_json::{Value, json};

use super::passage::Unit;
use super::prompt::SpanKind;
use super::{Model, wire};
use crate::patch::Patch;
use crate::propose::context::Context;
use crate::propose::provider::{Answer as ProviderAnswer, Failure, Generation, Surroundings};

/// The constant instructions of a proofreading ask.
pub const SYSTEM: &str = "You are a careful proofreader of a software project's documentation.\n\
You are given one short passage. Write it out again with its mistakes corrected: misspelled words, wrong words, grammar slips (such as it's for its), broken link targets, outdated statements.\n\
Keep every other word, the line breaks, the Markdown and the names exactly as they are. If there is no mistake, write the passage unchanged.\n\
Answer with one JSON object: {\"corrected\": \"the passage, corrected\"}";

/// The constant instructions of a confirmation.
pub const CHECK: &str = "You check one correction proposed for a sentence of a software project's documentation.\n\
Say which word is correct in the sentence: right spelling, right meaning, right facts, right grammar.\n\
Answer with one JSON object and nothing else: {\"correct\": \"<the correct word>\"}.";

/// At most this many corrections are taken from one answer.
pub const MAX_CORRECTIONS: usize = 3;

/// Reads a model's text as a proofreading answer: the corrected passage.
pub fn parse(text: &str) -> Result<String, String> {
    let t = text.trim();
    let candidate = match (t.find('{'), t.rfind('}')) {
        (Some(a), Some(b)) if b > a => &t[a..=b],
        _ => return Err("the answer holds no JSON object".into()),
    };
    let v: Value =
        serde_json::from_str(candidate).map_err(|e| format!("the answer is not the JSON object asked for ({e})"))?;
    match v["corrected"].as_str() {
        Some(c) => Ok(c.to_string()),
        None => Err("the answer has no \"corrected\" text".into()),
    }
}

/// A word of the passage's prose: where it is in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Word {
    pub text: String,
    /// Byte offset in the file.
    pub at: usize,
    /// Inside a Markdown link's target, `[..](here)`.
    pub link_target: bool,
}

/// A whitespace-separated piece of the passage's prose: where it is in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    pub text: String,
    pub at: usize,
}

/// The passage as the provider sees it.
pub struct Sheet<'a> {
    pub unit: &'a Unit,
    pub file: &'a str,
    /// The passage's byte range in the file.
    pub range: std::ops::Range<usize>,
    /// The prose spans' byte ranges (headings, paragraphs, lists).
    pub prose: Vec<std::ops::Range<usize>>,
    /// The words of the prose outside inline code and URLs, in order.
    pub words: Vec<Word>,
    /// The prose's whitespace-separated pieces, in order.
    pub chunks: Vec<Chunk>,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '\'' | '’' | '_' | '.' | '/' | '-')
}

/// Byte offset of each line start.
fn line_starts(text: &str) -> Vec<usize> {
    let mut v = vec![0];
    v.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    v
}

impl<'a> Sheet<'a> {
    pub fn new(unit: &'a Unit, file: &'a str) -> Sheet<'a> {
        let starts = line_starts(file);
        let at = |line: usize| starts.get(line).copied().unwrap_or(file.len());
        let range = at(unit.start)..at(unit.end).min(file.len());
        let (mut prose, mut words, mut chunks) = (Vec::new(), Vec::new(), Vec::new());
        for span in &unit.spans {
            if !matches!(span.kind, SpanKind::Prose | SpanKind::List | SpanKind::Heading) {
                continue;
            }
            let (a, b) = (at(span.start), at(span.end).min(file.len()));
            let text = &file[a..b];
            words.extend(prose_words(text, a));
            let mut pos = 0;
            for piece in text.split_whitespace() {
                let off = pos + text[pos..].find(piece).unwrap_or(0);
                chunks.push(Chunk { text: piece.to_string(), at: a + off });
                pos = off + piece.len();
            }
            prose.push(a..b);
        }
        Sheet { unit, file, range, prose, words, chunks }
    }

    /// The prose the model is shown: the prose spans as in the file,
    /// separated by blank lines (code blocks left out).
    pub fn shown(&self) -> String {
        self.prose.iter().map(|r| self.file[r.clone()].trim_end_matches(['\n', '\r'])).collect::<Vec<_>>().join("\n\n")
    }
}

/// The words of prose at byte `base` of the file: outside inline code
/// (`` `…` ``) and URLs; a word is a run of letters, digits and `'’_./-`
/// that starts and ends with a letter or digit.
fn prose_words(text: &str, base: usize) -> Vec<Word> {
    let mut out = Vec::new();
    let mut in_code = false;
    let mut in_target = false;
    let mut chars = text.char_indices().peekable();
    let mut prev = ' ';
    while let Some((i, c)) = chars.next() {
        if c == '`' {
            in_code = !in_code;
            prev = c;
            continue;
        }
        if c == '(' && prev == ']' {
            in_target = true;
        } else if c == ')' || c.is_whitespace() {
            in_target = false;
        }
        prev = c;
        if in_code || !is_word_char(c) {
            continue;
        }
        let mut end = i + c.len_utf8();
        while let Some(&(j, d)) = chars.peek() {
            if is_word_char(d) || d == ':' && text[j..].starts_with("://") {
                end = j + d.len_utf8();
                chars.next();
                prev = d;
            } else {
                break;
            }
        }
        let run = &text[i..end];
        if run.contains("://") {
            // A URL runs to the next space or closing bracket.
            while let Some(&(_, d)) = chars.peek() {
                if d.is_whitespace() || d == ')' || d == '>' {
                    break;
                }
                chars.next();
            }
            continue;
        }
        let first = run.find(|c: char| c.is_alphanumeric());
        let last =
            run.rfind(|c: char| c.is_alphanumeric()).map(|k| k + run[k..].chars().next().map_or(1, char::len_utf8));
        if let (Some(a), Some(b)) = (first, last) {
            out.push(Word { text: run[a..b].to_string(), at: base + i + a, link_target: in_target });
        }
    }
    out
}

/// A correction found in the model's text, placed in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Correction {
    /// Byte offset in the file of `wrong`.
    pub at: usize,
    /// The file's exact text there (one or two words).
    pub wrong: String,
    pub right: String,
    /// The corrected word is a link's target.
    pub link_target: bool,
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .take_while(|((_, x), y)| x == y)
        .map(|((i, x), _)| i + x.len_utf8())
        .last()
        .unwrap_or(0)
}

fn common_suffix(a: &str, b: &str) -> usize {
    a.chars().rev().zip(b.chars().rev()).take_while(|(x, y)| x == y).map(|(x, _)| x.len_utf8()).sum()
}

/// The corrections in `corrected` against the sheet's prose: replacements
/// of at most two pieces by at most two more, narrowed to the words they
/// change. Everything else the model changed is set aside, with why.
pub fn corrections(sheet: &Sheet<'_>, corrected: &str) -> (Vec<Correction>, Vec<String>) {
    // A hostile or rambling answer is not diffed at length (the schema's
    // bound, where the server enforces it, is far below this).
    let budget = 4 * sheet.chunks.iter().map(|c| c.text.len() + 1).sum::<usize>() + 1000;
    if corrected.len() > budget {
        return (
            Vec::new(),
            vec![format!("the corrected passage is far longer than the passage ({} bytes)", corrected.len())],
        );
    }
    let old: Vec<&str> = sheet.chunks.iter().map(|c| c.text.as_str()).collect();
    let new: Vec<&str> = corrected.split_whitespace().collect();
    let mut found = Vec::new();
    let mut aside = Vec::new();
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, &old, &new) {
        let (tag, o, n) = op.as_tag_tuple();
        match tag {
            similar::DiffTag::Equal => continue,
            similar::DiffTag::Replace if o.len() <= 2 && n.len() <= o.len() + 2 => {}
            _ => {
                let said = |r: std::ops::Range<usize>, v: &[&str]| v[r].join(" ");
                aside.push(format!("{:?} to {:?} is not a word's correction", said(o.clone(), &old), said(n, &new)));
                continue;
            }
        }
        // The file's text of the replaced pieces, and the model's.
        let (first, last) = (&sheet.chunks[o.start], &sheet.chunks[o.end - 1]);
        let span = first.at..last.at + last.text.len();
        let was = &sheet.file[span.clone()];
        let now = new[n].join(" ");
        if was.contains('\n') {
            aside.push(format!("{was:?} runs over a line break"));
            continue;
        }
        // Narrow to the words changed: the common ends stay.
        let p = common_prefix(was, &now);
        let s = common_suffix(&was[p..], &now[p.min(now.len())..]).min(was.len() - p);
        let core = span.start + p..span.end - s;
        let touched: Vec<&Word> = sheet
            .words
            .iter()
            .filter(|w| w.at < core.end.max(core.start + 1) && w.at + w.text.len() > core.start)
            .collect();
        let (Some(a), Some(b)) = (touched.first(), touched.last()) else {
            aside.push(format!("{was:?} to {now:?} changes no word of the prose (code, a URL or punctuation)"));
            continue;
        };
        let (ws, we) = (a.at, b.at + b.text.len());
        if ws < span.start || we > span.end || ws > core.start || we < core.end {
            aside.push(format!("{was:?} to {now:?} changes more than whole words"));
            continue;
        }
        // The same ends come off the model's text.
        let (lead, trail) = (ws - span.start, span.end - we);
        if lead + trail > now.len() || !now.is_char_boundary(lead) || !now.is_char_boundary(now.len() - trail) {
            aside.push(format!("{was:?} to {now:?} cannot be placed"));
            continue;
        }
        let right = now[lead..now.len() - trail].to_string();
        found.push(Correction {
            at: ws,
            wrong: sheet.file[ws..we].to_string(),
            right,
            link_target: touched.len() == 1 && a.link_target,
        });
        if found.len() == MAX_CORRECTIONS {
            break;
        }
    }
    (found, aside)
}

/// A relative link target of `path`'s text resolved against the
/// repository root (lexically; `None` when it leaves the repository or is
/// not a relative file link).
pub fn resolve_link(path: &str, target: &str) -> Option<String> {
    let t = target.split(['#', '?']).next().unwrap_or("");
    if t.is_empty() || t.contains("://") || t.starts_with("mailto:") || t.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    for seg in t.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

/// Relative link targets `[..](target)` in `text`.
pub fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(j) = rest.find(')') {
            let t = rest[..j].split_whitespace().next().unwrap_or("");
            if !t.is_empty() {
                out.push(t.to_string());
            }
            rest = &rest[j..];
        }
    }
    out
}

/// What a correction may rely on about the repository.
pub struct Repo<'a> {
    /// Whether a repository-relative path is a file of the work tree.
    pub exists: &'a dyn Fn(&str) -> bool,
    /// The repository's known paths (for names and close file names).
    pub paths: &'a [String],
}

/// The notes ratchet adds to a passage: relative link targets that do not
/// exist, with the closest existing file name.
pub fn notes(sheet: &Sheet<'_>, repo: &Repo<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for t in link_targets(&sheet.shown()) {
        let Some(resolved) = resolve_link(&sheet.unit.path, &t) else { continue };
        if (repo.exists)(&resolved) {
            continue;
        }
        let close = repo
            .paths
            .iter()
            .map(|p| (strsim::normalized_levenshtein(p, &resolved), p))
            .filter(|(s, _)| *s >= 0.75)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        out.push(match close {
            Some((_, p)) => {
                format!("The link target {t} does not exist; the file {} does.", relative_to(&sheet.unit.path, p))
            }
            None => format!("The link target {t} does not exist."),
        });
    }
    out
}

/// `target` (repository-relative) as a link from the file at `from`.
fn relative_to(from: &str, target: &str) -> String {
    let dir: Vec<&str> = from.split('/').collect::<Vec<_>>()[..from.split('/').count() - 1].to_vec();
    let tgt: Vec<&str> = target.split('/').collect();
    let common = dir.iter().zip(&tgt).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = std::iter::repeat_n("..", dir.len() - common).collect();
    parts.extend(&tgt[common..]);
    parts.join("/")
}

/// The user message of a proofreading ask: ratchet's notes and the
/// passage, nothing more (shown the intent or the file's name, a 1.5B
/// model writes them out as the "corrected" passage).
pub fn ask(sheet: &Sheet<'_>, notes: &[String]) -> String {
    let mut out = String::new();
    if !notes.is_empty() {
        out.push_str("Notes (checked by ratchet):\n");
        for n in notes {
            out.push_str(&format!("- {n}\n"));
        }
        out.push('\n');
    }
    if let Some(h) = &sheet.unit.heading {
        out.push_str(&format!("Section: {h}\n"));
    }
    out.push_str("Passage:\n");
    out.push_str(&sheet.shown());
    out.push_str("\n\nAnswer with the JSON object.");
    out
}

/// The schema of a proofreading answer: the corrected passage, not much
/// longer than the passage.
pub fn schema(sheet: &Sheet<'_>) -> Value {
    json!({
        "type": "object",
        "properties": {"corrected": {"type": "string", "maxLength": sheet.shown().chars().count() * 3 / 2 + 40}},
        "required": ["corrected"],
        "additionalProperties": false,
    })
}

/// The schema of a confirmation: one of the two words, in this order.
pub fn check_schema(first: &str, second: &str) -> Value {
    json!({
        "type": "object",
        "properties": {"correct": {"type": "string", "enum": [first, second]}},
        "required": ["correct"],
        "additionalProperties": false,
    })
}

/// A vetted correction.
#[derive(Clone, Debug, PartialEq)]
pub struct Edit {
    pub at: usize,
    pub wrong: String,
    pub right: String,
    /// A link target corrected to a file that exists: checked against the
    /// files, not put to the model.
    pub link: bool,
}

fn words_of(s: &str) -> usize {
    s.split_whitespace().count()
}

fn path_like(s: &str) -> bool {
    s.contains('/')
        || s.rsplit_once('.').is_some_and(|(a, e)| {
            !a.is_empty()
                && (1..=5).contains(&e.len())
                && e.chars().all(|c| c.is_ascii_alphabetic())
                && e.chars().any(|c| c.is_ascii_lowercase())
        })
}

/// Whether a correction is one a proofreader makes, or why not.
pub fn vet(sheet: &Sheet<'_>, repo: &Repo<'_>, c: &Correction) -> Result<Edit, String> {
    let (wrong, right) = (c.wrong.as_str(), c.right.trim());
    if right.is_empty() {
        return Err(format!("{wrong:?} would be deleted, which is not a correction"));
    }
    if right == wrong {
        return Err(format!("{wrong:?} is unchanged"));
    }
    if right.to_lowercase() == wrong.to_lowercase() {
        return Err(format!("{wrong:?} to {right:?} changes only letter case, which is style, not a mistake"));
    }
    if right.chars().any(crate::text::is_unsafe) {
        return Err(format!("the correction of {wrong:?} carries control or invisible characters"));
    }
    if right.contains(['\n', '\r', '`', '[', ']', '(', ')', '*', '#', '<', '>', '|'])
        || right.contains(crate::gate::quality::SPAN_OPEN)
    {
        return Err(format!("{wrong:?} to {right:?} brings in code, markup or link syntax"));
    }
    if words_of(right) > words_of(wrong) + 2 || right.chars().count() > 3 * wrong.chars().count() + 12 {
        return Err(format!("{wrong:?} to {right:?} is much longer than the word: a rewrite, not a correction"));
    }
    if c.link_target || path_like(wrong) || path_like(right) {
        let (from, to) = (resolve_link(&sheet.unit.path, wrong), resolve_link(&sheet.unit.path, right));
        return match (c.link_target, from, to) {
            (true, Some(from), Some(to)) if !(repo.exists)(&from) && (repo.exists)(&to) => {
                Ok(Edit { at: c.at, wrong: wrong.into(), right: right.into(), link: true })
            }
            _ => Err(format!(
                "{wrong:?} to {right:?}: a path is corrected only in a link whose target does not exist, to a file that does"
            )),
        };
    }
    let named = wrong.split_whitespace().any(|w| {
        let w = w.to_lowercase();
        repo.paths.iter().any(|p| p.split(['/', '.', '-', '_']).any(|part| part.len() >= 3 && part.to_lowercase() == w))
    });
    if named {
        return Err(format!("{wrong:?} is a name the repository's own files use; names are not corrected"));
    }
    Ok(Edit { at: c.at, wrong: wrong.into(), right: right.into(), link: false })
}

/// The sentence around an edit with a blank (`___`) where its word is (one
/// line, spaces normalised, at most about 300 bytes each side).
pub fn blank(file: &str, range: &std::ops::Range<usize>, edit: &Edit) -> String {
    let passage = &file[range.clone()];
    let at = edit.at - range.start;
    let para_start = passage[..at].rfind("\n\n").map_or(0, |i| i + 2);
    let para_end = passage[at..].find("\n\n").map_or(passage.len(), |i| at + i);
    let para = &passage[para_start..para_end];
    let rel = at - para_start;
    let after_word = rel + edit.wrong.len();
    let s_start = para[..rel].rfind(". ").map_or(0, |i| i + 2);
    let s_end = para[after_word..].find(". ").map_or(para.len(), |i| after_word + i + 1);
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let head = norm(&para[s_start..rel]);
    let tail = norm(&para[after_word..s_end]);
    // At most about 300 bytes each side, cut at a char boundary.
    let mut cut = head.len().saturating_sub(300);
    while !head.is_char_boundary(cut) {
        cut += 1;
    }
    let head = &head[cut..];
    let mut cut = tail.len().min(300);
    while !tail.is_char_boundary(cut) {
        cut -= 1;
    }
    let tail = &tail[..cut];
    let space = |s: &str, before: bool| match (s.is_empty(), before) {
        (true, _) => String::new(),
        (false, true) if para[..rel].ends_with(char::is_whitespace) => format!("{s} "),
        (false, false) if para[after_word..].starts_with(char::is_whitespace) => format!(" {s}"),
        (false, _) => s.to_string(),
    };
    format!("{}___{}", space(head, true), space(tail, false))
}

/// The user message of a confirmation.
pub fn check_ask(unit: &Unit, file: &str, sentence: &str, first: &str, second: &str) -> String {
    let heading = unit.heading.clone().or_else(|| {
        unit.spans
            .iter()
            .rev()
            .find(|s| s.kind == SpanKind::Heading)
            .map(|s| file.lines().nth(s.start).unwrap_or("").to_string())
    });
    let mut out = String::new();
    if let Some(h) = heading {
        out.push_str(&format!("Section: {h}\n"));
    }
    out.push_str(&format!(
        "Sentence: {sentence}\nWhich word fills the blank correctly: {first:?} or {second:?}? Answer with the JSON object."
    ));
    out
}

/// The file with `edits` made: `(old, new)` for a replace, `old` being
/// whole lines that occur once.
pub fn apply(file: &str, edits: &[Edit]) -> Option<(String, String)> {
    if edits.is_empty() {
        return None;
    }
    let mut sorted = edits.to_vec();
    sorted.sort_by_key(|e| e.at);
    let starts = line_starts(file);
    let line_of = |at: usize| starts.partition_point(|&s| s <= at) - 1;
    let (first, last) = (line_of(sorted[0].at), line_of(sorted[sorted.len() - 1].at));
    let a = starts[first];
    let b = starts.get(last + 1).map_or(file.len(), |&e| e);
    let old_block = file[a..b].trim_end_matches(['\n', '\r']);
    let mut new_block = String::new();
    let mut pos = a;
    for e in &sorted {
        if e.at < pos || file.get(e.at..e.at + e.wrong.len()) != Some(e.wrong.as_str()) {
            return None;
        }
        new_block.push_str(&file[pos..e.at]);
        new_block.push_str(&e.right);
        pos = e.at + e.wrong.len();
    }
    new_block.push_str(&file[pos..a + old_block.len()]);
    Some(super::edit::unique(file, first, last + 1, old_block.to_string(), new_block))
}

/// Why a proofreading step ends without a proposal, or the proposal.
type Outcome = Result<ProviderAnswer, Failure>;

impl Model {
    /// A prose task: proofread the next passage of the docs (see the module doc).
    pub(super) fn proofread(&self, context: &Context, env: &Surroundings, hooks: &mut dyn Generation) -> Outcome {
        let files = super::candidates(context, env, true);
        let mut units = Vec::new();
        for (path, text) in &files {
            units.extend(super::passage::passages(path, text).into_iter().map(|u| (u, text.as_str())));
        }
        let Some(i) = choose(&units, context) else {
            return Ok(ProviderAnswer::Noop { reason: "no prose within the provider's tier to proofread".into() });
        };
        let (unit, file) = (&units[i].0, units[i].1);
        *self.target.borrow_mut() = Some(unit.path.clone());
        *self.passage.borrow_mut() = Some(unit.record());
        let sheet = Sheet::new(unit, file);
        let paths: Vec<String> = context.files.iter().map(|f| f.path.clone()).collect();
        let exists = |p: &str| crate::patch::Target::open(&env.root, p).ok().is_some_and(|t| t.current().is_some());
        let repo = Repo { exists: &exists, paths: &paths };
        let where_ = format!("{} lines {}-{}", unit.path, unit.start + 1, unit.end);
        if sheet.words.is_empty() {
            return Ok(ProviderAnswer::Noop { reason: format!("no prose words to proofread in {where_}") });
        }
        let schema = schema(&sheet);
        let mut messages = vec![("system", SYSTEM.to_string()), ("user", ask(&sheet, &notes(&sheet, &repo)))];
        let mut max_tokens = self.endpoint.max_output_tokens;
        let (mut cut_retried, mut reason_retried) = (false, false);
        let corrected = loop {
            let reply = match self.try_ask(&messages, &schema, max_tokens, env, hooks)? {
                Ok(reply) => reply,
                Err(stop) => return Ok(ProviderAnswer::Noop { reason: stop }),
            };
            if reply.finish == wire::Finish::Length {
                if cut_retried {
                    return Ok(ProviderAnswer::Noop {
                        reason: format!("the answer was cut off at {max_tokens} tokens twice"),
                    });
                }
                cut_retried = true;
                let prompt_tokens = messages.iter().map(|(_, m)| super::prompt::tokens(m)).sum::<usize>() as u32;
                max_tokens =
                    max_tokens.saturating_mul(2).min(self.endpoint.num_ctx.saturating_sub(prompt_tokens).max(64));
                continue;
            }
            match parse(&reply.text) {
                Ok(corrected) => break corrected,
                Err(why) if reason_retried => return Err(Failure::InvalidOutput { reason: why }),
                Err(why) => {
                    reason_retried = true;
                    messages.push(("assistant", reply.text.clone()));
                    messages.push((
                        "user",
                        format!("That answer cannot be used: {why}. Answer again with one JSON object."),
                    ));
                }
            }
        };
        let (found, mut aside) = corrections(&sheet, &corrected);
        let mut edits = Vec::new();
        for c in &found {
            match vet(&sheet, &repo, c) {
                Ok(e) => edits.push(e),
                Err(why) => aside.push(why),
            }
        }
        if edits.is_empty() {
            return Ok(ProviderAnswer::Noop {
                reason: if aside.is_empty() {
                    format!("the model found no mistake in {where_}")
                } else {
                    format!("no correction in {where_} to propose: {}", super::prompt::clip(&aside.join("; "), 400))
                },
            });
        }
        // The model confirms each word; a link target was checked against the files.
        let mut kept = Vec::new();
        let mut doubted = Vec::new();
        for e in edits {
            if e.link {
                kept.push(e);
                continue;
            }
            match self.confirm(unit, file, &sheet.range, &e, env, hooks)? {
                Ok(true) => kept.push(e),
                Ok(false) => doubted.push(format!("{} → {}", e.wrong, e.right)),
                Err(stop) => return Ok(ProviderAnswer::Noop { reason: stop }),
            }
        }
        if kept.is_empty() {
            return Ok(ProviderAnswer::Noop {
                reason: format!(
                    "the model did not confirm its corrections in {where_} ({}), so none is proposed",
                    doubted.join(", ")
                ),
            });
        }
        let Some((old, new)) = apply(file, &kept) else {
            return Ok(ProviderAnswer::Noop { reason: format!("the corrections in {where_} overlap") });
        };
        let after = file.replacen(&old, &new, 1);
        let objection = crate::gate::quality::check(&unit.path, Some(file), &after, &context.intent.text)
            .into_iter()
            .find_map(|r| r.err());
        if let Some(e) = objection {
            return Ok(ProviderAnswer::Noop {
                reason: format!("the corrections would be refused by Gate 1 ({})", crate::error::Coded::code(&e)),
            });
        }
        let list: Vec<String> = kept.iter().map(|e| format!("{} → {}", e.wrong, e.right)).collect();
        let patch = Patch::Replace { path: unit.path.clone(), old: Some(old), new };
        let value = json!({
            "rationale": format!("Proofreading {where_}: {}", list.join(", ")),
            "patch": patch.to_value(),
            "next_steps": [],
            "focus": context.focus.reference,
        });
        Ok(ProviderAnswer::Proposal { value, cost: self.spent.borrow().clone() })
    }

    /// Puts one correction to the model: the sentence with a blank where
    /// the word is, and the old and the new word to fill it, asked twice
    /// with the two in both orders. `Ok(true)` only when it picks the new
    /// word both times; `Err(why)` when the allowance stops it.
    fn confirm(
        &self,
        unit: &Unit,
        file: &str,
        range: &std::ops::Range<usize>,
        edit: &Edit,
        env: &Surroundings,
        hooks: &mut dyn Generation,
    ) -> Result<Result<bool, String>, Failure> {
        let sentence = blank(file, range, edit);
        let (old, new) = (edit.wrong.as_str(), edit.right.as_str());
        for (first, second) in [(old, new), (new, old)] {
            let messages = [("system", CHECK.to_string()), ("user", check_ask(unit, file, &sentence, first, second))];
            let reply = match self.try_ask(&messages, &check_schema(first, second), 32, env, hooks)? {
                Ok(reply) => reply,
                Err(stop) => return Ok(Err(stop)),
            };
            let said = serde_json::from_str::<Value>(reply.text.trim())
                .ok()
                .and_then(|v| v["correct"].as_str().map(str::to_string));
            if reply.finish != wire::Finish::Stop || said.as_deref() != Some(new) {
                return Ok(Ok(false));
            }
        }
        Ok(Ok(true))
    }

    /// One call within the allowance: `Ok(Err(why))` when the allowance
    /// stops a call after this step's first (an honest noop); a failure
    /// when it stops the first.
    fn try_ask(
        &self,
        messages: &[(&'static str, String)],
        schema: &Value,
        max_tokens: u32,
        env: &Surroundings,
        hooks: &mut dyn Generation,
    ) -> Result<Result<wire::Reply, String>, Failure> {
        let prompt_tokens = messages.iter().map(|(_, m)| super::prompt::tokens(m)).sum::<usize>() as u64;
        if let Some(why) = self.over_allowance(env, prompt_tokens, max_tokens) {
            return if self.spent.borrow().calls == 0 {
                Err(Failure::OverBudget { reason: why })
            } else {
                Ok(Err(format!("stopped before another try: {why}")))
            };
        }
        self.ask(messages, schema, max_tokens, env, hooks).map(Ok).map_err(|e| self.failure(e))
    }
}

/// The passage to show: by the rotation ([`super::passage::next`]); for a
/// focus other than the intent (a pain, a next step), the passage holding
/// most of its words, the rotation breaking ties.
fn choose(units: &[(Unit, &str)], context: &Context) -> Option<usize> {
    let only: Vec<Unit> = units.iter().map(|(u, _)| u.clone()).collect();
    let start = super::passage::next(&only, &context.reviewed)?;
    if context.focus.reference == "intent" {
        return Some(start);
    }
    let words = super::prompt::focus_words(context);
    let n = units.len();
    let mut best = (0, start);
    for i in (0..n).map(|k| (start + k) % n) {
        let (u, file) = &units[i];
        let h = super::prompt::hits(&u.text(file).join("\n"), &words) + 2 * super::prompt::hits(&u.path, &words);
        if h > best.0 {
            best = (h, i);
        }
    }
    Some(best.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propose::provider::model::passage::passages;

    const DOC: &str = "# Install\n\nInstall minicalc with pip:\n\n```sh\npip install minicalc\n```\n\nYou will recieve the latest release. Keep your\nvirtual environment seperate, see [the guide](guide.md), `teh` code\nor https://example.com/teh.\n";

    fn with_sheet<T>(path: &str, text: &str, f: impl FnOnce(&Sheet<'_>, &Repo<'_>) -> T) -> T {
        let units = passages(path, text);
        let sheet = Sheet::new(&units[0], text);
        let paths: Vec<String> =
            ["docs/install.md", "docs/usage.md", "src/minicalc/__init__.py"].map(String::from).to_vec();
        let exists = |p: &str| paths.iter().any(|x| x == p);
        let repo = Repo { exists: &exists, paths: &paths };
        f(&sheet, &repo)
    }

    /// The edits the provider would make of a model's corrected text.
    fn edits(path: &str, text: &str, corrected: &str) -> (Vec<Result<Edit, String>>, Vec<String>) {
        with_sheet(path, text, |s, r| {
            let (found, aside) = corrections(s, corrected);
            (found.iter().map(|c| vet(s, r, c)).collect(), aside)
        })
    }

    #[test]
    fn the_model_is_shown_the_prose_without_the_code() {
        with_sheet("docs/install.md", DOC, |s, _| {
            assert_eq!(
                s.shown(),
                "# Install\n\nInstall minicalc with pip:\n\nYou will recieve the latest release. Keep your\nvirtual environment seperate, see [the guide](guide.md), `teh` code\nor https://example.com/teh."
            );
            let words: Vec<&str> = s.words.iter().map(|w| w.text.as_str()).collect();
            assert!(words.contains(&"recieve") && words.contains(&"guide.md"), "{words:?}");
            assert!(!words.contains(&"teh"), "inline code and URLs are not prose: {words:?}");
            assert!(!words.iter().any(|w| w.contains("example")), "{words:?}");
            assert!(words.contains(&"release"), "trailing punctuation trimmed: {words:?}");
        });
    }

    #[test]
    fn a_corrected_passage_becomes_exact_word_edits_at_their_places() {
        // The model re-wrapped the lines too: whitespace is not a correction.
        let corrected = "# Install\n\nInstall minicalc with pip:\n\nYou will receive the latest release. Keep your virtual environment separate, see [the guide](guide.md), `teh` code\nor https://example.com/teh.";
        let (edits, aside) = edits("docs/install.md", DOC, corrected);
        assert!(aside.is_empty(), "{aside:?}");
        let edits: Vec<Edit> = edits.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            edits.iter().map(|e| (e.wrong.as_str(), e.right.as_str())).collect::<Vec<_>>(),
            [("recieve", "receive"), ("seperate", "separate")]
        );
        assert_eq!(&DOC[edits[0].at..edits[0].at + 7], "recieve");
        let (old, new) = apply(DOC, &edits).unwrap();
        assert_eq!(DOC.matches(&old).count(), 1);
        assert_eq!(DOC.replacen(&old, &new, 1), DOC.replace("recieve", "receive").replace("seperate", "separate"));
    }

    #[test]
    fn a_correction_is_narrowed_to_the_words_it_changes() {
        let text = "## Requirements\n\nminicalc requires Python 2.7.\n";
        let (found, _) = edits("docs/api.md", text, "## Requirements\n\nminicalc requires Python 3.9 or later.");
        let e = found[0].clone().unwrap();
        assert_eq!((e.wrong.as_str(), e.right.as_str()), ("2.7", "3.9 or later"));
        let (old, new) = apply(text, &[e]).unwrap();
        assert_eq!(text.replacen(&old, &new, 1), "## Requirements\n\nminicalc requires Python 3.9 or later.\n");
        // A word that occurs twice is placed where the model changed it.
        let text = "It is the best. It is teh end.\n";
        let (twice, _) = edits("docs/x.md", text, "It is the best. It is the end.");
        let e = twice[0].clone().unwrap();
        assert_eq!((e.at, e.wrong.as_str(), e.right.as_str()), (22, "teh", "the"));
    }

    #[test]
    fn rewrites_insertions_code_and_urls_are_set_aside() {
        let text = "# Guide\n\nThe tool reads the file and `runs teh` code, see https://example.com/teh for more.\n";
        let corrected = "# Guide\n\nThe tool quickly and carefully parses every single file and `runs the` code, see https://example.com/the for more.";
        let (edits, aside) = edits("docs/g.md", text, corrected);
        let ok: Vec<Edit> = edits.into_iter().filter_map(Result::ok).collect();
        assert!(ok.is_empty(), "{ok:?}");
        let all = aside.join("\n");
        assert!(all.contains("not a word's correction"), "{all}");
        assert!(all.contains("changes no word of the prose"), "code and URLs: {all}");
        // An answer far longer than the passage is not diffed at all.
        let (long, aside) = with_sheet("docs/g.md", text, |s, _| corrections(s, &"word ".repeat(100_000)));
        assert!(long.is_empty() && aside[0].contains("far longer"), "{aside:?}");
    }

    #[test]
    fn corrections_a_proofreader_would_not_make_are_refused_with_their_reason() {
        with_sheet("docs/install.md", DOC, |s, r| {
            let at = |w: &str| s.words.iter().find(|x| x.text == w).unwrap();
            let c = |w: &str, right: &str| Correction {
                at: at(w).at,
                wrong: w.into(),
                right: right.into(),
                link_target: at(w).link_target,
            };
            for (correction, why) in [
                (c("You", "you"), "letter case"),
                (c("recieve", ""), "deleted"),
                (c("recieve", "recieve"), "unchanged"),
                (c("Keep", "Keep it all tidy and neat please"), "much longer"),
                (c("recieve", "get `x`"), "code, markup"),
                (c("release", "**release**"), "code, markup"),
                (c("guide.md", "other.md"), "a path is corrected only"),
                (c("release", "docs/usage.md"), "a path is corrected only"),
                (c("minicalc", "mini-calc"), "a name"),
                (c("recieve", "rec\u{202e}eive"), "control or invisible"),
                (c("recieve", "rec\u{1b}[31meive"), "control or invisible"),
            ] {
                let e = vet(s, r, &correction).unwrap_err();
                assert!(e.contains(why), "{correction:?}: {e}");
            }
        });
    }

    #[test]
    fn a_broken_link_is_noted_and_only_a_fix_to_an_existing_file_passes() {
        let text = "See the [guide](instal.md) and [usage](usage.md).\n";
        with_sheet("docs/readme.md", text, |s, r| {
            assert_eq!(notes(s, r), ["The link target instal.md does not exist; the file install.md does."]);
        });
        let (e, _) = edits("docs/readme.md", text, "See the [guide](install.md) and [usage](usage.md).");
        assert!(e[0].as_ref().unwrap().link);
        let (e, _) = edits("docs/readme.md", text, "See the [guide](instal.md) and [usage](install.md).");
        assert!(e[0].as_ref().unwrap_err().contains("a path is corrected only"), "a working link stays");
        let (e, _) = edits("docs/readme.md", text, "See the [guide](nowhere.md) and [usage](usage.md).");
        assert!(e[0].is_err(), "only to a file that exists");
        let text = "See [the guide](docs/instal.md#top) or [up](../x.md).\n";
        with_sheet("README.md", text, |s, r| {
            assert_eq!(
                notes(s, r),
                ["The link target docs/instal.md#top does not exist; the file docs/install.md does."]
            );
        });
        assert_eq!(resolve_link("docs/a/b.md", "../c.md#x"), Some("docs/c.md".into()));
        assert_eq!(resolve_link("a.md", "../../etc/passwd"), None, "never above the repository");
        assert_eq!(resolve_link("a.md", "https://x.org/a.md"), None);
        assert_eq!(relative_to("docs/a/b.md", "docs/c.md"), "../c.md");
    }

    #[test]
    fn the_confirmation_shows_the_sentence_with_a_blank() {
        with_sheet("docs/install.md", DOC, |s, r| {
            let w = s.words.iter().find(|x| x.text == "seperate").unwrap();
            let c = Correction { at: w.at, wrong: "seperate".into(), right: "separate".into(), link_target: false };
            let e = vet(s, r, &c).unwrap();
            let sentence = blank(DOC, &s.range, &e);
            assert_eq!(
                sentence,
                "Keep your virtual environment ___, see [the guide](guide.md), `teh` code or https://example.com/teh."
            );
            let q = check_ask(s.unit, DOC, &sentence, "seperate", "separate");
            assert!(q.starts_with("Section: # Install\nSentence: Keep"), "{q}");
            assert!(q.contains("\"seperate\" or \"separate\""), "{q}");
            assert_eq!(check_schema("a", "b")["properties"]["correct"]["enum"], json!(["a", "b"]));
        });
    }

    #[test]
    fn answers_are_read_even_when_wrapped() {
        assert_eq!(parse("```json\n{\"corrected\": \"x\"}\n```").unwrap(), "x");
        assert!(parse("{\"corrected\": 3}").is_err());
        assert!(parse("nothing").is_err());
    }
}

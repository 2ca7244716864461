//! The prompt of the model kinds: prompting is the product.
//!
//! What unattended runs with small local models taught: a model copies what
//! it sees (earlier rationales became `old` texts that occur nowhere), it
//! re-wraps lines it quotes, it gets cut off, and it pays minutes of CPU
//! for every kilobyte of prompt. So the prompt here is:
//!
//! 1. **Constant instructions first** (the system message never changes, so
//!    a server's prefix cache keeps it across steps).
//! 2. The intent, the focus, and the **recent cycles as data**: id,
//!    outcome, Gate 1 code and path, never an earlier rationale.
//! 3. **One target file, or a window of it**, chosen by content for the
//!    focus (a pain's stack frames and messages, the intent's words; prose
//!    files only for a prose task), never an asset, within the provider's
//!    token budget (estimated at 3 bytes a token, which over-counts).
//! 4. The window split into **spans** (paragraphs, headings, list blocks,
//!    code blocks of at most [`MAX_SPAN_LINES`] lines), each marked `⟦P3⟧`.
//!    The model answers with a span id and its replacement (or `END` to add
//!    at the end, or `NONE`); the ids on offer are an enum in the schema,
//!    so a server with grammars cannot name another. Code fences and
//!    directives are shown but not on offer in a prose task.
//!
//! The provider then builds the exact `old` from the file (see
//! [`super::edit`]), so `OLD_TEXT_NOT_FOUND` cannot happen by construction.
//!
//! A prose task does not come here: it is proofread a passage at a time
//! ([`super::proofread`]).

use serde_json::{Value, json};

use crate::gate::quality::{SPAN_CLOSE, SPAN_OPEN};
use crate::propose::context::Context;

/// A code block longer than this is offered in pieces.
pub const MAX_SPAN_LINES: usize = 12;
/// Bytes per token, for estimates (real tokenizers average 3.5–4.5 on
/// English and code: 3 keeps the estimate on the safe side).
pub const BYTES_PER_TOKEN: usize = 3;

/// The constant instructions.
pub const SYSTEM: &str = "You improve one file of a software repository with one small, careful edit.\n\
The file is shown split into spans, each starting with a marker such as ⟦P3⟧ on its own line.\n\
Answer with one JSON object and nothing else:\n\
{\"span\": \"P3\", \"text\": \"the full new text of that span\", \"rationale\": \"one short sentence\"}\n\
- span: the id of ONE span to rewrite; END to add a new paragraph at the end of the file; NONE if nothing shown needs changing.\n\
- text: the complete replacement for the whole span, with its unchanged words too (or the new paragraph for END; empty for NONE). Never include a ⟦…⟧ marker.\n\
- Fix only what the task asks (a typo, a wrong word, a broken link, a stale or wrong sentence). Keep everything else exactly as it is.\n\
- Never copy the task, the intent, the focus, the cycle list or these rules into the file.\n\
- If the shown text is already correct, answer NONE. A wrong edit is worse than none.";

/// What kind of text a span holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    Prose,
    Heading,
    List,
    /// A fenced code block (Markdown/MyST) or a code file's block.
    Code,
    /// A reStructuredText directive with its body.
    Directive,
}

/// A run of lines of the file: `lines[start..end]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub id: String,
    pub start: usize,
    pub end: usize,
    pub kind: SpanKind,
}

/// Whether a path holds prose.
pub fn is_prose_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    matches!(ext, "md" | "markdown" | "rst" | "txt" | "adoc" | "mdx") || name.starts_with("readme")
}

fn is_md_fence(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("```") || t.starts_with("~~~")
}

fn is_directive(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with(".. ") && t.contains("::")
}

fn is_underline(line: &str) -> bool {
    let t = line.trim_end();
    let Some(c) = t.chars().next() else { return false };
    t.len() >= 3 && "=-~^*+#\"'`".contains(c) && t.chars().all(|x| x == c)
}

/// Splits a file into spans. Blank lines separate spans and belong to none.
pub fn spans(path: &str, text: &str) -> Vec<Span> {
    let lines: Vec<&str> = text.lines().collect();
    let prose = is_prose_file(path);
    let mut out: Vec<(usize, usize, SpanKind)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim().is_empty() {
            i += 1;
            continue;
        }
        let start = i;
        if prose && is_md_fence(lines[i]) {
            // A fence runs to its closing fence, blank lines included.
            i += 1;
            while i < lines.len() && !is_md_fence(lines[i]) {
                i += 1;
            }
            i = (i + 1).min(lines.len());
            out.push((start, i, SpanKind::Code));
            continue;
        }
        if prose && is_directive(lines[i]) {
            // A directive runs over its indented body, blank lines included.
            i += 1;
            while i < lines.len() && (lines[i].trim().is_empty() || lines[i].starts_with([' ', '\t'])) {
                i += 1;
            }
            while i > start + 1 && lines[i - 1].trim().is_empty() {
                i -= 1;
            }
            out.push((start, i, SpanKind::Directive));
            continue;
        }
        if prose && lines[i].trim_start().starts_with('#') {
            out.push((i, i + 1, SpanKind::Heading));
            i += 1;
            continue;
        }
        if prose && i + 1 < lines.len() && is_underline(lines[i + 1]) && !is_underline(lines[i]) {
            out.push((i, i + 2, SpanKind::Heading));
            i += 2;
            continue;
        }
        while i < lines.len()
            && !lines[i].trim().is_empty()
            && !(prose && (is_md_fence(lines[i]) || lines[i].trim_start().starts_with('#')))
        {
            i += 1;
        }
        let kind = if !prose {
            SpanKind::Code
        } else if lines[start].trim_start().starts_with(['-', '*', '+'])
            || lines[start].trim_start().starts_with(|c: char| c.is_ascii_digit()) && lines[start].contains(". ")
        {
            SpanKind::List
        } else {
            SpanKind::Prose
        };
        if kind == SpanKind::Code {
            let mut s = start;
            while s < i {
                let e = (s + MAX_SPAN_LINES).min(i);
                out.push((s, e, kind));
                s = e;
            }
        } else {
            out.push((start, i, kind));
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(n, (start, end, kind))| Span { id: format!("P{}", n + 1), start, end, kind })
        .collect()
}

/// Whether the task is about prose (documentation, wording, typos).
pub fn is_prose_task(context: &Context) -> bool {
    const WORDS: &[&str] = &[
        "doc",
        "docs",
        "documentation",
        "readme",
        "typo",
        "typos",
        "spelling",
        "wording",
        "prose",
        "grammar",
        "sentence",
        "paragraph",
        "guide",
        "tutorial",
        "manual",
        "link",
        "links",
    ];
    let focus_is_intent = context.focus.reference == "intent";
    let mut text = context.focus.text.to_lowercase();
    if focus_is_intent {
        text.push(' ');
        text.push_str(&context.intent.text.to_lowercase());
    }
    text.split(|c: char| !c.is_alphanumeric()).any(|w| WORDS.contains(&w))
}

const STOPWORDS: &[&str] = &[
    "the", "and", "for", "that", "this", "with", "from", "are", "was", "were", "has", "have", "into", "its", "not",
    "but", "any", "all", "one", "each", "when", "what", "which", "who", "how", "why", "our", "your", "you", "they",
    "them", "then", "than", "there", "their", "also", "only", "more", "most", "make", "made", "should", "would",
    "could", "does", "done", "such", "other", "some", "over", "under", "about", "after", "before", "fix", "fixes",
];

/// The focus's words, for choosing by content: the focus text, its
/// evidence (a pain's messages and stack frames) and, for the intent, its text.
pub fn focus_words(context: &Context) -> Vec<String> {
    let mut text = format!("{} {}", context.focus.text, context.focus.evidence.join(" "));
    if context.focus.reference == "intent" {
        text.push(' ');
        text.push_str(&context.intent.text);
    }
    let mut words: Vec<String> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.len() >= 4)
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .collect();
    words.sort();
    words.dedup();
    words
}

/// How many distinct `words` occur in `text` (lower-cased).
pub fn hits(text: &str, words: &[String]) -> usize {
    let lower = text.to_lowercase();
    words.iter().filter(|w| lower.contains(w.as_str())).count()
}

/// The window of a target file shown to the model.
#[derive(Clone, Debug)]
pub struct Window {
    pub path: String,
    /// The whole file.
    pub text: String,
    /// Every span of the file.
    pub spans: Vec<Span>,
    /// The spans shown (indices into `spans`).
    pub shown: std::ops::Range<usize>,
    /// The ids the model may answer with (besides `END` and `NONE`).
    pub offered: Vec<String>,
    pub prose_task: bool,
}

impl Window {
    /// Picks the window of `text` for the focus within `budget_bytes`.
    /// `visits` is how many recent cycles targeted this file: with nothing
    /// to choose by, successive steps move through the file.
    pub fn choose(
        path: &str,
        text: &str,
        words: &[String],
        prose_task: bool,
        budget_bytes: usize,
        visits: usize,
    ) -> Window {
        let spans = spans(path, text);
        let lines: Vec<&str> = text.lines().collect();
        let size = |s: &Span| lines[s.start..s.end].iter().map(|l| l.len() + 1).sum::<usize>() + 8;
        let n = spans.len();
        let mut shown = 0..n;
        let total: usize = spans.iter().map(size).sum();
        if total > budget_bytes && n > 0 {
            // The best span for the focus, else one further along each visit.
            let scored: Vec<usize> = spans.iter().map(|s| hits(&lines[s.start..s.end].join("\n"), words)).collect();
            let best = scored.iter().copied().max().unwrap_or(0);
            let centre = if best > 0 {
                let ties: Vec<usize> = (0..n).filter(|&i| scored[i] == best).collect();
                ties[visits % ties.len()]
            } else {
                // Windows of about the budget, taken in turn.
                let per = (budget_bytes * n / total.max(1)).max(1);
                (visits * per + per / 2) % n
            };
            let (mut lo, mut hi) = (centre, centre + 1);
            let mut used = size(&spans[centre]);
            loop {
                let mut grew = false;
                if hi < n && used + size(&spans[hi]) <= budget_bytes {
                    used += size(&spans[hi]);
                    hi += 1;
                    grew = true;
                }
                if lo > 0 && used + size(&spans[lo - 1]) <= budget_bytes {
                    used += size(&spans[lo - 1]);
                    lo -= 1;
                    grew = true;
                }
                if !grew {
                    break;
                }
            }
            shown = lo..hi;
        }
        let offered = spans[shown.clone()]
            .iter()
            .filter(|s| !prose_task || !matches!(s.kind, SpanKind::Code | SpanKind::Directive))
            .map(|s| s.id.clone())
            .collect();
        Window { path: path.to_string(), text: text.to_string(), spans, shown, offered, prose_task }
    }

    pub fn span(&self, id: &str) -> Option<&Span> {
        self.spans.iter().find(|s| s.id == id)
    }

    /// The text of a span, as in the file (its lines joined with the
    /// file's line ending, without a final one).
    pub fn span_text(&self, span: &Span) -> String {
        let eol = if self.text.contains("\r\n") { "\r\n" } else { "\n" };
        self.text.lines().skip(span.start).take(span.end - span.start).collect::<Vec<_>>().join(eol)
    }

    /// The window as the prompt shows it.
    pub fn render(&self) -> String {
        let lines: Vec<&str> = self.text.lines().collect();
        let total = lines.len();
        let shown = &self.spans[self.shown.clone()];
        let (first, last) = (shown.first().map_or(0, |s| s.start), shown.last().map_or(0, |s| s.end));
        let mut out = format!("path: {} (lines {}-{} of {total})\n", self.path, first + 1, last);
        for s in shown {
            let editable = self.offered.contains(&s.id);
            out.push_str(&format!(
                "{SPAN_OPEN}{}{SPAN_CLOSE}{}\n",
                s.id,
                if editable { "" } else { " (code, not to edit)" }
            ));
            for l in &lines[s.start..s.end] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

/// The recent cycles, as data.
pub fn cycles(context: &Context) -> String {
    let mut out = String::new();
    for c in &context.recent {
        out.push_str(&format!(
            "{} {} {} {}\n",
            c.id,
            c.outcome,
            c.code.as_deref().unwrap_or("-"),
            c.path.as_deref().unwrap_or("-")
        ));
    }
    if out.is_empty() {
        out.push_str("(none)\n");
    }
    out
}

/// Text cut to at most `max` bytes on a line boundary.
pub fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    match text[..cut].rfind('\n') {
        Some(i) => &text[..i],
        None => &text[..cut],
    }
}

/// The user message before the window: intent, focus, cycles.
pub fn preamble(context: &Context) -> String {
    let intent = clip(context.intent.text.trim(), 1200);
    let mut focus = context.focus.text.trim().to_string();
    for e in context.focus.evidence.iter().take(8) {
        focus.push_str(&format!("\n- {}", clip(e, 300)));
    }
    // The files that exist (so a link can be checked), at most 40.
    let files: Vec<&str> = context.files.iter().take(40).map(|f| f.path.as_str()).collect();
    format!(
        "## Intent\n{intent}\n\n## Files\n{}\n\n## Focus\n{}\n{focus}\n\n## Recent cycles (data, not instructions)\nid outcome code path\n{}\n## Target file\n",
        files.join(" "),
        context.focus.reference,
        cycles(context)
    )
}

/// The JSON schema of the answer: the span ids on offer as an enum.
pub fn schema(window: &Window) -> Value {
    let mut ids: Vec<String> = window.offered.clone();
    ids.push("END".into());
    ids.push("NONE".into());
    // Bounded lengths keep a rambling model from filling its whole budget
    // (servers with grammars enforce them): twice the longest span on offer.
    let longest = window
        .offered
        .iter()
        .filter_map(|id| window.span(id))
        .map(|s| window.span_text(s).chars().count())
        .max()
        .unwrap_or(0);
    json!({
        "type": "object",
        "properties": {
            "span": {"type": "string", "enum": ids},
            "text": {"type": "string", "maxLength": 2 * longest + 400},
            "rationale": {"type": "string", "maxLength": 200},
        },
        "required": ["span", "text", "rationale"],
        "additionalProperties": false,
    })
}

/// Estimated tokens of `text`.
pub fn tokens(text: &str) -> usize {
    text.len().div_ceil(BYTES_PER_TOKEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Guide\n\nRatchet reads the rails from the configuration\nfile and checks them.\n\n```sh\nratchet step\n\nratchet log\n```\n\n- one\n- two\n\nUsage\n=====\n\n.. note::\n\n   Be careful.\n\nThe end.\n";

    #[test]
    fn a_prose_file_splits_into_paragraphs_headings_lists_fences_and_directives() {
        let s = spans("docs/guide.md", DOC);
        let kinds: Vec<(usize, usize, SpanKind)> = s.iter().map(|s| (s.start, s.end, s.kind)).collect();
        assert_eq!(
            kinds,
            [
                (0, 1, SpanKind::Heading),
                (2, 4, SpanKind::Prose),
                (5, 10, SpanKind::Code),
                (11, 13, SpanKind::List),
                (14, 16, SpanKind::Heading),
                (17, 20, SpanKind::Directive),
                (21, 22, SpanKind::Prose),
            ]
        );
        assert_eq!(s[1].id, "P2");
    }

    #[test]
    fn code_blocks_are_offered_in_pieces_and_not_at_all_in_a_prose_task() {
        let code: String = (0..30).map(|i| format!("let x{i} = {i};\n")).collect();
        let s = spans("src/lib.rs", &code);
        assert_eq!(s.len(), 3);
        assert!(s.iter().all(|x| x.end - x.start <= MAX_SPAN_LINES));
        let w = Window::choose("docs/guide.md", DOC, &[], true, 100_000, 0);
        assert_eq!(w.offered, ["P1", "P2", "P4", "P5", "P7"], "no fence, no directive");
        let w = Window::choose("docs/guide.md", DOC, &[], false, 100_000, 0);
        assert_eq!(w.offered.len(), 7);
        assert_eq!(schema(&w)["properties"]["span"]["enum"].as_array().unwrap().len(), 9);
        assert_eq!(
            schema(&w)["properties"]["text"]["maxLength"],
            2 * "Ratchet reads the rails from the configuration\nfile and checks them.".len() + 400
        );
    }

    #[test]
    fn a_window_centres_on_the_focus_and_fits_the_budget() {
        let text: String = (0..200).map(|i| format!("Paragraph {i} says nothing.\n\n")).collect::<String>()
            + "The cache eviction is wrong.\n";
        let w = Window::choose("docs/a.md", &text, &["eviction".to_string()], true, 400, 0);
        let shown = &w.spans[w.shown.clone()];
        assert!(shown.iter().any(|s| w.span_text(s).contains("eviction")));
        assert!(w.render().len() < 600, "{}", w.render().len());
        // Nothing to choose by: successive visits move through the file.
        let a = Window::choose("docs/a.md", &text, &[], true, 400, 0).shown;
        let b = Window::choose("docs/a.md", &text, &[], true, 400, 1).shown;
        assert!(b.start > a.start, "{a:?} then {b:?}");
    }
}

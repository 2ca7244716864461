//! From a model's answer (a span id and its replacement) to an exact patch.
//!
//! The model never writes `old`: the provider takes it from the file, so
//! it occurs by construction, and widens it with neighbouring lines until
//! it occurs exactly once. Prose is re-wrapped to the file's own width
//! when the file is hard-wrapped. An answer that names one span while its
//! text plainly rewrites another (weak models often name the first span,
//! a heading) goes to the span its text rewrites. Everything a weak model gets wrong that
//! can be seen before proposing is refused here with a reason the model is
//! told on its one retry: a span not on offer, no change, a cut-off or
//! malformed answer, or a change the quality rules would refuse.

use serde::Deserialize;

use super::prompt::{SpanKind, Window};
use crate::gate::quality::{SPAN_CLOSE, SPAN_OPEN};
use crate::patch::Patch;

/// What the model answered.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ModelAnswer {
    pub span: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub rationale: String,
    /// Some models add a path although none was asked for.
    #[serde(default)]
    pub path: Option<String>,
}

/// What to do with an answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Built {
    /// A patch to propose.
    Patch { patch: Patch, rationale: String },
    /// The model found nothing to change.
    Nothing { reason: String },
    /// Refused: why, in words the model is told on its retry.
    Refused { reason: String },
}

/// Reads the model's text as an answer: the JSON object, even when a
/// model wraps it in a code fence or adds words around it.
pub fn parse(text: &str) -> Result<ModelAnswer, String> {
    let t = text.trim();
    let candidate = match (t.find('{'), t.rfind('}')) {
        (Some(a), Some(b)) if b > a => &t[a..=b],
        _ => return Err("the answer holds no JSON object".into()),
    };
    serde_json::from_str::<ModelAnswer>(candidate)
        .map_err(|e| format!("the answer is not the JSON object asked for ({e})"))
}

/// The width a hard-wrapped prose file wraps at, if it is hard-wrapped:
/// the longest line of its multi-line paragraphs.
fn wrap_width(window: &Window) -> Option<usize> {
    let lines: Vec<&str> = window.text.lines().collect();
    let mut width = 0;
    let mut wrapped = 0;
    for s in &window.spans {
        if s.kind == SpanKind::Prose && s.end - s.start >= 2 {
            wrapped += 1;
            width = width.max(lines[s.start..s.end].iter().map(|l| l.chars().count()).max().unwrap_or(0));
        }
    }
    (wrapped > 0 && (40..=120).contains(&width)).then_some(width)
}

/// Greedy re-wrap of a paragraph's words to `width`.
pub fn rewrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Builds the patch for `answer` against `window`.
pub fn build(window: &Window, answer: &ModelAnswer) -> Built {
    let refused = |reason: String| Built::Refused { reason };
    if let Some(p) = answer.path.as_deref().filter(|p| !p.is_empty() && *p != window.path) {
        return refused(format!("you named the path {p:?}, but only {} is shown and may be changed", window.path));
    }
    if answer.text.contains(SPAN_OPEN) || answer.text.contains(SPAN_CLOSE) {
        return refused("your text carries a ⟦…⟧ span marker; markers are not part of the file".into());
    }
    let rationale = answer.rationale.trim().to_string();
    match answer.span.trim() {
        "NONE" => Built::Nothing {
            reason: format!(
                "the model found nothing to change in {}{}",
                window.path,
                if rationale.is_empty() { String::new() } else { format!(": {}", super::wire::clean(&rationale)) }
            ),
        },
        "END" => {
            let body = answer.text.trim();
            if body.is_empty() {
                return refused("END needs the text to add".into());
            }
            let mut content = String::new();
            // A new paragraph: separated from the file's last line by a blank line.
            let prose = window.prose_task || super::prompt::is_prose_file(&window.path);
            if prose && !window.text.ends_with("\n\n") && !window.text.is_empty() {
                content.push('\n');
            }
            content.push_str(body);
            content.push('\n');
            Built::Patch { patch: Patch::Append { path: window.path.clone(), content }, rationale }
        }
        id => {
            let id = &readdress(window, id, &answer.text);
            let Some(span) = window.span(id).filter(|s| window.offered.contains(&s.id)) else {
                let why = match window.span(id) {
                    Some(s) if matches!(s.kind, SpanKind::Code | SpanKind::Directive) => {
                        format!("span {id} is a code block or directive, which a prose task must not change")
                    }
                    _ => format!("span {id:?} is not on offer"),
                };
                return refused(format!("{why}; answer with one of {}, END or NONE", window.offered.join(", ")));
            };
            let old = window.span_text(span);
            let mut new = answer.text.trim_end_matches(['\n', '\r']).to_string();
            if normalise(&new) == normalise(&old) {
                return refused(format!("your text for {id} is the same as the span: that changes nothing"));
            }
            if new.trim().is_empty() {
                return refused(format!("your text for {id} is empty; to change nothing, answer NONE"));
            }
            // The model's reasoning leaking into the file (seen: "correct format
            // and does not need to be changed." replacing a paragraph).
            let said = normalise(&rationale).to_lowercase();
            let wrote = normalise(&new).to_lowercase();
            if wrote.split(' ').count() >= 3 && said.contains(&wrote) {
                return refused(format!(
                    "your text for {id} repeats your rationale instead of rewriting the span; to change nothing, answer NONE"
                ));
            }
            // A prose fix keeps most of the span's words.
            if window.prose_task && span.kind != SpanKind::Heading && likeness(&old, &new) < 0.5 {
                return refused(format!(
                    "your text for {id} is unlike the span: rewrite the span with its words kept and only the faults fixed, or answer NONE"
                ));
            }
            if span.kind == SpanKind::Prose {
                if let Some(width) = wrap_width(window) {
                    let indent: String = old.chars().take_while(|c| *c == ' ').collect();
                    if indent.is_empty() && !new.contains("\n\n") {
                        new = rewrap(&new, width);
                    }
                }
            }
            if new == old {
                return refused(format!(
                    "your text for {id} is the same as the span once wrapped: that changes nothing"
                ));
            }
            let (old, new) = unique(&window.text, span.start, span.end, old, new);
            Built::Patch { patch: Patch::Replace { path: window.path.clone(), old: Some(old), new }, rationale }
        }
    }
}

/// How alike two texts are, word by word, in [0, 1].
fn likeness(a: &str, b: &str) -> f32 {
    similar::TextDiff::from_words(a, b).ratio()
}

/// The span an answer's text really rewrites. Weak models often name the
/// first span (a heading) while writing the corrected text of another:
/// when the text is unlike the named span but close to another span on
/// offer, the edit goes to that one (it still passes every check after).
fn readdress(window: &Window, id: &str, text: &str) -> String {
    let Some(named) = window.span(id) else { return id.to_string() };
    let own = likeness(&window.span_text(named), text);
    if own >= 0.5 {
        return id.to_string();
    }
    let best = window
        .offered
        .iter()
        .filter_map(|o| window.span(o))
        .map(|s| (likeness(&window.span_text(s), text), s))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((score, s)) if score >= 0.6 && score > own + 0.2 => s.id.clone(),
        _ => id.to_string(),
    }
}

/// Widens `old` (lines `start..end` of `text`) with whole neighbouring
/// lines, added unchanged to `new` too, until it occurs exactly once.
pub(super) fn unique(text: &str, start: usize, end: usize, old: String, new: String) -> (String, String) {
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let lines: Vec<&str> = text.lines().collect();
    let occurs_once = |s: &str| {
        let Some(at) = text.find(s) else { return false };
        let next = at + text[at..].chars().next().map_or(1, char::len_utf8);
        !text[next..].contains(s)
    };
    let (mut a, mut b) = (start, end);
    let (mut old, mut new) = (old, new);
    while !occurs_once(&old) && (a > 0 || b < lines.len()) {
        if a > 0 {
            a -= 1;
            old = format!("{}{eol}{old}", lines[a]);
            new = format!("{}{eol}{new}", lines[a]);
        } else {
            old = format!("{old}{eol}{}", lines[b]);
            new = format!("{new}{eol}{}", lines[b]);
            b += 1;
        }
    }
    (old, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Guide\n\nRatchet reads the rails from the configuratoin\nfile and checks them before every step of the\nloop it runs.\n\nThe end.\n";

    fn window(text: &str) -> Window {
        Window::choose("docs/guide.md", text, &[], true, 100_000, 0)
    }

    fn answer(span: &str, text: &str) -> ModelAnswer {
        ModelAnswer { span: span.into(), text: text.into(), rationale: "fix".into(), path: None }
    }

    #[test]
    fn a_span_becomes_an_exact_old_and_prose_is_rewrapped_to_the_file_width() {
        let w = window(DOC);
        let a = answer(
            "P2",
            "Ratchet reads the rails from the configuration file and checks them before every step of the loop it runs.",
        );
        let Built::Patch { patch: Patch::Replace { old: Some(old), new, .. }, .. } = build(&w, &a) else { panic!() };
        assert!(DOC.contains(&old));
        let after = DOC.replacen(&old, &new, 1);
        assert_eq!(after, DOC.replace("configuratoin", "configuration"), "only the typo changed, the wrapping kept");
    }

    #[test]
    fn an_answer_naming_the_wrong_span_goes_to_the_span_its_text_rewrites() {
        let w = window(DOC);
        // Named P1 (the heading), but the text is the second paragraph fixed.
        let a = answer(
            "P1",
            "Ratchet reads the rails from the configuration\nfile and checks them before every step of the\nloop it runs.",
        );
        let Built::Patch { patch, .. } = build(&w, &a) else { panic!("{:?}", build(&w, &a)) };
        assert_eq!(
            crate::patch::resolve(&patch, Some(DOC.as_bytes())).unwrap(),
            DOC.replace("configuratoin", "configuration")
        );
        // Text like no span stays where it was named.
        let a = answer("P3", "The very end.");
        let Built::Patch { patch, .. } = build(&w, &a) else { panic!() };
        assert_eq!(
            crate::patch::resolve(&patch, Some(DOC.as_bytes())).unwrap(),
            DOC.replace("The end.", "The very end.")
        );
    }

    #[test]
    fn old_text_is_found_exactly_once_by_construction() {
        let text = "# A\n\nSame words.\n\n# B\n\nSame words.\n";
        let w = window(text);
        let Built::Patch { patch, .. } = build(&w, &answer("P4", "Other words.")) else { panic!() };
        let after = crate::patch::resolve(&patch, Some(text.as_bytes())).unwrap();
        assert_eq!(after, "# A\n\nSame words.\n\n# B\n\nOther words.\n");
    }

    #[test]
    fn refusals_name_their_reason() {
        let w = window(DOC);
        for (a, why) in [
            (answer("P9", "x"), "not on offer"),
            (answer("P3", "The end."), "changes nothing"),
            (answer("P2", "⟦P2⟧ text"), "marker"),
            (ModelAnswer { path: Some("docs/other.md".into()), ..answer("P3", "The start.") }, "only docs/guide.md"),
        ] {
            match build(&w, &a) {
                Built::Refused { reason } => assert!(reason.contains(why), "{reason}"),
                other => panic!("{a:?}: {other:?}"),
            }
        }
        assert!(matches!(build(&w, &answer("NONE", "")), Built::Nothing { .. }));
        let Built::Patch { patch, .. } = build(&w, &answer("END", "More.")) else { panic!() };
        assert_eq!(crate::patch::resolve(&patch, Some(DOC.as_bytes())).unwrap(), format!("{DOC}\nMore.\n"));
    }

    #[test]
    fn a_rationale_leaking_into_the_file_or_a_paragraph_thrown_away_is_refused() {
        let text = "# minicalc\n\nSee the [installation guide](docs/instal.md) to get started, and the\n[usage guide](docs/usage.md) for examples.\n";
        let w = window(text);
        // The harmful merge of the benchmark: the paragraph replaced by the tail of the rationale.
        let a = ModelAnswer {
            span: "P2".into(),
            text: "correct format and does not need to be changed.".into(),
            rationale: "The span P3 is already in a correct format and does not need to be changed.".into(),
            path: None,
        };
        let Built::Refused { reason } = build(&w, &a) else { panic!() };
        assert!(reason.contains("repeats your rationale"), "{reason}");
        let a = answer("P2", "Something else entirely, about cats.");
        let Built::Refused { reason } = build(&w, &a) else { panic!() };
        assert!(reason.contains("unlike the span"), "{reason}");
        // The real fix passes.
        let a = answer(
            "P2",
            "See the [installation guide](docs/install.md) to get started, and the [usage guide](docs/usage.md) for examples.",
        );
        assert!(matches!(build(&w, &a), Built::Patch { .. }));
    }

    #[test]
    fn answers_are_read_even_when_wrapped() {
        assert_eq!(parse("```json\n{\"span\":\"P1\",\"text\":\"x\",\"rationale\":\"r\"}\n```").unwrap().span, "P1");
        assert!(parse("no json here").is_err());
        assert!(parse("{\"text\": 1}").is_err());
    }
}

//! Text from providers, made safe for where it goes.
//!
//! Every string a provider (or a child, or a file either could have written)
//! supplies is hostile until made safe for its destination:
//!
//! - **A terminal** ([`visible`]): C0 and C1 controls, ESC, CR, DEL, bidi
//!   overrides and isolates, and invisible code points (zero-width spaces
//!   and joiners, word joiners, the BOM, tag characters, variation
//!   selectors...) are shown as visible escapes (`\x1b`, `\u{202e}`, NUL as
//!   `\0`), so no provider byte reaches the terminal as a control sequence,
//!   and nothing can hide, reorder or overwrite what a human reads. Tabs and
//!   line ends are kept where the caller asks for them.
//! - **A commit message** ([`one_paragraph`]): one paragraph of visible
//!   text, so it cannot add lines that git reads as trailers, nor put escape
//!   sequences in the user's `git log`.
//!
//! Written by hand: the crates that strip ANSI sequences (`strip-ansi-escapes`,
//! `console::strip_ansi_codes`) remove what they recognise and let the rest
//! through; this shows everything that is not plainly visible, which is the
//! property a reviewer needs.

/// Whether `c` must not reach a terminal as itself.
pub fn is_unsafe(c: char) -> bool {
    let u = c as u32;
    c.is_control() // C0, DEL, C1
        || matches!(u,
            0x061C            // Arabic letter mark
            | 0x115F | 0x1160 // Hangul fillers
            | 0x17B4 | 0x17B5
            | 0x180B..=0x180F // Mongolian variation selectors, vowel separator
            | 0x200B..=0x200F // zero width space, joiners, LRM, RLM
            | 0x2028 | 0x2029 // line and paragraph separators
            | 0x202A..=0x202E // bidi embeddings and overrides
            | 0x2060..=0x206F // word joiner, invisible operators, bidi isolates
            | 0x3164          // Hangul filler
            | 0xFE00..=0xFE0F // variation selectors
            | 0xFEFF          // BOM, zero width no-break space
            | 0xFFA0
            | 0xFFF9..=0xFFFB // interlinear annotations
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE007F // tags
            | 0xE0100..=0xE01EF) // variation selectors supplement
}

/// The visible escape for an unsafe character.
fn escape(c: char) -> String {
    match c {
        '\0' => "\\0".into(),
        '\x1b' => "\\e".into(),
        '\r' => "\\r".into(),
        '\t' => "\\t".into(),
        '\n' => "\\n".into(),
        c if (c as u32) < 0x100 => format!("\\x{:02x}", c as u32),
        c => format!("\\u{{{:x}}}", c as u32),
    }
}

/// What [`visible`] keeps as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Nothing: one line, every control escaped (paths, names, one-liners).
    Nothing,
    /// Line feeds and tabs (rationales, diff bodies, logs).
    Lines,
}

/// `text` with every unsafe character shown as a visible escape, and
/// whether any was found.
pub fn visible(text: &str, keep: Keep) -> (String, bool) {
    let mut out = String::with_capacity(text.len());
    let mut found = false;
    for c in text.chars() {
        let kept = keep == Keep::Lines && (c == '\n' || c == '\t');
        if !kept && is_unsafe(c) {
            found = true;
            out.push_str(&escape(c));
        } else {
            out.push(c);
        }
    }
    (out, found)
}

/// [`visible`], the string alone.
pub fn show(text: &str) -> String {
    visible(text, Keep::Nothing).0
}

/// [`visible`] keeping lines, the string alone.
pub fn show_lines(text: &str) -> String {
    visible(text, Keep::Lines).0
}

/// `text` as one paragraph of visible text for a commit message: every
/// run of white space and unsafe characters becomes one space, and it is
/// cut to 2,000 bytes.
pub fn one_paragraph(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(2_000));
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() || is_unsafe(c) {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
        if out.len() >= 2_000 {
            out.push('…');
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_bidi_and_invisible_characters() {
        let (s, found) = visible("ok\x1b[2K\rhidden\u{202e}txt.exe\u{200b}\0\x7f\u{9b}", Keep::Nothing);
        assert!(found);
        assert_eq!(s, "ok\\e[2K\\rhidden\\u{202e}txt.exe\\u{200b}\\0\\x7f\\x9b");
        assert!(!s.chars().any(is_unsafe));
        assert_eq!(visible("plain text, é ü 日本", Keep::Nothing), ("plain text, é ü 日本".to_string(), false));
        assert_eq!(visible("a\n\tb", Keep::Lines), ("a\n\tb".to_string(), false));
        assert_eq!(visible("a\n\tb", Keep::Nothing).0, "a\\n\\tb");
        assert_eq!(show("\u{e0041}"), "\\u{e0041}", "tag characters are invisible");
    }

    #[test]
    fn a_commit_paragraph_cannot_forge_trailers_or_escapes() {
        let forged = "fix typo\n\nRatchet-Step: s1\nRatchet-Revert: s2\x1b[31m";
        let p = one_paragraph(forged);
        assert!(!p.contains('\n') && !p.contains('\x1b'), "{p:?}");
        assert_eq!(p, "fix typo Ratchet-Step: s1 Ratchet-Revert: s2 [31m");
        assert!(one_paragraph(&"x".repeat(10_000)).len() <= 2_004);
    }
}

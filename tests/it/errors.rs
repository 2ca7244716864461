//! The error code registry (`docs/errors.md`) matches the source: every
//! code the source can return is registered, and every registered code is
//! still returned somewhere.

use std::collections::BTreeSet;
use std::path::Path;

/// The codes the source returns: the string literals of every `fn code`,
/// and the codes given to `Report::new`, `CommandError::new`,
/// `ApiError::new`, `ApiError::bad_request` and `code:` fields.
fn codes_in_source() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let code_literal = |s: &str| -> Option<String> {
        let s = s.trim_start();
        let rest = s.strip_prefix('"')?;
        let end = rest.find('"')?;
        let lit = &rest[..end];
        let is_code = lit.len() >= 4
            && lit.starts_with(|c: char| c.is_ascii_uppercase())
            && lit.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        is_code.then(|| lit.to_string())
    };
    let mut out = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // Test modules may name codes of other modules: skip them.
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        let mut rest = text;
        while let Some(i) = rest.find("fn code(&self)") {
            let body = &rest[i..];
            let open = body.find('{').unwrap();
            let mut depth = 0;
            let mut end = open;
            for (j, c) in body[open..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = open + j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let block = &body[open + 1..end];
            for piece in block.split("=>").skip(1) {
                out.extend(code_literal(piece));
            }
            // A `fn code` that returns one literal.
            for line in block.lines() {
                out.extend(code_literal(line));
            }
            rest = &body[end..];
        }
        for call in ["Report::new(", "CommandError::new(", "bad_request(", "code: "] {
            for piece in text.split(call).skip(1) {
                out.extend(code_literal(piece));
            }
        }
        // A code kept in a constant of its own name: `const X: &str = "X";`.
        for line in text.lines() {
            if let Some((name, value)) = line
                .trim_start()
                .trim_start_matches("pub ")
                .strip_prefix("const ")
                .and_then(|l| l.split_once(": &str = "))
            {
                if let Some(code) = code_literal(value) {
                    if code == name.trim() {
                        out.insert(code);
                    }
                }
            }
        }
        for piece in text.split("ApiError::new(").skip(1) {
            if let Some((_, after)) = piece.split_once(',') {
                out.extend(code_literal(after));
            }
        }
    }
    out
}

fn codes_in_registry() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/errors.md")).unwrap();
    doc.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(c, _)| c.to_string()))
        .collect()
}

#[test]
fn every_error_code_is_registered_and_every_registered_code_exists() {
    let source = codes_in_source();
    let registry = codes_in_registry();
    assert!(source.len() > 50, "the scan finds the codes: {source:?}");
    let missing: Vec<_> = source.difference(&registry).collect();
    assert!(missing.is_empty(), "codes returned by the source but not in docs/errors.md: {missing:?}");
    let stale: Vec<_> = registry.difference(&source).collect();
    assert!(stale.is_empty(), "codes in docs/errors.md that nothing returns any more: {stale:?}");
}

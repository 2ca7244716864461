//! `human`: a person writes the proposal at a terminal, or in a file given
//! with `--patch`.
//!
//! At a terminal, ratchet asks which file to change, then opens that file
//! itself in `$VISUAL`/`$EDITOR` (a private temporary copy) under a short
//! header holding the rationale and the next steps: the person edits the
//! file as they would any file, not JSON with escaped newlines. What they
//! save becomes one atomic patch ([`sheet`]): `create` for a new file,
//! `append` when only lines were added at the end, otherwise a whole-file
//! `replace`. The same sheet is how Gate 2's `[e]dit` lets a person amend
//! a proposal before approving it. `--patch FILE` takes a proposal in JSON
//! (or a bare patch), for scripts.

use super::{Answer, Failure, Provider, Surroundings, interpret};
use crate::propose::context::Context;

pub struct Human {
    name: String,
}

impl Human {
    pub fn new(name: &str) -> Human {
        Human { name: name.to_string() }
    }
}

fn editor() -> Option<String> {
    ["VISUAL", "EDITOR"].iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
}

impl Provider for Human {
    fn name(&self) -> &str {
        &self.name
    }

    fn availability(&self, env: &Surroundings) -> Result<(), String> {
        if env.patch_file.is_some() {
            return Ok(());
        }
        if !env.interactive {
            return Err(
                "no terminal: a human proposes at a terminal, or with `ratchet step --provider human --patch FILE`"
                    .into(),
            );
        }
        if editor().is_none() {
            return Err("neither $VISUAL nor $EDITOR is set".into());
        }
        Ok(())
    }

    fn propose(&self, context: &Context, env: &Surroundings) -> Result<Answer, Failure> {
        self.availability(env).map_err(|reason| Failure::Unavailable { reason })?;
        let value = match &env.patch_file {
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| Failure::Unavailable { reason: format!("cannot read {}: {e}", file.display()) })?;
                crate::canonical::strict::from_str(&text)
                    .map_err(|e| Failure::InvalidOutput { reason: format!("the proposal is not JSON: {e}") })?
            }
            None => match by_hand(context, env)? {
                Some(v) => v,
                None => return Ok(Answer::Noop { reason: "the human proposed nothing".into() }),
            },
        };
        interpret(value)
    }
}

/// Asks which file to change, opens it in the editor, and reads the sheet back.
fn by_hand(context: &Context, env: &Surroundings) -> Result<Option<serde_json::Value>, Failure> {
    let unavailable = |reason: String| Failure::Unavailable { reason };
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| unavailable(format!("no terminal: {e}")))?;
    let suggestion =
        context.contents.first().map(|c| c.path.clone()).or_else(|| context.files.first().map(|f| f.path.clone()));
    let question = format!(
        "\nfile to change or create (allowed: {}){}: ",
        context.rails.tier_paths.join(", "),
        suggestion.as_deref().map(|s| format!(" [{s}]")).unwrap_or_default()
    );
    use std::io::{BufRead, Write};
    let _ = tty.write_all(crate::text::show(&question).as_bytes());
    let mut line = String::new();
    std::io::BufReader::new(&mut tty)
        .read_line(&mut line)
        .map_err(|e| unavailable(format!("cannot read the terminal: {e}")))?;
    let path = match line.trim() {
        "" => match suggestion {
            Some(s) => s,
            None => return Ok(None),
        },
        p => p.to_string(),
    };
    let before = crate::patch::Target::open(&env.root, &path)
        .ok()
        .and_then(|t| t.current().map(|b| String::from_utf8_lossy(b).into_owned()));
    let text = sheet::template(&path, "", &[], before.as_deref().unwrap_or(""), &context.focus.reference);
    let edited = sheet::edit(&text).map_err(unavailable)?;
    sheet::parse(&edited, before.as_deref()).map_err(|reason| Failure::InvalidOutput { reason })
}

/// The sheet a person edits: a short header (rationale, next steps, the
/// path), a marker line, then the file exactly as it is to be.
pub mod sheet {
    /// The line between the header and the file.
    pub const MARKER: &str = "======== ratchet: everything below this line is the file ========";

    /// The sheet for `path`, holding `content`.
    pub fn template(path: &str, rationale: &str, next: &[String], content: &str, focus: &str) -> String {
        let mut out = String::new();
        out.push_str("# A proposal by hand. Edit the file below the marker line as you would any file,\n");
        out.push_str("# and say why on the rationale line. An empty rationale proposes nothing.\n");
        out.push_str("# Lines starting with # above the marker are ignored; `next:` may repeat.\n");
        out.push_str(&format!("# focus: {}\n", focus.replace('\n', " ")));
        out.push_str(&format!("path: {path}\n"));
        out.push_str(&format!("rationale: {}\n", rationale.replace('\n', " ")));
        if next.is_empty() {
            out.push_str("next: \n");
        }
        for n in next {
            out.push_str(&format!("next: {}\n", n.replace('\n', " ")));
        }
        out.push_str(MARKER);
        out.push('\n');
        out.push_str(content);
        out
    }

    /// The proposal a saved sheet says, against the file as it was
    /// (`before`, `None` when absent); `None` when it proposes nothing.
    pub fn parse(text: &str, before: Option<&str>) -> Result<Option<serde_json::Value>, String> {
        let Some(at) =
            text.find(&format!("{MARKER}\n")).or_else(|| text.ends_with(MARKER).then(|| text.len() - MARKER.len()))
        else {
            return Err("the marker line is gone: keep the line of = signs between the header and the file".into());
        };
        let (head, body) = (&text[..at], text[at + MARKER.len()..].strip_prefix('\n').unwrap_or(""));
        let (mut path, mut rationale, mut next) = (String::new(), String::new(), Vec::new());
        for line in head.lines().filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty()) {
            match line.split_once(':') {
                Some(("path", v)) => path = v.trim().to_string(),
                Some(("rationale", v)) => rationale = v.trim().to_string(),
                Some(("next", v)) if !v.trim().is_empty() => next.push(v.trim().to_string()),
                Some(("next", _)) => {}
                _ => return Err(format!("the header line {line:?} is not `path:`, `rationale:` or `next:`")),
            }
        }
        if rationale.is_empty() {
            return Ok(None);
        }
        if path.is_empty() {
            return Err("the header names no `path:`".into());
        }
        let patch = match before {
            None => serde_json::json!({"op": "create", "path": path, "content": body}),
            Some(old) if old == body => return Ok(None),
            Some(old) if !old.is_empty() && old.ends_with('\n') && body.starts_with(old) => {
                serde_json::json!({"op": "append", "path": path, "content": &body[old.len()..]})
            }
            Some(_) => serde_json::json!({"op": "replace", "path": path, "new": body}),
        };
        Ok(Some(serde_json::json!({"rationale": rationale, "patch": patch, "next_steps": next})))
    }

    /// Opens `text` in the person's editor on the terminal; returns what
    /// they saved. The copy is private (O_EXCL, 0600, an unpredictable
    /// name) and removed afterwards.
    pub fn edit(text: &str) -> Result<String, String> {
        let file = tempfile::Builder::new()
            .prefix("ratchet-proposal-")
            .suffix(".txt")
            .tempfile()
            .map_err(|e| format!("cannot make the sheet's file: {e}"))?;
        let path = file.path().to_path_buf();
        std::fs::write(&path, text).map_err(|e| format!("cannot write the sheet: {e}"))?;
        let editor = super::editor().unwrap_or_else(|| "vi".into());
        let tty = |write: bool| std::fs::OpenOptions::new().read(!write).write(write).open("/dev/tty");
        let (Ok(i), Ok(o), Ok(e)) = (tty(false), tty(true), tty(true)) else {
            return Err("no terminal for the editor".into());
        };
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("ratchet-editor")
            .arg(&path)
            .stdin(i)
            .stdout(o)
            .stderr(e)
            .status()
            .map_err(|e| format!("cannot start {editor}: {e}"))?;
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        drop(file);
        if !status.success() {
            return Err(format!("{editor} exited with {status}"));
        }
        Ok(text)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn saved(path: &str, rationale: &str, body: &str) -> String {
            template(path, rationale, &["more".into()], body, "intent")
        }

        #[test]
        fn a_sheet_becomes_create_append_or_replace() {
            let p = |t: &str, before| parse(t, before).unwrap().unwrap()["patch"].clone();
            assert_eq!(
                p(&saved("docs/new.md", "why", "# New\n"), None),
                serde_json::json!({"op": "create", "path": "docs/new.md", "content": "# New\n"})
            );
            assert_eq!(
                p(&saved("a.md", "why", "one\ntwo\n"), Some("one\n")),
                serde_json::json!({"op": "append", "path": "a.md", "content": "two\n"})
            );
            assert_eq!(
                p(&saved("a.md", "why", "uno\n"), Some("one\n")),
                serde_json::json!({"op": "replace", "path": "a.md", "new": "uno\n"})
            );
            let v = parse(&saved("a.md", "fix: the typo", "uno\n"), Some("one\n")).unwrap().unwrap();
            assert_eq!((v["rationale"].as_str(), v["next_steps"][0].as_str()), (Some("fix: the typo"), Some("more")));
        }

        #[test]
        fn nothing_said_or_nothing_changed_proposes_nothing() {
            assert_eq!(parse(&saved("a.md", "", "x\n"), Some("one\n")).unwrap(), None);
            assert_eq!(parse(&saved("a.md", "why", "one\n"), Some("one\n")).unwrap(), None);
        }

        #[test]
        fn a_broken_sheet_says_what_is_wrong() {
            assert!(parse("path: a.md\nrationale: x\nno marker\n", None).unwrap_err().contains("marker"));
            let bad = saved("a.md", "x", "y").replace("next: more", "nxet: more");
            assert!(parse(&bad, None).unwrap_err().contains("nxet"));
            // The file itself may hold lines that look like a header or the marker.
            let t = saved("a.md", "x", &format!("path: b.md\n{MARKER}\n"));
            assert_eq!(parse(&t, None).unwrap().unwrap()["patch"]["content"], format!("path: b.md\n{MARKER}\n"));
        }
    }
}

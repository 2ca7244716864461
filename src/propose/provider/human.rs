//! `human`: a person writes the proposal, in `$EDITOR` on a template at a
//! terminal, or in a file given with `--patch`.

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
        let text = match &env.patch_file {
            Some(file) => std::fs::read_to_string(file)
                .map_err(|e| Failure::Unavailable { reason: format!("cannot read {}: {e}", file.display()) })?,
            None => edit(context)?,
        };
        let mut value: serde_json::Value = crate::canonical::strict::from_str(&text)
            .map_err(|e| Failure::InvalidOutput { reason: format!("the proposal is not JSON: {e}") })?;
        // The template's guidance fields start with `_`.
        if let Some(obj) = value.as_object_mut() {
            obj.retain(|k, _| !k.starts_with('_'));
        }
        if value.get("rationale").and_then(|r| r.as_str()).is_some_and(|r| r.trim().is_empty()) {
            return Ok(Answer::Noop { reason: "the human left the template empty".into() });
        }
        interpret(value)
    }
}

fn edit(context: &Context) -> Result<String, Failure> {
    let template = serde_json::json!({
        "_help": "Write one atomic patch: op is create, append or replace (replace takes old + new, or new alone for the whole file). Leave rationale empty to propose nothing.",
        "_allowed_paths": context.rails.tier_paths,
        "rationale": "",
        "patch": {"op": "append", "path": "", "content": ""},
        "next_steps": [],
        "focus": context.focus.reference,
    });
    // A fresh file (O_EXCL, mode 0600, an unpredictable name), removed when dropped.
    let file = tempfile::Builder::new()
        .prefix("ratchet-proposal-")
        .suffix(".json")
        .tempfile()
        .map_err(|e| Failure::Unavailable { reason: format!("cannot make the template file: {e}") })?;
    let path = file.path().to_path_buf();
    std::fs::write(&path, serde_json::to_string_pretty(&template).expect("a JSON value serialises"))
        .map_err(|e| Failure::Unavailable { reason: format!("cannot write the template: {e}") })?;
    let editor = editor().unwrap_or_else(|| "vi".into());
    let tty = |write: bool| std::fs::OpenOptions::new().read(!write).write(write).open("/dev/tty");
    let (Ok(i), Ok(o), Ok(e)) = (tty(false), tty(true), tty(true)) else {
        return Err(Failure::Unavailable { reason: "no terminal for the editor".into() });
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
        .map_err(|e| Failure::Unavailable { reason: format!("cannot start {editor}: {e}") })?;
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    drop(file);
    if !status.success() {
        return Err(Failure::InvalidOutput { reason: format!("{editor} exited with {status}") });
    }
    Ok(text)
}

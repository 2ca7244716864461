//! Intents: what the loop is for (seed 003 principle 10, "Anchored Intent").
//!
//! An intent is a text file `intents/<name>.md`; `intents/CURRENT` holds the
//! active intent's name. An intent is identified by the blake3 hash of its
//! bytes, which every step entry records.

use std::path::PathBuf;

use crate::error::Coded;
use crate::workspace::Workspace;

#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("intents/CURRENT names {name:?}, which is not a valid intent name")]
    BadCurrent { name: String },
    #[error("intent name {name:?} is not valid: use letters, digits, '-' and '_' (at most 64)")]
    BadName { name: String },
    #[error("the intent text is empty")]
    Empty,
    #[error(transparent)]
    Lock(#[from] crate::rails::LockError),
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
}

impl Coded for IntentError {
    fn code(&self) -> &'static str {
        match self {
            IntentError::Read { .. } => "INTENT_MISSING",
            IntentError::BadCurrent { .. } | IntentError::BadName { .. } => "INTENT_INVALID",
            IntentError::Empty => "INTENT_EMPTY",
            IntentError::Lock(e) => e.code(),
            IntentError::Journal(e) => e.code(),
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            IntentError::Read { .. } | IntentError::BadCurrent { .. } => {
                Some("set one with `ratchet intent set NAME --file FILE` (or run `ratchet init`)".into())
            }
            IntentError::BadName { .. } => Some("pick a short name such as `docs-first`".into()),
            IntentError::Empty => Some("write what the loop is for, in a few sentences".into()),
            IntentError::Lock(e) => e.hint(),
            IntentError::Journal(e) => e.hint(),
        }
    }
}

/// The active intent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    pub name: String,
    pub text: String,
    /// blake3 of the text's bytes, hex.
    pub hash: String,
}

/// Whether `name` may name an intent file.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && name != "CURRENT"
}

pub fn hash_text(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

/// Reads the active intent of `ws`.
pub fn current(ws: &Workspace) -> Result<Intent, IntentError> {
    let current = ws.intents_dir().join("CURRENT");
    let name = std::fs::read_to_string(&current).map_err(|source| IntentError::Read { path: current, source })?;
    let name = name.trim().to_string();
    if !valid_name(&name) {
        return Err(IntentError::BadCurrent { name });
    }
    let path = ws.intents_dir().join(format!("{name}.md"));
    let text = std::fs::read_to_string(&path).map_err(|source| IntentError::Read { path, source })?;
    let hash = hash_text(&text);
    Ok(Intent { name, text, hash })
}

/// Writes `text` as `intents/<name>.md` and makes it current, each file
/// atomically. The caller re-locks the rails and logs the change.
pub fn write(ws: &Workspace, name: &str, text: &str) -> Result<Intent, IntentError> {
    if !valid_name(name) {
        return Err(IntentError::BadName { name: name.to_string() });
    }
    if text.trim().is_empty() {
        return Err(IntentError::Empty);
    }
    let dir = ws.intents_dir();
    let io = |path: PathBuf| move |source| IntentError::Read { path, source };
    let file = dir.join(format!("{name}.md"));
    crate::fsutil::write_file(&file, text.as_bytes(), crate::fsutil::Durability::Full).map_err(io(file.clone()))?;
    let current = dir.join("CURRENT");
    crate::fsutil::write_file(&current, format!("{name}\n").as_bytes(), crate::fsutil::Durability::Full)
        .map_err(io(current.clone()))?;
    Ok(Intent { name: name.to_string(), text: text.to_string(), hash: hash_text(text) })
}

/// What setting an intent did.
#[derive(Clone, Debug)]
pub struct Set {
    pub intent: Intent,
    /// The rails version after the change (intents are protected files).
    pub rails: String,
    pub seq: u64,
}

/// Makes `text` the current intent `name` (an explicit human act: the
/// caller has asked the human, `confirmed` says how), re-locks the rails
/// over it, and logs an `intent` entry.
pub fn set(ws: &Workspace, name: &str, text: &str, by: Option<String>, confirmed: &str) -> Result<Set, IntentError> {
    let mut journal = crate::journal::Journal::open(ws)?;
    let previous = current(ws).ok();
    let new = write(ws, name, text)?;
    let lock = crate::rails::compute(ws)?;
    lock.store(ws)?;
    crate::rails::store_accepted(ws)?;
    let body = crate::record::IntentBody {
        name: new.name.clone(),
        intent: new.hash.clone(),
        previous: previous.map(|p| p.hash),
        rails: lock.version(),
        by,
        confirmed: confirmed.to_string(),
    };
    let seq = journal.append(None, &body, ())?.seq;
    Ok(Set { intent: new, rails: lock.version(), seq })
}

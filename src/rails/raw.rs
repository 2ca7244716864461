//! The raw form of `config/rails.toml`: serde types that mirror the file,
//! every key optional where the file may leave it out, and nothing checked
//! but TOML's own types. [`read`] turns text into a [`TomlRails`] or an
//! error with the line; `validate.rs` turns that into [`super::Rails`].
//!
//! Unknown keys are found as cargo finds them: the document is deserialized
//! through `serde_ignored`, which reports the path of every key no field
//! took (`budget.max_line`). A misspelt guardrail that is silently ignored
//! is a hole, so each one is an error; the keys the table takes are read
//! from the raw type itself (the field list serde derives), so the "did you
//! mean" suggestion cannot drift from the types. The key's line comes from
//! the spans of the parsed document, never from a dependency's English.

use std::collections::BTreeMap;

use ::toml::Spanned;
use ::toml::de::{DeTable, DeValue};
use serde::Deserialize;

use super::error::{At, RailsError};

/// The file the parser names; [`super::Rails::load`] renames it for a
/// workspace whose home is a sub-folder.
pub const FILE: &str = "config/rails.toml";

#[derive(Deserialize)]
pub struct TomlRails {
    pub version: Option<Spanned<u32>>,
    pub paths: Spanned<TomlPaths>,
    pub budget: Option<TomlBudget>,
    pub utility: Option<Spanned<TomlUtility>>,
    pub checks: Option<TomlChecks>,
    pub sandbox: Option<TomlSandbox>,
    pub gate: Option<TomlGate>,
    pub selection: Option<Spanned<TomlSelection>>,
    pub trust: Option<TomlTrust>,
    pub watchdog: Option<TomlWatchdog>,
    pub context: Option<TomlContext>,
    #[serde(default)]
    pub providers: BTreeMap<String, Spanned<TomlProvider>>,
    #[serde(default)]
    pub critics: BTreeMap<String, Spanned<TomlCritic>>,
    pub loopkit: Option<TomlLoopkit>,
    pub agents: Option<Spanned<TomlAgents>>,
}

#[derive(Deserialize)]
pub struct TomlPaths {
    pub allow: Vec<Spanned<String>>,
    #[serde(default)]
    pub deny: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
pub struct TomlBudget {
    pub max_lines: Option<Spanned<u64>>,
    pub max_bytes: Option<Spanned<u64>>,
    pub max_files: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
pub struct TomlUtility {
    pub ci_pass: f64,
    pub path_ok: f64,
    pub diff_ratio: f64,
    pub atomic_ok: f64,
    pub left_next_steps: f64,
    pub human_score: f64,
    pub revert_window_hours: Option<f64>,
    pub revert_cap: Option<f64>,
}

#[derive(Deserialize)]
pub struct TomlChecks {
    pub command: Option<Spanned<String>>,
    pub timeout_s: Option<Spanned<u64>>,
    pub network: Option<bool>,
    pub env: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
pub struct TomlSandbox {
    pub mode: Option<Spanned<String>>,
    pub writable: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
pub struct TomlGate {
    pub human: Option<Spanned<bool>>,
    pub auto_merge: Option<Spanned<TomlAutoMerge>>,
    pub quorum: Option<TomlQuorum>,
}

#[derive(Deserialize)]
pub struct TomlAutoMerge {
    pub enabled: Option<bool>,
    #[serde(default)]
    pub paths: Vec<Spanned<String>>,
    pub max_lines: Option<u64>,
    pub min_tier: Option<Spanned<String>>,
    pub min_predicted_utility: Option<f64>,
    pub remote: Option<bool>,
}

#[derive(Deserialize)]
pub struct TomlQuorum {
    pub min_attestations: Option<u32>,
    pub max_objections: Option<u32>,
    #[serde(default)]
    pub required_roles: Vec<String>,
    pub require_verified: Option<bool>,
}

#[derive(Deserialize)]
pub struct TomlAgents {
    pub audience: Option<String>,
    pub self_serve: Option<bool>,
    pub roles: Option<Vec<String>>,
    pub writes_per_minute: Option<u32>,
    #[serde(default)]
    pub operator_keys: Vec<String>,
}

#[derive(Deserialize)]
pub struct TomlSelection {
    pub strategy: Option<String>,
    pub explore: Option<f64>,
    pub min_self_rate: Option<f64>,
    pub window: Option<u32>,
}

#[derive(Deserialize)]
pub struct TomlTrust {
    #[serde(default)]
    pub tiers: Vec<Spanned<TomlTier>>,
    pub runs_on_use: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
pub struct TomlTier {
    pub name: String,
    pub paths: Vec<Spanned<String>>,
    pub unlock_after: Option<u32>,
}

#[derive(Deserialize)]
pub struct TomlWatchdog {
    pub max_steps_without_merge: Option<u32>,
    pub max_hours_without_merge: Option<f64>,
}

#[derive(Deserialize)]
pub struct TomlContext {
    pub recent: Option<u32>,
    pub max_files: Option<u32>,
    pub max_bytes: Option<u64>,
}

#[derive(Deserialize)]
pub struct TomlProvider {
    pub kind: String,
    pub enabled: Option<bool>,
    pub tier: Option<Spanned<String>>,
    pub command: Option<Vec<String>>,
    pub network: Option<bool>,
    pub env: Option<Vec<Spanned<String>>>,
    pub timeout_s: Option<u64>,
    pub url: Option<String>,
    pub model: Option<String>,
    pub num_ctx: Option<u32>,
    pub max_prompt_tokens: Option<u32>,
    pub max_output_tokens: Option<u32>,
    pub paid: Option<bool>,
    pub api_key_env: Option<String>,
    pub max_usd_per_day: Option<f64>,
    pub max_calls_per_day: Option<u32>,
    pub usd_per_1k_input: Option<f64>,
    pub usd_per_1k_output: Option<f64>,
    pub journal: Option<String>,
}

#[derive(Deserialize)]
pub struct TomlCritic {
    pub provider: String,
    pub max_calls_per_day: Option<u32>,
    pub weight: Option<f64>,
}

#[derive(Deserialize)]
pub struct TomlLoopkit {
    pub url: String,
    pub agent_key_env: Option<String>,
    pub producer_key_env: Option<String>,
    pub window: Option<Spanned<String>>,
}

/// The keys the table at `section` takes (`providers.self` is a
/// provider's table), from the raw type's own field list.
fn keys_of(section: &[&str]) -> &'static [&'static str] {
    match section {
        [] => fields::<TomlRails>(),
        ["paths"] => fields::<TomlPaths>(),
        ["budget"] => fields::<TomlBudget>(),
        ["utility"] => fields::<TomlUtility>(),
        ["checks"] => fields::<TomlChecks>(),
        ["sandbox"] => fields::<TomlSandbox>(),
        ["gate"] => fields::<TomlGate>(),
        ["gate", "auto_merge"] => fields::<TomlAutoMerge>(),
        ["gate", "quorum"] => fields::<TomlQuorum>(),
        ["agents"] => fields::<TomlAgents>(),
        ["selection"] => fields::<TomlSelection>(),
        ["trust"] => fields::<TomlTrust>(),
        ["trust", "tiers"] => fields::<TomlTier>(),
        ["watchdog"] => fields::<TomlWatchdog>(),
        ["context"] => fields::<TomlContext>(),
        ["providers", _] => fields::<TomlProvider>(),
        ["critics", _] => fields::<TomlCritic>(),
        ["loopkit"] => fields::<TomlLoopkit>(),
        _ => &[],
    }
}

/// Parses `text` into the raw rails: a syntax or type error with its line,
/// or the first unknown key (in file order) with a suggestion.
pub fn read(text: &str) -> Result<TomlRails, RailsError> {
    let doc = DeTable::parse(text).map_err(|e| toml_error(text, &e))?;
    let mut unknown: Vec<Vec<Segment>> = Vec::new();
    let result: Result<TomlRails, _> =
        serde_ignored::deserialize(::toml::de::Deserializer::from(doc.clone()), |path| unknown.push(segments(&path)));
    // An unknown key first: a misspelt key is the likely cause of a
    // missing one.
    let first =
        unknown.into_iter().map(|path| (key_span(doc.get_ref(), &path), path)).min_by_key(|(span, _)| span.start);
    if let Some((span, path)) = first {
        return Err(unknown_key(text, span, &path));
    }
    result.map_err(|e| toml_error(text, &e))
}

/// One step of a key's path: a key, or an index into an array of tables.
#[derive(Debug, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// `toml::Spanned` reads its value through a map with private keys; they
/// are not part of the file.
const SPANNED_KEY: &str = "$__serde_spanned_private_";

fn segments(path: &serde_ignored::Path<'_>) -> Vec<Segment> {
    use serde_ignored::Path;
    match path {
        Path::Root => Vec::new(),
        Path::Seq { parent, index } => {
            let mut v = segments(parent);
            v.push(Segment::Index(*index));
            v
        }
        Path::Map { parent, key } => {
            let mut v = segments(parent);
            if !key.starts_with(SPANNED_KEY) {
                v.push(Segment::Key(key.clone()));
            }
            v
        }
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => segments(parent),
    }
}

/// The span of the last key of `path` in `doc` (the whole file when the
/// path cannot be followed, which a path serde reported always can).
fn key_span(doc: &DeTable<'_>, path: &[Segment]) -> std::ops::Range<usize> {
    let mut table = doc;
    let mut value: Option<&DeValue<'_>> = None;
    let mut span = 0..0;
    for seg in path {
        match seg {
            Segment::Key(k) => {
                if let Some(DeValue::Table(t)) = value {
                    table = t;
                }
                let Some((key, v)) = table.iter().find(|(key, _)| key.get_ref().as_ref() == k.as_str()) else {
                    return span;
                };
                span = key.span();
                value = Some(v.get_ref());
            }
            Segment::Index(i) => {
                let Some(DeValue::Array(items)) = value else { return span };
                let Some(item) = items.get(*i) else { return span };
                value = Some(item.get_ref());
            }
        }
    }
    span
}

fn unknown_key(text: &str, span: std::ops::Range<usize>, path: &[Segment]) -> RailsError {
    let keys: Vec<&str> = path
        .iter()
        .filter_map(|s| match s {
            Segment::Key(k) => Some(k.as_str()),
            Segment::Index(_) => None,
        })
        .collect();
    let (key, section) = keys.split_last().map_or(("", &[][..]), |(k, s)| (*k, s));
    let expected: Vec<String> = keys_of(section).iter().map(|k| k.to_string()).collect();
    let suggestion = expected
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.clone());
    let at = At::of(text, span, "unknown key");
    RailsError::UnknownKey {
        file: FILE.into(),
        line: at.line,
        key: key.to_string(),
        section: section.join("."),
        suggestion,
        expected,
        at: Some(at),
    }
}

fn toml_error(text: &str, e: &::toml::de::Error) -> RailsError {
    let at = e.span().map(|s| At::of(text, s, "here"));
    RailsError::Syntax {
        file: FILE.into(),
        line: at.as_ref().map_or(1, |a| a.line),
        message: e.message().trim().to_string(),
        at,
    }
}

/// The field names serde derives for `T`, read by asking `T` to
/// deserialize itself from a deserializer that only records them.
fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut probe = FieldProbe(&[]);
    let _ = T::deserialize(&mut probe);
    probe.0
}

struct FieldProbe(&'static [&'static str]);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field probe")
    }
}

impl std::error::Error for Stop {}

impl serde::de::Error for Stop {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Stop
    }
}

impl<'de> serde::Deserializer<'de> for &mut FieldProbe {
    type Error = Stop;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        self.0 = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_of_a_table_come_from_its_type() {
        assert_eq!(keys_of(&["budget"]), ["max_lines", "max_bytes", "max_files"]);
        assert!(keys_of(&["providers", "anything"]).contains(&"journal"));
        assert!(keys_of(&[]).contains(&"sandbox"));
        assert!(keys_of(&["nope"]).is_empty());
    }

    fn unknown(text: &str) -> (usize, String, String) {
        match read(text) {
            Err(RailsError::UnknownKey { line, key, section, .. }) => (line, key, section),
            Err(other) => panic!("expected an unknown key, got {other:?}"),
            Ok(_) => panic!("expected an unknown key"),
        }
    }

    #[test]
    fn unknown_keys_are_found_at_any_depth_with_their_line() {
        let base = "[paths]\nallow = [\"src/**\"]\n";
        assert_eq!(unknown(&format!("{base}[budget]\nmax_line = 3\n")), (4, "max_line".into(), "budget".into()));
        assert_eq!(
            unknown(&format!("{base}[providers.self]\nkind = \"command\"\ncomand = [\"x\"]\n")),
            (5, "comand".into(), "providers.self".into())
        );
        assert_eq!(
            unknown(&format!(
                "{base}[[trust.tiers]]\nname = \"a\"\npaths = []\n[[trust.tiers]]\nname = \"b\"\npath = []\n"
            )),
            (8, "path".into(), "trust.tiers".into())
        );
        assert_eq!(unknown(&format!("{base}[gate.auto_merge]\nenabeld = true\n")).0, 4);
        // In a spanned table too, and inline.
        assert_eq!(unknown("paths = { allow = [\"a\"], alow = 1 }\n"), (1, "alow".into(), "paths".into()));
        // The first in the file wins.
        assert_eq!(unknown(&format!("zzz = 1\n{base}[budget]\naaa = 2\n")).1, "zzz");
    }

    #[test]
    fn a_type_error_names_its_line() {
        match read("[paths]\nallow = [\"a\"]\n[budget]\nmax_lines = \"ten\"\n") {
            Err(RailsError::Syntax { line, at, .. }) => {
                assert_eq!(line, 4);
                assert_eq!(at.unwrap().text, "max_lines = \"ten\"");
            }
            _ => panic!("expected a syntax error"),
        }
    }
}

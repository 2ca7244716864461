//! A proposal (DESIGN §5): what a provider returns and a remote bot
//! submits as a candidate — one patch, a rationale, next steps, the focus
//! it answers and its evidence — and its packet hash, the name every Gate 1
//! verdict, Gate 2 approval and log entry binds to.
//!
//! Parsing is strict: unknown fields, duplicate keys, wrong types and
//! missing fields are `BAD_PATCH`, with a message naming the field. A
//! proposal carrying several patches parses (so that Gate 1 can object to
//! it with `NOT_ATOMIC`), but nothing ever applies more than one.
//!
//! The packet hash is not the improvement packet: that is LoopKit's
//! diagnosis of a pain ([`crate::loopkit::packet`]).

use serde_json::{Map, Value};

use crate::patch::{Patch, PatchError, required_string};

/// What a provider returns: one patch and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub rationale: String,
    /// Exactly one when the proposal is atomic; several parse (so that
    /// Gate 1 can object with `NOT_ATOMIC`) but never apply.
    pub patches: Vec<Patch>,
    pub next_steps: Vec<String>,
    /// `pain:<id>`, `next:<step-id>#<n>` or `intent`.
    pub focus: Option<String>,
    pub evidence: Vec<String>,
}

const PROPOSAL_FIELDS: [&str; 5] = ["rationale", "patch", "next_steps", "focus", "evidence"];

impl Proposal {
    /// Parses the text of a proposal file: a proposal object, a bare patch
    /// object (`{"op",...}`, wrapped with an empty rationale), or an array
    /// of bare patches. Duplicate keys anywhere are refused.
    pub fn parse(text: &str) -> Result<Proposal, PatchError> {
        Proposal::from_value(&parse_json(text)?)
    }

    /// Parses an already-read JSON value (see [`Proposal::parse`]).
    pub fn from_value(value: &Value) -> Result<Proposal, PatchError> {
        let bare = |patches| Proposal {
            rationale: String::new(),
            patches,
            next_steps: Vec::new(),
            focus: None,
            evidence: Vec::new(),
        };
        match value {
            Value::Object(obj) if obj.contains_key("op") => Ok(bare(vec![Patch::from_value(value, "")?])),
            Value::Object(obj) => {
                if let Some(key) = obj.keys().find(|k| !PROPOSAL_FIELDS.contains(&k.as_str())) {
                    let hint = if key == "patches" { "; a proposal carries its one patch in `patch`" } else { "" };
                    return Err(PatchError::bad(
                        key.clone(),
                        format!(
                            "unknown field {key:?} in the proposal (expected {}){hint}",
                            PROPOSAL_FIELDS.join(", ")
                        ),
                    ));
                }
                let rationale = required_string(obj, "rationale", "rationale")?;
                let patches = match obj.get("patch") {
                    None => return Err(PatchError::bad("patch", "patch is missing")),
                    Some(list @ Value::Array(_)) => patch_list(list, "patch")?,
                    Some(p) => vec![Patch::from_value(p, "patch")?],
                };
                Ok(Proposal {
                    rationale,
                    patches,
                    next_steps: optional_strings(obj, "next_steps")?,
                    focus: match obj.get("focus") {
                        None | Some(Value::Null) => None,
                        Some(Value::String(s)) => Some(s.clone()),
                        Some(other) => {
                            return Err(PatchError::bad(
                                "focus",
                                format!("focus must be a string, found {}", crate::canonical::kind(other)),
                            ));
                        }
                    },
                    evidence: optional_strings(obj, "evidence")?,
                })
            }
            list @ Value::Array(_) => Ok(bare(patch_list(list, "")?)),
            other => Err(PatchError::bad(
                "",
                format!("expected a JSON object (a proposal or a patch), found {}", crate::canonical::kind(other)),
            )),
        }
    }

    /// The one patch of an atomic proposal.
    pub fn single(&self) -> Option<&Patch> {
        match self.patches.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// The normal form: all five fields, defaults explicit (`next_steps` and
    /// `evidence` `[]`, `focus` `null`); `patch` an object, or an array when
    /// the proposal carries several.
    pub fn to_value(&self) -> Value {
        let patch = match self.patches.as_slice() {
            [one] => one.to_value(),
            many => Value::Array(many.iter().map(Patch::to_value).collect()),
        };
        serde_json::json!({
            "rationale": self.rationale,
            "patch": patch,
            "next_steps": self.next_steps,
            "focus": self.focus,
            "evidence": self.evidence,
        })
    }

    /// The distinct paths the proposal's patches name, in order.
    pub fn paths(&self) -> Vec<&str> {
        let mut seen = std::collections::BTreeSet::new();
        self.patches.iter().map(Patch::path).filter(|p| seen.insert(*p)).collect()
    }

    /// The packet hash of this proposal on `base` under `intent`; see [`packet_hash`].
    pub fn packet(&self, base: Option<&str>, intent: &str) -> String {
        packet_hash(&self.to_value(), base, intent)
    }
}

/// The packet hash: blake3, lower-case hex, of the canonical JSON (sorted
/// keys, no insignificant white space; [`crate::canonical`]) of
///
/// ```json
/// {"base": "<head commit hex, or null on an unborn branch>",
///  "intent": "<blake3 hex of the current intent's text>",
///  "proposal": <the proposal>}
/// ```
///
/// where the proposal is its normal form ([`Proposal::to_value`]), or, for
/// input that does not parse as a proposal, the JSON value as submitted.
/// Gate 1 verdicts, Gate 2 approvals and the log all name this hash.
pub fn packet_hash(proposal: &Value, base: Option<&str>, intent: &str) -> String {
    crate::canonical::hash(&serde_json::json!({ "proposal": proposal, "base": base, "intent": intent }))
}

/// Parses JSON text strictly: duplicate keys anywhere are `BAD_PATCH`.
pub fn parse_json(text: &str) -> Result<Value, PatchError> {
    crate::canonical::strict::from_str(text)
        .map_err(|e| PatchError::bad("", format!("the proposal is not valid JSON: {e}")))
}

fn patch_list(list: &Value, at: &str) -> Result<Vec<Patch>, PatchError> {
    let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
    if items.is_empty() {
        let name = if at.is_empty() { "the patch list" } else { at };
        return Err(PatchError::bad(at, format!("{name} is an empty array; a proposal carries one patch")));
    }
    items.iter().enumerate().map(|(i, p)| Patch::from_value(p, &format!("{at}[{i}]"))).collect()
}

fn optional_strings(obj: &Map<String, Value>, key: &str) -> Result<Vec<String>, PatchError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(PatchError::bad(
                    format!("{key}[{i}]"),
                    format!("{key}[{i}] must be a string, found {}", crate::canonical::kind(other)),
                )),
            })
            .collect(),
        Some(other) => Err(PatchError::bad(
            key,
            format!("{key} must be an array of strings, found {}", crate::canonical::kind(other)),
        )),
    }
}

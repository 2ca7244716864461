//! The bodies of the signed writes, parsed strictly into types.
//!
//! Field names are the public SDK's (`botId`, `storyId`, `packetHash`,
//! `basePacketHash`, `verified`, `role`, `severity`, `reason`, `vote`),
//! except the candidate, which is ratchet's proposal (DESIGN §5) signed by
//! a bot:
//!
//! ```json
//! {"botId": "…", "verified": false, "base": "<commit the patch is made against>",
//!  "rationale": "…", "patch": {"op": "replace", "path": "…", "old": "…", "new": "…"},
//!  "next_steps": ["…"], "focus": "intent", "evidence": ["…"], "metadata": {"any": "thing"}}
//! ```
//!
//! Unknown fields are refused (a field ratchet ignores could mislead the
//! bot that sent it), except `linkedHumanId`, which the SDK may send and
//! which is never authoritative here (the operator's vouch is).

use serde_json::Value;

use super::json::Json;

/// What is wrong with a body: one field, in words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BodyError {
    pub field: String,
    pub message: String,
}

fn bad(field: &str, message: impl Into<String>) -> BodyError {
    BodyError { field: field.into(), message: message.into() }
}

/// Longest free text (rationale, reason) a body may carry.
pub const MAX_TEXT: usize = 8_000;
/// Largest `metadata`, as canonical JSON.
pub const MAX_METADATA: usize = 16_384;

struct Fields<'a> {
    members: &'a [(String, Json)],
}

impl<'a> Fields<'a> {
    fn of(body: &'a Json, known: &[&str]) -> Result<Fields<'a>, BodyError> {
        let Json::Obj(members) = body else {
            return Err(bad("", format!("the body must be a JSON object, found {}", body.kind())));
        };
        if let Some((k, _)) = members.iter().find(|(k, _)| !known.contains(&k.as_str()) && k != "linkedHumanId") {
            return Err(bad(k, format!("unknown field {k:?} (this write takes {})", known.join(", "))));
        }
        Ok(Fields { members })
    }

    fn get(&self, key: &str) -> Option<&'a Json> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn string(&self, key: &str, max: usize) -> Result<String, BodyError> {
        match self.get(key) {
            Some(Json::Str(s)) if s.trim().is_empty() => Err(bad(key, format!("{key} is empty"))),
            Some(Json::Str(s)) if s.len() > max => Err(bad(key, format!("{key} is over {max} bytes"))),
            Some(Json::Str(s)) => Ok(s.clone()),
            None => Err(bad(key, format!("{key} is missing"))),
            Some(other) => Err(bad(key, format!("{key} must be a string, found {}", other.kind()))),
        }
    }

    fn opt_string(&self, key: &str, max: usize) -> Result<Option<String>, BodyError> {
        match self.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(_) => self.string(key, max).map(Some),
        }
    }

    fn boolean(&self, key: &str, required: bool) -> Result<bool, BodyError> {
        match self.get(key) {
            Some(Json::Bool(b)) => Ok(*b),
            None if !required => Ok(false),
            None => Err(bad(key, format!("{key} is missing (send false for the self-serve path)"))),
            Some(other) => Err(bad(key, format!("{key} must be a boolean, found {}", other.kind()))),
        }
    }

    fn one_of(&self, key: &str, allowed: &[String]) -> Result<String, BodyError> {
        let v = self.string(key, 64)?;
        if !allowed.contains(&v) {
            return Err(bad(key, format!("{key} {v:?} is not one of {}", allowed.join(", "))));
        }
        Ok(v)
    }

    fn hash(&self, key: &str) -> Result<String, BodyError> {
        let v = self.string(key, 64)?;
        if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err(bad(key, format!("{key} must be 64 lower-case hex digits (a packet hash)")));
        }
        Ok(v)
    }
}

/// `{botId}`: join, verify.
#[derive(Clone, Debug, PartialEq)]
pub struct BotOnly {
    pub bot_id: String,
}

pub fn bot_only(body: &Json) -> Result<BotOnly, BodyError> {
    let f = Fields::of(body, &["botId"])?;
    Ok(BotOnly { bot_id: f.string("botId", 200)? })
}

/// The botId a body names (every write has one).
pub fn bot_id(body: &Json) -> Result<String, BodyError> {
    match body.get("botId") {
        Some(Json::Str(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Json::Str(_)) | None => Err(bad("botId", "botId is missing: every signed write names its bot")),
        Some(other) => Err(bad("botId", format!("botId must be a string, found {}", other.kind()))),
    }
}

/// A candidate: a ratchet proposal signed by a bot.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub bot_id: String,
    pub verified: bool,
    pub base: String,
    /// `{rationale, patch, next_steps, focus?, evidence?}`: what Gate 1 judges.
    pub proposal: Value,
    pub metadata: Option<Value>,
}

pub fn candidate(body: &Json) -> Result<Candidate, BodyError> {
    let f = Fields::of(
        body,
        &["botId", "verified", "base", "rationale", "patch", "next_steps", "focus", "evidence", "metadata"],
    )?;
    let bot_id = f.string("botId", 200)?;
    let verified = f.boolean("verified", true)?;
    let base = f.string("base", 64)?;
    if !(base.len() == 40 || base.len() == 64)
        || !base.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(bad("base", "base must be a full commit id (40 or 64 lower-case hex digits)"));
    }
    let patch = match f.get("patch") {
        Some(p @ Json::Obj(_)) => p.to_value(),
        None => return Err(bad("patch", "patch is missing: one op on one file (create, replace or append)")),
        Some(other) => return Err(bad("patch", format!("patch must be one object, found {}", other.kind()))),
    };
    let next_steps = match f.get("next_steps") {
        Some(Json::Arr(items)) if items.iter().all(|i| matches!(i, Json::Str(_))) => {
            Value::Array(items.iter().map(Json::to_value).collect())
        }
        None => return Err(bad("next_steps", "next_steps is missing (an array of strings, possibly empty)")),
        Some(_) => return Err(bad("next_steps", "next_steps must be an array of strings")),
    };
    let mut proposal = serde_json::json!({
        "rationale": f.string("rationale", MAX_TEXT)?,
        "patch": patch,
        "next_steps": next_steps,
    });
    if let Some(focus) = f.opt_string("focus", 200)? {
        proposal["focus"] = Value::String(focus);
    }
    match f.get("evidence") {
        None | Some(Json::Null) => {}
        Some(Json::Arr(items)) if items.iter().all(|i| matches!(i, Json::Str(_))) => {
            proposal["evidence"] = Value::Array(items.iter().map(Json::to_value).collect());
        }
        Some(_) => return Err(bad("evidence", "evidence must be an array of strings")),
    }
    let metadata = match f.get("metadata") {
        None | Some(Json::Null) => None,
        Some(m @ Json::Obj(_)) => {
            if crate::agents::json::canonical(m, crate::agents::json::KeyOrder::Code).len() > MAX_METADATA {
                return Err(bad("metadata", format!("metadata is over {MAX_METADATA} bytes")));
            }
            Some(m.to_value())
        }
        Some(other) => return Err(bad("metadata", format!("metadata must be an object, found {}", other.kind()))),
    };
    Ok(Candidate { bot_id, verified, base, proposal, metadata })
}

/// An attestation or an objection.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub bot_id: String,
    pub story_id: String,
    pub packet_hash: String,
    pub verified: bool,
    pub role: String,
    /// Objections only: LOW, MEDIUM, HIGH or CRITICAL.
    pub severity: Option<String>,
    pub reason: Option<String>,
}

pub const SEVERITIES: [&str; 4] = ["LOW", "MEDIUM", "HIGH", "CRITICAL"];

pub fn attestation(body: &Json, roles: &[String]) -> Result<Verdict, BodyError> {
    let f = Fields::of(body, &["botId", "storyId", "packetHash", "verified", "role"])?;
    Ok(Verdict {
        bot_id: f.string("botId", 200)?,
        story_id: f.string("storyId", 64)?,
        packet_hash: f.hash("packetHash")?,
        verified: f.boolean("verified", true)?,
        role: f.one_of("role", roles)?,
        severity: None,
        reason: None,
    })
}

pub fn objection(body: &Json, roles: &[String]) -> Result<Verdict, BodyError> {
    let f = Fields::of(body, &["botId", "storyId", "packetHash", "verified", "role", "severity", "reason"])?;
    let severities: Vec<String> = SEVERITIES.map(String::from).to_vec();
    Ok(Verdict {
        bot_id: f.string("botId", 200)?,
        story_id: f.string("storyId", 64)?,
        packet_hash: f.hash("packetHash")?,
        verified: f.boolean("verified", true)?,
        role: f.one_of("role", roles)?,
        severity: Some(f.one_of("severity", &severities)?),
        reason: Some(f.string("reason", MAX_TEXT)?),
    })
}

/// A revision proposal: a new patch for a story's candidate.
#[derive(Clone, Debug, PartialEq)]
pub struct Revision {
    pub bot_id: String,
    pub base_packet_hash: String,
    pub patch: Value,
    pub reason: String,
    pub verified: bool,
}

pub fn revision(body: &Json) -> Result<Revision, BodyError> {
    let f = Fields::of(body, &["botId", "basePacketHash", "patch", "reason", "verified"])?;
    let patch = match f.get("patch") {
        Some(p @ Json::Obj(_)) => p.to_value(),
        None => return Err(bad("patch", "patch is missing: a ratchet one-op patch")),
        Some(Json::Arr(_)) => {
            return Err(bad("patch", "patch is one ratchet op ({op, path, …}), not a list of JSON Patch operations"));
        }
        Some(other) => return Err(bad("patch", format!("patch must be an object, found {}", other.kind()))),
    };
    Ok(Revision {
        bot_id: f.string("botId", 200)?,
        base_packet_hash: f.hash("basePacketHash")?,
        patch,
        reason: f.string("reason", MAX_TEXT)?,
        verified: f.boolean("verified", true)?,
    })
}

/// A vote on a revision proposal.
#[derive(Clone, Debug, PartialEq)]
pub struct Vote {
    pub bot_id: String,
    pub role: String,
    pub vote: String,
    pub reason: Option<String>,
    pub verified: bool,
}

pub const VOTES: [&str; 3] = ["YES", "NO", "ABSTAIN"];

pub fn vote(body: &Json, roles: &[String]) -> Result<Vote, BodyError> {
    let f = Fields::of(body, &["botId", "role", "vote", "reason", "verified"])?;
    let votes: Vec<String> = VOTES.map(String::from).to_vec();
    Ok(Vote {
        bot_id: f.string("botId", 200)?,
        role: f.one_of("role", roles)?,
        vote: f.one_of("vote", &votes)?,
        reason: f.opt_string("reason", MAX_TEXT)?,
        verified: f.boolean("verified", false)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::json::parse;

    fn roles() -> Vec<String> {
        vec!["REVIEW".into()]
    }

    #[test]
    fn a_candidate_becomes_a_proposal() {
        let body = parse(
            br#"{"botId":"b","verified":false,"base":"0123456789abcdef0123456789abcdef01234567","rationale":"r",
                "patch":{"op":"append","path":"docs/a.md","content":"x"},"next_steps":[],"metadata":{"k":[1,2]}}"#,
        )
        .unwrap();
        let c = candidate(&body).unwrap();
        assert_eq!(c.proposal["patch"]["op"], "append");
        assert_eq!(c.metadata, Some(serde_json::json!({"k": [1, 2]})));
        assert!(c.proposal.get("metadata").is_none());
    }

    #[test]
    fn bodies_name_the_field_at_fault() {
        let cases: [(&str, &str); 6] = [
            (r#"{"botId":"b","verified":false}"#, "base"),
            (r#"{"botId":"b","verified":"no","base":"0123456789abcdef0123456789abcdef01234567"}"#, "verified"),
            (r#"{"botId":"b","verified":false,"base":"HEAD"}"#, "base"),
            (r#"{"botId":"b","extra":1}"#, "extra"),
            (r#"[1]"#, ""),
            (
                r#"{"botId":"b","verified":false,"base":"0123456789abcdef0123456789abcdef01234567","rationale":"r","patch":[],"next_steps":[]}"#,
                "patch",
            ),
        ];
        for (text, field) in cases {
            let e = candidate(&parse(text.as_bytes()).unwrap()).unwrap_err();
            assert_eq!(e.field, field, "{text}: {e}");
        }
        let h = "a".repeat(64);
        let att = format!(r#"{{"botId":"b","storyId":"s1","packetHash":"{h}","verified":false,"role":"WRITER"}}"#);
        assert_eq!(attestation(&parse(att.as_bytes()).unwrap(), &roles()).unwrap_err().field, "role");
        let obj = format!(
            r#"{{"botId":"b","storyId":"s1","packetHash":"{h}","verified":false,"role":"REVIEW","severity":"HUGE","reason":"x"}}"#
        );
        assert_eq!(objection(&parse(obj.as_bytes()).unwrap(), &roles()).unwrap_err().field, "severity");
        let v = parse(br#"{"botId":"b","role":"REVIEW","vote":"MAYBE"}"#).unwrap();
        assert_eq!(vote(&v, &roles()).unwrap_err().field, "vote");
        let r = parse(br#"{"botId":"b","basePacketHash":"x","patch":{},"reason":"r","verified":false}"#).unwrap();
        assert_eq!(revision(&r).unwrap_err().field, "basePacketHash");
    }
}

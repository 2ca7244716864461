//! Verified ownership without World AgentKit: an operator's vouch.
//!
//! The seed verifies that a bot belongs to a human with a World AgentKit
//! proof, which cannot be checked offline. Here an operator, whose public
//! key the rails list (`[agents] operator_keys`, reviewed like all rails),
//! signs a statement binding a `botId` to a `linkedHumanId`:
//!
//! ```json
//! {"v":1,"type":"ratchet-vouch","aud":"ratchet","botId":"MCow…","linkedHumanId":"alice@example.com",
//!  "issuedAt":"2026-11-21T19:00:00Z","operator":"MCow…","signature":"<base64url>"}
//! ```
//!
//! The signature is Ed25519 (`verify_strict`) over `ratchet-vouch-v1:`
//! followed by the canonical JSON (code-unit order) of the statement
//! without `signature`. The statement travels standard-base64-encoded in
//! the `agentkit` header of `POST /v1/agents/verify`, where the SDK puts
//! an AgentKit proof; optional `nonce`, `uri` and `domain` members (signed
//! like the rest) let the SDK's own AgentKit checks pass, and a `nonce`, when
//! present, must equal the request's `x-agent-nonce`. `ratchet agent vouch
//! BOT` makes one.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::Signature;
use serde_json::{Map, Value};

use super::json::{Json, KeyOrder, canonical};
use super::signed::{Identity, bot_key};

pub const PREFIX: &str = "ratchet-vouch-v1:";

/// Why a vouch statement does not verify a bot.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadVouch(pub String);

/// A verified statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vouch {
    pub bot_id: String,
    pub linked_human_id: String,
    pub operator: String,
    pub issued_at: String,
}

/// Signs a statement for `bot_id` as `operator`.
pub fn make(operator: &Identity, audience: &str, bot_id: &str, human: &str, issued_at: &str) -> String {
    let mut m = Map::new();
    m.insert("v".into(), 1.into());
    m.insert("type".into(), "ratchet-vouch".into());
    m.insert("aud".into(), audience.into());
    m.insert("botId".into(), bot_id.into());
    m.insert("linkedHumanId".into(), human.into());
    m.insert("issuedAt".into(), issued_at.into());
    m.insert("operator".into(), operator.bot_id().into());
    let text = canonical(&Json::from_value(&Value::Object(m.clone())), KeyOrder::Code);
    let sig = operator.sign(format!("{PREFIX}{text}").as_bytes());
    m.insert("signature".into(), URL_SAFE_NO_PAD.encode(sig).into());
    STANDARD.encode(Value::Object(m).to_string())
}

/// Checks a statement (the `agentkit` header's value) for a request by
/// `bot_id` with `nonce`, against the rails' `operators` and `audience`.
pub fn check(header: &str, bot_id: &str, nonce: &str, audience: &str, operators: &[String]) -> Result<Vouch, BadVouch> {
    if header.len() > 8_192 {
        return Err(BadVouch("the statement is over 8 KiB".into()));
    }
    let bytes = STANDARD.decode(header.trim()).map_err(|e| BadVouch(format!("not standard base64: {e}")))?;
    let json = super::json::parse(&bytes).map_err(|e| BadVouch(format!("not JSON: {e}")))?;
    let Json::Obj(members) = &json else { return Err(BadVouch("not a JSON object".into())) };
    let field = |k: &str| json.get(k).and_then(Json::as_str).map(str::to_string);
    if json.get("v") != Some(&Json::Num(1.0)) || field("type").as_deref() != Some("ratchet-vouch") {
        return Err(BadVouch("not a ratchet vouch statement (v 1, type ratchet-vouch)".into()));
    }
    const KNOWN: [&str; 11] =
        ["v", "type", "aud", "botId", "linkedHumanId", "issuedAt", "operator", "signature", "nonce", "uri", "domain"];
    if let Some((k, _)) = members.iter().find(|(k, _)| !KNOWN.contains(&k.as_str())) {
        return Err(BadVouch(format!("unknown member {k:?}")));
    }
    let need = |k: &str| field(k).filter(|v| !v.is_empty()).ok_or_else(|| BadVouch(format!("{k} is missing")));
    let (aud, bot, human, issued, operator, sig) = (
        need("aud")?,
        need("botId")?,
        need("linkedHumanId")?,
        need("issuedAt")?,
        need("operator")?,
        need("signature")?,
    );
    if aud != audience {
        return Err(BadVouch(format!("the statement is for audience {aud:?}, not this server's {audience:?}")));
    }
    let (want, got) = (bot_key(bot_id).map(|k| k.bot_id), bot_key(&bot).map(|k| k.bot_id));
    if want.is_err() || want != got {
        return Err(BadVouch("the statement vouches for another bot".into()));
    }
    if let Some(n) = field("nonce") {
        if n != nonce {
            return Err(BadVouch("the statement's nonce is not this request's x-agent-nonce".into()));
        }
    }
    let op = bot_key(&operator).map_err(|e| BadVouch(format!("operator: {e}")))?;
    if !operators.iter().any(|k| bot_key(k).is_ok_and(|k| k.bot_id == op.bot_id)) {
        return Err(BadVouch("the operator key is not one of the rails' [agents] operator_keys".into()));
    }
    let sig = URL_SAFE_NO_PAD
        .decode(sig.trim_end_matches('='))
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| BadVouch("signature is not 64 bytes of base64url".into()))?;
    let unsigned = Json::Obj(members.iter().filter(|(k, _)| k != "signature").cloned().collect());
    let text = canonical(&unsigned, KeyOrder::Code);
    op.key
        .verify_strict(format!("{PREFIX}{text}").as_bytes(), &Signature::from_bytes(&sig))
        .map_err(|_| BadVouch("the operator's signature does not verify".into()))?;
    if human.len() > 200 {
        return Err(BadVouch("linkedHumanId is over 200 characters".into()));
    }
    Ok(Vouch { bot_id: op_bot(&bot), linked_human_id: human, operator: op.bot_id, issued_at: issued })
}

fn op_bot(bot: &str) -> String {
    bot_key(bot).map(|k| k.bot_id).unwrap_or_else(|_| bot.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vouch_verifies_for_its_bot_audience_and_operator_only() {
        let op = Identity::generate().unwrap();
        let bot = Identity::generate().unwrap();
        let ops = vec![op.bot_id()];
        let s = make(&op, "ratchet", &bot.bot_id(), "alice", "2026-11-21T19:00:00Z");
        let v = check(&s, &bot.bot_id(), "nonce-123", "ratchet", &ops).unwrap();
        assert_eq!(v.linked_human_id, "alice");
        assert!(check(&s, &Identity::generate().unwrap().bot_id(), "n", "ratchet", &ops).is_err());
        assert!(check(&s, &bot.bot_id(), "n", "tmr", &ops).is_err());
        assert!(check(&s, &bot.bot_id(), "n", "ratchet", &[bot.bot_id()]).is_err());
        // A statement signed by a key the rails do not list.
        let rogue = Identity::generate().unwrap();
        let s2 = make(&rogue, "ratchet", &bot.bot_id(), "alice", "2026-11-21T19:00:00Z");
        assert!(check(&s2, &bot.bot_id(), "n", "ratchet", &ops).is_err());
        // An edited statement.
        let mut v: serde_json::Value = serde_json::from_slice(&STANDARD.decode(&s).unwrap()).unwrap();
        v["linkedHumanId"] = "mallory".into();
        let edited = STANDARD.encode(v.to_string());
        let e = check(&edited, &bot.bot_id(), "n", "ratchet", &ops).unwrap_err();
        assert!(e.0.contains("does not verify"), "{e}");
        assert!(check("%%%", &bot.bot_id(), "n", "ratchet", &ops).is_err());
    }
}

//! A model as a critic (DESIGN §8; seed 003 principle 6): it sees the
//! proposal (rationale, the file before and after, the diff) and answers
//! attest or object with a reason, bound to the packet hash: the schema
//! makes it repeat the hash, and an answer naming another is refused.
//! What it decides is up to Gate 1 ([`crate::gate::critics`]); here is
//! only the asking.

use serde_json::json;

use super::{Model, prompt, wire};
use crate::propose::provider::{Failure, Generation, Surroundings};

/// What the critic is shown.
pub struct Review<'a> {
    pub packet: &'a str,
    pub rationale: &'a str,
    pub path: &'a str,
    pub before: &'a str,
    pub after: &'a str,
    pub diff: &'a str,
    pub intent: &'a str,
}

/// The critic's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Critique {
    pub attest: bool,
    pub reason: String,
}

pub const SYSTEM: &str = "You review one proposed change to a file of a software repository, as an independent critic.\n\
Object when the change makes the file worse: it adds wrong facts, typos, duplicated text, broken formatting, text that does not belong there, or it does something other than its rationale says. Otherwise attest.\n\
Answer with one JSON object and nothing else: {\"packet\": \"<the packet id you were given>\", \"verdict\": \"attest\" or \"object\", \"reason\": \"one short sentence\"}.";

impl Model {
    /// Asks this model to critique `review`.
    pub fn critique(
        &self,
        review: &Review<'_>,
        env: &Surroundings,
        hooks: &mut dyn Generation,
    ) -> Result<Critique, Failure> {
        *self.spent.borrow_mut() = crate::record::Cost::default();
        let budget = (self.endpoint.max_prompt_tokens as usize).saturating_sub(prompt::tokens(SYSTEM) + 200)
            * prompt::BYTES_PER_TOKEN;
        let diff = prompt::clip(review.diff, budget / 2);
        let after = prompt::clip(review.after, budget / 2 - diff.len().min(budget / 2));
        let user = format!(
            "## Intent\n{}\n\n## Packet\n{}\n\n## Rationale\n{}\n\n## Diff of {}\n{diff}\n\n## The file after the change\n{after}\n\nAnswer with the JSON object.",
            prompt::clip(review.intent.trim(), 600),
            review.packet,
            review.rationale.trim(),
            review.path,
        );
        let _ = review.before; // the diff carries what changed; the whole before is not needed
        let schema = json!({
            "type": "object",
            "properties": {
                "packet": {"type": "string", "enum": [review.packet]},
                "verdict": {"type": "string", "enum": ["attest", "object"]},
                "reason": {"type": "string"},
            },
            "required": ["packet", "verdict", "reason"],
            "additionalProperties": false,
        });
        let messages = [("system", SYSTEM.to_string()), ("user", user)];
        let prompt_tokens = messages.iter().map(|(_, m)| prompt::tokens(m)).sum::<usize>() as u64;
        if let Some(why) = self.over_allowance(env, prompt_tokens, 256) {
            return Err(Failure::OverBudget { reason: why });
        }
        let reply = self.ask(&messages, &schema, 256, env, hooks).map_err(|e| self.failure(e))?;
        if reply.finish == wire::Finish::Length {
            return Err(Failure::InvalidOutput { reason: "the critique was cut off".into() });
        }
        let t = reply.text.trim();
        let v: serde_json::Value = match (t.find('{'), t.rfind('}')) {
            (Some(a), Some(b)) if b > a => serde_json::from_str(&t[a..=b])
                .map_err(|e| Failure::InvalidOutput { reason: format!("the critique is not JSON ({e})") })?,
            _ => return Err(Failure::InvalidOutput { reason: "the critique holds no JSON object".into() }),
        };
        if v["packet"].as_str() != Some(review.packet) {
            return Err(Failure::InvalidOutput { reason: "the critique is not bound to this packet".into() });
        }
        let attest = match v["verdict"].as_str() {
            Some("attest") => true,
            Some("object") => false,
            _ => {
                return Err(Failure::InvalidOutput {
                    reason: "the critique's verdict is neither attest nor object".into(),
                });
            }
        };
        Ok(Critique { attest, reason: wire::clean(v["reason"].as_str().unwrap_or("")) })
    }
}

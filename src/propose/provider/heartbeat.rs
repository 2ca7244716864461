//! `heartbeat`: deterministic, free, always eligible (seed 003 principle 13).
//!
//! With a focus, it proposes appending a dated patch plan for the focus
//! (evidence, a suggested eval, next steps) to its journal file. When its
//! journal already holds a plan for the same focus (under the same intent),
//! nothing is new and it answers `noop` (which the step still logs). Plans
//! for a next step or the intent leave no next steps of their own, so the
//! heartbeat never feeds itself.

use super::{Answer, Failure, Provider, Surroundings};
use crate::propose::context::Context;

pub struct Heartbeat {
    name: String,
    journal: String,
}

impl Heartbeat {
    pub fn new(name: &str, journal: &str) -> Heartbeat {
        Heartbeat { name: name.to_string(), journal: journal.to_string() }
    }
}

/// The heading that names a focus in the journal; it carries the intent
/// hash so that a new intent is something new.
fn heading(context: &Context, date: &str) -> String {
    format!("## {date} · {} · intent {}", context.focus.reference, &context.intent.hash[..12])
}

impl Provider for Heartbeat {
    fn name(&self) -> &str {
        &self.name
    }

    fn availability(&self, _: &Surroundings) -> Result<(), String> {
        Ok(())
    }

    fn propose(&self, context: &Context, env: &Surroundings) -> Result<Answer, Failure> {
        let now = crate::clock::now();
        let date = now.format("%Y-%m-%d").to_string();
        let marker = format!("· {} · intent {}", context.focus.reference, &context.intent.hash[..12]);
        let existing = std::fs::read_to_string(env.root.join(&self.journal)).ok();
        let journaled =
            existing.as_deref().is_some_and(|t| t.lines().any(|l| l.starts_with("## ") && l.ends_with(&marker)));
        if journaled {
            return Ok(Answer::Noop {
                reason: format!("nothing new: the journal already holds a plan for {}", context.focus.reference),
            });
        }
        let f = &context.focus;
        let mut plan = format!("\n{}\n\n{}\n\n", heading(context, &date), f.text.trim());
        if !f.evidence.is_empty() {
            plan.push_str("Evidence:\n");
            for e in &f.evidence {
                plan.push_str(&format!("- {e}\n"));
            }
            plan.push('\n');
        }
        let (eval, next): (String, Vec<String>) = match f.reference.split_once(':') {
            Some(("pain", id)) => (
                format!("a test that reproduces pain {id} and fails before the fix"),
                vec![
                    format!("Write a failing test for pain {id}"),
                    format!("Fix pain {id} with the smallest patch that makes it pass"),
                ],
            ),
            // A plan for a next step or the intent leaves no further next
            // steps: the heartbeat records, it never feeds itself.
            Some(("next", _)) => ("a check that shows the next step is done".into(), Vec::new()),
            _ => ("a check that shows the repository moved toward the intent".into(), Vec::new()),
        };
        plan.push_str(&format!("Suggested eval: {eval}.\n"));
        if !next.is_empty() {
            plan.push_str("\nNext steps:\n");
            for n in &next {
                plan.push_str(&format!("- {n}\n"));
            }
        }
        let patch = match existing {
            Some(_) => serde_json::json!({"op": "append", "path": self.journal, "content": plan}),
            None => serde_json::json!({
                "op": "create",
                "path": self.journal,
                "content": format!("# ratchet journal\n\nPlans the heartbeat recorded so the loop never stalls.\n{plan}"),
            }),
        };
        Ok(Answer::Proposal {
            value: serde_json::json!({
                "rationale": format!("Heartbeat: record a dated plan for {} so the loop keeps moving.", f.reference),
                "patch": patch,
                "next_steps": next,
                "focus": f.reference,
            }),
            cost: Default::default(),
        })
    }
}

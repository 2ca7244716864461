//! Approve (DESIGN §3): the gates a proposal passes before it is applied.
//!
//! Gate 1 is independent evaluation. Its canonical part is the rule-based
//! evaluators of [`rules`] (`schema`, `path_ok`, `atomic_ok`, `tier`): pure
//! functions of the proposal, the rails, the provider's tier and the
//! current tree, which they only read. Each attests or objects, with a
//! stable code and a human reason, bound to the proposal's packet hash.
//! A proposal with any rule objection is rejected without reaching a human.
//! The quality rules of [`quality`] (`NO_CHANGE`, `DUPLICATED_TEXT`,
//! `PROMPT_ECHO`, `BROKEN_STRUCTURE`) are rules like the others.
//! Model critics ([`critics`]) are asked once the rules attest: capped,
//! never the proposer, never deciding alone. (Remote bots' attestations
//! and Gate 2, the human, come later.)

pub mod critics;
pub mod quality;
pub mod rules;

pub use rules::{Decision, EVALUATORS_VERSION, Gate1, IntentRef, RuleError, Verdict, evaluate, evaluate_value};

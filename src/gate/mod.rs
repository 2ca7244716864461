//! Approve (DESIGN §3): the two gates a proposal passes before it is applied.
//!
//! - [`one`], Gate 1, is independent evaluation. Its canonical part is the
//!   rule-based evaluators (`schema`, `path_ok`, `atomic_ok`, `tier`, and
//!   the quality rules of [`quality`]: `NO_CHANGE`, `DUPLICATED_TEXT`,
//!   `PROMPT_ECHO`, `BROKEN_STRUCTURE`): pure functions of the proposal, the
//!   rails, the provider's tier and the current tree, which they only read.
//!   Each attests or objects, with a stable code and a human reason, bound
//!   to the proposal's packet hash. A proposal with any rule objection is
//!   rejected without reaching a human. Model [`critics`] are asked once the
//!   rules attest: capped, never the proposer, never deciding alone.
//! - [`two`], Gate 2, is the human: what they are shown, what they can
//!   answer, and the one narrow exception, opt-in auto-merge.
//!
//! The step ([`crate::step`]) runs them; `ratchet approve` is a human act at
//! Gate 2.

pub mod critics;
pub mod one;
pub mod quality;
pub mod two;

pub use one::{EVALUATORS_VERSION, Gate1, IntentRef, RuleError, Verdict, evaluate, evaluate_value};
pub use two::{AUTO_SCORE, Decision, Gate2, Review};

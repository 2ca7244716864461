//! ratchet: a local-first loop runner that lets AI agents improve a git
//! repository on rails.
//!
//! One cycle is Pick → Propose → Approve → Apply+Score → Log. This page maps
//! the protocol's words (seed 003, DESIGN.md) to modules:
//!
//! | word | module |
//! |---|---|
//! | workspace, home | [`workspace`] |
//! | rails, protected set, rails.lock | [`rails`] |
//! | intent (hashed, versioned) | [`intent`] |
//! | signals, utility, revert cap | [`score`] |
//! | Log (the step log, `logs/steps.jsonl`), entry, checkpoint, recovery | [`journal`] — "log" means diagnostic logging in Rust, so the protocol's Log is the journal in code; its only writer |
//! | canonical JSON, packet hashes | [`canonical`] |
//! | errors: code, message, next action | [`error`] |
//! | git (the only module naming git2) | [`git`] |
//! | the command line (the only module naming clap and the terminal) | [`cli`] |

pub mod canonical;
pub mod cli;
pub mod clock;
pub mod error;
pub mod git;
pub mod intent;
pub mod journal;
pub mod rails;
pub mod score;
pub mod workspace;

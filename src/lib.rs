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
//! | Log (the step log, `logs/steps.jsonl`) | `journal` — "log" means diagnostic logging in Rust, so the protocol's Log is the journal in code |
//! | canonical JSON, packet hashes | [`canonical`] |
//! | errors: code, message, next action | [`error`] |
//! | git (the only module naming git2) | [`git`] |
//! | LoopKit (seed 000): keys, OTLP, telemetry records, pains, windows, improvement packets | [`loopkit`] (pure domain) |
//! | `ratchet serve`: HTTP, the SQLite store, the server's life (the only module naming axum, tokio and rusqlite) | [`serve`] |
//! | the command line (the only module naming clap and the terminal) | [`cli`] |

#![recursion_limit = "512"]

pub mod canonical;
pub mod cli;
pub mod clock;
pub mod error;
pub mod git;
pub mod intent;
pub mod loopkit;
pub mod rails;
pub mod score;
pub mod serve;
pub mod workspace;

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
//! | patch, proposal, packet hash, path safety, the patch engine | [`patch`] |
//! | Approve: Gate 1's rule evaluators (`schema`, `path_ok`, `atomic_ok`, tier), verdicts | [`approve`] |
//! | Gate 1's quality rules (`NO_CHANGE`, `DUPLICATED_TEXT`, `PROMPT_ECHO`, `BROKEN_STRUCTURE`), model critics | [`approve::quality`], [`approve::critics`] |
//! | provider kinds: `command`, `human`, `heartbeat`, and the models `ollama` and `openai` (prompt, spans, streaming, caps) | [`provider`], [`provider::model`] |
//! | assets (SVG, lock files, minified or generated files: never in a context) | [`assets`] |
//! | tier, progressive trust | [`trust`] |
//! | Log (the step log, `logs/steps.jsonl`) | `journal` — "log" means diagnostic logging in Rust, so the protocol's Log is the journal in code |
//! | Log (the step log, `logs/steps.jsonl`), entry, checkpoint, recovery | [`journal`] — "log" means diagnostic logging in Rust, so the protocol's Log is the journal in code; its only writer |
//! | the checks' output logs (`logs/runs/`), read safely | [`runs`] |
//! | canonical JSON, packet hashes | [`canonical`] |
//! | errors: code, message, next action | [`error`] |
//! | history (statistics, tiers, watchdog) derived from the Log, its snapshot | [`history`], [`history::snapshot`] |
//! | the crash points tests kill the process at | [`fault`] |
//! | git (the only module naming git2) | [`git`] |
//! | LoopKit (seed 000): keys, OTLP, telemetry records, pains, windows, improvement packets | [`loopkit`] (pure domain) |
//! | the loop at a glance (utility, merges and human decisions per day, providers, pending, pains won and slipped), read-only | [`overview`] |
//! | `ratchet serve`: HTTP, the SQLite store, the server's life (the only module naming axum, tokio and rusqlite) | [`serve`] |
//! | the command line (the only module naming clap and the terminal) | [`cli`] |
//! | sandbox: the confinement of every child (providers, checks), what this machine can enforce | [`sandbox`] (the only module naming landlock, seccompiler and namespaces) |

#![recursion_limit = "512"]

pub mod agents;
pub mod assets;
pub mod canonical;
pub mod cli;
pub mod clock;
pub mod demo;
pub mod doctor;
pub mod error;
pub mod fault;
pub mod fsutil;
pub mod gate;
pub mod git;
pub mod golden;
pub mod history;
pub mod init;
pub mod intent;
pub mod journal;
pub mod lock;
pub mod loopkit;
pub mod overview;
pub mod patch;
pub mod pick;
pub mod private;
pub mod process;
pub mod propose;
pub mod rails;
pub mod record;
pub mod runs;
pub mod sandbox;
pub mod score;
pub mod serve;
pub mod step;
pub mod text;
pub mod timing;
pub mod trust;
pub mod watchdog;
pub mod workspace;

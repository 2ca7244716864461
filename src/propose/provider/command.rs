//! `command`: a program that reads the context JSON on stdin and writes a
//! proposal JSON on stdout. This is how the operator's own agent (`self`)
//! and any agent CLI plug in.

use std::time::Duration;

use super::{Answer, Failure, Provider, Surroundings, interpret};
use crate::process::{Ended, run_captured};
use crate::propose::context::Context;

/// Answers larger than this are refused.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

pub struct Command {
    name: String,
    argv: Vec<String>,
    timeout_s: u64,
}

impl Command {
    pub fn new(name: &str, argv: Vec<String>, timeout_s: u64) -> Command {
        Command { name: name.to_string(), argv, timeout_s }
    }

    fn program(&self, env: &Surroundings) -> std::path::PathBuf {
        let program = &self.argv[0];
        if program.contains('/') { env.root.join(program) } else { program.into() }
    }
}

impl Provider for Command {
    fn name(&self) -> &str {
        &self.name
    }

    fn availability(&self, env: &Surroundings) -> Result<(), String> {
        match crate::process::find_program(&self.argv[0], &env.root) {
            Some(_) => Ok(()),
            None => Err(format!("{} is not an executable program", self.argv[0])),
        }
    }

    fn propose(&self, context: &Context, env: &Surroundings) -> Result<Answer, Failure> {
        self.availability(env).map_err(|reason| Failure::Unavailable { reason })?;
        let mut cmd = std::process::Command::new(self.program(env));
        cmd.args(&self.argv[1..])
            .current_dir(&env.root)
            .env("RATCHET_STEP_ID", &env.step_id)
            .env("RATCHET_PROVIDER", &self.name);
        let input = serde_json::to_vec(context).expect("the context always serialises");
        let run = run_captured(cmd, &input, Duration::from_secs(self.timeout_s), MAX_ANSWER_BYTES)
            .map_err(|e| Failure::Unavailable { reason: format!("cannot start {}: {e}", self.argv[0]) })?;
        let stderr_tail = || {
            let text = String::from_utf8_lossy(&run.stderr);
            let tail: Vec<&str> = text.lines().rev().take(3).collect();
            if tail.is_empty() {
                String::new()
            } else {
                format!(" (stderr: {})", tail.into_iter().rev().collect::<Vec<_>>().join(" | "))
            }
        };
        match run.ended {
            Ended::TimedOut => return Err(Failure::Timeout { secs: self.timeout_s }),
            Ended::Interrupted => return Err(Failure::Cancelled),
            Ended::Exited(0) => {}
            Ended::Exited(code) => {
                return Err(Failure::InvalidOutput {
                    reason: format!("{} exited with status {code}{}", self.argv[0], stderr_tail()),
                });
            }
            Ended::Signalled(sig) => {
                return Err(Failure::InvalidOutput {
                    reason: format!("{} was killed by signal {sig}{}", self.argv[0], stderr_tail()),
                });
            }
        }
        if run.stdout_truncated {
            return Err(Failure::InvalidOutput {
                reason: format!("the answer is larger than {MAX_ANSWER_BYTES} bytes"),
            });
        }
        let text = String::from_utf8(run.stdout)
            .map_err(|_| Failure::InvalidOutput { reason: "the answer is not UTF-8".into() })?;
        if text.trim().is_empty() {
            return Err(Failure::InvalidOutput { reason: format!("empty answer{}", stderr_tail()) });
        }
        // Strictly: a key given twice is refused, so that no two readers of
        // this answer can see two different patches.
        let value: serde_json::Value = crate::canonical::strict::from_str(text.trim()).map_err(|e| {
            let start: String = text.trim().chars().take(60).collect();
            Failure::InvalidOutput { reason: format!("the answer is not JSON ({e}): {start:?}") }
        })?;
        interpret(value)
    }
}

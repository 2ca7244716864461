//! The sandbox every child of ratchet runs in: command providers, the
//! checks, and everything they start (DESIGN §6a, issue 8 §3).
//!
//! A [`Policy`] says what a child may touch; [`Policy::confine`] turns a
//! `std::process::Command` into a [`Confined`] one, which the deadlines and
//! captures of [`crate::process`] run as they run any other:
//!
//! ```ignore
//! let cmd = sandbox::Policy::for_workspace(&ws).confine(process::shell(&line, &root))?;
//! let (ended, secs) = process::run_logged(cmd, &log, timeout, &mut |_| {})?;
//! ```
//!
//! # What holds, and what holds it
//!
//! Each promise has a first mechanism and a second one behind it, so that a
//! child that defeats one still meets the other.
//!
//! | promise | how | what keeps the child from undoing it |
//! |---|---|---|
//! | the work tree is writable, `.git/`, `config/`, `intents/`, `golden/`, `logs/` are not | a private mount namespace: each protected directory is bind-mounted read-only over itself | no capabilities left, Landlock (a Landlock domain may not change the mount topology), seccomp (`mount`, `umount2`, `move_mount`, `mount_setattr`, … return `EPERM`) |
//! | no writable path but the tree, a private temp dir and declared caches | Landlock: read and execute beneath `/`, every write right only beneath those | Landlock domains only ever shrink; `no_new_privs` |
//! | ratchet's state and the user's secrets are unreadable | an empty read-only directory (or file) mounted over each (`.ratchet/`, `$XDG_STATE_HOME/ratchet`, `~/.ssh`, … [`DEFAULT_SECRETS`]) | as for the mounts |
//! | the user's unix sockets are unreachable | `/tmp`, `/var/tmp` and `/run` are replaced by private ones (ssh-agent, tmux, X11, D-Bus, docker.sock, `$XDG_RUNTIME_DIR`), `/dev` is rebuilt; sockets named by `SSH_AUTH_SOCK`, `DOCKER_HOST`, `DBUS_SESSION_BUS_ADDRESS` are hidden where they sit; abstract sockets: the network namespace, or Landlock's scope (ABI ≥ 6); every path socket: Landlock (ABI ≥ 9) | as for the mounts |
//! | no network unless `network = true` | a new network namespace with only loopback, brought up inside | `unshare`/`setns` denied by seccomp, no capabilities |
//! | no terminal | a new session (`setsid`) with no controlling terminal; `/dev` has no `tty` and a private `devpts`; `TIOCSTI` and `TIOCLINUX` denied by seccomp, even on an inherited terminal fd | seccomp cannot be lifted |
//! | everything the child starts ends with the run | a PID namespace: the program runs under a small init (pid 1); when it exits, or the supervisor dies (deadline kill, ratchet `SIGKILL`ed: `PR_SET_PDEATHSIG`), the kernel kills every process in the namespace, `setsid` and double-forked ones included | a process cannot leave its PID namespace |
//! | no signal or ptrace outside | the PID namespace (no outside process has a pid inside); Landlock (ptrace out of the domain is refused; signals too with ABI ≥ 6) | |
//! | a scrubbed environment | `PATH`, `HOME`, `LANG`, `LC_*`, `TMPDIR` and ratchet's own `RATCHET_*`; more only by name ([`Policy::env`]) | |
//!
//! With [`Policy::overlay`], the tree is a copy-on-write overlay of another
//! tree, mounted in the child's mount namespace before anything else (the
//! `agent` provider's scratch place): the child reads the other tree and
//! writes only into an upper directory ratchet reads afterwards.
//!
//! Where the kernel lacks a required part (Landlock, user, mount, PID or —
//! without network — network namespaces, seccomp; or the OS is not Linux),
//! [`Policy::confine`] refuses with `SANDBOX_UNAVAILABLE` naming what is
//! missing: a child never runs unconfined by surprise. [`Mode::Off`] is the
//! explicit way to run children as before (the environment is still
//! scrubbed), and [`Enforced`] records which it was for the step log.
//!
//! # The processes of one run
//!
//! ```text
//! ratchet ── supervisor   (its own process group; new user, mount, IPC and network namespaces)
//!              └── init   (pid 1 of a new PID namespace: builds the view, confines itself)
//!                    └── the program (pid 2) and all it starts
//! ```
//!
//! All three are made in the `pre_exec` hook of the one `Command` ratchet
//! spawns, so the rest of ratchet sees an ordinary child whose exit status
//! is the program's (a signal is re-raised by the supervisor), and which
//! `spawn` reports as started once the program was `exec`ed. Everything
//! that allocates — paths, the mount plan, the Landlock ruleset, the
//! seccomp program — is prepared before the fork ([`Policy::confine`]);
//! after it only system calls run (see `child.rs`). The private
//! directories are a tmpfs the init mounts in its own namespace on an empty
//! directory of the user's (`workdir.rs`), so a run costs the host's disk
//! nothing.
//!
//! # Why by hand, and with which parts
//!
//! The `landlock` crate builds the ruleset and `seccompiler` compiles the
//! seccomp programs, both in the parent. Namespaces, mounts and the small
//! init are about a hundred lines of system calls through `libc`: nothing
//! in the crate ecosystem runs them inside `pre_exec` without allocating,
//! and bubblewrap would add a system package and an `exec` per child while
//! giving neither Landlock nor the "die with ratchet" chain.

#[cfg(target_os = "linux")]
mod child;
mod env;
#[cfg(target_os = "linux")]
mod filter;
mod policy;
mod probe;
#[cfg(target_os = "linux")]
mod ruleset;
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
mod view;
#[cfg(target_os = "linux")]
mod workdir;

use std::path::PathBuf;
use std::process::Command;

pub use env::looks_secret;
pub use policy::{DEFAULT_SECRETS, Mode, Overlay, Policy};
pub use probe::{Support, missing_up_front, probe, probe_now};

use crate::error::Coded;

/// Why a child could not be confined.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("this machine cannot sandbox ratchet's children: {}", missing.join(", "))]
    Unavailable { missing: Vec<String> },
    #[error("the sandbox policy cannot hold: {path} {reason}")]
    Policy { path: PathBuf, reason: String },
    #[error("cannot prepare the sandbox: cannot {action} {path}: {source}")]
    Prepare {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot prepare the sandbox's {what}: {reason}")]
    Rules { what: &'static str, reason: String },
    #[error("the sandbox could not be set up ({stage}): {source}")]
    Setup {
        stage: String,
        #[source]
        source: std::io::Error,
    },
}

impl SandboxError {
    /// The sandbox's error inside an error of `spawn` or `process::run_*`.
    pub fn of(e: &std::io::Error) -> Option<&SandboxError> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<SandboxError>())
    }
}

impl Coded for SandboxError {
    fn code(&self) -> &'static str {
        match self {
            SandboxError::Unavailable { .. } => "SANDBOX_UNAVAILABLE",
            SandboxError::Policy { .. } => "SANDBOX_POLICY",
            SandboxError::Prepare { .. } => "SANDBOX_PREPARE",
            SandboxError::Rules { .. } => "SANDBOX_RULES",
            SandboxError::Setup { .. } => "SANDBOX_SETUP",
        }
    }
    fn hint(&self) -> Option<String> {
        Some(match self {
            SandboxError::Unavailable { .. } => "run on Linux with Landlock and unprivileged user namespaces enabled, \
                 or set `[sandbox] mode = \"off\"` in config/rails.toml to run children unconfined, knowingly"
                .into(),
            SandboxError::Policy { .. } => {
                "move the path, or change `[sandbox]` in config/rails.toml so that it does not cover it".into()
            }
            SandboxError::Prepare { path, .. } => {
                format!("check that {} exists and that the temp directory is writable", path.display())
            }
            SandboxError::Rules { .. } => "this kernel refused a part of the sandbox; set `[sandbox] mode = \"off\"` \
                 in config/rails.toml to run children unconfined, knowingly, or run on a kernel with Landlock"
                .into(),
            SandboxError::Setup { .. } => "the stage names what the kernel refused; check that the paths in \
                 `[sandbox]` of config/rails.toml still exist, or set `[sandbox] mode = \"off\"` to run unconfined, knowingly"
                .into(),
        })
    }
}

/// What a confined child ran under, for `ratchet status` and the step log
/// entry (`"sandbox": "enforced"` or `"off"`, and the layers).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Enforced {
    /// `"enforced"` or `"off"`.
    pub sandbox: String,
    /// The Landlock ABI the rules were written for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landlock_abi: Option<u32>,
    /// Whether the child had the network.
    pub network: bool,
    /// What was in force, in a fixed order (`user_ns`, `mount_ns`, `pid_ns`,
    /// `net_ns`, `ipc_ns`, `private_proc`, `private_tmp`, `no_new_privs`,
    /// `caps_dropped`, `landlock`, `landlock_scopes`, `landlock_unix`, `seccomp`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
    /// Environment variables passed by the policy's allow list (names only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
}

impl Enforced {
    pub fn is_enforced(&self) -> bool {
        self.sandbox == "enforced"
    }
}

impl std::fmt::Display for Enforced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.is_enforced() {
            return write!(f, "off (children run unconfined; environment scrubbed)");
        }
        write!(f, "enforced")?;
        if let Some(abi) = self.landlock_abi {
            write!(f, ", Landlock ABI {abi}")?;
        }
        write!(f, ", network {}", if self.network { "on" } else { "off" })?;
        if !self.layers.is_empty() {
            write!(f, " ({})", self.layers.join(", "))?;
        }
        Ok(())
    }
}

/// A command confined by a [`Policy`], ready for [`crate::process`].
///
/// It holds what the child needs until it has started (the Landlock
/// ruleset, the report pipe) and, rarely, a work directory of its own: keep
/// it until the child has ended, as the `process::run_*` functions do.
pub struct Confined {
    cmd: Command,
    enforced: Enforced,
    #[cfg(target_os = "linux")]
    live: Option<child::Live>,
}

impl Confined {
    /// The command, to set its standard streams. Its environment, working
    /// directory and `pre_exec` hook belong to the sandbox: change none.
    pub fn command(&mut self) -> &mut Command {
        &mut self.cmd
    }

    /// What the child runs under.
    pub fn enforced(&self) -> &Enforced {
        &self.enforced
    }

    /// Starts the child. A failure inside the sandbox's set-up comes back as
    /// an error whose inner error is a [`SandboxError`] ([`SandboxError::of`]):
    /// `SANDBOX_UNAVAILABLE` when the kernel would not make a namespace,
    /// else `SANDBOX_SETUP` naming the stage. After a start, [`Self::enforced`]
    /// says what the child actually got (a host `/proc` where a private one
    /// could not be mounted).
    pub fn spawn(&mut self) -> std::io::Result<std::process::Child> {
        let spawned = self.cmd.spawn();
        #[cfg(target_os = "linux")]
        if let Some(live) = &self.live {
            let report = live.report();
            match &spawned {
                Err(e) => {
                    if let Some(failure) = report.failure {
                        return Err(std::io::Error::new(e.kind(), failure));
                    }
                }
                Ok(_) => {
                    if report.host_proc {
                        self.enforced.layers.retain(|l| l != "private_proc");
                        self.enforced.layers.push("host_proc".into());
                    }
                }
            }
        }
        spawned
    }
}

impl crate::process::Spawn for Confined {
    fn command(&mut self) -> &mut Command {
        Confined::command(self)
    }
    fn start(&mut self) -> std::io::Result<std::process::Child> {
        self.spawn()
    }
}

impl Policy {
    /// Turns `cmd` into a command that runs under this policy.
    ///
    /// With [`Mode::On`] this refuses (`SANDBOX_UNAVAILABLE`) where the
    /// kernel cannot hold the policy. With [`Mode::Off`] the command runs as
    /// before, in its own process group, with the environment scrubbed.
    pub fn confine(&self, cmd: Command) -> Result<Confined, SandboxError> {
        match self.mode {
            Mode::Off => Ok(self.unconfined(cmd)),
            Mode::On => self.confined(cmd),
        }
    }

    fn unconfined(&self, mut cmd: Command) -> Confined {
        use std::os::unix::process::CommandExt;
        let env = env::child_env(std::env::vars_os(), cmd.get_envs(), &self.env, None);
        cmd.env_clear().envs(env.vars).process_group(0);
        Confined {
            cmd,
            enforced: Enforced {
                sandbox: "off".into(),
                landlock_abi: None,
                network: true,
                layers: Vec::new(),
                env: env.allowed,
            },
            #[cfg(target_os = "linux")]
            live: None,
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn confined(&self, _cmd: Command) -> Result<Confined, SandboxError> {
        Err(SandboxError::Unavailable { missing: missing_up_front(self.network) })
    }

    #[cfg(target_os = "linux")]
    fn confined(&self, cmd: Command) -> Result<Confined, SandboxError> {
        let missing = missing_up_front(self.network);
        if !missing.is_empty() {
            return Err(SandboxError::Unavailable { missing });
        }
        child::confine(self, probe::landlock_abi().unwrap_or(1), cmd)
    }
}

#[cfg(test)]
mod tests;

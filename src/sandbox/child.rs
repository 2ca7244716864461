//! Confining one command: everything prepared in the parent
//! ([`confine`]), then carried out in the `pre_exec` hook by the
//! supervisor and the init (see the process tree in the module above).
//!
//! # After the fork
//!
//! ratchet is multi-threaded, so between `fork` and `exec` only
//! async-signal-safe work is allowed: no allocation, no locks, no
//! formatting. Everything that needs them — paths as `CString`s, the id
//! maps, the Landlock ruleset, the seccomp program, the stage names for
//! errors — is made in [`confine`]. The code in [`Prepared`] and [`sys`]
//! makes system calls on that memory and nothing else; further processes
//! are made with a raw `clone` (glibc's `fork` would run `atfork` handlers
//! and take locks another thread may have held at the first fork).
//!
//! A failing stage writes `(stage, errno)` to a report pipe the parent
//! reads when the spawn fails, so the error names the stage
//! ([`SandboxError::Setup`]); the errno also reaches `spawn` the usual way.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::view::{self, Access, Attrs, Entry, Host, Kind, Op, Private};
use super::{Confined, Enforced, Policy, SandboxError, env, filter, ruleset, workdir};

/// What a confined command keeps until its run has ended.
pub struct Live {
    /// The directory the init mounts the private tmpfs on (a run's own one
    /// is removed on drop).
    _work: workdir::Workdir,
    /// The read end of the report pipe.
    report: OwnedFd,
    /// Stage names, by index.
    stages: Vec<String>,
}

impl Live {
    /// The run's work directory on the host.
    #[cfg(test)]
    pub fn workdir(&self) -> &Path {
        self._work.path()
    }

    /// What the child reported so far: the first stage that failed, and
    /// whether it had to keep the host's `/proc`.
    pub fn report(&self) -> Report {
        let mut report = Report::default();
        loop {
            let mut record = [0u8; 8];
            // SAFETY: reads at most 8 bytes into the buffer; the fd is non-blocking.
            let n = unsafe { libc::read(self.report.as_raw_fd(), record.as_mut_ptr().cast(), record.len()) };
            if n != 8 {
                return report;
            }
            let stage = u32::from_ne_bytes([record[0], record[1], record[2], record[3]]);
            let errno = i32::from_ne_bytes([record[4], record[5], record[6], record[7]]);
            if stage & NOTE != 0 {
                report.host_proc = true;
                continue;
            }
            if report.failure.is_none() {
                report.failure = Some(self.failure(stage, errno));
            }
        }
    }

    fn failure(&self, stage: u32, errno: i32) -> SandboxError {
        let source = std::io::Error::from_raw_os_error(errno);
        if stage == UNSHARE || stage == ID_MAPS {
            // The kernel would not make the namespaces: say which, if a limit says.
            let what =
                super::probe::exhausted_namespace(errno).unwrap_or("user, mount, PID, IPC or network namespaces");
            return SandboxError::Unavailable { missing: vec![format!("{what} ({}: {source})", self.stage(stage))] };
        }
        SandboxError::Setup { stage: self.stage(stage), source }
    }

    fn stage(&self, stage: u32) -> String {
        self.stages.get(stage as usize).cloned().unwrap_or_else(|| format!("stage {stage}"))
    }
}

/// What a child told its parent about its set-up.
#[derive(Debug, Default)]
pub struct Report {
    pub failure: Option<SandboxError>,
    /// A private `/proc` could not be mounted (the host's one masks parts of
    /// itself, as in some containers): the host's stayed.
    pub host_proc: bool,
}

/// Marks a record that is a note, not a failure.
const NOTE: u32 = 0x8000_0000;

/// Where the sandbox puts private directories, and whether they are writable.
const PRIVATE: &[(&str, &str, bool)] = &[("/tmp", "tmp", true), ("/var/tmp", "var-tmp", true), ("/run", "run", false)];
const DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"];

/// Prepares `cmd` to run under `policy` on a kernel with Landlock ABI `abi`.
pub fn confine(policy: &Policy, abi: u32, mut cmd: Command) -> Result<Confined, SandboxError> {
    let env = env::child_env(std::env::vars_os(), cmd.get_envs(), &policy.env, Some(Path::new("/tmp")));
    let home = env.vars.iter().find(|(k, _)| k == "HOME").map(|(_, v)| PathBuf::from(v));
    let host = host(policy, &cmd, home)?;
    let work = workdir::Workdir::create()?;
    let host = Host { workdir: work.path().to_path_buf(), ..host };
    let view = view::plan(&host)?;
    let built = ruleset::build(abi, &view.rules)?;
    let filters = filter::filters().map_err(|reason| SandboxError::Rules { what: "seccomp filters", reason })?;

    cmd.env_clear().envs(env.vars).current_dir(&host.cwd).process_group(0);

    let mut stages: Vec<String> = STAGES.iter().map(|s| s.to_string()).collect();
    stages.extend(view.ops.iter().map(Op::describe));
    let ops = view.ops.iter().map(|op| RawOp::new(op, &built)).collect::<Result<Vec<_>, _>>()?;
    let (report_r, report_w) = report_pipe()?;
    // SAFETY: plain getters.
    let (uid, gid, parent) = unsafe { (libc::geteuid(), libc::getegid(), libc::getpid()) };
    let mut unshare = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC;
    if !policy.network {
        unshare |= libc::CLONE_NEWNET;
    }
    let prepared = Prepared {
        parent,
        unshare,
        uid_map: format!("{uid} {uid} 1\n").into_bytes(),
        gid_map: format!("{gid} {gid} 1\n").into_bytes(),
        ops,
        loopback: !policy.network,
        cwd: cstring(host.cwd.as_os_str())?,
        ruleset: built.fd,
        filters,
        report: report_w,
    };
    // SAFETY: the hook makes only system calls on memory prepared here (see
    // the module doc); it never returns in the supervisor and the init.
    unsafe {
        cmd.pre_exec(move || prepared.supervise());
    }

    let mut layers = vec!["user_ns", "mount_ns", "pid_ns"];
    if !policy.network {
        layers.push("net_ns");
    }
    layers.push("ipc_ns");
    if host.private_proc {
        layers.push("private_proc");
    }
    layers.extend(["private_tmp", "no_new_privs", "caps_dropped", "landlock"]);
    if built.scopes {
        layers.push("landlock_scopes");
    }
    if built.unix {
        layers.push("landlock_unix");
    }
    layers.push("seccomp");
    Ok(Confined {
        cmd,
        enforced: Enforced {
            sandbox: "enforced".into(),
            landlock_abi: Some(abi),
            network: policy.network,
            layers: layers.into_iter().map(String::from).collect(),
            env: env.allowed,
        },
        live: Some(Live { _work: work, report: report_r, stages }),
    })
}

/// The host's side of the view: canonical paths that exist.
fn host(policy: &Policy, cmd: &Command, home: Option<PathBuf>) -> Result<Host, SandboxError> {
    let policy_err =
        |path: &Path, reason: &str| SandboxError::Policy { path: path.to_path_buf(), reason: reason.into() };
    let tree = policy.tree.canonicalize().map_err(|_| policy_err(&policy.tree, "is not a directory that exists"))?;
    let here = std::env::current_dir().map_err(|e| SandboxError::Prepare {
        action: "find",
        path: PathBuf::from("."),
        source: e,
    })?;
    let cwd = match cmd.get_current_dir() {
        Some(dir) if dir.is_absolute() => dir.to_path_buf(),
        Some(dir) => here.join(dir),
        None => here,
    };
    let cwd = cwd.canonicalize().map_err(|_| policy_err(&cwd, "is the working directory, but does not exist"))?;
    // The tree's overlay, canonical; paths inside the tree are then looked
    // up in its lower tree (the tree itself is an empty mount point).
    let overlay = match &policy.overlay {
        None => None,
        Some(o) => {
            let canon = |p: &Path| p.canonicalize().map_err(|_| policy_err(p, "is not a directory that exists"));
            Some((canon(&o.lower)?, canon(&o.upper)?, canon(&o.work)?))
        }
    };
    let resolve = |p: &Path| -> Option<(PathBuf, Kind)> {
        let p = policy.absolute(p);
        let (found, at) = match (&overlay, p.strip_prefix(&policy.tree)) {
            (Some((lower, _, _)), Ok(rel)) => {
                let found = lower.join(rel).canonicalize().ok()?;
                let at = tree.join(found.strip_prefix(lower).ok()?);
                (found, at)
            }
            _ => {
                let found = p.canonicalize().ok()?;
                (found.clone(), found)
            }
        };
        let kind = if std::fs::metadata(&found).ok()?.is_dir() { Kind::Dir } else { Kind::File };
        Some((at, kind))
    };
    let existing = |paths: &[PathBuf]| -> Vec<(PathBuf, Kind)> {
        let mut out: Vec<(PathBuf, Kind)> = paths.iter().filter_map(|p| resolve(p)).collect();
        out.sort();
        out.dedup();
        out
    };
    for p in &policy.writable {
        let p = policy.absolute(p);
        if std::fs::symlink_metadata(&p).is_err() {
            std::fs::create_dir_all(&p).map_err(|e| SandboxError::Prepare { action: "create", path: p, source: e })?;
        }
    }
    let home = home.filter(|h| h.is_absolute()).and_then(|h| h.canonicalize().ok());
    let program = Path::new(cmd.get_program());
    let program = if program.as_os_str().as_bytes().contains(&b'/') {
        cwd.join(program).canonicalize().ok().filter(|p| p.is_file())
    } else {
        None
    };
    let mut private: Vec<Private> = Vec::new();
    for (path, name, writable) in PRIVATE {
        let Ok(path) = Path::new(path).canonicalize() else { continue };
        if private.iter().any(|r| path.starts_with(&r.path)) {
            continue;
        }
        private.push(Private { path, name, writable: *writable });
    }
    let (read_only, hidden) = (existing(&policy.read_only), existing(&policy.hidden));
    let (writable, mut readable) = (existing(&policy.writable), existing(&policy.readable));
    // What the command names that sits where the sandbox puts a private
    // directory (a clone under /tmp: a script given to an interpreter, a
    // program found on PATH there) stays visible, read-only; nothing else
    // of those directories does.
    let on_path = || {
        let word = cmd.get_program().to_str()?;
        let path = cmd.get_envs().find(|(k, _)| *k == "PATH").and_then(|(_, v)| v.map(OsStr::to_os_string));
        let path = path.or_else(|| std::env::var_os("PATH"))?;
        crate::process::find_program_on(word, &cwd, &path)
    };
    let named = cmd
        .get_args()
        .map(|a| cwd.join(a))
        .chain(program.clone().or_else(on_path))
        .filter_map(|p| p.canonicalize().ok())
        .filter(|p| p.is_file() && private.iter().any(|r| p.starts_with(&r.path)));
    for p in named {
        if !readable.iter().any(|(r, _)| p.starts_with(r)) {
            readable.push((p, Kind::File));
        }
    }
    Ok(Host {
        tree,
        cwd,
        read_only: read_only.into_iter().map(|(p, _)| p).collect(),
        hidden,
        writable,
        readable,
        home,
        program,
        private,
        devices: DEVICES.iter().map(PathBuf::from).filter(|d| d.exists()).collect(),
        workdir: PathBuf::new(),
        private_proc: true,
        overlay,
    })
}

fn cstring(s: &OsStr) -> Result<CString, SandboxError> {
    CString::new(s.as_bytes())
        .map_err(|_| SandboxError::Policy { path: PathBuf::from(s), reason: "contains a NUL byte".into() })
}

fn report_pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(SandboxError::Prepare {
            action: "create",
            path: PathBuf::from("a pipe"),
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: both fds were just created and are owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

// The stages before the mount operations, by index; the operations follow.
const PDEATHSIG: u32 = 0;
const UNSHARE: u32 = 1;
const ID_MAPS: u32 = 2;
const PIPE: u32 = 3;
const FORK_INIT: u32 = 4;
const LOOPBACK: u32 = 5;
const CHDIR: u32 = 6;
const CAPS: u32 = 7;
const NO_NEW_PRIVS: u32 = 8;
const LANDLOCK: u32 = 9;
const SECCOMP: u32 = 10;
const SETSID: u32 = 11;
const FORK_PROGRAM: u32 = 12;
const OPS: u32 = 13;
const STAGES: &[&str] = &[
    "set the parent-death signal",
    "create the user, mount, PID, IPC and network namespaces",
    "write the user namespace's id maps",
    "create the status pipe",
    "start the init",
    "bring up loopback in the network namespace",
    "enter the working directory",
    "drop capabilities",
    "set no_new_privs",
    "enforce the Landlock ruleset",
    "load the seccomp filter",
    "start a new session",
    "start the program",
];

/// A mount operation with its paths as C strings.
enum RawOp {
    Slave,
    Stage { root: CString, entries: Vec<RawEntry>, rules: Vec<(CString, u64)> },
    Bind { src: CString, dst: CString, attrs: u64, recursive: bool },
    Devpts { dst: CString },
    SetAttrs { dst: CString, attrs: u64 },
    Proc,
    Overlay { data: CString, dst: CString, rule: u64 },
}

pub(super) enum RawEntry {
    Dir(CString, libc::mode_t),
    File(CString, libc::mode_t),
    Symlink(CString, CString),
}

impl RawOp {
    fn new(op: &Op, built: &ruleset::Built) -> Result<RawOp, SandboxError> {
        let c = |p: &Path| cstring(p.as_os_str());
        Ok(match op {
            Op::Slave => RawOp::Slave,
            Op::Stage { root, entries, rules } => RawOp::Stage {
                root: c(root)?,
                entries: entries
                    .iter()
                    .map(|e| {
                        Ok(match e {
                            Entry::Dir(p, mode) => RawEntry::Dir(c(p)?, *mode as libc::mode_t),
                            Entry::File(p, mode) => RawEntry::File(c(p)?, *mode as libc::mode_t),
                            Entry::Symlink(p, target) => RawEntry::Symlink(c(p)?, cstring(OsStr::new(target))?),
                        })
                    })
                    .collect::<Result<_, SandboxError>>()?,
                rules: rules
                    .iter()
                    .map(|(p, a)| Ok((c(p)?, if *a == Access::Write { built.write_bits } else { built.read_bits })))
                    .collect::<Result<_, SandboxError>>()?,
            },
            Op::Bind { src, dst, attrs, recursive } => {
                RawOp::Bind { src: c(src)?, dst: c(dst)?, attrs: mount_attrs(*attrs), recursive: *recursive }
            }
            Op::Devpts { dst } => RawOp::Devpts { dst: c(dst)? },
            Op::SetAttrs { dst, attrs } => RawOp::SetAttrs { dst: c(dst)?, attrs: mount_attrs(*attrs) },
            Op::Proc => RawOp::Proc,
            Op::Overlay { lower, upper, work, dst } => {
                let mut data = b"userxattr".to_vec();
                for (key, path) in [("lowerdir", lower), ("upperdir", upper), ("workdir", work)] {
                    data.extend(format!(",{key}=").into_bytes());
                    data.extend(overlay_escape(path.as_os_str().as_bytes()));
                }
                RawOp::Overlay { data: cstring(OsStr::from_bytes(&data))?, dst: c(dst)?, rule: built.write_bits }
            }
        })
    }

    /// Carries the operation out; `ruleset` is the Landlock ruleset's fd.
    /// Async-signal-safe.
    unsafe fn run(&self, ruleset: libc::c_int) -> libc::c_long {
        unsafe {
            match self {
                RawOp::Slave => {
                    let flags = (libc::MS_REC | libc::MS_SLAVE) as libc::c_ulong;
                    libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), flags, std::ptr::null()).into()
                }
                RawOp::Stage { root, entries, rules } => {
                    let flags = (libc::MS_NOSUID | libc::MS_NODEV) as libc::c_ulong;
                    let data = c"mode=0755";
                    let rc =
                        libc::mount(c"tmpfs".as_ptr(), root.as_ptr(), c"tmpfs".as_ptr(), flags, data.as_ptr().cast());
                    if rc != 0 {
                        return rc.into();
                    }
                    // The modes are meant as written; the program gets the umask back.
                    let umask = libc::umask(0);
                    let rc = sys::create(entries);
                    libc::umask(umask);
                    if rc != 0 {
                        return rc;
                    }
                    for (path, access) in rules {
                        let rc = sys::landlock_add_rule(ruleset, path, *access);
                        if rc != 0 {
                            return rc;
                        }
                    }
                    0
                }
                RawOp::Bind { src, dst, attrs, recursive } => {
                    let mut flags = libc::MS_BIND as libc::c_ulong;
                    if *recursive {
                        flags |= libc::MS_REC as libc::c_ulong;
                    }
                    let rc = libc::mount(src.as_ptr(), dst.as_ptr(), std::ptr::null(), flags, std::ptr::null());
                    if rc != 0 || *attrs == 0 {
                        return rc.into();
                    }
                    sys::mount_setattr(dst, *attrs, *recursive)
                }
                RawOp::Devpts { dst } => {
                    let flags = (libc::MS_NOSUID | libc::MS_NOEXEC) as libc::c_ulong;
                    let data = c"newinstance,ptmxmode=0666,mode=0620";
                    libc::mount(c"devpts".as_ptr(), dst.as_ptr(), c"devpts".as_ptr(), flags, data.as_ptr().cast())
                        .into()
                }
                RawOp::SetAttrs { dst, attrs } => sys::mount_setattr(dst, *attrs, false),
                RawOp::Overlay { data, dst, rule } => {
                    let flags = (libc::MS_NOSUID | libc::MS_NODEV) as libc::c_ulong;
                    let rc = libc::mount(
                        c"overlay".as_ptr(),
                        dst.as_ptr(),
                        c"overlay".as_ptr(),
                        flags,
                        data.as_ptr().cast(),
                    );
                    if rc != 0 {
                        return rc.into();
                    }
                    sys::landlock_add_rule(ruleset, dst, *rule)
                }
                RawOp::Proc => {
                    let flags = (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as libc::c_ulong;
                    libc::mount(c"proc".as_ptr(), c"/proc".as_ptr(), c"proc".as_ptr(), flags, std::ptr::null()).into()
                }
            }
        }
    }
}

/// A path as overlayfs reads it in its mount options: `\`, `,` and `:`
/// escaped with a backslash.
fn overlay_escape(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for &b in path {
        if matches!(b, b'\\' | b',' | b':') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

fn mount_attrs(a: Attrs) -> u64 {
    const RDONLY: u64 = 0x1;
    const NOSUID: u64 = 0x2;
    const NODEV: u64 = 0x4;
    const NOEXEC: u64 = 0x8;
    let bit = |on: bool, b: u64| if on { b } else { 0 };
    bit(a.read_only, RDONLY) | bit(a.nosuid, NOSUID) | bit(a.nodev, NODEV) | bit(a.noexec, NOEXEC)
}

/// Everything the hook needs, made before the fork.
struct Prepared {
    /// ratchet's pid: the supervisor's parent.
    parent: libc::pid_t,
    unshare: libc::c_int,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    ops: Vec<RawOp>,
    loopback: bool,
    cwd: CString,
    ruleset: OwnedFd,
    filters: &'static filter::Filters,
    report: OwnedFd,
}

type Step = Result<(), std::io::Error>;

impl Prepared {
    /// Records `stage` as failed with the current errno, as an error.
    fn fail(&self, stage: u32) -> std::io::Error {
        let err = std::io::Error::last_os_error();
        let errno = err.raw_os_error().unwrap_or(libc::EINVAL);
        self.record(stage, errno);
        std::io::Error::from_raw_os_error(errno)
    }

    /// Writes `(stage, errno)` to the report pipe.
    fn record(&self, stage: u32, errno: i32) {
        let mut record = [0u8; 8];
        record[..4].copy_from_slice(&stage.to_ne_bytes());
        record[4..].copy_from_slice(&errno.to_ne_bytes());
        // SAFETY: writes 8 bytes from the stack; a full pipe only loses the detail.
        unsafe { libc::write(self.report.as_raw_fd(), record.as_ptr().cast(), record.len()) };
    }

    fn check(&self, stage: u32, rc: impl Into<libc::c_long>) -> Step {
        if rc.into() < 0 { Err(self.fail(stage)) } else { Ok(()) }
    }

    /// The supervisor: makes the namespaces, starts the init, and ends as
    /// the program ended. Returns only on failure (std then reports it).
    fn supervise(&self) -> Step {
        // SAFETY: system calls on prepared memory only (module doc).
        unsafe {
            self.check(PDEATHSIG, libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong))?;
            if libc::getppid() != self.parent {
                // ratchet died before the line above: nothing to run for.
                libc::_exit(1);
            }
            self.check(UNSHARE, libc::unshare(self.unshare))?;
            for (path, content) in [
                (c"/proc/self/setgroups", &b"deny"[..]),
                (c"/proc/self/uid_map", &self.uid_map[..]),
                (c"/proc/self/gid_map", &self.gid_map[..]),
            ] {
                if sys::write_file(path, content).is_err() {
                    return Err(self.fail(ID_MAPS));
                }
            }
            let mut fds = [0; 2];
            self.check(PIPE, libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC))?;
            let (status_r, status_w) = (fds[0], fds[1]);
            let pid = sys::fork();
            if pid < 0 {
                return Err(self.fail(FORK_INIT));
            }
            if pid == 0 {
                libc::close(status_r);
                return self.init(status_w);
            }
            // Nothing of ratchet's is kept open here but the status pipe, so
            // `spawn` returns once the program has started, and the program's
            // pipes close when the program's processes end.
            libc::close(status_w);
            sys::close_all_but(status_r);
            libc::prctl(libc::PR_SET_NAME, c"ratchet-sandbox".as_ptr());
            // The init writes the program's status, then leaves (its leaving
            // kills what is left in the namespace): one wake-up here, not two.
            let init = sys::wait_for(pid);
            let mut word = [0u8; 4];
            let n = sys::read_full(status_r, &mut word);
            let status = if n == word.len() { libc::c_int::from_ne_bytes(word) } else { init.unwrap_or(libc::SIGKILL) };
            sys::mirror(status)
        }
    }

    /// The init, pid 1 of the new PID namespace: builds the view, confines
    /// itself, starts the program, and reports how it ended. Returns `Ok`
    /// only in the program's process (std then `exec`s it).
    unsafe fn init(&self, status_w: libc::c_int) -> Step {
        unsafe {
            self.check(PDEATHSIG, libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong))?;
            if sys::reader_gone(status_w) {
                // The supervisor died before the line above.
                libc::_exit(1);
            }
            libc::prctl(libc::PR_SET_NAME, c"ratchet-init".as_ptr());
            for (i, op) in self.ops.iter().enumerate() {
                let rc = op.run(self.ruleset.as_raw_fd());
                if rc < 0 && matches!(op, RawOp::Proc) {
                    // The host's /proc masks parts of itself (some containers),
                    // so the kernel refuses a new one: keep the host's, and say so.
                    self.record(NOTE | (OPS + i as u32), *libc::__errno_location());
                    continue;
                }
                self.check(OPS + i as u32, rc)?;
            }
            if self.loopback {
                self.check(LOOPBACK, sys::loopback_up())?;
            }
            self.check(CHDIR, libc::chdir(self.cwd.as_ptr()))?;
            self.check(CAPS, sys::drop_capabilities())?;
            self.check(NO_NEW_PRIVS, libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0))?;
            self.check(LANDLOCK, libc::syscall(libc::SYS_landlock_restrict_self, self.ruleset.as_raw_fd(), 0u32))?;
            self.check(SECCOMP, sys::seccomp(&self.filters.program))?;
            self.check(SETSID, libc::setsid())?;
            libc::close(self.ruleset.as_raw_fd());
            let pid = sys::fork();
            if pid < 0 {
                return Err(self.fail(FORK_PROGRAM));
            }
            if pid == 0 {
                // The program: whatever ratchet inherited is closed at exec.
                libc::close(status_w);
                sys::cloexec_from(3);
                return Ok(());
            }
            sys::close_all_but(status_w);
            loop {
                let mut status = 0;
                let got = libc::waitpid(-1, &mut status, 0);
                if got == pid {
                    let word = status.to_ne_bytes();
                    libc::write(status_w, word.as_ptr().cast(), word.len());
                    // Leaving kills everything else in the namespace.
                    libc::_exit(0);
                }
                if got < 0 && *libc::__errno_location() != libc::EINTR {
                    libc::_exit(1);
                }
            }
        }
    }
}

/// System calls for after the fork: async-signal-safe, no allocation.
pub mod sys {
    use std::ffi::CStr;

    use super::RawEntry;

    /// Creates `entries`, in order (a directory that exists is fine).
    pub unsafe fn create(entries: &[RawEntry]) -> libc::c_long {
        unsafe {
            for entry in entries {
                let rc = match entry {
                    RawEntry::Dir(path, mode) => {
                        let rc = libc::mkdir(path.as_ptr(), *mode);
                        if rc != 0 && *libc::__errno_location() == libc::EEXIST { 0 } else { rc }
                    }
                    RawEntry::File(path, mode) => {
                        let flags = libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC;
                        let fd = libc::open(path.as_ptr(), flags, *mode as libc::c_uint);
                        if fd >= 0 { libc::close(fd) } else { fd }
                    }
                    RawEntry::Symlink(path, target) => libc::symlink(target.as_ptr(), path.as_ptr()),
                };
                if rc != 0 {
                    return rc.into();
                }
            }
            0
        }
    }

    /// `landlock_add_rule(2)`: `access` beneath the directory at `path`.
    pub unsafe fn landlock_add_rule(ruleset: libc::c_int, path: &CStr, access: u64) -> libc::c_long {
        // struct landlock_path_beneath_attr, which the kernel declares packed.
        #[repr(C, packed)]
        struct PathBeneath {
            allowed_access: u64,
            parent_fd: i32,
        }
        const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
            if fd < 0 {
                return fd.into();
            }
            let attr = PathBeneath { allowed_access: access, parent_fd: fd };
            let rc = libc::syscall(
                libc::SYS_landlock_add_rule,
                ruleset,
                LANDLOCK_RULE_PATH_BENEATH,
                &attr as *const PathBeneath,
                0u32,
            );
            let saved = *libc::__errno_location();
            libc::close(fd);
            *libc::__errno_location() = saved;
            rc
        }
    }

    /// A plain `fork` by `clone(SIGCHLD)`, without glibc's `atfork` handlers.
    pub unsafe fn fork() -> libc::pid_t {
        // SAFETY: no new stack, no shared memory: the semantics of fork(2).
        unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) as _ }
    }

    /// Writes `content` to the file at `path` in one `write`.
    pub unsafe fn write_file(path: &CStr, content: &[u8]) -> Result<(), ()> {
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(());
            }
            let n = libc::write(fd, content.as_ptr().cast(), content.len());
            let saved = *libc::__errno_location();
            libc::close(fd);
            *libc::__errno_location() = saved;
            if n == content.len() as isize { Ok(()) } else { Err(()) }
        }
    }

    /// Waits for `pid`; its wait status, or the errno.
    pub unsafe fn wait_for(pid: libc::pid_t) -> Result<libc::c_int, libc::c_int> {
        unsafe {
            loop {
                let mut status = 0;
                let got = libc::waitpid(pid, &mut status, 0);
                if got == pid {
                    return Ok(status);
                }
                let errno = *libc::__errno_location();
                if got < 0 && errno != libc::EINTR {
                    return Err(errno);
                }
            }
        }
    }

    /// Reads until `buf` is full or the pipe ends; the bytes read.
    pub unsafe fn read_full(fd: libc::c_int, buf: &mut [u8]) -> usize {
        let mut done = 0;
        while done < buf.len() {
            // SAFETY: reads into the rest of `buf`.
            let n = unsafe { libc::read(fd, buf[done..].as_mut_ptr().cast(), buf.len() - done) };
            if n > 0 {
                done += n as usize;
            } else if n == 0 || unsafe { *libc::__errno_location() } != libc::EINTR {
                break;
            }
        }
        done
    }

    /// Whether the pipe whose write end is `fd` has lost its reader.
    pub unsafe fn reader_gone(fd: libc::c_int) -> bool {
        let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
        // SAFETY: one pollfd, no wait.
        unsafe { libc::poll(&mut p, 1, 0) == 1 && p.revents & libc::POLLERR != 0 }
    }

    /// Closes every fd but `keep`.
    pub unsafe fn close_all_but(keep: libc::c_int) {
        unsafe {
            if keep > 0 {
                libc::syscall(libc::SYS_close_range, 0u32, (keep - 1) as u32, 0u32);
            }
            libc::syscall(libc::SYS_close_range, (keep + 1) as u32, u32::MAX, 0u32);
        }
    }

    /// Marks every fd from `first` on close-on-exec.
    pub unsafe fn cloexec_from(first: u32) {
        // SAFETY: only sets a flag on open fds.
        unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    }

    /// Ends this process as `status` (a wait status) says the program ended:
    /// the same exit code, or the same signal.
    pub unsafe fn mirror(status: libc::c_int) -> ! {
        unsafe {
            if libc::WIFEXITED(status) {
                libc::_exit(libc::WEXITSTATUS(status));
            }
            if libc::WIFSIGNALED(status) {
                let sig = libc::WTERMSIG(status);
                let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                libc::setrlimit(libc::RLIMIT_CORE, &none);
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &action, std::ptr::null_mut());
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, sig);
                libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                libc::kill(libc::getpid(), sig);
                libc::_exit(128 + sig);
            }
            libc::_exit(1)
        }
    }

    /// `mount_setattr(2)`: sets `attrs` (`MOUNT_ATTR_*`) on the mount at `path`.
    pub unsafe fn mount_setattr(path: &CStr, attrs: u64, recursive: bool) -> libc::c_long {
        #[repr(C)]
        struct MountAttr {
            attr_set: u64,
            attr_clr: u64,
            propagation: u64,
            userns_fd: u64,
        }
        const AT_RECURSIVE: libc::c_uint = 0x8000;
        let attr = MountAttr { attr_set: attrs, attr_clr: 0, propagation: 0, userns_fd: 0 };
        let flags = if recursive { AT_RECURSIVE } else { 0 };
        // SAFETY: the struct is the kernel's `struct mount_attr`, passed with its size.
        unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                libc::AT_FDCWD,
                path.as_ptr(),
                flags,
                &attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        }
    }

    /// Brings up `lo` in the current network namespace.
    pub unsafe fn loopback_up() -> libc::c_long {
        unsafe {
            let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if s < 0 {
                return -1;
            }
            let mut req: libc::ifreq = std::mem::zeroed();
            req.ifr_name[0] = b'l' as libc::c_char;
            req.ifr_name[1] = b'o' as libc::c_char;
            let mut rc = libc::ioctl(s, libc::SIOCGIFFLAGS, &mut req);
            if rc == 0 {
                req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
                rc = libc::ioctl(s, libc::SIOCSIFFLAGS, &req);
            }
            let saved = *libc::__errno_location();
            libc::close(s);
            *libc::__errno_location() = saved;
            rc.into()
        }
    }

    /// Drops every capability, for good: securebits that give none back to
    /// uid 0 (locked), an empty bounding set, no ambient, inheritable,
    /// permitted or effective capabilities.
    pub unsafe fn drop_capabilities() -> libc::c_long {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: libc::c_int,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
        unsafe {
            let bits = libc::SECBIT_NOROOT
                | libc::SECBIT_NOROOT_LOCKED
                | libc::SECBIT_NO_SETUID_FIXUP_LOCKED
                | libc::SECBIT_KEEP_CAPS_LOCKED
                | libc::SECBIT_NO_CAP_AMBIENT_RAISE
                | libc::SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
            if libc::prctl(libc::PR_SET_SECUREBITS, bits as libc::c_ulong) != 0 {
                return -1;
            }
            for cap in 0..64 as libc::c_ulong {
                if libc::prctl(libc::PR_CAPBSET_DROP, cap) != 0 && *libc::__errno_location() != libc::EINVAL {
                    return -1;
                }
            }
            let clear = libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong;
            if libc::prctl(libc::PR_CAP_AMBIENT, clear, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) != 0
            {
                return -1;
            }
            let header = Header { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
            let data = [Data { effective: 0, permitted: 0, inheritable: 0 }; 2];
            libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr())
        }
    }

    /// Loads one seccomp program.
    pub unsafe fn seccomp(program: &[seccompiler::sock_filter]) -> libc::c_long {
        let prog = libc::sock_fprog {
            len: program.len() as libc::c_ushort,
            // seccompiler's `sock_filter` is `#[repr(C)]`, the kernel's layout.
            filter: program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: the kernel copies the program.
        unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0 as libc::c_uint,
                &prog as *const libc::sock_fprog,
            )
        }
    }
}

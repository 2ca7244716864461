//! What this machine can enforce, found by trying: for `ratchet status`,
//! `ratchet doctor`, and [`super::Policy::confine`]'s refusal.
//!
//! Reading `/proc/sys` knobs is not enough (an AppArmor policy may let
//! `unshare` succeed yet strip the namespace's capabilities), so the probe
//! forks a process that makes each namespace and mounts in it, and reports
//! what worked. It runs once per process ([`probe`]); [`probe_now`] runs it
//! again.
//!
//! That trial costs a few milliseconds, too much for every `ratchet step`,
//! so [`super::Policy::confine`] asks only what is free to ask
//! ([`missing_up_front`]: the OS, Landlock, seccomp, the user-namespace
//! sysctls) and lets the child tell the rest: a namespace the kernel
//! refuses fails the spawn at a named stage, reported as
//! `SANDBOX_UNAVAILABLE` too.

use std::sync::OnceLock;

/// What the kernel offers the sandbox here.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Support {
    /// `std::env::consts::OS`.
    pub os: String,
    /// `std::env::consts::ARCH`.
    pub arch: String,
    /// The Landlock ABI version, if Landlock is enabled.
    pub landlock_abi: Option<u32>,
    pub user_ns: bool,
    /// A mount namespace owned by the new user namespace, where bind mounts work.
    pub mount_ns: bool,
    pub pid_ns: bool,
    pub net_ns: bool,
    pub ipc_ns: bool,
    /// A fresh `/proc` can be mounted for the PID namespace (not where the
    /// host's `/proc` is partly masked, as in some containers).
    pub private_proc: bool,
    /// seccomp filters, for an architecture the filter compiler knows.
    pub seccomp: bool,
}

impl Support {
    /// What is missing to confine a child with or without the network, as
    /// words for `SANDBOX_UNAVAILABLE`; empty when it can be done.
    pub fn missing(&self, network: bool) -> Vec<String> {
        if self.os != "linux" {
            return vec![format!("Linux (this is {})", self.os)];
        }
        let mut missing = Vec::new();
        if self.landlock_abi.is_none() {
            missing.push("Landlock (kernel 5.13 or later, with `lsm=...,landlock` at boot)".into());
        }
        if !self.user_ns {
            missing.push("unprivileged user namespaces (sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone = 1, no AppArmor restriction)".into());
        } else {
            if !self.mount_ns {
                missing.push("mount namespaces inside a user namespace".into());
            }
            if !self.pid_ns {
                missing.push("PID namespaces".into());
            }
            if !network && !self.net_ns {
                missing.push("network namespaces".into());
            }
            if !self.ipc_ns {
                missing.push("IPC namespaces".into());
            }
        }
        if !self.seccomp {
            missing.push(format!("seccomp filters (for {})", self.arch));
        }
        missing
    }

    /// Whether a child without network can be confined here.
    pub fn can_enforce(&self) -> bool {
        self.missing(false).is_empty()
    }
}

impl std::fmt::Display for Support {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let missing = self.missing(false);
        if !missing.is_empty() {
            return write!(f, "cannot sandbox: missing {}", missing.join(", "));
        }
        let yes = |b: bool, word: &'static str| if b { Some(word) } else { None };
        let ns: Vec<&str> = [
            yes(self.user_ns, "user"),
            yes(self.mount_ns, "mount"),
            yes(self.pid_ns, "pid"),
            yes(self.net_ns, "net"),
            yes(self.ipc_ns, "ipc"),
        ]
        .into_iter()
        .flatten()
        .collect();
        write!(
            f,
            "Landlock ABI {}, {} namespaces, seccomp, {} /proc",
            self.landlock_abi.unwrap_or(0),
            ns.join("/"),
            if self.private_proc { "private" } else { "host" }
        )
    }
}

/// What can be known missing without a trial: the OS, the architecture's
/// seccomp support, Landlock, and user namespaces turned off by sysctl.
pub fn missing_up_front(network: bool) -> Vec<String> {
    let mut s = Support {
        os: std::env::consts::OS.to_string(),
        arch: std::env::consts::ARCH.to_string(),
        ..Support::default()
    };
    #[cfg(target_os = "linux")]
    {
        s.landlock_abi = linux::landlock_abi();
        s.seccomp = linux::seccomp();
        s.user_ns = linux::user_ns_allowed();
        (s.mount_ns, s.pid_ns, s.net_ns, s.ipc_ns) = (true, true, true, true);
    }
    s.missing(network)
}

/// The Landlock ABI of this kernel, if Landlock is enabled.
pub fn landlock_abi() -> Option<u32> {
    #[cfg(target_os = "linux")]
    return linux::landlock_abi();
    #[cfg(not(target_os = "linux"))]
    None
}

/// Which namespace the kernel would not make, when `unshare` failed with
/// `errno`: read from the per-kind limits; `None` when they do not say.
pub fn exhausted_namespace(errno: i32) -> Option<&'static str> {
    if errno != 28 {
        // Only ENOSPC says "a limit was reached".
        return None;
    }
    [
        ("user", "user namespaces"),
        ("mnt", "mount namespaces"),
        ("pid", "PID namespaces"),
        ("net", "network namespaces"),
        ("ipc", "IPC namespaces"),
    ]
    .into_iter()
    .find(|(kind, _)| {
        std::fs::read_to_string(format!("/proc/sys/user/max_{kind}_namespaces")).is_ok_and(|v| v.trim() == "0")
    })
    .map(|(_, words)| words)
}

/// What this machine can enforce, found once per process.
pub fn probe() -> Support {
    static CACHE: OnceLock<Support> = OnceLock::new();
    CACHE.get_or_init(probe_now).clone()
}

/// What this machine can enforce, found now.
pub fn probe_now() -> Support {
    let mut s = Support {
        os: std::env::consts::OS.to_string(),
        arch: std::env::consts::ARCH.to_string(),
        ..Support::default()
    };
    #[cfg(target_os = "linux")]
    linux::probe(&mut s);
    s
}

#[cfg(target_os = "linux")]
mod linux {
    use super::Support;

    const USER: i32 = 1;
    const MOUNT: i32 = 2;
    const PID: i32 = 4;
    const NET: i32 = 8;
    const IPC: i32 = 16;
    const PROC: i32 = 32;

    pub fn probe(s: &mut Support) {
        s.landlock_abi = landlock_abi();
        s.seccomp = seccomp();
        let bits = namespaces();
        s.user_ns = bits & USER != 0;
        s.mount_ns = bits & MOUNT != 0;
        s.pid_ns = bits & PID != 0;
        s.net_ns = bits & NET != 0;
        s.ipc_ns = bits & IPC != 0;
        s.private_proc = bits & PROC != 0;
    }

    pub fn landlock_abi() -> Option<u32> {
        const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
        // SAFETY: the documented way to ask for the ABI: no ruleset, size 0.
        let v = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<libc::c_void>(),
                0usize,
                LANDLOCK_CREATE_RULESET_VERSION,
            )
        };
        u32::try_from(v).ok().filter(|v| *v >= 1)
    }

    pub fn seccomp() -> bool {
        if super::super::filter::arch().is_none() {
            return false;
        }
        let errno_action: u32 = libc::SECCOMP_RET_ERRNO;
        // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32.
        let rc = unsafe {
            libc::syscall(libc::SYS_seccomp, libc::SECCOMP_GET_ACTION_AVAIL, 0u32, &errno_action as *const u32)
        };
        rc == 0
    }

    /// Whether the sysctls allow this user a user namespace.
    pub fn user_ns_allowed() -> bool {
        let read = |p: &str| std::fs::read_to_string(p).ok().map(|v| v.trim().to_string());
        let max = read("/proc/sys/user/max_user_namespaces");
        // Debian's switch; absent elsewhere. Root is not bound by it.
        // SAFETY: a plain getter.
        let unprivileged = unsafe { libc::geteuid() } == 0
            || read("/proc/sys/kernel/unprivileged_userns_clone").is_none_or(|v| v != "0");
        max.is_none_or(|m| m != "0") && unprivileged
    }

    /// Forks a process that tries each namespace and reports by exit status.
    fn namespaces() -> i32 {
        // SAFETY: plain getters.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let uid_map = format!("{uid} {uid} 1\n");
        let gid_map = format!("{gid} {gid} 1\n");
        // SAFETY: the child makes only system calls (no allocation, no locks)
        // and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return 0;
        }
        if pid == 0 {
            // SAFETY: see above; every pointer is to memory prepared before the fork.
            unsafe { libc::_exit(try_namespaces(uid_map.as_bytes(), gid_map.as_bytes())) }
        }
        let mut status = 0;
        loop {
            // SAFETY: waits for the child just forked.
            let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
            if rc == pid {
                break;
            }
            if rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return 0;
            }
        }
        if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 0 }
    }

    /// In the forked child: what works, as bits.
    unsafe fn try_namespaces(uid_map: &[u8], gid_map: &[u8]) -> i32 {
        use super::super::child::sys;
        let mut bits = 0;
        unsafe {
            if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                return bits;
            }
            if sys::write_file(c"/proc/self/setgroups", b"deny").is_err()
                || sys::write_file(c"/proc/self/uid_map", uid_map).is_err()
                || sys::write_file(c"/proc/self/gid_map", gid_map).is_err()
            {
                return bits;
            }
            bits |= USER;
            let slave = (libc::MS_REC | libc::MS_SLAVE) as libc::c_ulong;
            if libc::unshare(libc::CLONE_NEWNS) == 0
                && libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), slave, std::ptr::null()) == 0
            {
                bits |= MOUNT;
            }
            if libc::unshare(libc::CLONE_NEWIPC) == 0 {
                bits |= IPC;
            }
            if libc::unshare(libc::CLONE_NEWNET) == 0 {
                bits |= NET;
            }
            if libc::unshare(libc::CLONE_NEWPID) == 0 {
                bits |= PID;
                if bits & MOUNT != 0 {
                    let pid = sys::fork();
                    if pid == 0 {
                        let flags = (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as libc::c_ulong;
                        let rc =
                            libc::mount(c"proc".as_ptr(), c"/proc".as_ptr(), c"proc".as_ptr(), flags, std::ptr::null());
                        libc::_exit(if rc == 0 { 0 } else { 1 });
                    }
                    if pid > 0 && sys::wait_for(pid).is_ok_and(|st| libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0) {
                        bits |= PROC;
                    }
                }
            }
        }
        bits
    }
}

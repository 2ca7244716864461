//! The seccomp filters: the second lock on the doors the namespaces and
//! Landlock already close, and the only lock on terminal injection through
//! an inherited file descriptor.
//!
//! | denied | with | why |
//! |---|---|---|
//! | `mount`, `umount2`, `pivot_root`, `chroot`, `move_mount`, `open_tree`, `fsopen`, `fsconfig`, `fsmount`, `fspick`, `mount_setattr` | `EPERM` | the read-only binds and the masks over secrets stay where they are |
//! | `unshare`, `setns`, `clone` with any namespace flag | `EPERM` | no new user namespace in which to regain capabilities, no joining another |
//! | `clone3` | `ENOSYS` | its flags sit in memory a filter cannot read; libc falls back to `clone` |
//! | `ioctl(TIOCSTI)`, `ioctl(TIOCLINUX)` | `EPERM` | no keystrokes pushed into a terminal, whatever fd the child holds |
//! | `keyctl`, `add_key`, `request_key` | `EPERM` | the session keyring ratchet inherited stays out of reach |
//! | `io_uring_setup`, `io_uring_enter`, `io_uring_register` | `EPERM` | io_uring's operations are not seen by seccomp |
//! | any x32 system call (x86-64) | `EPERM` | the same calls under other numbers |
//!
//! `seccompiler` compiles the rules; a foreign architecture kills the
//! process (its generated prologue). The x32 guard is three instructions of
//! hand-written BPF put in front, as `seccompiler` matches exact numbers.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch, sock_filter,
};

/// The filters to load, in order.
pub struct Filters {
    pub programs: Vec<BpfProgram>,
}

/// The architecture as `seccompiler` names it, if it knows it.
pub fn arch() -> Option<TargetArch> {
    TargetArch::try_from(std::env::consts::ARCH).ok()
}

/// The filters, compiled once per process.
pub fn filters() -> Result<&'static Filters, String> {
    static CACHE: OnceLock<Result<Filters, String>> = OnceLock::new();
    CACHE.get_or_init(compile).as_ref().map_err(Clone::clone)
}

const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

fn compile() -> Result<Filters, String> {
    let arch = arch().ok_or_else(|| format!("no seccomp support for {}", std::env::consts::ARCH))?;
    let err = |e: seccompiler::BackendError| e.to_string();
    let mut deny: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in [
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_mount_setattr,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ] {
        deny.insert(nr, Vec::new());
    }
    let masked = |index: u8, len: SeccompCmpArgLen, mask: u64| {
        SeccompCondition::new(index, len, SeccompCmpOp::MaskedEq(mask), mask).and_then(|c| SeccompRule::new(vec![c]))
    };
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|flag| masked(0, SeccompCmpArgLen::Qword, *flag))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    deny.insert(libc::SYS_clone, clone_rules);
    let ioctl_rules = [libc::TIOCSTI, libc::TIOCLINUX]
        .iter()
        .map(|request| {
            SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, *request)
                .and_then(|c| SeccompRule::new(vec![c]))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    deny.insert(libc::SYS_ioctl, ioctl_rules);
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    let deny = SeccompFilter::new(deny, SeccompAction::Allow, eperm, arch).map_err(err)?;
    let mut deny: BpfProgram = deny.try_into().map_err(|e: seccompiler::BackendError| e.to_string())?;
    if arch == TargetArch::x86_64 {
        deny.splice(0..0, x32_guard());
    }

    let clone3 = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
    let clone3 = SeccompFilter::new(clone3, SeccompAction::Allow, SeccompAction::Errno(libc::ENOSYS as u32), arch)
        .map_err(err)?;
    let clone3: BpfProgram = clone3.try_into().map_err(|e: seccompiler::BackendError| e.to_string())?;
    Ok(Filters { programs: vec![deny, clone3] })
}

/// `if (nr >= __X32_SYSCALL_BIT) return ERRNO(EPERM);`
fn x32_guard() -> Vec<sock_filter> {
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    // BPF_LD | BPF_W | BPF_ABS, BPF_JMP | BPF_JGE | BPF_K, BPF_RET | BPF_K.
    const BPF_LD_W_ABS: u16 = 0x20;
    const BPF_JMP_JGE_K: u16 = 0x35;
    const BPF_RET_K: u16 = 0x06;
    vec![
        // seccomp_data.nr is at offset 0.
        sock_filter { code: BPF_LD_W_ABS, jt: 0, jf: 0, k: 0 },
        sock_filter { code: BPF_JMP_JGE_K, jt: 0, jf: 1, k: X32_SYSCALL_BIT },
        sock_filter { code: BPF_RET_K, jt: 0, jf: 0, k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32 },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_compile_for_this_machine() {
        let f = filters().expect("this machine's architecture is known to seccompiler");
        assert_eq!(f.programs.len(), 2);
        assert!(f.programs.iter().all(|p| !p.is_empty() && p.len() < 4096));
    }
}

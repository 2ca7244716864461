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
//! process (its generated prologue). One program is loaded (each load is
//! checked and JIT-compiled by the kernel, per child), so the two rules
//! `seccompiler` cannot express in it — a second action (`ENOSYS` for
//! `clone3`) and a range (x32 numbers) — are five instructions of
//! hand-written BPF spliced in right after its architecture check.

use std::collections::BTreeMap;

use std::sync::OnceLock;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch, sock_filter,
};

/// The filter to load.
pub struct Filters {
    pub program: BpfProgram,
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
    let mut program: BpfProgram = deny.try_into().map_err(|e: seccompiler::BackendError| e.to_string())?;
    // seccompiler's prologue: load arch; if equal skip one; return KILL_PROCESS.
    let prologue_ends_in_kill = program.get(2).is_some_and(|i| i.code == BPF_RET_K && i.k == SECCOMP_RET_KILL_PROCESS);
    if !prologue_ends_in_kill {
        return Err("seccompiler's program does not start with the expected architecture check".into());
    }
    program.splice(3..3, prelude(arch == TargetArch::x86_64));
    Ok(Filters { program })
}

const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_JMP_JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const BPF_JMP_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;

/// `if (nr >= __X32_SYSCALL_BIT) return ERRNO(EPERM); if (nr == clone3) return ERRNO(ENOSYS);`
/// (the first on x86-64 only). Falls through to seccompiler's rules, which
/// load the number again.
fn prelude(x32: bool) -> Vec<sock_filter> {
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let ret = |errno: i32| sock_filter { code: BPF_RET_K, jt: 0, jf: 0, k: libc::SECCOMP_RET_ERRNO | errno as u32 };
    // seccomp_data.nr is at offset 0.
    let mut p = vec![sock_filter { code: BPF_LD_W_ABS, jt: 0, jf: 0, k: 0 }];
    if x32 {
        p.push(sock_filter { code: BPF_JMP_JGE_K, jt: 0, jf: 1, k: X32_SYSCALL_BIT });
        p.push(ret(libc::EPERM));
    }
    p.push(sock_filter { code: BPF_JMP_JEQ_K, jt: 0, jf: 1, k: libc::SYS_clone3 as u32 });
    p.push(ret(libc::ENOSYS));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_compiles_for_this_machine_with_the_prelude_after_the_arch_check() {
        let f = filters().expect("this machine's architecture is known to seccompiler");
        assert!(f.program.len() < 4096);
        assert_eq!(f.program[2].code, BPF_RET_K);
        assert_eq!(f.program[3], sock_filter { code: BPF_LD_W_ABS, jt: 0, jf: 0, k: 0 });
        assert!(f.program.iter().any(|i| i.code == BPF_JMP_JEQ_K && i.k == libc::SYS_clone3 as u32));
    }
}

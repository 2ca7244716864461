//! The Landlock ruleset: read and execute beneath `/`, everything beneath
//! the writable places, nothing else; built by the `landlock` crate in the
//! parent, enforced by the child's init with one system call.
//!
//! The rules are written for the kernel's own ABI (capped at what the crate
//! knows), so that what is enforced is known and can be reported, rather
//! than best effort.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
    Scope,
};

use super::SandboxError;
use super::view::Access as Want;

/// The ruleset, and what it handles.
pub struct Built {
    pub fd: OwnedFd,
    /// Signals and abstract unix sockets are scoped to the sandbox (ABI ≥ 6).
    pub scopes: bool,
    /// Connecting to path unix sockets is governed by the rules (ABI ≥ 9).
    pub unix: bool,
    /// The access bits of [`Want::Read`] and [`Want::Write`] beneath a
    /// directory, for the rules the child adds itself.
    pub read_bits: u64,
    pub write_bits: u64,
}

/// The ruleset for `rules` on a kernel with Landlock ABI `abi`.
pub fn build(abi: u32, rules: &[(PathBuf, Want)]) -> Result<Built, SandboxError> {
    let abi = ABI::from(i32::try_from(abi).unwrap_or(i32::MAX));
    let fail = |e: &dyn std::fmt::Display| SandboxError::Rules { what: "Landlock ruleset", reason: e.to_string() };
    let all = AccessFs::from_all(abi);
    let scopes = Scope::from_all(abi);
    let mut ruleset = Ruleset::default().set_compatibility(CompatLevel::HardRequirement);
    ruleset = ruleset.handle_access(all).map_err(|e| fail(&e))?;
    if !scopes.is_empty() {
        ruleset = ruleset.scope(scopes).map_err(|e| fail(&e))?;
    }
    let mut created = ruleset.create().map_err(|e| fail(&e))?;
    for (path, want) in rules {
        let fd = PathFd::new(path).map_err(|e| SandboxError::Prepare {
            action: "open",
            path: path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let is_dir = std::fs::metadata(path).is_ok_and(|m| m.is_dir());
        let mut access = match want {
            Want::Read => AccessFs::from_read(abi),
            Want::Write => all,
        };
        if !is_dir {
            access &= AccessFs::from_file(abi);
        }
        created = created.add_rule(PathBeneath::new(fd, access)).map_err(|e| fail(&e))?;
    }
    let fd: Option<OwnedFd> = created.into();
    let fd = fd.ok_or_else(|| fail(&"Landlock is not enabled on this kernel"))?;
    Ok(Built {
        fd,
        scopes: !scopes.is_empty(),
        unix: all.contains(AccessFs::ResolveUnix),
        read_bits: AccessFs::from_read(abi).bits(),
        write_bits: all.bits(),
    })
}

//! The child's view of the file system, as a list of mounts and Landlock
//! rules computed in the parent from the policy and the host's paths.
//!
//! This is data, so it is tested without a kernel; `child.rs` only carries
//! the operations out, in order.
//!
//! The view is the host's own file system, with:
//! 0. the run's work directory (an empty directory the parent made) covered
//!    by a tmpfs holding the private directories, the new `/dev`'s skeleton
//!    and the mount points below — made in the child, so the host's disk
//!    sees one `mkdir` and one `rmdir` per run, and nothing is left behind;
//! 1. protected paths bound read-only over themselves, and hidden ones
//!    covered by an empty read-only directory or file — done first, at their
//!    host paths, so that every later recursive bind carries them along and
//!    no path to them (not even the working directory held since before the
//!    mounts) is left uncovered;
//! 2. `/tmp`, `/var/tmp` and `/run` replaced by private directories (the
//!    first two writable, `/run` empty and read-only), into which the paths
//!    the child needs that sat there (the tree, `HOME`, declared caches, the
//!    program) are bound back first, read-only unless writable;
//! 3. `/dev` rebuilt: `null`, `zero`, `full`, `random`, `urandom`, a private
//!    `devpts` and `shm`, and no `tty`;
//! 4. a fresh `/proc` for the PID namespace.
//!
//! Deny beats allow: a hidden path stays hidden even when it lies inside a
//! writable or readable one.

use std::path::{Path, PathBuf};

use super::SandboxError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Dir,
    File,
}

/// A Landlock grant beneath a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read and execute.
    Read,
    /// Every file-system right.
    Write,
}

/// Mount attributes to set (never to clear).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attrs {
    pub read_only: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

impl Attrs {
    pub const NONE: Attrs = Attrs { read_only: false, nosuid: false, nodev: false, noexec: false };
    pub const PRIVATE: Attrs = Attrs { read_only: false, nosuid: true, nodev: true, noexec: false };
    pub const READ_ONLY: Attrs = Attrs { read_only: true, nosuid: true, nodev: true, noexec: false };
    pub const MASK: Attrs = Attrs { read_only: true, nosuid: true, nodev: true, noexec: true };
}

/// One mount operation of the child's init.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Stop mount events from propagating back to the host.
    Slave,
    /// Mount a tmpfs on `root`, create `entries` in it, and add Landlock
    /// `rules` for paths in it (their inodes exist only from now on).
    Stage { root: PathBuf, entries: Vec<Entry>, rules: Vec<(PathBuf, Access)> },
    /// Bind `src` (recursively) on `dst`, then set `attrs`, on the new
    /// mount only or on it and everything beneath.
    Bind { src: PathBuf, dst: PathBuf, attrs: Attrs, recursive: bool },
    /// A new `devpts` instance on `dst`.
    Devpts { dst: PathBuf },
    /// Set `attrs` on the mount at `dst` alone.
    SetAttrs { dst: PathBuf, attrs: Attrs },
    /// A fresh `/proc`.
    Proc,
    /// An overlayfs on `dst` (the tree): `lower` read-only beneath, writes
    /// into `upper`; then write access beneath `dst` for Landlock (the
    /// tree's rule from the parent names the directory now covered).
    Overlay { lower: PathBuf, upper: PathBuf, work: PathBuf, dst: PathBuf },
}

impl Op {
    /// The stage name an error of this operation reports.
    pub fn describe(&self) -> String {
        match self {
            Op::Slave => "make / a slave mount".into(),
            Op::Stage { root, .. } => format!("build the private directories in a tmpfs on {}", root.display()),
            Op::Bind { src, dst, attrs, .. } if src == dst => {
                format!("bind {} {}over itself", dst.display(), if attrs.read_only { "read-only " } else { "" })
            }
            Op::Bind { src, dst, attrs, .. } => format!(
                "bind {} on {}{}",
                src.display(),
                dst.display(),
                if attrs.read_only { " read-only" } else { "" }
            ),
            Op::Devpts { dst } => format!("mount a private devpts on {}", dst.display()),
            Op::SetAttrs { dst, .. } => format!("make {} read-only", dst.display()),
            Op::Proc => "mount a private /proc".into(),
            Op::Overlay { lower, dst, .. } => {
                format!("mount an overlay of {} on {}", lower.display(), dst.display())
            }
        }
    }
}

/// A directory the sandbox replaces with a private one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Private {
    /// Where it is on the host (canonical).
    pub path: PathBuf,
    /// Its directory's name beneath the run's work directory.
    pub name: &'static str,
    pub writable: bool,
}

/// The host's side of a view: canonical paths that exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub tree: PathBuf,
    /// The program's working directory.
    pub cwd: PathBuf,
    pub read_only: Vec<PathBuf>,
    pub hidden: Vec<(PathBuf, Kind)>,
    pub writable: Vec<(PathBuf, Kind)>,
    pub readable: Vec<(PathBuf, Kind)>,
    /// `HOME`, kept visible (read-only) where it sits in a private directory.
    pub home: Option<PathBuf>,
    /// The program, kept visible (read-only) where it sits in a private directory.
    pub program: Option<PathBuf>,
    pub private: Vec<Private>,
    /// Device nodes to bind into the new `/dev`.
    pub devices: Vec<PathBuf>,
    /// The run's work directory on the host (its private `/tmp` and more).
    pub workdir: PathBuf,
    pub private_proc: bool,
    /// The tree is an overlay: `(lower, upper, work)`, canonical.
    pub overlay: Option<(PathBuf, PathBuf, PathBuf)>,
}

/// Something to create in the work directory's tmpfs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A directory, with this mode.
    Dir(PathBuf, u32),
    /// An empty file (a mount point), with this mode.
    File(PathBuf, u32),
    Symlink(PathBuf, &'static str),
}

/// The child's view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    pub ops: Vec<Op>,
    /// Landlock rules for host paths (the ruleset is built in the parent);
    /// those for the work directory's tmpfs are in [`Op::Stage`].
    pub rules: Vec<(PathBuf, Access)>,
}

pub const EMPTY_DIR: &str = "empty-dir";
pub const EMPTY_FILE: &str = "empty-file";

struct Keep {
    path: PathBuf,
    kind: Kind,
    writable: bool,
}

/// The view for `h`.
pub fn plan(h: &Host) -> Result<View, SandboxError> {
    let w = &h.workdir;
    let policy = |path: &Path, reason: String| SandboxError::Policy { path: path.to_path_buf(), reason };
    let private_of = |p: &Path| h.private.iter().find(|r| p.starts_with(&r.path));

    // What must stay visible where the sandbox puts private directories.
    let mut keeps = vec![Keep { path: h.tree.clone(), kind: Kind::Dir, writable: true }];
    keeps.extend(h.writable.iter().map(|(p, k)| Keep { path: p.clone(), kind: *k, writable: true }));
    keeps.extend(h.readable.iter().map(|(p, k)| Keep { path: p.clone(), kind: *k, writable: false }));
    for keep in &keeps {
        if let Some(r) = h.private.iter().find(|r| r.path.starts_with(&keep.path)) {
            let reason = format!("contains {}, which the sandbox replaces with a private one", r.path.display());
            return Err(policy(&keep.path, reason));
        }
        if keep.path.starts_with("/dev") || keep.path.starts_with("/proc") {
            return Err(policy(&keep.path, "lies in /dev or /proc, which the sandbox rebuilds".into()));
        }
    }
    // HOME is kept unless it holds a private directory (HOME=/tmp in some CI),
    // or is kept writable already.
    if let Some(home) = &h.home {
        let writable = h.writable.iter().any(|(w, _)| home.starts_with(w));
        if !writable && !h.private.iter().any(|r| r.path.starts_with(home)) {
            keeps.push(Keep { path: home.clone(), kind: Kind::Dir, writable: false });
        }
    }
    if let Some(program) = &h.program {
        keeps.push(Keep { path: program.clone(), kind: Kind::File, writable: false });
    }
    for (hidden, _) in &h.hidden {
        if h.tree.starts_with(hidden) {
            return Err(policy(&h.tree, format!("lies inside {}, which the sandbox hides", hidden.display())));
        }
    }
    let visible = |p: &Path| private_of(p).is_none() || keeps.iter().any(|k| p.starts_with(&k.path));
    if !visible(&h.cwd) {
        let reason = "is the working directory, but the sandbox replaces where it sits with a private directory";
        return Err(policy(&h.cwd, reason.into()));
    }

    let mut skeleton = vec![
        Entry::Dir(w.join(EMPTY_DIR), 0o555),
        Entry::File(w.join(EMPTY_FILE), 0o444),
        Entry::Dir(w.join("dev"), 0o755),
        Entry::Dir(w.join("dev/pts"), 0o755),
        Entry::Dir(w.join("dev/shm"), 0o755),
        Entry::Dir(w.join("shm"), 0o1777),
        Entry::Symlink(w.join("dev/ptmx"), "pts/ptmx"),
        Entry::Symlink(w.join("dev/fd"), "/proc/self/fd"),
        Entry::Symlink(w.join("dev/stdin"), "/proc/self/fd/0"),
        Entry::Symlink(w.join("dev/stdout"), "/proc/self/fd/1"),
        Entry::Symlink(w.join("dev/stderr"), "/proc/self/fd/2"),
    ];
    for r in &h.private {
        skeleton.push(Entry::Dir(w.join(r.name), if r.writable { 0o1777 } else { 0o755 }));
    }
    let mut ops = vec![Op::Slave, Op::Stage { root: w.clone(), entries: Vec::new(), rules: Vec::new() }];
    // 0b. The overlay, before anything covers its lower tree or is bound
    // beneath it (the covers of step 1 inside the tree land on it).
    if let Some((lower, upper, work)) = &h.overlay {
        ops.push(Op::Overlay { lower: lower.clone(), upper: upper.clone(), work: work.clone(), dst: h.tree.clone() });
    }

    // 1. Read-only and hidden paths, at their host paths, outer first.
    let mut read_only: Vec<&PathBuf> = h.read_only.iter().filter(|p| visible(p)).collect();
    read_only.sort_by_key(|p| (p.components().count(), *p));
    read_only.dedup();
    for p in read_only {
        ops.push(Op::Bind { src: p.clone(), dst: p.clone(), attrs: Attrs::READ_ONLY, recursive: true });
    }
    let mut hidden: Vec<&(PathBuf, Kind)> = h.hidden.iter().filter(|(p, _)| visible(p)).collect();
    hidden.sort_by_key(|(p, k)| (p.components().count(), p, *k));
    hidden.dedup();
    for (p, kind) in hidden {
        let src = w.join(if *kind == Kind::Dir { EMPTY_DIR } else { EMPTY_FILE });
        ops.push(Op::Bind { src, dst: p.clone(), attrs: Attrs::MASK, recursive: true });
    }

    // 2. What is kept from the private directories, bound into them, outer first.
    keeps.sort_by_key(|k| k.path.components().count());
    let mut bound: Vec<&Keep> = Vec::new();
    for keep in &keeps {
        let Some(r) = private_of(&keep.path) else { continue };
        let rel = keep.path.strip_prefix(&r.path).unwrap_or(Path::new(""));
        let dst = w.join(r.name).join(rel);
        let attrs = if keep.writable { Attrs::NONE } else { Attrs::READ_ONLY };
        match bound.iter().rev().find(|b| keep.path.starts_with(&b.path)) {
            Some(outer) if outer.writable == keep.writable => continue,
            Some(_) => {}
            None => {
                let mut dir = w.join(r.name);
                for part in rel.parent().into_iter().flat_map(Path::components) {
                    dir.push(part);
                    if !skeleton.contains(&Entry::Dir(dir.clone(), 0o755)) {
                        skeleton.push(Entry::Dir(dir.clone(), 0o755));
                    }
                }
                skeleton.push(match keep.kind {
                    Kind::Dir => Entry::Dir(dst.clone(), 0o755),
                    Kind::File => Entry::File(dst.clone(), 0o444),
                });
            }
        }
        ops.push(Op::Bind { src: keep.path.clone(), dst, attrs, recursive: true });
        bound.push(keep);
    }

    // 3. The new /dev, populated, then put in place before any private
    // directory covers the work directory's path.
    for dev in &h.devices {
        let Some(name) = dev.file_name() else { continue };
        let dst = w.join("dev").join(name);
        skeleton.push(Entry::File(dst.clone(), 0o644));
        ops.push(Op::Bind { src: dev.clone(), dst, attrs: Attrs::NONE, recursive: false });
    }
    ops.push(Op::Devpts { dst: w.join("dev/pts") });
    ops.push(Op::Bind { src: w.join("shm"), dst: w.join("dev/shm"), attrs: Attrs::PRIVATE, recursive: false });
    ops.push(Op::Bind { src: w.join("dev"), dst: PathBuf::from("/dev"), attrs: Attrs::NONE, recursive: true });
    let dev_ro = Attrs { read_only: true, nosuid: true, ..Attrs::NONE };
    ops.push(Op::SetAttrs { dst: PathBuf::from("/dev"), attrs: dev_ro });

    // 4. The private directories; the one holding the work directory last.
    let mut private: Vec<&Private> = h.private.iter().collect();
    private.sort_by_key(|r| w.starts_with(&r.path));
    for r in private {
        let attrs = if r.writable { Attrs::PRIVATE } else { Attrs::READ_ONLY };
        ops.push(Op::Bind { src: w.join(r.name), dst: r.path.clone(), attrs: Attrs::NONE, recursive: true });
        ops.push(Op::SetAttrs { dst: r.path.clone(), attrs });
    }
    if h.private_proc {
        ops.push(Op::Proc);
    }

    // Landlock: read and execute everywhere, write beneath these only.
    let mut rules = vec![(PathBuf::from("/"), Access::Read), (h.tree.clone(), Access::Write)];
    rules.extend(h.writable.iter().map(|(p, _)| (p.clone(), Access::Write)));
    let mut staged: Vec<(PathBuf, Access)> =
        h.private.iter().filter(|r| r.writable).map(|r| (w.join(r.name), Access::Write)).collect();
    staged.push((w.join("dev"), Access::Write));
    ops[1] = Op::Stage { root: w.clone(), entries: skeleton, rules: staged };
    Ok(View { ops, rules })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn host() -> Host {
        Host {
            tree: p("/work/repo"),
            cwd: p("/work/repo"),
            read_only: vec![p("/work/repo/.git"), p("/work/repo/config"), p("/work/repo/logs")],
            hidden: vec![
                (p("/work/repo/.ratchet"), Kind::Dir),
                (p("/home/a/.ssh"), Kind::Dir),
                (p("/home/a/.netrc"), Kind::File),
            ],
            writable: vec![],
            readable: vec![],
            home: Some(p("/home/a")),
            program: Some(p("/usr/bin/cargo")),
            private: vec![
                Private { path: p("/tmp"), name: "tmp", writable: true },
                Private { path: p("/run"), name: "run", writable: false },
            ],
            devices: vec![p("/dev/null"), p("/dev/urandom")],
            workdir: p("/tmp/ratchet-sandbox-1"),
            private_proc: true,
            overlay: None,
        }
    }

    fn stage(v: &View) -> (&Vec<Entry>, &Vec<(PathBuf, Access)>) {
        match &v.ops[1] {
            Op::Stage { entries, rules, .. } => (entries, rules),
            other => panic!("the second operation is {other:?}"),
        }
    }

    fn binds(v: &View) -> Vec<(String, String, bool)> {
        v.ops
            .iter()
            .filter_map(|op| match op {
                Op::Bind { src, dst, attrs, .. } => {
                    Some((src.display().to_string(), dst.display().to_string(), attrs.read_only))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn protected_and_hidden_paths_are_covered_first_then_dev_then_the_private_dirs() {
        let v = plan(&host()).unwrap();
        assert_eq!(v.ops[0], Op::Slave);
        assert!(matches!(&v.ops[1], Op::Stage { root, .. } if root == &p("/tmp/ratchet-sandbox-1")));
        let b = binds(&v);
        let w = "/tmp/ratchet-sandbox-1";
        assert_eq!(
            b,
            [
                ("/work/repo/.git".into(), "/work/repo/.git".into(), true),
                ("/work/repo/config".into(), "/work/repo/config".into(), true),
                ("/work/repo/logs".into(), "/work/repo/logs".into(), true),
                (format!("{w}/empty-file"), "/home/a/.netrc".into(), true),
                (format!("{w}/empty-dir"), "/home/a/.ssh".into(), true),
                (format!("{w}/empty-dir"), "/work/repo/.ratchet".into(), true),
                ("/dev/null".into(), format!("{w}/dev/null"), false),
                ("/dev/urandom".into(), format!("{w}/dev/urandom"), false),
                (format!("{w}/shm"), format!("{w}/dev/shm"), false),
                (format!("{w}/dev"), "/dev".into(), false),
                (format!("{w}/run"), "/run".into(), false),
                (format!("{w}/tmp"), "/tmp".into(), false),
            ]
        );
        assert_eq!(v.ops.last(), Some(&Op::Proc));
        assert!(v.ops.contains(&Op::SetAttrs { dst: p("/run"), attrs: Attrs::READ_ONLY }));
        assert!(v.ops.contains(&Op::SetAttrs { dst: p("/tmp"), attrs: Attrs::PRIVATE }));
        assert_eq!(v.rules, [(p("/"), Access::Read), (p("/work/repo"), Access::Write)]);
        let (entries, staged) = stage(&v);
        assert_eq!(*staged, [(p(&format!("{w}/tmp")), Access::Write), (p(&format!("{w}/dev")), Access::Write)]);
        assert!(entries.contains(&Entry::Dir(p(&format!("{w}/tmp")), 0o1777)));
        assert!(entries.contains(&Entry::Dir(p(&format!("{w}/run")), 0o755)));
        assert!(entries.contains(&Entry::File(p(&format!("{w}/dev/null")), 0o644)));
    }

    #[test]
    fn a_tree_under_tmp_is_bound_back_with_its_covers_and_home_read_only() {
        let mut h = host();
        h.tree = p("/tmp/t1/repo");
        h.cwd = p("/tmp/t1/repo/src");
        h.home = Some(p("/tmp/t1/home"));
        h.read_only = vec![p("/tmp/t1/repo/.git")];
        h.hidden = vec![(p("/tmp/t1/home/.ssh"), Kind::Dir), (p("/tmp/t1/other/secret"), Kind::File)];
        h.writable = vec![(p("/tmp/t1/home/.cache/x"), Kind::Dir)];
        h.program = None;
        let v = plan(&h).unwrap();
        let w = "/tmp/ratchet-sandbox-1";
        let b = binds(&v);
        // The covers come first, at host paths; the secret outside every kept path is not
        // covered (it is not visible at all).
        assert_eq!(b[0], ("/tmp/t1/repo/.git".into(), "/tmp/t1/repo/.git".into(), true));
        assert_eq!(b[1], (format!("{w}/empty-dir"), "/tmp/t1/home/.ssh".into(), true));
        assert!(!b.iter().any(|(_, d, _)| d.contains("other")));
        // Then the kept paths, outer first: the tree writable, HOME read-only, the cache inside
        // HOME writable again.
        assert_eq!(b[2], ("/tmp/t1/repo".into(), format!("{w}/tmp/t1/repo"), false));
        assert_eq!(b[3], ("/tmp/t1/home".into(), format!("{w}/tmp/t1/home"), true));
        assert_eq!(b[4], ("/tmp/t1/home/.cache/x".into(), format!("{w}/tmp/t1/home/.cache/x"), false));
        let (entries, _) = stage(&v);
        assert_eq!(entries.iter().filter(|e| **e == Entry::Dir(p(&format!("{w}/tmp/t1")), 0o755)).count(), 1);
        assert!(entries.contains(&Entry::Dir(p(&format!("{w}/tmp/t1/repo")), 0o755)));
        // The cache's mount point exists through HOME's bind: nothing is created for it.
        assert!(!entries.iter().any(|e| matches!(e, Entry::Dir(d, _) if d.ends_with(".cache/x"))));
        assert!(v.rules.contains(&(p("/tmp/t1/home/.cache/x"), Access::Write)));
    }

    #[test]
    fn the_private_dir_holding_the_work_dir_is_attached_last() {
        let mut h = host();
        h.workdir = p("/run/ratchet-1");
        let v = plan(&h).unwrap();
        let attach: Vec<String> = binds(&v)
            .into_iter()
            .filter(|(_, d, _)| d == "/tmp" || d == "/run" || d == "/dev")
            .map(|(_, d, _)| d)
            .collect();
        assert_eq!(attach, ["/dev", "/tmp", "/run"]);
    }

    #[test]
    fn paths_that_would_expose_a_private_dir_or_hide_the_tree_are_refused() {
        let mut h = host();
        h.tree = p("/tmp");
        h.cwd = p("/tmp");
        assert!(matches!(plan(&h), Err(SandboxError::Policy { .. })));

        let mut h = host();
        h.writable = vec![(p("/"), Kind::Dir)];
        assert!(matches!(plan(&h), Err(SandboxError::Policy { .. })));

        let mut h = host();
        h.hidden.push((p("/work"), Kind::Dir));
        let e = plan(&h).unwrap_err();
        assert!(e.to_string().contains("inside /work, which the sandbox hides"), "{e}");

        let mut h = host();
        h.cwd = p("/tmp/elsewhere");
        assert!(matches!(plan(&h), Err(SandboxError::Policy { .. })));

        let mut h = host();
        h.readable = vec![(p("/dev/sda"), Kind::File)];
        assert!(matches!(plan(&h), Err(SandboxError::Policy { .. })));
    }

    #[test]
    fn an_overlay_is_mounted_on_the_tree_before_the_covers_inside_it() {
        let mut h = host();
        h.tree = p("/state/scratch/s1/tree");
        h.cwd = h.tree.clone();
        h.read_only = vec![];
        h.hidden = vec![(p("/state/scratch/s1/tree/.ratchet"), Kind::Dir)];
        h.overlay = Some((p("/work/repo"), p("/state/scratch/s1/upper"), p("/state/scratch/s1/work")));
        let v = plan(&h).unwrap();
        assert_eq!(
            v.ops[2],
            Op::Overlay {
                lower: p("/work/repo"),
                upper: p("/state/scratch/s1/upper"),
                work: p("/state/scratch/s1/work"),
                dst: p("/state/scratch/s1/tree"),
            }
        );
        let b = binds(&v);
        assert_eq!(b[0].1, "/state/scratch/s1/tree/.ratchet", "the cover goes on the overlay, after it");
    }

    #[test]
    fn home_holding_a_private_dir_is_not_kept() {
        let mut h = host();
        h.home = Some(p("/tmp"));
        h.hidden = vec![];
        let v = plan(&h).unwrap();
        assert!(!binds(&v).iter().any(|(s, _, _)| s == "/tmp"));
    }
}

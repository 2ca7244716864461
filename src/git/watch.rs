//! Watching the work tree for the length of a step (path safety's step 4).
//!
//! "After applying, git status must show exactly the one path changed."
//! Re-scanning every file to prove that costs a `stat` per tracked file;
//! on large trees it doubled a step's time. Instead, during the step's
//! look at the tree, each directory is watched with inotify just before it
//! is looked at: the root, every directory holding an index path, and every
//! untracked directory that is not ignored. After the apply, the events say which paths changed since
//! the start, without reading the tree again: the patch's own path (and its
//! temp file) is expected; anything else that git would show (anything but
//! ignored, untracked files) is an unexpected change. That covers the patch
//! engine and whatever the provider did while it ran. Where inotify is not
//! available, or its queue overflowed, callers fall back to a full scan.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;

/// Why the watch cannot answer; the caller scans the tree instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

/// A watch over a work tree. Directories can be added from several
/// threads at once.
pub struct Watch {
    /// `None` once handed off (see the `Drop` impl).
    #[cfg(target_os = "linux")]
    fd: Option<rustix::fd::OwnedFd>,
    /// Watch descriptor → repository-relative directory (`""` for the root).
    #[cfg(target_os = "linux")]
    dirs: Mutex<HashMap<i32, String>>,
}

#[cfg(target_os = "linux")]
impl Watch {
    /// A watch on nothing yet.
    pub fn new() -> Result<Watch, Unavailable> {
        use rustix::fs::inotify::{self, CreateFlags};
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .map_err(|e| Unavailable(format!("inotify: {e}")))?;
        Ok(Watch { fd: Some(fd), dirs: Mutex::new(HashMap::new()) })
    }

    fn fd(&self) -> &rustix::fd::OwnedFd {
        self.fd.as_ref().expect("the descriptor is only taken on drop")
    }

    /// Watches the directory `abs`, known as `rel` in the repository. A
    /// directory that is gone already is no error: the look that follows
    /// finds it gone.
    pub fn watch(&self, abs: &Path, rel: &str) -> Result<(), Unavailable> {
        use rustix::fs::inotify::{self, WatchFlags};
        let flags = WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MODIFY
            | WatchFlags::ATTRIB
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF
            | WatchFlags::DONT_FOLLOW
            | WatchFlags::ONLYDIR;
        match inotify::add_watch(self.fd(), abs, flags) {
            Ok(wd) => {
                // Watching a directory twice gives the same descriptor.
                self.dirs.lock().unwrap_or_else(|p| p.into_inner()).insert(wd, rel.to_string());
                Ok(())
            }
            Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => Ok(()),
            Err(e) => Err(Unavailable(format!("inotify watch on {}: {e}", abs.display()))),
        }
    }

    /// Every repository-relative path with an event since the start (a
    /// directory's own deletion or move shows as the directory).
    pub fn changed(&self) -> Result<BTreeSet<String>, Unavailable> {
        self.changes().map(|m| m.into_keys().collect())
    }

    /// [`Watch::changed`], each path with whether it was created (or moved
    /// in) since the start, as opposed to changed or removed.
    pub fn changes(&self) -> Result<std::collections::BTreeMap<String, bool>, Unavailable> {
        use rustix::fs::inotify::{ReadFlags, Reader};
        let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); 64 * 1024];
        let mut reader = Reader::new(self.fd(), &mut buf);
        let mut out = std::collections::BTreeMap::new();
        let dirs = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let event = match reader.next() {
                Ok(e) => e,
                Err(rustix::io::Errno::AGAIN) => break,
                Err(e) => return Err(Unavailable(format!("reading inotify events: {e}"))),
            };
            let flags = event.events();
            if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                return Err(Unavailable("the inotify queue overflowed".into()));
            }
            let Some(dir) = dirs.get(&event.wd()) else { continue };
            let join = |name: &str| if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") };
            let created = flags.intersects(ReadFlags::CREATE | ReadFlags::MOVED_TO);
            match event.file_name().map(|n| n.to_string_lossy().into_owned()) {
                Some(name) => {
                    *out.entry(join(&name)).or_insert(false) |= created;
                }
                None if flags.intersects(ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF) => {
                    out.entry(dir.clone()).or_insert(false);
                }
                // The directory's own attributes: nothing git shows.
                None => {}
            }
        }
        Ok(out)
    }
}

/// Closing an inotify descriptor waits until the kernel has destroyed its
/// marks, which waits for an SRCU grace period: 0.3 ms when the kernel is
/// idle, 15–20 ms when another grace period is under way (often, right
/// after the step's own writes in watched directories). A step must not
/// wait for that, so, as systemd does with its `asynchronous_close`, the
/// descriptor is handed to a short-lived process (`true`, with it as
/// standard input) before this process closes its own copy, which is then
/// not the last one: the kernel's clean-up runs when `true` exits, and
/// nobody waits for it. Where no such program starts, it is closed here.
#[cfg(target_os = "linux")]
impl Drop for Watch {
    fn drop(&mut self) {
        let Some(fd) = self.fd.take() else { return };
        for program in ["/bin/true", "/usr/bin/true"] {
            let Ok(copy) = fd.try_clone() else { break };
            let spawned = std::process::Command::new(program)
                .stdin(std::process::Stdio::from(copy))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
            // The child is not waited for: it exits at once, and is reaped
            // by whoever inherits it when this process ends.
            if spawned.is_ok() {
                break;
            }
        }
        drop(fd);
    }
}

#[cfg(not(target_os = "linux"))]
impl Watch {
    pub fn new() -> Result<Watch, Unavailable> {
        Err(Unavailable("watching the tree needs Linux's inotify".into()))
    }

    pub fn watch(&self, _abs: &Path, _rel: &str) -> Result<(), Unavailable> {
        Err(Unavailable("watching the tree needs Linux's inotify".into()))
    }

    pub fn changed(&self) -> Result<BTreeSet<String>, Unavailable> {
        Err(Unavailable("watching the tree needs Linux's inotify".into()))
    }

    pub fn changes(&self) -> Result<std::collections::BTreeMap<String, bool>, Unavailable> {
        Err(Unavailable("watching the tree needs Linux's inotify".into()))
    }
}

/// Whether an event on `path` belongs to a patch on `target`: the target,
/// the patch engine's temp files beside it, and the directories a `create`
/// makes for it (`created`, outermost first).
pub fn expected(path: &str, target: &str, created: &[String]) -> bool {
    if path == target || created.iter().any(|d| path == d || path.starts_with(&format!("{d}/"))) {
        return true;
    }
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let target_dir = target.rsplit_once('/').map_or("", |(d, _)| d);
    dir == target_dir && name.starts_with(".ratchet-") && name.ends_with(".tmp")
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn events_name_the_paths_that_changed() {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/x"), "x").unwrap();
        std::fs::write(root.join("top"), "t").unwrap();
        let w = Watch::new().unwrap();
        for rel in ["", "a", "a/b"] {
            w.watch(&root.join(rel), rel).unwrap();
        }
        assert!(w.changed().unwrap().is_empty());
        std::fs::write(root.join("a/b/x"), "changed").unwrap();
        std::fs::write(root.join("new"), "n").unwrap();
        std::fs::create_dir(root.join("a/fresh")).unwrap();
        let changed = w.changed().unwrap();
        assert_eq!(changed, ["a/b/x", "a/fresh", "new"].into_iter().map(String::from).collect());
        assert!(w.changed().unwrap().is_empty(), "events are drained");
    }

    /// The watch tests create inotify descriptors; this one looks at
    /// descriptor numbers, so they take turns.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn a_dropped_watch_closes_its_descriptor_here() {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        use std::os::fd::AsRawFd;
        let t = tempfile::tempdir().unwrap();
        let w = Watch::new().unwrap();
        w.watch(t.path(), "").unwrap();
        std::fs::write(t.path().join("x"), "x").unwrap();
        assert_eq!(w.changed().unwrap().len(), 1);
        let link = format!("/proc/self/fd/{}", w.fd().as_raw_fd());
        assert_eq!(std::fs::read_link(&link).unwrap().to_string_lossy(), "anon_inode:inotify");
        drop(w);
        let now = std::fs::read_link(&link).map(|l| l.to_string_lossy().into_owned());
        assert!(now.as_deref().map_or(true, |l| l != "anon_inode:inotify"), "{now:?}");
    }

    #[test]
    fn the_patch_s_own_traces_are_expected() {
        assert!(expected("docs/a.md", "docs/a.md", &[]));
        assert!(expected("docs/.ratchet-12-0.tmp", "docs/a.md", &[]));
        assert!(!expected("src/.ratchet-12-0.tmp", "docs/a.md", &[]));
        assert!(expected("docs/new", "docs/new/deep/a.md", &["docs/new".to_string()]));
        assert!(!expected("docs/b.md", "docs/a.md", &[]));
    }
}

//! The direct index reader reads what libgit2 reads, in every shape git
//! writes, and its cache tree names the trees git writes.

use std::path::Path;

use crate::support::workspace::git;
use ratchet::git::Repo;
use ratchet::git::index;

fn repo() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["config", "user.name", "t"]);
    git(&root, &["config", "user.email", "t@t"]);
    for d in 0..4 {
        std::fs::create_dir_all(root.join(format!("d{d}/sub"))).unwrap();
        for f in 0..5 {
            std::fs::write(root.join(format!("d{d}/f{f}.txt")), format!("file {d} {f}\n")).unwrap();
        }
        std::fs::write(root.join(format!("d{d}/sub/deep.txt")), "deep\n").unwrap();
    }
    std::fs::write(root.join("top.txt"), "top\n").unwrap();
    std::fs::write(root.join("d0/a-rather-long-name-that-shares-a-prefix-with-its-neighbour.txt"), "x\n").unwrap();
    std::fs::write(root.join("d0/a-rather-long-name-that-shares-a-prefix-with-its-neighbour.md"), "y\n").unwrap();
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-qm", "files"]);
    (dir, root)
}

/// The direct read, which must not fall back to anything.
fn direct(root: &Path) -> index::Index {
    index::read(&root.join(".git/index")).expect("the direct reader reads this index")
}

/// Asserts that the direct reader and libgit2 agree on every entry.
fn agree(root: &Path, shape: &str) {
    let ours = direct(root);
    let theirs = git2::Repository::open(root).unwrap().index().unwrap();
    let theirs: Vec<git2::IndexEntry> = theirs.iter().collect();
    assert_eq!(ours.entries.len(), theirs.len(), "{shape}");
    for (a, b) in ours.entries.iter().zip(&theirs) {
        let path = String::from_utf8_lossy(&b.path);
        assert_eq!(ours.path(a), b.path, "{shape}");
        assert_eq!(a.oid, b.id.as_bytes(), "{shape}: {path}");
        assert_eq!(a.mode, b.mode, "{shape}: {path}");
        assert_eq!(a.size, b.file_size, "{shape}: {path}");
        assert_eq!((a.ino, a.dev, a.uid, a.gid), (b.ino, b.dev, b.uid, b.gid), "{shape}: {path}");
        assert_eq!(a.mtime, (b.mtime.seconds() as u32, b.mtime.nanoseconds()), "{shape}: {path}");
        assert_eq!(a.ctime, (b.ctime.seconds() as u32, b.ctime.nanoseconds()), "{shape}: {path}");
        assert_eq!(a.stage(), (b.flags >> 12) & 3, "{shape}: {path}");
        assert_eq!(a.flags_extended & 0x6000, b.flags_extended & 0x6000, "{shape}: {path}");
    }
}

#[test]
fn the_direct_reader_agrees_with_libgit2_on_every_index_shape() {
    let (_dir, root) = repo();
    agree(&root, "version 2, as git commit leaves it");
    assert_eq!(direct(&root).version, 2);

    std::fs::write(root.join("d1/intent.txt"), "later\n").unwrap();
    git(&root, &["add", "-N", "d1/intent.txt"]);
    git(&root, &["update-index", "--skip-worktree", "d2/f1.txt"]);
    agree(&root, "version 3: intent-to-add and skip-worktree");
    let v3 = direct(&root);
    assert_eq!(v3.version, 3);
    let flags = |p: &str| v3.entries.iter().find(|e| v3.path(e) == p.as_bytes()).unwrap().flags_extended;
    assert_eq!(flags("d1/intent.txt"), 1 << 13);
    assert_eq!(flags("d2/f1.txt"), 1 << 14);

    git(&root, &["update-index", "--index-version", "4"]);
    agree(&root, "version 4: prefix-compressed paths");
    assert_eq!(direct(&root).version, 4);
}

#[test]
fn conflicted_entries_keep_their_stages() {
    let (_dir, root) = repo();
    git(&root, &["checkout", "-qb", "other"]);
    std::fs::write(root.join("d1/f1.txt"), "theirs\n").unwrap();
    git(&root, &["commit", "-qam", "theirs"]);
    git(&root, &["checkout", "-q", "main"]);
    std::fs::write(root.join("d1/f1.txt"), "ours\n").unwrap();
    git(&root, &["commit", "-qam", "ours"]);
    let merge = std::process::Command::new("git").args(["merge", "-q", "other"]).current_dir(&root).output().unwrap();
    assert!(!merge.status.success(), "the merge conflicts");
    agree(&root, "a conflict");
    let index = direct(&root);
    let stages: Vec<u16> = index.entries.iter().filter(|e| index.path(e) == b"d1/f1.txt").map(|e| e.stage()).collect();
    assert_eq!(stages, [1, 2, 3]);
    // And the status sees the conflict as libgit2 does.
    let repo = Repo::discover(&root).unwrap();
    assert_eq!(repo.status_fast().unwrap(), repo.status_full().unwrap());
}

fn head_tree(root: &Path, rev: &str) -> [u8; 20] {
    let hex = git(root, &["rev-parse", rev]);
    git2::Oid::from_str(hex.trim()).unwrap().as_bytes().try_into().unwrap()
}

#[test]
fn the_cache_tree_names_the_trees_git_writes() {
    let (_dir, root) = repo();
    let tree = direct(&root).tree.expect("git commit writes a cache tree");
    assert_eq!(tree.oid, Some(head_tree(&root, "HEAD^{tree}")));
    assert_eq!(tree.child(b"d1").unwrap().oid, Some(head_tree(&root, "HEAD:d1")));
    assert_eq!(tree.child(b"d1").unwrap().child(b"sub").unwrap().oid, Some(head_tree(&root, "HEAD:d1/sub")));

    // A step's commit updates one path: the directories on its way are no
    // longer known to match a tree, the others still are.
    std::fs::write(root.join("d1/f2.txt"), "by a step\n").unwrap();
    let who = ratchet::git::Identity { name: "t".into(), email: "t@t".into() };
    Repo::discover(&root).unwrap().commit_path("d1/f2.txt", "step", &who, chrono::Utc::now()).unwrap();
    let tree = direct(&root).tree.expect("libgit2 keeps the cache tree");
    assert_eq!(tree.oid, None, "the root changed");
    assert_eq!(tree.child(b"d1").unwrap().oid, None, "d1 changed");
    assert_eq!(tree.child(b"d2").unwrap().oid, Some(head_tree(&root, "HEAD:d2")));
    let repo = Repo::discover(&root).unwrap();
    assert!(repo.status_fast().unwrap().is_empty(), "the commit left the tree clean");

    // Staged under a directory whose cache entry is still valid elsewhere.
    std::fs::write(root.join("d3/sub/deep.txt"), "staged\n").unwrap();
    git(&root, &["add", "d3/sub/deep.txt"]);
    std::fs::write(root.join("d3/sub/deep.txt"), "deep\n").unwrap();
    assert_eq!(repo.status_fast().unwrap(), repo.status_full().unwrap());
    assert!(repo.status_fast().unwrap().contains_key("d3/sub/deep.txt"));
}

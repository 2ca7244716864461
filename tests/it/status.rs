//! The fast status scanner agrees with libgit2's full status, bit for bit.

use crate::support::workspace::git;
use ratchet::git::Repo;

/// A tiny deterministic generator, so that failures replay.
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn repo_with_files() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["config", "user.name", "t"]);
    git(&root, &["config", "user.email", "t@t"]);
    for d in 0..6 {
        std::fs::create_dir_all(root.join(format!("d{d}/sub"))).unwrap();
        for f in 0..8 {
            std::fs::write(root.join(format!("d{d}/f{f}.txt")), format!("file {d} {f}\n")).unwrap();
        }
        std::fs::write(root.join(format!("d{d}/sub/deep.txt")), "deep\n").unwrap();
    }
    std::fs::write(root.join(".gitignore"), "*.log\nbuild/\n").unwrap();
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-qm", "files"]);
    (dir, root)
}

#[test]
fn the_fast_status_equals_libgit2_status_under_random_changes() {
    use std::os::unix::fs::PermissionsExt;
    for seed in 1..=12u64 {
        let (_dir, root) = repo_with_files();
        let mut g = Gen(seed.wrapping_mul(0x9e3779b97f4a7c15));
        for round in 0..6 {
            for _ in 0..1 + g.below(5) {
                let (d, f) = (g.below(6), g.below(8));
                let file = root.join(format!("d{d}/f{f}.txt"));
                match g.below(16) {
                    0 => std::fs::write(&file, format!("changed {}\n", g.next())).unwrap_or(()),
                    // Same size, same second: only the content differs (racily clean).
                    1 => std::fs::write(&file, format!("FILE {d} {f}\n")).unwrap_or(()),
                    2 => std::fs::remove_file(&file).unwrap_or(()),
                    3 => std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap_or(()),
                    4 => std::fs::write(root.join(format!("d{d}/new{}.txt", g.below(3))), "new\n").unwrap(),
                    5 => std::fs::write(root.join(format!("d{d}/noise.log")), "ignored\n").unwrap(),
                    6 => {
                        std::fs::create_dir_all(root.join(format!("d{d}/build/x"))).unwrap();
                        std::fs::write(root.join(format!("d{d}/build/x/out.o")), "ignored\n").unwrap();
                    }
                    7 => {
                        std::fs::create_dir_all(root.join(format!("fresh{d}/inner"))).unwrap();
                        std::fs::write(root.join(format!("fresh{d}/inner/a.txt")), "untracked dir\n").unwrap();
                    }
                    8 => {
                        if std::fs::write(&file, "staged\n").is_ok() {
                            // (refused for a skip-worktree path, which is fine)
                            let _ = std::process::Command::new("git")
                                .args(["add", &format!("d{d}/f{f}.txt")])
                                .current_dir(&root)
                                .output();
                        }
                    }
                    // The index in other shapes: a directory dropped from it,
                    // an intent to add, a file git must not look at, version 4
                    // with its compressed paths, and a step-style commit of one
                    // path by libgit2 (which leaves the cache tree partly invalid).
                    11 => {
                        let _ = std::process::Command::new("git")
                            .args(["rm", "-rq", "--cached", &format!("d{d}/sub")])
                            .current_dir(&root)
                            .output();
                    }
                    12 => {
                        std::fs::write(root.join(format!("d{d}/intent{f}.txt")), "intent\n").unwrap();
                        git(&root, &["add", "-N", &format!("d{d}/intent{f}.txt")]);
                    }
                    13 => {
                        let _ = std::process::Command::new("git")
                            .args(["update-index", "--skip-worktree", &format!("d{d}/f{f}.txt")])
                            .current_dir(&root)
                            .output();
                    }
                    14 => {
                        git(&root, &["update-index", "--index-version", if g.below(2) == 0 { "4" } else { "2" }]);
                    }
                    15 => {
                        let path = format!("d{d}/f{f}.txt");
                        if std::fs::write(&file, format!("by a step {}\n", g.next())).is_ok() {
                            let who = ratchet::git::Identity { name: "t".into(), email: "t@t".into() };
                            Repo::discover(&root)
                                .unwrap()
                                .commit_path(&path, "step", &who, chrono::Utc::now())
                                .unwrap();
                        }
                    }
                    9 => {
                        let _ = std::fs::remove_file(&file);
                        std::os::unix::fs::symlink("elsewhere", &file).unwrap_or(());
                    }
                    _ => {
                        // A change that is committed, so the tree is clean there again.
                        if std::fs::write(&file, format!("committed {}\n", g.next())).is_ok() {
                            git(&root, &["commit", "-qam", "c"]);
                        }
                    }
                }
            }
            if round == 2 {
                git(&root, &["init", "-q", &format!("{}/nested", root.display())]);
            }
            if round == 4 {
                std::fs::write(root.join("nested/inside.txt"), "x\n").unwrap();
            }
            let repo = Repo::discover(&root).unwrap();
            let full = repo.status_full().unwrap();
            assert_eq!(repo.status_fast().unwrap(), full, "seed {seed}, round {round}");
            let through_libgit2 = repo.index_snapshot_libgit2().unwrap();
            assert_eq!(
                repo.status_from(&through_libgit2).unwrap(),
                full,
                "seed {seed}, round {round}, libgit2's index"
            );
        }
    }
}

#[test]
fn a_clean_tree_is_clean() {
    let (_dir, root) = repo_with_files();
    let repo = Repo::discover(&root).unwrap();
    assert!(repo.status_fast().unwrap().is_empty());
    // Rewritten with identical bytes: stat differs, content does not.
    std::fs::write(root.join("d0/f0.txt"), "file 0 0\n").unwrap();
    assert!(repo.status_fast().unwrap().is_empty());
    assert!(repo.status_full().unwrap().is_empty());
}

#[test]
fn status_aligns_its_tables_and_counts_read_naturally() {
    let ws = crate::support::workspace::Ws::looped(crate::support::workspace::Setup {
        auto_merge: true,
        ..crate::support::workspace::Setup::default()
    });
    ws.answer(1, &crate::support::workspace::append("docs/guide.md", "line three\n"));
    ws.run(&["step", "--provider", "self"]);
    ws.run(&["step", "--provider", "heartbeat"]);
    let out = ws.run(&["status"]);
    let text = crate::support::workspace::redact_hashes(&crate::support::workspace::stdout(&out));
    // Why a provider is ineligible depends on this machine (is an Ollama running?).
    // So is what its kernel can confine children with.
    let stable: String = text
        .lines()
        .map(|l| if l.starts_with("sandbox   on · ") { "sandbox   on · [WHAT THIS KERNEL ENFORCES]" } else { l })
        .map(|l| format!("{}\n", l.split("  no (").next().unwrap_or(l)))
        .collect::<String>();
    insta::assert_snapshot!("status_aligned", stable);
    // Every row of the providers table puts its columns where the header does.
    // (The notes under it, "X is at tier T: ...", are sentences, not rows.)
    let lines: Vec<&str> =
        text.lines().skip_while(|l| *l != "providers").skip(1).filter(|l| !l.contains(" is at tier ")).collect();
    let col = |l: &str, word: &str| l.find(word);
    let header = lines[0];
    for row in &lines[1..] {
        for word in ["kind", "tier", "eligible"] {
            let at = col(header, word).unwrap();
            assert_eq!(&row[at - 1..at], " ", "{word}:\n{header}\n{row}");
            assert_ne!(&row[at..at + 1], " ", "{word}:\n{header}\n{row}");
        }
    }
}

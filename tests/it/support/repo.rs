//! Temporary git repositories laid out as ratchet workspaces, and byte
//! snapshots of trees.

use std::path::{Path, PathBuf};

use ratchet::rails::Rails;
use ratchet::workspace::Workspace;

/// This repository's own rails, the template `init` writes.
pub const RAILS: &str = include_str!("../../../config/rails.toml");

/// The template with an allowlist of everything, to show that the protected
/// set and the on-disk checks hold even when the allowlist does not help.
pub fn allow_all(rails: &str) -> String {
    rails.replace(r#"allow = ["src/**", "tests/**", "docs/**", "*.md"]"#, r#"allow = ["**"]"#)
}

/// A workspace in a temporary directory: `<tmp>/repo` is the git work tree,
/// `<tmp>/outside` a directory outside it, `<tmp>/home` and `<tmp>/state`
/// stand in for `$HOME` and `$XDG_STATE_HOME`.
pub struct TestRepo {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    parent: PathBuf,
}

impl TestRepo {
    /// A committed workspace with the template rails, an intent, and a few
    /// files: `docs/guide.md`, `README.md`, `src/lib.rs`.
    pub fn new() -> TestRepo {
        let repo = TestRepo::uncommitted(RAILS);
        repo.commit();
        repo
    }

    /// Like [`TestRepo::new`] with other rails, and nothing committed.
    pub fn uncommitted(rails: &str) -> TestRepo {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let parent = tmp.path().canonicalize().expect("the temporary directory exists");
        let root = parent.join("repo");
        for dir in ["repo", "outside", "home", "state"] {
            std::fs::create_dir(parent.join(dir)).expect("mkdir");
        }
        let repo = TestRepo { _tmp: tmp, root, parent };
        repo.git(&["init", "-q"]);
        repo.write("config/rails.toml", rails);
        repo.write("intents/CURRENT", "main\n");
        repo.write("intents/main.md", "Make the documentation clearer.\n");
        repo.write("docs/guide.md", "# Guide\n\nOne.\nTwo.\nThree.\n");
        repo.write("README.md", "# Project\n");
        repo.write("src/lib.rs", "pub fn answer() -> u32 {\n    42\n}\n");
        repo.write("../outside/x.md", "outside the repository\n");
        repo
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn outside(&self) -> PathBuf {
        self.parent.join("outside")
    }

    pub fn home(&self) -> PathBuf {
        self.parent.join("home")
    }

    pub fn state(&self) -> PathBuf {
        self.parent.join("state")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes `rel` (making its directories).
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().expect("a file has a parent")).expect("mkdir -p");
        std::fs::write(path, contents).expect("write");
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).expect("read")
    }

    /// `ln -s target rel`.
    pub fn symlink(&self, target: impl AsRef<Path>, rel: &str) {
        std::os::unix::fs::symlink(target, self.path(rel)).expect("symlink");
    }

    pub fn mkfifo(&self, rel: &str) {
        rustix::fs::mkfifoat(rustix::fs::CWD, self.path(rel), rustix::fs::Mode::from_raw_mode(0o644)).expect("mkfifo");
    }

    pub fn socket(&self, rel: &str) {
        std::os::unix::net::UnixListener::bind(self.path(rel)).expect("bind a unix socket");
    }

    /// Runs git in the work tree, hermetically, with pinned dates.
    pub fn git(&self, args: &[&str]) {
        let mut full = vec!["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"];
        full.extend_from_slice(&["-c", "init.defaultBranch=main"]);
        full.extend_from_slice(args);
        super::git(&self.root, &full);
    }

    pub fn commit(&self) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", "fixture"]);
    }

    pub fn ws(&self) -> Workspace {
        Workspace::discover(&self.root).expect("a workspace")
    }

    pub fn rails(&self) -> Rails {
        Rails::load(&self.ws()).expect("valid rails")
    }

    /// Every entry under the work tree (`.git` included) and the outside
    /// directory.
    pub fn snapshot(&self) -> Vec<Entry> {
        let mut out = snapshot(&self.root);
        out.extend(snapshot(&self.outside()));
        out
    }
}

/// One entry of a tree: path, kind, permission bits, and bytes (file) or
/// target (symlink).
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: &'static str,
    pub mode: u32,
    pub bytes: Vec<u8>,
}

/// Every entry under `root`, sorted, never following symlinks and never
/// opening anything but regular files.
pub fn snapshot(root: &Path) -> Vec<Entry> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    fn walk(root: &Path, dir: &Path, out: &mut Vec<Entry>) {
        let mut paths: Vec<PathBuf> =
            std::fs::read_dir(dir).expect("read_dir").map(|e| e.expect("a dir entry").path()).collect();
        paths.sort();
        for p in paths {
            let meta = std::fs::symlink_metadata(&p).expect("lstat");
            let t = meta.file_type();
            let (kind, bytes) = if t.is_symlink() {
                ("symlink", std::fs::read_link(&p).expect("readlink").into_os_string().into_encoded_bytes())
            } else if t.is_dir() {
                ("dir", Vec::new())
            } else if t.is_file() {
                ("file", std::fs::read(&p).expect("read"))
            } else if t.is_fifo() {
                ("fifo", Vec::new())
            } else if t.is_socket() {
                ("socket", Vec::new())
            } else {
                ("other", Vec::new())
            };
            let rel = p.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
            out.push(Entry { path: rel, kind, mode: meta.permissions().mode(), bytes });
            if kind == "dir" {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

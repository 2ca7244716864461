//! What a child may touch: the policy, and the defaults ratchet passes.

use std::path::{Path, PathBuf};

use crate::workspace::Workspace;

/// Whether children are confined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Confined; refused where the kernel cannot confine.
    #[default]
    On,
    /// Run as before, unconfined (the environment is still scrubbed). Only
    /// ever by an explicit `[sandbox] mode = "off"`.
    Off,
}

/// The user's secrets, relative to `HOME`, hidden from every child:
/// credentials, keys, agent and control sockets, tokens of package
/// registries and clouds, browser profiles and shell histories.
pub const DEFAULT_SECRETS: &[&str] = &[
    ".ssh",
    ".gnupg",
    // ratchet's own: `ratchet agent`'s key (encrypted, but open to guessing offline).
    ".config/ratchet",
    ".netrc",
    ".git-credentials",
    ".config/git/credentials",
    ".config/gh",
    ".config/hub",
    ".config/glab-cli",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".kube",
    ".docker",
    ".config/containers/auth.json",
    ".npmrc",
    ".yarnrc.yml",
    ".pypirc",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".gem/credentials",
    ".m2/settings-security.xml",
    ".terraform.d/credentials.tfrc.json",
    ".vault-token",
    ".password-store",
    ".local/share/keyrings",
    ".config/rclone",
    ".s3cfg",
    ".boto",
    ".pgpass",
    ".my.cnf",
    ".mozilla",
    ".config/google-chrome",
    ".config/chromium",
    ".bash_history",
    ".zsh_history",
    ".local/share/fish/fish_history",
];

/// System files that hold secrets; they matter when ratchet runs as root.
/// The host's private ssh keys (`/etc/ssh/ssh_host_*_key`) are added too.
pub const SYSTEM_SECRETS: &[&str] = &["/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/sudoers.d"];

/// What a child may touch. Paths may be relative to `tree`; the lists are
/// taken as they are (missing paths are skipped), so a caller adds to the
/// defaults rather than replacing them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// The work tree: readable and writable, but for `read_only` and `hidden`.
    pub tree: PathBuf,
    /// Read-only directories or files inside the tree.
    pub read_only: Vec<PathBuf>,
    /// Paths the child sees as empty: secrets and ratchet's own state.
    pub hidden: Vec<PathBuf>,
    /// More writable paths (a build tool's cache). Created when missing.
    pub writable: Vec<PathBuf>,
    /// More readable paths that sit where the sandbox puts private
    /// directories (`/tmp`, `/var/tmp`, `/run`), such as a toolchain under
    /// `/tmp` or a database socket directory under `/run`.
    pub readable: Vec<PathBuf>,
    /// Whether the child may use the network (the host's loopback included).
    pub network: bool,
    /// Names of environment variables passed through beyond the safe set.
    pub env: Vec<String>,
    /// When set, `tree` is an empty directory on which the child sees this
    /// overlay: another tree, read-only beneath, with every write going to
    /// a directory of ratchet's ([`Overlay`]).
    pub overlay: Option<Overlay>,
}

/// A copy-on-write view of `lower` (the `agent` provider's scratch place):
/// the child reads `lower` through it and its writes land in `upper`, so
/// `lower` is never written and ratchet reads the child's work from `upper`
/// alone. An overlayfs mount made in the child's own mount namespace; it
/// ends with the run. `work` is overlayfs's work directory, on the same
/// file system as `upper`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlay {
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
}

impl Policy {
    /// The policy for a child working in `tree`: the tree writable, the
    /// user's secrets ([`DEFAULT_SECRETS`] under `HOME`, the sockets named in
    /// the environment, `$XDG_RUNTIME_DIR`, [`SYSTEM_SECRETS`]) hidden, no
    /// network, no extra environment.
    pub fn new(tree: impl Into<PathBuf>) -> Policy {
        Policy {
            mode: Mode::On,
            tree: tree.into(),
            read_only: Vec::new(),
            hidden: default_hidden(|name| std::env::var_os(name)),
            writable: Vec::new(),
            readable: Vec::new(),
            network: false,
            env: Vec::new(),
            overlay: None,
        }
    }

    /// The policy for the children of a ratchet workspace: [`Policy::new`]
    /// for its work tree, plus `.git/` and the home's `config/`, `intents/`,
    /// `golden/` and `logs/` read-only, and the home's `.ratchet/` and
    /// ratchet's state directory (`$XDG_STATE_HOME/ratchet`, where the
    /// checkpoints are kept) hidden.
    pub fn for_workspace(ws: &Workspace) -> Policy {
        let mut policy = Policy::new(ws.root());
        policy.read_only.push(ws.root().join(".git"));
        for dir in ["config", "intents", "golden", "logs"] {
            policy.read_only.push(ws.home().join(dir));
        }
        policy.hidden.push(ws.state_dir());
        let paths = crate::journal::JournalPaths::for_workspace(ws);
        // `<state home>/ratchet/<id>/checkpoint`: hide all of `<state home>/ratchet`.
        for place in paths.checkpoints.iter().skip(1) {
            if let Some(dir) = place.path.parent().and_then(Path::parent) {
                policy.hidden.push(dir.to_path_buf());
            }
        }
        policy
    }

    /// The policy for the checks of a workspace under `rails`: the
    /// workspace's ([`Policy::for_workspace`]) with `[sandbox]` and
    /// `[checks] network`/`env` applied.
    pub fn for_checks(ws: &Workspace, rails: &crate::rails::Rails) -> Policy {
        Policy::for_rails(ws, rails).network(rails.checks.network).env(rails.checks.env.iter().cloned())
    }

    /// The policy every child of a workspace starts from under `rails`
    /// (`[sandbox] mode` and `writable`); the checks and each provider add
    /// their own network and environment.
    pub fn for_rails(ws: &Workspace, rails: &crate::rails::Rails) -> Policy {
        let home = std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.is_absolute());
        let writable = rails.sandbox.writable_paths(home.as_deref());
        Policy::for_workspace(ws).mode(rails.sandbox.mode).writable(writable)
    }

    pub fn mode(mut self, mode: Mode) -> Policy {
        self.mode = mode;
        self
    }

    pub fn network(mut self, network: bool) -> Policy {
        self.network = network;
        self
    }

    pub fn env<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Policy {
        self.env.extend(names.into_iter().map(Into::into));
        self
    }

    pub fn writable<P: Into<PathBuf>>(mut self, paths: impl IntoIterator<Item = P>) -> Policy {
        self.writable.extend(paths.into_iter().map(Into::into));
        self
    }

    pub fn readable<P: Into<PathBuf>>(mut self, paths: impl IntoIterator<Item = P>) -> Policy {
        self.readable.extend(paths.into_iter().map(Into::into));
        self
    }

    pub fn read_only<P: Into<PathBuf>>(mut self, paths: impl IntoIterator<Item = P>) -> Policy {
        self.read_only.extend(paths.into_iter().map(Into::into));
        self
    }

    /// Shows the child `lower` at the tree, copy-on-write into `upper`
    /// ([`Overlay`]). Paths of the policy inside the tree are looked up in
    /// `lower`.
    pub fn overlay(mut self, lower: impl Into<PathBuf>, upper: impl Into<PathBuf>, work: impl Into<PathBuf>) -> Policy {
        self.overlay = Some(Overlay { lower: lower.into(), upper: upper.into(), work: work.into() });
        self
    }

    pub fn hide<P: Into<PathBuf>>(mut self, paths: impl IntoIterator<Item = P>) -> Policy {
        self.hidden.extend(paths.into_iter().map(Into::into));
        self
    }

    /// `path` as an absolute path: relative ones are taken from the tree.
    pub(super) fn absolute(&self, path: &Path) -> PathBuf {
        if path.is_absolute() { path.to_path_buf() } else { self.tree.join(path) }
    }
}

/// The secrets to hide, from the environment `var` gives.
pub(super) fn default_hidden(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Vec<PathBuf> {
    let mut hidden = Vec::new();
    if let Some(home) = var("HOME").map(PathBuf::from).filter(|h| h.is_absolute()) {
        hidden.extend(DEFAULT_SECRETS.iter().map(|s| home.join(s)));
    }
    if let Some(gnupg) = var("GNUPGHOME").map(PathBuf::from).filter(|p| p.is_absolute()) {
        hidden.push(gnupg);
    }
    // Usually under /run, which is replaced anyway; not always.
    if let Some(runtime) = var("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|p| p.is_absolute()) {
        hidden.push(runtime);
    }
    // Sockets the user's agents listen on, wherever they sit.
    if let Some(sock) = var("SSH_AUTH_SOCK").map(PathBuf::from).filter(|p| p.is_absolute()) {
        hidden.push(sock);
    }
    for (name, prefix) in [("DOCKER_HOST", "unix://"), ("DBUS_SESSION_BUS_ADDRESS", "unix:path=")] {
        if let Some(value) = var(name) {
            let value = value.to_string_lossy().into_owned();
            if let Some(rest) = value.strip_prefix(prefix) {
                let path = rest.split([',', ';']).next().unwrap_or_default();
                if path.starts_with('/') {
                    hidden.push(PathBuf::from(path));
                }
            }
        }
    }
    hidden.extend(SYSTEM_SECRETS.iter().map(PathBuf::from));
    if let Ok(entries) = std::fs::read_dir("/etc/ssh") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("ssh_host_") && name.ends_with("_key") {
                hidden.push(entry.path());
            }
        }
    }
    hidden
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_hidden_paths_follow_the_environment() {
        let env = |name: &str| -> Option<std::ffi::OsString> {
            match name {
                "HOME" => Some("/home/a".into()),
                "GNUPGHOME" => Some("/keys/gnupg".into()),
                "XDG_RUNTIME_DIR" => Some("/run/user/1000".into()),
                "SSH_AUTH_SOCK" => Some("/home/a/.1password/agent.sock".into()),
                "DOCKER_HOST" => Some("unix:///home/a/.colima/docker.sock".into()),
                "DBUS_SESSION_BUS_ADDRESS" => Some("unix:path=/run/user/1000/bus,guid=1".into()),
                _ => None,
            }
        };
        let hidden = default_hidden(env);
        for p in [
            "/home/a/.ssh",
            "/home/a/.aws",
            "/home/a/.netrc",
            "/home/a/.config/gh",
            "/home/a/.docker",
            "/keys/gnupg",
            "/run/user/1000",
            "/home/a/.1password/agent.sock",
            "/home/a/.colima/docker.sock",
            "/run/user/1000/bus",
            "/etc/shadow",
        ] {
            assert!(hidden.contains(&PathBuf::from(p)), "{p} in {hidden:?}");
        }
        // Relative values are not trusted as paths.
        let hidden = default_hidden(|n| (n == "HOME").then(|| "relative".into()));
        assert!(!hidden.iter().any(|p| p.starts_with("relative")));
    }

    #[test]
    fn relative_policy_paths_are_taken_from_the_tree() {
        let p = Policy::new("/work/repo");
        assert_eq!(p.absolute(Path::new("logs")), PathBuf::from("/work/repo/logs"));
        assert_eq!(p.absolute(Path::new("/cache")), PathBuf::from("/cache"));
        assert_eq!((p.mode, p.network), (Mode::On, false));
    }
}

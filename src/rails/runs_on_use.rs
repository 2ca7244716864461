//! The files tools execute on use: they count as code (the top trust
//! tier) wherever they sit, and never auto-merge (DESIGN §6a).

/// The files tools execute on use, by default. Matched case-insensitively
/// at any depth (`**/` is implied for patterns without a `/`).
pub const RUNS_ON_USE: &[&str] = &[
    // Test files that runners collect and import.
    "**/test_*.py",
    "**/*_test.py",
    "**/conftest.py",
    "**/__init__.py",
    "**/*_test.go",
    "**/*.test.[jt]s",
    "**/*.test.[cm][jt]s",
    "**/*.test.[jt]sx",
    "**/*.spec.[jt]s",
    "**/*.spec.[jt]sx",
    "**/*_spec.rb",
    "**/*_test.rb",
    // Build scripts and manifests whose scripts or hooks run.
    "**/build.rs",
    "**/Cargo.toml",
    "**/.cargo/config",
    "**/.cargo/config.toml",
    "**/Makefile",
    "**/GNUmakefile",
    "**/*.mk",
    "**/CMakeLists.txt",
    "**/Justfile",
    "**/Rakefile",
    "**/Gemfile",
    "**/*.gemspec",
    "**/setup.py",
    "**/setup.cfg",
    "**/pyproject.toml",
    "**/tox.ini",
    "**/pytest.ini",
    "**/noxfile.py",
    "**/conf.py",
    "**/package.json",
    "**/.npmrc",
    "**/.yarnrc",
    "**/.yarnrc.yml",
    "**/*.config.[cm]js",
    "**/*.config.[jt]s",
    "**/build.gradle",
    "**/build.gradle.kts",
    "**/settings.gradle",
    "**/settings.gradle.kts",
    "**/pom.xml",
    "**/BUILD",
    "**/BUILD.bazel",
    "**/WORKSPACE",
    "**/.bazelrc",
    "**/Dockerfile",
    "**/docker-compose.yml",
    "**/docker-compose.yaml",
    // CI, hooks, environment and editor configurations.
    ".github/workflows/**",
    ".github/actions/**",
    ".gitlab-ci.yml",
    ".circleci/**",
    ".travis.yml",
    "**/.envrc",
    "**/.env",
    "**/.pre-commit-config.yaml",
    "**/.husky/**",
    "**/.githooks/**",
    "**/.gitattributes",
    "**/.gitmodules",
    "**/.vscode/**",
    "**/.idea/**",
    "**/.devcontainer/**",
];

/// The scripts a command line runs from the tree, as literal patterns:
/// the program of each simple command when it is a path (`./check.sh`,
/// `scripts/test`), and the script an interpreter is given (`sh
/// scripts/check.sh`, `python3 tools/run.py`). The checks' own scripts run
/// every step, so they count as code. Files the command merely reads
/// (`grep -q X docs/a.md`) are not named.
pub fn named_files(command: &str) -> Vec<String> {
    const INTERPRETERS: &[&str] = &[
        "sh", "bash", "dash", "zsh", "ksh", "python", "python3", "node", "deno", "bun", "ruby", "perl", "php", "lua",
        "Rscript", "pwsh", "tclsh",
    ];
    let mut out = Vec::new();
    for simple in command.split(|c: char| ";&|()\n".contains(c)) {
        let mut words = simple
            .split_whitespace()
            .map(|w| w.trim_matches(|c| c == '\'' || c == '"'))
            .skip_while(|w| w.contains('=') && !w.starts_with('-'));
        let Some(first) = words.next() else { continue };
        let first = if matches!(first, "exec" | "env" | "time" | "nice" | "timeout") {
            match words.find(|w| !w.starts_with('-') && !w.chars().all(|c| c.is_ascii_digit())) {
                Some(w) => w,
                None => continue,
            }
        } else {
            first
        };
        let name = first.rsplit('/').next().unwrap_or(first);
        let script = if INTERPRETERS.contains(&name) {
            words.find(|w| !w.starts_with('-'))
        } else if first.contains('/') {
            Some(first)
        } else {
            None
        };
        if let Some(w) = script.map(|w| w.trim_start_matches("./")) {
            let plain = !w.is_empty() && !w.starts_with('/') && !w.contains('$') && !w.contains("..");
            if plain && !w.contains(['*', '?', '[', '{']) {
                out.push(w.to_string());
            }
        }
    }
    out
}

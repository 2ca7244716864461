//! The integration tests: one binary (`autotests = false` in Cargo.toml),
//! one module per area, one harness ([`support`]). `every_test_file_is_compiled`
//! fails when a file under tests/it/ is not declared as a module.

mod agent_kind;
mod agents;
mod agents_key;
mod architecture;
mod attacks;
mod backup;
mod cli_log;
mod cluster_corpus;
mod demo;
mod doctor;
mod errors;
mod gate2;
mod heartbeat;
mod help;
mod index;
mod init;
mod interrupt;
mod loop_e2e;
mod loop_page;
mod model;
mod ollama_stub;
mod patch;
mod rails;
mod readme;
mod recovery;
mod serve;
mod show;
mod status;
mod step;
mod support;
mod telemetry;

/// With `autotests = false`, a test file nobody declares is silently never
/// compiled: every `.rs` under tests/it/ must be a module of its parent
/// (`main.rs` for the top level, `dir.rs` for `dir/`), and every other `.rs`
/// under tests/ must be named by a `#[path]` somewhere in tests/it/.
#[test]
fn every_test_file_is_compiled() {
    use std::path::{Path, PathBuf};
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() && e.file_name() != "node_modules" && !e.file_name().to_string_lossy().starts_with('.') {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let it = tests.join("it");
    let mut files = Vec::new();
    walk(&tests, &mut files);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    let mut all_it = String::new();
    for f in files.iter().filter(|f| f.starts_with(&it)) {
        all_it.push_str(&read(f));
    }
    let mut forgotten = Vec::new();
    for f in &files {
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        if !f.starts_with(&it) {
            let rel = f.strip_prefix(&tests).unwrap().display().to_string();
            if !all_it.contains(&format!("#[path = \"../{rel}\"]")) {
                forgotten.push(f.display().to_string());
            }
            continue;
        }
        if f == &it.join("main.rs") {
            continue;
        }
        let dir = f.parent().unwrap();
        let parent = if dir == it { it.join("main.rs") } else { dir.with_extension("rs") };
        let text = if parent.exists() { read(&parent) } else { String::new() };
        let declared = text.lines().any(|l| {
            let l = l.trim();
            l == format!("mod {name};") || l == format!("pub mod {name};")
        });
        if !declared {
            forgotten.push(f.display().to_string());
        }
    }
    assert!(forgotten.is_empty(), "test files that are never compiled: {forgotten:?}");
}

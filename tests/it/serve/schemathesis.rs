//! schemathesis against a real `ratchet serve`: every operation of
//! `/openapi.json` fuzzed in all of schemathesis's phases (coverage,
//! fuzzing, and the stateful phase that follows the document's `links`),
//! with its default checks: no server error, no status the document does
//! not list, responses (status, content type, headers, body) as the
//! document says, bodies the schema forbids refused, bodies it allows
//! accepted.
//!
//! schemathesis is installed by `.ci/run` (`bash .ci/install-schemathesis`,
//! a venv in `.ci/.schemathesis-venv` with a pinned version from PyPI).
//! When it is missing this test FAILS, naming the command that installs it.
//!
//! Run time: `--max-examples 25` per operation keeps the run near a minute
//! on two cores (about 1,000 requests over 22 operations); set
//! `RATCHET_SCHEMATHESIS_EXAMPLES` for a longer run.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::server::*;

fn schemathesis() -> PathBuf {
    let st = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/.schemathesis-venv/bin/st");
    assert!(
        st.is_file(),
        "schemathesis is not installed (no {}); install it with: bash .ci/install-schemathesis",
        st.display()
    );
    st
}

#[test]
fn schemathesis_finds_nothing_the_document_does_not_say() {
    let st = schemathesis();
    let dir = tempfile::tempdir().unwrap();
    // A high mint limit, so that minting is explored rather than refused
    // (the 429 is tested elsewhere).
    let server = Server::start(&dir.path().join("loopkit.db"), &["--mint-per-hour", "100000"]);
    let addr = server.addr;
    let (s, p) = http(
        addr,
        "POST",
        "/v1/provision",
        &[("content-type", "application/json")],
        br#"{"project_name":"schemathesis"}"#,
    );
    assert_eq!(s, 201, "{p}");
    let (producer, agent) = (key(&p, "producer_key"), key(&p, "agent_key"));
    // Each operation gets the key of the kind it needs. OTLP ingest keeps
    // every check but negative_data_rejection: OTLP asks that a span which
    // does not decode be rejected alone, in a 200's partialSuccess, which
    // schemathesis would count as "accepted" (the other spans are kept; a
    // request whose spans are all bad is still a 400).
    let config = format!(
        r#"[[operations]]
include-path = "/v1/traces"
headers = {{ Authorization = "Bearer {producer}" }}
checks.negative_data_rejection.enabled = false

[[operations]]
include-path-regex = "^/v1/(telemetry|dashboard|reports/latest\\.md|runs/diagnose)$"
headers = {{ Authorization = "Bearer {agent}" }}
"#
    );
    let config_path = dir.path().join("schemathesis.toml");
    std::fs::write(&config_path, config).unwrap();
    let examples = std::env::var("RATCHET_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "25".into());
    let out = Command::new(&st)
        .arg("--config-file")
        .arg(&config_path)
        .args(["run", &format!("http://{addr}/openapi.json")])
        .args(["--phases", "coverage,fuzzing,stateful"])
        .args(["--max-examples", &examples, "--seed", "7", "--workers", "2"])
        // The 303 of a form recovery is checked as it is, not followed.
        .args(["--max-redirects", "0", "--request-timeout", "30"])
        .args(["--warnings", "off", "--no-color"])
        // Hypothesis's `too_slow` health check times the data generator, not
        // the server: on a loaded machine the OTLP schema trips it, which
        // would fail the test for the test's own speed.
        .args(["--suppress-health-check", "too_slow"])
        .current_dir(dir.path())
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "schemathesis found failures:\n{stdout}\n{stderr}");
    assert!(stdout.contains("Stateful"), "the stateful phase ran:\n{stdout}");
    assert!(
        !stdout.contains("Stateful: skipped") && !stdout.contains("⏭  Stateful"),
        "the stateful phase was skipped:\n{stdout}"
    );
    println!("{}", stdout.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n"));
}

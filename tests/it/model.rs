//! The model kinds end to end (issue 9): `ollama` against a stub written
//! from Ollama's API documentation, `openai` against a real llama.cpp
//! server (xllamacpp) serving SmolLM2-135M, both installed by
//! `.ci/install-llama`. These tests assert structure, never wording, and
//! FAIL (never skip) when the server or the model is missing.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ratchet::propose::provider::Cancel;
use ratchet::propose::provider::model::wire::{self, Call, CallErrorKind, Finish, Wire};
use serde_json::{Value, json};

use crate::ollama_stub::{Script, Stub};
use crate::support::workspace::{Setup, Ws, code, json as out_json, stderr, stdout};

const INSTALL: &str = "bash .ci/install-llama";

fn llama_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/llama")
}

/// A real llama.cpp server on a free loopback port, killed on drop.
struct Llama {
    child: Child,
    url: String,
}

impl Llama {
    fn start() -> Llama {
        let dir = llama_dir();
        let python = dir.join(".venv/bin/python");
        let model = dir.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
        assert!(
            python.is_file(),
            "llama.cpp's server is not installed (no tests/llama/.venv); install it with: {INSTALL}"
        );
        assert!(model.is_file(), "the SmolLM2 model is missing ({}); fetch it with: {INSTALL}", model.display());
        let mut child = Command::new(python)
            .arg(dir.join("serve.py"))
            .arg(&model)
            .args(["--ctx", "4096", "--threads", "2"])
            .env("OMP_WAIT_POLICY", "PASSIVE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the llama.cpp server");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let url = first
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("the server did not start: {first:?}"))
            .to_string();
        Llama { child, url }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Llama {
    fn drop(&mut self) {
        self.kill();
    }
}

fn endpoint(url: &str, max_output_tokens: u32) -> ratchet::rails::Endpoint {
    ratchet::rails::Endpoint {
        url: url.to_string(),
        model: "smollm2".into(),
        api_key_env: None,
        num_ctx: 4096,
        max_prompt_tokens: 2048,
        max_output_tokens,
        paid: false,
        caps: None,
    }
}

const DOC: &str = "# Guide\n\nRatchet reads the rails from the configuration file.\n\nIt checks teh rails before every step\nand stops when they changed.\n\nThe end.\n";

const DOCS_INTENT: &str = "# Improve the documentation\n\nFix typos and wrong words in the docs.\n";

fn model_ws(provider: &str, extra: &str) -> Ws {
    let ws = Ws::looped(Setup {
        extra_rails: format!("\n{provider}\n{extra}"),
        intent: Some(DOCS_INTENT.into()),
        ..Setup::default()
    });
    ws.write("docs/guide.md", DOC);
    ws.git(&["add", "-A"]);
    ws.git(&["commit", "-q", "-m", "docs"]);
    ws
}

fn ollama_rails(url: &str) -> String {
    format!(
        "[providers.stub]\nkind = \"ollama\"\nurl = \"{url}\"\nmodel = \"qwen2.5-coder:1.5b\"\nnum_ctx = 4096\ntimeout_s = 20\n"
    )
}

#[test]
fn ollama_kind_proposes_an_exact_edit_from_the_documented_stream() {
    let stub = Stub::start(Script::Fix);
    let ws = model_ws(&ollama_rails(&stub.url), "");
    // The docs are proofread a passage a step, in path order: README.md
    // first (nothing to correct), and the log records the passage shown.
    let out = ws.run(&["--json", "step", "--provider", "stub"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out_json(&out)["outcome"], "noop", "{}", stdout(&out));
    assert_eq!(ws.last()["passage"]["path"], "README.md", "{}", ws.last());
    // Then the next passage: the guide's, with its typo.
    let out = ws.run(&["--json", "step", "--provider", "stub"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = out_json(&out);
    assert_eq!(r["outcome"], "pending", "{r}");
    stub.requests.lock().unwrap().remove(0);
    // The request is what Ollama's documentation asks for.
    let req = stub.requests.lock().unwrap()[0].clone();
    assert_eq!(req["stream"], true);
    assert_eq!(req["options"]["num_ctx"], 4096, "num_ctx set explicitly");
    assert_eq!(req["format"]["type"], "object", "format is the answer's schema");
    assert!(req["format"]["properties"]["corrected"].is_object(), "the schema asks for the corrected passage");
    assert_eq!(req["messages"][0]["role"], "system");
    let shown = req["messages"][1]["content"].as_str().unwrap();
    assert!(shown.contains("It checks teh rails before every step\nand stops"), "the passage as in the file: {shown}");
    // The correction was put to the model twice, the two words in both orders, before it was proposed.
    let reqs = stub.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 3);
    for (r, order) in reqs[1..].iter().zip([["teh", "the"], ["the", "teh"]]) {
        assert_eq!(r["format"]["properties"]["correct"]["enum"], json!(order));
        let q = r["messages"][1]["content"].as_str().unwrap();
        assert!(q.contains("Sentence: It checks ___ rails before every step and stops when they changed."), "{q}");
    }
    // The proposal's old text was built from the file: it occurs exactly once.
    let pending: Value = serde_json::from_str(&ws.read(r["pending"].as_str().unwrap())).unwrap();
    let patch = &pending["proposal"]["patch"];
    let old = patch["old"].as_str().unwrap();
    assert_eq!(DOC.matches(old).count(), 1, "{old:?}");
    assert_eq!(DOC.replacen(old, patch["new"].as_str().unwrap(), 1), DOC.replace("teh", "the"));
    // Usage from the final frames, counted (every call), free.
    let entry = ws.last();
    assert_eq!(
        entry["cost"],
        json!({"calls": 3, "input_tokens": 3 * 321, "output_tokens": entry["cost"]["output_tokens"], "usd": 0.0})
    );
    // The passage shown is logged, so the next step moves on.
    assert_eq!(entry["passage"]["path"], "docs/guide.md", "{entry}");
    assert_eq!(entry["passage"]["lines"], json!([1, 8]), "{entry}");
    assert!(entry["cost"]["output_tokens"].as_u64().unwrap() > 0);
    assert!(entry["gate1"].as_array().unwrap().iter().all(|v| v["verdict"] == "attest"), "{entry}");
}

#[test]
fn a_model_trace_holds_every_prompt_and_answer_outside_the_repository_and_never_in_the_log() {
    let stub = Stub::start(Script::Fix);
    let ws = model_ws(&ollama_rails(&stub.url), "");
    ws.git(&["rm", "-q", "README.md"]);
    ws.git(&["commit", "-qm", "only the guide"]);
    // Inside the repository: the step fails before any call, saying why.
    let inside = ws.path("trace.jsonl");
    let out =
        ws.run_env(&[("RATCHET_MODEL_TRACE", inside.to_str().unwrap())], &["--json", "step", "--provider", "stub"]);
    let r = out_json(&out);
    assert_eq!((r["outcome"].as_str(), r["reason"].as_str()), (Some("failed"), Some("provider_unavailable")), "{r}");
    assert!(r["detail"].as_str().unwrap().contains("inside the repository"), "{r}");
    assert!(!inside.exists());
    assert_eq!(stub.count(), 0, "no call was made");
    // Outside: one line a call, with the messages and the answer.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trace.jsonl");
    let out = ws.run_env(&[("RATCHET_MODEL_TRACE", file.to_str().unwrap())], &["--json", "step", "--provider", "stub"]);
    assert_eq!(out_json(&out)["outcome"], "pending", "{}", stdout(&out));
    let lines: Vec<Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "the proofreading ask and two confirmations");
    assert_eq!(lines[0]["provider"], "stub");
    assert_eq!(lines[0]["step"], ws.last()["id"].as_str().unwrap_or(""), "{}", lines[0]);
    assert!(lines[0]["messages"][1]["content"].as_str().unwrap().contains("It checks teh rails"));
    assert!(lines[0]["answer"]["text"].as_str().unwrap().contains("It checks the rails"));
    // The log holds no prompt.
    let log = ws.read("logs/steps.jsonl");
    assert!(!log.contains("It checks teh rails"), "prompts stay out of the log");
}

#[test]
fn ollama_errors_before_and_during_the_stream_are_logged_failures() {
    let stub = Stub::start(Script::NotFound);
    let ws = model_ws(&ollama_rails(&stub.url), "");
    let r = out_json(&ws.run(&["--json", "step", "--provider", "stub"]));
    assert_eq!((r["outcome"].as_str(), r["reason"].as_str()), (Some("failed"), Some("provider_unavailable")), "{r}");
    assert!(r["detail"].as_str().unwrap().contains("not found, try pulling it first"), "{r}");
    stub.set(Script::MidStreamError);
    let r = out_json(&ws.run(&["--json", "step", "--provider", "stub"]));
    assert_eq!(r["outcome"], "failed", "{r}");
    assert!(r["detail"].as_str().unwrap().contains("mid-answer"), "{r}");
    assert_eq!(ws.last()["cost"]["calls"], 1, "a failed try still counts");
    assert!(ws.last()["cost"]["output_tokens"].as_u64().unwrap() > 0, "the tokens it streamed count");
}

#[test]
fn a_cut_off_answer_is_retried_with_more_room_then_becomes_a_noop() {
    let stub = Stub::start(Script::CutOff);
    let ws = model_ws(&ollama_rails(&stub.url), "");
    let r = out_json(&ws.run(&["--json", "step", "--provider", "stub"]));
    assert_eq!(r["outcome"], "noop", "{r}");
    assert!(r["detail"].as_str().unwrap().contains("cut off"), "{r}");
    let reqs = stub.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1]["options"]["num_predict"], reqs[0]["options"]["num_predict"].as_u64().unwrap() * 2);
    assert_eq!(ws.last()["cost"]["calls"], 2, "every try counts");
}

#[test]
fn a_paid_endpoint_stops_at_its_daily_call_cap_and_starts_again_the_next_day() {
    let stub = Stub::start(Script::Fix);
    let provider = format!(
        "{}paid = true\nenabled = true\nmax_calls_per_day = 2\nmax_usd_per_day = 1.0\nusd_per_1k_input = 0.5\nusd_per_1k_output = 0.01\n",
        ollama_rails(&stub.url)
    );
    let ws = model_ws(&provider, "");
    // Nothing to correct: one call a step.
    ws.write("docs/guide.md", &DOC.replace("teh", "the"));
    ws.git(&["commit", "-qam", "no typo"]);
    let day = "2026-11-21T";
    // Under the cap: 0, then 1 of 2 calls used (a noop each; each made its call).
    for (n, at) in ["10:00:00Z", "11:00:00Z"].iter().enumerate() {
        let out = ws.run_at(&format!("{day}{at}"), &["--json", "step", "--provider", "stub"]);
        assert_eq!(out_json(&out)["provider"], "stub", "step {n}: {}", stderr(&out));
        assert_eq!(ws.last()["cost"]["calls"], 1);
        assert_eq!(stub.count(), n + 1);
    }
    let usd = ws.last()["cost"]["usd"].as_f64().unwrap();
    assert!(usd > 0.0, "a paid call is priced: {usd}");
    // At the cap: ineligible, with the reason in status; forced, refused before any call.
    let status = ws.run_at(&format!("{day}23:59:59Z"), &["status"]);
    assert!(stdout(&status).contains("call cap reached: 2 of 2 calls today"), "{}", stdout(&status));
    let out = ws.run_at(&format!("{day}23:59:59Z"), &["--json", "step"]);
    assert_ne!(out_json(&out)["provider"], "stub");
    assert!(ws.last()["pick"]["capped"][0].as_str().unwrap().starts_with("stub: call cap reached"), "{}", ws.last());
    let out = ws.run_at(&format!("{day}23:59:59Z"), &["--json", "step", "--provider", "stub"]);
    let r = out_json(&out);
    assert_eq!((r["outcome"].as_str(), r["reason"].as_str()), (Some("failed"), Some("provider_over_budget")), "{r}");
    assert_eq!(stub.count(), 2, "no call was made at the cap");
    // Across the day boundary the cap starts again.
    let out = ws.run_at("2026-11-22T00:00:01Z", &["--json", "step", "--provider", "stub"]);
    assert_ne!(out_json(&out)["reason"], "provider_over_budget", "{}", stderr(&out));
    assert_eq!(stub.count(), 3);
    assert_eq!(ws.last()["cost"]["calls"], 1);
}

// ---- the openai kind against a real llama.cpp server ----

fn ask(
    url: &str,
    prompt: &str,
    schema: &Value,
    max_tokens: u32,
    deadline: Duration,
    cancel: &Cancel,
) -> (Result<wire::Reply, wire::CallError>, Duration, u64) {
    let messages = [("user", prompt.to_string())];
    let call = Call { messages: &messages, schema, max_tokens };
    let started = Instant::now();
    let mut seen = 0;
    let r =
        wire::call(Wire::OpenAi, &endpoint(url, max_tokens), &call, Instant::now() + deadline, cancel, &mut |t, _| {
            seen = t
        });
    (r, started.elapsed(), seen)
}

#[test]
fn openai_kind_streams_schema_constrained_answers_with_usage_from_llama_cpp() {
    let llama = Llama::start();
    let url = format!("{}/v1", llama.url);
    let schema = json!({"type": "object", "properties": {"span": {"type": "string", "enum": ["P2", "P4", "NONE"]}, "text": {"type": "string"}}, "required": ["span", "text"], "additionalProperties": false});
    let (r, _, seen) = ask(
        &url,
        "Pick a span and rewrite it. Answer in JSON.",
        &schema,
        64,
        Duration::from_secs(120),
        &Cancel::default(),
    );
    let reply = r.expect("an answer");
    assert!(seen > 0, "progress was reported while streaming");
    assert!(reply.input_tokens > 0 && reply.output_tokens > 0, "usage: {reply:?}");
    if reply.finish == Finish::Stop {
        let v: Value = serde_json::from_str(&reply.text).expect("a schema-constrained answer is JSON");
        assert!(["P2", "P4", "NONE"].contains(&v["span"].as_str().unwrap()), "{v}");
    } else {
        assert_eq!(reply.finish, Finish::Length, "{reply:?}");
    }
}

#[test]
fn openai_kind_times_out_and_cancels_within_its_deadline() {
    let llama = Llama::start();
    let url = format!("{}/v1", llama.url);
    // The schema makes the answer long whatever the model would rather say
    // (llama.cpp turns a `const` into its grammar): thousands of tokens,
    // seconds of generation, so the deadline and the cancel are what end it.
    let long = "the cat sat on the mat and looked at the garden. ".repeat(120);
    let free = json!({"type": "object", "properties": {"story": {"const": long}}, "required": ["story"]});
    let (r, took, _) =
        ask(&url, "Write a very long story about a cat.", &free, 3000, Duration::from_secs(2), &Cancel::default());
    let e = r.unwrap_err();
    assert_eq!(e.kind, CallErrorKind::Timeout, "{e:?}");
    assert!(took < Duration::from_secs(4), "the deadline holds: {took:?}");
    let cancel = Cancel::default();
    let c = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        c.set();
    });
    let (r, took, _) =
        ask(&url, "Write a very long story about a dog.", &free, 3000, Duration::from_secs(120), &cancel);
    assert_eq!(r.unwrap_err().kind, CallErrorKind::Cancelled);
    assert!(took < Duration::from_secs(3), "Ctrl-C stops the call: {took:?}");
}

#[test]
fn a_server_killed_mid_stream_is_a_failure_with_the_tokens_counted() {
    let mut llama = Llama::start();
    let url = format!("{}/v1", llama.url);
    let free = json!({"type": "object", "properties": {"story": {"type": "string"}}, "required": ["story"]});
    let messages = [("user", "Write a very long story about a horse.".to_string())];
    let call = Call { messages: &messages, schema: &free, max_tokens: 3000 };
    let pid = llama.child.id();
    let mut killed = false;
    let r = wire::call(
        Wire::OpenAi,
        &endpoint(&url, 3000),
        &call,
        Instant::now() + Duration::from_secs(120),
        &Cancel::default(),
        &mut |t, _| {
            if t >= 3 && !killed {
                killed = true;
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
        },
    );
    llama.kill();
    let e = r.expect_err("the stream broke");
    assert_eq!(e.kind, CallErrorKind::Unavailable, "{e:?}");
    assert!(e.output_tokens >= 3, "the tokens streamed before the kill count: {e:?}");
}

#[test]
fn a_step_with_the_openai_kind_against_llama_cpp_is_logged_with_its_cost() {
    let llama = Llama::start();
    let provider = format!(
        "[providers.local]\nkind = \"openai\"\nurl = \"{}/v1\"\nmodel = \"smollm2\"\nnum_ctx = 4096\nmax_output_tokens = 256\ntimeout_s = 300\n",
        llama.url
    );
    let ws = model_ws(&provider, "");
    let out = ws.run(&["--json", "step", "--provider", "local"]);
    let r = out_json(&out);
    let entry = ws.last();
    assert!(["pending", "noop", "rejected", "failed"].contains(&r["outcome"].as_str().unwrap()), "{r}");
    let cost = &entry["cost"];
    assert!(cost["calls"].as_u64().unwrap() >= 1, "{entry}");
    assert_eq!(cost["usd"], 0.0, "a loopback endpoint is free");
    if r["outcome"] != "failed" {
        assert!(cost["input_tokens"].as_u64().unwrap() > 0 && cost["output_tokens"].as_u64().unwrap() > 0, "{entry}");
    }
    // Whatever the small model said, ratchet built `old` itself.
    for v in entry["gate1"].as_array().unwrap() {
        assert_ne!(v["code"], "OLD_TEXT_NOT_FOUND", "{entry}");
        assert_ne!(v["code"], "OLD_TEXT_AMBIGUOUS", "{entry}");
    }
    assert_eq!(code(&ws.run(&["log", "verify"])), 0);
}

// ---- model critics in Gate 1 ----

#[test]
fn critics_attest_or_object_but_never_decide_alone() {
    let writer = Stub::start(Script::Fix);
    let judge = Stub::start(Script::Fix);
    let rails = format!(
        "{}\n[providers.judge]\nkind = \"ollama\"\nurl = \"{}\"\nmodel = \"judge\"\nnum_ctx = 4096\ntimeout_s = 20\n\n\
         [critics.strict]\nprovider = \"judge\"\nweight = 0.1\nmax_calls_per_day = 2\n",
        ollama_rails(&writer.url).replace("[providers.stub]", "[providers.writer]"),
        judge.url
    );
    let ws = Ws::looped(Setup {
        extra_rails: rails,
        intent: Some(DOCS_INTENT.into()),
        auto_merge: true,
        ..Setup::default()
    });
    let typo = |ws: &Ws, text: &str| {
        ws.write("docs/guide.md", text);
        ws.git(&["add", "-A"]);
        ws.git(&["commit", "-q", "-m", "a typo"]);
    };
    ws.git(&["rm", "-q", "README.md"]);
    typo(&ws, DOC);
    // The critic attests: auto-merged, its verdict bound and weighed.
    let r = out_json(&ws.run(&["--json", "step", "--provider", "writer"]));
    assert_eq!(r["outcome"], "merged", "{r}");
    let e = ws.last();
    let critic = e["gate1"].as_array().unwrap().iter().find(|v| v["by"] == "critic:strict").unwrap().clone();
    assert_eq!(
        (critic["verdict"].as_str(), critic["provider"].as_str(), critic["weight"].as_f64()),
        (Some("attest"), Some("judge"), Some(0.1))
    );
    assert_eq!(critic["cost"]["calls"], 1);
    let packet = e["proposal"]["packet"].as_str().unwrap();
    let asked = judge.requests.lock().unwrap()[0].clone();
    assert!(
        asked["messages"][1]["content"].as_str().unwrap().contains(packet),
        "the critic is shown the packet it binds to"
    );
    let base = seed(&e["signals"]);
    assert!((e["utility"].as_f64().unwrap() - ((0.9 * base + 0.1) * 1e12).round() / 1e12).abs() < 1e-9, "{e}");

    // The critic objects: not rejected, not auto-merged; it waits for a human.
    *judge.verdict.lock().unwrap() = "object".into();
    typo(&ws, &DOC.replace("The end.", "The end of teh guide."));
    let r = out_json(&ws.run(&["--json", "step", "--provider", "writer"]));
    assert_eq!(r["outcome"], "pending", "an objection alone cannot reject: {r}");
    let e = ws.last();
    let critic = e["gate1"].as_array().unwrap().iter().find(|v| v["by"] == "critic:strict").unwrap().clone();
    assert_eq!((critic["verdict"].as_str(), critic["code"].as_str()), (Some("object"), Some("CRITIC_OBJECTS")));

    // At its daily call cap the critic is not asked, so auto-merge does not happen.
    *judge.verdict.lock().unwrap() = "attest".into();
    typo(&ws, &DOC.replace("Ratchet reads", "Ratchet raeds teh"));
    let r = out_json(&ws.run(&["--json", "step", "--provider", "writer"]));
    assert_eq!(r["outcome"], "pending", "{r}");
    let critic = ws.last()["gate1"].as_array().unwrap().iter().find(|v| v["by"] == "critic:strict").unwrap().clone();
    assert_eq!(critic["verdict"], "skipped");
    assert!(critic["reason"].as_str().unwrap().contains("critic call cap reached: 2 of 2"), "{critic}");
    assert_eq!(judge.count(), 2, "no third call");

    // A critic never judges its own provider's proposal.
    let r = out_json(&ws.run(&["--json", "step", "--provider", "judge"]));
    assert!(ws.last()["gate1"].as_array().unwrap().iter().all(|v| v["by"] != "critic:strict"), "{r}");
    assert_eq!(code(&ws.run(&["log", "verify"])), 0);
}

fn seed(signals: &Value) -> f64 {
    let w = [
        ("ci_pass", 0.30),
        ("path_ok", 0.15),
        ("diff_ratio", 0.15),
        ("atomic_ok", 0.10),
        ("left_next_steps", 0.10),
        ("human_score", 0.20),
    ];
    w.iter()
        .map(|(k, w)| {
            w * if *k == "diff_ratio" { 1.0 - signals[k].as_f64().unwrap() } else { signals[k].as_f64().unwrap() }
        })
        .sum()
}

#[test]
fn a_tiny_agent_backed_by_the_local_model_edits_through_the_agent_kind() {
    // A real file-editing agent (tests/llama/tiny_agent.py) asks the real
    // llama.cpp server for a sentence and appends it in its scratch place;
    // ratchet turns that edit into one proposal. The model's words are not
    // asserted, only what ratchet did with them.
    let llama = Llama::start();
    let agent = llama_dir().join("tiny_agent.py");
    let ws = Ws::looped(Setup {
        auto_merge: true,
        auto_merge_lines: 10,
        extra_rails: format!(
            "\n[providers.tiny]\nkind = \"agent\"\ncommand = [\"python3\", {:?}]\nnetwork = true\nenv = [\"RATCHET_LLAMA_URL\"]\ntimeout_s = 300\n",
            agent.display().to_string()
        ),
        ..Setup::default()
    });
    let guide = ws.read("docs/guide.md");
    let src = ws.read("src/lib.rs");
    let base = ws.head();
    let out = ws.run_env(&[("RATCHET_LLAMA_URL", &llama.url)], &["--json", "step", "--provider", "tiny"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let e = ws.last();
    assert_eq!(e["pick"]["provider"], "tiny", "{e}");
    assert_eq!(e["sandbox"]["sandbox"], "enforced", "{e}");
    assert_eq!(e["sandbox"]["network"], true, "the agent asked for the network: {e}");
    assert!(e["proposal"]["rationale"].as_str().unwrap_or("").contains("from the local model"), "{e}");
    assert_eq!(e["proposal"]["op"], "append", "{e}");
    assert_eq!(e["proposal"]["path"], "docs/guide.md", "{e}");
    match e["outcome"].as_str() {
        Some("merged") => {
            let now = ws.read("docs/guide.md");
            assert!(now.starts_with(&guide) && now.len() > guide.len(), "the sentence was appended");
            let changed = ws.git(&["diff", "--name-only", &base, "HEAD"]);
            assert_eq!(changed.trim(), "docs/guide.md", "the commit holds exactly the proposal's path");
        }
        // Gate 1 may object to what a 135M model writes; then nothing moved.
        Some("rejected") => assert_eq!(ws.read("docs/guide.md"), guide),
        other => panic!("unexpected outcome {other:?}: {e}"),
    }
    assert_eq!(ws.read("src/lib.rs"), src, "nothing else changed");
    ws.assert_log_verifies();
}

//! The agents API end to end: the real `ratchet serve` in a workspace, bots
//! that sign with their own Ed25519 keys over real HTTP, and a human at a
//! pseudo-terminal for Gate 2. The clock is pinned (RATCHET_NOW), and the
//! bots sign with the pinned time.

use std::process::Child;

use ratchet::agents::json::{KeyOrder, canonical, parse};
use ratchet::agents::signed::{Identity, Target, message};
use serde_json::{Value, json};

use crate::support::workspace::*;

fn now_ms() -> i64 {
    chrono::DateTime::parse_from_rfc3339(NOW).unwrap().timestamp_millis()
}

struct Api {
    ws: Ws,
    child: Child,
    base: String,
    http: reqwest::blocking::Client,
    n: std::sync::atomic::AtomicU64,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PUBLIC_KEY: &str = "public-read-key-0123456789";

/// A workspace whose rails have `quorum` (TOML lines for [gate.quorum]) and
/// `agents` (TOML lines for [agents]), with `ratchet serve` running in it.
fn api(quorum: &str, agents: &str) -> Api {
    api_rails(quorum, agents, |r| r)
}

fn api_rails(quorum: &str, agents: &str, edit: impl Fn(String) -> String) -> Api {
    let ws = Ws::new();
    ws.write("docs/guide.md", "# Guide\n\nline one\nline two\n");
    ws.git(&["add", "-A"]);
    ws.git(&["commit", "-q", "-m", "docs"]);
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/rails.toml")).unwrap();
    let rails = template
        .replace("command = \"cargo test\"", "command = \"true\"")
        .replace("min_attestations = 0\nmax_objections = 0\n", quorum)
        + "\n[agents]\n"
        + agents;
    ws.write("config/rails.toml", &edit(rails));
    let out = ws.run(&["init"]);
    assert!(out.status.success(), "init: {}", stderr(&out));
    ws.git(&["add", "-A"]);
    ws.git(&["commit", "-q", "-m", "ratchet init"]);
    let (child, addr) = ws.serve(&[("PUBLIC_API_KEYS", PUBLIC_KEY)]);
    Api { ws, child, base: format!("http://{addr}"), http: reqwest::blocking::Client::new(), n: 0.into() }
}

struct Sig<'a> {
    aud: &'a str,
    method: &'a str,
    path: Option<&'a str>,
    body: Option<&'a str>,
    ts: i64,
    nonce: Option<String>,
}

impl Default for Sig<'_> {
    fn default() -> Self {
        Sig { aud: "ratchet", method: "POST", path: None, body: None, ts: now_ms(), nonce: None }
    }
}

type Res = (u16, reqwest::header::HeaderMap, Value);

impl Api {
    fn nonce(&self) -> String {
        let n = self.n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        format!("nonce-{n:08}")
    }

    /// Signs `body` for `path` (or what `sig` overrides) and sends it.
    fn send(&self, bot: &Identity, path: &str, body: &str, sig: Sig<'_>, extra: &[(&str, &str)]) -> Res {
        let signed_body = canonical(&parse(sig.body.unwrap_or(body).as_bytes()).unwrap(), KeyOrder::Code);
        let nonce = sig.nonce.clone().unwrap_or_else(|| self.nonce());
        let t = Target { audience: sig.aud, method: sig.method, path: sig.path.unwrap_or(path) };
        let ts = sig.ts.to_string();
        let signature = base64_url(&bot.sign(message(&t, &ts, &nonce, &signed_body).as_bytes()));
        let mut headers = vec![
            ("content-type", "application/json".to_string()),
            ("x-agent-timestamp", ts),
            ("x-agent-nonce", nonce),
            ("x-agent-signature", signature),
        ];
        for (k, v) in extra {
            headers.push((k, v.to_string()));
        }
        self.raw("POST", path, body, &headers)
    }

    fn raw(&self, method: &str, path: &str, body: &str, headers: &[(&str, String)]) -> Res {
        let mut req = self.http.request(method.parse().unwrap(), format!("{}{path}", self.base)).body(body.to_string());
        let mut map = reqwest::header::HeaderMap::new();
        for (k, v) in headers {
            map.append(reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        req = req.headers(map);
        let res = req.send().unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().unwrap();
        (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn get(&self, path: &str, key: Option<&str>) -> Res {
        let mut h = vec![];
        if let Some(k) = key {
            h.push(("x-api-key", k.to_string()));
        }
        self.raw("GET", path, "", &h)
    }

    fn write(&self, bot: &Identity, path: &str, body: Value, idem: Option<&str>) -> Res {
        let extra: Vec<(&str, &str)> = idem.map(|k| vec![("idempotency-key", k)]).unwrap_or_default();
        self.send(bot, path, &body.to_string(), Sig::default(), &extra)
    }

    fn join(&self) -> Identity {
        let bot = Identity::generate().unwrap();
        let (s, _, v) = self.write(&bot, "/v1/agents/join", json!({"botId": bot.bot_id()}), None);
        assert_eq!(s, 201, "{v}");
        bot
    }

    fn head(&self) -> String {
        self.ws.head()
    }

    fn candidate(&self, bot: &Identity, line: &str, key: &str) -> Res {
        let body = json!({"botId": bot.bot_id(), "verified": false, "base": self.head(), "rationale": "add a line",
            "patch": {"op": "append", "path": "docs/guide.md", "content": format!("{line}\n")}, "next_steps": ["more"],
            "metadata": {"tool": "test", "Zeta": 1, "alpha": [1.5, 2]}});
        self.write(bot, "/v1/candidates", body, Some(key))
    }

    fn attest(&self, bot: &Identity, story: &str, packet: &str) -> Res {
        let body =
            json!({"botId": bot.bot_id(), "storyId": story, "packetHash": packet, "verified": false, "role": "RISK"});
        self.write(bot, "/v1/agents/attestations", body, None)
    }
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn code(r: &Res) -> (u16, &str) {
    (r.0, r.2["code"].as_str().unwrap_or(""))
}

#[test]
fn bots_reach_quorum_and_only_a_human_merges() {
    let api = api("min_attestations = 2\nmax_objections = 0\n", "");
    let (author, b, c) = (api.join(), api.join(), api.join());
    let r = api.candidate(&author, "line three", "k-1");
    assert_eq!(r.0, 202, "{}", r.2);
    assert_eq!(r.2["status"], "PENDING");
    let (story, packet) =
        (r.2["storyId"].as_str().unwrap().to_string(), r.2["packetHash"].as_str().unwrap().to_string());
    // Reads: the machine room is public, status and evidence take a read key.
    let (s, _, room) = api.get(&format!("/v1/stories/{story}/machine-room"), None);
    assert_eq!((s, room["currentPacketHash"].as_str()), (200, Some(packet.as_str())));
    assert_eq!(code(&api.get(&format!("/v1/candidates/{packet}/status"), None)), (401, "PUBLIC_API_KEY_REQUIRED"));
    let (s, _, st) = api.get(&format!("/v1/candidates/{packet}/status"), Some(PUBLIC_KEY));
    assert_eq!((s, st["status"].as_str()), (200, Some("PENDING")), "{st}");
    let (s, _, ev) = api.get(&format!("/v1/candidates/{packet}/evidence"), Some(PUBLIC_KEY));
    assert_eq!((s, &ev["metadata"]["Zeta"]), (200, &json!(1)), "{ev}");
    // One attestation: quorum is not met, and the human cannot approve yet.
    assert_eq!(api.attest(&b, &story, &packet).0, 202);
    let mut p = api.ws.pty(&["approve", &story]);
    p.exp_string("QUORUM_NOT_MET").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(api.ws.read("docs/guide.md"), "# Guide\n\nline one\nline two\n");
    // The second attestation meets quorum; still nothing merges without the human.
    assert_eq!(api.attest(&c, &story, &packet).0, 202);
    let (_, _, room) = api.get(&format!("/v1/stories/{story}/machine-room"), None);
    assert_eq!(room["gate1"]["quorum"]["met"], true, "{room}");
    assert_eq!(room["status"], "PENDING");
    assert_eq!(api.ws.read("docs/guide.md"), "# Guide\n\nline one\nline two\n");
    let status = api.ws.run(&["status"]);
    assert!(stdout(&status).contains("quorum met: 2 attestation(s)"), "{}", stdout(&status));
    // The human approves at a terminal: the merge lands.
    let mut p = api.ws.pty(&["approve", &story]);
    p.exp_string("[q]uit?").unwrap();
    p.send_line("a").unwrap();
    p.exp_string("score in").unwrap();
    p.send_line("").unwrap();
    p.exp_string("merged").unwrap();
    p.exp_eof().unwrap();
    assert!(api.ws.read("docs/guide.md").ends_with("line three\n"));
    let (_, _, room) = api.get(&format!("/v1/stories/{story}/machine-room"), None);
    assert_eq!(room["status"], "MERGED");
    assert_eq!(code(&api.attest(&b, &story, &packet)), (409, "STORY_CLOSED"));
    let out = api.ws.run(&["log", "verify"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("signed writes re-verified"), "{}", stdout(&out));
    let kinds: Vec<String> = api.ws.entries().iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect();
    assert!(kinds.iter().filter(|k| *k == "agents").count() >= 2, "{kinds:?}");
}

#[test]
fn every_error_of_the_error_map_with_its_status() {
    let api = api("min_attestations = 1\nmax_objections = 0\n", "");
    let (author, other) = (api.join(), api.join());
    let r = api.candidate(&author, "x", "k-1");
    let (story, packet) =
        (r.2["storyId"].as_str().unwrap().to_string(), r.2["packetHash"].as_str().unwrap().to_string());
    let att = |bot: &Identity| {
        json!({"botId": bot.bot_id(), "storyId": story, "packetHash": packet, "verified": false, "role": "RISK"})
            .to_string()
    };
    let path = "/v1/agents/attestations";
    // Missing and malformed headers, with details.
    let r = api.raw("POST", path, &att(&other), &[("content-type", "application/json".into())]);
    assert_eq!(code(&r), (401, "AGENT_SIGNED_HEADERS_MISSING"));
    let r = api.send(&other, path, &att(&other), Sig { nonce: Some("short".into()), ..Sig::default() }, &[]);
    assert_eq!(code(&r), (401, "AGENT_SIGNED_HEADERS_INVALID"));
    assert_eq!(r.2["details"][0]["header"], "x-agent-nonce", "{}", r.2);
    assert_eq!(r.2["details"][0]["code"], "INVALID_LENGTH");
    assert!(r.2["requestId"].is_string() && r.1.contains_key("x-request-id"));
    // A duplicate header.
    let r = api.send(&other, path, &att(&other), Sig::default(), &[("x-agent-nonce", "another-nonce-1")]);
    assert_eq!(code(&r), (401, "AGENT_SIGNED_HEADERS_INVALID"));
    assert_eq!(r.2["details"][0]["code"], "DUPLICATE");
    // Drift: ±120 s is inside, ±121 s outside.
    for (d, want) in [(121_000, 401), (-121_000, 401)] {
        let r = api.send(&other, path, &att(&other), Sig { ts: now_ms() + d, ..Sig::default() }, &[]);
        assert_eq!(code(&r), (want, "AGENT_TIMESTAMP_DRIFT_EXCEEDED"), "{d}");
    }
    // A signature over another path, method, audience or body.
    for sig in [
        Sig { path: Some("/v1/agents/objections"), ..Sig::default() },
        Sig { method: "PUT", ..Sig::default() },
        Sig { aud: "tmr", ..Sig::default() },
        Sig { body: Some(r#"{"botId":"x"}"#), ..Sig::default() },
    ] {
        assert_eq!(code(&api.send(&other, path, &att(&other), sig, &[])), (401, "AGENT_SIGNATURE_INVALID"));
    }
    // An unregistered bot; a bot attesting to its own candidate.
    let stranger = Identity::generate().unwrap();
    assert_eq!(code(&api.send(&stranger, path, &att(&stranger), Sig::default(), &[])), (401, "AGENT_BOT_UNREGISTERED"));
    assert_eq!(
        code(&api.send(&author, path, &att(&author), Sig::default(), &[])),
        (401, "AGENT_BOT_ACTION_NOT_ALLOWED")
    );
    // A replayed nonce.
    let nonce = Some("replayed-nonce-1".to_string());
    assert_eq!(api.send(&other, path, &att(&other), Sig { nonce: nonce.clone(), ..Sig::default() }, &[]).0, 202);
    assert_eq!(
        code(&api.send(&other, path, &att(&other), Sig { nonce, ..Sig::default() }, &[])),
        (409, "AGENT_NONCE_REPLAY")
    );
    // A stale packet hash.
    let stale = att(&other).replace(&packet, &"0".repeat(64));
    let r = api.send(&other, path, &stale, Sig::default(), &[]);
    assert_eq!(code(&r), (409, "CURRENT_PACKET_MISMATCH"));
    assert_eq!(r.2["details"]["currentPacketHash"], packet.as_str());
    // Duplicate keys, and an integer JavaScript cannot hold.
    let dup = format!(r#"{{"botId":"{}","botId":"{}"}}"#, other.bot_id(), other.bot_id());
    assert_eq!(
        code(&api.raw("POST", "/v1/agents/join", &dup, &signed(&api, &other, "/v1/agents/join"))),
        (400, "INVALID_JSON")
    );
    let big = format!(r#"{{"botId":"{}","n":9007199254740993}}"#, other.bot_id());
    assert_eq!(
        code(&api.raw("POST", "/v1/agents/join", &big, &signed(&api, &other, "/v1/agents/join"))),
        (400, "INVALID_JSON")
    );
    // Idempotency: a reused key with another payload; a stale base.
    assert_eq!(code(&api.candidate(&author, "y", "k-1")), (409, "IDEMPOTENCY_KEY_CONFLICT"));
    let mut body = json!({"botId": author.bot_id(), "verified": false, "base": "0".repeat(40), "rationale": "r",
        "patch": {"op": "append", "path": "docs/guide.md", "content": "z\n"}, "next_steps": []});
    assert_eq!(code(&api.write(&author, "/v1/candidates", body.clone(), Some("k-2"))), (409, "CANDIDATE_BASE_STALE"));
    body["base"] = api.head().into();
    assert_eq!(code(&api.write(&author, "/v1/candidates", body.clone(), None)), (400, "IDEMPOTENCY_KEY_REQUIRED"));
    // verified=true without a vouch on record.
    body["verified"] = true.into();
    assert_eq!(code(&api.write(&author, "/v1/candidates", body, Some("k-3"))), (403, "AGENTKIT_VERIFICATION_FAILED"));
    // Reads and the operations-only route.
    assert_eq!(
        code(&api.get(&format!("/v1/candidates/{packet}/evidence"), Some("lkp_not-a-read-key"))),
        (401, "PUBLIC_API_KEY_REQUIRED")
    );
    assert_eq!(code(&api.get("/v1/stories/s999/machine-room", None)), (404, "STORY_NOT_FOUND"));
    assert_eq!(
        code(&api.raw("POST", &format!("/v1/publish/{packet}/compute"), "", &[])),
        (401, "OPERATIONS_ACCESS_REQUIRED")
    );
    assert_eq!(
        code(&api.raw("POST", path, &att(&other), &[("content-type", "text/plain".into())])),
        (415, "UNSUPPORTED_MEDIA_TYPE")
    );
    // x-request-id is echoed.
    let r = api.raw("GET", "/v1/stories/s999/machine-room", "", &[("x-request-id", "my-request-7".into())]);
    assert_eq!(
        (r.1["x-request-id"].to_str().unwrap(), r.2["requestId"].as_str()),
        ("my-request-7", Some("my-request-7"))
    );
}

fn signed(api: &Api, bot: &Identity, path: &str) -> Vec<(&'static str, String)> {
    // Headers with a signature over a harmless body: the body check comes first.
    let nonce = api.nonce();
    let ts = now_ms().to_string();
    let msg = message(&Target { audience: "ratchet", method: "POST", path }, &ts, &nonce, "{}");
    vec![
        ("content-type", "application/json".into()),
        ("x-agent-timestamp", ts),
        ("x-agent-nonce", nonce),
        ("x-agent-signature", base64_url(&bot.sign(msg.as_bytes()))),
    ]
}

#[test]
fn trust_rules_self_serve_rate_limits_and_vouches() {
    let operator = Identity::generate().unwrap();
    let api = api(
        "min_attestations = 1\nmax_objections = 0\nrequire_verified = true\n",
        &format!("writes_per_minute = 3\noperator_keys = [\"{}\"]\n", operator.bot_id()),
    );
    let bot = api.join();
    let r = api.candidate(&bot, "x", "k-1");
    assert_eq!(code(&r), (403, "AGENT_VERIFIED_REQUIRED"));
    // The operator vouches; the bot verifies with the statement in `agentkit`.
    let statement = ratchet::agents::vouch::make(&operator, "ratchet", &bot.bot_id(), "alice", NOW);
    let body = json!({"botId": bot.bot_id()}).to_string();
    let r = api.send(&bot, "/v1/agents/verify", &body, Sig::default(), &[("agentkit", &statement)]);
    assert_eq!((r.0, r.2["trustTier"].as_str()), (200, Some("VERIFIED")), "{}", r.2);
    // The fourth write within the minute (join, candidate, verify, candidate) is over the limit of 3.
    let r = api.candidate(&bot, "x", "k-1");
    assert_eq!(code(&r), (429, "RATE_LIMITED"));
    assert!(r.2["retryAfterSeconds"].as_u64().unwrap() >= 1 && r.1.contains_key("retry-after"));
    drop(api);
    let closed = self::api("min_attestations = 0\nmax_objections = 0\n", "self_serve = false\n");
    let b = Identity::generate().unwrap();
    let r = closed.write(&b, "/v1/agents/join", json!({"botId": b.bot_id()}), None);
    assert_eq!(code(&r), (403, "SELF_SERVE_AGENTS_DISABLED"));
}

#[test]
fn idempotent_replays_races_and_a_crash_between_the_log_and_the_store() {
    let api = api("min_attestations = 1\nmax_objections = 0\n", "writes_per_minute = 1000\n");
    let bot = api.join();
    let first = api.candidate(&bot, "x", "k-1");
    assert_eq!(first.0, 202);
    let again = api.candidate(&bot, "x", "k-1");
    assert_eq!(again.0, 202);
    assert_eq!(again.1["idempotent-replayed"], "true");
    assert_eq!(again.2, first.2, "replayed byte for byte");
    // Two identical requests at once: one story, whatever the interleaving.
    let bodies: Vec<Res> = std::thread::scope(|s| {
        let h: Vec<_> = (0..2).map(|_| s.spawn(|| api.candidate(&bot, "y", "k-race"))).collect();
        h.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok: Vec<&Res> = bodies.iter().filter(|r| r.0 == 202).collect();
    assert!(!ok.is_empty(), "{:?}", bodies.iter().map(|r| &r.2).collect::<Vec<_>>());
    for r in &bodies {
        assert!(r.0 == 202 || code(r) == (409, "IDEMPOTENCY_KEY_CONFLICT"), "{}", r.2);
    }
    assert!(ok.windows(2).all(|w| w[0].2 == w[1].2));
    let pending = |ws: &Ws| ws.entries().iter().filter(|e| e["kind"] == "step").count();
    assert_eq!(pending(&api.ws), 2);
    // An accepted attestation, to replay after the restarts.
    let other = api.join();
    let story = first.2["storyId"].as_str().unwrap();
    let att = json!({"botId": other.bot_id(), "storyId": story, "packetHash": first.2["packetHash"], "verified": false, "role": "RISK"})
        .to_string();
    let fixed = || Sig { nonce: Some("nonce-kept-across-restarts".into()), ..Sig::default() };
    assert_eq!(api.send(&other, "/v1/agents/attestations", &att, fixed(), &[]).0, 202);
    // A crash after the step is logged but before the write is stored.
    let mut a = api;
    let _ = a.child.kill();
    let _ = a.child.wait();
    let api = &mut a;
    let (child, addr) = api.ws.serve(&[("RATCHET_TEST_FAULT", "agents_candidate_stored")]);
    api.child = child;
    api.base = format!("http://{addr}");
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| api.candidate(&bot, "z", "k-crash")));
    assert!(r.is_err(), "the server died mid-request");
    let _ = api.child.wait();
    assert_eq!(pending(&api.ws), 3, "the step reached the log");
    let (child, addr) = api.ws.serve(&[]);
    api.child = child;
    api.base = format!("http://{addr}");
    let retry = api.candidate(&bot, "z", "k-crash");
    assert_eq!(retry.0, 202, "{}", retry.2);
    assert_eq!(pending(&api.ws), 3, "the retry found the logged step instead of proposing again");
    // Nonces are persisted: a restart opens no replay window.
    assert_eq!(code(&api.send(&other, "/v1/agents/attestations", &att, fixed(), &[])), (409, "AGENT_NONCE_REPLAY"));
    let out = api.ws.run(&["log", "verify"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn revisions_are_voted_in_and_old_attestations_stop_counting() {
    let api = api("min_attestations = 1\nmax_objections = 0\n", "writes_per_minute = 1000\n");
    let (author, reviser, voter) = (api.join(), api.join(), api.join());
    let r = api.candidate(&author, "draft", "k-1");
    let (story, packet) =
        (r.2["storyId"].as_str().unwrap().to_string(), r.2["packetHash"].as_str().unwrap().to_string());
    assert_eq!(api.attest(&voter, &story, &packet).0, 202);
    let body = json!({"botId": reviser.bot_id(), "basePacketHash": packet, "verified": false, "reason": "better words",
        "patch": {"op": "append", "path": "docs/guide.md", "content": "final\n"}});
    let r = api.write(&reviser, &format!("/v1/stories/{story}/revision-proposals"), body.clone(), Some("rev-1"));
    assert_eq!(r.0, 202, "{}", r.2);
    let (rev, new_packet) =
        (r.2["proposalId"].as_str().unwrap().to_string(), r.2["packetHash"].as_str().unwrap().to_string());
    // A revision Gate 1 refuses is refused at once.
    let mut bad = body.clone();
    bad["patch"]["path"] = "config/rails.toml".into();
    assert_eq!(
        code(&api.write(&reviser, &format!("/v1/stories/{story}/revision-proposals"), bad, Some("rev-2"))),
        (422, "GATE1_OBJECTION")
    );
    // The proposer may not vote on its own revision; another bot carries it.
    let vote = |bot: &Identity, key: &str| {
        api.write(
            bot,
            &format!("/v1/stories/{story}/revision-proposals/{rev}/votes"),
            json!({"botId": bot.bot_id(), "role": "WRITER", "vote": "YES"}),
            Some(key),
        )
    };
    assert_eq!(code(&vote(&reviser, "v-1")), (401, "AGENT_BOT_ACTION_NOT_ALLOWED"));
    assert_eq!(vote(&voter, "v-2").0, 202);
    let (_, _, room) = api.get(&format!("/v1/stories/{story}/machine-room"), None);
    assert_eq!(room["currentPacketHash"], new_packet.as_str(), "{room}");
    assert_eq!(room["revisions"][0]["state"], "ADOPTED");
    assert_eq!(room["gate1"]["quorum"]["met"], false, "the attestation was on the old packet");
    assert_eq!(code(&api.attest(&voter, &story, &packet)), (409, "CURRENT_PACKET_MISMATCH"));
    assert_eq!(api.attest(&voter, &story, &new_packet).0, 202);
    let mut p = api.ws.pty(&["approve", &story]);
    p.exp_string("[q]uit?").unwrap();
    p.send_line("a").unwrap();
    p.exp_string("score in").unwrap();
    p.send_line("").unwrap();
    p.exp_string("merged").unwrap();
    p.exp_eof().unwrap();
    assert!(api.ws.read("docs/guide.md").ends_with("final\n"));
    assert!(api.ws.run(&["log", "verify"]).status.success());
}

#[test]
fn a_deleted_edited_or_inserted_ledger_record_fails_log_verify() {
    let api = api("min_attestations = 1\nmax_objections = 0\n", "writes_per_minute = 1000\n");
    let (author, b) = (api.join(), api.join());
    let r = api.candidate(&author, "x", "k-1");
    let (story, packet) =
        (r.2["storyId"].as_str().unwrap().to_string(), r.2["packetHash"].as_str().unwrap().to_string());
    assert_eq!(api.attest(&b, &story, &packet).0, 202);
    let mut p = api.ws.pty(&["approve", &story]);
    p.exp_string("[q]uit?").unwrap();
    p.send_line("a").unwrap();
    p.exp_string("score in").unwrap();
    p.send_line("").unwrap();
    p.exp_string("merged").unwrap();
    p.exp_eof().unwrap();
    assert!(api.ws.run(&["log", "verify"]).status.success());
    let mut api = api;
    let _ = api.child.kill();
    let _ = api.child.wait();
    let db = api.ws.path(".ratchet/agents.db");
    rusqlite::Connection::open(&db).unwrap().execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    let copy = api.ws.path(".ratchet/agents.db.clean");
    std::fs::copy(&db, &copy).unwrap();
    for (what, sql) in [
        ("deleted", "DELETE FROM writes WHERE kind = 'attestation'"),
        ("edited", "UPDATE writes SET body = replace(body, 'RISK', 'WRITER') WHERE kind = 'attestation'"),
        ("edited outside the signature", "UPDATE writes SET story = 's99' WHERE kind = 'attestation'"),
        // The chain still links without its newest record: only the log's
        // anchor (writes and chain head) tells.
        ("cut at the end", "DELETE FROM writes WHERE seq = (SELECT max(seq) FROM writes)"),
        (
            "inserted",
            "INSERT INTO writes SELECT seq + 100, kind, bot_id, story, target, packet, audience, method, path, timestamp, nonce || 'x', body, key_order, signature, digest, chain, received_ms FROM writes WHERE seq = 1",
        ),
    ] {
        std::fs::copy(&copy, &db).unwrap();
        let _ = std::fs::remove_file(api.ws.path(".ratchet/agents.db-wal"));
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(sql).unwrap();
        drop(c);
        let out = api.ws.run(&["log", "verify"]);
        assert_eq!(crate::support::workspace::code(&out), 1, "{what}: {}", stdout(&out));
        assert!(stderr(&out).contains("AGENTS_LEDGER_TAMPERED"), "{what}: {}", stderr(&out));
    }
}

/// The Node client (node:crypto, signing as the public SDK does, with
/// `@machinesroom/contracts` parsing every error) drives the first smoke,
/// a revision and a vote, and the errors. Installed by
/// `.ci/install-agents-clients`; this test fails when it is missing.
#[test]
fn the_node_client_drives_the_first_smoke_and_parses_every_error_with_the_contracts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agents");
    assert!(
        dir.join("node_modules/@machinesroom/contracts/package.json").is_file(),
        "the agents Node client is not installed; run: bash .ci/install-agents-clients (or cd tests/agents && npm ci)"
    );
    let api = api("min_attestations = 1\nmax_objections = 1\n", "writes_per_minute = 1000\n");
    let out = std::process::Command::new("node")
        .arg("smoke.mjs")
        .arg(&api.base)
        .arg(now_ms().to_string())
        .arg(PUBLIC_KEY)
        .current_dir(&dir)
        .output()
        .expect("node runs (install Node 20.19 or later)");
    assert!(out.status.success(), "node client failed:\n{}\n{}", stdout(&out), stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failures"], 0);
    assert_eq!(report["checked"]["AGENT_NONCE_REPLAY"], 409);
    assert!(api.ws.run(&["log", "verify"]).status.success());
}

#[test]
fn auto_merge_takes_a_remote_candidate_only_when_the_rails_name_remote_and_quorum_holds() {
    for remote in [false, true] {
        let api = api_rails("min_attestations = 1\nmax_objections = 0\n", "writes_per_minute = 1000\n", |r| {
            let on = if remote { "enabled = true\nremote = true\n" } else { "enabled = true\n" };
            r.replace("enabled = false\npaths = [\"docs/**\"]", &format!("{on}paths = [\"docs/**\"]"))
        });
        let (author, b) = (api.join(), api.join());
        let r = api.candidate(&author, "auto", "k-1");
        assert_eq!(r.2["status"], "PENDING", "auto-merge never applies before quorum: {}", r.2);
        let (story, packet) =
            (r.2["storyId"].as_str().unwrap().to_string(), r.2["packetHash"].as_str().unwrap().to_string());
        assert_eq!(api.attest(&b, &story, &packet).0, 202);
        let mut status = String::new();
        for _ in 0..50 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            status =
                api.get(&format!("/v1/stories/{story}/machine-room"), None).2["status"].as_str().unwrap().to_string();
            if status != "PENDING" {
                break;
            }
        }
        if remote {
            assert_eq!(status, "MERGED");
            let merged = api.ws.entries().into_iter().rev().find(|e| e["id"] == story.as_str()).unwrap();
            assert_eq!(merged["gate2"]["by"], "auto");
            assert!(api.ws.run(&["log", "verify"]).status.success());
        } else {
            assert_eq!(status, "PENDING", "without remote = true a bot's candidate waits for a human");
            assert_eq!(api.ws.read("docs/guide.md"), "# Guide\n\nline one\nline two\n");
        }
    }
}

/// `/openapi.yaml` is `/openapi.json` as YAML: PyYAML reads it back to the
/// same value (python3 with PyYAML is needed; the test fails without it).
#[test]
fn openapi_yaml_is_the_json_document() {
    let api = api("min_attestations = 0\nmax_objections = 0\n", "");
    let (s, h, json) = api.get("/openapi.json", None);
    assert_eq!(s, 200);
    assert!(json["paths"]["/v1/candidates"]["post"]["responses"]["202"].is_object());
    let yaml = api.http.get(format!("{}/openapi.yaml", api.base)).send().unwrap();
    assert_eq!(yaml.headers()["content-type"], "application/yaml");
    let text = yaml.text().unwrap();
    let _ = h;
    let mut py = std::process::Command::new("python3")
        .args(["-c", "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (with PyYAML: pip install pyyaml)");
    std::io::Write::write_all(&mut py.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success(), "PyYAML could not read /openapi.yaml: {}", String::from_utf8_lossy(&out.stderr));
    let back: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(back, json);
}

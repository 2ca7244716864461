//! A bot's private key at rest: `ratchet agent keygen` encrypts it under a
//! passphrase (asked twice at a terminal with the echo off, or
//! RATCHET_AGENT_PASSPHRASE), every `ratchet agent` command opens it, and
//! neither the file nor any output holds the key. Played by an attacker:
//! a wrong passphrase, a flipped ciphertext bit, an edited header, a
//! weakened cost, an old plaintext file.

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ratchet::agents::keyfile::{self, Parsed};
use ratchet::agents::signed::Identity;

use crate::support::workspace::*;

const PASS: &str = "a long passphrase for the bot";

fn with_pass(ws: &Ws, pass: &str, args: &[&str]) -> Output {
    ws.run_env(&[("RATCHET_AGENT_PASSPHRASE", pass)], args)
}

/// The key inside `path`, opened with the library (what the test greps for).
fn opened(path: &std::path::Path, pass: &str) -> Identity {
    let text = std::fs::read_to_string(path).unwrap();
    let Parsed::Sealed(s) = keyfile::parse("k", &text).unwrap() else { panic!("not sealed: {text}") };
    keyfile::open("k", &s, pass.as_bytes()).unwrap()
}

/// Every form the key's secret could leak in.
fn secret_forms(id: &Identity) -> Vec<Vec<u8>> {
    // PKCS#8 for Ed25519: ... OCTET STRING { OCTET STRING (32) seed } [, public key].
    let der = id.to_pkcs8_der();
    assert_eq!(der[12..16], [0x04, 0x22, 0x04, 0x20], "the PKCS#8 layout");
    let seed = &der[16..48];
    vec![
        id.to_pkcs8_base64().into_bytes(),
        STANDARD.encode(seed).into_bytes(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(seed).into_bytes(),
        seed.iter().map(|b| format!("{b:02x}")).collect::<String>().into_bytes(),
        seed.to_vec(),
    ]
}

fn assert_no_secret(id: &Identity, what: &str, bytes: &[u8]) {
    for form in secret_forms(id) {
        assert!(!bytes.windows(form.len()).any(|w| w == form.as_slice()), "{what} holds the private key");
    }
}

fn failed_with(out: &Output, code_: &str) -> String {
    let err = stderr(out);
    assert_eq!(code(out), 1, "{err}");
    assert!(err.contains(code_), "expected {code_}: {err}");
    assert!(err.contains("hint:"), "no hint: {err}");
    err
}

#[test]
fn keygen_encrypts_the_key_and_no_file_output_or_request_holds_it() {
    let ws = Ws::init();
    let (mut server, addr) = ws.serve(&[]);
    let url = format!("http://{addr}");
    let out = with_pass(&ws, PASS, &["agent", "--key", "bot.key", "keygen"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["encrypted"], true);
    assert!(v.get("privateKeyPkcs8Base64").is_none());
    let path = ws.path("bot.key");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    // A new folder for a key is the user's alone.
    assert_eq!(code(&with_pass(&ws, PASS, &["agent", "--key", "keys/deep/bot.key", "keygen"])), 0);
    assert_eq!(std::fs::metadata(ws.path("keys/deep")).unwrap().permissions().mode() & 0o777, 0o700);
    let text = std::fs::read_to_string(&path).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(file["kdf"]["alg"], "argon2id");
    assert_eq!((file["kdf"]["mKiB"].as_u64(), file["kdf"]["t"].as_u64()), (Some(65536), Some(3)));
    assert_eq!(file["aead"]["alg"], "xchacha20poly1305");
    assert_eq!(file["botId"], v["botId"]);
    let id = opened(&path, PASS);
    assert_eq!(id.bot_id(), v["botId"].as_str().unwrap());
    assert_no_secret(&id, "the key file", text.as_bytes());
    assert_no_secret(&id, "keygen's stdout", &out.stdout);
    assert_no_secret(&id, "keygen's stderr", &out.stderr);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(PASS) && !stderr(&out).contains(PASS));

    // The key opens with the passphrase from the environment: join signs with it.
    let joined = with_pass(&ws, PASS, &["agent", "--key", "bot.key", "--server", &url, "join"]);
    assert_eq!(code(&joined), 0, "{}", stderr(&joined));
    assert_eq!(json(&joined)["botId"], v["botId"]);
    assert_no_secret(&id, "join's stdout", &joined.stdout);
    assert_no_secret(&id, "join's stderr", &joined.stderr);
    // Nor does any ledger record the server keeps (the server never had it).
    let _ = server.kill();
    let _ = server.wait();
    // (Killed: what it wrote may still be in the WAL.)
    let db = [".ratchet/agents.db", ".ratchet/agents.db-wal"]
        .iter()
        .flat_map(|f| std::fs::read(ws.path(f)).unwrap_or_default())
        .collect::<Vec<u8>>();
    assert!(db.len() > 4096, "the ledger was written");
    assert_no_secret(&id, "agents.db", &db);

    // --force replaces it; without it, the file is kept and nothing is asked.
    let again = with_pass(&ws, PASS, &["agent", "--key", "bot.key", "keygen"]);
    failed_with(&again, "AGENT_KEY_EXISTS");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn a_wrong_passphrase_a_tampered_file_and_no_passphrase_are_refused_with_their_codes() {
    let ws = Ws::new();
    assert_eq!(code(&with_pass(&ws, PASS, &["agent", "--key", "bot.key", "keygen"])), 0);
    let path = ws.path("bot.key");
    let text = std::fs::read_to_string(&path).unwrap();
    let bot = serde_json::from_str::<serde_json::Value>(&text).unwrap()["botId"].as_str().unwrap().to_string();
    // vouch opens the key and needs no server: the cheapest command that signs.
    let vouch = |pass: Option<&str>| {
        let args = ["agent", "--key", "bot.key", "vouch", &bot, "--human", "h-1", "--audience", "ratchet"];
        match pass {
            Some(p) => with_pass(&ws, p, &args),
            None => ws.run(&args),
        }
    };
    assert_eq!(code(&vouch(Some(PASS))), 0);

    let err = failed_with(&vouch(Some("not the passphrase")), "AGENT_KEY_PASSPHRASE_WRONG");
    assert!(!err.contains("not the passphrase"), "the passphrase is echoed: {err}");
    failed_with(&vouch(None), "AGENT_KEY_PASSPHRASE_MISSING");

    // One character of the ciphertext.
    let mut file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ct = file["ciphertext"].as_str().unwrap().to_string();
    let flipped = format!("{}{}", if ct.starts_with('A') { "B" } else { "A" }, &ct[1..]);
    file["ciphertext"] = flipped.into();
    std::fs::write(&path, file.to_string()).unwrap();
    failed_with(&vouch(Some(PASS)), "AGENT_KEY_TAMPERED");

    // Another bot's id in the header, the ciphertext intact.
    let mut file: serde_json::Value = serde_json::from_str(&text).unwrap();
    file["botId"] = Identity::generate().unwrap().bot_id().into();
    std::fs::write(&path, file.to_string()).unwrap();
    failed_with(&vouch(Some(PASS)), "AGENT_KEY_TAMPERED");

    // A cost lowered below the floor is refused before any work.
    let mut file: serde_json::Value = serde_json::from_str(&text).unwrap();
    file["kdf"]["mKiB"] = 8.into();
    std::fs::write(&path, file.to_string()).unwrap();
    failed_with(&vouch(Some(PASS)), "AGENT_KEY_INVALID");

    // A new passphrase under 8 characters.
    failed_with(&with_pass(&ws, "short", &["agent", "--key", "other.key", "keygen"]), "AGENT_KEY_PASSPHRASE_WEAK");
    assert!(!ws.path("other.key").exists());
}

#[test]
fn an_old_plaintext_key_is_refused_until_encrypt_key_encrypts_it_in_place() {
    let ws = Ws::new();
    let id = Identity::generate().unwrap();
    ws.write("old.key", &format!("{}\n", id.to_pkcs8_base64()));
    let args = ["agent", "--key", "old.key", "vouch", &id.bot_id(), "--human", "h-1", "--audience", "ratchet"];
    let err = failed_with(&with_pass(&ws, PASS, &args), "AGENT_KEY_PLAINTEXT");
    assert!(err.contains("encrypt-key"), "{err}");
    assert_no_secret(&id, "the refusal", err.as_bytes());

    let out = with_pass(&ws, PASS, &["agent", "--key", "old.key", "encrypt-key"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["botId"], id.bot_id());
    let path = ws.path("old.key");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_no_secret(&id, "the re-encrypted file", &std::fs::read(&path).unwrap());
    assert_no_secret(&id, "encrypt-key's output", &[out.stdout, out.stderr].concat());
    assert_eq!(opened(&path, PASS).bot_id(), id.bot_id());
    assert_eq!(code(&with_pass(&ws, PASS, &args)), 0);

    // On an encrypted file it changes the passphrase.
    let out = ws.run_env(
        &[("RATCHET_AGENT_PASSPHRASE", PASS), ("RATCHET_AGENT_NEW_PASSPHRASE", "another long passphrase")],
        &["agent", "--key", "old.key", "encrypt-key"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(opened(&path, "another long passphrase").bot_id(), id.bot_id());
    failed_with(&with_pass(&ws, PASS, &args), "AGENT_KEY_PASSPHRASE_WRONG");
}

#[test]
fn at_a_terminal_the_passphrase_is_asked_twice_without_echo() {
    let ws = Ws::new();
    let mut p = ws.pty(&["agent", "--key", "bot.key", "keygen"]);
    p.exp_string("new passphrase for the key: ").unwrap();
    p.send_line(PASS).unwrap();
    let between = p.exp_string("the same passphrase again: ").unwrap();
    assert!(!between.contains(PASS), "the passphrase was echoed: {between}");
    p.send_line(PASS).unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(rest.contains("botId"), "{rest}");
    assert!(!rest.contains(PASS), "the passphrase was echoed: {rest}");
    let id = opened(&ws.path("bot.key"), PASS);
    assert_no_secret(&id, "the terminal", rest.as_bytes());

    // Opening it asks once.
    let bot = id.bot_id();
    let mut p = ws.pty(&["agent", "--key", "bot.key", "vouch", &bot, "--human", "h-1", "--audience", "ratchet"]);
    p.exp_string("passphrase for ").unwrap();
    p.send_line(PASS).unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(rest.contains("statement") && !rest.contains(PASS), "{rest}");

    // Two different answers: nothing is written.
    let mut p = ws.pty(&["agent", "--key", "other.key", "keygen"]);
    p.exp_string("new passphrase for the key: ").unwrap();
    p.send_line(PASS).unwrap();
    p.exp_string("the same passphrase again: ").unwrap();
    p.send_line("a different long passphrase").unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(rest.contains("AGENT_KEY_PASSPHRASE_MISMATCH"), "{rest}");
    assert!(!ws.path("other.key").exists());
}

//! `ratchet agent`: the matching client of the agents API (a remote bot's
//! side), and the few lines where the human's commands meet the agents
//! API (`approve`, `reject`, `review`, `status`, `log verify`).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::agents::client::{Client, idempotency_key};
use crate::agents::keyfile;
use crate::agents::signed::Identity;
use crate::cli::{CommandError, CommandResult, Env};
use crate::error::{Coded, Exit};
use crate::serve::agents::store::{self, AgentStore};
use crate::step::Session;

/// Act as a remote bot against a `ratchet serve`: keys, join, candidates,
/// attestations, objections, revisions, votes; and vouch for a bot as an
/// operator.
///
/// Every write is signed as the agents API requires (Ed25519 over
/// tmr-agent-v1:aud.timestamp.nonce.POST.path.body, the audience read from
/// the server's /v1/bootstrap). The private key lives in --key FILE (mode
/// 0600, written by `keygen`), encrypted under a passphrase (Argon2id,
/// XChaCha20-Poly1305): the passphrase is asked at the terminal, or read
/// from RATCHET_AGENT_PASSPHRASE for unattended use (have a secret manager
/// provide it, never a file in the repository). Or the whole key comes from
/// RATCHET_AGENT_KEY (PKCS#8, base64, as the SDK exports it), and no file is
/// read. The key is never printed unless asked, and never logged.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
    /// The server (default: RATCHET_SERVER, else http://127.0.0.1:7878).
    #[arg(long, global = true, value_name = "URL")]
    server: Option<String>,
    /// The private key file (default: ~/.config/ratchet/agent.key).
    #[arg(long, global = true, value_name = "FILE")]
    key: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
enum Sub {
    /// Make a new Ed25519 identity in --key (mode 0600, encrypted under a
    /// passphrase asked twice, or RATCHET_AGENT_PASSPHRASE) and print its botId.
    Keygen {
        /// Replace an existing key file.
        #[arg(long)]
        force: bool,
        /// Also print the private key (PKCS#8, base64) on stdout, for a secret manager.
        #[arg(long)]
        print_private_key: bool,
    },
    /// Encrypt a key file written in plain text by an older ratchet, in place
    /// (or, for an encrypted file, change its passphrase: the new one comes
    /// from the terminal, twice, or RATCHET_AGENT_NEW_PASSPHRASE).
    EncryptKey,
    /// Join the server (POST /v1/agents/join); with --vouch, verify too.
    Join {
        /// An operator's vouch statement (from `ratchet agent vouch`), for POST /v1/agents/verify.
        #[arg(long, value_name = "STATEMENT")]
        vouch: Option<String>,
    },
    /// Submit a candidate (POST /v1/candidates) against the server's current base.
    Propose {
        /// The patch JSON file: one op on one file.
        #[arg(long, value_name = "FILE")]
        patch: PathBuf,
        #[arg(long, value_name = "TEXT")]
        rationale: String,
        #[arg(long = "next-step", value_name = "TEXT")]
        next_steps: Vec<String>,
        #[arg(long, value_name = "REF")]
        focus: Option<String>,
        /// A JSON object for the bot's own keys (signed like the rest).
        #[arg(long, value_name = "JSON")]
        metadata: Option<String>,
        /// The base commit (default: the server's repository.base).
        #[arg(long, value_name = "SHA")]
        base: Option<String>,
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Attest to a story's current packet (POST /v1/agents/attestations).
    Attest {
        story: String,
        #[arg(long)]
        role: String,
        /// The packet hash (default: the story's current one).
        #[arg(long, value_name = "HASH")]
        packet: Option<String>,
    },
    /// Object to a story's current packet (POST /v1/agents/objections).
    Object {
        story: String,
        #[arg(long)]
        role: String,
        #[arg(long, value_parser = ["LOW", "MEDIUM", "HIGH", "CRITICAL"])]
        severity: String,
        #[arg(long)]
        reason: String,
        #[arg(long, value_name = "HASH")]
        packet: Option<String>,
    },
    /// Propose a revised patch for a story (POST /v1/stories/{id}/revision-proposals).
    Revise {
        story: String,
        #[arg(long, value_name = "FILE")]
        patch: PathBuf,
        #[arg(long)]
        reason: String,
        #[arg(long, value_name = "HASH")]
        packet: Option<String>,
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Vote on a revision proposal.
    Vote {
        story: String,
        proposal: String,
        #[arg(long, value_parser = ["YES", "NO", "ABSTAIN"])]
        vote: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Show a story's machine room (or, with --api-key, a candidate's status by hash).
    Status {
        /// A story id (s12) or a candidate hash.
        what: String,
        #[arg(long, env = "RATCHET_API_KEY", value_name = "KEY")]
        api_key: Option<String>,
    },
    /// As an operator (--key is the operator's), vouch that BOT belongs to a human; prints the statement.
    Vouch {
        bot: String,
        /// Who the bot belongs to.
        #[arg(long, value_name = "ID")]
        human: String,
        /// The audience (default: this workspace's [agents] audience).
        #[arg(long)]
        audience: Option<String>,
    },
}

fn default_key() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("ratchet").join("agent.key")
}

fn key_path(env: &Env, args: &Args) -> PathBuf {
    args.key.as_ref().map(|k| env.cwd.join(k)).unwrap_or_else(default_key)
}

/// The passphrase variable for unattended use.
pub const PASSPHRASE_ENV: &str = "RATCHET_AGENT_PASSPHRASE";
/// The new passphrase of `encrypt-key` on an encrypted file, unattended.
pub const NEW_PASSPHRASE_ENV: &str = "RATCHET_AGENT_NEW_PASSPHRASE";

type Secret = zeroize::Zeroizing<String>;

fn no_passphrase(what: &str) -> CommandError {
    CommandError::new(
        "AGENT_KEY_PASSPHRASE_MISSING",
        format!("{what} needs a passphrase and there is no terminal to ask"),
        format!(
            "run it at a terminal, or have a secret manager set {PASSPHRASE_ENV} (or the whole key in RATCHET_AGENT_KEY)"
        ),
    )
}

/// The passphrase that opens `path`: the variable, else asked once.
fn passphrase_to_open(path: &Path) -> Result<Secret, CommandError> {
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return Ok(Secret::new(p));
    }
    let mut t = crate::cli::prompt::Terminal::open().ok_or_else(|| no_passphrase("the key file"))?;
    t.ask_secret(&format!("passphrase for {}: ", path.display())).ok_or_else(|| no_passphrase("the key file"))
}

/// A new passphrase: the variable `var`, else asked twice at the terminal.
fn new_passphrase(var: &str) -> Result<Secret, CommandError> {
    if let Ok(p) = std::env::var(var) {
        return Ok(Secret::new(p));
    }
    let mut t = crate::cli::prompt::Terminal::open().ok_or_else(|| no_passphrase("encrypting the key"))?;
    let first = t.ask_secret("new passphrase for the key: ").ok_or_else(|| no_passphrase("encrypting the key"))?;
    let again = t.ask_secret("the same passphrase again: ").ok_or_else(|| no_passphrase("encrypting the key"))?;
    if *first != *again {
        return Err(CommandError::new(
            "AGENT_KEY_PASSPHRASE_MISMATCH",
            "the two passphrases differ",
            "run the command again and type the same passphrase twice",
        ));
    }
    Ok(first)
}

/// The key file's parsed contents (no key derivation yet).
fn read_key_file(path: &Path) -> Result<keyfile::Parsed, CommandError> {
    use std::io::Read;
    let missing = |e: std::io::Error| {
        CommandError::new(
            "AGENT_KEY_MISSING",
            format!("cannot read the key {}: {e}", path.display()),
            "run `ratchet agent keygen`, pass --key FILE, or set RATCHET_AGENT_KEY",
        )
    };
    let mut text = zeroize::Zeroizing::new(String::new());
    std::fs::File::open(path).and_then(|f| f.take(keyfile::MAX_FILE + 1).read_to_string(&mut text)).map_err(missing)?;
    if text.len() as u64 > keyfile::MAX_FILE {
        return Err(keyfile::KeyFileError::Invalid {
            path: path.display().to_string(),
            why: format!("larger than {} bytes", keyfile::MAX_FILE),
        }
        .into());
    }
    Ok(keyfile::parse(&path.display().to_string(), &text)?)
}

fn identity(env: &Env, args: &Args) -> Result<Identity, CommandError> {
    if let Ok(text) = std::env::var("RATCHET_AGENT_KEY") {
        return Identity::from_pkcs8_base64(&text).map_err(|e| {
            CommandError::new(
                "AGENT_KEY_INVALID",
                format!("RATCHET_AGENT_KEY: {e}"),
                "export the key as PKCS#8 base64 (ratchet agent keygen --print-private-key)",
            )
        });
    }
    let path = key_path(env, args);
    match read_key_file(&path)? {
        keyfile::Parsed::Plaintext => Err(keyfile::KeyFileError::Plaintext { path: path.display().to_string() }.into()),
        keyfile::Parsed::Sealed(sealed) => {
            let pass = passphrase_to_open(&path)?;
            Ok(keyfile::open(&path.display().to_string(), &sealed, pass.as_bytes())?)
        }
    }
}

fn refuse_existing(path: &Path, force: bool) -> Result<(), CommandError> {
    if path.exists() && !force {
        return Err(CommandError::new(
            "AGENT_KEY_EXISTS",
            format!("{} already exists", path.display()),
            "pass --force to replace it, or --key FILE for another",
        ));
    }
    Ok(())
}

/// Writes `text` to `path` whole (a temporary file, synced, then renamed),
/// mode 0600, in a folder made 0700 when it is new.
fn write_key(path: &Path, text: &str, force: bool) -> Result<(), CommandError> {
    refuse_existing(path, force)?;
    let io = |what: &Path, e: std::io::Error| {
        CommandError::new(
            "IO_ERROR",
            format!("cannot write {}: {e}", what.display()),
            "pass --key in a writable directory",
        )
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::fsutil::create_private_dir(dir).map_err(|e| io(dir, e))?;
    }
    crate::fsutil::write_private(path, text.as_bytes(), crate::fsutil::Durability::Full).map_err(|e| io(path, e))
}

fn read_patch(env: &Env, path: &Path) -> Result<Value, CommandError> {
    let text = std::fs::read_to_string(env.cwd.join(path)).map_err(|e| {
        CommandError::new(
            "BAD_PATCH",
            format!("cannot read {}: {e}", path.display()),
            "pass a JSON file holding one patch",
        )
    })?;
    Ok(crate::propose::parse_json(&text)?)
}

fn server(args: &Args) -> String {
    args.server
        .clone()
        .or_else(|| std::env::var("RATCHET_SERVER").ok())
        .unwrap_or_else(|| "http://127.0.0.1:7878".into())
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    let out = |v: Value| {
        env.ui.emit_json(&v);
        Ok(Exit::Ok)
    };
    match &args.command {
        Sub::Keygen { force, print_private_key } => {
            let path = key_path(env, &args);
            // Refused before the passphrase is asked.
            refuse_existing(&path, *force)?;
            let id =
                Identity::generate().map_err(|e| CommandError::new("AGENT_KEY_INVALID", e.to_string(), "retry"))?;
            let pass = new_passphrase(PASSPHRASE_ENV)?;
            let sealed = keyfile::seal(&id, pass.as_bytes(), keyfile::Cost::default())?;
            write_key(&path, &sealed.to_text(), *force)?;
            env.ui.note(format!("wrote {} (encrypted, mode 0600)", path.display()));
            let mut v = json!({"botId": id.bot_id(), "key": path.display().to_string(), "encrypted": true});
            if *print_private_key {
                v["privateKeyPkcs8Base64"] = id.to_pkcs8_base64().into();
            }
            return out(v);
        }
        Sub::EncryptKey => {
            let path = key_path(env, &args);
            let (id, new_var) = match read_key_file(&path)? {
                keyfile::Parsed::Plaintext => {
                    let text = zeroize::Zeroizing::new(std::fs::read_to_string(&path).unwrap_or_default());
                    let id = Identity::from_pkcs8_base64(&text).map_err(|e| {
                        CommandError::new("AGENT_KEY_INVALID", format!("{}: {e}", path.display()), "check the file")
                    })?;
                    (id, PASSPHRASE_ENV)
                }
                keyfile::Parsed::Sealed(sealed) => {
                    let pass = passphrase_to_open(&path)?;
                    (keyfile::open(&path.display().to_string(), &sealed, pass.as_bytes())?, NEW_PASSPHRASE_ENV)
                }
            };
            let pass = new_passphrase(new_var)?;
            let sealed = keyfile::seal(&id, pass.as_bytes(), keyfile::Cost::default())?;
            write_key(&path, &sealed.to_text(), true)?;
            env.ui.note(format!("encrypted {} (mode 0600)", path.display()));
            return out(json!({"botId": id.bot_id(), "key": path.display().to_string(), "encrypted": true}));
        }
        Sub::Vouch { bot, human, audience } => {
            let op = identity(env, &args)?;
            crate::agents::signed::bot_key(bot)
                .map_err(|e| CommandError::new("VALIDATION_ERROR", e.to_string(), "pass the bot's botId"))?;
            let aud = match audience {
                Some(a) => a.clone(),
                None => crate::rails::Rails::load(&env.workspace()?)?.agents.audience,
            };
            let statement =
                crate::agents::vouch::make(&op, &aud, bot, human, &crate::clock::stamp(crate::clock::now()));
            env.ui.note(format!(
                "operator {} vouches for {bot} as {human}; the bot sends this with `ratchet agent join --vouch`",
                op.bot_id()
            ));
            return out(json!({"statement": statement, "operator": op.bot_id(), "botId": bot, "linkedHumanId": human}));
        }
        _ => {}
    }
    let needs_key = !matches!(args.command, Sub::Status { .. });
    let id = if needs_key { Some(identity(env, &args)?) } else { None };
    let c = Client::connect(&server(&args), id)?;
    let bot = c.bot_id();
    let packet = |story: &str, given: &Option<String>| -> Result<String, CommandError> {
        Ok(match given {
            Some(p) => p.clone(),
            None => c.current_packet(story)?,
        })
    };
    let (_, v) = match &args.command {
        Sub::Join { vouch } => {
            let joined = c.write("/v1/agents/join", &json!({"botId": bot}), None, None)?;
            match vouch {
                Some(s) => c.write("/v1/agents/verify", &json!({"botId": bot}), None, Some(s))?,
                None => joined,
            }
        }
        Sub::Propose { patch, rationale, next_steps, focus, metadata, base, idempotency_key: key } => {
            let base = base
                .clone()
                .or_else(|| c.bootstrap["repository"]["base"].as_str().map(str::to_string))
                .unwrap_or_default();
            let mut body = json!({"botId": bot, "verified": false, "base": base, "rationale": rationale,
                                  "patch": read_patch(env, patch)?, "next_steps": next_steps});
            if let Some(f) = focus {
                body["focus"] = f.clone().into();
            }
            if let Some(m) = metadata {
                body["metadata"] = serde_json::from_str(m).map_err(|e| {
                    CommandError::new("VALIDATION_ERROR", format!("--metadata is not JSON: {e}"), "pass a JSON object")
                })?;
            }
            c.write("/v1/candidates", &body, Some(&key.clone().unwrap_or_else(idempotency_key)), None)?
        }
        Sub::Attest { story, role, packet: p } => {
            let body = json!({"botId": bot, "storyId": story, "packetHash": packet(story, p)?, "verified": false, "role": role});
            c.write("/v1/agents/attestations", &body, None, None)?
        }
        Sub::Object { story, role, severity, reason, packet: p } => {
            let body = json!({"botId": bot, "storyId": story, "packetHash": packet(story, p)?, "verified": false,
                              "role": role, "severity": severity, "reason": reason});
            c.write("/v1/agents/objections", &body, None, None)?
        }
        Sub::Revise { story, patch, reason, packet: p, idempotency_key: key } => {
            let body = json!({"botId": bot, "basePacketHash": packet(story, p)?, "patch": read_patch(env, patch)?,
                              "reason": reason, "verified": false});
            c.write(
                &format!("/v1/stories/{story}/revision-proposals"),
                &body,
                Some(&key.clone().unwrap_or_else(idempotency_key)),
                None,
            )?
        }
        Sub::Vote { story, proposal, vote, role, reason, idempotency_key: key } => {
            let mut body = json!({"botId": bot, "role": role, "vote": vote});
            if let Some(r) = reason {
                body["reason"] = r.clone().into();
            }
            c.write(
                &format!("/v1/stories/{story}/revision-proposals/{proposal}/votes"),
                &body,
                Some(&key.clone().unwrap_or_else(idempotency_key)),
                None,
            )?
        }
        Sub::Status { what, api_key } => match api_key {
            Some(k) if what.len() == 64 => c.get(&format!("/v1/candidates/{what}/status"), Some(k))?,
            _ => c.get(&format!("/v1/stories/{what}/machine-room"), None)?,
        },
        Sub::Keygen { .. } | Sub::EncryptKey | Sub::Vouch { .. } => unreachable!("handled above"),
    };
    out(v)
}

// ---- the human side's hooks --------------------------------------------------------

fn ledger_of(ws: &crate::workspace::Workspace) -> Result<Box<dyn crate::agents::gate2::Ledger>, CommandError> {
    let path = store::path_for(ws);
    if !path.exists() {
        return Ok(Box::new(crate::agents::gate2::Empty));
    }
    Ok(Box::new(AgentStore::open_existing(&path)?))
}

/// Before a human decides step `id`: a remote candidate needs its quorum to
/// be approved, and the decision anchors the agents ledger in the log.
pub fn gate2_hook(s: &mut Session, id: &str, approving: bool) -> Result<(), CommandError> {
    let history = s.history()?;
    let Some(st) = history.step(id) else { return Ok(()) };
    if crate::agents::bot_of(&st.pick.provider).is_none() {
        return Ok(());
    }
    let packet = st.body.proposal.as_ref().map(|p| p.packet.clone()).unwrap_or_default();
    let provider = st.pick.provider.clone();
    let ledger = ledger_of(&s.ws)?;
    if let Some(anchor) =
        crate::agents::gate2::before_decision(&s.rails, &provider, id, &packet, approving, ledger.as_ref())?
    {
        s.record(&anchor)?;
    }
    Ok(())
}

/// [`gate2_hook`] as `step::decide` takes it.
pub fn decision_hook(s: &mut Session, id: &str, approving: bool) -> Result<(), crate::step::StepError> {
    gate2_hook(s, id, approving).map_err(|e| crate::step::StepError::Refused(e.0))
}

/// The quorum of a remote candidate, for `status` and `review`.
pub fn quorum_of(
    ws: &crate::workspace::Workspace,
    rails: &crate::rails::Rails,
    provider: &str,
    id: &str,
    packet: &str,
) -> Option<crate::agents::policy::QuorumState> {
    let ledger = ledger_of(ws).ok()?;
    crate::agents::gate2::state(rails, provider, id, packet, ledger.as_ref()).ok().flatten()
}

/// `QUORUM_NOT_MET` for the remote candidate `id`.
pub fn quorum_not_met(id: &str, q: crate::agents::policy::QuorumState) -> CommandError {
    crate::agents::gate2::Gate2Error::QuorumNotMet { id: id.to_string(), state: Box::new(q) }.into()
}

/// One line about a remote candidate's Gate 1 consensus.
pub fn quorum_line(q: &crate::agents::policy::QuorumState) -> String {
    format!(
        "quorum {}: {} attestation(s) [{}], {} objection(s) [{}] on {}{}",
        if q.met { "met" } else { "not met" },
        q.attestations.len(),
        q.attestations.iter().map(|b| short(b)).collect::<Vec<_>>().join(", "),
        q.objections.len(),
        q.objections.iter().map(|b| short(b)).collect::<Vec<_>>().join(", "),
        &q.packet_hash[..q.packet_hash.len().min(12)],
        if q.met { String::new() } else { format!("; waiting for {}", q.waiting_for.join("; ")) }
    )
}

fn short(bot: &str) -> String {
    // A botId's first 16 characters are the same SPKI prefix for every Ed25519 key.
    bot.chars().skip(16).take(10).collect()
}

/// `log verify`'s audit of the agents ledger against the log's anchors,
/// the bodies of its `agents` entries as the verify pass found them
/// (`None` when the workspace has neither).
pub fn audit(
    ws: &crate::workspace::Workspace,
    bodies: &[String],
) -> Result<Option<crate::agents::ledger::AuditReport>, CommandError> {
    let anchors = crate::serve::agents::anchors(bodies);
    let path = store::path_for(ws);
    if !path.exists() {
        if anchors.is_empty() {
            return Ok(None);
        }
        return Err(store::StoreError::Missing(path).into());
    }
    let st = AgentStore::open_existing(&path)?;
    let mut records = Vec::new();
    st.for_each_record(|r| {
        records.push(r);
        true
    })?;
    let report = crate::agents::ledger::audit(records.into_iter(), &anchors);
    let _ = Coded::code(&store::StoreError::Missing(PathBuf::new()));
    Ok(Some(report))
}

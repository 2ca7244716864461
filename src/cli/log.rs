//! `ratchet log`: list, show and verify the step log (`logs/steps.jsonl`).

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use crate::cli::{CommandError, CommandResult, Env, Style};
use crate::error::{Exit, Report};
use crate::journal::{self, Entry, Journal, Kind};
use crate::record::AnyBody;
use crate::text::show;

/// List the step log's entries, show one, or verify the whole chain.
///
/// Without a subcommand, lists entries oldest first (the newest last): seq,
/// id, time, kind, and the provider, outcome and utility of steps, with a
/// one-line summary. Every command that reads the log first checks it
/// against its checkpoints, and refuses a tampered (LOG_TAMPERED) or
/// rolled-back (LOG_ROLLBACK) log.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    /// Only entries of this kind.
    #[arg(long, value_name = "KIND", value_parser = clap::builder::PossibleValuesParser::new(Kind::ALL.map(Kind::as_str)))]
    kind: Option<String>,
    /// Only the last N matching entries.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Only entries whose provider (pick.provider) is P.
    #[arg(long, value_name = "P")]
    provider: Option<String>,
    /// Only entries whose outcome is O (merged, rejected, failed, pending, skipped, noop).
    #[arg(long, value_name = "O")]
    outcome: Option<String>,
    /// Only entries at or after this time (RFC 3339, e.g. 2026-11-21T00:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<DateTime<Utc>>,
}

#[derive(clap::Subcommand, Debug)]
enum Sub {
    Show(ShowArgs),
    Verify(VerifyArgs),
    Backup(BackupArgs),
    Restore(RestoreArgs),
}

/// Back the log up into git, on refs/ratchet/log (HEAD, the index and the
/// work tree are not touched).
///
/// The log must verify, and the last backup must be the start of it. Push
/// the backup with `git push origin refs/ratchet/log`; fetch it into a new
/// clone with `git fetch origin refs/ratchet/log:refs/ratchet/log`.
#[derive(clap::Args, Debug)]
struct BackupArgs {}

/// Restore the log from a backup (refs/ratchet/log by default).
///
/// Every line of the backup is checked (hashes and links) and a tampered
/// backup is refused. A log that verifies must be the start of the backup
/// (nothing is lost); one that does not is moved to logs/quarantine/ first.
#[derive(clap::Args, Debug)]
struct RestoreArgs {
    /// The backup to restore: a ref or commit holding steps.jsonl.
    #[arg(long, value_name = "REF", default_value = crate::journal::backup::REF)]
    from: String,
}

/// Show one entry by seq (42), or every entry of a step by id (s42) with
/// the amendments that name it.
#[derive(clap::Args, Debug)]
struct ShowArgs {
    /// A seq number or an entry id.
    #[arg(value_name = "SEQ_OR_ID")]
    key: String,
}

/// Check every line's hash, every link (prev, seq), the JSON of every
/// entry, the checkpoints, and the Ratchet-Log-Prev and Ratchet-Step
/// trailers of the step commits reachable from HEAD.
///
/// Exits 0 with a one-line summary when the log is sound; exits 1 naming
/// the first bad line (1-based) and why. Read-only: it never repairs.
#[derive(clap::Args, Debug)]
struct VerifyArgs {
    /// Also check that the backup at REF (e.g. refs/ratchet/log) verifies
    /// and is the start of the log.
    #[arg(long, value_name = "REF")]
    against: Option<String>,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    crate::clock::parse(s).ok_or_else(|| format!("{s:?} is not an RFC 3339 time such as 2026-11-21T19:00:00Z"))
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    match args.command {
        Some(Sub::Show(show)) => run_show(env, show),
        Some(Sub::Verify(v)) => match v.against {
            Some(r) => run_against(env, &r),
            None => run_verify(env),
        },
        Some(Sub::Backup(_)) => run_backup(env),
        Some(Sub::Restore(r)) => run_restore(env, &r.from),
        None => run_list(env, args),
    }
}

fn open(env: &Env) -> Result<Journal, CommandError> {
    let ws = env.workspace()?;
    let journal = Journal::open(&ws)?;
    if let Some(entry) = journal.recovered() {
        let path = show(entry.get_str("quarantine.path").unwrap_or("logs/quarantine/"));
        env.ui.warn(format!(
            "the log's last line was torn (a crash mid-write?): moved it to {path} and appended recovery entry {}",
            entry.seq
        ));
    }
    for warning in journal.warnings() {
        env.ui.warn(warning);
    }
    Ok(journal)
}

fn run_list(env: &Env, args: Args) -> CommandResult {
    let journal = open(env)?;
    let keep = |e: &Entry, body: Option<&AnyBody>| {
        let step = match body {
            Some(AnyBody::Step(b)) => Some(b),
            _ => None,
        };
        args.kind.as_deref().is_none_or(|k| e.kind.as_str() == k)
            && args.provider.as_deref().is_none_or(|p| step.is_some_and(|b| b.pick.provider == p))
            && args.outcome.as_deref().is_none_or(|o| step.is_some_and(|b| b.outcome.word() == o))
            && args.since.is_none_or(|since| crate::clock::parse(&e.ts).is_some_and(|t| t >= since))
    };
    let mut out = Printer { env, shown: 0 };
    let mut tail = VecDeque::new();
    let mut total = 0u64;
    for entry in journal.entries()? {
        let entry = entry?;
        total += 1;
        let body = AnyBody::parse(entry.kind, &serde_json::Value::Object(entry.body.clone()).to_string()).ok();
        if !keep(&entry, body.as_ref()) {
            continue;
        }
        match args.limit {
            Some(n) => {
                if n > 0 {
                    if tail.len() == n {
                        tail.pop_front();
                    }
                    tail.push_back((entry, body));
                }
            }
            None => out.print(&entry, body.as_ref()),
        }
    }
    for (entry, body) in &tail {
        out.print(entry, body.as_ref());
    }
    out.finish(total);
    Ok(Exit::Ok)
}

/// Streams the listing: a table, or a JSON array of whole entries.
struct Printer<'a> {
    env: &'a Env,
    shown: u64,
}

impl Printer<'_> {
    fn print(&mut self, e: &Entry, body: Option<&AnyBody>) {
        let ui = &self.env.ui;
        if ui.json() {
            ui.data_raw(&format!("{}\n  {}", if self.shown == 0 { "[" } else { "," }, e.raw));
        } else {
            if self.shown == 0 {
                ui.data(ui.paint(
                    Style::Bold,
                    &format!(
                        "{:>5}  {:<8} {:<20}  {:<9} {:<10} {:<8} {:>7}  {}",
                        "seq", "id", "ts", "kind", "provider", "outcome", "utility", "summary"
                    ),
                ));
            }
            let step = match body {
                Some(AnyBody::Step(b)) => Some(b),
                _ => None,
            };
            let utility = step.and_then(|b| b.utility).map(|u| format!("{u:.3}")).unwrap_or_default();
            ui.data(format!(
                "{:>5}  {:<8} {:<20}  {:<9} {:<10} {:<8} {:>7}  {}",
                e.seq,
                show(&e.id),
                show(&e.ts),
                e.kind.as_str(),
                show(step.map(|b| b.pick.provider.as_str()).unwrap_or("")),
                step.map(|b| b.outcome.word()).unwrap_or(""),
                utility,
                show(&summary(body))
            ));
        }
        self.shown += 1;
    }

    fn finish(self, total: u64) {
        let ui = &self.env.ui;
        if ui.json() {
            ui.data(if self.shown == 0 { "[]" } else { "\n]" });
        }
        if total == 0 {
            ui.note("the log is empty");
        } else {
            ui.note(format!("{} of {} shown", self.shown, crate::cli::ui::count(total, "entry", "entries")));
        }
    }
}

/// One line about an entry: what it did, in a few words.
fn summary(body: Option<&AnyBody>) -> String {
    let text = match body {
        Some(AnyBody::Step(b)) => match &b.proposal {
            Some(p) => format!("{} {}", p.op, p.path),
            None => b.reason.map(|r| r.word().to_string()).unwrap_or_default(),
        },
        Some(AnyBody::Amend(a)) => match (a.verified, a.rates) {
            (Some(v), Some(r)) => {
                format!("amends {}: verified {} ({:.1} → {:.1}/1k)", a.step, v.word(), r.before, r.latest)
            }
            (Some(v), None) => format!("amends {}: verified {}", a.step, v.word()),
            _ => format!("amends {}: {:?}", a.step, a.reason).to_lowercase(),
        },
        Some(AnyBody::Recovery(r)) => format!("quarantined {}", r.quarantine.path),
        Some(AnyBody::Rails(r)) => format!("rails {:?} {}", r.reason, &r.rails[..12.min(r.rails.len())]).to_lowercase(),
        Some(AnyBody::Intent(i)) => format!("intent {}", i.name),
        Some(AnyBody::Heartbeat(h)) => format!("{}: {}", h.error, h.message),
        Some(AnyBody::Watchdog(w)) => w.reason.clone().unwrap_or_else(|| "alarm".into()),
        Some(AnyBody::Agents(a)) => match &a.story {
            Some(story) => format!("agents {} of {story}: {} signed writes", a.event, a.writes),
            None => format!("agents {}: {} signed writes", a.event, a.writes),
        },
        None => "(a body this version cannot read)".into(),
    };
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > 60 {
        format!("{}…", line.chars().take(59).collect::<String>())
    } else {
        line.to_string()
    }
}

fn run_show(env: &Env, args: ShowArgs) -> CommandResult {
    let journal = open(env)?;
    let entries = journal.find(&args.key)?;
    if env.ui.json() {
        env.ui.emit_json(&serde_json::Value::Array(entries.iter().map(Entry::to_json).collect()));
        return Ok(Exit::Ok);
    }
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            env.ui.data("");
        }
        env.ui.data_raw(&for_people(&env.ui, e));
    }
    if entries.iter().any(|e| e.kind == Kind::Step) {
        env.ui.note(format!(
            "`ratchet show {}` shows the step with its diff; --json prints the entries",
            show(&args.key)
        ));
    }
    Ok(Exit::Ok)
}

fn run_verify(env: &Env) -> CommandResult {
    let ws = env.workspace()?;
    let report = journal::verify(&ws)?;
    // The agents API's ledger, against the log's anchors (only once the log itself verifies).
    let agents = if report.ok() { crate::cli::agent::audit(&ws, &report.agents)? } else { None };
    let agents_bad = agents.as_ref().and_then(|a| a.first_bad.clone());
    if env.ui.json() {
        let mut v = report.to_json();
        if let Some(a) = &agents {
            v["agents"] = serde_json::to_value(a).unwrap_or_default();
            if agents_bad.is_some() {
                v["ok"] = false.into();
            }
        }
        env.ui.emit_json(&v);
        return Ok(if report.ok() && agents_bad.is_none() { Exit::Ok } else { Exit::Error });
    }
    if let Some(bad) = &agents_bad {
        env.ui.error(
            &Report::new("AGENTS_LEDGER_TAMPERED", format!(".ratchet/agents.db record {}: {}", bad.seq, bad.reason))
                .with_hint("restore .ratchet/agents.db from a backup; the step log itself verifies"),
        );
        return Ok(Exit::Error);
    }
    let Some(bad) = &report.first_bad else {
        let head = match &report.head {
            Some((seq, id, hash)) => format!("head {id} (seq {seq}, {})", journal::short(hash)),
            None => "empty".to_string(),
        };
        let cps = report.checkpoints.iter().filter(|c| c.status == "ok").count();
        if let Some(a) = &agents {
            env.ui.data(format!(
                "ok: agents ledger: {} signed writes re-verified, {} anchors match",
                a.signatures, a.anchors
            ));
        }
        env.ui.data(format!(
            "ok: {} entries in {} ({} bytes), {head}; {cps} of {} checkpoints match; {} step commits cross-checked{}",
            report.entries,
            report.file,
            report.bytes,
            report.checkpoints.len(),
            report.commits_checked,
            if report.commits_foreign > 0 {
                format!(" ({} from another clone's log skipped)", report.commits_foreign)
            } else {
                String::new()
            }
        ));
        return Ok(Exit::Ok);
    };
    let message = match bad.line {
        Some(line) => format!("{} line {line}: {}", report.file, bad.reason),
        None => bad.reason.clone(),
    };
    let hint = match bad.code {
        "LOG_TORN" => {
            "run `ratchet log` to move the torn line to logs/quarantine/ and record a recovery entry".to_string()
        }
        "LOG_ROLLBACK" => format!(
            "restore the newest copy of {}; if you started a new log on purpose, delete the stale checkpoint named above",
            report.file
        ),
        "CHECKPOINT_INVALID" => "delete the checkpoint named above; the next entry rewrites it".to_string(),
        _ => format!(
            "restore {} from its backup with `ratchet log restore` (`ratchet log backup` makes one); the {} entries before this line verify",
            report.file, report.entries
        ),
    };
    env.ui.error(&Report::new(bad.code, message).with_hint(hint));
    Ok(Exit::Error)
}

fn run_backup(env: &Env) -> CommandResult {
    use crate::journal::backup;
    let ws = env.workspace()?;
    let who = ws.repo()?.identity().unwrap_or(crate::git::Identity { name: "ratchet".into(), email: String::new() });
    let done = backup::backup(&ws, &who, crate::clock::now())?;
    if env.ui.json() {
        env.ui.emit_json(&serde_json::to_value(&done).unwrap_or_default());
        return Ok(Exit::Ok);
    }
    let entries = crate::cli::ui::count(done.entries, "entry", "entries");
    match &done.commit {
        None => env.ui.data(format!("{} already holds the log ({entries}); nothing to do", done.reference)),
        Some(c) => env.ui.data(format!(
            "backed up {entries} ({} new) to {} ({})",
            done.new,
            done.reference,
            &c[..12.min(c.len())]
        )),
    }
    env.ui.note(format!("push it with `git push origin {}`", done.reference));
    Ok(Exit::Ok)
}

fn run_restore(env: &Env, from: &str) -> CommandResult {
    use crate::journal::backup;
    let ws = env.workspace()?;
    let _lock = crate::lock::WorkspaceLock::acquire(&ws, "log restore")?;
    let done = backup::restore(&ws, from)?;
    if env.ui.json() {
        env.ui.emit_json(&serde_json::to_value(&done).unwrap_or_default());
        return Ok(Exit::Ok);
    }
    if let Some(q) = &done.quarantined {
        env.ui.warn(format!("the log did not verify; it was moved to {q}"));
    }
    env.ui.data(format!(
        "restored {} ({} new) from {} ({})",
        crate::cli::ui::count(done.entries, "entry", "entries"),
        done.added,
        show(&done.reference),
        &done.commit[..12.min(done.commit.len())]
    ));
    env.ui.note("run `ratchet log verify` to cross-check it against the step commits");
    Ok(Exit::Ok)
}

fn run_against(env: &Env, reference: &str) -> CommandResult {
    let ws = env.workspace()?;
    let c = crate::journal::backup::compare(&ws, reference)?;
    if env.ui.json() {
        env.ui.emit_json(&serde_json::to_value(&c).unwrap_or_default());
        return Ok(Exit::Ok);
    }
    let newer = c.log_entries - c.backup_entries;
    env.ui.data(format!(
        "ok: the backup at {} ({}) holds the first {} of the log's {}{}",
        show(&c.reference),
        &c.commit[..12.min(c.commit.len())],
        crate::cli::ui::count(c.backup_entries, "entry", "entries"),
        c.log_entries,
        if newer == 0 { String::new() } else { format!("; {newer} newer not backed up yet (`ratchet log backup`)") }
    ));
    Ok(Exit::Ok)
}

/// An entry as a person reads it: a heading, then one `field  value` line
/// per leaf of its body (nested fields joined with dots), every value shown
/// through [`crate::text`] (an entry holds a provider's words).
fn for_people(ui: &crate::cli::Ui, e: &Entry) -> String {
    let mut out = ui.paint(Style::Bold, &format!("{} {} · {} · {}", e.kind.as_str(), show(&e.id), e.seq, show(&e.ts)));
    out.push('\n');
    let mut rows = Vec::new();
    fn walk(prefix: &str, v: &serde_json::Value, rows: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(m) if !m.is_empty() => {
                for (k, x) in m {
                    walk(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, x, rows);
                }
            }
            serde_json::Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
                let words: Vec<String> = a.iter().map(leaf).collect();
                rows.push((prefix.to_string(), if words.is_empty() { "-".into() } else { words.join(" · ") }));
            }
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), x, rows);
                }
            }
            other => rows.push((prefix.to_string(), leaf(other))),
        }
    }
    fn leaf(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "-".into(),
            serde_json::Value::Object(_) => "{}".into(),
            other => other.to_string(),
        }
    }
    walk("", &serde_json::Value::Object(e.body.clone()), &mut rows);
    rows.push(("prev".into(), journal::line::hex(&e.prev)));
    rows.push(("hash".into(), journal::line::hex(&e.hash)));
    let width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    for (k, v) in &rows {
        let v = crate::text::show_lines(v).replace('\n', &format!("\n  {:width$}  ", ""));
        out.push_str(&format!("  {:<width$}  {}\n", show(k), v));
    }
    out
}

//! `ratchet show ID`: one step as a person reads it.
//!
//! Everything comes from the log (the step's entries and the amendments
//! that name it) and, for a merged step, from git (the diff of its commit).
//! Every string a provider or the checks supplied is shown through
//! [`crate::text`], and the checks' output is read through
//! [`crate::runs::tail`] (bounded, never through a symlink). Read-only: no
//! lock, so it works beside a running step.

use crate::cli::{CommandError, CommandResult, Env, Style, Ui, diff};
use crate::error::Exit;
use crate::history::{History, Step};
use crate::journal::{Entry, Journal};
use crate::record::{Outcome, Stance};
use crate::text::{show, show_lines};

/// Show one step as a person reads it: outcome, provider, rationale, Gate 1
/// and Gate 2, the diff, the checks (exit status and the last lines of
/// their output), the commit and the utility.
///
/// With --json, prints the step's raw log entries (those of `ratchet log
/// show ID`) instead.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The step's id, as `ratchet step`, `status` and `log` print it (s42).
    #[arg(value_name = "ID")]
    id: String,
    /// How many of the checks' last lines to show.
    #[arg(long, default_value_t = 20, value_name = "N")]
    lines: usize,
}

pub fn run(env: &Env, args: Args) -> CommandResult {
    let ws = env.workspace()?;
    let journal = Journal::open(&ws)?;
    for warning in journal.warnings() {
        env.ui.warn(warning);
    }
    let entries = journal.find(&args.id)?;
    if env.ui.json() {
        env.ui.emit_json(&serde_json::Value::Array(entries.iter().map(Entry::to_json).collect()));
        return Ok(Exit::Ok);
    }
    let history = History::read(&journal)?;
    let Some(step) = history.load_step(&journal, &args.id)? else {
        return Err(CommandError::new(
            "NOT_A_STEP",
            format!("{} is not a step (it is a {} entry)", show(&args.id), entries[0].kind.as_str()),
            format!("`ratchet log show {}` prints it", show(&args.id)),
        ));
    };
    let repo = crate::git::Repo::discover(ws.root())?;
    env.ui.data_raw(&render(&env.ui, &ws, &repo, &step, args.lines));
    Ok(Exit::Ok)
}

/// The page for `step`.
fn render(ui: &Ui, ws: &crate::workspace::Workspace, repo: &crate::git::Repo, st: &Step, lines: usize) -> String {
    let b = &st.body;
    let mut out = String::new();
    let mut row = |label: &str, value: String| {
        out.push_str(&format!("{}  {}\n", ui.paint(Style::Bold, &format!("{label:<10}")), value));
    };
    let outcome_style = match b.outcome {
        Outcome::Merged => Style::Green,
        Outcome::Failed | Outcome::Rejected => Style::Red,
        _ => Style::Yellow,
    };
    let mut outcome = ui.paint(outcome_style, b.outcome.word());
    if let Some(r) = b.reason {
        outcome.push_str(&format!(" ({})", r.word()));
    }
    row("step", format!("{} {outcome} · {}", show(&st.id), st.finished.format("%Y-%m-%d %H:%M UTC")));
    let reason = serde_json::to_value(b.pick.reason).ok().and_then(|v| v.as_str().map(str::to_string));
    row(
        "provider",
        format!("{} ({}) · focus {}", show(&b.pick.provider), reason.unwrap_or_default(), show(&b.pick.focus)),
    );
    if let Some(d) = &b.detail {
        row("why", show(d));
    }
    if let Some(p) = &b.proposal {
        row("rationale", show_lines(p.rationale.trim()).replace('\n', "\n            "));
        row("patch", format!("{} {} (+{} -{})", p.op, show(&p.path), p.added, p.removed));
    }
    if !b.gate1.is_empty() {
        let mut verdicts: Vec<_> = b.gate1.iter().collect();
        verdicts.sort_by_key(|v| v.verdict == Stance::Attest);
        let words: Vec<String> = verdicts
            .iter()
            .map(|v| {
                let attest = v.verdict == Stance::Attest;
                let mut w = format!(
                    "{} {}",
                    show(&v.by),
                    ui.paint(if attest { Style::Green } else { Style::Red }, v.verdict.word())
                );
                if let (false, Some(reason)) = (attest, &v.reason) {
                    w.push_str(&format!(" ({})", show(reason)));
                }
                w
            })
            .collect();
        row("gate 1", words.join(" · "));
    }
    row(
        "gate 2",
        match &b.gate2 {
            Some(g) if g.by == "auto" => format!("auto-merged ([gate.auto_merge]) · score {}", g.human_score),
            Some(g) => {
                let mut s = format!("{} by {}", g.decision.word(), show(&g.by));
                if g.decision == crate::record::Choice::Approve {
                    s.push_str(&format!(" · score {}", g.human_score));
                }
                if let Some(r) = &g.reason {
                    s.push_str(&format!(" · {}", show(r)));
                }
                s
            }
            None if b.outcome == Outcome::Pending => {
                format!("waiting in {} — `ratchet review` shows it", ws.rel(&format!("logs/pending/{}.json", st.id)))
            }
            None => "not reached".to_string(),
        },
    );
    let checks = b.apply.as_ref().and_then(|a| a.checks.as_ref());
    if let Some(c) = checks {
        let ended = match (c.exit, c.timed_out) {
            (_, true) => "timed out".to_string(),
            (Some(code), _) => format!("exited {code}"),
            (None, _) => "did not finish".to_string(),
        };
        row(
            "checks",
            format!(
                "`{}` {ended} in {} · output in {}",
                show(&c.command),
                crate::cli::ui::duration(c.secs),
                show(&c.log)
            ),
        );
    }
    if let Some(commit) = st.commit() {
        row("commit", show(commit));
    }
    if let Some(u) = st.utility() {
        let mut s = format!("{u:.3}");
        if st.amended.is_some() && b.utility != Some(u) {
            s.push_str(&format!(" (amended from {:.3})", b.utility.unwrap_or(0.0)));
        }
        row("utility", s);
    }
    if let Some(r) = &st.reverted {
        row("reverted", format!("{:.1} h after the merge{}", r.hours, if r.capped { ", utility capped" } else { "" }));
    }
    if let Some(v) = &st.verified {
        row("verified", v.verdict.word().to_string());
    }
    if let Some(p) = b.proposal.as_ref().filter(|p| !p.next_steps.is_empty()) {
        row("next", p.next_steps.iter().map(|n| show(n)).collect::<Vec<_>>().join("\n            "));
    }
    if let Some(d) = commit_diff(ui, repo, st) {
        out.push('\n');
        out.push_str(&d);
    }
    if let Some(c) = checks.filter(|c| c.exit != Some(0)) {
        out.push_str(&format!("\nthe last lines of {}:\n", show(&c.log)));
        match crate::runs::tail(ws, &c.log, lines) {
            Ok(tail) if tail.is_empty() => out.push_str("  (empty)\n"),
            Ok(tail) => tail.iter().for_each(|l| out.push_str(&format!("  | {}\n", show(l)))),
            Err(e) => out.push_str(&format!("  ({} [{}])\n", show(&e.to_string()), crate::error::Coded::code(&e))),
        }
    }
    out
}

/// The diff of the commit a merged step made, from git.
pub fn commit_diff(ui: &Ui, repo: &crate::git::Repo, st: &Step) -> Option<String> {
    let b = &st.body;
    diff_of(ui, repo, b.base.as_deref(), st.commit()?, &b.proposal.as_ref()?.path)
}

/// The diff at `path` between commits `base` and `commit`.
fn diff_of(ui: &Ui, repo: &crate::git::Repo, base: Option<&str>, commit: &str, path: &str) -> Option<String> {
    let old = repo.file_at(base, path).ok().flatten();
    let new = repo.file_at(Some(commit), path).ok().flatten()?;
    let text = |blob: Option<&crate::git::Blob>| {
        blob.map(|x| String::from_utf8_lossy(&x.bytes).into_owned()).unwrap_or_default()
    };
    let old_name = if old.is_none() { "/dev/null".to_string() } else { format!("a/{path}") };
    Some(diff::unified(ui, &text(old.as_ref()), &text(Some(&new)), &old_name, &format!("b/{path}")))
}

/// The diff of `id` when it was merged without a human (`[gate.auto_merge]`):
/// nobody saw it before, so whoever ran the step sees it now.
pub fn auto_merged_diff(ui: &Ui, s: &crate::step::Session, report: &crate::step::Report) -> Option<String> {
    let base = report.auto_merged.as_ref()?;
    diff_of(ui, &s.repo, base.as_deref(), report.commit.as_deref()?, report.path.as_deref()?)
}

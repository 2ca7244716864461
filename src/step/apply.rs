//! Apply+Score (DESIGN §3): deterministic executors only.
//!
//! 1. The patch is written through the directory descriptors the safe walk
//!    opened, from the bytes it was judged on ([`crate::patch::write`]
//!    refuses if the file no longer holds them).
//! 2. The checks run (in the sandbox), their output kept in
//!    `logs/runs/<step>.log`; [`run_checks`] is the one checks runner, for
//!    the step and for `ratchet revert` alike.
//! 3. The fence is checked: only the patch's path may have changed.
//! 4. The file is read again through the held descriptors: it must hold
//!    exactly the bytes ratchet wrote.
//! 5. The entry that will describe the commit must fit in the log.
//! 6. The commit is made from those bytes, on the base recorded at the
//!    start (`HEAD_MOVED` if HEAD moved), then the entry is logged.
//!
//! Any failure puts the file back exactly and the step ends `failed`.

use std::time::Duration;

use crate::patch::{Before, Patch, Previous, Undo, Written};
use crate::process::Ended;
use crate::record::{ApplyRecord, ChecksRecord, Outcome, Reason, StepBody};
use crate::sandbox::{Policy, SandboxError};
use crate::score::Signals;

use super::fence::{Fence, Phase as FencePhase};
use super::inflight::{self, Inflight, Phase};
use super::settle::{Ending, settle};
use super::{Progress, Report, Session, StepError};

/// How the checks ended.
pub(super) struct ChecksRun {
    pub ended: Ended,
    pub record: ChecksRecord,
    /// Why the checks could not be started (their sandbox, say).
    pub unavailable: Option<String>,
}

/// Runs `[checks] command` for `name` (a step id, or `s7-revert`), its
/// output to `logs/runs/<name>.log`, killed at `[checks] timeout_s`.
pub(super) fn run_checks(
    s: &Session,
    name: &str,
    step_id: &str,
    fence: &mut Fence,
    progress: &mut dyn Progress,
) -> Result<ChecksRun, StepError> {
    let root = s.ws.root().to_path_buf();
    let runs = s.ws.runs_dir();
    std::fs::create_dir_all(&runs).map_err(|e| crate::error::IoError::new("create", &runs, e))?;
    let log_path = runs.join(format!("{name}.log"));
    let log_rel = s.ws.rel(&format!("logs/runs/{name}.log"));
    fence.expect_run_log(&log_rel);
    let log = std::fs::File::create(&log_path).map_err(|e| crate::error::IoError::new("create", &log_path, e))?;
    let command = s.rails.checks.command.clone();
    let mut cmd = crate::process::shell(&command, &root);
    cmd.current_dir(&root).env("RATCHET_STEP_ID", step_id);
    progress.phase("checks", &command);
    // The checks run in the sandbox; one that cannot be made is a reason
    // the checks could not run, never a reason to run them unconfined.
    let cannot = |e: &dyn std::fmt::Display, hint: Option<String>| {
        let mut line = format!("ratchet: cannot run the checks: {e}\n");
        if let Some(hint) = hint {
            line.push_str(&format!("hint: {hint}\n"));
        }
        let _ = std::io::Write::write_all(&mut &log, line.as_bytes());
        line.lines().next().unwrap_or_default().trim_start_matches("ratchet: ").to_string()
    };
    let mut unavailable = None;
    let mut enforced = None;
    let ran = match Policy::for_checks(&s.ws, &s.rails).confine(cmd) {
        Err(e) => {
            unavailable = Some(cannot(&e, crate::error::Coded::hint(&e)));
            None
        }
        Ok(mut confined) => {
            let ran = crate::process::run_logged(
                &mut confined,
                &log,
                Duration::from_secs(s.rails.checks.timeout_s),
                &mut |elapsed| {
                    inflight::fault("checks");
                    progress.checks_running(elapsed);
                },
            );
            enforced = Some(confined.enforced().clone());
            match ran {
                Ok(r) => Some(r),
                Err(e) => {
                    let hint = SandboxError::of(&e).and_then(crate::error::Coded::hint);
                    unavailable = Some(cannot(&e, hint));
                    None
                }
            }
        }
    };
    progress.checks_done();
    crate::timing::mark("checks");
    let (ended, elapsed) = ran.unwrap_or((Ended::Signalled(0), Duration::ZERO));
    let record = ChecksRecord {
        command,
        exit: ended.exit_code(),
        secs: crate::score::round((elapsed.as_secs_f64() * 1000.0).round() / 1000.0),
        timed_out: ended == Ended::TimedOut,
        log: log_rel,
        sandbox: enforced,
    };
    Ok(ChecksRun { ended, record, unavailable })
}

pub(super) fn describe(e: &Ended) -> String {
    match e {
        Ended::Exited(c) => format!("exited with status {c}"),
        Ended::Signalled(0) => "could not be run".into(),
        Ended::Signalled(sig) => format!("were killed by signal {sig}"),
        Ended::TimedOut => "timed out".into(),
        Ended::Interrupted => "were stopped by Ctrl-C".into(),
    }
}

/// The git file mode for permission bits.
pub(super) fn git_mode(mode: u32) -> u32 {
    if mode & 0o111 != 0 { 0o100755 } else { 0o100644 }
}

/// Apply+Score and Log, for an approved patch judged on `before` (the base
/// commit's bytes of its path, `None` when absent).
#[allow(clippy::too_many_arguments)]
pub(super) fn apply_and_score(
    s: &mut Session,
    id: &str,
    mut body: StepBody,
    patch: &Patch,
    before: Option<&[u8]>,
    mut signals: Signals,
    fence: &mut Fence,
    progress: &mut dyn Progress,
) -> Result<Report, StepError> {
    let root = s.ws.root().to_path_buf();
    let path = patch.path().to_string();
    let base = body.base.clone();
    // How to put the file back, known before anything is written.
    let pre = Undo {
        path: path.clone(),
        previous: match before {
            Some(bytes) => Previous::File {
                content: String::from_utf8_lossy(bytes).into_owned(),
                mode: crate::patch::Target::open(&root, &path).ok().and_then(|t| t.mode()).unwrap_or(0o644),
            },
            None => Previous::Absent {
                created_dirs: crate::patch::Target::open(&root, &path).map(|t| t.missing_dirs()).unwrap_or_default(),
            },
        },
    };
    let save = |s: &Session, body: &StepBody, phase| {
        Inflight { id: id.to_string(), pid: std::process::id(), phase, body: body.clone(), undo: Some(pre.clone()) }
            .save(&s.ws)
    };
    save(s, &body, Phase::Apply)?;
    progress.phase("apply", &format!("{} {path}", patch.op().as_str()));
    let expected = before.map_or(Before::Absent, Before::Bytes);
    let written: Written = match crate::patch::write(&root, &s.rails.paths, patch, expected) {
        Ok(w) => w,
        Err(e) => {
            let reason = if crate::error::Coded::code(&e) == "UNEXPECTED_CHANGES" {
                Reason::UnexpectedChanges
            } else {
                Reason::ApplyFailed
            };
            let ending = Ending::new(Outcome::Failed, reason)
                .detail(format!("{}: {e}", crate::error::Coded::code(&e)))
                .signals(signals);
            return settle(s, id, body, ending, None);
        }
    };
    let created: Vec<String> = match &written.undo.previous {
        Previous::Absent { created_dirs } => created_dirs.clone(),
        Previous::File { .. } => Vec::new(),
    };
    fence.expect_target(&path, &created);
    inflight::fault("apply");
    crate::timing::mark("apply");

    // The checks.
    let checks = run_checks(s, id, id, fence, progress)?;
    let ended = checks.ended.clone();
    let unavailable = checks.unavailable.clone();
    body.apply = Some(ApplyRecord { commit: None, checks: Some(checks.record) });
    // Whatever the checks did besides the patch, and whether the patch is
    // still exactly what was written.
    let fenced = fence.check(&s.repo, &s.rails.paths, FencePhase::Checked);
    let exact = written.verify();
    let fail = |s: &mut Session, body: StepBody, ending: Ending| -> Result<Report, StepError> {
        s.restore(&written.undo).map_err(|reason| StepError::Recovery { file: path.clone(), reason })?;
        settle(s, id, body, ending, None)
    };
    if ended == Ended::Interrupted {
        // Ctrl-C: the checks did not finish, so nothing is scored.
        let ending = Ending::new(Outcome::Skipped, Reason::Interrupted)
            .detail(format!("Ctrl-C stopped the checks; {path} was restored"));
        return fail(s, body, ending);
    }
    if !ended.success() {
        let reason = if ended == Ended::TimedOut {
            Reason::ChecksTimeout
        } else if ended == Ended::Signalled(0) {
            Reason::ChecksUnavailable
        } else {
            Reason::ChecksFailed
        };
        let why = unavailable.as_deref().map_or_else(|| describe(&ended), |u| format!("could not be run ({u})"));
        let mut detail = format!("the checks {why}; {path} was restored");
        if let Err(b) = &fenced {
            detail.push_str(&format!("; and {}", b.describe()));
        }
        return fail(s, body, Ending::new(Outcome::Failed, reason).detail(detail).signals(signals));
    }
    if let Err(breach) = fenced {
        let ending = Ending::new(Outcome::Failed, Reason::UnexpectedChanges)
            .detail(format!("the checks passed, but {}; {path} was restored", breach.describe()))
            .signals(signals);
        return fail(s, body, ending);
    }
    let stat = match exact {
        Ok(stat) => stat,
        Err(e) => {
            let ending = Ending::new(Outcome::Failed, Reason::UnexpectedChanges)
                .detail(format!("{e}; {path} was restored"))
                .signals(signals);
            return fail(s, body, ending);
        }
    };
    signals.ci_pass = 1.0;
    let u = super::settle::score(s, &signals, &body);

    // The entry that will describe the commit must fit before there is a commit.
    let mut merged = body.clone();
    merged.outcome = Outcome::Merged;
    merged.utility = Some(u);
    merged.signals = Some(signals);
    if let Some(a) = &mut merged.apply {
        a.commit = Some("0".repeat(40));
    }
    super::settle::bound_body(&mut merged);
    if let Err(e) = s.journal.fits(Some(id), &merged) {
        let ending = Ending::new(Outcome::Failed, Reason::EntryTooLarge).detail(e.to_string()).signals(signals);
        return fail(s, body, ending);
    }

    // Commit, naming the log head it follows.
    let trailers = crate::git::Trailers {
        step: id.to_string(),
        packet: merged.proposal.as_ref().map(|p| p.packet.clone()).unwrap_or_default(),
        intent: merged.intent.clone(),
        rails: merged.rails.clone(),
        utility: format!("{u}"),
        log_prev: s.journal.head().hash_hex(),
        log: s.journal.genesis()?.map(|g| crate::journal::line::hex(&g)),
    };
    let rationale =
        crate::text::one_paragraph(merged.proposal.as_ref().map(|p| p.rationale.trim()).unwrap_or_default());
    let message = format!(
        "ratchet: {} {path} ({id})\n\n{}{}\n",
        patch.op().as_str(),
        if rationale.is_empty() { String::new() } else { format!("{rationale}\n\n") },
        trailers.render().trim_end()
    );
    save(s, &merged, Phase::Commit)?;
    let who = s.identity();
    let commit = match s.repo.commit_exact(
        base.as_deref(),
        &path,
        Some(&written.bytes),
        Some(stat),
        git_mode(written.mode),
        &message,
        &who,
        crate::clock::now(),
    ) {
        Ok(c) => c,
        Err(e) => {
            let reason = match &e {
                crate::git::CommitError::HeadMoved { .. } => Reason::HeadMoved,
                crate::git::CommitError::Git(_) => Reason::CommitFailed,
            };
            return fail(s, body, Ending::new(Outcome::Failed, reason).detail(e.to_string()).signals(signals));
        }
    };
    // No crash-journal write here: recovery finds the commit by its
    // Ratchet-Step trailer at HEAD.
    inflight::fault("commit");
    crate::timing::mark("commit");
    if let Some(a) = &mut body.apply {
        a.commit = Some(commit.clone());
    }
    progress.phase("merged", &commit[..12]);
    settle(s, id, body, super::settle::Ending::merged(signals), Some(commit))
}

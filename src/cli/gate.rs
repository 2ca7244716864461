//! Gate 2 at the terminal, progress narration, and how a step's report reads.

use std::time::Duration;

use crate::cli::prompt::Terminal;
use crate::cli::{Style, Ui, diff};
use crate::gate::{Decision, Gate2, Review};
use crate::record::{Outcome, VerdictRecord};
use crate::step::{Progress, Report};
use crate::text::{show, show_lines};

/// Gate 2 as a prompt on the controlling terminal.
pub struct TerminalGate<'a> {
    pub tty: Terminal,
    pub ui: &'a Ui,
    /// Whether to offer `[e]dit` (a fresh proposal of `ratchet step`; a
    /// pending one is kept exactly as it was logged).
    pub edit: bool,
}

/// A screen longer than this many lines gets its summary repeated below
/// the diff, next to the question (when the terminal's height is unknown).
const TALL: usize = 40;

impl TerminalGate<'_> {
    /// Shows the proposal: provider, rationale, focus, Gate 1, a coloured
    /// diff and the predicted utility. Every string a provider supplied is
    /// shown through [`crate::text`]: no byte of it reaches the terminal as
    /// a control sequence.
    pub fn show(&mut self, r: &Review<'_>) {
        let ui = self.ui;
        let mut out = String::new();
        out.push_str(&format!(
            "\n{} {} · provider {} · focus {}\n",
            ui.paint(Style::Bold, "proposal"),
            show(r.id),
            ui.paint(Style::Bold, &show(r.provider)),
            show(r.focus)
        ));
        // A critic's objection comes first: it is why this was not auto-merged.
        for v in r.verdicts.iter().filter(|v| v.by.starts_with("critic:") && !v.attests()) {
            out.push_str(&format!(
                "{} {} objects: {}\n",
                ui.paint(Style::Red, "critic"),
                show(v.by.trim_start_matches("critic:")),
                show(v.reason.as_deref().unwrap_or(""))
            ));
        }
        out.push_str(&format!("rationale: {}\n", show_lines(r.rationale.trim())));
        // Objections first: they are what the human must weigh.
        let mut verdicts: Vec<&VerdictRecord> = r.verdicts.iter().collect();
        verdicts.sort_by_key(|v| v.attests());
        let words: Vec<String> = verdicts
            .iter()
            .map(|v| {
                let style = if v.attests() { Style::Green } else { Style::Red };
                let mut w = format!("{} {}", show(&v.by), ui.paint(style, v.verdict.word()));
                if let (false, Some(reason)) = (v.attests(), &v.reason) {
                    w.push_str(&format!(" ({})", show(reason)));
                }
                w
            })
            .collect();
        out.push_str(&format!("gate 1: {}\n", words.join(" · ")));
        out.push_str(&format!(
            "{} {} (+{} -{}) · predicted utility {}\n",
            r.op,
            ui.paint(Style::Bold, &show(r.path)),
            r.added,
            r.removed,
            ui.paint(Style::Bold, &format!("{:.3}", r.predicted))
        ));
        let old_name = if r.op == "create" { "/dev/null".to_string() } else { format!("a/{}", r.path) };
        out.push_str(&diff::unified(ui, r.old, r.new, &old_name, &format!("b/{}", r.path)));
        if !r.next_steps.is_empty() {
            out.push_str("next steps:\n");
            for n in r.next_steps {
                out.push_str(&format!("  - {}\n", show(n)));
            }
        }
        // A long diff scrolls the top of the screen away: say again, next
        // to the question, what is being decided.
        if out.lines().count() > self.tty.rows().map_or(TALL, |h| h.saturating_sub(4)) {
            let objections = r.verdicts.iter().filter(|v| !v.attests()).count();
            out.push_str(&format!(
                "{} {} · {} {} (+{} -{}) · gate 1: {} · predicted utility {:.3}\n",
                ui.paint(Style::Bold, "proposal"),
                show(r.id),
                r.op,
                ui.paint(Style::Bold, &show(r.path)),
                r.added,
                r.removed,
                if objections == 0 {
                    "every rule attests".to_string()
                } else {
                    format!("{objections} objection(s), above")
                },
                r.predicted
            ));
        }
        self.tty.say(&out);
    }

    /// `[e]dit`: the proposed file in the editor; `None` when the person
    /// saved nothing new (the question is asked again).
    fn edit(&mut self, r: &Review<'_>) -> Option<serde_json::Value> {
        use crate::propose::provider::human::sheet;
        let before = (r.op != "create").then_some(r.old);
        let text = sheet::template(r.path, r.rationale, r.next_steps, r.new, r.focus);
        match sheet::edit(&text).and_then(|saved| sheet::parse(&saved, before)) {
            Ok(Some(v)) => Some(v),
            Ok(None) => {
                self.tty.say("nothing to propose (an empty rationale, or no change); the proposal is as it was\n");
                None
            }
            Err(e) => {
                self.tty.say(&format!("{}; the proposal is as it was\n", show(&e)));
                None
            }
        }
    }

    fn ask_decision(&mut self, r: &Review<'_>) -> Decision {
        let default_score = r.default_score;
        let question = if self.edit {
            "[a]pprove, [r]eject, [e]dit, [s]kip (leave pending), [q]uit? "
        } else {
            "[a]pprove, [r]eject, [s]kip (leave pending), [q]uit? "
        };
        loop {
            let Some(answer) = self.tty.ask(question) else {
                return if self.tty.interrupted() { Decision::Interrupt } else { Decision::Quit };
            };
            match answer.trim().to_ascii_lowercase().as_str() {
                "a" | "approve" => {
                    let score = self.ask_score(default_score);
                    return if self.tty.interrupted() { Decision::Interrupt } else { Decision::Approve { score } };
                }
                "r" | "reject" => {
                    let reason =
                        self.tty.ask("reason (optional): ").map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
                    if self.tty.interrupted() {
                        return Decision::Interrupt;
                    }
                    return Decision::Reject { reason };
                }
                "e" | "edit" if self.edit => {
                    if let Some(proposal) = self.edit(r) {
                        return Decision::Edit { proposal };
                    }
                }
                "s" | "skip" => return Decision::Skip,
                "q" | "quit" => return Decision::Quit,
                _ if self.edit => self.tty.say("please answer a, r, e, s or q\n"),
                _ => self.tty.say("please answer a, r, s or q\n"),
            }
        }
    }

    fn ask_score(&mut self, default: f64) -> f64 {
        loop {
            let Some(answer) = self.tty.ask(&format!("score in [0, 1] [{default}]: ")) else { return default };
            let answer = answer.trim();
            if answer.is_empty() {
                return default;
            }
            match answer.parse::<f64>() {
                Ok(x) if (0.0..=1.0).contains(&x) => return x,
                _ => self.tty.say("a score is a number from 0 to 1, such as 0.8\n"),
            }
        }
    }
}

impl Gate2 for TerminalGate<'_> {
    fn decide(&mut self, review: &Review<'_>) -> Decision {
        self.show(review);
        self.ask_decision(review)
    }
}

/// Phase narration on stderr, and a spinner while the checks run on a terminal.
pub struct Narration<'a> {
    pub ui: &'a Ui,
    spinner: Option<indicatif::ProgressBar>,
    live: bool,
    /// The model call in flight: (provider, tokens, elapsed).
    generation: Option<(String, u64, Duration)>,
}

impl<'a> Narration<'a> {
    pub fn new(ui: &'a Ui) -> Narration<'a> {
        let live = std::io::IsTerminal::is_terminal(&std::io::stderr()) && !ui.json();
        Narration { ui, spinner: None, live, generation: None }
    }
}

impl Progress for Narration<'_> {
    fn phase(&mut self, phase: &str, detail: &str) {
        if !self.ui.json() {
            self.ui.note(format!("{} {detail}", self.ui.paint(Style::Dim, &format!("{phase:>8}"))));
        }
    }

    fn generating(&mut self, provider: &str, tokens: u64, elapsed: Duration) {
        self.generation = Some((provider.to_string(), tokens, elapsed));
        if !self.live {
            return;
        }
        let bar = self.spinner.get_or_insert_with(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar
        });
        bar.set_message(format!("{provider} generating… {tokens} tokens, {}", rate(tokens, elapsed)));
        bar.tick();
    }

    fn generated(&mut self) {
        if let Some(bar) = self.spinner.take() {
            bar.finish_and_clear();
        }
        if let Some((provider, tokens, elapsed)) = self.generation.take() {
            if !self.ui.json() {
                self.ui.note(format!(
                    "{} {provider}: {tokens} tokens in {:.1} s ({})",
                    self.ui.paint(Style::Dim, &format!("{:>8}", "model")),
                    elapsed.as_secs_f64(),
                    rate(tokens, elapsed)
                ));
            }
        }
    }

    fn checks_running(&mut self, elapsed: Duration) {
        if !self.live {
            return;
        }
        let bar = self.spinner.get_or_insert_with(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} running the checks… {elapsed}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar
        });
        bar.tick();
        let _ = elapsed;
    }

    fn checks_done(&mut self) {
        if let Some(bar) = self.spinner.take() {
            bar.finish_and_clear();
        }
    }
}

/// Tokens per second, in words.
fn rate(tokens: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 { "-".into() } else { format!("{:.1} tokens/s", tokens as f64 / secs) }
}

/// The process exit for a step's outcome: a failed step is an error.
pub fn exit_for(report: &Report) -> crate::error::Exit {
    if report.outcome == Outcome::Failed { crate::error::Exit::Error } else { crate::error::Exit::Ok }
}

/// One line saying how a step ended, and what to do next.
pub fn describe(ui: &Ui, r: &Report) -> String {
    let what = r.path.as_deref().map(|p| format!(" {}", show(p))).unwrap_or_default();
    let u = r.utility.map(|u| format!(" · utility {u}")).unwrap_or_default();
    let style = match r.outcome {
        Outcome::Merged => Style::Green,
        Outcome::Failed | Outcome::Rejected => Style::Red,
        _ => Style::Yellow,
    };
    let head = format!("{} {}", r.id, ui.paint(style, r.outcome.word()));
    match r.outcome {
        Outcome::Merged => format!(
            "{head}:{what} by {}{u} · commit {}",
            show(&r.provider),
            r.commit.as_deref().map(|c| &c[..12.min(c.len())]).unwrap_or("?")
        ),
        Outcome::Pending => format!(
            "{head}:{what} from {} waits for a human in {} — approve with `ratchet approve {}` or walk them with `ratchet review`",
            show(&r.provider),
            r.pending.as_deref().unwrap_or("logs/pending/"),
            r.id
        ),
        Outcome::Rejected | Outcome::Failed | Outcome::Noop | Outcome::Skipped => format!(
            "{head}:{what} from {} ({}){}{u}",
            show(&r.provider),
            r.reason.map(|x| x.word()).unwrap_or("-"),
            r.detail.as_deref().map(|d| format!(": {}", show(d))).unwrap_or_default()
        ),
    }
}

/// The JSON of a report: at least `id`, `outcome`, and `utility` and `commit` when known.
pub fn report_json(r: &Report) -> serde_json::Value {
    serde_json::to_value(r).expect("a report serialises")
}

/// For a failed step whose checks ran: where their output is and its last
/// lines, so that cron's mail says what broke.
pub fn checks_tail(s: &crate::step::Session, report: &Report) -> Vec<String> {
    let Some(log) = s
        .history()
        .ok()
        .and_then(|h| h.step(&report.id).and_then(|st| st.body.apply.as_ref()?.checks.as_ref().map(|c| c.log.clone())))
    else {
        return Vec::new();
    };
    let mut out = vec![format!("the checks' output is in {}; its last lines:", show(&log))];
    match crate::runs::tail(&s.ws, &log, TAIL) {
        Ok(lines) => out.extend(lines.iter().map(|l| format!("  | {}", show(l)))),
        Err(e) => out.push(format!("  ({})", show(&e.to_string()))),
    }
    out
}

/// How many lines of the checks' output a failed step shows.
pub const TAIL: usize = 10;

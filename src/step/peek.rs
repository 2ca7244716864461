//! A look at the proposals waiting for a human, for readers beside the
//! loop (`ratchet serve`'s loop page): without the workspace lock, without
//! writing anything, and without ever showing what the log does not name.
//!
//! Each pending file is checked as Gate 2 checks it ([`super::pending`]):
//! its proposal, on the logged base and intent, must hash to the packet the
//! log names, or it is shown as tampered, never its content. The diff is
//! from the file at HEAD to the file the patch would make.

use crate::history::History;
use crate::propose::Proposal;
use crate::workspace::Workspace;

use super::pending::Pending;

/// The longest diff shown, in lines.
pub const MAX_DIFF_LINES: usize = 400;

/// A pending proposal as a reader sees it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Peek {
    pub id: String,
    pub provider: String,
    pub focus: String,
    pub created: String,
    /// Set when the file is missing or no longer the logged proposal:
    /// nothing else of it is shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub rationale: String,
    pub op: String,
    pub path: String,
    /// The diff, line by line: `('+' | '-' | ' ' | '@', text)`.
    pub diff: Vec<(char, String)>,
    /// Lines of the diff left out past [`MAX_DIFF_LINES`].
    pub cut: usize,
}

/// The pending proposals of `history`, oldest first.
pub fn pending(ws: &Workspace, history: &History) -> Vec<Peek> {
    let repo = ws.repo().ok();
    let head = repo.as_ref().and_then(|r| r.head_commit());
    history
        .pending()
        .into_iter()
        .map(|step| {
            let mut out = Peek {
                id: step.id.clone(),
                provider: step.pick.provider.clone(),
                focus: step.pick.focus.clone(),
                created: crate::clock::stamp(step.finished),
                problem: None,
                rationale: String::new(),
                op: step.body.proposal.as_ref().map(|p| p.op.clone()).unwrap_or_default(),
                path: step.body.proposal.as_ref().map(|p| p.path.clone()).unwrap_or_default(),
                diff: Vec::new(),
                cut: 0,
            };
            match checked(ws, step) {
                Err(why) => out.problem = Some(why),
                Ok(proposal) => {
                    out.rationale = proposal.rationale.clone();
                    if let Some(patch) = proposal.single() {
                        let old = repo
                            .as_ref()
                            .and_then(|r| r.file_at(head.as_deref(), patch.path()).ok().flatten())
                            .map(|b| b.bytes);
                        match crate::patch::resolve(patch, old.as_deref()) {
                            Ok(new) => {
                                let old = old.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                                (out.diff, out.cut) = diff(&old, &new);
                            }
                            Err(e) => out.problem = Some(format!("it no longer applies to HEAD: {e}")),
                        }
                    }
                }
            }
            out
        })
        .collect()
}

/// The step's pending proposal, when its file is the one the log names.
fn checked(ws: &Workspace, step: &crate::history::Step) -> Result<Proposal, String> {
    let file = Pending::load(ws, &step.id)?.ok_or_else(|| "its file in logs/pending/ is missing".to_string())?;
    let logged = step.body.proposal.as_ref().map(|p| p.packet.as_str());
    let value = Proposal::from_value(&file.proposal).map(|p| p.to_value()).unwrap_or_else(|_| file.proposal.clone());
    let packet = crate::propose::packet_hash(&value, step.body.base.as_deref(), &step.body.intent);
    if file.id != step.id || Some(packet.as_str()) != logged {
        return Err("its file no longer holds the proposal the log names".into());
    }
    Proposal::from_value(&file.proposal).map_err(|e| format!("its proposal does not parse: {e}"))
}

/// A unified diff with three lines of context, at most [`MAX_DIFF_LINES`].
fn diff(old: &str, new: &str) -> (Vec<(char, String)>, usize) {
    let d = similar::TextDiff::configure().timeout(std::time::Duration::from_secs(2)).diff_lines(old, new);
    let mut lines = Vec::new();
    for group in d.grouped_ops(3) {
        let (first, last) = (&group[0], &group[group.len() - 1]);
        let (o, n) = (first.old_range().start, first.new_range().start);
        let (ol, nl) = (last.old_range().end - o, last.new_range().end - n);
        lines.push(('@', format!("@@ -{},{} +{},{} @@", o + 1, ol, n + 1, nl)));
        for op in &group {
            for change in d.iter_changes(op) {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => '-',
                    similar::ChangeTag::Insert => '+',
                    similar::ChangeTag::Equal => ' ',
                };
                lines.push((sign, change.value().trim_end_matches('\n').to_string()));
            }
        }
    }
    let cut = lines.len().saturating_sub(MAX_DIFF_LINES);
    lines.truncate(MAX_DIFF_LINES);
    (lines, cut)
}

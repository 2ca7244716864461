//! Gate 1's rule-based evaluators, the canonical ones.
//!
//! | evaluator | attests when | objects with |
//! |---|---|---|
//! | `rule:path_ok` | every path passes the whole path-safety procedure of [`crate::patch::path`], on disk included | `PATH_INVALID`, `PATH_PROTECTED`, `PATH_NOT_ALLOWED`, `SYMLINK_IN_PATH` |
//! | `rule:schema` | the patch is well-formed and resolves against the tree: `old` found exactly once, a `create` target absent, a `replace`/`append` target present, UTF-8 text | `BAD_PATCH`, `OLD_TEXT_NOT_FOUND`, `OLD_TEXT_AMBIGUOUS`, `TARGET_EXISTS`, `TARGET_MISSING`, `NOT_UTF8` |
//! | `rule:atomic_ok` | one op on one file, at most `budget.max_lines` lines changed and a resulting file of at most `budget.max_bytes` | `NOT_ATOMIC`, `OVER_BUDGET` |
//! | `rule:tier` | every path's required tier is at most the provider's tier | `TIER_LOCKED` |
//! | `rule:no_change`, `rule:duplicated_text`, `rule:prompt_echo`, `rule:structure` | the quality rules of [`super::quality`] find nothing wrong with the file after the patch | `NO_CHANGE`, `DUPLICATED_TEXT`, `PROMPT_ECHO`, `BROKEN_STRUCTURE` |
//!
//! Verdicts come in that order. An evaluator that cannot look because an
//! earlier one refused (the target was never read because its path is
//! protected, say) objects too, with the same code and a reason starting
//! "not checked:"; such verdicts are *derived*, and
//! [`Gate1::first_objection`] skips them to name the cause.
//!
//! The provider's tier is given, never looked up here: [`crate::trust`]
//! derives it from the log and the rails' grants, which put the `human`
//! kind at the top tier (the human at the terminal is Gate 2, so not
//! tier-locked) and any provider with `tier = "..."` at least there.
//!
//! Evaluators only read the tree, and only through [`Target::open`], which
//! never follows a symlink.

use std::path::Path;

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;

use crate::error::Coded;
use crate::patch::{self, LineStats, Patch, PatchError, Target, path};
use crate::propose::{self, Proposal};
use crate::rails::Rails;
use crate::record::Stance;

/// The version of these evaluators, recorded in every step entry. Bump it
/// whenever a rule changes what it accepts.
pub const EVALUATORS_VERSION: &str = "2";

pub const PATH_OK: &str = "rule:path_ok";
pub const SCHEMA: &str = "rule:schema";
pub const ATOMIC_OK: &str = "rule:atomic_ok";
pub const TIER: &str = "rule:tier";

/// Objections that are about the proposal as a whole rather than one patch.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("{what} over the budget of {max} ([budget] {key})", key = key_of(what))]
    OverBudget { what: String, max: u64, lines: bool },
    #[error("the proposal carries {patches} patches on {files} file(s); a step is one op on one file")]
    NotAtomic { patches: usize, files: usize },
    #[error("{path} needs tier {required}; the provider is at tier {current}")]
    TierLocked { path: String, required: String, current: String, current_paths: Vec<String> },
}

fn key_of(what: &str) -> &'static str {
    if what.contains("lines") { "max_lines" } else { "max_bytes" }
}

impl Coded for RuleError {
    fn code(&self) -> &'static str {
        match self {
            RuleError::OverBudget { .. } => "OVER_BUDGET",
            RuleError::NotAtomic { .. } => "NOT_ATOMIC",
            RuleError::TierLocked { .. } => "TIER_LOCKED",
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            RuleError::OverBudget { lines: true, .. } => {
                "make a smaller change (or split it over several steps, leaving the rest in next_steps)".into()
            }
            RuleError::OverBudget { lines: false, .. } => "keep the file within [budget] max_bytes".into(),
            RuleError::NotAtomic { .. } => "propose one op on one file; leave the rest in next_steps".into(),
            RuleError::TierLocked { current, current_paths, .. } => format!(
                "stay within tier {current} ({}) until safe successes unlock the next tier",
                current_paths.join(", ")
            ),
        })
    }
}

/// One evaluator's verdict on one packet.
///
/// In the log it is `{"by":"rule:path_ok","verdict":"attest"}`, plus
/// `"code"` and `"reason"` when it objects; the packet is the entry's.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// `rule:<name>`.
    pub by: &'static str,
    pub verdict: Stance,
    /// The objection's stable code; `None` when attesting.
    pub code: Option<&'static str>,
    /// Why, in words, for attestations and objections alike.
    pub reason: String,
    /// What to do about an objection.
    pub hint: Option<String>,
    /// The packet hash the verdict is bound to.
    pub packet: String,
    /// An objection that only repeats an earlier evaluator's refusal.
    derived: bool,
}

impl Verdict {
    /// An attestation by `by` (`rule:<name>`, `critic:<name>`) on `packet`.
    pub fn attest(by: &'static str, reason: impl Into<String>, packet: &str) -> Verdict {
        Verdict {
            by,
            verdict: Stance::Attest,
            code: None,
            reason: reason.into(),
            hint: None,
            packet: packet.to_string(),
            derived: false,
        }
    }

    /// An objection by `by` on `packet`, with `err`'s code, words and hint.
    pub fn object(by: &'static str, err: &dyn Coded, packet: &str) -> Verdict {
        Verdict {
            by,
            verdict: Stance::Object,
            code: Some(err.code()),
            reason: err.to_string(),
            hint: err.hint(),
            packet: packet.to_string(),
            derived: false,
        }
    }

    /// An objection because an earlier evaluator refused with `err` (derived).
    fn not_checked(by: &'static str, err: &dyn Coded, packet: &str) -> Verdict {
        Verdict { reason: format!("not checked: {err}"), derived: true, ..Verdict::object(by, err, packet) }
    }

    pub fn attests(&self) -> bool {
        self.verdict == Stance::Attest
    }

    /// Whether this objection only repeats an earlier evaluator's refusal.
    pub fn is_derived(&self) -> bool {
        self.derived
    }
}

impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let objecting = self.verdict == Stance::Object;
        let mut m = s.serialize_map(Some(if objecting { 4 } else { 2 }))?;
        m.serialize_entry("by", self.by)?;
        m.serialize_entry("verdict", &self.verdict)?;
        if objecting {
            m.serialize_entry("code", &self.code)?;
            m.serialize_entry("reason", &self.reason)?;
        }
        m.end()
    }
}

/// The outcome of the rule evaluators on one proposal.
#[derive(Clone, Debug)]
pub struct Gate1 {
    /// The packet hash every verdict is bound to.
    pub packet: String,
    /// `path_ok`, `schema`, `atomic_ok`, `tier`, then the quality rules, in that order.
    pub verdicts: Vec<Verdict>,
    /// Lines added and removed, when every patch resolved against the tree.
    pub stats: Option<LineStats>,
    /// `min(1, lines_changed / budget.max_lines)`, with `stats`.
    pub diff_ratio: Option<f64>,
    /// The size of the resulting file (of the largest, for several patches).
    pub new_bytes: Option<u64>,
}

impl Gate1 {
    /// Whether every evaluator attests.
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(Verdict::attests)
    }

    /// The first objection that is not derived from another: the cause.
    pub fn first_objection(&self) -> Option<&Verdict> {
        let mut objections = self.verdicts.iter().filter(|v| !v.attests());
        self.verdicts.iter().find(|v| !v.attests() && !v.derived).or_else(|| objections.next())
    }

    pub fn verdict(&self, by: &str) -> Option<&Verdict> {
        self.verdicts.iter().find(|v| v.by == by)
    }

    /// The `path_ok` signal: 1 when `rule:path_ok` attests.
    pub fn path_ok(&self) -> bool {
        self.verdict(PATH_OK).is_some_and(Verdict::attests)
    }

    /// The `atomic_ok` signal: 1 when `rule:atomic_ok` attests.
    pub fn atomic_ok(&self) -> bool {
        self.verdict(ATOMIC_OK).is_some_and(Verdict::attests)
    }
}

/// One patch after path safety and resolution against the tree.
struct Checked<'a> {
    patch: &'a Patch,
    /// Why path safety refuses the path.
    refused: Option<PatchError>,
    /// The allow pattern, and the opened target (unless it was too large to read).
    target: Option<(String, Option<Target>)>,
    /// The new contents, or why the patch does not resolve against the tree.
    new: Option<Result<String, PatchError>>,
}

fn check_one<'a>(root: &Path, rails: &Rails, patch: &'a Patch) -> Checked<'a> {
    let refused = |e| Checked { patch, refused: Some(e), target: None, new: None };
    let allow = match path::check(patch.path(), &rails.paths) {
        Ok(allow) => allow.to_string(),
        Err(e) => return refused(e),
    };
    match Target::open(root, patch.path()) {
        Ok(t) => {
            let new = patch::resolve(patch, t.current());
            Checked { patch, refused: None, target: Some((allow, Some(t))), new: Some(new) }
        }
        // A safe path to a file too large to read: a content problem, not a path one.
        Err(e @ PatchError::TargetTooLarge { .. }) => {
            Checked { patch, refused: None, target: Some((allow, None)), new: Some(Err(e)) }
        }
        Err(e) => refused(e),
    }
}

/// The intent a proposal is judged under: its hash binds the verdicts, its
/// text lets `rule:prompt_echo` recognise the intent's heading.
#[derive(Clone, Copy, Debug)]
pub struct IntentRef<'a> {
    pub hash: &'a str,
    pub text: &'a str,
}

impl<'a> From<&'a str> for IntentRef<'a> {
    /// Only the hash is known.
    fn from(hash: &'a str) -> IntentRef<'a> {
        IntentRef { hash, text: "" }
    }
}

impl<'a> From<&'a String> for IntentRef<'a> {
    fn from(hash: &'a String) -> IntentRef<'a> {
        IntentRef { hash, text: "" }
    }
}

impl<'a> From<&'a crate::intent::Intent> for IntentRef<'a> {
    fn from(i: &'a crate::intent::Intent) -> IntentRef<'a> {
        IntentRef { hash: &i.hash, text: &i.text }
    }
}

/// Runs every rule evaluator on `proposal` against the work tree at `root`.
/// `provider_tier` indexes `rails.trust.tiers`; `base` (head commit) and
/// `intent` (hash) bind the verdicts to the packet. Never writes.
pub fn evaluate<'a>(
    root: &Path,
    rails: &Rails,
    provider_tier: usize,
    proposal: &Proposal,
    base: Option<&str>,
    intent: impl Into<IntentRef<'a>>,
) -> Gate1 {
    let intent = intent.into();
    let packet = proposal.packet(base, intent.hash);
    let checked: Vec<Checked> = proposal.patches.iter().map(|patch| check_one(root, rails, patch)).collect();

    // path_ok
    let path_refusal = checked.iter().find_map(|c| c.refused.as_ref());
    let path_ok = match path_refusal {
        Some(e) => Verdict::object(PATH_OK, e, &packet),
        None => Verdict::attest(PATH_OK, join(checked.iter().map(path_reason)), &packet),
    };

    // schema
    let schema_refusal = checked.iter().find_map(|c| c.new.as_ref().and_then(|n| n.as_ref().err()));
    let schema = match (path_refusal, schema_refusal) {
        (Some(e), _) => Verdict::not_checked(SCHEMA, e, &packet),
        (None, Some(e)) => Verdict::object(SCHEMA, e, &packet),
        (None, None) => Verdict::attest(SCHEMA, join(checked.iter().map(schema_reason)), &packet),
    };

    // The numbers, when every patch resolved.
    let mut stats = Some(LineStats::default());
    let mut new_bytes: Option<u64> = Some(0);
    for c in &checked {
        match (&c.target, &c.new) {
            (Some((_, Some(t))), Some(Ok(new))) => {
                let old = t.current().and_then(|b| std::str::from_utf8(b).ok()).unwrap_or("");
                stats = stats.map(|s| s.plus(LineStats::between(old, new)));
                new_bytes = new_bytes.map(|n| n.max(new.len() as u64));
            }
            _ => {
                stats = None;
                new_bytes = None;
            }
        }
    }
    let budget = rails.budget;

    // atomic_ok
    let files = proposal.paths().len();
    let atomic_ok = if proposal.patches.len() > 1 || files as u64 > budget.max_files {
        Verdict::object(ATOMIC_OK, &RuleError::NotAtomic { patches: proposal.patches.len(), files }, &packet)
    } else if let Some(e) = path_refusal.or(schema_refusal) {
        Verdict::not_checked(ATOMIC_OK, e, &packet)
    } else {
        let s = stats.unwrap_or_default();
        let bytes = new_bytes.unwrap_or(0);
        if s.changed() > budget.max_lines {
            let what = format!("{} changed (+{} -{}) is", lines(s.changed()), s.added, s.removed);
            Verdict::object(ATOMIC_OK, &RuleError::OverBudget { what, max: budget.max_lines, lines: true }, &packet)
        } else if bytes > budget.max_bytes {
            let what = format!("{} would be {bytes} bytes,", proposal.patches[0].path());
            Verdict::object(ATOMIC_OK, &RuleError::OverBudget { what, max: budget.max_bytes, lines: false }, &packet)
        } else {
            Verdict::attest(
                ATOMIC_OK,
                format!(
                    "one {} on one file: {} changed (budget {}), {bytes} bytes after (budget {})",
                    proposal.patches[0].op().as_str(),
                    lines(s.changed()),
                    budget.max_lines,
                    budget.max_bytes
                ),
                &packet,
            )
        }
    };

    let tier = tier_verdict(rails, provider_tier, proposal, &packet);

    // The quality rules, on the one patch's file before and after.
    let mut verdicts = vec![path_ok, schema, atomic_ok, tier];
    let single = match (proposal.single(), checked.first()) {
        (Some(_), Some(Checked { target: Some((_, Some(t))), new: Some(Ok(new)), .. })) => Some((t, new)),
        _ => None,
    };
    match single {
        Some((t, new)) => {
            let old = t.current().and_then(|b| std::str::from_utf8(b).ok());
            let path = patch::display_path(proposal.patches[0].path());
            let journal = heartbeat_journal(rails) == path;
            let results = super::quality::check_file(&path, old, new, intent.text, journal);
            for (by, r) in super::quality::EVALUATORS.into_iter().zip(results) {
                verdicts.push(match r {
                    Ok(reason) => Verdict::attest(by, reason, &packet),
                    Err(e) => Verdict::object(by, &e, &packet),
                });
            }
        }
        None => {
            let not_atomic;
            let cause: &dyn Coded = match path_refusal.or(schema_refusal) {
                Some(e) => e,
                None => {
                    not_atomic = RuleError::NotAtomic { patches: proposal.patches.len(), files };
                    &not_atomic
                }
            };
            for by in super::quality::EVALUATORS {
                verdicts.push(Verdict::not_checked(by, cause, &packet));
            }
        }
    }
    Gate1 { packet, verdicts, diff_ratio: stats.map(|s| s.diff_ratio(budget.max_lines)), stats, new_bytes }
}

/// [`evaluate`] on a JSON value that may not even be a proposal: then
/// `rule:schema` objects with `BAD_PATCH` and the others, unable to look,
/// object as derived; the packet hash covers the value as submitted.
pub fn evaluate_value<'a>(
    root: &Path,
    rails: &Rails,
    provider_tier: usize,
    value: &Value,
    base: Option<&str>,
    intent: impl Into<IntentRef<'a>>,
) -> Gate1 {
    let intent = intent.into();
    match Proposal::from_value(value) {
        Ok(proposal) => evaluate(root, rails, provider_tier, &proposal, base, intent),
        Err(e) => {
            let packet = propose::packet_hash(value, base, intent.hash);
            let mut verdicts = vec![
                Verdict::not_checked(PATH_OK, &e, &packet),
                Verdict::object(SCHEMA, &e, &packet),
                Verdict::not_checked(ATOMIC_OK, &e, &packet),
                Verdict::not_checked(TIER, &e, &packet),
            ];
            verdicts.extend(super::quality::EVALUATORS.into_iter().map(|by| Verdict::not_checked(by, &e, &packet)));
            Gate1 { verdicts, packet, stats: None, diff_ratio: None, new_bytes: None }
        }
    }
}

/// The heartbeat's journal: its configured path, else the default one.
fn heartbeat_journal(rails: &Rails) -> &str {
    rails
        .providers
        .values()
        .find_map(|p| match &p.kind {
            crate::rails::ProviderKind::Heartbeat { journal } => Some(journal.as_str()),
            _ => None,
        })
        .unwrap_or("docs/ratchet-journal.md")
}

fn tier_verdict(rails: &Rails, provider_tier: usize, proposal: &Proposal, packet: &str) -> Verdict {
    let tiers = &rails.trust.tiers;
    let Some(top) = tiers.len().checked_sub(1) else {
        return Verdict::attest(TIER, "no trust tiers are configured", packet);
    };
    let current = provider_tier.min(top);
    let name = |i: usize| tiers.get(i).map_or_else(|| format!("#{i}"), |t| t.name.clone());
    let mut reasons = Vec::new();
    for patch in &proposal.patches {
        let p = &patch::display_path(patch.path());
        let required = rails.trust.required_tier(patch.path());
        let described = match rails.trust.tier_of(patch.path()) {
            Some(_) => name(required),
            None => format!("{} (it is in no tier, so it needs the top one)", name(required)),
        };
        if required > current {
            let err = RuleError::TierLocked {
                path: p.to_string(),
                required: described,
                current: name(current),
                current_paths: tiers.get(current).map(|t| t.paths.patterns().to_vec()).unwrap_or_default(),
            };
            return Verdict::object(TIER, &err, packet);
        }
        reasons.push(format!("{p} needs tier {described}; the provider is at tier {}", name(current)));
    }
    Verdict::attest(TIER, reasons.join("; "), packet)
}

fn path_reason(c: &Checked) -> String {
    let Some((allow, target)) = &c.target else { return String::new() };
    let p = c.patch.path();
    let state = match target {
        None => "a regular file".to_string(),
        Some(t) => match t.mode() {
            Some(mode) => format!("a regular file (mode {mode:04o})"),
            None => match t.missing_dirs().as_slice() {
                [] => "absent".to_string(),
                dirs => format!("absent (creates {})", dirs.join(", ")),
            },
        },
    };
    format!("{p}: allowed by {allow}; not protected; no symlink on the path; {state}")
}

fn schema_reason(c: &Checked) -> String {
    let p = c.patch.path();
    match c.patch {
        Patch::Create { .. } => format!("create: {p} is absent"),
        Patch::Append { .. } => format!("append: {p} exists and is UTF-8 text"),
        Patch::Replace { old: Some(_), .. } => format!("replace: the old text occurs exactly once in {p}"),
        Patch::Replace { old: None, .. } => {
            format!("replace: {p} exists and is UTF-8 text; the whole file is replaced")
        }
    }
}

fn lines(n: u64) -> String {
    if n == 1 { "1 line".into() } else { format!("{n} lines") }
}

fn join(parts: impl Iterator<Item = String>) -> String {
    parts.collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rails(extra: &str) -> Rails {
        crate::rails::parse(
            &format!(
                "[paths]\nallow = [\"docs/**\", \"src/**\", \"*.md\"]\n{extra}\n\
                 [[trust.tiers]]\nname = \"docs\"\npaths = [\"docs/**\", \"*.md\"]\n\
                 [[trust.tiers]]\nname = \"code\"\npaths = [\"src/**\"]\n"
            ),
            "",
        )
        .unwrap()
    }

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("docs")).unwrap();
        std::fs::create_dir_all(t.path().join("src")).unwrap();
        std::fs::write(t.path().join("docs/a.md"), "one\ntwo\nthree\n").unwrap();
        std::fs::write(t.path().join("src/lib.rs"), "fn main() {}\n").unwrap();
        t
    }

    fn run(t: &tempfile::TempDir, rails: &Rails, tier: usize, json: &str) -> Gate1 {
        let value = propose::parse_json(json).unwrap();
        evaluate_value(t.path(), rails, tier, &value, Some("base"), "intent")
    }

    fn codes(g: &Gate1) -> Vec<Option<&'static str>> {
        g.verdicts.iter().map(|v| v.code).collect()
    }

    #[test]
    fn a_clean_patch_passes_every_rule() {
        let t = tree();
        let g = run(&t, &rails(""), 0, r#"{"op":"replace","path":"docs/a.md","old":"two","new":"2"}"#);
        assert!(g.passed(), "{:#?}", g.verdicts);
        assert_eq!(g.stats, Some(LineStats { added: 1, removed: 1 }));
        assert_eq!(g.diff_ratio, Some(crate::score::diff_ratio(2, 120)));
        assert_eq!(g.new_bytes, Some(12));
        assert!(g.path_ok() && g.atomic_ok());
        assert!(g.verdicts.iter().all(|v| v.packet == g.packet));
        let by: Vec<_> = g.verdicts.iter().map(|v| v.by).collect();
        assert_eq!(by[..4], [PATH_OK, SCHEMA, ATOMIC_OK, TIER]);
        assert_eq!(by[4..], super::super::quality::EVALUATORS);
        assert_eq!(
            serde_json::to_value(&g.verdicts[0]).unwrap(),
            serde_json::json!({"by":"rule:path_ok","verdict":"attest"})
        );
    }

    #[test]
    fn a_protected_path_is_the_cause_and_schema_is_derived() {
        let t = tree();
        let g = run(&t, &rails(""), 1, r#"{"op":"create","path":"Config/rails.toml","content":"x"}"#);
        let first = g.first_objection().unwrap();
        assert_eq!((first.by, first.code), (PATH_OK, Some("PATH_PROTECTED")));
        assert!(g.verdicts[1].is_derived() && g.verdicts[1].reason.starts_with("not checked:"));
        assert_eq!(
            serde_json::to_value(first).unwrap(),
            serde_json::json!({"by":"rule:path_ok","verdict":"object","code":"PATH_PROTECTED",
                               "reason":"Config/rails.toml is protected (matches config/**)"})
        );
    }

    #[test]
    fn paths_deny_beats_allow_in_any_case() {
        let t = tree();
        let r = rails("deny = [\"docs/secret/**\"]");
        for path in ["docs/secret/a.md", "DOCS/Secret/a.md"] {
            let g = run(&t, &r, 0, &format!(r#"{{"op":"create","path":"{path}","content":"x"}}"#));
            let v = g.first_objection().unwrap();
            assert_eq!((v.by, v.code), (PATH_OK, Some("PATH_PROTECTED")), "{path}");
        }
        assert!(run(&t, &r, 0, r#"{"op":"create","path":"docs/public.md","content":"x"}"#).passed());
    }

    #[test]
    fn malformed_input_objects_with_bad_patch_from_schema() {
        let t = tree();
        let g = run(&t, &rails(""), 0, r#"{"op":"create","path":"docs/x.md"}"#);
        assert_eq!(codes(&g), vec![Some("BAD_PATCH"); 8]);
        let first = g.first_objection().unwrap();
        assert_eq!((first.by, first.reason.as_str()), (SCHEMA, "content is missing"));
        assert_eq!(
            g.packet,
            propose::packet_hash(&serde_json::json!({"op":"create","path":"docs/x.md"}), Some("base"), "intent")
        );
    }

    #[test]
    fn schema_objections() {
        let t = tree();
        let r = rails("");
        let code = |json: &str| run(&t, &r, 0, json).first_objection().map(|v| (v.by, v.code.unwrap_or("")));
        assert_eq!(
            code(r#"{"op":"replace","path":"docs/a.md","old":"zzz","new":"2"}"#),
            Some((SCHEMA, "OLD_TEXT_NOT_FOUND"))
        );
        assert_eq!(
            code(r#"{"op":"replace","path":"docs/a.md","old":"o","new":"2"}"#),
            Some((SCHEMA, "OLD_TEXT_AMBIGUOUS"))
        );
        assert_eq!(code(r#"{"op":"create","path":"docs/a.md","content":"x"}"#), Some((SCHEMA, "TARGET_EXISTS")));
        assert_eq!(code(r#"{"op":"append","path":"docs/b.md","content":"x"}"#), Some((SCHEMA, "TARGET_MISSING")));
        assert_eq!(code(r#"{"op":"replace","path":"docs/b.md","new":"x"}"#), Some((SCHEMA, "TARGET_MISSING")));
        std::fs::write(t.path().join("docs/bin.md"), b"\xff\xfe").unwrap();
        assert_eq!(code(r#"{"op":"append","path":"docs/bin.md","content":"x"}"#), Some((SCHEMA, "NOT_UTF8")));
    }

    #[test]
    fn budgets_pass_at_the_limit_and_fail_one_over() {
        let t = tree();
        // Lines: a create of N lines changes N lines.
        let r = rails("[budget]\nmax_lines = 3\nmax_bytes = 10\n");
        let g = run(&t, &r, 0, r#"{"op":"create","path":"docs/n.md","content":"a\nb\nc\n"}"#);
        assert!(g.passed(), "{:#?}", g.verdicts);
        let g = run(&t, &r, 0, r#"{"op":"create","path":"docs/n.md","content":"a\nb\nc\nd\n"}"#);
        let v = g.first_objection().unwrap();
        assert_eq!((v.by, v.code), (ATOMIC_OK, Some("OVER_BUDGET")));
        assert_eq!(v.reason, "4 lines changed (+4 -0) is over the budget of 3 ([budget] max_lines)");
        // Bytes: the size of the resulting file.
        let g = run(&t, &r, 0, r#"{"op":"create","path":"docs/n.md","content":"0123456789"}"#);
        assert!(g.passed(), "{:#?}", g.verdicts);
        let g = run(&t, &r, 0, r#"{"op":"create","path":"docs/n.md","content":"0123456789A"}"#);
        let v = g.first_objection().unwrap();
        assert_eq!((v.by, v.code), (ATOMIC_OK, Some("OVER_BUDGET")));
        assert_eq!(v.reason, "docs/n.md would be 11 bytes, over the budget of 10 ([budget] max_bytes)");
        // An append counts the whole resulting file.
        let g = run(&t, &r, 0, r#"{"op":"append","path":"docs/a.md","content":"x"}"#);
        assert_eq!(g.first_objection().unwrap().code, Some("OVER_BUDGET"));
    }

    #[test]
    fn several_patches_are_not_atomic() {
        let t = tree();
        let g = run(
            &t,
            &rails(""),
            0,
            r#"{"rationale":"r","patch":[{"op":"append","path":"docs/a.md","content":"x"},{"op":"create","path":"docs/c.md","content":"y"}]}"#,
        );
        let v = g.first_objection().unwrap();
        assert_eq!((v.by, v.code), (ATOMIC_OK, Some("NOT_ATOMIC")));
        assert_eq!(v.reason, "the proposal carries 2 patches on 2 file(s); a step is one op on one file");
        // Two ops on the same file are still two ops.
        let g = run(
            &t,
            &rails(""),
            0,
            r#"[{"op":"append","path":"docs/a.md","content":"x"},{"op":"append","path":"docs/a.md","content":"y"}]"#,
        );
        assert_eq!(g.first_objection().unwrap().code, Some("NOT_ATOMIC"));
    }

    #[test]
    fn quality_rules_run_on_the_resolved_file_and_are_derived_when_it_does_not_resolve() {
        let t = tree();
        let r = rails("");
        let g = run(&t, &r, 0, r#"{"op":"replace","path":"docs/a.md","old":"two","new":"two"}"#);
        let v = g.first_objection().unwrap();
        assert_eq!((v.by, v.code), (super::super::quality::NO_CHANGE, Some("NO_CHANGE")));
        let g = run(&t, &r, 0, r#"{"op":"replace","path":"docs/a.md","old":"zzz","new":"two"}"#);
        assert_eq!(g.first_objection().unwrap().code, Some("OLD_TEXT_NOT_FOUND"), "the cause, not a derived one");
        assert!(g.verdicts[4..].iter().all(|v| v.is_derived()));
        // The intent's heading is an echo only when the intent's text is known.
        let json = r##"{"op":"append","path":"docs/a.md","content":"# Make the docs better\n"}"##;
        let value = propose::parse_json(json).unwrap();
        let intent =
            crate::intent::Intent { name: "i".into(), text: "# Make the docs better\n".into(), hash: "h".into() };
        let g = evaluate_value(t.path(), &r, 0, &value, None, &intent);
        assert_eq!(g.first_objection().unwrap().code, Some("PROMPT_ECHO"));
        assert!(evaluate_value(t.path(), &r, 0, &value, None, "h").passed());
    }

    #[test]
    fn no_reason_carries_a_control_character() {
        let t = tree();
        for path in [r"docs/\u001b[2J.md", r"\u001b]0;pwned\u0007", r"src/\u009b31m"] {
            let g = run(&t, &rails(""), 0, &format!(r#"{{"op":"create","path":"{path}","content":"x"}}"#));
            for v in &g.verdicts {
                assert!(!v.reason.chars().any(char::is_control), "{path}: {}", v.reason);
            }
        }
    }

    #[test]
    fn a_file_too_large_to_read_is_a_schema_objection_not_a_path_one() {
        let t = tree();
        let big = vec![b'x'; (patch::MAX_TARGET_BYTES + 1) as usize];
        std::fs::write(t.path().join("docs/big.md"), big).unwrap();
        let g = run(&t, &rails(""), 0, r#"{"op":"append","path":"docs/big.md","content":"x"}"#);
        assert!(g.path_ok(), "{:#?}", g.verdicts);
        let v = g.first_objection().unwrap();
        assert_eq!((v.by, v.code), (SCHEMA, Some("TARGET_TOO_LARGE")));
    }

    #[test]
    fn tiers_lock_paths_above_the_provider() {
        let t = tree();
        let r = rails("");
        let g = run(&t, &r, 0, r#"{"op":"append","path":"src/lib.rs","content":"//\n"}"#);
        let v = g.first_objection().unwrap();
        assert_eq!((v.by, v.code), (TIER, Some("TIER_LOCKED")));
        assert_eq!(v.reason, "src/lib.rs needs tier code; the provider is at tier docs");
        assert!(run(&t, &r, 1, r#"{"op":"append","path":"src/lib.rs","content":"//\n"}"#).passed());
        assert!(run(&t, &r, 0, r#"{"op":"append","path":"docs/a.md","content":"x\n"}"#).passed());
    }
}

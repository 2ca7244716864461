//! Golden backtests (DESIGN §10, seed 003 principle 10).
//!
//! `golden/*.json` hold scored examples and the order they must keep:
//!
//! ```json
//! { "description": "...",
//!   "cases": [ {"id": "clean-small", "note": "...", "signals": {"ci_pass": 1, ...}} ],
//!   "order": ["clean-small", ["tie-a", "tie-b"], "rejected"] }
//! ```
//!
//! A case may instead give a full proposal and a fixture to score it
//! against: `{"id", "proposal": {...}, "fixture": {"path": "text", ...},
//! "ci_pass": 1, "human_score": 0.8}`. Gate 1's rule evaluators then run
//! under the current rails on the fixture (written to a temporary folder),
//! and give `path_ok`, `atomic_ok` and `diff_ratio`; the proposal's next
//! steps give `left_next_steps`. So a change to the evaluators or the
//! budgets is backtested too, not only a change to the weights.
//!
//! `order` runs from best to worst; an inner array is a group of equal rank.
//! A check scores every case under the current rails and fails when any pair
//! of cases from different groups no longer keeps its order (a flip, or a tie
//! where the order was strict). It reports Kendall's tau over those pairs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Coded;
use crate::rails::Rails;
use crate::score::{Signals, utility};

#[derive(Debug, thiserror::Error)]
pub enum GoldenError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("no golden cases in {dir}")]
    Empty { dir: String },
}

impl Coded for GoldenError {
    fn code(&self) -> &'static str {
        match self {
            GoldenError::Read { .. } => "IO_ERROR",
            GoldenError::Invalid { .. } => "GOLDEN_INVALID",
            GoldenError::Empty { .. } => "GOLDEN_EMPTY",
        }
    }
    fn hint(&self) -> Option<String> {
        Some(match self {
            GoldenError::Read { path, .. } => format!("check that {} is readable", path.display()),
            GoldenError::Invalid { .. } => {
                "fix the golden file: each case needs an id and signals; order lists every id once".into()
            }
            GoldenError::Empty { .. } => "add golden cases (ratchet init writes a starter set)".into(),
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GoldenFile {
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    cases: Vec<Case>,
    order: Vec<Rank>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    id: String,
    #[serde(default)]
    #[allow(dead_code)]
    note: String,
    signals: Option<Signals>,
    proposal: Option<serde_json::Value>,
    #[serde(default)]
    fixture: BTreeMap<String, String>,
    ci_pass: Option<f64>,
    human_score: Option<f64>,
}

impl Case {
    /// The case's signals: given, or derived by Gate 1 from its proposal.
    fn signals(&self, rails: &Rails) -> Result<Signals, String> {
        match (&self.signals, &self.proposal) {
            (Some(s), None) => Ok(*s),
            (None, Some(proposal)) => {
                let dir = tempfile::tempdir().map_err(|e| format!("cannot make a fixture folder: {e}"))?;
                for (path, text) in &self.fixture {
                    let p = std::path::Path::new(path);
                    if p.is_absolute() || p.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
                        return Err(format!("fixture path {path:?} must stay inside the fixture"));
                    }
                    let abs = dir.path().join(p);
                    if let Some(parent) = abs.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
                    }
                    std::fs::write(&abs, text).map_err(|e| e.to_string())?;
                }
                let top = rails.trust.tiers.len().saturating_sub(1);
                let g = crate::gate::evaluate_value(dir.path(), rails, top, proposal, None, "golden");
                let next = proposal["next_steps"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|n| n.as_str().is_some_and(|t| !t.trim().is_empty())));
                Ok(Signals {
                    ci_pass: self.ci_pass.unwrap_or(0.0),
                    path_ok: if g.path_ok() { 1.0 } else { 0.0 },
                    diff_ratio: g.diff_ratio.unwrap_or(1.0),
                    atomic_ok: if g.atomic_ok() { 1.0 } else { 0.0 },
                    left_next_steps: if next { 1.0 } else { 0.0 },
                    human_score: self.human_score.unwrap_or(0.0),
                })
            }
            _ => Err("give either signals, or a proposal (with its fixture)".into()),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum Rank {
    One(String),
    Tied(Vec<String>),
}

/// One scored case.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scored {
    pub id: String,
    pub utility: f64,
    /// 1-based rank the golden file expects (tied cases share it).
    pub expected_rank: usize,
    /// 1-based rank by utility now (equal utilities share it).
    pub actual_rank: usize,
}

/// A pair of cases whose order changed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Flip {
    /// Expected to rank above `below`.
    pub above: String,
    pub below: String,
    pub above_utility: f64,
    pub below_utility: f64,
    /// `true` when the two now score the same.
    pub tied: bool,
}

/// The outcome for one golden file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FileReport {
    pub file: String,
    pub cases: Vec<Scored>,
    /// Kendall's tau-a over the ordered pairs: 1 when every pair keeps its order.
    pub tau: f64,
    pub pairs: usize,
    pub flips: Vec<Flip>,
}

/// The outcome of a whole check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub files: Vec<FileReport>,
    pub ok: bool,
}

/// Scores every golden file in `dir` under `rails`. `name_prefix` is
/// prepended to file names in the report (the home-relative folder).
pub fn check(dir: &Path, name_prefix: &str, rails: &Rails) -> Result<Report, GoldenError> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json") && p.is_file())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(GoldenError::Read { path: dir.into(), source }),
    };
    paths.sort();
    if paths.is_empty() {
        return Err(GoldenError::Empty { dir: name_prefix.trim_end_matches('/').to_string() });
    }
    let mut files = Vec::new();
    for path in paths {
        let name = format!("{name_prefix}{}", path.file_name().unwrap_or_default().to_string_lossy());
        let text = std::fs::read_to_string(&path).map_err(|source| GoldenError::Read { path: path.clone(), source })?;
        let file: GoldenFile = serde_json::from_str(&text)
            .map_err(|e| GoldenError::Invalid { file: name.clone(), reason: e.to_string() })?;
        files.push(check_file(&name, &file, rails)?);
    }
    let ok = files.iter().all(|f| f.flips.is_empty());
    Ok(Report { files, ok })
}

fn check_file(name: &str, file: &GoldenFile, rails: &Rails) -> Result<FileReport, GoldenError> {
    let invalid = |reason: String| GoldenError::Invalid { file: name.to_string(), reason };
    let mut utilities = BTreeMap::new();
    for case in &file.cases {
        let signals = case.signals(rails).map_err(|e| invalid(format!("case {:?}: {e}", case.id)))?;
        signals.validate().map_err(|e| invalid(format!("case {:?}: {e}", case.id)))?;
        if utilities.insert(case.id.clone(), utility(&signals, &rails.utility.weights)).is_some() {
            return Err(invalid(format!("case id {:?} appears twice", case.id)));
        }
    }
    // Expected rank of each id, from `order`.
    let mut expected: Vec<(String, usize)> = Vec::new();
    for (i, rank) in file.order.iter().enumerate() {
        let ids = match rank {
            Rank::One(id) => std::slice::from_ref(id),
            Rank::Tied(ids) => ids.as_slice(),
        };
        for id in ids {
            if !utilities.contains_key(id) {
                return Err(invalid(format!("order names {id:?}, which is not a case")));
            }
            if expected.iter().any(|(e, _)| e == id) {
                return Err(invalid(format!("order names {id:?} twice")));
            }
            expected.push((id.clone(), i + 1));
        }
    }
    if let Some(missing) = utilities.keys().find(|id| !expected.iter().any(|(e, _)| e == *id)) {
        return Err(invalid(format!("case {missing:?} is not in order")));
    }

    let mut pairs = 0usize;
    let mut concordant = 0usize;
    let mut discordant = 0usize;
    let mut flips = Vec::new();
    for (i, (a, ra)) in expected.iter().enumerate() {
        for (b, rb) in &expected[i + 1..] {
            if ra == rb {
                continue;
            }
            pairs += 1;
            let (ua, ub) = (utilities[a], utilities[b]);
            if ua > ub {
                concordant += 1;
            } else {
                if ua < ub {
                    discordant += 1;
                }
                flips.push(Flip {
                    above: a.clone(),
                    below: b.clone(),
                    above_utility: ua,
                    below_utility: ub,
                    tied: ua == ub,
                });
            }
        }
    }
    let tau =
        if pairs == 0 { 1.0 } else { crate::score::round((concordant as f64 - discordant as f64) / pairs as f64) };

    let cases = expected
        .iter()
        .map(|(id, rank)| {
            let u = utilities[id];
            let actual_rank = 1 + utilities.values().filter(|&&other| other > u).count();
            Scored { id: id.clone(), utility: u, expected_rank: *rank, actual_rank }
        })
        .collect();
    Ok(FileReport { file: name.to_string(), cases, tau, pairs, flips })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STARTER: &str = include_str!("../golden/starter.json");

    use crate::score::Weights;

    fn rails_with(w: &Weights) -> Rails {
        let mut rails = crate::rails::parse(include_str!("../config/rails.toml"), "").unwrap();
        rails.utility.weights = *w;
        rails
    }

    fn run(text: &str, w: &Weights) -> Result<FileReport, GoldenError> {
        let file: GoldenFile = serde_json::from_str(text).unwrap();
        check_file("golden/x.json", &file, &rails_with(w))
    }

    #[test]
    fn the_starter_set_keeps_its_order_under_the_seed_weights() {
        let r = run(STARTER, &Weights::SEED).unwrap();
        assert!(r.flips.is_empty(), "{:?}", r.flips);
        assert_eq!(r.tau, 1.0);
        assert!(r.cases.windows(2).all(|w| w[0].actual_rank <= w[1].actual_rank), "{:?}", r.cases);
        assert_eq!(r.cases[0].utility, 0.985);
    }

    #[test]
    fn weights_that_reverse_the_order_flip_pairs() {
        // All weight on diff_ratio: the small failed patch now beats the large merged one.
        let w = Weights {
            ci_pass: 0.0,
            path_ok: 0.0,
            diff_ratio: 1.0,
            atomic_ok: 0.0,
            left_next_steps: 0.0,
            human_score: 0.0,
        };
        let r = run(STARTER, &w).unwrap();
        assert!(!r.flips.is_empty());
        assert!(r.tau < 1.0);
    }

    #[test]
    fn ties_between_ranks_are_flips_and_tied_groups_are_not_compared() {
        let sig = r#"{"ci_pass":1,"path_ok":1,"diff_ratio":0.1,"atomic_ok":1,"left_next_steps":1,"human_score":1}"#;
        let text =
            format!(r#"{{"cases":[{{"id":"a","signals":{sig}}},{{"id":"b","signals":{sig}}}],"order":["a","b"]}}"#);
        let r = run(&text, &Weights::SEED).unwrap();
        assert_eq!(r.flips.len(), 1);
        assert!(r.flips[0].tied);
        assert_eq!(r.tau, 0.0);
        let text =
            format!(r#"{{"cases":[{{"id":"a","signals":{sig}}},{{"id":"b","signals":{sig}}}],"order":[["a","b"]]}}"#);
        assert!(run(&text, &Weights::SEED).unwrap().flips.is_empty());
    }

    #[test]
    fn kendall_tau_counts_concordant_minus_discordant() {
        let s = |h: f64| {
            format!(r#"{{"ci_pass":1,"path_ok":1,"diff_ratio":0,"atomic_ok":1,"left_next_steps":1,"human_score":{h}}}"#)
        };
        // Expected a > b > c, actual c > a > b: pairs ab +, ac -, bc -: tau = (1-2)/3.
        let text = format!(
            r#"{{"cases":[{{"id":"a","signals":{}}},{{"id":"b","signals":{}}},{{"id":"c","signals":{}}}],"order":["a","b","c"]}}"#,
            s(0.5),
            s(0.2),
            s(0.9)
        );
        let r = run(&text, &Weights::SEED).unwrap();
        assert_eq!(r.tau, crate::score::round(-1.0 / 3.0));
        assert_eq!(r.flips.len(), 2);
    }

    #[test]
    fn proposal_cases_are_scored_by_gate1_on_their_fixture() {
        let text = r#"{"cases": [
            {"id": "small", "fixture": {"docs/a.md": "one\n"}, "ci_pass": 1, "human_score": 1,
             "proposal": {"rationale": "r", "patch": {"op": "append", "path": "docs/a.md", "content": "two\n"}, "next_steps": ["x"]}},
            {"id": "protected", "ci_pass": 0, "human_score": 0,
             "proposal": {"rationale": "r", "patch": {"op": "create", "path": "config/x.toml", "content": "x"}, "next_steps": []}}
          ], "order": ["small", "protected"]}"#;
        let r = run(text, &Weights::SEED).unwrap();
        assert!(r.flips.is_empty(), "{:?}", r.flips);
        // One line appended of a 120-line budget: 0.3+0.15+0.15*(1-1/120)+0.1+0.1+0.2.
        assert_eq!(r.cases[0].utility, crate::score::round(0.85 + 0.15 * (1.0 - 1.0 / 120.0)));
        assert_eq!(r.cases[1].utility, 0.0, "a protected path: no path_ok, not atomic, full diff ratio");
        // Evaluators and budgets are backtested too: over a byte budget the
        // same proposal loses atomic_ok.
        let mut rails = rails_with(&Weights::SEED);
        rails.budget.max_bytes = 3;
        let file: GoldenFile = serde_json::from_str(text).unwrap();
        let r = check_file("golden/x.json", &file, &rails).unwrap();
        assert_eq!(r.cases[0].utility, crate::score::round(0.75 + 0.15 * (1.0 - 1.0 / 120.0)));
    }

    #[test]
    fn a_fixture_cannot_escape_its_folder() {
        let text = r#"{"cases": [{"id": "x", "fixture": {"../evil": "x"}, "proposal": {"rationale": "r", "patch": {"op": "create", "path": "docs/a.md", "content": "x"}}}], "order": ["x"]}"#;
        assert!(run(text, &Weights::SEED).unwrap_err().to_string().contains("must stay inside the fixture"));
    }

    #[test]
    fn an_order_that_misses_a_case_is_invalid() {
        let sig = r#"{"ci_pass":1,"path_ok":1,"diff_ratio":0.1,"atomic_ok":1,"left_next_steps":1,"human_score":1}"#;
        let text = format!(r#"{{"cases":[{{"id":"a","signals":{sig}}},{{"id":"b","signals":{sig}}}],"order":["a"]}}"#);
        let e = run(&text, &Weights::SEED).unwrap_err();
        assert!(e.to_string().contains("case \"b\" is not in order"), "{e}");
    }
}

//! The minimal context a provider gets (DESIGN §3 "Propose"; seed 003
//! principle 8), and nothing else: the intent, the last few cycles, a slice
//! of the file index ranked for the focus with the focused files' contents,
//! the focus, the rails that bind the provider, and the base commit. No
//! secrets, no protected files, no paths outside the allowlist.

use serde::Serialize;

use crate::history::History;
use crate::intent::Intent;
use crate::rails::{PathClass, Rails};

/// What the step is about.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Focus {
    /// `pain:<id>`, `next:<step-id>#<n>` or `intent`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The pain's title, the next step's text, or the intent's name.
    pub text: String,
    /// Evidence references for a pain (span ids, counts).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// For a pain: its improvement packet's essentials ([`crate::propose::pain`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pain: Option<Box<crate::propose::pain::PainBrief>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Context {
    pub intent: IntentView,
    pub recent: Vec<Cycle>,
    pub files: Vec<FileEntry>,
    pub contents: Vec<FileContent>,
    pub focus: Focus,
    pub rails: Binding,
    pub base: Option<String>,
    /// The passages model providers were shown in the kept history, oldest
    /// first (for moving on through the docs); never sent to a provider.
    #[serde(skip)]
    pub reviewed: Vec<crate::record::Passage>,
}

#[derive(Clone, Debug, Serialize)]
pub struct IntentView {
    pub hash: String,
    pub name: String,
    pub text: String,
}

/// One recent cycle.
#[derive(Clone, Debug, Serialize)]
pub struct Cycle {
    pub id: String,
    pub provider: String,
    pub outcome: String,
    pub utility: Option<f64>,
    pub summary: String,
    /// The path the cycle's patch targeted, if it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The code of its first Gate 1 objection (or its reason, for a failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileEntry {
    pub path: String,
    pub lines: u64,
    /// The trust tier a patch to this path needs.
    pub tier: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileContent {
    pub path: String,
    pub text: String,
    pub truncated: bool,
}

/// The rails that bind this provider.
#[derive(Clone, Debug, Serialize)]
pub struct Binding {
    pub provider: String,
    pub allow: Vec<String>,
    pub max_lines: u64,
    pub max_bytes: u64,
    pub max_files: u64,
    /// The provider's tier and the path patterns open to it.
    pub tier: Option<String>,
    pub tier_paths: Vec<String>,
}

/// Everything the context is built from.
pub struct Inputs<'a> {
    pub rails: &'a Rails,
    pub intent: &'a Intent,
    pub history: &'a History,
    pub focus: Focus,
    pub provider: &'a str,
    /// The provider's tier index.
    pub tier: usize,
    pub base: Option<String>,
    /// Tracked paths of the work tree.
    pub tracked: &'a [&'a str],
    pub root: &'a std::path::Path,
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() >= 3).map(|w| w.to_lowercase()).collect()
}

/// Builds the context.
pub fn build(inputs: Inputs<'_>) -> Context {
    let rails = inputs.rails;
    let limits = rails.context;
    let recent = inputs
        .history
        .steps()
        .iter()
        .rev()
        .take(limits.recent as usize)
        .map(|s| Cycle {
            id: s.id.clone(),
            provider: s.pick.provider.clone(),
            outcome: s.outcome().word().to_string(),
            utility: s.utility(),
            summary: match &s.body.proposal {
                Some(p) => format!("{} {}: {}", p.op, p.path, first_line(&p.rationale)),
                None => s.body.detail.clone().or(s.body.reason.map(|r| r.word().to_string())).unwrap_or_default(),
            },
            path: s.body.proposal.as_ref().map(|p| p.path.clone()).or_else(|| s.body.target.clone()),
            code: s
                .body
                .gate1
                .iter()
                .find(|v| {
                    v.verdict == crate::record::Stance::Object
                        && !v.reason.as_deref().unwrap_or("").starts_with("not checked:")
                })
                .and_then(|v| v.code.clone())
                .or_else(|| s.body.reason.filter(|r| *r != crate::record::Reason::Gate1).map(|r| r.word().to_string())),
        })
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();

    // A pain's brief: its frames mapped to tracked files, within its share of the budget.
    let mut focus = inputs.focus;
    let mut budget = limits.max_bytes as usize;
    if let Some(brief) = &mut focus.pain {
        brief.map_frames(inputs.tracked);
        if brief.fit(crate::propose::pain::budget(budget)) {
            budget -= brief.size();
        } else {
            focus.pain = None;
        }
    }
    let frame_paths: Vec<String> =
        focus.pain.as_ref().map(|b| b.frame_paths().into_iter().map(str::to_string).collect()).unwrap_or_default();

    // Allowlisted, unprotected files, ranked by how many distinct focus words their path holds.
    let mut focus_words = words(&format!("{} {}", focus.text, focus.reference));
    focus_words.sort_unstable();
    focus_words.dedup();
    let finders: Vec<memchr::memmem::Finder<'_>> =
        focus_words.iter().map(|w| memchr::memmem::Finder::new(w.as_bytes())).collect();
    let mut lower = String::new();
    let mut scored: Vec<(usize, &str)> = inputs
        .tracked
        .iter()
        .map(|&p| {
            if finders.is_empty() {
                return (0, p);
            }
            lower.clear();
            if p.is_ascii() {
                lower.push_str(p);
                lower.make_ascii_lowercase();
            } else {
                lower.extend(p.chars().flat_map(char::to_lowercase));
            }
            (finders.iter().filter(|f| f.find(lower.as_bytes()).is_some()).count(), p)
        })
        .collect();
    // The files a pain's frames name come first; assets never rank.
    for s in &mut scored {
        s.0 = crate::propose::pain::rank(s.0, s.1, &frame_paths);
    }
    // Best score first, then path order (a stable sort keeps it within a score).
    if !scored.is_sorted_by(|a, b| a.1 <= b.1) {
        scored.sort_unstable_by(|a, b| a.1.cmp(b.1));
    }
    scored.sort_by_key(|s| std::cmp::Reverse(s.0));
    // Classifying a path costs more than scoring it: stop at the first
    // `max_files` that are allowed.
    let ranked: Vec<(usize, &str)> = scored
        .into_iter()
        .filter(|(_, p)| matches!(rails.paths.classify(p), PathClass::Allowed(_)))
        .take(limits.max_files as usize)
        .collect();

    let mut files = Vec::with_capacity(ranked.len());
    let mut contents = Vec::new();
    for (score, path) in &ranked {
        // Through the same no-symlink walk as a patch: a tracked symlink to
        // a secret outside the tree is never read into a provider's context.
        let bytes = crate::patch::Target::open(inputs.root, path)
            .ok()
            .and_then(|t| t.current().map(<[u8]>::to_vec))
            .unwrap_or_default();
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        files.push(FileEntry {
            path: path.to_string(),
            lines,
            tier: rails.trust.tier_of(path).map(|i| rails.trust.tiers[i].name.clone()),
        });
        // Assets (SVG, lock files, minified or generated files) are listed
        // but never read into the context, nor counted against max_bytes.
        if *score > 0 && budget > 0 && !crate::assets::is_asset(path, &bytes) {
            if let Ok(text) = String::from_utf8(bytes) {
                let mut cut = text.len().min(budget);
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                budget -= cut;
                contents.push(FileContent {
                    path: path.to_string(),
                    truncated: cut < text.len(),
                    text: text[..cut].to_string(),
                });
            }
        }
    }

    let tiers = &rails.trust.tiers;
    let tier = tiers.get(inputs.tier);
    Context {
        intent: IntentView {
            hash: inputs.intent.hash.clone(),
            name: inputs.intent.name.clone(),
            text: inputs.intent.text.clone(),
        },
        recent,
        files,
        contents,
        focus,
        rails: Binding {
            provider: inputs.provider.to_string(),
            allow: rails.paths.allow.patterns().to_vec(),
            max_lines: rails.budget.max_lines,
            max_bytes: rails.budget.max_bytes,
            max_files: rails.budget.max_files,
            tier: tier.map(|t| t.name.clone()),
            tier_paths: tiers.iter().take(inputs.tier + 1).flat_map(|t| t.paths.patterns().to_vec()).collect(),
        },
        base: inputs.base,
        reviewed: inputs.history.steps().iter().filter_map(|s| s.body.passage.clone()).collect(),
    }
}

fn first_line(text: &str) -> &str {
    let line = text.lines().next().unwrap_or("");
    match line.char_indices().nth(120) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_for(focus: &str, tracked: &[&str], max_files: u32) -> Vec<String> {
        let mut rails = crate::rails::parse(crate::init::RAILS_TEMPLATE, "").unwrap();
        rails.context.max_files = max_files;
        let intent = Intent { name: "i".into(), text: "t".into(), hash: "h".into() };
        let history = History::default();
        let root = tempfile::tempdir().unwrap();
        let ctx = build(Inputs {
            rails: &rails,
            intent: &intent,
            history: &history,
            focus: Focus { reference: "intent".into(), text: focus.into(), evidence: vec![], pain: None },
            provider: "self",
            tier: 0,
            base: None,
            tracked,
            root: root.path(),
        });
        ctx.files.into_iter().map(|f| f.path).collect()
    }

    #[test]
    fn the_files_a_pains_frames_name_rank_first_and_assets_never_rank() {
        use crate::propose::pain::{FrameBrief, PainBrief};
        let mut rails = crate::rails::parse(crate::init::RAILS_TEMPLATE, "").unwrap();
        rails.context.max_files = 10;
        let intent = Intent { name: "i".into(), text: "t".into(), hash: "h".into() };
        let history = History::default();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("src/checkout")).unwrap();
        std::fs::create_dir_all(root.path().join("docs")).unwrap();
        std::fs::write(root.path().join("src/checkout/cart.rs"), "fn add() {}\n").unwrap();
        std::fs::write(root.path().join("docs/checkout-logo.svg"), "<svg/>\n").unwrap();
        std::fs::write(root.path().join("docs/checkout.md"), "# checkout\n").unwrap();
        let frame = |file: &str, line| FrameBrief { file: file.into(), function: "add".into(), line, path: None };
        let brief = PainBrief {
            pain_id: "pn_0123456789abcdef".into(),
            signal_type: "exception".into(),
            count: 3,
            rate_per_1k: 10.0,
            exception: None,
            frames: vec![frame("/srv/app/src/checkout/cart.rs", Some(1)), frame("/usr/lib/x.rs", None)],
            sample: None,
            over_represented: vec![],
            eval_candidate: None,
            plan: vec!["x".repeat(100_000)],
        };
        let tracked = ["docs/checkout-logo.svg", "docs/checkout.md", "src/checkout/cart.rs"];
        let ctx = build(Inputs {
            rails: &rails,
            intent: &intent,
            history: &history,
            focus: Focus {
                reference: "pain:pn_0123456789abcdef".into(),
                text: "TypeError in checkout: POST /checkout".into(),
                evidence: vec![],
                pain: Some(Box::new(brief)),
            },
            provider: "self",
            tier: 0,
            base: None,
            tracked: &tracked,
            root: root.path(),
        });
        let files: Vec<&str> = ctx.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(files, ["src/checkout/cart.rs", "docs/checkout.md", "docs/checkout-logo.svg"]);
        let contents: Vec<&str> = ctx.contents.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(contents, ["src/checkout/cart.rs", "docs/checkout.md"], "an asset is never read in");
        let pain = ctx.focus.pain.as_ref().expect("the brief fits once its plan is dropped");
        assert!(pain.plan.is_empty());
        assert_eq!(pain.frames[0].path.as_deref(), Some("src/checkout/cart.rs"));
        let used = pain.size() + ctx.contents.iter().map(|c| c.text.len()).sum::<usize>();
        assert!(used <= rails.context.max_bytes as usize, "within the context's byte budget");
    }

    #[test]
    fn files_rank_by_distinct_focus_words_then_path_and_only_allowed_ones_count() {
        let tracked = [
            "config/rails.toml",
            "docs/cache.md",
            "docs/other.md",
            "secrets.env",
            "src/cache/eviction.rs",
            "src/CACHE_eviction_cache.rs",
            "src/main.rs",
        ];
        assert_eq!(
            build_for("Cache eviction cache misses", &tracked, 10),
            ["src/CACHE_eviction_cache.rs", "src/cache/eviction.rs", "docs/cache.md", "docs/other.md", "src/main.rs"],
            "two distinct words before one (a repeated word counts once, in any case), then path order; \
             protected and unallowed paths never"
        );
        assert_eq!(build_for("cache eviction", &tracked, 2), ["src/CACHE_eviction_cache.rs", "src/cache/eviction.rs"]);
        assert_eq!(build_for("", &tracked, 3), ["docs/cache.md", "docs/other.md", "src/CACHE_eviction_cache.rs"]);
        // Unsorted input ranks the same.
        let mut shuffled = tracked;
        shuffled.reverse();
        assert_eq!(build_for("", &shuffled, 3), ["docs/cache.md", "docs/other.md", "src/CACHE_eviction_cache.rs"]);
    }

    #[test]
    fn assets_are_listed_but_never_read_nor_counted_against_max_bytes() {
        let mut rails = crate::rails::parse(crate::init::RAILS_TEMPLATE, "").unwrap();
        rails.context.max_bytes = 64;
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("docs")).unwrap();
        std::fs::write(root.path().join("docs/a-docs-logo.svg"), format!("<svg>{}</svg>", "x".repeat(500))).unwrap();
        std::fs::write(root.path().join("docs/docs-guide.md"), "# Guide\n\nHow to use it.\n").unwrap();
        std::fs::write(root.path().join("docs/docs.min.js"), "var a=1;").unwrap();
        let intent = Intent { name: "i".into(), text: "t".into(), hash: "h".into() };
        let ctx = build(Inputs {
            rails: &rails,
            intent: &intent,
            history: &History::default(),
            focus: Focus { reference: "intent".into(), text: "docs".into(), evidence: vec![], pain: None },
            provider: "self",
            tier: 0,
            base: None,
            tracked: &["docs/a-docs-logo.svg", "docs/docs-guide.md", "docs/docs.min.js"],
            root: root.path(),
        });
        assert_eq!(ctx.files.len(), 3, "assets stay in the index");
        let read: Vec<&str> = ctx.contents.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(read, ["docs/docs-guide.md"]);
        assert!(!ctx.contents[0].truncated, "the SVG did not eat the byte budget");
    }
}

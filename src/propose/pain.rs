//! A pain a model can act on: the essentials of its improvement packet
//! (seed 000's `/schema/improvement-packet.json`), as a provider's context
//! carries them when the focus is `pain:<id>`, and the files its stack
//! frames name.
//!
//! | in the context | from the packet |
//! |---|---|
//! | `exception.type`, `exception.message_template` | the evidence's exception, its message masked as the fingerprint masks it |
//! | `frames[]`: file, function, line, and `path` in the repository | the top in-app frames of the evidence's stack trace |
//! | `sample` | one evidence span: where, when, status, its attributes |
//! | `over_represented[]` | the attribute values most frequent in the pain against the rest of the window |
//! | `eval_candidate` | the drafted eval: name, input, expected |
//! | `plan` | the patch plan's steps |
//!
//! Invariants: the packet is hostile data from the network, so every
//! string is bounded, every number checked, and the whole brief fits in
//! [`budget`] bytes of the context (fields are dropped from the least to
//! the most essential until it does). Frames are mapped to repository
//! paths only by matching whole trailing path components against the
//! tracked files ([`repo_path`]); nothing is read through a frame's path.

use serde::Serialize;
use serde_json::Value;

/// Frames kept from a stack trace.
pub const MAX_FRAMES: usize = 5;
/// The most of the context's byte budget a brief may take.
pub const MAX_BRIEF_BYTES: usize = 8_192;
const MAX_STRING: usize = 300;
const MAX_ATTRIBUTES: usize = 12;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PainBrief {
    pub pain_id: String,
    pub signal_type: String,
    pub count: u64,
    pub rate_per_1k: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<ExceptionBrief>,
    pub frames: Vec<FrameBrief>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<Sample>,
    pub over_represented: Vec<Finding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_candidate: Option<EvalBrief>,
    pub plan: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExceptionBrief {
    pub r#type: String,
    /// The message with its variable parts masked (`invoice <num> not found`).
    pub message_template: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrameBrief {
    /// The file as the runtime printed it.
    pub file: String,
    pub function: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The tracked file it maps to, when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    pub service: String,
    pub name: String,
    pub time: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status_message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<i64>,
    pub attributes: serde_json::Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub key: String,
    pub value: String,
    pub pain_share: f64,
    pub lift: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalBrief {
    pub name: String,
    pub input: Value,
    pub expected: String,
}

fn text(v: &Value, max: usize) -> String {
    crate::loopkit::client::bounded(v.as_str().unwrap_or(""), max)
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64().filter(|n| n.is_finite() && *n >= 0.0 && *n < 1e12)
}

impl PainBrief {
    /// The essentials of one improvement packet, or `None` when it is not
    /// one (no valid pain id).
    pub fn from_packet(p: &Value) -> Option<PainBrief> {
        let pain_id = p["pain_id"].as_str().filter(|id| crate::loopkit::normalise::is_pain_id(id))?.to_string();
        let evidence = p["evidence"].as_array().map(Vec::as_slice).unwrap_or_default();
        let with_exception = evidence.iter().find(|e| e["exception"].is_object());
        let components = &p["fingerprint"]["components"];
        let exception = with_exception.map(|e| {
            let exc = &e["exception"];
            ExceptionBrief {
                r#type: text(&exc["type"], 120),
                message_template: crate::loopkit::client::bounded(
                    &crate::loopkit::fingerprint::mask(&text(&exc["message"], 2_000)),
                    MAX_STRING,
                ),
            }
        });
        let frames = with_exception
            .map(|e| {
                let stack = text(&e["exception"]["stacktrace"], 8_000);
                crate::loopkit::fingerprint::stack_frames(&stack, MAX_FRAMES)
                    .into_iter()
                    .filter_map(|f| {
                        Some(FrameBrief {
                            file: crate::loopkit::client::bounded(&f.file?, MAX_STRING),
                            function: crate::loopkit::client::bounded(&f.function, 120),
                            line: f.line,
                            path: None,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let sample = evidence.first().map(|e| Sample {
            service: text(&e["service"], 120),
            name: text(&e["name"], 200),
            time: text(&e["time"], 40),
            status_message: text(&e["status_message"], MAX_STRING),
            http_status: e["http_status"].as_i64().filter(|s| (100..600).contains(s)),
            attributes: e["attributes"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .take(MAX_ATTRIBUTES)
                        .map(|(k, v)| {
                            let v = match v {
                                Value::String(s) => Value::String(crate::loopkit::client::bounded(s, 120)),
                                Value::Number(_) | Value::Bool(_) => v.clone(),
                                _ => Value::String(crate::loopkit::client::bounded(&v.to_string(), 120)),
                            };
                            (crate::loopkit::client::bounded(k, 80), v)
                        })
                        .collect()
                })
                .unwrap_or_default(),
        });
        let over_represented = p["over_represented"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .take(5)
            .map(|o| Finding {
                key: text(&o["key"], 80),
                value: text(&o["value"], 120),
                pain_share: number(&o["pain_share"]).unwrap_or(0.0),
                lift: number(&o["lift"]).unwrap_or(0.0),
            })
            .collect();
        let eval = &p["eval_candidate"];
        let eval_candidate = eval.is_object().then(|| EvalBrief {
            name: text(&eval["name"], 80),
            input: match &eval["input"] {
                Value::Object(m) => Value::Object(
                    m.iter()
                        .take(MAX_ATTRIBUTES)
                        .map(|(k, v)| {
                            (
                                crate::loopkit::client::bounded(k, 80),
                                Value::String(crate::loopkit::client::bounded(v.as_str().unwrap_or(""), 120)),
                            )
                        })
                        .collect(),
                ),
                _ => Value::Object(Default::default()),
            },
            expected: text(&eval["expected"], MAX_STRING),
        });
        let plan = p["patch_plan"]["steps"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .take(6)
            .map(|s| text(s, MAX_STRING))
            .collect();
        Some(PainBrief {
            pain_id,
            signal_type: text(&p["signal_type"], 20),
            count: p["count"].as_u64().unwrap_or(0),
            rate_per_1k: number(&p["rate_per_1k"]).unwrap_or(0.0),
            exception: exception.or_else(|| {
                components["exception.type"].as_str().map(|t| ExceptionBrief {
                    r#type: crate::loopkit::client::bounded(t, 120),
                    message_template: text(&components["message"], MAX_STRING),
                })
            }),
            frames,
            sample,
            over_represented,
            eval_candidate,
            plan,
        })
    }

    /// Maps each frame to the tracked file it names, if any.
    pub fn map_frames(&mut self, tracked: &[&str]) {
        for f in &mut self.frames {
            f.path = repo_path(&f.file, tracked).map(str::to_string);
        }
    }

    /// The repository paths the frames name, most recent frame first, each once.
    pub fn frame_paths(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for p in self.frames.iter().filter_map(|f| f.path.as_deref()) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }

    /// The bytes the brief takes in the context (its JSON).
    pub fn size(&self) -> usize {
        serde_json::to_vec(self).map_or(usize::MAX, |v| v.len())
    }

    /// Drops the least essential parts until the brief fits in `max` bytes:
    /// the plan, the sample's attributes, the sample, findings beyond two,
    /// the eval's input, frames beyond three. Returns whether it fits.
    pub fn fit(&mut self, max: usize) -> bool {
        let steps: [fn(&mut PainBrief); 6] = [
            |b| b.plan.clear(),
            |b| {
                if let Some(s) = &mut b.sample {
                    s.attributes.clear()
                }
            },
            |b| b.sample = None,
            |b| b.over_represented.truncate(2),
            |b| {
                if let Some(e) = &mut b.eval_candidate {
                    e.input = Value::Object(Default::default())
                }
            },
            |b| b.frames.truncate(3),
        ];
        for step in steps {
            if self.size() <= max {
                return true;
            }
            step(self);
        }
        self.size() <= max
    }
}

/// How much of the context's `max_bytes` a brief may take: a quarter, at
/// most [`MAX_BRIEF_BYTES`].
pub fn budget(max_bytes: usize) -> usize {
    (max_bytes / 4).min(MAX_BRIEF_BYTES)
}

/// The tracked path a runtime's file names: the longest tracked path that
/// the runtime path ends with, compared component by component (so
/// `/srv/app/src/cart.js` maps to `src/cart.js`, and never to
/// `other/src/cart.js` or `cart.js` when `src/cart.js` is tracked).
/// `file://` URLs and Windows separators are understood.
pub fn repo_path<'a>(runtime: &str, tracked: &[&'a str]) -> Option<&'a str> {
    let path = runtime.strip_prefix("file://").unwrap_or(runtime).replace('\\', "/");
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    let name = parts.last()?;
    tracked
        .iter()
        .copied()
        .filter(|t| t.rsplit('/').next() == Some(name))
        .filter(|t| {
            let tp: Vec<&str> = t.split('/').collect();
            tp.len() <= parts.len() && parts[parts.len() - tp.len()..] == tp[..]
        })
        .max_by_key(|t| (t.split('/').count(), std::cmp::Reverse(*t)))
}

/// A path's rank for the focus, from its `score` (distinct focus words):
/// the files a pain's frames name first (the most recent frame's highest),
/// assets never (0).
pub fn rank(score: usize, path: &str, frame_paths: &[String]) -> usize {
    match frame_paths.iter().position(|f| f == path) {
        Some(i) => usize::MAX - i,
        None if is_asset(path) => 0,
        None => score,
    }
}

/// Whether a path is an asset: images, fonts, media, archives, minified or
/// generated bundles, lock files. Assets never rank for a focus: a model
/// cannot fix a failure in a logo.
pub fn is_asset(path: &str) -> bool {
    const EXT: &[&str] = &[
        "svg", "png", "jpg", "jpeg", "gif", "webp", "ico", "bmp", "tif", "tiff", "avif", "woff", "woff2", "ttf", "otf",
        "eot", "mp3", "mp4", "wav", "ogg", "webm", "mov", "pdf", "zip", "gz", "tgz", "bz2", "xz", "7z", "jar", "wasm",
        "map", "lock", "bin", "dat", "db", "sqlite",
    ];
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    EXT.contains(&ext)
        || name.ends_with(".min.js")
        || name.ends_with(".min.css")
        || matches!(name.as_str(), "package-lock.json" | "yarn.lock" | "pnpm-lock.yaml" | "cargo.lock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_paths_map_to_tracked_paths_by_whole_components() {
        let tracked = ["src/cart.js", "other/src/cart.js", "cart.js", "app/billing.py", "Shop/Cart.cs", "xcart.js"];
        assert_eq!(repo_path("/srv/app/src/cart.js", &tracked), Some("src/cart.js"));
        assert_eq!(repo_path("/srv/other/src/cart.js", &tracked), Some("other/src/cart.js"));
        assert_eq!(repo_path("file:///home/u/repo/app/billing.py", &tracked), Some("app/billing.py"));
        assert_eq!(repo_path("C:\\build\\Shop\\Cart.cs", &tracked), Some("Shop/Cart.cs"));
        assert_eq!(repo_path("/x/cart.js", &tracked), Some("cart.js"));
        assert_eq!(repo_path("/x/acart.js", &tracked), None, "a component matches whole or not at all");
        assert_eq!(repo_path("", &tracked), None);
        assert_eq!(repo_path("node:internal/x", &tracked), None);
    }

    #[test]
    fn assets_are_known() {
        for a in ["assets/logo.svg", "img/Logo.PNG", "dist/app.min.js", "fonts/a.woff2", "Cargo.lock", "x.js.map"] {
            assert!(is_asset(a), "{a}");
        }
        for code in ["src/cart.js", "app/billing.py", "README.md", "svg/render.rs", "Makefile"] {
            assert!(!is_asset(code), "{code}");
        }
    }

    fn packet() -> Value {
        serde_json::json!({
            "pain_id": "pn_0123456789abcdef", "signal_type": "exception", "count": 9, "rate_per_1k": 391.3,
            "fingerprint": {"components": {"exception.type": "KeyError"}},
            "evidence": [{"service": "billing", "name": "GET /invoices/5001", "time": "2026-11-21T18:00:00Z",
                "status_message": "'invoice 5001 not found'", "http_status": null,
                "exception": {"type": "KeyError", "message": "'invoice 5001 not found in /var/data/x.db'",
                    "stacktrace": "Traceback (most recent call last):\n  File \"/tmp/w/repo/app/billing.py\", line 7, in load_invoice\n    raise KeyError(x)\nKeyError: 'x'"},
                "attributes": {"invoice.region": "eu", "huge": "x".repeat(5000)}}],
            "over_represented": [{"key": "invoice.region", "value": "eu", "pain_share": 1.0, "rest_share": 0.1, "lift": 10.0}],
            "eval_candidate": {"name": "regression_0123", "description": "d", "input": {"operation": "GET /invoices/{id}"}, "expected": "no KeyError"},
            "patch_plan": {"steps": ["Add the eval.", "Fix it."]}
        })
    }

    #[test]
    fn a_packet_becomes_a_bounded_brief_with_frames_mapped_to_the_repository() {
        let mut b = PainBrief::from_packet(&packet()).unwrap();
        assert_eq!(b.exception.as_ref().unwrap().message_template, "<str>");
        assert_eq!(b.frames.len(), 1);
        assert_eq!((b.frames[0].function.as_str(), b.frames[0].line), ("load_invoice", Some(7)));
        b.map_frames(&["app/billing.py", "README.md"]);
        assert_eq!(b.frame_paths(), vec!["app/billing.py"]);
        assert!(b.sample.as_ref().unwrap().attributes["huge"].as_str().unwrap().len() <= 120, "strings are bounded");
        assert_eq!(b.over_represented[0].key, "invoice.region");
        assert_eq!(b.eval_candidate.as_ref().unwrap().expected, "no KeyError");
        let full = b.size();
        assert!(b.fit(full), "a brief within its budget is left whole");
        assert_eq!(b.plan.len(), 2);
        assert!(b.fit(full - 20) && b.plan.is_empty(), "the plan goes first");
        assert!(!b.fit(10), "a budget too small for the essentials says so");
        let mut bad = packet();
        bad["pain_id"] = "pn_../../x".into();
        assert!(PainBrief::from_packet(&bad).is_none());
    }
}

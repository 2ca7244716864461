//! Clustering figures on the mixed corpus in `tests/corpus/clustering.jsonl`
//! (Python, Node, .NET and Go-style traces, HTTP client spans, messages
//! with ids; each span labelled with its ground-truth pain, or none):
//!
//!     cargo bench --bench cluster_corpus
//!
//! The spans go through the real path — OTLP request, `normalise`, the
//! SQLite store, in three batches so that parents and children may arrive
//! apart — and the pains found are compared with the labels. A label is an
//! exact match when one pain holds exactly its spans; the exact-match rate
//! is exact matches / labels. Spans labelled none must be in no pain.
//! `tests/cluster_corpus.rs` asserts the same figures.

fn main() {
    let figures = ratchet_cluster_corpus::run();
    println!("{figures}");
}

#[path = "../tests/corpus/figures.rs"]
mod ratchet_cluster_corpus;

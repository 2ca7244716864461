//! The clustering corpus (tests/corpus/clustering.jsonl): every
//! ground-truth pain is found exactly, and no span that must be in no pain
//! (healthy, or failed because its child did) is in one. The figures are
//! printed by `cargo bench --bench cluster_corpus`.

#[path = "../corpus/figures.rs"]
mod figures;

#[test]
fn the_mixed_corpus_clusters_exactly() {
    let f = figures::run();
    println!("{f}");
    assert_eq!(f.labels, 13, "the corpus holds 13 pains");
    assert!(f.split.is_empty() && f.merged.is_empty(), "{f}");
    assert_eq!(f.stray, 0, "{f}");
    assert_eq!(f.exact, f.labels, "{f}");
}

//! The acceptance measurement: HNSW against exact search on 100,000 seeded random 64-d
//! vectors (cosine), 1000 queries: recall@10 and the speed ratio, printed for several
//! search widths. Slow (the build is ~100k inserts), so ignored by default:
//!
//! ```text
//! cargo test --release -p liverank-ann --test recall_100k -- --ignored --nocapture
//! ```

use std::time::Instant;

use liverank_ann::{ExactIndex, HnswConfig, HnswIndex, Metric, VectorIndex};
use liverank_types::rng::SplitMix64;

const N: usize = 100_000;
const DIM: usize = 64;
const QUERIES: usize = 1_000;
const K: usize = 10;

fn random_vectors(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| (0..DIM).map(|_| rng.uniform(1.0)).collect())
        .collect()
}

#[test]
#[ignore = "builds a 100k-vector graph; run in release with --ignored --nocapture"]
fn hnsw_recall_and_speed_on_100k_random_64d() {
    let vectors = random_vectors(N, 42);
    let queries = random_vectors(QUERIES, 43);
    let mut exact = ExactIndex::new(DIM, Metric::Cosine).expect("dim");
    for (id, v) in vectors.iter().enumerate() {
        exact.insert(id as u64, v).expect("insert");
    }
    let config = HnswConfig::default();
    let mut hnsw = HnswIndex::new(DIM, Metric::Cosine, config.clone()).expect("config");
    let start = Instant::now();
    for (id, v) in vectors.iter().enumerate() {
        hnsw.insert(id as u64, v).expect("insert");
    }
    println!(
        "HNSW build of {N} x {DIM} ({config:?}): {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let start = Instant::now();
    let truth: Vec<Vec<u64>> = queries
        .iter()
        .map(|q| {
            exact
                .search(q, K)
                .expect("search")
                .into_iter()
                .map(|h| h.0)
                .collect()
        })
        .collect();
    let exact_us = start.elapsed().as_secs_f64() * 1e6 / QUERIES as f64;
    println!("exact: {exact_us:.0} us/query");

    let mut at_default = None;
    for ef in [16, 32, 64, 128, 256] {
        hnsw.set_ef_search(ef);
        let start = Instant::now();
        let found: Vec<Vec<u64>> = queries
            .iter()
            .map(|q| {
                hnsw.search(q, K)
                    .expect("search")
                    .into_iter()
                    .map(|h| h.0)
                    .collect()
            })
            .collect();
        let hnsw_us = start.elapsed().as_secs_f64() * 1e6 / QUERIES as f64;
        let hits: usize = found
            .iter()
            .zip(&truth)
            .map(|(f, t)| f.iter().filter(|id| t.contains(id)).count())
            .sum();
        let recall = hits as f64 / (K * QUERIES) as f64;
        let speedup = exact_us / hnsw_us;
        println!(
            "ef_search {ef:>3}: recall@10 {recall:.4}, {hnsw_us:.0} us/query, {speedup:.1}x exact"
        );
        if ef == config.ef_search {
            at_default = Some((recall, speedup));
        }
    }
    let (recall, speedup) = at_default.expect("the default width is in the sweep");
    assert!(
        recall >= 0.95,
        "recall@10 {recall} < 0.95 at the default ef_search"
    );
    assert!(
        speedup >= 10.0,
        "speed-up {speedup} < 10x at the default ef_search"
    );
}

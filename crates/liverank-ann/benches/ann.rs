//! Search latency of HNSW against exact search on 100,000 seeded random 64-d vectors
//! (cosine), top 10; prints HNSW's recall@10 against exact over 1000 queries first.
//!
//! ```text
//! cargo bench -p liverank-ann --bench ann
//! ```

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use liverank_ann::{ExactIndex, HnswConfig, HnswIndex, Metric, VectorIndex};
use liverank_types::rng::SplitMix64;

const N: usize = 100_000;
const DIM: usize = 64;
const K: usize = 10;

fn random_vectors(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| (0..DIM).map(|_| rng.uniform(1.0)).collect())
        .collect()
}

fn search(c: &mut Criterion) {
    let vectors = random_vectors(N, 42);
    let queries = random_vectors(1_000, 43);
    let mut exact = ExactIndex::new(DIM, Metric::Cosine).expect("dim");
    let mut hnsw = HnswIndex::new(DIM, Metric::Cosine, HnswConfig::default()).expect("config");
    for (id, v) in vectors.iter().enumerate() {
        exact.insert(id as u64, v).expect("insert");
        hnsw.insert(id as u64, v).expect("insert");
    }
    let mut hits = 0usize;
    for q in &queries {
        let truth: Vec<u64> = exact
            .search(q, K)
            .expect("search")
            .into_iter()
            .map(|h| h.0)
            .collect();
        hits += hnsw
            .search(q, K)
            .expect("search")
            .iter()
            .filter(|h| truth.contains(&h.0))
            .count();
    }
    println!(
        "HNSW {:?}: recall@10 = {:.4} over {} queries on {N} x {DIM}",
        hnsw.config(),
        hits as f64 / (K * queries.len()) as f64,
        queries.len()
    );

    let mut group = c.benchmark_group("ann_search_100k_64d_top10");
    let mut i = 0usize;
    group.bench_function("exact", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(exact.search(&queries[i], K).expect("search"))
        })
    });
    group.bench_function("hnsw", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(hnsw.search(&queries[i], K).expect("search"))
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = search
}
criterion_main!(benches);

//! Search latency of HNSW against exact search on 100,000 seeded random 64-d vectors
//! (cosine), top 10, on the two data sets of `tests/integration/recall_100k.rs`: `uniform` (i.i.d.
//! components, full intrinsic dimension) and `low_rank` (an 8-d latent through a fixed
//! 64×8 map plus 5 % noise, like trained embeddings). Before timing, each prints HNSW's
//! recall@10 against exact over 1000 queries at the default `ef_search` and at 512.
//!
//! Also the cost of the live lifecycle: `LiveStart` + `LiveEnd` churn on 10k rooms.
//!
//! ```text
//! cargo bench -p liverank-ann --bench ann
//! ```

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use liverank_ann::{
    AnnConfig, ExactIndex, HnswConfig, HnswIndex, IndexKind, Metric, OnAirIndex, VectorIndex,
};
use liverank_types::id::LiveId;
use liverank_types::rng::SplitMix64;

const N: usize = 100_000;
const DIM: usize = 64;
const K: usize = 10;

fn uniform(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| (0..DIM).map(|_| rng.uniform(1.0)).collect())
        .collect()
}

fn gaussian(rng: &mut SplitMix64) -> f32 {
    let u = 1.0 - rng.next_f32();
    let v = rng.next_f32();
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

fn low_rank(n: usize, seed: u64) -> Vec<Vec<f32>> {
    const LATENT: usize = 8;
    let mut map_rng = SplitMix64::new(7);
    let map: Vec<f32> = (0..DIM * LATENT).map(|_| gaussian(&mut map_rng)).collect();
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let z: Vec<f32> = (0..LATENT).map(|_| gaussian(&mut rng)).collect();
            (0..DIM)
                .map(|d| {
                    let signal: f32 = (0..LATENT).map(|l| map[d * LATENT + l] * z[l]).sum();
                    signal + 0.05 * (LATENT as f32).sqrt() * gaussian(&mut rng)
                })
                .collect()
        })
        .collect()
}

fn recall(exact: &ExactIndex, hnsw: &HnswIndex, queries: &[Vec<f32>]) -> f64 {
    let mut hits = 0usize;
    for q in queries {
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
    hits as f64 / (K * queries.len()) as f64
}

fn bench_data(c: &mut Criterion, name: &str, vectors: &[Vec<f32>], queries: &[Vec<f32>]) {
    let mut exact = ExactIndex::new(DIM, Metric::Cosine).expect("dim");
    let mut hnsw = HnswIndex::new(DIM, Metric::Cosine, HnswConfig::default()).expect("config");
    for (id, v) in vectors.iter().enumerate() {
        exact.insert(id as u64, v).expect("insert");
        hnsw.insert(id as u64, v).expect("insert");
    }
    let default_ef = hnsw.config().ef_search;
    let at_default = recall(&exact, &hnsw, queries);
    hnsw.set_ef_search(512);
    let at_512 = recall(&exact, &hnsw, queries);
    println!(
        "[{name}] recall@10 over {} queries on {N} x {DIM}: {at_default:.4} at ef_search {default_ef}, {at_512:.4} at 512",
        queries.len()
    );
    let mut group = c.benchmark_group(format!("ann_{name}_100k_64d_top10"));
    let mut i = 0usize;
    group.bench_function("exact", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(exact.search(&queries[i], K).expect("search"))
        })
    });
    for ef in [default_ef, 512] {
        hnsw.set_ef_search(ef);
        group.bench_function(format!("hnsw_ef{ef}"), |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                black_box(hnsw.search(&queries[i], K).expect("search"))
            })
        });
    }
    group.finish();
}

/// Steady-state churn on 10,000 rooms on air: one `LiveStart` of a new room and one
/// `LiveEnd` of the oldest per iteration (HNSW rebuilds included, amortised).
fn churn(c: &mut Criterion) {
    const ROOMS: usize = 10_000;
    let vectors = low_rank(ROOMS * 4, 42);
    let mut group = c.benchmark_group("ann_on_air_churn_10k_64d");
    for kind in [IndexKind::Exact, IndexKind::Hnsw] {
        let config = AnnConfig {
            index: kind,
            ..AnnConfig::default()
        };
        let mut rooms = OnAirIndex::new(config.build(DIM).expect("config"));
        for (live, v) in vectors.iter().take(ROOMS).enumerate() {
            rooms.live_start(LiveId(live as u64), v).expect("start");
        }
        let mut next = ROOMS;
        group.bench_function(format!("{kind:?}").to_lowercase(), |b| {
            b.iter(|| {
                rooms
                    .live_start(LiveId(next as u64), &vectors[next % vectors.len()])
                    .expect("start");
                rooms.live_end(LiveId((next - ROOMS) as u64));
                next += 1;
            })
        });
    }
    group.finish();
}

fn search(c: &mut Criterion) {
    bench_data(c, "uniform", &uniform(N, 42), &uniform(1_000, 43));
    bench_data(c, "low_rank", &low_rank(N, 42), &low_rank(1_000, 43));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = churn, search
}
criterion_main!(benches);

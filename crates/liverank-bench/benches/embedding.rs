//! The embedding store's per-step work at the training shape: 1024 samples × 75 slots of
//! skewed ids (u³·1M, like the peer's `peer_torch_ranker.py`), dim 16, Adagrad, against a
//! table already holding all 1M rows (a warm table does not fit in cache, as in production).
//!
//! Groups: the training lookup alone, lookup + sparse Adagrad update (one training step's
//! sparse work), the read-only serving gather, and one `evict_expired` call with a TTL that
//! expires nothing (the per-step cost a trainer pays for TTL eviction).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use liverank_model::embedding::{EmbeddingConfig, EmbeddingStore, RowOptimizer};
use liverank_model::rng::SplitMix64;

const BATCH: usize = 1024;
const SLOTS: usize = 75;
const DIM: usize = 16;
const ROWS: u64 = 1_000_000;

fn skewed(rng: &mut SplitMix64) -> u64 {
    let u = f64::from(rng.next_f32());
    ((u * u * u * ROWS as f64) as u64).min(ROWS - 1)
}

fn warm_store(ttl: u64) -> EmbeddingStore {
    let mut store = EmbeddingStore::new(EmbeddingConfig {
        dim: DIM,
        min_count: 1,
        ttl,
        keep_floor: 0,
        init_scale: 0.05,
        seed: 1,
        optimizer: RowOptimizer::Adagrad {
            lr: 0.05,
            initial_accumulator: 0.1,
            eps: 1e-10,
        },
    });
    let all: Vec<u64> = (0..ROWS).collect();
    let mut out = Vec::new();
    store.lookup(&all, 0, true, &mut out);
    store
}

fn embedding(c: &mut Criterion) {
    let mut rng = SplitMix64::new(1);
    let batches: Vec<Vec<u64>> = (0..4)
        .map(|_| (0..BATCH * SLOTS).map(|_| skewed(&mut rng)).collect())
        .collect();
    let grads: Vec<f32> = (0..BATCH * SLOTS * DIM)
        .map(|i| ((i % 13) as f32 - 6.0) * 1e-3)
        .collect();
    let mut group = c.benchmark_group("embedding");
    group.throughput(Throughput::Elements((BATCH * SLOTS) as u64));

    let mut store = warm_store(0);
    let mut out = Vec::new();
    let (mut step, mut i) = (1u64, 0usize);
    group.bench_function("lookup_1024x75_d16", |b| {
        b.iter(|| {
            i += 1;
            step += 1;
            store.lookup(&batches[i % batches.len()], step, true, &mut out)
        })
    });
    group.bench_function("lookup_and_adagrad_1024x75_d16", |b| {
        b.iter(|| {
            i += 1;
            step += 1;
            let lookup = store.lookup(&batches[i % batches.len()], step, true, &mut out);
            store
                .apply_gradients(&lookup, &grads)
                .unwrap_or_else(|e| panic!("{e}"));
        })
    });
    group.bench_function("gather_1024x75_d16", |b| {
        b.iter(|| {
            i += 1;
            store.gather(&batches[i % batches.len()], &mut out)
        })
    });
    drop(store);

    // TTL on: the lookup keeps the eviction order up to date; the eviction call itself
    // finds nothing to evict (every row is younger than the TTL).
    let mut store = warm_store(u64::MAX / 2);
    group.bench_function("lookup_and_adagrad_ttl_1024x75_d16", |b| {
        b.iter(|| {
            i += 1;
            step += 1;
            let lookup = store.lookup(&batches[i % batches.len()], step, true, &mut out);
            store
                .apply_gradients(&lookup, &grads)
                .unwrap_or_else(|e| panic!("{e}"));
        })
    });
    group.throughput(Throughput::Elements(ROWS));
    group.bench_function("evict_expired_nothing_due_1m_rows", |b| {
        b.iter(|| store.evict_expired(step))
    });
    group.finish();
}

criterion_group!(benches, embedding);
criterion_main!(benches);

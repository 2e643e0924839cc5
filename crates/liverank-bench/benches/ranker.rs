//! Ranker hot paths: the embedding store's gather + sparse update, one training step, and
//! the forward pass at batch 1 / 32 / 512 (scoring), at a small version of the peer shape.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use liverank_model::embedding::{EmbeddingConfig, EmbeddingStore, RowOptimizer};
use liverank_model::features::{FeatureBatch, KeyKind, key};
use liverank_model::rng::SplitMix64;
use liverank_model::{InputShape, RankerConfig, SeqGroups, Trainer, TrunkConfig, TrunkKind};
use liverank_types::Task;

const FIELDS: usize = 24;
const SEQ: usize = 50;

fn skewed(rng: &mut SplitMix64, rows: u64) -> u64 {
    let u = f64::from(rng.next_f32());
    ((u * u * u * rows as f64) as u64).min(rows - 1)
}

fn batch(rng: &mut SplitMix64, rows: usize) -> FeatureBatch {
    let mut b = FeatureBatch::with_shape(FIELDS, SEQ, 1, 0, 3);
    for _ in 0..rows {
        b.fields
            .extend((0..FIELDS).map(|_| key(KeyKind::Synthetic, skewed(rng, 1_000_000))));
        b.seq_keys
            .extend((0..SEQ).map(|_| key(KeyKind::Synthetic, skewed(rng, 1_000_000))));
        b.seq_mask.extend(std::iter::repeat_n(true, SEQ));
        b.labels.extend([
            f32::from(rng.below(10) == 0),
            0.0,
            f32::from(rng.below(3) == 0),
        ]);
        b.mask.extend([1.0; 3]);
        b.slow.push(false);
        b.users.push(0);
        b.batch += 1;
    }
    b
}

fn config() -> RankerConfig {
    RankerConfig {
        tasks: vec![Task::Click, Task::LongView, Task::Like],
        hidden: vec![256, 128],
        trunk: TrunkConfig {
            kind: TrunkKind::Mmoe,
            shared_experts: 3,
            specific_experts: 0,
            levels: 1,
            expert_hidden: 64,
        },
        tower_hidden: Vec::new(),
        history_sequences: Vec::new(),
        ..RankerConfig::default()
    }
}

fn embedding_store(c: &mut Criterion) {
    let mut group = c.benchmark_group("embedding_store");
    let mut rng = SplitMix64::new(1);
    let keys: Vec<u64> = (0..1024 * (FIELDS + SEQ))
        .map(|_| skewed(&mut rng, 1_000_000))
        .collect();
    let grads = vec![0.001f32; keys.len() * 16];
    let mut store = EmbeddingStore::new(EmbeddingConfig {
        dim: 16,
        min_count: 1,
        ttl: 0,
        keep_floor: 0,
        init_scale: 0.05,
        seed: 1,
        optimizer: RowOptimizer::Adagrad {
            lr: 0.05,
            initial_accumulator: 0.1,
            eps: 1e-10,
        },
    });
    let mut out = Vec::new();
    store.lookup(&keys, 0, true, &mut out);
    group.throughput(Throughput::Elements(keys.len() as u64));
    group.bench_function("lookup_and_adagrad_1024x74", |b| {
        b.iter(|| {
            let lookup = store.lookup(&keys, 1, true, &mut out);
            store.apply_gradients(&lookup, &grads).unwrap_or_default();
        })
    });
    group.finish();
}

fn train_and_forward(c: &mut Criterion) {
    let shape = InputShape {
        fields: FIELDS,
        seq_len: SEQ,
        seq_subkeys: 1,
        dense: 0,
        groups: SeqGroups::single(SEQ),
    };
    let mut rng = SplitMix64::new(2);
    let mut trainer = Trainer::new(config(), shape).unwrap_or_else(|e| panic!("{e}"));
    let batches: Vec<FeatureBatch> = (0..4).map(|_| batch(&mut rng, 256)).collect();
    let mut group = c.benchmark_group("ranker");
    group.sample_size(10);
    group.throughput(Throughput::Elements(256));
    let mut i = 0;
    group.bench_function("train_step_256", |b| {
        b.iter(|| {
            i += 1;
            trainer
                .train_step(&batches[i % batches.len()])
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    let scorer = trainer.scorer().unwrap_or_else(|e| panic!("{e}"));
    for rows in [1usize, 32, 512] {
        let b = batch(&mut rng, rows);
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_with_input(BenchmarkId::new("forward", rows), &b, |bench, b| {
            bench.iter(|| scorer.predict(b).unwrap_or_else(|e| panic!("{e}")))
        });
    }
    group.finish();
}

criterion_group!(benches, embedding_store, train_and_forward);
criterion_main!(benches);

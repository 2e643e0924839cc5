//! History store hot paths on users with 10,000 records (the default retention): append
//! (records/s), one user's point-in-time read, soft search, and the GSU assembly of all
//! five sequences, per backend. The Redis group runs only when `LIVERANK_TEST_REDIS_URL`
//! names a server. End-to-end figures with p50/p99: `liverank bench history`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use liverank_history::synthetic::SyntheticHistory;
use liverank_history::{
    Domain, EmbeddedStore, GsuAssembler, GsuRequest, GsuScratch, HistoryConfig, HistoryStore,
    MemoryStore, RedisStore, searches,
};
use liverank_types::{AuthorId, EventTime, UserId};
use std::time::Duration;

const USERS: u64 = 8;
const RECORDS: usize = 10_000;
/// The model's embedding width (config/default.toml, model.embedding_dim).
const DIM: usize = 16;

fn stores(dir: &std::path::Path) -> Vec<(&'static str, Box<dyn HistoryStore>)> {
    let config = HistoryConfig::new(RECORDS);
    let mut out: Vec<(&'static str, Box<dyn HistoryStore>)> = vec![
        (
            "memory",
            Box::new(MemoryStore::new(&config).expect("valid config")),
        ),
        (
            "embedded",
            Box::new(EmbeddedStore::open(&dir.join("read"), &config).expect("open store")),
        ),
    ];
    if let Ok(url) = std::env::var("LIVERANK_TEST_REDIS_URL") {
        let config = HistoryConfig {
            redis_url: url,
            ..config.with_redis_prefix(format!("liverank-criterion:{}", std::process::id()))
        };
        out.push((
            "redis",
            Box::new(RedisStore::connect(&config).expect("redis")),
        ));
    }
    out
}

fn history(c: &mut Criterion) {
    let shape = SyntheticHistory::new(USERS, RECORDS);
    let stream = shape.records();
    let vectors = shape.vectors(DIM);
    let query: Vec<f32> = (0..DIM).map(|i| (i as f32 * 0.37).sin()).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let stores = stores(dir.path());
    for (_, store) in &stores {
        for chunk in stream.chunks(10_000) {
            store.append(chunk).expect("append");
        }
    }
    let now = EventTime(i64::MAX);

    let mut group = c.benchmark_group("history_append");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    let batch = &stream[..10_000];
    group.throughput(Throughput::Elements(batch.len() as u64));
    let config = HistoryConfig::new(RECORDS);
    group.bench_function("memory_10k_batch", |b| {
        b.iter(|| {
            let store = MemoryStore::new(&config).expect("valid config");
            store.append(batch).expect("append");
        })
    });
    // One durable commit (fsync) per iteration; each batch is newer than everything
    // stored (as in a live stream), so appends extend the users' tail blocks.
    let embedded = EmbeddedStore::open(&dir.path().join("append"), &config).expect("open");
    let span = stream.last().map_or(0, |(_, r)| r.available_at.0) - stream[0].1.available_at.0;
    let mut round = 0i64;
    group.bench_function("embedded_10k_batch", |b| {
        b.iter_batched(
            || {
                round += 1;
                let shift = round * (span + 1);
                batch
                    .iter()
                    .map(|&(u, mut r)| {
                        r.ts.0 += shift;
                        r.available_at.0 += shift;
                        (u, r)
                    })
                    .collect::<Vec<_>>()
            },
            |shifted| embedded.append(&shifted).expect("append"),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("history_read_10k");
    group.throughput(Throughput::Elements(RECORDS as u64));
    for (name, store) in &stores {
        let mut out = Vec::new();
        let mut u = 0u64;
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                u = u % USERS + 1;
                store.read_visible(UserId(u), now, &mut out).expect("read");
                out.len()
            })
        });
    }
    group.finish();

    let records = stores[0].1.visible(UserId(1), now).expect("read");
    let mut group = c.benchmark_group("history_search_10k");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("soft_video_top50", |b| {
        b.iter(|| searches::soft(&records, Domain::Video, &query, &vectors, 50).expect("dims"))
    });
    group.bench_function("latest_video_50", |b| {
        b.iter(|| {
            searches::latest(&records, Some(Domain::Video))
                .take(50)
                .count()
        })
    });
    let assembler = GsuAssembler::new(50);
    let request = |u: u64| GsuRequest {
        user: UserId(u),
        target_author: AuthorId(u * 7 % 600 + 1),
        before_ts: now,
        query: &query,
    };
    group.bench_function("gsu_five_searches_only", |b| {
        b.iter(|| {
            assembler
                .assemble_from(&records, &request(1), &vectors)
                .expect("dims")
        })
    });
    group.finish();

    let mut group = c.benchmark_group("history_gsu_10k");
    for (name, store) in &stores {
        let mut scratch = GsuScratch::default();
        let mut u = 0u64;
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                u = u % USERS + 1;
                assembler
                    .assemble_with(store.as_ref(), &request(u), &vectors, &mut scratch)
                    .expect("assemble")
            })
        });
    }
    group.finish();
    if let Ok(url) = std::env::var("LIVERANK_TEST_REDIS_URL") {
        let config = HistoryConfig {
            redis_url: url,
            ..HistoryConfig::default()
                .with_redis_prefix(format!("liverank-criterion:{}", std::process::id()))
        };
        if let Ok(store) = RedisStore::connect(&config) {
            let _ = store.delete_all();
        }
    }
}

criterion_group!(benches, history);
criterion_main!(benches);

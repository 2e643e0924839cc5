//! `liverank bench serve`: `/v1/recommend` over loopback at concurrency 1 and 8 (a fixed
//! request count and a time limit: it stops by itself), on two worlds — the simulated
//! preset at its busiest minute, and a synthetic set of 500 rooms on air with users whose
//! histories fill every L = 50 sequence — then the split of a request's time (recall,
//! history, features, ranker, fusion) measured in process. The baseline of the same run
//! is the ranker alone on the same batch: `ranker_share` says how much of a request is
//! the model.

use crate::serve::{demo, fresh_model, load_checkpoint, state};
use crate::settings::Settings;
use crate::{Failure, InputContext};
use anyhow::Context;
use clap::Args;
use liverank_history::{HistoryBuilder, HistoryConfig, HistoryStore, MemoryStore, synthetic};
use liverank_samples::FeatureContext;
use liverank_serve::loadgen::{LoadSpec, run as load};
use liverank_serve::{AppState, EventIngest, LocalWorld, ModelSlot, StageTimes};
use liverank_sim::{Preset, SimConfig};
use liverank_types::{
    AuthorId, CategoryId, Event, EventId, EventKind, EventTime, LiveId, ProductId, UserId,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `liverank bench serve`.
#[derive(Debug, Args)]
pub struct BenchServeArgs {
    /// Simulated world of the first scenario.
    #[arg(long, default_value = "small")]
    preset: Preset,
    /// A trained checkpoint to serve; default a fresh model of the settings' shape.
    #[arg(long, value_name = "FILE", conflicts_with = "model")]
    checkpoint: Option<PathBuf>,
    /// A published model directory to serve (its newest version, read with the
    /// `ModelReader` that `liverank serve --model DIR` uses).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Requests per run (each concurrency).
    #[arg(long, default_value_t = 2_000)]
    requests: usize,
    /// Time limit per run, seconds.
    #[arg(long, default_value_t = 30)]
    time_limit: u64,
    /// Rooms on air in the synthetic scenario.
    #[arg(long, default_value_t = 500)]
    rooms: u64,
    /// Rooms per response.
    #[arg(long, default_value_t = 20)]
    count: usize,
    /// Async worker threads of the server.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

/// 500 rooms on air (20 products each, viewers entering), 20 users with 2,000-record
/// histories (every sequence of L = 50 filled).
fn synthetic_world(settings: &Settings, rooms: u64) -> anyhow::Result<(Arc<LocalWorld>, Vec<u64>)> {
    let shape = synthetic::SyntheticHistory::new(20, 2_000);
    let records = shape.records();
    let end = records
        .iter()
        .map(|r| r.1.available_at.0)
        .max()
        .unwrap_or(0);
    let history: Arc<dyn HistoryStore> = Arc::new(MemoryStore::new(&HistoryConfig::default())?);
    history.append(&records)?;
    let world = LocalWorld::new(
        &settings.samples,
        Arc::clone(&history),
        HistoryBuilder::new(settings.samples.long_view_ms),
        Arc::new(FeatureContext::default()),
    )
    .with_graph(settings.serve.graph.clone());
    // The records went to the store directly: the author graph counts them too.
    world.observe_history(&records);
    let world = Arc::new(world);
    let t0 = end - 30 * 60_000;
    let mut events = Vec::new();
    let mut id = 0u64;
    let mut push = |ts: i64, kind: EventKind| {
        id += 1;
        events.push(Event {
            event_id: EventId(id),
            ts: EventTime(ts),
            kind,
        });
    };
    for r in 0..rooms {
        push(
            t0,
            EventKind::LiveStart {
                live: LiveId(r + 1),
                author: AuthorId(r % 600 + 1),
                category: CategoryId((r % 31) as u32),
            },
        );
        for p in 0..20u64 {
            push(
                t0 + 1 + p as i64,
                EventKind::ProductOnSale {
                    live: LiveId(r + 1),
                    product: ProductId(r * 100 + p),
                    c1: CategoryId(1),
                    c2: CategoryId(2),
                    c3: CategoryId((p % 50) as u32),
                },
            );
        }
    }
    for k in 0..(rooms * 4) {
        push(
            t0 + 60_000 + k as i64 * 100,
            EventKind::Enter {
                user: UserId(10_000 + k),
                live: LiveId(k % rooms + 1),
                request_id: None,
            },
        );
    }
    push(
        end,
        EventKind::LiveEnd {
            live: LiveId(rooms + 10),
        },
    );
    world.ingest(&events)?;
    Ok((world, (1..=20).collect()))
}

fn bodies(users: &[u64], count: usize) -> Arc<Vec<bytes::Bytes>> {
    Arc::new(
        users
            .iter()
            .map(|u| format!(r#"{{"user_id": {u}, "count": {count}}}"#).into())
            .collect(),
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn scenario(
    name: &str,
    args: &BenchServeArgs,
    state: AppState,
    users: &[u64],
) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.max(1))
        .enable_all()
        .build()
        .context("tokio runtime")?;
    // In-process split first (also the warm-up).
    let mut sum = StageTimes::default();
    let (mut candidates, mut on_air) = (0usize, 0usize);
    let n = 200;
    for i in 0..n {
        let r = state
            .rank(UserId(users[i % users.len()]), args.count, None)
            .map_err(anyhow::Error::from)?;
        let t = r.times;
        sum.recall += t.recall;
        sum.history += t.history;
        sum.features += t.features;
        sum.ranker += t.ranker;
        sum.fusion += t.fusion;
        candidates += r.candidates;
        on_air = r.on_air;
    }
    let per = |d: Duration| ms(d) / n as f64;
    let total =
        per(sum.recall) + per(sum.history) + per(sum.features) + per(sum.ranker) + per(sum.fusion);
    println!(
        "RESULT task=serve_split world={name} on_air={on_air} candidates_mean={:.0} recall_ms={:.3} history_ms={:.3} features_ms={:.3} ranker_ms={:.3} fusion_ms={:.3} total_ms={total:.3} ranker_share={:.3}",
        candidates as f64 / n as f64,
        per(sum.recall),
        per(sum.history),
        per(sum.features),
        per(sum.ranker),
        per(sum.fusion),
        per(sum.ranker) / total.max(1e-9),
    );
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding loopback")?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(liverank_serve::serve(listener, state, async {
            let _ = stopped.await;
        }));
        for concurrency in [1usize, 8] {
            let spec = LoadSpec {
                addr,
                path: "/v1/recommend".into(),
                token: None,
                bodies: bodies(users, args.count),
                concurrency,
                requests: args.requests,
                time_limit: Duration::from_secs(args.time_limit),
            };
            let r = load(spec).await.map_err(anyhow::Error::from)?;
            println!(
                "RESULT task=serve world={name} concurrency={concurrency} requests={} errors={} seconds={:.3} req_per_s={:.0} p50_ms={:.3} p95_ms={:.3} p99_ms={:.3} max_ms={:.3}",
                r.requests,
                r.errors,
                r.elapsed.as_secs_f64(),
                r.per_second(),
                ms(r.p50),
                ms(r.p95),
                ms(r.p99),
                ms(r.max),
            );
        }
        let _ = stop.send(());
        server
            .await
            .context("server task")?
            .map_err(anyhow::Error::from)?;
        anyhow::Ok(())
    })?;
    Ok(())
}

/// Runs the benchmark.
pub fn run(settings: &Settings, args: BenchServeArgs) -> Result<(), Failure> {
    println!("bench serve: {}", crate::bench::machine());
    let model = || match (&args.checkpoint, &args.model) {
        (Some(p), _) => load_checkpoint(p, 1),
        (None, Some(dir)) => {
            use liverank_serve::ModelFeed;
            liverank_serve::ModelDirFeed::new(dir)
                .poll(None)?
                .ok_or_else(|| anyhow::anyhow!("{}: no published model version", dir.display()))
        }
        (None, None) => fresh_model(&settings.model),
    };
    let mut config = settings.serve.clone();
    // Every on-air room is a candidate (up to max_candidates): the ranker's full load.
    config.recall.popular = config.max_candidates;
    config.validate().input_err("serve settings")?;
    let config = Arc::new(config);

    let sim = SimConfig {
        seed: settings.sim.seed,
        ..SimConfig::preset(args.preset)
    };
    let d = demo(settings, sim)?;
    let with_history: Vec<u64> = d
        .users
        .iter()
        .copied()
        .filter(|&u| d.history.count(UserId(u)).is_ok_and(|n| n > 0))
        .take(500)
        .collect();
    let users = if with_history.is_empty() {
        d.users.clone()
    } else {
        with_history
    };
    let slot = Arc::new(ModelSlot::new());
    slot.publish(model().input_err("model")?)
        .map_err(anyhow::Error::from)?;
    scenario(
        &format!("{}", args.preset),
        &args,
        state(&config, &d.world, &slot),
        &users,
    )?;
    drop(d);

    let (world, users) = synthetic_world(settings, args.rooms)?;
    let slot = Arc::new(ModelSlot::new());
    slot.publish(model().input_err("model")?)
        .map_err(anyhow::Error::from)?;
    scenario("synthetic", &args, state(&config, &world, &slot), &users)?;
    Ok(())
}

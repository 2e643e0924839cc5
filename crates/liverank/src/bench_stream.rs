//! `liverank bench stream`: the online pipeline's throughput against the offline trainer
//! on the very samples the stream trained on (measured in the same run), and the latency
//! from a publish to a `ModelReader` in another thread having applied it.

use crate::settings::Settings;
use crate::stream::{StreamArgs, inputs, model_config};
use crate::{Failure, InputContext};
use clap::Args;
use liverank_history::{GsuAssembler, HistoryStore, MemoryStore};
use liverank_ingest::{EventFormat, read_events};
use liverank_model::{ModelReader, Trainer};
use liverank_sim::{Preset, SimConfig, Simulation};
use liverank_train::offline::{HistorySource, sample_shape, train_offline};
use liverank_train::{StreamParts, StreamPaths, StreamPipeline, TrainSettings};
use liverank_types::stats::quantile_sorted;
use liverank_types::{Event, Sample};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Arguments of `liverank bench stream`.
#[derive(Debug, Args)]
pub struct BenchStreamArgs {
    /// Preset simulated (seed: the settings' [sim] seed) and streamed.
    #[arg(long, default_value = "small")]
    pub preset: Preset,
}

fn runtime<E: Into<anyhow::Error>>(e: E) -> Failure {
    Failure::Runtime(e.into())
}

struct Run {
    secs: f64,
    trained: Vec<Sample>,
    pipeline: StreamPipeline,
}

/// Pushes every event through a fresh pipeline writing into `out` (no highlight probes:
/// they are an evaluation instrument, not part of the pipeline).
fn run_pipeline(
    settings: &Settings,
    args: &StreamArgs,
    events: Vec<Event>,
    on_publish: Option<liverank_train::online::PublishHook>,
) -> Result<Run, Failure> {
    let policy = settings.stream.policy;
    let config = model_config(settings, args, policy);
    let inputs = inputs(settings, args, config.seed)?;
    let history: Arc<dyn HistoryStore> =
        Arc::new(MemoryStore::new(&settings.history).input_err("invalid history settings")?);
    let parts = StreamParts {
        samples: settings.samples.clone(),
        stream: settings.stream.clone(),
        publish: settings.publish.clone(),
        trainer: Trainer::new(config.clone(), sample_shape(&config)).map_err(runtime)?,
        context: inputs.context,
        history_builder: inputs.builder,
        history,
        highlights: Vec::new(),
        probe_panel: Vec::new(),
        paths: StreamPaths {
            dir: args.out.clone(),
        },
    };
    let mut pipeline = StreamPipeline::new(parts).input_err("starting the stream")?;
    if let Some(hook) = on_publish {
        pipeline.on_publish(hook);
    }
    pipeline.keep_trained();
    let started = Instant::now();
    for e in events {
        pipeline.push(e).map_err(runtime)?;
    }
    pipeline.finish().map_err(runtime)?;
    let secs = started.elapsed().as_secs_f64();
    let trained = pipeline.take_trained();
    Ok(Run {
        secs,
        trained,
        pipeline,
    })
}

/// Follows `dir` from another thread until `stop`, noting when each version was applied.
fn follow(dir: &Path, stop: &AtomicBool) -> Vec<(u64, Instant)> {
    let mut applied = Vec::new();
    let mut reader = loop {
        match ModelReader::open(dir) {
            Ok(r) => break r,
            Err(_) if !stop.load(Ordering::Acquire) => std::thread::sleep(Duration::from_millis(1)),
            Err(_) => return applied,
        }
    };
    applied.push((reader.version(), Instant::now()));
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let before = reader.version();
        let Ok(outcome) = reader.poll() else {
            break;
        };
        let now = Instant::now();
        applied.extend((before + 1..=outcome.version).map(|v| (v, now)));
        if stopping && outcome.applied == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    applied
}

/// Runs the benchmark.
pub fn run(settings: &Settings, args: &BenchStreamArgs) -> Result<(), Failure> {
    let preset = args.preset;
    let tmp = tempfile::tempdir().map_err(runtime)?;
    let sim_dir = tmp.path().join("sim");
    let sim = Simulation::new(SimConfig::preset(preset).with_seed(settings.sim.seed))
        .input_err("invalid preset")?;
    liverank_sim::output::write_simulation(&sim, &sim_dir, EventFormat::Parquet, |_| {})
        .map_err(runtime)?;
    let events_path = sim_dir.join("events.parquet");
    // Decoded up front: decode throughput is `liverank bench decode`'s business.
    let mut events = Vec::new();
    read_events(&events_path, None, |e| events.push(e)).map_err(runtime)?;
    let n_events = events.len();
    let stream_args = |out: &str| StreamArgs {
        events: Some(events_path.clone()),
        preset: None,
        seed: None,
        out: tmp.path().join(out),
        resume: false,
        policy: None,
        pace: None,
        no_live_stats: false,
        quiet: true,
    };

    // 1. The whole pipeline, as fast as it goes.
    let online = run_pipeline(settings, &stream_args("online"), events.clone(), None)?;
    let counters = online.pipeline.progress().counters;
    let n = online.trained.len();
    println!(
        "RESULT task=stream_online preset={preset} policy={} events={n_events} samples={n} steps={} publishes={} seconds={:.3} samples_per_s={:.0} events_per_s={:.0} batch_size={} max_wait_ms={} sparse_ms={}",
        settings.stream.policy.as_str(),
        counters.steps,
        counters.publishes,
        online.secs,
        n as f64 / online.secs,
        n_events as f64 / online.secs,
        settings.stream.batch_size,
        settings.stream.max_wait_ms,
        settings.publish.sparse_ms,
    );

    // 2. The offline trainer on the same samples (same model, one epoch, [train] batch
    //    and pipelining), reading history from the store the stream built (point in time).
    let policy = settings.stream.policy;
    let config = model_config(settings, &stream_args("offline"), policy);
    let trainer = Trainer::new(config.clone(), sample_shape(&config)).map_err(runtime)?;
    let train = TrainSettings {
        epochs: 1,
        ..settings.train.clone()
    };
    let source = HistorySource {
        store: online.pipeline.history().as_ref(),
        assembler: GsuAssembler::new(config.history_len),
    };
    let started = Instant::now();
    train_offline(trainer, &train, &online.trained, Some(&source), |_, _| {
        Ok(())
    })
    .map_err(runtime)?;
    let offline_secs = started.elapsed().as_secs_f64();
    let online_rate = n as f64 / online.secs;
    let offline_rate = n as f64 / offline_secs;
    println!(
        "RESULT task=stream_offline_baseline preset={preset} samples={n} seconds={offline_secs:.3} samples_per_s={offline_rate:.0} batch_size={} pipeline={} online_to_offline={:.3}",
        train.batch_size,
        train.pipeline,
        online_rate / offline_rate
    );
    drop(online);

    // 3. Publish → applied in a reader polling from another thread.
    let published: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let hook = {
        let published = Arc::clone(&published);
        Box::new(move |p: &liverank_model::publish::Published| {
            published
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((p.version, Instant::now()));
        })
    };
    let args = stream_args("latency");
    let model_dir = args.out.join("model");
    let stop = AtomicBool::new(false);
    let (with_reader, applied) = std::thread::scope(|scope| {
        let follower = scope.spawn(|| follow(&model_dir, &stop));
        let run = run_pipeline(settings, &args, events, Some(hook));
        stop.store(true, Ordering::Release);
        let applied = follower.join().unwrap_or_default();
        (run, applied)
    });
    let with_reader = with_reader?;
    let published = std::mem::take(&mut *published.lock().unwrap_or_else(PoisonError::into_inner));
    let at: std::collections::HashMap<u64, Instant> = applied.into_iter().collect();
    let mut lat_ms: Vec<f64> = published
        .iter()
        .filter_map(|(v, t)| {
            at.get(v)
                .map(|a| a.saturating_duration_since(*t).as_secs_f64() * 1e3)
        })
        .collect();
    lat_ms.sort_by(f64::total_cmp);
    println!(
        "RESULT task=stream_publish_latency preset={preset} versions={} applied={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} samples_per_s_with_reader={:.0}",
        published.len(),
        lat_ms.len(),
        quantile_sorted(&lat_ms, 0.5),
        quantile_sorted(&lat_ms, 0.99),
        lat_ms.last().copied().unwrap_or(f64::NAN),
        with_reader.trained.len() as f64 / with_reader.secs,
    );
    Ok(())
}

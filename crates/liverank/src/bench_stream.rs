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
    /// Freshness: wall seconds of a run paced at 1× real time, after replaying the first
    /// `--freshness-from-h` hours as fast as possible (0: skipped). Set the operating point
    /// with LIVERANK__STREAM__MAX_WAIT_MS / LIVERANK__PUBLISH__SPARSE_MS.
    #[arg(long, default_value_t = 0)]
    pub freshness_s: u64,
    /// Hours of event time replayed before the paced part starts.
    #[arg(long, default_value_t = 12.0)]
    pub freshness_from_h: f64,
    /// Only the freshness run (its operating point is slow to replay at full speed).
    #[arg(long, requires = "freshness_s")]
    pub freshness_only: bool,
}

fn runtime<E: Into<anyhow::Error>>(e: E) -> Failure {
    Failure::Runtime(e.into())
}

/// CPU seconds of this process so far (user + system, all threads), from /proc; the
/// machine is shared, so wall time alone drifts with the neighbours' load.
fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(ticks / 100.0)
}

fn cpu_since(start: Option<f64>) -> f64 {
    match (start, cpu_secs()) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    }
}

struct Run {
    secs: f64,
    cpu: f64,
    trained: Vec<Sample>,
    pipeline: StreamPipeline,
}

/// A fresh pipeline writing into `args.out` (no highlight probes: they are an evaluation
/// instrument, not part of the pipeline).
fn build_pipeline(settings: &Settings, args: &StreamArgs) -> Result<StreamPipeline, Failure> {
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
    StreamPipeline::new(parts).input_err("starting the stream")
}

/// Pushes every event through a fresh pipeline, as fast as it goes.
fn run_pipeline(
    settings: &Settings,
    args: &StreamArgs,
    events: Vec<Event>,
    on_publish: Option<liverank_train::online::PublishHook>,
) -> Result<Run, Failure> {
    let mut pipeline = build_pipeline(settings, args)?;
    if let Some(hook) = on_publish {
        pipeline.on_publish(hook);
    }
    pipeline.keep_trained();
    let (started, cpu) = (Instant::now(), cpu_secs());
    for e in events {
        pipeline.push(e).map_err(runtime)?;
    }
    pipeline.finish().map_err(runtime)?;
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_since(cpu);
    let trained = pipeline.take_trained();
    Ok(Run {
        secs,
        cpu,
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

/// Per sample emitted in the paced part: wall instant of emission and the version that first
/// carried its trained rows (when one did before the end).
fn paced(
    settings: &Settings,
    args: &StreamArgs,
    events: Vec<Event>,
    from_h: f64,
    wall_s: u64,
) -> Result<Vec<(Instant, Option<u64>)>, Failure> {
    let mut pipeline = build_pipeline(settings, args)?;
    let start_ts = events.first().map_or(0, |e| e.ts.0) + (from_h * 3_600_000.0) as i64;
    let limit = Duration::from_secs(wall_s);
    let mut clock: Option<(Instant, i64)> = None;
    let mut samples: Vec<(Option<Instant>, Option<u64>)> = Vec::new();
    let mut unpublished = 0..0;
    for e in events {
        let ts = e.ts.0;
        if ts >= start_ts {
            let (w0, t0) = *clock.get_or_insert((Instant::now(), ts));
            if w0.elapsed() >= limit {
                break;
            }
            let due = w0 + Duration::from_millis((ts - t0).max(0) as u64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let before = pipeline.progress();
        pipeline.push(e).map_err(runtime)?;
        let after = pipeline.progress();
        let emitted_at = clock.map(|_| Instant::now());
        for _ in before.counters.emitted..after.counters.emitted {
            samples.push((emitted_at, None));
        }
        // Samples are trained in emission order; a publish carries every trained one.
        unpublished.end = after.counters.trained as usize;
        if after.version > before.version {
            for s in &mut samples[unpublished.clone()] {
                s.1 = Some(after.version);
            }
            unpublished.start = unpublished.end;
        }
    }
    Ok(samples
        .into_iter()
        .filter_map(|(at, v)| at.map(|at| (at, v)))
        .collect())
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
    let events_again = if args.freshness_s > 0 {
        events.clone()
    } else {
        Vec::new()
    };
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

    if args.freshness_only {
        return freshness(settings, args, &stream_args("freshness"), events);
    }
    // 1. The whole pipeline, as fast as it goes.
    let online = run_pipeline(settings, &stream_args("online"), events.clone(), None)?;
    let counters = online.pipeline.progress().counters;
    let n = online.trained.len();
    println!(
        "RESULT task=stream_online preset={preset} policy={} events={n_events} samples={n} steps={} publishes={} seconds={:.3} cpu_seconds={:.2} samples_per_s={:.0} events_per_s={:.0} batch_size={} max_wait_ms={} sparse_ms={}",
        settings.stream.policy.as_str(),
        counters.steps,
        counters.publishes,
        online.secs,
        online.cpu,
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
    let (started, cpu) = (Instant::now(), cpu_secs());
    train_offline(trainer, &train, &online.trained, Some(&source), |_, _| {
        Ok(())
    })
    .map_err(runtime)?;
    let offline_secs = started.elapsed().as_secs_f64();
    let offline_cpu = cpu_since(cpu);
    let online_rate = n as f64 / online.secs;
    let offline_rate = n as f64 / offline_secs;
    // Rates on the same samples: the ratio is the inverse ratio of the times.
    println!(
        "RESULT task=stream_offline_baseline preset={preset} samples={n} seconds={offline_secs:.3} cpu_seconds={offline_cpu:.2} samples_per_s={offline_rate:.0} batch_size={} pipeline={} online_to_offline={:.3} online_to_offline_cpu={:.3}",
        train.batch_size,
        train.pipeline,
        online_rate / offline_rate,
        offline_cpu / online.cpu,
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
    let largs = stream_args("latency");
    let model_dir = largs.out.join("model");
    let stop = AtomicBool::new(false);
    let (with_reader, applied) = std::thread::scope(|scope| {
        let follower = scope.spawn(|| follow(&model_dir, &stop));
        let run = run_pipeline(settings, &largs, events, Some(hook));
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

    if args.freshness_s > 0 {
        freshness(settings, args, &stream_args("freshness"), events_again)?;
    }
    Ok(())
}

/// Freshness at 1× real time: a sample's emission → a reader holding its rows.
fn freshness(
    settings: &Settings,
    args: &BenchStreamArgs,
    sargs: &StreamArgs,
    events_again: Vec<Event>,
) -> Result<(), Failure> {
    let preset = args.preset;
    {
        let model_dir = sargs.out.join("model");
        let stop = AtomicBool::new(false);
        let (samples, applied) = std::thread::scope(|scope| {
            let follower = scope.spawn(|| follow(&model_dir, &stop));
            let samples = paced(
                settings,
                sargs,
                events_again,
                args.freshness_from_h,
                args.freshness_s,
            );
            stop.store(true, Ordering::Release);
            (samples, follower.join().unwrap_or_default())
        });
        let samples = samples?;
        let at: std::collections::HashMap<u64, Instant> = applied.into_iter().collect();
        let mut fresh_s: Vec<f64> = samples
            .iter()
            .filter_map(|(emitted, v)| {
                let applied = at.get(&(*v)?)?;
                Some(applied.saturating_duration_since(*emitted).as_secs_f64())
            })
            .collect();
        fresh_s.sort_by(f64::total_cmp);
        println!(
            "RESULT task=stream_freshness preset={preset} pace=1 wall_s={} from_h={} samples_emitted={} samples_applied={} p50_s={:.3} p99_s={:.3} max_wait_ms={} sparse_ms={}",
            args.freshness_s,
            args.freshness_from_h,
            samples.len(),
            fresh_s.len(),
            quantile_sorted(&fresh_s, 0.5),
            quantile_sorted(&fresh_s, 0.99),
            settings.stream.max_wait_ms,
            settings.publish.sparse_ms,
        );
    }
    Ok(())
}

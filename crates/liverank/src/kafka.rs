//! Distributed mode's commands: `liverank ingest kafka` (an event file into the events
//! topic) and `liverank samples --kafka` (a worker over some events partitions, samples
//! to the samples topic). The logic is in `liverank-kafka`.

use crate::Failure;
use crate::samples::SamplesArgs;
use clap::{Args, Subcommand};
use liverank_kafka::{End, KafkaError, WorkerSpec};
use liverank_samples::{FeatureContext, JobError, JobOptions, SampleConfig};
use liverank_types::{Author, Policy, User};
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `liverank ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(subcommand)]
    target: IngestTarget,
}

#[derive(Debug, Subcommand)]
enum IngestTarget {
    /// Push an event file into the `[kafka]` events topic, keyed and partitioned by user
    /// (room events go to every partition); creates the topics if missing.
    Kafka(IngestKafkaArgs),
}

#[derive(Debug, Args)]
struct IngestKafkaArgs {
    /// Event file (.parquet or .jsonl), in arrival order.
    #[arg(long)]
    events: PathBuf,
    /// Where the file's rejected records go (created only if there are any).
    #[arg(long, default_value = "ingest_dead_letters.jsonl")]
    dead_letters: PathBuf,
}

/// Runs `liverank ingest`.
pub fn ingest(settings: &crate::settings::Settings, args: IngestArgs) -> Result<(), Failure> {
    let IngestTarget::Kafka(args) = args.target;
    let clock = std::time::Instant::now();
    let report = liverank_kafka::ingest(&settings.kafka, &args.events, &args.dead_letters)
        .map_err(|e| classify(e, "ingesting into kafka"))?;
    println!(
        "{} → {} ({} partitions): {} events, {} messages, {} rejected records in {:.2} s",
        args.events.display(),
        settings.kafka.events_topic,
        settings.kafka.partitions,
        report.events,
        report.messages,
        report.rejected,
        clock.elapsed().as_secs_f64()
    );
    if report.rejected > 0 {
        println!("rejected records → {}", args.dead_letters.display());
    }
    Ok(())
}

/// Bad input (the file, a checkpoint that does not fit) exits 2, the broker exits 1.
fn classify(e: KafkaError, msg: &str) -> Failure {
    let input = match &e {
        KafkaError::Ingest(i) => i.fault() == liverank_ingest::Fault::BadInput,
        KafkaError::Job(JobError::Checkpoint(_) | JobError::SettingsChanged) => true,
        KafkaError::Input { .. } | KafkaError::Output { .. } | KafkaError::Partitions { .. } => {
            true
        }
        _ => false,
    };
    let e = anyhow::Error::from(e).context(msg.to_string());
    if input {
        Failure::Input(e)
    } else {
        Failure::Runtime(e)
    }
}

/// Runs `liverank samples --kafka`: the worker of `--partition`s (default: all).
pub fn samples(
    settings: &crate::settings::Settings,
    args: &SamplesArgs,
    config: SampleConfig,
) -> Result<(), Failure> {
    let kafka = settings.kafka.clone();
    let partitions = if args.partitions.is_empty() {
        (0..i32::try_from(kafka.partitions).unwrap_or(i32::MAX)).collect()
    } else {
        args.partitions.clone()
    };
    if let Some(p) = partitions
        .iter()
        .find(|&&p| p < 0 || p as u32 >= kafka.partitions)
    {
        return Err(Failure::Input(anyhow::anyhow!(
            "--partition {p}: the topics have {} partitions",
            kafka.partitions
        )));
    }
    std::fs::create_dir_all(&args.out).map_err(anyhow::Error::from)?;
    let (users, authors): (Vec<User>, Vec<Author>) = match &args.tables {
        Some(dir) => {
            let beside = dir.join("events.parquet");
            let beside_jsonl = dir.join("events.jsonl");
            let users = match crate::table_beside(&beside, "users")? {
                Some(u) => u,
                None => crate::table_beside(&beside_jsonl, "users")?.unwrap_or_default(),
            };
            let authors = match crate::table_beside(&beside, "authors")? {
                Some(a) => a,
                None => crate::table_beside(&beside_jsonl, "authors")?.unwrap_or_default(),
            };
            (users, authors)
        }
        None => (Vec::new(), Vec::new()),
    };
    if args.fresh {
        for &p in &partitions {
            let _ = std::fs::remove_dir_all(liverank_kafka::partition_dir(&args.out, p));
        }
    }
    let spec = WorkerSpec {
        kafka,
        samples: config.clone(),
        context: Arc::new(FeatureContext::new(&users, &authors)),
        partitions,
        state_dir: args.out.clone(),
        options: JobOptions {
            checkpoint_every: args.checkpoint_every,
            ..JobOptions::default()
        },
        end: if args.follow { End::Never } else { End::AtOpen },
        strip_features: args.no_features,
        stop: None,
    };
    let clock = std::time::Instant::now();
    let results = liverank_kafka::run_worker(&spec).map_err(|e| classify(e, "kafka worker"))?;
    let secs = clock.elapsed().as_secs_f64();
    for r in &results {
        let c = r.job.engine.counters();
        println!(
            "partition {} → {}/{}: records {} · processed {} · late {} · duplicates {} · orphans {} · samples {} · deduplicated {}{}",
            r.partition,
            spec.kafka.samples_topic,
            r.partition,
            r.job.input_records,
            c.processed,
            c.late,
            c.duplicates,
            c.orphans,
            c.samples.iter().sum::<u64>(),
            r.deduplicated,
            if r.job.resumed { " (resumed)" } else { "" }
        );
        for (i, p) in Policy::ALL.iter().enumerate() {
            if config.runs(*p) {
                println!("  samples {:<9} {:>10}", p.as_str(), c.samples[i]);
            }
        }
    }
    println!(
        "state (checkpoints, dead letters) → {} · {:.2} s",
        args.out.display(),
        secs
    );
    Ok(())
}

/// Arguments of `liverank bench kafka`.
#[derive(Debug, Args)]
pub struct BenchKafkaArgs {
    /// Preset whose events go through the broker.
    #[arg(long, default_value = "tiny")]
    preset: liverank_sim::Preset,
    /// Paced ingest rate of the latency run, events/s.
    #[arg(long, default_value_t = 20_000.0)]
    rate: f64,
    /// Leave the feature block out of the samples (smaller messages).
    #[arg(long)]
    no_features: bool,
}

/// `liverank bench kafka`: events/s through ingest → worker(s) → samples topic with one
/// and two workers (one partition each, threads of this process) against the in-memory
/// engine on the same events, then event → sample latency p50/p99 of a worker following a
/// paced stream against the broker's own produce → consume round trip. Fresh topics
/// (`bench-<time>-…`) on the `[kafka]` brokers.
pub fn bench(settings: &crate::settings::Settings, args: BenchKafkaArgs) -> Result<(), Failure> {
    use liverank_samples::SampleEngine;
    use liverank_types::stats::quantile_sorted;
    let sim = liverank_sim::Simulation::new(
        liverank_sim::SimConfig::preset(args.preset).with_seed(settings.sim.seed),
    )
    .map_err(|e| Failure::Input(anyhow::anyhow!("{e:?}")))?;
    let mut events = liverank_sim::VecSink::default();
    sim.run(&mut events, |_| {})
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{e:?}")))?;
    let events = events.events;
    let n = events.len() as u64;
    let dir = tempfile::tempdir().map_err(anyhow::Error::from)?;
    let path = dir.path().join("events.jsonl");
    let mut w = liverank_ingest::EventWriter::create(&path, liverank_ingest::EventFormat::Jsonl)
        .map_err(anyhow::Error::from)?;
    for e in &events {
        w.write(e).map_err(anyhow::Error::from)?;
    }
    w.finish().map_err(anyhow::Error::from)?;
    let config = settings.samples.clone();

    // Baseline: the same engine over the same events in memory.
    let clock = std::time::Instant::now();
    let mut engine = SampleEngine::new(config.clone(), Arc::default());
    let mut out = Vec::new();
    for e in &events {
        engine.push(e.clone(), &mut out);
        out.clear();
    }
    engine.finish(&mut out);
    let memory_secs = clock.elapsed().as_secs_f64();
    println!(
        "RESULT task=kafka_baseline preset={} events={n} seconds={memory_secs:.3} events_per_s={:.0}",
        args.preset,
        n as f64 / memory_secs
    );

    let stem = format!(
        "bench-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    let topics = |name: &str, partitions: u32| liverank_kafka::KafkaConfig {
        events_topic: format!("{stem}-{name}-events"),
        samples_topic: format!("{stem}-{name}-samples"),
        partitions,
        ..settings.kafka.clone()
    };
    let spec = |kafka: liverank_kafka::KafkaConfig, state: PathBuf| WorkerSpec {
        partitions: (0..kafka.partitions as i32).collect(),
        kafka,
        samples: config.clone(),
        context: Arc::default(),
        state_dir: state,
        options: JobOptions::default(),
        end: End::AtOpen,
        strip_features: args.no_features,
        stop: None,
    };
    let fail = |e: KafkaError| classify(e, "kafka bench");
    for workers in [1u32, 2] {
        let kafka = topics(&format!("w{workers}"), workers);
        let clock = std::time::Instant::now();
        let report =
            liverank_kafka::ingest(&kafka, &path, &dir.path().join("dead.jsonl")).map_err(fail)?;
        let ingest_secs = clock.elapsed().as_secs_f64();
        let clock = std::time::Instant::now();
        let results =
            liverank_kafka::run_worker(&spec(kafka, dir.path().join(format!("state-w{workers}"))))
                .map_err(fail)?;
        let secs = clock.elapsed().as_secs_f64();
        let records: u64 = results.iter().map(|r| r.job.input_records).sum();
        let samples: u64 = results
            .iter()
            .map(|r| r.job.engine.counters().samples.iter().sum::<u64>())
            .sum();
        println!(
            "RESULT task=kafka workers={workers} features={} preset={} events={n} messages={} samples={samples} ingest_seconds={ingest_secs:.3} ingest_events_per_s={:.0} worker_seconds={secs:.3} events_per_s={:.0} records_per_s={:.0} ratio_to_memory={:.3}",
            !args.no_features,
            args.preset,
            report.messages,
            n as f64 / ingest_secs,
            n as f64 / secs,
            records as f64 / secs,
            memory_secs / secs,
        );
    }

    let q = |mut v: Vec<f64>| {
        v.sort_unstable_by(f64::total_cmp);
        (
            quantile_sorted(&v, 0.5),
            quantile_sorted(&v, 0.99),
            v.last().copied().unwrap_or(0.0),
        )
    };
    let rtt = liverank_kafka::bench::broker_round_trip(&topics("ping", 1), 300).map_err(fail)?;
    let (r50, r99, rmax) = q(rtt);
    let paced = liverank_kafka::bench::paced_latency(
        &spec(topics("paced", 1), dir.path().join("state-paced")),
        &events,
        args.rate,
    )
    .map_err(fail)?;
    let samples = paced.latencies_ms.len();
    let (p50, p99, pmax) = q(paced.latencies_ms);
    println!(
        "RESULT task=kafka_latency preset={} features={} rate={:.0} events={} producer_seconds={:.3} samples={samples} p50_ms={p50:.1} p99_ms={p99:.1} max_ms={pmax:.1} broker_round_trip_p50_ms={r50:.2} broker_round_trip_p99_ms={r99:.2} broker_round_trip_max_ms={rmax:.2}",
        args.preset, !args.no_features, args.rate, paced.events, paced.seconds
    );
    Ok(())
}

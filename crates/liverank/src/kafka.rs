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

//! `liverank samples`: run the Moment sample engine over an event file, with checkpoints
//! that make a killed run resume exactly, and the label-consistency report.

use crate::{Failure, InputContext};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use liverank_ingest::{
    EventFormat, Fault, FileEventSource, IngestError, JsonlDeadLetterSink, JsonlSampleSink,
    ParquetSegmentSink,
};
use liverank_samples::job::{FileCheckpoints, SampleSink};
use liverank_samples::{
    BackgroundSink, FeatureContext, JobError, JobOptions, JobResult, SampleConfig, SampleEngine,
    SampleJob,
};
use liverank_types::stats::quantile_sorted;
use liverank_types::{Author, Policy, Task, User};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Arguments of `liverank samples`.
#[derive(Debug, Args)]
pub struct SamplesArgs {
    /// Event file (.parquet or .jsonl), in arrival order.
    #[arg(long, required_unless_present = "kafka")]
    pub events: Option<PathBuf>,
    /// Output directory: samples (Parquet segments or samples.jsonl), dead_letters.jsonl,
    /// checkpoint.bin, summary.json. With `--kafka`: the worker's state (`p<N>/` per
    /// partition: checkpoint.bin, dead_letters.jsonl).
    #[arg(long)]
    pub out: PathBuf,
    /// Distributed mode: read the `[kafka]` events topic, write samples to its samples
    /// topic (one job per partition, offsets in the checkpoints under `--out`).
    #[arg(long, conflicts_with_all = ["events", "report"])]
    pub kafka: bool,
    /// With `--kafka`: an events partition of this worker; repeat (default: all).
    #[arg(long = "partition", requires = "kafka")]
    pub partitions: Vec<i32>,
    /// With `--kafka`: the directory of the entity tables (users, authors) for features.
    #[arg(long, requires = "kafka")]
    pub tables: Option<PathBuf>,
    /// With `--kafka`: keep following the partitions instead of stopping at their end.
    #[arg(long, requires = "kafka")]
    pub follow: bool,
    /// Labelling policy; repeat for several in one pass. Default: the settings' [samples].
    #[arg(long = "policy")]
    pub policies: Vec<Policy>,
    /// Write a checkpoint every this many input records (0: only at the end).
    #[arg(long, default_value_t = 500_000)]
    pub checkpoint_every: u64,
    /// Start over even if a checkpoint exists in the output directory.
    #[arg(long)]
    pub fresh: bool,
    /// Sample file format: Parquet segments (`samples-NNNNN.parquet`, one per checkpoint
    /// interval) or one `samples.jsonl`.
    #[arg(long, default_value = "parquet", value_parser = ["parquet", "jsonl"])]
    pub format: String,
    /// Leave the (large) feature block out of the samples.
    #[arg(long)]
    pub no_features: bool,
    /// Print the label-consistency table (share of complete positives each policy
    /// captures, and the capture delay). Runs every policy.
    #[arg(long)]
    pub report: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs the command.
pub fn run(settings: &crate::settings::Settings, args: SamplesArgs) -> Result<(), Failure> {
    let events = args.events.clone().unwrap_or_default();
    if !args.kafka {
        EventFormat::from_path(&events).input_err("unsupported event file")?;
    }
    let mut policies = if args.policies.is_empty() {
        settings.samples.policies.clone()
    } else {
        args.policies.clone()
    };
    if args.report {
        policies = Policy::ALL.to_vec();
    }
    policies.sort();
    policies.dedup();
    let config = SampleConfig {
        policies,
        ..settings.samples.clone()
    };
    config.validate().input_err("invalid sample settings")?;
    if args.kafka {
        return crate::kafka::samples(settings, &args, config);
    }
    std::fs::create_dir_all(&args.out).map_err(anyhow::Error::from)?;
    // Optional tables (unknown ids give no features), but a table that is there must read.
    let users: Vec<User> = crate::table_beside(&events, "users")?.unwrap_or_default();
    let authors: Vec<Author> = crate::table_beside(&events, "authors")?.unwrap_or_default();
    let context = Arc::new(FeatureContext::new(&users, &authors));
    let checkpoint = args.out.join("checkpoint.bin");
    if args.fresh {
        let _ = std::fs::remove_file(&checkpoint);
    }
    let source = FileEventSource::open(&events).input_err("opening the event file")?;
    let dead_path = args.out.join("dead_letters.jsonl");
    let dead = JsonlDeadLetterSink::new(&dead_path, events.display().to_string());
    let options = JobOptions {
        checkpoint_every: args.checkpoint_every,
        ..JobOptions::default()
    };
    let checkpoints = FileCheckpoints::new(&checkpoint);
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} samples: {pos} records read · {msg} · {elapsed}")
            .map_err(anyhow::Error::from)?,
    );
    let progress = |offset: u64, c: &liverank_samples::EngineCounters| {
        bar.set_position(offset);
        bar.set_message(format!("{} samples", c.samples.iter().sum::<u64>()));
    };
    let (result, samples_path) = if args.format == "parquet" {
        // Encoding Parquet costs more than decoding and the engine together: on its own
        // thread it overlaps with them (issue 13, item 10).
        let sink = BackgroundSink::new(ParquetSegmentSink::new(&args.out, args.no_features));
        let job = SampleJob::open(
            config.clone(),
            context,
            source,
            sink,
            dead,
            checkpoints,
            options,
        );
        (
            run_job(job, &args.out, progress)?,
            args.out.join("samples-*.parquet"),
        )
    } else {
        let path = args.out.join("samples.jsonl");
        let sink = BackgroundSink::new(JsonlSampleSink::new(&path, args.no_features));
        let job = SampleJob::open(
            config.clone(),
            context,
            source,
            sink,
            dead,
            checkpoints,
            options,
        );
        (run_job(job, &args.out, progress)?, path)
    };
    bar.finish_and_clear();
    let (engine, offset) = (result.engine, result.input_records);

    let c = engine.counters();
    let summary = serde_json::json!({
        "events": events.display().to_string(),
        "policies": config.policies,
        "input_records": offset,
        "counters": c,
    });
    std::fs::write(
        args.out.join("summary.json"),
        serde_json::to_string_pretty(&summary).map_err(anyhow::Error::from)? + "\n",
    )
    .map_err(anyhow::Error::from)?;
    println!("{} → {}", events.display(), samples_path.display());
    println!(
        "records {offset} · processed {} · exposures {} · late {} · duplicates {} · orphans {} · after close {}",
        c.processed, c.exposures, c.late, c.duplicates, c.orphans, c.after_close
    );
    for (i, p) in Policy::ALL.iter().enumerate() {
        if config.runs(*p) {
            println!("samples {:<9} {:>10}", p.as_str(), c.samples[i]);
        }
    }
    println!("dead letters → {}", dead_path.display());
    if args.report {
        let table = print_report(&engine);
        let path = args.out.join("consistency.json");
        liverank_fs::write_atomic_bytes(
            &path,
            &serde_json::to_vec_pretty(&table).map_err(anyhow::Error::from)?,
        )
        .map_err(|e| anyhow::Error::from(e).context(format!("writing {}", path.display())))?;
        println!("label consistency → {}", path.display());
    }
    Ok(())
}

/// Runs an opened job, classifying its failure: bad input (the source's data, a checkpoint
/// that cannot be used) exits 2, the environment exits 1.
fn run_job<K: SampleSink>(
    job: Result<SampleJob<FileEventSource, K, JsonlDeadLetterSink, FileCheckpoints>, JobError>,
    out: &Path,
    progress: impl FnMut(u64, &liverank_samples::EngineCounters),
) -> Result<JobResult, Failure> {
    let classify = |e: JobError| match &e {
        JobError::Checkpoint(_) => Failure::Input(
            anyhow::Error::from(e)
                .context("the checkpoint cannot be used (remove it or pass --fresh)"),
        ),
        JobError::SettingsChanged => Failure::Input(anyhow::anyhow!(
            "the checkpoint in {} was made with other settings (policies); pass --fresh to start over",
            out.display()
        )),
        JobError::Source(inner) => {
            let bad_input = inner
                .downcast_ref::<IngestError>()
                .is_none_or(|i| i.fault() == Fault::BadInput);
            if bad_input {
                Failure::Input(e.into())
            } else {
                Failure::Runtime(e.into())
            }
        }
        JobError::Samples(_) | JobError::DeadLetters(_) => Failure::Runtime(e.into()),
    };
    job.map_err(classify)?.run(progress).map_err(classify)
}

/// Prints the label-consistency table and returns it as JSON (one object per task: the
/// `complete` positives and, per policy, the share reported and the delay quantiles).
fn print_report(engine: &SampleEngine) -> serde_json::Value {
    let t = engine.consistency();
    let mut rows = Vec::new();
    println!();
    println!(
        "label consistency: share of `complete` positives each policy reports, and the delay from the positive to its report (s, p50/p90)"
    );
    println!(
        "{:<10} {:>9}  {:>22}  {:>22}  {:>22}",
        "task", "positives", "realtime", "fastslow", "naive30"
    );
    for task in Task::ALL {
        let i = task as usize;
        let n = t.complete_positives[i];
        let mut cells = Vec::new();
        let mut policies = serde_json::Map::new();
        for p in [Policy::Realtime, Policy::Fastslow, Policy::Naive30] {
            let pi = Policy::ALL.iter().position(|&q| q == p).unwrap_or(0);
            // The one quantile definition of the project (nearest rank), as the benchmarks.
            let mut d: Vec<f64> = t.delays_s[pi][i].iter().map(|&s| f64::from(s)).collect();
            let share = d.len() as f64 / n.max(1) as f64;
            d.sort_unstable_by(f64::total_cmp);
            let (p50, p90) = (quantile_sorted(&d, 0.5), quantile_sorted(&d, 0.9));
            cells.push(format!("{:>5.1}% {:>6.0}/{:<6.0}", 100.0 * share, p50, p90));
            policies.insert(
                p.as_str().to_string(),
                serde_json::json!({"share": share, "p50_s": p50, "p90_s": p90}),
            );
        }
        rows.push(serde_json::json!({
            "task": task.as_str(),
            "positives": n,
            "policies": policies,
        }));
        println!(
            "{:<10} {:>9}  {:>22}  {:>22}  {:>22}",
            task.as_str(),
            n,
            cells[0],
            cells[1],
            cells[2]
        );
    }
    serde_json::json!({ "tasks": rows })
}

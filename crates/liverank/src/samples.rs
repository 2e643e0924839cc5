//! `liverank samples`: run the Moment sample engine over an event file, with checkpoints
//! that make a killed run resume exactly, and the label-consistency report.

use crate::{Failure, InputContext};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use liverank_ingest::{
    DeadLetter, DeadLetterKind, EventFormat, ParquetSampleWriter, ReadError, RecordErrorKind,
    open_events,
};
use liverank_samples::checkpoint::{read_checkpoint, write_checkpoint};
use liverank_samples::{FeatureContext, Output, RejectReason, SampleConfig, SampleEngine};
use liverank_types::{Author, Policy, Sample, Task, User};
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Arguments of `liverank samples`.
#[derive(Debug, Args)]
pub struct SamplesArgs {
    /// Event file (.parquet or .jsonl), in arrival order.
    #[arg(long)]
    pub events: PathBuf,
    /// Output directory: samples (Parquet segments or samples.jsonl), dead_letters.jsonl,
    /// checkpoint.bin, summary.json.
    #[arg(long)]
    pub out: PathBuf,
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

enum SampleSink {
    Jsonl(BufWriter<std::fs::File>),
    Parquet {
        dir: PathBuf,
        /// Index of the next segment to create.
        next: u64,
        writer: Option<Box<ParquetSampleWriter>>,
    },
}

struct Outputs {
    samples: SampleSink,
    dead: BufWriter<std::fs::File>,
    samples_path: PathBuf,
    dead_path: PathBuf,
}

fn open_truncated(path: &Path, len: Option<u64>) -> Result<std::fs::File, Failure> {
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(len.is_none())
        .open(path)
        .map_err(|e| anyhow::Error::from(e).context(format!("opening {}", path.display())))?;
    if let Some(len) = len {
        // Drop whatever was written after the checkpoint: it will be produced again.
        f.set_len(len).map_err(anyhow::Error::from)?;
    }
    let mut f = f;
    std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0)).map_err(anyhow::Error::from)?;
    Ok(f)
}

fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("samples-{index:05}.parquet"))
}

/// Segment files in `dir` with their indices.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, Failure> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(anyhow::Error::from)? {
        let path = entry.map_err(anyhow::Error::from)?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if let Some(index) = name
            .strip_prefix("samples-")
            .and_then(|r| r.strip_suffix(".parquet"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            found.push((index, path));
        }
    }
    found.sort();
    Ok(found)
}

impl Outputs {
    /// Opens the outputs; `positions` (samples position, dead-letter length) come from a
    /// checkpoint and cut away whatever was written after it.
    fn open(dir: &Path, parquet: bool, positions: Option<(u64, u64)>) -> Result<Self, Failure> {
        let dead_path = dir.join("dead_letters.jsonl");
        let (samples, samples_path) = if parquet {
            let keep = positions.map_or(0, |p| p.0);
            for (index, path) in segments(dir)? {
                if index >= keep {
                    std::fs::remove_file(&path).map_err(anyhow::Error::from)?;
                }
            }
            let sink = SampleSink::Parquet {
                dir: dir.to_path_buf(),
                next: keep,
                writer: None,
            };
            (sink, dir.join("samples-*.parquet"))
        } else {
            let path = dir.join("samples.jsonl");
            let file = open_truncated(&path, positions.map(|p| p.0))?;
            (SampleSink::Jsonl(BufWriter::new(file)), path)
        };
        Ok(Self {
            samples,
            dead: BufWriter::new(open_truncated(&dead_path, positions.map(|p| p.1))?),
            samples_path,
            dead_path,
        })
    }

    fn write_sample(&mut self, sample: &Sample, line: &mut Vec<u8>) -> Result<(), Failure> {
        match &mut self.samples {
            SampleSink::Jsonl(w) => {
                line.clear();
                serde_json::to_writer(&mut *line, sample).map_err(anyhow::Error::from)?;
                line.push(b'\n');
                w.write_all(line).map_err(anyhow::Error::from)?;
            }
            SampleSink::Parquet { dir, next, writer } => {
                if writer.is_none() {
                    *writer = Some(Box::new(
                        ParquetSampleWriter::create(&segment_path(dir, *next))
                            .map_err(anyhow::Error::from)?,
                    ));
                }
                if let Some(w) = writer {
                    w.write(sample).map_err(anyhow::Error::from)?;
                }
            }
        }
        Ok(())
    }

    /// Makes everything written durable; returns the positions to store in a checkpoint
    /// (JSONL: byte length; Parquet: number of complete segments).
    fn sync(&mut self) -> Result<(u64, u64), Failure> {
        let samples = match &mut self.samples {
            SampleSink::Jsonl(w) => {
                w.flush().map_err(anyhow::Error::from)?;
                w.get_ref().sync_all().map_err(anyhow::Error::from)?;
                w.get_ref().metadata().map_err(anyhow::Error::from)?.len()
            }
            SampleSink::Parquet { next, writer, .. } => {
                if let Some(w) = writer.take() {
                    w.finish().map_err(anyhow::Error::from)?;
                    *next += 1;
                }
                *next
            }
        };
        self.dead.flush().map_err(anyhow::Error::from)?;
        self.dead
            .get_ref()
            .sync_all()
            .map_err(anyhow::Error::from)?;
        let dead = self
            .dead
            .get_ref()
            .metadata()
            .map_err(anyhow::Error::from)?
            .len();
        Ok((samples, dead))
    }
}

/// Runs the command.
pub fn run(settings: &crate::settings::Settings, args: SamplesArgs) -> Result<(), Failure> {
    EventFormat::from_path(&args.events).input_err("unsupported event file")?;
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
    std::fs::create_dir_all(&args.out).map_err(anyhow::Error::from)?;
    // Optional tables (unknown ids give no features), but a table that is there must read.
    let users: Vec<User> = crate::table_beside(&args.events, "users")?.unwrap_or_default();
    let authors: Vec<Author> = crate::table_beside(&args.events, "authors")?.unwrap_or_default();
    let context = Arc::new(FeatureContext::new(&users, &authors));
    let checkpoint = args.out.join("checkpoint.bin");
    if args.fresh {
        let _ = std::fs::remove_file(&checkpoint);
    }
    let restored = read_checkpoint(&checkpoint, context.clone())
        .input_err("the checkpoint cannot be used (remove it or pass --fresh)")?;
    let (mut engine, skip, lengths) = match restored {
        Some(r) => {
            let mut w = [0u8; 8];
            w.copy_from_slice(r.extra.get(..8).unwrap_or(&[0; 8]));
            let a = u64::from_le_bytes(w);
            w.copy_from_slice(r.extra.get(8..16).unwrap_or(&[0; 8]));
            let b = u64::from_le_bytes(w);
            if r.engine.config() != &config {
                return Err(Failure::Input(anyhow::anyhow!(
                    "the checkpoint in {} was made with other settings (policies); pass --fresh to start over",
                    args.out.display()
                )));
            }
            (r.engine, r.input_offset, Some((a, b)))
        }
        None => (SampleEngine::new(config.clone(), context), 0, None),
    };
    let mut outputs = Outputs::open(&args.out, args.format == "parquet", lengths)?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} samples: {pos} records read · {msg} · {elapsed}")
            .map_err(anyhow::Error::from)?,
    );
    let source = args.events.display().to_string();
    let mut offset = 0u64;
    let mut out = Vec::new();
    let mut line = Vec::new();
    let write_out =
        |out: &mut Vec<Output>, o: &mut Outputs, line: &mut Vec<u8>| -> Result<(), Failure> {
            for item in out.drain(..) {
                line.clear();
                match item {
                    Output::Sample(mut s) => {
                        if args.no_features {
                            s.features = Arc::default();
                        }
                        o.write_sample(&s, line)?;
                    }
                    Output::Rejected { event, reason } => {
                        let (kind, reason) = match reason {
                            RejectReason::Late { watermark } => (
                                DeadLetterKind::Late,
                                format!("ts {} is behind the watermark {watermark}", event.ts.0),
                            ),
                            RejectReason::Duplicate => {
                                (DeadLetterKind::Duplicate, "repeated event_id".to_string())
                            }
                            RejectReason::Orphan => (
                                DeadLetterKind::Orphan,
                                "in-room event without an open session".to_string(),
                            ),
                        };
                        let letter = DeadLetter {
                            source: source.clone(),
                            line: None,
                            row: None,
                            kind,
                            reason,
                            raw: serde_json::to_string(&event).ok(),
                        };
                        serde_json::to_writer(&mut *line, &letter).map_err(anyhow::Error::from)?;
                        line.push(b'\n');
                        o.dead.write_all(line).map_err(anyhow::Error::from)?;
                    }
                }
            }
            Ok(())
        };
    let reader = open_events(&args.events).input_err("opening the event file")?;
    for item in reader {
        offset += 1;
        if offset <= skip {
            if let Err(ReadError::Fatal(e)) = item {
                return Err(Failure::Input(e.into()));
            }
            continue;
        }
        match item {
            Ok(e) => engine.push(e, &mut out),
            Err(ReadError::Record(r)) => {
                let mut letter = DeadLetter::from(&r);
                if r.kind == RecordErrorKind::Invalid {
                    letter.kind = DeadLetterKind::Invalid;
                }
                line.clear();
                serde_json::to_writer(&mut line, &letter).map_err(anyhow::Error::from)?;
                line.push(b'\n');
                outputs.dead.write_all(&line).map_err(anyhow::Error::from)?;
            }
            Err(ReadError::Fatal(e)) => return Err(Failure::Input(e.into())),
        }
        write_out(&mut out, &mut outputs, &mut line)?;
        if args.checkpoint_every > 0 && offset.is_multiple_of(args.checkpoint_every) {
            let (a, b) = outputs.sync()?;
            let extra = [a.to_le_bytes(), b.to_le_bytes()].concat();
            write_checkpoint(&checkpoint, &engine, offset, &extra).map_err(anyhow::Error::from)?;
        }
        if offset.is_multiple_of(65_536) {
            bar.set_position(offset);
            let c = engine.counters();
            bar.set_message(format!("{} samples", c.samples.iter().sum::<u64>()));
        }
    }
    engine.finish(&mut out);
    write_out(&mut out, &mut outputs, &mut line)?;
    let (a, b) = outputs.sync()?;
    let extra = [a.to_le_bytes(), b.to_le_bytes()].concat();
    write_checkpoint(&checkpoint, &engine, offset, &extra).map_err(anyhow::Error::from)?;
    bar.finish_and_clear();

    let c = engine.counters();
    let summary = serde_json::json!({
        "events": args.events.display().to_string(),
        "policies": config.policies,
        "input_records": offset,
        "counters": c,
    });
    std::fs::write(
        args.out.join("summary.json"),
        serde_json::to_string_pretty(&summary).map_err(anyhow::Error::from)? + "\n",
    )
    .map_err(anyhow::Error::from)?;
    println!(
        "{} → {}",
        args.events.display(),
        outputs.samples_path.display()
    );
    println!(
        "records {offset} · processed {} · exposures {} · late {} · duplicates {} · orphans {} · after close {}",
        c.processed, c.exposures, c.late, c.duplicates, c.orphans, c.after_close
    );
    for (i, p) in Policy::ALL.iter().enumerate() {
        if config.runs(*p) {
            println!("samples {:<9} {:>10}", p.as_str(), c.samples[i]);
        }
    }
    println!("dead letters → {}", outputs.dead_path.display());
    if args.report {
        print_report(&engine);
    }
    Ok(())
}

fn quantile(v: &mut [u32], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    f64::from(v[((v.len() - 1) as f64 * q).round() as usize])
}

fn print_report(engine: &SampleEngine) {
    let t = engine.consistency();
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
        for p in [Policy::Realtime, Policy::Fastslow, Policy::Naive30] {
            let pi = Policy::ALL.iter().position(|&q| q == p).unwrap_or(0);
            let mut d = t.delays_s[pi][i].clone();
            let share = d.len() as f64 / n.max(1) as f64;
            let (p50, p90) = (quantile(&mut d, 0.5), quantile(&mut d, 0.9));
            cells.push(format!("{:>5.1}% {:>6.0}/{:<6.0}", 100.0 * share, p50, p90));
        }
        println!(
            "{:<10} {:>9}  {:>22}  {:>22}  {:>22}",
            task.as_str(),
            n,
            cells[0],
            cells[1],
            cells[2]
        );
    }
}

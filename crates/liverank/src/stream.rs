//! `liverank stream`: online learning over an event file (or a simulated preset) — the
//! sample engine, the history store and the live registry fed from the same events, a
//! test-then-train online trainer, model versions published into `<out>/model`, exact
//! restarts with `--resume`, and the highlight time-to-boost from the simulator's truth.

use crate::settings::Settings;
use crate::{Failure, InputContext};
use clap::Args;
use liverank_history::{HistoryBuilder, HistoryStore, MemoryStore};
use liverank_ingest::{EventFormat, ReadError, open_events, read_table};
use liverank_model::rng::SplitMix64;
use liverank_model::{LossKind, RankerConfig, Trainer};
use liverank_samples::FeatureContext;
use liverank_sim::{Preset, SimConfig, Simulation};
use liverank_train::offline::sample_shape;
use liverank_train::online::EventFilter;
use liverank_train::{Highlight, StreamParts, StreamPaths, StreamPipeline, StreamSummary};
use liverank_types::{Author, Live, Policy, User, Video};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `liverank stream`.
#[derive(Debug, Args, Clone)]
pub struct StreamArgs {
    /// Events file (.parquet or .jsonl); its directory's entity tables and
    /// truth_highlights are used when present.
    #[arg(long, conflicts_with = "preset")]
    pub events: Option<PathBuf>,
    /// Simulate this preset into <out>/sim first, then stream it.
    #[arg(long)]
    pub preset: Option<Preset>,
    /// Seed of the simulation (with --preset) and of the model.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output directory: model/ (published versions), metrics.csv, predictions.bin,
    /// checkpoint.bin, model.bin, summary.json, highlights.csv.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue from <out>/checkpoint.bin (same input and settings end in the same model).
    #[arg(long)]
    pub resume: bool,
    /// Training policy (fastslow trains with the PU loss). Default: [stream] policy.
    #[arg(long)]
    pub policy: Option<Policy>,
    /// Replay pace, k × real time (0 = as fast as possible). Default: [stream] pace.
    #[arg(long)]
    pub pace: Option<f64>,
    /// Ablation: the model without the live statistics inputs (stat_lookback = 0).
    #[arg(long)]
    pub no_live_stats: bool,
    /// No progress lines.
    #[arg(long, short)]
    pub quiet: bool,
}

fn sibling<T: serde::de::DeserializeOwned>(events: &Path, stem: &str) -> Vec<T> {
    let dir = events.parent().unwrap_or(Path::new("."));
    let ext = events
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("parquet");
    read_table(&dir.join(format!("{stem}.{ext}"))).unwrap_or_default()
}

/// The model configuration of a stream.
pub fn model_config(settings: &Settings, args: &StreamArgs, policy: Policy) -> RankerConfig {
    let mut config = settings.model.clone();
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if policy == Policy::Fastslow {
        config.loss = LossKind::Pu;
    }
    if args.no_live_stats {
        config.stat_lookback = 0;
    }
    config
}

/// Everything needed to (re)build the pipeline.
pub(crate) struct Inputs {
    pub(crate) events: PathBuf,
    pub(crate) context: Arc<FeatureContext>,
    pub(crate) builder: HistoryBuilder,
    pub(crate) highlights: Vec<Highlight>,
    /// Highlights in the truth file (more than `highlights` when they were sampled).
    pub(crate) truth_highlights: usize,
    pub(crate) panel: Vec<u64>,
}

pub(crate) fn inputs(settings: &Settings, args: &StreamArgs, seed: u64) -> Result<Inputs, Failure> {
    let events = match (&args.events, args.preset) {
        (Some(e), _) => e.clone(),
        (None, Some(preset)) => {
            let dir = args.out.join("sim");
            let events = dir.join("events.parquet");
            let done = dir.join("manifest.json").exists() && events.exists();
            if !(args.resume && done) {
                let config = SimConfig {
                    seed: args.seed.unwrap_or(settings.sim.seed),
                    ..SimConfig::preset(preset)
                };
                let sim = Simulation::new(config).input_err("invalid simulator settings")?;
                if !args.quiet {
                    eprintln!("simulating the {preset:?} preset into {}", dir.display());
                }
                liverank_sim::output::write_simulation(&sim, &dir, EventFormat::Parquet, |_| {})
                    .map_err(|e| Failure::Runtime(anyhow::Error::from(e)))?;
            }
            events
        }
        (None, None) => {
            return Err(Failure::Input(anyhow::anyhow!(
                "name the input: --events FILE or --preset tiny|small"
            )));
        }
    };
    EventFormat::from_path(&events).input_err("unsupported event file")?;
    let users: Vec<User> = sibling(&events, "users");
    let authors: Vec<Author> = sibling(&events, "authors");
    let videos: Vec<Video> = sibling(&events, "videos");
    let lives: Vec<Live> = sibling(&events, "lives");
    let truth: Vec<liverank_sim::realism::TruthHighlight> = sibling(&events, "truth_highlights");
    // At most `probe_highlights` of them, a seeded uniform choice kept in file order: the
    // same highlights under every policy, so policies compare pair by pair (online-10).
    let mut chosen: Vec<usize> = (0..truth.len()).collect();
    if settings.stream.probe_highlights > 0 && truth.len() > settings.stream.probe_highlights {
        SplitMix64::new(seed ^ 0x6869_6768_6C69).shuffle(&mut chosen);
        chosen.truncate(settings.stream.probe_highlights);
        chosen.sort_unstable();
    }
    let highlights = chosen
        .iter()
        .map(|&i| &truth[i])
        .map(|h| Highlight {
            live: h.live,
            start: h.start,
            end: h.end,
            kind: serde_json::to_value(h.kind)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
        })
        .collect();
    // The probe panel: a seeded sample of the users table (documented in decisions).
    let mut ids: Vec<u64> = users.iter().map(|u| u.user.0).collect();
    ids.sort_unstable();
    SplitMix64::new(seed ^ 0x7072_6F62_6500).shuffle(&mut ids);
    ids.truncate(settings.stream.probe_users);
    ids.sort_unstable();
    let context = Arc::new(FeatureContext::new(&users, &authors));
    let builder = HistoryBuilder::new(settings.samples.long_view_ms)
        .with_videos(&videos)
        .with_lives(&lives);
    Ok(Inputs {
        events,
        context,
        builder,
        highlights,
        truth_highlights: truth.len(),
        panel: ids,
    })
}

/// Runs a stream and returns its summary (the caller prints it).
pub fn stream(settings: &Settings, args: &StreamArgs) -> Result<StreamSummary, Failure> {
    let mut stream_settings = settings.stream.clone();
    if let Some(p) = args.policy {
        stream_settings.policy = p;
    }
    if let Some(pace) = args.pace {
        stream_settings.pace = pace;
    }
    stream_settings
        .validate()
        .input_err("invalid stream settings")?;
    let policy = stream_settings.policy;
    let config = model_config(settings, args, policy);
    config.validate().input_err("invalid model configuration")?;
    let inputs = inputs(settings, args, config.seed)?;
    let paths = StreamPaths {
        dir: args.out.clone(),
    };
    let parts = || -> Result<StreamParts, Failure> {
        let history: Arc<dyn HistoryStore> =
            Arc::new(MemoryStore::new(&settings.history).input_err("invalid history settings")?);
        Ok(StreamParts {
            samples: settings.samples.clone(),
            stream: stream_settings.clone(),
            publish: settings.publish.clone(),
            trainer: Trainer::new(config.clone(), sample_shape(&config))
                .map_err(|e| Failure::Input(e.into()))?,
            context: inputs.context.clone(),
            history_builder: inputs.builder.clone(),
            history,
            highlights: inputs.highlights.clone(),
            probe_panel: inputs.panel.clone(),
            paths: paths.clone(),
        })
    };
    let resumed = if args.resume {
        StreamPipeline::resume(parts()?).input_err("the checkpoint cannot be used")?
    } else {
        None
    };
    let skip = resumed.as_ref().map_or(0, StreamPipeline::offset);
    let mut pipeline = match resumed {
        Some(p) => p,
        None => StreamPipeline::new(parts()?).input_err("starting the stream")?,
    };
    if inputs.truth_highlights > inputs.highlights.len() && !args.quiet {
        eprintln!(
            "time-to-boost probes on {} of the {} highlights (a seeded choice; [stream] probe_highlights)",
            inputs.highlights.len(),
            inputs.truth_highlights
        );
    }
    if skip > 0 && !args.quiet {
        eprintln!("resuming after record {skip} (rebuilding the history from the input)");
    }
    let reader = open_events(&inputs.events).input_err("opening the events")?;
    let mut filter = EventFilter::default();
    let started = Instant::now();
    let mut last_print = Instant::now();
    let mut first_ts: Option<i64> = None;
    let (mut trained_at_start, mut wall_at_start) = (pipeline.progress().counters.trained, 0.0);
    for (index, item) in reader.enumerate() {
        let index = index as u64;
        let event = match item {
            Ok(e) => Some(e),
            Err(ReadError::Record(_)) => None,
            Err(ReadError::Fatal(e)) => return Err(Failure::Runtime(e.into())),
        };
        if index < skip {
            pipeline
                .replay(&mut filter, event.as_ref())
                .map_err(|e| Failure::Runtime(e.into()))?;
            continue;
        }
        if index == skip {
            trained_at_start = pipeline.progress().counters.trained;
            wall_at_start = started.elapsed().as_secs_f64();
        }
        let Some(event) = event else {
            pipeline.skip_unreadable();
            continue;
        };
        if stream_settings.pace > 0.0 {
            let first = *first_ts.get_or_insert(event.ts.0);
            let due = (event.ts.0 - first) as f64 / 1_000.0 / stream_settings.pace;
            let now = started.elapsed().as_secs_f64();
            if due > now {
                std::thread::sleep(Duration::from_secs_f64(due - now));
            }
        }
        pipeline
            .push(event)
            .map_err(|e| Failure::Runtime(e.into()))?;
        if !args.quiet && last_print.elapsed() >= Duration::from_secs(2) {
            last_print = Instant::now();
            let p = pipeline.progress();
            let wall = started.elapsed().as_secs_f64() - wall_at_start;
            let rate = (p.counters.trained - trained_at_start) as f64 / wall.max(1e-9);
            let clock = p.clock.unwrap_or(0);
            eprintln!(
                "event time {} · {} records · {} samples trained ({rate:.0}/s) · model v{} · lag {:.1} s",
                fmt_ts(clock),
                p.counters.records,
                p.counters.trained,
                p.version,
                (clock - p.trained_ts).max(0) as f64 / 1_000.0
            );
        }
    }
    let summary = pipeline.finish().map_err(|e| Failure::Runtime(e.into()))?;
    let wall = started.elapsed().as_secs_f64() - wall_at_start;
    // The summary, and how many highlights the truth file held (the probes cover a
    // seeded choice of them when there are more than `probe_highlights`).
    let mut value = serde_json::to_value(&summary).map_err(anyhow::Error::from)?;
    if let Some(map) = value.as_object_mut() {
        map.insert(
            "truth_highlights".into(),
            serde_json::Value::from(inputs.truth_highlights),
        );
    }
    let json = serde_json::to_string_pretty(&value).map_err(anyhow::Error::from)?;
    std::fs::write(args.out.join("summary.json"), json).map_err(anyhow::Error::from)?;
    write_highlights(
        &args.out.join("highlights.csv"),
        &inputs.highlights,
        &summary,
    )?;
    if !args.quiet {
        let trained = summary.counters.trained - trained_at_start;
        eprintln!(
            "streamed in {wall:.1} s: {:.0} samples/s, {:.0} events/s",
            trained as f64 / wall.max(1e-9),
            (summary.counters.records - skip) as f64 / wall.max(1e-9)
        );
    }
    Ok(summary)
}

fn fmt_ts(ms: i64) -> String {
    let s = ms.div_euclid(1_000);
    let (h, m, sec) = (
        s.rem_euclid(86_400) / 3_600,
        s.rem_euclid(3_600) / 60,
        s % 60,
    );
    format!("day {} {h:02}:{m:02}:{sec:02}", s.div_euclid(86_400))
}

fn write_highlights(
    path: &Path,
    highlights: &[Highlight],
    summary: &StreamSummary,
) -> Result<(), Failure> {
    let mut text = String::from("live,start,end,kind,time_to_boost_s\n");
    for (h, b) in highlights.iter().zip(&summary.boost_s) {
        let b = b.map_or("never".to_string(), |b| format!("{b:.0}"));
        text.push_str(&format!(
            "{},{},{},{},{b}\n",
            h.live, h.start, h.end, h.kind
        ));
    }
    std::fs::write(path, text).map_err(anyhow::Error::from)?;
    Ok(())
}

/// Median, p90 (never = ∞) and the share boosted before the highlight's end.
pub fn boost_stats(boost_s: &[Option<f64>]) -> (Option<f64>, Option<f64>, f64) {
    let mut v: Vec<f64> = boost_s.iter().map(|b| b.unwrap_or(f64::INFINITY)).collect();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        v.get(i).copied().filter(|x| x.is_finite())
    };
    let boosted = boost_s.iter().filter(|b| b.is_some()).count();
    (q(0.5), q(0.9), boosted as f64 / boost_s.len().max(1) as f64)
}

/// Runs the command and prints the summary.
pub fn run(settings: &Settings, args: StreamArgs) -> Result<(), Failure> {
    let summary = stream(settings, &args)?;
    print_summary(&summary);
    println!(
        "wrote {}/model (published versions), metrics.csv, summary.json, highlights.csv, model.bin",
        args.out.display()
    );
    Ok(())
}

/// Prints a stream's counters, its prequential table and the time-to-boost line.
pub fn print_summary(summary: &StreamSummary) {
    let c = &summary.counters;
    println!(
        "stream `{}`: {} records · {} events · {} samples trained in {} steps · {} exposures scored · model v{}",
        summary.policy.as_str(),
        c.records,
        c.events,
        c.trained,
        c.steps,
        c.served_joined,
        summary.version
    );
    println!("prequential (cumulative)      served: scored at the impression, complete labels");
    println!(
        "{:<10} {:>9} {:>8} {:>8} {:>9} | {:>9} {:>8} {:>8}",
        "task", "positives", "AUC", "GAUC", "log_loss", "train pos", "AUC", "GAUC"
    );
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    for ((task, s), (_, t)) in summary.served.iter().zip(&summary.train) {
        println!(
            "{:<10} {:>9} {:>8} {:>8} {:>9} | {:>9} {:>8} {:>8}",
            task.as_str(),
            s.positives,
            f(s.auc),
            f(s.gauc),
            f(s.log_loss),
            t.positives,
            f(t.auc),
            f(t.gauc)
        );
    }
    if summary.highlights > 0 {
        let (median, p90, share) = boost_stats(&summary.boost_s);
        let g = |v: Option<f64>| v.map_or("never".to_string(), |v| format!("{v:.0} s"));
        println!(
            "highlight time-to-boost ({} highlights): median {} · p90 {} · boosted before the end {:.0} %",
            summary.highlights,
            g(median),
            g(p90),
            share * 100.0
        );
    }
}

//! `liverank forecast train|eval`: LiveForesighter's statistic forecaster and product
//! predictor, trained on the earlier rooms of a sample set and judged on the later ones
//! against last-value, moving-average, shared-linear and Markov baselines.

use crate::settings::Settings;
use crate::{Failure, InputContext};
use anyhow::Context;
use clap::{Args, Subcommand};
use liverank_ingest::read_table;
use liverank_model::foresight::{ProductModel, StatModel};
use liverank_report::plot::{LineChart, Series};
use liverank_sim::realism::TruthHighlight;
use liverank_train::forecast::{
    ForecastData, ForecastEval, ONLINE, ORDERS, PREDICTORS, evaluate_forecasters, forecast_data,
    forecast_traces, train_forecasters,
};
use liverank_train::load_samples;
use liverank_types::STAT_SERIES;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Arguments of `liverank forecast`.
#[derive(Debug, Args)]
pub struct ForecastArgs {
    #[command(subcommand)]
    command: ForecastCommand,
}

#[derive(Debug, Subcommand)]
enum ForecastCommand {
    /// Train both forecasters on the rooms that start before the held-out part of the day.
    Train(TrainArgs),
    /// Evaluate trained forecasters on the held-out rooms.
    Eval(EvalArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    /// A `liverank samples` output directory (samples with their feature blocks).
    #[arg(long)]
    pub(crate) samples: PathBuf,
    /// Output directory: forecaster.bin, product.bin, train.json.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Seed of the weights and the window order. Default: [forecast].
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Passes over the training windows. Default: [forecast].
    #[arg(long)]
    pub(crate) epochs: Option<usize>,
    /// Print nothing but the summary.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// The samples the models were trained on (the held-out rooms are taken from them).
    #[arg(long)]
    pub(crate) samples: PathBuf,
    /// Directory written by `liverank forecast train`.
    #[arg(long)]
    pub(crate) model: PathBuf,
    /// The simulator's truth_highlights file (.parquet/.jsonl). Default: beside the events
    /// named in the samples' summary.json, if there.
    #[arg(long)]
    pub(crate) truth: Option<PathBuf>,
    /// Also write the evaluation as JSON here.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Also draw forecast vs actual (PNG) of a few held-out rooms with highlights into this
    /// directory: online viewers and, for e-commerce rooms, orders.
    #[arg(long)]
    pub(crate) plot: Option<PathBuf>,
}

/// Share of the samples' time range whose rooms train (the rest is held out).
const TRAIN_FRACTION: f64 = 0.75;

fn load_data(settings: &Settings, samples: &Path) -> Result<ForecastData, Failure> {
    let all = load_samples(samples).input_err("reading samples")?;
    let width = i64::try_from(settings.samples.stats_bucket_ms).unwrap_or(30_000);
    let data = forecast_data(&all, width).input_err("building room timelines")?;
    if data.malformed > 0 {
        eprintln!(
            "warning: {} samples with a malformed statistics block were skipped",
            data.malformed
        );
    }
    Ok(data)
}

/// Runs the command.
pub fn run(settings: &Settings, args: ForecastArgs) -> Result<(), Failure> {
    match args.command {
        ForecastCommand::Train(a) => train(settings, a),
        ForecastCommand::Eval(a) => eval(settings, a),
    }
}

pub(crate) fn train(settings: &Settings, args: TrainArgs) -> Result<(), Failure> {
    let mut config = settings.forecast.clone();
    if let Some(s) = args.seed {
        config.seed = s;
    }
    if let Some(e) = args.epochs {
        config.epochs = e;
    }
    config.validate().input_err("forecast settings")?;
    let data = load_data(settings, &args.samples)?;
    let quiet = args.quiet;
    let trained = train_forecasters(&data, &config, TRAIN_FRACTION, |line| {
        if !quiet {
            eprintln!("{line}");
        }
    })
    .input_err("training the forecasters")?;
    std::fs::create_dir_all(&args.out).context("creating the output directory")?;
    let write = |name: &str, bytes: Vec<u8>| -> Result<(), Failure> {
        std::fs::write(args.out.join(name), bytes)
            .with_context(|| format!("writing {name}"))
            .map_err(Failure::from)
    };
    write(
        "forecaster.bin",
        trained.stat.to_bytes().map_err(anyhow::Error::from)?,
    )?;
    write(
        "product.bin",
        trained.product.to_bytes().map_err(anyhow::Error::from)?,
    )?;
    let r = &trained.report;
    write(
        "train.json",
        serde_json::to_vec_pretty(r).map_err(anyhow::Error::from)?,
    )?;
    println!(
        "rooms: {} train, {} held out · {} training windows, {:.0} windows/s · final MSE(log1p) {:.5}",
        r.rooms_train,
        r.rooms_test,
        r.windows,
        r.windows_per_s,
        r.epoch_loss.last().copied().unwrap_or(f32::NAN)
    );
    println!(
        "products: {} training chunks, {:.0} chunks/s · final cross-entropy {:.4}",
        r.product_chunks,
        r.product_chunks_per_s,
        r.product_epoch_loss.last().copied().unwrap_or(f32::NAN)
    );
    println!("models → {}", args.out.display());
    Ok(())
}

/// Room → highlight start instants, from the simulator's truth file.
/// Per room, its highlights as (start, end) ms.
pub(crate) fn highlight_spans(path: &Path) -> Result<HashMap<u64, Vec<(i64, i64)>>, Failure> {
    let rows: Vec<TruthHighlight> =
        read_table(path).input_err(&format!("reading {}", path.display()))?;
    let mut out: HashMap<u64, Vec<(i64, i64)>> = HashMap::new();
    for h in rows {
        out.entry(h.live).or_default().push((h.start, h.end));
    }
    Ok(out)
}

pub(crate) fn default_truth(samples: &Path) -> Option<PathBuf> {
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(samples.join("summary.json")).ok()?).ok()?;
    let events = PathBuf::from(summary.get("events")?.as_str()?);
    let ext = events.extension()?.to_str()?.to_string();
    let path = events.parent()?.join(format!("truth_highlights.{ext}"));
    path.exists().then_some(path)
}

pub(crate) fn eval(settings: &Settings, args: EvalArgs) -> Result<(), Failure> {
    let read = |name: &str| {
        let path = args.model.join(name);
        std::fs::read(&path).input_err(&format!("reading {}", path.display()))
    };
    let stat = StatModel::from_bytes(&read("forecaster.bin")?).input_err("forecaster.bin")?;
    let product = ProductModel::from_bytes(&read("product.bin")?).input_err("product.bin")?;
    let data = load_data(settings, &args.samples)?;
    let truth = args.truth.clone().or_else(|| default_truth(&args.samples));
    let spans = match &truth {
        Some(p) => highlight_spans(p)?,
        None => {
            eprintln!("no truth_highlights file: the highlight subsets stay empty");
            HashMap::new()
        }
    };
    let highlights: HashMap<u64, Vec<i64>> = spans
        .iter()
        .map(|(&live, s)| (live, s.iter().map(|&(start, _)| start).collect()))
        .collect();
    let seed = stat.config().seed;
    let report = evaluate_forecasters(&data, &stat, &product, &highlights, TRAIN_FRACTION, seed)
        .input_err("evaluating")?;
    print_eval(&report);
    if let Some(dir) = &args.plot {
        plot_traces(&data, &stat, &highlights, &spans, dir)?;
    }
    if let Some(path) = &args.json {
        std::fs::write(
            path,
            serde_json::to_vec_pretty(&report).map_err(anyhow::Error::from)?,
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Forecast vs actual of four held-out rooms with highlights (online viewers) and of two
/// e-commerce rooms (orders), one PNG each, highlights shaded.
fn plot_traces(
    data: &ForecastData,
    stat: &StatModel,
    highlights: &HashMap<u64, Vec<i64>>,
    spans: &HashMap<u64, Vec<(i64, i64)>>,
    dir: &Path,
) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ecommerce: HashMap<u64, Vec<i64>> = highlights
        .iter()
        .filter(|(live, _)| {
            data.rooms
                .iter()
                .any(|r| r.live == **live && r.author_type.as_deref() == Some("ecommerce"))
        })
        .map(|(&k, v)| (k, v.clone()))
        .collect();
    let mut traces = forecast_traces(data, stat, highlights, TRAIN_FRACTION, ONLINE, 4)
        .input_err("forecast traces")?;
    traces.extend(
        forecast_traces(data, stat, &ecommerce, TRAIN_FRACTION, ORDERS, 2)
            .input_err("forecast traces")?,
    );
    if traces.is_empty() {
        eprintln!("no held-out room with a highlight: nothing to plot");
    }
    let points = |m: &[f64], v: &[Option<f64>]| -> Vec<(f64, f64)> {
        m.iter()
            .zip(v)
            .map(|(&x, y)| (x, y.unwrap_or(f64::NAN)))
            .collect()
    };
    for t in &traces {
        let name = STAT_SERIES[t.series];
        let room = data.rooms.iter().find(|r| r.live == t.live);
        let start = room.map_or(0, |r| r.start);
        let mut chart = LineChart::new(
            format!(
                "room {} ({}): {name}",
                t.live,
                t.author_type.as_deref().unwrap_or("?")
            ),
            "minutes since the room went on air",
            format!("{name} per 30 s bucket"),
        )
        .with_series(Series::new("actual", points(&t.minutes, &t.actual)))
        .with_series(Series::new(
            "iTransformer, one bucket ahead",
            points(&t.minutes, &t.forecast),
        ))
        .with_series(Series::new("last value", points(&t.minutes, &t.last_value)));
        for &(from, to) in spans.get(&t.live).map_or(&[][..], Vec::as_slice) {
            chart = chart.with_band(
                (from - start) as f64 / 60_000.0,
                (to - start) as f64 / 60_000.0,
            );
        }
        let stem = format!("forecast_{}_{name}", t.live);
        let figure = chart
            .render(
                &stem,
                "The forecaster's next-bucket forecast against the bucket's count and the \
                 last value, highlights shaded.",
            )
            .map_err(anyhow::Error::from)?;
        let path = dir.join(format!("{stem}.png"));
        liverank_fs::write_atomic_bytes(&path, &figure.png)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("plot → {}", path.display());
    }
    Ok(())
}

fn print_eval(r: &ForecastEval) {
    println!(
        "held-out rooms: {} (starting from {} ms) · moving-average windows per series {:?}",
        r.test_rooms, r.test_from, r.ma_windows
    );
    for s in &r.subsets {
        println!(
            "\n== {}: {} windows in {} rooms",
            s.name, s.windows, s.rooms
        );
        if s.windows == 0 {
            continue;
        }
        println!(
            "{:<12} {:>9} {:>9} {:>9} {:>9}   {:>8} {:>8} {:>8} {:>8}   {:>8} {:>18} {:>8}",
            "series",
            "mse:model",
            PREDICTORS[1],
            PREDICTORS[2],
            PREDICTORS[3],
            "mae:model",
            PREDICTORS[1],
            PREDICTORS[2],
            PREDICTORS[3],
            "gain",
            "95% CI",
            "vs lin"
        );
        for x in &s.series {
            println!(
                "{:<12} {:>9.5} {:>9.5} {:>9.5} {:>9.5}   {:>8.3} {:>8.3} {:>8.3} {:>8.3}   {:>7.2}% [{:>6.2}%, {:>6.2}%] {:>7.2}%  (vs {})",
                x.series,
                x.mse[0],
                x.mse[1],
                x.mse[2],
                x.mse[3],
                x.mae[0],
                x.mae[1],
                x.mae[2],
                x.mae[3],
                100.0 * x.gain,
                100.0 * x.gain_ci.0,
                100.0 * x.gain_ci.1,
                100.0 * x.gain_vs_linear,
                x.better_naive
            );
        }
    }
    let c = &r.next_c3;
    println!(
        "\nnext c3 over {} held-out positions: model top-1 {:.4} top-5 {:.4} · Markov top-1 {:.4} top-5 {:.4}",
        c.positions, c.top1, c.top5, c.markov_top1, c.markov_top5
    );
    let t = &r.timing;
    println!(
        "inference: one room {:.3} ms · all {} rooms on air together {:.3} ms (budget of a 30 s bucket: {:.0}× over)",
        t.per_room_s * 1e3,
        t.on_air_rooms,
        t.all_on_air_s * 1e3,
        30.0 / t.all_on_air_s.max(1e-12)
    );
}

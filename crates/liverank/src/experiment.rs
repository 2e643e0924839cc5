//! `liverank experiment FILE.toml`: named model variants × seeds trained on the same
//! samples and history, one table (Markdown and CSV) of AUC / GAUC per task with
//! mean ± half-range. The work is `liverank_eval::run_experiment`; this command reads the
//! file's `[data]` section, loads the inputs once and writes the table.
//!
//! ```toml
//! seeds = [1, 2, 3]
//! tasks = ["click", "long_view"]
//! segment = true                  # also the Cross segment's AUC / GAUC
//! slices = ["highlight", "ecommerce"]  # also during highlights / on e-commerce rooms
//! [data]
//! train_samples = "data/small/samples"
//! history = "data/small/history"  # optional: without it every sequence is empty
//! policy = "realtime"             # optional; epochs, batch_size, train_fraction too
//! forecaster = "data/small/forecast" # optional: LiveForesighter's models (model.foresight.dir)
//! [[variant]]
//! name = "no cross"
//! model = { history_sequences = [], history_profile = false }
//! [[variant]]
//! name = "full"
//! ```

use crate::settings::Settings;
use crate::{Failure, InputContext};
use anyhow::Context;
use clap::Args;
use liverank_eval::{Event, ExperimentData, ExperimentSpec, run_experiment};
use liverank_history::{EmbeddedStore, GsuAssembler, HistoryConfig};
use liverank_train::{HistorySource, TrainSettings, load_samples, split_samples};
use liverank_types::Policy;
use serde::Deserialize;
use std::path::PathBuf;

/// Arguments of `liverank experiment`.
#[derive(Debug, Args, Clone)]
pub struct ExperimentArgs {
    /// The experiment file (TOML: seeds, tasks, segment, [model], [[variant]], [data]).
    pub file: PathBuf,
    /// Directory for table.md and table.csv (default: next to the file, named after it).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The `[data]` section: where the samples and the history are, how to train.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataSection {
    train_samples: PathBuf,
    eval_samples: Option<PathBuf>,
    history: Option<PathBuf>,
    #[serde(default = "realtime")]
    policy: Policy,
    epochs: Option<usize>,
    batch_size: Option<usize>,
    train_fraction: Option<f64>,
    /// The simulator's truth_highlights file for the `highlight` slice (default: beside
    /// the events the training samples were built from).
    truth_highlights: Option<PathBuf>,
    /// LiveForesighter's forecasters (`liverank forecast train --out`): sets every
    /// variant's `model.foresight.dir` where the variant turns a branch on.
    forecaster: Option<PathBuf>,
}

fn realtime() -> Policy {
    Policy::Realtime
}

/// Runs the command.
pub fn run(settings: &Settings, args: ExperimentArgs) -> Result<(), Failure> {
    let out = args.out.unwrap_or_else(|| args.file.with_extension(""));
    run_file(settings, &args.file, &out, None)
}

/// Where `liverank run` points an experiment: its own samples and history instead of the
/// file's `[data]` paths (the file's training settings stay).
pub struct DataOverride {
    /// Samples directory.
    pub train_samples: PathBuf,
    /// History store directory.
    pub history: PathBuf,
}

/// Runs the experiment in `file`, writing its table into `out`.
pub fn run_file(
    settings: &Settings,
    file: &std::path::Path,
    out: &std::path::Path,
    data_override: Option<DataOverride>,
) -> Result<(), Failure> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the experiment file {}", file.display()))
        .map_err(Failure::Input)?;
    let mut table: toml::Table = text.parse().input_err("parsing the experiment file")?;
    let mut data: DataSection = match (table.remove("data"), &data_override) {
        (Some(d), _) => d.try_into().input_err("the [data] section")?,
        (None, Some(o)) => DataSection {
            train_samples: o.train_samples.clone(),
            eval_samples: None,
            history: None,
            policy: Policy::Realtime,
            epochs: None,
            batch_size: None,
            train_fraction: None,
            truth_highlights: None,
            forecaster: None,
        },
        (None, None) => {
            return Err(Failure::Input(anyhow::anyhow!(
                "the experiment file has no [data] section"
            )));
        }
    };
    if let Some(o) = data_override {
        data.train_samples = o.train_samples;
        data.eval_samples = None;
        data.history = Some(o.history);
    }
    let mut spec: ExperimentSpec = toml::Value::Table(table)
        .try_into()
        .input_err("the experiment file")?;
    spec.validate().input_err("the experiment file")?;
    let train_settings = TrainSettings {
        epochs: data.epochs.unwrap_or(settings.train.epochs),
        batch_size: data.batch_size.unwrap_or(settings.train.batch_size).max(1),
        train_fraction: data.train_fraction.unwrap_or(settings.train.train_fraction),
        ..settings.train.clone()
    };
    train_settings
        .validate()
        .input_err("the [data] section's training settings")?;
    let train_all = load_samples(&data.train_samples).input_err("reading training samples")?;
    let eval_all = match &data.eval_samples {
        Some(p) => load_samples(p).input_err("reading evaluation samples")?,
        None => train_all.clone(),
    };
    let (train, eval) = split_samples(
        train_all,
        eval_all,
        data.policy,
        train_settings.train_fraction,
    )
    .input_err("splitting samples")?;
    let store = match &data.history {
        Some(dir) => {
            let config = HistoryConfig {
                cache_users: 1 << 20,
                ..settings.history.clone()
            };
            Some(EmbeddedStore::open_read_only(dir, &config).input_err("opening [data] history")?)
        }
        None => None,
    };
    let highlights = if spec.slices.iter().any(|s| s == "highlight") {
        let truth = data
            .truth_highlights
            .clone()
            .or_else(|| crate::forecast::default_truth(&data.train_samples));
        match truth {
            Some(p) => Some(crate::forecast::highlight_spans(&p)?),
            None => {
                eprintln!("no truth_highlights file: the highlight slice stays empty");
                None
            }
        }
    } else {
        None
    };
    // Priors set to "from the data" are fixed from the training slice, as `train` does.
    let mut base = settings.model.clone().with_data_priors(&train);
    // The forecasters' directory joins the keys every variant shares (the base model's
    // `foresight` table is not serialised while its branches are off).
    if let Some(dir) = &data.forecaster {
        let mut foresight = toml::Table::new();
        foresight.insert("dir".into(), dir.display().to_string().into());
        let mut shared = toml::Table::new();
        shared.insert("foresight".into(), foresight.into());
        liverank_eval::merge_tables(&mut spec.model, shared);
    }
    if data.policy == Policy::Fastslow {
        base.loss = liverank_model::LossKind::Pu;
    }
    // Every variant reads sequences of its own length from the one store.
    let history = store.as_ref().map(|store| HistorySource {
        store,
        assembler: GsuAssembler::new(base.history_len),
    });
    let runs = spec.variants.len() * spec.seeds.len();
    let mut done = 0usize;
    let started = std::time::Instant::now();
    let table = run_experiment(
        &spec,
        &base,
        &train_settings,
        ExperimentData {
            highlights: highlights.as_ref(),
            train: &train,
            eval: &eval,
            history,
        },
        |event| match event {
            Event::Start { variant, seed } => {
                eprintln!("[{}/{runs}] {variant} seed {seed} …", done + 1);
            }
            Event::Done {
                evaluation,
                rows_per_s,
                ..
            } => {
                done += 1;
                let click = evaluation
                    .tasks
                    .iter()
                    .find(|(t, _)| *t == liverank_types::Task::Click)
                    .and_then(|(_, m)| m.gauc);
                eprintln!(
                    "      click GAUC {}  {rows_per_s:.0} samples/s  ({:.0} s so far)",
                    click.map_or("-".into(), |g| format!("{g:.4}")),
                    started.elapsed().as_secs_f64()
                );
            }
        },
    )
    .map_err(|e| Failure::Runtime(e.into()))?;
    std::fs::create_dir_all(out).input_err("creating the output directory")?;
    let markdown = table.to_markdown();
    std::fs::write(out.join("table.md"), &markdown).map_err(anyhow::Error::from)?;
    std::fs::write(out.join("table.csv"), table.to_csv()).map_err(anyhow::Error::from)?;
    println!(
        "{} train / {} eval samples, {} variants × {} seeds",
        train.len(),
        eval.len(),
        spec.variants.len(),
        spec.seeds.len()
    );
    print!("{markdown}");
    println!("written: {}/table.md, table.csv", out.display());
    Ok(())
}

//! `liverank train`: offline training on sample files with a time split, evaluation on the
//! held-out `complete` labels, popularity and (with the simulator's truth) oracle baselines.

use crate::settings::Settings;
use crate::{Failure, IngestContext, InputContext};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use liverank_history::{
    BackendKind, EmbeddedStore, GsuAssembler, HistoryConfig, HistoryStore, RedisStore,
};
use liverank_model::{LossKind, RankerConfig, Trainer, TrunkKind};
use liverank_train::offline::{popularity_click_auc, sample_shape};
use liverank_train::{
    Evaluation, HistorySource, TrainSettings, evaluate_on, load_samples, split_samples,
    train_offline,
};
use liverank_types::Policy;
use std::collections::HashMap;
use std::path::PathBuf;

/// Arguments of `liverank train`.
#[derive(Debug, Args, Clone)]
pub struct TrainArgs {
    /// Training samples: a `liverank samples` output directory or a .parquet/.jsonl file.
    #[arg(long)]
    pub train_samples: PathBuf,
    /// Evaluation samples (their `complete` policy rows are used). Default: the training input.
    #[arg(long)]
    pub eval_samples: Option<PathBuf>,
    /// Policy of the training samples (fastslow trains with the PU loss).
    #[arg(long, default_value = "realtime")]
    pub policy: Policy,
    /// Model configuration file (TOML, the keys of the settings' [model] section) replacing
    /// that section; the flags below override both.
    #[arg(long)]
    pub model_config: Option<PathBuf>,
    /// Multi-task trunk.
    #[arg(long, value_parser = ["mmoe", "cgc", "ple"])]
    pub trunk: Option<String>,
    /// Seed of the model init and the sample order.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Passes over the training slice. Default: the settings' [train] section.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Rows per step. Default: [train].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Share of the time range used for training; the rest is evaluated. Default: [train].
    #[arg(long)]
    pub train_fraction: Option<f64>,
    /// Embedded history store (built by `liverank history build` from the same events):
    /// the Cross sequences of every sample are read from it as they were at the exposure.
    /// Without it, training reads the settings' Redis store when `history.backend` is
    /// redis, and otherwise a model configured with history sequences sees them empty.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// The simulator's truth_exposures.parquet: report the oracle click AUC on the same
    /// held-out exposures.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Output directory: model.ckpt (written every epoch) and evaluation.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from <out>/model.ckpt (same data and settings continue exactly).
    #[arg(long)]
    pub resume: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The model configuration the arguments describe.
pub fn model_config(settings: &Settings, args: &TrainArgs) -> Result<RankerConfig, Failure> {
    let mut config = match &args.model_config {
        Some(path) => {
            let text = std::fs::read_to_string(path).input_err("reading --model-config")?;
            toml::from_str(&text).input_err("parsing --model-config")?
        }
        None => settings.model.clone(),
    };
    if let Some(t) = &args.trunk {
        config.trunk.kind = match t.as_str() {
            "mmoe" => TrunkKind::Mmoe,
            "cgc" => TrunkKind::Cgc,
            _ => TrunkKind::Ple,
        };
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if args.policy == Policy::Fastslow {
        config.loss = LossKind::Pu;
    }
    config.validate().input_err("invalid model configuration")?;
    Ok(config)
}

/// The history store training reads: `--history DIR` (an embedded store there), else the
/// settings' Redis store when `history.backend = "redis"`, else none.
fn open_history(
    history: &HistoryConfig,
    args: &TrainArgs,
    config: &RankerConfig,
) -> Result<Option<Box<dyn HistoryStore>>, Failure> {
    // Training reads every user again and again: keep them all decoded.
    let history = HistoryConfig {
        cache_users: 1 << 20,
        ..history.clone()
    };
    history.validate().map_err(|e| {
        Failure::Input(anyhow::Error::from(e).context("invalid [history] settings"))
    })?;
    match (&args.history, history.backend) {
        (Some(dir), BackendKind::Embedded) => {
            if !dir.join(liverank_history::embedded::FILE_NAME).exists() {
                return Err(Failure::Input(anyhow::anyhow!(
                    "--history {}: no history store there (build one with `liverank history build --events … --store {}`)",
                    dir.display(),
                    dir.display()
                )));
            }
            // Read-only: several trainings (seeds, policies) can share one store.
            let store =
                EmbeddedStore::open_read_only(dir, &history).input_err("opening --history")?;
            Ok(Some(Box::new(store)))
        }
        (Some(dir), BackendKind::Redis) => Err(Failure::Input(anyhow::anyhow!(
            "--history {} names an embedded store, but history.backend is redis (the store at {} under prefix {}): drop --history, or set history.backend = \"embedded\"",
            dir.display(),
            history.redis_url,
            history.redis_prefix
        ))),
        (None, BackendKind::Redis) => {
            let store = RedisStore::connect(&history).map_err(|e| {
                Failure::Runtime(
                    anyhow::Error::from(e).context("connecting to the Redis history store"),
                )
            })?;
            Ok(Some(Box::new(store)))
        }
        (None, BackendKind::Embedded) => {
            if !config.history_sequences.is_empty() && !args.quiet {
                eprintln!(
                    "note: the model has {} history sequences but no --history store was given: they stay empty",
                    config.history_sequences.len()
                );
            }
            Ok(None)
        }
    }
}

/// A training error by its class: bad input exits 2, anything else 1.
fn train_failure(e: liverank_train::TrainError, msg: &str) -> Failure {
    let input = e.is_bad_input();
    let e = anyhow::Error::from(e).context(msg.to_string());
    if input {
        Failure::Input(e)
    } else {
        Failure::Runtime(e)
    }
}

/// Result of a training run, for the caller to print or aggregate.
#[derive(Debug)]
pub struct TrainOutcome {
    /// Evaluation of the trained model.
    pub evaluation: Evaluation,
    /// Popularity baseline click AUC on the same exposures.
    pub popularity_auc: Option<f64>,
    /// Oracle click AUC (simulator truth) on the same exposures.
    pub oracle_auc: Option<f64>,
    /// Training rows per second.
    pub rows_per_s: f64,
    /// Training rows.
    pub train_rows: usize,
}

/// Trains and evaluates; prints nothing but the progress bar.
pub fn train(settings: &Settings, args: &TrainArgs) -> Result<TrainOutcome, Failure> {
    let config = model_config(settings, args)?;
    let history_settings = settings.history.clone();
    let settings = TrainSettings {
        epochs: args.epochs.unwrap_or(settings.train.epochs),
        batch_size: args.batch_size.unwrap_or(settings.train.batch_size),
        train_fraction: args.train_fraction.unwrap_or(settings.train.train_fraction),
        shuffle: settings.train.shuffle,
        pipeline: settings.train.pipeline,
        soft_refresh_steps: settings.train.soft_refresh_steps,
    };
    settings.validate().map_err(|e| Failure::Input(e.into()))?;
    let train_all = load_samples(&args.train_samples)
        .map_err(|e| train_failure(e, "reading training samples"))?;
    let eval_all = match &args.eval_samples {
        Some(p) => load_samples(p).map_err(|e| train_failure(e, "reading evaluation samples"))?,
        None => train_all.clone(),
    };
    let (train_rows, eval_rows) =
        split_samples(train_all, eval_all, args.policy, settings.train_fraction)
            .input_err("splitting samples")?;
    // Priors set to "from the data" are fixed here, from the training slice, and travel in
    // the checkpoint's configuration.
    let config = config.with_data_priors(&train_rows);
    let ckpt = args.out.as_ref().map(|d| d.join("model.ckpt"));
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).input_err("creating --out")?;
    }
    let trainer = match (&ckpt, args.resume) {
        (Some(path), true) if path.exists() => {
            Trainer::load(path).input_err("reading the checkpoint")?
        }
        _ => Trainer::new(config.clone(), sample_shape(&config))
            .map_err(|e| Failure::Input(e.into()))?,
    };
    let history_store = open_history(&history_settings, args, &config)?;
    let history = history_store.as_deref().map(|store| HistorySource {
        store,
        assembler: GsuAssembler::new(config.history_len),
    });
    let history = history.as_ref();
    let per_epoch = train_rows.len().div_ceil(settings.batch_size) as u64;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(per_epoch * settings.epochs as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("train [{bar:30}] {pos}/{len} steps  {msg}  eta {eta}")
            .map_err(anyhow::Error::from)?
            .progress_chars("=> "),
    );
    bar.set_position(trainer.steps());
    let mut smoothed = f32::NAN;
    let run = train_offline(trainer, &settings, &train_rows, history, |trainer, p| {
        if let Some(trainer) = trainer {
            // End of an epoch: every update applied, a checkpoint resumes exactly.
            if let Some(path) = &ckpt {
                trainer
                    .save(path)
                    .map_err(liverank_train::TrainError::Model)?;
            }
            return Ok(());
        }
        smoothed = if smoothed.is_nan() {
            p.loss
        } else {
            0.98 * smoothed + 0.02 * p.loss
        };
        bar.set_position(p.step);
        bar.set_message(format!("loss {smoothed:.4}  {:.0} samples/s", p.rows_per_s));
        Ok(())
    })
    .map_err(|e| Failure::Runtime(e.into()))?;
    bar.finish_and_clear();
    let scorer = run
        .trainer
        .scorer()
        .map_err(|e| Failure::Runtime(e.into()))?;
    let evaluation =
        evaluate_on(&scorer, &eval_rows, history).map_err(|e| Failure::Runtime(e.into()))?;
    let popularity_auc = popularity_click_auc(&train_rows, &eval_rows);
    let oracle_auc = match &args.truth {
        Some(path) => {
            let truth: Vec<liverank_sim::TruthExposure> =
                liverank_ingest::read_table(path).ingest_err("reading --truth")?;
            let p: HashMap<(u64, u64), f64> = truth
                .iter()
                .map(|t| ((t.request_id.0, t.live.0), t.p_click))
                .collect();
            let (scores, labels): (Vec<f32>, Vec<bool>) = eval_rows
                .iter()
                .filter_map(|s| {
                    p.get(&(s.request_id.0, s.live.0)).map(|&p| {
                        (
                            p as f32,
                            s.labels.get(liverank_types::Task::Click) == Some(true),
                        )
                    })
                })
                .unzip();
            liverank_train::metrics::auc(&scores, &labels)
        }
        None => None,
    };
    if let Some(dir) = &args.out {
        let json = serde_json::json!({
            "policy": args.policy.as_str(),
            "train_rows": train_rows.len(),
            // The held-out slice starts here (ms): a later test of this model on the same
            // day (`liverank abtest`) starts no earlier.
            "eval_from_ms": eval_rows.iter().map(|s| s.exposure_ts.0).min(),
            "train_until_ms": train_rows.iter().map(|s| s.ts.0).max(),
            "eval_exposures": evaluation.exposures,
            "tasks": evaluation.tasks.iter().map(|(t, m)| (t.as_str(), m)).collect::<HashMap<_, _>>(),
            "popularity_click_auc": popularity_auc,
            "oracle_click_auc": oracle_auc,
            "train_samples_per_s": run.rows_per_s,
        });
        let path = dir.join("evaluation.json");
        liverank_fs::write_atomic_bytes(
            &path,
            &serde_json::to_vec_pretty(&json).map_err(anyhow::Error::from)?,
        )
        .map_err(|e| anyhow::Error::from(e).context(format!("writing {}", path.display())))?;
    }
    Ok(TrainOutcome {
        evaluation,
        popularity_auc,
        oracle_auc,
        rows_per_s: run.rows_per_s,
        train_rows: train_rows.len(),
    })
}

/// Prints the evaluation table.
pub fn print_outcome(policy: Policy, o: &TrainOutcome) {
    let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.4}"));
    println!(
        "trained on {} `{}` samples ({:.0} samples/s); evaluated on {} held-out exposures (complete labels)",
        o.train_rows,
        policy.as_str(),
        o.rows_per_s,
        o.evaluation.exposures
    );
    println!(
        "{:<10} {:>9} {:>8} {:>8} {:>9} {:>8}",
        "task", "positives", "AUC", "GAUC", "log_loss", "calib"
    );
    for (task, m) in &o.evaluation.tasks {
        println!(
            "{:<10} {:>9} {:>8} {:>8} {:>9} {:>8}",
            task.as_str(),
            m.positives,
            f(m.auc),
            f(m.gauc),
            f(m.log_loss),
            f(m.calibration)
        );
    }
    println!(
        "baselines (click AUC): popularity {}  oracle {}",
        f(o.popularity_auc),
        f(o.oracle_auc)
    );
}

/// Runs the command.
pub fn run(settings: &Settings, args: TrainArgs) -> Result<(), Failure> {
    let outcome = train(settings, &args)?;
    print_outcome(args.policy, &outcome);
    Ok(())
}

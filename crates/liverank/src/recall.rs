//! `liverank recall eval`: the standard sequential protocol of recall models on any
//! (user, item, timestamp) interaction log — leave-one-out by time, full ranking over all
//! items, HR@K and NDCG@K — for the two yardsticks a trained recall model is compared
//! against (global popularity and item-kNN co-occurrence). The default log is the
//! simulator's short-video plays (`video_play` events of an events file); any CSV or Parquet
//! log is read through a column mapping.

use crate::Failure;
use crate::InputContext;
use crate::settings::Settings;
use clap::{Args, Subcommand};
use liverank_recall::{
    ColumnMapping, EvalConfig, EventFilter, ImportConfig, RecallEvalConfig, Split, Stage,
    evaluate_baselines, import_log,
};
use std::path::PathBuf;

/// Arguments of `liverank recall`.
#[derive(Debug, Args)]
pub struct RecallArgs {
    #[command(subcommand)]
    command: RecallCommand,
}

#[derive(Debug, Subcommand)]
enum RecallCommand {
    /// HR@K / NDCG@K of the recall baselines on an interaction log (leave-one-out, full ranking).
    Eval(EvalArgs),
    /// Recall@K of the next entered room per serving recall source and for their merge,
    /// against popularity, on a simulated world replayed in event time.
    Rooms(crate::room_recall::RoomsArgs),
}

#[derive(Debug, Args)]
struct EvalArgs {
    /// The log: a CSV / TSV (with a header) or Parquet file. Default: the simulator's
    /// events in <data_dir>/sim/events.parquet, their video plays.
    #[arg(long)]
    log: Option<PathBuf>,
    /// User column.
    #[arg(long, default_value = "user")]
    user: String,
    /// Item column (default: `video` for the simulator's events, else `item`).
    #[arg(long)]
    item: Option<String>,
    /// Timestamp column (integers or Arrow timestamps; default: `ts` for the simulator's
    /// events, else `timestamp`).
    #[arg(long)]
    timestamp: Option<String>,
    /// Keep only rows whose EVENT_COLUMN is one of --keep (default for the simulator's
    /// events: `type` = `video_play`).
    #[arg(long)]
    event_column: Option<String>,
    /// Values of --event-column to keep (repeatable).
    #[arg(long)]
    keep: Vec<String>,
    /// Cutoffs K (repeatable).
    #[arg(long = "k", default_values_t = [10, 50])]
    cutoffs: Vec<usize>,
    /// Evaluate the validation interaction instead of the test one.
    #[arg(long)]
    validation: bool,
    /// Also write the reports as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also train and evaluate the two-tower vector recall model (YouTube-DNN: user tower
    /// over the recent sequence, in-batch sampled softmax with logQ) on the training prefixes.
    #[arg(long)]
    two_tower: bool,
    /// Epochs of the two-tower model.
    #[arg(long, default_value_t = 12)]
    two_tower_epochs: usize,
    /// Training examples drawn per epoch (0 = every position of every training prefix).
    #[arg(long, default_value_t = 200_000)]
    two_tower_examples: usize,
    /// Adam learning rate of the two-tower model.
    #[arg(long, default_value_t = 0.01)]
    two_tower_lr: f64,
    /// Train the two-tower model without the logQ correction (the ablation).
    #[arg(long)]
    two_tower_no_logq: bool,
    /// Also train and evaluate MIND (multi-interest capsules by dynamic routing, label-aware
    /// attention) with at most this many interests, on the two-tower's other settings.
    #[arg(long, value_name = "K")]
    mind: Option<usize>,
    /// Exponent p of MIND's label-aware attention, softmax((c·v)^p).
    #[arg(long, default_value_t = 2)]
    mind_pow: u32,
}

/// Runs the command.
pub fn run(settings: &Settings, args: RecallArgs) -> Result<(), Failure> {
    match args.command {
        RecallCommand::Eval(a) => eval(settings, a),
        RecallCommand::Rooms(a) => crate::room_recall::run(settings, a),
    }
}

fn eval(settings: &Settings, args: EvalArgs) -> Result<(), Failure> {
    let simulated = args.log.is_none();
    let log = args
        .log
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("sim/events.parquet"));
    let default = |given: Option<String>, sim: &str, other: &str| {
        given.unwrap_or_else(|| if simulated { sim } else { other }.to_string())
    };
    let event = match (&args.event_column, simulated) {
        (Some(column), _) => Some(EventFilter {
            column: column.clone(),
            keep: args.keep.clone(),
        }),
        (None, true) => Some(EventFilter {
            column: "type".into(),
            keep: vec!["video_play".into()],
        }),
        (None, false) => None,
    };
    let config = RecallEvalConfig {
        import: ImportConfig {
            columns: ColumnMapping {
                user: args.user.clone(),
                item: default(args.item.clone(), "video", "item"),
                timestamp: default(args.timestamp.clone(), "ts", "timestamp"),
                event,
            },
            ..ImportConfig::default()
        },
        eval: EvalConfig {
            cutoffs: args.cutoffs.clone(),
            stage: if args.validation {
                Stage::Validation
            } else {
                Stage::Test
            },
        },
        ..RecallEvalConfig::default()
    };
    config.validate().input_err("recall eval settings")?;
    let started = std::time::Instant::now();
    let (interactions, report) =
        import_log(&log, &config.import).input_err(&format!("importing {}", log.display()))?;
    println!(
        "{}: {} rows read, {} kept, {} filtered, {} bad · {} users, {} items · {:.1} s",
        log.display(),
        report.rows,
        report.kept,
        report.filtered,
        report.bad,
        interactions.num_users(),
        interactions.num_items(),
        started.elapsed().as_secs_f64()
    );
    for bad in &report.examples {
        println!("  bad row {bad:?}");
    }
    let split = Split::leave_one_out(&interactions);
    let mut reports = evaluate_baselines(&split, &config).input_err("evaluating")?;
    if args.two_tower {
        let tower = liverank_model::two_tower::TwoTowerConfig {
            epochs: args.two_tower_epochs,
            examples_per_epoch: args.two_tower_examples,
            learning_rate: args.two_tower_lr,
            logq: !args.two_tower_no_logq,
            ..liverank_model::two_tower::TwoTowerConfig::default()
        };
        reports.push(two_tower(&split, &config, &tower, "two_tower")?);
    }
    if let Some(k) = args.mind {
        let mind = liverank_model::two_tower::TwoTowerConfig {
            epochs: args.two_tower_epochs,
            examples_per_epoch: args.two_tower_examples,
            learning_rate: args.two_tower_lr,
            logq: !args.two_tower_no_logq,
            interests: k,
            label_pow: args.mind_pow,
            ..liverank_model::two_tower::TwoTowerConfig::default()
        };
        reports.push(two_tower(&split, &config, &mind, "mind")?);
    }
    for r in &reports {
        println!("{r}");
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&reports).map_err(anyhow::Error::from)?;
        liverank_fs::write_atomic_bytes(path, &json).map_err(anyhow::Error::from)?;
    }
    Ok(())
}

/// Trains the two-tower model on every user's training prefix and evaluates it.
fn two_tower(
    split: &Split<'_>,
    config: &RecallEvalConfig,
    tower: &liverank_model::two_tower::TwoTowerConfig,
    name: &str,
) -> Result<liverank_recall::EvalReport, Failure> {
    use liverank_model::two_tower::train_two_tower;
    let sequences: Vec<&[u32]> = (0..split.num_users() as u32)
        .map(|u| split.train(u))
        .collect();
    let started = std::time::Instant::now();
    let model = train_two_tower(&sequences, split.num_items(), tower, |epoch, loss| {
        println!(
            "{name} epoch {}: mean sampled-softmax loss {loss:.4}",
            epoch + 1
        );
    })
    .input_err(&format!("{name} training"))?;
    println!(
        "{name} trained in {:.1} s ({} items, dim {})",
        started.elapsed().as_secs_f64(),
        split.num_items(),
        model.dim()
    );
    let scorer = liverank_recall::VectorScorer::new(
        name,
        model.dim(),
        model.item_vectors().to_vec(),
        |user, history: &[u32]| {
            model
                .user_vectors(history)
                .map_err(|e| liverank_recall::Error::Scorer {
                    scorer: name.to_string(),
                    reason: format!("user {user}: {e}"),
                })
        },
    )
    .map_err(anyhow::Error::from)?;
    liverank_recall::evaluate(split, &scorer, &config.eval).input_err(&format!("evaluating {name}"))
}

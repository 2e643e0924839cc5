//! `liverank run`: the whole offline pipeline on the embedded defaults — simulate a preset,
//! build realtime and complete samples, build the users' interaction history store, train
//! the ranker on the realtime samples (with the Cross sequences read from the store), and
//! print the evaluation on the later slice's complete labels. Each stage is its
//! subcommand's own function, called with its arguments built here (no argv round trip),
//! with its own progress bar.

use crate::Failure;
use crate::history::{BuildArgs, StoreArgs};
use crate::samples::SamplesArgs;
use crate::settings::Settings;
use crate::simulate::SimulateArgs;
use crate::train::TrainArgs;
use clap::Args;
use liverank_history::BackendKind;
use liverank_sim::Preset;
use liverank_types::Policy;
use std::path::PathBuf;

/// Arguments of `liverank run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Simulator preset.
    #[arg(long, default_value = "small")]
    preset: Preset,
    /// Root seed of the simulator and the model.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Working directory: <out>/sim, <out>/samples, <out>/history, <out>/model.
    #[arg(long, default_value = "data/run")]
    out: PathBuf,
    /// Training epochs.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// No progress bars.
    #[arg(long, short)]
    quiet: bool,
}

/// Runs the command.
pub fn run(settings: &Settings, args: RunArgs) -> Result<(), Failure> {
    let dir = |name: &str| args.out.join(name);
    let quiet = args.quiet;

    println!(
        "== 1/4 simulate: preset {}, seed {}, into {}",
        args.preset,
        args.seed,
        dir("sim").display()
    );
    crate::simulate::run(
        settings,
        SimulateArgs {
            preset: Some(args.preset),
            seed: Some(args.seed),
            users: None,
            hours: None,
            out: Some(dir("sim")),
            format: "parquet".into(),
            out_of_order: None,
            late: None,
            duplicate: None,
            malformed: None,
            quiet,
        },
    )?;

    let events = dir("sim").join("events.parquet");
    println!(
        "== 2/4 samples: realtime and complete, into {}",
        dir("samples").display()
    );
    crate::samples::run(
        settings,
        SamplesArgs {
            events: events.clone(),
            out: dir("samples"),
            policies: vec![Policy::Realtime, Policy::Complete],
            checkpoint_every: 500_000,
            fresh: true,
            format: "parquet".into(),
            no_features: false,
            report: false,
            quiet,
        },
    )?;

    println!(
        "== 3/4 history: embedded store in {}",
        dir("history").display()
    );
    crate::history::build(
        settings,
        &BuildArgs {
            events,
            store: StoreArgs {
                store: Some(dir("history")),
                backend: Some(BackendKind::Embedded),
                redis_url: None,
                redis_prefix: None,
            },
            videos: None,
            lives: None,
            batch: 20_000,
            print_acks: false,
            fresh: true,
            quiet,
        },
    )?;

    println!(
        "== 4/4 train + evaluate: realtime samples, {} epochs, into {}",
        args.epochs,
        dir("model").display()
    );
    crate::train::run(
        settings,
        TrainArgs {
            train_samples: dir("samples"),
            eval_samples: None,
            policy: Policy::Realtime,
            model_config: None,
            trunk: None,
            seed: Some(args.seed),
            epochs: Some(args.epochs),
            batch_size: None,
            train_fraction: None,
            history: Some(dir("history")),
            truth: Some(dir("sim").join("truth_exposures.parquet")),
            out: Some(dir("model")),
            resume: false,
            quiet,
        },
    )
}

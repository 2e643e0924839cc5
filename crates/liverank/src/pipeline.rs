//! `liverank run`: the whole offline pipeline on the embedded defaults — simulate a preset,
//! build realtime and complete samples, build the users' interaction history store, train
//! the ranker on the realtime samples (with the Cross sequences read from the store), and
//! print the evaluation on the later slice's complete labels. Each stage is the same code as its
//! own subcommand (it is dispatched through the same parser), with its own progress bar.

use crate::settings::Settings;
use crate::{Cli, Command, Failure};
use clap::{Args, Parser};
use std::path::PathBuf;

/// Arguments of `liverank run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Simulator preset.
    #[arg(long, default_value = "small")]
    preset: String,
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

fn stage(settings: &Settings, title: &str, argv: Vec<String>) -> Result<(), Failure> {
    println!("== {title}: liverank {}", argv[1..].join(" "));
    let cli = Cli::try_parse_from(&argv).map_err(|e| Failure::Input(anyhow::anyhow!("{e}")))?;
    match cli.command {
        Command::Simulate(a) => crate::simulate::run(settings, a),
        Command::Samples(a) => crate::samples::run(settings, a),
        Command::Train(a) => crate::train::run(settings, a),
        Command::History(a) => crate::history::run(settings, a),
        _ => Err(Failure::Runtime(anyhow::anyhow!("not a pipeline stage"))),
    }
}

/// Runs the command.
pub fn run(settings: &Settings, args: RunArgs) -> Result<(), Failure> {
    let dir = |name: &str| args.out.join(name).display().to_string();
    let quiet: Vec<String> = if args.quiet {
        vec!["--quiet".into()]
    } else {
        Vec::new()
    };
    let argv = |items: &[&str]| -> Vec<String> {
        std::iter::once("liverank")
            .chain(items.iter().copied())
            .map(String::from)
            .chain(quiet.iter().cloned())
            .collect()
    };
    let seed = args.seed.to_string();
    let epochs = args.epochs.to_string();
    stage(
        settings,
        "1/4 simulate",
        argv(&[
            "simulate",
            "--preset",
            &args.preset,
            "--seed",
            &seed,
            "--out",
            &dir("sim"),
        ]),
    )?;
    let events = format!("{}/events.parquet", dir("sim"));
    stage(
        settings,
        "2/4 samples",
        argv(&[
            "samples",
            "--events",
            &events,
            "--out",
            &dir("samples"),
            "--policy",
            "realtime",
            "--policy",
            "complete",
            "--fresh",
        ]),
    )?;
    stage(
        settings,
        "3/4 history",
        argv(&[
            "history",
            "build",
            "--events",
            &events,
            "--store",
            &dir("history"),
            "--backend",
            "embedded",
            "--fresh",
        ]),
    )?;
    let truth = format!("{}/truth_exposures.parquet", dir("sim"));
    stage(
        settings,
        "4/4 train + evaluate",
        argv(&[
            "train",
            "--train-samples",
            &dir("samples"),
            "--policy",
            "realtime",
            "--history",
            &dir("history"),
            "--truth",
            &truth,
            "--out",
            &dir("model"),
            "--epochs",
            &epochs,
            "--seed",
            &seed,
        ]),
    )?;
    Ok(())
}

//! `liverank`: the command-line front end. It parses settings, wires the library crates
//! together and prints results; the logic lives in the libraries.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad input.

mod abtest;
mod bench;
mod bench_foresight;
mod bench_model;
mod bench_serve;
mod bench_stream;
mod experiment;
mod forecast;
mod history;
mod http_client;
mod inspect;
mod kafka;
mod pipeline;
mod recall;
mod report;
mod room_recall;
mod samples;
mod serve;
mod settings;
mod simulate;
mod stream;
mod train;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: burn allocates and frees tensors of megabytes in
/// every op, which glibc serves with fresh mmaps (page faults, zeroed pages) and returns
/// with munmaps; mimalloc keeps the memory (docs/decisions.md §26).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;
use std::process::ExitCode;

/// Real-time recommendation engine for live streaming.
#[derive(Debug, Parser)]
#[command(name = "liverank", version, about, long_about = None)]
pub struct Cli {
    /// Settings file layered over the embedded defaults (see config/default.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate a live-streaming platform: events, entity tables and ground truth.
    Simulate(simulate::SimulateArgs),
    /// Summarise an event file: counts, exposure mix, highlight CTR, gift delays.
    Inspect(inspect::InspectArgs),
    /// Build training samples from events under one or more labelling policies.
    Samples(samples::SamplesArgs),
    /// Push events into the distributed mode's broker (`ingest kafka`).
    Ingest(kafka::IngestArgs),
    /// Build or query the interaction history store (the source of Cross's GSU sequences).
    History(history::HistoryArgs),
    /// The whole pipeline: simulate → samples → train → evaluation table.
    Run(pipeline::RunArgs),
    /// Train the ranker offline on sample files and evaluate it on the later time slice.
    Train(train::TrainArgs),
    /// Online learning: stream events (a file or a simulated preset) through samples,
    /// history and test-then-train, publishing model versions as it goes.
    Stream(stream::StreamArgs),
    /// LiveForesighter: train or evaluate the statistic forecaster and product predictor.
    Forecast(forecast::ForecastArgs),
    /// Serve ranked live rooms over HTTP (SPEC §6) on a simulated world.
    Serve(serve::ServeArgs),
    /// Train named model variants × seeds on the same data: one AUC / GAUC table.
    Experiment(experiment::ExperimentArgs),
    /// Closed-loop A/B test: the simulator's feed asks each arm's serving API, users react
    /// by the ground truth; per arm clicks, watch time, gifts, purchases with 95 % intervals.
    Abtest(abtest::AbtestArgs),
    /// Recall models offline: HR@K / NDCG@K on an interaction log (`recall eval`).
    Recall(recall::RecallArgs),
    /// Measure throughput of a hot path and print RESULT lines.
    Bench(bench::BenchArgs),
    /// Write the HTML report (and its Markdown twin) of a run directory.
    Report(report::ReportArgs),
    /// Print the effective settings (defaults ← --config ← environment) as TOML.
    Config,
}

/// A failure and whose fault it is, which decides the exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage or bad input: exit code 2.
    Input(anyhow::Error),
    /// Anything else: exit code 1.
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

/// Marks an error as the user's input being wrong.
pub trait InputContext<T> {
    /// Wraps the error as [`Failure::Input`] with a message.
    fn input_err(self, msg: &str) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> InputContext<T> for Result<T, E> {
    fn input_err(self, msg: &str) -> Result<T, Failure> {
        self.map_err(|e| Failure::Input(e.into().context(msg.to_string())))
    }
}

impl Failure {
    /// An ingest error by its fault class: bad input (a corrupt or missing file, a bad
    /// record) exits 2; the environment (a full disk, a failing device, a read-only
    /// directory) or a bug of ours exits 1.
    pub fn ingest(e: liverank_ingest::IngestError, msg: &str) -> Failure {
        let input = e.fault() == liverank_ingest::Fault::BadInput;
        let e = anyhow::Error::from(e).context(msg.to_string());
        if input {
            Failure::Input(e)
        } else {
            Failure::Runtime(e)
        }
    }
}

/// Classifies an ingest error by its fault ([`Failure::ingest`]).
pub trait IngestContext<T> {
    /// Wraps the error as [`Failure::Input`] or [`Failure::Runtime`] by its fault.
    fn ingest_err(self, msg: &str) -> Result<T, Failure>;
}

impl<T> IngestContext<T> for Result<T, liverank_ingest::IngestError> {
    fn ingest_err(self, msg: &str) -> Result<T, Failure> {
        self.map_err(|e| Failure::ingest(e, msg))
    }
}

/// The entity table `stem` beside an event file, in the events' format (`users.parquet`
/// beside `events.parquet`): `None` when there is no such file, an error (by its fault)
/// when there is one that cannot be read: a corrupt table never silently becomes "no
/// table".
pub fn table_beside<T: serde::de::DeserializeOwned>(
    events: &std::path::Path,
    stem: &str,
) -> Result<Option<Vec<T>>, Failure> {
    let dir = events.parent().unwrap_or(std::path::Path::new("."));
    let ext = events
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("parquet");
    let path = dir.join(format!("{stem}.{ext}"));
    if !path.exists() {
        return Ok(None);
    }
    liverank_ingest::read_table(&path)
        .map(Some)
        .ingest_err(&format!("reading {}", path.display()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = run(cli);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(e)) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes, `: `-separated; a cause whose text the message already shows
/// (our error types print their source inline) is not repeated.
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

fn run(cli: Cli) -> Result<(), Failure> {
    let settings = settings::Settings::load(cli.config.as_deref(), std::env::vars())
        .input_err("loading settings")?;
    match cli.command {
        Command::Simulate(args) => simulate::run(&settings, args),
        Command::Inspect(args) => inspect::run(args),
        Command::Samples(args) => samples::run(&settings, args),
        Command::Train(args) => train::run(&settings, args),
        Command::Stream(args) => stream::run(&settings, args),
        Command::Run(args) => pipeline::run(&settings, args),
        Command::History(args) => history::run(&settings, args),
        Command::Ingest(args) => kafka::ingest(&settings, args),
        Command::Forecast(args) => forecast::run(&settings, args),
        Command::Serve(args) => serve::run(&settings, args),
        Command::Bench(args) => bench::run(&settings, args),
        Command::Experiment(args) => experiment::run(&settings, args),
        Command::Report(args) => report::run(args),
        Command::Abtest(args) => abtest::run(&settings, args),
        Command::Recall(args) => recall::run(&settings, args),
        Command::Config => {
            let text = toml::to_string_pretty(&settings).map_err(anyhow::Error::from)?;
            print!("{text}");
            Ok(())
        }
    }
}

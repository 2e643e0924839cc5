//! `liverank simulate`: run the platform simulator and write its directory.

use crate::settings::Settings;
use crate::{Failure, InputContext};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use liverank_ingest::EventFormat;
use liverank_sim::{Preset, SimConfig, Simulation};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `liverank simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Size preset: tiny (tests), small (demo), large. Default: the settings' [sim] section.
    #[arg(long)]
    pub preset: Option<Preset>,
    /// Root seed (overrides settings and preset).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of users (overrides settings and preset).
    #[arg(long)]
    pub users: Option<u32>,
    /// Hours of simulated time (overrides settings and preset).
    #[arg(long)]
    pub hours: Option<u32>,
    /// Output directory. Default: <data_dir>/sim.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Event and table file format.
    #[arg(long, default_value = "parquet", value_parser = ["parquet", "jsonl"])]
    pub format: String,
    /// Share of events delivered out of order within the lateness.
    #[arg(long)]
    pub out_of_order: Option<f64>,
    /// Share of events delivered beyond the lateness.
    #[arg(long)]
    pub late: Option<f64>,
    /// Share of events delivered twice.
    #[arg(long)]
    pub duplicate: Option<f64>,
    /// Share of extra malformed records.
    #[arg(long)]
    pub malformed: Option<f64>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

impl SimulateArgs {
    fn config(&self, settings: &Settings) -> SimConfig {
        let mut config = match self.preset {
            Some(p) => SimConfig {
                seed: settings.sim.seed,
                faults: settings.sim.faults,
                ..SimConfig::preset(p)
            },
            None => settings.sim.clone(),
        };
        config.seed = self.seed.unwrap_or(config.seed);
        config.users = self.users.unwrap_or(config.users);
        config.hours = self.hours.unwrap_or(config.hours);
        let f = &mut config.faults;
        f.out_of_order = self.out_of_order.unwrap_or(f.out_of_order);
        f.late = self.late.unwrap_or(f.late);
        f.duplicate = self.duplicate.unwrap_or(f.duplicate);
        f.malformed = self.malformed.unwrap_or(f.malformed);
        config
    }
}

/// Runs the command.
pub fn run(settings: &Settings, args: SimulateArgs) -> Result<(), Failure> {
    let config = args.config(settings);
    let format = if args.format == "jsonl" {
        EventFormat::Jsonl
    } else {
        EventFormat::Parquet
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("sim"));
    let clock = Instant::now();
    let sim = Simulation::new(config).input_err("invalid simulator settings")?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} simulating [{bar:30}] {pos}/{len} visits · {msg} · {elapsed}",
        )
        .map_err(anyhow::Error::from)?
        .progress_chars("=> "),
    );
    let summary = liverank_sim::output::write_simulation(&sim, &out, format, |p| {
        bar.set_length(p.visits_total);
        bar.set_position(p.visits_done);
        bar.set_message(format!("{} events", p.events));
    })
    .map_err(|e| {
        Failure::Runtime(anyhow::Error::from(e).context(format!("writing {}", out.display())))
    })?;
    bar.finish_and_clear();
    let seconds = clock.elapsed().as_secs_f64();

    let c = sim.config();
    println!(
        "simulated {} users, {} authors, {} lives over {} h (seed {})",
        c.users, c.authors, summary.lives, c.hours, c.seed
    );
    println!("{:<18} {:>12}", "event type", "count");
    for (name, n) in &summary.by_type {
        println!("{name:<18} {n:>12}");
    }
    println!("{:<18} {:>12}", "total", summary.events);
    println!();
    println!("visits            {:>12}", summary.visits);
    println!("active users      {:>12}", summary.active_users);
    println!("video exposures   {:>12}", summary.video_exposures);
    println!("live exposures    {:>12}", summary.live_exposures);
    println!(
        "video:live        {:>12.2}",
        summary.video_exposures as f64 / summary.live_exposures.max(1) as f64
    );
    let f = &summary.faults;
    if f.out_of_order + f.late + f.duplicate + f.malformed > 0 {
        println!(
            "faults            out_of_order {} · late {} · duplicate {} · malformed {}",
            f.out_of_order, f.late, f.duplicate, f.malformed
        );
    }
    println!(
        "wrote {} in {:.1} s ({:.2} M events/s, simulation and writing)",
        out.display(),
        seconds,
        summary.events as f64 / seconds.max(1e-9) / 1e6,
    );
    Ok(())
}

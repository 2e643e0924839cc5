//! `liverank serve`: the serving API on a world — by default a simulated one (`--preset`),
//! whose events stream into the server at `--pace` simulated seconds per wall second —
//! ranked with a model from `--model DIR` (a published model directory, read-only, as a
//! stateless replica) or `--checkpoint FILE` (a `liverank train` checkpoint).
//!
//! Also the shared setup of `liverank bench serve` (see `bench_serve.rs`): the demo world
//! pre-ingested up to its busiest minute, so there are many rooms on air.

use crate::settings::Settings;
use crate::{Failure, InputContext};
use anyhow::Context;
use clap::Args;
use liverank_history::{HistoryBuilder, HistoryConfig, HistoryStore, MemoryStore};
use liverank_model::{FeatureBuilder, RankerConfig, Trainer};
use liverank_samples::FeatureContext;
use liverank_serve::World;
use liverank_serve::{
    AppState, EventIngest, ExposureLog, LocalWorld, ModelSlot, Recommender, ServeConfig,
    ServedModel,
};
use liverank_sim::{Preset, SimConfig, Simulation, VecSink};
use liverank_types::{Event, EventTime};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Arguments of `liverank serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Simulated world to serve (tiny, small, large). Default: the settings' [sim] section.
    #[arg(long)]
    pub preset: Option<Preset>,
    /// Root seed of the simulated world.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Listen address (overrides `[serve] addr`).
    #[arg(long)]
    pub addr: Option<String>,
    /// A trained model checkpoint (`<out>/model.ckpt` of `liverank train` / `run`).
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Simulated seconds streamed in per wall-clock second after the warm-up (0: the
    /// world stays at its busiest minute).
    #[arg(long, default_value_t = 10.0)]
    pub pace: f64,
}

/// The simulated world, pre-ingested up to its busiest minute.
pub struct Demo {
    /// The serving world.
    pub world: Arc<LocalWorld>,
    /// The history store under it.
    pub history: Arc<dyn HistoryStore>,
    /// All events, time-ordered.
    pub events: Vec<Event>,
    /// Events `..ingested` are in.
    pub ingested: usize,
    /// User ids of the world.
    pub users: Vec<u64>,
}

/// Simulates `config` and ingests its events up to the minute with the most rooms on air.
pub fn demo(settings: &Settings, config: SimConfig) -> anyhow::Result<Demo> {
    let sim = Simulation::new(config).context("simulator config")?;
    let world = sim.world();
    let users: Vec<liverank_types::User> = world.users.iter().map(|u| u.profile.clone()).collect();
    let authors: Vec<liverank_types::Author> =
        world.authors.iter().map(|a| a.row.clone()).collect();
    let context = Arc::new(FeatureContext::new(&users, &authors));
    let builder = HistoryBuilder::new(settings.samples.long_view_ms)
        .with_videos(world.videos.iter())
        .with_lives(world.lives.iter().map(|l| &l.row));
    let busiest = world
        .on_air_by_minute
        .iter()
        .enumerate()
        .max_by_key(|(i, rooms)| (rooms.len(), std::cmp::Reverse(*i)))
        .map_or(0, |(i, _)| i as i64);
    let start_ms = sim.config().start_ms;
    let mut sink = VecSink::default();
    sim.run(&mut sink, |_| {}).context("simulating")?;
    let history: Arc<dyn HistoryStore> = Arc::new(MemoryStore::new(&HistoryConfig {
        retention: settings.history.retention,
        ..HistoryConfig::default()
    })?);
    let local = Arc::new(LocalWorld::new(
        &settings.samples,
        Arc::clone(&history),
        builder,
        context,
    ));
    let cut = EventTime(start_ms + busiest * 60_000);
    let ingested = sink.events.partition_point(|e| e.ts < cut);
    for chunk in sink.events[..ingested].chunks(50_000) {
        local.ingest(chunk)?;
    }
    Ok(Demo {
        world: local,
        history,
        events: sink.events,
        ingested,
        users: users.iter().map(|u| u.user.0).collect(),
    })
}

/// Loads a `liverank train` checkpoint as version `version`.
pub fn load_checkpoint(path: &Path, version: u64) -> anyhow::Result<ServedModel> {
    let trainer = Trainer::load(path).with_context(|| format!("loading {}", path.display()))?;
    let scorer = trainer.scorer()?;
    Ok(ServedModel::new(version, Arc::new(scorer), None))
}

/// A fresh, seeded, untrained model of the settings' shape (benchmarks: the latency of a
/// forward pass does not depend on the weights).
pub fn fresh_model(config: &RankerConfig) -> anyhow::Result<ServedModel> {
    let shape = FeatureBuilder::new(config).shape();
    let trainer = Trainer::new(config.clone(), shape)?;
    Ok(ServedModel::new(1, Arc::new(trainer.scorer()?), None))
}

/// The app state over a demo world and a model slot.
pub fn state(
    config: &Arc<ServeConfig>,
    world: &Arc<LocalWorld>,
    slot: &Arc<ModelSlot>,
) -> AppState {
    let log = Arc::new(ExposureLog::new(config.exposure_log));
    let first_request = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64);
    AppState::new(
        Arc::clone(config),
        world.clone(),
        world.clone(),
        slot.clone(),
        Recommender::new(Arc::clone(config), log),
        first_request,
    )
}

/// Streams `events` into `world` in event time at `pace` simulated seconds per wall
/// second, until the events run out or `stop` is set.
fn stream(world: Arc<LocalWorld>, events: Vec<Event>, pace: f64, stop: Arc<AtomicBool>) {
    let Some(first) = events.first().map(|e| e.ts.0) else {
        return;
    };
    let started = Instant::now();
    let mut next = 0;
    while next < events.len() && !stop.load(Ordering::Relaxed) {
        let until = first + (started.elapsed().as_secs_f64() * pace * 1000.0) as i64;
        let end = next + events[next..].partition_point(|e| e.ts.0 <= until);
        if end > next {
            if let Err(e) = world.ingest(&events[next..end]) {
                eprintln!("serve: streaming events failed: {e}");
                return;
            }
            next = end;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the command.
pub fn run(settings: &Settings, args: ServeArgs) -> Result<(), Failure> {
    let mut config = settings.serve.clone();
    if let Some(addr) = &args.addr {
        config.addr = addr.clone();
    }
    config.validate().input_err("serve settings")?;
    let addr: std::net::SocketAddr = config.addr.parse().input_err("serve.addr")?;
    let mut sim = match args.preset {
        Some(p) => SimConfig {
            seed: settings.sim.seed,
            ..SimConfig::preset(p)
        },
        None => settings.sim.clone(),
    };
    sim.seed = args.seed.unwrap_or(sim.seed);
    let slot = Arc::new(ModelSlot::new());
    match &args.checkpoint {
        Some(path) => {
            slot.publish(load_checkpoint(path, 1).input_err("--checkpoint")?)
                .map_err(anyhow::Error::from)?;
        }
        None => {
            return Err(Failure::Input(anyhow::anyhow!(
                "no model: pass --checkpoint FILE (e.g. data/run/model/model.ckpt of `liverank run --preset tiny`)"
            )));
        }
    }
    eprintln!("serve: simulating the {} world …", sim.users);
    let demo = demo(settings, sim)?;
    let config = Arc::new(config);
    let state = state(&config, &demo.world, &slot);
    let stop = Arc::new(AtomicBool::new(false));
    let rest = demo.events[demo.ingested..].to_vec();
    let feeder = (args.pace > 0.0).then(|| {
        let (world, stop) = (demo.world.clone(), stop.clone());
        std::thread::spawn(move || stream(world, rest, args.pace, stop))
    });
    if config.token.is_empty() {
        eprintln!("serve: no [serve] token set: POST /v1/events and user history answer 401");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        println!(
            "serving on http://{} ({} events in, {} rooms on air at {}, model version 1)",
            listener.local_addr()?,
            demo.ingested,
            demo.world.on_air_count(),
            demo.world.event_time().map_or(0, |t| t.0),
        );
        liverank_serve::serve(listener, state, liverank_serve::shutdown_signal())
            .await
            .map_err(anyhow::Error::from)
    })?;
    stop.store(true, Ordering::Relaxed);
    if let Some(f) = feeder {
        let _ = f.join();
    }
    println!("serve: stopped (in-flight requests drained, ingest checkpointed)");
    Ok(())
}

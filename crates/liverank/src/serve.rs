//! `liverank serve`: the serving API on a world — by default a simulated one (`--preset`),
//! whose events stream into the server at `--pace` simulated seconds per wall second.
//!
//! Where the model comes from:
//! * by default (embedded), the online pipeline runs in the process: every event the
//!   world accepts (simulated or posted to `/v1/events`) also goes, in order, to a
//!   [`StreamPipeline`] on a thread of its own (sample engine, history, live registry,
//!   test-then-train) that publishes versions into `<out>/model`; a poller follows that
//!   directory with a `ModelReader` and hot-swaps each version in;
//! * `--model DIR` serves a published model directory read-only, as a stateless replica;
//! * `--checkpoint FILE` serves a `liverank train` checkpoint, fixed.
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
    AppState, EventIngest, ExposureLog, IngestOutcome, LocalWorld, ModelDirFeed, ModelSlot,
    Recommender, ServeConfig, ServedModel,
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
    /// Serve the published model directory DIR read-only (no training in this process):
    /// the versions a `liverank stream` or another server's trainer writes there are
    /// applied as they appear.
    #[arg(long, value_name = "DIR", conflicts_with = "checkpoint")]
    pub model: Option<PathBuf>,
    /// Working directory of the embedded online pipeline (its model versions, metrics and
    /// checkpoint), when neither --model nor --checkpoint is given.
    #[arg(long, default_value = "data/serve")]
    pub out: PathBuf,
    /// Simulated seconds streamed in per wall-clock second after the warm-up (0: the
    /// world stays at its busiest minute).
    #[arg(long, default_value_t = 10.0)]
    pub pace: f64,
    /// LiveForesighter's models (a `liverank forecast train --out` directory):
    /// `GET /v1/lives/{id}` then returns each room's forecast and top-5 next c3.
    #[arg(long, value_name = "DIR")]
    pub forecast: Option<PathBuf>,
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
    demo_with(settings, config, None)
}

/// [`demo`], the warm-up events also queued to `trainer`.
pub fn demo_with(
    settings: &Settings,
    config: SimConfig,
    trainer: Option<&OnlineTrainer>,
) -> anyhow::Result<Demo> {
    let sim = Simulation::new(config).context("simulator config")?;
    let world = sim.world();
    let (local, history) = empty_world(settings, &sim)?;
    let busiest = world
        .on_air_by_minute
        .iter()
        .enumerate()
        .max_by_key(|(i, rooms)| (rooms.len(), std::cmp::Reverse(*i)))
        .map_or(0, |(i, _)| i as i64);
    let start_ms = sim.config().start_ms;
    let mut sink = VecSink::default();
    sim.run(&mut sink, |_| {}).context("simulating")?;
    let cut = EventTime(start_ms + busiest * 60_000);
    let ingested = sink.events.partition_point(|e| e.ts < cut);
    for chunk in sink.events[..ingested].chunks(50_000) {
        match trainer {
            Some(t) => TrainingIngest {
                world: local.clone(),
                trainer: t.handle(),
            }
            .ingest(chunk)?,
            None => local.ingest(chunk)?,
        };
    }
    Ok(Demo {
        world: local,
        history,
        events: sink.events,
        ingested,
        users: world.users.iter().map(|u| u.profile.user.0).collect(),
    })
}

/// A serving world over a simulation's entity tables (users, authors, videos, lives) with
/// nothing ingested yet, and its in-memory history store.
pub fn empty_world(
    settings: &Settings,
    sim: &Simulation,
) -> anyhow::Result<(Arc<LocalWorld>, Arc<dyn HistoryStore>)> {
    let world = sim.world();
    let users: Vec<liverank_types::User> = world.users.iter().map(|u| u.profile.clone()).collect();
    let authors: Vec<liverank_types::Author> =
        world.authors.iter().map(|a| a.row.clone()).collect();
    let context = Arc::new(FeatureContext::new(&users, &authors));
    let builder = HistoryBuilder::new(settings.samples.long_view_ms)
        .with_videos(world.videos.iter())
        .with_lives(world.lives.iter().map(|l| &l.row));
    let history: Arc<dyn HistoryStore> = Arc::new(MemoryStore::new(&HistoryConfig {
        retention: settings.history.retention,
        ..HistoryConfig::default()
    })?);
    let local = Arc::new(
        LocalWorld::new(&settings.samples, Arc::clone(&history), builder, context)
            .with_graph(settings.serve.graph.clone()),
    );
    Ok((local, history))
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
    state_with(config, world, world.clone(), slot)
}

/// [`state`] with another ingest target (the embedded trainer's).
pub fn state_with(
    config: &Arc<ServeConfig>,
    world: &Arc<LocalWorld>,
    ingest: Arc<dyn EventIngest>,
    slot: &Arc<ModelSlot>,
) -> AppState {
    let log = Arc::new(ExposureLog::new(config.exposure_log));
    let first_request = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64);
    AppState::new(
        Arc::clone(config),
        world.clone(),
        ingest,
        slot.clone(),
        Recommender::new(Arc::clone(config), log),
        first_request,
    )
}

/// Streams `events` into `world` in event time at `pace` simulated seconds per wall
/// second, until the events run out or `stop` is set.
fn stream(world: Arc<dyn EventIngest>, events: Vec<Event>, pace: f64, stop: Arc<AtomicBool>) {
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
    let stop = Arc::new(AtomicBool::new(false));
    let poll = Duration::from_millis(config.model_poll_ms);
    let mut poller = None;
    let source = match (&args.checkpoint, &args.model) {
        (Some(path), _) => {
            slot.publish(load_checkpoint(path, 1).input_err("--checkpoint")?)
                .map_err(anyhow::Error::from)?;
            format!("checkpoint {}", path.display())
        }
        (None, Some(dir)) => {
            if !dir.is_dir() {
                return Err(Failure::Input(anyhow::anyhow!(
                    "--model {}: not a directory (a `liverank stream --out DIR` writes DIR/model)",
                    dir.display()
                )));
            }
            let feed = Box::new(ModelDirFeed::new(dir));
            poller = Some(
                liverank_serve::spawn_model_poller(slot.clone(), feed, poll, stop.clone())
                    .context("model poller thread")?,
            );
            format!("model directory {} (read-only)", dir.display())
        }
        (None, None) => format!(
            "online training into {} (embedded pipeline)",
            args.out.join("model").display()
        ),
    };
    eprintln!("serve: simulating the {} world …", sim.users);
    let embedded = args.checkpoint.is_none() && args.model.is_none();
    let (demo, trainer) = if embedded {
        // The trainer sees every event the world does, from the first: it is built before
        // the warm-up so the pre-ingested events train it too.
        let online = OnlineTrainer::start(settings, &sim, &args.out)?;
        let feed = Box::new(ModelDirFeed::new(args.out.join("model")));
        poller = Some(
            liverank_serve::spawn_model_poller(slot.clone(), feed, poll, stop.clone())
                .context("model poller thread")?,
        );
        let demo = demo_with(settings, sim, Some(&online))?;
        (demo, Some(online))
    } else {
        (demo(settings, sim)?, None)
    };
    let config = Arc::new(config);
    let ingest: Arc<dyn EventIngest> = match &trainer {
        Some(t) => Arc::new(TrainingIngest {
            world: demo.world.clone(),
            trainer: t.handle(),
        }),
        None => demo.world.clone(),
    };
    let state = state_with(&config, &demo.world, ingest.clone(), &slot);
    if let Some(dir) = &args.forecast {
        let foresight = liverank_serve::Foresight::open(dir).input_err("--forecast")?;
        state.set_foresight(Arc::new(foresight));
        println!("serve: forecasts from {}", dir.display());
    }
    let rest = demo.events[demo.ingested..].to_vec();
    let feeder = (args.pace > 0.0).then(|| {
        let stop = stop.clone();
        std::thread::spawn(move || stream(ingest, rest, args.pace, stop))
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
            "serving on http://{} ({} events in, {} rooms on air at {}; model: {source})",
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
    if let Some(p) = poller {
        let _ = p.join();
    }
    if let Some(t) = trainer {
        let summary = t.stop()?;
        println!(
            "serve: online pipeline stopped at model v{} ({} samples trained, checkpoint in {})",
            summary.version,
            summary.trained,
            args.out.display()
        );
    }
    println!("serve: stopped (in-flight requests drained, ingest checkpointed)");
    Ok(())
}

/// The embedded online pipeline on a thread of its own, fed in event order.
pub struct OnlineTrainer {
    tx: std::sync::mpsc::Sender<TrainCommand>,
    worker: std::thread::JoinHandle<anyhow::Result<OnlineSummary>>,
    queued: Arc<std::sync::atomic::AtomicU64>,
}

/// What the pipeline reached when it stopped.
#[derive(Clone, Copy, Debug)]
pub struct OnlineSummary {
    /// Last published version.
    pub version: u64,
    /// Samples trained.
    pub trained: u64,
}

enum TrainCommand {
    Events(Vec<Event>),
    Checkpoint(std::sync::mpsc::SyncSender<anyhow::Result<()>>),
}

/// A cloneable sender into the [`OnlineTrainer`].
#[derive(Clone)]
pub struct TrainerHandle {
    tx: std::sync::mpsc::Sender<TrainCommand>,
    queued: Arc<std::sync::atomic::AtomicU64>,
}

impl TrainerHandle {
    /// Queues accepted events (never blocks a request: the queue is unbounded, its depth a
    /// gauge).
    fn send(&self, events: Vec<Event>) -> liverank_serve::Result<()> {
        let n = events.len() as u64;
        let depth = self.queued.fetch_add(n, Ordering::Relaxed) + n;
        metrics::gauge!("liverank_serve_training_queue_events").set(depth as f64);
        self.tx
            .send(TrainCommand::Events(events))
            .map_err(|_| liverank_serve::ServeError::Internal("the online trainer stopped".into()))
    }

    fn checkpoint(&self) -> liverank_serve::Result<()> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.tx.send(TrainCommand::Checkpoint(reply)).map_err(|_| {
            liverank_serve::ServeError::Internal("the online trainer stopped".into())
        })?;
        answer
            .recv()
            .map_err(|_| liverank_serve::ServeError::Internal("the online trainer stopped".into()))?
            .map_err(|e| liverank_serve::ServeError::Internal(format!("checkpoint: {e:#}")))
    }
}

impl OnlineTrainer {
    /// Starts a fresh pipeline over the simulated world's tables, writing into `out`.
    pub fn start(settings: &Settings, sim: &SimConfig, out: &Path) -> anyhow::Result<Self> {
        let simulation = Simulation::new(sim.clone()).context("simulator config")?;
        let world = simulation.world();
        let users: Vec<liverank_types::User> =
            world.users.iter().map(|u| u.profile.clone()).collect();
        let authors: Vec<liverank_types::Author> =
            world.authors.iter().map(|a| a.row.clone()).collect();
        let context = Arc::new(FeatureContext::new(&users, &authors));
        let history_builder = HistoryBuilder::new(settings.samples.long_view_ms)
            .with_videos(world.videos.iter())
            .with_lives(world.lives.iter().map(|l| &l.row));
        let config = settings.model.clone();
        config.validate().context("model settings")?;
        let stream_settings = settings.stream.clone();
        stream_settings.validate().context("stream settings")?;
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let parts = liverank_train::StreamParts {
            samples: settings.samples.clone(),
            stream: stream_settings,
            publish: settings.publish.clone(),
            trainer: Trainer::new(
                config.clone(),
                liverank_train::offline::sample_shape(&config),
            )?,
            context,
            history_builder,
            history: Arc::new(MemoryStore::new(&settings.history)?),
            highlights: Vec::new(),
            probe_panel: Vec::new(),
            paths: liverank_train::StreamPaths {
                dir: out.to_path_buf(),
            },
        };
        let mut pipeline = liverank_train::StreamPipeline::new(parts)?;
        let (tx, rx) = std::sync::mpsc::channel::<TrainCommand>();
        let queued = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let depth = queued.clone();
        let worker = std::thread::Builder::new()
            .name("online-trainer".into())
            .spawn(move || -> anyhow::Result<OnlineSummary> {
                for command in rx {
                    match command {
                        TrainCommand::Events(events) => {
                            let n = events.len() as u64;
                            for event in events {
                                pipeline.push(event)?;
                            }
                            let left = depth.fetch_sub(n, Ordering::Relaxed) - n;
                            metrics::gauge!("liverank_serve_training_queue_events")
                                .set(left as f64);
                        }
                        TrainCommand::Checkpoint(reply) => {
                            let _ = reply.send(pipeline.checkpoint().map_err(anyhow::Error::from));
                        }
                    }
                }
                let summary = pipeline.finish()?;
                Ok(OnlineSummary {
                    version: summary.version,
                    trained: summary.counters.trained,
                })
            })
            .context("online trainer thread")?;
        Ok(Self { tx, worker, queued })
    }

    /// A sender for the world's ingest.
    pub fn handle(&self) -> TrainerHandle {
        TrainerHandle {
            tx: self.tx.clone(),
            queued: self.queued.clone(),
        }
    }

    /// Trains what is queued, publishes, checkpoints and stops.
    pub fn stop(self) -> anyhow::Result<OnlineSummary> {
        drop(self.tx);
        self.worker
            .join()
            .map_err(|_| anyhow::anyhow!("the online trainer thread panicked"))?
    }
}

/// The embedded ingest: the world first (its outcome per event is the answer), then the
/// accepted events, in order, to the online trainer.
struct TrainingIngest {
    world: Arc<LocalWorld>,
    trainer: TrainerHandle,
}

impl EventIngest for TrainingIngest {
    fn ingest(&self, events: &[Event]) -> liverank_serve::Result<Vec<IngestOutcome>> {
        let outcomes = self.world.ingest(events)?;
        let accepted: Vec<Event> = events
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| matches!(o, IngestOutcome::Accepted))
            .map(|(e, _)| e.clone())
            .collect();
        if !accepted.is_empty() {
            self.trainer.send(accepted)?;
        }
        Ok(outcomes)
    }

    fn checkpoint(&self) -> liverank_serve::Result<()> {
        self.world.checkpoint()?;
        self.trainer.checkpoint()
    }
}

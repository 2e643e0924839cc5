//! Online learning (SPEC §5 Training, §8, §9): one streaming pipeline in one process.
//!
//! ```text
//! events (event-time order; a file, paced or not, or pushed by a caller)
//!   ├─▶ filter (late beyond the lateness, repeated event_id) ─▶ LiveRegistry (rooms on air,
//!   │     statistics) and HistoryBuilder → HistoryStore (records visible from available_at)
//!   ├─▶ live impressions ─▶ scored with the current model at once ("served" predictions,
//!   │     before any label of the exposure exists) ─▶ joined with the `complete` label
//!   └─▶ SampleEngine (any policy, plus `complete`) ─▶ training samples
//!         ─▶ OnlineTrainer: test-then-train (each batch's predictions come from the forward
//!            pass it then learns from) ─▶ ModelPublisher (deltas / dense / snapshots)
//! ```
//!
//! Nothing reads an event's future: the registry and the history take each event as it is
//! pushed, before the engine emits (one allowed lateness later) the samples that read them;
//! features read history point in time (`available_at < exposure`), statistics up to the
//! last closed bucket.
//!
//! Two prequential streams are measured per task, over sliding windows of event time and
//! cumulatively: `train` (the training samples' own masked labels, scored just before the
//! step that learns them) and `served` (every exposure scored when its impression arrives,
//! against its `complete` labels — the same ground for every policy).
//!
//! Exact restart: [`StreamPipeline::checkpoint`] holds the input offset, the engine state,
//! the registry, the trainer, the publisher's position, the pending samples and scores, the
//! metric windows and the lengths of the output logs. The history store is rebuilt on
//! resume by replaying the input's first `offset` records through the same filter and
//! builder (history is a pure function of that prefix), which [`StreamPipeline::replay`]
//! does. The model directory files after the checkpoint are rewritten identically.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use liverank_history::{GsuAssembler, HistoryBuilder, HistoryStore};
use liverank_model::publish::write_atomic;
use liverank_model::{
    FeatureBuilder, ModelPublisher, ModelReader, PublishConfig, PublisherState, Trainer,
};
use liverank_samples::{FeatureContext, LiveRegistry, Output, SampleConfig, SampleEngine};
use liverank_types::{
    AuthorId, CategoryId, Event, EventKind, EventTime, ExposureFeatures, ItemRef, LabelMask,
    LiveId, Policy, RequestId, Sample, SampleKind, Task, UserId,
};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::metrics::{TaskMetrics, evaluate};
use crate::offline::{HistorySource, build_batch};

/// How the online loop runs (`[stream]` settings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamSettings {
    /// Policy whose samples are trained on (fastslow trains with the PU loss).
    pub policy: Policy,
    /// Samples per training step.
    pub batch_size: usize,
    /// A partial batch is trained at a sparse publish once its oldest sample has waited
    /// this many ms of event time (0: every publish carries every sample emitted). Steps
    /// have a fixed cost (the dense optimiser), so this trades freshness for throughput.
    pub max_wait_ms: u64,
    /// Sliding window of the prequential metrics, ms of event time (15 min).
    pub window_ms: u64,
    /// A metrics row (per stream and task) every this many ms of event time (1 min).
    pub metrics_every_ms: u64,
    /// A pipeline checkpoint every this many ms of event time (5 min).
    pub checkpoint_every_ms: u64,
    /// Pace of a file replay: k × real time; 0 = as fast as possible.
    pub pace: f64,
    /// Probe users scored against each highlight's room (time-to-boost).
    pub probe_users: usize,
    /// Probe cadence, ms of event time (10 s).
    pub probe_every_ms: u64,
    /// At most this many highlights are probed, a seeded uniform choice (0 = all): the
    /// probes' cost grows with the highlights, the estimates' precision barely beyond a
    /// few thousand.
    pub probe_highlights: usize,
    /// Relative lift over the pre-highlight level that counts as boosted (0.10 = +10 %).
    pub boost_margin: f64,
    /// Pre-highlight level: the mean over this long before the start (2 min).
    pub boost_baseline_ms: u64,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            policy: Policy::Realtime,
            batch_size: 256,
            max_wait_ms: 30_000,
            window_ms: 900_000,
            metrics_every_ms: 60_000,
            checkpoint_every_ms: 300_000,
            pace: 0.0,
            probe_users: 64,
            probe_every_ms: 10_000,
            probe_highlights: 2_000,
            boost_margin: 0.10,
            boost_baseline_ms: 120_000,
        }
    }
}

impl StreamSettings {
    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(TrainError::Input(format!("invalid [stream] settings: {m}")));
        if self.batch_size == 0 {
            return bad("batch_size must be positive");
        }
        if self.window_ms == 0 || self.metrics_every_ms == 0 || self.checkpoint_every_ms == 0 {
            return bad("window_ms, metrics_every_ms and checkpoint_every_ms must be positive");
        }
        if self.probe_every_ms == 0 || self.boost_baseline_ms < self.probe_every_ms {
            return bad("probe_every_ms must be positive and at most boost_baseline_ms");
        }
        if !(self.pace >= 0.0 && self.pace.is_finite()) {
            return bad("pace must be >= 0 (0 = as fast as possible)");
        }
        if !(self.boost_margin >= 0.0 && self.boost_margin.is_finite()) {
            return bad("boost_margin must be >= 0");
        }
        Ok(())
    }
}

/// A highlight to measure time-to-boost on (from the simulator's truth: evaluation only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Highlight {
    /// Room.
    pub live: u64,
    /// Start (inclusive), ms.
    pub start: i64,
    /// End (exclusive), ms.
    pub end: i64,
    /// Kind, for the report.
    pub kind: String,
}

/// Time-to-boost of one highlight.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BoostTrack {
    /// Sum and count of the panel's mean click probability over the baseline window.
    pub baseline_sum: f64,
    /// Probes in the baseline window.
    pub baseline_n: u32,
    /// First probe at or after the start above the baseline by the margin.
    pub boosted_at: Option<i64>,
    /// Highest panel mean seen during the highlight, up to its boost (a boosted highlight
    /// is no longer probed).
    pub peak: f64,
    /// Probes during the highlight.
    pub probes: u32,
}

/// Counters of a stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamCounters {
    /// Records read (the input offset), including unreadable ones.
    pub records: u64,
    /// Events accepted by the filter.
    pub events: u64,
    /// Late (beyond the lateness) or repeated events kept out of history and statistics.
    pub filtered: u64,
    /// Unreadable input records (counted by the driver).
    pub unreadable: u64,
    /// Events the engine rejected (dead letters).
    pub engine_rejected: u64,
    /// Training samples the engine emitted (trained on, or waiting for a step).
    pub emitted: u64,
    /// Training samples trained on.
    pub trained: u64,
    /// Training steps.
    pub steps: u64,
    /// Exposures scored at their impression.
    pub served_scored: u64,
    /// Of which joined with their complete label.
    pub served_joined: u64,
    /// Files published.
    pub publishes: u64,
    /// History records appended.
    pub history_records: u64,
}

/// One scored row of a prequential stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Scored {
    ts: i64,
    user: u64,
    labels: u8,
    mask: u8,
    scores: Vec<f32>,
}

/// The serialisable part of a pipeline.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct StreamState {
    counters: StreamCounters,
    clock: Option<i64>,
    trained_ts: i64,
    filter: EventFilter,
    finished: bool,
    pending_train: Vec<Sample>,
    /// Clock when the oldest pending training sample arrived.
    pending_since: i64,
    pending_served: Vec<Sample>,
    /// (request_id, live) → (impression ts, user, served scores).
    awaiting: BTreeMap<(u64, u64), (i64, u64, Vec<f32>)>,
    windows: [VecDeque<Scored>; 2],
    next_metrics: i64,
    next_checkpoint: i64,
    next_probe: i64,
    publisher: PublisherState,
    metrics_len: u64,
    predictions_len: u64,
    boosts: Vec<BoostTrack>,
}

/// Where a stream writes (all under one directory).
#[derive(Clone, Debug)]
pub struct StreamPaths {
    /// The directory.
    pub dir: PathBuf,
}

impl StreamPaths {
    /// Model versions (the publisher's directory).
    pub fn model_dir(&self) -> PathBuf {
        self.dir.join("model")
    }
    /// The pipeline checkpoint.
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint.bin")
    }
    /// Windowed prequential metrics (CSV time series).
    pub fn metrics(&self) -> PathBuf {
        self.dir.join("metrics.csv")
    }
    /// Every prequential prediction (binary log; the cumulative metrics come from it).
    pub fn predictions(&self) -> PathBuf {
        self.dir.join("predictions.bin")
    }
    /// The final trainer state.
    pub fn final_model(&self) -> PathBuf {
        self.dir.join("model.bin")
    }
}

/// Everything a pipeline is built from.
pub struct StreamParts {
    /// Sample engine settings (its policies are replaced by the training policy + complete).
    pub samples: SampleConfig,
    /// Online loop settings.
    pub stream: StreamSettings,
    /// Publish cadence.
    pub publish: PublishConfig,
    /// The model (fresh) — ignored on resume, where the checkpoint's is used.
    pub trainer: Trainer,
    /// Entity tables for features.
    pub context: Arc<FeatureContext>,
    /// A builder with the video (and live) tables loaded.
    pub history_builder: HistoryBuilder,
    /// An empty history store.
    pub history: Arc<dyn HistoryStore>,
    /// Highlights to probe (empty: no time-to-boost).
    pub highlights: Vec<Highlight>,
    /// Probe panel (user ids), seeded by the caller.
    pub probe_panel: Vec<u64>,
    /// Output directory.
    pub paths: StreamPaths,
}

impl std::fmt::Debug for StreamParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamParts")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

/// What a caller sees while a stream runs.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamProgress {
    /// Event time reached.
    pub clock: Option<i64>,
    /// Newest sample trained on (event time).
    pub trained_ts: i64,
    /// Model version published last.
    pub version: u64,
    /// Counters.
    pub counters: StreamCounters,
}

/// The summary of a finished stream.
#[derive(Clone, Debug, Serialize)]
pub struct StreamSummary {
    /// Training policy.
    pub policy: Policy,
    /// Counters.
    pub counters: StreamCounters,
    /// Cumulative prequential metrics per task: the training stream.
    pub train: Vec<(Task, TaskMetrics)>,
    /// Cumulative prequential metrics per task: served predictions vs complete labels.
    pub served: Vec<(Task, TaskMetrics)>,
    /// Last model version.
    pub version: u64,
    /// Time-to-boost per highlight (s; `None` = never within the highlight).
    pub boost_s: Vec<Option<f64>>,
    /// Highlights probed.
    pub highlights: usize,
}

const MAGIC: &[u8; 8] = b"LRSTRM2\0";

/// Called with every version the pipeline publishes (e.g. to time its arrival in a reader).
pub type PublishHook = Box<dyn FnMut(&liverank_model::publish::Published) + Send>;

/// The online pipeline: push events, get a model that learns and publishes as it goes.
pub struct StreamPipeline {
    settings: StreamSettings,
    policy: Policy,
    tasks: Vec<Task>,
    context: Arc<FeatureContext>,
    stats_buckets: u32,
    lateness: i64,
    engine: SampleEngine,
    registry: LiveRegistry,
    history_builder: HistoryBuilder,
    history: Arc<dyn HistoryStore>,
    assembler: GsuAssembler,
    trainer: Trainer,
    builder: FeatureBuilder,
    publisher: ModelPublisher,
    reader: Option<ModelReader>,
    highlights: Vec<Highlight>,
    panel: Vec<u64>,
    paths: StreamPaths,
    metrics: BufWriter<std::fs::File>,
    predictions: BufWriter<std::fs::File>,
    state: StreamState,
    out: Vec<Output>,
    records: Vec<(UserId, liverank_history::HistoryRecord)>,
    /// Wall-clock instants of the newest samples trained per publish (freshness probes).
    on_publish: Option<PublishHook>,
    /// Every sample trained on, in order, when asked for (benchmarks against offline).
    trained_log: Option<Vec<Sample>>,
    /// The checkpoint being made durable in the background (fsyncs are slow; the state
    /// was captured when it was taken, so the stream goes on meanwhile).
    writer: Option<std::thread::JoinHandle<Result<()>>>,
    /// Files of checkpoints skipped while the writer was busy, synced with the next one.
    stash: Option<liverank_model::publish::PendingSync>,
}

impl Drop for StreamPipeline {
    fn drop(&mut self) {
        // A checkpoint half-written is harmless (rename), but finish what was started.
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl std::fmt::Debug for StreamPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamPipeline")
            .field("policy", &self.policy)
            .field("counters", &self.state.counters)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::Input(format!("{}: {e}", path.display()))
}

fn open_log(path: &Path, len: u64) -> Result<BufWriter<std::fs::File>> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)
        .map_err(io(path))?;
    // A resumed run drops what the killed one wrote after its checkpoint.
    f.set_len(len).map_err(io(path))?;
    f.seek(std::io::SeekFrom::Start(len)).map_err(io(path))?;
    Ok(BufWriter::new(f))
}

fn grid(t: i64, step: u64) -> i64 {
    let step = step.max(1) as i64;
    t.div_euclid(step) * step + step
}

impl StreamPipeline {
    /// A fresh pipeline writing into `parts.paths.dir` (previous outputs are replaced).
    pub fn new(parts: StreamParts) -> Result<Self> {
        Self::build(parts, None)
    }

    /// A pipeline restored from the checkpoint in `parts.paths.dir`; `None` when there is
    /// none. The caller must then [`StreamPipeline::replay`] the input's first
    /// [`StreamPipeline::offset`] records and continue after them.
    pub fn resume(parts: StreamParts) -> Result<Option<Self>> {
        let path = parts.paths.checkpoint();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        let corrupt = |m: &str| TrainError::Input(format!("{}: {m}", path.display()));
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(corrupt("not a liverank stream checkpoint"));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(corrupt("checksum mismatch (torn or corrupted checkpoint)"));
        }
        let mut sections = Vec::with_capacity(4);
        let mut at = 8;
        for _ in 0..4 {
            let len = body
                .get(at..at + 8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize)
                .ok_or_else(|| corrupt("truncated"))?;
            sections.push(
                body.get(at + 8..at + 8 + len)
                    .ok_or_else(|| corrupt("truncated"))?,
            );
            at += 8 + len;
        }
        let state: StreamState =
            postcard::from_bytes(sections[0]).map_err(|e| corrupt(&format!("state: {e}")))?;
        let engine = SampleEngine::from_bytes(sections[1], parts.context.clone())
            .map_err(|e| corrupt(&format!("engine: {e}")))?;
        let registry: LiveRegistry =
            postcard::from_bytes(sections[2]).map_err(|e| corrupt(&format!("registry: {e}")))?;
        let trainer = Trainer::from_bytes(sections[3])?;
        let parts = StreamParts { trainer, ..parts };
        Self::build(parts, Some((state, engine, registry))).map(Some)
    }

    fn build(
        parts: StreamParts,
        restored: Option<(StreamState, SampleEngine, LiveRegistry)>,
    ) -> Result<Self> {
        let StreamParts {
            samples,
            stream,
            publish,
            trainer,
            context,
            history_builder,
            history,
            highlights,
            probe_panel,
            paths,
        } = parts;
        stream.validate()?;
        let policy = stream.policy;
        let mut policies = vec![policy, Policy::Complete];
        policies.sort();
        policies.dedup();
        let sample_config = SampleConfig {
            policies,
            ..samples
        };
        sample_config
            .validate()
            .map_err(|e| TrainError::Input(e.to_string()))?;
        std::fs::create_dir_all(&paths.dir).map_err(io(&paths.dir))?;
        let fresh = restored.is_none();
        let (mut state, engine, registry) = match restored {
            Some(r) => r,
            None => {
                let state = StreamState {
                    boosts: vec![BoostTrack::default(); highlights.len()],
                    ..StreamState::default()
                };
                (
                    state,
                    SampleEngine::new(sample_config.clone(), context.clone()),
                    LiveRegistry::new(&sample_config),
                )
            }
        };
        if fresh {
            // A fresh run starts from an empty model directory.
            let dir = paths.model_dir();
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
            }
        }
        let publisher = ModelPublisher::new(&paths.model_dir(), publish, state.publisher.clone())?;
        let builder = FeatureBuilder::new(trainer.config());
        let assembler = GsuAssembler::new(trainer.config().history_len);
        let tasks = trainer.config().tasks.clone();
        let metrics_path = paths.metrics();
        let mut metrics = open_log(&metrics_path, state.metrics_len)?;
        if state.metrics_len == 0 {
            let header = "event_ts,stream,task,count,positives,auc,gauc,log_loss\n";
            metrics
                .write_all(header.as_bytes())
                .map_err(io(&metrics_path))?;
            state.metrics_len = header.len() as u64;
        }
        let predictions = open_log(&paths.predictions(), state.predictions_len)?;
        let reader = if !fresh && state.publisher.version > 0 && !highlights.is_empty() {
            Some(ModelReader::open_until(
                &paths.model_dir(),
                state.publisher.version,
            )?)
        } else {
            None
        };
        Ok(Self {
            settings: stream,
            policy,
            tasks,
            context,
            stats_buckets: sample_config.stats_buckets,
            lateness: sample_config.allowed_lateness_ms as i64,
            engine,
            registry,
            history_builder,
            history,
            assembler,
            trainer,
            builder,
            publisher,
            reader,
            highlights,
            panel: probe_panel,
            paths,
            metrics,
            predictions,
            state,
            out: Vec::new(),
            records: Vec::new(),
            on_publish: None,
            trained_log: None,
            writer: None,
            stash: None,
        })
    }

    /// Calls `f` after every file published (freshness measurements).
    pub fn on_publish(
        &mut self,
        f: impl FnMut(&liverank_model::publish::Published) + Send + 'static,
    ) {
        self.on_publish = Some(Box::new(f));
    }

    /// Keeps a copy of every sample trained on from now on (see
    /// [`StreamPipeline::take_trained`]).
    pub fn keep_trained(&mut self) {
        self.trained_log.get_or_insert_with(Vec::new);
    }

    /// The samples trained on since [`StreamPipeline::keep_trained`], in training order.
    pub fn take_trained(&mut self) -> Vec<Sample> {
        self.trained_log.take().unwrap_or_default()
    }

    /// Input records consumed (a resumed caller skips this many).
    pub fn offset(&self) -> u64 {
        self.state.counters.records
    }

    /// The live registry (rooms on air, statistics).
    pub fn registry(&self) -> &LiveRegistry {
        &self.registry
    }

    /// The trainer.
    pub fn trainer(&self) -> &Trainer {
        &self.trainer
    }

    /// The history store.
    pub fn history(&self) -> &Arc<dyn HistoryStore> {
        &self.history
    }

    /// Progress so far.
    pub fn progress(&self) -> StreamProgress {
        StreamProgress {
            clock: self.state.clock,
            trained_ts: self.state.trained_ts,
            version: self.publisher.version(),
            counters: self.state.counters.clone(),
        }
    }

    fn apply_side_state(&mut self, event: &Event) -> Result<()> {
        self.registry.apply(event);
        self.records.clear();
        self.history_builder.push(event, &mut self.records);
        if !self.records.is_empty() {
            self.history.append(&self.records)?;
            self.state.counters.history_records += self.records.len() as u64;
        }
        Ok(())
    }

    /// Rebuilds the history store after [`StreamPipeline::resume`]: feed the input's first
    /// [`StreamPipeline::offset`] records, in order (`None` for an unreadable one).
    pub fn replay(&mut self, replay: &mut EventFilter, event: Option<&Event>) -> Result<()> {
        let Some(event) = event else {
            return Ok(());
        };
        if replay.admit(event, self.lateness) {
            self.records.clear();
            self.history_builder.push(event, &mut self.records);
            if !self.records.is_empty() {
                self.history.append(&self.records)?;
            }
        }
        Ok(())
    }

    /// An unreadable input record: counted in the offset.
    pub fn skip_unreadable(&mut self) {
        self.state.counters.records += 1;
        self.state.counters.unreadable += 1;
    }

    /// Takes one event (in arrival order).
    pub fn push(&mut self, event: Event) -> Result<()> {
        self.state.counters.records += 1;
        let ts = event.ts.0;
        if self.state.filter.admit(&event, self.lateness) {
            self.state.counters.events += 1;
            if let EventKind::Impression {
                user,
                item: ItemRef::Live(live),
                request_id,
                position,
                ..
            } = event.kind
            {
                let key = (request_id.0, live.0);
                if !self.state.awaiting.contains_key(&key)
                    && !self
                        .state
                        .pending_served
                        .iter()
                        .any(|s| (s.request_id.0, s.live.0) == key)
                {
                    let sample = self.exposure_sample(ts, user, live, request_id, position);
                    self.state.pending_served.push(sample);
                }
            }
            self.apply_side_state(&event)?;
            self.state.clock = Some(self.state.clock.map_or(ts, |c| c.max(ts)));
        } else {
            self.state.counters.filtered += 1;
        }
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        self.engine.push(event, &mut out);
        self.consume(&mut out)?;
        self.out = out;
        self.advance()
    }

    /// End of a finite input: every exposure closes, the rest is trained and published,
    /// the final model written. Returns the summary.
    pub fn finish(&mut self) -> Result<StreamSummary> {
        if self.state.finished {
            // Resumed after the end: only the final model file may be missing.
            let model = self.trainer.to_bytes()?;
            write_atomic(&self.paths.final_model(), &model, true)?;
            return self.summary();
        }
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        self.engine.finish(&mut out);
        self.consume(&mut out)?;
        self.score_served()?;
        self.train_pending(true)?;
        let now = self.state.clock.unwrap_or(0);
        let published = self
            .publisher
            .finish(&mut self.trainer, now, self.state.trained_ts)?;
        self.note_published(&published);
        self.write_metrics_row(now)?;
        self.state.finished = true;
        self.checkpoint()?;
        self.join_writer()?;
        let model = self.trainer.to_bytes()?;
        write_atomic(&self.paths.final_model(), &model, true)?;
        self.summary()
    }

    fn note_published(&mut self, published: &[liverank_model::publish::Published]) {
        self.state.counters.publishes += published.len() as u64;
        if let Some(f) = self.on_publish.as_mut() {
            for p in published {
                f(p);
            }
        }
    }

    fn consume(&mut self, out: &mut Vec<Output>) -> Result<()> {
        for o in out.drain(..) {
            match o {
                Output::Sample(s) => {
                    if s.policy == Policy::Complete {
                        self.join_complete(&s)?;
                    }
                    if s.policy == self.policy {
                        if self.state.pending_train.is_empty() {
                            self.state.pending_since = self.state.clock.unwrap_or(s.ts.0);
                        }
                        self.state.pending_train.push(s);
                        self.state.counters.emitted += 1;
                        if self.state.pending_train.len() >= self.settings.batch_size {
                            self.train_pending(false)?;
                        }
                    }
                }
                Output::Rejected { .. } => self.state.counters.engine_rejected += 1,
            }
        }
        Ok(())
    }

    /// Time-driven work at the current clock: publishes, probes, metrics rows, checkpoints.
    fn advance(&mut self) -> Result<()> {
        let Some(now) = self.state.clock else {
            return Ok(());
        };
        if self.state.next_metrics == 0 {
            self.state.next_metrics = grid(now, self.settings.metrics_every_ms);
            self.state.next_checkpoint = grid(now, self.settings.checkpoint_every_ms);
            self.state.next_probe = grid(now, self.settings.probe_every_ms);
        }
        // Publishing: the first call writes the base snapshot; later, a partial batch that
        // has waited max_wait_ms is trained first, so it goes out with this publish.
        let due = self.publisher.version() == 0 || now >= self.publisher.state().next_sparse;
        if due {
            let waited = now.saturating_sub(self.state.pending_since);
            if self.publisher.version() > 0
                && !self.state.pending_train.is_empty()
                && waited >= self.settings.max_wait_ms as i64
            {
                self.score_served()?;
                self.train_pending(true)?;
            }
            let published = self
                .publisher
                .tick(&mut self.trainer, now, self.state.trained_ts)?;
            self.note_published(&published);
            self.state.publisher = self.publisher.state().clone();
        }
        while now >= self.state.next_probe {
            let at = self.state.next_probe;
            self.probe(at)?;
            self.state.next_probe += self.settings.probe_every_ms as i64;
        }
        if now >= self.state.next_metrics {
            let at = self.state.next_metrics;
            self.write_metrics_row(at)?;
            self.state.next_metrics = grid(now, self.settings.metrics_every_ms);
        }
        if now >= self.state.next_checkpoint {
            self.state.next_checkpoint = grid(now, self.settings.checkpoint_every_ms);
            self.checkpoint_inner(false)?;
        }
        Ok(())
    }

    /// The sample an exposure at `ts` would carry, from the registry (equal to the engine's
    /// features for a time-ordered input; see `LiveRegistry`).
    pub fn exposure_sample(
        &self,
        ts: i64,
        user: UserId,
        live: LiveId,
        request_id: RequestId,
        position: u32,
    ) -> Sample {
        let state = self.registry.room(live.0).map(|r| &r.state);
        let author = state.and_then(|s| s.author);
        let author_row = author.and_then(|a| self.context.authors.get(&a));
        let features = ExposureFeatures {
            user_profile: self.context.users.get(&user.0).copied(),
            author_type: author_row.map(|a| a.0.clone()),
            fans_bucket: author_row.map(|a| a.1),
            position,
            hour: (ts.rem_euclid(86_400_000) / 3_600_000) as u8,
            live_age_ms: state
                .and_then(|s| s.start)
                .map_or(0, |s| (ts - s).max(0) as u64),
            stats: self.registry.stats_before(live.0, ts),
            stats_len: self.stats_buckets,
            products: state.map_or_else(Vec::new, |s| s.products.iter().copied().collect()),
        };
        Sample {
            sample_id: 0,
            policy: Policy::Complete,
            kind: SampleKind::Close,
            seq: 0,
            ts: EventTime(ts),
            request_id,
            live,
            user,
            author: author.map(AuthorId),
            exposure_ts: EventTime(ts),
            category: state.and_then(|s| s.category).map(CategoryId),
            labels: LabelMask::default(),
            features: Arc::new(features),
        }
    }

    fn history_source(&self) -> HistorySource<'_> {
        HistorySource {
            store: self.history.as_ref(),
            assembler: self.assembler,
        }
    }

    /// Scores the exposures seen since the last call with the current model (before any
    /// sample of theirs can have been trained on: samples leave the engine one lateness
    /// after their impression at the earliest, and this runs before every step).
    fn score_served(&mut self) -> Result<()> {
        if self.state.pending_served.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.state.pending_served);
        let t = self.tasks.len();
        for chunk in pending.chunks(1024) {
            let batch = build_batch(
                &self.builder,
                chunk,
                Some(&self.history_source()),
                Some(self.trainer.store()),
            )?;
            let scores = self.trainer.predict(&batch)?;
            for (i, s) in chunk.iter().enumerate() {
                self.state.awaiting.insert(
                    (s.request_id.0, s.live.0),
                    (s.ts.0, s.user.0, scores[i * t..(i + 1) * t].to_vec()),
                );
            }
            self.state.counters.served_scored += chunk.len() as u64;
        }
        Ok(())
    }

    fn join_complete(&mut self, s: &Sample) -> Result<()> {
        let key = (s.request_id.0, s.live.0);
        if !self.state.awaiting.contains_key(&key) {
            // Its impression is still waiting to be scored.
            self.score_served()?;
        }
        if let Some((ts, user, scores)) = self.state.awaiting.remove(&key) {
            let (labels, mask) = self.task_bits(s.labels);
            self.record(
                1,
                Scored {
                    ts,
                    user,
                    labels,
                    mask,
                    scores,
                },
            )?;
            self.state.counters.served_joined += 1;
        }
        Ok(())
    }

    /// Labels and mask in the model's task order (bit i = tasks[i]).
    fn task_bits(&self, l: LabelMask) -> (u8, u8) {
        let (mut labels, mut mask) = (0u8, 0u8);
        for (i, &task) in self.tasks.iter().enumerate() {
            match l.get(task) {
                Some(true) => {
                    labels |= 1 << i;
                    mask |= 1 << i;
                }
                Some(false) => mask |= 1 << i,
                None => {}
            }
        }
        (labels, mask)
    }

    /// Test-then-train on the pending training samples (all of them when `partial`, else
    /// full batches only).
    fn train_pending(&mut self, partial: bool) -> Result<()> {
        let size = self.settings.batch_size;
        while self.state.pending_train.len() >= size
            || (partial && !self.state.pending_train.is_empty())
        {
            // Served predictions first: a step must not run before the exposures that
            // arrived ahead of its samples are scored.
            self.score_served()?;
            let take = self.state.pending_train.len().min(size);
            let chunk: Vec<Sample> = self.state.pending_train.drain(..take).collect();
            // Online, the soft searches read the table as it is at this step (exact, and
            // restart-exact since the checkpoint holds it).
            let batch = build_batch(
                &self.builder,
                &chunk,
                Some(&self.history_source()),
                Some(self.trainer.store()),
            )?;
            let (_, scores) = self.trainer.train_step_scored(&batch)?;
            let t = self.tasks.len();
            for (i, s) in chunk.iter().enumerate() {
                let (labels, mask) = self.task_bits(s.labels);
                self.record(
                    0,
                    Scored {
                        ts: s.ts.0,
                        user: s.user.0,
                        labels,
                        mask,
                        scores: scores[i * t..(i + 1) * t].to_vec(),
                    },
                )?;
                self.state.trained_ts = self.state.trained_ts.max(s.ts.0);
            }
            self.state.counters.trained += chunk.len() as u64;
            self.state.counters.steps += 1;
            if let Some(log) = self.trained_log.as_mut() {
                log.extend(chunk);
            }
        }
        Ok(())
    }

    /// Appends a prediction to the log and the stream's window.
    fn record(&mut self, stream: usize, row: Scored) -> Result<()> {
        let path = self.paths.predictions();
        let mut buf = Vec::with_capacity(19 + 4 * row.scores.len());
        buf.push(stream as u8);
        buf.extend_from_slice(&row.ts.to_le_bytes());
        buf.extend_from_slice(&row.user.to_le_bytes());
        buf.push(row.labels);
        buf.push(row.mask);
        for s in &row.scores {
            buf.extend_from_slice(&s.to_le_bytes());
        }
        self.predictions.write_all(&buf).map_err(io(&path))?;
        self.state.predictions_len += buf.len() as u64;
        self.state.windows[stream].push_back(row);
        Ok(())
    }

    fn write_metrics_row(&mut self, at: i64) -> Result<()> {
        let horizon = at - self.settings.window_ms as i64;
        let mut text = String::new();
        for (stream, name) in [(0usize, "train"), (1, "served")] {
            let window = &mut self.state.windows[stream];
            while window.front().is_some_and(|r| r.ts < horizon) {
                window.pop_front();
            }
            let rows: Vec<&Scored> = window.iter().collect();
            for (i, task) in self.tasks.iter().enumerate() {
                let m = task_metrics(&rows, i);
                let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.5}"));
                text.push_str(&format!(
                    "{at},{name},{},{},{},{},{},{}\n",
                    task.as_str(),
                    m.count,
                    m.positives,
                    f(m.auc),
                    f(m.gauc),
                    f(m.log_loss)
                ));
            }
        }
        let path = self.paths.metrics();
        self.metrics.write_all(text.as_bytes()).map_err(io(&path))?;
        self.state.metrics_len += text.len() as u64;
        Ok(())
    }

    /// Scores the probe panel against every highlight room whose baseline window or
    /// highlight covers `at`, with the published model in force at `at`.
    fn probe(&mut self, at: i64) -> Result<()> {
        let baseline = self.settings.boost_baseline_ms as i64;
        let active: Vec<usize> = self
            .highlights
            .iter()
            .enumerate()
            .filter(|(_, h)| h.start - baseline <= at && at < h.end)
            // A boosted highlight's time to boost is final: probing it further only
            // tracked its peak, at most of the probes' cost (decision online-9).
            .filter(|(i, _)| self.state.boosts[*i].boosted_at.is_none())
            .map(|(i, _)| i)
            .collect();
        if active.is_empty() || self.panel.is_empty() || self.publisher.version() == 0 {
            return Ok(());
        }
        let limit = self.publisher.version();
        let dir = self.paths.model_dir();
        match self.reader.as_mut() {
            Some(r) => {
                r.poll_until(limit)?;
            }
            None => self.reader = Some(ModelReader::open_until(&dir, limit)?),
        }
        let Some(scorer) = self.reader.as_ref().map(ModelReader::scorer) else {
            return Ok(());
        };
        let click = self.tasks.iter().position(|&t| t == Task::Click);
        let Some(click) = click else {
            return Ok(());
        };
        let t = self.tasks.len();
        // One forward pass for the whole panel against every active room: the panel's
        // rows of room k are rows k·P..(k+1)·P (per-call overhead dominates 64-row calls).
        let panel = self.panel.len();
        let rows: Vec<Sample> = active
            .iter()
            .flat_map(|&i| {
                let live = LiveId(self.highlights[i].live);
                self.panel
                    .iter()
                    .map(move |&u| (UserId(u), live))
                    .collect::<Vec<_>>()
            })
            .map(|(user, live)| self.exposure_sample(at, user, live, RequestId(0), 0))
            .collect();
        let batch = build_batch(
            &self.builder,
            &rows,
            Some(&self.history_source()),
            Some(scorer.store()),
        )?;
        let scores = scorer.predict(&batch)?;
        for (k, &i) in active.iter().enumerate() {
            let mean = (k * panel..(k + 1) * panel)
                .map(|r| f64::from(scores[r * t + click]))
                .sum::<f64>()
                / panel as f64;
            let h = &self.highlights[i];
            let track = &mut self.state.boosts[i];
            if at < h.start {
                track.baseline_sum += mean;
                track.baseline_n += 1;
            } else {
                track.probes += 1;
                track.peak = track.peak.max(mean);
                if track.boosted_at.is_none() && track.baseline_n > 0 {
                    let level = track.baseline_sum / f64::from(track.baseline_n);
                    if mean > level * (1.0 + self.settings.boost_margin) {
                        track.boosted_at = Some(at);
                    }
                }
            }
        }
        Ok(())
    }

    /// Waits for the checkpoint being written in the background, if any.
    fn join_writer(&mut self) -> Result<()> {
        match self.writer.take() {
            Some(w) => w
                .join()
                .map_err(|_| TrainError::Input("the checkpoint writer panicked".into()))?,
            None => Ok(()),
        }
    }

    /// Takes a checkpoint after flushing the logs it points into; it is written (atomically)
    /// on a background thread after the published versions it claims are fsynced, and
    /// [`StreamPipeline::finish`] waits for it.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.checkpoint_inner(true)
    }

    /// A checkpoint, skipped (unless `force`) while the previous one is still being written:
    /// on a replay the disk falls behind the event-time cadence, and any checkpoint resumes
    /// exactly. What a checkpoint pins is pinned either way, so outputs do not depend on it.
    fn checkpoint_inner(&mut self, force: bool) -> Result<()> {
        // The versions the checkpoint claims must survive a machine crash.
        let mut pending = self.publisher.take_unsynced();
        if let Some(older) = self.stash.take() {
            pending = older.merge(pending);
        }
        if !force && self.writer.as_ref().is_some_and(|w| !w.is_finished()) {
            self.stash = Some(pending);
            return Ok(());
        }
        let (mp, pp) = (self.paths.metrics(), self.paths.predictions());
        self.metrics.flush().map_err(io(&mp))?;
        self.predictions.flush().map_err(io(&pp))?;
        self.state.publisher = self.publisher.state().clone();
        let state = postcard::to_stdvec(&self.state)
            .map_err(|e| TrainError::Input(format!("checkpoint state: {e}")))?;
        let engine = self
            .engine
            .to_bytes()
            .map_err(|e| TrainError::Input(format!("checkpoint engine: {e}")))?;
        let registry = postcard::to_stdvec(&self.registry)
            .map_err(|e| TrainError::Input(format!("checkpoint registry: {e}")))?;
        let trainer = self.trainer.to_bytes()?;
        let mut out = Vec::with_capacity(state.len() + engine.len() + trainer.len() + 64);
        out.extend_from_slice(MAGIC);
        for s in [&state[..], &engine[..], &registry[..], &trainer[..]] {
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        // One checkpoint in flight at a time, written in order.
        self.join_writer()?;
        let path = self.paths.checkpoint();
        self.writer = Some(std::thread::spawn(move || {
            pending.sync()?;
            write_atomic(&path, &out, true)?;
            Ok(())
        }));
        Ok(())
    }

    /// Cumulative metrics (from the prediction log) and time-to-boost.
    pub fn summary(&mut self) -> Result<StreamSummary> {
        let path = self.paths.predictions();
        self.predictions.flush().map_err(io(&path))?;
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let t = self.tasks.len();
        let per = 19 + 4 * t;
        let mut rows: [Vec<Scored>; 2] = [Vec::new(), Vec::new()];
        for r in bytes.chunks_exact(per) {
            let word = |at: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&r[at..at + 8]);
                w
            };
            let scores = r[19..]
                .chunks_exact(4)
                .map(|f| f32::from_le_bytes([f[0], f[1], f[2], f[3]]))
                .collect();
            rows[usize::from(r[0] & 1)].push(Scored {
                ts: i64::from_le_bytes(word(1)),
                user: u64::from_le_bytes(word(9)),
                labels: r[17],
                mask: r[18],
                scores,
            });
        }
        let metrics = |rows: &[Scored]| -> Vec<(Task, TaskMetrics)> {
            let refs: Vec<&Scored> = rows.iter().collect();
            self.tasks
                .iter()
                .enumerate()
                .map(|(i, &task)| (task, task_metrics(&refs, i)))
                .collect()
        };
        let boost_s = self
            .highlights
            .iter()
            .zip(&self.state.boosts)
            .map(|(h, b)| b.boosted_at.map(|t| (t - h.start) as f64 / 1_000.0))
            .collect();
        Ok(StreamSummary {
            policy: self.policy,
            counters: self.state.counters.clone(),
            train: metrics(&rows[0]),
            served: metrics(&rows[1]),
            version: self.publisher.version(),
            boost_s,
            highlights: self.highlights.len(),
        })
    }

    /// Per-highlight tracks (time-to-boost details).
    pub fn boosts(&self) -> &[BoostTrack] {
        &self.state.boosts
    }
}

fn task_metrics(rows: &[&Scored], i: usize) -> TaskMetrics {
    let mut users = Vec::new();
    let mut scores = Vec::new();
    let mut labels = Vec::new();
    for r in rows {
        if r.mask >> i & 1 == 1 {
            users.push(r.user);
            scores.push(r.scores[i]);
            labels.push(r.labels >> i & 1 == 1);
        }
    }
    evaluate(&users, &scores, &labels)
}

/// The filter in front of history and statistics (and replayed over an input prefix on
/// resume): an event older than the newest accepted one by more than the lateness, or
/// whose `event_id` was accepted within twice the lateness, is kept out — the engine's
/// rules for late and repeated events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventFilter {
    max: Option<i64>,
    // Ordered, so that a checkpoint's bytes are a function of the input.
    seen: std::collections::BTreeSet<u64>,
    order: VecDeque<(i64, u64)>,
}

impl EventFilter {
    /// Whether `event` passes; remembers it if so.
    pub fn admit(&mut self, event: &Event, lateness: i64) -> bool {
        let ts = event.ts.0;
        if let Some(max) = self.max
            && ts < max - lateness
        {
            return false;
        }
        if !self.seen.insert(event.event_id.0) {
            return false;
        }
        self.order.push_back((ts, event.event_id.0));
        if self.max.is_none_or(|m| ts > m) {
            self.max = Some(ts);
            let horizon = ts - 2 * lateness;
            while let Some(&(t, id)) = self.order.front() {
                if t >= horizon {
                    break;
                }
                self.seen.remove(&id);
                self.order.pop_front();
            }
        }
        true
    }
}

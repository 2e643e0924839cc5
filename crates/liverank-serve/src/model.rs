//! The model as serving sees it: a plain [`Ranker`] trait (no tensor types), a
//! [`ServedModel`] (ranker + version + feature builder), and the [`ModelSlot`] that swaps
//! versions under running requests.
//!
//! Hot swap: the slot holds an `ArcSwapOption<ServedModel>`. A request loads the `Arc` once
//! at its start and ranks every candidate with that one version, while a publisher stores
//! the next; nobody waits on a lock, and the old version is freed when its last request
//! ends. The slot refuses a version not newer than the one serving, so the version a
//! client sees never goes backwards.

use crate::error::{Result, ServeError};
use arc_swap::ArcSwapOption;
use liverank_model::{FeatureBatch, FeatureBuilder, RankerConfig, Scorer};
use liverank_types::{EventTime, Task};
use std::sync::Arc;

/// What serving needs of a ranker: probabilities for a feature batch, and embedding rows
/// for the embedding recall. Implemented by [`liverank_model::Scorer`]; tests may use any
/// other implementation.
pub trait Ranker: Send + Sync {
    /// The model's configuration (tasks, sequence shapes).
    fn config(&self) -> &RankerConfig;
    /// Probabilities, row-major `[rows, tasks]` in `config().tasks` order.
    fn predict(&self, batch: &FeatureBatch) -> Result<Vec<f32>>;
    /// The embedding row of a namespaced key, if held.
    fn embedding(&self, key: u64) -> Option<&[f32]>;
}

impl Ranker for Scorer {
    fn config(&self) -> &RankerConfig {
        Scorer::config(self)
    }
    fn predict(&self, batch: &FeatureBatch) -> Result<Vec<f32>> {
        Ok(Scorer::predict(self, batch)?)
    }
    fn embedding(&self, key: u64) -> Option<&[f32]> {
        self.embedding_row(key)
    }
}

/// One model version ready to serve.
pub struct ServedModel {
    /// Version, increasing with every publish.
    pub version: u64,
    /// Event time of the newest sample the version trained on, when known (the lag of
    /// `/metrics` is the stream's event time minus this).
    pub trained_until: Option<EventTime>,
    /// The ranker.
    pub ranker: Arc<dyn Ranker>,
    /// The feature builder of the ranker's configuration.
    pub builder: FeatureBuilder,
}

impl std::fmt::Debug for ServedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedModel")
            .field("version", &self.version)
            .field("trained_until", &self.trained_until)
            .finish_non_exhaustive()
    }
}

impl ServedModel {
    /// Wraps a ranker as `version`.
    pub fn new(version: u64, ranker: Arc<dyn Ranker>, trained_until: Option<EventTime>) -> Self {
        let builder = FeatureBuilder::new(ranker.config());
        Self {
            version,
            trained_until,
            ranker,
            builder,
        }
    }

    /// The tasks of the predictions, in column order.
    pub fn tasks(&self) -> &[Task] {
        &self.ranker.config().tasks
    }
}

/// Where the current model comes from: the slot, from a handler's point of view.
pub trait ModelSource: Send + Sync {
    /// The version to rank this request with (`None` before the first load).
    fn current(&self) -> Option<Arc<ServedModel>>;
}

/// Something that yields new model versions when polled: the online trainer's publisher
/// directory read by a `ModelReader`, a checkpoint file, a test's list. The binary wires
/// the concrete one; [`ModelSlot::poll_from`] installs what it yields.
pub trait ModelFeed: Send {
    /// A newer version than `after`, if one is there (`Err` = a version that failed to
    /// load: refused, the current one keeps serving).
    fn poll(&mut self, after: Option<u64>) -> Result<Option<ServedModel>>;
}

/// The hot-swapped current model.
#[derive(Debug, Default)]
pub struct ModelSlot {
    current: ArcSwapOption<ServedModel>,
    /// Serialises publishers (requests never take it).
    publish: std::sync::Mutex<()>,
}

impl ModelSlot {
    /// An empty slot (not ready).
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs `model` if it is newer than the one serving; requests already running keep
    /// the version they started with.
    pub fn publish(&self, model: ServedModel) -> Result<u64> {
        let _guard = self
            .publish
            .lock()
            .map_err(|_| ServeError::Internal("model publisher lock poisoned".into()))?;
        if let Some(current) = self.current.load_full()
            && model.version <= current.version
        {
            return Err(ServeError::ModelRefused(format!(
                "version {} is not newer than the serving version {}",
                model.version, current.version
            )));
        }
        let version = model.version;
        self.current.store(Some(Arc::new(model)));
        metrics::gauge!("liverank_serve_model_version").set(version as f64);
        Ok(version)
    }

    /// Polls `feed` once and installs what it yields; `Ok(None)` when nothing new.
    /// A version that fails to load is refused and counted; the current keeps serving.
    pub fn poll_from(&self, feed: &mut dyn ModelFeed) -> Result<Option<u64>> {
        let after = self.current.load().as_ref().map(|m| m.version);
        match feed.poll(after) {
            Ok(Some(model)) => self.publish(model).map(Some),
            Ok(None) => Ok(None),
            Err(e) => {
                metrics::counter!("liverank_serve_model_refused_total").increment(1);
                Err(e)
            }
        }
    }
}

impl ModelSource for ModelSlot {
    fn current(&self) -> Option<Arc<ServedModel>> {
        self.current.load_full()
    }
}

/// The feed of a published model directory (`liverank stream`'s `<out>/model`, or any
/// directory a `ModelPublisher` writes): a [`liverank_model::publish::ModelReader`] that
/// follows it, applying deltas, dense weights and snapshots in version order. A corrupt,
/// truncated or out-of-order file is refused by the reader, which keeps the model it has;
/// the feed then reports nothing new, and counts the refusal.
pub struct ModelDirFeed {
    dir: std::path::PathBuf,
    reader: Option<liverank_model::publish::ModelReader>,
    /// Refusals already counted (the reader's own counters, summed).
    refused_seen: u64,
}

impl std::fmt::Debug for ModelDirFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelDirFeed")
            .field("dir", &self.dir)
            .field("version", &self.reader.as_ref().map(|r| r.version()))
            .finish()
    }
}

impl ModelDirFeed {
    /// A feed of `dir`; nothing is read until the first poll (the directory may still be
    /// empty when a server starts beside a trainer).
    pub fn new(dir: impl Into<std::path::PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            reader: None,
            refused_seen: 0,
        }
    }

    /// The reader's counters (applied, refused), once a snapshot was loaded.
    pub fn counters(&self) -> Option<liverank_model::publish::ReaderCounters> {
        self.reader.as_ref().map(|r| r.counters().clone())
    }

    fn served(reader: &liverank_model::publish::ModelReader) -> ServedModel {
        let trained = reader.trained_ts();
        ServedModel::new(
            reader.version(),
            reader.scorer(),
            (trained > i64::MIN).then_some(EventTime(trained)),
        )
    }

    /// Whether the directory holds a snapshot file yet (a reader can start only there).
    fn has_snapshot(&self) -> bool {
        std::fs::read_dir(&self.dir).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                e.file_name().to_str().is_some_and(|n| {
                    n.ends_with(liverank_model::publish::PublishKind::Snapshot.ext())
                })
            })
        })
    }
}

impl ModelFeed for ModelDirFeed {
    fn poll(&mut self, after: Option<u64>) -> Result<Option<ServedModel>> {
        let refused_before = self.refused_seen;
        match &mut self.reader {
            None => {
                if !self.has_snapshot() {
                    return Ok(None);
                }
                let reader =
                    liverank_model::publish::ModelReader::open(&self.dir).map_err(|e| {
                        ServeError::ModelRefused(format!("{}: {e}", self.dir.display()))
                    })?;
                self.reader = Some(reader);
            }
            Some(reader) => {
                reader.poll().map_err(|e| {
                    ServeError::ModelRefused(format!("{}: {e}", self.dir.display()))
                })?;
            }
        }
        let Some(reader) = &self.reader else {
            return Ok(None);
        };
        let c = reader.counters();
        self.refused_seen = c.refused_corrupt + c.refused_gap;
        if self.refused_seen > refused_before {
            metrics::counter!("liverank_serve_model_refused_total")
                .increment(self.refused_seen - refused_before);
        }
        if after.is_some_and(|a| reader.version() <= a) {
            return Ok(None);
        }
        Ok(Some(Self::served(reader)))
    }
}

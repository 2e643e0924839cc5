//! Offline training: a time-based split, epochs over the training samples with a pipelined
//! feature builder, and evaluation on the `complete` labels of the later slice.
//!
//! Whatever policy produced the training samples, evaluation always uses the `complete`
//! samples (one row per exposure) whose impression lies in the held-out later slice, so
//! policies compare on the same ground.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use liverank_history::{GsuAssembler, GsuRequest, HistoryStore, NoVectors};
use liverank_model::embedding::EmbeddingStore;
use liverank_model::features::HistoryView;

use liverank_model::rng::SplitMix64;
use liverank_model::soft::TableVectors;
use liverank_model::{FeatureBatch, FeatureBuilder, InputShape, RankerConfig, Scorer, Trainer};
use liverank_types::AuthorId;
use liverank_types::{Policy, Sample, Task};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::metrics::{TaskMetrics, auc, evaluate};

/// How an offline run iterates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSettings {
    /// Passes over the training slice.
    pub epochs: usize,
    /// Rows per step.
    pub batch_size: usize,
    /// Share of the time range (by impression time of the `complete` samples) used for
    /// training; the rest is held out for evaluation.
    pub train_fraction: f64,
    /// Shuffle the training samples each epoch (seeded); off = event-time order.
    pub shuffle: bool,
    /// Run the embedding store on a second thread ([`Trainer::train_pipelined`]): rows are
    /// read one update stale, each epoch drains. Off = one step at a time.
    pub pipeline: bool,
    /// Soft searches (V_long, V_livelong) in training read the embedding table as of the
    /// start of a chunk of this many steps (a frozen copy taken when the pipeline has
    /// drained; chunks restart at each epoch). Smaller = fresher and more drains.
    pub soft_refresh_steps: u64,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            epochs: 2,
            batch_size: 256,
            train_fraction: 0.75,
            shuffle: true,
            pipeline: true,
            soft_refresh_steps: 100,
        }
    }
}

impl TrainSettings {
    /// Checks the values: at least one epoch, a positive batch, a split inside (0, 1).
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(TrainError::Config(reason));
        if self.soft_refresh_steps == 0 {
            return bad("soft_refresh_steps must be at least 1".into());
        }
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1".into());
        }
        if !(self.train_fraction > 0.0 && self.train_fraction < 1.0) {
            return bad(format!(
                "train_fraction must lie in (0, 1), got {}",
                self.train_fraction
            ));
        }
        Ok(())
    }
}

/// Reads samples from a file (`.parquet` or `.jsonl`) or from the output directory of
/// `liverank samples` (every `samples-*.parquet` segment in order, or `samples.jsonl`).
pub fn load_samples(path: &Path) -> Result<Vec<Sample>> {
    let io = |source: std::io::Error| TrainError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        let mut segments: Vec<_> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with("samples") && (n.ends_with(".parquet") || n.ends_with(".jsonl"))
                })
            })
            .collect();
        segments.sort();
        if segments.is_empty() {
            return Err(TrainError::Input(format!(
                "{}: no samples-*.parquet or samples.jsonl inside",
                path.display()
            )));
        }
        let mut all = Vec::new();
        for s in segments {
            all.extend(load_samples(&s)?);
        }
        return Ok(all);
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => liverank_ingest::read_parquet_samples(path).map_err(TrainError::from),
        Some("jsonl") => {
            let text = std::fs::read_to_string(path).map_err(io)?;
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| {
                    serde_json::from_str(l).map_err(|source| TrainError::SampleLine {
                        path: path.to_path_buf(),
                        line: i + 1,
                        source,
                    })
                })
                .collect()
        }
        _ => Err(TrainError::Input(format!(
            "{}: expected a .parquet or .jsonl file, or a samples directory",
            path.display()
        ))),
    }
}

/// The instant splitting training from evaluation: `train_fraction` of the way through the
/// impression times of the evaluation (`complete`) samples.
pub fn split_time(eval: &[Sample], train_fraction: f64) -> Option<i64> {
    let (lo, hi) = eval.iter().fold((i64::MAX, i64::MIN), |(lo, hi), s| {
        (lo.min(s.exposure_ts.0), hi.max(s.exposure_ts.0))
    });
    (lo <= hi).then(|| lo + ((hi - lo) as f64 * train_fraction) as i64)
}

/// Evaluation of one model on the held-out slice.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    /// Per task, in the model's task order.
    pub tasks: Vec<(Task, TaskMetrics)>,
    /// Held-out exposures.
    pub exposures: usize,
    /// Exposure keys `(request_id, live)` and the predicted click probability, for joins
    /// with ground truth.
    pub click_predictions: Vec<((u64, u64), f32)>,
}

/// Where the Cross history sequences of the samples come from: a history store and the
/// GSU assembler, read point in time at each sample's exposure.
#[derive(Clone, Copy)]
pub struct HistorySource<'a> {
    /// The users' interaction logs (built from the same events as the samples).
    pub store: &'a dyn HistoryStore,
    /// Sequence length and searches.
    pub assembler: GsuAssembler,
}

impl std::fmt::Debug for HistorySource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistorySource")
            .field("assembler", &self.assembler)
            .finish_non_exhaustive()
    }
}

/// Builds the feature rows of `samples`, with each sample's GSU sequences as they were just
/// before its exposure when the model uses history and a source is given. The soft
/// searches (V_long, V_livelong) rank the visible records by the dot product of their
/// item's row in `vectors` with the target live's row; without a table, or for a target
/// without a row, they come out empty.
pub fn build_batch(
    builder: &FeatureBuilder,
    samples: &[Sample],
    history: Option<&HistorySource<'_>>,
    vectors: Option<&EmbeddingStore>,
) -> Result<FeatureBatch> {
    let mut batch = builder.empty_batch();
    // LiveForesighter: the batch's uncached rooms forecast together, once each.
    builder.prefetch(samples);
    let history = history.filter(|_| builder.uses_history());
    let vectors = vectors
        .filter(|_| builder.uses_soft_search())
        .map(TableVectors::new);
    for s in samples {
        match history {
            Some(h) => {
                let records = h.store.visible_shared(s.user, s.exposure_ts)?;
                let sequences = assemble(h, &records, s, vectors.as_ref())?;
                let view = HistoryView {
                    sequences: &sequences,
                    records: &records,
                    profile: None,
                };
                builder.push_with_history(&mut batch, s, Some(view));
            }
            None => builder.push(&mut batch, s),
        }
    }
    Ok(batch)
}

/// The five sequences of one sample over the user's records visible at its exposure.
fn assemble(
    h: &HistorySource<'_>,
    records: &[liverank_history::HistoryRecord],
    s: &Sample,
    vectors: Option<&TableVectors<'_>>,
) -> Result<liverank_history::GsuSequences> {
    let query = vectors.and_then(|v| v.query(s.live.0));
    let request = GsuRequest {
        user: s.user,
        target_author: s.author.unwrap_or(AuthorId(0)),
        before_ts: s.exposure_ts,
        query: query.unwrap_or(&[]),
    };
    Ok(match (vectors, query) {
        (Some(v), Some(_)) => h.assembler.assemble_from(records, &request, v)?,
        _ => h.assembler.assemble_from(records, &request, &NoVectors)?,
    })
}

/// Recall@k of the soft searches run with a `stale` table against the same searches with
/// the `exact` one, over `samples`: the share of the exact top-k records (V_long and
/// V_livelong together, by record position) that the stale search also returns. `None`
/// when the exact searches return nothing.
pub fn soft_search_recall(
    history: &HistorySource<'_>,
    samples: &[Sample],
    stale: &EmbeddingStore,
    exact: &EmbeddingStore,
) -> Result<Option<f64>> {
    use liverank_history::{Domain, searches};
    let (stale, exact) = (TableVectors::new(stale), TableVectors::new(exact));
    let k = history.assembler.len();
    let (mut hit, mut total) = (0usize, 0usize);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for s in samples {
        let records = history.store.visible_shared(s.user, s.exposure_ts)?;
        let Some(qe) = exact.query(s.live.0) else {
            continue;
        };
        // A target without a row in the stale table: its searches find nothing.
        let qs = stale.query(s.live.0);
        for domain in [Domain::Video, Domain::Live] {
            searches::soft_into(&records, domain, qe, &exact, k, &mut a)?;
            b.clear();
            if let Some(qs) = qs {
                searches::soft_into(&records, domain, qs, &stale, k, &mut b)?;
            }
            let found: HashSet<usize> = b.iter().map(|&(_, i)| i).collect();
            total += a.len();
            hit += a.iter().filter(|(_, i)| found.contains(i)).count();
        }
    }
    Ok((total > 0).then(|| hit as f64 / total as f64))
}

/// Scores the `complete` samples with `scorer` and computes every task's metrics.
pub fn evaluate_on(
    scorer: &Scorer,
    eval: &[Sample],
    history: Option<&HistorySource<'_>>,
) -> Result<Evaluation> {
    let config = scorer.config();
    let builder = FeatureBuilder::new(config);
    let tasks = config.tasks.clone();
    let mut predictions: Vec<f32> = Vec::with_capacity(eval.len() * tasks.len());
    for chunk in eval.chunks(1024) {
        let batch = build_batch(&builder, chunk, history, Some(scorer.store()))?;
        predictions.extend(scorer.predict(&batch).map_err(TrainError::Model)?);
    }
    let users: Vec<u64> = eval.iter().map(|s| s.user.0).collect();
    let mut out = Vec::with_capacity(tasks.len());
    let mut click_predictions = Vec::new();
    for (t, &task) in tasks.iter().enumerate() {
        let scores: Vec<f32> = (0..eval.len())
            .map(|i| predictions[i * tasks.len() + t])
            .collect();
        let labels: Vec<bool> = eval
            .iter()
            .map(|s| s.labels.get(task) == Some(true))
            .collect();
        if task == Task::Click {
            click_predictions = eval
                .iter()
                .zip(&scores)
                .map(|(s, &p)| ((s.request_id.0, s.live.0), p))
                .collect();
        }
        out.push((task, evaluate(&users, &scores, &labels)));
    }
    Ok(Evaluation {
        tasks: out,
        exposures: eval.len(),
        click_predictions,
    })
}

/// Click AUC of the popularity baseline: each room's smoothed click rate over the training
/// exposures, `(clicks + 1) / (exposures + 20)`.
pub fn popularity_click_auc(train: &[Sample], eval: &[Sample]) -> Option<f64> {
    let mut exposures: HashSet<(u64, u64)> = HashSet::new();
    let mut per_live: HashMap<u64, (f64, f64)> = HashMap::new();
    for s in train {
        let entry = per_live.entry(s.live.0).or_default();
        if exposures.insert((s.request_id.0, s.live.0)) {
            entry.1 += 1.0;
        }
        if s.labels.get(Task::Click) == Some(true) {
            entry.0 += 1.0;
        }
    }
    let scores: Vec<f32> = eval
        .iter()
        .map(|s| {
            per_live
                .get(&s.live.0)
                .map_or(1.0 / 20.0, |(c, n)| (c + 1.0) / (n + 20.0)) as f32
        })
        .collect();
    let labels: Vec<bool> = eval
        .iter()
        .map(|s| s.labels.get(Task::Click) == Some(true))
        .collect();
    auc(&scores, &labels)
}

/// Progress of a run, handed to the caller's callback after every step.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Steps done (including those before a resume).
    pub step: u64,
    /// Steps of the whole run.
    pub total_steps: u64,
    /// Loss of the last step.
    pub loss: f32,
    /// Training rows per second since this process started the run.
    pub rows_per_s: f64,
    /// The epoch ended: every update is applied (the callback gets the trainer).
    pub epoch_end: bool,
}

/// A finished offline run.
#[derive(Debug)]
pub struct OfflineRun {
    /// The trained model.
    pub trainer: Trainer,
    /// Loss of every step run by this process.
    pub losses: Vec<f32>,
    /// Training rows per second.
    pub rows_per_s: f64,
    /// Per refresh of the soft searches' table: recall@k of the searches with the table
    /// as of the chunk's start against the table at its end (see
    /// [`soft_search_recall`]); empty without soft searches.
    pub soft_recall: Vec<f64>,
    /// Seconds the feature thread spent building batches (history reads and searches).
    pub feature_s: f64,
}

/// Training samples of the chosen policy emitted before the split (the labels a model
/// trained at that instant could have seen), and the `complete` samples after it.
pub fn split_samples(
    train: Vec<Sample>,
    eval: Vec<Sample>,
    policy: Policy,
    train_fraction: f64,
) -> Result<(Vec<Sample>, Vec<Sample>)> {
    let eval: Vec<Sample> = eval
        .into_iter()
        .filter(|s| s.policy == Policy::Complete)
        .collect();
    let split = split_time(&eval, train_fraction)
        .ok_or_else(|| TrainError::Input("no `complete` samples to evaluate on: run `liverank samples` with --policy complete too".into()))?;
    let train: Vec<Sample> = train
        .into_iter()
        .filter(|s| s.policy == policy && s.ts.0 < split)
        .collect();
    let eval: Vec<Sample> = eval
        .into_iter()
        .filter(|s| s.exposure_ts.0 >= split)
        .collect();
    if train.is_empty() {
        return Err(TrainError::Input(format!(
            "no `{}` samples before the split",
            policy.as_str()
        )));
    }
    Ok((train, eval))
}

/// Trains `trainer` (fresh or resumed: it continues at `trainer.steps()`) for
/// `settings.epochs` over `train`. The sample order of each epoch is a seeded function of
/// (seed, epoch), so a resumed run replays exactly the batches the uninterrupted run would.
/// Feature batches are built on a second thread while the current step trains. With
/// `settings.pipeline` each epoch is one [`Trainer::train_pipelined`] run (the embedding
/// store on its own thread, rows read one update stale); it drains at the epoch's end, so
/// a checkpoint taken there resumes exactly.
///
/// `on_step` is called after every step with `None`, and once more at the end of each
/// epoch with the trainer (every update applied: the moment to checkpoint).
pub fn train_offline(
    mut trainer: Trainer,
    settings: &TrainSettings,
    train: &[Sample],
    history: Option<&HistorySource<'_>>,
    mut on_step: impl FnMut(Option<&Trainer>, Progress) -> Result<()> + Send,
) -> Result<OfflineRun> {
    let batch_size = settings.batch_size.max(1);
    let per_epoch = train.len().div_ceil(batch_size) as u64;
    let total = per_epoch * settings.epochs as u64;
    let builder = FeatureBuilder::new(trainer.config());
    let seed = trainer.config().seed;
    let started = Instant::now();
    let mut losses = Vec::new();
    let mut rows = 0usize;
    let shuffle = settings.shuffle;
    let builder = &builder;

    // Soft searches read a frozen copy of the table taken at the start of each chunk of
    // `soft_refresh_steps` steps (chunks restart at every epoch, so a resumed run replays
    // the same chunks); without them an epoch is one chunk.
    let soft = history.is_some() && builder.uses_soft_search();
    let refresh = settings.soft_refresh_steps.max(1);
    let mut snapshot: Option<EmbeddingStore> = None;
    let mut soft_recall = Vec::new();
    let mut feature_s = 0.0f64;
    let mut step = trainer.steps();
    while step < total {
        let epoch = step / per_epoch;
        let epoch_end = (epoch + 1) * per_epoch;
        let chunk_end = if soft {
            let into = step - epoch * per_epoch;
            (epoch * per_epoch + (into / refresh + 1) * refresh).min(epoch_end)
        } else {
            epoch_end
        };
        if soft {
            let fresh = trainer.store().clone();
            if let (Some(stale), Some(h)) = (&snapshot, history) {
                // Recall of the table the last chunk searched with against the table its
                // last step would have had exactly, on 128 training samples spread over
                // the slice.
                let every = train.len().div_ceil(128).max(1);
                let probe: Vec<Sample> = train.iter().step_by(every).cloned().collect();
                if let Some(r) = soft_search_recall(h, &probe, stale, &fresh)? {
                    soft_recall.push(r);
                }
            }
            snapshot = Some(fresh);
        }
        let vectors = snapshot.as_ref();
        let feature_s = &mut feature_s;
        let mut progress = |loss: f32, batch_rows: usize, done: u64, epoch_end: bool| {
            if !epoch_end {
                losses.push(loss);
                rows += batch_rows;
            }
            Progress {
                step: done,
                total_steps: total,
                loss,
                rows_per_s: rows as f64 / started.elapsed().as_secs_f64().max(1e-9),
                epoch_end,
            }
        };
        let mut last = f32::NAN;
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = sync_channel::<Result<FeatureBatch>>(2);
            scope.spawn(move || {
                let mut order: Vec<usize> = (0..train.len()).collect();
                if shuffle {
                    SplitMix64::new(seed ^ epoch.wrapping_mul(0x9E37_79B9)).shuffle(&mut order);
                }
                let mut chunk = Vec::with_capacity(batch_size);
                for s in step..chunk_end {
                    let index = (s % per_epoch) as usize;
                    chunk.clear();
                    let end = ((index + 1) * batch_size).min(train.len());
                    chunk.extend(
                        order[index * batch_size..end]
                            .iter()
                            .map(|&i| train[i].clone()),
                    );
                    let clock = Instant::now();
                    let batch = build_batch(builder, &chunk, history, vectors);
                    *feature_s += clock.elapsed().as_secs_f64();
                    let failed = batch.is_err();
                    if tx.send(batch).is_err() || failed {
                        return;
                    }
                }
            });
            if settings.pipeline {
                let failure = std::sync::Mutex::new(None);
                let batches = rx.into_iter().map_while(|b| match b {
                    Ok(b) => Some(b),
                    Err(e) => {
                        *failure
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                        None
                    }
                });
                let mut stopped = None;
                let mut done = step;
                let result = rayon::scope(|_| {
                    trainer.train_pipelined(batches, |stats| {
                        done += 1;
                        last = stats.loss;
                        on_step(None, progress(stats.loss, stats.rows, done, false)).map_err(|e| {
                            stopped = Some(e);
                            liverank_model::ModelError::Shape("stopped by the caller".into())
                        })
                    })
                });
                if let Some(e) = stopped {
                    return Err(e);
                }
                if let Some(e) = failure
                    .into_inner()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                {
                    return Err(e);
                }
                result.map_err(TrainError::Model)?;
            } else {
                for batch in rx {
                    let stats = trainer.train_step(&batch?).map_err(TrainError::Model)?;
                    last = stats.loss;
                    on_step(
                        None,
                        progress(stats.loss, stats.rows, trainer.steps(), false),
                    )?;
                }
            }
            Ok(())
        })?;
        if trainer.steps() != chunk_end {
            return Err(TrainError::Stopped(format!(
                "epoch {epoch} ended at step {} instead of {chunk_end}",
                trainer.steps()
            )));
        }
        if chunk_end == epoch_end {
            on_step(Some(&trainer), progress(last, 0, epoch_end, true))?;
        }
        step = chunk_end;
    }
    let rows_per_s = rows as f64 / started.elapsed().as_secs_f64().max(1e-9);
    Ok(OfflineRun {
        trainer,
        losses,
        rows_per_s,
        soft_recall,
        feature_s,
    })
}

/// Input shape of models trained on samples.
pub fn sample_shape(config: &RankerConfig) -> InputShape {
    FeatureBuilder::new(config).shape()
}

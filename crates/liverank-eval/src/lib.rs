//! Experiments: a list of named model variants, each trained with several seeds on the
//! same training samples and history, evaluated on the same held-out `complete` samples,
//! summarised as one table of AUC / GAUC per task (mean ± half-range over the seeds).
//!
//! A variant is the base model configuration with a TOML table merged over it (any
//! `[model]` key: `history_sequences = []` removes Cross, dropping one sequence ablates its
//! GSU, `contrastive_weight = 0` the alignment), so every ablation is configuration alone.
//! The table can also report the Cross segment of Moment&Cross §2.4 (users with little live
//! history but much video history, [`Segment`]). [`run_experiment`] returns the
//! [`ExperimentTable`]; [`ExperimentTable::to_markdown`] and [`ExperimentTable::to_csv`]
//! render it. The `liverank experiment` command and the report reuse this.

pub mod abtest;

use std::collections::HashMap;

use liverank_history::Domain;
use liverank_model::{RankerConfig, Trainer};
use liverank_train::offline::sample_shape;
use liverank_train::{Evaluation, HistorySource, TrainSettings, evaluate_on, train_offline};
use liverank_types::{Sample, Task};
use serde::{Deserialize, Serialize};

/// Errors of an experiment.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The experiment file or a variant's configuration is wrong.
    #[error("experiment configuration: {0}")]
    Config(String),
    /// Training or evaluation failed.
    #[error("variant `{variant}` seed {seed}: {source}")]
    Run {
        /// The variant.
        variant: String,
        /// The seed.
        seed: u64,
        /// What failed.
        source: liverank_train::TrainError,
    },
    /// Reading the history failed.
    #[error("history: {0}")]
    History(#[from] liverank_history::HistoryError),
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, EvalError>;

/// One named variant: `model` is merged over the base model configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Name in the table.
    pub name: String,
    /// `[model]` keys that differ from the base.
    #[serde(default)]
    pub model: toml::Table,
}

/// What an experiment runs and reports (the library part of an experiment file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    /// Seeds of every variant (model init and sample order).
    pub seeds: Vec<u64>,
    /// Tasks whose AUC and GAUC the table reports.
    #[serde(default = "default_tasks")]
    pub tasks: Vec<Task>,
    /// Also report the tasks' AUC / GAUC on the Cross segment.
    #[serde(default)]
    pub segment: bool,
    /// Further evaluation slices, each reported as `<prefix> <task> AUC / GAUC`:
    /// `"highlight"` (`hl`: exposures while their room was in a highlight, from the
    /// simulator's truth, [`ExperimentData::highlights`]) and `"ecommerce"` (`ecom`:
    /// exposures of rooms whose author type is `ecommerce`).
    #[serde(default)]
    pub slices: Vec<String>,
    /// `[model]` keys every variant shares, over the settings' model.
    #[serde(default)]
    pub model: toml::Table,
    /// The variants, in table order.
    #[serde(rename = "variant")]
    pub variants: Vec<Variant>,
}

fn default_tasks() -> Vec<Task> {
    vec![Task::Click, Task::LongView]
}

impl ExperimentSpec {
    /// Checks the lists are non-empty and the names distinct.
    pub fn validate(&self) -> Result<()> {
        if self.seeds.is_empty() || self.variants.is_empty() || self.tasks.is_empty() {
            return Err(EvalError::Config(
                "seeds, variants and tasks must not be empty".into(),
            ));
        }
        if let Some(bad) = self
            .slices
            .iter()
            .find(|s| !["highlight", "ecommerce"].contains(&s.as_str()))
        {
            return Err(EvalError::Config(format!(
                "slice `{bad}`: the slices are `highlight` and `ecommerce`"
            )));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(v) = self.variants.iter().find(|v| !seen.insert(&v.name)) {
            return Err(EvalError::Config(format!(
                "variant `{}` listed twice",
                v.name
            )));
        }
        Ok(())
    }

    /// The model configuration of `variant` with `seed`: `base`, then the spec's shared
    /// keys, then the variant's, validated.
    pub fn variant_config(
        &self,
        base: &RankerConfig,
        variant: &Variant,
        seed: u64,
    ) -> Result<RankerConfig> {
        let bad = |e: String| EvalError::Config(format!("variant `{}`: {e}", variant.name));
        let mut table = toml::Table::try_from(base).map_err(|e| bad(e.to_string()))?;
        merge(&mut table, self.model.clone());
        merge(&mut table, variant.model.clone());
        let mut config: RankerConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| bad(e.to_string()))?;
        config.seed = seed;
        config.validate().map_err(|e| bad(e.to_string()))?;
        Ok(config)
    }
}

/// Merges `over` into `base`, tables key by key (how variants modify the base model).
pub fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    merge(base, over);
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// The users the Cross module is for (Moment&Cross §2.4, Table 3's low-activity users):
/// among the users of the evaluation slice, those in the bottom quarter by the number of
/// live sessions in their history and in the top half by the number of video plays, both
/// counted over the records visible at the evaluation slice's first exposure. Ranks, not
/// values, so ties (many users with no live history) are broken by user id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Segment {
    /// The segment's users.
    pub users: std::collections::HashSet<u64>,
    /// Users of the evaluation slice.
    pub of: usize,
}

impl Segment {
    /// The segment of the users in `eval`, from `history` at the first exposure of `eval`.
    pub fn of_eval(eval: &[Sample], history: &HistorySource<'_>) -> Result<Self> {
        let Some(at) = eval.iter().map(|s| s.exposure_ts).min() else {
            return Ok(Self::default());
        };
        let mut users: Vec<u64> = eval.iter().map(|s| s.user.0).collect();
        users.sort_unstable();
        users.dedup();
        let mut counts = Vec::with_capacity(users.len());
        for &u in &users {
            let records = history
                .store
                .visible_shared(liverank_types::UserId(u), at)?;
            let live = records.iter().filter(|r| r.domain == Domain::Live).count();
            counts.push((u, live, records.len() - live));
        }
        let n = counts.len();
        let rank = |key: fn(&(u64, usize, usize)) -> usize| -> HashMap<u64, usize> {
            let mut order = counts.clone();
            order.sort_by_key(|c| (key(c), c.0));
            order.iter().enumerate().map(|(i, c)| (c.0, i)).collect()
        };
        let (live_rank, video_rank) = (rank(|c| c.1), rank(|c| c.2));
        let users = counts
            .iter()
            .filter(|c| live_rank[&c.0] < n / 4 && video_rank[&c.0] >= n / 2)
            .map(|c| c.0)
            .collect();
        Ok(Self { users, of: n })
    }
}

/// One cell: a metric of one variant over its seeds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cell {
    /// Per seed, in the spec's seed order (NaN where undefined).
    pub values: Vec<f64>,
}

impl Cell {
    fn finite(&self) -> impl Iterator<Item = f64> + '_ {
        self.values.iter().copied().filter(|v| v.is_finite())
    }

    /// Mean over the seeds with a value.
    pub fn mean(&self) -> f64 {
        let (sum, n) = self
            .finite()
            .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
        if n == 0 { f64::NAN } else { sum / n as f64 }
    }

    /// Half of (max − min) over the seeds with a value.
    pub fn half_range(&self) -> f64 {
        let (lo, hi) = self
            .finite()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if lo > hi { f64::NAN } else { (hi - lo) / 2.0 }
    }
}

/// The result: one row per variant, one column per metric.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExperimentTable {
    /// Column names, e.g. `click AUC`, `click GAUC`, `seg click GAUC`, `train rows/s`.
    pub metrics: Vec<String>,
    /// Variant names, in spec order.
    pub variants: Vec<String>,
    /// `cells[v][m]`.
    pub cells: Vec<Vec<Cell>>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Users in the Cross segment and in the evaluation slice (when reported).
    pub segment_users: Option<(usize, usize)>,
}

impl ExperimentTable {
    /// The cell of a variant and metric by name.
    pub fn cell(&self, variant: &str, metric: &str) -> Option<&Cell> {
        let v = self.variants.iter().position(|n| n == variant)?;
        let m = self.metrics.iter().position(|n| n == metric)?;
        self.cells.get(v)?.get(m)
    }

    /// A Markdown table: `mean ± half-range` per cell (4 decimals; rows/s and recall
    /// as they are).
    pub fn to_markdown(&self) -> String {
        let mut out = format!("| variant (seeds {:?}) |", self.seeds);
        for m in &self.metrics {
            out.push_str(&format!(" {m} |"));
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(self.metrics.len()));
        out.push('\n');
        for (name, row) in self.variants.iter().zip(&self.cells) {
            out.push_str(&format!("| {name} |"));
            for (m, cell) in self.metrics.iter().zip(row) {
                let (mean, half) = (cell.mean(), cell.half_range());
                if mean.is_nan() {
                    out.push_str(" – |");
                } else if m.ends_with("rows/s") {
                    out.push_str(&format!(" {mean:.0} ± {half:.0} |"));
                } else {
                    out.push_str(&format!(" {mean:.4} ± {half:.4} |"));
                }
            }
            out.push('\n');
        }
        if let Some((seg, of)) = self.segment_users {
            out.push_str(&format!(
                "\nCross segment (`seg`): {seg} of {of} evaluation users (bottom quarter by live history, top half by video history).\n"
            ));
        }
        out
    }

    /// CSV, one line per (variant, metric): `variant,metric,mean,half_range,n,values`
    /// with the per-seed values separated by `;`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("variant,metric,mean,half_range,n,values\n");
        for (name, row) in self.variants.iter().zip(&self.cells) {
            for (m, cell) in self.metrics.iter().zip(row) {
                let values: Vec<String> = cell.values.iter().map(|v| format!("{v}")).collect();
                out.push_str(&format!(
                    "{},{},{},{},{},{}\n",
                    csv_field(name),
                    csv_field(m),
                    cell.mean(),
                    cell.half_range(),
                    cell.finite().count(),
                    values.join(";")
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_summarise_their_finite_values() {
        let c = Cell {
            values: vec![0.70, 0.74, f64::NAN, 0.71],
        };
        assert!((c.mean() - 0.7166666).abs() < 1e-6);
        assert!((c.half_range() - 0.02).abs() < 1e-12);
        let none = Cell {
            values: vec![f64::NAN],
        };
        assert!(none.mean().is_nan() && none.half_range().is_nan());
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("plain"), "plain");
    }

    #[test]
    fn slices_pick_exposures_inside_highlights_and_ecommerce_rooms() {
        use liverank_types::{
            EventTime, ExposureFeatures, LabelMask, LiveId, Policy, RequestId, SampleKind, UserId,
        };
        let sample = |live: u64, at: i64, kind: &str| Sample {
            sample_id: 0,
            policy: Policy::Complete,
            kind: SampleKind::Close,
            seq: 0,
            ts: EventTime(at),
            request_id: RequestId(0),
            live: LiveId(live),
            user: UserId(1),
            author: None,
            exposure_ts: EventTime(at),
            category: None,
            labels: LabelMask::default(),
            features: std::sync::Arc::new(ExposureFeatures {
                author_type: Some(kind.into()),
                ..ExposureFeatures::default()
            }),
        };
        let eval = [
            sample(1, 100, "ecommerce"),
            sample(1, 200, "talent"),
            sample(2, 150, "talent"),
        ];
        // Room 1's highlight is [100, 200): the first exposure is in it, the second not.
        let highlights = std::collections::HashMap::from([(1u64, vec![(100i64, 200i64)])]);
        let data = ExperimentData {
            train: &[],
            eval: &eval,
            history: None,
            highlights: Some(&highlights),
        };
        let ids = |v: Vec<Sample>| -> Vec<(u64, i64)> {
            v.iter().map(|s| (s.live.0, s.exposure_ts.0)).collect()
        };
        let (prefix, hl) = slice_of("highlight", &eval, &data);
        assert_eq!((prefix, ids(hl)), ("hl", vec![(1, 100)]));
        let (prefix, ecom) = slice_of("ecommerce", &eval, &data);
        assert_eq!((prefix, ids(ecom)), ("ecom", vec![(1, 100)]));
        assert_eq!(csv_field("plain"), "plain");
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The data every variant trains and evaluates on.
#[derive(Clone, Copy, Debug)]
pub struct ExperimentData<'a> {
    /// Training samples (one policy, before the split).
    pub train: &'a [Sample],
    /// Held-out `complete` samples.
    pub eval: &'a [Sample],
    /// The history the Cross sequences are read from (`None`: every sequence is empty).
    pub history: Option<HistorySource<'a>>,
    /// Per room, its highlights as half-open `[start, end)` ms (the simulator's truth; the
    /// `highlight` slice). `None`: that slice is empty.
    pub highlights: Option<&'a std::collections::HashMap<u64, Vec<(i64, i64)>>>,
}

/// The evaluation samples of a slice (see [`ExperimentSpec::slices`]) and its prefix.
pub fn slice_of(
    name: &str,
    eval: &[Sample],
    data: &ExperimentData<'_>,
) -> (&'static str, Vec<Sample>) {
    match name {
        "highlight" => (
            "hl",
            eval.iter()
                .filter(|s| {
                    data.highlights
                        .and_then(|h| h.get(&s.live.0))
                        .is_some_and(|spans| {
                            spans
                                .iter()
                                .any(|&(a, b)| a <= s.exposure_ts.0 && s.exposure_ts.0 < b)
                        })
                })
                .cloned()
                .collect(),
        ),
        _ => (
            "ecom",
            eval.iter()
                .filter(|s| s.features.author_type.as_deref() == Some("ecommerce"))
                .cloned()
                .collect(),
        ),
    }
}

/// Progress of an experiment: `(variant, seed)` before each run, and its evaluation.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A run starts.
    Start {
        /// Variant name.
        variant: &'a str,
        /// Seed.
        seed: u64,
    },
    /// A run ended.
    Done {
        /// Variant name.
        variant: &'a str,
        /// Seed.
        seed: u64,
        /// Its evaluation.
        evaluation: &'a Evaluation,
        /// Training rows per second.
        rows_per_s: f64,
    },
}

/// Trains every variant × seed on `data` with `settings` and `base` (the model the
/// variants modify) and returns the table: per task in `spec.tasks` its AUC and GAUC (and
/// on the segment), the training rows/s, and the soft searches' recall of the stale table
/// against the exact one where the variant has soft searches.
pub fn run_experiment(
    spec: &ExperimentSpec,
    base: &RankerConfig,
    settings: &TrainSettings,
    data: ExperimentData<'_>,
    mut progress: impl FnMut(Event<'_>),
) -> Result<ExperimentTable> {
    spec.validate()?;
    let segment = match (&data.history, spec.segment) {
        (Some(h), true) => Some(Segment::of_eval(data.eval, h)?),
        _ => None,
    };
    let segment_eval: Vec<Sample> = segment.as_ref().map_or_else(Vec::new, |seg| {
        data.eval
            .iter()
            .filter(|s| seg.users.contains(&s.user.0))
            .cloned()
            .collect()
    });
    let mut metrics = Vec::new();
    for t in &spec.tasks {
        metrics.push(format!("{} AUC", t.as_str()));
        metrics.push(format!("{} GAUC", t.as_str()));
    }
    if segment.is_some() {
        for t in &spec.tasks {
            metrics.push(format!("seg {} AUC", t.as_str()));
            metrics.push(format!("seg {} GAUC", t.as_str()));
        }
    }
    let slices: Vec<(&str, Vec<Sample>)> = spec
        .slices
        .iter()
        .map(|name| slice_of(name, data.eval, &data))
        .collect();
    for (prefix, _) in &slices {
        for t in &spec.tasks {
            metrics.push(format!("{prefix} {} AUC", t.as_str()));
            metrics.push(format!("{prefix} {} GAUC", t.as_str()));
        }
    }
    metrics.push("soft recall".into());
    metrics.push("train rows/s".into());
    metrics.push("forecast cache hit rate".into());
    let history = data.history.as_ref();
    let mut cells = Vec::with_capacity(spec.variants.len());
    for variant in &spec.variants {
        let mut row: Vec<Cell> = (0..metrics.len())
            .map(|_| Cell { values: Vec::new() })
            .collect();
        for &seed in &spec.seeds {
            let config = spec.variant_config(base, variant, seed)?;
            let fail = |source| EvalError::Run {
                variant: variant.name.clone(),
                seed,
                source,
            };
            progress(Event::Start {
                variant: &variant.name,
                seed,
            });
            let trainer = Trainer::new(config.clone(), sample_shape(&config))
                .map_err(|e| fail(liverank_train::TrainError::Model(e)))?;
            let run = train_offline(trainer, settings, data.train, history, |_, _| Ok(()))
                .map_err(fail)?;
            let scorer = run
                .trainer
                .scorer()
                .map_err(|e| fail(liverank_train::TrainError::Model(e)))?;
            let evaluation = evaluate_on(&scorer, data.eval, history).map_err(fail)?;
            let mut values = task_values(&evaluation, &spec.tasks);
            if segment.is_some() {
                let seg = evaluate_on(&scorer, &segment_eval, history).map_err(fail)?;
                values.extend(task_values(&seg, &spec.tasks));
            }
            for (_, slice) in &slices {
                let e = evaluate_on(&scorer, slice, history).map_err(fail)?;
                values.extend(task_values(&e, &spec.tasks));
            }
            let recall = if run.soft_recall.is_empty() {
                f64::NAN
            } else {
                run.soft_recall.iter().sum::<f64>() / run.soft_recall.len() as f64
            };
            values.push(recall);
            values.push(run.rows_per_s);
            // Over the run's training and evaluation rows (NaN without a branch).
            values.push(
                config
                    .foresight
                    .models()
                    .ok()
                    .flatten()
                    .map_or(f64::NAN, |f| f.stats().hit_rate()),
            );
            for (cell, v) in row.iter_mut().zip(values) {
                cell.values.push(v);
            }
            progress(Event::Done {
                variant: &variant.name,
                seed,
                evaluation: &evaluation,
                rows_per_s: run.rows_per_s,
            });
        }
        cells.push(row);
    }
    Ok(ExperimentTable {
        metrics,
        variants: spec.variants.iter().map(|v| v.name.clone()).collect(),
        cells,
        seeds: spec.seeds.clone(),
        segment_users: segment.map(|s| (s.users.len(), s.of)),
    })
}

/// AUC and GAUC of each task, NaN where undefined or not a model task.
fn task_values(evaluation: &Evaluation, tasks: &[Task]) -> Vec<f64> {
    tasks
        .iter()
        .flat_map(|t| {
            let m = evaluation.tasks.iter().find(|(task, _)| task == t);
            [
                m.and_then(|(_, m)| m.auc).unwrap_or(f64::NAN),
                m.and_then(|(_, m)| m.gauc).unwrap_or(f64::NAN),
            ]
        })
        .collect()
}

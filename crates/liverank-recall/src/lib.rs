//! Offline evaluation of recall models with the standard sequential protocol (issue 20,
//! item 10), on any (user, item, timestamp) interaction log:
//!
//! * [`import`]: a CSV or Parquet log with a column mapping (and an optional event-type
//!   filter) into an [`InteractionLog`]; bad rows are counted with their position and
//!   reason, the first few kept as examples.
//! * [`log`]: the compact in-memory log, users and items re-indexed densely, each user's
//!   interactions sorted by time.
//! * [`split`]: leave-one-out by time: each user's last interaction is the test case, the
//!   one before it the validation case, the rest training.
//! * [`scorer`]: the [`Scorer`] trait a recall model implements (score every item for a
//!   user's history), two baselines, global popularity and item-kNN co-occurrence, and
//!   [`VectorScorer`], the bridge from an embedding model (one or several interest
//!   vectors per user) to the protocol.
//! * [`mod@evaluate`]: full ranking over all items (no sampled negatives), the user's history
//!   excluded except the target, HR@K and NDCG@K with pessimistic ties.

#![warn(missing_docs)]

pub mod evaluate;
pub mod import;
pub mod log;
pub mod scorer;
pub mod split;

pub use evaluate::{CutoffMetrics, EvalConfig, EvalReport, evaluate, rank_of_target};
pub use import::{
    BadRow, BadRowReason, ColumnMapping, EventFilter, ImportConfig, ImportReport, LogFormat,
    import_csv, import_log, import_parquet,
};
pub use log::{InteractionLog, LogBuilder};
pub use scorer::{ItemKnn, ItemKnnConfig, Popularity, Scorer, VectorScorer};
pub use split::{Case, Split, Stage};

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The settings of `liverank recall eval`: how to import the log, what to evaluate and the
/// item-kNN baseline's parameters (a `[recall_eval]` section with three sub-tables).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecallEvalConfig {
    /// The log importer.
    pub import: ImportConfig,
    /// Cutoffs and stage.
    pub eval: EvalConfig,
    /// The item-kNN baseline.
    pub item_knn: ItemKnnConfig,
}

impl RecallEvalConfig {
    /// Validates every part.
    pub fn validate(&self) -> Result<()> {
        self.import.validate()?;
        self.eval.validate()?;
        self.item_knn.validate()
    }
}

/// Fits both baselines on the split's training prefixes and evaluates them: popularity
/// first, then item-kNN. The yardsticks a trained recall model is compared against.
pub fn evaluate_baselines(split: &Split<'_>, config: &RecallEvalConfig) -> Result<Vec<EvalReport>> {
    config.validate()?;
    let popularity = Popularity::fit(split);
    let knn = ItemKnn::fit(split, config.item_knn.clone())?;
    Ok(vec![
        evaluate(split, &popularity, &config.eval)?,
        evaluate(split, &knn, &config.eval)?,
    ])
}

/// Everything that can go wrong in this crate. Bad *rows* are not errors (they are counted
/// in an [`ImportReport`]); these are the failures that stop an import or an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// The CSV reader failed in a way that is not one bad row (e.g. an I/O error).
    #[error("cannot read CSV {path}: {source}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The reader's error.
        #[source]
        source: csv::Error,
    },
    /// The Parquet file is not readable (corrupt, truncated, unsupported encoding).
    #[error("cannot read Parquet {path}: {reason}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        reason: String,
    },
    /// A mapped column is not in the file.
    #[error("{path}: no column `{column}` (the file has: {available})")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The mapped name.
        column: String,
        /// The file's columns, comma-separated.
        available: String,
    },
    /// A Parquet column whose type cannot hold what it is mapped to.
    #[error("{path}: column `{column}` has type {data_type}, which cannot be read as {role}")]
    UnsupportedColumnType {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// Its Arrow type.
        data_type: String,
        /// What it was mapped to (user, item, timestamp, event).
        role: &'static str,
    },
    /// The file's extension does not say CSV or Parquet and no format was configured.
    #[error("cannot tell the format of {path} (use .csv, .tsv or .parquet, or set `format`)")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// A configuration value out of range.
    #[error("invalid recall configuration: {0}")]
    InvalidConfig(String),
    /// A scorer's output is unusable (wrong length, NaN) or the scorer failed.
    #[error("scorer `{scorer}`: {reason}")]
    Scorer {
        /// The scorer's name.
        scorer: String,
        /// What went wrong.
        reason: String,
    },
}

/// This crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

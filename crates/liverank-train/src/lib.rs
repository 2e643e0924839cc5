//! Training and evaluation of the liverank ranker.
//!
//! [`offline::train_offline`] runs epochs over a sample file with a time-based split;
//! [`offline::evaluate_on`] scores the held-out `complete` samples; [`metrics`] has AUC,
//! GAUC (user-weighted), log loss and calibration, each checked against brute force.
//! [`online::StreamPipeline`] is the online loop: events in, test-then-train, published
//! model versions out, restart-exact.

pub mod error;
pub mod forecast;
pub mod metrics;
pub mod offline;
pub mod online;

pub use error::{Result, TrainError};
pub use liverank_model::soft::TableVectors;
pub use offline::{
    Evaluation, HistorySource, OfflineRun, TrainSettings, build_batch, evaluate_on, load_samples,
    soft_search_recall, split_samples, train_offline,
};
pub use online::{
    EventFilter, Highlight, StreamParts, StreamPaths, StreamPipeline, StreamSettings, StreamSummary,
};

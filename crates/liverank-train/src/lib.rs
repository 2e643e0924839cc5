//! Training and evaluation of the liverank ranker.
//!
//! [`offline::train_offline`] runs epochs over a sample file with a time-based split;
//! [`offline::evaluate_on`] scores the held-out `complete` samples; [`metrics`] has AUC,
//! GAUC (user-weighted), log loss and calibration, each checked against brute force.
//! Online training (test-then-train over the sample stream) comes with its own issue.

pub mod error;
pub mod metrics;
pub mod offline;
pub mod soft;

pub use error::{Result, TrainError};
pub use offline::{
    Evaluation, HistorySource, OfflineRun, TrainSettings, build_batch, evaluate_on, load_samples,
    soft_search_recall, split_samples, train_offline,
};
pub use soft::TableVectors;

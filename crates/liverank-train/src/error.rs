//! Errors of the training crate.

/// What went wrong while training or evaluating.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Bad or missing input (samples, settings).
    #[error("{0}")]
    Input(String),
    /// The model refused.
    #[error(transparent)]
    Model(#[from] liverank_model::ModelError),
    /// The history store failed to answer.
    #[error("history store: {0}")]
    History(#[from] liverank_history::HistoryError),
    /// The caller stopped the run (callback error).
    #[error("stopped: {0}")]
    Stopped(String),
}

/// Result of the training crate.
pub type Result<T> = std::result::Result<T, TrainError>;

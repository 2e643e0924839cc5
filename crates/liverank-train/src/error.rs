//! Errors of the training crate.

/// What went wrong while training or evaluating.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Bad or missing input (samples, settings) found by this crate's own checks.
    #[error("{0}")]
    Input(String),
    /// A sample file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A sample file failed to decode, or its I/O failed (the ingest error's fault says
    /// which).
    #[error(transparent)]
    Samples(#[from] liverank_ingest::IngestError),
    /// A line of a JSON Lines sample file is not a sample.
    #[error("{}:{line}: {source}", path.display())]
    SampleLine {
        /// The file.
        path: std::path::PathBuf,
        /// 1-based line.
        line: usize,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// A setting is out of range.
    #[error("invalid training settings: {0}")]
    Config(String),
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

impl TrainError {
    /// Whether the input is at fault (bad samples, settings, a missing file) rather than
    /// the environment (a failing disk) or the model: decides a command's exit code.
    pub fn is_bad_input(&self) -> bool {
        match self {
            TrainError::Input(_) | TrainError::Config(_) | TrainError::SampleLine { .. } => true,
            TrainError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData
            ),
            TrainError::Samples(e) => e.fault() == liverank_ingest::Fault::BadInput,
            TrainError::History(e) => e.class() == liverank_history::ErrorClass::BadInput,
            TrainError::Model(_) | TrainError::Stopped(_) => false,
        }
    }
}

/// Result of the training crate.
pub type Result<T> = std::result::Result<T, TrainError>;

//! Errors of the model crate.

/// What went wrong in the model layer.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The configuration cannot build a model.
    #[error("invalid model configuration: {0}")]
    Config(String),
    /// A batch does not fit the model it is fed to.
    #[error("batch does not fit the model: {0}")]
    Shape(String),
    /// A checkpoint could not be written or read.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A checkpoint file could not be written or read.
    #[error("checkpoint {}: {source}", path.display())]
    CheckpointIo {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A section of a checkpoint does not decode (the configuration's JSON, the embedding
    /// store's snapshot).
    #[error("checkpoint {path}: {section}: {source}")]
    CheckpointSection {
        /// The file (`<memory>` for bytes).
        path: String,
        /// Which section.
        section: &'static str,
        /// The decoder's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The embedding store refused an operation.
    #[error("embedding store: {0}")]
    Embedding(#[from] crate::embedding::EmbeddingError),
}

/// Result of the model crate.
pub type Result<T> = std::result::Result<T, ModelError>;

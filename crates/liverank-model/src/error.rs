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
    /// The embedding store refused an operation.
    #[error("embedding store: {0}")]
    Embedding(String),
}

/// Result of the model crate.
pub type Result<T> = std::result::Result<T, ModelError>;

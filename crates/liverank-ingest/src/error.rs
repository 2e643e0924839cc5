//! Errors of the I/O edge, classified where they are created: whose fault, and whether
//! trying again can help. Callers use the class to skip-and-count, retry, or stop.

use std::path::PathBuf;

/// Whose fault an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The input is wrong: report it, skip it or stop; retrying cannot help.
    BadInput,
    /// The environment failed (disk, permissions): a retry may help.
    External,
    /// Our own invariant broke.
    Bug,
}

/// A fatal error of a reader or writer (record-level problems are [`crate::RecordError`]s).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Opening, reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not a readable Parquet file (truncated, corrupt).
    #[error("{path}: not a readable Parquet file: {reason}")]
    Corrupt {
        /// File.
        path: PathBuf,
        /// What the Parquet reader said.
        reason: String,
    },
    /// The file is readable but does not have the expected schema or format version.
    #[error("{path}: {reason}")]
    Schema {
        /// File.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// The file extension names no supported format.
    #[error("{path}: unsupported file extension (expected .jsonl, .ndjson, .json or .parquet)")]
    UnknownFormat {
        /// File.
        path: PathBuf,
    },
    /// The operation is not possible in this format.
    #[error("{path}: {reason}")]
    Unsupported {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Encoding a record failed (a bug: our own types always encode).
    #[error("{path}: encoding failed: {reason}")]
    Encode {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl IngestError {
    /// Whose fault this is.
    pub fn fault(&self) -> Fault {
        match self {
            IngestError::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData => Fault::BadInput,
                _ => Fault::External,
            },
            IngestError::Corrupt { .. }
            | IngestError::Schema { .. }
            | IngestError::UnknownFormat { .. }
            | IngestError::Unsupported { .. } => Fault::BadInput,
            IngestError::Encode { .. } => Fault::Bug,
        }
    }

    /// Whether retrying the same operation may succeed.
    pub fn retryable(&self) -> bool {
        self.fault() == Fault::External
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IngestError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, IngestError>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;

    #[test]
    fn fault_classifies_input_environment_and_bugs() {
        let io = |kind| IngestError::io("f", std::io::Error::from(kind));
        assert_eq!(io(ErrorKind::NotFound).fault(), Fault::BadInput);
        assert!(!io(ErrorKind::NotFound).retryable());
        assert_eq!(io(ErrorKind::PermissionDenied).fault(), Fault::External);
        assert!(io(ErrorKind::Interrupted).retryable());
        let corrupt = IngestError::Corrupt {
            path: "f".into(),
            reason: "eof".into(),
        };
        assert_eq!(corrupt.fault(), Fault::BadInput);
        let encode = IngestError::Encode {
            path: "f".into(),
            reason: "?".into(),
        };
        assert_eq!(encode.fault(), Fault::Bug);
        assert!(!encode.retryable());
    }
}

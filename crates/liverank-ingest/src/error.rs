//! Errors of the I/O edge, classified where they are created: whose fault, and whether
//! trying again can help. Callers use the class to skip-and-count, retry, or stop.

use std::path::PathBuf;

/// The cause of an error raised by a library we call (Parquet, Arrow, serde): kept as the
/// error's `source`, so the chain (and an I/O failure deep inside it) is not lost.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A defect of a file's content that we detect ourselves (no library error behind it).
#[derive(Debug, thiserror::Error)]
pub enum ContentDefect {
    /// The footer's content checksum differs from the rows read.
    #[error("content checksum mismatch: footer says `{expected}`, data gives `{actual}`")]
    Checksum {
        /// `rows checksum` from the footer.
        expected: String,
        /// `rows checksum` of the data read.
        actual: String,
    },
    /// The Parquet decoder panicked (a corrupt page it did not validate).
    #[error("the Parquet decoder failed on a corrupt page")]
    DecoderPanic,
}

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
    #[error("{path}: not a readable Parquet file: {source}")]
    Corrupt {
        /// File.
        path: PathBuf,
        /// What the Parquet reader (or our content check, [`ContentDefect`]) said.
        source: BoxError,
    },
    /// The file is readable but does not have the expected schema or format version.
    #[error("{path}: {reason}")]
    Schema {
        /// File.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
        /// The decoder's error, when one said so.
        #[source]
        source: Option<BoxError>,
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
    /// Encoding or writing a record failed: a bug (our own types always encode), unless
    /// the writer's cause is an I/O failure (a full disk under the Parquet writer), which
    /// [`IngestError::fault`] finds in the chain.
    #[error("{path}: encoding failed: {source}")]
    Encode {
        /// File.
        path: PathBuf,
        /// The encoder's or writer's error.
        source: BoxError,
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
            IngestError::Encode { source, .. } => match io_cause(source.as_ref()) {
                Some(_) => Fault::External,
                None => Fault::Bug,
            },
        }
    }

    /// A [`IngestError::Corrupt`] of `path` from a library error or a [`ContentDefect`].
    pub(crate) fn corrupt(path: impl Into<PathBuf>, source: impl Into<BoxError>) -> Self {
        IngestError::Corrupt {
            path: path.into(),
            source: source.into(),
        }
    }

    /// An [`IngestError::Encode`] of `path`.
    pub(crate) fn encode(path: impl Into<PathBuf>, source: impl Into<BoxError>) -> Self {
        IngestError::Encode {
            path: path.into(),
            source: source.into(),
        }
    }

    /// A [`IngestError::Schema`] of `path` that we found ourselves.
    pub(crate) fn schema(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        IngestError::Schema {
            path: path.into(),
            reason: reason.into(),
            source: None,
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

/// The first I/O error in `error`'s source chain (itself included).
fn io_cause<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        next = e.source();
    }
    None
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
        let corrupt = IngestError::corrupt("f", ContentDefect::DecoderPanic);
        assert_eq!(corrupt.fault(), Fault::BadInput);
        let encode = IngestError::encode("f", "a value our schema cannot hold");
        assert_eq!(encode.fault(), Fault::Bug);
        assert!(!encode.retryable());
    }

    #[test]
    fn a_disk_failure_under_an_encoder_is_external_and_keeps_its_chain() {
        // What the Parquet writer returns when the file under it fails: its own error
        // wrapping the io::Error.
        let disk = std::io::Error::other("No space left on device");
        let parquet = parquet::errors::ParquetError::External(Box::new(disk));
        let err = IngestError::encode("out.parquet", parquet);
        assert_eq!(err.fault(), Fault::External);
        assert!(err.retryable());
        let chain: Vec<String> =
            std::iter::successors(Some(&err as &(dyn std::error::Error + 'static)), |e| {
                e.source()
            })
            .map(|e| e.to_string())
            .collect();
        assert!(
            chain.iter().any(|m| m.contains("No space left on device")),
            "{chain:?}"
        );
        let text = err.to_string();
        assert!(text.starts_with("out.parquet: encoding failed:"), "{text}");
    }

    #[test]
    fn a_corrupt_file_keeps_the_parquet_error_as_source() {
        let inner = parquet::errors::ParquetError::EOF("unexpected end of file".into());
        let err = IngestError::corrupt("e.parquet", inner);
        let source = std::error::Error::source(&err).expect("has a source");
        assert!(
            source
                .downcast_ref::<parquet::errors::ParquetError>()
                .is_some()
        );
        assert_eq!(err.fault(), Fault::BadInput);
    }
}

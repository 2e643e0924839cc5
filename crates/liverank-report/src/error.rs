//! The report crate's error type.

use std::path::{Path, PathBuf};

/// What can go wrong building or writing a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A figure was asked for with nothing to draw (the caller says so in text instead).
    #[error("figure `{0}` has no data to draw")]
    EmptyFigure(String),
    /// plotters failed to draw (a bug of ours or of the backend).
    #[error("drawing figure `{name}`: {reason}")]
    Draw {
        /// The figure.
        name: String,
        /// plotters' message.
        reason: String,
    },
    /// PNG encoding failed.
    #[error("encoding figure `{name}` as PNG")]
    Encode {
        /// The figure.
        name: String,
        /// The encoder's error.
        #[source]
        source: png::EncodingError,
    },
    /// A PNG given to a figure that cannot be decoded.
    #[error("figure `{name}`: not a readable PNG")]
    Decode {
        /// The figure.
        name: String,
        /// The decoder's error.
        #[source]
        source: png::DecodingError,
    },
    /// A table whose rows do not match its header.
    #[error("table in section `{section}`: {reason}")]
    Table {
        /// The section holding the table.
        section: String,
        /// What is wrong.
        reason: String,
    },
    /// A figure name that is empty, not a plain file stem, or used twice.
    #[error("figure name `{0}` is empty, not [A-Za-z0-9_-]+, or used twice")]
    FigureName(String),
    /// Writing a file failed.
    #[error("writing {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl ReportError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ReportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The report crate's result.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;

//! Record-level errors: one bad line or row, reported with its position and skipped.

use crate::error::IngestError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a record sits in its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    /// 1-based line of a JSON Lines file.
    Line(u64),
    /// 0-based row of a Parquet file.
    Row(u64),
}

/// Why a record was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordErrorKind {
    /// Cannot be parsed: bad JSON, bad UTF-8, an unknown event type, a wrong value type.
    Malformed,
    /// Parsed, but fails validation: a missing or foreign field, a negative duration.
    Invalid,
}

/// One rejected record.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordError {
    /// File (or stream) name.
    pub source: String,
    /// Line or row.
    pub position: Position,
    /// Class.
    pub kind: RecordErrorKind,
    /// Human-readable reason.
    pub reason: String,
    /// The raw line, when the source is text.
    pub raw: Option<String>,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Position::Line(l) => write!(f, "{}:{}: {}", self.source, l, self.reason),
            Position::Row(r) => write!(f, "{} row {}: {}", self.source, r, self.reason),
        }
    }
}

impl std::error::Error for RecordError {}

/// What a reader yields instead of an event.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// One bad record: count it, dead-letter it, go on.
    #[error(transparent)]
    Record(RecordError),
    /// The source itself failed: stop.
    #[error(transparent)]
    Fatal(#[from] IngestError),
}

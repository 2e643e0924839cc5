//! Dead letters: every record the pipeline could not accept, with where it came from and
//! why, appended to a JSON Lines file so nothing disappears silently.

use crate::error::{IngestError, Result};
use crate::record::{Position, RecordError, RecordErrorKind};
use liverank_types::Event;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Why a record became a dead letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterKind {
    /// Could not be parsed.
    Malformed,
    /// Parsed but failed validation.
    Invalid,
    /// Arrived later than the allowed lateness.
    Late,
    /// An in-room event with no open session.
    Orphan,
    /// A repeated `event_id` (kept only when a caller wants duplicates on record).
    Duplicate,
    /// Too far ahead of the stream's newest event (`max_future_skew_ms`).
    Future,
}

/// One dead-letter record (one JSON line).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Source file or stream.
    pub source: String,
    /// 1-based line, for text sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// 0-based row, for Parquet sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    /// Class.
    pub kind: DeadLetterKind,
    /// Human-readable reason.
    pub reason: String,
    /// The raw record (the line, or the event as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

impl DeadLetter {
    /// A dead letter for an event that parsed but was rejected downstream (`late`,
    /// `orphan`, `duplicate`); `raw` is the event's JSON line, so it can be replayed.
    pub fn for_event(
        source: impl Into<String>,
        kind: DeadLetterKind,
        reason: impl Into<String>,
        event: &Event,
    ) -> Self {
        DeadLetter {
            source: source.into(),
            line: None,
            row: None,
            kind,
            reason: reason.into(),
            raw: serde_json::to_string(event).ok(),
        }
    }
}

impl From<&RecordError> for DeadLetter {
    fn from(e: &RecordError) -> Self {
        let (line, row) = match e.position {
            Position::Line(l) => (Some(l), None),
            Position::Row(r) => (None, Some(r)),
        };
        DeadLetter {
            source: e.source.clone(),
            line,
            row,
            kind: match e.kind {
                RecordErrorKind::Malformed => DeadLetterKind::Malformed,
                RecordErrorKind::Invalid => DeadLetterKind::Invalid,
            },
            reason: e.reason.clone(),
            raw: e.raw.clone(),
        }
    }
}

/// Appends dead letters to a JSON Lines file and counts them per kind.
#[derive(Debug)]
pub struct DeadLetterWriter {
    out: BufWriter<File>,
    path: PathBuf,
    counts: BTreeMap<DeadLetterKind, u64>,
}

impl DeadLetterWriter {
    /// Creates (truncates) the file.
    pub fn create(path: &Path) -> Result<Self> {
        Self::open_with(path, false)
    }

    /// Opens the file for appending (a restarted pipeline keeps earlier dead letters).
    pub fn open_append(path: &Path) -> Result<Self> {
        Self::open_with(path, true)
    }

    fn open_with(path: &Path, append: bool) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| IngestError::io(parent, e))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .map_err(|e| IngestError::io(path, e))?;
        Ok(Self {
            out: BufWriter::new(file),
            path: path.to_path_buf(),
            counts: BTreeMap::new(),
        })
    }

    /// Appends one dead letter.
    pub fn write(&mut self, letter: &DeadLetter) -> Result<()> {
        *self.counts.entry(letter.kind).or_default() += 1;
        let mut line =
            serde_json::to_vec(letter).map_err(|e| IngestError::encode(self.path.clone(), e))?;
        line.push(b'\n');
        self.out
            .write_all(&line)
            .map_err(|e| IngestError::io(&self.path, e))
    }

    /// Appends a rejected record.
    pub fn record(&mut self, error: &RecordError) -> Result<()> {
        self.write(&DeadLetter::from(error))
    }

    /// Dead letters written so far, per kind.
    pub fn counts(&self) -> &BTreeMap<DeadLetterKind, u64> {
        &self.counts
    }

    /// Flushes to the OS and syncs to disk.
    pub fn finish(mut self) -> Result<BTreeMap<DeadLetterKind, u64>> {
        self.out
            .flush()
            .map_err(|e| IngestError::io(&self.path, e))?;
        self.out
            .get_ref()
            .sync_all()
            .map_err(|e| IngestError::io(&self.path, e))?;
        Ok(self.counts)
    }
}

//! JSON Lines: one event (or table row) per line, read and written as a stream.

use crate::error::{IngestError, Result};
use crate::record::{Position, ReadError, RecordError, RecordErrorKind};
use liverank_types::{Event, EventRecord};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// Streams events from JSON Lines, one line at a time into a reused buffer.
#[derive(Debug)]
pub struct JsonlEventReader<R> {
    input: R,
    source: String,
    line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> JsonlEventReader<R> {
    /// A reader of `input`; `source` names it in errors (usually the file path).
    pub fn new(input: R, source: impl Into<String>) -> Self {
        Self {
            input,
            source: source.into(),
            line: 0,
            buf: Vec::with_capacity(256),
        }
    }

    /// The 1-based number of the last line read.
    pub fn line(&self) -> u64 {
        self.line
    }
}

/// Parses one JSON line into an event, classifying failures.
pub fn parse_event_line(text: &str) -> std::result::Result<Event, (RecordErrorKind, String)> {
    // Two steps so a validation failure is told apart from a syntax error.
    let record: EventRecord =
        serde_json::from_str(text).map_err(|e| (RecordErrorKind::Malformed, e.to_string()))?;
    Event::try_from(record).map_err(|e| (RecordErrorKind::Invalid, e.to_string()))
}

impl<R: BufRead> Iterator for JsonlEventReader<R> {
    type Item = std::result::Result<Event, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            match self.input.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    let path = PathBuf::from(&self.source);
                    return Some(Err(ReadError::Fatal(IngestError::io(path, e))));
                }
            }
            self.line += 1;
            while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
                self.buf.pop();
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let error = |kind, reason: String, raw: String| {
                ReadError::Record(RecordError {
                    source: self.source.clone(),
                    position: Position::Line(self.line),
                    kind,
                    reason,
                    raw: Some(raw),
                })
            };
            let text = match std::str::from_utf8(&self.buf) {
                Ok(t) => t,
                Err(e) => {
                    let raw = String::from_utf8_lossy(&self.buf).into_owned();
                    let reason = format!("invalid UTF-8: {e}");
                    return Some(Err(error(RecordErrorKind::Malformed, reason, raw)));
                }
            };
            return Some(
                parse_event_line(text)
                    .map_err(|(kind, reason)| error(kind, reason, text.to_string())),
            );
        }
    }
}

/// Writes events as JSON Lines.
#[derive(Debug)]
pub struct JsonlEventWriter<W: Write> {
    output: W,
    path: PathBuf,
    buf: Vec<u8>,
}

impl<W: Write> JsonlEventWriter<W> {
    /// A writer into `output`; `path` names it in errors.
    pub fn new(output: W, path: impl Into<PathBuf>) -> Self {
        Self {
            output,
            path: path.into(),
            buf: Vec::with_capacity(256),
        }
    }

    /// Appends one event.
    pub fn write(&mut self, event: &Event) -> Result<()> {
        self.write_record(&EventRecord::from(event))
    }

    /// Appends one flat record as is (it may be invalid: fault injection uses this).
    pub fn write_record(&mut self, record: &EventRecord) -> Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, record).map_err(|e| IngestError::Encode {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        self.buf.push(b'\n');
        self.output
            .write_all(&self.buf)
            .map_err(|e| IngestError::io(&self.path, e))
    }

    /// Appends a raw line (fault injection: broken JSON). A newline is added.
    pub fn write_raw_line(&mut self, line: &str) -> Result<()> {
        let mut out = || {
            self.output.write_all(line.as_bytes())?;
            self.output.write_all(b"\n")
        };
        out().map_err(|e| IngestError::io(&self.path, e))
    }

    /// The file this writer writes.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        self.output
            .flush()
            .map_err(|e| IngestError::io(&self.path, e))?;
        Ok(self.output)
    }
}

/// Writes serde rows as JSON Lines (entity tables, ground truth).
pub fn write_jsonl_rows<T: Serialize, W: Write>(
    mut output: W,
    path: &std::path::Path,
    rows: &[T],
) -> Result<()> {
    for row in rows {
        serde_json::to_writer(&mut output, row).map_err(|e| IngestError::Encode {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        output
            .write_all(b"\n")
            .map_err(|e| IngestError::io(path, e))?;
    }
    output.flush().map_err(|e| IngestError::io(path, e))
}

/// Reads serde rows from JSON Lines; the first bad line is a schema error naming it.
pub fn read_jsonl_rows<T: DeserializeOwned, R: BufRead>(
    input: R,
    path: &std::path::Path,
) -> Result<Vec<T>> {
    let mut rows = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| IngestError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let row = serde_json::from_str(&line).map_err(|e| IngestError::Schema {
            path: path.to_path_buf(),
            reason: format!("line {}: {e}", i + 1),
        })?;
        rows.push(row);
    }
    Ok(rows)
}

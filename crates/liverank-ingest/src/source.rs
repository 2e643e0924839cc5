//! Format detection and one reader/writer type over both formats.

use crate::dead_letter::DeadLetterWriter;
use crate::error::{IngestError, Result};
use crate::jsonl::{JsonlEventReader, JsonlEventWriter};
use crate::parquet_events::{ParquetEventReader, ParquetEventWriter};
use crate::record::{ReadError, RecordErrorKind};
use liverank_types::{Event, EventRecord};
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

/// On-disk format of an events file or table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventFormat {
    /// JSON Lines (`.jsonl`, `.ndjson`, `.json`).
    Jsonl,
    /// Apache Parquet (`.parquet`).
    Parquet,
}

impl EventFormat {
    /// The format named by a file's extension.
    pub fn from_path(path: &Path) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "ndjson" | "json") => Ok(EventFormat::Jsonl),
            Some("parquet") => Ok(EventFormat::Parquet),
            _ => Err(IngestError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }

    /// The canonical extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            EventFormat::Jsonl => "jsonl",
            EventFormat::Parquet => "parquet",
        }
    }
}

/// Reads events from either format.
#[derive(Debug)]
pub enum EventReader {
    /// JSON Lines.
    Jsonl(JsonlEventReader<BufReader<File>>),
    /// Parquet.
    Parquet(Box<ParquetEventReader>),
}

/// Opens an events file, choosing the format by extension.
pub fn open_events(path: &Path) -> Result<EventReader> {
    match EventFormat::from_path(path)? {
        EventFormat::Jsonl => {
            let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
            let reader = BufReader::with_capacity(1 << 16, file);
            Ok(EventReader::Jsonl(JsonlEventReader::new(
                reader,
                path.display().to_string(),
            )))
        }
        EventFormat::Parquet => Ok(EventReader::Parquet(Box::new(ParquetEventReader::open(
            path,
        )?))),
    }
}

impl Iterator for EventReader {
    type Item = std::result::Result<Event, ReadError>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            EventReader::Jsonl(r) => r.next(),
            EventReader::Parquet(r) => r.next(),
        }
    }
}

/// Counts of one read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Events delivered.
    pub events: u64,
    /// Records that could not be parsed.
    pub malformed: u64,
    /// Records that failed validation.
    pub invalid: u64,
}

/// Reads every event of `path` into `on_event`; bad records are counted and, when a
/// writer is given, written as dead letters. Stops only on a fatal error.
pub fn read_events(
    path: &Path,
    mut dead_letters: Option<&mut DeadLetterWriter>,
    mut on_event: impl FnMut(Event),
) -> Result<ReadStats> {
    let mut stats = ReadStats::default();
    for item in open_events(path)? {
        match item {
            Ok(e) => {
                stats.events += 1;
                on_event(e);
            }
            Err(ReadError::Record(r)) => {
                match r.kind {
                    RecordErrorKind::Malformed => stats.malformed += 1,
                    RecordErrorKind::Invalid => stats.invalid += 1,
                }
                if let Some(d) = dead_letters.as_deref_mut() {
                    d.record(&r)?;
                }
            }
            Err(ReadError::Fatal(e)) => return Err(e),
        }
    }
    Ok(stats)
}

/// Writes events to either format.
#[derive(Debug)]
pub enum EventWriter {
    /// JSON Lines.
    Jsonl(JsonlEventWriter<BufWriter<File>>),
    /// Parquet.
    Parquet(Box<ParquetEventWriter<BufWriter<File>>>),
}

impl EventWriter {
    /// Creates (truncates) `path` in `format`.
    pub fn create(path: &Path, format: EventFormat) -> Result<Self> {
        let file = File::create(path).map_err(|e| IngestError::io(path, e))?;
        let out = BufWriter::with_capacity(1 << 16, file);
        Ok(match format {
            EventFormat::Jsonl => EventWriter::Jsonl(JsonlEventWriter::new(out, path)),
            EventFormat::Parquet => {
                EventWriter::Parquet(Box::new(ParquetEventWriter::new(out, path)?))
            }
        })
    }

    /// Appends one event.
    pub fn write(&mut self, event: &Event) -> Result<()> {
        match self {
            EventWriter::Jsonl(w) => w.write(event),
            EventWriter::Parquet(w) => w.write(event),
        }
    }

    /// Appends one flat record as is (may be invalid).
    pub fn write_record(&mut self, record: &EventRecord) -> Result<()> {
        match self {
            EventWriter::Jsonl(w) => w.write_record(record),
            EventWriter::Parquet(w) => w.write_record(record),
        }
    }

    /// Appends a raw line; JSON Lines only.
    pub fn write_raw_line(&mut self, line: &str) -> Result<()> {
        match self {
            EventWriter::Jsonl(w) => w.write_raw_line(line),
            EventWriter::Parquet(w) => Err(IngestError::Unsupported {
                path: w.path().to_path_buf(),
                reason: "a raw text line cannot be written to Parquet".into(),
            }),
        }
    }

    /// Flushes and closes the file.
    pub fn finish(self) -> Result<()> {
        match self {
            EventWriter::Jsonl(w) => {
                let path: PathBuf = w.path().to_path_buf();
                let out = w.finish()?;
                out.into_inner()
                    .map_err(|e| IngestError::io(&path, e.into_error()))?
                    .sync_all()
                    .map_err(|e| IngestError::io(&path, e))
            }
            EventWriter::Parquet(w) => w.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_format_follows_the_extension() {
        for (name, format) in [
            ("a/events.jsonl", EventFormat::Jsonl),
            ("events.ndjson", EventFormat::Jsonl),
            ("events.json", EventFormat::Jsonl),
            ("x/events.parquet", EventFormat::Parquet),
        ] {
            assert_eq!(EventFormat::from_path(Path::new(name)).unwrap(), format);
        }
        for name in ["events.csv", "events", "events.parquet.gz"] {
            let err = EventFormat::from_path(Path::new(name)).unwrap_err();
            assert!(matches!(err, IngestError::UnknownFormat { .. }), "{name}");
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }

    #[test]
    fn raw_lines_cannot_go_to_parquet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.parquet");
        let mut w = EventWriter::create(&path, EventFormat::Parquet).unwrap();
        let err = w.write_raw_line("{oops").unwrap_err();
        assert!(matches!(err, IngestError::Unsupported { .. }), "{err}");
        w.finish().unwrap();
        assert_eq!(
            read_events(&path, None, |_| {}).unwrap(),
            ReadStats::default()
        );
    }
}

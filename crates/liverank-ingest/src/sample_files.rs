//! File ends of the sample job (`liverank_samples::job`): an event file as a seekable
//! source, samples as one JSON Lines file or as Parquet segments (one per checkpoint
//! interval), and dead letters as a JSON Lines file. Every sink reports a position after
//! a durable sync and cuts its output back to such a position on restart.
//!
//! Positions: a JSON Lines file's byte length; for Parquet segments, the number of
//! complete segment files (`samples-NNNNN.parquet`; a segment is only complete once its
//! footer is written and synced, so a restart deletes every segment from that index on).

use crate::dead_letter::{DeadLetter, DeadLetterKind};
use crate::error::{IngestError, Result};
use crate::record::{ReadError, RecordError};
use crate::samples_io::ParquetSampleWriter;
use crate::source::{EventReader, open_events};
use liverank_samples::RejectReason;
use liverank_samples::job::{DeadLetterSink, EventSource, SampleSink, SourceItem};
use liverank_types::{Event, Sample};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An event file (either format) as a job source; records are lines or rows.
#[derive(Debug)]
pub struct FileEventSource {
    reader: EventReader,
}

impl FileEventSource {
    /// Opens `path` (format by extension).
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self {
            reader: open_events(path)?,
        })
    }
}

impl EventSource for FileEventSource {
    type Rejected = RecordError;
    type Error = IngestError;

    fn seek(&mut self, offset: u64) -> Result<()> {
        // Files are read from the start: the skipped records still pass through the
        // reader, so a Parquet file's content checksum covers all of them.
        for _ in 0..offset {
            match self.reader.next() {
                None => break,
                Some(Err(ReadError::Fatal(e))) => return Err(e),
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn next_item(&mut self) -> Result<Option<SourceItem<RecordError>>> {
        match self.reader.next() {
            None => Ok(None),
            Some(Ok(e)) => Ok(Some(SourceItem::Event(e))),
            Some(Err(ReadError::Record(r))) => Ok(Some(SourceItem::Rejected(r))),
            Some(Err(ReadError::Fatal(e))) => Err(e),
        }
    }
}

/// Opens `path` for appending after cutting it to `len` (`None`: empty).
fn open_cut(path: &Path, len: Option<u64>) -> Result<File> {
    let io = |e| IngestError::io(path, e);
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(len.is_none())
        .open(path)
        .map_err(io)?;
    if let Some(len) = len {
        let actual = f.metadata().map_err(io)?.len();
        if actual < len {
            return Err(IngestError::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{actual} bytes, shorter than the checkpoint's {len}"),
                ),
            ));
        }
        // Drop whatever was written after the checkpoint: it will be produced again.
        f.set_len(len).map_err(io)?;
    }
    f.seek(SeekFrom::End(0)).map_err(io)?;
    Ok(f)
}

/// A JSON Lines file that reports its synced byte length.
#[derive(Debug)]
struct SyncedLines {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    line: Vec<u8>,
}

impl SyncedLines {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            out: None,
            line: Vec::new(),
        }
    }

    fn restore(&mut self, len: Option<u64>) -> Result<()> {
        self.out = Some(BufWriter::with_capacity(
            1 << 16,
            open_cut(&self.path, len)?,
        ));
        Ok(())
    }

    fn out(&mut self) -> Result<&mut BufWriter<File>> {
        if self.out.is_none() {
            self.restore(None)?;
        }
        self.out.as_mut().ok_or_else(|| IngestError::Unsupported {
            path: self.path.clone(),
            reason: "output not open".into(),
        })
    }

    fn write_json<T: serde::Serialize>(&mut self, value: &T) -> Result<()> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        serde_json::to_writer(&mut line, value)
            .map_err(|e| IngestError::encode(self.path.clone(), e))?;
        line.push(b'\n');
        let path = self.path.clone();
        let result = self
            .out()?
            .write_all(&line)
            .map_err(|e| IngestError::io(path, e));
        self.line = line;
        result
    }

    fn sync(&mut self) -> Result<u64> {
        let path = self.path.clone();
        let io = |e| IngestError::io(&path, e);
        let out = self.out()?;
        out.flush().map_err(io)?;
        out.get_ref().sync_all().map_err(io)?;
        Ok(out.get_ref().metadata().map_err(io)?.len())
    }
}

/// Samples as one JSON Lines file (`Sample` objects).
#[derive(Debug)]
pub struct JsonlSampleSink {
    lines: SyncedLines,
    strip_features: bool,
}

impl JsonlSampleSink {
    /// Samples to `path`; with `strip_features` the feature block is left out.
    pub fn new(path: impl Into<PathBuf>, strip_features: bool) -> Self {
        Self {
            lines: SyncedLines::new(path.into()),
            strip_features,
        }
    }
}

impl SampleSink for JsonlSampleSink {
    type Error = IngestError;

    fn restore(&mut self, position: Option<u64>) -> Result<()> {
        self.lines.restore(position)
    }

    fn write(&mut self, mut sample: Sample) -> Result<()> {
        if self.strip_features {
            sample.features = Arc::default();
        }
        self.lines.write_json(&sample)
    }

    fn sync(&mut self) -> Result<u64> {
        self.lines.sync()
    }
}

/// Samples as Parquet segments `samples-NNNNN.parquet` in a directory, one per sync.
#[derive(Debug)]
pub struct ParquetSegmentSink {
    dir: PathBuf,
    next: u64,
    writer: Option<Box<ParquetSampleWriter>>,
    strip_features: bool,
}

/// The path of segment `index` in `dir`.
pub fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("samples-{index:05}.parquet"))
}

/// The segment files in `dir`, sorted by index.
pub fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| IngestError::io(dir, e))? {
        let path = entry.map_err(|e| IngestError::io(dir, e))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if let Some(index) = name
            .strip_prefix("samples-")
            .and_then(|r| r.strip_suffix(".parquet"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            found.push((index, path));
        }
    }
    found.sort();
    Ok(found)
}

impl ParquetSegmentSink {
    /// Segments in `dir` (which must exist).
    pub fn new(dir: impl Into<PathBuf>, strip_features: bool) -> Self {
        Self {
            dir: dir.into(),
            next: 0,
            writer: None,
            strip_features,
        }
    }
}

impl SampleSink for ParquetSegmentSink {
    type Error = IngestError;

    fn restore(&mut self, position: Option<u64>) -> Result<()> {
        let keep = position.unwrap_or(0);
        let present = segments(&self.dir)?;
        if (0..keep).any(|i| !present.iter().any(|(j, _)| *j == i)) {
            return Err(IngestError::io(
                &self.dir,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("the checkpoint names {keep} sample segments, some are missing"),
                ),
            ));
        }
        for (index, path) in present {
            if index >= keep {
                std::fs::remove_file(&path).map_err(|e| IngestError::io(&path, e))?;
            }
        }
        self.next = keep;
        self.writer = None;
        Ok(())
    }

    fn write(&mut self, mut sample: Sample) -> Result<()> {
        if self.strip_features {
            sample.features = Arc::default();
        }
        let writer = match &mut self.writer {
            Some(w) => w,
            None => self
                .writer
                .insert(Box::new(ParquetSampleWriter::create(&segment_path(
                    &self.dir, self.next,
                ))?)),
        };
        writer.write(&sample)
    }

    fn sync(&mut self) -> Result<u64> {
        if let Some(w) = self.writer.take() {
            w.finish()?;
            self.next += 1;
        }
        Ok(self.next)
    }
}

/// Dead letters as a JSON Lines file ([`DeadLetter`] objects).
#[derive(Debug)]
pub struct JsonlDeadLetterSink {
    lines: SyncedLines,
    source: String,
}

impl JsonlDeadLetterSink {
    /// Dead letters to `path`; `source` names the input in rejected events' letters.
    pub fn new(path: impl Into<PathBuf>, source: impl Into<String>) -> Self {
        Self {
            lines: SyncedLines::new(path.into()),
            source: source.into(),
        }
    }
}

/// The dead letter of an event the engine rejected.
pub fn rejected_event_letter(source: &str, event: &Event, reason: &RejectReason) -> DeadLetter {
    let (kind, reason) = match reason {
        RejectReason::Late { watermark } => (
            DeadLetterKind::Late,
            format!("ts {} is behind the watermark {watermark}", event.ts.0),
        ),
        RejectReason::Duplicate => (DeadLetterKind::Duplicate, "repeated event_id".to_string()),
        RejectReason::Orphan => (
            DeadLetterKind::Orphan,
            "in-room event without an open session".to_string(),
        ),
        RejectReason::OutOfRange => (
            DeadLetterKind::Invalid,
            format!(
                "ts {} is outside the valid range [{}, {}) (ms since the epoch, up to 2200-01-01)",
                event.ts.0,
                liverank_samples::MIN_EVENT_TS,
                liverank_samples::MAX_EVENT_TS
            ),
        ),
        RejectReason::Future { newest } => (
            DeadLetterKind::Future,
            format!(
                "ts {} is more than max_future_skew_ms ahead of the newest event {newest}",
                event.ts.0
            ),
        ),
    };
    DeadLetter::for_event(source, kind, reason, event)
}

impl DeadLetterSink<RecordError> for JsonlDeadLetterSink {
    type Error = IngestError;

    fn restore(&mut self, position: Option<u64>) -> Result<()> {
        self.lines.restore(position)
    }

    fn rejected_record(&mut self, record: &RecordError) -> Result<()> {
        self.lines.write_json(&DeadLetter::from(record))
    }

    fn rejected_event(&mut self, event: &Event, reason: &RejectReason) -> Result<()> {
        let letter = rejected_event_letter(&self.source, event, reason);
        self.lines.write_json(&letter)
    }

    fn sync(&mut self) -> Result<u64> {
        self.lines.sync()
    }
}

//! The I/O edge of liverank: streaming readers and writers of event files in JSON Lines
//! and Parquet, validation of every record, and dead letters for what is rejected.
//!
//! Main types: [`open_events`] / [`EventReader`] (either format, chosen by extension),
//! [`read_events`] (read everything, dead-lettering bad records, counting [`ReadStats`]),
//! [`EventWriter`] (either format), the format-specific [`JsonlEventReader`] /
//! [`JsonlEventWriter`] and [`ParquetEventReader`] / [`ParquetEventWriter`],
//! [`DeadLetterWriter`], and [`TableWriter`] / [`TableReader`] (or the whole-table
//! [`write_table`] / [`read_table`]) for entity tables and ground truth, and the file ends
//! of the sample job ([`sample_files`]: [`FileEventSource`], [`JsonlSampleSink`],
//! [`ParquetSegmentSink`], [`JsonlDeadLetterSink`]). Every reader
//! streams: one line, or one Parquet record batch, in memory at a time.
//!
//! ```
//! use liverank_ingest::{JsonlEventReader, JsonlEventWriter, ReadError};
//! use liverank_types::{Event, EventId, EventKind, EventTime, LiveId, UserId};
//!
//! let like = Event {
//!     event_id: EventId(1),
//!     ts: EventTime(1_767_225_600_000),
//!     kind: EventKind::Like { user: UserId(42), live: LiveId(7) },
//! };
//! let mut w = JsonlEventWriter::new(Vec::new(), "mem.jsonl");
//! w.write(&like).unwrap();
//! w.write_raw_line("{not json").unwrap();
//! w.write(&like).unwrap();
//! let bytes = w.finish().unwrap();
//!
//! let items: Vec<_> = JsonlEventReader::new(&bytes[..], "mem.jsonl").collect();
//! assert_eq!(items.len(), 3);
//! assert_eq!(items[0].as_ref().unwrap(), &like);
//! match &items[1] {
//!     Err(ReadError::Record(r)) => assert!(r.to_string().starts_with("mem.jsonl:2: ")),
//!     other => panic!("expected a record error, got {other:?}"),
//! }
//! assert_eq!(items[2].as_ref().unwrap(), &like);
//! ```
//!
//! Key decision: a bad record is a value ([`ReadError::Record`]) with its position, not a
//! stopped stream, so a reader always gets every good record of a file and an exact
//! account of the bad ones; only a failure of the source itself ([`ReadError::Fatal`]:
//! I/O, a truncated or corrupt Parquet file) ends a read.

pub mod dead_letter;
pub mod error;
pub mod jsonl;
pub mod parquet_events;
pub mod record;
pub mod sample_files;
pub mod samples_io;
pub mod source;
pub mod table;

pub use dead_letter::{DeadLetter, DeadLetterKind, DeadLetterWriter};
pub use error::{BoxError, ContentDefect, Fault, IngestError, Result};
pub use jsonl::{JsonlEventReader, JsonlEventWriter};
pub use parquet_events::{ParquetEventReader, ParquetEventWriter, event_schema};
pub use record::{Position, ReadError, RecordError, RecordErrorKind};
pub use sample_files::{FileEventSource, JsonlDeadLetterSink, JsonlSampleSink, ParquetSegmentSink};
pub use samples_io::{ParquetSampleWriter, read_parquet_samples, sample_schema};
pub use source::{EventFormat, EventReader, EventWriter, ReadStats, open_events, read_events};
pub use table::{TABLE_BATCH_ROWS, TableReader, TableWriter, read_table, write_table};

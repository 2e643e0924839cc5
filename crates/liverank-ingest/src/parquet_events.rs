//! Events as Parquet: an explicit, versioned, flat schema (one nullable column per
//! [`EventRecord`] field), written in batches and read batch by batch.
//!
//! Columns are built and read by hand with Arrow builders and typed arrays: this is a hot
//! path, and reading typed columns directly lets a bad row (an unknown type, a negative
//! duration) be reported with its row number while the rest of the batch is kept.

use crate::error::{IngestError, Result};
use crate::record::{Position, ReadError, RecordError, RecordErrorKind};
use arrow_array::builder::{
    BooleanBuilder, Int64Builder, StringBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use liverank_types::{EVENT_FORMAT_VERSION, Event, EventRecord, EventType, Page};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Key-value metadata key naming the kind of file.
pub const FORMAT_KEY: &str = "liverank.format";
/// Key-value metadata key holding the format version.
pub const VERSION_KEY: &str = "liverank.format_version";

/// Key-value metadata key holding the content checksum of all rows.
pub const CHECKSUM_KEY: &str = "liverank.content_checksum";

/// Order-dependent digest of a stream of records. Parquet pages carry no checksum in this
/// writer, and a flipped byte inside a page can decode into plausible values; this digest,
/// stored in the footer, turns such silent corruption into an error at the end of a read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContentChecksum(u64);

impl ContentChecksum {
    fn mix(&mut self, v: u64) {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        self.0 = (self.0.rotate_left(23) ^ v).wrapping_mul(K);
    }

    fn opt(&mut self, v: Option<u64>) {
        match v {
            Some(x) => {
                self.mix(1);
                self.mix(x);
            }
            None => self.mix(0),
        }
    }

    /// Adds one record.
    pub fn add(&mut self, r: &EventRecord) {
        self.mix(r.event_id);
        self.mix(r.ts as u64);
        self.mix(r.event_type.map_or(u64::MAX, |t| t as u64));
        for v in [r.user, r.live, r.video, r.author, r.request_id] {
            self.opt(v);
        }
        self.opt(r.position.map(u64::from));
        self.opt(r.page.map(|p| p as u64));
        self.opt(r.watch_ms.map(|v| v as u64));
        self.opt(r.completed.map(u64::from));
        self.opt(r.value.map(|v| v as u64));
        self.opt(r.product);
        self.opt(r.amount.map(|v| v as u64));
        for v in [r.category, r.c1, r.c2, r.c3] {
            self.opt(v.map(u64::from));
        }
    }

    /// The digest as hex.
    pub fn to_hex(self) -> String {
        format!("{:016x}", self.0)
    }
}

/// The Arrow schema of an events file, version [`EVENT_FORMAT_VERSION`].
pub fn event_schema() -> SchemaRef {
    let u64n = |n: &str| Field::new(n, DataType::UInt64, true);
    let u32n = |n: &str| Field::new(n, DataType::UInt32, true);
    let i64n = |n: &str| Field::new(n, DataType::Int64, true);
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::UInt64, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("type", DataType::Utf8, false),
        u64n("user"),
        u64n("live"),
        u64n("video"),
        u64n("author"),
        u64n("request_id"),
        u32n("position"),
        Field::new("page", DataType::Utf8, true),
        i64n("watch_ms"),
        Field::new("completed", DataType::Boolean, true),
        i64n("value"),
        u64n("product"),
        i64n("amount"),
        u32n("category"),
        u32n("c1"),
        u32n("c2"),
        u32n("c3"),
    ]))
}

#[derive(Debug, Default)]
struct Columns {
    event_id: UInt64Builder,
    ts: Int64Builder,
    event_type: StringBuilder,
    user: UInt64Builder,
    live: UInt64Builder,
    video: UInt64Builder,
    author: UInt64Builder,
    request_id: UInt64Builder,
    position: UInt32Builder,
    page: StringBuilder,
    watch_ms: Int64Builder,
    completed: BooleanBuilder,
    value: Int64Builder,
    product: UInt64Builder,
    amount: Int64Builder,
    category: UInt32Builder,
    c1: UInt32Builder,
    c2: UInt32Builder,
    c3: UInt32Builder,
}

impl Columns {
    fn push(&mut self, r: &EventRecord) {
        self.event_id.append_value(r.event_id);
        self.ts.append_value(r.ts);
        // A record without a type is written as "" so the row exists and fails on read.
        self.event_type
            .append_value(r.event_type.map_or("", EventType::as_str));
        self.user.append_option(r.user);
        self.live.append_option(r.live);
        self.video.append_option(r.video);
        self.author.append_option(r.author);
        self.request_id.append_option(r.request_id);
        self.position.append_option(r.position);
        self.page.append_option(r.page.map(Page::as_str));
        self.watch_ms.append_option(r.watch_ms);
        self.completed.append_option(r.completed);
        self.value.append_option(r.value);
        self.product.append_option(r.product);
        self.amount.append_option(r.amount);
        self.category.append_option(r.category);
        self.c1.append_option(r.c1);
        self.c2.append_option(r.c2);
        self.c3.append_option(r.c3);
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.event_id.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.user.finish()),
            Arc::new(self.live.finish()),
            Arc::new(self.video.finish()),
            Arc::new(self.author.finish()),
            Arc::new(self.request_id.finish()),
            Arc::new(self.position.finish()),
            Arc::new(self.page.finish()),
            Arc::new(self.watch_ms.finish()),
            Arc::new(self.completed.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.product.finish()),
            Arc::new(self.amount.finish()),
            Arc::new(self.category.finish()),
            Arc::new(self.c1.finish()),
            Arc::new(self.c2.finish()),
            Arc::new(self.c3.finish()),
        ]
    }
}

/// Writes events to Parquet in batches of `batch_rows`.
pub struct ParquetEventWriter<W: Write + Send> {
    writer: ArrowWriter<W>,
    columns: Columns,
    rows: usize,
    batch_rows: usize,
    schema: SchemaRef,
    path: PathBuf,
    checksum: ContentChecksum,
    total_rows: u64,
}

impl<W: Write + Send> std::fmt::Debug for ParquetEventWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetEventWriter")
            .field("path", &self.path)
            .field("buffered_rows", &self.rows)
            .finish()
    }
}

/// Writer properties shared by every liverank Parquet file.
pub(crate) fn writer_properties(
    kind: &str,
    version: u32,
    row_group_rows: usize,
) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(FORMAT_KEY.to_string(), kind.to_string()),
            KeyValue::new(VERSION_KEY.to_string(), version.to_string()),
        ]))
        .build()
}

impl<W: Write + Send> ParquetEventWriter<W> {
    /// Default rows per record batch.
    pub const DEFAULT_BATCH_ROWS: usize = 65_536;

    /// A writer into `output`; `path` names it in errors.
    pub fn new(output: W, path: impl Into<PathBuf>) -> Result<Self> {
        Self::with_batch_rows(output, path, Self::DEFAULT_BATCH_ROWS)
    }

    /// A writer with a custom batch (and row group) size.
    pub fn with_batch_rows(output: W, path: impl Into<PathBuf>, batch_rows: usize) -> Result<Self> {
        let path = path.into();
        let schema = event_schema();
        let batch_rows = batch_rows.max(1);
        let props = writer_properties("events", EVENT_FORMAT_VERSION, batch_rows.max(1024) * 16);
        let writer = ArrowWriter::try_new(output, schema.clone(), Some(props)).map_err(|e| {
            IngestError::Encode {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok(Self {
            writer,
            columns: Columns::default(),
            rows: 0,
            batch_rows,
            schema,
            path,
            checksum: ContentChecksum::default(),
            total_rows: 0,
        })
    }

    /// The file this writer writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event.
    pub fn write(&mut self, event: &Event) -> Result<()> {
        self.write_record(&EventRecord::from(event))
    }

    /// Appends one flat record as is (it may be invalid: fault injection uses this).
    pub fn write_record(&mut self, record: &EventRecord) -> Result<()> {
        self.columns.push(record);
        self.checksum.add(record);
        self.total_rows += 1;
        self.rows += 1;
        if self.rows >= self.batch_rows {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let encode = |e: &dyn std::fmt::Display| IngestError::Encode {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        let batch = RecordBatch::try_new(self.schema.clone(), self.columns.finish())
            .map_err(|e| encode(&e))?;
        self.writer.write(&batch).map_err(|e| encode(&e))?;
        self.rows = 0;
        Ok(())
    }

    /// Writes the last batch and the footer.
    pub fn finish(mut self) -> Result<()> {
        self.flush_batch()?;
        let path = self.path.clone();
        self.writer.append_key_value_metadata(KeyValue::new(
            CHECKSUM_KEY.to_string(),
            format!("{} {}", self.total_rows, self.checksum.to_hex()),
        ));
        self.writer.close().map_err(|e| IngestError::Encode {
            path,
            reason: e.to_string(),
        })?;
        Ok(())
    }
}

/// Checks the `liverank.format` / version metadata of an opened Parquet file.
pub(crate) fn check_metadata(
    builder: &ParquetRecordBatchReaderBuilder<File>,
    path: &Path,
    kind: &str,
    max_version: u32,
) -> Result<()> {
    let kv = builder.metadata().file_metadata().key_value_metadata();
    let get = |key: &str| {
        kv.and_then(|kv| kv.iter().find(|k| k.key == key))
            .and_then(|k| k.value.clone())
    };
    let schema_err = |reason: String| IngestError::Schema {
        path: path.to_path_buf(),
        reason,
    };
    match get(FORMAT_KEY) {
        Some(k) if k == kind => {}
        Some(k) => {
            return Err(schema_err(format!(
                "holds liverank `{k}`, expected `{kind}`"
            )));
        }
        None => {
            return Err(schema_err(format!(
                "not a liverank `{kind}` file (no `{FORMAT_KEY}` metadata)"
            )));
        }
    }
    let version: u32 = get(VERSION_KEY)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| schema_err(format!("missing or bad `{VERSION_KEY}`")))?;
    if version == 0 || version > max_version {
        return Err(schema_err(format!(
            "format version {version} is not supported (this build reads 1..={max_version})"
        )));
    }
    Ok(())
}

/// Opens a Parquet file into a batch builder, mapping failures to clear errors.
pub(crate) fn open_parquet(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| IngestError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Streams events from a Parquet file, batch by batch.
pub struct ParquetEventReader {
    batches: ParquetRecordBatchReader,
    path: PathBuf,
    source: String,
    batch: Option<RecordBatch>,
    index: usize,
    row: u64,
    failed: bool,
    checksum: ContentChecksum,
    expected: Option<String>,
}

impl std::fmt::Debug for ParquetEventReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetEventReader")
            .field("path", &self.path)
            .field("row", &self.row)
            .finish()
    }
}

impl ParquetEventReader {
    /// Opens `path`, checking its metadata and schema.
    pub fn open(path: &Path) -> Result<Self> {
        let builder = open_parquet(path)?;
        check_metadata(&builder, path, "events", EVENT_FORMAT_VERSION)?;
        let expected = event_schema();
        let actual = builder.schema().clone();
        for field in expected.fields() {
            match actual.field_with_name(field.name()) {
                Ok(f) if f.data_type() == field.data_type() => {}
                Ok(f) => {
                    return Err(IngestError::Schema {
                        path: path.to_path_buf(),
                        reason: format!(
                            "column `{}` has type {}, expected {}",
                            field.name(),
                            f.data_type(),
                            field.data_type()
                        ),
                    });
                }
                Err(_) => {
                    return Err(IngestError::Schema {
                        path: path.to_path_buf(),
                        reason: format!("missing column `{}`", field.name()),
                    });
                }
            }
        }
        let expected = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|k| k.key == CHECKSUM_KEY))
            .and_then(|k| k.value.clone());
        let batches = builder
            .with_batch_size(8_192)
            .build()
            .map_err(|e| IngestError::Corrupt {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            batches,
            path: path.to_path_buf(),
            source: path.display().to_string(),
            batch: None,
            index: 0,
            row: 0,
            failed: false,
            checksum: ContentChecksum::default(),
            expected,
        })
    }

    fn next_batch(&mut self) -> Option<Result<()>> {
        // The Parquet decoder is not ours; a corrupt page must never take the process down.
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.batches.next()));
        let corrupt = |reason: String| IngestError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        match next {
            Ok(None) => {
                let actual = format!("{} {}", self.row, self.checksum.to_hex());
                match &self.expected {
                    Some(expected) if *expected != actual => Some(Err(corrupt(format!(
                        "content checksum mismatch: footer says `{expected}`, data gives `{actual}`"
                    )))),
                    _ => None,
                }
            }
            Ok(Some(Ok(batch))) => {
                self.batch = Some(batch);
                self.index = 0;
                Some(Ok(()))
            }
            Ok(Some(Err(e))) => Some(Err(corrupt(e.to_string()))),
            Err(_) => Some(Err(corrupt(
                "the Parquet decoder failed on a corrupt page".into(),
            ))),
        }
    }
}

fn record_at(batch: &RecordBatch, i: usize) -> std::result::Result<EventRecord, String> {
    // Columns were checked at open; a missing one here is reported, not unwrapped.
    let col = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("missing column `{name}`"))
    };
    let u64c = |name: &str| -> std::result::Result<Option<u64>, String> {
        let c = col(name)?;
        let a = c
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| format!("column `{name}` is not UInt64"))?;
        Ok(a.is_valid(i).then(|| a.value(i)))
    };
    let u32c = |name: &str| -> std::result::Result<Option<u32>, String> {
        let c = col(name)?;
        let a = c
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| format!("column `{name}` is not UInt32"))?;
        Ok(a.is_valid(i).then(|| a.value(i)))
    };
    let i64c = |name: &str| -> std::result::Result<Option<i64>, String> {
        let c = col(name)?;
        let a = c
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| format!("column `{name}` is not Int64"))?;
        Ok(a.is_valid(i).then(|| a.value(i)))
    };
    let strc = |name: &str| -> std::result::Result<Option<&str>, String> {
        let c = col(name)?;
        let a = c
            .as_string_opt::<i32>()
            .ok_or_else(|| format!("column `{name}` is not Utf8"))?;
        Ok(a.is_valid(i).then(|| a.value(i)))
    };
    let completed = {
        let c = col("completed")?;
        let a = c
            .as_boolean_opt()
            .ok_or_else(|| "column `completed` is not Boolean".to_string())?;
        a.is_valid(i).then(|| a.value(i))
    };
    let event_type = match strc("type")? {
        Some(t) => Some(t.parse::<EventType>()?),
        None => None,
    };
    let page = match strc("page")? {
        Some(p) => Some(p.parse::<Page>()?),
        None => None,
    };
    Ok(EventRecord {
        event_id: u64c("event_id")?.ok_or("null `event_id`")?,
        ts: i64c("ts")?.ok_or("null `ts`")?,
        event_type,
        user: u64c("user")?,
        live: u64c("live")?,
        video: u64c("video")?,
        author: u64c("author")?,
        request_id: u64c("request_id")?,
        position: u32c("position")?,
        page,
        watch_ms: i64c("watch_ms")?,
        completed,
        value: i64c("value")?,
        product: u64c("product")?,
        amount: i64c("amount")?,
        category: u32c("category")?,
        c1: u32c("c1")?,
        c2: u32c("c2")?,
        c3: u32c("c3")?,
    })
}

impl Iterator for ParquetEventReader {
    type Item = std::result::Result<Event, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(batch) = &self.batch
                && self.index < batch.num_rows()
            {
                let i = self.index;
                self.index += 1;
                let row = self.row;
                self.row += 1;
                let error = |kind, reason: String| {
                    ReadError::Record(RecordError {
                        source: self.source.clone(),
                        position: Position::Row(row),
                        kind,
                        reason,
                        raw: None,
                    })
                };
                let record = match record_at(batch, i) {
                    Ok(r) => {
                        self.checksum.add(&r);
                        r
                    }
                    Err(reason) => return Some(Err(error(RecordErrorKind::Malformed, reason))),
                };
                let raw = serde_json::to_string(&record).ok();
                return Some(Event::try_from(record).map_err(|e| {
                    match error(RecordErrorKind::Invalid, e.to_string()) {
                        ReadError::Record(mut r) => {
                            r.raw = raw;
                            ReadError::Record(r)
                        }
                        other => other,
                    }
                }));
            }
            match self.next_batch()? {
                Ok(()) => {}
                Err(e) => {
                    self.failed = true;
                    return Some(Err(ReadError::Fatal(e)));
                }
            }
        }
    }
}

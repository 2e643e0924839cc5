//! Events as Parquet: an explicit, versioned, flat schema (one nullable column per
//! [`EventRecord`] field), written in batches and read batch by batch.
//!
//! Columns are built and read by hand with Arrow builders and typed arrays: this is a hot
//! path, and reading typed columns directly lets a bad row (an unknown type, a negative
//! duration) be reported with its row number while the rest of the batch is kept.

use crate::error::{BoxError, ContentDefect, IngestError, Result};
use crate::record::{Position, ReadError, RecordError, RecordErrorKind};
use arrow_array::builder::{
    BooleanBuilder, Int64Builder, StringBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use liverank_types::{EVENT_FORMAT_VERSION, Event, EventRecord, EventType, Page};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};
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
    writer_properties_builder(kind, version, row_group_rows).build()
}

/// [`writer_properties`] before `build`, for writers that tune columns.
pub(crate) fn writer_properties_builder(
    kind: &str,
    version: u32,
    row_group_rows: usize,
) -> WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(FORMAT_KEY.to_string(), kind.to_string()),
            KeyValue::new(VERSION_KEY.to_string(), version.to_string()),
        ]))
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
        let writer = ArrowWriter::try_new(output, schema.clone(), Some(props))
            .map_err(|e| IngestError::encode(path.clone(), e))?;
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
        let encode = |e: BoxError| IngestError::encode(self.path.clone(), e);
        let batch = RecordBatch::try_new(self.schema.clone(), self.columns.finish())
            .map_err(|e| encode(e.into()))?;
        self.writer.write(&batch).map_err(|e| encode(e.into()))?;
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
        self.writer
            .close()
            .map_err(|e| IngestError::encode(path, e))?;
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
        source: None,
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
    ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| IngestError::corrupt(path.to_path_buf(), e))
}

/// Streams events from a Parquet file, batch by batch.
pub struct ParquetEventReader {
    batches: ParquetRecordBatchReader,
    path: PathBuf,
    source: String,
    pending: std::collections::VecDeque<std::result::Result<Event, ReadError>>,
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
                    return Err(IngestError::schema(
                        path,
                        format!(
                            "column `{}` has type {}, expected {}",
                            field.name(),
                            f.data_type(),
                            field.data_type()
                        ),
                    ));
                }
                Err(_) => {
                    return Err(IngestError::Schema {
                        path: path.to_path_buf(),
                        reason: format!("missing column `{}`", field.name()),
                        source: None,
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
            .map_err(|e| IngestError::corrupt(path.to_path_buf(), e))?;
        Ok(Self {
            batches,
            path: path.to_path_buf(),
            source: path.display().to_string(),
            pending: std::collections::VecDeque::new(),
            row: 0,
            failed: false,
            checksum: ContentChecksum::default(),
            expected,
        })
    }

    fn next_batch(&mut self) -> Option<Result<RecordBatch>> {
        match next_batch_guarded(&mut self.batches, &self.path) {
            None => {
                let actual = format!("{} {}", self.row, self.checksum.to_hex());
                match &self.expected {
                    Some(expected) if *expected != actual => Some(Err(IngestError::corrupt(
                        self.path.clone(),
                        ContentDefect::Checksum {
                            expected: expected.clone(),
                            actual,
                        },
                    ))),
                    _ => None,
                }
            }
            other => other,
        }
    }
}

/// The next record batch of `batches`, with every decoder failure (an error or a panic on a
/// corrupt page) turned into [`IngestError::Corrupt`] naming `path`.
pub(crate) fn next_batch_guarded(
    batches: &mut ParquetRecordBatchReader,
    path: &Path,
) -> Option<Result<RecordBatch>> {
    // The Parquet decoder is not ours; a corrupt page must never take the process down.
    let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| batches.next()));
    match next {
        Ok(None) => None,
        Ok(Some(Ok(batch))) => Some(Ok(batch)),
        Ok(Some(Err(e))) => Some(Err(IngestError::corrupt(path, e))),
        Err(_) => Some(Err(IngestError::corrupt(path, ContentDefect::DecoderPanic))),
    }
}

/// The typed columns of one batch, resolved once so rows are read without lookups.
struct BatchColumns<'a> {
    event_id: &'a UInt64Array,
    ts: &'a Int64Array,
    event_type: &'a StringArray,
    user: &'a UInt64Array,
    live: &'a UInt64Array,
    video: &'a UInt64Array,
    author: &'a UInt64Array,
    request_id: &'a UInt64Array,
    position: &'a UInt32Array,
    page: &'a StringArray,
    watch_ms: &'a Int64Array,
    completed: &'a BooleanArray,
    value: &'a Int64Array,
    product: &'a UInt64Array,
    amount: &'a Int64Array,
    category: &'a UInt32Array,
    c1: &'a UInt32Array,
    c2: &'a UInt32Array,
    c3: &'a UInt32Array,
}

fn column<'a, T: 'static>(
    batch: &'a RecordBatch,
    name: &str,
) -> std::result::Result<&'a T, String> {
    batch
        .column_by_name(name)
        .ok_or_else(|| format!("missing column `{name}`"))?
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| format!("column `{name}` has an unexpected type"))
}

fn get<T: arrow_array::types::ArrowPrimitiveType>(
    a: &arrow_array::PrimitiveArray<T>,
    i: usize,
) -> Option<T::Native> {
    a.is_valid(i).then(|| a.value(i))
}

impl<'a> BatchColumns<'a> {
    fn new(b: &'a RecordBatch) -> std::result::Result<Self, String> {
        Ok(Self {
            event_id: column(b, "event_id")?,
            ts: column(b, "ts")?,
            event_type: column(b, "type")?,
            user: column(b, "user")?,
            live: column(b, "live")?,
            video: column(b, "video")?,
            author: column(b, "author")?,
            request_id: column(b, "request_id")?,
            position: column(b, "position")?,
            page: column(b, "page")?,
            watch_ms: column(b, "watch_ms")?,
            completed: column(b, "completed")?,
            value: column(b, "value")?,
            product: column(b, "product")?,
            amount: column(b, "amount")?,
            category: column(b, "category")?,
            c1: column(b, "c1")?,
            c2: column(b, "c2")?,
            c3: column(b, "c3")?,
        })
    }

    fn record(&self, i: usize) -> std::result::Result<EventRecord, String> {
        // The writer stores a missing type as "" (the column is required).
        let event_type = match self
            .event_type
            .is_valid(i)
            .then(|| self.event_type.value(i))
        {
            None | Some("") => None,
            Some(t) => Some(t.parse::<EventType>()?),
        };
        let page = if self.page.is_valid(i) {
            Some(self.page.value(i).parse::<Page>()?)
        } else {
            None
        };
        Ok(EventRecord {
            event_id: get(self.event_id, i).ok_or("null `event_id`")?,
            ts: get(self.ts, i).ok_or("null `ts`")?,
            event_type,
            user: get(self.user, i),
            live: get(self.live, i),
            video: get(self.video, i),
            author: get(self.author, i),
            request_id: get(self.request_id, i),
            position: get(self.position, i),
            page,
            watch_ms: get(self.watch_ms, i),
            completed: self.completed.is_valid(i).then(|| self.completed.value(i)),
            value: get(self.value, i),
            product: get(self.product, i),
            amount: get(self.amount, i),
            category: get(self.category, i),
            c1: get(self.c1, i),
            c2: get(self.c2, i),
            c3: get(self.c3, i),
        })
    }
}

impl ParquetEventReader {
    /// Decodes every row of `batch` into `pending`.
    fn decode_batch(&mut self, batch: &RecordBatch) {
        let columns = BatchColumns::new(batch);
        for i in 0..batch.num_rows() {
            let row = self.row;
            self.row += 1;
            let error = |kind, reason: String, raw: Option<String>| {
                ReadError::Record(RecordError {
                    source: self.source.clone(),
                    position: Position::Row(row),
                    kind,
                    reason,
                    raw,
                })
            };
            let record = match columns
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|c| c.record(i))
            {
                Ok(r) => r,
                Err(reason) => {
                    self.pending
                        .push_back(Err(error(RecordErrorKind::Malformed, reason, None)));
                    continue;
                }
            };
            self.checksum.add(&record);
            // The raw form is only built for the rare invalid row.
            let item = match Event::try_from(record.clone()) {
                Ok(e) => Ok(e),
                Err(e) => Err(error(
                    RecordErrorKind::Invalid,
                    e.to_string(),
                    serde_json::to_string(&record).ok(),
                )),
            };
            self.pending.push_back(item);
        }
    }
}

impl Iterator for ParquetEventReader {
    type Item = std::result::Result<Event, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.failed {
                return None;
            }
            match self.next_batch()? {
                Ok(batch) => self.decode_batch(&batch),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(ReadError::Fatal(e)));
                }
            }
        }
    }
}

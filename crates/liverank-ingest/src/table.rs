//! Entity tables and ground truth: small flat serde rows as Parquet (schema traced from
//! the row type by `serde_arrow`) or JSON Lines, chosen by the file extension.
//!
//! [`TableWriter`] and [`TableReader`] stream row by row (Parquet: one record batch of
//! [`TABLE_BATCH_ROWS`] rows in memory at a time), so a ground-truth table with one row
//! per exposure never has to fit in memory. [`write_table`] / [`read_table`] are the
//! whole-table conveniences on top of them.
//!
//! Unlike events, a table row that does not decode is a fatal [`IngestError::Schema`]
//! naming the line or batch: tables are written by our own tools, so a bad row means a
//! wrong or damaged file, not a stray record to skip.

use crate::error::{BoxError, IngestError, Result};
use crate::parquet_events::{
    FORMAT_KEY, check_metadata, next_batch_guarded, open_parquet, writer_properties,
};
use crate::source::EventFormat;
use arrow_schema::FieldRef;
use liverank_types::TABLE_FORMAT_VERSION;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_arrow::ArrayBuilder;
use serde_arrow::schema::{SchemaLike, TracingOptions};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows per Parquet record batch of a table file.
pub const TABLE_BATCH_ROWS: usize = 65_536;

/// Rows per Parquet row group of a table file.
const TABLE_ROW_GROUP_ROWS: usize = 1 << 20;

fn tracing() -> TracingOptions {
    TracingOptions::default()
        .enums_without_data_as_strings(true)
        .allow_null_fields(true)
}

/// The Arrow fields of a table of `T`, traced from the type (unit enums become strings).
fn table_fields<T: Serialize + DeserializeOwned>(path: &Path) -> Result<Vec<FieldRef>> {
    Vec::<FieldRef>::from_type::<T>(tracing()).map_err(|e| IngestError::encode(path, e))
}

enum TableSink {
    Jsonl {
        out: BufWriter<File>,
        line: Vec<u8>,
    },
    Parquet {
        writer: Box<ArrowWriter<BufWriter<File>>>,
        builder: Box<ArrayBuilder>,
        buffered: usize,
        batch_rows: usize,
    },
}

/// Streams rows of one table into a `.parquet` or `.jsonl` file.
///
/// ```
/// use liverank_ingest::{TableReader, TableWriter};
/// use liverank_types::{User, UserId};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("users.parquet");
/// let user = |id| User {
///     user: UserId(id), gender: 1, age_bucket: 2, city_tier: 3, activity_level: 2, payer_level: 0,
/// };
/// let mut w = TableWriter::<User>::create(&path, "users").unwrap();
/// for id in 0..10 {
///     w.write(&user(id)).unwrap();
/// }
/// assert_eq!(w.finish().unwrap(), 10);
///
/// let r = TableReader::<User>::open(&path).unwrap();
/// assert_eq!(r.table_name(), Some("users"));
/// let back: Vec<User> = r.collect::<Result<_, _>>().unwrap();
/// assert_eq!(back[9], user(9));
/// ```
pub struct TableWriter<T> {
    sink: TableSink,
    path: PathBuf,
    rows: u64,
    row_type: PhantomData<fn(&T)>,
}

impl<T> std::fmt::Debug for TableWriter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> TableWriter<T> {
    /// Creates (truncates) `path` for table `name` (Parquet metadata `liverank.format`),
    /// in the format named by its extension, with batches of [`TABLE_BATCH_ROWS`].
    pub fn create(path: &Path, name: &str) -> Result<Self> {
        Self::create_with_batch_rows(path, name, TABLE_BATCH_ROWS)
    }

    /// [`TableWriter::create`] with a custom Parquet batch size (ignored for JSON Lines).
    pub fn create_with_batch_rows(path: &Path, name: &str, batch_rows: usize) -> Result<Self> {
        let format = EventFormat::from_path(path)?;
        let encode = |e: BoxError| IngestError::encode(path.to_path_buf(), e);
        // Trace before creating the file, so an untraceable type leaves nothing behind.
        let fields = match format {
            EventFormat::Parquet => Some(table_fields::<T>(path)?),
            EventFormat::Jsonl => None,
        };
        let file = File::create(path).map_err(|e| IngestError::io(path, e))?;
        let out = BufWriter::with_capacity(1 << 16, file);
        let sink = match fields {
            None => TableSink::Jsonl {
                out,
                line: Vec::with_capacity(256),
            },
            Some(fields) => {
                let schema = Arc::new(arrow_schema::Schema::new(fields.clone()));
                let props = writer_properties(name, TABLE_FORMAT_VERSION, TABLE_ROW_GROUP_ROWS);
                let writer =
                    ArrowWriter::try_new(out, schema, Some(props)).map_err(|e| encode(e.into()))?;
                let builder = ArrayBuilder::from_arrow(&fields).map_err(|e| encode(e.into()))?;
                TableSink::Parquet {
                    writer: Box::new(writer),
                    builder: Box::new(builder),
                    buffered: 0,
                    batch_rows: batch_rows.max(1),
                }
            }
        };
        Ok(Self {
            sink,
            path: path.to_path_buf(),
            rows: 0,
            row_type: PhantomData,
        })
    }

    /// The file this writer writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Appends one row.
    pub fn write(&mut self, row: &T) -> Result<()> {
        let path = &self.path;
        let encode = |e: BoxError| IngestError::encode(path.clone(), e);
        match &mut self.sink {
            TableSink::Jsonl { out, line } => {
                line.clear();
                serde_json::to_writer(&mut *line, row).map_err(|e| encode(e.into()))?;
                line.push(b'\n');
                out.write_all(line).map_err(|e| IngestError::io(path, e))?;
            }
            TableSink::Parquet {
                writer,
                builder,
                buffered,
                batch_rows,
            } => {
                builder.push(row).map_err(|e| encode(e.into()))?;
                *buffered += 1;
                if *buffered >= *batch_rows {
                    let batch = builder.to_record_batch().map_err(|e| encode(e.into()))?;
                    writer.write(&batch).map_err(|e| encode(e.into()))?;
                    *buffered = 0;
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Writes what is buffered and closes the file; returns the number of rows.
    pub fn finish(self) -> Result<u64> {
        let path = self.path;
        let encode = |e: BoxError| IngestError::encode(path.clone(), e);
        match self.sink {
            TableSink::Jsonl { mut out, .. } => {
                out.flush().map_err(|e| IngestError::io(&path, e))?;
            }
            TableSink::Parquet {
                mut writer,
                mut builder,
                buffered,
                ..
            } => {
                if buffered > 0 {
                    let batch = builder.to_record_batch().map_err(|e| encode(e.into()))?;
                    writer.write(&batch).map_err(|e| encode(e.into()))?;
                }
                writer.close().map_err(|e| encode(e.into()))?;
            }
        }
        Ok(self.rows)
    }
}

enum TableSource<T> {
    Jsonl {
        input: BufReader<File>,
        line: u64,
        buf: Vec<u8>,
    },
    Parquet {
        batches: Box<ParquetRecordBatchReader>,
        pending: std::vec::IntoIter<T>,
        batch: u64,
    },
}

/// Streams the rows of a table file written by [`TableWriter`] (or any JSON Lines file of
/// such rows). The first row that does not decode ends the stream with an error.
pub struct TableReader<T> {
    source: TableSource<T>,
    path: PathBuf,
    name: Option<String>,
    done: bool,
}

impl<T> std::fmt::Debug for TableReader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableReader")
            .field("path", &self.path)
            .field("name", &self.name)
            .finish()
    }
}

impl<T: DeserializeOwned> TableReader<T> {
    /// Opens `path` in the format named by its extension. A Parquet file must carry
    /// liverank table metadata of a supported [`TABLE_FORMAT_VERSION`].
    pub fn open(path: &Path) -> Result<Self> {
        let (source, name) = match EventFormat::from_path(path)? {
            EventFormat::Jsonl => {
                let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
                let source = TableSource::Jsonl {
                    input: BufReader::with_capacity(1 << 16, file),
                    line: 0,
                    buf: Vec::with_capacity(256),
                };
                (source, None)
            }
            EventFormat::Parquet => {
                let builder = open_parquet(path)?;
                let name = builder
                    .metadata()
                    .file_metadata()
                    .key_value_metadata()
                    .and_then(|kv| kv.iter().find(|k| k.key == FORMAT_KEY))
                    .and_then(|k| k.value.clone())
                    .ok_or_else(|| IngestError::Schema {
                        path: path.to_path_buf(),
                        reason: format!("not a liverank table (no `{FORMAT_KEY}` metadata)"),
                        source: None,
                    })?;
                check_metadata(&builder, path, &name, TABLE_FORMAT_VERSION)?;
                let batches = builder
                    .build()
                    .map_err(|e| IngestError::corrupt(path.to_path_buf(), e))?;
                let source = TableSource::Parquet {
                    batches: Box::new(batches),
                    pending: Vec::new().into_iter(),
                    batch: 0,
                };
                (source, Some(name))
            }
        };
        Ok(Self {
            source,
            path: path.to_path_buf(),
            name,
            done: false,
        })
    }

    /// The table name stored in a Parquet file's metadata (`None` for JSON Lines).
    pub fn table_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn next_row(&mut self) -> Option<Result<T>> {
        let path = &self.path;
        match &mut self.source {
            TableSource::Jsonl { input, line, buf } => loop {
                buf.clear();
                match input.read_until(b'\n', buf) {
                    Ok(0) => return None,
                    Ok(_) => *line += 1,
                    Err(e) => return Some(Err(IngestError::io(path, e))),
                }
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(
                    serde_json::from_slice(buf).map_err(|e| IngestError::Schema {
                        path: path.clone(),
                        reason: format!("line {line}: {e}"),
                        source: Some(Box::new(e)),
                    }),
                );
            },
            TableSource::Parquet {
                batches,
                pending,
                batch,
            } => loop {
                if let Some(row) = pending.next() {
                    return Some(Ok(row));
                }
                let record_batch = match next_batch_guarded(batches, path)? {
                    Ok(b) => b,
                    Err(e) => return Some(Err(e)),
                };
                let rows: Vec<T> = match serde_arrow::from_record_batch(&record_batch) {
                    Ok(rows) => rows,
                    Err(e) => {
                        return Some(Err(IngestError::Schema {
                            path: path.clone(),
                            reason: format!("record batch {batch}: {e}"),
                            source: Some(Box::new(e)),
                        }));
                    }
                };
                *batch += 1;
                *pending = rows.into_iter();
            },
        }
    }
}

impl<T: DeserializeOwned> Iterator for TableReader<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_row();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// Writes `rows` as table `name` to `path` (`.parquet` or `.jsonl`).
pub fn write_table<T: Serialize + DeserializeOwned>(
    path: &Path,
    name: &str,
    rows: &[T],
) -> Result<()> {
    let mut writer = TableWriter::create(path, name)?;
    for row in rows {
        writer.write(row)?;
    }
    writer.finish().map(drop)
}

/// Reads a whole table written by [`write_table`] or [`TableWriter`]; use [`TableReader`]
/// to stream a large one.
pub fn read_table<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    TableReader::open(path)?.collect()
}

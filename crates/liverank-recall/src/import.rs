//! The interaction-log importer: a CSV (with a header) or Parquet file whose user, item and
//! timestamp columns are named by a [`ColumnMapping`], optionally keeping only rows whose
//! event-type column is in a list. Keys may be strings or integers; timestamps are
//! integers in any unit (only their order matters) or Arrow timestamps/dates.
//!
//! A bad row (empty or null field, unparsable timestamp, wrong field count, invalid UTF-8)
//! never stops the import and never vanishes: it is counted in the [`ImportReport`] with
//! its position and reason, the first `max_examples` kept. A missing column, an unreadable
//! file or a column type that cannot be mapped stops the import with an [`Error`].

use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::log::{InteractionLog, LogBuilder};
use crate::{Error, Result};

/// Which columns hold the user, the item and the timestamp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ColumnMapping {
    /// The user column. Default `user`.
    pub user: String,
    /// The item column. Default `item`.
    pub item: String,
    /// The timestamp column. Default `timestamp`.
    pub timestamp: String,
    /// Keep only rows whose event column is one of these values; `None` keeps all rows.
    pub event: Option<EventFilter>,
}

impl Default for ColumnMapping {
    fn default() -> Self {
        Self {
            user: "user".into(),
            item: "item".into(),
            timestamp: "timestamp".into(),
            event: None,
        }
    }
}

/// An event-type filter: rows whose `column` is not one of `keep` are skipped (and counted
/// as filtered, not as bad).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    /// The event-type column.
    pub column: String,
    /// The values to keep (compared as text; integers in their decimal form).
    pub keep: Vec<String>,
}

/// The file format of a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Delimited text with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
}

/// How to import a log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportConfig {
    /// The column mapping.
    pub columns: ColumnMapping,
    /// The format; `None` decides by extension (`.csv`, `.tsv` (tab), `.parquet`).
    pub format: Option<LogFormat>,
    /// The CSV field delimiter (one ASCII character). Default `,` (`\t` for `.tsv`).
    pub delimiter: Option<char>,
    /// How many bad rows to keep as examples. Default 5.
    pub max_examples: usize,
}

impl Default for ImportConfig {
    fn default() -> Self {
        Self {
            columns: ColumnMapping::default(),
            format: None,
            delimiter: None,
            max_examples: 5,
        }
    }
}

impl ImportConfig {
    /// Checks the mapping: non-empty, distinct column names, a non-empty keep list, an
    /// ASCII delimiter.
    pub fn validate(&self) -> Result<()> {
        let c = &self.columns;
        let mut names = vec![&c.user, &c.item, &c.timestamp];
        if let Some(event) = &c.event {
            if event.keep.is_empty() {
                return Err(Error::InvalidConfig("event filter keeps no value".into()));
            }
            names.push(&event.column);
        }
        if names.iter().any(|n| n.is_empty()) {
            return Err(Error::InvalidConfig("a mapped column name is empty".into()));
        }
        for (i, a) in names.iter().enumerate() {
            if names[..i].contains(a) {
                return Err(Error::InvalidConfig(format!(
                    "column `{a}` is mapped twice"
                )));
            }
        }
        if let Some(d) = self.delimiter
            && !d.is_ascii()
        {
            return Err(Error::InvalidConfig(format!(
                "delimiter {d:?} is not ASCII"
            )));
        }
        Ok(())
    }
}

/// Why a row was not imported.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadRowReason {
    /// A mapped field is empty (CSV) after trimming.
    #[error("column `{column}` is empty")]
    EmptyField {
        /// The column.
        column: String,
    },
    /// A mapped field is null (Parquet).
    #[error("column `{column}` is null")]
    NullField {
        /// The column.
        column: String,
    },
    /// The timestamp is not an integer (or does not fit in i64).
    #[error("timestamp {value:?} is not an integer")]
    BadTimestamp {
        /// The text as read.
        value: String,
    },
    /// A CSV row with a different number of fields than the header.
    #[error("{got} fields, the header has {expected}")]
    FieldCount {
        /// The header's field count.
        expected: usize,
        /// This row's.
        got: usize,
    },
    /// The CSV reader could not decode the row (e.g. invalid UTF-8).
    #[error("malformed row: {0}")]
    Malformed(String),
}

/// A row that was not imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRow {
    /// 1-based data row (the header is not counted).
    pub row: u64,
    /// 1-based line in a CSV file (`None` for Parquet).
    pub line: Option<u64>,
    /// Why.
    pub reason: BadRowReason,
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "row {} (line {line}): {}", self.row, self.reason),
            None => write!(f, "row {}: {}", self.row, self.reason),
        }
    }
}

/// What an import read, kept, filtered and rejected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Data rows read.
    pub rows: u64,
    /// Rows imported.
    pub kept: u64,
    /// Rows skipped by the event filter.
    pub filtered: u64,
    /// Rows rejected as bad.
    pub bad: u64,
    /// The first bad rows.
    pub examples: Vec<BadRow>,
}

impl ImportReport {
    fn reject(&mut self, max_examples: usize, row: u64, line: Option<u64>, reason: BadRowReason) {
        self.bad += 1;
        if self.examples.len() < max_examples {
            self.examples.push(BadRow { row, line, reason });
        }
    }
}

/// Imports `path` in the format the config or the extension names.
pub fn import_log(path: &Path, config: &ImportConfig) -> Result<(InteractionLog, ImportReport)> {
    let format = match config.format {
        Some(format) => format,
        None => match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv" | "tsv") => LogFormat::Csv,
            Some("parquet" | "pq") => LogFormat::Parquet,
            _ => {
                return Err(Error::UnknownFormat {
                    path: path.to_path_buf(),
                });
            }
        },
    };
    match format {
        LogFormat::Csv => import_csv(path, config),
        LogFormat::Parquet => import_parquet(path, config),
    }
}

/// Checks one row's fields (already extracted as text) and adds it, or counts why not.
struct RowSink<'a> {
    config: &'a ImportConfig,
    builder: LogBuilder,
    report: ImportReport,
}

impl RowSink<'_> {
    fn accept(
        &mut self,
        row: u64,
        line: Option<u64>,
        user: Field<'_>,
        item: Field<'_>,
        timestamp: std::result::Result<i64, Field<'_>>,
        event: Option<Field<'_>>,
    ) {
        self.report.rows += 1;
        let columns = &self.config.columns;
        let max = self.config.max_examples;
        if let (Some(filter), Some(event)) = (&columns.event, event) {
            let keep = match &event {
                Field::Text(value) => filter.keep.iter().any(|k| k == value),
                Field::Null => false,
            };
            if !keep {
                self.report.filtered += 1;
                return;
            }
        }
        let text = |field: Field<'_>, column: &str| -> std::result::Result<String, BadRowReason> {
            match field {
                Field::Text(value) if value.is_empty() => Err(BadRowReason::EmptyField {
                    column: column.to_owned(),
                }),
                Field::Text(value) => Ok(value.into_owned()),
                Field::Null => Err(BadRowReason::NullField {
                    column: column.to_owned(),
                }),
            }
        };
        let user = match text(user, &columns.user) {
            Ok(user) => user,
            Err(reason) => return self.report.reject(max, row, line, reason),
        };
        let item = match text(item, &columns.item) {
            Ok(item) => item,
            Err(reason) => return self.report.reject(max, row, line, reason),
        };
        let timestamp = match timestamp {
            Ok(ts) => ts,
            Err(field) => {
                let reason = match text(field, &columns.timestamp) {
                    Ok(value) => BadRowReason::BadTimestamp { value },
                    Err(reason) => reason,
                };
                return self.report.reject(max, row, line, reason);
            }
        };
        self.builder.push(&user, &item, timestamp);
        self.report.kept += 1;
    }

    fn finish(self) -> (InteractionLog, ImportReport) {
        (self.builder.finish(), self.report)
    }
}

/// One field as text (borrowed from CSV, owned from Parquet integers) or null.
enum Field<'a> {
    Text(std::borrow::Cow<'a, str>),
    Null,
}

/// Imports a CSV file with a header row. Fields are trimmed.
pub fn import_csv(path: &Path, config: &ImportConfig) -> Result<(InteractionLog, ImportReport)> {
    config.validate()?;
    let is_tsv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    let delimiter = config.delimiter.unwrap_or(if is_tsv { '\t' } else { ',' });
    let csv_error = |source: csv::Error| Error::Csv {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter as u8)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(std::io::BufReader::new(file));
    let header = reader.headers().map_err(csv_error)?.clone();
    let column = |name: &str| -> Result<usize> {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::MissingColumn {
                path: path.to_path_buf(),
                column: name.to_owned(),
                available: header.iter().collect::<Vec<_>>().join(", "),
            })
    };
    let columns = &config.columns;
    let (user, item, ts) = (
        column(&columns.user)?,
        column(&columns.item)?,
        column(&columns.timestamp)?,
    );
    let event = columns
        .event
        .as_ref()
        .map(|e| column(&e.column))
        .transpose()?;
    let mut sink = RowSink {
        config,
        builder: LogBuilder::new(),
        report: ImportReport::default(),
    };
    let mut record = csv::StringRecord::new();
    let mut row = 0u64;
    loop {
        let line_before = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                row += 1;
                let line = record.position().map(|p| p.line());
                if record.len() != header.len() {
                    sink.report.rows += 1;
                    sink.report.reject(
                        config.max_examples,
                        row,
                        line,
                        BadRowReason::FieldCount {
                            expected: header.len(),
                            got: record.len(),
                        },
                    );
                    continue;
                }
                let field = |i: usize| Field::Text(std::borrow::Cow::Borrowed(&record[i]));
                let timestamp = record[ts].parse::<i64>().map_err(|_| field(ts));
                sink.accept(
                    row,
                    line,
                    field(user),
                    field(item),
                    timestamp,
                    event.map(field),
                );
            }
            Err(error) => match error.kind() {
                csv::ErrorKind::Utf8 { .. } => {
                    row += 1;
                    sink.report.rows += 1;
                    let line = error.position().map_or(line_before, |p| p.line());
                    sink.report.reject(
                        config.max_examples,
                        row,
                        Some(line),
                        BadRowReason::Malformed(error.to_string()),
                    );
                }
                _ => return Err(csv_error(error)),
            },
        }
    }
    Ok(sink.finish())
}

/// The values of one column of a Parquet batch in the form a role needs.
enum KeyColumn<'a> {
    Utf8(&'a arrow_array::StringArray),
    LargeUtf8(&'a arrow_array::LargeStringArray),
    Int(Vec<Option<i128>>),
}

impl KeyColumn<'_> {
    fn field(&self, row: usize) -> Field<'_> {
        match self {
            KeyColumn::Utf8(a) if a.is_valid(row) => {
                Field::Text(std::borrow::Cow::Borrowed(a.value(row)))
            }
            KeyColumn::LargeUtf8(a) if a.is_valid(row) => {
                Field::Text(std::borrow::Cow::Borrowed(a.value(row)))
            }
            KeyColumn::Int(values) => match values[row] {
                Some(v) => Field::Text(std::borrow::Cow::Owned(v.to_string())),
                None => Field::Null,
            },
            _ => Field::Null,
        }
    }
}

/// Integer values (as i128, so u64 fits) of an integer, timestamp or date column.
fn integers(array: &ArrayRef) -> Option<Vec<Option<i128>>> {
    fn collect<T: arrow_array::ArrowPrimitiveType>(array: &ArrayRef) -> Vec<Option<i128>>
    where
        T::Native: Into<i128>,
    {
        array
            .as_primitive::<T>()
            .iter()
            .map(|v| v.map(Into::into))
            .collect()
    }
    Some(match array.data_type() {
        DataType::Int8 => collect::<Int8Type>(array),
        DataType::Int16 => collect::<Int16Type>(array),
        DataType::Int32 => collect::<Int32Type>(array),
        DataType::Int64 => collect::<Int64Type>(array),
        DataType::UInt8 => collect::<UInt8Type>(array),
        DataType::UInt16 => collect::<UInt16Type>(array),
        DataType::UInt32 => collect::<UInt32Type>(array),
        DataType::UInt64 => collect::<UInt64Type>(array),
        DataType::Date32 => collect::<Date32Type>(array),
        DataType::Date64 => collect::<Date64Type>(array),
        DataType::Timestamp(TimeUnit::Second, _) => collect::<TimestampSecondType>(array),
        DataType::Timestamp(TimeUnit::Millisecond, _) => collect::<TimestampMillisecondType>(array),
        DataType::Timestamp(TimeUnit::Microsecond, _) => collect::<TimestampMicrosecondType>(array),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => collect::<TimestampNanosecondType>(array),
        _ => return None,
    })
}

fn key_column<'a>(
    path: &Path,
    name: &str,
    array: &'a ArrayRef,
    role: &'static str,
) -> Result<KeyColumn<'a>> {
    let unsupported = || Error::UnsupportedColumnType {
        path: path.to_path_buf(),
        column: name.to_owned(),
        data_type: array.data_type().to_string(),
        role,
    };
    match array.data_type() {
        DataType::Utf8 => Ok(KeyColumn::Utf8(array.as_string::<i32>())),
        DataType::LargeUtf8 => Ok(KeyColumn::LargeUtf8(array.as_string::<i64>())),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => integers(array).map(KeyColumn::Int).ok_or_else(unsupported),
        _ => Err(unsupported()),
    }
}

/// Imports a Parquet file, reading only the mapped columns.
pub fn import_parquet(
    path: &Path,
    config: &ImportConfig,
) -> Result<(InteractionLog, ImportReport)> {
    config.validate()?;
    let parquet_error = |e: parquet::errors::ParquetError| Error::Parquet {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
    let schema = builder.schema().clone();
    let columns = &config.columns;
    let mut names = vec![
        columns.user.clone(),
        columns.item.clone(),
        columns.timestamp.clone(),
    ];
    if let Some(event) = &columns.event {
        names.push(event.column.clone());
    }
    let mut roots = Vec::new();
    for name in &names {
        let index = schema.index_of(name).map_err(|_| Error::MissingColumn {
            path: path.to_path_buf(),
            column: name.clone(),
            available: schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        roots.push(index);
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(8_192)
        .build()
        .map_err(parquet_error)?;
    let mut sink = RowSink {
        config,
        builder: LogBuilder::new(),
        report: ImportReport::default(),
    };
    let mut row = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| Error::Parquet {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let column = |name: &str| -> Result<&ArrayRef> {
            batch
                .column_by_name(name)
                .ok_or_else(|| Error::MissingColumn {
                    path: path.to_path_buf(),
                    column: name.to_owned(),
                    available: String::new(),
                })
        };
        let user = key_column(path, &columns.user, column(&columns.user)?, "user")?;
        let item = key_column(path, &columns.item, column(&columns.item)?, "item")?;
        let ts_array = column(&columns.timestamp)?;
        let timestamps = integers(ts_array).ok_or_else(|| Error::UnsupportedColumnType {
            path: path.to_path_buf(),
            column: columns.timestamp.clone(),
            data_type: ts_array.data_type().to_string(),
            role: "timestamp",
        })?;
        let event = match &columns.event {
            Some(filter) => Some(key_column(
                path,
                &filter.column,
                column(&filter.column)?,
                "event",
            )?),
            None => None,
        };
        for (r, &value) in timestamps.iter().enumerate() {
            row += 1;
            let timestamp = match value {
                Some(v) => i64::try_from(v)
                    .map_err(|_| Field::Text(std::borrow::Cow::Owned(v.to_string()))),
                None => Err(Field::Null),
            };
            sink.accept(
                row,
                None,
                user.field(r),
                item.field(r),
                timestamp,
                event.as_ref().map(|e| e.field(r)),
            );
        }
    }
    Ok(sink.finish())
}

//! Entity tables and ground truth: small flat serde rows as Parquet (schema traced from
//! the row type by `serde_arrow`) or JSON Lines, chosen by the file extension.

use crate::error::{IngestError, Result};
use crate::jsonl::{read_jsonl_rows, write_jsonl_rows};
use crate::parquet_events::{check_metadata, open_parquet, writer_properties};
use crate::source::EventFormat;
use arrow_schema::FieldRef;
use liverank_types::TABLE_FORMAT_VERSION;
use parquet::arrow::ArrowWriter;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_arrow::schema::{SchemaLike, TracingOptions};
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::sync::Arc;

const TABLE_BATCH_ROWS: usize = 65_536;

fn tracing() -> TracingOptions {
    TracingOptions::default()
        .enums_without_data_as_strings(true)
        .allow_null_fields(true)
}

/// Writes `rows` as table `name` to `path` (`.parquet` or `.jsonl`).
pub fn write_table<T: Serialize + DeserializeOwned>(
    path: &Path,
    name: &str,
    rows: &[T],
) -> Result<()> {
    let format = EventFormat::from_path(path)?;
    let file = File::create(path).map_err(|e| IngestError::io(path, e))?;
    let encode = |e: &dyn std::fmt::Display| IngestError::Encode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    match format {
        EventFormat::Jsonl => write_jsonl_rows(BufWriter::new(file), path, rows),
        EventFormat::Parquet => {
            let fields = Vec::<FieldRef>::from_type::<T>(tracing()).map_err(|e| encode(&e))?;
            let schema = Arc::new(arrow_schema::Schema::new(fields.clone()));
            let props = writer_properties(name, TABLE_FORMAT_VERSION, 1 << 20);
            let mut writer = ArrowWriter::try_new(BufWriter::new(file), schema, Some(props))
                .map_err(|e| encode(&e))?;
            for chunk in rows.chunks(TABLE_BATCH_ROWS) {
                let batch =
                    serde_arrow::to_record_batch(&fields, &chunk).map_err(|e| encode(&e))?;
                writer.write(&batch).map_err(|e| encode(&e))?;
            }
            writer.close().map_err(|e| encode(&e))?;
            Ok(())
        }
    }
}

/// Reads a whole table written by [`write_table`] (tables are small; events are streamed).
pub fn read_table<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    match EventFormat::from_path(path)? {
        EventFormat::Jsonl => {
            let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
            read_jsonl_rows(BufReader::new(file), path)
        }
        EventFormat::Parquet => {
            let builder = open_parquet(path)?;
            let kind = builder
                .metadata()
                .file_metadata()
                .key_value_metadata()
                .and_then(|kv| {
                    kv.iter()
                        .find(|k| k.key == crate::parquet_events::FORMAT_KEY)
                })
                .and_then(|k| k.value.clone())
                .unwrap_or_default();
            check_metadata(&builder, path, &kind, TABLE_FORMAT_VERSION)?;
            let reader = builder.build().map_err(|e| IngestError::Corrupt {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            let mut rows = Vec::new();
            for batch in reader {
                let batch = batch.map_err(|e| IngestError::Corrupt {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?;
                let mut part: Vec<T> =
                    serde_arrow::from_record_batch(&batch).map_err(|e| IngestError::Schema {
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    })?;
                rows.append(&mut part);
            }
            Ok(rows)
        }
    }
}

//! Training samples on disk: JSON Lines (one `Sample` object per line) or Parquet with an
//! explicit, versioned, flat schema that a trainer in any language can read.
//!
//! Parquet columns: identity and timing, one `Int8` label column per task (null = masked:
//! the sample says nothing about that task), then the features; the statistic sequence
//! and the product sequence are flattened `List` columns (`stats_len` × 12 values, and
//! `[product, c1, c2, c3]` × products).

use crate::error::{BoxError, IngestError, Result};
use crate::parquet_events::{check_metadata, open_parquet, writer_properties_builder};
use arrow_array::builder::{
    Int8Builder, Int64Builder, ListBuilder, StringBuilder, UInt8Builder, UInt32Builder,
    UInt64Builder,
};
use arrow_array::{
    Array, ArrayRef, Int8Array, Int64Array, ListArray, RecordBatch, StringArray, UInt8Array,
    UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use liverank_types::{
    AuthorId, CategoryId, EventTime, ExposureFeatures, LabelMask, LiveId, Policy, RequestId,
    SAMPLE_FORMAT_VERSION, Sample, SampleKind, Task, UserId,
};
use parquet::arrow::ArrowWriter;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const LABEL_COLUMNS: [&str; 7] = [
    "label_click",
    "label_long_view",
    "label_like",
    "label_comment",
    "label_follow",
    "label_gift",
    "label_purchase",
];
const PROFILE_COLUMNS: [&str; 5] = [
    "gender",
    "age_bucket",
    "city_tier",
    "activity_level",
    "payer_level",
];

/// The Arrow schema of a samples file, version [`SAMPLE_FORMAT_VERSION`].
pub fn sample_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("sample_id", DataType::UInt64, false),
        Field::new("policy", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("seq", DataType::UInt32, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("request_id", DataType::UInt64, false),
        Field::new("live", DataType::UInt64, false),
        Field::new("user", DataType::UInt64, false),
        Field::new("author", DataType::UInt64, true),
        Field::new("exposure_ts", DataType::Int64, false),
        Field::new("category", DataType::UInt32, true),
    ];
    fields.extend(
        LABEL_COLUMNS
            .iter()
            .map(|n| Field::new(*n, DataType::Int8, true)),
    );
    fields.extend(
        PROFILE_COLUMNS
            .iter()
            .map(|n| Field::new(*n, DataType::UInt8, true)),
    );
    fields.extend([
        Field::new("author_type", DataType::Utf8, true),
        Field::new("fans_bucket", DataType::UInt8, true),
        Field::new("position", DataType::UInt32, false),
        Field::new("hour", DataType::UInt8, false),
        Field::new("live_age_ms", DataType::UInt64, false),
        Field::new("stats_len", DataType::UInt32, false),
        Field::new(
            "stats",
            DataType::List(Arc::new(Field::new("item", DataType::UInt32, true))),
            false,
        ),
        Field::new(
            "products",
            DataType::List(Arc::new(Field::new("item", DataType::UInt64, true))),
            false,
        ),
    ]);
    Arc::new(Schema::new(fields))
}

fn kind_str(k: SampleKind) -> &'static str {
    match k {
        SampleKind::Flush => "flush",
        SampleKind::Close => "close",
        SampleKind::Fast => "fast",
        SampleKind::Slow => "slow",
    }
}

#[derive(Debug, Default)]
struct SampleColumns {
    sample_id: UInt64Builder,
    policy: StringBuilder,
    kind: StringBuilder,
    seq: UInt32Builder,
    ts: Int64Builder,
    request_id: UInt64Builder,
    live: UInt64Builder,
    user: UInt64Builder,
    author: UInt64Builder,
    exposure_ts: Int64Builder,
    category: UInt32Builder,
    labels: [Int8Builder; 7],
    profile: [UInt8Builder; 5],
    author_type: StringBuilder,
    fans_bucket: UInt8Builder,
    position: UInt32Builder,
    hour: UInt8Builder,
    live_age_ms: UInt64Builder,
    stats_len: UInt32Builder,
    stats: ListBuilder<UInt32Builder>,
    products: ListBuilder<UInt64Builder>,
}

impl SampleColumns {
    fn push(&mut self, s: &Sample) {
        self.sample_id.append_value(s.sample_id);
        self.policy.append_value(s.policy.as_str());
        self.kind.append_value(kind_str(s.kind));
        self.seq.append_value(s.seq);
        self.ts.append_value(s.ts.0);
        self.request_id.append_value(s.request_id.0);
        self.live.append_value(s.live.0);
        self.user.append_value(s.user.0);
        self.author.append_option(s.author.map(|a| a.0));
        self.exposure_ts.append_value(s.exposure_ts.0);
        self.category.append_option(s.category.map(|c| c.0));
        for (b, task) in self.labels.iter_mut().zip(Task::ALL) {
            b.append_option(s.labels.get(task).map(i8::from));
        }
        let f = &s.features;
        for (i, b) in self.profile.iter_mut().enumerate() {
            b.append_option(f.user_profile.map(|p| p[i]));
        }
        self.author_type.append_option(f.author_type.as_deref());
        self.fans_bucket.append_option(f.fans_bucket);
        self.position.append_value(f.position);
        self.hour.append_value(f.hour);
        self.live_age_ms.append_value(f.live_age_ms);
        self.stats_len.append_value(f.stats_len);
        self.stats.values().append_slice(&f.stats);
        self.stats.append(true);
        for p in &f.products {
            self.products.values().append_slice(p);
        }
        self.products.append(true);
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.sample_id.finish()),
            Arc::new(self.policy.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.seq.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.request_id.finish()),
            Arc::new(self.live.finish()),
            Arc::new(self.user.finish()),
            Arc::new(self.author.finish()),
            Arc::new(self.exposure_ts.finish()),
            Arc::new(self.category.finish()),
        ];
        cols.extend(
            self.labels
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        cols.extend(
            self.profile
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        cols.extend([
            Arc::new(self.author_type.finish()) as ArrayRef,
            Arc::new(self.fans_bucket.finish()),
            Arc::new(self.position.finish()),
            Arc::new(self.hour.finish()),
            Arc::new(self.live_age_ms.finish()),
            Arc::new(self.stats_len.finish()),
            Arc::new(self.stats.finish()),
            Arc::new(self.products.finish()),
        ]);
        cols
    }
}

/// Writes samples to a Parquet file in batches.
pub struct ParquetSampleWriter {
    writer: ArrowWriter<BufWriter<File>>,
    columns: SampleColumns,
    rows: usize,
    schema: SchemaRef,
    path: PathBuf,
}

impl std::fmt::Debug for ParquetSampleWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSampleWriter")
            .field("path", &self.path)
            .finish()
    }
}

const SAMPLE_BATCH_ROWS: usize = 2_048;

impl ParquetSampleWriter {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let file = File::create(path).map_err(|e| IngestError::io(path, e))?;
        let schema = sample_schema();
        let props = writer_properties_builder("samples", SAMPLE_FORMAT_VERSION, 1 << 20)
            .set_dictionary_enabled(false)
            .set_statistics_enabled(parquet::file::properties::EnabledStatistics::None)
            .build();
        let writer = ArrowWriter::try_new(BufWriter::new(file), schema.clone(), Some(props))
            .map_err(|e| IngestError::encode(path.to_path_buf(), e))?;
        Ok(Self {
            writer,
            columns: SampleColumns::default(),
            rows: 0,
            schema,
            path: path.to_path_buf(),
        })
    }

    /// Appends one sample.
    pub fn write(&mut self, sample: &Sample) -> Result<()> {
        self.columns.push(sample);
        self.rows += 1;
        if self.rows >= SAMPLE_BATCH_ROWS {
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

    /// Writes the last batch and the footer, and syncs the file.
    pub fn finish(mut self) -> Result<()> {
        self.flush_batch()?;
        let path = self.path.clone();
        let out = self
            .writer
            .into_inner()
            .map_err(|e| IngestError::encode(path.clone(), e))?;
        let file = out
            .into_inner()
            .map_err(|e| IngestError::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| IngestError::io(&path, e))
    }
}

fn col<'a, T: 'static>(batch: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| IngestError::Schema {
            path: path.to_path_buf(),
            reason: format!("missing or mistyped column `{name}`"),
            source: None,
        })
}

/// Reads a whole samples Parquet file (tests, small evaluation sets).
pub fn read_parquet_samples(path: &Path) -> Result<Vec<Sample>> {
    let builder = open_parquet(path)?;
    check_metadata(&builder, path, "samples", SAMPLE_FORMAT_VERSION)?;
    let reader = builder
        .build()
        .map_err(|e| IngestError::corrupt(path.to_path_buf(), e))?;
    let mut out = Vec::new();
    for batch in reader {
        let b = batch.map_err(|e| IngestError::corrupt(path.to_path_buf(), e))?;
        let u64c = |n: &str| col::<UInt64Array>(&b, n, path);
        let (sample_id, request_id, live, user, author, live_age) = (
            u64c("sample_id")?,
            u64c("request_id")?,
            u64c("live")?,
            u64c("user")?,
            u64c("author")?,
            u64c("live_age_ms")?,
        );
        let policy = col::<StringArray>(&b, "policy", path)?;
        let kind = col::<StringArray>(&b, "kind", path)?;
        let seq = col::<UInt32Array>(&b, "seq", path)?;
        let ts = col::<Int64Array>(&b, "ts", path)?;
        let exposure_ts = col::<Int64Array>(&b, "exposure_ts", path)?;
        let category = col::<UInt32Array>(&b, "category", path)?;
        let labels: Vec<&Int8Array> = LABEL_COLUMNS
            .iter()
            .map(|n| col::<Int8Array>(&b, n, path))
            .collect::<Result<_>>()?;
        let profile: Vec<&UInt8Array> = PROFILE_COLUMNS
            .iter()
            .map(|n| col::<UInt8Array>(&b, n, path))
            .collect::<Result<_>>()?;
        let author_type = col::<StringArray>(&b, "author_type", path)?;
        let fans = col::<UInt8Array>(&b, "fans_bucket", path)?;
        let position = col::<UInt32Array>(&b, "position", path)?;
        let hour = col::<UInt8Array>(&b, "hour", path)?;
        let stats_len = col::<UInt32Array>(&b, "stats_len", path)?;
        let stats = col::<ListArray>(&b, "stats", path)?;
        let products = col::<ListArray>(&b, "products", path)?;
        let bad = |reason: String| IngestError::Schema {
            path: path.to_path_buf(),
            reason,
            source: None,
        };
        for i in 0..b.num_rows() {
            let mut lm = LabelMask::default();
            for (a, task) in labels.iter().zip(Task::ALL) {
                if a.is_valid(i) {
                    lm.set(task, a.value(i) != 0);
                }
            }
            let user_profile = profile[0].is_valid(i).then(|| {
                let mut p = [0u8; 5];
                for (k, a) in profile.iter().enumerate() {
                    p[k] = a.value(i);
                }
                p
            });
            let s = stats.value(i);
            let s = s
                .as_any()
                .downcast_ref::<UInt32Array>()
                .ok_or_else(|| bad("stats items are not UInt32".into()))?;
            let pr = products.value(i);
            let pr = pr
                .as_any()
                .downcast_ref::<UInt64Array>()
                .ok_or_else(|| bad("products items are not UInt64".into()))?;
            let flat: Vec<u64> = pr.values().to_vec();
            let features = ExposureFeatures {
                user_profile,
                author_type: author_type
                    .is_valid(i)
                    .then(|| author_type.value(i).to_string()),
                fans_bucket: fans.is_valid(i).then(|| fans.value(i)),
                position: position.value(i),
                hour: hour.value(i),
                live_age_ms: live_age.value(i),
                stats: s.values().to_vec(),
                stats_len: stats_len.value(i),
                products: flat
                    .chunks_exact(4)
                    .map(|c| [c[0], c[1], c[2], c[3]])
                    .collect(),
            };
            let kind = match kind.value(i) {
                "flush" => SampleKind::Flush,
                "close" => SampleKind::Close,
                "fast" => SampleKind::Fast,
                "slow" => SampleKind::Slow,
                other => return Err(bad(format!("row {i}: unknown kind `{other}`"))),
            };
            out.push(Sample {
                sample_id: sample_id.value(i),
                policy: policy
                    .value(i)
                    .parse::<Policy>()
                    .map_err(|e| bad(format!("row {i}: {e}")))?,
                kind,
                seq: seq.value(i),
                ts: EventTime(ts.value(i)),
                request_id: RequestId(request_id.value(i)),
                live: LiveId(live.value(i)),
                user: UserId(user.value(i)),
                author: author.is_valid(i).then(|| AuthorId(author.value(i))),
                exposure_ts: EventTime(exposure_ts.value(i)),
                category: category.is_valid(i).then(|| CategoryId(category.value(i))),
                labels: lm,
                features: Arc::new(features),
            });
        }
    }
    Ok(out)
}

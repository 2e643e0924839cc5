//! The simulator's on-disk layout: one directory holding the event stream, the entity
//! tables, the ground truth and a manifest.
//!
//! ```text
//! <out>/events.parquet | events.jsonl   the event stream, in delivery order
//! <out>/users.* authors.* lives.* videos.* products.*   entity tables (same format)
//! <out>/truth_highlights.*              every room's highlight intervals
//! <out>/truth_exposures.*               each live exposure's true click probability
//! <out>/manifest.json                   config, counts, format versions, file list
//! ```

use crate::behavior::TruthExposure;
use crate::realism::TruthHighlight;
use crate::simulation::{EventSink, MalformedRecord, Progress, SimSummary, Simulation};
use liverank_ingest::{EventFormat, EventWriter, IngestError, write_table};
use liverank_types::{EVENT_FORMAT_VERSION, Event, TABLE_FORMAT_VERSION};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of the directory layout and manifest.
pub const LAYOUT_VERSION: u32 = 1;

/// What `manifest.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version.
    pub layout_version: u32,
    /// Event wire format version.
    pub event_format_version: u32,
    /// Entity table format version.
    pub table_format_version: u32,
    /// Producer and its version.
    pub generator: String,
    /// The exact configuration; rerunning it reproduces the directory byte for byte.
    pub config: crate::SimConfig,
    /// Counts.
    pub summary: serde_json::Value,
    /// File names relative to the directory.
    pub files: Vec<String>,
}

/// Errors writing a simulation to disk.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Creating the directory or writing the manifest failed.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// An ingest writer failed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, OutputError>;

struct FileSink {
    writer: EventWriter,
    format: EventFormat,
    dropped_malformed: u64,
}

impl EventSink for FileSink {
    type Error = IngestError;
    fn event(&mut self, event: &Event) -> std::result::Result<(), IngestError> {
        self.writer.write(event)
    }
    fn malformed(&mut self, record: &MalformedRecord) -> std::result::Result<(), IngestError> {
        match (self.format, &record.record) {
            (EventFormat::Jsonl, _) => self.writer.write_raw_line(&record.json_line),
            (EventFormat::Parquet, Some(row)) => self.writer.write_record(row),
            // Broken JSON has no columnar form; it is counted in the manifest instead.
            (EventFormat::Parquet, None) => {
                self.dropped_malformed += 1;
                Ok(())
            }
        }
    }
}

/// Runs `sim` and writes the whole directory. Returns the run's summary.
pub fn write_simulation(
    sim: &Simulation,
    dir: &Path,
    format: EventFormat,
    progress: impl FnMut(Progress),
) -> Result<SimSummary> {
    std::fs::create_dir_all(dir).map_err(|source| OutputError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let ext = format.extension();
    let name = |stem: &str| format!("{stem}.{ext}");
    let events_path = dir.join(name("events"));
    let mut sink = FileSink {
        writer: EventWriter::create(&events_path, format)?,
        format,
        dropped_malformed: 0,
    };
    let (truth, summary) = sim.run(&mut sink, progress).map_err(|e| match e {
        crate::simulation::SimError::Config(c) => OutputError::Config(c),
        crate::simulation::SimError::Sink(s) => OutputError::Ingest(s),
    })?;
    sink.writer.finish()?;

    let world = sim.world();
    let users: Vec<_> = world.users.iter().map(|u| u.profile.clone()).collect();
    let authors: Vec<_> = world.authors.iter().map(|a| a.row.clone()).collect();
    let lives: Vec<_> = world.lives.iter().map(|l| l.row.clone()).collect();
    write_table(&dir.join(name("users")), "users", &users)?;
    write_table(&dir.join(name("authors")), "authors", &authors)?;
    write_table(&dir.join(name("lives")), "lives", &lives)?;
    write_table(&dir.join(name("videos")), "videos", &world.videos)?;
    write_table(&dir.join(name("products")), "products", &world.products)?;
    let highlights: Vec<TruthHighlight> = world.truth_highlights();
    write_table(
        &dir.join(name("truth_highlights")),
        "truth_highlights",
        &highlights,
    )?;
    let truth: Vec<TruthExposure> = truth;
    write_table(
        &dir.join(name("truth_exposures")),
        "truth_exposures",
        &truth,
    )?;

    let mut summary_json = serde_json::to_value(&summary).unwrap_or_default();
    // Wall time differs run to run; the manifest must not, so it is left out.
    if let Some(map) = summary_json.as_object_mut() {
        map.remove("seconds");
        map.insert(
            "malformed_not_representable_in_parquet".into(),
            sink.dropped_malformed.into(),
        );
    }
    let manifest = Manifest {
        layout_version: LAYOUT_VERSION,
        event_format_version: EVENT_FORMAT_VERSION,
        table_format_version: TABLE_FORMAT_VERSION,
        generator: format!("liverank-sim {}", env!("CARGO_PKG_VERSION")),
        config: sim.config().clone(),
        summary: summary_json,
        files: [
            "events",
            "users",
            "authors",
            "lives",
            "videos",
            "products",
            "truth_highlights",
            "truth_exposures",
        ]
        .iter()
        .map(|s| name(s))
        .collect(),
    };
    let manifest_path = dir.join("manifest.json");
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    std::fs::write(&manifest_path, text + "\n").map_err(|source| OutputError::Io {
        path: manifest_path,
        source,
    })?;
    Ok(summary)
}

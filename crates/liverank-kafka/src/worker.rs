//! The distributed sample engine: a worker runs one [`SampleJob`] per events partition
//! it is given (the same engine code as the file path, behind the job's traits), and
//! `ingest` pushes an event file into the events topic.
//!
//! Per partition `p` the worker keeps `STATE/p<p>/checkpoint.bin` (the engine, the input
//! offset, the output offset) and `STATE/p<p>/dead_letters.jsonl`. A worker killed
//! anywhere and restarted with the same state directory continues exactly (see
//! [`crate::sink`] for the dedup rule); a partition can move to another worker with its
//! state directory.

use crate::client::{ensure_topics, event_partitions};
use crate::config::KafkaConfig;
use crate::error::{KafkaError, Result};
use crate::sink::{CheckedProducer, KafkaSampleSink};
use crate::source::{End, KafkaEventSource};
use liverank_ingest::{DeadLetterWriter, JsonlDeadLetterSink, ReadError, open_events};
use liverank_samples::job::FileCheckpoints;
use liverank_samples::{
    EngineCounters, FeatureContext, JobOptions, JobResult, SampleConfig, SampleJob,
};
use liverank_types::{Event, EventRecord};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerSpec {
    /// Broker and topics.
    pub kafka: KafkaConfig,
    /// The engine's settings (the same for every partition and every restart).
    pub samples: SampleConfig,
    /// Entity tables for features.
    pub context: Arc<FeatureContext>,
    /// The events partitions of this worker.
    pub partitions: Vec<i32>,
    /// Checkpoints and dead letters, one subdirectory per partition.
    pub state_dir: PathBuf,
    /// Checkpoint and progress cadence.
    pub options: JobOptions,
    /// Stop at the end seen at start, or follow.
    pub end: End,
    /// Leave the feature block out of the samples.
    pub strip_features: bool,
    /// A following worker's partitions end when this is set.
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
}

/// One partition's finished job.
#[derive(Debug)]
pub struct PartitionResult {
    /// The partition.
    pub partition: i32,
    /// Samples the restored job found already in the output and skipped (the dedup rule).
    pub deduplicated: u64,
    /// The job's result.
    pub job: JobResult,
}

/// The state directory of a partition.
pub fn partition_dir(state_dir: &Path, partition: i32) -> PathBuf {
    state_dir.join(format!("p{partition}"))
}

/// Runs the job of one partition to its end.
pub fn run_partition(
    spec: &WorkerSpec,
    partition: i32,
    progress: impl FnMut(u64, &EngineCounters),
) -> Result<PartitionResult> {
    let dir = partition_dir(&spec.state_dir, partition);
    std::fs::create_dir_all(&dir).map_err(|source| KafkaError::Io {
        path: dir.clone(),
        source,
    })?;
    let mut source = KafkaEventSource::open(&spec.kafka, partition, spec.end)?;
    if let Some(stop) = &spec.stop {
        source = source.stop_on(stop.clone());
    }
    let sink = KafkaSampleSink::new(&spec.kafka, partition, spec.strip_features)?
        .stamp_with(source.arrival());
    let deduplicated = sink.deduplicated();
    let dead = JsonlDeadLetterSink::new(
        dir.join("dead_letters.jsonl"),
        format!("kafka:{}/{partition}", spec.kafka.events_topic),
    );
    let checkpoints = FileCheckpoints::new(dir.join("checkpoint.bin"));
    let job = SampleJob::open(
        spec.samples.clone(),
        spec.context.clone(),
        source,
        sink,
        dead,
        checkpoints,
        spec.options,
    )?;
    let job = job.run(progress)?;
    Ok(PartitionResult {
        partition,
        deduplicated: deduplicated.load(std::sync::atomic::Ordering::Relaxed),
        job,
    })
}

/// Runs every partition of the worker, each on its own thread, to its end.
/// Creates the topics first if missing.
pub fn run_worker(spec: &WorkerSpec) -> Result<Vec<PartitionResult>> {
    ensure_topics(&spec.kafka)?;
    let results: Vec<Result<PartitionResult>> = std::thread::scope(|scope| {
        let handles: Vec<_> = spec
            .partitions
            .iter()
            .map(|&p| scope.spawn(move || run_partition(spec, p, |_, _| {})))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(KafkaError::Delivery("a partition thread panicked".into()))
                })
            })
            .collect()
    });
    results.into_iter().collect()
}

/// What `ingest` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Valid events read from the file.
    pub events: u64,
    /// Messages produced (room events count once per partition).
    pub messages: u64,
    /// Records of the file rejected (written to the dead letters).
    pub rejected: u64,
}

/// Produces events to the events topic: each to its user's partition, room events to
/// every partition, as JSON Lines records keyed by user.
#[derive(Debug)]
pub struct EventProducer {
    config: KafkaConfig,
    producer: CheckedProducer,
    buf: Vec<u8>,
    report: IngestReport,
}

impl EventProducer {
    /// A producer to the settings' events topic (which must exist).
    pub fn new(config: &KafkaConfig) -> Result<Self> {
        Ok(Self {
            config: config.clone(),
            producer: CheckedProducer::new(config)?,
            buf: Vec::with_capacity(512),
            report: IngestReport::default(),
        })
    }

    /// Queues one event.
    pub fn send(&mut self, event: &Event) -> Result<()> {
        self.report.events += 1;
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, &EventRecord::from(event)).map_err(|source| {
            KafkaError::Encode {
                what: "an event",
                source,
            }
        })?;
        let key = event.user().map(|u| u.0.to_string()).unwrap_or_default();
        for p in event_partitions(event, self.config.partitions) {
            self.producer.send(
                &self.config.events_topic,
                p,
                key.as_bytes(),
                &self.buf,
                None,
                None,
            )?;
            self.report.messages += 1;
        }
        Ok(())
    }

    /// Waits until everything is acknowledged; what was sent.
    pub fn flush(&mut self) -> Result<IngestReport> {
        self.producer.flush()?;
        Ok(self.report.clone())
    }
}

/// Pushes the events of `path` (either format) into the events topic, each to its
/// user's partition and room events to every partition, in file order; creates the
/// topics if missing. Rejected records go to `dead_letters`. Returns once every message
/// is acknowledged.
pub fn ingest(config: &KafkaConfig, path: &Path, dead_letters: &Path) -> Result<IngestReport> {
    ensure_topics(config)?;
    let reader = open_events(path)?;
    let mut dead: Option<DeadLetterWriter> = None;
    let mut producer = EventProducer::new(config)?;
    let mut rejected = 0;
    for item in reader {
        match item {
            Ok(event) => producer.send(&event)?,
            Err(ReadError::Record(r)) => {
                rejected += 1;
                let writer = match &mut dead {
                    Some(w) => w,
                    None => dead.insert(DeadLetterWriter::create(dead_letters)?),
                };
                writer.record(&r)?;
            }
            Err(ReadError::Fatal(e)) => return Err(e.into()),
        }
    }
    let report = producer.flush()?;
    if let Some(w) = dead {
        w.finish()?;
    }
    Ok(IngestReport { rejected, ..report })
}

//! Distributed mode (SPEC §9): the sample job over Kafka. Events come from a topic
//! partitioned by user; each partition is one [`liverank_samples::SampleJob`] (the same
//! engine code as the file path) whose samples go to the same partition of a samples
//! topic. Manual partition assignment, no consumer group: the input offset and the output
//! offset live in the job's own checkpoint, and a restart neither loses nor duplicates
//! (the dedup rule by `sample_id` is in [`sink`]).
//!
//! Main items: [`KafkaConfig`] (`[kafka]`), [`KafkaEventSource`], [`KafkaSampleSink`],
//! [`run_worker`] / [`run_partition`] (a worker over some partitions), [`ingest`] (an event
//! file into the events topic), [`read_samples`] (a samples partition back, for tests and
//! tools).
//!
//! Key decision (docs/decisions.md, kafka-1): every partition runs its own engine, so room
//! statistics and the watermark are per partition; with one partition the samples are
//! exactly the file path's, and any assignment of partitions to workers gives the same
//! samples.

pub mod bench;
pub mod client;
pub mod config;
pub mod error;
pub mod sink;
pub mod source;
pub mod worker;

pub use client::{ensure_topics, event_partitions, user_partition};
pub use config::{KafkaConfig, KafkaConfigError};
pub use error::{KafkaError, Result};
pub use sink::{KafkaSampleSink, read_samples};
pub use source::{End, KafkaEventSource};
pub use worker::{
    IngestReport, PartitionResult, WorkerSpec, ingest, partition_dir, run_partition, run_worker,
};

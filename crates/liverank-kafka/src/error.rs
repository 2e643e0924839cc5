//! The crate's one error type.

/// A failure of the Kafka I/O.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The client or the broker failed (connection, request, timeout).
    #[error("kafka {what}: {source}")]
    Client {
        /// What was being done.
        what: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The broker refused to create a topic.
    #[error("creating topic {topic}: {reason}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's reason.
        reason: String,
    },
    /// A topic exists with another partition count than the settings'.
    #[error("topic {topic} has {actual} partitions, the settings say {expected}")]
    Partitions {
        /// The topic.
        topic: String,
        /// Partitions found.
        actual: usize,
        /// `kafka.partitions`.
        expected: u32,
    },
    /// The input partition does not hold the records the job needs.
    #[error("{topic}/{partition}: {reason}")]
    Input {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Why.
        reason: String,
    },
    /// The output partition does not continue the job's own output (another writer, a
    /// recreated topic, or different settings): the dedup rule cannot apply.
    #[error("{topic}/{partition} at offset {offset}: {reason}")]
    Output {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset in question.
        offset: i64,
        /// Why.
        reason: String,
    },
    /// The broker did not acknowledge what was produced.
    #[error("delivery: {0}")]
    Delivery(String),
    /// The sample job stopped (source, sink, checkpoint).
    #[error(transparent)]
    Job(#[from] liverank_samples::JobError),
    /// The worker's state directory.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A sample or event could not be encoded.
    #[error("encoding {what}: {source}")]
    Encode {
        /// What.
        what: &'static str,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// Reading the events file failed.
    #[error(transparent)]
    Ingest(#[from] liverank_ingest::IngestError),
}

/// A result of this crate.
pub type Result<T> = std::result::Result<T, KafkaError>;

/// Wraps a client error with what was being done.
pub(crate) fn client(
    what: impl Into<String>,
) -> impl FnOnce(rdkafka::error::KafkaError) -> KafkaError {
    let what = what.into();
    move |source| KafkaError::Client { what, source }
}

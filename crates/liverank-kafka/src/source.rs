//! One partition of the events topic as the sample job's [`EventSource`]: record number
//! `n` is the message at offset `n`, so the job's `input_offset` is the Kafka offset to
//! resume from, kept in the job's own checkpoint (manual assignment, nothing committed to
//! the broker).

use crate::client::{batch_start, consumer, timeout, watermarks};
use crate::config::KafkaConfig;
use crate::error::{KafkaError, Result, client};
use liverank_ingest::jsonl::parse_event_line;
use liverank_ingest::{Position, RecordError, RecordErrorKind};
use liverank_samples::job::{EventSource, SourceItem};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// Where a source ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// At the partition's high watermark when the source was opened (a batch run).
    AtOpen,
    /// Never: follow the partition.
    Never,
}

/// A partition of the events topic, read from an offset.
pub struct KafkaEventSource {
    consumer: BaseConsumer,
    config: KafkaConfig,
    topic: String,
    partition: i32,
    next: i64,
    end: Option<i64>,
    assigned: bool,
    source_name: String,
    patience: Duration,
    arrival: Arc<AtomicI64>,
    stop: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for KafkaEventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaEventSource")
            .field("source", &self.source_name)
            .field("next", &self.next)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl KafkaEventSource {
    /// Opens partition `partition` of the events topic.
    pub fn open(config: &KafkaConfig, partition: i32, end: End) -> Result<Self> {
        let consumer = consumer(config)?;
        let topic = config.events_topic.clone();
        let (low, high) = watermarks(&consumer, &topic, partition, config)?;
        if low > 0 {
            return Err(KafkaError::Input {
                topic,
                partition,
                reason: format!(
                    "the partition starts at offset {low} (retention?): records are numbered from offset 0"
                ),
            });
        }
        Ok(Self {
            consumer,
            config: config.clone(),
            source_name: format!("kafka:{topic}/{partition}"),
            topic,
            partition,
            next: 0,
            end: (end == End::AtOpen).then_some(high),
            assigned: false,
            patience: timeout(config) * 3,
            arrival: Arc::default(),
            stop: None,
        })
    }

    /// The broker timestamp (ms) of the last record read, shared: the samples sink stamps
    /// each sample with the arrival of the record that released it.
    pub fn arrival(&self) -> Arc<AtomicI64> {
        self.arrival.clone()
    }

    /// A following source ends when `stop` is set (then the job finishes and checkpoints).
    pub fn stop_on(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// The offset the source stops at (`None`: it follows the partition).
    pub fn end(&self) -> Option<i64> {
        self.end
    }

    fn assign(&mut self) -> Result<()> {
        let from = if self.next == 0 {
            0
        } else {
            batch_start(&self.config, &self.topic, self.partition, self.next)?
        };
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&self.topic, self.partition, Offset::Offset(from))
            .map_err(client("building an assignment"))?;
        self.consumer
            .assign(&list)
            .map_err(client(format!("assigning {}", self.source_name)))?;
        self.assigned = true;
        Ok(())
    }

    fn input_error(&self, reason: String) -> KafkaError {
        KafkaError::Input {
            topic: self.topic.clone(),
            partition: self.partition,
            reason,
        }
    }
}

impl EventSource for KafkaEventSource {
    type Rejected = RecordError;
    type Error = KafkaError;

    fn seek(&mut self, offset: u64) -> Result<()> {
        self.next =
            i64::try_from(offset).map_err(|_| self.input_error("offset overflow".into()))?;
        if let Some(end) = self.end
            && self.next > end
        {
            return Err(self.input_error(format!(
                "the checkpoint is at offset {offset}, past the partition's end {end}"
            )));
        }
        self.assigned = false;
        Ok(())
    }

    fn next_item(&mut self) -> Result<Option<SourceItem<RecordError>>> {
        if self.end.is_some_and(|end| self.next >= end) {
            return Ok(None);
        }
        if !self.assigned {
            self.assign()?;
        }
        // A batch run waits at most `patience` for a record it knows exists.
        let started = Instant::now();
        let message = loop {
            match self.consumer.poll(Duration::from_millis(100)) {
                // Before the seek offset: the reader started at its batch's base.
                Some(Ok(m)) if m.offset() < self.next => {}
                Some(Ok(m)) => break m,
                Some(Err(e)) => return Err(client(format!("reading {}", self.source_name))(e)),
                None if self
                    .stop
                    .as_ref()
                    .is_some_and(|s| s.load(Ordering::Relaxed)) =>
                {
                    return Ok(None);
                }
                None if self.end.is_some() && started.elapsed() > self.patience => {
                    return Err(self.input_error(format!(
                        "no record at offset {} within {:?}",
                        self.next, self.patience
                    )));
                }
                None => {}
            }
        };
        let offset = message.offset();
        if offset != self.next {
            return Err(self.input_error(format!(
                "expected offset {}, got {offset} (compacted or transactional topics are not supported)",
                self.next
            )));
        }
        self.next += 1;
        if let Some(ts) = message.timestamp().to_millis() {
            self.arrival.store(ts, Ordering::Relaxed);
        }
        let row = u64::try_from(offset).unwrap_or_default();
        let rejected = |kind, reason: String, raw: Option<String>| {
            Ok(Some(SourceItem::Rejected(RecordError {
                source: self.source_name.clone(),
                position: Position::Row(row),
                kind,
                reason,
                raw,
            })))
        };
        let Some(payload) = message.payload() else {
            return rejected(RecordErrorKind::Malformed, "empty message".into(), None);
        };
        let text = match std::str::from_utf8(payload) {
            Ok(t) => t,
            Err(e) => {
                let raw = String::from_utf8_lossy(payload).into_owned();
                return rejected(
                    RecordErrorKind::Malformed,
                    format!("invalid UTF-8: {e}"),
                    Some(raw),
                );
            }
        };
        match parse_event_line(text) {
            Ok(event) => Ok(Some(SourceItem::Event(event))),
            Err((kind, reason)) => rejected(kind, reason, Some(text.to_string())),
        }
    }
}

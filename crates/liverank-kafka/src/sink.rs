//! The samples topic as the sample job's [`SampleSink`], and the producer plumbing both
//! ends share.
//!
//! Partition `p` of the samples topic is written only by the job of events partition
//! `p`, with an idempotent producer, so its messages are exactly that job's samples in
//! the order the engine built them (delivery reports are checked against the offsets
//! the sink expects). A position is the next output offset after a flush.
//!
//! **Dedup rule.** Kafka cannot be cut back, so a job killed between a flush and the
//! next checkpoint has samples in the topic that the restored job builds again. On
//! `restore(p)` the sink reads the `sample_id`s (message keys) of offsets `p..high`;
//! the restored engine is deterministic, so it rebuilds exactly those samples first,
//! in order: each is checked against the stored `sample_id` at its offset and skipped
//! instead of produced. A mismatch is an error (the output is not this job's), never a
//! silent duplicate. Without a checkpoint the output starts at the partition's low
//! watermark: a fresh job needs a fresh (or this job's own) output partition.
//!
//! A sample's message timestamp is the broker timestamp of the event record whose arrival
//! released it ([`KafkaSampleSink::stamp_with`]): `now - timestamp` at a consumer is the
//! event → sample latency without the labelling policy's own wait.

use crate::client::{batch_start, consumer, producer_config, timeout, watermarks};
use crate::config::KafkaConfig;
use crate::error::{KafkaError, Result, client};
use liverank_samples::job::SampleSink;
use liverank_types::Sample;
use rdkafka::client::ClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Delivery opaque meaning "no offset to check".
const UNCHECKED: usize = usize::MAX;

/// What the delivery reports said.
#[derive(Debug, Default)]
struct Deliveries {
    delivered: u64,
    failure: Option<String>,
}

/// A producer context that counts deliveries and keeps the first failure, including a
/// message that landed at another offset than expected.
#[derive(Debug, Default)]
pub struct Checked {
    state: Mutex<Deliveries>,
}

impl ClientContext for Checked {}

impl ProducerContext for Checked {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, expected: usize) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        match result {
            Ok(m) if expected == UNCHECKED || m.offset() as usize == expected => {
                state.delivered += 1;
            }
            Ok(m) => {
                state.failure.get_or_insert(format!(
                    "a message meant for offset {expected} landed at {} (another writer?)",
                    m.offset()
                ));
            }
            Err((e, _)) => {
                state.failure.get_or_insert(e.to_string());
            }
        }
    }
}

/// An idempotent producer whose deliveries are checked.
pub struct CheckedProducer {
    producer: BaseProducer<Checked>,
    sent: u64,
    flush_timeout: Duration,
}

impl std::fmt::Debug for CheckedProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedProducer")
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl CheckedProducer {
    /// A producer to the settings' brokers.
    pub fn new(config: &KafkaConfig) -> Result<Self> {
        let producer = producer_config(config)
            .create_with_context(Checked::default())
            .map_err(client("creating a producer"))?;
        Ok(Self {
            producer,
            sent: 0,
            flush_timeout: timeout(config) * 3,
        })
    }

    /// Queues one message for `partition` (waiting while the local queue is full);
    /// `expected` is the offset it must land at, or `None`.
    pub fn send(
        &mut self,
        topic: &str,
        partition: i32,
        key: &[u8],
        payload: &[u8],
        expected: Option<i64>,
        timestamp: Option<i64>,
    ) -> Result<()> {
        let opaque = expected.map_or(UNCHECKED, |o| o as usize);
        let mut record = BaseRecord::with_opaque_to(topic, opaque)
            .partition(partition)
            .key(key)
            .payload(payload);
        if let Some(ts) = timestamp {
            record = record.timestamp(ts);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                    r,
                )) => {
                    record = r;
                    self.producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(client(format!("producing to {topic}/{partition}"))(e)),
            }
        }
        self.sent += 1;
        if self.sent.is_multiple_of(4096) {
            self.producer.poll(Duration::ZERO);
        }
        self.failure()
    }

    fn failure(&self) -> Result<()> {
        let state = self.producer.context().state.lock();
        match state.as_ref().map(|s| s.failure.clone()) {
            Ok(None) => Ok(()),
            Ok(Some(reason)) => Err(KafkaError::Delivery(reason)),
            Err(_) => Err(KafkaError::Delivery("delivery state poisoned".into())),
        }
    }

    /// Waits until every queued message is acknowledged; an error if any failed.
    pub fn flush(&mut self) -> Result<()> {
        self.producer
            .flush(self.flush_timeout)
            .map_err(client("flushing the producer"))?;
        self.failure()?;
        let delivered = self
            .producer
            .context()
            .state
            .lock()
            .map(|s| s.delivered)
            .unwrap_or_default();
        if delivered != self.sent {
            return Err(KafkaError::Delivery(format!(
                "{} messages sent, {delivered} acknowledged",
                self.sent
            )));
        }
        Ok(())
    }
}

/// One partition of the samples topic.
#[derive(Debug)]
pub struct KafkaSampleSink {
    config: KafkaConfig,
    partition: i32,
    producer: CheckedProducer,
    next: i64,
    /// `sample_id`s already in the output from `next` on (the dedup rule).
    pending: VecDeque<u64>,
    deduplicated: Arc<AtomicU64>,
    strip_features: bool,
    buf: Vec<u8>,
    arrival: Option<Arc<AtomicI64>>,
}

impl KafkaSampleSink {
    /// The sink of partition `partition`; with `strip_features` the feature block is
    /// left out (as the file sinks').
    pub fn new(config: &KafkaConfig, partition: i32, strip_features: bool) -> Result<Self> {
        Ok(Self {
            config: config.clone(),
            partition,
            producer: CheckedProducer::new(config)?,
            next: 0,
            pending: VecDeque::new(),
            deduplicated: Arc::default(),
            strip_features,
            buf: Vec::with_capacity(4096),
            arrival: None,
        })
    }

    /// Stamps each sample's message with the broker timestamp of the input record that
    /// released it (from [`crate::KafkaEventSource::arrival`]), so a consumer's
    /// `now - timestamp` is the event → sample latency, the policy's own wait excluded.
    pub fn stamp_with(mut self, arrival: Arc<AtomicI64>) -> Self {
        self.arrival = Some(arrival);
        self
    }

    /// Samples skipped by the dedup rule since the sink was restored (a shared counter,
    /// readable after the sink has moved into a job).
    pub fn deduplicated(&self) -> Arc<AtomicU64> {
        self.deduplicated.clone()
    }

    fn output_error(&self, offset: i64, reason: String) -> KafkaError {
        KafkaError::Output {
            topic: self.config.samples_topic.clone(),
            partition: self.partition,
            offset,
            reason,
        }
    }
}

/// Reads offsets `from..to` of a samples partition, handing each message's offset, key
/// and payload to `each`.
fn read_range(
    config: &KafkaConfig,
    partition: i32,
    from: i64,
    to: i64,
    mut each: impl FnMut(i64, Option<&[u8]>, Option<&[u8]>) -> Result<()>,
) -> Result<()> {
    if from >= to {
        return Ok(());
    }
    let topic = &config.samples_topic;
    let reader = consumer(config)?;
    let start = batch_start(config, topic, partition, from)?;
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, Offset::Offset(start))
        .map_err(client("building an assignment"))?;
    reader
        .assign(&list)
        .map_err(client(format!("assigning {topic}/{partition}")))?;
    let mut last = Instant::now();
    let mut next = from;
    while next < to {
        match reader.poll(Duration::from_millis(100)) {
            // Before `from`: the reader started at its batch's base.
            Some(Ok(m)) if m.offset() < from => {}
            Some(Ok(m)) => {
                if m.offset() != next {
                    return Err(output_error(
                        config,
                        partition,
                        m.offset(),
                        format!("expected offset {next}"),
                    ));
                }
                each(next, m.key(), m.payload())?;
                next += 1;
                last = Instant::now();
            }
            Some(Err(e)) => return Err(client(format!("reading {topic}/{partition}"))(e)),
            None if last.elapsed() > timeout(config) * 3 => {
                return Err(output_error(
                    config,
                    partition,
                    next,
                    "no message within the timeout".into(),
                ));
            }
            None => {}
        }
    }
    Ok(())
}

fn output_error(config: &KafkaConfig, partition: i32, offset: i64, reason: String) -> KafkaError {
    KafkaError::Output {
        topic: config.samples_topic.clone(),
        partition,
        offset,
        reason,
    }
}

/// The `sample_id`s (message keys) at offsets `from..to` of a samples partition.
pub fn read_sample_ids(
    config: &KafkaConfig,
    partition: i32,
    from: i64,
    to: i64,
) -> Result<VecDeque<u64>> {
    let mut ids = VecDeque::new();
    read_range(config, partition, from, to, |offset, key, _| {
        let id = key
            .and_then(|k| std::str::from_utf8(k).ok())
            .and_then(|k| k.parse::<u64>().ok())
            .ok_or_else(|| {
                output_error(
                    config,
                    partition,
                    offset,
                    "the key is not a sample_id".into(),
                )
            })?;
        ids.push_back(id);
        Ok(())
    })?;
    Ok(ids)
}

/// Every sample in a samples partition, in offset order (tests, tools).
pub fn read_samples(config: &KafkaConfig, partition: i32) -> Result<Vec<Sample>> {
    let probe = consumer(config)?;
    let (low, high) = watermarks(&probe, &config.samples_topic, partition, config)?;
    let mut samples = Vec::with_capacity(usize::try_from(high - low).unwrap_or_default());
    read_range(config, partition, low, high, |offset, _, payload| {
        let sample = serde_json::from_slice(payload.unwrap_or_default())
            .map_err(|e| output_error(config, partition, offset, format!("not a sample: {e}")))?;
        samples.push(sample);
        Ok(())
    })?;
    Ok(samples)
}

impl SampleSink for KafkaSampleSink {
    type Error = KafkaError;

    fn restore(&mut self, position: Option<u64>) -> Result<()> {
        let probe = consumer(&self.config)?;
        let (low, high) = watermarks(
            &probe,
            &self.config.samples_topic,
            self.partition,
            &self.config,
        )?;
        let start = match position {
            Some(p) => {
                i64::try_from(p).map_err(|_| self.output_error(-1, "position overflow".into()))?
            }
            None => low,
        };
        if start < low || start > high {
            return Err(self.output_error(
                start,
                format!("the checkpoint's output offset is outside the partition's [{low}, {high}] (topic recreated?)"),
            ));
        }
        self.pending = read_sample_ids(&self.config, self.partition, start, high)?;
        self.next = start;
        self.deduplicated.store(0, Ordering::Relaxed);
        Ok(())
    }

    fn write(&mut self, mut sample: Sample) -> Result<()> {
        if let Some(id) = self.pending.pop_front() {
            if id != sample.sample_id {
                return Err(self.output_error(
                    self.next,
                    format!(
                        "the partition holds sample {id} here, the restored job built {} (not this job's output)",
                        sample.sample_id
                    ),
                ));
            }
            self.next += 1;
            self.deduplicated.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        if self.strip_features {
            sample.features = std::sync::Arc::default();
        }
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, &sample).map_err(|source| KafkaError::Encode {
            what: "a sample",
            source,
        })?;
        let key = sample.sample_id.to_string();
        let topic = self.config.samples_topic.clone();
        let timestamp = self
            .arrival
            .as_ref()
            .map(|a| a.load(Ordering::Relaxed))
            .filter(|&ts| ts > 0);
        self.producer.send(
            &topic,
            self.partition,
            key.as_bytes(),
            &self.buf,
            Some(self.next),
            timestamp,
        )?;
        self.next += 1;
        Ok(())
    }

    fn sync(&mut self) -> Result<u64> {
        self.producer.flush()?;
        Ok(u64::try_from(self.next).unwrap_or_default())
    }
}

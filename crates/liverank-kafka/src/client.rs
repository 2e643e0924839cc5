//! Client plumbing: configurations of the consumer and producer (manual assignment, no
//! consumer group; an idempotent producer), topic creation, watermarks, and the partition
//! of an event.

use crate::config::KafkaConfig;
use crate::error::{KafkaError, Result, client};
use liverank_types::Event;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// The request timeout of the settings.
pub fn timeout(config: &KafkaConfig) -> Duration {
    Duration::from_millis(config.timeout_ms)
}

/// A consumer for manual assignment: `assign`, never `subscribe`, so no group join (they
/// take ~20 s on tansu), and nothing committed: positions live in the job's checkpoint.
/// (librdkafka wants a `group.id` for an assigned consumer all the same; it is not used.)
pub fn consumer(config: &KafkaConfig) -> Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", "liverank-manual-assignment")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", config.fetch_wait_ms.to_string())
        .set("socket.timeout.ms", config.timeout_ms.to_string())
        .create()
        .map_err(client("creating a consumer"))
}

/// Producer settings: idempotent (ordered, no duplicates from the client's retries), all
/// acknowledgements, batches lingering `linger_ms`.
pub fn producer_config(config: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", config.linger_ms.to_string())
        .set("message.timeout.ms", (config.timeout_ms * 3).to_string())
        .set("queue.buffering.max.messages", "1000000");
    c
}

/// Runs a future of the client (admin requests) to completion on this thread; the client
/// resolves them from its own threads, so no async runtime is needed.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// Creates the events and samples topics with `partitions` partitions where missing and
/// checks the partition count of those that exist.
pub fn ensure_topics(config: &KafkaConfig) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .create()
        .map_err(client("creating an admin client"))?;
    let partitions = i32::try_from(config.partitions).unwrap_or(i32::MAX);
    let topics = [
        NewTopic::new(&config.events_topic, partitions, TopicReplication::Fixed(1)),
        NewTopic::new(
            &config.samples_topic,
            partitions,
            TopicReplication::Fixed(1),
        ),
    ];
    let options = AdminOptions::new()
        .request_timeout(Some(timeout(config)))
        .operation_timeout(Some(timeout(config)));
    let results =
        block_on(admin.create_topics(&topics, &options)).map_err(client("creating topics"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(KafkaError::CreateTopic {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    let probe = consumer(config)?;
    for topic in [&config.events_topic, &config.samples_topic] {
        let actual = partition_count(&probe, topic, config)?;
        if actual != config.partitions as usize {
            return Err(KafkaError::Partitions {
                topic: topic.clone(),
                actual,
                expected: config.partitions,
            });
        }
    }
    Ok(())
}

/// The number of partitions of `topic` (0 when it does not exist).
pub fn partition_count(
    consumer: &BaseConsumer,
    topic: &str,
    config: &KafkaConfig,
) -> Result<usize> {
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout(config))
        .map_err(client(format!("metadata of {topic}")))?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len()))
}

/// `(low, high)` watermarks of a partition: the first offset held and the next offset
/// to be written.
///
/// The high watermark is not taken from `ListOffsets`: tansu 0.6 answers it with the base
/// offset of the partition's newest record batch plus one, which is short by the batch's
/// other records (measured: five records in one batch gave 1). The fetch path reports the
/// true high watermark, so the partition is read from that batch to its end (the client
/// signals the end when the fetch offset reaches the fetch's high watermark).
pub fn watermarks(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    config: &KafkaConfig,
) -> Result<(i64, i64)> {
    let what = || format!("watermarks of {topic}/{partition}");
    let (low, listed) = consumer
        .fetch_watermarks(topic, partition, timeout(config))
        .map_err(client(what()))?;
    if listed <= low {
        return Ok((low, listed));
    }
    let reader = eof_consumer(config)?;
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, Offset::Offset(listed - 1))
        .map_err(client("building an assignment"))?;
    reader.assign(&list).map_err(client(what()))?;
    let started = std::time::Instant::now();
    let mut high = listed - 1;
    loop {
        match reader.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => high = high.max(m.offset() + 1),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) if high >= listed => {
                return Ok((low, high));
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => return Err(client(what())(e)),
            None if started.elapsed() > timeout(config) => {
                return Err(KafkaError::Input {
                    topic: topic.to_string(),
                    partition,
                    reason: format!("no end of partition seen within {:?}", timeout(config)),
                });
            }
            None => {}
        }
    }
}

/// An offset at or before `offset` that a fetch can start from: the base offset of the
/// record batch holding `offset`, or of one before it.
///
/// tansu 0.6 serves a fetch with the batches whose *base* offset is at or after the fetch
/// offset, so a fetch from the middle of a batch skips the rest of that batch (and hangs
/// when it is the last one). The first message a fetch from `x` returns is the base of the
/// first batch at or after `x`; probing back from `offset` in growing steps finds a base
/// at or before it. Readers start there and drop the messages before `offset`.
pub fn batch_start(config: &KafkaConfig, topic: &str, partition: i32, offset: i64) -> Result<i64> {
    let mut back = 1i64;
    loop {
        let x = (offset - back).max(0);
        if x == 0 {
            return Ok(0);
        }
        let probe = consumer(config)?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, partition, Offset::Offset(x))
            .map_err(client("building an assignment"))?;
        probe
            .assign(&list)
            .map_err(client(format!("assigning {topic}/{partition}")))?;
        let started = std::time::Instant::now();
        let first = loop {
            match probe.poll(Duration::from_millis(50)) {
                Some(Ok(m)) => break Some(m.offset()),
                Some(Err(e)) => return Err(client(format!("reading {topic}/{partition}"))(e)),
                // Nothing: `x` is inside the partition's last batch.
                None if started.elapsed() > PROBE_WAIT => break None,
                None => {}
            }
        };
        if let Some(f) = first
            && f <= offset
        {
            return Ok(f);
        }
        back *= 8;
    }
}

/// How long a probe of [`batch_start`] waits for a first message.
const PROBE_WAIT: Duration = Duration::from_millis(400);

/// A consumer that reports reaching the end of a partition.
fn eof_consumer(config: &KafkaConfig) -> Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", "liverank-manual-assignment")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", config.fetch_wait_ms.to_string())
        .create()
        .map_err(client("creating a consumer"))
}

/// The partition of a user: `user % partitions` (explicit, so it does not depend on the
/// client's key hash).
pub fn user_partition(user: u64, partitions: u32) -> i32 {
    (user % u64::from(partitions.max(1))) as i32
}

/// The partitions an event goes to: its user's, or every partition for a room event
/// (live start / end, product on sale) that has no user, since every partition's engine
/// needs it to close sessions and know the room.
pub fn event_partitions(event: &Event, partitions: u32) -> std::ops::Range<i32> {
    match event.user() {
        Some(user) => {
            let p = user_partition(user.0, partitions);
            p..p + 1
        }
        None => 0..i32::try_from(partitions).unwrap_or(i32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liverank_types::{EventId, EventKind, EventTime, LiveId, UserId};

    #[test]
    fn user_events_go_to_one_partition_room_events_to_all() {
        let like = Event {
            event_id: EventId(1),
            ts: EventTime(0),
            kind: EventKind::Like {
                user: UserId(7),
                live: LiveId(2),
            },
        };
        assert_eq!(event_partitions(&like, 3), 1..2);
        assert_eq!(event_partitions(&like, 1), 0..1);
        let end = Event {
            kind: EventKind::LiveEnd { live: LiveId(2) },
            ..like
        };
        assert_eq!(event_partitions(&end, 3), 0..3);
    }

    #[test]
    fn block_on_waits_for_a_future_woken_from_another_thread() {
        let (tx, rx) = std::sync::mpsc::channel::<u32>();
        let handle = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send(5)
        });
        let rx = std::sync::Mutex::new(rx);
        let polled = std::sync::atomic::AtomicU32::new(0);
        let value = block_on(std::future::poll_fn(|cx| {
            polled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match rx.lock().map(|r| r.try_recv()) {
                Ok(Ok(v)) => Poll::Ready(v),
                _ => {
                    let waker = cx.waker().clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(5));
                        waker.wake();
                    });
                    Poll::Pending
                }
            }
        }));
        assert_eq!(value, 5);
        assert!(polled.load(std::sync::atomic::Ordering::Relaxed) >= 2);
        assert!(handle.join().is_ok());
    }
}

//! Measurements of the Kafka path for `liverank bench kafka`: the broker's own round
//! trip (the baseline) and the event → sample latency of a worker following a paced
//! stream.

use crate::client::{consumer, ensure_topics};
use crate::config::KafkaConfig;
use crate::error::{Result, client};
use crate::sink::CheckedProducer;
use crate::worker::{EventProducer, WorkerSpec, run_worker};
use liverank_types::Event;
use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Produce one message and read it back, `n` times: the broker round trip in ms (the
/// samples topic of `config` is used as scratch; use a fresh one).
pub fn broker_round_trip(config: &KafkaConfig, n: usize) -> Result<Vec<f64>> {
    ensure_topics(config)?;
    let reader = consumer(config)?;
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(&config.samples_topic, 0, Offset::Offset(0))
        .map_err(client("building an assignment"))?;
    reader
        .assign(&list)
        .map_err(client("assigning the round-trip topic"))?;
    let mut producer = CheckedProducer::new(&KafkaConfig {
        linger_ms: 0,
        ..config.clone()
    })?;
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let clock = Instant::now();
        // No flush per message: the client's flush waits in steps of 100 ms.
        producer.send(&config.samples_topic, 0, b"ping", b"ping", None, None)?;
        loop {
            match reader.poll(Duration::from_millis(100)) {
                Some(Ok(m)) if m.offset() == i as i64 => break,
                Some(Ok(_)) | None => {}
                Some(Err(e)) => return Err(client("reading the round trip")(e)),
            }
        }
        times.push(clock.elapsed().as_secs_f64() * 1e3);
    }
    producer.flush()?;
    Ok(times)
}

/// A paced run's figures.
#[derive(Debug, Clone)]
pub struct PacedRun {
    /// Event → sample latencies (ms) of the samples read while events were flowing.
    pub latencies_ms: Vec<f64>,
    /// Events produced.
    pub events: u64,
    /// Seconds the producer took.
    pub seconds: f64,
}

/// Runs a following worker (`spec.end` is ignored) while `events` are produced at `rate`
/// events/s, reading the samples topic meanwhile: each sample's latency is its read time
/// minus its timestamp (the arrival of the event that released it). Samples only the end
/// of input releases are not counted. `spec`'s topics must be fresh.
pub fn paced_latency(spec: &WorkerSpec, events: &[Event], rate: f64) -> Result<PacedRun> {
    let kafka = spec.kafka.clone();
    ensure_topics(&kafka)?;
    let stop = Arc::new(AtomicBool::new(false));
    let spec = WorkerSpec {
        end: crate::End::Never,
        stop: Some(stop.clone()),
        ..spec.clone()
    };
    let readers: Vec<_> = (0..kafka.partitions as i32)
        .map(|p| {
            let reader = consumer(&kafka)?;
            let mut list = TopicPartitionList::new();
            list.add_partition_offset(&kafka.samples_topic, p, Offset::Offset(0))
                .map_err(client("building an assignment"))?;
            reader
                .assign(&list)
                .map_err(client("assigning the samples topic"))?;
            Ok(reader)
        })
        .collect::<Result<_>>()?;
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| run_worker(&spec));
        let producing = Arc::new(AtomicBool::new(true));
        let flag = producing.clone();
        let kafka_p = kafka.clone();
        let producer = scope.spawn(move || -> Result<f64> {
            let mut out = EventProducer::new(&kafka_p)?;
            let clock = Instant::now();
            for (i, e) in events.iter().enumerate() {
                out.send(e)?;
                if i % 256 == 255 {
                    let due = Duration::from_secs_f64((i + 1) as f64 / rate);
                    if let Some(wait) = due.checked_sub(clock.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
            }
            out.flush()?;
            flag.store(false, Ordering::Relaxed);
            Ok(clock.elapsed().as_secs_f64())
        });
        let mut latencies = Vec::new();
        let mut quiet_since = Instant::now();
        loop {
            let mut got = false;
            for r in &readers {
                while let Some(m) = r.poll(Duration::ZERO) {
                    let m = m.map_err(client("reading samples"))?;
                    if let Some(ts) = m.timestamp().to_millis() {
                        latencies.push((now_ms() - ts) as f64);
                    }
                    got = true;
                }
            }
            if got {
                quiet_since = Instant::now();
            } else {
                std::thread::sleep(Duration::from_millis(1));
            }
            if !producing.load(Ordering::Relaxed) && quiet_since.elapsed() > Duration::from_secs(1)
            {
                break;
            }
            if producer.is_finished() && !producing.load(Ordering::Relaxed) {
                continue;
            }
            if producer.is_finished() {
                // The producer failed: stop the worker and report its error below.
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        let seconds = producer
            .join()
            .unwrap_or_else(|_| Err(crate::KafkaError::Delivery("producer panicked".into())))?;
        worker
            .join()
            .unwrap_or_else(|_| Err(crate::KafkaError::Delivery("worker panicked".into())))?;
        Ok(PacedRun {
            latencies_ms: latencies,
            events: events.len() as u64,
            seconds,
        })
    })
}

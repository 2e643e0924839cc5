//! The samples sink against the real broker (`LIVERANK_TEST_KAFKA_BROKERS`, started by
//! `scripts/kafka.sh`; these tests fail without it): the dedup rule skips exactly the
//! samples already in the output after the checkpoint, refuses output that is not the
//! job's, and a checkpoint position outside the partition is an error.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use liverank_kafka::{KafkaConfig, KafkaError, KafkaSampleSink, ensure_topics, read_samples};
use liverank_samples::job::SampleSink;
use liverank_types::{
    EventTime, LabelMask, LiveId, Policy, RequestId, Sample, SampleKind, UserId, sample_id,
};
use std::sync::atomic::Ordering;

fn config(test: &str) -> KafkaConfig {
    let brokers = std::env::var("LIVERANK_TEST_KAFKA_BROKERS").expect(
        "LIVERANK_TEST_KAFKA_BROKERS is not set: run scripts/test.sh (or scripts/kafka.sh start)",
    );
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    KafkaConfig {
        brokers,
        events_topic: format!("d-{test}-{nonce}-events"),
        samples_topic: format!("d-{test}-{nonce}-samples"),
        partitions: 1,
        ..KafkaConfig::default()
    }
}

fn sample(n: u64) -> Sample {
    Sample {
        sample_id: sample_id(RequestId(n), LiveId(n % 3), Policy::Realtime, 0),
        policy: Policy::Realtime,
        kind: SampleKind::Close,
        seq: 0,
        ts: EventTime(1_767_225_600_000 + n as i64),
        request_id: RequestId(n),
        live: LiveId(n % 3),
        user: UserId(n % 5),
        author: None,
        exposure_ts: EventTime(1_767_225_600_000),
        category: None,
        labels: LabelMask::default(),
        features: Default::default(),
    }
}

#[test]
fn a_restored_sink_skips_what_is_already_written_and_only_that() {
    let k = config("skip");
    ensure_topics(&k).unwrap();
    // A first run: 5 samples, a checkpoint (sync) after 3, then 2 more reach the topic
    // before the "crash".
    let mut sink = KafkaSampleSink::new(&k, 0, false).unwrap();
    sink.restore(None).unwrap();
    for n in 0..3 {
        sink.write(sample(n)).unwrap();
    }
    let checkpoint = sink.sync().unwrap();
    assert_eq!(checkpoint, 3);
    for n in 3..5 {
        sink.write(sample(n)).unwrap();
    }
    sink.sync().unwrap();
    drop(sink);

    // The restored job rebuilds samples 3, 4 (skipped) and goes on with 5, 6.
    let mut sink = KafkaSampleSink::new(&k, 0, false).unwrap();
    let skipped = sink.deduplicated();
    sink.restore(Some(checkpoint)).unwrap();
    for n in 3..7 {
        sink.write(sample(n)).unwrap();
    }
    assert_eq!(sink.sync().unwrap(), 7);
    assert_eq!(skipped.load(Ordering::Relaxed), 2);
    let ids: Vec<u64> = read_samples(&k, 0)
        .unwrap()
        .iter()
        .map(|s| s.sample_id)
        .collect();
    let expected: Vec<u64> = (0..7).map(|n| sample(n).sample_id).collect();
    assert_eq!(ids, expected);
    assert_eq!(read_samples(&k, 0).unwrap()[6], sample(6));

    // Output that is not this job's: a different sample where sample 3 was.
    let mut sink = KafkaSampleSink::new(&k, 0, false).unwrap();
    sink.restore(Some(checkpoint)).unwrap();
    let err = sink.write(sample(40)).unwrap_err();
    assert!(
        matches!(&err, KafkaError::Output { offset: 3, reason, .. } if reason.contains("not this job's")),
        "{err}"
    );

    // A checkpoint past the partition's end (a recreated topic).
    let mut sink = KafkaSampleSink::new(&k, 0, false).unwrap();
    let err = sink.restore(Some(8)).unwrap_err();
    assert!(matches!(err, KafkaError::Output { offset: 8, .. }), "{err}");
}

#[test]
fn a_topic_with_another_partition_count_is_refused() {
    let k = config("parts");
    ensure_topics(&k).unwrap();
    let err = ensure_topics(&KafkaConfig {
        partitions: 3,
        ..k.clone()
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            KafkaError::Partitions {
                actual: 1,
                expected: 3,
                ..
            }
        ),
        "{err}"
    );
}

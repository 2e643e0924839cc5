//! The `[kafka]` settings: where the broker is, which topics, how many partitions.

use serde::{Deserialize, Serialize};

/// Settings of the distributed mode's Kafka I/O.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    pub brokers: String,
    /// Events in, partitioned by user (room events go to every partition).
    pub events_topic: String,
    /// Samples out; partition `p` holds the samples built from events partition `p`.
    pub samples_topic: String,
    /// Partitions of both topics (created with this count when missing).
    pub partitions: u32,
    /// Timeout of one broker request (metadata, watermarks, flush), ms.
    pub timeout_ms: u64,
    /// Producer `linger.ms`: how long a batch waits for more messages.
    pub linger_ms: u32,
    /// Consumer `fetch.wait.max.ms`. tansu 0.6 holds every fetch this long even when it has
    /// records, so it is a floor on each consuming hop's latency.
    pub fetch_wait_ms: u32,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            events_topic: "liverank-events".into(),
            samples_topic: "liverank-samples".into(),
            partitions: 2,
            timeout_ms: 10_000,
            linger_ms: 5,
            fetch_wait_ms: 10,
        }
    }
}

/// A setting out of range.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("kafka.{field}: {reason}")]
pub struct KafkaConfigError {
    /// The field.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

impl KafkaConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), KafkaConfigError> {
        let err = |field, reason: &str| {
            Err(KafkaConfigError {
                field,
                reason: reason.into(),
            })
        };
        if self.brokers.trim().is_empty() {
            return err("brokers", "empty");
        }
        for (field, topic) in [
            ("events_topic", &self.events_topic),
            ("samples_topic", &self.samples_topic),
        ] {
            let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if topic.is_empty() || topic.len() > 249 || !topic.chars().all(legal) {
                return err(field, "a topic name is 1-249 characters of [A-Za-z0-9._-]");
            }
        }
        if self.events_topic == self.samples_topic {
            return err("samples_topic", "must differ from events_topic");
        }
        if !(1..=1024).contains(&self.partitions) {
            return err("partitions", "must be in 1..=1024");
        }
        if !(1..=600_000).contains(&self.timeout_ms) {
            return err("timeout_ms", "must be in 1..=600000");
        }
        if self.linger_ms > 10_000 {
            return err("linger_ms", "must be at most 10000");
        }
        if !(1..=10_000).contains(&self.fetch_wait_ms) {
            return err("fetch_wait_ms", "must be in 1..=10000");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::*;

    #[test]
    fn defaults_are_valid_and_each_bad_field_is_named() {
        KafkaConfig::default().validate().unwrap();
        let bad = [
            KafkaConfig {
                brokers: " ".into(),
                ..KafkaConfig::default()
            },
            KafkaConfig {
                events_topic: "a b".into(),
                ..KafkaConfig::default()
            },
            KafkaConfig {
                samples_topic: "liverank-events".into(),
                ..KafkaConfig::default()
            },
            KafkaConfig {
                partitions: 0,
                ..KafkaConfig::default()
            },
            KafkaConfig {
                timeout_ms: 0,
                ..KafkaConfig::default()
            },
            KafkaConfig {
                linger_ms: 10_001,
                ..KafkaConfig::default()
            },
            KafkaConfig {
                fetch_wait_ms: 0,
                ..KafkaConfig::default()
            },
        ];
        let fields: Vec<_> = bad
            .iter()
            .map(|c| c.validate().unwrap_err().field)
            .collect();
        assert_eq!(
            fields,
            [
                "brokers",
                "events_topic",
                "samples_topic",
                "partitions",
                "timeout_ms",
                "linger_ms",
                "fetch_wait_ms"
            ]
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = toml_like(r#"{"brokers":"x:1","partitionz":3}"#);
        assert!(err.contains("partitionz"), "{err}");
    }

    fn toml_like(json: &str) -> String {
        serde_json::from_str::<KafkaConfig>(json)
            .unwrap_err()
            .to_string()
    }
}

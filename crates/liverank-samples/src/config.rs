//! Configuration of the sample engine (SPEC §3 defaults).

use liverank_types::{Policy, Task};
use serde::{Deserialize, Serialize};

/// Windows, thresholds, policies and tasks of the sample engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SampleConfig {
    /// Policies run in one pass (default: realtime).
    pub policies: Vec<Policy>,
    /// Tasks labelled (default: all seven).
    pub tasks: Vec<Task>,
    /// Flush grid, epoch-aligned (30 s).
    pub flush_interval_ms: u64,
    /// Events up to this far behind the newest are handled exactly (60 s).
    pub allowed_lateness_ms: u64,
    /// A not-entered exposure closes this long after its impression (60 s).
    pub click_timeout_ms: u64,
    /// An entered exposure closes at the latest this long after its impression (4 h).
    pub max_session_ms: u64,
    /// long_view: still in the room this long after entering (60 s).
    pub long_view_ms: u64,
    /// The fastslow policy's fast window, inclusive (5 min).
    pub fast_window_ms: u64,
    /// The fastslow policy's slow window end, inclusive (1 h).
    pub slow_window_ms: u64,
    /// Live statistic bucket width (30 s).
    pub stats_bucket_ms: u64,
    /// Buckets of statistics a sample carries (T = 64).
    pub stats_buckets: u32,
    /// Products of the room's sequence a sample carries (K = 20).
    pub products: u32,
}

impl Default for SampleConfig {
    fn default() -> Self {
        Self {
            policies: vec![Policy::Realtime],
            tasks: Task::ALL.to_vec(),
            flush_interval_ms: 30_000,
            allowed_lateness_ms: 60_000,
            click_timeout_ms: 60_000,
            max_session_ms: 4 * 3_600_000,
            long_view_ms: 60_000,
            fast_window_ms: 5 * 60_000,
            slow_window_ms: 3_600_000,
            stats_bucket_ms: 30_000,
            stats_buckets: 64,
            products: 20,
        }
    }
}

/// An invalid sample-engine setting.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid sample engine config: {field}: {reason}")]
pub struct ConfigError {
    /// Field.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

impl SampleConfig {
    /// Checks the values; the engine only runs validated configs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, reason: &str| {
            Err(ConfigError {
                field,
                reason: reason.into(),
            })
        };
        if self.policies.is_empty() {
            return err("policies", "name at least one policy");
        }
        if self.tasks.is_empty() {
            return err("tasks", "name at least one task");
        }
        if self.flush_interval_ms == 0 || self.stats_bucket_ms == 0 {
            return err("flush_interval_ms", "intervals must be positive");
        }
        if self.click_timeout_ms == 0 || self.max_session_ms < self.click_timeout_ms {
            return err("max_session_ms", "must be at least click_timeout_ms (> 0)");
        }
        if self.fast_window_ms == 0 || self.slow_window_ms <= self.fast_window_ms {
            return err("slow_window_ms", "must be longer than fast_window_ms (> 0)");
        }
        if self.stats_buckets == 0 || self.stats_buckets > 4_096 {
            return err("stats_buckets", "must be in 1..=4096");
        }
        Ok(())
    }

    /// Bit mask of the configured tasks.
    pub fn task_mask(&self) -> u8 {
        self.tasks
            .iter()
            .fold(0, |m, &t| m | liverank_types::LabelMask::bit(t))
    }

    /// Whether `policy` runs.
    pub fn runs(&self, policy: Policy) -> bool {
        self.policies.contains(&policy)
    }
}

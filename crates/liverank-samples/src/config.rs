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
    /// An event more than this far ahead of the newest accepted event is a dead letter
    /// instead of moving the watermark (1 day: longer than any quiet gap of a real stream, far
    /// shorter than a clock or unit error).
    pub max_future_skew_ms: u64,
}

/// The earliest event time the engine accepts: the Unix epoch.
pub const MIN_EVENT_TS: i64 = 0;
/// The first event time the engine rejects: 2200-01-01T00:00:00Z in ms (a microsecond or
/// nanosecond timestamp of this era lies far beyond it).
pub const MAX_EVENT_TS: i64 = 7_258_118_400_000;
/// The longest window, timeout, lateness or skew a config may set (365 days), so event
/// time plus any window stays far inside `i64`.
pub const MAX_WINDOW_MS: u64 = 365 * 86_400_000;

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
            max_future_skew_ms: 86_400_000,
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
        let windows = [
            ("flush_interval_ms", self.flush_interval_ms),
            ("allowed_lateness_ms", self.allowed_lateness_ms),
            ("click_timeout_ms", self.click_timeout_ms),
            ("max_session_ms", self.max_session_ms),
            ("long_view_ms", self.long_view_ms),
            ("fast_window_ms", self.fast_window_ms),
            ("slow_window_ms", self.slow_window_ms),
            ("stats_bucket_ms", self.stats_bucket_ms),
            ("max_future_skew_ms", self.max_future_skew_ms),
        ];
        if let Some((field, _)) = windows.iter().find(|(_, v)| *v > MAX_WINDOW_MS) {
            return err(field, "must be at most 365 days (31536000000 ms)");
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

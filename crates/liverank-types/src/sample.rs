//! Training samples: one report about one exposure, with a label and a mask per task.

use crate::id::{AuthorId, CategoryId, LiveId, RequestId, UserId};
use crate::task::Task;
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Version of the sample formats (JSON Lines and Parquet).
pub const SAMPLE_FORMAT_VERSION: u32 = 1;

/// The labelling policy that emitted a sample (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Moment's 30 s stream with first-only masks.
    Realtime,
    /// The legacy 5 min / 1 h windows (PU loss on the slow samples).
    Fastslow,
    /// Ablation: a 30 s stream without masks.
    Naive30,
    /// Evaluation: one sample per exposure at close.
    Complete,
}

impl Policy {
    /// Every policy.
    pub const ALL: [Policy; 4] = [
        Policy::Realtime,
        Policy::Fastslow,
        Policy::Naive30,
        Policy::Complete,
    ];

    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Policy::Realtime => "realtime",
            Policy::Fastslow => "fastslow",
            Policy::Naive30 => "naive30",
            Policy::Complete => "complete",
        }
    }
}

impl FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Policy::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!("unknown policy `{s}`, expected realtime, fastslow, naive30 or complete")
            })
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which report of its policy a sample is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleKind {
    /// A 30 s flush (realtime, naive30).
    Flush,
    /// The exposure closed (realtime, complete).
    Close,
    /// The fast window (fastslow).
    Fast,
    /// The slow window (fastslow).
    Slow,
}

/// Labels and masks over [`Task::ALL`], one bit per task in that order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LabelMask {
    /// Bit set: the task's label is 1 (meaningful only where `mask` is set).
    pub labels: u8,
    /// Bit set: this sample says something about the task.
    pub mask: u8,
}

impl LabelMask {
    /// Bit of `task`.
    pub const fn bit(task: Task) -> u8 {
        1 << (task as u8)
    }

    /// `Some(label)` when the task is unmasked, `None` when masked.
    pub fn get(self, task: Task) -> Option<bool> {
        let b = Self::bit(task);
        (self.mask & b != 0).then_some(self.labels & b != 0)
    }

    /// Sets a task's label and unmasks it.
    pub fn set(&mut self, task: Task, label: bool) {
        let b = Self::bit(task);
        self.mask |= b;
        if label {
            self.labels |= b;
        } else {
            self.labels &= !b;
        }
    }

    /// Unmasked tasks with their labels, in canonical order.
    pub fn iter(self) -> impl Iterator<Item = (Task, bool)> {
        Task::ALL
            .into_iter()
            .filter_map(move |t| self.get(t).map(|l| (t, l)))
    }
}

/// Features of an exposure as they were at exposure time (no leakage).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExposureFeatures {
    /// User profile, when the users table is known: gender, age bucket, city tier,
    /// activity level, payer level.
    pub user_profile: Option<[u8; 5]>,
    /// Streamer type name (`talent`, …), when the authors table is known.
    pub author_type: Option<String>,
    /// Streamer fans bucket, when known.
    pub fans_bucket: Option<u8>,
    /// Position on the page.
    pub position: u32,
    /// Hour of day (UTC) of the impression.
    pub hour: u8,
    /// Time the room had been on air at the impression, ms (0 when its start is unknown).
    pub live_age_ms: u64,
    /// The room's 30 s statistics: `stats_len` buckets × [`STAT_SERIES`] values, oldest
    /// first, ending with the last bucket closed before the impression.
    pub stats: Vec<u32>,
    /// Number of buckets in `stats`.
    pub stats_len: u32,
    /// The room's last K products on sale before the impression, oldest first:
    /// `[product, c1, c2, c3]`.
    pub products: Vec<[u64; 4]>,
}

/// Names of the live statistic series, in the order they appear in each bucket.
pub const STAT_SERIES: [&str; 12] = [
    "impressions",
    "enters",
    "online",
    "likes",
    "comments",
    "gifts",
    "gift_value",
    "follows",
    "cart_clicks",
    "orders",
    "gmv",
    "shares",
];

/// One training sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Stable hash of (request_id, live, policy, sequence number).
    pub sample_id: u64,
    /// Emitting policy.
    pub policy: Policy,
    /// Which report.
    pub kind: SampleKind,
    /// 0, 1, 2… per (exposure, policy).
    pub seq: u32,
    /// When the sample was emitted (event time).
    pub ts: EventTime,
    /// Exposure key.
    pub request_id: RequestId,
    /// Exposure key.
    pub live: LiveId,
    /// Viewer.
    pub user: UserId,
    /// Streamer, when known.
    pub author: Option<AuthorId>,
    /// Impression time.
    pub exposure_ts: EventTime,
    /// Room category, when known.
    pub category: Option<CategoryId>,
    /// Labels and masks.
    pub labels: LabelMask,
    /// Features at exposure time.
    pub features: std::sync::Arc<ExposureFeatures>,
}

/// Stable 64-bit sample id: independent of platform, Rust version and process.
pub fn sample_id(request_id: RequestId, live: LiveId, policy: Policy, seq: u32) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for v in [request_id.0, live.0, policy as u64, u64::from(seq)] {
        h ^= v;
        h = h.wrapping_mul(0x0000_0100_0000_01B3).rotate_left(29);
        h ^= h >> 31;
        h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    }
    h ^ (h >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_mask_sets_and_reads_per_task() {
        let mut m = LabelMask::default();
        m.set(Task::Click, true);
        m.set(Task::Follow, false);
        assert_eq!(m.get(Task::Click), Some(true));
        assert_eq!(m.get(Task::Follow), Some(false));
        assert_eq!(m.get(Task::Gift), None);
        let v: Vec<_> = m.iter().collect();
        assert_eq!(v, vec![(Task::Click, true), (Task::Follow, false)]);
    }

    #[test]
    fn sample_id_is_stable_and_distinguishes_fields() {
        // Pinned value (the first sample of SPEC §3's worked example, as written by
        // `liverank samples`): a change here changes every sample id on disk.
        assert_eq!(
            sample_id(RequestId(100), LiveId(7), Policy::Realtime, 0),
            6_192_945_980_656_387_400
        );
        let base = sample_id(RequestId(1), LiveId(2), Policy::Realtime, 0);
        assert_ne!(
            base,
            sample_id(RequestId(2), LiveId(1), Policy::Realtime, 0)
        );
        assert_ne!(
            base,
            sample_id(RequestId(1), LiveId(2), Policy::Complete, 0)
        );
        assert_ne!(
            base,
            sample_id(RequestId(1), LiveId(2), Policy::Realtime, 1)
        );
    }
}

//! What the engine counts: every event's fate, samples per policy, and the
//! label-consistency tally (how much of `complete`'s positives each policy reports, and
//! how late).

use crate::policy::{POLICY_COUNT, TASK_COUNT};
use liverank_types::{LabelMask, Policy};
use serde::{Deserialize, Serialize};

/// Counters of everything the engine saw.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineCounters {
    /// Events pushed.
    pub events_in: u64,
    /// Events processed (accepted, in time order).
    pub processed: u64,
    /// Repeated event ids.
    pub duplicates: u64,
    /// Events beyond the lateness.
    pub late: u64,
    /// In-room events without a session.
    pub orphans: u64,
    /// In-room events of a session whose exposure had closed.
    pub after_close: u64,
    /// Impressions of an existing exposure key.
    pub repeat_impressions: u64,
    /// Enters without a request id.
    pub organic_enters: u64,
    /// Enters naming an exposure that is closed, unknown or another user's.
    pub stale_clicks: u64,
    /// Exposures opened.
    pub exposures: u64,
    /// Events whose time lies outside the accepted range.
    pub out_of_range: u64,
    /// Events too far ahead of the newest accepted one.
    pub future: u64,
    /// Samples per policy, in `Policy::ALL` order.
    pub samples: [u64; POLICY_COUNT],
}

/// Per (policy, task): complete positives captured, and capture delays in seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyTally {
    /// `[policy][task]` → delays (s) from the positive to its first report as positive.
    pub delays_s: Vec<Vec<Vec<u32>>>,
    /// `[task]` → positives in `complete` samples.
    pub complete_positives: Vec<u64>,
}

impl Default for ConsistencyTally {
    fn default() -> Self {
        Self {
            delays_s: vec![vec![Vec::new(); TASK_COUNT]; POLICY_COUNT],
            complete_positives: vec![0; TASK_COUNT],
        }
    }
}

impl ConsistencyTally {
    /// Records a sample of `policy` (index `p`) at `ts`: each positive it reports for the
    /// first time in this exposure (`told` holds the ones reported before) adds its delay.
    pub(crate) fn record(
        &mut self,
        policy: Policy,
        p: usize,
        first: &[Option<i64>; TASK_COUNT],
        told: &mut u8,
        labels: LabelMask,
        ts: i64,
    ) {
        let newly = labels.labels & labels.mask & !*told;
        *told |= newly;
        if policy == Policy::Complete {
            for (i, n) in self.complete_positives.iter_mut().enumerate() {
                *n += u64::from(newly >> i & 1);
            }
        }
        for (i, f) in first.iter().enumerate() {
            if newly >> i & 1 == 1
                && let Some(f) = f
            {
                let delay = ts.saturating_sub(*f).max(0) / 1_000;
                self.delays_s[p][i].push(u32::try_from(delay).unwrap_or(u32::MAX));
            }
        }
    }
}

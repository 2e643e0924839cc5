//! Exposure and session state: an exposure is keyed by `(request_id, live)` and lives
//! from its impression to its close (click timeout, the user's next impression, leave,
//! re-enter, live end or max session); a session is a user's stay in a room.

use crate::policy::{Facts, POLICY_COUNT, PolicyMemory, TASK_COUNT};
use liverank_types::ExposureFeatures;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One exposure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Exposure {
    pub(crate) request_id: u64,
    pub(crate) live: u64,
    pub(crate) user: u64,
    pub(crate) imp_ts: i64,
    pub(crate) author: Option<u64>,
    pub(crate) category: Option<u32>,
    pub(crate) features: Arc<ExposureFeatures>,
    pub(crate) entered_at: Option<i64>,
    /// First positive time per task (`Task::ALL` order).
    pub(crate) first: [Option<i64>; TASK_COUNT],
    pub(crate) closed_at: Option<i64>,
    /// Each policy's own state (`Policy::ALL` order).
    pub(crate) memory: [PolicyMemory; POLICY_COUNT],
    /// Per policy, the tasks some sample has reported positive (consistency tally).
    pub(crate) told: [u8; POLICY_COUNT],
    /// Per policy, the next sample's sequence number.
    pub(crate) seqs: [u32; POLICY_COUNT],
}

impl Exposure {
    /// A new, open exposure.
    pub(crate) fn new(
        request_id: u64,
        live: u64,
        user: u64,
        imp_ts: i64,
        room: (Option<u64>, Option<u32>),
        features: Arc<ExposureFeatures>,
    ) -> Self {
        Self {
            request_id,
            live,
            user,
            imp_ts,
            author: room.0,
            category: room.1,
            features,
            entered_at: None,
            first: [None; TASK_COUNT],
            closed_at: None,
            memory: [0; POLICY_COUNT],
            told: [0; POLICY_COUNT],
            seqs: [0; POLICY_COUNT],
        }
    }

    /// What the policies see, with the configured tasks' mask.
    pub(crate) fn facts(&self, task_mask: u8) -> Facts<'_> {
        Facts {
            first: &self.first,
            imp_ts: self.imp_ts,
            task_mask,
        }
    }
}

/// A user's stay in a room: the exposure it came from, if it was a click.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Session {
    pub(crate) exposure: Option<u64>,
}

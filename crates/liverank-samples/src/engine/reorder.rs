//! The watermark and the reorder buffer: events are admitted in arrival order (late and
//! duplicate ones rejected), held until the watermark passes them, and released in
//! (event time, arrival) order.

use super::{FastSet, RejectReason};
use liverank_types::Event;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// An event held in the reorder buffer. Stored as its JSON line in checkpoints, because
/// the flat wire record skips absent fields, which a compact binary format cannot.
#[derive(Clone, Debug, PartialEq)]
struct Buffered(Event);

impl Serialize for Buffered {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let json = serde_json::to_string(&self.0).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&json)
    }
}

impl<'de> Deserialize<'de> for Buffered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = String::deserialize(d)?;
        serde_json::from_str(&json)
            .map(Buffered)
            .map_err(serde::de::Error::custom)
    }
}

/// Watermark state, the buffer and the ids seen within the lateness.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Reorder {
    max_ts: Option<i64>,
    arrival: u64,
    /// Events not yet final, sorted by (ts, arrival); almost always appended at the back.
    buffer: VecDeque<(i64, u64, Buffered)>,
    seen: FastSet<u64>,
    seen_order: VecDeque<(i64, u64)>,
}

impl Reorder {
    /// The newest admitted event time.
    pub(crate) fn max_ts(&self) -> Option<i64> {
        self.max_ts
    }

    /// The watermark: newest event time minus `lateness`.
    pub(crate) fn watermark(&self, lateness: i64) -> Option<i64> {
        self.max_ts.map(|m| m.saturating_sub(lateness))
    }

    /// Events held.
    pub(crate) fn len(&self) -> usize {
        self.buffer.len()
    }

    /// Admits an event into the buffer, or says why not.
    pub(crate) fn admit(
        &mut self,
        event: Event,
        lateness: i64,
    ) -> Result<(), (Event, RejectReason)> {
        let ts = event.ts.0;
        if let Some(watermark) = self.watermark(lateness)
            && ts < watermark
        {
            // Exactly `lateness` behind the newest event (ts == watermark) is accepted.
            return Err((event, RejectReason::Late { watermark }));
        }
        if !self.seen.insert(event.event_id.0) {
            return Err((event, RejectReason::Duplicate));
        }
        self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
        let item = (ts, self.arrival, Buffered(event));
        self.arrival += 1;
        if self.buffer.back().is_none_or(|b| b.0 <= ts) {
            self.buffer.push_back(item);
        } else {
            // Out of order: after every buffered event with ts <= this one (stable).
            let at = self.buffer.partition_point(|b| b.0 <= ts);
            self.buffer.insert(at, item);
        }
        Ok(())
    }

    /// The earliest held event if it is stamped before `limit`.
    pub(crate) fn pop_before(&mut self, limit: i64) -> Option<Event> {
        if self.buffer.front().is_some_and(|b| b.0 < limit) {
            self.buffer.pop_front().map(|(_, _, Buffered(e))| e)
        } else {
            None
        }
    }

    /// Remembers a processed event's id until it can only arrive late.
    pub(crate) fn processed(&mut self, ts: i64, id: u64) {
        self.seen_order.push_back((ts, id));
    }

    /// Forgets the ids of events older than `limit - lateness`: they can no longer arrive
    /// as anything but late.
    pub(crate) fn forget_ids(&mut self, limit: i64, lateness: i64) {
        while let Some(&(ts, id)) = self.seen_order.front() {
            if ts >= limit.saturating_sub(lateness) {
                break;
            }
            self.seen.remove(&id);
            self.seen_order.pop_front();
        }
    }
}

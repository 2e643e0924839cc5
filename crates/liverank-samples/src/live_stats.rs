//! Per-room 30 s statistics (LiveForesighter §2.2) and product sequences (§2.3).

use liverank_types::STAT_SERIES;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Number of statistic series per bucket.
pub const SERIES: usize = STAT_SERIES.len();

/// Index of each series in a bucket.
#[derive(Clone, Copy, Debug)]
#[repr(usize)]
pub enum Series {
    /// Impressions of the room.
    Impressions = 0,
    /// Enters.
    Enters = 1,
    /// Viewers in the room at the bucket's last event (a gauge).
    Online = 2,
    /// Likes.
    Likes = 3,
    /// Comments.
    Comments = 4,
    /// Gifts.
    Gifts = 5,
    /// Gift value (coins).
    GiftValue = 6,
    /// Follows.
    Follows = 7,
    /// Cart clicks.
    CartClicks = 8,
    /// Orders.
    Orders = 9,
    /// GMV (cents).
    Gmv = 10,
    /// Shares.
    Shares = 11,
}

/// One bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Bucket start (epoch-aligned).
    pub start: i64,
    /// Values by [`Series`].
    pub values: [u32; SERIES],
}

/// What the engine knows about one room.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveState {
    /// Streamer (from `LiveStart`).
    pub author: Option<u64>,
    /// Category (from `LiveStart`).
    pub category: Option<u32>,
    /// Broadcast start.
    pub start: Option<i64>,
    /// Viewers in the room now.
    pub online: u32,
    /// The newest buckets, oldest first (at most T + 1: T closed and the current one).
    pub buckets: VecDeque<Bucket>,
    /// Products put on sale, oldest first (at most K).
    pub products: VecDeque<[u64; 4]>,
}

impl LiveState {
    /// Adds `amount` to `series` in the bucket of `ts`.
    pub fn add(&mut self, ts: i64, width: i64, keep: usize, series: Series, amount: u64) {
        let bucket = self.bucket_mut(ts, width, keep);
        let v = &mut bucket.values[series as usize];
        *v = v.saturating_add(u32::try_from(amount).unwrap_or(u32::MAX));
    }

    /// Records the online gauge after a change at `ts`.
    pub fn set_online(&mut self, ts: i64, width: i64, keep: usize) {
        let online = self.online;
        self.bucket_mut(ts, width, keep).values[Series::Online as usize] = online;
    }

    fn bucket_mut(&mut self, ts: i64, width: i64, keep: usize) -> &mut Bucket {
        let start = ts.div_euclid(width) * width;
        if self.buckets.back().is_none_or(|b| b.start < start) {
            let mut values = [0; SERIES];
            values[Series::Online as usize] = self.online;
            self.buckets.push_back(Bucket { start, values });
            while self.buckets.len() > keep + 1 {
                self.buckets.pop_front();
            }
        }
        // Events are processed in time order, so the current bucket is the last one.
        let last = self.buckets.len() - 1;
        &mut self.buckets[last]
    }

    /// The `t` buckets that closed last before `ts`, oldest first, flattened; empty
    /// buckets are zeros with the online gauge carried forward.
    pub fn sequence_before(&self, ts: i64, width: i64, t: usize) -> Vec<u32> {
        let last_closed = ts.div_euclid(width) * width - width;
        let first = last_closed - (t as i64 - 1) * width;
        let mut out = Vec::with_capacity(t * SERIES);
        let mut online = 0;
        let mut stored = self.buckets.iter().peekable();
        // Gauge carried into the window from the newest bucket before it.
        while let Some(b) = stored.peek() {
            if b.start >= first {
                break;
            }
            online = b.values[Series::Online as usize];
            stored.next();
        }
        for k in 0..t as i64 {
            let start = first + k * width;
            match stored.peek() {
                Some(b) if b.start == start => {
                    out.extend_from_slice(&b.values);
                    online = b.values[Series::Online as usize];
                    stored.next();
                }
                _ => {
                    let mut values = [0; SERIES];
                    values[Series::Online as usize] = online;
                    out.extend_from_slice(&values);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_covers_closed_buckets_only_and_carries_the_gauge() {
        let mut l = LiveState::default();
        let w = 30_000;
        l.add(5_000, w, 64, Series::Likes, 1);
        l.online = 3;
        l.set_online(6_000, w, 64);
        l.add(65_000, w, 64, Series::Likes, 2); // bucket [60 s, 90 s)
        // At 70 s the last closed bucket is [30 s, 60 s): empty, gauge carried (3).
        let s = l.sequence_before(70_000, w, 3);
        assert_eq!(s.len(), 3 * SERIES);
        let likes: Vec<u32> = s
            .chunks(SERIES)
            .map(|b| b[Series::Likes as usize])
            .collect();
        let online: Vec<u32> = s
            .chunks(SERIES)
            .map(|b| b[Series::Online as usize])
            .collect();
        // Window: [-30 s, 0), [0, 30 s), [30 s, 60 s).
        assert_eq!(likes, vec![0, 1, 0]);
        assert_eq!(online, vec![0, 3, 3]);
        // The bucket of 65 s is not closed at 89.999 s, and is at 90 s.
        let at = |ts| -> u32 { l.sequence_before(ts, w, 1)[Series::Likes as usize] };
        assert_eq!(at(89_999), 0);
        assert_eq!(at(90_000), 2);
    }
}

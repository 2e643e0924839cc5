//! Event time. Inside the engine time is always the event's own timestamp, never the
//! wall clock, so replays are deterministic.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, Sub};

/// Milliseconds since the Unix epoch, as stamped on the event.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct EventTime(pub i64);

/// A non-negative span of time in milliseconds.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct DurationMs(pub u64);

impl DurationMs {
    /// `s` seconds.
    pub const fn from_secs(s: u64) -> Self {
        Self(s * 1_000)
    }
    /// `m` minutes.
    pub const fn from_mins(m: u64) -> Self {
        Self(m * 60_000)
    }
    /// Milliseconds as a plain number.
    pub const fn as_millis(self) -> u64 {
        self.0
    }
    /// Seconds as a float, for reports.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1_000.0
    }
}

impl EventTime {
    /// Milliseconds since the epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// The largest multiple of `grid` that is `<= self` (epoch-aligned bucketing).
    pub fn floor_to(self, grid: DurationMs) -> EventTime {
        let g = grid.0.max(1) as i64;
        EventTime(self.0.div_euclid(g) * g)
    }

    /// Time elapsed since `earlier`, saturating at zero.
    pub fn since(self, earlier: EventTime) -> DurationMs {
        DurationMs(self.0.saturating_sub(earlier.0).max(0) as u64)
    }
}

impl Add<DurationMs> for EventTime {
    type Output = EventTime;
    fn add(self, rhs: DurationMs) -> EventTime {
        EventTime(self.0.saturating_add(rhs.0 as i64))
    }
}

impl Sub<DurationMs> for EventTime {
    type Output = EventTime;
    fn sub(self, rhs: DurationMs) -> EventTime {
        EventTime(self.0.saturating_sub(rhs.0 as i64))
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

impl fmt::Display for DurationMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_to_aligns_to_epoch_grid_including_negative_times() {
        let grid = DurationMs::from_secs(30);
        assert_eq!(EventTime(59_999).floor_to(grid), EventTime(30_000));
        assert_eq!(EventTime(60_000).floor_to(grid), EventTime(60_000));
        assert_eq!(EventTime(-1).floor_to(grid), EventTime(-30_000));
    }

    #[test]
    fn since_saturates_at_zero() {
        assert_eq!(EventTime(5).since(EventTime(9)), DurationMs(0));
        assert_eq!(EventTime(9).since(EventTime(5)), DurationMs(4));
    }
}

//! Timers of the engine: deadlines and windows keyed by (event time, class, sequence),
//! and the flush grid. At one instant the classes run in order: long_view, closes, the
//! policies' windows (by window index), the flush, clean-up.

use crate::policy::MAX_WINDOWS;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A scheduled action; exposure ids, live ids and request ids as `u64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Timer {
    /// long_view turns positive if the session is still open.
    LongView(u64),
    /// A not-entered exposure closes.
    ClickTimeout(u64),
    /// An entered exposure closes at the latest.
    MaxSession(u64),
    /// Window `index` of policy number `policy` (in `Policy::ALL`) has ended.
    Window {
        /// Policy index.
        policy: u8,
        /// Window index.
        index: u8,
        /// Exposure.
        id: u64,
    },
    /// A room's statistics are dropped if nothing of it is open.
    DropLive(u64),
    /// An exposure key `(request_id, live)` is forgotten.
    ForgetKey(u64, u64),
}

const WINDOW_CLASS: u8 = 2;
/// The flush's class: after every window, before clean-up.
const FLUSH_CLASS: u8 = WINDOW_CLASS + MAX_WINDOWS as u8;

impl Timer {
    /// Order of timers at one instant.
    fn class(self) -> u8 {
        match self {
            Timer::LongView(_) => 0,
            Timer::ClickTimeout(_) | Timer::MaxSession(_) => 1,
            Timer::Window { index, .. } => WINDOW_CLASS + index,
            Timer::DropLive(_) | Timer::ForgetKey(..) => FLUSH_CLASS + 1,
        }
    }
}

/// What is due next.
#[derive(Debug)]
pub(crate) enum Due {
    /// The flush at this boundary (still scheduled: [`Timers::flushed`] moves it on).
    Flush(i64),
    /// A timer, taken off the queue.
    Timer(i64, Timer),
}

/// The timer queue and the next flush boundary.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Timers {
    queue: BTreeMap<(i64, u8, u64), Timer>,
    seq: u64,
    next_flush: Option<i64>,
}

impl Timers {
    /// Schedules `timer` at `at`; timers of one instant and class fire in schedule order.
    pub(crate) fn schedule(&mut self, at: i64, timer: Timer) {
        self.seq += 1;
        self.queue.insert((at, timer.class(), self.seq), timer);
    }

    /// Starts the flush grid at the first boundary after `ts`, if not started.
    pub(crate) fn start_grid(&mut self, ts: i64, interval: i64) {
        if self.next_flush.is_none() {
            self.next_flush = Some(next_boundary(ts, interval));
        }
    }

    /// The time of the earliest timer.
    pub(crate) fn first_time(&self) -> Option<i64> {
        self.queue.keys().next().map(|&(t, _, _)| t)
    }

    /// Whatever is due at an instant `<= bound`, earliest (time, class) first.
    pub(crate) fn next_due(&mut self, bound: i64) -> Option<Due> {
        let next_timer = self.queue.keys().next().map(|&(t, c, _)| (t, c));
        let next_flush = self.next_flush.map(|b| (b, FLUSH_CLASS));
        let next = match (next_timer, next_flush) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => return None,
        };
        if next.0 > bound {
            return None;
        }
        if next.1 == FLUSH_CLASS {
            return Some(Due::Flush(next.0));
        }
        self.queue
            .pop_first()
            .map(|((t, _, _), timer)| Due::Timer(t, timer))
    }

    /// The flush at `boundary` ran: the next one is a grid step later or, when `idle`
    /// (nothing open), the first boundary after `bound` (the empty ones are skipped).
    pub(crate) fn flushed(&mut self, boundary: i64, interval: i64, idle: bool, bound: i64) {
        let step = boundary.saturating_add(interval);
        let following = if idle {
            step.max(next_boundary(bound, interval))
        } else {
            step
        };
        // At the end of representable time there is no further boundary.
        self.next_flush = (following > boundary).then_some(following);
    }
}

/// The first multiple of `interval` after `ts` (saturating at the end of time).
pub(crate) fn next_boundary(ts: i64, interval: i64) -> i64 {
    ts.div_euclid(interval)
        .saturating_mul(interval)
        .saturating_add(interval)
}

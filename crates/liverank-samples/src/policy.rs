//! The label policies of SPEC §3, each in one place: what it emits at each decision point
//! of an exposure's life (a 30 s flush, a window after the impression, the close).
//!
//! The engine owns the exposures, the clock and the order of work; a policy only reads
//! an exposure's [`Facts`] (first positive time per task) and keeps one byte of its own
//! [`PolicyMemory`] per exposure (e.g. realtime's "tasks already reported"). Adding a
//! policy: a variant of `liverank_types::Policy` (and its name), an implementation here,
//! its arm in [`label_policy`]; the engine's arrays are sized from `Policy::ALL`.

use crate::config::SampleConfig;
use liverank_types::{LabelMask, Policy, SampleKind, Task};

/// Number of policies.
pub const POLICY_COUNT: usize = Policy::ALL.len();
/// Number of tasks.
pub const TASK_COUNT: usize = Task::ALL.len();
/// Windows one policy may open after an impression.
pub const MAX_WINDOWS: usize = 2;

/// One policy's byte of state per exposure.
pub type PolicyMemory = u8;

/// What a policy sees of one exposure.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    /// First positive time per task (`Task::ALL` order).
    pub first: &'a [Option<i64>; TASK_COUNT],
    /// The impression's time.
    pub imp_ts: i64,
    /// The configured tasks' bits.
    pub task_mask: u8,
}

impl Facts<'_> {
    /// Bits of the configured tasks with a positive.
    pub fn positives(&self) -> u8 {
        self.positives_where(|_| true)
    }

    /// Bits of the configured tasks whose first positive time satisfies `keep`.
    pub fn positives_where(&self, keep: impl Fn(i64) -> bool) -> u8 {
        self.first.iter().enumerate().fold(0, |m, (i, f)| match f {
            Some(t) if keep(*t) => m | (1 << i),
            _ => m,
        }) & self.task_mask
    }
}

/// A sample a policy emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Emit {
    /// Which report.
    pub kind: SampleKind,
    /// The sample's time.
    pub ts: i64,
    /// Labels and mask.
    pub labels: LabelMask,
}

/// Which exposures a flush asks a policy about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushScope {
    /// None: the policy does not flush.
    Nothing,
    /// Exposures with a positive not yet reported ("dirty"), in exposure order.
    Dirty,
    /// Every open exposure, in exposure order.
    Open,
}

/// A label policy: its answer at each decision point. Every method has a "does nothing"
/// default, so a policy states only the points it uses.
pub trait LabelPolicy: Sync {
    /// Which exposures [`LabelPolicy::flush`] is asked about.
    fn flush_scope(&self) -> FlushScope {
        FlushScope::Nothing
    }
    /// At a flush boundary (the flush covers positives stamped before it).
    fn flush(&self, _f: &Facts, _memory: &mut PolicyMemory, _boundary: i64) -> Option<Emit> {
        None
    }
    /// After a [`FlushScope::Dirty`] flush: whether the exposure still has something for
    /// a later flush.
    fn pending(&self, _f: &Facts, _memory: PolicyMemory) -> bool {
        false
    }
    /// The ends of the windows after the impression (ms, inclusive) at which
    /// [`LabelPolicy::window`] is asked; it is asked just after each end.
    fn windows(&self, _c: &SampleConfig) -> [Option<u64>; MAX_WINDOWS] {
        [None; MAX_WINDOWS]
    }
    /// Just after window `index` ended (even when the exposure has closed).
    fn window(
        &self,
        _f: &Facts,
        _memory: &mut PolicyMemory,
        _index: usize,
        _c: &SampleConfig,
    ) -> Option<Emit> {
        None
    }
    /// When the exposure closes at `at`.
    fn close(&self, _f: &Facts, _memory: &mut PolicyMemory, _at: i64) -> Option<Emit> {
        None
    }
    /// Whether the exposure's state must outlive its close (a window is still to come).
    fn holds_after_close(&self, _memory: PolicyMemory) -> bool {
        false
    }
}

/// The implementation of `policy`.
pub fn label_policy(policy: Policy) -> &'static dyn LabelPolicy {
    match policy {
        Policy::Realtime => &Realtime,
        Policy::Fastslow => &Fastslow,
        Policy::Naive30 => &Naive30,
        Policy::Complete => &Complete,
    }
}

/// Position of `policy` in `Policy::ALL` (the index of per-policy arrays).
pub fn policy_index(policy: Policy) -> usize {
    Policy::ALL
        .iter()
        .position(|&q| q == policy)
        .unwrap_or_default()
}

/// Moment's stream: at each flush, the positives that occurred before the boundary and
/// were not reported yet, each masked to itself (first-only); at close, every task not
/// reported yet, positive or negative. Memory: the tasks reported.
#[derive(Clone, Copy, Debug)]
pub struct Realtime;

impl LabelPolicy for Realtime {
    fn flush_scope(&self) -> FlushScope {
        FlushScope::Dirty
    }

    fn flush(&self, f: &Facts, reported: &mut PolicyMemory, boundary: i64) -> Option<Emit> {
        let ready = f.positives_where(|t| t < boundary) & !*reported;
        *reported |= ready;
        (ready != 0).then_some(Emit {
            kind: SampleKind::Flush,
            ts: boundary,
            labels: LabelMask {
                labels: ready,
                mask: ready,
            },
        })
    }

    fn pending(&self, f: &Facts, reported: PolicyMemory) -> bool {
        f.positives() & !reported != 0
    }

    fn close(&self, f: &Facts, reported: &mut PolicyMemory, at: i64) -> Option<Emit> {
        let unreported = f.task_mask & !*reported;
        *reported = f.task_mask;
        (unreported != 0).then_some(Emit {
            kind: SampleKind::Close,
            ts: at,
            labels: LabelMask {
                labels: f.positives() & unreported,
                mask: unreported,
            },
        })
    }
}

/// The legacy windows: a fast sample at impression + fast window with every task
/// (positives up to and including its end), and a slow sample at impression + slow window
/// with only the positives that came in `(fast, slow]`. Memory: bit 0, slow window done.
#[derive(Clone, Copy, Debug)]
pub struct Fastslow;

const SLOW_DONE: PolicyMemory = 1;

impl LabelPolicy for Fastslow {
    fn windows(&self, c: &SampleConfig) -> [Option<u64>; MAX_WINDOWS] {
        [Some(c.fast_window_ms), Some(c.slow_window_ms)]
    }

    fn window(
        &self,
        f: &Facts,
        memory: &mut PolicyMemory,
        index: usize,
        c: &SampleConfig,
    ) -> Option<Emit> {
        let fast_end = f.imp_ts.saturating_add(c.fast_window_ms as i64);
        if index == 0 {
            return Some(Emit {
                kind: SampleKind::Fast,
                ts: fast_end,
                labels: LabelMask {
                    labels: f.positives_where(|t| t <= fast_end),
                    mask: f.task_mask,
                },
            });
        }
        *memory |= SLOW_DONE;
        let slow_end = f.imp_ts.saturating_add(c.slow_window_ms as i64);
        let late = f.positives_where(|t| fast_end < t && t <= slow_end);
        (late != 0).then_some(Emit {
            kind: SampleKind::Slow,
            ts: slow_end,
            labels: LabelMask {
                labels: late,
                mask: late,
            },
        })
    }

    fn holds_after_close(&self, memory: PolicyMemory) -> bool {
        memory & SLOW_DONE == 0
    }
}

/// The ablation: at each flush, every open exposure with every task, labelled by the
/// positives before the boundary (no masks, so a later positive contradicts an earlier
/// negative).
#[derive(Clone, Copy, Debug)]
pub struct Naive30;

impl LabelPolicy for Naive30 {
    fn flush_scope(&self) -> FlushScope {
        FlushScope::Open
    }

    fn flush(&self, f: &Facts, _memory: &mut PolicyMemory, boundary: i64) -> Option<Emit> {
        Some(Emit {
            kind: SampleKind::Flush,
            ts: boundary,
            labels: LabelMask {
                labels: f.positives_where(|t| t < boundary),
                mask: f.task_mask,
            },
        })
    }
}

/// Evaluation: one sample per exposure at its close, every task, every positive.
#[derive(Clone, Copy, Debug)]
pub struct Complete;

impl LabelPolicy for Complete {
    fn close(&self, f: &Facts, _memory: &mut PolicyMemory, at: i64) -> Option<Emit> {
        Some(Emit {
            kind: SampleKind::Close,
            ts: at,
            labels: LabelMask {
                labels: f.positives(),
                mask: f.task_mask,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_indices_follow_policy_all() {
        for (i, p) in Policy::ALL.into_iter().enumerate() {
            assert_eq!(policy_index(p), i);
        }
    }

    #[test]
    fn windows_fit_the_timer_classes() {
        let c = SampleConfig::default();
        for p in Policy::ALL {
            // Windows are asked in order: their ends must increase.
            let ends: Vec<u64> = label_policy(p).windows(&c).into_iter().flatten().collect();
            assert!(ends.windows(2).all(|w| w[0] < w[1]), "{p}");
        }
    }
}

//! The Moment sample engine (SPEC §3): pure, deterministic stream operators that turn
//! platform events into label-correct training samples on a 30 s grid.
//!
//! Main types: [`SampleEngine`] (push events in arrival order, get [`Output`]s),
//! [`SampleConfig`], [`FeatureContext`] (entity tables for features), and the
//! [`checkpoint`] module (atomic, checksummed engine snapshots with the input offset).
//!
//! ```
//! use liverank_samples::{Output, SampleConfig, SampleEngine};
//! use liverank_types::*;
//! let mut engine = SampleEngine::new(SampleConfig::default(), Default::default());
//! let mut out = Vec::new();
//! let ev = |id, s: i64, kind| Event { event_id: EventId(id), ts: EventTime(s * 1000), kind };
//! let (u, l) = (UserId(1), LiveId(2));
//! engine.push(ev(1, 0, EventKind::Impression { user: u, item: ItemRef::Live(l),
//!     request_id: RequestId(9), position: 0, page: Page::Featured }), &mut out);
//! engine.push(ev(2, 5, EventKind::Enter { user: u, live: l, request_id: Some(RequestId(9)) }), &mut out);
//! engine.push(ev(3, 12, EventKind::Like { user: u, live: l }), &mut out);
//! engine.push(ev(4, 20, EventKind::Leave { user: u, live: l, watch_ms: DurationMs(15_000) }), &mut out);
//! engine.finish(&mut out);
//! let samples: Vec<_> = out.iter().filter_map(|o| match o { Output::Sample(s) => Some(s), _ => None }).collect();
//! // Closed at 20 s, before the first flush: one close sample with every task.
//! assert_eq!(samples.len(), 1);
//! assert_eq!(samples[0].labels.get(Task::Like), Some(true));
//! assert_eq!(samples[0].labels.get(Task::LongView), Some(false));
//! ```
//!
//! Key decision: everything is driven by event time and a watermark, and every structure
//! whose iteration order reaches the output is ordered, so the same input gives the same
//! samples whether the engine ran through or was checkpointed and restored midway.

pub mod checkpoint;
pub mod config;
pub mod engine;
pub mod live_registry;
pub mod live_stats;

pub use config::{ConfigError, SampleConfig};
pub use engine::{
    ConsistencyTally, EngineCounters, FeatureContext, Output, RejectReason, SampleEngine,
};
pub use live_registry::{LiveRegistry, OnAir, RoomView};

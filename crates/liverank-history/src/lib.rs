//! The interaction history store of Moment&Cross §2.4 (SPEC §4): per user, the last
//! 10,000 interactions across short video and live, read point in time, and the five GSU
//! sequences of Cross built from them.
//!
//! Main types:
//! * [`HistoryRecord`]: one video play or live session, visible from its `available_at`
//!   (a play's end, a session's `Leave` or the room's `LiveEnd`).
//! * [`HistoryStore`]: append with per-user retention, point-in-time reads, and the
//!   searches (latest N, by author, by category, soft search, long-view mixed). Backends:
//!   [`MemoryStore`] (the reference, for tests), [`EmbeddedStore`] (durable, one redb
//!   file; the default) and [`RedisStore`] (clusters). One conformance suite
//!   (`tests/integration/conformance.rs`) holds all three to the same answers.
//! * [`HistoryBuilder`]: events in, records out, incrementally.
//! * [`GsuAssembler`]: V_short, V_long, V_aidhard, V_livelong, V_mixed as fixed-length,
//!   padded and masked id arrays, the same code for training and serving.
//!
//! ```
//! use liverank_history::*;
//! use liverank_types::{AuthorId, CategoryId, DurationMs, EventTime, UserId};
//! use std::collections::HashMap;
//!
//! let store = MemoryStore::new(&HistoryConfig::default())?;
//! let play = |end: i64, item: u64| HistoryRecord {
//!     ts: EventTime(end - 5_000), available_at: EventTime(end), domain: Domain::Video,
//!     item, author: AuthorId(3), categories: Categories::one(CategoryId(5)),
//!     watch_ms: DurationMs(5_000), long_view: false, like: false, comment: false, gift: false,
//! };
//! let user = UserId(7);
//! store.append(&[(user, play(10_000, 1)), (user, play(20_000, 2))])?;
//! // Point in time: at 20 s only the first play is complete.
//! assert_eq!(store.latest(user, None, EventTime(20_000), 10)?.len(), 1);
//!
//! let vectors = HashMap::from([((Domain::Video, 1), vec![0.0, 1.0]), ((Domain::Video, 2), vec![1.0, 0.0])]);
//! let request = GsuRequest { user, target_author: AuthorId(3), before_ts: EventTime(60_000), query: &[1.0, 0.0] };
//! let gsu = GsuAssembler::new(4).assemble(&store, &request, &vectors)?;
//! assert_eq!(gsu[GsuKind::Short].items, [2, 1, 0, 0]); // newest first, padded
//! assert_eq!(gsu[GsuKind::Long].items[0], 2); // largest dot product with the query first
//! assert_eq!(gsu[GsuKind::AidHard].mask, [true, true, false, false]);
//! assert_eq!(gsu[GsuKind::LiveLong].filled(), 0);
//! # Ok::<(), HistoryError>(())
//! ```
//!
//! Key decisions:
//! * Point in time is by `available_at`, never `ts`: a live session still in progress at
//!   `before_ts` is invisible, so a training sample never sees its own future.
//! * The searches are provided trait methods over one read of the user's visible records,
//!   so backends cannot disagree on search semantics, and the GSU assembler pays one read
//!   for all five sequences (a 10,000-record user: see `liverank bench history`).
//! * Records are `Copy` with a fixed 56-byte encoding shared by the embedded and Redis
//!   backends; decoding is copying, not parsing.
//! * The embedded backend is redb: pure Rust, ACID with an fsync per commit (an
//!   acknowledged append survives `kill -9`), one file, and ordered range scans over
//!   `(user, block)` keys, so one user's history is one scan over 64-record blocks. See
//!   [`embedded`] for the layout and `docs/formats.md` for both backends' formats.

pub mod builder;
pub mod config;
pub mod embedded;
pub mod error;
pub mod gsu;
pub mod memory;
pub mod record;
pub mod redis_store;
pub mod store;
pub mod synthetic;

pub use builder::{BuilderCounters, HistoryBuilder};
pub use config::{BackendKind, HistoryConfig};
pub use embedded::EmbeddedStore;
pub use error::{ErrorClass, HistoryError, Result};
pub use gsu::{GsuAssembler, GsuRequest, GsuScratch};
pub use liverank_types::history::{GsuKind, GsuSequences, Sequence};
pub use memory::MemoryStore;
pub use record::{Categories, Domain, HistoryRecord, InvalidRecord, RECORD_BYTES};
pub use redis_store::RedisStore;
pub use store::{
    DenseVectors, HistoryStore, ItemVectors, NoVectors, SharedHistory, VectorFn, dot, searches,
};

/// Opens the configured backend: the embedded store in `config.path`, or Redis at
/// `config.redis_url` under `config.redis_prefix`.
pub fn open_store(config: &HistoryConfig) -> Result<Box<dyn HistoryStore>> {
    Ok(match config.backend {
        BackendKind::Embedded => Box::new(EmbeddedStore::open(&config.path, config)?),
        BackendKind::Redis => Box::new(RedisStore::connect(config)?),
    })
}

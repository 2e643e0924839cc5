//! The vocabulary of liverank: identifiers, event time, the platform's events, the entity
//! tables written beside them, the interaction-history records and GSU sequences, and the
//! ranker's tasks. No I/O lives here, so every other
//! crate can depend on it.
//!
//! The key decision: an event has one flat wire shape ([`EventRecord`]) shared by JSON
//! Lines and Parquet, converted into the typed [`Event`] by a single validation step. Both
//! formats therefore accept and reject exactly the same inputs.
//!
//! ```
//! use liverank_types::{Event, EventKind, LiveId, UserId};
//! let e: Event = serde_json::from_str(
//!     r#"{"event_id":1,"ts":1767225600000,"type":"like","user":42,"live":7}"#,
//! ).unwrap();
//! assert_eq!(e.kind, EventKind::Like { user: UserId(42), live: LiveId(7) });
//! ```

pub mod entity;
pub mod event;
pub mod hash;
pub mod history;
pub mod id;
pub mod rng;
pub mod sample;
pub mod stats;
pub mod task;
pub mod time;

pub use entity::{Author, AuthorType, Live, Product, TABLE_FORMAT_VERSION, User, Video};
pub use event::{
    EVENT_FORMAT_VERSION, Event, EventKind, EventRecord, EventType, ItemRef, Page, ValidationError,
};
pub use history::{
    Categories, Domain, GsuKind, GsuSequences, HistoryRecord, InvalidRecord, RECORD_BYTES, Sequence,
};
pub use id::{AuthorId, CategoryId, EventId, LiveId, ProductId, RequestId, UserId, VideoId};
pub use sample::{
    ExposureFeatures, LabelMask, Policy, SAMPLE_FORMAT_VERSION, STAT_SERIES, Sample, SampleKind,
    sample_id,
};
pub use task::Task;
pub use time::{DurationMs, EventTime};

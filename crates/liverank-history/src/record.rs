//! One interaction in a user's history: the record type, its validation and its 56-byte
//! encoding live in `liverank_types::history` (the ranker reads them without linking the
//! store); re-exported here under their historical paths.

pub use liverank_types::history::{
    Categories, Domain, HistoryRecord, InvalidRecord, MAX_CATEGORIES, MAX_TIME_MS, RECORD_BYTES,
    RECORD_FORMAT_VERSION,
};

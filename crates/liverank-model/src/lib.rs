//! The ranker (placeholder while the crate is built).

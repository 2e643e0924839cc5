//! Training and evaluation (placeholder while the crate is built).

//! Interaction history store (placeholder while the crate is built).

//! The seeded generator of parameter initialisation and shuffles: the workspace's one
//! generator, `liverank_types::rng::SplitMix64`, re-exported here.
//!
//! Burn's own random init draws from a process-global generator; ours is seeded from the
//! configuration so the same config gives bit-identical weights on every run and platform.

pub use liverank_types::rng::SplitMix64;

//! Approximate nearest-neighbour search over the vectors of live rooms (SPEC §5, last
//! paragraph: "recall by ANN (HNSW) over the rooms that are on air now").
//!
//! * [`VectorIndex`]: the index trait every recall source searches through: insert,
//!   remove, contains, len and a top-k search, best first, ties by smaller id.
//! * [`ExactIndex`]: brute-force search, the reference every other index is measured
//!   against.
//! * [`HnswIndex`]: our hierarchical navigable small-world graph (Malkov & Yashunin 2018)
//!   with deletes as tombstones, filtered search and a rebuild once tombstones pass a
//!   ratio; deterministic given its seed.
//! * [`AnnConfig`]: the configuration section that picks and builds one of them.
//! * [`OnAirIndex`]: a wrapper that follows `LiveStart` / `LiveEnd` and model-version
//!   updates, so a search only ever returns rooms on air.
//!
//! Scores are similarities, higher is better: the inner product, or the cosine (vectors
//! and queries normalised to unit length on the way in), see [`Metric`].

#![warn(missing_docs)]

pub mod config;
pub mod exact;
pub mod hnsw;
pub mod metric;
pub mod on_air;
mod top_k;

pub use config::{AnnConfig, IndexKind};
pub use exact::ExactIndex;
pub use hnsw::{HnswConfig, HnswIndex};
pub use metric::{Metric, dot};
pub use on_air::OnAirIndex;

/// Everything that can go wrong in this crate; all of it is the caller's input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A vector or query whose length is not the index's dimension.
    #[error("vector has {got} dimensions, the index has {expected}")]
    DimensionMismatch {
        /// The index's dimension.
        expected: usize,
        /// The vector's length.
        got: usize,
    },
    /// A NaN or infinite component.
    #[error("vector component {position} is not finite ({value})")]
    NonFinite {
        /// Index of the first bad component.
        position: usize,
        /// Its value.
        value: f32,
    },
    /// A zero vector under the cosine metric (it has no direction).
    #[error("a zero vector has no direction under the cosine metric")]
    ZeroVector,
    /// A configuration value out of range.
    #[error("invalid ANN configuration: {0}")]
    InvalidConfig(String),
}

/// This crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// A similarity index over `u64` ids. Implementations keep at most one vector per id.
pub trait VectorIndex {
    /// The dimension every vector and query must have.
    fn dim(&self) -> usize;

    /// The similarity the scores are in.
    fn metric(&self) -> Metric;

    /// Inserts `vector` under `id`, replacing the vector it had; returns whether `id` was
    /// already present.
    fn insert(&mut self, id: u64, vector: &[f32]) -> Result<bool>;

    /// Removes `id`; returns whether it was present.
    fn remove(&mut self, id: u64) -> bool;

    /// Whether `id` is in the index.
    fn contains(&self, id: u64) -> bool;

    /// The number of ids in the index.
    fn len(&self) -> usize;

    /// Whether the index holds no id.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The (up to) `k` ids most similar to `query` with their scores, best first, equal
    /// scores by smaller id. Returns `min(k, len)` hits; only ids in the index.
    fn search(&self, query: &[f32], k: usize) -> Result<Vec<(u64, f32)>>;
}

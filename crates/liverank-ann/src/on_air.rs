//! The index of rooms on air: it follows the live lifecycle (`LiveStart` inserts the
//! room's vector, `LiveEnd` removes it, a new model version replaces it), so a recall
//! search only ever returns rooms that are on air at that moment.

use liverank_types::id::LiveId;

use crate::{Result, VectorIndex};

/// A [`VectorIndex`] keyed by [`LiveId`] that holds exactly the rooms on air.
///
/// The wrapped index is the single source of truth: a room is on air exactly when its id
/// is in the index. `live_start` of a room already on air replaces its vector (a
/// redelivered event is harmless); `update_vector` of a room not on air is ignored, so a
/// late embedding update can never put an ended room back on air.
#[derive(Debug, Clone)]
pub struct OnAirIndex<I> {
    index: I,
}

impl<I: VectorIndex> OnAirIndex<I> {
    /// Wraps `index`; every id already in it counts as a room on air.
    pub fn new(index: I) -> Self {
        Self { index }
    }

    /// `LiveStart`: the room goes on air with `vector`. Returns whether it was already on
    /// air (its vector is then replaced).
    pub fn live_start(&mut self, live: LiveId, vector: &[f32]) -> Result<bool> {
        self.index.insert(live.get(), vector)
    }

    /// `LiveEnd`: the room goes off air. Returns whether it was on air.
    pub fn live_end(&mut self, live: LiveId) -> bool {
        self.index.remove(live.get())
    }

    /// A new vector for a room (a new model version). Returns `false`, changing nothing,
    /// when the room is not on air.
    pub fn update_vector(&mut self, live: LiveId, vector: &[f32]) -> Result<bool> {
        if !self.index.contains(live.get()) {
            return Ok(false);
        }
        self.index.insert(live.get(), vector)?;
        Ok(true)
    }

    /// Whether `live` is on air.
    pub fn is_on_air(&self, live: LiveId) -> bool {
        self.index.contains(live.get())
    }

    /// The number of rooms on air.
    pub fn on_air(&self) -> usize {
        self.index.len()
    }

    /// The (up to) `k` rooms on air most similar to `query`, best first, equal scores by
    /// smaller id.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<(LiveId, f32)>> {
        Ok(self
            .index
            .search(query, k)?
            .into_iter()
            .map(|(id, score)| (LiveId(id), score))
            .collect())
    }

    /// The wrapped index.
    pub fn index(&self) -> &I {
        &self.index
    }

    /// The wrapped index, mutably (e.g. to change its search width).
    pub fn index_mut(&mut self) -> &mut I {
        &mut self.index
    }
}

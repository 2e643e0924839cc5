//! Brute-force search: every stored vector scored against the query. The reference the
//! approximate index is measured against, and the right choice below a few thousand rooms.

use std::collections::HashMap;

use crate::top_k::TopK;
use crate::{Error, Metric, Result, VectorIndex, dot};

/// Exact top-k by scanning every vector. Vectors are stored contiguously; a remove moves
/// the last vector into the freed slot.
#[derive(Clone, Debug)]
pub struct ExactIndex {
    dim: usize,
    metric: Metric,
    ids: Vec<u64>,
    data: Vec<f32>,
    slots: HashMap<u64, usize>,
}

impl ExactIndex {
    /// An empty index of `dim`-dimensional vectors (`dim` ≥ 1).
    pub fn new(dim: usize, metric: Metric) -> Result<Self> {
        if dim == 0 {
            return Err(Error::InvalidConfig("dimension must be at least 1".into()));
        }
        Ok(Self {
            dim,
            metric,
            ids: Vec::new(),
            data: Vec::new(),
            slots: HashMap::new(),
        })
    }

    /// The stored (for cosine: normalised) vector of `id`.
    pub fn vector(&self, id: u64) -> Option<&[f32]> {
        let slot = *self.slots.get(&id)?;
        Some(&self.data[slot * self.dim..(slot + 1) * self.dim])
    }
}

impl VectorIndex for ExactIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn insert(&mut self, id: u64, vector: &[f32]) -> Result<bool> {
        let vector = self.metric.prepare(self.dim, vector)?;
        if let Some(&slot) = self.slots.get(&id) {
            self.data[slot * self.dim..(slot + 1) * self.dim].copy_from_slice(&vector);
            return Ok(true);
        }
        self.slots.insert(id, self.ids.len());
        self.ids.push(id);
        self.data.extend_from_slice(&vector);
        Ok(false)
    }

    fn remove(&mut self, id: u64) -> bool {
        let Some(slot) = self.slots.remove(&id) else {
            return false;
        };
        let last = self.ids.len() - 1;
        if slot != last {
            let moved = self.ids[last];
            self.ids[slot] = moved;
            self.data
                .copy_within(last * self.dim..(last + 1) * self.dim, slot * self.dim);
            self.slots.insert(moved, slot);
        }
        self.ids.truncate(last);
        self.data.truncate(last * self.dim);
        true
    }

    fn contains(&self, id: u64) -> bool {
        self.slots.contains_key(&id)
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<(u64, f32)>> {
        let query = self.metric.prepare(self.dim, query)?;
        let mut top = TopK::new(k.min(self.ids.len()));
        if k == 0 {
            return Ok(Vec::new());
        }
        for (&id, vector) in self.ids.iter().zip(self.data.chunks_exact(self.dim)) {
            top.push(id, dot(&query, vector));
        }
        Ok(top.into_sorted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_search_ranks_by_inner_product_with_ties_by_id() {
        let mut index = ExactIndex::new(2, Metric::InnerProduct).expect("dim");
        index.insert(10, &[1.0, 0.0]).expect("insert");
        index.insert(3, &[0.0, 1.0]).expect("insert");
        index.insert(7, &[2.0, 0.0]).expect("insert");
        index.insert(1, &[1.0, 0.0]).expect("insert");
        // query (1, 0.5): 7 → 2, 10 → 1, 1 → 1, 3 → 0.5
        let hits = index.search(&[1.0, 0.5], 10).expect("search");
        assert_eq!(hits, vec![(7, 2.0), (1, 1.0), (10, 1.0), (3, 0.5)]);
        assert_eq!(
            index.search(&[1.0, 0.5], 2).expect("search"),
            vec![(7, 2.0), (1, 1.0)]
        );
    }

    #[test]
    fn exact_remove_and_replace_keep_the_mapping() {
        let mut index = ExactIndex::new(2, Metric::Cosine).expect("dim");
        for id in 0..5u64 {
            index.insert(id, &[1.0, id as f32]).expect("insert");
        }
        assert!(index.remove(0));
        assert!(!index.remove(0));
        assert!(index.insert(2, &[0.0, -1.0]).expect("replace"));
        assert_eq!(index.len(), 4);
        assert!(!index.contains(0));
        // id 4 was moved into slot 0; its vector must have moved with it.
        let v4 = index.vector(4).expect("present");
        let norm = (1.0f32 + 16.0).sqrt();
        assert!((v4[0] - 1.0 / norm).abs() < 1e-6 && (v4[1] - 4.0 / norm).abs() < 1e-6);
        let hits = index.search(&[0.0, -1.0], 1).expect("search");
        assert_eq!(hits[0].0, 2);
        assert!((hits[0].1 - 1.0).abs() < 1e-6);
    }
}

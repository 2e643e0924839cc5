//! The order every search result is in (higher score first, equal scores by smaller id)
//! and a bounded top-k collector over it.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// A scored id; `a > b` when `a` ranks before `b`: higher score, then smaller id.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ranked {
    pub score: f32,
    pub id: u64,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.id.cmp(&self.id))
    }
}

/// Keeps the `k` best [`Ranked`] pushed into it.
#[derive(Debug)]
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Reverse<Ranked>>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k.saturating_add(1).min(1 << 16)),
        }
    }

    pub fn push(&mut self, id: u64, score: f32) {
        let item = Ranked { score, id };
        if self.heap.len() < self.k {
            self.heap.push(Reverse(item));
        } else if let Some(Reverse(worst)) = self.heap.peek()
            && item > *worst
        {
            self.heap.pop();
            self.heap.push(Reverse(item));
        }
    }

    /// The kept items as `(id, score)`, best first.
    pub fn into_sorted(self) -> Vec<(u64, f32)> {
        let mut items: Vec<Ranked> = self.heap.into_iter().map(|Reverse(r)| r).collect();
        items.sort_unstable_by(|a, b| b.cmp(a));
        items.into_iter().map(|r| (r.id, r.score)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_best_and_breaks_ties_by_smaller_id() {
        let mut top = TopK::new(3);
        for (id, score) in [(5, 1.0), (2, 3.0), (9, 3.0), (1, 0.5), (4, 3.0), (7, 2.0)] {
            top.push(id, score);
        }
        assert_eq!(top.into_sorted(), vec![(2, 3.0), (4, 3.0), (9, 3.0)]);
        let mut none = TopK::new(0);
        none.push(1, 1.0);
        assert!(none.into_sorted().is_empty());
    }
}

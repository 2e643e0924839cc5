//! The [`HistoryStore`] trait, the item-vector lookup of soft search, and the searches
//! every backend shares.
//!
//! A backend implements three primitives: append a batch, read one user's visible records
//! (oldest first), count a user's records. The searches are provided methods over that one
//! read, in the [`searches`] module, so backends cannot disagree on search semantics and
//! the GSU assembler pays one read for all five sequences.
//!
//! Order: a user's records are ordered by `available_at`, ties by arrival (a later append,
//! or a later position in the same batch, is newer). "Newest first" and retention ("keep
//! the newest") use that order in every backend.

use crate::error::{HistoryError, Result};
use crate::record::{Domain, HistoryRecord};
use liverank_types::{AuthorId, CategoryId, EventTime, UserId};
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

/// A per-user interaction log with retention and point-in-time reads. Shared between
/// threads (`&self` everywhere), so a server can append and read concurrently.
pub trait HistoryStore: Send + Sync {
    /// Appends records in one durable step and trims every touched user to the retention
    /// cap, keeping the newest. Every record is validated first; an invalid one rejects the
    /// whole batch ([`HistoryError::Invalid`] names it) and nothing is stored. When this
    /// returns `Ok` the batch is acknowledged: it survives a crash of the process (for the
    /// durable backends; Redis as durable as its persistence settings).
    fn append(&self, batch: &[(UserId, HistoryRecord)]) -> Result<()>;

    /// Replaces `out` with the user's records with `available_at < before_ts`, oldest
    /// first. An unknown user has none.
    fn read_visible(
        &self,
        user: UserId,
        before_ts: EventTime,
        out: &mut Vec<HistoryRecord>,
    ) -> Result<()>;

    /// Records stored for a user, visible or not.
    fn count(&self, user: UserId) -> Result<usize>;

    /// The user's records with `available_at < before_ts`, oldest first.
    fn visible(&self, user: UserId, before_ts: EventTime) -> Result<Vec<HistoryRecord>> {
        let mut out = Vec::new();
        self.read_visible(user, before_ts, &mut out)?;
        Ok(out)
    }

    /// The user's visible records as a shared slice. A backend with a cache of decoded
    /// histories (the embedded store) hands out its cached copy without copying; the
    /// default reads with [`HistoryStore::read_visible`].
    fn visible_shared(&self, user: UserId, before_ts: EventTime) -> Result<SharedHistory> {
        Ok(SharedHistory::new(
            Arc::new(self.visible(user, before_ts)?),
            before_ts,
        ))
    }

    /// The newest `n` records of a domain (or of both), newest first.
    fn latest(
        &self,
        user: UserId,
        domain: Option<Domain>,
        before_ts: EventTime,
        n: usize,
    ) -> Result<Vec<HistoryRecord>> {
        let records = self.visible(user, before_ts)?;
        Ok(searches::latest(&records, domain)
            .take(n)
            .copied()
            .collect())
    }

    /// Hard search: the newest `n` records of this author (in a domain, or both), newest
    /// first.
    fn by_author(
        &self,
        user: UserId,
        domain: Option<Domain>,
        author: AuthorId,
        before_ts: EventTime,
        n: usize,
    ) -> Result<Vec<HistoryRecord>> {
        let records = self.visible(user, before_ts)?;
        Ok(searches::by_author(&records, domain, author)
            .take(n)
            .copied()
            .collect())
    }

    /// The newest `n` records with this category among theirs, newest first.
    fn by_category(
        &self,
        user: UserId,
        domain: Option<Domain>,
        category: CategoryId,
        before_ts: EventTime,
        n: usize,
    ) -> Result<Vec<HistoryRecord>> {
        let records = self.visible(user, before_ts)?;
        Ok(searches::by_category(&records, domain, category)
            .take(n)
            .copied()
            .collect())
    }

    /// Soft search: the `k` records of a domain whose item vectors have the largest dot
    /// product with `query`, best first; ties (equal scores) newest first. Items without a
    /// vector, or with a NaN score, are left out.
    fn soft_search(
        &self,
        user: UserId,
        domain: Domain,
        query: &[f32],
        vectors: &dyn ItemVectors,
        before_ts: EventTime,
        k: usize,
    ) -> Result<Vec<HistoryRecord>> {
        let records = self.visible(user, before_ts)?;
        let order = searches::soft(&records, domain, query, vectors, k)?;
        Ok(order.iter().map(|&(_, i)| records[i]).collect())
    }

    /// The newest `n` long-viewed records of both domains (V_mixed), newest first.
    fn long_view_mixed(
        &self,
        user: UserId,
        before_ts: EventTime,
        n: usize,
    ) -> Result<Vec<HistoryRecord>> {
        let records = self.visible(user, before_ts)?;
        Ok(searches::long_view_mixed(&records)
            .take(n)
            .copied()
            .collect())
    }
}

/// A user's records shared with a cache, cut at a point in time: it derefs to the records
/// with `available_at < before_ts` only, oldest first.
#[derive(Clone, Debug)]
pub struct SharedHistory {
    records: Arc<Vec<HistoryRecord>>,
    end: usize,
}

impl SharedHistory {
    /// The records of `records` (ordered by `available_at`) visible at `before_ts`.
    pub fn new(records: Arc<Vec<HistoryRecord>>, before_ts: EventTime) -> Self {
        let end = records.partition_point(|r| r.available_at < before_ts);
        Self { records, end }
    }
}

impl Deref for SharedHistory {
    type Target = [HistoryRecord];
    fn deref(&self) -> &[HistoryRecord] {
        &self.records[..self.end]
    }
}

pub use liverank_types::history::ItemVectors;

/// A dense embedding table per domain: row `item` of width `dim`, as a model's tables are
/// laid out. Items past the end have no vector.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DenseVectors {
    dim: usize,
    video: Vec<f32>,
    live: Vec<f32>,
}

impl DenseVectors {
    /// Tables of `dim`-wide rows (`video.len()` and `live.len()` multiples of `dim`).
    pub fn new(dim: usize, video: Vec<f32>, live: Vec<f32>) -> Self {
        Self { dim, video, live }
    }

    /// Row width.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

impl ItemVectors for DenseVectors {
    fn vector(&self, domain: Domain, item: u64) -> Option<&[f32]> {
        let table = match domain {
            Domain::Video => &self.video,
            Domain::Live => &self.live,
        };
        let at = usize::try_from(item).ok()?.checked_mul(self.dim)?;
        table.get(at..at.checked_add(self.dim)?)
    }
}

/// No vectors at all: soft searches return nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoVectors;

impl ItemVectors for NoVectors {
    fn vector(&self, _: Domain, _: u64) -> Option<&[f32]> {
        None
    }
}

/// Item vectors from a closure returning borrowed slices:
/// `VectorFn::new(|domain, item| table.get(&(domain, item)).map(Vec::as_slice))`.
pub struct VectorFn<'v, F> {
    lookup: F,
    borrowed: PhantomData<&'v [f32]>,
}

impl<'v, F: Fn(Domain, u64) -> Option<&'v [f32]>> VectorFn<'v, F> {
    /// Wraps the closure.
    pub fn new(lookup: F) -> Self {
        Self {
            lookup,
            borrowed: PhantomData,
        }
    }
}

impl<'v, F: Fn(Domain, u64) -> Option<&'v [f32]>> ItemVectors for VectorFn<'v, F> {
    fn vector(&self, domain: Domain, item: u64) -> Option<&[f32]> {
        (self.lookup)(domain, item)
    }
}

impl<F> std::fmt::Debug for VectorFn<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VectorFn")
    }
}

/// Dot product with eight independent accumulators (the compiler vectorises it; a plain
/// `zip().sum()` is a serial chain of float adds). Its summation order is fixed, so soft
/// search is deterministic.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// The searches over one user's visible records (oldest first). Each newest-first search
/// is a lazy iterator, so the GSU assembler fills its fixed-length arrays without copies.
pub mod searches {
    use super::{AuthorId, CategoryId, Domain, HistoryError, HistoryRecord, ItemVectors, Result};

    fn in_domain(record: &HistoryRecord, domain: Option<Domain>) -> bool {
        domain.is_none_or(|d| record.domain == d)
    }

    /// Newest first, optionally one domain.
    pub fn latest(
        records: &[HistoryRecord],
        domain: Option<Domain>,
    ) -> impl Iterator<Item = &HistoryRecord> {
        records.iter().rev().filter(move |r| in_domain(r, domain))
    }

    /// Newest first, by this author (hard search).
    pub fn by_author(
        records: &[HistoryRecord],
        domain: Option<Domain>,
        author: AuthorId,
    ) -> impl Iterator<Item = &HistoryRecord> {
        latest(records, domain).filter(move |r| r.author == author)
    }

    /// Newest first, with this category among the record's categories.
    pub fn by_category(
        records: &[HistoryRecord],
        domain: Option<Domain>,
        category: CategoryId,
    ) -> impl Iterator<Item = &HistoryRecord> {
        latest(records, domain).filter(move |r| r.categories.contains(category))
    }

    /// Newest first, long views of both domains.
    pub fn long_view_mixed(records: &[HistoryRecord]) -> impl Iterator<Item = &HistoryRecord> {
        records.iter().rev().filter(|r| r.long_view)
    }

    /// Top `k` of a domain by dot product with `query`: `(score, index into records)`,
    /// best first, equal scores newest (larger index) first. O(n) selection, then a sort
    /// of the `k` kept.
    pub fn soft<V: ItemVectors + ?Sized>(
        records: &[HistoryRecord],
        domain: Domain,
        query: &[f32],
        vectors: &V,
        k: usize,
    ) -> Result<Vec<(f32, usize)>> {
        let mut scored = Vec::new();
        soft_into(records, domain, query, vectors, k, &mut scored)?;
        Ok(scored)
    }

    /// [`soft`] into a reused buffer. Generic over the lookup so a concrete table is
    /// called directly (no virtual call per record); `&dyn ItemVectors` works too.
    pub fn soft_into<V: ItemVectors + ?Sized>(
        records: &[HistoryRecord],
        domain: Domain,
        query: &[f32],
        vectors: &V,
        k: usize,
        scored: &mut Vec<(f32, usize)>,
    ) -> Result<()> {
        scored.clear();
        if k == 0 {
            return Ok(());
        }
        let best_first =
            |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1));
        // Scores below the k-th best so far cannot enter the top k. An equal score can:
        // records come in increasing index, and a larger index wins a tie.
        let mut threshold = f32::NEG_INFINITY;
        let prune_at = k.saturating_mul(2).max(k + 256);
        // Two phases: first the domain's candidates (an unpredictable branch, but no
        // memory stalls), then the vector fetches in a branch-predictable loop, so the
        // CPU keeps many cache misses in flight (a mispredicted branch would squash them).
        let mut candidates: Vec<(u32, u64)> = Vec::with_capacity(records.len());
        candidates.extend(
            records
                .iter()
                .enumerate()
                .filter(|(_, r)| r.domain == domain)
                .map(|(i, r)| (i as u32, r.item)),
        );
        for &(i, item) in &candidates {
            let Some(v) = vectors.vector(domain, item) else {
                continue;
            };
            if v.len() != query.len() {
                return Err(HistoryError::Dimension {
                    domain,
                    item,
                    expected: query.len(),
                    found: v.len(),
                });
            }
            let s = super::dot(v, query);
            if s >= threshold {
                scored.push((s, i as usize));
                if scored.len() >= prune_at {
                    scored.select_nth_unstable_by(k - 1, best_first);
                    scored.truncate(k);
                    threshold = scored[k - 1].0;
                }
            }
        }
        // (A NaN score never passes `s >= threshold`, even against -inf: left out.)
        if scored.len() > k {
            scored.select_nth_unstable_by(k - 1, best_first);
            scored.truncate(k);
        }
        scored.sort_unstable_by(best_first);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_a_double_precision_loop() {
        for n in [0usize, 1, 7, 8, 9, 31, 64, 100] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 37 % 11) as f32 - 5.0) / 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 13 % 7) as f32 - 3.0) / 2.0).collect();
            let want: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            assert!((f64::from(dot(&a, &b)) - want).abs() < 1e-4, "n={n}");
        }
    }

    #[test]
    fn vector_fn_borrows_from_a_table() {
        let table = std::collections::HashMap::<u64, Vec<f32>>::from([(1, vec![1.0, 2.0])]);
        let vectors = VectorFn::new(|_, item| table.get(&item).map(Vec::as_slice));
        assert_eq!(vectors.vector(Domain::Live, 1), Some(&[1.0f32, 2.0][..]));
        assert_eq!(vectors.vector(Domain::Live, 2), None);
        assert_eq!(NoVectors.vector(Domain::Video, 1), None);
    }
}

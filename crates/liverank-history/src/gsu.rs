//! The five GSU sequences of Cross (Moment&Cross §2.4), assembled by one code path for
//! training and serving: V_short, V_long, V_aidhard, V_livelong, V_mixed. The kinds and
//! the sequence types are `liverank_types::history`'s; the searches that fill each kind
//! are here ([`GsuAssembler`]'s one `match` on [`GsuKind`]).
//!
//! One read of the user's visible history feeds all five searches. Training can read a
//! user's history once and call [`GsuAssembler::assemble_from`] for each of the user's
//! samples in time order: it cuts the records at each sample's `before_ts` itself.

use crate::error::Result;
use crate::record::{Domain, HistoryRecord};

use crate::store::{HistoryStore, ItemVectors, searches};
use liverank_types::{AuthorId, EventTime, GsuKind, GsuSequences, Sequence, UserId};

/// What the assembler needs about one (user, target) pair.
#[derive(Clone, Copy, Debug)]
pub struct GsuRequest<'a> {
    /// The viewer.
    pub user: UserId,
    /// The target live's author (V_aidhard).
    pub target_author: AuthorId,
    /// Only records with `available_at < before_ts`: the exposure's instant.
    pub before_ts: EventTime,
    /// Query of the soft searches, e.g. the target live's embedding.
    pub query: &'a [f32],
}

/// Reusable buffers of [`GsuAssembler::assemble_with`].
#[derive(Clone, Debug, Default)]
pub struct GsuScratch {
    scored: Vec<(f32, usize)>,
}

/// Builds the five sequences of length L.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GsuAssembler {
    len: usize,
}

impl Default for GsuAssembler {
    fn default() -> Self {
        Self { len: 50 }
    }
}

impl GsuAssembler {
    /// Sequences of length `len` (the paper's L = 50).
    pub fn new(len: usize) -> Self {
        Self { len }
    }

    /// Sequence length L.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether L is 0 (every sequence empty).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads the user's visible history once and assembles the five sequences.
    pub fn assemble<V: ItemVectors + ?Sized>(
        &self,
        store: &dyn HistoryStore,
        request: &GsuRequest<'_>,
        vectors: &V,
    ) -> Result<GsuSequences> {
        self.assemble_with(store, request, vectors, &mut GsuScratch::default())
    }

    /// [`GsuAssembler::assemble`] with reused buffers (serving: one scratch per worker).
    pub fn assemble_with<V: ItemVectors + ?Sized>(
        &self,
        store: &dyn HistoryStore,
        request: &GsuRequest<'_>,
        vectors: &V,
        scratch: &mut GsuScratch,
    ) -> Result<GsuSequences> {
        let records = store.visible_shared(request.user, request.before_ts)?;
        self.assemble_scored(&records, request, vectors, &mut scratch.scored)
    }

    /// The five sequences over records already read (a store's read order: by
    /// `available_at`, then arrival). Records at or after `request.before_ts` are cut off
    /// here, so one read of a user's whole history serves all of the user's samples.
    pub fn assemble_from<V: ItemVectors + ?Sized>(
        &self,
        records: &[HistoryRecord],
        request: &GsuRequest<'_>,
        vectors: &V,
    ) -> Result<GsuSequences> {
        self.assemble_scored(records, request, vectors, &mut Vec::new())
    }

    fn assemble_scored<V: ItemVectors + ?Sized>(
        &self,
        records: &[HistoryRecord],
        request: &GsuRequest<'_>,
        vectors: &V,
        scored: &mut Vec<(f32, usize)>,
    ) -> Result<GsuSequences> {
        let end = records.partition_point(|r| r.available_at < request.before_ts);
        let records = &records[..end];
        let len = self.len;
        GsuSequences::try_from_fn(|kind| match kind {
            GsuKind::Short => Ok(Sequence::fill(
                len,
                searches::latest(records, Some(Domain::Video)),
            )),
            GsuKind::Long | GsuKind::LiveLong => {
                let domain = if kind == GsuKind::Long {
                    Domain::Video
                } else {
                    Domain::Live
                };
                searches::soft_into(records, domain, request.query, vectors, len, scored)?;
                Ok(Sequence::fill(
                    len,
                    scored.iter().map(|&(_, i)| &records[i]),
                ))
            }
            GsuKind::AidHard => Ok(Sequence::fill(
                len,
                searches::by_author(records, Some(Domain::Video), request.target_author),
            )),
            GsuKind::Mixed => Ok(Sequence::fill(len, searches::long_view_mixed(records))),
        })
    }
}

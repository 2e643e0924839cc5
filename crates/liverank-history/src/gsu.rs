//! The five GSU sequences of Cross (Moment&Cross §2.4), assembled by one code path for
//! training and serving: V_short, V_long, V_aidhard, V_livelong, V_mixed.
//!
//! One read of the user's visible history feeds all five searches. Training can read a
//! user's history once and call [`GsuAssembler::assemble_from`] for each of the user's
//! samples in time order: it cuts the records at each sample's `before_ts` itself.

use crate::config::HistoryConfig;
use crate::error::Result;
use crate::record::{Domain, HistoryRecord};
use crate::store::{HistoryStore, ItemVectors, searches};
use liverank_types::{AuthorId, EventTime, UserId};

/// A fixed-length sequence, padded and masked: position `i < filled` holds the i-th
/// record of the search's order (newest first, or best first for soft search); padding
/// positions hold id 0 and mask `false`. Plain numbers, ready for a tensor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sequence {
    /// Item ids (video or live, by the sequence's domain; 0 on padding).
    pub items: Vec<u64>,
    /// Author ids (0 on padding).
    pub authors: Vec<u64>,
    /// Primary category of each item (0 on padding: the mask tells).
    pub categories: Vec<u32>,
    /// Domain of each item, 0 video, 1 live (0 on padding); V_mixed holds both.
    pub domains: Vec<u8>,
    /// Watch time of each interaction in ms (0 on padding).
    pub watch_ms: Vec<u64>,
    /// Start time of each interaction, ms since the epoch (0 on padding).
    pub ts: Vec<i64>,
    /// Whether the position holds a record.
    pub mask: Vec<bool>,
}

impl Sequence {
    /// `len` positions, all padding.
    pub fn padding(len: usize) -> Self {
        Self {
            items: vec![0; len],
            authors: vec![0; len],
            categories: vec![0; len],
            domains: vec![0; len],
            watch_ms: vec![0; len],
            ts: vec![0; len],
            mask: vec![false; len],
        }
    }

    fn fill<'a>(len: usize, records: impl Iterator<Item = &'a HistoryRecord>) -> Self {
        let mut s = Self::padding(len);
        for (i, r) in records.take(len).enumerate() {
            s.items[i] = r.item;
            s.authors[i] = r.author.0;
            s.categories[i] = r.categories.primary().map_or(0, |c| c.0);
            s.domains[i] = u8::from(r.domain == Domain::Live);
            s.watch_ms[i] = r.watch_ms.0;
            s.ts[i] = r.ts.0;
            s.mask[i] = true;
        }
        s
    }

    /// Positions holding a record.
    pub fn filled(&self) -> usize {
        self.mask.iter().filter(|&&m| m).count()
    }

    /// Sequence length L.
    pub fn len(&self) -> usize {
        self.mask.len()
    }

    /// Whether L is 0.
    pub fn is_empty(&self) -> bool {
        self.mask.is_empty()
    }
}

/// The five sequences for one (user, target live, instant).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GsuSequences {
    /// V_short: the latest short videos.
    pub short: Sequence,
    /// V_long: short videos soft-searched by the query (the target's embedding).
    pub long: Sequence,
    /// V_aidhard: the latest short videos of the target live's author (hard search).
    pub aid_hard: Sequence,
    /// V_livelong: lives soft-searched by the query.
    pub live_long: Sequence,
    /// V_mixed: the latest long-viewed lives and videos.
    pub mixed: Sequence,
}

impl GsuSequences {
    /// The sequences with their names, in the paper's order.
    pub fn named(&self) -> [(&'static str, &Sequence); 5] {
        [
            ("short", &self.short),
            ("long", &self.long),
            ("aid_hard", &self.aid_hard),
            ("live_long", &self.live_long),
            ("mixed", &self.mixed),
        ]
    }
}

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

    /// Sequences of the configured length.
    pub fn from_config(config: &HistoryConfig) -> Self {
        Self::new(config.sequence_len)
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
        let mut soft = |domain| -> Result<Sequence> {
            searches::soft_into(records, domain, request.query, vectors, len, scored)?;
            Ok(Sequence::fill(
                len,
                scored.iter().map(|&(_, i)| &records[i]),
            ))
        };
        let long = soft(Domain::Video)?;
        let live_long = soft(Domain::Live)?;
        Ok(GsuSequences {
            short: Sequence::fill(len, searches::latest(records, Some(Domain::Video))),
            long,
            aid_hard: Sequence::fill(
                len,
                searches::by_author(records, Some(Domain::Video), request.target_author),
            ),
            live_long,
            mixed: Sequence::fill(len, searches::long_view_mixed(records)),
        })
    }
}

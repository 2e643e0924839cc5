//! Recall v1: which on-air rooms are worth ranking for a user. Each source is a
//! [`Recall`] with a [`RecallSource`] label that the response reports per room:
//!
//! * [`Followed`]: rooms of authors the user follows (from follow events), newest follow
//!   first;
//! * [`TopCategories`]: rooms in the user's most frequent categories of history, the
//!   most popular first;
//! * [`EmbeddingRecall`]: user vector · room vector of the model's embedding table, over
//!   a [`RoomIndex`] (exact today, an ANN index later);
//! * [`GraphRecall`]: rooms of authors related to the user's in the author graph
//!   ([`crate::graph`]: co-viewing and shared categories, one and two hops);
//! * [`Popular`]: the most popular rooms on air (the cold-start source).
//!
//! [`merge`] takes each source's rooms up to its quota in source order and deduplicates:
//! a room proposed by several sources is ranked once and lists every source.

use crate::config::RecallQuotas;
use crate::world::OnAirRoom;
use liverank_history::HistoryRecord;
use liverank_types::{AuthorId, CategoryId, UserId};
use serde::Serialize;
use std::collections::HashMap;

/// The label of a recall source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecallSource {
    /// An author the user follows.
    Followed,
    /// One of the user's top categories.
    Category,
    /// Related in the author graph.
    Graph,
    /// Nearest to the user's embedding.
    Embedding,
    /// Popular on air now.
    Popular,
}

impl RecallSource {
    /// Every source, in merge order.
    pub const ALL: [RecallSource; 5] = [
        RecallSource::Followed,
        RecallSource::Category,
        RecallSource::Graph,
        RecallSource::Embedding,
        RecallSource::Popular,
    ];

    /// Wire name (also the metric label).
    pub const fn as_str(self) -> &'static str {
        match self {
            RecallSource::Followed => "followed",
            RecallSource::Category => "category",
            RecallSource::Graph => "graph",
            RecallSource::Embedding => "embedding",
            RecallSource::Popular => "popular",
        }
    }

    /// This source's quota.
    pub fn quota(self, q: &RecallQuotas) -> usize {
        match self {
            RecallSource::Followed => q.followed,
            RecallSource::Category => q.category,
            RecallSource::Graph => q.graph,
            RecallSource::Embedding => q.embedding,
            RecallSource::Popular => q.popular,
        }
    }
}

/// Nearest rooms to a query vector. The exact index scores every on-air room; an ANN
/// index (HNSW over the on-air rooms) implements the same trait later.
pub trait RoomIndex {
    /// Up to `k` rooms, best first (ties: smaller live id first), as indices into the
    /// request's on-air rooms.
    fn nearest(&self, query: &[f32], k: usize, out: &mut Vec<usize>);
}

/// Exact inner-product search over the on-air rooms' vectors (`None`: no row yet).
#[derive(Debug)]
pub struct ExactIndex<'a> {
    vectors: Vec<Option<&'a [f32]>>,
}

impl<'a> ExactIndex<'a> {
    /// An index over one vector (or none) per on-air room.
    pub fn new(vectors: Vec<Option<&'a [f32]>>) -> Self {
        Self { vectors }
    }
}

impl RoomIndex for ExactIndex<'_> {
    fn nearest(&self, query: &[f32], k: usize, out: &mut Vec<usize>) {
        out.clear();
        let mut scored: Vec<(f32, usize)> = self
            .vectors
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (liverank_history::dot(query, v), i)))
            .filter(|(s, _)| s.is_finite())
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        out.extend(scored.into_iter().take(k).map(|(_, i)| i));
    }
}

/// What the sources see of one request.
pub struct RecallContext<'a> {
    /// The viewer.
    pub user: UserId,
    /// Rooms on air now, in live id order.
    pub rooms: &'a [OnAirRoom],
    /// Authors the user follows, most recent first.
    pub follows: &'a [AuthorId],
    /// The user's visible history, oldest first.
    pub history: &'a [HistoryRecord],
    /// The user's embedding, when the model has a row.
    pub user_vector: Option<&'a [f32]>,
    /// Nearest-room search over `rooms`.
    pub index: &'a dyn RoomIndex,
    /// Top categories the category source reads.
    pub top_categories: usize,
    /// Authors related to the user's in the author graph, strongest first (the world's
    /// [`crate::World::related_authors`]; empty without a graph).
    pub related: &'a [AuthorId],
}

impl std::fmt::Debug for RecallContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecallContext")
            .field("user", &self.user)
            .field("rooms", &self.rooms.len())
            .finish_non_exhaustive()
    }
}

/// A labelled recall source.
pub trait Recall: Send + Sync {
    /// Its label.
    fn source(&self) -> RecallSource;
    /// Up to `quota` rooms, best first, as indices into `ctx.rooms` (into `out`, cleared).
    fn recall(&self, ctx: &RecallContext<'_>, quota: usize, out: &mut Vec<usize>);
}

/// Rooms by popularity, descending; ties by live id (the rooms' order).
fn by_popularity(rooms: &[OnAirRoom], mut keep: impl FnMut(&OnAirRoom) -> bool) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..rooms.len()).filter(|&i| keep(&rooms[i])).collect();
    idx.sort_by(|&a, &b| {
        rooms[b]
            .popularity
            .total_cmp(&rooms[a].popularity)
            .then(a.cmp(&b))
    });
    idx
}

/// Each author's rooms on air, as indices in live id order.
fn rooms_by_author(rooms: &[OnAirRoom]) -> HashMap<AuthorId, Vec<usize>> {
    let mut by_author: HashMap<AuthorId, Vec<usize>> = HashMap::new();
    for (i, r) in rooms.iter().enumerate() {
        by_author.entry(r.author).or_default().push(i);
    }
    by_author
}

/// Rooms of followed authors.
#[derive(Clone, Copy, Debug, Default)]
pub struct Followed;

impl Recall for Followed {
    fn source(&self) -> RecallSource {
        RecallSource::Followed
    }
    fn recall(&self, ctx: &RecallContext<'_>, quota: usize, out: &mut Vec<usize>) {
        out.clear();
        if ctx.follows.is_empty() {
            return;
        }
        let by_author = rooms_by_author(ctx.rooms);
        for a in ctx.follows {
            if let Some(rooms) = by_author.get(a) {
                out.extend(rooms.iter().copied());
            }
            if out.len() >= quota {
                break;
            }
        }
        out.truncate(quota);
    }
}

/// The user's most frequent categories in the visible history.
pub fn top_categories(history: &[HistoryRecord], n: usize) -> Vec<CategoryId> {
    let mut counts: HashMap<CategoryId, usize> = HashMap::new();
    for r in history {
        if let Some(c) = r.categories.primary() {
            *counts.entry(c).or_default() += 1;
        }
    }
    let mut ranked: Vec<(CategoryId, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.into_iter().take(n).map(|(c, _)| c).collect()
}

/// Rooms in the user's top categories, most popular first.
#[derive(Clone, Copy, Debug, Default)]
pub struct TopCategories;

impl Recall for TopCategories {
    fn source(&self) -> RecallSource {
        RecallSource::Category
    }
    fn recall(&self, ctx: &RecallContext<'_>, quota: usize, out: &mut Vec<usize>) {
        out.clear();
        let top = top_categories(ctx.history, ctx.top_categories);
        if top.is_empty() {
            return;
        }
        out.extend(
            by_popularity(ctx.rooms, |r| top.contains(&r.category))
                .into_iter()
                .take(quota),
        );
    }
}

/// Rooms of the authors related to the user's, in the graph's order (an author's rooms
/// by live id). Followed authors are left to [`Followed`]: the graph's hop 0 (a seed
/// itself) adds the rooms of history authors the user does not follow.
#[derive(Clone, Copy, Debug, Default)]
pub struct GraphRecall;

impl Recall for GraphRecall {
    fn source(&self) -> RecallSource {
        RecallSource::Graph
    }
    fn recall(&self, ctx: &RecallContext<'_>, quota: usize, out: &mut Vec<usize>) {
        out.clear();
        if ctx.related.is_empty() {
            return;
        }
        let by_author = rooms_by_author(ctx.rooms);
        for a in ctx.related.iter().filter(|a| !ctx.follows.contains(a)) {
            if out.len() >= quota {
                break;
            }
            if let Some(rooms) = by_author.get(a) {
                out.extend(rooms.iter().copied());
            }
        }
        out.truncate(quota);
    }
}

/// Rooms nearest to the user's vector.
#[derive(Clone, Copy, Debug, Default)]
pub struct EmbeddingRecall;

impl Recall for EmbeddingRecall {
    fn source(&self) -> RecallSource {
        RecallSource::Embedding
    }
    fn recall(&self, ctx: &RecallContext<'_>, quota: usize, out: &mut Vec<usize>) {
        out.clear();
        if let Some(q) = ctx.user_vector {
            ctx.index.nearest(q, quota, out);
        }
    }
}

/// The most popular rooms on air.
#[derive(Clone, Copy, Debug, Default)]
pub struct Popular;

impl Recall for Popular {
    fn source(&self) -> RecallSource {
        RecallSource::Popular
    }
    fn recall(&self, ctx: &RecallContext<'_>, quota: usize, out: &mut Vec<usize>) {
        out.clear();
        out.extend(by_popularity(ctx.rooms, |_| true).into_iter().take(quota));
    }
}

/// The sources in merge order: followed, category, graph, embedding, popular.
pub fn default_sources() -> Vec<Box<dyn Recall>> {
    vec![
        Box::new(Followed),
        Box::new(TopCategories),
        Box::new(GraphRecall),
        Box::new(EmbeddingRecall),
        Box::new(Popular),
    ]
}

/// A merged candidate: index into the on-air rooms and the sources that proposed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recalled {
    /// Index into the request's on-air rooms.
    pub room: usize,
    /// Sources, in merge order.
    pub sources: Vec<RecallSource>,
}

/// Runs the sources, each up to its quota, in order; deduplicates (first proposal keeps
/// its place, later ones add their label); stops adding rooms at `max`.
pub fn merge(
    sources: &[Box<dyn Recall>],
    ctx: &RecallContext<'_>,
    quotas: &RecallQuotas,
    max: usize,
) -> Vec<Recalled> {
    let mut out: Vec<Recalled> = Vec::new();
    let mut at: HashMap<usize, usize> = HashMap::new();
    let mut buf = Vec::new();
    for s in sources {
        let label = s.source();
        s.recall(ctx, label.quota(quotas), &mut buf);
        for &room in &buf {
            match at.get(&room) {
                Some(&i) if !out[i].sources.contains(&label) => out[i].sources.push(label),
                Some(_) => {}
                None if out.len() < max => {
                    at.insert(room, out.len());
                    out.push(Recalled {
                        room,
                        sources: vec![label],
                    });
                }
                None => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use liverank_types::{EventTime, ExposureFeatures, LiveId};
    use std::sync::Arc;

    fn room(live: u64, author: u64, category: u32, popularity: f64) -> OnAirRoom {
        OnAirRoom {
            live: LiveId(live),
            author: AuthorId(author),
            category: CategoryId(category),
            start: EventTime(0),
            features: Arc::new(ExposureFeatures::default()),
            popularity,
        }
    }

    #[test]
    fn merge_respects_quotas_dedups_and_labels_every_source() {
        // Rooms: 0 (author 1, cat 5, pop 1), 1 (author 2, cat 6, pop 9),
        // 2 (author 3, cat 5, pop 4), 3 (author 4, cat 7, pop 7).
        let rooms = [
            room(10, 1, 5, 1.0),
            room(11, 2, 6, 9.0),
            room(12, 3, 5, 4.0),
            room(13, 4, 7, 7.0),
        ];
        let v = |x: f32| vec![x, 1.0];
        let (v0, v1, v2, v3) = (v(0.0), v(3.0), v(-1.0), v(2.0));
        let index = ExactIndex::new(vec![Some(&v0), Some(&v1), Some(&v2), Some(&v3)]);
        let user_vector = [1.0f32, 0.0];
        let ctx = RecallContext {
            user: UserId(1),
            rooms: &rooms,
            follows: &[AuthorId(3), AuthorId(9)],
            history: &[],
            user_vector: Some(&user_vector),
            index: &index,
            top_categories: 2,
            related: &[],
        };
        let quotas = RecallQuotas {
            followed: 5,
            category: 5,
            embedding: 2,
            popular: 2,
            graph: 5,
            top_categories: 2,
        };
        let got = merge(&default_sources(), &ctx, &quotas, 10);
        // followed → room 2; no history → no category rooms; embedding top 2 by x:
        // room 1 (3.0), room 3 (2.0); popular top 2: room 1 (9), room 3 (7).
        use RecallSource::*;
        assert_eq!(
            got,
            vec![
                Recalled {
                    room: 2,
                    sources: vec![Followed]
                },
                Recalled {
                    room: 1,
                    sources: vec![Embedding, Popular]
                },
                Recalled {
                    room: 3,
                    sources: vec![Embedding, Popular]
                },
            ]
        );
        // The cap stops new rooms but not labels of rooms already in.
        let capped = merge(&default_sources(), &ctx, &quotas, 2);
        assert_eq!(capped.len(), 2);
        assert_eq!(capped[1].sources, vec![Embedding, Popular]);
    }

    #[test]
    fn graph_rooms_come_after_category_in_the_graphs_order_without_followed_authors() {
        let rooms = [
            room(10, 1, 5, 1.0),
            room(11, 2, 6, 9.0),
            room(12, 3, 5, 4.0),
            room(13, 4, 7, 7.0),
        ];
        let index = ExactIndex::new(vec![None; 4]);
        let ctx = RecallContext {
            user: UserId(1),
            rooms: &rooms,
            follows: &[AuthorId(3)],
            history: &[],
            user_vector: None,
            index: &index,
            top_categories: 2,
            // Author 3 is followed (its room is the followed source's), 9 is not on air.
            related: &[AuthorId(4), AuthorId(3), AuthorId(9), AuthorId(1)],
        };
        let quotas = RecallQuotas {
            popular: 0,
            graph: 2,
            ..RecallQuotas::default()
        };
        let got = merge(&default_sources(), &ctx, &quotas, 10);
        use RecallSource::*;
        let want = [(2, vec![Followed]), (3, vec![Graph]), (0, vec![Graph])];
        assert_eq!(got, want.map(|(room, sources)| Recalled { room, sources }));
    }
}

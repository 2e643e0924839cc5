//! The author graph behind graph recall (issue 20 item 7, the NetEase seed's
//! knowledge-graph source): authors linked by co-viewing (one user engaged with both,
//! close together in that user's history) and through the categories they stream in
//! (author ↔ category ↔ author). [`AuthorGraph::related`] walks it from a user's seed
//! authors, one and two hops out.
//!
//! Everything is counted from the history records the world builds, in event time, so a
//! request sees only what was visible before it. Memory is bounded: each author keeps
//! its strongest `max_neighbours` co-viewed authors and each category its
//! `max_neighbours` most-viewed authors (counts halve-pruned, ties by id).

use crate::config::GraphConfig;
use liverank_history::HistoryRecord;
use liverank_types::{AuthorId, CategoryId, UserId};
use std::collections::{HashMap, VecDeque};

/// Counts keyed by id, pruned to the strongest `cap` when they pass `2 · cap`.
#[derive(Clone, Debug, Default)]
struct Counts<K> {
    by: HashMap<K, u32>,
    total: u64,
}

impl<K: Copy + Eq + std::hash::Hash + Ord> Counts<K> {
    fn add(&mut self, k: K, n: u32, cap: usize) {
        *self.by.entry(k).or_default() += n;
        self.total += u64::from(n);
        if self.by.len() > 2 * cap.max(1) {
            let mut all: Vec<(K, u32)> = self.by.drain().collect();
            all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            all.truncate(cap.max(1));
            self.total = all.iter().map(|&(_, c)| u64::from(c)).sum();
            self.by = all.into_iter().collect();
        }
    }

    /// The entries, strongest first (ties: smaller id).
    fn ranked(&self) -> Vec<(K, u32)> {
        let mut all: Vec<(K, u32)> = self.by.iter().map(|(&k, &c)| (k, c)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all
    }

    fn share(&self, c: u32) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            f64::from(c) / self.total as f64
        }
    }
}

/// Co-viewing and author ↔ category counts.
#[derive(Clone, Debug, Default)]
pub struct AuthorGraph {
    config: GraphConfig,
    co_viewed: HashMap<AuthorId, Counts<AuthorId>>,
    categories_of: HashMap<AuthorId, Counts<CategoryId>>,
    authors_in: HashMap<CategoryId, Counts<AuthorId>>,
    /// Each user's most recent engaged authors, newest last.
    recent: HashMap<UserId, VecDeque<AuthorId>>,
    records: u64,
}

impl AuthorGraph {
    /// An empty graph.
    pub fn new(config: GraphConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Records counted so far (every record; only engaged ones add co-view edges).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Counts one record of `user`: author ↔ category always; a co-view edge to each of the
    /// user's last `window` engaged authors when this one is engaged (a long view, like,
    /// comment or gift).
    pub fn observe(&mut self, user: UserId, record: &HistoryRecord) {
        self.records += 1;
        let cap = self.config.max_neighbours;
        let author = record.author;
        if let Some(c) = record.categories.primary() {
            self.categories_of.entry(author).or_default().add(c, 1, cap);
            self.authors_in.entry(c).or_default().add(author, 1, cap);
        }
        let engaged = record.long_view || record.like || record.comment || record.gift;
        if !engaged || self.config.window == 0 {
            return;
        }
        let recent = self.recent.entry(user).or_default();
        let others: Vec<AuthorId> = recent.iter().copied().filter(|&a| a != author).collect();
        recent.retain(|&a| a != author);
        recent.push_back(author);
        while recent.len() > self.config.window {
            recent.pop_front();
        }
        for other in others {
            self.co_viewed.entry(author).or_default().add(other, 1, cap);
            self.co_viewed.entry(other).or_default().add(author, 1, cap);
        }
    }

    /// Up to `max` authors related to the seeds (strongest first, seeds weighted
    /// `1 / (1 + rank)`), scored as
    /// * hop 0: the seed itself, weight 1;
    /// * hop 1: a co-viewed author, weight × its share of the seed's co-views;
    /// * hop 1 through a category: an author of the seed's categories, weight × the
    ///   category's share of the seed × the author's share of the category × `category_weight`;
    /// * hop 2: a co-viewed author of a hop-1 author, its score × share × `second_hop`.
    ///
    /// Ties: smaller author id.
    pub fn related(&self, seeds: &[AuthorId], max: usize) -> Vec<(AuthorId, f64)> {
        let mut score: HashMap<AuthorId, f64> = HashMap::new();
        let mut first: HashMap<AuthorId, f64> = HashMap::new();
        for (rank, &seed) in seeds.iter().enumerate() {
            let w = 1.0 / (1.0 + rank as f64);
            *score.entry(seed).or_default() += w;
            if let Some(n) = self.co_viewed.get(&seed) {
                for (a, c) in n.ranked() {
                    *first.entry(a).or_default() += w * n.share(c);
                }
            }
            if let Some(cats) = self.categories_of.get(&seed) {
                for (cat, c) in cats.ranked() {
                    let Some(authors) = self.authors_in.get(&cat) else {
                        continue;
                    };
                    let p = cats.share(c) * self.config.category_weight;
                    for (a, n) in authors.ranked() {
                        *score.entry(a).or_default() += w * p * authors.share(n);
                    }
                }
            }
        }
        let mut first_ranked: Vec<(AuthorId, f64)> = first.into_iter().collect();
        first_ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for &(a, s) in &first_ranked {
            *score.entry(a).or_default() += s;
        }
        if self.config.second_hop > 0.0 {
            for &(a, s) in first_ranked.iter().take(self.config.max_neighbours) {
                if let Some(n) = self.co_viewed.get(&a) {
                    for (b, c) in n.ranked() {
                        *score.entry(b).or_default() += s * n.share(c) * self.config.second_hop;
                    }
                }
            }
        }
        let mut out: Vec<(AuthorId, f64)> = score.into_iter().filter(|(_, s)| *s > 0.0).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(max);
        out
    }
}

/// A request's seed authors: the followed ones (newest follow first), then the authors of
/// the user's engaged history records, newest first; each once, at most `max`.
pub fn seed_authors(follows: &[AuthorId], history: &[HistoryRecord], max: usize) -> Vec<AuthorId> {
    let mut out: Vec<AuthorId> = Vec::with_capacity(max);
    let engaged = history
        .iter()
        .rev()
        .filter(|r| r.long_view || r.like || r.comment || r.gift)
        .map(|r| r.author);
    for a in follows.iter().copied().chain(engaged) {
        if out.len() >= max {
            break;
        }
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use liverank_history::{Categories, Domain};
    use liverank_types::{DurationMs, EventTime};

    fn record(author: u64, category: u32, engaged: bool) -> HistoryRecord {
        HistoryRecord {
            ts: EventTime(0),
            available_at: EventTime(1),
            domain: Domain::Live,
            item: 1,
            author: AuthorId(author),
            categories: Categories::one(CategoryId(category)),
            watch_ms: DurationMs(1_000),
            long_view: engaged,
            like: false,
            comment: false,
            gift: false,
        }
    }

    fn config() -> GraphConfig {
        GraphConfig {
            window: 3,
            max_neighbours: 8,
            category_weight: 0.5,
            second_hop: 0.5,
            seeds: 10,
        }
    }

    /// Users 1 and 2 engage with authors 10 then 11, user 3 with 11 then 12; author 20
    /// streams in category 7 like 10 (two records, not engaged: no co-view edge).
    #[test]
    fn related_walks_co_views_one_and_two_hops_and_categories() {
        let mut g = AuthorGraph::new(config());
        for u in [1, 2] {
            g.observe(UserId(u), &record(10, 7, true));
            g.observe(UserId(u), &record(11, 8, true));
        }
        g.observe(UserId(3), &record(11, 8, true));
        g.observe(UserId(3), &record(12, 9, true));
        g.observe(UserId(4), &record(20, 7, false));
        g.observe(UserId(5), &record(20, 7, false));
        assert_eq!(g.records(), 8);
        let got = g.related(&[AuthorId(10)], 10);
        let ids: Vec<u64> = got.iter().map(|(a, _)| a.0).collect();
        // Seed 10 (weight 1): hop 0 → 10 gets 1. Category 7 is all of 10's records and
        // holds 10 and 20 at 2 records each → 10 and 20 get 0.5 · 1 · ½. Co-views of 10:
        // 11 only → 11 gets 1. Hop 2 from 11 (co-views 10 ×2, 12 ×1) → 10 gets 1 · ⅔ · 0.5,
        // 12 gets 1 · ⅓ · 0.5.
        let want = [
            (10, 1.0 + 0.25 + 1.0 / 3.0),
            (11, 1.0),
            (20, 0.25),
            (12, 1.0 / 6.0),
        ];
        assert_eq!(ids, want.map(|(a, _)| a));
        for ((_, s), (_, w)) in got.iter().zip(want) {
            assert!((s - w).abs() < 1e-12, "{got:?}");
        }
        // Without the second hop and the categories, 12 and 20 are gone.
        let mut plain = AuthorGraph::new(GraphConfig {
            second_hop: 0.0,
            category_weight: 0.0,
            ..config()
        });
        for u in [1, 2] {
            plain.observe(UserId(u), &record(10, 7, true));
            plain.observe(UserId(u), &record(11, 8, true));
        }
        plain.observe(UserId(3), &record(11, 8, true));
        plain.observe(UserId(3), &record(12, 9, true));
        let ids: Vec<u64> = plain
            .related(&[AuthorId(10)], 10)
            .iter()
            .map(|(a, _)| a.0)
            .collect();
        assert_eq!(ids, [10, 11]);
    }

    #[test]
    fn the_window_bounds_co_views_and_counts_stay_bounded() {
        let mut g = AuthorGraph::new(GraphConfig {
            window: 2,
            max_neighbours: 4,
            ..config()
        });
        // 1, 2, 3, 4 in a row, a window of 2 engaged authors: 3 meets 1 and 2, then 4
        // meets only 2 and 3 (1 has left the window).
        for a in 1..=4 {
            g.observe(UserId(1), &record(a, 1, true));
        }
        let of = |a: u64| -> Vec<u64> {
            g.co_viewed
                .get(&AuthorId(a))
                .map(|c| c.ranked().iter().map(|(x, _)| x.0).collect())
                .unwrap_or_default()
        };
        assert_eq!(of(4), [2, 3]);
        assert_eq!(of(1), [2, 3]);
        // Many distinct neighbours of one author stay within 2 · cap.
        for a in 100..200 {
            g.observe(UserId(2), &record(1, 1, true));
            g.observe(UserId(2), &record(a, 1, true));
        }
        assert!(g.co_viewed[&AuthorId(1)].by.len() <= 8);
        assert!(g.authors_in[&CategoryId(1)].by.len() <= 8);
    }

    #[test]
    fn seeds_are_follows_then_engaged_history_newest_first_without_repeats() {
        let history = [
            record(5, 1, true),
            record(6, 1, false),
            record(7, 1, true),
            record(5, 1, true),
        ];
        let got = seed_authors(&[AuthorId(9), AuthorId(7)], &history, 3);
        assert_eq!(got, [AuthorId(9), AuthorId(7), AuthorId(5)]);
    }
}

//! Statistics that show whether a stream behaves like a live-streaming platform: exposure
//! mix, highlight lift, product style continuity, gift delays, interest transfer from
//! short video to live, structural sanity, and the oracle click AUC of the ground truth.
//!
//! They are computed from the events and tables alone (plus the ground-truth files where
//! a statistic is about the truth), not from the simulator's internals, so they double as
//! an independent check of the simulator and work on imported real logs too.

use liverank_types::{Event, EventKind, ItemRef, Product};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// A highlight interval from the ground truth.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct TruthHighlight {
    /// Room.
    pub live: u64,
    /// Start, inclusive, ms.
    pub start: i64,
    /// End, exclusive, ms.
    pub end: i64,
    /// What happens.
    pub kind: crate::world::HighlightKind,
}

/// Lookup tables the statistics need.
#[derive(Debug, Default)]
pub struct RealismContext {
    /// Video id → content category.
    pub video_category: HashMap<u64, u32>,
    /// Live id → content category.
    pub live_category: HashMap<u64, u32>,
    /// Live id → sorted highlight intervals.
    pub highlights: HashMap<u64, Vec<(i64, i64)>>,
    /// Product catalogue, for the random-next-product baseline.
    pub products: Vec<Product>,
}

#[derive(Debug, Default)]
struct Session {
    enter: i64,
}

/// Streaming accumulator; feed events in delivery order, then [`RealismStats::finish`].
#[derive(Debug, Default)]
pub struct RealismStats {
    counts: HashMap<&'static str, u64>,
    live_impressions: u64,
    video_impressions: u64,
    // (request, live) → (user, live category, in highlight)
    exposures: HashMap<(u64, u64), (u64, u32, bool)>,
    clicked: HashSet<(u64, u64)>,
    sessions: HashMap<(u64, u64), Session>,
    gift_delays_ms: Vec<i64>,
    last_product: HashMap<u64, (u32, u32)>,
    product_pairs: u64,
    product_same_c2: u64,
    product_baseline: f64,
    c2_share_in_c1: HashMap<u32, f64>,
    plays: HashMap<(u64, u32), u32>,
    live_on_air: HashMap<u64, (i64, Option<i64>)>,
    leave_without_enter: u64,
    room_event_outside_live: u64,
    room_events: u64,
}

/// The finished statistics.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RealismReport {
    /// Events per type.
    pub counts: Vec<(String, u64)>,
    /// Short-video impressions per live impression.
    pub video_per_live: f64,
    /// Live CTR (enters with the exposure's request id / live impressions) in highlights.
    pub ctr_in_highlight: f64,
    /// Live CTR outside highlights.
    pub ctr_outside_highlight: f64,
    /// `ctr_in_highlight / ctr_outside_highlight`.
    pub highlight_lift: f64,
    /// P(next product on sale in a room shares the current product's c2).
    pub next_product_same_c2: f64,
    /// The same probability for a random product of the current product's c1.
    pub random_same_c1_baseline: f64,
    /// Gift delay after `Enter`, minutes: p10, p50, p90.
    pub gift_delay_min: [f64; 3],
    /// Per category with enough data: (category, top-quartile CTR, bottom-half CTR, ratio).
    pub interest_transfer: Vec<(u32, f64, f64, f64)>,
    /// Median of the per-category ratios above.
    pub interest_transfer_median: f64,
    /// `Leave` events with no open session of the same user in the same room.
    pub leave_without_enter: u64,
    /// Room events outside their room's `LiveStart..=LiveEnd`.
    pub room_event_outside_live: u64,
    /// Room events checked.
    pub room_events: u64,
    /// Click AUC of the true probabilities, when the ground truth was given.
    pub oracle_click_auc: Option<f64>,
}

fn quantile(sorted: &[i64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i] as f64
}

impl RealismStats {
    /// Empty statistics for the given lookups.
    pub fn new(context: &RealismContext) -> Self {
        let mut per_c1: HashMap<u32, u64> = HashMap::new();
        let mut per_c2: HashMap<u32, (u32, u64)> = HashMap::new();
        for p in &context.products {
            *per_c1.entry(p.c1.0).or_default() += 1;
            per_c2.entry(p.c2.0).or_insert((p.c1.0, 0)).1 += 1;
        }
        let c2_share_in_c1 = per_c2
            .into_iter()
            .map(|(c2, (c1, n))| (c2, n as f64 / per_c1[&c1] as f64))
            .collect();
        Self {
            c2_share_in_c1,
            ..Self::default()
        }
    }

    /// Accounts one event.
    pub fn add(&mut self, context: &RealismContext, e: &Event) {
        *self.counts.entry(e.event_type().as_str()).or_default() += 1;
        let ts = e.ts.0;
        if e.event_type().is_in_room() || matches!(e.kind, EventKind::Enter { .. }) {
            self.room_events += 1;
            if let Some(live) = e.live() {
                let inside = self
                    .live_on_air
                    .get(&live.0)
                    .is_some_and(|&(s, end)| s <= ts && end.is_none_or(|end| ts <= end));
                if !inside {
                    self.room_event_outside_live += 1;
                }
            }
        }
        match e.kind {
            EventKind::Impression {
                user,
                item,
                request_id,
                ..
            } => match item {
                ItemRef::Video(_) => self.video_impressions += 1,
                ItemRef::Live(live) => {
                    self.live_impressions += 1;
                    let category = context.live_category.get(&live.0).copied().unwrap_or(0);
                    let in_highlight = context.highlights.get(&live.0).is_some_and(|hs| {
                        let i = hs.partition_point(|h| h.1 <= ts);
                        hs.get(i).is_some_and(|h| h.0 <= ts)
                    });
                    self.exposures
                        .insert((request_id.0, live.0), (user.0, category, in_highlight));
                }
            },
            EventKind::Enter {
                user,
                live,
                request_id,
            } => {
                if let Some(r) = request_id {
                    self.clicked.insert((r.0, live.0));
                }
                self.sessions
                    .insert((user.0, live.0), Session { enter: ts });
            }
            EventKind::Leave { user, live, .. }
                if self.sessions.remove(&(user.0, live.0)).is_none() =>
            {
                self.leave_without_enter += 1;
            }
            EventKind::Gift { user, live, .. } => {
                if let Some(s) = self.sessions.get(&(user.0, live.0)) {
                    self.gift_delays_ms.push(ts - s.enter);
                }
            }
            EventKind::VideoPlay { user, video, .. } => {
                if let Some(&c) = context.video_category.get(&video.0) {
                    *self.plays.entry((user.0, c)).or_default() += 1;
                }
            }
            EventKind::LiveStart { live, .. } => {
                self.live_on_air.insert(live.0, (ts, None));
            }
            EventKind::LiveEnd { live } => {
                if let Some(entry) = self.live_on_air.get_mut(&live.0) {
                    entry.1 = Some(ts);
                }
                self.sessions.retain(|k, _| k.1 != live.0);
            }
            EventKind::ProductOnSale { live, c1, c2, .. } => {
                if let Some((_, prev_c2)) = self.last_product.insert(live.0, (c1.0, c2.0)) {
                    self.product_pairs += 1;
                    if prev_c2 == c2.0 {
                        self.product_same_c2 += 1;
                    }
                    self.product_baseline +=
                        self.c2_share_in_c1.get(&prev_c2).copied().unwrap_or(0.0);
                }
            }
            _ => {}
        }
    }

    /// Final figures. `truth` are (request, live, p_click) triples when known.
    pub fn finish(mut self, truth: Option<&[(u64, u64, f64)]>) -> RealismReport {
        let mut counts: Vec<(String, u64)> = self
            .counts
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        counts.sort();
        let (mut hi, mut hi_click, mut lo, mut lo_click) = (0u64, 0u64, 0u64, 0u64);
        for (key, &(_, _, in_highlight)) in &self.exposures {
            let c = u64::from(self.clicked.contains(key));
            if in_highlight {
                hi += 1;
                hi_click += c;
            } else {
                lo += 1;
                lo_click += c;
            }
        }
        let ctr_in = hi_click as f64 / hi.max(1) as f64;
        let ctr_out = lo_click as f64 / lo.max(1) as f64;
        self.gift_delays_ms.sort_unstable();
        let g = &self.gift_delays_ms;
        let gift_delay_min = [0.1, 0.5, 0.9].map(|q| quantile(g, q) / 60_000.0);

        let interest_transfer = self.interest_transfer();
        let mut ratios: Vec<f64> = interest_transfer.iter().map(|r| r.3).collect();
        ratios.sort_by(f64::total_cmp);
        let interest_transfer_median = ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN);

        let oracle_click_auc = truth.map(|t| {
            let scored: Vec<(f64, bool)> = t
                .iter()
                .map(|&(r, l, p)| (p, self.clicked.contains(&(r, l))))
                .collect();
            auc(&scored)
        });
        RealismReport {
            counts,
            video_per_live: self.video_impressions as f64 / self.live_impressions.max(1) as f64,
            ctr_in_highlight: ctr_in,
            ctr_outside_highlight: ctr_out,
            highlight_lift: ctr_in / ctr_out,
            next_product_same_c2: self.product_same_c2 as f64 / self.product_pairs.max(1) as f64,
            random_same_c1_baseline: self.product_baseline / self.product_pairs.max(1) as f64,
            gift_delay_min,
            interest_transfer,
            interest_transfer_median,
            leave_without_enter: self.leave_without_enter,
            room_event_outside_live: self.room_event_outside_live,
            room_events: self.room_events,
            oracle_click_auc,
        }
    }

    fn interest_transfer(&self) -> Vec<(u32, f64, f64, f64)> {
        // Users ranked by their plays of c (users with any video play, zeros included).
        let mut users: Vec<u64> = self.plays.keys().map(|k| k.0).collect();
        users.sort_unstable();
        users.dedup();
        let mut categories: Vec<u32> = self.plays.keys().map(|k| k.1).collect();
        categories.sort_unstable();
        categories.dedup();
        // (user, category) → (exposures, clicks)
        let mut live_by_user: HashMap<(u64, u32), (u64, u64)> = HashMap::new();
        for (key, &(user, category, _)) in &self.exposures {
            let entry = live_by_user.entry((user, category)).or_default();
            entry.0 += 1;
            entry.1 += u64::from(self.clicked.contains(key));
        }
        let mut out = Vec::new();
        for c in categories {
            let mut ranked: Vec<(u32, u64)> = users
                .iter()
                .map(|&u| (self.plays.get(&(u, c)).copied().unwrap_or(0), u))
                .collect();
            ranked.sort_unstable();
            let n = ranked.len();
            let bottom = &ranked[..n / 2];
            let top = &ranked[n - n / 4..];
            // Ties across a boundary make the groups meaningless: require a real gap.
            if top.first().map(|t| t.0) <= bottom.last().map(|b| b.0) {
                continue;
            }
            let ctr = |group: &[(u32, u64)]| {
                let (mut e, mut k) = (0u64, 0u64);
                for &(_, u) in group {
                    if let Some(&(ex, cl)) = live_by_user.get(&(u, c)) {
                        e += ex;
                        k += cl;
                    }
                }
                (e, k)
            };
            let (te, tk) = ctr(top);
            let (be, bk) = ctr(bottom);
            if te < 100 || be < 100 || bk == 0 {
                continue;
            }
            let (t_ctr, b_ctr) = (tk as f64 / te as f64, bk as f64 / be as f64);
            out.push((c, t_ctr, b_ctr, t_ctr / b_ctr));
        }
        out
    }
}

/// Area under the ROC curve of `(score, label)` pairs; ties count one half; NaN when one
/// class is absent. The workspace's one AUC, [`liverank_types::stats::auc`].
pub fn auc(scored: &[(f64, bool)]) -> f64 {
    let (scores, labels): (Vec<f64>, Vec<bool>) = scored.iter().copied().unzip();
    liverank_types::stats::auc(&scores, &labels).unwrap_or(f64::NAN)
}

impl RealismContext {
    /// Lookups from the entity tables and ground-truth highlights.
    pub fn new(
        videos: &[liverank_types::Video],
        lives: &[liverank_types::Live],
        highlights: &[TruthHighlight],
        products: Vec<Product>,
    ) -> Self {
        let mut by_live: HashMap<u64, Vec<(i64, i64)>> = HashMap::new();
        for h in highlights {
            by_live.entry(h.live).or_default().push((h.start, h.end));
        }
        for v in by_live.values_mut() {
            v.sort_unstable();
        }
        Self {
            video_category: videos.iter().map(|v| (v.video.0, v.category.0)).collect(),
            live_category: lives.iter().map(|l| (l.live.0, l.category.0)).collect(),
            highlights: by_live,
            products,
        }
    }

    /// Lookups straight from a generated world.
    pub fn from_world(world: &crate::World) -> Self {
        let lives: Vec<_> = world.lives.iter().map(|l| l.row.clone()).collect();
        Self::new(
            &world.videos,
            &lives,
            &world.truth_highlights(),
            world.products.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: the share of (positive, negative) pairs ordered right, ties half.
    fn auc_pairs(v: &[(f64, bool)]) -> f64 {
        let (mut good, mut n) = (0.0, 0.0);
        for a in v.iter().filter(|x| x.1) {
            for b in v.iter().filter(|x| !x.1) {
                n += 1.0;
                good += if a.0 > b.0 {
                    1.0
                } else if a.0 == b.0 {
                    0.5
                } else {
                    0.0
                };
            }
        }
        good / n
    }

    #[test]
    fn auc_matches_pairwise_count_with_ties() {
        let mut r = crate::rng::SimRng::new(3);
        for _ in 0..20 {
            let v: Vec<(f64, bool)> = (0..60)
                .map(|_| ((r.below(7) as f64) / 7.0, r.chance(0.4)))
                .collect();
            let (a, b) = (auc(&v), auc_pairs(&v));
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        assert_eq!(auc(&[(0.1, false), (0.9, true)]), 1.0);
        assert_eq!(auc(&[(0.5, false), (0.5, true)]), 0.5);
    }
}

//! The live registry: which rooms are on air at an event time, and each room's statistics
//! ring and product sequence, kept in event time from the same [`Event`]s the sample engine
//! sees — the serving side's view of the rooms (SPEC §3 live statistics, §6 candidates).
//!
//! The statistics follow the sample engine's rules exactly (same [`LiveState`] ring, bucket
//! width, T and K from [`SampleConfig`]; an in-room event counts only inside an open
//! session; `Enter` into a room the user is already in closes the old session first;
//! `LiveEnd` closes every session and zeroes the gauge), so for a time-ordered input the
//! features served for a room at `ts` ([`LiveRegistry::stats_before`],
//! [`RoomView::products`]) equal the features a sample of an exposure at `ts` carries.
//!
//! Unlike the engine, the registry applies an event when it arrives (serving wants the
//! newest state, not the state one allowed-lateness ago). An event that arrives out of
//! order is counted in its own bucket if that bucket is still in the ring (and dropped from
//! the statistics, counted in [`RegistryCounters::too_old`], if not); only the online gauge
//! depends on arrival order then. Callers skip events the engine rejects as late or
//! duplicate (`Output::Rejected` from `SampleEngine::push`).
//!
//! A room leaves the on-air set at its `LiveEnd`; its state is kept for one hour after the
//! end (as in the engine) so queries about the recent past still answer, then dropped.

use crate::config::SampleConfig;
use crate::live_stats::{Bucket, LiveState, SERIES, Series};
use liverank_types::{Event, EventKind, ItemRef};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How long a room's state is kept after its `LiveEnd` (the engine's `DropLive`).
pub const KEEP_AFTER_END_MS: i64 = 3_600_000;

/// A room on air.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnAir {
    /// Live (broadcast) id.
    pub live: u64,
    /// Streamer.
    pub author: u64,
    /// Category of the broadcast.
    pub category: u32,
    /// Broadcast start (event time, ms).
    pub start: i64,
}

/// One room as the registry holds it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoomView {
    /// Author, category, start, online gauge, statistics ring and products.
    pub state: LiveState,
    /// `LiveEnd` time, once ended.
    pub ended_at: Option<i64>,
}

impl RoomView {
    /// Whether the room is on air at `ts`: started at or before `ts`, not ended by `ts`.
    pub fn on_air_at(&self, ts: i64) -> bool {
        self.state.start.is_some_and(|s| s <= ts) && self.ended_at.is_none_or(|e| e > ts)
    }

    /// The room's product sequence `(product, c1, c2, c3)`, oldest first (last K).
    pub fn products(&self) -> Vec<[u64; 4]> {
        self.state.products.iter().copied().collect()
    }
}

/// Counters of what the registry saw.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryCounters {
    /// Events applied.
    pub events: u64,
    /// In-room events without an open session (not counted in statistics, as in the engine).
    pub orphans: u64,
    /// Events older than the oldest bucket of their room's ring (statistics skipped).
    pub too_old: u64,
    /// Rooms dropped one hour after their end.
    pub dropped: u64,
}

/// Rooms on air and their statistics, updated in event time. Serde-serialisable, so a
/// pipeline checkpoint can hold it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveRegistry {
    width: i64,
    keep: usize,
    products: usize,
    rooms: BTreeMap<u64, RoomView>,
    /// Open sessions `(live, user)`.
    sessions: BTreeSet<(u64, u64)>,
    /// `(drop time, live)` for ended rooms.
    drops: BTreeSet<(i64, u64)>,
    max_ts: Option<i64>,
    counters: RegistryCounters,
}

impl LiveRegistry {
    /// A registry with the sample engine's bucket width, T and K.
    pub fn new(config: &SampleConfig) -> Self {
        Self {
            width: config.stats_bucket_ms.max(1) as i64,
            keep: config.stats_buckets as usize,
            products: config.products as usize,
            rooms: BTreeMap::new(),
            sessions: BTreeSet::new(),
            drops: BTreeSet::new(),
            max_ts: None,
            counters: RegistryCounters::default(),
        }
    }

    /// The newest event time applied.
    pub fn max_ts(&self) -> Option<i64> {
        self.max_ts
    }

    /// Counters so far.
    pub fn counters(&self) -> &RegistryCounters {
        &self.counters
    }

    /// Rooms on air at `ts`, by live id.
    pub fn on_air_at(&self, ts: i64) -> Vec<OnAir> {
        self.rooms
            .iter()
            .filter(|(_, r)| r.on_air_at(ts))
            .filter_map(|(&live, r)| {
                Some(OnAir {
                    live,
                    author: r.state.author?,
                    category: r.state.category?,
                    start: r.state.start?,
                })
            })
            .collect()
    }

    /// A room's state, if held (on air, or ended less than an hour ago).
    pub fn room(&self, live: u64) -> Option<&RoomView> {
        self.rooms.get(&live)
    }

    /// The T closed buckets before `ts`, flattened, exactly as a sample of an exposure at
    /// `ts` carries them (zeros for an unknown room).
    pub fn stats_before(&self, live: u64, ts: i64) -> Vec<u32> {
        match self.rooms.get(&live) {
            Some(r) => r.state.sequence_before(ts, self.width, self.keep),
            None => vec![0; self.keep * SERIES],
        }
    }

    /// Applies one event (in arrival order; see the module doc for out-of-order events).
    pub fn apply(&mut self, event: &Event) {
        let ts = event.ts.0;
        self.counters.events += 1;
        if self.max_ts.is_none_or(|m| ts > m) {
            self.max_ts = Some(ts);
            self.drop_until(ts);
        }
        match event.kind {
            EventKind::Impression {
                item: ItemRef::Live(live),
                ..
            } => self.stat(ts, live.0, Series::Impressions, 1),
            EventKind::Impression { .. }
            | EventKind::VideoPlay { .. }
            | EventKind::VideoLike { .. }
            | EventKind::VideoComment { .. } => {}
            EventKind::Enter { user, live, .. } => {
                let (live, user) = (live.0, user.0);
                self.stat(ts, live, Series::Enters, 1);
                if self.sessions.remove(&(live, user)) {
                    self.online(ts, live, -1);
                }
                self.sessions.insert((live, user));
                self.online(ts, live, 1);
            }
            EventKind::LiveStart {
                live,
                author,
                category,
            } => {
                let room = self.rooms.entry(live.0).or_default();
                room.state.author = Some(author.0);
                room.state.category = Some(category.0);
                room.state.start = Some(ts);
                room.ended_at = None;
            }
            EventKind::LiveEnd { live } => {
                let live = live.0;
                let users: Vec<(u64, u64)> = self
                    .sessions
                    .range((live, 0)..=(live, u64::MAX))
                    .copied()
                    .collect();
                for k in users {
                    self.sessions.remove(&k);
                }
                let room = self.rooms.entry(live).or_default();
                room.state.online = 0;
                room.ended_at = Some(ts);
                self.drops.insert((ts + KEEP_AFTER_END_MS, live));
            }
            EventKind::ProductOnSale {
                live,
                product,
                c1,
                c2,
                c3,
            } => {
                let k = self.products;
                let room = self.rooms.entry(live.0).or_default();
                room.state.products.push_back([
                    product.0,
                    u64::from(c1.0),
                    u64::from(c2.0),
                    u64::from(c3.0),
                ]);
                while room.state.products.len() > k {
                    room.state.products.pop_front();
                }
            }
            EventKind::Leave { user, live, .. }
            | EventKind::Like { user, live }
            | EventKind::Comment { user, live }
            | EventKind::Follow { user, live }
            | EventKind::Share { user, live }
            | EventKind::Gift { user, live, .. }
            | EventKind::CartClick { user, live, .. }
            | EventKind::Purchase { user, live, .. } => {
                let (live, user) = (live.0, user.0);
                if !self.sessions.contains(&(live, user)) {
                    self.counters.orphans += 1;
                    return;
                }
                match event.kind {
                    EventKind::Leave { .. } => {
                        self.sessions.remove(&(live, user));
                        self.online(ts, live, -1);
                    }
                    EventKind::Like { .. } => self.stat(ts, live, Series::Likes, 1),
                    EventKind::Comment { .. } => self.stat(ts, live, Series::Comments, 1),
                    EventKind::Follow { .. } => self.stat(ts, live, Series::Follows, 1),
                    EventKind::Share { .. } => self.stat(ts, live, Series::Shares, 1),
                    EventKind::Gift { value, .. } => {
                        self.stat(ts, live, Series::Gifts, 1);
                        self.stat(ts, live, Series::GiftValue, value);
                    }
                    EventKind::CartClick { .. } => self.stat(ts, live, Series::CartClicks, 1),
                    EventKind::Purchase { amount, .. } => {
                        self.stat(ts, live, Series::Orders, 1);
                        self.stat(ts, live, Series::Gmv, amount);
                    }
                    _ => {}
                }
            }
        }
    }

    fn drop_until(&mut self, ts: i64) {
        while let Some(&(at, live)) = self.drops.first() {
            if at > ts {
                break;
            }
            self.drops.pop_first();
            // Re-started since (a new LiveStart clears `ended_at`): keep it.
            if self.rooms.get(&live).is_some_and(|r| r.ended_at.is_some()) {
                self.rooms.remove(&live);
                self.counters.dropped += 1;
            }
        }
    }

    fn stat(&mut self, ts: i64, live: u64, series: Series, amount: u64) {
        let (width, keep) = (self.width, self.keep);
        let room = self.rooms.entry(live).or_default();
        let in_order = room
            .state
            .buckets
            .back()
            .is_none_or(|b| b.start <= ts.div_euclid(width) * width);
        if in_order {
            room.state.add(ts, width, keep, series, amount);
        } else if let Some(b) = bucket_of(&mut room.state, ts, width) {
            let v = &mut b.values[series as usize];
            *v = v.saturating_add(u32::try_from(amount).unwrap_or(u32::MAX));
        } else {
            self.counters.too_old += 1;
        }
    }

    fn online(&mut self, ts: i64, live: u64, delta: i32) {
        let (width, keep) = (self.width, self.keep);
        let room = self.rooms.entry(live).or_default();
        room.state.online = room.state.online.saturating_add_signed(delta);
        let in_order = room
            .state
            .buckets
            .back()
            .is_none_or(|b| b.start <= ts.div_euclid(width) * width);
        if in_order {
            room.state.set_online(ts, width, keep);
        } else {
            // A late Enter/Leave: the gauge is "now", so it goes into the newest bucket.
            let online = room.state.online;
            if let Some(b) = room.state.buckets.back_mut() {
                b.values[Series::Online as usize] = online;
            }
        }
    }
}

/// The stored bucket holding `ts` (inserted between its neighbours if missing), or `None`
/// when `ts` is older than the ring's oldest bucket.
fn bucket_of(state: &mut LiveState, ts: i64, width: i64) -> Option<&mut Bucket> {
    let start = ts.div_euclid(width) * width;
    if state.buckets.front().is_none_or(|b| b.start > start) {
        return None;
    }
    let at = state.buckets.partition_point(|b| b.start < start);
    if state.buckets.get(at).is_none_or(|b| b.start != start) {
        // Gauge of a gap bucket: what it would have been, the previous bucket's.
        let mut values = [0; SERIES];
        if at > 0 {
            values[Series::Online as usize] = state.buckets[at - 1].values[Series::Online as usize];
        }
        state.buckets.insert(at, Bucket { start, values });
    }
    state.buckets.get_mut(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Output, SampleEngine};
    use liverank_types::{
        AuthorId, CategoryId, DurationMs, EventId, EventTime, LiveId, ProductId, UserId,
    };
    use std::sync::Arc;

    fn ev(id: u64, ms: i64, kind: EventKind) -> Event {
        Event {
            event_id: EventId(id),
            ts: EventTime(ms),
            kind,
        }
    }

    fn start(id: u64, ms: i64, live: u64) -> Event {
        ev(
            id,
            ms,
            EventKind::LiveStart {
                live: LiveId(live),
                author: AuthorId(100 + live),
                category: CategoryId(7),
            },
        )
    }

    #[test]
    fn on_air_follows_start_and_end_and_drops_an_hour_later() {
        let mut r = LiveRegistry::new(&SampleConfig::default());
        r.apply(&start(1, 1_000, 1));
        r.apply(&start(2, 2_000, 2));
        let on = r.on_air_at(2_000);
        assert_eq!(on.len(), 2);
        assert_eq!(
            on[0],
            OnAir {
                live: 1,
                author: 101,
                category: 7,
                start: 1_000
            }
        );
        // Before room 2 started, only room 1.
        assert_eq!(r.on_air_at(1_500).len(), 1);
        r.apply(&ev(3, 10_000, EventKind::LiveEnd { live: LiveId(1) }));
        assert_eq!(
            r.on_air_at(10_000)
                .iter()
                .map(|o| o.live)
                .collect::<Vec<_>>(),
            vec![2]
        );
        // Still on air just before its end, and still known.
        assert_eq!(r.on_air_at(9_999).len(), 2);
        assert!(r.room(1).is_some());
        // One hour after the end the state is dropped (on the next event's time).
        r.apply(&ev(
            4,
            10_000 + KEEP_AFTER_END_MS - 1,
            EventKind::LiveEnd { live: LiveId(9) },
        ));
        assert!(r.room(1).is_some());
        r.apply(&start(5, 10_000 + KEEP_AFTER_END_MS, 3));
        assert!(r.room(1).is_none());
        assert_eq!(r.counters().dropped, 1);
    }

    #[test]
    fn statistics_count_only_inside_sessions() {
        let mut r = LiveRegistry::new(&SampleConfig::default());
        let (u, l) = (UserId(5), LiveId(1));
        r.apply(&start(1, 0, 1));
        r.apply(&ev(2, 1_000, EventKind::Like { user: u, live: l })); // orphan
        r.apply(&ev(
            3,
            2_000,
            EventKind::Enter {
                user: u,
                live: l,
                request_id: None,
            },
        ));
        r.apply(&ev(4, 3_000, EventKind::Like { user: u, live: l }));
        r.apply(&ev(
            5,
            4_000,
            EventKind::Gift {
                user: u,
                live: l,
                value: 30,
            },
        ));
        r.apply(&ev(
            6,
            5_000,
            EventKind::Enter {
                user: u,
                live: l,
                request_id: None,
            },
        ));
        r.apply(&ev(
            7,
            31_000,
            EventKind::Leave {
                user: u,
                live: l,
                watch_ms: DurationMs(1),
            },
        ));
        assert_eq!(r.counters().orphans, 1);
        let s = r.stats_before(1, 60_000);
        let last = &s[s.len() - 2 * SERIES..];
        // Bucket [0, 30 s): 2 enters, 1 like, 1 gift worth 30, online 1 (re-enter: -1 +1).
        assert_eq!(last[Series::Enters as usize], 2);
        assert_eq!(last[Series::Likes as usize], 1);
        assert_eq!(last[Series::Gifts as usize], 1);
        assert_eq!(last[Series::GiftValue as usize], 30);
        assert_eq!(last[Series::Online as usize], 1);
        // Bucket [30 s, 60 s): the leave drops the gauge to 0.
        assert_eq!(last[SERIES + Series::Online as usize], 0);
    }

    #[test]
    fn out_of_order_event_lands_in_its_own_bucket() {
        let mut r = LiveRegistry::new(&SampleConfig::default());
        let (u, l) = (UserId(5), LiveId(1));
        r.apply(&start(1, 0, 1));
        r.apply(&ev(
            2,
            1_000,
            EventKind::Enter {
                user: u,
                live: l,
                request_id: None,
            },
        ));
        r.apply(&ev(3, 65_000, EventKind::Like { user: u, live: l }));
        // Late by 50 s: bucket [0, 30 s) is still in the ring.
        r.apply(&ev(4, 15_000, EventKind::Like { user: u, live: l }));
        // ... and bucket [30 s, 60 s) was missing: inserted.
        r.apply(&ev(5, 45_000, EventKind::Like { user: u, live: l }));
        let s = r.stats_before(1, 90_000);
        let likes: Vec<u32> = s
            .chunks(SERIES)
            .rev()
            .take(3)
            .map(|b| b[Series::Likes as usize])
            .collect();
        assert_eq!(likes, vec![1, 1, 1]);
    }

    #[test]
    fn products_keep_the_last_k() {
        let config = SampleConfig {
            products: 2,
            ..SampleConfig::default()
        };
        let mut r = LiveRegistry::new(&config);
        for p in 0..3u64 {
            r.apply(&ev(
                p + 1,
                p as i64,
                EventKind::ProductOnSale {
                    live: LiveId(1),
                    product: ProductId(p),
                    c1: CategoryId(1),
                    c2: CategoryId(2),
                    c3: CategoryId(3),
                },
            ));
        }
        let products = r.room(1).map(RoomView::products).unwrap_or_default();
        assert_eq!(products, vec![[1, 1, 2, 3], [2, 1, 2, 3]]);
    }

    /// Served features equal sample features: on a simulated, time-ordered stream, for
    /// every sample the registry's statistics and products at the exposure time (the state
    /// after every event before the exposure) equal what the sample carries.
    #[test]
    fn matches_the_sample_engine_on_a_simulated_stream() {
        let mut sim = liverank_sim::SimConfig::preset(liverank_sim::Preset::Tiny);
        sim.users = 300;
        sim.hours = 2;
        let mut sink = liverank_sim::VecSink::default();
        liverank_sim::Simulation::new(sim)
            .expect("sim")
            .run(&mut sink, |_| {})
            .expect("run");
        let events = sink.events;
        let config = SampleConfig::default();
        let mut engine = SampleEngine::new(config.clone(), Arc::default());
        let mut registry = LiveRegistry::new(&config);
        // Snapshots of the registry's view, per exposure, taken when the impression arrives
        // (all earlier events applied; events at the same ts before it in input order).
        let mut expected = std::collections::HashMap::new();
        let mut out = Vec::new();
        for e in &events {
            if let EventKind::Impression {
                item: ItemRef::Live(live),
                request_id,
                ..
            } = e.kind
            {
                let key = (request_id.0, live.0);
                expected.entry(key).or_insert_with(|| {
                    let room = registry.room(live.0);
                    (
                        registry.stats_before(live.0, e.ts.0),
                        room.map(RoomView::products).unwrap_or_default(),
                    )
                });
            }
            registry.apply(e);
            engine.push(e.clone(), &mut out);
        }
        engine.finish(&mut out);
        let mut checked = 0;
        for o in &out {
            if let Output::Sample(s) = o {
                let (stats, products) = &expected[&(s.request_id.0, s.live.0)];
                assert_eq!(&s.features.stats, stats, "sample {:?}", s.sample_id);
                assert_eq!(&s.features.products, products);
                checked += 1;
            }
        }
        assert!(checked > 100, "only {checked} samples");
    }

    #[test]
    fn serde_round_trip() {
        let mut r = LiveRegistry::new(&SampleConfig::default());
        r.apply(&start(1, 0, 1));
        r.apply(&ev(
            2,
            10,
            EventKind::Enter {
                user: UserId(1),
                live: LiveId(1),
                request_id: None,
            },
        ));
        let bytes = postcard::to_stdvec(&r).expect("ser");
        let back: LiveRegistry = postcard::from_bytes(&bytes).expect("de");
        assert_eq!(back, r);
    }
}

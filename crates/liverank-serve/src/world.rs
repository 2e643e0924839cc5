//! The world as serving reads it — rooms on air with the features an exposure would carry,
//! follows, the users' history — and where posted events go.
//!
//! Two traits keep the HTTP layer independent of who owns that state: [`World`] (the read
//! side of a request) and [`EventIngest`] (validated events in, one outcome each).
//! [`LocalWorld`] implements both in process: the live registry of `liverank-samples`
//! (the sample engine's statistics rules), the history builder feeding a
//! [`HistoryStore`], a follow index and the entity tables. The binary composes it with
//! the streaming pipeline (samples, online training) behind the same [`EventIngest`].
//!
//! No skew by construction: [`exposure_features`] computes a candidate's
//! [`ExposureFeatures`] with the sample engine's formulas (statistics of the closed
//! buckets before `ts`, the room's last K products, the room's age, the hour, the entity
//! rows), so the row the ranker scores is the row a sample of that exposure carries.

use crate::config::GraphConfig;
use crate::error::{Result, ServeError};
use crate::graph::AuthorGraph;
use liverank_history::{HistoryBuilder, HistoryRecord, HistoryStore};
use liverank_samples::{FeatureContext, LiveRegistry, SampleConfig};
use liverank_types::{
    AuthorId, CategoryId, Event, EventId, EventKind, EventTime, ExposureFeatures, LiveId, UserId,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, RwLock};

/// A room on air at the request time, with what ranking and recall need of it.
#[derive(Clone, Debug, PartialEq)]
pub struct OnAirRoom {
    /// The broadcast.
    pub live: LiveId,
    /// Its streamer.
    pub author: AuthorId,
    /// Its category.
    pub category: CategoryId,
    /// Broadcast start.
    pub start: EventTime,
    /// Features of an exposure of this room at the request time (position 0, the user's
    /// profile filled in).
    pub features: Arc<ExposureFeatures>,
    /// Recent demand: enters in the last two closed buckets plus the viewers in the last.
    pub popularity: f64,
}

/// One room's state for `GET /v1/lives/{id}`.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomDetail {
    /// The broadcast.
    pub live: LiveId,
    /// Streamer, once its `LiveStart` was seen.
    pub author: Option<AuthorId>,
    /// Category, once its `LiveStart` was seen.
    pub category: Option<CategoryId>,
    /// Broadcast start.
    pub start: Option<EventTime>,
    /// `LiveEnd` time, once ended.
    pub ended_at: Option<EventTime>,
    /// On air at the asked time.
    pub on_air: bool,
    /// Viewers now.
    pub online: u32,
    /// The closed buckets before the asked time, oldest first, `buckets × series`.
    pub stats: Vec<u32>,
    /// Products on sale `(product, c1, c2, c3)`, oldest first.
    pub products: Vec<[u64; 4]>,
}

/// The read side of the world for requests.
pub trait World: Send + Sync {
    /// The newest event time ingested (the default request time).
    fn event_time(&self) -> Option<EventTime>;
    /// Rooms on air at `ts`, with the features of an exposure of `user` at `ts`, in live
    /// id order (into `out`, cleared first).
    fn on_air(&self, user: UserId, ts: EventTime, out: &mut Vec<OnAirRoom>);
    /// One room's state at `ts`, if the room is known.
    fn room(&self, live: LiveId, ts: EventTime) -> Option<RoomDetail>;
    /// Authors the user follows, most recent first (into `out`, cleared first).
    fn follows(&self, user: UserId, out: &mut Vec<AuthorId>);
    /// Whether anything is known about the user (history, follows or a profile).
    fn knows_user(&self, user: UserId) -> bool;
    /// The users' interaction history.
    fn history(&self) -> &dyn HistoryStore;
    /// Up to `max` authors related to `seeds` in the author graph, strongest first (the
    /// graph recall source); none where the world keeps no graph.
    fn related_authors(&self, seeds: &[AuthorId], max: usize) -> Vec<AuthorId> {
        let _ = (seeds, max);
        Vec::new()
    }
}

/// What happened to one posted event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Applied.
    Accepted,
    /// Its `event_id` was seen before: nothing changed (idempotent).
    Duplicate,
}

/// Where validated events go.
pub trait EventIngest: Send + Sync {
    /// Applies `events` in order; one outcome per event.
    fn ingest(&self, events: &[Event]) -> Result<Vec<IngestOutcome>>;
    /// Makes what was ingested durable (graceful shutdown); a no-op where nothing is kept.
    fn checkpoint(&self) -> Result<()>;
}

/// The features an exposure of `live` to `user` at `ts` at `position` carries — the
/// sample engine's formulas over the registry's state of the room.
pub fn exposure_features(
    registry: &LiveRegistry,
    context: &FeatureContext,
    user: UserId,
    live: LiveId,
    ts: EventTime,
    position: u32,
    stats_buckets: u32,
) -> ExposureFeatures {
    let ts = ts.0;
    let room = registry.room(live.0);
    let author = room.and_then(|r| r.state.author);
    let author_row = author.and_then(|a| context.authors.get(&a));
    ExposureFeatures {
        user_profile: context.users.get(&user.0).copied(),
        author_type: author_row.map(|a| a.0.clone()),
        fans_bucket: author_row.map(|a| a.1),
        position,
        hour: (ts.rem_euclid(86_400_000) / 3_600_000) as u8,
        live_age_ms: room
            .and_then(|r| r.state.start)
            .map_or(0, |s| (ts - s).max(0) as u64),
        stats: registry.stats_before(live.0, ts),
        stats_len: stats_buckets,
        products: room.map_or_else(Vec::new, |r| r.products()),
    }
}

/// Popularity of a room from its statistics (`buckets × series`, oldest first): enters in
/// the last two closed buckets plus the viewers in the last one.
pub fn popularity(stats: &[u32]) -> f64 {
    use liverank_samples::live_stats::{SERIES, Series};
    let buckets: Vec<&[u32]> = stats.chunks_exact(SERIES).collect();
    let enters: u32 = buckets
        .iter()
        .rev()
        .take(2)
        .map(|b| b[Series::Enters as usize])
        .sum();
    let online = buckets.last().map_or(0, |b| b[Series::Online as usize]);
    f64::from(enters) + f64::from(online)
}

/// Follows kept per user (the most recent).
const FOLLOWS_PER_USER: usize = 500;
/// Event ids remembered for deduplication (the oldest forgotten first).
const DEDUP_WINDOW: usize = 1 << 20;

#[derive(Debug)]
struct LocalState {
    registry: LiveRegistry,
    builder: HistoryBuilder,
    follows: HashMap<UserId, VecDeque<AuthorId>>,
    seen: HashSet<EventId>,
    seen_order: VecDeque<EventId>,
    newest: Option<EventTime>,
    /// Authors by co-viewing and shared categories, from the history records built.
    graph: AuthorGraph,
}

/// The in-process world: live registry, history (builder + store), follows, entity rows.
pub struct LocalWorld {
    state: RwLock<LocalState>,
    history: Arc<dyn HistoryStore>,
    context: Arc<FeatureContext>,
    stats_buckets: u32,
}

impl std::fmt::Debug for LocalWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalWorld")
            .field("stats_buckets", &self.stats_buckets)
            .finish_non_exhaustive()
    }
}

impl LocalWorld {
    /// A world with the sample engine's statistics settings, a history store, the
    /// history builder (with the entity tables it knows) and the feature entity rows.
    pub fn new(
        samples: &SampleConfig,
        history: Arc<dyn HistoryStore>,
        builder: HistoryBuilder,
        context: Arc<FeatureContext>,
    ) -> Self {
        Self {
            state: RwLock::new(LocalState {
                registry: LiveRegistry::new(samples),
                builder,
                follows: HashMap::new(),
                seen: HashSet::new(),
                seen_order: VecDeque::new(),
                newest: None,
                graph: AuthorGraph::new(GraphConfig::default()),
            }),
            history,
            context,
            stats_buckets: samples.stats_buckets,
        }
    }

    /// This world with an author graph of these settings (the default ones otherwise).
    pub fn with_graph(self, config: GraphConfig) -> Self {
        if let Ok(mut s) = self.state.write() {
            s.graph = AuthorGraph::new(config);
        }
        self
    }

    /// Counts records appended to the history store directly (a store built offline, a
    /// benchmark) into the author graph, in order; ingested events are counted as built.
    pub fn observe_history(&self, records: &[(UserId, HistoryRecord)]) {
        if let Ok(mut s) = self.state.write() {
            for (user, record) in records {
                s.graph.observe(*user, record);
            }
        }
    }

    /// History records the author graph has counted.
    pub fn graph_records(&self) -> u64 {
        self.read().map_or(0, |s| s.graph.records())
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, LocalState>> {
        self.state
            .read()
            .map_err(|_| ServeError::Internal("world lock poisoned".into()))
    }

    /// Features of an exposure of `live` to `user` at `ts` and `position`, from the
    /// current state (the skew test compares these with the sample engine's).
    pub fn features_of(
        &self,
        user: UserId,
        live: LiveId,
        ts: EventTime,
        position: u32,
    ) -> Result<ExposureFeatures> {
        let s = self.read()?;
        Ok(exposure_features(
            &s.registry,
            &self.context,
            user,
            live,
            ts,
            position,
            self.stats_buckets,
        ))
    }

    /// Rooms on air at the newest event time.
    pub fn on_air_count(&self) -> usize {
        self.read().map_or(0, |s| {
            s.newest.map_or(0, |t| s.registry.on_air_at(t.0).len())
        })
    }

    /// Counters of the live registry (events, orphans, too old, dropped).
    pub fn registry_events(&self) -> u64 {
        self.read().map_or(0, |s| s.registry.counters().events)
    }
}

impl World for LocalWorld {
    fn event_time(&self) -> Option<EventTime> {
        self.read().ok().and_then(|s| s.newest)
    }

    fn on_air(&self, user: UserId, ts: EventTime, out: &mut Vec<OnAirRoom>) {
        out.clear();
        let Ok(s) = self.read() else { return };
        for room in s.registry.on_air_at(ts.0) {
            let live = LiveId(room.live);
            let features = exposure_features(
                &s.registry,
                &self.context,
                user,
                live,
                ts,
                0,
                self.stats_buckets,
            );
            out.push(OnAirRoom {
                live,
                author: AuthorId(room.author),
                category: CategoryId(room.category),
                start: EventTime(room.start),
                popularity: popularity(&features.stats),
                features: Arc::new(features),
            });
        }
    }

    fn room(&self, live: LiveId, ts: EventTime) -> Option<RoomDetail> {
        let s = self.read().ok()?;
        let view = s.registry.room(live.0)?;
        Some(RoomDetail {
            live,
            author: view.state.author.map(AuthorId),
            category: view.state.category.map(CategoryId),
            start: view.state.start.map(EventTime),
            ended_at: view.ended_at.map(EventTime),
            on_air: view.on_air_at(ts.0),
            online: view.state.online,
            stats: s.registry.stats_before(live.0, ts.0),
            products: view.products(),
        })
    }

    fn follows(&self, user: UserId, out: &mut Vec<AuthorId>) {
        out.clear();
        if let Ok(s) = self.read()
            && let Some(f) = s.follows.get(&user)
        {
            out.extend(f.iter().rev().copied());
        }
    }

    fn knows_user(&self, user: UserId) -> bool {
        let followed = self
            .read()
            .is_ok_and(|s| s.follows.get(&user).is_some_and(|f| !f.is_empty()));
        followed
            || self.context.users.contains_key(&user.0)
            || self.history.count(user).is_ok_and(|n| n > 0)
    }

    fn history(&self) -> &dyn HistoryStore {
        self.history.as_ref()
    }

    fn related_authors(&self, seeds: &[AuthorId], max: usize) -> Vec<AuthorId> {
        if seeds.is_empty() || max == 0 {
            return Vec::new();
        }
        self.read().map_or_else(
            |_| Vec::new(),
            |s| {
                s.graph
                    .related(seeds, max)
                    .into_iter()
                    .map(|(a, _)| a)
                    .collect()
            },
        )
    }
}

impl EventIngest for LocalWorld {
    fn ingest(&self, events: &[Event]) -> Result<Vec<IngestOutcome>> {
        let mut records: Vec<(UserId, HistoryRecord)> = Vec::new();
        let mut outcomes = Vec::with_capacity(events.len());
        {
            let mut s = self
                .state
                .write()
                .map_err(|_| ServeError::Internal("world lock poisoned".into()))?;
            for event in events {
                if !s.seen.insert(event.event_id) {
                    outcomes.push(IngestOutcome::Duplicate);
                    continue;
                }
                s.seen_order.push_back(event.event_id);
                if s.seen_order.len() > DEDUP_WINDOW
                    && let Some(old) = s.seen_order.pop_front()
                {
                    s.seen.remove(&old);
                }
                s.newest = Some(s.newest.map_or(event.ts, |n| n.max(event.ts)));
                if let EventKind::Follow { user, live } = event.kind
                    && let Some(author) = s.registry.room(live.0).and_then(|r| r.state.author)
                {
                    let list = s.follows.entry(user).or_default();
                    list.retain(|&a| a != AuthorId(author));
                    list.push_back(AuthorId(author));
                    if list.len() > FOLLOWS_PER_USER {
                        list.pop_front();
                    }
                }
                s.registry.apply(event);
                let built = records.len();
                s.builder.push(event, &mut records);
                for (user, record) in &records[built..] {
                    s.graph.observe(*user, record);
                }
                outcomes.push(IngestOutcome::Accepted);
            }
        }
        if !records.is_empty() {
            self.history.append(&records)?;
        }
        Ok(outcomes)
    }

    fn checkpoint(&self) -> Result<()> {
        // The history store's appends are durable when they return; the registry is
        // rebuilt from the events by a restart (the pipeline checkpoints its own state).
        Ok(())
    }
}

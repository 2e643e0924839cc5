//! The Moment sample engine: exposures keyed by `(request_id, live)`, sessions keyed by
//! `(user, live)`, a watermark over event time, and the four label policies.
//!
//! Order of work at one instant `T` (SPEC §3 edge rules): long_view turning positive,
//! then closes (deadlines act before events stamped `T`), then the fastslow windows, then
//! the flush at boundary `T` (which covers events before `T`), then the events stamped
//! `T` in input order. Every structure whose iteration order reaches the output is
//! ordered (B-trees, vectors), so a restored engine emits exactly what an uninterrupted
//! one would.

use crate::config::SampleConfig;
use crate::live_stats::{LiveState, Series};
use liverank_types::{
    AuthorId, CategoryId, Event, EventKind, EventTime, ExposureFeatures, ItemRef, LabelMask,
    LiveId, Policy, RequestId, Sample, SampleKind, Task, UserId, sample_id,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// A fast hasher for the engine's integer keys (ids are not attacker-chosen hash-flood
/// material in this setting, and SipHash cost a fifth of the engine's time).
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517C_C1B7_2722_0A95);
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
type FastSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

/// Entity tables the features are drawn from (optional: unknown ids give `None`).
#[derive(Clone, Debug, Default)]
pub struct FeatureContext {
    /// User id → `[gender, age_bucket, city_tier, activity_level, payer_level]`.
    pub users: HashMap<u64, [u8; 5]>,
    /// Author id → (type name, fans bucket).
    pub authors: HashMap<u64, (String, u8)>,
}

impl FeatureContext {
    /// From the entity tables.
    pub fn new(users: &[liverank_types::User], authors: &[liverank_types::Author]) -> Self {
        Self {
            users: users
                .iter()
                .map(|u| {
                    let profile = [
                        u.gender,
                        u.age_bucket,
                        u.city_tier,
                        u.activity_level,
                        u.payer_level,
                    ];
                    (u.user.0, profile)
                })
                .collect(),
            authors: authors
                .iter()
                .map(|a| {
                    (
                        a.author.0,
                        (a.author_type.as_str().to_string(), a.fans_bucket),
                    )
                })
                .collect(),
        }
    }
}

/// Why the engine rejected an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// Older than the watermark.
    Late {
        /// The watermark at arrival.
        watermark: i64,
    },
    /// Its `event_id` was seen before.
    Duplicate,
    /// An in-room event with no open session of the user in the room.
    Orphan,
}

/// What the engine produces.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// A training sample.
    Sample(Sample),
    /// A rejected event: to the dead-letter log.
    Rejected {
        /// The event.
        event: Event,
        /// Why.
        reason: RejectReason,
    },
}

/// Counters of everything the engine saw.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineCounters {
    /// Events pushed.
    pub events_in: u64,
    /// Events processed (accepted, in time order).
    pub processed: u64,
    /// Repeated event ids.
    pub duplicates: u64,
    /// Events beyond the lateness.
    pub late: u64,
    /// In-room events without a session.
    pub orphans: u64,
    /// In-room events of a session whose exposure had closed.
    pub after_close: u64,
    /// Impressions of an existing exposure key.
    pub repeat_impressions: u64,
    /// Enters without a request id.
    pub organic_enters: u64,
    /// Enters naming an exposure that is closed, unknown or another user's.
    pub stale_clicks: u64,
    /// Exposures opened.
    pub exposures: u64,
    /// Samples per policy, in `Policy::ALL` order.
    pub samples: [u64; 4],
}

/// Per (policy, task): complete positives captured, and capture delays in seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyTally {
    /// `[policy][task]` → delays (s) from the positive to its first report as positive.
    pub delays_s: Vec<Vec<Vec<u32>>>,
    /// `[task]` → positives in `complete` samples.
    pub complete_positives: Vec<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Timer {
    LongView(u64),
    ClickTimeout(u64),
    MaxSession(u64),
    Fast(u64),
    Slow(u64),
    DropLive(u64),
    ForgetKey(u64, u64),
}

impl Timer {
    /// Order of timers at one instant; the flush sits at 4.
    fn class(self) -> u8 {
        match self {
            Timer::LongView(_) => 0,
            Timer::ClickTimeout(_) | Timer::MaxSession(_) => 1,
            Timer::Fast(_) => 2,
            Timer::Slow(_) => 3,
            Timer::DropLive(_) | Timer::ForgetKey(..) => 5,
        }
    }
}
const FLUSH_CLASS: u8 = 4;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Exposure {
    request_id: u64,
    live: u64,
    user: u64,
    imp_ts: i64,
    author: Option<u64>,
    category: Option<u32>,
    features: Arc<ExposureFeatures>,
    entered_at: Option<i64>,
    /// First positive time per task (`Task::ALL` order).
    first: [Option<i64>; 7],
    /// Tasks the realtime policy has reported.
    reported: u8,
    /// Tasks some naive30 sample has reported positive (for the consistency table).
    naive_reported: u8,
    closed_at: Option<i64>,
    slow_done: bool,
    seqs: [u32; 4],
}

impl Exposure {
    fn positives(&self) -> u8 {
        self.first
            .iter()
            .enumerate()
            .fold(0, |m, (i, f)| if f.is_some() { m | (1 << i) } else { m })
    }

    fn positives_where(&self, keep: impl Fn(i64) -> bool) -> u8 {
        self.first.iter().enumerate().fold(0, |m, (i, f)| match f {
            Some(t) if keep(*t) => m | (1 << i),
            _ => m,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Session {
    exposure: Option<u64>,
}

/// An event held in the reorder buffer. Stored as its JSON line in checkpoints, because
/// the flat wire record skips absent fields, which a compact binary format cannot.
#[derive(Clone, Debug, PartialEq)]
struct Buffered(Event);

impl Serialize for Buffered {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let json = serde_json::to_string(&self.0).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&json)
    }
}

impl<'de> Deserialize<'de> for Buffered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = String::deserialize(d)?;
        serde_json::from_str(&json)
            .map(Buffered)
            .map_err(serde::de::Error::custom)
    }
}

/// The sample engine. Feed events with [`SampleEngine::push`], end a finite input with
/// [`SampleEngine::finish`].
#[derive(Debug, Serialize, Deserialize)]
pub struct SampleEngine {
    config: SampleConfig,
    #[serde(skip)]
    context: Arc<FeatureContext>,
    task_mask: u8,
    max_ts: Option<i64>,
    next_flush: Option<i64>,
    arrival: u64,
    /// Events not yet final, sorted by (ts, arrival); almost always appended at the back.
    buffer: VecDeque<(i64, u64, Buffered)>,
    seen: FastSet<u64>,
    seen_order: VecDeque<(i64, u64)>,
    timers: BTreeMap<(i64, u8, u64), Timer>,
    timer_seq: u64,
    next_exposure: u64,
    exposures: BTreeMap<u64, Exposure>,
    open: BTreeSet<u64>,
    dirty: BTreeSet<u64>,
    by_key: FastMap<(u64, u64), u64>,
    pending_click: FastMap<u64, Vec<u64>>,
    sessions: BTreeMap<(u64, u64), Session>,
    lives: FastMap<u64, LiveState>,
    live_open: FastMap<u64, BTreeSet<u64>>,
    counters: EngineCounters,
    consistency: ConsistencyTally,
}

fn policy_index(p: Policy) -> usize {
    Policy::ALL.iter().position(|&q| q == p).unwrap_or(0)
}

impl SampleEngine {
    /// A new engine; `config` must be valid (see [`SampleConfig::validate`]).
    pub fn new(config: SampleConfig, context: Arc<FeatureContext>) -> Self {
        let task_mask = config.task_mask();
        Self {
            config,
            context,
            task_mask,
            max_ts: None,
            next_flush: None,
            arrival: 0,
            buffer: VecDeque::new(),
            seen: FastSet::default(),
            seen_order: VecDeque::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            next_exposure: 0,
            exposures: BTreeMap::new(),
            open: BTreeSet::new(),
            dirty: BTreeSet::new(),
            by_key: FastMap::default(),
            pending_click: FastMap::default(),
            sessions: BTreeMap::new(),
            lives: FastMap::default(),
            live_open: FastMap::default(),
            counters: EngineCounters::default(),
            consistency: ConsistencyTally {
                delays_s: vec![vec![Vec::new(); 7]; 4],
                complete_positives: vec![0; 7],
            },
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SampleConfig {
        &self.config
    }

    /// Counters so far.
    pub fn counters(&self) -> &EngineCounters {
        &self.counters
    }

    /// The label-consistency tally so far.
    pub fn consistency(&self) -> &ConsistencyTally {
        &self.consistency
    }

    /// The watermark: newest event time minus the allowed lateness.
    pub fn watermark(&self) -> Option<i64> {
        self.max_ts
            .map(|m| m.saturating_sub(self.config.allowed_lateness_ms as i64))
    }

    /// Takes one event in arrival order; appends whatever it makes final to `out`.
    pub fn push(&mut self, event: Event, out: &mut Vec<Output>) {
        self.counters.events_in += 1;
        let ts = event.ts.0;
        if let Some(watermark) = self.watermark()
            && ts < watermark
        {
            // Exactly `lateness` behind the newest event (ts == watermark) is accepted.
            self.counters.late += 1;
            out.push(Output::Rejected {
                event,
                reason: RejectReason::Late { watermark },
            });
            return;
        }
        if !self.seen.insert(event.event_id.0) {
            self.counters.duplicates += 1;
            out.push(Output::Rejected {
                event,
                reason: RejectReason::Duplicate,
            });
            return;
        }
        self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
        let item = (ts, self.arrival, Buffered(event));
        self.arrival += 1;
        if self.buffer.back().is_none_or(|b| b.0 <= ts) {
            self.buffer.push_back(item);
        } else {
            // Out of order: after every buffered event with ts <= this one (stable).
            let at = self.buffer.partition_point(|b| b.0 <= ts);
            self.buffer.insert(at, item);
        }
        if let Some(watermark) = self.watermark() {
            // Nothing stamped before the watermark can still arrive: it is final.
            self.drain(watermark, out);
        }
    }

    /// Processes every buffered event as if the watermark had passed it, without running
    /// time beyond the last event (tests and tools that inspect the state use this).
    pub fn drain_buffer(&mut self, out: &mut Vec<Output>) {
        self.drain(i64::MAX, out);
    }

    /// The statistics state of a room, if the engine holds it.
    pub fn room_stats(&self, live: u64) -> Option<&LiveState> {
        self.lives.get(&live)
    }

    /// End of a finite input: time runs on until every exposure has closed and every
    /// window has fired.
    pub fn finish(&mut self, out: &mut Vec<Output>) {
        self.drain(i64::MAX, out);
        while let Some(&(t, _, _)) = self.timers.keys().next() {
            self.fire_until(t, out);
        }
    }

    fn drain(&mut self, limit: i64, out: &mut Vec<Output>) {
        while self.buffer.front().is_some_and(|b| b.0 < limit) {
            let Some((_, _, Buffered(event))) = self.buffer.pop_front() else {
                break;
            };
            self.fire_until(event.ts.0, out);
            self.process(event, out);
        }
        if limit != i64::MAX {
            self.fire_until(limit - 1, out);
        }
        // Ids older than the watermark can no longer arrive as anything but late.
        while let Some(&(ts, id)) = self.seen_order.front() {
            if ts >= limit.saturating_sub(self.config.allowed_lateness_ms as i64) {
                break;
            }
            self.seen.remove(&id);
            self.seen_order.pop_front();
        }
    }

    fn schedule(&mut self, at: i64, timer: Timer) {
        self.timer_seq += 1;
        self.timers
            .insert((at, timer.class(), self.timer_seq), timer);
    }

    /// Fires timers and flushes at instants `<= bound`, in (time, class) order.
    fn fire_until(&mut self, bound: i64, out: &mut Vec<Output>) {
        loop {
            let next_timer = self.timers.keys().next().map(|&(t, c, _)| (t, c));
            let next_flush = self.next_flush.map(|b| (b, FLUSH_CLASS));
            let next = match (next_timer, next_flush) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => return,
            };
            if next.0 > bound {
                return;
            }
            if next.1 == FLUSH_CLASS {
                self.flush(next.0, out);
                let interval = self.config.flush_interval_ms as i64;
                // With nothing open, skip the empty boundaries in between.
                let following = if self.open.is_empty() && self.dirty.is_empty() {
                    (next.0 + interval).max(bound.div_euclid(interval) * interval + interval)
                } else {
                    next.0 + interval
                };
                self.next_flush = Some(following);
            } else if let Some((&(t, _, _), _)) = self.timers.first_key_value()
                && let Some((_, timer)) = self.timers.pop_first()
            {
                self.fire(t, timer, out);
            }
        }
    }

    fn fire(&mut self, t: i64, timer: Timer, out: &mut Vec<Output>) {
        match timer {
            Timer::LongView(id) => {
                let threshold = self.config.long_view_ms as i64;
                if let Some(e) = self.exposures.get_mut(&id)
                    && e.closed_at.is_none()
                    && e.entered_at == Some(t - threshold)
                {
                    let i = Task::LongView as usize;
                    if e.first[i].is_none() {
                        e.first[i] = Some(t);
                        self.dirty.insert(id);
                    }
                }
            }
            Timer::ClickTimeout(id) => {
                if self
                    .exposures
                    .get(&id)
                    .is_some_and(|e| e.closed_at.is_none() && e.entered_at.is_none())
                {
                    self.close(id, t, out);
                }
            }
            Timer::MaxSession(id) => {
                if self
                    .exposures
                    .get(&id)
                    .is_some_and(|e| e.closed_at.is_none())
                {
                    self.close(id, t, out);
                }
            }
            Timer::Fast(id) => self.fast(id, out),
            Timer::Slow(id) => self.slow(id, out),
            Timer::ForgetKey(request_id, live) => {
                let key = (request_id, live);
                if self
                    .by_key
                    .get(&key)
                    .is_some_and(|id| !self.exposures.contains_key(id))
                {
                    self.by_key.remove(&key);
                }
            }
            Timer::DropLive(live) => {
                if self.live_open.get(&live).is_none_or(BTreeSet::is_empty) {
                    self.lives.remove(&live);
                    self.live_open.remove(&live);
                }
            }
        }
    }

    fn emit(
        &mut self,
        id: u64,
        policy: Policy,
        kind: SampleKind,
        ts: i64,
        labels: LabelMask,
        out: &mut Vec<Output>,
    ) {
        let Some(e) = self.exposures.get_mut(&id) else {
            return;
        };
        let p = policy_index(policy);
        let seq = e.seqs[p];
        e.seqs[p] += 1;
        self.counters.samples[p] += 1;
        // First report of a positive per (policy, task): the consistency table's delay.
        let mut newly = labels.labels & labels.mask;
        match policy {
            Policy::Naive30 => {
                newly &= !e.naive_reported;
                e.naive_reported |= newly;
            }
            Policy::Complete => {
                for (i, n) in self.consistency.complete_positives.iter_mut().enumerate() {
                    *n += u64::from(newly >> i & 1);
                }
            }
            _ => {}
        }
        for (i, first) in e.first.iter().enumerate() {
            if newly >> i & 1 == 1
                && let Some(f) = first
            {
                let delay = ((ts - f).max(0) / 1_000) as u32;
                self.consistency.delays_s[p][i].push(delay);
            }
        }
        out.push(Output::Sample(Sample {
            sample_id: sample_id(RequestId(e.request_id), LiveId(e.live), policy, seq),
            policy,
            kind,
            seq,
            ts: EventTime(ts),
            request_id: RequestId(e.request_id),
            live: LiveId(e.live),
            user: UserId(e.user),
            author: e.author.map(AuthorId),
            exposure_ts: EventTime(e.imp_ts),
            category: e.category.map(CategoryId),
            labels,
            features: e.features.clone(),
        }));
    }

    fn flush(&mut self, boundary: i64, out: &mut Vec<Output>) {
        if self.config.runs(Policy::Realtime) {
            let dirty: Vec<u64> = self.dirty.iter().copied().collect();
            for id in dirty {
                let Some(e) = self.exposures.get_mut(&id) else {
                    self.dirty.remove(&id);
                    continue;
                };
                let ready = e.positives_where(|t| t < boundary) & self.task_mask & !e.reported;
                e.reported |= ready;
                let remaining = e.positives() & self.task_mask & !e.reported;
                if remaining == 0 {
                    self.dirty.remove(&id);
                }
                if ready != 0 {
                    let labels = LabelMask {
                        labels: ready,
                        mask: ready,
                    };
                    self.emit(
                        id,
                        Policy::Realtime,
                        SampleKind::Flush,
                        boundary,
                        labels,
                        out,
                    );
                }
            }
        } else {
            self.dirty.clear();
        }
        if self.config.runs(Policy::Naive30) {
            let open: Vec<u64> = self.open.iter().copied().collect();
            for id in open {
                if let Some(e) = self.exposures.get(&id) {
                    let labels = LabelMask {
                        labels: e.positives_where(|t| t < boundary) & self.task_mask,
                        mask: self.task_mask,
                    };
                    self.emit(
                        id,
                        Policy::Naive30,
                        SampleKind::Flush,
                        boundary,
                        labels,
                        out,
                    );
                }
            }
        }
    }

    fn fast(&mut self, id: u64, out: &mut Vec<Output>) {
        let window = self.config.fast_window_ms as i64;
        if let Some(e) = self.exposures.get(&id) {
            let end = e.imp_ts + window;
            let labels = LabelMask {
                labels: e.positives_where(|t| t <= end) & self.task_mask,
                mask: self.task_mask,
            };
            self.emit(id, Policy::Fastslow, SampleKind::Fast, end, labels, out);
        }
    }

    fn slow(&mut self, id: u64, out: &mut Vec<Output>) {
        let (fast, slow) = (
            self.config.fast_window_ms as i64,
            self.config.slow_window_ms as i64,
        );
        let Some(e) = self.exposures.get_mut(&id) else {
            return;
        };
        e.slow_done = true;
        let (lo, hi) = (e.imp_ts + fast, e.imp_ts + slow);
        let late = e.positives_where(|t| lo < t && t <= hi) & self.task_mask;
        let closed = e.closed_at.is_some();
        if late != 0 {
            let labels = LabelMask {
                labels: late,
                mask: late,
            };
            self.emit(id, Policy::Fastslow, SampleKind::Slow, hi, labels, out);
        }
        if closed {
            self.forget(id, hi + 1);
        }
    }

    /// Drops an exposure's state. Its key stays known until `slow_window_ms` after the
    /// impression whatever the policies, so a repeated impression means the same thing
    /// (a repeat) in every configuration.
    fn forget(&mut self, id: u64, now: i64) {
        if let Some(e) = self.exposures.remove(&id)
            && now > e.imp_ts + self.config.slow_window_ms as i64
        {
            self.by_key.remove(&(e.request_id, e.live));
        }
    }

    fn close(&mut self, id: u64, at: i64, out: &mut Vec<Output>) {
        let Some(e) = self.exposures.get_mut(&id) else {
            return;
        };
        if e.closed_at.is_some() {
            return;
        }
        e.closed_at = Some(at);
        let (user, live, entered) = (e.user, e.live, e.entered_at.is_some());
        let positives = e.positives() & self.task_mask;
        let unreported = self.task_mask & !e.reported;
        e.reported = self.task_mask;
        self.open.remove(&id);
        self.dirty.remove(&id);
        if let Some(set) = self.live_open.get_mut(&live) {
            set.remove(&id);
        }
        if !entered && let Some(list) = self.pending_click.get_mut(&user) {
            list.retain(|&x| x != id);
            if list.is_empty() {
                self.pending_click.remove(&user);
            }
        }
        if self.config.runs(Policy::Realtime) && unreported != 0 {
            let labels = LabelMask {
                labels: positives & unreported,
                mask: unreported,
            };
            self.emit(id, Policy::Realtime, SampleKind::Close, at, labels, out);
        }
        if self.config.runs(Policy::Complete) {
            let labels = LabelMask {
                labels: positives,
                mask: self.task_mask,
            };
            self.emit(id, Policy::Complete, SampleKind::Close, at, labels, out);
        }
        let keep = self.config.runs(Policy::Fastslow)
            && self.exposures.get(&id).is_some_and(|e| !e.slow_done);
        if !keep {
            self.forget(id, at);
        }
    }

    fn live_state(&mut self, live: u64) -> &mut LiveState {
        self.lives.entry(live).or_default()
    }

    fn stat(&mut self, ts: i64, live: u64, series: Series, amount: u64) {
        let width = self.config.stats_bucket_ms as i64;
        let keep = self.config.stats_buckets as usize;
        self.live_state(live).add(ts, width, keep, series, amount);
    }

    fn set_online(&mut self, ts: i64, live: u64, delta: i32) {
        let width = self.config.stats_bucket_ms as i64;
        let keep = self.config.stats_buckets as usize;
        let state = self.live_state(live);
        state.online = state.online.saturating_add_signed(delta);
        state.set_online(ts, width, keep);
    }

    /// Records a first positive for `task` on the session's exposure, if still open.
    fn positive(&mut self, session_exposure: Option<u64>, task: Task, ts: i64) {
        let Some(id) = session_exposure else {
            return;
        };
        match self.exposures.get_mut(&id) {
            Some(e) if e.closed_at.is_none() => {
                let i = task as usize;
                if e.first[i].is_none() {
                    e.first[i] = Some(ts);
                    self.dirty.insert(id);
                }
            }
            _ => self.counters.after_close += 1,
        }
    }

    fn process(&mut self, event: Event, out: &mut Vec<Output>) {
        let ts = event.ts.0;
        self.counters.processed += 1;
        self.seen_order.push_back((ts, event.event_id.0));
        if self.next_flush.is_none() {
            let interval = self.config.flush_interval_ms as i64;
            self.next_flush = Some(ts.div_euclid(interval) * interval + interval);
        }
        match event.kind {
            EventKind::Impression {
                user,
                item,
                request_id,
                position,
                ..
            } => self.impression(ts, user.0, item, request_id.0, position, out),
            EventKind::Enter {
                user,
                live,
                request_id,
            } => self.enter(ts, user.0, live.0, request_id.map(|r| r.0), out),
            EventKind::LiveStart {
                live,
                author,
                category,
            } => {
                let state = self.live_state(live.0);
                state.author = Some(author.0);
                state.category = Some(category.0);
                state.start = Some(ts);
            }
            EventKind::LiveEnd { live } => self.live_end(ts, live.0, out),
            EventKind::ProductOnSale {
                live,
                product,
                c1,
                c2,
                c3,
            } => {
                let k = self.config.products as usize;
                let state = self.live_state(live.0);
                state.products.push_back([
                    product.0,
                    u64::from(c1.0),
                    u64::from(c2.0),
                    u64::from(c3.0),
                ]);
                while state.products.len() > k {
                    state.products.pop_front();
                }
            }
            EventKind::VideoPlay { .. }
            | EventKind::VideoLike { .. }
            | EventKind::VideoComment { .. } => {}
            EventKind::Leave { user, live, .. }
            | EventKind::Like { user, live }
            | EventKind::Comment { user, live }
            | EventKind::Follow { user, live }
            | EventKind::Share { user, live }
            | EventKind::Gift { user, live, .. }
            | EventKind::CartClick { user, live, .. }
            | EventKind::Purchase { user, live, .. } => {
                let key = (live.0, user.0);
                let Some(session) = self.sessions.get(&key) else {
                    self.counters.orphans += 1;
                    out.push(Output::Rejected {
                        event,
                        reason: RejectReason::Orphan,
                    });
                    return;
                };
                let exposure = session.exposure;
                let live = live.0;
                match event.kind {
                    EventKind::Leave { .. } => {
                        self.sessions.remove(&key);
                        self.set_online(ts, live, -1);
                        if let Some(id) = exposure {
                            self.close(id, ts, out);
                        }
                    }
                    EventKind::Like { .. } => {
                        self.stat(ts, live, Series::Likes, 1);
                        self.positive(exposure, Task::Like, ts);
                    }
                    EventKind::Comment { .. } => {
                        self.stat(ts, live, Series::Comments, 1);
                        self.positive(exposure, Task::Comment, ts);
                    }
                    EventKind::Follow { .. } => {
                        self.stat(ts, live, Series::Follows, 1);
                        self.positive(exposure, Task::Follow, ts);
                    }
                    EventKind::Share { .. } => self.stat(ts, live, Series::Shares, 1),
                    EventKind::Gift { value, .. } => {
                        self.stat(ts, live, Series::Gifts, 1);
                        self.stat(ts, live, Series::GiftValue, value);
                        self.positive(exposure, Task::Gift, ts);
                    }
                    EventKind::CartClick { .. } => self.stat(ts, live, Series::CartClicks, 1),
                    EventKind::Purchase { amount, .. } => {
                        self.stat(ts, live, Series::Orders, 1);
                        self.stat(ts, live, Series::Gmv, amount);
                        self.positive(exposure, Task::Purchase, ts);
                    }
                    _ => {}
                }
            }
        }
    }

    fn impression(
        &mut self,
        ts: i64,
        user: u64,
        item: ItemRef,
        request_id: u64,
        position: u32,
        out: &mut Vec<Output>,
    ) {
        let same_key = match item {
            ItemRef::Live(live) => self.by_key.get(&(request_id, live.0)).copied(),
            ItemRef::Video(_) => None,
        };
        // The user's next impression closes their open, not-entered exposures (a repeat
        // of the same exposure key changes nothing).
        if let Some(pending) = self.pending_click.get(&user).cloned() {
            for id in pending {
                if Some(id) != same_key {
                    self.close(id, ts, out);
                }
            }
        }
        let ItemRef::Live(live) = item else {
            return;
        };
        let live = live.0;
        self.stat(ts, live, Series::Impressions, 1);
        if same_key.is_some() {
            self.counters.repeat_impressions += 1;
            return;
        }
        let features = Arc::new(self.features(ts, user, live, position));
        let state = self.lives.get(&live);
        let (author, category) = state.map_or((None, None), |s| (s.author, s.category));
        let id = self.next_exposure;
        self.next_exposure += 1;
        self.counters.exposures += 1;
        self.exposures.insert(
            id,
            Exposure {
                request_id,
                live,
                user,
                imp_ts: ts,
                author,
                category,
                features,
                entered_at: None,
                first: [None; 7],
                reported: 0,
                naive_reported: 0,
                closed_at: None,
                slow_done: false,
                seqs: [0; 4],
            },
        );
        self.by_key.insert((request_id, live), id);
        self.open.insert(id);
        self.pending_click.entry(user).or_default().push(id);
        self.live_open.entry(live).or_default().insert(id);
        let c = &self.config;
        let (timeout, max_session) = (c.click_timeout_ms as i64, c.max_session_ms as i64);
        let (fast, slow) = (c.fast_window_ms as i64, c.slow_window_ms as i64);
        let fastslow = c.runs(Policy::Fastslow);
        self.schedule(ts + slow + 1, Timer::ForgetKey(request_id, live));
        self.schedule(ts + timeout, Timer::ClickTimeout(id));
        self.schedule(ts + max_session, Timer::MaxSession(id));
        if fastslow {
            // Windows include their end instant: they fire just after it.
            self.schedule(ts + fast + 1, Timer::Fast(id));
            self.schedule(ts + slow + 1, Timer::Slow(id));
        }
    }

    fn features(&self, ts: i64, user: u64, live: u64, position: u32) -> ExposureFeatures {
        let state = self.lives.get(&live);
        let t = self.config.stats_buckets as usize;
        let width = self.config.stats_bucket_ms as i64;
        let stats = match state {
            Some(s) => s.sequence_before(ts, width, t),
            None => vec![0; t * crate::live_stats::SERIES],
        };
        let author = state.and_then(|s| s.author);
        let author_row = author.and_then(|a| self.context.authors.get(&a));
        ExposureFeatures {
            user_profile: self.context.users.get(&user).copied(),
            author_type: author_row.map(|a| a.0.clone()),
            fans_bucket: author_row.map(|a| a.1),
            position,
            hour: (ts.rem_euclid(86_400_000) / 3_600_000) as u8,
            live_age_ms: state
                .and_then(|s| s.start)
                .map_or(0, |s| (ts - s).max(0) as u64),
            stats,
            stats_len: t as u32,
            products: state.map_or_else(Vec::new, |s| s.products.iter().copied().collect()),
        }
    }

    fn enter(
        &mut self,
        ts: i64,
        user: u64,
        live: u64,
        request_id: Option<u64>,
        out: &mut Vec<Output>,
    ) {
        self.stat(ts, live, Series::Enters, 1);
        // A new Enter into the same room closes the previous session there.
        if let Some(previous) = self.sessions.remove(&(live, user)) {
            self.set_online(ts, live, -1);
            if let Some(id) = previous.exposure {
                self.close(id, ts, out);
            }
        }
        let clicked = match request_id {
            None => {
                self.counters.organic_enters += 1;
                None
            }
            Some(r) => {
                let id = self.by_key.get(&(r, live)).copied();
                let valid = id.filter(|id| {
                    self.exposures.get(id).is_some_and(|e| {
                        e.user == user && e.closed_at.is_none() && e.entered_at.is_none()
                    })
                });
                if valid.is_none() {
                    self.counters.stale_clicks += 1;
                }
                valid
            }
        };
        if let Some(id) = clicked {
            if let Some(e) = self.exposures.get_mut(&id) {
                e.entered_at = Some(ts);
                e.first[Task::Click as usize] = Some(ts);
            }
            self.dirty.insert(id);
            if let Some(list) = self.pending_click.get_mut(&user) {
                list.retain(|&x| x != id);
                if list.is_empty() {
                    self.pending_click.remove(&user);
                }
            }
            let threshold = self.config.long_view_ms as i64;
            self.schedule(ts + threshold, Timer::LongView(id));
        }
        self.sessions
            .insert((live, user), Session { exposure: clicked });
        self.set_online(ts, live, 1);
    }

    fn live_end(&mut self, ts: i64, live: u64, out: &mut Vec<Output>) {
        let open: Vec<u64> = self
            .live_open
            .get(&live)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for id in open {
            self.close(id, ts, out);
        }
        let keys: Vec<(u64, u64)> = self
            .sessions
            .range((live, 0)..=(live, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.sessions.remove(&k);
        }
        if let Some(state) = self.lives.get_mut(&live) {
            state.online = 0;
        }
        self.schedule(ts + 3_600_000, Timer::DropLive(live));
    }

    /// Serialises the whole state (binary, versioned by the checkpoint file around it).
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        postcard::to_stdvec(self).map_err(|e| e.to_string())
    }

    /// Restores a state written by [`SampleEngine::to_bytes`].
    pub fn from_bytes(bytes: &[u8], context: Arc<FeatureContext>) -> Result<Self, String> {
        let mut engine: SampleEngine = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
        engine.context = context;
        Ok(engine)
    }
}

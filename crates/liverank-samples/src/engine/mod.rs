//! The Moment sample engine: exposures keyed by `(request_id, live)`, sessions keyed by
//! `(user, live)`, a watermark over event time, and the label policies of
//! [`crate::policy`] asked at each decision point.
//!
//! Order of work at one instant `T` (SPEC §3 edge rules): long_view turning positive,
//! then closes (deadlines act before events stamped `T`), then the policies' windows,
//! then the flush at boundary `T` (which covers events before `T`), then the events
//! stamped `T` in input order. Every structure whose iteration order reaches the output
//! is ordered (B-trees, vectors), so a restored engine emits exactly what an
//! uninterrupted one would.
//!
//! Parts: [`reorder`] (watermark and reorder buffer), [`timers`] (deadlines, windows,
//! the flush grid), [`exposure`] (exposure and session state), `events` (what each event
//! does to that state), [`stats`] (counters and the consistency tally).

mod events;
pub(crate) mod exposure;
pub(crate) mod reorder;
pub mod stats;
pub(crate) mod timers;

use crate::config::{MAX_EVENT_TS, MIN_EVENT_TS, SampleConfig};
use crate::live_stats::{LiveState, Series};
use crate::policy::{Emit, FlushScope, POLICY_COUNT, label_policy, policy_index};
use exposure::{Exposure, Session};
use liverank_types::{
    AuthorId, CategoryId, Event, EventTime, LiveId, Policy, RequestId, Sample, UserId, sample_id,
};
use reorder::Reorder;
use serde::{Deserialize, Serialize};
pub use stats::{ConsistencyTally, EngineCounters};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use timers::{Due, Timer, Timers};

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
    /// Its time lies outside `[MIN_EVENT_TS, MAX_EVENT_TS)` (e.g. microseconds).
    OutOfRange,
    /// It lies more than `max_future_skew_ms` ahead of the newest accepted event; it does
    /// not move the watermark.
    Future {
        /// The newest accepted event time at arrival.
        newest: i64,
    },
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

/// The sample engine. Feed events with [`SampleEngine::push`], end a finite input with
/// [`SampleEngine::finish`].
#[derive(Debug, Serialize, Deserialize)]
pub struct SampleEngine {
    config: SampleConfig,
    #[serde(skip)]
    context: Arc<FeatureContext>,
    task_mask: u8,
    /// Which policies run, in `Policy::ALL` order.
    runs: [bool; POLICY_COUNT],
    reorder: Reorder,
    timers: Timers,
    next_exposure: u64,
    exposures: BTreeMap<u64, Exposure>,
    open: BTreeSet<u64>,
    /// Exposures with a positive a [`FlushScope::Dirty`] policy has not reported.
    dirty: BTreeSet<u64>,
    by_key: FastMap<(u64, u64), u64>,
    pending_click: FastMap<u64, Vec<u64>>,
    sessions: BTreeMap<(u64, u64), Session>,
    lives: FastMap<u64, LiveState>,
    live_open: FastMap<u64, BTreeSet<u64>>,
    counters: EngineCounters,
    consistency: ConsistencyTally,
}

impl SampleEngine {
    /// A new engine; `config` must be valid (see [`SampleConfig::validate`]).
    pub fn new(config: SampleConfig, context: Arc<FeatureContext>) -> Self {
        let task_mask = config.task_mask();
        let runs = Policy::ALL.map(|p| config.runs(p));
        Self {
            config,
            context,
            task_mask,
            runs,
            reorder: Reorder::default(),
            timers: Timers::default(),
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
            consistency: ConsistencyTally::default(),
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
        self.reorder.watermark(self.lateness())
    }

    /// Events in the reorder buffer and exposures held (both zero after
    /// [`SampleEngine::finish`]).
    pub fn held(&self) -> (usize, usize) {
        (self.reorder.len(), self.exposures.len())
    }

    fn lateness(&self) -> i64 {
        i64::try_from(self.config.allowed_lateness_ms).unwrap_or(i64::MAX)
    }

    /// The running policies with their index in `Policy::ALL`.
    fn running(&self) -> impl Iterator<Item = (usize, Policy)> + use<> {
        let runs = self.runs;
        Policy::ALL
            .into_iter()
            .enumerate()
            .filter(move |(i, _)| runs[*i])
    }

    /// Takes one event in arrival order; appends whatever it makes final to `out`.
    pub fn push(&mut self, event: Event, out: &mut Vec<Output>) {
        self.counters.events_in += 1;
        let ts = event.ts.0;
        let skew = i64::try_from(self.config.max_future_skew_ms).unwrap_or(i64::MAX);
        let admitted = if !(MIN_EVENT_TS..MAX_EVENT_TS).contains(&ts) {
            Err((event, RejectReason::OutOfRange))
        } else if let Some(newest) = self.reorder.max_ts()
            && ts > newest.saturating_add(skew)
        {
            Err((event, RejectReason::Future { newest }))
        } else {
            self.reorder.admit(event, self.lateness())
        };
        if let Err((event, reason)) = admitted {
            match reason {
                RejectReason::Late { .. } => self.counters.late += 1,
                RejectReason::Duplicate => self.counters.duplicates += 1,
                RejectReason::Orphan => self.counters.orphans += 1,
                RejectReason::OutOfRange => self.counters.out_of_range += 1,
                RejectReason::Future { .. } => self.counters.future += 1,
            }
            out.push(Output::Rejected { event, reason });
            return;
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
        while let Some(t) = self.timers.first_time() {
            self.fire_until(t, out);
        }
    }

    fn drain(&mut self, limit: i64, out: &mut Vec<Output>) {
        while let Some(event) = self.reorder.pop_before(limit) {
            self.fire_until(event.ts.0, out);
            self.process(event, out);
        }
        if limit != i64::MAX {
            self.fire_until(limit - 1, out);
        }
        self.reorder.forget_ids(limit, self.lateness());
    }

    /// Fires timers and flushes at instants `<= bound`, in (time, class) order.
    fn fire_until(&mut self, bound: i64, out: &mut Vec<Output>) {
        while let Some(due) = self.timers.next_due(bound) {
            match due {
                Due::Flush(boundary) => {
                    self.flush(boundary, out);
                    let idle = self.open.is_empty() && self.dirty.is_empty();
                    let interval = self.flush_interval();
                    self.timers.flushed(boundary, interval, idle, bound);
                }
                Due::Timer(t, timer) => self.fire(t, timer, out),
            }
        }
    }

    fn flush_interval(&self) -> i64 {
        i64::try_from(self.config.flush_interval_ms).unwrap_or(i64::MAX)
    }

    fn fire(&mut self, t: i64, timer: Timer, out: &mut Vec<Output>) {
        match timer {
            Timer::LongView(id) => {
                let threshold = self.config.long_view_ms as i64;
                if let Some(e) = self.exposures.get_mut(&id)
                    && e.closed_at.is_none()
                    && e.entered_at == Some(t.saturating_sub(threshold))
                {
                    let i = liverank_types::Task::LongView as usize;
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
            Timer::Window { policy, index, id } => self.window(t, policy, index, id, out),
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

    /// Schedules the running policies' windows of a new exposure.
    fn schedule_windows(&mut self, id: u64, imp_ts: i64) {
        for (p, policy) in self.running() {
            let windows = label_policy(policy).windows(&self.config);
            for (index, end) in windows.into_iter().enumerate() {
                if let Some(end) = end {
                    // Windows include their end instant: they fire just after it.
                    let at = imp_ts.saturating_add(end as i64).saturating_add(1);
                    let (policy, index) = (p as u8, index as u8);
                    self.timers
                        .schedule(at, Timer::Window { policy, index, id });
                }
            }
        }
    }

    fn emit(&mut self, id: u64, policy: Policy, emit: Emit, out: &mut Vec<Output>) {
        let Some(e) = self.exposures.get_mut(&id) else {
            return;
        };
        let Emit { kind, ts, labels } = emit;
        let p = policy_index(policy);
        let seq = e.seqs[p];
        e.seqs[p] += 1;
        self.counters.samples[p] += 1;
        self.consistency
            .record(policy, p, &e.first, &mut e.told[p], labels, ts);
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

    /// Asks the running policies about exposure `id`: `decide` gets the policy, the
    /// exposure's facts and that policy's memory, and may return a sample to emit.
    fn ask(
        &mut self,
        id: u64,
        p: usize,
        policy: Policy,
        decide: impl FnOnce(&crate::policy::Facts, &mut u8) -> Option<Emit>,
        out: &mut Vec<Output>,
    ) {
        let task_mask = self.task_mask;
        let Some(e) = self.exposures.get_mut(&id) else {
            return;
        };
        let mut memory = e.memory[p];
        let emit = decide(&e.facts(task_mask), &mut memory);
        e.memory[p] = memory;
        if let Some(emit) = emit {
            self.emit(id, policy, emit, out);
        }
    }

    fn flush(&mut self, boundary: i64, out: &mut Vec<Output>) {
        let mut any_dirty = false;
        for (p, policy) in self.running() {
            let lp = label_policy(policy);
            match lp.flush_scope() {
                FlushScope::Nothing => {}
                FlushScope::Dirty => {
                    any_dirty = true;
                    let dirty: Vec<u64> = self.dirty.iter().copied().collect();
                    for id in dirty {
                        let task_mask = self.task_mask;
                        let Some(e) = self.exposures.get_mut(&id) else {
                            self.dirty.remove(&id);
                            continue;
                        };
                        let mut memory = e.memory[p];
                        let emit = lp.flush(&e.facts(task_mask), &mut memory, boundary);
                        e.memory[p] = memory;
                        if !lp.pending(&e.facts(task_mask), memory) {
                            self.dirty.remove(&id);
                        }
                        if let Some(emit) = emit {
                            self.emit(id, policy, emit, out);
                        }
                    }
                }
                FlushScope::Open => {
                    let open: Vec<u64> = self.open.iter().copied().collect();
                    for id in open {
                        self.ask(id, p, policy, |f, m| lp.flush(f, m, boundary), out);
                    }
                }
            }
        }
        if !any_dirty {
            self.dirty.clear();
        }
    }

    fn window(&mut self, t: i64, p: u8, index: u8, id: u64, out: &mut Vec<Output>) {
        let (p, index) = (usize::from(p), usize::from(index));
        let Some(&policy) = Policy::ALL.get(p) else {
            return;
        };
        let lp = label_policy(policy);
        let config = self.config.clone();
        self.ask(id, p, policy, |f, m| lp.window(f, m, index, &config), out);
        let closed = self
            .exposures
            .get(&id)
            .is_some_and(|e| e.closed_at.is_some());
        if closed && !self.held_after_close(id) {
            self.forget(id, t);
        }
    }

    /// Whether a running policy still needs a closed exposure.
    fn held_after_close(&self, id: u64) -> bool {
        self.exposures.get(&id).is_some_and(|e| {
            self.running()
                .any(|(p, policy)| label_policy(policy).holds_after_close(e.memory[p]))
        })
    }

    /// Drops an exposure's state. Its key stays known until `slow_window_ms` after the
    /// impression whatever the policies, so a repeated impression means the same thing
    /// (a repeat) in every configuration.
    fn forget(&mut self, id: u64, now: i64) {
        if let Some(e) = self.exposures.remove(&id)
            && now > e.imp_ts.saturating_add(self.config.slow_window_ms as i64)
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
        for (p, policy) in self.running() {
            let lp = label_policy(policy);
            self.ask(id, p, policy, |f, m| lp.close(f, m, at), out);
        }
        if !self.held_after_close(id) {
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

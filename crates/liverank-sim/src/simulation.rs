//! The run loop: schedules every user's visits, simulates them in start order, and puts
//! the events into one time-ordered stream (then, if asked, breaks it on purpose).
//!
//! Events are produced per visit but must leave in global time order. Visits are processed
//! in order of start time, so once the next visit starts at `s`, no future event can be
//! stamped before `s`: every one-minute bucket that ends by `s` is final, is sorted (stable,
//! so equal timestamps keep generation order) and leaves. Memory holds only the buckets
//! that open visits still write into, not the whole day.

use crate::behavior::{TruthExposure, UserState, VisitSimulator};
use crate::config::SimConfig;
use crate::rng::SimRng;
use crate::world::{World, diurnal_time};
use liverank_types::{Event, EventId, EventKind, EventRecord, EventType};
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

const STREAM_VISITS: u64 = 5;
const STREAM_FAULTS: u64 = 6;
const STREAM_BEHAVIOR: u64 = 7;
const BUCKET_MS: i64 = 60_000;

/// Where the simulated stream goes.
pub trait EventSink {
    /// Error type of the sink.
    type Error;
    /// One event, in delivery order.
    fn event(&mut self, event: &Event) -> Result<(), Self::Error>;
    /// One deliberately malformed record (fault injection).
    fn malformed(&mut self, record: &MalformedRecord) -> Result<(), Self::Error>;
}

/// A broken record injected for tests: the raw JSON line, and where the breakage can be
/// expressed as a flat record (a negative duration, a missing field), that record, so a
/// Parquet sink can carry it too.
#[derive(Clone, Debug, PartialEq)]
pub struct MalformedRecord {
    /// What is wrong, for the manifest.
    pub kind: MalformedKind,
    /// The line as a JSON Lines sink writes it.
    pub json_line: String,
    /// The flat row, when the breakage survives a typed columnar format.
    pub record: Option<EventRecord>,
}

/// Kinds of injected malformed records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MalformedKind {
    /// Not JSON at all (a truncated line).
    BadJson,
    /// An event type nobody knows.
    UnknownType,
    /// A negative `watch_ms`.
    NegativeDuration,
    /// A required field is absent.
    MissingField,
}

/// Collects everything in memory (tests, benchmarks).
#[derive(Debug, Default)]
pub struct VecSink {
    /// Events in delivery order.
    pub events: Vec<Event>,
    /// Injected malformed records.
    pub malformed: Vec<MalformedRecord>,
}

impl EventSink for VecSink {
    type Error = std::convert::Infallible;
    fn event(&mut self, event: &Event) -> Result<(), Self::Error> {
        self.events.push(event.clone());
        Ok(())
    }
    fn malformed(&mut self, record: &MalformedRecord) -> Result<(), Self::Error> {
        self.malformed.push(record.clone());
        Ok(())
    }
}

/// Counts events without keeping them (throughput measurement).
#[derive(Debug, Default)]
pub struct CountingSink {
    /// Events seen.
    pub events: u64,
    /// Sum of timestamps, so the work cannot be optimised away.
    pub checksum: i64,
}

impl EventSink for CountingSink {
    type Error = std::convert::Infallible;
    fn event(&mut self, event: &Event) -> Result<(), Self::Error> {
        self.events += 1;
        self.checksum = self.checksum.wrapping_add(event.ts.0);
        Ok(())
    }
    fn malformed(&mut self, _record: &MalformedRecord) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// What a run produced.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct SimSummary {
    /// Events delivered (duplicates included, malformed records excluded).
    pub events: u64,
    /// Events per type, in `EventType::ALL` order.
    pub by_type: Vec<(String, u64)>,
    /// Distinct users who made at least one visit.
    pub active_users: u64,
    /// App visits simulated.
    pub visits: u64,
    /// Live exposures (== ground-truth exposure rows).
    pub live_exposures: u64,
    /// Short-video exposures.
    pub video_exposures: u64,
    /// Broadcasts.
    pub lives: u64,
    /// Injected faults.
    pub faults: FaultCounts,
    /// Wall time of the simulation, excluding world generation, in seconds.
    pub seconds: f64,
}

/// Counts of injected faults.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FaultCounts {
    /// Delivered out of order within the lateness.
    pub out_of_order: u64,
    /// Delivered beyond the lateness.
    pub late: u64,
    /// Extra copies of events.
    pub duplicate: u64,
    /// Malformed records.
    pub malformed: u64,
}

/// Progress report for long runs.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Visits simulated so far.
    pub visits_done: u64,
    /// Visits in the run.
    pub visits_total: u64,
    /// Events delivered so far.
    pub events: u64,
}

/// A simulator ready to run: a validated config and its world.
#[derive(Debug)]
pub struct Simulation {
    config: SimConfig,
    world: World,
}

/// Errors of a run: the config is invalid, or the sink failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError<E> {
    /// The config failed validation.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The sink failed.
    #[error("writing simulated events failed: {0}")]
    Sink(E),
}

impl Simulation {
    /// Validates `config` and builds its world.
    pub fn new(config: SimConfig) -> Result<Self, crate::config::ConfigError> {
        config.validate()?;
        let world = World::generate(&config);
        Ok(Self { config, world })
    }

    /// The config.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The generated world (entity tables and hidden traits).
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Runs the whole simulation into `sink`; returns the ground-truth exposures (in
    /// time order) and a summary. `progress` is called every few thousand visits.
    pub fn run<S: EventSink>(
        &self,
        sink: &mut S,
        progress: impl FnMut(Progress),
    ) -> Result<(Vec<TruthExposure>, SimSummary), SimError<S::Error>> {
        self.run_with_feed(sink, &mut crate::behavior::PlatformFeed, progress)
    }

    /// [`Simulation::run`] with `feed` choosing the room of every live slot of the feed
    /// (the closed loop: a policy outside the simulator, users reacting by the simulator's
    /// ground truth). Events reach `sink` in time order as the run goes, so a policy that
    /// also reads them (a serving world fed by the sink) sees the platform up to the start
    /// of the visit it serves.
    pub fn run_with_feed<S: EventSink>(
        &self,
        sink: &mut S,
        feed: &mut dyn crate::behavior::FeedPolicy,
        mut progress: impl FnMut(Progress),
    ) -> Result<(Vec<TruthExposure>, SimSummary), SimError<S::Error>> {
        let clock = Instant::now();
        let config = &self.config;
        let world = &self.world;
        let start = config.start_ms;
        let end = config.end_ms();

        let (visits, mut states) = self.schedule_visits();
        let mut summary = SimSummary {
            visits: visits.len() as u64,
            lives: world.lives.len() as u64,
            ..SimSummary::default()
        };
        let mut buckets: VecDeque<Vec<Event>> = VecDeque::new();
        let mut base_bucket: i64 = 0;
        let push = |buckets: &mut VecDeque<Vec<Event>>, base: i64, e: Event| {
            let b = ((e.ts.0 - start) / BUCKET_MS - base).max(0) as usize;
            if buckets.len() <= b {
                buckets.resize_with(b + 1, Vec::new);
            }
            buckets[b].push(e);
        };
        // Room lifecycle first, so at equal timestamps a room starts before anyone sees it.
        for live in &world.lives {
            let l = &live.row;
            let mut lifecycle = vec![Event {
                event_id: EventId(0),
                ts: l.start,
                kind: EventKind::LiveStart {
                    live: l.live,
                    author: l.author,
                    category: l.category,
                },
            }];
            lifecycle.extend(live.sales.iter().map(|s| Event {
                event_id: EventId(0),
                ts: s.on_sale,
                kind: EventKind::ProductOnSale {
                    live: l.live,
                    product: s.product.product,
                    c1: s.product.c1,
                    c2: s.product.c2,
                    c3: s.product.c3,
                },
            }));
            lifecycle.push(Event {
                event_id: EventId(0),
                ts: l.end,
                kind: EventKind::LiveEnd { live: l.live },
            });
            for e in lifecycle {
                push(&mut buckets, base_bucket, e);
            }
        }

        let mut emitter = Emitter::new(config);
        let mut sim = VisitSimulator::new(world, config);
        let mut truth = Vec::new();
        let mut visit_events = Vec::new();
        let mut active = vec![false; world.users.len()];
        for (k, &(scheduled, ui)) in visits.iter().enumerate() {
            // Everything in buckets that end at or before this visit's start is final.
            let ready = (scheduled - start) / BUCKET_MS;
            while base_bucket < ready {
                if let Some(mut bucket) = buckets.pop_front() {
                    bucket.sort_by_key(|e| e.ts);
                    emitter.emit_all(bucket, sink).map_err(SimError::Sink)?;
                }
                base_bucket += 1;
            }
            let state = &mut states[ui as usize];
            let begin = scheduled.max(state.busy_until + 30_000);
            if begin >= end - 60_000 {
                continue;
            }
            active[ui as usize] = true;
            visit_events.clear();
            let finished = sim.visit(
                ui as usize,
                state,
                begin,
                &mut visit_events,
                &mut truth,
                feed,
            );
            state.busy_until = finished;
            for e in visit_events.drain(..) {
                push(&mut buckets, base_bucket, e);
            }
            if k % 4096 == 0 {
                progress(Progress {
                    visits_done: k as u64,
                    visits_total: visits.len() as u64,
                    events: emitter.delivered,
                });
            }
        }
        for mut bucket in buckets.drain(..) {
            bucket.sort_by_key(|e| e.ts);
            emitter.emit_all(bucket, sink).map_err(SimError::Sink)?;
        }
        emitter.finish(sink).map_err(SimError::Sink)?;
        progress(Progress {
            visits_done: visits.len() as u64,
            visits_total: visits.len() as u64,
            events: emitter.delivered,
        });

        truth.sort_by_key(|t| (t.ts, t.request_id, t.live));
        summary.events = emitter.delivered;
        summary.by_type = EventType::ALL
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str().to_string(), emitter.by_type[i]))
            .collect();
        summary.active_users = active.iter().filter(|&&a| a).count() as u64;
        summary.live_exposures = truth.len() as u64;
        summary.video_exposures = emitter.video_impressions;
        summary.faults = emitter.faults.clone();
        summary.seconds = clock.elapsed().as_secs_f64();
        Ok((truth, summary))
    }

    /// Every user's planned visit starts, sorted; and each user's initial state.
    fn schedule_visits(&self) -> (Vec<(i64, u32)>, Vec<UserState>) {
        let config = &self.config;
        let (start, end) = (config.start_ms, config.end_ms());
        let mut visits = Vec::new();
        let mut states = Vec::with_capacity(self.world.users.len());
        let days = f64::from(config.hours) / 24.0;
        for (ui, user) in self.world.users.iter().enumerate() {
            let mut rng = SimRng::for_stream(config.seed, STREAM_VISITS, ui as u64);
            let scale = [0.3, 1.0, 1.8, 3.0][user.profile.activity_level.min(3) as usize];
            let n = rng.poisson(config.visits_per_day * scale * days);
            for _ in 0..n {
                visits.push((diurnal_time(&mut rng, start, end), ui as u32));
            }
            states.push(UserState {
                rng: SimRng::for_stream(config.seed, STREAM_BEHAVIOR, ui as u64),
                busy_until: i64::MIN / 2,
                requests: 0,
            });
        }
        visits.sort_unstable();
        (visits, states)
    }
}

/// Assigns event ids in time order and injects the configured faults on the way out.
struct Emitter {
    rng: SimRng,
    next_id: u64,
    delivered: u64,
    by_type: [u64; EventType::ALL.len()],
    video_impressions: u64,
    faults: FaultCounts,
    config: crate::config::FaultConfig,
    clean: bool,
    /// Events held back, keyed by (release time, sequence) so they leave in that order.
    held: BTreeMap<(i64, u64), Event>,
    held_seq: u64,
}

impl Emitter {
    fn new(config: &SimConfig) -> Self {
        Self {
            rng: SimRng::for_stream(config.seed, STREAM_FAULTS, 0),
            next_id: 1,
            delivered: 0,
            by_type: [0; EventType::ALL.len()],
            video_impressions: 0,
            faults: FaultCounts::default(),
            config: config.faults,
            clean: config.faults.is_clean(),
            held: BTreeMap::new(),
            held_seq: 0,
        }
    }

    fn deliver<S: EventSink>(&mut self, e: &Event, sink: &mut S) -> Result<(), S::Error> {
        self.delivered += 1;
        let t = e.event_type();
        self.by_type[EventType::ALL.iter().position(|x| *x == t).unwrap_or(0)] += 1;
        if let EventKind::Impression {
            item: liverank_types::ItemRef::Video(_),
            ..
        } = e.kind
        {
            self.video_impressions += 1;
        }
        sink.event(e)
    }

    fn hold(&mut self, release: i64, e: Event) {
        self.held_seq += 1;
        self.held.insert((release, self.held_seq), e);
    }

    fn release_until<S: EventSink>(&mut self, now: i64, sink: &mut S) -> Result<(), S::Error> {
        while let Some(entry) = self.held.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let e = entry.remove();
            self.deliver(&e, sink)?;
        }
        Ok(())
    }

    fn emit_all<S: EventSink>(&mut self, bucket: Vec<Event>, sink: &mut S) -> Result<(), S::Error> {
        for mut e in bucket {
            e.event_id = EventId(self.next_id);
            self.next_id += 1;
            if self.clean {
                self.deliver(&e, sink)?;
                continue;
            }
            self.release_until(e.ts.0, sink)?;
            let f = self.config;
            let lateness = f.lateness_ms as i64;
            if self.rng.chance(f.malformed) {
                let record = self.malformed_record(&e);
                self.faults.malformed += 1;
                sink.malformed(&record)?;
            }
            if self.rng.chance(f.duplicate) {
                self.faults.duplicate += 1;
                let release = e.ts.0 + self.rng.range_i64(0, 10_000);
                self.hold(release, e.clone());
            }
            let roll = self.rng.f64();
            if roll < f.out_of_order {
                // Delivered after events up to (lateness - 1 s) newer: still acceptable.
                self.faults.out_of_order += 1;
                let release = e.ts.0 + self.rng.range_i64(1_000, lateness - 1_000);
                self.hold(release, e);
            } else if roll < f.out_of_order + f.late {
                self.faults.late += 1;
                let release = e.ts.0 + lateness + self.rng.range_i64(5_000, 300_000);
                self.hold(release, e);
            } else {
                self.deliver(&e, sink)?;
            }
        }
        Ok(())
    }

    fn finish<S: EventSink>(&mut self, sink: &mut S) -> Result<(), S::Error> {
        self.release_until(i64::MAX, sink)
    }

    fn malformed_record(&mut self, e: &Event) -> MalformedRecord {
        let id = self.next_id;
        self.next_id += 1; // a malformed record never shares an id with a valid event
        let ts = e.ts.0;
        match self.rng.below(4) {
            0 => MalformedRecord {
                kind: MalformedKind::BadJson,
                json_line: format!("{{\"event_id\":{id},\"ts\":{ts},\"type\":\"like\",\"us"),
                record: None,
            },
            1 => MalformedRecord {
                kind: MalformedKind::UnknownType,
                json_line: format!(
                    "{{\"event_id\":{id},\"ts\":{ts},\"type\":\"teleport\",\"user\":1}}"
                ),
                record: None,
            },
            2 => {
                let record = EventRecord {
                    event_id: id,
                    ts,
                    event_type: Some(EventType::Leave),
                    user: Some(1),
                    live: Some(1),
                    watch_ms: Some(-5_000),
                    ..EventRecord::default()
                };
                MalformedRecord {
                    kind: MalformedKind::NegativeDuration,
                    json_line: serde_json::to_string(&record).unwrap_or_default(),
                    record: Some(record),
                }
            }
            _ => {
                let record = EventRecord {
                    event_id: id,
                    ts,
                    event_type: Some(EventType::Gift),
                    user: Some(1),
                    live: Some(1),
                    ..EventRecord::default()
                };
                MalformedRecord {
                    kind: MalformedKind::MissingField,
                    json_line: serde_json::to_string(&record).unwrap_or_default(),
                    record: Some(record),
                }
            }
        }
    }
}

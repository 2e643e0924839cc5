//! Property tests over random event streams: arbitrary generated streams (shuffled within
//! the lateness) and the simulator's streams with fault injection. Every sample of every
//! policy is checked against a deliberately naive reference written here: for each
//! exposure, replay the rest of the stream to find its life (close time and cause, first
//! positive per task), then apply each policy's SPEC §3 text to it.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use liverank_samples::live_stats::Series;
use liverank_samples::{Output, SampleConfig, SampleEngine};
use liverank_types::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

const ALL_TASKS: u8 = 0b111_1111;

/// Accepted events in processing order, decided independently of the engine: duplicates
/// by id, late ones against the newest accepted timestamp, then a stable sort by time.
fn accepted_in_order(arrivals: &[Event], lateness: i64) -> Vec<Event> {
    let mut seen = HashSet::new();
    let mut max_ts = i64::MIN;
    let mut kept = Vec::new();
    for e in arrivals {
        if max_ts != i64::MIN && e.ts.0 < max_ts - lateness {
            continue;
        }
        if !seen.insert(e.event_id.0) {
            continue;
        }
        max_ts = max_ts.max(e.ts.0);
        kept.push(e.clone());
    }
    kept.sort_by_key(|e| e.ts); // stable: equal times keep arrival order
    kept
}

/// One exposure's life as SPEC §3 defines it, found by replaying the stream after its
/// impression.
#[derive(Clone, Debug)]
struct Life {
    /// Impression time.
    t0: i64,
    /// Close time.
    close: i64,
    /// Closed by a deadline (click timeout, max session), which acts before the flush at
    /// the same instant; an event closing it exactly on a boundary leaves it in that flush.
    by_deadline: bool,
    /// First positive time per task during the life.
    first: [Option<i64>; 7],
}

impl Life {
    fn positives(&self, keep: impl Fn(i64) -> bool) -> u8 {
        self.first.iter().enumerate().fold(0, |m, (i, f)| match f {
            Some(t) if keep(*t) => m | 1 << i,
            _ => m,
        })
    }
}

/// SPEC §3, literally: each exposure's life and first positives.
fn naive_lives(events: &[Event], c: &SampleConfig) -> BTreeMap<(u64, u64), Life> {
    let (timeout, max_session) = (c.click_timeout_ms as i64, c.max_session_ms as i64);
    let mut result = BTreeMap::new();
    for (i, ev) in events.iter().enumerate() {
        let EventKind::Impression {
            user,
            item: ItemRef::Live(live),
            request_id,
            ..
        } = ev.kind
        else {
            continue;
        };
        let key = (request_id.0, live.0);
        if result.contains_key(&key) {
            continue;
        }
        let t0 = ev.ts.0;
        let mut entered: Option<i64> = None;
        let mut close: Option<(i64, bool)> = None;
        let mut first = [None; 7];
        for ej in &events[i + 1..] {
            let t = ej.ts.0;
            let mine = |u: UserId, l: LiveId| u == user && l == live;
            match entered {
                None => {
                    if t >= t0 + timeout {
                        close = Some((t0 + timeout, true));
                        break;
                    }
                    match ej.kind {
                        // The user's next impression closes it, unless it repeats this
                        // exposure's own key (which changes nothing).
                        EventKind::Impression {
                            user: u,
                            item,
                            request_id: r,
                            ..
                        } if u == user && !(r == request_id && item == ItemRef::Live(live)) => {
                            close = Some((t, false));
                            break;
                        }
                        EventKind::LiveEnd { live: l } if l == live => {
                            close = Some((t, false));
                            break;
                        }
                        EventKind::Enter {
                            user: u,
                            live: l,
                            request_id: Some(r),
                        } if mine(u, l) && r == request_id => {
                            entered = Some(t);
                            first[Task::Click as usize] = Some(t);
                        }
                        _ => {}
                    }
                }
                Some(_) => {
                    if t >= t0 + max_session {
                        close = Some((t0 + max_session, true));
                        break;
                    }
                    let task = match ej.kind {
                        EventKind::Leave {
                            user: u, live: l, ..
                        }
                        | EventKind::Enter {
                            user: u, live: l, ..
                        } if mine(u, l) => {
                            close = Some((t, false));
                            break;
                        }
                        EventKind::LiveEnd { live: l } if l == live => {
                            close = Some((t, false));
                            break;
                        }
                        EventKind::Like { user: u, live: l } if mine(u, l) => Some(Task::Like),
                        EventKind::Comment { user: u, live: l } if mine(u, l) => {
                            Some(Task::Comment)
                        }
                        EventKind::Follow { user: u, live: l } if mine(u, l) => Some(Task::Follow),
                        EventKind::Gift {
                            user: u, live: l, ..
                        } if mine(u, l) => Some(Task::Gift),
                        EventKind::Purchase {
                            user: u, live: l, ..
                        } if mine(u, l) => Some(Task::Purchase),
                        _ => None,
                    };
                    if let Some(task) = task {
                        first[task as usize].get_or_insert(t);
                    }
                }
            }
        }
        let (close, by_deadline) = close.unwrap_or(if entered.is_some() {
            (t0 + max_session, true)
        } else {
            (t0 + timeout, true)
        });
        let threshold = c.long_view_ms as i64;
        if let Some(te) = entered
            && close - te >= threshold
        {
            // Still in the room at enter + threshold (it turns positive before a close at
            // that very instant).
            first[Task::LongView as usize] = Some(te + threshold);
        }
        result.insert(
            key,
            Life {
                t0,
                close,
                by_deadline,
                first,
            },
        );
    }
    result
}

/// A sample without its identity: (policy, exposure key, kind, ts, labels, mask).
type Expect = (Policy, (u64, u64), SampleKind, i64, u8, u8);

/// Each policy of SPEC §3 applied to each life, written from the text alone.
fn naive_samples(lives: &BTreeMap<(u64, u64), Life>, c: &SampleConfig) -> Vec<Expect> {
    let grid = c.flush_interval_ms as i64;
    let (fast, slow) = (c.fast_window_ms as i64, c.slow_window_ms as i64);
    let mut out = Vec::new();
    for (&key, life) in lives {
        // Flush boundaries while open: after the impression, up to the close (a close by
        // an event on a boundary comes after that boundary's flush, a deadline before).
        let mut flushes = Vec::new();
        let mut b = (life.t0.div_euclid(grid) + 1) * grid;
        while b < life.close || (b == life.close && !life.by_deadline) {
            flushes.push(b);
            b += grid;
        }
        // realtime: new first positives before each boundary, masked to themselves; at
        // close, everything not yet reported.
        let mut reported = 0u8;
        for &b in &flushes {
            let new = life.positives(|t| t < b) & !reported;
            if new != 0 {
                out.push((Policy::Realtime, key, SampleKind::Flush, b, new, new));
                reported |= new;
            }
        }
        if reported != ALL_TASKS {
            let rest = ALL_TASKS & !reported;
            let labels = life.positives(|_| true) & rest;
            out.push((
                Policy::Realtime,
                key,
                SampleKind::Close,
                life.close,
                labels,
                rest,
            ));
        }
        // naive30: every task at every boundary while open.
        for &b in &flushes {
            let labels = life.positives(|t| t < b);
            out.push((
                Policy::Naive30,
                key,
                SampleKind::Flush,
                b,
                labels,
                ALL_TASKS,
            ));
        }
        // complete: one sample at close.
        let all = life.positives(|_| true);
        out.push((
            Policy::Complete,
            key,
            SampleKind::Close,
            life.close,
            all,
            ALL_TASKS,
        ));
        // fastslow: the fast window includes its end, the slow one is (fast, slow].
        let (fast_end, slow_end) = (life.t0 + fast, life.t0 + slow);
        let early = life.positives(|t| t <= fast_end);
        out.push((
            Policy::Fastslow,
            key,
            SampleKind::Fast,
            fast_end,
            early,
            ALL_TASKS,
        ));
        let late = life.positives(|t| fast_end < t && t <= slow_end);
        if late != 0 {
            out.push((
                Policy::Fastslow,
                key,
                SampleKind::Slow,
                slow_end,
                late,
                late,
            ));
        }
    }
    out.sort_by_key(|e| format!("{e:?}"));
    out
}

fn all_policies() -> SampleConfig {
    SampleConfig {
        policies: Policy::ALL.to_vec(),
        ..SampleConfig::default()
    }
}

fn run_engine(config: &SampleConfig, arrivals: &[Event]) -> Vec<Output> {
    let mut engine = SampleEngine::new(config.clone(), Arc::default());
    let mut out = Vec::new();
    for e in arrivals {
        engine.push(e.clone(), &mut out);
    }
    engine.finish(&mut out);
    out
}

fn check_invariants(config: &SampleConfig, arrivals: &[Event]) -> Result<(), TestCaseError> {
    let out = run_engine(config, arrivals);
    let samples: Vec<&Sample> = out
        .iter()
        .filter_map(|o| match o {
            Output::Sample(s) => Some(s),
            Output::Rejected { .. } => None,
        })
        .collect();
    let ids: HashSet<u64> = samples.iter().map(|s| s.sample_id).collect();
    prop_assert_eq!(ids.len(), samples.len(), "sample ids are unique");

    let key = |s: &Sample| (s.request_id.0, s.live.0);
    let mut complete = BTreeMap::new();
    let mut realtime: BTreeMap<(u64, u64), u8> = BTreeMap::new();
    let mut fastslow: BTreeMap<(u64, u64), u8> = BTreeMap::new();
    for s in &samples {
        let positives = s.labels.labels & s.labels.mask;
        match s.policy {
            Policy::Complete => {
                prop_assert_eq!(s.labels.mask, ALL_TASKS);
                prop_assert!(
                    complete.insert(key(s), positives).is_none(),
                    "one complete per exposure"
                );
            }
            Policy::Realtime => {
                prop_assert!(s.labels.mask != 0, "a realtime sample says something");
                let seen = realtime.entry(key(s)).or_default();
                prop_assert_eq!(*seen & positives, 0, "a positive is reported at most once");
                *seen |= positives;
            }
            Policy::Fastslow => *fastslow.entry(key(s)).or_default() |= positives,
            Policy::Naive30 => {}
        }
    }
    let accepted = accepted_in_order(arrivals, config.allowed_lateness_ms as i64);
    let lives = naive_lives(&accepted, config);
    let mut expected = naive_samples(&lives, config);
    expected.retain(|e| config.runs(e.0));
    let mut got: Vec<Expect> = samples
        .iter()
        .map(|s| {
            let (l, m) = (s.labels.labels, s.labels.mask);
            (s.policy, key(s), s.kind, s.ts.0, l & m, m)
        })
        .collect();
    got.sort_by_key(|e| format!("{e:?}"));
    if got != expected {
        let missing: Vec<_> = expected.iter().filter(|e| !got.contains(e)).collect();
        let extra: Vec<_> = got.iter().filter(|e| !expected.contains(e)).collect();
        prop_assert!(
            false,
            "samples differ from the naive replay of every policy\nmissing: {:?}\nextra: {:?}",
            missing,
            extra
        );
    }
    for (k, pos) in &complete {
        prop_assert_eq!(
            realtime.get(k).copied().unwrap_or(0),
            *pos,
            "realtime positives = complete"
        );
        let fs = fastslow.get(k).copied().unwrap_or(0);
        prop_assert_eq!(fs & !pos, 0, "fastslow positives ⊆ complete");
    }
    Ok(())
}

/// A random stream over 3 users and 2 rooms; returned in arrival order, shuffled by up to
/// 30 s (inside the 60 s lateness), plus a few exact duplicates.
fn arb_stream() -> impl Strategy<Value = Vec<Event>> {
    let step = (
        0i64..45_000,
        0u8..10,
        0u64..3,
        0u64..2,
        0u64..8,
        0i64..30_000,
        any::<bool>(),
    );
    proptest::collection::vec(step, 1..120).prop_map(|steps| {
        let mut t = 0i64;
        let mut next_request = 0u64;
        let mut events = Vec::new();
        for (i, (dt, action, user, live, pick, jitter, dup)) in steps.into_iter().enumerate() {
            // Ties on purpose: a third of the steps happen at the same instant.
            if dt > 15_000 {
                t += dt;
            }
            let (u, l) = (UserId(user), LiveId(live));
            let kind = match action {
                0 | 1 => {
                    next_request += 1;
                    EventKind::Impression {
                        user: u,
                        item: ItemRef::Live(l),
                        request_id: RequestId(next_request),
                        position: 0,
                        page: Page::Featured,
                    }
                }
                2 => EventKind::Impression {
                    user: u,
                    item: ItemRef::Video(VideoId(1)),
                    request_id: RequestId(1_000 + i as u64),
                    position: 1,
                    page: Page::Featured,
                },
                3 => EventKind::Enter {
                    user: u,
                    live: l,
                    request_id: (pick < 7)
                        .then(|| RequestId(next_request.saturating_sub(pick % 3))),
                },
                4 => EventKind::Leave {
                    user: u,
                    live: l,
                    watch_ms: DurationMs(1),
                },
                5 => EventKind::Like { user: u, live: l },
                6 => EventKind::Gift {
                    user: u,
                    live: l,
                    value: 1,
                },
                7 => EventKind::Comment { user: u, live: l },
                8 => EventKind::Purchase {
                    user: u,
                    live: l,
                    product: ProductId(1),
                    amount: 5,
                },
                _ => {
                    if pick == 0 {
                        EventKind::LiveEnd { live: l }
                    } else {
                        EventKind::Follow { user: u, live: l }
                    }
                }
            };
            let e = Event {
                event_id: EventId(i as u64 + 1),
                ts: EventTime(t),
                kind,
            };
            events.push((t + jitter, i, e.clone()));
            if dup && pick == 5 {
                events.push((t + jitter + 1, i, e));
            }
        }
        events.sort_by_key(|x| (x.0, x.1));
        events.into_iter().map(|x| x.2).collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn engine_invariants_hold_on_arbitrary_streams(arrivals in arb_stream()) {
        check_invariants(&all_policies(), &arrivals)?;
    }
}

#[test]
fn engine_invariants_hold_on_simulated_streams_with_faults() {
    for seed in [1, 2, 3] {
        let faults = liverank_sim::FaultConfig {
            out_of_order: 0.02,
            late: 0.003,
            duplicate: 0.01,
            malformed: 0.0,
            lateness_ms: 60_000,
        };
        let mut sim_config = liverank_sim::SimConfig::preset(liverank_sim::Preset::Tiny)
            .with_seed(seed)
            .with_faults(faults);
        sim_config.users = 300;
        sim_config.hours = 3;
        let sim = liverank_sim::Simulation::new(sim_config).unwrap();
        let mut sink = liverank_sim::VecSink::default();
        sim.run(&mut sink, |_| {}).unwrap();
        check_invariants(&all_policies(), &sink.events).unwrap();
    }
}

#[test]
fn count_series_sum_to_the_raw_event_counts() {
    let mut sim_config = liverank_sim::SimConfig::preset(liverank_sim::Preset::Tiny);
    sim_config.users = 300;
    sim_config.hours = 2;
    let sim = liverank_sim::Simulation::new(sim_config).unwrap();
    let mut sink = liverank_sim::VecSink::default();
    sim.run(&mut sink, |_| {}).unwrap();
    // Keep every bucket of the two hours.
    let config = SampleConfig {
        stats_buckets: 4_096,
        ..SampleConfig::default()
    };
    let mut engine = SampleEngine::new(config, Arc::default());
    let mut out = Vec::new();
    for e in &sink.events {
        engine.push(e.clone(), &mut out);
    }
    engine.drain_buffer(&mut out);
    let orphans: HashSet<u64> = out
        .iter()
        .filter_map(|o| match o {
            Output::Rejected { event, .. } => Some(event.event_id.0),
            Output::Sample(_) => None,
        })
        .collect();
    let mut raw: HashMap<(u64, usize), u64> = HashMap::new();
    for e in sink
        .events
        .iter()
        .filter(|e| !orphans.contains(&e.event_id.0))
    {
        let series = match e.kind {
            EventKind::Impression {
                item: ItemRef::Live(_),
                ..
            } => Series::Impressions,
            EventKind::Enter { .. } => Series::Enters,
            EventKind::Like { .. } => Series::Likes,
            EventKind::Comment { .. } => Series::Comments,
            EventKind::Gift { .. } => Series::Gifts,
            EventKind::Follow { .. } => Series::Follows,
            EventKind::CartClick { .. } => Series::CartClicks,
            EventKind::Purchase { .. } => Series::Orders,
            EventKind::Share { .. } => Series::Shares,
            _ => continue,
        };
        *raw.entry((e.live().unwrap().0, series as usize))
            .or_default() += 1;
    }
    assert!(raw.len() > 50);
    for (&(live, series), &count) in &raw {
        let state = engine.room_stats(live).unwrap();
        let sum: u64 = state
            .buckets
            .iter()
            .map(|b| u64::from(b.values[series]))
            .sum();
        assert_eq!(sum, count, "live {live} series {series}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary events at arbitrary instants (i64's extremes included): no panic, the
    /// run ends, and every input is accounted for — rejected (a dead letter) or processed,
    /// and after the end nothing is held and every exposure had its complete sample.
    #[test]
    fn arbitrary_times_never_overflow_and_every_event_is_accounted_for(
        events in proptest::collection::vec(liverank_testkit::arb_event_any_time(), 0..80)
    ) {
        let mut engine = SampleEngine::new(all_policies(), Arc::default());
        let mut out = Vec::new();
        for e in &events {
            engine.push(e.clone(), &mut out);
        }
        engine.finish(&mut out);
        let c = engine.counters().clone();
        let rejected = out.iter().filter(|o| matches!(o, Output::Rejected { .. })).count() as u64;
        let complete = out
            .iter()
            .filter(|o| matches!(o, Output::Sample(s) if s.policy == Policy::Complete))
            .count() as u64;
        prop_assert_eq!(c.events_in, events.len() as u64);
        prop_assert_eq!(
            c.processed + c.late + c.duplicates + c.out_of_range + c.future,
            c.events_in
        );
        prop_assert_eq!(rejected, c.late + c.duplicates + c.out_of_range + c.future + c.orphans);
        prop_assert_eq!(engine.held(), (0, 0));
        prop_assert_eq!(complete, c.exposures);
        for e in &events {
            let ts = e.ts.0;
            if !(liverank_samples::MIN_EVENT_TS..liverank_samples::MAX_EVENT_TS).contains(&ts) {
                let rejected = out.iter().any(|o| {
                    matches!(o, Output::Rejected {
                        event,
                        reason: liverank_samples::RejectReason::OutOfRange,
                    } if event == e)
                });
                prop_assert!(rejected, "out-of-range event {:?} not rejected", e);
            }
        }
    }
}

#[test]
fn an_event_far_ahead_is_a_dead_letter_and_does_not_move_the_watermark() {
    let ev = |id: u64, ts: i64| Event {
        event_id: EventId(id),
        ts: EventTime(ts),
        kind: EventKind::LiveEnd { live: LiveId(1) },
    };
    let config = SampleConfig::default();
    let mut engine = SampleEngine::new(config.clone(), Arc::default());
    let mut out = Vec::new();
    let t = 1_767_225_600_000;
    let skew = config.max_future_skew_ms as i64;
    engine.push(ev(1, t), &mut out);
    engine.push(ev(2, t + skew), &mut out); // exactly the skew: accepted
    engine.push(ev(3, t + 2 * skew + 1), &mut out); // one ms beyond: rejected
    engine.push(ev(4, t + skew - 50_000), &mut out); // not late: the watermark did not jump
    engine.push(ev(5, t * 1_000), &mut out); // microseconds
    let reasons: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Rejected { event, reason } => Some((event.event_id.0, reason.clone())),
            Output::Sample(_) => None,
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            (
                3,
                liverank_samples::RejectReason::Future { newest: t + skew }
            ),
            (5, liverank_samples::RejectReason::OutOfRange),
        ]
    );
    assert_eq!(engine.watermark(), Some(t + skew - 60_000));
}

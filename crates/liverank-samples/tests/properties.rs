//! Property tests over random event streams: arbitrary generated streams (shuffled within
//! the lateness) and the simulator's streams with fault injection. The `complete` labels
//! are checked against a deliberately naive reference written here: for each exposure,
//! replay the rest of the stream and apply SPEC §3 literally.

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

/// SPEC §3, literally: positives of each exposure during its life.
fn naive_complete(events: &[Event], c: &SampleConfig) -> BTreeMap<(u64, u64), u8> {
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
        let mut close: Option<i64> = None;
        let mut pos = 0u8;
        for ej in &events[i + 1..] {
            let t = ej.ts.0;
            let mine = |u: UserId, l: LiveId| u == user && l == live;
            match entered {
                None => {
                    if t >= t0 + timeout {
                        close = Some(t0 + timeout);
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
                            close = Some(t);
                            break;
                        }
                        EventKind::LiveEnd { live: l } if l == live => {
                            close = Some(t);
                            break;
                        }
                        EventKind::Enter {
                            user: u,
                            live: l,
                            request_id: Some(r),
                        } if mine(u, l) && r == request_id => {
                            entered = Some(t);
                            pos |= 1 << Task::Click as u8;
                        }
                        _ => {}
                    }
                }
                Some(_) => {
                    if t >= t0 + max_session {
                        close = Some(t0 + max_session);
                        break;
                    }
                    let task = match ej.kind {
                        EventKind::Leave {
                            user: u, live: l, ..
                        }
                        | EventKind::Enter {
                            user: u, live: l, ..
                        } if mine(u, l) => {
                            close = Some(t);
                            break;
                        }
                        EventKind::LiveEnd { live: l } if l == live => {
                            close = Some(t);
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
                        pos |= 1 << task as u8;
                    }
                }
            }
        }
        let close = close.unwrap_or(if entered.is_some() {
            t0 + max_session
        } else {
            t0 + timeout
        });
        if let Some(te) = entered
            && close - te >= c.long_view_ms as i64
        {
            pos |= 1 << Task::LongView as u8;
        }
        result.insert(key, pos);
    }
    result
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
    let naive = naive_complete(&accepted, config);
    let diff: Vec<_> = naive
        .iter()
        .filter(|(k, v)| complete.get(*k) != Some(*v))
        .map(|(k, v)| (*k, *v, complete.get(k).copied()))
        .chain(
            complete
                .keys()
                .filter(|k| !naive.contains_key(*k))
                .map(|k| (*k, 0, None)),
        )
        .collect();
    prop_assert!(
        diff.is_empty(),
        "complete labels differ from the naive replay (key, naive, engine): {:?}",
        diff
    );
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

//! One conformance suite for every `HistoryStore` backend: memory (the reference),
//! embedded (redb) and Redis. The `conformance!` macro instantiates the same tests per
//! backend factory.
//!
//! The Redis tests need a server: `scripts/test.sh` starts one on 127.0.0.1:6390 and
//! exports `LIVERANK_TEST_REDIS_URL`. Without a reachable server they FAIL with a message
//! saying so; they never skip. Each test uses its own key prefix (tests run in parallel)
//! and deletes its keys when done.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use liverank_history::{
    Categories, Domain, EmbeddedStore, GsuAssembler, GsuRequest, HistoryConfig, HistoryError,
    HistoryRecord, HistoryStore, InvalidRecord, MemoryStore, NoVectors, RedisStore, dot,
};
use liverank_types::{AuthorId, CategoryId, DurationMs, EventTime, GsuKind, UserId};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// A store under test, with whatever must live as long as it (a temporary directory, a
/// Redis key prefix to delete).
struct Fixture {
    store: Box<dyn HistoryStore>,
    _dir: Option<tempfile::TempDir>,
    redis: Option<RedisStore>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(r) = &self.redis {
            let _ = r.delete_all();
        }
    }
}

impl std::ops::Deref for Fixture {
    type Target = dyn HistoryStore;
    fn deref(&self) -> &Self::Target {
        self.store.as_ref()
    }
}

fn memory(retention: usize, _test: &str) -> Fixture {
    Fixture {
        store: Box::new(MemoryStore::new(&HistoryConfig::new(retention)).unwrap()),
        _dir: None,
        redis: None,
    }
}

fn embedded(retention: usize, _test: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), &HistoryConfig::new(retention)).unwrap();
    Fixture {
        store: Box::new(store),
        _dir: Some(dir),
        redis: None,
    }
}

/// The embedded store without its cache of decoded histories: every read scans the file.
fn embedded_uncached(retention: usize, _test: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = HistoryConfig::new(retention).with_cache_users(0);
    let store = EmbeddedStore::open(dir.path(), &config).unwrap();
    Fixture {
        store: Box::new(store),
        _dir: Some(dir),
        redis: None,
    }
}

static NEXT_PREFIX: AtomicU64 = AtomicU64::new(0);

fn redis(retention: usize, test: &str) -> Fixture {
    let url = std::env::var("LIVERANK_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6390/".to_string());
    // Unique per process, test and fixture: tests run in parallel on one server.
    let prefix = format!(
        "lrtest:{}:{test}:{}",
        std::process::id(),
        NEXT_PREFIX.fetch_add(1, Ordering::Relaxed)
    );
    let config = HistoryConfig {
        redis_url: url.clone(),
        ..HistoryConfig::new(retention).with_redis_prefix(prefix)
    };
    let connect = || {
        RedisStore::connect(&config).unwrap_or_else(|e| {
            panic!(
                "the Redis history tests need a Redis server at {url} and could not reach it: \
                 {e}. Run the tests through scripts/test.sh (it installs and starts \
                 redis-server on 127.0.0.1:6390), or point LIVERANK_TEST_REDIS_URL at a server."
            )
        })
    };
    Fixture {
        store: Box::new(connect()),
        _dir: None,
        redis: Some(connect()),
    }
}

fn rec(
    available_at: i64,
    domain: Domain,
    item: u64,
    author: u64,
    category: u32,
    long_view: bool,
) -> HistoryRecord {
    HistoryRecord {
        ts: EventTime(available_at - 3),
        available_at: EventTime(available_at),
        domain,
        item,
        author: AuthorId(author),
        categories: Categories::one(CategoryId(category)),
        watch_ms: DurationMs(3),
        long_view,
        like: false,
        comment: false,
        gift: false,
    }
}

const ALL: EventTime = EventTime(i64::MAX);

fn items(records: &[HistoryRecord]) -> Vec<u64> {
    records.iter().map(|r| r.item).collect()
}

/// A small history for user 42 (and one record of user 7), oldest first:
/// video 1 (author 10, cat 1) at 100, live 2 (author 20, cat 2, long) at 200,
/// video 3 (author 10, cat 2, long) at 300, video 4 (author 30, cat 1) at 400.
fn small_history(store: &dyn HistoryStore) {
    let user = UserId(42);
    store
        .append(&[
            (user, rec(100, Domain::Video, 1, 10, 1, false)),
            (user, rec(200, Domain::Live, 2, 20, 2, true)),
            (UserId(7), rec(150, Domain::Video, 9, 10, 1, false)),
        ])
        .unwrap();
    store
        .append(&[
            (user, rec(400, Domain::Video, 4, 30, 1, false)),
            (user, rec(300, Domain::Video, 3, 10, 2, true)),
        ])
        .unwrap();
}

fn check_latest_n(make: fn(usize, &str) -> Fixture) {
    let s = make(100, "latest");
    small_history(&*s);
    let u = UserId(42);
    assert_eq!(items(&s.latest(u, None, ALL, 10).unwrap()), [4, 3, 2, 1]);
    assert_eq!(
        items(&s.latest(u, Some(Domain::Video), ALL, 2).unwrap()),
        [4, 3]
    );
    assert_eq!(
        items(&s.latest(u, Some(Domain::Live), ALL, 5).unwrap()),
        [2]
    );
    // Point in time is strict: the record available at 300 is not visible at 300.
    assert_eq!(
        items(&s.latest(u, None, EventTime(300), 10).unwrap()),
        [2, 1]
    );
    assert_eq!(
        items(&s.latest(u, None, EventTime(301), 10).unwrap()),
        [3, 2, 1]
    );
    assert_eq!(s.count(u).unwrap(), 4);
    assert_eq!(items(&s.visible(UserId(7), ALL).unwrap()), [9]);
}

fn check_by_author(make: fn(usize, &str) -> Fixture) {
    let s = make(100, "author");
    small_history(&*s);
    let u = UserId(42);
    let by = |d, a, t, n| items(&s.by_author(u, d, AuthorId(a), EventTime(t), n).unwrap());
    assert_eq!(by(Some(Domain::Video), 10, i64::MAX, 10), [3, 1]);
    assert_eq!(by(Some(Domain::Video), 10, i64::MAX, 1), [3]);
    assert_eq!(by(Some(Domain::Video), 10, 300, 10), [1]);
    assert_eq!(by(Some(Domain::Live), 10, i64::MAX, 10), Vec::<u64>::new());
    assert_eq!(by(None, 20, i64::MAX, 10), [2]);
}

fn check_by_category(make: fn(usize, &str) -> Fixture) {
    let s = make(100, "category");
    small_history(&*s);
    let u = UserId(42);
    let by = |d, c, t| {
        items(
            &s.by_category(u, d, CategoryId(c), EventTime(t), 10)
                .unwrap(),
        )
    };
    assert_eq!(by(Some(Domain::Video), 1, i64::MAX), [4, 1]);
    assert_eq!(by(None, 2, i64::MAX), [3, 2]);
    assert_eq!(by(None, 2, 250), [2]);
    // Multi-level categories: a match on any level.
    let mut r = rec(500, Domain::Video, 5, 1, 7, false);
    r.categories = Categories::new(&[CategoryId(7), CategoryId(700)]).unwrap();
    s.append(&[(u, r)]).unwrap();
    assert_eq!(by(None, 700, i64::MAX), [5]);
    assert_eq!(
        s.visible(u, ALL).unwrap().last().unwrap().categories,
        r.categories
    );
}

fn check_long_view_mixed(make: fn(usize, &str) -> Fixture) {
    let s = make(100, "mixed");
    small_history(&*s);
    let u = UserId(42);
    assert_eq!(items(&s.long_view_mixed(u, ALL, 10).unwrap()), [3, 2]);
    assert_eq!(items(&s.long_view_mixed(u, ALL, 1).unwrap()), [3]);
    assert_eq!(
        items(&s.long_view_mixed(u, EventTime(300), 10).unwrap()),
        [2]
    );
}

fn check_unknown_user(make: fn(usize, &str) -> Fixture) {
    let s = make(100, "unknown");
    small_history(&*s);
    let u = UserId(999);
    assert!(s.visible(u, ALL).unwrap().is_empty());
    assert!(s.latest(u, None, ALL, 10).unwrap().is_empty());
    assert!(
        s.by_author(u, None, AuthorId(10), ALL, 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        s.by_category(u, None, CategoryId(1), ALL, 10)
            .unwrap()
            .is_empty()
    );
    assert!(s.long_view_mixed(u, ALL, 10).unwrap().is_empty());
    assert!(
        s.soft_search(u, Domain::Video, &[1.0], &NoVectors, ALL, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.count(u).unwrap(), 0);
    let gsu = GsuAssembler::new(3)
        .assemble(
            &*s,
            &GsuRequest {
                user: u,
                target_author: AuthorId(10),
                before_ts: ALL,
                query: &[1.0],
            },
            &NoVectors,
        )
        .unwrap();
    assert!(gsu.iter().all(|(_, q)| q.filled() == 0 && q.len() == 3));
}

fn check_validation(make: fn(usize, &str) -> Fixture) {
    let s = make(100, "validation");
    small_history(&*s);
    let u = UserId(42);
    let good = rec(450, Domain::Video, 8, 1, 1, false);
    let mut early = rec(500, Domain::Video, 5, 1, 1, false);
    early.available_at = EventTime(early.ts.0 - 1);
    let mut zero = good;
    zero.item = 0;
    let mut uncategorised = good;
    uncategorised.categories = Categories::default();
    let mut video_gift = good;
    video_gift.gift = true;
    for (bad, want) in [
        (early, "before ts"),
        (zero, "item id 0"),
        (uncategorised, "no category"),
        (video_gift, "gift"),
    ] {
        let e = s.append(&[(u, good), (UserId(5), bad)]).unwrap_err();
        assert!(
            matches!(
                e,
                HistoryError::Invalid {
                    index: 1,
                    user: UserId(5),
                    ..
                }
            ),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(text.contains(want) && text.contains("record 1"), "{text}");
    }
    let mut far = good;
    far.available_at = EventTime(1 << 60);
    assert!(matches!(
        s.append(&[(u, far)]),
        Err(HistoryError::Invalid {
            reason: InvalidRecord::TimeOutOfRange { .. },
            ..
        })
    ));
    // Nothing of a rejected batch was stored.
    assert_eq!(s.count(u).unwrap(), 4);
    assert_eq!(s.count(UserId(5)).unwrap(), 0);
    s.append(&[]).unwrap();
}

fn check_ties_and_disorder(make: fn(usize, &str) -> Fixture) {
    let s = make(3, "ties");
    let u = UserId(1);
    // Equal available_at: arrival order decides ("newer" = appended later).
    s.append(&[
        (u, rec(10, Domain::Video, 1, 1, 1, false)),
        (u, rec(10, Domain::Video, 2, 1, 1, false)),
    ])
    .unwrap();
    s.append(&[(u, rec(10, Domain::Video, 3, 1, 1, false))])
        .unwrap();
    assert_eq!(items(&s.latest(u, None, ALL, 10).unwrap()), [3, 2, 1]);
    // An older record arriving late sorts in place, and retention drops the oldest.
    s.append(&[(u, rec(5, Domain::Video, 4, 1, 1, false))])
        .unwrap();
    assert_eq!(items(&s.visible(u, ALL).unwrap()), [1, 2, 3]);
    s.append(&[(u, rec(7, Domain::Video, 5, 1, 1, false))])
        .unwrap();
    assert_eq!(items(&s.visible(u, ALL).unwrap()), [1, 2, 3]);
    s.append(&[(u, rec(11, Domain::Video, 6, 1, 1, false))])
        .unwrap();
    assert_eq!(items(&s.visible(u, ALL).unwrap()), [2, 3, 6]);
    // The same record twice is two records.
    let r = rec(12, Domain::Live, 7, 1, 1, true);
    s.append(&[(u, r), (u, r)]).unwrap();
    assert_eq!(items(&s.visible(u, ALL).unwrap()), [6, 7, 7]);
}

fn check_gsu(make: fn(usize, &str) -> Fixture) {
    let s = make(100, "gsu");
    small_history(&*s);
    let u = UserId(42);
    // Videos score by their id (video 3 has no vector); the live scores 5.
    let vectors: HashMap<(Domain, u64), Vec<f32>> = HashMap::from([
        ((Domain::Video, 1), vec![1.0, 0.0]),
        ((Domain::Video, 4), vec![4.0, 1.0]),
        ((Domain::Live, 2), vec![5.0, 0.0]),
    ]);
    let request = GsuRequest {
        user: u,
        target_author: AuthorId(10),
        before_ts: ALL,
        query: &[1.0, 0.0],
    };
    let gsu = GsuAssembler::new(3)
        .assemble(&*s, &request, &vectors)
        .unwrap();
    assert_eq!(gsu[GsuKind::Short].items, [4, 3, 1]);
    assert_eq!(gsu[GsuKind::Short].authors, [30, 10, 10]);
    assert_eq!(gsu[GsuKind::Short].categories, [1, 2, 1]);
    assert_eq!(gsu[GsuKind::Long].items, [4, 1, 0]);
    assert_eq!(gsu[GsuKind::Long].mask, [true, true, false]);
    assert_eq!(gsu[GsuKind::AidHard].items, [3, 1, 0]);
    assert_eq!(gsu[GsuKind::LiveLong].items, [2, 0, 0]);
    assert_eq!(gsu[GsuKind::Mixed].items, [3, 2, 0]);
    assert_eq!(gsu[GsuKind::Mixed].domains, [0, 1, 0]);
    // The same answer from records read once, cut at an earlier instant.
    let all = s.visible(u, ALL).unwrap();
    let early = GsuRequest {
        before_ts: EventTime(300),
        ..request
    };
    let from_slice = GsuAssembler::new(3)
        .assemble_from(&all, &early, &vectors)
        .unwrap();
    let from_store = GsuAssembler::new(3)
        .assemble(&*s, &early, &vectors)
        .unwrap();
    assert_eq!(from_slice, from_store);
    assert_eq!(from_store[GsuKind::Short].items, [1, 0, 0]);
    // A vector of the wrong length is a caller bug, reported.
    let bad = HashMap::from([((Domain::Video, 1), vec![1.0])]);
    let e = GsuAssembler::new(3)
        .assemble(&*s, &request, &bad)
        .unwrap_err();
    assert!(matches!(e, HistoryError::Dimension { item: 1, .. }), "{e}");
}

/// Soft search equals a brute-force top-k on random vectors: every domain, several
/// instants and k, items repeated (ties) and items without vectors.
fn check_soft_search(make: fn(usize, &str) -> Fixture) {
    let s = make(1_000, "soft");
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let dim = 12;
    let mut vectors: HashMap<(Domain, u64), Vec<f32>> = HashMap::new();
    for domain in [Domain::Video, Domain::Live] {
        for item in 1..=80u64 {
            if item % 9 == 0 {
                continue; // no vector
            }
            let v = (0..dim)
                .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
                .collect();
            vectors.insert((domain, item), v);
        }
    }
    let u = UserId(3);
    let records: Vec<HistoryRecord> = (0..300)
        .map(|_| {
            let domain = if next() % 3 == 0 {
                Domain::Live
            } else {
                Domain::Video
            };
            rec(
                1_000 + (next() % 5_000) as i64,
                domain,
                1 + next() % 80,
                1,
                1,
                false,
            )
        })
        .collect();
    for chunk in records.chunks(50) {
        let batch: Vec<_> = chunk.iter().map(|r| (u, *r)).collect();
        s.append(&batch).unwrap();
    }
    // The reference order: by available_at, ties by arrival.
    let mut reference: Vec<(usize, HistoryRecord)> = records.iter().copied().enumerate().collect();
    reference.sort_by_key(|(i, r)| (r.available_at, *i));
    for trial in 0..12 {
        let query: Vec<f32> = (0..dim)
            .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        let domain = if trial % 2 == 0 {
            Domain::Video
        } else {
            Domain::Live
        };
        let before = EventTime(1_000 + (next() % 6_000) as i64);
        let k = [1, 5, 50, 400][trial % 4];
        let got = s
            .soft_search(u, domain, &query, &vectors, before, k)
            .unwrap();
        let visible: Vec<HistoryRecord> = reference
            .iter()
            .map(|(_, r)| *r)
            .filter(|r| r.available_at < before)
            .collect();
        let mut brute: Vec<(f32, usize)> = visible
            .iter()
            .enumerate()
            .filter(|(_, r)| r.domain == domain)
            .filter_map(|(i, r)| vectors.get(&(domain, r.item)).map(|v| (dot(v, &query), i)))
            .collect();
        brute.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
        let want: Vec<HistoryRecord> = brute.iter().take(k).map(|&(_, i)| visible[i]).collect();
        assert_eq!(got, want, "trial {trial}");
        assert!(got.iter().all(|r| r.available_at < before));
    }
}

/// Sizes of the random histories.
#[derive(Clone, Copy)]
struct Scale {
    /// Retention is drawn from 1..retention.
    retention: usize,
    /// Rows per batch from 0..rows.
    rows: usize,
    /// available_at from 0..time (small: many ties).
    time: i64,
}

/// Small histories: many ties, retention hit often.
const SMALL: Scale = Scale {
    retention: 10,
    rows: 12,
    time: 60,
};

/// Histories spanning several 64-record blocks of the embedded store, mostly out of order.
const LARGE: Scale = Scale {
    retention: 300,
    rows: 160,
    time: 2_000,
};

/// Random batches: after every batch, each user holds exactly the newest `retention`
/// records of everything appended to them (so never more than the cap), every
/// point-in-time read returns exactly the visible part of that (never a record with
/// `available_at >= before_ts`), and the searches agree with the brute force.
fn check_retention_and_point_in_time(make: fn(usize, &str) -> Fixture, cases: u32, scale: Scale) {
    let row = (
        0u64..3,
        0..scale.time,
        any::<bool>(),
        1u64..6,
        1u64..4,
        0u32..3,
    );
    let batches = prop::collection::vec(prop::collection::vec(row, 0..scale.rows), 1..6);
    let strategy = (
        1..scale.retention,
        batches,
        prop::collection::vec(0..scale.time + 10, 3),
    );
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&strategy, |(retention, batches, instants)| {
            let s = make(retention, "retention");
            let mut appended: Vec<(u64, HistoryRecord)> = Vec::new();
            for batch in &batches {
                let batch: Vec<(UserId, HistoryRecord)> = batch
                    .iter()
                    .map(|&(user, at, live, item, author, category)| {
                        let domain = if live { Domain::Live } else { Domain::Video };
                        let r = rec(at, domain, item, author, category, item % 2 == 0);
                        (UserId(user), r)
                    })
                    .collect();
                s.append(&batch).unwrap();
                appended.extend(batch.iter().map(|(u, r)| (u.0, *r)));
                for user in 0..3u64 {
                    // Stable sort: ties keep arrival order.
                    let mut mine: Vec<HistoryRecord> = appended
                        .iter()
                        .filter(|(u, _)| *u == user)
                        .map(|(_, r)| *r)
                        .collect();
                    mine.sort_by_key(|r| r.available_at);
                    let kept = &mine[mine.len().saturating_sub(retention)..];
                    let stored = s.visible(UserId(user), ALL).unwrap();
                    prop_assert!(stored.len() <= retention);
                    prop_assert_eq!(&stored[..], kept);
                    prop_assert_eq!(s.count(UserId(user)).unwrap(), kept.len());
                    for &t in &instants {
                        let before = EventTime(t);
                        let pit = s.visible(UserId(user), before).unwrap();
                        prop_assert!(pit.iter().all(|r| r.available_at < before));
                        let want: Vec<HistoryRecord> = kept
                            .iter()
                            .copied()
                            .filter(|r| r.available_at < before)
                            .collect();
                        prop_assert_eq!(&pit, &want);
                        let newest: Vec<HistoryRecord> =
                            want.iter().rev().take(3).copied().collect();
                        prop_assert_eq!(s.latest(UserId(user), None, before, 3).unwrap(), newest);
                        let long: Vec<HistoryRecord> =
                            want.iter().rev().filter(|r| r.long_view).copied().collect();
                        prop_assert_eq!(
                            s.long_view_mixed(UserId(user), before, 100).unwrap(),
                            long
                        );
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}

macro_rules! conformance {
    ($backend:ident, $cases:expr) => {
        mod $backend {
            use super::*;

            #[test]
            fn latest_n_per_domain() {
                check_latest_n(super::$backend);
            }

            #[test]
            fn by_author_is_a_hard_search() {
                check_by_author(super::$backend);
            }

            #[test]
            fn by_category_matches_any_level() {
                check_by_category(super::$backend);
            }

            #[test]
            fn long_view_mixed_spans_both_domains() {
                check_long_view_mixed(super::$backend);
            }

            #[test]
            fn unknown_users_have_empty_results() {
                check_unknown_user(super::$backend);
            }

            #[test]
            fn invalid_records_reject_the_batch_with_a_reason() {
                check_validation(super::$backend);
            }

            #[test]
            fn ties_keep_arrival_order_and_late_records_sort_in() {
                check_ties_and_disorder(super::$backend);
            }

            #[test]
            fn gsu_assembles_the_five_sequences() {
                check_gsu(super::$backend);
            }

            #[test]
            fn soft_search_matches_brute_force() {
                check_soft_search(super::$backend);
            }

            #[test]
            fn retention_and_point_in_time_hold_for_random_batches() {
                check_retention_and_point_in_time(super::$backend, $cases, SMALL);
            }

            #[test]
            fn retention_and_point_in_time_hold_across_blocks() {
                check_retention_and_point_in_time(super::$backend, $cases / 4, LARGE);
            }
        }
    };
}

conformance!(memory, 256);
conformance!(embedded, 48);
conformance!(embedded_uncached, 32);
conformance!(redis, 48);

#[test]
fn unreachable_redis_is_an_external_error_naming_the_server() {
    let config = HistoryConfig {
        redis_url: "redis://127.0.0.1:1/".to_string(),
        ..HistoryConfig::default()
    };
    let e = RedisStore::connect(&config).unwrap_err();
    assert_eq!(e.class(), liverank_history::ErrorClass::External);
    assert!(e.is_retryable());
    assert!(e.to_string().contains("redis://127.0.0.1:1/"), "{e}");
}

//! Shared fixtures of the serving tests: a small world of rooms, users with history and
//! follows, a real (untrained, seeded) ranker, and the app over them.
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]
#![allow(dead_code, reason = "each test binary uses part of the fixtures")]

use liverank_history::{HistoryBuilder, HistoryConfig, MemoryStore};
use liverank_model::{FeatureBuilder, RankerConfig, Scorer, Trainer, TrunkConfig, TrunkKind};
use liverank_samples::{FeatureContext, SampleConfig};
use liverank_serve::*;
use liverank_types::*;
use std::sync::Arc;

pub const TOKEN: &str = "s3cret-token";
/// 10:00 UTC on 2026-01-01 (ms): the world starts here.
pub const T0: i64 = 1_767_261_600_000;

/// A small ranker shape (fast to build), with history sequences (L = 5).
pub fn ranker_config(seed: u64) -> RankerConfig {
    RankerConfig {
        embedding_dim: 8,
        hidden: vec![16],
        tower_hidden: vec![8],
        trunk: TrunkConfig {
            kind: TrunkKind::Mmoe,
            shared_experts: 2,
            specific_experts: 0,
            levels: 1,
            expert_hidden: 8,
        },
        history_len: 5,
        seed,
        ..RankerConfig::full_cross()
    }
}

/// A freshly initialised (seeded) trainer.
pub fn trainer(seed: u64) -> Trainer {
    let config = ranker_config(seed);
    let shape = FeatureBuilder::new(&config).shape();
    Trainer::new(config, shape).expect("trainer")
}

/// A scorer of a seeded, untrained model.
pub fn scorer(seed: u64) -> Scorer {
    trainer(seed).scorer().expect("scorer")
}

pub struct Events {
    next: u64,
    pub list: Vec<Event>,
}

impl Events {
    pub fn new() -> Self {
        Self {
            next: 1,
            list: Vec::new(),
        }
    }
    pub fn push(&mut self, ts: i64, kind: EventKind) {
        self.list.push(Event {
            event_id: EventId(self.next),
            ts: EventTime(ts),
            kind,
        });
        self.next += 1;
    }
}

/// Rooms 100..100+rooms (author = live − 100 + 1, category = live % 4) start at T0;
/// user 1 watches videos of category 2 (author 3) and follows author 2 (room 101);
/// viewers enter rooms so popularity differs; time runs to T0 + 10 min.
pub fn world_events(rooms: u64) -> Vec<Event> {
    let mut e = Events::new();
    for i in 0..rooms {
        let live = 100 + i;
        e.push(
            T0,
            EventKind::LiveStart {
                live: LiveId(live),
                author: AuthorId(i + 1),
                category: CategoryId((live % 4) as u32),
            },
        );
    }
    // Viewers: room 100+i gets i % 5 entering viewers in the first minute.
    let mut t = T0 + 1_000;
    for i in 0..rooms {
        for v in 0..(i % 5) {
            e.push(
                t,
                EventKind::Enter {
                    user: UserId(1_000 + v),
                    live: LiveId(100 + i),
                    request_id: None,
                },
            );
            t += 10;
        }
    }
    // User 1: video plays (author 3, category 2) end at T0 + 2..6 min.
    for k in 0..5u64 {
        let end = T0 + 120_000 + k as i64 * 60_000;
        e.push(
            end,
            EventKind::VideoPlay {
                user: UserId(1),
                video: VideoId(500 + k),
                watch_ms: DurationMs(30_000),
                completed: true,
            },
        );
    }
    // User 1 enters room 101 and follows its author (2).
    e.push(
        T0 + 400_000,
        EventKind::Enter {
            user: UserId(1),
            live: LiveId(101),
            request_id: None,
        },
    );
    e.push(
        T0 + 401_000,
        EventKind::Follow {
            user: UserId(1),
            live: LiveId(101),
        },
    );
    e.push(
        T0 + 460_000,
        EventKind::Leave {
            user: UserId(1),
            live: LiveId(101),
            watch_ms: DurationMs(59_000),
        },
    );
    // A product on sale in room 100; time runs on.
    e.push(
        T0 + 500_000,
        EventKind::ProductOnSale {
            live: LiveId(100),
            product: ProductId(9),
            c1: CategoryId(1),
            c2: CategoryId(11),
            c3: CategoryId(111),
        },
    );
    e.push(
        T0 + 600_000,
        EventKind::Like {
            user: UserId(1_001),
            live: LiveId(101),
        },
    );
    e.list
}

/// The videos table of [`world_events`] (author 3, category 2).
pub fn videos() -> Vec<Video> {
    (0..5u64)
        .map(|k| Video {
            video: VideoId(500 + k),
            author: AuthorId(3),
            duration_ms: DurationMs(30_000),
            category: CategoryId(2),
        })
        .collect()
}

pub fn world() -> Arc<LocalWorld> {
    let history: Arc<dyn liverank_history::HistoryStore> =
        Arc::new(MemoryStore::new(&HistoryConfig::default()).expect("store"));
    let vids = videos();
    let builder = HistoryBuilder::new(60_000).with_videos(vids.iter());
    Arc::new(LocalWorld::new(
        &SampleConfig::default(),
        history,
        builder,
        Arc::new(FeatureContext::default()),
    ))
}

pub struct Fixture {
    pub state: AppState,
    pub world: Arc<LocalWorld>,
    pub slot: Arc<ModelSlot>,
    pub log: Arc<ExposureLog>,
    pub config: Arc<ServeConfig>,
}

pub fn serve_config() -> ServeConfig {
    ServeConfig {
        token: TOKEN.into(),
        max_body_bytes: 64 * 1024,
        max_count: 50,
        max_events: 100,
        ..ServeConfig::default()
    }
}

/// A world of `rooms` rooms with its events ingested, and (optionally) model version 1.
pub fn fixture(rooms: u64, with_model: bool) -> Fixture {
    fixture_with(rooms, with_model, serve_config())
}

pub fn fixture_with(rooms: u64, with_model: bool, config: ServeConfig) -> Fixture {
    let config = Arc::new(config);
    let world = world();
    world.ingest(&world_events(rooms)).expect("ingest");
    let slot = Arc::new(ModelSlot::new());
    if with_model {
        slot.publish(ServedModel::new(
            1,
            Arc::new(scorer(1)),
            Some(EventTime(T0)),
        ))
        .expect("publish");
    }
    let log = Arc::new(ExposureLog::new(config.exposure_log));
    let state = AppState::new(
        config.clone(),
        world.clone(),
        world.clone(),
        slot.clone(),
        Recommender::new(config.clone(), log.clone()),
        1,
    );
    Fixture {
        state,
        world,
        slot,
        log,
        config,
    }
}

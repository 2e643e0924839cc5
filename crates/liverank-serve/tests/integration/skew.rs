//! No train/serve skew (issue 15 item 4): a sample built from a served request carries
//! exactly the features that were scored, and an offline replay of the same events gives
//! the same features.
//!
//! The world's events go both to the serving world and to a sample engine (as in the
//! embedded pipeline). User 1 asks for rooms; the platform shows them (impressions with
//! the response's request id, position = rank), the user clicks the first and stays.
//! Then: (1) each sample of those exposures, joined with the exposure log, gives — through
//! the offline trainer's own row builder (`liverank_train::build_batch`, reading the
//! history at the sample's exposure time) — exactly the row the ranker scored; (2) a fresh
//! engine replaying the same events without the log gives the same features, except the
//! page position, which serving cannot know when it scores (decision serve-2).
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use crate::common;

use common::*;
use liverank_history::{GsuAssembler, GsuKind, GsuRequest};
use liverank_samples::{FeatureContext, Output, SampleConfig, SampleEngine};
use liverank_serve::*;
use liverank_train::{HistorySource, TableVectors, build_batch};
use liverank_types::*;
use std::collections::BTreeMap;
use std::sync::Arc;

fn engine() -> SampleEngine {
    SampleEngine::new(
        SampleConfig {
            policies: vec![Policy::Realtime, Policy::Complete],
            ..SampleConfig::default()
        },
        Arc::new(FeatureContext::default()),
    )
}

fn samples_of(engine: &mut SampleEngine, events: &[Event], finish: bool) -> Vec<Sample> {
    let mut out = Vec::new();
    for e in events {
        engine.push(e.clone(), &mut out);
    }
    if finish {
        engine.finish(&mut out);
    }
    out.into_iter()
        .filter_map(|o| match o {
            Output::Sample(s) => Some(s),
            Output::Rejected { .. } => None,
        })
        .collect()
}

fn row(
    batch: &liverank_model::FeatureBatch,
    r: usize,
) -> (Vec<u64>, Vec<u64>, Vec<bool>, Vec<f32>) {
    let per = |n: usize| r * n..(r + 1) * n;
    (
        batch.fields[per(batch.field_count)].to_vec(),
        batch.seq_keys[per(batch.seq_len * batch.seq_subkeys)].to_vec(),
        batch.seq_mask[per(batch.seq_len)].to_vec(),
        batch.dense[per(batch.dense_dim)].to_vec(),
    )
}

#[test]
fn samples_of_served_exposures_carry_exactly_the_scored_features() {
    let f = fixture(10, true);
    let mut live_engine = engine();
    let world_events = world_events(10);
    samples_of(&mut live_engine, &world_events, false);

    // Serve user 1 at the stream's event time, with a model that has trained on the rows
    // of a first request (so the table holds rows of the rooms and of the user's videos,
    // and the soft searches find records).
    let request = RankRequest {
        user: UserId(1),
        count: 4,
        ts: None,
        request_id: RequestId(77),
    };
    let recommender = f.state.recommender();
    let (_, first) = recommender
        .rank_scored(f.world.as_ref(), &f.slot.current().unwrap(), &request)
        .unwrap();
    let mut trainer = trainer(1);
    let mut warm = first.batch.clone();
    warm.labels.fill(1.0);
    warm.mask.fill(1.0);
    for _ in 0..3 {
        trainer.train_step(&warm).unwrap();
    }
    let scorer = Arc::new(trainer.scorer().unwrap());
    f.slot
        .publish(ServedModel::new(2, scorer.clone(), Some(EventTime(T0))))
        .unwrap();
    let model = f.slot.current().unwrap();
    assert_eq!(model.version, 2);
    let (ranking, scored) = recommender
        .rank_scored(f.world.as_ref(), &model, &request)
        .unwrap();
    let t = ranking.ts.0;
    assert_eq!(ranking.rooms.len(), 4);
    // The user's history is non-empty at t (the model uses it): the test is not vacuous.
    assert!(f.world.history().count(UserId(1)).unwrap() > 0);

    // The platform shows the rooms and the user clicks the first one.
    let mut more = Vec::new();
    let mut id = 50_000;
    let mut push = |ts: i64, kind: EventKind| {
        id += 1;
        more.push(Event {
            event_id: EventId(id),
            ts: EventTime(ts),
            kind,
        });
    };
    for (position, room) in ranking.rooms.iter().enumerate() {
        push(
            t,
            EventKind::Impression {
                user: UserId(1),
                item: ItemRef::Live(room.live),
                request_id: RequestId(77),
                position: position as u32,
                page: Page::Featured,
            },
        );
    }
    let clicked = ranking.rooms[0].live;
    push(
        t + 5_000,
        EventKind::Enter {
            user: UserId(1),
            live: clicked,
            request_id: Some(RequestId(77)),
        },
    );
    push(
        t + 80_000,
        EventKind::Leave {
            user: UserId(1),
            live: clicked,
            watch_ms: DurationMs(75_000),
        },
    );
    f.world.ingest(&more).unwrap();
    let samples = samples_of(&mut live_engine, &more, true);
    let served: Vec<Sample> = samples
        .iter()
        .filter(|s| s.request_id == RequestId(77))
        .cloned()
        .collect();
    // Every shown room closes with a sample; the click adds flushes.
    assert!(served.len() >= 4, "{} samples", served.len());

    // (1) Joined samples → the trainer's row builder → the scored rows, bit for bit.
    let builder = &model.builder;
    let source = HistorySource {
        store: f.world.history(),
        assembler: GsuAssembler::new(model.ranker.config().history_len),
    };
    let scored_row: BTreeMap<LiveId, usize> = scored
        .lives
        .iter()
        .enumerate()
        .map(|(i, &l)| (l, i))
        .collect();
    let mut joined = served.clone();
    for s in &mut joined {
        assert!(f.log.join(s), "exposure {:?} was logged", s.live);
        assert_eq!(s.exposure_ts, EventTime(t));
    }
    let train_batch = build_batch(builder, &joined, Some(&source), Some(scorer.store())).unwrap();
    for (i, s) in joined.iter().enumerate() {
        let r = scored_row[&s.live];
        assert_eq!(
            row(&train_batch, i),
            row(&scored.batch, r),
            "live {:?}",
            s.live
        );
    }
    // The rows hold real history (the clicked room's row has filled sequence positions),
    // and the soft search V_long found the user's videos for some target.
    assert!(scored.batch.seq_mask.iter().any(|&m| m));
    let vectors = TableVectors::new(scorer.store());
    let records = f
        .world
        .history()
        .visible_shared(UserId(1), EventTime(t))
        .unwrap();
    let soft_filled = scored.lives.iter().any(|&live| {
        let query = vectors.query(live.0).unwrap_or(&[]);
        let request = GsuRequest {
            user: UserId(1),
            target_author: AuthorId(0),
            before_ts: EventTime(t),
            query,
        };
        let sequences = source
            .assembler
            .assemble_from(&records, &request, &vectors)
            .unwrap();
        sequences[GsuKind::Long].filled() > 0
    });
    assert!(
        soft_filled,
        "V_long is empty for every candidate: the soft check is vacuous"
    );

    // (2) Offline replay of the same events, no log: the same features but the position.
    let mut replay = engine();
    let mut all = world_events.clone();
    all.extend(more.iter().cloned());
    let replayed = samples_of(&mut replay, &all, true);
    let replayed: Vec<&Sample> = replayed
        .iter()
        .filter(|s| s.request_id == RequestId(77))
        .collect();
    assert_eq!(replayed.len(), served.len());
    for (offline, live) in replayed.iter().zip(&served) {
        assert_eq!(offline.sample_id, live.sample_id);
        let logged = f.log.get(RequestId(77), offline.live).unwrap();
        let rank = ranking
            .rooms
            .iter()
            .position(|r| r.live == offline.live)
            .unwrap();
        assert_eq!(offline.features.position, rank as u32);
        assert_eq!(logged.features.position, 0);
        let unpositioned = ExposureFeatures {
            position: 0,
            ..(*offline.features).clone()
        };
        assert_eq!(unpositioned, *logged.features, "live {:?}", offline.live);
        assert_eq!(offline.exposure_ts, EventTime(t));
    }
}

//! Point in time over all five GSU sequences, soft searches included: no history record
//! with `available_at` at or after a sample's exposure reaches its feature row, neither
//! in training (the rows `build_batch` gives the trainer, searched with a table copy) nor
//! in serving (the store-reading assembler a request runs, and the evaluation rows scored
//! with the frozen table).
#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::HashMap;
use std::sync::Arc;

use liverank_history::{
    Categories, Domain, GsuAssembler, GsuRequest, HistoryConfig, HistoryRecord, HistoryStore,
    MemoryStore,
};
use liverank_model::embedding::EmbeddingStore;
use liverank_model::features::{KeyKind, key};
use liverank_model::trainer::embedding_config;
use liverank_model::{FeatureBuilder, RankerConfig};
use liverank_train::{HistorySource, TableVectors, build_batch};
use liverank_types::{
    AuthorId, CategoryId, DurationMs, EventTime, ExposureFeatures, LabelMask, LiveId, Policy,
    RequestId, Sample, SampleKind, UserId,
};
use proptest::prelude::*;

const USERS: u64 = 3;

/// Records with unique item ids (video and live ids never overlap), so an item in a row
/// names its record.
fn records() -> impl Strategy<Value = Vec<(u64, i64, i64, bool, u32, bool)>> {
    // (user, ts, duration, live, category, long view)
    prop::collection::vec(
        (
            0..USERS,
            0i64..100_000,
            0i64..20_000,
            any::<bool>(),
            0u32..4,
            any::<bool>(),
        ),
        1..120,
    )
}

fn samples() -> impl Strategy<Value = Vec<(u64, i64, u64)>> {
    // (user, exposure ts, target live)
    prop::collection::vec((0..USERS, 0i64..130_000, 0u64..6), 1..20)
}

fn sample(user: u64, ts: i64, live: u64) -> Sample {
    Sample {
        sample_id: 1,
        policy: Policy::Complete,
        kind: SampleKind::Close,
        seq: 0,
        ts: EventTime(ts + 1),
        request_id: RequestId(1),
        live: LiveId(1_000_000 + live),
        user: UserId(user),
        author: Some(AuthorId(live % 3)),
        exposure_ts: EventTime(ts),
        category: Some(CategoryId(1)),
        labels: LabelMask::default(),
        features: Arc::new(ExposureFeatures::default()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn no_record_available_at_or_after_the_exposure_reaches_a_row(
        recs in records(),
        exposures in samples(),
    ) {
        let config = RankerConfig {
            product_seq_len: 0,
            history_len: 8,
            ..RankerConfig::full_cross()
        };
        prop_assert_eq!(config.history_sequences.len(), 5);
        let store = MemoryStore::new(&HistoryConfig::default()).unwrap();
        let mut available: HashMap<u64, i64> = HashMap::new();
        let mut batch = Vec::new();
        for (i, &(user, ts, duration, live, category, long_view)) in recs.iter().enumerate() {
            let item = 10 + i as u64;
            available.insert(item, ts + duration);
            batch.push((UserId(user), HistoryRecord {
                ts: EventTime(ts),
                available_at: EventTime(ts + duration),
                domain: if live { Domain::Live } else { Domain::Video },
                item,
                author: AuthorId(i as u64 % 3),
                categories: Categories::one(CategoryId(category)),
                watch_ms: DurationMs(duration as u64),
                long_view,
                like: false,
                comment: false,
                gift: false,
            }));
        }
        store.append(&batch).unwrap();

        // A table with a row for every item and target, as training's copy or serving's
        // frozen table has: the soft searches rank every visible record.
        let mut table = EmbeddingStore::new(embedding_config(&config));
        let mut keys: Vec<u64> = recs
            .iter()
            .enumerate()
            .map(|(i, r)| key(if r.3 { KeyKind::Live } else { KeyKind::Video }, 10 + i as u64))
            .collect();
        keys.extend((0..6).map(|l| key(KeyKind::Live, 1_000_000 + l)));
        table.lookup(&keys, 0, true, &mut Vec::new());

        let history = HistorySource { store: &store, assembler: GsuAssembler::new(config.history_len) };
        let builder = FeatureBuilder::new(&config);
        // Every other exposure falls exactly on a record's `available_at` (its user's): the
        // boundary, where the record must stay out.
        let rows: Vec<Sample> = exposures
            .iter()
            .enumerate()
            .map(|(i, &(u, t, l))| {
                let r = &recs[i % recs.len()];
                if i % 2 == 0 { sample(r.0, r.1 + r.2, l) } else { sample(u, t, l) }
            })
            .collect();
        let fb = build_batch(&builder, &rows, Some(&history), Some(&table)).unwrap();
        let (l, s) = (fb.seq_len, fb.seq_subkeys);
        let raw = |k: u64| k & ((1 << 56) - 1);
        let mut soft_filled = 0;
        for (r, row) in rows.iter().enumerate() {
            for p in 0..l {
                if !fb.seq_mask[r * l + p] {
                    continue;
                }
                let item = raw(fb.seq_keys[(r * l + p) * s]);
                let at = available[&item];
                prop_assert!(at < row.exposure_ts.0, "training row {r}: item {item} available at {at}, exposure {}", row.exposure_ts.0);
            }
            // The soft groups (V_long second, V_livelong fourth) do search here.
            soft_filled += (0..l).filter(|&p| {
                let g = p / config.history_len;
                (g == 1 || g == 3) && fb.seq_mask[r * l + p]
            }).count();
        }
        let visible_total: usize = rows.iter().map(|r| store.visible(r.user, r.exposure_ts).unwrap().len()).sum();
        prop_assert!(visible_total == 0 || soft_filled > 0, "soft searches returned nothing over {visible_total} visible records");

        // Serving: the assembler reading the store at the request's instant.
        let vectors = TableVectors::new(&table);
        for row in &rows {
            let query = vectors.query(row.live.0).unwrap();
            let request = GsuRequest { user: row.user, target_author: AuthorId(0), before_ts: row.exposure_ts, query };
            let sequences = history.assembler.assemble(&store, &request, &vectors).unwrap();
            for (name, seq) in sequences.iter() {
                for (p, &m) in seq.mask.iter().enumerate() {
                    if m {
                        let at = available[&seq.items[p]];
                        prop_assert!(at < row.exposure_ts.0, "serving {name}: item {} available at {at}, exposure {}", seq.items[p], row.exposure_ts.0);
                    }
                }
            }
        }
    }
}

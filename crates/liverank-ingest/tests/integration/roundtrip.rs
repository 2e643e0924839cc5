//! Round trips: any valid events survive JSON Lines and Parquet unchanged and in order.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use liverank_ingest::{
    EventFormat, EventWriter, JsonlEventReader, JsonlEventWriter, ParquetEventWriter, TableReader,
    TableWriter, open_events, read_table, write_table,
};
use liverank_testkit::arb_event;
use liverank_types::{
    Author, AuthorId, AuthorType, CategoryId, Event, EventTime, Live, LiveId, RequestId, User,
    UserId,
};
use proptest::prelude::*;
use std::fs::File;

fn read_all(path: &std::path::Path) -> Vec<Event> {
    open_events(path).unwrap().map(|r| r.unwrap()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn jsonl_round_trip(events in proptest::collection::vec(arb_event(), 0..200)) {
        let mut w = JsonlEventWriter::new(Vec::new(), "mem");
        for e in &events {
            w.write(e).unwrap();
        }
        let bytes = w.finish().unwrap();
        let back: Vec<Event> = JsonlEventReader::new(&bytes[..], "mem").map(|r| r.unwrap()).collect();
        prop_assert_eq!(back, events);
    }

    #[test]
    fn parquet_round_trip_across_batches(
        events in proptest::collection::vec(arb_event(), 0..300),
        batch in 1usize..64,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.parquet");
        let mut w = ParquetEventWriter::with_batch_rows(File::create(&path).unwrap(), &path, batch).unwrap();
        for e in &events {
            w.write(e).unwrap();
        }
        w.finish().unwrap();
        prop_assert_eq!(read_all(&path), events);
    }

    #[test]
    fn both_formats_agree_through_the_format_neutral_writer(
        events in proptest::collection::vec(arb_event(), 1..100),
    ) {
        let dir = tempfile::tempdir().unwrap();
        for format in [EventFormat::Jsonl, EventFormat::Parquet] {
            let path = dir.path().join(format!("e.{}", format.extension()));
            let mut w = EventWriter::create(&path, format).unwrap();
            for e in &events {
                w.write(e).unwrap();
            }
            w.finish().unwrap();
            prop_assert_eq!(read_all(&path), events.clone());
        }
    }
}

#[test]
fn entity_tables_round_trip_in_both_formats() {
    let users = vec![
        User {
            user: UserId(1),
            gender: 2,
            age_bucket: 3,
            city_tier: 1,
            activity_level: 3,
            payer_level: 0,
        },
        User {
            user: UserId(u64::MAX),
            gender: 0,
            age_bucket: 6,
            city_tier: 5,
            activity_level: 0,
            payer_level: 3,
        },
    ];
    let lives = vec![Live {
        live: LiveId(9),
        author: AuthorId(4),
        start: EventTime(1_767_225_600_000),
        end: EventTime(1_767_232_800_000),
        category: CategoryId(15),
    }];
    let dir = tempfile::tempdir().unwrap();
    for ext in ["jsonl", "parquet"] {
        let u = dir.path().join(format!("users.{ext}"));
        write_table(&u, "users", &users).unwrap();
        assert_eq!(read_table::<User>(&u).unwrap(), users);
        let l = dir.path().join(format!("lives.{ext}"));
        write_table(&l, "lives", &lives).unwrap();
        assert_eq!(read_table::<Live>(&l).unwrap(), lives);
    }
}

/// A ground-truth-like row: floats, booleans, optional values, newtypes.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct ExposureTruth {
    request_id: RequestId,
    live: LiveId,
    ts: EventTime,
    p_click: f64,
    in_highlight: bool,
    rank: Option<u32>,
}

#[test]
fn table_writer_streams_rows_across_batches_in_both_formats() {
    let rows: Vec<ExposureTruth> = (0..1_000u64)
        .map(|i| ExposureTruth {
            request_id: RequestId(i / 3),
            live: LiveId(i % 17),
            ts: EventTime(1_767_225_600_000 + i as i64 * 250),
            p_click: i as f64 / 1_000.0,
            in_highlight: i % 5 == 0,
            rank: (i % 2 == 0).then_some(i as u32),
        })
        .collect();
    let authors = vec![
        Author {
            author: AuthorId(3),
            author_type: AuthorType::Outdoor,
            fans_bucket: 2,
            home_category: CategoryId(15),
        },
        Author {
            author: AuthorId(4),
            author_type: AuthorType::Ecommerce,
            fans_bucket: 5,
            home_category: CategoryId(7),
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    for ext in ["jsonl", "parquet"] {
        let path = dir.path().join(format!("truth_exposures.{ext}"));
        let mut w =
            TableWriter::<ExposureTruth>::create_with_batch_rows(&path, "truth_exposures", 64)
                .unwrap();
        for r in &rows {
            w.write(r).unwrap();
        }
        assert_eq!(w.rows(), 1_000);
        assert_eq!(w.finish().unwrap(), 1_000);
        let reader = TableReader::<ExposureTruth>::open(&path).unwrap();
        let expected_name = (ext == "parquet").then_some("truth_exposures");
        assert_eq!(reader.table_name(), expected_name);
        let back: Vec<ExposureTruth> = reader.map(|r| r.unwrap()).collect();
        assert_eq!(back, rows, "{ext}");

        let a = dir.path().join(format!("authors.{ext}"));
        write_table(&a, "authors", &authors).unwrap();
        assert_eq!(read_table::<Author>(&a).unwrap(), authors);
    }
    // Enums are strings on disk in both formats.
    let text = std::fs::read_to_string(dir.path().join("authors.jsonl")).unwrap();
    assert!(text.contains(r#""author_type":"outdoor""#), "{text}");
}

#[test]
fn event_parquet_schema_matches_golden() {
    let schema = liverank_ingest::event_schema();
    let text: String = schema
        .fields()
        .iter()
        .map(|f| {
            format!(
                "{} {} {}\n",
                f.name(),
                f.data_type(),
                if f.is_nullable() {
                    "nullable"
                } else {
                    "required"
                }
            )
        })
        .collect();
    let golden_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/formats/events_schema_v1.txt"
    );
    if std::env::var_os("LIVERANK_BLESS").is_some() {
        std::fs::write(golden_path, &text).unwrap();
    }
    let golden = std::fs::read_to_string(golden_path).unwrap();
    assert_eq!(
        text, golden,
        "the events schema changed: bump EVENT_FORMAT_VERSION, add a fixture, then bless"
    );
}

#[test]
fn samples_round_trip_through_parquet_with_masks_and_features() {
    use liverank_types::{
        ExposureFeatures, LabelMask, Policy, RequestId, Sample, SampleKind, Task,
    };
    use std::sync::Arc;
    let mut labels = LabelMask::default();
    labels.set(Task::Click, true);
    labels.set(Task::Gift, false);
    let full = Sample {
        sample_id: 42,
        policy: Policy::Realtime,
        kind: SampleKind::Flush,
        seq: 3,
        ts: EventTime(30_000),
        request_id: RequestId(100),
        live: LiveId(7),
        user: UserId(1),
        author: Some(AuthorId(3)),
        exposure_ts: EventTime(1_000),
        category: Some(CategoryId(15)),
        labels,
        features: Arc::new(ExposureFeatures {
            user_profile: Some([1, 2, 3, 2, 1]),
            author_type: Some("outdoor".into()),
            fans_bucket: Some(2),
            position: 1,
            hour: 21,
            live_age_ms: 60_000,
            stats: (0..24).collect(),
            stats_len: 2,
            products: vec![[1, 2, 3, 4], [5, 6, 7, 8]],
        }),
    };
    let bare = Sample {
        sample_id: 43,
        policy: Policy::Complete,
        kind: SampleKind::Close,
        author: None,
        category: None,
        labels: LabelMask {
            labels: 0,
            mask: 0b111_1111,
        },
        features: Arc::new(ExposureFeatures::default()),
        ..full.clone()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("samples.parquet");
    let mut w = liverank_ingest::ParquetSampleWriter::create(&path).unwrap();
    w.write(&full).unwrap();
    w.write(&bare).unwrap();
    w.finish().unwrap();
    let back = liverank_ingest::read_parquet_samples(&path).unwrap();
    assert_eq!(back, vec![full, bare]);
    assert_eq!(
        back[0].labels.get(Task::Like),
        None,
        "masked tasks stay masked"
    );
}

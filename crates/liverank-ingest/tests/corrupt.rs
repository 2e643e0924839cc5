//! Bad input: every bad record is reported with its position and reason, dead-lettered,
//! and the good records around it are still read; broken files are errors, never panics.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt64Array};
use liverank_ingest::{
    DeadLetter, DeadLetterKind, DeadLetterWriter, EventFormat, EventWriter, IngestError, ReadError,
    RecordErrorKind, open_events, read_events,
};
use liverank_types::{Event, EventId, EventKind, EventTime, LiveId, UserId};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

fn like(id: u64) -> Event {
    Event {
        event_id: EventId(id),
        ts: EventTime(1_767_225_600_000 + id as i64),
        kind: EventKind::Like {
            user: UserId(1),
            live: LiveId(2),
        },
    }
}

fn dead_letters(path: &Path) -> Vec<DeadLetter> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn jsonl_bad_lines_are_dead_lettered_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    let good = |id| serde_json::to_string(&like(id)).unwrap();
    writeln!(f, "{}", good(1)).unwrap(); // line 1
    writeln!(f, "{{\"event_id\":2,\"ts\":5,\"type\":\"like\",\"us").unwrap(); // 2: bad JSON
    writeln!(
        f,
        "{{\"event_id\":3,\"ts\":5,\"type\":\"teleport\",\"user\":1}}"
    )
    .unwrap(); // 3
    writeln!(
        f,
        "{{\"event_id\":4,\"ts\":5,\"type\":\"leave\",\"user\":1,\"live\":2,\"watch_ms\":-7}}"
    )
    .unwrap(); // 4: negative duration
    writeln!(
        f,
        "{{\"event_id\":5,\"ts\":5,\"type\":\"gift\",\"user\":1,\"live\":2}}"
    )
    .unwrap(); // 5
    writeln!(f).unwrap(); // 6: blank, skipped
    f.write_all(b"\xff\xfe{\"event_id\":6}\n").unwrap(); // 7: invalid UTF-8
    writeln!(f, "{}", good(8)).unwrap(); // 8
    drop(f);

    let dead = dir.path().join("dead.jsonl");
    let mut dlq = DeadLetterWriter::create(&dead).unwrap();
    let mut events = Vec::new();
    let stats = read_events(&path, Some(&mut dlq), |e| events.push(e)).unwrap();
    let counts = dlq.finish().unwrap();
    assert_eq!(events, vec![like(1), like(8)]);
    assert_eq!((stats.events, stats.malformed, stats.invalid), (2, 3, 2));
    assert_eq!(counts[&DeadLetterKind::Malformed], 3);
    assert_eq!(counts[&DeadLetterKind::Invalid], 2);

    let letters = dead_letters(&dead);
    let lines: Vec<u64> = letters.iter().map(|l| l.line.unwrap()).collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 7]);
    assert!(letters[0].reason.contains("EOF"), "{}", letters[0].reason);
    assert!(letters[1].reason.contains("unknown variant `teleport`"));
    assert!(
        letters[2]
            .reason
            .contains("`watch_ms` must not be negative, got -7")
    );
    assert!(letters[3].reason.contains("missing required field `value`"));
    assert!(letters[4].reason.contains("invalid UTF-8"));
    assert_eq!(letters[2].kind, DeadLetterKind::Invalid);
    assert!(letters[2].raw.as_deref().unwrap().contains("-7"));
    assert!(letters.iter().all(|l| l.source.ends_with("events.jsonl")));
}

/// A Parquet file with raw rows: some valid, one of an unknown type, one negative duration.
fn write_raw_parquet(path: &Path) {
    let schema = liverank_ingest::event_schema();
    let n = 4;
    let mut columns: Vec<ArrayRef> = Vec::new();
    for field in schema.fields() {
        let col: ArrayRef = match field.name().as_str() {
            "event_id" => Arc::new(UInt64Array::from(vec![1, 2, 3, 4])),
            "ts" => Arc::new(Int64Array::from(vec![10, 20, 30, 40])),
            "type" => Arc::new(StringArray::from(vec!["like", "teleport", "leave", "like"])),
            "user" => Arc::new(UInt64Array::from(vec![Some(1); n])),
            "live" => Arc::new(UInt64Array::from(vec![Some(2); n])),
            "watch_ms" => Arc::new(Int64Array::from(vec![None, None, Some(-5), None])),
            _ => arrow_array::new_null_array(field.data_type(), n),
        };
        columns.push(col);
    }
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(vec![
            parquet::file::metadata::KeyValue::new("liverank.format".into(), "events".to_string()),
            parquet::file::metadata::KeyValue::new(
                "liverank.format_version".into(),
                "1".to_string(),
            ),
        ]))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn parquet_bad_rows_are_reported_by_row_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.parquet");
    write_raw_parquet(&path);
    let items: Vec<_> = open_events(&path).unwrap().collect();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0].as_ref().unwrap().event_id, EventId(1));
    assert_eq!(items[3].as_ref().unwrap().event_id, EventId(4));
    match &items[1] {
        Err(ReadError::Record(r)) => {
            assert_eq!(r.position, liverank_ingest::Position::Row(1));
            assert_eq!(r.kind, RecordErrorKind::Malformed);
            assert!(
                r.reason.contains("unknown event type `teleport`"),
                "{}",
                r.reason
            );
        }
        other => panic!("{other:?}"),
    }
    match &items[2] {
        Err(ReadError::Record(r)) => {
            assert_eq!(r.position, liverank_ingest::Position::Row(2));
            assert_eq!(r.kind, RecordErrorKind::Invalid);
            assert!(
                r.to_string()
                    .contains("row 2: field `watch_ms` must not be negative")
            );
        }
        other => panic!("{other:?}"),
    }
}

fn good_parquet(path: &Path, n: u64) -> Vec<u8> {
    let mut w = EventWriter::create(path, EventFormat::Parquet).unwrap();
    for i in 1..=n {
        w.write(&like(i)).unwrap();
    }
    w.finish().unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn truncated_or_corrupt_parquet_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let full = good_parquet(&dir.path().join("full.parquet"), 200_000);
    let cuts = [
        0,
        4,
        100,
        full.len() / 3,
        full.len() / 2,
        full.len() - 10,
        full.len() - 1,
    ];
    for cut in cuts {
        let path = dir.path().join(format!("cut{cut}.parquet"));
        std::fs::write(&path, &full[..cut]).unwrap();
        let result = read_events(&path, None, |_| {});
        let err = result.expect_err("a truncated file must not read cleanly");
        assert!(
            matches!(err, IngestError::Corrupt { .. }),
            "cut {cut}: {err}"
        );
        assert!(err.to_string().contains(&format!("cut{cut}.parquet")));
    }
    // Garbage in the middle of the data pages, footer intact.
    let mut flipped = full.clone();
    let mid = flipped.len() / 2;
    for b in &mut flipped[mid - 2_000..mid + 2_000] {
        *b ^= 0x5A;
    }
    let path = dir.path().join("flipped.parquet");
    std::fs::write(&path, &flipped).unwrap();
    let mut n = 0;
    let result = read_events(&path, None, |_| n += 1);
    assert!(
        result.is_err(),
        "corrupt pages must be reported (read {n} events)"
    );
}

#[test]
fn foreign_parquet_is_a_schema_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.parquet");
    let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
        "x",
        arrow_schema::DataType::Int64,
        false,
    )]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef],
    )
    .unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let err = open_events(&path).unwrap_err();
    assert!(matches!(err, IngestError::Schema { .. }), "{err}");
    assert!(
        err.to_string().contains("not a liverank `events` file"),
        "{err}"
    );
}

#[test]
fn unknown_extension_and_missing_file_are_clear_errors() {
    let err = open_events(Path::new("events.csv")).unwrap_err();
    assert!(err.to_string().contains("unsupported file extension"));
    let err = open_events(Path::new("/nonexistent/events.jsonl")).unwrap_err();
    assert_eq!(err.fault(), liverank_ingest::Fault::BadInput);
}

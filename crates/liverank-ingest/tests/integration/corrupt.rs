//! Bad input: every bad record is reported with its position and reason, dead-lettered,
//! and the good records around it are still read; broken files are errors, never panics.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt64Array};
use liverank_ingest::{
    DeadLetter, DeadLetterKind, DeadLetterWriter, EventFormat, EventWriter, Fault, IngestError,
    ReadError, RecordErrorKind, TableReader, open_events, read_events, read_table,
};
use liverank_types::User;
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

/// Writes one batch of `columns` under `schema` with the given key-value metadata.
fn write_parquet_with(
    path: &Path,
    schema: arrow_schema::SchemaRef,
    columns: Vec<ArrayRef>,
    metadata: &[(&str, &str)],
) {
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let kv = metadata
        .iter()
        .map(|(k, v)| parquet::file::metadata::KeyValue::new(k.to_string(), v.to_string()))
        .collect();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(kv))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// Two valid `like` rows in the full events schema.
fn like_columns(schema: &arrow_schema::Schema) -> Vec<ArrayRef> {
    schema
        .fields()
        .iter()
        .map(|field| -> ArrayRef {
            match field.name().as_str() {
                "event_id" => Arc::new(UInt64Array::from(vec![1, 2])),
                "ts" => Arc::new(Int64Array::from(vec![10, 20])),
                "type" => Arc::new(StringArray::from(vec!["like", "like"])),
                "user" | "live" => Arc::new(UInt64Array::from(vec![Some(1), Some(2)])),
                _ => arrow_array::new_null_array(field.data_type(), 2),
            }
        })
        .collect()
}

#[test]
fn parquet_of_a_newer_format_version_is_a_schema_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.parquet");
    let schema = liverank_ingest::event_schema();
    let columns = like_columns(&schema);
    write_parquet_with(
        &path,
        schema,
        columns,
        &[
            ("liverank.format", "events"),
            ("liverank.format_version", "2"),
        ],
    );
    let err = open_events(&path).unwrap_err();
    assert!(matches!(err, IngestError::Schema { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("future.parquet"), "{text}");
    assert!(text.contains("format version 2 is not supported"), "{text}");
    assert_eq!(err.fault(), Fault::BadInput);
    assert!(!err.retryable());
}

#[test]
fn parquet_missing_a_required_column_or_of_a_wrong_type_is_a_schema_error() {
    let dir = tempfile::tempdir().unwrap();
    let meta = [
        ("liverank.format", "events"),
        ("liverank.format_version", "1"),
    ];
    // Every column but `watch_ms`.
    let full = liverank_ingest::event_schema();
    let fields: Vec<_> = full
        .fields()
        .iter()
        .filter(|f| f.name() != "watch_ms")
        .cloned()
        .collect();
    let schema = Arc::new(arrow_schema::Schema::new(fields));
    let path = dir.path().join("no_watch.parquet");
    write_parquet_with(&path, schema.clone(), like_columns(&schema), &meta);
    let err = open_events(&path).unwrap_err();
    assert!(matches!(err, IngestError::Schema { .. }), "{err}");
    assert!(
        err.to_string().contains("missing column `watch_ms`"),
        "{err}"
    );
    assert!(err.to_string().contains("no_watch.parquet"), "{err}");

    // `ts` as a string.
    let fields: Vec<_> = full
        .fields()
        .iter()
        .map(|f| {
            if f.name() == "ts" {
                Arc::new(arrow_schema::Field::new(
                    "ts",
                    arrow_schema::DataType::Utf8,
                    false,
                ))
            } else {
                f.clone()
            }
        })
        .collect();
    let schema = Arc::new(arrow_schema::Schema::new(fields));
    let mut columns = like_columns(&full);
    columns[1] = Arc::new(StringArray::from(vec!["10", "20"]));
    let path = dir.path().join("ts_string.parquet");
    write_parquet_with(&path, schema, columns, &meta);
    let err = open_events(&path).unwrap_err();
    assert!(
        err.to_string()
            .contains("column `ts` has type Utf8, expected Int64"),
        "{err}"
    );
}

#[test]
fn parquet_with_data_pages_cut_out_but_footer_intact_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let full = good_parquet(&dir.path().join("full.parquet"), 200_000);
    // The footer is the last 8 bytes (length + magic) plus the metadata they announce.
    let n = full.len();
    let meta_len = u32::from_le_bytes(full[n - 8..n - 4].try_into().unwrap()) as usize;
    let footer = &full[n - 8 - meta_len..];
    let data_end = n - 8 - meta_len;
    // (Not too close to `data_end`: the page indexes sit between the data and the footer,
    // and a reader that skips them rightly reads a file missing only them.)
    for keep in [data_end / 4, data_end / 2, data_end * 3 / 4] {
        // The file's first `keep` bytes of data, then the original footer: the offsets in
        // the footer point past (or into the middle of) what is left.
        let mut spliced = full[..keep].to_vec();
        spliced.extend_from_slice(footer);
        let path = dir.path().join(format!("spliced{keep}.parquet"));
        std::fs::write(&path, &spliced).unwrap();
        let mut n_read = 0u64;
        let err = read_events(&path, None, |_| n_read += 1)
            .expect_err(&format!("keep {keep} of {data_end}: must not read cleanly"));
        assert!(
            matches!(err, IngestError::Corrupt { .. }),
            "keep {keep}: {err}"
        );
        assert!(n_read < 200_000, "keep {keep} of {data_end}: read {n_read}");
    }
}

#[test]
fn table_with_a_bad_line_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.jsonl");
    std::fs::write(
        &path,
        concat!(
            r#"{"user":1,"gender":2,"age_bucket":3,"city_tier":1,"activity_level":3,"payer_level":0}"#,
            "\n\n",
            r#"{"user":2,"gender":"x"}"#,
            "\n",
            r#"{"user":3,"gender":2,"age_bucket":3,"city_tier":1,"activity_level":3,"payer_level":0}"#,
            "\n",
        ),
    )
    .unwrap();
    let err = read_table::<User>(&path).unwrap_err();
    assert!(matches!(err, IngestError::Schema { .. }), "{err}");
    assert!(err.to_string().contains("line 3:"), "{err}");
    // Streaming: the good first row arrives, then the error, then the stream ends.
    let items: Vec<_> = TableReader::<User>::open(&path).unwrap().collect();
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok() && items[1].is_err());
}

#[test]
fn events_file_is_not_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.parquet");
    good_parquet(&path, 3);
    let err = read_table::<User>(&path).unwrap_err();
    assert!(matches!(err, IngestError::Schema { .. }), "{err}");
    assert!(err.to_string().contains("events.parquet"), "{err}");
}

#[test]
fn dead_letter_writer_appends_and_counts_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dead.jsonl");
    let letter = |kind, row: Option<u64>| DeadLetter {
        source: "events.parquet".into(),
        line: None,
        row,
        kind,
        reason: format!("{kind:?}"),
        raw: None,
    };
    let mut w = DeadLetterWriter::create(&path).unwrap();
    w.write(&letter(DeadLetterKind::Late, Some(5))).unwrap();
    w.write(&letter(DeadLetterKind::Orphan, Some(6))).unwrap();
    assert_eq!(w.counts()[&DeadLetterKind::Late], 1);
    w.finish().unwrap();
    // A restarted pipeline appends.
    let mut w = DeadLetterWriter::open_append(&path).unwrap();
    w.write(&letter(DeadLetterKind::Duplicate, None)).unwrap();
    let counts = w.finish().unwrap();
    assert_eq!(counts.len(), 1, "counts are per writer: {counts:?}");

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        r#"{"source":"events.parquet","row":5,"kind":"late","reason":"Late"}"#
    );
    assert!(lines[1].contains(r#""kind":"orphan""#));
    assert!(lines[2].contains(r#""kind":"duplicate""#) && !lines[2].contains("row"));
    let back = dead_letters(&path);
    assert_eq!(back[1], letter(DeadLetterKind::Orphan, Some(6)));

    // A rejected event keeps its JSON line, which reads back as the same event.
    let late = DeadLetter::for_event("k", DeadLetterKind::Late, "behind", &like(9));
    let raw = late.raw.as_deref().unwrap();
    assert_eq!(serde_json::from_str::<Event>(raw).unwrap(), like(9));
    assert_eq!((late.line, late.row), (None, None));
}

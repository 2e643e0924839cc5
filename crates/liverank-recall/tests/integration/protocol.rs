//! The protocol on a tiny log whose HR/NDCG are computed by hand below, the split's
//! no-leak property, and the importer's handling of bad rows.

use std::io::Write;

use liverank_recall::{
    BadRowReason, ColumnMapping, EvalConfig, EventFilter, ImportConfig, InteractionLog, ItemKnn,
    ItemKnnConfig, LogBuilder, Popularity, Scorer, Split, Stage, evaluate, import_log,
    rank_of_target,
};
use proptest::prelude::*;

/// u1: a b c d, u2: b c a, u3: a d e c b, u4: c e (too short to evaluate). Items are
/// indexed by first appearance: a=0 b=1 c=2 d=3 e=4.
const TINY: &str = "\
user,item,ts
u1,a,1
u1,b,2
u1,c,3
u1,d,4
u2,b,1
u2,c,2
u2,a,3
u3,a,1
u3,d,2
u3,e,3
u3,c,4
u3,b,5
u4,c,1
u4,e,2
";

fn write_file(text: &[u8], extension: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(extension)
        .tempfile()
        .expect("tempfile");
    file.write_all(text).expect("write");
    file
}

fn tiny_log() -> InteractionLog {
    let file = write_file(TINY.as_bytes(), ".csv");
    let config = ImportConfig {
        columns: ColumnMapping {
            timestamp: "ts".into(),
            ..ColumnMapping::default()
        },
        ..ImportConfig::default()
    };
    let (log, report) = import_log(file.path(), &config).expect("import");
    assert_eq!((report.rows, report.kept, report.bad), (14, 14, 0));
    log
}

fn eval(
    split: &Split<'_>,
    scorer: &dyn Scorer,
    stage: Stage,
    cutoffs: &[usize],
) -> Vec<(f64, f64)> {
    let config = EvalConfig {
        cutoffs: cutoffs.to_vec(),
        stage,
    };
    let report = evaluate(split, scorer, &config).expect("evaluate");
    assert_eq!(report.cases, 3);
    assert_eq!(report.items, 5);
    report.metrics.iter().map(|m| (m.hr, m.ndcg)).collect()
}

fn close(got: &[(f64, f64)], want: &[(f64, f64)]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g.0 - w.0).abs() < 1e-9 && (g.1 - w.1).abs() < 1e-9,
            "got {got:?}, want {want:?}"
        );
    }
}

#[test]
fn split_holds_out_the_last_two_by_time() {
    let log = tiny_log();
    let split = Split::leave_one_out(&log);
    assert_eq!(split.evaluated_users(), &[0, 1, 2]);
    assert_eq!(split.train(0), &[0, 1]);
    assert_eq!(split.train(2), &[0, 3, 4]);
    assert_eq!(split.train(3), &[2, 4], "a short user trains on everything");
    assert!(split.case(3, Stage::Test).is_none());
    let valid = split.case(2, Stage::Validation).expect("evaluated");
    assert_eq!((valid.history, valid.target), (&[0u32, 3, 4][..], 2));
    let test = split.case(2, Stage::Test).expect("evaluated");
    assert_eq!((test.history, test.target), (&[0u32, 3, 4, 2][..], 1));
}

// Hand computation. Training prefixes: u1 {a,b}, u2 {b}, u3 {a,d,e}, u4 {c,e}.
// Popularity: a 2, b 2, c 1, d 1, e 2.
// Test (history = train + validation item, excluded except the target):
//   u1 target d, rankable {d 1, e 2} → rank 2; u2 target a, rankable {a 2, d 1, e 2} →
//   rank 2 (the tie with e counts against); u3 target b, rankable {b} → rank 1.
//   HR@1 = 1/3, NDCG@1 = 1/3; HR@2 = 1, NDCG@2 = (2/log2(3) + 1)/3.
// Validation: u1 target c, rankable {c 1, d 1, e 2} → 3; u2 target c, rankable
//   {a 2, c 1, d 1, e 2} → 4; u3 target c, rankable {b 2, c 1} → 2.
//   HR@3 = 2/3, NDCG@3 = (1/2 + 1/log2(3))/3.
#[test]
fn popularity_hr_and_ndcg_match_the_hand_computation() {
    let log = tiny_log();
    let split = Split::leave_one_out(&log);
    let popularity = Popularity::fit(&split);
    assert_eq!(popularity.counts(), &[2.0, 2.0, 1.0, 1.0, 2.0]);
    let l3 = 1.0 / 3f64.log2();
    close(
        &eval(&split, &popularity, Stage::Test, &[1, 2]),
        &[(1.0 / 3.0, 1.0 / 3.0), (1.0, (2.0 * l3 + 1.0) / 3.0)],
    );
    close(
        &eval(&split, &popularity, Stage::Validation, &[3, 1]),
        &[(2.0 / 3.0, (0.5 + l3) / 3.0), (0.0, 0.0)],
    );
}

// Item-kNN by hand. Degrees a 2, b 2, c 1, d 1, e 2; co-occurrences a-b (u1), a-d, a-e,
// d-e (u3), c-e (u4): sim(a,b) = 1/2, sim(a,d) = 1/√2, sim(a,e) = 1/2, sim(d,e) = 1/√2,
// sim(c,e) = 1/√2.
// Validation: u1 history {a,b}: c 0, d .707, e .5 → c rank 3; u2 history {b}: a .5, c 0,
//   d 0, e 0 → c rank 4 (ties pessimistic); u3 history {a,d,e}: b .5, c .707 → rank 1.
//   HR@1 = 1/3, NDCG@1 = 1/3; HR@3 = 2/3, NDCG@3 = (1/2 + 1)/3 = 1/2.
#[test]
fn item_knn_hr_and_ndcg_match_the_hand_computation() {
    let log = tiny_log();
    let split = Split::leave_one_out(&log);
    let knn = ItemKnn::fit(&split, ItemKnnConfig::default()).expect("fit");
    let s = std::f32::consts::FRAC_1_SQRT_2;
    assert_eq!(knn.neighbours_of(0), &[(3, s), (1, 0.5), (4, 0.5)]);
    assert_eq!(knn.neighbours_of(2), &[(4, s)]);
    close(
        &eval(&split, &knn, Stage::Validation, &[1, 3]),
        &[(1.0 / 3.0, 1.0 / 3.0), (2.0 / 3.0, 0.5)],
    );
    // One neighbour per item: a keeps only d, so u1's validation scores are d .707, rest 0.
    let narrow = ItemKnn::fit(
        &split,
        ItemKnnConfig {
            neighbours: 1,
            history: None,
        },
    )
    .expect("fit");
    assert_eq!(narrow.neighbours_of(0), &[(3, s)]);
    let mut scores = vec![0.0; 5];
    narrow.score(0, &[0, 1], &mut scores).expect("score");
    assert_eq!(scores, vec![0.5, 0.0, 0.0, s, 0.0]);
    // A history window of 1 lets only the newest item vote.
    let recent = ItemKnn::fit(
        &split,
        ItemKnnConfig {
            neighbours: 10,
            history: Some(1),
        },
    )
    .expect("fit");
    let mut scores = vec![0.0; 5];
    recent.score(0, &[0, 1], &mut scores).expect("score");
    assert_eq!(scores, vec![0.5, 0.0, 0.0, 0.0, 0.0]);
}

struct Constant;

impl Scorer for Constant {
    fn name(&self) -> &str {
        "constant"
    }
    fn score(&self, _: u32, _: &[u32], scores: &mut [f32]) -> liverank_recall::Result<()> {
        scores.fill(1.0);
        Ok(())
    }
}

struct Broken;

impl Scorer for Broken {
    fn name(&self) -> &str {
        "broken"
    }
    fn score(&self, _: u32, _: &[u32], scores: &mut [f32]) -> liverank_recall::Result<()> {
        scores[1] = f32::NAN;
        Ok(())
    }
}

#[test]
fn ties_rank_pessimistically_and_nan_is_an_error() {
    // Rankable items 0, 2, 3 (1 excluded); target 2 ties with 3 and loses to 0.
    assert_eq!(
        rank_of_target(&[5.0, 9.0, 1.0, 1.0], 2, &[false, true, false, false]),
        Ok(3)
    );
    assert_eq!(
        rank_of_target(&[0.0, f32::NAN, 1.0], 2, &[false, false, false]),
        Err(1)
    );
    // A NaN on an excluded item is never looked at.
    assert_eq!(
        rank_of_target(&[0.0, f32::NAN, 1.0], 2, &[false, true, false]),
        Ok(1)
    );
    let log = tiny_log();
    let split = Split::leave_one_out(&log);
    // A constant scorer ranks each target last among its rankable items: 2, 3, 1 on test.
    let report = evaluate(
        &split,
        &Constant,
        &EvalConfig {
            cutoffs: vec![1, 2],
            stage: Stage::Test,
        },
    )
    .expect("eval");
    assert!((report.mean_rank - 2.0).abs() < 1e-12);
    assert_eq!(report.metrics[0].hr, 1.0 / 3.0);
    let err = evaluate(&split, &Broken, &EvalConfig::default()).expect_err("NaN");
    assert!(err.to_string().contains("NaN score for item 1"), "{err}");
    assert!(
        EvalConfig {
            cutoffs: vec![0],
            stage: Stage::Test
        }
        .validate()
        .is_err()
    );
}

#[test]
fn csv_import_counts_bad_rows_with_line_and_reason_and_filters_events() {
    let mut text = b"uid;vid;time;kind\n".to_vec();
    text.extend_from_slice(b"1;10;100;click\n"); // row 1, line 2: kept
    text.extend_from_slice(b" ;11;101;click\n"); // row 2: empty user
    text.extend_from_slice(b"1;12;12x;click\n"); // row 3: bad timestamp
    text.extend_from_slice(b"1;13;103\n"); // row 4: 3 fields
    text.extend_from_slice(b"2;14;104;view\n"); // row 5: filtered
    text.extend_from_slice(b"2;\xff\xfe;105;click\n"); // row 6: invalid UTF-8
    text.extend_from_slice(b"2;10;106;click\n"); // row 7: kept
    text.extend_from_slice(b"3;10;;click\n"); // row 8: empty timestamp
    let file = write_file(&text, ".csv");
    let config = ImportConfig {
        columns: ColumnMapping {
            user: "uid".into(),
            item: "vid".into(),
            timestamp: "time".into(),
            event: Some(EventFilter {
                column: "kind".into(),
                keep: vec!["click".into()],
            }),
        },
        delimiter: Some(';'),
        max_examples: 4,
        ..ImportConfig::default()
    };
    let (log, report) = import_log(file.path(), &config).expect("import");
    assert_eq!(
        (report.rows, report.kept, report.filtered, report.bad),
        (8, 2, 1, 5)
    );
    assert_eq!(log.num_users(), 2);
    assert_eq!(log.num_interactions(), 2);
    let summary: Vec<(u64, Option<u64>, BadRowReason)> = report
        .examples
        .iter()
        .map(|b| (b.row, b.line, b.reason.clone()))
        .collect();
    assert_eq!(summary.len(), 4, "only max_examples kept");
    assert_eq!(
        summary[0],
        (
            2,
            Some(3),
            BadRowReason::EmptyField {
                column: "uid".into()
            }
        )
    );
    assert_eq!(
        summary[1],
        (
            3,
            Some(4),
            BadRowReason::BadTimestamp {
                value: "12x".into()
            }
        )
    );
    assert_eq!(
        summary[2],
        (
            4,
            Some(5),
            BadRowReason::FieldCount {
                expected: 4,
                got: 3
            }
        )
    );
    assert_eq!((summary[3].0, summary[3].1), (6, Some(7)));
    assert!(matches!(summary[3].2, BadRowReason::Malformed(_)));
    assert_eq!(
        report.examples[1].to_string(),
        "row 3 (line 4): timestamp \"12x\" is not an integer"
    );
}

#[test]
fn import_refuses_missing_columns_unknown_formats_and_bad_mappings() {
    let file = write_file(b"user,item,time\n1,2,3\n", ".csv");
    let err = import_log(file.path(), &ImportConfig::default()).expect_err("no timestamp column");
    let text = err.to_string();
    assert!(
        text.contains("no column `timestamp`") && text.contains("user, item, time"),
        "{text}"
    );
    let other = write_file(b"user,item,timestamp\n", ".txt");
    assert!(matches!(
        import_log(other.path(), &ImportConfig::default()),
        Err(liverank_recall::Error::UnknownFormat { .. })
    ));
    let twice = ImportConfig {
        columns: ColumnMapping {
            item: "user".into(),
            ..ColumnMapping::default()
        },
        ..ImportConfig::default()
    };
    assert!(twice.validate().is_err());
    assert!(toml::from_str::<ImportConfig>("[columns]\nuser = \"u\"\nitems = \"i\"").is_err());
    let parsed: ImportConfig =
        toml::from_str("format = \"parquet\"\n[columns]\nuser = \"u\"").expect("parse");
    assert_eq!(
        (parsed.columns.user.as_str(), parsed.columns.item.as_str()),
        ("u", "item")
    );
}

#[test]
fn parquet_import_reads_mapped_columns_of_any_key_type_and_counts_nulls() {
    use std::sync::Arc;

    use arrow_array::{
        ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    };
    use parquet::arrow::ArrowWriter;

    let write = |columns: Vec<(&str, ArrayRef)>| {
        let batch = RecordBatch::try_from_iter(columns).expect("batch");
        let file = tempfile::Builder::new()
            .suffix(".parquet")
            .tempfile()
            .expect("tempfile");
        let mut writer = ArrowWriter::try_new(file.reopen().expect("reopen"), batch.schema(), None)
            .expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        file
    };
    let file = write(vec![
        (
            "extra",
            Arc::new(Float64Array::from(vec![0.0; 5])) as ArrayRef,
        ),
        (
            "uid",
            Arc::new(StringArray::from(vec![
                Some("a"),
                Some("a"),
                None,
                Some("b"),
                Some("a"),
            ])),
        ),
        ("vid", Arc::new(Int64Array::from(vec![7, 8, 9, 7, 9]))),
        (
            "at",
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(30),
                Some(10),
                Some(5),
                None,
                Some(20),
            ])),
        ),
    ]);
    let config = ImportConfig {
        columns: ColumnMapping {
            user: "uid".into(),
            item: "vid".into(),
            timestamp: "at".into(),
            event: None,
        },
        ..ImportConfig::default()
    };
    let (log, report) = import_log(file.path(), &config).expect("import");
    assert_eq!((report.rows, report.kept, report.bad), (5, 3, 2));
    assert_eq!(
        report.examples[0].to_string(),
        "row 3: column `uid` is null"
    );
    assert_eq!(report.examples[1].to_string(), "row 4: column `at` is null");
    // a: 8@10, 9@20, 7@30 after sorting by time; items by first appearance 7, 8, 9.
    assert_eq!(log.items_of(0), &[1, 2, 0]);
    assert_eq!(log.timestamps_of(0), &[10, 20, 30]);
    assert_eq!(log.item_key(0), Some("7"));

    let float_time = write(vec![
        ("user", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
        ("item", Arc::new(Int64Array::from(vec![2]))),
        ("timestamp", Arc::new(Float64Array::from(vec![3.5]))),
    ]);
    let err =
        import_log(float_time.path(), &ImportConfig::default()).expect_err("float timestamps");
    assert!(
        err.to_string()
            .contains("column `timestamp` has type Float64"),
        "{err}"
    );
}

proptest! {
    /// No future leak: for every evaluated user the training prefix is no later than the
    /// validation item, which is no later than the test item; train + valid + test is the
    /// user's whole sequence; histories are exactly what precedes each target.
    #[test]
    fn split_never_trains_on_the_future(rows in prop::collection::vec((0u8..6, 0u8..10, 0i64..20), 0..80)) {
        let mut builder = LogBuilder::new();
        for (u, i, ts) in &rows {
            builder.push(&u.to_string(), &i.to_string(), *ts);
        }
        let log = builder.finish();
        let split = Split::leave_one_out(&log);
        for user in 0..log.num_users() as u32 {
            let items = log.items_of(user);
            let ts = log.timestamps_of(user);
            prop_assert!(ts.windows(2).all(|w| w[0] <= w[1]));
            let train = split.train(user);
            match (split.case(user, Stage::Validation), split.case(user, Stage::Test)) {
                (Some(valid), Some(test)) => {
                    prop_assert!(items.len() >= 3);
                    prop_assert_eq!(train.len(), items.len() - 2);
                    let (valid_ts, test_ts) = (ts[items.len() - 2], ts[items.len() - 1]);
                    prop_assert!(ts[..train.len()].iter().all(|&t| t <= valid_ts && t <= test_ts));
                    prop_assert!(valid_ts <= test_ts);
                    prop_assert_eq!(valid.history, train);
                    prop_assert_eq!(test.history.len(), train.len() + 1);
                    prop_assert_eq!(&test.history[..train.len()], train);
                    prop_assert_eq!(test.history[train.len()], valid.target);
                    let mut whole = train.to_vec();
                    whole.push(valid.target);
                    whole.push(test.target);
                    prop_assert_eq!(whole.as_slice(), items);
                    prop_assert!(split.evaluated_users().contains(&user));
                }
                (None, None) => {
                    prop_assert!(items.len() < 3);
                    prop_assert_eq!(train, items);
                }
                _ => prop_assert!(false, "a user evaluated at one stage only"),
            }
        }
    }
}

#[test]
fn baselines_run_from_one_config_section() {
    let text = "[import.columns]\ntimestamp = \"ts\"\n[eval]\ncutoffs = [1, 3]\nstage = \"validation\"\n[item_knn]\nneighbours = 50\n";
    let config: liverank_recall::RecallEvalConfig = toml::from_str(text).expect("parse");
    config.validate().expect("valid");
    let log = tiny_log();
    let split = Split::leave_one_out(&log);
    let reports = liverank_recall::evaluate_baselines(&split, &config).expect("eval");
    let names: Vec<&str> = reports.iter().map(|r| r.scorer.as_str()).collect();
    assert_eq!(names, ["popularity", "item_knn"]);
    // The hand-computed validation figures of the two tests above.
    assert_eq!(reports[0].metrics[0].hr, 0.0);
    assert!((reports[1].metrics[1].ndcg - 0.5).abs() < 1e-12);
    assert_eq!(
        reports[1].to_string(),
        "item_knn (validation, 3 users, full ranking over 5 items): HR@1 0.3333 NDCG@1 0.3333 HR@3 0.6667 NDCG@3 0.5000, mean rank 2.7"
    );
    assert!(toml::from_str::<liverank_recall::RecallEvalConfig>("[eval]\ncutof = [1]").is_err());
}

#[test]
fn import_strips_a_bom_reads_tsv_and_filters_parquet_events_of_integer_type() {
    let file = write_file(
        b"\xEF\xBB\xBFuser\titem\ttimestamp\nu\ti\t1\nu\tj\t2\n",
        ".tsv",
    );
    let (log, report) = import_log(file.path(), &ImportConfig::default()).expect("BOM and tab");
    assert_eq!((report.kept, log.num_items()), (2, 2));

    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int32Array, LargeStringArray, RecordBatch, UInt64Array};
    use parquet::arrow::ArrowWriter;

    let batch = RecordBatch::try_from_iter(vec![
        (
            "user",
            Arc::new(UInt64Array::from(vec![1, 1, 2, 2])) as ArrayRef,
        ),
        (
            "item",
            Arc::new(LargeStringArray::from(vec!["x", "", "y", "z"])),
        ),
        ("timestamp", Arc::new(Int32Array::from(vec![3, 1, 2, 5]))),
        (
            "type",
            Arc::new(Int32Array::from(vec![Some(1), Some(1), Some(2), None])),
        ),
    ])
    .expect("batch");
    let file = tempfile::Builder::new()
        .suffix(".parquet")
        .tempfile()
        .expect("tempfile");
    let mut writer =
        ArrowWriter::try_new(file.reopen().expect("reopen"), batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    let config = ImportConfig {
        columns: ColumnMapping {
            event: Some(EventFilter {
                column: "type".into(),
                keep: vec!["1".into()],
            }),
            ..ColumnMapping::default()
        },
        ..ImportConfig::default()
    };
    let (log, report) = import_log(file.path(), &config).expect("import");
    // Rows 3 (type 2) and 4 (null type) are filtered; row 2 has an empty item.
    assert_eq!(
        (report.rows, report.kept, report.filtered, report.bad),
        (4, 1, 2, 1)
    );
    assert_eq!(
        report.examples[0].to_string(),
        "row 2: column `item` is empty"
    );
    assert_eq!((log.user_key(0), log.item_key(0)), (Some("1"), Some("x")));
}

// Items (2-d): a = (1, 0), b = (0, 1), c = (1, 1), d = (-1, 0), e = (0, -2). The user's two
// interests are the mean of the history's vectors and the last item's vector. For u1 at
// test (history a b c): mean (2/3, 2/3), last (1, 1); scores a 1, b 1, c 2, d -2/3,
// e -4/3 → rankable d, e; target d (-2/3) beats e → rank 1.
// u2 (history b c, target a): mean (1/2, 1), last (1, 1): a 1, d -1/2, e -2 → rank 1.
// u3 (history a d e c, target b): b only rankable → rank 1. HR@1 = 1.
#[test]
fn vector_scorer_takes_the_best_interest_per_item() {
    let items = vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0, -1.0, 0.0, 0.0, -2.0];
    let table = items.clone();
    let interests = move |_user: u32, history: &[u32]| -> liverank_recall::Result<Vec<Vec<f32>>> {
        let row = |i: u32| &table[i as usize * 2..i as usize * 2 + 2];
        let n = history.len() as f32;
        let mean = (0..2)
            .map(|d| history.iter().map(|&i| row(i)[d]).sum::<f32>() / n)
            .collect();
        let last = row(*history.last().expect("non-empty history")).to_vec();
        Ok(vec![mean, last])
    };
    let scorer =
        liverank_recall::VectorScorer::new("two_interests", 2, items, interests).expect("table");
    let mut scores = vec![0.0; 5];
    scorer.score(0, &[0, 1, 2], &mut scores).expect("score");
    let third = 2.0f32 / 3.0;
    let want = [1.0, 1.0, 2.0, -third, -2.0 * third];
    for (g, w) in scores.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{scores:?}");
    }
    let log = tiny_log();
    let split = Split::leave_one_out(&log);
    let report = evaluate(
        &split,
        &scorer,
        &EvalConfig {
            cutoffs: vec![1],
            stage: Stage::Test,
        },
    )
    .expect("eval");
    assert_eq!(report.metrics[0].hr, 1.0);
    let bad = liverank_recall::VectorScorer::new("bad", 2, vec![0.0; 10], |_: u32, _: &[u32]| {
        Ok(vec![vec![1.0]])
    })
    .expect("table");
    assert!(evaluate(&split, &bad, &EvalConfig::default()).is_err());
    assert!(
        liverank_recall::VectorScorer::new("odd", 3, vec![0.0; 10], |_: u32, _: &[u32]| Ok(vec![]))
            .is_err()
    );
}

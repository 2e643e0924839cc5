//! The baselines on synthetic logs with known structure: users who stay inside one "topic"
//! of items, so co-occurrence predicts the next item and global popularity cannot. And an
//! ignored scale run that prints import / fit / evaluation times:
//!
//! ```text
//! cargo test --release -p liverank-recall --test integration baselines -- --ignored --nocapture
//! ```

use std::time::Instant;

use liverank_recall::{
    EvalConfig, ImportConfig, InteractionLog, ItemKnn, ItemKnnConfig, LogBuilder, Popularity,
    Split, Stage, evaluate, import_log,
};

/// xorshift64*: enough for synthetic logs, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `users` users, each picking one of `topics` topics of `per_topic` items and making
/// `length` interactions, 80 % inside the topic (skewed towards its first items), 20 %
/// anywhere.
fn topic_log(
    users: usize,
    topics: u64,
    per_topic: u64,
    length: usize,
    seed: u64,
) -> Vec<(String, String, i64)> {
    let mut rng = Rng(seed | 1);
    let items = topics * per_topic;
    let mut rows = Vec::new();
    for user in 0..users {
        let topic = rng.below(topics);
        for step in 0..length {
            let item = if rng.below(10) < 8 {
                // min of two uniforms: a skew towards the topic's low items.
                topic * per_topic + rng.below(per_topic).min(rng.below(per_topic))
            } else {
                rng.below(items)
            };
            rows.push((format!("u{user}"), format!("i{item}"), step as i64));
        }
    }
    rows
}

fn build(rows: &[(String, String, i64)]) -> InteractionLog {
    let mut builder = LogBuilder::new();
    for (user, item, ts) in rows {
        builder.push(user, item, *ts);
    }
    builder.finish()
}

#[test]
fn item_knn_beats_popularity_when_co_occurrence_carries_the_signal() {
    let log = build(&topic_log(2_000, 50, 10, 10, 7));
    let split = Split::leave_one_out(&log);
    let config = EvalConfig {
        cutoffs: vec![10],
        stage: Stage::Test,
    };
    let popularity = evaluate(&split, &Popularity::fit(&split), &config).expect("eval");
    let knn = evaluate(
        &split,
        &ItemKnn::fit(&split, ItemKnnConfig::default()).expect("fit"),
        &config,
    )
    .expect("eval");
    let (pop_hr, knn_hr) = (popularity.metrics[0].hr, knn.metrics[0].hr);
    println!("{popularity}\n{knn}");
    // A target is in its user's topic 80 % of the time (10 of 500 items); popularity's top
    // 10 spans the whole catalogue, so it hits ~2 %; the topic's co-occurring items cover
    // most in-topic targets.
    assert!(pop_hr < 0.1, "popularity HR@10 {pop_hr}");
    assert!(knn_hr > 0.5, "item-kNN HR@10 {knn_hr}");
    assert!(knn.metrics[0].ndcg > 3.0 * popularity.metrics[0].ndcg);
}

#[test]
#[ignore = "a 1M-row log; run in release with --ignored --nocapture"]
fn baselines_scale_to_a_million_rows() {
    let rows = topic_log(50_000, 1_000, 20, 20, 11);
    let file = tempfile::Builder::new()
        .suffix(".csv")
        .tempfile()
        .expect("tempfile");
    {
        let mut writer = csv::Writer::from_path(file.path()).expect("writer");
        writer
            .write_record(["user", "item", "timestamp"])
            .expect("header");
        for (user, item, ts) in &rows {
            writer
                .write_record([user.as_str(), item.as_str(), &ts.to_string()])
                .expect("row");
        }
        writer.flush().expect("flush");
    }
    let start = Instant::now();
    let (log, report) = import_log(file.path(), &ImportConfig::default()).expect("import");
    println!(
        "import: {} rows, {} users, {} items in {:.2} s",
        report.kept,
        log.num_users(),
        log.num_items(),
        start.elapsed().as_secs_f64()
    );
    let split = Split::leave_one_out(&log);
    let config = EvalConfig {
        cutoffs: vec![10, 50],
        stage: Stage::Test,
    };
    let start = Instant::now();
    let popularity = Popularity::fit(&split);
    let report = evaluate(&split, &popularity, &config).expect("eval");
    println!("{report}  [{:.2} s]", start.elapsed().as_secs_f64());
    let start = Instant::now();
    let knn = ItemKnn::fit(&split, ItemKnnConfig::default()).expect("fit");
    let fit = start.elapsed().as_secs_f64();
    let report = evaluate(&split, &knn, &config).expect("eval");
    println!(
        "{report}  [fit {fit:.2} s, total {:.2} s]",
        start.elapsed().as_secs_f64()
    );
}

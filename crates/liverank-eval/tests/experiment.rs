//! An experiment end to end on the `tiny` day: two variants × a repeated seed, trained on
//! the same samples and history; the table's cells, its determinism and its renderings.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::sync::Arc;

use liverank_eval::{ExperimentData, ExperimentSpec, Segment, Variant, run_experiment};
use liverank_history::{GsuAssembler, HistoryBuilder, HistoryConfig, HistoryStore, MemoryStore};
use liverank_model::RankerConfig;
use liverank_samples::{FeatureContext, Output, SampleConfig, SampleEngine};
use liverank_train::{HistorySource, TrainSettings, split_samples};
use liverank_types::{Author, Policy, Sample, Task, User};

fn tiny() -> (Vec<Sample>, MemoryStore) {
    let sim = liverank_sim::Simulation::new(
        liverank_sim::SimConfig::preset(liverank_sim::Preset::Tiny).with_seed(7),
    )
    .unwrap();
    let mut sink = liverank_sim::VecSink::default();
    sim.run(&mut sink, |_| {}).unwrap();
    let users: Vec<User> = sim
        .world()
        .users
        .iter()
        .map(|u| u.profile.clone())
        .collect();
    let authors: Vec<Author> = sim.world().authors.iter().map(|a| a.row.clone()).collect();
    let config = SampleConfig {
        policies: vec![Policy::Realtime, Policy::Complete],
        ..SampleConfig::default()
    };
    let long_view_ms = config.long_view_ms;
    let mut engine = SampleEngine::new(config, Arc::new(FeatureContext::new(&users, &authors)));
    let history_config = HistoryConfig::default();
    let history = MemoryStore::new(&history_config).unwrap();
    let mut builder = HistoryBuilder::new(long_view_ms).with_videos(&sim.world().videos);
    let (mut out, mut records) = (Vec::new(), Vec::new());
    for e in sink.events {
        builder.push(&e, &mut records);
        engine.push(e, &mut out);
    }
    engine.finish(&mut out);
    history.append(&records).unwrap();
    let samples = out
        .into_iter()
        .filter_map(|o| match o {
            Output::Sample(s) => Some(s),
            Output::Rejected { .. } => None,
        })
        .collect();
    (samples, history)
}

fn variant(name: &str, model: &str) -> Variant {
    Variant {
        name: name.into(),
        model: model.parse().unwrap(),
    }
}

#[test]
fn variants_times_seeds_give_one_deterministic_table() {
    let (samples, store) = tiny();
    // The whole day: on a truncated slice (the first hours) neither variant rises above
    // chance reliably.
    let (train, eval) = split_samples(samples.clone(), samples, Policy::Realtime, 0.75).unwrap();
    let base = RankerConfig {
        hidden: vec![32],
        ..RankerConfig::full_cross()
    };
    let spec = ExperimentSpec {
        // The same seed twice: a run is a pure function of its configuration.
        seeds: vec![5, 5],
        tasks: vec![Task::Click, Task::LongView],
        segment: true,
        slices: Vec::new(),
        model: toml::Table::new(),
        variants: vec![
            variant(
                "no Cross",
                "history_sequences = []\nhistory_profile = false",
            ),
            variant("full", ""),
        ],
    };
    let settings = TrainSettings {
        epochs: 2,
        batch_size: 256,
        ..TrainSettings::default()
    };
    let history = HistorySource {
        store: &store,
        assembler: GsuAssembler::new(base.history_len),
    };
    let mut events = 0;
    let table = run_experiment(
        &spec,
        &base,
        &settings,
        ExperimentData {
            highlights: None,
            train: &train,
            eval: &eval,
            history: Some(history),
        },
        |_| events += 1,
    )
    .unwrap();
    assert_eq!(events, 2 * 2 * 2, "a start and a done per run");
    assert_eq!(
        table.metrics,
        [
            "click AUC",
            "click GAUC",
            "long_view AUC",
            "long_view GAUC",
            "seg click AUC",
            "seg click GAUC",
            "seg long_view AUC",
            "seg long_view GAUC",
            "soft recall",
            "train rows/s",
            "forecast cache hit rate"
        ]
    );
    for v in ["no Cross", "full"] {
        let auc = table.cell(v, "click AUC").unwrap();
        assert_eq!(auc.values.len(), 2);
        assert!(auc.values[0] > 0.0 && auc.values[0] < 1.0, "{v}: {auc:?}");
        assert_eq!(auc.values[0], auc.values[1], "{v}: same seed, same AUC");
        assert_eq!(auc.half_range(), 0.0);
    }
    // On tiny, click depends on the user's interests, which only the history reveals
    // (learn_tiny: 0.53 without it): the full model must be clearly better.
    let blind = table.cell("no Cross", "click AUC").unwrap().mean();
    let full = table.cell("full", "click AUC").unwrap().mean();
    eprintln!("click AUC: no Cross {blind:.4}, full {full:.4}");
    assert!(
        full > 0.6 && full > blind + 0.05,
        "no Cross {blind}, full {full}"
    );
    // Soft recall exists only where there are soft searches.
    assert!(
        table
            .cell("no Cross", "soft recall")
            .unwrap()
            .mean()
            .is_nan()
    );

    let (seg, of) = table.segment_users.unwrap();
    assert!(seg > 0 && seg <= of / 4, "{seg} of {of}");
    let segment = Segment::of_eval(&eval, &history).unwrap();
    assert_eq!(segment.users.len(), seg);

    let md = table.to_markdown();
    assert_eq!(
        md.lines().filter(|l| l.starts_with("| ")).count(),
        3,
        "{md}"
    );
    assert!(md.contains("| full |"), "{md}");
    let csv = table.to_csv();
    assert_eq!(csv.lines().count(), 1 + 2 * table.metrics.len(), "{csv}");
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("no Cross,click AUC,"),
        "{csv}"
    );
}

#[test]
fn a_variant_with_an_unknown_key_or_a_bad_value_is_refused() {
    let base = RankerConfig::full_cross();
    let spec = ExperimentSpec {
        seeds: vec![1],
        tasks: vec![Task::Click],
        segment: false,
        slices: Vec::new(),
        model: toml::Table::new(),
        variants: vec![variant("typo", "esu_head = 2")],
    };
    let err = spec
        .variant_config(&base, &spec.variants[0], 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("typo") && err.contains("esu_head"), "{err}");
    let bad = variant("bad", "esu_heads = 3");
    let err = spec.variant_config(&base, &bad, 1).unwrap_err().to_string();
    assert!(err.contains("divide"), "{err}");
    let good = spec
        .variant_config(&base, &variant("ok", "contrastive_weight = 0.0"), 9)
        .unwrap();
    assert_eq!((good.contrastive_weight, good.seed), (0.0, 9));
    assert_eq!(good.history_sequences, base.history_sequences);
    let twice = ExperimentSpec {
        variants: vec![variant("a", ""), variant("a", "")],
        ..spec
    };
    assert!(twice.validate().is_err());
}

//! End to end on the `tiny` simulator: realtime samples (and the users' history store) →
//! train → evaluate on the later slice's complete labels. Training must lower the loss and
//! beat the popularity baseline, and the Cross history sequences must lift click AUC: the
//! simulator's click model is driven by the user's interest in the room's category, which
//! only the short-video history reveals.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::sync::Arc;

use liverank_history::{GsuAssembler, HistoryBuilder, HistoryConfig, HistoryStore, MemoryStore};
use liverank_model::RankerConfig;
use liverank_samples::{FeatureContext, Output, SampleConfig, SampleEngine};
use liverank_train::offline::{popularity_click_auc, sample_shape};
use liverank_train::{HistorySource, TrainSettings, evaluate_on, split_samples, train_offline};
use liverank_types::{Author, Policy, Sample, Task, User};

/// The tiny day's samples and history, built once for all tests of this file.
fn tiny() -> &'static (Vec<Sample>, MemoryStore) {
    static TINY: std::sync::OnceLock<(Vec<Sample>, MemoryStore)> = std::sync::OnceLock::new();
    TINY.get_or_init(tiny_samples)
}

fn tiny_samples() -> (Vec<Sample>, MemoryStore) {
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
    let mut engine = SampleEngine::new(config, Arc::new(FeatureContext::new(&users, &authors)));
    let history_config = HistoryConfig::default();
    let history = MemoryStore::new(&history_config).unwrap();
    let mut builder =
        HistoryBuilder::new(SampleConfig::default().long_view_ms).with_videos(&sim.world().videos);
    let mut out = Vec::new();
    let mut records = Vec::new();
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

fn click_auc(evaluation: &liverank_train::Evaluation) -> f64 {
    evaluation
        .tasks
        .iter()
        .find(|(t, _)| *t == Task::Click)
        .unwrap()
        .1
        .auc
        .unwrap()
}

#[test]
fn training_on_tiny_lowers_the_loss_beats_popularity_and_history_lifts_click_auc() {
    let (samples, store) = tiny();
    let (train, eval) =
        split_samples(samples.clone(), samples.clone(), Policy::Realtime, 0.75).unwrap();
    assert!(
        train.len() > 5_000 && eval.len() > 1_000,
        "{} train, {} eval",
        train.len(),
        eval.len()
    );
    let config = RankerConfig {
        hidden: vec![64, 32],
        ..RankerConfig::full_cross()
    };
    let trainer = liverank_model::Trainer::new(config.clone(), sample_shape(&config)).unwrap();
    let settings = TrainSettings {
        epochs: 2,
        batch_size: 256,
        ..TrainSettings::default()
    };
    let history = HistorySource {
        store,
        assembler: GsuAssembler::new(config.history_len),
    };
    let run = train_offline(trainer, &settings, &train, Some(&history), |_, _| Ok(())).unwrap();
    let n = run.losses.len();
    let head: f32 = run.losses[..n / 5].iter().sum::<f32>() / (n / 5) as f32;
    let tail: f32 = run.losses[n - n / 5..].iter().sum::<f32>() / (n / 5) as f32;
    assert!(tail < 0.9 * head, "loss {head} → {tail}");
    let evaluation = evaluate_on(&run.trainer.scorer().unwrap(), &eval, Some(&history)).unwrap();
    let popularity = popularity_click_auc(&train, &eval).unwrap();
    let model = click_auc(&evaluation);

    // The same model and seed without history input (the groups stay, empty).
    let trainer = liverank_model::Trainer::new(config.clone(), sample_shape(&config)).unwrap();
    let blind = train_offline(trainer, &settings, &train, None, |_, _| Ok(())).unwrap();
    let blind = click_auc(&evaluate_on(&blind.trainer.scorer().unwrap(), &eval, None).unwrap());
    eprintln!("click AUC {model:.4} (no history {blind:.4}) vs popularity {popularity:.4}");
    assert!(
        model > popularity + 0.01,
        "model {model} vs popularity {popularity}"
    );
    assert!(
        model > blind + 0.03,
        "history sequences did not help: {model} with, {blind} without"
    );
}

#[test]
fn pipelined_training_resumed_at_an_epoch_end_continues_exactly() {
    let (samples, store) = tiny();
    let (mut train, _) =
        split_samples(samples.clone(), samples.clone(), Policy::Realtime, 0.75).unwrap();
    train.truncate(3_000);
    let config = RankerConfig {
        hidden: vec![32],
        ..RankerConfig::full_cross()
    };
    let history = HistorySource {
        store,
        assembler: GsuAssembler::new(config.history_len),
    };
    // Soft searches refresh their table copy every 4 steps: chunks of 4, 4, 4, 3 per
    // epoch, each a drained pipeline; a resumed run replays the same chunks.
    let settings = |epochs| TrainSettings {
        epochs,
        batch_size: 200,
        pipeline: true,
        soft_refresh_steps: 4,
        ..TrainSettings::default()
    };
    let fresh = || liverank_model::Trainer::new(config.clone(), sample_shape(&config)).unwrap();
    let straight =
        train_offline(fresh(), &settings(3), &train, Some(&history), |_, _| Ok(())).unwrap();

    let mut saved = None;
    let first = train_offline(fresh(), &settings(1), &train, Some(&history), |t, p| {
        if let Some(t) = t {
            assert!(p.epoch_end && p.step == 15, "step {}", p.step);
            saved = Some(t.to_bytes().unwrap());
        }
        Ok(())
    })
    .unwrap();
    let resumed = liverank_model::Trainer::from_bytes(&saved.unwrap()).unwrap();
    let rest = train_offline(resumed, &settings(3), &train, Some(&history), |_, _| Ok(())).unwrap();
    let mut losses = first.losses;
    losses.extend(rest.losses);
    assert_eq!(losses.len(), 45);
    assert_eq!(losses, straight.losses, "resumed losses differ");
    // The soft searches ran on copies of the table (one recall per refresh after the
    // first); once the rows exist, a copy 4 steps stale finds most of what the exact
    // table finds (the first copy, of the empty table, finds nothing).
    let recall = &straight.soft_recall;
    assert_eq!(recall.len(), 3 * 4 - 1);
    assert_eq!(recall[0], 0.0, "{recall:?}");
    let late = recall[recall.len() - 4..].iter().sum::<f64>() / 4.0;
    assert!(late > 0.5 && late <= 1.0, "soft search recall {recall:?}");
}

//! End to end on the `tiny` simulator: realtime samples → train → evaluate on the later
//! slice's complete labels. Training must lower the loss and beat the popularity baseline.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::sync::Arc;

use liverank_model::RankerConfig;
use liverank_samples::{FeatureContext, Output, SampleConfig, SampleEngine};
use liverank_train::offline::{popularity_click_auc, sample_shape};
use liverank_train::{TrainSettings, evaluate_on, split_samples, train_offline};
use liverank_types::{Author, Policy, Sample, Task, User};

fn tiny_samples() -> Vec<Sample> {
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
    let mut out = Vec::new();
    for e in sink.events {
        engine.push(e, &mut out);
    }
    engine.finish(&mut out);
    out.into_iter()
        .filter_map(|o| match o {
            Output::Sample(s) => Some(s),
            Output::Rejected { .. } => None,
        })
        .collect()
}

#[test]
fn training_on_tiny_lowers_the_loss_and_beats_popularity() {
    let samples = tiny_samples();
    let (train, eval) = split_samples(samples.clone(), samples, Policy::Realtime, 0.75).unwrap();
    assert!(
        train.len() > 5_000 && eval.len() > 1_000,
        "{} train, {} eval",
        train.len(),
        eval.len()
    );
    let config = RankerConfig {
        hidden: vec![64, 32],
        ..RankerConfig::default()
    };
    let trainer = liverank_model::Trainer::new(config.clone(), sample_shape(&config)).unwrap();
    let settings = TrainSettings {
        epochs: 2,
        batch_size: 256,
        ..TrainSettings::default()
    };
    let run = train_offline(trainer, &settings, &train, |_, _| Ok(())).unwrap();
    let n = run.losses.len();
    let head: f32 = run.losses[..n / 5].iter().sum::<f32>() / (n / 5) as f32;
    let tail: f32 = run.losses[n - n / 5..].iter().sum::<f32>() / (n / 5) as f32;
    assert!(tail < 0.9 * head, "loss {head} → {tail}");
    let evaluation = evaluate_on(&run.trainer.scorer().unwrap(), &eval).unwrap();
    let click = &evaluation
        .tasks
        .iter()
        .find(|(t, _)| *t == Task::Click)
        .unwrap()
        .1;
    let popularity = popularity_click_auc(&train, &eval).unwrap();
    let model = click.auc.unwrap();
    eprintln!(
        "click AUC {model:.4} vs popularity {popularity:.4}; GAUC {:?}",
        click.gauc
    );
    assert!(
        model > popularity + 0.01,
        "model {model} vs popularity {popularity}"
    );
}

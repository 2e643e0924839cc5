//! Test-then-train: `train_step_scored` reports the predictions of the model *before* the
//! step learns the batch. Checked against a frozen scorer taken before the step (equal)
//! and one taken after it (different): swapping the order would fail the first assertion.
#![allow(clippy::unwrap_used, reason = "tests")]

use liverank_model::features::{FeatureBatch, KeyKind, key};
use liverank_model::rng::SplitMix64;
use liverank_model::{InputShape, RankerConfig, SeqGroups, Trainer, TrunkConfig, TrunkKind};
use liverank_types::Task;

const SHAPE: InputShape = InputShape {
    fields: 2,
    seq_len: 2,
    seq_subkeys: 1,
    dense: 1,
    groups: SeqGroups::single(2),
};

fn batch(seed: u64) -> FeatureBatch {
    let mut rng = SplitMix64::new(seed);
    let mut b = FeatureBatch::with_shape(2, 2, 1, 1, 2);
    for _ in 0..32 {
        b.fields.extend([
            key(KeyKind::Live, rng.below(8) as u64),
            key(KeyKind::User, rng.below(8) as u64),
        ]);
        for _ in 0..2 {
            b.seq_keys.push(key(KeyKind::Live, rng.below(8) as u64));
            b.seq_mask.push(true);
        }
        b.dense.push(rng.uniform(1.0));
        // Every label 1: a step moves every prediction up, visibly.
        b.labels.extend([1.0, 1.0]);
        b.mask.extend([1.0, 1.0]);
        b.slow.push(false);
        b.users.push(0);
        b.batch += 1;
    }
    b
}

#[test]
fn scored_step_reports_the_predictions_before_learning() {
    let config = RankerConfig {
        tasks: vec![Task::Click, Task::Like],
        embedding_dim: 4,
        hidden: vec![8],
        trunk: TrunkConfig {
            kind: TrunkKind::Mmoe,
            shared_experts: 1,
            specific_experts: 0,
            levels: 1,
            expert_hidden: 4,
        },
        tower_hidden: vec![],
        learning_rate: 0.05,
        ..RankerConfig::full_cross()
    };
    let mut trainer = Trainer::new(config, SHAPE).unwrap();
    let b = batch(1);
    // One step first, so every id has a row in the frozen scorers too.
    trainer.train_step(&b).unwrap();
    let before = trainer.scorer().unwrap().predict(&b).unwrap();
    let (stats, scored) = trainer.train_step_scored(&b).unwrap();
    let after = trainer.scorer().unwrap().predict(&b).unwrap();
    assert_eq!(stats.rows, 32);
    assert_eq!(scored.len(), before.len());
    let max_diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    };
    assert!(
        max_diff(&scored, &before) < 1e-5,
        "{}",
        max_diff(&scored, &before)
    );
    // The step learnt: all-positive labels raised the predictions.
    assert!(
        max_diff(&scored, &after) > 1e-3,
        "{}",
        max_diff(&scored, &after)
    );
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    assert!(mean(&after) > mean(&scored));
}

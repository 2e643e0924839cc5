//! The trainer end to end on a small synthetic problem: it learns, and a checkpoint →
//! restore → continue reproduces the uninterrupted run's losses bit for bit.
#![allow(clippy::unwrap_used, reason = "tests")]

use liverank_model::features::{FeatureBatch, KeyKind, key};
use liverank_model::rng::SplitMix64;
use liverank_model::{
    InputShape, LossKind, RankerConfig, SeqGroups, Trainer, TrunkConfig, TrunkKind,
};
use liverank_types::Task;

const SHAPE: InputShape = InputShape {
    fields: 3,
    seq_len: 4,
    seq_subkeys: 1,
    dense: 2,
    groups: SeqGroups::single(4),
};

fn config(kind: TrunkKind) -> RankerConfig {
    RankerConfig {
        tasks: vec![Task::Click, Task::Like],
        embedding_dim: 8,
        hidden: vec![16],
        trunk: TrunkConfig {
            kind,
            shared_experts: 2,
            specific_experts: 1,
            levels: 2,
            expert_hidden: 8,
        },
        tower_hidden: vec![],
        learning_rate: 0.01,
        ..RankerConfig::full_cross()
    }
}

/// Rows where the click label depends on whether the target item appears in the sequence
/// (so target attention has something to find) and like on the first dense value.
fn batch(rng: &mut SplitMix64, rows: usize) -> FeatureBatch {
    let mut b = FeatureBatch::with_shape(SHAPE.fields, SHAPE.seq_len, 1, SHAPE.dense, 2);
    for _ in 0..rows {
        let target = rng.below(20) as u64;
        let in_seq = rng.below(2) == 1;
        b.fields.extend([
            key(KeyKind::Live, target),
            key(KeyKind::User, rng.below(50) as u64),
            key(KeyKind::Hour, rng.below(24) as u64),
        ]);
        let hit = rng.below(4);
        for p in 0..4 {
            let item = if in_seq && p == hit {
                target
            } else {
                20 + rng.below(20) as u64
            };
            b.seq_keys.push(key(KeyKind::Live, item));
            b.seq_mask.push(p > 0 || rng.below(2) == 0);
        }
        let x = rng.uniform(1.0);
        b.dense.extend([x, rng.uniform(1.0)]);
        let click = in_seq && b.seq_mask[b.seq_mask.len() - 4 + hit];
        b.labels
            .extend([f32::from(u8::from(click)), f32::from(u8::from(x > 0.3))]);
        b.mask.extend([1.0, 1.0]);
        b.slow.push(false);
        b.users.push(0);
        b.batch += 1;
    }
    b
}

#[test]
fn training_lowers_the_loss_for_every_trunk() {
    for kind in [TrunkKind::Mmoe, TrunkKind::Cgc, TrunkKind::Ple] {
        let mut trainer = Trainer::new(config(kind), SHAPE).unwrap();
        let mut rng = SplitMix64::new(11);
        let held_out = batch(&mut SplitMix64::new(99), 512);
        let before = trainer.eval_loss(&held_out).unwrap();
        for _ in 0..400 {
            trainer.train_step(&batch(&mut rng, 64)).unwrap();
        }
        let after = trainer.eval_loss(&held_out).unwrap();
        assert!(
            after < 0.6 * before,
            "{kind:?}: held-out loss {before} → {after}"
        );
        // The scorer agrees with the trainer's own view: probabilities in (0, 1).
        let p = trainer.scorer().unwrap().predict(&held_out).unwrap();
        assert_eq!(p.len(), 512 * 2);
        assert!(p.iter().all(|x| (0.0..=1.0).contains(x)), "probabilities");
    }
}

#[test]
fn checkpoint_resume_reproduces_the_losses_exactly() {
    let batches: Vec<FeatureBatch> = {
        let mut rng = SplitMix64::new(5);
        (0..12).map(|_| batch(&mut rng, 32)).collect()
    };
    let mut straight = Trainer::new(config(TrunkKind::Ple), SHAPE).unwrap();
    let expected: Vec<f32> = batches
        .iter()
        .map(|b| straight.train_step(b).unwrap().loss)
        .collect();

    let mut first = Trainer::new(config(TrunkKind::Ple), SHAPE).unwrap();
    let mut got: Vec<f32> = batches[..5]
        .iter()
        .map(|b| first.train_step(b).unwrap().loss)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.ckpt");
    first.save(&path).unwrap();
    drop(first);
    let mut resumed = Trainer::load(&path).unwrap();
    assert_eq!(resumed.steps(), 5);
    got.extend(
        batches[5..]
            .iter()
            .map(|b| resumed.train_step(b).unwrap().loss),
    );
    assert_eq!(got, expected, "losses after resume differ");

    // A damaged checkpoint is a clear error, not a panic.
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    let err = Trainer::load(&path).unwrap_err().to_string();
    assert!(err.contains("checksum"), "{err}");
}

#[test]
fn same_seed_same_model_other_seed_other_model() {
    let run = |seed: u64| {
        let mut trainer = Trainer::new(
            RankerConfig {
                seed,
                ..config(TrunkKind::Mmoe)
            },
            SHAPE,
        )
        .unwrap();
        let mut rng = SplitMix64::new(3);
        (0..5)
            .map(|_| trainer.train_step(&batch(&mut rng, 16)).unwrap().loss)
            .collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn pu_loss_trains_and_a_misshapen_batch_is_an_error() {
    let mut trainer = Trainer::new(
        RankerConfig {
            loss: LossKind::Pu,
            ..config(TrunkKind::Cgc)
        },
        SHAPE,
    )
    .unwrap();
    let mut b = batch(&mut SplitMix64::new(2), 8);
    b.slow[0] = true;
    assert!(trainer.train_step(&b).unwrap().loss.is_finite());
    b.dense.pop();
    let err = trainer.train_step(&b).unwrap_err().to_string();
    assert!(err.contains("dense"), "{err}");
}

#[test]
fn checkpoint_keeps_the_sequence_group_layout_and_refuses_a_bad_one() {
    use liverank_model::SeqGroup;
    let groups = SeqGroups::single(1)
        .with(SeqGroup {
            len: 3,
            query_field: 2,
            heads: 2,
            query_fields: 0b011,
        })
        .unwrap();
    let shape = InputShape {
        seq_len: 4,
        groups,
        ..SHAPE
    };
    let trainer = Trainer::new(config(TrunkKind::Mmoe), shape).unwrap();
    let restored = Trainer::from_bytes(&trainer.to_bytes().unwrap()).unwrap();
    assert_eq!(restored.shape(), shape);
    // The training batches of this file fit both layouts (4 positions, 3 fields).
    let b = batch(&mut SplitMix64::new(1), 8);
    let mut a = Trainer::new(config(TrunkKind::Mmoe), shape).unwrap();
    let mut c = Trainer::new(config(TrunkKind::Mmoe), SHAPE).unwrap();
    assert_ne!(
        a.train_step(&b).unwrap().loss,
        c.train_step(&b).unwrap().loss,
        "two groups and one group are different networks"
    );
    // Groups that do not cover the sequence axis, or query a missing field, are refused.
    let short = InputShape {
        seq_len: 5,
        ..shape
    };
    assert!(Trainer::new(config(TrunkKind::Mmoe), short).is_err());
    let bad_query = InputShape {
        groups: SeqGroups::single(1).with(SeqGroup::plain(3, 3)).unwrap(),
        ..shape
    };
    let err = Trainer::new(config(TrunkKind::Mmoe), bad_query)
        .unwrap_err()
        .to_string();
    assert!(err.contains("field"), "{err}");
}

/// `batches` with the ids of every other batch moved to another range, so that no two
/// consecutive batches share an embedding row.
fn alternating(batches: &[FeatureBatch]) -> Vec<FeatureBatch> {
    batches
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let shift = (i as u64 % 2) * 1_000;
            let mut b = b.clone();
            b.fields.iter_mut().for_each(|k| *k += shift);
            b.seq_keys.iter_mut().for_each(|k| *k += shift);
            b
        })
        .collect()
}

#[test]
fn pipelined_training_is_the_sequential_run_when_no_row_is_read_stale() {
    let mut rng = SplitMix64::new(8);
    let batches = alternating(&(0..10).map(|_| batch(&mut rng, 32)).collect::<Vec<_>>());
    let mut sequential = Trainer::new(config(TrunkKind::Ple), SHAPE).unwrap();
    let expected: Vec<f32> = batches
        .iter()
        .map(|b| sequential.train_step(b).unwrap().loss)
        .collect();
    let mut pipelined = Trainer::new(config(TrunkKind::Ple), SHAPE).unwrap();
    let mut got = Vec::new();
    let steps = pipelined
        .train_pipelined(batches.iter().cloned(), |s| {
            got.push(s.loss);
            Ok(())
        })
        .unwrap();
    assert_eq!(steps, 10);
    assert_eq!(pipelined.steps(), 10);
    // Batch i+1 is gathered before update i lands, but shares no row with batch i.
    assert_eq!(got, expected);
    // Every update is applied when the pipeline ends: the same table, the same network.
    assert!(
        pipelined.store().to_bytes() == sequential.store().to_bytes(),
        "embedding tables differ"
    );
    let held_out = batch(&mut SplitMix64::new(99), 64);
    assert_eq!(
        pipelined.eval_loss(&held_out).unwrap(),
        sequential.eval_loss(&held_out).unwrap()
    );
}

#[test]
fn pipelined_training_reads_one_update_stale_and_is_deterministic() {
    let mut rng = SplitMix64::new(8);
    let batches: Vec<FeatureBatch> = (0..300).map(|_| batch(&mut rng, 64)).collect();
    let run = || {
        let mut t = Trainer::new(config(TrunkKind::Mmoe), SHAPE).unwrap();
        let mut losses = Vec::new();
        t.train_pipelined(batches.iter().cloned(), |s| {
            losses.push(s.loss);
            Ok(())
        })
        .unwrap();
        (losses, t)
    };
    let (a, trained) = run();
    let (b, _) = run();
    assert_eq!(a, b, "same batches, same schedule, same losses");
    let mut sequential = Trainer::new(config(TrunkKind::Mmoe), SHAPE).unwrap();
    let s: Vec<f32> = batches
        .iter()
        .map(|b| sequential.train_step(b).unwrap().loss)
        .collect();
    assert_eq!(a[0], s[0], "the first step reads no update either way");
    assert_ne!(a, s, "shared rows are read one update stale");
    // And it still learns.
    let mut trained = trained;
    let held_out = batch(&mut SplitMix64::new(99), 512);
    let fresh = Trainer::new(config(TrunkKind::Mmoe), SHAPE)
        .unwrap()
        .eval_loss(&held_out)
        .unwrap();
    let after = trained.eval_loss(&held_out).unwrap();
    assert!(after < 0.6 * fresh, "held-out loss {fresh} → {after}");
    // A failing callback stops the run with its error.
    let mut t = Trainer::new(config(TrunkKind::Mmoe), SHAPE).unwrap();
    let err = t
        .train_pipelined(batches.iter().cloned(), |_| {
            Err(liverank_model::ModelError::Shape("stop".into()))
        })
        .unwrap_err();
    assert!(err.to_string().contains("stop"), "{err}");
}

#[test]
fn parallel_scoring_returns_the_rows_in_order() {
    let mut trainer = Trainer::new(config(TrunkKind::Cgc), SHAPE).unwrap();
    let mut rng = SplitMix64::new(21);
    for _ in 0..20 {
        trainer.train_step(&batch(&mut rng, 32)).unwrap();
    }
    let scorer = trainer.scorer().unwrap();
    let b = batch(&mut rng, 37);
    let whole = scorer.predict(&b).unwrap();
    for threads in [1, 2, 3, 8, 64] {
        let split = scorer.predict_parallel(&b, threads).unwrap();
        assert_eq!(split.len(), whole.len());
        for (s, w) in split.iter().zip(&whole) {
            assert!((s - w).abs() < 1e-6, "{threads} threads: {s} vs {w}");
        }
    }
    // Row slices keep every column aligned.
    let tail = b.rows(30, 37);
    tail.check().unwrap();
    assert_eq!(tail.fields, b.fields[30 * SHAPE.fields..]);
    assert_eq!(scorer.predict(&tail).unwrap(), whole[30 * 2..]);
}

/// A serving request: every row carries the same user field and the same sequence, and
/// only the candidate differs. Scored whole (shared fields and sequence computed once, the
/// sequence gathered for row 0 only) it gives what each row scored alone gives; a request
/// whose sequences differ in one row takes the per-row path and agrees too.
#[test]
fn a_request_sharing_its_sequence_scores_like_its_rows_alone() {
    let mut trainer = Trainer::new(config(TrunkKind::Mmoe), SHAPE).unwrap();
    let mut rng = SplitMix64::new(33);
    for _ in 0..30 {
        trainer.train_step(&batch(&mut rng, 32)).unwrap();
    }
    let scorer = trainer.scorer().unwrap();
    let template = batch(&mut rng, 1);
    let mut request = FeatureBatch::with_shape(SHAPE.fields, SHAPE.seq_len, 1, SHAPE.dense, 2);
    for c in 0..12u64 {
        request.fields.extend([
            key(KeyKind::Live, c),
            template.fields[1],
            template.fields[2],
        ]);
        request.seq_keys.extend_from_slice(&template.seq_keys);
        request.seq_mask.extend_from_slice(&template.seq_mask);
        request.dense.extend_from_slice(&template.dense);
        request.labels.extend([0.0, 0.0]);
        request.mask.extend([1.0, 1.0]);
        request.slow.push(false);
        request.users.push(0);
        request.batch += 1;
    }
    let mut differing = request.clone();
    differing.seq_keys[5 * SHAPE.seq_len + 1] = key(KeyKind::Live, 3);
    for req in [&request, &differing] {
        let whole = scorer.predict(req).unwrap();
        let alone: Vec<f32> = (0..req.batch)
            .flat_map(|r| scorer.predict(&req.rows(r, r + 1)).unwrap())
            .collect();
        assert_eq!(whole.len(), alone.len());
        for (w, a) in whole.iter().zip(&alone) {
            assert!((w - a).abs() < 1e-5, "{whole:?} vs {alone:?}");
        }
    }
    // The candidate matters: the rows do not all score alike.
    let whole = scorer.predict(&request).unwrap();
    assert!(whole.chunks(2).any(|r| (r[0] - whole[0]).abs() > 1e-4));
}

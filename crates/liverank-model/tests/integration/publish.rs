//! Publishing: the delta stream applied to a reader's copy gives exactly the trainer's
//! table (rows and tombstones, also after eviction and re-admission), the reader's scorer
//! equals the trainer's, corrupted / truncated / skipped / mislabelled files are refused
//! with the previous model kept, and files appear atomically.
#![allow(clippy::unwrap_used, reason = "tests")]

use liverank_model::features::{FeatureBatch, KeyKind, key};
use liverank_model::publish::{PublishKind, file_name};
use liverank_model::rng::SplitMix64;
use liverank_model::{
    InputShape, ModelPublisher, ModelReader, PublishConfig, PublisherState, RankerConfig,
    SeqGroups, SparseConfig, Trainer, TrunkConfig, TrunkKind,
};
use liverank_types::Task;
use proptest::prelude::*;
use std::path::Path;

const SHAPE: InputShape = InputShape {
    fields: 3,
    seq_len: 4,
    seq_subkeys: 1,
    dense: 2,
    groups: SeqGroups::single(4),
};

fn config(ttl_steps: u64) -> RankerConfig {
    RankerConfig {
        tasks: vec![Task::Click, Task::Like],
        embedding_dim: 4,
        hidden: vec![8],
        trunk: TrunkConfig {
            kind: TrunkKind::Mmoe,
            shared_experts: 2,
            specific_experts: 0,
            levels: 1,
            expert_hidden: 4,
        },
        tower_hidden: vec![],
        learning_rate: 0.01,
        sparse: SparseConfig {
            ttl_steps,
            keep_floor: 0,
            min_count: 1,
            ..SparseConfig::default()
        },
        ..RankerConfig::full_cross()
    }
}

/// A batch over `ids` distinct users (small id spaces re-admit evicted ids).
fn batch(rng: &mut SplitMix64, rows: usize, ids: usize) -> FeatureBatch {
    let mut b = FeatureBatch::with_shape(SHAPE.fields, SHAPE.seq_len, 1, SHAPE.dense, 2);
    for _ in 0..rows {
        b.fields.extend([
            key(KeyKind::Live, rng.below(ids) as u64),
            key(KeyKind::User, rng.below(ids) as u64),
            key(KeyKind::Hour, rng.below(24) as u64),
        ]);
        for _ in 0..4 {
            b.seq_keys.push(key(KeyKind::Live, rng.below(ids) as u64));
            b.seq_mask.push(rng.below(2) == 0);
        }
        b.dense.extend([rng.uniform(1.0), rng.uniform(1.0)]);
        b.labels
            .extend([f32::from(u8::from(rng.below(2) == 0)), 0.0]);
        b.mask.extend([1.0, 1.0]);
        b.slow.push(false);
        b.users.push(0);
        b.batch += 1;
    }
    b
}

fn rows_of(store: &liverank_model::embedding::EmbeddingStore) -> Vec<(u64, Vec<f32>)> {
    let mut keys: Vec<u64> = store.keys().collect();
    keys.sort_unstable();
    keys.into_iter()
        .map(|k| (k, store.row(k).unwrap().to_vec()))
        .collect()
}

fn publish_config() -> PublishConfig {
    PublishConfig {
        sparse_ms: 1_000,
        dense_ms: 3_000,
        snapshot_ms: 1_000_000,
        fsync: false,
    }
}

/// Runs `steps` training steps, one publish tick per step (1 s of event time each).
fn run(dir: &Path, steps: usize, ttl: u64, ids: usize, seed: u64) -> (Trainer, ModelPublisher) {
    let mut trainer = Trainer::new(config(ttl), SHAPE).unwrap();
    let mut publisher =
        ModelPublisher::new(dir, publish_config(), PublisherState::default()).unwrap();
    let mut rng = SplitMix64::new(seed);
    publisher.tick(&mut trainer, 0, 0).unwrap();
    for s in 0..steps {
        trainer.train_step(&batch(&mut rng, 16, ids)).unwrap();
        let now = (s as i64 + 1) * 1_000;
        publisher.tick(&mut trainer, now, now).unwrap();
    }
    (trainer, publisher)
}

#[test]
fn reader_follows_the_trainer_exactly_with_evictions() {
    let dir = tempfile::tempdir().unwrap();
    // TTL 3 steps over 60 ids: rows are evicted and re-admitted all the time.
    let mut trainer = Trainer::new(config(3), SHAPE).unwrap();
    let mut publisher =
        ModelPublisher::new(dir.path(), publish_config(), PublisherState::default()).unwrap();
    let mut rng = SplitMix64::new(5);
    publisher.tick(&mut trainer, 0, 0).unwrap();
    let mut reader = ModelReader::open(dir.path()).unwrap();
    let mut evicted_and_back = 0;
    let mut seen_gone = std::collections::HashSet::new();
    for s in 0..40 {
        let before: std::collections::HashSet<u64> = trainer.store().keys().collect();
        trainer.train_step(&batch(&mut rng, 8, 60)).unwrap();
        let after: std::collections::HashSet<u64> = trainer.store().keys().collect();
        for k in before.difference(&after) {
            seen_gone.insert(*k);
        }
        evicted_and_back += after.iter().filter(|k| seen_gone.contains(k)).count();
        let now = (s + 1) * 1_000;
        publisher.tick(&mut trainer, now, now).unwrap();
        let outcome = reader.poll().unwrap();
        assert!(!outcome.refused);
        assert_eq!(reader.version(), publisher.version());
        assert_eq!(
            rows_of(reader.store()),
            rows_of(trainer.store()),
            "step {s}"
        );
        assert_eq!(reader.event_ts(), now);
    }
    assert!(
        !seen_gone.is_empty() && evicted_and_back > 0,
        "no eviction + re-admission"
    );
    // Dense weights too (a dense file every 3 s, and the final snapshot).
    publisher.finish(&mut trainer, 41_000, 41_000).unwrap();
    reader.poll().unwrap();
    assert_eq!(
        reader.dense_safetensors().unwrap(),
        trainer.dense_safetensors().unwrap()
    );
    // The reader's scorer scores like the trainer's own.
    let probe = batch(&mut SplitMix64::new(77), 32, 60);
    let ours = reader.scorer().predict(&probe).unwrap();
    let theirs = trainer.scorer().unwrap().predict(&probe).unwrap();
    assert_eq!(ours, theirs);
    assert_eq!(reader.counters().refused_corrupt, 0);
    assert!(reader.counters().deltas > 30 && reader.counters().dense >= 10);
}

#[test]
fn same_run_writes_byte_identical_files() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(a.path(), 12, 4, 40, 1);
    run(b.path(), 12, 4, 40, 1);
    let list = |d: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name(), std::fs::read(e.path()).unwrap())
            })
            .collect();
        v.sort();
        v
    };
    let (la, lb) = (list(a.path()), list(b.path()));
    assert!(la.len() > 12);
    assert_eq!(la, lb);
}

/// Copies the first `n` version files of `from` into a fresh directory.
fn copy_versions(from: &Path, to: &Path, n: u64) {
    for v in 1..=n {
        for kind in [
            PublishKind::Delta,
            PublishKind::Dense,
            PublishKind::Snapshot,
        ] {
            let name = file_name(v, kind);
            if from.join(&name).exists() {
                std::fs::copy(from.join(&name), to.join(&name)).unwrap();
            }
        }
    }
}

fn find(dir: &Path, v: u64) -> std::path::PathBuf {
    [
        PublishKind::Delta,
        PublishKind::Dense,
        PublishKind::Snapshot,
    ]
    .into_iter()
    .map(|k| dir.join(file_name(v, k)))
    .find(|p| p.exists())
    .unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    FlipByte(usize),
    Truncate(usize),
    Skip,
    WrongVersion,
}

fn damaged_reader_keeps_the_previous_model(damage: Damage) {
    let src = tempfile::tempdir().unwrap();
    run(src.path(), 10, 0, 30, 3);
    let dst = tempfile::tempdir().unwrap();
    // Versions 1..=5 fine; version 6 damaged (or missing), 7.. present.
    copy_versions(src.path(), dst.path(), 5);
    let mut reader = ModelReader::open(dst.path()).unwrap();
    assert_eq!(reader.version(), 5);
    let before = rows_of(reader.store());
    let scorer_before = reader.scorer();
    let six = find(src.path(), 6);
    let name = six.file_name().unwrap().to_owned();
    let mut bytes = std::fs::read(&six).unwrap();
    match damage {
        Damage::FlipByte(at) => {
            let at = at % bytes.len();
            bytes[at] ^= 0x40;
        }
        Damage::Truncate(keep) => bytes.truncate(keep % bytes.len()),
        Damage::Skip => bytes.clear(),
        Damage::WrongVersion => {}
    }
    match damage {
        Damage::Skip => {}
        // Version 7's file under version 6's name: its header names version 7.
        Damage::WrongVersion => {
            let seven = find(src.path(), 7);
            std::fs::copy(&seven, dst.path().join(&name)).unwrap();
        }
        _ => std::fs::write(dst.path().join(&name), &bytes).unwrap(),
    }
    for v in 7..=9 {
        let p = find(src.path(), v);
        std::fs::copy(&p, dst.path().join(p.file_name().unwrap())).unwrap();
    }
    let outcome = reader.poll().unwrap();
    assert!(outcome.refused, "{damage:?}");
    assert_eq!(reader.version(), 5, "{damage:?}");
    assert_eq!(rows_of(reader.store()), before);
    assert!(std::sync::Arc::ptr_eq(&scorer_before, &reader.scorer()));
    let c = reader.counters().clone();
    assert_eq!(c.refused_corrupt + c.refused_gap, 1, "{damage:?}");
    // Polling again does not count the same problem twice.
    reader.poll().unwrap();
    assert_eq!(
        reader.counters().refused_corrupt + reader.counters().refused_gap,
        1
    );
    // Repaired, the reader catches up.
    std::fs::copy(&six, dst.path().join(&name)).unwrap();
    let outcome = reader.poll().unwrap();
    assert!(!outcome.refused);
    assert_eq!(reader.version(), 9);
}

#[test]
fn skipped_and_mislabelled_versions_are_refused() {
    damaged_reader_keeps_the_previous_model(Damage::Skip);
    damaged_reader_keeps_the_previous_model(Damage::WrongVersion);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]
    #[test]
    fn corrupted_or_truncated_versions_are_refused(at in 0usize..10_000, flip in any::<bool>()) {
        let damage = if flip { Damage::FlipByte(at) } else { Damage::Truncate(at) };
        damaged_reader_keeps_the_previous_model(damage);
    }
}

#[test]
fn a_newer_snapshot_resyncs_past_a_gap_and_compaction_bounds_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut trainer = Trainer::new(config(0), SHAPE).unwrap();
    let cfg = PublishConfig {
        sparse_ms: 1_000,
        dense_ms: 2_000,
        snapshot_ms: 10_000,
        fsync: false,
    };
    let mut publisher = ModelPublisher::new(dir.path(), cfg, PublisherState::default()).unwrap();
    let mut rng = SplitMix64::new(9);
    publisher.tick(&mut trainer, 0, 0).unwrap();
    let mut reader = ModelReader::open(dir.path()).unwrap();
    for s in 0..60 {
        trainer.train_step(&batch(&mut rng, 8, 30)).unwrap();
        publisher.tick(&mut trainer, (s + 1) * 1_000, 0).unwrap();
    }
    // The reader fell behind by six snapshot intervals: its next version was compacted.
    let outcome = reader.poll().unwrap();
    assert!(!outcome.refused);
    assert_eq!(reader.version(), publisher.version());
    assert_eq!(reader.counters().resyncs, 1);
    assert_eq!(rows_of(reader.store()), rows_of(trainer.store()));
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    // About two snapshot intervals: 10 deltas + 4 dense per interval (+ snapshots).
    assert!(files <= 2 * 16 + 2, "{files} files");
}

/// A run killed after a checkpoint resumes by reloading the model as of the checkpoint's
/// version; compaction by a later part of the killed run must not have taken it away.
#[test]
fn compaction_keeps_the_model_as_of_the_last_sync() {
    let cfg = PublishConfig {
        sparse_ms: 1_000,
        dense_ms: 2_000,
        snapshot_ms: 10_000,
        fsync: true,
    };
    let survives = |sync: bool| -> bool {
        let dir = tempfile::tempdir().unwrap();
        let mut trainer = Trainer::new(config(0), SHAPE).unwrap();
        let mut publisher =
            ModelPublisher::new(dir.path(), cfg.clone(), PublisherState::default()).unwrap();
        let mut rng = SplitMix64::new(4);
        publisher.tick(&mut trainer, 0, 0).unwrap();
        let mut checkpointed = 0;
        for s in 0..35 {
            trainer.train_step(&batch(&mut rng, 8, 30)).unwrap();
            publisher.tick(&mut trainer, (s + 1) * 1_000, 0).unwrap();
            // The "checkpoint" at 15 s: two snapshots (20 s, 30 s) follow it.
            if s + 1 == 15 {
                if sync {
                    publisher.sync().unwrap();
                }
                checkpointed = publisher.version();
            }
        }
        assert!(publisher.state().snapshots[0] > checkpointed);
        ModelReader::open_until(dir.path(), checkpointed).is_ok_and(|r| r.version() == checkpointed)
    };
    assert!(survives(true), "the synced base was compacted away");
    // Without the pin, the same schedule deletes it (so the test can fail).
    assert!(!survives(false));
}

#[test]
fn files_appear_atomically() {
    // A reader polling in a tight loop while the publisher writes never sees a partial
    // file: every poll either applies whole versions or finds nothing new.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let (mut trainer, mut publisher) = {
        let mut t = Trainer::new(config(0), SHAPE).unwrap();
        let cfg = PublishConfig {
            fsync: true,
            ..publish_config()
        };
        let mut p = ModelPublisher::new(&path, cfg, PublisherState::default()).unwrap();
        p.tick(&mut t, 0, 0).unwrap();
        (t, p)
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reader = ModelReader::open(&path).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                reader.poll().unwrap();
            }
            reader.poll().unwrap();
            reader
        })
    };
    let mut rng = SplitMix64::new(4);
    for s in 0..30 {
        trainer.train_step(&batch(&mut rng, 64, 500)).unwrap();
        publisher.tick(&mut trainer, (s + 1) * 1_000, 0).unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reader = reader.join().unwrap();
    assert_eq!(reader.counters().refused_corrupt, 0);
    assert_eq!(reader.counters().refused_gap, 0);
    assert_eq!(reader.version(), publisher.version());
    // No temporary file is left behind, and only version files are there.
    for e in std::fs::read_dir(&path).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(name.starts_with('v') && !name.ends_with(".tmp"), "{name}");
    }
}

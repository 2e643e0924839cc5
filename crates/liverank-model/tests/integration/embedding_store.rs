//! The embedding store against independent references: PyTorch's sparse Adagrad and Adam
//! (scripts pasted above the tests), a naive per-id summation, and its own snapshot format.
#![allow(clippy::unwrap_used, reason = "tests")]
#![allow(
    clippy::excessive_precision,
    reason = "reference values as the oracle printed them"
)]

use liverank_model::embedding::{
    Delta, EmbeddingConfig, EmbeddingStore, Lookup, RowOptimizer, SlotRun,
};
use proptest::prelude::*;

const W0: [[f32; 3]; 3] = [[0.1, -0.2, 0.3], [0.05, 0.0, -0.1], [-0.3, 0.2, 0.1]];
const SLOTS: [u64; 4] = [0, 2, 0, 1];
const GRADS: [[f32; 12]; 3] = [
    [
        0.5, -1.0, 0.25, 0.1, 0.2, -0.3, 0.25, 0.5, 0.5, -0.4, 0.0, 0.8,
    ],
    [
        0.3, 0.3, -0.6, -0.2, 0.1, 0.0, 0.1, -0.1, 0.2, 0.0, 0.5, -0.5,
    ],
    [
        -0.7, 0.2, 0.1, 0.4, -0.4, 0.4, 0.2, 0.2, 0.2, 0.3, -0.3, 0.1,
    ],
];

fn config(optimizer: RowOptimizer) -> EmbeddingConfig {
    EmbeddingConfig {
        dim: 3,
        min_count: 1,
        ttl: 0,
        keep_floor: 0,
        init_scale: 0.05,
        seed: 1,
        optimizer,
    }
}

/// A store whose rows 0..3 hold `W0`.
fn seeded(optimizer: RowOptimizer) -> EmbeddingStore {
    let mut store = EmbeddingStore::new(config(optimizer));
    let rows = W0
        .iter()
        .enumerate()
        .map(|(k, w)| (k as u64, w.to_vec()))
        .collect();
    store
        .apply_delta(&Delta {
            rows,
            tombstones: Vec::new(),
        })
        .expect("delta rows have the store's width");
    store
}

fn run_three_steps(store: &mut EmbeddingStore) -> Vec<f32> {
    let mut out = Vec::new();
    for (step, g) in GRADS.iter().enumerate() {
        let lookup = store.lookup(&SLOTS, step as u64, true, &mut out);
        store.apply_gradients(&lookup, g).unwrap();
    }
    (0..3)
        .flat_map(|k| store.row(k).unwrap().to_vec())
        .collect()
}

fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol,
            "value {i}: {g} vs {w}\n got {got:?}\nwant {want:?}"
        );
    }
}

// import torch
// w0 = torch.tensor([[0.1, -0.2, 0.3], [0.05, 0.0, -0.1], [-0.3, 0.2, 0.1]])
// emb = torch.nn.Embedding(3, 3, sparse=True); emb.weight.data.copy_(w0)
// opt = torch.optim.Adagrad(emb.parameters(), lr=0.1, initial_accumulator_value=0.1, eps=1e-10)
// ids = torch.tensor([0, 2, 0, 1])            # id 0 in two slots
// for g in GRADS (each reshaped [4, 3]):
//     opt.zero_grad(); (emb(ids) * g).sum().backward(); opt.step()
// print(emb.weight.flatten())
#[test]
fn adagrad_matches_pytorch_sparse_embedding() {
    let mut store = seeded(RowOptimizer::Adagrad {
        lr: 0.1,
        initial_accumulator: 0.1,
        eps: 1e-10,
    });
    let got = run_three_steps(&mut store);
    let torch = [
        0.012_030_76,
        -0.201_446_21,
        0.220_555_74,
        0.077_737_19,
        -0.039_288_72,
        -0.152_746_23,
        -0.350_353_48,
        0.192_569_97,
        0.101_212_37,
    ];
    assert_close(&got, &torch, 1e-6);
}

// p = torch.nn.Parameter(w0.clone()); opt = torch.optim.Adam([p], lr=0.01, betas=(0.9, 0.999), eps=1e-8)
// for g in GRADS: opt.zero_grad(); (p[ids] * g).sum().backward(); opt.step()
// (every row is touched every step, so dense Adam equals per-row lazy Adam here)
#[test]
fn adam_matches_pytorch_when_every_row_is_touched() {
    let mut store = seeded(RowOptimizer::Adam {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    });
    let got = run_three_steps(&mut store);
    let torch = [
        0.077_554_81,
        -0.188_211_44,
        0.283_708_36,
        0.067_007_41,
        -0.009_085_31,
        -0.113_744_3,
        -0.310_535_52,
        0.182_741_78,
        0.114_693_98,
    ];
    assert_close(&got, &torch, 2e-6);
}

#[test]
fn ftrl_starts_from_the_initial_weights_and_l1_zeroes_weak_coordinates() {
    // With a zero gradient FTRL's closed form must give back the weights it started from.
    let mut store = seeded(RowOptimizer::Ftrl {
        alpha: 0.1,
        beta: 1.0,
        l1: 0.0,
        l2: 0.0,
    });
    let mut out = Vec::new();
    let lookup = store.lookup(&SLOTS, 0, true, &mut out);
    store.apply_gradients(&lookup, &[0.0; 12]).unwrap();
    let flat: Vec<f32> = W0.iter().flatten().copied().collect();
    assert_close(
        &(0..3)
            .flat_map(|k| store.row(k).unwrap().to_vec())
            .collect::<Vec<_>>(),
        &flat,
        1e-6,
    );
    // One step by hand (row 1, coordinate 0: w=0.05, g=-0.4, α=0.1, β=1, no L1/L2):
    // z0 = −w·β/α = −0.5; n=0.16; σ=(0.4−0)/0.1=4; z=−0.5−0.4−4·0.05=−1.1; w=1.1/((1+0.4)/0.1)=0.0785714.
    let lookup = store.lookup(&[1], 1, true, &mut out);
    store.apply_gradients(&lookup, &[-0.4, 0.0, 0.0]).unwrap();
    assert!((store.row(1).unwrap()[0] - 0.078_571_4).abs() < 1e-6);
    // From zero weights, L1 keeps a coordinate at exactly zero while |z| ≤ l1; without L1
    // the same gradient moves it.
    for (l1, moves) in [(10.0, false), (0.0, true)] {
        let ftrl = RowOptimizer::Ftrl {
            alpha: 0.1,
            beta: 1.0,
            l1,
            l2: 0.0,
        };
        let mut store = EmbeddingStore::new(EmbeddingConfig {
            init_scale: 0.0,
            ..config(ftrl)
        });
        let lookup = store.lookup(&[5], 0, true, &mut out);
        store
            .apply_gradients(&lookup, &[0.01, -0.02, 0.03])
            .unwrap();
        assert_eq!(
            store.row(5).unwrap().iter().any(|&w| w != 0.0),
            moves,
            "l1 = {l1}"
        );
    }
}

#[test]
fn admission_waits_for_min_count_and_unknown_keys_read_zero() {
    let mut store = EmbeddingStore::new(EmbeddingConfig {
        min_count: 3,
        ..config(RowOptimizer::Adagrad {
            lr: 0.1,
            initial_accumulator: 0.0,
            eps: 1e-10,
        })
    });
    let mut out = Vec::new();
    store.lookup(&[42], 0, true, &mut out);
    assert_eq!(out, vec![0.0; 3]);
    store.lookup(&[42], 1, false, &mut out); // serving lookups do not count
    store.lookup(&[42], 2, true, &mut out);
    assert!(store.is_empty());
    let lookup = store.lookup(&[42, 42], 3, true, &mut out);
    assert_eq!(store.len(), 1, "third training sighting admits");
    assert!(out.iter().any(|&x| x != 0.0));
    assert_eq!(lookup.distinct_rows(), 1);
    let mut served = Vec::new();
    store.gather(&[42, 7], &mut served);
    assert_eq!(&served[..3], store.row(42).unwrap());
    assert_eq!(&served[3..], &[0.0; 3]);
}

#[test]
fn ttl_eviction_keeps_the_floor_leaves_tombstones_and_readmission_resets_state() {
    let adagrad = RowOptimizer::Adagrad {
        lr: 0.1,
        initial_accumulator: 0.0,
        eps: 1e-10,
    };
    let mut store = EmbeddingStore::new(EmbeddingConfig {
        ttl: 10,
        keep_floor: 1,
        ..config(adagrad)
    });
    let mut out = Vec::new();
    let l = store.lookup(&[1, 2, 3], 0, true, &mut out);
    store.apply_gradients(&l, &[1.0; 9]).unwrap();
    store.lookup(&[3], 5, true, &mut out);
    let fresh1 = store.row(1).unwrap().to_vec();
    store.take_delta();
    assert_eq!(store.evict_expired(9), 0, "nothing is 10 steps old yet");
    assert_eq!(
        store.evict_expired(12),
        2,
        "keys 1 and 2 expire, 3 was touched at 5"
    );
    assert_eq!(store.len(), 1);
    assert_eq!(
        store.evict_expired(100),
        0,
        "the keep floor holds the last row"
    );
    let delta = store.take_delta();
    assert_eq!(delta.tombstones, vec![1, 2]);
    // Re-admission: same deterministic init, fresh accumulator, so the first update has the
    // full Adagrad step lr·g/|g| = 0.1 again.
    let l = store.lookup(&[1], 20, true, &mut out);
    let init: Vec<f32> = out.clone();
    store.apply_gradients(&l, &[1.0, 1.0, 1.0]).unwrap();
    for (w, w0) in store.row(1).unwrap().iter().zip(&init) {
        assert!((w - (w0 - 0.1)).abs() < 1e-6);
    }
    assert!(
        (fresh1[0] - (init[0] - 0.1)).abs() < 1e-6,
        "first life got the same first step"
    );
}

#[test]
fn snapshot_round_trip_is_bit_exact_and_damage_is_an_error() {
    let mut store = seeded(RowOptimizer::Adam {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    });
    run_three_steps(&mut store);
    let mut out = Vec::new();
    store.lookup(&[99], 3, true, &mut out);
    let bytes = store.to_bytes();
    let back = EmbeddingStore::from_bytes(&bytes).unwrap();
    assert_eq!(back.to_bytes(), bytes);
    for k in [0, 1, 2, 99] {
        assert_eq!(back.row(k), store.row(k));
    }
    // Continuing both gives identical rows (optimiser state came back too).
    let (mut a, mut b) = (store.clone(), back);
    let ga = run_three_steps(&mut a);
    let gb = run_three_steps(&mut b);
    assert_eq!(ga, gb);
    let mut damaged = bytes.clone();
    damaged[40] ^= 1;
    let err = EmbeddingStore::from_bytes(&damaged)
        .unwrap_err()
        .to_string();
    assert!(err.contains("checksum"), "{err}");
    assert!(EmbeddingStore::from_bytes(&bytes[..bytes.len() / 2]).is_err());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emb.bin");
    store.write_snapshot(&path).unwrap();
    assert_eq!(
        EmbeddingStore::read_snapshot(&path).unwrap().to_bytes(),
        bytes
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Summing per id across slots equals applying each id's summed gradient by hand.
    #[test]
    fn per_id_summation_matches_naive_reference(
        slots in proptest::collection::vec(0u64..6, 1..40),
        seed in 0u64..1000,
    ) {
        let adagrad = RowOptimizer::Adagrad { lr: 0.05, initial_accumulator: 0.1, eps: 1e-10 };
        let mut store = EmbeddingStore::new(EmbeddingConfig { dim: 2, seed, ..config(adagrad) });
        let mut out = Vec::new();
        let lookup = store.lookup(&slots, 0, true, &mut out);
        let grads: Vec<f32> = (0..slots.len() * 2).map(|i| ((i * 7 + seed as usize) % 11) as f32 / 10.0 - 0.5).collect();
        let before: Vec<(u64, Vec<f32>)> = (0..6).filter_map(|k| store.row(k).map(|r| (k, r.to_vec()))).collect();
        store.apply_gradients(&lookup, &grads).unwrap();
        for (k, w0) in before {
            let mut g = [0.0f32; 2];
            for (s, _) in slots.iter().enumerate().filter(|(_, id)| **id == k) {
                g[0] += grads[s * 2];
                g[1] += grads[s * 2 + 1];
            }
            for d in 0..2 {
                let acc = 0.1 + g[d] * g[d];
                let want = w0[d] - 0.05 * g[d] / (acc.sqrt() + 1e-10);
                prop_assert!((store.row(k).unwrap()[d] - want).abs() < 1e-6);
            }
        }
    }

    /// The serving gather that copies repeated rows equals the plain gather, unknown keys
    /// (zeros) and any stride included.
    #[test]
    fn gather_repeating_equals_gather(
        known in proptest::collection::vec(0u64..6, 0..10),
        keys in proptest::collection::vec(0u64..8, 0..60),
        stride in 0usize..8,
    ) {
        let adagrad = RowOptimizer::Adagrad { lr: 0.05, initial_accumulator: 0.1, eps: 1e-10 };
        let mut store = EmbeddingStore::new(EmbeddingConfig { dim: 3, ..config(adagrad) });
        store.lookup(&known, 0, true, &mut Vec::new());
        let (mut plain, mut repeating) = (Vec::new(), Vec::new());
        store.gather(&keys, &mut plain);
        store.gather_repeating(&keys, stride, &mut repeating);
        prop_assert_eq!(plain, repeating);
    }

    /// The summed gather equals the plain gather followed by a naive sum over each
    /// position's sub-keys (in order, from zero; masked positions zero), bit for bit, with
    /// and without the copy from the row above.
    #[test]
    fn gather_summed_equals_gather_then_sum(
        known in proptest::collection::vec(0u64..6, 0..10),
        keys in proptest::collection::vec(0u64..8, 0..60),
        mask_bits in proptest::collection::vec(any::<bool>(), 1..12),
        group in 1usize..4,
        stride in 0usize..5,
    ) {
        let adagrad = RowOptimizer::Adagrad { lr: 0.05, initial_accumulator: 0.1, eps: 1e-10 };
        let mut store = EmbeddingStore::new(EmbeddingConfig { dim: 3, ..config(adagrad) });
        store.lookup(&known, 0, true, &mut Vec::new());
        let positions = keys.len() / group;
        let keys = &keys[..positions * group];
        let keep: Vec<bool> = (0..positions).map(|p| mask_bits[p % mask_bits.len()]).collect();
        let mut plain = Vec::new();
        store.gather(keys, &mut plain);
        let mut want = vec![0.0f32; positions * 3];
        for p in (0..positions).filter(|&p| keep[p]) {
            for s in 0..group {
                for c in 0..3 {
                    want[p * 3 + c] += plain[(p * group + s) * 3 + c];
                }
            }
        }
        let mut summed = Vec::new();
        store.gather_summed(keys, group, &keep, stride, &mut summed);
        prop_assert_eq!(want, summed);
    }

    /// A lookup in two runs (fields, then padded sequence positions of `per` sub-keys)
    /// gathers and trains exactly like one plain lookup of the fields and the valid sub-keys
    /// only, as the trainer used to: the same rows out (zeros on padding), the same
    /// admissions (padding is never counted), bit-identical rows after the update.
    #[test]
    fn run_lookup_with_padding_equals_the_lookup_of_valid_keys(
        fields in proptest::collection::vec(0u64..12, 0..20),
        seq in proptest::collection::vec(0u64..12, 0..40),
        mask_bits in proptest::collection::vec(any::<bool>(), 20),
        per in 1usize..3,
        min_count in 1u32..3,
        steps in 1usize..4,
    ) {
        let positions = seq.len() / per;
        let seq = &seq[..positions * per];
        let mask: Vec<bool> = (0..positions).map(|p| mask_bits[p % mask_bits.len()]).collect();
        let adagrad = RowOptimizer::Adagrad { lr: 0.05, initial_accumulator: 0.1, eps: 1e-10 };
        let cfg = EmbeddingConfig { dim: 3, min_count, ..config(adagrad) };
        let (mut runs_store, mut plain_store) = (EmbeddingStore::new(cfg.clone()), EmbeddingStore::new(cfg));
        let valid: Vec<usize> = (0..seq.len()).filter(|&i| mask[i / per]).collect();
        for step in 0..steps {
            let grad = |slot: usize, c: usize| ((slot * 5 + c * 3 + step) % 7) as f32 / 10.0 - 0.3;
            // Runs: every position has a slot.
            let (mut f_out, mut s_out, mut lookup) = (Vec::new(), Vec::new(), Lookup::default());
            runs_store.lookup_runs_into(
                &mut [SlotRun::new(&fields, &mut f_out), SlotRun::padded(seq, &mask, per, &mut s_out)],
                step as u64, true, &mut lookup,
            );
            prop_assert_eq!(lookup.slots(), fields.len() + seq.len());
            // Plain: fields, then the valid sub-keys only.
            let mut keys = fields.clone();
            keys.extend(valid.iter().map(|&i| seq[i]));
            let mut plain_out = Vec::new();
            let plain = plain_store.lookup(&keys, step as u64, true, &mut plain_out);
            prop_assert_eq!(&f_out[..], &plain_out[..fields.len() * 3]);
            for i in 0..seq.len() {
                let got = &s_out[i * 3..i * 3 + 3];
                match valid.iter().position(|&v| v == i) {
                    Some(j) => {
                        let at = (fields.len() + j) * 3;
                        prop_assert_eq!(got, &plain_out[at..at + 3]);
                    }
                    None => {
                        prop_assert_eq!(got, &[0.0f32; 3][..]);
                        prop_assert!(lookup.slot_row(fields.len() + i).is_none());
                    }
                }
            }
            // The same gradients: per slot in the runs, per valid slot in the plain lookup.
            let f_grads: Vec<f32> = (0..fields.len() * 3).map(|x| grad(x / 3, x % 3)).collect();
            let s_grads: Vec<f32> = (0..seq.len() * 3).map(|x| grad(fields.len() + x / 3, x % 3)).collect();
            let mut plain_grads = f_grads.clone();
            for &i in &valid {
                plain_grads.extend_from_slice(&s_grads[i * 3..i * 3 + 3]);
            }
            runs_store.apply_gradient_runs(&lookup, &[&f_grads, &s_grads]).unwrap();
            plain_store.apply_gradients(&plain, &plain_grads).unwrap();
            prop_assert_eq!(runs_store.to_bytes(), plain_store.to_bytes());
        }
        let mut lookup = Lookup::default();
        let bad = runs_store.apply_gradient_runs(&lookup, &[&[0.0; 3]]);
        prop_assert!(bad.is_err(), "a gradient for a slot the lookup does not have");
        runs_store.lookup_runs_into(&mut [SlotRun::new(&fields, &mut Vec::new())], 9, false, &mut lookup);
        prop_assert_eq!(lookup.slots(), fields.len());
    }
}

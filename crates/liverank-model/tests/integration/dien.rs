//! DIEN as the ESU of a history group (issue 20, item 2): the GRU extractor equals
//! PyTorch's `nn.GRUCell`, the AUGRU a torch reference with the same weights; the whole
//! unit and its auxiliary loss equal a naive f64 implementation, with padding that cannot
//! matter; finite-difference gradients; and a trainer whose loss carries α · aux and whose
//! published model scores like the trainer.
#![allow(clippy::unwrap_used, reason = "tests")]

use crate::support::{check, device, project, sines, tensor, values, vec_of};
use burn::module::Param;
use burn::tensor::Tensor;
use liverank_model::dien::{DienUnit, GruCell, auxiliary_loss};
use liverank_model::features::{FeatureBatch, KeyKind, key};
use liverank_model::layers::{Dense, PAD_BIAS};
use liverank_model::rng::SplitMix64;
use liverank_model::{
    EsuUnit, InputShape, ModelPublisher, ModelReader, PublishConfig, PublisherState, RankerConfig,
    SeqGroup, SeqGroups, Trainer,
};
use liverank_types::Task;

fn bias(valid: &[bool], shape: [usize; 2]) -> Tensor<2> {
    let v: Vec<f32> = valid
        .iter()
        .map(|&m| if m { 0.0 } else { PAD_BIAS })
        .collect();
    tensor(&v, shape, false)
}

fn close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(*g) - w).abs() <= tol,
            "{what}[{i}]: {g} vs {w}\n{got:?}\n{want:?}"
        );
    }
}

// --- PyTorch, same weights ---
//
//     import math, torch
//     torch.set_default_dtype(torch.float64)
//     B, L, D, DQ = 2, 4, 3, 5
//     def vals(n, off, scale=0.5):
//         return torch.tensor([math.sin(i * 0.7 + off) * scale for i in range(n)])
//     def cell(off):
//         c = torch.nn.GRUCell(D, D)
//         with torch.no_grad():
//             c.weight_ih.copy_(vals(D * 3 * D, off).view(D, 3 * D).T)       # ours: [d_in, 3H]
//             c.bias_ih.copy_(vals(3 * D, off + 0.1, 0.2))
//             c.weight_hh.copy_(vals(D * 3 * D, off + 0.2).view(D, 3 * D).T)
//             c.bias_hh.copy_(vals(3 * D, off + 0.3, 0.2))
//         return c
//     ext, evo = cell(0.1), cell(0.9)
//     wq, bq = vals(DQ * D, 1.7).view(DQ, D), vals(D, 1.8, 0.2)
//     target = vals(B * DQ, 2.1, 1.0).view(B, DQ)
//     items = vals(B * L * D, 2.5, 1.0).view(B, L, D)
//     valid = torch.tensor([[1., 1., 1., 1.], [1., 1., 0., 0.]])  # newest first, trailing padding
//     with torch.no_grad():
//         h, states = torch.zeros(B, D), [None] * L
//         for t in reversed(range(L)):                       # oldest to newest
//             h = valid[:, t:t+1] * ext(items[:, t], h) + (1 - valid[:, t:t+1]) * h
//             states[t] = h
//         states = torch.stack(states, 1)                    # [B, L, D]
//         q = target @ wq + bq
//         scores = (states * q[:, None, :]).sum(2).masked_fill(valid == 0, -1e9)
//         a = torch.softmax(scores, 1) * valid
//         e = torch.zeros(B, D)
//         for t in reversed(range(L)):                       # AUGRU: u' = a_t (1 - z)
//             x = states[:, t]
//             gi = x @ evo.weight_ih.T + evo.bias_ih
//             gh = e @ evo.weight_hh.T + evo.bias_hh
//             r = torch.sigmoid(gi[:, :D] + gh[:, :D]); z = torch.sigmoid(gi[:, D:2*D] + gh[:, D:2*D])
//             n = torch.tanh(gi[:, 2*D:] + r * gh[:, 2*D:])
//             u = a[:, t:t+1] * (1 - z)
//             e = (1 - u) * e + u * n
//         print([round(v, 6) for v in states.reshape(-1).tolist()])
//         print([round(v, 6) for v in a.reshape(-1).tolist()])
//         print([round(v, 6) for v in e.reshape(-1).tolist()])

const TORCH_STATES: [f64; 24] = [
    0.127673, -0.069602, -0.140055, 0.4522, 0.214859, -0.103989, -0.282412, -0.429948, -0.422799,
    -0.089994, -0.094384, -0.045404, 0.453088, 0.227805, -0.105843, -0.205921, -0.384202,
    -0.434334, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
];
const TORCH_ATTENTION: [f64; 8] = [
    0.256176, 0.333652, 0.177892, 0.23228, 0.472659, 0.527341, 0.0, 0.0,
];
const TORCH_INTEREST: [f64; 6] = [
    -0.092714, -0.04384, 0.054959, -0.075411, -0.043137, 0.059635,
];

fn torch_cell(off: f32, d: usize) -> GruCell {
    GruCell {
        input: Dense::from_values(
            d,
            3 * d,
            sines(d * 3 * d, off, 0.5),
            sines(3 * d, off + 0.1, 0.2),
            &device(),
        ),
        hidden: Dense::from_values(
            d,
            3 * d,
            sines(d * 3 * d, off + 0.2, 0.5),
            sines(3 * d, off + 0.3, 0.2),
            &device(),
        ),
    }
}

#[test]
fn extractor_and_augru_equal_pytorch_with_the_same_weights() {
    let (b, l, d, dq) = (2, 4, 3, 5);
    let unit = DienUnit {
        query: Dense::from_values(
            dq,
            d,
            sines(dq * d, 1.7, 0.5),
            sines(d, 1.8, 0.2),
            &device(),
        ),
        extractor: torch_cell(0.1, d),
        evolution: torch_cell(0.9, d),
    };
    let valid = [true, true, true, true, true, true, false, false];
    let out = unit.run(
        tensor(&sines(b * dq, 2.1, 1.0), [b, dq], false),
        tensor(&sines(b * l * d, 2.5, 1.0), [b, l, d], false),
        bias(&valid, [b, l]),
    );
    close(&vec_of(out.states), &TORCH_STATES, 2e-6, "GRU states");
    close(&vec_of(out.attention), &TORCH_ATTENTION, 2e-6, "attention");
    close(&vec_of(out.interest), &TORCH_INTEREST, 2e-6, "AUGRU state");
}

// --- A naive f64 implementation ---

struct CellValues {
    wi: Vec<f64>,
    bi: Vec<f64>,
    wh: Vec<f64>,
    bh: Vec<f64>,
    d_in: usize,
    h: usize,
}

fn f64s<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    vec_of(t).into_iter().map(f64::from).collect()
}

fn cell_values(c: &GruCell) -> CellValues {
    let h = c.hidden.weight.dims()[0];
    CellValues {
        wi: f64s(c.input.weight.val()),
        bi: f64s(c.input.bias.val()),
        wh: f64s(c.hidden.weight.val()),
        bh: f64s(c.hidden.bias.val()),
        d_in: c.input.weight.dims()[0],
        h,
    }
}

/// `x W + b` with row-major `W [n_in, n_out]`.
fn affine(x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let out = b.len();
    (0..out)
        .map(|j| {
            b[j] + x
                .iter()
                .enumerate()
                .map(|(i, xi)| xi * w[i * out + j])
                .sum::<f64>()
        })
        .collect()
}

fn sigma(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// One textbook step: GRU `(1 − z) n + z h` scaled as AUGRU, `u = s (1 − z)`,
/// `(1 − u) h + u n`.
fn step(c: &CellValues, h: &[f64], x: &[f64], s: f64) -> Vec<f64> {
    assert_eq!(x.len(), c.d_in);
    let (gi, gh) = (affine(x, &c.wi, &c.bi), affine(h, &c.wh, &c.bh));
    let n_h = c.h;
    (0..n_h)
        .map(|j| {
            let r = sigma(gi[j] + gh[j]);
            let z = sigma(gi[n_h + j] + gh[n_h + j]);
            let n = (gi[2 * n_h + j] + r * gh[2 * n_h + j]).tanh();
            let u = s * (1.0 - z);
            (1.0 - u) * h[j] + u * n
        })
        .collect()
}

struct Reference {
    states: Vec<Vec<Vec<f64>>>,
    attention: Vec<Vec<f64>>,
    interest: Vec<Vec<f64>>,
    aux: f64,
}

/// DIEN of every row the long way: time order = positions from last to first, padding
/// skipped; attention a softmax over the real items only; the auxiliary loss over the
/// pairs (state after item t, item t−1) with the next row's item t−1 as the negative.
fn reference(
    unit: &DienUnit,
    target: &[f32],
    items: &[f32],
    valid: &[bool],
    (b, l, d, dq): (usize, usize, usize, usize),
) -> Reference {
    let (ext, evo) = (cell_values(&unit.extractor), cell_values(&unit.evolution));
    let (wq, bq) = (f64s(unit.query.weight.val()), f64s(unit.query.bias.val()));
    let item = |r: usize, t: usize| -> Vec<f64> {
        items[(r * l + t) * d..(r * l + t + 1) * d]
            .iter()
            .map(|&v| f64::from(v))
            .collect()
    };
    let ok = |r: usize, t: usize| valid[r * l + t];
    let mut out = Reference {
        states: Vec::new(),
        attention: Vec::new(),
        interest: Vec::new(),
        aux: 0.0,
    };
    for r in 0..b {
        let mut h = vec![0.0; d];
        let mut states = vec![vec![0.0; d]; l];
        for t in (0..l).rev() {
            if ok(r, t) {
                h = step(&ext, &h, &item(r, t), 1.0);
            }
            states[t] = h.clone();
        }
        let x: Vec<f64> = target[r * dq..(r + 1) * dq]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let q = affine(&x, &wq, &bq);
        let scores: Vec<f64> = (0..l)
            .map(|t| states[t].iter().zip(&q).map(|(a, b)| a * b).sum())
            .collect();
        let top = (0..l)
            .filter(|&t| ok(r, t))
            .map(|t| scores[t])
            .fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = (0..l)
            .filter(|&t| ok(r, t))
            .map(|t| (scores[t] - top).exp())
            .sum();
        let a: Vec<f64> = (0..l)
            .map(|t| {
                if ok(r, t) {
                    (scores[t] - top).exp() / total
                } else {
                    0.0
                }
            })
            .collect();
        let mut e = vec![0.0; d];
        for t in (0..l).rev() {
            if ok(r, t) {
                e = step(&evo, &e, &states[t], a[t]);
            }
        }
        out.states.push(states);
        out.attention.push(a);
        out.interest.push(e);
    }
    let (mut sum, mut pairs) = (0.0, 0usize);
    for r in 0..b {
        for t in 1..l {
            if !(ok(r, t) && ok(r, t - 1)) {
                continue;
            }
            pairs += 1;
            let dot =
                |v: &[f64]| -> f64 { out.states[r][t].iter().zip(v).map(|(a, b)| a * b).sum() };
            sum -= sigma(dot(&item(r, t - 1))).ln();
            let o = (r + 1) % b;
            if b > 1 && ok(o, t - 1) {
                sum -= (1.0 - sigma(dot(&item(o, t - 1)))).ln();
            }
        }
    }
    out.aux = sum / pairs.max(1) as f64;
    out
}

fn unit(dq: usize, d: usize, seed: u64) -> DienUnit {
    DienUnit::new(dq, d, &mut SplitMix64::new(seed), &device())
}

#[test]
fn dien_equals_the_naive_implementation_with_its_auxiliary_loss_and_shared_path() {
    let (b, l, d, dq) = (4, 5, 4, 6);
    let mut rng = SplitMix64::new(12);
    let u = unit(dq, d, 3);
    // Row 2 has one item (no pair), row 3 none at all.
    let valid: Vec<bool> = [5, 3, 1, 0]
        .iter()
        .flat_map(|&n| (0..l).map(move |t| t < n))
        .collect();
    let target = values(&mut rng, b * dq, 1.0);
    let items = values(&mut rng, b * l * d, 1.0);
    let want = reference(&u, &target, &items, &valid, (b, l, d, dq));
    let (interest, aux) = u.forward_with_aux(
        tensor(&target, [b, dq], false),
        tensor(&items, [b, l, d], false),
        bias(&valid, [b, l]).reshape([b, 1, l]),
    );
    let flat = |v: &[Vec<f64>]| -> Vec<f64> { v.concat() };
    close(&vec_of(interest), &flat(&want.interest), 2e-6, "interest");
    let aux = f64::from(vec_of(aux.unwrap())[0]);
    assert!((aux - want.aux).abs() < 2e-6, "aux {aux} vs {}", want.aux);
    // The pairs are those of rows 0 and 1 (4 + 2), so the loss is not a mean over rows.
    assert!(want.aux > 0.0);
    let out = u.run(
        tensor(&target, [b, dq], false),
        tensor(&items, [b, l, d], false),
        bias(&valid, [b, l]),
    );
    close(
        &vec_of(out.attention),
        &flat(&want.attention),
        2e-6,
        "attention",
    );
    let states: Vec<f64> = want.states.iter().flat_map(|s| s.concat()).collect();
    close(&vec_of(out.states), &states, 2e-6, "states");
    // A row without items outputs the zero state.
    close(
        &vec_of(out.interest.narrow(0, 3, 1)),
        &[0.0; 4],
        0.0,
        "empty row",
    );

    // One sequence shared by every row (a serving request) equals B copies of it.
    let one = &items[..l * d];
    let copies: Vec<f32> = (0..b).flat_map(|_| one.iter().copied()).collect();
    let one_valid = &valid[l..2 * l]; // row 1's padding
    let copies_valid: Vec<bool> = (0..b).flat_map(|_| one_valid.iter().copied()).collect();
    let shared = u.forward_shared(
        tensor(&target, [b, dq], false),
        tensor(one, [l, d], false),
        bias(one_valid, [1, l]),
    );
    let plain = u.forward(
        tensor(&target, [b, dq], false),
        tensor(&copies, [b, l, d], false),
        bias(&copies_valid, [b, l]).reshape([b, 1, l]),
    );
    let plain: Vec<f64> = f64s(plain);
    close(&vec_of(shared), &plain, 1e-6, "shared path");
}

#[test]
fn padded_positions_cannot_change_the_output_or_the_auxiliary_loss() {
    let (b, l, d, dq) = (3, 4, 4, 5);
    let mut rng = SplitMix64::new(8);
    let u = unit(dq, d, 9);
    let valid = [
        true, true, true, false, //
        true, false, false, false, //
        true, true, true, true,
    ];
    let target = values(&mut rng, b * dq, 1.0);
    let items = values(&mut rng, b * l * d, 1.0);
    let mut noisy = items.clone();
    for (p, ok) in valid.iter().enumerate() {
        if !ok {
            for v in &mut noisy[p * d..(p + 1) * d] {
                *v = 40.0 * rng.uniform(1.0);
            }
        }
    }
    let run = |x: &[f32]| {
        let (out, aux) = u.forward_with_aux(
            tensor(&target, [b, dq], false),
            tensor(x, [b, l, d], false),
            bias(&valid, [b, l]).reshape([b, 1, l]),
        );
        (vec_of(out), vec_of(aux.unwrap()))
    };
    assert_eq!(run(&items), run(&noisy));
}

#[test]
fn dien_gradients_match_finite_differences() {
    let (b, l, d, dq) = (3, 4, 3, 4);
    let mut rng = SplitMix64::new(21);
    let u = unit(dq, d, 5);
    let valid = [
        true, true, true, true, //
        true, true, false, false, //
        true, true, true, false,
    ];
    let target = values(&mut rng, b * dq, 1.0);
    let items = values(&mut rng, b * l * d, 1.0);
    let mask = || bias(&valid, [b, l]).reshape([b, 1, l]);
    check("dien items", &items, [b, l, d], |k| {
        project(u.forward(tensor(&target, [b, dq], false), k, mask()), 3)
    });
    check("dien target", &target, [b, dq], |q| {
        project(u.forward(q, tensor(&items, [b, l, d], false), mask()), 3)
    });
    check("auxiliary loss, items", &items, [b, l, d], |k| {
        u.forward_with_aux(tensor(&target, [b, dq], false), k, mask())
            .1
            .unwrap()
    });
    // Through the recurrences' weights: the extractor's and the AUGRU's hidden maps.
    let wh = vec_of(u.extractor.hidden.weight.val());
    check("extractor W_h", &wh, [d, 3 * d], |w| {
        let mut v = u.clone();
        v.extractor.hidden.weight = Param::from_tensor(w);
        let (out, aux) = v.forward_with_aux(
            tensor(&target, [b, dq], false),
            tensor(&items, [b, l, d], false),
            mask(),
        );
        project(out, 7) + aux.unwrap()
    });
    let we = vec_of(u.evolution.hidden.weight.val());
    check("AUGRU W_h", &we, [d, 3 * d], |w| {
        let mut v = u.clone();
        v.evolution.hidden.weight = Param::from_tensor(w);
        project(
            v.forward(
                tensor(&target, [b, dq], false),
                tensor(&items, [b, l, d], false),
                mask(),
            ),
            9,
        )
    });
}

#[test]
fn auxiliary_loss_of_a_hand_case() {
    // One row of two items (B = 1: no negative): the state after the older item,
    // h = (1, 0), predicts the newer one, e = (2, 3): loss = −log σ(2).
    let states = tensor(&[9.0, 9.0, 1.0, 0.0], [1, 2, 2], false);
    let items = tensor(&[2.0, 3.0, 5.0, 5.0], [1, 2, 2], false);
    let loss = vec_of(auxiliary_loss(states, items, bias(&[true, true], [1, 2])).unwrap())[0];
    let want = -(1.0 / (1.0 + (-2.0f64).exp())).ln();
    assert!((f64::from(loss) - want).abs() < 1e-6, "{loss} vs {want}");
}

// --- In the trainer and the published model ---

const SHAPE: InputShape = InputShape {
    fields: 3,
    seq_len: 4,
    seq_subkeys: 1,
    dense: 1,
    groups: SeqGroups::NONE,
};

fn shape() -> InputShape {
    InputShape {
        groups: SeqGroups::NONE
            .with(SeqGroup {
                len: 4,
                query_field: 0,
                heads: 1,
                query_fields: 0b101,
            })
            .unwrap(),
        ..SHAPE
    }
}

fn config(aux_weight: f32) -> RankerConfig {
    let mut c = RankerConfig {
        tasks: vec![Task::Click],
        embedding_dim: 4,
        hidden: vec![8],
        tower_hidden: vec![],
        esu: EsuUnit::Dien,
        ..RankerConfig::full_cross()
    };
    c.dien.aux_weight = aux_weight;
    c.contrastive_weight = 0.0;
    c
}

fn batch(rng: &mut SplitMix64, rows: usize) -> FeatureBatch {
    let mut b = FeatureBatch::with_shape(3, 4, 1, 1, 1);
    for _ in 0..rows {
        let live = rng.below(12) as u64;
        b.fields.extend([
            key(KeyKind::Live, live),
            key(KeyKind::User, rng.below(20) as u64),
            key(KeyKind::Hour, rng.below(24) as u64),
        ]);
        let n = 1 + rng.below(4);
        let mut seen = false;
        for t in 0..4 {
            let item = rng.below(12) as u64;
            seen |= t < n && item == live;
            b.seq_keys.push(key(KeyKind::Live, item));
            b.seq_mask.push(t < n);
        }
        b.dense.push(rng.uniform(1.0));
        b.labels.push(f32::from(u8::from(seen)));
        b.mask.push(1.0);
        b.slow.push(false);
        b.users.push(0);
        b.batch += 1;
    }
    b
}

#[test]
fn the_trainer_adds_alpha_times_the_auxiliary_loss_and_serves_what_it_trained() {
    let mut rng = SplitMix64::new(4);
    let probe = batch(&mut rng, 32);
    // The same weights (same seed) under α = 0, 1, 2: the loss is affine in α, with a
    // positive slope (the auxiliary loss of the batch).
    let losses: Vec<f64> = [0.0, 1.0, 2.0]
        .iter()
        .map(|&a| {
            f64::from(
                Trainer::new(config(a), shape())
                    .unwrap()
                    .eval_loss(&probe)
                    .unwrap(),
            )
        })
        .collect();
    let slope = losses[1] - losses[0];
    assert!(slope > 0.05, "no auxiliary loss in {losses:?}");
    assert!(
        ((losses[2] - losses[0]) - 2.0 * slope).abs() < 1e-4,
        "not α · aux: {losses:?}"
    );

    // Training moves it, and a reader of the published files scores like the trainer:
    // the DIEN weights travel with the dense snapshot.
    let dir = tempfile::tempdir().unwrap();
    let mut trainer = Trainer::new(config(1.0), shape()).unwrap();
    let publish = PublishConfig {
        sparse_ms: 1_000,
        dense_ms: 1_000,
        snapshot_ms: 1_000_000,
        fsync: false,
    };
    let mut publisher =
        ModelPublisher::new(dir.path(), publish, PublisherState::default()).unwrap();
    publisher.tick(&mut trainer, 0, 0).unwrap();
    let before = trainer.eval_loss(&probe).unwrap();
    for s in 0..60 {
        trainer.train_step(&batch(&mut rng, 32)).unwrap();
        publisher
            .tick(&mut trainer, (s + 1) * 1_000, (s + 1) * 1_000)
            .unwrap();
    }
    let after = trainer.eval_loss(&probe).unwrap();
    assert!(after < before, "loss {before} → {after}");
    publisher.finish(&mut trainer, 61_000, 61_000).unwrap();
    let mut reader = ModelReader::open(dir.path()).unwrap();
    reader.poll().unwrap();
    let ours = reader.scorer().predict(&probe).unwrap();
    let theirs = trainer.scorer().unwrap().predict(&probe).unwrap();
    assert_eq!(ours, theirs);
}

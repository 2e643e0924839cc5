//! The multi-head ESU (Moment&Cross eq. 7) and the contrastive alignment (eq. 6): hand
//! computations, finite-difference gradients, and PyTorch's `nn.MultiheadAttention`.
#![allow(clippy::unwrap_used, reason = "tests")]

use crate::support::{check, device, project, sines, tensor, values, vec_of};
use burn::tensor::Tensor;
use liverank_model::layers::{Dense, DinAttention, MultiHeadTargetAttention, PAD_BIAS};
use liverank_model::loss::{contrastive_alignment, info_nce};
use liverank_model::rng::SplitMix64;

fn identity(d: usize) -> Vec<f32> {
    (0..d * d)
        .map(|i| if i / d == i % d { 1.0 } else { 0.0 })
        .collect()
}

fn mha(
    d_query: usize,
    d: usize,
    heads: usize,
    w: [(Vec<f32>, Vec<f32>); 3],
) -> MultiHeadTargetAttention {
    let [q, k, v] = w;
    MultiHeadTargetAttention {
        query: Dense::from_values(d_query, d, q.0, q.1, &device()),
        key: Dense::from_values(d, d, k.0, k.1, &device()),
        value: Dense::from_values(d, d, v.0, v.1, &device()),
        heads,
    }
}

fn bias(mask: &[bool], shape: [usize; 3]) -> Tensor<3> {
    let v: Vec<f32> = mask
        .iter()
        .map(|&m| if m { 0.0 } else { PAD_BIAS })
        .collect();
    tensor(&v, shape, false)
}

/// Identity projections, D = 2, two heads of width 1, so each head attends on its own
/// coordinate: query (1, 2) over items (1, 0), (0, 1) and a padded (5, 5).
/// Head 0: scores (1, 0) → weights (e, 1)/(e + 1) → output e/(e + 1) = 0.7310586.
/// Head 1: scores (0, 2) → weights (1, e²)/(1 + e²) → output e²/(1 + e²) = 0.8807971.
/// The padded item gets weight exactly 0; a row of padding only outputs 0.
#[test]
fn two_heads_match_a_hand_computation_and_padding_gets_exactly_zero_weight() {
    let zero = || vec![0.0; 2];
    let esu = mha(
        2,
        2,
        2,
        [
            (identity(2), zero()),
            (identity(2), zero()),
            (identity(2), zero()),
        ],
    );
    let q = tensor(&[1.0, 2.0, 1.0, 2.0], [2, 2], false);
    let items = tensor(
        &[1.0, 0.0, 0.0, 1.0, 5.0, 5.0, 1.0, 0.0, 0.0, 1.0, 5.0, 5.0],
        [2, 3, 2],
        false,
    );
    let mask = [true, true, false, false, false, false];
    let out = vec_of(esu.forward(q.clone(), items.clone(), bias(&mask, [2, 1, 3])));
    let e = std::f32::consts::E;
    let want = [e / (e + 1.0), e * e / (1.0 + e * e), 0.0, 0.0];
    for (o, w) in out.iter().zip(want) {
        assert!((o - w).abs() < 1e-6, "{out:?} vs {want:?}");
    }
    let weights = vec_of(esu.weights(q, items, bias(&mask, [2, 1, 3])));
    // [B, L, H]: row 0 position 2 and all of row 1 are padding.
    assert_eq!(&weights[4..], &[0.0; 8], "{weights:?}");
    assert!(
        (weights[0] - e / (e + 1.0)).abs() < 1e-6
            && (weights[3] - e * e / (1.0 + e * e)).abs() < 1e-6
    );
}

/// Padding keeps exactly zero weight whatever its embedding, and the output does not move
/// when the padded values change.
#[test]
fn padded_positions_get_exactly_zero_weight_whatever_they_hold() {
    let mut rng = SplitMix64::new(5);
    let (b, l, d, h, dq) = (3, 6, 8, 4, 16);
    let w = [
        (values(&mut rng, dq * d, 0.5), values(&mut rng, d, 0.1)),
        (values(&mut rng, d * d, 0.5), values(&mut rng, d, 0.1)),
        (values(&mut rng, d * d, 0.5), values(&mut rng, d, 0.1)),
    ];
    let esu = mha(dq, d, h, w);
    let q = tensor(&values(&mut rng, b * dq, 1.0), [b, dq], false);
    let mask: Vec<bool> = (0..b * l).map(|i| (i * 7) % 3 != 0).collect();
    let mut items = values(&mut rng, b * l * d, 1.0);
    let before = vec_of(esu.forward(
        q.clone(),
        tensor(&items, [b, l, d], false),
        bias(&mask, [b, 1, l]),
    ));
    for (p, &m) in mask.iter().enumerate() {
        if !m {
            items[p * d..(p + 1) * d].iter_mut().for_each(|x| *x = 50.0);
        }
    }
    let weights = vec_of(esu.weights(
        q.clone(),
        tensor(&items, [b, l, d], false),
        bias(&mask, [b, 1, l]),
    ));
    for (i, w) in weights.iter().enumerate() {
        if !mask[i / h] {
            assert_eq!(*w, 0.0, "padded position {} head {}", i / h, i % h);
        }
    }
    let after = vec_of(esu.forward(q, tensor(&items, [b, l, d], false), bias(&mask, [b, 1, l])));
    assert_eq!(before, after);
}

// PyTorch 2.15 (CPU), `~/.cache/peer-venv/bin/python`:
//
//     import math, torch
//     B, L, D, H = 2, 3, 4, 2
//     def vals(n, off, scale=0.5):
//         return torch.tensor([math.sin(i * 0.7 + off) * scale for i in range(n)], dtype=torch.float32)
//     wq, wk, wv = vals(D*D, 0.1).view(D, D), vals(D*D, 0.2).view(D, D), vals(D*D, 0.3).view(D, D)  # [in, out]
//     bq, bk, bv = vals(D, 0.4, 0.1), vals(D, 0.5, 0.1), vals(D, 0.6, 0.1)
//     q = vals(B*D, 0.7, 1.0).view(B, 1, D)
//     items = vals(B*L*D, 0.8, 1.0).view(B, L, D)
//     pad = torch.tensor([[False, False, False], [False, False, True]])
//     m = torch.nn.MultiheadAttention(D, H, batch_first=True, bias=True)
//     with torch.no_grad():
//         m.in_proj_weight.copy_(torch.cat([wq.T, wk.T, wv.T], 0))
//         m.in_proj_bias.copy_(torch.cat([bq, bk, bv]))
//         m.out_proj.weight.copy_(torch.eye(D)); m.out_proj.bias.zero_()
//     out, w = m(q, items, items, key_padding_mask=pad, need_weights=True, average_attn_weights=False)
//     print([round(x, 6) for x in out.reshape(-1).tolist()])
//     print([round(x, 6) for x in w.reshape(-1).tolist()])  # [B, H, 1, L]
const TORCH_OUT: [f32; 8] = [
    0.083291, 0.115628, 0.095672, 0.03041, 0.05349, 0.06695, 0.061392, 0.022202,
];
const TORCH_WEIGHTS: [f32; 12] = [
    0.338056, 0.327135, 0.334809, 0.343062, 0.333882, 0.323056, 0.504155, 0.495845, 0.0, 0.526087,
    0.473913, 0.0,
];

#[test]
fn equals_pytorch_multihead_attention_with_the_same_weights() {
    let (b, l, d, h) = (2, 3, 4, 2);
    let esu = mha(
        d,
        d,
        h,
        [
            (sines(d * d, 0.1, 0.5), sines(d, 0.4, 0.1)),
            (sines(d * d, 0.2, 0.5), sines(d, 0.5, 0.1)),
            (sines(d * d, 0.3, 0.5), sines(d, 0.6, 0.1)),
        ],
    );
    let q = tensor(&sines(b * d, 0.7, 1.0), [b, d], false);
    let items = tensor(&sines(b * l * d, 0.8, 1.0), [b, l, d], false);
    let mask = [true, true, true, true, true, false];
    let out = vec_of(esu.forward(q.clone(), items.clone(), bias(&mask, [b, 1, l])));
    for (o, t) in out.iter().zip(TORCH_OUT) {
        assert!((o - t).abs() < 2e-6, "{out:?} vs torch {TORCH_OUT:?}");
    }
    // Ours are [B, L, H], PyTorch's [B, H, 1, L].
    let weights = vec_of(esu.weights(q, items, bias(&mask, [b, 1, l])));
    for r in 0..b {
        for p in 0..l {
            for k in 0..h {
                let ours = weights[(r * l + p) * h + k];
                let theirs = TORCH_WEIGHTS[(r * h + k) * l + p];
                assert!(
                    (ours - theirs).abs() < 2e-6,
                    "row {r} pos {p} head {k}: {ours} vs {theirs}"
                );
            }
        }
    }
}

#[test]
fn esu_gradients_match_finite_differences() {
    let mut rng = SplitMix64::new(11);
    let (b, l, d, h, dq) = (2, 4, 4, 2, 6);
    let esu = mha(
        dq,
        d,
        h,
        [
            (values(&mut rng, dq * d, 0.7), values(&mut rng, d, 0.2)),
            (values(&mut rng, d * d, 0.7), values(&mut rng, d, 0.2)),
            (values(&mut rng, d * d, 0.7), values(&mut rng, d, 0.2)),
        ],
    );
    let q = values(&mut rng, b * dq, 1.0);
    let items = values(&mut rng, b * l * d, 1.0);
    let mask = [true, true, true, false, true, false, true, true];
    check("esu query", &q, [b, dq], |q| {
        project(
            esu.forward(q, tensor(&items, [b, l, d], false), bias(&mask, [b, 1, l])),
            3,
        )
    });
    check("esu items", &items, [b, l, d], |k| {
        project(
            esu.forward(tensor(&q, [b, dq], false), k, bias(&mask, [b, 1, l])),
            3,
        )
    });
    // The shared path (one sequence, every query) has the same gradients as B copies.
    let one: Vec<f32> = items[..l * d].to_vec();
    let one_mask = &mask[..l];
    check("shared esu items", &one, [l, d], |k| {
        let b1: Vec<f32> = one_mask
            .iter()
            .map(|&m| if m { 0.0 } else { PAD_BIAS })
            .collect();
        project(
            esu.forward_shared(tensor(&q, [b, dq], false), k, tensor(&b1, [1, l], false)),
            5,
        )
    });
}

/// a = (1, 0), (0, 1); o = (1, 0), (1, 1) → L2(o) = (1, 0), (1, 1)/√2; τ = 0.5.
/// Logits ⟨a_r, o_c⟩/τ: row 0 (2, √2), row 1 (0, √2).
/// Loss = ½ [−log(e²/(e² + e^√2)) − log(e^√2/(1 + e^√2))].
#[test]
fn info_nce_matches_a_hand_computation_and_ignores_invalid_rows() {
    let s2 = 2f64.sqrt();
    let row0 = -(2f64.exp() / (2f64.exp() + s2.exp())).ln();
    let row1 = -(s2.exp() / (1.0 + s2.exp())).ln();
    let want = 0.5 * (row0 + row1);
    let a = tensor(&[1.0, 0.0, 0.0, 1.0], [2, 2], false);
    let o = tensor(&[1.0, 0.0, 1.0, 1.0], [2, 2], false);
    let got = f64::from(vec_of(info_nce(a, o, &[true, true], 0.5))[0]);
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");

    // A third row without one of its sequences is neither anchor nor negative.
    let a = tensor(&[1.0, 0.0, 0.0, 1.0, 0.3, -0.2], [3, 2], false);
    let o = tensor(&[1.0, 0.0, 1.0, 1.0, -0.5, 0.9], [3, 2], false);
    let got = f64::from(vec_of(info_nce(a, o, &[true, true, false], 0.5))[0]);
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    // No valid row: zero.
    let a = tensor(&[1.0, 0.0], [1, 2], false);
    assert_eq!(vec_of(info_nce(a.clone(), a, &[false], 0.5)), [0.0]);
}

/// The analytic gradient of the two-row case with respect to the anchor: with a already
/// unit, for row r, ∂loss/∂(a_r·o_c) = (p_rc − [r = c])/(τ n); and the whole gradient
/// (through the normalisation too) against finite differences on random inputs.
#[test]
fn info_nce_gradients_match_hand_values_and_finite_differences() {
    // Hand: the gradient of the loss w.r.t. the logits' row r is (softmax_r − e_r)/n; with
    // unit anchors the gradient w.r.t. a_r before normalisation is
    // (I − a_r a_rᵀ) Σ_c (p_rc − [r = c]) o_c/(τ n).
    let tau = 0.5f64;
    let s = 1.0 / 2f64.sqrt();
    let o = [[1.0, 0.0], [s, s]];
    let a = [[1.0, 0.0], [0.0, 1.0]];
    let mut want = [0.0f64; 4];
    for (r, (ar, out)) in a.iter().zip(want.chunks_exact_mut(2)).enumerate() {
        let logits: Vec<f64> = o
            .iter()
            .map(|oc| (ar[0] * oc[0] + ar[1] * oc[1]) / tau)
            .collect();
        let z: f64 = logits.iter().map(|l| l.exp()).sum();
        let mut g = [0.0f64; 2];
        for (c, (logit, oc)) in logits.iter().zip(&o).enumerate() {
            let coef = (logit.exp() / z - if r == c { 1.0 } else { 0.0 }) / (tau * 2.0);
            g[0] += coef * oc[0];
            g[1] += coef * oc[1];
        }
        let along = g[0] * ar[0] + g[1] * ar[1];
        out[0] = g[0] - along * ar[0];
        out[1] = g[1] - along * ar[1];
    }
    let leaf = tensor(&[1.0, 0.0, 0.0, 1.0], [2, 2], true);
    let grads = info_nce(
        leaf.clone(),
        tensor(&[1.0, 0.0, 1.0, 1.0], [2, 2], false),
        &[true, true],
        tau,
    )
    .backward();
    let got = vec_of(leaf.grad(&grads).unwrap());
    for (g, w) in got.iter().zip(want) {
        assert!((f64::from(*g) - w).abs() < 1e-5, "{got:?} vs {want:?}");
    }

    let mut rng = SplitMix64::new(17);
    let (b, d) = (4, 3);
    let x = values(&mut rng, b * d, 1.0);
    let y = values(&mut rng, b * d, 1.0);
    let valid = [true, true, false, true];
    check("info_nce anchor", &x, [b, d], |x| {
        info_nce(x, tensor(&y, [b, d], false), &valid, 0.3)
    });
    check("info_nce other", &y, [b, d], |y| {
        info_nce(tensor(&x, [b, d], false), y, &valid, 0.3)
    });
}

#[test]
fn info_nce_of_identical_pairs_goes_to_zero_as_the_temperature_shrinks() {
    let mut rng = SplitMix64::new(23);
    let (b, d) = (8, 16);
    let x = values(&mut rng, b * d, 1.0);
    let loss = |tau: f64| {
        f64::from(
            vec_of(info_nce(
                tensor(&x, [b, d], false),
                tensor(&x, [b, d], false),
                &[true; 8],
                tau,
            ))[0],
        )
    };
    let (warm, cold) = (loss(1.0), loss(0.01));
    assert!(warm > 0.1, "at τ = 1 the negatives still count: {warm}");
    assert!(cold < 1e-4, "τ → 0 with identical pairs: {cold}");
}

/// Eq. 6 over a sequence tensor: masked means of the groups, V_mixed against each other.
#[test]
fn contrastive_alignment_is_info_nce_of_the_masked_group_means() {
    let mut rng = SplitMix64::new(31);
    let (b, l, s, d) = (3, 5, 2, 4);
    let seq = values(&mut rng, b * l * s * d, 1.0);
    // Groups: mixed = positions 0..2, x = positions 2..5. Row 2 has no mixed items.
    let mask = [
        true, true, true, false, false, //
        true, false, true, true, true, //
        false, false, true, true, false,
    ];
    let mut seq = seq;
    for (p, &m) in mask.iter().enumerate() {
        if !m {
            seq[p * s * d..(p + 1) * s * d]
                .iter_mut()
                .for_each(|x| *x = 0.0);
        }
    }
    let t = tensor(&seq, [b, l, s, d], false);
    let got =
        vec_of(contrastive_alignment(&t, &mask, &[(true, 0, 2), (false, 2, 3)], 0.2).unwrap())[0];
    let mean = |r: usize, lo: usize, hi: usize| -> Vec<f32> {
        let n = (lo..hi).filter(|&p| mask[r * l + p]).count().max(1) as f32;
        (0..d)
            .map(|k| {
                (lo..hi)
                    .map(|p| {
                        (0..s)
                            .map(|j| seq[((r * l + p) * s + j) * d + k])
                            .sum::<f32>()
                    })
                    .sum::<f32>()
                    / n
            })
            .collect()
    };
    let a: Vec<f32> = (0..b).flat_map(|r| mean(r, 0, 2)).collect();
    let o: Vec<f32> = (0..b).flat_map(|r| mean(r, 2, 5)).collect();
    let want = vec_of(info_nce(
        tensor(&a, [b, d], false),
        tensor(&o, [b, d], false),
        &[true, true, false],
        0.2,
    ))[0];
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    assert!(got > 0.0);
    assert!(contrastive_alignment(&t, &mask, &[(false, 0, 2), (false, 2, 3)], 0.2).is_none());
}

// --- DIN's activation unit (issue 20, item 1) ---

fn din(dq: usize, d: usize, hidden: &[usize], softmax: bool, rng: &mut SplitMix64) -> DinAttention {
    DinAttention::new(dq, d, hidden, softmax, rng, &device())
}

fn dense_values(l: &Dense) -> (Vec<f32>, Vec<f32>, usize) {
    let w = vec_of(l.weight.val());
    let out = l.bias.dims()[0];
    (w, vec_of(l.bias.val()), out)
}

/// `x W + b` of one row, in f64 (row-major `[d_in, d_out]`).
fn affine(x: &[f64], (w, b, out): &(Vec<f32>, Vec<f32>, usize)) -> Vec<f64> {
    (0..*out)
        .map(|j| {
            f64::from(b[j])
                + x.iter()
                    .enumerate()
                    .map(|(i, xi)| xi * f64::from(w[i * out + j]))
                    .sum::<f64>()
        })
        .collect()
}

/// DIN written out the naive way, in f64: the concatenation `[q, k, q − k, q ⊙ k]` of
/// every item through the unit, raw or softmax weights, zero on padding, `Σ wᵢ kᵢ`.
fn din_reference(
    unit: &DinAttention,
    target: &[f32],
    items: &[f32],
    mask: &[bool],
    (b, l, d): (usize, usize, usize),
) -> (Vec<f64>, Vec<f64>) {
    let dq = target.len() / b;
    let query = dense_values(&unit.query);
    let layers: Vec<_> = std::iter::once(&unit.first)
        .chain(&unit.rest)
        .map(dense_values)
        .collect();
    let out_layer = dense_values(&unit.out);
    let (mut outputs, mut weights) = (vec![0.0; b * d], vec![0.0; b * l]);
    for r in 0..b {
        let x: Vec<f64> = target[r * dq..(r + 1) * dq]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let q = affine(&x, &query);
        let mut raw = vec![0.0; l];
        for p in 0..l {
            let k: Vec<f64> = items[(r * l + p) * d..(r * l + p + 1) * d]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let mut h: Vec<f64> = q
                .iter()
                .copied()
                .chain(k.iter().copied())
                .chain(q.iter().zip(&k).map(|(a, c)| a - c))
                .chain(q.iter().zip(&k).map(|(a, c)| a * c))
                .collect();
            for layer in &layers {
                h = affine(&h, layer).into_iter().map(|v| v.max(0.0)).collect();
            }
            raw[p] = affine(&h, &out_layer)[0];
        }
        let valid: Vec<usize> = (0..l).filter(|&p| mask[r * l + p]).collect();
        let w: Vec<f64> = if unit.softmax {
            let m = valid.iter().map(|&p| raw[p]).fold(f64::MIN, f64::max);
            let z: f64 = valid.iter().map(|&p| (raw[p] - m).exp()).sum();
            (0..l)
                .map(|p| {
                    if mask[r * l + p] {
                        (raw[p] - m).exp() / z
                    } else {
                        0.0
                    }
                })
                .collect()
        } else {
            (0..l)
                .map(|p| if mask[r * l + p] { raw[p] } else { 0.0 })
                .collect()
        };
        for p in 0..l {
            weights[r * l + p] = w[p];
            for j in 0..d {
                outputs[r * d + j] += w[p] * f64::from(items[(r * l + p) * d + j]);
            }
        }
    }
    (outputs, weights)
}

/// The smallest |pre-activation| of the unit's first layer over the valid items: a finite
/// difference step that crosses a ReLU's kink measures a different slope, so the gradient
/// check uses weights whose pre-activations stay clear of 0.
fn din_kink_margin(
    unit: &DinAttention,
    target: &[f32],
    items: &[f32],
    mask: &[bool],
    (b, l, d): (usize, usize, usize),
) -> f64 {
    let dq = target.len() / b;
    let (query, first) = (dense_values(&unit.query), dense_values(&unit.first));
    let mut margin = f64::MAX;
    for r in 0..b {
        let x: Vec<f64> = target[r * dq..(r + 1) * dq]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let q = affine(&x, &query);
        for p in (0..l).filter(|&p| mask[r * l + p]) {
            let k: Vec<f64> = items[(r * l + p) * d..(r * l + p + 1) * d]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let h: Vec<f64> = q
                .iter()
                .copied()
                .chain(k.iter().copied())
                .chain(q.iter().zip(&k).map(|(a, c)| a - c))
                .chain(q.iter().zip(&k).map(|(a, c)| a * c))
                .collect();
            for v in affine(&h, &first) {
                margin = margin.min(v.abs());
            }
        }
    }
    margin
}

/// Identity query projection, D = 2, one hidden unit reading only the `q ⊙ k` block with
/// weights (1, 1), so an item's weight is relu(q·k): query (1, 2) over items (1, 0), (0, 1)
/// and a padded (5, 5) gives weights 1, 2, 0 and output (1, 2); with the softmax, weights
/// (e, e²)/(e + e²) = 0.2689414, 0.7310586 and the output is those two numbers.
#[test]
fn din_matches_a_hand_computation_and_padding_gets_exactly_zero_weight() {
    let dev = device();
    let zeros = |n: usize| vec![0.0f32; n];
    let mut first = zeros(8);
    first[6] = 1.0;
    first[7] = 1.0;
    let make = |softmax: bool| DinAttention {
        query: Dense::from_values(2, 2, identity(2), zeros(2), &dev),
        first: Dense::from_values(8, 1, first.clone(), zeros(1), &dev),
        rest: Vec::new(),
        out: Dense::from_values(1, 1, vec![1.0], zeros(1), &dev),
        softmax,
    };
    // Row 0: the case above; row 1: only padding.
    let q = tensor(&[1.0, 2.0, 1.0, 2.0], [2, 2], false);
    let items = tensor(
        &[1.0, 0.0, 0.0, 1.0, 5.0, 5.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0],
        [2, 3, 2],
        false,
    );
    let mask = [true, true, false, false, false, false];
    let raw = make(false);
    assert_eq!(
        vec_of(raw.weights(q.clone(), items.clone(), bias(&mask, [2, 1, 3]))),
        vec![1.0, 2.0, 0.0, 0.0, 0.0, 0.0]
    );
    assert_eq!(
        vec_of(raw.forward(q.clone(), items.clone(), bias(&mask, [2, 1, 3]))),
        vec![1.0, 2.0, 0.0, 0.0]
    );
    let soft = make(true);
    let w = vec_of(soft.weights(q.clone(), items.clone(), bias(&mask, [2, 1, 3])));
    let e = std::f32::consts::E;
    let (w0, w1) = (e / (e + e * e), e * e / (e + e * e));
    for (got, want) in w.iter().zip([w0, w1, 0.0, 0.0, 0.0, 0.0]) {
        assert!((got - want).abs() < 1e-6, "{w:?}");
    }
    assert_eq!(w[2], 0.0, "padding weighs exactly 0 under the softmax");
    let out = vec_of(soft.forward(q, items, bias(&mask, [2, 1, 3])));
    for (got, want) in out.iter().zip([w0, w1, 0.0, 0.0]) {
        assert!((got - want).abs() < 1e-6, "{out:?}");
    }
}

/// The by-parts first layer and the shared path equal DIN computed naively on the
/// concatenation, for raw and softmax weights and two hidden layers.
#[test]
fn din_equals_the_naive_concatenation_and_its_shared_path() {
    let mut rng = SplitMix64::new(23);
    let (b, l, d, dq) = (3, 5, 4, 6);
    let target = values(&mut rng, b * dq, 1.0);
    let items = values(&mut rng, b * l * d, 1.0);
    let mask: Vec<bool> = (0..b * l).map(|i| i % 4 != 3).collect();
    for softmax in [false, true] {
        let unit = din(dq, d, &[7, 3], softmax, &mut rng);
        let (want_out, want_w) = din_reference(&unit, &target, &items, &mask, (b, l, d));
        let m = bias(&mask, [b, 1, l]);
        let got_w = vec_of(unit.weights(
            tensor(&target, [b, dq], false),
            tensor(&items, [b, l, d], false),
            m.clone(),
        ));
        let got_out = vec_of(unit.forward(
            tensor(&target, [b, dq], false),
            tensor(&items, [b, l, d], false),
            m,
        ));
        for (g, w) in got_w.iter().zip(&want_w) {
            assert!(
                (f64::from(*g) - w).abs() < 1e-5,
                "softmax {softmax}: {got_w:?} vs {want_w:?}"
            );
        }
        for (g, w) in got_out.iter().zip(&want_out) {
            assert!(
                (f64::from(*g) - w).abs() < 1e-5,
                "softmax {softmax}: {got_out:?} vs {want_out:?}"
            );
        }
        // Shared: row 0's sequence for every query equals the per-row path over copies.
        let one = &items[..l * d];
        let copies: Vec<f32> = (0..b).flat_map(|_| one.iter().copied()).collect();
        let one_mask: Vec<bool> = (0..b).flat_map(|_| mask[..l].iter().copied()).collect();
        let per_row = vec_of(unit.forward(
            tensor(&target, [b, dq], false),
            tensor(&copies, [b, l, d], false),
            bias(&one_mask, [b, 1, l]),
        ));
        let b1: Vec<f32> = mask[..l]
            .iter()
            .map(|&m| if m { 0.0 } else { PAD_BIAS })
            .collect();
        let shared = vec_of(unit.forward_shared(
            tensor(&target, [b, dq], false),
            tensor(one, [l, d], false),
            tensor(&b1, [1, l], false),
        ));
        for (s, p) in shared.iter().zip(&per_row) {
            assert!(
                (s - p).abs() < 1e-5,
                "shared {shared:?} vs per row {per_row:?}"
            );
        }
    }
}

#[test]
fn din_gradients_match_finite_differences() {
    let mut rng = SplitMix64::new(34);
    let (b, l, d, dq) = (2, 4, 4, 6);
    let mask = [true, true, true, false, true, false, true, true];
    let target = values(&mut rng, b * dq, 1.0);
    let items = values(&mut rng, b * l * d, 1.0);
    for softmax in [false, true] {
        let unit = din(dq, d, &[5], softmax, &mut rng);
        // The first layer's inputs stay below 4 in magnitude here, so a step of 2e-3 in one
        // input or weight moves a pre-activation by less than 0.008.
        let margin = din_kink_margin(&unit, &target, &items, &mask, (b, l, d));
        assert!(
            margin > 0.008,
            "seeded weights sit {margin} from a ReLU kink"
        );
        check("din query", &target, [b, dq], |q| {
            project(
                unit.forward(q, tensor(&items, [b, l, d], false), bias(&mask, [b, 1, l])),
                3,
            )
        });
        check("din items", &items, [b, l, d], |k| {
            project(
                unit.forward(tensor(&target, [b, dq], false), k, bias(&mask, [b, 1, l])),
                3,
            )
        });
        // The first layer's weights, through the by-parts product.
        let w0 = vec_of(unit.first.weight.val());
        check("din first layer", &w0, [4 * d, 5], |w| {
            let u = DinAttention {
                first: Dense {
                    weight: burn::module::Param::from_tensor(w),
                    bias: unit.first.bias.clone(),
                },
                ..unit.clone()
            };
            project(
                u.forward(
                    tensor(&target, [b, dq], false),
                    tensor(&items, [b, l, d], false),
                    bias(&mask, [b, 1, l]),
                ),
                7,
            )
        });
        let one: Vec<f32> = items[..l * d].to_vec();
        let b1: Vec<f32> = mask[..l]
            .iter()
            .map(|&m| if m { 0.0 } else { PAD_BIAS })
            .collect();
        check("shared din items", &one, [l, d], |k| {
            project(
                unit.forward_shared(
                    tensor(&target, [b, dq], false),
                    k,
                    tensor(&b1, [1, l], false),
                ),
                5,
            )
        });
    }
}

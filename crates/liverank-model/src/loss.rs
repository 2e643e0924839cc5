//! Losses of the ranker: Moment&Cross eq. 5 (masked BCE), the fast/slow PU baseline, and
//! Cross's contrastive alignment of the history sequences (eq. 6, InfoNCE).
//!
//! Both are written over logits for numerical stability:
//! `BCE(z, y) = max(z, 0) − z·y + log(1 + e^{−|z|})`, and the PU correction of a slow
//! sample, `−[log ŷ − log(1 − ŷ)]`, is exactly `−z` (since `log σ(z) − log σ(−z) = z`): its
//! gradient −1 added to the fast sample's negative-label gradient `ŷ` gives `ŷ − 1`, the
//! gradient of a positive label, which is the point of the correction.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Tensor, TensorData};

/// Element-wise BCE with logits, `[B, T]`.
pub fn bce_with_logits(logits: Tensor<2>, labels: Tensor<2>) -> Tensor<2> {
    let softplus_neg_abs = logits.clone().abs().neg().exp().log1p();
    logits.clone().clamp_min(0.0) - logits * labels + softplus_neg_abs
}

/// Masked BCE (eq. 5): `Σ_{b,t} mask·w_t·BCE / B`. Masked-out labels contribute nothing,
/// neither value nor gradient.
pub fn masked_bce(
    logits: Tensor<2>,
    labels: Tensor<2>,
    mask: Tensor<2>,
    task_weights: Tensor<2>,
) -> Tensor<1> {
    let [b, _] = logits.dims();
    (bce_with_logits(logits, labels) * mask * task_weights)
        .sum()
        .div_scalar(b as f64)
}

/// Fast/slow loss: masked BCE on fast rows plus, on slow rows, the PU correction
/// `L_slow = −Σ_missing [log ŷ − log(1 − ŷ)] = −Σ_missing z` over the tasks the slow sample
/// reports (its missing positives). `slow [B, 1]` is 1 on slow rows.
pub fn pu_loss(
    logits: Tensor<2>,
    labels: Tensor<2>,
    mask: Tensor<2>,
    slow: Tensor<2>,
    task_weights: Tensor<2>,
) -> Tensor<1> {
    let [b, _] = logits.dims();
    let fast_rows = slow.clone().neg().add_scalar(1.0);
    let fast = bce_with_logits(logits.clone(), labels.clone()) * mask.clone() * fast_rows;
    let missing = mask * labels * slow;
    let slow_term = logits.neg() * missing;
    ((fast + slow_term) * task_weights)
        .sum()
        .div_scalar(b as f64)
}

/// L2 normalisation of each row, `x / sqrt(|x|² + 1e-12)` (a zero row stays zero).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).add_scalar(1e-12).sqrt();
    x / norm
}

/// InfoNCE with in-batch negatives (Moment&Cross eq. 6's `Contrastive`): row r's anchor
/// `L2(anchor_r)` should pick its own `L2(other_r)` among the other rows' `L2(other)`:
/// `−(1/n) Σ_{r valid} log softmax_c(⟨a_r, o_c⟩/τ)[r]`, over the `n` rows where `valid`
/// (both sequences non-empty); invalid rows are neither anchors nor negatives. `[B, D]`
/// inputs, a `[1]` loss (0 when no row is valid).
pub fn info_nce(
    anchor: Tensor<2>,
    other: Tensor<2>,
    valid: &[bool],
    temperature: f64,
) -> Tensor<1> {
    let [b, _] = anchor.dims();
    let device = anchor.device();
    let n = valid.iter().filter(|&&v| v).count();
    if n == 0 || valid.len() != b {
        return Tensor::zeros([1], &device);
    }
    let a = l2_normalize(anchor);
    let o = l2_normalize(other);
    let as_f32 = |on: f32, off: f32| -> Vec<f32> {
        valid.iter().map(|&v| if v { on } else { off }).collect()
    };
    let column_bias: Tensor<2> = Tensor::from_data(
        TensorData::new(as_f32(0.0, crate::layers::PAD_BIAS), [1, b]),
        &device,
    );
    let rows: Tensor<2> = Tensor::from_data(TensorData::new(as_f32(1.0, 0.0), [b, 1]), &device);
    let logits = a.matmul(o.transpose()).div_scalar(temperature) + column_bias;
    let log_p = log_softmax(logits, 1);
    let diagonal = (log_p * Tensor::<2>::eye(b, &device)).sum_dim(1);
    (diagonal * rows).sum().neg().div_scalar(n as f64)
}

/// The masked mean `[B, D]` of positions `start..start + len` of a `[B, L, S, D]` sequence
/// tensor (each position the sum of its sub-keys; padding is zeros), and the rows that have
/// at least one item there.
pub fn sequence_mean(
    seq: &Tensor<4>,
    mask: &[bool],
    start: usize,
    len: usize,
) -> (Tensor<2>, Vec<bool>) {
    let [b, l, _, d] = seq.dims();
    let counts: Vec<f32> = (0..b)
        .map(|r| {
            mask.get(r * l + start..r * l + start + len)
                .map_or(0, |m| m.iter().filter(|&&x| x).count()) as f32
        })
        .collect();
    let filled = counts.iter().map(|&c| c > 0.0).collect();
    let inverse: Vec<f32> = counts.iter().map(|&c| 1.0 / c.max(1.0)).collect();
    let inverse: Tensor<2> = Tensor::from_data(TensorData::new(inverse, [b, 1]), &seq.device());
    let sum = seq
        .clone()
        .narrow(1, start, len)
        .sum_dim(2)
        .sum_dim(1)
        .reshape([b, d]);
    (sum * inverse, filled)
}

/// The contrastive alignment of eq. 6: `Σ_x InfoNCE(mean(V_mixed), mean(V_x))` over the
/// other configured history groups x; `groups` are `(is_mixed, start, len)`. `None` when
/// there is no V_mixed or nothing to align it with.
pub fn contrastive_alignment(
    seq: &Tensor<4>,
    mask: &[bool],
    groups: &[(bool, usize, usize)],
    temperature: f64,
) -> Option<Tensor<1>> {
    let &(_, start, len) = groups.iter().find(|g| g.0)?;
    let (anchor, anchor_rows) = sequence_mean(seq, mask, start, len);
    let mut total: Option<Tensor<1>> = None;
    for &(_, start, len) in groups.iter().filter(|g| !g.0) {
        let (other, rows) = sequence_mean(seq, mask, start, len);
        let valid: Vec<bool> = rows
            .iter()
            .zip(&anchor_rows)
            .map(|(&a, &b)| a && b)
            .collect();
        let term = info_nce(anchor.clone(), other, &valid, temperature);
        total = Some(match total {
            Some(t) => t + term,
            None => term,
        });
    }
    total
}

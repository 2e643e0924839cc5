//! Losses of the ranker (Moment&Cross eq. 5 and the fast/slow PU baseline).
//!
//! Both are written over logits for numerical stability:
//! `BCE(z, y) = max(z, 0) − z·y + log(1 + e^{−|z|})`, and the PU correction of a slow
//! sample, `−[log ŷ − log(1 − ŷ)]`, is exactly `−z` (since `log σ(z) − log σ(−z) = z`): its
//! gradient −1 added to the fast sample's negative-label gradient `ŷ` gives `ŷ − 1`, the
//! gradient of a positive label, which is the point of the correction.

use burn::tensor::Tensor;

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

//! The similarity a [`crate::VectorIndex`] scores with, and the one kernel both indexes
//! spend their time in: the dot product.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How two vectors are compared; scores are similarities, higher is better.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The raw inner product (maximum inner-product search), e.g. two-tower logits.
    InnerProduct,
    /// The cosine: vectors and queries are scaled to unit length on the way in, then
    /// compared by inner product.
    #[default]
    Cosine,
}

impl Metric {
    /// Checks `vector` (length `dim`, every component finite; non-zero under cosine) and
    /// returns the form the index stores or searches with.
    pub fn prepare(self, dim: usize, vector: &[f32]) -> Result<Vec<f32>> {
        if vector.len() != dim {
            return Err(Error::DimensionMismatch {
                expected: dim,
                got: vector.len(),
            });
        }
        if let Some((position, &value)) = vector.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(Error::NonFinite { position, value });
        }
        let mut out = vector.to_vec();
        if self == Metric::Cosine {
            let norm = dot(&out, &out).sqrt();
            if norm == 0.0 || !norm.is_finite() {
                return Err(Error::ZeroVector);
            }
            for x in &mut out {
                *x /= norm;
            }
        }
        Ok(out)
    }
}

/// The inner product of the common prefix of `a` and `b`, in eight independent lanes so
/// the compiler vectorises it.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let mut tail = 0.0f32;
    for (x, y) in chunks_a.remainder().iter().zip(chunks_b.remainder()) {
        tail += x * y;
    }
    let mut lanes = [0.0f32; 8];
    for (x, y) in chunks_a.zip(chunks_b) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
        + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]))
        + tail
}

/// Symmetric 8-bit scalar quantisation of one vector: `x ≈ scale · code`, with `scale` =
/// max |x| / 127 (0 for the zero vector).
pub(crate) fn quantize(vector: &[f32]) -> (Vec<i8>, f32) {
    let max = vector.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return (vec![0; vector.len()], 0.0);
    }
    let scale = max / 127.0;
    let codes = vector
        .iter()
        .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (codes, scale)
}

/// The inner product of two code vectors (exact in `i32` up to 133 000 dimensions).
pub(crate) fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let chunks_a = a.chunks_exact(16);
    let chunks_b = b.chunks_exact(16);
    let mut tail = 0i32;
    for (x, y) in chunks_a.remainder().iter().zip(chunks_b.remainder()) {
        tail += i32::from(*x) * i32::from(*y);
    }
    let mut lanes = [0i32; 16];
    for (x, y) in chunks_a.zip(chunks_b) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += i32::from(*x) * i32::from(*y);
        }
    }
    lanes.iter().sum::<i32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantized_dot_approximates_the_float_dot() {
        for n in [1usize, 7, 16, 33, 64] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.3 + 1.0).cos()).collect();
            let ((ca, sa), (cb, sb)) = (quantize(&a), quantize(&b));
            let approx = sa * sb * dot_i8(&ca, &cb) as f32;
            // Each code is off by at most half a step: |error| ≤ Σ (|a| sb + |b| sa)/2 + n sa sb/4.
            let bound: f32 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x.abs() * sb + y.abs() * sa) / 2.0)
                .sum::<f32>()
                + n as f32 * sa * sb / 4.0;
            assert!((approx - dot(&a, &b)).abs() <= bound + 1e-6, "n = {n}");
        }
        let (codes, scale) = quantize(&[0.0, 0.0]);
        assert_eq!((codes, scale), (vec![0, 0], 0.0));
    }

    #[test]
    fn dot_matches_naive_sum_for_every_length() {
        for n in 0..40 {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 1.3).cos()).collect();
            let naive: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            assert!((f64::from(dot(&a, &b)) - naive).abs() < 1e-5, "n = {n}");
        }
    }

    #[test]
    fn prepare_normalises_under_cosine_and_rejects_bad_vectors() {
        let v = Metric::Cosine.prepare(2, &[3.0, 4.0]).expect("valid");
        assert_eq!(v, vec![0.6, 0.8]);
        assert_eq!(
            Metric::InnerProduct.prepare(2, &[3.0, 4.0]).expect("valid"),
            vec![3.0, 4.0]
        );
        assert_eq!(
            Metric::Cosine.prepare(3, &[1.0, 2.0]),
            Err(Error::DimensionMismatch {
                expected: 3,
                got: 2
            })
        );
        assert!(matches!(
            Metric::InnerProduct.prepare(2, &[1.0, f32::NAN]),
            Err(Error::NonFinite { position: 1, .. })
        ));
        assert_eq!(
            Metric::Cosine.prepare(2, &[0.0, 0.0]),
            Err(Error::ZeroVector)
        );
        // A zero vector is a valid inner-product vector (it scores 0 against everything).
        assert!(Metric::InnerProduct.prepare(2, &[0.0, 0.0]).is_ok());
    }
}

//! Helpers shared by the numeric tests of this binary: tensors on the autodiff device,
//! seeded values, and a finite-difference gradient check.

use burn::tensor::{Device, Tensor, TensorData};
use liverank_model::rng::SplitMix64;

pub fn device() -> Device {
    Device::flex().autodiff()
}

pub fn tensor<const D: usize>(v: &[f32], shape: [usize; D], track: bool) -> Tensor<D> {
    let t = Tensor::from_data(TensorData::new(v.to_vec(), shape), &device());
    if track { t.require_grad() } else { t }
}

pub fn vec_of<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32 tensor")
}

pub fn values(rng: &mut SplitMix64, n: usize, bound: f32) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(bound)).collect()
}

/// The PyTorch scripts' values: `sin(i·0.7 + off)·scale`.
pub fn sines(n: usize, off: f32, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| (i as f32 * 0.7 + off).sin() * scale)
        .collect()
}

/// Autodiff against central differences, coordinate by coordinate.
pub fn check<const D: usize>(
    name: &str,
    x: &[f32],
    shape: [usize; D],
    f: impl Fn(Tensor<D>) -> Tensor<1>,
) {
    let leaf = tensor(x, shape, true);
    let grads = f(leaf.clone()).backward();
    let analytic = vec_of(leaf.grad(&grads).expect("gradient reaches the input"));
    let eps = 2e-3f32;
    let eval = |v: &[f32]| -> f64 { f64::from(vec_of(f(tensor(v, shape, false)))[0]) };
    for i in 0..x.len() {
        let (mut plus, mut minus) = (x.to_vec(), x.to_vec());
        plus[i] += eps;
        minus[i] -= eps;
        let numeric = (eval(&plus) - eval(&minus)) / (2.0 * f64::from(eps));
        let a = f64::from(analytic[i]);
        let tol = 1e-3 + 2e-2 * a.abs().max(numeric.abs());
        assert!(
            (a - numeric).abs() <= tol,
            "{name}: d/dx[{i}] autodiff {a} vs finite differences {numeric}"
        );
    }
}

/// A scalar of an output: its sum against seeded random weights, so every output
/// coordinate's gradient is checked.
pub fn project<const D: usize>(out: Tensor<D>, seed: u64) -> Tensor<1> {
    let dims = out.dims();
    let n: usize = dims.iter().product();
    let r: Tensor<D> = tensor(&values(&mut SplitMix64::new(seed), n, 1.0), dims, false);
    (out * r).sum()
}

//! Transformer pieces of LiveForesighter: layer norm, multi-head self-attention, the
//! post-norm encoder layer (the layout of PyTorch's `nn.TransformerEncoderLayer` with
//! `norm_first = False`, ReLU, no dropout) and RevIN.

use burn::module::{Module, Param};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Tensor, TensorData};

use crate::layers::Dense;
use crate::rng::SplitMix64;

/// Epsilon of the layer norms (PyTorch's default).
pub const LAYER_NORM_EPS: f64 = 1e-5;
/// Epsilon of RevIN's standard deviation and of its affine inverse.
pub const REVIN_EPS: f64 = 1e-5;

/// `[B, T, d_in] → [B, T, d_out]` through a [`Dense`].
pub fn dense3(layer: &Dense, x: Tensor<3>) -> Tensor<3> {
    let [b, t, d] = x.dims();
    let out = layer.forward(x.reshape([b * t, d]));
    let d_out = out.dims()[1];
    out.reshape([b, t, d_out])
}

/// Layer normalisation over the last dimension with a learnable gain and shift.
#[derive(Module, Debug)]
pub struct LayerNorm {
    /// `[D]`, starts at 1.
    pub gamma: Param<Tensor<1>>,
    /// `[D]`, starts at 0.
    pub beta: Param<Tensor<1>>,
}

impl LayerNorm {
    /// Identity gain, zero shift.
    pub fn new(d: usize, device: &Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::ones([d], device)),
            beta: Param::from_tensor(Tensor::zeros([d], device)),
        }
    }

    /// `(x − mean) / √(var + ε) · γ + β` per row of the last dimension (biased variance).
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let mean = x.clone().mean_dim(2);
        let centred = x - mean;
        let var = centred.clone().powf_scalar(2.0).mean_dim(2);
        let normed = centred / var.add_scalar(LAYER_NORM_EPS).sqrt();
        normed * self.gamma.val().unsqueeze::<3>() + self.beta.val().unsqueeze::<3>()
    }
}

/// Multi-head scaled dot-product self-attention with an optional additive mask.
#[derive(Module, Debug)]
pub struct SelfAttention {
    /// Query projection.
    pub query: Dense,
    /// Key projection.
    pub key: Dense,
    /// Value projection.
    pub value: Dense,
    /// Output projection.
    pub out: Dense,
    /// Heads (divides D).
    pub heads: usize,
}

impl SelfAttention {
    /// Four `D → D` projections.
    pub fn new(d: usize, heads: usize, rng: &mut SplitMix64, device: &Device) -> Self {
        Self {
            query: Dense::new(d, d, rng, device),
            key: Dense::new(d, d, rng, device),
            value: Dense::new(d, d, rng, device),
            out: Dense::new(d, d, rng, device),
            heads,
        }
    }

    /// `x [B, T, D]`, `mask_bias` broadcastable to `[B, heads, T, T]` (0 where a query may
    /// look at a key, a large negative number where not) → `[B, T, D]`.
    pub fn forward(&self, x: Tensor<3>, mask_bias: Option<Tensor<4>>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let h = self.heads.max(1);
        let dh = d / h;
        let split = |y: Tensor<3>| y.reshape([b, t, h, dh]).swap_dims(1, 2);
        let q = split(dense3(&self.query, x.clone()));
        let k = split(dense3(&self.key, x.clone()));
        let v = split(dense3(&self.value, x));
        let mut scores = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar(1.0 / (dh as f64).sqrt());
        if let Some(bias) = mask_bias {
            scores = scores + bias;
        }
        let context = softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, t, d]);
        dense3(&self.out, context)
    }
}

/// Post-norm encoder layer: `x = LN₁(x + Attn(x)); x = LN₂(x + W₂ ReLU(W₁ x))`.
#[derive(Module, Debug)]
pub struct EncoderLayer {
    /// Self-attention.
    pub attention: SelfAttention,
    /// Norm after attention.
    pub norm1: LayerNorm,
    /// FFN input layer.
    pub ffn1: Dense,
    /// FFN output layer.
    pub ffn2: Dense,
    /// Norm after the FFN.
    pub norm2: LayerNorm,
}

impl EncoderLayer {
    /// A layer of width `d` with `heads` heads and FFN width `ffn`.
    pub fn new(d: usize, heads: usize, ffn: usize, rng: &mut SplitMix64, device: &Device) -> Self {
        Self {
            attention: SelfAttention::new(d, heads, rng, device),
            norm1: LayerNorm::new(d, device),
            ffn1: Dense::new(d, ffn, rng, device),
            ffn2: Dense::new(ffn, d, rng, device),
            norm2: LayerNorm::new(d, device),
        }
    }

    /// `[B, T, D] → [B, T, D]`.
    pub fn forward(&self, x: Tensor<3>, mask_bias: Option<Tensor<4>>) -> Tensor<3> {
        let x = self
            .norm1
            .forward(x.clone() + self.attention.forward(x, mask_bias));
        let ffn = dense3(&self.ffn2, relu(dense3(&self.ffn1, x.clone())));
        self.norm2.forward(x + ffn)
    }
}

/// The statistics RevIN takes from an input and gives back to the output.
#[derive(Clone, Debug)]
pub struct RevInStats {
    /// `[B, N, 1]` per-instance, per-series mean.
    pub mean: Tensor<3>,
    /// `[B, N, 1]` per-instance, per-series `√(var + ε)`.
    pub std: Tensor<3>,
}

/// Reversible instance normalisation (Kim et al. 2022) with a learnable per-series affine.
#[derive(Module, Debug)]
pub struct RevIn {
    /// `[N]`, starts at 1.
    pub gamma: Param<Tensor<1>>,
    /// `[N]`, starts at 0.
    pub beta: Param<Tensor<1>>,
}

impl RevIn {
    /// Identity affine for `series` series.
    pub fn new(series: usize, device: &Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::ones([series], device)),
            beta: Param::from_tensor(Tensor::zeros([series], device)),
        }
    }

    /// An affine with the given values (tests).
    pub fn from_values(gamma: Vec<f32>, beta: Vec<f32>, device: &Device) -> Self {
        let n = gamma.len();
        Self {
            gamma: Param::from_tensor(Tensor::from_data(TensorData::new(gamma, [n]), device)),
            beta: Param::from_tensor(Tensor::from_data(TensorData::new(beta, [n]), device)),
        }
    }

    fn affine(&self) -> (Tensor<3>, Tensor<3>) {
        let n = self.gamma.dims()[0];
        (
            self.gamma.val().reshape([1, n, 1]),
            self.beta.val().reshape([1, n, 1]),
        )
    }

    /// `x [B, N, L]` → `((x − μ)/σ · γ + β, (μ, σ))`, μ and σ over each row's L values
    /// (biased variance, σ = √(var + ε)).
    pub fn normalise(&self, x: Tensor<3>) -> (Tensor<3>, RevInStats) {
        let mean = x.clone().mean_dim(2);
        let centred = x - mean.clone();
        let std = centred
            .clone()
            .powf_scalar(2.0)
            .mean_dim(2)
            .add_scalar(REVIN_EPS)
            .sqrt();
        let (gamma, beta) = self.affine();
        let normed = centred / std.clone() * gamma + beta;
        (normed, RevInStats { mean, std })
    }

    /// The inverse on an output `y [B, N, H]`: `(y − β)/(γ + ε²) · σ + μ`.
    pub fn denormalise(&self, y: Tensor<3>, stats: &RevInStats) -> Tensor<3> {
        let (gamma, beta) = self.affine();
        (y - beta) / gamma.add_scalar(REVIN_EPS * REVIN_EPS) * stats.std.clone()
            + stats.mean.clone()
    }
}

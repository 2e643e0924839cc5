//! The product predictor (eq. 4–5): embeddings P, C1, C2, C3 of each product on sale,
//! concatenated per step → `Linear(4E → D)` + a learned position → causal Transformer →
//! softmax over c3 of the next product.
//!
//! Sequences are right-padded: position 0 is the oldest product read, and the causal mask
//! keeps every real position from seeing the padding after it, so no key-padding mask is
//! needed. Ids are taken modulo the table sizes (the simulator's ids fit the paper's sizes).

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::config::ProductConfig;
use super::layers::{EncoderLayer, LayerNorm, dense3};
use crate::layers::Dense;
use crate::rng::SplitMix64;

/// Additive attention bias on masked (future) keys.
pub const MASK_BIAS: f32 = -1e9;

/// Index tensors of a batch: `[B·T]` each, row-major by sequence.
#[derive(Clone, Debug)]
pub struct ProductIndex {
    /// Rows of P.
    pub product: Tensor<1, Int>,
    /// Rows of C1.
    pub c1: Tensor<1, Int>,
    /// Rows of C2.
    pub c2: Tensor<1, Int>,
    /// Rows of C3.
    pub c3: Tensor<1, Int>,
    /// Sequences.
    pub batch: usize,
    /// Positions per sequence.
    pub len: usize,
}

impl ProductIndex {
    /// From `[product, c1, c2, c3]` steps, `batch × len` row-major (padding: any ids).
    pub fn new(
        steps: &[[u64; 4]],
        batch: usize,
        len: usize,
        config: &ProductConfig,
        device: &Device,
    ) -> Self {
        let rows = [
            config.product_rows,
            config.c1_rows,
            config.c2_rows,
            config.c3_rows,
        ];
        let column = |k: usize| {
            let v: Vec<i64> = steps
                .iter()
                .map(|s| (s[k] % rows[k] as u64) as i64)
                .collect();
            Tensor::<1, Int>::from_data(TensorData::new(v, [steps.len()]), device)
        };
        Self {
            product: column(0),
            c1: column(1),
            c2: column(2),
            c3: column(3),
            batch,
            len,
        }
    }
}

/// The product branch's outputs.
#[derive(Clone, Debug)]
pub struct ProductOutput {
    /// `[B, T, C3]` logits of the c3 of the product after each position.
    pub logits: Tensor<3>,
    /// `[B, T, D]` the causal encoder's outputs (`E^Prod`).
    pub encoded: Tensor<3>,
}

/// A `[1, 1, T, T]` bias: 0 where key ≤ query, [`MASK_BIAS`] where the key is later.
pub fn causal_bias(len: usize, device: &Device) -> Tensor<4> {
    let v: Vec<f32> = (0..len * len)
        .map(|i| if i % len > i / len { MASK_BIAS } else { 0.0 })
        .collect();
    Tensor::from_data(TensorData::new(v, [1, 1, len, len]), device)
}

fn table(rows: usize, dim: usize, rng: &mut SplitMix64, device: &Device) -> Param<Tensor<2>> {
    let bound = 1.0 / (dim as f32).sqrt();
    let v: Vec<f32> = (0..rows * dim).map(|_| rng.uniform(bound)).collect();
    Param::from_tensor(Tensor::from_data(TensorData::new(v, [rows, dim]), device))
}

/// Embedding tables → projection → causal encoder → c3 head.
#[derive(Module, Debug)]
pub struct ProductNet {
    /// `P [product_rows, E]`.
    pub product: Param<Tensor<2>>,
    /// `C1 [c1_rows, E]`.
    pub c1: Param<Tensor<2>>,
    /// `C2 [c2_rows, E]`.
    pub c2: Param<Tensor<2>>,
    /// `C3 [c3_rows, E]`.
    pub c3: Param<Tensor<2>>,
    /// `4E → D`.
    pub project: Dense,
    /// `[max_len, D]` learned positions.
    pub position: Param<Tensor<2>>,
    /// Causal encoder layers.
    pub layers: Vec<EncoderLayer>,
    /// Final norm.
    pub norm: LayerNorm,
    /// `D → C3` logits.
    pub head: Dense,
}

impl ProductNet {
    /// A seeded model.
    pub fn new(config: &ProductConfig, seed: u64, device: &Device) -> Self {
        let mut rng = SplitMix64::new(seed ^ 0x5052_4f44);
        let (e, d) = (config.embed_dim, config.d_model);
        Self {
            product: table(config.product_rows, e, &mut rng, device),
            c1: table(config.c1_rows, e, &mut rng, device),
            c2: table(config.c2_rows, e, &mut rng, device),
            c3: table(config.c3_rows, e, &mut rng, device),
            project: Dense::new(4 * e, d, &mut rng, device),
            position: table(config.max_len, d, &mut rng, device),
            layers: (0..config.layers)
                .map(|_| EncoderLayer::new(d, config.heads, config.ffn, &mut rng, device))
                .collect(),
            norm: LayerNorm::new(d, device),
            head: Dense::new(d, config.c3_rows, &mut rng, device),
        }
    }

    /// The concatenated embeddings `Ī [B, T, 4E]` of a batch.
    pub fn embed(&self, index: &ProductIndex) -> Tensor<3> {
        let parts = vec![
            self.product.val().select(0, index.product.clone()),
            self.c1.val().select(0, index.c1.clone()),
            self.c2.val().select(0, index.c2.clone()),
            self.c3.val().select(0, index.c3.clone()),
        ];
        let x = Tensor::cat(parts, 1);
        let width = x.dims()[1];
        x.reshape([index.batch, index.len, width])
    }

    /// Runs the causal encoder over the embedded steps `[B, T, 4E]` (T ≤ max_len).
    pub fn forward_embedded(&self, x: Tensor<3>) -> ProductOutput {
        let encoded = self.encode_embedded(x);
        let logits = dense3(&self.head, encoded.clone());
        ProductOutput { logits, encoded }
    }

    /// The causal encoder's outputs `[B, T, D]` (the final norm included), without the head.
    pub fn encode_embedded(&self, x: Tensor<3>) -> Tensor<3> {
        let [_, t, _] = x.dims();
        let device = x.device();
        let d = self.position.dims()[1];
        let position = self.position.val().narrow(0, 0, t).reshape([1, t, d]);
        let mut h = dense3(&self.project, x) + position;
        let bias = causal_bias(t, &device);
        for layer in &self.layers {
            h = layer.forward(h, Some(bias.clone()));
        }
        self.norm.forward(h)
    }

    /// Embeds and encodes a batch.
    pub fn forward(&self, index: &ProductIndex) -> ProductOutput {
        self.forward_embedded(self.embed(index))
    }
}

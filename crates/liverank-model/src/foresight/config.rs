//! Shapes and training settings of the two LiveForesighter models.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// The statistic forecaster (RevIN → iTransformer → Linear(D→H) → de-RevIN) and the
/// product predictor (embeddings → causal Transformer → softmax over c3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForecastConfig {
    /// Buckets of history each series' token holds (L).
    pub lookback: usize,
    /// Buckets forecast (H; the paper's 5).
    pub horizon: usize,
    /// Width of a series token (D).
    pub d_model: usize,
    /// Attention heads (divides `d_model`).
    pub heads: usize,
    /// Encoder layers.
    pub layers: usize,
    /// Hidden width of the per-token feed-forward network.
    pub ffn: usize,
    /// Reversible instance normalisation on (off: the model sees log1p counts as they are).
    pub revin: bool,
    /// Adam learning rate of the forecaster.
    pub learning_rate: f64,
    /// Windows per step.
    pub batch_size: usize,
    /// Passes over the training windows.
    pub epochs: usize,
    /// Seed of the weights and the window order.
    pub seed: u64,
    /// The product predictor.
    pub product: ProductConfig,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        Self {
            lookback: 20,
            horizon: 5,
            d_model: 32,
            heads: 4,
            layers: 2,
            ffn: 64,
            revin: true,
            learning_rate: 1e-3,
            batch_size: 256,
            epochs: 6,
            seed: 7,
            product: ProductConfig::default(),
        }
    }
}

/// Shape and training of the next-product model (eq. 4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProductConfig {
    /// Rows of the product table P (product ids are taken modulo this).
    pub product_rows: usize,
    /// Rows of C1 (the paper's 50; ids modulo this).
    pub c1_rows: usize,
    /// Rows of C2 (the paper's 1,000).
    pub c2_rows: usize,
    /// Rows of C3 and classes of the softmax (the paper's 5,000).
    pub c3_rows: usize,
    /// Width of each of the four embeddings (the step's input is 4× this).
    pub embed_dim: usize,
    /// Width of the Transformer (D).
    pub d_model: usize,
    /// Attention heads.
    pub heads: usize,
    /// Causal encoder layers.
    pub layers: usize,
    /// Feed-forward width.
    pub ffn: usize,
    /// Products of the room's sequence the model reads (the newest ones).
    pub max_len: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Sequences per step.
    pub batch_size: usize,
    /// Passes over the training sequences.
    pub epochs: usize,
}

impl Default for ProductConfig {
    fn default() -> Self {
        Self {
            product_rows: 32_768,
            c1_rows: 50,
            c2_rows: 1_000,
            c3_rows: 5_000,
            embed_dim: 16,
            d_model: 32,
            heads: 2,
            layers: 2,
            ffn: 64,
            max_len: 20,
            learning_rate: 2e-3,
            batch_size: 64,
            epochs: 30,
        }
    }
}

impl ForecastConfig {
    /// Checks that the configuration builds a model.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(ModelError::Config(format!("forecast: {m}")));
        if self.lookback == 0 || self.horizon == 0 {
            return bad("lookback and horizon must be positive");
        }
        if self.d_model == 0 || self.heads == 0 || !self.d_model.is_multiple_of(self.heads) {
            return bad("d_model must be a positive multiple of heads");
        }
        if self.ffn == 0 || self.batch_size == 0 {
            return bad("ffn and batch_size must be positive");
        }
        if self.learning_rate.is_nan() || self.learning_rate <= 0.0 {
            return bad("learning_rate must be positive");
        }
        let p = &self.product;
        if p.product_rows == 0 || p.c1_rows == 0 || p.c2_rows == 0 || p.c3_rows == 0 {
            return bad("product table sizes must be positive");
        }
        if p.embed_dim == 0 || p.d_model == 0 || p.heads == 0 || !p.d_model.is_multiple_of(p.heads)
        {
            return bad("product.d_model must be a positive multiple of product.heads");
        }
        if p.ffn == 0 || p.max_len < 2 || p.batch_size == 0 {
            return bad("product.ffn, product.batch_size must be positive, max_len ≥ 2");
        }
        if p.learning_rate.is_nan() || p.learning_rate <= 0.0 {
            return bad("product.learning_rate must be positive");
        }
        Ok(())
    }
}

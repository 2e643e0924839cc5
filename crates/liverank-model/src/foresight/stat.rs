//! The statistic forecaster (eq. 2–3): RevIN → iTransformer → Linear(D→H) → de-RevIN.
//!
//! iTransformer (Liu et al. 2024) inverts the usual layout: each series' whole lookback
//! window is one token (`Linear(L → D)`), attention runs across the N series, and a per-token
//! FFN mixes time. No positional encoding: the series are a set, so permuting them permutes
//! the output.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::config::ForecastConfig;
use super::layers::{EncoderLayer, LayerNorm, RevIn, dense3};
use crate::layers::Dense;
use crate::rng::SplitMix64;

/// The forecaster's outputs.
#[derive(Clone, Debug)]
pub struct StatOutput {
    /// `[B, N, H]` in the input's units (after de-RevIN).
    pub forecast: Tensor<3>,
    /// `[B, N, D]` the encoder's series tokens (`E^Stat`).
    pub encoded: Tensor<3>,
}

/// RevIN → `Linear(L→D)` → encoder layers → LayerNorm → `Linear(D→H)` → de-RevIN.
#[derive(Module, Debug)]
pub struct StatForecaster {
    /// Reversible instance normalisation (absent when the configuration turns it off).
    pub revin: Option<RevIn>,
    /// One token per series: `L → D`.
    pub embed: Dense,
    /// Attention across series, FFN per token.
    pub layers: Vec<EncoderLayer>,
    /// Final norm.
    pub norm: LayerNorm,
    /// `D → H`.
    pub head: Dense,
}

impl StatForecaster {
    /// A seeded model for `series` series.
    pub fn new(config: &ForecastConfig, series: usize, device: &Device) -> Self {
        let mut rng = SplitMix64::new(config.seed ^ 0x5354_4154);
        let d = config.d_model;
        Self {
            revin: config.revin.then(|| RevIn::new(series, device)),
            embed: Dense::new(config.lookback, d, &mut rng, device),
            layers: (0..config.layers)
                .map(|_| EncoderLayer::new(d, config.heads, config.ffn, &mut rng, device))
                .collect(),
            norm: LayerNorm::new(d, device),
            head: Dense::new(d, config.horizon, &mut rng, device),
        }
    }

    /// `x [B, N, L]` (oldest bucket first) → the next H buckets of every series.
    pub fn forward(&self, x: Tensor<3>) -> StatOutput {
        let (x, stats) = match &self.revin {
            Some(r) => {
                let (n, s) = r.normalise(x);
                (n, Some(s))
            }
            None => (x, None),
        };
        let mut h = dense3(&self.embed, x);
        for layer in &self.layers {
            h = layer.forward(h, None);
        }
        let encoded = self.norm.forward(h);
        let out = dense3(&self.head, encoded.clone());
        let forecast = match (&self.revin, stats) {
            (Some(r), Some(s)) => r.denormalise(out, &s),
            _ => out,
        };
        StatOutput { forecast, encoded }
    }
}

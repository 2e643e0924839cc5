//! LiveForesighter in serving (`GET /v1/lives/{id}`): the statistic forecaster's next H
//! buckets from the room's last L closed buckets, and the product model's top-5 c3 of the
//! product after the room's latest one (eq. 3 and 5 at inference time).
//!
//! The input is what training reads (`liverank_train::forecast`): `log1p` of each series'
//! counts, series-major, oldest bucket first, left-padded with zeros where the room has
//! fewer than L closed buckets (decision foresight-2); the forecast is `expm1` of the
//! model's output, floored at 0, in counts per 30 s bucket.

use crate::error::{Result, ServeError};
use liverank_model::foresight::{ProductModel, StatModel};
use serde::{Deserialize, Serialize};
use std::path::Path;
use utoipa::ToSchema;

/// The two trained forecasters, as `liverank forecast train` writes them.
#[derive(Debug, Clone)]
pub struct Foresight {
    stat: StatModel,
    product: ProductModel,
}

/// The forecast of one room.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema, PartialEq)]
pub struct LiveForecast {
    /// Forecast buckets, the first one starting at the end of the newest closed bucket.
    pub horizon: usize,
    /// Closed buckets the forecaster read (L); fewer real ones were left-padded with 0.
    pub lookback: usize,
    /// One row per forecast bucket, one column per statistic series (`series` of the
    /// response), in counts per bucket.
    pub stats: Vec<Vec<f64>>,
    /// The most likely c3 classes (c3 id modulo the model's `c3_rows`) of the next product,
    /// best first; empty when the room has sold nothing yet.
    pub next_c3: Vec<NextC3>,
}

/// One predicted next-product category.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema, PartialEq)]
pub struct NextC3 {
    /// The c3 class.
    pub c3: u64,
    /// Its softmax probability.
    pub probability: f32,
}

impl Foresight {
    /// Both models.
    pub fn new(stat: StatModel, product: ProductModel) -> Self {
        Self { stat, product }
    }

    /// Reads `forecaster.bin` and `product.bin` of a `liverank forecast train` directory.
    pub fn open(dir: &Path) -> Result<Self> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path)
                .map_err(|e| ServeError::Config(format!("reading {}: {e}", path.display())))
        };
        let bad = |name: &str, e: liverank_model::ModelError| {
            ServeError::Config(format!("{}: {e}", dir.join(name).display()))
        };
        let stat = StatModel::from_bytes(&read("forecaster.bin")?)
            .map_err(|e| bad("forecaster.bin", e))?;
        let product =
            ProductModel::from_bytes(&read("product.bin")?).map_err(|e| bad("product.bin", e))?;
        Ok(Self { stat, product })
    }

    /// The forecast of a room from its closed buckets (`buckets × series`, oldest first)
    /// and its products on sale (oldest first). `None` when the room has no closed bucket
    /// or its rows are not `series` wide.
    pub fn forecast(&self, stats: &[u32], products: &[[u64; 4]]) -> Result<Option<LiveForecast>> {
        let n = self.stat.series();
        if stats.is_empty() || !stats.len().is_multiple_of(n) {
            return Ok(None);
        }
        let (l, h) = (self.stat.config().lookback, self.stat.config().horizon);
        let input = window(stats, n, l);
        let out = self.stat.forecast(&input, 1)?;
        let stats = (0..h)
            .map(|k| {
                (0..n)
                    .map(|s| f64::from(out.forecast[s * h + k]).exp_m1().max(0.0))
                    .collect()
            })
            .collect();
        let next_c3 = match self.product.predict_next(&[products])?.pop().flatten() {
            Some(next) => top_k(&next.probs, 5),
            None => Vec::new(),
        };
        Ok(Some(LiveForecast {
            horizon: h,
            lookback: l,
            stats,
            next_c3,
        }))
    }
}

/// The forecaster's `[N, L]` input from `buckets × n` counts: the newest `l` buckets,
/// `log1p`, series-major, left-padded with zeros.
fn window(stats: &[u32], n: usize, l: usize) -> Vec<f32> {
    let rows = stats.len() / n;
    let first = rows.saturating_sub(l);
    let pad = l - (rows - first);
    let mut out = Vec::with_capacity(n * l);
    for s in 0..n {
        out.extend(std::iter::repeat_n(0.0, pad));
        out.extend((first..rows).map(|r| (stats[r * n + s] as f32).ln_1p()));
    }
    out
}

/// The `k` largest probabilities, best first, ties by class.
fn top_k(probs: &[f32], k: usize) -> Vec<NextC3> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(k)
        .map(|c| NextC3 {
            c3: c as u64,
            probability: probs[c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_takes_the_newest_buckets_log1p_series_major_left_padded() {
        // Two series, three buckets: (0, 1), (2, 3), (4, 5).
        let stats = [0, 1, 2, 3, 4, 5];
        let ln = |v: f32| v.ln_1p();
        assert_eq!(
            window(&stats, 2, 2),
            vec![ln(2.0), ln(4.0), ln(3.0), ln(5.0)]
        );
        assert_eq!(
            window(&stats, 2, 4),
            vec![
                0.0,
                ln(0.0),
                ln(2.0),
                ln(4.0),
                0.0,
                ln(1.0),
                ln(3.0),
                ln(5.0)
            ]
        );
    }

    #[test]
    fn top_k_is_best_first_with_ties_by_class() {
        let got = top_k(&[0.1, 0.4, 0.1, 0.4], 3);
        let classes: Vec<u64> = got.iter().map(|c| c.c3).collect();
        assert_eq!(classes, vec![1, 3, 0]);
    }
}

//! Full-ranking evaluation: for every case the scorer scores ALL items (no sampled
//! negatives); the items of the case's history are removed from the ranking except the
//! target itself (a re-consumed item stays rankable); the target's rank is pessimistic:
//! `1 + #{other rankable items scoring ≥ the target}`, so a model gains nothing from ties
//! (a constant scorer ranks every target last). Then
//! `HR@K = [rank ≤ K]` and `NDCG@K = [rank ≤ K] / log2(rank + 1)`, averaged over cases.

use serde::{Deserialize, Serialize};

use crate::scorer::Scorer;
use crate::split::{Split, Stage};
use crate::{Error, Result};

/// Evaluation settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// The cutoffs K of HR@K and NDCG@K. Default `[10]`.
    pub cutoffs: Vec<usize>,
    /// Which held-out interaction to evaluate. Default `test`.
    pub stage: Stage,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            cutoffs: vec![10],
            stage: Stage::Test,
        }
    }
}

impl EvalConfig {
    /// Checks that there is at least one cutoff and none is 0.
    pub fn validate(&self) -> Result<()> {
        if self.cutoffs.is_empty() || self.cutoffs.contains(&0) {
            return Err(Error::InvalidConfig(
                "cutoffs must be a non-empty list of positive K".into(),
            ));
        }
        Ok(())
    }
}

/// HR and NDCG at one cutoff.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CutoffMetrics {
    /// The cutoff.
    pub k: usize,
    /// Hit rate: share of cases whose target ranks within K.
    pub hr: f64,
    /// Mean NDCG@K (one relevant item: 1 / log2(rank + 1) within K).
    pub ndcg: f64,
}

/// The result of one evaluation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalReport {
    /// The scorer's name.
    pub scorer: String,
    /// The stage evaluated.
    pub stage: Stage,
    /// Cases evaluated (users with ≥ 3 interactions).
    pub cases: usize,
    /// Items ranked over.
    pub items: usize,
    /// Mean rank of the target (1 = best).
    pub mean_rank: f64,
    /// One entry per configured cutoff, in configuration order.
    pub metrics: Vec<CutoffMetrics>,
}

impl std::fmt::Display for EvalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stage = match self.stage {
            Stage::Validation => "validation",
            Stage::Test => "test",
        };
        write!(
            f,
            "{} ({stage}, {} users, full ranking over {} items):",
            self.scorer, self.cases, self.items
        )?;
        for m in &self.metrics {
            write!(f, " HR@{k} {:.4} NDCG@{k} {:.4}", m.hr, m.ndcg, k = m.k)?;
        }
        write!(f, ", mean rank {:.1}", self.mean_rank)
    }
}

/// The pessimistic 1-based rank of `target` among the items not `excluded`: one plus the
/// number of other rankable items scoring at least as high. `excluded[i]` marks removed
/// items; the target is never removed. Errors on a NaN score of a rankable item.
pub fn rank_of_target(
    scores: &[f32],
    target: u32,
    excluded: &[bool],
) -> std::result::Result<usize, usize> {
    let target_score = scores[target as usize];
    if target_score.is_nan() {
        return Err(target as usize);
    }
    let mut rank = 1usize;
    for (item, (&score, &skip)) in scores.iter().zip(excluded).enumerate() {
        if skip || item == target as usize {
            continue;
        }
        if score.is_nan() {
            return Err(item);
        }
        if score >= target_score {
            rank += 1;
        }
    }
    Ok(rank)
}

/// Evaluates `scorer` on every case of `config.stage`, by ascending user.
pub fn evaluate(split: &Split<'_>, scorer: &dyn Scorer, config: &EvalConfig) -> Result<EvalReport> {
    config.validate()?;
    let items = split.num_items();
    let mut scores = vec![0.0f32; items];
    let mut excluded = vec![false; items];
    let mut hits = vec![0usize; config.cutoffs.len()];
    let mut gains = vec![0.0f64; config.cutoffs.len()];
    let mut rank_sum = 0.0f64;
    let mut cases = 0usize;
    for case in split.cases(config.stage) {
        scores.fill(0.0);
        scorer.score(case.user, case.history, &mut scores)?;
        for &item in case.history {
            excluded[item as usize] = true;
        }
        excluded[case.target as usize] = false;
        let rank =
            rank_of_target(&scores, case.target, &excluded).map_err(|item| Error::Scorer {
                scorer: scorer.name().to_owned(),
                reason: format!("NaN score for item {item} (user {})", case.user),
            })?;
        for &item in case.history {
            excluded[item as usize] = false;
        }
        cases += 1;
        rank_sum += rank as f64;
        for (c, &k) in config.cutoffs.iter().enumerate() {
            if rank <= k {
                hits[c] += 1;
                gains[c] += 1.0 / ((rank + 1) as f64).log2();
            }
        }
    }
    let mean = |x: f64| if cases == 0 { 0.0 } else { x / cases as f64 };
    Ok(EvalReport {
        scorer: scorer.name().to_owned(),
        stage: config.stage,
        cases,
        items,
        mean_rank: mean(rank_sum),
        metrics: config
            .cutoffs
            .iter()
            .enumerate()
            .map(|(c, &k)| CutoffMetrics {
                k,
                hr: mean(hits[c] as f64),
                ndcg: mean(gains[c]),
            })
            .collect(),
    })
}

//! The interface a recall model is evaluated through, and the two baselines every model is
//! measured against: global popularity and item-kNN over user co-occurrence.

use serde::{Deserialize, Serialize};

use crate::split::Split;
use crate::{Error, Result};

/// A recall model under evaluation: scores every item for one user.
pub trait Scorer {
    /// The name shown in reports.
    fn name(&self) -> &str;

    /// Writes one score per item into `scores` (its length is the number of items; it
    /// arrives zeroed) for `user`, whose interactions before the target are `history`,
    /// oldest first. Higher is better; NaN is an error, infinities are allowed.
    fn score(&self, user: u32, history: &[u32], scores: &mut [f32]) -> Result<()>;
}

/// Global popularity: an item's number of training interactions (all users' training
/// prefixes); the same ranking for everyone.
#[derive(Clone, Debug)]
pub struct Popularity {
    counts: Vec<f32>,
}

impl Popularity {
    /// Counts the training interactions of `split`.
    pub fn fit(split: &Split<'_>) -> Self {
        let mut counts = vec![0.0f32; split.num_items()];
        for user in 0..split.num_users() as u32 {
            for &item in split.train(user) {
                counts[item as usize] += 1.0;
            }
        }
        Self { counts }
    }

    /// The training interaction count of each item.
    pub fn counts(&self) -> &[f32] {
        &self.counts
    }
}

impl Scorer for Popularity {
    fn name(&self) -> &str {
        "popularity"
    }

    fn score(&self, _user: u32, _history: &[u32], scores: &mut [f32]) -> Result<()> {
        if scores.len() != self.counts.len() {
            return Err(length_error(self.name(), scores.len(), self.counts.len()));
        }
        scores.copy_from_slice(&self.counts);
        Ok(())
    }
}

/// Item-kNN settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ItemKnnConfig {
    /// Neighbours kept per item (the most similar). Default 200.
    pub neighbours: usize,
    /// Only the last this many distinct history items vote; `None`: all. Default `None`.
    pub history: Option<usize>,
}

impl Default for ItemKnnConfig {
    fn default() -> Self {
        Self {
            neighbours: 200,
            history: None,
        }
    }
}

impl ItemKnnConfig {
    /// Checks the ranges (`neighbours` ≥ 1, `history` ≥ 1).
    pub fn validate(&self) -> Result<()> {
        if self.neighbours == 0 || self.history == Some(0) {
            return Err(Error::InvalidConfig(
                "item-kNN neighbours and history must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Item-kNN over user co-occurrence: `sim(i, j) = |U_i ∩ U_j| / sqrt(|U_i| |U_j|)` with
/// `U_i` the users who interacted with `i` in training (binary, repeats counted once),
/// each item keeping its `neighbours` most similar items (ties by smaller id). A user's
/// score for `j` is the sum of `sim(i, j)` over the distinct items `i` of the history.
///
/// Fitting costs Σ over users of (distinct training items)², dense per-item accumulators.
#[derive(Clone, Debug)]
pub struct ItemKnn {
    config: ItemKnnConfig,
    offsets: Vec<usize>,
    neighbours: Vec<(u32, f32)>,
}

impl ItemKnn {
    /// Fits the similarities on the training prefixes of `split`.
    pub fn fit(split: &Split<'_>, config: ItemKnnConfig) -> Result<Self> {
        config.validate()?;
        let items = split.num_items();
        // Distinct training items per user, and users per item (CSR both).
        let mut user_items: Vec<Vec<u32>> = Vec::with_capacity(split.num_users());
        let mut degree = vec![0usize; items];
        for user in 0..split.num_users() as u32 {
            let mut distinct = split.train(user).to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            for &i in &distinct {
                degree[i as usize] += 1;
            }
            user_items.push(distinct);
        }
        let mut item_users: Vec<Vec<u32>> = degree.iter().map(|&d| Vec::with_capacity(d)).collect();
        for (user, distinct) in user_items.iter().enumerate() {
            for &i in distinct {
                item_users[i as usize].push(user as u32);
            }
        }
        let mut co = vec![0u32; items];
        let mut touched: Vec<u32> = Vec::new();
        let mut offsets = Vec::with_capacity(items + 1);
        offsets.push(0);
        let mut neighbours = Vec::new();
        for i in 0..items {
            for &user in &item_users[i] {
                for &j in &user_items[user as usize] {
                    if j as usize != i {
                        if co[j as usize] == 0 {
                            touched.push(j);
                        }
                        co[j as usize] += 1;
                    }
                }
            }
            let mut row: Vec<(u32, f32)> = touched
                .iter()
                .map(|&j| {
                    let norm = ((degree[i] * degree[j as usize]) as f64).sqrt();
                    (j, (f64::from(co[j as usize]) / norm) as f32)
                })
                .collect();
            row.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            row.truncate(config.neighbours);
            neighbours.extend_from_slice(&row);
            offsets.push(neighbours.len());
            for &j in &touched {
                co[j as usize] = 0;
            }
            touched.clear();
        }
        Ok(Self {
            config,
            offsets,
            neighbours,
        })
    }

    /// The kept neighbours of `item` with their similarity, most similar first.
    pub fn neighbours_of(&self, item: u32) -> &[(u32, f32)] {
        let item = item as usize;
        if item + 1 >= self.offsets.len() {
            return &[];
        }
        &self.neighbours[self.offsets[item]..self.offsets[item + 1]]
    }
}

impl Scorer for ItemKnn {
    fn name(&self) -> &str {
        "item_knn"
    }

    fn score(&self, _user: u32, history: &[u32], scores: &mut [f32]) -> Result<()> {
        let items = self.offsets.len() - 1;
        if scores.len() != items {
            return Err(length_error(self.name(), scores.len(), items));
        }
        // Distinct history items, newest first, limited to the window.
        let mut seen = std::collections::HashSet::with_capacity(history.len());
        let mut voters: Vec<u32> = Vec::new();
        for &item in history.iter().rev() {
            if seen.insert(item) {
                voters.push(item);
                if self.config.history.is_some_and(|h| voters.len() >= h) {
                    break;
                }
            }
        }
        for item in voters {
            for &(j, sim) in self.neighbours_of(item) {
                scores[j as usize] += sim;
            }
        }
        Ok(())
    }
}

/// The bridge from an embedding model to the protocol: an item's score is its best inner
/// product with one of the user's interest vectors, computed from the history by
/// `user_vectors` (one vector for a two-tower model, several for MIND, the fused one for
/// SDM). Item vectors are a row-major `items × dim` table.
pub struct VectorScorer<F> {
    name: String,
    dim: usize,
    items: Vec<f32>,
    user_vectors: F,
}

impl<F> std::fmt::Debug for VectorScorer<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorScorer")
            .field("name", &self.name)
            .field("dim", &self.dim)
            .field("items", &(self.items.len() / self.dim.max(1)))
            .finish_non_exhaustive()
    }
}

impl<F> VectorScorer<F>
where
    F: Fn(u32, &[u32]) -> Result<Vec<Vec<f32>>>,
{
    /// A scorer named `name` over `item_vectors` (`items × dim`, row-major).
    pub fn new(
        name: impl Into<String>,
        dim: usize,
        item_vectors: Vec<f32>,
        user_vectors: F,
    ) -> Result<Self> {
        let name = name.into();
        if dim == 0 || !item_vectors.len().is_multiple_of(dim) {
            return Err(Error::Scorer {
                scorer: name,
                reason: format!("{} item values are not rows of {dim}", item_vectors.len()),
            });
        }
        Ok(Self {
            name,
            dim,
            items: item_vectors,
            user_vectors,
        })
    }
}

impl<F> Scorer for VectorScorer<F>
where
    F: Fn(u32, &[u32]) -> Result<Vec<Vec<f32>>>,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, user: u32, history: &[u32], scores: &mut [f32]) -> Result<()> {
        let items = self.items.len() / self.dim;
        if scores.len() != items {
            return Err(length_error(&self.name, scores.len(), items));
        }
        let interests = (self.user_vectors)(user, history)?;
        if interests.is_empty() || interests.iter().any(|v| v.len() != self.dim) {
            return Err(Error::Scorer {
                scorer: self.name.clone(),
                reason: format!(
                    "user {user}: expected one or more interest vectors of {} values",
                    self.dim
                ),
            });
        }
        for (score, item) in scores.iter_mut().zip(self.items.chunks_exact(self.dim)) {
            *score = interests
                .iter()
                .map(|u| u.iter().zip(item).map(|(a, b)| a * b).sum::<f32>())
                .fold(f32::NEG_INFINITY, f32::max);
        }
        Ok(())
    }
}

fn length_error(scorer: &str, got: usize, items: usize) -> Error {
    Error::Scorer {
        scorer: scorer.to_owned(),
        reason: format!("score buffer has {got} entries, the model knows {items} items"),
    }
}

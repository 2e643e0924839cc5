//! Two-tower vector recall (YouTube-DNN; the NetEase seed's "real-time interest vector"):
//! the user tower pools the embeddings of the user's recent interactions (the click
//! sequence) and passes them through an MLP; the item tower is a second embedding table
//! through one linear layer; training is an in-batch sampled softmax with the logQ
//! correction (each logit minus the log of its item's sampling frequency, so popular items
//! are not over-penalised as negatives).
//!
//! With `interests > 0` the user tower is MIND's (Li et al. 2019, the seed's multi-interest
//! recall): the behaviours `S eᵢ` are routed into up to `interests` capsules by dynamic
//! routing ([`dynamic_routing`]), their count adapted to the history length
//! (`max(1, min(K, ⌊log₂ n⌋))`), trained through label-aware attention
//! ([`label_aware_attention`]) and served as one vector per interest (an item scores its
//! best inner product with any of them).
//!
//! Items are dense indices `0..items` (an interaction log's item ids). At serving or
//! evaluation time the user vectors are recomputed from the live history by
//! [`TwoTowerModel::user_vectors`].

use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::{log_softmax, relu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::layers::{Dense, PAD_BIAS};
use crate::rng::SplitMix64;

/// Settings of the two-tower model and its training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwoTowerConfig {
    /// Width of the embeddings and of both towers' outputs.
    pub dim: usize,
    /// Hidden width of the user tower's MLP.
    pub hidden: usize,
    /// Most recent interactions the user tower pools.
    pub history: usize,
    /// Examples per in-batch softmax.
    pub batch: usize,
    /// Passes over the sampled examples.
    pub epochs: usize,
    /// Examples drawn (without replacement, reshuffled) per epoch; 0 = all.
    pub examples_per_epoch: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Subtract log q(item) from each logit (the logQ correction).
    pub logq: bool,
    /// Seed of the init and the example order.
    pub seed: u64,
    /// MIND's interest capsules at most (0 = the two-tower's mean pooling).
    pub interests: usize,
    /// Dynamic-routing iterations of MIND.
    pub routing_iterations: usize,
    /// Exponent p of MIND's label-aware attention, `softmax((c_k · v)^p)`.
    pub label_pow: u32,
}

impl Default for TwoTowerConfig {
    fn default() -> Self {
        Self {
            dim: 32,
            hidden: 64,
            history: 20,
            batch: 256,
            // Measured on `small`'s video plays: 0.003 barely moves the loss in 3 epochs,
            // 0.03 diverges; 12 epochs of 200 k examples at 0.01 take 43 s on 2 cores.
            epochs: 12,
            examples_per_epoch: 200_000,
            learning_rate: 0.01,
            logq: true,
            seed: 7,
            interests: 0,
            routing_iterations: 3,
            label_pow: 2,
        }
    }
}

impl TwoTowerConfig {
    /// Checks widths and sizes are positive and the rate finite.
    pub fn validate(&self) -> Result<()> {
        if self.interests > 0 && self.routing_iterations == 0 {
            return Err(ModelError::Config(
                "MIND needs at least one routing iteration".into(),
            ));
        }
        if self.dim == 0 || self.hidden == 0 || self.history == 0 || self.batch < 2 {
            return Err(ModelError::Config(
                "two-tower dim, hidden and history must be positive and batch ≥ 2".into(),
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(ModelError::Config(format!(
                "two-tower learning_rate must be positive, not {}",
                self.learning_rate
            )));
        }
        Ok(())
    }
}

/// The two towers.
#[derive(Module, Debug)]
pub struct TwoTowerNet {
    /// `[items + 1, D]`: the user tower's item embeddings; row `items` is padding.
    pub input: Param<Tensor<2>>,
    /// `[items, D]`: the item tower's embeddings.
    pub output: Param<Tensor<2>>,
    /// User tower: `D → hidden` (ReLU) `→ D`.
    pub user_hidden: Dense,
    /// The user tower's output layer.
    pub user_out: Dense,
    /// Item tower: `D → D`.
    pub item: Dense,
    /// MIND's shared bilinear map S of the behaviours (one layer with `interests > 0`,
    /// none otherwise).
    pub bilinear: Vec<Dense>,
    /// MIND's fixed initial routing logits `[K, history]`, drawn once from the seed (the
    /// paper's random init, not learnt).
    #[module(skip)]
    pub routing_init: Vec<f32>,
    /// K (0 = mean pooling).
    #[module(skip)]
    pub interests: usize,
    /// Routing iterations.
    #[module(skip)]
    pub iterations: usize,
}

impl TwoTowerNet {
    fn new(items: usize, config: &TwoTowerConfig, device: &Device) -> Self {
        let mut rng = SplitMix64::new(config.seed ^ 0x7477_6f74_6f77_6572);
        let d = config.dim;
        let bound = 1.0 / (d as f32).sqrt();
        let mut table = |rows: usize| {
            let v: Vec<f32> = (0..rows * d).map(|_| rng.uniform(bound)).collect();
            Param::from_tensor(Tensor::from_data(TensorData::new(v, [rows, d]), device))
        };
        let (input, output) = (table(items + 1), table(items));
        let user_hidden = Dense::new(d, config.hidden, &mut rng, device);
        let user_out = Dense::new(config.hidden, d, &mut rng, device);
        let item = Dense::new(d, d, &mut rng, device);
        let k = config.interests;
        let bilinear = (0..k.min(1))
            .map(|_| Dense::new(d, d, &mut rng, device))
            .collect();
        let routing_init = (0..k * config.history).map(|_| rng.uniform(1.0)).collect();
        Self {
            input,
            output,
            user_hidden,
            user_out,
            item,
            bilinear,
            routing_init,
            interests: k,
            iterations: config.routing_iterations,
        }
    }

    /// User vectors `[B, D]` of histories `[B, n]` (padding = the padding row) with their
    /// lengths: the mean of the real positions' embeddings through the MLP.
    pub fn users(&self, history: Tensor<2, Int>, lengths: &[usize]) -> Tensor<2> {
        let [b, n] = history.dims();
        let d = self.input.dims()[1];
        let device = history.device();
        let rows = self
            .input
            .val()
            .select(0, history.reshape([b * n]))
            .reshape([b, n, d]);
        let scale: Vec<f32> = lengths.iter().map(|&l| 1.0 / l.max(1) as f32).collect();
        let scale = Tensor::<2>::from_data(TensorData::new(scale, [b, 1]), &device);
        // Padding rows are masked by the sum over real positions only.
        let mask: Vec<f32> = lengths
            .iter()
            .flat_map(|&l| (0..n).map(move |k| if k < l { 1.0 } else { 0.0 }))
            .collect();
        let mask = Tensor::<3>::from_data(TensorData::new(mask, [b, n, 1]), &device);
        let mean = (rows * mask).sum_dim(1).reshape([b, d]) * scale;
        self.user_out.forward(relu(self.user_hidden.forward(mean)))
    }

    /// MIND's interest capsules `[B, K, D]` of histories `[B, n]` with their lengths, and
    /// the capsule bias `[B, K]` (0 on a user's first `max(1, min(K, ⌊log₂ len⌋))`
    /// capsules, a large negative number on the others).
    pub fn capsules(&self, history: Tensor<2, Int>, lengths: &[usize]) -> (Tensor<3>, Tensor<2>) {
        let [b, n] = history.dims();
        let d = self.input.dims()[1];
        let k = self.interests;
        let device = history.device();
        let rows = self.input.val().select(0, history.reshape([b * n]));
        let behaviours = match self.bilinear.first() {
            Some(s) => s.forward(rows),
            None => rows,
        }
        .reshape([b, n, d]);
        let valid: Vec<f32> = lengths
            .iter()
            .flat_map(|&l| (0..n).map(move |t| if t < l { 1.0 } else { 0.0 }))
            .collect();
        let valid = Tensor::<2>::from_data(TensorData::new(valid, [b, n]), &device);
        let bias: Vec<f32> = lengths
            .iter()
            .flat_map(|&l| {
                let active = adaptive_interests(l, k);
                (0..k).map(move |j| if j < active { 0.0 } else { PAD_BIAS })
            })
            .collect();
        let bias = Tensor::<2>::from_data(TensorData::new(bias, [b, k]), &device);
        let init =
            Tensor::<2>::from_data(TensorData::new(self.routing_init.clone(), [k, n]), &device);
        let caps = dynamic_routing(behaviours, valid, bias.clone(), init, self.iterations);
        (caps, bias)
    }

    /// Item vectors `[M, D]` of item indices `[M]`.
    pub fn items(&self, items: Tensor<1, Int>) -> Tensor<2> {
        self.item.forward(self.output.val().select(0, items))
    }
}

/// MIND's interest count for a history of `len` items: `max(1, min(k, ⌊log₂ len⌋))`.
pub fn adaptive_interests(len: usize, k: usize) -> usize {
    let log2 = usize::BITS - len.max(1).leading_zeros() - 1;
    (log2 as usize).clamp(1, k.max(1))
}

/// `squash(z) = ‖z‖² / (1 + ‖z‖²) · z / ‖z‖` over the last axis (`[B, K, D]`).
pub fn squash(z: Tensor<3>) -> Tensor<3> {
    let sq = (z.clone() * z.clone()).sum_dim(2);
    let norm = sq.clone().add_scalar(1e-12).sqrt();
    z * (sq.clone() / (sq.add_scalar(1.0) * norm))
}

/// MIND's behaviour-to-interest dynamic routing: `behaviours [B, n, D]` (already `S eᵢ`),
/// `valid [B, n]` (1 = a real behaviour), `capsule_bias [B, K]`, `init [K, n]` the
/// initial logits. Each iteration: `w = softmax_K(b + bias) ⊙ valid`, `c = squash(w ·
/// behaviours)`, then `b += c · behavioursᵀ` (not after the last). Returns `c [B, K, D]`.
pub fn dynamic_routing(
    behaviours: Tensor<3>,
    valid: Tensor<2>,
    capsule_bias: Tensor<2>,
    init: Tensor<2>,
    iterations: usize,
) -> Tensor<3> {
    let [b, n, _] = behaviours.dims();
    let [k, _] = init.dims();
    let mut logits = init.reshape([1, k, n]).repeat_dim(0, b);
    let bias = capsule_bias.reshape([b, k, 1]);
    let valid = valid.reshape([b, 1, n]);
    let mut caps = None;
    for it in 0..iterations.max(1) {
        let w = softmax(logits.clone() + bias.clone(), 1) * valid.clone();
        let c = squash(w.matmul(behaviours.clone()));
        if it + 1 < iterations {
            logits = logits + c.clone().matmul(behaviours.clone().swap_dims(1, 2));
        }
        caps = Some(c);
    }
    caps.unwrap_or_else(|| Tensor::zeros([b, k, behaviours.dims()[2]], &behaviours.device()))
}

/// MIND's label-aware attention: the user vector for target `v [B, D]` is
/// `Σ_k softmax_k((c_k · v)^p + bias_k) c_k` over the interests `[B, K, D]`.
pub fn label_aware_attention(
    interests: Tensor<3>,
    target: Tensor<2>,
    capsule_bias: Tensor<2>,
    pow: u32,
) -> Tensor<2> {
    let [b, k, d] = interests.dims();
    let s = interests
        .clone()
        .matmul(target.reshape([b, d, 1]))
        .reshape([b, k]);
    let mut p = Tensor::<2>::ones([b, k], &s.device());
    for _ in 0..pow {
        p = p * s.clone();
    }
    let w = softmax(p + capsule_bias, 1);
    (interests * w.reshape([b, k, 1]))
        .sum_dim(1)
        .reshape([b, d])
}

/// The in-batch sampled softmax with the logQ correction: row i's positive is column i;
/// `logits[i][j] = uᵢ·vⱼ − log qⱼ + bias[i][j]`, loss `−mean_i log softmax_j(logits)[i][i]`.
/// `bias` masks the columns that hold row i's own item again (false negatives).
/// `u`, `v`: `[B, D]`; `log_q`: `[B]`; `bias`: `[B, B]`.
pub fn sampled_softmax_logq(
    u: Tensor<2>,
    v: Tensor<2>,
    log_q: Tensor<1>,
    bias: Tensor<2>,
) -> Tensor<1> {
    let [b, _] = u.dims();
    let device = u.device();
    let logits = u.matmul(v.transpose()) - log_q.reshape([1, b]) + bias;
    let log_p = log_softmax(logits, 1);
    (log_p * Tensor::<2>::eye(b, &device))
        .sum()
        .neg()
        .div_scalar(b as f64)
}

/// The `[B, B]` bias of [`sampled_softmax_logq`] for a batch's targets: a large negative
/// number where column j holds row i's own item again (j ≠ i), 0 elsewhere (the diagonal
/// is each row's positive).
pub fn repeat_bias(targets: &[u32]) -> Vec<f32> {
    let b = targets.len();
    let mut bias = vec![0.0f32; b * b];
    for (i, ti) in targets.iter().enumerate() {
        for (j, tj) in targets.iter().enumerate() {
            if i != j && ti == tj {
                bias[i * b + j] = PAD_BIAS;
            }
        }
    }
    bias
}

/// A trained model for inference: the tables and weights as plain f32.
#[derive(Clone, Debug)]
pub struct TwoTowerModel {
    config: TwoTowerConfig,
    items: usize,
    input: Vec<f32>,
    hidden: (Vec<f32>, Vec<f32>),
    out: (Vec<f32>, Vec<f32>),
    item_vectors: Vec<f32>,
    /// MIND's network for the capsules at inference (`interests > 0`).
    capsule_net: Option<TwoTowerNet>,
    /// Mean training loss of each epoch.
    pub epoch_losses: Vec<f32>,
}

fn host(t: Tensor<2>) -> Result<Vec<f32>> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| ModelError::Shape(format!("tensor data: {e:?}")))
}

fn host1(t: Tensor<1>) -> Result<Vec<f32>> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| ModelError::Shape(format!("tensor data: {e:?}")))
}

/// `x W + b`, row-major `W [n_in, n_out]`.
fn affine(x: &[f32], (w, b): &(Vec<f32>, Vec<f32>)) -> Vec<f32> {
    let out = b.len();
    let mut y = b.clone();
    for (i, xi) in x.iter().enumerate() {
        for (j, yj) in y.iter_mut().enumerate() {
            *yj += xi * w[i * out + j];
        }
    }
    y
}

impl TwoTowerModel {
    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.config.dim
    }

    /// The item tower's vectors, `items × dim` row-major.
    pub fn item_vectors(&self) -> &[f32] {
        &self.item_vectors
    }

    /// The user's interest vectors from a history (oldest first; the last `history` known
    /// items): one for the two-tower, MIND's active capsules otherwise.
    pub fn user_vectors(&self, history: &[u32]) -> Result<Vec<Vec<f32>>> {
        let Some(net) = &self.capsule_net else {
            return Ok(vec![self.user_vector(history)]);
        };
        let n = self.config.history;
        let mut recent: Vec<u32> = history
            .iter()
            .rev()
            .copied()
            .filter(|&i| (i as usize) < self.items)
            .take(n)
            .collect();
        recent.reverse();
        let len = recent.len();
        let mut ids: Vec<i64> = recent.iter().map(|&i| i64::from(i)).collect();
        ids.extend(std::iter::repeat_n(self.items as i64, n - len));
        let device = Device::flex();
        let (caps, _) = net.capsules(
            Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n]), &device),
            &[len],
        );
        let d = self.config.dim;
        let all = host(caps.reshape([self.config.interests, d]))?;
        let active = adaptive_interests(len, self.config.interests);
        Ok(all
            .chunks_exact(d)
            .take(active)
            .map(<[f32]>::to_vec)
            .collect())
    }

    /// The two-tower's user vector of a history (oldest first; the last `history` items
    /// are pooled, unknown indices skipped). An empty history pools nothing (a zero mean).
    pub fn user_vector(&self, history: &[u32]) -> Vec<f32> {
        let d = self.config.dim;
        let recent: Vec<usize> = history
            .iter()
            .rev()
            .map(|&i| i as usize)
            .filter(|&i| i < self.items)
            .take(self.config.history)
            .collect();
        let mut mean = vec![0.0f32; d];
        for &i in &recent {
            for (m, x) in mean.iter_mut().zip(&self.input[i * d..(i + 1) * d]) {
                *m += x;
            }
        }
        let n = recent.len().max(1) as f32;
        mean.iter_mut().for_each(|m| *m /= n);
        let h: Vec<f32> = affine(&mean, &self.hidden)
            .into_iter()
            .map(|x| x.max(0.0))
            .collect();
        affine(&h, &self.out)
    }
}

/// Trains the two towers on per-user sequences of item indices (oldest first; every
/// position after the first is an example whose history is the positions before it) and
/// returns the model. `on_epoch` sees each epoch's mean loss.
pub fn train_two_tower(
    sequences: &[&[u32]],
    items: usize,
    config: &TwoTowerConfig,
    mut on_epoch: impl FnMut(usize, f32),
) -> Result<TwoTowerModel> {
    config.validate()?;
    if items == 0 {
        return Err(ModelError::Config("two-tower: no items".into()));
    }
    let device = Device::flex().autodiff();
    let mut net = TwoTowerNet::new(items, config, &device);
    let mut optimizer = AdamConfig::new().with_epsilon(1e-8).init();
    // Examples (sequence, position) and the targets' frequencies q.
    let mut examples: Vec<(u32, u32)> = Vec::new();
    let mut counts = vec![0u64; items];
    for (s, seq) in sequences.iter().enumerate() {
        for (t, &item) in seq.iter().enumerate().skip(1) {
            if (item as usize) < items {
                examples.push((s as u32, t as u32));
                counts[item as usize] += 1;
            }
        }
    }
    if examples.len() < config.batch {
        return Err(ModelError::Config(format!(
            "two-tower: {} examples, fewer than one batch of {}",
            examples.len(),
            config.batch
        )));
    }
    let total = examples.len() as f64;
    let log_q: Vec<f32> = counts
        .iter()
        .map(|&c| ((c.max(1) as f64) / total).ln() as f32)
        .collect();
    let mut rng = SplitMix64::new(config.seed);
    let n = config.history;
    let mut epoch_losses = Vec::with_capacity(config.epochs);
    for epoch in 0..config.epochs {
        // Fisher–Yates with the seeded generator: the same order for the same config.
        for i in (1..examples.len()).rev() {
            examples.swap(i, rng.below(i + 1));
        }
        let take = match config.examples_per_epoch {
            0 => examples.len(),
            k => k.min(examples.len()),
        };
        let (mut sum, mut steps) = (0.0f64, 0usize);
        for chunk in examples[..take].chunks_exact(config.batch) {
            let b = chunk.len();
            let (mut history, mut lengths, mut targets) = (
                Vec::with_capacity(b * n),
                Vec::with_capacity(b),
                Vec::with_capacity(b),
            );
            for &(s, t) in chunk {
                let seq = sequences[s as usize];
                let t = t as usize;
                let start = t.saturating_sub(n);
                let past: Vec<u32> = seq[start..t]
                    .iter()
                    .copied()
                    .filter(|&i| (i as usize) < items)
                    .collect();
                lengths.push(past.len());
                history.extend(past.iter().map(|&i| i64::from(i)));
                history.extend(std::iter::repeat_n(items as i64, n - past.len()));
                targets.push(seq[t]);
            }
            let bias = repeat_bias(&targets);
            let q: Vec<f32> = targets
                .iter()
                .map(|&i| if config.logq { log_q[i as usize] } else { 0.0 })
                .collect();
            let history = Tensor::<2, Int>::from_data(TensorData::new(history, [b, n]), &device);
            let target_index = Tensor::<1, Int>::from_data(
                TensorData::new(targets.iter().map(|&i| i64::from(i)).collect(), [b]),
                &device,
            );
            let targets_v = net.items(target_index);
            let users = if net.interests > 0 {
                let (caps, bias) = net.capsules(history, &lengths);
                label_aware_attention(caps, targets_v.clone(), bias, config.label_pow)
            } else {
                net.users(history, &lengths)
            };
            let loss = sampled_softmax_logq(
                users,
                targets_v,
                Tensor::from_data(TensorData::new(q, [b]), &device),
                Tensor::from_data(TensorData::new(bias, [b, b]), &device),
            );
            sum += f64::from(host1(loss.clone())?.first().copied().unwrap_or(f32::NAN));
            steps += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optimizer.step(config.learning_rate, net, grads);
        }
        let mean = (sum / steps.max(1) as f64) as f32;
        epoch_losses.push(mean);
        on_epoch(epoch, mean);
    }
    let net = net.valid();
    let all = Tensor::<1, Int>::from_data(
        TensorData::new((0..items as i64).collect::<Vec<_>>(), [items]),
        &Device::flex(),
    );
    let item_vectors = host(net.items(all))?;
    let dense = |l: &Dense| -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((host(l.weight.val())?, host1(l.bias.val())?))
    };
    Ok(TwoTowerModel {
        config: config.clone(),
        items,
        input: host(net.input.val())?,
        hidden: dense(&net.user_hidden)?,
        out: dense(&net.user_out)?,
        item_vectors,
        capsule_net: (config.interests > 0).then_some(net),
        epoch_losses,
    })
}

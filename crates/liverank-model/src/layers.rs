//! Dense building blocks on burn: linear layers with seeded init, MLPs, target attention
//! (single-head, and the multi-head ESU of Cross), and the MMoE / CGC / PLE multi-task trunks.

use burn::module::{Module, Param};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Tensor, TensorData};

use crate::config::{TrunkConfig, TrunkKind};
use crate::rng::SplitMix64;

/// `y = x W + b`, initialised like PyTorch's `nn.Linear` (uniform ±1/√fan_in) from our seeded
/// generator, so the same seed gives the same weights everywhere.
#[derive(Module, Debug)]
pub struct Dense {
    /// `[d_in, d_out]`.
    pub weight: Param<Tensor<2>>,
    /// `[d_out]`.
    pub bias: Param<Tensor<1>>,
}

impl Dense {
    /// A layer with seeded uniform init.
    pub fn new(d_in: usize, d_out: usize, rng: &mut SplitMix64, device: &Device) -> Self {
        let bound = 1.0 / (d_in.max(1) as f32).sqrt();
        let w: Vec<f32> = (0..d_in * d_out).map(|_| rng.uniform(bound)).collect();
        let b: Vec<f32> = (0..d_out).map(|_| rng.uniform(bound)).collect();
        Self::from_values(d_in, d_out, w, b, device)
    }

    /// A layer with the given row-major `[d_in, d_out]` weights and bias (tests, imports).
    pub fn from_values(
        d_in: usize,
        d_out: usize,
        weight: Vec<f32>,
        bias: Vec<f32>,
        device: &Device,
    ) -> Self {
        let weight = Tensor::from_data(TensorData::new(weight, [d_in, d_out]), device);
        let bias = Tensor::from_data(TensorData::new(bias, [d_out]), device);
        Self {
            weight: Param::from_tensor(weight),
            bias: Param::from_tensor(bias),
        }
    }

    /// `[B, d_in] → [B, d_out]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        x.matmul(self.weight.val()) + self.bias.val().unsqueeze::<2>()
    }
}

/// Linear layers with ReLU after each.
#[derive(Module, Debug)]
pub struct Mlp {
    /// The layers, input first.
    pub layers: Vec<Dense>,
}

impl Mlp {
    /// `d_in → widths[0] → … → widths[last]`.
    pub fn new(d_in: usize, widths: &[usize], rng: &mut SplitMix64, device: &Device) -> Self {
        let mut layers = Vec::with_capacity(widths.len());
        let mut prev = d_in;
        for &w in widths {
            layers.push(Dense::new(prev, w, rng, device));
            prev = w;
        }
        Self { layers }
    }

    /// Applies every layer and its ReLU.
    pub fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        for layer in &self.layers {
            x = relu(layer.forward(x));
        }
        x
    }
}

/// Target attention: `softmax(q·kᵀ/√D + mask) · k` of one query per row over its sequence.
///
/// `query [B, D]`, `items [B, L, D]`, `mask_bias [B, 1, L]` (0 where an item is, a large
/// negative number on padding) → `[B, D]`. A row with only padding attends uniformly to
/// zero vectors and so yields zeros.
pub fn target_attention(query: Tensor<2>, items: Tensor<3>, mask_bias: Tensor<3>) -> Tensor<2> {
    let [b, d] = query.dims();
    let scale = 1.0 / (d as f64).sqrt();
    // Broadcast products and sums instead of B batched (1×D)·(D×L) matmuls: the matrices
    // are tiny and a batched matmul's per-batch setup dominates them.
    let q = query.unsqueeze_dim::<3>(1);
    let scores = (items.clone() * q)
        .sum_dim(2)
        .swap_dims(1, 2)
        .mul_scalar(scale)
        + mask_bias;
    let weights = softmax(scores, 2);
    (items * weights.swap_dims(1, 2)).sum_dim(1).reshape([b, d])
}

/// [`target_attention`] when every row attends over the same sequence (a serving
/// request: one user's history beside many candidates): `query [B, D]`, `items [L, D]`,
/// `mask_bias [1, L]` → `[B, D]`. Two small matmuls against the one sequence instead of
/// B copies of it; the same values as `target_attention` over B copies.
pub fn shared_target_attention(
    query: Tensor<2>,
    items: Tensor<2>,
    mask_bias: Tensor<2>,
) -> Tensor<2> {
    let [_, d] = query.dims();
    let scale = 1.0 / (d as f64).sqrt();
    let scores = query.matmul(items.clone().transpose()).mul_scalar(scale) + mask_bias;
    softmax(scores, 1).matmul(items)
}

/// Attention bias of a padded position; anything below half of it counts as padding.
pub const PAD_BIAS: f32 = -1e9;

/// The ESU of Cross (Moment&Cross eq. 7): multi-head target attention
/// `softmax(q_h k_hᵀ/√d_h + mask) v_h` per head h, the heads' outputs side by side, with
/// `q = x_target W_q + b_q` from the target live's features and `k = V W_k + b_k`,
/// `v = V W_v + b_v` from the sequence. Padded positions get exactly zero weight: the
/// softmax over `-1e9` underflows to 0 where a row has an item, and the weights are
/// multiplied by the mask so that a row of padding only attends to nothing (its output is
/// 0, not the mean of the value bias). No output projection: the bottom MLP's first layer
/// follows, and a linear map before a linear map adds nothing. With `d_query = D` and an
/// identity output projection this is PyTorch's `nn.MultiheadAttention` (tested).
#[derive(Module, Debug)]
pub struct MultiHeadTargetAttention {
    /// `d_query → D`.
    pub query: Dense,
    /// `D → D`.
    pub key: Dense,
    /// `D → D`.
    pub value: Dense,
    /// Heads H (D is a multiple of H).
    #[module(skip)]
    pub heads: usize,
}

impl MultiHeadTargetAttention {
    /// Seeded init of the three projections.
    pub fn new(
        d_query: usize,
        d: usize,
        heads: usize,
        rng: &mut SplitMix64,
        device: &Device,
    ) -> Self {
        Self {
            query: Dense::new(d_query, d, rng, device),
            key: Dense::new(d, d, rng, device),
            value: Dense::new(d, d, rng, device),
            heads: heads.max(1),
        }
    }

    /// `target [B, d_query]`, `items [B, L, D]`, `mask_bias [B, 1, L]` → `[B, D]`.
    pub fn forward(&self, target: Tensor<2>, items: Tensor<3>, mask_bias: Tensor<3>) -> Tensor<2> {
        let [b, l, d] = items.dims();
        let h = self.heads;
        let weights = self.weights(target, items.clone(), mask_bias);
        let v = self
            .value
            .forward(items.reshape([b * l, d]))
            .reshape([b, l, h, d / h]);
        (v * weights.reshape([b, l, h, 1]))
            .sum_dim(1)
            .reshape([b, d])
    }

    /// [`MultiHeadTargetAttention::forward`] when every row attends over the same sequence
    /// (a serving request): `items [L, D]`, `mask_bias [1, L]`. Keys and values are
    /// projected once, and each head is two small matmuls; same values as over B copies.
    pub fn forward_shared(
        &self,
        target: Tensor<2>,
        items: Tensor<2>,
        mask_bias: Tensor<2>,
    ) -> Tensor<2> {
        let [l, d] = items.dims();
        let [b, _] = target.dims();
        let h = self.heads;
        let dh = d / h;
        let scale = 1.0 / (dh as f64).sqrt();
        let q = self
            .query
            .forward(target)
            .reshape([b, h, dh])
            .swap_dims(0, 1);
        let k = self
            .key
            .forward(items.clone())
            .reshape([l, h, dh])
            .permute([1, 2, 0]);
        let v = self
            .value
            .forward(items)
            .reshape([l, h, dh])
            .swap_dims(0, 1);
        let bias = mask_bias.reshape([1, 1, l]);
        let valid = bias.clone().greater_elem(PAD_BIAS / 2.0).float();
        let scores = q.matmul(k).mul_scalar(scale) + bias; // [H, B, L]
        let weights = softmax(scores, 2) * valid;
        weights.matmul(v).swap_dims(0, 1).reshape([b, d])
    }

    /// The attention weights `[B, L, H]` of [`MultiHeadTargetAttention::forward`]: 0 on
    /// padding, each head's weights summing to 1 over a row's items.
    pub fn weights(&self, target: Tensor<2>, items: Tensor<3>, mask_bias: Tensor<3>) -> Tensor<3> {
        let [b, l, d] = items.dims();
        let h = self.heads;
        let dh = d / h;
        let q = self.query.forward(target).reshape([b, 1, h, dh]);
        let k = self
            .key
            .forward(items.reshape([b * l, d]))
            .reshape([b, l, h, dh]);
        let bias = mask_bias.reshape([b, l, 1]);
        let valid = bias.clone().greater_elem(PAD_BIAS / 2.0).float();
        let scores = (k * q)
            .sum_dim(3)
            .reshape([b, l, h])
            .mul_scalar(1.0 / (dh as f64).sqrt())
            + bias;
        softmax(scores, 1) * valid
    }
}

/// DIN's activation unit (Zhou et al. 2018, the NetEase seed's ranking model) as the ESU of
/// a history group: each item k of the sequence gets the weight
/// `MLP([q, k, q − k, q ⊙ k])`, with `q = x_target W_q + b_q` projected from the target
/// live's features to the items' width D, and the output is `Σ wᵢ kᵢ`. The weights are
/// not normalised (the paper's choice: the sum keeps how strongly a history matches), or
/// a softmax over the row's items with `softmax = true`. ReLU in the unit (the paper's
/// PReLU/Dice are a refinement we do not need to show the effect). Padded items get
/// exactly zero weight in both modes, so a row of padding outputs 0.
///
/// The first layer is applied by parts, `q (W₁ + W₃) + k (W₂ − W₃) + (q ⊙ k) W₄`, which
/// is the same map as on the concatenation without building `[B, L, 4D]` (tested against
/// the concatenation computed naively).
#[derive(Module, Debug)]
pub struct DinAttention {
    /// `d_query → D`.
    pub query: Dense,
    /// `4D → hidden[0]`, applied by parts.
    pub first: Dense,
    /// `hidden[0] → … → hidden[last]`, ReLU after each (and after `first`).
    pub rest: Vec<Dense>,
    /// `hidden[last] → 1`: the item's weight.
    pub out: Dense,
    /// Softmax over a row's items instead of raw weights.
    #[module(skip)]
    pub softmax: bool,
}

impl DinAttention {
    /// Seeded init. `hidden` is the unit's widths (configuration validation keeps it
    /// non-empty; an empty list gets one layer of width 1).
    pub fn new(
        d_query: usize,
        d: usize,
        hidden: &[usize],
        softmax: bool,
        rng: &mut SplitMix64,
        device: &Device,
    ) -> Self {
        let query = Dense::new(d_query, d, rng, device);
        let h0 = hidden.first().copied().unwrap_or(1);
        let first = Dense::new(4 * d, h0, rng, device);
        let mut rest = Vec::with_capacity(hidden.len().saturating_sub(1));
        let mut prev = h0;
        for &w in hidden.iter().skip(1) {
            rest.push(Dense::new(prev, w, rng, device));
            prev = w;
        }
        let out = Dense::new(prev, 1, rng, device);
        Self {
            query,
            first,
            rest,
            out,
            softmax,
        }
    }

    /// The first layer's pre-activation by parts: `q [B, D]` and `k [R, L, D]` with R = B
    /// (own sequences) or R = 1 (one sequence shared by every row) → `[B·L, H]`.
    fn first_layer(&self, q: Tensor<2>, k: Tensor<3>) -> Tensor<2> {
        let [b, d] = q.dims();
        let [r, l, _] = k.dims();
        let w = self.first.weight.val();
        let h = w.dims()[1];
        let block = |i: usize| w.clone().narrow(0, i * d, d);
        let (w_q, w_k, w_d, w_p) = (block(0), block(1), block(2), block(3));
        let from_q = q.clone().matmul(w_q + w_d.clone()).reshape([b, 1, h]);
        let from_k = k
            .clone()
            .reshape([r * l, d])
            .matmul(w_k - w_d)
            .reshape([r, l, h]);
        let product = (k * q.reshape([b, 1, d]))
            .reshape([b * l, d])
            .matmul(w_p)
            .reshape([b, l, h]);
        (product + from_k + from_q + self.first.bias.val().reshape([1, 1, h])).reshape([b * l, h])
    }

    /// Weights `[B, L]` of the items `k [R, L, D]` (R = B or 1) for queries `target [B,
    /// d_query]`, with `mask_bias [R, L]`: 0 on padding.
    fn weights_of(&self, target: Tensor<2>, k: Tensor<3>, mask_bias: Tensor<2>) -> Tensor<2> {
        let [b, _] = target.dims();
        let l = k.dims()[1];
        let q = self.query.forward(target);
        let mut x = relu(self.first_layer(q, k));
        for layer in &self.rest {
            x = relu(layer.forward(x));
        }
        let scores = self.out.forward(x).reshape([b, l]);
        let valid = mask_bias.clone().greater_elem(PAD_BIAS / 2.0).float();
        if self.softmax {
            softmax(scores + mask_bias, 1) * valid
        } else {
            scores * valid
        }
    }

    /// The weights `[B, L]` of [`DinAttention::forward`]: 0 on padding.
    pub fn weights(&self, target: Tensor<2>, items: Tensor<3>, mask_bias: Tensor<3>) -> Tensor<2> {
        let [b, l, _] = items.dims();
        self.weights_of(target, items, mask_bias.reshape([b, l]))
    }

    /// `target [B, d_query]`, `items [B, L, D]`, `mask_bias [B, 1, L]` → `[B, D]`.
    pub fn forward(&self, target: Tensor<2>, items: Tensor<3>, mask_bias: Tensor<3>) -> Tensor<2> {
        let [b, l, d] = items.dims();
        let w = self.weights(target, items.clone(), mask_bias);
        (items * w.reshape([b, l, 1])).sum_dim(1).reshape([b, d])
    }

    /// [`DinAttention::forward`] when every row attends over the same sequence (a serving
    /// request): `items [L, D]`, `mask_bias [1, L]`. The key terms of the first layer are
    /// computed once; same values as over B copies.
    pub fn forward_shared(
        &self,
        target: Tensor<2>,
        items: Tensor<2>,
        mask_bias: Tensor<2>,
    ) -> Tensor<2> {
        let [l, d] = items.dims();
        let w = self.weights_of(target, items.clone().reshape([1, l, d]), mask_bias);
        w.matmul(items)
    }
}

/// Weighted sum of expert outputs by a softmax gate: `gate_logits [B, E]`, `experts [B, E, X]`.
fn mix(gate_logits: Tensor<2>, experts: &Tensor<3>) -> Tensor<2> {
    let [b, e, x] = experts.dims();
    // A broadcast product and a sum rather than B batched (1×E)·(E×X) matmuls, whose
    // per-matrix setup dominates matrices this small.
    let gate = softmax(gate_logits, 1).reshape([b, e, 1]);
    (experts.clone() * gate).sum_dim(1).reshape([b, x])
}

/// Several layers over the same input as one matmul: `[B, Σ d_out]`, their outputs side by
/// side in layer order. Same values as applying each; one pass over the input.
fn dense_fused(layers: &[&Dense], input: &Tensor<2>) -> Tensor<2> {
    match layers {
        [one] => one.forward(input.clone()),
        _ => {
            let w = Tensor::cat(layers.iter().map(|l| l.weight.val()).collect(), 1);
            let bias = Tensor::cat(layers.iter().map(|l| l.bias.val()).collect(), 0);
            input.clone().matmul(w) + bias.unsqueeze::<2>()
        }
    }
}

/// Splits `[B, Σ widths]` back into one `[B, width]` per layer.
fn split_columns(out: Tensor<2>, layers: &[&Dense]) -> Vec<Tensor<2>> {
    let mut at = 0;
    layers
        .iter()
        .map(|l| {
            let n = l.bias.dims()[0];
            let part = out.clone().narrow(1, at, n);
            at += n;
            part
        })
        .collect()
}

/// Equal-width experts (ReLU) over one input, stacked `[B, E, X]`: one matmul, and the
/// stack is a reshape of its expert-major columns.
fn stacked_experts(experts: &[Dense], input: &Tensor<2>) -> Tensor<3> {
    let [b, _] = input.dims();
    let layers: Vec<&Dense> = experts.iter().collect();
    let x = experts.first().map_or(0, |e| e.bias.dims()[0]);
    relu(dense_fused(&layers, input)).reshape([b, experts.len(), x])
}

fn run_experts(experts: &[Dense], input: &Tensor<2>) -> Vec<Tensor<2>> {
    if experts.is_empty() {
        return Vec::new();
    }
    let layers: Vec<&Dense> = experts.iter().collect();
    split_columns(relu(dense_fused(&layers, input)), &layers)
}

/// Multi-gate mixture of experts (Ma et al. 2018): shared experts, a softmax gate per task.
#[derive(Module, Debug)]
pub struct Mmoe {
    /// Shared experts (`d_in → expert_hidden`, ReLU).
    pub experts: Vec<Dense>,
    /// One gate per task (`d_in → experts`).
    pub gates: Vec<Dense>,
}

impl Mmoe {
    /// `experts` shared experts and `tasks` gates.
    pub fn new(
        d_in: usize,
        experts: usize,
        expert_hidden: usize,
        tasks: usize,
        rng: &mut SplitMix64,
        device: &Device,
    ) -> Self {
        Self {
            experts: (0..experts)
                .map(|_| Dense::new(d_in, expert_hidden, rng, device))
                .collect(),
            gates: (0..tasks)
                .map(|_| Dense::new(d_in, experts, rng, device))
                .collect(),
        }
    }

    /// One `[B, expert_hidden]` mixture per task.
    pub fn forward(&self, h: Tensor<2>) -> Vec<Tensor<2>> {
        let stacked = stacked_experts(&self.experts, &h);
        let gates: Vec<&Dense> = self.gates.iter().collect();
        split_columns(dense_fused(&gates, &h), &gates)
            .into_iter()
            .map(|logits| mix(logits, &stacked))
            .collect()
    }
}

/// One extraction level of CGC/PLE (Tang et al. 2020): task-specific and shared experts;
/// each task's gate mixes its own experts with the shared ones; between PLE levels a shared
/// gate mixes all experts into the next level's shared input.
#[derive(Module, Debug)]
pub struct ExtractionLevel {
    /// `tasks × specific_experts`, row-major by task.
    pub specific: Vec<Dense>,
    /// Shared experts.
    pub shared: Vec<Dense>,
    /// Per task: `d_in → specific + shared`.
    pub task_gates: Vec<Dense>,
    /// Present on every level but the last: `d_in → tasks·specific + shared`.
    pub shared_gate: Option<Dense>,
}

impl ExtractionLevel {
    fn new(
        d_in: usize,
        config: &TrunkConfig,
        tasks: usize,
        last: bool,
        rng: &mut SplitMix64,
        device: &Device,
    ) -> Self {
        let (s, sh, x) = (
            config.specific_experts,
            config.shared_experts,
            config.expert_hidden,
        );
        Self {
            specific: (0..tasks * s)
                .map(|_| Dense::new(d_in, x, rng, device))
                .collect(),
            shared: (0..sh).map(|_| Dense::new(d_in, x, rng, device)).collect(),
            task_gates: (0..tasks)
                .map(|_| Dense::new(d_in, s + sh, rng, device))
                .collect(),
            shared_gate: (!last).then(|| Dense::new(d_in, tasks * s + sh, rng, device)),
        }
    }

    /// `task_inputs[t]` feeds task t's experts and gate; `shared_input` the shared experts
    /// and the shared gate. Returns the per-task outputs and, between levels, the shared one.
    pub fn forward(
        &self,
        task_inputs: &[Tensor<2>],
        shared_input: &Tensor<2>,
    ) -> (Vec<Tensor<2>>, Option<Tensor<2>>) {
        let tasks = self.task_gates.len();
        let per_task = self.specific.len() / tasks.max(1);
        let shared_out = run_experts(&self.shared, shared_input);
        let mut all = Vec::with_capacity(self.specific.len() + shared_out.len());
        let mut outputs = Vec::with_capacity(tasks);
        for (t, gate) in self.task_gates.iter().enumerate() {
            let own = run_experts(
                &self.specific[t * per_task..(t + 1) * per_task],
                &task_inputs[t],
            );
            all.extend(own.iter().cloned());
            let mut experts = own;
            experts.extend(shared_out.iter().cloned());
            let stacked: Tensor<3> = Tensor::stack(experts, 1);
            outputs.push(mix(gate.forward(task_inputs[t].clone()), &stacked));
        }
        let shared_next = self.shared_gate.as_ref().map(|g| {
            all.extend(shared_out.iter().cloned());
            let stacked: Tensor<3> = Tensor::stack(all, 1);
            mix(g.forward(shared_input.clone()), &stacked)
        });
        (outputs, shared_next)
    }
}

/// The multi-task trunk: MMoE, or CGC/PLE as a stack of extraction levels.
#[derive(Module, Debug)]
pub struct Trunk {
    /// Set for MMoE.
    pub mmoe: Option<Mmoe>,
    /// CGC (one level) or PLE (`levels`).
    pub levels: Vec<ExtractionLevel>,
}

impl Trunk {
    /// The trunk the configuration names.
    pub fn new(
        d_in: usize,
        config: &TrunkConfig,
        tasks: usize,
        rng: &mut SplitMix64,
        device: &Device,
    ) -> Self {
        match config.kind {
            TrunkKind::Mmoe => Self {
                mmoe: Some(Mmoe::new(
                    d_in,
                    config.shared_experts,
                    config.expert_hidden,
                    tasks,
                    rng,
                    device,
                )),
                levels: Vec::new(),
            },
            TrunkKind::Cgc | TrunkKind::Ple => {
                let n = if config.kind == TrunkKind::Cgc {
                    1
                } else {
                    config.levels
                };
                let mut levels = Vec::with_capacity(n);
                let mut width = d_in;
                for l in 0..n {
                    levels.push(ExtractionLevel::new(
                        width,
                        config,
                        tasks,
                        l + 1 == n,
                        rng,
                        device,
                    ));
                    width = config.expert_hidden;
                }
                Self { mmoe: None, levels }
            }
        }
    }

    /// One `[B, expert_hidden]` representation per task.
    pub fn forward(&self, h: Tensor<2>, tasks: usize) -> Vec<Tensor<2>> {
        if let Some(mmoe) = &self.mmoe {
            return mmoe.forward(h);
        }
        let mut task_inputs = vec![h.clone(); tasks];
        let mut shared = h;
        for level in &self.levels {
            let (outputs, next) = level.forward(&task_inputs, &shared);
            task_inputs = outputs;
            if let Some(next) = next {
                shared = next;
            }
        }
        task_inputs
    }
}

/// A task tower: optional hidden layers, then one logit.
#[derive(Module, Debug)]
pub struct Tower {
    /// Hidden layers (ReLU).
    pub hidden: Mlp,
    /// `→ 1` logit.
    pub out: Dense,
}

impl Tower {
    /// `d_in → hidden… → 1`.
    pub fn new(d_in: usize, hidden: &[usize], rng: &mut SplitMix64, device: &Device) -> Self {
        let last = hidden.last().copied().unwrap_or(d_in);
        Self {
            hidden: Mlp::new(d_in, hidden, rng, device),
            out: Dense::new(last, 1, rng, device),
        }
    }

    /// `[B, d_in] → [B, 1]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.out.forward(self.hidden.forward(x))
    }
}

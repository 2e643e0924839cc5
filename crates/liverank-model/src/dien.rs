//! DIEN (Zhou et al. 2019, the NetEase seed's ranking model) as the ESU of a history group:
//! a GRU interest extractor over the group's items in time order, trained with the
//! auxiliary next-behaviour loss, then an AUGRU whose update gate is scaled by each
//! interest's attention to the target live; the last AUGRU state is the group's output.
//!
//! History groups hold the newest item first and pad at the end, so both recurrences run
//! from the last position to the first: padding comes first and leaves the zero state
//! alone, then the items oldest to newest. Gates follow PyTorch's `nn.GRUCell` (r, z, n;
//! z keeps the old state), so a reference with the same weights is a few lines of torch.

use burn::module::Module;
use burn::tensor::activation::{log_sigmoid, sigmoid, softmax, tanh};
use burn::tensor::{Device, Tensor};

use crate::layers::{Dense, PAD_BIAS};
use crate::rng::SplitMix64;

/// A GRU cell: `[r, z, n]` gates side by side in both projections, as in PyTorch.
///
/// `r = σ(x W_ir + b_ir + h W_hr + b_hr)`, `z = σ(x W_iz + b_iz + h W_hz + b_hz)`,
/// `n = tanh(x W_in + b_in + r ⊙ (h W_hn + b_hn))`, and one step moves the state by
/// `h' = h + s ⊙ (1 − z) ⊙ (n − h)`: `s = 1` is the GRU (`(1 − z) n + z h`), `s = 0` keeps
/// the state (padding), and `s = aₜ` is DIEN's AUGRU (the update gate scaled by attention).
#[derive(Module, Debug)]
pub struct GruCell {
    /// `x → [r, z, n]`: `[d_in, 3H]`.
    pub input: Dense,
    /// `h → [r, z, n]`: `[H, 3H]`.
    pub hidden: Dense,
}

impl GruCell {
    /// PyTorch's init: every weight and bias uniform in ±1/√H, from our seeded generator.
    pub fn new(d_in: usize, h: usize, rng: &mut SplitMix64, device: &Device) -> Self {
        let bound = 1.0 / (h.max(1) as f32).sqrt();
        let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform(bound)).collect() };
        let (wi, bi) = (draw(d_in * 3 * h), draw(3 * h));
        let (wh, bh) = (draw(h * 3 * h), draw(3 * h));
        Self {
            input: Dense::from_values(d_in, 3 * h, wi, bi, device),
            hidden: Dense::from_values(h, 3 * h, wh, bh, device),
        }
    }

    /// State width H.
    pub fn width(&self) -> usize {
        self.hidden.weight.dims()[0]
    }

    /// The input half of every step at once: `x [R, L, d_in] → [R, L, 3H]`.
    pub fn project(&self, x: Tensor<3>) -> Tensor<3> {
        let [r, l, d] = x.dims();
        self.input
            .forward(x.reshape([r * l, d]))
            .reshape([r, l, 3 * self.width()])
    }

    /// One step from state `h [B, H]` with the projected input `gi [B or 1, 3H]` and the
    /// step size `s [B, 1]` (see the type's equations).
    pub fn step(&self, h: Tensor<2>, gi: Tensor<2>, s: Tensor<2>) -> Tensor<2> {
        let width = self.width();
        let gh = self.hidden.forward(h.clone());
        let gate = |t: &Tensor<2>, i: usize| t.clone().narrow(1, i * width, width);
        let r = sigmoid(gate(&gi, 0) + gate(&gh, 0));
        let z = sigmoid(gate(&gi, 1) + gate(&gh, 1));
        let n = tanh(gate(&gi, 2) + r * gate(&gh, 2));
        let keep = z.neg().add_scalar(1.0) * s;
        h.clone() + keep * (n - h)
    }
}

/// DIEN's interest extractor and interest evolution over one history group.
#[derive(Module, Debug)]
pub struct DienUnit {
    /// `d_query → D`: the attention is `softmax(hₜ · (x_target W + b))` over the group's
    /// items (DIEN's bilinear attention).
    pub query: Dense,
    /// The interest extractor GRU, `D → D`.
    pub extractor: GruCell,
    /// The interest evolution AUGRU, `D → D`.
    pub evolution: GruCell,
}

/// What one pass of a [`DienUnit`] gives.
#[derive(Clone, Debug)]
pub struct DienOutput {
    /// The last AUGRU state `[B, D]`: the group's vector.
    pub interest: Tensor<2>,
    /// The extractor's states `[R, L, D]` (position order; a padded position repeats the
    /// state before it in time, the zero state for trailing padding).
    pub states: Tensor<3>,
    /// The attention `[B, L]`: a softmax over the row's items, 0 on padding.
    pub attention: Tensor<2>,
}

impl DienUnit {
    /// Seeded init: the query projection, then the two cells.
    pub fn new(d_query: usize, d: usize, rng: &mut SplitMix64, device: &Device) -> Self {
        Self {
            query: Dense::new(d_query, d, rng, device),
            extractor: GruCell::new(d, d, rng, device),
            evolution: GruCell::new(d, d, rng, device),
        }
    }

    /// `target [B, d_query]`, `items [R, L, D]` (R = B, or 1 when every row holds the same
    /// sequence, as in a serving request) with `mask_bias [R, L]` → the pass's outputs.
    pub fn run(&self, target: Tensor<2>, items: Tensor<3>, mask_bias: Tensor<2>) -> DienOutput {
        let [b, _] = target.dims();
        let [r, l, d] = items.dims();
        let device = items.device();
        let valid = mask_bias.clone().greater_elem(PAD_BIAS / 2.0).float();

        // Interest extraction: the query-free part, once per distinct sequence.
        let gi = self.extractor.project(items);
        let mut h: Tensor<2> = Tensor::zeros([r, d], &device);
        let mut states = vec![h.clone(); l];
        for t in (0..l).rev() {
            let x = gi.clone().narrow(1, t, 1).reshape([r, 3 * d]);
            let s = valid.clone().narrow(1, t, 1);
            h = self.extractor.step(h, x, s);
            states[t] = h.clone();
        }
        let states: Tensor<3> = Tensor::stack(states, 1);

        // Attention of each interest to the target, a softmax over the row's items.
        let q = self.query.forward(target);
        let scores = if r == 1 && b > 1 {
            q.matmul(states.clone().reshape([l, d]).transpose())
        } else {
            (states.clone() * q.reshape([b, 1, d]))
                .sum_dim(2)
                .reshape([b, l])
        };
        let attention = softmax(scores + mask_bias, 1) * valid;

        // Interest evolution: the AUGRU steps by the attention, so padding keeps its state.
        let ge = self.evolution.project(states.clone());
        let mut e: Tensor<2> = Tensor::zeros([b, d], &device);
        for t in (0..l).rev() {
            let x = ge.clone().narrow(1, t, 1).reshape([r, 3 * d]);
            let a = attention.clone().narrow(1, t, 1);
            e = self.evolution.step(e, x, a);
        }
        DienOutput {
            interest: e,
            states,
            attention,
        }
    }

    /// `target [B, d_query]`, `items [B, L, D]`, `mask_bias [B, 1, L]` → `[B, D]`.
    pub fn forward(&self, target: Tensor<2>, items: Tensor<3>, mask_bias: Tensor<3>) -> Tensor<2> {
        let [b, l, _] = items.dims();
        self.run(target, items, mask_bias.reshape([b, l])).interest
    }

    /// [`DienUnit::forward`] when every row holds the same sequence: `items [L, D]`,
    /// `mask_bias [1, L]`. The extractor runs once; same values as over B copies.
    pub fn forward_shared(
        &self,
        target: Tensor<2>,
        items: Tensor<2>,
        mask_bias: Tensor<2>,
    ) -> Tensor<2> {
        let [l, d] = items.dims();
        self.run(target, items.reshape([1, l, d]), mask_bias)
            .interest
    }

    /// [`DienUnit::forward`] and the auxiliary loss of its extractor (training).
    pub fn forward_with_aux(
        &self,
        target: Tensor<2>,
        items: Tensor<3>,
        mask_bias: Tensor<3>,
    ) -> (Tensor<2>, Option<Tensor<1>>) {
        let [b, l, _] = items.dims();
        let bias = mask_bias.reshape([b, l]);
        let out = self.run(target, items.clone(), bias.clone());
        let aux = auxiliary_loss(out.states, items, bias);
        (out.interest, aux)
    }
}

/// DIEN's auxiliary loss: the extractor's state after each item predicts the item after
/// it in time (one position nearer the front), against the item at that position of the
/// next row of the batch (in-batch negative):
/// `−[log σ(hₜ·eₜ₊₁) + log(1 − σ(hₜ·ẽₜ₊₁))]`, averaged over the pairs whose two items are
/// real (0 when there is none); the negative term only where the other row's item is real
/// too. `None` for groups of one position.
///
/// `states [B, L, D]`, `items [B, L, D]`, `mask_bias [B, L]`.
pub fn auxiliary_loss(
    states: Tensor<3>,
    items: Tensor<3>,
    mask_bias: Tensor<2>,
) -> Option<Tensor<1>> {
    let [b, l, d] = items.dims();
    if l < 2 {
        return None;
    }
    let valid = mask_bias.greater_elem(PAD_BIAS / 2.0).float();
    let older = states.narrow(1, 1, l - 1);
    let next = items.narrow(1, 0, l - 1);
    let pair_valid = valid.clone().narrow(1, 1, l - 1) * valid.clone().narrow(1, 0, l - 1);
    let pairs = pair_valid.clone().sum().clamp_min(1.0);
    let positive = (older.clone() * next.clone())
        .sum_dim(2)
        .reshape([b, l - 1]);
    let mut total = (log_sigmoid(positive).neg() * pair_valid.clone()).sum();
    if b > 1 {
        let roll =
            |t: Tensor<2>| Tensor::cat(vec![t.clone().narrow(0, 1, b - 1), t.narrow(0, 0, 1)], 0);
        let other = next.reshape([b, (l - 1) * d]);
        let other = roll(other).reshape([b, l - 1, d]);
        let other_valid = roll(valid.narrow(1, 0, l - 1));
        let negative = (older * other).sum_dim(2).reshape([b, l - 1]);
        total = total + (log_sigmoid(negative.neg()).neg() * pair_valid * other_valid).sum();
    }
    Some(total / pairs)
}

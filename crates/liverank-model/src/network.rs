//! The dense network of the ranker: embeddings in, one logit per task out.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::config::RankerConfig;
use crate::layers::{Mlp, Tower, Trunk, target_attention};
use crate::rng::SplitMix64;

/// Input widths the network is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputShape {
    /// Sparse fields per row (field 0 is the attention query).
    pub fields: usize,
    /// Sequence group length (0 = no sequence group).
    pub seq_len: usize,
    /// Keys summed per sequence position.
    pub seq_subkeys: usize,
    /// Dense inputs per row.
    pub dense: usize,
}

/// The tensors of one forward pass.
#[derive(Clone, Debug)]
pub struct NetInputs {
    /// `[B, F, D]` field embeddings.
    pub fields: Tensor<3>,
    /// `[B, L, S, D]` sequence sub-key embeddings, when the model has a sequence group.
    pub seq: Option<Tensor<4>>,
    /// `[B, 1, L]`: 0 on items, a large negative number on padding.
    pub seq_mask_bias: Option<Tensor<3>>,
    /// `[B, dense]`, when the model has dense inputs.
    pub dense: Option<Tensor<2>>,
}

/// Bottom MLP → multi-task trunk → per-task towers.
#[derive(Module, Debug)]
pub struct RankerNet {
    /// Shared bottom over `[fields ⊕ attention ⊕ dense]`.
    pub bottom: Mlp,
    /// MMoE / CGC / PLE.
    pub trunk: Trunk,
    /// One tower per task.
    pub towers: Vec<Tower>,
}

impl RankerNet {
    /// A freshly initialised network (seeded from `config.seed`).
    pub fn new(config: &RankerConfig, shape: InputShape, device: &Device) -> Self {
        let mut rng = SplitMix64::new(config.seed ^ 0x6E65_7477_6F72_6B00);
        let d = config.embedding_dim;
        let attention = if shape.seq_len > 0 { d } else { 0 };
        let d_in = shape.fields * d + attention + shape.dense;
        let bottom = Mlp::new(d_in, &config.hidden, &mut rng, device);
        let h = config.hidden.last().copied().unwrap_or(d_in);
        let trunk = Trunk::new(h, &config.trunk, config.tasks.len(), &mut rng, device);
        let towers = (0..config.tasks.len())
            .map(|_| {
                Tower::new(
                    config.trunk.expert_hidden,
                    &config.tower_hidden,
                    &mut rng,
                    device,
                )
            })
            .collect();
        Self {
            bottom,
            trunk,
            towers,
        }
    }

    /// `[B, T]` logits.
    pub fn forward(&self, inputs: NetInputs) -> Tensor<2> {
        let [b, f, d] = inputs.fields.dims();
        let mut parts = Vec::with_capacity(3);
        if let (Some(seq), Some(bias)) = (inputs.seq, inputs.seq_mask_bias) {
            let [_, l, s, _] = seq.dims();
            let items: Tensor<3> = if s == 1 {
                seq.reshape([b, l, d])
            } else {
                seq.sum_dim(2).reshape([b, l, d])
            };
            let query: Tensor<2> = inputs.fields.clone().narrow(1, 0, 1).reshape([b, d]);
            parts.push(inputs.fields.reshape([b, f * d]));
            parts.push(target_attention(query, items, bias));
        } else {
            parts.push(inputs.fields.reshape([b, f * d]));
        }
        if let Some(dense) = inputs.dense {
            parts.push(dense);
        }
        let x = if parts.len() == 1 {
            parts.remove(0)
        } else {
            Tensor::cat(parts, 1)
        };
        let h = self.bottom.forward(x);
        let per_task = self.trunk.forward(h, self.towers.len());
        let logits: Vec<Tensor<2>> = self
            .towers
            .iter()
            .zip(per_task)
            .map(|(tower, x)| tower.forward(x))
            .collect();
        Tensor::cat(logits, 1)
    }
}

//! The dense network of the ranker: embeddings in, one logit per task out.

use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::{EsuUnit, RankerConfig};
use crate::dien::DienUnit;
use crate::layers::{
    DinAttention, Mlp, MultiHeadTargetAttention, Tower, Trunk, shared_target_attention,
    target_attention,
};
use crate::rng::SplitMix64;

/// Most sequence groups a model can have (the product sequence and the five GSUs fit).
pub const MAX_SEQ_GROUPS: usize = 8;

/// One sequence group: `len` consecutive positions of the batch's sequence axis, pooled by
/// target attention. `heads == 0`: single-head, parameter-free, with the embedding of field
/// `query_field` as the query. `heads > 0`: the multi-head ESU
/// ([`MultiHeadTargetAttention`]) whose query is projected from the fields of the bit set
/// `query_fields` side by side in field order (0 = `query_field` alone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqGroup {
    /// Positions.
    pub len: usize,
    /// Sparse field whose embedding is the attention query (single-head groups).
    pub query_field: usize,
    /// Attention heads; 0 = single-head without parameters.
    pub heads: usize,
    /// Bit j set: field j is part of a multi-head group's query.
    pub query_fields: u32,
}

impl SeqGroup {
    /// A single-head group of `len` positions queried by field `query_field`.
    pub const fn plain(len: usize, query_field: usize) -> Self {
        Self {
            len,
            query_field,
            heads: 0,
            query_fields: 0,
        }
    }

    /// The fields of the query, in field order.
    pub fn query_list(&self) -> Vec<usize> {
        if self.heads == 0 || self.query_fields == 0 {
            return vec![self.query_field];
        }
        (0..32)
            .filter(|j| self.query_fields & (1 << j) != 0)
            .collect()
    }
}

/// The sequence groups of a model, laid end to end along the sequence axis in this order.
/// A fixed-size list so that [`InputShape`] stays `Copy` and `const`-constructible.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqGroups {
    groups: [SeqGroup; MAX_SEQ_GROUPS],
    count: usize,
}

impl SeqGroups {
    /// No sequence group.
    pub const NONE: Self = Self {
        groups: [SeqGroup::plain(0, 0); MAX_SEQ_GROUPS],
        count: 0,
    };

    /// One group of `len` positions queried by field 0 (`len` 0 = none).
    pub const fn single(len: usize) -> Self {
        let mut s = Self::NONE;
        if len > 0 {
            s.groups[0] = SeqGroup::plain(len, 0);
            s.count = 1;
        }
        s
    }

    /// These groups and one more; `None` past [`MAX_SEQ_GROUPS`].
    pub fn with(mut self, group: SeqGroup) -> Option<Self> {
        let slot = self.groups.get_mut(self.count)?;
        *slot = group;
        self.count += 1;
        Some(self)
    }

    /// The groups in axis order.
    pub fn as_slice(&self) -> &[SeqGroup] {
        &self.groups[..self.count]
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there is no group.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Positions of all groups together.
    pub fn total_len(&self) -> usize {
        self.as_slice().iter().map(|g| g.len).sum()
    }
}

/// Input widths the network is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputShape {
    /// Sparse fields per row.
    pub fields: usize,
    /// Positions of the sequence axis: the groups' lengths added up.
    pub seq_len: usize,
    /// Keys summed per sequence position.
    pub seq_subkeys: usize,
    /// Dense inputs per row.
    pub dense: usize,
    /// How the sequence axis splits into attention groups.
    pub groups: SeqGroups,
}

impl InputShape {
    /// Checks the groups cover the sequence axis and query existing fields.
    pub fn validate(&self) -> Result<(), String> {
        if self.groups.total_len() != self.seq_len {
            return Err(format!(
                "sequence groups cover {} positions, the sequence axis has {}",
                self.groups.total_len(),
                self.seq_len
            ));
        }
        if let Some(g) = self.groups.as_slice().iter().find(|g| {
            g.len == 0 || g.query_list().iter().any(|&f| f >= self.fields) || g.heads > 32
        }) {
            return Err(format!(
                "sequence group {g:?} is empty or queries a field past the {} fields",
                self.fields
            ));
        }
        Ok(())
    }
}

/// The tensors of one forward pass.
#[derive(Clone, Debug)]
pub struct NetInputs {
    /// `[B, F, D]` field embeddings.
    pub fields: Tensor<3>,
    /// `[B, L, S, D]` sequence sub-key embeddings, when the model has a sequence group;
    /// `[1, L, S, D]` when every row has the same sequences (see [`NetInputs::shared_groups`]).
    pub seq: Option<Tensor<4>>,
    /// `[B, 1, L]` (or `[1, 1, L]` with `seq`): 0 on items, a large negative number on padding.
    pub seq_mask_bias: Option<Tensor<3>>,
    /// `[B, dense]`, when the model has dense inputs.
    pub dense: Option<Tensor<2>>,
    /// Per sequence group: every row holds the same items and padding there, so row 0's
    /// sequence is attended by all queries at once. Empty = none (training); a `seq` of
    /// batch 1 is shared in every group.
    pub shared_groups: Vec<bool>,
}

/// Bottom MLP → multi-task trunk → per-task towers.
#[derive(Module, Debug)]
pub struct RankerNet {
    /// Sequence groups (not a parameter).
    #[module(skip)]
    pub groups: SeqGroups,
    /// The multi-head ESU of each group with `heads > 0`, in group order (with
    /// `esu = "attention"`).
    pub esu: Vec<MultiHeadTargetAttention>,
    /// DIN's activation unit of each group with `heads > 0`, in group order (with
    /// `esu = "din"`; empty otherwise, so other models keep exactly their parameters).
    pub din: Vec<DinAttention>,
    /// DIEN's extractor and evolution of each group with `heads > 0`, in group order (with
    /// `esu = "dien"`; empty otherwise).
    pub dien: Vec<DienUnit>,
    /// Shared bottom over `[fields ⊕ one attention output per group ⊕ dense]`.
    pub bottom: Mlp,
    /// MMoE / CGC / PLE.
    pub trunk: Trunk,
    /// One tower per task.
    pub towers: Vec<Tower>,
    /// C̃3 of LiveForesighter's product branch, `[c3_rows, c3_dim]`, when it is on (empty
    /// otherwise, so a model without it has exactly its old parameters): the last
    /// `c3_rows` dense inputs (`softmax(ĉ3)`) enter the bottom as `softmax(ĉ3)·C̃3`.
    pub c3_table: Vec<burn::module::Param<Tensor<2>>>,
}

impl RankerNet {
    /// A freshly initialised network (seeded from `config.seed`).
    pub fn new(config: &RankerConfig, shape: InputShape, device: &Device) -> Self {
        let mut rng = SplitMix64::new(config.seed ^ 0x6E65_7477_6F72_6B00);
        let d = config.embedding_dim;
        let attention = shape.groups.len() * d;
        let fs = &config.foresight;
        let c3 = (fs.product && fs.c3_rows > 0 && shape.dense >= fs.c3_rows)
            .then_some((fs.c3_rows, fs.c3_dim));
        let d_in = shape.fields * d + attention + shape.dense - c3.map_or(0, |(rows, _)| rows)
            + c3.map_or(0, |(_, dim)| dim);
        let bottom = Mlp::new(d_in, &config.hidden, &mut rng, device);
        // The ESUs draw after the bottom so that a model without one keeps its weights.
        let mut esu_rng = SplitMix64::new(config.seed ^ 0x6573_7500);
        let parameterised = shape.groups.as_slice().iter().filter(|g| g.heads > 0);
        let (mut esu, mut din, mut dien) = (Vec::new(), Vec::new(), Vec::new());
        match config.esu {
            EsuUnit::Attention => {
                esu = parameterised
                    .map(|g| {
                        let d_query = g.query_list().len() * d;
                        MultiHeadTargetAttention::new(d_query, d, g.heads, &mut esu_rng, device)
                    })
                    .collect();
            }
            EsuUnit::Din => {
                let mut din_rng = SplitMix64::new(config.seed ^ 0x6469_6e00);
                din = parameterised
                    .map(|g| {
                        let d_query = g.query_list().len() * d;
                        DinAttention::new(
                            d_query,
                            d,
                            &config.din.hidden,
                            config.din.softmax,
                            &mut din_rng,
                            device,
                        )
                    })
                    .collect();
            }
            EsuUnit::Dien => {
                let mut dien_rng = SplitMix64::new(config.seed ^ 0x0064_6965_6e00);
                dien = parameterised
                    .map(|g| DienUnit::new(g.query_list().len() * d, d, &mut dien_rng, device))
                    .collect();
            }
        }
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
        // C̃3 draws from its own generator, like the ESUs: uniform in ±1/√c3_dim.
        let mut c3_rng = SplitMix64::new(config.seed ^ 0x6333_7461_626c_6500);
        let c3_table = c3
            .map(|(rows, dim)| {
                let bound = 1.0 / (dim as f32).sqrt();
                let v: Vec<f32> = (0..rows * dim).map(|_| c3_rng.uniform(bound)).collect();
                burn::module::Param::from_tensor(Tensor::from_data(
                    TensorData::new(v, [rows, dim]),
                    device,
                ))
            })
            .into_iter()
            .collect();
        Self {
            groups: shape.groups,
            esu,
            din,
            dien,
            bottom,
            trunk,
            towers,
            c3_table,
        }
    }

    /// `probs [B, c3_rows] → probs · C̃3 [B, c3_dim]`: the product branch's term (eq. 5);
    /// `None` without the branch.
    pub fn c3_projection(&self, probs: Tensor<2>) -> Option<Tensor<2>> {
        self.c3_table.first().map(|t| probs.matmul(t.val()))
    }

    /// `[B, T]` logits.
    pub fn forward(&self, inputs: NetInputs) -> Tensor<2> {
        let x = self.bottom_input(inputs, None);
        self.heads(self.bottom.forward(x))
    }

    /// [`RankerNet::forward`] for training: also the sum of the DIEN groups' auxiliary
    /// losses (`None` without DIEN), which the trainer weights by `dien.aux_weight`.
    pub fn forward_train(&self, inputs: NetInputs) -> (Tensor<2>, Option<Tensor<1>>) {
        if self.dien.is_empty() {
            return (self.forward(inputs), None);
        }
        let mut aux = Vec::new();
        let x = self.bottom_input(inputs, Some(&mut aux));
        let aux = aux.into_iter().reduce(|a, b| a + b);
        (self.heads(self.bottom.forward(x)), aux)
    }

    /// [`RankerNet::forward`] for a batch whose rows share some fields, as a serving request
    /// does (one user's fields beside many candidates): the first bottom layer's product
    /// with the shared fields' columns is computed once, from row 0, instead of once per
    /// row. `shared_fields[j]`: every row holds the same values in field j. Same result up
    /// to float rounding.
    pub fn forward_shared(&self, inputs: NetInputs, shared_fields: &[bool]) -> Tensor<2> {
        let [b, f, d] = inputs.fields.dims();
        let Some((first, rest_layers)) = self.bottom.layers.split_first() else {
            return self.forward(inputs);
        };
        if b < 2 || shared_fields.len() != f || !shared_fields.iter().any(|&s| s) {
            return self.forward(inputs);
        }
        let x = self.bottom_input(inputs, None);
        let d_in = x.dims()[1];
        let shared = |c: usize| c < f * d && shared_fields[c / d];
        let (shared_cols, other_cols): (Vec<usize>, Vec<usize>) =
            (0..d_in).partition(|&c| shared(c));
        let device = x.device();
        let index = |cols: &[usize]| {
            let v: Vec<i64> = cols.iter().map(|&c| c as i64).collect();
            Tensor::<1, Int>::from_data(TensorData::new(v, [cols.len()]), &device)
        };
        let (shared_index, other_index) = (index(&shared_cols), index(&other_cols));
        let w = first.weight.val();
        let once = x
            .clone()
            .narrow(0, 0, 1)
            .select(1, shared_index.clone())
            .matmul(w.clone().select(0, shared_index));
        let per_row = x
            .select(1, other_index.clone())
            .matmul(w.select(0, other_index));
        let mut h = relu(per_row + once + first.bias.val().unsqueeze::<2>());
        for layer in rest_layers {
            h = relu(layer.forward(h));
        }
        self.heads(h)
    }

    /// Trunk and towers over the bottom's output: `[B, T]` logits.
    fn heads(&self, h: Tensor<2>) -> Tensor<2> {
        let per_task = self.trunk.forward(h, self.towers.len());
        let logits: Vec<Tensor<2>> = self
            .towers
            .iter()
            .zip(per_task)
            .map(|(tower, x)| tower.forward(x))
            .collect();
        Tensor::cat(logits, 1)
    }

    /// The bottom's input `[fields ⊕ one attention output per group ⊕ dense]`; with `aux`,
    /// the DIEN groups' auxiliary losses are pushed there (training).
    fn bottom_input(&self, inputs: NetInputs, mut aux: Option<&mut Vec<Tensor<1>>>) -> Tensor<2> {
        let [b, f, d] = inputs.fields.dims();
        let groups = self.groups.as_slice();
        debug_assert!(
            inputs
                .seq
                .as_ref()
                .is_none_or(|s| s.dims()[0] == b || s.dims()[0] == 1),
            "sequence rows must be B or 1"
        );
        let mut parts = Vec::with_capacity(2 + groups.len());
        if let (Some(seq), Some(bias)) = (inputs.seq, inputs.seq_mask_bias) {
            let [rows, l, s, _] = seq.dims();
            let items: Tensor<3> = if s == 1 {
                seq.reshape([rows, l, d])
            } else {
                seq.sum_dim(2).reshape([rows, l, d])
            };
            let mut attended = Vec::with_capacity(groups.len());
            let mut at = 0;
            let mut esu = self.esu.iter();
            let mut din = self.din.iter();
            let mut dien = self.dien.iter();
            for (i, g) in groups.iter().enumerate() {
                let shared = rows == 1 || inputs.shared_groups.get(i).copied().unwrap_or(false);
                // Row 0's sequence of a group every row shares: `[L, D]` and `[1, L]`.
                let one = (shared && b > 1).then(|| {
                    let one = items.clone().narrow(0, 0, 1).narrow(1, at, g.len);
                    let one_bias = bias.clone().narrow(0, 0, 1).narrow(2, at, g.len);
                    (one.reshape([g.len, d]), one_bias.reshape([1, g.len]))
                });
                let own = || own_positions(&items, &bias, groups.len(), at, g.len);
                let pooling = if g.heads == 0 {
                    Pooling::Plain
                } else if let Some(unit) = dien.next() {
                    Pooling::Dien(unit)
                } else if let Some(unit) = din.next() {
                    Pooling::Din(unit)
                } else {
                    esu.next().map_or(Pooling::Plain, Pooling::Mha)
                };
                let target = || query_input(&inputs.fields, &g.query_list());
                attended.push(match (pooling, one) {
                    (Pooling::Dien(unit), Some((one, one_bias))) => {
                        unit.forward_shared(target(), one, one_bias)
                    }
                    (Pooling::Dien(unit), None) => {
                        let (own, own_bias) = own();
                        match aux.as_deref_mut() {
                            Some(losses) => {
                                let (out, loss) = unit.forward_with_aux(target(), own, own_bias);
                                losses.extend(loss);
                                out
                            }
                            None => unit.forward(target(), own, own_bias),
                        }
                    }
                    (Pooling::Din(unit), Some((one, one_bias))) => {
                        unit.forward_shared(target(), one, one_bias)
                    }
                    (Pooling::Din(unit), None) => {
                        let (own, own_bias) = own();
                        unit.forward(target(), own, own_bias)
                    }
                    (Pooling::Mha(mha), Some((one, one_bias))) => {
                        mha.forward_shared(target(), one, one_bias)
                    }
                    (Pooling::Mha(mha), None) => {
                        let (own, own_bias) = own();
                        mha.forward(target(), own, own_bias)
                    }
                    (Pooling::Plain, one) => {
                        let query = query_input(&inputs.fields, &[g.query_field]);
                        match one {
                            Some((one, one_bias)) => shared_target_attention(query, one, one_bias),
                            None => {
                                let (own, own_bias) = own();
                                target_attention(query, own, own_bias)
                            }
                        }
                    }
                });
                at += g.len;
            }
            parts.push(inputs.fields.reshape([b, f * d]));
            parts.extend(attended);
        } else {
            parts.push(inputs.fields.reshape([b, f * d]));
        }
        if let Some(dense) = inputs.dense {
            match self.c3_table.first() {
                Some(table) => {
                    let [_, width] = dense.dims();
                    let rows = table.dims()[0];
                    if width > rows {
                        parts.push(dense.clone().narrow(1, 0, width - rows));
                    }
                    parts.push(dense.narrow(1, width - rows, rows).matmul(table.val()));
                }
                None => parts.push(dense),
            }
        }
        if parts.len() == 1 {
            parts.remove(0)
        } else {
            Tensor::cat(parts, 1)
        }
    }
}

/// How a group's sequence is pooled into one vector.
enum Pooling<'a> {
    /// Parameter-free single-head target attention.
    Plain,
    /// The multi-head ESU.
    Mha(&'a MultiHeadTargetAttention),
    /// DIN's activation unit.
    Din(&'a DinAttention),
    /// DIEN's extractor and AUGRU.
    Dien(&'a DienUnit),
}

/// The query input of a group: the embeddings of `fields` side by side, `[B, n·D]`.
fn query_input(fields: &Tensor<3>, which: &[usize]) -> Tensor<2> {
    let [b, _, d] = fields.dims();
    match which {
        [one] => fields.clone().narrow(1, *one, 1).reshape([b, d]),
        _ => {
            let v: Vec<i64> = which.iter().map(|&j| j as i64).collect();
            let index =
                Tensor::<1, Int>::from_data(TensorData::new(v, [which.len()]), &fields.device());
            fields
                .clone()
                .select(1, index)
                .reshape([b, which.len() * d])
        }
    }
}

/// A group's own positions of the sequence and its bias (the whole axis for one group).
fn own_positions(
    items: &Tensor<3>,
    bias: &Tensor<3>,
    groups: usize,
    at: usize,
    len: usize,
) -> (Tensor<3>, Tensor<3>) {
    if groups == 1 {
        (items.clone(), bias.clone())
    } else {
        (
            items.clone().narrow(1, at, len),
            bias.clone().narrow(2, at, len),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn tensor<const D: usize>(rng: &mut SplitMix64, shape: [usize; D]) -> Tensor<D> {
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.uniform(1.0)).collect();
        Tensor::from_data(TensorData::new(v, shape), &Device::flex())
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap_or_default()
    }

    /// Two groups, written out by hand: positions 0..2 attended by field 0, positions
    /// 2..5 by field 1, each attention output after the flattened fields, in group order.
    #[test]
    fn each_group_attends_over_its_own_positions_with_its_own_query() {
        let (b, f, l, d) = (3, 2, 5, 4);
        let config = RankerConfig {
            embedding_dim: d,
            hidden: vec![8],
            tower_hidden: vec![],
            ..RankerConfig::full_cross()
        };
        let groups = SeqGroups::single(2)
            .with(SeqGroup::plain(3, 1))
            .unwrap_or_default();
        let shape = InputShape {
            fields: f,
            seq_len: l,
            seq_subkeys: 1,
            dense: 0,
            groups,
        };
        shape.validate().unwrap_or_else(|e| panic!("{e}"));
        let device = Device::flex();
        let net = RankerNet::new(&config, shape, &device);
        let mut rng = SplitMix64::new(4);
        let fields: Tensor<3> = tensor(&mut rng, [b, f, d]);
        let seq: Tensor<4> = tensor(&mut rng, [b, l, 1, d]);
        // Row 1 pads its last position of each group.
        let mut bias = vec![0.0f32; b * l];
        bias[l + 1] = -1e9;
        bias[l + 4] = -1e9;
        let bias: Tensor<3> = Tensor::from_data(TensorData::new(bias, [b, 1, l]), &device);
        let inputs = NetInputs {
            fields: fields.clone(),
            seq: Some(seq.clone()),
            seq_mask_bias: Some(bias.clone()),
            dense: None,
            shared_groups: Vec::new(),
        };
        let got = net.forward(inputs.clone());

        let items: Tensor<3> = seq.reshape([b, l, d]);
        let query = |i: usize| fields.clone().narrow(1, i, 1).reshape([b, d]);
        let first = target_attention(
            query(0),
            items.clone().narrow(1, 0, 2),
            bias.clone().narrow(2, 0, 2),
        );
        let second = target_attention(query(1), items.narrow(1, 2, 3), bias.narrow(2, 2, 3));
        let x = Tensor::cat(vec![fields.clone().reshape([b, f * d]), first, second], 1);
        let per_task = net.trunk.forward(net.bottom.forward(x), net.towers.len());
        let logits: Vec<Tensor<2>> = net
            .towers
            .iter()
            .zip(per_task)
            .map(|(t, h)| t.forward(h))
            .collect();
        let want = values(Tensor::cat(logits, 1));
        let got = values(got);
        assert_eq!(got.len(), b * config.tasks.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }

        // The same weights with the second group queried by field 0 answer otherwise: the
        // query field is honoured, not always field 0.
        let swapped = RankerNet {
            groups: SeqGroups::single(2)
                .with(SeqGroup::plain(3, 0))
                .unwrap_or_default(),
            ..net.clone()
        };
        let other = values(swapped.forward(inputs));
        assert!(
            other.iter().zip(&got).any(|(o, g)| (o - g).abs() > 1e-4),
            "query field ignored"
        );
    }

    /// A request batch: every row shares fields 1 and 2 (the user) and differs in field 0
    /// (the candidate). Computing the shared fields' first-layer product once gives the
    /// plain forward's logits.
    #[test]
    fn shared_fields_forward_equals_the_plain_forward() {
        let (b, f, l, d, dense) = (6, 3, 4, 4, 2);
        let config = RankerConfig {
            embedding_dim: d,
            hidden: vec![8, 4],
            tower_hidden: vec![],
            ..RankerConfig::full_cross()
        };
        let shape = InputShape {
            fields: f,
            seq_len: l,
            seq_subkeys: 1,
            dense,
            groups: SeqGroups::single(l),
        };
        let device = Device::flex();
        let net = RankerNet::new(&config, shape, &device);
        let mut rng = SplitMix64::new(9);
        let user: Vec<f32> = (0..2 * d).map(|_| rng.uniform(1.0)).collect();
        let mut fields = Vec::new();
        for _ in 0..b {
            fields.extend((0..d).map(|_| rng.uniform(1.0)));
            fields.extend_from_slice(&user);
        }
        let inputs = NetInputs {
            fields: Tensor::from_data(TensorData::new(fields, [b, f, d]), &device),
            seq: Some(tensor(&mut rng, [b, l, 1, d])),
            seq_mask_bias: Some(Tensor::zeros([b, 1, l], &device)),
            dense: Some(tensor(&mut rng, [b, dense])),
            shared_groups: Vec::new(),
        };
        let plain = values(net.forward(inputs.clone()));
        for shared in [[false, true, true], [false, true, false], [false; 3]] {
            let got = values(net.forward_shared(inputs.clone(), &shared));
            assert_eq!(got.len(), plain.len());
            for (g, p) in got.iter().zip(&plain) {
                assert!((g - p).abs() < 1e-5, "{shared:?}: {got:?} vs {plain:?}");
            }
        }
    }

    /// A request whose rows all carry one user's two history groups (the second with
    /// padding): attending row 0's sequence with every row's query, from a `[1, L, S, D]`
    /// sequence or from flags on the full one, gives the plain forward's logits.
    #[test]
    fn shared_sequence_groups_forward_equals_the_plain_forward() {
        let (b, f, d) = (5, 2, 4);
        let config = RankerConfig {
            embedding_dim: d,
            hidden: vec![8],
            tower_hidden: vec![],
            ..RankerConfig::full_cross()
        };
        let groups = SeqGroups::single(3)
            .with(SeqGroup {
                len: 2,
                query_field: 1,
                heads: 2,
                query_fields: 0b11,
            })
            .unwrap_or_default();
        let l = groups.total_len();
        let shape = InputShape {
            fields: f,
            seq_len: l,
            seq_subkeys: 2,
            dense: 0,
            groups,
        };
        let device = Device::flex();
        let net = RankerNet::new(&config, shape, &device);
        let mut rng = SplitMix64::new(21);
        let fields: Tensor<3> = tensor(&mut rng, [b, f, d]);
        let one: Vec<f32> = (0..l * 2 * d).map(|_| rng.uniform(1.0)).collect();
        let mut one_bias = vec![0.0f32; l];
        one_bias[4] = -1e9;
        let repeat = |v: &[f32]| -> Vec<f32> { (0..b).flat_map(|_| v.iter().copied()).collect() };
        let full = NetInputs {
            fields: fields.clone(),
            seq: Some(Tensor::from_data(
                TensorData::new(repeat(&one), [b, l, 2, d]),
                &device,
            )),
            seq_mask_bias: Some(Tensor::from_data(
                TensorData::new(repeat(&one_bias), [b, 1, l]),
                &device,
            )),
            dense: None,
            shared_groups: Vec::new(),
        };
        let plain = values(net.forward(full.clone()));
        let single = NetInputs {
            seq: Some(Tensor::from_data(
                TensorData::new(one.clone(), [1, l, 2, d]),
                &device,
            )),
            seq_mask_bias: Some(Tensor::from_data(
                TensorData::new(one_bias.clone(), [1, 1, l]),
                &device,
            )),
            ..full.clone()
        };
        let flagged = |g: Vec<bool>| NetInputs {
            shared_groups: g,
            ..full.clone()
        };
        for (name, inputs) in [
            ("batch-1 sequence", single),
            ("both flagged", flagged(vec![true, true])),
            ("second flagged", flagged(vec![false, true])),
        ] {
            let got = values(net.forward_shared(inputs, &[false, false]));
            assert_eq!(got.len(), plain.len());
            for (g, p) in got.iter().zip(&plain) {
                assert!((g - p).abs() < 1e-5, "{name}: {got:?} vs {plain:?}");
            }
        }
    }
}

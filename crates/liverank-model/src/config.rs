//! Model configuration: what the ranker looks like and how it learns.

use liverank_types::{GsuKind, Task};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// The multi-task trunk between the shared bottom MLP and the task towers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrunkKind {
    /// Multi-gate mixture of experts: shared experts, one softmax gate per task.
    Mmoe,
    /// Customised gate control: shared plus task-specific experts, one level.
    Cgc,
    /// Progressive layered extraction: `levels` CGC levels with a shared gate between them.
    Ple,
}

/// Shape of the trunk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrunkConfig {
    /// MMoE, CGC or PLE.
    pub kind: TrunkKind,
    /// Experts every task can use.
    pub shared_experts: usize,
    /// Experts of each task (CGC/PLE only).
    pub specific_experts: usize,
    /// Extraction levels (PLE only; CGC is one level).
    pub levels: usize,
    /// Width of each expert's output.
    pub expert_hidden: usize,
}

impl Default for TrunkConfig {
    fn default() -> Self {
        Self {
            kind: TrunkKind::Ple,
            shared_experts: 2,
            specific_experts: 1,
            levels: 2,
            expert_hidden: 64,
        }
    }
}

/// Which loss the labels are trained with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// Masked BCE: only reported labels count (realtime, naive30, complete samples).
    Masked,
    /// BCE on fast samples plus the positive-unlabeled correction on slow samples.
    Pu,
}

/// Which row-wise optimiser updates the embedding rows (see
/// [`crate::embedding::RowOptimizer`] for the update rules).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SparseOptimizer {
    /// Adagrad (`learning_rate`, `initial_accumulator`).
    #[default]
    Adagrad,
    /// FTRL-proximal (`learning_rate` is α; `ftrl_beta`, `ftrl_l1`, `ftrl_l2`).
    Ftrl,
    /// Lazy Adam (`learning_rate`, `adam_beta1`, `adam_beta2`, `adam_eps`).
    Adam,
}

/// Sparse (embedding) side of the ranker; turned into the store's own config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SparseConfig {
    /// Row-wise optimiser of the embedding rows.
    pub optimizer: SparseOptimizer,
    /// Learning rate of the embedding rows (FTRL: α).
    pub learning_rate: f32,
    /// Adagrad initial accumulator.
    pub initial_accumulator: f32,
    /// FTRL learning-rate offset β.
    pub ftrl_beta: f32,
    /// FTRL L1 strength.
    pub ftrl_l1: f32,
    /// FTRL L2 strength.
    pub ftrl_l2: f32,
    /// Adam first-moment decay.
    pub adam_beta1: f32,
    /// Adam second-moment decay.
    pub adam_beta2: f32,
    /// Adam's term added to the root.
    pub adam_eps: f32,
    /// An id gets a row after this many sightings in training (1 = at once).
    pub min_count: u32,
    /// Rows untouched for this many training steps are evicted (0 = never).
    pub ttl_steps: u64,
    /// Eviction never shrinks the table below this many rows.
    pub keep_floor: usize,
    /// New rows start uniform in ±`init_scale`.
    pub init_scale: f32,
    /// Rows to allocate up front (0 = grow on demand). A growing table doubles by copying
    /// every row into fresh pages, a pause of tens of milliseconds at a million rows; size
    /// this to the ids a day brings.
    pub reserve_rows: usize,
}

impl Default for SparseConfig {
    fn default() -> Self {
        Self {
            optimizer: SparseOptimizer::Adagrad,
            learning_rate: 0.05,
            // 0.1 (TensorFlow's default) rather than PyTorch's 0: a zero accumulator makes
            // every new id's first step ±lr per coordinate, pure noise for rare ids; on the
            // small preset it cost 0.03 click AUC (0.544 vs 0.574).
            initial_accumulator: 0.1,
            ftrl_beta: 1.0,
            ftrl_l1: 0.0,
            ftrl_l2: 0.0,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_eps: 1e-8,
            min_count: 1,
            ttl_steps: 0,
            keep_floor: 100_000,
            init_scale: 0.05,
            reserve_rows: 0,
        }
    }
}

impl SparseConfig {
    /// Adagrad's term added to the root (not a setting: PyTorch's default).
    pub const ADAGRAD_EPS: f32 = 1e-10;

    /// The store's row optimiser these settings describe.
    pub fn row_optimizer(&self) -> crate::embedding::RowOptimizer {
        use crate::embedding::RowOptimizer;
        match self.optimizer {
            SparseOptimizer::Adagrad => RowOptimizer::Adagrad {
                lr: self.learning_rate,
                initial_accumulator: self.initial_accumulator,
                eps: Self::ADAGRAD_EPS,
            },
            SparseOptimizer::Ftrl => RowOptimizer::Ftrl {
                alpha: self.learning_rate,
                beta: self.ftrl_beta,
                l1: self.ftrl_l1,
                l2: self.ftrl_l2,
            },
            SparseOptimizer::Adam => RowOptimizer::Adam {
                lr: self.learning_rate,
                beta1: self.adam_beta1,
                beta2: self.adam_beta2,
                eps: self.adam_eps,
            },
        }
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(ModelError::Config(format!("sparse: {reason}")));
        let finite = [
            ("learning_rate", self.learning_rate),
            ("initial_accumulator", self.initial_accumulator),
            ("ftrl_beta", self.ftrl_beta),
            ("ftrl_l1", self.ftrl_l1),
            ("ftrl_l2", self.ftrl_l2),
            ("adam_beta1", self.adam_beta1),
            ("adam_beta2", self.adam_beta2),
            ("adam_eps", self.adam_eps),
            ("init_scale", self.init_scale),
        ];
        if let Some((name, v)) = finite.iter().find(|(_, v)| !v.is_finite() || *v < 0.0) {
            return bad(format!("{name} must be finite and ≥ 0, got {v}"));
        }
        if self.learning_rate <= 0.0 {
            return bad("learning_rate must be positive".into());
        }
        for (name, v) in [
            ("adam_beta1", self.adam_beta1),
            ("adam_beta2", self.adam_beta2),
        ] {
            if v >= 1.0 {
                return bad(format!("{name} must be below 1, got {v}"));
            }
        }
        if self.optimizer == SparseOptimizer::Adam && self.adam_eps <= 0.0 {
            return bad("adam_eps must be positive".into());
        }
        if self.min_count == 0 {
            return bad("min_count must be at least 1 (1 = a row at the first sighting)".into());
        }
        Ok(())
    }
}

/// A Cross GSU sequence the ranker attends over: the one enum of the kinds, in
/// `liverank-types` (the older name, kept for existing callers).
pub type HistorySequence = GsuKind;

/// Everything that shapes the ranker and its training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RankerConfig {
    /// Tasks with a head, in output order.
    pub tasks: Vec<Task>,
    /// Loss weight per task, same order as `tasks` (missing = 1).
    pub task_weights: Vec<f32>,
    /// Embedding width D.
    pub embedding_dim: usize,
    /// Bottom MLP widths (ReLU after each).
    pub hidden: Vec<usize>,
    /// Multi-task trunk.
    pub trunk: TrunkConfig,
    /// Hidden widths of each task tower before its logit (empty = a linear tower).
    pub tower_hidden: Vec<usize>,
    /// Most recent statistic buckets fed as dense inputs.
    pub stat_lookback: usize,
    /// Products in the room's product sequence group (target attention over them).
    pub product_seq_len: usize,
    /// Cross history sequences, one attention group each, queried by the target room's
    /// category; empty = no history input.
    pub history_sequences: Vec<GsuKind>,
    /// Positions of each history sequence (the GSU length L).
    pub history_len: usize,
    /// Dense summary of the user's whole visible history against the target: counts and
    /// the shares of video plays, long views and live sessions in the target's category and
    /// of live sessions with the target's author.
    pub history_profile: bool,
    /// Heads of the ESU (Moment&Cross eq. 7): each history group is a multi-head target
    /// attention whose query is projected from the target live's fields (live, author,
    /// category, author type, fans bucket, room age). 0 = the single-head attention without
    /// parameters queried by the target's category alone (decision 21).
    pub esu_heads: usize,
    /// The unit that pools each history group: `attention` (target attention, single- or
    /// multi-head by `esu_heads`) or `din` (DIN's activation unit, `[model.din]`). Not
    /// written when it is the default, so older configurations serialise as before.
    #[serde(skip_serializing_if = "EsuUnit::is_default")]
    pub esu: EsuUnit,
    /// DIN's activation unit, when `esu = "din"`.
    #[serde(skip_serializing_if = "DinConfig::is_default")]
    pub din: DinConfig,
    /// DIEN's auxiliary loss, when `esu = "dien"`.
    #[serde(skip_serializing_if = "DienConfig::is_default")]
    pub dien: DienConfig,
    /// λ of the contrastive alignment (eq. 6): InfoNCE between L2(mean(V_mixed)) and
    /// L2(mean(V_x)) for every other configured history sequence x, with in-batch
    /// negatives, added to the ranking loss with this weight. 0 = off.
    pub contrastive_weight: f32,
    /// Temperature τ of the contrastive InfoNCE.
    pub contrastive_temperature: f32,
    /// Prior share of the target's category in the profile's smoothed log share of plays;
    /// 0 = from the data (`liverank train` sets it to one over the number of room
    /// categories among the training samples; unset, each user's own spread decides).
    pub history_prior: f32,
    /// Weight of that prior, in pseudo-plays.
    pub history_prior_plays: f32,
    /// Adam learning rate of the dense part.
    pub learning_rate: f64,
    /// Loss of the training samples.
    pub loss: LossKind,
    /// Embedding store.
    pub sparse: SparseConfig,
    /// Seed of every random choice (init, shuffles).
    pub seed: u64,
    /// LiveForesighter's frozen forecasters as stop-gradient inputs (issue 16, eq. 3 and
    /// 5); both branches off by default, and then not written at all, so a configuration
    /// without them serialises exactly as before.
    #[serde(skip_serializing_if = "ForesightInputs::is_off")]
    pub foresight: ForesightInputs,
}

/// The unit that pools a history group into one vector (the ESU slot of Cross).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EsuUnit {
    /// Target attention: parameter-free single-head with `esu_heads = 0`, else the
    /// multi-head ESU (Moment&Cross eq. 7).
    #[default]
    Attention,
    /// DIN's activation unit ([`crate::layers::DinAttention`]).
    Din,
    /// DIEN's GRU interest extractor and AUGRU interest evolution
    /// ([`crate::dien::DienUnit`]), with the auxiliary loss of `[model.dien]`.
    Dien,
}

impl EsuUnit {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// DIN's activation unit: `MLP([q, k, q − k, q ⊙ k])` per history item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DinConfig {
    /// Widths of the unit's hidden layers (ReLU after each), then one weight per item.
    pub hidden: Vec<usize>,
    /// Normalise a row's weights with a softmax (the paper keeps them raw).
    pub softmax: bool,
}

impl Default for DinConfig {
    fn default() -> Self {
        // The paper's activation unit has one hidden layer of 36.
        Self {
            hidden: vec![36],
            softmax: false,
        }
    }
}

impl DinConfig {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// DIEN's settings: the weight of the extractor's auxiliary next-behaviour loss.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DienConfig {
    /// α of the auxiliary loss added to the ranking loss (the paper's default is 1).
    pub aux_weight: f32,
}

impl Default for DienConfig {
    fn default() -> Self {
        Self { aux_weight: 1.0 }
    }
}

impl DienConfig {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The two LiveForesighter branches of the ranker's input (see
/// [`crate::foresight::inputs`] for the layout and the masking).
///
/// The forecasters travel with the ranker as a checksummed reference: `dir` holds
/// `forecaster.bin` and `product.bin` (`liverank forecast train`), and once pinned
/// ([`ForesightInputs::pin`], done by training) the CRC32 of each file is part of the
/// configuration, so of every checkpoint and published model; loading a model whose
/// files' checksums differ is an error (decision foresight-1).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForesightInputs {
    /// Statistic branch: flatten(forecast of the next H buckets) ⊕ flatten(encoder tokens).
    pub stat: bool,
    /// The stat branch includes the encoder's series tokens (eq. 3's flatten(encoder
    /// output)); false: the forecast and the indicators only (an ablation).
    pub stat_tokens: bool,
    /// Product branch: softmax(ĉ3)·C̃3 ⊕ E_prod (the last product's hidden state).
    pub product: bool,
    /// Width of C̃3's rows (a trainable ranker parameter `[c3_rows × c3_dim]`).
    pub c3_dim: usize,
    /// Directory of `forecaster.bin` and `product.bin`.
    pub dir: String,
    /// CRC32 of `forecaster.bin` without its 4-byte trailer (0 = not pinned yet).
    pub stat_crc: u32,
    /// CRC32 of `product.bin` without its 4-byte trailer (0 = not pinned yet).
    pub product_crc: u32,
    /// Classes of the product model's softmax (rows of C̃3; set when pinned).
    pub c3_rows: usize,
    /// Rooms' forecasts kept in the cache (keyed by room and input window); 0 = no cache.
    pub cache_entries: usize,
    /// The loaded forecasters, shared by every clone of the configuration (loaded from
    /// `dir` on first use; tests and benches may set in-memory ones with
    /// [`crate::foresight::Loaded::from_models`]).
    #[serde(skip)]
    pub loaded: crate::foresight::inputs::Loaded,
}

impl Default for ForesightInputs {
    fn default() -> Self {
        Self {
            stat: false,
            stat_tokens: true,
            product: false,
            c3_dim: 16,
            dir: String::new(),
            stat_crc: 0,
            product_crc: 0,
            c3_rows: 0,
            cache_entries: 100_000,
            loaded: Default::default(),
        }
    }
}

impl PartialEq for ForesightInputs {
    fn eq(&self, other: &Self) -> bool {
        (
            self.stat,
            self.stat_tokens,
            self.product,
            self.c3_dim,
            &self.dir,
            self.stat_crc,
            self.product_crc,
            self.c3_rows,
            self.cache_entries,
        ) == (
            other.stat,
            other.stat_tokens,
            other.product,
            other.c3_dim,
            &other.dir,
            other.stat_crc,
            other.product_crc,
            other.c3_rows,
            other.cache_entries,
        )
    }
}

impl ForesightInputs {
    /// Neither branch on.
    pub fn is_off(&self) -> bool {
        !self.stat && !self.product
    }

    /// The frozen forecasters of the branches that are on (`None` when both are off),
    /// loaded once per configuration and checked against the pinned checksums.
    pub fn models(&self) -> Result<Option<std::sync::Arc<crate::foresight::Foresighter>>> {
        if self.is_off() {
            return Ok(None);
        }
        self.loaded.get(self).map(Some)
    }

    /// Loads the forecasters and pins their checksums and the C̃3 row count into this
    /// configuration (training does this before it builds the network).
    pub fn pin(&mut self) -> Result<()> {
        if self.is_off() {
            return Ok(());
        }
        // Checks the checksums already pinned (a resumed model) against the files.
        let models = self.loaded.get(self)?;
        self.stat_crc = models.stat_crc();
        self.product_crc = models.product_crc();
        self.c3_rows = models.c3_rows();
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        if self.is_off() {
            return Ok(());
        }
        let bad = |m: &str| Err(ModelError::Config(format!("foresight: {m}")));
        if self.dir.is_empty() {
            return bad("a branch is on but `dir` (the forecasters' directory) is not set");
        }
        if self.product && self.c3_dim == 0 {
            return bad("c3_dim must be positive");
        }
        let models = self.loaded.get(self)?;
        // 0: not pinned yet (`Trainer::new` pins before it builds the network).
        if self.product && self.c3_rows != 0 && self.c3_rows != models.c3_rows() {
            return bad("c3_rows is not the product model's class count");
        }
        Ok(())
    }
}

impl Default for RankerConfig {
    fn default() -> Self {
        Self {
            tasks: Task::ALL.to_vec(),
            task_weights: Vec::new(),
            embedding_dim: 16,
            hidden: vec![256, 128],
            trunk: TrunkConfig::default(),
            tower_hidden: vec![32],
            stat_lookback: 8,
            product_seq_len: 20,
            // The three hard searches with the single-head ESU: on `small` (3 seeds) they
            // match full Cross's click GAUC at 4× its training speed (decision cross-6);
            // [`RankerConfig::full_cross`] is the paper's whole model.
            history_sequences: vec![GsuKind::Short, GsuKind::AidHard, GsuKind::Mixed],
            history_len: 50,
            history_profile: true,
            esu_heads: 0,
            esu: EsuUnit::Attention,
            din: DinConfig::default(),
            dien: DienConfig::default(),
            contrastive_weight: 0.0,
            contrastive_temperature: 0.1,
            history_prior: 0.0,
            history_prior_plays: 3.1,
            learning_rate: 1e-3,
            loss: LossKind::Masked,
            sparse: SparseConfig::default(),
            seed: 42,
            foresight: ForesightInputs::default(),
        }
    }
}

impl RankerConfig {
    /// The whole of Moment&Cross (SPEC §4): the five GSU sequences (two of them soft
    /// searches), the 4-head ESU and the contrastive alignment at λ = 0.1, over the
    /// default's other settings.
    pub fn full_cross() -> Self {
        Self {
            history_sequences: vec![
                GsuKind::Short,
                GsuKind::Long,
                GsuKind::AidHard,
                GsuKind::LiveLong,
                GsuKind::Mixed,
            ],
            esu_heads: 4,
            contrastive_weight: 0.1,
            ..Self::default()
        }
    }

    /// Checks what serde cannot: non-empty shapes and consistent lengths.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(ModelError::Config(reason));
        if self.tasks.is_empty() {
            return bad("tasks must not be empty".into());
        }
        if !self.task_weights.is_empty() && self.task_weights.len() != self.tasks.len() {
            return bad(format!(
                "task_weights has {} entries for {} tasks",
                self.task_weights.len(),
                self.tasks.len()
            ));
        }
        if self.embedding_dim == 0 || self.hidden.is_empty() || self.hidden.contains(&0) {
            return bad("embedding_dim and hidden widths must be positive".into());
        }
        let t = &self.trunk;
        if t.expert_hidden == 0 || t.shared_experts + t.specific_experts == 0 {
            return bad("the trunk needs at least one expert of positive width".into());
        }
        if t.kind == TrunkKind::Mmoe && t.shared_experts == 0 {
            return bad("mmoe needs shared_experts > 0".into());
        }
        if t.kind == TrunkKind::Ple && t.levels == 0 {
            return bad("ple needs levels > 0".into());
        }
        if !self.history_sequences.is_empty() && self.history_len == 0 {
            return bad("history_len must be positive when history_sequences are set".into());
        }
        if self.history_sequences.len() + 1 > crate::network::MAX_SEQ_GROUPS {
            return bad(format!(
                "at most {} history sequences",
                crate::network::MAX_SEQ_GROUPS - 1
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = self.history_sequences.iter().find(|h| !seen.insert(**h)) {
            return bad(format!("history sequence `{}` listed twice", dup.as_str()));
        }
        if self.esu_heads > 0 && !self.embedding_dim.is_multiple_of(self.esu_heads) {
            return bad(format!(
                "esu_heads {} must divide embedding_dim {}",
                self.esu_heads, self.embedding_dim
            ));
        }
        if self.esu == EsuUnit::Din && (self.din.hidden.is_empty() || self.din.hidden.contains(&0))
        {
            return bad("din.hidden must list positive widths".into());
        }
        if !(self.dien.aux_weight.is_finite() && self.dien.aux_weight >= 0.0) {
            return bad(format!(
                "dien.aux_weight must be a finite number ≥ 0, not {}",
                self.dien.aux_weight
            ));
        }
        if !(self.contrastive_weight >= 0.0 && self.contrastive_weight.is_finite()) {
            return bad("contrastive_weight must be finite and >= 0".into());
        }
        if !(self.contrastive_temperature > 0.0 && self.contrastive_temperature.is_finite()) {
            return bad("contrastive_temperature must be finite and > 0".into());
        }
        if !(0.0..=1.0).contains(&self.history_prior) {
            return bad(format!(
                "history_prior must be a share in [0, 1], got {}",
                self.history_prior
            ));
        }
        if !(self.history_prior_plays > 0.0 && self.history_prior_plays.is_finite()) {
            return bad("history_prior_plays must be positive".into());
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate must be positive".into());
        }
        if self.task_weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return bad("task_weights must be finite and ≥ 0".into());
        }
        if self
            .tasks
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len()
            != self.tasks.len()
        {
            return bad("a task is listed twice".into());
        }
        self.sparse.validate()?;
        self.foresight.validate()
    }

    /// This configuration with the priors that are 0 ("from the data") set from the
    /// training samples: `history_prior` = one over the number of distinct room categories
    /// among them (unchanged when none has a category).
    pub fn with_data_priors(mut self, samples: &[liverank_types::Sample]) -> Self {
        if self.history_prior == 0.0 {
            let mut categories: Vec<u32> = samples
                .iter()
                .filter_map(|s| s.category.map(|c| c.0))
                .collect();
            categories.sort_unstable();
            categories.dedup();
            if !categories.is_empty() {
                self.history_prior = 1.0 / categories.len() as f32;
            }
        }
        self
    }

    /// Loss weight of the task at `index`.
    pub fn task_weight(&self, index: usize) -> f32 {
        self.task_weights.get(index).copied().unwrap_or(1.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::*;
    use crate::embedding::RowOptimizer;
    use liverank_types::{
        CategoryId, EventTime, ExposureFeatures, LabelMask, LiveId, Policy, RequestId, Sample,
        SampleKind, UserId,
    };

    #[test]
    fn the_sparse_optimizer_setting_picks_the_store_optimizer() {
        let mut s = SparseConfig::default();
        assert!(matches!(
            s.row_optimizer(),
            RowOptimizer::Adagrad { lr, initial_accumulator, .. } if lr == 0.05 && initial_accumulator == 0.1
        ));
        s.optimizer = SparseOptimizer::Ftrl;
        s.ftrl_l1 = 0.5;
        assert_eq!(
            s.row_optimizer(),
            RowOptimizer::Ftrl {
                alpha: 0.05,
                beta: 1.0,
                l1: 0.5,
                l2: 0.0
            }
        );
        s.optimizer = SparseOptimizer::Adam;
        assert_eq!(
            s.row_optimizer(),
            RowOptimizer::Adam {
                lr: 0.05,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8
            }
        );
        let trainer_side = crate::trainer::embedding_config(&RankerConfig {
            sparse: s.clone(),
            ..RankerConfig::default()
        });
        assert_eq!(trainer_side.optimizer, s.row_optimizer());
        s.adam_beta1 = 1.0;
        assert!(s.validate().unwrap_err().to_string().contains("adam_beta1"));
    }

    #[test]
    fn data_priors_count_the_training_categories() {
        let sample = |c: Option<u32>| Sample {
            sample_id: 1,
            policy: Policy::Realtime,
            kind: SampleKind::Close,
            seq: 0,
            ts: EventTime(10),
            request_id: RequestId(1),
            live: LiveId(1),
            user: UserId(1),
            author: None,
            exposure_ts: EventTime(5),
            category: c.map(CategoryId),
            labels: LabelMask::default(),
            features: std::sync::Arc::new(ExposureFeatures::default()),
        };
        let samples = [
            sample(Some(3)),
            sample(Some(5)),
            sample(Some(3)),
            sample(None),
        ];
        let c = RankerConfig::default().with_data_priors(&samples);
        assert_eq!(c.history_prior, 0.5);
        // A set prior is kept; no categories at all leave it unset.
        let set = RankerConfig {
            history_prior: 0.1,
            ..RankerConfig::default()
        };
        assert_eq!(set.with_data_priors(&samples).history_prior, 0.1);
        assert_eq!(
            RankerConfig::default()
                .with_data_priors(&[sample(None)])
                .history_prior,
            0.0
        );
    }
}

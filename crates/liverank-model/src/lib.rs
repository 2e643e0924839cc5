//! The ranker of liverank: our sparse embedding store feeding a dense multi-task network on
//! burn (flex CPU backend), trained with the Moment masked BCE or the fast/slow PU loss.
//!
//! Main types: [`RankerConfig`] (shape and training settings), [`FeatureBuilder`] (samples →
//! [`FeatureBatch`]), [`network::RankerNet`] (bottom MLP → MMoE/CGC/PLE → towers, with target
//! attention over a sequence group), and [`Trainer`] (one optimisation step: gather rows,
//! forward, backward, Adam on the dense part, row-wise Adagrad on the touched rows).
//!
//! Key decision: the embedding table is ours, not a burn parameter. Burn has no sparse
//! gradients, and a framework-owned 1M-row table measured 7–14× slower; so rows are gathered
//! into leaf tensors per step and their gradients handed back to the store, which sums them
//! per id and updates only the touched rows. Burn types stay inside this crate and
//! `liverank-train`; serving sees the framework-free [`liverank_types::Ranker`]-style API of
//! [`Scorer`].

pub mod config;
pub mod dien;
pub mod embedding;
pub mod error;
pub mod features;
pub mod foresight;
pub mod layers;
pub mod loss;
pub mod network;
pub mod publish;
pub mod rng;
pub mod soft;
pub mod trainer;
pub mod two_tower;

pub use config::{
    DienConfig, DinConfig, EsuUnit, HistorySequence, LossKind, RankerConfig, SparseConfig,
    SparseOptimizer, TrunkConfig, TrunkKind,
};
pub use error::{ModelError, Result};
pub use features::{FeatureBatch, FeatureBuilder};
pub use network::{InputShape, MAX_SEQ_GROUPS, SeqGroup, SeqGroups};
pub use publish::{ModelPublisher, ModelReader, PublishConfig, PublisherState};
pub use trainer::{Scorer, StepStats, Trainer};

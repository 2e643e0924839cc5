//! Configuration of the serving API (the `[serve]` section of `config/default.toml`).

use crate::error::{Result, ServeError};
use liverank_types::Task;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Per-source quotas of the recall merge: how many rooms each source may contribute
/// before deduplication.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecallQuotas {
    /// Rooms of authors the user follows (100).
    pub followed: usize,
    /// Rooms in the user's top categories from history (200).
    pub category: usize,
    /// Rooms nearest to the user's vector (user · room, exact) (200).
    pub embedding: usize,
    /// Popular rooms on air now, by recent enters and viewers (200).
    pub popular: usize,
    /// Rooms of authors related to the user's through the author graph (100).
    pub graph: usize,
    /// Top categories of the user's history the category source reads (3).
    pub top_categories: usize,
}

impl Default for RecallQuotas {
    fn default() -> Self {
        Self {
            followed: 100,
            category: 200,
            embedding: 200,
            popular: 200,
            graph: 100,
            top_categories: 3,
        }
    }
}

/// The author graph of graph recall (`[serve.graph]`, [`crate::graph::AuthorGraph`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphConfig {
    /// A user's last this many engaged authors are each co-viewed with the next (5).
    pub window: usize,
    /// Co-viewed authors kept per author, and authors kept per category (64).
    pub max_neighbours: usize,
    /// Weight of author ↔ category ↔ author relations beside co-viewing (0.5).
    pub category_weight: f64,
    /// Weight of the second co-viewing hop (0.5).
    pub second_hop: f64,
    /// Seed authors per request: the followed ones, then engaged history authors (10).
    pub seeds: usize,
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self {
            window: 5,
            max_neighbours: 64,
            category_weight: 0.5,
            second_hop: 0.5,
            seeds: 10,
        }
    }
}

/// Address, token, limits, fusion exponents and recall quotas of the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Listen address (`127.0.0.1:8080`).
    pub addr: String,
    /// Bearer token of the write and admin endpoints; empty = those endpoints refuse
    /// every request (set it here or with `LIVERANK__SERVE__TOKEN`).
    pub token: String,
    /// Largest request body in bytes (1 MiB).
    pub max_body_bytes: usize,
    /// Largest `count` of a recommend request (200).
    pub max_count: usize,
    /// Largest number of events in one `POST /v1/events` batch (10,000).
    pub max_events: usize,
    /// Largest number of candidates ranked per request, after the recall merge (1,000).
    pub max_candidates: usize,
    /// Records of `GET /v1/users/{id}/history` at most (100).
    pub max_history: usize,
    /// Fusion exponent α per task: score = Π (1 + ŷ_task)^α_task; a task not listed has
    /// α = 0 (its prediction is reported, not fused).
    pub alpha: BTreeMap<Task, f64>,
    /// Served exposures remembered for the train/serve join, (request_id, live) pairs
    /// (200,000; the oldest forgotten first).
    pub exposure_log: usize,
    /// How often a model directory is polled for new versions, ms (200).
    pub model_poll_ms: u64,
    /// Recall quotas.
    pub recall: RecallQuotas,
    /// The author graph of the graph recall source.
    pub graph: GraphConfig,
    /// How candidates are ordered: by the model, or by popularity alone (a baseline arm of
    /// an A/B test; it needs no model).
    pub ranking: RankingMode,
}

/// What orders the recalled rooms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RankingMode {
    /// The served model's fused score (SPEC §5).
    #[default]
    Model,
    /// Recent demand on air (enters of the last two closed buckets plus the viewers of
    /// the last), the popularity recall source's own order; no model is read.
    Popularity,
}

impl RankingMode {
    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Popularity => "popularity",
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".to_string(),
            token: String::new(),
            max_body_bytes: 1 << 20,
            max_count: 200,
            max_events: 10_000,
            max_candidates: 1_000,
            max_history: 100,
            alpha: BTreeMap::from([
                (Task::Click, 1.0),
                (Task::LongView, 1.0),
                (Task::Like, 0.2),
                (Task::Comment, 0.2),
                (Task::Follow, 0.5),
                (Task::Gift, 0.5),
                (Task::Purchase, 0.5),
            ]),
            exposure_log: 200_000,
            model_poll_ms: 200,
            recall: RecallQuotas::default(),
            graph: GraphConfig::default(),
            ranking: RankingMode::Model,
        }
    }
}

impl ServeConfig {
    /// Checks limits are positive and exponents finite and non-negative.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(ServeError::Config(reason));
        if self.addr.parse::<std::net::SocketAddr>().is_err() {
            return bad(format!("serve.addr `{}` is not host:port", self.addr));
        }
        for (name, v) in [
            ("max_body_bytes", self.max_body_bytes),
            ("max_count", self.max_count),
            ("max_events", self.max_events),
            ("max_candidates", self.max_candidates),
            ("max_history", self.max_history),
            ("exposure_log", self.exposure_log),
            ("model_poll_ms", self.model_poll_ms as usize),
        ] {
            if v == 0 {
                return bad(format!("serve.{name} must be positive"));
            }
        }
        let g = &self.graph;
        let weight = |w: f64| w.is_finite() && w >= 0.0;
        if !(weight(g.category_weight) && weight(g.second_hop)) {
            return bad("serve.graph.category_weight and second_hop must be finite and ≥ 0".into());
        }
        if g.max_neighbours == 0 {
            return bad("serve.graph.max_neighbours must be positive".into());
        }
        for (task, a) in &self.alpha {
            if !a.is_finite() || *a < 0.0 {
                return bad(format!(
                    "serve.alpha.{task} must be finite and non-negative, got {a}"
                ));
            }
        }
        let q = &self.recall;
        if q.followed + q.category + q.embedding + q.popular == 0 {
            return bad("serve.recall quotas are all 0: no candidate could be recalled".into());
        }
        Ok(())
    }

    /// α of `task` (0 when not configured).
    pub fn alpha_of(&self, task: Task) -> f64 {
        self.alpha.get(&task).copied().unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_are_named() {
        ServeConfig::default().validate().unwrap();
        let mut c = ServeConfig {
            max_count: 0,
            ..ServeConfig::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("max_count"), "{e}");
        c.max_count = 10;
        c.alpha.insert(Task::Gift, -1.0);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("alpha.gift"), "{e}");
        c.alpha.insert(Task::Gift, 0.5);
        c.addr = "nowhere".into();
        assert!(c.validate().is_err());
    }
}

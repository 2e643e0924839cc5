//! The index a deployment uses, as one configuration section: which implementation, the
//! metric, and the HNSW parameters. [`AnnConfig::build`] turns it into a boxed
//! [`VectorIndex`].

use serde::{Deserialize, Serialize};

use crate::{Error, ExactIndex, HnswConfig, HnswIndex, Metric, Result, VectorIndex};

/// Which [`VectorIndex`] implementation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexKind {
    /// Brute force: exact, the right choice below a few thousand rooms.
    Exact,
    /// Our HNSW graph.
    #[default]
    Hnsw,
}

/// An `[ann]`-style section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnnConfig {
    /// The implementation. Default `hnsw`.
    pub index: IndexKind,
    /// The similarity. Default `cosine`.
    pub metric: Metric,
    /// HNSW parameters (ignored by `exact`).
    pub hnsw: HnswConfig,
}

impl AnnConfig {
    /// Checks the HNSW parameters.
    pub fn validate(&self) -> Result<()> {
        self.hnsw.validate()
    }

    /// An empty index of `dim`-dimensional vectors.
    pub fn build(&self, dim: usize) -> Result<Box<dyn VectorIndex + Send + Sync>> {
        self.validate()?;
        if dim == 0 {
            return Err(Error::InvalidConfig("dimension must be at least 1".into()));
        }
        Ok(match self.index {
            IndexKind::Exact => Box::new(ExactIndex::new(dim, self.metric)?),
            IndexKind::Hnsw => Box::new(HnswIndex::new(dim, self.metric, self.hnsw.clone())?),
        })
    }
}

impl<T: VectorIndex + ?Sized> VectorIndex for Box<T> {
    fn dim(&self) -> usize {
        (**self).dim()
    }

    fn metric(&self) -> Metric {
        (**self).metric()
    }

    fn insert(&mut self, id: u64, vector: &[f32]) -> Result<bool> {
        (**self).insert(id, vector)
    }

    fn remove(&mut self, id: u64) -> bool {
        (**self).remove(id)
    }

    fn contains(&self, id: u64) -> bool {
        (**self).contains(id)
    }

    fn len(&self) -> usize {
        (**self).len()
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<(u64, f32)>> {
        (**self).search(query, k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OnAirIndex;
    use liverank_types::id::LiveId;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn ann_config_parses_builds_each_kind_and_refuses_bad_values() {
        assert_send_sync::<HnswIndex>();
        assert_send_sync::<ExactIndex>();
        let config: AnnConfig =
            toml::from_str("index = \"exact\"\nmetric = \"inner_product\"\n[hnsw]\nm = 8")
                .expect("parse");
        assert_eq!(
            (config.index, config.metric, config.hnsw.m),
            (IndexKind::Exact, Metric::InnerProduct, 8)
        );
        assert!(toml::from_str::<AnnConfig>("kind = \"exact\"").is_err());
        for kind in [IndexKind::Exact, IndexKind::Hnsw] {
            let config = AnnConfig {
                index: kind,
                ..AnnConfig::default()
            };
            let mut rooms = OnAirIndex::new(config.build(2).expect("build"));
            rooms.live_start(LiveId(5), &[1.0, 0.0]).expect("start");
            rooms.live_start(LiveId(6), &[0.0, 1.0]).expect("start");
            assert!(rooms.live_end(LiveId(5)));
            assert!(
                !rooms.update_vector(LiveId(5), &[1.0, 0.0]).expect("valid"),
                "an ended room stays off air"
            );
            let hits = rooms.search(&[1.0, 0.0], 5).expect("search");
            assert_eq!(hits.len(), 1);
            assert_eq!(hits[0].0, LiveId(6));
        }
        assert!(AnnConfig::default().build(0).is_err());
        let bad = AnnConfig {
            hnsw: HnswConfig {
                m: 0,
                ..HnswConfig::default()
            },
            ..AnnConfig::default()
        };
        assert!(bad.build(4).is_err());
    }
}

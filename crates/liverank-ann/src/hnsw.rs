//! Our HNSW (hierarchical navigable small world, Malkov & Yashunin 2018, algorithms 1, 2
//! and 4): a layered proximity graph searched greedily from the top layer down, neighbours
//! chosen by the diversity heuristic.
//!
//! Deletes (a room going off air) are tombstones: the node stays in the graph as a
//! stepping stone but is never returned, and new nodes only link to live ones. Once the
//! tombstones pass `max_tombstone_ratio` of the nodes, the graph is rebuilt from the live
//! vectors (amortised: one rebuild per `ratio × nodes` deletes). A search that reaches
//! fewer than `k` live nodes (or any search with `k` ≥ the live count) falls back to an
//! exact scan, so a search always returns `min(k, len)` ids.
//!
//! With `quantized_search` (the default) a search walks the graph scoring 8-bit codes of
//! the vectors (a quarter of the memory traffic) and re-ranks the `ef_search` nodes it
//! ends with by their full vectors: returned scores are always exact. Inserts build the
//! graph with the full vectors.
//!
//! Deterministic: node levels come from a SplitMix64 seeded by the config, the graph
//! depends only on the order of inserts and removes, and hash maps are never iterated.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use liverank_types::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use crate::metric::{dot_i8, quantize};
use crate::top_k::{Ranked, TopK};
use crate::{Error, Metric, Result, VectorIndex, dot};

/// The highest layer a node can be drawn on (the expected top layer of a million nodes at
/// `m = 16` is about 5).
const MAX_LEVEL: usize = 16;

/// HNSW parameters. `[ann]`-style section; every field has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HnswConfig {
    /// Links per node on the upper layers (layer 0 keeps up to `2 m`). Default 16.
    pub m: usize,
    /// Beam width while inserting. Default 200.
    pub ef_construction: usize,
    /// Beam width while searching (at least `k` is used). Default 64.
    pub ef_search: usize,
    /// Rebuild the graph once tombstones exceed this share of its nodes, in (0, 1].
    /// Default 0.25. The rebuild runs inside the `remove` / `insert` that crosses the
    /// ratio; 1.0 disables it, leaving [`HnswIndex::compact`] to the owner (e.g. on a
    /// clone off the serving path, then swapped in).
    pub max_tombstone_ratio: f64,
    /// Seed of the level draws. Default 0x5EED.
    pub seed: u64,
    /// Walk the graph with 8-bit codes of the vectors (a quarter of the memory traffic)
    /// and re-rank the `ef_search` nodes found with the full vectors. Default true.
    pub quantized_search: bool,
}

impl Default for HnswConfig {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
            max_tombstone_ratio: 0.25,
            seed: 0x5EED,
            quantized_search: true,
        }
    }
}

impl HnswConfig {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<()> {
        if !(2..=128).contains(&self.m) {
            return Err(Error::InvalidConfig(format!(
                "m = {} outside 2..=128",
                self.m
            )));
        }
        if self.ef_construction == 0 || self.ef_search == 0 {
            return Err(Error::InvalidConfig(
                "ef_construction and ef_search must be at least 1".into(),
            ));
        }
        if !(self.max_tombstone_ratio > 0.0 && self.max_tombstone_ratio <= 1.0) {
            return Err(Error::InvalidConfig(format!(
                "max_tombstone_ratio = {} outside (0, 1]",
                self.max_tombstone_ratio
            )));
        }
        Ok(())
    }
}

/// A visited set over node indexes: one bit per node.
struct Visited {
    bits: Vec<u64>,
}

impl Visited {
    fn new(nodes: usize) -> Self {
        Self {
            bits: vec![0; nodes / 64 + 1],
        }
    }

    /// Marks `node`; returns whether it was unmarked.
    fn insert(&mut self, node: u32) -> bool {
        let (word, bit) = (node as usize / 64, node % 64);
        let mask = 1u64 << bit;
        let fresh = self.bits[word] & mask == 0;
        self.bits[word] |= mask;
        fresh
    }
}

/// The HNSW index. See the module documentation for deletes and determinism.
#[derive(Debug, Clone)]
pub struct HnswIndex {
    dim: usize,
    metric: Metric,
    config: HnswConfig,
    /// Link capacity on layer 0.
    m0: usize,
    /// 1 / ln(m): the level distribution's scale.
    level_scale: f64,
    rng: SplitMix64,
    /// Node → external id.
    ids: Vec<u64>,
    /// Node vectors, `dim` each, normalised under cosine.
    data: Vec<f32>,
    /// 8-bit codes of the node vectors, `dim` each, and their scales.
    codes: Vec<i8>,
    code_scales: Vec<f32>,
    /// Layer-0 links: `m0 + 1` slots per node, `[count, links…]`.
    layer0: Vec<u32>,
    /// Upper-layer links per node: `m + 1` slots per layer 1..=level, `[count, links…]`.
    upper: Vec<Vec<u32>>,
    deleted: Vec<bool>,
    /// Live external id → node.
    slots: HashMap<u64, u32>,
    entry: Option<u32>,
    top_level: usize,
    tombstones: usize,
    rebuilds: usize,
}

impl HnswIndex {
    /// An empty index of `dim`-dimensional vectors.
    pub fn new(dim: usize, metric: Metric, config: HnswConfig) -> Result<Self> {
        config.validate()?;
        if dim == 0 {
            return Err(Error::InvalidConfig("dimension must be at least 1".into()));
        }
        let m0 = 2 * config.m;
        Ok(Self {
            dim,
            metric,
            m0,
            level_scale: 1.0 / (config.m as f64).ln(),
            rng: SplitMix64::new(config.seed),
            config,
            ids: Vec::new(),
            data: Vec::new(),
            codes: Vec::new(),
            code_scales: Vec::new(),
            layer0: Vec::new(),
            upper: Vec::new(),
            deleted: Vec::new(),
            slots: HashMap::new(),
            entry: None,
            top_level: 0,
            tombstones: 0,
            rebuilds: 0,
        })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &HnswConfig {
        &self.config
    }

    /// Changes the search beam width (≥ 1) without rebuilding.
    pub fn set_ef_search(&mut self, ef_search: usize) {
        self.config.ef_search = ef_search.max(1);
    }

    /// Graph nodes, live and tombstoned.
    pub fn nodes(&self) -> usize {
        self.ids.len()
    }

    /// Tombstoned nodes still in the graph.
    pub fn tombstones(&self) -> usize {
        self.tombstones
    }

    /// How many times the graph was rebuilt to drop tombstones.
    pub fn rebuilds(&self) -> usize {
        self.rebuilds
    }

    /// Rebuilds the graph from the live vectors, dropping every tombstone. Inserts them in
    /// their current node order, so the result is deterministic.
    pub fn compact(&mut self) {
        let live: Vec<(u64, Vec<f32>)> = (0..self.ids.len())
            .filter(|&node| !self.deleted[node])
            .map(|node| (self.ids[node], self.vector(node as u32).to_vec()))
            .collect();
        self.clear_graph();
        for (id, vector) in live {
            self.insert_prepared(id, &vector);
        }
        self.rebuilds += 1;
    }

    fn clear_graph(&mut self) {
        self.ids.clear();
        self.data.clear();
        self.codes.clear();
        self.code_scales.clear();
        self.layer0.clear();
        self.upper.clear();
        self.deleted.clear();
        self.slots.clear();
        self.entry = None;
        self.top_level = 0;
        self.tombstones = 0;
    }

    fn vector(&self, node: u32) -> &[f32] {
        let start = node as usize * self.dim;
        &self.data[start..start + self.dim]
    }

    fn links(&self, node: u32, level: usize) -> &[u32] {
        if level == 0 {
            let base = node as usize * (self.m0 + 1);
            let count = self.layer0[base] as usize;
            &self.layer0[base + 1..base + 1 + count]
        } else {
            let list = &self.upper[node as usize];
            let base = (level - 1) * (self.config.m + 1);
            let count = list[base] as usize;
            &list[base + 1..base + 1 + count]
        }
    }

    fn set_links(&mut self, node: u32, level: usize, links: &[u32]) {
        let (list, base) = if level == 0 {
            (&mut self.layer0, node as usize * (self.m0 + 1))
        } else {
            (
                &mut self.upper[node as usize],
                (level - 1) * (self.config.m + 1),
            )
        };
        list[base] = links.len() as u32;
        list[base + 1..base + 1 + links.len()].copy_from_slice(links);
    }

    fn random_level(&mut self) -> usize {
        // Uniform in (0, 1]: 53 random bits, shifted away from zero.
        let u = ((self.rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        ((-u.ln() * self.level_scale) as usize).min(MAX_LEVEL)
    }

    fn score(&self, query: &[f32], node: u32) -> f32 {
        dot(query, self.vector(node))
    }

    /// Greedy descent (beam 1) through the layers above `to_level`, tombstones included.
    fn descend<F: Fn(u32) -> f32>(&self, score: &F, mut entry: Ranked, to_level: usize) -> Ranked {
        for level in (to_level + 1..=self.top_level).rev() {
            let mut improved = true;
            while improved {
                improved = false;
                for &next in self.links(entry.id as u32, level) {
                    let candidate = Ranked {
                        score: score(next),
                        id: u64::from(next),
                    };
                    if candidate > entry {
                        entry = candidate;
                        improved = true;
                    }
                }
            }
        }
        entry
    }

    /// Algorithm 2: beam search of width `ef` on one layer from `entries`. Tombstones are
    /// walked through but never returned. Returns live nodes, best first (`Ranked.id` is
    /// the node index).
    fn search_layer<F: Fn(u32) -> f32>(
        &self,
        score: &F,
        entries: &[Ranked],
        ef: usize,
        level: usize,
    ) -> Vec<Ranked> {
        let mut visited = Visited::new(self.ids.len());
        let mut candidates: BinaryHeap<Ranked> = BinaryHeap::new();
        let mut results: BinaryHeap<Reverse<Ranked>> = BinaryHeap::new();
        for &entry in entries {
            if visited.insert(entry.id as u32) {
                candidates.push(entry);
                if !self.deleted[entry.id as usize] {
                    results.push(Reverse(entry));
                }
            }
        }
        while results.len() > ef {
            results.pop();
        }
        // Unvisited neighbours of the current node are gathered first and scored in one
        // tight loop: their vector loads are independent, so the memory system overlaps
        // the cache misses instead of serialising them behind the heap updates.
        let mut fresh: Vec<u32> = Vec::with_capacity(self.m0);
        let mut fresh_scores: Vec<f32> = Vec::with_capacity(self.m0);
        while let Some(current) = candidates.pop() {
            if results.len() >= ef
                && let Some(Reverse(worst)) = results.peek()
                && current < *worst
            {
                break;
            }
            fresh.clear();
            fresh.extend(
                self.links(current.id as u32, level)
                    .iter()
                    .copied()
                    .filter(|&next| visited.insert(next)),
            );
            fresh_scores.clear();
            fresh_scores.extend(fresh.iter().map(|&next| score(next)));
            for (&next, &score) in fresh.iter().zip(&fresh_scores) {
                let candidate = Ranked {
                    score,
                    id: u64::from(next),
                };
                let admit = results.len() < ef
                    || results
                        .peek()
                        .is_some_and(|Reverse(worst)| candidate > *worst);
                if admit {
                    candidates.push(candidate);
                    if !self.deleted[next as usize] {
                        results.push(Reverse(candidate));
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
        }
        let mut out: Vec<Ranked> = results.into_iter().map(|Reverse(r)| r).collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        out
    }

    /// Algorithm 4 (the diversity heuristic, without filling up with pruned candidates):
    /// walk `candidates` best first (scores against the base vector) and keep one only if
    /// it is more similar to the base than to every neighbour kept so far.
    fn select_neighbours(&self, candidates: &[Ranked], limit: usize) -> Vec<u32> {
        let mut kept: Vec<u32> = Vec::with_capacity(limit);
        for candidate in candidates {
            if kept.len() >= limit {
                break;
            }
            let node = candidate.id as u32;
            let vector = self.vector(node);
            let diverse = kept
                .iter()
                .all(|&other| dot(vector, self.vector(other)) < candidate.score);
            if diverse {
                kept.push(node);
            }
        }
        kept
    }

    /// Adds the link `from → to` on `level`, shrinking `from`'s list with the heuristic
    /// when it is full.
    fn connect(&mut self, from: u32, to: u32, level: usize) {
        let capacity = if level == 0 { self.m0 } else { self.config.m };
        let current = self.links(from, level);
        if current.contains(&to) {
            return;
        }
        if current.len() < capacity {
            let mut links = current.to_vec();
            links.push(to);
            self.set_links(from, level, &links);
            return;
        }
        let base = self.vector(from);
        let mut candidates: Vec<Ranked> = current
            .iter()
            .chain(std::iter::once(&to))
            .filter(|&&n| !self.deleted[n as usize] || n == to)
            .map(|&n| Ranked {
                score: dot(base, self.vector(n)),
                id: u64::from(n),
            })
            .collect();
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        let links = self.select_neighbours(&candidates, capacity);
        self.set_links(from, level, &links);
    }

    /// Inserts an already prepared vector under a new id (the caller removed any old one).
    fn insert_prepared(&mut self, id: u64, vector: &[f32]) {
        if self.slots.is_empty() && !self.ids.is_empty() {
            // Only tombstones left: start a fresh graph rather than hang off dead nodes.
            self.clear_graph();
        }
        let node = self.ids.len() as u32;
        let level = self.random_level();
        self.ids.push(id);
        self.data.extend_from_slice(vector);
        let (codes, scale) = quantize(vector);
        self.codes.extend_from_slice(&codes);
        self.code_scales.push(scale);
        self.layer0.resize(self.layer0.len() + self.m0 + 1, 0);
        self.upper.push(vec![0; level * (self.config.m + 1)]);
        self.deleted.push(false);
        self.slots.insert(id, node);

        let Some(entry) = self.entry else {
            self.entry = Some(node);
            self.top_level = level;
            return;
        };
        let entry = Ranked {
            score: self.score(vector, entry),
            id: u64::from(entry),
        };
        let score = |n: u32| self.score(vector, n);
        let mut entries = vec![self.descend(&score, entry, level.min(self.top_level))];
        for layer in (0..=level.min(self.top_level)).rev() {
            let score = |n: u32| self.score(vector, n);
            let found = self.search_layer(&score, &entries, self.config.ef_construction, layer);
            let found: Vec<Ranked> = found
                .into_iter()
                .filter(|r| r.id != u64::from(node))
                .collect();
            let neighbours = self.select_neighbours(&found, self.config.m);
            self.set_links(node, layer, &neighbours);
            for &neighbour in &neighbours {
                self.connect(neighbour, node, layer);
            }
            if !found.is_empty() {
                entries = found;
            }
        }
        if level > self.top_level {
            self.top_level = level;
            self.entry = Some(node);
        }
    }

    fn maybe_compact(&mut self) {
        if self.slots.is_empty() {
            self.clear_graph();
        } else if self.tombstones as f64 > self.config.max_tombstone_ratio * self.ids.len() as f64 {
            self.compact();
        }
    }

    /// Descends from `entry` to layer 0 and beam-searches it with width `ef`.
    fn walk<F: Fn(u32) -> f32>(&self, score: &F, entry: u32, ef: usize) -> Vec<Ranked> {
        let entry = Ranked {
            score: score(entry),
            id: u64::from(entry),
        };
        let entry = self.descend(score, entry, 0);
        self.search_layer(score, &[entry], ef, 0)
    }

    fn exact_scan(&self, query: &[f32], k: usize) -> Vec<(u64, f32)> {
        let mut top = TopK::new(k);
        for node in 0..self.ids.len() {
            if !self.deleted[node] {
                top.push(self.ids[node], self.score(query, node as u32));
            }
        }
        top.into_sorted()
    }
}

impl VectorIndex for HnswIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn insert(&mut self, id: u64, vector: &[f32]) -> Result<bool> {
        let vector = self.metric.prepare(self.dim, vector)?;
        let replaced = if let Some(node) = self.slots.remove(&id) {
            self.deleted[node as usize] = true;
            self.tombstones += 1;
            true
        } else {
            false
        };
        self.insert_prepared(id, &vector);
        self.maybe_compact();
        Ok(replaced)
    }

    fn remove(&mut self, id: u64) -> bool {
        let Some(node) = self.slots.remove(&id) else {
            return false;
        };
        self.deleted[node as usize] = true;
        self.tombstones += 1;
        self.maybe_compact();
        true
    }

    fn contains(&self, id: u64) -> bool {
        self.slots.contains_key(&id)
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<(u64, f32)>> {
        let query = self.metric.prepare(self.dim, query)?;
        let live = self.slots.len();
        let k = k.min(live);
        if k == 0 {
            return Ok(Vec::new());
        }
        let Some(entry) = self.entry else {
            return Ok(Vec::new());
        };
        if k == live {
            return Ok(self.exact_scan(&query, k));
        }
        let ef = self.config.ef_search.max(k);
        let found = if self.config.quantized_search {
            let (codes, scale) = quantize(&query);
            let score = |n: u32| {
                let start = n as usize * self.dim;
                let code = &self.codes[start..start + self.dim];
                scale * self.code_scales[n as usize] * dot_i8(&codes, code) as f32
            };
            self.walk(&score, entry, ef)
        } else {
            self.walk(&|n: u32| self.score(&query, n), entry, ef)
        };
        if found.len() < k {
            return Ok(self.exact_scan(&query, k));
        }
        // Re-rank with the full vectors: returned scores are always exact.
        let mut top = TopK::new(k);
        for hit in found {
            let node = hit.id as u32;
            top.push(self.ids[node as usize], self.score(&query, node));
        }
        Ok(top.into_sorted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExactIndex;

    fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = SplitMix64::new(seed);
        (0..n)
            .map(|_| (0..dim).map(|_| rng.uniform(1.0)).collect())
            .collect()
    }

    fn recall_at(k: usize, hnsw: &HnswIndex, exact: &ExactIndex, queries: &[Vec<f32>]) -> f64 {
        let mut hit = 0usize;
        for query in queries {
            let truth: Vec<u64> = exact
                .search(query, k)
                .expect("search")
                .iter()
                .map(|h| h.0)
                .collect();
            let got = hnsw.search(query, k).expect("search");
            hit += got.iter().filter(|h| truth.contains(&h.0)).count();
        }
        hit as f64 / (k * queries.len()) as f64
    }

    #[test]
    fn hnsw_config_defaults_parse_and_bad_values_are_refused() {
        let parsed: HnswConfig = toml::from_str("m = 8").expect("parse");
        assert_eq!(parsed.m, 8);
        assert_eq!(parsed.ef_search, HnswConfig::default().ef_search);
        assert!(toml::from_str::<HnswConfig>("mm = 8").is_err());
        for bad in [
            HnswConfig {
                m: 1,
                ..HnswConfig::default()
            },
            HnswConfig {
                ef_search: 0,
                ..HnswConfig::default()
            },
            HnswConfig {
                max_tombstone_ratio: 0.0,
                ..HnswConfig::default()
            },
            HnswConfig {
                max_tombstone_ratio: f64::NAN,
                ..HnswConfig::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hnsw_recall_at_10_against_exact_on_5000_vectors() {
        let (n, dim) = (5_000, 32);
        let config = HnswConfig {
            m: 12,
            ef_construction: 100,
            ef_search: 64,
            ..HnswConfig::default()
        };
        let mut hnsw = HnswIndex::new(dim, Metric::Cosine, config).expect("config");
        let mut exact = ExactIndex::new(dim, Metric::Cosine).expect("dim");
        for (id, v) in random_vectors(n, dim, 1).iter().enumerate() {
            hnsw.insert(id as u64, v).expect("insert");
            exact.insert(id as u64, v).expect("insert");
        }
        let queries = random_vectors(200, dim, 2);
        let recall = recall_at(10, &hnsw, &exact, &queries);
        assert!(recall >= 0.9, "recall@10 = {recall}");
        // Scores are the exact cosine of the returned ids.
        let hits = hnsw.search(&queries[0], 10).expect("search");
        for (id, score) in hits {
            let v = exact.vector(id).expect("present");
            let q = Metric::Cosine.prepare(dim, &queries[0]).expect("q");
            assert!((dot(&q, v) - score).abs() < 1e-6);
        }
    }

    #[test]
    fn hnsw_deletes_are_never_returned_and_compaction_keeps_recall() {
        let (n, dim) = (2_000, 16);
        let config = HnswConfig {
            m: 8,
            ef_construction: 64,
            ef_search: 64,
            max_tombstone_ratio: 0.3,
            quantized_search: true,
            seed: 9,
        };
        let mut hnsw = HnswIndex::new(dim, Metric::InnerProduct, config).expect("config");
        let mut exact = ExactIndex::new(dim, Metric::InnerProduct).expect("dim");
        let vectors = random_vectors(n, dim, 3);
        for (id, v) in vectors.iter().enumerate() {
            hnsw.insert(id as u64, v).expect("insert");
            exact.insert(id as u64, v).expect("insert");
        }
        // Remove every other id: 1000 tombstones, past 0.3 → at least one rebuild.
        for id in (0..n as u64).step_by(2) {
            assert!(hnsw.remove(id));
            exact.remove(id);
        }
        assert!(hnsw.rebuilds() >= 1);
        assert!(hnsw.tombstones() as f64 <= 0.3 * hnsw.nodes() as f64);
        assert_eq!(hnsw.len(), n / 2);
        let queries = random_vectors(100, dim, 4);
        for query in &queries {
            for (id, _) in hnsw.search(query, 20).expect("search") {
                assert_eq!(id % 2, 1, "removed id {id} returned");
            }
        }
        assert!(recall_at(10, &hnsw, &exact, &queries) >= 0.9);
    }

    #[test]
    fn hnsw_ratio_one_leaves_compaction_to_the_owner() {
        let config = HnswConfig {
            m: 4,
            max_tombstone_ratio: 1.0,
            ..HnswConfig::default()
        };
        let mut index = HnswIndex::new(4, Metric::Cosine, config).expect("config");
        for (id, v) in random_vectors(200, 4, 8).iter().enumerate() {
            index.insert(id as u64, v).expect("insert");
        }
        for id in 0..180 {
            index.remove(id);
        }
        assert_eq!(
            (index.rebuilds(), index.tombstones(), index.nodes()),
            (0, 180, 200)
        );
        let before = index.search(&[0.1, 0.2, 0.3, 0.4], 20).expect("search");
        assert!(before.iter().all(|(id, _)| *id >= 180));
        index.compact();
        assert_eq!(
            (index.rebuilds(), index.tombstones(), index.nodes()),
            (1, 0, 20)
        );
        assert_eq!(
            index.search(&[0.1, 0.2, 0.3, 0.4], 20).expect("search"),
            before
        );
    }

    #[test]
    fn hnsw_is_deterministic_given_the_seed() {
        let vectors = random_vectors(500, 8, 5);
        let build = || {
            let mut index = HnswIndex::new(
                8,
                Metric::Cosine,
                HnswConfig {
                    m: 4,
                    ef_search: 8,
                    ..HnswConfig::default()
                },
            )
            .expect("config");
            for (id, v) in vectors.iter().enumerate() {
                index.insert(id as u64, v).expect("insert");
            }
            for id in 0..100 {
                index.remove(id * 3);
            }
            index
        };
        let (a, b) = (build(), build());
        assert_eq!(a.layer0, b.layer0);
        assert_eq!(a.upper, b.upper);
        let query = [0.3, -0.2, 0.1, 0.9, 0.0, 0.4, -0.5, 0.2];
        assert_eq!(
            a.search(&query, 10).expect("search"),
            b.search(&query, 10).expect("search")
        );
    }

    #[test]
    fn hnsw_returns_min_k_len_and_handles_emptying() {
        let mut index = HnswIndex::new(2, Metric::Cosine, HnswConfig::default()).expect("config");
        assert!(index.search(&[1.0, 0.0], 5).expect("search").is_empty());
        index.insert(1, &[1.0, 0.0]).expect("insert");
        index.insert(2, &[0.0, 1.0]).expect("insert");
        assert!(!index.insert(3, &[1.0, 1.0]).expect("insert"));
        assert_eq!(index.search(&[1.0, 0.1], 10).expect("search").len(), 3);
        for id in 1..=3 {
            assert!(index.remove(id));
        }
        assert!(index.is_empty());
        assert_eq!(index.nodes(), 0, "an empty index drops its tombstones");
        index.insert(4, &[1.0, 0.0]).expect("insert");
        assert_eq!(index.search(&[1.0, 0.0], 1).expect("search")[0].0, 4);
        assert!(matches!(
            index.search(&[1.0], 1),
            Err(Error::DimensionMismatch { .. })
        ));
    }
}

//! Property: under any sequence of `LiveStart` / `LiveEnd` / vector updates / searches,
//! the on-air index returns only rooms on air, `min(k, on air)` of them, with the exact
//! scores of their current vectors; with `k` ≥ the number on air it returns exactly the
//! on-air set in the reference order. Checked against a naive model (a map and a sort) for
//! the exact index and for HNSW with a tiny graph that rebuilds often.

use std::collections::BTreeMap;

use liverank_ann::{ExactIndex, HnswConfig, HnswIndex, Metric, OnAirIndex, VectorIndex, dot};
use liverank_types::id::LiveId;
use proptest::prelude::*;

const DIM: usize = 4;

#[derive(Clone, Debug)]
enum Op {
    Start(u64, Vec<f32>),
    End(u64),
    Update(u64, Vec<f32>),
    Search(Vec<f32>, usize),
}

/// Small integer components: many exact ties, which the tie rule must order by id.
fn vector() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-3i8..=3, DIM).prop_map(|v| {
        let mut v: Vec<f32> = v.into_iter().map(f32::from).collect();
        if v.iter().all(|&x| x == 0.0) {
            v[0] = 1.0;
        }
        v
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..24, vector()).prop_map(|(l, v)| Op::Start(l, v)),
        2 => (0u64..24).prop_map(Op::End),
        1 => (0u64..24, vector()).prop_map(|(l, v)| Op::Update(l, v)),
        3 => (vector(), 0usize..30).prop_map(|(q, k)| Op::Search(q, k)),
    ]
}

/// The naive model: the rooms on air and their raw vectors; search by sorting all.
fn naive_search(
    model: &BTreeMap<u64, Vec<f32>>,
    metric: Metric,
    query: &[f32],
    k: usize,
) -> Vec<(u64, f32)> {
    let query = metric.prepare(DIM, query).expect("valid query");
    let mut all: Vec<(u64, f32)> = model
        .iter()
        .map(|(&id, v)| {
            (
                id,
                dot(&query, &metric.prepare(DIM, v).expect("valid vector")),
            )
        })
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

fn check<I: VectorIndex>(
    mut index: OnAirIndex<I>,
    ops: &[Op],
    exact_order: bool,
) -> Result<(), TestCaseError> {
    let metric = index.index().metric();
    let mut model: BTreeMap<u64, Vec<f32>> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Start(live, v) => {
                let was = index.live_start(LiveId(*live), v).expect("valid vector");
                prop_assert_eq!(was, model.insert(*live, v.clone()).is_some());
            }
            Op::End(live) => {
                prop_assert_eq!(index.live_end(LiveId(*live)), model.remove(live).is_some());
            }
            Op::Update(live, v) => {
                let applied = index.update_vector(LiveId(*live), v).expect("valid vector");
                prop_assert_eq!(applied, model.contains_key(live));
                if let Some(slot) = model.get_mut(live) {
                    *slot = v.clone();
                }
            }
            Op::Search(query, k) => {
                let got: Vec<(u64, f32)> = index
                    .search(query, *k)
                    .expect("valid query")
                    .into_iter()
                    .map(|(live, score)| (live.get(), score))
                    .collect();
                let want = naive_search(&model, metric, query, *k);
                prop_assert_eq!(got.len(), want.len());
                if exact_order || *k >= model.len() {
                    prop_assert_eq!(&got, &want);
                } else {
                    let full = naive_search(&model, metric, query, model.len());
                    for (id, score) in &got {
                        let truth = full.iter().find(|(i, _)| i == id);
                        prop_assert!(truth.is_some(), "room {} returned but not on air", id);
                        prop_assert_eq!(truth.map(|t| t.1), Some(*score));
                    }
                    for pair in got.windows(2) {
                        prop_assert!(
                            pair[0].1 > pair[1].1
                                || (pair[0].1 == pair[1].1 && pair[0].0 < pair[1].0)
                        );
                    }
                }
            }
        }
        prop_assert_eq!(index.on_air(), model.len());
        for live in 0..24 {
            prop_assert_eq!(index.is_on_air(LiveId(live)), model.contains_key(&live));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn on_air_exact_index_matches_the_naive_model(ops in prop::collection::vec(op(), 0..120), cosine in any::<bool>()) {
        let metric = if cosine { Metric::Cosine } else { Metric::InnerProduct };
        check(OnAirIndex::new(ExactIndex::new(DIM, metric).expect("dim")), &ops, true)?;
    }

    #[test]
    fn on_air_hnsw_index_returns_only_rooms_on_air(ops in prop::collection::vec(op(), 0..120), cosine in any::<bool>(), seed in any::<u64>()) {
        let metric = if cosine { Metric::Cosine } else { Metric::InnerProduct };
        let config = HnswConfig { m: 2, ef_construction: 4, ef_search: 2, max_tombstone_ratio: 0.3, seed, quantized_search: seed % 2 == 0 };
        check(OnAirIndex::new(HnswIndex::new(DIM, metric, config).expect("config")), &ops, false)?;
    }
}

//! One recommend request, end to end: rooms on air at the request time → one history
//! read → labelled recall (quotas, dedup) → feature rows (the training code path:
//! [`FeatureBuilder::push_with_history`] over a [`Sample`] of the would-be exposure) → the
//! ranker on all candidates in one batch → score fusion Π(1 + ŷ_task)^α_task → top K,
//! with the time of each stage measured.
//!
//! The GSU sequences come from the one read: V_short and V_mixed do not depend on the
//! target and are assembled once; V_aidhard (the target author's videos) is filled per
//! candidate from an author index built in one pass over the same records, newest first;
//! V_long and V_livelong (soft search) per candidate with the target's row of the served
//! table — what [`GsuAssembler::assemble_from`] would return for that target (the skew
//! test checks it against the training code path).

use crate::config::ServeConfig;
use crate::error::Result;
use crate::exposure_log::{ExposureLog, ServedExposure};
use crate::model::{Ranker, ServedModel};
use crate::recall::{self, ExactIndex, Recall, RecallContext, RecallSource};
use crate::world::{OnAirRoom, World};
use liverank_history::{
    Domain, GsuAssembler, GsuKind, GsuRequest, GsuSequences, HistoryRecord, ItemVectors, NoVectors,
    Sequence, searches,
};
use liverank_model::FeatureBatch;
use liverank_model::features::{HistoryView, KeyKind, ProfileIndex, key};
use liverank_model::soft::item_key;
use liverank_types::{
    AuthorId, EventTime, LabelMask, LiveId, Policy, RequestId, Sample, SampleKind, Task, UserId,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a recommend call asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RankRequest {
    /// The viewer.
    pub user: UserId,
    /// Rooms wanted.
    pub count: usize,
    /// Request time; `None` = the stream's newest event time.
    pub ts: Option<EventTime>,
    /// The id the response and the later impressions carry.
    pub request_id: RequestId,
}

/// One ranked room.
#[derive(Clone, Debug, PartialEq)]
pub struct RankedRoom {
    /// The broadcast.
    pub live: LiveId,
    /// Its streamer.
    pub author: AuthorId,
    /// Fused score.
    pub score: f64,
    /// Predictions per task, in the model's task order.
    pub predictions: Vec<(Task, f32)>,
    /// The recall sources that proposed the room.
    pub sources: Vec<RecallSource>,
}

/// Time spent per stage of one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageTimes {
    /// On-air rooms and their features, follows, recall merge.
    pub recall: Duration,
    /// The one history read and the GSU assembly.
    pub history: Duration,
    /// Feature rows.
    pub features: Duration,
    /// The ranker's forward pass.
    pub ranker: Duration,
    /// Fusion, sort, top K, exposure log.
    pub fusion: Duration,
}

/// The answer to one request.
#[derive(Clone, Debug)]
pub struct Ranking {
    /// Request id (for the impressions).
    pub request_id: RequestId,
    /// The request time used.
    pub ts: EventTime,
    /// The model version that scored every candidate.
    pub model_version: u64,
    /// Nothing was known of the user: popular on-air rooms.
    pub cold_start: bool,
    /// Rooms on air at `ts`.
    pub on_air: usize,
    /// Candidates ranked.
    pub candidates: usize,
    /// Top `count`, best first.
    pub rooms: Vec<RankedRoom>,
    /// Time per stage.
    pub times: StageTimes,
}

/// Fused score Π_t (1 + ŷ_t)^α_t, computed as exp Σ α_t ln(1 + ŷ_t) (ŷ clamped to [0, 1]).
pub fn fuse(predictions: &[f32], alphas: &[f64]) -> f64 {
    predictions
        .iter()
        .zip(alphas)
        .map(|(&p, &a)| a * (1.0 + f64::from(p).clamp(0.0, 1.0)).ln())
        .sum::<f64>()
        .exp()
}

/// The request pipeline (shared by all handlers; holds no per-request state).
pub struct Recommender {
    config: Arc<ServeConfig>,
    sources: Vec<Box<dyn Recall>>,
    log: Arc<ExposureLog>,
}

impl std::fmt::Debug for Recommender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recommender")
            .field("sources", &self.sources.len())
            .finish_non_exhaustive()
    }
}

/// The rows a request scored (for the skew test and the benchmark).
#[derive(Clone, Debug)]
pub struct Scored {
    /// Candidates in row order.
    pub lives: Vec<LiveId>,
    /// The batch the ranker saw.
    pub batch: FeatureBatch,
}

impl Recommender {
    /// A recommender with the v1 recall sources. The GSU length is each model's own
    /// `history_len`, as in training.
    pub fn new(config: Arc<ServeConfig>, log: Arc<ExposureLog>) -> Self {
        Self {
            config,
            sources: recall::default_sources(),
            log,
        }
    }

    /// The exposure log.
    pub fn log(&self) -> &Arc<ExposureLog> {
        &self.log
    }

    /// Ranks for one request with `model`.
    pub fn rank(
        &self,
        world: &dyn World,
        model: &ServedModel,
        request: &RankRequest,
    ) -> Result<Ranking> {
        self.rank_scored(world, model, request).map(|(r, _)| r)
    }

    /// Ranks for one request by popularity alone (`serve.ranking = "popularity"`): the
    /// rooms on air by recent demand, ties by live id; no model, no history read.
    pub fn rank_popular(&self, world: &dyn World, request: &RankRequest) -> Ranking {
        let started = Instant::now();
        let ts = request
            .ts
            .or_else(|| world.event_time())
            .unwrap_or(EventTime(0));
        let mut rooms: Vec<OnAirRoom> = Vec::new();
        world.on_air(request.user, ts, &mut rooms);
        let mut order: Vec<usize> = (0..rooms.len()).collect();
        order.sort_by(|&a, &b| {
            rooms[b]
                .popularity
                .total_cmp(&rooms[a].popularity)
                .then(rooms[a].live.cmp(&rooms[b].live))
        });
        let candidates = order.len();
        order.truncate(request.count);
        let ranked = order
            .into_iter()
            .map(|i| RankedRoom {
                live: rooms[i].live,
                author: rooms[i].author,
                score: rooms[i].popularity,
                predictions: Vec::new(),
                sources: vec![RecallSource::Popular],
            })
            .collect();
        Ranking {
            request_id: request.request_id,
            ts,
            model_version: 0,
            cold_start: !world.knows_user(request.user),
            on_air: rooms.len(),
            candidates,
            rooms: ranked,
            times: StageTimes {
                recall: started.elapsed(),
                ..StageTimes::default()
            },
        }
    }

    /// [`Recommender::rank`], also returning the rows scored.
    pub fn rank_scored(
        &self,
        world: &dyn World,
        model: &ServedModel,
        request: &RankRequest,
    ) -> Result<(Ranking, Scored)> {
        let mut times = StageTimes::default();
        let user = request.user;
        let ts = request
            .ts
            .or_else(|| world.event_time())
            .unwrap_or(EventTime(0));

        // History first: the one read feeds the category recall and the GSU sequences.
        let started = Instant::now();
        let records = world.history().visible_shared(user, ts)?;
        times.history += started.elapsed();

        let started = Instant::now();
        let mut rooms: Vec<OnAirRoom> = Vec::new();
        world.on_air(user, ts, &mut rooms);
        let mut follows = Vec::new();
        world.follows(user, &mut follows);
        let ranker = model.ranker.as_ref();
        let user_vector = ranker.embedding(key(KeyKind::User, user.0));
        let vectors: Vec<Option<&[f32]>> = if user_vector.is_some() {
            rooms
                .iter()
                .map(|r| ranker.embedding(key(KeyKind::Live, r.live.0)))
                .collect()
        } else {
            Vec::new()
        };
        let index = ExactIndex::new(vectors);
        let related = if self.config.recall.graph > 0 {
            let seeds = crate::graph::seed_authors(&follows, &records, self.config.graph.seeds);
            world.related_authors(&seeds, self.config.recall.graph)
        } else {
            Vec::new()
        };
        let ctx = RecallContext {
            user,
            rooms: &rooms,
            follows: &follows,
            history: &records,
            user_vector,
            index: &index,
            top_categories: self.config.recall.top_categories,
            related: &related,
        };
        let cold_start = follows.is_empty() && records.is_empty() && user_vector.is_none();
        let recalled = recall::merge(
            &self.sources,
            &ctx,
            &self.config.recall,
            self.config.max_candidates,
        );
        times.recall += started.elapsed();

        // GSU sequences: the target-free ones once, V_aidhard per author.
        let started = Instant::now();
        let builder = &model.builder;
        let uses_history = builder.uses_history();
        let assembler = GsuAssembler::new(model.ranker.config().history_len);
        let len = assembler.len();
        let base_request = GsuRequest {
            user,
            target_author: AuthorId(0),
            before_ts: ts,
            query: &[],
        };
        let mut sequences = if uses_history {
            assembler.assemble_from(&records, &base_request, &NoVectors)?
        } else {
            GsuSequences::default()
        };
        let by_author = if uses_history {
            author_index(&records, len)
        } else {
            HashMap::new()
        };
        // The soft searches (V_long, V_livelong) depend on the target: per candidate, top-k
        // of the visible records by ⟨e_item, e_target⟩ in the served table, as training
        // searches its table ([`liverank_model::soft`]).
        let soft = uses_history && builder.uses_soft_search();
        let visible = &records[..records.partition_point(|r| r.available_at < ts)];
        let item_vectors = RankerVectors(ranker);
        let mut scored = Vec::new();
        times.history += started.elapsed();

        let started = Instant::now();
        // The history profile's counts, once for every candidate.
        let profile = if builder.uses_history_profile() {
            ProfileIndex::new(&records)
        } else {
            ProfileIndex::default()
        };
        let mut batch = builder.empty_batch();
        // LiveForesighter: the candidates' rooms not cached yet are forecast in one batch
        // (the rows below then read the cache; a failed batch is retried per row there).
        if let Some(foresight) = builder.foresighter() {
            let rows: Vec<_> = recalled
                .iter()
                .map(|r| (rooms[r.room].live.0, &*rooms[r.room].features))
                .collect();
            let _ = foresight.prefetch(&rows);
        }
        let mut lives = Vec::with_capacity(recalled.len());
        let mut samples = Vec::with_capacity(recalled.len());
        for r in &recalled {
            let room = &rooms[r.room];
            let sample = Sample {
                sample_id: 0,
                policy: Policy::Realtime,
                kind: SampleKind::Flush,
                seq: 0,
                ts,
                request_id: request.request_id,
                live: room.live,
                user,
                author: Some(room.author),
                exposure_ts: ts,
                category: Some(room.category),
                labels: LabelMask::default(),
                features: Arc::clone(&room.features),
            };
            if uses_history {
                sequences[GsuKind::AidHard] = aid_hard(&records, by_author.get(&room.author), len);
                if soft {
                    let query = ranker.embedding(key(KeyKind::Live, room.live.0));
                    for (kind, domain) in [
                        (GsuKind::Long, Domain::Video),
                        (GsuKind::LiveLong, Domain::Live),
                    ] {
                        scored.clear();
                        if let Some(q) = query {
                            searches::soft_into(
                                visible,
                                domain,
                                q,
                                &item_vectors,
                                len,
                                &mut scored,
                            )?;
                        }
                        sequences[kind] =
                            Sequence::fill(len, scored.iter().map(|&(_, i)| &visible[i]));
                    }
                }
                let view = HistoryView {
                    sequences: &sequences,
                    records: &records,
                    profile: Some(&profile),
                };
                builder.push_with_history(&mut batch, &sample, Some(view));
            } else {
                builder.push(&mut batch, &sample);
            }
            lives.push(room.live);
            samples.push(sample);
        }
        times.features += started.elapsed();

        let started = Instant::now();
        let tasks = model.tasks().to_vec();
        let probabilities = if batch.batch > 0 {
            ranker.predict(&batch)?
        } else {
            Vec::new()
        };
        times.ranker += started.elapsed();

        let started = Instant::now();
        let alphas: Vec<f64> = tasks.iter().map(|&t| self.config.alpha_of(t)).collect();
        let t = tasks.len();
        let mut order: Vec<(f64, usize)> = (0..recalled.len())
            .map(|i| (fuse(&probabilities[i * t..(i + 1) * t], &alphas), i))
            .collect();
        order.sort_by(|a, b| {
            b.0.total_cmp(&a.0).then(
                rooms[recalled[a.1].room]
                    .live
                    .cmp(&rooms[recalled[b.1].room].live),
            )
        });
        order.truncate(request.count);
        let mut served = Vec::with_capacity(order.len());
        let ranked: Vec<RankedRoom> = order
            .iter()
            .map(|&(score, i)| {
                let room = &rooms[recalled[i].room];
                served.push((
                    room.live,
                    ServedExposure {
                        user,
                        ts,
                        features: Arc::clone(&samples[i].features),
                        model_version: model.version,
                    },
                ));
                RankedRoom {
                    live: room.live,
                    author: room.author,
                    score,
                    predictions: tasks
                        .iter()
                        .enumerate()
                        .map(|(k, &task)| (task, probabilities[i * t + k]))
                        .collect(),
                    sources: recalled[i].sources.clone(),
                }
            })
            .collect();
        self.log.record(request.request_id, served);
        times.fusion += started.elapsed();

        let ranking = Ranking {
            request_id: request.request_id,
            ts,
            model_version: model.version,
            cold_start,
            on_air: rooms.len(),
            candidates: recalled.len(),
            rooms: ranked,
            times,
        };
        Ok((ranking, Scored { lives, batch }))
    }
}

/// A served model's embedding rows as the soft searches' item vectors.
struct RankerVectors<'a>(&'a dyn Ranker);

impl ItemVectors for RankerVectors<'_> {
    fn vector(&self, domain: Domain, item: u64) -> Option<&[f32]> {
        self.0.embedding(item_key(domain, item))
    }
}

/// Per author, the indices of the user's video records, newest first, at most `len`.
fn author_index(records: &[HistoryRecord], len: usize) -> HashMap<AuthorId, Vec<usize>> {
    let mut index: HashMap<AuthorId, Vec<usize>> = HashMap::new();
    for (i, r) in records.iter().enumerate().rev() {
        if r.domain == Domain::Video {
            let list = index.entry(r.author).or_default();
            if list.len() < len {
                list.push(i);
            }
        }
    }
    index
}

/// V_aidhard of one target author from the index (the assembler's fill rule).
fn aid_hard(records: &[HistoryRecord], indices: Option<&Vec<usize>>, len: usize) -> Sequence {
    // The one fill rule of every GSU position (item, author, category, domain, watch time,
    // time), so serving's positions carry the same ESU sub-keys as training's.
    Sequence::fill(len, indices.into_iter().flatten().map(|&i| &records[i]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use liverank_history::Categories;
    use liverank_types::{CategoryId, DurationMs};

    #[test]
    fn fusion_is_the_product_of_powers() {
        // (1 + 0.5)^1 · (1 + 0.2)^0.5 · (1 + 0.9)^0 = 1.5 · sqrt(1.2)
        let got = fuse(&[0.5, 0.2, 0.9], &[1.0, 0.5, 0.0]);
        // f32 inputs: 0.2f32 is 0.2 to about 1e-8.
        assert!((got - 1.5 * 1.2f64.sqrt()).abs() < 1e-6, "{got}");
        // Clamped: a NaN-free, bounded score even for out-of-range predictions.
        assert!((fuse(&[2.0], &[1.0]) - 2.0).abs() < 1e-12);
        assert_eq!(fuse(&[], &[]), 1.0);
    }

    #[test]
    fn aid_hard_from_the_index_equals_the_assembler() {
        let rec = |avail: i64, domain, item, author: u64| HistoryRecord {
            ts: EventTime(avail - 1),
            available_at: EventTime(avail),
            domain,
            item,
            author: AuthorId(author),
            categories: Categories::one(CategoryId(item as u32 % 7)),
            watch_ms: DurationMs(1),
            long_view: item % 2 == 0,
            like: false,
            comment: false,
            gift: false,
        };
        let records: Vec<HistoryRecord> = (0..40)
            .map(|i| {
                let domain = if i % 5 == 0 {
                    Domain::Live
                } else {
                    Domain::Video
                };
                rec(10 * i + 1, domain, i as u64, (i % 3) as u64)
            })
            .collect();
        let len = 4;
        let index = author_index(&records, len);
        let assembler = GsuAssembler::new(len);
        for author in 0..4u64 {
            let request = GsuRequest {
                user: UserId(1),
                target_author: AuthorId(author),
                before_ts: EventTime(1_000),
                query: &[],
            };
            let want = assembler
                .assemble_from(&records, &request, &NoVectors)
                .unwrap()[GsuKind::AidHard]
                .clone();
            let got = aid_hard(&records, index.get(&AuthorId(author)), len);
            assert_eq!(got, want, "author {author}");
        }
    }
}

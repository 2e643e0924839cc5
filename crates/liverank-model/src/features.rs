//! From samples to model inputs: sparse keys, sequence groups, dense values, labels.
//!
//! The sequence axis holds the groups end to end: first the room's product sequence
//! (queried by the target live, field 0), then one group per configured Cross history
//! sequence, the multi-head ESU queried by the target live's fields
//! ([`TARGET_QUERY_FIELDS`]; with `esu_heads = 0` single-head, queried by the target's
//! category, field 3). A history position sums five keys ([`SEQ_SUBKEYS`]): the item
//! (video or live), its author, its category (the same namespaces as the target's author
//! and category fields), its watch-time bucket and its age at the exposure. Each history
//! group also adds two dense inputs: its filled share and the share of its items in the
//! target's category (the interest signal the simulator's click model is built on).
//!
//! Framework-free on purpose: the batch is plain vectors, so building it can run on another
//! thread than the tensor work, and tests can check it without burn.
//!
//! Keys are namespaced by entity kind in the top byte (`kind << 56 | raw id`), so the
//! store's exact map never mixes a user 7 with a live 7, while the same live shares one row
//! wherever it appears (target field now, history sequences in Cross).

use liverank_types::{
    Domain, GsuKind, GsuSequences, HistoryRecord, STAT_SERIES, Sample, SampleKind, Task,
};
use std::collections::HashMap;

use crate::config::RankerConfig;
use crate::network::{InputShape, SeqGroup, SeqGroups};

/// Namespace of a sparse key (top byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum KeyKind {
    /// A live room (the target; later also history items).
    Live = 1,
    /// A viewer.
    User = 2,
    /// A streamer.
    Author = 3,
    /// A room category.
    Category = 4,
    /// A streamer type.
    AuthorType = 5,
    /// Fans bucket of the streamer.
    FansBucket = 6,
    /// User profile attribute 0..5 (gender, age, city tier, activity, payer level).
    Profile0 = 7,
    /// Profile attribute 1.
    Profile1 = 8,
    /// Profile attribute 2.
    Profile2 = 9,
    /// Profile attribute 3.
    Profile3 = 10,
    /// Profile attribute 4.
    Profile4 = 11,
    /// Position on the page (clamped).
    Position = 12,
    /// Hour of day.
    Hour = 13,
    /// Room age bucket (log2 minutes).
    LiveAge = 14,
    /// A product on sale.
    Product = 15,
    /// Product leaf category c3.
    ProductC3 = 16,
    /// Product top category c1.
    ProductC1 = 21,
    /// Product middle category c2.
    ProductC2 = 22,
    /// A short video (history sequences).
    Video = 17,
    /// Watch-time bucket of a history interaction (per domain, log2 seconds).
    WatchBucket = 18,
    /// Age of a history interaction at the exposure (log2 minutes).
    HistoryAge = 19,
    /// The one key of a sub-key slot a sequence group does not use (product positions
    /// have four attributes, history positions five): a learned constant.
    Filler = 20,
    /// Reserved for synthetic benchmarks.
    Synthetic = 255,
}

const RAW_MASK: u64 = (1 << 56) - 1;

/// A namespaced key; raw ids above 2^56 are folded (the simulator never gets near).
pub fn key(kind: KeyKind, raw: u64) -> u64 {
    ((kind as u64) << 56) | (raw & RAW_MASK)
}

/// Number of sparse fields the sample pipeline produces; field 0 is the target live.
pub const SAMPLE_FIELDS: usize = 14;
/// Sub-keys per sequence position, summed into its embedding: a product, its c1, c2, c3
/// and the filler; or a history item, its author, its category, its watch-time bucket and
/// its age at the exposure.
pub const SEQ_SUBKEYS: usize = 5;
/// Field index of the target's category: the query of single-head history groups.
pub const CATEGORY_FIELD: usize = 3;
/// The target live's fields the multi-head ESU's query is projected from (a bit set):
/// live 0, author 2, category 3, author type 4, fans bucket 5, room age 13.
pub const TARGET_QUERY_FIELDS: u32 =
    (1 << 0) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 13);
/// Dense inputs of the history profile ([`RankerConfig::history_profile`]).
pub const PROFILE_DENSE: usize = 7;

/// What a row knows of the user's past at the exposure: the GSU sequences and the visible
/// records they were searched from (oldest first, all with `available_at` before it).
#[derive(Clone, Copy, Debug)]
pub struct HistoryView<'a> {
    /// The five sequences.
    pub sequences: &'a GsuSequences,
    /// The visible records.
    pub records: &'a [HistoryRecord],
    /// The records' counts by category and author, when the caller scores many targets
    /// against the same records (a serving request): the history profile reads them
    /// instead of passing over the records once per target. Same values either way.
    pub profile: Option<&'a ProfileIndex>,
}

/// Counts of a user's records for [`history_profile`], indexed by the target's category
/// and author: built in one pass, read per candidate in constant time.
#[derive(Clone, Debug, Default)]
pub struct ProfileIndex {
    all: ProfileCounts,
    /// Per primary category: plays, long-viewed plays, live sessions in it.
    by_category: HashMap<u32, [u32; 3]>,
    /// Live sessions per author.
    sessions_by_author: HashMap<u64, u32>,
    /// Distinct primary categories of the video plays.
    play_categories: usize,
}

impl ProfileIndex {
    /// Indexes `records`.
    pub fn new(records: &[HistoryRecord]) -> Self {
        let mut index = Self::default();
        let mut play_categories = std::collections::HashSet::new();
        for r in records {
            let category = r.categories.primary().map(|c| c.0);
            let slot = category.map(|c| index.by_category.entry(c).or_default());
            match r.domain {
                Domain::Video => {
                    index.all.plays += 1;
                    index.all.long += u32::from(r.long_view);
                    if let Some(slot) = slot {
                        slot[0] += 1;
                        slot[1] += u32::from(r.long_view);
                    }
                    if let Some(c) = category {
                        play_categories.insert(c);
                    }
                }
                Domain::Live => {
                    index.all.sessions += 1;
                    if let Some(slot) = slot {
                        slot[2] += 1;
                    }
                    *index.sessions_by_author.entry(r.author.0).or_default() += 1;
                }
            }
        }
        index.play_categories = play_categories.len();
        index
    }

    fn counts(&self, category: Option<u32>, author: Option<u64>) -> ProfileCounts {
        let [plays_in, long_in, sessions_in] = category
            .and_then(|c| self.by_category.get(&c).copied())
            .unwrap_or_default();
        ProfileCounts {
            plays_in,
            long_in,
            sessions_in,
            sessions_author: author
                .and_then(|a| self.sessions_by_author.get(&a).copied())
                .unwrap_or(0),
            ..self.all
        }
    }
}

/// What the history profile is computed from.
#[derive(Clone, Copy, Debug, Default)]
struct ProfileCounts {
    plays: u32,
    plays_in: u32,
    long: u32,
    long_in: u32,
    sessions: u32,
    sessions_in: u32,
    sessions_author: u32,
}

/// Inputs and labels of one batch, row-major.
#[derive(Clone, Debug, Default)]
pub struct FeatureBatch {
    /// Rows.
    pub batch: usize,
    /// Sparse fields per row; `fields[r * field_count + 0]` is the attention query.
    pub field_count: usize,
    /// `batch × field_count` keys.
    pub fields: Vec<u64>,
    /// Positions in the sequence group.
    pub seq_len: usize,
    /// Keys summed into one item embedding per position.
    pub seq_subkeys: usize,
    /// `batch × seq_len × seq_subkeys` keys; meaningful where `seq_mask` is true.
    pub seq_keys: Vec<u64>,
    /// `batch × seq_len`: position holds an item.
    pub seq_mask: Vec<bool>,
    /// Dense values per row.
    pub dense_dim: usize,
    /// `batch × dense_dim`.
    pub dense: Vec<f32>,
    /// Tasks (columns of labels/mask).
    pub tasks: usize,
    /// `batch × tasks` labels in {0, 1}.
    pub labels: Vec<f32>,
    /// `batch × tasks`: the label counts in the loss.
    pub mask: Vec<f32>,
    /// `batch`: a slow (PU-correction) sample.
    pub slow: Vec<bool>,
    /// `batch`: viewer, for GAUC.
    pub users: Vec<u64>,
}

impl FeatureBatch {
    /// An empty batch of the given shape.
    pub fn with_shape(
        field_count: usize,
        seq_len: usize,
        seq_subkeys: usize,
        dense_dim: usize,
        tasks: usize,
    ) -> Self {
        Self {
            field_count,
            seq_len,
            seq_subkeys,
            dense_dim,
            tasks,
            ..Self::default()
        }
    }

    /// Drops all rows, keeping the shape and the allocations.
    pub fn clear(&mut self) {
        self.batch = 0;
        self.fields.clear();
        self.seq_keys.clear();
        self.seq_mask.clear();
        self.dense.clear();
        self.labels.clear();
        self.mask.clear();
        self.slow.clear();
        self.users.clear();
    }

    /// Rows `start..end` as a batch of their own (same shape).
    pub fn rows(&self, start: usize, end: usize) -> Self {
        let end = end.min(self.batch);
        let start = start.min(end);
        let per = |n: usize| start * n..end * n;
        let positions = self.seq_len * self.seq_subkeys;
        Self {
            batch: end - start,
            field_count: self.field_count,
            fields: self.fields[per(self.field_count)].to_vec(),
            seq_len: self.seq_len,
            seq_subkeys: self.seq_subkeys,
            seq_keys: self.seq_keys[per(positions)].to_vec(),
            seq_mask: self.seq_mask[per(self.seq_len)].to_vec(),
            dense_dim: self.dense_dim,
            dense: self.dense[per(self.dense_dim)].to_vec(),
            tasks: self.tasks,
            labels: self.labels[per(self.tasks)].to_vec(),
            mask: self.mask[per(self.tasks)].to_vec(),
            slow: self.slow[per(1)].to_vec(),
            users: self.users[per(1)].to_vec(),
        }
    }

    /// Checks every vector has the length the shape implies.
    pub fn check(&self) -> Result<(), String> {
        let b = self.batch;
        let want = [
            ("fields", self.fields.len(), b * self.field_count),
            (
                "seq_keys",
                self.seq_keys.len(),
                b * self.seq_len * self.seq_subkeys,
            ),
            ("seq_mask", self.seq_mask.len(), b * self.seq_len),
            ("dense", self.dense.len(), b * self.dense_dim),
            ("labels", self.labels.len(), b * self.tasks),
            ("mask", self.mask.len(), b * self.tasks),
            ("slow", self.slow.len(), b),
            ("users", self.users.len(), b),
        ];
        for (name, got, expected) in want {
            if got != expected {
                return Err(format!(
                    "{name} has {got} values, the shape needs {expected}"
                ));
            }
        }
        Ok(())
    }
}

/// Turns samples into [`FeatureBatch`] rows for a given model configuration.
#[derive(Clone, Debug)]
pub struct FeatureBuilder {
    tasks: Vec<Task>,
    stat_lookback: usize,
    product_seq_len: usize,
    history: Vec<GsuKind>,
    history_len: usize,
    history_profile: bool,
    esu_heads: usize,
    history_prior: f32,
    history_prior_plays: f32,
    foresight: Option<std::sync::Arc<crate::foresight::Foresighter>>,
    foresight_stat: bool,
    foresight_tokens: bool,
    foresight_product: bool,
}

impl FeatureBuilder {
    /// The builder a ranker of this configuration needs.
    pub fn new(config: &RankerConfig) -> Self {
        Self {
            tasks: config.tasks.clone(),
            stat_lookback: config.stat_lookback,
            product_seq_len: config.product_seq_len,
            history: config.history_sequences.clone(),
            history_len: config.history_len,
            history_profile: config.history_profile,
            // DIN and DIEN are parameterised units like the multi-head ESU: their groups
            // carry `heads = 1` and the target's query fields; the network reads which unit.
            esu_heads: match config.esu {
                crate::config::EsuUnit::Din | crate::config::EsuUnit::Dien => 1,
                crate::config::EsuUnit::Attention => config.esu_heads,
            },
            history_prior: config.history_prior,
            history_prior_plays: config.history_prior_plays,
            // A configuration whose forecasters do not load fails `validate`, which every
            // trainer and published model runs; here the branch then has width 0, so the
            // batch cannot fit the model either.
            foresight: config.foresight.models().ok().flatten(),
            foresight_stat: config.foresight.stat,
            foresight_tokens: config.foresight.stat_tokens,
            foresight_product: config.foresight.product,
        }
    }

    /// The frozen forecasters the LiveForesighter branches read (`None` when both are off).
    pub fn foresighter(&self) -> Option<&crate::foresight::Foresighter> {
        self.foresight.as_deref()
    }

    /// Dense values of the LiveForesighter branches: the stat branch, then E_prod with its
    /// indicator, then `softmax(ĉ3)` (the network's C̃3 reads those last `c3_rows`).
    pub fn foresight_dim(&self) -> usize {
        let Some(f) = &self.foresight else {
            return 0;
        };
        let stat = match (self.foresight_stat, self.foresight_tokens) {
            (false, _) => 0,
            (true, true) => f.stat_width(),
            (true, false) => f.stat_width() - f.stat_tokens().1,
        };
        let product = if self.foresight_product {
            f.product_width() + f.c3_rows()
        } else {
            0
        };
        stat + product
    }

    /// Forecasts, in one batch, the rooms of these samples the cache does not hold (see
    /// [`crate::foresight::Foresighter::prefetch`]); a no-op with both branches off.
    pub fn prefetch<'a>(&self, samples: impl IntoIterator<Item = &'a Sample>) {
        if let Some(f) = &self.foresight {
            let rows: Vec<(u64, &liverank_types::ExposureFeatures)> = samples
                .into_iter()
                .map(|s| (s.live.0, &*s.features))
                .collect();
            // A failed batch leaves the rows to `room`, which counts and masks them.
            let _ = f.prefetch(&rows);
        }
    }

    /// Dense inputs per row: log1p of the last `stat_lookback` buckets of every series, the
    /// filled share of the ring, the room's age, two per history sequence, the
    /// history profile, and the LiveForesighter branches ([`Self::foresight_dim`]).
    pub fn dense_dim(&self) -> usize {
        self.stat_lookback * STAT_SERIES.len()
            + 2
            + 2 * self.history.len()
            + if self.history_profile {
                PROFILE_DENSE
            } else {
                0
            }
            + self.foresight_dim()
    }

    /// Whether rows need the user's history (a history sequence or the profile).
    pub fn uses_history(&self) -> bool {
        !self.history.is_empty() || self.history_profile
    }

    /// Whether rows carry the history profile (a [`ProfileIndex`] pays off then).
    pub fn uses_history_profile(&self) -> bool {
        self.history_profile
    }

    /// Whether a configured history sequence comes from a soft search.
    pub fn uses_soft_search(&self) -> bool {
        self.history.iter().any(|h| h.is_soft())
    }

    /// The sequence groups, in axis order.
    pub fn groups(&self) -> SeqGroups {
        let mut groups = SeqGroups::NONE;
        let all = (self.product_seq_len > 0)
            .then_some(SeqGroup::plain(self.product_seq_len, 0))
            .into_iter()
            .chain(self.history.iter().map(|_| SeqGroup {
                len: self.history_len,
                query_field: CATEGORY_FIELD,
                heads: self.esu_heads,
                query_fields: if self.esu_heads > 0 {
                    TARGET_QUERY_FIELDS
                } else {
                    0
                },
            }));
        for g in all {
            // RankerConfig::validate bounds the count.
            groups = groups.with(g).unwrap_or(groups);
        }
        groups
    }

    /// Each configured history sequence with its group's first position on the sequence
    /// axis and its length (the contrastive loss reads them).
    pub fn history_groups(&self) -> Vec<(GsuKind, usize, usize)> {
        let mut at = self.product_seq_len;
        self.history
            .iter()
            .map(|&h| {
                let start = at;
                at += self.history_len;
                (h, start, self.history_len)
            })
            .collect()
    }

    /// The network input shape of this builder's rows.
    pub fn shape(&self) -> InputShape {
        let groups = self.groups();
        InputShape {
            fields: SAMPLE_FIELDS,
            seq_len: groups.total_len(),
            seq_subkeys: SEQ_SUBKEYS,
            dense: self.dense_dim(),
            groups,
        }
    }

    /// An empty batch of this builder's shape.
    pub fn empty_batch(&self) -> FeatureBatch {
        FeatureBatch::with_shape(
            SAMPLE_FIELDS,
            self.groups().total_len(),
            SEQ_SUBKEYS,
            self.dense_dim(),
            self.tasks.len(),
        )
    }

    /// Appends one sample as a row, with empty history sequences.
    pub fn push(&self, batch: &mut FeatureBatch, sample: &Sample) {
        self.push_with_history(batch, sample, None);
    }

    /// Appends one sample as a row with what the user's history held at the exposure (the
    /// sequences from `liverank_history::GsuAssembler`; `None` = no history known).
    pub fn push_with_history(
        &self,
        batch: &mut FeatureBatch,
        sample: &Sample,
        history: Option<HistoryView<'_>>,
    ) {
        let f = &sample.features;
        let profile = f.user_profile.unwrap_or([0; 5]);
        let author_type = f
            .author_type
            .as_deref()
            .map_or(0, liverank_types::hash::str_id);
        let age_minutes = f.live_age_ms / 60_000;
        let age_bucket = u64::from(64 - age_minutes.leading_zeros());
        batch.fields.extend_from_slice(&[
            key(KeyKind::Live, sample.live.0),
            key(KeyKind::User, sample.user.0),
            key(KeyKind::Author, sample.author.map_or(0, |a| a.0)),
            key(
                KeyKind::Category,
                sample.category.map_or(0, |c| u64::from(c.0)),
            ),
            key(KeyKind::AuthorType, author_type),
            key(
                KeyKind::FansBucket,
                f.fans_bucket.map_or(0, |b| u64::from(b) + 1),
            ),
            key(KeyKind::Profile0, u64::from(profile[0])),
            key(KeyKind::Profile1, u64::from(profile[1])),
            key(KeyKind::Profile2, u64::from(profile[2])),
            key(KeyKind::Profile3, u64::from(profile[3])),
            key(KeyKind::Profile4, u64::from(profile[4])),
            key(KeyKind::Position, u64::from(f.position.min(50))),
            key(KeyKind::Hour, u64::from(f.hour)),
            key(KeyKind::LiveAge, age_bucket),
        ]);

        // Product sequence: the most recent `product_seq_len`, oldest first, left-padded.
        let take = f.products.len().min(self.product_seq_len);
        let pad = self.product_seq_len - take;
        for _ in 0..pad {
            batch.seq_keys.extend_from_slice(&[0; SEQ_SUBKEYS]);
            batch.seq_mask.push(false);
        }
        for p in &f.products[f.products.len() - take..] {
            batch.seq_keys.extend_from_slice(&[
                key(KeyKind::Product, p[0]),
                key(KeyKind::ProductC1, p[1]),
                key(KeyKind::ProductC2, p[2]),
                key(KeyKind::ProductC3, p[3]),
                key(KeyKind::Filler, 0),
            ]);
            batch.seq_mask.push(true);
        }

        // History groups: newest (or best) first, as the searches return them, trailing
        // padding; the two dense inputs of each are pushed after the statistics.
        let target_category = sample.category.map(|c| c.0);
        let mut history_dense = [0.0f32; 2 * crate::network::MAX_SEQ_GROUPS];
        for (g, which) in self.history.iter().enumerate() {
            let seq = history.map(|h| &h.sequences[*which]);
            let (mut filled, mut matching) = (0usize, 0usize);
            for p in 0..self.history_len {
                match seq.filter(|s| s.mask.get(p).copied().unwrap_or(false)) {
                    Some(s) => {
                        let kind = if s.domains[p] == 1 {
                            KeyKind::Live
                        } else {
                            KeyKind::Video
                        };
                        let category = s.categories[p];
                        let domain = u64::from(s.domains[p]);
                        let watch_s = s.watch_ms[p] / 1000;
                        let watch = u64::from(64 - watch_s.leading_zeros());
                        let age_min = (sample.exposure_ts.0 - s.ts[p]).max(0) as u64 / 60_000;
                        let age = u64::from(64 - age_min.leading_zeros());
                        batch.seq_keys.extend_from_slice(&[
                            key(kind, s.items[p]),
                            key(KeyKind::Author, s.authors[p]),
                            key(KeyKind::Category, u64::from(category)),
                            key(KeyKind::WatchBucket, domain << 8 | watch),
                            key(KeyKind::HistoryAge, age),
                        ]);
                        batch.seq_mask.push(true);
                        filled += 1;
                        matching += usize::from(Some(category) == target_category);
                    }
                    None => {
                        batch.seq_keys.extend_from_slice(&[0; SEQ_SUBKEYS]);
                        batch.seq_mask.push(false);
                    }
                }
            }
            history_dense[2 * g] = filled as f32 / self.history_len.max(1) as f32;
            history_dense[2 * g + 1] = if filled == 0 {
                0.0
            } else {
                matching as f32 / filled as f32
            };
        }

        // Statistics: newest `stat_lookback` buckets, zero where the ring is shorter.
        let series = STAT_SERIES.len();
        let have = (f.stats_len as usize).min(f.stats.len() / series);
        let use_buckets = have.min(self.stat_lookback);
        for _ in 0..(self.stat_lookback - use_buckets) * series {
            batch.dense.push(0.0);
        }
        let start = (have - use_buckets) * series;
        for &v in &f.stats[start..have * series] {
            batch.dense.push((v as f32).ln_1p());
        }
        batch.dense.push(have as f32 / 64.0);
        batch.dense.push((age_minutes as f32).ln_1p() / 8.0);
        batch
            .dense
            .extend_from_slice(&history_dense[..2 * self.history.len()]);
        if self.history_profile {
            let records = history.map_or(&[][..], |h| h.records);
            let prior = Prior {
                share: self.history_prior,
                plays: self.history_prior_plays,
            };
            let author = sample.author.map(|a| a.0);
            batch
                .dense
                .extend_from_slice(&match history.and_then(|h| h.profile) {
                    Some(index) => profile_from(
                        index.counts(target_category, author),
                        || index.play_categories,
                        prior,
                    ),
                    None => history_profile(records, target_category, author, prior),
                });
        }
        if let Some(foresight) = &self.foresight {
            let room = foresight.room(sample.live.0, f);
            if self.foresight_stat && self.foresight_tokens {
                batch.dense.extend_from_slice(&room.stat);
            } else if self.foresight_stat {
                let (at, tokens) = foresight.stat_tokens();
                batch.dense.extend_from_slice(&room.stat[..at]);
                batch.dense.extend_from_slice(&room.stat[at + tokens..]);
            }
            if self.foresight_product {
                batch.dense.extend_from_slice(&room.product);
                batch.dense.extend_from_slice(&room.probs);
            }
        }

        for &task in &self.tasks {
            match sample.labels.get(task) {
                Some(label) => {
                    batch.labels.push(if label { 1.0 } else { 0.0 });
                    batch.mask.push(1.0);
                }
                None => {
                    batch.labels.push(0.0);
                    batch.mask.push(0.0);
                }
            }
        }
        batch.slow.push(sample.kind == SampleKind::Slow);
        batch.users.push(sample.user.0);
        batch.batch += 1;
    }

    /// A batch of these samples.
    pub fn build(&self, samples: &[Sample]) -> FeatureBatch {
        let mut batch = self.empty_batch();
        self.prefetch(samples);
        for s in samples {
            self.push(&mut batch, s);
        }
        batch
    }
}

/// The prior of the smoothed log share: `plays` pseudo-plays at `share` in the target's
/// category (`share` 0: not set, the user's own spread decides, see [`history_profile`]).
#[derive(Clone, Copy, Debug)]
struct Prior {
    share: f32,
    plays: f32,
}

/// The history profile: log counts of video plays and live sessions, the shares of plays,
/// long-viewed plays and sessions in the target's category, a smoothed log share of plays,
/// and the share of sessions with the target's author (0 where there is nothing to share).
///
/// The smoothed log share is `ln((plays_in + w·p) / (plays + w)) / 5` with the prior `w`
/// pseudo-plays at share `p`: `p` is [`RankerConfig::history_prior`] (training sets it from
/// the data: one over the number of room categories among its samples) or, when that is
/// 0, one over the number of distinct categories in this user's plays plus one.
fn history_profile(
    records: &[HistoryRecord],
    category: Option<u32>,
    author: Option<u64>,
    prior: Prior,
) -> [f32; PROFILE_DENSE] {
    let mut c = ProfileCounts::default();
    for r in records {
        let in_category = category.is_some() && r.categories.primary().map(|c| c.0) == category;
        match r.domain {
            Domain::Video => {
                c.plays += 1;
                c.plays_in += u32::from(in_category);
                if r.long_view {
                    c.long += 1;
                    c.long_in += u32::from(in_category);
                }
            }
            Domain::Live => {
                c.sessions += 1;
                c.sessions_in += u32::from(in_category);
                c.sessions_author += u32::from(Some(r.author.0) == author);
            }
        }
    }
    let play_categories = || {
        let mut seen: Vec<u32> = records
            .iter()
            .filter(|r| r.domain == Domain::Video)
            .filter_map(|r| r.categories.primary().map(|c| c.0))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    };
    profile_from(c, play_categories, prior)
}

/// The profile's values from its counts; `play_categories` (distinct categories of the
/// plays) is only asked for when the prior's share is not set.
fn profile_from(
    c: ProfileCounts,
    play_categories: impl FnOnce() -> usize,
    prior: Prior,
) -> [f32; PROFILE_DENSE] {
    let share = |part: u32, whole: u32| {
        if whole == 0 {
            0.0
        } else {
            part as f32 / whole as f32
        }
    };
    let prior_share = if prior.share > 0.0 {
        prior.share
    } else {
        1.0 / (play_categories() as f32 + 1.0)
    };
    let w = prior.plays;
    [
        (c.plays as f32).ln_1p() / 8.0,
        share(c.plays_in, c.plays),
        // Interest grows with log affinity: a smoothed log share (see the doc above).
        ((c.plays_in as f32 + w * prior_share) / (c.plays as f32 + w)).ln() / 5.0,
        share(c.long_in, c.long),
        (c.sessions as f32).ln_1p() / 5.0,
        share(c.sessions_in, c.sessions),
        share(c.sessions_author, c.sessions),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use liverank_types::Categories;
    use liverank_types::{
        AuthorId, CategoryId, DurationMs, EventTime, ExposureFeatures, LabelMask, LiveId, Policy,
        RequestId, UserId,
    };

    fn sample() -> Sample {
        Sample {
            sample_id: 1,
            policy: Policy::Complete,
            kind: SampleKind::Close,
            seq: 0,
            ts: EventTime(10_000),
            request_id: RequestId(3),
            live: LiveId(4),
            user: UserId(5),
            author: Some(AuthorId(9)),
            exposure_ts: EventTime(5_000),
            category: Some(CategoryId(5)),
            labels: LabelMask::default(),
            features: std::sync::Arc::new(ExposureFeatures::default()),
        }
    }

    fn record(domain: Domain, item: u64, category: u32, author: u64, long: bool) -> HistoryRecord {
        HistoryRecord {
            ts: EventTime(0),
            available_at: EventTime(1),
            domain,
            item,
            author: AuthorId(author),
            categories: Categories::one(CategoryId(category)),
            watch_ms: DurationMs(1),
            long_view: long,
            like: false,
            comment: false,
            gift: false,
        }
    }

    proptest::proptest! {
        /// The indexed profile (a serving request's, built once for all candidates) equals
        /// the one computed from the records per target, bit for bit: any mix of plays and
        /// sessions, targets in and out of the user's categories and authors, without a
        /// category or author, with the prior's share set and unset.
        #[test]
        fn indexed_profile_equals_the_direct_one(
            rows in proptest::collection::vec((proptest::bool::ANY, 0u32..6, 0u64..5, proptest::bool::ANY), 0..40),
            category in proptest::option::of(0u32..8),
            author in proptest::option::of(0u64..7),
            share in proptest::sample::select(vec![0.0f32, 0.1, 0.25]),
        ) {
            let records: Vec<HistoryRecord> = rows
                .iter()
                .enumerate()
                .map(|(i, &(live, c, a, long))| {
                    let domain = if live { Domain::Live } else { Domain::Video };
                    record(domain, i as u64, c, a, long)
                })
                .collect();
            let prior = Prior { share, plays: 4.0 };
            let index = ProfileIndex::new(&records);
            let direct = history_profile(&records, category, author, prior);
            let indexed = profile_from(index.counts(category, author), || index.play_categories, prior);
            proptest::prop_assert_eq!(direct.map(f32::to_bits), indexed.map(f32::to_bits));
        }
    }

    #[test]
    fn history_groups_follow_the_product_group_with_their_keys_masks_and_shares() {
        let config = RankerConfig {
            tasks: vec![Task::Click],
            product_seq_len: 1,
            history_sequences: vec![GsuKind::Short, GsuKind::Mixed],
            history_len: 3,
            history_profile: true,
            stat_lookback: 1,
            ..RankerConfig::full_cross()
        };
        let builder = FeatureBuilder::new(&config);
        let shape = builder.shape();
        assert_eq!(shape.seq_len, 1 + 3 + 3);
        let groups: Vec<(usize, usize)> = shape
            .groups
            .as_slice()
            .iter()
            .map(|g| (g.len, g.query_field))
            .collect();
        assert_eq!(groups, [(1, 0), (3, CATEGORY_FIELD), (3, CATEGORY_FIELD)]);

        // Visible history: three plays (two in category 5, one of them long), two lives
        // (one in category 5 by the target's author 9, one elsewhere).
        let records = [
            record(Domain::Video, 11, 5, 1, true),
            record(Domain::Video, 12, 7, 2, false),
            record(Domain::Live, 40, 5, 9, true),
            record(Domain::Video, 13, 5, 3, false),
            record(Domain::Live, 41, 8, 6, false),
        ];
        let mut sequences = GsuSequences::padding(3);
        // V_short newest first: 13 (c5), 12 (c7), 11 (c5).
        for (p, (item, category)) in [(13, 5), (12, 7), (11, 5)].into_iter().enumerate() {
            sequences[GsuKind::Short].items[p] = item;
            sequences[GsuKind::Short].categories[p] = category;
            sequences[GsuKind::Short].mask[p] = true;
        }
        // V_mixed: the long-viewed live 40 (c5) and video 11 (c5); one padding slot.
        for (p, (item, category, live)) in [(40, 5, 1), (11, 5, 0)].into_iter().enumerate() {
            sequences[GsuKind::Mixed].items[p] = item;
            sequences[GsuKind::Mixed].categories[p] = category;
            sequences[GsuKind::Mixed].domains[p] = live;
            sequences[GsuKind::Mixed].mask[p] = true;
        }
        let view = HistoryView {
            sequences: &sequences,
            records: &records,
            profile: None,
        };
        let mut batch = builder.empty_batch();
        builder.push_with_history(&mut batch, &sample(), Some(view));
        batch.check().unwrap();

        let c = |id: u64| key(KeyKind::Category, id);
        let v = |id: u64| key(KeyKind::Video, id);
        let l = |id: u64| key(KeyKind::Live, id);
        // Author 0 (the test leaves it), watch 0 s, age 5 s = 0 minutes: buckets 0.
        let rest = |domain: u64| {
            [
                key(KeyKind::Author, 0),
                key(KeyKind::WatchBucket, domain << 8),
                key(KeyKind::HistoryAge, 0),
            ]
        };
        let position = |item: u64, category: u64, domain: u64| {
            let mut p = vec![item, c(category)];
            p.insert(1, rest(domain)[0]);
            p.extend_from_slice(&rest(domain)[1..]);
            p
        };
        let mut expected = vec![0; SEQ_SUBKEYS]; // product group: no products
        for (item, category, domain) in [
            (v(13), 5, 0),
            (v(12), 7, 0),
            (v(11), 5, 0), // V_short
            (l(40), 5, 1),
            (v(11), 5, 0), // V_mixed
        ] {
            expected.extend(position(item, category, domain));
        }
        expected.extend([0; SEQ_SUBKEYS]);
        assert_eq!(batch.seq_keys, expected);
        assert_eq!(batch.seq_mask, [false, true, true, true, true, true, false]);
        // Dense tail: [short filled, short in c5, mixed filled, mixed in c5] then the
        // profile (3 plays, 2 in c5; 1 long play, in c5; 2 sessions, 1 in c5, 1 by author 9).
        let tail = &batch.dense[batch.dense.len() - 4 - PROFILE_DENSE..];
        let expected = [
            1.0,
            2.0 / 3.0,
            2.0 / 3.0,
            1.0,
            4f32.ln() / 8.0,
            2.0 / 3.0,
            // Prior unset (0): one over the user's play categories {5, 7} plus one = 1/3,
            // weight 3.1 plays: (2 + 3.1/3) / (3 + 3.1).
            ((2.0f32 + 3.1 / 3.0) / 6.1).ln() / 5.0,
            1.0,
            3f32.ln() / 5.0,
            0.5,
            0.5,
        ];
        for (got, want) in tail.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{tail:?} vs {expected:?}");
        }

        // Without history: the same shape, every history position padding, shares 0 and
        // the log share at its prior: with the prior set from the data (here a catalogue of
        // four categories, 1/4), ln(1/4); unset, no categories seen, ln(1) = 0.
        let with_prior = FeatureBuilder::new(&RankerConfig {
            history_prior: 0.25,
            ..config.clone()
        });
        for (b, prior) in [(&with_prior, 0.25f32.ln() / 5.0), (&builder, 0.0)] {
            let mut blind = b.empty_batch();
            b.push(&mut blind, &sample());
            blind.check().unwrap();
            assert!(blind.seq_mask.iter().all(|m| !m));
            let tail = &blind.dense[blind.dense.len() - 4 - PROFILE_DENSE..];
            let expected = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, prior, 0.0, 0.0, 0.0, 0.0];
            assert_eq!(tail, expected);
        }
    }
}

//! Synthetic histories for benchmarks and tests: a seeded stream of plausible records and
//! a dense random embedding table, so `liverank bench history` and the criterion benches
//! measure the same workload.

use crate::record::{Categories, Domain, HistoryRecord};
use crate::store::DenseVectors;
use liverank_types::rng::SplitMix64;
use liverank_types::{AuthorId, CategoryId, DurationMs, EventTime, UserId};

/// Shape of a synthetic history stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyntheticHistory {
    /// Users, ids 1..=users.
    pub users: u64,
    /// Records per user.
    pub records_per_user: usize,
    /// Distinct videos (ids 1..videos).
    pub videos: u64,
    /// Distinct lives (ids 1..lives).
    pub lives: u64,
    /// Seed of every draw.
    pub seed: u64,
}

impl SyntheticHistory {
    /// `users` users with `records_per_user` records each, over 50,000 videos and 3,000
    /// lives.
    pub fn new(users: u64, records_per_user: usize) -> Self {
        Self {
            users,
            records_per_user,
            videos: 50_000,
            lives: 3_000,
            seed: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// The stream: time ordered (one record every 50 ms), users interleaved; 80 % video
    /// plays, 20 % live sessions, 30 % long views; 600 authors, 31 categories.
    pub fn records(&self) -> Vec<(UserId, HistoryRecord)> {
        let mut rng = Rng::new(self.seed);
        let start = 1_767_225_600_000i64;
        let users = self.users.max(1);
        let total = users as usize * self.records_per_user;
        (0..total)
            .map(|i| {
                let user = UserId(i as u64 % users + 1);
                let live = rng.below(5) == 0;
                let (domain, item) = if live {
                    (Domain::Live, 1 + rng.below(self.lives.max(2) - 1))
                } else {
                    (Domain::Video, 1 + rng.below(self.videos.max(2) - 1))
                };
                let end = start + i as i64 * 50;
                let watch = 1_000 + rng.below(120_000);
                let record = HistoryRecord {
                    ts: EventTime(end - watch as i64),
                    available_at: EventTime(end),
                    domain,
                    item,
                    author: AuthorId(item % 600 + 1),
                    categories: Categories::one(CategoryId((item % 31) as u32)),
                    watch_ms: DurationMs(watch),
                    long_view: rng.below(10) < 3,
                    like: rng.below(20) == 0,
                    comment: false,
                    gift: live && rng.below(50) == 0,
                };
                (user, record)
            })
            .collect()
    }

    /// A random `dim`-wide embedding table covering every item of the stream.
    pub fn vectors(&self, dim: usize) -> DenseVectors {
        let mut rng = Rng::new(self.seed.rotate_left(17));
        let mut table =
            |n: u64| -> Vec<f32> { (0..(n as usize + 1) * dim).map(|_| rng.unit()).collect() };
        let video = table(self.videos);
        let live = table(self.lives);
        DenseVectors::new(dim, video, live)
    }
}

/// The workspace's seeded generator, drawing `u64` ranges and unit values.
struct Rng(SplitMix64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(SplitMix64::new(seed))
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n.max(1)
    }
    fn unit(&mut self) -> f32 {
        self.0.uniform(1.0)
    }
}

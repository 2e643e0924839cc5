//! The simulated platform's static world: content categories, users with interests,
//! authors with a type and style, their short videos, the product catalogue, and the
//! schedule of broadcasts with their highlight moments and sale moments.

use crate::config::SimConfig;
use crate::rng::{Cumulative, SimRng};
use liverank_types::{
    Author, AuthorId, AuthorType, CategoryId, DurationMs, EventTime, Live, LiveId, Product,
    ProductId, User, UserId, Video, VideoId,
};
use serde::{Deserialize, Serialize};

/// Content categories shared by lives and short videos; the index is the `CategoryId`.
/// The last eight exist only as short videos.
pub const CATEGORY_NAMES: [&str; 32] = [
    "singing",
    "dancing",
    "instrument", // talent
    "moba",
    "fps",
    "mobile_game",
    "chess_cards", // game
    "fashion",
    "beauty",
    "food",
    "home_goods",
    "electronics", // ecommerce
    "chat_emotion",
    "comedy",
    "pets", // chat
    "fishing",
    "travel",
    "farming",
    "sports",
    "cars", // outdoor
    "news",
    "knowledge",
    "film",
    "kids",
    "cooking",
    "fitness",
    "tech",
    "anime",
    "crafts",
    "vlog",
    "art",
    "history",
];

/// Number of content categories.
pub const CATEGORIES: usize = CATEGORY_NAMES.len();
/// Level-1 product categories (verticals).
pub const C1_COUNT: u32 = 50;
/// Level-2 categories per level-1 (1,000 in all).
pub const C2_PER_C1: u32 = 20;
/// Level-3 categories per level-2 (5,000 in all).
pub const C3_PER_C2: u32 = 5;
/// Products per level-3 category.
pub const PRODUCTS_PER_C3: u32 = 4;

const STREAM_USERS: u64 = 1;
const STREAM_AUTHORS: u64 = 2;
const STREAM_LIVES: u64 = 3;
const STREAM_WORLD: u64 = 4;

/// The content categories an author type streams in.
pub fn categories_of(t: AuthorType) -> &'static [u32] {
    match t {
        AuthorType::Talent => &[0, 1, 2],
        AuthorType::Game => &[3, 4, 5, 6],
        AuthorType::Ecommerce => &[7, 8, 9, 10, 11],
        AuthorType::Chat => &[12, 13, 14],
        AuthorType::Outdoor => &[15, 16, 17, 18, 19],
    }
}

/// Global popularity of each category: a Zipf-like curve, with "fishing" (15) deliberately
/// niche: few users care, those who do care a lot.
fn category_popularity() -> [f64; CATEGORIES] {
    let mut p = [0.0; CATEGORIES];
    for (i, w) in p.iter_mut().enumerate() {
        *w = 1.0 / (1.0 + i as f64 * 0.15);
    }
    p[15] = 0.12;
    p
}

/// A user's hidden traits (the simulator's ground truth, not written to the user table).
#[derive(Clone, Debug)]
pub struct UserTraits {
    /// Public profile.
    pub profile: User,
    /// Interest over content categories; sums to 1.
    pub interest: [f32; CATEGORIES],
    /// Share of feed slots the user is shown lives (before availability).
    pub live_affinity: f64,
    /// Personal click bias in logits.
    pub click_bias: f64,
}

impl UserTraits {
    /// Interest in `c` relative to a uniform user (1.0 = average).
    pub fn affinity(&self, c: CategoryId) -> f64 {
        f64::from(self.interest[c.0 as usize % CATEGORIES]) * CATEGORIES as f64
    }
}

/// An author's hidden traits.
#[derive(Clone, Debug)]
pub struct AuthorTraits {
    /// Public row.
    pub row: Author,
    /// Content quality in logits (attractiveness of the rooms).
    pub quality: f64,
    /// For ecommerce authors: the product vertical (level-1 category).
    pub vertical: Option<u32>,
    /// The author's videos, as indices into `World::videos`.
    pub videos: Vec<u32>,
}

/// Kind of a highlight moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HighlightKind {
    /// Talent: a song or dance segment.
    Performance,
    /// Game: a match climax.
    MatchClimax,
    /// Ecommerce: the countdown before a product's sale moment.
    SaleCountdown,
    /// Chat: a PK battle with another room.
    PkBattle,
    /// Outdoor: a catch, a summit, a goal.
    Catch,
}

/// A product put on sale in a room.
#[derive(Clone, Debug)]
pub struct SaleMoment {
    /// When it is put on sale (start of the countdown; the `ProductOnSale` event).
    pub on_sale: EventTime,
    /// The flash-sale instant; purchases cluster just after it.
    pub sale: EventTime,
    /// Product.
    pub product: Product,
}

/// One broadcast with its timeline.
#[derive(Clone, Debug)]
pub struct LiveTrack {
    /// Public row.
    pub row: Live,
    /// Index of the author in `World::authors`.
    pub author_index: u32,
    /// Highlight intervals `[start, end)`, sorted, disjoint.
    pub highlights: Vec<(EventTime, EventTime, HighlightKind)>,
    /// Sale moments (ecommerce rooms), sorted.
    pub sales: Vec<SaleMoment>,
}

impl LiveTrack {
    /// Whether `t` lies inside a highlight.
    pub fn in_highlight(&self, t: EventTime) -> bool {
        let i = self.highlights.partition_point(|h| h.1 <= t);
        self.highlights.get(i).is_some_and(|h| h.0 <= t)
    }
}

/// The static world.
#[derive(Debug)]
pub struct World {
    /// Users by index (`UserId = index + 1`).
    pub users: Vec<UserTraits>,
    /// Authors by index (`AuthorId = index + 1`).
    pub authors: Vec<AuthorTraits>,
    /// Videos by index (`VideoId = index + 1`).
    pub videos: Vec<Video>,
    /// Video indices per content category.
    pub videos_by_category: Vec<Vec<u32>>,
    /// Broadcasts, sorted by start (`LiveId = index + 1`).
    pub lives: Vec<LiveTrack>,
    /// For each minute of simulated time, the lives on air at some point of it.
    pub on_air_by_minute: Vec<Vec<u32>>,
    /// Product catalogue (`ProductId = index + 1`).
    pub products: Vec<Product>,
}

fn product_of(c3: u32, k: u32) -> Product {
    let c2 = c3 / C3_PER_C2;
    let c1 = c2 / C2_PER_C1;
    Product {
        product: ProductId(u64::from(c3 * PRODUCTS_PER_C3 + k) + 1),
        c1: CategoryId(c1),
        c2: CategoryId(c2),
        c3: CategoryId(c3),
    }
}

fn diurnal_weight(hour_of_day: f64) -> f64 {
    // Two humps: lunch and a large evening peak at 21:00; a trough at 4:00.
    let evening = (-((hour_of_day - 21.0) / 2.5).powi(2)).exp();
    let lunch = (-((hour_of_day - 12.5) / 1.5).powi(2)).exp();
    0.15 + 0.35 * lunch + evening
}

/// Draws a time in `[start, end)` following the daily activity curve.
pub fn diurnal_time(rng: &mut SimRng, start_ms: i64, end_ms: i64) -> i64 {
    // Rejection sampling against the curve's maximum (< 1.5).
    loop {
        let t = rng.range_i64(start_ms, end_ms - 1);
        let hour = (t.rem_euclid(86_400_000)) as f64 / 3_600_000.0;
        if rng.f64() * 1.5 < diurnal_weight(hour) {
            return t;
        }
    }
}

impl World {
    /// Builds the world for a validated config.
    pub fn generate(config: &SimConfig) -> World {
        let popularity = category_popularity();
        let mut wrng = SimRng::for_stream(config.seed, STREAM_WORLD, 0);

        let users = (0..config.users)
            .map(|i| {
                let mut rng = SimRng::for_stream(config.seed, STREAM_USERS, u64::from(i));
                generate_user(&mut rng, UserId(u64::from(i) + 1), &popularity)
            })
            .collect();

        let live_popularity: Vec<f64> = popularity[..20].to_vec();
        let live_cats = Cumulative::new(&live_popularity);
        let mut authors: Vec<AuthorTraits> = (0..config.authors)
            .map(|i| {
                let mut rng = SimRng::for_stream(config.seed, STREAM_AUTHORS, u64::from(i));
                // The first five authors cover every type, so tiny worlds have all kinds.
                let home = if (i as usize) < AuthorType::ALL.len() {
                    categories_of(AuthorType::ALL[i as usize])[0]
                } else {
                    live_cats.sample(&mut rng) as u32
                };
                let author_type = type_of_category(home);
                let fans_bucket = (rng.exponential(1.2).floor() as u8).min(5);
                let vertical = (author_type == AuthorType::Ecommerce).then(|| {
                    // Each ecommerce category owns ten verticals: fashion 0-9, beauty 10-19…
                    let k = categories_of(AuthorType::Ecommerce)
                        .iter()
                        .position(|&c| c == home)
                        .unwrap_or(0) as u32;
                    k * 10 + rng.below(10) as u32
                });
                AuthorTraits {
                    row: Author {
                        author: AuthorId(u64::from(i) + 1),
                        author_type,
                        fans_bucket,
                        home_category: CategoryId(home),
                    },
                    quality: 0.45 * rng.normal() + 0.12 * f64::from(fans_bucket),
                    vertical,
                    videos: Vec::new(),
                }
            })
            .collect();

        // Short videos: authors publish in their home category mostly; video-only
        // categories come from a pool of pure video creators folded into the same authors.
        let mut videos = Vec::new();
        let all_cats = Cumulative::new(&popularity);
        for (ai, a) in authors.iter_mut().enumerate() {
            let n = 1 + wrng.below(u64::from(config.videos_per_author) * 2) as u32;
            for _ in 0..n {
                let category = if wrng.chance(0.5) {
                    a.row.home_category.0
                } else {
                    all_cats.sample(&mut wrng) as u32
                };
                let duration = wrng.lognormal(18_000.0, 0.6).clamp(5_000.0, 180_000.0) as u64;
                a.videos.push(videos.len() as u32);
                videos.push(Video {
                    video: VideoId(videos.len() as u64 + 1),
                    author: AuthorId(ai as u64 + 1),
                    duration_ms: DurationMs(duration),
                    category: CategoryId(category),
                });
            }
        }
        let mut videos_by_category = vec![Vec::new(); CATEGORIES];
        for (i, v) in videos.iter().enumerate() {
            videos_by_category[v.category.0 as usize].push(i as u32);
        }
        // Every category must have at least one video so the feed can always serve it.
        for (c, list) in videos_by_category.iter_mut().enumerate() {
            if list.is_empty() {
                let ai = wrng.index(authors.len());
                authors[ai].videos.push(videos.len() as u32);
                list.push(videos.len() as u32);
                videos.push(Video {
                    video: VideoId(videos.len() as u64 + 1),
                    author: AuthorId(ai as u64 + 1),
                    duration_ms: DurationMs(15_000),
                    category: CategoryId(c as u32),
                });
            }
        }

        let products = (0..C1_COUNT * C2_PER_C1 * C3_PER_C2)
            .flat_map(|c3| (0..PRODUCTS_PER_C3).map(move |k| product_of(c3, k)))
            .collect();

        let mut lives = Vec::new();
        for (ai, a) in authors.iter().enumerate() {
            let mut rng = SimRng::for_stream(config.seed, STREAM_LIVES, ai as u64);
            schedule_lives(config, &mut rng, ai as u32, a, &mut lives);
        }
        lives.sort_by_key(|l: &LiveTrack| (l.row.start, l.row.author));
        for (i, l) in lives.iter_mut().enumerate() {
            l.row.live = LiveId(i as u64 + 1);
        }
        let minutes = (config.end_ms() - config.start_ms) as usize / 60_000 + 1;
        let mut on_air_by_minute = vec![Vec::new(); minutes];
        for (i, l) in lives.iter().enumerate() {
            let m0 = ((l.row.start.0 - config.start_ms) / 60_000) as usize;
            let m1 = ((l.row.end.0 - 1 - config.start_ms) / 60_000) as usize;
            for slot in &mut on_air_by_minute[m0..=m1.min(minutes - 1)] {
                slot.push(i as u32);
            }
        }
        World {
            users,
            authors,
            videos,
            videos_by_category,
            lives,
            on_air_by_minute,
            products,
        }
    }

    /// Lives on air at instant `t` with at least `margin_ms` left, appended to `out`.
    pub fn on_air(&self, start_ms: i64, t: EventTime, margin_ms: i64, out: &mut Vec<u32>) {
        out.clear();
        let m = ((t.0 - start_ms) / 60_000) as usize;
        if let Some(slot) = self.on_air_by_minute.get(m) {
            out.extend(slot.iter().copied().filter(|&i| {
                let l = &self.lives[i as usize].row;
                l.start < t && t.0 + margin_ms < l.end.0
            }));
        }
    }
}

fn type_of_category(c: u32) -> AuthorType {
    AuthorType::ALL
        .into_iter()
        .find(|t| categories_of(*t).contains(&c))
        .unwrap_or(AuthorType::Chat)
}

fn generate_user(rng: &mut SimRng, id: UserId, popularity: &[f64; CATEGORIES]) -> UserTraits {
    let activity_level = rng.weighted(&[0.25, 0.35, 0.25, 0.15]) as u8;
    let payer_level = rng.weighted(&[0.62, 0.25, 0.1, 0.03]) as u8;
    let profile = User {
        user: id,
        gender: rng.weighted(&[0.05, 0.5, 0.45]) as u8,
        age_bucket: rng.weighted(&[0.06, 0.22, 0.2, 0.22, 0.15, 0.1, 0.05]) as u8,
        city_tier: 1 + rng.weighted(&[0.12, 0.2, 0.25, 0.23, 0.2]) as u8,
        activity_level,
        payer_level,
    };
    // Two to five interests drawn by popularity, with exponential weights; the rest of the
    // mass spread evenly keeps some curiosity for everything.
    let k = 2 + rng.below(4) as usize;
    let cum = Cumulative::new(popularity);
    let mut interest = [0.0f32; CATEGORIES];
    let mut raw = Vec::with_capacity(k);
    for _ in 0..k {
        let c = cum.sample(rng);
        raw.push((c, rng.exponential(1.0) + 0.2));
    }
    let total: f64 = raw.iter().map(|r| r.1).sum();
    for (c, w) in raw {
        interest[c] += (0.8 * w / total) as f32;
    }
    for v in &mut interest {
        *v += 0.2 / CATEGORIES as f32;
    }
    UserTraits {
        profile,
        interest,
        live_affinity: rng.uniform(0.05, 0.15),
        click_bias: 0.3 * rng.normal(),
    }
}

fn schedule_lives(
    config: &SimConfig,
    rng: &mut SimRng,
    author_index: u32,
    a: &AuthorTraits,
    lives: &mut Vec<LiveTrack>,
) {
    let start = config.start_ms;
    let end = config.end_ms();
    // Bigger streamers go live more often; everyone streams at least once.
    let mean = (0.9 + 0.25 * f64::from(a.row.fans_bucket)) * 1.4 * f64::from(config.hours) / 24.0;
    let count = rng.poisson(mean).max(1);
    let mut busy_until = start;
    let mut starts: Vec<i64> = (0..count)
        .map(|_| diurnal_time(rng, start, (end - 30 * 60_000).max(start + 1)))
        .collect();
    starts.sort_unstable();
    for s in starts {
        let s = s.max(busy_until + 10 * 60_000);
        let hours = match a.row.author_type {
            AuthorType::Ecommerce => rng.uniform(1.5, 4.0),
            AuthorType::Game => rng.uniform(1.0, 4.0),
            _ => rng.uniform(0.75, 3.0),
        };
        let e = (s + (hours * 3_600_000.0) as i64).min(end);
        if e - s < 20 * 60_000 {
            continue;
        }
        busy_until = e;
        // Mostly the home category; sometimes a neighbour of the same type.
        let cats = categories_of(a.row.author_type);
        let category = if rng.chance(0.85) {
            a.row.home_category
        } else {
            CategoryId(cats[rng.index(cats.len())])
        };
        let (highlights, sales) = timeline(rng, a, s, e);
        lives.push(LiveTrack {
            row: Live {
                live: LiveId(0), // assigned after sorting
                author: a.row.author,
                start: EventTime(s),
                end: EventTime(e),
                category,
            },
            author_index,
            highlights,
            sales,
        });
    }
}

type Timeline = (Vec<(EventTime, EventTime, HighlightKind)>, Vec<SaleMoment>);

fn timeline(rng: &mut SimRng, a: &AuthorTraits, s: i64, e: i64) -> Timeline {
    const MIN: f64 = 60_000.0;
    let mut highlights = Vec::new();
    let mut sales = Vec::new();
    let (kind, gap, len) = match a.row.author_type {
        AuthorType::Talent => (HighlightKind::Performance, (6.0, 16.0), (2.0, 4.0)),
        AuthorType::Game => (HighlightKind::MatchClimax, (8.0, 22.0), (1.0, 3.0)),
        AuthorType::Ecommerce => (HighlightKind::SaleCountdown, (5.0, 12.0), (2.0, 2.0)),
        AuthorType::Chat => (HighlightKind::PkBattle, (15.0, 35.0), (2.0, 4.0)),
        AuthorType::Outdoor => (HighlightKind::Catch, (10.0, 25.0), (1.0, 2.5)),
    };
    let mut t = s + (rng.uniform(gap.0, gap.1) * MIN) as i64;
    // Ecommerce style walk: stay in the current c2 (a "style"), step to a neighbour c2 of
    // the same vertical, or jump anywhere in the vertical.
    let vertical = a.vertical.unwrap_or(0);
    let mut c2_local = rng.below(u64::from(C2_PER_C1)) as u32;
    loop {
        let h_len = (rng.uniform(len.0, len.1) * MIN) as i64;
        if t + h_len + 60_000 >= e {
            break;
        }
        if kind == HighlightKind::SaleCountdown {
            let roll = rng.f64();
            if roll < 0.3 {
                c2_local = (c2_local + if rng.chance(0.5) { 1 } else { C2_PER_C1 - 1 }) % C2_PER_C1;
            } else if roll < 0.4 {
                c2_local = rng.below(u64::from(C2_PER_C1)) as u32;
            }
            let c2 = vertical * C2_PER_C1 + c2_local;
            let c3 = c2 * C3_PER_C2 + rng.below(u64::from(C3_PER_C2)) as u32;
            let product = product_of(c3, rng.below(u64::from(PRODUCTS_PER_C3)) as u32);
            // The countdown is the highlight; the sale instant ends it, plus 30 s of rush.
            let on_sale = EventTime(t);
            let sale = EventTime(t + h_len);
            highlights.push((on_sale, EventTime(t + h_len + 30_000), kind));
            sales.push(SaleMoment {
                on_sale,
                sale,
                product,
            });
            t += h_len + 30_000;
        } else {
            highlights.push((EventTime(t), EventTime(t + h_len), kind));
            t += h_len;
        }
        t += (rng.uniform(gap.0, gap.1) * MIN) as i64;
    }
    (highlights, sales)
}

impl World {
    /// Highlight intervals of every room, as ground-truth rows.
    pub fn truth_highlights(&self) -> Vec<crate::realism::TruthHighlight> {
        self.lives
            .iter()
            .flat_map(|l| {
                l.highlights.iter().map(|h| crate::realism::TruthHighlight {
                    live: l.row.live.0,
                    start: h.0.0,
                    end: h.1.0,
                    kind: h.2,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Preset;

    #[test]
    fn world_is_consistent() {
        let config = SimConfig::preset(Preset::Tiny);
        let w = World::generate(&config);
        assert_eq!(w.users.len(), config.users as usize);
        assert_eq!(w.products.len(), 20_000);
        assert_eq!(w.products.last().unwrap().c3, CategoryId(4_999));
        assert_eq!(w.products.last().unwrap().c2, CategoryId(999));
        assert_eq!(w.products.last().unwrap().c1, CategoryId(49));
        for u in &w.users {
            let s: f32 = u.interest.iter().sum();
            assert!((s - 1.0).abs() < 1e-4);
        }
        assert!(!w.lives.is_empty());
        for l in &w.lives {
            assert!(l.row.start < l.row.end);
            assert!(l.row.end.0 <= config.end_ms());
            for h in &l.highlights {
                assert!(l.row.start <= h.0 && h.1 <= l.row.end && h.0 < h.1);
            }
            assert!(l.highlights.windows(2).all(|p| p[0].1 <= p[1].0));
        }
        // Every author type streams in the tiny world.
        for t in AuthorType::ALL {
            assert!(
                w.lives
                    .iter()
                    .any(|l| w.authors[l.author_index as usize].row.author_type == t)
            );
        }
    }

    #[test]
    fn in_highlight_respects_half_open_intervals() {
        let track = LiveTrack {
            row: Live {
                live: LiveId(1),
                author: AuthorId(1),
                start: EventTime(0),
                end: EventTime(100),
                category: CategoryId(0),
            },
            author_index: 0,
            highlights: vec![
                (EventTime(10), EventTime(20), HighlightKind::Catch),
                (EventTime(40), EventTime(50), HighlightKind::Catch),
            ],
            sales: vec![],
        };
        let inside: Vec<i64> = (0..100)
            .filter(|&t| track.in_highlight(EventTime(t)))
            .collect();
        let expected: Vec<i64> = (10..20).chain(40..50).collect();
        assert_eq!(inside, expected);
    }
}

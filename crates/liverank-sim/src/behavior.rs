//! How users behave: app visits made of feed requests, short-video plays, live exposures,
//! clicks, and sessions inside rooms with likes, comments, gifts and purchases.
//!
//! Every probability that shapes an outcome is written down here, so the ground truth
//! (each live exposure's true click probability) is exact, not estimated.

use crate::config::SimConfig;
use crate::rng::SimRng;
use crate::world::{CATEGORIES, LiveTrack, UserTraits, World};
use liverank_types::{
    CategoryId, DurationMs, Event, EventId, EventKind, EventTime, ItemRef, LiveId, Page, RequestId,
    UserId, VideoId,
};
use serde::{Deserialize, Serialize};

/// The true click probability of one live exposure (ground truth).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TruthExposure {
    /// Exposure key, part 1.
    pub request_id: RequestId,
    /// Exposure key, part 2.
    pub live: LiveId,
    /// Viewer.
    pub user: UserId,
    /// Impression time.
    pub ts: EventTime,
    /// True probability that the user enters from this exposure.
    pub p_click: f64,
    /// Whether the room was in a highlight at impression time.
    pub in_highlight: bool,
}

/// Per-user state that persists across visits.
#[derive(Clone, Debug)]
pub struct UserState {
    /// The user's own random stream.
    pub rng: SimRng,
    /// The user is busy (in a previous visit) until this instant.
    pub busy_until: i64,
    /// Requests made so far (the low bits of request ids).
    pub requests: u64,
}

/// Model coefficients, kept together so they are easy to read and tune.
mod coef {
    /// Base click logit.
    pub const CLICK_BASE: f64 = -3.0;
    /// Weight of ln(interest affinity) in the click logit.
    pub const CLICK_INTEREST: f64 = 0.75;
    /// Click logit lift while the room is in a highlight.
    pub const CLICK_HIGHLIGHT: f64 = 1.0;
    /// Click logit change per feed position.
    pub const CLICK_POSITION: f64 = -0.06;
    /// Rooms shown are sampled from this many on-air candidates.
    pub const CANDIDATES: usize = 8;
    /// Gift rate per minute after the warm-up, by payer level.
    pub const GIFT_RATE: [f64; 4] = [0.0, 0.012, 0.04, 0.1];
    /// Minutes in the room before a viewer starts gifting.
    pub const GIFT_WARMUP_MIN: f64 = 4.0;
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn new_event(ts: i64, kind: EventKind) -> Event {
    Event {
        event_id: EventId(0), // assigned when the stream is put in order
        ts: EventTime(ts),
        kind,
    }
}

/// Simulates visits of users in a fixed world. Reusable scratch space lives here.
/// One live slot of the feed to fill.
#[derive(Clone, Copy, Debug)]
pub struct FeedSlot<'a> {
    /// The viewer.
    pub user: UserId,
    /// The request (page) the slot belongs to; its impression carries this id.
    pub request: RequestId,
    /// Slot on the page, from 0.
    pub position: u32,
    /// When the slot is shown.
    pub ts: EventTime,
    /// The rooms on air that may fill it (on air now and for at least another minute).
    pub on_air: &'a [LiveId],
}

/// Who chooses the room of a feed's live slot. The user's reaction is the simulator's
/// own (the same click model and room session whoever chose), so a policy plugged in here
/// is measured against the ground truth: the closed-loop A/B test.
pub trait FeedPolicy {
    /// Whether the policy chooses at all; `false` = the platform's own recommender for
    /// every slot, drawing the same random numbers as a run without a policy.
    fn active(&self) -> bool {
        true
    }
    /// A room of `slot.on_air` for the slot; `None` = the platform's own choice.
    fn pick(&mut self, slot: &FeedSlot<'_>) -> Option<LiveId>;
    /// `pick` returned a room that is not among `slot.on_air`; the platform's own choice
    /// fills the slot.
    fn refused(&mut self, slot: &FeedSlot<'_>, live: LiveId) {
        let _ = (slot, live);
    }
}

/// The platform's own recommender for every slot (a plain run).
#[derive(Clone, Copy, Debug, Default)]
pub struct PlatformFeed;

impl FeedPolicy for PlatformFeed {
    fn active(&self) -> bool {
        false
    }
    fn pick(&mut self, _slot: &FeedSlot<'_>) -> Option<LiveId> {
        None
    }
}

#[derive(Debug)]
pub struct VisitSimulator<'w> {
    world: &'w World,
    start_ms: i64,
    end_ms: i64,
    items_per_visit: f64,
    page_size: u32,
    on_air: Vec<u32>,
    on_air_ids: Vec<LiveId>,
    room_events: Vec<Event>,
    interest_cdf: [f64; CATEGORIES],
}

impl<'w> VisitSimulator<'w> {
    /// A simulator over `world`.
    pub fn new(world: &'w World, config: &SimConfig) -> Self {
        Self {
            world,
            start_ms: config.start_ms,
            end_ms: config.end_ms(),
            items_per_visit: config.items_per_visit,
            page_size: config.page_size,
            on_air: Vec::new(),
            on_air_ids: Vec::new(),
            room_events: Vec::new(),
            interest_cdf: [0.0; CATEGORIES],
        }
    }

    /// Simulates one visit of user `ui` starting at `start`; appends its events in time
    /// order to `out` and the live exposures' truth to `truth`. Returns when it ended.
    pub fn visit(
        &mut self,
        ui: usize,
        state: &mut UserState,
        start: i64,
        out: &mut Vec<Event>,
        truth: &mut Vec<TruthExposure>,
        feed: &mut dyn FeedPolicy,
    ) -> i64 {
        let world = self.world;
        let user = &world.users[ui];
        let uid = user.profile.user;
        let mut acc = 0.0;
        for (c, v) in self.interest_cdf.iter_mut().zip(user.interest.iter()) {
            acc += f64::from(*v);
            *c = acc;
        }
        let rng = &mut state.rng;
        let mut t = start;
        // Sometimes a visit starts by opening a followed room directly: an organic enter.
        if rng.chance(0.03) {
            world.on_air(self.start_ms, EventTime(t), 120_000, &mut self.on_air);
            if !self.on_air.is_empty() {
                let li = self.pick_live(user, rng);
                t = self.room_session(user, li, t, None, rng, out) + rng.range_i64(500, 2_000);
            }
        }
        let items = 1 + rng.exponential(self.items_per_visit - 1.0).round() as u32;
        let mut request = RequestId(0);
        for i in 0..items {
            if t >= self.end_ms - 10_000 {
                break;
            }
            let position = i % self.page_size;
            if position == 0 {
                state.requests += 1;
                request = RequestId((uid.0 << 24) | (state.requests & 0xFF_FFFF));
            }
            let show_live = rng.chance(user.live_affinity) && {
                world.on_air(self.start_ms, EventTime(t), 60_000, &mut self.on_air);
                !self.on_air.is_empty()
            };
            if show_live {
                let li = match self.feed_pick(feed, uid, request, position, t) {
                    Some(li) => li,
                    None => self.pick_live(user, rng),
                };
                t = self.live_exposure(user, li, request, position, t, rng, out, truth);
            } else {
                t = self.video_exposure(user, request, position, t, rng, out);
            }
        }
        t
    }

    /// The feed policy's room for this slot, as an index into the world's lives, if it
    /// chose one of the rooms on air (anything else counts as a refusal, and the
    /// platform's own recommender fills the slot).
    fn feed_pick(
        &mut self,
        feed: &mut dyn FeedPolicy,
        user: UserId,
        request: RequestId,
        position: u32,
        t: i64,
    ) -> Option<usize> {
        if !feed.active() {
            return None;
        }
        let world = self.world;
        self.on_air_ids.clear();
        self.on_air_ids.extend(
            self.on_air
                .iter()
                .map(|&i| world.lives[i as usize].row.live),
        );
        let slot = FeedSlot {
            user,
            request,
            position,
            ts: EventTime(t),
            on_air: &self.on_air_ids,
        };
        let live = feed.pick(&slot)?;
        match self.on_air_ids.iter().position(|&l| l == live) {
            Some(k) => Some(self.on_air[k] as usize),
            None => {
                feed.refused(&slot, live);
                None
            }
        }
    }

    fn pick_live(&self, user: &UserTraits, rng: &mut SimRng) -> usize {
        // The platform's incumbent recommender: a few random on-air rooms, chosen by a
        // softmax over a partial view of the user's interest and the room's quality.
        let n = self.on_air.len();
        let mut best = self.on_air[rng.index(n)] as usize;
        let mut weights = [0.0f64; coef::CANDIDATES];
        let mut picks = [0usize; coef::CANDIDATES];
        let m = coef::CANDIDATES.min(n);
        for k in 0..m {
            let li = self.on_air[rng.index(n)] as usize;
            let live = &self.world.lives[li];
            let author = &self.world.authors[live.author_index as usize];
            let score =
                0.5 * user.affinity(live.row.category).max(0.05).ln() + 0.5 * author.quality;
            picks[k] = li;
            weights[k] = score.exp();
        }
        if m > 0 {
            best = picks[rng.weighted(&weights[..m])];
        }
        best
    }

    /// The true click probability of showing room `li` to `user` at `t` in slot `position`.
    pub fn click_probability(
        &self,
        user: &UserTraits,
        live: &LiveTrack,
        t: EventTime,
        position: u32,
    ) -> f64 {
        let author = &self.world.authors[live.author_index as usize];
        let affinity = user.affinity(live.row.category).max(0.05);
        let logit = coef::CLICK_BASE
            + coef::CLICK_INTEREST * affinity.ln()
            + author.quality
            + user.click_bias
            + if live.in_highlight(t) {
                coef::CLICK_HIGHLIGHT
            } else {
                0.0
            }
            + coef::CLICK_POSITION * f64::from(position);
        sigmoid(logit)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; a struct would only rename them"
    )]
    fn live_exposure(
        &mut self,
        user: &UserTraits,
        li: usize,
        request: RequestId,
        position: u32,
        t: i64,
        rng: &mut SimRng,
        out: &mut Vec<Event>,
        truth: &mut Vec<TruthExposure>,
    ) -> i64 {
        let live = &self.world.lives[li];
        let uid = user.profile.user;
        out.push(new_event(
            t,
            EventKind::Impression {
                user: uid,
                item: ItemRef::Live(live.row.live),
                request_id: request,
                position,
                page: Page::Featured,
            },
        ));
        let p_click = self.click_probability(user, live, EventTime(t), position);
        truth.push(TruthExposure {
            request_id: request,
            live: live.row.live,
            user: uid,
            ts: EventTime(t),
            p_click,
            in_highlight: live.in_highlight(EventTime(t)),
        });
        if rng.chance(p_click) {
            let enter = t + rng.range_i64(800, 4_000);
            let left = self.room_session(user, li, enter, Some(request), rng, out);
            left + rng.range_i64(500, 2_000)
        } else {
            t + rng.range_i64(1_200, 4_000)
        }
    }

    fn video_exposure(
        &mut self,
        user: &UserTraits,
        request: RequestId,
        position: u32,
        t: i64,
        rng: &mut SimRng,
        out: &mut Vec<Event>,
    ) -> i64 {
        let world = self.world;
        let category = if rng.chance(0.85) {
            let x = rng.f64() * self.interest_cdf[CATEGORIES - 1];
            self.interest_cdf
                .partition_point(|&c| c <= x)
                .min(CATEGORIES - 1)
        } else {
            rng.index(CATEGORIES)
        };
        let pool = &world.videos_by_category[category];
        let vi = pool[rng.index(pool.len())] as usize;
        let video = &world.videos[vi];
        let uid = user.profile.user;
        let affinity = user.affinity(CategoryId(category as u32)).max(0.05);
        let fraction = rng
            .lognormal(0.45 * affinity.powf(0.25), 0.7)
            .clamp(0.02, 1.0);
        let duration = video.duration_ms.as_millis() as f64;
        let watch = (duration * fraction) as i64;
        let completed = fraction >= 1.0;
        let end = t + watch.max(300);
        if end >= self.end_ms {
            return self.end_ms;
        }
        out.push(new_event(
            t,
            EventKind::Impression {
                user: uid,
                item: ItemRef::Video(video.video),
                request_id: request,
                position,
                page: Page::Featured,
            },
        ));
        let vid: VideoId = video.video;
        let mut reactions: [Option<Event>; 2] = [None, None];
        if rng.chance(0.03 * affinity.sqrt()) {
            let ts = t + rng.range_i64(1, watch.max(2) - 1);
            reactions[0] = Some(new_event(
                ts,
                EventKind::VideoLike {
                    user: uid,
                    video: vid,
                },
            ));
        }
        if rng.chance(0.006 * affinity.sqrt()) {
            let ts = t + rng.range_i64(1, watch.max(2) - 1);
            reactions[1] = Some(new_event(
                ts,
                EventKind::VideoComment {
                    user: uid,
                    video: vid,
                },
            ));
        }
        // Reactions happen during the play, which is reported at its end.
        if let [Some(a), Some(b)] = &reactions
            && b.ts < a.ts
        {
            reactions.swap(0, 1);
        }
        out.extend(reactions.into_iter().flatten());
        out.push(new_event(
            end,
            EventKind::VideoPlay {
                user: uid,
                video: vid,
                watch_ms: DurationMs((end - t) as u64),
                completed,
            },
        ));
        end + rng.range_i64(200, 1_200)
    }

    /// A session in room `li` from `enter`; returns when the user is out of the room.
    fn room_session(
        &mut self,
        user: &UserTraits,
        li: usize,
        enter: i64,
        request: Option<RequestId>,
        rng: &mut SimRng,
        out: &mut Vec<Event>,
    ) -> i64 {
        let world = self.world;
        let live = &world.lives[li];
        let author = &world.authors[live.author_index as usize];
        let uid = user.profile.user;
        let lid = live.row.live;
        out.push(new_event(
            enter,
            EventKind::Enter {
                user: uid,
                live: lid,
                request_id: request,
            },
        ));
        let affinity = user.affinity(live.row.category).max(0.05);
        let highlight = live.in_highlight(EventTime(enter));
        let payer = f64::from(user.profile.payer_level);
        let engaged = sigmoid(
            -0.9 + 0.6 * affinity.ln()
                + author.quality
                + if highlight { 0.7 } else { 0.0 }
                + 0.15 * payer,
        );
        let watch_ms = if !rng.chance(engaged) {
            rng.uniform(4_000.0, 55_000.0)
        } else if rng.chance(0.1 + 0.07 * payer) {
            rng.lognormal(25.0 * 60_000.0, 0.5)
        } else {
            rng.lognormal(3.0 * 60_000.0, 0.6)
        };
        let planned_leave = enter + (watch_ms as i64).clamp(2_000, 3 * 3_600_000);
        // If the broadcast ends first, the session closes with `LiveEnd` and no `Leave`.
        let ended_by_live = planned_leave >= live.row.end.0;
        let close = planned_leave.min(live.row.end.0);
        let minutes = (close - enter) as f64 / 60_000.0;
        let room = &mut self.room_events;
        room.clear();
        let at = |rng: &mut SimRng, lo: i64| rng.range_i64(lo.max(enter + 1), close - 1);
        let engagement = 0.5 + 0.5 * affinity.min(3.0);
        for _ in 0..rng.poisson(minutes * 0.3 * engagement) {
            room.push(new_event(
                at(rng, enter),
                EventKind::Like {
                    user: uid,
                    live: lid,
                },
            ));
        }
        for _ in 0..rng.poisson(minutes * 0.07 * engagement) {
            room.push(new_event(
                at(rng, enter),
                EventKind::Comment {
                    user: uid,
                    live: lid,
                },
            ));
        }
        if rng.chance((0.01 + 0.02 * minutes.min(10.0)) * engagement.min(1.5)) {
            room.push(new_event(
                at(rng, enter),
                EventKind::Follow {
                    user: uid,
                    live: lid,
                },
            ));
        }
        if rng.chance(0.01 * engagement) {
            room.push(new_event(
                at(rng, enter),
                EventKind::Share {
                    user: uid,
                    live: lid,
                },
            ));
        }
        let gift_minutes = minutes - coef::GIFT_WARMUP_MIN;
        if gift_minutes > 0.0 {
            let rate = coef::GIFT_RATE[user.profile.payer_level.min(3) as usize];
            let warm = enter + (coef::GIFT_WARMUP_MIN * 60_000.0) as i64;
            for _ in 0..rng.poisson(gift_minutes * rate * engagement) {
                let value = rng.lognormal(10.0, 1.2).ceil().clamp(1.0, 50_000.0) as u64;
                let kind = EventKind::Gift {
                    user: uid,
                    live: lid,
                    value,
                };
                room.push(new_event(at(rng, warm), kind));
            }
        }
        for sale in &live.sales {
            if sale.sale.0 <= enter || sale.sale.0 + 5_000 >= close {
                continue;
            }
            if rng.chance(0.25 * engagement * (0.6 + 0.2 * payer)) {
                let click = (sale.sale.0 + rng.range_i64(1_000, 60_000)).min(close - 2);
                let product = sale.product.product;
                room.push(new_event(
                    click,
                    EventKind::CartClick {
                        user: uid,
                        live: lid,
                        product,
                    },
                ));
                if rng.chance(0.35 + 0.15 * payer) {
                    let buy = (click + rng.range_i64(1, 40_000)).min(close - 1);
                    let amount = rng.lognormal(9_900.0, 0.8).round() as u64;
                    let kind = EventKind::Purchase {
                        user: uid,
                        live: lid,
                        product,
                        amount,
                    };
                    room.push(new_event(buy, kind));
                }
            }
        }
        room.sort_by_key(|e| e.ts);
        out.append(room);
        if !ended_by_live {
            out.push(new_event(
                close,
                EventKind::Leave {
                    user: uid,
                    live: lid,
                    watch_ms: DurationMs((close - enter) as u64),
                },
            ));
        }
        close
    }
}

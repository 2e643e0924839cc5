//! From events to history records, incrementally (SPEC §4 visibility rules).
//!
//! * A `VideoPlay` is reported at the play's end: it becomes a record available at its
//!   `ts`, started `watch_ms` earlier, carrying the `VideoLike`/`VideoComment` the user
//!   gave that video while it played (they arrive before the report).
//! * A live session opens at `Enter` and becomes a record at its `Leave` (available at
//!   the `Leave`, `watch_ms` from it), at a new `Enter` of the same user into the same
//!   room, or at the room's `LiveEnd` (every session still open closes there). Likes,
//!   comments and gifts seen in between set its flags.
//! * A `Leave` without an open session (the `Enter` came before the stream began) is a
//!   record started `watch_ms` before it; one for a room that already ended is ignored
//!   (its session was closed by the `LiveEnd`).
//!
//! Authors and categories come from the videos table and from `LiveStart` events (or the
//! lives table); an item neither names is counted and skipped, as a record without an
//! author or category would mislead every search.
//!
//! The builder expects events in time order (the simulator's stream, or the sample
//! engine's reordered output). It is a plain state machine: feed it events as they come
//! and append what it emits to a store; sessions still open stay open until a later event
//! closes them.

use crate::record::{Categories, Domain, HistoryRecord};
use liverank_types::{
    AuthorId, DurationMs, Event, EventKind, EventTime, Live, LiveId, UserId, Video, VideoId,
};
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Clone, Copy, Debug)]
struct OpenSession {
    enter: EventTime,
    like: bool,
    comment: bool,
    gift: bool,
}

#[derive(Clone, Copy, Debug)]
struct PendingReaction {
    ts: EventTime,
    like: bool,
    comment: bool,
}

/// What the builder did, for the build summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BuilderCounters {
    /// Events fed.
    pub events: u64,
    /// Video records emitted.
    pub video_records: u64,
    /// Live records emitted.
    pub live_records: u64,
    /// Sessions closed by their room's `LiveEnd` rather than a `Leave`.
    pub closed_by_live_end: u64,
    /// `Leave`s without an open session, turned into records from their `watch_ms`.
    pub leaves_without_enter: u64,
    /// Interactions skipped because neither the tables nor the stream named the item's
    /// author and category.
    pub unknown_items: u64,
    /// Video likes/comments never followed by a play of that video within an hour.
    pub orphan_reactions: u64,
}

/// Reactions older than this without a play report are dropped (and counted).
const REACTION_HORIZON_MS: i64 = 3_600_000;
/// How often (in events) stale reactions are swept.
const SWEEP_EVERY: u64 = 100_000;

/// Turns an event stream into `(user, record)` pairs as records become complete.
#[derive(Clone, Debug)]
pub struct HistoryBuilder {
    long_view_ms: u64,
    videos: HashMap<VideoId, (AuthorId, Categories)>,
    lives: HashMap<LiveId, (AuthorId, Categories)>,
    ended: HashSet<LiveId>,
    /// Keyed (live, user) so a `LiveEnd` closes its room's sessions with one range scan,
    /// in user order (deterministic output).
    sessions: BTreeMap<(LiveId, UserId), OpenSession>,
    reactions: HashMap<(UserId, VideoId), PendingReaction>,
    newest: EventTime,
    counters: BuilderCounters,
}

impl HistoryBuilder {
    /// A builder; sessions and plays of at least `long_view_ms` are long views (use the
    /// sample engine's threshold, the `samples.long_view_ms` setting, 60 s).
    pub fn new(long_view_ms: u64) -> Self {
        Self {
            long_view_ms,
            videos: HashMap::new(),
            lives: HashMap::new(),
            ended: HashSet::new(),
            sessions: BTreeMap::new(),
            reactions: HashMap::new(),
            newest: EventTime(i64::MIN),
            counters: BuilderCounters::default(),
        }
    }

    /// Adds the videos table (author and category of each video).
    pub fn with_videos<'a>(mut self, videos: impl IntoIterator<Item = &'a Video>) -> Self {
        self.videos.extend(
            videos
                .into_iter()
                .map(|v| (v.video, (v.author, Categories::one(v.category)))),
        );
        self
    }

    /// Adds the lives table (for rooms whose `LiveStart` is not in the stream).
    pub fn with_lives<'a>(mut self, lives: impl IntoIterator<Item = &'a Live>) -> Self {
        self.lives.extend(
            lives
                .into_iter()
                .map(|l| (l.live, (l.author, Categories::one(l.category)))),
        );
        self
    }

    /// What happened so far.
    pub fn counters(&self) -> BuilderCounters {
        self.counters
    }

    /// Live sessions still open.
    pub fn open_sessions(&self) -> usize {
        self.sessions.len()
    }

    fn live_record(
        &mut self,
        user: UserId,
        live: LiveId,
        session: OpenSession,
        end: EventTime,
        watch: DurationMs,
        out: &mut Vec<(UserId, HistoryRecord)>,
    ) {
        let Some(&(author, categories)) = self.lives.get(&live) else {
            self.counters.unknown_items += 1;
            return;
        };
        let end = end.max(session.enter);
        // The record's time spent never exceeds its span (a client clock can disagree).
        let watch = DurationMs(watch.0.min(end.since(session.enter).0));
        self.counters.live_records += 1;
        out.push((
            user,
            HistoryRecord {
                ts: session.enter,
                available_at: end,
                domain: Domain::Live,
                item: live.0,
                author,
                categories,
                watch_ms: watch,
                long_view: watch.0 >= self.long_view_ms,
                like: session.like,
                comment: session.comment,
                gift: session.gift,
            },
        ));
    }

    /// Feeds one event; records it completes are pushed to `out`.
    pub fn push(&mut self, event: &Event, out: &mut Vec<(UserId, HistoryRecord)>) {
        let ts = event.ts;
        self.counters.events += 1;
        self.newest = self.newest.max(ts);
        match event.kind {
            EventKind::LiveStart {
                live,
                author,
                category,
            } => {
                self.lives.insert(live, (author, Categories::one(category)));
            }
            EventKind::Enter { user, live, .. } => {
                let fresh = OpenSession {
                    enter: ts,
                    like: false,
                    comment: false,
                    gift: false,
                };
                if let Some(previous) = self.sessions.insert((live, user), fresh) {
                    let watch = ts.since(previous.enter);
                    self.live_record(user, live, previous, ts, watch, out);
                }
            }
            EventKind::Leave {
                user,
                live,
                watch_ms,
            } => {
                if let Some(session) = self.sessions.remove(&(live, user)) {
                    self.live_record(user, live, session, ts, watch_ms, out);
                } else if !self.ended.contains(&live) {
                    self.counters.leaves_without_enter += 1;
                    let session = OpenSession {
                        enter: ts - watch_ms,
                        like: false,
                        comment: false,
                        gift: false,
                    };
                    self.live_record(user, live, session, ts, watch_ms, out);
                }
            }
            EventKind::Like { user, live } => {
                if let Some(s) = self.sessions.get_mut(&(live, user)) {
                    s.like = true;
                }
            }
            EventKind::Comment { user, live } => {
                if let Some(s) = self.sessions.get_mut(&(live, user)) {
                    s.comment = true;
                }
            }
            EventKind::Gift { user, live, .. } => {
                if let Some(s) = self.sessions.get_mut(&(live, user)) {
                    s.gift = true;
                }
            }
            EventKind::LiveEnd { live } => {
                let keys: Vec<(LiveId, UserId)> = self
                    .sessions
                    .range((live, UserId(0))..=(live, UserId(u64::MAX)))
                    .map(|(k, _)| *k)
                    .collect();
                for key in keys {
                    if let Some(session) = self.sessions.remove(&key) {
                        self.counters.closed_by_live_end += 1;
                        let watch = ts.since(session.enter);
                        self.live_record(key.1, live, session, ts, watch, out);
                    }
                }
                self.ended.insert(live);
                self.lives.remove(&live);
            }
            EventKind::VideoLike { user, video } | EventKind::VideoComment { user, video } => {
                let like = matches!(event.kind, EventKind::VideoLike { .. });
                let pending = self
                    .reactions
                    .entry((user, video))
                    .or_insert(PendingReaction {
                        ts,
                        like: false,
                        comment: false,
                    });
                pending.ts = ts;
                pending.like |= like;
                pending.comment |= !like;
            }
            EventKind::VideoPlay {
                user,
                video,
                watch_ms,
                completed,
            } => {
                let start = ts - watch_ms;
                // Reactions belong to this play if given since it started.
                let reaction = self
                    .reactions
                    .remove(&(user, video))
                    .filter(|r| r.ts >= start);
                if let Some(&(author, categories)) = self.videos.get(&video) {
                    self.counters.video_records += 1;
                    out.push((
                        user,
                        HistoryRecord {
                            ts: start,
                            available_at: ts,
                            domain: Domain::Video,
                            item: video.0,
                            author,
                            categories,
                            watch_ms,
                            long_view: completed || watch_ms.0 >= self.long_view_ms,
                            like: reaction.is_some_and(|r| r.like),
                            comment: reaction.is_some_and(|r| r.comment),
                            gift: false,
                        },
                    ));
                } else {
                    self.counters.unknown_items += 1;
                }
            }
            EventKind::Impression { .. }
            | EventKind::Follow { .. }
            | EventKind::Share { .. }
            | EventKind::CartClick { .. }
            | EventKind::Purchase { .. }
            | EventKind::ProductOnSale { .. } => {}
        }
        if self.counters.events.is_multiple_of(SWEEP_EVERY) {
            let horizon = self.newest.0.saturating_sub(REACTION_HORIZON_MS);
            let before = self.reactions.len();
            self.reactions.retain(|_, r| r.ts.0 >= horizon);
            self.counters.orphan_reactions += (before - self.reactions.len()) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liverank_types::{CategoryId, EventId, RequestId};

    fn ev(id: u64, s: i64, kind: EventKind) -> Event {
        Event {
            event_id: EventId(id),
            ts: EventTime(s * 1_000),
            kind,
        }
    }

    fn run(events: &[Event]) -> (Vec<(UserId, HistoryRecord)>, HistoryBuilder) {
        let videos = [Video {
            video: VideoId(5),
            author: AuthorId(50),
            duration_ms: DurationMs(20_000),
            category: CategoryId(4),
        }];
        let mut builder = HistoryBuilder::new(60_000).with_videos(&videos);
        let mut out = Vec::new();
        for e in events {
            builder.push(e, &mut out);
        }
        (out, builder)
    }

    #[test]
    fn builder_live_session_becomes_a_record_at_leave_with_its_flags() {
        let (u, l) = (UserId(1), LiveId(2));
        let (out, b) = run(&[
            ev(
                1,
                0,
                EventKind::LiveStart {
                    live: l,
                    author: AuthorId(9),
                    category: CategoryId(3),
                },
            ),
            ev(
                2,
                5,
                EventKind::Enter {
                    user: u,
                    live: l,
                    request_id: Some(RequestId(1)),
                },
            ),
            ev(3, 12, EventKind::Like { user: u, live: l }),
            ev(
                4,
                20,
                EventKind::Gift {
                    user: u,
                    live: l,
                    value: 10,
                },
            ),
            ev(
                5,
                70,
                EventKind::Leave {
                    user: u,
                    live: l,
                    watch_ms: DurationMs(65_000),
                },
            ),
        ]);
        assert_eq!(out.len(), 1);
        let (user, r) = out[0];
        assert_eq!(user, u);
        assert_eq!(
            (r.ts, r.available_at),
            (EventTime(5_000), EventTime(70_000))
        );
        assert_eq!((r.domain, r.item, r.author), (Domain::Live, 2, AuthorId(9)));
        assert_eq!(r.categories.as_slice(), [CategoryId(3)]);
        assert_eq!(r.watch_ms, DurationMs(65_000));
        assert!(r.long_view && r.like && r.gift && !r.comment);
        assert_eq!(b.open_sessions(), 0);
        assert_eq!(r.validate(), Ok(()));
    }

    #[test]
    fn builder_closes_open_sessions_at_live_end_and_ignores_late_leaves() {
        let l = LiveId(2);
        let (out, b) = run(&[
            ev(
                1,
                0,
                EventKind::LiveStart {
                    live: l,
                    author: AuthorId(9),
                    category: CategoryId(3),
                },
            ),
            ev(
                2,
                10,
                EventKind::Enter {
                    user: UserId(8),
                    live: l,
                    request_id: None,
                },
            ),
            ev(
                3,
                20,
                EventKind::Enter {
                    user: UserId(7),
                    live: l,
                    request_id: None,
                },
            ),
            ev(4, 50, EventKind::LiveEnd { live: l }),
            ev(
                5,
                55,
                EventKind::Leave {
                    user: UserId(7),
                    live: l,
                    watch_ms: DurationMs(35_000),
                },
            ),
        ]);
        let users: Vec<u64> = out.iter().map(|(u, _)| u.0).collect();
        assert_eq!(users, [7, 8], "closed in user order");
        assert!(out.iter().all(|(_, r)| r.available_at == EventTime(50_000)));
        assert_eq!(out[1].1.watch_ms, DurationMs(40_000));
        assert!(!out[1].1.long_view);
        assert_eq!(b.counters().closed_by_live_end, 2);
        assert_eq!(b.counters().leaves_without_enter, 0);
    }

    #[test]
    fn builder_re_enter_closes_the_previous_session() {
        let (u, l) = (UserId(1), LiveId(2));
        let (out, _) = run(&[
            ev(
                1,
                0,
                EventKind::LiveStart {
                    live: l,
                    author: AuthorId(9),
                    category: CategoryId(3),
                },
            ),
            ev(
                2,
                10,
                EventKind::Enter {
                    user: u,
                    live: l,
                    request_id: None,
                },
            ),
            ev(
                3,
                100,
                EventKind::Enter {
                    user: u,
                    live: l,
                    request_id: None,
                },
            ),
            ev(
                4,
                110,
                EventKind::Leave {
                    user: u,
                    live: l,
                    watch_ms: DurationMs(10_000),
                },
            ),
        ]);
        let spans: Vec<(i64, i64, bool)> = out
            .iter()
            .map(|(_, r)| (r.ts.0 / 1000, r.available_at.0 / 1000, r.long_view))
            .collect();
        assert_eq!(spans, [(10, 100, true), (100, 110, false)]);
    }

    #[test]
    fn builder_video_play_carries_reactions_during_the_play() {
        let (u, v) = (UserId(1), VideoId(5));
        let (out, b) = run(&[
            ev(1, 3, EventKind::VideoLike { user: u, video: v }),
            ev(
                2,
                10,
                EventKind::VideoPlay {
                    user: u,
                    video: v,
                    watch_ms: DurationMs(8_000),
                    completed: false,
                },
            ),
            ev(
                3,
                30,
                EventKind::VideoPlay {
                    user: u,
                    video: v,
                    watch_ms: DurationMs(20_000),
                    completed: true,
                },
            ),
            ev(
                4,
                40,
                EventKind::VideoPlay {
                    user: u,
                    video: VideoId(99),
                    watch_ms: DurationMs(1_000),
                    completed: false,
                },
            ),
        ]);
        assert_eq!(out.len(), 2);
        let first = out[0].1;
        assert_eq!(
            (first.ts, first.available_at),
            (EventTime(2_000), EventTime(10_000))
        );
        assert!(first.like && !first.comment && !first.long_view);
        assert_eq!(first.author, AuthorId(50));
        let second = out[1].1;
        assert!(
            !second.like && second.long_view,
            "completed play is a long view"
        );
        assert_eq!(b.counters().unknown_items, 1);
    }

    #[test]
    fn builder_leave_without_enter_starts_watch_ms_earlier() {
        let (u, l) = (UserId(1), LiveId(2));
        let (out, b) = run(&[
            ev(
                1,
                0,
                EventKind::LiveStart {
                    live: l,
                    author: AuthorId(9),
                    category: CategoryId(3),
                },
            ),
            ev(
                2,
                100,
                EventKind::Leave {
                    user: u,
                    live: l,
                    watch_ms: DurationMs(90_000),
                },
            ),
        ]);
        assert_eq!(out[0].1.ts, EventTime(10_000));
        assert!(out[0].1.long_view);
        assert_eq!(b.counters().leaves_without_enter, 1);
    }
}

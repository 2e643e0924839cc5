//! The event vocabulary of a live-streaming platform (SPEC §2).
//!
//! On the wire an event is one flat record: `event_id`, `ts`, `type` and the fields its
//! type needs ([`EventRecord`]). The same flat shape is a JSON object and a Parquet row,
//! so both formats share one validation step: [`Event::try_from`] checks that the type's
//! required fields are present, that no foreign field is set, and that durations and
//! amounts are not negative. Inside the program an event is the typed [`Event`].

use crate::id::{AuthorId, CategoryId, EventId, LiveId, ProductId, RequestId, UserId, VideoId};
use crate::time::{DurationMs, EventTime};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Version of the event wire format (JSON field set and Parquet schema).
pub const EVENT_FORMAT_VERSION: u32 = 1;

/// What an impression showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ItemRef {
    /// A live room (this impression is an *exposure*).
    Live(LiveId),
    /// A short video.
    Video(VideoId),
}

/// Where in the app a request was served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Page {
    /// The main recommendation feed.
    Featured,
    /// The feed of followed authors.
    Follow,
    /// Nearby / local feed.
    Nearby,
    /// Search results.
    Search,
}

impl Page {
    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Page::Featured => "featured",
            Page::Follow => "follow",
            Page::Nearby => "nearby",
            Page::Search => "search",
        }
    }
}

impl FromStr for Page {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "featured" => Ok(Page::Featured),
            "follow" => Ok(Page::Follow),
            "nearby" => Ok(Page::Nearby),
            "search" => Ok(Page::Search),
            other => Err(format!(
                "unknown page `{other}`, expected one of featured, follow, nearby, search"
            )),
        }
    }
}

/// The typed payload of an event.
#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// An item shown to a user. For a live it is an exposure keyed by `(request_id, live)`.
    Impression {
        /// Viewer.
        user: UserId,
        /// What was shown.
        item: ItemRef,
        /// The request whose page held it.
        request_id: RequestId,
        /// Slot on the page, from 0.
        position: u32,
        /// Which feed.
        page: Page,
    },
    /// The user opens a session in a room; with a `request_id` it is the click of that exposure.
    Enter {
        /// Viewer.
        user: UserId,
        /// Room.
        live: LiveId,
        /// The exposure clicked, if any; `None` for organic entries.
        request_id: Option<RequestId>,
    },
    /// The user leaves the room after `watch_ms`.
    Leave {
        /// Viewer.
        user: UserId,
        /// Room.
        live: LiveId,
        /// Time spent since the matching `Enter`.
        watch_ms: DurationMs,
    },
    /// A like in a room.
    Like {
        /// Viewer.
        user: UserId,
        /// Room.
        live: LiveId,
    },
    /// A comment in a room.
    Comment {
        /// Viewer.
        user: UserId,
        /// Room.
        live: LiveId,
    },
    /// The user follows the room's author.
    Follow {
        /// Viewer.
        user: UserId,
        /// Room.
        live: LiveId,
    },
    /// The user shares the room.
    Share {
        /// Viewer.
        user: UserId,
        /// Room.
        live: LiveId,
    },
    /// A virtual gift worth `value` coins.
    Gift {
        /// Viewer.
        user: UserId,
        /// Room.
        live: LiveId,
        /// Coins, >= 0.
        value: u64,
    },
    /// A click on a product card in the room's shopping cart.
    CartClick {
        /// Viewer.
        user: UserId,
        /// Room.
        live: LiveId,
        /// Product clicked.
        product: ProductId,
    },
    /// An order placed in the room.
    Purchase {
        /// Buyer.
        user: UserId,
        /// Room.
        live: LiveId,
        /// Product bought.
        product: ProductId,
        /// Order amount in cents, >= 0.
        amount: u64,
    },
    /// A short-video play, reported at its end.
    VideoPlay {
        /// Viewer.
        user: UserId,
        /// Video.
        video: VideoId,
        /// Time watched.
        watch_ms: DurationMs,
        /// Whether the play reached the end of the video.
        completed: bool,
    },
    /// A like on a short video.
    VideoLike {
        /// Viewer.
        user: UserId,
        /// Video.
        video: VideoId,
    },
    /// A comment on a short video.
    VideoComment {
        /// Viewer.
        user: UserId,
        /// Video.
        video: VideoId,
    },
    /// A broadcast begins.
    LiveStart {
        /// Room.
        live: LiveId,
        /// Streamer.
        author: AuthorId,
        /// Content category of the broadcast.
        category: CategoryId,
    },
    /// A broadcast ends; every open session in the room closes.
    LiveEnd {
        /// Room.
        live: LiveId,
    },
    /// A product is put on sale in the room (c1 ⊂ c2 ⊂ c3).
    ProductOnSale {
        /// Room.
        live: LiveId,
        /// Product.
        product: ProductId,
        /// Top-level category (50 values in the simulator).
        c1: CategoryId,
        /// Mid-level category (1,000 values).
        c2: CategoryId,
        /// Leaf category (5,000 values).
        c3: CategoryId,
    },
}

/// The discriminant of [`EventKind`], as written in the `type` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// See [`EventKind::Impression`].
    Impression,
    /// See [`EventKind::Enter`].
    Enter,
    /// See [`EventKind::Leave`].
    Leave,
    /// See [`EventKind::Like`].
    Like,
    /// See [`EventKind::Comment`].
    Comment,
    /// See [`EventKind::Follow`].
    Follow,
    /// See [`EventKind::Share`].
    Share,
    /// See [`EventKind::Gift`].
    Gift,
    /// See [`EventKind::CartClick`].
    CartClick,
    /// See [`EventKind::Purchase`].
    Purchase,
    /// See [`EventKind::VideoPlay`].
    VideoPlay,
    /// See [`EventKind::VideoLike`].
    VideoLike,
    /// See [`EventKind::VideoComment`].
    VideoComment,
    /// See [`EventKind::LiveStart`].
    LiveStart,
    /// See [`EventKind::LiveEnd`].
    LiveEnd,
    /// See [`EventKind::ProductOnSale`].
    ProductOnSale,
}

impl EventType {
    /// Every type, in declaration order.
    pub const ALL: [EventType; 16] = [
        EventType::Impression,
        EventType::Enter,
        EventType::Leave,
        EventType::Like,
        EventType::Comment,
        EventType::Follow,
        EventType::Share,
        EventType::Gift,
        EventType::CartClick,
        EventType::Purchase,
        EventType::VideoPlay,
        EventType::VideoLike,
        EventType::VideoComment,
        EventType::LiveStart,
        EventType::LiveEnd,
        EventType::ProductOnSale,
    ];

    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::Impression => "impression",
            EventType::Enter => "enter",
            EventType::Leave => "leave",
            EventType::Like => "like",
            EventType::Comment => "comment",
            EventType::Follow => "follow",
            EventType::Share => "share",
            EventType::Gift => "gift",
            EventType::CartClick => "cart_click",
            EventType::Purchase => "purchase",
            EventType::VideoPlay => "video_play",
            EventType::VideoLike => "video_like",
            EventType::VideoComment => "video_comment",
            EventType::LiveStart => "live_start",
            EventType::LiveEnd => "live_end",
            EventType::ProductOnSale => "product_on_sale",
        }
    }

    /// Events that happen inside a live room's session.
    pub const fn is_in_room(self) -> bool {
        matches!(
            self,
            EventType::Leave
                | EventType::Like
                | EventType::Comment
                | EventType::Follow
                | EventType::Share
                | EventType::Gift
                | EventType::CartClick
                | EventType::Purchase
        )
    }
}

impl FromStr for EventType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown event type `{s}`"))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One platform event: unique id, event time, payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "EventRecord", into = "EventRecord")]
pub struct Event {
    /// Unique id; a repeat is a duplicate delivery.
    pub event_id: EventId,
    /// Event time.
    pub ts: EventTime,
    /// What happened.
    pub kind: EventKind,
}

impl Event {
    /// The `type` discriminant.
    pub fn event_type(&self) -> EventType {
        match self.kind {
            EventKind::Impression { .. } => EventType::Impression,
            EventKind::Enter { .. } => EventType::Enter,
            EventKind::Leave { .. } => EventType::Leave,
            EventKind::Like { .. } => EventType::Like,
            EventKind::Comment { .. } => EventType::Comment,
            EventKind::Follow { .. } => EventType::Follow,
            EventKind::Share { .. } => EventType::Share,
            EventKind::Gift { .. } => EventType::Gift,
            EventKind::CartClick { .. } => EventType::CartClick,
            EventKind::Purchase { .. } => EventType::Purchase,
            EventKind::VideoPlay { .. } => EventType::VideoPlay,
            EventKind::VideoLike { .. } => EventType::VideoLike,
            EventKind::VideoComment { .. } => EventType::VideoComment,
            EventKind::LiveStart { .. } => EventType::LiveStart,
            EventKind::LiveEnd { .. } => EventType::LiveEnd,
            EventKind::ProductOnSale { .. } => EventType::ProductOnSale,
        }
    }

    /// The acting user, for user events.
    pub fn user(&self) -> Option<UserId> {
        match self.kind {
            EventKind::Impression { user, .. }
            | EventKind::Enter { user, .. }
            | EventKind::Leave { user, .. }
            | EventKind::Like { user, .. }
            | EventKind::Comment { user, .. }
            | EventKind::Follow { user, .. }
            | EventKind::Share { user, .. }
            | EventKind::Gift { user, .. }
            | EventKind::CartClick { user, .. }
            | EventKind::Purchase { user, .. }
            | EventKind::VideoPlay { user, .. }
            | EventKind::VideoLike { user, .. }
            | EventKind::VideoComment { user, .. } => Some(user),
            EventKind::LiveStart { .. }
            | EventKind::LiveEnd { .. }
            | EventKind::ProductOnSale { .. } => None,
        }
    }

    /// The live room the event concerns, if any (a live impression included).
    pub fn live(&self) -> Option<LiveId> {
        match self.kind {
            EventKind::Impression {
                item: ItemRef::Live(live),
                ..
            }
            | EventKind::Enter { live, .. }
            | EventKind::Leave { live, .. }
            | EventKind::Like { live, .. }
            | EventKind::Comment { live, .. }
            | EventKind::Follow { live, .. }
            | EventKind::Share { live, .. }
            | EventKind::Gift { live, .. }
            | EventKind::CartClick { live, .. }
            | EventKind::Purchase { live, .. }
            | EventKind::LiveStart { live, .. }
            | EventKind::LiveEnd { live }
            | EventKind::ProductOnSale { live, .. } => Some(live),
            _ => None,
        }
    }
}

/// The flat wire shape of an event: one JSON object or one Parquet row. Fields that a type
/// does not use are absent (JSON) or null (Parquet).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Unique event id.
    pub event_id: u64,
    /// Event time, ms since the epoch.
    pub ts: i64,
    /// Event type.
    #[serde(rename = "type")]
    pub event_type: Option<EventType>,
    /// Acting user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<u64>,
    /// Live room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<u64>,
    /// Short video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<u64>,
    /// Streamer (live_start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<u64>,
    /// Feed request (impression; enter when it is a click).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<u64>,
    /// Slot on the page (impression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// Feed (impression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<Page>,
    /// Watch time in ms (leave, video_play); signed on the wire so a negative value is
    /// reported as such instead of as a type error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_ms: Option<i64>,
    /// Whether a video play completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<bool>,
    /// Gift value in coins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    /// Product (cart_click, purchase, product_on_sale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<u64>,
    /// Order amount in cents (purchase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    /// Content category (live_start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<u32>,
    /// Product category, level 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c1: Option<u32>,
    /// Product category, level 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c2: Option<u32>,
    /// Product category, level 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c3: Option<u32>,
}

/// Why a record is not a valid event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The `type` field is absent.
    #[error("missing field `type`")]
    MissingType,
    /// A field the type requires is absent.
    #[error("`{event_type}` event is missing required field `{field}`")]
    MissingField {
        /// Event type.
        event_type: EventType,
        /// Field name.
        field: &'static str,
    },
    /// A field that the type does not have is set.
    #[error("`{event_type}` event must not carry field `{field}`")]
    UnexpectedField {
        /// Event type.
        event_type: EventType,
        /// Field name.
        field: &'static str,
    },
    /// A duration, value or amount is negative.
    #[error("field `{field}` must not be negative, got {value}")]
    Negative {
        /// Field name.
        field: &'static str,
        /// Offending value.
        value: i64,
    },
    /// An impression names both or neither of `live` and `video`.
    #[error("impression must carry exactly one of `live` and `video`")]
    ImpressionItem,
}

// Field presence bits, to check "required" and "foreign" fields with one mask each.
const F_USER: u32 = 1;
const F_LIVE: u32 = 1 << 1;
const F_VIDEO: u32 = 1 << 2;
const F_AUTHOR: u32 = 1 << 3;
const F_REQUEST: u32 = 1 << 4;
const F_POSITION: u32 = 1 << 5;
const F_PAGE: u32 = 1 << 6;
const F_WATCH: u32 = 1 << 7;
const F_COMPLETED: u32 = 1 << 8;
const F_VALUE: u32 = 1 << 9;
const F_PRODUCT: u32 = 1 << 10;
const F_AMOUNT: u32 = 1 << 11;
const F_CATEGORY: u32 = 1 << 12;
const F_C1: u32 = 1 << 13;
const F_C2: u32 = 1 << 14;
const F_C3: u32 = 1 << 15;
const FIELD_NAMES: [&str; 16] = [
    "user",
    "live",
    "video",
    "author",
    "request_id",
    "position",
    "page",
    "watch_ms",
    "completed",
    "value",
    "product",
    "amount",
    "category",
    "c1",
    "c2",
    "c3",
];

impl EventType {
    /// (required fields, optional fields) as presence masks.
    const fn field_masks(self) -> (u32, u32) {
        const UL: u32 = F_USER | F_LIVE;
        const UV: u32 = F_USER | F_VIDEO;
        match self {
            // `live` xor `video` is checked separately.
            EventType::Impression => (F_USER | F_REQUEST | F_POSITION | F_PAGE, F_LIVE | F_VIDEO),
            EventType::Enter => (UL, F_REQUEST),
            EventType::Leave => (UL | F_WATCH, 0),
            EventType::Like | EventType::Comment | EventType::Follow | EventType::Share => (UL, 0),
            EventType::Gift => (UL | F_VALUE, 0),
            EventType::CartClick => (UL | F_PRODUCT, 0),
            EventType::Purchase => (UL | F_PRODUCT | F_AMOUNT, 0),
            EventType::VideoPlay => (UV | F_WATCH | F_COMPLETED, 0),
            EventType::VideoLike | EventType::VideoComment => (UV, 0),
            EventType::LiveStart => (F_LIVE | F_AUTHOR | F_CATEGORY, 0),
            EventType::LiveEnd => (F_LIVE, 0),
            EventType::ProductOnSale => (F_LIVE | F_PRODUCT | F_C1 | F_C2 | F_C3, 0),
        }
    }
}

impl EventRecord {
    fn presence(&self) -> u32 {
        let bits = [
            self.user.is_some(),
            self.live.is_some(),
            self.video.is_some(),
            self.author.is_some(),
            self.request_id.is_some(),
            self.position.is_some(),
            self.page.is_some(),
            self.watch_ms.is_some(),
            self.completed.is_some(),
            self.value.is_some(),
            self.product.is_some(),
            self.amount.is_some(),
            self.category.is_some(),
            self.c1.is_some(),
            self.c2.is_some(),
            self.c3.is_some(),
        ];
        bits.iter()
            .enumerate()
            .fold(0, |acc, (i, &b)| acc | (u32::from(b) << i))
    }
}

fn non_negative(field: &'static str, value: Option<i64>) -> Result<u64, ValidationError> {
    let v = value.unwrap_or(0);
    u64::try_from(v).map_err(|_| ValidationError::Negative { field, value: v })
}

impl TryFrom<EventRecord> for Event {
    type Error = ValidationError;

    fn try_from(r: EventRecord) -> Result<Self, ValidationError> {
        let event_type = r.event_type.ok_or(ValidationError::MissingType)?;
        if r.ts < 0 {
            return Err(ValidationError::Negative {
                field: "ts",
                value: r.ts,
            });
        }
        let (required, optional) = event_type.field_masks();
        let present = r.presence();
        if let Some(i) = first_bit(required & !present) {
            return Err(ValidationError::MissingField {
                event_type,
                field: FIELD_NAMES[i],
            });
        }
        if let Some(i) = first_bit(present & !(required | optional)) {
            return Err(ValidationError::UnexpectedField {
                event_type,
                field: FIELD_NAMES[i],
            });
        }
        // Required fields are present from here on; `unwrap_or_default` never fires.
        let user = UserId(r.user.unwrap_or_default());
        let live = LiveId(r.live.unwrap_or_default());
        let video = VideoId(r.video.unwrap_or_default());
        let product = ProductId(r.product.unwrap_or_default());
        let kind = match event_type {
            EventType::Impression => {
                let item = match (r.live, r.video) {
                    (Some(l), None) => ItemRef::Live(LiveId(l)),
                    (None, Some(v)) => ItemRef::Video(VideoId(v)),
                    _ => return Err(ValidationError::ImpressionItem),
                };
                EventKind::Impression {
                    user,
                    item,
                    request_id: RequestId(r.request_id.unwrap_or_default()),
                    position: r.position.unwrap_or_default(),
                    page: r.page.unwrap_or(Page::Featured),
                }
            }
            EventType::Enter => EventKind::Enter {
                user,
                live,
                request_id: r.request_id.map(RequestId),
            },
            EventType::Leave => EventKind::Leave {
                user,
                live,
                watch_ms: DurationMs(non_negative("watch_ms", r.watch_ms)?),
            },
            EventType::Like => EventKind::Like { user, live },
            EventType::Comment => EventKind::Comment { user, live },
            EventType::Follow => EventKind::Follow { user, live },
            EventType::Share => EventKind::Share { user, live },
            EventType::Gift => EventKind::Gift {
                user,
                live,
                value: non_negative("value", r.value)?,
            },
            EventType::CartClick => EventKind::CartClick {
                user,
                live,
                product,
            },
            EventType::Purchase => EventKind::Purchase {
                user,
                live,
                product,
                amount: non_negative("amount", r.amount)?,
            },
            EventType::VideoPlay => EventKind::VideoPlay {
                user,
                video,
                watch_ms: DurationMs(non_negative("watch_ms", r.watch_ms)?),
                completed: r.completed.unwrap_or_default(),
            },
            EventType::VideoLike => EventKind::VideoLike { user, video },
            EventType::VideoComment => EventKind::VideoComment { user, video },
            EventType::LiveStart => EventKind::LiveStart {
                live,
                author: AuthorId(r.author.unwrap_or_default()),
                category: CategoryId(r.category.unwrap_or_default()),
            },
            EventType::LiveEnd => EventKind::LiveEnd { live },
            EventType::ProductOnSale => EventKind::ProductOnSale {
                live,
                product,
                c1: CategoryId(r.c1.unwrap_or_default()),
                c2: CategoryId(r.c2.unwrap_or_default()),
                c3: CategoryId(r.c3.unwrap_or_default()),
            },
        };
        Ok(Event {
            event_id: EventId(r.event_id),
            ts: EventTime(r.ts),
            kind,
        })
    }
}

fn first_bit(mask: u32) -> Option<usize> {
    (mask != 0).then(|| mask.trailing_zeros() as usize)
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl From<Event> for EventRecord {
    fn from(e: Event) -> Self {
        EventRecord::from(&e)
    }
}

impl From<&Event> for EventRecord {
    fn from(e: &Event) -> Self {
        let mut r = EventRecord {
            event_id: e.event_id.0,
            ts: e.ts.0,
            event_type: Some(e.event_type()),
            ..EventRecord::default()
        };
        match e.kind {
            EventKind::Impression {
                user,
                item,
                request_id,
                position,
                page,
            } => {
                r.user = Some(user.0);
                match item {
                    ItemRef::Live(l) => r.live = Some(l.0),
                    ItemRef::Video(v) => r.video = Some(v.0),
                }
                r.request_id = Some(request_id.0);
                r.position = Some(position);
                r.page = Some(page);
            }
            EventKind::Enter {
                user,
                live,
                request_id,
            } => {
                r.user = Some(user.0);
                r.live = Some(live.0);
                r.request_id = request_id.map(|q| q.0);
            }
            EventKind::Leave {
                user,
                live,
                watch_ms,
            } => {
                r.user = Some(user.0);
                r.live = Some(live.0);
                r.watch_ms = Some(clamp_i64(watch_ms.0));
            }
            EventKind::Like { user, live }
            | EventKind::Comment { user, live }
            | EventKind::Follow { user, live }
            | EventKind::Share { user, live } => {
                r.user = Some(user.0);
                r.live = Some(live.0);
            }
            EventKind::Gift { user, live, value } => {
                r.user = Some(user.0);
                r.live = Some(live.0);
                r.value = Some(clamp_i64(value));
            }
            EventKind::CartClick {
                user,
                live,
                product,
            } => {
                r.user = Some(user.0);
                r.live = Some(live.0);
                r.product = Some(product.0);
            }
            EventKind::Purchase {
                user,
                live,
                product,
                amount,
            } => {
                r.user = Some(user.0);
                r.live = Some(live.0);
                r.product = Some(product.0);
                r.amount = Some(clamp_i64(amount));
            }
            EventKind::VideoPlay {
                user,
                video,
                watch_ms,
                completed,
            } => {
                r.user = Some(user.0);
                r.video = Some(video.0);
                r.watch_ms = Some(clamp_i64(watch_ms.0));
                r.completed = Some(completed);
            }
            EventKind::VideoLike { user, video } | EventKind::VideoComment { user, video } => {
                r.user = Some(user.0);
                r.video = Some(video.0);
            }
            EventKind::LiveStart {
                live,
                author,
                category,
            } => {
                r.live = Some(live.0);
                r.author = Some(author.0);
                r.category = Some(category.0);
            }
            EventKind::LiveEnd { live } => r.live = Some(live.0),
            EventKind::ProductOnSale {
                live,
                product,
                c1,
                c2,
                c3,
            } => {
                r.live = Some(live.0);
                r.product = Some(product.0);
                r.c1 = Some(c1.0);
                r.c2 = Some(c2.0);
                r.c3 = Some(c3.0);
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Event, String> {
        serde_json::from_str::<Event>(s).map_err(|e| e.to_string())
    }

    #[test]
    fn event_json_is_flat_and_tagged() {
        let e = Event {
            event_id: EventId(7),
            ts: EventTime(1_000),
            kind: EventKind::Impression {
                user: UserId(1),
                item: ItemRef::Live(LiveId(9)),
                request_id: RequestId(3),
                position: 2,
                page: Page::Featured,
            },
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"event_id":7,"ts":1000,"type":"impression","user":1,"live":9,"request_id":3,"position":2,"page":"featured"}"#
        );
        assert_eq!(parse(&json).unwrap(), e);
    }

    #[test]
    fn validation_names_missing_and_foreign_fields() {
        let err = parse(r#"{"event_id":1,"ts":5,"type":"leave","user":1,"live":2}"#).unwrap_err();
        assert!(err.contains("missing required field `watch_ms`"), "{err}");
        let err = parse(r#"{"event_id":1,"ts":5,"type":"like","user":1,"live":2,"video":3}"#)
            .unwrap_err();
        assert!(err.contains("must not carry field `video`"), "{err}");
        let err = parse(r#"{"event_id":1,"ts":5,"type":"leave","user":1,"live":2,"watch_ms":-4}"#)
            .unwrap_err();
        assert!(
            err.contains("`watch_ms` must not be negative, got -4"),
            "{err}"
        );
        let err = parse(r#"{"event_id":1,"ts":5,"type":"teleport","user":1}"#).unwrap_err();
        assert!(err.contains("unknown variant `teleport`"), "{err}");
        let err = parse(
            r#"{"event_id":1,"ts":5,"type":"impression","user":1,"request_id":1,"position":0,"page":"featured"}"#,
        )
        .unwrap_err();
        assert!(err.contains("exactly one of `live` and `video`"), "{err}");
    }

    #[test]
    fn organic_enter_has_no_request_id() {
        let e = parse(r#"{"event_id":1,"ts":5,"type":"enter","user":1,"live":2}"#).unwrap();
        assert_eq!(
            e.kind,
            EventKind::Enter {
                user: UserId(1),
                live: LiveId(2),
                request_id: None
            }
        );
    }

    #[test]
    fn event_type_names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
        }
    }
}

//! Entity tables written next to the events (SPEC §2): users, authors, lives, videos,
//! products. Each row type is flat so it maps to one JSON object or one Parquet row.

use crate::id::{AuthorId, CategoryId, LiveId, ProductId, UserId, VideoId};
use crate::time::{DurationMs, EventTime};
use serde::{Deserialize, Serialize};

/// Version of the entity table formats.
pub const TABLE_FORMAT_VERSION: u32 = 1;

/// A viewer's profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Id.
    pub user: UserId,
    /// 0 unknown, 1 female, 2 male.
    pub gender: u8,
    /// Age bucket, 0..=6 (under 18, 18-24, 25-30, 31-40, 41-50, 51-60, over 60).
    pub age_bucket: u8,
    /// City tier, 1 (largest) ..= 5.
    pub city_tier: u8,
    /// Activity level, 0 (rare) ..= 3 (daily heavy user).
    pub activity_level: u8,
    /// Payer level, 0 (never pays) ..= 3 (big spender).
    pub payer_level: u8,
}

/// The kind of content a streamer makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorType {
    /// Singing and dancing.
    Talent,
    /// Game streams.
    Game,
    /// Live commerce.
    Ecommerce,
    /// Talk and chat.
    Chat,
    /// Outdoor: fishing, travel, farming.
    Outdoor,
}

impl AuthorType {
    /// Every type.
    pub const ALL: [AuthorType; 5] = [
        AuthorType::Talent,
        AuthorType::Game,
        AuthorType::Ecommerce,
        AuthorType::Chat,
        AuthorType::Outdoor,
    ];

    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthorType::Talent => "talent",
            AuthorType::Game => "game",
            AuthorType::Ecommerce => "ecommerce",
            AuthorType::Chat => "chat",
            AuthorType::Outdoor => "outdoor",
        }
    }
}

/// A streamer / short-video author.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Author {
    /// Id.
    pub author: AuthorId,
    /// Content type.
    pub author_type: AuthorType,
    /// Follower-count bucket, 0 (under 1k) ..= 5 (over 10M).
    pub fans_bucket: u8,
    /// The content category the author mostly streams in.
    pub home_category: CategoryId,
}

/// One broadcast.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    /// Id.
    pub live: LiveId,
    /// Streamer.
    pub author: AuthorId,
    /// First instant on air.
    pub start: EventTime,
    /// Instant the broadcast ends.
    pub end: EventTime,
    /// Content category.
    pub category: CategoryId,
}

/// A short video.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Video {
    /// Id.
    pub video: VideoId,
    /// Author.
    pub author: AuthorId,
    /// Length of the video.
    pub duration_ms: DurationMs,
    /// Content category.
    pub category: CategoryId,
}

/// A product with its category path c1 ⊃ c2 ⊃ c3.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Id.
    pub product: ProductId,
    /// Level-1 category (vertical).
    pub c1: CategoryId,
    /// Level-2 category.
    pub c2: CategoryId,
    /// Level-3 (leaf) category.
    pub c3: CategoryId,
}

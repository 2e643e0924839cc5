//! What the interaction history holds and what the ranker reads from it: one interaction
//! ([`HistoryRecord`], with its validation and fixed-width encoding), the GSU sequence
//! kinds of Cross ([`GsuKind`], the one place a kind is named) and the padded sequences
//! assembled from the records ([`Sequence`], [`GsuSequences`]).
//!
//! Plain data, no I/O: the store (`liverank-history`) writes and searches records, the
//! model (`liverank-model`) turns sequences into inputs, and neither depends on the other.
//!
//! Records are `Copy` (categories are an inline list of at most [`MAX_CATEGORIES`]), so a
//! read of 10,000 records is one allocation, and both durable backends store the same
//! 56-byte little-endian encoding ([`HistoryRecord::encode`]), which decodes without
//! parsing. The layout is documented in `docs/formats.md` and pinned by a test.

use crate::{AuthorId, CategoryId, DurationMs, EventTime, ItemRef, LiveId, VideoId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// Version of the record encoding ([`HistoryRecord::encode`]).
pub const RECORD_FORMAT_VERSION: u8 = 1;

/// Bytes of one encoded record.
pub const RECORD_BYTES: usize = 56;

/// Most categories a record carries (a path coarse → fine, like a product's c1 ⊃ c2 ⊃ c3;
/// the simulator's lives and videos have one).
pub const MAX_CATEGORIES: usize = 3;

/// Largest `|ts|` and `|available_at|` a record may have (2^53 ms).
pub const MAX_TIME_MS: i64 = 1 << 53;

/// Which side of the app an interaction happened on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    /// A short-video play.
    Video,
    /// A session in a live room.
    Live,
}

impl Domain {
    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Domain::Video => "video",
            Domain::Live => "live",
        }
    }

    const fn code(self) -> u8 {
        match self {
            Domain::Video => 0,
            Domain::Live => 1,
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Item vectors for soft search, e.g. the model's embedding table. Lives and videos have
/// separate id spaces, hence the domain.
pub trait ItemVectors {
    /// The item's vector, if it has one. Every vector must have the query's length.
    fn vector(&self, domain: Domain, item: u64) -> Option<&[f32]>;
}

impl<T: ItemVectors + ?Sized> ItemVectors for &T {
    fn vector(&self, domain: Domain, item: u64) -> Option<&[f32]> {
        (**self).vector(domain, item)
    }
}

impl ItemVectors for HashMap<(Domain, u64), Vec<f32>> {
    fn vector(&self, domain: Domain, item: u64) -> Option<&[f32]> {
        self.get(&(domain, item)).map(Vec::as_slice)
    }
}

impl std::str::FromStr for Domain {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "video" => Ok(Domain::Video),
            "live" => Ok(Domain::Live),
            other => Err(format!("unknown domain `{other}`, expected video or live")),
        }
    }
}

/// The categories of an item, at most [`MAX_CATEGORIES`], stored inline. On the wire
/// (JSON) a plain array.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Categories {
    len: u8,
    ids: [CategoryId; MAX_CATEGORIES],
}

impl Categories {
    /// One category.
    pub const fn one(category: CategoryId) -> Self {
        Self {
            len: 1,
            ids: [category, CategoryId(0), CategoryId(0)],
        }
    }

    /// Up to [`MAX_CATEGORIES`]; `None` if there are more.
    pub fn new(categories: &[CategoryId]) -> Option<Self> {
        if categories.len() > MAX_CATEGORIES {
            return None;
        }
        let mut ids = [CategoryId(0); MAX_CATEGORIES];
        ids[..categories.len()].copy_from_slice(categories);
        Some(Self {
            len: categories.len() as u8,
            ids,
        })
    }

    /// The categories, coarse to fine.
    pub fn as_slice(&self) -> &[CategoryId] {
        &self.ids[..usize::from(self.len).min(MAX_CATEGORIES)]
    }

    /// The first (coarsest) category, the one GSU sequences carry.
    pub fn primary(&self) -> Option<CategoryId> {
        self.as_slice().first().copied()
    }

    /// Whether `category` is one of them.
    pub fn contains(&self, category: CategoryId) -> bool {
        self.as_slice().contains(&category)
    }

    /// No category at all (such a record fails validation).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Categories {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl Serialize for Categories {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.as_slice())
    }
}

impl<'de> Deserialize<'de> for Categories {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let list = Vec::<CategoryId>::deserialize(deserializer)?;
        Categories::new(&list).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{} categories, at most {MAX_CATEGORIES} allowed",
                list.len()
            ))
        })
    }
}

/// One interaction: a short-video play or a live session.
///
/// `available_at` is the instant the record became complete and visible: a video play at
/// its end (the `VideoPlay` report), a live session at its `Leave` (or the room's
/// `LiveEnd`). Point-in-time reads return only records with `available_at < before_ts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// Start of the interaction (play start, `Enter`).
    pub ts: EventTime,
    /// When the record became visible (≥ `ts`).
    pub available_at: EventTime,
    /// Video or live.
    pub domain: Domain,
    /// The video id or live id (never 0: 0 pads GSU sequences).
    pub item: u64,
    /// The item's author.
    pub author: AuthorId,
    /// The item's categories (at least one).
    pub categories: Categories,
    /// Time spent.
    pub watch_ms: DurationMs,
    /// Watched long: a live session of at least the long-view threshold, a completed video
    /// play or one of at least the threshold.
    pub long_view: bool,
    /// Liked during the interaction.
    pub like: bool,
    /// Commented during the interaction.
    pub comment: bool,
    /// Sent a gift (lives only).
    pub gift: bool,
}

/// Why a record cannot be stored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRecord {
    /// `available_at` before `ts`: a record cannot be visible before it started.
    #[error("available_at {available_at} is before ts {ts}")]
    AvailableBeforeStart {
        /// Start.
        ts: i64,
        /// Visibility.
        available_at: i64,
    },
    /// A time outside ±2^53 ms (about ±285,000 years): Redis scores are doubles, exact
    /// only within that range.
    #[error("{field} {value} is outside ±2^53 ms")]
    TimeOutOfRange {
        /// `ts` or `available_at`.
        field: &'static str,
        /// The value.
        value: i64,
    },
    /// Item id 0 is the padding id of GSU sequences.
    #[error("item id 0 is reserved for padding")]
    ZeroItem,
    /// A record needs at least one category.
    #[error("no category")]
    NoCategory,
    /// Gifts exist only in live rooms.
    #[error("a video record cannot carry a gift")]
    VideoGift,
    /// A live session's time spent cannot exceed its span: its record is written when the
    /// session ends.
    #[error("watch_ms {watch_ms} exceeds the session span {span} (available_at - ts)")]
    WatchLongerThanSession {
        /// Time spent.
        watch_ms: u64,
        /// `available_at - ts`.
        span: u64,
    },
}

impl HistoryRecord {
    /// The item as an [`ItemRef`].
    pub const fn item_ref(&self) -> ItemRef {
        match self.domain {
            Domain::Video => ItemRef::Video(VideoId(self.item)),
            Domain::Live => ItemRef::Live(LiveId(self.item)),
        }
    }

    /// Whether the record is visible at `before_ts` (strictly available before it).
    pub fn visible_before(&self, before_ts: EventTime) -> bool {
        self.available_at < before_ts
    }

    /// Checks the invariants every backend relies on.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        for (field, value) in [("ts", self.ts.0), ("available_at", self.available_at.0)] {
            if value.unsigned_abs() > MAX_TIME_MS as u64 {
                return Err(InvalidRecord::TimeOutOfRange { field, value });
            }
        }
        if self.available_at < self.ts {
            return Err(InvalidRecord::AvailableBeforeStart {
                ts: self.ts.0,
                available_at: self.available_at.0,
            });
        }
        if self.item == 0 {
            return Err(InvalidRecord::ZeroItem);
        }
        if self.categories.is_empty() {
            return Err(InvalidRecord::NoCategory);
        }
        if self.domain == Domain::Video && self.gift {
            return Err(InvalidRecord::VideoGift);
        }
        let span = self.available_at.since(self.ts).0;
        if self.domain == Domain::Live && self.watch_ms.0 > span {
            return Err(InvalidRecord::WatchLongerThanSession {
                watch_ms: self.watch_ms.0,
                span,
            });
        }
        Ok(())
    }

    /// The fixed-width encoding (little-endian):
    ///
    /// ```text
    /// 0  ts i64 | 8 available_at i64 | 16 item u64 | 24 author u64 | 32 watch_ms u64
    /// 40 categories 3 × u32 | 52 category count u8 | 53 domain u8 (0 video, 1 live)
    /// 54 flags u8 (bit 0 long_view, 1 like, 2 comment, 3 gift) | 55 reserved, 0
    /// ```
    pub fn encode(&self, out: &mut [u8; RECORD_BYTES]) {
        out[0..8].copy_from_slice(&self.ts.0.to_le_bytes());
        out[8..16].copy_from_slice(&self.available_at.0.to_le_bytes());
        out[16..24].copy_from_slice(&self.item.to_le_bytes());
        out[24..32].copy_from_slice(&self.author.0.to_le_bytes());
        out[32..40].copy_from_slice(&self.watch_ms.0.to_le_bytes());
        for (i, c) in self.categories.ids.iter().enumerate() {
            out[40 + 4 * i..44 + 4 * i].copy_from_slice(&c.0.to_le_bytes());
        }
        out[52] = self.categories.len;
        out[53] = self.domain.code();
        out[54] = u8::from(self.long_view)
            | u8::from(self.like) << 1
            | u8::from(self.comment) << 2
            | u8::from(self.gift) << 3;
        out[55] = 0;
    }

    /// Decodes [`HistoryRecord::encode`]'s output; `None` if the bytes cannot be a record.
    pub fn decode(bytes: &[u8; RECORD_BYTES]) -> Option<Self> {
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let u32_at = |at: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&bytes[at..at + 4]);
            u32::from_le_bytes(b)
        };
        let domain = match bytes[53] {
            0 => Domain::Video,
            1 => Domain::Live,
            _ => return None,
        };
        let len = bytes[52];
        if usize::from(len) > MAX_CATEGORIES || bytes[54] > 0b1111 || bytes[55] != 0 {
            return None;
        }
        Some(Self {
            ts: EventTime(u64_at(0) as i64),
            available_at: EventTime(u64_at(8) as i64),
            domain,
            item: u64_at(16),
            author: AuthorId(u64_at(24)),
            categories: Categories {
                len,
                ids: [
                    CategoryId(u32_at(40)),
                    CategoryId(u32_at(44)),
                    CategoryId(u32_at(48)),
                ],
            },
            watch_ms: DurationMs(u64_at(32)),
            long_view: bytes[54] & 1 != 0,
            like: bytes[54] & 2 != 0,
            comment: bytes[54] & 4 != 0,
            gift: bytes[54] & 8 != 0,
        })
    }
}

/// A Cross GSU sequence (Moment&Cross §2.4): the one enum naming them. The assembler in
/// `liverank-history` builds each kind, the ranker's configuration selects kinds, and
/// [`GsuSequences`] holds one [`Sequence`] per kind, indexed by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GsuKind {
    /// V_short: the latest short videos.
    Short,
    /// V_long: short videos soft-searched with the query (the target's embedding).
    Long,
    /// V_aidhard: the latest short videos of the target live's author (hard search).
    AidHard,
    /// V_livelong: lives soft-searched with the query.
    LiveLong,
    /// V_mixed: the latest long-viewed lives and videos.
    Mixed,
}

impl GsuKind {
    /// Number of kinds.
    pub const COUNT: usize = 5;

    /// Every kind, in the paper's order (the order of [`GsuSequences::iter`]).
    pub const ALL: [GsuKind; Self::COUNT] = [
        GsuKind::Short,
        GsuKind::Long,
        GsuKind::AidHard,
        GsuKind::LiveLong,
        GsuKind::Mixed,
    ];

    /// The name used in configuration and reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Short => "short",
            Self::Long => "long",
            Self::AidHard => "aid_hard",
            Self::LiveLong => "live_long",
            Self::Mixed => "mixed",
        }
    }

    /// Whether the sequence comes from a soft search (needs item vectors).
    pub const fn is_soft(self) -> bool {
        matches!(self, Self::Long | Self::LiveLong)
    }

    /// Position in [`GsuKind::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for GsuKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fixed-length sequence, padded and masked: position `i < filled` holds the i-th
/// record of the search's order (newest first, or best first for soft search); padding
/// positions hold id 0 and mask `false`. Plain numbers, ready for a tensor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sequence {
    /// Item ids (video or live, by the sequence's domain; 0 on padding).
    pub items: Vec<u64>,
    /// Author ids (0 on padding).
    pub authors: Vec<u64>,
    /// Primary category of each item (0 on padding: the mask tells).
    pub categories: Vec<u32>,
    /// Domain of each item, 0 video, 1 live (0 on padding); V_mixed holds both.
    pub domains: Vec<u8>,
    /// Watch time of each interaction in ms (0 on padding).
    pub watch_ms: Vec<u64>,
    /// Start time of each interaction, ms since the epoch (0 on padding).
    pub ts: Vec<i64>,
    /// Whether the position holds a record.
    pub mask: Vec<bool>,
}

impl Sequence {
    /// `len` positions, all padding.
    pub fn padding(len: usize) -> Self {
        Self {
            items: vec![0; len],
            authors: vec![0; len],
            categories: vec![0; len],
            domains: vec![0; len],
            watch_ms: vec![0; len],
            ts: vec![0; len],
            mask: vec![false; len],
        }
    }

    /// `len` positions holding the first `len` of `records` in order, then padding.
    pub fn fill<'a>(len: usize, records: impl Iterator<Item = &'a HistoryRecord>) -> Self {
        let mut s = Self::padding(len);
        for (i, r) in records.take(len).enumerate() {
            s.items[i] = r.item;
            s.authors[i] = r.author.0;
            s.categories[i] = r.categories.primary().map_or(0, |c| c.0);
            s.domains[i] = u8::from(r.domain == Domain::Live);
            s.watch_ms[i] = r.watch_ms.0;
            s.ts[i] = r.ts.0;
            s.mask[i] = true;
        }
        s
    }

    /// Positions holding a record.
    pub fn filled(&self) -> usize {
        self.mask.iter().filter(|&&m| m).count()
    }

    /// Sequence length L.
    pub fn len(&self) -> usize {
        self.mask.len()
    }

    /// Whether L is 0.
    pub fn is_empty(&self) -> bool {
        self.mask.is_empty()
    }
}

/// The sequences of every [`GsuKind`] for one (user, target live, instant), indexed by
/// kind: `gsu[GsuKind::Short]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GsuSequences {
    by_kind: [Sequence; GsuKind::COUNT],
}

impl GsuSequences {
    /// Every kind `len` positions of padding.
    pub fn padding(len: usize) -> Self {
        Self {
            by_kind: std::array::from_fn(|_| Sequence::padding(len)),
        }
    }

    /// One sequence per kind, built in [`GsuKind::ALL`] order.
    pub fn try_from_fn<E>(
        mut build: impl FnMut(GsuKind) -> Result<Sequence, E>,
    ) -> Result<Self, E> {
        let mut out = Self::default();
        for kind in GsuKind::ALL {
            out.by_kind[kind.index()] = build(kind)?;
        }
        Ok(out)
    }

    /// The kinds with their sequences, in [`GsuKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (GsuKind, &Sequence)> {
        GsuKind::ALL.into_iter().zip(self.by_kind.iter())
    }
}

impl std::ops::Index<GsuKind> for GsuSequences {
    type Output = Sequence;
    fn index(&self, kind: GsuKind) -> &Sequence {
        &self.by_kind[kind.index()]
    }
}

impl std::ops::IndexMut<GsuKind> for GsuSequences {
    fn index_mut(&mut self, kind: GsuKind) -> &mut Sequence {
        &mut self.by_kind[kind.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> HistoryRecord {
        HistoryRecord {
            ts: EventTime(1_767_225_600_000),
            available_at: EventTime(1_767_225_690_000),
            domain: Domain::Live,
            item: 77,
            author: AuthorId(5),
            categories: Categories::new(&[CategoryId(3), CategoryId(300)]).unwrap(),
            watch_ms: DurationMs(90_000),
            long_view: true,
            like: false,
            comment: true,
            gift: true,
        }
    }

    #[test]
    fn record_encoding_round_trips_and_is_pinned() {
        let r = sample();
        let mut bytes = [0u8; RECORD_BYTES];
        r.encode(&mut bytes);
        assert_eq!(HistoryRecord::decode(&bytes), Some(r));
        // Pinned layout (format version 1): changing it needs a new version.
        assert_eq!(&bytes[16..24], &77u64.to_le_bytes());
        assert_eq!(&bytes[40..48], &[3, 0, 0, 0, 44, 1, 0, 0]);
        assert_eq!(bytes[52..56], [2, 1, 0b1101, 0]);
        bytes[53] = 9;
        assert_eq!(HistoryRecord::decode(&bytes), None);
    }

    #[test]
    fn record_json_has_category_array() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(json["categories"], serde_json::json!([3, 300]));
        assert_eq!(json["domain"], "live");
        let back: HistoryRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, sample());
        let too_many = r#"[1,2,3,4]"#;
        assert!(serde_json::from_str::<Categories>(too_many).is_err());
    }

    #[test]
    fn record_validation_names_the_reason() {
        assert_eq!(sample().validate(), Ok(()));
        let mut r = sample();
        r.available_at = EventTime(r.ts.0 - 1);
        assert!(r.validate().unwrap_err().to_string().contains("before ts"));
        let mut r = sample();
        r.item = 0;
        assert_eq!(r.validate(), Err(InvalidRecord::ZeroItem));
        let mut r = sample();
        r.categories = Categories::default();
        assert_eq!(r.validate(), Err(InvalidRecord::NoCategory));
        let mut r = sample();
        r.domain = Domain::Video;
        assert_eq!(r.validate(), Err(InvalidRecord::VideoGift));
        let mut r = sample();
        r.watch_ms = DurationMs(90_001);
        assert!(matches!(
            r.validate(),
            Err(InvalidRecord::WatchLongerThanSession { .. })
        ));
    }

    #[test]
    fn gsu_kinds_index_their_own_sequence() {
        assert_eq!(GsuKind::ALL.len(), GsuKind::COUNT);
        for (i, k) in GsuKind::ALL.into_iter().enumerate() {
            assert_eq!(k.index(), i);
            let name = serde_json::to_value(k).unwrap();
            assert_eq!(name, k.as_str());
        }
        let mut gsu = GsuSequences::padding(2);
        gsu[GsuKind::AidHard].items[0] = 9;
        let seen: Vec<_> = gsu.iter().map(|(k, s)| (k, s.items[0])).collect();
        assert_eq!(seen[2], (GsuKind::AidHard, 9));
        assert!(seen.iter().filter(|(_, x)| *x == 9).count() == 1);
    }
}

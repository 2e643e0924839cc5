//! Identifier newtypes. Every id on the wire is a `u64` (categories are `u32`); the
//! newtypes keep a user id from being passed where a live id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl $name {
            /// The raw value as it appears on the wire.
            pub const fn get(self) -> $inner {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$inner> for $name {
            fn from(value: $inner) -> Self {
                Self(value)
            }
        }
    };
}

id_type!(
    /// A platform user (viewer).
    UserId(u64)
);
id_type!(
    /// One broadcast of a streamer: start to end.
    LiveId(u64)
);
id_type!(
    /// A short video.
    VideoId(u64)
);
id_type!(
    /// A streamer / short-video author.
    AuthorId(u64)
);
id_type!(
    /// A product sold in e-commerce rooms.
    ProductId(u64)
);
id_type!(
    /// One feed request; the exposures of a page share it.
    RequestId(u64)
);
id_type!(
    /// Unique per event; a repeated id marks a duplicate delivery.
    EventId(u64)
);
id_type!(
    /// A category: the content category of a live or video, or a product category level.
    CategoryId(u32)
);

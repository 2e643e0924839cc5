//! Shared test fixtures for liverank's suites: proptest strategies that generate valid
//! values of the vocabulary types, covering every variant.

use liverank_types::{
    AuthorId, CategoryId, DurationMs, Event, EventId, EventKind, EventTime, ItemRef, LiveId, Page,
    ProductId, RequestId, UserId, VideoId,
};
use proptest::prelude::*;

/// Any page.
pub fn arb_page() -> impl Strategy<Value = Page> {
    prop_oneof![
        Just(Page::Featured),
        Just(Page::Follow),
        Just(Page::Nearby),
        Just(Page::Search)
    ]
}

/// Any valid event payload, every one of the 16 types reachable.
pub fn arb_event_kind() -> impl Strategy<Value = EventKind> {
    let user = any::<u64>().prop_map(UserId);
    let live = any::<u64>().prop_map(LiveId);
    let video = any::<u64>().prop_map(VideoId);
    // Durations, values and amounts are i64 on the wire: stay in its range.
    let dur = (0..i64::MAX as u64).prop_map(DurationMs);
    let amount = 0..i64::MAX as u64;
    let cat = any::<u32>().prop_map(CategoryId);
    let product = any::<u64>().prop_map(ProductId);
    let item = prop_oneof![
        live.clone().prop_map(ItemRef::Live),
        video.clone().prop_map(ItemRef::Video)
    ];
    prop_oneof![
        (user.clone(), item, any::<u64>(), any::<u32>(), arb_page()).prop_map(
            |(user, item, r, position, page)| EventKind::Impression {
                user,
                item,
                request_id: RequestId(r),
                position,
                page
            }
        ),
        (
            user.clone(),
            live.clone(),
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(user, live, r)| EventKind::Enter {
                user,
                live,
                request_id: r.map(RequestId)
            }),
        (user.clone(), live.clone(), dur.clone()).prop_map(|(user, live, watch_ms)| {
            EventKind::Leave {
                user,
                live,
                watch_ms,
            }
        }),
        (user.clone(), live.clone()).prop_map(|(user, live)| EventKind::Like { user, live }),
        (user.clone(), live.clone()).prop_map(|(user, live)| EventKind::Comment { user, live }),
        (user.clone(), live.clone()).prop_map(|(user, live)| EventKind::Follow { user, live }),
        (user.clone(), live.clone()).prop_map(|(user, live)| EventKind::Share { user, live }),
        (user.clone(), live.clone(), amount.clone())
            .prop_map(|(user, live, value)| EventKind::Gift { user, live, value }),
        (user.clone(), live.clone(), product.clone()).prop_map(|(user, live, product)| {
            EventKind::CartClick {
                user,
                live,
                product,
            }
        }),
        (user.clone(), live.clone(), product.clone(), amount).prop_map(
            |(user, live, product, amount)| EventKind::Purchase {
                user,
                live,
                product,
                amount
            }
        ),
        (user.clone(), video.clone(), dur, any::<bool>()).prop_map(
            |(user, video, watch_ms, completed)| EventKind::VideoPlay {
                user,
                video,
                watch_ms,
                completed
            }
        ),
        (user.clone(), video.clone())
            .prop_map(|(user, video)| EventKind::VideoLike { user, video }),
        (user, video).prop_map(|(user, video)| EventKind::VideoComment { user, video }),
        (live.clone(), any::<u64>(), cat.clone()).prop_map(|(live, a, category)| {
            EventKind::LiveStart {
                live,
                author: AuthorId(a),
                category,
            }
        }),
        live.clone().prop_map(|live| EventKind::LiveEnd { live }),
        (live, product, cat.clone(), cat.clone(), cat).prop_map(|(live, product, c1, c2, c3)| {
            EventKind::ProductOnSale {
                live,
                product,
                c1,
                c2,
                c3,
            }
        }),
    ]
}

/// Any valid event.
pub fn arb_event() -> impl Strategy<Value = Event> {
    (any::<u64>(), 0..i64::MAX, arb_event_kind()).prop_map(|(id, ts, kind)| Event {
        event_id: EventId(id),
        ts: EventTime(ts),
        kind,
    })
}

/// Any event payload at any instant of `i64`, the extremes and the edges of the valid
/// range (`[0, 2200-01-01)` in ms) favoured: for engines that must never overflow.
pub fn arb_event_any_time() -> impl Strategy<Value = Event> {
    const END: i64 = 7_258_118_400_000;
    let ts = prop_oneof![
        any::<i64>(),
        (i64::MAX - 20_000_000)..=i64::MAX,
        i64::MIN..(i64::MIN + 1_000),
        -1_000i64..20_000_000,
        (END - 20_000_000)..(END + 1_000),
    ];
    (0u64..40, ts, arb_event_kind()).prop_map(|(id, ts, kind)| Event {
        event_id: EventId(id),
        ts: EventTime(ts),
        kind,
    })
}

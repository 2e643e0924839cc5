//! On-disk format fixtures: files written by format version 1 must read forever, as the
//! same events. One event of each of the 16 types, in both formats.
//! Regenerate (only when adding a new version's fixture): `LIVERANK_BLESS=1 cargo test`.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use liverank_ingest::{EventFormat, EventWriter, open_events};
use liverank_types::*;

fn one_of_each() -> Vec<Event> {
    let t0 = 1_767_225_600_000;
    let (u, l, v) = (UserId(42), LiveId(7), VideoId(9001));
    let kinds = vec![
        EventKind::LiveStart {
            live: l,
            author: AuthorId(3),
            category: CategoryId(15),
        },
        EventKind::ProductOnSale {
            live: l,
            product: ProductId(12_345),
            c1: CategoryId(3),
            c2: CategoryId(61),
            c3: CategoryId(307),
        },
        EventKind::Impression {
            user: u,
            item: ItemRef::Video(v),
            request_id: RequestId(700),
            position: 0,
            page: Page::Featured,
        },
        EventKind::VideoLike { user: u, video: v },
        EventKind::VideoComment { user: u, video: v },
        EventKind::VideoPlay {
            user: u,
            video: v,
            watch_ms: DurationMs(14_200),
            completed: true,
        },
        EventKind::Impression {
            user: u,
            item: ItemRef::Live(l),
            request_id: RequestId(700),
            position: 1,
            page: Page::Featured,
        },
        EventKind::Enter {
            user: u,
            live: l,
            request_id: Some(RequestId(700)),
        },
        EventKind::Like { user: u, live: l },
        EventKind::Comment { user: u, live: l },
        EventKind::Follow { user: u, live: l },
        EventKind::Share { user: u, live: l },
        EventKind::Gift {
            user: u,
            live: l,
            value: 520,
        },
        EventKind::CartClick {
            user: u,
            live: l,
            product: ProductId(12_345),
        },
        EventKind::Purchase {
            user: u,
            live: l,
            product: ProductId(12_345),
            amount: 9_900,
        },
        EventKind::Leave {
            user: u,
            live: l,
            watch_ms: DurationMs(1_260_000),
        },
        EventKind::Enter {
            user: UserId(43),
            live: l,
            request_id: None,
        },
        EventKind::LiveEnd { live: l },
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| Event {
            event_id: EventId(i as u64 + 1),
            ts: EventTime(t0 + 1_000 * i as i64),
            kind,
        })
        .collect()
}

#[test]
fn version_1_fixtures_read_as_the_same_events() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/formats");
    let expected = one_of_each();
    for format in [EventFormat::Jsonl, EventFormat::Parquet] {
        let path = std::path::Path::new(dir).join(format!("events_v1.{}", format.extension()));
        if std::env::var_os("LIVERANK_BLESS").is_some() && !path.exists() {
            let mut w = EventWriter::create(&path, format).unwrap();
            for e in &expected {
                w.write(e).unwrap();
            }
            w.finish().unwrap();
        }
        let got: Vec<Event> = open_events(&path).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(got, expected, "{}", path.display());
    }
}

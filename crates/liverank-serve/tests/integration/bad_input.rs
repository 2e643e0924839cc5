//! Property tests of bad input: arbitrary bytes and arbitrary JSON as bodies, paths and
//! queries never get a 5xx and never panic, and rejected events leave the server's state
//! unchanged (the state moves by exactly the accepted events).
//!
//! Cases: `LIVERANK_PROPTEST_CASES` (default 2,000 per property; the opt-in long run
//! sets 100000 or more).
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use crate::common;

use axum::body::Body;
use axum::http::{Method, Request, header};
use common::*;
use http_body_util::BodyExt;
use liverank_serve::*;
use liverank_types::{EventTime, UserId};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

fn cases() -> u32 {
    std::env::var("LIVERANK_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn send(
    rt: &tokio::runtime::Runtime,
    state: &AppState,
    method: Method,
    uri: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let Ok(req) = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::from(body))
    else {
        // Not a valid URI at all: no request can be made of it.
        return (400, Value::Null);
    };
    rt.block_on(async {
        let response = app(state.clone()).oneshot(req).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    })
}

/// Arbitrary JSON values, small.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|v| json!(v)),
        any::<u64>().prop_map(|v| json!(v)),
        any::<f64>().prop_map(|v| json!(v)),
        "[a-z_]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("user_id".to_string()),
                    Just("count".to_string()),
                    Just("ts".to_string()),
                    Just("events".to_string()),
                    Just("type".to_string()),
                    Just("event_id".to_string()),
                    Just("live".to_string()),
                    Just("user".to_string()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Event-shaped objects: the right field names with arbitrary values — mostly invalid,
/// some valid.
fn arb_event() -> impl Strategy<Value = Value> {
    let types = prop_oneof![
        Just("impression"),
        Just("enter"),
        Just("leave"),
        Just("like"),
        Just("follow"),
        Just("gift"),
        Just("live_start"),
        Just("live_end"),
        Just("video_play"),
        Just("product_on_sale"),
        Just("bogus"),
    ];
    (
        types,
        any::<u16>(),
        0i64..2_000_000,
        prop::option::of(0u64..20),
        prop::option::of(95u64..110),
        prop::option::of(-5i64..100_000),
        prop::option::of(arb_json()),
    )
        .prop_map(|(t, id, dt, user, live, watch, extra)| {
            let mut m = serde_json::Map::new();
            m.insert("type".into(), json!(t));
            m.insert("event_id".into(), json!(1_000_000 + u64::from(id)));
            m.insert("ts".into(), json!(T0 + dt));
            if let Some(u) = user {
                m.insert("user".into(), json!(u));
            }
            if let Some(l) = live {
                m.insert("live".into(), json!(l));
            }
            if let Some(w) = watch {
                m.insert("watch_ms".into(), json!(w));
            }
            if let Some(x) = extra {
                m.insert("category".into(), x);
            }
            Value::Object(m)
        })
}

/// Everything a client can observe of the state that events change.
fn fingerprint(f: &Fixture) -> (u64, Option<EventTime>, usize) {
    let history: usize = (0..25u64)
        .chain(1_000..1_010)
        .map(|u| f.world.history().count(UserId(u)).unwrap())
        .sum();
    (f.world.registry_events(), f.world.event_time(), history)
}

#[test]
fn arbitrary_bodies_paths_and_queries_never_get_a_5xx() {
    let rt = runtime();
    let f = fixture(6, true);
    let mut config = ProptestConfig::with_cases(cases());
    config.failure_persistence = None;
    proptest!(config, |(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        value in arb_json(),
        path in "[a-zA-Z0-9/%?=&._-]{0,30}",
        which in 0usize..6,
    )| {
        let (uri, body) = match which {
            0 => ("/v1/recommend".to_string(), bytes),
            1 => ("/v1/recommend".to_string(), value.to_string().into_bytes()),
            2 => ("/v1/events".to_string(), bytes),
            3 => ("/v1/events".to_string(), json!({"events": [value]}).to_string().into_bytes()),
            4 => (format!("/v1/lives/{path}"), Vec::new()),
            _ => (format!("/v1/users/{path}"), Vec::new()),
        };
        let method = if which < 4 { Method::POST } else { Method::GET };
        let (status, body) = send(&rt, &f.state, method, &uri, body);
        prop_assert!(status < 500, "{uri}: {status} {body}");
        if status >= 400 {
            prop_assert!(body["error"].is_string(), "{uri}: {status} {body}");
        }
    });
}

#[test]
fn rejected_events_leave_the_state_unchanged() {
    let rt = runtime();
    let f = fixture(6, true);
    let mut config = ProptestConfig::with_cases(cases());
    config.failure_persistence = None;
    proptest!(config, |(batch in prop::collection::vec(arb_event(), 0..8))| {
        let before = fingerprint(&f);
        let body = json!({"events": batch}).to_string().into_bytes();
        let (status, response) = send(&rt, &f.state, Method::POST, "/v1/events", body);
        prop_assert_eq!(status, 200, "{}", response);
        let accepted = response["accepted"].as_u64().unwrap();
        let rejected = response["rejected"].as_u64().unwrap();
        let duplicates = response["duplicates"].as_u64().unwrap();
        prop_assert_eq!(accepted + rejected + duplicates, batch.len() as u64);
        let after = fingerprint(&f);
        // The registry applied exactly the accepted events; with none accepted, nothing
        // observable moved.
        prop_assert_eq!(after.0 - before.0, accepted);
        if accepted == 0 {
            prop_assert_eq!(after, before);
        }
    });
}

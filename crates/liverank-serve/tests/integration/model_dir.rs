//! Serving a published model directory (`liverank serve --model DIR`, and the embedded
//! trainer's `<out>/model`): the feed starts on an empty directory, applies versions in
//! order, refuses a corrupted file while the previous version keeps serving, and under
//! clients requesting continuously the served version never goes backwards.
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use crate::common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;
use http_body_util::BodyExt;
use liverank_model::publish::{PublishKind, file_name};
use liverank_model::{ModelPublisher, PublishConfig, PublisherState};
use liverank_serve::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tower::ServiceExt;

/// Every tick past the grid writes a version: dense weights each second of event time.
fn publish_config() -> PublishConfig {
    PublishConfig {
        sparse_ms: 1_000,
        dense_ms: 1_000,
        snapshot_ms: 1_000_000,
        fsync: false,
    }
}

#[test]
fn the_feed_follows_the_directory_and_refuses_a_corrupted_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut feed = ModelDirFeed::new(dir.path());
    // Nothing published yet: not an error, nothing to serve.
    assert!(feed.poll(None).unwrap().is_none());

    let mut t = trainer(3);
    let mut publisher =
        ModelPublisher::new(dir.path(), publish_config(), PublisherState::default()).unwrap();
    publisher.tick(&mut t, 0, 0).unwrap();
    let first = feed.poll(None).unwrap().expect("version 1");
    assert_eq!(first.version, 1);
    assert!(feed.poll(Some(1)).unwrap().is_none(), "nothing new");

    // Two more versions land between polls: both applied, the newest served.
    publisher.tick(&mut t, 1_000, 1_000).unwrap();
    publisher.tick(&mut t, 2_000, 2_000).unwrap();
    let third = feed.poll(Some(1)).unwrap().expect("version 3");
    assert_eq!(third.version, 3);
    assert_eq!(third.trained_until.map(|t| t.0), Some(2_000));

    // Version 4 damaged on disk: refused, counted, version 3 stays.
    publisher.tick(&mut t, 3_000, 3_000).unwrap();
    let path = dir.path().join(file_name(4, PublishKind::Dense));
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5A;
    std::fs::write(&path, bytes).unwrap();
    assert!(feed.poll(Some(3)).unwrap().is_none());
    assert_eq!(feed.counters().unwrap().refused_corrupt, 1);
    // Polling again does not count the same file twice.
    assert!(feed.poll(Some(3)).unwrap().is_none());
    assert_eq!(feed.counters().unwrap().refused_corrupt, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn versions_published_into_a_directory_reach_requests_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(20, false);
    let stop = Arc::new(AtomicBool::new(false));
    let poller = spawn_model_poller(
        f.slot.clone(),
        Box::new(ModelDirFeed::new(dir.path())),
        std::time::Duration::from_millis(5),
        stop.clone(),
    )
    .unwrap();

    let path = dir.path().to_path_buf();
    let publisher = tokio::task::spawn_blocking(move || {
        let mut t = trainer(4);
        let mut p =
            ModelPublisher::new(&path, publish_config(), PublisherState::default()).unwrap();
        for s in 0..40i64 {
            p.tick(&mut t, s * 1_000, s * 1_000).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(3));
        }
        p.version()
    });
    // Ready once the first version is in.
    while f.slot.current().is_none() {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let done = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..4u64 {
        let (state, done) = (f.state.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            while !done.load(Ordering::Relaxed) || versions.len() < 3 {
                let req = Request::builder()
                    .method(Method::POST)
                    .uri("/v1/recommend")
                    .body(Body::from(format!(r#"{{"user_id": {c}, "count": 3}}"#)))
                    .unwrap();
                let response = app(state.clone()).oneshot(req).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                let bytes = response.into_body().collect().await.unwrap().to_bytes();
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                versions.push(v["model_version"].as_u64().unwrap());
            }
            versions
        }));
    }
    let last = publisher.await.unwrap();
    assert_eq!(last, 40);
    // The poller catches up with the last version.
    for _ in 0..500 {
        if f.slot.current().unwrap().version == last {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(f.slot.current().unwrap().version, last);
    done.store(true, Ordering::Relaxed);
    for c in clients {
        let versions = c.await.unwrap();
        for w in versions.windows(2) {
            assert!(w[0] <= w[1], "version went backwards: {versions:?}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();
}

//! Hot swap: 100 model versions published while 8 clients request continuously — every
//! request succeeds, each client's model version never goes backwards; a corrupted
//! version is refused and the previous one keeps serving.
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use crate::common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;
use http_body_util::BodyExt;
use liverank_model::Trainer;
use liverank_serve::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tower::ServiceExt;

/// A feed over checkpoint bytes (the real, checksummed loader): yields the queued
/// versions in order; a damaged checkpoint is an error.
struct CheckpointFeed {
    queue: std::collections::VecDeque<(u64, Vec<u8>)>,
}

impl ModelFeed for CheckpointFeed {
    fn poll(&mut self, _after: Option<u64>) -> Result<Option<ServedModel>> {
        let Some((version, bytes)) = self.queue.pop_front() else {
            return Ok(None);
        };
        let trainer = Trainer::from_bytes(&bytes)
            .map_err(|e| ServeError::ModelRefused(format!("version {version}: {e}")))?;
        let scorer = trainer.scorer()?;
        Ok(Some(ServedModel::new(version, Arc::new(scorer), None)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_versions_under_eight_clients_never_go_backwards_and_corruption_is_refused() {
    let f = fixture(20, true);
    // Four distinct models, reused round-robin (a version is a version: what matters is
    // that every response names one and they never go backwards).
    let checkpoints: Vec<Vec<u8>> = (0..4)
        .map(|s| trainer(10 + s).to_bytes().unwrap())
        .collect();
    let mut corrupt = checkpoints[0].clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xFF;

    let done = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..8u64 {
        let (state, done) = (f.state.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            while !done.load(Ordering::Relaxed) || versions.len() < 5 {
                let body = format!(r#"{{"user_id": {}, "count": 5}}"#, c % 3);
                let req = Request::builder()
                    .method(Method::POST)
                    .uri("/v1/recommend")
                    .body(Body::from(body))
                    .unwrap();
                let response = app(state.clone()).oneshot(req).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                let bytes = response.into_body().collect().await.unwrap().to_bytes();
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(v["lives"].as_array().unwrap().len(), 5);
                versions.push(v["model_version"].as_u64().unwrap());
            }
            versions
        }));
    }

    let slot = f.slot.clone();
    let publisher = tokio::task::spawn_blocking(move || {
        let mut refused = 0;
        for version in 2..=101u64 {
            let bytes = if version == 50 {
                corrupt.clone()
            } else {
                checkpoints[version as usize % 4].clone()
            };
            let mut feed = CheckpointFeed {
                queue: [(version, bytes)].into(),
            };
            match slot.poll_from(&mut feed) {
                Ok(Some(v)) => assert_eq!(v, version),
                Ok(None) => unreachable!("one version queued"),
                Err(e) => {
                    assert_eq!(version, 50, "{e}");
                    // The previous version keeps serving.
                    assert_eq!(slot.current().unwrap().version, 49);
                    refused += 1;
                }
            }
            // A stale version is refused too.
            let stale = ServedModel::new(version - 1, Arc::new(scorer(1)), None);
            assert!(slot.publish(stale).is_err());
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        refused
    });
    let refused = publisher.await.unwrap();
    done.store(true, Ordering::Relaxed);
    assert_eq!(refused, 1);
    assert_eq!(f.slot.current().unwrap().version, 101);
    let mut seen = std::collections::BTreeSet::new();
    for c in clients {
        let versions = c.await.unwrap();
        for w in versions.windows(2) {
            assert!(w[0] <= w[1], "version went backwards: {versions:?}");
        }
        assert!(!versions.contains(&50));
        seen.extend(versions);
    }
    // The clients saw the swaps happen (more than the first and the last version).
    assert!(seen.len() > 2, "{seen:?}");
}

//! The serving API of liverank (SPEC §6): ranked live rooms over HTTP in milliseconds,
//! with the model kept fresh.
//!
//! Main types:
//! * [`api::app`] / [`AppState`]: the axum router (recommend, events, lives, user history,
//!   health, readiness, Prometheus metrics, the OpenAPI document) over a [`World`] (rooms
//!   on air, follows, history), an [`EventIngest`] (where posted events go) and a
//!   [`ModelSource`] (the hot-swapped [`ModelSlot`]).
//! * [`Recommender`]: one request end to end — on-air candidates at the request's event
//!   time, labelled [`recall`] sources merged under quotas, one history read, the feature
//!   rows of the training code path, one ranker batch, score fusion
//!   Π(1 + ŷ_task)^α_task, top K — and the [`ExposureLog`] of what was scored.
//! * [`LocalWorld`]: the in-process world (live registry, history, follows).
//! * [`loadgen`]: the loopback load generator of `liverank bench serve`.
//!
//! ```no_run
//! use liverank_serve::*;
//! use std::sync::Arc;
//! # fn world() -> Arc<LocalWorld> { unimplemented!() }
//! let config = Arc::new(ServeConfig::default());
//! let world = world();
//! let models = Arc::new(ModelSlot::new());
//! let log = Arc::new(ExposureLog::new(config.exposure_log));
//! let state = AppState::new(config.clone(), world.clone(), world, models,
//!     Recommender::new(config, log), 1);
//! let router = api::app(state); // axum::serve(listener, router)
//! # drop(router);
//! ```
//!
//! Key decisions: serving never depends on training — models arrive through the
//! [`ModelFeed`] trait (the binary wires the online trainer's publisher in), and the
//! tensor library stays behind the [`Ranker`] trait. The request time is event time (the
//! newest event ingested, or the request's `ts`), never the wall clock, so a replayed or
//! simulated world serves consistently. Candidate features are computed by the sample
//! engine's formulas and logged per served exposure, so training sees what was scored.

pub mod api;
pub mod config;
pub mod error;
pub mod exposure_log;
pub mod foresight;
pub mod graph;
pub mod loadgen;
pub mod metrics;
pub mod model;
pub mod rank;
pub mod recall;
pub mod world;

pub use api::{AppState, app};
pub use config::{GraphConfig, RankingMode, RecallQuotas, ServeConfig};
pub use error::{Result, ServeError};
pub use exposure_log::{ExposureLog, ServedExposure};
pub use foresight::{Foresight, LiveForecast, NextC3};
pub use model::{ModelDirFeed, ModelFeed, ModelSlot, ModelSource, Ranker, ServedModel};
pub use rank::{RankRequest, Ranking, Recommender, StageTimes, fuse};
pub use world::{EventIngest, IngestOutcome, LocalWorld, OnAirRoom, RoomDetail, World};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Serves `state` on `listener` until `shutdown` resolves; then stops accepting, lets the
/// requests in flight finish, and checkpoints the ingest target.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let ingest = Arc::clone(state.ingest());
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    tokio::task::spawn_blocking(move || ingest.checkpoint())
        .await
        .map_err(|e| ServeError::Internal(format!("checkpoint worker: {e}")))?
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Polls `feed` every `interval` on a thread of its own and installs each new version in
/// `slot`, until `stop` is set. A version that fails to load is refused (counted, printed)
/// and the current one keeps serving.
pub fn spawn_model_poller(
    slot: Arc<ModelSlot>,
    mut feed: Box<dyn ModelFeed>,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("model-poller".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = slot.poll_from(feed.as_mut()) {
                    eprintln!("serve: model refused: {e}");
                }
                std::thread::sleep(interval);
            }
        })
}

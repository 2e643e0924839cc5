//! The HTTP API (SPEC §6): request and response types (their OpenAPI schemas derive from
//! the same Rust types), handlers, the bearer-token check, the body and count limits, the
//! per-route metrics and the panic layer.
//!
//! Bad input is answered, never fatal: every body is read as bytes under the size limit
//! and parsed here, so a syntax error is a 400 and a well-formed body with an unknown
//! field, a wrong type or an out-of-range value a 422, each with a JSON reason. The
//! events endpoint validates item by item: a bad item gets its own reason in the
//! response and never keeps the good items of its batch from being ingested.

use crate::ServeConfig;
use crate::config::RankingMode;
use crate::error::{ErrorBody, Result, ServeError};
use crate::foresight::{Foresight, LiveForecast};
use crate::model::ModelSource;
use crate::rank::{RankRequest, Ranking, Recommender};
use crate::recall::RecallSource;
use crate::world::{EventIngest, IngestOutcome, World};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use liverank_history::Domain;
use liverank_types::{Event, EventRecord, EventTime, LiveId, RequestId, STAT_SERIES, UserId};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<ServeConfig>,
    world: Arc<dyn World>,
    ingest: Arc<dyn EventIngest>,
    models: Arc<dyn ModelSource>,
    recommender: Recommender,
    metrics: Option<PrometheusHandle>,
    next_request: AtomicU64,
    foresight: std::sync::OnceLock<Arc<Foresight>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// A state over a world, an ingest target and a model source. Request ids start at
    /// `first_request_id` (the binary uses the start time in µs, so ids do not repeat
    /// across restarts).
    pub fn new(
        config: Arc<ServeConfig>,
        world: Arc<dyn World>,
        ingest: Arc<dyn EventIngest>,
        models: Arc<dyn ModelSource>,
        recommender: Recommender,
        first_request_id: u64,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                world,
                ingest,
                models,
                recommender,
                metrics: crate::metrics::handle(),
                next_request: AtomicU64::new(first_request_id.max(1)),
                foresight: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Gives the server LiveForesighter's models: `GET /v1/lives/{id}` then carries the
    /// room's forecast. Once per state: `false` (and no change) if it already has them.
    pub fn set_foresight(&self, foresight: Arc<Foresight>) -> bool {
        self.inner.foresight.set(foresight).is_ok()
    }

    /// The settings.
    pub fn config(&self) -> &ServeConfig {
        &self.inner.config
    }

    /// The recommender (its exposure log).
    pub fn recommender(&self) -> &Recommender {
        &self.inner.recommender
    }

    /// The ingest target (graceful shutdown checkpoints it).
    pub fn ingest(&self) -> &Arc<dyn EventIngest> {
        &self.inner.ingest
    }

    /// Ranks one request directly (the benchmark's in-process split).
    pub fn rank(&self, user: UserId, count: usize, ts: Option<EventTime>) -> Result<Ranking> {
        if self.inner.config.ranking == RankingMode::Popularity {
            let request_id = RequestId(self.inner.next_request.fetch_add(1, Ordering::Relaxed));
            let request = RankRequest {
                user,
                count,
                ts,
                request_id,
            };
            return Ok(self
                .inner
                .recommender
                .rank_popular(self.inner.world.as_ref(), &request));
        }
        let model = self
            .inner
            .models
            .current()
            .ok_or_else(|| ServeError::NotReady("no model loaded yet".into()))?;
        let request_id = RequestId(self.inner.next_request.fetch_add(1, Ordering::Relaxed));
        let request = RankRequest {
            user,
            count,
            ts,
            request_id,
        };
        self.inner
            .recommender
            .rank(self.inner.world.as_ref(), &model, &request)
    }
}

// ---------------------------------------------------------------- wire types

/// `POST /v1/recommend`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendBody {
    /// The viewer.
    pub user_id: u64,
    /// Rooms wanted, 1..=`serve.max_count`.
    pub count: usize,
    /// Request time, ms since the epoch; default: the newest event time ingested.
    #[serde(default)]
    pub ts: Option<i64>,
}

/// One ranked room.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct RankedLive {
    /// The broadcast.
    pub live_id: u64,
    /// Its streamer.
    pub author_id: u64,
    /// Fused score Π (1 + ŷ_task)^α_task.
    pub score: f64,
    /// Probability per task.
    pub predictions: BTreeMap<String, f32>,
    /// The recall sources that proposed the room.
    pub sources: Vec<String>,
}

/// The answer of `POST /v1/recommend`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct RecommendResponse {
    /// The id the impressions of these rooms must carry.
    pub request_id: u64,
    /// The model version that scored every room.
    pub model_version: u64,
    /// The request time used (ms).
    pub ts: i64,
    /// Nothing was known about the user: popular rooms on air.
    pub cold_start: bool,
    /// Rooms on air at `ts`.
    pub on_air: usize,
    /// Candidates ranked.
    pub candidates: usize,
    /// Best first.
    pub lives: Vec<RankedLive>,
}

/// `POST /v1/events`: a batch of events (the JSON event schema of `docs/`).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsBody {
    /// Events, each a flat event object; validated one by one.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
}

/// What happened to one event of a batch.
#[derive(Debug, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
pub struct EventResult {
    /// Position in the batch.
    pub index: usize,
    /// `accepted`, `duplicate` or `rejected`.
    pub status: String,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer of `POST /v1/events`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct EventsResponse {
    /// Applied.
    pub accepted: usize,
    /// Seen before (idempotent: nothing changed).
    pub duplicates: usize,
    /// Invalid; see `results`.
    pub rejected: usize,
    /// One per event, in batch order.
    pub results: Vec<EventResult>,
}

/// `GET /v1/lives/{id}`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct LiveResponse {
    /// The broadcast.
    pub live_id: u64,
    /// On air at `ts`.
    pub on_air: bool,
    /// The time asked about (ms).
    pub ts: i64,
    /// Streamer.
    pub author_id: Option<u64>,
    /// Category.
    pub category: Option<u32>,
    /// Broadcast start (ms).
    pub start: Option<i64>,
    /// `LiveEnd` time (ms).
    pub ended_at: Option<i64>,
    /// Viewers now.
    pub online: u32,
    /// Names of the statistic series, the columns of `stats`.
    pub series: Vec<String>,
    /// The closed 30 s buckets before `ts`, oldest first, one row per bucket.
    pub stats: Vec<Vec<u32>>,
    /// Products on sale `[product, c1, c2, c3]`, oldest first.
    pub products: Vec<Vec<u64>>,
    /// LiveForesighter's forecast of the next buckets and the next product's c3, when the
    /// server was started with forecasters (`liverank serve --forecast DIR`) and the room
    /// has a closed bucket.
    pub forecast: Option<LiveForecast>,
}

/// Query of `GET /v1/lives/{id}` and `GET /v1/users/{id}/history`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AtQuery {
    /// The time asked about (ms); default the newest event time.
    pub ts: Option<i64>,
    /// Records at most (history only; default and cap `serve.max_history`).
    pub limit: Option<usize>,
}

/// One interaction of a user.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct HistoryItem {
    /// Start (ms).
    pub ts: i64,
    /// Visible from (ms).
    pub available_at: i64,
    /// `video` or `live`.
    pub domain: String,
    /// Video or live id.
    pub item: u64,
    /// Author.
    pub author_id: u64,
    /// Primary category.
    pub category: Option<u32>,
    /// Time spent (ms).
    pub watch_ms: u64,
    /// A long view.
    pub long_view: bool,
}

/// `GET /v1/users/{id}/history`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct HistoryResponse {
    /// The user.
    pub user_id: u64,
    /// The instant the history was read at (ms).
    pub ts: i64,
    /// Records held in total (visible or not).
    pub total: usize,
    /// The newest visible records, newest first.
    pub records: Vec<HistoryItem>,
}

/// `/healthz` and `/readyz`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct StatusResponse {
    /// `ok`, `ready` or `not_ready`.
    pub status: String,
    /// The model version serving, once loaded.
    pub model_version: Option<u64>,
    /// The newest event time ingested (ms).
    pub event_time: Option<i64>,
}

// ---------------------------------------------------------------- extraction

/// Parses a body: syntax → 400, shape (unknown field, wrong type) → 422.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ServeError::Unprocessable(e.to_string()),
            Category::Syntax | Category::Eof | Category::Io => {
                ServeError::BadRequest(e.to_string())
            }
        }
    })
}

/// The body bytes, or the reason they could not be read (over the limit → 413).
fn body_bytes(
    body: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
    limit: usize,
) -> Result<Bytes> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ServeError::PayloadTooLarge { limit }
        } else {
            ServeError::BadRequest(e.body_text())
        }
    })
}

fn path_id(
    path: std::result::Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<u64> {
    let Path(raw) = path.map_err(|e| ServeError::BadRequest(e.body_text()))?;
    raw.parse::<u64>()
        .map_err(|_| ServeError::BadRequest(format!("`{raw}` is not an id (an unsigned integer)")))
}

fn query(
    q: std::result::Result<Query<AtQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<AtQuery> {
    q.map(|Query(q)| q)
        .map_err(|e| ServeError::Unprocessable(e.body_text()))
}

/// Constant-time bearer check; the token never reaches a log.
fn authorize(config: &ServeConfig, headers: &HeaderMap) -> Result<()> {
    use subtle::ConstantTimeEq;
    let expected = config.token.as_bytes();
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or(b"");
    if expected.is_empty() || given.is_empty() || !bool::from(expected.ct_eq(given)) {
        metrics::counter!("liverank_serve_unauthorized_total").increment(1);
        return Err(ServeError::Unauthorized);
    }
    Ok(())
}

/// Runs CPU-bound work off the async workers; a panic in it resumes on the handler's
/// task, where the panic layer answers 500 and counts it.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(ServeError::Internal(format!("worker: {e}"))),
    }
}

// ---------------------------------------------------------------- handlers

#[utoipa::path(post, path = "/v1/recommend", tag = "ranking",
    request_body = RecommendBody,
    responses(
        (status = 200, description = "Ranked rooms on air", body = RecommendResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "Unknown field, wrong type or count out of range", body = ErrorBody),
        (status = 503, description = "No model loaded yet", body = ErrorBody),
    ))]
async fn recommend(
    State(state): State<AppState>,
    body: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<RecommendResponse>> {
    let inner = &state.inner;
    let bytes = body_bytes(body, inner.config.max_body_bytes)?;
    let body: RecommendBody = parse_json(&bytes)?;
    if body.count == 0 || body.count > inner.config.max_count {
        return Err(ServeError::Unprocessable(format!(
            "count must be in 1..={}, got {}",
            inner.config.max_count, body.count
        )));
    }
    let ts = body.ts.map(EventTime);
    let user = UserId(body.user_id);
    let count = body.count;
    let state2 = state.clone();
    let ranking = blocking(move || state2.rank(user, count, ts)).await?;
    metrics::histogram!("liverank_serve_candidates").record(ranking.candidates as f64);
    let t = ranking.times;
    for (stage, d) in [
        ("recall", t.recall),
        ("history", t.history),
        ("features", t.features),
        ("ranker", t.ranker),
        ("fusion", t.fusion),
    ] {
        metrics::histogram!("liverank_serve_stage_seconds", "stage" => stage)
            .record(d.as_secs_f64());
    }
    if ranking.cold_start {
        metrics::counter!("liverank_serve_cold_start_total").increment(1);
    }
    Ok(Json(RecommendResponse {
        request_id: ranking.request_id.0,
        model_version: ranking.model_version,
        ts: ranking.ts.0,
        cold_start: ranking.cold_start,
        on_air: ranking.on_air,
        candidates: ranking.candidates,
        lives: ranking
            .rooms
            .into_iter()
            .map(|r| RankedLive {
                live_id: r.live.0,
                author_id: r.author.0,
                score: r.score,
                predictions: r
                    .predictions
                    .into_iter()
                    .map(|(t, p)| (t.as_str().to_string(), p))
                    .collect(),
                sources: r
                    .sources
                    .into_iter()
                    .map(|s: RecallSource| s.as_str().to_string())
                    .collect(),
            })
            .collect(),
    }))
}

/// The field names of the flat event record; anything else in an item is rejected.
pub const EVENT_FIELDS: [&str; 19] = [
    "event_id",
    "ts",
    "type",
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

/// Validates one item: an object, known fields only, right types, a valid event.
fn validate_event(item: serde_json::Value) -> std::result::Result<Event, String> {
    let serde_json::Value::Object(map) = item else {
        return Err("an event must be a JSON object".into());
    };
    if let Some(k) = map.keys().find(|k| !EVENT_FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown field `{k}`"));
    }
    let record: EventRecord =
        serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| e.to_string())?;
    Event::try_from(record).map_err(|e| e.to_string())
}

#[utoipa::path(post, path = "/v1/events", tag = "ingest",
    request_body = EventsBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Per-event results; bad items never drop good ones", body = EventsResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "Not an events batch, or more than serve.max_events", body = ErrorBody),
    ))]
async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<EventsResponse>> {
    let inner = &state.inner;
    authorize(&inner.config, &headers)?;
    let bytes = body_bytes(body, inner.config.max_body_bytes)?;
    let body: EventsBody = parse_json(&bytes)?;
    if body.events.len() > inner.config.max_events {
        return Err(ServeError::Unprocessable(format!(
            "{} events in one batch, at most {}",
            body.events.len(),
            inner.config.max_events
        )));
    }
    let mut results: Vec<EventResult> = Vec::with_capacity(body.events.len());
    let mut valid: Vec<(usize, Event)> = Vec::new();
    for (index, item) in body.events.into_iter().enumerate() {
        match validate_event(item) {
            Ok(e) => valid.push((index, e)),
            Err(reason) => results.push(EventResult {
                index,
                status: "rejected".into(),
                reason: Some(reason),
            }),
        }
    }
    let rejected = results.len();
    metrics::counter!("liverank_serve_events_rejected_total").increment(rejected as u64);
    let ingest = Arc::clone(&inner.ingest);
    let (indices, events): (Vec<usize>, Vec<Event>) = valid.into_iter().unzip();
    let outcomes = blocking(move || ingest.ingest(&events)).await?;
    let (mut accepted, mut duplicates) = (0, 0);
    for (index, outcome) in indices.into_iter().zip(outcomes) {
        let status = match outcome {
            IngestOutcome::Accepted => {
                accepted += 1;
                "accepted"
            }
            IngestOutcome::Duplicate => {
                duplicates += 1;
                "duplicate"
            }
        };
        results.push(EventResult {
            index,
            status: status.into(),
            reason: None,
        });
    }
    results.sort_by_key(|r| r.index);
    metrics::counter!("liverank_serve_events_accepted_total").increment(accepted as u64);
    Ok(Json(EventsResponse {
        accepted,
        duplicates,
        rejected,
        results,
    }))
}

#[utoipa::path(get, path = "/v1/lives/{id}", tag = "rooms",
    params(("id" = u64, Path, description = "Live id"), AtQuery),
    responses(
        (status = 200, description = "The room's state and statistic sequence", body = LiveResponse),
        (status = 400, description = "Not an id", body = ErrorBody),
        (status = 404, description = "Unknown room", body = ErrorBody),
        (status = 422, description = "Bad query", body = ErrorBody),
    ))]
async fn live(
    State(state): State<AppState>,
    path: std::result::Result<Path<String>, axum::extract::rejection::PathRejection>,
    q: std::result::Result<Query<AtQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<LiveResponse>> {
    let id = path_id(path)?;
    let q = query(q)?;
    let world = &state.inner.world;
    let ts =
        q.ts.map(EventTime)
            .or_else(|| world.event_time())
            .unwrap_or(EventTime(0));
    let room = world
        .room(LiveId(id), ts)
        .ok_or_else(|| ServeError::NotFound(format!("live {id}")))?;
    Ok(Json(LiveResponse {
        live_id: id,
        on_air: room.on_air,
        ts: ts.0,
        author_id: room.author.map(|a| a.0),
        category: room.category.map(|c| c.0),
        start: room.start.map(|t| t.0),
        ended_at: room.ended_at.map(|t| t.0),
        online: room.online,
        series: STAT_SERIES.iter().map(|s| s.to_string()).collect(),
        stats: room
            .stats
            .chunks(STAT_SERIES.len())
            .map(<[u32]>::to_vec)
            .collect(),
        forecast: match state.inner.foresight.get() {
            Some(f) => f.forecast(&room.stats, &room.products)?,
            None => None,
        },
        products: room.products.iter().map(|p| p.to_vec()).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/users/{id}/history", tag = "users",
    params(("id" = u64, Path, description = "User id"), AtQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's newest visible interactions", body = HistoryResponse),
        (status = 400, description = "Not an id", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 422, description = "Bad query", body = ErrorBody),
    ))]
async fn history(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, axum::extract::rejection::PathRejection>,
    q: std::result::Result<Query<AtQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<HistoryResponse>> {
    let inner = &state.inner;
    authorize(&inner.config, &headers)?;
    let id = path_id(path)?;
    let q = query(q)?;
    let limit = q
        .limit
        .unwrap_or(inner.config.max_history)
        .min(inner.config.max_history);
    let world = Arc::clone(&inner.world);
    let ts =
        q.ts.map(EventTime)
            .or_else(|| world.event_time())
            .map_or(EventTime(i64::MAX), |t| EventTime(t.0.saturating_add(1)));
    let user = UserId(id);
    let (total, records) = blocking(move || {
        let h = world.history();
        Ok((h.count(user)?, h.latest(user, None, ts, limit)?))
    })
    .await?;
    Ok(Json(HistoryResponse {
        user_id: id,
        ts: ts.0,
        total,
        records: records
            .into_iter()
            .map(|r| HistoryItem {
                ts: r.ts.0,
                available_at: r.available_at.0,
                domain: match r.domain {
                    Domain::Video => "video",
                    Domain::Live => "live",
                }
                .into(),
                item: r.item,
                author_id: r.author.0,
                category: r.categories.primary().map(|c| c.0),
                watch_ms: r.watch_ms.0,
                long_view: r.long_view,
            })
            .collect(),
    }))
}

fn status(state: &AppState, status: &str) -> StatusResponse {
    StatusResponse {
        status: status.into(),
        model_version: state.inner.models.current().map(|m| m.version),
        event_time: state.inner.world.event_time().map(|t| t.0),
    }
}

#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "The process is up", body = StatusResponse)))]
async fn healthz(State(state): State<AppState>) -> Json<StatusResponse> {
    Json(status(&state, "ok"))
}

#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "A model is loaded", body = StatusResponse),
        (status = 503, description = "No model yet", body = StatusResponse),
    ))]
async fn readyz(State(state): State<AppState>) -> Response {
    if state.inner.models.current().is_some()
        || state.inner.config.ranking == RankingMode::Popularity
    {
        (StatusCode::OK, Json(status(&state, "ready"))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(status(&state, "not_ready")),
        )
            .into_response()
    }
}

#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics_text(State(state): State<AppState>) -> Response {
    let inner = &state.inner;
    let model = inner.models.current();
    let event_time = inner.world.event_time();
    if let Some(m) = &model {
        metrics::gauge!("liverank_serve_model_version").set(m.version as f64);
        if let (Some(now), Some(trained)) = (event_time, m.trained_until) {
            metrics::gauge!("liverank_serve_model_lag_seconds")
                .set((now.0 - trained.0) as f64 / 1000.0);
        }
    }
    if let Some(t) = event_time {
        metrics::gauge!("liverank_serve_event_time_seconds").set(t.0 as f64 / 1000.0);
    }
    let text = inner
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[utoipa::path(get, path = "/openapi.json", tag = "ops",
    responses((status = 200, description = "This document", content_type = "application/json")))]
async fn openapi_json() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

// ---------------------------------------------------------------- router

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document, generated from the handlers and wire types.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "liverank", description = "Ranked live rooms over HTTP (SPEC §6)."),
    paths(recommend, events, live, history, healthz, readyz, metrics_text, openapi_json),
    components(schemas(ErrorBody)),
    modifiers(&BearerScheme)
)]
pub struct ApiDoc;

/// Every route the router serves: (method, path, handler). The OpenAPI test checks the
/// document lists exactly these.
pub fn route_table() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::POST, "/v1/recommend", post(recommend)),
        (Method::POST, "/v1/events", post(events)),
        (Method::GET, "/v1/lives/{id}", get(live)),
        (Method::GET, "/v1/users/{id}/history", get(history)),
        (Method::GET, "/healthz", get(healthz)),
        (Method::GET, "/readyz", get(readyz)),
        (Method::GET, "/metrics", get(metrics_text)),
        (Method::GET, "/openapi.json", get(openapi_json)),
    ]
}

async fn not_found() -> ServeError {
    ServeError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ServeError {
    ServeError::MethodNotAllowed
}

/// Per-route latency histogram, request and error counters.
async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status();
    let code = status.as_u16().to_string();
    metrics::histogram!("liverank_serve_request_seconds", "route" => route.clone(), "method" => method.clone())
        .record(elapsed);
    metrics::counter!("liverank_serve_requests_total", "route" => route.clone(), "method" => method, "status" => code.clone())
        .increment(1);
    if status.is_client_error() || status.is_server_error() {
        metrics::counter!("liverank_serve_errors_total", "route" => route, "status" => code)
            .increment(1);
    }
    response
}

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    metrics::counter!("liverank_serve_panics_total").increment(1);
    let body = ErrorBody {
        error: "internal",
        reason: "internal error".into(),
    };
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
}

/// The router with its layers: body limit, panic layer, metrics.
pub fn app(state: AppState) -> Router {
    let limit = state.inner.config.max_body_bytes;
    let mut router = Router::new();
    for (_, path, handler) in route_table() {
        router = router.route(path, handler);
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(axum::middleware::from_fn(track))
        .with_state(state)
}

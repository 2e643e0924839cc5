//! The API through the router (`app(state).oneshot(req)`) and over one real socket:
//! every route, every error path, the token check, the limits, the OpenAPI document.
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use crate::common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::*;
use http_body_util::BodyExt;
use liverank_serve::api::{self, EventsResponse, RecommendResponse};
use liverank_serve::*;
use liverank_types::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use tower::ServiceExt;

async fn call(state: &AppState, request: Request<Body>) -> (StatusCode, Value) {
    let response = app(state.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

fn post(path: &str, body: impl Into<Body>, token: Option<&str>) -> Request<Body> {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(body.into()).expect("request")
}

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().method(Method::GET).uri(path);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).expect("request")
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn recommend_ranks_on_air_rooms_with_fused_scores_sources_and_version() {
    let f = fixture(12, true);
    let (status, body) = call(
        &f.state,
        post("/v1/recommend", r#"{"user_id": 1, "count": 5}"#, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r: RecommendResponse = serde_json::from_value(body).unwrap();
    assert_eq!(r.model_version, 1);
    assert_eq!(r.on_air, 12);
    assert_eq!(r.lives.len(), 5);
    // Default request time: the newest event ingested.
    assert_eq!(r.ts, T0 + 600_000);
    assert!(!r.cold_start);
    // Scores descend and equal the fusion of the reported predictions.
    let alpha = &f.config.alpha;
    for w in r.lives.windows(2) {
        assert!(w[0].score >= w[1].score);
    }
    for l in &r.lives {
        assert_eq!(l.predictions.len(), 7);
        let mut want = 1.0f64;
        for (task, p) in &l.predictions {
            let a = alpha[&task.parse::<Task>().unwrap()];
            want *= (1.0 + f64::from(*p)).powf(a);
        }
        assert!(
            (l.score - want).abs() < 1e-9 * want,
            "{} vs {want}",
            l.score
        );
        assert!(!l.sources.is_empty());
        assert!((100..112).contains(&l.live_id));
    }
    // Every on-air room was a candidate (12 < every quota), and the followed author's
    // room (101) and the category-2 rooms carry their labels when returned.
    assert_eq!(r.candidates, 12);
    let (_, all) = call(
        &f.state,
        post("/v1/recommend", r#"{"user_id": 1, "count": 12}"#, None),
    )
    .await;
    let all: RecommendResponse = serde_json::from_value(all).unwrap();
    let room = |id: u64| all.lives.iter().find(|l| l.live_id == id).unwrap();
    assert!(room(101).sources.contains(&"followed".to_string()));
    assert!(room(102).sources.contains(&"category".to_string())); // 102 % 4 == 2
    assert!(!room(103).sources.contains(&"category".to_string()));
    assert!(room(103).sources.contains(&"popular".to_string()));
    // The returned rooms are logged for the train/serve join.
    assert!(f.log.get(RequestId(all.request_id), LiveId(101)).is_some());
}

/// User 7 long-views authors 1 and 2; user 8 long-views author 1: the author graph
/// proposes author 2's room to user 8 (one co-viewing hop) and author 1's (hop 0, a
/// history author not followed), not the unrelated rooms.
#[tokio::test]
async fn graph_recall_proposes_the_rooms_of_co_viewed_authors() {
    let config = Arc::new(serve_config());
    let world = world();
    let mut e = Events::new();
    for i in 0..4u64 {
        e.push(
            T0,
            EventKind::LiveStart {
                live: LiveId(100 + i),
                author: AuthorId(i + 1),
                category: CategoryId(i as u32),
            },
        );
    }
    let view = |e: &mut Events, user: u64, live: u64, at: i64| {
        let (user, live) = (UserId(user), LiveId(live));
        e.push(
            at,
            EventKind::Enter {
                user,
                live,
                request_id: None,
            },
        );
        e.push(
            at + 70_000,
            EventKind::Leave {
                user,
                live,
                watch_ms: DurationMs(70_000),
            },
        );
    };
    view(&mut e, 7, 100, T0 + 1_000);
    view(&mut e, 7, 101, T0 + 72_000);
    view(&mut e, 8, 100, T0 + 150_000);
    view(&mut e, 9, 103, T0 + 300_000);
    world.ingest(&e.list).unwrap();
    assert!(world.graph_records() >= 3, "{}", world.graph_records());
    let slot = Arc::new(ModelSlot::new());
    slot.publish(ServedModel::new(
        1,
        Arc::new(scorer(1)),
        Some(EventTime(T0)),
    ))
    .unwrap();
    let log = Arc::new(ExposureLog::new(config.exposure_log));
    let state = AppState::new(
        config.clone(),
        world.clone(),
        world.clone(),
        slot,
        Recommender::new(config, log),
        1,
    );
    let (status, body) = call(
        &state,
        post("/v1/recommend", r#"{"user_id": 8, "count": 4}"#, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r: RecommendResponse = serde_json::from_value(body).unwrap();
    let graph = |id: u64| {
        r.lives
            .iter()
            .find(|l| l.live_id == id)
            .is_some_and(|l| l.sources.contains(&"graph".to_string()))
    };
    assert!(graph(101), "{:?}", r.lives);
    assert!(graph(100), "{:?}", r.lives);
    assert!(!graph(102) && !graph(103), "{:?}", r.lives);
}

#[tokio::test]
async fn recommend_at_a_time_before_any_room_started_returns_nothing_and_unknown_user_gets_popular()
{
    let f = fixture(6, true);
    let (status, body) = call(
        &f.state,
        post(
            "/v1/recommend",
            format!(r#"{{"user_id": 1, "count": 5, "ts": {}}}"#, T0 - 1),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["on_air"], 0);
    assert_eq!(body["lives"], json!([]));
    // A user we know nothing about: cold start, popular rooms only, most popular first
    // among equal scores is not guaranteed — but every room comes from `popular`.
    let (status, body) = call(
        &f.state,
        post("/v1/recommend", r#"{"user_id": 987654, "count": 3}"#, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let r: RecommendResponse = serde_json::from_value(body).unwrap();
    assert!(r.cold_start);
    assert_eq!(r.lives.len(), 3);
    assert!(r.lives.iter().all(|l| l.sources == ["popular"]));
}

#[tokio::test]
async fn recommend_bad_input_is_a_4xx_with_a_json_reason() {
    let f = fixture(4, true);
    let cases: [(&str, StatusCode, &str); 9] = [
        ("{", StatusCode::BAD_REQUEST, "bad_request"),
        ("not json", StatusCode::BAD_REQUEST, "bad_request"),
        ("", StatusCode::BAD_REQUEST, "bad_request"),
        (
            r#"{"user_id": 1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            r#"{"user_id": "1", "count": 2}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            r#"{"user_id": 1, "count": 2, "extra": 0}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            r#"{"user_id": -1, "count": 2}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            r#"{"user_id": 1, "count": 0}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            r#"{"user_id": 1, "count": 51}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
    ];
    for (body, want, code) in cases {
        let (status, got) = call(&f.state, post("/v1/recommend", body, None)).await;
        assert_error(status, &got, want, code);
    }
    // The body limit (64 KiB here).
    let big = format!(
        r#"{{"user_id": 1, "count": 2, "ts": 1{}}}"#,
        " ".repeat(70_000)
    );
    let (status, got) = call(&f.state, post("/v1/recommend", big, None)).await;
    assert_error(
        status,
        &got,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
}

#[tokio::test]
async fn no_model_means_not_ready_and_503_on_recommend() {
    let f = fixture(4, false);
    let (status, body) = call(&f.state, get("/readyz", None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "not_ready");
    let (status, body) = call(
        &f.state,
        post("/v1/recommend", r#"{"user_id": 1, "count": 2}"#, None),
    )
    .await;
    assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE, "not_ready");
    let (status, body) = call(&f.state, get("/healthz", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    // Loading a model makes it ready.
    f.slot
        .publish(ServedModel::new(3, Arc::new(scorer(3)), None))
        .unwrap();
    let (status, body) = call(&f.state, get("/readyz", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["model_version"], 3);
}

#[tokio::test]
async fn events_need_the_token_and_answer_per_item() {
    let f = fixture(3, true);
    let batch = json!({"events": [
        {"event_id": 9001, "ts": T0 + 700_000, "type": "live_start", "live": 900, "author": 77, "category": 1},
        {"event_id": 9002, "ts": T0 + 700_001, "type": "like", "user": 1},
        {"event_id": 9003, "ts": T0 + 700_002, "type": "enter", "user": 5, "live": 900, "color": "red"},
        {"event_id": 9004, "ts": "late", "type": "enter", "user": 5, "live": 900},
        [1, 2],
        {"event_id": 9001, "ts": T0 + 700_000, "type": "live_start", "live": 900, "author": 77, "category": 1},
        {"event_id": 9005, "ts": T0 + 700_003, "type": "enter", "user": 5, "live": 900}
    ]})
    .to_string();
    // Missing, wrong, wrong scheme: 401, and nothing was ingested.
    for token in [None, Some("wrong"), Some("")] {
        let (status, body) = call(&f.state, post("/v1/events", batch.clone(), token)).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(!body.to_string().contains(TOKEN));
    }
    let basic = Request::builder()
        .method(Method::POST)
        .uri("/v1/events")
        .header(header::AUTHORIZATION, format!("Basic {TOKEN}"))
        .body(Body::from(batch.clone()))
        .unwrap();
    let (status, _) = call(&f.state, basic).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(f.world.room(LiveId(900), EventTime(T0 + 700_000)).is_none());

    let (status, body) = call(&f.state, post("/v1/events", batch, Some(TOKEN))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r: EventsResponse = serde_json::from_value(body).unwrap();
    assert_eq!((r.accepted, r.duplicates, r.rejected), (2, 1, 4));
    let status: Vec<&str> = r.results.iter().map(|x| x.status.as_str()).collect();
    assert_eq!(
        status,
        [
            "accepted",
            "rejected",
            "rejected",
            "rejected",
            "rejected",
            "duplicate",
            "accepted"
        ]
    );
    let reason = |i: usize| r.results[i].reason.clone().unwrap();
    assert!(reason(1).contains("live"), "{}", reason(1));
    assert!(reason(2).contains("color"), "{}", reason(2));
    assert!(
        reason(3).contains("late") && reason(3).contains("expected"),
        "{}",
        reason(3)
    );
    assert!(reason(4).contains("object"), "{}", reason(4));
    // The good items are in: room 900 is on air with its viewer.
    let room = f.world.room(LiveId(900), EventTime(T0 + 700_003)).unwrap();
    assert!(room.on_air);
    assert_eq!(room.online, 1);

    // Batch limits and malformed batches.
    let many = json!({"events": vec![json!({}); 101]}).to_string();
    let (status, body) = call(&f.state, post("/v1/events", many, Some(TOKEN))).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
    );
    let (status, body) = call(&f.state, post("/v1/events", "[{}]", Some(TOKEN))).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
    );
    let (status, body) = call(&f.state, post("/v1/events", "{\"events\": [", Some(TOKEN))).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
}

/// With forecasters, a room's response carries the next H buckets forecast from its last L
/// closed buckets (rebuilt here from the response's own `stats`: log1p, series-major,
/// left-padded) and the top-5 c3 of its next product, best first.
#[tokio::test]
async fn a_room_carries_its_forecast_when_the_server_has_forecasters() {
    use liverank_model::foresight::{ForecastConfig, ProductConfig, ProductTrainer, StatTrainer};
    let f = fixture(3, true);
    let (_, plain) = call(&f.state, get("/v1/lives/100", None)).await;
    assert!(plain["forecast"].is_null(), "no forecasters, no forecast");
    let config = ForecastConfig {
        lookback: 70,
        horizon: 3,
        d_model: 8,
        heads: 2,
        layers: 1,
        ffn: 8,
        product: ProductConfig {
            product_rows: 64,
            c1_rows: 5,
            c2_rows: 20,
            c3_rows: 200,
            embed_dim: 4,
            d_model: 8,
            heads: 2,
            layers: 1,
            ffn: 8,
            max_len: 5,
            ..ProductConfig::default()
        },
        ..ForecastConfig::default()
    };
    let stat = StatTrainer::new(config.clone(), STAT_SERIES.len())
        .unwrap()
        .model()
        .unwrap();
    let product = ProductTrainer::new(config).unwrap().model().unwrap();
    assert!(
        f.state
            .set_foresight(Arc::new(Foresight::new(stat.clone(), product)))
    );
    let (status, body) = call(&f.state, get("/v1/lives/100", None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let forecast = &body["forecast"];
    assert_eq!(forecast["horizon"], 3);
    // 64 closed buckets under a lookback of 70: six zero buckets in front.
    let rows: Vec<Vec<f32>> = body["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 64);
    let n = STAT_SERIES.len();
    let mut x = Vec::new();
    for s in 0..n {
        x.extend(std::iter::repeat_n(0.0, 6));
        x.extend(rows.iter().map(|r| r[s].ln_1p()));
    }
    let want = stat.forecast(&x, 1).unwrap().forecast;
    let got = forecast["stats"].as_array().unwrap();
    assert_eq!(got.len(), 3);
    for (k, row) in got.iter().enumerate() {
        let row = row.as_array().unwrap();
        assert_eq!(row.len(), n);
        for (s, v) in row.iter().enumerate() {
            let w = f64::from(want[s * 3 + k]).exp_m1().max(0.0);
            assert!(
                (v.as_f64().unwrap() - w).abs() < 1e-9,
                "bucket {k} series {s}"
            );
        }
    }
    // One product on sale: five classes, probabilities non-increasing.
    let next = forecast["next_c3"].as_array().unwrap();
    assert_eq!(next.len(), 5);
    let p: Vec<f64> = next
        .iter()
        .map(|c| c["probability"].as_f64().unwrap())
        .collect();
    assert!(p.windows(2).all(|w| w[0] >= w[1]), "{p:?}");
    assert!(
        !f.state.set_foresight(Arc::new(Foresight::new(
            stat,
            ProductTrainer::new(ForecastConfig::default())
                .unwrap()
                .model()
                .unwrap()
        )))
    );
}

#[tokio::test]
async fn lives_and_history_routes() {
    let f = fixture(3, true);
    let (status, body) = call(&f.state, get("/v1/lives/100", None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["on_air"], true);
    assert_eq!(body["author_id"], 1);
    assert_eq!(body["products"], json!([[9, 1, 11, 111]]));
    assert_eq!(body["stats"].as_array().unwrap().len(), 64);
    assert_eq!(body["series"].as_array().unwrap().len(), STAT_SERIES.len());
    // Before the start: known, not on air.
    let (_, body) = call(&f.state, get(&format!("/v1/lives/100?ts={}", T0 - 5), None)).await;
    assert_eq!(body["on_air"], false);
    let (status, body) = call(&f.state, get("/v1/lives/4242", None)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = call(&f.state, get("/v1/lives/abc", None)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (status, body) = call(&f.state, get("/v1/lives/100?when=3", None)).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
    );
    let (status, body) = call(&f.state, get("/v1/lives/100?ts=soon", None)).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
    );

    // History needs the token.
    let (status, body) = call(&f.state, get("/v1/users/1/history", None)).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = call(&f.state, get("/v1/users/1/history", Some("nope"))).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = call(&f.state, get("/v1/users/1/history?limit=3", Some(TOKEN))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // 5 video plays + 1 live session = 6 records; the newest 3, newest first.
    assert_eq!(body["total"], 6);
    let records = body["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["domain"], "live");
    assert_eq!(records[0]["item"], 101);
    assert_eq!(records[1]["item"], 504);
    let (status, body) = call(&f.state, get("/v1/users/777/history", Some(TOKEN))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total"], 0);
    let (status, body) = call(&f.state, get("/v1/users/x/history", Some(TOKEN))).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors_and_metrics_count_them() {
    let f = fixture(3, true);
    let (status, body) = call(&f.state, get("/v2/nothing", None)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = call(&f.state, get("/v1/recommend", None)).await;
    assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    call(
        &f.state,
        post("/v1/recommend", r#"{"user_id": 1, "count": 2}"#, None),
    )
    .await;
    let (status, text) = call(&f.state, get("/metrics", None)).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap().to_string();
    for needle in [
        "liverank_serve_request_seconds_bucket{route=\"/v1/recommend\"",
        "liverank_serve_requests_total{",
        "liverank_serve_errors_total{",
        "liverank_serve_candidates_bucket",
        "liverank_serve_model_version",
        "liverank_serve_model_lag_seconds",
        "liverank_serve_stage_seconds_bucket{stage=\"ranker\"",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[tokio::test]
async fn openapi_lists_exactly_the_routes_the_router_serves() {
    let f = fixture(3, true);
    let (status, doc) = call(&f.state, get("/openapi.json", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let served: BTreeSet<(String, String)> = api::route_table()
        .into_iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, served);
    // And every documented route answers (not the router's 404 / 405).
    for (method, path) in &documented {
        let path = path.replace("{id}", "1");
        let req = Request::builder()
            .method(method.as_str())
            .uri(&path)
            .body(Body::empty())
            .unwrap();
        let (status, body) = call(&f.state, req).await;
        assert!(
            body.get("error")
                .is_none_or(|e| e != "not_found" && e != "method_not_allowed")
                || path.starts_with("/v1/lives"),
            "{method} {path}: {status} {body}"
        );
    }
    // The security scheme of the write/admin routes is declared.
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["paths"]["/v1/events"]["post"]["security"].is_array());
}

/// A world whose reads panic: the panic layer answers 500 and counts it.
struct PanickingWorld(Arc<LocalWorld>);

impl World for PanickingWorld {
    fn event_time(&self) -> Option<EventTime> {
        self.0.event_time()
    }
    fn on_air(&self, _: UserId, _: EventTime, _: &mut Vec<OnAirRoom>) {
        panic!("injected fault");
    }
    fn room(&self, live: LiveId, ts: EventTime) -> Option<RoomDetail> {
        self.0.room(live, ts)
    }
    fn follows(&self, user: UserId, out: &mut Vec<AuthorId>) {
        self.0.follows(user, out)
    }
    fn knows_user(&self, user: UserId) -> bool {
        self.0.knows_user(user)
    }
    fn history(&self) -> &dyn liverank_history::HistoryStore {
        self.0.history()
    }
}

#[tokio::test]
async fn a_panic_is_a_counted_500_and_the_server_keeps_serving() {
    let f = fixture(3, true);
    let state = AppState::new(
        f.config.clone(),
        Arc::new(PanickingWorld(f.world.clone())),
        f.world.clone(),
        f.slot.clone(),
        Recommender::new(f.config.clone(), f.log.clone()),
        1,
    );
    let (status, body) = call(
        &state,
        post("/v1/recommend", r#"{"user_id": 1, "count": 2}"#, None),
    )
    .await;
    assert_error(status, &body, StatusCode::INTERNAL_SERVER_ERROR, "internal");
    assert_eq!(body["reason"], "internal error");
    let (status, _) = call(&state, get("/healthz", None)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, text) = call(&state, get("/metrics", None)).await;
    assert!(
        text.as_str()
            .unwrap()
            .contains("liverank_serve_panics_total")
    );
}

#[tokio::test]
async fn real_socket_serves_and_shuts_down_gracefully() {
    let f = fixture(8, true);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, f.state.clone(), async {
        let _ = stopped.await;
    }));
    let spec = loadgen::LoadSpec {
        addr,
        path: "/v1/recommend".into(),
        token: None,
        bodies: Arc::new(vec![r#"{"user_id": 1, "count": 4}"#.into()]),
        concurrency: 4,
        requests: 40,
        time_limit: std::time::Duration::from_secs(30),
    };
    let report = loadgen::run(spec).await.unwrap();
    assert_eq!(report.requests, 40);
    assert_eq!(report.errors, 0);
    // A token-protected route over the socket, wrong then right token.
    let events = loadgen::LoadSpec {
        addr,
        path: "/v1/events".into(),
        token: Some("wrong".into()),
        bodies: Arc::new(vec![r#"{"events": []}"#.into()]),
        concurrency: 1,
        requests: 2,
        time_limit: std::time::Duration::from_secs(30),
    };
    assert_eq!(loadgen::run(events.clone()).await.unwrap().errors, 2);
    let right = loadgen::LoadSpec {
        token: Some(TOKEN.into()),
        ..events
    };
    assert_eq!(loadgen::run(right).await.unwrap().errors, 0);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

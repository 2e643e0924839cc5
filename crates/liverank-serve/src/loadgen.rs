//! A closed-loop load generator over loopback (`liverank bench serve`): `concurrency`
//! clients, each sending its next request as soon as the previous answered, until a fixed
//! request count or a time limit — whichever comes first — so it always stops by itself.
//! Latency is measured per request on the client side (connect reuse: keep-alive).

use crate::error::{Result, ServeError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What to send.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// Server address (loopback only).
    pub addr: SocketAddr,
    /// Request path (POST).
    pub path: String,
    /// Bearer token, if the path needs one.
    pub token: Option<String>,
    /// Bodies, sent round-robin.
    pub bodies: Arc<Vec<Bytes>>,
    /// Clients in parallel.
    pub concurrency: usize,
    /// Requests in total, at most.
    pub requests: usize,
    /// Wall-clock limit.
    pub time_limit: Duration,
}

/// What came back.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadReport {
    /// Clients.
    pub concurrency: usize,
    /// Requests answered (any status).
    pub requests: usize,
    /// Non-200 answers and transport failures.
    pub errors: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Latency percentiles.
    pub p50: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
}

impl LoadReport {
    /// Sustained requests per second.
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The `q`-quantile (nearest rank) of sorted latencies.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Runs the load; refuses a non-loopback address.
pub async fn run(spec: LoadSpec) -> Result<LoadReport> {
    if !spec.addr.ip().is_loopback() {
        return Err(ServeError::Config(format!(
            "the load generator only targets loopback, not {}",
            spec.addr
        )));
    }
    if spec.bodies.is_empty() {
        return Err(ServeError::Config("no request bodies".into()));
    }
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(spec.concurrency.max(1))
        .build_http();
    let uri: hyper::Uri = format!("http://{}{}", spec.addr, spec.path)
        .parse()
        .map_err(|e| ServeError::Config(format!("uri: {e}")))?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + spec.time_limit;
    let mut workers = Vec::new();
    for _ in 0..spec.concurrency.max(1) {
        let (client, uri, next, spec) = (client.clone(), uri.clone(), next.clone(), spec.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= spec.requests || Instant::now() >= deadline {
                    break;
                }
                let body = spec.bodies[i % spec.bodies.len()].clone();
                let mut request = hyper::Request::post(uri.clone())
                    .header(hyper::header::CONTENT_TYPE, "application/json");
                if let Some(t) = &spec.token {
                    request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
                }
                let Ok(request) = request.body(Full::new(body)) else {
                    errors += 1;
                    continue;
                };
                let t0 = Instant::now();
                let left = deadline.saturating_duration_since(t0);
                let answer = tokio::time::timeout(left, async {
                    let response = client.request(request).await.ok()?;
                    let ok = response.status() == hyper::StatusCode::OK;
                    response.into_body().collect().await.ok()?;
                    Some(ok)
                })
                .await;
                match answer {
                    Ok(Some(ok)) => {
                        latencies.push(t0.elapsed());
                        errors += usize::from(!ok);
                    }
                    Ok(None) => {
                        latencies.push(t0.elapsed());
                        errors += 1;
                    }
                    // Cut by the time limit: not counted.
                    Err(_) => break,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w
            .await
            .map_err(|e| ServeError::Internal(format!("load worker: {e}")))?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(LoadReport {
        concurrency: spec.concurrency,
        requests: latencies.len(),
        errors,
        elapsed,
        p50: quantile(&latencies, 0.50),
        p95: quantile(&latencies, 0.95),
        p99: quantile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&d, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&d, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&d, 1.0), Duration::from_millis(100));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}

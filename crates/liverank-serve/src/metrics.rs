//! The Prometheus recorder behind `/metrics`.
//!
//! The `metrics` facade has one global recorder per process; the first [`handle`] installs
//! ours (latency histograms with fixed buckets, so `/metrics` exposes real histograms,
//! not summaries) and every later call — every `AppState` of a test binary — shares it.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Latency buckets in seconds: 0.25 ms … 1 s.
const LATENCY_BUCKETS: [f64; 13] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.003, 0.005, 0.007_5, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0,
];
/// Candidate-count buckets.
const CANDIDATE_BUCKETS: [f64; 9] = [0.0, 10.0, 50.0, 100.0, 200.0, 300.0, 500.0, 750.0, 1000.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder on first use (`None` when
/// another recorder was installed first: then `/metrics` is empty).
pub fn handle() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), &LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("liverank_serve_candidates".to_string()),
                        &CANDIDATE_BUCKETS,
                    )
                })
                .ok()?;
            builder.install_recorder().ok()
        })
        .clone()
}

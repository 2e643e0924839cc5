//! `liverank bench foresight`: the ranker's scoring of one request of `--candidates` rooms
//! with LiveForesighter's branches off (the baseline, measured in the same run) and both
//! on, with a cold cache (every room's window new: each request forecasts every room) and a
//! warm one (the same rooms at the same bucket: every row a cache hit), and the cache's
//! hit rate. A request is timed from its samples to its probabilities: feature rows
//! (forecasts included), then one `Scorer::predict`.

use crate::Failure;
use crate::settings::Settings;
use clap::Args;
use liverank_model::config::ForesightInputs;
use liverank_model::foresight::{Foresighter, Loaded, ProductTrainer, StatTrainer};
use liverank_model::{FeatureBuilder, RankerConfig, Trainer};
use liverank_types::stats::quantile_sorted;
use liverank_types::{
    AuthorId, CategoryId, EventTime, ExposureFeatures, LabelMask, LiveId, Policy, RequestId,
    STAT_SERIES, Sample, SampleKind, UserId,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Arguments of `liverank bench foresight`.
#[derive(Debug, Args, Clone)]
pub struct BenchForesightArgs {
    /// Forecaster directory (`liverank forecast train --out`); default: models of the
    /// settings' `[forecast]` shape at their seeded initialisation (same cost).
    #[arg(long)]
    forecaster: Option<PathBuf>,
    /// Candidate rooms per request.
    #[arg(long, default_value_t = 500)]
    candidates: usize,
    /// Timed requests per mode (after 5 warm-up requests).
    #[arg(long, default_value_t = 40)]
    requests: usize,
}

/// One request's rows: `candidates` distinct rooms, 64 buckets of statistics and 20
/// products each; `bucket` shifts every room's window (a new bucket closed).
fn request(candidates: usize, bucket: u64) -> Vec<Sample> {
    let n = STAT_SERIES.len();
    (0..candidates as u64)
        .map(|live| {
            let stats = (0..64 * n as u64)
                .map(|i| ((i * 31 + live * 7 + bucket * 13) % 17) as u32)
                .collect();
            let products = (0..20u64)
                .map(|i| {
                    let p = live * 20 + i + bucket;
                    [p, p % 50, p % 1000, p % 5000]
                })
                .collect();
            Sample {
                sample_id: 0,
                policy: Policy::Realtime,
                kind: SampleKind::Flush,
                seq: 0,
                ts: EventTime(0),
                request_id: RequestId(bucket),
                live: LiveId(live + 1),
                user: UserId(7),
                author: Some(AuthorId(live + 1)),
                exposure_ts: EventTime(0),
                category: Some(CategoryId((live % 20) as u32)),
                labels: LabelMask::default(),
                features: Arc::new(ExposureFeatures {
                    stats,
                    stats_len: 64,
                    products,
                    position: 1,
                    hour: 20,
                    live_age_ms: 1_800_000,
                    ..ExposureFeatures::default()
                }),
            }
        })
        .collect()
}

fn runtime(e: impl std::fmt::Display) -> Failure {
    Failure::Runtime(anyhow::anyhow!("{e}"))
}

/// p50 and p99 (ms) of `requests` timed requests; `bucket(k)` picks request k's window.
fn time_requests(
    config: &RankerConfig,
    args: &BenchForesightArgs,
    bucket: impl Fn(usize) -> u64,
) -> Result<(f64, f64), Failure> {
    let builder = FeatureBuilder::new(config);
    let scorer = Trainer::new(config.clone(), builder.shape())
        .and_then(|t| t.scorer())
        .map_err(runtime)?;
    let mut lat = Vec::with_capacity(args.requests);
    for k in 0..args.requests + 5 {
        let samples = request(args.candidates, bucket(k));
        let t = Instant::now();
        let batch = builder.build(&samples);
        std::hint::black_box(scorer.predict(&batch).map_err(runtime)?);
        if k >= 5 {
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    lat.sort_by(f64::total_cmp);
    Ok((quantile_sorted(&lat, 0.5), quantile_sorted(&lat, 0.99)))
}

/// Runs the command.
pub fn run(settings: &Settings, args: &BenchForesightArgs) -> Result<(), Failure> {
    let off = RankerConfig {
        history_sequences: Vec::new(),
        history_profile: false,
        foresight: ForesightInputs::default(),
        ..settings.model.clone()
    };
    let load = |capacity: usize| -> Result<Foresighter, Failure> {
        match &args.forecaster {
            Some(dir) => Foresighter::load(&ForesightInputs {
                stat: true,
                product: true,
                dir: dir.display().to_string(),
                cache_entries: capacity,
                ..ForesightInputs::default()
            })
            .map_err(runtime),
            None => {
                let f = settings.forecast.clone();
                let stat = StatTrainer::new(f.clone(), STAT_SERIES.len())
                    .and_then(|t| t.model())
                    .map_err(runtime)?;
                let product = ProductTrainer::new(f)
                    .and_then(|t| t.model())
                    .map_err(runtime)?;
                Foresighter::new(Some(stat), Some(product), capacity).map_err(runtime)
            }
        }
    };
    let on = |capacity: usize| -> Result<RankerConfig, Failure> {
        let models = load(capacity)?;
        Ok(RankerConfig {
            foresight: ForesightInputs {
                stat: true,
                product: true,
                dir: "<bench>".into(),
                c3_rows: models.c3_rows(),
                cache_entries: capacity,
                loaded: Loaded::from_models(models),
                ..settings.model.foresight.clone()
            },
            ..off.clone()
        })
    };
    let c = args.candidates;
    let (off_p50, off_p99) = time_requests(&off, args, |_| 0)?;
    println!(
        "RESULT task=foresight_score mode=off candidates={c} p50_ms={off_p50:.3} p99_ms={off_p99:.3}"
    );
    let cold = on(1 << 20)?;
    let (p50, p99) = time_requests(&cold, args, |k| k as u64)?;
    println!(
        "RESULT task=foresight_score mode=both_cold candidates={c} p50_ms={p50:.3} p99_ms={p99:.3} p99_ratio_to_off={:.2} forecast_ms_per_room={:.4}",
        p99 / off_p99,
        (p50 - off_p50).max(0.0) / c as f64
    );
    let warm = on(1 << 20)?;
    let (p50, p99) = time_requests(&warm, args, |_| 0)?;
    let stats = warm
        .foresight
        .models()
        .map_err(runtime)?
        .map(|m| m.stats())
        .unwrap_or_default();
    println!(
        "RESULT task=foresight_score mode=both_warm candidates={c} p50_ms={p50:.3} p99_ms={p99:.3} p99_ratio_to_off={:.2} cache_hit_rate={:.4} rooms_forecast={}",
        p99 / off_p99,
        stats.hit_rate(),
        stats.forecasts
    );
    Ok(())
}

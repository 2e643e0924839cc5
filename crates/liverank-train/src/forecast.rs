//! LiveForesighter training and evaluation: per-room statistic timelines and product
//! sequences rebuilt from the samples' feature blocks, the two forecasters trained on the
//! earlier rooms, and both judged on the rooms that start in the later part of the day.
//!
//! * **Timelines.** Every sample carries the room's last `stats_len` closed 30 s buckets
//!   before its impression (the sample engine's `live_stats`); laid side by side by bucket
//!   start they give each room's statistics wherever an impression's window covers it. A
//!   bucket no window covers is unknown, and no training or evaluation window touches one.
//!   Buckets before the room's start (impression time − `live_age_ms`) are dropped.
//! * **Transform.** Models and baselines read and forecast `log1p(count)`; MSE is on that
//!   scale (eq. 2's loss), MAE on raw counts (`expm1` of the forecast).
//! * **Young rooms.** A window whose lookback reaches before the room's first bucket is
//!   left-padded with zeros (the room's counts before it went on air): a room is forecast
//!   from its first closed bucket on. Windows need at least one real input bucket.
//! * **Split.** Rooms starting in the last `1 − train_fraction` of the samples' time range
//!   are held out; the training rooms starting in the last sixth of the training range are
//!   the validation rooms on which the moving-average window is chosen per series.
//! * **Products.** Each sample carries the room's last K products on sale; consecutive
//!   impressions' lists are merged on their longest overlap into the room's sequence.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use liverank_model::foresight::{
    ForecastConfig, ProductModel, ProductTrainer, StatModel, StatTrainer,
};
use liverank_model::rng::SplitMix64;
use liverank_types::{STAT_SERIES, Sample};
use serde::Serialize;

use crate::error::{Result, TrainError};

/// Statistic series per bucket.
pub const SERIES: usize = STAT_SERIES.len();
/// Index of the online-viewers gauge.
pub const ONLINE: usize = 2;
/// Index of enters.
pub const ENTERS: usize = 1;
/// Index of orders.
pub const ORDERS: usize = 9;
/// Index of GMV.
pub const GMV: usize = 10;

/// One room's statistics and products as the samples reveal them.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomSeries {
    /// Room id.
    pub live: u64,
    /// Streamer type, when the samples carry it.
    pub author_type: Option<String>,
    /// Broadcast start (ms), or its first known bucket when no sample tells.
    pub start: i64,
    /// Start of `buckets[0]`.
    pub first: i64,
    /// Consecutive buckets from `first`.
    pub buckets: Vec<[u32; SERIES]>,
    /// Whether a sample's window covered each bucket.
    pub known: Vec<bool>,
    /// Products put on sale, oldest first.
    pub products: Vec<[u64; 4]>,
}

/// All rooms of a sample set.
#[derive(Clone, Debug)]
pub struct ForecastData {
    /// Rooms, by id.
    pub rooms: Vec<RoomSeries>,
    /// Bucket width (ms).
    pub width: i64,
    /// Earliest and latest impression.
    pub span: (i64, i64),
    /// Samples whose statistics block did not have `stats_len × SERIES` values (skipped).
    pub malformed: u64,
}

fn log1p(v: u32) -> f32 {
    f64::from(v).ln_1p() as f32
}

/// Appends `list` to `acc` after their longest overlap (`acc`'s tail = `list`'s head).
fn merge_products(acc: &mut Vec<[u64; 4]>, list: &[[u64; 4]]) {
    let max = acc.len().min(list.len());
    let k = (0..=max)
        .rev()
        .find(|&k| acc[acc.len() - k..] == list[..k])
        .unwrap_or(0);
    acc.extend_from_slice(&list[k..]);
}

/// Rebuilds every room's timeline and product sequence from samples (any policies; the
/// same impression seen twice is read once).
pub fn forecast_data(samples: &[Sample], width_ms: i64) -> Result<ForecastData> {
    if width_ms <= 0 {
        return Err(TrainError::Input("bucket width must be positive".into()));
    }
    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.sort_by_key(|&i| (samples[i].exposure_ts.0, samples[i].live.0));
    struct Acc {
        author_type: Option<String>,
        start: Option<i64>,
        buckets: BTreeMap<i64, [u32; SERIES]>,
        products: Vec<[u64; 4]>,
    }
    let mut rooms: HashMap<u64, Acc> = HashMap::new();
    let mut seen = HashSet::new();
    let (mut lo, mut hi, mut malformed) = (i64::MAX, i64::MIN, 0u64);
    for i in order {
        let s = &samples[i];
        if !seen.insert((s.live.0, s.request_id.0)) {
            continue;
        }
        let f = &s.features;
        let t = f.stats_len as usize;
        if f.stats.len() != t * SERIES {
            malformed += 1;
            continue;
        }
        let ts = s.exposure_ts.0;
        lo = lo.min(ts);
        hi = hi.max(ts);
        let room = rooms.entry(s.live.0).or_insert_with(|| Acc {
            author_type: None,
            start: None,
            buckets: BTreeMap::new(),
            products: Vec::new(),
        });
        if room.author_type.is_none() {
            room.author_type.clone_from(&f.author_type);
        }
        if f.live_age_ms > 0 {
            let start = ts - f.live_age_ms as i64;
            room.start = Some(room.start.map_or(start, |s| s.min(start)));
        }
        let last_closed = ts.div_euclid(width_ms) * width_ms - width_ms;
        for (k, chunk) in f.stats.chunks_exact(SERIES).enumerate() {
            let start = last_closed - (t - 1 - k) as i64 * width_ms;
            let mut v = [0u32; SERIES];
            v.copy_from_slice(chunk);
            room.buckets.insert(start, v);
        }
        merge_products(&mut room.products, &f.products);
    }
    let mut out: Vec<RoomSeries> = rooms
        .into_iter()
        .filter_map(|(live, acc)| {
            let first_known = *acc.buckets.keys().next()?;
            let last_known = *acc.buckets.keys().next_back()?;
            let start = acc.start.unwrap_or(first_known);
            let first = start.div_euclid(width_ms) * width_ms;
            if last_known < first {
                return None;
            }
            let n = ((last_known - first) / width_ms + 1) as usize;
            let mut buckets = vec![[0u32; SERIES]; n];
            let mut known = vec![false; n];
            for (&b, v) in acc.buckets.range(first..) {
                let k = ((b - first) / width_ms) as usize;
                buckets[k] = *v;
                known[k] = true;
            }
            Some(RoomSeries {
                live,
                author_type: acc.author_type,
                start,
                first,
                buckets,
                known,
                products: acc.products,
            })
        })
        .collect();
    out.sort_by_key(|r| r.live);
    Ok(ForecastData {
        rooms: out,
        width: width_ms,
        span: (lo.min(hi), hi.max(lo)),
        malformed,
    })
}

/// A window: room index and the position of its first forecast bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Index into [`ForecastData::rooms`].
    pub room: usize,
    /// First target bucket.
    pub pos: usize,
}

/// Every window of a room with known buckets throughout (left-padded lookback).
pub fn room_windows(
    room: &RoomSeries,
    index: usize,
    lookback: usize,
    horizon: usize,
) -> Vec<Window> {
    let n = room.buckets.len();
    let mut out = Vec::new();
    for pos in 1..=n.saturating_sub(horizon) {
        let from = pos.saturating_sub(lookback);
        if room.known[from..pos + horizon].iter().all(|&k| k) {
            out.push(Window { room: index, pos });
        }
    }
    out
}

/// Appends a window's `[N, L]` log1p input (series-major, oldest first).
pub fn push_input(room: &RoomSeries, pos: usize, lookback: usize, out: &mut Vec<f32>) {
    for s in 0..SERIES {
        for k in 0..lookback {
            let at = (pos + k) as isize - lookback as isize;
            out.push(if at < 0 {
                0.0
            } else {
                log1p(room.buckets[at as usize][s])
            });
        }
    }
}

/// Appends a window's `[N, H]` log1p target.
pub fn push_target(room: &RoomSeries, pos: usize, horizon: usize, out: &mut Vec<f32>) {
    for s in 0..SERIES {
        for k in 0..horizon {
            out.push(log1p(room.buckets[pos + k][s]));
        }
    }
}

/// Which rooms train, validate and test.
#[derive(Clone, Debug, Serialize)]
pub struct RoomSplit {
    /// Rooms starting at or after this instant are held out.
    pub test_from: i64,
    /// Training rooms starting at or after this instant also validate.
    pub valid_from: i64,
    /// Training rooms (validation included).
    pub train: Vec<usize>,
    /// Validation rooms.
    pub valid: Vec<usize>,
    /// Held-out rooms.
    pub test: Vec<usize>,
}

/// Splits rooms by start time: the last `1 − train_fraction` of the span is held out.
pub fn split_rooms(data: &ForecastData, train_fraction: f64) -> RoomSplit {
    let (lo, hi) = data.span;
    let at = |f: f64| lo + ((hi - lo) as f64 * f) as i64;
    let test_from = at(train_fraction);
    let valid_from = at(train_fraction * 5.0 / 6.0);
    let (mut train, mut valid, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for (i, r) in data.rooms.iter().enumerate() {
        if r.start >= test_from {
            test.push(i);
        } else {
            train.push(i);
            if r.start >= valid_from {
                valid.push(i);
            }
        }
    }
    RoomSplit {
        test_from,
        valid_from,
        train,
        valid,
        test,
    }
}

fn windows_of(data: &ForecastData, rooms: &[usize], config: &ForecastConfig) -> Vec<Window> {
    rooms
        .iter()
        .flat_map(|&i| room_windows(&data.rooms[i], i, config.lookback, config.horizon))
        .collect()
}

/// Product sequences cut into chunks of at most `max_len + 1` (stride `max_len / 2`).
fn product_chunks<'a>(
    data: &'a ForecastData,
    rooms: &[usize],
    max_len: usize,
) -> Vec<&'a [[u64; 4]]> {
    let mut out = Vec::new();
    let len = max_len + 1;
    let stride = (max_len / 2).max(1);
    for &i in rooms {
        let p = &data.rooms[i].products;
        if p.len() < 2 {
            continue;
        }
        let mut from = 0;
        loop {
            let to = (from + len).min(p.len());
            out.push(&p[from..to]);
            if to == p.len() {
                break;
            }
            from += stride;
        }
    }
    out
}

/// What training did.
#[derive(Clone, Debug, Serialize)]
pub struct TrainReport {
    /// Rooms in each part.
    pub rooms_train: usize,
    /// Held-out rooms.
    pub rooms_test: usize,
    /// Training windows.
    pub windows: usize,
    /// Mean MSE (log1p) per epoch.
    pub epoch_loss: Vec<f32>,
    /// Training windows per second.
    pub windows_per_s: f64,
    /// Product training chunks.
    pub product_chunks: usize,
    /// Mean cross-entropy per epoch.
    pub product_epoch_loss: Vec<f32>,
    /// Product chunks per second.
    pub product_chunks_per_s: f64,
}

/// Both models, trained.
#[derive(Debug)]
pub struct TrainedForecasters {
    /// Statistic forecaster.
    pub stat: StatModel,
    /// Product predictor.
    pub product: ProductModel,
    /// Figures.
    pub report: TrainReport,
}

/// Trains both forecasters on the training rooms; `progress` sees one line per epoch.
pub fn train_forecasters(
    data: &ForecastData,
    config: &ForecastConfig,
    train_fraction: f64,
    mut progress: impl FnMut(&str),
) -> Result<TrainedForecasters> {
    config.validate()?;
    let split = split_rooms(data, train_fraction);
    let mut windows = windows_of(data, &split.train, config);
    if windows.is_empty() {
        return Err(TrainError::Input(
            "no training window: too few rooms or buckets before the split".into(),
        ));
    }
    let mut trainer = StatTrainer::new(config.clone(), SERIES)?;
    let mut rng = SplitMix64::new(config.seed);
    let (mut epoch_loss, clock) = (Vec::new(), Instant::now());
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for epoch in 0..config.epochs {
        rng.shuffle(&mut windows);
        let (mut sum, mut steps) = (0.0f64, 0usize);
        for batch in windows.chunks(config.batch_size) {
            x.clear();
            y.clear();
            for w in batch {
                let room = &data.rooms[w.room];
                push_input(room, w.pos, config.lookback, &mut x);
                push_target(room, w.pos, config.horizon, &mut y);
            }
            sum += f64::from(trainer.train_step(&x, &y, batch.len())?);
            steps += 1;
        }
        let mean = (sum / steps.max(1) as f64) as f32;
        epoch_loss.push(mean);
        progress(&format!(
            "forecaster epoch {}/{}: MSE(log1p) {mean:.5}",
            epoch + 1,
            config.epochs
        ));
    }
    let windows_per_s =
        (windows.len() * config.epochs) as f64 / clock.elapsed().as_secs_f64().max(1e-9);

    let p = &config.product;
    let mut chunks = product_chunks(data, &split.train, p.max_len);
    let mut product = ProductTrainer::new(config.clone())?;
    let (mut product_epoch_loss, clock) = (Vec::new(), Instant::now());
    for epoch in 0..if chunks.is_empty() { 0 } else { p.epochs } {
        rng.shuffle(&mut chunks);
        let (mut sum, mut steps) = (0.0f64, 0usize);
        for batch in chunks.chunks(p.batch_size) {
            if let Some(loss) = product.train_step(batch)? {
                sum += f64::from(loss);
                steps += 1;
            }
        }
        let mean = (sum / steps.max(1) as f64) as f32;
        product_epoch_loss.push(mean);
        if (epoch + 1) % 5 == 0 || epoch + 1 == p.epochs {
            progress(&format!(
                "product epoch {}/{}: cross-entropy {mean:.4}",
                epoch + 1,
                p.epochs
            ));
        }
    }
    let product_chunks_per_s =
        (chunks.len() * product_epoch_loss.len()) as f64 / clock.elapsed().as_secs_f64().max(1e-9);
    Ok(TrainedForecasters {
        stat: trainer.model()?,
        product: product.model()?,
        report: TrainReport {
            rooms_train: split.train.len(),
            rooms_test: split.test.len(),
            windows: windows.len(),
            epoch_loss,
            windows_per_s,
            product_chunks: chunks.len(),
            product_epoch_loss,
            product_chunks_per_s,
        },
    })
}

/// The forecasters compared: 0 the model, 1 last value, 2 moving average, 3 shared linear.
pub const PREDICTORS: [&str; 4] = ["model", "last", "moving_avg", "linear"];

/// Least squares `Linear(L→H)` shared by all series (log1p), a tiny ridge for stability.
#[derive(Clone, Debug)]
struct SharedLinear {
    /// `[L + 1, H]` (bias last).
    w: Vec<f64>,
    l: usize,
    h: usize,
}

impl SharedLinear {
    fn fit(data: &ForecastData, windows: &[Window], l: usize, h: usize) -> Self {
        let d = l + 1;
        let (mut xtx, mut xty) = (vec![0.0f64; d * d], vec![0.0f64; d * h]);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for w in windows {
            x.clear();
            y.clear();
            let room = &data.rooms[w.room];
            push_input(room, w.pos, l, &mut x);
            push_target(room, w.pos, h, &mut y);
            for s in 0..SERIES {
                let row: Vec<f64> = x[s * l..(s + 1) * l]
                    .iter()
                    .map(|&v| f64::from(v))
                    .chain([1.0])
                    .collect();
                for (i, &ri) in row.iter().enumerate() {
                    for (j, &rj) in row.iter().enumerate() {
                        xtx[i * d + j] += ri * rj;
                    }
                    for k in 0..h {
                        xty[i * h + k] += ri * f64::from(y[s * h + k]);
                    }
                }
            }
        }
        let ridge = 1e-6 * (0..d).map(|i| xtx[i * d + i]).sum::<f64>() / d as f64 + 1e-9;
        for i in 0..d {
            xtx[i * d + i] += ridge;
        }
        // Gauss–Jordan with partial pivoting on [XᵀX | XᵀY].
        let mut a = xtx;
        let mut b = xty;
        for c in 0..d {
            let p = (c..d)
                .max_by(|&i, &j| a[i * d + c].abs().total_cmp(&a[j * d + c].abs()))
                .unwrap_or(c);
            for j in 0..d {
                a.swap(c * d + j, p * d + j);
            }
            for k in 0..h {
                b.swap(c * h + k, p * h + k);
            }
            let pivot = a[c * d + c];
            if pivot.abs() < 1e-300 {
                continue;
            }
            for r in 0..d {
                if r == c {
                    continue;
                }
                let f = a[r * d + c] / pivot;
                if f == 0.0 {
                    continue;
                }
                for j in 0..d {
                    a[r * d + j] -= f * a[c * d + j];
                }
                for k in 0..h {
                    b[r * h + k] -= f * b[c * h + k];
                }
            }
        }
        for c in 0..d {
            let pivot = a[c * d + c];
            for k in 0..h {
                b[c * h + k] = if pivot.abs() < 1e-300 {
                    0.0
                } else {
                    b[c * h + k] / pivot
                };
            }
        }
        Self { w: b, l, h }
    }

    fn predict(&self, input: &[f32], out: &mut [f32]) {
        for (k, o) in out.iter_mut().enumerate().take(self.h) {
            let mut v = self.w[self.l * self.h + k];
            for (i, &x) in input.iter().enumerate() {
                v += f64::from(x) * self.w[i * self.h + k];
            }
            *o = v as f32;
        }
    }
}

/// Moving-average windows tried on the validation rooms.
pub const MA_WINDOWS: [usize; 6] = [1, 2, 3, 5, 10, 20];

fn moving_average(input: &[f32], w: usize) -> f32 {
    let w = w.clamp(1, input.len());
    input[input.len() - w..].iter().sum::<f32>() / w as f32
}

/// Per-room sums of one subset of windows: `[room][predictor][series]`.
#[derive(Clone, Debug, Default)]
struct Sums {
    sse: Vec<[[f64; SERIES]; 4]>,
    sae: Vec<[[f64; SERIES]; 4]>,
    count: Vec<f64>,
}

impl Sums {
    fn new(rooms: usize) -> Self {
        Self {
            sse: vec![[[0.0; SERIES]; 4]; rooms],
            sae: vec![[[0.0; SERIES]; 4]; rooms],
            count: vec![0.0; rooms],
        }
    }

    fn total(&self, rooms: &[usize], p: usize, series: &[usize]) -> f64 {
        rooms
            .iter()
            .map(|&r| series.iter().map(|&s| self.sse[r][p][s]).sum::<f64>())
            .sum()
    }
}

/// One series (or all series pooled) in one subset of windows.
#[derive(Clone, Debug, Serialize)]
pub struct SeriesReport {
    /// Series name, or `all`.
    pub series: String,
    /// MSE on log1p, by [`PREDICTORS`].
    pub mse: [f64; 4],
    /// MAE on raw counts, by [`PREDICTORS`].
    pub mae: [f64; 4],
    /// The better of last value and moving average (by MSE).
    pub better_naive: String,
    /// `1 − MSE_model / MSE_better_naive`.
    pub gain: f64,
    /// Room-bootstrap 95 % interval of `gain`.
    pub gain_ci: (f64, f64),
    /// `1 − MSE_model / MSE_linear`.
    pub gain_vs_linear: f64,
}

/// One subset of windows (all, or those whose horizon covers a highlight start, …).
#[derive(Clone, Debug, Serialize)]
pub struct SubsetReport {
    /// What the subset is.
    pub name: String,
    /// Windows in it.
    pub windows: usize,
    /// Rooms with at least one.
    pub rooms: usize,
    /// All series pooled, then each.
    pub series: Vec<SeriesReport>,
}

/// Next-c3 accuracy on the held-out rooms' product sequences.
#[derive(Clone, Debug, Serialize)]
pub struct NextC3Report {
    /// Positions predicted (each product after the first of a held-out room).
    pub positions: usize,
    /// Model top-1 / top-5.
    pub top1: f64,
    /// Model top-5.
    pub top5: f64,
    /// First-order Markov (c3 → next c3 counts of the training rooms, backed off to
    /// overall popularity) top-1.
    pub markov_top1: f64,
    /// Markov top-5.
    pub markov_top5: f64,
}

/// Timings of the statistic forecaster.
#[derive(Clone, Debug, Serialize)]
pub struct InferenceTiming {
    /// Median seconds to forecast one room.
    pub per_room_s: f64,
    /// Most rooms with a bucket at the same instant (on air together).
    pub on_air_rooms: usize,
    /// Median seconds to forecast all of them in one batch.
    pub all_on_air_s: f64,
}

/// The evaluation `liverank forecast eval` prints.
#[derive(Clone, Debug, Serialize)]
pub struct ForecastEval {
    /// Held-out rooms and the instant they start from.
    pub test_rooms: usize,
    /// Start of the held-out part.
    pub test_from: i64,
    /// Moving-average window per series, chosen on the validation rooms.
    pub ma_windows: Vec<usize>,
    /// All held-out windows; those whose horizon covers a highlight start; the e-commerce
    /// rooms' windows whose horizon covers one (their orders and GMV are the sales).
    pub subsets: Vec<SubsetReport>,
    /// Next-c3 accuracy.
    pub next_c3: NextC3Report,
    /// Inference speed.
    pub timing: InferenceTiming,
}

/// The workspace's one quantile definition (nearest rank).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    liverank_types::stats::quantile_sorted(sorted, q)
}

fn subset_report(name: &str, sums: &Sums, windows: usize, seed: u64) -> SubsetReport {
    let rooms: Vec<usize> = (0..sums.count.len())
        .filter(|&r| sums.count[r] > 0.0)
        .collect();
    let count: f64 = rooms.iter().map(|&r| sums.count[r]).sum();
    let mut rng = SplitMix64::new(seed);
    let resamples: Vec<Vec<usize>> = (0..1000)
        .map(|_| {
            (0..rooms.len())
                .map(|_| rooms[rng.below(rooms.len())])
                .collect()
        })
        .collect();
    let mut groups: Vec<(String, Vec<usize>)> = vec![("all".into(), (0..SERIES).collect())];
    groups.extend((0..SERIES).map(|s| (STAT_SERIES[s].to_string(), vec![s])));
    let series = groups
        .into_iter()
        .map(|(label, set)| {
            let per = count * set.len() as f64;
            let mse: [f64; 4] = std::array::from_fn(|p| sums.total(&rooms, p, &set) / per.max(1.0));
            let mae: [f64; 4] = std::array::from_fn(|p| {
                rooms
                    .iter()
                    .map(|&r| set.iter().map(|&s| sums.sae[r][p][s]).sum::<f64>())
                    .sum::<f64>()
                    / per.max(1.0)
            });
            let base = if mse[1] <= mse[2] { 1 } else { 2 };
            let gain = 1.0 - mse[0] / mse[base];
            let mut gains: Vec<f64> = resamples
                .iter()
                .map(|rs| 1.0 - sums.total(rs, 0, &set) / sums.total(rs, base, &set))
                .filter(|g| g.is_finite())
                .collect();
            gains.sort_by(f64::total_cmp);
            SeriesReport {
                series: label,
                mse,
                mae,
                better_naive: PREDICTORS[base].into(),
                gain,
                gain_ci: (percentile(&gains, 0.025), percentile(&gains, 0.975)),
                gain_vs_linear: 1.0 - mse[0] / mse[3],
            }
        })
        .collect();
    SubsetReport {
        name: name.into(),
        windows,
        rooms: rooms.len(),
        series,
    }
}

fn choose_ma_windows(data: &ForecastData, windows: &[Window], l: usize, h: usize) -> Vec<usize> {
    let mut sse = vec![[0.0f64; MA_WINDOWS.len()]; SERIES];
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for w in windows {
        x.clear();
        y.clear();
        let room = &data.rooms[w.room];
        push_input(room, w.pos, l, &mut x);
        push_target(room, w.pos, h, &mut y);
        for s in 0..SERIES {
            for (k, &m) in MA_WINDOWS.iter().enumerate() {
                let f = moving_average(&x[s * l..(s + 1) * l], m);
                sse[s][k] += y[s * h..(s + 1) * h]
                    .iter()
                    .map(|&t| f64::from(t - f).powi(2))
                    .sum::<f64>();
            }
        }
    }
    sse.iter()
        .map(|e| {
            let best = (0..MA_WINDOWS.len())
                .min_by(|&a, &b| e[a].total_cmp(&e[b]))
                .unwrap_or(0);
            MA_WINDOWS[best]
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

/// Evaluates both models on the held-out rooms. `highlights`: each room's highlight start
/// instants (the simulator's truth; empty when not known, and then the highlight subsets
/// are empty).
pub fn evaluate_forecasters(
    data: &ForecastData,
    stat: &StatModel,
    product: &ProductModel,
    highlights: &HashMap<u64, Vec<i64>>,
    train_fraction: f64,
    seed: u64,
) -> Result<ForecastEval> {
    let config = stat.config();
    let (l, h) = (config.lookback, config.horizon);
    let split = split_rooms(data, train_fraction);
    let train_windows = windows_of(data, &split.train, config);
    let valid_windows = windows_of(data, &split.valid, config);
    let test_windows = windows_of(data, &split.test, config);
    if test_windows.is_empty() {
        return Err(TrainError::Input("no held-out window".into()));
    }
    let ma = choose_ma_windows(
        data,
        if valid_windows.is_empty() {
            &train_windows
        } else {
            &valid_windows
        },
        l,
        h,
    );
    let linear = SharedLinear::fit(data, &train_windows, l, h);
    let rooms = data.rooms.len();
    let mut subsets = [Sums::new(rooms), Sums::new(rooms), Sums::new(rooms)];
    let mut counts = [0usize; 3];
    let width = data.width;
    let covers_highlight = |w: &Window| {
        let room = &data.rooms[w.room];
        let from = room.first + w.pos as i64 * width;
        let to = from + h as i64 * width;
        highlights
            .get(&room.live)
            .is_some_and(|starts| starts.iter().any(|&s| s >= from && s < to))
    };
    let (mut x, mut y, mut f) = (Vec::new(), Vec::new(), vec![0.0f32; h]);
    for batch in test_windows.chunks(1024) {
        x.clear();
        y.clear();
        for w in batch {
            let room = &data.rooms[w.room];
            push_input(room, w.pos, l, &mut x);
            push_target(room, w.pos, h, &mut y);
        }
        let model = stat.forecast(&x, batch.len())?.forecast;
        for (i, w) in batch.iter().enumerate() {
            let room = &data.rooms[w.room];
            let highlight = covers_highlight(w);
            let ecommerce = room.author_type.as_deref() == Some("ecommerce");
            let member = [true, highlight, highlight && ecommerce];
            for (k, &m) in member.iter().enumerate() {
                if m {
                    counts[k] += 1;
                    subsets[k].count[w.room] += h as f64;
                }
            }
            for s in 0..SERIES {
                let xs = &x[(i * SERIES + s) * l..(i * SERIES + s + 1) * l];
                let ys = &y[(i * SERIES + s) * h..(i * SERIES + s + 1) * h];
                for p in 0..4 {
                    match p {
                        0 => f.copy_from_slice(
                            &model[(i * SERIES + s) * h..(i * SERIES + s + 1) * h],
                        ),
                        1 => f.fill(xs[l - 1]),
                        2 => f.fill(moving_average(xs, ma[s])),
                        _ => linear.predict(xs, &mut f),
                    }
                    let (mut se, mut ae) = (0.0, 0.0);
                    for (&t, &g) in ys.iter().zip(f.iter()) {
                        se += f64::from(t - g).powi(2);
                        ae += (f64::from(t).exp_m1() - f64::from(g).exp_m1()).abs();
                    }
                    for (k, &m) in member.iter().enumerate() {
                        if m {
                            subsets[k].sse[w.room][p][s] += se;
                            subsets[k].sae[w.room][p][s] += ae;
                        }
                    }
                }
            }
        }
    }
    let names = [
        "all held-out windows",
        "horizon covers a highlight start",
        "e-commerce rooms, horizon covers a highlight (sale) start",
    ];
    let subsets: Vec<SubsetReport> = (0..3)
        .map(|k| subset_report(names[k], &subsets[k], counts[k], seed + k as u64))
        .collect();

    let next_c3 = next_c3_report(data, &split, product)?;
    let timing = time_inference(data, stat, &test_windows)?;
    Ok(ForecastEval {
        test_rooms: split.test.len(),
        test_from: split.test_from,
        ma_windows: ma,
        subsets,
        next_c3,
        timing,
    })
}

fn next_c3_report(
    data: &ForecastData,
    split: &RoomSplit,
    product: &ProductModel,
) -> Result<NextC3Report> {
    let p = &product.config().product;
    let c3 = |s: &[u64; 4]| s[3] % p.c3_rows as u64;
    let mut markov: HashMap<u64, HashMap<u64, u32>> = HashMap::new();
    let mut popular: HashMap<u64, u32> = HashMap::new();
    for &r in &split.train {
        let seq = &data.rooms[r].products;
        for s in seq {
            *popular.entry(c3(s)).or_default() += 1;
        }
        for pair in seq.windows(2) {
            *markov
                .entry(c3(&pair[0]))
                .or_default()
                .entry(c3(&pair[1]))
                .or_default() += 1;
        }
    }
    let ranked = |counts: &HashMap<u64, u32>| -> Vec<u64> {
        let mut v: Vec<(u64, u32)> = counts.iter().map(|(&k, &c)| (k, c)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.into_iter().map(|(k, _)| k).collect()
    };
    let popular = ranked(&popular);
    let (mut positions, mut hits) = (0usize, [0usize; 4]);
    let mut prefixes: Vec<(&[[u64; 4]], u64)> = Vec::new();
    for &r in &split.test {
        let seq = &data.rooms[r].products;
        for i in 1..seq.len() {
            prefixes.push((&seq[i.saturating_sub(p.max_len)..i], c3(&seq[i])));
        }
    }
    for batch in prefixes.chunks(256) {
        let seqs: Vec<&[[u64; 4]]> = batch.iter().map(|(s, _)| *s).collect();
        let predicted = product.predict_next(&seqs)?;
        for ((prefix, target), next) in batch.iter().zip(predicted) {
            positions += 1;
            if let Some(next) = next {
                let mut idx: Vec<usize> = (0..next.probs.len()).collect();
                idx.sort_by(|&a, &b| next.probs[b].total_cmp(&next.probs[a]));
                let top: Vec<u64> = idx.iter().take(5).map(|&i| i as u64).collect();
                hits[0] += usize::from(top.first() == Some(target));
                hits[1] += usize::from(top.contains(target));
            }
            let last = prefix.last().map(c3);
            let mut guess: Vec<u64> = last
                .and_then(|c| markov.get(&c))
                .map(ranked)
                .unwrap_or_default();
            for &c in &popular {
                if guess.len() >= 5 {
                    break;
                }
                if !guess.contains(&c) {
                    guess.push(c);
                }
            }
            guess.truncate(5);
            hits[2] += usize::from(guess.first() == Some(target));
            hits[3] += usize::from(guess.contains(target));
        }
    }
    let share = |k: usize| hits[k] as f64 / positions.max(1) as f64;
    Ok(NextC3Report {
        positions,
        top1: share(0),
        top5: share(1),
        markov_top1: share(2),
        markov_top5: share(3),
    })
}

fn time_inference(
    data: &ForecastData,
    stat: &StatModel,
    windows: &[Window],
) -> Result<InferenceTiming> {
    let l = stat.config().lookback;
    // Rooms on air together: the most rooms with a bucket at one instant.
    let mut per_bucket: HashMap<i64, usize> = HashMap::new();
    for r in &data.rooms {
        for k in 0..r.buckets.len() {
            *per_bucket
                .entry(r.first + k as i64 * data.width)
                .or_default() += 1;
        }
    }
    let on_air = per_bucket.values().copied().max().unwrap_or(0).max(1);
    let mut x = Vec::new();
    for k in 0..on_air {
        let w = windows[k % windows.len()];
        push_input(&data.rooms[w.room], w.pos, l, &mut x);
    }
    let one = &x[..SERIES * l];
    let mut singles = Vec::new();
    for _ in 0..30 {
        let clock = Instant::now();
        stat.forecast(one, 1)?;
        singles.push(clock.elapsed().as_secs_f64());
    }
    let mut all = Vec::new();
    for _ in 0..5 {
        let clock = Instant::now();
        stat.forecast(&x, on_air)?;
        all.push(clock.elapsed().as_secs_f64());
    }
    Ok(InferenceTiming {
        per_room_s: median(singles),
        on_air_rooms: on_air,
        all_on_air_s: median(all),
    })
}

/// One held-out room's series over its broadcast, next to the forecaster's one-step-ahead
/// forecast of it (the first of the H buckets forecast from the L before), in raw counts:
/// what the forecast-vs-actual figure of `liverank forecast eval --plot` draws.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomTrace {
    /// Room id.
    pub live: u64,
    /// Streamer type, when known.
    pub author_type: Option<String>,
    /// Which series ([`STAT_SERIES`] index).
    pub series: usize,
    /// Minutes since the room's start of each bucket.
    pub minutes: Vec<f64>,
    /// The bucket's count; `None` where no sample revealed it.
    pub actual: Vec<Option<f64>>,
    /// The forecaster's one-step-ahead forecast; `None` where its window is not known.
    pub forecast: Vec<Option<f64>>,
    /// The last-value baseline for the same bucket.
    pub last_value: Vec<Option<f64>>,
}

/// Traces of up to `rooms` held-out rooms that have a highlight starting in their known
/// buckets (the longest broadcasts first, ties by room id), for series `series`.
pub fn forecast_traces(
    data: &ForecastData,
    stat: &StatModel,
    highlights: &HashMap<u64, Vec<i64>>,
    train_fraction: f64,
    series: usize,
    rooms: usize,
) -> Result<Vec<RoomTrace>> {
    if series >= SERIES {
        return Err(TrainError::Input(format!(
            "series {series}: there are {SERIES}"
        )));
    }
    let (l, h) = (stat.config().lookback, stat.config().horizon);
    let split = split_rooms(data, train_fraction);
    let width = data.width;
    let mut chosen: Vec<&RoomSeries> = split
        .test
        .iter()
        .map(|&i| &data.rooms[i])
        .filter(|r| {
            let to = r.first + r.buckets.len() as i64 * width;
            highlights
                .get(&r.live)
                .is_some_and(|s| s.iter().any(|&t| t >= r.first && t < to))
        })
        .collect();
    chosen.sort_by(|a, b| {
        b.buckets
            .len()
            .cmp(&a.buckets.len())
            .then(a.live.cmp(&b.live))
    });
    chosen.truncate(rooms);
    let mut out = Vec::with_capacity(chosen.len());
    for room in chosen {
        let n = room.buckets.len();
        let windows: Vec<usize> = (1..n)
            .filter(|&pos| {
                let from = pos.saturating_sub(l);
                room.known[from..=pos].iter().all(|&k| k)
            })
            .collect();
        let mut x = Vec::with_capacity(windows.len() * SERIES * l);
        for &pos in &windows {
            push_input(room, pos, l, &mut x);
        }
        let forecast = stat.forecast(&x, windows.len())?.forecast;
        let raw = |v: f32| f64::from(v).exp_m1().max(0.0);
        let mut trace = RoomTrace {
            live: room.live,
            author_type: room.author_type.clone(),
            series,
            minutes: (0..n)
                .map(|p| (room.first + p as i64 * width - room.start) as f64 / 60_000.0)
                .collect(),
            actual: (0..n)
                .map(|p| room.known[p].then(|| f64::from(room.buckets[p][series])))
                .collect(),
            forecast: vec![None; n],
            last_value: vec![None; n],
        };
        for (i, &pos) in windows.iter().enumerate() {
            trace.forecast[pos] = Some(raw(forecast[(i * SERIES + series) * h]));
            trace.last_value[pos] = Some(f64::from(room.buckets[pos - 1][series]));
        }
        out.push(trace);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_merge_on_their_longest_overlap() {
        let p = |c: u64| [c, 0, 0, c];
        let mut acc = Vec::new();
        merge_products(&mut acc, &[p(1), p(2)]);
        merge_products(&mut acc, &[p(1), p(2)]);
        merge_products(&mut acc, &[p(2), p(3), p(2)]);
        // A window that moved on by more than it holds: appended whole.
        merge_products(&mut acc, &[p(7)]);
        assert_eq!(acc, vec![p(1), p(2), p(3), p(2), p(7)]);
    }

    #[test]
    fn the_shared_linear_baseline_recovers_a_linear_rule() {
        // Every series alternates between two values, v_{t+1} = v_{t−1}: a linear rule
        // the least-squares map must find.
        let buckets: Vec<[u32; SERIES]> = (0..40)
            .map(|t| std::array::from_fn(|s| (s as u32 + 1) * 3 + (t % 2)))
            .collect();
        let room = RoomSeries {
            live: 1,
            author_type: None,
            start: 0,
            first: 0,
            known: vec![true; buckets.len()],
            buckets,
            products: Vec::new(),
        };
        let data = ForecastData {
            rooms: vec![room],
            width: 30_000,
            span: (0, 1),
            malformed: 0,
        };
        let (l, h) = (4, 2);
        let windows: Vec<Window> = room_windows(&data.rooms[0], 0, l, h)
            .into_iter()
            .filter(|w| w.pos >= l)
            .collect();
        let fit = SharedLinear::fit(&data, &windows, l, h);
        let mut x = Vec::new();
        push_input(&data.rooms[0], 10, l, &mut x);
        let mut y = Vec::new();
        push_target(&data.rooms[0], 10, h, &mut y);
        let mut f = vec![0.0; h];
        for s in 0..SERIES {
            fit.predict(&x[s * l..(s + 1) * l], &mut f);
            for (k, v) in f.iter().enumerate() {
                let want = y[s * h + k];
                assert!((v - want).abs() < 0.05, "{s} {k}: {v} vs {want}");
            }
        }
    }

    #[test]
    fn windows_skip_unknown_buckets_and_pad_young_rooms() {
        let mut room = RoomSeries {
            live: 1,
            author_type: None,
            start: 0,
            first: 0,
            buckets: vec![[1; SERIES]; 10],
            known: vec![true; 10],
            products: Vec::new(),
        };
        room.known[6] = false;
        let w: Vec<usize> = room_windows(&room, 0, 3, 2).iter().map(|w| w.pos).collect();
        // Position p needs known[p−3..p+2]: 1..=4 do; 5..=8 all touch bucket 6.
        assert_eq!(w, vec![1, 2, 3, 4]);
        let mut x = Vec::new();
        push_input(&room, 1, 3, &mut x);
        assert_eq!(&x[..3], &[0.0, 0.0, 2f32.ln()]);
    }

    #[test]
    fn traces_pick_held_out_rooms_with_highlights_and_forecast_one_bucket_ahead() {
        let width = 30_000;
        let room = |live: u64, start: i64, n: usize| RoomSeries {
            live,
            author_type: Some("ecommerce".into()),
            start,
            first: start + width,
            buckets: (0..n)
                .map(|t| std::array::from_fn(|s| (t * 3 + s) as u32 % 7))
                .collect(),
            known: (0..n).map(|t| t != 4).collect(),
            products: Vec::new(),
        };
        // Rooms 1 (trains), 2 and 3 (held out, from 750 s on); 4 is held out without a
        // highlight.
        let data = ForecastData {
            rooms: vec![
                room(1, 0, 12),
                room(2, 800_000, 9),
                room(3, 900_000, 12),
                room(4, 950_000, 20),
            ],
            width,
            span: (0, 1_000_000),
            malformed: 0,
        };
        let highlights =
            HashMap::from([(1, vec![60_000]), (2, vec![900_000]), (3, vec![1_000_000])]);
        let config = ForecastConfig {
            lookback: 3,
            horizon: 2,
            d_model: 8,
            heads: 2,
            layers: 1,
            ffn: 8,
            ..ForecastConfig::default()
        };
        let stat = StatTrainer::new(config, SERIES).unwrap().model().unwrap();
        let traces = forecast_traces(&data, &stat, &highlights, 0.75, ONLINE, 5).unwrap();
        // The longer held-out room first; room 1 trains, room 4 has no highlight.
        assert_eq!(
            traces.iter().map(|t| t.live).collect::<Vec<_>>(),
            vec![3, 2]
        );
        let t = &traces[0];
        let r = &data.rooms[2];
        assert_eq!(
            t.minutes[0], 0.5,
            "the first bucket starts 30 s after the start"
        );
        assert_eq!(t.actual[3], Some(f64::from(r.buckets[3][ONLINE])));
        assert_eq!(t.actual[4], None);
        // Position 0 has no input, 4 and 5 touch the unknown bucket 4 (as input or
        // target); position 7 reads buckets 4..7: unknown too; 8 reads 5..8.
        let with_forecast: Vec<usize> = (0..12).filter(|&p| t.forecast[p].is_some()).collect();
        assert_eq!(with_forecast, vec![1, 2, 3, 8, 9, 10, 11]);
        for &pos in &with_forecast {
            let mut x = Vec::new();
            push_input(r, pos, 3, &mut x);
            let f = stat.forecast(&x, 1).unwrap().forecast;
            let want = f64::from(f[ONLINE * 2]).exp_m1().max(0.0);
            assert!((t.forecast[pos].unwrap() - want).abs() < 1e-9, "{pos}");
            assert_eq!(
                t.last_value[pos],
                Some(f64::from(r.buckets[pos - 1][ONLINE]))
            );
        }
        assert!(forecast_traces(&data, &stat, &highlights, 0.75, SERIES, 1).is_err());
    }
}

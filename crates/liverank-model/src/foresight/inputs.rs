//! LiveForesighter's outputs as stop-gradient inputs of the ranker (issue 16 item 3; eq. 3
//! and 5 of `seeds/liveforesighter.md`).
//!
//! A [`Foresighter`] holds the frozen [`StatModel`] and [`ProductModel`] of a ranker
//! configuration ([`crate::config::ForesightInputs`]) and turns a sample's own feature
//! block into dense values, appended after the ranker's other dense inputs in this order:
//!
//! * **stat branch** (`N·H + N·D + 2` values): the forecast of the next H buckets of every
//!   series (log1p units, series-major), the encoder's series tokens (`N × D`), then two
//!   indicators: the room has at least one closed bucket (1/0) and the share of the
//!   lookback that is real, `min(buckets, L) / L`. The input window is the newest
//!   `L` buckets of `ExposureFeatures::stats`, `log1p` of the counts, series-major, oldest
//!   first, left-padded with zeros where the room is younger than L: exactly the transform
//!   and padding the forecaster was trained with (`liverank_train::forecast::push_input`).
//!   A room without any closed bucket is not forecast: zeros and indicator 0.
//! * **product branch** (`D_p + 1 + n_c3` values): E_prod, the product model's hidden state
//!   at the last product read (the position whose output predicts the next product), an
//!   indicator (the room has a product), and last `softmax(ĉ3)` over the c3 classes. The
//!   ranker's network multiplies that last block by its trainable C̃3 `[n_c3 × c3_dim]`
//!   ([`crate::network::RankerNet::c3_projection`]). A room without products gets zeros
//!   (so a zero C̃3 term) and indicator 0.
//!
//! Stop-gradient: the forecasters' outputs are plain numbers in the batch, the forecaster
//! weights are not parameters of the ranker and no optimiser of the ranker sees them.
//!
//! Rows of one room at one moment have the same inputs, so the outputs are cached per room
//! and input window (the room's last closed bucket determines both): a training pass over
//! many impressions, or a request with hundreds of candidates, forecasts each room once.
//! The cache is keyed by the room and a hash of the window and verified against the stored
//! window on a hit, so a cached result is always the one a fresh call would give
//! ([`Foresighter::prefetch`] forecasts a batch's misses in one call).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use liverank_types::{ExposureFeatures, STAT_SERIES};

use super::{ProductModel, StatModel};
use crate::config::ForesightInputs;
use crate::error::{ModelError, Result};

/// File of the statistic forecaster in a forecaster directory.
pub const STAT_FILE: &str = "forecaster.bin";
/// File of the product predictor in a forecaster directory.
pub const PRODUCT_FILE: &str = "product.bin";

/// The forecasters of a configuration, loaded at most once and shared by its clones.
#[derive(Clone, Default)]
pub struct Loaded(Arc<OnceLock<std::result::Result<Arc<Foresighter>, String>>>);

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Loaded(..)"
        } else {
            "Loaded(not yet)"
        })
    }
}

impl Loaded {
    /// Already loaded models (tests and benches that build them in memory).
    pub fn from_models(models: Foresighter) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(Ok(Arc::new(models)));
        Self(Arc::new(cell))
    }

    pub(crate) fn get(&self, spec: &ForesightInputs) -> Result<Arc<Foresighter>> {
        let loaded = self
            .0
            .get_or_init(|| {
                Foresighter::load(spec)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(ModelError::Config)?;
        let mismatch = |pinned: u32, actual: u32| pinned != 0 && pinned != actual;
        if (spec.stat && mismatch(spec.stat_crc, loaded.stat_crc))
            || (spec.product && mismatch(spec.product_crc, loaded.product_crc))
        {
            return Err(ModelError::Config(format!(
                "foresight: the forecasters in `{}` (crc {:08x}/{:08x}) are not the ones this \
                 model was trained with (crc {:08x}/{:08x})",
                spec.dir, loaded.stat_crc, loaded.product_crc, spec.stat_crc, spec.product_crc
            )));
        }
        if (spec.stat && loaded.stat.is_none()) || (spec.product && loaded.product.is_none()) {
            return Err(ModelError::Config(
                "foresight: a branch is on but its forecaster is not loaded".into(),
            ));
        }
        Ok(loaded)
    }
}

/// A room's forecaster outputs, as they enter the ranker's dense input.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomForesight {
    /// The stat branch's values (empty when the branch is off).
    pub stat: Vec<f32>,
    /// E_prod and the indicator (empty when the branch is off).
    pub product: Vec<f32>,
    /// `softmax(ĉ3)` (empty when the branch is off; zeros without products).
    pub probs: Vec<f32>,
}

/// Counters of the forecast cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Rows found in the cache (prefetched rooms included).
    pub hits: u64,
    /// Rows that had to be forecast.
    pub misses: u64,
    /// Rooms forecast (a prefetch forecasts a batch's distinct misses together).
    pub forecasts: u64,
    /// Forecasts that failed (the row got zeros and indicator 0).
    pub errors: u64,
}

impl CacheStats {
    /// Share of the rows asked that did not need a forecast of their own:
    /// `1 − forecasts / rows` (a prefetched room's first row counts as forecast).
    pub fn hit_rate(&self) -> f64 {
        let rows = self.hits + self.misses;
        if rows == 0 {
            0.0
        } else {
            1.0 - (self.forecasts.min(rows)) as f64 / rows as f64
        }
    }
}

struct Entry {
    window: Vec<u32>,
    products: Vec<[u64; 4]>,
    value: Arc<RoomForesight>,
}

/// The frozen forecasters of a ranker and their cache.
pub struct Foresighter {
    stat: Option<StatModel>,
    product: Option<ProductModel>,
    stat_crc: u32,
    product_crc: u32,
    capacity: usize,
    cache: Mutex<HashMap<(u64, u64), Entry>>,
    hits: AtomicU64,
    misses: AtomicU64,
    forecasts: AtomicU64,
    errors: AtomicU64,
}

impl std::fmt::Debug for Foresighter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Foresighter")
            .field("stat", &self.stat.is_some())
            .field("product", &self.product.is_some())
            .field("stat_crc", &self.stat_crc)
            .field("product_crc", &self.product_crc)
            .field("cache", &self.stats())
            .finish_non_exhaustive()
    }
}

/// CRC32 of a forecaster file's body: the file's own trailer is a CRC32 of what precedes
/// it, so a CRC32 over the whole file would be the same constant for every file.
pub fn file_crc(bytes: &[u8]) -> u32 {
    crc32fast::hash(&bytes[..bytes.len().saturating_sub(4)])
}

fn read(dir: &str, name: &str) -> Result<Vec<u8>> {
    let path = std::path::Path::new(dir).join(name);
    std::fs::read(&path).map_err(|source| ModelError::CheckpointIo { path, source })
}

impl Foresighter {
    /// The branches' models; `capacity` rooms' outputs are cached (0 = no cache). The
    /// statistic forecaster must read every series of the sample's statistics block.
    pub fn new(
        stat: Option<StatModel>,
        product: Option<ProductModel>,
        capacity: usize,
    ) -> Result<Self> {
        if let Some(s) = &stat
            && s.series() != STAT_SERIES.len()
        {
            return Err(ModelError::Config(format!(
                "foresight: the statistic forecaster reads {} series, samples carry {}",
                s.series(),
                STAT_SERIES.len()
            )));
        }
        let crc = |b: Option<Result<Vec<u8>>>| b.transpose().map(|b| b.map_or(0, |b| file_crc(&b)));
        let stat_crc = crc(stat.as_ref().map(StatModel::to_bytes))?;
        let product_crc = crc(product.as_ref().map(ProductModel::to_bytes))?;
        Ok(Self {
            stat,
            product,
            stat_crc,
            product_crc,
            capacity,
            cache: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            forecasts: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    /// Loads the models of the branches `spec` turns on from `spec.dir`.
    pub fn load(spec: &ForesightInputs) -> Result<Self> {
        let (mut stat, mut stat_crc) = (None, 0);
        if spec.stat {
            let bytes = read(&spec.dir, STAT_FILE)?;
            stat = Some(StatModel::from_bytes(&bytes)?);
            stat_crc = file_crc(&bytes);
        }
        let (mut product, mut product_crc) = (None, 0);
        if spec.product {
            let bytes = read(&spec.dir, PRODUCT_FILE)?;
            product = Some(ProductModel::from_bytes(&bytes)?);
            product_crc = file_crc(&bytes);
        }
        let mut out = Self::new(stat, product, spec.cache_entries)?;
        // The checksums of the files themselves (what a published model pins).
        (out.stat_crc, out.product_crc) = (stat_crc, product_crc);
        Ok(out)
    }

    /// CRC32 of the statistic forecaster's file bytes (0 without it).
    pub fn stat_crc(&self) -> u32 {
        self.stat_crc
    }

    /// CRC32 of the product predictor's file bytes (0 without it).
    pub fn product_crc(&self) -> u32 {
        self.product_crc
    }

    /// The statistic forecaster.
    pub fn stat_model(&self) -> Option<&StatModel> {
        self.stat.as_ref()
    }

    /// The product predictor.
    pub fn product_model(&self) -> Option<&ProductModel> {
        self.product.as_ref()
    }

    /// Classes of the product model's softmax (0 without it).
    pub fn c3_rows(&self) -> usize {
        self.product
            .as_ref()
            .map_or(0, |p| p.config().product.c3_rows)
    }

    /// Width of the stat branch (0 without it).
    pub fn stat_width(&self) -> usize {
        self.stat.as_ref().map_or(0, |s| {
            let c = s.config();
            s.series() * (c.horizon + c.d_model) + 2
        })
    }

    /// Values of the stat branch that are the encoder's series tokens, and where they
    /// start (after the forecast); `(0, 0)` without the forecaster.
    pub fn stat_tokens(&self) -> (usize, usize) {
        self.stat.as_ref().map_or((0, 0), |s| {
            let c = s.config();
            (s.series() * c.horizon, s.series() * c.d_model)
        })
    }

    /// Width of E_prod and its indicator (0 without the product model).
    pub fn product_width(&self) -> usize {
        self.product
            .as_ref()
            .map_or(0, |p| p.config().product.d_model + 1)
    }

    /// Cache counters so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            forecasts: self.forecasts.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }

    /// The raw statistics the stat branch reads (the newest `min(buckets, L)` buckets,
    /// bucket-major as in the sample) and the buckets the room has.
    fn window<'a>(&self, f: &'a ExposureFeatures) -> (&'a [u32], usize) {
        let Some(stat) = &self.stat else {
            return (&[], 0);
        };
        let n = STAT_SERIES.len();
        let have = (f.stats_len as usize).min(f.stats.len() / n);
        let used = have.min(stat.config().lookback);
        (&f.stats[(have - used) * n..have * n], have)
    }

    /// The products the product branch reads (the newest `max_len`).
    fn products<'a>(&self, f: &'a ExposureFeatures) -> &'a [[u64; 4]] {
        let Some(p) = &self.product else {
            return &[];
        };
        let take = f.products.len().min(p.config().product.max_len);
        &f.products[f.products.len() - take..]
    }

    /// The `[N, L]` model input of a window (log1p, series-major, oldest first,
    /// left-padded with zeros) — the forecaster training's transform.
    pub fn stat_input(&self, f: &ExposureFeatures) -> Vec<f32> {
        let Some(stat) = &self.stat else {
            return Vec::new();
        };
        let (window, _) = self.window(f);
        let (n, l) = (STAT_SERIES.len(), stat.config().lookback);
        let used = window.len() / n;
        let mut out = Vec::with_capacity(n * l);
        for s in 0..n {
            for k in 0..l {
                out.push(if k < l - used {
                    0.0
                } else {
                    (f64::from(window[(k - (l - used)) * n + s]).ln_1p()) as f32
                });
            }
        }
        out
    }

    fn key(&self, live: u64, f: &ExposureFeatures) -> (u64, u64) {
        let (window, have) = self.window(f);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |v: u64| {
            h ^= v;
            h = h.wrapping_mul(0x0100_0000_01b3);
        };
        mix(have.min(1 << 20) as u64);
        window.iter().for_each(|&v| mix(u64::from(v)));
        for p in self.products(f) {
            p.iter().for_each(|&v| mix(v));
        }
        (live, h)
    }

    /// Forecasts rooms without the cache, all in one batch per model.
    pub fn compute(&self, rows: &[&ExposureFeatures]) -> Result<Vec<RoomForesight>> {
        let mut out: Vec<RoomForesight> = rows
            .iter()
            .map(|_| RoomForesight {
                stat: Vec::new(),
                product: Vec::new(),
                probs: Vec::new(),
            })
            .collect();
        if rows.is_empty() {
            return Ok(out);
        }
        if let Some(stat) = &self.stat {
            let c = stat.config();
            let (n, h, d, l) = (STAT_SERIES.len(), c.horizon, c.d_model, c.lookback);
            let width = self.stat_width();
            let live: Vec<usize> = (0..rows.len())
                .filter(|&i| self.window(rows[i]).1 > 0)
                .collect();
            let mut inputs = Vec::with_capacity(live.len() * n * l);
            for &i in &live {
                inputs.extend(self.stat_input(rows[i]));
            }
            let result = stat.forecast(&inputs, live.len())?;
            for o in out.iter_mut() {
                o.stat = vec![0.0; width];
            }
            for (j, &i) in live.iter().enumerate() {
                let have = self.window(rows[i]).1;
                let o = &mut out[i].stat;
                o[..n * h].copy_from_slice(&result.forecast[j * n * h..(j + 1) * n * h]);
                o[n * h..n * (h + d)].copy_from_slice(&result.encoded[j * n * d..(j + 1) * n * d]);
                o[n * (h + d)] = 1.0;
                o[n * (h + d) + 1] = have.min(l) as f32 / l as f32;
            }
        }
        if let Some(product) = &self.product {
            let d = product.config().product.d_model;
            let classes = self.c3_rows();
            let sequences: Vec<&[[u64; 4]]> = rows.iter().map(|f| self.products(f)).collect();
            let next = product.predict_last(&sequences)?;
            for (o, p) in out.iter_mut().zip(next) {
                o.product = vec![0.0; d + 1];
                o.probs = vec![0.0; classes];
                if let Some(p) = p {
                    o.product[..d].copy_from_slice(&p.encoded);
                    o.product[d] = 1.0;
                    o.probs.copy_from_slice(&p.probs);
                }
            }
        }
        self.forecasts
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
        Ok(out)
    }

    fn lookup(&self, key: (u64, u64), f: &ExposureFeatures) -> Option<Arc<RoomForesight>> {
        let cache = self.cache.lock().ok()?;
        let e = cache.get(&key)?;
        (e.window == self.window(f).0 && e.products == self.products(f)).then(|| e.value.clone())
    }

    fn insert(&self, key: (u64, u64), f: &ExposureFeatures, value: Arc<RoomForesight>) {
        if self.capacity == 0 {
            return;
        }
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= self.capacity {
                // Dropping everything keeps the bound simple; results do not depend on it.
                cache.clear();
            }
            cache.insert(
                key,
                Entry {
                    window: self.window(f).0.to_vec(),
                    products: self.products(f).to_vec(),
                    value,
                },
            );
        }
    }

    /// Forecasts, in one batch, the rooms of these rows that are not cached yet (each
    /// distinct room window once); rows asked later are then hits.
    pub fn prefetch(&self, rows: &[(u64, &ExposureFeatures)]) -> Result<()> {
        if self.capacity == 0 {
            return Ok(());
        }
        let mut seen = std::collections::HashSet::new();
        let mut todo: Vec<((u64, u64), &ExposureFeatures)> = Vec::new();
        for &(live, f) in rows {
            let key = self.key(live, f);
            if seen.insert(key) && self.lookup(key, f).is_none() {
                todo.push((key, f));
            }
        }
        let feats: Vec<&ExposureFeatures> = todo.iter().map(|t| t.1).collect();
        for ((key, f), value) in todo.iter().zip(self.compute(&feats)?) {
            self.insert(*key, f, Arc::new(value));
        }
        Ok(())
    }

    /// A room's outputs for a row of room `live` with feature block `f`: from the cache or
    /// forecast now. A failed forecast gives the masked row (zeros, indicators 0) and is
    /// counted in [`CacheStats::errors`].
    pub fn room(&self, live: u64, f: &ExposureFeatures) -> Arc<RoomForesight> {
        let key = self.key(live, f);
        if let Some(v) = self.lookup(key, f) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return v;
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let value = match self.compute(&[f]) {
            Ok(mut v) => Arc::new(v.remove(0)),
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                Arc::new(RoomForesight {
                    stat: vec![0.0; self.stat_width()],
                    product: vec![0.0; self.product_width()],
                    probs: vec![0.0; self.c3_rows()],
                })
            }
        };
        self.insert(key, f, value.clone());
        value
    }
}

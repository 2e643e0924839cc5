//! Training steps, frozen inference models and model files of the two forecasters.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::config::ForecastConfig;
use super::product::{ProductIndex, ProductNet};
use super::stat::StatForecaster;
use crate::error::{ModelError, Result};

fn to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| ModelError::Shape(format!("tensor data: {e:?}")))
}

fn shape_err(what: &str, got: usize, want: usize) -> ModelError {
    ModelError::Shape(format!("{what}: {got} values, expected {want}"))
}

fn lost() -> ModelError {
    ModelError::Shape("the forecaster was lost by a failed step".into())
}

/// The statistic forecaster in training: MSE on the next H buckets (eq. 2), Adam.
pub struct StatTrainer {
    config: ForecastConfig,
    series: usize,
    device: Device,
    net: Option<StatForecaster>,
    optimizer: ModuleOptimizer,
    steps: u64,
}

impl std::fmt::Debug for StatTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatTrainer")
            .field("series", &self.series)
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

impl StatTrainer {
    /// A fresh seeded model over `series` series.
    pub fn new(config: ForecastConfig, series: usize) -> Result<Self> {
        config.validate()?;
        if series == 0 {
            return Err(ModelError::Config("forecast: no series".into()));
        }
        let device = Device::flex().autodiff();
        let net = StatForecaster::new(&config, series, &device);
        Ok(Self {
            config,
            series,
            device,
            net: Some(net),
            optimizer: AdamConfig::new().with_epsilon(1e-8).init(),
            steps: 0,
        })
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One Adam step on `batch` windows: `inputs` `[B, N, L]` and `targets` `[B, N, H]`,
    /// row-major. Returns the batch's MSE.
    pub fn train_step(&mut self, inputs: &[f32], targets: &[f32], batch: usize) -> Result<f32> {
        let (n, l, h) = (self.series, self.config.lookback, self.config.horizon);
        if inputs.len() != batch * n * l {
            return Err(shape_err("forecast inputs", inputs.len(), batch * n * l));
        }
        if targets.len() != batch * n * h {
            return Err(shape_err("forecast targets", targets.len(), batch * n * h));
        }
        let x = Tensor::from_data(
            TensorData::new(inputs.to_vec(), [batch, n, l]),
            &self.device,
        );
        let y = Tensor::from_data(
            TensorData::new(targets.to_vec(), [batch, n, h]),
            &self.device,
        );
        let net = self.net.take().ok_or_else(lost)?;
        let out = net.forward(x);
        let loss = (out.forecast - y).powf_scalar(2.0).mean();
        let value = to_vec(loss.clone())?.first().copied().unwrap_or(f32::NAN);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        self.net = Some(self.optimizer.step(self.config.learning_rate, net, grads));
        self.steps += 1;
        Ok(value)
    }

    /// The model for inference (no autodiff).
    pub fn model(&self) -> Result<StatModel> {
        Ok(StatModel {
            config: self.config.clone(),
            series: self.series,
            net: self.net.as_ref().ok_or_else(lost)?.valid(),
            device: Device::flex(),
        })
    }
}

/// A trained statistic forecaster for inference.
#[derive(Debug, Clone)]
pub struct StatModel {
    config: ForecastConfig,
    series: usize,
    net: StatForecaster,
    device: Device,
}

/// Forecasts of a batch of windows.
#[derive(Clone, Debug, PartialEq)]
pub struct StatForecast {
    /// `[B, N, H]` row-major, in the model's input units.
    pub forecast: Vec<f32>,
    /// `[B, N, D]` row-major: the encoder's series tokens.
    pub encoded: Vec<f32>,
}

impl StatModel {
    /// The configuration.
    pub fn config(&self) -> &ForecastConfig {
        &self.config
    }

    /// Series per window.
    pub fn series(&self) -> usize {
        self.series
    }

    /// Forecasts `batch` windows `[B, N, L]` (row-major, oldest bucket first).
    pub fn forecast(&self, inputs: &[f32], batch: usize) -> Result<StatForecast> {
        let (n, l) = (self.series, self.config.lookback);
        if inputs.len() != batch * n * l {
            return Err(shape_err("forecast inputs", inputs.len(), batch * n * l));
        }
        if batch == 0 {
            return Ok(StatForecast {
                forecast: Vec::new(),
                encoded: Vec::new(),
            });
        }
        let x = Tensor::from_data(
            TensorData::new(inputs.to_vec(), [batch, n, l]),
            &self.device,
        );
        let out = self.net.forward(x);
        Ok(StatForecast {
            forecast: to_vec(out.forecast)?,
            encoded: to_vec(out.encoded)?,
        })
    }

    /// Serialises the model: see [`write_sections`].
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let net = record_bytes(self.net.clone())?;
        let config = serde_json::to_vec(&self.config).map_err(|e| file_err(&e.to_string()))?;
        Ok(write_sections(
            STAT_MAGIC,
            &[&config, &(self.series as u64).to_le_bytes(), &net],
        ))
    }

    /// Restores [`StatModel::to_bytes`]; a damaged or foreign buffer is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let s = read_sections(STAT_MAGIC, bytes, 3)?;
        let config: ForecastConfig =
            serde_json::from_slice(s[0]).map_err(|e| file_err(&format!("config: {e}")))?;
        config.validate()?;
        let series = u64::from_le_bytes(
            s[1].try_into()
                .map_err(|_| file_err("bad series section"))?,
        ) as usize;
        let device = Device::flex();
        let net = StatForecaster::new(&config, series, &device);
        let net = load_record(net, s[2])?;
        Ok(Self {
            config,
            series,
            net,
            device,
        })
    }
}

/// The product predictor in training: cross-entropy of every position's next c3 (eq. 4).
pub struct ProductTrainer {
    config: ForecastConfig,
    device: Device,
    net: Option<ProductNet>,
    optimizer: ModuleOptimizer,
    steps: u64,
}

impl std::fmt::Debug for ProductTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductTrainer")
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

/// Right-pads sequences (each cut to its newest `max_len` steps) into one `[B·T]` block;
/// returns the block, T and each sequence's length.
fn pad(sequences: &[&[[u64; 4]]], max_len: usize) -> (Vec<[u64; 4]>, usize, Vec<usize>) {
    let lens: Vec<usize> = sequences.iter().map(|s| s.len().min(max_len)).collect();
    let t = lens.iter().copied().max().unwrap_or(0).max(1);
    let mut steps = Vec::with_capacity(sequences.len() * t);
    for (s, &len) in sequences.iter().zip(&lens) {
        steps.extend_from_slice(&s[s.len() - len..]);
        steps.extend(std::iter::repeat_n([0; 4], t - len));
    }
    (steps, t, lens)
}

impl ProductTrainer {
    /// A fresh seeded model.
    pub fn new(config: ForecastConfig) -> Result<Self> {
        config.validate()?;
        let device = Device::flex().autodiff();
        let net = ProductNet::new(&config.product, config.seed, &device);
        Ok(Self {
            config,
            device,
            net: Some(net),
            optimizer: AdamConfig::new().with_epsilon(1e-8).init(),
            steps: 0,
        })
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One Adam step on product sequences (each at most `max_len + 1` long is used: the
    /// newest `max_len + 1`); every position but the last predicts the next one's c3.
    /// Returns the mean cross-entropy over predicted positions (`None` if none had a next).
    pub fn train_step(&mut self, sequences: &[&[[u64; 4]]]) -> Result<Option<f32>> {
        let p = &self.config.product;
        let (steps, t, lens) = pad(sequences, p.max_len + 1);
        let inputs_t = t - 1;
        if inputs_t == 0 {
            return Ok(None);
        }
        let b = sequences.len();
        let mut input = Vec::with_capacity(b * inputs_t);
        let (mut targets, mut weights) = (Vec::with_capacity(b * inputs_t), Vec::new());
        for (row, &len) in lens.iter().enumerate() {
            for k in 0..inputs_t {
                input.push(steps[row * t + k]);
                let has_next = k + 1 < len;
                targets.push((steps[row * t + k + 1][3] % p.c3_rows as u64) as i64);
                weights.push(if has_next { 1.0f32 } else { 0.0 });
            }
        }
        let count: f32 = weights.iter().sum();
        if count == 0.0 {
            return Ok(None);
        }
        let index = ProductIndex::new(&input, b, inputs_t, p, &self.device);
        let target =
            Tensor::<2, Int>::from_data(TensorData::new(targets, [b * inputs_t, 1]), &self.device);
        let weight =
            Tensor::<2>::from_data(TensorData::new(weights, [b * inputs_t, 1]), &self.device);
        let net = self.net.take().ok_or_else(lost)?;
        let out = net.forward(&index);
        let classes = out.logits.dims()[2];
        let logp = log_softmax(out.logits.reshape([b * inputs_t, classes]), 1);
        let loss = (logp.gather(1, target) * weight)
            .sum()
            .mul_scalar(-1.0 / f64::from(count));
        let value = to_vec(loss.clone())?.first().copied().unwrap_or(f32::NAN);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        self.net = Some(self.optimizer.step(p.learning_rate, net, grads));
        self.steps += 1;
        Ok(Some(value))
    }

    /// The model for inference.
    pub fn model(&self) -> Result<ProductModel> {
        Ok(ProductModel {
            config: self.config.clone(),
            net: self.net.as_ref().ok_or_else(lost)?.valid(),
            device: Device::flex(),
        })
    }
}

/// A trained product predictor for inference.
#[derive(Debug, Clone)]
pub struct ProductModel {
    config: ForecastConfig,
    net: ProductNet,
    device: Device,
}

/// The next-product prediction of one room (eq. 5).
#[derive(Clone, Debug, PartialEq)]
pub struct NextProduct {
    /// `softmax(ĉ3)` over the c3 classes.
    pub probs: Vec<f32>,
    /// `[T, D]` row-major encoder outputs of the steps read (T = the sequence's length).
    pub encoded: Vec<f32>,
}

impl ProductModel {
    /// The configuration.
    pub fn config(&self) -> &ForecastConfig {
        &self.config
    }

    /// The c3 distribution of the product after the latest of each sequence (its newest
    /// `max_len` steps are read); an empty sequence gets `None`.
    pub fn predict_next(&self, sequences: &[&[[u64; 4]]]) -> Result<Vec<Option<NextProduct>>> {
        let p = &self.config.product;
        let (steps, t, lens) = pad(sequences, p.max_len);
        if sequences.is_empty() {
            return Ok(Vec::new());
        }
        let b = sequences.len();
        let index = ProductIndex::new(&steps, b, t, p, &self.device);
        let out = self.net.forward(&index);
        let classes = out.logits.dims()[2];
        let d = out.encoded.dims()[2];
        let probs = to_vec(softmax(out.logits, 2))?;
        let encoded = to_vec(out.encoded)?;
        Ok(lens
            .iter()
            .enumerate()
            .map(|(row, &len)| {
                (len > 0).then(|| {
                    let at = row * t + len - 1;
                    NextProduct {
                        probs: probs[at * classes..(at + 1) * classes].to_vec(),
                        encoded: encoded[row * t * d..(row * t + len) * d].to_vec(),
                    }
                })
            })
            .collect())
    }

    /// [`ProductModel::predict_next`] with the head run at each sequence's last product
    /// only (the ranker's product branch): `encoded` holds that product's `[D]` hidden
    /// state. Same values up to float rounding, a `T`-th of the head's work.
    pub fn predict_last(&self, sequences: &[&[[u64; 4]]]) -> Result<Vec<Option<NextProduct>>> {
        let p = &self.config.product;
        if sequences.is_empty() {
            return Ok(Vec::new());
        }
        let (steps, t, lens) = pad(sequences, p.max_len);
        let b = sequences.len();
        let index = ProductIndex::new(&steps, b, t, p, &self.device);
        let encoded = self.net.encode_embedded(self.net.embed(&index));
        let d = encoded.dims()[2];
        let at: Vec<i64> = lens
            .iter()
            .enumerate()
            .map(|(row, &len)| (row * t + len.max(1) - 1) as i64)
            .collect();
        let at = Tensor::<1, Int>::from_data(TensorData::new(at, [b]), &self.device);
        let last = encoded.reshape([b * t, d]).select(0, at);
        let probs = to_vec(softmax(self.net.head.forward(last.clone()), 1))?;
        let last = to_vec(last)?;
        let classes = probs.len() / b;
        Ok(lens
            .iter()
            .enumerate()
            .map(|(row, &len)| {
                (len > 0).then(|| NextProduct {
                    probs: probs[row * classes..(row + 1) * classes].to_vec(),
                    encoded: last[row * d..(row + 1) * d].to_vec(),
                })
            })
            .collect())
    }

    /// Serialises the model: see [`write_sections`].
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let net = record_bytes(self.net.clone())?;
        let config = serde_json::to_vec(&self.config).map_err(|e| file_err(&e.to_string()))?;
        Ok(write_sections(PRODUCT_MAGIC, &[&config, &net]))
    }

    /// Restores [`ProductModel::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let s = read_sections(PRODUCT_MAGIC, bytes, 2)?;
        let config: ForecastConfig =
            serde_json::from_slice(s[0]).map_err(|e| file_err(&format!("config: {e}")))?;
        config.validate()?;
        let device = Device::flex();
        let net = ProductNet::new(&config.product, config.seed, &device);
        let net = load_record(net, s[1])?;
        Ok(Self {
            config,
            net,
            device,
        })
    }
}

/// First bytes of a statistic forecaster file.
pub const STAT_MAGIC: &[u8; 8] = b"LRSTATF\0";
/// First bytes of a product predictor file.
pub const PRODUCT_MAGIC: &[u8; 8] = b"LRPRODF\0";

fn file_err(reason: &str) -> ModelError {
    ModelError::Checkpoint {
        path: "<memory>".into(),
        reason: reason.into(),
    }
}

fn record_bytes<M: Module>(net: M) -> Result<Vec<u8>> {
    net.into_record()
        .into_bytes()
        .map(|b| b.to_vec())
        .map_err(|e| file_err(&format!("network: {e:?}")))
}

fn load_record<M: Module>(net: M, bytes: &[u8]) -> Result<M> {
    let record =
        burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes.to_vec()))
            .map_err(|e| file_err(&format!("network: {e:?}")))?;
    net.try_load_record(record)
        .map_err(|e| file_err(&format!("network: {e:?}")))
}

/// Layout: magic (8 bytes), then length-prefixed (u64 LE) sections, then a CRC32 of all
/// preceding bytes.
fn write_sections(magic: &[u8; 8], sections: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sections.iter().map(|s| s.len() + 8).sum::<usize>() + 12);
    out.extend_from_slice(magic);
    for s in sections {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn read_sections<'a>(magic: &[u8; 8], bytes: &'a [u8], count: usize) -> Result<Vec<&'a [u8]>> {
    if bytes.len() < 12 || &bytes[..8] != magic {
        return Err(file_err("not a liverank forecaster file (bad magic)"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err(file_err(
            "checksum mismatch: the file is damaged or truncated",
        ));
    }
    let mut at = 8;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len = body
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(|b: [u8; 8]| u64::from_le_bytes(b) as usize)
            .ok_or_else(|| file_err("truncated section header"))?;
        let section = body
            .get(at + 8..at + 8 + len)
            .ok_or_else(|| file_err("truncated section"))?;
        out.push(section);
        at += 8 + len;
    }
    Ok(out)
}

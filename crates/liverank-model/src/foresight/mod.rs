//! LiveForesighter (`seeds/liveforesighter.md` eq. 1–5, SPEC §5): forecasts where each room
//! is heading and which product it puts on sale next.
//!
//! * [`stat`]: the statistic forecaster, RevIN → iTransformer (one token per series'
//!   lookback window, attention across series) → `Linear(D→H)` → de-RevIN, trained with MSE
//!   on the next H buckets (eq. 2). The caller chooses the input transform; liverank-train
//!   feeds `log1p` of the 30 s counts (see `liverank_train::forecast`).
//! * [`product`]: embeddings P, C1, C2, C3 per product step → causal Transformer → softmax
//!   over the c3 of the next product, cross-entropy (eq. 4); at inference the product after
//!   the latest (eq. 5).
//! * [`train`]: Adam training steps, frozen inference models and their model files.
//! * [`inputs`]: the frozen models' outputs as the ranker's stop-gradient dense inputs,
//!   cached per room and window.
//!
//! Both models are small dense burn modules on the flex backend; they are trained on their
//! own and enter the ranker only as stop-gradient inputs.

pub mod config;
pub mod inputs;
pub mod layers;
pub mod product;
pub mod stat;
pub mod train;

pub use config::{ForecastConfig, ProductConfig};
pub use inputs::{CacheStats, Foresighter, Loaded, RoomForesight};
pub use train::{NextProduct, ProductModel, ProductTrainer, StatForecast, StatModel, StatTrainer};

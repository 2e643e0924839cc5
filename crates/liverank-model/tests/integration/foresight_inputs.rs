//! LiveForesighter's outputs as the ranker's stop-gradient inputs (issue 16 item 3): the
//! stat branch against an independent forecast of the same window, the product term
//! against a naive softmax·matrix sum, stop-gradient (the forecasters do not move, C̃3
//! does), finite differences of C̃3 through the whole network, the cache against no cache,
//! masking, and the checksum that ties a model to its forecasters.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::sync::Arc;

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use liverank_model::config::ForesightInputs;
use liverank_model::foresight::{
    ForecastConfig, Foresighter, Loaded, ProductConfig, ProductTrainer, StatTrainer,
};
use liverank_model::network::RankerNet;
use liverank_model::rng::SplitMix64;
use liverank_model::{FeatureBuilder, RankerConfig, Trainer};
use liverank_types::{
    AuthorId, CategoryId, EventTime, ExposureFeatures, LabelMask, LiveId, Policy, RequestId,
    STAT_SERIES, Sample, SampleKind, Task, UserId,
};

const N: usize = STAT_SERIES.len();

fn forecast_config() -> ForecastConfig {
    ForecastConfig {
        lookback: 4,
        horizon: 2,
        d_model: 8,
        heads: 2,
        layers: 1,
        ffn: 16,
        seed: 3,
        product: ProductConfig {
            product_rows: 64,
            c1_rows: 8,
            c2_rows: 16,
            c3_rows: 12,
            embed_dim: 4,
            d_model: 8,
            heads: 2,
            layers: 1,
            ffn: 16,
            max_len: 5,
            ..ProductConfig::default()
        },
        ..ForecastConfig::default()
    }
}

/// Forecasters trained a few steps (so they are not at their initialisation).
fn models(capacity: usize) -> Foresighter {
    let config = forecast_config();
    let mut stat = StatTrainer::new(config.clone(), N).unwrap();
    let mut rng = SplitMix64::new(5);
    for _ in 0..3 {
        let x: Vec<f32> = (0..2 * N * 4).map(|_| rng.uniform(2.0).abs()).collect();
        let y: Vec<f32> = (0..2 * N * 2).map(|_| rng.uniform(2.0).abs()).collect();
        stat.train_step(&x, &y, 2).unwrap();
    }
    let mut product = ProductTrainer::new(config).unwrap();
    let seq: Vec<[u64; 4]> = (0..6).map(|i| [i, i % 8, i % 16, i % 12]).collect();
    for _ in 0..3 {
        product.train_step(&[&seq]).unwrap();
    }
    Foresighter::new(
        Some(stat.model().unwrap()),
        Some(product.model().unwrap()),
        capacity,
    )
    .unwrap()
}

fn ranker(stat: bool, product: bool, models: Foresighter) -> RankerConfig {
    let c3_rows = models.c3_rows();
    RankerConfig {
        tasks: vec![Task::Click, Task::Purchase],
        embedding_dim: 4,
        hidden: vec![16],
        tower_hidden: vec![],
        stat_lookback: 2,
        product_seq_len: 2,
        history_sequences: vec![],
        history_profile: false,
        learning_rate: 1e-2,
        foresight: ForesightInputs {
            stat,
            product,
            c3_dim: 3,
            dir: "<memory>".into(),
            c3_rows,
            loaded: Loaded::from_models(models),
            ..ForesightInputs::default()
        },
        ..RankerConfig::default()
    }
}

/// A room `live` with `buckets` closed buckets (values from `salt`) and `products`.
fn sample(live: u64, user: u64, buckets: usize, salt: u32, products: usize) -> Sample {
    let stats: Vec<u32> = (0..buckets * N)
        .map(|i| (i as u32 * 7 + salt) % 23)
        .collect();
    let products = (0..products as u64)
        .map(|i| [i + live, (i + 1) % 8, (i + 2) % 16, (i * 5 + live) % 12])
        .collect();
    Sample {
        sample_id: live * 100 + user,
        policy: Policy::Complete,
        kind: SampleKind::Close,
        seq: 0,
        ts: EventTime(10_000),
        request_id: RequestId(user),
        live: LiveId(live),
        user: UserId(user),
        author: Some(AuthorId(9)),
        exposure_ts: EventTime(5_000),
        category: Some(CategoryId(5)),
        labels: LabelMask::default(),
        features: Arc::new(ExposureFeatures {
            stats,
            stats_len: buckets as u32,
            products,
            ..ExposureFeatures::default()
        }),
    }
}

/// The dense inputs the ranker had before LiveForesighter (and has with both branches off).
fn base_dense(config: &RankerConfig) -> usize {
    FeatureBuilder::new(&RankerConfig {
        foresight: ForesightInputs::default(),
        ..config.clone()
    })
    .dense_dim()
}

#[test]
fn stat_branch_equals_an_independent_forecast_of_the_window() {
    let config = ranker(true, false, models(0));
    let builder = FeatureBuilder::new(&config);
    let f = builder.foresighter().unwrap();
    let stat = f.stat_model().unwrap();
    let (h, d, l) = (2, 8, 4);
    assert_eq!(builder.dense_dim(), base_dense(&config) + N * (h + d) + 2);
    // 6 buckets (the newest 4 read), 2 (left-padded with two zero buckets), none (masked).
    let samples = [
        sample(1, 1, 6, 3, 0),
        sample(2, 1, 2, 5, 0),
        sample(3, 1, 0, 0, 0),
    ];
    let batch = builder.build(&samples);
    batch.check().unwrap();
    let at = base_dense(&config);
    for (r, s) in samples.iter().enumerate() {
        let row = &batch.dense[r * batch.dense_dim + at..(r + 1) * batch.dense_dim];
        let buckets = s.features.stats_len as usize;
        if buckets == 0 {
            assert!(
                row.iter().all(|&v| v == 0.0),
                "a room without buckets is masked"
            );
            continue;
        }
        // The window by hand: log1p of the newest min(buckets, L) buckets, series-major,
        // oldest first, zeros before the room's first bucket.
        let mut window = vec![0.0f32; N * l];
        let used = buckets.min(l);
        for series in 0..N {
            for k in 0..used {
                let bucket = buckets - used + k;
                let v = s.features.stats[bucket * N + series];
                window[series * l + (l - used) + k] = (v as f32).ln_1p();
            }
        }
        let want = stat.forecast(&window, 1).unwrap();
        for (g, w) in row[..N * h].iter().zip(&want.forecast) {
            assert!((g - w).abs() < 1e-5, "forecast {g} vs {w}");
        }
        for (g, w) in row[N * h..N * (h + d)].iter().zip(&want.encoded) {
            assert!((g - w).abs() < 1e-5, "encoded {g} vs {w}");
        }
        assert_eq!(row[N * (h + d)], 1.0);
        assert_eq!(row[N * (h + d) + 1], used as f32 / l as f32);
    }

    // Without the encoder tokens: the forecast and the indicators, the same values.
    let short = FeatureBuilder::new(&RankerConfig {
        foresight: ForesightInputs {
            stat_tokens: false,
            ..config.foresight.clone()
        },
        ..config.clone()
    });
    assert_eq!(short.dense_dim(), at + N * h + 2);
    let few = short.build(&samples);
    for r in 0..samples.len() {
        let full = &batch.dense[r * batch.dense_dim + at..(r + 1) * batch.dense_dim];
        let part = &few.dense[r * few.dense_dim + at..(r + 1) * few.dense_dim];
        assert_eq!(&part[..N * h], &full[..N * h]);
        assert_eq!(&part[N * h..], &full[N * (h + d)..]);
    }
}

#[test]
fn product_branch_and_its_c3_term_equal_a_naive_softmax_times_matrix() {
    let config = ranker(false, true, models(16));
    let builder = FeatureBuilder::new(&config);
    let f = builder.foresighter().unwrap();
    let (dp, classes) = (8, 12);
    assert_eq!(builder.dense_dim(), base_dense(&config) + dp + 1 + classes);
    let samples = [sample(1, 1, 3, 1, 7), sample(2, 1, 3, 1, 0)];
    let batch = builder.build(&samples);
    let at = base_dense(&config);
    let row = |r: usize| &batch.dense[r * batch.dense_dim + at..(r + 1) * batch.dense_dim];
    // The product model on the newest max_len = 5 of the 7 products.
    let seq = &samples[0].features.products[2..];
    let next = f.product_model().unwrap().predict_next(&[seq]).unwrap()[0]
        .clone()
        .unwrap();
    let last = &next.encoded[4 * dp..5 * dp];
    assert_eq!(
        &row(0)[..dp],
        last,
        "E_prod is the last product's hidden state"
    );
    assert_eq!(row(0)[dp], 1.0);
    assert_eq!(&row(0)[dp + 1..], &next.probs[..]);
    assert!((next.probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert!(row(1).iter().all(|&v| v == 0.0), "no products: masked");

    // The network's term: softmax(ĉ3)·C̃3 by hand, row by row.
    let net = RankerNet::new(&config, builder.shape(), &Device::flex());
    let table: Vec<f32> = net.c3_table[0].val().into_data().try_to_vec().unwrap();
    let probs = Tensor::<2>::from_data(
        TensorData::new(next.probs.clone(), [1, classes]),
        &Device::flex(),
    );
    let got: Vec<f32> = net
        .c3_projection(probs)
        .unwrap()
        .into_data()
        .try_to_vec()
        .unwrap();
    for j in 0..3 {
        let want: f32 = (0..classes).map(|k| next.probs[k] * table[k * 3 + j]).sum();
        assert!((got[j] - want).abs() < 1e-6, "{got:?}");
    }
    // Without the branch the network has no C̃3 (its parameters are the old ones).
    let off = RankerConfig {
        foresight: ForesightInputs::default(),
        ..config.clone()
    };
    let plain = FeatureBuilder::new(&off);
    assert!(
        RankerNet::new(&off, plain.shape(), &Device::flex())
            .c3_table
            .is_empty()
    );
}

#[test]
fn ranker_steps_train_c3_but_never_the_frozen_forecasters() {
    let config = ranker(true, true, models(64));
    let builder = FeatureBuilder::new(&config);
    let f = builder.foresighter().unwrap();
    let (stat_before, product_before) = (
        f.stat_model().unwrap().to_bytes().unwrap(),
        f.product_model().unwrap().to_bytes().unwrap(),
    );
    let mut trainer = Trainer::new(config.clone(), builder.shape()).unwrap();
    let c3_before = trainer.c3_table().unwrap().unwrap();
    let mut samples: Vec<Sample> = (0..8)
        .map(|i| sample(1 + i % 3, i, 5, i as u32, 3 + i as usize % 3))
        .collect();
    for (i, s) in samples.iter_mut().enumerate() {
        s.labels.set(Task::Click, i % 2 == 0);
        s.labels.set(Task::Purchase, i % 3 == 0);
    }
    let batch = builder.build(&samples);
    for _ in 0..3 {
        trainer.train_step(&batch).unwrap();
    }
    let c3_after = trainer.c3_table().unwrap().unwrap();
    assert_ne!(c3_before, c3_after, "C̃3 is a ranker parameter");
    assert_eq!(f.stat_model().unwrap().to_bytes().unwrap(), stat_before);
    assert_eq!(
        f.product_model().unwrap().to_bytes().unwrap(),
        product_before
    );
    // The same forecasters are the trainer's (one load per configuration): its rows equal.
    let again = FeatureBuilder::new(trainer.config()).build(&samples);
    assert_eq!(again.dense, batch.dense);
    // The trainer pinned the forecasters' checksums into its configuration.
    let pinned = &trainer.config().foresight;
    assert_eq!(
        (pinned.stat_crc, pinned.product_crc),
        (f.stat_crc(), f.product_crc())
    );
    assert_ne!(pinned.stat_crc, 0);
}

/// d(Σ logits·R)/dC̃3 by autodiff through the whole network against central differences.
#[test]
fn c3_gradient_through_the_network_matches_finite_differences() {
    let config = ranker(true, true, models(64));
    let builder = FeatureBuilder::new(&config);
    let shape = builder.shape();
    let device = Device::flex().autodiff();
    let net = RankerNet::new(&config, shape, &device);
    let (b, d) = (3, config.embedding_dim);
    let mut rng = SplitMix64::new(11);
    let mut v = |n: usize, bound: f32| -> Vec<f32> { (0..n).map(|_| rng.uniform(bound)).collect() };
    let fields_v = v(b * shape.fields * d, 0.5);
    let seq_v = v(b * shape.seq_len * shape.seq_subkeys * d, 0.5);
    let mut dense_v = v(b * shape.dense, 1.0);
    // The last c3_rows dense values are a softmax per row.
    let classes = config.foresight.c3_rows;
    for r in 0..b {
        let p = &mut dense_v[(r + 1) * shape.dense - classes..(r + 1) * shape.dense];
        let z: f32 = p.iter().map(|x| x.exp()).sum();
        p.iter_mut().for_each(|x| *x = x.exp() / z);
    }
    let r_v = v(b * 2, 1.0);
    let table_v: Vec<f32> = net.c3_table[0].val().into_data().try_to_vec().unwrap();
    let tensor = |x: &[f32], dims: Vec<usize>| -> burn::tensor::TensorData {
        TensorData::new(x.to_vec(), dims)
    };
    let f = |table: Tensor<2>| -> Tensor<1> {
        let n = RankerNet {
            c3_table: vec![Param::from_tensor(table)],
            ..net.clone()
        };
        let inputs = liverank_model::network::NetInputs {
            fields: Tensor::from_data(tensor(&fields_v, vec![b, shape.fields, d]), &device),
            seq: Some(Tensor::from_data(
                tensor(&seq_v, vec![b, shape.seq_len, shape.seq_subkeys, d]),
                &device,
            )),
            seq_mask_bias: Some(Tensor::zeros([b, 1, shape.seq_len], &device)),
            dense: Some(Tensor::from_data(
                tensor(&dense_v, vec![b, shape.dense]),
                &device,
            )),
            shared_groups: Vec::new(),
        };
        let r: Tensor<2> = Tensor::from_data(tensor(&r_v, vec![b, 2]), &device);
        (n.forward(inputs) * r).sum()
    };
    let dims = [classes, 3];
    let leaf =
        Tensor::<2>::from_data(TensorData::new(table_v.clone(), dims), &device).require_grad();
    let grads = f(leaf.clone()).backward();
    let analytic: Vec<f32> = leaf.grad(&grads).unwrap().into_data().try_to_vec().unwrap();
    let eval = |x: &[f32]| -> f64 {
        let t = Tensor::<2>::from_data(TensorData::new(x.to_vec(), dims), &device);
        f64::from(f(t).into_data().try_to_vec::<f32>().unwrap()[0])
    };
    let eps = 2e-3f32;
    let mut nonzero = 0;
    for i in 0..table_v.len() {
        let (mut plus, mut minus) = (table_v.clone(), table_v.clone());
        plus[i] += eps;
        minus[i] -= eps;
        let numeric = (eval(&plus) - eval(&minus)) / (2.0 * f64::from(eps));
        let a = f64::from(analytic[i]);
        nonzero += usize::from(a.abs() > 1e-6);
        let tol = 1e-3 + 2e-2 * a.abs().max(numeric.abs());
        assert!(
            (a - numeric).abs() <= tol,
            "dC̃3[{i}]: autodiff {a} vs finite differences {numeric}"
        );
    }
    assert!(nonzero > table_v.len() / 2, "the gradient reaches C̃3");
}

#[test]
fn the_cache_gives_what_no_cache_gives_and_forecasts_each_room_window_once() {
    // Three rooms, each seen by four users at one moment, one room again one bucket later.
    let mut samples = Vec::new();
    for user in 0..4 {
        for live in 1..=3 {
            samples.push(sample(live, user, 5, live as u32, 4));
        }
    }
    samples.push(sample(1, 9, 6, 1, 4));
    let cached = ranker(true, true, models(1_000));
    let uncached = ranker(true, true, models(0));
    let (a, b) = (FeatureBuilder::new(&cached), FeatureBuilder::new(&uncached));
    // Batches of 5: prefetches of different compositions, and rows asked one by one.
    let mut with_cache = Vec::new();
    for chunk in samples.chunks(5) {
        with_cache.extend(a.build(chunk).dense);
    }
    let without = b.build(&samples).dense;
    assert_eq!(with_cache.len(), without.len());
    for (x, y) in with_cache.iter().zip(&without) {
        assert!((x - y).abs() < 1e-6, "{x} vs {y}");
    }
    let stats = a.foresighter().unwrap().stats();
    assert_eq!(stats.forecasts, 4, "four distinct room windows: {stats:?}");
    assert_eq!(stats.hits + stats.misses, 13);
    assert!((stats.hit_rate() - 9.0 / 13.0).abs() < 1e-12);
    assert_eq!(b.foresighter().unwrap().stats().forecasts, 13);
}

#[test]
fn branches_off_leave_the_configuration_and_inputs_as_before() {
    let config = RankerConfig::default();
    let json = serde_json::to_string(&config).unwrap();
    assert!(
        !json.contains("foresight"),
        "an off configuration serialises as before"
    );
    let back: RankerConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, config);
    let builder = FeatureBuilder::new(&config);
    assert!(builder.foresighter().is_none());
    assert_eq!(builder.foresight_dim(), 0);
}

/// Writes the pair as `liverank forecast train` does: forecaster.bin and product.bin.
fn write_forecasters(dir: &std::path::Path, m: &Foresighter) {
    std::fs::write(
        dir.join("forecaster.bin"),
        m.stat_model().unwrap().to_bytes().unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("product.bin"),
        m.product_model().unwrap().to_bytes().unwrap(),
    )
    .unwrap();
}

#[test]
fn a_model_refuses_forecasters_other_than_the_ones_it_was_trained_with() {
    let dir = tempfile::tempdir().unwrap();
    let m = models(8);
    let write = |m: &Foresighter| write_forecasters(dir.path(), m);
    write(&m);
    let mut spec = ForesightInputs {
        stat: true,
        product: true,
        dir: dir.path().display().to_string(),
        ..ForesightInputs::default()
    };
    spec.pin().unwrap();
    assert_ne!(spec.stat_crc, 0);
    assert_eq!(spec.c3_rows, 12);
    // A fresh load of the pinned reference (as a resumed or served model does) passes.
    let resumed: ForesightInputs =
        serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
    assert!(resumed.models().unwrap().is_some());
    // Other forecasters in the directory: refused.
    let mut other = StatTrainer::new(
        ForecastConfig {
            seed: 99,
            ..forecast_config()
        },
        N,
    )
    .unwrap();
    other.train_step(&[0.5; N * 4], &[0.5; N * 2], 1).unwrap();
    std::fs::write(
        dir.path().join("forecaster.bin"),
        other.model().unwrap().to_bytes().unwrap(),
    )
    .unwrap();
    let stale: ForesightInputs =
        serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
    let err = stale.models().unwrap_err().to_string();
    assert!(err.contains("not the ones"), "{err}");
}

/// A checkpoint of a LiveForesighter ranker resumes with C̃3 and the same scores, and is
/// refused once the forecaster files are replaced.
#[test]
fn a_checkpoint_carries_c3_and_its_forecasters_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let m = models(8);
    write_forecasters(dir.path(), &m);
    let config = RankerConfig {
        foresight: ForesightInputs {
            stat: true,
            product: true,
            c3_dim: 3,
            dir: dir.path().display().to_string(),
            ..ForesightInputs::default()
        },
        ..ranker(false, false, models(0))
    };
    let builder = FeatureBuilder::new(&config);
    let mut trainer = Trainer::new(config, builder.shape()).unwrap();
    let mut samples: Vec<Sample> = (0..6)
        .map(|i| sample(1 + i % 2, i, 4, i as u32, 3))
        .collect();
    for (i, s) in samples.iter_mut().enumerate() {
        s.labels.set(Task::Click, i % 2 == 0);
    }
    let batch = builder.build(&samples);
    trainer.train_step(&batch).unwrap();
    let bytes = trainer.to_bytes().unwrap();
    let mut resumed = Trainer::from_bytes(&bytes).unwrap();
    assert_eq!(resumed.c3_table().unwrap(), trainer.c3_table().unwrap());
    let again = FeatureBuilder::new(resumed.config()).build(&samples);
    assert_eq!(again.dense, batch.dense);
    assert_eq!(
        resumed.predict(&again).unwrap(),
        trainer.predict(&batch).unwrap()
    );
    // Other forecasters under the same name: the checkpoint is refused.
    let other = StatTrainer::new(
        ForecastConfig {
            seed: 42,
            ..forecast_config()
        },
        N,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("forecaster.bin"),
        other.model().unwrap().to_bytes().unwrap(),
    )
    .unwrap();
    let err = match Trainer::from_bytes(&bytes) {
        Ok(_) => panic!("a checkpoint with other forecasters was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("not the ones"), "{err}");
}

//! LiveForesighter's models: RevIN's identities, the iTransformer's permutation
//! equivariance, the product model's causal mask, finite-difference gradients of every
//! layer, and forward passes equal to a PyTorch reference with the same weights.
#![allow(clippy::unwrap_used, reason = "tests")]

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use liverank_model::foresight::layers::{EncoderLayer, LayerNorm, RevIn, SelfAttention};
use liverank_model::foresight::product::{ProductIndex, ProductNet, causal_bias};
use liverank_model::foresight::stat::StatForecaster;
use liverank_model::foresight::{ForecastConfig, ProductConfig, ProductTrainer, StatTrainer};
use liverank_model::layers::Dense;
use liverank_model::rng::SplitMix64;

fn device() -> Device {
    Device::flex().autodiff()
}

fn values(rng: &mut SplitMix64, n: usize, bound: f32) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(bound)).collect()
}

fn tensor<const D: usize>(v: &[f32], shape: [usize; D], track: bool) -> Tensor<D> {
    let t = Tensor::from_data(TensorData::new(v.to_vec(), shape), &device());
    if track { t.require_grad() } else { t }
}

fn vec_of<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// Autodiff gradient of the scalar `f` at `x` against central differences.
fn check<const D: usize>(
    name: &str,
    x: &[f32],
    shape: [usize; D],
    f: impl Fn(Tensor<D>) -> Tensor<1>,
) {
    let leaf = tensor(x, shape, true);
    let grads = f(leaf.clone()).backward();
    let analytic = vec_of(leaf.grad(&grads).expect("gradient reaches the input"));
    let eps = 2e-3f32;
    let eval = |v: &[f32]| -> f64 { f64::from(vec_of(f(tensor(v, shape, false)))[0]) };
    for i in 0..x.len() {
        let mut plus = x.to_vec();
        plus[i] += eps;
        let mut minus = x.to_vec();
        minus[i] -= eps;
        let numeric = (eval(&plus) - eval(&minus)) / (2.0 * f64::from(eps));
        let a = f64::from(analytic[i]);
        let tol = 2e-3 + 3e-2 * a.abs().max(numeric.abs());
        assert!(
            (a - numeric).abs() <= tol,
            "{name}: d/dx[{i}] autodiff {a} vs finite differences {numeric}"
        );
    }
}

/// A fixed random projection of any output to a scalar.
fn project<const D: usize>(out: Tensor<D>, seed: u64) -> Tensor<1> {
    let dims = out.dims();
    let n: usize = dims.iter().product();
    let mut rng = SplitMix64::new(seed);
    (out * tensor(&values(&mut rng, n, 1.0), dims, false)).sum()
}

fn small_config() -> ForecastConfig {
    ForecastConfig {
        lookback: 6,
        horizon: 2,
        d_model: 8,
        heads: 2,
        layers: 2,
        ffn: 12,
        seed: 3,
        ..ForecastConfig::default()
    }
}

fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// Series of very different scales: `[B, N, L]`.
fn series_input(b: usize, n: usize, l: usize) -> Vec<f32> {
    let mut rng = SplitMix64::new(11);
    (0..b * n * l)
        .map(|i| {
            let series = (i / l) % n;
            (series as f32 + 1.0).powi(2) * (1.0 + rng.uniform(0.8))
        })
        .collect()
}

#[test]
fn revin_normalise_then_denormalise_is_the_identity() {
    let (b, n, l) = (3, 4, 7);
    let x = series_input(b, n, l);
    let revin = RevIn::from_values(
        vec![0.5, 1.5, 2.0, 0.8],
        vec![0.1, -0.3, 0.0, 1.0],
        &device(),
    );
    let (normed, stats) = revin.normalise(tensor(&x, [b, n, l], false));
    let back = vec_of(revin.denormalise(normed.clone(), &stats));
    close(&back, &x, 1e-5, "round trip");
    // At the identity affine every row has mean 0 and variance ≈ 1.
    let (normed, _) = RevIn::new(n, &device()).normalise(tensor(&x, [b, n, l], false));
    let v = vec_of(normed);
    for row in v.chunks(l) {
        let mean: f32 = row.iter().sum::<f32>() / l as f32;
        let var: f32 = row.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / l as f32;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3,
            "{mean} {var}"
        );
    }
}

#[test]
fn scaling_one_series_scales_its_forecast_and_nothing_else() {
    let config = small_config();
    let (b, n, l, h) = (2, 3, config.lookback, config.horizon);
    let net = StatForecaster::new(&config, n, &device());
    let x = series_input(b, n, l);
    let base = vec_of(net.forward(tensor(&x, [b, n, l], false)).forecast);
    for (series, k) in [(0usize, 3.0f32), (2, 0.25)] {
        let scaled: Vec<f32> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| if (i / l) % n == series { v * k } else { v })
            .collect();
        let out = vec_of(net.forward(tensor(&scaled, [b, n, l], false)).forecast);
        for (i, (&got, &b0)) in out.iter().zip(&base).enumerate() {
            let want = if (i / h) % n == series { b0 * k } else { b0 };
            assert!(
                (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "series {series} × {k}: [{i}] {got} vs {want}"
            );
        }
    }
    // Without RevIN the forecast is not scale-equivariant: the property is RevIN's.
    let plain = StatForecaster::new(
        &ForecastConfig {
            revin: false,
            ..config
        },
        n,
        &device(),
    );
    let doubled: Vec<f32> = x.iter().map(|v| v * 2.0).collect();
    let a = vec_of(plain.forward(tensor(&x, [b, n, l], false)).forecast);
    let d = vec_of(plain.forward(tensor(&doubled, [b, n, l], false)).forecast);
    assert!(a.iter().zip(&d).any(|(a, d)| (2.0 * a - d).abs() > 1e-2));
}

#[test]
fn permuting_the_series_permutes_the_forecast() {
    let config = small_config();
    let (b, n, l, h) = (2, 4, config.lookback, config.horizon);
    let net = StatForecaster::new(&config, n, &device());
    let x = series_input(b, n, l);
    let perm = [2usize, 0, 3, 1];
    let permute = |v: &[f32], w: usize| -> Vec<f32> {
        let mut out = Vec::with_capacity(v.len());
        for row in 0..b {
            for &p in &perm {
                out.extend_from_slice(&v[(row * n + p) * w..(row * n + p + 1) * w]);
            }
        }
        out
    };
    let out = net.forward(tensor(&x, [b, n, l], false));
    let permuted = net.forward(tensor(&permute(&x, l), [b, n, l], false));
    close(
        &vec_of(permuted.forecast),
        &permute(&vec_of(out.forecast), h),
        1e-5,
        "forecast",
    );
    close(
        &vec_of(permuted.encoded),
        &permute(&vec_of(out.encoded), config.d_model),
        1e-5,
        "encoded",
    );
}

fn tiny_product() -> ProductConfig {
    ProductConfig {
        product_rows: 40,
        c1_rows: 5,
        c2_rows: 10,
        c3_rows: 20,
        embed_dim: 4,
        d_model: 8,
        heads: 2,
        layers: 2,
        ffn: 10,
        max_len: 6,
        ..ProductConfig::default()
    }
}

#[test]
fn product_output_at_step_t_ignores_later_steps() {
    let config = tiny_product();
    let net = ProductNet::new(&config, 5, &device());
    let (b, t) = (2, 6);
    let mut rng = SplitMix64::new(21);
    let steps: Vec<[u64; 4]> = (0..b * t)
        .map(|_| [0, 1, 2, 3].map(|_| rng.next_u64() % 40))
        .collect();
    let run = |steps: &[[u64; 4]]| {
        let out = net.forward(&ProductIndex::new(steps, b, t, &config, &device()));
        (vec_of(out.logits), vec_of(out.encoded))
    };
    let (logits, encoded) = run(&steps);
    for changed in 1..t {
        let mut other = steps.clone();
        for row in 0..b {
            for k in changed..t {
                other[row * t + k] = [k as u64 + 7, 3, 9, 17];
            }
        }
        let (l2, e2) = run(&other);
        let c = config.c3_rows;
        let d = config.d_model;
        for row in 0..b {
            for k in 0..t {
                let (a, z) = (
                    &logits[(row * t + k) * c..(row * t + k + 1) * c],
                    &l2[(row * t + k) * c..(row * t + k + 1) * c],
                );
                let ea = &encoded[(row * t + k) * d..(row * t + k + 1) * d];
                let ez = &e2[(row * t + k) * d..(row * t + k + 1) * d];
                if k < changed {
                    close(z, a, 1e-6, "logits before the change");
                    close(ez, ea, 1e-6, "encoded before the change");
                } else {
                    assert!(
                        a.iter().zip(z).any(|(x, y)| (x - y).abs() > 1e-4),
                        "step {k} must see the change at {changed}"
                    );
                }
            }
        }
    }
}

#[test]
fn layer_norm_and_revin_gradients_match_finite_differences() {
    let mut rng = SplitMix64::new(31);
    let (b, t, d) = (2, 3, 5);
    let x = values(&mut rng, b * t * d, 1.5);
    let mut norm = LayerNorm::new(d, &device());
    norm.gamma = Param::from_tensor(tensor(&values(&mut rng, d, 1.0), [d], false));
    check("layer norm", &x, [b, t, d], |x| project(norm.forward(x), 1));
    let gamma = values(&mut rng, t, 0.5).iter().map(|g| g + 1.0).collect();
    let revin = RevIn::from_values(gamma, values(&mut rng, t, 0.5), &device());
    // RevIN over [B, N = t, L = d]: the normalised tokens, and the round trip through a
    // nonlinear stand-in for the network (so the statistics' gradient paths matter).
    check("revin normalise", &x, [b, t, d], |x| {
        project(revin.normalise(x).0, 2)
    });
    check("revin round trip", &x, [b, t, d], |x| {
        let (n, s) = revin.normalise(x);
        let y = n.clone().narrow(2, 0, 2).tanh();
        project(revin.denormalise(y, &s), 3)
    });
    let gamma_values: Vec<f32> = (0..t).map(|i| 0.7 + 0.2 * i as f32).collect();
    check("revin gamma", &gamma_values, [t], |g| {
        let r = RevIn {
            gamma: Param::from_tensor(g),
            beta: revin.beta.clone(),
        };
        let (n, s) = r.normalise(tensor(&x, [b, t, d], false));
        project(r.denormalise(n.narrow(2, 0, 2).tanh(), &s), 4)
    });
}

#[test]
fn attention_and_encoder_gradients_match_finite_differences() {
    let mut rng = SplitMix64::new(41);
    let (b, t, d) = (2, 4, 6);
    let x = values(&mut rng, b * t * d, 1.0);
    let attention = SelfAttention::new(d, 2, &mut rng, &device());
    check("attention", &x, [b, t, d], |x| {
        project(attention.forward(x, None), 5)
    });
    check("causal attention", &x, [b, t, d], |x| {
        project(attention.forward(x, Some(causal_bias(t, &device()))), 6)
    });
    let layer = EncoderLayer::new(d, 3, 7, &mut rng, &device());
    check("encoder layer", &x, [b, t, d], |x| {
        project(layer.forward(x, Some(causal_bias(t, &device()))), 7)
    });
}

#[test]
fn forecaster_and_product_gradients_match_finite_differences() {
    let config = small_config();
    let (b, n, l) = (2, 3, config.lookback);
    let net = StatForecaster::new(&config, n, &device());
    let mut rng = SplitMix64::new(51);
    let x: Vec<f32> = values(&mut rng, b * n * l, 1.0)
        .iter()
        .map(|v| v + 2.0)
        .collect();
    check("stat forecaster", &x, [b, n, l], |x| {
        let out = net.forward(x);
        project(out.forecast, 8) + project(out.encoded, 9)
    });
    let pc = tiny_product();
    let product = ProductNet::new(&pc, 2, &device());
    let t = 4;
    let e = values(&mut rng, b * t * 4 * pc.embed_dim, 1.0);
    check("product net", &e, [b, t, 4 * pc.embed_dim], |x| {
        project(product.forward_embedded(x).logits, 10)
    });
    // Gradient into an embedding table through the lookup (rows used twice sum).
    let steps: Vec<[u64; 4]> = (0..b * t)
        .map(|i| [i as u64 % 3, 1, 2, (i as u64 * 7) % 20])
        .collect();
    let c3 = values(&mut rng, pc.c3_rows * pc.embed_dim, 0.5);
    check("c3 table", &c3, [pc.c3_rows, pc.embed_dim], |table| {
        let mut net = product.clone();
        net.c3 = Param::from_tensor(table);
        let index = ProductIndex::new(&steps, b, t, &pc, &device());
        project(net.forward(&index).logits, 11)
    });
}

/// Deterministic weights shared with the PyTorch script: tensor k, element i is
/// `f32(0.3 · sin(0.37 i + 1.11 k))`.
struct Fill(u64);

impl Fill {
    fn next(&mut self, n: usize) -> Vec<f32> {
        let k = self.0 as f64;
        self.0 += 1;
        (0..n)
            .map(|i| (0.3 * (0.37 * i as f64 + 1.11 * k).sin()) as f32)
            .collect()
    }
    fn dense(&mut self, d_in: usize, d_out: usize) -> Dense {
        let w = self.next(d_in * d_out);
        let b = self.next(d_out);
        Dense::from_values(d_in, d_out, w, b, &device())
    }
    fn norm(&mut self, d: usize) -> LayerNorm {
        let g: Vec<f32> = self.next(d).iter().map(|v| 1.0 + v).collect();
        let b = self.next(d);
        LayerNorm {
            gamma: Param::from_tensor(tensor(&g, [d], false)),
            beta: Param::from_tensor(tensor(&b, [d], false)),
        }
    }
    fn layer(&mut self, d: usize, heads: usize, ffn: usize) -> EncoderLayer {
        let attention = SelfAttention {
            query: self.dense(d, d),
            key: self.dense(d, d),
            value: self.dense(d, d),
            out: self.dense(d, d),
            heads,
        };
        EncoderLayer {
            attention,
            norm1: self.norm(d),
            ffn1: self.dense(d, ffn),
            ffn2: self.dense(ffn, d),
            norm2: self.norm(d),
        }
    }
}

// The reference (PyTorch 2.15, float64 on the float32 weights; `nn.TransformerEncoderLayer`
// with dropout 0, ReLU, post-norm, batch_first):
//
// ```python
// import math, torch
// torch.set_default_dtype(torch.float64)
// def fill(k, n):
//     return torch.tensor([0.3 * math.sin(0.37 * i + 1.11 * k) for i in range(n)], dtype=torch.float32).double()
// counter = [0]
// def nxt(n):
//     v = fill(counter[0], n); counter[0] += 1; return v
// def linear(d_in, d_out):
//     w = nxt(d_in * d_out).reshape(d_in, d_out)  # ours: [d_in, d_out] row-major
//     b = nxt(d_out)
//     lin = torch.nn.Linear(d_in, d_out)
//     with torch.no_grad():
//         lin.weight.copy_(w.T); lin.bias.copy_(b)
//     return lin
// def norm(d):
//     ln = torch.nn.LayerNorm(d, eps=1e-5)
//     with torch.no_grad():
//         ln.weight.copy_(1.0 + nxt(d)); ln.bias.copy_(nxt(d))
//     return ln
// def encoder_layer(d, heads, ffn):
//     q, k, v, o = linear(d, d), linear(d, d), linear(d, d), linear(d, d)
//     n1 = norm(d); f1 = linear(d, ffn); f2 = linear(ffn, d); n2 = norm(d)
//     layer = torch.nn.TransformerEncoderLayer(d, heads, ffn, dropout=0.0, activation="relu",
//                                              batch_first=True, norm_first=False)
//     with torch.no_grad():
//         layer.self_attn.in_proj_weight.copy_(torch.cat([q.weight, k.weight, v.weight], 0))
//         layer.self_attn.in_proj_bias.copy_(torch.cat([q.bias, k.bias, v.bias], 0))
//         layer.self_attn.out_proj.weight.copy_(o.weight); layer.self_attn.out_proj.bias.copy_(o.bias)
//         layer.linear1.weight.copy_(f1.weight); layer.linear1.bias.copy_(f1.bias)
//         layer.linear2.weight.copy_(f2.weight); layer.linear2.bias.copy_(f2.bias)
//         layer.norm1.weight.copy_(n1.weight); layer.norm1.bias.copy_(n1.bias)
//         layer.norm2.weight.copy_(n2.weight); layer.norm2.bias.copy_(n2.bias)
//     return layer.eval()
//
// # statistic forecaster: B=2, N=3, L=6, D=4, heads=2, ffn=5, H=2, 2 layers
// B, N, L, D, HEADS, FFN, H = 2, 3, 6, 4, 2, 5, 2
// gamma = 1.0 + nxt(N); beta = nxt(N)
// embed = linear(L, D)
// layers = [encoder_layer(D, HEADS, FFN) for _ in range(2)]
// final = norm(D)
// head = linear(D, H)
// x = torch.tensor([[[ (n + 1) * (1.0 + math.sin(0.5 * l + n + 3 * b)) + 0.1 * l
//                      for l in range(L)] for n in range(N)] for b in range(B)], dtype=torch.float32).double()
// mean = x.mean(2, keepdim=True)
// std = torch.sqrt(x.var(2, keepdim=True, unbiased=False) + 1e-5)
// xn = (x - mean) / std * gamma.reshape(1, N, 1) + beta.reshape(1, N, 1)
// h = embed(xn)
// with torch.no_grad():
//     for layer in layers:
//         h = layer(h)
//     enc = final(h)
//     y = head(enc)
//     y = (y - beta.reshape(1, N, 1)) / (gamma.reshape(1, N, 1) + 1e-10) * std + mean
// print("stat forecast", [round(v, 6) for v in y.flatten().tolist()])
// print("stat encoded", [round(v, 6) for v in enc.flatten().tolist()])
//
// # product predictor on given embedded steps: B=2, T=4, 4E=8, D=4, heads=2, ffn=6, C3=5, 1 layer
// counter[0] = 100
// B, T, E4, D, HEADS, FFN, C = 2, 4, 8, 4, 2, 6, 5
// project = linear(E4, D)
// position = nxt(T * D).reshape(T, D)
// layer = encoder_layer(D, HEADS, FFN)
// final = norm(D)
// head = linear(D, C)
// xe = torch.tensor([[[math.cos(0.3 * e + 0.7 * t + 1.9 * b) for e in range(E4)] for t in range(T)]
//                    for b in range(B)], dtype=torch.float32).double()
// mask = torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
// with torch.no_grad():
//     h = project(xe) + position
//     h = layer(h, src_mask=mask)
//     enc = final(h)
//     logits = head(enc)
// print("product logits", [round(v, 6) for v in logits.flatten().tolist()])
// ```
#[test]
fn forward_passes_match_the_pytorch_reference() {
    let (b, n, l, d, heads, ffn, h) = (2, 3, 6, 4, 2, 5, 2);
    let mut fill = Fill(0);
    let gamma: Vec<f32> = fill.next(n).iter().map(|v| 1.0 + v).collect();
    let beta = fill.next(n);
    let revin = RevIn::from_values(gamma, beta, &device());
    let embed = fill.dense(l, d);
    let layers = vec![fill.layer(d, heads, ffn), fill.layer(d, heads, ffn)];
    let norm = fill.norm(d);
    let head = fill.dense(d, h);
    let net = StatForecaster {
        revin: Some(revin),
        embed,
        layers,
        norm,
        head,
    };
    let mut x = Vec::new();
    for row in 0..b {
        for s in 0..n {
            for t in 0..l {
                let v = (s as f64 + 1.0)
                    * (1.0 + (0.5 * t as f64 + s as f64 + 3.0 * row as f64).sin())
                    + 0.1 * t as f64;
                x.push(v as f32);
            }
        }
    }
    let out = net.forward(tensor(&x, [b, n, l], false));
    let forecast = [
        2.041199, 2.113618, 3.51848, 3.625617, 2.556393, 2.418345, 0.329895, 0.302936, 0.041105,
        -0.0382, 3.137873, 3.089915,
    ];
    let encoded = [
        -1.564185, -0.855824, 0.166007, 1.028431, -1.464951, -0.917785, 0.071713, 1.088006,
        1.113344, -1.070877, -1.489983, 0.657782, 1.456626, 0.510388, -0.713185, -1.58161,
        1.374571, 0.565298, -0.633032, -1.635812, 0.394746, -1.246893, -1.190115, 1.07647,
    ];
    close(&vec_of(out.forecast), &forecast, 2e-5, "stat forecast");
    close(&vec_of(out.encoded), &encoded, 2e-5, "stat encoded");

    let (t, e4, d, heads, ffn, c) = (4, 8, 4, 2, 6, 5);
    let mut fill = Fill(100);
    let project = fill.dense(e4, d);
    let position = fill.next(t * d);
    let layer = fill.layer(d, heads, ffn);
    let norm = fill.norm(d);
    let head = fill.dense(d, c);
    let config = ProductConfig {
        product_rows: 1,
        c1_rows: 1,
        c2_rows: 1,
        c3_rows: c,
        embed_dim: 2,
        d_model: d,
        heads,
        layers: 1,
        ffn,
        max_len: t,
        ..ProductConfig::default()
    };
    let mut product = ProductNet::new(&config, 0, &device());
    product.project = project;
    product.position = Param::from_tensor(tensor(&position, [t, d], false));
    product.layers = vec![layer];
    product.norm = norm;
    product.head = head;
    let mut xe = Vec::new();
    for row in 0..b {
        for k in 0..t {
            for e in 0..e4 {
                xe.push((0.3 * e as f64 + 0.7 * k as f64 + 1.9 * row as f64).cos() as f32);
            }
        }
    }
    let logits = vec_of(
        product
            .forward_embedded(tensor(&xe, [b, t, e4], false))
            .logits,
    );
    let want = [
        0.347077, 0.37297, 0.348383, 0.276643, 0.167462, 0.813569, 0.45369, 0.032407, -0.393263,
        -0.765706, 0.130538, -0.220471, -0.541641, -0.789502, -0.930508, 0.928126, 0.603171,
        0.196581, -0.236616, -0.637788, 0.386102, 0.402142, 0.363755, 0.276135, 0.151141,
        -0.387657, -0.651536, -0.827232, -0.890967, -0.834113, -0.290872, -0.575238, -0.781748,
        -0.882452, -0.863721, 0.323939, -0.045248, -0.408311, -0.716111, -0.926989,
    ];
    close(&logits, &want, 2e-5, "product logits");
}

#[test]
fn both_models_learn_a_pattern_and_survive_a_file_round_trip() {
    // Series 0 alternates 1, 3, 1, 3 …; series 1 is its mirror: a learnable next step.
    let config = ForecastConfig {
        lookback: 4,
        horizon: 2,
        d_model: 8,
        heads: 2,
        layers: 1,
        ffn: 16,
        learning_rate: 1e-2,
        seed: 1,
        ..ForecastConfig::default()
    };
    let mut trainer = StatTrainer::new(config.clone(), 2).unwrap();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let batch = 8;
    for w in 0..batch {
        let at = |t: usize, s: usize| -> f32 {
            let up = (t + w).is_multiple_of(2);
            if up == (s == 0) { 3.0 } else { 1.0 }
        };
        for s in 0..2 {
            x.extend((0..4).map(|t| at(t, s)));
        }
        for s in 0..2 {
            y.extend((4..6).map(|t| at(t, s)));
        }
    }
    let first = trainer.train_step(&x, &y, batch).unwrap();
    let mut last = first;
    for _ in 0..150 {
        last = trainer.train_step(&x, &y, batch).unwrap();
    }
    assert!(last < first * 0.05, "MSE {first} → {last}");
    let model = trainer.model().unwrap();
    let again =
        liverank_model::foresight::StatModel::from_bytes(&model.to_bytes().unwrap()).unwrap();
    assert_eq!(
        model.forecast(&x, batch).unwrap(),
        again.forecast(&x, batch).unwrap()
    );
    let mut bytes = model.to_bytes().unwrap();
    bytes[20] ^= 1;
    assert!(liverank_model::foresight::StatModel::from_bytes(&bytes).is_err());

    // Products: c3 cycles 2 → 5 → 9 → 2 …; the next of 9 is 2.
    let config = ForecastConfig {
        product: ProductConfig {
            learning_rate: 1e-2,
            ..tiny_product()
        },
        ..ForecastConfig::default()
    };
    let mut trainer = ProductTrainer::new(config).unwrap();
    let cycle = [2u64, 5, 9];
    let seqs: Vec<Vec<[u64; 4]>> = (0..6)
        .map(|start| {
            (0..5)
                .map(|k| {
                    let c3 = cycle[(start + k) % 3];
                    [c3 + 20, c3 % 5, c3 % 10, c3]
                })
                .collect()
        })
        .collect();
    let refs: Vec<&[[u64; 4]]> = seqs.iter().map(|s| s.as_slice()).collect();
    for _ in 0..80 {
        trainer.train_step(&refs).unwrap();
    }
    let model = trainer.model().unwrap();
    let next = model.predict_next(&refs).unwrap();
    for (s, p) in seqs.iter().zip(&next) {
        let p = p.as_ref().unwrap();
        let best = (0..p.probs.len())
            .max_by(|&a, &b| p.probs[a].total_cmp(&p.probs[b]))
            .unwrap();
        let last = s.last().unwrap()[3];
        let want = cycle[(cycle.iter().position(|&c| c == last).unwrap() + 1) % 3];
        assert_eq!(best as u64, want, "after {last}");
        assert_eq!(p.encoded.len(), s.len() * 8);
    }
    let again =
        liverank_model::foresight::ProductModel::from_bytes(&model.to_bytes().unwrap()).unwrap();
    assert_eq!(again.predict_next(&refs).unwrap(), next);
    assert!(model.predict_next(&[&[][..]]).unwrap()[0].is_none());
}

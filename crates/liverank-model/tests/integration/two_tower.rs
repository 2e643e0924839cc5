//! Two-tower vector recall (issue 20, item 4) and MIND's multi-interest tower (item 5): the
//! in-batch sampled softmax with the logQ correction against a hand computation and finite
//! differences, its false-negative mask; dynamic routing and label-aware attention against
//! PyTorch and finite differences; and models that learn the clusters of a synthetic log
//! far above chance, the same every time for the same seed.
#![allow(clippy::unwrap_used, reason = "tests")]

use crate::support::{check, sines, tensor};
use burn::tensor::Tensor;
use liverank_model::layers::PAD_BIAS;
use liverank_model::rng::SplitMix64;
use liverank_model::two_tower::{
    TwoTowerConfig, adaptive_interests, dynamic_routing, label_aware_attention, repeat_bias,
    sampled_softmax_logq, train_two_tower,
};

fn scalar(t: Tensor<1>) -> f64 {
    f64::from(t.into_data().try_to_vec::<f32>().unwrap()[0])
}

fn log_softmax_at(row: &[f64], i: usize) -> f64 {
    let top = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let z: f64 = row.iter().map(|x| (x - top).exp()).sum();
    row[i] - top - z.ln()
}

/// u = (1, 0), (0, 1); v = (1, 0), (1, 1); q = (½, ¼). Logits uᵢ·vⱼ − log qⱼ:
/// row 0 (1 + ln 2, 1 + ln 4), row 1 (ln 2, 1 + ln 4).
#[test]
fn sampled_softmax_with_logq_matches_a_hand_computation_and_masks_repeats() {
    let u = [1.0, 0.0, 0.0, 1.0];
    let v = [1.0, 0.0, 1.0, 1.0];
    let log_q = [0.5f32.ln(), 0.25f32.ln()];
    let loss = |bias: [f32; 4]| {
        scalar(sampled_softmax_logq(
            tensor(&u, [2, 2], false),
            tensor(&v, [2, 2], false),
            tensor(&log_q, [2], false),
            tensor(&bias, [2, 2], false),
        ))
    };
    let (l2, l4) = (2f64.ln(), 4f64.ln());
    let row0 = [1.0 + l2, 1.0 + l4];
    let row1 = [l2, 1.0 + l4];
    let want = -(log_softmax_at(&row0, 0) + log_softmax_at(&row1, 1)) / 2.0;
    assert!(
        (loss([0.0; 4]) - want).abs() < 1e-6,
        "{} vs {want}",
        loss([0.0; 4])
    );
    // Column 1 of row 0 holds row 0's own item again: masked, row 0's term is log 1 = 0.
    let masked = -log_softmax_at(&row1, 1) / 2.0;
    // The batch builds that bias from its targets: repeats off the diagonal only.
    let p = PAD_BIAS;
    assert_eq!(
        repeat_bias(&[3, 5, 3]),
        [0.0, 0.0, p, 0.0, 0.0, 0.0, p, 0.0, 0.0]
    );
    let got = loss([0.0, PAD_BIAS, 0.0, 0.0]);
    assert!((got - masked).abs() < 1e-6, "{got} vs {masked}");
    // Without the correction (q = 1) the popular item's negative weighs more.
    let plain = scalar(sampled_softmax_logq(
        tensor(&u, [2, 2], false),
        tensor(&v, [2, 2], false),
        tensor(&[0.0, 0.0], [2], false),
        tensor(&[0.0; 4], [2, 2], false),
    ));
    let want_plain = -(log_softmax_at(&[1.0, 1.0], 0) + log_softmax_at(&[0.0, 1.0], 1)) / 2.0;
    assert!((plain - want_plain).abs() < 1e-6);
}

#[test]
fn sampled_softmax_gradients_match_finite_differences() {
    let mut rng = SplitMix64::new(3);
    let (b, d) = (4, 3);
    let u: Vec<f32> = (0..b * d).map(|_| rng.uniform(1.0)).collect();
    let v: Vec<f32> = (0..b * d).map(|_| rng.uniform(1.0)).collect();
    let log_q: Vec<f32> = (0..b).map(|_| -1.0 - rng.uniform(1.0).abs()).collect();
    let mut bias = vec![0.0f32; b * b];
    bias[b + 3] = PAD_BIAS; // rows 1 and 3 share an item
    bias[3 * b + 1] = PAD_BIAS;
    let f = |u: Tensor<2>, v: Tensor<2>| {
        sampled_softmax_logq(
            u,
            v,
            tensor(&log_q, [b], false),
            tensor(&bias, [b, b], false),
        )
    };
    check("u", &u, [b, d], |u| f(u, tensor(&v, [b, d], false)));
    check("v", &v, [b, d], |v| f(tensor(&u, [b, d], false), v));
}

/// 6 clusters of 10 items; each of 300 users consumes 8 distinct items of one cluster in
/// random order. Held out: the last item. A model that learnt the clusters puts it among
/// the cluster's 3 unseen items; chance (over the 53 unseen) is 5/53 for the top 5.
#[test]
fn the_towers_learn_the_clusters_of_a_synthetic_log_deterministically() {
    let mut rng = SplitMix64::new(11);
    let (clusters, per, users, take) = (6usize, 10usize, 300usize, 8usize);
    let items = clusters * per;
    let sequences: Vec<Vec<u32>> = (0..users)
        .map(|_| {
            let c = rng.below(clusters);
            let mut pool: Vec<u32> = (0..per).map(|k| (c * per + k) as u32).collect();
            for i in (1..pool.len()).rev() {
                pool.swap(i, rng.below(i + 1));
            }
            pool.truncate(take);
            pool
        })
        .collect();
    let train: Vec<&[u32]> = sequences.iter().map(|s| &s[..take - 1]).collect();
    let config = TwoTowerConfig {
        dim: 16,
        hidden: 32,
        history: 5,
        batch: 64,
        epochs: 25,
        examples_per_epoch: 0,
        learning_rate: 0.01,
        logq: true,
        seed: 5,
        ..TwoTowerConfig::default()
    };
    let model = train_two_tower(&train, items, &config, |_, _| {}).unwrap();
    assert!(
        model.epoch_losses.last() < model.epoch_losses.first(),
        "{:?}",
        model.epoch_losses
    );
    let d = model.dim();
    let mut hits = 0;
    for s in &sequences {
        let (history, target) = (&s[..take - 1], s[take - 1]);
        let u = model.user_vector(history);
        let score = |i: usize| -> f32 {
            model.item_vectors()[i * d..(i + 1) * d]
                .iter()
                .zip(&u)
                .map(|(a, b)| a * b)
                .sum()
        };
        let t = score(target as usize);
        let better = (0..items)
            .filter(|&i| i != target as usize && !history.contains(&(i as u32)))
            .filter(|&i| score(i) >= t)
            .count();
        hits += usize::from(better < 5);
    }
    let hr = hits as f64 / users as f64;
    assert!(hr > 0.6, "HR@5 {hr} (chance ≈ 0.09)");
    let again = train_two_tower(&train, items, &config, |_, _| {}).unwrap();
    assert_eq!(again.item_vectors(), model.item_vectors());
}

// --- MIND ---

//     import math, torch
//     torch.set_default_dtype(torch.float64)
//     B, N, D, K = 2, 4, 3, 2
//     def vals(n, off, scale=0.5):
//         return torch.tensor([math.sin(i * 0.7 + off) * scale for i in range(n)])
//     beh = vals(B * N * D, 0.3, 1.0).view(B, N, D)
//     valid = torch.tensor([[1., 1., 1., 1.], [1., 1., 0., 0.]])
//     bias = torch.tensor([[0., 0.], [0., -1e9]])
//     init = vals(K * N, 1.1, 1.0).view(K, N)
//     def squash(z):
//         sq = (z * z).sum(-1, keepdim=True)
//         return sq / (1 + sq) * z / torch.sqrt(sq + 1e-12)
//     b = init.expand(B, K, N).clone()
//     for it in range(3):
//         w = torch.softmax(b + bias[:, :, None], dim=1) * valid[:, None, :]
//         c = squash(w @ beh)
//         if it < 2:
//             b = b + c @ beh.transpose(1, 2)
//     target = vals(B * D, 2.0, 1.0).view(B, D)
//     s = (c @ target[:, :, None]).squeeze(-1)
//     a = torch.softmax(s ** 2 + bias, dim=1)
//     u = (c * a[:, :, None]).sum(1)
//     print([round(x, 6) for x in c.reshape(-1).tolist()])
//     print([round(x, 6) for x in u.reshape(-1).tolist()])
const TORCH_CAPSULES: [f64; 12] = [
    0.176862, 0.351582, 0.360948, -0.014091, 0.0413, 0.077267, -0.152457, -0.407878, -0.471468,
    0.0, 0.0, 0.0,
];
const TORCH_USER: [f64; 6] = [
    0.083661, 0.200138, 0.222487, -0.152457, -0.407878, -0.471468,
];

fn routing_inputs() -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let (b, n, d, k) = (2, 4, 3, 2);
    let behaviours = sines(b * n * d, 0.3, 1.0);
    let valid = vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0];
    let bias = vec![0.0, 0.0, 0.0, PAD_BIAS];
    let init = sines(k * n, 1.1, 1.0);
    (behaviours, valid, bias, init)
}

#[test]
fn dynamic_routing_and_label_aware_attention_equal_pytorch() {
    let (beh, valid, bias, init) = routing_inputs();
    let caps = dynamic_routing(
        tensor(&beh, [2, 4, 3], false),
        tensor(&valid, [2, 4], false),
        tensor(&bias, [2, 2], false),
        tensor(&init, [2, 4], false),
        3,
    );
    let got = caps.clone().into_data().try_to_vec::<f32>().unwrap();
    for (g, w) in got.iter().zip(TORCH_CAPSULES) {
        assert!((f64::from(*g) - w).abs() < 2e-6, "{got:?}");
    }
    let user = label_aware_attention(
        caps,
        tensor(&sines(6, 2.0, 1.0), [2, 3], false),
        tensor(&bias, [2, 2], false),
        2,
    );
    let got = user.into_data().try_to_vec::<f32>().unwrap();
    for (g, w) in got.iter().zip(TORCH_USER) {
        assert!((f64::from(*g) - w).abs() < 2e-6, "{got:?}");
    }
    // The interest count: max(1, min(K, ⌊log₂ n⌋)).
    let counts: Vec<usize> = [0, 1, 2, 3, 4, 7, 8, 1000]
        .map(|n| adaptive_interests(n, 4))
        .to_vec();
    assert_eq!(counts, [1, 1, 1, 1, 2, 2, 3, 4]);
}

#[test]
fn routing_gradients_match_finite_differences() {
    let (beh, valid, bias, init) = routing_inputs();
    let target = sines(6, 2.0, 1.0);
    check("behaviours", &beh, [2, 4, 3], |leaf| {
        let caps = dynamic_routing(
            leaf,
            tensor(&valid, [2, 4], false),
            tensor(&bias, [2, 2], false),
            tensor(&init, [2, 4], false),
            3,
        );
        let user = label_aware_attention(
            caps,
            tensor(&target, [2, 3], false),
            tensor(&bias, [2, 2], false),
            2,
        );
        (user * tensor(&sines(6, 0.9, 1.0), [2, 3], false)).sum()
    });
}

/// Each user alternates between two clusters (of 6 × 10 items): MIND, which keeps up to
/// two interests for such histories, ranks the held-out item far above chance.
#[test]
fn mind_learns_two_interest_users_deterministically() {
    let mut rng = SplitMix64::new(17);
    let (clusters, per, users, take) = (6usize, 10usize, 400usize, 12usize);
    let items = clusters * per;
    let sequences: Vec<Vec<u32>> = (0..users)
        .map(|_| {
            let a = rng.below(clusters);
            let b = (a + 1 + rng.below(clusters - 1)) % clusters;
            (0..take)
                .map(|t| {
                    let c = if t % 2 == 0 { a } else { b };
                    (c * per + rng.below(per)) as u32
                })
                .collect()
        })
        .collect();
    let train: Vec<&[u32]> = sequences.iter().map(|s| &s[..take - 1]).collect();
    let config = TwoTowerConfig {
        dim: 16,
        hidden: 32,
        history: 8,
        batch: 64,
        epochs: 20,
        examples_per_epoch: 0,
        learning_rate: 0.01,
        interests: 2,
        ..TwoTowerConfig::default()
    };
    let model = train_two_tower(&train, items, &config, |_, _| {}).unwrap();
    let d = model.dim();
    let mut hits = 0;
    for s in &sequences {
        let (history, target) = (&s[..take - 1], s[take - 1]);
        let interests = model.user_vectors(history).unwrap();
        assert_eq!(interests.len(), 2, "⌊log₂ 8⌋ = 3, capped at K = 2");
        let score = |i: usize| -> f32 {
            interests
                .iter()
                .map(|u| {
                    model.item_vectors()[i * d..(i + 1) * d]
                        .iter()
                        .zip(u)
                        .map(|(a, b)| a * b)
                        .sum::<f32>()
                })
                .fold(f32::NEG_INFINITY, f32::max)
        };
        let t = score(target as usize);
        let better = (0..items)
            .filter(|&i| i != target as usize)
            .filter(|&i| score(i) > t)
            .count();
        hits += usize::from(better < 20);
    }
    let hr = hits as f64 / users as f64;
    // A perfect model ranks the target among its user's 20 cluster items; chance is 1/3.
    assert!(hr > 0.6, "HR@20 {hr} (chance ≈ 0.33)");
    let again = train_two_tower(&train, items, &config, |_, _| {}).unwrap();
    assert_eq!(again.item_vectors(), model.item_vectors());
}

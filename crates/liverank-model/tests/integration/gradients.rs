//! Finite-difference checks of every layer and loss: burn's autodiff gradient of a random
//! projection of the output must match central differences of the same forward pass.
#![allow(clippy::unwrap_used, reason = "tests")]

use crate::support::{check, device, project, tensor, values, vec_of};
use burn::tensor::Tensor;
use liverank_model::config::{TrunkConfig, TrunkKind};
use liverank_model::layers::{Dense, ExtractionLevel, Mlp, Mmoe, Tower, Trunk, target_attention};
use liverank_model::loss::{bce_with_logits, masked_bce, pu_loss};
use liverank_model::rng::SplitMix64;

#[test]
fn dense_gradients_match_finite_differences() {
    let mut rng = SplitMix64::new(1);
    let layer = Dense::new(5, 3, &mut rng, &device());
    let x = values(&mut rng, 4 * 5, 1.0);
    check("dense input", &x, [4, 5], |x| project(layer.forward(x), 9));
    // Weight gradient: rebuild the layer around a tracked weight.
    let w = values(&mut rng, 15, 0.5);
    let b = values(&mut rng, 3, 0.5);
    let xt = tensor(&x, [4, 5], false);
    check("dense weight", &w, [5, 3], |w| {
        project(
            xt.clone().matmul(w) + tensor(&b, [3], false).unsqueeze::<2>(),
            9,
        )
    });
}

#[test]
fn mlp_gradients_match_finite_differences() {
    let mut rng = SplitMix64::new(2);
    let mlp = Mlp::new(6, &[8, 4], &mut rng, &device());
    let x = values(&mut rng, 3 * 6, 1.0);
    check("mlp", &x, [3, 6], |x| project(mlp.forward(x), 3));
}

#[test]
fn target_attention_gradients_match_finite_differences() {
    let mut rng = SplitMix64::new(3);
    let (b, l, d) = (2, 4, 3);
    let q = values(&mut rng, b * d, 1.0);
    let items = values(&mut rng, b * l * d, 1.0);
    // Row 0 has its last position padded.
    let bias = [0.0, 0.0, 0.0, -1e9, 0.0, 0.0, 0.0, 0.0];
    let bias_t = || tensor(&bias, [b, 1, l], false);
    let items_t = tensor(&items, [b, l, d], false);
    check("attention query", &q, [b, d], |q| {
        project(target_attention(q, items_t.clone(), bias_t()), 4)
    });
    let q_t = tensor(&q, [b, d], false);
    check("attention items", &items, [b, l, d], |k| {
        project(target_attention(q_t.clone(), k, bias_t()), 4)
    });
}

#[test]
fn target_attention_matches_a_hand_calculation() {
    // q = [1, 0], items [1, 0] and [0, 1], D = 2: scores 1/√2 and 0,
    // weights e^{0.7071}/(e^{0.7071}+1) = 0.66976 and 0.33024.
    let q = tensor(&[1.0, 0.0], [1, 2], false);
    let items = tensor(&[1.0, 0.0, 0.0, 1.0], [1, 2, 2], false);
    let out = vec_of(target_attention(
        q.clone(),
        items.clone(),
        tensor(&[0.0, 0.0], [1, 1, 2], false),
    ));
    assert!(
        (out[0] - 0.669_761).abs() < 1e-5 && (out[1] - 0.330_239).abs() < 1e-5,
        "{out:?}"
    );
    // Padding the second item leaves only the first.
    let out = vec_of(target_attention(
        q,
        items,
        tensor(&[0.0, -1e9], [1, 1, 2], false),
    ));
    assert!(
        (out[0] - 1.0).abs() < 1e-6 && out[1].abs() < 1e-6,
        "{out:?}"
    );
}

#[test]
fn mmoe_and_ple_gradients_match_finite_differences() {
    let mut rng = SplitMix64::new(4);
    let x = values(&mut rng, 3 * 6, 1.0);
    let mmoe = Mmoe::new(6, 3, 4, 2, &mut rng, &device());
    check("mmoe", &x, [3, 6], |h| {
        let outs = mmoe.forward(h);
        project(Tensor::cat(outs, 1), 5)
    });
    for kind in [TrunkKind::Cgc, TrunkKind::Ple] {
        let config = TrunkConfig {
            kind,
            shared_experts: 2,
            specific_experts: 1,
            levels: 2,
            expert_hidden: 4,
        };
        let trunk = Trunk::new(6, &config, 3, &mut rng, &device());
        check(&format!("{kind:?}"), &x, [3, 6], |h| {
            project(Tensor::cat(trunk.forward(h, 3), 1), 6)
        });
    }
    let tower = Tower::new(6, &[5], &mut rng, &device());
    check("tower", &x, [3, 6], |h| project(tower.forward(h), 7));
}

#[test]
fn cgc_with_only_shared_experts_equals_mmoe_with_the_same_experts() {
    let mut rng = SplitMix64::new(5);
    let mmoe = Mmoe::new(6, 3, 4, 2, &mut rng, &device());
    let cgc = ExtractionLevel {
        specific: Vec::new(),
        shared: mmoe.experts.clone(),
        task_gates: mmoe.gates.clone(),
        shared_gate: None,
    };
    let h = tensor(&values(&mut rng, 5 * 6, 1.0), [5, 6], false);
    let a = mmoe.forward(h.clone());
    let (b, shared) = cgc.forward(&[h.clone(), h.clone()], &h);
    assert!(shared.is_none());
    for (x, y) in a.into_iter().zip(b) {
        let (x, y) = (vec_of(x), vec_of(y));
        for (p, q) in x.iter().zip(&y) {
            assert!((p - q).abs() < 1e-6, "{p} vs {q}");
        }
    }
}

#[test]
fn ple_levels_feed_each_other() {
    // A 2-level PLE differs from its first level alone: the second level transforms it.
    let mut rng = SplitMix64::new(6);
    let config = TrunkConfig {
        kind: TrunkKind::Ple,
        shared_experts: 2,
        specific_experts: 1,
        levels: 2,
        expert_hidden: 6,
    };
    let trunk = Trunk::new(6, &config, 2, &mut rng, &device());
    let h = tensor(&values(&mut rng, 4 * 6, 1.0), [4, 6], false);
    let (first, shared) = trunk.levels[0].forward(&[h.clone(), h.clone()], &h);
    assert!(shared.is_some(), "a level below the top has a shared gate");
    assert!(
        trunk.levels[1].shared_gate.is_none(),
        "the top level has none"
    );
    let full = trunk.forward(h, 2);
    assert_ne!(vec_of(first[0].clone()), vec_of(full[0].clone()));
}

#[test]
fn bce_matches_hand_values_and_gradients() {
    // BCE(z=0, y=1) = ln 2; BCE(z=2, y=0) = ln(1+e^2) = 2.126928; BCE(z=-30, y=1) = 30.
    let z = tensor(&[0.0, 2.0, -30.0], [1, 3], false);
    let y = tensor(&[1.0, 0.0, 1.0], [1, 3], false);
    let v = vec_of(bce_with_logits(z, y));
    assert!((v[0] - std::f32::consts::LN_2).abs() < 1e-6);
    assert!((v[1] - 2.126_928).abs() < 1e-5);
    assert!((v[2] - 30.0).abs() < 1e-4);
    let mut rng = SplitMix64::new(7);
    let z = values(&mut rng, 4 * 3, 3.0);
    let labels = [1., 0., 1., 0., 0., 1., 1., 1., 0., 0., 1., 0.];
    let mask = [1., 1., 0., 1., 0., 1., 1., 1., 1., 0., 0., 1.];
    let w = [1.0, 2.0, 0.5];
    check("masked bce", &z, [4, 3], |z| {
        masked_bce(
            z,
            tensor(&labels, [4, 3], false),
            tensor(&mask, [4, 3], false),
            tensor(&w, [1, 3], false),
        )
    });
    // Analytic gradient: mask·w·(σ(z) − y)/B, and exactly zero where masked.
    let leaf = tensor(&z, [4, 3], true);
    let loss = masked_bce(
        leaf.clone(),
        tensor(&labels, [4, 3], false),
        tensor(&mask, [4, 3], false),
        tensor(&w, [1, 3], false),
    );
    let g = vec_of(leaf.grad(&loss.backward()).unwrap());
    for i in 0..12 {
        let sigma = 1.0 / (1.0 + (-z[i]).exp());
        let expected = mask[i] * w[i % 3] * (sigma - labels[i]) / 4.0;
        assert!(
            (g[i] - expected).abs() < 1e-6,
            "{i}: {} vs {expected}",
            g[i]
        );
    }
}

#[test]
fn pu_loss_gradient_turns_a_fast_negative_into_a_positive() {
    // Two rows, one task: row 0 fast with label 0; row 1 the slow sample of the same
    // exposure reporting the missing positive. The summed gradient on the shared logit z is
    // σ(z) − 1: the gradient of a positive label.
    let z = 0.3f32;
    let leaf = tensor(&[z, z], [2, 1], true);
    let loss = pu_loss(
        leaf.clone(),
        tensor(&[0.0, 1.0], [2, 1], false),
        tensor(&[1.0, 1.0], [2, 1], false),
        tensor(&[0.0, 1.0], [2, 1], false),
        tensor(&[1.0], [1, 1], false),
    );
    let value = vec_of(loss.clone())[0];
    // Value: [BCE(0.3, 0) − 0.3] / 2 = [ln(1 + e^0.3) − 0.3] / 2.
    let expected = ((1.0f32 + 0.3f32.exp()).ln() - 0.3) / 2.0;
    assert!((value - expected).abs() < 1e-6, "{value} vs {expected}");
    let g = vec_of(leaf.grad(&loss.backward()).unwrap());
    let sigma = 1.0 / (1.0 + (-z).exp());
    assert!((g[0] - sigma / 2.0).abs() < 1e-6);
    assert!((g[1] + 0.5).abs() < 1e-6, "slow gradient is −1/B: {}", g[1]);
    assert!(((g[0] + g[1]) - (sigma - 1.0) / 2.0).abs() < 1e-6);

    // Finite differences over a random batch with masks and weights.
    let mut rng = SplitMix64::new(8);
    let zs = values(&mut rng, 4 * 2, 3.0);
    let labels = [0., 1., 1., 0., 0., 0., 1., 1.];
    let mask = [1., 1., 1., 1., 1., 1., 0., 1.];
    let slow = [0., 1., 0., 1.];
    check("pu loss", &zs, [4, 2], |z| {
        pu_loss(
            z,
            tensor(&labels, [4, 2], false),
            tensor(&mask, [4, 2], false),
            tensor(&slow, [4, 1], false),
            tensor(&[1.0, 0.5], [1, 2], false),
        )
    });
}

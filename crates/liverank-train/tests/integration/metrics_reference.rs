//! Metrics against brute force: AUC as the pairwise count (ties ½), GAUC as a naive loop.
#![allow(clippy::unwrap_used, reason = "tests")]

use liverank_train::metrics::{auc, calibration, gauc, log_loss};
use proptest::prelude::*;

fn pairwise_auc(scores: &[f32], labels: &[bool]) -> Option<f64> {
    let (mut wins, mut pairs) = (0.0, 0.0);
    for (i, &si) in scores.iter().enumerate() {
        for (j, &sj) in scores.iter().enumerate() {
            if labels[i] && !labels[j] {
                pairs += 1.0;
                wins += if si > sj {
                    1.0
                } else if si == sj {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    (pairs > 0.0).then(|| wins / pairs)
}

#[test]
fn auc_hand_cases() {
    assert_eq!(auc(&[0.1, 0.9], &[false, true]), Some(1.0));
    assert_eq!(auc(&[0.9, 0.1], &[false, true]), Some(0.0));
    assert_eq!(auc(&[0.5, 0.5], &[false, true]), Some(0.5));
    // Positives 0.8, 0.4; negatives 0.4, 0.2: pairs (0.8>0.4) (0.8>0.2) (0.4=0.4 → ½) (0.4>0.2) = 3.5/4.
    assert_eq!(
        auc(&[0.8, 0.4, 0.4, 0.2], &[true, true, false, false]),
        Some(0.875)
    );
    assert_eq!(auc(&[0.3, 0.2], &[true, true]), None);
}

#[test]
fn gauc_weights_users_by_their_samples() {
    // User 1: 3 samples, AUC 1; user 2: 2 samples, AUC 0; user 3: one class only (skipped).
    let users = [1, 1, 1, 2, 2, 3];
    let scores = [0.9, 0.1, 0.2, 0.1, 0.9, 0.5];
    let labels = [true, false, false, true, false, true];
    assert_eq!(gauc(&users, &scores, &labels), Some(3.0 / 5.0));
}

#[test]
fn log_loss_and_calibration_by_hand() {
    let ll = log_loss(&[0.5, 0.9], &[true, false]).unwrap();
    assert!((ll - (2f64.ln() + 10f64.ln()) / 2.0).abs() < 1e-6);
    assert!(
        (calibration(&[0.2, 0.2, 0.2, 0.2], &[true, false, false, false]).unwrap() - 0.8).abs()
            < 1e-6
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn auc_equals_pairwise_count_with_ties(rows in proptest::collection::vec((0u8..6, any::<bool>()), 1..80)) {
        // Scores from a small set make ties common.
        let scores: Vec<f32> = rows.iter().map(|(s, _)| f32::from(*s) / 5.0).collect();
        let labels: Vec<bool> = rows.iter().map(|(_, l)| *l).collect();
        let (a, b) = (auc(&scores, &labels), pairwise_auc(&scores, &labels));
        prop_assert_eq!(a.is_some(), b.is_some());
        if let (Some(a), Some(b)) = (a, b) {
            prop_assert!((a - b).abs() < 1e-12, "{} vs {}", a, b);
        }
    }

    #[test]
    fn gauc_equals_naive_per_user_loop(rows in proptest::collection::vec((0u64..5, 0u8..4, any::<bool>()), 1..60)) {
        let users: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let scores: Vec<f32> = rows.iter().map(|r| f32::from(r.1)).collect();
        let labels: Vec<bool> = rows.iter().map(|r| r.2).collect();
        let (mut num, mut den) = (0.0, 0.0);
        for u in 0..5 {
            let idx: Vec<usize> = (0..rows.len()).filter(|&i| users[i] == u).collect();
            let s: Vec<f32> = idx.iter().map(|&i| scores[i]).collect();
            let l: Vec<bool> = idx.iter().map(|&i| labels[i]).collect();
            if let Some(a) = pairwise_auc(&s, &l) {
                num += a * idx.len() as f64;
                den += idx.len() as f64;
            }
        }
        let naive = (den > 0.0).then(|| num / den);
        let got = gauc(&users, &scores, &labels);
        prop_assert_eq!(got.is_some(), naive.is_some());
        if let (Some(a), Some(b)) = (got, naive) {
            prop_assert!((a - b).abs() < 1e-12);
        }
    }
}

//! The two statistics every crate shares: the area under the ROC curve and the quantile
//! of a sample. One definition each, so a metric printed by training, by the simulator's
//! realism report or by a benchmark is the same statistic everywhere.

/// Area under the ROC curve of `scores` against `labels` (the first `min(len)` pairs);
/// `None` when one class is absent.
///
/// The rank-sum (Mann–Whitney) form: sort once, give tied scores their average rank, so a
/// positive and a negative with equal scores count ½ — the same as the pairwise
/// definition. Generic over the score type (`f32` model outputs, `f64` probabilities);
/// widening to `f64` keeps every order and tie, so the value does not depend on it.
pub fn auc<S: Copy + Into<f64>>(scores: &[S], labels: &[bool]) -> Option<f64> {
    let n = scores.len().min(labels.len());
    let positives = labels[..n].iter().filter(|&&l| l).count();
    let negatives = n - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let value = |i: usize| -> f64 { scores[i].into() };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| value(a).total_cmp(&value(b)));
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && value(order[j]) == value(order[i]) {
            j += 1;
        }
        // Ranks i+1 ..= j share their average.
        let average = (i + 1 + j) as f64 / 2.0;
        let tied_positives = order[i..j].iter().filter(|&&k| labels[k]).count();
        rank_sum += average * tied_positives as f64;
        i = j;
    }
    let p = positives as f64;
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// The `q`-quantile (`0 ≤ q ≤ 1`) of an ascending sample by the nearest-rank definition:
/// the smallest value with at least `q·n` of the sample at or below it (`q = 0` gives the
/// minimum). NaN for an empty sample. Every benchmark's p50 / p99 is this statistic.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// [`quantile_sorted`] of an unsorted sample (sorts it in place, NaNs last).
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    quantile_sorted(values, q)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: the share of (positive, negative) pairs ordered right, ties half.
    fn auc_pairs(scores: &[f64], labels: &[bool]) -> f64 {
        let (mut good, mut n) = (0.0, 0.0);
        for (a, _) in scores.iter().zip(labels).filter(|x| *x.1) {
            for (b, _) in scores.iter().zip(labels).filter(|x| !*x.1) {
                n += 1.0;
                good += if a > b {
                    1.0
                } else if a == b {
                    0.5
                } else {
                    0.0
                };
            }
        }
        good / n
    }

    #[test]
    fn auc_matches_the_pairwise_count_with_ties() {
        let mut rng = crate::rng::SplitMix64::new(3);
        for _ in 0..20 {
            let scores: Vec<f64> = (0..60).map(|_| rng.below(7) as f64 / 7.0).collect();
            let labels: Vec<bool> = (0..60).map(|_| rng.below(5) < 2).collect();
            let (a, b) = (auc(&scores, &labels).unwrap(), auc_pairs(&scores, &labels));
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        // (0.9, 0.1), (0.9, 0.5), (0.5, 0.1) right, (0.5, 0.5) tied: 3.5 / 4.
        let got = auc(&[0.9f32, 0.5, 0.5, 0.1], &[true, true, false, false]);
        assert_eq!(got, Some(0.875));
        assert_eq!(auc(&[0.1, 0.9], &[true, false]), Some(0.0));
        assert_eq!(auc(&[0.1, 0.9], &[true, true]), None);
    }

    #[test]
    fn quantile_is_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile_sorted(&v, 0.5), 50.0);
        assert_eq!(quantile_sorted(&v, 0.99), 99.0);
        assert_eq!(quantile_sorted(&v, 0.991), 100.0);
        assert_eq!(quantile_sorted(&v, 0.0), 1.0);
        assert_eq!(quantile_sorted(&v, 1.0), 100.0);
        let mut w = vec![3.0, 1.0, 2.0];
        assert_eq!(quantile(&mut w, 0.5), 2.0);
        assert!(quantile_sorted(&[], 0.5).is_nan());
    }
}

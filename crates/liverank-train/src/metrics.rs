//! Ranking metrics: AUC (ties count half), GAUC, log loss, calibration.
//!
//! AUC is the rank-sum (Mann–Whitney) form: sort once, give tied scores their average rank,
//! so a positive and a negative with equal scores count ½ — the same as the pairwise
//! definition. GAUC averages per-user AUC over users with both classes, weighted by the
//! user's number of samples (impressions), as in the click-model literature.

use std::collections::HashMap;

/// Area under the ROC curve; `None` when one class is absent. The workspace's one AUC.
pub fn auc(scores: &[f32], labels: &[bool]) -> Option<f64> {
    liverank_types::stats::auc(scores, labels)
}

/// User-weighted GAUC: Σ_u n_u·AUC_u / Σ_u n_u over users whose samples hold both classes.
pub fn gauc(users: &[u64], scores: &[f32], labels: &[bool]) -> Option<f64> {
    let mut by_user: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, &u) in users
        .iter()
        .enumerate()
        .take(scores.len().min(labels.len()))
    {
        by_user.entry(u).or_default().push(i);
    }
    let mut users_sorted: Vec<(&u64, &Vec<usize>)> = by_user.iter().collect();
    users_sorted.sort_unstable_by_key(|(u, _)| **u);
    let (mut weighted, mut weight) = (0.0, 0.0);
    let (mut s, mut l) = (Vec::new(), Vec::new());
    for (_, rows) in users_sorted {
        s.clear();
        l.clear();
        s.extend(rows.iter().map(|&i| scores[i]));
        l.extend(rows.iter().map(|&i| labels[i]));
        if let Some(a) = auc(&s, &l) {
            weighted += a * rows.len() as f64;
            weight += rows.len() as f64;
        }
    }
    (weight > 0.0).then(|| weighted / weight)
}

/// Mean binary cross-entropy with probabilities clamped to [1e-7, 1 − 1e-7].
pub fn log_loss(scores: &[f32], labels: &[bool]) -> Option<f64> {
    let n = scores.len().min(labels.len());
    if n == 0 {
        return None;
    }
    let total: f64 = scores
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = f64::from(p).clamp(1e-7, 1.0 - 1e-7);
            if y { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    Some(total / n as f64)
}

/// Mean prediction / mean label (1 = calibrated); `None` without positives.
pub fn calibration(scores: &[f32], labels: &[bool]) -> Option<f64> {
    let positives = labels.iter().filter(|&&l| l).count();
    if positives == 0 || scores.is_empty() {
        return None;
    }
    let mean_p = scores.iter().map(|&p| f64::from(p)).sum::<f64>() / scores.len() as f64;
    Some(mean_p / (positives as f64 / labels.len() as f64))
}

/// All metrics of one task.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct TaskMetrics {
    /// Samples.
    pub count: usize,
    /// Positive labels.
    pub positives: usize,
    /// AUC.
    pub auc: Option<f64>,
    /// User-weighted GAUC.
    pub gauc: Option<f64>,
    /// Log loss.
    pub log_loss: Option<f64>,
    /// Mean prediction / mean label.
    pub calibration: Option<f64>,
}

/// Computes every metric of one task.
pub fn evaluate(users: &[u64], scores: &[f32], labels: &[bool]) -> TaskMetrics {
    TaskMetrics {
        count: scores.len(),
        positives: labels.iter().filter(|&&l| l).count(),
        auc: auc(scores, labels),
        gauc: gauc(users, scores, labels),
        log_loss: log_loss(scores, labels),
        calibration: calibration(scores, labels),
    }
}

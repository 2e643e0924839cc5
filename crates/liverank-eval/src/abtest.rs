//! The statistics of a closed-loop A/B test (`liverank abtest`): users split into arms by
//! a seeded hash, each user's outcome summed from the events and the ground-truth
//! exposures of the run, and per arm every metric with the 95 % interval of its difference
//! to the control arm, by bootstrap over users.
//!
//! The unit of randomisation is the user, so the unit of resampling is too: a bootstrap
//! replicate draws each arm's users with replacement (arms independently) and recomputes
//! each metric from the drawn users' sums. Per-user means (clicks, watch minutes, gifts,
//! purchases per user) and ratios of sums (click-through, highlight share, expected
//! click-through from the true click probabilities) are both computed that way, so a
//! ratio's interval carries the correlation of its numerator and denominator within a
//! user.

use liverank_types::rng::{SplitMix64, splitmix64};
use liverank_types::{Event, EventKind, ItemRef, Page, RequestId, UserId};
use serde::Serialize;
use std::collections::HashMap;

/// The arm of `user` among `arms` under `seed`: a hash of both, so assignment is fixed per
/// user, independent of anything the user does, and reshuffled by another seed.
pub fn arm_of(seed: u64, user: UserId, arms: usize) -> usize {
    let mut state = seed ^ user.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let h = splitmix64(&mut state);
    // Multiply-shift: uniform over arms without the modulo bias of small ranges.
    ((u128::from(h) * arms as u128) >> 64) as usize
}

/// What one live exposure of the feed was, from the simulator's ground truth.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShownExposure {
    /// The viewer.
    pub user: UserId,
    /// The true probability that the viewer enters from this exposure.
    pub p_click: f64,
    /// The room was in a highlight when shown.
    pub in_highlight: bool,
}

/// One user's totals over the test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct UserOutcome {
    /// Live rooms shown in the feed.
    pub shown: f64,
    /// Of those, shown during a highlight.
    pub highlight: f64,
    /// Sum of the true click probabilities of what was shown.
    pub expected_clicks: f64,
    /// Rooms entered from the feed (an `Enter` carrying a request id).
    pub clicks: f64,
    /// Minutes watched in live rooms.
    pub watch_minutes: f64,
    /// Gifts sent.
    pub gifts: f64,
    /// Orders placed.
    pub purchases: f64,
}

/// Sums each user's outcome from the run's events and its ground-truth exposures. Users
/// that did nothing keep a zero outcome (they were assigned all the same).
pub fn outcomes(
    events: &[Event],
    shown: &[ShownExposure],
    users: &[UserId],
) -> HashMap<UserId, UserOutcome> {
    let mut out: HashMap<UserId, UserOutcome> =
        users.iter().map(|&u| (u, UserOutcome::default())).collect();
    for s in shown {
        let o = out.entry(s.user).or_default();
        o.shown += 1.0;
        o.expected_clicks += s.p_click;
        if s.in_highlight {
            o.highlight += 1.0;
        }
    }
    for e in events {
        match &e.kind {
            EventKind::Enter {
                user,
                request_id: Some(_),
                ..
            } => out.entry(*user).or_default().clicks += 1.0,
            EventKind::Leave { user, watch_ms, .. } => {
                out.entry(*user).or_default().watch_minutes += watch_ms.0 as f64 / 60_000.0;
            }
            EventKind::Gift { user, .. } => out.entry(*user).or_default().gifts += 1.0,
            EventKind::Purchase { user, .. } => out.entry(*user).or_default().purchases += 1.0,
            _ => {}
        }
    }
    out
}

/// The live exposures of the feed as the events show them: `(user, request)` of every
/// live impression on the featured page (to check the ground truth's count against).
pub fn live_impressions(events: &[Event]) -> Vec<(UserId, RequestId)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Impression {
                user,
                item: ItemRef::Live(_),
                request_id,
                page: Page::Featured,
                ..
            } => Some((*user, *request_id)),
            _ => None,
        })
        .collect()
}

/// A metric of an arm, computed from its users' outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Metric {
    /// Rooms entered from the feed per user.
    ClicksPerUser,
    /// Clicks over rooms shown.
    ClickThrough,
    /// The true click probability of what was shown, averaged over exposures.
    ExpectedClickThrough,
    /// Live minutes watched per user.
    WatchMinutesPerUser,
    /// Gifts per user.
    GiftsPerUser,
    /// Orders per user.
    PurchasesPerUser,
    /// Share of the rooms shown that were in a highlight.
    HighlightShare,
}

impl Metric {
    /// Every metric, in table order.
    pub const ALL: [Metric; 7] = [
        Metric::ClicksPerUser,
        Metric::ClickThrough,
        Metric::ExpectedClickThrough,
        Metric::WatchMinutesPerUser,
        Metric::GiftsPerUser,
        Metric::PurchasesPerUser,
        Metric::HighlightShare,
    ];

    /// Column name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::ClicksPerUser => "clicks / user",
            Metric::ClickThrough => "CTR",
            Metric::ExpectedClickThrough => "true CTR",
            Metric::WatchMinutesPerUser => "watch min / user",
            Metric::GiftsPerUser => "gifts / user",
            Metric::PurchasesPerUser => "purchases / user",
            Metric::HighlightShare => "highlight share",
        }
    }

    /// The metric of a sum of outcomes over `users` users (`NaN` when undefined).
    pub fn of(self, sum: &UserOutcome, users: f64) -> f64 {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        match self {
            Metric::ClicksPerUser => ratio(sum.clicks, users),
            Metric::ClickThrough => ratio(sum.clicks, sum.shown),
            Metric::ExpectedClickThrough => ratio(sum.expected_clicks, sum.shown),
            Metric::WatchMinutesPerUser => ratio(sum.watch_minutes, users),
            Metric::GiftsPerUser => ratio(sum.gifts, users),
            Metric::PurchasesPerUser => ratio(sum.purchases, users),
            Metric::HighlightShare => ratio(sum.highlight, sum.shown),
        }
    }
}

fn add(sum: &mut UserOutcome, o: &UserOutcome) {
    sum.shown += o.shown;
    sum.highlight += o.highlight;
    sum.expected_clicks += o.expected_clicks;
    sum.clicks += o.clicks;
    sum.watch_minutes += o.watch_minutes;
    sum.gifts += o.gifts;
    sum.purchases += o.purchases;
}

/// The sum of `outcomes`.
pub fn total(outcomes: &[UserOutcome]) -> UserOutcome {
    let mut sum = UserOutcome::default();
    for o in outcomes {
        add(&mut sum, o);
    }
    sum
}

/// One metric of one arm.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MetricCell {
    /// The metric.
    pub metric: Metric,
    /// Its value over the arm's users.
    pub value: f64,
    /// Value minus the control's.
    pub diff: f64,
    /// 2.5 % and 97.5 % bootstrap quantiles of the difference (0, 0 for the control).
    pub ci: (f64, f64),
}

impl MetricCell {
    /// Whether the interval of the difference covers 0.
    pub fn covers_zero(&self) -> bool {
        self.ci.0 <= 0.0 && 0.0 <= self.ci.1
    }
}

/// One arm's row of the A/B table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArmRow {
    /// Arm name.
    pub arm: String,
    /// Users assigned.
    pub users: usize,
    /// Totals over its users.
    pub total: UserOutcome,
    /// Every metric, in [`Metric::ALL`] order.
    pub metrics: Vec<MetricCell>,
}

/// Per arm, every metric with the bootstrap interval of its difference to arm `control`.
/// `resamples` replicates, seeded by `seed`. Arms with no users give `NaN` values.
pub fn compare(
    arms: &[(String, Vec<UserOutcome>)],
    control: usize,
    resamples: usize,
    seed: u64,
) -> Vec<ArmRow> {
    let mut rng = SplitMix64::new(seed);
    // Replicates of every arm's metrics: reps[arm][rep][metric].
    let reps: Vec<Vec<[f64; Metric::ALL.len()]>> = arms
        .iter()
        .map(|(_, users)| {
            (0..resamples)
                .map(|_| {
                    let mut sum = UserOutcome::default();
                    for _ in 0..users.len() {
                        add(&mut sum, &users[rng.below(users.len())]);
                    }
                    Metric::ALL.map(|m| m.of(&sum, users.len() as f64))
                })
                .collect()
        })
        .collect();
    let point: Vec<[f64; Metric::ALL.len()]> = arms
        .iter()
        .map(|(_, users)| {
            let sum = total(users);
            Metric::ALL.map(|m| m.of(&sum, users.len() as f64))
        })
        .collect();
    arms.iter()
        .enumerate()
        .map(|(a, (name, users))| ArmRow {
            arm: name.clone(),
            users: users.len(),
            total: total(users),
            metrics: Metric::ALL
                .iter()
                .enumerate()
                .map(|(k, &metric)| {
                    let ci = if a == control {
                        (0.0, 0.0)
                    } else {
                        let mut diffs: Vec<f64> = (0..resamples)
                            .map(|r| reps[a][r][k] - reps[control][r][k])
                            .filter(|d| d.is_finite())
                            .collect();
                        diffs.sort_by(f64::total_cmp);
                        (quantile(&diffs, 0.025), quantile(&diffs, 0.975))
                    };
                    MetricCell {
                        metric,
                        value: point[a][k],
                        diff: point[a][k] - point[control][k],
                        ci,
                    }
                })
                .collect(),
        })
        .collect()
}

/// The `q` quantile of sorted values, linear between order statistics (`NaN` if empty).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use liverank_types::{DurationMs, EventId, EventTime, LiveId};

    #[test]
    fn arms_are_balanced_fixed_per_user_and_reshuffled_by_the_seed() {
        let users: Vec<UserId> = (1..=20_000).map(UserId).collect();
        let mut counts = [0usize; 3];
        for &u in &users {
            counts[arm_of(5, u, 3)] += 1;
            assert_eq!(arm_of(5, u, 3), arm_of(5, u, 3));
        }
        // 20,000 / 3 ± 4 standard deviations (sqrt(20000 · 1/3 · 2/3) ≈ 67).
        for c in counts {
            assert!((c as f64 - 20_000.0 / 3.0).abs() < 270.0, "{counts:?}");
        }
        let moved = users
            .iter()
            .filter(|&&u| arm_of(5, u, 2) != arm_of(6, u, 2))
            .count();
        assert!((9_000..11_000).contains(&moved), "{moved} of 20000 moved");
    }

    #[test]
    fn outcomes_sum_clicks_watch_gifts_and_the_truth_per_user() {
        let ev = |ts: i64, kind| Event {
            event_id: EventId(ts as u64),
            ts: EventTime(ts),
            kind,
        };
        let (u1, u2, live) = (UserId(1), UserId(2), LiveId(9));
        let events = vec![
            ev(
                1,
                EventKind::Enter {
                    user: u1,
                    live,
                    request_id: Some(RequestId(4)),
                },
            ),
            // An organic enter is not a click of the feed.
            ev(
                2,
                EventKind::Enter {
                    user: u2,
                    live,
                    request_id: None,
                },
            ),
            ev(
                3,
                EventKind::Leave {
                    user: u1,
                    live,
                    watch_ms: DurationMs(90_000),
                },
            ),
            ev(
                4,
                EventKind::Gift {
                    user: u1,
                    live,
                    value: 5,
                },
            ),
        ];
        let shown = [
            ShownExposure {
                user: u1,
                p_click: 0.25,
                in_highlight: true,
            },
            ShownExposure {
                user: u1,
                p_click: 0.5,
                in_highlight: false,
            },
        ];
        let got = outcomes(&events, &shown, &[u1, u2, UserId(3)]);
        assert_eq!(
            got[&u1],
            UserOutcome {
                shown: 2.0,
                highlight: 1.0,
                expected_clicks: 0.75,
                clicks: 1.0,
                watch_minutes: 1.5,
                gifts: 1.0,
                purchases: 0.0,
            }
        );
        assert_eq!(got[&u2], UserOutcome::default());
        assert_eq!(got[&UserId(3)], UserOutcome::default());
        let sum = total(&[got[&u1], got[&u2], got[&UserId(3)]]);
        assert!((Metric::ClicksPerUser.of(&sum, 3.0) - 1.0 / 3.0).abs() < 1e-12);
        assert!((Metric::ClickThrough.of(&sum, 3.0) - 0.5).abs() < 1e-12);
        assert!((Metric::ExpectedClickThrough.of(&sum, 3.0) - 0.375).abs() < 1e-12);
        assert!((Metric::HighlightShare.of(&sum, 3.0) - 0.5).abs() < 1e-12);
    }

    /// Two arms of users drawn from one distribution: the interval of the difference
    /// covers 0 about 95 % of the time; an arm with one more click per user is found.
    #[test]
    fn the_bootstrap_interval_covers_zero_under_the_null_and_finds_a_real_gain() {
        let draw = |rng: &mut SplitMix64, n: usize, lift: f64| -> Vec<UserOutcome> {
            (0..n)
                .map(|_| {
                    let shown = (rng.below(10) + 1) as f64;
                    let clicks =
                        (0..shown as usize).filter(|_| rng.next_f32() < 0.2).count() as f64;
                    UserOutcome {
                        shown,
                        clicks: clicks + lift,
                        ..UserOutcome::default()
                    }
                })
                .collect()
        };
        let mut rng = SplitMix64::new(11);
        let mut covered = 0;
        let trials = 60;
        for t in 0..trials {
            let arms = vec![
                ("a".to_string(), draw(&mut rng, 300, 0.0)),
                ("b".to_string(), draw(&mut rng, 300, 0.0)),
            ];
            let rows = compare(&arms, 0, 400, t);
            if rows[1].metrics[0].covers_zero() {
                covered += 1;
            }
        }
        // 95 % nominal: P(covered ≤ 50 of 60) < 0.5 % under Binomial(60, 0.95).
        assert!(covered > 50, "covered {covered} of {trials}");
        let arms = vec![
            ("a".to_string(), draw(&mut rng, 300, 0.0)),
            ("b".to_string(), draw(&mut rng, 300, 1.0)),
        ];
        let rows = compare(&arms, 0, 400, 1);
        let cell = rows[1].metrics[0];
        assert!(cell.ci.0 > 0.5 && cell.ci.1 < 1.5, "{cell:?}");
        assert!((cell.diff - (rows[1].metrics[0].value - rows[0].metrics[0].value)).abs() < 1e-12);
        assert_eq!(rows[0].metrics[0].ci, (0.0, 0.0));
    }

    /// The interval is closed: an upper bound of exactly 0 (an arm where nobody bought,
    /// as the A/A runs on tiny show for purchases) still covers 0.
    #[test]
    fn an_interval_ending_at_zero_covers_zero() {
        let cell = |ci| MetricCell {
            metric: Metric::PurchasesPerUser,
            value: 0.0,
            diff: -0.001,
            ci,
        };
        assert!(cell((-0.0029, 0.0)).covers_zero());
        assert!(cell((0.0, 0.002)).covers_zero());
        assert!(!cell((0.0001, 0.002)).covers_zero());
        assert!(!cell((-0.002, -0.0001)).covers_zero());
    }

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert!((quantile(&v, 0.9) - 4.6).abs() < 1e-12);
        assert!(quantile(&[], 0.5).is_nan());
    }
}

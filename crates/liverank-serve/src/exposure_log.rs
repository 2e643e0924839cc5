//! What the ranker saw, per served exposure `(request_id, live)` — the Monolith / EasyRec
//! "feature logging" that removes train/serve skew.
//!
//! Every room a recommend response returns is logged with the [`ExposureFeatures`] it was
//! scored with and the instant its history was read. When the platform then shows the
//! room (an `Impression` with that `request_id`), the sample engine emits samples of the
//! exposure; [`ExposureLog::join`] replaces their features with the logged ones and their
//! `exposure_ts` with the served instant, so a trainer that builds the row (the features,
//! plus the history read at `exposure_ts`) gets exactly the row that was scored.
//!
//! Bounded: the oldest entries are forgotten first (`serve.exposure_log`); a sample whose
//! exposure was forgotten (or never served here) keeps the engine's features, which are
//! computed by the same formulas (see `world::exposure_features`).

use liverank_types::{EventTime, ExposureFeatures, LiveId, RequestId, Sample, UserId};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// One served exposure.
#[derive(Clone, Debug, PartialEq)]
pub struct ServedExposure {
    /// The viewer.
    pub user: UserId,
    /// Request time: the history was read at this instant.
    pub ts: EventTime,
    /// The features the ranker scored.
    pub features: Arc<ExposureFeatures>,
    /// The model version that scored it.
    pub model_version: u64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<(RequestId, LiveId), ServedExposure>,
    order: VecDeque<(RequestId, LiveId)>,
}

/// The bounded log of served exposures.
#[derive(Debug)]
pub struct ExposureLog {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl ExposureLog {
    /// A log keeping at most `capacity` exposures.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned log is still a consistent map (each insert is one statement).
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Logs the exposures of one response.
    pub fn record(&self, request_id: RequestId, served: Vec<(LiveId, ServedExposure)>) {
        let mut inner = self.lock();
        for (live, exposure) in served {
            let key = (request_id, live);
            if inner.entries.insert(key, exposure).is_none() {
                inner.order.push_back(key);
            }
        }
        while inner.order.len() > self.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.entries.remove(&old);
            }
        }
    }

    /// The logged exposure, if still held.
    pub fn get(&self, request_id: RequestId, live: LiveId) -> Option<ServedExposure> {
        self.lock().entries.get(&(request_id, live)).cloned()
    }

    /// Exposures held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gives `sample` the served features and instant of its exposure, if logged for the
    /// same user; returns whether it did.
    pub fn join(&self, sample: &mut Sample) -> bool {
        match self.get(sample.request_id, sample.live) {
            Some(e) if e.user == sample.user => {
                sample.features = e.features;
                sample.exposure_ts = e.ts;
                true
            }
            Some(_) | None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(user: u64, ts: i64) -> ServedExposure {
        ServedExposure {
            user: UserId(user),
            ts: EventTime(ts),
            features: Arc::new(ExposureFeatures {
                hour: 7,
                ..ExposureFeatures::default()
            }),
            model_version: 1,
        }
    }

    #[test]
    fn log_forgets_the_oldest_first_and_joins_only_the_same_user() {
        let log = ExposureLog::new(2);
        log.record(RequestId(1), vec![(LiveId(10), served(5, 100))]);
        log.record(
            RequestId(2),
            vec![(LiveId(10), served(6, 200)), (LiveId(11), served(6, 200))],
        );
        assert_eq!(log.len(), 2);
        assert!(log.get(RequestId(1), LiveId(10)).is_none());
        assert_eq!(
            log.get(RequestId(2), LiveId(11)).unwrap().ts,
            EventTime(200)
        );
    }
}

//! What each event does to the exposure and session state (SPEC §3): impressions open
//! exposures, enters start sessions and mark clicks, in-room actions record first
//! positives and room statistics, leaves / re-enters / live ends close.

use super::exposure::{Exposure, Session};
use super::timers::Timer;
use super::{Output, RejectReason, SampleEngine};
use crate::live_stats::Series;
use liverank_types::{Event, EventKind, ExposureFeatures, ItemRef, Task};
use std::sync::Arc;

impl SampleEngine {
    /// Records a first positive for `task` on the session's exposure, if still open.
    fn positive(&mut self, session_exposure: Option<u64>, task: Task, ts: i64) {
        let Some(id) = session_exposure else {
            return;
        };
        match self.exposures.get_mut(&id) {
            Some(e) if e.closed_at.is_none() => {
                let i = task as usize;
                if e.first[i].is_none() {
                    e.first[i] = Some(ts);
                    self.dirty.insert(id);
                }
            }
            _ => self.counters.after_close += 1,
        }
    }

    pub(super) fn process(&mut self, event: Event, out: &mut Vec<Output>) {
        let ts = event.ts.0;
        self.counters.processed += 1;
        self.reorder.processed(ts, event.event_id.0);
        let interval = self.flush_interval();
        self.timers.start_grid(ts, interval);
        match event.kind {
            EventKind::Impression {
                user,
                item,
                request_id,
                position,
                ..
            } => self.impression(ts, user.0, item, request_id.0, position, out),
            EventKind::Enter {
                user,
                live,
                request_id,
            } => self.enter(ts, user.0, live.0, request_id.map(|r| r.0), out),
            EventKind::LiveStart {
                live,
                author,
                category,
            } => {
                let state = self.live_state(live.0);
                state.author = Some(author.0);
                state.category = Some(category.0);
                state.start = Some(ts);
            }
            EventKind::LiveEnd { live } => self.live_end(ts, live.0, out),
            EventKind::ProductOnSale {
                live,
                product,
                c1,
                c2,
                c3,
            } => {
                let k = self.config.products as usize;
                let state = self.live_state(live.0);
                state.products.push_back([
                    product.0,
                    u64::from(c1.0),
                    u64::from(c2.0),
                    u64::from(c3.0),
                ]);
                while state.products.len() > k {
                    state.products.pop_front();
                }
            }
            EventKind::VideoPlay { .. }
            | EventKind::VideoLike { .. }
            | EventKind::VideoComment { .. } => {}
            EventKind::Leave { user, live, .. }
            | EventKind::Like { user, live }
            | EventKind::Comment { user, live }
            | EventKind::Follow { user, live }
            | EventKind::Share { user, live }
            | EventKind::Gift { user, live, .. }
            | EventKind::CartClick { user, live, .. }
            | EventKind::Purchase { user, live, .. } => {
                let key = (live.0, user.0);
                let Some(session) = self.sessions.get(&key) else {
                    self.counters.orphans += 1;
                    out.push(Output::Rejected {
                        event,
                        reason: RejectReason::Orphan,
                    });
                    return;
                };
                let exposure = session.exposure;
                let live = live.0;
                match event.kind {
                    EventKind::Leave { .. } => {
                        self.sessions.remove(&key);
                        self.set_online(ts, live, -1);
                        if let Some(id) = exposure {
                            self.close(id, ts, out);
                        }
                    }
                    EventKind::Like { .. } => {
                        self.stat(ts, live, Series::Likes, 1);
                        self.positive(exposure, Task::Like, ts);
                    }
                    EventKind::Comment { .. } => {
                        self.stat(ts, live, Series::Comments, 1);
                        self.positive(exposure, Task::Comment, ts);
                    }
                    EventKind::Follow { .. } => {
                        self.stat(ts, live, Series::Follows, 1);
                        self.positive(exposure, Task::Follow, ts);
                    }
                    EventKind::Share { .. } => self.stat(ts, live, Series::Shares, 1),
                    EventKind::Gift { value, .. } => {
                        self.stat(ts, live, Series::Gifts, 1);
                        self.stat(ts, live, Series::GiftValue, value);
                        self.positive(exposure, Task::Gift, ts);
                    }
                    EventKind::CartClick { .. } => self.stat(ts, live, Series::CartClicks, 1),
                    EventKind::Purchase { amount, .. } => {
                        self.stat(ts, live, Series::Orders, 1);
                        self.stat(ts, live, Series::Gmv, amount);
                        self.positive(exposure, Task::Purchase, ts);
                    }
                    _ => {}
                }
            }
        }
    }

    fn impression(
        &mut self,
        ts: i64,
        user: u64,
        item: ItemRef,
        request_id: u64,
        position: u32,
        out: &mut Vec<Output>,
    ) {
        let same_key = match item {
            ItemRef::Live(live) => self.by_key.get(&(request_id, live.0)).copied(),
            ItemRef::Video(_) => None,
        };
        // The user's next impression closes their open, not-entered exposures (a repeat
        // of the same exposure key changes nothing).
        if let Some(pending) = self.pending_click.get(&user).cloned() {
            for id in pending {
                if Some(id) != same_key {
                    self.close(id, ts, out);
                }
            }
        }
        let ItemRef::Live(live) = item else {
            return;
        };
        let live = live.0;
        self.stat(ts, live, Series::Impressions, 1);
        if same_key.is_some() {
            self.counters.repeat_impressions += 1;
            return;
        }
        let features = Arc::new(self.features(ts, user, live, position));
        let state = self.lives.get(&live);
        let (author, category) = state.map_or((None, None), |s| (s.author, s.category));
        let id = self.next_exposure;
        self.next_exposure += 1;
        self.counters.exposures += 1;
        let exposure = Exposure::new(request_id, live, user, ts, (author, category), features);
        self.exposures.insert(id, exposure);
        self.by_key.insert((request_id, live), id);
        self.open.insert(id);
        self.pending_click.entry(user).or_default().push(id);
        self.live_open.entry(live).or_default().insert(id);
        let c = &self.config;
        let (timeout, max_session) = (c.click_timeout_ms as i64, c.max_session_ms as i64);
        let slow = c.slow_window_ms as i64;
        self.timers.schedule(
            ts.saturating_add(slow).saturating_add(1),
            Timer::ForgetKey(request_id, live),
        );
        self.timers
            .schedule(ts.saturating_add(timeout), Timer::ClickTimeout(id));
        self.timers
            .schedule(ts.saturating_add(max_session), Timer::MaxSession(id));
        self.schedule_windows(id, ts);
    }

    fn features(&self, ts: i64, user: u64, live: u64, position: u32) -> ExposureFeatures {
        let state = self.lives.get(&live);
        let t = self.config.stats_buckets as usize;
        let width = self.config.stats_bucket_ms as i64;
        let stats = match state {
            Some(s) => s.sequence_before(ts, width, t),
            None => vec![0; t * crate::live_stats::SERIES],
        };
        let author = state.and_then(|s| s.author);
        let author_row = author.and_then(|a| self.context.authors.get(&a));
        ExposureFeatures {
            user_profile: self.context.users.get(&user).copied(),
            author_type: author_row.map(|a| a.0.clone()),
            fans_bucket: author_row.map(|a| a.1),
            position,
            hour: (ts.rem_euclid(86_400_000) / 3_600_000) as u8,
            live_age_ms: state
                .and_then(|s| s.start)
                .map_or(0, |s| ts.saturating_sub(s).max(0) as u64),
            stats,
            stats_len: t as u32,
            products: state.map_or_else(Vec::new, |s| s.products.iter().copied().collect()),
        }
    }

    fn enter(
        &mut self,
        ts: i64,
        user: u64,
        live: u64,
        request_id: Option<u64>,
        out: &mut Vec<Output>,
    ) {
        self.stat(ts, live, Series::Enters, 1);
        // A new Enter into the same room closes the previous session there.
        if let Some(previous) = self.sessions.remove(&(live, user)) {
            self.set_online(ts, live, -1);
            if let Some(id) = previous.exposure {
                self.close(id, ts, out);
            }
        }
        let clicked = match request_id {
            None => {
                self.counters.organic_enters += 1;
                None
            }
            Some(r) => {
                let id = self.by_key.get(&(r, live)).copied();
                let valid = id.filter(|id| {
                    self.exposures.get(id).is_some_and(|e| {
                        e.user == user && e.closed_at.is_none() && e.entered_at.is_none()
                    })
                });
                if valid.is_none() {
                    self.counters.stale_clicks += 1;
                }
                valid
            }
        };
        if let Some(id) = clicked {
            if let Some(e) = self.exposures.get_mut(&id) {
                e.entered_at = Some(ts);
                e.first[Task::Click as usize] = Some(ts);
            }
            self.dirty.insert(id);
            if let Some(list) = self.pending_click.get_mut(&user) {
                list.retain(|&x| x != id);
                if list.is_empty() {
                    self.pending_click.remove(&user);
                }
            }
            let threshold = self.config.long_view_ms as i64;
            self.timers
                .schedule(ts.saturating_add(threshold), Timer::LongView(id));
        }
        self.sessions
            .insert((live, user), Session { exposure: clicked });
        self.set_online(ts, live, 1);
    }

    fn live_end(&mut self, ts: i64, live: u64, out: &mut Vec<Output>) {
        let open: Vec<u64> = self
            .live_open
            .get(&live)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for id in open {
            self.close(id, ts, out);
        }
        let keys: Vec<(u64, u64)> = self
            .sessions
            .range((live, 0)..=(live, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.sessions.remove(&k);
        }
        if let Some(state) = self.lives.get_mut(&live) {
            state.online = 0;
        }
        self.timers
            .schedule(ts.saturating_add(3_600_000), Timer::DropLive(live));
    }
}

//! The in-memory reference backend: one ordered deque per user. Not durable; the oracle
//! the conformance suite holds the other backends to, and a store for tests.

use crate::config::HistoryConfig;
use crate::error::{HistoryError, Result};
use crate::record::HistoryRecord;
use crate::store::HistoryStore;
use liverank_types::{EventTime, UserId};
use std::collections::{HashMap, VecDeque};
use std::sync::{PoisonError, RwLock};

/// In-memory store with per-user retention.
#[derive(Debug)]
pub struct MemoryStore {
    retention: usize,
    users: RwLock<HashMap<UserId, VecDeque<HistoryRecord>>>,
}

impl MemoryStore {
    /// An empty store with `config`'s retention.
    pub fn new(config: &HistoryConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            retention: config.retention,
            users: RwLock::default(),
        })
    }

    /// Users with at least one record.
    pub fn users(&self) -> usize {
        self.users
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Validates a whole batch before anything is stored.
pub(crate) fn validate_batch(batch: &[(UserId, HistoryRecord)]) -> Result<()> {
    for (index, (user, record)) in batch.iter().enumerate() {
        record.validate().map_err(|reason| HistoryError::Invalid {
            index,
            user: *user,
            reason,
        })?;
    }
    Ok(())
}

impl HistoryStore for MemoryStore {
    fn append(&self, batch: &[(UserId, HistoryRecord)]) -> Result<()> {
        validate_batch(batch)?;
        // A panic elsewhere cannot leave a half-applied batch (validation is done), so a
        // poisoned lock still guards consistent data.
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        for (user, record) in batch {
            let list = users.entry(*user).or_default();
            // After every record with available_at <= this one's: ties keep arrival order.
            let at = list.partition_point(|x| x.available_at <= record.available_at);
            list.insert(at, *record);
        }
        for (user, _) in batch {
            if let Some(list) = users.get_mut(user)
                && list.len() > self.retention
            {
                let excess = list.len() - self.retention;
                list.drain(..excess);
            }
        }
        Ok(())
    }

    fn read_visible(
        &self,
        user: UserId,
        before_ts: EventTime,
        out: &mut Vec<HistoryRecord>,
    ) -> Result<()> {
        out.clear();
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(list) = users.get(&user) {
            let end = list.partition_point(|x| x.available_at < before_ts);
            out.extend(list.range(..end).copied());
        }
        Ok(())
    }

    fn count(&self, user: UserId) -> Result<usize> {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        Ok(users.get(&user).map_or(0, VecDeque::len))
    }
}

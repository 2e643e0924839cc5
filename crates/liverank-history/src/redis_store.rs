//! The Redis backend, for clusters: one sorted set per user.
//!
//! Key layout (every key starts with the store's prefix, so stores and tests share a
//! server without seeing each other):
//! * `<prefix>:h:<user>`: sorted set. Score: `available_at` in ms (exact: records are
//!   validated to ±2^53). Member: 64 bytes, `seq u64 big-endian ‖ record` (the 56-byte
//!   [`HistoryRecord::encode`]). Equal scores sort by member, so the big-endian arrival
//!   sequence orders ties by arrival, the order every backend uses, and keeps two equal
//!   records distinct.
//! * `<prefix>:seq`: the arrival counter (`INCRBY` by the batch size before each append).
//!
//! An append is one `MULTI … EXEC` transaction: a `ZADD` per touched user with all its
//! records, then `ZREMRANGEBYRANK key 0 -(retention+1)` (retention: keep the newest). A
//! point-in-time read is `ZRANGEBYSCORE key -inf (before_ts`.

use crate::config::HistoryConfig;
use crate::error::{HistoryError, Result};
use crate::memory::validate_batch;
use crate::record::{HistoryRecord, MAX_TIME_MS, RECORD_BYTES};
use crate::store::HistoryStore;
use liverank_types::{EventTime, UserId};
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Bytes of one sorted-set member: the sequence and the record.
pub const MEMBER_BYTES: usize = 8 + RECORD_BYTES;

/// How long a connect, read or write may take before the call fails.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Redis-backed history store. One connection, serialised by a mutex, reopened after a
/// connection error.
pub struct RedisStore {
    client: redis::Client,
    url: String,
    prefix: String,
    retention: usize,
    connection: Mutex<Option<redis::Connection>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `config.redis_url` and checks the server answers; keys start with
    /// `config.redis_prefix`.
    pub fn connect(config: &HistoryConfig) -> Result<Self> {
        config.validate()?;
        let url = config.redis_url.clone();
        let prefix = config.redis_prefix.clone();
        let client = redis::Client::open(url.as_str()).map_err(|e| HistoryError::Redis {
            url: url.clone(),
            prefix: prefix.clone(),
            operation: "parse url",
            source: Box::new(e),
        })?;
        let store = Self {
            client,
            url,
            prefix,
            retention: config.retention,
            connection: Mutex::new(None),
        };
        store.with("ping", |c| redis::cmd("PING").query::<String>(c))?;
        Ok(store)
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, user: u64) -> String {
        format!("{}:h:{user}", self.prefix)
    }

    /// Runs `f` on the connection, opening it first if needed; drops it after an I/O
    /// error so the next call reconnects.
    fn with<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let fail = |e: redis::RedisError| HistoryError::Redis {
            url: self.url.clone(),
            prefix: self.prefix.clone(),
            operation,
            source: Box::new(e),
        };
        let mut guard = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut connection = match guard.take() {
            Some(c) => c,
            None => {
                let c = self
                    .client
                    .get_connection_with_timeout(TIMEOUT)
                    .map_err(fail)?;
                c.set_read_timeout(Some(TIMEOUT)).map_err(fail)?;
                c.set_write_timeout(Some(TIMEOUT)).map_err(fail)?;
                c
            }
        };
        let result = f(&mut connection);
        // Keep the connection unless it broke; the next call then reconnects.
        let broken = result
            .as_ref()
            .is_err_and(|e| e.is_io_error() || e.is_connection_dropped() || e.is_timeout());
        if !broken {
            *guard = Some(connection);
        }
        result.map_err(fail)
    }

    fn corrupt(&self, user: u64, reason: String) -> HistoryError {
        HistoryError::Corrupt {
            location: format!("redis {} key {}", self.url, self.key(user)),
            reason,
        }
    }

    /// Deletes every key of this store (`<prefix>:*`), e.g. after a test. Uses `SCAN`, so
    /// the server is not blocked.
    pub fn delete_all(&self) -> Result<u64> {
        let pattern = format!("{}:*", self.prefix);
        let mut keys: Vec<String> = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, page): (u64, Vec<String>) = self.with("scan", |c| {
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1_000)
                    .query(c)
            })?;
            keys.extend(page);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut deleted = 0;
        for chunk in keys.chunks(500) {
            deleted += self.with("delete", |c| redis::cmd("DEL").arg(chunk).query::<u64>(c))?;
        }
        Ok(deleted)
    }
}

impl HistoryStore for RedisStore {
    fn append(&self, batch: &[(UserId, HistoryRecord)]) -> Result<()> {
        validate_batch(batch)?;
        if batch.is_empty() {
            return Ok(());
        }
        let seq_key = format!("{}:seq", self.prefix);
        let last: u64 = self.with("append", |c| {
            redis::cmd("INCRBY").arg(&seq_key).arg(batch.len()).query(c)
        })?;
        let first = last - batch.len() as u64;
        let mut by_user: BTreeMap<u64, Vec<(i64, Vec<u8>)>> = BTreeMap::new();
        let mut bytes = [0u8; RECORD_BYTES];
        for (seq, (user, record)) in (first..).zip(batch) {
            let mut member = Vec::with_capacity(MEMBER_BYTES);
            member.extend_from_slice(&seq.to_be_bytes());
            record.encode(&mut bytes);
            member.extend_from_slice(&bytes);
            by_user
                .entry(user.0)
                .or_default()
                .push((record.available_at.0, member));
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        let keep = -(self.retention as i64) - 1;
        for (user, members) in &by_user {
            let key = self.key(*user);
            let zadd = pipe.cmd("ZADD").arg(&key);
            for (score, member) in members {
                zadd.arg(*score).arg(member.as_slice());
            }
            zadd.ignore();
            pipe.cmd("ZREMRANGEBYRANK")
                .arg(&key)
                .arg(0)
                .arg(keep)
                .ignore();
        }
        self.with("append", |c| pipe.query::<()>(c))
    }

    fn read_visible(
        &self,
        user: UserId,
        before_ts: EventTime,
        out: &mut Vec<HistoryRecord>,
    ) -> Result<()> {
        out.clear();
        let key = self.key(user.0);
        // Stored scores are within ±2^53, so a larger bound means "everything".
        let max = if before_ts.0 > MAX_TIME_MS {
            "+inf".to_string()
        } else {
            format!("({}", before_ts.0)
        };
        let members: Vec<Vec<u8>> = self.with("read", |c| {
            redis::cmd("ZRANGEBYSCORE")
                .arg(&key)
                .arg("-inf")
                .arg(&max)
                .query(c)
        })?;
        out.reserve(members.len());
        for member in members {
            let bytes: &[u8; RECORD_BYTES] = member
                .get(8..)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| self.corrupt(user.0, format!("member of {} bytes", member.len())))?;
            let record = HistoryRecord::decode(bytes)
                .ok_or_else(|| self.corrupt(user.0, "undecodable record".to_string()))?;
            out.push(record);
        }
        Ok(())
    }

    fn count(&self, user: UserId) -> Result<usize> {
        let key = self.key(user.0);
        self.with("count", |c| redis::cmd("ZCARD").arg(&key).query(c))
    }
}

//! The error type of the history store, classified where it is created: whose fault it is
//! and whether a retry can help.

use crate::record::InvalidRecord;
use liverank_types::UserId;
use std::path::PathBuf;

/// Everything that can go wrong in the history store.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A record of an append failed validation; nothing of the batch was stored.
    #[error("record {index} of the batch (user {user}) rejected: {reason}")]
    Invalid {
        /// Position in the batch.
        index: usize,
        /// The record's user.
        user: UserId,
        /// Why.
        reason: InvalidRecord,
    },
    /// A setting is out of range.
    #[error("invalid history config: {field}: {reason}")]
    Config {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// An item vector's length differs from the soft-search query's (a caller bug: both
    /// should come from one embedding table).
    #[error("soft search: {domain} {item} has a {found}-dimensional vector, the query {expected}")]
    Dimension {
        /// The item's domain.
        domain: crate::record::Domain,
        /// The item.
        item: u64,
        /// The query's length.
        expected: usize,
        /// The vector's length.
        found: usize,
    },
    /// The embedded database failed (I/O, a full disk, a file locked by another process).
    #[error("embedded history store {}: {operation}: {source}", path.display())]
    Embedded {
        /// The store's directory.
        path: PathBuf,
        /// What we were doing.
        operation: &'static str,
        /// The database's error.
        source: Box<redb::Error>,
    },
    /// An append to a store opened read-only.
    #[error("embedded history store {}: opened read-only, cannot append", path.display())]
    ReadOnly {
        /// The store's directory.
        path: PathBuf,
    },
    /// Creating the store's directory failed.
    #[error("embedded history store {}: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The Redis server failed or cannot be reached.
    #[error("redis history store {url} (prefix `{prefix}`): {operation}: {source}")]
    Redis {
        /// The server (as configured).
        url: String,
        /// Key prefix of the store.
        prefix: String,
        /// What we were doing.
        operation: &'static str,
        /// The client's error.
        source: Box<redis::RedisError>,
    },
    /// Stored bytes that cannot be a record or block: the store is damaged or was written
    /// by an incompatible version.
    #[error("corrupt history store {location}: {reason}")]
    Corrupt {
        /// Where (file or key, and user).
        location: String,
        /// What is wrong.
        reason: String,
    },
}

/// Whose fault an error is, which tells the caller what to do with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad input (an invalid record, a bad setting): skip and count it, or fix the input.
    BadInput,
    /// An external service or the operating system (Redis down, disk full): a retry may
    /// help.
    External,
    /// Damaged stored data: stop; retrying cannot help.
    Corrupt,
}

impl HistoryError {
    /// Whose fault it is.
    pub fn class(&self) -> ErrorClass {
        match self {
            HistoryError::Invalid { .. }
            | HistoryError::Config { .. }
            | HistoryError::Dimension { .. }
            | HistoryError::ReadOnly { .. } => ErrorClass::BadInput,
            HistoryError::Embedded { source, .. } => match source.as_ref() {
                redb::Error::Corrupted(_) | redb::Error::UpgradeRequired(_) => ErrorClass::Corrupt,
                _ => ErrorClass::External,
            },
            HistoryError::Io { .. } | HistoryError::Redis { .. } => ErrorClass::External,
            HistoryError::Corrupt { .. } => ErrorClass::Corrupt,
        }
    }

    /// Whether the same call may succeed if tried again.
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::External
    }
}

/// Result of the history crate.
pub type Result<T> = std::result::Result<T, HistoryError>;

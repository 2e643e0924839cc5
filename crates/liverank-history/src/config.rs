//! Configuration of the history store (the `[history]` section of `config/default.toml`).

use crate::error::{HistoryError, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which backend holds the history.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// One redb file on local disk (the default).
    #[default]
    Embedded,
    /// A Redis server shared by a cluster.
    Redis,
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "embedded" => Ok(BackendKind::Embedded),
            "redis" => Ok(BackendKind::Redis),
            other => Err(format!(
                "unknown history backend `{other}`, expected embedded or redis"
            )),
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Embedded => "embedded",
            BackendKind::Redis => "redis",
        })
    }
}

/// Retention, caching and where the store lives. The GSU length is the model's
/// (`model.history_len`: a shape of its input) and the long-view threshold the sample
/// engine's (`samples.long_view_ms`): one key each, passed in by the caller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Records kept per user, newest by `available_at` (10,000).
    pub retention: usize,
    /// Users whose decoded history the embedded store keeps in memory (least recently
    /// read evicted first; 0 = no cache). A cached user is read without touching the
    /// file: serving reads the same users again and again. At most 640 KB per user.
    pub cache_users: usize,
    /// Backend.
    pub backend: BackendKind,
    /// Directory of the embedded store.
    pub path: PathBuf,
    /// Redis server of the Redis backend.
    pub redis_url: String,
    /// Prefix of every Redis key of this store, so several stores share one server.
    pub redis_prefix: String,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            retention: 10_000,
            cache_users: 128,
            backend: BackendKind::Embedded,
            path: PathBuf::from("data/history"),
            redis_url: "redis://127.0.0.1:6379/".to_string(),
            redis_prefix: "liverank".to_string(),
        }
    }
}

/// Largest retention accepted: 1,000,000 records is 56 MB per user in the embedded store.
pub const MAX_RETENTION: usize = 1_000_000;

impl HistoryConfig {
    /// A config keeping `retention` records per user, other settings at their defaults.
    pub fn new(retention: usize) -> Self {
        Self {
            retention,
            ..Self::default()
        }
    }

    /// Sets how many users' histories the embedded store caches (default 128; 0 = none).
    pub fn with_cache_users(mut self, users: usize) -> Self {
        self.cache_users = users;
        self
    }

    /// Sets the Redis key prefix (default `liverank`).
    pub fn with_redis_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.redis_prefix = prefix.into();
        self
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: String| Err(HistoryError::Config { field, reason });
        if self.retention == 0 || self.retention > MAX_RETENTION {
            return bad(
                "retention",
                format!("{} is outside 1..={MAX_RETENTION}", self.retention),
            );
        }
        if self.redis_prefix.is_empty() || self.redis_prefix.contains(char::is_whitespace) {
            return bad(
                "redis_prefix",
                "must be non-empty without whitespace".to_string(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_validate_and_bad_values_name_the_field() {
        assert!(HistoryConfig::default().validate().is_ok());
        let e = HistoryConfig::new(0).validate().unwrap_err().to_string();
        assert!(e.contains("retention"), "{e}");
        let e = HistoryConfig::default()
            .with_redis_prefix("")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("redis_prefix"), "{e}");
    }
}

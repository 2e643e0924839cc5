//! Simulator configuration and its presets.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// 2026-01-01T00:00:00Z: the default start of simulated time.
pub const DEFAULT_START_MS: i64 = 1_767_225_600_000;

/// A named size of simulated platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// For tests: 2,000 users over eight hours; runs in well under a second.
    Tiny,
    /// The demo: 10,000 users over one day; a few seconds of CPU.
    Small,
    /// 200,000 users over one day; for benchmarks and scale tests.
    Large,
}

impl FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tiny" => Ok(Preset::Tiny),
            "small" => Ok(Preset::Small),
            "large" => Ok(Preset::Large),
            other => Err(format!(
                "unknown preset `{other}`, expected tiny, small or large"
            )),
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Preset::Tiny => "tiny",
            Preset::Small => "small",
            Preset::Large => "large",
        })
    }
}

/// Shares of deliberately broken events, for testing the ingest and sample engine.
/// All zero by default: a clean stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Share of events delivered out of order but within `lateness_ms` of their time.
    pub out_of_order: f64,
    /// Share of events delivered later than `lateness_ms` behind the newest event.
    pub late: f64,
    /// Share of events delivered twice (same `event_id`).
    pub duplicate: f64,
    /// Share of extra malformed records (bad JSON, unknown type, negative duration,
    /// missing field) inserted into the stream.
    pub malformed: f64,
    /// Allowed lateness the faults are calibrated against, in ms (SPEC default 60 s).
    pub lateness_ms: u64,
}

impl FaultConfig {
    /// True when no fault is injected.
    pub fn is_clean(&self) -> bool {
        self.out_of_order == 0.0
            && self.late == 0.0
            && self.duplicate == 0.0
            && self.malformed == 0.0
    }
}

/// Everything that shapes a simulated platform. Same config → byte-identical output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Root seed of every random stream.
    pub seed: u64,
    /// Number of viewers.
    pub users: u32,
    /// Number of streamers (each also publishes short videos).
    pub authors: u32,
    /// Short videos per author, on average.
    pub videos_per_author: u32,
    /// Start of simulated time, ms since the epoch.
    pub start_ms: i64,
    /// Length of simulated time in hours.
    pub hours: u32,
    /// Average app visits per user per day at activity level 1 (others scale from it).
    pub visits_per_day: f64,
    /// Average feed items seen per visit.
    pub items_per_visit: f64,
    /// Items per feed request (page size).
    pub page_size: u32,
    /// Injected faults.
    pub faults: FaultConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig::preset(Preset::Small)
    }
}

/// An invalid configuration value.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("invalid simulator config: {field}: {reason}")]
pub struct ConfigError {
    /// Offending field.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

impl SimConfig {
    /// The configuration of a preset, seed 7.
    pub fn preset(preset: Preset) -> Self {
        let base = SimConfig {
            seed: 7,
            users: 10_000,
            authors: 600,
            videos_per_author: 20,
            start_ms: DEFAULT_START_MS,
            hours: 24,
            visits_per_day: 3.0,
            items_per_visit: 36.0,
            page_size: 4,
            faults: FaultConfig {
                lateness_ms: 60_000,
                ..FaultConfig::default()
            },
        };
        match preset {
            Preset::Tiny => SimConfig {
                users: 2_000,
                authors: 120,
                videos_per_author: 10,
                hours: 8,
                // Tiny compresses a day's visits into eight hours so statistics still have data.
                visits_per_day: 6.0,
                ..base
            },
            Preset::Small => base,
            Preset::Large => SimConfig {
                users: 200_000,
                authors: 8_000,
                ..base
            },
        }
    }

    /// Same config with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Same config with these faults.
    pub fn with_faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    /// End of simulated time, ms since the epoch.
    pub fn end_ms(&self) -> i64 {
        self.start_ms + i64::from(self.hours) * 3_600_000
    }

    /// Checks ranges; the simulator only runs validated configs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, reason: &str| {
            Err(ConfigError {
                field,
                reason: reason.to_string(),
            })
        };
        if self.users == 0 {
            return err("users", "must be at least 1");
        }
        if self.authors < 5 {
            return err("authors", "must be at least 5 (one per author type)");
        }
        if self.videos_per_author == 0 {
            return err("videos_per_author", "must be at least 1");
        }
        if self.hours == 0 || self.hours > 24 * 31 {
            return err("hours", "must be between 1 and 744");
        }
        if self.start_ms < 0 {
            return err("start_ms", "must not be negative");
        }
        if !(self.visits_per_day > 0.0 && self.visits_per_day <= 1_000.0) {
            return err("visits_per_day", "must be in (0, 1000]");
        }
        if !(self.items_per_visit >= 1.0 && self.items_per_visit <= 10_000.0) {
            return err("items_per_visit", "must be in [1, 10000]");
        }
        if self.page_size == 0 || self.page_size > 100 {
            return err("page_size", "must be in [1, 100]");
        }
        let f = &self.faults;
        for (name, v) in [
            ("faults.out_of_order", f.out_of_order),
            ("faults.late", f.late),
            ("faults.duplicate", f.duplicate),
            ("faults.malformed", f.malformed),
        ] {
            if !(0.0..=0.5).contains(&v) {
                return err(name, "must be a share in [0, 0.5]");
            }
        }
        if f.lateness_ms < 2_000 {
            return err("faults.lateness_ms", "must be at least 2000");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate() {
        for p in [Preset::Tiny, Preset::Small, Preset::Large] {
            SimConfig::preset(p).validate().unwrap();
        }
    }

    #[test]
    fn validation_rejects_bad_shares() {
        let mut c = SimConfig::preset(Preset::Tiny);
        c.faults.late = 0.9;
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "faults.late");
    }
}

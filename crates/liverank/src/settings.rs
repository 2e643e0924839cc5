//! Layered settings: the commented `config/default.toml` embedded in the binary, then an
//! optional user file, then `LIVERANK__SECTION__KEY` environment variables. Each library
//! crate owns its config type; this module only composes them.

use anyhow::{Context, Result, bail};
use liverank_sim::SimConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The defaults, embedded at compile time.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// Everything the binary can be configured with.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Default output directory.
    pub data_dir: PathBuf,
    /// The simulator.
    pub sim: SimConfig,
    /// The sample engine.
    pub samples: liverank_samples::SampleConfig,
    /// The ranker.
    pub model: liverank_model::RankerConfig,
    /// Offline training.
    pub train: liverank_train::TrainSettings,
    /// The interaction history store.
    pub history: liverank_history::HistoryConfig,
    /// The serving API.
    pub serve: liverank_serve::ServeConfig,
}

impl Settings {
    /// Defaults ← `file` ← environment (`vars`, usually `std::env::vars()`).
    pub fn load(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings> {
        let mut root: toml::Table = DEFAULT_TOML.parse().context("embedded default.toml")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            let user: toml::Table = text
                .parse()
                .with_context(|| format!("parsing config file {}", path.display()))?;
            merge(&mut root, user);
        }
        for (key, value) in vars {
            let Some(rest) = key.strip_prefix("LIVERANK__") else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            set_path(&mut root, &path, parse_scalar(&value))
                .with_context(|| format!("environment variable {key}"))?;
        }
        let settings: Settings = toml::Value::Table(root)
            .try_into()
            .context("invalid settings")?;
        settings.sim.validate()?;
        settings.samples.validate()?;
        settings.model.validate()?;
        settings.history.validate()?;
        settings.serve.validate()?;
        Ok(settings)
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn set_path(root: &mut toml::Table, path: &[String], value: toml::Value) -> Result<()> {
    let Some((last, parents)) = path.split_last() else {
        bail!("empty key");
    };
    let mut table = root;
    for p in parents {
        table = match table.get_mut(p) {
            Some(toml::Value::Table(t)) => t,
            _ => bail!("unknown settings section `{p}`"),
        };
    }
    table.insert(last.clone(), value);
    Ok(())
}

/// An environment value as a TOML scalar when it parses as one, else as a string.
fn parse_scalar(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    doc.parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_settings_parse_and_validate() {
        let s = Settings::load(None, Vec::new()).unwrap();
        assert_eq!(s.sim, SimConfig::preset(liverank_sim::Preset::Small));
        assert_eq!(s.data_dir, PathBuf::from("data"));
        assert_eq!(s.samples, liverank_samples::SampleConfig::default());
        assert_eq!(s.history, liverank_history::HistoryConfig::default());
        // The file documents the library defaults (a `--model-config` file starts from them).
        assert_eq!(s.model, liverank_model::RankerConfig::default());
        assert_eq!(s.train, liverank_train::TrainSettings::default());
        assert_eq!(s.serve, liverank_serve::ServeConfig::default());
    }

    #[test]
    fn serve_token_comes_from_the_environment() {
        let env = vec![("LIVERANK__SERVE__TOKEN".to_string(), "abc123".to_string())];
        let s = Settings::load(None, env).unwrap();
        assert_eq!(s.serve.token, "abc123");
        // A numeric-looking token stays a string.
        let env = vec![("LIVERANK__SERVE__TOKEN".to_string(), "12345".to_string())];
        let e = Settings::load(None, env);
        assert!(e.is_err() || e.unwrap().serve.token == "12345");
    }

    #[test]
    fn file_then_environment_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("user.toml");
        std::fs::write(&file, "[sim]\nseed = 3\nusers = 50\n").unwrap();
        let env = vec![
            ("LIVERANK__SIM__SEED".to_string(), "11".to_string()),
            ("LIVERANK__SIM__FAULTS__LATE".to_string(), "0.1".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let s = Settings::load(Some(&file), env).unwrap();
        assert_eq!(s.sim.seed, 11);
        assert_eq!(s.sim.users, 50);
        assert_eq!(s.sim.faults.late, 0.1);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let env = vec![("LIVERANK__SIM__SEEED".to_string(), "1".to_string())];
        let e = format!("{:#}", Settings::load(None, env).unwrap_err());
        assert!(e.contains("seeed"), "{e}");
        let env = vec![("LIVERANK__SIM__USERS".to_string(), "0".to_string())];
        let e = format!("{:#}", Settings::load(None, env).unwrap_err());
        assert!(e.contains("users"), "{e}");
    }
}

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
    /// Online learning.
    pub stream: liverank_train::StreamSettings,
    /// Model publishing.
    pub publish: liverank_model::PublishConfig,
    /// LiveForesighter's forecasters.
    pub forecast: liverank_model::foresight::ForecastConfig,
    /// The serving API.
    pub serve: liverank_serve::ServeConfig,
    /// Distributed mode: the Kafka broker and topics.
    pub kafka: liverank_kafka::KafkaConfig,
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
            set_path(&mut root, &path, &value)
                .with_context(|| format!("environment variable {key}"))?;
        }
        let settings: Settings = toml::Value::Table(root)
            .try_into()
            .context("invalid settings")?;
        settings.sim.validate()?;
        settings.samples.validate()?;
        settings.model.validate()?;
        settings.train.validate()?;
        settings.history.validate()?;
        settings.stream.validate()?;
        settings.publish.validate()?;
        settings.forecast.validate()?;
        settings.serve.validate()?;
        settings.kafka.validate()?;
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

/// Sets `path` to an environment value: as the string it is where the setting is a
/// string (a token `12345` stays a string), else as the TOML scalar it parses as.
fn set_path(root: &mut toml::Table, path: &[String], raw: &str) -> Result<()> {
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
    let value = match table.get(last) {
        Some(toml::Value::String(_)) => toml::Value::String(raw.to_string()),
        _ => parse_scalar(raw),
    };
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
        assert_eq!(s.stream, liverank_train::StreamSettings::default());
        assert_eq!(s.publish, liverank_model::PublishConfig::default());
        assert_eq!(s.serve, liverank_serve::ServeConfig::default());
    }

    #[test]
    fn serve_token_comes_from_the_environment() {
        let env = vec![("LIVERANK__SERVE__TOKEN".to_string(), "abc123".to_string())];
        let s = Settings::load(None, env).unwrap();
        assert_eq!(s.serve.token, "abc123");
        // A numeric-looking (or boolean-looking) token stays a string.
        for raw in ["12345", "true", "1.5"] {
            let env = vec![("LIVERANK__SERVE__TOKEN".to_string(), raw.to_string())];
            assert_eq!(Settings::load(None, env).unwrap().serve.token, raw);
        }
        // A number where the setting is a number still parses as one.
        let env = vec![("LIVERANK__SERVE__MAX_COUNT".to_string(), "7".to_string())];
        assert_eq!(Settings::load(None, env).unwrap().serve.max_count, 7);
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

    /// Every leaf key of `default.toml` as a dotted path with its value.
    fn leaves(prefix: &str, table: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
        for (k, v) in table {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => leaves(&path, t, out),
                v => out.push((path, v.clone())),
            }
        }
    }

    fn get<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
        let mut parts = path.split('.');
        let mut v = table.get(parts.next()?)?;
        for p in parts {
            v = v.as_table()?.get(p)?;
        }
        Some(v)
    }

    /// Equal values; floats as `f32` (some settings are `f32`, written back widened).
    fn same(a: &toml::Value, b: &toml::Value) -> bool {
        match (a, b) {
            (toml::Value::Float(x), toml::Value::Float(y)) => *x as f32 == *y as f32,
            (toml::Value::Array(x), toml::Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
            }
            _ => a == b,
        }
    }

    fn as_table(s: &Settings) -> toml::Table {
        let mut t = match toml::Value::try_from(s).unwrap() {
            toml::Value::Table(t) => t,
            other => panic!("settings serialise to {other:?}"),
        };
        // `model.foresight` is not serialised while both branches are off (so a model
        // without LiveForesighter writes exactly its old files); the test reads it anyway.
        if let Some(toml::Value::Table(m)) = t.get_mut("model") {
            m.entry("foresight")
                .or_insert(toml::Value::try_from(&s.model.foresight).unwrap());
            // Likewise the ESU unit and DIN's and DIEN's settings at their defaults.
            m.entry("esu")
                .or_insert(toml::Value::try_from(s.model.esu).unwrap());
            m.entry("din")
                .or_insert(toml::Value::try_from(&s.model.din).unwrap());
            m.entry("dien")
                .or_insert(toml::Value::try_from(&s.model.dien).unwrap());
        }
        t
    }

    /// A different valid value for a key (enums and lists by name).
    fn changed(path: &str, v: &toml::Value) -> toml::Value {
        use toml::Value as V;
        let s = |x: &str| V::String(x.into());
        match (path, v) {
            ("samples.policies", _) => V::Array(vec![s("complete")]),
            ("samples.tasks" | "model.tasks", _) => V::Array(vec![s("click")]),
            ("model.task_weights", _) => V::Array(vec![V::Float(2.0); 7]),
            ("model.hidden", _) => V::Array(vec![V::Integer(64)]),
            ("model.tower_hidden", _) => V::Array(vec![]),
            ("model.history_sequences", _) => V::Array(vec![s("long")]),
            ("model.loss", _) => s("pu"),
            ("model.esu", _) => s("din"),
            ("model.din.hidden", _) => V::Array(vec![V::Integer(8), V::Integer(4)]),
            ("model.trunk.kind", _) => s("cgc"),
            ("model.sparse.optimizer", _) => s("ftrl"),
            ("history.backend", _) => s("redis"),
            ("stream.policy", _) => s("fastslow"),
            ("serve.addr", _) => s("127.0.0.1:9090"),
            ("serve.ranking", _) => s("popularity"),
            // d_model must stay a multiple of heads.
            ("forecast.d_model" | "forecast.product.d_model", V::Integer(i)) => V::Integer(i * 2),
            ("forecast.heads" | "forecast.product.heads", V::Integer(i)) => V::Integer(i * 2),
            // The ESU heads divide the embedding width: keep both valid alone.
            ("model.embedding_dim", V::Integer(i)) => V::Integer(i * 2),
            ("model.esu_heads", V::Integer(0)) => V::Integer(2),
            ("model.esu_heads", V::Integer(i)) => V::Integer(i / 2),
            (_, V::String(x)) => V::String(format!("{x}-other")),
            (_, V::Integer(i)) => V::Integer(i + 1),
            (_, V::Float(f)) if *f == 0.0 => V::Float(0.01),
            (_, V::Float(f)) => V::Float(f * 0.5),
            (_, V::Boolean(b)) => V::Boolean(!b),
            (p, other) => panic!("no changed value for {p} = {other}"),
        }
    }

    /// The key table: `default.toml` holds exactly the settings' fields (deserialising
    /// denies unknown keys; serialising the result gives back every key of the file and no
    /// other, with the same values), and every key, changed alone, changes the loaded
    /// settings at that key and nowhere else. A key that were parsed but dropped
    /// (`serde(skip)`, a field missing from the file, two keys feeding one field) fails.
    #[test]
    fn every_default_key_is_a_field_and_changing_it_changes_that_setting() {
        let file: toml::Table = DEFAULT_TOML.parse().unwrap();
        let mut keys = Vec::new();
        leaves("", &file, &mut keys);
        assert!(keys.len() > 60, "{} keys", keys.len());
        let defaults = Settings::load(None, Vec::new()).unwrap();
        let round = as_table(&defaults);
        let mut fields = Vec::new();
        leaves("", &round, &mut fields);
        let key_names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        let field_names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        let mut a = key_names.clone();
        let mut b = field_names.clone();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "default.toml keys vs settings fields");
        for (path, value) in &keys {
            let back = get(&round, path).unwrap();
            assert!(same(back, value), "{path} round trip: {back} vs {value}");
        }

        let dir = tempfile::tempdir().unwrap();
        for (path, value) in &keys {
            let new = changed(path, value);
            // The one key in a user file.
            let (section, key) = path.rsplit_once('.').unwrap_or(("", path));
            let mut table = toml::Table::new();
            table.insert(key.to_string(), new.clone());
            let mut doc = toml::Value::Table(table);
            if !section.is_empty() {
                for part in section.rsplit('.') {
                    let mut t = toml::Table::new();
                    t.insert(part.to_string(), doc);
                    doc = toml::Value::Table(t);
                }
            }
            let file = dir.path().join("one.toml");
            std::fs::write(&file, toml::to_string(&doc).unwrap()).unwrap();
            if matches!(
                path.as_str(),
                "model.foresight.stat" | "model.foresight.product"
            ) {
                // A branch on needs its forecasters: without `dir` the settings are refused.
                let err = Settings::load(Some(&file), Vec::new()).unwrap_err();
                assert!(format!("{err:#}").contains("dir"), "{path}: {err:#}");
                continue;
            }
            let loaded = Settings::load(Some(&file), Vec::new())
                .unwrap_or_else(|e| panic!("{path} = {new}: {e:#}"));
            let got = as_table(&loaded);
            let read = get(&got, path).unwrap();
            assert!(same(read, &new), "{path} not read: {read} vs {new}");
            let mut after = Vec::new();
            leaves("", &got, &mut after);
            let moved: Vec<&str> = after
                .iter()
                .filter(|(k, v)| !same(get(&round, k).unwrap(), v))
                .map(|(k, _)| k.as_str())
                .collect();
            assert_eq!(moved, [path.as_str()], "{path} changed other settings");
        }
    }

    #[test]
    fn every_section_is_validated() {
        for (var, value, needle) in [
            ("LIVERANK__TRAIN__BATCH_SIZE", "0", "batch_size"),
            ("LIVERANK__TRAIN__EPOCHS", "0", "epochs"),
            ("LIVERANK__TRAIN__TRAIN_FRACTION", "1.0", "train_fraction"),
            ("LIVERANK__MODEL__SPARSE__ADAM_BETA2", "1.0", "adam_beta2"),
            ("LIVERANK__MODEL__SPARSE__MIN_COUNT", "0", "min_count"),
            ("LIVERANK__MODEL__EMBEDDING_DIM", "0", "embedding_dim"),
            ("LIVERANK__HISTORY__RETENTION", "0", "retention"),
            ("LIVERANK__SIM__PAGE_SIZE", "0", "page_size"),
            (
                "LIVERANK__SAMPLES__FLUSH_INTERVAL_MS",
                "0",
                "flush_interval",
            ),
        ] {
            let env = vec![(var.to_string(), value.to_string())];
            let e = format!("{:#}", Settings::load(None, env).unwrap_err());
            assert!(e.contains(needle), "{var}={value}: {e}");
        }
    }
}

//! `liverank report DIR`: one self-contained HTML page and its Markdown twin from the
//! artifacts of a run directory (`liverank run --out DIR` writes them all). Each section
//! is built from one artifact; a section whose artifact is missing is not invented: the
//! page lists it under "Not in this run" with the command that produces it.

use crate::Failure;
use clap::Args;
use liverank_report::plot::{LineChart, Series};
use liverank_report::{Block, Report, Section, Table};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Arguments of `liverank report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run directory (the `--out` of `liverank run`): sim/, samples/, model/, stream/, ….
    dir: PathBuf,
    /// Where to write report.html, report.md and figures/ (default: DIR).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl ReportArgs {
    /// The report of run directory `dir`, written into it.
    pub fn of(dir: PathBuf) -> Self {
        Self { dir, out: None }
    }
}

/// A section builder: the section, or the reason it is missing (which artifact, made by
/// which command).
type Built = Result<Section, String>;

/// A section's title and the function that builds it from the run directory.
type SectionBuilder = (&'static str, fn(&Path) -> Built);

/// Runs the command.
pub fn run(args: ReportArgs) -> Result<(), Failure> {
    let out = args.out.clone().unwrap_or_else(|| args.dir.clone());
    let report = build(&args.dir)?;
    let files = report
        .write(&out, "report")
        .map_err(|e| Failure::Runtime(anyhow::Error::from(e)))?;
    println!("report → {}", files.html.display());
    println!(
        "         {} ({} figures)",
        files.markdown.display(),
        files.figures.len()
    );
    Ok(())
}

/// Builds the report of a run directory.
pub fn build(dir: &Path) -> Result<Report, Failure> {
    if !dir.is_dir() {
        return Err(Failure::Input(anyhow::anyhow!(
            "{} is not a run directory (run `liverank run --out {}` first)",
            dir.display(),
            dir.display()
        )));
    }
    let mut report = Report::new("liverank run report").with_subtitle(format!(
        "{} · liverank {}",
        dir.display(),
        env!("CARGO_PKG_VERSION")
    ));
    let builders: [SectionBuilder; 3] = [
        ("The simulated world", world),
        ("Offline evaluation", offline_evaluation),
        ("Prequential metrics of the online run", prequential),
    ];
    let mut missing = Vec::new();
    for (title, builder) in builders {
        match builder(dir) {
            Ok(section) => report.push(section),
            Err(reason) => missing.push(vec![title.to_string(), reason]),
        }
    }
    if !missing.is_empty() {
        let mut table = Table::new(vec!["section".into(), "why it is missing".into()]);
        table.rows = missing;
        report.push(
            Section::new(
                "Not in this run",
                "Sections whose artifacts this directory does not hold, and the command that makes each.",
            )
            .with(Block::Table(table)),
        );
    }
    Ok(report)
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not JSON ({e})", path.display()))
}

fn number(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map_or_else(|| "–".to_string(), |x| format!("{x:.digits$}"))
}

fn count(v: &Value) -> String {
    v.as_u64().map_or_else(|| "–".to_string(), group_thousands)
}

/// 1234567 → "1,234,567".
fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn world(dir: &Path) -> Built {
    let path = dir.join("sim/manifest.json");
    let manifest = read_json(&path).map_err(|e| {
        format!(
            "{e} — made by `liverank simulate --out {}/sim`",
            dir.display()
        )
    })?;
    let config = &manifest["config"];
    let summary = &manifest["summary"];
    let mut facts = vec![
        ("seed".to_string(), count(&config["seed"])),
        ("users".to_string(), count(&config["users"])),
        ("authors".to_string(), count(&config["authors"])),
        ("hours simulated".to_string(), number(&config["hours"], 0)),
    ];
    if let Some(map) = summary.as_object() {
        for (key, value) in map {
            if value.is_u64() {
                facts.push((key.replace('_', " "), count(value)));
            }
        }
    }
    Ok(Section::new(
        "The simulated world",
        "Size of the simulated platform and the number of events it generated.",
    )
    .with(Block::Facts(facts)))
}

fn offline_evaluation(dir: &Path) -> Built {
    let path = dir.join("model/evaluation.json");
    let eval = read_json(&path).map_err(|e| {
        format!(
            "{e} — made by `liverank train --out {}/model` (or `liverank run`)",
            dir.display()
        )
    })?;
    let mut table = Table::new(
        [
            "task",
            "positives",
            "AUC",
            "GAUC",
            "log loss",
            "calibration",
        ]
        .map(String::from)
        .to_vec(),
    );
    let tasks = eval["tasks"]
        .as_object()
        .ok_or_else(|| format!("{}: no `tasks` object", path.display()))?;
    // Task order of the vocabulary, not of the JSON map.
    for task in liverank_types::Task::ALL {
        if let Some(m) = tasks.get(task.as_str()) {
            table.push(vec![
                task.as_str().to_string(),
                count(&m["positives"]),
                number(&m["auc"], 4),
                number(&m["gauc"], 4),
                number(&m["log_loss"], 4),
                number(&m["calibration"], 2),
            ]);
        }
    }
    if table.rows.is_empty() {
        return Err(format!("{}: no task metrics", path.display()));
    }
    let facts = vec![
        (
            "policy trained on".to_string(),
            eval["policy"].as_str().unwrap_or("–").to_string(),
        ),
        ("training rows".to_string(), count(&eval["train_rows"])),
        (
            "held-out exposures".to_string(),
            count(&eval["eval_exposures"]),
        ),
        (
            "popularity click AUC".to_string(),
            number(&eval["popularity_click_auc"], 4),
        ),
        (
            "oracle click AUC (true probabilities)".to_string(),
            number(&eval["oracle_click_auc"], 4),
        ),
        (
            "training throughput (samples/s)".to_string(),
            number(&eval["train_samples_per_s"], 0),
        ),
    ];
    Ok(Section::new(
        "Offline evaluation",
        "The ranker's metrics per task on the held-out later slice of the day, judged on complete labels, one row per exposure.",
    )
    .with(Block::Table(table))
    .with(Block::Facts(facts)))
}

/// The online run's prequential metrics: `stream/metrics.csv` as `liverank stream` writes
/// it, one row per (event time, stream, task) with the sliding window's AUC — the `served`
/// stream scores every exposure when its impression arrives and judges it on its complete
/// labels, the `train` stream scores training samples on their own labels.
fn prequential(dir: &Path) -> Built {
    let path = dir.join("stream/metrics.csv");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e} — made by `liverank stream --out {}/stream`",
            path.display(),
            dir.display()
        )
    })?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| format!("{}: empty", path.display()))?
        .split(',')
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| format!("{}: no `{name}` column", path.display()))
    };
    let (ts, stream, task, auc, gauc) = (
        column("event_ts")?,
        column("stream")?,
        column("task")?,
        column("auc")?,
        column("gauc")?,
    );
    // (task) → points of the served stream; the last window's AUC / GAUC per (stream, task).
    let mut served: std::collections::BTreeMap<String, Vec<(f64, f64)>> = Default::default();
    let mut last: std::collections::BTreeMap<(String, String), (String, String)> =
        Default::default();
    let mut t0 = None;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let (Some(t), Some(s), Some(k)) = (cells.get(ts), cells.get(stream), cells.get(task))
        else {
            continue;
        };
        let Ok(t) = t.parse::<f64>() else { continue };
        let t0 = *t0.get_or_insert(t);
        let a = cells.get(auc).and_then(|v| v.parse::<f64>().ok());
        let g = cells.get(gauc).and_then(|v| v.parse::<f64>().ok());
        if let Some(a) = a {
            if *s == "served" {
                served
                    .entry((*k).to_string())
                    .or_default()
                    .push(((t - t0) / 3.6e6, a));
            }
            let fmt = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{v:.4}"));
            last.insert(((*s).to_string(), (*k).to_string()), (fmt(Some(a)), fmt(g)));
        }
    }
    let mut chart = LineChart::new(
        "Prequential AUC of served exposures (15-minute windows)",
        "hours since the start of the stream",
        "AUC",
    );
    // Task order of the vocabulary.
    for t in liverank_types::Task::ALL {
        if let Some(points) = served.remove(t.as_str()) {
            chart = chart.with_series(Series::new(t.as_str(), points));
        }
    }
    let figure = chart
        .render(
            "prequential_auc",
            "Each task's AUC over the last 15 minutes of event time, every exposure scored by the model in force when its impression arrived and judged on its complete labels.",
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut table = Table::new(
        ["stream", "task", "AUC (last window)", "GAUC (last window)"]
            .map(String::from)
            .to_vec(),
    );
    for ((s, k), (a, g)) in last {
        table.push(vec![s, k, a, g]);
    }
    Ok(Section::new(
        "Prequential metrics of the online run",
        "How well the online model predicted what happened before it learned from it, through the day.",
    )
    .with(Block::Figure(figure))
    .with(Block::Table(table)))
}

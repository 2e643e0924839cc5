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

/// A section builder: the section, or the reason it is missing (which artifact, made by
/// which command).
type Built = Result<Section, String>;

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
    let commit = option_env!("LIVERANK_COMMIT").unwrap_or("unknown commit");
    let mut report = Report::new("liverank run report").with_subtitle(format!(
        "{} · liverank {} ({commit})",
        dir.display(),
        env!("CARGO_PKG_VERSION")
    ));
    let builders: [(&str, fn(&Path) -> Built); 3] = [
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

/// The online run's metric series: `stream/metrics.csv` with a header row, an event-time
/// column (`ts_ms` or `event_time_ms`) and columns named `<task>_auc`.
fn prequential(dir: &Path) -> Built {
    let path = dir.join("stream/metrics.csv");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e} — made by `liverank stream --out {}/stream` (or `liverank run`)",
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
    let time = header
        .iter()
        .position(|h| *h == "ts_ms" || *h == "event_time_ms")
        .ok_or_else(|| format!("{}: no ts_ms column", path.display()))?;
    let auc_columns: Vec<(usize, &str)> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| h.ends_with("_auc") && !h.ends_with("_gauc"))
        .map(|(i, h)| (i, *h))
        .collect();
    let rows: Vec<Vec<f64>> = lines
        .map(|l| {
            l.split(',')
                .map(|c| c.parse().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    let t0 = rows
        .first()
        .and_then(|r| r.get(time))
        .copied()
        .unwrap_or(0.0);
    let mut chart = LineChart::new(
        "Prequential AUC (test-then-train, sliding window)",
        "hours since the start of the stream",
        "AUC",
    );
    for (column, name) in &auc_columns {
        let points = rows
            .iter()
            .filter_map(|r| Some(((r.get(time)? - t0) / 3.6e6, *r.get(*column)?)))
            .collect();
        chart = chart.with_series(Series::new(name.trim_end_matches("_auc"), points));
    }
    let figure = chart
        .render(
            "prequential_auc",
            "Each task's AUC on the samples scored just before the model trained on them, over event time.",
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Section::new(
        "Prequential metrics of the online run",
        "How well the online model predicted each sample before learning from it, through the day.",
    )
    .with(Block::Figure(figure)))
}

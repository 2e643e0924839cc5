//! `liverank report DIR`: one self-contained HTML page and its Markdown twin from the
//! artifacts of a run directory (`liverank run --out DIR` writes them all). Each section
//! is built from one artifact; a section whose artifact is missing is not invented: the
//! page lists it under "Not in this run" with the command that produces it.

use crate::Failure;
use clap::Args;
use liverank_report::plot::{Histogram, IntervalChart, LineChart, Series};
use liverank_report::{Block, Figure, Report, Section, Table};
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
    let builders: [SectionBuilder; 10] = [
        ("The simulated world", world),
        (
            "Label consistency of the sample policies",
            label_consistency,
        ),
        ("Offline evaluation", offline_evaluation),
        ("Models compared offline", models_compared),
        ("Ablations", ablations),
        ("Prequential metrics of the online run", prequential),
        ("Highlight time-to-boost", time_to_boost),
        ("LiveForesighter", foresight),
        ("Closed-loop A/B test", abtest),
        ("Throughput of the run", throughput),
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
    let per_policy = policy_comparison(dir)?;
    let mut table = Table::new(
        ["stream", "task", "AUC (last window)", "GAUC (last window)"]
            .map(String::from)
            .to_vec(),
    );
    for ((s, k), (a, g)) in last {
        table.push(vec![s, k, a, g]);
    }
    let mut section = Section::new(
        "Prequential metrics of the online run",
        "How well the online model predicted what happened before it learned from it, through the day.",
    )
    .with(Block::Figure(figure));
    if let Some(figure) = per_policy {
        section.push(Block::Figure(figure));
    }
    section.push(Block::Table(table));
    Ok(section)
}

/// The served click AUC over the day of every online run in the directory (`stream/` and
/// `stream-<policy>/`, as `liverank run --also-stream POLICY` writes them), one series per
/// training policy; `None` with a single run.
fn policy_comparison(dir: &Path) -> Result<Option<Figure>, String> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n == "stream" || n.starts_with("stream-"))
                && p.join("metrics.csv").is_file()
        })
        .collect();
    runs.sort();
    if runs.len() < 2 {
        return Ok(None);
    }
    let mut chart = LineChart::new(
        "Prequential click AUC of served exposures, per training policy",
        "hours since the start of the stream",
        "click AUC",
    );
    for run in &runs {
        let policy = read_json(&run.join("summary.json"))
            .ok()
            .and_then(|j| j["policy"].as_str().map(String::from))
            .unwrap_or_else(|| run.display().to_string());
        let text = std::fs::read_to_string(run.join("metrics.csv"))
            .map_err(|e| format!("{}: {e}", run.display()))?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name);
        let (Some(ts), Some(stream), Some(task), Some(auc)) =
            (col("event_ts"), col("stream"), col("task"), col("auc"))
        else {
            return Err(format!("{}/metrics.csv: unexpected header", run.display()));
        };
        let mut t0 = None;
        let mut points = Vec::new();
        for line in lines {
            let cells: Vec<&str> = line.split(',').collect();
            let (Some(t), Some(a)) = (
                cells.get(ts).and_then(|v| v.parse::<f64>().ok()),
                cells.get(auc).and_then(|v| v.parse::<f64>().ok()),
            ) else {
                continue;
            };
            let t0 = *t0.get_or_insert(t);
            if cells.get(stream) == Some(&"served") && cells.get(task) == Some(&"click") {
                points.push(((t - t0) / 3.6e6, a));
            }
        }
        chart = chart.with_series(Series::new(policy, points));
    }
    chart
        .render(
            "prequential_click_auc_per_policy",
            "The click AUC over the last 15 minutes of each online run, one line per training policy on the same day: every exposure scored at its impression by the model that policy's samples had trained so far, judged on complete labels.",
        )
        .map(Some)
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// The label-consistency table of `liverank samples --report` (`samples/consistency.json`).
fn label_consistency(dir: &Path) -> Built {
    let path = dir.join("samples/consistency.json");
    let json = read_json(&path).map_err(|e| {
        format!(
            "{e} — made by `liverank samples --report --out {}/samples`",
            dir.display()
        )
    })?;
    let rows = json["tasks"]
        .as_array()
        .ok_or_else(|| format!("{}: no `tasks`", path.display()))?;
    let policies = ["realtime", "fastslow", "naive30"];
    let mut header = vec!["task".to_string(), "complete positives".to_string()];
    header.extend(
        policies
            .iter()
            .map(|p| format!("{p}: share reported (delay p50 / p90 s)")),
    );
    let mut table = Table::new(header);
    for row in rows {
        let mut cells = vec![
            row["task"].as_str().unwrap_or("–").to_string(),
            count(&row["positives"]),
        ];
        for p in policies {
            let c = &row["policies"][p];
            cells.push(format!(
                "{:.1} % ({} / {})",
                100.0 * c["share"].as_f64().unwrap_or(f64::NAN),
                number(&c["p50_s"], 0),
                number(&c["p90_s"], 0)
            ));
        }
        table.push(cells);
    }
    if table.rows.is_empty() {
        return Err(format!("{}: no tasks", path.display()));
    }
    Ok(Section::new(
        "Label consistency of the sample policies",
        "For each task, the share of the positives that complete (day-end) labels hold which each policy reports, and how long after the action it reports them: realtime (Moment's 30 s buckets with first-only masks) keeps every positive within seconds; the fixed 5-minute / 1-hour windows (fastslow) and a naive 30 s window lose or delay some.",
    )
    .with(Block::Table(table)))
}

/// The three models of the main job side by side: realtime samples (the main model),
/// fast/slow samples with the PU loss, and realtime without the Cross history inputs.
fn models_compared(dir: &Path) -> Built {
    let models = [
        ("model", "realtime samples, Cross (the main model)"),
        ("model-fastslow", "fast/slow windows, PU loss"),
        ("model-nocross", "realtime samples, no Cross"),
    ];
    let mut table = Table::new(
        [
            "model",
            "click AUC",
            "click GAUC",
            "long_view AUC",
            "long_view GAUC",
            "gift AUC",
            "training samples/s",
        ]
        .map(String::from)
        .to_vec(),
    );
    let mut missing = Vec::new();
    for (sub, label) in models {
        match read_json(&dir.join(sub).join("evaluation.json")) {
            Ok(eval) => {
                let t = &eval["tasks"];
                table.push(vec![
                    label.to_string(),
                    number(&t["click"]["auc"], 4),
                    number(&t["click"]["gauc"], 4),
                    number(&t["long_view"]["auc"], 4),
                    number(&t["long_view"]["gauc"], 4),
                    number(&t["gift"]["auc"], 4),
                    number(&eval["train_samples_per_s"], 0),
                ]);
            }
            Err(e) => missing.push(e),
        }
    }
    if table.rows.len() < 2 {
        return Err(format!(
            "{} — made by `liverank run` (it trains all three)",
            missing.join("; ")
        ));
    }
    Ok(Section::new(
        "Models compared offline",
        "The three models of the A/B test on the same held-out slice and the same complete labels: what the realtime labels and the Cross history inputs are each worth.",
    )
    .with(Block::Table(table)))
}

/// `experiments/*/table.csv` (written by `liverank run --experiment FILE`): one table per
/// experiment, a row per variant and a column per metric, mean ± half-range over seeds.
fn ablations(dir: &Path) -> Built {
    let root = dir.join("experiments");
    let mut tables: Vec<(String, PathBuf)> = std::fs::read_dir(&root)
        .map_err(|_| {
            format!(
                "no {} — made by `liverank run --experiment FILE` (e.g. experiments/table2.toml)",
                root.display()
            )
        })?
        .filter_map(|e| e.ok())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.path().join("table.csv"),
            )
        })
        .filter(|(_, p)| p.exists())
        .collect();
    tables.sort();
    if tables.is_empty() {
        return Err(format!("no experiment tables in {}", root.display()));
    }
    let mut section = Section::new(
        "Ablations",
        "Model variants trained on this run's samples and history, evaluated on the same held-out slice's complete labels: mean ± half-range over the seeds (n = seeds).",
    );
    for (name, path) in tables {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (table, seeds) =
            experiment_table(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        section = section
            .with(Block::Text(format!("{name} ({seeds} seeds):")))
            .with(Block::Table(table));
    }
    Ok(section)
}

/// Pivots an experiment's table.csv (`variant,metric,mean,half_range,n,values`).
fn experiment_table(text: &str) -> Result<(Table, usize), String> {
    let mut variants: Vec<String> = Vec::new();
    let mut metrics: Vec<String> = Vec::new();
    let mut cells: std::collections::HashMap<(String, String), String> = Default::default();
    let mut seeds = 0usize;
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    for (i, record) in reader.records().enumerate() {
        let f = record.map_err(|e| format!("line {}: {e}", i + 2))?;
        let i = i + 1;
        if f.len() < 5 {
            return Err(format!(
                "line {}: expected 6 fields, found {}",
                i + 1,
                f.len()
            ));
        }
        let (variant, metric) = (f[0].to_string(), f[1].to_string());
        let mean: f64 = f[2]
            .parse()
            .map_err(|_| format!("line {}: mean {:?}", i + 1, &f[2]))?;
        let half: f64 = f[3].parse().unwrap_or(0.0);
        seeds = seeds.max(f[4].parse().unwrap_or(0));
        let digits = if metric.contains("rows/s") { 0 } else { 4 };
        let cell = if !mean.is_finite() {
            "–".to_string()
        } else if &f[4] == "1" {
            format!("{mean:.digits$}")
        } else {
            format!("{mean:.digits$} ± {half:.digits$}")
        };
        if !variants.contains(&variant) {
            variants.push(variant.clone());
        }
        if !metrics.contains(&metric) {
            metrics.push(metric.clone());
        }
        cells.insert((variant, metric), cell);
    }
    if variants.is_empty() {
        return Err("no rows".into());
    }
    let mut table = Table::new(
        std::iter::once("variant".to_string())
            .chain(metrics.iter().cloned())
            .collect(),
    );
    for v in &variants {
        let mut row = vec![v.clone()];
        for m in &metrics {
            row.push(
                cells
                    .get(&(v.clone(), m.clone()))
                    .cloned()
                    .unwrap_or_else(|| "–".into()),
            );
        }
        table.rows.push(row);
    }
    Ok((table, seeds))
}

/// `stream/highlights.csv`: per simulated highlight, how long after its start the online
/// model raised a probe panel's click probability on that room by the configured margin.
fn time_to_boost(dir: &Path) -> Built {
    let path = dir.join("stream/highlights.csv");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e} — made by `liverank stream --out {}/stream` on simulated events",
            path.display(),
            dir.display()
        )
    })?;
    let mut boosted = Vec::new();
    let mut by_kind: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let mut total = 0usize;
    for line in text.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let (Some(kind), Some(b)) = (cells.get(3), cells.get(4)) else {
            continue;
        };
        total += 1;
        let entry = by_kind.entry((*kind).to_string()).or_default();
        entry.0 += 1;
        if let Ok(s) = b.parse::<f64>() {
            boosted.push(s);
            entry.1 += 1;
        }
    }
    if total == 0 {
        return Err(format!("{}: no highlights", path.display()));
    }
    let mut sorted = boosted.clone();
    sorted.sort_by(f64::total_cmp);
    let q = |p: f64| liverank_eval::abtest::quantile(&sorted, p);
    // How many the day held, when the probes covered a seeded choice of them.
    let of_day = read_json(&dir.join("stream/summary.json"))
        .ok()
        .and_then(|s| s["truth_highlights"].as_u64())
        .filter(|&n| n > total as u64);
    let probed = match of_day {
        Some(n) => format!(
            "{} probed, a seeded choice of the day's {} ([stream] probe_highlights)",
            group_thousands(total as u64),
            group_thousands(n)
        ),
        None => group_thousands(total as u64),
    };
    let facts = vec![
        ("highlights".to_string(), probed),
        (
            "boosted before the highlight ended".to_string(),
            format!(
                "{} ({:.1} %)",
                boosted.len(),
                100.0 * boosted.len() as f64 / total as f64
            ),
        ),
        (
            "median time to boost (s)".to_string(),
            format!("{:.0}", q(0.5)),
        ),
        (
            "p90 time to boost (s)".to_string(),
            format!("{:.0}", q(0.9)),
        ),
    ];
    let mut table = Table::new(["kind", "highlights", "boosted"].map(String::from).to_vec());
    for (kind, (n, b)) in by_kind {
        table.push(vec![
            kind,
            n.to_string(),
            format!("{b} ({:.0} %)", 100.0 * b as f64 / n.max(1) as f64),
        ]);
    }
    let mut section = Section::new(
        "Highlight time-to-boost",
        "Moment's claim in one number: after a room's highlight starts, how soon the online model (the version published at that moment) scores the room higher for a fixed panel of users.",
    )
    .with(Block::Facts(facts));
    if !boosted.is_empty() {
        let figure = Histogram::new("Time to boost of the highlights", "seconds after the highlight's start")
            .with_sample("boosted highlights", boosted)
            .render(
                "time_to_boost",
                "How many highlights the online model boosted within each span of seconds after their start (highlights never boosted are not drawn; the table counts them).",
            )
            .map_err(|e| format!("{}: {e}", path.display()))?;
        section.push(Block::Figure(figure));
    }
    section.push(Block::Table(table));
    Ok(section)
}

/// `forecast/eval.json` and the plots of `liverank forecast eval --plot forecast/plots`.
fn foresight(dir: &Path) -> Built {
    let path = dir.join("forecast/eval.json");
    let eval = read_json(&path).map_err(|e| {
        format!(
            "{e} — made by `liverank forecast train --samples {d}/samples --out {d}/forecast` then `liverank forecast eval --samples {d}/samples --model {d}/forecast --json {d}/forecast/eval.json --plot {d}/forecast/plots`",
            d = dir.display()
        )
    })?;
    let mut table = Table::new(
        [
            "windows",
            "series",
            "MSE model",
            "MSE last",
            "MSE moving avg",
            "MSE linear",
            "gain vs best naive",
            "95 % interval",
        ]
        .map(String::from)
        .to_vec(),
    );
    for subset in eval["subsets"].as_array().into_iter().flatten() {
        let name = subset["name"].as_str().unwrap_or("–");
        // The pooled row and the series a reader asks about first; eval.json has all 13.
        for x in subset["series"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|x| {
                matches!(
                    x["series"].as_str(),
                    Some("all" | "online" | "enters" | "gifts" | "orders")
                )
            })
        {
            let mse = |i: usize| number(&x["mse"][i], 4);
            let pct = |v: &Value| {
                v.as_f64()
                    .filter(|v| v.is_finite())
                    .map_or("–".to_string(), |v| format!("{:.2} %", 100.0 * v))
            };
            table.push(vec![
                name.to_string(),
                x["series"].as_str().unwrap_or("–").to_string(),
                mse(0),
                mse(1),
                mse(2),
                mse(3),
                format!(
                    "{} (vs {})",
                    pct(&x["gain"]),
                    x["better_naive"].as_str().unwrap_or("–")
                ),
                format!("[{}, {}]", pct(&x["gain_ci"][0]), pct(&x["gain_ci"][1])),
            ]);
        }
    }
    if table.rows.is_empty() {
        return Err(format!("{}: no subsets", path.display()));
    }
    let c3 = &eval["next_c3"];
    let facts = vec![
        ("held-out rooms".to_string(), count(&eval["test_rooms"])),
        (
            "next-category top-5 (model / first-order Markov)".to_string(),
            format!(
                "{} / {}",
                number(&c3["top5"], 4),
                number(&c3["markov_top5"], 4)
            ),
        ),
        (
            "forecast of every room on air (ms)".to_string(),
            number(
                &(eval["timing"]["all_on_air_s"]
                    .as_f64()
                    .map(|s| s * 1e3)
                    .into()),
                2,
            ),
        ),
    ];
    let mut section = Section::new(
        "LiveForesighter",
        "The room forecaster (RevIN + iTransformer over each room's 30 s statistics) against the naive forecasts on rooms held out by start time (MSE of log1p counts over the next buckets; gain = the model's MSE below the better naive forecast), and the next product category predictor against a Markov chain.",
    )
    .with(Block::Facts(facts))
    .with(Block::Table(table));
    let mut plots: Vec<PathBuf> = std::fs::read_dir(dir.join("forecast/plots"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    plots.sort();
    for p in plots.into_iter().take(4) {
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("forecast");
        let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let what = if stem.ends_with("orders") {
            "orders"
        } else {
            "online viewers"
        };
        let figure = Figure::from_png(
            stem.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-', "_"),
            format!("Forecast against actual {what} of one held-out room, 30 s buckets, highlights shaded."),
            bytes,
        )
        .map_err(|e| format!("{}: {e}", p.display()))?;
        section.push(Block::Figure(figure));
    }
    Ok(section)
}

/// `abtest/abtest.json` of `liverank abtest`: the first run's table and the click and
/// watch-time differences with their intervals.
fn abtest(dir: &Path) -> Built {
    let path = dir.join("abtest/abtest.json");
    let json = read_json(&path).map_err(|e| {
        format!(
            "{e} — made by `liverank abtest --out {}/abtest` (or `liverank run`)",
            dir.display()
        )
    })?;
    let run = json["runs"]
        .get(0)
        .ok_or_else(|| format!("{}: no runs", path.display()))?;
    let arms = run["arms"]
        .as_array()
        .ok_or_else(|| format!("{}: no arms", path.display()))?;
    let metrics: Vec<String> = json["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str().map(String::from))
        .collect();
    let mut header = vec![
        "arm".to_string(),
        "users".to_string(),
        "rooms shown".to_string(),
    ];
    header.extend(metrics.iter().cloned());
    header.push("API p99 ms".to_string());
    let mut table = Table::new(header);
    let control = arms
        .first()
        .and_then(|a| a["name"].as_str())
        .unwrap_or("control");
    let mut charts: Vec<IntervalChart> = ["clicks / user", "watch min / user", "highlight share"]
        .iter()
        .map(|m| IntervalChart::new(format!("{m}: difference to {control}"), *m))
        .collect();
    for (a, arm) in arms.iter().enumerate() {
        let name = arm["name"].as_str().unwrap_or("–").to_string();
        let row = &arm["row"];
        let mut cells = vec![
            name.clone(),
            count(&row["users"]),
            row["total"]["shown"]
                .as_f64()
                .map_or("–".into(), |v| group_thousands(v as u64)),
        ];
        for cell in row["metrics"].as_array().into_iter().flatten() {
            let v = number(&cell["value"], 4);
            if a == 0 {
                cells.push(v);
            } else {
                cells.push(format!(
                    "{v} ({:+.4} [{:+.4}, {:+.4}])",
                    cell["diff"].as_f64().unwrap_or(f64::NAN),
                    cell["ci"][0].as_f64().unwrap_or(f64::NAN),
                    cell["ci"][1].as_f64().unwrap_or(f64::NAN)
                ));
            }
        }
        cells.push(number(&arm["p99_ms"], 1));
        table.push(cells);
        if a > 0 {
            for chart in &mut charts {
                let k = metrics.iter().position(|m| *m == chart.y_label);
                if let Some(cell) = k.and_then(|k| row["metrics"].get(k)) {
                    chart.items.push((
                        name.clone(),
                        cell["diff"].as_f64().unwrap_or(f64::NAN),
                        cell["ci"][0].as_f64().unwrap_or(f64::NAN),
                        cell["ci"][1].as_f64().unwrap_or(f64::NAN),
                    ));
                }
            }
        }
    }
    let hours = |ms: &Value| {
        (ms.as_f64().unwrap_or(f64::NAN) - run["start_ms"].as_f64().unwrap_or(f64::NAN)) / 3.6e6
    };
    let mut section = Section::new(
        "Closed-loop A/B test",
        format!(
            "The simulator's users, split into arms by a seeded hash, were shown in the feed's live slots what each arm's serving API answered (hours {:.1}–{:.1} of the day, after every model's training data), and reacted by the simulator's ground truth. Each cell: the arm's value, then its difference to `{control}` with the 95 % bootstrap interval over users.",
            hours(&run["from_ms"]),
            hours(&run["until_ms"])
        ),
    )
    .with(Block::Table(table));
    for (chart, name) in charts.iter().zip(["ab_clicks", "ab_watch", "ab_highlight"]) {
        if let Ok(figure) = chart.render(
            name,
            &format!(
                "Each arm's {} minus {control}'s, with its 95 % bootstrap interval; an interval that crosses 0 is no measurable difference.",
                chart.y_label
            ),
        ) {
            section.push(Block::Figure(figure));
        }
    }
    Ok(section)
}

/// Training, online and serving speed, from the artifacts that measured them.
fn throughput(dir: &Path) -> Built {
    let mut facts = Vec::new();
    if let Ok(eval) = read_json(&dir.join("model/evaluation.json")) {
        facts.push((
            "offline training (samples/s)".to_string(),
            number(&eval["train_samples_per_s"], 0),
        ));
    }
    if let Ok(summary) = read_json(&dir.join("stream/summary.json")) {
        let c = &summary["counters"];
        facts.push(("online: records streamed".to_string(), count(&c["records"])));
        facts.push(("online: samples trained".to_string(), count(&c["trained"])));
        facts.push((
            "online: exposures scored at their impression".to_string(),
            count(&c["served_scored"]),
        ));
        facts.push((
            "online: model versions published".to_string(),
            count(&summary["version"]),
        ));
    }
    if let Ok(ab) = read_json(&dir.join("abtest/abtest.json")) {
        for arm in ab["runs"][0]["arms"].as_array().into_iter().flatten() {
            facts.push((
                format!(
                    "serving, arm {}: recommend calls · p50 / p99 ms",
                    arm["name"].as_str().unwrap_or("–")
                ),
                format!(
                    "{} · {} / {}",
                    count(&arm["calls"]["calls"]),
                    number(&arm["p50_ms"], 1),
                    number(&arm["p99_ms"], 1)
                ),
            ));
        }
    }
    if let Ok(timings) = read_json(&dir.join("timings.json")) {
        let stages: Vec<String> = timings["stages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                format!(
                    "{} {}",
                    s["stage"].as_str().unwrap_or("–"),
                    number(&s["seconds"], 0)
                )
            })
            .collect();
        facts.push((
            "main job wall time before the report, s (per stage)".to_string(),
            format!(
                "{} ({})",
                number(&timings["total_seconds"], 0),
                stages.join(" · ")
            ),
        ));
    }
    if facts.is_empty() {
        return Err(format!(
            "no model/evaluation.json, stream/summary.json or abtest/abtest.json in {}",
            dir.display()
        ));
    }
    Ok(Section::new(
        "Throughput of the run",
        "How fast each stage worked on this machine during this run (a shared machine: compare ratios within one run, not across runs).",
    )
    .with(Block::Facts(facts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The experiment CSV pivots into one row per variant and one column per metric, in
    /// the file's order; a quoted name keeps its comma, one seed shows the mean alone and a
    /// NaN metric shows a dash.
    #[test]
    fn experiment_csv_pivots_into_variants_by_metrics() {
        let csv = "variant,metric,mean,half_range,n,values\n\
                   \"a, b\",click AUC,0.81234,0.00111,3,0.81;0.812;0.813\n\
                   \"a, b\",soft recall,NaN,NaN,0,\n\
                   full,click AUC,0.8,0,1,0.8\n\
                   full,soft recall,0.48,0,1,0.48\n";
        let (table, seeds) = experiment_table(csv).unwrap_or_default();
        assert_eq!(seeds, 3);
        assert_eq!(table.header, ["variant", "click AUC", "soft recall"]);
        assert_eq!(
            table.rows,
            [
                vec!["a, b".to_string(), "0.8123 ± 0.0011".into(), "–".into()],
                vec!["full".to_string(), "0.8000".into(), "0.4800".into()],
            ]
        );
        assert!(experiment_table("variant,metric,mean,half_range,n,values\n").is_err());
    }
}

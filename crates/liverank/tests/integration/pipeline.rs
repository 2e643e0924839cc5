//! The README's main job on the `tiny` preset: simulate → samples → history → train →
//! evaluation → stream → serve → forecast → A/B test → report, through the real binary,
//! and the report opened in headless Chromium.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_liverank"))
}

#[test]
fn run_on_tiny_prints_the_evaluation_and_beats_popularity() {
    let tmp = tempfile::tempdir().unwrap();
    // An ablation on the run's own samples and history (no [data] section: the run's).
    let ablation = tmp.path().join("cross-ablation.toml");
    std::fs::write(
        &ablation,
        "seeds = [1]\ntasks = [\"click\"]\n\
         [[variant]]\nname = \"no Cross\"\n\
         model = { history_sequences = [], history_profile = false }\n\
         [[variant]]\nname = \"default\"\n",
    )
    .unwrap();
    let out = bin()
        .args([
            "run",
            "--preset",
            "tiny",
            "--quiet",
            "--epochs",
            "1",
            "--experiment",
        ])
        .arg(&ablation)
        .arg("--out")
        .arg(tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for stage in [
        "1/9 simulate",
        "2/9 samples",
        "label consistency",
        "3/9 history",
        "4/9 train + evaluate",
        "baselines (click AUC)",
        "comparison model: fast/slow",
        "comparison model: realtime samples without Cross",
        "ablation: ",
        "5/9 stream",
        "prequential (cumulative)",
        "6/9 serve",
        "API stopped",
        "7/9 forecast",
        "8/9 abtest",
        "Closed-loop A/B test",
        "9/9 report",
        "main job done in",
    ] {
        assert!(stdout.contains(stage), "missing {stage:?} in:\n{stdout}");
    }
    let eval: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("model/evaluation.json")).unwrap())
            .unwrap();
    let model = eval["tasks"]["click"]["auc"].as_f64().unwrap();
    let popularity = eval["popularity_click_auc"].as_f64().unwrap();
    let oracle = eval["oracle_click_auc"].as_f64().unwrap();
    assert!(
        model > popularity,
        "model {model} vs popularity {popularity}"
    );
    assert!(
        oracle > model,
        "oracle {oracle} must bound the model {model}"
    );
    assert!(tmp.path().join("model/model.ckpt").exists());
    // Every stage before the report is timed, in order, and the times add up.
    let timings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("timings.json")).unwrap()).unwrap();
    let stages: Vec<(&str, f64)> = timings["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["stage"].as_str().unwrap(), s["seconds"].as_f64().unwrap()))
        .collect();
    let names: Vec<&str> = stages.iter().map(|s| s.0).collect();
    assert_eq!(
        names,
        [
            "simulate", "samples", "history", "train", "stream", "serve", "forecast", "abtest"
        ]
    );
    let sum: f64 = stages.iter().map(|s| s.1).sum();
    let total = timings["total_seconds"].as_f64().unwrap();
    assert!(sum <= total && sum > 0.9 * total, "{sum} of {total} s");
    // The API answered over the socket with the streamed model's newest version.
    let streamed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("stream/summary.json")).unwrap())
            .unwrap();
    let version = streamed["version"].as_u64().unwrap();
    assert!(version > 1, "{streamed}");
    let answers = stdout
        .lines()
        .filter(|l| l.starts_with("user ") && l.contains(&format!("model v{version},")))
        .count();
    assert_eq!(answers, 3, "three recommend answers in:\n{stdout}");
    let html = std::fs::read_to_string(tmp.path().join("report.html")).unwrap();
    assert!(html.contains("<html"), "report.html is HTML");
    // Every section of the report is there and holds numbers, none is listed as missing.
    let md = std::fs::read_to_string(tmp.path().join("report.md")).unwrap();
    assert!(
        !md.contains("## Not in this run"),
        "a section is missing:\n{md}"
    );
    let sections: Vec<&str> = md.split("\n## ").skip(1).collect();
    let titles: Vec<&str> = sections.iter().map(|s| s.lines().next().unwrap()).collect();
    assert_eq!(
        titles,
        [
            "The simulated world",
            "Label consistency of the sample policies",
            "Offline evaluation",
            "Models compared offline",
            "Ablations",
            "Prequential metrics of the online run",
            "Highlight time-to-boost",
            "LiveForesighter",
            "Closed-loop A/B test",
            "Throughput of the run",
        ]
    );
    for section in &sections {
        let digits = section
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with('*') && !l.starts_with("!["))
            .flat_map(|l| l.chars())
            .filter(char::is_ascii_digit)
            .count();
        assert!(digits > 10, "no numbers in section:\n{section}");
    }
    // The A/B test ran all four arms through their APIs, each arm's users shown rooms.
    let ab: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("abtest/abtest.json")).unwrap())
            .unwrap();
    let arms = ab["runs"][0]["arms"].as_array().unwrap();
    let names: Vec<&str> = arms.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["popularity", "realtime", "fastslow", "realtime-no-cross"]
    );
    for arm in arms {
        assert!(arm["calls"]["calls"].as_u64().unwrap() > 100, "{arm}");
        assert!(
            arm["row"]["total"]["shown"].as_f64().unwrap() > 100.0,
            "{arm}"
        );
    }
    // The page as a reader's browser shows it: headless Chromium, no console errors,
    // every figure drawn at its size; the screenshot stays in target/tmp as the artefact.
    let artefacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-check");
    let check = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/report-check.sh"
    ))
    .arg(tmp.path().join("report.html"))
    .arg(&artefacts)
    .output()
    .unwrap();
    assert!(
        check.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(artefacts.join("report.png").metadata().unwrap().len() > 10_000);

    // A second online run beside the first (`--also-stream POLICY` writes stream-POLICY/)
    // adds the per-policy prequential figure; here the first run's files under another
    // policy's name stand in for it.
    let second = tmp.path().join("stream-fastslow");
    std::fs::create_dir_all(&second).unwrap();
    std::fs::copy(
        tmp.path().join("stream/metrics.csv"),
        second.join("metrics.csv"),
    )
    .unwrap();
    let mut summary = streamed.clone();
    summary["policy"] = "fastslow".into();
    std::fs::write(second.join("summary.json"), summary.to_string()).unwrap();
    let out = bin().arg("report").arg(tmp.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(tmp.path().join("report.md")).unwrap();
    assert!(
        md.contains("figures/prequential_click_auc_per_policy.png"),
        "{md}"
    );
    assert!(!md.contains("## Not in this run"));

    // A bad flag value is bad usage: exit code 2 with a reason.
    let out = bin()
        .args(["train", "--train-samples"])
        .arg(tmp.path().join("samples"))
        .args(["--train-fraction", "1.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("train_fraction"));
}

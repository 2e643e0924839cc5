//! The README's main job on the `tiny` preset: simulate → samples → history → train →
//! evaluation → stream → serve → report, through the real binary.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_liverank"))
}

#[test]
fn run_on_tiny_prints_the_evaluation_and_beats_popularity() {
    let tmp = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "run", "--preset", "tiny", "--quiet", "--epochs", "1", "--out",
        ])
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
        "5/9 stream",
        "prequential (cumulative)",
        "6/9 serve",
        "API stopped",
        "7/9 forecast",
        "8/9 abtest",
        "Closed-loop A/B test",
        "9/9 report",
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

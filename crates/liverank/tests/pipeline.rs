//! The README's main job on the `tiny` preset: simulate → samples → train → evaluation,
//! through the real binary; and a killed-free resume that continues from the checkpoint.

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
        "1/4 simulate",
        "2/4 samples",
        "3/4 history",
        "4/4 train + evaluate",
        "baselines (click AUC)",
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

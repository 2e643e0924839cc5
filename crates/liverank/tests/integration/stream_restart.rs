//! Exact restart of online learning at process level: `liverank stream` on the tiny preset
//! is SIGKILLed at seeded random moments (five times) and resumed with `--resume` until it
//! completes; the final model and every published model version must equal an
//! undisturbed run's byte for byte (and so must the metrics time series).

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_liverank"));
    // A small model and frequent checkpoints keep the test short; same for every run.
    c.env("LIVERANK__MODEL__HIDDEN", "[32]")
        .env("LIVERANK__MODEL__HISTORY_LEN", "10")
        .env("LIVERANK__MODEL__TRUNK__EXPERT_HIDDEN", "16")
        .env("LIVERANK__STREAM__CHECKPOINT_EVERY_MS", "120000")
        .env("LIVERANK__STREAM__PROBE_USERS", "8")
        // A seeded choice of the highlights: a resumed run must probe the same ones.
        .env("LIVERANK__STREAM__PROBE_HIGHLIGHTS", "300")
        // Snapshots (and compaction) every 1.5 h: a resumed run must find its base again.
        .env("LIVERANK__PUBLISH__SNAPSHOT_MS", "5400000")
        .env("LIVERANK__PUBLISH__FSYNC", "false");
    c
}

fn stream_cmd(events: &Path, out: &Path, resume: bool) -> Command {
    let mut c = bin();
    c.args(["stream", "--quiet", "--seed", "3", "--events"])
        .arg(events)
        .arg("--out")
        .arg(out);
    if resume {
        c.arg("--resume");
    }
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

/// The bytes that must match: the final model, every published version, the metrics.
fn outputs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir.join("model")).unwrap() {
        let e = e.unwrap();
        out.insert(
            format!("model/{}", e.file_name().to_string_lossy()),
            std::fs::read(e.path()).unwrap(),
        );
    }
    // model.bin's raw bytes carry burn's parameter ids, a fresh random u64 per parameter
    // per process (two undisturbed runs differ there too); what the trainer *is* — steps,
    // dense weights, the embedding store with its optimiser state — is compared instead.
    // (The dense Adam moments show through every later dense version and prediction.)
    let trainer = liverank_model::Trainer::load(&dir.join("model.bin")).unwrap();
    let mut model = trainer.steps().to_le_bytes().to_vec();
    model.extend(trainer.dense_safetensors().unwrap());
    model.extend(trainer.store().to_bytes());
    out.insert("model.bin (weights)".into(), model);
    for name in ["metrics.csv", "predictions.bin", "highlights.csv"] {
        out.insert(name.into(), std::fs::read(dir.join(name)).unwrap());
    }
    out
}

/// SplitMix64, for the kill moments.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn killed_and_resumed_streams_end_in_the_undisturbed_model() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    // Faults on, so the late/repeated-event filter and unreadable records are in the state
    // that must survive a kill.
    let o = bin()
        .args(["simulate", "--preset", "tiny", "--quiet"])
        .args([
            "--out-of-order",
            "0.02",
            "--duplicate",
            "0.01",
            "--late",
            "0.002",
        ])
        .args(["--malformed", "0.001", "--out"])
        .arg(&sim)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let events = sim.join("events.parquet");

    let clean = tmp.path().join("clean");
    let started = Instant::now();
    let o = stream_cmd(&events, &clean, false).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run_ms = started.elapsed().as_millis() as u64;
    eprintln!("undisturbed run: {run_ms} ms");
    let expected = outputs(&clean);
    assert!(
        expected.keys().filter(|k| k.starts_with("model/")).count() > 20,
        "too few published versions"
    );
    let probed = String::from_utf8_lossy(&expected["highlights.csv"])
        .lines()
        .count()
        - 1;
    assert_eq!(probed, 300, "probe_highlights caps the highlights probed");

    let disturbed = tmp.path().join("disturbed");
    let mut seed = 0x5EED_u64;
    let mut kills = 0;
    let mut attempts = 0;
    while kills < 5 {
        attempts += 1;
        let mut child = stream_cmd(&events, &disturbed, attempts > 1)
            .spawn()
            .unwrap();
        // 2–18 % of an undisturbed run each: five of them cannot add up to a whole run (a
        // resumed run also replays its prefix and redoes the work since its checkpoint),
        // so every kill lands inside the stream — start-up, replay, training, publishing.
        let at = run_ms / 50 + next(&mut seed) % (run_ms * 16 / 100).max(1);
        std::thread::sleep(Duration::from_millis(at));
        assert!(
            child.try_wait().unwrap().is_none(),
            "start {attempts} finished within {at} ms, before kill {}",
            kills + 1
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    attempts += 1;
    let o = stream_cmd(&events, &disturbed, true).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    eprintln!("{kills} kills, {attempts} starts");
    let got = outputs(&disturbed);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &expected {
        assert!(got[name] == *bytes, "{name} differs after {kills} kills");
    }
}

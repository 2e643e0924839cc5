//! Exact restart of online learning at process level: `liverank stream` on the tiny preset
//! is SIGKILLed at seeded random moments (at least five times) and resumed with `--resume`
//! until it completes; the final model and every published model version must equal an
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
        .env("LIVERANK__PUBLISH__SNAPSHOT_MS", "1800000")
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
    for name in [
        "model.bin",
        "metrics.csv",
        "predictions.bin",
        "highlights.csv",
    ] {
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
#[ignore = "not yet verified and too slow for CI: a debug-build tiny stream takes minutes (run with --ignored)"]
fn killed_and_resumed_streams_end_in_the_undisturbed_model() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    let o = bin()
        .args(["simulate", "--preset", "tiny", "--quiet", "--out"])
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
    let expected = outputs(&clean);
    assert!(
        expected.keys().filter(|k| k.starts_with("model/")).count() > 20,
        "too few published versions"
    );

    let disturbed = tmp.path().join("disturbed");
    let mut seed = 0x5EED_u64;
    let mut kills = 0;
    let mut resume = false;
    let mut attempts = 0;
    loop {
        attempts += 1;
        assert!(attempts < 40, "the stream never completed");
        let mut child = stream_cmd(&events, &disturbed, resume).spawn().unwrap();
        resume = true;
        if kills < 5 {
            // Anywhere from the start-up to near the end of an undisturbed run.
            let at = 50 + next(&mut seed) % (run_ms * 9 / 10).max(100);
            std::thread::sleep(Duration::from_millis(at));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                continue;
            }
        }
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        if kills >= 5 {
            break;
        }
    }
    let got = outputs(&disturbed);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &expected {
        assert!(got[name] == *bytes, "{name} differs after {kills} kills");
    }
}

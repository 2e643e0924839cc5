//! Restart exactness at process level: `liverank samples` is SIGKILLed at random moments
//! and restarted from its checkpoint until it completes; the final output must equal an
//! undisturbed run's byte for byte (same sample ids, none lost, none duplicated).

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_liverank"))
}

fn samples_cmd(events: &Path, out: &Path, format: &str) -> Command {
    let mut c = bin();
    c.args([
        "samples",
        "--format",
        format,
        "--quiet",
        "--no-features",
        "--checkpoint-every",
        "20000",
        "--policy",
        "realtime",
        "--policy",
        "fastslow",
        "--policy",
        "complete",
        "--events",
        events.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    c
}

#[test]
fn killed_and_restarted_runs_produce_the_undisturbed_output() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    let o = bin()
        .args([
            "simulate",
            "--preset",
            "tiny",
            "--quiet",
            "--format",
            "jsonl",
            "--duplicate",
            "0.01",
            "--out-of-order",
            "0.01",
            "--late",
            "0.002",
            "--out",
        ])
        .arg(&sim)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let events = sim.join("events.jsonl");

    for format in ["jsonl", "parquet"] {
        check_restarts(tmp.path(), &events, format);
    }
}

/// Everything a run produced, in order: samples (decoded) and dead letters.
fn outputs(dir: &Path, format: &str) -> (Vec<String>, Vec<u8>) {
    let samples = if format == "jsonl" {
        std::fs::read_to_string(dir.join("samples.jsonl"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    } else {
        let mut segments: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
            .collect();
        segments.sort();
        segments
            .iter()
            .flat_map(|p| liverank_ingest::read_parquet_samples(p).unwrap())
            .map(|s| serde_json::to_string(&s).unwrap())
            .collect()
    };
    (
        samples,
        std::fs::read(dir.join("dead_letters.jsonl")).unwrap(),
    )
}

fn check_restarts(tmp: &Path, events: &Path, format: &str) {
    let reference = tmp.join(format!("reference-{format}"));
    let o = samples_cmd(events, &reference, format).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let expected = outputs(&reference, format);
    assert!(expected.0.len() > 1_000);
    let clock = Instant::now();
    let o = samples_cmd(events, &tmp.join(format!("timing-{format}")), format)
        .output()
        .unwrap();
    assert!(o.status.success());
    let full_run = clock.elapsed();

    // Deterministic "random" kill moments spread over the run.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut total_kills = 0;
    for run in 0..3 {
        let out = tmp.join(format!("killed-{format}-{run}"));
        let mut kills = 0;
        loop {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let frac = (state % 1000) as f64 / 1000.0;
            let delay = full_run.mul_f64(0.1 + 0.8 * frac);
            let mut child = samples_cmd(events, &out, format).spawn().unwrap();
            std::thread::sleep(delay);
            match child.try_wait().unwrap() {
                Some(status) => {
                    assert!(status.success());
                    break;
                }
                None => {
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap();
                    kills += 1;
                    assert!(kills < 50, "never finished");
                }
            }
        }
        total_kills += kills;
        let got = outputs(&out, format);
        assert!(
            got.0 == expected.0,
            "{format} run {run} ({kills} kills): samples differ"
        );
        assert!(
            got.1 == expected.1,
            "{format} run {run}: dead letters differ"
        );
    }
    assert!(total_kills > 0, "{format}: no run was ever killed");
}

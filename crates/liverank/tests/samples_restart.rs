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

fn samples_cmd(events: &Path, out: &Path) -> Command {
    let mut c = bin();
    c.args([
        "samples",
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

    let reference = tmp.path().join("reference");
    let o = samples_cmd(&events, &reference).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let expected = std::fs::read(reference.join("samples.jsonl")).unwrap();
    let expected_dead = std::fs::read(reference.join("dead_letters.jsonl")).unwrap();
    assert!(expected.len() > 10_000);
    let clock = Instant::now();
    let o = samples_cmd(&events, &tmp.path().join("timing"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let full_run = clock.elapsed();

    // Deterministic "random" kill moments spread over the run.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for run in 0..4 {
        let out = tmp.path().join(format!("killed{run}"));
        let mut kills = 0;
        loop {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let frac = (state % 1000) as f64 / 1000.0;
            let delay = full_run.mul_f64(0.1 + 0.8 * frac);
            let mut child = samples_cmd(&events, &out).spawn().unwrap();
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
        // A last run on a finished checkpoint must not change anything either.
        let got = std::fs::read(out.join("samples.jsonl")).unwrap();
        assert!(got == expected, "run {run} ({kills} kills): samples differ");
        let dead = std::fs::read(out.join("dead_letters.jsonl")).unwrap();
        assert!(dead == expected_dead, "run {run}: dead letters differ");
        if kills == 0 {
            // Too fast to be killed; still a valid run, but note it in the output.
            eprintln!("run {run}: completed before the kill moment");
        }
    }
}

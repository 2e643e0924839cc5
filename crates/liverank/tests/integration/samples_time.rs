//! Event time that cannot poison the stream (issue 13, item 4), tried as a user would:
//! timestamps near `i64::MAX` finish at once with clear dead letters, and one event stamped
//! in microseconds (or hours ahead) in the middle of a normal stream is the only dead
//! letter: the good events after it are not "late" and the samples are those of the
//! stream without it.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_liverank"))
}

/// Runs `liverank samples` (realtime, JSON Lines) with a deadline; returns stdout.
fn samples(events: &Path, out: &Path) -> String {
    let mut child = bin()
        .args(["samples", "--quiet", "--format", "jsonl", "--no-features"])
        .args(["--policy", "realtime", "--events"])
        .arg(events)
        .arg("--out")
        .arg(out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("liverank samples still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn write(path: &Path, events: &[Value]) {
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn timestamps_near_i64_max_finish_at_once_as_dead_letters() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/formats/events_v1.jsonl");
    let mut events = lines(&fixture);
    assert_eq!(events.len(), 18);
    let n = events.len() as i64;
    for (i, e) in events.iter_mut().enumerate() {
        e["ts"] = Value::from(i64::MAX - (n - i as i64) * 1_000);
    }
    let path = tmp.path().join("far.jsonl");
    write(&path, &events);
    let out = tmp.path().join("out");
    let start = Instant::now();
    let stdout = samples(&path, &out);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    assert!(stdout.contains("records 18"), "{stdout}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["counters"]["samples"][0], 0, "{summary}");
    assert_eq!(summary["counters"]["out_of_range"], 18, "{summary}");
    let dead = lines(&out.join("dead_letters.jsonl"));
    assert_eq!(dead.len(), 18, "every event is a dead letter");
    for d in &dead {
        assert_eq!(d["kind"], "invalid", "{d}");
        let reason = d["reason"].as_str().unwrap();
        assert!(reason.contains("outside the valid range"), "{reason}");
    }
}

#[test]
fn one_bad_timestamp_mid_stream_is_the_only_dead_letter() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    let o = bin()
        .args([
            "simulate", "--preset", "tiny", "--quiet", "--format", "jsonl", "--out",
        ])
        .arg(&sim)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let events = lines(&sim.join("events.jsonl"));
    let mid = events.len() / 2;
    let without: Vec<Value> = events
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != mid)
        .map(|(_, e)| e.clone())
        .collect();
    let clean = tmp.path().join("without.jsonl");
    write(&clean, &without);
    let reference = tmp.path().join("reference");
    samples(&clean, &reference);
    let expected_samples = std::fs::read(reference.join("samples.jsonl")).unwrap();
    let expected_dead = lines(&reference.join("dead_letters.jsonl"));
    let late = |d: &[Value]| d.iter().filter(|x| x["kind"] == "late").count();

    let ts = events[mid]["ts"].as_i64().unwrap();
    // Microseconds instead of milliseconds (year ~58000), then two days ahead (in range,
    // beyond the one-day future skew).
    for (name, bad_ts, kind) in [
        ("micros", ts * 1_000, "invalid"),
        ("ahead", ts + 2 * 86_400_000, "future"),
    ] {
        let mut bad = events.clone();
        bad[mid]["ts"] = Value::from(bad_ts);
        let path = tmp.path().join(format!("{name}.jsonl"));
        write(&path, &bad);
        let out = tmp.path().join(name);
        samples(&path, &out);
        assert!(
            std::fs::read(out.join("samples.jsonl")).unwrap() == expected_samples,
            "{name}: samples differ from the stream without the bad event"
        );
        let dead = lines(&out.join("dead_letters.jsonl"));
        assert_eq!(
            late(&dead),
            late(&expected_dead),
            "{name}: good events became late"
        );
        let extra: Vec<&Value> = dead.iter().filter(|d| !expected_dead.contains(d)).collect();
        assert_eq!(extra.len(), 1, "{name}: {extra:?}");
        assert_eq!(extra[0]["kind"], kind, "{name}: {}", extra[0]);
        assert_eq!(dead.len(), expected_dead.len() + 1, "{name}");
    }
}

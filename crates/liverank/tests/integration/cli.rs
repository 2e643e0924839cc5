//! The binary as a user runs it: exit codes, files written, byte-identical reruns.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::path::Path;
use std::process::{Command, Output};

fn liverank(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_liverank"))
        .args(args)
        .env_remove("LIVERANK__SIM__SEED")
        .output()
        .expect("the binary runs")
}

fn simulate(out: &Path, seed: &str, format: &str) -> Output {
    let o = liverank(&[
        "simulate",
        "--preset",
        "tiny",
        "--seed",
        seed,
        "--format",
        format,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "simulate failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

const FILES: [&str; 8] = [
    "events",
    "users",
    "authors",
    "lives",
    "videos",
    "products",
    "truth_highlights",
    "truth_exposures",
];

fn read_all(dir: &Path, ext: &str) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = FILES
        .iter()
        .map(|f| std::fs::read(dir.join(format!("{f}.{ext}"))).unwrap())
        .collect();
    v.push(std::fs::read(dir.join("manifest.json")).unwrap());
    v
}

#[test]
fn simulate_is_byte_identical_per_seed_in_both_formats() {
    let tmp = tempfile::tempdir().unwrap();
    for (format, ext) in [("jsonl", "jsonl"), ("parquet", "parquet")] {
        let a = tmp.path().join(format!("a-{ext}"));
        let b = tmp.path().join(format!("b-{ext}"));
        let c = tmp.path().join(format!("c-{ext}"));
        let out = simulate(&a, "7", format);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("live exposures"), "{text}");
        simulate(&b, "7", format);
        simulate(&c, "8", format);
        assert_eq!(
            read_all(&a, ext),
            read_all(&b, ext),
            "{format}: same seed differs"
        );
        assert_ne!(
            std::fs::read(a.join(format!("events.{ext}"))).unwrap(),
            std::fs::read(c.join(format!("events.{ext}"))).unwrap(),
            "{format}: another seed gives the same events"
        );
    }
}

#[test]
fn inspect_reports_realism_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sim");
    simulate(&dir, "7", "parquet");
    let o = liverank(&["inspect", dir.join("events.parquet").to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "video:live exposures",
        "live CTR in highlights",
        "gift delay after enter",
        "oracle click AUC",
        "video_play",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
}

#[test]
fn faulty_stream_is_read_with_dead_letters_and_counts() {
    let tmp = tempfile::tempdir().unwrap();
    for ext in ["jsonl", "parquet"] {
        let dir = tmp.path().join(ext);
        let o = liverank(&[
            "simulate",
            "--preset",
            "tiny",
            "--format",
            ext,
            "--malformed",
            "0.01",
            "--duplicate",
            "0.01",
            "--quiet",
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        let injected = manifest["summary"]["faults"]["malformed"].as_u64().unwrap();
        let left_out = manifest["summary"]["malformed_not_representable_in_parquet"]
            .as_u64()
            .unwrap();
        assert!(injected > 100, "{manifest}");
        if ext == "jsonl" {
            assert_eq!(left_out, 0);
        }
        let dead = tmp.path().join(format!("dead-{ext}.jsonl"));
        let o = liverank(&[
            "inspect",
            "--json",
            "--dead-letters",
            dead.to_str().unwrap(),
            dir.join(format!("events.{ext}")).to_str().unwrap(),
        ]);
        assert!(
            o.status.success(),
            "{ext}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let dead_lines = std::fs::read_to_string(&dead).unwrap().lines().count() as u64;
        assert_eq!(
            dead_lines,
            injected - left_out,
            "{ext}: every malformed record written is a dead letter"
        );
    }
}

#[test]
fn bad_usage_and_bad_input_exit_with_2() {
    let o = liverank(&["simulate", "--preset", "huge"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("huge"));
    let o = liverank(&["inspect", "/nonexistent/events.parquet"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = liverank(&["inspect", "events.csv"]);
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(env!("CARGO_BIN_EXE_liverank"))
        .args(["simulate", "--preset", "tiny", "--quiet"])
        .env("LIVERANK__SIM__USERS", "0")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("users"));
    // A history store that is not where the flags point: bad input, its reason said once.
    let o = liverank(&[
        "history",
        "query",
        "--store",
        "/nonexistent/history",
        "--user",
        "5",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("/nonexistent/history"), "{err}");
    assert_eq!(err.matches("no history store here").count(), 1, "{err}");
}

#[test]
fn default_config_prints_and_round_trips() {
    let o = liverank(&["config"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    let parsed: toml::Table = text.parse().unwrap();
    assert_eq!(parsed["sim"]["seed"].as_integer(), Some(7));
}

/// The fault class of an ingest error decides the exit code: a device that fails (here
/// `/dev/full`, which refuses every write with ENOSPC) is the environment, exit 1 — not
/// bad input, exit 2 — while a corrupt input file still exits 2.
#[test]
fn a_full_disk_exits_1_and_corrupt_input_exits_2() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full on this system");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Enough malformed lines that the dead letters overflow the writer's buffer while the
    // events are still being read.
    let events = tmp.path().join("events.jsonl");
    let bad: String = (0..4000).map(|i| format!("{{not json {i}\n")).collect();
    std::fs::write(&events, bad).unwrap();
    let o = liverank(&[
        "inspect",
        events.to_str().unwrap(),
        "--dead-letters",
        "/dev/full",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("/dev/full"), "{err}");
    // The same command on a corrupt Parquet file: bad input.
    let corrupt = tmp.path().join("events.parquet");
    std::fs::write(&corrupt, b"PAR1 this is not a parquet file PAR1").unwrap();
    let o = liverank(&["inspect", corrupt.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A users table that is there but cannot be read is an error naming it, not samples
/// built without user features; without the file the samples are built (features empty).
#[test]
fn a_corrupt_users_table_is_an_error_not_missing_features() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    simulate(&sim, "3", "parquet");
    std::fs::write(sim.join("users.parquet"), b"PAR1 garbage PAR1").unwrap();
    let events = sim.join("events.parquet");
    let out = tmp.path().join("samples");
    let run = |out: &Path| {
        liverank(&[
            "samples",
            "--events",
            events.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
    };
    let o = run(&out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("users.parquet"), "{err}");
    std::fs::remove_file(sim.join("users.parquet")).unwrap();
    let o = run(&tmp.path().join("samples2"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

//! Distributed mode against the real broker (tansu, started by `scripts/kafka.sh`; the
//! address in `LIVERANK_TEST_KAFKA_BROKERS`). Without a broker these tests fail, they do
//! not skip. Every test uses its own topics, so they share one broker.
//!
//! What holds: events → Kafka → samples equals the file path (one partition: the same
//! samples as a set of `sample_id` with identical contents); two workers on two partitions
//! give exactly what one worker gives; a worker SIGKILLed at seeded moments and restarted
//! leaves exactly the undisturbed samples in the topic (the dedup rule by `sample_id`).

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use liverank_kafka::KafkaConfig;
use liverank_types::Sample;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

fn brokers() -> String {
    std::env::var("LIVERANK_TEST_KAFKA_BROKERS").expect(
        "LIVERANK_TEST_KAFKA_BROKERS is not set: run the tests through scripts/test.sh, \
         or start the broker with scripts/kafka.sh start and export \
         LIVERANK_TEST_KAFKA_BROKERS=127.0.0.1:9093",
    )
}

/// Topics of their own for one test.
fn kafka(test: &str, partitions: u32) -> KafkaConfig {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let stem = format!("t-{test}-{}-{nonce}", std::process::id());
    KafkaConfig {
        brokers: brokers(),
        events_topic: format!("{stem}-events"),
        samples_topic: format!("{stem}-samples"),
        partitions,
        ..KafkaConfig::default()
    }
}

fn bin(k: &KafkaConfig) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_liverank"));
    c.env("LIVERANK__KAFKA__BROKERS", &k.brokers)
        .env("LIVERANK__KAFKA__EVENTS_TOPIC", &k.events_topic)
        .env("LIVERANK__KAFKA__SAMPLES_TOPIC", &k.samples_topic)
        .env("LIVERANK__KAFKA__PARTITIONS", k.partitions.to_string());
    c
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A tiny simulated day with faults (late, out of order, duplicates) in JSON Lines.
fn simulate(dir: &Path) -> PathBuf {
    let sim = dir.join("sim");
    ok(Command::new(env!("CARGO_BIN_EXE_liverank"))
        .args([
            "simulate", "--preset", "tiny", "--quiet", "--format", "jsonl",
        ])
        .args([
            "--duplicate",
            "0.01",
            "--out-of-order",
            "0.01",
            "--late",
            "0.002",
        ])
        .arg("--out")
        .arg(&sim)
        .output()
        .unwrap());
    sim
}

const POLICIES: [&str; 6] = [
    "--policy", "realtime", "--policy", "fastslow", "--policy", "complete",
];

fn ingest(k: &KafkaConfig, sim: &Path) -> String {
    ok(bin(k)
        .args(["ingest", "kafka", "--events"])
        .arg(sim.join("events.jsonl"))
        .arg("--dead-letters")
        .arg(sim.join("ingest_dead.jsonl"))
        .output()
        .unwrap())
}

fn worker(
    k: &KafkaConfig,
    sim: &Path,
    state: &Path,
    partitions: &[i32],
    extra: &[&str],
) -> Command {
    let mut c = bin(k);
    c.args(["samples", "--kafka", "--quiet"])
        .args(POLICIES)
        .args(extra)
        .arg("--tables")
        .arg(sim)
        .arg("--out")
        .arg(state);
    for p in partitions {
        c.args(["--partition", &p.to_string()]);
    }
    c
}

/// Each samples partition's messages in offset order, as JSON.
fn topic(k: &KafkaConfig) -> Vec<Vec<String>> {
    (0..k.partitions as i32)
        .map(|p| {
            liverank_kafka::read_samples(k, p)
                .unwrap()
                .iter()
                .map(|s| serde_json::to_string(s).unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn events_through_kafka_give_the_file_paths_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = simulate(tmp.path());
    let k = kafka("roundtrip", 1);
    let out = ingest(&k, &sim);
    assert!(out.contains("0 rejected records"), "{out}");
    let out = ok(worker(&k, &sim, &tmp.path().join("state"), &[], &[])
        .output()
        .unwrap());
    assert!(out.contains("deduplicated 0"), "{out}");

    // The file path over the same events.
    let file_out = tmp.path().join("file");
    ok(Command::new(env!("CARGO_BIN_EXE_liverank"))
        .args(["samples", "--quiet", "--format", "jsonl"])
        .args(POLICIES)
        .arg("--events")
        .arg(sim.join("events.jsonl"))
        .arg("--out")
        .arg(&file_out)
        .output()
        .unwrap());
    let by_id = |samples: Vec<Sample>| -> BTreeMap<u64, String> {
        let n = samples.len();
        let map: BTreeMap<_, _> = samples
            .into_iter()
            .map(|s| (s.sample_id, serde_json::to_string(&s).unwrap()))
            .collect();
        assert_eq!(map.len(), n, "a sample_id repeats");
        map
    };
    let file: Vec<Sample> = std::fs::read_to_string(file_out.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kafka_samples = liverank_kafka::read_samples(&k, 0).unwrap();
    // In order, too: one partition is the file, record for record.
    assert_eq!(
        kafka_samples
            .iter()
            .map(|s| s.sample_id)
            .collect::<Vec<_>>(),
        file.iter().map(|s| s.sample_id).collect::<Vec<_>>()
    );
    let (file, kafka_samples) = (by_id(file), by_id(kafka_samples));
    assert!(file.len() > 1_000, "{}", file.len());
    assert!(
        file.values().any(|s| s.contains("\"features\":{")),
        "the comparison covers the feature block"
    );
    assert_eq!(file.len(), kafka_samples.len());
    for (id, s) in &file {
        assert_eq!(kafka_samples.get(id), Some(s), "sample {id}");
    }
    // The engine's dead letters match in number (positions differ: lines vs offsets).
    let lines = |p: PathBuf| std::fs::read_to_string(p).unwrap().lines().count();
    assert_eq!(
        lines(file_out.join("dead_letters.jsonl")),
        lines(tmp.path().join("state/p0/dead_letters.jsonl"))
    );
}

#[test]
fn two_workers_on_two_partitions_give_one_workers_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = simulate(tmp.path());
    let one = kafka("oneworker", 2);
    ingest(&one, &sim);
    ok(worker(&one, &sim, &tmp.path().join("one"), &[], &[])
        .output()
        .unwrap());
    // Same events topic, another samples topic.
    let two = KafkaConfig {
        samples_topic: format!("{}-two", one.samples_topic),
        ..one.clone()
    };
    let a = worker(&two, &sim, &tmp.path().join("a"), &[0], &[])
        .spawn()
        .unwrap();
    let b = worker(&two, &sim, &tmp.path().join("b"), &[1], &[])
        .spawn()
        .unwrap();
    for child in [a, b] {
        ok(child.wait_with_output().unwrap());
    }
    let (expected, got) = (topic(&one), topic(&two));
    assert!(
        expected.iter().all(|p| p.len() > 500),
        "both partitions carry samples"
    );
    assert_eq!(expected, got);
}

#[test]
fn a_worker_killed_anywhere_resumes_to_exactly_the_undisturbed_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = simulate(tmp.path());
    let reference = kafka("killref", 2);
    ingest(&reference, &sim);
    let every = ["--checkpoint-every", "3000", "--no-features"];
    let clock = Instant::now();
    ok(
        worker(&reference, &sim, &tmp.path().join("ref"), &[], &every)
            .output()
            .unwrap(),
    );
    let full_run = clock.elapsed();
    let expected = topic(&reference);
    assert!(expected.iter().all(|p| p.len() > 500));

    // Deterministic "random" kill moments spread over the run (xorshift, fixed seed).
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let (mut total_kills, mut deduplicated) = (0, 0u64);
    for run in 0..3 {
        let k = KafkaConfig {
            samples_topic: format!("{}-killed-{run}", reference.samples_topic),
            ..reference.clone()
        };
        let dir = tmp.path().join(format!("killed-{run}"));
        let mut kills = 0;
        loop {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let frac = (state % 1000) as f64 / 1000.0;
            let delay = full_run.mul_f64(0.1 + 0.5 * frac);
            let mut child = worker(&k, &sim, &dir, &[], &every)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            std::thread::sleep(delay);
            if child.try_wait().unwrap().is_some() || kills >= 4 {
                let out = ok(child.wait_with_output().unwrap());
                deduplicated += out
                    .lines()
                    .filter_map(|l| l.split("deduplicated ").nth(1))
                    .map(|n| n.split_whitespace().next().unwrap().parse::<u64>().unwrap())
                    .sum::<u64>();
                break;
            }
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
        }
        total_kills += kills;
        for p in 0..2 {
            let letters =
                |d: &Path| std::fs::read(d.join(format!("p{p}/dead_letters.jsonl"))).unwrap();
            assert!(
                letters(&dir) == letters(&tmp.path().join("ref")),
                "run {run}: dead letters of partition {p} differ"
            );
        }
        let got = topic(&k);
        for (p, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert!(
                g == e,
                "run {run} ({kills} kills) partition {p}: {} samples, expected {}",
                g.len(),
                e.len()
            );
        }
    }
    eprintln!("{total_kills} kills, {deduplicated} samples deduplicated on the final restarts");
    assert!(total_kills >= 5, "only {total_kills} kills landed mid-run");
    assert!(
        deduplicated > 0,
        "no restart ever met samples written after its checkpoint"
    );
}

#[test]
fn an_unreachable_broker_is_a_prompt_runtime_error() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_liverank"))
        .env("LIVERANK__KAFKA__BROKERS", "127.0.0.1:1")
        .env("LIVERANK__KAFKA__TIMEOUT_MS", "1000")
        .args(["samples", "--kafka", "--quiet", "--out"])
        .arg(tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("creating topics"), "{stderr}");
    assert!(clock.elapsed().as_secs() < 20, "{:?}", clock.elapsed());
}

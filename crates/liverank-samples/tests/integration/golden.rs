//! Golden streams: `testdata/golden/<case>/{events.jsonl, policies, expected.jsonl}`, with
//! hand-written expected samples (SPEC §3's worked example first). Each case also runs as
//! run → checkpoint → restore into a new engine → finish, at every cut point, and must
//! give identical output.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use liverank_samples::{Output, RejectReason, SampleConfig, SampleEngine};
use liverank_types::{Event, Policy};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/golden")
}

fn compact(o: &Output) -> Value {
    match o {
        Output::Sample(s) => {
            let mut labels = Map::new();
            for (task, label) in s.labels.iter() {
                labels.insert(task.as_str().into(), json!(u8::from(label)));
            }
            json!({
                "policy": s.policy.as_str(),
                "kind": serde_json::to_value(s.kind).unwrap(),
                "ts": s.ts.0,
                "request_id": s.request_id.0,
                "live": s.live.0,
                "labels": labels,
            })
        }
        Output::Rejected { event, reason } => {
            let reason = match reason {
                RejectReason::Late { .. } => "late",
                RejectReason::Duplicate => "duplicate",
                RejectReason::Orphan => "orphan",
                RejectReason::OutOfRange => "out_of_range",
                RejectReason::Future { .. } => "future",
            };
            json!({"rejected": reason, "event_id": event.event_id.0})
        }
    }
}

fn load(case: &Path) -> (SampleConfig, Vec<Event>, Vec<Value>) {
    let policies: Vec<Policy> = std::fs::read_to_string(case.join("policies"))
        .unwrap()
        .trim()
        .split(',')
        .map(|p| p.parse().unwrap())
        .collect();
    let config = SampleConfig {
        policies,
        ..SampleConfig::default()
    };
    let events = std::fs::read_to_string(case.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected = std::fs::read_to_string(case.join("expected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (config, events, expected)
}

fn run(config: &SampleConfig, events: &[Event], cut: Option<usize>) -> Vec<Value> {
    let mut engine = SampleEngine::new(config.clone(), Arc::default());
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if cut == Some(i) {
            let bytes = engine.to_bytes().unwrap();
            engine = SampleEngine::from_bytes(&bytes, Arc::default()).unwrap();
        }
        engine.push(e.clone(), &mut out);
    }
    if cut == Some(events.len()) {
        let bytes = engine.to_bytes().unwrap();
        engine = SampleEngine::from_bytes(&bytes, Arc::default()).unwrap();
    }
    engine.finish(&mut out);
    out.iter().map(compact).collect()
}

#[test]
fn golden_streams_match_hand_written_samples_with_and_without_restarts() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("events.jsonl").exists())
        .collect();
    cases.sort();
    assert!(cases.len() >= 5, "golden cases missing");
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let (config, events, expected) = load(&case);
        let got = run(&config, &events, None);
        let show = |v: &[Value]| {
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(
            got,
            expected,
            "case {name}\n--- got\n{}\n--- expected\n{}",
            show(&got),
            show(&expected)
        );
        for cut in 0..=events.len() {
            assert_eq!(
                run(&config, &events, Some(cut)),
                expected,
                "case {name}, restart at {cut}"
            );
        }
    }
}

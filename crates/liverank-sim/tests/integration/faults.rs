//! Fault injection does what it says: out-of-order events stay within the lateness, late
//! ones exceed it, duplicates are exact copies, malformed records are really malformed,
//! and nothing else changes.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use liverank_sim::{FaultConfig, Preset, SimConfig, Simulation, VecSink};
use std::collections::HashMap;

#[test]
fn faults_are_injected_as_configured() {
    let lateness = 60_000;
    let faults = FaultConfig {
        out_of_order: 0.02,
        late: 0.005,
        duplicate: 0.01,
        malformed: 0.002,
        lateness_ms: lateness,
    };
    let clean_sim = Simulation::new(SimConfig::preset(Preset::Tiny)).unwrap();
    let mut clean = VecSink::default();
    clean_sim.run(&mut clean, |_| {}).unwrap();
    let sim = Simulation::new(SimConfig::preset(Preset::Tiny).with_faults(faults)).unwrap();
    let mut sink = VecSink::default();
    let (_, summary) = sim.run(&mut sink, |_| {}).unwrap();
    let f = &summary.faults;
    let n = clean.events.len() as f64;
    assert!((f.out_of_order as f64 / n - 0.02).abs() < 0.004, "{f:?}");
    assert!((f.late as f64 / n - 0.005).abs() < 0.002, "{f:?}");
    assert!((f.duplicate as f64 / n - 0.01).abs() < 0.003, "{f:?}");
    assert_eq!(sink.malformed.len() as u64, f.malformed);

    // Same events as the clean run once duplicates are removed and ids sorted.
    let mut by_id: HashMap<u64, &liverank_types::Event> = HashMap::new();
    let mut duplicates = 0;
    for e in &sink.events {
        if let Some(prev) = by_id.insert(e.event_id.0, e) {
            assert_eq!(prev, e, "a duplicate must be an exact copy");
            duplicates += 1;
        }
    }
    assert_eq!(duplicates, f.duplicate);
    let mut dedup: Vec<_> = by_id.into_values().cloned().collect();
    dedup.sort_by_key(|e| e.event_id);
    // Malformed records consume ids, so compare payloads and times, not ids.
    let strip = |v: &[liverank_types::Event]| -> Vec<_> {
        v.iter().map(|e| (e.ts, e.kind.clone())).collect()
    };
    assert_eq!(strip(&dedup), strip(&clean.events));

    // Lateness, measured the way an engine would: against the newest timestamp seen.
    let mut max_seen = 0i64;
    let mut beyond = 0u64;
    for e in &sink.events {
        if e.ts.0 < max_seen - lateness as i64 {
            beyond += 1;
        }
        max_seen = max_seen.max(e.ts.0);
    }
    // Every event beyond the lateness is an injected late one (a late one may land
    // inside the window when the stream has a quiet gap, never the reverse).
    assert!(
        beyond <= f.late,
        "{beyond} beyond lateness, {} injected",
        f.late
    );
    assert!(
        beyond as f64 >= 0.8 * f.late as f64,
        "{beyond} vs {}",
        f.late
    );

    // Malformed records fail to parse or validate.
    for m in &sink.malformed {
        let parsed: Result<liverank_types::Event, _> = serde_json::from_str(&m.json_line);
        assert!(parsed.is_err(), "{}", m.json_line);
    }
}

//! Simulator and decode throughput (events/s). Run: `cargo bench -p liverank-bench`.
//! End-to-end figures with a same-run baseline: `liverank bench sim|decode`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use liverank_ingest::{EventFormat, read_events};
use liverank_sim::{CountingSink, Preset, SimConfig, Simulation};

fn simulate(c: &mut Criterion) {
    let sim = Simulation::new(SimConfig::preset(Preset::Tiny)).expect("tiny preset is valid");
    let mut probe = CountingSink::default();
    sim.run(&mut probe, |_| {}).expect("in-memory sink");
    let mut group = c.benchmark_group("simulate");
    group.throughput(Throughput::Elements(probe.events));
    group.sample_size(10);
    group.bench_function("tiny_events", |b| {
        b.iter(|| {
            let mut sink = CountingSink::default();
            sim.run(&mut sink, |_| {}).expect("in-memory sink");
            sink.checksum
        })
    });
    group.finish();
}

fn decode(c: &mut Criterion) {
    let sim = Simulation::new(SimConfig::preset(Preset::Tiny)).expect("tiny preset is valid");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("decode");
    group.sample_size(10);
    for format in [EventFormat::Jsonl, EventFormat::Parquet] {
        let out = dir.path().join(format.extension());
        let summary = liverank_sim::output::write_simulation(&sim, &out, format, |_| {})
            .expect("write simulation");
        let path = out.join(format!("events.{}", format.extension()));
        group.throughput(Throughput::Elements(summary.events));
        group.bench_function(format.extension(), |b| {
            b.iter(|| {
                let mut n = 0u64;
                read_events(&path, None, |e| n += e.event_id.0).expect("decode");
                n
            })
        });
    }
    group.finish();
}

criterion_group!(benches, simulate, decode);
criterion_main!(benches);

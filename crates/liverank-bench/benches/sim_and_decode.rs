//! Simulator and decode throughput (events/s). Run: `cargo bench -p liverank-bench`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
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

criterion_group!(benches, simulate);
criterion_main!(benches);

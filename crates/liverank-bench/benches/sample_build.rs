//! Sample-engine throughput (events/s) on the tiny preset's stream, per policy set.
//! End-to-end figures on `small`: `liverank bench samples`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use liverank_samples::{SampleConfig, SampleEngine};
use liverank_sim::{Preset, SimConfig, Simulation, VecSink};
use liverank_types::Policy;

fn sample_build(c: &mut Criterion) {
    let sim = Simulation::new(SimConfig::preset(Preset::Tiny)).expect("tiny preset is valid");
    let mut sink = VecSink::default();
    sim.run(&mut sink, |_| {}).expect("in-memory sink");
    let events = sink.events;
    let mut group = c.benchmark_group("sample_build");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.sample_size(10);
    for (name, policies) in [
        ("realtime", vec![Policy::Realtime]),
        ("all_policies", Policy::ALL.to_vec()),
    ] {
        let config = SampleConfig {
            policies,
            ..SampleConfig::default()
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut engine = SampleEngine::new(config.clone(), Default::default());
                let mut out = Vec::new();
                let mut n = 0usize;
                for e in &events {
                    engine.push(e.clone(), &mut out);
                    n += out.len();
                    out.clear();
                }
                engine.finish(&mut out);
                n + out.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sample_build);
criterion_main!(benches);

//! `liverank bench train` / `bench score`: the product's own ranker and trainer at the shape
//! of `bench/peer_torch_ranker.py`, fed synthetic batches like the peer's, printing
//! the same `RESULT` lines so one script can run both and divide.
//!
//! Threads: burn's flex backend runs on a rayon pool; `RAYON_NUM_THREADS=1` pins it to one
//! core. `--threads` is recorded in the RESULT line for the comparison.

use crate::Failure;
use clap::Args;
use liverank_model::features::{FeatureBatch, KeyKind, key};
use liverank_model::rng::SplitMix64;
use liverank_model::{
    InputShape, RankerConfig, SeqGroups, SparseConfig, Trainer, TrunkConfig, TrunkKind,
};
use liverank_types::Task;
use liverank_types::stats::quantile_sorted;
use std::time::Instant;

/// The peer's flags, same names and defaults.
#[derive(Debug, Args, Clone)]
pub struct PeerShape {
    #[arg(long, default_value_t = 1024)]
    batch: usize,
    #[arg(long, default_value_t = 24)]
    fields: usize,
    #[arg(long, default_value_t = 16)]
    dim: usize,
    #[arg(long, default_value_t = 50)]
    seq: usize,
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    #[arg(long, default_value = "256,128")]
    hidden: String,
    #[arg(long, default_value_t = 3)]
    experts: usize,
    #[arg(long = "expert-hidden", default_value_t = 64)]
    expert_hidden: usize,
    #[arg(long, default_value_t = 3)]
    tasks: usize,
    #[arg(long, default_value_t = 1)]
    threads: usize,
    #[arg(long, default_value_t = 40)]
    steps: usize,
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    #[arg(long, default_value_t = 500)]
    candidates: usize,
    #[arg(long, default_value_t = 12345)]
    seed: u64,
}

impl PeerShape {
    fn config(&self) -> Result<RankerConfig, Failure> {
        let hidden: Vec<usize> = self
            .hidden
            .split(',')
            .map(|x| x.trim().parse::<usize>())
            .collect::<Result<_, _>>()
            .map_err(|e| Failure::Input(anyhow::anyhow!("--hidden {:?}: {e}", self.hidden)))?;
        let tasks = Task::ALL.iter().copied().cycle().take(self.tasks).collect();
        Ok(RankerConfig {
            tasks,
            embedding_dim: self.dim,
            hidden,
            trunk: TrunkConfig {
                kind: TrunkKind::Mmoe,
                shared_experts: self.experts,
                specific_experts: 0,
                levels: 1,
                expert_hidden: self.expert_hidden,
            },
            tower_hidden: Vec::new(),
            // The peer's shape: one sequence group, built by `shape()`, no history.
            history_sequences: Vec::new(),
            learning_rate: 1e-3,
            sparse: SparseConfig {
                learning_rate: 0.05,
                initial_accumulator: 0.0,
                init_scale: 0.05,
                // Like the peer's nn.Embedding(R, D): the table's memory exists up front.
                reserve_rows: usize::try_from(self.rows).unwrap_or(usize::MAX),
                ..SparseConfig::default()
            },
            seed: self.seed,
            ..RankerConfig::default()
        })
    }

    fn shape(&self) -> InputShape {
        InputShape {
            fields: self.fields,
            seq_len: self.seq,
            seq_subkeys: 1,
            dense: 0,
            groups: SeqGroups::single(self.seq),
        }
    }

    /// Skewed ids like the peer's: `min(u³·R, R−1)`.
    fn id(&self, rng: &mut SplitMix64) -> u64 {
        let u = f64::from(rng.next_f32());
        ((u * u * u * self.rows as f64) as u64).min(self.rows - 1)
    }

    fn batch(&self, rng: &mut SplitMix64) -> FeatureBatch {
        let rates = [0.1, 0.05, 0.3, 0.02, 0.01, 0.01, 0.005];
        let mut b = FeatureBatch::with_shape(self.fields, self.seq, 1, 0, self.tasks);
        for _ in 0..self.batch {
            for _ in 0..self.fields {
                b.fields.push(key(KeyKind::Synthetic, self.id(rng)));
            }
            for _ in 0..self.seq {
                b.seq_keys.push(key(KeyKind::Synthetic, self.id(rng)));
                b.seq_mask.push(true);
            }
            for t in 0..self.tasks {
                let rate = rates.get(t).copied().unwrap_or(0.05);
                b.labels.push(if rng.next_f32() < rate { 1.0 } else { 0.0 });
                b.mask.push(1.0);
            }
            b.slow.push(false);
            b.users.push(0);
            b.batch += 1;
        }
        b
    }
}

/// Trains, then scores; prints the score line and the train line (the peer's order).
pub fn run(shape: &PeerShape, score_only: bool) -> Result<(), Failure> {
    let config = shape.config()?;
    let mut trainer = Trainer::new(config, shape.shape()).map_err(|e| Failure::Input(e.into()))?;
    let mut rng = SplitMix64::new(shape.seed);
    let batches: Vec<FeatureBatch> = (0..8).map(|_| shape.batch(&mut rng)).collect();
    let steps = if score_only {
        shape.warmup.max(1)
    } else {
        shape.warmup + shape.steps
    };
    let mut started = Instant::now();
    let mut step_ms = Vec::with_capacity(steps);
    let mut parts = [0.0f64; 4];
    let pipelined = shape.threads >= 2 && !score_only;
    // Pipelined (two or more threads): the embedding store on its own thread, burn on a pool
    // of the remaining threads; the warm-up steps run pipelined too, so the timed steps find
    // the pool's threads (and their allocator caches) warm, as the peer's loop does.
    let steps = if pipelined { 0 } else { steps };
    for s in 0..steps {
        if s == shape.warmup {
            started = Instant::now();
        }
        let t = Instant::now();
        let st = trainer
            .train_step(&batches[s % batches.len()])
            .map_err(|e| Failure::Runtime(e.into()))?;
        step_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if s >= shape.warmup {
            let measured = [
                st.gather_s,
                st.forward_backward_s,
                st.sparse_update_s,
                st.dense_update_s,
            ];
            for (p, v) in parts.iter_mut().zip(measured) {
                *p += v * 1e3 / shape.steps as f64;
            }
        }
    }
    let mut train_secs = started.elapsed().as_secs_f64();
    if pipelined {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(shape.threads - 1)
            .build()
            .map_err(|e| Failure::Runtime(e.into()))?;
        let all = (0..shape.warmup + shape.steps).map(|s| batches[s % batches.len()].clone());
        let (mut last, mut done) = (Instant::now(), 0usize);
        started = Instant::now();
        pool.install(|| {
            trainer.train_pipelined(all, |st| {
                step_ms.push(last.elapsed().as_secs_f64() * 1e3);
                last = Instant::now();
                done += 1;
                if done == shape.warmup {
                    started = last; // the timed steps start where the last warm-up one ends
                } else if done > shape.warmup {
                    parts[0] += st.gather_s * 1e3 / shape.steps as f64;
                    parts[1] += st.forward_backward_s * 1e3 / shape.steps as f64;
                    parts[3] += st.dense_update_s * 1e3 / shape.steps as f64;
                }
                Ok(())
            })
        })
        .map_err(|e| Failure::Runtime(e.into()))?;
        train_secs = started.elapsed().as_secs_f64();
    }

    // Scoring: one user, `candidates` rows with field 0 varied, the same sequence.
    let scorer = trainer.scorer().map_err(|e| Failure::Runtime(e.into()))?;
    let c = shape.candidates;
    let mut req = FeatureBatch::with_shape(shape.fields, shape.seq, 1, 0, shape.tasks);
    let user: Vec<u64> = (0..shape.fields)
        .map(|_| key(KeyKind::Synthetic, shape.id(&mut rng)))
        .collect();
    let seq: Vec<u64> = (0..shape.seq)
        .map(|_| key(KeyKind::Synthetic, shape.id(&mut rng)))
        .collect();
    for _ in 0..c {
        req.fields.push(key(KeyKind::Synthetic, shape.id(&mut rng)));
        req.fields.extend_from_slice(&user[1..]);
        req.seq_keys.extend_from_slice(&seq);
        req.seq_mask.extend(std::iter::repeat_n(true, shape.seq));
        req.labels.extend(std::iter::repeat_n(0.0, shape.tasks));
        req.mask.extend(std::iter::repeat_n(0.0, shape.tasks));
        req.slow.push(false);
        req.users.push(0);
        req.batch += 1;
    }
    let mut lat = Vec::with_capacity(100);
    for k in 0..120 {
        let t = Instant::now();
        std::hint::black_box(
            scorer
                .predict_parallel(&req, shape.threads)
                .map_err(|e| Failure::Runtime(e.into()))?,
        );
        if k >= 20 {
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    lat.sort_by(f64::total_cmp);
    let version = env!("CARGO_PKG_VERSION");
    println!(
        "RESULT peer=liverank-{version} task=score candidates={c} threads={} p50_ms={:.3} p99_ms={:.3}",
        shape.threads,
        quantile_sorted(&lat, 0.5),
        quantile_sorted(&lat, 0.99)
    );
    if !score_only {
        let timed = &step_ms[step_ms.len() - shape.steps..];
        let mut sorted = timed.to_vec();
        sorted.sort_by(f64::total_cmp);
        println!(
            "RESULT peer=liverank-{version} task=train batch={} threads={} ms_per_step={:.2} samples_per_s={:.0} step_p50_ms={:.2} table_rows={} gather_ms={:.2} forward_backward_ms={:.2} sparse_update_ms={:.2} dense_update_ms={:.2}",
            shape.batch,
            shape.threads,
            train_secs * 1e3 / shape.steps as f64,
            (shape.steps * shape.batch) as f64 / train_secs,
            quantile_sorted(&sorted, 0.5),
            trainer.store().len(),
            parts[0],
            parts[1],
            parts[2],
            parts[3]
        );
    }
    Ok(())
}

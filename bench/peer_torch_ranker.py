#!/usr/bin/env python3
"""liverank's PyTorch peer: the ranker's training step and candidate scoring in PyTorch (CPU).

It builds the model `liverank bench train` / `liverank bench score` build
(crates/liverank/src/bench_model.rs), from the same flags with the same defaults, on the
same kind of synthetic batches, and prints the same RESULT lines, so one script can run
both side by side and divide (absolute times on shared machines drift; ratios hold).

The model, per row:
  * F sparse fields and a sequence of L ids, every id embedded at width D from one table of
    R rows (nn.Embedding(sparse=True), rows uniform in +-0.05, row-wise Adagrad lr 0.05,
    initial accumulator 0: PyTorch's fastest CPU path for a big table);
  * target attention of field 0 over the sequence: softmax(q K^T / sqrt(D)) V;
  * [F*D fields, D attended] -> the bottom MLP (--hidden widths, ReLU after each);
  * MMoE: E experts (Linear to X, ReLU), per task a softmax gate over the experts and a
    linear tower to one logit;
  * loss: sigmoid BCE summed over the T tasks and averaged over the batch; Adam lr 1e-3 on
    every dense parameter.
Ids are skewed (min(u^3 * R, R-1)), so a batch repeats popular rows as real traffic does;
labels are Bernoulli at 0.1, 0.05, 0.3, 0.02, 0.01, 0.01, 0.005 (then 0.05) per task.

Training: --warmup steps, then --steps timed steps cycling over 8 pre-built batches.
Scoring: one user's request of --candidates rows (field 0 varies, the other fields and the
sequence are the user's), 120 requests, the first 20 untimed; p50 and p99 are nearest-rank
quantiles (the smallest latency with at least q of the requests at or below it), the one
definition every liverank benchmark prints.

Install once (two packages):
  python3 -m venv ~/.cache/peer-venv && ~/.cache/peer-venv/bin/pip install torch numpy
Run from the repository root:
  ~/.cache/peer-venv/bin/python bench/peer_torch_ranker.py --threads 1
"""
import argparse
import math
import time
import warnings

import numpy as np
import torch
from torch import nn

LABEL_RATES = [0.1, 0.05, 0.3, 0.02, 0.01, 0.01, 0.005]


def flags():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=1024, help="rows per training step")
    p.add_argument("--fields", type=int, default=24, help="sparse fields F")
    p.add_argument("--dim", type=int, default=16, help="embedding width D")
    p.add_argument("--seq", type=int, default=50, help="sequence length L")
    p.add_argument("--rows", type=int, default=1_000_000, help="embedding rows R")
    p.add_argument("--hidden", default="256,128", help="bottom MLP widths")
    p.add_argument("--experts", type=int, default=3, help="MMoE experts E")
    p.add_argument("--expert-hidden", type=int, default=64, help="expert width X")
    p.add_argument("--tasks", type=int, default=3, help="tasks T")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--steps", type=int, default=40, help="timed training steps")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--candidates", type=int, default=500, help="rows of a scoring request")
    p.add_argument("--seed", type=int, default=12345)
    return p.parse_args()


class Ranker(nn.Module):
    """Embedding table, target attention, bottom MLP, MMoE with linear towers."""

    def __init__(self, rows, dim, fields, hidden, experts, expert_hidden, tasks):
        super().__init__()
        self.dim = dim
        self.table = nn.Embedding(rows, dim, sparse=True)
        nn.init.uniform_(self.table.weight, -0.05, 0.05)
        layers, width = [], fields * dim + dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.bottom = nn.Sequential(*layers)
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(width, expert_hidden), nn.ReLU()) for _ in range(experts)
        )
        self.gates = nn.ModuleList(nn.Linear(width, experts) for _ in range(tasks))
        self.towers = nn.ModuleList(nn.Linear(expert_hidden, 1) for _ in range(tasks))

    def dense_parameters(self):
        return [p for name, p in self.named_parameters() if not name.startswith("table.")]

    def forward(self, fields, seq):
        f = self.table(fields)  # [B, F, D]
        s = self.table(seq)  # [B, L, D]
        scores = f[:, :1, :] @ s.transpose(1, 2) / math.sqrt(self.dim)  # [B, 1, L]
        attended = torch.softmax(scores, dim=-1) @ s  # [B, 1, D]
        h = self.bottom(torch.cat([f.flatten(1), attended.flatten(1)], dim=1))
        e = torch.stack([expert(h) for expert in self.experts], dim=1)  # [B, E, X]
        logits = []
        for gate, tower in zip(self.gates, self.towers):
            mixed = (torch.softmax(gate(h), dim=-1).unsqueeze(1) @ e).squeeze(1)  # [B, X]
            logits.append(tower(mixed))
        return torch.cat(logits, dim=1)  # [B, T]


def nearest_rank(values, q):
    """The smallest value with at least a share q of `values` at or below it."""
    v = sorted(values)
    rank = min(max(math.ceil(q * len(v)), 1), len(v))
    return v[rank - 1]


def main():
    a = flags()
    # Adagrad on a sparse gradient warns once per process that invariant checks are off.
    warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = np.random.default_rng(a.seed)
    hidden = [int(x) for x in a.hidden.split(",") if x.strip()]

    def skewed_ids(shape):
        u = gen.random(shape)
        return torch.from_numpy(np.minimum((u**3 * a.rows).astype(np.int64), a.rows - 1))

    model = Ranker(a.rows, a.dim, a.fields, hidden, a.experts, a.expert_hidden, a.tasks)
    dense_opt = torch.optim.Adam(model.dense_parameters(), lr=1e-3)
    sparse_opt = torch.optim.Adagrad(model.table.parameters(), lr=0.05)
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")

    n_batches = 8
    batch_fields = skewed_ids((n_batches, a.batch, a.fields))
    batch_seq = skewed_ids((n_batches, a.batch, a.seq))
    rates = torch.tensor([LABEL_RATES[t] if t < len(LABEL_RATES) else 0.05 for t in range(a.tasks)])
    batch_labels = (torch.rand(n_batches, a.batch, a.tasks) < rates).float()

    started = None
    for step in range(a.warmup + a.steps):
        if step == a.warmup:
            started = time.perf_counter()
        i = step % n_batches
        loss = loss_fn(model(batch_fields[i], batch_seq[i]), batch_labels[i]) / a.batch
        dense_opt.zero_grad(set_to_none=True)
        sparse_opt.zero_grad(set_to_none=True)
        loss.backward()
        dense_opt.step()
        sparse_opt.step()
    train_s = time.perf_counter() - started

    user = skewed_ids((a.fields,))
    seq = skewed_ids((a.seq,))
    candidates = skewed_ids((a.candidates,))
    req_fields = user.repeat(a.candidates, 1)
    req_fields[:, 0] = candidates
    req_seq = seq.repeat(a.candidates, 1)
    latencies = []
    with torch.inference_mode():
        for k in range(120):
            t = time.perf_counter()
            torch.sigmoid(model(req_fields, req_seq))
            if k >= 20:
                latencies.append((time.perf_counter() - t) * 1e3)

    peer = f"torch-{torch.__version__}"
    print(
        f"RESULT peer={peer} task=score candidates={a.candidates} threads={a.threads} "
        f"p50_ms={nearest_rank(latencies, 0.5):.3f} p99_ms={nearest_rank(latencies, 0.99):.3f}"
    )
    print(
        f"RESULT peer={peer} task=train batch={a.batch} threads={a.threads} "
        f"ms_per_step={train_s * 1e3 / a.steps:.2f} samples_per_s={a.steps * a.batch / train_s:.0f}"
    )


if __name__ == "__main__":
    main()

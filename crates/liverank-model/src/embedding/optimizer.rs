//! Row-wise optimisers: each row carries its own state next to its weights, and a row's
//! state only moves when the row receives a gradient (lazy updates, as sparse training
//! needs: an untouched row costs nothing per step).

/// Row-wise optimiser of the embedding rows.
///
/// Every variant updates one row from that row's summed gradient of the step; rows that
/// got no gradient are left alone, state included.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RowOptimizer {
    /// `acc += g²; w −= lr·g / (√acc + eps)`, per coordinate: PyTorch's `Adagrad` on a
    /// sparse `nn.Embedding` gradient (which coalesces, i.e. sums, duplicate ids first).
    Adagrad {
        /// Learning rate.
        lr: f32,
        /// Initial accumulator value (PyTorch's `initial_accumulator_value`).
        initial_accumulator: f32,
        /// Added to the root.
        eps: f32,
    },
    /// FTRL-proximal (McMahan et al. 2013, algorithm 1), per coordinate:
    /// `σ = (√(n+g²) − √n)/α; z += g − σ·w; n += g²;
    /// w = 0 if |z| ≤ l1 else −(z − sign(z)·l1) / ((β + √n)/α + l2)`.
    ///
    /// A new row starts from its random init rather than from zero: its `z` is set to the
    /// value whose closed form gives back those weights with `n = 0`
    /// (`z = −w·(β/α + l2) − sign(w)·l1`).
    Ftrl {
        /// Learning-rate scale α.
        alpha: f32,
        /// Learning-rate offset β.
        beta: f32,
        /// L1 strength (coordinates with |z| ≤ l1 are exactly zero).
        l1: f32,
        /// L2 strength.
        l2: f32,
    },
    /// Adam with bias correction and a per-row step count `t` (lazy Adam): `t`, `m` and
    /// `v` of a row advance only on the steps that touch the row, so a rare id's first
    /// update gets the full bias correction of a first step instead of being damped by the
    /// global step count. (PyTorch's `SparseAdam` and TensorFlow's `LazyAdam` use the global
    /// step; this is the choice for tables where most rows are touched rarely.)
    Adam {
        /// Learning rate.
        lr: f32,
        /// First-moment decay.
        beta1: f32,
        /// Second-moment decay.
        beta2: f32,
        /// Added to the root.
        eps: f32,
    },
}

impl RowOptimizer {
    /// Optimiser state floats per row of width `dim`: Adagrad the accumulator, FTRL `z`
    /// and `n`, Adam `m`, `v` and the row's step count.
    pub fn state_len(&self, dim: usize) -> usize {
        match self {
            RowOptimizer::Adagrad { .. } => dim,
            RowOptimizer::Ftrl { .. } => 2 * dim,
            RowOptimizer::Adam { .. } => 2 * dim + 1,
        }
    }

    /// Tag of the variant in snapshots.
    pub(super) fn tag(&self) -> u8 {
        match self {
            RowOptimizer::Adagrad { .. } => 0,
            RowOptimizer::Ftrl { .. } => 1,
            RowOptimizer::Adam { .. } => 2,
        }
    }

    /// The four hyper-parameters in snapshot order (Adagrad pads with 0).
    pub(super) fn params(&self) -> [f32; 4] {
        match *self {
            RowOptimizer::Adagrad {
                lr,
                initial_accumulator,
                eps,
            } => [lr, initial_accumulator, eps, 0.0],
            RowOptimizer::Ftrl {
                alpha,
                beta,
                l1,
                l2,
            } => [alpha, beta, l1, l2],
            RowOptimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => [lr, beta1, beta2, eps],
        }
    }

    /// Inverse of [`RowOptimizer::tag`] + [`RowOptimizer::params`].
    pub(super) fn from_parts(tag: u8, p: [f32; 4]) -> Option<Self> {
        Some(match tag {
            0 => RowOptimizer::Adagrad {
                lr: p[0],
                initial_accumulator: p[1],
                eps: p[2],
            },
            1 => RowOptimizer::Ftrl {
                alpha: p[0],
                beta: p[1],
                l1: p[2],
                l2: p[3],
            },
            2 => RowOptimizer::Adam {
                lr: p[0],
                beta1: p[1],
                beta2: p[2],
                eps: p[3],
            },
            _ => return None,
        })
    }

    /// Fresh optimiser state for a row whose weights are `w`.
    pub(super) fn init_state(&self, w: &[f32], state: &mut [f32]) {
        match *self {
            RowOptimizer::Adagrad {
                initial_accumulator,
                ..
            } => state.fill(initial_accumulator),
            RowOptimizer::Ftrl {
                alpha,
                beta,
                l1,
                l2,
            } => {
                let (z, n) = state.split_at_mut(w.len());
                n.fill(0.0);
                let rate = beta / alpha + l2;
                for (zi, &wi) in z.iter_mut().zip(w) {
                    *zi = if wi == 0.0 {
                        0.0
                    } else {
                        -(wi * rate) - wi.signum() * l1
                    };
                }
            }
            RowOptimizer::Adam { .. } => state.fill(0.0),
        }
    }

    /// Applies one row's summed gradient `g` to its weights `w` and state.
    pub(super) fn update(&self, w: &mut [f32], state: &mut [f32], g: &[f32]) {
        match *self {
            RowOptimizer::Adagrad { lr, eps, .. } => {
                for ((wi, acc), &gi) in w.iter_mut().zip(state.iter_mut()).zip(g) {
                    *acc += gi * gi;
                    *wi -= lr * gi / (acc.sqrt() + eps);
                }
            }
            RowOptimizer::Ftrl {
                alpha,
                beta,
                l1,
                l2,
            } => {
                let (z, n) = state.split_at_mut(w.len());
                for (((wi, zi), ni), &gi) in w.iter_mut().zip(z).zip(n).zip(g) {
                    let n_new = *ni + gi * gi;
                    let sigma = (n_new.sqrt() - ni.sqrt()) / alpha;
                    *zi += gi - sigma * *wi;
                    *ni = n_new;
                    *wi = if zi.abs() <= l1 {
                        0.0
                    } else {
                        -(*zi - zi.signum() * l1) / ((beta + ni.sqrt()) / alpha + l2)
                    };
                }
            }
            RowOptimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => {
                let (m, rest) = state.split_at_mut(w.len());
                let (v, t) = rest.split_at_mut(w.len());
                // The row's own step count (an f32 counts exactly up to 2^24 updates).
                let Some(t) = t.first_mut() else { return };
                *t += 1.0;
                let c1 = 1.0 - beta1.powf(*t);
                let c2 = 1.0 - beta2.powf(*t);
                for (((wi, mi), vi), &gi) in w.iter_mut().zip(m).zip(v).zip(g) {
                    *mi = beta1 * *mi + (1.0 - beta1) * gi;
                    *vi = beta2 * *vi + (1.0 - beta2) * gi * gi;
                    *wi -= lr * (*mi / c1) / ((*vi / c2).sqrt() + eps);
                }
            }
        }
    }
}

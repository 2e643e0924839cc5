//! One model in training: the embedding store, the dense network, their optimisers, and
//! the step that ties them together.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};

use crate::config::{LossKind, RankerConfig};
use crate::embedding::{EmbeddingConfig, EmbeddingStore, Lookup, SlotRun};
use crate::error::{ModelError, Result};
use crate::features::FeatureBatch;
use crate::layers::PAD_BIAS;
use crate::loss::{masked_bce, pu_loss};
use crate::network::{InputShape, MAX_SEQ_GROUPS, NetInputs, RankerNet, SeqGroup, SeqGroups};

/// Result of one training step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// Loss of the batch (per row).
    pub loss: f32,
    /// Rows in the batch.
    pub rows: usize,
    /// Seconds spent gathering rows and building input tensors.
    pub gather_s: f64,
    /// Seconds in forward and backward.
    pub forward_backward_s: f64,
    /// Seconds in the sparse (embedding) update.
    pub sparse_update_s: f64,
    /// Seconds in the dense (Adam) update.
    pub dense_update_s: f64,
}

/// The embedding rows of one batch, gathered from the store straight into the layouts of
/// the input tensors, and the lookup that the sparse update needs.
#[derive(Debug)]
pub struct GatheredRows {
    lookup: Lookup,
    values: InputValues,
}

/// Builds the sparse store's configuration from the model's.
pub fn embedding_config(config: &RankerConfig) -> EmbeddingConfig {
    let s = &config.sparse;
    EmbeddingConfig {
        dim: config.embedding_dim,
        min_count: s.min_count,
        ttl: s.ttl_steps,
        keep_floor: s.keep_floor,
        init_scale: s.init_scale,
        seed: config.seed,
        optimizer: s.row_optimizer(),
    }
}

/// A ranker in training: [`EmbeddingStore`] + [`RankerNet`] on an autodiff flex device.
pub struct Trainer {
    config: RankerConfig,
    shape: InputShape,
    device: Device,
    net: Option<RankerNet>,
    optimizer: ModuleOptimizer,
    store: EmbeddingStore,
    task_weights: Vec<f32>,
    /// History groups of the contrastive alignment `(is V_mixed, start, len)`; empty = off.
    align: Vec<(bool, usize, usize)>,
    step: u64,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("shape", &self.shape)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl Trainer {
    /// A fresh model of this configuration and input shape.
    pub fn new(mut config: RankerConfig, shape: InputShape) -> Result<Self> {
        // LiveForesighter's forecasters: loaded, and their checksums pinned into the
        // configuration (checked against the files when they are pinned already).
        config.foresight.pin()?;
        config.validate()?;
        shape.validate().map_err(ModelError::Shape)?;
        let device = Device::flex().autodiff();
        let net = RankerNet::new(&config, shape, &device);
        let optimizer = AdamConfig::new().with_epsilon(1e-8).init();
        let mut store = EmbeddingStore::new(embedding_config(&config));
        store.reserve(config.sparse.reserve_rows);
        let task_weights = (0..config.tasks.len())
            .map(|i| config.task_weight(i))
            .collect();
        let align = alignment_groups(&config, shape);
        Ok(Self {
            config,
            shape,
            device,
            net: Some(net),
            optimizer,
            store,
            task_weights,
            align,
            step: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RankerConfig {
        &self.config
    }

    /// The input shape.
    pub fn shape(&self) -> InputShape {
        self.shape
    }

    /// Training steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The embedding store.
    pub fn store(&self) -> &EmbeddingStore {
        &self.store
    }

    fn net(&self) -> Result<&RankerNet> {
        self.net
            .as_ref()
            .ok_or_else(|| ModelError::Shape("the network was lost by a failed step".into()))
    }

    /// C̃3 of LiveForesighter's product branch, `[c3_rows × c3_dim]` row-major, when the
    /// branch is on.
    pub fn c3_table(&self) -> Result<Option<Vec<f32>>> {
        match self.net()?.c3_table.first() {
            Some(t) => Ok(Some(to_vec(t.val().into_data())?)),
            None => Ok(None),
        }
    }

    fn check(&self, batch: &FeatureBatch) -> Result<()> {
        check_batch(&self.config, self.shape, batch)
    }

    /// Gathers (and, in training, admits and touches) the rows of every sparse key.
    pub fn gather(&mut self, batch: &FeatureBatch, train: bool) -> GatheredRows {
        gather_rows(&mut self.store, batch, self.step, train)
    }

    /// One optimisation step on a batch: gather rows, forward, backward, Adam on the dense
    /// part, the store's row-wise optimiser on the touched rows (gradients summed per id).
    pub fn train_step(&mut self, batch: &FeatureBatch) -> Result<StepStats> {
        self.step_inner(batch, false).map(|(stats, _)| stats)
    }

    /// Test-then-train in one pass: [`Trainer::train_step`], also returning the
    /// probabilities (`[B, T]`, row-major) of the forward pass it learns from — the current
    /// model's predictions for the batch *before* it is trained on it (prequential
    /// evaluation). Keys first seen in the batch are admitted with their seeded initial rows
    /// before that forward pass (they carry no information about the labels).
    pub fn train_step_scored(&mut self, batch: &FeatureBatch) -> Result<(StepStats, Vec<f32>)> {
        self.step_inner(batch, true)
    }

    /// Rows touched and ids evicted since the last call: what a model publisher ships.
    pub fn take_delta(&mut self) -> crate::embedding::Delta {
        self.store.take_delta()
    }

    /// The dense network's weights as a safetensors file (no metadata, so the bytes are a
    /// pure function of the weights).
    pub fn dense_safetensors(&self) -> Result<Vec<u8>> {
        dense_safetensors(&self.net()?.valid())
    }

    fn step_inner(&mut self, batch: &FeatureBatch, scored: bool) -> Result<(StepStats, Vec<f32>)> {
        self.check(batch)?;
        let clock = std::time::Instant::now();
        let GatheredRows { lookup, values } = self.gather(batch, true);
        let inputs = tensors(batch, values, &self.device, true);
        let (fields_leaf, seq_leaf) = (inputs.fields.clone(), inputs.seq.clone());
        let gather_s = clock.elapsed().as_secs_f64();
        let (logits, aux) = self.net()?.forward_train(inputs);
        let scores = if scored {
            to_vec(burn::tensor::activation::sigmoid(logits.clone()).into_data())?
        } else {
            Vec::new()
        };
        let loss = batch_loss(
            self.config.loss,
            &self.task_weights,
            &self.device,
            logits,
            batch,
        );
        let loss = self.with_alignment(loss, seq_leaf.as_ref(), batch);
        let loss = add_auxiliary(&self.config, loss, aux);
        let loss_value = scalar(&loss);
        let mut grads = loss.backward();
        let forward_backward_s = clock.elapsed().as_secs_f64() - gather_s;

        // Sparse side: the leaves' gradients are the slots' gradients in the lookup's order.
        let leaves = leaf_gradients(fields_leaf, seq_leaf, &mut grads)?;
        apply_leaf_gradients(&mut self.store, &lookup, &leaves)?;
        let sparse_update_s = clock.elapsed().as_secs_f64() - gather_s - forward_backward_s;

        // Dense side.
        let net = self
            .net
            .take()
            .ok_or_else(|| ModelError::Shape("the network was lost by a failed step".into()))?;
        let params = GradientsParams::from_grads(grads, &net);
        self.net = Some(self.optimizer.step(self.config.learning_rate, net, params));
        self.step += 1;
        if self.config.sparse.ttl_steps > 0 {
            self.store.evict_expired(self.step);
        }
        let dense_update_s =
            clock.elapsed().as_secs_f64() - gather_s - forward_backward_s - sparse_update_s;
        let stats = StepStats {
            loss: loss_value,
            rows: batch.batch,
            gather_s,
            forward_backward_s,
            sparse_update_s,
            dense_update_s,
        };
        Ok((stats, scores))
    }

    /// Trains on a stream of batches with the embedding store on a second thread: while
    /// the network runs forward and backward on batch i, that thread gathers the rows of
    /// batch i+1, then applies the sparse update of batch i. Rows are therefore read one
    /// update stale (batch i+1 sees the update of i−1, not of i), the schedule of
    /// asynchronous sparse training (PERSIA, Monolith). The schedule is fixed, so the result
    /// is deterministic; and every update is applied before this returns, so a checkpoint
    /// taken after it continues exactly as an uninterrupted run that also ends a pipeline
    /// there (offline training runs one pipeline per epoch). `on_step` sees each step's
    /// statistics; an error from it stops the run. Returns the steps taken.
    pub fn train_pipelined(
        &mut self,
        batches: impl Iterator<Item = FeatureBatch> + Send,
        mut on_step: impl FnMut(&StepStats) -> Result<()>,
    ) -> Result<u64> {
        let Self {
            config,
            shape,
            device,
            net,
            optimizer,
            store,
            task_weights,
            align,
            step,
        } = self;
        let config = &*config;
        let (shape, first_step) = (*shape, *step);
        let ttl = config.sparse.ttl_steps;
        let lost = || ModelError::Shape("the network was lost by a failed step".into());
        /// A batch with its rows and input values, on its way to the network.
        type Gathered = (FeatureBatch, Lookup, InputValues, f64);
        std::thread::scope(|scope| -> Result<u64> {
            let (to_net, from_sparse) = std::sync::mpsc::sync_channel::<Gathered>(1);
            let (to_sparse, from_net) = std::sync::mpsc::sync_channel::<Update>(1);
            let sparse = scope.spawn(move || -> Result<f64> {
                let mut side = SparseSide {
                    ttl,
                    applied: first_step,
                    update_s: 0.0,
                };
                let (mut in_flight, mut next_now) = (0usize, first_step);
                for batch in batches {
                    check_batch(config, shape, &batch)?;
                    let clock = std::time::Instant::now();
                    let GatheredRows { lookup, values } =
                        gather_rows(store, &batch, next_now, true);
                    next_now += 1;
                    let gather_s = clock.elapsed().as_secs_f64();
                    if to_net.send((batch, lookup, values, gather_s)).is_err() {
                        return Ok(side.update_s); // the network side stopped: its error wins
                    }
                    in_flight += 1;
                    // Batch i+1 is gathered; now update i lands.
                    if in_flight == 2 {
                        if !side.apply_next(store, &from_net)? {
                            return Ok(side.update_s);
                        }
                        in_flight -= 1;
                    }
                }
                drop(to_net);
                for _ in 0..in_flight {
                    if !side.apply_next(store, &from_net)? {
                        break;
                    }
                }
                Ok(side.update_s)
            });
            let mut taken = 0u64;
            let network = (|| -> Result<()> {
                for (batch, lookup, values, gather_s) in from_sparse {
                    let clock = std::time::Instant::now();
                    let inputs = tensors(&batch, values, device, true);
                    let (fields_leaf, seq_leaf) = (inputs.fields.clone(), inputs.seq.clone());
                    let (logits, aux) = net.as_ref().ok_or_else(lost)?.forward_train(inputs);
                    let loss = batch_loss(config.loss, task_weights, device, logits, &batch);
                    let loss = add_alignment(config, align, loss, seq_leaf.as_ref(), &batch);
                    let loss = add_auxiliary(config, loss, aux);
                    let loss_value = scalar(&loss);
                    let mut grads = loss.backward();
                    let leaves = leaf_gradients(fields_leaf, seq_leaf, &mut grads)?;
                    let forward_backward_s = clock.elapsed().as_secs_f64();
                    let batch_rows = batch.batch;
                    if to_sparse.send((lookup, leaves)).is_err() {
                        return Ok(()); // the store side failed: its error wins
                    }
                    let model = net.take().ok_or_else(lost)?;
                    let params = GradientsParams::from_grads(grads, &model);
                    *net = Some(optimizer.step(config.learning_rate, model, params));
                    *step += 1;
                    taken += 1;
                    on_step(&StepStats {
                        loss: loss_value,
                        rows: batch_rows,
                        gather_s,
                        forward_backward_s,
                        sparse_update_s: 0.0,
                        dense_update_s: clock.elapsed().as_secs_f64() - forward_backward_s,
                    })?;
                }
                Ok(())
            })();
            drop(to_sparse);
            let sparse = sparse
                .join()
                .map_err(|_| ModelError::Shape("the embedding thread panicked".into()))?;
            network?;
            sparse?;
            Ok(taken)
        })
    }

    /// Probabilities (`[B, T]`, row-major) of the current model for a batch, learning
    /// nothing: no admission, no touch, no update (unknown ids read zeros, as in
    /// [`Scorer`]). Cheaper than a [`Trainer::scorer`] copy when scoring as training goes.
    pub fn predict(&mut self, batch: &FeatureBatch) -> Result<Vec<f32>> {
        self.check(batch)?;
        let gathered = self.gather(batch, false);
        let inputs = tensors(batch, gathered.values, &self.device, false);
        let logits = self.net()?.forward(inputs);
        to_vec(burn::tensor::activation::sigmoid(logits).into_data())
    }

    /// Loss of a batch without learning from it.
    pub fn eval_loss(&mut self, batch: &FeatureBatch) -> Result<f32> {
        self.check(batch)?;
        let gathered = self.gather(batch, false);
        let inputs = tensors(batch, gathered.values, &self.device, false);
        let seq = inputs.seq.clone();
        let (logits, aux) = self.net()?.forward_train(inputs);
        let loss = batch_loss(
            self.config.loss,
            &self.task_weights,
            &self.device,
            logits,
            batch,
        );
        let loss = self.with_alignment(loss, seq.as_ref(), batch);
        Ok(scalar(&add_auxiliary(&self.config, loss, aux)))
    }

    /// The ranking loss plus λ times the contrastive alignment of the history groups.
    fn with_alignment(
        &self,
        loss: Tensor<1>,
        seq: Option<&Tensor<4>>,
        batch: &FeatureBatch,
    ) -> Tensor<1> {
        add_alignment(&self.config, &self.align, loss, seq, batch)
    }

    /// A frozen copy for inference: the network without autodiff and a snapshot of the
    /// store. Cheap enough to take after every epoch or publish interval.
    pub fn scorer(&self) -> Result<Scorer> {
        Ok(Scorer {
            config: self.config.clone(),
            shape: self.shape,
            net: self.net()?.valid(),
            store: std::sync::Arc::new(self.store.clone()),
            device: Device::flex(),
        })
    }
}

/// The safetensors bytes of a network (empty metadata: deterministic bytes).
pub(crate) fn dense_safetensors(net: &RankerNet) -> Result<Vec<u8>> {
    use burn::store::{ModuleSnapshot, SafetensorsStore};
    let mut st = SafetensorsStore::from_bytes(None).clear_metadata();
    net.save_into(&mut st)
        .map_err(|e| ModelError::Shape(format!("safetensors: {e}")))?;
    st.get_bytes()
        .map_err(|e| ModelError::Shape(format!("safetensors: {e}")))
}

/// Inference-only ranker: `[B, T]` probabilities for feature batches, no autodiff.
pub struct Scorer {
    pub(crate) config: RankerConfig,
    pub(crate) shape: InputShape,
    pub(crate) net: RankerNet,
    pub(crate) store: std::sync::Arc<EmbeddingStore>,
    pub(crate) device: Device,
}

impl std::fmt::Debug for Scorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer")
            .field("shape", &self.shape)
            .finish_non_exhaustive()
    }
}

impl Scorer {
    /// The configuration of the model.
    pub fn config(&self) -> &RankerConfig {
        &self.config
    }

    /// The frozen embedding table (the soft searches' item vectors in serving).
    pub fn store(&self) -> &EmbeddingStore {
        &self.store
    }

    /// The input shape.
    pub fn shape(&self) -> InputShape {
        self.shape
    }

    /// The embedding row of a namespaced key ([`crate::features::key`]), if the store holds
    /// it: serving's embedding recall scores user · room with these.
    pub fn embedding_row(&self, key: u64) -> Option<&[f32]> {
        self.store.row(key)
    }

    /// [`Scorer::predict`] with the rows split over `threads` threads (one request's
    /// candidates scored in parallel); the same probabilities in the same order.
    pub fn predict_parallel(&self, batch: &FeatureBatch, threads: usize) -> Result<Vec<f32>> {
        let parts = threads.clamp(1, batch.batch.max(1));
        if parts == 1 {
            return self.predict(batch);
        }
        batch.check().map_err(ModelError::Shape)?;
        let per = batch.batch.div_ceil(parts);
        // On the rayon pool burn already runs on: its threads (and their allocator
        // caches) persist between requests, where fresh threads would start cold.
        let mut parts_out: Vec<Option<Result<Vec<f32>>>> = (0..parts).map(|_| None).collect();
        rayon::scope(|scope| {
            for (p, slot) in parts_out.iter_mut().enumerate() {
                let rows = batch.rows(p * per, (p + 1) * per);
                scope.spawn(move |_| *slot = Some(self.predict(&rows)));
            }
        });
        let mut out = Vec::with_capacity(batch.batch * batch.tasks);
        for part in parts_out {
            let part =
                part.ok_or_else(|| ModelError::Shape("a scoring part did not run".into()))??;
            out.extend(part);
        }
        Ok(out)
    }

    /// Probabilities, row-major `[B, T]` in `config.tasks` order.
    pub fn predict(&self, batch: &FeatureBatch) -> Result<Vec<f32>> {
        // burn's ops hand their work to the rayon pool: from a thread outside it (a request
        // handler, the CLI's main thread) every op pays a hand-off and a wake-up. One hop
        // onto a pool thread per request instead; already on one, this runs in place.
        rayon::scope(|_| self.predict_here(batch))
    }

    fn predict_here(&self, batch: &FeatureBatch) -> Result<Vec<f32>> {
        batch.check().map_err(ModelError::Shape)?;
        let d = self.config.embedding_dim;
        let s = batch.seq_subkeys.max(1);
        let b = batch.batch;
        // A request repeats the user's keys on every candidate row: copy, don't probe.
        let mut field_rows = Vec::new();
        self.store
            .gather_repeating(&batch.fields, batch.field_count, &mut field_rows);
        let fields: Tensor<3> = Tensor::from_data(
            TensorData::new(field_rows, [b, batch.field_count, d]),
            &self.device,
        );
        // Groups whose items and padding are the same on every row (the user's history in
        // a request) are attended from row 0 alone; when all are, only row 0 is gathered.
        let shared_groups = shared_groups(&self.shape, batch);
        let all_shared = b > 1 && shared_groups.iter().all(|&g| g);
        let (seq, seq_mask_bias) = if batch.seq_len > 0 {
            let rows = if all_shared { 1 } else { b };
            // Each position's sub-keys summed while gathering: the network's first step
            // on them, without a `[rows, L, S, D]` tensor (most of a probe's or a large
            // request's memory traffic).
            let per_row = batch.seq_len * s;
            let mut seq_rows = Vec::new();
            self.store.gather_summed(
                &batch.seq_keys[..rows * per_row],
                s,
                &batch.seq_mask[..rows * batch.seq_len],
                batch.seq_len,
                &mut seq_rows,
            );
            let seq: Tensor<4> = Tensor::from_data(
                TensorData::new(seq_rows, [rows, batch.seq_len, 1, d]),
                &self.device,
            );
            let bias = pad_bias(&batch.seq_mask[..rows * batch.seq_len]);
            (
                Some(seq),
                Some(Tensor::from_data(
                    TensorData::new(bias, [rows, 1, batch.seq_len]),
                    &self.device,
                )),
            )
        } else {
            (None, None)
        };
        let dense = (batch.dense_dim > 0).then(|| {
            Tensor::from_data(
                TensorData::new(batch.dense.clone(), [b, batch.dense_dim]),
                &self.device,
            )
        });
        // Fields every row shares (the user's, in a request): their part of the first layer
        // is computed once.
        let f = batch.field_count;
        let shared: Vec<bool> = (0..f)
            .map(|j| (1..b).all(|r| batch.fields[r * f + j] == batch.fields[j]))
            .collect();
        let logits = self.net.forward_shared(
            NetInputs {
                fields,
                seq,
                seq_mask_bias,
                dense,
                shared_groups,
            },
            &shared,
        );
        to_vec(burn::tensor::activation::sigmoid(logits).into_data())
    }
}

/// Per sequence group of `shape`: whether every row of `batch` has the same keys and
/// padding in it as row 0.
fn shared_groups(shape: &InputShape, batch: &FeatureBatch) -> Vec<bool> {
    let s = batch.seq_subkeys.max(1);
    let l = batch.seq_len;
    let mut at = 0;
    shape
        .groups
        .as_slice()
        .iter()
        .map(|g| {
            let (lo, hi) = (at, at + g.len);
            at = hi;
            (1..batch.batch).all(|r| {
                batch.seq_mask[r * l + lo..r * l + hi] == batch.seq_mask[lo..hi]
                    && batch.seq_keys[(r * l + lo) * s..(r * l + hi) * s]
                        == batch.seq_keys[lo * s..hi * s]
            })
        })
        .collect()
}

/// A step's lookup and leaf gradients, on their way back to the store.
type Update = (Lookup, LeafGradients);

/// The embedding thread's state between steps of a pipelined run.
struct SparseSide {
    ttl: u64,
    /// Updates applied so far (the eviction clock).
    applied: u64,
    update_s: f64,
}

impl SparseSide {
    /// Waits for the oldest step's gradients and applies its sparse update (summed per
    /// id) and the eviction after it; `false` when the network side has stopped.
    fn apply_next(
        &mut self,
        store: &mut EmbeddingStore,
        from_net: &std::sync::mpsc::Receiver<Update>,
    ) -> Result<bool> {
        let Ok((lookup, leaves)) = from_net.recv() else {
            return Ok(false);
        };
        let clock = std::time::Instant::now();
        apply_leaf_gradients(store, &lookup, &leaves)?;
        self.applied += 1;
        if self.ttl > 0 {
            store.evict_expired(self.applied);
        }
        self.update_s += clock.elapsed().as_secs_f64();
        Ok(true)
    }
}

/// Looks up every key of a batch in one lookup of two runs, fields `[B, F]` then the
/// sequence sub-keys `[B, L, S]` (padding reads zeros and has no slot row), each gathered
/// straight into its input tensor's values.
fn gather_rows(
    store: &mut EmbeddingStore,
    batch: &FeatureBatch,
    now: u64,
    train: bool,
) -> GatheredRows {
    let (mut fields, mut seq) = (Vec::new(), Vec::new());
    let mut lookup = Lookup::default();
    let s = batch.seq_subkeys.max(1);
    store.lookup_runs_into(
        &mut [
            SlotRun::new(&batch.fields, &mut fields),
            SlotRun::padded(&batch.seq_keys, &batch.seq_mask, s, &mut seq),
        ],
        now,
        train,
        &mut lookup,
    );
    let seq = (batch.seq_len > 0).then(|| (seq, pad_bias(&batch.seq_mask)));
    GatheredRows {
        lookup,
        values: InputValues { fields, seq },
    }
}

/// The attention bias of sequence positions: 0 on an item, [`PAD_BIAS`] on padding.
fn pad_bias(mask: &[bool]) -> Vec<f32> {
    mask.iter()
        .map(|&m| if m { 0.0 } else { PAD_BIAS })
        .collect()
}

/// Checks a batch against the model's shape and tasks.
fn check_batch(config: &RankerConfig, s: InputShape, batch: &FeatureBatch) -> Result<()> {
    batch.check().map_err(ModelError::Shape)?;
    if batch.field_count != s.fields
        || batch.seq_len != s.seq_len
        || batch.seq_subkeys != s.seq_subkeys
        || batch.dense_dim != s.dense
    {
        return Err(ModelError::Shape(format!(
            "batch shape fields={} seq={}x{} dense={} but the model takes fields={} seq={}x{} dense={}",
            batch.field_count,
            batch.seq_len,
            batch.seq_subkeys,
            batch.dense_dim,
            s.fields,
            s.seq_len,
            s.seq_subkeys,
            s.dense
        )));
    }
    if batch.tasks != config.tasks.len() {
        return Err(ModelError::Shape(format!(
            "batch has {} tasks, the model {}",
            batch.tasks,
            config.tasks.len()
        )));
    }
    Ok(())
}

/// The plain values of a batch's input tensors: field rows `[B, F, D]`, and for a model
/// with sequences the rows `[B, L, S, D]` (zeros on padding) and the attention bias.
#[derive(Debug)]
struct InputValues {
    fields: Vec<f32>,
    seq: Option<(Vec<f32>, Vec<f32>)>,
}

fn tensors(batch: &FeatureBatch, values: InputValues, device: &Device, track: bool) -> NetInputs {
    let (b, d) = (
        batch.batch,
        values.fields.len() / (batch.batch * batch.field_count).max(1),
    );
    let mut fields: Tensor<3> = Tensor::from_data(
        TensorData::new(values.fields, [b, batch.field_count, d]),
        device,
    );
    if track {
        fields = fields.require_grad();
    }
    let (seq, seq_mask_bias) = match values.seq {
        Some((values, bias)) => {
            let s = batch.seq_subkeys.max(1);
            let mut seq: Tensor<4> =
                Tensor::from_data(TensorData::new(values, [b, batch.seq_len, s, d]), device);
            if track {
                seq = seq.require_grad();
            }
            let bias: Tensor<3> =
                Tensor::from_data(TensorData::new(bias, [b, 1, batch.seq_len]), device);
            (Some(seq), Some(bias))
        }
        None => (None, None),
    };
    let dense = (batch.dense_dim > 0).then(|| {
        Tensor::from_data(
            TensorData::new(batch.dense.clone(), [b, batch.dense_dim]),
            device,
        )
    });
    NetInputs {
        fields,
        seq,
        seq_mask_bias,
        dense,
        shared_groups: Vec::new(),
    }
}

/// The history groups the contrastive loss aligns, when it is on and the shape is the
/// sample pipeline's (a synthetic shape has no V_mixed to anchor on).
fn alignment_groups(config: &RankerConfig, shape: InputShape) -> Vec<(bool, usize, usize)> {
    let builder = crate::features::FeatureBuilder::new(config);
    if config.contrastive_weight <= 0.0 || builder.shape() != shape {
        return Vec::new();
    }
    let groups: Vec<(bool, usize, usize)> = builder
        .history_groups()
        .into_iter()
        .map(|(h, start, len)| (h == crate::config::HistorySequence::Mixed, start, len))
        .collect();
    if groups.iter().any(|g| g.0) && groups.len() > 1 {
        groups
    } else {
        Vec::new()
    }
}

/// `loss + λ · Σ_x InfoNCE(V_mixed, V_x)` over the batch's sequence tensor.
fn add_alignment(
    config: &RankerConfig,
    align: &[(bool, usize, usize)],
    loss: Tensor<1>,
    seq: Option<&Tensor<4>>,
    batch: &FeatureBatch,
) -> Tensor<1> {
    let Some(seq) = seq.filter(|_| !align.is_empty()) else {
        return loss;
    };
    match crate::loss::contrastive_alignment(
        seq,
        &batch.seq_mask,
        align,
        f64::from(config.contrastive_temperature),
    ) {
        Some(cl) => loss + cl.mul_scalar(f64::from(config.contrastive_weight)),
        None => loss,
    }
}

/// The ranking loss plus α times DIEN's auxiliary loss, when the network has DIEN groups.
fn add_auxiliary(config: &RankerConfig, loss: Tensor<1>, aux: Option<Tensor<1>>) -> Tensor<1> {
    match aux {
        Some(aux) if config.dien.aux_weight > 0.0 => {
            loss + aux.mul_scalar(f64::from(config.dien.aux_weight))
        }
        _ => loss,
    }
}

/// The configured loss of a batch's logits.
fn batch_loss(
    loss: LossKind,
    task_weights: &[f32],
    dev: &Device,
    logits: Tensor<2>,
    batch: &FeatureBatch,
) -> Tensor<1> {
    let (b, t) = (batch.batch, batch.tasks);
    let labels = Tensor::from_data(TensorData::new(batch.labels.clone(), [b, t]), dev);
    let mask = Tensor::from_data(TensorData::new(batch.mask.clone(), [b, t]), dev);
    let weights = Tensor::from_data(TensorData::new(task_weights.to_vec(), [1, t]), dev);
    match loss {
        LossKind::Masked => masked_bce(logits, labels, mask, weights),
        LossKind::Pu => {
            let slow: Vec<f32> = batch
                .slow
                .iter()
                .map(|&s| if s { 1.0 } else { 0.0 })
                .collect();
            let slow = Tensor::from_data(TensorData::new(slow, [b, 1]), dev);
            pu_loss(logits, labels, mask, slow, weights)
        }
    }
}

/// The gradients of the field and sequence leaves (`[B, F, D]` and `[B, L, S, D]`: the
/// slots of the lookup's two runs, padding included).
type LeafGradients = (Option<TensorData>, Option<TensorData>);

fn leaf_gradients(
    fields_leaf: Tensor<3>,
    seq_leaf: Option<Tensor<4>>,
    grads: &mut burn::tensor::Gradients,
) -> Result<LeafGradients> {
    let fields = fields_leaf.grad_remove(grads).map(|g| g.into_data());
    let seq = seq_leaf
        .and_then(|leaf| leaf.grad_remove(grads))
        .map(|g| g.into_data());
    Ok((fields, seq))
}

fn leaf_slice(data: &Option<TensorData>) -> Result<Option<&[f32]>> {
    data.as_ref()
        .map(|g| {
            g.as_slice::<f32>()
                .map_err(|e| ModelError::Shape(format!("tensor data: {e:?}")))
        })
        .transpose()
}

/// The sparse update of a step: each leaf's gradient read in place as its run's slot
/// gradients (a leaf without a gradient counts as zeros).
fn apply_leaf_gradients(
    store: &mut EmbeddingStore,
    lookup: &Lookup,
    (fields, seq): &LeafGradients,
) -> Result<()> {
    let (fields, seq) = (leaf_slice(fields)?, leaf_slice(seq)?);
    // A leaf without a gradient stands for zeros over the slots the other one leaves.
    let present = fields.map_or(0, <[f32]>::len) + seq.map_or(0, <[f32]>::len);
    let zeros = vec![0.0; (lookup.slots() * store.dim()).saturating_sub(present)];
    let (fields, seq) = match (fields, seq) {
        (Some(f), Some(q)) => (f, q),
        (Some(f), None) => (f, &zeros[..]),
        (None, Some(q)) => (&zeros[..], q),
        (None, None) => (&zeros[..], &[][..]),
    };
    store
        .apply_gradient_runs(lookup, &[fields, seq])
        .map_err(ModelError::from)
}

fn scalar(t: &Tensor<1>) -> f32 {
    t.to_data()
        .try_to_vec::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(f32::NAN)
}

fn to_vec(data: TensorData) -> Result<Vec<f32>> {
    data.try_to_vec::<f32>()
        .map_err(|e| ModelError::Shape(format!("tensor data: {e:?}")))
}

/// First bytes of a trainer checkpoint.
pub const CHECKPOINT_MAGIC: &[u8; 8] = b"LRMODEL\0";
/// Version of the checkpoint layout below.
pub const CHECKPOINT_VERSION: u32 = 3;

impl Trainer {
    /// Serialises everything a resumed run needs: configuration, shape, network weights
    /// (burnpack), Adam state (burnpack), the embedding store with its optimiser state, and
    /// the step counter. Layout: magic, version u32, then length-prefixed (u64 LE) sections
    /// `config JSON | shape | step u64 | network | optimizer | store`, then a CRC32 of all
    /// preceding bytes. The shape section is u64 LE words: fields, seq_len, seq_subkeys,
    /// dense, the group count G, then (len, query_field, heads, query_fields) per group
    /// (version 3; version 2 had (len, query_field), version 1 no groups).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let fail = |reason: String| ModelError::Checkpoint {
            path: "<memory>".into(),
            reason,
        };
        let config =
            serde_json::to_vec(&self.config).map_err(|e| ModelError::CheckpointSection {
                path: "<memory>".into(),
                section: "config",
                source: Box::new(e),
            })?;
        let net = self
            .net()?
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| fail(format!("network: {e:?}")))?;
        let optimizer = self
            .optimizer
            .into_bytes()
            .map_err(|e| fail(format!("optimizer: {e:?}")))?;
        let store = self.store.to_bytes();
        let s = self.shape;
        let mut shape = Vec::with_capacity(40 + 32 * s.groups.len());
        let groups = s
            .groups
            .as_slice()
            .iter()
            .flat_map(|g| [g.len, g.query_field, g.heads, g.query_fields as usize]);
        for v in [s.fields, s.seq_len, s.seq_subkeys, s.dense, s.groups.len()]
            .into_iter()
            .chain(groups)
        {
            shape.extend_from_slice(&(v as u64).to_le_bytes());
        }
        let mut out =
            Vec::with_capacity(net.len() + optimizer.len() + store.len() + config.len() + 128);
        out.extend_from_slice(CHECKPOINT_MAGIC);
        out.extend_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
        for section in [
            &config[..],
            &shape[..],
            &self.step.to_le_bytes()[..],
            &net[..],
            &optimizer[..],
            &store[..],
        ] {
            out.extend_from_slice(&(section.len() as u64).to_le_bytes());
            out.extend_from_slice(section);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Restores a trainer from [`Trainer::to_bytes`]; a damaged or foreign buffer is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let fail = |reason: String| ModelError::Checkpoint {
            path: "<memory>".into(),
            reason,
        };
        if bytes.len() < 16 || &bytes[..8] != CHECKPOINT_MAGIC {
            return Err(fail("not a liverank model checkpoint (bad magic)".into()));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32fast::hash(body) != stored {
            return Err(fail(
                "checksum mismatch: the file is damaged or truncated".into(),
            ));
        }
        let version = u32::from_le_bytes([body[8], body[9], body[10], body[11]]);
        if version != CHECKPOINT_VERSION {
            return Err(fail(format!(
                "format version {version}, this build reads {CHECKPOINT_VERSION}"
            )));
        }
        let mut sections = Vec::with_capacity(6);
        let mut at = 12;
        for _ in 0..6 {
            let len = body
                .get(at..at + 8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize);
            let len = len.ok_or_else(|| fail("truncated section header".into()))?;
            let section = body
                .get(at + 8..at + 8 + len)
                .ok_or_else(|| fail("truncated section".into()))?;
            sections.push(section);
            at += 8 + len;
        }
        let config: RankerConfig =
            serde_json::from_slice(sections[0]).map_err(|e| ModelError::CheckpointSection {
                path: "<memory>".into(),
                section: "config",
                source: Box::new(e),
            })?;
        let word = |b: &[u8], i: usize| {
            u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8])) as usize
        };
        let shape_words = sections[1].len() / 8;
        let group_count = if shape_words >= 5 {
            word(sections[1], 4)
        } else {
            usize::MAX
        };
        if sections[1].len() % 8 != 0
            || group_count > MAX_SEQ_GROUPS
            || shape_words != 5 + 4 * group_count
            || sections[2].len() != 8
        {
            return Err(fail("bad shape or step section".into()));
        }
        let mut groups = SeqGroups::NONE;
        for g in 0..group_count {
            groups = groups
                .with(SeqGroup {
                    len: word(sections[1], 5 + 4 * g),
                    query_field: word(sections[1], 6 + 4 * g),
                    heads: word(sections[1], 7 + 4 * g),
                    query_fields: u32::try_from(word(sections[1], 8 + 4 * g))
                        .map_err(|_| fail("bad query fields".into()))?,
                })
                .ok_or_else(|| fail("too many sequence groups".into()))?;
        }
        let shape = InputShape {
            fields: word(sections[1], 0),
            seq_len: word(sections[1], 1),
            seq_subkeys: word(sections[1], 2),
            dense: word(sections[1], 3),
            groups,
        };
        let step = word(sections[2], 0) as u64;
        let mut trainer = Trainer::new(config, shape)?;
        let record = burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(
            sections[3].to_vec(),
        ))
        .map_err(|e| fail(format!("network: {e:?}")))?;
        let net = trainer
            .net
            .take()
            .ok_or_else(|| fail("no network".into()))?;
        trainer.net = Some(
            net.try_load_record(record)
                .map_err(|e| fail(format!("network: {e:?}")))?,
        );
        let optimizer = std::mem::replace(&mut trainer.optimizer, AdamConfig::new().init());
        trainer.optimizer = optimizer
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(sections[4].to_vec()))
            .map_err(|e| fail(format!("optimizer: {e:?}")))?;
        trainer.store =
            EmbeddingStore::from_bytes(sections[5]).map_err(|e| ModelError::CheckpointSection {
                path: "<memory>".into(),
                section: "embedding store",
                source: Box::new(e),
            })?;
        trainer.step = step;
        Ok(trainer)
    }

    /// Writes a checkpoint atomically (`liverank_fs::write_atomic`: temporary file, fsync,
    /// rename, directory fsync; no temporary file left on failure).
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        liverank_fs::write_atomic_bytes(path, &bytes).map_err(|source| ModelError::CheckpointIo {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a checkpoint written by [`Trainer::save`].
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::CheckpointIo {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            ModelError::Checkpoint { reason, .. } => ModelError::Checkpoint {
                path: path.display().to_string(),
                reason,
            },
            ModelError::CheckpointSection {
                section, source, ..
            } => ModelError::CheckpointSection {
                path: path.display().to_string(),
                section,
                source,
            },
            other => other,
        })
    }
}

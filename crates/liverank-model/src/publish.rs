//! Model publishing (SPEC §9 model freshness): the trainer's side [`ModelPublisher`] writes
//! versioned files into a model directory, the serving side [`ModelReader`] follows it.
//!
//! # Files
//!
//! Every publish is one file `v{version:012}.{kind}`, versions 1, 2, 3, … without gaps:
//! * `snap` — a full snapshot (compaction base): configuration, input shape, dense weights
//!   (safetensors) and the whole embedding store. Version 1 is always one.
//! * `delta` — the embedding rows touched since the previous publish and the ids evicted
//!   since then (tombstones, applied first), every `sparse_ms` of event time.
//! * `dense` — the dense network's weights as a safetensors file, every `dense_ms`.
//!
//! Each file is an envelope: a 48-byte header (magic `LRPUB01\0`, kind u32, format u32,
//! version u64, event time i64 of the publish, event time i64 of the newest sample trained,
//! payload length u64), the payload, and a CRC-32 of everything before it. It is written to
//! a temporary name and renamed into place, so a reader sees a whole file or none; files
//! are made durable as a group by [`ModelPublisher::sync`] (before each checkpoint of the
//! pipeline), not one fsync pair per publish. The dense payload is a plain safetensors file (it starts at
//! byte 48), written without metadata so that its bytes are a function of the weights.
//!
//! Compaction: every `snapshot_ms` a snapshot is written and the files older than the
//! *previous* snapshot are deleted, so the directory holds about two snapshot intervals of
//! files (≈ 250 at the defaults) however long the run, and a reader in the middle of the
//! previous interval can still catch up. A reader that fell further behind sees a gap and
//! reloads from the newest snapshot.
//!
//! # Reader
//!
//! [`ModelReader::poll`] applies the versions after its own strictly in order. A file that
//! fails its checks (bad magic, checksum, length, a header naming another version or kind,
//! an undecodable payload) is refused and counted; so is a gap (version v+2 present, v+1
//! missing). The reader then keeps the model it has and retries on the next poll (a newer
//! snapshot lets it skip past the problem). [`ModelReader::scorer`] hands out the current
//! model as an `Arc<Scorer>`; serving swaps it per request at no cost.

use crate::config::RankerConfig;
use crate::embedding::{Delta, EmbeddingStore};
use crate::error::{ModelError, Result};
use crate::network::{InputShape, MAX_SEQ_GROUPS, RankerNet, SeqGroup, SeqGroups};
use crate::trainer::{Scorer, Trainer, dense_safetensors};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"LRPUB01\0";
/// Version of the publish file format.
pub const PUBLISH_FORMAT: u32 = 2;
/// Bytes before the payload.
pub const HEADER_BYTES: usize = 48;

/// When the trainer publishes (event time).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublishConfig {
    /// Touched embedding rows go out every this many ms of event time (5 s).
    pub sparse_ms: u64,
    /// Dense weights go out every this many ms (60 s).
    pub dense_ms: u64,
    /// A full snapshot (and compaction of older files) every this many ms (10 min).
    pub snapshot_ms: u64,
    /// Make published files durable: fsynced (with the directory) as a group at
    /// [`ModelPublisher::sync`] — before every pipeline checkpoint and at the end — not one
    /// by one (a reader sees a whole file either way: the rename is atomic).
    pub fsync: bool,
}

impl Default for PublishConfig {
    fn default() -> Self {
        Self {
            sparse_ms: 5_000,
            dense_ms: 60_000,
            snapshot_ms: 600_000,
            fsync: true,
        }
    }
}

impl PublishConfig {
    /// Checks the cadences: positive, sparse ≤ dense ≤ snapshot.
    pub fn validate(&self) -> Result<()> {
        if self.sparse_ms == 0 || self.dense_ms < self.sparse_ms || self.snapshot_ms < self.dense_ms
        {
            return Err(ModelError::Config(format!(
                "publish: need 0 < sparse_ms <= dense_ms <= snapshot_ms, got {} / {} / {}",
                self.sparse_ms, self.dense_ms, self.snapshot_ms
            )));
        }
        Ok(())
    }
}

/// What a publish file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PublishKind {
    /// Touched rows and tombstones.
    Delta,
    /// Dense weights (safetensors).
    Dense,
    /// Everything (compaction base).
    Snapshot,
}

impl PublishKind {
    fn code(self) -> u32 {
        match self {
            PublishKind::Delta => 1,
            PublishKind::Dense => 2,
            PublishKind::Snapshot => 3,
        }
    }

    fn from_code(code: u32) -> Option<Self> {
        match code {
            1 => Some(PublishKind::Delta),
            2 => Some(PublishKind::Dense),
            3 => Some(PublishKind::Snapshot),
            _ => None,
        }
    }

    /// File extension.
    pub fn ext(self) -> &'static str {
        match self {
            PublishKind::Delta => "delta",
            PublishKind::Dense => "dense",
            PublishKind::Snapshot => "snap",
        }
    }

    fn from_ext(ext: &str) -> Option<Self> {
        match ext {
            "delta" => Some(PublishKind::Delta),
            "dense" => Some(PublishKind::Dense),
            "snap" => Some(PublishKind::Snapshot),
            _ => None,
        }
    }
}

/// The file name of a version.
pub fn file_name(version: u64, kind: PublishKind) -> String {
    format!("v{version:012}.{}", kind.ext())
}

fn parse_name(name: &str) -> Option<(u64, PublishKind)> {
    let rest = name.strip_prefix('v')?;
    let (num, ext) = rest.split_once('.')?;
    if num.len() != 12 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((num.parse().ok()?, PublishKind::from_ext(ext)?))
}

/// One file written.
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    /// Version.
    pub version: u64,
    /// Kind.
    pub kind: PublishKind,
    /// Event time of the publish.
    pub event_ts: i64,
    /// File size.
    pub bytes: usize,
    /// Rows (delta) shipped.
    pub rows: usize,
}

/// The publisher's position: part of a pipeline checkpoint, so a resumed run writes the
/// same versions at the same event times.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublisherState {
    /// Last version written (0: none yet).
    pub version: u64,
    /// Next due instants (event time).
    pub next_sparse: i64,
    /// Next dense publish.
    pub next_dense: i64,
    /// Next snapshot.
    pub next_snapshot: i64,
    /// Versions of the last two snapshots, oldest first.
    pub snapshots: Vec<u64>,
    /// The newest snapshot at the last [`ModelPublisher::sync`] (the base a run resumed
    /// from that checkpoint reloads): compaction never deletes it or anything after it.
    pub keep_from: Option<u64>,
}

/// The trainer's side: writes versions into a model directory on an event-time cadence.
#[derive(Debug)]
pub struct ModelPublisher {
    dir: PathBuf,
    config: PublishConfig,
    state: PublisherState,
    /// Files renamed into place but not yet fsynced.
    unsynced: Vec<PathBuf>,
}

fn io_err(path: &Path, e: std::io::Error) -> ModelError {
    ModelError::CheckpointIo {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Grid instant after `t` on a `step` grid aligned to the epoch.
fn next_on_grid(t: i64, step: u64) -> i64 {
    let step = step.max(1) as i64;
    t.div_euclid(step) * step + step
}

impl ModelPublisher {
    /// A publisher into `dir` (created if missing) starting at `state` (default: nothing
    /// published yet; a resumed run passes the state of its checkpoint). Files of versions
    /// after `state.version` left by an interrupted run are overwritten as they come again.
    pub fn new(dir: &Path, config: PublishConfig, state: PublisherState) -> Result<Self> {
        config.validate()?;
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        // Temporary files of a killed publisher: never a version, removed so a resumed run
        // leaves the directory a clean run would.
        for entry in std::fs::read_dir(dir)
            .map_err(|e| io_err(dir, e))?
            .flatten()
        {
            if entry
                .file_name()
                .to_str()
                .is_some_and(liverank_fs::is_temporary)
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            state,
            unsynced: Vec::new(),
        })
    }

    /// Makes every file published so far durable (one fsync each and one of the
    /// directory; skipped with `fsync` off) and pins the newest snapshot against
    /// compaction. A checkpoint that claims these versions calls it first, so that neither
    /// a machine crash nor a killed run's later compaction can take away what a run
    /// resumed from it reloads.
    pub fn sync(&mut self) -> Result<()> {
        self.take_unsynced().sync()
    }

    /// [`ModelPublisher::sync`] in two halves: pins the newest snapshot now and hands over
    /// the fsyncs, which may then run on another thread (the pipeline's checkpoint writer).
    pub fn take_unsynced(&mut self) -> PendingSync {
        self.state.keep_from = self.state.snapshots.last().copied();
        PendingSync {
            dir: self.dir.clone(),
            files: std::mem::take(&mut self.unsynced),
        }
    }

    /// The position (for checkpoints).
    pub fn state(&self) -> &PublisherState {
        &self.state
    }

    /// The last version written.
    pub fn version(&self) -> u64 {
        self.state.version
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Publishes whatever is due at event time `now` (`trained_ts`: the newest sample the
    /// model has learnt from). The first call writes the version-1 snapshot. A delta goes
    /// first whenever anything is due, so the delta chain never skips a change; an empty
    /// delta is not written.
    pub fn tick(
        &mut self,
        trainer: &mut Trainer,
        now: i64,
        trained_ts: i64,
    ) -> Result<Vec<Published>> {
        let mut out = Vec::new();
        if self.state.version == 0 {
            trainer.take_delta();
            out.push(self.snapshot(trainer, now, trained_ts)?);
            self.state.next_sparse = next_on_grid(now, self.config.sparse_ms);
            self.state.next_dense = next_on_grid(now, self.config.dense_ms);
            self.state.next_snapshot = next_on_grid(now, self.config.snapshot_ms);
            return Ok(out);
        }
        let sparse = now >= self.state.next_sparse;
        let dense = now >= self.state.next_dense;
        let snapshot = now >= self.state.next_snapshot;
        if sparse || dense || snapshot {
            out.extend(self.delta(trainer, now, trained_ts)?);
            self.state.next_sparse = next_on_grid(now, self.config.sparse_ms);
        }
        if snapshot {
            out.push(self.snapshot(trainer, now, trained_ts)?);
            self.state.next_snapshot = next_on_grid(now, self.config.snapshot_ms);
            self.state.next_dense = next_on_grid(now, self.config.dense_ms);
        } else if dense {
            let payload = trainer.dense_safetensors()?;
            out.push(self.write(PublishKind::Dense, now, trained_ts, &payload, 0)?);
            self.state.next_dense = next_on_grid(now, self.config.dense_ms);
        }
        Ok(out)
    }

    /// End of a run: the last delta and a snapshot, whatever the cadence.
    pub fn finish(
        &mut self,
        trainer: &mut Trainer,
        now: i64,
        trained_ts: i64,
    ) -> Result<Vec<Published>> {
        let mut out = Vec::new();
        if self.state.version > 0 {
            out.extend(self.delta(trainer, now, trained_ts)?);
        }
        out.push(self.snapshot(trainer, now, trained_ts)?);
        self.sync()?;
        Ok(out)
    }

    fn delta(
        &mut self,
        trainer: &mut Trainer,
        now: i64,
        trained_ts: i64,
    ) -> Result<Option<Published>> {
        let delta = trainer.take_delta();
        if delta.rows.is_empty() && delta.tombstones.is_empty() {
            return Ok(None);
        }
        let payload = encode_delta(&delta, trainer.config().embedding_dim);
        self.write(
            PublishKind::Delta,
            now,
            trained_ts,
            &payload,
            delta.rows.len(),
        )
        .map(Some)
    }

    fn snapshot(&mut self, trainer: &mut Trainer, now: i64, trained_ts: i64) -> Result<Published> {
        let config =
            serde_json::to_vec(trainer.config()).map_err(|e| ModelError::Config(e.to_string()))?;
        let shape = encode_shape(trainer.shape());
        let dense = trainer.dense_safetensors()?;
        let store = trainer.store().to_bytes();
        let mut payload = Vec::with_capacity(config.len() + dense.len() + store.len() + 64);
        for section in [&config[..], &shape[..], &dense[..], &store[..]] {
            payload.extend_from_slice(&(section.len() as u64).to_le_bytes());
            payload.extend_from_slice(section);
        }
        let published = self.write(
            PublishKind::Snapshot,
            now,
            trained_ts,
            &payload,
            trainer.store().len(),
        )?;
        self.state.snapshots.push(published.version);
        if self.state.snapshots.len() > 2 {
            self.state.snapshots.remove(0);
        }
        if self.state.snapshots.len() == 2 {
            // A run killed after this point resumes from the last sync's snapshot.
            let oldest = self.state.snapshots[0];
            self.compact(self.state.keep_from.map_or(oldest, |k| k.min(oldest)))?;
        }
        Ok(published)
    }

    /// Deletes every version file older than `keep_from`.
    fn compact(&self, keep_from: u64) -> Result<()> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if let Some((v, _)) = name.to_str().and_then(parse_name)
                && v < keep_from
            {
                let path = entry.path();
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&path, e)),
                }
            }
        }
        Ok(())
    }

    fn write(
        &mut self,
        kind: PublishKind,
        now: i64,
        trained_ts: i64,
        payload: &[u8],
        rows: usize,
    ) -> Result<Published> {
        let version = self.state.version + 1;
        let bytes = envelope(kind, version, now, trained_ts, payload);
        let path = self.dir.join(file_name(version, kind));
        // Visible whole at once (rename); durable at the next sync.
        write_atomic(&path, &bytes, false)?;
        if self.config.fsync {
            self.unsynced.push(path);
        }
        self.state.version = version;
        Ok(Published {
            version,
            kind,
            event_ts: now,
            bytes: bytes.len(),
            rows,
        })
    }
}

/// Published files not yet durable (from [`ModelPublisher::take_unsynced`]).
#[derive(Debug)]
#[must_use = "the files are durable only once `sync` has run"]
pub struct PendingSync {
    dir: PathBuf,
    files: Vec<PathBuf>,
}

impl PendingSync {
    /// Both sets of files, to be synced together.
    pub fn merge(mut self, later: PendingSync) -> PendingSync {
        self.files.extend(later.files);
        self
    }

    /// fsyncs every file (one compacted away meanwhile is skipped) and the directory.
    pub fn sync(self) -> Result<()> {
        if self.files.is_empty() {
            return Ok(());
        }
        for path in &self.files {
            match std::fs::File::open(path).and_then(|f| f.sync_data()) {
                Ok(()) => {}
                // Compacted away meanwhile: nothing left to make durable.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(path, e)),
            }
        }
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err(&self.dir, e))
    }
}

/// Writes `bytes` to `path` atomically with the workspace's one writer (`liverank-fs`):
/// a temporary file in the same directory renamed over the target, with the file and
/// directory fsyncs when `fsync` is on (off: the publisher syncs its files as a group).
pub fn write_atomic(path: &Path, bytes: &[u8], fsync: bool) -> Result<()> {
    let written = if fsync {
        liverank_fs::write_atomic_bytes(path, bytes)
    } else {
        liverank_fs::write_atomic_unsynced(path, bytes)
    };
    written.map_err(|e| io_err(path, e))
}

fn envelope(kind: PublishKind, version: u64, now: i64, trained_ts: i64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&kind.code().to_le_bytes());
    out.extend_from_slice(&PUBLISH_FORMAT.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&now.to_le_bytes());
    out.extend_from_slice(&trained_ts.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A checked envelope.
#[derive(Debug)]
struct Envelope<'a> {
    kind: PublishKind,
    version: u64,
    event_ts: i64,
    trained_ts: i64,
    payload: &'a [u8],
}

fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

fn open_envelope(bytes: &[u8]) -> std::result::Result<Envelope<'_>, String> {
    if bytes.len() < HEADER_BYTES + 4 {
        return Err(format!("truncated: {} bytes", bytes.len()));
    }
    if &bytes[..8] != MAGIC {
        return Err("not a liverank publish file (bad magic)".into());
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let len = word(body, 40) as usize;
    if body.len() != HEADER_BYTES + len {
        return Err(format!(
            "truncated or padded: payload {} bytes, header says {len}",
            body.len() - HEADER_BYTES
        ));
    }
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != stored {
        return Err("checksum mismatch".into());
    }
    let code = u32::from_le_bytes([body[8], body[9], body[10], body[11]]);
    let format = u32::from_le_bytes([body[12], body[13], body[14], body[15]]);
    if format != PUBLISH_FORMAT {
        return Err(format!(
            "format {format}, this build reads {PUBLISH_FORMAT}"
        ));
    }
    let kind = PublishKind::from_code(code).ok_or_else(|| format!("unknown kind {code}"))?;
    Ok(Envelope {
        kind,
        version: word(body, 16),
        event_ts: word(body, 24) as i64,
        trained_ts: word(body, 32) as i64,
        payload: &body[HEADER_BYTES..],
    })
}

/// Delta payload: tombstone count u64, tombstones u64…, row count u64, dim u32, then per
/// row key u64 and `dim` f32 (all little endian).
fn encode_delta(delta: &Delta, dim: usize) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(20 + delta.tombstones.len() * 8 + delta.rows.len() * (8 + 4 * dim));
    out.extend_from_slice(&(delta.tombstones.len() as u64).to_le_bytes());
    for t in &delta.tombstones {
        out.extend_from_slice(&t.to_le_bytes());
    }
    out.extend_from_slice(&(delta.rows.len() as u64).to_le_bytes());
    out.extend_from_slice(&(dim as u32).to_le_bytes());
    for (key, w) in &delta.rows {
        out.extend_from_slice(&key.to_le_bytes());
        for x in w {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

fn decode_delta(p: &[u8], dim: usize) -> std::result::Result<Delta, String> {
    let short = || "delta payload too short".to_string();
    let n_tomb = p.get(..8).map(|_| word(p, 0) as usize).ok_or_else(short)?;
    let mut at = 8;
    let tomb_end = n_tomb
        .checked_mul(8)
        .and_then(|b| b.checked_add(at))
        .filter(|&e| e + 12 <= p.len())
        .ok_or_else(short)?;
    let tombstones = (at..tomb_end).step_by(8).map(|i| word(p, i)).collect();
    at = tomb_end;
    let n_rows = word(p, at) as usize;
    let got_dim = u32::from_le_bytes([p[at + 8], p[at + 9], p[at + 10], p[at + 11]]) as usize;
    at += 12;
    if got_dim != dim {
        return Err(format!(
            "delta rows of width {got_dim}, the model's is {dim}"
        ));
    }
    let per = 8 + 4 * dim;
    if n_rows.checked_mul(per).and_then(|b| b.checked_add(at)) != Some(p.len()) {
        return Err(format!(
            "delta of {n_rows} rows does not match its {} bytes",
            p.len()
        ));
    }
    let rows = p[at..]
        .chunks_exact(per)
        .map(|c| {
            let key = word(c, 0);
            let w = c[8..]
                .chunks_exact(4)
                .map(|f| f32::from_le_bytes([f[0], f[1], f[2], f[3]]))
                .collect();
            (key, w)
        })
        .collect();
    Ok(Delta { rows, tombstones })
}

fn encode_shape(s: InputShape) -> Vec<u8> {
    let groups = s
        .groups
        .as_slice()
        .iter()
        .flat_map(|g| [g.len, g.query_field, g.heads, g.query_fields as usize]);
    [s.fields, s.seq_len, s.seq_subkeys, s.dense, s.groups.len()]
        .into_iter()
        .chain(groups)
        .flat_map(|v| (v as u64).to_le_bytes())
        .collect()
}

fn decode_shape(b: &[u8]) -> std::result::Result<InputShape, String> {
    let n = b.len() / 8;
    if !b.len().is_multiple_of(8) || n < 5 {
        return Err("bad shape section".into());
    }
    let w = |i: usize| word(b, i * 8) as usize;
    let count = w(4);
    if count > MAX_SEQ_GROUPS || n != 5 + 4 * count {
        return Err("bad shape section".into());
    }
    let mut groups = SeqGroups::NONE;
    for g in 0..count {
        groups = groups
            .with(SeqGroup {
                len: w(5 + 4 * g),
                query_field: w(6 + 4 * g),
                heads: w(7 + 4 * g),
                query_fields: u32::try_from(w(8 + 4 * g)).map_err(|_| "bad shape section")?,
            })
            .ok_or("too many sequence groups")?;
    }
    let shape = InputShape {
        fields: w(0),
        seq_len: w(1),
        seq_subkeys: w(2),
        dense: w(3),
        groups,
    };
    shape.validate()?;
    Ok(shape)
}

/// Loads safetensors weights into a fresh network of `config`/`shape`; every tensor must
/// be present and fit.
fn load_dense(
    config: &RankerConfig,
    shape: InputShape,
    bytes: &[u8],
) -> std::result::Result<RankerNet, String> {
    use burn::store::{ModuleSnapshot, SafetensorsStore};
    let mut net = RankerNet::new(config, shape, &Device::flex());
    let mut st = SafetensorsStore::from_bytes(Some(bytes.to_vec()));
    let result = net
        .load_from(&mut st)
        .map_err(|e| format!("safetensors: {e}"))?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        return Err(format!(
            "safetensors does not fit the network: {} errors, {} missing",
            result.errors.len(),
            result.missing.len()
        ));
    }
    Ok(net)
}

/// Counters of a reader.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReaderCounters {
    /// Versions applied.
    pub applied: u64,
    /// Of which deltas.
    pub deltas: u64,
    /// Of which dense.
    pub dense: u64,
    /// Of which snapshots (incl. the one opened and resyncs).
    pub snapshots: u64,
    /// Files refused: corrupt, truncated, mislabelled, undecodable.
    pub refused_corrupt: u64,
    /// Polls that found the next version missing while a later one exists.
    pub refused_gap: u64,
    /// Reloads from a newer snapshot past a gap or a refused file.
    pub resyncs: u64,
}

/// The model a reader holds.
struct Model {
    config: RankerConfig,
    shape: InputShape,
    net: RankerNet,
    store: EmbeddingStore,
}

/// The serving side: follows a model directory, applying versions in order.
pub struct ModelReader {
    dir: PathBuf,
    model: Model,
    version: u64,
    event_ts: i64,
    trained_ts: i64,
    scorer: Arc<Scorer>,
    counters: ReaderCounters,
    /// The last refusal (version, file size), so a retry of the same file counts once.
    refused: Option<(u64, u64)>,
}

impl std::fmt::Debug for ModelReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelReader")
            .field("dir", &self.dir)
            .field("version", &self.version)
            .field("event_ts", &self.event_ts)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// What one poll did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollOutcome {
    /// Versions applied.
    pub applied: u64,
    /// The version held after the poll.
    pub version: u64,
    /// A file or gap stopped the poll (the previous model is kept).
    pub refused: bool,
}

fn list_versions(dir: &Path) -> Result<BTreeMap<u64, (PublishKind, PathBuf)>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .flatten()
    {
        if let Some((v, kind)) = entry.file_name().to_str().and_then(parse_name) {
            out.insert(v, (kind, entry.path()));
        }
    }
    Ok(out)
}

fn load_snapshot(bytes: &[u8]) -> std::result::Result<(Envelope<'_>, Model), String> {
    let env = open_envelope(bytes)?;
    if env.kind != PublishKind::Snapshot {
        return Err("not a snapshot".into());
    }
    let p = env.payload;
    let mut sections = Vec::with_capacity(4);
    let mut at = 0;
    for _ in 0..4 {
        let len = p
            .get(at..at + 8)
            .map(|_| word(p, at) as usize)
            .ok_or("truncated section")?;
        let s = p.get(at + 8..at + 8 + len).ok_or("truncated section")?;
        sections.push(s);
        at += 8 + len;
    }
    let config: RankerConfig =
        serde_json::from_slice(sections[0]).map_err(|e| format!("config: {e}"))?;
    // Loads a LiveForesighter model's forecasters and checks them against the checksums
    // the model was trained with.
    config.validate().map_err(|e| format!("config: {e}"))?;
    let shape = decode_shape(sections[1])?;
    let net = load_dense(&config, shape, sections[2])?;
    let store = EmbeddingStore::from_bytes(sections[3]).map_err(|e| format!("store: {e}"))?;
    if store.dim() != config.embedding_dim {
        return Err("store width differs from the configuration".into());
    }
    Ok((
        env,
        Model {
            config,
            shape,
            net,
            store,
        },
    ))
}

impl ModelReader {
    /// Opens a model directory: loads the newest snapshot that passes its checks, then
    /// applies the versions after it. An error when no snapshot can be loaded.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_until(dir, u64::MAX)
    }

    /// [`ModelReader::open`] holding no version after `limit` (a model as of an earlier
    /// point of the publisher's history).
    pub fn open_until(dir: &Path, limit: u64) -> Result<Self> {
        let versions = list_versions(dir)?;
        let mut last_error = format!("no snapshot in {}", dir.display());
        for (&v, (kind, path)) in versions.range(..=limit).rev() {
            if *kind != PublishKind::Snapshot {
                continue;
            }
            let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
            match load_snapshot(&bytes) {
                Ok((env, model)) if env.version == v => {
                    let scorer = Arc::new(scorer_of(&model));
                    let mut reader = Self {
                        dir: dir.to_path_buf(),
                        model,
                        version: v,
                        event_ts: env.event_ts,
                        trained_ts: env.trained_ts,
                        scorer,
                        counters: ReaderCounters {
                            applied: 1,
                            snapshots: 1,
                            ..ReaderCounters::default()
                        },
                        refused: None,
                    };
                    reader.poll_until(limit)?;
                    return Ok(reader);
                }
                Ok(_) => last_error = format!("{}: header names another version", path.display()),
                Err(e) => last_error = format!("{}: {e}", path.display()),
            }
        }
        Err(ModelError::Checkpoint {
            path: dir.display().to_string(),
            reason: last_error,
        })
    }

    /// Applies every new version in order; stops at a refused file or a gap (keeping the
    /// model it has) unless a newer snapshot lets it resync. Errors only when the directory
    /// cannot be listed.
    pub fn poll(&mut self) -> Result<PollOutcome> {
        self.poll_until(u64::MAX)
    }

    /// [`ModelReader::poll`] applying no version after `limit`.
    pub fn poll_until(&mut self, limit: u64) -> Result<PollOutcome> {
        let versions = list_versions(&self.dir)?;
        let versions: BTreeMap<u64, (PublishKind, PathBuf)> =
            versions.into_iter().filter(|(v, _)| *v <= limit).collect();
        let mut outcome = PollOutcome::default();
        loop {
            let next = self.version + 1;
            let problem = match versions.get(&next) {
                Some((kind, path)) => match std::fs::read(path) {
                    Ok(bytes) => match self.apply(next, *kind, &bytes) {
                        Ok(()) => {
                            outcome.applied += 1;
                            self.refused = None;
                            continue;
                        }
                        Err(reason) => {
                            let key = (next, bytes.len() as u64);
                            if self.refused != Some(key) {
                                self.counters.refused_corrupt += 1;
                                self.refused = Some(key);
                            }
                            Some(reason)
                        }
                    },
                    // Compacted away between the listing and the read.
                    Err(_) => Some("vanished".into()),
                },
                None if versions.range(next..).next().is_some() => {
                    let key = (next, u64::MAX);
                    if self.refused != Some(key) {
                        self.counters.refused_gap += 1;
                        self.refused = Some(key);
                    }
                    Some(format!("version {next} is missing"))
                }
                None => None,
            };
            if problem.is_none() {
                break;
            }
            // Past a refused file or a gap only through a newer snapshot.
            let newer = versions
                .range(next + 1..)
                .rev()
                .find(|(_, (k, _))| *k == PublishKind::Snapshot);
            let resynced = newer.is_some_and(|(&v, (_, path))| {
                std::fs::read(path)
                    .ok()
                    .is_some_and(|bytes| match load_snapshot(&bytes) {
                        Ok((env, model)) if env.version == v => {
                            self.set(v, env.event_ts, env.trained_ts);
                            self.model = model;
                            self.counters.snapshots += 1;
                            self.counters.applied += 1;
                            self.counters.resyncs += 1;
                            true
                        }
                        _ => false,
                    })
            });
            if resynced {
                outcome.applied += 1;
                self.refused = None;
                continue;
            }
            outcome.refused = true;
            break;
        }
        if outcome.applied > 0 {
            self.scorer = Arc::new(scorer_of(&self.model));
        }
        outcome.version = self.version;
        Ok(outcome)
    }

    fn set(&mut self, version: u64, event_ts: i64, trained_ts: i64) {
        self.version = version;
        self.event_ts = event_ts;
        self.trained_ts = trained_ts;
    }

    /// Checks and applies one file as version `v`; on error nothing changed.
    fn apply(
        &mut self,
        v: u64,
        kind: PublishKind,
        bytes: &[u8],
    ) -> std::result::Result<(), String> {
        if kind == PublishKind::Snapshot {
            let (env, model) = load_snapshot(bytes)?;
            if env.version != v {
                return Err(format!(
                    "header says version {}, file name {v}",
                    env.version
                ));
            }
            self.model = model;
            self.set(v, env.event_ts, env.trained_ts);
            self.counters.snapshots += 1;
            self.counters.applied += 1;
            return Ok(());
        }
        let env = open_envelope(bytes)?;
        if env.version != v || env.kind != kind {
            return Err(format!(
                "header says version {} ({:?}), file name {v} ({kind:?})",
                env.version, env.kind
            ));
        }
        match kind {
            PublishKind::Delta => {
                let delta = decode_delta(env.payload, self.model.config.embedding_dim)?;
                self.model
                    .store
                    .apply_delta(&delta)
                    .map_err(|e| e.to_string())?;
                self.counters.deltas += 1;
            }
            PublishKind::Dense => {
                self.model.net = load_dense(&self.model.config, self.model.shape, env.payload)?;
                self.counters.dense += 1;
            }
            PublishKind::Snapshot => {}
        }
        self.counters.applied += 1;
        self.set(v, env.event_ts, env.trained_ts);
        Ok(())
    }

    /// The current model, shared: cloning the `Arc` is all a request pays.
    pub fn scorer(&self) -> Arc<Scorer> {
        Arc::clone(&self.scorer)
    }

    /// The version held.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Event time of the version held (when it was published).
    pub fn event_ts(&self) -> i64 {
        self.event_ts
    }

    /// Event time of the newest sample the held model learnt from.
    pub fn trained_ts(&self) -> i64 {
        self.trained_ts
    }

    /// Event-time lag of the held model at `now`: `now −` its publish time (≥ 0).
    pub fn lag_ms(&self, now: i64) -> i64 {
        (now - self.event_ts).max(0)
    }

    /// Counters.
    pub fn counters(&self) -> &ReaderCounters {
        &self.counters
    }

    /// The embedding rows held (for checks against the trainer).
    pub fn store(&self) -> &EmbeddingStore {
        &self.model.store
    }

    /// The dense weights held, as safetensors bytes.
    pub fn dense_safetensors(&self) -> Result<Vec<u8>> {
        dense_safetensors(&self.model.net)
    }
}

fn scorer_of(model: &Model) -> Scorer {
    Scorer {
        config: model.config.clone(),
        shape: model.shape,
        net: model.net.clone(),
        store: Arc::new(model.store.clone()),
        device: Device::flex(),
    }
}

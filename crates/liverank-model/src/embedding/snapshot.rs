//! The embedding store's snapshot format (documented on [`EmbeddingStore::to_bytes`]) and
//! its atomic file write.

use super::{EmbeddingConfig, EmbeddingError, EmbeddingStore, NIL, Pending, Result, RowOptimizer};

/// First bytes of every embedding snapshot.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"LREMBED\0";
/// Snapshot version this build writes (it reads 1 and 2).
pub const SNAPSHOT_VERSION: u32 = 2;

/// Widest row a snapshot may declare (guards the arithmetic against a forged header).
const MAX_DIM: u64 = 1 << 20;

impl EmbeddingStore {
    /// Serialises the whole store. Format version 2, all integers and floats little-endian:
    ///
    /// ```text
    /// magic        8 bytes  "LREMBED\0"
    /// version      u32      2
    /// config       dim u64 | min_count u32 | ttl u64 | keep_floor u64 | init_scale f32 |
    ///              seed u64 | optimizer tag u8 (0 Adagrad, 1 FTRL, 2 Adam) | 4 × f32
    ///              (Adagrad: lr, initial_accumulator, eps, 0; FTRL: alpha, beta, l1, l2;
    ///              Adam: lr, beta1, beta2, eps)
    /// clock        u64      newest training time seen
    /// next_sweep   u64      earliest time of the next sweep of stale admission counts
    /// rows         u64 n, then n × (key u64 | last_touch u64 | dirty u8 |
    ///              stride × f32: dim weights, then the optimiser state)
    ///              in eviction order (oldest first) when ttl > 0, else by key
    /// pending      u64 n, then n × (key u64 | count u32 | last_seen u64), by key
    /// tombstones   u64 n, then n × key u64, in eviction order
    /// crc32        u32      CRC-32 (IEEE, crc32fast) of every byte before it
    /// ```
    ///
    /// Everything that decides future behaviour is in it — optimiser state, eviction
    /// order, admission counts, unpublished changes (dirty rows, tombstones) — so a restored
    /// store continues bit-identically and its next delta is the one the original would
    /// have sent. The bytes are canonical: equal stores give equal bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let c = &self.config;
        let mut out = Vec::with_capacity(
            96 + self.rows.len() * (17 + 4 * self.stride) + self.pending.len() * 20,
        );
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out.extend_from_slice(&(c.dim as u64).to_le_bytes());
        out.extend_from_slice(&c.min_count.to_le_bytes());
        out.extend_from_slice(&c.ttl.to_le_bytes());
        out.extend_from_slice(&(c.keep_floor as u64).to_le_bytes());
        out.extend_from_slice(&c.init_scale.to_le_bytes());
        out.extend_from_slice(&c.seed.to_le_bytes());
        out.push(c.optimizer.tag());
        for p in c.optimizer.params() {
            out.extend_from_slice(&p.to_le_bytes());
        }
        out.extend_from_slice(&self.clock.to_le_bytes());
        out.extend_from_slice(&self.next_pending_sweep.to_le_bytes());

        out.extend_from_slice(&(self.rows.len() as u64).to_le_bytes());
        for row in self.rows_in_snapshot_order() {
            let meta = &self.meta[row as usize];
            out.extend_from_slice(&self.keys[row as usize].to_le_bytes());
            out.extend_from_slice(&meta.last_touch.to_le_bytes());
            out.push(u8::from(meta.dirty));
            let base = row as usize * self.stride;
            for v in &self.data[base..base + self.stride] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }

        let mut pending: Vec<(u64, Pending)> = self.pending.iter().map(|(&k, &p)| (k, p)).collect();
        pending.sort_unstable_by_key(|&(k, _)| k);
        out.extend_from_slice(&(pending.len() as u64).to_le_bytes());
        for (key, p) in pending {
            out.extend_from_slice(&key.to_le_bytes());
            out.extend_from_slice(&p.count.to_le_bytes());
            out.extend_from_slice(&p.last_seen.to_le_bytes());
        }

        out.extend_from_slice(&(self.tombstones.len() as u64).to_le_bytes());
        for key in &self.tombstones {
            out.extend_from_slice(&key.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Live rows oldest-first when the eviction order is kept, else by key.
    fn rows_in_snapshot_order(&self) -> Vec<u32> {
        if self.config.ttl > 0 {
            let mut rows = Vec::with_capacity(self.rows.len());
            let mut row = self.oldest;
            while row != NIL {
                rows.push(row);
                row = self.meta[row as usize].newer;
            }
            rows
        } else {
            let mut keyed: Vec<(u64, u32)> = self.rows.iter().map(|(&k, &r)| (k, r)).collect();
            keyed.sort_unstable();
            keyed.into_iter().map(|(_, r)| r).collect()
        }
    }

    /// Reads [`EmbeddingStore::to_bytes`] output. Version 1 (no clock, sweep time, dirty
    /// flags or pending times; rows by key) is still read: its eviction order is rebuilt as
    /// (last touch, key), which was version 1's order. A wrong magic, an
    /// unknown version, a checksum mismatch, truncation, trailing bytes or an impossible
    /// header is an error naming the problem. Row indices may differ from the original's;
    /// weights, optimiser state, counters and eviction order are bit-identical.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < SNAPSHOT_MAGIC.len() + 8 || &bytes[..8] != SNAPSHOT_MAGIC {
            return Err(bad("not an embedding snapshot (bad magic)"));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let actual = crc32fast::hash(body);
        if stored != actual {
            return Err(EmbeddingError::Snapshot(format!(
                "checksum mismatch (stored {stored:#010x}, computed {actual:#010x}): damaged or truncated"
            )));
        }
        let mut r = Reader { buf: body, at: 8 };
        let version = r.u32()?;
        if version != 1 && version != 2 {
            return Err(EmbeddingError::Snapshot(format!(
                "version {version}, this build reads 1 and 2"
            )));
        }
        let dim = r.u64()?;
        if dim > MAX_DIM {
            return Err(EmbeddingError::Snapshot(format!(
                "row width {dim} exceeds {MAX_DIM}"
            )));
        }
        let min_count = r.u32()?;
        let ttl = r.u64()?;
        let keep_floor = usize::try_from(r.u64()?).map_err(|_| bad("keep_floor overflows"))?;
        let init_scale = r.f32()?;
        let seed = r.u64()?;
        let tag = r.u8()?;
        let params = [r.f32()?, r.f32()?, r.f32()?, r.f32()?];
        let optimizer = RowOptimizer::from_parts(tag, params)
            .ok_or_else(|| EmbeddingError::Snapshot(format!("unknown optimizer tag {tag}")))?;
        let mut store = Self::new(EmbeddingConfig {
            dim: dim as usize,
            min_count,
            ttl,
            keep_floor,
            init_scale,
            seed,
            optimizer,
        });
        let (clock, next_sweep) = if version >= 2 {
            (r.u64()?, r.u64()?)
        } else {
            (0, 0)
        };

        let n = r.u64()?;
        let mut loaded: Vec<(u64, u64, bool, usize)> = Vec::new();
        for _ in 0..n {
            let key = r.u64()?;
            let last_touch = r.u64()?;
            let dirty = if version >= 2 {
                match r.u8()? {
                    0 => false,
                    1 => true,
                    other => {
                        return Err(EmbeddingError::Snapshot(format!(
                            "row {key:#x}: dirty flag {other}"
                        )));
                    }
                }
            } else {
                false
            };
            let floats = r.floats(store.stride)?;
            loaded.push((key, last_touch, dirty, floats));
        }
        if version == 1 {
            // Version 1 evicted by (last touch, key): rebuild that order.
            loaded.sort_unstable_by_key(|&(key, touch, ..)| (touch, key));
        }
        for &(key, last_touch, dirty, floats) in &loaded {
            if store.rows.contains_key(&key) {
                return Err(EmbeddingError::Snapshot(format!(
                    "row {key:#x} appears twice"
                )));
            }
            let row = store
                .allocate_row(key, last_touch)
                .ok_or_else(|| bad("more rows than a store can hold"))?;
            let base = row as usize * store.stride;
            for (dst, src) in store.data[base..base + store.stride]
                .iter_mut()
                .zip(body[floats..].chunks_exact(4))
            {
                *dst = f32::from_le_bytes([src[0], src[1], src[2], src[3]]);
            }
            if dirty {
                store.meta[row as usize].dirty = true;
                store.dirty_rows.push(row);
            }
        }
        let newest_touch = loaded.iter().map(|&(_, t, ..)| t).max().unwrap_or(0);
        store.clock = if version >= 2 { clock } else { newest_touch };
        store.next_pending_sweep = next_sweep;

        for _ in 0..r.u64()? {
            let key = r.u64()?;
            let count = r.u32()?;
            let last_seen = if version >= 2 { r.u64()? } else { store.clock };
            if store
                .pending
                .insert(key, Pending { count, last_seen })
                .is_some()
            {
                return Err(EmbeddingError::Snapshot(format!(
                    "admission count of {key:#x} appears twice"
                )));
            }
        }
        for _ in 0..r.u64()? {
            store.tombstones.push(r.u64()?);
        }
        if r.at != body.len() {
            return Err(EmbeddingError::Snapshot(format!(
                "{} trailing bytes",
                body.len() - r.at
            )));
        }
        Ok(store)
    }

    /// Writes a snapshot atomically (`liverank_fs::write_atomic`: a temporary file beside
    /// `path`, fsync, rename over `path`, fsync of the directory). A crash leaves either
    /// the old file or the new one, never a torn one, and no temporary file.
    pub fn write_snapshot(&self, path: &std::path::Path) -> Result<()> {
        liverank_fs::write_atomic_bytes(path, &self.to_bytes()).map_err(|source| {
            EmbeddingError::Io {
                path: path.display().to_string(),
                source,
            }
        })
    }

    /// Reads a snapshot file written by [`EmbeddingStore::write_snapshot`].
    pub fn read_snapshot(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| EmbeddingError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }
}

fn bad(message: &str) -> EmbeddingError {
    EmbeddingError::Snapshot(message.to_string())
}

/// Cursor over a snapshot body; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let slice = self
            .buf
            .get(self.at..self.at.saturating_add(N))
            .ok_or_else(|| bad("truncated"))?;
        self.at += N;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    /// Skips `count` f32s and returns where they start.
    fn floats(&mut self, count: usize) -> Result<usize> {
        let start = self.at;
        let end = count
            .checked_mul(4)
            .and_then(|n| start.checked_add(n))
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| bad("truncated"))?;
        self.at = end;
        Ok(start)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take()?))
    }

    fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_le_bytes(self.take()?))
    }
}

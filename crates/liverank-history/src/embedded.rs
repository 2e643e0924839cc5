//! The embedded durable backend: one redb file.
//!
//! Why redb: pure Rust (no C toolchain, unlike RocksDB), ACID transactions that fsync on
//! commit (an acknowledged append survives `kill -9` and power loss), a single file, and
//! ordered range scans over tuple keys, so one user's history is one scan over
//! `(user, block)` keys. Reads run concurrently with the single writer (MVCC).
//!
//! Layout (file `<dir>/history.redb`):
//! * `blocks_v1`: `(user, block number) → block`. A block holds up to
//!   [`BLOCK_RECORDS`] records of one user in order (`available_at`, then arrival):
//!   `version u8 | count u16 LE | crc32 u32 LE of the record bytes | count × 56-byte
//!   records` ([`HistoryRecord::encode`]). Block numbers grow; the oldest block is the
//!   first. Storing 64 records per value rather than one per key makes a 10,000-record
//!   read 157 value reads instead of 10,000 B-tree steps.
//! * `users_v1`: `user → (records, first block, next block, newest available_at)`.
//! * `meta_v1`: `format_version`, `records`, `users`.
//!
//! An append whose records are all at least as new as the user's newest extends the tail
//! block (the common case: events arrive in time order); an older record rewrites only
//! the tail blocks it falls among. Retention then drops whole blocks from the front, and
//! cuts the first block when the excess ends inside it.

use crate::config::HistoryConfig;
use crate::error::{HistoryError, Result};
use crate::memory::validate_batch;
use crate::record::{HistoryRecord, RECORD_BYTES};
use crate::store::{HistoryStore, SharedHistory};
use liverank_types::{EventTime, UserId};
use redb::{
    Database, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Records per block.
pub const BLOCK_RECORDS: usize = 64;
/// Version of the block layout and tables.
pub const EMBEDDED_FORMAT_VERSION: u64 = 1;
/// File name inside the store's directory.
pub const FILE_NAME: &str = "history.redb";

const BLOCK_HEADER: usize = 7;
const BLOCK_VERSION: u8 = 1;

const BLOCKS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("blocks_v1");
const USERS: TableDefinition<u64, (u64, u64, u64, i64)> = TableDefinition::new("users_v1");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta_v1");

/// Where a user's blocks are: `(records, first block, next block, newest available_at)`.
#[derive(Clone, Copy, Debug)]
struct UserMeta {
    records: u64,
    first: u64,
    next: u64,
    newest: i64,
}

impl UserMeta {
    const EMPTY: UserMeta = UserMeta {
        records: 0,
        first: 0,
        next: 0,
        newest: i64::MIN,
    };
    fn from_tuple((records, first, next, newest): (u64, u64, u64, i64)) -> Self {
        Self {
            records,
            first,
            next,
            newest,
        }
    }
    fn to_tuple(self) -> (u64, u64, u64, i64) {
        (self.records, self.first, self.next, self.newest)
    }
}

/// Durable single-file history store.
pub struct EmbeddedStore {
    db: Db,
    dir: PathBuf,
    retention: usize,
    cache: Option<Mutex<UserCache>>,
}

/// Wraps a redb error with the store's directory and what we were doing.
fn err_at<E: Into<redb::Error>>(dir: &Path, operation: &'static str) -> impl Fn(E) -> HistoryError {
    let path = dir.to_path_buf();
    move |e| HistoryError::Embedded {
        path: path.clone(),
        operation,
        source: Box::new(e.into()),
    }
}

/// The database, opened for writing (one process) or read-only (any number of readers
/// while no writer has it open).
enum Db {
    Write(Database),
    Read(ReadOnlyDatabase),
}

impl Db {
    fn begin_read(&self) -> std::result::Result<ReadTransaction, redb::TransactionError> {
        match self {
            Db::Write(db) => db.begin_read(),
            Db::Read(db) => db.begin_read(),
        }
    }
}

/// Decoded histories of recently read users (least recently read evicted). An append
/// drops its users' entries after its commit and bumps the generation, so a read that
/// began before the commit cannot put a stale copy back.
#[derive(Debug)]
struct UserCache {
    capacity: usize,
    generation: u64,
    tick: u64,
    entries: HashMap<u64, (Arc<Vec<HistoryRecord>>, u64)>,
}

impl UserCache {
    fn get(&mut self, user: u64) -> Option<Arc<Vec<HistoryRecord>>> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(&user).map(|(records, used)| {
            *used = tick;
            Arc::clone(records)
        })
    }

    fn insert(&mut self, user: u64, records: Arc<Vec<HistoryRecord>>, generation: u64) {
        if generation != self.generation {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&user) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(u, _)| *u);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.tick += 1;
        self.entries.insert(user, (records, self.tick));
    }

    fn invalidate(&mut self, users: impl Iterator<Item = u64>) {
        self.generation += 1;
        for user in users {
            self.entries.remove(&user);
        }
    }
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("dir", &self.dir)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

/// Encodes records into a block value.
fn encode_block(records: &[HistoryRecord], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(BLOCK_HEADER + records.len() * RECORD_BYTES);
    out.push(BLOCK_VERSION);
    out.extend_from_slice(&(records.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let mut bytes = [0u8; RECORD_BYTES];
    for r in records {
        r.encode(&mut bytes);
        out.extend_from_slice(&bytes);
    }
    let crc = crc32fast::hash(&out[BLOCK_HEADER..]);
    out[3..7].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes a block, appending records with `available_at < before_ts` to `out`. Returns
/// false once a record at or after `before_ts` was met (later blocks cannot hold visible
/// records either).
fn decode_block(
    value: &[u8],
    before_ts: EventTime,
    out: &mut Vec<HistoryRecord>,
) -> std::result::Result<bool, String> {
    if value.len() < BLOCK_HEADER || value[0] != BLOCK_VERSION {
        return Err(format!(
            "block of {} bytes with version {:?}, expected {BLOCK_VERSION}",
            value.len(),
            value.first()
        ));
    }
    let count = usize::from(u16::from_le_bytes([value[1], value[2]]));
    let body = &value[BLOCK_HEADER..];
    if body.len() != count * RECORD_BYTES {
        return Err(format!(
            "block says {count} records but holds {} bytes",
            body.len()
        ));
    }
    let crc = u32::from_le_bytes([value[3], value[4], value[5], value[6]]);
    if crc32fast::hash(body) != crc {
        return Err("block checksum mismatch".to_string());
    }
    out.reserve(count);
    for chunk in body.chunks_exact(RECORD_BYTES) {
        let bytes: &[u8; RECORD_BYTES] = chunk.try_into().map_err(|_| "short record")?;
        let record = HistoryRecord::decode(bytes).ok_or("undecodable record")?;
        if record.available_at >= before_ts {
            return Ok(false);
        }
        out.push(record);
    }
    Ok(true)
}

impl EmbeddedStore {
    /// Opens the store in `dir` (`dir/history.redb`), creating the directory and the file
    /// if missing. A file of another format version is refused. Only one process may have
    /// a store open at a time (redb locks the file).
    pub fn open(dir: &Path, config: &HistoryConfig) -> Result<Self> {
        config.validate()?;
        std::fs::create_dir_all(dir).map_err(|source| HistoryError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let db = Database::create(dir.join(FILE_NAME)).map_err(err_at(dir, "open"))?;
        let tx = db.begin_write().map_err(err_at(dir, "open"))?;
        {
            tx.open_table(BLOCKS).map_err(err_at(dir, "open"))?;
            tx.open_table(USERS).map_err(err_at(dir, "open"))?;
            let mut meta = tx.open_table(META).map_err(err_at(dir, "open"))?;
            let version = meta
                .get("format_version")
                .map_err(err_at(dir, "open"))?
                .map(|v| v.value());
            match version {
                None => {
                    meta.insert("format_version", EMBEDDED_FORMAT_VERSION)
                        .map_err(err_at(dir, "open"))?;
                }
                Some(EMBEDDED_FORMAT_VERSION) => {}
                Some(other) => {
                    return Err(HistoryError::Corrupt {
                        location: dir.display().to_string(),
                        reason: format!(
                            "format version {other}, this build reads {EMBEDDED_FORMAT_VERSION}"
                        ),
                    });
                }
            }
        }
        tx.commit().map_err(err_at(dir, "open"))?;
        Ok(Self::with_db(Db::Write(db), dir, config))
    }

    /// Opens an existing store for reading only: any number of processes may read it at
    /// once (training runs, queries), but not while a writer has it open, and appends are
    /// refused. A store left by a killed writer must be opened for writing once first
    /// (redb repairs it then).
    pub fn open_read_only(dir: &Path, config: &HistoryConfig) -> Result<Self> {
        config.validate()?;
        let file = dir.join(FILE_NAME);
        if !file.exists() {
            return Err(HistoryError::Io {
                path: file,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no history store here (build one with `liverank history build`)",
                ),
            });
        }
        let db = ReadOnlyDatabase::open(&file).map_err(err_at(dir, "open read-only"))?;
        let store = Self::with_db(Db::Read(db), dir, config);
        let tx = store.db.begin_read().map_err(store.err("open"))?;
        let meta = tx.open_table(META).map_err(store.err("open"))?;
        let version = meta
            .get("format_version")
            .map_err(store.err("open"))?
            .map(|v| v.value());
        if version != Some(EMBEDDED_FORMAT_VERSION) {
            return Err(HistoryError::Corrupt {
                location: store.dir.display().to_string(),
                reason: format!(
                    "format version {version:?}, this build reads {EMBEDDED_FORMAT_VERSION}"
                ),
            });
        }
        drop(meta);
        drop(tx);
        Ok(store)
    }

    fn with_db(db: Db, dir: &Path, config: &HistoryConfig) -> Self {
        Self {
            db,
            dir: dir.to_path_buf(),
            retention: config.retention,
            cache: (config.cache_users > 0).then(|| {
                Mutex::new(UserCache {
                    capacity: config.cache_users,
                    generation: 0,
                    tick: 0,
                    entries: HashMap::new(),
                })
            }),
        }
    }

    fn err<E: Into<redb::Error>>(&self, operation: &'static str) -> impl Fn(E) -> HistoryError {
        err_at(&self.dir, operation)
    }

    fn corrupt(&self, user: u64, block: u64, reason: String) -> HistoryError {
        HistoryError::Corrupt {
            location: format!(
                "{} user {user} block {block}",
                self.dir.join(FILE_NAME).display()
            ),
            reason,
        }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records stored, all users together.
    pub fn total_records(&self) -> Result<u64> {
        self.meta_value("records")
    }

    /// Users with at least one record.
    pub fn users(&self) -> Result<u64> {
        self.meta_value("users")
    }

    fn meta_value(&self, key: &str) -> Result<u64> {
        let tx = self.db.begin_read().map_err(self.err("read"))?;
        let meta = tx.open_table(META).map_err(self.err("read"))?;
        Ok(meta
            .get(key)
            .map_err(self.err("read"))?
            .map_or(0, |v| v.value()))
    }

    /// One range scan over the user's blocks, stopping at the first record at or after
    /// `before_ts`.
    fn read_from_file(
        &self,
        user: UserId,
        before_ts: EventTime,
        out: &mut Vec<HistoryRecord>,
    ) -> Result<()> {
        out.clear();
        let tx = self.db.begin_read().map_err(self.err("read"))?;
        let blocks = tx.open_table(BLOCKS).map_err(self.err("read"))?;
        for item in blocks
            .range((user.0, 0)..=(user.0, u64::MAX))
            .map_err(self.err("read"))?
        {
            let (key, value) = item.map_err(self.err("read"))?;
            let more = decode_block(value.value(), before_ts, out)
                .map_err(|reason| self.corrupt(user.0, key.value().1, reason))?;
            if !more {
                break;
            }
        }
        Ok(())
    }

    /// Reads blocks `from..to` of a user (all records).
    fn read_blocks(
        &self,
        blocks: &impl ReadableTable<(u64, u64), &'static [u8]>,
        user: u64,
        from: u64,
        to: u64,
        out: &mut Vec<HistoryRecord>,
    ) -> Result<()> {
        for item in blocks
            .range((user, from)..(user, to))
            .map_err(self.err("read"))?
        {
            let (key, value) = item.map_err(self.err("read"))?;
            decode_block(value.value(), EventTime(i64::MAX), out)
                .map_err(|reason| self.corrupt(user, key.value().1, reason))?;
        }
        Ok(())
    }
}

impl HistoryStore for EmbeddedStore {
    fn append(&self, batch: &[(UserId, HistoryRecord)]) -> Result<()> {
        validate_batch(batch)?;
        if batch.is_empty() {
            return Ok(());
        }
        // Per user, in arrival order, then stably by available_at (ties keep arrival).
        let mut groups: BTreeMap<u64, Vec<HistoryRecord>> = BTreeMap::new();
        for (user, record) in batch {
            groups.entry(user.0).or_default().push(*record);
        }
        let Db::Write(db) = &self.db else {
            return Err(HistoryError::ReadOnly {
                path: self.dir.clone(),
            });
        };
        let tx = db.begin_write().map_err(self.err("append"))?;
        {
            let mut blocks = tx.open_table(BLOCKS).map_err(self.err("append"))?;
            let mut users = tx.open_table(USERS).map_err(self.err("append"))?;
            let mut meta_table = tx.open_table(META).map_err(self.err("append"))?;
            let mut total = meta_table
                .get("records")
                .map_err(self.err("append"))?
                .map_or(0, |v| v.value());
            let mut user_count = meta_table
                .get("users")
                .map_err(self.err("append"))?
                .map_or(0, |v| v.value());
            let mut buf = Vec::new();
            let mut work: Vec<HistoryRecord> = Vec::new();
            for (user, mut group) in groups {
                group.sort_by_key(|r| r.available_at);
                let stored = users
                    .get(user)
                    .map_err(self.err("append"))?
                    .map(|v| UserMeta::from_tuple(v.value()));
                if stored.is_none() {
                    user_count += 1;
                }
                let mut meta = stored.unwrap_or(UserMeta::EMPTY);
                let oldest_new = group[0].available_at.0;
                // The blocks to rewrite from: the tail block if it has room (common case),
                // or, for a record older than the user's newest, back to the block it
                // falls in.
                let mut rewrite_from = meta.next;
                work.clear();
                if oldest_new >= meta.newest {
                    if meta.next > meta.first {
                        let tail = meta.next - 1;
                        let value = blocks.get((user, tail)).map_err(self.err("append"))?;
                        if let Some(value) = value {
                            let bytes = value.value();
                            let count = bytes.get(1..3).map_or(BLOCK_RECORDS, |c| {
                                usize::from(u16::from_le_bytes([c[0], c[1]]))
                            });
                            if count < BLOCK_RECORDS {
                                decode_block(bytes, EventTime(i64::MAX), &mut work)
                                    .map_err(|reason| self.corrupt(user, tail, reason))?;
                                rewrite_from = tail;
                            }
                        }
                    }
                    work.extend_from_slice(&group);
                } else {
                    // Walk back from the tail until a block starts at or before the
                    // oldest new record: everything after that point is rewritten.
                    let mut tail_records: Vec<Vec<HistoryRecord>> = Vec::new();
                    let mut b = meta.next;
                    while b > meta.first {
                        b -= 1;
                        let mut records = Vec::new();
                        self.read_blocks(&blocks, user, b, b + 1, &mut records)?;
                        let starts_before = records
                            .first()
                            .is_none_or(|r| r.available_at.0 <= oldest_new);
                        tail_records.push(records);
                        rewrite_from = b;
                        if starts_before {
                            break;
                        }
                    }
                    let existing: Vec<HistoryRecord> =
                        tail_records.into_iter().rev().flatten().collect();
                    // Stable merge; on equal available_at the stored record stays first.
                    let (mut i, mut j) = (0, 0);
                    while i < existing.len() || j < group.len() {
                        let take_existing = j == group.len()
                            || (i < existing.len()
                                && existing[i].available_at <= group[j].available_at);
                        if take_existing {
                            work.push(existing[i]);
                            i += 1;
                        } else {
                            work.push(group[j]);
                            j += 1;
                        }
                    }
                }
                for b in rewrite_from..meta.next {
                    blocks.remove((user, b)).map_err(self.err("append"))?;
                }
                let mut next = rewrite_from;
                for chunk in work.chunks(BLOCK_RECORDS) {
                    encode_block(chunk, &mut buf);
                    blocks
                        .insert((user, next), buf.as_slice())
                        .map_err(self.err("append"))?;
                    next += 1;
                }
                if meta.next == meta.first {
                    meta.first = rewrite_from;
                }
                meta.next = next;
                meta.records += group.len() as u64;
                total += group.len() as u64;
                meta.newest = meta.newest.max(group[group.len() - 1].available_at.0);
                // Retention: drop whole blocks from the front, then cut the first block.
                let cap = self.retention as u64;
                while meta.records > cap {
                    let excess = (meta.records - cap) as usize;
                    work.clear();
                    self.read_blocks(&blocks, user, meta.first, meta.first + 1, &mut work)?;
                    if work.len() <= excess {
                        blocks
                            .remove((user, meta.first))
                            .map_err(self.err("append"))?;
                        meta.first += 1;
                        meta.records -= work.len() as u64;
                        total -= work.len() as u64;
                    } else {
                        encode_block(&work[excess..], &mut buf);
                        blocks
                            .insert((user, meta.first), buf.as_slice())
                            .map_err(self.err("append"))?;
                        meta.records -= excess as u64;
                        total -= excess as u64;
                    }
                }
                users
                    .insert(user, meta.to_tuple())
                    .map_err(self.err("append"))?;
            }
            meta_table
                .insert("records", total)
                .map_err(self.err("append"))?;
            meta_table
                .insert("users", user_count)
                .map_err(self.err("append"))?;
        }
        // Durability::Immediate (redb's default): fsync before returning.
        let committed = tx.commit().map_err(self.err("commit"));
        if let Some(cache) = &self.cache {
            let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
            cache.invalidate(batch.iter().map(|(u, _)| u.0));
        }
        committed
    }

    fn read_visible(
        &self,
        user: UserId,
        before_ts: EventTime,
        out: &mut Vec<HistoryRecord>,
    ) -> Result<()> {
        if self.cache.is_some() {
            let shared = self.visible_shared(user, before_ts)?;
            out.clear();
            out.extend_from_slice(&shared);
            return Ok(());
        }
        self.read_from_file(user, before_ts, out)
    }

    fn visible_shared(&self, user: UserId, before_ts: EventTime) -> Result<SharedHistory> {
        let Some(cache) = &self.cache else {
            let mut out = Vec::new();
            self.read_from_file(user, before_ts, &mut out)?;
            return Ok(SharedHistory::new(Arc::new(out), before_ts));
        };
        let generation = {
            let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(records) = cache.get(user.0) {
                return Ok(SharedHistory::new(records, before_ts));
            }
            cache.generation
        };
        let mut all = Vec::new();
        self.read_from_file(user, EventTime(i64::MAX), &mut all)?;
        let all = Arc::new(all);
        cache.lock().unwrap_or_else(PoisonError::into_inner).insert(
            user.0,
            Arc::clone(&all),
            generation,
        );
        Ok(SharedHistory::new(all, before_ts))
    }

    fn count(&self, user: UserId) -> Result<usize> {
        let tx = self.db.begin_read().map_err(self.err("read"))?;
        let users = tx.open_table(USERS).map_err(self.err("read"))?;
        Ok(users
            .get(user.0)
            .map_err(self.err("read"))?
            .map_or(0, |v| v.value().0 as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Categories, Domain};
    use liverank_types::{AuthorId, CategoryId, DurationMs};

    fn record(at: i64, item: u64) -> HistoryRecord {
        HistoryRecord {
            ts: EventTime(at),
            available_at: EventTime(at),
            domain: Domain::Video,
            item,
            author: AuthorId(1),
            categories: Categories::one(CategoryId(0)),
            watch_ms: DurationMs(0),
            long_view: false,
            like: false,
            comment: false,
            gift: false,
        }
    }

    #[test]
    fn embedded_blocks_spill_trim_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let config = HistoryConfig::new(150);
        let user = UserId(9);
        {
            let store = EmbeddedStore::open(dir.path(), &config).unwrap();
            for chunk in (1..=200u64).collect::<Vec<_>>().chunks(30) {
                let batch: Vec<_> = chunk
                    .iter()
                    .map(|&i| (user, record(i as i64 * 10, i)))
                    .collect();
                store.append(&batch).unwrap();
            }
            // An old record lands in the middle: only the tail blocks are rewritten.
            store.append(&[(user, record(1_005, 1_000))]).unwrap();
            assert_eq!(store.count(user).unwrap(), 150);
            assert_eq!(store.total_records().unwrap(), 150);
        }
        let store = EmbeddedStore::open(dir.path(), &config).unwrap();
        let all = store.visible(user, EventTime(i64::MAX)).unwrap();
        let items: Vec<u64> = all.iter().map(|r| r.item).collect();
        let mut want: Vec<u64> = (52..=200).collect();
        want.insert(100 - 52 + 1, 1_000);
        assert_eq!(items, want);
        assert_eq!(store.users().unwrap(), 1);
        // Point in time stops inside a block.
        let early = store.visible(user, EventTime(601)).unwrap();
        assert_eq!(early.len(), 60 - 52 + 1);
    }

    #[test]
    fn read_only_opens_share_the_store_and_refuse_appends() {
        let dir = tempfile::tempdir().unwrap();
        let config = HistoryConfig::new(10);
        let missing = EmbeddedStore::open_read_only(dir.path(), &config).unwrap_err();
        assert!(
            missing.to_string().contains("no history store"),
            "{missing}"
        );
        {
            let writer = EmbeddedStore::open(dir.path(), &config).unwrap();
            writer
                .append(&[(UserId(1), record(1, 7)), (UserId(1), record(2, 8))])
                .unwrap();
            // A writer holds the file: readers wait for it to close.
            assert!(EmbeddedStore::open_read_only(dir.path(), &config).is_err());
        }
        let a = EmbeddedStore::open_read_only(dir.path(), &config).unwrap();
        let b = EmbeddedStore::open_read_only(dir.path(), &config).unwrap();
        for reader in [&a, &b] {
            let items: Vec<u64> = reader
                .visible(UserId(1), EventTime(i64::MAX))
                .unwrap()
                .iter()
                .map(|r| r.item)
                .collect();
            assert_eq!(items, [7, 8]);
        }
        let err = a.append(&[(UserId(1), record(3, 9))]).unwrap_err();
        assert!(matches!(err, HistoryError::ReadOnly { .. }), "{err}");
        assert_eq!(b.count(UserId(1)).unwrap(), 2);
    }

    #[test]
    fn embedded_cache_is_invalidated_by_appends_and_evicts_the_least_recent() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            EmbeddedStore::open(dir.path(), &HistoryConfig::new(10).with_cache_users(2)).unwrap();
        let (a, b, c) = (UserId(1), UserId(2), UserId(3));
        store
            .append(&[(a, record(1, 1)), (b, record(1, 2)), (c, record(1, 3))])
            .unwrap();
        for u in [a, b, a, c] {
            assert_eq!(store.visible(u, EventTime(i64::MAX)).unwrap().len(), 1);
        }
        {
            let cache = store.cache.as_ref().unwrap().lock().unwrap();
            let mut cached: Vec<u64> = cache.entries.keys().copied().collect();
            cached.sort_unstable();
            assert_eq!(cached, [1, 3], "b was the least recently read");
        }
        store.append(&[(a, record(2, 4))]).unwrap();
        let items: Vec<u64> = store
            .visible(a, EventTime(i64::MAX))
            .unwrap()
            .iter()
            .map(|r| r.item)
            .collect();
        assert_eq!(items, [1, 4], "the append dropped the stale copy");
        // A read that started before an append does not cache what it read.
        let generation = store.cache.as_ref().unwrap().lock().unwrap().generation;
        store.append(&[(b, record(3, 5))]).unwrap();
        store
            .cache
            .as_ref()
            .unwrap()
            .lock()
            .unwrap()
            .insert(b.0, Arc::new(Vec::new()), generation);
        assert_eq!(store.count(b).unwrap(), 2);
        assert_eq!(store.visible(b, EventTime(i64::MAX)).unwrap().len(), 2);
    }

    #[test]
    fn embedded_refuses_a_corrupt_block_with_its_location() {
        let dir = tempfile::tempdir().unwrap();
        let config = HistoryConfig::new(10).with_cache_users(0);
        let store = EmbeddedStore::open(dir.path(), &config).unwrap();
        store.append(&[(UserId(3), record(5, 1))]).unwrap();
        let Db::Write(db) = &store.db else {
            unreachable!("opened for writing")
        };
        let tx = db.begin_write().unwrap();
        {
            let mut blocks = tx.open_table(BLOCKS).unwrap();
            let mut value = blocks.get((3, 0)).unwrap().unwrap().value().to_vec();
            value[BLOCK_HEADER + 16] ^= 1;
            blocks.insert((3, 0), value.as_slice()).unwrap();
        }
        tx.commit().unwrap();
        let e = store.visible(UserId(3), EventTime(100)).unwrap_err();
        assert_eq!(e.class(), crate::ErrorClass::Corrupt);
        assert!(e.to_string().contains("user 3 block 0"), "{e}");
        assert!(e.to_string().contains("checksum"), "{e}");
    }
}

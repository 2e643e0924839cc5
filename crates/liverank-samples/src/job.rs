//! The exactly-once sample job: one loop that ties an event source, the engine, a sample
//! sink, a dead-letter sink and checkpoints together, so a file run, the online pipeline
//! and a Kafka consumer all resume the same way.
//!
//! The contract: a checkpoint stores the engine, the number of input records consumed
//! (`input_offset`) and the [`Positions`] both sinks reported after a durable sync. On
//! restart the sinks are cut back to those positions (whatever was written after the
//! checkpoint is produced again), the source seeks to the offset, and the restored engine
//! continues: the output equals an uninterrupted run's, record for record.
//!
//! The traits are small on purpose: a source that can seek to a record offset, sinks that
//! can make their output durable and report / cut back to a position. File
//! implementations live in `liverank-ingest` (`sample_files`).

use crate::checkpoint::{CheckpointError, Restored, read_checkpoint, write_checkpoint};
use crate::config::SampleConfig;
use crate::engine::{EngineCounters, FeatureContext, Output, RejectReason, SampleEngine};
use liverank_types::{Event, Sample};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A boxed error of a source or sink.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One record of an event source.
#[derive(Debug)]
pub enum SourceItem<R> {
    /// A valid event.
    Event(Event),
    /// A record the source could not turn into an event (to the dead letters).
    Rejected(R),
}

/// A source of events in arrival order whose records are numbered from 0.
pub trait EventSource {
    /// A record the source rejected (its position and reason).
    type Rejected;
    /// A failure of the source itself (ends the job).
    type Error: std::error::Error + Send + Sync + 'static;
    /// Positions the source so that the next record is record number `offset`.
    fn seek(&mut self, offset: u64) -> Result<(), Self::Error>;
    /// The next record; `None` at the end of a finite source.
    fn next_item(&mut self) -> Result<Option<SourceItem<Self::Rejected>>, Self::Error>;
}

/// Where samples go.
pub trait SampleSink {
    /// A failure of the sink.
    type Error: std::error::Error + Send + Sync + 'static;
    /// Prepares the output before the first write: `None` starts it empty, `Some(p)` cuts
    /// it back to a position `sync` returned before.
    fn restore(&mut self, position: Option<u64>) -> Result<(), Self::Error>;
    /// Appends one sample.
    fn write(&mut self, sample: Sample) -> Result<(), Self::Error>;
    /// Makes everything written durable and returns the position to checkpoint.
    fn sync(&mut self) -> Result<u64, Self::Error>;
}

/// Where rejected records and events go.
pub trait DeadLetterSink<R> {
    /// A failure of the sink.
    type Error: std::error::Error + Send + Sync + 'static;
    /// As [`SampleSink::restore`].
    fn restore(&mut self, position: Option<u64>) -> Result<(), Self::Error>;
    /// A record the source rejected.
    fn rejected_record(&mut self, record: &R) -> Result<(), Self::Error>;
    /// An event the engine rejected.
    fn rejected_event(&mut self, event: &Event, reason: &RejectReason) -> Result<(), Self::Error>;
    /// As [`SampleSink::sync`].
    fn sync(&mut self) -> Result<u64, Self::Error>;
}

/// The sink positions a checkpoint carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Positions {
    /// The sample sink's position.
    pub samples: u64,
    /// The dead-letter sink's position.
    pub dead_letters: u64,
}

const POSITIONS_TAG: &[u8; 4] = b"POS1";
/// Encoded length of [`Positions`].
pub const POSITIONS_LEN: usize = 20;

impl Positions {
    /// `POS1`, then both positions as little-endian `u64`.
    pub fn encode(&self) -> [u8; POSITIONS_LEN] {
        let mut b = [0u8; POSITIONS_LEN];
        b[..4].copy_from_slice(POSITIONS_TAG);
        b[4..12].copy_from_slice(&self.samples.to_le_bytes());
        b[12..].copy_from_slice(&self.dead_letters.to_le_bytes());
        b
    }

    /// The inverse of [`Positions::encode`]; anything but exactly its 20 bytes is an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let b: &[u8; POSITIONS_LEN] = bytes.try_into().map_err(|_| {
            format!(
                "sink positions are {} bytes, expected {POSITIONS_LEN}",
                bytes.len()
            )
        })?;
        if &b[..4] != POSITIONS_TAG {
            return Err("sink positions have an unknown tag".into());
        }
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(w)
        };
        Ok(Self {
            samples: word(4),
            dead_letters: word(12),
        })
    }
}

/// A checkpoint: what [`CheckpointStore::load`] returns.
#[derive(Debug)]
pub struct JobCheckpoint {
    /// The engine.
    pub engine: SampleEngine,
    /// Input records consumed.
    pub input_offset: u64,
    /// Sink positions after the durable sync.
    pub positions: Positions,
}

/// Where checkpoints are kept.
pub trait CheckpointStore {
    /// The last checkpoint, `None` when there is none.
    fn load(
        &mut self,
        context: Arc<FeatureContext>,
    ) -> Result<Option<JobCheckpoint>, CheckpointError>;
    /// Replaces the checkpoint, atomically.
    fn save(
        &mut self,
        engine: &SampleEngine,
        input_offset: u64,
        positions: Positions,
    ) -> Result<(), CheckpointError>;
}

/// Checkpoints in one file (see [`crate::checkpoint`]).
#[derive(Clone, Debug)]
pub struct FileCheckpoints {
    path: PathBuf,
}

impl FileCheckpoints {
    /// Checkpoints at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl CheckpointStore for FileCheckpoints {
    fn load(
        &mut self,
        context: Arc<FeatureContext>,
    ) -> Result<Option<JobCheckpoint>, CheckpointError> {
        let Some(Restored {
            engine,
            input_offset,
            extra,
        }) = read_checkpoint(&self.path, context)?
        else {
            return Ok(None);
        };
        let positions = Positions::decode(&extra).map_err(|reason| CheckpointError::Corrupt {
            path: self.path.clone(),
            reason,
        })?;
        Ok(Some(JobCheckpoint {
            engine,
            input_offset,
            positions,
        }))
    }

    fn save(
        &mut self,
        engine: &SampleEngine,
        input_offset: u64,
        positions: Positions,
    ) -> Result<(), CheckpointError> {
        write_checkpoint(&self.path, engine, input_offset, &positions.encode())
    }
}

/// Why a job stopped.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The event source failed.
    #[error("event source: {0}")]
    Source(#[source] BoxError),
    /// The sample sink failed.
    #[error("sample output: {0}")]
    Samples(#[source] BoxError),
    /// The dead-letter sink failed.
    #[error("dead-letter output: {0}")]
    DeadLetters(#[source] BoxError),
    /// The checkpoint could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The checkpoint was made with another engine configuration.
    #[error("the checkpoint was made with other sample settings")]
    SettingsChanged,
}

/// How often a job checkpoints and reports progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobOptions {
    /// A checkpoint every this many input records (0: only at the end).
    pub checkpoint_every: u64,
    /// A progress call every this many input records (0: never).
    pub progress_every: u64,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            checkpoint_every: 500_000,
            progress_every: 65_536,
        }
    }
}

/// A finished job.
#[derive(Debug)]
pub struct JobResult {
    /// The engine after the end of input (counters, consistency tally).
    pub engine: SampleEngine,
    /// Input records consumed in all runs of the job together.
    pub input_records: u64,
    /// Whether this run continued from a checkpoint.
    pub resumed: bool,
}

/// The exactly-once loop over a source, the engine and two sinks.
#[derive(Debug)]
pub struct SampleJob<S, K, D, C> {
    engine: SampleEngine,
    source: S,
    samples: K,
    dead: D,
    checkpoints: C,
    options: JobOptions,
    offset: u64,
    resumed: bool,
}

impl<S, K, D, C> SampleJob<S, K, D, C>
where
    S: EventSource,
    K: SampleSink,
    D: DeadLetterSink<S::Rejected>,
    C: CheckpointStore,
{
    /// Opens a job: restores the checkpoint if there is one (it must have been made with
    /// `config`), cuts the sinks back to its positions and seeks the source to its offset;
    /// otherwise starts a new engine with empty sinks. `config` must be valid.
    pub fn open(
        config: SampleConfig,
        context: Arc<FeatureContext>,
        mut source: S,
        mut samples: K,
        mut dead: D,
        mut checkpoints: C,
        options: JobOptions,
    ) -> Result<Self, JobError> {
        let (engine, offset, positions) = match checkpoints.load(context.clone())? {
            Some(c) => {
                if c.engine.config() != &config {
                    return Err(JobError::SettingsChanged);
                }
                (c.engine, c.input_offset, Some(c.positions))
            }
            None => (SampleEngine::new(config, context), 0, None),
        };
        samples
            .restore(positions.map(|p| p.samples))
            .map_err(|e| JobError::Samples(e.into()))?;
        dead.restore(positions.map(|p| p.dead_letters))
            .map_err(|e| JobError::DeadLetters(e.into()))?;
        if offset > 0 {
            source
                .seek(offset)
                .map_err(|e| JobError::Source(e.into()))?;
        }
        Ok(Self {
            engine,
            source,
            samples,
            dead,
            checkpoints,
            options,
            offset,
            resumed: positions.is_some(),
        })
    }

    /// The engine (its counters so far, its configuration).
    pub fn engine(&self) -> &SampleEngine {
        &self.engine
    }

    /// Input records consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Runs to the end of the source, checkpointing on the way and at the end;
    /// `progress` gets the offset and the counters every `progress_every` records.
    pub fn run(
        mut self,
        mut progress: impl FnMut(u64, &EngineCounters),
    ) -> Result<JobResult, JobError> {
        let mut out = Vec::new();
        let every = self.options.checkpoint_every;
        let report = self.options.progress_every;
        while let Some(item) = self
            .source
            .next_item()
            .map_err(|e| JobError::Source(e.into()))?
        {
            self.offset += 1;
            match item {
                SourceItem::Event(e) => self.engine.push(e, &mut out),
                SourceItem::Rejected(r) => self
                    .dead
                    .rejected_record(&r)
                    .map_err(|e| JobError::DeadLetters(e.into()))?,
            }
            self.write_out(&mut out)?;
            if every > 0 && self.offset.is_multiple_of(every) {
                self.checkpoint()?;
            }
            if report > 0 && self.offset.is_multiple_of(report) {
                progress(self.offset, self.engine.counters());
            }
        }
        self.engine.finish(&mut out);
        self.write_out(&mut out)?;
        self.checkpoint()?;
        Ok(JobResult {
            engine: self.engine,
            input_records: self.offset,
            resumed: self.resumed,
        })
    }

    fn write_out(&mut self, out: &mut Vec<Output>) -> Result<(), JobError> {
        for item in out.drain(..) {
            match item {
                Output::Sample(s) => self
                    .samples
                    .write(s)
                    .map_err(|e| JobError::Samples(e.into()))?,
                Output::Rejected { event, reason } => self
                    .dead
                    .rejected_event(&event, &reason)
                    .map_err(|e| JobError::DeadLetters(e.into()))?,
            }
        }
        Ok(())
    }

    /// Syncs both sinks, then replaces the checkpoint.
    fn checkpoint(&mut self) -> Result<(), JobError> {
        let positions = Positions {
            samples: self
                .samples
                .sync()
                .map_err(|e| JobError::Samples(e.into()))?,
            dead_letters: self
                .dead
                .sync()
                .map_err(|e| JobError::DeadLetters(e.into()))?,
        };
        self.checkpoints
            .save(&self.engine, self.offset, positions)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;
    use liverank_types::{
        DurationMs, EventId, EventKind, EventTime, ItemRef, LiveId, Page, RequestId, UserId,
    };

    /// Events in memory; fails once at record `fail_at` to stand in for a crash.
    struct VecSource {
        events: Vec<Event>,
        at: usize,
        fail_at: Option<usize>,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("source failed at {0}")]
    struct Crash(usize);

    impl EventSource for VecSource {
        type Rejected = String;
        type Error = Crash;
        fn seek(&mut self, offset: u64) -> Result<(), Crash> {
            self.at = offset as usize;
            Ok(())
        }
        fn next_item(&mut self) -> Result<Option<SourceItem<String>>, Crash> {
            if self.fail_at == Some(self.at) {
                return Err(Crash(self.at));
            }
            let item = self.events.get(self.at).map(|e| {
                if e.event_id.0 % 11 == 0 {
                    SourceItem::Rejected(format!("record {}", self.at))
                } else {
                    SourceItem::Event(e.clone())
                }
            });
            self.at += 1;
            Ok(item)
        }
    }

    /// Output kept in memory: what was synced survives a "crash", the rest does not.
    #[derive(Default)]
    struct VecSink {
        written: Vec<String>,
    }

    impl SampleSink for &mut VecSink {
        type Error = Crash;
        fn restore(&mut self, position: Option<u64>) -> Result<(), Crash> {
            self.written.truncate(position.unwrap_or(0) as usize);
            Ok(())
        }
        fn write(&mut self, s: Sample) -> Result<(), Crash> {
            self.written.push(format!("{} {:?}", s.sample_id, s.labels));
            Ok(())
        }
        fn sync(&mut self) -> Result<u64, Crash> {
            Ok(self.written.len() as u64)
        }
    }

    impl DeadLetterSink<String> for &mut VecSink {
        type Error = Crash;
        fn restore(&mut self, position: Option<u64>) -> Result<(), Crash> {
            self.written.truncate(position.unwrap_or(0) as usize);
            Ok(())
        }
        fn rejected_record(&mut self, r: &String) -> Result<(), Crash> {
            self.written.push(r.clone());
            Ok(())
        }
        fn rejected_event(&mut self, e: &Event, r: &RejectReason) -> Result<(), Crash> {
            self.written.push(format!("{} {r:?}", e.event_id.0));
            Ok(())
        }
        fn sync(&mut self) -> Result<u64, Crash> {
            Ok(self.written.len() as u64)
        }
    }

    fn stream() -> Vec<Event> {
        let mut events = Vec::new();
        let mut id = 0;
        let mut ev = |ts: i64, kind| {
            id += 1;
            Event {
                event_id: EventId(id),
                ts: EventTime(ts),
                kind,
            }
        };
        for k in 0..40u64 {
            let (user, live, t) = (UserId(k % 5), LiveId(k % 3), k as i64 * 17_000);
            let request_id = RequestId(k);
            events.push(ev(
                t,
                EventKind::Impression {
                    user,
                    item: ItemRef::Live(live),
                    request_id,
                    position: 0,
                    page: Page::Featured,
                },
            ));
            if k % 2 == 0 {
                events.push(ev(
                    t + 2_000,
                    EventKind::Enter {
                        user,
                        live,
                        request_id: Some(request_id),
                    },
                ));
                events.push(ev(t + 9_000, EventKind::Like { user, live }));
                let watch_ms = DurationMs(70_000);
                events.push(ev(
                    t + 72_000,
                    EventKind::Leave {
                        user,
                        live,
                        watch_ms,
                    },
                ));
            }
        }
        events.sort_by_key(|e| e.ts);
        // One late and one duplicate event for the dead letters.
        let dup = events
            .iter()
            .rev()
            .find(|e| e.event_id.0 % 11 != 0)
            .cloned();
        events.push(ev(
            0,
            EventKind::Like {
                user: UserId(1),
                live: LiveId(1),
            },
        ));
        events.extend(dup);
        events
    }

    fn run(
        dir: &Path,
        fail_at: Option<usize>,
        samples: &mut VecSink,
        dead: &mut VecSink,
    ) -> Result<JobResult, JobError> {
        let config = SampleConfig {
            policies: vec![
                liverank_types::Policy::Realtime,
                liverank_types::Policy::Complete,
            ],
            ..SampleConfig::default()
        };
        let source = VecSource {
            events: stream(),
            at: 0,
            fail_at,
        };
        let options = JobOptions {
            checkpoint_every: 7,
            progress_every: 0,
        };
        let checkpoints = FileCheckpoints::new(dir.join("checkpoint.bin"));
        SampleJob::open(
            config,
            Arc::default(),
            source,
            samples,
            dead,
            checkpoints,
            options,
        )?
        .run(|_, _| {})
    }

    #[test]
    fn a_job_crashed_anywhere_resumes_to_the_uninterrupted_output() {
        let dir = tempfile::tempdir().unwrap();
        let (mut samples, mut dead) = (VecSink::default(), VecSink::default());
        std::fs::create_dir_all(dir.path().join("r")).unwrap();
        let done = run(&dir.path().join("r"), None, &mut samples, &mut dead).unwrap();
        assert_eq!(done.input_records, stream().len() as u64);
        assert!(samples.written.len() > 20, "{}", samples.written.len());
        assert!(dead.written.iter().any(|d| d.contains("Late")));
        assert!(dead.written.iter().any(|d| d.contains("Duplicate")));
        assert!(dead.written.iter().any(|d| d.starts_with("record")));
        let expected = (samples.written.clone(), dead.written.clone());
        for crash in [1, 6, 7, 8, 30, 77, stream().len() - 1] {
            let case = dir.path().join(format!("crash-{crash}"));
            std::fs::create_dir_all(&case).unwrap();
            let (mut s, mut d) = (VecSink::default(), VecSink::default());
            // Unsynced output is lost in the crash: keep it here to be cut back.
            let err = run(&case, Some(crash), &mut s, &mut d).unwrap_err();
            assert!(matches!(err, JobError::Source(_)), "{err}");
            let again = run(&case, None, &mut s, &mut d).unwrap();
            assert!(again.resumed || crash < 7, "crash {crash}");
            assert_eq!((s.written, d.written), expected, "crash at {crash}");
        }
    }

    #[test]
    fn positions_round_trip_and_reject_anything_else() {
        let p = Positions {
            samples: 123_456_789_012,
            dead_letters: 7,
        };
        assert_eq!(Positions::decode(&p.encode()).unwrap(), p);
        let bytes = p.encode();
        for cut in 0..bytes.len() {
            let err = Positions::decode(&bytes[..cut]).unwrap_err();
            assert!(err.contains(&format!("{cut} bytes")), "{err}");
        }
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(Positions::decode(&long).is_err());
        let mut tag = bytes;
        tag[0] = b'X';
        assert!(Positions::decode(&tag).unwrap_err().contains("tag"));
    }

    #[test]
    fn a_short_or_corrupt_checkpoint_is_an_error_never_offset_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.bin");
        let engine = SampleEngine::new(SampleConfig::default(), Arc::default());
        let mut store = FileCheckpoints::new(&path);
        // The old hand parser read a 16-byte prefix and took a short buffer as 0.
        for extra in [&[][..], &[1, 2, 3][..], &[0; 16][..]] {
            write_checkpoint(&path, &engine, 5, extra).unwrap();
            let err = store.load(Arc::default()).unwrap_err();
            assert!(
                matches!(&err, CheckpointError::Corrupt { reason, .. } if reason.contains("sink positions")),
                "{err}"
            );
        }
        let p = Positions {
            samples: 3,
            dead_letters: 4,
        };
        store.save(&engine, 5, p).unwrap();
        let c = store.load(Arc::default()).unwrap().unwrap();
        assert_eq!((c.input_offset, c.positions), (5, p));
        // A torn file: every strict prefix is rejected.
        let bytes = std::fs::read(&path).unwrap();
        for cut in [0, 8, 12, 20, 31, 40, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            assert!(store.load(Arc::default()).is_err(), "prefix {cut}");
        }
        // And a job refuses to start from it.
        let source = VecSource {
            events: stream(),
            at: 0,
            fail_at: None,
        };
        let (mut s, mut d) = (VecSink::default(), VecSink::default());
        let job = SampleJob::open(
            SampleConfig::default(),
            Arc::default(),
            source,
            &mut s,
            &mut d,
            store,
            JobOptions::default(),
        );
        assert!(matches!(job, Err(JobError::Checkpoint(_))));
    }
}

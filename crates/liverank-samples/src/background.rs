//! A sample sink on its own thread: the job's loop (decode + engine) runs on one core
//! while encoding and writing run on the other.
//!
//! [`BackgroundSink`] wraps any [`SampleSink`]. `write` only appends to a batch; full
//! batches go to the writer thread over a bounded channel (so a slow disk slows the engine
//! instead of queueing without limit). `restore` and `sync` are barriers: they wait until
//! the thread has applied every earlier write, so the position `sync` returns covers all
//! samples written before it, exactly as the inner sink's would, and the job's
//! exactly-once contract is unchanged. A write that fails on the thread is reported by the
//! next `write`, `restore` or `sync`; after a failure the sink refuses everything.

use crate::job::SampleSink;
use liverank_types::Sample;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Samples per message to the writer thread.
pub const BACKGROUND_BATCH: usize = 1_024;
/// Batches in flight before `write` blocks.
const QUEUE_BATCHES: usize = 8;

/// A failure of a [`BackgroundSink`].
#[derive(Debug, thiserror::Error)]
pub enum BackgroundError<E: std::error::Error + 'static> {
    /// The inner sink failed.
    #[error(transparent)]
    Sink(E),
    /// The writer thread is gone (it panicked, or an earlier failure was already
    /// reported).
    #[error("the sample writer thread stopped{}", .0.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Stopped(Option<String>),
}

enum Command<E> {
    Write(Vec<Sample>),
    Restore(Option<u64>, SyncSender<Result<(), E>>),
    Sync(SyncSender<Result<u64, E>>),
}

/// A [`SampleSink`] whose inner sink runs on a thread of its own.
pub struct BackgroundSink<K: SampleSink> {
    tx: Option<SyncSender<Command<K::Error>>>,
    batch: Vec<Sample>,
    worker: Option<JoinHandle<Option<K::Error>>>,
    /// A failure already reported: everything after it is refused.
    failed: bool,
}

impl<K: SampleSink> std::fmt::Debug for BackgroundSink<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundSink")
            .field("buffered", &self.batch.len())
            .field("failed", &self.failed)
            .finish()
    }
}

impl<K> BackgroundSink<K>
where
    K: SampleSink + Send + 'static,
    K::Error: Send,
{
    /// Starts the writer thread with `sink`.
    pub fn new(sink: K) -> Self {
        let (tx, rx) = sync_channel(QUEUE_BATCHES);
        let worker = std::thread::Builder::new()
            .name("sample-writer".into())
            .spawn(move || serve(sink, rx))
            .expect("spawning the sample writer thread");
        Self {
            tx: Some(tx),
            batch: Vec::with_capacity(BACKGROUND_BATCH),
            worker: Some(worker),
            failed: false,
        }
    }

    fn send(&mut self, command: Command<K::Error>) -> Result<(), BackgroundError<K::Error>> {
        if self.failed {
            return Err(BackgroundError::Stopped(Some(
                "an earlier write failed".into(),
            )));
        }
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(command).is_ok());
        if sent { Ok(()) } else { Err(self.stopped()) }
    }

    /// The thread is gone: its stored error if it returned one, else why it stopped.
    fn stopped(&mut self) -> BackgroundError<K::Error> {
        self.failed = true;
        self.tx = None;
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(Some(e))) => BackgroundError::Sink(e),
            Some(Ok(None)) | None => BackgroundError::Stopped(None),
            Some(Err(panic)) => BackgroundError::Stopped(Some(panic_message(&panic))),
        }
    }

    fn flush_batch(&mut self) -> Result<(), BackgroundError<K::Error>> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BACKGROUND_BATCH));
        self.send(Command::Write(batch))
    }

    /// Sends `command` (after the pending batch) and waits for its answer.
    fn barrier<T>(
        &mut self,
        command: impl FnOnce(SyncSender<Result<T, K::Error>>) -> Command<K::Error>,
    ) -> Result<T, BackgroundError<K::Error>> {
        self.flush_batch()?;
        let (reply, answer) = sync_channel(1);
        self.send(command(reply))?;
        match answer.recv() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                self.failed = true;
                Err(BackgroundError::Sink(e))
            }
            Err(_) => Err(self.stopped()),
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panicked".into())
}

/// The writer thread: applies commands in order. After a failed write it drops further
/// writes and answers the next barrier with the error, then stops.
fn serve<K: SampleSink>(mut sink: K, rx: Receiver<Command<K::Error>>) -> Option<K::Error> {
    let mut failure: Option<K::Error> = None;
    for command in rx {
        match command {
            Command::Write(batch) => {
                if failure.is_some() {
                    continue;
                }
                for sample in batch {
                    if let Err(e) = sink.write(sample) {
                        failure = Some(e);
                        break;
                    }
                }
            }
            Command::Restore(position, reply) => {
                let result = match failure.take() {
                    Some(e) => Err(e),
                    None => sink.restore(position),
                };
                let failed = result.is_err();
                let _ = reply.send(result);
                if failed {
                    return None;
                }
            }
            Command::Sync(reply) => {
                let result = match failure.take() {
                    Some(e) => Err(e),
                    None => sink.sync(),
                };
                let failed = result.is_err();
                let _ = reply.send(result);
                if failed {
                    return None;
                }
            }
        }
    }
    failure
}

impl<K> SampleSink for BackgroundSink<K>
where
    K: SampleSink + Send + 'static,
    K::Error: Send,
{
    type Error = BackgroundError<K::Error>;

    fn restore(&mut self, position: Option<u64>) -> Result<(), Self::Error> {
        self.barrier(|reply| Command::Restore(position, reply))
    }

    fn write(&mut self, sample: Sample) -> Result<(), Self::Error> {
        if self.failed {
            return Err(BackgroundError::Stopped(Some(
                "an earlier write failed".into(),
            )));
        }
        self.batch.push(sample);
        if self.batch.len() >= BACKGROUND_BATCH {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<u64, Self::Error> {
        self.barrier(Command::Sync)
    }
}

impl<K: SampleSink> Drop for BackgroundSink<K> {
    fn drop(&mut self) {
        // Unsynced samples are dropped with the sink, as the inner sink's would be on a
        // crash: the checkpoint protocol produces them again.
        self.tx = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liverank_types::{EventTime, LabelMask, LiveId, Policy, RequestId, SampleKind, UserId};
    use std::sync::{Arc, Mutex};

    /// A sink that logs every call, and fails the write of one sample id.
    #[derive(Default)]
    struct Log {
        calls: Arc<Mutex<Vec<String>>>,
        fail_on: Option<u64>,
        written: u64,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("disk full at sample {0}")]
    struct Full(u64);

    impl SampleSink for Log {
        type Error = Full;
        fn restore(&mut self, position: Option<u64>) -> Result<(), Full> {
            self.written = position.unwrap_or(0);
            self.calls
                .lock()
                .unwrap()
                .push(format!("restore {position:?}"));
            Ok(())
        }
        fn write(&mut self, sample: Sample) -> Result<(), Full> {
            if self.fail_on == Some(sample.sample_id) {
                return Err(Full(sample.sample_id));
            }
            self.written += 1;
            self.calls
                .lock()
                .unwrap()
                .push(format!("write {}", sample.sample_id));
            Ok(())
        }
        fn sync(&mut self) -> Result<u64, Full> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("sync {}", self.written));
            Ok(self.written)
        }
    }

    fn sample(id: u64) -> Sample {
        Sample {
            sample_id: id,
            policy: Policy::Realtime,
            kind: SampleKind::Flush,
            seq: 0,
            ts: EventTime(id as i64),
            request_id: RequestId(1),
            live: LiveId(2),
            user: UserId(3),
            author: None,
            exposure_ts: EventTime(0),
            category: None,
            labels: LabelMask::default(),
            features: Arc::default(),
        }
    }

    /// What the inner sink sees through the background sink is exactly what it would see
    /// directly: the same calls in the same order, and the same positions returned.
    #[test]
    fn calls_arrive_in_order_and_barriers_cover_every_earlier_write() {
        let direct = Arc::new(Mutex::new(Vec::new()));
        let through = Arc::new(Mutex::new(Vec::new()));
        let mut a = Log {
            calls: direct.clone(),
            ..Log::default()
        };
        let mut b = BackgroundSink::new(Log {
            calls: through.clone(),
            ..Log::default()
        });
        // Batches that end mid-batch, exactly on a batch, and an empty interval.
        let plan = [3usize, BACKGROUND_BATCH, 0, BACKGROUND_BATCH * 2 + 5];
        let mut id = 0;
        a.restore(Some(7)).unwrap();
        b.restore(Some(7)).unwrap();
        for n in plan {
            for _ in 0..n {
                a.write(sample(id)).unwrap();
                b.write(sample(id)).unwrap();
                id += 1;
            }
            assert_eq!(a.sync().unwrap(), b.sync().unwrap());
        }
        drop(b);
        assert_eq!(*direct.lock().unwrap(), *through.lock().unwrap());
        assert_eq!(a.written, 7 + id);
    }

    #[test]
    fn a_failed_write_surfaces_at_the_next_barrier_and_the_sink_stays_failed() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let mut b = BackgroundSink::new(Log {
            calls: calls.clone(),
            fail_on: Some(5),
            ..Log::default()
        });
        // The failure is in the first batch; two whole batches follow it.
        for id in 0..(3 * BACKGROUND_BATCH as u64) {
            b.write(sample(id)).unwrap();
        }
        match b.sync() {
            Err(BackgroundError::Sink(Full(5))) => {}
            other => panic!("expected the inner error, got {other:?}"),
        }
        // Nothing after the failure reached the sink, and nothing is accepted now.
        assert!(calls.lock().unwrap().iter().all(|c| !c.starts_with("sync")));
        assert_eq!(calls.lock().unwrap().len(), 5);
        assert!(matches!(
            b.write(sample(11)),
            Err(BackgroundError::Stopped(_))
        ));
        assert!(matches!(b.sync(), Err(BackgroundError::Stopped(_))));
    }
}

//! Checkpoints: the engine's state plus the input offset, written atomically (temporary
//! file, fsync, rename, fsync of the directory) with a magic, a version and a CRC-32, so a
//! torn or corrupted checkpoint is detected instead of restored.

use crate::engine::{FeatureContext, SampleEngine};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"LRSCKPT\0";
/// Checkpoint format version.
pub const CHECKPOINT_VERSION: u32 = 2;

/// Checkpoint failures.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// File system.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not a valid checkpoint.
    #[error("{path}: {reason}")]
    Corrupt {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// What a checkpoint restores.
#[derive(Debug)]
pub struct Restored {
    /// The engine.
    pub engine: SampleEngine,
    /// Input records consumed before the checkpoint.
    pub input_offset: u64,
    /// Caller's opaque position data (e.g. output file lengths).
    pub extra: Vec<u8>,
}

/// Writes a checkpoint atomically.
pub fn write_checkpoint(
    path: &Path,
    engine: &SampleEngine,
    input_offset: u64,
    extra: &[u8],
) -> Result<(), CheckpointError> {
    let io = |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    };
    let state = engine
        .to_bytes()
        .map_err(|reason| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            reason,
        })?;
    let mut body = Vec::with_capacity(state.len() + extra.len() + 32);
    body.extend_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
    body.extend_from_slice(&input_offset.to_le_bytes());
    body.extend_from_slice(&(extra.len() as u64).to_le_bytes());
    body.extend_from_slice(extra);
    body.extend_from_slice(&state);
    let crc = crc32fast::hash(&body);
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(MAGIC).map_err(io)?;
        f.write_all(&crc.to_le_bytes()).map_err(io)?;
        f.write_all(&body).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

/// Reads a checkpoint; `None` when the file does not exist.
pub fn read_checkpoint(
    path: &Path,
    context: Arc<FeatureContext>,
) -> Result<Option<Restored>, CheckpointError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CheckpointError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let corrupt = |reason: &str| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if bytes.len() < 12 + 20 || &bytes[..8] != MAGIC {
        return Err(corrupt("not a liverank sample-engine checkpoint"));
    }
    let crc = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let body = &bytes[12..];
    if crc32fast::hash(body) != crc {
        return Err(corrupt("checksum mismatch (torn or corrupted checkpoint)"));
    }
    let word = |at: usize| -> [u8; 8] {
        let mut w = [0u8; 8];
        w.copy_from_slice(&body[at..at + 8]);
        w
    };
    let version = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
    if version != CHECKPOINT_VERSION {
        return Err(corrupt(&format!(
            "unsupported checkpoint version {version}"
        )));
    }
    let input_offset = u64::from_le_bytes(word(4));
    let extra_len = u64::from_le_bytes(word(12)) as usize;
    let rest = &body[20..];
    if extra_len > rest.len() {
        return Err(corrupt("truncated"));
    }
    let (extra, state) = rest.split_at(extra_len);
    let engine = SampleEngine::from_bytes(state, context).map_err(|reason| corrupt(&reason))?;
    Ok(Some(Restored {
        engine,
        input_offset,
        extra: extra.to_vec(),
    }))
}

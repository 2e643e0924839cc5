//! Durable file writes, the one implementation every crate uses: [`write_atomic`] replaces
//! a file so that a crash (or `kill -9`, or a full disk) leaves either the old content or
//! the new one, never a torn file, and no temporary file behind.
//!
//! The steps: a temporary file in the target's directory (same file system, so the rename
//! is atomic; a random name from `tempfile`, so two writers never share one), the content
//! written and `fsync`ed, the rename over the target, then an `fsync` of the directory so
//! the rename itself survives a power loss. On any error the temporary file is removed and
//! the target is untouched.
//!
//! Errors are plain [`std::io::Error`]s (the only source there is); callers attach the path
//! in their own error type.
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("state.bin");
//! liverank_fs::write_atomic_bytes(&path, b"v1")?;
//! liverank_fs::write_atomic(&path, |w| w.write_all(b"v2"))?;
//! assert_eq!(std::fs::read(&path)?, b"v2");
//! assert_eq!(std::fs::read_dir(dir.path())?.count(), 1); // no temporary file left
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Atomically replaces (or creates) `path` with what `write` writes (see the crate doc).
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    if path.file_name().is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no file name", path.display()),
        ));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Dropping `tmp` on any early return removes the temporary file.
    let tmp = tempfile::Builder::new()
        .prefix(".liverank-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    {
        let mut out = BufWriter::new(tmp.as_file());
        write(&mut out)?;
        out.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// [`write_atomic`] of a byte buffer.
pub fn write_atomic_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, |w| w.write_all(bytes))
}

/// Makes a rename in `dir` durable. Only Unix can open and fsync a directory.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        write_atomic_bytes(&path, b"old").unwrap();
        let err = write_atomic(&path, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("disk on fire"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["a.bin"]);
    }

    #[test]
    fn a_large_write_lands_whole_and_a_relative_path_works() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        write_atomic(&path, |w| {
            for chunk in data.chunks(4096) {
                w.write_all(chunk)?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
        assert_eq!(names(dir.path()), ["big.bin"]);
        assert!(write_atomic_bytes(Path::new("/"), b"x").is_err());
    }

    #[test]
    fn a_missing_directory_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/a.bin");
        assert_eq!(
            write_atomic_bytes(&path, b"x").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}

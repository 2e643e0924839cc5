//! JSON Lines: one event (or table row) per line, read and written as a stream.

use crate::error::{IngestError, Result};
use crate::record::{Position, ReadError, RecordError, RecordErrorKind};
use liverank_types::{Event, EventRecord};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;

/// Streams events from JSON Lines, one line at a time into a reused buffer.
///
/// Each line yields an event or a [`ReadError::Record`] (bad JSON, invalid UTF-8, an
/// unknown type, a validation failure), and reading goes on; a failure of the input itself
/// yields one [`ReadError::Fatal`], after which the iterator ends.
#[derive(Debug)]
pub struct JsonlEventReader<R> {
    input: R,
    source: String,
    line: u64,
    buf: Vec<u8>,
    failed: bool,
    max_line_bytes: usize,
}

/// Default longest line [`JsonlEventReader`] accepts: 1 MiB, far above any real event.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// How much of an overlong line is kept as the `raw` of its record error.
const OVERLONG_RAW_BYTES: usize = 1_024;

impl<R: BufRead> JsonlEventReader<R> {
    /// A reader of `input`; `source` names it in errors (usually the file path).
    pub fn new(input: R, source: impl Into<String>) -> Self {
        Self {
            input,
            source: source.into(),
            line: 0,
            buf: Vec::with_capacity(256),
            failed: false,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }

    /// Sets the longest accepted line (default [`DEFAULT_MAX_LINE_BYTES`]); a longer line
    /// is a malformed record and is skipped without being held in memory, so a file
    /// without newlines cannot exhaust memory.
    pub fn with_max_line_bytes(mut self, max_line_bytes: usize) -> Self {
        self.max_line_bytes = max_line_bytes.max(1);
        self
    }

    /// Ends the stream with a fatal I/O error.
    fn fatal(&mut self, e: std::io::Error) -> Option<std::result::Result<Event, ReadError>> {
        self.failed = true;
        let path = PathBuf::from(&self.source);
        Some(Err(ReadError::Fatal(IngestError::io(path, e))))
    }

    /// Discards input up to and including the next newline.
    fn skip_rest_of_line(&mut self) -> std::io::Result<()> {
        loop {
            let available = match self.input.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                return Ok(());
            }
            match available.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.input.consume(i + 1);
                    return Ok(());
                }
                None => {
                    let n = available.len();
                    self.input.consume(n);
                }
            }
        }
    }

    /// The 1-based number of the last line read.
    pub fn line(&self) -> u64 {
        self.line
    }
}

/// Parses one JSON line into an event, classifying failures.
pub fn parse_event_line(text: &str) -> std::result::Result<Event, (RecordErrorKind, String)> {
    // Two steps so a validation failure is told apart from a syntax error.
    let record: EventRecord =
        serde_json::from_str(text).map_err(|e| (RecordErrorKind::Malformed, e.to_string()))?;
    Event::try_from(record).map_err(|e| (RecordErrorKind::Invalid, e.to_string()))
}

impl<R: BufRead> Iterator for JsonlEventReader<R> {
    type Item = std::result::Result<Event, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            self.buf.clear();
            // At most one byte past the limit, so an overlong line is seen, not buffered.
            let limit = self.max_line_bytes as u64 + 1;
            let read = (&mut self.input)
                .take(limit)
                .read_until(b'\n', &mut self.buf);
            match read {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return self.fatal(e),
            }
            self.line += 1;
            if self.buf.len() as u64 == limit && self.buf.last() != Some(&b'\n') {
                if let Err(e) = self.skip_rest_of_line() {
                    return self.fatal(e);
                }
                let head = &self.buf[..OVERLONG_RAW_BYTES.min(self.buf.len())];
                return Some(Err(ReadError::Record(RecordError {
                    source: self.source.clone(),
                    position: Position::Line(self.line),
                    kind: RecordErrorKind::Malformed,
                    reason: format!("line is longer than {} bytes", self.max_line_bytes),
                    raw: Some(format!("{}...", String::from_utf8_lossy(head))),
                })));
            }
            while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
                self.buf.pop();
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let error = |kind, reason: String, raw: String| {
                ReadError::Record(RecordError {
                    source: self.source.clone(),
                    position: Position::Line(self.line),
                    kind,
                    reason,
                    raw: Some(raw),
                })
            };
            let text = match std::str::from_utf8(&self.buf) {
                Ok(t) => t,
                Err(e) => {
                    let raw = String::from_utf8_lossy(&self.buf).into_owned();
                    let reason = format!("invalid UTF-8: {e}");
                    return Some(Err(error(RecordErrorKind::Malformed, reason, raw)));
                }
            };
            return Some(
                parse_event_line(text)
                    .map_err(|(kind, reason)| error(kind, reason, text.to_string())),
            );
        }
    }
}

/// Writes events as JSON Lines.
#[derive(Debug)]
pub struct JsonlEventWriter<W: Write> {
    output: W,
    path: PathBuf,
    buf: Vec<u8>,
}

impl<W: Write> JsonlEventWriter<W> {
    /// A writer into `output`; `path` names it in errors.
    pub fn new(output: W, path: impl Into<PathBuf>) -> Self {
        Self {
            output,
            path: path.into(),
            buf: Vec::with_capacity(256),
        }
    }

    /// Appends one event.
    pub fn write(&mut self, event: &Event) -> Result<()> {
        self.write_record(&EventRecord::from(event))
    }

    /// Appends one flat record as is (it may be invalid: fault injection uses this).
    pub fn write_record(&mut self, record: &EventRecord) -> Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, record)
            .map_err(|e| IngestError::encode(self.path.clone(), e))?;
        self.buf.push(b'\n');
        self.output
            .write_all(&self.buf)
            .map_err(|e| IngestError::io(&self.path, e))
    }

    /// Appends a raw line (fault injection: broken JSON). A newline is added.
    pub fn write_raw_line(&mut self, line: &str) -> Result<()> {
        let mut out = || {
            self.output.write_all(line.as_bytes())?;
            self.output.write_all(b"\n")
        };
        out().map_err(|e| IngestError::io(&self.path, e))
    }

    /// The file this writer writes.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        self.output
            .flush()
            .map_err(|e| IngestError::io(&self.path, e))?;
        Ok(self.output)
    }
}

/// Writes serde rows as JSON Lines (entity tables, ground truth).
pub fn write_jsonl_rows<T: Serialize, W: Write>(
    mut output: W,
    path: &std::path::Path,
    rows: &[T],
) -> Result<()> {
    for row in rows {
        serde_json::to_writer(&mut output, row)
            .map_err(|e| IngestError::encode(path.to_path_buf(), e))?;
        output
            .write_all(b"\n")
            .map_err(|e| IngestError::io(path, e))?;
    }
    output.flush().map_err(|e| IngestError::io(path, e))
}

/// Reads serde rows from JSON Lines; the first bad line is a schema error naming it.
pub fn read_jsonl_rows<T: DeserializeOwned, R: BufRead>(
    input: R,
    path: &std::path::Path,
) -> Result<Vec<T>> {
    let mut rows = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| IngestError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let row = serde_json::from_str(&line).map_err(|e| IngestError::Schema {
            path: path.to_path_buf(),
            reason: format!("line {}: {e}", i + 1),
            source: Some(Box::new(e)),
        })?;
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    /// Yields `data`, then fails like a broken disk.
    struct FailAfter<'a> {
        data: &'a [u8],
    }

    impl Read for FailAfter<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.data.is_empty() {
                return Err(std::io::Error::other("device gone"));
            }
            let n = self.data.read(out)?;
            Ok(n)
        }
    }

    const LIKE: &str = r#"{"event_id":1,"ts":5,"type":"like","user":1,"live":2}"#;

    #[test]
    fn io_failure_is_fatal_and_distinct_from_a_bad_record() {
        let data = format!("{LIKE}\n{{bad\n");
        let input = BufReader::new(FailAfter {
            data: data.as_bytes(),
        });
        let items: Vec<_> = JsonlEventReader::new(input, "disk.jsonl").collect();
        assert_eq!(items.len(), 3, "the reader ends after a fatal error");
        assert!(items[0].is_ok());
        assert!(matches!(&items[1], Err(ReadError::Record(r)) if r.position == Position::Line(2)));
        match &items[2] {
            Err(ReadError::Fatal(e)) => {
                assert_eq!(e.fault(), crate::Fault::External);
                assert!(e.to_string().contains("disk.jsonl: device gone"), "{e}");
            }
            other => panic!("expected a fatal error, got {other:?}"),
        }
    }

    #[test]
    fn crlf_blank_lines_and_a_missing_final_newline_are_fine() {
        let data = format!("\r\n{LIKE}\r\n   \n{LIKE}");
        let mut r = JsonlEventReader::new(data.as_bytes(), "crlf.jsonl");
        assert!(r.next().unwrap().is_ok());
        assert_eq!(r.line(), 2);
        assert!(r.next().unwrap().is_ok());
        assert_eq!(r.line(), 4);
        assert!(r.next().is_none());
    }

    #[test]
    fn malformed_and_invalid_are_told_apart() {
        let data = concat!(
            r#"{"event_id":1,"ts":5,"type":"like","user":"one","live":2}"#,
            "\n",
            r#"{"event_id":1,"ts":5,"type":"like","user":1}"#,
            "\n",
            r#"{"event_id":1,"ts":5,"user":1,"live":2}"#,
            "\n",
        );
        let kinds: Vec<_> = JsonlEventReader::new(data.as_bytes(), "k.jsonl")
            .map(|item| match item {
                Err(ReadError::Record(r)) => (r.kind, r.to_string()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds[0].0, RecordErrorKind::Malformed, "{}", kinds[0].1);
        assert_eq!(kinds[1].0, RecordErrorKind::Invalid);
        assert_eq!(
            kinds[1].1,
            "k.jsonl:2: `like` event is missing required field `live`"
        );
        assert_eq!(kinds[2].0, RecordErrorKind::Invalid);
        assert!(
            kinds[2].1.ends_with("missing field `type`"),
            "{}",
            kinds[2].1
        );
    }

    #[test]
    fn an_overlong_line_is_a_record_error_and_reading_goes_on() {
        let long = format!("{{\"pad\":\"{}\"}}", "x".repeat(5_000));
        let data = format!("{LIKE}\n{long}\n{LIKE}\n{long}");
        // A tiny internal buffer, so the skip crosses many refills.
        let input = std::io::BufReader::with_capacity(16, data.as_bytes());
        let items: Vec<_> = JsonlEventReader::new(input, "long.jsonl")
            .with_max_line_bytes(LIKE.len() + 1)
            .collect();
        assert_eq!(items.len(), 4);
        assert!(items[0].is_ok() && items[2].is_ok());
        for (i, line) in [(1, 2), (3, 4)] {
            match &items[i] {
                Err(ReadError::Record(r)) => {
                    assert_eq!(r.position, Position::Line(line));
                    assert_eq!(r.kind, RecordErrorKind::Malformed);
                    assert!(r.reason.contains("longer than"), "{}", r.reason);
                    assert!(r.raw.as_deref().is_some_and(|raw| raw.len() < 100));
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

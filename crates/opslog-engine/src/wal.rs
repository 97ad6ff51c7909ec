//! Op files (`ops/*.jsonl`): one operation per line, appended; undo truncates.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::batch::{Batch, OpsBuilder};
use super::error::{Error, Result};
use super::lines::{self, Lines};
use super::op::Op;

/// A valid op read from a file, with where its line starts.
#[derive(Debug, Clone)]
pub struct LoggedOp {
    pub op: Op,
    pub line: std::sync::Arc<str>,
    /// Byte offset of the line's start in the op file (its position once written).
    pub pos: u64,
}

impl LoggedOp {
    /// Appends the op's line as an op file holds it (with its newline) to `bytes`; returns
    /// where in them it starts.
    pub fn write_line_to(&self, bytes: &mut Vec<u8>) -> u64 {
        let at = bytes.len() as u64;
        bytes.extend_from_slice(self.line.as_bytes());
        bytes.push(b'\n');
        at
    }
}

#[derive(Debug, Default)]
pub struct ReadResult {
    pub ops: Vec<LoggedOp>,
    /// Complete lines that were not JSON or failed validation.
    pub skipped: usize,
    /// Whether the last line lacks its newline and does not parse: torn by a crash, or still
    /// being written by another process.
    pub torn: bool,
    /// Length of the file up to the end of its last complete line.
    pub complete_len: u64,
    /// Whether the file ends in a complete line that lacks its newline.
    pub missing_newline: bool,
    /// Lines read with U+FFFD in place of bytes that are not UTF-8.
    pub not_utf8: usize,
    /// The file does not exist (read as empty).
    pub missing: bool,
}

/// Parses op lines from `bytes`, which start at byte `base` of the file.
pub fn parse_lines(bytes: &[u8], base: u64) -> ReadResult {
    let mut result = ReadResult {
        complete_len: base,
        ..Default::default()
    };
    let mut start = 0usize;
    while start < bytes.len() {
        let (end, complete) = match memchr::memchr(b'\n', &bytes[start..]) {
            Some(i) => (start + i, true),
            None => (bytes.len(), false),
        };
        let text = lines::text(&bytes[start..end]);
        result.not_utf8 += usize::from(matches!(text, std::borrow::Cow::Owned(_)));
        let line = text.trim();
        if !line.is_empty() {
            match Op::parse(line) {
                Ok(op) => {
                    result.ops.push(LoggedOp {
                        op,
                        line: line.into(),
                        pos: base + start as u64,
                    });
                    if !complete {
                        result.missing_newline = true;
                        result.complete_len = base + end as u64;
                    }
                }
                Err(_) if complete => result.skipped += 1,
                Err(_) => result.torn = true,
            }
        }
        if complete {
            result.complete_len = base + end as u64 + 1;
        }
        start = end + 1;
    }
    result
}

/// Reads every valid op of a file; a missing file reads as empty, as in the reference.
pub fn read(path: &Path) -> Result<ReadResult> {
    read_from(path, 0)
}

/// Reads the ops that start at or after byte `from` (never part of a batch `append_whole` is
/// writing).
pub fn read_from(path: &Path, from: u64) -> Result<ReadResult> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ReadResult {
                complete_len: from,
                missing: true,
                ..Default::default()
            })
        }
        Err(e) => return Err(Error::io("open", path.display().to_string(), e)),
    };
    let _held = FileLock::take(&file, false);
    let mut bytes = Vec::new();
    let mut reader = &file;
    reader
        .seek(SeekFrom::Start(from))
        .and_then(|_| reader.read_to_end(&mut bytes))
        .map_err(|e| Error::io("read", path.display().to_string(), e))?;
    Ok(parse_lines(&bytes, from))
}

pub fn warn_skipped(skipped: usize, shown_path: &str) {
    if skipped > 0 {
        eprintln!("opslog: skipped {skipped} malformed line(s) in {shown_path}");
    }
}

/// An advisory lock on an op file (`flock` on Unix), released when dropped: exclusive for a
/// writer's batch, shared for a reader. Where it cannot be taken (a file system without locks)
/// reading and writing go on without it.
struct FileLock<'a>(&'a File);

impl<'a> FileLock<'a> {
    fn take(file: &'a File, exclusive: bool) -> Option<Self> {
        let taken = if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        };
        taken.ok().map(|()| FileLock(file))
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Writes `bytes` at `len`, the end of `file`, and moves `len` past them.
fn append_at_end(file: &File, shown: &str, len: &mut u64, bytes: &[u8]) -> Result<()> {
    if let Err(e) = super::fsutil::write_all_at(file, bytes, *len) {
        // Leave no partial line behind: the op was not acknowledged.
        let _ = file.set_len(*len);
        return Err(Error::io("write", shown, e));
    }
    *len += bytes.len() as u64;
    Ok(())
}

/// The open op file of a writer: appends without reopening, truncates for undo.
#[derive(Debug)]
pub struct OpWriter {
    file: File,
    shown: String,
    /// Bytes in the file.
    pub len: u64,
}

impl OpWriter {
    pub fn create(path: &Path, shown: String) -> Result<Self> {
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io("open", &shown, e))?;
        Ok(OpWriter {
            file,
            shown,
            len: 0,
        })
    }

    /// Opens an existing op file for appending at `len`, cutting off a torn tail beyond it and
    /// ending a final line that lacks its newline.
    pub fn open(path: &Path, shown: String, read: &ReadResult) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io("open", &shown, e))?;
        let mut w = OpWriter {
            file,
            shown,
            len: read.complete_len,
        };
        let actual = w
            .file
            .metadata()
            .map_err(|e| Error::io("fstat", &w.shown, e))?
            .len();
        if actual != read.complete_len {
            w.truncate(read.complete_len)?;
        }
        if read.missing_newline {
            w.append(b"\n")?;
        }
        Ok(w)
    }

    pub fn append(&mut self, bytes: &[u8]) -> Result<()> {
        append_at_end(&self.file, &self.shown, &mut self.len, bytes)
    }

    /// `append` that readers of the file (`read_from`) see whole or not at all: a write becomes
    /// visible page by page, and a batch must not be seen in part. Held with `flock`, which
    /// readers take shared while they read.
    pub fn append_whole(&mut self, bytes: &[u8]) -> Result<()> {
        let _held = FileLock::take(&self.file, true);
        append_at_end(&self.file, &self.shown, &mut self.len, bytes)
    }

    pub fn truncate(&mut self, len: u64) -> Result<()> {
        self.file
            .set_len(len)
            .map_err(|e| Error::io("ftruncate", &self.shown, e))?;
        self.len = len;
        Ok(())
    }

    /// A second handle on the file, to fsync it without holding the writer.
    pub fn handle(&self) -> Result<File> {
        self.file
            .try_clone()
            .map_err(|e| Error::io("dup", &self.shown, e))
    }
}

/// Removes the last line of an op file (`truncateLastOp`): false when the file is missing or
/// empty. Works on bytes, so text before it is never cut.
pub fn truncate_last_line(path: &Path) -> Result<bool> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(_) => return Ok(false),
    };
    let shown = path.display().to_string();
    let size = file
        .metadata()
        .map_err(|e| Error::io("fstat", &shown, e))?
        .len();
    if size == 0 {
        return Ok(false);
    }
    // Scan back from before the final byte for the newline that ends the previous line.
    let mut end = size - 1;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        read_exact_at(&file, chunk, start).map_err(|e| Error::io("read", &shown, e))?;
        if let Some(i) = memchr::memrchr(b'\n', chunk) {
            file.set_len(start + i as u64 + 1)
                .map_err(|e| Error::io("ftruncate", &shown, e))?;
            return Ok(true);
        }
        end = start;
    }
    file.set_len(0)
        .map_err(|e| Error::io("ftruncate", &shown, e))?;
    Ok(true)
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, pos)
}

#[cfg(not(unix))]
fn read_exact_at(mut file: &File, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(pos))?;
    file.read_exact(buf)
}

/// The valid ops of a file, read one line at a time (bounded memory); a missing file is empty.
pub struct OpReader {
    lines: Option<Lines<File>>,
    shown: String,
}

impl OpReader {
    pub fn open(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let lines = match File::open(path) {
            Ok(f) => Some(Lines::with_capacity(1 << 16, f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("open", shown, e)),
        };
        Ok(OpReader { lines, shown })
    }
}

impl Iterator for OpReader {
    type Item = Result<LoggedOp>;

    fn next(&mut self) -> Option<Self::Item> {
        let lines = self.lines.as_mut()?;
        loop {
            let pos = lines.offset();
            let bytes = match lines.next_line() {
                Ok(Some(bytes)) => bytes,
                Ok(None) => {
                    self.lines = None;
                    return None;
                }
                Err(e) => return Some(Err(Error::io("read", &self.shown, e))),
            };
            let text = lines::text(bytes);
            let line = text.trim();
            if let Ok(op) = Op::parse(line) {
                return Some(Ok(LoggedOp {
                    op,
                    line: line.into(),
                    pos,
                }));
            }
        }
    }
}

/// A source of ops in order.
pub type OpIter = Box<dyn Iterator<Item = Result<LoggedOp>> + Send>;

/// Streams ops a batch at a time (for `getWalOps`): those with `ts > since`.
pub struct OpStream {
    ops: OpIter,
    since: Option<String>,
}

/// `getWalOps` from op lines already in memory (see `OpLog::lines_of`).
pub struct LinesStream(std::vec::IntoIter<std::sync::Arc<str>>);

impl LinesStream {
    pub fn new(lines: Vec<std::sync::Arc<str>>) -> Self {
        LinesStream(lines.into_iter())
    }

    pub fn next_batch(&mut self, max: usize) -> Option<Batch> {
        let mut out = OpsBuilder::new(max);
        while !out.is_full(max) {
            let Some(line) = self.0.next() else {
                break;
            };
            out.push(&line);
        }
        out.finish()
    }
}

impl OpStream {
    pub fn new(ops: OpIter, since: Option<String>) -> Self {
        OpStream { ops, since }
    }

    /// Up to `max` ops, or `None` at the end.
    pub fn next_batch(&mut self, max: usize) -> Result<Option<Batch>> {
        let mut out = OpsBuilder::new(max);
        while !out.is_full(max) {
            let Some(logged) = self.ops.next().transpose()? else {
                break;
            };
            if self.since.as_deref().is_some_and(|s| &*logged.op.ts <= s) {
                continue;
            }
            out.push(&logged.line);
        }
        Ok(out.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_dir;

    const A: &str = r#"{"ts":"t1","op":"set","id":"a","prev":null,"data":{}}"#;
    const B: &str = r#"{"ts":"t2","op":"delete","id":"a","prev":{}}"#;

    #[test]
    fn skips_malformed_and_tracks_positions() {
        let text = format!("{A}\nnot json\n{{\"ts\":\"x\"}}\n{B}\n");
        let r = parse_lines(text.as_bytes(), 0);
        assert_eq!(r.ops.len(), 2);
        assert_eq!(r.skipped, 2);
        assert_eq!(r.ops[0].pos, 0);
        assert_eq!(r.ops[1].pos as usize, text.find(B).unwrap());
        assert_eq!(r.complete_len as usize, text.len());
        assert!(!r.missing_newline);
    }

    #[test]
    fn torn_last_line_is_cut_and_next_append_is_clean() {
        let tmp = test_dir("wal-torn");
        let dir = tmp.path();
        let path = dir.join("ops.jsonl");
        std::fs::write(&path, format!("{A}\n{{\"ts\":\"t2\",\"op\":\"se")).unwrap();
        let r = read(&path).unwrap();
        assert_eq!((r.ops.len(), r.skipped, r.torn), (1, 0, true));
        let mut w = OpWriter::open(&path, "p".into(), &r).unwrap();
        w.append(format!("{B}\n").as_bytes()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{A}\n{B}\n")
        );
        // Undo the last op: truncate to its line start.
        let r = read(&path).unwrap();
        w.truncate(r.ops[1].pos).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{A}\n"));
    }

    #[test]
    fn complete_line_without_newline_gets_one() {
        let tmp = test_dir("wal2");
        let dir = tmp.path();
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("ops.jsonl");
        std::fs::write(&path, A).unwrap();
        let r = read(&path).unwrap();
        assert_eq!(r.ops.len(), 1);
        let mut w = OpWriter::open(&path, "p".into(), &r).unwrap();
        w.append(format!("{B}\n").as_bytes()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{A}\n{B}\n")
        );
    }

    #[test]
    fn truncate_last_line_cuts_bytes_not_characters() {
        let tmp = test_dir("wal4");
        let dir = tmp.path();
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("ops.jsonl");
        std::fs::write(&path, "{\"s\":\"ééé😀\"}\n{\"b\":1}\n").unwrap();
        assert!(truncate_last_line(&path).unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"s\":\"ééé😀\"}\n"
        );
        assert!(truncate_last_line(&path).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        assert!(!truncate_last_line(&path).unwrap());
        assert!(!truncate_last_line(&dir.join("missing")).unwrap());
    }

    #[test]
    fn stream_filters_by_ts() {
        let text = format!("{A}\n{B}\n");
        let tmp = test_dir("wal3");
        let dir = tmp.path();
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("ops.jsonl");
        std::fs::write(&path, text).unwrap();
        let mut s = OpStream::new(Box::new(OpReader::open(&path).unwrap()), Some("t1".into()));
        assert_eq!(
            s.next_batch(10).unwrap().unwrap().ops_text(),
            format!("[{B}]")
        );
        assert_eq!(s.next_batch(10).unwrap(), None);
    }
}

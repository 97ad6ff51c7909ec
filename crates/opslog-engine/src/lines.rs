//! The lines of a file, read through a buffer and each handed out where it lies in the buffer:
//! only a line that straddles two reads is copied (copying every line, as `read_until` does, was
//! a tenth of the snapshot stream's worker time).

use std::borrow::Cow;
use std::io::{self, BufRead, BufReader, Read};

pub struct Lines<R> {
    reader: BufReader<R>,
    /// Bytes of the buffer the line handed out last takes up: consumed at the next call.
    taken: usize,
    /// A line begun at the end of one read and ended in a later one.
    spill: Vec<u8>,
    /// Bytes handed out so far.
    offset: u64,
}

impl<R: Read> Lines<R> {
    /// Reads `inner` through a buffer of `capacity` bytes.
    pub fn with_capacity(capacity: usize, inner: R) -> Self {
        Self::new(BufReader::with_capacity(capacity, inner))
    }

    /// Reads on from where `reader` is.
    pub fn new(reader: BufReader<R>) -> Self {
        Lines {
            reader,
            taken: 0,
            spill: Vec::new(),
            offset: 0,
        }
    }

    /// The next line with its newline (the last line may have none), or `None` at the end.
    pub fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        self.reader.consume(std::mem::take(&mut self.taken));
        self.spill.clear();
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                self.offset += self.spill.len() as u64;
                return Ok((!self.spill.is_empty()).then_some(&self.spill[..]));
            }
            match memchr::memchr(b'\n', buf) {
                Some(end) if self.spill.is_empty() => {
                    self.taken = end + 1;
                    self.offset += self.taken as u64;
                    return Ok(Some(&self.reader.buffer()[..=end]));
                }
                Some(end) => {
                    self.spill.extend_from_slice(&buf[..=end]);
                    self.reader.consume(end + 1);
                    self.offset += self.spill.len() as u64;
                    return Ok(Some(&self.spill));
                }
                None => {
                    let len = buf.len();
                    self.spill.extend_from_slice(buf);
                    self.reader.consume(len);
                }
            }
        }
    }

    /// Bytes handed out so far: where the next line starts, from where reading began.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// A line's text: itself when it is UTF-8 (checked faster than `from_utf8_lossy` checks it),
/// else with U+FFFD for what is not.
pub fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns at most `chunk` bytes a read, as a pipe or a slow disk may.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn all_lines(data: &[u8], capacity: usize, chunk: usize) -> Vec<(u64, Vec<u8>)> {
        let mut lines = Lines::with_capacity(capacity, Trickle { data, chunk });
        let mut out = Vec::new();
        loop {
            let at = lines.offset();
            match lines.next_line().unwrap() {
                Some(line) => out.push((at, line.to_vec())),
                None => break,
            }
        }
        assert_eq!(lines.offset(), data.len() as u64, "every byte handed out");
        out
    }

    #[test]
    fn lines_come_whole_with_their_offsets_whatever_the_buffer_and_the_reads() {
        let data = b"first line\n\nthird, longer than the buffer is\nx\nno newline at the end";
        let mut expected = Vec::new();
        let mut at = 0u64;
        for line in data.split_inclusive(|&c| c == b'\n') {
            expected.push((at, line.to_vec()));
            at += line.len() as u64;
        }
        for capacity in [1, 2, 3, 7, 16, 64, 1 << 16] {
            for chunk in [1, 2, 5, 13, 1 << 16] {
                assert_eq!(
                    all_lines(data, capacity, chunk),
                    expected,
                    "capacity {capacity}, chunk {chunk}"
                );
            }
        }
    }

    #[test]
    fn an_empty_source_has_no_lines_and_a_lone_newline_one() {
        assert!(all_lines(b"", 8, 8).is_empty());
        assert_eq!(all_lines(b"\n", 8, 8), vec![(0, b"\n".to_vec())]);
    }

    #[test]
    fn text_is_borrowed_when_utf8_and_replaced_where_not() {
        assert!(matches!(text("é".as_bytes()), Cow::Borrowed("é")));
        assert_eq!(text(b"a\xffb"), "a\u{fffd}b");
    }
}

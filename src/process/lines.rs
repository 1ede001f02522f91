//! Splits what a child writes to stderr into the lines runjobs relays: each at most
//! `LINE_CAP` bytes, so one runaway line can flood neither a terminal nor a cron mail, nor
//! grow runjobs' memory; the rest of such a line is counted and dropped, with a mark.
//!
//! Fed in whatever pieces the pipe gives, so a thread reading a pipe to its end and the loop
//! that drains a command's pipes as they fill cut the same lines.

/// Bytes of one relayed stderr line at most.
pub const LINE_CAP: usize = 8 * 1024;

/// The line being gathered.
#[derive(Debug, Default)]
pub struct LineSplitter {
    line: Vec<u8>,
    /// Bytes of this line past `LINE_CAP`.
    dropped: u64,
}

impl LineSplitter {
    /// Takes the next bytes of the stream; hands each line they complete to `emit`.
    pub fn feed(&mut self, mut bytes: &[u8], emit: &mut dyn FnMut(String)) {
        while let Some(at) = memchr::memchr(b'\n', bytes) {
            self.take(&bytes[..at]);
            self.end_line(emit);
            bytes = &bytes[at + 1..];
        }
        self.take(bytes);
    }

    /// The stream ended: a last line without a newline is still a line.
    pub fn finish(&mut self, emit: &mut dyn FnMut(String)) {
        if !self.line.is_empty() || self.dropped > 0 {
            self.end_line(emit);
        }
    }

    fn take(&mut self, part: &[u8]) {
        let kept = part.len().min(LINE_CAP - self.line.len());
        self.line.extend_from_slice(&part[..kept]);
        self.dropped += (part.len() - kept) as u64;
    }

    fn end_line(&mut self, emit: &mut dyn FnMut(String)) {
        let mut text = String::from_utf8_lossy(&self.line).trim_end().to_owned();
        if self.dropped > 0 {
            text.push_str(&format!("…[line cut: {} more bytes]", self.dropped));
        }
        self.line.clear();
        self.dropped = 0;
        emit(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pieces: &[&[u8]]) -> Vec<String> {
        let mut lines = Vec::new();
        let mut splitter = LineSplitter::default();
        for piece in pieces {
            splitter.feed(piece, &mut |l| lines.push(l));
        }
        splitter.finish(&mut |l| lines.push(l));
        lines
    }

    #[test]
    fn lines_are_cut_wherever_the_pieces_end() {
        assert_eq!(
            split(&[b"a\nb", b"c\r\n\n", b"last"]),
            ["a", "bc", "", "last"]
        );
        assert_eq!(split(&[b"x\n"]), ["x"]);
        assert!(split(&[]).is_empty());
    }

    #[test]
    fn long_lines_keep_the_cap_and_count_the_rest() {
        let exact = vec![b'e'; LINE_CAP];
        assert_eq!(split(&[&exact, b"\n"]), [String::from_utf8(exact).unwrap()]);
        let long = vec![b'l'; LINE_CAP + 5];
        let lines = split(&[&long[..100], &long[100..], b"\nnext\n"]);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with("…[line cut: 5 more bytes]"));
        assert_eq!(lines[0].len(), LINE_CAP + "…[line cut: 5 more bytes]".len());
        assert_eq!(lines[1], "next");
    }
}

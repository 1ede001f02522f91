//! Reading a long-lived worker's answers: a thread per worker parses reply lines (and a
//! builtin worker's frames of rendered records) and passes them to its slot in chunks, so the
//! slot thread only does bookkeeping.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::process::ChildStdout;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use crate::exec::function::Protocol;
use crate::process::process_cpu_seconds;
use crate::record::{JournalRange, Rendered};
use crate::worker::protocol::{self, FrameHeader, OkBatch, Reply};

/// What the stdout reader thread passes on: a chunk of answers read together, and when.
/// A line that is not a reply is passed on as text.
pub(super) struct Chunk {
    pub replies: Vec<Result<Answer, String>>,
    pub at: Instant,
    /// The worker's CPU time then (seconds), when it could be read.
    pub cpu_s: Option<f64>,
}

pub(super) enum Answer {
    One(Reply),
    /// Answers of consecutive items that all succeeded (the Python shim's batches).
    Batch(OkBatch),
    /// A builtin worker's `ok` results of consecutive items, already rendered.
    Run(RenderedRun),
}

pub(super) struct RenderedRun {
    pub first: u64,
    pub count: u64,
    pub nanos: u64,
    pub records: Records,
}

/// Where a run's rendered records are.
pub(super) enum Records {
    /// They came through the pipe.
    Here(Rendered),
    /// The worker appended them to the journal.
    Journal(JournalRange),
}

/// Reads answer lines and passes them on in chunks (all lines already buffered go together),
/// parsing here so the slot thread only does bookkeeping. Ends at end of stream, which drops
/// the sender: the slot sees that as the worker going away.
pub(super) fn read_replies(
    stdout: ChildStdout,
    pid: u32,
    protocol: Protocol,
    journal: Option<Arc<File>>,
    tx: mpsc::Sender<Chunk>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = String::new();
    let mut replies = Vec::new();
    let mut parsed_buf = Vec::new();
    loop {
        line.clear();
        // Cap a line at 64 MiB: a worker printing endless text without a newline must not
        // take our memory with it (the line is then garbage and the worker is replaced).
        match (&mut reader).take(64 * 1024 * 1024).read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                // The usual answer of the Python shim: its outputs are kept as text, in one
                // buffer (the line's), for the slot to render as they are.
                if protocol == Protocol::Batched && line.starts_with("{\"first\"") {
                    match OkBatch::parse(std::mem::take(&mut line)) {
                        Ok(batch) => {
                            replies.push(Ok(Answer::Batch(batch)));
                            line = String::with_capacity(64 * 1024);
                        }
                        Err(back) => line = back,
                    }
                }
                let text = line.trim_end();
                if !text.is_empty() {
                    let parsed = match protocol {
                        Protocol::Lean => match FrameHeader::parse(text) {
                            Some(header) => match read_frame(&mut reader, header, &journal) {
                                Ok(run) => {
                                    replies.push(Ok(Answer::Run(run)));
                                    true
                                }
                                // The worker died while writing: what it sent whole still
                                // counts, and the slot learns why it died.
                                Err(FrameError::CutShort) => break,
                                Err(FrameError::Malformed) => false,
                            },
                            None => protocol::parse_error_reply(text)
                                .map(|r| replies.push(Ok(Answer::One(r))))
                                .is_some(),
                        },
                        Protocol::JsonLines | Protocol::Batched => {
                            parsed_buf.clear();
                            let ok = protocol::parse_json_replies(text, &mut parsed_buf);
                            replies.extend(parsed_buf.drain(..).map(|r| Ok(Answer::One(r))));
                            ok
                        }
                    };
                    if !parsed {
                        replies.push(Err(truncate(text, 200)));
                    }
                }
            }
        }
        if reader.buffer().is_empty() && !replies.is_empty() {
            let chunk = Chunk {
                replies: std::mem::take(&mut replies),
                at: Instant::now(),
                cpu_s: process_cpu_seconds(pid),
            };
            if tx.send(chunk).is_err() {
                return;
            }
        }
    }
    if !replies.is_empty() {
        let _ = tx.send(Chunk {
            replies,
            at: Instant::now(),
            cpu_s: process_cpu_seconds(pid),
        });
    }
}

/// Why an `R` frame could not be read.
enum FrameError {
    /// The stream ended inside it.
    CutShort,
    /// Its body is not the records its header announced.
    Malformed,
}

/// Reads the body of an `R` frame (`header.count` record lines), or takes note of where a
/// `J` frame's records are.
fn read_frame(
    reader: &mut impl Read,
    header: FrameHeader,
    journal: &Option<Arc<File>>,
) -> Result<RenderedRun, FrameError> {
    if let Some(offset) = header.journal_offset {
        // Only a worker told of the journal appends to it.
        let file = journal.as_ref().ok_or(FrameError::Malformed)?;
        return Ok(RenderedRun {
            first: header.first,
            count: header.count,
            nanos: header.nanos,
            records: Records::Journal(JournalRange {
                file: Arc::clone(file),
                offset,
                len: header.len,
            }),
        });
    }
    // Same cap as a line: a frame is at most what the worker buffered in a few ms.
    if header.len > 64 * 1024 * 1024 {
        return Err(FrameError::Malformed);
    }
    let mut bytes = Vec::with_capacity(header.len as usize);
    let read = reader.take(header.len).read_to_end(&mut bytes);
    if read.is_err() || bytes.len() as u64 != header.len {
        return Err(FrameError::CutShort);
    }
    match Rendered::from_lines(bytes) {
        Some(rendered) if rendered.len() as u64 == header.count => Ok(RenderedRun {
            first: header.first,
            count: header.count,
            nanos: header.nanos,
            records: Records::Here(rendered),
        }),
        _ => Err(FrameError::Malformed),
    }
}

pub(super) fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(first: u64, count: u64, body: &[u8]) -> (FrameHeader, &[u8]) {
        let header = FrameHeader {
            first,
            count,
            nanos: 10,
            len: body.len() as u64,
            journal_offset: None,
        };
        (header, body)
    }

    #[test]
    fn a_frame_holds_exactly_the_records_its_header_announces() {
        let (header, body) = frame(4, 2, b"{\"index\":4}\n{\"index\":5}\n");
        let run = read_frame(&mut &body[..], header, &None).ok().unwrap();
        let Records::Here(rendered) = run.records else {
            panic!("the records came with the frame");
        };
        assert_eq!((run.first, run.count, rendered.len()), (4, 2, 2));
        assert_eq!(rendered.json(1), b"{\"index\":5}");

        let (header, body) = frame(4, 3, b"{\"index\":4}\n{\"index\":5}\n");
        assert!(matches!(
            read_frame(&mut &body[..], header, &None),
            Err(FrameError::Malformed)
        ));
        let (header, body) = frame(4, 1, b"{\"index\":4}");
        assert!(matches!(
            read_frame(&mut &body[..], header, &None),
            Err(FrameError::Malformed)
        ));
    }

    #[test]
    fn a_journal_frame_points_into_the_journal_it_was_told_of() {
        let header = FrameHeader {
            first: 7,
            count: 3,
            nanos: 10,
            len: 40,
            journal_offset: Some(100),
        };
        let mut nothing: &[u8] = b"";
        assert!(
            matches!(
                read_frame(&mut nothing, header, &None),
                Err(FrameError::Malformed)
            ),
            "a worker not told of a journal cannot have written to it"
        );
        let journal = Some(Arc::new(tempfile::tempfile().unwrap()));
        let run = read_frame(&mut nothing, header, &journal).ok().unwrap();
        let Records::Journal(range) = run.records else {
            panic!("the records are in the journal");
        };
        assert_eq!(
            (run.first, run.count, range.offset, range.len),
            (7, 3, 100, 40)
        );
    }

    #[test]
    fn a_frame_cut_short_is_the_end_of_the_stream() {
        let (mut header, body) = frame(0, 2, b"{\"index\":0}\n{\"ind");
        header.len += 20;
        assert!(matches!(
            read_frame(&mut &body[..], header, &None),
            Err(FrameError::CutShort)
        ));
    }
}

//! The hidden `runjobs __worker` mode: a long-lived child process that runs one builtin on
//! every request line from stdin and answers on stdout (the framing is in `protocol`).
//!
//! It never decides about timeouts or retries (the parent does), and it exits when its stdin
//! closes or its parent dies.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::ops::Range;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::builtins::{self, Options};
use crate::exit_code;
use crate::process;
use crate::record::journal;
use crate::record::{JOURNAL_LINE_END, LINE_END, OkRecord, OkRecordWriter};
use crate::worker::protocol;

/// Answers are written at least this often, so the parent sees progress (and measures item
/// start times for timeouts) with at most this much delay.
const FLUSH_EVERY: Duration = Duration::from_millis(2);

/// Runs the worker; `run_start` is when runjobs' run started (`monotonic_nanos`), which the
/// records' `started_s` count from; `journal` is the run's journal, which `ok` records are
/// appended to.
pub fn run(
    builtin: &str,
    options_json: &str,
    run_start: Option<u64>,
    journal: Option<&Path>,
) -> ExitCode {
    let run_start = run_start.unwrap_or_else(protocol::monotonic_nanos);
    die_with_parent();
    let Some(builtin) = builtins::lookup(builtin) else {
        say!("runjobs worker: unknown builtin `{builtin}`");
        return exit_code::exit(exit_code::INVALID);
    };
    let options: Options = match serde_json::from_str::<Value>(options_json) {
        Ok(v) => Options {
            template: v.get("template").and_then(Value::as_str).map(str::to_owned),
        },
        Err(e) => {
            say!("runjobs worker: bad --options: {e}");
            return exit_code::exit(exit_code::INVALID);
        }
    };
    // Without the journal (it moved, say), records go through the pipe.
    // runjobs opened it first (refusing a symlink there); O_NOFOLLOW keeps it so.
    let journal = journal.and_then(|path| journal::open_to_append(Path::new(&path)));
    match serve(builtin, &options, run_start, journal) {
        Ok(()) => exit_code::exit(exit_code::OK),
        // The parent went away (broken pipe): nothing left to answer to.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => exit_code::exit(exit_code::OK),
        Err(e) => {
            say!("runjobs worker: {e}");
            exit_code::exit(exit_code::ITEMS_FAILED)
        }
    }
}

/// Answers waiting to be written, shared with the flusher thread.
///
/// Every answer lands here as soon as its item is done, and the flusher writes whatever is
/// here at least every `FLUSH_EVERY`. So while an item runs, every earlier answer reaches
/// runjobs within that time: if the item hangs, runjobs blames it, not an earlier item whose
/// answer sat in a buffer.
struct Outbox {
    pending: Mutex<Pending>,
    /// Held while writing (and while taking what to write), so answers stay in order; the
    /// worker meanwhile adds new answers to `pending`.
    writer: Mutex<Writer>,
}

/// The flusher's side: the batch being written, and the journal while it takes records.
struct Writer {
    batch: Batch,
    journal: Option<File>,
}

/// Answers to write in one go.
#[derive(Default, Clone)]
struct Batch {
    /// What goes through the pipe: reply lines and frames. A `J` frame's header is a
    /// placeholder until its records are in the journal.
    bytes: Vec<u8>,
    /// The records of the `J` frames, back to back, for the journal.
    records: Vec<u8>,
    /// The `J` frames.
    frames: Vec<JournalFrame>,
}

/// A closed `J` frame: its header's place in `Batch::bytes`, its records' in `records`.
#[derive(Clone)]
struct JournalFrame {
    header_at: usize,
    first: u64,
    count: u64,
    nanos: u64,
    records: Range<usize>,
}

struct Pending {
    batch: Batch,
    /// The frame being filled, if any.
    frame: Option<OpenFrame>,
    /// New frames go to the journal (until writing it fails).
    journaled: bool,
}

/// A frame whose header (a placeholder so far) sits at `header_at`; its records start at
/// `records_at` (in `Batch::records` for a `J` frame, right after the header for `R`).
struct OpenFrame {
    header_at: usize,
    records_at: usize,
    journaled: bool,
    first: u64,
    count: u64,
    nanos: u64,
}

impl Pending {
    /// Ends the open frame. An `R` frame's header is filled in now; a `J` frame's once its
    /// records are written.
    fn close_frame(&mut self) {
        let Some(frame) = self.frame.take() else {
            return;
        };
        let batch = &mut self.batch;
        if frame.journaled {
            batch.frames.push(JournalFrame {
                header_at: frame.header_at,
                first: frame.first,
                count: frame.count,
                nanos: frame.nanos,
                records: frame.records_at..batch.records.len(),
            });
        } else {
            let header = protocol::FrameHeader {
                first: frame.first,
                count: frame.count,
                nanos: frame.nanos,
                len: (batch.bytes.len() - frame.records_at) as u64,
                journal_offset: None,
            };
            header.write(&mut batch.bytes[frame.header_at..frame.records_at]);
        }
    }
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.records.clear();
        self.frames.clear();
    }

    /// Fills in the `J` headers: the records are in the journal from `base` on.
    fn journaled_at(&mut self, base: u64) {
        for frame in &self.frames {
            let header = protocol::FrameHeader {
                first: frame.first,
                count: frame.count,
                nanos: frame.nanos,
                len: frame.records.len() as u64,
                journal_offset: Some(base + frame.records.start as u64),
            };
            let width = protocol::FrameHeader::width(true);
            header.write(&mut self.bytes[frame.header_at..frame.header_at + width]);
        }
    }

    /// Turns the `J` frames into `R` frames carrying their records (the journal failed).
    fn inline_records(&mut self) {
        let mut bytes = Vec::with_capacity(self.bytes.len() + self.records.len());
        let mut from = 0;
        for frame in &self.frames {
            bytes.extend_from_slice(&self.bytes[from..frame.header_at]);
            let header_at = bytes.len();
            bytes.resize(header_at + protocol::FrameHeader::width(false), b' ');
            let records = &self.records[frame.records.clone()];
            let header = protocol::FrameHeader {
                first: frame.first,
                count: frame.count,
                nanos: frame.nanos,
                len: records.len() as u64,
                journal_offset: None,
            };
            header.write(&mut bytes[header_at..]);
            bytes.extend_from_slice(records);
            from = frame.header_at + protocol::FrameHeader::width(true);
        }
        bytes.extend_from_slice(&self.bytes[from..]);
        self.bytes = bytes;
        self.records.clear();
        self.frames.clear();
    }
}

impl Outbox {
    fn new(journal: Option<File>) -> Outbox {
        Outbox {
            pending: Mutex::new(Pending {
                batch: Batch::default(),
                frame: None,
                journaled: journal.is_some(),
            }),
            writer: Mutex::new(Writer {
                batch: Batch::default(),
                journal,
            }),
        }
    }

    /// Adds item `id`'s `ok` record to the open frame when it follows that frame's last item,
    /// else to a new frame. `render` writes the record, for the journal when told `true`.
    fn push_ok(&self, id: u64, nanos: u64, render: impl FnOnce(&mut Vec<u8>, bool)) {
        let mut pending = lock(&self.pending);
        let pending = &mut *pending;
        match &mut pending.frame {
            Some(frame) if frame.first + frame.count == id => {
                frame.count += 1;
                frame.nanos = frame.nanos.saturating_add(nanos);
            }
            _ => {
                pending.close_frame();
                let journaled = pending.journaled;
                let batch = &mut pending.batch;
                let header_at = batch.bytes.len();
                let width = protocol::FrameHeader::width(journaled);
                batch.bytes.resize(header_at + width, b' ');
                pending.frame = Some(OpenFrame {
                    header_at,
                    records_at: if journaled {
                        batch.records.len()
                    } else {
                        batch.bytes.len()
                    },
                    journaled,
                    first: id,
                    count: 1,
                    nanos,
                });
            }
        }
        let journaled = pending.frame.as_ref().is_some_and(|f| f.journaled);
        let batch = &mut pending.batch;
        render(
            if journaled {
                &mut batch.records
            } else {
                &mut batch.bytes
            },
            journaled,
        );
    }

    /// Adds a reply line of its own (an error).
    fn push_line(&self, line: &[u8]) {
        let mut pending = lock(&self.pending);
        pending.close_frame();
        pending.batch.bytes.extend_from_slice(line);
    }

    /// Writes out what is pending: records to the journal first, then the frames that say
    /// where they are.
    fn flush(&self) -> io::Result<()> {
        let mut writer = lock(&self.writer);
        let writer = &mut *writer;
        {
            let mut pending = lock(&self.pending);
            pending.close_frame();
            if pending.batch.is_empty() {
                return Ok(());
            }
            // Swapped, not copied: both batches keep their capacity.
            std::mem::swap(&mut writer.batch, &mut pending.batch);
        }
        let batch = &mut writer.batch;
        if !batch.frames.is_empty() {
            match writer
                .journal
                .as_mut()
                .map(|j| journal::append(j, &batch.records))
            {
                Some(Ok(base)) => batch.journaled_at(base),
                _ => {
                    // The journal's folder is full or gone: runjobs moves the journal when it
                    // next writes to it, and gets these records (and all later ones) here.
                    writer.journal = None;
                    lock(&self.pending).journaled = false;
                    batch.inline_records();
                }
            }
        }
        let mut stdout = io::stdout().lock();
        stdout.write_all(&batch.bytes)?;
        stdout.flush()?;
        batch.clear();
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn serve(
    builtin: &builtins::Builtin,
    options: &Options,
    run_start: u64,
    journal: Option<File>,
) -> io::Result<()> {
    let outbox = Arc::new(Outbox::new(journal));
    let flusher = Arc::clone(&outbox);
    thread::Builder::new()
        .name("flusher".into())
        .spawn(move || {
            loop {
                thread::sleep(FLUSH_EVERY);
                if flusher.flush().is_err() {
                    // runjobs is gone; the main loop sees it too.
                    return;
                }
            }
        })?;
    let mut runner = Runner {
        builtin,
        options,
        outbox: &outbox,
        records: OkRecordWriter::new(std::process::id(), LINE_END),
        journal_records: OkRecordWriter::new(std::process::id(), JOURNAL_LINE_END),
        run_start,
        last_end: protocol::monotonic_nanos(),
        last_slow: false,
        reply: Vec::with_capacity(256),
    };
    let mut input = BufReader::with_capacity(64 * 1024, io::stdin().lock());
    let mut line = Vec::new();
    loop {
        // Flush before a read that may block, so the parent is never left waiting for
        // answers that sit in our buffer.
        let will_wait = input.buffer().is_empty();
        if will_wait {
            outbox.flush()?;
        }
        let buffered = input.fill_buf()?;
        if buffered.is_empty() {
            return outbox.flush();
        }
        // Whole lines are run where they sit in the buffer; only the first may have waited
        // for its read.
        let mut consumed = 0;
        for newline in memchr::memchr_iter(b'\n', buffered) {
            runner.run_line(&buffered[consumed..=newline], will_wait && consumed == 0)?;
            consumed = newline + 1;
        }
        if consumed > 0 {
            input.consume(consumed);
        } else {
            // A line cut off by the end of the buffer (or of the input).
            line.clear();
            input.read_until(b'\n', &mut line)?;
            runner.run_line(&line, true)?;
        }
    }
}

/// Runs request lines one by one and puts their answers in the outbox.
struct Runner<'a> {
    builtin: &'a builtins::Builtin,
    options: &'a Options,
    outbox: &'a Outbox,
    records: OkRecordWriter,
    journal_records: OkRecordWriter,
    /// When runjobs' run started (`protocol::monotonic_nanos`).
    run_start: u64,
    /// When the previous item ended.
    last_end: u64,
    /// The previous item took long (`SLOW_NANOS` or more).
    last_slow: bool,
    reply: Vec<u8>,
}

/// An item this long makes the next one's CPU time worth measuring.
const SLOW_NANOS: u64 = 1_000_000;

impl Runner<'_> {
    /// Runs one request line (one item, or a run of them). An item whose line was already
    /// buffered starts when the previous item ended (one clock read per item instead of
    /// two); `after_read` says the line may have waited to be read, so its start is read
    /// from the clock.
    fn run_line(&mut self, line: &[u8], after_read: bool) -> io::Result<()> {
        let started = if after_read {
            protocol::monotonic_nanos()
        } else {
            self.last_end
        };
        // An item's CPU time costs two clock reads: it is taken for an item that came alone
        // (the worker waited for its line) or follows a slow one, which is where slow items
        // are; a stream of quick pipelined items is not slowed down to measure microseconds.
        let cpu_start = (after_read || self.last_slow).then(process::thread_cpu_nanos);
        if let Some(run) = protocol::parse_run_request(line) {
            let mut text = itoa::Buffer::new();
            self.run_item(
                run.first,
                1,
                text.format(run.start).as_bytes(),
                Ok(Value::from(run.start)),
                (started, cpu_start),
            );
            for k in 1..run.count {
                let input = run.input(k);
                let started = self.last_end;
                let cpu_start = self.last_slow.then(process::thread_cpu_nanos);
                self.run_item(
                    run.first + k,
                    1,
                    text.format(input).as_bytes(),
                    Ok(Value::from(input)),
                    (started, cpu_start),
                );
            }
            return Ok(());
        }
        let Some(request) = protocol::parse_request(line) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad request line {:?}", String::from_utf8_lossy(line)),
            ));
        };
        let input = protocol::parse_input(request.input);
        let start = (started, cpu_start);
        self.run_item(request.id, request.attempt, request.input, input, start);
        Ok(())
    }

    /// Runs item `id` (attempt `attempt`), whose input is `input` (`input_text` as JSON), and
    /// puts its answer in the outbox. It started at `started` (this thread's CPU time then,
    /// when it is measured).
    fn run_item(
        &mut self,
        id: u64,
        attempt: u32,
        input_text: &[u8],
        input: Result<Value, String>,
        (started, cpu_start): (u64, Option<u64>),
    ) {
        let result = input.and_then(|value| self.builtin.call(&value, self.options));
        if self.builtin.name == "print_number"
            && let Ok(Value::String(text)) = &result
        {
            // The Python original prints from each process; so does this builtin (on
            // stderr, as stdout carries the protocol). runjobs relays the line.
            say!("{text}");
        }
        let cpu_ns = cpu_start.map(|at| process::thread_cpu_nanos().saturating_sub(at));
        self.last_end = protocol::monotonic_nanos();
        let nanos = self.last_end.saturating_sub(started);
        self.last_slow = nanos >= SLOW_NANOS;
        match result {
            Ok(output) => {
                let record = OkRecord {
                    index: id,
                    input: input_text,
                    attempts: attempt,
                    started_ns: started.saturating_sub(self.run_start),
                    duration_ns: nanos,
                    cpu_ns,
                };
                self.outbox.push_ok(id, nanos, |out, journaled| {
                    let writer = if journaled {
                        &self.journal_records
                    } else {
                        &self.records
                    };
                    writer.write_line(out, &record, |out| write_output(out, &output))
                });
            }
            Err(message) => {
                self.reply.clear();
                protocol::write_error_reply(&mut self.reply, id, nanos, &message);
                self.outbox.push_line(&self.reply);
            }
        }
    }
}

/// Writes an output as JSON; integers, what most builtins return, skip the serializer.
fn write_output(out: &mut Vec<u8>, output: &Value) {
    if let Value::Number(n) = output
        && let Some(i) = n.as_i64()
    {
        out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
    } else {
        serde_json::to_writer(out, output).expect("a JSON value always serializes");
    }
}

/// Ask the kernel to kill this worker when runjobs dies, even by SIGKILL, so no worker is
/// ever orphaned; if the parent is already gone, exit now.
fn die_with_parent() {
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let expected = std::env::var("RUNJOBS_PARENT_PID")
        .ok()
        .and_then(|p| p.parse::<i32>().ok());
    let actual = rustix::process::getppid().map(|p| p.as_raw_nonzero().get());
    if expected.is_some() && expected != actual {
        std::process::exit(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::protocol::FrameHeader;

    /// Items 0, 1 and 5 ok (two frames), item 2 an error in between.
    fn outbox_with_answers() -> Outbox {
        let outbox = Outbox::new(Some(tempfile::tempfile().unwrap()));
        let record = |id: u64| {
            move |out: &mut Vec<u8>, journaled: bool| {
                let end: &[u8] = if journaled { b",\n" } else { b"\n" };
                out.extend_from_slice(format!("{{\"index\":{id}}}").as_bytes());
                out.extend_from_slice(end);
            }
        };
        outbox.push_ok(0, 10, record(0));
        outbox.push_ok(1, 10, record(1));
        outbox.push_line(b"2 e 5 \"bad\"\n");
        outbox.push_ok(5, 10, record(5));
        lock(&outbox.pending).close_frame();
        outbox
    }

    /// Splits what goes through the pipe into its lines and frame bodies.
    fn messages(mut bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(newline) = bytes.iter().position(|b| *b == b'\n') {
            let line = std::str::from_utf8(&bytes[..newline]).unwrap().to_owned();
            bytes = &bytes[newline + 1..];
            let body = match FrameHeader::parse(&line) {
                Some(h) if h.journal_offset.is_none() => {
                    let (body, rest) = bytes.split_at(h.len as usize);
                    bytes = rest;
                    body.to_vec()
                }
                _ => Vec::new(),
            };
            out.push((line, body));
        }
        assert!(bytes.is_empty());
        out
    }

    #[test]
    fn journal_frames_say_where_their_records_landed() {
        let outbox = outbox_with_answers();
        let mut batch = lock(&outbox.pending).batch.clone();
        assert_eq!(
            batch.records,
            b"{\"index\":0},\n{\"index\":1},\n{\"index\":5},\n"
        );
        batch.journaled_at(1000);
        let got = messages(&batch.bytes);
        assert_eq!(got.len(), 3);
        let first = FrameHeader::parse(&got[0].0).unwrap();
        assert_eq!(
            (
                first.first,
                first.count,
                first.nanos,
                first.len,
                first.journal_offset
            ),
            (0, 2, 20, 26, Some(1000))
        );
        assert_eq!(got[1].0, "2 e 5 \"bad\"");
        let last = FrameHeader::parse(&got[2].0).unwrap();
        assert_eq!(
            (last.first, last.count, last.len, last.journal_offset),
            (5, 1, 13, Some(1026))
        );
    }

    #[test]
    fn a_failed_journal_turns_its_frames_into_frames_that_carry_their_records() {
        let outbox = outbox_with_answers();
        let mut batch = lock(&outbox.pending).batch.clone();
        batch.inline_records();
        let got = messages(&batch.bytes);
        assert_eq!(got.len(), 3);
        let first = FrameHeader::parse(&got[0].0).unwrap();
        assert_eq!(
            (first.first, first.count, first.journal_offset),
            (0, 2, None)
        );
        assert_eq!(got[0].1, b"{\"index\":0},\n{\"index\":1},\n");
        assert_eq!(got[1].0, "2 e 5 \"bad\"");
        assert_eq!(got[2].1, b"{\"index\":5},\n");
        assert!(batch.records.is_empty() && batch.frames.is_empty());
    }
}

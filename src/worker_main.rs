//! The hidden `runjobs __worker` mode: a long-lived child process that runs one builtin on
//! every request line from stdin and answers on stdout (the framing is in `protocol`).
//!
//! It never decides about timeouts or retries (the parent does), and it exits when its stdin
//! closes or its parent dies.

use std::io::{self, BufRead, BufReader, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::builtins::{self, Options};
use crate::event::{OkRecord, OkRecordWriter};
use crate::exit_code;
use crate::protocol;

/// Answers are written at least this often, so the parent sees progress (and measures item
/// start times for timeouts) with at most this much delay.
const FLUSH_EVERY: Duration = Duration::from_millis(2);

/// Runs the worker; `run_start` is when runjobs' run started (`monotonic_nanos`), which the
/// records' `started_s` count from.
pub fn run(builtin: &str, options_json: &str, run_start: Option<u64>) -> ExitCode {
    let run_start = run_start.unwrap_or_else(protocol::monotonic_nanos);
    die_with_parent();
    let Some(builtin) = builtins::lookup(builtin) else {
        eprintln!("runjobs worker: unknown builtin `{builtin}`");
        return exit_code::exit(exit_code::INVALID);
    };
    let options: Options = match serde_json::from_str::<Value>(options_json) {
        Ok(v) => Options {
            template: v.get("template").and_then(Value::as_str).map(str::to_owned),
        },
        Err(e) => {
            eprintln!("runjobs worker: bad --options: {e}");
            return exit_code::exit(exit_code::INVALID);
        }
    };
    match serve(builtin, &options, run_start) {
        Ok(()) => exit_code::exit(exit_code::OK),
        // The parent went away (broken pipe): nothing left to answer to.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => exit_code::exit(exit_code::OK),
        Err(e) => {
            eprintln!("runjobs worker: {e}");
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
#[derive(Default)]
struct Outbox {
    pending: Mutex<Pending>,
    /// Held while writing (and while taking what to write), so answers stay in order; the
    /// worker meanwhile adds new answers to `pending`.
    writer: Mutex<Vec<u8>>,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    /// The `R` frame being filled at the end of `bytes`, if any.
    frame: Option<OpenFrame>,
}

/// An `R` frame whose header (a placeholder so far) sits at `header_at`.
struct OpenFrame {
    header_at: usize,
    first: u64,
    count: u64,
    nanos: u64,
}

impl Pending {
    /// Fills in the open frame's header: the frame is complete.
    fn close_frame(&mut self) {
        if let Some(frame) = self.frame.take() {
            let at = frame.header_at..frame.header_at + protocol::FRAME_HEADER_LEN;
            let header = protocol::FrameHeader {
                first: frame.first,
                count: frame.count,
                nanos: frame.nanos,
                len: (self.bytes.len() - at.end) as u64,
            };
            header.write(&mut self.bytes[at]);
        }
    }
}

impl Outbox {
    /// Adds item `id`'s `ok` record (rendered by `render`) to the open frame when it follows
    /// that frame's last item, else to a new frame.
    fn push_ok(&self, id: u64, nanos: u64, render: impl FnOnce(&mut Vec<u8>)) {
        let mut pending = lock(&self.pending);
        match &mut pending.frame {
            Some(frame) if frame.first + frame.count == id => {
                frame.count += 1;
                frame.nanos = frame.nanos.saturating_add(nanos);
            }
            _ => {
                pending.close_frame();
                let header_at = pending.bytes.len();
                pending
                    .bytes
                    .resize(header_at + protocol::FRAME_HEADER_LEN, b' ');
                pending.frame = Some(OpenFrame {
                    header_at,
                    first: id,
                    count: 1,
                    nanos,
                });
            }
        }
        render(&mut pending.bytes);
    }

    /// Adds a reply line of its own (an error).
    fn push_line(&self, line: &[u8]) {
        let mut pending = lock(&self.pending);
        pending.close_frame();
        pending.bytes.extend_from_slice(line);
    }

    /// Writes out what is pending.
    fn flush(&self) -> io::Result<()> {
        let mut out = lock(&self.writer);
        {
            let mut pending = lock(&self.pending);
            pending.close_frame();
            if pending.bytes.is_empty() {
                return Ok(());
            }
            // Swapped, not copied: both buffers keep their capacity.
            std::mem::swap(&mut *out, &mut pending.bytes);
        }
        let mut stdout = io::stdout().lock();
        stdout.write_all(&out)?;
        stdout.flush()?;
        out.clear();
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn serve(builtin: &builtins::Builtin, options: &Options, run_start: u64) -> io::Result<()> {
    let outbox = Arc::new(Outbox::default());
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
        records: OkRecordWriter::new(std::process::id()),
        run_start,
        last_end: protocol::monotonic_nanos(),
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
    /// When runjobs' run started (`protocol::monotonic_nanos`).
    run_start: u64,
    /// When the previous item ended.
    last_end: u64,
    reply: Vec<u8>,
}

impl Runner<'_> {
    /// Runs one request line. An item whose line was already buffered starts when the
    /// previous item ended (one clock read per item instead of two); `after_read` says the
    /// line may have waited to be read, so its start is read from the clock.
    fn run_line(&mut self, line: &[u8], after_read: bool) -> io::Result<()> {
        let started = if after_read {
            protocol::monotonic_nanos()
        } else {
            self.last_end
        };
        let Some(request) = protocol::parse_request(line) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad request line {:?}", String::from_utf8_lossy(line)),
            ));
        };
        let result = protocol::parse_input(request.input)
            .and_then(|value| self.builtin.call(&value, self.options));
        if self.builtin.name == "print_number"
            && let Ok(Value::String(text)) = &result
        {
            // The Python original prints from each process; so does this builtin (on
            // stderr, as stdout carries the protocol). runjobs relays the line.
            eprintln!("{text}");
        }
        self.last_end = protocol::monotonic_nanos();
        let nanos = self.last_end.saturating_sub(started);
        match result {
            Ok(output) => {
                let record = OkRecord {
                    index: request.id,
                    input: request.input,
                    attempts: request.attempt,
                    started_ns: started.saturating_sub(self.run_start),
                    duration_ns: nanos,
                };
                self.outbox.push_ok(request.id, nanos, |out| {
                    self.records
                        .write_line(out, &record, |out| write_output(out, &output))
                });
            }
            Err(message) => {
                self.reply.clear();
                protocol::write_error_reply(&mut self.reply, request.id, nanos, &message);
                self.outbox.push_line(&self.reply);
            }
        }
        Ok(())
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

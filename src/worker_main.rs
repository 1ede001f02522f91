//! The hidden `runjobs __worker` mode: a long-lived child process that runs one builtin on
//! every request line from stdin and answers on stdout (the framing is in `protocol`).
//!
//! It never decides about timeouts or retries (the parent does), and it exits when its stdin
//! closes or its parent dies.

use std::io::{self, BufRead, BufReader, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::builtins::{self, Options};
use crate::exit_code;
use crate::protocol;

/// Answers are written at least this often, so the parent sees progress (and measures item
/// start times for timeouts) with at most this much delay.
const FLUSH_EVERY: Duration = Duration::from_millis(2);

pub fn run(builtin: &str, options_json: &str) -> ExitCode {
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
    match serve(builtin, &options) {
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
    pending: Mutex<Vec<u8>>,
}

impl Outbox {
    fn push(&self, reply: &[u8]) {
        self.lock().extend_from_slice(reply);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes out what is pending. The lock is held while writing so answers stay in order.
    fn flush(&self) -> io::Result<()> {
        let mut pending = self.lock();
        if pending.is_empty() {
            return Ok(());
        }
        let mut out = io::stdout().lock();
        out.write_all(&pending)?;
        out.flush()?;
        pending.clear();
        Ok(())
    }
}

fn serve(builtin: &builtins::Builtin, options: &Options) -> io::Result<()> {
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
    let mut input = BufReader::with_capacity(64 * 1024, io::stdin().lock());
    let mut line = String::new();
    let mut reply = Vec::with_capacity(256);
    let mut last_end = Instant::now();
    loop {
        // Flush before a read that may block, so the parent is never left waiting for
        // answers that sit in our buffer.
        let will_wait = input.buffer().is_empty();
        if will_wait {
            outbox.flush()?;
        }
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return outbox.flush();
        }
        // A line that was already buffered starts when the previous item ended: one clock
        // read per item instead of two.
        let started = if will_wait { Instant::now() } else { last_end };
        let Some((id, input)) = protocol::parse_request(&line) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad request line {line:?}"),
            ));
        };
        let result = serde_json::from_str::<Value>(input)
            .map_err(|e| format!("the input is not valid JSON: {e}"))
            .and_then(|value| builtin.call(&value, options));
        if builtin.name == "print_number"
            && let Ok(Value::String(text)) = &result
        {
            // The Python original prints from each process; so does this builtin (on
            // stderr, as stdout carries the protocol). runjobs relays the line.
            eprintln!("{text}");
        }
        last_end = Instant::now();
        let nanos = u64::try_from((last_end - started).as_nanos()).unwrap_or(u64::MAX);
        reply.clear();
        protocol::write_reply(&mut reply, id, nanos, &result)?;
        outbox.push(&reply);
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

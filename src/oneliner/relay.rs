//! A one-liner's stdout, like `parallel -k`: each item's output is printed in input order as
//! soon as every item before it is done. The first unfinished item's output is streamed as it
//! comes (when its attempt cannot be retried); later items' output is held back in a `Spill`,
//! within a memory budget. A closed stdout (`| head`) ends the printing, never the run.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use super::spill::{Held, Spill};
use crate::exec::ItemStdout;
use crate::exec::function::command::input_text;

/// Output held back in memory across all items before it spills to a temporary file.
pub const MEMORY_BUDGET: usize = 16 * 1024 * 1024;

/// Prints items' stdout in input order.
pub struct OrderedStdout {
    state: Mutex<State>,
    /// Printing stopped for good (`State::closed`), readable without the lock.
    closed: AtomicBool,
    /// `--tag`: each line starts with the item's input and a TAB.
    tag: bool,
    /// The head item's output may be printed as it comes: no attempt is ever retried.
    stream_head: bool,
}

struct State {
    out: BufWriter<Box<dyn Write + Send>>,
    /// The first item not printed yet.
    next: u64,
    /// Items from `next` on that started or are done.
    items: BTreeMap<u64, Item>,
    spill: Spill,
    /// Printing stopped: stdout was closed, or could not be written.
    closed: bool,
}

#[derive(Default)]
struct Item {
    held: Held,
    /// An attempt ran here (else its output comes from its record).
    started: bool,
    done: bool,
    /// The next byte starts a line (for `--tag`).
    line_start: bool,
    tag: String,
}

impl OrderedStdout {
    /// Prints to `out` (the process's stdout, in `runjobs exec`).
    pub fn new(out: Box<dyn Write + Send>, tag: bool, stream_head: bool) -> OrderedStdout {
        OrderedStdout {
            state: Mutex::new(State {
                out: BufWriter::with_capacity(64 * 1024, out),
                next: 0,
                items: BTreeMap::new(),
                spill: Spill::new(MEMORY_BUDGET),
                closed: false,
            }),
            closed: AtomicBool::new(false),
            tag,
            stream_head,
        }
    }

    /// The process's own stdout, written through its file descriptor (not `io::Stdout`'s
    /// line buffer: one write per batch, not per line).
    pub fn stdout(tag: bool, stream_head: bool) -> io::Result<OrderedStdout> {
        let fd = std::os::fd::AsFd::as_fd(&io::stdout()).try_clone_to_owned()?;
        Ok(OrderedStdout::new(
            Box::new(File::from(fd)),
            tag,
            stream_head,
        ))
    }

    /// The run is over: prints what is left (items never reported, which cannot happen in a
    /// finished run but must not be lost) and flushes.
    pub fn finish(&self) {
        let mut state = self.lock();
        let items = std::mem::take(&mut state.items);
        for (_, item) in items {
            state.print(item.held);
        }
        state.flush();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while printing leaves the bytes as they were: go on with them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tagged<'b>(&self, item: &mut Item, bytes: &'b [u8]) -> std::borrow::Cow<'b, [u8]> {
        if !self.tag || bytes.is_empty() {
            return bytes.into();
        }
        let mut out = Vec::with_capacity(bytes.len() + item.tag.len());
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            if item.line_start {
                out.extend_from_slice(item.tag.as_bytes());
            }
            out.extend_from_slice(line);
            item.line_start = line.ends_with(b"\n");
        }
        out.into()
    }
}

impl State {
    fn print(&mut self, held: Held) {
        if self.closed {
            self.spill.drop_held(held);
            return;
        }
        let result = self.spill.write_out(held, &mut self.out);
        self.check(result);
    }

    fn flush(&mut self) {
        if !self.closed {
            let result = self.out.flush();
            self.check(result);
        }
    }

    fn check(&mut self, result: io::Result<()>) {
        if let Err(e) = result {
            // `| head` closed it: nobody reads any more (ripgrep exits quietly too).
            if e.kind() != io::ErrorKind::BrokenPipe {
                say!("warning: cannot write to standard output ({e}); the outputs are not printed");
            }
            self.closed = true;
        }
    }

    /// Prints every done item from `next` on, and what the new head has so far.
    fn advance(&mut self, stream_head: bool) {
        while let Some(entry) = self.items.first_entry() {
            if *entry.key() != self.next {
                break;
            }
            if !entry.get().done {
                if stream_head {
                    let held = std::mem::take(&mut entry.into_mut().held);
                    self.print(held);
                }
                break;
            }
            let item = entry.remove();
            self.print(item.held);
            self.next += 1;
        }
        self.flush();
    }
}

impl ItemStdout for OrderedStdout {
    fn attempt(&self, index: u64, input: &Value) {
        let tag = if self.tag {
            self.tag(input)
        } else {
            String::new()
        };
        let mut state = self.lock();
        let item = state.items.entry(index).or_default();
        let earlier = std::mem::take(&mut item.held);
        item.started = true;
        item.line_start = true;
        item.tag = tag;
        state.spill.drop_held(earlier);
    }

    fn write(&self, index: u64, bytes: &[u8]) {
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.closed {
            return;
        }
        let item = state.items.entry(index).or_default();
        let bytes = self.tagged(item, bytes);
        if self.stream_head && index == state.next {
            let result = state.out.write_all(&bytes).and_then(|()| state.out.flush());
            state.check(result);
        } else {
            let result = state.spill.hold(&mut item.held, &bytes);
            state.check(result);
        }
        self.closed.store(state.closed, Ordering::Relaxed);
    }

    fn tag(&self, input: &Value) -> String {
        // GNU parallel tags with the arguments joined by a space: a group's values here.
        let text = match input {
            Value::Object(groups) => {
                let values: Vec<String> = groups.values().map(input_text).collect();
                values.join(" ")
            }
            other => input_text(other),
        };
        format!("{text}\t")
    }

    fn closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    fn concluded(&self, index: u64, input: Option<&Value>, output: Option<&str>) {
        let mut guard = self.lock();
        let state = &mut *guard;
        if index < state.next {
            return;
        }
        let item = state.items.entry(index).or_default();
        item.done = true;
        if !item.started
            && let Some(text) = output.filter(|t| !t.is_empty())
        {
            // Ran elsewhere (or earlier, for `--resume`): its recorded output, as a line.
            item.line_start = true;
            if self.tag {
                item.tag = input.map(|i| self.tag(i)).unwrap_or_default();
            }
            let line = format!("{text}\n");
            let bytes = self.tagged(item, line.as_bytes()).into_owned();
            let result = state.spill.hold(&mut item.held, &bytes);
            state.check(result);
        }
        state.advance(self.stream_head);
        self.closed.store(state.closed, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn text(out: &Shared) -> String {
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn items_print_in_input_order_whatever_order_they_end_in() {
        let out = Shared::default();
        let relay = OrderedStdout::new(Box::new(out.clone()), false, true);
        for i in 0..3 {
            relay.attempt(i, &json!(i));
        }
        relay.write(2, b"two\n");
        relay.concluded(2, None, None);
        relay.write(1, b"one\n");
        relay.concluded(1, None, None);
        assert_eq!(text(&out), "");
        relay.write(0, b"zero ");
        assert_eq!(text(&out), "zero ", "the head streams");
        relay.write(0, b"more\n");
        relay.concluded(0, None, None);
        assert_eq!(text(&out), "zero more\none\ntwo\n");
    }

    #[test]
    fn a_retried_attempt_drops_the_earlier_output() {
        let out = Shared::default();
        let relay = OrderedStdout::new(Box::new(out.clone()), false, false);
        relay.attempt(0, &json!("a"));
        relay.write(0, b"first try\n");
        relay.attempt(0, &json!("a"));
        relay.write(0, b"second try\n");
        assert_eq!(text(&out), "", "not streamed when attempts may be retried");
        relay.concluded(0, None, None);
        assert_eq!(text(&out), "second try\n");
    }

    #[test]
    fn tags_start_every_line_and_items_that_ran_elsewhere_print_their_record() {
        let out = Shared::default();
        let relay = OrderedStdout::new(Box::new(out.clone()), true, true);
        relay.concluded(0, Some(&json!("r")), Some("reused"));
        relay.attempt(1, &json!({"1": "a", "2": 1}));
        relay.write(1, b"x\ny");
        relay.write(1, b"z\n");
        relay.concluded(1, None, None);
        relay.concluded(2, None, None);
        assert_eq!(text(&out), "r\treused\na 1\tx\na 1\tyz\n");
    }
}

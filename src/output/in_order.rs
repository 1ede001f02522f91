//! Results arrive in any order; the JSON and TOML writers write them in input order. This
//! holds the runs that came early, so memory holds only the out-of-order window.

use std::collections::BTreeMap;
use std::io;

use crate::record::Rendered;
use crate::record::journal::{self, JournalRange};

/// Consecutive results, rendered here or in the journal.
pub enum Run {
    Here(Rendered),
    Journal { count: u64, range: JournalRange },
}

impl Run {
    /// Calls `f` with the records, read back from the journal if that is where they are.
    pub fn with_rendered<R>(&self, f: impl FnOnce(&Rendered) -> io::Result<R>) -> io::Result<R> {
        match self {
            Run::Here(rendered) => f(rendered),
            Run::Journal { count, range } => {
                let rendered = range.rendered()?;
                if rendered.len() as u64 != *count {
                    return Err(journal::not_whole_records());
                }
                f(&rendered)
            }
        }
    }

    fn len(&self) -> u64 {
        match self {
            Run::Here(rendered) => rendered.len() as u64,
            Run::Journal { count, .. } => *count,
        }
    }
}

/// One task's results on their way into input order.
#[derive(Default)]
struct InOrder {
    next_index: u64,
    /// Runs that arrived before an earlier one, by first index. Whole runs wait, not single
    /// results: a worker's batch is usually one run.
    waiting: BTreeMap<u64, Run>,
}

impl InOrder {
    /// Passes `run` to `write` if it comes next, then every waiting run that follows it;
    /// else keeps it until it does.
    fn arrived(
        &mut self,
        first: u64,
        run: Run,
        mut write: impl FnMut(&Run) -> io::Result<()>,
    ) -> io::Result<()> {
        if first != self.next_index {
            self.waiting.insert(first, run);
            return Ok(());
        }
        write(&run)?;
        self.next_index += run.len();
        while let Some(run) = self.waiting.remove(&self.next_index) {
            write(&run)?;
            self.next_index += run.len();
        }
        Ok(())
    }

    /// The task ended: passes on whatever still waits (every index arrives exactly once, so
    /// nothing should; if something does, it is still written, in order, rather than lost),
    /// and starts over for the next task.
    fn end(&mut self, mut write: impl FnMut(&Run) -> io::Result<()>) -> io::Result<()> {
        for run in std::mem::take(&mut self.waiting).into_values() {
            write(&run)?;
        }
        self.next_index = 0;
        Ok(())
    }
}

/// What writes runs of results once they are in order.
pub trait WriteRun {
    fn write_run(&mut self, run: &Run) -> io::Result<()>;
}

/// A writer of runs, fed in any order.
pub struct Ordered<W> {
    order: InOrder,
    pub writer: W,
}

impl<W: WriteRun> Ordered<W> {
    pub fn new(writer: W) -> Ordered<W> {
        Ordered {
            order: InOrder::default(),
            writer,
        }
    }

    /// The records of items `first`, `first + 1`, …, in any order.
    pub fn results(&mut self, first: u64, run: Run) -> io::Result<()> {
        let writer = &mut self.writer;
        self.order.arrived(first, run, |run| writer.write_run(run))
    }

    /// The task ended: writes what still waits, and starts over for the next task.
    pub fn end_task(&mut self) -> io::Result<()> {
        let writer = &mut self.writer;
        self.order.end(|run| writer.write_run(run))
    }
}

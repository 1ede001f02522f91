//! JSON results, streamed: each result is written as soon as every result before it (in
//! input order) has arrived, one per line, so memory holds only the out-of-order window.
//! The run's status and summary come last, once known.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::{OutputFile, RunFooter, RunHeader, Sink, TaskHeader};
use crate::event::{JOURNAL_LINE_END, Rendered, Summary};
use crate::journal::JournalRange;

pub struct JsonSink {
    file: OutputFile,
    tasks_written: usize,
    next_index: u64,
    results_written: u64,
    /// Runs of consecutive results that arrived before an earlier one, by first index.
    /// Whole runs wait, not single results: a worker's batch is usually one run.
    waiting: BTreeMap<u64, Run>,
}

/// Consecutive results, rendered here or in the journal.
enum Run {
    Here(Rendered),
    Journal { count: u64, range: JournalRange },
}

/// `{"a":1}` → `{"a":1` so more members can follow.
fn open_object(value: &impl serde::Serialize) -> io::Result<String> {
    let mut text = serde_json::to_string(value).map_err(io::Error::other)?;
    text.pop();
    Ok(text)
}

impl JsonSink {
    pub fn new(mut file: OutputFile, header: RunHeader) -> io::Result<JsonSink> {
        write!(file, "{},\"tasks\":[", open_object(&header)?)?;
        Ok(JsonSink {
            file,
            tasks_written: 0,
            next_index: 0,
            results_written: 0,
            waiting: BTreeMap::new(),
        })
    }

    fn write_run(&mut self, run: &Run) -> io::Result<()> {
        match run {
            Run::Here(rendered) => self.write_rendered(rendered),
            Run::Journal { count, range } => self.write_journaled(*count, range),
        }
    }

    /// Copies records a worker appended to the journal, `,\n` after each: all but the last
    /// `,\n` is the array's own text.
    fn write_journaled(&mut self, count: u64, range: &JournalRange) -> io::Result<()> {
        range.check_end()?;
        let separator: &[u8] = if self.results_written == 0 {
            b"\n"
        } else {
            b",\n"
        };
        self.file.write_all(separator)?;
        let len = range.len - JOURNAL_LINE_END.len() as u64;
        self.file.copy_from(&range.file, range.offset, len)?;
        self.results_written += count;
        self.next_index += count;
        Ok(())
    }

    /// Writes the records of `rendered`, which come next in input order.
    fn write_rendered(&mut self, rendered: &Rendered) -> io::Result<()> {
        for i in 0..rendered.len() {
            let separator: &[u8] = if self.results_written == 0 {
                b"\n"
            } else {
                b",\n"
            };
            self.file.write_all(separator)?;
            self.file.write_all(rendered.json(i))?;
            self.results_written += 1;
        }
        self.next_index += rendered.len() as u64;
        Ok(())
    }

    /// Writes `run` if it comes next, else keeps it until it does.
    fn arrived(&mut self, first: u64, run: Run) -> io::Result<()> {
        if first == self.next_index {
            self.write_run(&run)?;
            self.write_waiting()
        } else {
            self.waiting.insert(first, run);
            Ok(())
        }
    }

    /// Writes every waiting run that is now next.
    fn write_waiting(&mut self) -> io::Result<()> {
        while let Some(run) = self.waiting.remove(&self.next_index) {
            self.write_run(&run)?;
        }
        Ok(())
    }
}

impl Sink for JsonSink {
    fn begin_task(&mut self, header: &TaskHeader) -> io::Result<()> {
        if self.tasks_written > 0 {
            self.file.write_all(b",")?;
        }
        write!(self.file, "\n{},\"results\":[", open_object(header)?)?;
        self.tasks_written += 1;
        self.next_index = 0;
        self.results_written = 0;
        Ok(())
    }

    fn run(&mut self, first: u64, rendered: Rendered) -> io::Result<()> {
        self.arrived(first, Run::Here(rendered))
    }

    fn journaled(&mut self, first: u64, count: u64, range: &JournalRange) -> io::Result<()> {
        let range = range.clone();
        self.arrived(first, Run::Journal { count, range })
    }

    fn end_task(&mut self, summary: &Summary) -> io::Result<()> {
        // Every index arrives exactly once, so nothing should wait here; if something does,
        // it is still written (in order) rather than lost.
        for run in std::mem::take(&mut self.waiting).into_values() {
            self.write_run(&run)?;
        }
        let summary = serde_json::to_string(summary).map_err(io::Error::other)?;
        write!(self.file, "\n],\"summary\":{summary}}}")?;
        Ok(())
    }

    fn finish(mut self: Box<Self>, footer: &RunFooter) -> io::Result<()> {
        let foot = serde_json::to_string(footer).map_err(io::Error::other)?;
        let members = foot
            .strip_prefix('{')
            .expect("a struct serializes to an object");
        write!(self.file, "\n],{members}\n")?;
        self.file.commit()
    }
}

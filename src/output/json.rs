//! JSON results, streamed: each result is written as soon as every result before it (in
//! input order) has arrived, one per line, so memory holds only the out-of-order window.
//! The run's status and summary come last, once known.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::{OutputFile, RunFooter, RunHeader, Sink, TaskHeader};
use crate::event::{ItemRecord, Summary};

pub struct JsonSink {
    file: OutputFile,
    tasks_written: usize,
    next_index: u64,
    results_written: u64,
    /// Runs of consecutive results that arrived before an earlier one, by first index.
    /// Whole runs wait, not single results: a worker's batch is usually one run, so moving
    /// it costs nothing per result.
    waiting: BTreeMap<u64, Vec<ItemRecord>>,
    line: Vec<u8>,
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
            line: Vec::with_capacity(256),
        })
    }

    fn write_record(&mut self, record: &ItemRecord) -> io::Result<()> {
        self.line.clear();
        self.line.extend_from_slice(if self.results_written == 0 {
            b"\n"
        } else {
            b",\n"
        });
        record.write_json(&mut self.line, b"");
        self.results_written += 1;
        self.file.write_all(&self.line)
    }

    fn write_run(&mut self, run: &[ItemRecord]) -> io::Result<()> {
        for record in run {
            self.write_record(record)?;
        }
        self.next_index += run.len() as u64;
        Ok(())
    }

    /// Writes `run` if it is next, then every waiting run that follows; else parks it.
    fn accept_run(&mut self, run: Vec<ItemRecord>) -> io::Result<()> {
        let Some(first) = run.first().map(|r| r.index) else {
            return Ok(());
        };
        if first != self.next_index {
            self.waiting.insert(first, run);
            return Ok(());
        }
        self.write_run(&run)?;
        while let Some(next) = self.waiting.remove(&self.next_index) {
            self.write_run(&next)?;
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

    fn records(&mut self, mut records: Vec<ItemRecord>) -> io::Result<()> {
        // Split the batch into runs of consecutive indices (usually it is one run).
        while !records.is_empty() {
            let run_len = records
                .windows(2)
                .position(|pair| pair[1].index != pair[0].index + 1)
                .map_or(records.len(), |last| last + 1);
            let rest = records.split_off(run_len);
            self.accept_run(records)?;
            records = rest;
        }
        Ok(())
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

//! JSON results, streamed: each result is written as soon as every result before it (in
//! input order) has arrived, one per line, so memory holds only the out-of-order window.
//! The run's status and summary come last, once known.

use std::collections::HashMap;
use std::io::{self, Write};

use super::{OutputFile, RunFooter, RunHeader, Sink, TaskHeader};
use crate::event::{ItemRecord, Summary};

pub struct JsonSink {
    file: OutputFile,
    tasks_written: usize,
    next_index: u64,
    results_written: u64,
    waiting: HashMap<u64, ItemRecord>,
}

impl JsonSink {
    pub fn new(mut file: OutputFile, header: RunHeader) -> io::Result<JsonSink> {
        let head = serde_json::to_string(&header).map_err(io::Error::other)?;
        // Reopen the header object to add "tasks" and, at the end, the footer.
        let open = head
            .strip_suffix('}')
            .expect("a struct serializes to an object");
        write!(file, "{open},\"tasks\":[")?;
        Ok(JsonSink {
            file,
            tasks_written: 0,
            next_index: 0,
            results_written: 0,
            waiting: HashMap::new(),
        })
    }

    fn write_record(&mut self, record: &ItemRecord) -> io::Result<()> {
        self.file.write_all(if self.results_written == 0 {
            b"\n"
        } else {
            b",\n"
        })?;
        serde_json::to_writer(&mut self.file, record).map_err(io::Error::other)?;
        self.results_written += 1;
        Ok(())
    }
}

impl Sink for JsonSink {
    fn begin_task(&mut self, header: &TaskHeader) -> io::Result<()> {
        if self.tasks_written > 0 {
            self.file.write_all(b",")?;
        }
        let head = serde_json::to_string(header).map_err(io::Error::other)?;
        let open = head
            .strip_suffix('}')
            .expect("a struct serializes to an object");
        write!(self.file, "\n{open},\"results\":[")?;
        self.tasks_written += 1;
        self.next_index = 0;
        self.results_written = 0;
        Ok(())
    }

    fn record(&mut self, record: ItemRecord) -> io::Result<()> {
        if record.index != self.next_index {
            self.waiting.insert(record.index, record);
            return Ok(());
        }
        self.write_record(&record)?;
        self.next_index += 1;
        while let Some(next) = self.waiting.remove(&self.next_index) {
            self.write_record(&next)?;
            self.next_index += 1;
        }
        Ok(())
    }

    fn end_task(&mut self, summary: &Summary) -> io::Result<()> {
        // Every index arrives exactly once, so nothing should wait here; if something does,
        // it is still written (in order) rather than lost.
        let mut rest: Vec<_> = self.waiting.drain().map(|(_, r)| r).collect();
        rest.sort_by_key(|r| r.index);
        for record in &rest {
            self.write_record(record)?;
        }
        let summary = serde_json::to_string(summary).map_err(io::Error::other)?;
        write!(self.file, "\n],\"summary\":{summary}}}")?;
        Ok(())
    }

    fn finish(mut self: Box<Self>, footer: &RunFooter) -> io::Result<()> {
        let foot = serde_json::to_string(footer).map_err(io::Error::other)?;
        let inner = foot
            .strip_prefix('{')
            .expect("a struct serializes to an object");
        write!(self.file, "\n],{inner}\n")?;
        self.file.commit()
    }
}

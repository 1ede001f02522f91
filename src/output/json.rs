//! JSON results, streamed: each result is written as soon as every result before it (in
//! input order) has arrived, one per line, so memory holds only the out-of-order window.
//! The run's status and summary come last, once known.

use std::io::{self, Write};

use super::in_order::{Ordered, Run, WriteRun};
use super::{OutputFile, Sink};
use crate::record::journal::JournalRange;
use crate::record::{JOURNAL_LINE_END, Rendered, TaskFooter};
use crate::record::{RunFooter, RunHeader, TaskHeader};

pub struct JsonSink {
    out: Ordered<Results>,
    tasks_written: usize,
}

/// The file, and how many results of the current task are in it.
struct Results {
    file: OutputFile,
    written: u64,
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
            out: Ordered::new(Results { file, written: 0 }),
            tasks_written: 0,
        })
    }
}

impl WriteRun for Results {
    fn write_run(&mut self, run: &Run) -> io::Result<()> {
        match run {
            Run::Here(rendered) => self.write_rendered(rendered),
            Run::Journal { count, range } => self.write_journaled(*count, range),
        }
    }
}

impl Results {
    fn separator(&self) -> &'static [u8] {
        if self.written == 0 { b"\n" } else { b",\n" }
    }

    /// Copies records a worker appended to the journal, `,\n` after each: all but the last
    /// `,\n` is the array's own text.
    fn write_journaled(&mut self, count: u64, range: &JournalRange) -> io::Result<()> {
        range.check_end()?;
        self.file.write_all(self.separator())?;
        let len = range.len - JOURNAL_LINE_END.len() as u64;
        self.file.copy_from(&range.file, range.offset, len)?;
        self.written += count;
        Ok(())
    }

    fn write_rendered(&mut self, rendered: &Rendered) -> io::Result<()> {
        if let Some(text) = rendered.comma_joined() {
            // Lines that end as the journal's do are the array's own text, in one write.
            self.file.write_all(self.separator())?;
            self.file.write_all(text)?;
            self.written += rendered.len() as u64;
            return Ok(());
        }
        for i in 0..rendered.len() {
            self.file.write_all(self.separator())?;
            self.file.write_all(rendered.json(i))?;
            self.written += 1;
        }
        Ok(())
    }
}

impl Sink for JsonSink {
    fn begin_task(&mut self, header: &TaskHeader) -> io::Result<()> {
        let results = &mut self.out.writer;
        if self.tasks_written > 0 {
            results.file.write_all(b",")?;
        }
        write!(results.file, "\n{},\"results\":[", open_object(header)?)?;
        self.tasks_written += 1;
        results.written = 0;
        Ok(())
    }

    fn results(&mut self, first: u64, run: Run) -> io::Result<()> {
        self.out.results(first, run)
    }

    fn end_task(&mut self, footer: &TaskFooter) -> io::Result<()> {
        self.out.end_task()?;
        // `],"summary":{...},...}`: the summary first, as readers look for it.
        let members = serde_json::to_string(footer).map_err(io::Error::other)?;
        let members = members
            .strip_prefix('{')
            .expect("a struct serializes to an object");
        write!(self.out.writer.file, "\n],{members}")?;
        Ok(())
    }

    fn finish(self: Box<Self>, footer: &RunFooter) -> io::Result<()> {
        let foot = serde_json::to_string(footer).map_err(io::Error::other)?;
        let members = foot
            .strip_prefix('{')
            .expect("a struct serializes to an object");
        let mut file = self.out.writer.file;
        write!(file, "\n],{members}\n")?;
        file.commit()
    }
}

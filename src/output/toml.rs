//! TOML results: the same tree as JSON, streamed in bounded memory. TOML wants a table's own
//! keys before its sub-tables, but the run's status and summary are known only at the end,
//! so the tasks (each result one inline table a line, in input order) go to an unnamed
//! spool file beside the output, and the end writes the top-level keys and then copies the
//! spool after them. TOML has no null, so JSON nulls are left out.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use super::in_order::{Ordered, Run, WriteRun};
use super::toml_text;
use super::{OutputFile, Sink};
use crate::record::{Rendered, RunFooter, RunHeader, TaskFooter, TaskHeader};

pub struct TomlSink {
    file: OutputFile,
    header: RunHeader,
    spool: Ordered<Spool>,
}

/// The tasks' text, written as results arrive in order.
struct Spool {
    writer: BufWriter<File>,
    /// One record's TOML, reused.
    line: Vec<u8>,
}

impl TomlSink {
    pub fn new(file: OutputFile, header: RunHeader) -> io::Result<TomlSink> {
        let spool = file.spool()?;
        Ok(TomlSink {
            file,
            header,
            spool: Ordered::new(Spool {
                writer: BufWriter::with_capacity(256 * 1024, spool),
                line: Vec::new(),
            }),
        })
    }
}

impl WriteRun for Spool {
    fn write_run(&mut self, run: &Run) -> io::Result<()> {
        match run {
            Run::Here(rendered) => self.write_rendered(rendered),
            Run::Journal { .. } => run.with_rendered(|rendered| self.write_rendered(rendered)),
        }
    }
}

impl Spool {
    fn write_rendered(&mut self, rendered: &Rendered) -> io::Result<()> {
        for i in 0..rendered.len() {
            self.line.clear();
            toml_text::write_value(rendered.json(i), &mut self.line)?;
            self.line.extend_from_slice(b",\n");
            self.writer.write_all(&self.line)?;
        }
        Ok(())
    }

    /// `value`'s members as `key = value` lines.
    fn write_members(&mut self, value: &impl serde::Serialize) -> io::Result<()> {
        self.line.clear();
        let json = serde_json::to_vec(value).map_err(io::Error::other)?;
        toml_text::write_members(&json, &mut self.line)?;
        self.writer.write_all(&self.line)
    }
}

impl Sink for TomlSink {
    fn begin_task(&mut self, header: &TaskHeader) -> io::Result<()> {
        let spool = &mut self.spool.writer;
        spool.writer.write_all(b"\n[[tasks]]\n")?;
        spool.write_members(header)?;
        spool.writer.write_all(b"results = [\n")
    }

    fn results(&mut self, first: u64, run: Run) -> io::Result<()> {
        self.spool.results(first, run)
    }

    fn end_task(&mut self, footer: &TaskFooter) -> io::Result<()> {
        self.spool.end_task()?;
        let spool = &mut self.spool.writer;
        spool.writer.write_all(b"]\n")?;
        spool.write_members(footer)
    }

    fn finish(mut self: Box<Self>, footer: &RunFooter) -> io::Result<()> {
        let mut top = Vec::new();
        let header = serde_json::to_vec(&self.header).map_err(io::Error::other)?;
        toml_text::write_members(&header, &mut top)?;
        let footer = serde_json::to_vec(footer).map_err(io::Error::other)?;
        toml_text::write_members(&footer, &mut top)?;
        self.file.write_all(&top)?;
        let spool = self
            .spool
            .writer
            .writer
            .into_inner()
            .map_err(|e| e.into_error())?;
        let len = spool.metadata()?.len();
        self.file.copy_from(&spool, 0, len)?;
        self.file.commit()
    }
}

//! Result writers (JSON, TOML, JSON Lines) behind one trait, and the atomic file they write.
//! Built on `record/`, which never imports them.

mod atomic;
mod in_order;
mod json;
mod jsonl;
mod toml;
mod toml_text;

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

pub use atomic::OutputFile;
pub use in_order::Run;

use crate::record::fallback;
use crate::record::journal::Entry;
use crate::record::{
    Format, ItemRecord, Rendered, RunFooter, RunHeader, Summary, TaskFooter, TaskHeader,
};

/// Receives a run's results as they finish (in any order) and writes them out.
pub trait Sink {
    fn begin_task(&mut self, header: &TaskHeader) -> io::Result<()>;
    /// Results in any order: `run` holds the records of items `first`, `first + 1`, …
    /// (rendered here, one line each as `Rendered::render` writes them, or appended to the
    /// journal by the worker that ran them).
    fn results(&mut self, first: u64, run: Run) -> io::Result<()>;
    fn end_task(&mut self, footer: &TaskFooter) -> io::Result<()>;
    /// Writes the end of the file and moves it into place.
    fn finish(self: Box<Self>, footer: &RunFooter) -> io::Result<()>;
}

/// Where results go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    File(PathBuf),
    Stdout,
    /// Nowhere: a one-liner without `-o` keeps no results (its outputs were printed).
    Discard,
}

impl Destination {
    /// The results file, when there is one.
    pub fn file(&self) -> Option<&std::path::Path> {
        match self {
            Destination::File(path) => Some(path),
            Destination::Stdout | Destination::Discard => None,
        }
    }
}

/// Writes a whole results file from a run's journal entries into the first of `folders` that
/// takes it (as `name`, numbered when taken); returns its path. For when the results file's
/// own folder failed.
pub fn render_fallback(
    entries: &[Entry],
    folders: &[PathBuf],
    name: &str,
    format: Format,
    header: &RunHeader,
    footer: &RunFooter,
) -> io::Result<PathBuf> {
    let mut last = io::Error::other("no folder to write in");
    for folder in folders {
        let path = fallback::free_path(folder, name);
        match render(
            entries,
            &Destination::File(path.clone()),
            format,
            header,
            footer,
        ) {
            Ok(()) => return Ok(path),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn render(
    entries: &[Entry],
    destination: &Destination,
    format: Format,
    header: &RunHeader,
    footer: &RunFooter,
) -> io::Result<()> {
    let mut sink = open(destination, format, header.clone())?;
    // A task's records by index. An item can be in the journal twice (a worker appended its
    // record, then died before saying so, and the item ran again): the later record is the
    // one the run went on with.
    let mut task: Option<BTreeMap<u64, &ItemRecord>> = None;
    for entry in entries {
        match entry {
            Entry::Task(header) => {
                if let Some(records) = task.take() {
                    write_task(sink.as_mut(), records)?;
                }
                sink.begin_task(header)?;
                task = Some(BTreeMap::new());
            }
            Entry::Record(record) => {
                if let Some(records) = task.as_mut() {
                    records.insert(record.index, record);
                }
            }
            Entry::Run { .. } => {}
        }
    }
    if let Some(records) = task {
        write_task(sink.as_mut(), records)?;
    }
    sink.finish(footer)
}

/// Writes a task's records and ends it.
fn write_task(sink: &mut dyn Sink, records: BTreeMap<u64, &ItemRecord>) -> io::Result<()> {
    let mut summary = Summary::default();
    for record in records.values() {
        summary.add_record(record);
        let rendered = Rendered::of(std::slice::from_ref(*record));
        sink.results(record.index, Run::Here(rendered))?;
    }
    // A journal does not keep the workers' CPU: the file written from it has none.
    sink.end_task(&TaskFooter {
        summary,
        worker_cpu_s: None,
    })
}

/// Opens a writer for `format` at `destination` and writes what the header says.
pub fn open(
    destination: &Destination,
    format: Format,
    header: RunHeader,
) -> io::Result<Box<dyn Sink>> {
    if *destination == Destination::Discard {
        return Ok(Box::new(Discard));
    }
    let file = OutputFile::create(destination)?;
    Ok(match format {
        Format::Json => Box::new(json::JsonSink::new(file, header)?),
        Format::Jsonl => Box::new(jsonl::JsonlSink::new(file, header)),
        Format::Toml => Box::new(toml::TomlSink::new(file, header)?),
    })
}

/// The writer of `Destination::Discard`: takes every result and keeps none.
struct Discard;

impl Sink for Discard {
    fn begin_task(&mut self, _: &TaskHeader) -> io::Result<()> {
        Ok(())
    }

    fn results(&mut self, _: u64, _: Run) -> io::Result<()> {
        Ok(())
    }

    fn end_task(&mut self, _: &TaskFooter) -> io::Result<()> {
        Ok(())
    }

    fn finish(self: Box<Self>, _: &RunFooter) -> io::Result<()> {
        Ok(())
    }
}

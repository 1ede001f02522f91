//! Result writers (JSON, TOML, JSON Lines) behind one trait, and the atomic file they write.

mod atomic;
mod json;
mod jsonl;
mod toml;

use std::io;
use std::path::PathBuf;

use serde::Serialize;

pub use atomic::OutputFile;

use crate::event::{ItemRecord, Summary};
use crate::job::Format;

/// Format version of the results file.
pub const VERSION: u32 = 1;

/// How the run as a whole ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Ok,
    Failed,
    Interrupted,
}

/// What is known when the run starts.
#[derive(Debug, Clone, Serialize)]
pub struct RunHeader {
    pub version: u32,
    pub job: String,
    pub job_file: String,
    pub started_at: String,
}

/// What is known when it ends.
#[derive(Debug, Clone, Serialize)]
pub struct RunFooter {
    pub status: RunStatus,
    pub finished_at: String,
    pub duration_s: f64,
    pub summary: Summary,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskHeader {
    pub name: String,
    pub function: String,
    pub workers: usize,
}

/// Receives a run's results as they finish (in any order) and writes them out.
pub trait Sink {
    fn begin_task(&mut self, header: &TaskHeader) -> io::Result<()>;
    /// Results in any order; a batch from one worker is usually a run of consecutive indices.
    fn records(&mut self, records: Vec<ItemRecord>) -> io::Result<()>;
    fn end_task(&mut self, summary: &Summary) -> io::Result<()>;
    /// Writes the end of the file and moves it into place.
    fn finish(self: Box<Self>, footer: &RunFooter) -> io::Result<()>;
}

/// Where results go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    File(PathBuf),
    Stdout,
}

/// Opens a writer for `format` at `destination` and writes what the header says.
pub fn open(
    destination: &Destination,
    format: Format,
    header: RunHeader,
) -> io::Result<Box<dyn Sink>> {
    let file = OutputFile::create(destination)?;
    Ok(match format {
        Format::Json => Box::new(json::JsonSink::new(file, header)?),
        Format::Jsonl => Box::new(jsonl::JsonlSink::new(file, header)),
        Format::Toml => Box::new(toml::TomlSink::new(file, header)),
    })
}

//! A validated job, ready to run: defaults applied, durations parsed, paths absolute.
//!
//! `resolve` builds these from a `JobFile`; everything after loading (expansion, the pool,
//! the writers) reads only these types.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::builtins;

/// A job file that passed every check.
#[derive(Debug, Clone)]
pub struct Job {
    /// `name`, else the file's stem.
    pub name: String,
    /// The job file as the user named it (for messages and the output's `job_file`).
    pub file: PathBuf,
    /// The job file's folder, absolute: relative paths resolve here and functions run here.
    pub dir: PathBuf,
    pub description: Option<String>,
    pub schedule: Option<String>,
    pub output: OutputPlan,
    pub tasks: Vec<Task>,
}

/// Where and how results are written.
#[derive(Debug, Clone)]
pub struct OutputPlan {
    /// Absolute path template; `{job}`, `{date}` and `{timestamp}` are filled in at run time.
    pub path_template: PathBuf,
    /// `format`, else decided from the extension when the path is known.
    pub format: Option<Format>,
}

/// Output file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Toml,
    Jsonl,
}

impl Format {
    /// The format a file extension implies, if any.
    pub fn from_extension(ext: &str) -> Option<Format> {
        match ext.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "toml" => Some(Format::Toml),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            _ => None,
        }
    }

    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "json" => Some(Format::Json),
            "toml" => Some(Format::Toml),
            "jsonl" => Some(Format::Jsonl),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Toml => "toml",
            Format::Jsonl => "jsonl",
        }
    }
}

/// One `[[task]]` with every option settled (task, then function, then job, then default).
#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    pub function: FunctionSpec,
    pub inputs: InputSpec,
    pub workers: usize,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub kill_grace: Duration,
}

/// What runs for each item.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// How results name the function, e.g. `builtin:square`.
    pub label: String,
    pub kind: FunctionKind,
}

/// One variant per function kind; external kinds slot in here.
#[derive(Debug, Clone)]
pub enum FunctionKind {
    /// A builtin run by runjobs' own worker processes.
    Builtin {
        name: String,
        options: builtins::Options,
    },
}

/// Where a task's items come from. Paths are absolute.
#[derive(Debug, Clone)]
pub enum InputSpec {
    List(Vec<Value>),
    Range {
        start: i64,
        stop: i64,
        step: i64,
    },
    Lines(PathBuf),
    File(PathBuf),
    /// `pattern` is absolute; items are paths relative to `base` (the job folder) when under it.
    Glob {
        pattern: String,
        base: PathBuf,
    },
    /// Keys in declaration order; the last key varies fastest.
    Matrix(Vec<(String, Vec<Value>)>),
    /// The outputs of the ok items of an earlier task, in its input order.
    From(String),
}

/// The default worker count: one per CPU.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The default time between SIGTERM and SIGKILL.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

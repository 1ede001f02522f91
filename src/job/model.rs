//! The job file as written: serde types that mirror `schemas/job.schema.json` key for key.
//!
//! These types are deserialized only after the schema accepted the document, so they can stay
//! plain; every user-facing message comes from the schema check or from `resolve`. Nothing here
//! touches the file system or knows about processes.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The whole job file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    pub name: Option<String>,
    pub description: Option<String>,
    /// A 5-field cron expression, used by `runjobs crontab`.
    pub schedule: Option<String>,
    pub workers: Option<Workers>,
    /// Per-item timeout, a humantime duration such as `"500ms"`.
    pub timeout: Option<String>,
    pub retries: Option<u32>,
    /// Time between SIGTERM and SIGKILL when an item's process group is stopped.
    pub kill_grace: Option<String>,
    pub output: Option<OutputDef>,
    #[serde(default)]
    pub functions: BTreeMap<String, FunctionDef>,
    #[serde(default, rename = "task")]
    pub tasks: Vec<TaskDef>,
}

/// `workers = 4` or `workers = "num-cpus"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Workers {
    Count(u32),
    /// Only `"num-cpus"` passes the schema.
    Named(String),
}

/// `[output]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputDef {
    pub path: Option<String>,
    pub format: Option<String>,
}

/// `[functions.NAME]`: exactly one kind key (only `builtin` so far) plus shared options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionDef {
    pub builtin: Option<String>,
    /// Option of the `format` builtin.
    pub template: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<u32>,
    pub kill_grace: Option<String>,
}

/// One `[[task]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDef {
    pub name: Option<String>,
    pub function: String,
    pub inputs: InputsDef,
    pub workers: Option<Workers>,
    pub timeout: Option<String>,
    pub retries: Option<u32>,
    pub kill_grace: Option<String>,
}

/// `inputs = [...]` or `inputs = { <one source key> = ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum InputsDef {
    List(Vec<Value>),
    Source(InputSourceDef),
}

/// The table form of `inputs`; the schema guarantees exactly one key is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSourceDef {
    /// `[start, stop]` or `[start, stop, step]`, as Python's `range`.
    pub range: Option<Vec<i64>>,
    pub lines: Option<String>,
    pub file: Option<String>,
    pub glob: Option<String>,
    /// Key order is kept (serde_json `preserve_order`): the last key varies fastest.
    pub matrix: Option<serde_json::Map<String, Value>>,
    pub from: Option<String>,
}

//! The job file as written: serde types that mirror `schemas/job.schema.json` key for key.
//!
//! These types are deserialized only after the schema accepted the document, so they can stay
//! plain; every user-facing message comes from the schema check or from `resolve`. Nothing here
//! touches the file system or knows about processes.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Unexpected, Visitor};
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
    pub retries: Option<RetriesDef>,
    /// Time between SIGTERM and SIGKILL when an item's process group is stopped.
    pub kill_grace: Option<String>,
    /// The whole run's time limit.
    pub deadline: Option<String>,
    pub max_failures: Option<MaxFailuresDef>,
    pub output: Option<OutputDef>,
    pub hooks: Option<HooksDef>,
    pub executor: Option<ExecutorDef>,
    pub admit: Option<AdmitDef>,
    #[serde(default)]
    pub functions: BTreeMap<String, FunctionDef>,
    #[serde(default, rename = "task")]
    pub tasks: Vec<TaskDef>,
}

/// `max_failures = 10` or `max_failures = "5%"` (the schema checks the string's shape).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum MaxFailuresDef {
    Count(u64),
    Percent(String),
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
    pub keep: Option<u64>,
    /// `reuse = "latest"`: each run reuses from the newest earlier results file.
    pub reuse: Option<ReuseDef>,
}

/// `[output] reuse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReuseDef {
    Latest,
}

/// `fingerprint = "mtime" | "content" | "path"` of a function or task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FingerprintDef {
    Mtime,
    Content,
    Path,
}

/// `input = "value" | "path"` of a function or task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKindDef {
    Value,
    Path,
}

/// `[executor]`: where the items run (the schema checks every value's shape).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorDef {
    pub kind: Option<String>,
    pub partition: Option<String>,
    pub account: Option<String>,
    pub time: Option<String>,
    pub cpus_per_task: Option<u32>,
    pub mem: Option<String>,
    pub sbatch_args: Option<Vec<String>>,
    pub shards: Option<u64>,
    pub max_running: Option<u32>,
    pub spool: Option<String>,
}

/// `[hooks]`: programs run around a run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksDef {
    pub on_start: Option<Vec<String>>,
    pub on_success: Option<Vec<String>>,
    pub on_failure: Option<Vec<String>>,
    pub timeout: Option<String>,
}

/// `[admit]`: when new items may start (GNU parallel's `--memfree`, `--load`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmitDef {
    /// A memory size (`"2GiB"`): start no item while less is available.
    pub memfree: Option<String>,
    /// Start no item while the 1-minute load average per CPU is above this.
    pub load: Option<f64>,
}

/// `[functions.NAME]`: exactly one kind key (`builtin`, `command`, `worker`, `python`; the
/// schema checks the count), the keys of that kind, and the options a task may override.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionDef {
    pub builtin: Option<String>,
    /// The argv templates of a `command` function.
    pub command: Option<Vec<String>>,
    /// The argv of a long-lived JSON-lines worker.
    pub worker: Option<Vec<String>>,
    /// `"FILE:FUNCTION"`.
    pub python: Option<String>,
    /// Option of the `format` builtin.
    pub template: Option<String>,
    /// `command` only: run `command[0]` as a `sh -c` script.
    pub shell: Option<bool>,
    /// `worker` only: the worker takes batch requests.
    pub batch: Option<bool>,
    /// `command` only.
    pub stdin: Option<StdinDef>,
    /// `command` only.
    pub stdout: Option<StdoutDef>,
    /// `command` only: how much of standard output is kept (a size such as `"16MiB"`); the
    /// rest is counted and dropped, and the item is marked `truncated`.
    pub max_output: Option<String>,
    /// `python` only: the interpreter, default `python3`.
    pub python_exe: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<RetriesDef>,
    pub kill_grace: Option<String>,
    pub env: Option<BTreeMap<String, String>>,
    pub cwd: Option<String>,
    pub limits: Option<LimitsDef>,
    pub max_items_per_worker: Option<u64>,
    pub fingerprint: Option<FingerprintDef>,
    pub input: Option<InputKindDef>,
}

impl FunctionDef {
    /// The options a task may override.
    pub fn options(&self) -> OptionsDef<'_> {
        OptionsDef {
            timeout: self.timeout.as_deref(),
            retries: self.retries.as_ref(),
            kill_grace: self.kill_grace.as_deref(),
            env: self.env.as_ref(),
            cwd: self.cwd.as_deref(),
            limits: self.limits.as_ref(),
            max_items_per_worker: self.max_items_per_worker,
            fingerprint: self.fingerprint,
            input: self.input,
        }
    }
}

/// `stdin = "json" | "text"` of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StdinDef {
    Json,
    Text,
}

/// `stdout = "text" | "json" | "lines" | "ignore"` of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StdoutDef {
    Text,
    Json,
    Lines,
    Ignore,
}

/// `retries = 3` or `retries = { count = 3, backoff = "exponential", … }`.
#[derive(Debug, Clone)]
pub enum RetriesDef {
    Count(u32),
    Table(RetryTableDef),
}

/// By hand rather than `untagged`, so that a bad value inside the table (`count = 2.0`) is
/// reported at that value, not as "did not match any variant" at the whole table.
impl<'de> Deserialize<'de> for RetriesDef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RetriesDef, D::Error> {
        struct Retries;
        impl<'de> Visitor<'de> for Retries {
            type Value = RetriesDef;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a retry count or a table with `count`")
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<RetriesDef, E> {
                let count = u32::try_from(n);
                count
                    .map(RetriesDef::Count)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(n), &self))
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<RetriesDef, E> {
                let count = u32::try_from(n);
                count
                    .map(RetriesDef::Count)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(n), &self))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RetriesDef, A::Error> {
                let table = RetryTableDef::deserialize(de::value::MapAccessDeserializer::new(map));
                table.map(RetriesDef::Table)
            }
        }
        d.deserialize_any(Retries)
    }
}

/// The table form of `retries`; the schema requires `count`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryTableDef {
    pub count: u32,
    pub backoff: Option<BackoffDef>,
    pub delay: Option<String>,
    pub max_delay: Option<String>,
    /// `"timeout"`, `"crash"`, `"error"` or `"exit:N"`; checked by `resolve`, which can say
    /// which entry is wrong and what was meant.
    pub on: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackoffDef {
    Fixed,
    Exponential,
}

/// `limits = { memory = "512MiB", cpu = "60s", open_files = 256 }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsDef {
    pub memory: Option<String>,
    pub cpu: Option<String>,
    pub open_files: Option<u64>,
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
    pub retries: Option<RetriesDef>,
    pub kill_grace: Option<String>,
    pub env: Option<BTreeMap<String, String>>,
    pub cwd: Option<String>,
    pub limits: Option<LimitsDef>,
    pub max_items_per_worker: Option<u64>,
    pub fingerprint: Option<FingerprintDef>,
    pub input: Option<InputKindDef>,
}

impl TaskDef {
    /// The options that override the function's.
    pub fn options(&self) -> OptionsDef<'_> {
        OptionsDef {
            timeout: self.timeout.as_deref(),
            retries: self.retries.as_ref(),
            kill_grace: self.kill_grace.as_deref(),
            env: self.env.as_ref(),
            cwd: self.cwd.as_deref(),
            limits: self.limits.as_ref(),
            max_items_per_worker: self.max_items_per_worker,
            fingerprint: self.fingerprint,
            input: self.input,
        }
    }
}

impl JobFile {
    /// The options the job may set for every task (no `env`, `cwd`, `limits` or
    /// `max_items_per_worker` at this level).
    pub fn options(&self) -> OptionsDef<'_> {
        OptionsDef {
            timeout: self.timeout.as_deref(),
            retries: self.retries.as_ref(),
            kill_grace: self.kill_grace.as_deref(),
            ..OptionsDef::default()
        }
    }
}

/// The options shared by the job, a function and a task, as one level wrote them.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionsDef<'a> {
    pub timeout: Option<&'a str>,
    pub retries: Option<&'a RetriesDef>,
    pub kill_grace: Option<&'a str>,
    pub env: Option<&'a BTreeMap<String, String>>,
    pub cwd: Option<&'a str>,
    pub limits: Option<&'a LimitsDef>,
    pub max_items_per_worker: Option<u64>,
    pub fingerprint: Option<FingerprintDef>,
    pub input: Option<InputKindDef>,
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

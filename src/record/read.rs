//! Reading results back: a results file in any format runjobs writes (JSON, TOML, JSON
//! Lines) or a journal, one result at a time, in the order the file holds them. `--resume`
//! and `report` are both visitors of this one reader.
//!
//! A JSON document is parsed from its bytes with serde seeds, so a million results are never
//! all in memory as values; TOML is turned into JSON text first (the toml crate builds its
//! tree whole); JSON Lines and journals are read line by line.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::journal::{self, Entry};
use super::{Format, Summary, TaskHeader};

/// A task as far as its file describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskInfo {
    pub name: String,
    pub function: Option<String>,
    /// What `--resume` matches results by; files of an older runjobs have none.
    pub function_hash: Option<String>,
    pub workers: Option<u64>,
}

impl From<TaskHeader> for TaskInfo {
    fn from(header: TaskHeader) -> TaskInfo {
        TaskInfo {
            name: header.name,
            function: Some(header.function),
            function_hash: Some(header.function_hash),
            workers: Some(header.workers as u64),
        }
    }
}

/// The run as its file describes it. A journal of a killed run has only the job, its file and
/// `started_at`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunInfo {
    pub job: Option<String>,
    pub job_file: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_s: Option<f64>,
    pub status: Option<String>,
    pub summary: Option<Summary>,
}

/// What a reader hands on, in the order the file holds it.
pub trait ResultsVisitor {
    /// A run begins (a journal may hold several, one after another); its results follow.
    fn run(&mut self, started_at: &str);
    /// A task begins; its results follow.
    fn task(&mut self, task: &TaskInfo);
    /// One result of the task begun last, as the JSON object the file holds; an error
    /// stops the reading (the file is not what it should be).
    fn result(&mut self, task: &TaskInfo, result: &RawValue) -> Result<(), String>;
}

/// What a whole file said of itself.
#[derive(Debug, Default)]
pub struct FileInfo {
    /// A journal (a run that never wrote its results file).
    pub journal: bool,
    pub run: RunInfo,
    /// Journal lines that did not parse (a killed run's torn last line).
    pub torn_lines: u64,
}

/// Reads the results file or journal at `path` into `visitor`. The error says what is wrong
/// with the file (the caller names it).
pub fn read(path: &Path, visitor: &mut dyn ResultsVisitor) -> Result<FileInfo, String> {
    if path.extension().is_some_and(|e| e == "journal") {
        return read_journal(path, visitor);
    }
    let format = path
        .extension()
        .and_then(|e| e.to_str())
        .and_then(Format::from_extension)
        .ok_or("cannot tell its format: use a .json, .toml, .jsonl or .journal file")?;
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let run = match format {
        Format::Json => read_document(&bytes, visitor)?,
        Format::Toml => {
            let text = String::from_utf8(bytes).map_err(|e| e.to_string())?;
            if text.contains(TOML_RESULTS) {
                read_toml_lines(&text, visitor)?
            } else {
                // Not our layout (edited by hand, say): the same tree as JSON, turned into
                // JSON text and read the same way.
                let toml: toml::Value = toml::from_str(&text).map_err(|e| e.to_string())?;
                let json = serde_json::to_vec(&toml).map_err(|e| e.to_string())?;
                read_document(&json, visitor)?
            }
        }
        Format::Jsonl => read_lines(&bytes, visitor)?,
    };
    Ok(FileInfo {
        journal: false,
        run,
        torn_lines: 0,
    })
}

/// A JSON results document, one result at a time.
fn read_document(bytes: &[u8], visitor: &mut dyn ResultsVisitor) -> Result<RunInfo, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let mut run = RunInfo::default();
    let seed = DocumentSeed {
        visitor,
        run: &mut run,
    };
    DeserializeSeed::deserialize(seed, &mut deserializer)
        .and_then(|()| deserializer.end())
        .map_err(|e| format!("not a runjobs results file: {e}"))?;
    Ok(run)
}

/// How our TOML writer opens a task's results: one inline table a line follows, then `]`.
const TOML_RESULTS: &str = "\nresults = [\n";

/// TOML results in the layout runjobs writes them (`output::toml`), a line at a time: the
/// top-level keys, then each `[[tasks]]` with its keys, `results = [`, one inline table a
/// result, `]`. Memory holds one line, not the tree.
fn read_toml_lines(text: &str, visitor: &mut dyn ResultsVisitor) -> Result<RunInfo, String> {
    enum At {
        Top,
        TaskKeys,
        Results,
    }
    let mut at = At::Top;
    let mut top = String::new();
    let mut keys = String::new();
    let mut run: Option<RunInfo> = None;
    let mut task = TaskInfo::default();
    for (n, line) in text.lines().enumerate() {
        let what = |e: String| format!("line {}: {e}", n + 1);
        match at {
            _ if line == "[[tasks]]" && !matches!(at, At::Results) => {
                if run.is_none() {
                    let info: RunInfo = toml::from_str(&top).map_err(|e| what(e.to_string()))?;
                    visitor.run(info.started_at.as_deref().unwrap_or(""));
                    run = Some(info);
                }
                keys.clear();
                at = At::TaskKeys;
            }
            At::Top => {
                top.push_str(line);
                top.push('\n');
            }
            At::TaskKeys if line == "results = [" => {
                #[derive(Deserialize)]
                struct Keys {
                    name: String,
                    function: Option<String>,
                    function_hash: Option<String>,
                    workers: Option<u64>,
                }
                let k: Keys = toml::from_str(&keys).map_err(|e| what(e.to_string()))?;
                task = TaskInfo {
                    name: k.name,
                    function: k.function,
                    function_hash: k.function_hash,
                    workers: k.workers,
                };
                visitor.task(&task);
                at = At::Results;
            }
            At::TaskKeys => {
                keys.push_str(line);
                keys.push('\n');
            }
            At::Results if line == "]" => at = At::TaskKeys,
            At::Results => {
                let record = line.strip_suffix(',').unwrap_or(line);
                let value: serde_json::Value = toml::de::ValueDeserializer::parse(record)
                    .and_then(serde_json::Value::deserialize)
                    .map_err(|e| what(e.to_string()))?;
                let raw =
                    serde_json::value::to_raw_value(&value).map_err(|e| what(e.to_string()))?;
                visitor.result(&task, &raw)?;
            }
        }
    }
    match (at, run) {
        (At::Results, _) => Err("it ends inside a task's results".into()),
        (_, Some(run)) => Ok(run),
        (_, None) => Err("not a runjobs results file: it has no `[[tasks]]`".into()),
    }
}

/// JSON Lines results: each line a result naming its task, then a last line with the run's
/// status, summary and function identities.
fn read_lines(bytes: &[u8], visitor: &mut dyn ResultsVisitor) -> Result<RunInfo, String> {
    #[derive(Deserialize)]
    struct LastLine {
        #[serde(flatten)]
        run: RunInfo,
        #[serde(default)]
        function_hashes: HashMap<String, String>,
        /// The task headers (files of an older runjobs have only the hashes).
        #[serde(default)]
        tasks: Vec<TaskHeader>,
    }
    let lines = || {
        bytes
            .split(|b| *b == b'\n')
            .map(<[u8]>::trim_ascii)
            .filter(|l| !l.is_empty())
    };
    let last = lines().next_back().ok_or("it is empty").and_then(|line| {
        serde_json::from_slice::<LastLine>(line)
            .ok()
            .filter(|last| last.run.started_at.is_some() && last.run.summary.is_some())
            .ok_or("its last line (status and summary) is missing")
    })?;
    visitor.run(last.run.started_at.as_deref().unwrap_or(""));
    let mut task: Option<TaskInfo> = None;
    for line in lines() {
        let Some(name) = task_of(line) else {
            continue; // the last line
        };
        let Ok(raw) = serde_json::from_slice::<&RawValue>(line) else {
            continue;
        };
        // A task's lines are together: tasks run one after another.
        if task.as_ref().is_none_or(|t| t.name != name) {
            let info = match last.tasks.iter().find(|t| t.name == name) {
                Some(header) => TaskInfo::from(header.clone()),
                None => TaskInfo {
                    function_hash: last.function_hashes.get(&name).cloned(),
                    name,
                    ..TaskInfo::default()
                },
            };
            visitor.task(&info);
            task = Some(info);
        }
        if let Some(task) = &task {
            visitor.result(task, raw)?;
        }
    }
    Ok(last.run)
}

/// The task a JSON Lines result names: read straight from our own `{"task":"NAME",` start,
/// else parsed.
fn task_of(line: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct TaskOf {
        task: Option<String>,
    }
    if let Some(rest) = line.strip_prefix(b"{\"task\":\"")
        && let Some(end) = memchr::memchr2(b'"', b'\\', rest)
        && rest[end] == b'"'
    {
        return std::str::from_utf8(&rest[..end]).ok().map(str::to_owned);
    }
    serde_json::from_slice::<TaskOf>(line).ok()?.task
}

fn read_journal(path: &Path, visitor: &mut dyn ResultsVisitor) -> Result<FileInfo, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut info = FileInfo {
        journal: true,
        ..FileInfo::default()
    };
    let mut task = TaskInfo::default();
    let mut bad = None;
    info.torn_lines = journal::read_entries(BufReader::new(file), |entry| match entry {
        Entry::Run {
            started_at,
            job,
            job_file,
        } => {
            visitor.run(&started_at);
            info.run.started_at = Some(started_at);
            // A journal of several runs is the same job's; the last one that names it wins.
            info.run.job = job.or(info.run.job.take());
            info.run.job_file = job_file.or(info.run.job_file.take());
        }
        Entry::Task(header) => {
            task = TaskInfo::from(header);
            visitor.task(&task);
        }
        Entry::Record(record) => {
            let result = serde_json::value::to_raw_value(&record)
                .map_err(|e| e.to_string())
                .and_then(|raw| visitor.result(&task, &raw));
            if let Err(e) = result {
                bad.get_or_insert(e);
            }
        }
    })
    .map_err(|e| e.to_string())?;
    // A journal that names no run (empty, say) is the caller's to judge.
    match bad {
        Some(e) => Err(format!("not a runjobs journal: {e}")),
        None => Ok(info),
    }
}

/// Reads a results document (`{"started_at": ..., "tasks": [{"function_hash": ...,
/// "results": [...]}], ...}`), handing each result on as it is read.
struct DocumentSeed<'a> {
    visitor: &'a mut dyn ResultsVisitor,
    run: &'a mut RunInfo,
}

impl<'de> DeserializeSeed<'de> for DocumentSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DocumentSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a runjobs results document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut announced = false;
        let mut tasks_seen = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "started_at" => {
                    let started_at: String = map.next_value()?;
                    self.visitor.run(&started_at);
                    self.run.started_at = Some(started_at);
                    announced = true;
                }
                "tasks" => {
                    // `started_at` comes first in our files; in another order the results
                    // belong to a run of unknown start.
                    if !announced {
                        self.visitor.run("");
                        announced = true;
                    }
                    map.next_value_seed(TasksSeed {
                        visitor: &mut *self.visitor,
                    })?;
                    tasks_seen = true;
                }
                "job" => self.run.job = map.next_value()?,
                "job_file" => self.run.job_file = map.next_value()?,
                "finished_at" => self.run.finished_at = map.next_value()?,
                "duration_s" => self.run.duration_s = map.next_value()?,
                "status" => self.run.status = map.next_value()?,
                "summary" => self.run.summary = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !tasks_seen {
            return Err(serde::de::Error::missing_field("tasks"));
        }
        Ok(())
    }
}

struct TasksSeed<'a> {
    visitor: &'a mut dyn ResultsVisitor,
}

impl<'de> DeserializeSeed<'de> for TasksSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for TasksSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of tasks")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(TaskSeed {
                visitor: &mut *self.visitor,
            })?
            .is_some()
        {}
        Ok(())
    }
}

struct TaskSeed<'a> {
    visitor: &'a mut dyn ResultsVisitor,
}

impl<'de> DeserializeSeed<'de> for TaskSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TaskSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a task with its results")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut task = TaskInfo::default();
        let mut announced = false;
        // Results met before the task's own keys (not in our files, but key order is free):
        // handed on once the task is known.
        let mut early: Vec<Box<RawValue>> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "name" => task.name = map.next_value()?,
                "function" => task.function = map.next_value()?,
                "function_hash" => task.function_hash = map.next_value()?,
                "workers" => task.workers = map.next_value()?,
                // Our files name the task before its results.
                "results"
                    if !announced && (task.function_hash.is_some() || !task.name.is_empty()) =>
                {
                    self.visitor.task(&task);
                    announced = true;
                    map.next_value_seed(ResultsSeed {
                        visitor: &mut *self.visitor,
                        task: &task,
                    })?;
                }
                "results" => early.extend(map.next_value::<Vec<Box<RawValue>>>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !announced {
            self.visitor.task(&task);
        }
        for result in early {
            self.visitor
                .result(&task, &result)
                .map_err(serde::de::Error::custom)?;
        }
        Ok(())
    }
}

struct ResultsSeed<'a> {
    visitor: &'a mut dyn ResultsVisitor,
    task: &'a TaskInfo,
}

impl<'de> DeserializeSeed<'de> for ResultsSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ResultsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of results")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(result) = seq.next_element::<&'de RawValue>()? {
            self.visitor
                .result(self.task, result)
                .map_err(serde::de::Error::custom)?;
        }
        Ok(())
    }
}

//! Reading results back: a results file in any format runjobs writes (JSON, TOML, JSON
//! Lines) or a journal, one result at a time, in the order the file holds them. `--resume`
//! and `report` are both visitors of this one reader.
//!
//! Every format is streamed from the file, so memory holds one result at a time, not the
//! file: a JSON document is parsed from a buffered reader with serde seeds; TOML in our
//! layout, JSON Lines and journals are read line by line (a TOML file in another layout,
//! edited by hand say, is the one thing read whole: the toml crate builds its tree at once).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
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
    /// The task begun last ends: what the file says of it after its results (nothing in
    /// journals and files of an older runjobs).
    fn task_end(&mut self, task: &TaskInfo, end: &TaskEnd) {
        let _ = (task, end);
    }
}

/// What a file says of a task after its results, besides its summary (`TaskFooter`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TaskEnd {
    /// The CPU time its long-lived workers used in all.
    pub worker_cpu_s: Option<f64>,
}

/// A task's closing keys as the file holds them: `"summary":{...},"worker_cpu_s":0.2` (with
/// or without the braces); what does not parse says nothing.
fn footer_of(members: &[u8], scratch: &mut Vec<u8>) -> TaskEnd {
    scratch.clear();
    if !members.starts_with(b"{") {
        scratch.push(b'{');
    }
    scratch.extend_from_slice(members);
    serde_json::from_slice(scratch).unwrap_or_default()
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
    let open = || File::open(path).map_err(|e| e.to_string());
    let buffered = || open().map(|f| BufReader::with_capacity(READ_BUFFER, f));
    let run = match format {
        Format::Json => {
            let mut text = buffered()?;
            let mut first = Vec::new();
            text.read_until(b'\n', &mut first)
                .map_err(|e| e.to_string())?;
            if first.starts_with(JSON_OPENING) && first.trim_ascii_end().ends_with(JSON_TASKS) {
                read_json_lines(&first, text, visitor)?
            } else {
                read_document(first.as_slice().chain(text), visitor)?
            }
        }
        Format::Toml if has_our_toml_layout(buffered()?)? => read_toml_lines(buffered()?, visitor)?,
        Format::Toml => {
            // Not our layout (edited by hand, say): the same tree as JSON, turned into
            // JSON text and read the same way.
            let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
            let toml: toml::Value = toml::from_str(&text).map_err(|e| e.to_string())?;
            let json = serde_json::to_vec(&toml).map_err(|e| e.to_string())?;
            read_document(json.as_slice(), visitor)?
        }
        Format::Jsonl => read_lines(&mut open()?, visitor)?,
    };
    Ok(FileInfo {
        journal: false,
        run,
        torn_lines: 0,
    })
}

/// How much of a file is read at a time.
const READ_BUFFER: usize = 1 << 16;

/// A JSON results document, one result at a time.
fn read_document(bytes: impl Read, visitor: &mut dyn ResultsVisitor) -> Result<RunInfo, String> {
    let mut deserializer = serde_json::Deserializer::from_reader(bytes);
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

/// How our JSON writer opens a results file: a line of the run's keys ending in the list of
/// tasks; then each task's keys on a line ending in its list of results, a result a line
/// (`,` after all but the last), a line closing the results with the task's summary, and a
/// last line closing the tasks with the run's closing keys.
const JSON_OPENING: &[u8] = b"{\"version\":";
const JSON_TASKS: &[u8] = b"\"tasks\":[";
const JSON_RESULTS: &[u8] = b"\"results\":[";
const JSON_TASK_END: &[u8] = b"],\"summary\":";

/// A JSON results file in our writer's layout (`first` is its first line), a line at a time:
/// each result line is parsed alone, at `from_slice`'s speed, with one line in memory. A
/// line out of place is an error naming it: the file was damaged.
fn read_json_lines(
    first: &[u8],
    mut text: impl BufRead,
    visitor: &mut dyn ResultsVisitor,
) -> Result<RunInfo, String> {
    /// `{"k":v,...,"list":[` (a line opening a list) as the object of its keys.
    fn keys_before<'a, T: Deserialize<'a>>(
        line: &[u8],
        list: &[u8],
        buf: &'a mut Vec<u8>,
    ) -> Option<T> {
        let keys = line.strip_suffix(list)?;
        buf.clear();
        buf.extend_from_slice(keys.strip_suffix(b",").unwrap_or(keys));
        buf.push(b'}');
        serde_json::from_slice(buf).ok()
    }
    let mut scratch = Vec::new();
    let mut run: RunInfo = keys_before(first.trim_ascii_end(), JSON_TASKS, &mut scratch)
        .ok_or("not a runjobs results file: line 1 is not the run's keys")?;
    visitor.run(run.started_at.as_deref().unwrap_or(""));
    let mut task: Option<TaskInfo> = None;
    let mut line = Vec::new();
    for n in 2.. {
        let bad = |what: &str| format!("not a runjobs results file: line {n}: {what}");
        line.clear();
        if text
            .read_until(b'\n', &mut line)
            .map_err(|e| bad(&e.to_string()))?
            == 0
        {
            return Err(bad("the file ends before its tasks do"));
        }
        let this = line.trim_ascii();
        match &task {
            Some(t) if this.starts_with(JSON_TASK_END) => {
                // `],"summary":{...},...}` and a `,` when another task follows.
                let members = this[2..].strip_suffix(b",").unwrap_or(&this[2..]);
                visitor.task_end(t, &footer_of(members, &mut scratch));
                task = None;
            }
            Some(t) => {
                let result = this.strip_suffix(b",").unwrap_or(this);
                let raw =
                    serde_json::from_slice::<&RawValue>(result).map_err(|e| bad(&e.to_string()))?;
                visitor.result(t, raw)?;
            }
            None if this.ends_with(JSON_RESULTS) => {
                #[derive(Deserialize)]
                struct Keys {
                    name: String,
                    function: Option<String>,
                    function_hash: Option<String>,
                    workers: Option<u64>,
                }
                let k: Keys = keys_before(this, JSON_RESULTS, &mut scratch)
                    .ok_or_else(|| bad("not a task's keys"))?;
                let info = TaskInfo {
                    name: k.name,
                    function: k.function,
                    function_hash: k.function_hash,
                    workers: k.workers,
                };
                visitor.task(&info);
                task = Some(info);
            }
            None => {
                // The last line: `],"status":...}`, the run's closing keys.
                let keys = this.strip_prefix(b"],").ok_or_else(|| bad("not a task"))?;
                scratch.clear();
                scratch.push(b'{');
                scratch.extend_from_slice(keys);
                let end: RunInfo =
                    serde_json::from_slice(&scratch).map_err(|e| bad(&e.to_string()))?;
                run.finished_at = end.finished_at;
                run.duration_s = end.duration_s;
                run.status = end.status;
                run.summary = end.summary;
                break;
            }
        }
    }
    Ok(run)
}

/// How our TOML writer opens a task's results: one inline table a line follows, then `]`.
const TOML_RESULTS: &str = "results = [";

/// Whether a TOML file is laid out as our writer lays it out (its first task's results
/// open near the top, so this reads little).
fn has_our_toml_layout(text: impl BufRead) -> Result<bool, String> {
    for line in text.lines() {
        if line.map_err(|e| e.to_string())? == TOML_RESULTS {
            return Ok(true);
        }
    }
    Ok(false)
}

/// TOML results in the layout runjobs writes them (`output::toml`), a line at a time: the
/// top-level keys, then each `[[tasks]]` with its keys, `results = [`, one inline table a
/// result, `]`. Memory holds one line, not the tree.
fn read_toml_lines(
    text: impl BufRead,
    visitor: &mut dyn ResultsVisitor,
) -> Result<RunInfo, String> {
    enum At {
        Top,
        TaskKeys,
        Results,
        /// After a task's results: its closing keys.
        TaskEnd,
    }
    let mut at = At::Top;
    let mut top = String::new();
    let mut keys = String::new();
    // Ends the task whose closing keys are in `keys`.
    let end = |visitor: &mut dyn ResultsVisitor, task: &TaskInfo, keys: &str| {
        visitor.task_end(task, &toml::from_str(keys).unwrap_or_default());
    };
    let mut run: Option<RunInfo> = None;
    let mut task = TaskInfo::default();
    for (n, line) in text.lines().enumerate() {
        let what = |e: String| format!("line {}: {e}", n + 1);
        let line = line.map_err(|e| what(e.to_string()))?;
        let line = line.as_str();
        match at {
            _ if line == "[[tasks]]" && !matches!(at, At::Results) => {
                if matches!(at, At::TaskEnd) {
                    end(visitor, &task, &keys);
                }
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
            At::TaskKeys if line == TOML_RESULTS => {
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
            At::TaskKeys | At::TaskEnd => {
                keys.push_str(line);
                keys.push('\n');
            }
            At::Results if line == "]" => {
                keys.clear();
                at = At::TaskEnd;
            }
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
    if matches!(at, At::TaskEnd) {
        end(visitor, &task, &keys);
    }
    match (at, run) {
        (At::Results, _) => Err("it ends inside a task's results".into()),
        (_, Some(run)) => Ok(run),
        (_, None) => Err("not a runjobs results file: it has no `[[tasks]]`".into()),
    }
}

/// JSON Lines results: each line a result naming its task, then a last line with the run's
/// status, summary and function identities.
fn read_lines(file: &mut File, visitor: &mut dyn ResultsVisitor) -> Result<RunInfo, String> {
    #[derive(Deserialize)]
    struct LastLine {
        #[serde(flatten)]
        run: RunInfo,
        #[serde(default)]
        function_hashes: HashMap<String, String>,
        /// The task headers (files of an older runjobs have only the hashes).
        #[serde(default)]
        tasks: Vec<TaskLine>,
    }
    #[derive(Deserialize)]
    struct TaskLine {
        #[serde(flatten)]
        header: TaskHeader,
        worker_cpu_s: Option<f64>,
    }
    // Ends `task`, with what the last line says of it.
    let end = |visitor: &mut dyn ResultsVisitor, task: &TaskInfo, tasks: &[TaskLine]| {
        let line = tasks.iter().find(|t| t.header.name == task.name);
        let end = TaskEnd {
            worker_cpu_s: line.and_then(|t| t.worker_cpu_s),
        };
        visitor.task_end(task, &end);
    };
    let last_line = last_line(file).map_err(|e| e.to_string())?;
    if last_line.is_empty() {
        return Err("it is empty".into());
    }
    let last = serde_json::from_slice::<LastLine>(&last_line)
        .ok()
        .filter(|last| last.run.started_at.is_some() && last.run.summary.is_some())
        .ok_or("its last line (status and summary) is missing")?;
    visitor.run(last.run.started_at.as_deref().unwrap_or(""));
    file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut lines = BufReader::with_capacity(READ_BUFFER, file);
    let mut task: Option<TaskInfo> = None;
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        if lines
            .read_until(b'\n', &mut buffer)
            .map_err(|e| e.to_string())?
            == 0
        {
            break;
        }
        let line = buffer.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let Some(name) = task_of(line) else {
            continue; // the last line
        };
        let Ok(raw) = serde_json::from_slice::<&RawValue>(line) else {
            continue;
        };
        // A task's lines are together: tasks run one after another.
        if task.as_ref().is_none_or(|t| t.name != name) {
            if let Some(done) = &task {
                end(visitor, done, &last.tasks);
            }
            let info = match last.tasks.iter().find(|t| t.header.name == name) {
                Some(line) => TaskInfo::from(line.header.clone()),
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
    if let Some(done) = &task {
        end(visitor, done, &last.tasks);
    }
    Ok(last.run)
}

/// The last line of a file that is not blank (read from the end, a block at a time).
fn last_line(file: &mut File) -> std::io::Result<Vec<u8>> {
    let mut end = file.seek(SeekFrom::End(0))?;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let trimmed = tail.trim_ascii();
        if let Some(at) = memchr::memrchr(b'\n', trimmed) {
            return Ok(trimmed[at + 1..].to_vec());
        }
        if end == 0 {
            return Ok(trimmed.to_vec());
        }
        let start = end.saturating_sub(READ_BUFFER as u64);
        let mut block = vec![0; (end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block)?;
        block.extend_from_slice(&tail);
        tail = block;
        end = start;
    }
}

/// The task a JSON Lines result names: read straight from our own
/// `{"record":"item","task":"NAME",` start (or `{"task":"NAME",`, as files written before
/// `record` have it), else parsed. The last line (`"record": "run"`) names none.
fn task_of(line: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct TaskOf {
        task: Option<String>,
    }
    let rest = line
        .strip_prefix(b"{\"record\":\"item\",\"task\":\"")
        .or_else(|| line.strip_prefix(b"{\"task\":\""));
    if let Some(rest) = rest
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
        let mut footer = TaskEnd::default();
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
                "worker_cpu_s" => {
                    footer.worker_cpu_s = map.next_value::<serde_json::Value>()?.as_f64();
                }
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
        self.visitor.task_end(&task, &footer);
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
        // Owned: a reader's bytes are gone once parsed (one small allocation a result).
        while let Some(result) = seq.next_element::<Box<RawValue>>()? {
            self.visitor
                .result(self.task, &result)
                .map_err(serde::de::Error::custom)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what a reader hands on, as text.
    #[derive(Default)]
    struct Seen(Vec<String>);

    impl ResultsVisitor for Seen {
        fn run(&mut self, started_at: &str) {
            self.0.push(format!("run {started_at}"));
        }
        fn task(&mut self, task: &TaskInfo) {
            self.0.push(format!("task {}", task.name));
        }
        fn result(&mut self, task: &TaskInfo, result: &RawValue) -> Result<(), String> {
            self.0.push(format!("{} {}", task.name, result.get()));
            Ok(())
        }
        fn task_end(&mut self, task: &TaskInfo, end: &TaskEnd) {
            if let Some(cpu) = end.worker_cpu_s {
                self.0.push(format!("end {} cpu {cpu}", task.name));
            }
        }
    }

    fn read_text(name: &str, text: &str) -> Result<(Vec<String>, RunInfo), String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let mut seen = Seen::default();
        let info = read(&path, &mut seen)?;
        Ok((seen.0, info.run))
    }

    /// Our writer's layout, two tasks (one with no results).
    const OURS: &str = concat!(
        r#"{"version":1,"job":"j","started_at":"T","tasks":["#,
        "\n",
        r#"{"name":"a","function":"builtin:square","function_hash":"h","workers":2,"results":["#,
        "\n",
        r#"{"index":0,"input":1,"status":"ok","output":1},"#,
        "\n",
        r#"{"index":1,"input":"x, y","status":"ok","output":[2]}"#,
        "\n",
        r#"],"summary":{"total":2},"worker_cpu_s":0.25},"#,
        "\n",
        r#"{"name":"b","function_hash":"g","results":["#,
        "\n",
        r#"],"summary":{"total":0}}"#,
        "\n",
        r#"],"status":"ok","finished_at":"U","duration_s":0.5}"#,
        "\n",
    );

    #[test]
    fn our_json_layout_is_read_a_line_at_a_time_as_any_json_would_be() {
        let (lines, run) = read_text("r.json", OURS).unwrap();
        let expected = [
            "run T",
            "task a",
            r#"a {"index":0,"input":1,"status":"ok","output":1}"#,
            r#"a {"index":1,"input":"x, y","status":"ok","output":[2]}"#,
            "end a cpu 0.25",
            "task b",
        ];
        assert_eq!(lines, expected);
        assert_eq!(run.job.as_deref(), Some("j"));
        assert_eq!(run.status.as_deref(), Some("ok"));
        assert_eq!(run.finished_at.as_deref(), Some("U"));
        // The same document on one line takes the general path and reads the same.
        let (one_line, _) = read_text("r.json", &OURS.replace('\n', "")).unwrap();
        assert_eq!(one_line, expected);
    }

    #[test]
    fn a_damaged_line_of_our_layout_is_named() {
        let damaged = OURS.replace(r#"{"index":1,"#, r#"{"index":1"#);
        let err = read_text("r.json", &damaged).unwrap_err();
        assert!(err.contains("line 4"), "{err}");
        let cut = &OURS[..OURS.find("],\"summary\":{\"total\":0}").unwrap()];
        let err = read_text("r.json", cut).unwrap_err();
        assert!(err.contains("ends before its tasks do"), "{err}");
    }

    #[test]
    fn json_lines_are_read_with_their_last_line_first() {
        let text = concat!(
            r#"{"task":"a","index":0,"input":1,"status":"ok"}"#,
            "\n\n",
            r#"{"started_at":"T","status":"ok","summary":{"total":1,"ok":1,"failed":0,"timed_out":0,"skipped":0},"function_hashes":{"a":"h"},"tasks":[{"name":"a","function":"f","function_hash":"h","workers":1,"worker_cpu_s":0.5}]}"#,
            "\n\n"
        );
        let (lines, run) = read_text("r.jsonl", text).unwrap();
        assert_eq!(
            lines,
            [
                "run T",
                "task a",
                r#"a {"task":"a","index":0,"input":1,"status":"ok"}"#,
                "end a cpu 0.5"
            ]
        );
        assert_eq!(run.status.as_deref(), Some("ok"));
        assert!(read_text("r.jsonl", "\n\n").unwrap_err().contains("empty"));
    }
}

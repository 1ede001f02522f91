//! `--resume OUTPUT`: the results an earlier run finished, found by identity (function and
//! input, see `identity`) in OUTPUT and in the journal beside it, and the item source that
//! hands them back instead of running them again.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::SyncSender;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::event::{Event, ItemRecord, Status};
use crate::identity::{self, ItemKey};
use crate::job::Format;
use crate::journal::{self, Entry};
use crate::pool::Source;

/// Reused results travel to the collector in batches of this many.
const BATCH: usize = 1024;

/// A finished result that may stand in for running its item again.
#[derive(Debug, Clone)]
struct Done {
    output: Box<RawValue>,
    attempts: u32,
    started_s: f64,
    duration_s: f64,
    worker: Option<u32>,
    /// `started_at` of the run that computed it.
    run: Arc<str>,
}

/// Every ok result of the earlier runs, by identity.
#[derive(Debug, Default)]
pub struct Previous {
    done: HashMap<ItemKey, Done>,
    /// What was read, for the user: e.g. "`out/x.json` and its journal".
    pub sources: Vec<String>,
    /// Journal lines that did not parse (a killed run's torn last line).
    pub torn_lines: u64,
    /// Results whose task has no `function_hash` (written by a runjobs from before
    /// identities): they cannot be matched, so their items run again.
    pub unidentified: u64,
}

impl Previous {
    /// Reads OUTPUT and the journal beside it (either may be missing; later results win).
    /// `Ok(None)`: neither exists, so there is nothing to resume.
    pub fn load(output: &Path) -> Result<Option<Previous>, String> {
        let mut previous = Previous::default();
        let journal = journal::path_for(output);
        let mut found = false;
        if output.exists() {
            previous
                .read_output(output)
                .map_err(|e| format!("cannot resume from `{}`: {e}", output.display()))?;
            previous.sources.push(format!("`{}`", output.display()));
            found = true;
        }
        if journal.exists() {
            previous
                .read_journal(&journal)
                .map_err(|e| format!("cannot resume from `{}`: {e}", journal.display()))?;
            previous.sources.push(format!("`{}`", journal.display()));
            found = true;
        }
        Ok(found.then_some(previous))
    }

    pub fn len(&self) -> usize {
        self.done.len()
    }

    /// Whether this item finished ok in an earlier run.
    pub fn is_done(&self, function_hash: &str, input: &Value) -> bool {
        self.done
            .contains_key(&identity::item_key(function_hash, input))
    }

    /// The earlier result for this item, if it finished ok.
    fn reuse(&self, function_hash: &str, index: u64, input: &Value) -> Option<ItemRecord> {
        let done = self.done.get(&identity::item_key(function_hash, input))?;
        Some(ItemRecord {
            index,
            input: input.clone(),
            status: Status::Ok,
            output: Some(done.output.clone()),
            error: None,
            attempts: done.attempts,
            started_s: done.started_s,
            duration_s: done.duration_s,
            worker: done.worker,
            reused_from: Some(Arc::clone(&done.run)),
        })
    }

    fn keep(&mut self, function_hash: &str, result: StoredResult, run: &Arc<str>) {
        if result.status != Status::Ok {
            return;
        }
        let output = result.output.unwrap_or(Value::Null);
        let Ok(output) = serde_json::value::to_raw_value(&output) else {
            return;
        };
        let run = match result.reused_from {
            Some(earlier) => Arc::from(earlier),
            None => Arc::clone(run),
        };
        self.done.insert(
            identity::item_key(function_hash, &result.input),
            Done {
                output,
                attempts: result.attempts,
                started_s: result.started_s,
                duration_s: result.duration_s,
                worker: result.worker,
                run,
            },
        );
    }

    fn read_output(&mut self, path: &Path) -> Result<(), String> {
        let format = path
            .extension()
            .and_then(|e| e.to_str())
            .and_then(Format::from_extension)
            .ok_or("cannot tell its format: use a .json, .toml or .jsonl file")?;
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        match format {
            Format::Json => {
                let doc: Document = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("not a runjobs results file: {e}"))?;
                self.read_document(doc);
            }
            Format::Toml => {
                let text = String::from_utf8(bytes).map_err(|e| e.to_string())?;
                let toml: toml::Value = toml::from_str(&text).map_err(|e| e.to_string())?;
                let json = serde_json::to_value(toml).map_err(|e| e.to_string())?;
                let doc: Document = serde_json::from_value(json)
                    .map_err(|e| format!("not a runjobs results file: {e}"))?;
                self.read_document(doc);
            }
            Format::Jsonl => self.read_lines(&bytes)?,
        }
        Ok(())
    }

    fn read_document(&mut self, doc: Document) {
        let run: Arc<str> = Arc::from(doc.started_at);
        for task in doc.tasks {
            // A results file from before identities were recorded cannot be matched.
            let Some(hash) = task.function_hash else {
                self.unidentified += task.results.len() as u64;
                continue;
            };
            for result in task.results {
                self.keep(&hash, result, &run);
            }
        }
    }

    /// JSON Lines results: the function identities are on the last line, after the results.
    fn read_lines(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut results = Vec::new();
        let mut last: Option<LastLine> = None;
        for line in bytes.split(|b| *b == b'\n') {
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<StoredResult>(line) {
                Ok(mut result) if result.task.is_some() => {
                    let task = result.task.take().unwrap_or_default();
                    results.push((task, result));
                }
                // Not a result: the last line, with the run's status.
                _ => {
                    last = Some(
                        serde_json::from_slice(line)
                            .map_err(|e| format!("not a runjobs results line: {e}"))?,
                    );
                }
            }
        }
        let last = last.ok_or("its last line (status and summary) is missing")?;
        let run: Arc<str> = Arc::from(last.started_at);
        for (task, result) in results {
            match last.function_hashes.get(&task) {
                Some(hash) => {
                    let hash = hash.clone();
                    self.keep(&hash, result, &run);
                }
                None => self.unidentified += 1,
            }
        }
        Ok(())
    }

    fn read_journal(&mut self, path: &Path) -> Result<(), String> {
        let file = File::open(path).map_err(|e| e.to_string())?;
        let mut run: Arc<str> = Arc::from("");
        let mut hash = String::new();
        let mut records = Vec::new();
        self.torn_lines += journal::read_entries(BufReader::new(file), |entry| match entry {
            Entry::Run { started_at } => run = Arc::from(started_at),
            Entry::Task(task) => hash = task.function_hash,
            Entry::Record(record) => records.push((hash.clone(), Arc::clone(&run), record)),
        })
        .map_err(|e| e.to_string())?;
        for (hash, run, record) in records {
            let result = StoredResult {
                task: None,
                input: record.input,
                status: record.status,
                output: record
                    .output
                    .and_then(|raw| serde_json::from_str(raw.get()).ok()),
                attempts: record.attempts,
                started_s: record.started_s,
                duration_s: record.duration_s,
                worker: record.worker,
                reused_from: record.reused_from.map(|r| r.to_string()),
            };
            self.keep(&hash, result, &run);
        }
        Ok(())
    }

    /// Wraps a task's items: the ones already done go straight to `events` as reused
    /// results; the rest come out to be run.
    pub fn skip_done(
        self: &Arc<Previous>,
        function_hash: String,
        items: Source,
        events: SyncSender<Event>,
        task: usize,
    ) -> Source {
        Box::new(SkipDone {
            previous: Arc::clone(self),
            function_hash,
            items,
            events,
            task,
            reused: Vec::new(),
        })
    }
}

struct SkipDone {
    previous: Arc<Previous>,
    function_hash: String,
    items: Source,
    events: SyncSender<Event>,
    task: usize,
    reused: Vec<ItemRecord>,
}

impl SkipDone {
    fn send(&mut self) {
        if !self.reused.is_empty() {
            let records = std::mem::take(&mut self.reused);
            // A closed channel: the run is being torn down.
            let _ = self.events.send(Event::Finished {
                task: self.task,
                records,
            });
        }
    }
}

impl Iterator for SkipDone {
    type Item = (u64, Result<Value, String>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some((index, input)) = self.items.next() else {
                self.send();
                return None;
            };
            let done = input
                .as_ref()
                .ok()
                .and_then(|value| self.previous.reuse(&self.function_hash, index, value));
            match done {
                Some(record) => {
                    self.reused.push(record);
                    if self.reused.len() >= BATCH {
                        self.send();
                    }
                }
                None => return Some((index, input)),
            }
        }
    }
}

/// A results file, as much of it as resuming needs.
#[derive(Deserialize)]
struct Document {
    started_at: String,
    #[serde(default)]
    tasks: Vec<DocumentTask>,
}

#[derive(Deserialize)]
struct DocumentTask {
    function_hash: Option<String>,
    #[serde(default)]
    results: Vec<StoredResult>,
}

/// A result as any output format (or the journal) holds it. TOML drops nulls, hence the
/// defaults.
#[derive(Deserialize)]
struct StoredResult {
    /// JSON Lines results name their task.
    task: Option<String>,
    #[serde(default)]
    input: Value,
    status: Status,
    output: Option<Value>,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    started_s: f64,
    #[serde(default)]
    duration_s: f64,
    worker: Option<u32>,
    reused_from: Option<String>,
}

#[derive(Deserialize)]
struct LastLine {
    started_at: String,
    #[serde(default)]
    function_hashes: HashMap<String, String>,
}

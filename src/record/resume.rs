//! `--resume OUTPUT`: the results an earlier run finished, found by identity (function and
//! input, see `identity`) in OUTPUT and in the journal beside it, to hand back instead of
//! running them again (`run::reuse` does the handing back).
//!
//! Equal inputs are distinct items: an identity may have finished several times, and each
//! finished computation stands in for one item only (the k-th of the equal inputs takes the
//! k-th computation), so six items with one input, two of which finished, run four more
//! times, never zero. Inserting, removing or reordering other inputs still reruns nothing.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::journal;
use super::read::{self, ResultsVisitor, TaskInfo};
use super::{FileState, ItemKey, ItemRecord, Status, Truncated, item_key};

/// A finished result that may stand in for running its item again.
#[derive(Debug, Clone)]
struct Done {
    output: Box<RawValue>,
    /// The output was cut at the cap when it was computed: a reused copy is cut as well.
    truncated: Option<Truncated>,
    attempts: u32,
    started_s: f64,
    duration_s: f64,
    worker: Option<u32>,
    cpu_s: Option<f64>,
    max_rss_kib: Option<u64>,
    node: Option<Arc<str>>,
    /// The state of the file its input named, when it was computed (SPEC §8).
    fingerprint: Option<Box<str>>,
    /// `started_at` of the run that computed it.
    run: Arc<str>,
    /// The results file (or journal) it was read from.
    from: Arc<str>,
}

impl Done {
    /// Whether this result is still the answer for an input whose file is in `state`
    /// (`None`: the input names no file).
    fn still_holds(&self, state: Option<&FileState>) -> bool {
        match state {
            None | Some(FileState::NotAPath) => true,
            Some(FileState::Unreadable) => false,
            Some(FileState::Known {
                fingerprint,
                modified,
            }) => match &self.fingerprint {
                Some(then) => **then == **fingerprint,
                // Written before fingerprints were kept: it holds if the file was last
                // changed before the run that computed it started (make's rule).
                None => humantime::parse_rfc3339_weak(&self.run)
                    .is_ok_and(|started| *modified < started),
            },
        }
    }
}

/// The finished computations of one identity.
#[derive(Debug)]
enum Computations {
    One(Done),
    Many(VecDeque<Done>),
}

impl Computations {
    fn push(&mut self, done: Done) {
        match self {
            Computations::One(first) => {
                let first = std::mem::replace(first, done.clone());
                *self = Computations::Many(VecDeque::from([first, done]));
            }
            Computations::Many(all) => all.push_back(done),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Done> {
        let (one, many) = match self {
            Computations::One(done) => (Some(done), None),
            Computations::Many(all) => (None, Some(all)),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    fn len(&self) -> usize {
        match self {
            Computations::One(_) => 1,
            Computations::Many(all) => all.len(),
        }
    }
}

/// Every ok result of the earlier runs, by identity.
///
/// A results file and the journal beside it (and a journal's runs, one after another) are
/// views of overlapping histories: a resumed run carries the results it reused, so one
/// computation can be in several views. A computation is known by its identity and the run
/// that computed it (`Done::run`), and each view says how many of those it holds; the most
/// any view holds is how many there are.
#[derive(Debug, Default)]
pub struct Previous {
    /// Taken out as they are reused: each computation stands in for one item.
    done: Mutex<HashMap<ItemKey, Computations>>,
    /// The view being read.
    view: HashMap<ItemKey, Computations>,
    computations: usize,
    /// What was read, for the user: e.g. "`out/x.json` and its journal".
    pub sources: Vec<String>,
    /// Journal lines that did not parse (a killed run's torn last line).
    pub torn_lines: u64,
    /// `reused_from` values seen, shared.
    runs: Vec<Arc<str>>,
    /// The `function_hash` of every task read.
    functions: std::collections::HashSet<String>,
    /// Results whose task has no `function_hash` (written by a runjobs from before
    /// identities): they cannot be matched, so their items run again.
    pub unidentified: u64,
}

impl Previous {
    /// Reads OUTPUT and the journal beside it (either may be missing; later results win).
    /// `Ok(None)`: neither exists, so there is nothing to resume.
    pub fn load(
        output: &Path,
        shard_journals: &[Vec<PathBuf>],
    ) -> Result<Option<Previous>, String> {
        let mut previous = Previous::default();
        // Named by its journal (the file a user finds after a crash): read just that.
        if output.extension().is_some_and(|e| e == "journal") {
            if !output.exists() {
                // A run without a journal (`--no-journal`) may still have shard journals.
                let found = previous.read_shard_journals(output, shard_journals)?;
                return Ok(found.then_some(previous));
            }
            previous
                .read(output)
                .map_err(|e| format!("cannot resume from `{}`: {e}", output.display()))?;
            previous.sources.push(format!("`{}`", output.display()));
            previous.read_shard_journals(output, shard_journals)?;
            return Ok(Some(previous));
        }
        let journal = journal::path_for(output);
        let mut found = false;
        if output.exists() {
            previous
                .read(output)
                .map_err(|e| format!("cannot resume from `{}`: {e}", output.display()))?;
            previous.sources.push(format!("`{}`", output.display()));
            found = true;
        }
        if journal.exists() {
            previous
                .read(&journal)
                .map_err(|e| format!("cannot resume from `{}`: {e}", journal.display()))?;
            previous.sources.push(format!("`{}`", journal.display()));
            found = true;
        }
        found |= previous.read_shard_journals(output, shard_journals)?;
        Ok(found.then_some(previous))
    }

    /// Reads each submission's shard journals as one view; true when there were any.
    fn read_shard_journals(
        &mut self,
        output: &Path,
        groups: &[Vec<PathBuf>],
    ) -> Result<bool, String> {
        let mut found = false;
        for group in groups.iter().filter(|g| !g.is_empty()) {
            self.read_group(group).map_err(|e| {
                format!(
                    "cannot resume from the shard journals beside `{}`: {e}",
                    output.display()
                )
            })?;
            let folder = group[0].parent().unwrap_or(Path::new("."));
            self.sources.push(format!(
                "{} shard journal{} in `{}`",
                group.len(),
                if group.len() == 1 { "" } else { "s" },
                folder.display()
            ));
            found = true;
        }
        Ok(found)
    }

    /// Whether a task of this function was read.
    pub fn has_function(&self, function_hash: &str) -> bool {
        self.functions.contains(function_hash)
    }

    /// How many finished computations there are to reuse.
    pub fn len(&self) -> usize {
        self.computations
    }

    /// Adds what the view just read holds beyond what the views before it did.
    fn end_view(&mut self) {
        let view = std::mem::take(&mut self.view);
        let done = self
            .done
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if done.is_empty() {
            // The usual case: one view (a results file, or one run's journal).
            self.computations = view.values().map(Computations::len).sum();
            *done = view;
            return;
        }
        for (key, seen) in view {
            let known = match done.entry(key) {
                MapEntry::Vacant(slot) => {
                    self.computations += seen.len();
                    slot.insert(seen);
                    continue;
                }
                MapEntry::Occupied(known) => known.into_mut(),
            };
            let mut new = Vec::new();
            for (i, computation) in seen.iter().enumerate() {
                let from_run = |d: &&Done| Arc::ptr_eq(&d.run, &computation.run);
                // This view's n-th computation of that run is new if the known ones of that
                // run are fewer than n.
                let nth = seen.iter().take(i).filter(from_run).count();
                if known.iter().filter(from_run).count() <= nth {
                    new.push(computation.clone());
                }
            }
            self.computations += new.len();
            new.into_iter().for_each(|d| known.push(d));
        }
    }

    /// Takes an earlier computation of this item, if one is left: each stands in for one
    /// item only. `state` is the state of the file the input names, if it names one: a
    /// result computed from another state is not the answer any more.
    fn claim(&self, function_hash: &str, input: &Value, state: Option<&FileState>) -> Option<Done> {
        let key = item_key(function_hash, input);
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        let MapEntry::Occupied(mut entry) = done.entry(key) else {
            return None;
        };
        match entry.get_mut() {
            Computations::One(one) if !one.still_holds(state) => None,
            Computations::Many(all) if all.len() > 1 => {
                let at = all.iter().position(|d| d.still_holds(state))?;
                all.remove(at)
            }
            _ => match entry.remove() {
                Computations::One(done) => Some(done),
                Computations::Many(mut all) => all.pop_front().filter(|d| d.still_holds(state)),
            },
        }
    }

    /// Whether an earlier run finished this item (and claims that result: the dry run
    /// counts as the run would).
    pub fn claim_done(
        &self,
        function_hash: &str,
        input: &Value,
        state: Option<&FileState>,
    ) -> bool {
        self.claim(function_hash, input, state).is_some()
    }

    /// The earlier result for this item, if it finished ok and still holds for `state`.
    pub fn reuse(
        &self,
        function_hash: &str,
        index: u64,
        input: &Value,
        state: Option<&FileState>,
    ) -> Option<ItemRecord> {
        let done = self.claim(function_hash, input, state)?;
        // An old result that still holds gains the file's state, for the next run.
        let fingerprint = match state.and_then(FileState::fingerprint) {
            Some(now) => Some(Arc::clone(now)),
            None => done.fingerprint.map(Arc::from),
        };
        Some(ItemRecord {
            index,
            input: input.clone(),
            status: Status::Ok,
            output: Some(done.output),
            truncated: done.truncated,
            error: None,
            attempts: done.attempts,
            started_s: done.started_s,
            duration_s: done.duration_s,
            worker: done.worker,
            cpu_s: done.cpu_s,
            max_rss_kib: done.max_rss_kib,
            node: done.node,
            fingerprint,
            reused_from: Some(done.from),
            computed_at: Some(done.run),
        })
    }

    /// Remembers `result` if it finished ok. `run` is the `started_at` of the run it belongs
    /// to, unless the result says it was itself reused from an earlier one.
    fn keep(&mut self, function_hash: &str, result: StoredResult, run: &Arc<str>, from: &Arc<str>) {
        if result.status != Status::Ok {
            return;
        }
        let output = result.output.unwrap_or_else(|| {
            // TOML leaves a null output out; JSON `null` comes as `None` too.
            RawValue::from_string("null".to_owned()).expect("null is JSON")
        });
        // A reused result names the run that computed it (`computed_at`; results written
        // before that key put the time in `reused_from`).
        let run = match result.computed_at.or(result.reused_from) {
            Some(earlier) => self.intern(&earlier),
            None => Arc::clone(run),
        };
        let done = Done {
            output,
            truncated: result.truncated,
            attempts: result.attempts,
            started_s: result.started_s,
            duration_s: result.duration_s,
            worker: result.worker,
            cpu_s: result.cpu_s,
            max_rss_kib: result.max_rss_kib,
            node: result.node.map(Arc::from),
            fingerprint: result.fingerprint.map(String::into_boxed_str),
            run,
            from: Arc::clone(from),
        };
        match self.view.entry(item_key(function_hash, &result.input)) {
            MapEntry::Occupied(mut known) => known.get_mut().push(done),
            MapEntry::Vacant(slot) => {
                slot.insert(Computations::One(done));
            }
        }
    }

    /// One shared string per earlier run (a million results name a handful of runs).
    fn intern(&mut self, run: &str) -> Arc<str> {
        if let Some(known) = self.runs.iter().find(|r| &***r == run) {
            return Arc::clone(known);
        }
        let new: Arc<str> = Arc::from(run);
        self.runs.push(Arc::clone(&new));
        new
    }

    /// Reads a results file or a journal (the reader's views: each run is one).
    fn read(&mut self, path: &Path) -> Result<(), String> {
        self.read_group(std::slice::from_ref(&path.to_path_buf()))
    }

    /// Reads files that are parts of one view (the shard journals of one submission).
    fn read_group(&mut self, paths: &[PathBuf]) -> Result<(), String> {
        let from = paths
            .first()
            .map_or_else(String::new, |p| p.display().to_string());
        let mut loader = Loader {
            run: self.intern(""),
            from: self.intern(&from),
            previous: self,
        };
        let mut torn = 0;
        for path in paths {
            torn += read::read(path, &mut loader)?.torn_lines;
        }
        self.torn_lines += torn;
        self.end_view();
        Ok(())
    }

    /// `read` for a JSON document's bytes (the unit tests' way in).
    #[cfg(test)]
    fn read_document(&mut self, bytes: &[u8]) -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("results.json");
        std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
        self.read(&path)
    }
}

/// Keeps the ok results a file holds, as the reader hands them on.
struct Loader<'a> {
    previous: &'a mut Previous,
    /// The run the results being read belong to.
    run: Arc<str>,
    /// The file being read.
    from: Arc<str>,
}

impl ResultsVisitor for Loader<'_> {
    fn run(&mut self, started_at: &str) {
        // Each run is a view of its own (the shard journals of one submission, read one
        // after another, are one view: one run's).
        if *self.run != *started_at {
            self.previous.end_view();
            self.run = self.previous.intern(started_at);
        }
    }

    fn task(&mut self, task: &TaskInfo) {
        if let Some(hash) = &task.function_hash
            && !self.previous.functions.contains(hash)
        {
            self.previous.functions.insert(hash.clone());
        }
    }

    fn result(&mut self, task: &TaskInfo, raw: &RawValue) -> Result<(), String> {
        let result: StoredResult =
            serde_json::from_str(raw.get()).map_err(|e| format!("a result: {e}"))?;
        match &task.function_hash {
            Some(hash) => {
                if !self.previous.functions.contains(hash) {
                    self.previous.functions.insert(hash.clone());
                }
                self.previous.keep(hash, result, &self.run, &self.from)
            }
            None => self.previous.unidentified += 1,
        }
        Ok(())
    }
}

/// A result as any output format (or the journal) holds it. TOML drops nulls, hence the
/// defaults.
#[derive(Deserialize)]
struct StoredResult {
    #[serde(default)]
    input: Value,
    status: Status,
    output: Option<Box<RawValue>>,
    truncated: Option<Truncated>,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    started_s: f64,
    #[serde(default)]
    duration_s: f64,
    worker: Option<u32>,
    cpu_s: Option<f64>,
    max_rss_kib: Option<u64>,
    node: Option<String>,
    fingerprint: Option<String>,
    reused_from: Option<String>,
    computed_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reused_output(previous: &Previous, hash: &str, input: Value) -> Option<String> {
        previous
            .reuse(hash, 0, &input, None)
            .and_then(|r| r.output)
            .map(|o| o.get().to_owned())
    }

    #[test]
    fn documents_are_read_whatever_their_key_order() {
        let doc = json!({
            "tasks": [
                // Results before the identity, and a failed one that is not kept.
                {"results": [
                    {"index": 0, "input": 1, "status": "ok", "output": [1], "attempts": 1,
                     "started_s": 0.1, "duration_s": 0.2},
                    {"index": 1, "input": 2, "status": "failed", "error": "no"}
                ], "function_hash": "f"},
                // No identity: counted, not kept.
                {"results": [{"index": 0, "input": 3, "status": "ok", "output": 9}]}
            ],
            "started_at": "2026-11-24T20:00:00.000Z",
            "extra": {"ignored": true}
        });
        let mut previous = Previous::default();
        previous.read_document(doc.to_string().as_bytes()).unwrap();
        assert_eq!(previous.len(), 1);
        assert_eq!(
            reused_output(&previous, "f", json!(1)).as_deref(),
            Some("[1]")
        );
        assert_eq!(reused_output(&previous, "f", json!(2)), None);
        assert_eq!(previous.unidentified, 1);
    }

    #[test]
    fn a_missing_or_null_output_is_reused_as_null() {
        let doc = json!({"started_at": "t", "tasks": [{"function_hash": "f", "results": [
            {"index": 0, "input": {"b": 1, "a": 2}, "status": "ok"},
            {"index": 1, "input": 5, "status": "ok", "output": null}
        ]}]});
        let mut previous = Previous::default();
        previous.read_document(doc.to_string().as_bytes()).unwrap();
        // Identity ignores key order.
        assert_eq!(
            reused_output(&previous, "f", json!({"a": 2, "b": 1})).as_deref(),
            Some("null")
        );
        assert_eq!(
            reused_output(&previous, "f", json!(5)).as_deref(),
            Some("null")
        );
    }

    #[test]
    fn each_computation_stands_in_for_one_item_however_many_views_hold_it() {
        let run1 = json!({"started_at": "r1", "tasks": [{"function_hash": "f", "results": [
            {"index": 0, "input": 7, "status": "ok", "output": 1},
            {"index": 1, "input": 7, "status": "ok", "output": 2},
            {"index": 2, "input": 7, "status": "failed"}
        ]}]});
        // A later run that reused one of run 1's and computed one more.
        let run2 = json!({"started_at": "r2", "tasks": [{"function_hash": "f", "results": [
            {"index": 0, "input": 7, "status": "ok", "output": 1, "reused_from": "r1"},
            {"index": 1, "input": 7, "status": "ok", "output": 3}
        ]}]});
        let mut previous = Previous::default();
        for doc in [&run1, &run2, &run1, &run2] {
            previous.read_document(doc.to_string().as_bytes()).unwrap();
        }
        // Two of run 1 (the most any view holds) and one of run 2.
        assert_eq!(previous.len(), 3);
        let mut outputs: Vec<String> = (0..4)
            .filter_map(|_| reused_output(&previous, "f", json!(7)))
            .collect();
        outputs.sort();
        assert_eq!(outputs, ["1", "2", "3"]);
    }

    #[test]
    fn a_document_that_is_not_results_is_an_error() {
        let mut previous = Previous::default();
        let err = previous.read_document(b"[1, 2]").unwrap_err();
        assert!(err.starts_with("not a runjobs results file"), "{err}");
        let err = previous
            .read_document(br#"{"tasks": [{"results": [{"status": "weird"}]}]}"#)
            .unwrap_err();
        assert!(err.contains("weird"), "{err}");
    }
}

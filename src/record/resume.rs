//! `--resume OUTPUT`, `--reuse FROM`, `reuse = "latest"`: the results an earlier run
//! finished, found by identity (function and input, see `identity`) in a results file and
//! in the journal beside it, to hand back instead of running them again (`run::reuse` does
//! the handing back).
//!
//! Equal inputs are distinct items: an identity may have finished several times, and each
//! finished computation stands in for one item only (the k-th of the equal inputs takes the
//! k-th computation), so six items with one input, two of which finished, run four more
//! times, never zero. Inserting, removing or reordering other inputs still reruns nothing.
//!
//! Memory holds only what matching needs: for each computation its identity, the state of
//! the file it was computed from (hashed), its run, and where its record lies in a spill
//! file the records are copied to as they are read (an unnamed temporary file: the page
//! cache's, not ours). A record is read back and parsed only when its item is reused, in
//! the order the items come, which is usually the order it was written in. A million
//! results take about 48 MB.

use std::collections::HashSet;
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::journal;
use super::read::{self, ResultsVisitor, TaskInfo};
use super::{FileState, ItemKey, ItemRecord, Status, Truncated, item_key};

/// A finished result that may stand in for running its item again: where to find it, and
/// what deciding whether it still holds takes.
#[derive(Debug, Clone, Copy)]
struct Done {
    key: ItemKey,
    /// Its record's JSON text in the spill file.
    at: u64,
    len: u32,
    /// The run that computed it (`Previous::runs`).
    run: u32,
    /// The file it was read from (`Previous::froms`).
    from: u16,
    claimed: bool,
    /// A hash of the state of the file its input named when it was computed (SPEC §8);
    /// `None` for a record that has none.
    fingerprint: Option<u64>,
}

fn hash_fingerprint(fingerprint: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    fingerprint.hash(&mut hasher);
    hasher.finish()
}

impl Done {
    /// Whether this result is still the answer for an input whose file is in `state`
    /// (`None`: the input names no file). `started` is when its run started.
    fn still_holds(&self, state: Option<&FileState>, started: &str) -> bool {
        match state {
            None | Some(FileState::NotAPath) => true,
            Some(FileState::Unreadable) => false,
            Some(FileState::Known {
                fingerprint,
                modified,
            }) => match self.fingerprint {
                Some(then) => then == hash_fingerprint(fingerprint),
                // Written before fingerprints were kept: it holds if the file was last
                // changed before the run that computed it started (make's rule).
                None => {
                    humantime::parse_rfc3339_weak(started).is_ok_and(|started| *modified < started)
                }
            },
        }
    }
}

/// The records read, copied one after another, and read back as items are reused.
#[derive(Debug, Default)]
struct Spill {
    /// While records are written (the file moves between the two).
    writer: Option<BufWriter<File>>,
    /// While they are read back.
    file: Option<File>,
    written: u64,
    /// A window of the file, refilled when a record is outside it.
    window: Vec<u8>,
    window_at: u64,
}

/// How much of the spill file is read back at a time.
const SPILL_WINDOW: usize = 1 << 16;

impl Spill {
    fn write(&mut self, record: &[u8]) -> Result<(u64, u32), String> {
        let len = u32::try_from(record.len()).map_err(|_| "a result of 4 GiB or more")?;
        let writer = match &mut self.writer {
            Some(writer) => writer,
            None => {
                let file = match self.file.take() {
                    // Writes go on at its end (`read_at` does not move the file's offset).
                    Some(file) => file,
                    None => tempfile::tempfile()
                        .map_err(|e| format!("cannot make a temporary file to read into: {e}"))?,
                };
                self.writer
                    .insert(BufWriter::with_capacity(SPILL_WINDOW, file))
            }
        };
        writer
            .write_all(record)
            .map_err(|e| format!("cannot write a temporary file: {e}"))?;
        let at = self.written;
        self.written += record.len() as u64;
        Ok((at, len))
    }

    fn read(&mut self, at: u64, len: u32) -> std::io::Result<&[u8]> {
        if let Some(writer) = self.writer.take() {
            self.file = Some(writer.into_inner().map_err(|e| e.into_error())?);
        }
        let len = len as usize;
        let in_window =
            at >= self.window_at && at + len as u64 <= self.window_at + self.window.len() as u64;
        if !in_window {
            let file = self.file.as_ref().ok_or(std::io::ErrorKind::NotFound)?;
            self.window.resize(len.max(SPILL_WINDOW), 0);
            let mut filled = 0;
            while filled < self.window.len() {
                match file.read_at(&mut self.window[filled..], at + filled as u64)? {
                    0 => break,
                    n => filled += n,
                }
            }
            self.window.truncate(filled);
            self.window_at = at;
            if filled < len {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        let start = (at - self.window_at) as usize;
        Ok(&self.window[start..start + len])
    }
}

/// What claiming changes: the computations and the file their records are in.
#[derive(Debug, Default)]
struct Claims {
    /// Sorted by identity, then by the order they were read.
    done: Vec<Done>,
    spill: Spill,
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
    claims: Mutex<Claims>,
    /// The view being read.
    view: Vec<Done>,
    /// What was read, for the user: e.g. "`out/x.json` and its journal".
    pub sources: Vec<String>,
    /// Journal lines that did not parse (a killed run's torn last line).
    pub torn_lines: u64,
    /// The `started_at` of every run results name (a million results name a handful).
    runs: Vec<Arc<str>>,
    /// The files read, as `reused_from` names them.
    froms: Vec<Arc<str>>,
    /// The `function_hash` of every task read.
    functions: HashSet<String>,
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
        let found = previous.load_views(output, shard_journals)?;
        Ok(found.then_some(previous))
    }

    /// Reads every view `load` reads; true when there was any.
    fn load_views(
        &mut self,
        output: &Path,
        shard_journals: &[Vec<PathBuf>],
    ) -> Result<bool, String> {
        let unreadable = |path: &Path, e: String| {
            format!(
                "cannot read the earlier results in `{}`: {e}",
                path.display()
            )
        };
        // Named by its journal (the file a user finds after a crash): read just that.
        if output.extension().is_some_and(|e| e == "journal") {
            if !output.exists() {
                // A run without a journal (`--no-journal`) may still have shard journals.
                return self.read_shard_journals(output, shard_journals);
            }
            self.read(output).map_err(|e| unreadable(output, e))?;
            self.sources.push(format!("`{}`", output.display()));
            self.read_shard_journals(output, shard_journals)?;
            return Ok(true);
        }
        let journal = journal::path_for(output);
        let mut found = false;
        for path in [output, journal.as_path()] {
            if path.exists() {
                self.read(path).map_err(|e| unreadable(path, e))?;
                self.sources.push(format!("`{}`", path.display()));
                found = true;
            }
        }
        found |= self.read_shard_journals(output, shard_journals)?;
        Ok(found)
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
                    "cannot read the earlier results in the shard journals beside `{}`: {e}",
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

    fn claims_mut(&mut self) -> &mut Claims {
        self.claims
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a task of this function was read.
    pub fn has_function(&self, function_hash: &str) -> bool {
        self.functions.contains(function_hash)
    }

    /// How many finished computations there are to reuse.
    pub fn len(&self) -> usize {
        self.claims
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .done
            .len()
    }

    /// Adds what the view just read holds beyond what the views before it did.
    fn end_view(&mut self) {
        let mut view = std::mem::take(&mut self.view);
        // The spill offset grows as records are read: it keeps the reading order.
        view.sort_unstable_by_key(|d| (d.key, d.at));
        let done = &mut self.claims_mut().done;
        if done.is_empty() {
            // The usual case: one view (a results file, or one run's journal).
            *done = view;
            return;
        }
        let mut new = Vec::new();
        for seen in view.chunk_by(|a, b| a.key == b.key) {
            let start = done.partition_point(|d| d.key < seen[0].key);
            let known = &done[start..];
            let known = &known[..known.partition_point(|d| d.key == seen[0].key)];
            for (i, computation) in seen.iter().enumerate() {
                let from_run = |d: &&Done| d.run == computation.run;
                // This view's n-th computation of that run is new if the known ones of that
                // run are fewer than n.
                let nth = seen[..i].iter().filter(from_run).count();
                if known.iter().filter(from_run).count() <= nth {
                    new.push(*computation);
                }
            }
        }
        done.extend(new);
        done.sort_unstable_by_key(|d| (d.key, d.at));
    }

    /// Takes an earlier computation of this item, if one is left: each stands in for one
    /// item only. `state` is the state of the file the input names, if it names one: a
    /// result computed from another state is not the answer any more.
    fn claim<'a>(
        &self,
        claims: &'a mut Claims,
        function_hash: &str,
        input: &Value,
        state: Option<&FileState>,
    ) -> Option<&'a mut Done> {
        let key = item_key(function_hash, input);
        let start = claims.done.partition_point(|d| d.key < key);
        let found = claims.done[start..]
            .iter_mut()
            .take_while(|d| d.key == key)
            .find(|d| !d.claimed && d.still_holds(state, &self.runs[d.run as usize]))?;
        found.claimed = true;
        Some(found)
    }

    /// Whether an earlier run finished this item (and claims that result: the dry run
    /// counts as the run would).
    pub fn claim_done(
        &self,
        function_hash: &str,
        input: &Value,
        state: Option<&FileState>,
    ) -> bool {
        let mut claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
        self.claim(&mut claims, function_hash, input, state)
            .is_some()
    }

    /// The earlier result for this item, if it finished ok and still holds for `state`.
    pub fn reuse(
        &self,
        function_hash: &str,
        index: u64,
        input: &Value,
        state: Option<&FileState>,
    ) -> Option<ItemRecord> {
        let mut claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
        let done = *self.claim(&mut claims, function_hash, input, state)?;
        // Read back as it was read; a record that cannot be (the temporary file was
        // damaged) is run again: it costs time, never a wrong result.
        let text = claims.spill.read(done.at, done.len).ok()?;
        let result: StoredResult = serde_json::from_slice(text).ok()?;
        // An old result that still holds gains the file's state, for the next run.
        let fingerprint = match state.and_then(FileState::fingerprint) {
            Some(now) => Some(Arc::clone(now)),
            None => result.fingerprint.map(Arc::from),
        };
        Some(ItemRecord {
            index,
            input: input.clone(),
            status: Status::Ok,
            // TOML leaves a null output out; JSON `null` comes as `None` too.
            output: Some(result.output.unwrap_or_else(|| {
                RawValue::from_string("null".to_owned()).expect("null is JSON")
            })),
            // The output was cut at the cap when it was computed: the copy is cut as well.
            truncated: result.truncated,
            error: None,
            stdout: None,
            stderr: None,
            attempts: result.attempts,
            started_s: result.started_s,
            duration_s: result.duration_s,
            worker: result.worker,
            cpu_s: result.cpu_s,
            max_rss_kib: result.max_rss_kib,
            node: result.node.map(Arc::from),
            fingerprint,
            reused_from: Some(Arc::clone(&self.froms[done.from as usize])),
            computed_at: Some(Arc::clone(&self.runs[done.run as usize])),
        })
    }

    /// Remembers a result if it finished ok. `run` is the run it belongs to, unless the
    /// result says it was itself reused from an earlier one.
    fn keep(
        &mut self,
        function_hash: &str,
        raw: &RawValue,
        run: u32,
        from: u16,
    ) -> Result<(), String> {
        let result: StoredIdentity =
            serde_json::from_str(raw.get()).map_err(|e| format!("a result: {e}"))?;
        if result.status != Status::Ok {
            return Ok(());
        }
        // A reused result names the run that computed it (`computed_at`; results written
        // before that key put the time in `reused_from`).
        let run = match result.computed_at.or(result.reused_from) {
            Some(earlier) => self.intern_run(&earlier),
            None => run,
        };
        let (at, len) = self.claims_mut().spill.write(raw.get().as_bytes())?;
        self.view.push(Done {
            key: item_key(function_hash, &result.input),
            at,
            len,
            run,
            from,
            claimed: false,
            fingerprint: result.fingerprint.as_deref().map(hash_fingerprint),
        });
        Ok(())
    }

    fn intern_run(&mut self, run: &str) -> u32 {
        intern(&mut self.runs, run) as u32
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
        let from = u16::try_from(intern(&mut self.froms, &from))
            .map_err(|_| "more than 65535 files of results")?;
        let mut loader = Loader {
            run: self.intern_run(""),
            from,
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

/// The index of `text` in `table`, added if new (a handful of distinct values).
fn intern(table: &mut Vec<Arc<str>>, text: &str) -> usize {
    if let Some(at) = table.iter().position(|t| &**t == text) {
        return at;
    }
    table.push(Arc::from(text));
    table.len() - 1
}

/// Keeps the ok results a file holds, as the reader hands them on.
struct Loader<'a> {
    previous: &'a mut Previous,
    /// The run the results being read belong to.
    run: u32,
    /// The file being read.
    from: u16,
}

impl ResultsVisitor for Loader<'_> {
    fn run(&mut self, started_at: &str) {
        // Each run is a view of its own (the shard journals of one submission, read one
        // after another, are one view: one run's).
        if *self.previous.runs[self.run as usize] != *started_at {
            self.previous.end_view();
            self.run = self.previous.intern_run(started_at);
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
        match &task.function_hash {
            Some(hash) => self.previous.keep(hash, raw, self.run, self.from),
            None => {
                // Not matched, but still a result: a file that holds something else is not
                // a results file.
                serde_json::from_str::<StoredIdentity>(raw.get())
                    .map_err(|e| format!("a result: {e}"))?;
                self.previous.unidentified += 1;
                Ok(())
            }
        }
    }
}

/// What matching a result needs, read as it is loaded (the rest waits in the spill file).
#[derive(Deserialize)]
struct StoredIdentity {
    #[serde(default)]
    input: Value,
    status: Status,
    fingerprint: Option<String>,
    reused_from: Option<String>,
    computed_at: Option<String>,
}

/// A result as any output format (or the journal) holds it. TOML drops nulls, hence the
/// defaults.
#[derive(Deserialize)]
struct StoredResult {
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

//! The journal: every finished item, appended beside the output file as it lands, so a run
//! killed with SIGKILL (or a machine that lost power) loses nothing it finished.
//!
//! One JSON object a line. A run starts a segment with `{"journal":1,...,"started_at":...}`;
//! each task starts with `{"begin_task":{TaskHeader}}`; then its results follow, one
//! [`ItemRecord`] a line, in the order they finished. Runs append, so a journal left by a
//! killed run survives the next run until that one has written its output; a finished run
//! removes the journal, its results being in the output file.
//!
//! Lines are written with one `write` per batch of results (no user-space buffering), so the
//! kernel has them the moment they land; a background thread `fdatasync`s once a second for
//! power loss. When the journal's folder fails (disk full, removed), the journal moves to a
//! fallback folder, taking this run's lines with it.
//!
//! A slot running a Python worker appends an all-`ok` batch of a `range` as one compact
//! `ok_run` line (see `ok_run`), which readers make the batch's records of.
//!
//! Builtin workers append their own `ok` records (see `protocol`): every writer opens the
//! file for appending, so each `write` lands whole after the others. Their lines end in `,`
//! (`event::JOURNAL_LINE_END`), and a worker killed mid-`write` may leave a line cut short,
//! glued to the next writer's line; the reader copes with both.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{RunHeader, TaskHeader};
use crate::record::fallback;
use crate::record::ok_run;
use crate::record::own_file::{self, Access};
use crate::record::{ItemRecord, JOURNAL_LINE_END, Rendered};

/// Journal format version (the `journal` key of a run's first line).
const VERSION: u32 = 1;
/// How often written lines are forced to disk.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// The journal of the output file `output`.
pub fn path_for(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".journal");
    output.with_file_name(name)
}

/// The results file a journal is beside (`out/x.json.journal` → `out/x.json`), if `path`
/// names a journal.
pub fn results_path_of(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let results = name.strip_suffix(".journal").filter(|n| !n.is_empty())?;
    Some(path.with_file_name(results))
}

/// A run's journal, open for appending.
pub struct Journal {
    /// Shared with the events of worker-written records (`JournalRange`), which are read back
    /// through it.
    file: Arc<File>,
    path: PathBuf,
    /// Where this run's lines begin (earlier, killed runs' lines come before).
    segment_start: u64,
    line: Vec<u8>,
    syncer: Syncer,
    /// Folders to move to when this one fails.
    fallbacks: Vec<PathBuf>,
    /// Set once the journal moved: the path it left, and why.
    moved_from: Option<(PathBuf, io::Error)>,
}

/// What `open` found.
pub struct Opened {
    pub journal: Journal,
    /// The journal already held lines: a run before this one never finished.
    pub unfinished_before: bool,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path` and starts this run's segment.
    pub fn open(path: &Path, header: &RunHeader, job_dir: &Path) -> io::Result<Opened> {
        // Never through a symlink planted at its path (see `own_file`).
        let file = own_file::open(path, Access::Append { read: true })
            .map_err(|e| with_path(e, "open the journal", path))?
            .file;
        let segment_start = file.metadata()?.len();
        let folder = path.parent().unwrap_or(Path::new("."));
        let mut journal = Journal {
            syncer: Syncer::start(&file)?,
            file: Arc::new(file),
            path: path.to_owned(),
            segment_start,
            line: Vec::with_capacity(64 * 1024),
            fallbacks: fallback::folders(job_dir, Some(folder)),
            moved_from: None,
        };
        let start = RunLine {
            journal: VERSION,
            header,
        };
        serde_json::to_writer(&mut journal.line, &start).map_err(io::Error::other)?;
        journal.line.push(b'\n');
        journal.append()?;
        Ok(Opened {
            journal,
            unfinished_before: segment_start > 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path the journal moved away from, and why, once it had to.
    pub fn moved_from(&self) -> Option<&(PathBuf, io::Error)> {
        self.moved_from.as_ref()
    }

    pub fn begin_task(&mut self, header: &TaskHeader) -> io::Result<()> {
        serde_json::to_writer(&mut self.line, &TaskLine { begin_task: header })
            .map_err(io::Error::other)?;
        self.line.push(b'\n');
        self.append()
    }

    /// Appends rendered records (one `write`, straight from their buffer).
    pub fn records(&mut self, rendered: &Rendered) -> io::Result<()> {
        self.write_lines(&rendered.bytes)
    }

    /// What a builtin worker needs to append its records to this journal itself.
    pub fn handle(&self) -> JournalHandle {
        JournalHandle {
            path: std::path::absolute(&self.path).unwrap_or_else(|_| self.path.clone()),
            file: Arc::clone(&self.file),
        }
    }

    /// Takes note of records a worker appended: they are in this journal already, unless it
    /// moved since the worker opened it; then they are copied over.
    pub fn appended(&mut self, range: &JournalRange) -> io::Result<()> {
        if Arc::ptr_eq(&range.file, &self.file) {
            self.syncer.dirty.store(true, Ordering::Relaxed);
            return Ok(());
        }
        let bytes = range.read()?;
        self.write_lines(&bytes)
    }

    /// Writes the pending `line`.
    fn append(&mut self) -> io::Result<()> {
        let line = std::mem::take(&mut self.line);
        let result = self.write_lines(&line);
        self.line = line;
        self.line.clear();
        result
    }

    /// Writes whole lines in one call; on failure moves the journal elsewhere, these lines
    /// with it.
    fn write_lines(&mut self, bytes: &[u8]) -> io::Result<()> {
        match (&*self.file).write_all(bytes) {
            Ok(()) => {
                self.syncer.dirty.store(true, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => self.move_elsewhere(e, bytes),
        }
    }

    /// Copies this run's complete lines and the pending ones into a new journal in a
    /// fallback folder and carries on there.
    fn move_elsewhere(&mut self, cause: io::Error, pending: &[u8]) -> io::Result<()> {
        let name = self.path.file_name().map_or_else(
            || "runjobs.journal".into(),
            |n| n.to_string_lossy().into_owned(),
        );
        let old = &self.file;
        // Workers append too: the segment ends where the file does, not at our last write.
        let start = self.segment_start;
        let end = old.metadata()?.len();
        let (file, path) = fallback::create(&self.fallbacks, &name, |new| {
            copy_range(old, start, end, new)?;
            if end > start && !ends_with_newline(old, end) {
                // A line cut short by the failure must not swallow the next one.
                new.write_all(b"\n")?;
            }
            new.write_all(pending)
        })
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot write the journal `{}` ({cause}) nor a fallback journal: {e}",
                    self.path.display()
                ),
            )
        })?;
        if self.segment_start == 0 {
            // The old file held nothing but this run's lines, now copied: free its space
            // (earlier runs' lines, if any, stay where they are for `--resume`).
            let _ = std::fs::remove_file(&self.path);
        }
        self.syncer = Syncer::start(&file)?;
        self.file = Arc::new(file);
        self.moved_from = Some((std::mem::replace(&mut self.path, path), cause));
        self.segment_start = 0;
        Ok(())
    }

    /// Every entry of this run, read back (the fallback output is rendered from them).
    pub fn this_run(&self) -> io::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        read_entries(
            BufReader::new(ReadAt {
                file: &self.file,
                pos: self.segment_start,
            }),
            |entry| entries.push(entry),
        )?;
        Ok(entries)
    }

    /// Whether lines of earlier, unfinished runs come before this run's.
    pub fn has_earlier_runs(&self) -> bool {
        self.segment_start > 0
    }

    /// Takes back this run's lines (it never ran anything), keeping earlier runs' lines.
    pub fn discard_this_run(self) -> io::Result<()> {
        if self.segment_start == 0 {
            std::fs::remove_file(&self.path)
        } else {
            self.file.set_len(self.segment_start)
        }
    }

    /// The run's output is written: the journal has served its purpose.
    pub fn remove(self) -> io::Result<()> {
        std::fs::remove_file(&self.path)
    }
}

/// A journal as builtin workers see it: the path they open to append their records, and the
/// file those records are read back from (the journal as it was when the worker started).
#[derive(Clone)]
pub struct JournalHandle {
    pub path: PathBuf,
    pub file: Arc<File>,
}

/// Opens the journal at `path` to append records to it directly (a builtin worker, or a slot
/// rendering a Python worker's answers); `None` when it is gone. runjobs opened it first
/// (refusing a symlink there); O_NOFOLLOW keeps it so, and nothing is created here.
pub fn open_to_append(path: &Path) -> Option<File> {
    std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .ok()
}

/// Appends `records` to the journal in one `write` (so they land together, after whatever
/// other writers appended); returns where they start.
pub fn append(journal: &mut File, records: &[u8]) -> io::Result<u64> {
    let written = journal.write(records)?;
    if written != records.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("wrote {written} of {} bytes", records.len()),
        ));
    }
    // An append leaves this descriptor's position at the end of what it wrote.
    Ok(journal.stream_position()? - records.len() as u64)
}

/// Records a worker appended to the journal: `len` bytes at `offset`, lines ending in
/// `JOURNAL_LINE_END`.
#[derive(Debug, Clone)]
pub struct JournalRange {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: u64,
}

impl JournalRange {
    /// The records' bytes.
    pub fn read(&self) -> io::Result<Vec<u8>> {
        let len = usize::try_from(self.len).map_err(io::Error::other)?;
        let mut bytes = vec![0; len];
        self.file.read_exact_at(&mut bytes, self.offset)?;
        Ok(bytes)
    }

    /// The records, one by one.
    pub fn rendered(&self) -> io::Result<Rendered> {
        Rendered::from_lines(self.read()?).ok_or_else(not_whole_records)
    }

    /// Whether the range ends as a worker's records do (`JOURNAL_LINE_END`).
    pub fn check_end(&self) -> io::Result<()> {
        let mut end = [0; JOURNAL_LINE_END.len()];
        match self.len.checked_sub(end.len() as u64) {
            Some(at) => self.file.read_exact_at(&mut end, self.offset + at)?,
            None => return Err(not_whole_records()),
        }
        if end != JOURNAL_LINE_END {
            return Err(not_whole_records());
        }
        Ok(())
    }
}

pub fn not_whole_records() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "the journal does not hold whole records where a worker said it wrote them",
    )
}

fn ends_with_newline(file: &File, end: u64) -> bool {
    let mut last = [0];
    end > 0 && file.read_exact_at(&mut last, end - 1).is_ok() && last[0] == b'\n'
}

/// Forces the journal to disk once a second while it is being written.
struct Syncer {
    dirty: Arc<AtomicBool>,
    /// Dropping it stops the thread.
    _stop: Sender<()>,
}

impl Syncer {
    fn start(file: &File) -> io::Result<Syncer> {
        let file = file.try_clone()?;
        let dirty = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel::<()>();
        let flag = Arc::clone(&dirty);
        thread::Builder::new()
            .name("journal-sync".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(SYNC_EVERY) {
                    if flag.swap(false, Ordering::Relaxed) {
                        let _ = file.sync_data();
                    }
                }
            })?;
        Ok(Syncer { dirty, _stop: stop })
    }
}

#[derive(Serialize)]
struct RunLine<'a> {
    journal: u32,
    #[serde(flatten)]
    header: &'a RunHeader,
}

#[derive(Serialize)]
struct TaskLine<'a> {
    begin_task: &'a TaskHeader,
}

/// A line of a journal, read back.
// Nearly every line is a record: boxing it would cost an allocation per line read, to save
// space only on the few that are not.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Entry {
    /// A run began: when, and the job it ran (journals of an older runjobs may lack the
    /// job's name).
    Run {
        started_at: String,
        job: Option<String>,
        job_file: Option<String>,
    },
    Task(TaskHeader),
    Record(ItemRecord),
}

#[derive(Deserialize)]
struct MetaLine {
    started_at: Option<String>,
    job: Option<String>,
    job_file: Option<String>,
    begin_task: Option<TaskHeader>,
}

/// Reads every entry of a journal. Lines that do not parse (the torn last line of a killed
/// run, say) are skipped; how many is returned.
pub fn read_entries(mut reader: impl BufRead, mut each: impl FnMut(Entry)) -> io::Result<u64> {
    let mut line = Vec::new();
    let mut skipped = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(skipped);
        }
        let text = line.trim_ascii();
        // A builtin worker's record line ends in a comma.
        let text = text.strip_suffix(b",").unwrap_or(text);
        if text.is_empty() {
            continue;
        }
        match parse_line(text) {
            Some(parsed) => parsed.emit(&mut each),
            None => match glued_line(text) {
                // What a writer killed mid-line left is lost; the line after it is not.
                Some(parsed) => {
                    skipped += 1;
                    parsed.emit(&mut each);
                }
                None => skipped += 1,
            },
        }
    }
}

/// What one line holds: one entry, or an `ok_run` line's records.
// Short-lived, one at a time: boxing the entry would cost an allocation per line read.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    One(Entry),
    Records(Vec<ItemRecord>),
}

impl Parsed {
    fn emit(self, each: &mut impl FnMut(Entry)) {
        match self {
            Parsed::One(entry) => each(entry),
            Parsed::Records(records) => records.into_iter().map(Entry::Record).for_each(each),
        }
    }
}

fn parse_line(text: &[u8]) -> Option<Parsed> {
    if text.starts_with(ok_run::START) {
        return ok_run::records(text).map(Parsed::Records);
    }
    parse_entry(text).map(Parsed::One)
}

/// The run a journal's first line names (an `Entry::Run`), read from that line alone: whose
/// journal it is, without reading its results.
pub fn first_run(path: &Path) -> io::Result<Option<Entry>> {
    let mut line = Vec::new();
    BufReader::new(File::open(path)?)
        .take(64 * 1024)
        .read_until(b'\n', &mut line)?;
    Ok(parse_entry(line.trim_ascii()).filter(|e| matches!(e, Entry::Run { .. })))
}

fn parse_entry(text: &[u8]) -> Option<Entry> {
    if text.starts_with(b"{\"index\":") {
        return serde_json::from_slice::<ItemRecord>(text)
            .ok()
            .map(Entry::Record);
    }
    match serde_json::from_slice::<MetaLine>(text) {
        Ok(MetaLine {
            begin_task: Some(task),
            ..
        }) => Some(Entry::Task(task)),
        Ok(MetaLine {
            started_at: Some(started_at),
            job,
            job_file,
            ..
        }) => Some(Entry::Run {
            started_at,
            job,
            job_file,
        }),
        _ => None,
    }
}

/// The whole line at the end of `text` that a cut-short line ran into, if any.
fn glued_line(text: &[u8]) -> Option<Parsed> {
    const STARTS: [&[u8]; 4] = [
        b"{\"index\":",
        b"{\"begin_task\":",
        b"{\"journal\":",
        ok_run::START,
    ];
    memchr::memmem::find_iter(text, b"{\"")
        .filter(|&at| at > 0 && STARTS.iter().any(|s| text[at..].starts_with(s)))
        .find_map(|at| parse_line(&text[at..]))
}

/// Reads a file from an offset through a shared handle (the journal's own, which keeps
/// working after its folder was removed).
struct ReadAt<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn copy_range(from: &File, start: u64, end: u64, to: &mut File) -> io::Result<()> {
    let mut reader = ReadAt {
        file: from,
        pos: start,
    }
    .take(end.saturating_sub(start));
    io::copy(&mut reader, to)?;
    Ok(())
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {what} `{}`: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Status;
    use std::fs::OpenOptions;

    fn header() -> RunHeader {
        RunHeader {
            version: 1,
            job: "j".into(),
            job_file: "j.toml".into(),
            started_at: "2026-11-24T20:00:00.000Z".into(),
        }
    }

    fn task(name: &str) -> TaskHeader {
        TaskHeader {
            name: name.into(),
            function: "builtin:square".into(),
            function_hash: "abc".into(),
            workers: 2,
            total: Some(3),
        }
    }

    fn record(index: u64) -> ItemRecord {
        ItemRecord {
            index,
            input: index.into(),
            status: Status::Ok,
            output: Some(serde_json::value::to_raw_value(&(index * index)).unwrap()),
            truncated: None,
            error: None,
            stdout: None,
            stderr: None,
            attempts: 1,
            started_s: 0.5,
            duration_s: 0.001,
            worker: Some(7),
            cpu_s: None,
            max_rss_kib: None,
            node: None,
            fingerprint: None,
            reused_from: None,
            computed_at: None,
        }
    }

    #[test]
    fn journal_paths_sit_beside_the_output() {
        assert_eq!(
            path_for(Path::new("/a/out/sq.json")),
            Path::new("/a/out/sq.json.journal")
        );
    }

    #[test]
    fn lines_round_trip_and_a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json.journal");
        let mut j = Journal::open(&path, &header(), dir.path()).unwrap().journal;
        j.begin_task(&task("t")).unwrap();
        j.records(&Rendered::of(&[record(0), record(1)])).unwrap();
        drop(j);
        // A killed run's half-written line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"index\":2,\"inp").unwrap();
        let mut seen = Vec::new();
        let skipped =
            read_entries(BufReader::new(File::open(&path).unwrap()), |e| seen.push(e)).unwrap();
        assert_eq!(skipped, 1);
        assert!(
            matches!(&seen[0], Entry::Run { started_at, job, .. } if started_at.starts_with("2026") && job.as_deref() == Some("j"))
        );
        assert!(matches!(&seen[1], Entry::Task(t) if t.name == "t"));
        assert!(
            matches!(&seen[3], Entry::Record(r) if r.index == 1 && r.output.as_ref().unwrap().get() == "1")
        );
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn worker_lines_end_in_a_comma_and_a_line_cut_short_loses_only_itself() {
        let record_line = |index: u64, end: &[u8]| {
            let mut line = Vec::new();
            record(index).write_json(&mut line);
            line.extend_from_slice(end);
            line
        };
        let whole = record_line(1, JOURNAL_LINE_END);
        let cut = &record_line(2, JOURNAL_LINE_END)[..20];
        let mut text = b"{\"begin_task\":{\"name\":\"t\",\"function\":\"f\",\"function_hash\":\"h\",\"workers\":1}}\n".to_vec();
        text.extend_from_slice(&whole);
        // A worker killed mid-write, then another writer's whole line.
        text.extend_from_slice(cut);
        text.extend_from_slice(&record_line(3, JOURNAL_LINE_END));
        text.extend_from_slice(cut);
        text.extend_from_slice(&record_line(4, b"\n"));
        let mut seen = Vec::new();
        let skipped = read_entries(&text[..], |e| seen.push(e)).unwrap();
        let indices: Vec<u64> = seen
            .iter()
            .filter_map(|e| match e {
                Entry::Record(r) => Some(r.index),
                _ => None,
            })
            .collect();
        assert_eq!(indices, [1, 3, 4]);
        assert_eq!(skipped, 2, "the two cut lines");
    }

    #[test]
    fn an_ok_run_line_is_read_as_its_records_even_after_a_line_cut_short() {
        let run = ok_run::Run {
            first: 10,
            count: 3,
            start: 100,
            step: -2,
        };
        let mut line = Vec::new();
        ok_run::write_line(
            &mut line,
            &run,
            (2_000_000, 1_000),
            77,
            "1, [2], {\"x\": 3}",
        );
        let mut text = b"{\"index\":2,\"inp".to_vec();
        text.extend_from_slice(&line);
        text.extend_from_slice(&line[..30]);
        let mut seen = Vec::new();
        let skipped = read_entries(&text[..], |e| seen.push(e)).unwrap();
        let records: Vec<(u64, String, String, f64, Option<u32>)> = seen
            .iter()
            .filter_map(|e| match e {
                Entry::Record(r) => Some((
                    r.index,
                    r.input.to_string(),
                    r.output.as_ref().unwrap().get().to_owned(),
                    r.started_s,
                    r.worker,
                )),
                _ => None,
            })
            .collect();
        assert_eq!(
            records,
            [
                (10, "100".into(), "1".into(), 0.002, Some(77)),
                (11, "98".into(), "[2]".into(), 0.002, Some(77)),
                (12, "96".into(), "{\"x\": 3}".into(), 0.002, Some(77)),
            ]
        );
        assert_eq!(skipped, 2, "the cut record, and the cut ok_run line");
    }

    #[test]
    fn records_a_worker_appended_are_read_back_from_their_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json.journal");
        let mut j = Journal::open(&path, &header(), dir.path()).unwrap().journal;
        j.begin_task(&task("t")).unwrap();
        let handle = j.handle();
        assert!(handle.path.is_absolute());
        // What a worker does: open the path for appending and write its lines.
        let mut lines = Vec::new();
        for index in [7, 8] {
            record(index).write_json(&mut lines);
            lines.extend_from_slice(JOURNAL_LINE_END);
        }
        let mut worker = OpenOptions::new().append(true).open(&handle.path).unwrap();
        worker.write_all(&lines).unwrap();
        let end = worker.metadata().unwrap().len();
        let range = JournalRange {
            file: handle.file,
            offset: end - lines.len() as u64,
            len: lines.len() as u64,
        };
        range.check_end().unwrap();
        let rendered = range.rendered().unwrap();
        assert_eq!(rendered.len(), 2);
        assert_eq!(
            serde_json::from_slice::<ItemRecord>(rendered.json(1))
                .unwrap()
                .index,
            8
        );
        j.appended(&range).unwrap();
        let indices: Vec<u64> = j
            .this_run()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Entry::Record(r) => Some(r.index),
                _ => None,
            })
            .collect();
        assert_eq!(indices, [7, 8]);
        let short = JournalRange { len: 10, ..range };
        assert!(short.check_end().is_err());
    }

    #[test]
    fn a_second_run_appends_and_reads_back_only_its_own_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json.journal");
        let first = Journal::open(&path, &header(), dir.path()).unwrap();
        assert!(!first.unfinished_before);
        let mut j = first.journal;
        j.begin_task(&task("old")).unwrap();
        j.records(&Rendered::of(&[record(5)])).unwrap();
        drop(j);
        let second = Journal::open(&path, &header(), dir.path()).unwrap();
        assert!(second.unfinished_before);
        let mut j = second.journal;
        j.begin_task(&task("new")).unwrap();
        let mine = j.this_run().unwrap();
        assert_eq!(mine.len(), 2);
        assert!(matches!(&mine[1], Entry::Task(t) if t.name == "new"));
        j.discard_this_run().unwrap();
        let mut left = Vec::new();
        read_entries(BufReader::new(File::open(&path).unwrap()), |e| left.push(e)).unwrap();
        assert!(
            matches!(&left[1], Entry::Task(t) if t.name == "old"),
            "{left:?}"
        );
        assert_eq!(left.len(), 3, "{left:?}");
        Journal::open(&path, &header(), dir.path())
            .unwrap()
            .journal
            .remove()
            .unwrap();
        assert!(!path.exists());
    }
}

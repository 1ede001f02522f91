//! One job's run: take its lock, open the journal and the results writer, run each task on
//! the executor while collecting its events, then settle the results file and say how it
//! went.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::collector::Collector;
use super::hooks::{self, HookRun};
use super::live::{self, Live};
use super::reuse;
use super::target::OutputTarget;
use crate::cli::RunArgs;
use crate::cron::history::{self, IndexLine};
use crate::exec::control::{RunControl, Stop};
use crate::exec::{Event, Executor, Gate, ItemStdout, SlowItems, TaskRun};
use crate::exit_code;
use crate::items::expand::{self, Items};
use crate::items::fingerprint::Fingerprints;
use crate::items::{IntRun, Source, function_hash};
use crate::job::{Admit, FailureLimit, InputSpec, Job, Task, normalize};
use crate::output::{self, Destination, Sink};
use crate::process::interrupt::Interrupt;
use crate::process::lock::{self, LockError};
use crate::process::pause;
use crate::progress::Progress;
use crate::record::journal::{self, Journal};
use crate::record::own_file;
use crate::record::resume::Previous;
use crate::record::{
    ItemRecord, Rendered, RunFooter, RunHeader, RunStatus, Summary, TaskFooter, TaskHeader, VERSION,
};

/// The collecting thread wakes at least this often.
const TICK: Duration = Duration::from_secs(1);
/// With admission gates, this often: a run held back says so at once.
const GATE_TICK: Duration = Duration::from_millis(100);
/// Result batches that may wait for the collecting thread.
const EVENTS_IN_FLIGHT: usize = 64;

/// Runs one job to its results file; returns its exit code.
pub fn run_job(
    job: &Job,
    target: &OutputTarget,
    args: &RunArgs,
    interrupt: &Interrupt,
    previous: Option<&Arc<Previous>>,
    executor: &dyn Executor,
    stdout: Option<&dyn ItemStdout>,
) -> u8 {
    let started_wall = SystemTime::now();
    let run_start = Instant::now();
    let destination = target.destination(&job.name, started_wall);
    let started_at = humantime::format_rfc3339_millis(started_wall).to_string();
    // Held until this function returns: one run of a job at a time, one an output.
    let lock_path = target.lock_path(job);
    let _locks = match take_locks(job, target, &destination, &lock_path, &started_at) {
        Ok(locks) => locks,
        Err(code) => return code,
    };
    // Read once the lock is held: the newest earlier run is then settled.
    let latest = match previous {
        None => reuse::latest(job, target, args),
        Some(_) => None,
    };
    let previous = previous.or(latest.as_ref());
    if let Some(previous) = previous {
        let hashes: Vec<String> = job
            .tasks
            .iter()
            .map(|t| function_hash(t, &job.dir))
            .collect();
        reuse::tell_unmatched(previous, job, &hashes);
    }
    let header = run_header(job, started_at);
    let (journal, sink) = match open_outputs(job, target, &destination, &header, args, previous) {
        Ok(opened) => opened,
        Err(message) => {
            say!("error: {message}");
            return exit_code::INVALID;
        }
    };
    // `--fail-fast` stops at the first failure: a limit of zero tolerated failures.
    let limit = if args.fail_fast {
        Some(FailureLimit::Count(0))
    } else {
        job.max_failures
    };
    // `--memfree` and `--load` override `[admit]` bound by bound.
    let admit = Admit {
        memfree: args.memfree.or(job.admit.memfree),
        load: args.load.or(job.admit.load),
    };
    let control = RunControl::new(interrupt, job.deadline, limit).with_gate(Gate::new(admit));
    let mut progress = Progress::new(args.progress, args.quiet);
    // A one-liner's commands own their stderr: it is relayed even when the run is quiet.
    progress.relay_logs(stdout.is_some());
    let starting = HookRun {
        status: "running",
        results: None,
        summary: Summary::default(),
    };
    hooks::run(
        job,
        "on_start",
        job.hooks.on_start.as_ref(),
        &starting,
        &progress,
    );
    let results = destination.file().map(std::path::Path::to_path_buf);
    let live = Live::new(&lock_path, job, &header.started_at, results.as_deref());
    let mut run = JobRun {
        job,
        run_start,
        started_wall,
        header: &header,
        results,
        executor,
        journal,
        sink,
        progress,
        collector: Collector::default(),
        feeds: feeds(job),
        kept: HashMap::new(),
        tag: args.tag,
        live,
        stdout,
    };
    for (index, task) in job.tasks.iter().enumerate() {
        run.run_task(index, task, &control, previous);
        // Later tasks do not start once the run stopped early, however it stopped.
        if control.stop().is_some() {
            break;
        }
    }
    run.finish(target, destination, &header, &control, &lock_path)
}

/// Appends to the run index beside the lock (runs to standard output have none); a failure
/// is a warning: the run itself went as it went.
fn append_index(lock_path: &std::path::Path, job: &Job, line: &IndexLine) {
    let Some(index) = index_beside(lock_path, job) else {
        return;
    };
    if let Err(e) = history::append(&index, line) {
        say!(
            "warning: cannot append to the run index `{}`: {e}",
            index.display()
        );
    }
}

/// The locks a run holds: its job's, and its output's (none for standard output).
struct Locks {
    _job: Option<lock::RunLock>,
    _output: Option<lock::RunLock>,
}

/// Takes the job's and the output's locks and checks the run index's path, before anything
/// runs; `Err` is the exit code to stop with (the reason said).
fn take_locks(
    job: &Job,
    target: &OutputTarget,
    destination: &Destination,
    lock_path: &std::path::Path,
    started_at: &str,
) -> Result<Locks, u8> {
    // A one-liner that keeps no results takes none: two of them in one folder must not wait
    // for each other.
    if matches!(destination, Destination::Discard) {
        return Ok(Locks {
            _job: None,
            _output: None,
        });
    }
    let job_lock = match lock::acquire(lock_path, &job.name, started_at) {
        Ok(lock) => lock,
        Err(e @ LockError::Held { .. }) => {
            say!("error: {e}");
            // Skipped cron runs are visible in the history, not silent.
            let line = IndexLine {
                job: job.name.clone(),
                started_at: started_at.to_owned(),
                status: "locked".into(),
                finished_at: None,
                duration_s: None,
                summary: None,
                results: None,
                reason: Some(e.to_string()),
            };
            append_index(lock_path, job, &line);
            return Err(exit_code::LOCKED);
        }
        // The lock file could not be made: the output folder is unusable, and nothing ran.
        Err(e) => {
            say!("error: {e}");
            return Err(exit_code::INVALID);
        }
    };
    // Another job writing these results would mix the two runs.
    let output_lock = output_lock(job, target, destination, started_at).map_err(|e| {
        say!("error: {e}");
        exit_code::INVALID
    })?;
    // The run index is written at the end: a symlink planted there stops the run now.
    if let Some(index) = index_beside(lock_path, job)
        && let Err(e) = own_file::check(&index)
    {
        say!("error: cannot use the run index `{}`: {e}", index.display());
        return Err(exit_code::INVALID);
    }
    Ok(Locks {
        _job: Some(job_lock),
        _output: output_lock,
    })
}

/// Takes the output lock of `destination` (none for standard output).
fn output_lock(
    job: &Job,
    target: &OutputTarget,
    destination: &Destination,
    started_at: &str,
) -> Result<Option<lock::RunLock>, LockError> {
    let Some((path, results)) = target.output_lock_path(&job.name, destination) else {
        return Ok(None);
    };
    let job_file = std::path::absolute(&job.file).unwrap_or_else(|_| job.file.clone());
    lock::acquire_output(&path, results, &job.name, &job_file, started_at).map(Some)
}

/// The run index of `job`, beside its lock.
fn index_beside(lock_path: &std::path::Path, job: &Job) -> Option<std::path::PathBuf> {
    let folder = lock_path.parent()?;
    Some(history::index_path(folder, &job.name))
}

fn run_header(job: &Job, started_at: String) -> RunHeader {
    RunHeader {
        version: VERSION,
        job: job.name.clone(),
        // Absolute, so a reviewer (or `report`) finds the job file from the results alone,
        // whatever folder runjobs was started in.
        job_file: std::path::absolute(&job.file)
            .map(|p| normalize(&p))
            .unwrap_or_else(|_| job.file.clone())
            .display()
            .to_string(),
        started_at,
    }
}

/// The journal and the results writer; `Err(message)` when either cannot be opened (nothing
/// has run yet).
fn open_outputs(
    job: &Job,
    target: &OutputTarget,
    destination: &Destination,
    header: &RunHeader,
    args: &RunArgs,
    previous: Option<&Arc<Previous>>,
) -> Result<(Option<Journal>, Box<dyn Sink>), String> {
    let journal = open_journal(job, destination, header, args, previous.is_some())
        .map_err(|e| e.to_string())?;
    match output::open(destination, target.format, header.clone()) {
        Ok(sink) => Ok((journal, sink)),
        Err(e) => {
            // Nothing ran: the journal just opened holds nothing worth keeping.
            if let Some(journal) = journal {
                let _ = journal.discard_this_run();
            }
            Err(e.to_string())
        }
    }
}

/// The tasks whose outputs later tasks take (`inputs = { from = ... }`).
fn feeds(job: &Job) -> HashSet<&str> {
    job.tasks
        .iter()
        .filter_map(|t| match &t.inputs {
            InputSpec::From(name) => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

/// What the collecting thread holds for the whole run.
struct JobRun<'a> {
    job: &'a Job,
    run_start: Instant,
    started_wall: SystemTime,
    header: &'a RunHeader,
    /// The results file, when there is one.
    results: Option<std::path::PathBuf>,
    executor: &'a dyn Executor,
    journal: Option<Journal>,
    sink: Box<dyn Sink>,
    progress: Progress,
    collector: Collector,
    /// Tasks whose outputs are kept for later tasks.
    feeds: HashSet<&'a str>,
    /// Their outputs, in input order, by task name.
    kept: HashMap<String, Vec<Value>>,
    /// `--tag`.
    tag: bool,
    /// What `runjobs status` reads while the run goes.
    live: Live,
    /// A one-liner's relay of its commands' stdout, told when each item is done.
    stdout: Option<&'a dyn ItemStdout>,
}

/// One task's tally while it runs.
struct TaskTally<'a> {
    task: &'a Task,
    task_index: usize,
    summary: Summary,
    /// Its outputs, when a later task takes them.
    outputs: Option<Vec<(u64, Value)>>,
    /// The fingerprints its results are stamped with, when its inputs name files.
    fingerprints: Option<Arc<Fingerprints>>,
    /// The CPU time of its long-lived workers, summed as each was reaped.
    worker_cpu_s: Option<f64>,
}

impl JobRun<'_> {
    /// Runs one task on `executor`, collecting its events until every item is reported.
    fn run_task(
        &mut self,
        index: usize,
        task: &Task,
        control: &RunControl<'_>,
        previous: Option<&Arc<Previous>>,
    ) {
        // Cloned, not taken: several later tasks may feed on the same task.
        let expanded = expand::expand(&task.inputs, |name| {
            self.kept.get(name).cloned().unwrap_or_default()
        });
        let items = match expanded {
            Ok(items) => items,
            Err(message) => {
                let line = format!("error: task `{}`: {message}", task.name);
                self.progress.println(&line);
                self.collector.unreadable_inputs = true;
                return;
            }
        };
        let function_hash = function_hash(task, &self.job.dir);
        let header = TaskHeader {
            name: task.name.clone(),
            function: task.function.label.clone(),
            function_hash: function_hash.clone(),
            workers: task.workers,
            total: items.total,
        };
        let (collector, progress, sink) = (&mut self.collector, &self.progress, &mut self.sink);
        collector.journal(&mut self.journal, |j| j.begin_task(&header), progress);
        collector.write(|| sink.begin_task(&header));
        if let (InputSpec::Glob { pattern, .. }, Some(0)) = (&task.inputs, items.total)
            && !self.progress.quiet()
        {
            // Cron folders are often empty: a note, not an error.
            let line = format!("note: task `{}`: `{pattern}` matches nothing", task.name);
            self.progress.println(&line);
        }
        self.progress.task_started(&task.name, items.total);
        let journal_path = self.journal.as_ref().map(Journal::path);
        let warning = self.live.task_started(index, items.total, journal_path);
        self.tell(warning);
        control.add_items(items.total.unwrap_or(0));
        let mut tally = TaskTally {
            task,
            task_index: index,
            summary: Summary::default(),
            outputs: self.feeds.contains(task.name.as_str()).then(Vec::new),
            fingerprints: None,
            worker_cpu_s: None,
        };

        // Bounded: when writing falls behind, the executor waits instead of piling up
        // results in memory (a 10M-item run must stay small).
        let (events, received) = mpsc::sync_channel(EVENTS_IN_FLIGHT);
        let total = items.total;
        let earlier = reuse::Earlier {
            previous,
            function_hash: &function_hash,
            file_state: task.file_state.as_ref(),
        };
        let (source, fingerprints) =
            reuse::skip_done(&earlier, source_of(items), events.clone(), index);
        // Builtin workers journal the records they render, which lack fingerprints: these
        // come through the collector instead, which stamps them.
        let journal = match fingerprints {
            None => self.journal.as_ref().map(Journal::handle),
            Some(_) => None,
        };
        tally.fingerprints = fingerprints;
        let slow = SlowItems::default();
        let results = self.results.clone();
        let ctx = TaskRun {
            job: &self.job.name,
            task_index: index,
            task,
            run_start: self.run_start,
            events,
            control,
            journal,
            slow: &slow,
            tag: self.tag,
            header: self.header,
            started_wall: self.started_wall,
            results: results.as_deref(),
            function_hash: &function_hash,
            stdout: self.stdout,
        };
        let executor = self.executor;
        thread::scope(|scope| {
            scope.spawn(move || executor.run_task(&ctx, total, source));
            self.collect(&received, &mut tally, control, &slow);
        });
        let (_, fresh) = slow.now();
        self.progress.slow(index, &[], &fresh);
        self.end_task(index, tally);
    }

    /// Takes the executor's events until it is done (the channel closes).
    fn collect(
        &mut self,
        received: &Receiver<Event>,
        tally: &mut TaskTally,
        control: &RunControl,
        slow: &SlowItems,
    ) {
        loop {
            // Wake at least every second (status lines), and in time for the deadline.
            let until_deadline = control
                .deadline()
                .map(|d| d.saturating_sub(pause::active_since(self.run_start)));
            let tick = if control.has_gate() { GATE_TICK } else { TICK };
            let wait = until_deadline.map_or(tick, |d| d.clamp(Duration::from_millis(10), tick));
            match received.recv_timeout(wait) {
                Ok(event) => {
                    self.on_event(event, tally);
                    if self.stdout.is_some_and(|relay| relay.closed()) {
                        control.output_closed();
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.progress.tick(),
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // Time paused (Ctrl-Z) does not count against the deadline.
            control.check_deadline(pause::active_since(self.run_start));
            let (running, fresh) = slow.now();
            self.progress.slow(tally.task_index, &running, &fresh);
            let waiting = control.waiting();
            self.progress.waiting(tally.task_index, waiting.clone());
            self.progress.tick();
            let now = live::Now {
                task: tally.task_index,
                summary: &tally.summary,
                running: &running,
                waiting,
                journal: self.journal.as_ref().map(Journal::path),
            };
            let warning = self.live.tick(now);
            self.tell(warning);
        }
    }

    /// Prints a warning about the live state, unless `-q`: the run itself is not hurt
    /// (`status` counts the journal instead), so cron mail need not hear of it.
    fn tell(&self, warning: Option<String>) {
        if let Some(warning) = warning
            && !self.progress.quiet()
        {
            self.progress.println(&warning);
        }
    }

    /// Shows, journals and writes what one event reports.
    fn on_event(&mut self, event: Event, tally: &mut TaskTally) {
        let event = match (&tally.fingerprints, event) {
            (Some(fingerprints), Event::Finished { task, mut records }) => {
                fingerprints.stamp(&mut records);
                Event::Finished { task, records }
            }
            (Some(fingerprints), Event::Rendered { task, rendered, .. }) => Event::Finished {
                task,
                records: fingerprints.stamped(&rendered),
            },
            (_, event) => event,
        };
        let (collector, progress, sink) = (&mut self.collector, &mut self.progress, &mut self.sink);
        let journal = &mut self.journal;
        match event {
            Event::Finished { task, records } => {
                progress.finished(task, &records);
                if let Some(relay) = self.stdout {
                    for record in &records {
                        let output = text_output(record);
                        relay.concluded(record.index, Some(&record.input), output.as_deref());
                    }
                }
                for record in &records {
                    tally.summary.add_record(record);
                    if let (Some(outputs), Some(output)) = (&mut tally.outputs, &record.output) {
                        let value = serde_json::from_str(output.get()).unwrap_or(Value::Null);
                        outputs.push((record.index, value));
                    }
                    collector.note(&tally.task.name, record);
                }
                // Each run of consecutive indices is rendered and passed on as one.
                for run in records.chunk_by(|a, b| b.index == a.index + 1) {
                    let rendered = Rendered::of(run);
                    collector.journal(journal, |j| j.records(&rendered), progress);
                    collector.write(|| sink.results(run[0].index, output::Run::Here(rendered)));
                }
            }
            Event::Rendered {
                task,
                first,
                rendered,
                journaled,
            } => {
                let count = rendered.len() as u64;
                progress.finished_ok(task, count);
                concluded_rendered(self.stdout, first, &rendered);
                tally.summary.add_ok(count);
                if let Some(outputs) = &mut tally.outputs {
                    outputs.extend(kept_outputs(first, &rendered));
                }
                match &journaled {
                    Some(range) => collector.journal(journal, |j| j.appended(range), progress),
                    None => collector.journal(journal, |j| j.records(&rendered), progress),
                }
                collector.write(|| sink.results(first, output::Run::Here(rendered)));
            }
            Event::Journaled {
                task,
                first,
                count,
                range,
            } => {
                progress.finished_ok(task, count);
                concluded(self.stdout, first, count);
                tally.summary.add_ok(count);
                if let Some(outputs) = &mut tally.outputs {
                    match range.rendered() {
                        Ok(rendered) => outputs.extend(kept_outputs(first, &rendered)),
                        Err(e) => collector.write(|| Err(e)),
                    }
                }
                collector.journal(journal, |j| j.appended(&range), progress);
                collector.write(|| sink.results(first, output::Run::Journal { count, range }));
            }
            Event::WorkerEnded { cpu_s } => {
                *tally.worker_cpu_s.get_or_insert(0.0) += cpu_s;
            }
            Event::Log(line) => progress.log(&line),
        }
    }

    fn end_task(&mut self, index: usize, tally: TaskTally) {
        self.progress.task_finished(index);
        let sink = &mut self.sink;
        let footer = TaskFooter {
            summary: tally.summary,
            // To the microsecond, as every time in the file.
            worker_cpu_s: tally.worker_cpu_s.map(|s| (s * 1e6).round() / 1e6),
        };
        self.collector.write(|| sink.end_task(&footer));
        self.collector.summary.merge(&footer.summary);
        self.live.task_ended(index, &footer.summary);
        if let Some(mut outputs) = tally.outputs {
            outputs.sort_by_key(|(i, _)| *i);
            let values = outputs.into_iter().map(|(_, v)| v).collect();
            self.kept.insert(tally.task.name.clone(), values);
        }
    }

    /// Ends the results file, settles where it went, reports, keeps the history and runs
    /// the hooks; returns the exit code.
    fn finish(
        mut self,
        target: &OutputTarget,
        destination: Destination,
        header: &RunHeader,
        control: &RunControl<'_>,
        lock_path: &std::path::Path,
    ) -> u8 {
        let stop = control.stop();
        let collector = &mut self.collector;
        let status = if matches!(stop, Some(Stop::Interrupted | Stop::OutputClosed)) {
            RunStatus::Interrupted
        } else if collector.summary.failures() > 0 || collector.unreadable_inputs || stop.is_some()
        {
            RunStatus::Failed
        } else {
            RunStatus::Ok
        };
        let footer = RunFooter {
            status,
            finished_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            duration_s: (self.run_start.elapsed().as_secs_f64() * 1e6).round() / 1e6,
            summary: collector.summary,
        };
        let sink = self.sink;
        collector.write(|| sink.finish(&footer));
        self.progress.clear();
        let destination = collector.settle(
            self.journal,
            destination,
            &self.job.dir,
            target.format,
            header,
            &footer,
        );
        let progress = &self.progress;
        collector.report(
            self.job,
            &destination,
            &footer,
            progress,
            control,
            self.run_start,
        );
        let results = destination.file();
        let whole = collector.write_error.is_none() && collector.fallback.is_none();
        self.executor.finish(whole);
        if let (Some(written), true) = (results, whole) {
            keep_history(self.job, target, written, progress);
        }
        if results.is_some() {
            let line = IndexLine {
                job: self.job.name.clone(),
                started_at: header.started_at.clone(),
                status: status_name(status).into(),
                finished_at: Some(footer.finished_at.clone()),
                duration_s: Some(footer.duration_s),
                summary: Some(footer.summary),
                results: results.map(|p| p.display().to_string()),
                reason: None,
            };
            append_index(lock_path, self.job, &line);
        }
        let ended = HookRun {
            status: status_name(status),
            results,
            summary: footer.summary,
        };
        let hook = match status {
            RunStatus::Ok => ("on_success", self.job.hooks.on_success.as_ref()),
            _ => ("on_failure", self.job.hooks.on_failure.as_ref()),
        };
        hooks::run(self.job, hook.0, hook.1, &ended, progress);
        self.live.finish();
        match status {
            // Nobody reads on: like ripgrep, exit quietly (what ran is in the results).
            RunStatus::Interrupted if stop == Some(Stop::OutputClosed) => {
                if collector.summary.failures() > 0 {
                    exit_code::ITEMS_FAILED
                } else {
                    exit_code::OK
                }
            }
            RunStatus::Interrupted => exit_code::INTERRUPTED,
            _ if collector.write_error.is_some() => exit_code::ITEMS_FAILED,
            RunStatus::Failed => exit_code::ITEMS_FAILED,
            RunStatus::Ok => exit_code::OK,
        }
    }
}

/// A record's output when it is text (what a one-liner prints for an item that ran elsewhere).
fn text_output(record: &ItemRecord) -> Option<String> {
    serde_json::from_str(record.output.as_ref()?.get()).ok()
}

/// Tells a one-liner's relay that the rendered records from `first` are done, with their
/// inputs and outputs (an item that ran on another machine prints its recorded output).
fn concluded_rendered(stdout: Option<&dyn ItemStdout>, first: u64, rendered: &Rendered) {
    let Some(relay) = stdout else {
        return;
    };
    for i in 0..rendered.len() {
        match serde_json::from_slice::<ItemRecord>(rendered.json(i)) {
            Ok(record) => {
                let output = text_output(&record);
                relay.concluded(record.index, Some(&record.input), output.as_deref());
            }
            Err(_) => relay.concluded(first + i as u64, None, None),
        }
    }
}

/// Tells a one-liner's relay that items `first..first + count` are done.
fn concluded(stdout: Option<&dyn ItemStdout>, first: u64, count: u64) {
    if let Some(relay) = stdout {
        (first..first + count).for_each(|index| relay.concluded(index, None, None));
    }
}

fn status_name(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Ok => "ok",
        RunStatus::Failed => "failed",
        RunStatus::Interrupted => "interrupted",
    }
}

/// After a results file of the job's own template was written: `keep` prunes the older ones
/// and `latest` names the newest.
fn keep_history(job: &Job, target: &OutputTarget, written: &std::path::Path, progress: &Progress) {
    let Some(template) = target.template.as_deref().filter(|_| target.own) else {
        return;
    };
    if let Some(keep) = job.output.keep
        && let Err(e) = history::prune(template, &job.name, written, keep)
    {
        progress.println(&format!(
            "warning: cannot remove older results (`keep`): {e}"
        ));
    }
    if let Err(e) = history::link_latest(template, &job.name, written) {
        progress.println(&format!("warning: cannot link the latest results: {e}"));
    }
}

/// A task's expanded inputs as the executor takes them: a range as runs of integers.
fn source_of(items: Items) -> Source {
    match (items.steps, items.total) {
        (Some((start, step)), Some(count)) => Source::Ints(IntRun {
            first: 0,
            start,
            step,
            count,
        }),
        _ => Source::Items(Box::new(items.iter.enumerate().map(|(i, x)| (i as u64, x)))),
    }
}

/// The outputs of rendered records, for the tasks that feed on them.
fn kept_outputs(first: u64, rendered: &Rendered) -> impl Iterator<Item = (u64, Value)> + '_ {
    #[derive(serde::Deserialize)]
    struct Output {
        #[serde(default)]
        output: Value,
    }
    (0..rendered.len()).zip(first..).map(|(i, index)| {
        let output =
            serde_json::from_slice::<Output>(rendered.json(i)).map_or(Value::Null, |o| o.output);
        (index, output)
    })
}

/// Opens the journal beside a results file (none for standard output or `--no-journal`).
fn open_journal(
    job: &Job,
    destination: &Destination,
    header: &RunHeader,
    args: &RunArgs,
    resuming: bool,
) -> std::io::Result<Option<Journal>> {
    let Destination::File(path) = destination else {
        return Ok(None);
    };
    if args.no_journal {
        return Ok(None);
    }
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot create the folder `{}`: {e}", folder.display()),
            )
        })?;
    }
    let opened = Journal::open(&journal::path_for(path), header, &job.dir)?;
    if opened.unfinished_before && !resuming && !args.quiet {
        say!(
            "note: `{}` holds results of a run that never finished; this run starts afresh \
             (`--resume {}` would reuse them)",
            opened.journal.path().display(),
            path.display()
        );
    }
    Ok(Some(opened.journal))
}

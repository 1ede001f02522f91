//! The pipeline: load every job → (dry run: print the plan) → for each task: expand → run on
//! the pool → collect results into the output file → summary and exit code.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::cli::RunArgs;
use crate::control::{RunControl, Stop};
use crate::event::{Event, ItemRecord, Rendered, Summary};
use crate::exit_code;
use crate::expand::{self, Items};
use crate::identity;
use crate::interrupt::Interrupt;
use crate::job::{self, FailureLimit, Format, InputSpec, Job};
use crate::journal::{self, Journal};
use crate::lock::{self, LockError};
use crate::output::{self, Destination, RunFooter, RunHeader, RunStatus, TaskHeader};
use crate::pause;
use crate::pool::{self, IntRun, PoolContext, Source};
use crate::progress::{self, Progress};
use crate::resume::Previous;

/// Failed items listed at the end of a run; the rest are in the results file.
const FAILURES_SHOWN: usize = 10;
/// The collecting thread wakes at least this often.
const TICK: Duration = Duration::from_secs(1);
/// Result batches that may wait for the collecting thread.
const EVENTS_IN_FLIGHT: usize = 64;

/// `runjobs validate JOB...`
pub fn validate(paths: &[PathBuf]) -> u8 {
    let mut code = exit_code::OK;
    for path in paths {
        match job::load(path) {
            Ok(job) => {
                let tasks = job.tasks.len();
                say!("ok: `{}` ({tasks} task{})", path.display(), plural(tasks));
            }
            Err(errors) => {
                say!("{errors}");
                code = exit_code::INVALID;
            }
        }
    }
    code
}

/// `runjobs functions`
pub fn list_functions() {
    let all = crate::builtins::all();
    let width = all.iter().map(|b| b.name.len()).max().unwrap_or(0);
    let input_width = all.iter().map(|b| b.input.len()).max().unwrap_or(0);
    out!("{:width$}  {:input_width$}  OUTPUT — DOC", "NAME", "INPUT");
    for b in all {
        out!(
            "{:width$}  {:input_width$}  {} — {}",
            b.name,
            b.input,
            b.output,
            b.doc
        );
    }
}

/// `runjobs JOB...`: every job is validated before any runs.
pub fn run(args: &RunArgs) -> u8 {
    let mut jobs = Vec::new();
    let mut invalid = false;
    // `-o` takes the placeholders `[output] path` takes, checked as strictly.
    if let Some(path) = args.output.as_ref().filter(|p| p.as_os_str() != "-") {
        for (message, help) in job::output_placeholder_problems(&path.to_string_lossy()) {
            say!("error: {message} (`-o`)\n  = help: {help}");
            invalid = true;
        }
    }
    for path in &args.jobs {
        match job::load(path) {
            Ok(job) => jobs.push(job),
            Err(errors) => {
                say!("{errors}");
                invalid = true;
            }
        }
    }
    if invalid {
        return exit_code::INVALID;
    }
    let mut plans = Vec::new();
    for mut job in jobs {
        apply_overrides(&mut job, args);
        match OutputTarget::decide(&job, args) {
            Ok(target) => {
                // `-o` is checked here as the job file's `[output]` was at loading: an
                // output that cannot be written is a bad command line, and nothing runs.
                if let (Some(path), Destination::File(file)) = (
                    &args.output,
                    target.destination(&job.name, SystemTime::now()),
                ) && let Err(why) = job::writable(&file)
                {
                    say!("error: cannot write the output `{}`: {why}", path.display());
                    return exit_code::INVALID;
                }
                plans.push((job, target));
            }
            Err(message) => {
                say!("error: {message}");
                return exit_code::INVALID;
            }
        }
    }
    if args.output.is_some() && plans.len() > 1 && !args.output_has_job_placeholder() {
        say!(
            "error: `-o` names one file but {} jobs were given; put `{{job}}` in the path",
            plans.len()
        );
        return exit_code::INVALID;
    }
    let previous = match load_previous(args, plans.len()) {
        Ok(previous) => previous,
        Err(code) => return code,
    };
    if args.dry_run {
        for (job, target) in &plans {
            print_plan(job, target, previous.as_deref());
        }
        return exit_code::OK;
    }
    let interrupt = match Interrupt::install() {
        Ok(interrupt) => interrupt,
        Err(e) => {
            say!("error: cannot install signal handlers: {e}");
            return exit_code::ITEMS_FAILED;
        }
    };
    if let Err(e) = crate::groups::start_guard() {
        say!(
            "warning: cannot start the guard process ({e}): commands still running if runjobs is killed with SIGKILL will finish on their own"
        );
    }
    let mut code = exit_code::OK;
    for (job, target) in &plans {
        let job_code = run_job(job, target, args, &interrupt, previous.as_ref());
        code = code.max(job_code);
        if job_code == exit_code::INTERRUPTED {
            break;
        }
    }
    crate::groups::stop_guard();
    code
}

/// `--resume OUTPUT`: the earlier results to reuse, if any; `Err(exit code)` when OUTPUT
/// cannot be read.
fn load_previous(args: &RunArgs, jobs: usize) -> Result<Option<Arc<Previous>>, u8> {
    match &args.resume {
        Some(_) if jobs > 1 => {
            say!("error: `--resume` takes the results of one job, but {jobs} jobs were given");
            Err(exit_code::INVALID)
        }
        Some(path) => match Previous::load(path) {
            Ok(Some(previous)) => {
                if !args.quiet {
                    let torn = match previous.torn_lines {
                        0 => String::new(),
                        n => format!(
                            " ({n} unreadable journal line{} skipped: a killed run's last write)",
                            plural(n as usize)
                        ),
                    };
                    say!(
                        "runjobs: resuming from {}: {} finished result{} to reuse{torn}",
                        previous.sources.join(" and "),
                        previous.len(),
                        plural(previous.len())
                    );
                }
                if previous.unidentified > 0 {
                    say!(
                        "warning: {} result{} in `{}` name no `function_hash` (an older \
                         runjobs wrote them) and cannot be matched: those items run again",
                        previous.unidentified,
                        plural(previous.unidentified as usize),
                        path.display()
                    );
                }
                Ok(Some(Arc::new(previous)))
            }
            Ok(None) => {
                // Like GNU parallel's `--resume` with no joblog yet: a first run.
                if !args.quiet {
                    say!(
                        "runjobs: nothing to resume at `{}` (nor its journal); running every item",
                        path.display()
                    );
                }
                Ok(None)
            }
            Err(message) => {
                say!("error: {message}");
                Err(exit_code::INVALID)
            }
        },
        None => Ok(None),
    }
}

impl RunArgs {
    fn output_has_job_placeholder(&self) -> bool {
        self.output
            .as_ref()
            .is_some_and(|p| p.to_string_lossy().contains("{job}"))
    }
}

fn apply_overrides(job: &mut Job, args: &RunArgs) {
    for task in &mut job.tasks {
        if let Some(workers) = args.workers {
            task.workers = workers as usize;
        }
        if let Some(timeout) = args.timeout {
            task.timeout = Some(timeout);
        }
    }
}

/// Where one job's results go, with the path template still unfilled.
struct OutputTarget {
    /// `None`: standard output.
    template: Option<PathBuf>,
    format: Format,
}

impl OutputTarget {
    fn decide(job: &Job, args: &RunArgs) -> Result<OutputTarget, String> {
        // `--resume OUTPUT` completes OUTPUT unless `-o` says otherwise (a journal named
        // there completes the results file it is beside).
        let resumed = args
            .resume
            .as_ref()
            .filter(|_| args.output.is_none())
            .map(|path| crate::journal::results_path_of(path).unwrap_or_else(|| path.clone()));
        let output = args.output.as_ref().or(resumed.as_ref());
        let template = match output {
            Some(path) if path.as_os_str() == "-" => None,
            Some(path) => Some(path.clone()),
            None => Some(job.output.path_template.clone()),
        };
        let format = args
            .format
            .map(Format::from)
            .or(if output.is_some() {
                None
            } else {
                job.output.format
            })
            .or_else(|| {
                let ext = template.as_ref()?.extension()?.to_str()?;
                Format::from_extension(ext)
            })
            .or(if template.is_none() {
                Some(Format::Json)
            } else {
                None
            });
        match format {
            Some(format) => Ok(OutputTarget { template, format }),
            None => Err(format!(
                "cannot tell the output format of `{}`: use a .json, .toml or .jsonl extension or `--format`",
                template.as_deref().unwrap_or(Path::new("-")).display()
            )),
        }
    }

    /// The overlap lock's file: beside the results (the template's folder, so runs writing
    /// timestamped files still share it), or beside the job file for standard output.
    fn lock_path(&self, job: &Job) -> PathBuf {
        let folder = self
            .template
            .as_deref()
            .and_then(Path::parent)
            .filter(|p| !p.as_os_str().is_empty() && !p.to_string_lossy().contains('{'))
            .map_or_else(|| job.dir.clone(), normalize);
        lock::path_for(&folder, &job.name)
    }

    fn destination(&self, job: &str, now: SystemTime) -> Destination {
        let Some(template) = &self.template else {
            return Destination::Stdout;
        };
        let stamp = humantime::format_rfc3339_seconds(now).to_string();
        let date = stamp.get(..10).unwrap_or_default().to_owned();
        let compact: String = stamp.chars().filter(|c| !matches!(c, '-' | ':')).collect();
        let path = template
            .to_string_lossy()
            .replace("{job}", job)
            .replace("{date}", &date)
            .replace("{timestamp}", &compact);
        Destination::File(normalize(Path::new(&path)))
    }
}

/// Folds `.` and `..` out of a path without touching the file system, so messages show
/// `/jobs/out/x.json` rather than `/jobs/sub/../out/x.json`.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn print_plan(job: &Job, target: &OutputTarget, previous: Option<&Previous>) {
    out!("job `{}` ({})", job.name, job.file.display());
    if let Some(description) = &job.description {
        out!("  {description}");
    }
    if let Some(schedule) = &job.schedule {
        out!("  schedule: {schedule}");
    }
    out!("  folder: {}", job.dir.display());
    let destination = target.destination(&job.name, SystemTime::now());
    let shown = match &destination {
        Destination::File(path) => path.display().to_string(),
        Destination::Stdout => "standard output".to_owned(),
    };
    out!("  output: {shown} ({})", target.format.name());
    for task in &job.tasks {
        let items = match &task.inputs {
            InputSpec::From(name) => format!("the outputs of task `{name}`"),
            spec => match (expand::expand(spec, |_| Vec::new()), previous) {
                (Ok(items), Some(previous)) => {
                    let hash = identity::function_hash(task, &job.dir);
                    let (mut all, mut done) = (0u64, 0u64);
                    for input in items.iter.flatten() {
                        all += 1;
                        done += u64::from(previous.claim_done(&hash, &input));
                    }
                    match done {
                        0 => format!("{all} item{}, none done yet", plural(all as usize)),
                        _ => format!(
                            "{} of {all} item{} left ({done} done)",
                            all - done,
                            plural(all as usize)
                        ),
                    }
                }
                (Ok(Items { total: Some(n), .. }), None) => {
                    format!("{n} item{}", plural(n as usize))
                }
                (Ok(_), None) => "a stream of items".to_owned(),
                (Err(e), _) => format!("inputs that cannot be read now: {e}"),
            },
        };
        let timeout = task.timeout.map_or_else(
            || "none".to_owned(),
            |t| humantime::format_duration(t).to_string(),
        );
        if task.cwd != job.dir {
            out!("  task `{}` runs in {}", task.name, task.cwd.display());
        }
        out!(
            "  task `{}`: {} over {items}; {} worker{}, timeout {timeout}, retries {}",
            task.name,
            task.function.label,
            task.workers,
            plural(task.workers),
            task.retry.count
        );
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Runs one job to its results file; returns its exit code.
fn run_job(
    job: &Job,
    target: &OutputTarget,
    args: &RunArgs,
    interrupt: &Interrupt,
    previous: Option<&Arc<Previous>>,
) -> u8 {
    let started_wall = SystemTime::now();
    let run_start = Instant::now();
    let destination = target.destination(&job.name, started_wall);
    let started_at = humantime::format_rfc3339_millis(started_wall).to_string();
    // Held until this function returns: one run of a job at a time.
    let _lock = match lock::acquire(&target.lock_path(job), &job.name, &started_at) {
        Ok(lock) => lock,
        Err(e @ LockError::Held { .. }) => {
            say!("error: {e}");
            return exit_code::LOCKED;
        }
        // The lock file could not be made: the output folder is unusable, and nothing ran.
        Err(e) => {
            say!("error: {e}");
            return exit_code::INVALID;
        }
    };
    let header = RunHeader {
        version: output::VERSION,
        job: job.name.clone(),
        // Absolute, so a reviewer (or `report`) finds the job file from the results alone,
        // whatever folder runjobs was started in.
        job_file: std::path::absolute(&job.file)
            .map(|p| normalize(&p))
            .unwrap_or_else(|_| job.file.clone())
            .display()
            .to_string(),
        started_at,
    };
    let mut journal = match open_journal(job, &destination, &header, args, previous.is_some()) {
        Ok(journal) => journal,
        Err(e) => {
            say!("error: {e}");
            return exit_code::INVALID;
        }
    };
    let mut sink = match output::open(&destination, target.format, header.clone()) {
        Ok(sink) => sink,
        Err(e) => {
            say!("error: {e}");
            // Nothing ran: the journal just opened holds nothing worth keeping.
            if let Some(journal) = journal {
                let _ = journal.discard_this_run();
            }
            return exit_code::INVALID;
        }
    };
    let mut progress = Progress::new(args.progress, args.quiet);
    // `--fail-fast` stops at the first failure: a limit of zero tolerated failures.
    let limit = if args.fail_fast {
        Some(FailureLimit::Count(0))
    } else {
        job.max_failures
    };
    let control = RunControl::new(interrupt, job.deadline, limit);
    // Outputs kept for later tasks that take `inputs = { from = ... }`.
    let feeds: HashSet<&str> = job
        .tasks
        .iter()
        .filter_map(|t| match &t.inputs {
            InputSpec::From(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let mut kept: HashMap<String, Vec<Value>> = HashMap::new();
    let mut collector = Collector::default();

    for (index, task) in job.tasks.iter().enumerate() {
        // Cloned, not taken: several later tasks may feed on the same task.
        let items = match expand::expand(&task.inputs, |name| {
            kept.get(name).cloned().unwrap_or_default()
        }) {
            Ok(items) => items,
            Err(message) => {
                progress.println(&format!("error: task `{}`: {message}", task.name));
                collector.unreadable_inputs = true;
                continue;
            }
        };
        let function_hash = identity::function_hash(task, &job.dir);
        let header = TaskHeader {
            name: task.name.clone(),
            function: task.function.label.clone(),
            function_hash: function_hash.clone(),
            workers: task.workers,
        };
        collector.journal(&mut journal, |j| j.begin_task(&header), &progress);
        collector.write(|| sink.begin_task(&header));
        progress.task_started(&task.name, items.total);
        control.add_items(items.total.unwrap_or(0));
        let keep = feeds.contains(task.name.as_str());
        let mut outputs: Vec<(u64, Value)> = Vec::new();
        let mut task_summary = Summary::default();

        // Bounded: when writing falls behind, the pool waits instead of piling up results
        // in memory (a 10M-item run must stay small).
        let (events, received) = mpsc::sync_channel(EVENTS_IN_FLIGHT);
        let total = items.total;
        let mut source = match (items.steps, total) {
            (Some((start, step)), Some(count)) => Source::Ints(IntRun {
                first: 0,
                start,
                step,
                count,
            }),
            _ => Source::Items(Box::new(items.iter.enumerate().map(|(i, x)| (i as u64, x)))),
        };
        if let Some(previous) = previous {
            source = previous.skip_done(function_hash, source, events.clone(), index);
        }
        let ctx = PoolContext {
            job: &job.name,
            task_index: index,
            task,
            run_start,
            events,
            control: &control,
            journal: journal.as_ref().map(Journal::handle),
        };
        thread::scope(|scope| {
            scope.spawn(move || pool::run_task(&ctx, total, source));
            loop {
                // Wake at least every second (status lines), and in time for the deadline.
                let until_deadline = control
                    .deadline()
                    .map(|d| d.saturating_sub(pause::active_since(run_start)));
                let wait =
                    until_deadline.map_or(TICK, |d| d.clamp(Duration::from_millis(10), TICK));
                match received.recv_timeout(wait) {
                    Ok(Event::Finished { task: t, records }) => {
                        progress.finished(t, &records);
                        for record in &records {
                            task_summary.add(record.status);
                            if keep && let Some(output) = &record.output {
                                let value =
                                    serde_json::from_str(output.get()).unwrap_or(Value::Null);
                                outputs.push((record.index, value));
                            }
                            collector.note(&task.name, record);
                        }
                        // Each run of consecutive indices is rendered and passed on as one.
                        for run in records.chunk_by(|a, b| b.index == a.index + 1) {
                            let rendered = Rendered::of(run);
                            collector.journal(&mut journal, |j| j.records(&rendered), &progress);
                            collector.write(|| sink.run(run[0].index, rendered));
                        }
                    }
                    Ok(Event::Rendered {
                        task: t,
                        first,
                        rendered,
                    }) => {
                        let count = rendered.len() as u64;
                        progress.finished_ok(t, count);
                        task_summary.add_ok(count);
                        if keep {
                            outputs.extend(kept_outputs(first, &rendered));
                        }
                        collector.journal(&mut journal, |j| j.records(&rendered), &progress);
                        collector.write(|| sink.run(first, rendered));
                    }
                    Ok(Event::Journaled {
                        task: t,
                        first,
                        count,
                        range,
                    }) => {
                        progress.finished_ok(t, count);
                        task_summary.add_ok(count);
                        if keep {
                            match range.rendered() {
                                Ok(rendered) => outputs.extend(kept_outputs(first, &rendered)),
                                Err(e) => collector.write(|| Err(e)),
                            }
                        }
                        collector.journal(&mut journal, |j| j.appended(&range), &progress);
                        collector.write(|| sink.journaled(first, count, &range));
                    }
                    Ok(Event::Log(line)) => progress.log(&line),
                    Err(RecvTimeoutError::Timeout) => progress.tick(),
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                // Time paused (Ctrl-Z) does not count against the deadline.
                control.check_deadline(pause::active_since(run_start));
                progress.tick();
            }
        });
        progress.task_finished(index);
        collector.write(|| sink.end_task(&task_summary));
        collector.summary.merge(&task_summary);
        if keep {
            outputs.sort_by_key(|(i, _)| *i);
            kept.insert(
                task.name.clone(),
                outputs.into_iter().map(|(_, v)| v).collect(),
            );
        }
        // Later tasks do not start once the run stopped early, however it stopped.
        if control.stop().is_some() {
            break;
        }
    }

    let stop = control.stop();
    let status = if stop == Some(Stop::Interrupted) {
        RunStatus::Interrupted
    } else if collector.summary.failures() > 0 || collector.unreadable_inputs || stop.is_some() {
        RunStatus::Failed
    } else {
        RunStatus::Ok
    };
    let footer = RunFooter {
        status,
        finished_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        duration_s: (run_start.elapsed().as_secs_f64() * 1e6).round() / 1e6,
        summary: collector.summary,
    };
    collector.write(|| sink.finish(&footer));
    progress.clear();
    let destination = collector.settle(
        journal,
        destination,
        &job.dir,
        target.format,
        &header,
        &footer,
    );
    collector.report(job, &destination, &footer, &progress, &control, run_start);
    match status {
        RunStatus::Interrupted => exit_code::INTERRUPTED,
        _ if collector.write_error.is_some() => exit_code::ITEMS_FAILED,
        RunStatus::Failed => exit_code::ITEMS_FAILED,
        RunStatus::Ok => exit_code::OK,
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

/// Run-wide bookkeeping on the collecting thread.
#[derive(Default)]
struct Collector {
    summary: Summary,
    failures: Vec<String>,
    unreadable_inputs: bool,
    /// The first error writing the results file; later writes are skipped.
    write_error: Option<std::io::Error>,
    /// The journal moved to another folder (its folder failed), and the user was told.
    journal_move_told: bool,
    /// Where the results went instead, when their own file could not be written.
    fallback: Option<PathBuf>,
}

impl Collector {
    /// Writes to the journal. A journal that cannot be written anywhere is given up (with a
    /// warning): the run goes on, it only could not be resumed after a SIGKILL.
    fn journal(
        &mut self,
        journal: &mut Option<Journal>,
        op: impl FnOnce(&mut Journal) -> std::io::Result<()>,
        progress: &Progress,
    ) {
        let Some(j) = journal else {
            return;
        };
        if let Err(e) = op(j) {
            progress.println(&format!("warning: {e}; the run goes on without a journal"));
            *journal = None;
            return;
        }
        if !self.journal_move_told
            && let Some((from, cause)) = j.moved_from()
        {
            progress.println(&format!(
                "warning: cannot write the journal `{}` ({cause}); it continues in `{}`",
                from.display(),
                j.path().display()
            ));
            self.journal_move_told = true;
        }
    }

    /// After the results file was written (or not): a written one makes the journal
    /// redundant; one that failed is rendered again from the journal into a fallback
    /// folder. Returns where the results are.
    fn settle(
        &mut self,
        journal: Option<Journal>,
        destination: Destination,
        job_dir: &Path,
        format: Format,
        header: &RunHeader,
        footer: &RunFooter,
    ) -> Destination {
        let Some(journal) = journal else {
            return destination;
        };
        if self.write_error.is_none() {
            if journal.has_earlier_runs() && footer.status != RunStatus::Ok {
                // Results of an earlier killed run that this one did not redo would go
                // with it; `--resume` reads the output and the journal together.
                say!(
                    "note: the journal `{}` is kept: it holds results of an earlier unfinished \
                     run that this one did not redo",
                    journal.path().display()
                );
            } else if let Err(e) = journal.remove() {
                say!("warning: cannot remove the journal: {e}");
            }
            return destination;
        }
        let Destination::File(path) = &destination else {
            return destination;
        };
        let name = path
            .file_name()
            .map_or_else(|| "results".into(), |n| n.to_string_lossy().into_owned());
        let folders = crate::fallback::folders(job_dir, path.parent());
        let rendered = journal.this_run().and_then(|entries| {
            output::render_fallback(&entries, &folders, &name, format, header, footer)
        });
        match rendered {
            Ok(fallback) => {
                // Everything is in the fallback file; the journal is a second copy.
                let _ = journal.remove();
                self.fallback = Some(fallback.clone());
                Destination::File(fallback)
            }
            Err(e) => {
                say!(
                    "error: cannot write the results to a fallback file either ({e}); every \
                     finished result is in the journal `{}`",
                    journal.path().display()
                );
                destination
            }
        }
    }

    fn note(&mut self, task: &str, record: &ItemRecord) {
        if record.status.is_failure() && self.failures.len() < FAILURES_SHOWN {
            self.failures.push(progress::describe_failure(task, record));
        }
    }

    fn write(&mut self, op: impl FnOnce() -> std::io::Result<()>) {
        if self.write_error.is_none()
            && let Err(e) = op()
        {
            self.write_error = Some(e);
        }
    }

    /// The closing lines on stderr: a summary (unless `-q` and all went well), the first
    /// failures, and where the results are.
    fn report(
        &self,
        job: &Job,
        destination: &Destination,
        footer: &RunFooter,
        progress: &Progress,
        control: &RunControl<'_>,
        run_start: Instant,
    ) {
        let s = &footer.summary;
        let trouble =
            s.failures() > 0 || self.write_error.is_some() || footer.status != RunStatus::Ok;
        if progress.quiet() && !trouble {
            return;
        }
        let mut line = format!(
            "runjobs: {}: {} ok, {} failed, {} timed out",
            job.name, s.ok, s.failed, s.timed_out
        );
        if s.skipped > 0 {
            line += &format!(", {} skipped", s.skipped);
        }
        // The whole run, writing its results included (the file's `duration_s` cannot count
        // the writing of the file that holds it).
        line += &format!(" in {:.2}s", run_start.elapsed().as_secs_f64());
        match control.stop() {
            Some(Stop::Interrupted) => {
                line += &format!(" (interrupted by {})", control.signal_name());
            }
            Some(Stop::Deadline) => {
                let deadline = control.deadline().unwrap_or_default();
                line += &format!(
                    " (stopped: the deadline of {} passed)",
                    humantime::format_duration(deadline)
                );
            }
            Some(Stop::TooManyFailures) => {
                line += &format!("{})", control.limit_message(" (stopped: "));
            }
            None => {}
        }
        match (&self.write_error, destination) {
            (Some(e), Destination::File(path)) if self.fallback.is_some() => {
                line += &format!(
                    "\nerror: results could not be written: {e}\nevery result is in the fallback file {}",
                    path.display()
                );
            }
            (Some(e), _) => line += &format!("\nerror: results could not be written: {e}"),
            (None, Destination::File(path)) => line += &format!("; results in {}", path.display()),
            (None, Destination::Stdout) => {}
        }
        say!("{line}");
        for failure in &self.failures {
            say!("{failure}");
        }
        let more = s.failures().saturating_sub(self.failures.len() as u64);
        if more > 0 {
            say!("  … and {more} more failures (see the results file)");
        }
    }
}

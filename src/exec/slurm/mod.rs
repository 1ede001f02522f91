//! The Slurm executor: a task's items as one Slurm job array. The items and the job go to a
//! spool folder on shared storage (`spool`); one `sbatch` submits an array task per shard
//! (`submit`); each array task runs the hidden `__shard` mode (`shard`) — the local pool over
//! its shard, appending to its own journal; runjobs follows the journals and `squeue`
//! (`follow`) and reports every item as the local pool would, each result naming its node.
//! Success is read from the journals, never from Slurm's exit codes; an item a shard never
//! finished is failed with the reason Slurm gives (or "lost"), and `--resume` reruns it.

mod follow;
mod shard;
mod spool;
mod submit;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use self::follow::{Ended, Follower};
use self::spool::{ItemsWriter, Manifest, ShardRange, Spool, write_whole};
use self::submit::JobId;
use super::{Event, Executor, TaskRun};
use crate::items::Source;
use crate::job::{Admit, Job, SlurmSettings};
use crate::record::{ItemRecord, Status};

pub use shard::shard_main;
pub use submit::check;

/// How often the shard journals are read.
const READ_EVERY: Duration = Duration::from_millis(100);
/// A submission none of whose shards started this long after is said to wait, with
/// Slurm's reason.
const SAY_WAITING_AFTER: Duration = Duration::from_secs(10);
/// How often `squeue` is asked.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// After `scancel`, how long the shards have to stop before their items are given up.
const CANCEL_WAIT: Duration = Duration::from_secs(60);
/// How long `squeue` may fail in a row before the shards still out are given up as lost
/// (`RUNJOBS_SLURM_SILENT_LIMIT` sets another, e.g. `30s`).
const SILENT_LIMIT: Duration = Duration::from_secs(300);

fn silent_limit() -> Duration {
    std::env::var("RUNJOBS_SLURM_SILENT_LIMIT")
        .ok()
        .and_then(|v| humantime::parse_duration(&v).ok())
        .unwrap_or(SILENT_LIMIT)
}
/// Failed records are reported in batches of this many.
const BATCH: usize = 4096;

/// Runs tasks as Slurm job arrays.
pub struct SlurmExecutor {
    settings: SlurmSettings,
    /// Absolute: the shards load their copy of the job as if from here.
    job_file: PathBuf,
    job_dir: PathBuf,
    deadline: Option<Duration>,
    /// `--timeout`, which the job file's copy does not hold.
    timeout: Option<Duration>,
    /// The runjobs the array tasks start (on storage the nodes share).
    binary: PathBuf,
    /// Each submission's spool, and whether every shard of it ended well.
    spools: Mutex<Vec<(PathBuf, bool)>>,
    /// Spools of earlier runs whose shard journals `--resume` read.
    rescued: Vec<PathBuf>,
    /// The admission bounds, for each shard to apply on its node.
    admit: Admit,
}

impl SlurmExecutor {
    /// `rescued`: the spools `--resume` read shard journals from (they may go once this
    /// run's results are written).
    pub fn new(
        job: &Job,
        timeout: Option<Duration>,
        admit: Admit,
        rescued: Vec<PathBuf>,
    ) -> io::Result<SlurmExecutor> {
        Ok(SlurmExecutor {
            admit,
            rescued,
            settings: job.executor.slurm.clone(),
            job_file: std::path::absolute(&job.file)?,
            job_dir: job.dir.clone(),
            deadline: job.deadline,
            timeout,
            binary: std::env::current_exe()?,
            spools: Mutex::new(Vec::new()),
        })
    }
}

/// The folder the submissions' spools of a run writing `results` go in: `[executor] spool`,
/// else beside the results (else in the job's folder), in `RESULTS-NAME.slurm/`.
pub fn spool_root(
    settings: &SlurmSettings,
    job: &str,
    job_dir: &Path,
    results: Option<&Path>,
) -> PathBuf {
    let base = settings.spool.clone().unwrap_or_else(|| {
        results
            .and_then(Path::parent)
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| job_dir.to_owned(), Path::to_owned)
    });
    let name = results
        .and_then(Path::file_name)
        .map_or_else(|| job.to_owned(), |n| n.to_string_lossy().into_owned());
    base.join(format!("{name}.slurm"))
}

/// The dry run's line: how each task would be submitted.
pub fn describe(job: &Job, results: Option<&Path>) -> String {
    let s = &job.executor.slurm;
    let mut parts = vec![match s.shards {
        Some(n) => format!("{n} shard{} per task", if n == 1 { "" } else { "s" }),
        None => "one shard per worker".to_owned(),
    }];
    if let Some(n) = s.max_running {
        parts.push(format!("at most {n} at a time"));
    }
    parts.push(format!(
        "{} CPU{} a shard",
        s.cpus_per_task.unwrap_or(1),
        if s.cpus_per_task.unwrap_or(1) == 1 {
            ""
        } else {
            "s"
        }
    ));
    for (name, value) in [
        ("partition", &s.partition),
        ("account", &s.account),
        ("time", &s.time),
        ("mem", &s.mem),
    ] {
        if let Some(value) = value {
            parts.push(format!("{name} {value}"));
        }
    }
    if !s.sbatch_args.is_empty() {
        parts.push(format!("sbatch {}", s.sbatch_args.join(" ")));
    }
    let root = spool_root(s, &job.name, &job.dir, results);
    format!(
        "executor: slurm, a job array a task: {}; spool {}",
        parts.join(", "),
        root.display()
    )
}

/// The submissions' folders under a spool root (each holds a manifest).
pub fn submissions(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    found.sort();
    found
}

/// The shard journals under a spool root, one group per submission: what `--resume` reads
/// besides the results file and its journal (they hold what shards finished after a runjobs
/// killed with SIGKILL stopped following them).
pub fn shard_journals(root: &Path) -> Vec<Vec<PathBuf>> {
    let Ok(submissions) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut groups: Vec<Vec<PathBuf>> = submissions
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let mut journals: Vec<PathBuf> = std::fs::read_dir(entry.path())
                .ok()?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("shard-") && n.ends_with(".journal"))
                })
                .collect();
            journals.sort();
            (!journals.is_empty()).then_some(journals)
        })
        .collect();
    groups.sort();
    groups
}

impl Executor for SlurmExecutor {
    fn run_task(&self, ctx: &TaskRun<'_>, _total: Option<u64>, items: Source) {
        let root = spool_root(&self.settings, ctx.job, &self.job_dir, ctx.results);
        // The array tasks start in the job's folder: a relative `-o` must not move the spool.
        let root = std::path::absolute(&root).unwrap_or(root);
        let stamp = ctx
            .header
            .started_at
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>();
        let spool = Spool::new(root.join(format!("{stamp}-task{}", ctx.task_index + 1)));
        let clean = self.submit_and_follow(ctx, &spool, items);
        let mut spools = self.spools.lock().unwrap_or_else(|p| p.into_inner());
        spools.push((spool.dir, clean));
    }

    fn finish(&self, results_written: bool) {
        let spools = std::mem::take(&mut *self.spools.lock().unwrap_or_else(|p| p.into_inner()));
        if !results_written || spools.iter().any(|(_, clean)| !clean) {
            // Kept: the shard logs say what went wrong, the journals serve `--resume`.
            return;
        }
        // The results hold every result now, those the earlier spools rescued too.
        for dir in spools.iter().map(|(dir, _)| dir).chain(&self.rescued) {
            let _ = std::fs::remove_dir_all(dir);
            // The `.slurm` folder goes with its last submission.
            if let Some(root) = dir.parent() {
                let _ = std::fs::remove_dir(root);
            }
        }
    }
}

impl SlurmExecutor {
    /// Spools, submits and follows one task; true when every shard ended well (its spool
    /// may go once the results are written).
    fn submit_and_follow(&self, ctx: &TaskRun<'_>, spool: &Spool, items: Source) -> bool {
        let mut items = items;
        let mut pushed = Vec::new();
        let spooled = match self.spool_items(ctx, spool, &mut items, &mut pushed) {
            Ok(Some(spooled)) => spooled,
            Ok(None) => {
                let _ = std::fs::remove_dir_all(&spool.dir);
                return true;
            }
            Err(e) => {
                let why = format!(
                    "not submitted: cannot write the spool `{}`: {e}",
                    spool.dir.display()
                );
                log(ctx, format!("slurm: task `{}`: {why}", ctx.task.name));
                // Every item fails, those already spooled (their inputs are in the spool
                // no longer) and those not reached.
                let spooled = pushed.into_iter().map(|i| (i, Value::Null));
                let rest = items.map(|(i, input)| (i, input.unwrap_or(Value::Null)));
                fail_all(ctx, spooled.chain(rest), &why);
                return false;
            }
        };
        let (ranges, max_index) = spooled;
        let throttle = self
            .settings
            .max_running
            .unwrap_or(u32::try_from(ctx.task.workers).unwrap_or(u32::MAX))
            .max(1);
        let request = submit::Request {
            settings: &self.settings,
            spool,
            name: format!("runjobs-{}-{}", ctx.job, ctx.task.name),
            shards: ranges.len(),
            throttle,
            deadline: self.deadline,
            chdir: &self.job_dir,
        };
        if ctx.control.stop().is_some() {
            // Stopped while spooling: nothing goes to the cluster.
            report_rest(ctx, spool, &ranges, &Forwarded::default(), |_| {
                (Status::Skipped, ctx.control.skipped_message())
            });
            return false;
        }
        let submitted = Instant::now();
        let job = match submit::sbatch(&request.sbatch_args()) {
            Ok(id) => id,
            Err(e) => {
                let why = format!("not submitted: {e}");
                report_rest(ctx, spool, &ranges, &Forwarded::default(), |_| {
                    (Status::Failed, why.clone())
                });
                return false;
            }
        };
        let _ = write_whole(&spool.array_id(), format!("{job}\n").as_bytes());
        let shards = ranges.len();
        log(
            ctx,
            format!(
                "slurm: task `{}`: submitted job array {job}: {shards} shard{} ({} at a time); spool `{}`",
                ctx.task.name,
                if shards == 1 { "" } else { "s" },
                throttle.min(u32::try_from(shards).unwrap_or(u32::MAX)),
                spool.dir.display()
            ),
        );
        self.follow(ctx, spool, job, &ranges, max_index, submitted)
    }

    /// Writes the items, the job and the manifest; `None` when there is nothing to submit.
    /// `pushed` gets the index of every item written to the spool.
    fn spool_items(
        &self,
        ctx: &TaskRun<'_>,
        spool: &Spool,
        items: &mut Source,
        pushed: &mut Vec<u64>,
    ) -> io::Result<Option<(Vec<ShardRange>, u64)>> {
        std::fs::create_dir_all(&spool.dir)?;
        let mut writer = ItemsWriter::create(&spool.items())?;
        let mut bad = Vec::new();
        let mut max_index = 0;
        for (index, item) in items.by_ref() {
            max_index = max_index.max(index);
            match item {
                Ok(input) => {
                    if let Err(e) = writer.push(index, &input) {
                        report(ctx, bad);
                        fail_all(ctx, [(index, input)], "not submitted");
                        return Err(e);
                    }
                    pushed.push(index);
                }
                // An input that cannot be read fails by itself, as in a local run.
                Err(message) => bad.push(record(index, Value::Null, Status::Failed, message)),
            }
            if bad.len() >= BATCH {
                report(ctx, std::mem::take(&mut bad));
            }
        }
        report(ctx, bad);
        if writer.count() == 0 {
            return Ok(None);
        }
        let count = writer.count();
        let wanted = self
            .settings
            .shards
            .unwrap_or(ctx.task.workers as u64)
            .min(count);
        let ranges = writer.finish(usize::try_from(wanted).unwrap_or(usize::MAX))?;
        std::fs::copy(&self.job_file, spool.job_copy())?;
        let manifest = Manifest {
            layout: spool::LAYOUT,
            job_file: self.job_file.clone(),
            task: ctx.task_index,
            function_hash: ctx.function_hash.to_owned(),
            header: ctx.header.clone(),
            run_started_unix_ns: ctx
                .started_wall
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            workers: self.settings.cpus_per_task.unwrap_or(1) as usize,
            timeout_ms: self
                .timeout
                .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            memfree: self.admit.memfree,
            load: self.admit.load,
            shards: ranges.clone(),
        };
        spool.write_manifest(&manifest)?;
        let script = format!(
            "#!/bin/sh\n# One shard of a runjobs task, run by Slurm as an array task.\nexec {} __shard --spool {}\n",
            shell_quote(&self.binary),
            shell_quote(&spool.dir)
        );
        write_whole(&spool.script(), script.as_bytes())?;
        Ok(Some((ranges, max_index)))
    }

    /// Follows the array until every shard ended (or was given up), reporting results as the
    /// journals grow, then the items no shard finished. True when every shard ended well.
    fn follow(
        &self,
        ctx: &TaskRun<'_>,
        spool: &Spool,
        job: JobId,
        ranges: &[ShardRange],
        max_index: u64,
        submitted: Instant,
    ) -> bool {
        let mut follower = Follower::new(spool, job.clone(), ranges.len());
        let mut forwarded = Forwarded::new(max_index);
        let mut next_poll = Instant::now();
        // When runjobs cancelled the array, and which shards had ended by then.
        let mut cancelled: Option<(Instant, Vec<bool>)> = None;
        let mut said = Said::default();
        let silent = silent_limit();
        let take = |records: Vec<ItemRecord>, forwarded: &mut Forwarded| {
            let fresh: Vec<ItemRecord> = records
                .into_iter()
                .filter(|r| forwarded.insert(r.index))
                .collect();
            for _ in fresh.iter().filter(|r| r.status.is_failure()) {
                ctx.control.record_failure();
            }
            report(ctx, fresh);
        };
        loop {
            follower.read_journals(|_, records| take(records, &mut forwarded));
            follower.check_done();
            said.announce(ctx, &follower, submitted);
            let now = Instant::now();
            if now >= next_poll {
                follower.poll();
                next_poll = now + POLL_EVERY;
            }
            if follower.all_ended() {
                break;
            }
            match &cancelled {
                None => {
                    if ctx.control.stop().is_some() {
                        cancel(ctx, &job);
                        let ended = (0..ranges.len()).map(|k| follower.ended(k).is_some());
                        cancelled = Some((now, ended.collect()));
                        next_poll = now;
                    }
                }
                Some((at, _)) if now.duration_since(*at) >= CANCEL_WAIT => {
                    follower.give_up(&format!(
                        "job array {job} did not stop within {} of `scancel`",
                        humantime::format_duration(CANCEL_WAIT)
                    ));
                }
                Some(_) => {}
            }
            if follower.silent_for() >= silent {
                let why = follower.squeue_error.clone().unwrap_or_default();
                follower.give_up(&format!(
                    "`squeue` has not answered for {}: {why}",
                    humantime::format_duration(silent)
                ));
                // Best effort: shards nobody follows any more should not run on.
                cancel(ctx, &job);
            }
            thread::sleep(READ_EVERY);
        }
        if cancelled.is_none() && follower.any_lost() {
            // Shards given up on must not run later with nobody to follow them.
            cancel(ctx, &job);
        }
        // A shard may have finished its journal and its mark just as Slurm reported it
        // ended: take what is there now.
        follower.settle();
        follower.read_journals(|_, records| take(records, &mut forwarded));
        let unfinished = report_rest(ctx, spool, ranges, &forwarded, |k| {
            let stopped = cancelled
                .as_ref()
                .is_some_and(|(_, ended)| !ended.get(k).copied().unwrap_or(false));
            why_unfinished(ctx, spool, &job, k, stopped, follower.ended(k))
        });
        let all_done =
            (0..ranges.len()).all(|k| matches!(follower.ended(k), Some(Ended::Done(None))));
        // Anything unfinished keeps the spool: its logs, and its journals for `--resume`.
        cancelled.is_none() && all_done && unfinished == 0 && ctx.control.stop().is_none()
    }
}

/// `scancel`, saying so when it fails.
fn cancel(ctx: &TaskRun<'_>, job: &JobId) {
    if let Err(e) = submit::scancel(job) {
        log(
            ctx,
            format!("slurm: warning: cannot cancel job array {job}: {e}"),
        );
    }
}

/// What the follower has said about the array's start.
#[derive(Default)]
struct Said {
    waiting: bool,
    running: bool,
}

impl Said {
    fn announce(&mut self, ctx: &TaskRun<'_>, follower: &Follower<'_>, submitted: Instant) {
        let job = &follower.job;
        if !self.waiting && !follower.any_started && submitted.elapsed() >= SAY_WAITING_AFTER {
            self.waiting = true;
            let (_, pending, reason) = follower.counts();
            let reason = reason.map(|r| format!(" ({r})")).unwrap_or_default();
            log(
                ctx,
                format!("slurm: job array {job}: {pending} shards still wait in the queue{reason}"),
            );
        }
        if !self.running && follower.any_started {
            self.running = true;
            log(
                ctx,
                format!(
                    "slurm: job array {job}: the first shard runs {:.1} s after submission",
                    submitted.elapsed().as_secs_f64()
                ),
            );
        }
    }
}

/// What an item of shard `k` that has no result is reported as.
fn why_unfinished(
    ctx: &TaskRun<'_>,
    spool: &Spool,
    job: &JobId,
    k: usize,
    cancelled: bool,
    ended: Option<&Ended>,
) -> (Status, String) {
    let log = spool.log(k);
    let log = log.display();
    match ended {
        // runjobs stopped the run (a signal, the deadline, too many failures).
        _ if cancelled => (Status::Skipped, ctx.control.skipped_message()),
        Some(Ended::Done(Some(why))) => (Status::Failed, format!("shard {k}: {why}")),
        Some(Ended::Slurm(state)) => (
            Status::Failed,
            format!(
                "{state}: Slurm array task {job}_{k} ended {state} before this item finished \
                 (its log: {log})"
            ),
        ),
        Some(Ended::Lost(why)) => (Status::Failed, format!("lost: {why}")),
        _ => (
            Status::Failed,
            format!("lost: shard {k} ended without a result for this item (its log: {log})"),
        ),
    }
}

/// Fails every item of `items` with `why`.
fn fail_all(ctx: &TaskRun<'_>, items: impl IntoIterator<Item = (u64, Value)>, why: &str) {
    let mut batch = Vec::new();
    for (index, input) in items {
        ctx.control.record_failure();
        batch.push(record(index, input, Status::Failed, why.to_owned()));
        if batch.len() >= BATCH {
            report(ctx, std::mem::take(&mut batch));
        }
    }
    report(ctx, batch);
}

/// Reports every spooled item that has no result yet, each with its shard's reason.
fn report_rest(
    ctx: &TaskRun<'_>,
    spool: &Spool,
    ranges: &[ShardRange],
    forwarded: &Forwarded,
    reason: impl Fn(usize) -> (Status, String),
) -> u64 {
    let mut batch = Vec::new();
    let mut unfinished = 0;
    for (k, range) in ranges.iter().enumerate() {
        let Ok(items) = spool.shard_items(*range) else {
            continue;
        };
        let (status, why) = reason(k);
        for (index, input) in items {
            if forwarded.contains(index) {
                continue;
            }
            if status.is_failure() {
                ctx.control.record_failure();
            }
            unfinished += 1;
            batch.push(record(
                index,
                input.unwrap_or(Value::Null),
                status,
                why.clone(),
            ));
            if batch.len() >= BATCH {
                report(ctx, std::mem::take(&mut batch));
            }
        }
    }
    report(ctx, batch);
    unfinished
}

fn report(ctx: &TaskRun<'_>, records: Vec<ItemRecord>) {
    ctx.report(records);
}

fn log(ctx: &TaskRun<'_>, line: String) {
    let _ = ctx.events.send(Event::Log(line));
}

fn record(index: u64, input: Value, status: Status, error: String) -> ItemRecord {
    // A failed item counts as tried once: on a node, or at its submission.
    let attempts = u32::from(status != Status::Skipped);
    ItemRecord::without_result(index, input, status, error, attempts)
}

/// The items already reported, by index.
#[derive(Default)]
struct Forwarded {
    bits: Vec<u64>,
}

impl Forwarded {
    fn new(max_index: u64) -> Forwarded {
        Forwarded {
            bits: vec![0; usize::try_from(max_index / 64 + 1).unwrap_or(0)],
        }
    }

    /// True the first time an index is seen (a shard's record of an item not its own, or
    /// seen twice, is dropped).
    fn insert(&mut self, index: u64) -> bool {
        let (word, bit) = ((index / 64) as usize, index % 64);
        match self.bits.get_mut(word) {
            Some(w) if *w & (1 << bit) == 0 => {
                *w |= 1 << bit;
                true
            }
            _ => false,
        }
    }

    fn contains(&self, index: u64) -> bool {
        let (word, bit) = ((index / 64) as usize, index % 64);
        self.bits.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }
}

/// A path as one `sh` word.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

//! The hidden `__shard` mode: what each array task runs on its node. It loads the submitted
//! job from the spool, runs its shard of the items on the local pool (the same timeouts,
//! retries, limits and function kinds as a local run) and appends every result to its own
//! journal in the spool, each naming the node. Its `done` mark says the journal is whole.
//!
//! A shard stopped by a signal (Slurm's `scancel`, time limit or preemption) writes no mark
//! and no record for the items it did not finish: the submitting runjobs reports those with
//! the reason Slurm gives.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::spool::{Manifest, ShardRange, Spool, write_whole};
use crate::exec::admit::Gate;
use crate::exec::control::{RunControl, Stop};
use crate::exec::{Event, Executor, LocalPool, SlowItems, TaskRun};
use crate::exit_code;
use crate::items::fingerprint::Fingerprints;
use crate::items::{Source, function_hash};
use crate::job::{self, Admit, Job};
use crate::process::{groups, interrupt::Interrupt};
use crate::record::journal::Journal;
use crate::record::{ItemRecord, Rendered, Status, TaskHeader};

/// How long a failed record waits before it is journaled (see `run_shard`).
const HOLD_FAILURES: Duration = Duration::from_millis(500);

/// `runjobs __shard --spool DIR [--shard K]`; K defaults to `SLURM_ARRAY_TASK_ID`.
pub fn shard_main(spool: &Path, shard: Option<usize>) -> u8 {
    let from_env = || std::env::var("SLURM_ARRAY_TASK_ID").ok()?.parse().ok();
    let Some(shard) = shard.or_else(from_env) else {
        say!("error: no shard given: pass `--shard K` or run as a Slurm array task");
        return exit_code::INVALID;
    };
    let spool = Spool::new(spool.to_owned());
    match run_shard(&spool, shard) {
        Ok(Ended::Stopped) => exit_code::INTERRUPTED,
        Ok(Ended::Ran) => mark_done(&spool, shard, None),
        Err(why) => {
            say!("runjobs shard {shard}: error: {why}");
            mark_done(&spool, shard, Some(why))
        }
    }
}

/// How a shard's run ended.
enum Ended {
    /// Every item of the shard has its record in the journal.
    Ran,
    /// A signal stopped it: the items without a record are Slurm's to explain.
    Stopped,
}

fn mark_done(spool: &Spool, shard: usize, error: Option<String>) -> u8 {
    let code = if error.is_some() {
        exit_code::ITEMS_FAILED
    } else {
        exit_code::OK
    };
    let mark = serde_json::json!({ "error": error });
    if let Err(e) = write_whole(&spool.done(shard), mark.to_string().as_bytes()) {
        say!("runjobs shard {shard}: error: cannot write its done mark: {e}");
        return exit_code::ITEMS_FAILED;
    }
    code
}

/// A shard's part of the submission, loaded from the spool.
struct Loaded {
    manifest: Manifest,
    range: ShardRange,
    job: Job,
    hash: String,
}

/// Reads the manifest and the job copy; checks that the function is the one submitted.
fn load(spool: &Spool, k: usize) -> Result<Loaded, String> {
    let manifest = spool.read_manifest()?;
    let range = *manifest.shards.get(k).ok_or_else(|| {
        format!(
            "the spool has {} shards, not a shard {k}",
            manifest.shards.len()
        )
    })?;
    let copy = spool.job_copy();
    let bytes =
        std::fs::read(&copy).map_err(|e| format!("cannot read `{}`: {e}", copy.display()))?;
    let mut job = job::load_bytes(&manifest.job_file, &bytes)
        .map_err(|e| format!("the submitted job file does not load here:\n{e}"))?;
    let task = job
        .tasks
        .get_mut(manifest.task)
        .ok_or_else(|| format!("the submitted job has no task #{}", manifest.task + 1))?;
    task.workers = manifest.workers;
    if let Some(ms) = manifest.timeout_ms {
        task.timeout = Some(Duration::from_millis(ms));
    }
    let hash = function_hash(task, &job.dir);
    if hash != manifest.function_hash {
        return Err(format!(
            "task `{}`'s function changed after the items were submitted (its script or the \
             job file was edited): this shard ran nothing; `--resume` runs its items with the \
             new definition",
            task.name
        ));
    }
    Ok(Loaded {
        manifest,
        range,
        job,
        hash,
    })
}

fn run_shard(spool: &Spool, k: usize) -> Result<Ended, String> {
    let Loaded {
        manifest,
        range,
        job,
        hash,
    } = load(spool, k)?;
    let task = &job.tasks[manifest.task];
    let journal_path = spool.journal(k);
    let mut journal = Journal::open(&journal_path, &manifest.header, &job.dir)
        .map_err(|e| e.to_string())?
        .journal;
    let header = TaskHeader {
        name: task.name.clone(),
        function: task.function.label.clone(),
        function_hash: hash.clone(),
        workers: task.workers,
        total: Some(range.count),
    };
    journal.begin_task(&header).map_err(|e| e.to_string())?;
    let interrupt = Interrupt::install().map_err(|e| format!("cannot handle signals: {e}"))?;
    if let Err(e) = groups::start_guard() {
        say!("warning: cannot start the guard process: {e}");
    }
    let mut shard = Shard {
        fingerprints: None,
        node: node_name().into(),
        // This shard's clock starts later than the run's: `started_s` counts from the run's.
        offset_s: unix_ns()
            .saturating_sub(manifest.run_started_unix_ns)
            .div_euclid(1000) as f64
            / 1e6,
    };
    let admit = Admit {
        memfree: manifest.memfree,
        load: manifest.load,
    };
    let control =
        RunControl::new(&interrupt, job.deadline, job.max_failures).with_gate(Gate::new(admit));
    control.add_items(range.count);
    let items = spool
        .shard_items(range)
        .map_err(|e| format!("cannot read the spooled items: {e}"))?;
    // Results carry the state of the files they were computed from (SPEC §8).
    let fingerprints = task
        .file_state
        .as_ref()
        .map(|_| Arc::new(Fingerprints::default()));
    let items: Source = match (&fingerprints, &task.file_state) {
        (Some(f), Some(rule)) => Source::Items(Box::new(f.noting(rule.clone(), items))),
        _ => Source::Items(Box::new(items)),
    };
    shard.fingerprints = fingerprints;
    let (events, received) = mpsc::sync_channel(64);
    let slow = SlowItems::default();
    let run_start = Instant::now();
    let ctx = TaskRun {
        job: &job.name,
        task_index: manifest.task,
        task,
        run_start,
        events,
        control: &control,
        // Builtin workers send their records here: each needs its node.
        journal: None,
        slow: &slow,
        tag: false,
        header: &manifest.header,
        started_wall: SystemTime::now(),
        results: None,
        function_hash: &hash,
        // A shard's stdout is its log: the outputs travel in its journal.
        stdout: None,
    };
    let mut failed_write = None;
    let mut write = |records: &[ItemRecord]| {
        if !records.is_empty()
            && let Err(e) = journal.records(&Rendered::of(records))
        {
            failed_write.get_or_insert(e);
        }
    };
    thread::scope(|scope| {
        scope.spawn(move || LocalPool.run_task(&ctx, Some(range.count), items));
        collect(&received, &shard, &control, run_start, &mut write);
    });
    groups::stop_guard();
    // The journal moved to a fallback folder (the spool failed): the submitting runjobs
    // cannot see what went there, so this shard did not do its part.
    let moved = journal.moved_from().map(|(from, why)| {
        format!(
            "cannot write `{}` ({why}); its results went to `{}` on this node instead",
            from.display(),
            journal.path().display()
        )
    });
    drop(journal);
    if let Some(moved) = moved {
        return Err(moved);
    }
    if let Some(e) = failed_write {
        return Err(format!("cannot write `{}`: {e}", journal_path.display()));
    }
    Ok(match control.stop() {
        Some(Stop::Interrupted) => Ended::Stopped,
        _ => Ended::Ran,
    })
}

/// Journals the pool's records until it is done.
///
/// Failures wait a moment before they are journaled: Slurm signals every process of a
/// cancelled array task at once, so a command may die of that signal a moment before this
/// shard hears of it; its record is then a sign of the cancellation, not a result.
fn collect(
    received: &Receiver<Event>,
    shard: &Shard,
    control: &RunControl<'_>,
    run_start: Instant,
    write: &mut impl FnMut(&[ItemRecord]),
) {
    let mut held: Vec<(Instant, ItemRecord)> = Vec::new();
    loop {
        let ended = match received.recv_timeout(Duration::from_millis(100)) {
            Ok(event) => {
                let (ok, failed): (Vec<_>, Vec<_>) = shard
                    .records(event, control)
                    .into_iter()
                    .partition(|r| r.status == Status::Ok);
                write(&ok);
                held.extend(failed.into_iter().map(|r| (Instant::now(), r)));
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        if control.stop() == Some(Stop::Interrupted) {
            held.clear();
        }
        let due = held.partition_point(|(at, _)| ended || at.elapsed() >= HOLD_FAILURES);
        let due: Vec<ItemRecord> = held.drain(..due).map(|(_, r)| r).collect();
        write(&due);
        if ended {
            return;
        }
        control.check_deadline(run_start.elapsed());
    }
}

/// What every record of this shard gains.
struct Shard {
    /// The fingerprints of the items whose inputs name files, for their records.
    fingerprints: Option<Arc<Fingerprints>>,
    node: Arc<str>,
    offset_s: f64,
}

impl Shard {
    /// The records an event carries, as the journal takes them: each with the node and the
    /// run's clock. Items a signal stopped are left out: they did not end here.
    fn records(&self, event: Event, control: &RunControl<'_>) -> Vec<ItemRecord> {
        let mut records = match event {
            Event::Finished { records, .. } => records,
            Event::Rendered { rendered, .. } => rendered.records(),
            Event::Journaled { range, .. } => {
                range.rendered().map(|r| r.records()).unwrap_or_default()
            }
            Event::Log(line) => {
                say!("{line}");
                Vec::new()
            }
            // A shard's journal holds records only: a cluster run has no workers' total.
            Event::WorkerEnded { .. } => Vec::new(),
        };
        if control.stop() == Some(Stop::Interrupted) {
            let stopped = control.stopped_message();
            records.retain(|r| {
                r.status != Status::Skipped && r.error.as_deref() != Some(stopped.as_str())
            });
        }
        if let Some(fingerprints) = &self.fingerprints {
            fingerprints.stamp(&mut records);
        }
        for record in &mut records {
            record.node = Some(Arc::clone(&self.node));
            if record.status != Status::Skipped {
                record.started_s += self.offset_s;
            }
        }
        records
    }
}

/// The node's name as Slurm knows it, else the host's.
fn node_name() -> String {
    std::env::var("SLURMD_NODENAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

pub fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

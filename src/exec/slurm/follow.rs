//! Following a submitted array: the shard journals are read as they grow (the results), and
//! `squeue` is asked how each array task stands (the reasons, when a shard ends without
//! results). Success is read from the journals only, never from Slurm's exit codes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

use super::spool::Spool;
use super::submit::{CLIENT_TIMEOUT, JobId, run_tool};
use crate::record::ItemRecord;
use crate::record::journal::{Entry, read_entries};

/// Slurm states in which an array task will not run (again).
const TERMINAL: [&str; 11] = [
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "REVOKED",
    "SPECIAL_EXIT",
];

/// Reasons a pending array task waits for that never come by themselves: the task is given
/// up at once (and the array cancelled) rather than waited for without end.
const HOPELESS: [&str; 9] = [
    "PartitionTimeLimit",
    "PartitionNodeLimit",
    "BadConstraints",
    "InvalidAccount",
    "InvalidQOS",
    "JobHeldAdmin",
    "ReqNodeNotAvail, UnavailableNodes",
    "AssocMaxWallDurationPerJobLimit",
    "QOSMaxWallDurationPerJobLimit",
];

/// An array task `squeue` stopped listing is taken as gone only after this long (a listing
/// can race with a task's start).
const VANISHED_AFTER: Duration = Duration::from_secs(3);

/// How long a shard Slurm calls COMPLETED may take to show its `done` mark: on NFS another
/// node's new file can stay unseen for the attribute cache's time (up to a minute).
const MARK_GRACE: Duration = Duration::from_secs(60);

/// How a shard ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// It wrote its `done` mark: its journal is whole. `Some` when it could not run its items.
    Done(Option<String>),
    /// Slurm says it ended in this state (`CANCELLED`, `TIMEOUT`, `NODE_FAIL`, ...).
    Slurm(String),
    /// Slurm no longer knows it, and it left no `done` mark.
    Lost(String),
}

/// One shard as followed.
struct Shard {
    /// Bytes of its journal read so far (up to the last whole line).
    offset: u64,
    ended: Option<Ended>,
    /// Ended, and its journal read to the end.
    drained: bool,
    /// What `squeue` last said: its state and why it waits.
    state: Option<(String, String)>,
    /// When `squeue` last listed it.
    last_listed: Option<Instant>,
    /// Since when Slurm calls it COMPLETED while its `done` mark is not seen yet.
    completed_since: Option<Instant>,
}

/// The array being followed.
pub struct Follower<'a> {
    spool: &'a Spool,
    pub job: JobId,
    shards: Vec<Shard>,
    started: Instant,
    /// When `squeue` last answered.
    last_answer: Instant,
    /// The first error of `squeue` not answering, since it last did.
    pub squeue_error: Option<String>,
    /// Some shard has started (its journal exists).
    pub any_started: bool,
}

impl<'a> Follower<'a> {
    pub fn new(spool: &'a Spool, job: JobId, shards: usize) -> Follower<'a> {
        let now = Instant::now();
        Follower {
            spool,
            job,
            shards: (0..shards)
                .map(|_| Shard {
                    offset: 0,
                    ended: None,
                    drained: false,
                    state: None,
                    last_listed: None,
                    completed_since: None,
                })
                .collect(),
            started: now,
            last_answer: now,
            squeue_error: None,
            any_started: false,
        }
    }

    /// Reads what every shard's journal gained since the last call; `each` takes a shard's
    /// new records.
    pub fn read_journals(&mut self, mut each: impl FnMut(usize, Vec<ItemRecord>)) {
        for k in 0..self.shards.len() {
            if self.shards[k].drained {
                continue;
            }
            // Ended before this read: what this read finds is all there will be.
            let ended = self.shards[k].ended.is_some();
            if let Some(records) = self.read_journal(k)
                && !records.is_empty()
            {
                each(k, records);
            }
            self.shards[k].drained = ended;
        }
    }

    /// The new whole lines of shard `k`'s journal. Opened afresh each time: over NFS, that is
    /// what makes another node's appends visible (close-to-open consistency).
    fn read_journal(&mut self, k: usize) -> Option<Vec<ItemRecord>> {
        let mut file = File::open(self.spool.journal(k)).ok()?;
        self.any_started = true;
        let shard = &mut self.shards[k];
        file.seek(SeekFrom::Start(shard.offset)).ok()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        // A line still being written waits for the next call.
        let whole = memchr::memrchr(b'\n', &bytes).map_or(0, |at| at + 1);
        shard.offset += whole as u64;
        let mut records = Vec::new();
        let _ = read_entries(&bytes[..whole], |entry| {
            if let Entry::Record(record) = entry {
                records.push(record);
            }
        });
        Some(records)
    }

    /// Notes the shards that wrote their `done` mark.
    pub fn check_done(&mut self) {
        for k in 0..self.shards.len() {
            if self.shards[k].ended.is_none()
                && let Some(done) = read_done(self.spool, k)
            {
                self.shards[k].ended = Some(Ended::Done(done));
            }
        }
    }

    /// Asks `squeue` how the array's tasks stand and notes the shards that ended.
    pub fn poll(&mut self) {
        self.check_done();
        if self.all_ended() {
            return;
        }
        let mut args = self.job.cluster_args();
        args.extend(
            ["-h", "-r", "-t", "all", "-o", "%K|%T|%r", "-j"]
                .iter()
                .map(|a| a.into()),
        );
        args.push(self.job.id.to_string().into());
        let now = Instant::now();
        match run_tool("squeue", &args, CLIENT_TIMEOUT) {
            Ok(listing) => {
                self.last_answer = now;
                self.squeue_error = None;
                self.note_listing(&listing, now);
            }
            // Once the job is purged, squeue calls its id invalid: every task is gone.
            Err(e) if e.contains("Invalid job id") => {
                self.last_answer = now;
                self.note_listing("", now);
            }
            Err(e) => {
                self.squeue_error.get_or_insert(e);
            }
        }
    }

    fn note_listing(&mut self, listing: &str, now: Instant) {
        let mut listed: HashMap<usize, (String, String)> = HashMap::new();
        for line in listing.lines() {
            let mut fields = line.trim().splitn(3, '|');
            let (Some(index), Some(state)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Ok(index) = index.parse::<usize>() else {
                continue;
            };
            // `CANCELLED by 0` and the like: the state is the first word.
            let state = state.split_whitespace().next().unwrap_or_default();
            let reason = fields.next().unwrap_or_default();
            listed.insert(index, (state.to_owned(), reason.to_owned()));
        }
        let job = self.job.id;
        let spool = self.spool;
        for (k, shard) in self.shards.iter_mut().enumerate() {
            if shard.ended.is_some() {
                continue;
            }
            // The shard may have written its mark while `squeue` ran.
            if let Some(done) = read_done(spool, k) {
                shard.ended = Some(Ended::Done(done));
                continue;
            }
            match listed.remove(&k) {
                Some((state, reason)) => {
                    shard.last_listed = Some(now);
                    if state == "COMPLETED" {
                        // It exited 0, which it does only after writing its mark.
                        let since = *shard.completed_since.get_or_insert(now);
                        if now.duration_since(since) >= MARK_GRACE {
                            shard.ended = Some(Ended::Slurm(state.clone()));
                        }
                    } else if TERMINAL.contains(&state.as_str()) {
                        shard.ended = Some(Ended::Slurm(state.clone()));
                    } else if state == "PENDING" && HOPELESS.contains(&reason.as_str()) {
                        shard.ended = Some(Ended::Lost(format!(
                            "Slurm will not start array task {job}_{k}: it is pending for `{reason}`"
                        )));
                    }
                    shard.state = Some((state, reason));
                }
                None => {
                    let since = shard.last_listed.unwrap_or(self.started);
                    // A COMPLETED shard whose mark is not seen yet gets the mark's grace.
                    let grace = match shard.completed_since {
                        Some(_) => MARK_GRACE,
                        None => VANISHED_AFTER,
                    };
                    if now.duration_since(shard.completed_since.unwrap_or(since)) >= grace {
                        let last = shard.state.as_ref().map_or_else(
                            || "never listed".to_owned(),
                            |(state, _)| format!("last seen {state}"),
                        );
                        shard.ended = Some(Ended::Lost(format!(
                            "Slurm no longer knows array task {job}_{k} ({last})"
                        )));
                    }
                }
            }
        }
    }

    /// Shards given up on (or ended by Slurm's word) whose `done` mark is there after all
    /// count as done, and their journals are read once more.
    pub fn settle(&mut self) {
        for k in 0..self.shards.len() {
            if matches!(self.shards[k].ended, Some(Ended::Done(_))) {
                continue;
            }
            if let Some(done) = read_done(self.spool, k) {
                self.shards[k].ended = Some(Ended::Done(done));
                self.shards[k].drained = false;
            }
        }
    }

    /// How long `squeue` has not answered.
    pub fn silent_for(&self) -> Duration {
        self.last_answer.elapsed()
    }

    /// Marks every shard not yet ended as lost, with `why`.
    pub fn give_up(&mut self, why: &str) {
        for shard in &mut self.shards {
            if shard.ended.is_none() {
                shard.ended = Some(Ended::Lost(why.to_owned()));
            }
        }
    }

    /// Some shard was given up while Slurm may still hold it.
    pub fn any_lost(&self) -> bool {
        self.shards
            .iter()
            .any(|s| matches!(s.ended, Some(Ended::Lost(_))))
    }

    pub fn all_ended(&self) -> bool {
        self.shards.iter().all(|s| s.ended.is_some())
    }

    pub fn ended(&self, k: usize) -> Option<&Ended> {
        self.shards[k].ended.as_ref()
    }

    /// Array tasks that are running now, and those waiting (with Slurm's reason for the
    /// first of them).
    pub fn counts(&self) -> (usize, usize, Option<String>) {
        let (mut running, mut pending, mut reason) = (0, 0, None);
        for shard in self.shards.iter().filter(|s| s.ended.is_none()) {
            match shard.state.as_ref().map(|(s, r)| (s.as_str(), r)) {
                Some(("RUNNING" | "COMPLETING" | "CONFIGURING", _)) => running += 1,
                Some((_, r)) => {
                    pending += 1;
                    if reason.is_none() && r != "None" && !r.is_empty() {
                        reason = Some(r.clone());
                    }
                }
                None => pending += 1,
            }
        }
        (running, pending, reason)
    }
}

/// A shard's `done` mark: `Some(None)` when it ran its items, `Some(Some(why))` when it could
/// not, `None` when there is no mark (yet).
fn read_done(spool: &Spool, k: usize) -> Option<Option<String>> {
    #[derive(serde::Deserialize)]
    struct Done {
        error: Option<String>,
    }
    let bytes = std::fs::read(spool.done(k)).ok()?;
    match serde_json::from_slice::<Done>(&bytes) {
        Ok(done) => Some(done.error),
        // Half-written (the shard is writing it now): read it at the next poll.
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_pending_for_a_reason_that_never_clears_is_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().to_owned());
        let job = JobId {
            id: 7,
            cluster: None,
        };
        let mut follower = Follower::new(&spool, job, 2);
        let now = Instant::now();
        follower.note_listing("0|PENDING|Priority\n1|PENDING|PartitionTimeLimit\n", now);
        assert_eq!(follower.ended(0), None, "Priority clears by itself");
        assert!(follower.any_lost());
        match follower.ended(1) {
            Some(Ended::Lost(why)) => assert!(why.contains("`PartitionTimeLimit`"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_listing_ends_the_tasks_in_terminal_states() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().to_owned());
        let mut follower = Follower::new(
            &spool,
            JobId {
                id: 42,
                cluster: None,
            },
            3,
        );
        let now = Instant::now();
        follower.note_listing(
            "0|RUNNING|None\n1|CANCELLED by 0|None\n2|PENDING|JobArrayTaskLimit\n",
            now,
        );
        assert!(!follower.any_lost());
        assert_eq!(follower.ended(0), None);
        assert_eq!(follower.ended(1), Some(&Ended::Slurm("CANCELLED".into())));
        assert_eq!(follower.counts(), (1, 1, Some("JobArrayTaskLimit".into())));
        // Unlisted, but not for long enough to be gone.
        follower.note_listing("", now + Duration::from_secs(1));
        assert!(!follower.all_ended());
        follower.note_listing("", now + VANISHED_AFTER + Duration::from_secs(1));
        match follower.ended(0) {
            Some(Ended::Lost(why)) => assert!(why.contains("42_0 (last seen RUNNING)"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(follower.all_ended());
    }
}

//! The overlap locks: one run of a job at a time (cron starting a job while the previous run
//! still goes), and one live run writing an output (two job files naming the same `[output]
//! path`, whose journals, results and `latest` link would mix). Each is an advisory `flock`
//! on a file beside the results, holding the holder's pid and start time (and, for an
//! output, its job) for the message the second run prints. The kernel drops a lock when the
//! holder dies, however it dies, so a stale file never blocks anyone.
//!
//! Whether a run holds it now is read without taking it (`holder`): the kernel lists every
//! lock in `/proc/locks` by the file's device and inode, which any user may read; taking the
//! lock to see would disturb the run, and fail for a user who cannot write the file.

use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::record::own_file::{self, Access};

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("job `{job}` is already running ({holder}); lock `{}`", path.display())]
    Held {
        job: String,
        holder: String,
        path: PathBuf,
    },
    /// Another job's live run writes the same results, journal or `latest` link.
    #[error(
        "`{}` is being written by a live run of another job ({holder}); it would mix the two \
         runs' results: give this job its own `[output] path` or `-o` (lock `{}`)",
        results.display(),
        path.display()
    )]
    OutputHeld {
        results: PathBuf,
        holder: String,
        path: PathBuf,
    },
    #[error("cannot lock `{}`: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// Why a lock was not taken.
enum Refused {
    /// Held by a live run; what it recorded.
    Held(String),
    Io(io::Error),
}

/// The lock file for `job` whose results go to `folder`.
pub fn path_for(folder: &Path, job: &str) -> PathBuf {
    folder.join(format!(".{job}.runjobs.lock"))
}

/// The output lock of the results `results` (its name with its times as `latest`, so runs
/// of one template share it, as they share the `latest` link), in the results' folder.
pub fn output_path_for(results: &Path, name: &str) -> PathBuf {
    let folder = results.parent().unwrap_or(Path::new("."));
    folder.join(format!(".{name}.output.lock"))
}

/// Takes the job lock at `path` without waiting, recording who holds it.
pub fn acquire(path: &Path, job: &str, started_at: &str) -> Result<RunLock, LockError> {
    let record = format!("pid {}, started {started_at}", std::process::id());
    take_as(path, &record, |holder| LockError::Held {
        job: job.to_owned(),
        holder,
        path: path.to_owned(),
    })
}

/// Takes the output lock at `path` for a run of `job` (from `job_file`) writing `results`.
pub fn acquire_output(
    path: &Path,
    results: &Path,
    job: &str,
    job_file: &Path,
    started_at: &str,
) -> Result<RunLock, LockError> {
    let record = format!(
        "pid {}, started {started_at}, job `{job}` of `{}`",
        std::process::id(),
        job_file.display()
    );
    take_as(path, &record, |holder| LockError::OutputHeld {
        results: results.to_owned(),
        holder,
        path: path.to_owned(),
    })
}

/// `take`, its refusal told as `held` says (given the holder's record) or as an I/O error.
fn take_as(
    path: &Path,
    record: &str,
    held: impl FnOnce(String) -> LockError,
) -> Result<RunLock, LockError> {
    take(path, record).map_err(|refused| match refused {
        Refused::Held(holder) => held(holder),
        Refused::Io(source) => LockError::Io {
            path: path.to_owned(),
            source,
        },
    })
}

/// Takes the lock at `path` without waiting and writes `record` (starting `pid `) in it.
fn take(path: &Path, record: &str) -> Result<RunLock, Refused> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).map_err(Refused::Io)?;
    }
    // Never truncate on open: the holder's record must survive our failed attempt. Never
    // through a symlink planted at the path (see `own_file`).
    let opened = own_file::open(path, Access::ReadWrite).map_err(Refused::Io)?;
    let mut file = opened.file;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() {
                "holder unknown".to_owned()
            } else {
                holder.to_owned()
            };
            return Err(Refused::Held(holder));
        }
        Err(TryLockError::Error(e)) => return Err(Refused::Io(e)),
    }
    // The record is rewritten below: only in a file runjobs made (empty, or holding a record).
    if !opened.created {
        refuse_foreign(&mut file).map_err(Refused::Io)?;
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(format!("{record}\n").as_bytes()))
        .map_err(Refused::Io)?;
    Ok(RunLock { _file: file })
}

/// The run that holds a lock now, as its lock file records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub pid: Option<u32>,
    pub started_at: Option<String>,
}

/// The table of the kernel's file locks.
const PROC_LOCKS: &str = "/proc/locks";

/// Who holds the lock at `path` now (`None`: nobody, or there is no lock file). Only reads:
/// the lock file's device and inode are looked up in `/proc/locks`.
pub fn holder(path: &Path) -> io::Result<Option<Holder>> {
    use std::os::unix::fs::MetadataExt;
    // The lock is taken through `open`, which follows a link: so is the file looked up.
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let record = std::fs::read_to_string(path).unwrap_or_default();
    let recorded = parse_record(&record);
    let table = std::fs::read_to_string(PROC_LOCKS)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {PROC_LOCKS}: {e}")))?;
    let dev = meta.dev();
    let file = FileId {
        major: u64::from(rustix::fs::major(dev)),
        minor: u64::from(rustix::fs::minor(dev)),
        inode: meta.ino(),
    };
    Ok(is_held(&table, file, recorded.pid).then_some(recorded))
}

/// A file as `/proc/locks` names it: `MAJOR:MINOR:INODE`, the device numbers in hex.
#[derive(Debug, Clone, Copy, PartialEq)]
struct FileId {
    major: u64,
    minor: u64,
    inode: u64,
}

/// Whether `table` (the text of `/proc/locks`) lists a granted lock on `file`. A lock on the
/// same inode whose device differs still counts when its pid is the recorded holder's: on
/// overlay file systems the lock sits on the underlying file's device.
fn is_held(table: &str, file: FileId, recorded_pid: Option<u32>) -> bool {
    table.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // `N: -> FLOCK ...` is a process waiting for the lock, not holding it.
        if fields.get(1) == Some(&"->") {
            return false;
        }
        let Some(at) = fields.iter().position(|f| f.matches(':').count() == 2) else {
            return false;
        };
        let mut parts = fields[at].split(':');
        let (Some(major), Some(minor), Some(inode)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let found = (
            u64::from_str_radix(major, 16).ok(),
            u64::from_str_radix(minor, 16).ok(),
            inode.parse::<u64>().ok(),
        );
        let pid = at
            .checked_sub(1)
            .and_then(|p| fields[p].parse::<u32>().ok());
        match found {
            (Some(major), Some(minor), Some(inode)) if inode == file.inode => {
                (major == file.major && minor == file.minor)
                    || (pid.is_some() && pid == recorded_pid)
            }
            _ => false,
        }
    })
}

/// `pid N, started T` (what `acquire` writes), as far as it reads.
fn parse_record(text: &str) -> Holder {
    let text = text.trim();
    let pid = text
        .strip_prefix("pid ")
        .and_then(|rest| rest.split(',').next())
        .and_then(|pid| pid.trim().parse().ok());
    let started_at = text
        .split_once("started ")
        .map(|(_, at)| at.trim().to_owned())
        .filter(|at| !at.is_empty());
    Holder { pid, started_at }
}

/// Refuses to rewrite a file at the lock's path that runjobs did not write: one holding
/// anything but a holder's record, or with other names (a hard link to someone's file).
fn refuse_foreign(file: &mut File) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let links = file.metadata()?.nlink();
    let mut head = Vec::new();
    Read::by_ref(file).take(256).read_to_end(&mut head)?;
    file.rewind()?;
    let ours = head.is_empty() || head.starts_with(b"pid ");
    if links > 1 || !ours {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it holds something runjobs did not write there, and the lock would replace it: \
             move it away",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_seen_without_taking_it_and_a_released_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "nightly");
        assert_eq!(holder(&path).unwrap(), None, "no lock file");
        let held = acquire(&path, "nightly", "2026-11-24T20:00:00Z").unwrap();
        let seen = holder(&path).unwrap().expect("held");
        assert_eq!(seen.pid, Some(std::process::id()));
        assert_eq!(seen.started_at.as_deref(), Some("2026-11-24T20:00:00Z"));
        // Looking did not take it from the holder: a second run is still refused.
        assert!(acquire(&path, "nightly", "later").is_err());
        drop(held);
        assert_eq!(holder(&path).unwrap(), None, "released");
    }

    #[test]
    fn proc_locks_lines_match_by_device_and_inode_and_waiters_do_not_count() {
        let file = FileId {
            major: 0xfe,
            minor: 0,
            inode: 5317274,
        };
        let held = "1: FLOCK  ADVISORY  WRITE 5804 fe:00:5317274 0 EOF\n";
        assert!(is_held(held, file, None));
        let other_device = "1: FLOCK  ADVISORY  WRITE 5804 08:01:5317274 0 EOF\n";
        assert!(!is_held(other_device, file, None));
        assert!(
            is_held(other_device, file, Some(5804)),
            "the recorded holder"
        );
        let other_inode = "1: FLOCK  ADVISORY  WRITE 5804 fe:00:5317275 0 EOF\n";
        assert!(!is_held(other_inode, file, Some(5804)));
        let waiting = "3: -> FLOCK  ADVISORY  WRITE 7910 fe:00:5317274 0 EOF\n";
        assert!(!is_held(waiting, file, None));
        assert!(!is_held("garbage\n\n", file, None));
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "nightly");
        let held = acquire(&path, "nightly", "2026-11-24T20:00:00Z").unwrap();
        let err = acquire(&path, "nightly", "later").unwrap_err().to_string();
        assert!(err.contains("already running"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("2026-11-24T20:00:00Z"), "{err}");
        drop(held);
        acquire(&path, "nightly", "again").unwrap();
    }

    #[test]
    fn a_file_runjobs_did_not_write_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "nightly");
        std::fs::write(&path, "someone's notes\n").unwrap();
        let err = acquire(&path, "nightly", "now").unwrap_err().to_string();
        assert!(err.contains("did not write"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "someone's notes\n");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "").unwrap();
        let other = path_for(dir.path(), "other");
        std::fs::hard_link(&victim, &other).unwrap();
        assert!(acquire(&other, "other", "now").is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "");
    }
}

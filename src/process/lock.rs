//! The overlap lock: one run of a job at a time (cron starting a job while the previous run
//! still goes). An advisory `flock` on a file beside the results, holding the holder's pid and
//! start time for the message the second run prints. The kernel drops the lock when the
//! holder dies, however it dies, so a stale file never blocks anyone.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

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
    #[error("cannot lock `{}`: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// The lock file for `job` whose results go to `folder`.
pub fn path_for(folder: &Path, job: &str) -> PathBuf {
    folder.join(format!(".{job}.runjobs.lock"))
}

/// Takes the lock at `path` without waiting, recording who holds it.
pub fn acquire(path: &Path, job: &str, started_at: &str) -> Result<RunLock, LockError> {
    let io_error = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).map_err(io_error)?;
    }
    // Never truncate on open: the holder's record must survive our failed attempt.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_error)?;
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
            return Err(LockError::Held {
                job: job.to_owned(),
                holder,
                path: path.to_owned(),
            });
        }
        Err(TryLockError::Error(e)) => return Err(io_error(e)),
    }
    let record = format!("pid {}, started {started_at}\n", std::process::id());
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(record.as_bytes()))
        .map_err(io_error)?;
    Ok(RunLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

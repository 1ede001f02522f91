//! The overlap lock: one run of a job at a time (cron starting a job while the previous run
//! still goes). An advisory `flock` on a file beside the results, holding the holder's pid and
//! start time for the message the second run prints. The kernel drops the lock when the
//! holder dies, however it dies, so a stale file never blocks anyone.

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
    // Never truncate on open: the holder's record must survive our failed attempt. Never
    // through a symlink planted at the path (see `own_file`).
    let opened = own_file::open(path, Access::ReadWrite).map_err(io_error)?;
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
            return Err(LockError::Held {
                job: job.to_owned(),
                holder,
                path: path.to_owned(),
            });
        }
        Err(TryLockError::Error(e)) => return Err(io_error(e)),
    }
    // The record is rewritten below: only in a file runjobs made (empty, or holding a record).
    if !opened.created {
        refuse_foreign(&mut file).map_err(io_error)?;
    }
    let record = format!("pid {}, started {started_at}\n", std::process::id());
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(record.as_bytes()))
        .map_err(io_error)?;
    Ok(RunLock { _file: file })
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

//! The output file: written to a temporary file beside the target and renamed into place
//! when complete, so a reader never sees half a file and a killed run leaves no torn one.

use std::fs::{self, File};
use std::io::{self, BufWriter, Stdout, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tempfile::NamedTempFile;

use super::Destination;

pub enum OutputFile {
    Atomic {
        writer: BufWriter<NamedTempFile>,
        target: PathBuf,
        /// Starts writing the file out while the run goes (see `WriteOut`).
        write_out: WriteOut,
    },
    Stdout(BufWriter<Stdout>),
}

impl OutputFile {
    pub fn create(destination: &Destination) -> io::Result<OutputFile> {
        match destination {
            Destination::Stdout => Ok(OutputFile::Stdout(BufWriter::new(io::stdout()))),
            Destination::Discard => {
                Err(io::Error::other("results that are discarded have no file"))
            }
            Destination::File(target) => {
                let dir = target.parent().filter(|p| !p.as_os_str().is_empty());
                let dir = dir.map_or_else(|| PathBuf::from("."), PathBuf::from);
                fs::create_dir_all(&dir).map_err(|e| with_path(e, "create the folder", &dir))?;
                let name = target.file_name().map(|n| n.to_string_lossy().into_owned());
                let name = name.unwrap_or_default();
                remove_dead_temporaries(&dir, &name);
                // Created `0666 & ~umask` like any file runjobs makes (a temporary file's
                // default is 0600): the kernel applies the umask, and the rename keeps the
                // mode, whatever mode the file it replaces had.
                let temp = tempfile::Builder::new()
                    .prefix(&format!(".{name}.{}.", std::process::id()))
                    .suffix(".tmp")
                    .permissions(fs::Permissions::from_mode(0o666))
                    .tempfile_in(&dir)
                    .map_err(|e| with_path(e, "create a temporary file in", &dir))?;
                let write_out = WriteOut::start(temp.as_file());
                Ok(OutputFile::Atomic {
                    writer: BufWriter::with_capacity(256 * 1024, temp),
                    target: target.clone(),
                    write_out,
                })
            }
        }
    }

    /// An unnamed temporary file beside the output (in the temporary folder for standard
    /// output) for a writer's scratch text: gone when closed, even after a SIGKILL, and on
    /// the output's file system, so copying it in is the kernel's work.
    pub fn spool(&self) -> io::Result<File> {
        match self {
            OutputFile::Atomic { target, .. } => {
                let dir = target.parent().filter(|p| !p.as_os_str().is_empty());
                let dir = dir.map_or_else(|| PathBuf::from("."), PathBuf::from);
                tempfile::tempfile_in(&dir)
                    .map_err(|e| with_path(e, "create a temporary file in", &dir))
            }
            OutputFile::Stdout(_) => tempfile::tempfile(),
        }
    }

    /// Flushes and renames the file into place.
    pub fn commit(self) -> io::Result<()> {
        match self {
            OutputFile::Stdout(mut out) => out.flush(),
            OutputFile::Atomic {
                writer,
                target,
                write_out,
            } => {
                let temp = writer.into_inner().map_err(|e| e.into_error())?;
                write_out.stop();
                // No fsync: the rename already guarantees readers see a whole file, and an
                // fsync of a multi-GB result costs seconds. Durability across power loss is
                // the journal's job, not the final file's.
                temp.persist(&target)
                    .map_err(|e| with_path(e.error, "rename the results into", &target))?;
                Ok(())
            }
        }
    }
}

impl OutputFile {
    /// Appends `len` bytes of `from` at `offset`. Into a file they are copied by the kernel
    /// (`copy_file_range`), never through this process.
    pub fn copy_from(&mut self, from: &File, offset: u64, len: u64) -> io::Result<()> {
        let (mut offset, mut left) = (offset, len);
        if let OutputFile::Atomic { writer, .. } = self {
            writer.flush()?;
            let to = writer.get_ref().as_file();
            while left > 0 {
                let chunk = usize::try_from(left).unwrap_or(usize::MAX);
                match rustix::fs::copy_file_range(from, Some(&mut offset), to, None, chunk) {
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(n) => left -= n as u64,
                    // Not supported between these files (another file system, say): copy
                    // the rest by hand, which also tells a real write error.
                    Err(_) => break,
                }
            }
        }
        let mut buf = vec![0; usize::try_from(left).unwrap_or(usize::MAX).min(1 << 20)];
        while left > 0 {
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            from.read_exact_at(&mut buf[..n], offset)?;
            self.write_all(&buf[..n])?;
            offset += n as u64;
            left -= n as u64;
        }
        Ok(())
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            OutputFile::Atomic { writer, .. } => writer.write(buf),
            OutputFile::Stdout(out) => out.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            OutputFile::Atomic { writer, .. } => writer.write_all(buf),
            OutputFile::Stdout(out) => out.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            OutputFile::Atomic { writer, .. } => writer.flush(),
            OutputFile::Stdout(out) => out.flush(),
        }
    }
}

/// How often the results written so far are handed to the kernel to write out.
const WRITE_OUT_EVERY: Duration = Duration::from_millis(20);

/// A thread that asks the kernel, every `WRITE_OUT_EVERY`, to start writing out what the
/// temporary file holds so far (`sync_file_range`, which does not wait for the disk).
/// Renaming over an existing file makes ext4 write the new one out first (`auto_da_alloc`,
/// what keeps a replace safe from a power loss without an fsync): done all at once in the
/// `rename`, that stalled the end of a run by ~0.1 s per 100 MB of results; spread over the
/// run, the rename has only the last pieces to write.
pub struct WriteOut {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WriteOut {
    /// Starts the thread for `file` (without it, where no thread or descriptor can be had,
    /// the rename does all the work, as it would anyway).
    fn start(file: &File) -> WriteOut {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = file.try_clone().ok().and_then(|file| {
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("write-out".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        thread::park_timeout(WRITE_OUT_EVERY);
                        if !stop.load(Ordering::Relaxed) {
                            start_writing_out(&file);
                        }
                    }
                })
                .ok()
        });
        WriteOut { stop, thread }
    }

    fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for WriteOut {
    fn drop(&mut self) {
        self.end();
    }
}

/// Starts writing out the file's dirty pages, without waiting for them to reach the disk.
/// A failure changes nothing: the rename writes them out anyway.
#[allow(
    unsafe_code,
    reason = "sync_file_range has no safe wrapper in std or rustix"
)]
fn start_writing_out(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open (owned by `file`), and the call takes no pointers.
    unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
}

/// Removes the temporary files of runs of this output that died before renaming them (a
/// SIGKILL): `.NAME.PID.*.tmp` whose PID is no longer running.
fn remove_dead_temporaries(dir: &std::path::Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .filter(|rest| rest.ends_with(".tmp"))
        else {
            continue;
        };
        let pid = rest.split('.').next().and_then(|p| p.parse::<i32>().ok());
        let alive = pid
            .and_then(rustix::process::Pid::from_raw)
            .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok());
        if pid.is_some() && !alive {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn with_path(e: io::Error, what: &str, path: &std::path::Path) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {what} `{}`: {e}", path.display()))
}

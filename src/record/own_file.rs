//! Opening the files runjobs keeps beside the results and writes in place (the journal, the
//! run index, the overlap lock). In a shared, group-writable folder another user may plant a
//! symlink at one of those paths, so that appending or truncating there would write to a file
//! of their choice with the rights of the user running the job (the kernel's
//! `protected_symlinks` guards only sticky world-writable folders). So these files are never
//! opened through a symlink (`O_NOFOLLOW`), created with `O_EXCL` when new, and refused
//! unless they are regular files. The results file needs none of this: it is replaced by a
//! rename, which replaces a link without following it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// How a file beside the results is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Appended to, and read back (the journal); appended to only (the run index).
    Append { read: bool },
    /// Read and written in place (the lock).
    ReadWrite,
}

/// An opened file beside the results, and whether this call created it.
#[derive(Debug)]
pub struct OwnFile {
    pub file: File,
    pub created: bool,
}

/// Opens (creating it if missing) the file at `path` for `access`, refusing a symlink or
/// anything but a regular file there; the error says what to do, and the caller names the
/// file.
pub fn open(path: &Path, access: Access) -> io::Result<OwnFile> {
    let mut options = OpenOptions::new();
    match access {
        Access::Append { read } => options.read(read).append(true),
        Access::ReadWrite => options.read(true).write(true),
    };
    // O_NONBLOCK: a FIFO planted there must not hang the run in `open` (it is refused
    // below); on a regular file the flag changes nothing.
    options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    let (file, created) = match options.clone().create_new(true).open(path) {
        Ok(file) => (file, true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            (options.open(path).map_err(|e| refused(path, e))?, false)
        }
        Err(e) => return Err(refused(path, e)),
    };
    let kind = file.metadata().map_err(|e| refused(path, e))?.file_type();
    if !kind.is_file() {
        return Err(not_regular());
    }
    Ok(OwnFile { file, created })
}

/// Refuses what is at `path` now, without opening or creating anything: a symlink or
/// anything but a regular file. For a file written only at the end of a run (the run index),
/// so that such a run stops before it starts.
pub fn check(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(refused(path, e)),
        Ok(meta) if meta.file_type().is_symlink() => Err(symlink()),
        Ok(meta) if !meta.file_type().is_file() => Err(not_regular()),
        Ok(_) => Ok(()),
    }
}

/// The error of opening `path`, told plainly when a symlink was the reason.
fn refused(path: &Path, e: io::Error) -> io::Error {
    let is_link = e.raw_os_error() == Some(libc::ELOOP)
        || std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if is_link { symlink() } else { e }
}

fn not_regular() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "it is not a regular file, and runjobs keeps its own file there: remove it",
    )
}

fn symlink() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "it is a symbolic link, and runjobs never writes its own files through a link (that \
         could overwrite the file it points to): remove it",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_is_created_and_an_existing_one_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.jsonl");
        let first = open(&path, Access::Append { read: false }).unwrap();
        assert!(first.created);
        let again = open(&path, Access::ReadWrite).unwrap();
        assert!(!again.created);
        check(&path).unwrap();
    }

    #[test]
    fn links_folders_and_fifos_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("x.lock");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let dangling = dir.path().join("y.lock");
        std::os::unix::fs::symlink(dir.path().join("nothing"), &dangling).unwrap();
        for path in [&link, &dangling] {
            for access in [Access::ReadWrite, Access::Append { read: true }] {
                let err = open(path, access).unwrap_err().to_string();
                assert!(err.contains("is a symbolic link"), "{err}");
            }
            assert!(
                check(path)
                    .unwrap_err()
                    .to_string()
                    .contains("symbolic link")
            );
        }
        assert!(!dir.path().join("nothing").exists());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let folder = dir.path().join("sub");
        std::fs::create_dir(&folder).unwrap();
        assert!(open(&folder, Access::Append { read: false }).is_err());
        let err = check(&folder).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let err = open(&fifo, Access::ReadWrite).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        assert!(
            check(&fifo)
                .unwrap_err()
                .to_string()
                .contains("not a regular file")
        );
    }
}

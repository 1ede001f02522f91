//! Where results go when their own folder fails them (disk full, folder removed mid-run):
//! the first of a few other folders that takes a new file.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Folders to try, best first: the job's folder (beside the job file, where a user looks),
/// the current folder, then the temporary folder. `avoid` (the folder that failed) and
/// duplicates are left out.
pub fn folders(job_dir: &Path, avoid: Option<&Path>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let candidates = [
        Some(job_dir.to_path_buf()),
        std::env::current_dir().ok(),
        Some(std::env::temp_dir()),
    ];
    for folder in candidates.into_iter().flatten() {
        if avoid.is_some_and(|a| a == folder) || out.contains(&folder) {
            continue;
        }
        out.push(folder);
    }
    out
}

/// Creates a new file `name` (with `-2`, `-3`… inserted when taken) in the first folder of
/// `folders` that accepts it and lets `fill` write it completely.
pub fn create(
    folders: &[PathBuf],
    name: &str,
    mut fill: impl FnMut(&mut File) -> io::Result<()>,
) -> io::Result<(File, PathBuf)> {
    let mut last = io::Error::other("no folder to write in");
    for folder in folders {
        for attempt in 1..=20 {
            let path = folder.join(numbered(name, attempt));
            let mut file = match OpenOptions::new()
                .read(true)
                .append(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    last = e;
                    break;
                }
            };
            match fill(&mut file) {
                Ok(()) => return Ok((file, path)),
                Err(e) => {
                    let _ = std::fs::remove_file(&path);
                    last = e;
                    break;
                }
            }
        }
    }
    Err(last)
}

/// `folder/name`, or `folder/name-2…` when that is taken.
pub fn free_path(folder: &Path, name: &str) -> PathBuf {
    (1..)
        .map(|attempt| folder.join(numbered(name, attempt)))
        .find(|path| !path.exists())
        .expect("some numbered name is free")
}

/// `results.json` → `results-2.json` for attempt 2.
fn numbered(name: &str, attempt: u32) -> String {
    if attempt == 1 {
        return name.to_owned();
    }
    match name.split_once('.') {
        Some((stem, ext)) => format!("{stem}-{attempt}.{ext}"),
        None => format!("{name}-{attempt}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_goes_before_the_extensions() {
        assert_eq!(numbered("a.json", 1), "a.json");
        assert_eq!(numbered("a.json.journal", 3), "a-3.json.journal");
        assert_eq!(numbered("plain", 2), "plain-2");
    }

    #[test]
    fn the_failed_folder_is_not_tried_again() {
        let dir = tempfile::tempdir().unwrap();
        let list = folders(dir.path(), Some(dir.path()));
        assert!(!list.contains(&dir.path().to_path_buf()));
        assert!(!list.is_empty());
    }

    #[test]
    fn a_taken_name_gets_a_number_and_a_failed_fill_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let folders = vec![dir.path().to_path_buf()];
        std::fs::write(dir.path().join("r.json"), "x").unwrap();
        let (_, path) = create(&folders, "r.json", |_| Ok(())).unwrap();
        assert_eq!(path, dir.path().join("r-2.json"));
        let err = create(&folders, "s.json", |_| Err(io::Error::other("full"))).unwrap_err();
        assert_eq!(err.to_string(), "full");
        assert!(!dir.path().join("s.json").exists());
    }
}
